#include "thread.h"

#include <errno.h>
#include <jemalloc/jemalloc.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "error.h"
#include "pagemap.h"

bool thread_asymmetric;
_Thread_local thread_last_used thread_last __attribute__((tls_model("initial-exec")));
/* Set when the thread's exit tore down one of its caches: from then on it
 * gets no new one, which no destructor would be left to tear down. */
static _Thread_local bool thread_exiting __attribute__((tls_model("initial-exec")));
static _Atomic uint64_t thread_next_id = 1;
static pthread_once_t thread_once = PTHREAD_ONCE_INIT;

static void thread_detect_membarrier(void) {
  long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return;
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0) thread_asymmetric = true;
}

static void thread_heavy_fence(void) {
  if (!thread_asymmetric) {
    atomic_thread_fence(memory_order_seq_cst);
    return;
  }
  /* The owners' side relies on this barrier: without it the handshake is
   * unsound, and going on could hand one object to two threads. */
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
    error_fatal("membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed after registration succeeded");
}

/* Hands the object p of bin b, off the cache's stacks, to jemalloc with
 * flags (a tcache of the cache's), marked. The caller takes it out of the
 * cache's small_bytes once it is off the stack, so that a reader of the
 * stats meanwhile counts it once or twice, never not at all. */
static void thread_object_give(thread_registry *reg, void *p, unsigned b, int flags) {
  if (reg->free_mark) util_mark(p, reg->free_mark);
  sdallocx(p, reg->classes->size[b], flags);
}

void thread_link_broken(const thread_registry *reg, const void *p, const void *next, unsigned b, unsigned owner) {
  uint64_t mark;
  memcpy(&mark, p, sizeof mark);
  bool still = mark == util_mark_at(reg->free_mark, p);
  error_fatal("freed object %p (%u bytes, going back to arena slot %u) was written after its free, or freed twice "
              "by two threads: its first 8 bytes hold %#llx (%s the heap's mark of a freed object), its link %p (%s)",
              p, reg->classes->size[b], owner, (unsigned long long)mark, still ? "still" : "not", next,
              still ? "no object of its size of that arena" : "not followed");
}

/* Hands the list p (bin b, of slot owner) to jemalloc with flags, each link checked before it is followed. */
static void thread_list_give(thread_registry *reg, void *p, unsigned b, unsigned owner, int flags) {
  while (p) {
    void *next = thread_link_next(reg, p, b, owner);
    sdallocx(p, reg->classes->size[b], flags);
    p = next;
  }
}

/* Every list given back to the arena of slot owner, to jemalloc with flags. */
static void thread_inbound_drain(thread_registry *reg, unsigned owner, int flags) {
  for (unsigned b = 0; reg->classes && b < reg->classes->nbins; b++)
    thread_list_give(reg, inbound_take(&reg->inbound, owner, b), b, owner, flags);
}

/* The chain c of bin b onto its owner's list; a list past INBOUND_LIST_BYTES
 * (its owner takes none of it) goes to jemalloc whole, by the remote tcache. */
static void thread_chain_push(thread_cache *tc, inbound_chain *c, unsigned b) {
  thread_registry *reg = tc->registry;
  unsigned owner = c->owner;
  size_t most = INBOUND_LIST_BYTES / reg->classes->size[b];
  if (inbound_push(&reg->inbound, c, b) > (most > 4 * INBOUND_CHAIN_MAX ? most : 4 * INBOUND_CHAIN_MAX))
    thread_list_give(reg, inbound_take(&reg->inbound, owner, b), b, owner, tc->remote_flags);
}

void thread_give_remote_rest(thread_cache *tc, unsigned b, void *p, unsigned owner) {
  thread_registry *reg = tc->registry;
  size_t size = reg->classes->size[b];
  if (!reg->free_mark || size < INBOUND_MIN_BYTES) {
    thread_object_give(reg, p, b, tc->remote_flags);
  } else {
    inbound_chain *c = &tc->chains[b];
    if (c->count && c->owner != owner) thread_chain_push(tc, c, b);
    if (inbound_add(c, p, owner, reg->free_mark)) thread_chain_push(tc, c, b);
  }
  thread_count_small(tc, (size_t)0 - size);
}

