#include "watchdog.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static void *watchdog_main(void *arg) {
  watchdog *w = arg;
  pthread_mutex_lock(&w->lock);
  while (!w->stop) {
    uint64_t now = util_now_ns();
    if (w->busy && now - w->since >= w->limit_ns) w->fire(w->note, now - w->since, w->arg);
    uint64_t next = (w->busy ? w->since : now) + w->limit_ns;
    struct timespec at = {.tv_sec = (time_t)(next / 1000000000u), .tv_nsec = (long)(next % 1000000000u)};
    pthread_cond_timedwait(&w->wake, &w->lock, &at);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

int watchdog_start(watchdog *w, uint64_t limit_ns, watchdog_fire fire, void *arg) {
  memset(w, 0, sizeof *w);
  w->limit_ns = limit_ns;
  w->fire = fire;
  w->arg = arg;
  w->owner = getpid();
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int err = pthread_cond_init(&w->wake, &ca);
  pthread_condattr_destroy(&ca);
  if (err) return err;
  pthread_mutex_init(&w->lock, NULL);
  /* The thread inherits a mask that blocks everything: the program's
   * signals go to its own threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  err = pthread_create(&w->thread, NULL, watchdog_main, w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err) {
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
  }
  return err;
}

void watchdog_enter(watchdog *w, const void *note, size_t len) {
  uint64_t now = util_now_ns();
  pthread_mutex_lock(&w->lock);
  memcpy(w->note, note, len < sizeof w->note ? len : sizeof w->note);
  w->since = now;
  w->busy = true;
  pthread_mutex_unlock(&w->lock);
}

void watchdog_leave(watchdog *w) {
  pthread_mutex_lock(&w->lock);
  w->busy = false;
  pthread_mutex_unlock(&w->lock);
}

void watchdog_stop(watchdog *w) {
  if (w->owner == getpid()) {
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
  }
  pthread_mutex_destroy(&w->lock);
  pthread_cond_destroy(&w->wake);
}

int watchdog_check(watchdog *w, bool idle) {
  int broken = 0;
  pthread_mutex_lock(&w->lock);
  if (w->limit_ns == 0 || !w->fire) {
    fprintf(stderr, "watchdog %p: a limit (%llu ns) and a fire callback should be set\n", (void *)w,
            (unsigned long long)w->limit_ns);
    broken++;
  }
  if (w->stop) {
    fprintf(stderr, "watchdog %p: should not be stopping while in use\n", (void *)w);
    broken++;
  }
  if (idle && w->busy) {
    fprintf(stderr, "watchdog %p: no wait should be in progress (one began at %llu ns)\n", (void *)w,
            (unsigned long long)w->since);
    broken++;
  }
  pthread_mutex_unlock(&w->lock);
  return broken;
}
