/*
 * children: forking children one at a time, waiting for each (it may hang on
 * a lock the fork left held), and counting how they ended, for the fork
 * tests.
 */
#ifndef PINHEAP_TEST_CHILDREN_H
#define PINHEAP_TEST_CHILDREN_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "seed.h"

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
 * and names it on stderr, with the seed (0: none), unless it finished. */
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
  char with[40] = "";
  if (seed) snprintf(with, sizeof with, " (seed %llu)", seed);
  fprintf(stderr, "%s: child %d of %d %s%s\n", test, n, forks, status == -1 ? "hung and was killed" : "failed", with);
}

/* What children_fork_each does. */
typedef struct children_plan {
  const char *test; /* names the children and a failed fork on stderr */
  int forks;
  int seconds; /* that each child may take */
  unsigned long long seed; /* for the messages (0: none) */
  /* Before each fork, a pause of (min + seed_below(span)) * unit_ns ns
   * (span 0: min; min and span 0: none). */
  struct {
    long min, span, unit_ns;
  } pause;
  /* Runs in child n (from 1); must not return. */
  void (*child)(int n);
  /* Waits for child n, pid: its status as children_wait gives it (NULL:
   * children_wait(pid, seconds)). */
  int (*wait)(pid_t pid, int seconds, int n);
} children_plan;

/* Forks plan's children one after another, each waited for and counted
 * (children_count) before the next; a fork that fails is counted as failed,
 * said on stderr, and forks no more. How they ended. */
static inline children children_fork_each(const children_plan *plan) {
  children ends = {0, 0, 0};
  for (int n = 1; n <= plan->forks; n++) {
    if (plan->pause.min || plan->pause.span) {
      long long ns = (plan->pause.min + (long long)(plan->pause.span ? seed_below((uint64_t)plan->pause.span) : 0)) *
                     plan->pause.unit_ns;
      struct timespec pause = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
      nanosleep(&pause, NULL);
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      plan->child(n);
      _exit(127); /* not reached */
    }
    if (pid < 0) {
      fprintf(stderr, "%s: fork: %s\n", plan->test, strerror(errno));
      ends.failed++;
      break;
    }
    int status = plan->wait ? plan->wait(pid, plan->seconds, n) : children_wait(pid, plan->seconds);
    children_count(&ends, status, plan->test, n, plan->forks, plan->seed);
  }
  return ends;
}

#endif
