#include "inbound.h"

#include <jemalloc/jemalloc.h>
#include <stdio.h>

void inbound_init(inbound *in) {
  for (unsigned o = 0; o < INBOUND_OWNERS; o++)
    for (unsigned b = 0; b < INBOUND_BINS; b++) atomic_init(&in->list[o][b], NULL);
}

void inbound_push(inbound *in, inbound_chain *c, unsigned b) {
  _Atomic(void *) *l = &in->list[c->owner][b];
  void *old = atomic_load_explicit(l, memory_order_relaxed);
  /* A push reads nothing behind the head it replaces: a head taken and
   * pushed again meanwhile (ABA) changes nothing for it. */
  do inbound_link(c->tail, old);
  while (!atomic_compare_exchange_weak_explicit(l, &old, c->head, memory_order_release, memory_order_relaxed));
  *c = (inbound_chain){NULL, NULL, 0, 0};
}

void inbound_give(void *p, size_t size, int flags) {
  while (p) {
    void *next = inbound_next(p);
    sdallocx(p, size, flags);
    p = next;
  }
}

void *inbound_walk(void *p, unsigned bin, unsigned owner, void (*visit)(void *p, unsigned bin, unsigned owner, void *arg),
                   void *arg) {
  void *last = NULL;
  for (; p; p = inbound_next(p)) {
    visit(p, bin, owner, arg);
    last = p;
  }
  return last;
}

void inbound_walk_all(inbound *in, unsigned nbins, void (*visit)(void *p, unsigned bin, unsigned owner, void *arg),
                      void *arg) {
  for (unsigned o = 0; o < INBOUND_OWNERS; o++)
    for (unsigned b = 0; b < nbins; b++) {
      inbound_chain c = {inbound_take(in, o, b), NULL, 0, o};
      if (!c.head) continue;
      c.tail = inbound_walk(c.head, b, o, visit, arg);
      inbound_push(in, &c, b);
    }
}

int inbound_chain_check(const inbound_chain *c, uint64_t mark) {
  uint32_t n = 0;
  const void *last = NULL;
  bool marked = true;
  for (const void *p = c->head; p && n <= INBOUND_CHAIN_MAX; p = inbound_next(p), n++) {
    marked = marked && memcmp(p, &mark, sizeof mark) == 0;
    last = p;
  }
  if (n != c->count || last != c->tail || c->count > INBOUND_CHAIN_MAX || !marked ||
      (c->count && c->owner >= INBOUND_OWNERS)) {
    fprintf(stderr, "inbound: a chain of %u objects linked, %u counted (at most %u), tail %s, marks %s, owner %u\n", n,
            c->count, INBOUND_CHAIN_MAX, last == c->tail ? "right" : "wrong", marked ? "right" : "wrong", c->owner);
    return 1;
  }
  return 0;
}