unsigned thread_refill(thread_cache *tc, unsigned b, void **out) {
  thread_registry *reg = tc->registry;
  struct {
    void **ptrs;
    size_t num;
    size_t size;
    int flags;
  } in = {out, tc->fill[b], reg->classes->size[b], tc->alloc_flags};
  if (!in.num) {
    tc->fill[b] = THREAD_REFILL_START;
    return 0;
  }
  if (in.num > reg->refill[b]) in.num = reg->refill[b];
  tc->fill[b] = (uint8_t)(in.num * 2 < reg->refill[b] ? in.num * 2 : reg->refill[b]);
  /* One for the caller, the others onto the empty stack, up to half its
   * length: the frees that follow find room before it spills. */
  if (in.num > tc->bins[b].limit / 2 + 1) in.num = tc->bins[b].limit / 2 + 1;
  size_t filled = 0, sz = sizeof filled;
  if (!in.num || mallctlbymib(reg->batch_mib, reg->batch_mib_len, &filled, &sz, &in, sizeof in) != 0) return 0;
  thread_count_small(tc, filled * in.size);
  return (unsigned)filled;
}

/* jemalloc's tcache.flush or tcache.destroy (what) of both of tc's tcaches. */
static void thread_tcaches(thread_cache *tc, const char *what) {
  mallctl(what, NULL, NULL, &tc->tcache, sizeof tc->tcache);
  mallctl(what, NULL, NULL, &tc->remote, sizeof tc->remote);
}

/* The length a stack of objects of cap slots starts at, and goes back to. */
static uint32_t thread_bin_start(uint32_t cap) { return cap < THREAD_BIN_START ? cap : THREAD_BIN_START; }

void thread_bin_spill(thread_cache *tc, unsigned b, void *p) {
  thread_bin *bin = &tc->bins[b];
  PH_ASSERT(bin->count == bin->limit);
  if (bin->limit < bin->cap) {
    bin->limit = bin->limit < bin->cap / 2 ? bin->limit * 2 : bin->cap;
  } else {
    uint32_t half = thread_bin_older(bin);
    for (uint32_t i = 0; i < half; i++) thread_object_give(tc->registry, bin->slots[i], b, tc->free_flags);
    thread_bin_drop_older(bin);
    thread_count_small(tc, (size_t)0 - (size_t)half * tc->registry->classes->size[b]);
  }
  bin->slots[bin->count] = p;
  thread_bin_set_count(bin, bin->count + 1);
}

/* Hands the objects of the cache's free lists to its tcache and its extents
 * to the extent manager, and shrinks its stacks back. The caller has the
 * cache to itself. */
static void thread_cache_drain(thread_registry *reg, thread_cache *tc) {
  for (unsigned b = 0; b < SIZECLASS_MAX_BINS; b++) {
    thread_bin *bin = &tc->bins[b];
    for (uint32_t n = bin->count; n; n--) {
      thread_object_give(reg, bin->slots[n - 1], b, tc->free_flags);
      thread_bin_set_count(bin, n - 1);
      thread_count_small(tc, (size_t)0 - reg->classes->size[b]);
    }
    bin->limit = thread_bin_start(bin->cap);
    tc->fill[b] = 0;
    /* Into the remote tcache, which the caller flushes or destroys next. */
    thread_list_give(reg, tc->chains[b].head, b, tc->chains[b].owner, tc->remote_flags);
    tc->chains[b] = (inbound_chain){NULL, NULL, 0, 0};
    thread_list_give(reg, tc->taken[b], b, tc->owner, tc->free_flags);
    tc->taken[b] = NULL;
  }
  size_t held = atomic_load_explicit(&tc->held_bytes, memory_order_relaxed);
  for (; tc->held.count; tc->held.count--) {
    dallocx(tc->held.slots[tc->held.head], tc->free_flags);
    tc->held.head = tc->held.head + 1 == tc->held.limit ? 0 : tc->held.head + 1;
  }
  atomic_store_explicit(&tc->held_bytes, 0, memory_order_relaxed);
  thread_count_small(tc, (size_t)0 - held);
  if (reg->release_extent) xcache_drain(&tc->extents, reg->release_extent, reg->release_ctx);
  tc->contended = 0;
  tc->contended_renew = false;
  if (reg->drain_front) reg->drain_front(reg->front_ctx, tc->tcache);
}

