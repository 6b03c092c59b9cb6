/*
 * thread: each thread's cache of a heap, and how another thread empties it.
 *
 * Every thread that allocates from a heap gets a thread_cache: an explicit
 * jemalloc tcache bound to that heap alone (so it only ever holds the heap's
 * objects), the heap arena the thread fills it from, and, in front of them,
 * one short free list per jemalloc bin of the objects the thread freed (a
 * FIXED heap knows an object's bin from its page's tag, so a free or a malloc
 * that hits the list costs no call into jemalloc), and the freed extents of
 * mid-size blocks, up to a bound (xcache.h), so that mid-size blocks
 * churning in one thread do not take the extent manager's lock each time.
 * A stack of objects starts short and doubles each time it overflows, up to
 * 64 KiB of objects (a thread with many live blocks of one class keeps
 * them all without a call into jemalloc); once at its longest, an overflow
 * hands its older half to jemalloc at once (thread_bin_spill), so that a
 * thread freeing and allocating at the edge does not call jemalloc each
 * time. A reclaim shrinks every stack back.
 *
 * Only objects of the cache's own arena go on its stacks and its tcache.
 * An object freed by a thread whose arena does not own it (its page's tag
 * names the owner, pagemap.h) is never handed out again by the freeing
 * thread, whose next object of that size would share a cache line with the
 * owner's (passive false sharing): it goes back to its owner
 * (thread_give_remote). Under the registry's free_mark (the heap's keyed
 * objects) and at INBOUND_MIN_BYTES or more, it joins the cache's chain of
 * that bin (inbound.h), which, full or when an object of another owner
 * comes, goes whole onto the owner arena's list of the bin; a cache of that
 * arena whose stack of the bin runs empty takes the whole list and hands
 * its objects out from the front (thread_inbound_take, taken) before it
 * asks jemalloc, so that objects going round between threads cost no call
 * into jemalloc nor any lock (2 threads handing 16 B - 1 KiB objects to
 * each other ran at 0.26x jemalloc's rate through jemalloc's flagged
 * calls). Other objects (8 B ones, whose one word holds the mark, and
 * every object under the debugging aids, which check freed bytes) go to a
 * second tcache of the cache's, used for such frees only, and once its bin
 * is full jemalloc hands its older half back to the owners' arenas, one
 * lock per arena for the batch. A flush empties the chains, the taken
 * lists, the arenas' lists and that tcache into jemalloc; a thread's exit
 * its chains, its taken lists, its tcaches and its own arena's lists. A
 * list holds about INBOUND_LIST_BYTES of objects at most between two takes
 * of it: past it, the cache that pushes hands the whole list to jemalloc,
 * so that a list its arena takes none of (no thread of it allocates that
 * size any more, or none is left) stays small.
 *
 * A cache outlives its thread: at the thread's exit it is drained, its
 * tcache flushed, and it waits, owned by no thread, on the registry's idle
 * list (at most THREAD_IDLE_MAX of them) for the next new thread, which
 * takes it as it is instead of making a tcache and mapping stacks of its
 * own (a program that starts a thread per task pays for neither). An idle
 * cache holds nothing.
 *
 * The owner uses it without locks. When the heap must reclaim memory (pinheap_trim, or before
 * answering ENOMEM) a thread empties every cache, including those of threads
 * that are alive and busy elsewhere, through an asymmetric Dekker handshake:
 *
 *   owner:  busy = 1; light fence; if (stolen) back off; ...use...; busy = 0
 *   thief:  stolen = 1; heavy fence; wait until !busy; flush; stolen = 0
 *
 * The light fence is a compiler barrier and the heavy fence membarrier(2)
 * where the kernel offers MEMBARRIER_CMD_PRIVATE_EXPEDITED, so the owner's
 * fast path costs two plain stores and a load; elsewhere both are full
 * fences. The fork handlers steal every cache the same way, without
 * flushing, and hold them until the process is copied (fork.h); the heap
 * also holds its cache busy around other changes that must not be copied
 * half done (heap.h).
 *
 * Invariants: a cache is on its registry's list from its creation until the
 * registry is finished, or (in a child after fork) it is idle or its
 * thread did not survive the fork, or its thread exits while THREAD_IDLE_MAX
 * caches are idle already; a cache is idle (on the idle list, every stack
 * empty, no thread's) from its thread's exit until a new thread takes it;
 * at most one thread uses a cache at a time (the owner while busy and not
 * stolen, the thief while stolen and not busy).
 *
 * Thread-safe as described; thread_registry_fini must not race with anything.
 */
