/*
 * gate: what the fork handlers (fork.h) close to keep threads out of a
 * heap's inner state while the process is copied.
 *
 * Code that may hold jemalloc's locks (the extent hooks) passes with
 * gate_try, which refuses at once while the gate is closed; other code
 * passes with gate_enter, which waits for it to open. Both leave with
 * gate_leave. gate_close closes the gate and waits until no thread is
 * inside; gate_open opens it again.
 *
 * Entering counts the thread in and then reads the flag; closing sets the
 * flag and then reads the count, each with a sequentially consistent
 * operation (Dekker's pattern): either the closer sees the thread counted
 * and waits for it, or the thread sees the flag and backs off.
 *
 * Thread-safe; gate_close, gate_open and gate_reset are the fork handlers',
 * one thread at a time.
 */
#ifndef PINHEAP_GATE_H
#define PINHEAP_GATE_H

#include <stdatomic.h>
#include <stdbool.h>

#include "ph_assert.h"

/* Invariants: inside counts the threads between a passing gate_try or
 * gate_enter and their gate_leave, and, for an instant, those backing off;
 * once gate_close has returned, no thread is inside and none passes until
 * gate_open; the gate is closed only between a fork handler's gate_close
 * and its gate_open (or gate_reset in the child). */
typedef struct gate {
  _Atomic unsigned inside;
  _Atomic bool closed;
} gate;

void gate_init(gate *g);

/* Passes unless the gate is closed; false: the caller must not go on. */
static inline bool gate_try(gate *g) {
  atomic_fetch_add_explicit(&g->inside, 1, memory_order_seq_cst);
  if (!atomic_load_explicit(&g->closed, memory_order_seq_cst)) return true;
  atomic_fetch_sub_explicit(&g->inside, 1, memory_order_release);
  return false;
}

/* Passes, waiting while the gate is closed. The caller must hold nothing a
 * fork handler waits for before it closes the gate (fork.h). */
void gate_enter(gate *g);

static inline void gate_leave(gate *g) {
  unsigned was = atomic_fetch_sub_explicit(&g->inside, 1, memory_order_release);
  PH_ASSERT(was > 0); /* a leave without its enter */
  (void)was;
}

/* Closes the gate and waits until no thread is inside. */
void gate_close(gate *g);
void gate_open(gate *g);
/* In a child after fork: open, with nobody inside (a thread counted at the
 * fork, even backing off, is not in the child). */
void gate_reset(gate *g);

/* Number of broken invariants; the caller knows that no fork handler runs. */
int gate_check(gate *g);

#endif