/* Lock held; the cache is off every other thread's hands and drained, or its
 * heap is going away with everything in it. */
static void thread_cache_release(thread_registry *reg, thread_cache *tc) {
  if (tc->prev)
    tc->prev->next = tc->next;
  else
    reg->head = tc->next;
  if (tc->next) tc->next->prev = tc->prev;
  reg->large_bytes_left += atomic_load_explicit(&tc->large_bytes, memory_order_relaxed);
  reg->large_blocks_left += atomic_load_explicit(&tc->large_blocks, memory_order_relaxed);
  reg->small_bytes_left += atomic_load_explicit(&tc->small_bytes, memory_order_relaxed);
  thread_tcaches(tc, "tcache.destroy");
  if (tc->slot_memory) munmap(tc->slot_memory, tc->slot_bytes);
  meta_free(&reg->pool, tc);
}

static void thread_exit(void *arg) {
  thread_cache *tc = arg;
  thread_exiting = true;
  if (thread_last.tc == tc) thread_last = (thread_last_used){0, NULL};
  thread_registry *reg = tc->registry;
  pthread_mutex_lock(&reg->lock);
  thread_cache_drain(reg, tc);
  /* What other threads gave back to its arena, so that no object waits for
   * a thread of that arena that may never come (its tcache is flushed or
   * destroyed next). */
  thread_inbound_drain(reg, tc->owner, tc->free_flags);
  if (reg->idle_count < THREAD_IDLE_MAX) {
    /* Kept for the next new thread, holding nothing. */
    thread_tcaches(tc, "tcache.flush");
    tc->idle = true;
    tc->next_idle = reg->idle;
    reg->idle = tc;
    reg->idle_count++;
  } else {
    thread_cache_release(reg, tc);
  }
  pthread_mutex_unlock(&reg->lock);
}

int thread_registry_init(thread_registry *reg, const sizeclass *classes, size_t page,
                         void (*release_extent)(void *ctx, void *addr, size_t bytes), void *release_ctx,
                         unsigned (*arena_for)(void *ctx, unsigned *slot), void *arena_ctx) {
  pthread_once(&thread_once, thread_detect_membarrier);
  memset(reg, 0, sizeof *reg); /* no cache, no hooks, no counts yet */
  reg->page = page;
  reg->release_extent = release_extent;
  reg->release_ctx = release_ctx;
  reg->id = atomic_fetch_add(&thread_next_id, 1);
  reg->classes = classes;
  reg->arena_for = arena_for;
  reg->arena_ctx = arena_ctx;
  reg->batch_mib_len = sizeof reg->batch_mib / sizeof reg->batch_mib[0];
  if (mallctlnametomib("experimental.batch_alloc", reg->batch_mib, &reg->batch_mib_len) != 0) reg->batch_mib_len = 0;
  for (unsigned b = 0; b < SIZECLASS_MAX_BINS; b++) {
    char name[48];
    uint32_t nregs = 0;
    size_t sz = sizeof nregs;
    snprintf(name, sizeof name, "arenas.bin.%u.nregs", b);
    if (reg->batch_mib_len && classes && b < classes->nbins && mallctl(name, &nregs, &sz, NULL, 0) == 0 && nregs > 1)
      reg->refill[b] = (uint8_t)(nregs - 1 < THREAD_REFILL_MAX ? nregs - 1 : THREAD_REFILL_MAX);
  }
  inbound_init(&reg->inbound);
  meta_init(&reg->pool, sizeof(thread_cache));
  if (pthread_mutex_init(&reg->lock, NULL) != 0) return -1;
  if (pthread_key_create(&reg->key, thread_exit) != 0) {
    pthread_mutex_destroy(&reg->lock);
    return -1;
  }
  return 0;
}

void thread_registry_fini(thread_registry *reg) {
  pthread_key_delete(reg->key);
  pthread_mutex_lock(&reg->lock);
  while (reg->head) thread_cache_release(reg, reg->head);
  pthread_mutex_unlock(&reg->lock);
  pthread_mutex_destroy(&reg->lock);
  meta_fini(&reg->pool);
}