#ifndef PINHEAP_THREAD_H
#define PINHEAP_THREAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "inbound.h"
#include "meta.h"
#include "pagemap.h"
#include "ph_assert.h"
#include "sizeclass.h"
#include "util.h"
#include "xcache.h"

typedef struct thread_registry thread_registry;

_Static_assert(PAGEMAP_OWNERS <= INBOUND_OWNERS && SIZECLASS_MAX_BINS <= INBOUND_BINS,
               "the lists of objects given back cover every owner and bin");

/* A stack of freed objects of one bin:
 * an array of pointers, so that neither push nor pop touches the memory.
 * Invariant: count <= limit <= cap, slots has room for cap pointers, and
 * slots[0 .. count) are the pointers. Only the thread that holds the stack
 * writes count, with thread_bin_set_count (a relaxed atomic store, a
 * plain mov on x86-64), and reads it plainly; any
 * other thread may read it with thread_bin_load_count at any time, as the
 * stats do to leave the objects the stacks hold out of the live bytes. */
typedef struct thread_bin {
  void **slots;
  uint32_t count;
  uint32_t limit; /* what it holds now: grows on overflow (objects' stacks) */
  uint32_t cap;   /* the most it may hold */
} thread_bin;

static inline void thread_bin_set_count(thread_bin *b, uint32_t n) { __atomic_store_n(&b->count, n, __ATOMIC_RELAXED); }
static inline uint32_t thread_bin_load_count(const thread_bin *b) { return __atomic_load_n(&b->count, __ATOMIC_RELAXED); }

/* The top of the stack, or NULL when empty. */
static inline void *thread_bin_pop(thread_bin *b) {
  uint32_t n = b->count;
  if (!n) return NULL;
  thread_bin_set_count(b, n - 1);
  return b->slots[n - 1];
}

/* Whether p is on the stack: O(count). */
static inline bool thread_bin_holds(const thread_bin *b, const void *p) {
  for (uint32_t i = 0; i < b->count; i++)
    if (b->slots[i] == p) return true;
  return false;
}

/* Pushes p; false when the stack is full. */
static inline bool thread_bin_push(thread_bin *b, void *p) {
  PH_ASSERT(b->count <= b->limit);
  uint32_t n = b->count;
  if (n >= b->limit) return false;
  b->slots[n] = p;
  thread_bin_set_count(b, n + 1);
  return true;
}

/* The older half of a full stack: the caller gives back its first
 * thread_bin_older(b) objects, then thread_bin_drop_older keeps the newer
 * ones, still warm, at the bottom. */
static inline uint32_t thread_bin_older(const thread_bin *b) { return b->count / 2; }
static inline void thread_bin_drop_older(thread_bin *b) {
  uint32_t half = thread_bin_older(b);
  memmove(b->slots, b->slots + half, (b->count - half) * sizeof *b->slots);
  thread_bin_set_count(b, b->count - half);
}

/* A stack of objects holds at most 64 KiB of them, and between 4 and
 * THREAD_BIN_MAX; it starts at no more than THREAD_BIN_START. */
#define THREAD_BIN_BYTES ((uint32_t)64 << 10)
#define THREAD_BIN_MAX 2048u
#define THREAD_BIN_START 256u
/* The most objects a stack miss takes from the tcache in one call
 * (thread_refill), and the fewest: a cache's first miss of a class takes
 * none that way (one, through the caller's mallocx), the next
 * THREAD_REFILL_START, each later one twice the one before, up to the
 * registry's count, so that a thread that allocates a few objects and
 * exits takes no more. */
