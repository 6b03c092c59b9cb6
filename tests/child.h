/*
 * child: runs a function in a forked child with its standard error
 * captured, for the tests of what must abort.
 */
#ifndef PINHEAP_TEST_CHILD_H
#define PINHEAP_TEST_CHILD_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct child_result {
  int status; /* as waitpid gives it; -1 when the child could not run */
  char err[8192];
} child_result;

/* Runs fn(arg) in a child (no core file; SIGABRT, and the signals of a
 * crash that cmocka catches in the parent, at their defaults, so that a
 * crash ends the child); the child exits 0 when fn returns. */
static inline void child_run(void (*fn)(void *), void *arg, child_result *out) {
  out->status = -1;
  out->err[0] = '\0';
  int fds[2];
  if (pipe(fds) != 0) return;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(SIGABRT, SIG_DFL);
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    signal(SIGILL, SIG_DFL);
    signal(SIGFPE, SIG_DFL);
    close(fds[0]);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    fn(arg);
    _exit(0);
  }
  close(fds[1]);
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fds[0], out->err + len, sizeof out->err - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || (len += (size_t)n) == sizeof out->err - 1) break;
  }
  out->err[len] = '\0';
  close(fds[0]);
  if (pid < 0 || waitpid(pid, &out->status, 0) != pid) out->status = -1;
}

static inline bool child_aborted(const child_result *r) {
  return r->status != -1 && WIFSIGNALED(r->status) && WTERMSIG(r->status) == SIGABRT;
}

#endif