/* An idle cache, taken for the calling thread; NULL when there is none. */
static thread_cache *thread_cache_adopt(thread_registry *reg) {
  pthread_mutex_lock(&reg->lock);
  thread_cache *tc = reg->idle;
  if (tc) {
    reg->idle = tc->next_idle;
    reg->idle_count--;
    tc->next_idle = NULL;
    tc->idle = false;
  }
  pthread_mutex_unlock(&reg->lock);
  if (tc) pthread_setspecific(reg->key, tc);
  return tc;
}

static thread_cache *thread_cache_create(thread_registry *reg) {
  thread_cache *idle = thread_cache_adopt(reg);
  if (idle) return idle;
  unsigned owner;
  unsigned arena = reg->arena_for(reg->arena_ctx, &owner);
  unsigned id, remote;
  size_t sz = sizeof id;
  int err = mallctl("tcache.create", &id, &sz, NULL, 0);
  if (!err && (err = mallctl("tcache.create", &remote, &sz, NULL, 0)) != 0)
    mallctl("tcache.destroy", NULL, NULL, &id, sizeof id);
  if (err) {
    error_set(ENOMEM, "cannot create a thread cache: tcache.create: error %d", err);
    return NULL;
  }
  pthread_mutex_lock(&reg->lock);
  thread_cache *tc = meta_alloc(&reg->pool);
  if (!tc) {
    pthread_mutex_unlock(&reg->lock);
    mallctl("tcache.destroy", NULL, NULL, &id, sizeof id);
    mallctl("tcache.destroy", NULL, NULL, &remote, sizeof remote);
    error_set(ENOMEM, "cannot create a thread cache: no memory for its record");
    return NULL;
  }
  tc->arena = arena;
  tc->owner = owner;
  tc->tcache = id;
  tc->remote = remote;
  tc->alloc_flags = (int)(MALLOCX_ARENA(tc->arena) | MALLOCX_TCACHE(id));
  tc->free_flags = (int)MALLOCX_TCACHE(id);
  tc->remote_flags = (int)MALLOCX_TCACHE(remote);
  tc->registry = reg;
  size_t slots = 0;
  for (unsigned b = 0; reg->classes && b < reg->classes->nbins; b++) {
    uint32_t cap = THREAD_BIN_BYTES / reg->classes->size[b];
    tc->bins[b].cap = cap < 4 ? 4 : cap > THREAD_BIN_MAX ? THREAD_BIN_MAX : cap;
    tc->bins[b].limit = thread_bin_start(tc->bins[b].cap);
    slots += tc->bins[b].cap;
  }
  xcache_init(&tc->extents, reg->page);
  tc->held.limit = reg->hold;
  slots += reg->hold;
  if (slots) {
    /* The FIFO's bin numbers after every stack's slots. */
    tc->slot_bytes = slots * sizeof(void *) + reg->hold;
    void *mem = mmap(NULL, tc->slot_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
      thread_tcaches(tc, "tcache.destroy");
      meta_free(&reg->pool, tc);
      pthread_mutex_unlock(&reg->lock);
      error_set(ENOMEM, "cannot create a thread cache: no memory for its free lists");
      return NULL;
    }
    tc->slot_memory = mem;
    size_t used = 0;
    for (unsigned b = 0; b < SIZECLASS_MAX_BINS; used += tc->bins[b].cap, b++) tc->bins[b].slots = tc->slot_memory + used;
    tc->held.slots = tc->slot_memory + used;
    tc->held.bins = (uint8_t *)(tc->slot_memory + used + reg->hold);
  }
  tc->next = reg->head;
  if (reg->head) reg->head->prev = tc;
  reg->head = tc;
  pthread_mutex_unlock(&reg->lock);
  pthread_setspecific(reg->key, tc);
  return tc;
}

thread_cache *thread_enter_slow(thread_registry *reg) {
  for (;;) {
    thread_cache *tc = pthread_getspecific(reg->key);
    if (!tc) {
      if (thread_exiting) return NULL;
      tc = thread_cache_create(reg);
      if (!tc) return NULL;
    }
    thread_last = (thread_last_used){reg->id, tc};
    atomic_store_explicit(&tc->busy, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&tc->stolen, memory_order_acquire)) return tc;
    /* A thief holds the cache: step aside until it is done. */
    atomic_store_explicit(&tc->busy, 0, memory_order_release);
    while (atomic_load_explicit(&tc->stolen, memory_order_acquire)) sched_yield();
  }
}