#define THREAD_REFILL_MAX 32u
#define THREAD_REFILL_START 2u
/* Caches of exited threads kept for new threads. */
#define THREAD_IDLE_MAX 8u

/* A FIFO of freed small objects held back from reuse (with the debugging
 * aids): an object waits until `limit` later frees of its thread have
 * pushed it out, so that a second free of it in that time finds it freed
 * rather than handed out again. Invariant: count <= limit; entry i (0 the
 * oldest) is slots[(head + i) % limit], of bin bins[(head + i) % limit]. */
typedef struct thread_fifo {
  void **slots;
  uint8_t *bins;
  uint32_t head;
  uint32_t count;
  uint32_t limit;
} thread_fifo;

/* Appends p of bin b; when full, first takes out the oldest entry into
 * *out and *out_bin and returns true. */
static inline bool thread_fifo_push(thread_fifo *q, void *p, unsigned b, void **out, unsigned *out_bin) {
  bool evicted = false;
  if (q->count == q->limit) {
    *out = q->slots[q->head];
    *out_bin = q->bins[q->head];
    q->head = q->head + 1 == q->limit ? 0 : q->head + 1;
    q->count--;
    evicted = true;
  }
  uint32_t at = q->head + q->count;
  if (at >= q->limit) at -= q->limit;
  q->slots[at] = p;
  q->bins[at] = (uint8_t)b;
  q->count++;
  return evicted;
}

typedef struct thread_cache {
  _Atomic int busy;
  _Atomic int stolen;
  int alloc_flags; /* MALLOCX_ARENA(arena) | MALLOCX_TCACHE(tcache) */
  int free_flags;  /* MALLOCX_TCACHE(tcache) */
  int remote_flags; /* MALLOCX_TCACHE(remote) */
  unsigned tcache;
  unsigned remote; /* the tcache of other arenas' objects, never allocated from */
  unsigned arena;
  unsigned owner; /* arena's slot: what the tags of its objects' pages name */
  /* The thread's share of its heap's counts of large blocks (bytes, blocks):
   * what it added less what it took away, modulo 2^64 (a thread may free
   * another's blocks). Only the owner writes them, inside its section, so
   * that no counter's cache line bounces between threads; readers sum the
   * shares (thread_sum_large). */
  _Atomic size_t large_bytes;
  _Atomic size_t large_blocks;
  /* The heap's: how many more frees of blocks above XCACHE_BLOCK_MAX keep
   * their extents without trying the extent manager's lock (heap.c). */
  uint32_t contended;
  /* The heap's: the extent manager's em_waits when contended was last set. */
  size_t contended_waits;
  /* The heap's: a window of contended frees was opened and has not been
   * looked at since it ended; only then may the next free open another
   * without trying the lock (a thread that never met the lock keeps
   * nothing, whatever other threads met). */
  bool contended_renew;
  /* The heap's: when this thread last emptied every thread's cache of the
   * extents kept under contention (heap.c), util_coarse_ns. */
  uint64_t contended_flushed;
  struct thread_cache *next;
  struct thread_cache *prev;
  struct thread_cache *next_idle; /* on the idle list */
  bool idle;
  thread_registry *registry;
  void **slot_memory; /* mmap'd backing of every stack's slots */
  size_t slot_bytes;
  thread_bin bins[SIZECLASS_MAX_BINS];
  uint8_t fill[SIZECLASS_MAX_BINS]; /* what bin's next refill takes: 0 until its first */
  xcache extents; /* registry's release_extent set only */
  thread_fifo held;                        /* registry's hold > 0 only */
  /* Bytes of jemalloc's objects that jemalloc handed out through this
   * cache (its arena and tcache) less those handed back through it (to
   * either tcache), modulo 2^64, written as the large-block shares are:
   * the objects live, on this cache's stacks or FIFO, or freed through
   * another cache. Summed over the caches and less what every stack and
   * FIFO holds, the bytes of live objects (thread_sum_small): what
   * jemalloc's tcaches hold is jemalloc's, in no share. Last in the
   * record with held_bytes, so that the fast paths' fields keep their
   * cache lines. */
  _Atomic size_t small_bytes;
  /* Bytes of the objects on the FIFO of held-back objects; the owner
   * writes it (thread_hold), anyone may read it. */
  _Atomic size_t held_bytes;
  /* Other arenas' objects freed here, per bin, going back to their owner
   * (thread_give_remote); none in an idle cache. */
  inbound_chain chains[SIZECLASS_MAX_BINS];
  /* Per bin, the rest of the last inbound list the cache took, linked as
   * taken (thread_inbound_take), handed out from the front before jemalloc
   * is asked: so taking a list reads none of its objects, and each object's
   * link is read as it is handed out, when its line is about to be
   * written anyway (walking a list of 32 the other thread had just written
   * took 88% of the time of a miss). Its objects hold the registry's
   * free_mark, are counted in no share, and are on no other list; none in
   * an idle cache. */
  void *taken[SIZECLASS_MAX_BINS];
} thread_cache;

