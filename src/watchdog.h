/*
 * watchdog: aborts the process when a thread stays longer than a limit in a
 * wait it marked (watchdog_enter ... watchdog_leave), after the owner's
 * fire callback has said what the wait was.
 *
 * One thread per watchdog sleeps until the earliest moment the wait in
 * progress can be overdue (when none is, one limit from now), so a marked
 * wait costs the waiter a clock read (vDSO), a copy of its description and
 * two uncontended lock/unlock pairs: no system call, no wake-up. The thread
 * blocks every signal.
 *
 * Thread safety: one wait at a time (enter and leave of one watchdog from
 * one thread at a time); fire runs on the watchdog's thread, with the
 * watchdog's lock held. After fork the child has no watchdog thread: its
 * waits are not watched, and watchdog_stop there joins nothing.
 */
#ifndef PINHEAP_WATCHDOG_H
#define PINHEAP_WATCHDOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bytes of description a wait may carry. */
#define WATCHDOG_NOTE_MAX 128

/* Says what the overdue wait was (note: what watchdog_enter copied) and
 * aborts; waited_ns: how long it has lasted. */
typedef void (*watchdog_fire)(const void *note, uint64_t waited_ns, void *arg);

/*
 * Invariants: busy exactly between an enter and its leave; since is when
 * the wait began (CLOCK_MONOTONIC, ns) while busy; stop only while the
 * thread is being joined; owner is the process that started the thread.
 */
typedef struct watchdog {
  pthread_mutex_t lock;
  pthread_cond_t wake; /* on CLOCK_MONOTONIC: stop */
  pthread_t thread;
  pid_t owner;
  uint64_t limit_ns;
  watchdog_fire fire;
  void *arg;
  bool busy;
  bool stop;
  uint64_t since;
  unsigned char note[WATCHDOG_NOTE_MAX];
} watchdog;

/* Starts w's thread: a wait longer than limit_ns (> 0) calls fire(note,
 * waited, arg), which must not return. 0, or an errno value with nothing
 * started. */
int watchdog_start(watchdog *w, uint64_t limit_ns, watchdog_fire fire, void *arg);

/* Marks the start of a wait described by note[0..len) (len at most
 * WATCHDOG_NOTE_MAX), and its end. */
void watchdog_enter(watchdog *w, const void *note, size_t len);
void watchdog_leave(watchdog *w);

/* Stops and joins the thread (not during a wait). */
void watchdog_stop(watchdog *w);

/* Number of broken invariants of a started watchdog, each described on
 * stderr; idle: no wait may be in progress (the caller's thread is the one
 * that waits). */
int watchdog_check(watchdog *w, bool idle);

#endif