/* The thief's side of the handshake over every cache but mine (the caller's, which it may be inside;
 * NULL: none), lock held: on return no other owner is inside its cache, nor enters until unstolen. */
static void thread_steal_all(thread_registry *reg, const thread_cache *mine) {
  for (thread_cache *tc = reg->head; tc; tc = tc->next)
    atomic_store_explicit(&tc->stolen, tc != mine, memory_order_relaxed);
  thread_heavy_fence();
  for (thread_cache *tc = reg->head; tc; tc = tc->next)
    while (tc != mine && atomic_load_explicit(&tc->busy, memory_order_acquire)) sched_yield();
}

static void thread_unsteal_all(thread_registry *reg) {
  for (thread_cache *tc = reg->head; tc; tc = tc->next) atomic_store_explicit(&tc->stolen, 0, memory_order_release);
}

/* Takes the lock and steals every cache, and returns so; drain: empties them and the inbound lists (none is
 * entered, so none pushes nor takes). Then flushes their jemalloc tcaches: none may cross a fork alive (thread.h). */
static void thread_steal_flush(thread_registry *reg, bool drain) {
  pthread_mutex_lock(&reg->lock);
  thread_steal_all(reg, NULL);
  for (thread_cache *tc = reg->head; drain && tc; tc = tc->next) thread_cache_drain(reg, tc);
  for (unsigned o = 0; drain && o < PAGEMAP_OWNERS; o++) thread_inbound_drain(reg, o, MALLOCX_TCACHE_NONE);
  for (thread_cache *tc = reg->head; tc; tc = tc->next) thread_tcaches(tc, "tcache.flush");
}

void thread_flush_all(thread_registry *reg) {
  thread_steal_flush(reg, true);
  thread_fork_parent(reg); /* the caches handed back, the lock let go, as after a fork */
}

void thread_fork_prepare(thread_registry *reg) { thread_steal_flush(reg, false); }

void thread_fork_parent(thread_registry *reg) {
  thread_unsteal_all(reg);
  pthread_mutex_unlock(&reg->lock);
}

void thread_fork_child(thread_registry *reg) {
  thread_cache *mine = pthread_getspecific(reg->key);
  /* The idle caches go too: they are no thread's, and hold nothing. */
  reg->idle = NULL;
  reg->idle_count = 0;
  for (thread_cache *tc = reg->head, *next; tc; tc = next) {
    next = tc->next;
    /* A thread stepping aside from a stolen cache may have left busy set. */
    atomic_store_explicit(&tc->busy, 0, memory_order_relaxed);
    atomic_store_explicit(&tc->stolen, 0, memory_order_relaxed);
    if (tc == mine) continue;
    thread_cache_drain(reg, tc);
    thread_cache_release(reg, tc);
  }
  pthread_mutex_unlock(&reg->lock);
}

/* Calls visit on every object of the list p (bin b, of slot owner), each
 * link checked before it is followed; its last object (NULL: none). */
static void *thread_list_walk(thread_registry *reg, void *p, unsigned b, unsigned owner,
                              void (*visit)(void *p, unsigned bin, unsigned owner, void *arg), void *arg) {
  void *last = NULL;
  for (; p; p = thread_link_next(reg, p, b, owner)) {
    visit(p, b, owner, arg);
    last = p;
  }
  return last;
}

void thread_walk_remote(thread_registry *reg, void (*visit)(void *p, unsigned bin, unsigned owner, void *arg),
                        void *arg) {
  pthread_mutex_lock(&reg->lock);
  thread_steal_all(reg, pthread_getspecific(reg->key)); /* the chains and taken lists held still */
  for (thread_cache *tc = reg->head; tc; tc = tc->next)
    for (unsigned b = 0; b < SIZECLASS_MAX_BINS; b++) {
      thread_list_walk(reg, tc->chains[b].head, b, tc->chains[b].owner, visit, arg);
      thread_list_walk(reg, tc->taken[b], b, tc->owner, visit, arg);
    }
  thread_unsteal_all(reg);
  /* Each shared list taken off, so that no thread reuses what the walk
   * follows, and put back whole; others push and take meanwhile. */
  for (unsigned o = 0; o < INBOUND_OWNERS; o++)
    for (unsigned b = 0; reg->classes && b < reg->classes->nbins; b++) {
      uint32_t n = inbound_count(&reg->inbound, o, b); /* as it was: the walk counts for no push */
      void *head = inbound_take(&reg->inbound, o, b);
      if (head) inbound_put_back(&reg->inbound, o, b, head, thread_list_walk(reg, head, b, o, visit, arg), n);
    }
  pthread_mutex_unlock(&reg->lock);
}

