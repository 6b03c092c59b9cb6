#include "gate.h"

#include <sched.h>
#include <stdio.h>

void gate_init(gate *g) {
  atomic_init(&g->inside, 0);
  atomic_init(&g->closed, false);
}

void gate_enter(gate *g) {
  while (!gate_try(g))
    while (atomic_load_explicit(&g->closed, memory_order_acquire)) sched_yield();
}

void gate_close(gate *g) {
  atomic_store_explicit(&g->closed, true, memory_order_seq_cst);
  while (atomic_load_explicit(&g->inside, memory_order_seq_cst)) sched_yield();
}

void gate_open(gate *g) { atomic_store_explicit(&g->closed, false, memory_order_release); }

void gate_reset(gate *g) {
  atomic_store_explicit(&g->inside, 0, memory_order_relaxed);
  gate_open(g);
}

int gate_check(gate *g) {
  if (!atomic_load(&g->closed)) return 0;
  fprintf(stderr, "gate: should be open while no fork is being prepared\n");
  return 1;
}