struct thread_registry {
  uint64_t id; /* unique per registry, never reused in the process */
  pthread_key_t key;
  pthread_mutex_t lock; /* the list and the pool; held by a thief throughout */
  thread_cache *head;
  thread_cache *idle; /* caches of exited threads, for new threads */
  unsigned idle_count;
  meta_pool pool;
  const sizeclass *classes;
  size_t page;
  /* Gives a cached extent back to the extent manager (NULL: no extent caches). */
  void (*release_extent)(void *ctx, void *addr, size_t bytes);
  void *release_ctx;
  /* The jemalloc arena a new cache fills from (the heap makes its arenas on
   * first use), its slot into *slot (below PAGEMAP_OWNERS): called before
   * the registry's lock is taken. */
  unsigned (*arena_for)(void *ctx, unsigned *slot);
  void *arena_ctx;
  /* Written into the first 8 bytes of each object a cache hands to jemalloc,
   * mixed with its address (util_mark; 0: nothing written): the heap's mark
   * of a freed object (heap.c). */
  uint64_t free_mark;
  /* The heap's page map (NULL: free_mark is 0): how a link of the inbound
   * lists is checked before it is followed (thread_link_next). */
  const pagemap *pm;
  /* Empties what a layer keeps beside a cache, by the cache's tcache
   * number, whenever the cache is drained (NULL: nothing kept). */
  void (*drain_front)(void *ctx, unsigned tcache);
  void *front_ctx;
  /* Entries of each cache's FIFO of held-back objects (0: none). */
  uint32_t hold;
  /* jemalloc's experimental.batch_alloc (mib_len 0: not there), and how
   * many objects of each bin a refill takes: fewer than one slab holds, so
   * that jemalloc takes them from the tcache and its current slabs rather
   * than carving fresh slabs for the batch (at most THREAD_REFILL_MAX). */
  size_t batch_mib[4];
  size_t batch_mib_len;
  uint8_t refill[SIZECLASS_MAX_BINS];
  /* The shares of the large-block and small counts of caches released
   * (lock held). */
  size_t large_bytes_left;
  size_t large_blocks_left;
  size_t small_bytes_left;
  /* The objects caches gave back to each arena, by its slot (inbound.h),
   * each holding free_mark. */
  inbound inbound;
};

extern bool thread_asymmetric; /* membarrier available */

/* The cache the calling thread used last, so that the fast path needs no
 * pthread_getspecific; keyed by registry id, so a destroyed registry's
 * cache is never found. */
typedef struct thread_last_used {
  uint64_t id;
  thread_cache *tc;
} thread_last_used;
extern _Thread_local thread_last_used thread_last __attribute__((tls_model("initial-exec")));

/* classes: the bins whose free lists the caches keep (NULL: none);
 * release_extent: where cached extents go back (NULL: no extent caches);
 * arena_for: the arena of each new cache, and its slot. */