/* thread_walk_cached's visit, called by thread_walk_remote with the bin. */
typedef struct thread_sized {
  thread_registry *reg;
  void (*visit)(void *p, size_t bytes, void *arg);
  void *arg;
} thread_sized;

static void thread_visit_sized(void *p, unsigned bin, unsigned owner, void *arg) {
  (void)owner;
  thread_sized *s = arg;
  s->visit(p, s->reg->classes->size[bin], s->arg);
}

void thread_walk_cached(thread_registry *reg, void (*visit)(void *p, size_t bytes, void *arg), void *arg) {
  pthread_mutex_lock(&reg->lock);
  for (thread_cache *tc = reg->head; tc; tc = tc->next) {
    for (unsigned b = 0; reg->classes && b < reg->classes->nbins; b++)
      for (uint32_t i = 0; i < tc->bins[b].count; i++) visit(tc->bins[b].slots[i], reg->classes->size[b], arg);
    xcache_walk(&tc->extents, visit, arg);
    for (uint32_t i = 0, at = tc->held.head; i < tc->held.count; i++, at = at + 1 == tc->held.limit ? 0 : at + 1)
      visit(tc->held.slots[at], reg->classes ? reg->classes->size[tc->held.bins[at]] : 0, arg);
  }
  pthread_mutex_unlock(&reg->lock);
  thread_sized sized = {reg, visit, arg};
  thread_walk_remote(reg, thread_visit_sized, &sized);
}

void thread_sum_large(thread_registry *reg, size_t *bytes, size_t *blocks) {
  pthread_mutex_lock(&reg->lock);
  *bytes = reg->large_bytes_left;
  *blocks = reg->large_blocks_left;
  for (thread_cache *tc = reg->head; tc; tc = tc->next) {
    *bytes += atomic_load_explicit(&tc->large_bytes, memory_order_relaxed);
    *blocks += atomic_load_explicit(&tc->large_blocks, memory_order_relaxed);
  }
  pthread_mutex_unlock(&reg->lock);
}

size_t thread_sum_small(thread_registry *reg, size_t *held) {
  pthread_mutex_lock(&reg->lock);
  size_t bytes = reg->small_bytes_left;
  *held = 0;
  for (thread_cache *tc = reg->head; tc; tc = tc->next) {
    bytes += atomic_load_explicit(&tc->small_bytes, memory_order_relaxed);
    *held += atomic_load_explicit(&tc->held_bytes, memory_order_relaxed);
    for (unsigned b = 0; reg->classes && b < reg->classes->nbins; b++)
      *held += (size_t)thread_bin_load_count(&tc->bins[b]) * reg->classes->size[b];
  }
  pthread_mutex_unlock(&reg->lock);
  return bytes;
}

size_t thread_cached_extent_bytes(thread_registry *reg) {
  size_t bytes = 0;
  pthread_mutex_lock(&reg->lock);
  for (thread_cache *tc = reg->head; tc; tc = tc->next)
    bytes += tc->extents.bytes;
  pthread_mutex_unlock(&reg->lock);
  return bytes;
}

size_t thread_count(thread_registry *reg) {
  pthread_mutex_lock(&reg->lock);
  size_t n = reg->pool.live - reg->idle_count;
  pthread_mutex_unlock(&reg->lock);
  return n;
}

