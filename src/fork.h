/*
 * fork: fork(2) in a threaded program leaves every live heap usable and
 * consistent in the child.
 *
 * The library keeps a list of its live heaps and registers one set of
 * pthread_atfork handlers, once, when the first heap joins the list. By
 * then jemalloc has initialized (the heap has arenas) and registered its
 * own handlers, so ours come after them: pthread_atfork runs our prepare
 * handler before jemalloc's and our parent and child handlers after
 * jemalloc's. A program that links the library, whose malloc jemalloc has
 * served since before the library's constructors ran, and
 * libpinheap-preload.so, which sets up its heap on the first malloc, get
 * the same order.
 *
 * What the prepare handler does, with the list's lock held, for each heap
 * from the newest to the oldest (heap_prefork, which calls down into the
 * heap's modules, as jemalloc's jemalloc_fork.c does; no module calls up
 * into this one):
 *   1. takes the heap's arenas' lock, its reclaim lock and its thread
 *      registry's lock (the outer locks: no arena made, no flush of the
 *      caches, no thread exit, no new cache);
 *   2. steals every thread cache (thread.h), waits until no thread is
 *      inside one, and flushes the caches' jemalloc tcaches (tcache.flush
 *      destroys them; they are made again on next use): jemalloc's child
 *      handler unlists every tcache but the forking thread's own, and one
 *      made by tcache.create that crossed the fork alive could not be
 *      destroyed in the child without corrupting its arena's list. The
 *      heap does every change that spans its extent manager, page map,
 *      grants, counters and caches inside a "section":
 *      with the thread's cache held busy, or, for a thread without a cache
 *      and for lookups, stats and checks, inside the heap's gate;
 *   3. closes the gate (gate.h) and waits until no thread is inside it:
 *      the extent hooks pass it with gate_try, so that from now on alloc
 *      fails and dalloc refuses at once, which jemalloc copes with.
 * Then jemalloc's prepare handler takes jemalloc's locks, and the process
 * is copied. The parent handler reopens every gate, hands the caches back
 * and unlocks; the child handler does the same, but first forgets the
 * threads counted inside the gates (none survives) and gives back the
 * caches of the threads that did not survive the fork.
 *
 * Why it cannot deadlock. The prepare handler waits, in this order, for
 * the list's lock, then per heap for its outer locks, for the threads inside
 * its caches and for those inside its gate, and then jemalloc's handler
 * waits for jemalloc's locks. None of the threads waited for waits, in turn,
 * for something the forking thread holds by then:
 *   - the list's lock is held only by pinheap_create, pinheap_destroy and
 *     pinheap_check, briefly, holding nothing else;
 *   - an outer lock's holder (a flush, a thread exiting, a cache being made)
 *     waits only for its own heap's caches (nobody else can steal them
 *     while it holds the lock), and for jemalloc's and the inner locks;
 *   - a thread inside a section waits only for inner locks, jemalloc's locks
 *     and providers: a section never takes an outer lock (a reclaim happens
 *     between two sections), a busy section never waits at the gate, a gate
 *     section never enters a cache;
 *   - an inner lock's holder is inside a section or a hook, or holds an
 *     outer lock, and waits only for other inner locks and providers;
 *   - the hooks, which run with jemalloc's locks held, pass the gate or
 *     refuse at once; no other code of the heap holds a jemalloc lock while
 *     it waits for something of the heap's.
 * The gate closes only after every cache is stolen, so a hook called from a
 * thread's cache (inside jemalloc) never finds it closed: no allocation
 * fails because of a fork. Heaps go newest first: a provider of a newer
 * heap may allocate from an older one (the preload's), never the other way
 * round. Code of the program that allocates from a heap between the
 * handlers (its own prepare handler registered before the first heap) would
 * wait for itself, as it would with jemalloc.
 *
 * Why the child sees consistent state. When the process is copied, for
 * every listed heap: no thread holds its outer locks but the forking thread;
 * no thread is inside a cache or a section or a hook, so none holds an
 * inner lock or is half way through a change; jemalloc's own prepare
 * handler makes its state consistent. A thread that does not survive leaves
 * its cache as it was between two uses, so the child can empty it.
 *
 * Invariants: the list holds the link of every heap between
 * pinheap_create's success and the start of pinheap_destroy, once, newest
 * first; outside the handlers, every listed heap's gate is open.
 *
 * Thread-safe: the list's lock guards it; the handlers hold it from
 * prepare to parent or child.
 */
#ifndef PINHEAP_FORK_H
#define PINHEAP_FORK_H

#include "heap.h"

/* A heap's place on the list (in the heap's public handle, api.h). */
typedef struct fork_link {
  struct fork_link *next;
  heap *core;
} fork_link;

/* Puts the heap core, whose arenas exist, on the list through link,
 * registering the handlers on the first call. 0, or -1 with the error set
 * (no handlers). The caller holds none of the heap's locks and is in no
 * section. */
int fork_add(fork_link *link, heap *core);
/* Takes the heap off the list; the same conditions. */
void fork_remove(fork_link *link);

/* Number of broken invariants of the list as they concern link's heap. */
int fork_check(fork_link *link);

#endif