int thread_registry_init(thread_registry *reg, const sizeclass *classes, size_t page,
                         void (*release_extent)(void *ctx, void *addr, size_t bytes), void *release_ctx,
                         unsigned (*arena_for)(void *ctx, unsigned *slot), void *arena_ctx);
void thread_registry_fini(thread_registry *reg);

thread_cache *thread_enter_slow(thread_registry *reg);

/* thread_enter without a call, for the fast paths: the cache the thread
 * used last, marked busy, when it is this registry's and not stolen; else
 * NULL, nothing marked (thread_enter then does the rest). Without a call,
 * a caller that leaves and returns on the same path saves no registers. */
static inline thread_cache *thread_enter_fast(thread_registry *reg) {
  thread_cache *tc = thread_last.tc;
  if (PH_UNLIKELY(thread_last.id != reg->id)) return NULL;
  /* thread_last names a cache whenever it names a registry. */
  if (!tc) __builtin_unreachable();
  atomic_store_explicit(&tc->busy, 1, memory_order_relaxed);
  if (thread_asymmetric)
    atomic_signal_fence(memory_order_seq_cst);
  else
    atomic_thread_fence(memory_order_seq_cst);
  if (PH_UNLIKELY(atomic_load_explicit(&tc->stolen, memory_order_acquire))) {
    atomic_store_explicit(&tc->busy, 0, memory_order_release);
    return NULL;
  }
  return tc;
}

/* The calling thread's cache, marked busy; NULL if it has none: one could
 * not be made (errno set), or the thread is exiting and its caches are
 * gone already (a pthread key destructor that runs after the registry's; a
 * new cache would outlive the thread). The caller then goes without one.
 * Pair with thread_leave. */
static inline thread_cache *thread_enter(thread_registry *reg) {
  thread_cache *tc = thread_enter_fast(reg);
  return PH_LIKELY(tc != NULL) ? tc : thread_enter_slow(reg);
}

static inline void thread_leave(thread_cache *tc) {
  PH_ASSERT(atomic_load_explicit(&tc->busy, memory_order_relaxed)); /* a leave without its enter */
  atomic_store_explicit(&tc->busy, 0, memory_order_release);
}

/* A free of p, of bin b, that found its stack full (thread_bin_push
 * failed): the stack grows, or gives its older half to jemalloc through
 * the cache's tcache, each object marked as a drain marks it; then p goes
 * on it. The caller is inside tc (thread_enter). */
void thread_bin_spill(thread_cache *tc, unsigned b, void *p);

/* thread_give_remote past its fast path. */
void thread_give_remote_rest(thread_cache *tc, unsigned b, void *p, unsigned owner);

/* Up to the cache's fill count of bin b (then doubled, up to the
 * registry's refill count; one more than half what b's stack may hold at most; none
 * at the cache's first miss of b) of objects of bin b from the cache's
 * tcache and arena in one call to
 * jemalloc, into out (room for THREAD_REFILL_MAX): how many (0: none, or no
 * batch_alloc). They may lie outside the heap as mallocx's may (heap.c).
 * The caller is inside tc, b's stack empty. */
unsigned thread_refill(thread_cache *tc, unsigned b, void **out);

/* Empties every thread's cache of this registry into the arenas, and
 * shrinks its stacks back. The caller must not be inside
 * thread_enter/thread_leave. */
void thread_flush_all(thread_registry *reg);

/* fork(2) (fork.h): prepare takes the registry's lock and steals every
 * cache, so that no thread is inside one when the process is copied, and
 * flushes the caches' jemalloc tcaches: jemalloc's child handler
 * (arena_postfork_child) empties every arena's lists of tcaches but for the
 * forking thread's own automatic one, while each tcache made by
 * tcache.create still believes itself listed, and destroying it in the
 * child would unlink it from a list it is no longer on, rewriting the
 * listed tcache's links and leaving freed tcaches on the arena's list,
 * where the stats (the "epoch" mallctl) read them. tcache.flush destroys
 * the tcache while it is listed, and it is made again, linked afresh, on
 * its next use (none comes before the parent's or the child's handler, the
 * caches being stolen); the gate is still open, for the flush may call the
 * hooks. parent hands the caches back and unlocks. child, in the child,
 * gives back the caches of the threads that did not survive the fork
 * (every one but the calling thread's), whose contents the steal left
 * consistent, and unlocks. */
