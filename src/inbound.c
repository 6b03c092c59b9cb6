#include "inbound.h"

#include <stdio.h>

void inbound_init(inbound *in) {
  for (unsigned o = 0; o < INBOUND_OWNERS; o++)
    for (unsigned b = 0; b < INBOUND_BINS; b++) {
      atomic_init(&in->list[o][b], NULL);
      atomic_init(&in->objects[o][b], 0);
    }
}

uint32_t inbound_put_back(inbound *in, unsigned owner, unsigned b, void *head, void *tail, uint32_t n) {
  _Atomic(void *) *l = &in->list[owner][b];
  void *old = atomic_load_explicit(l, memory_order_relaxed);
  /* A push reads nothing behind the head it replaces: a head taken and
   * pushed again meanwhile (ABA) changes nothing for it. */
  do inbound_link(tail, old);
  while (!atomic_compare_exchange_weak_explicit(l, &old, head, memory_order_release, memory_order_relaxed));
  return atomic_fetch_add_explicit(&in->objects[owner][b], n, memory_order_relaxed) + n;
}

uint32_t inbound_push(inbound *in, inbound_chain *c, unsigned b) {
  uint32_t n = inbound_put_back(in, c->owner, b, c->head, c->tail, c->count);
  *c = (inbound_chain){NULL, NULL, 0, 0};
  return n;
}

int inbound_chain_check(const inbound_chain *c) {
  if (c->count > INBOUND_CHAIN_MAX || !c->head != !c->count || !c->tail != !c->count ||
      (c->count && c->owner >= INBOUND_OWNERS)) {
    fprintf(stderr, "inbound: a chain of %u objects (at most %u), head %p, tail %p, owner %u\n", c->count,
            INBOUND_CHAIN_MAX, c->head, c->tail, c->owner);
    return 1;
  }
  return 0;
}
