/*
 * children: waiting for forked children that may hang (a lock the fork left
 * held), and counting how they ended, for the fork tests.
 */
#ifndef PINHEAP_TEST_CHILDREN_H
#define PINHEAP_TEST_CHILDREN_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct children {
  int finished, hung, failed;
} children;

/* Waits up to seconds for the child pid: its exit status (128 + the signal
 * that ended it), -1 when it hung and was killed, -2 when it cannot be
 * waited for. */
static inline int children_wait(pid_t pid, int seconds) {
  struct timespec tick = {0, 1000000};
  for (long waited = 0; waited < seconds * 1000L; waited++) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0 && errno != EINTR) return -2;
    nanosleep(&tick, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

/* Counts child n (from 1) of forks, which ended with status (children_wait),
 * and names it on stderr, with the seed, unless it finished. */
static inline void children_count(children *c, int status, const char *test, int n, int forks,
                                  unsigned long long seed) {
  if (status == 0) {
    c->finished++;
    return;
  }
  if (status == -1)
    c->hung++;
  else
    c->failed++;
  fprintf(stderr, "%s: child %d of %d %s (seed %llu)\n", test, n, forks,
          status == -1 ? "hung and was killed" : "failed", seed);
}

#endif