void thread_fork_prepare(thread_registry *reg);
void thread_fork_parent(thread_registry *reg);
void thread_fork_child(thread_registry *reg);

/* Number of threads with a cache (idle caches not counted). */
size_t thread_count(thread_registry *reg);

/* Calls visit on every object and extent the caches hold (their chains of
 * other arenas' objects and the inbound lists included), with its size in
 * bytes, under the registry's lock (no cache is drained meanwhile); exact
 * while no thread allocates (thread_walk_remote holds the caches). */
void thread_walk_cached(thread_registry *reg, void (*visit)(void *p, size_t bytes, void *arg), void *arg);

/* Adds bytes and blocks (modulo 2^64: pass (size_t)-n to take n away) to
 * the owner's share of the large-block counts; the owner, inside its
 * section. */
static inline void thread_count_large(thread_cache *tc, size_t bytes, size_t blocks) {
  atomic_store_explicit(&tc->large_bytes, atomic_load_explicit(&tc->large_bytes, memory_order_relaxed) + bytes,
                        memory_order_relaxed);
  atomic_store_explicit(&tc->large_blocks, atomic_load_explicit(&tc->large_blocks, memory_order_relaxed) + blocks,
                        memory_order_relaxed);
}

/* Adds bytes (modulo 2^64) to the cache's small_bytes; the owner inside
 * its section, or the thief that holds the cache. */
static inline void thread_count_small(thread_cache *tc, size_t bytes) {
  atomic_store_explicit(&tc->small_bytes, atomic_load_explicit(&tc->small_bytes, memory_order_relaxed) + bytes,
                        memory_order_relaxed);
}

/* A free of p, of bin b, an object of the arena of slot owner, not the
 * cache's (tc->owner): onto the cache's chain of b (inbound.h), which goes
 * to the owner's list when full or when owner differs from its own (under
 * the registry's free_mark, for objects of INBOUND_MIN_BYTES or more);
 * else to the cache's remote tcache, marked as a drain marks it, for
 * jemalloc to hand back to its arena in a batch. Out of the cache's
 * small_bytes either way. The caller is inside tc. */
static inline void thread_give_remote(thread_cache *tc, unsigned b, void *p, unsigned owner) {
  inbound_chain *c = &tc->chains[b];
  /* A chain of p's owner (so the heap's keyed objects of that size) that
   * p does not fill. */
  if (PH_LIKELY(c->owner == owner && c->count - 1u < INBOUND_CHAIN_MAX - 2u)) {
    inbound_add(c, p, owner, tc->registry->free_mark);
    thread_count_small(tc, (size_t)0 - tc->registry->classes->size[b]);
    return;
  }
  thread_give_remote_rest(tc, b, p, owner);
}

/* Whether the page map (reg->pm) says an object of bin b of the arena of
 * slot owner starts at p, whatever p is. */
static inline bool thread_object_of(const thread_registry *reg, const void *p, unsigned b, unsigned owner) {
  _Atomic uint32_t *slot = pagemap_slot(reg->pm, p);
  if (!slot) return false;
  uint32_t tag = atomic_load_explicit(slot, memory_order_relaxed);
  return PAGEMAP_BIN_OF(tag) == (int)b && PAGEMAP_OWNER_OF(tag) == owner &&
         sizeclass_starts(reg->classes, b, p, PAGEMAP_PHASE_OF(tag));
}

/* Whether the object p of bin b, on a chain or list of the arena of slot
 * owner, still holds the registry's free_mark and links to NULL or to the
 * start of an object of bin b of that arena (next: its link). A freed
 * object is the program's to spoil: a write after its free, or a second
 * free of it by another thread (key.h cannot always catch that one), may
 * have overwritten either word. */