/* Number of broken invariants of tc's chain of bin b (links: thread_walk_remote). */
static int thread_chain_check(const thread_registry *reg, const thread_cache *tc, unsigned b) {
  const inbound_chain *c = &tc->chains[b];
  int broken = inbound_chain_check(c);
  if (c->count && (c->owner == tc->owner || c->owner >= PAGEMAP_OWNERS || !reg->free_mark || !reg->classes ||
                   reg->classes->size[b] < INBOUND_MIN_BYTES)) {
    fprintf(stderr, "thread: a chain of bin %u goes to arena slot %u (the cache's %u), marked %s\n", b, c->owner,
            tc->owner, reg->free_mark ? "yes" : "no");
    broken++;
  }
  return broken;
}

int thread_check(thread_registry *reg) {
  int broken = 0;
  pthread_mutex_lock(&reg->lock);
  size_t n = 0, idle = 0;
  for (thread_cache *tc = reg->head; tc; tc = tc->next)
    if (atomic_load(&tc->stolen)) {
      fprintf(stderr, "thread: no cache should stay stolen outside a flush\n");
      broken++;
    }
  thread_steal_all(reg, pthread_getspecific(reg->key)); /* the others held still while read, as a flush holds them */
  for (thread_cache *tc = reg->head; tc; tc = tc->next) {
    n++;
    if (tc->next && tc->next->prev != tc) {
      fprintf(stderr, "thread: list links should agree\n");
      broken++;
    }
    if (tc->owner >= PAGEMAP_OWNERS) {
      fprintf(stderr, "thread: a cache's arena slot %u should be below %u\n", tc->owner, PAGEMAP_OWNERS);
      broken++;
    }
    broken += xcache_check(&tc->extents);
    if (!reg->release_extent && tc->extents.count) {
      fprintf(stderr, "thread: a registry without extent caches should cache no extent\n");
      broken++;
    }
    if (tc->held.count > tc->held.limit || tc->held.limit != reg->hold ||
        (tc->held.limit && tc->held.head >= tc->held.limit)) {
      fprintf(stderr, "thread: held-back FIFO of %u entries from %u, limit %u (the registry's %u)\n", tc->held.count,
              tc->held.head, tc->held.limit, reg->hold);
      broken++;
    }
    unsigned held = tc->held.count;
    for (unsigned b = 0; b < SIZECLASS_MAX_BINS; b++) {
      const thread_bin *bin = &tc->bins[b];
      held += bin->count + tc->chains[b].count + (tc->taken[b] != NULL);
      broken += thread_chain_check(reg, tc, b);
      if (tc->fill[b] > (reg->refill[b] > THREAD_REFILL_START ? reg->refill[b] : THREAD_REFILL_START)) {
        fprintf(stderr, "thread: bin %u's next refill takes %u objects, more than %u\n", b, tc->fill[b], reg->refill[b]);
        broken++;
      }
      if (bin->count > bin->limit || bin->limit > bin->cap ||
          (reg->classes && b < reg->classes->nbins && bin->cap * reg->classes->size[b] > THREAD_BIN_BYTES &&
           bin->cap > 4)) {
        fprintf(stderr, "thread: free list of bin %u holds %u objects, limit %u, cap %u (of 64 KiB at most)\n", b,
                bin->count, bin->limit, bin->cap);
        broken++;
      }
    }
    held += tc->extents.count;
    if (tc->idle && (held || atomic_load(&tc->busy))) {
      fprintf(stderr, "thread: an idle cache holds %u objects and extents, busy %d\n", held, atomic_load(&tc->busy));
      broken++;
    }
    idle += tc->idle;
  }
  unsigned listed = 0;
  for (thread_cache *tc = reg->idle; tc && listed <= reg->idle_count; tc = tc->next_idle) {
    listed++;
    if (!tc->idle) {
      fprintf(stderr, "thread: a cache on the idle list is not marked idle\n");
      broken++;
    }
  }
  if (idle != reg->idle_count || listed != reg->idle_count || reg->idle_count > THREAD_IDLE_MAX) {
    fprintf(stderr, "thread: %zu caches marked idle, %u on the idle list, %u counted (at most %u)\n", idle, listed,
            reg->idle_count, THREAD_IDLE_MAX);
    broken++;
  }
  if (n != reg->pool.live) {
    fprintf(stderr, "thread: %zu caches listed, %zu records live\n", n, reg->pool.live);
    broken++;
  }
  broken += meta_check(&reg->pool);
  thread_unsteal_all(reg);
  pthread_mutex_unlock(&reg->lock);
  return broken;
}