static inline bool thread_link_ok(const thread_registry *reg, const void *p, const void *next, unsigned b,
                                  unsigned owner) {
  uint64_t mark;
  memcpy(&mark, p, sizeof mark);
  return mark == util_mark_at(reg->free_mark, p) && (!next || thread_object_of(reg, next, b, owner));
}

/* Aborts, naming p and what its bytes hold. */
_Noreturn void thread_link_broken(const thread_registry *reg, const void *p, const void *next, unsigned b,
                                  unsigned owner);

/* The link of the object p of bin b on a chain or list of the arena of
 * slot owner, once thread_link_ok; else aborts (thread_link_broken), so
 * that no malloc returns, and no drain hands to jemalloc, what a faulty
 * program wrote there. */
static inline void *thread_link_next(const thread_registry *reg, void *p, unsigned b, unsigned owner) {
  void *next = inbound_next(p);
  if (PH_UNLIKELY(!thread_link_ok(reg, p, next, b, owner))) thread_link_broken(reg, p, next, b, owner);
  return next;
}

/* The next object of bin b the cache's arena got back from other threads:
 * the front of tc->taken[b], else of the whole list of b given back to
 * the cache's arena, taken off it (its rest into taken[b]); NULL when both
 * are empty (the link to the rest checked: thread_link_next). The object
 * is the caller's, counted in the cache's small_bytes, its first bytes
 * still holding the registry's free_mark. The caller is inside tc. */
static inline void *thread_inbound_take(thread_cache *tc, unsigned b) {
  void *p = tc->taken[b];
  if (!p && !(p = inbound_take(&tc->registry->inbound, tc->owner, b))) return NULL;
  void *next = thread_link_next(tc->registry, p, b, tc->owner);
  /* The next object's line is likely another core's: fetched meanwhile. */
  if (next) __builtin_prefetch(next, 1);
  tc->taken[b] = next;
  thread_count_small(tc, tc->registry->classes->size[b]);
  return p;
}

/* thread_fifo_push on the cache's FIFO of held-back objects, counting its
 * bytes (held_bytes). The caller is inside tc. */
static inline bool thread_hold(thread_cache *tc, void *p, unsigned b, void **out, unsigned *out_bin) {
  const uint32_t *size = tc->registry->classes->size;
  bool evicted = thread_fifo_push(&tc->held, p, b, out, out_bin);
  size_t bytes = atomic_load_explicit(&tc->held_bytes, memory_order_relaxed) + size[b];
  atomic_store_explicit(&tc->held_bytes, evicted ? bytes - size[*out_bin] : bytes, memory_order_relaxed);
  return evicted;
}

/* The sum of every share of small_bytes, those of released caches
 * included (bytes of jemalloc's objects out of jemalloc through a cache);
 * into *held, the bytes of the objects the stacks and FIFOs hold. Takes
 * the registry's lock, not the caches: exact while no thread is inside a
 * call that moves objects, else off by what other threads move while it
 * reads; a cache takes an object out of its share only once it is off the
 * stack, so that the difference errs upwards as a cache empties. */
size_t thread_sum_small(thread_registry *reg, size_t *held);

/* The sum of every share of the large-block counts, those of released
 * caches included, into *bytes and *blocks; exact while no thread
 * allocates. */
void thread_sum_large(thread_registry *reg, size_t *bytes, size_t *blocks);

/* Bytes of extents the caches hold; meaningful while no thread allocates. */
size_t thread_cached_extent_bytes(thread_registry *reg);

/* Calls visit on every object of the caches' chains, taken lists and the
 * inbound lists, with its bin and the slot of the arena it goes back to,
 * each link checked before it is followed (thread_link_next: a spoiled one
 * aborts), under the registry's lock; every cache is held meanwhile, as a
 * flush holds them, so that its owner changes none of them (the caller's
 * own, which it may be inside, but for). */
void thread_walk_remote(thread_registry *reg, void (*visit)(void *p, unsigned bin, unsigned owner, void *arg),
                        void *arg);

/* Number of broken invariants, read while every other thread's cache is
 * held as a flush holds it (the caller may be inside its own). */
int thread_check(thread_registry *reg);

#endif
