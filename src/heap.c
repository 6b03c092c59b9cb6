#include "heap.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include "debug.h"
#include "error.h"
#include "fork.h"
#include "report.h"
#include "util.h"

#define HEAP_DEFAULT_LARGE_THRESHOLD ((size_t)14 << 10)
#define HEAP_DEFAULT_SMALL_EXTENT_MAX ((size_t)4 << 20)
#define HEAP_DEFAULT_CHUNK_SIZE ((size_t)64 << 20)
#define HEAP_DEFAULT_DIRECT_THRESHOLD ((size_t)8 << 20)
#define HEAP_DEFAULT_QUARANTINE ((size_t)256 << 20)
/* Regions start on a 2 MiB boundary: huge pages, and jemalloc asks for 2 MiB
 * aligned blocks for its metadata. */
#define HEAP_REGION_ALIGN ((size_t)2 << 20)
/* Freed small objects each thread holds back with the debugging aids. */
#define HEAP_HOLD 256u

PH_EXPORT void pinheap_options_init(pinheap_options *opts) {
  if (!opts) return;
  memset(opts, 0, sizeof *opts);
  opts->mode = PINHEAP_FIXED;
  opts->size = 0;
  opts->policy = PINHEAP_POLICY_TWO_ENDED;
  opts->large_threshold = HEAP_DEFAULT_LARGE_THRESHOLD;
  opts->small_extent_max = HEAP_DEFAULT_SMALL_EXTENT_MAX;
  opts->arenas = 0;
  opts->chunk_size = HEAP_DEFAULT_CHUNK_SIZE;
  opts->direct_threshold = HEAP_DEFAULT_DIRECT_THRESHOLD;
  opts->quarantine = HEAP_DEFAULT_QUARANTINE;
}

static bool heap_fixed(const pinheap *h) { return h->opts.mode == PINHEAP_FIXED; }
/* DYNAMIC, and SIMPLE: a DYNAMIC heap over ordinary memory that registers
 * nothing (chunks and direct blocks, dynamic.h). */
static bool heap_dynamic(const pinheap *h) { return h->opts.mode != PINHEAP_FIXED; }

static void heap_release_extent(void *ctx, void *p, size_t bytes);
static void heap_give_back(pinheap *h, void *p, size_t bytes, const char *what);
static _Noreturn void heap_foreign(const pinheap *h, const void *p, const char *what, const char *why);

/* Double frees of small objects, without the debugging aids. A freed
 * small object holds one of two random keys of the heap's in its first 8
 * bytes (every small size has them): free_key while jemalloc holds it
 * (from its free, or a thread cache's drain, until jemalloc hands it out
 * again, when the key is wiped), cached_key while a thread's cache holds
 * it, and after the cache hands it out again until the caller writes
 * there (wiping it there costs more than the rare search below). A free
 * that finds free_key is a second free; one that finds cached_key is when
 * the object is in the thread's own cache (a search of that one stack, of
 * at most 256, as glibc's tcache does; an object in another thread's
 * cache is missed, as there). Costs a load, two comparisons and a store at
 * free, to bytes the caller touches anyway; a store when jemalloc hands an
 * object out. The keys are independent: writing some bytes of an object
 * that holds cached_key never makes free_key of it, and a live object
 * holding a key by chance, one in 2^64, is not a concern. With the aids,
 * debug.c keeps its own records instead (freed blocks are poisoned). */
static PH_ALWAYS_INLINE uint64_t heap_first_word(const void *p) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
  return w;
}

static PH_ALWAYS_INLINE void heap_set_first_word(void *p, uint64_t w) { memcpy(p, &w, sizeof w); }

/* Whether the small object p of bin b, which holds w, is freed already
 * (tc: the thread's cache, or NULL). */
static bool heap_freed(const pinheap *h, const thread_cache *tc, const void *p, unsigned b, uint64_t w) {
  return w == h->free_key || (w == h->cached_key && tc && thread_bin_holds(&tc->bins[b], p));
}

/* Aborts, naming what, when the small object p of bin b is freed already. */
static PH_ALWAYS_INLINE void heap_check_key(const pinheap *h, const thread_cache *tc, const void *p, unsigned b,
                                            const char *what) {
  uint64_t w = heap_first_word(p);
  if (PH_UNLIKELY(w == h->free_key || w == h->cached_key) && heap_freed(h, tc, p, b, w))
    heap_foreign(h, p, what, "block freed already (a double free)");
}

static PH_ALWAYS_INLINE void heap_unmark(void *p) { heap_set_first_word(p, 0); }


/* Adds to the error why a DYNAMIC heap could not grow, when it could not. */
static void heap_explain(const pinheap *h) {
  if (heap_dynamic(h) && *dynamic_refusal()) error_append("; %s", dynamic_refusal());
}

static int heap_validate(const pinheap_options *o) {
  if (!o) {
    error_set(EINVAL, "pinheap_create: options are NULL");
    return -1;
  }
  if (o->mode != PINHEAP_SIMPLE && o->mode != PINHEAP_DYNAMIC && o->mode != PINHEAP_FIXED) {
    error_set(EINVAL, "pinheap_create: unknown mode %d", (int)o->mode);
    return -1;
  }
  if (o->mode == PINHEAP_DYNAMIC && o->size && o->size < DYNAMIC_GRANULE) {
    error_set(EINVAL, "pinheap_create: a cap of %zu bytes is below one 2 MiB chunk", o->size);
    return -1;
  }
  if (o->mode != PINHEAP_FIXED && o->policy == PINHEAP_POLICY_BUMP) {
    error_set(EINVAL, "pinheap_create: the bump policy is for FIXED heaps");
    return -1;
  }
  if (o->mode != PINHEAP_FIXED && (o->chunk_size == 0 || o->chunk_size > ((size_t)1 << 40) ||
                                    o->direct_threshold == 0)) {
    error_set(EINVAL, "pinheap_create: chunk_size (%zu) and direct_threshold (%zu) must be positive, chunks at most "
              "1 TiB", o->chunk_size, o->direct_threshold);
    return -1;
  }
  if (o->policy != PINHEAP_POLICY_TWO_ENDED && o->policy != PINHEAP_POLICY_BUMP) {
    error_set(EINVAL, "pinheap_create: unknown policy %d", (int)o->policy);
    return -1;
  }
  if (o->mode == PINHEAP_FIXED && o->size == 0) {
    error_set(EINVAL, "pinheap_create: a FIXED heap needs a size");
    return -1;
  }
  if (o->mode == PINHEAP_FIXED && o->size > ((size_t)1 << 47)) {
    error_set(EINVAL, "pinheap_create: a region of %zu bytes is larger than the address space allows", o->size);
    return -1;
  }
  if (o->large_threshold == 0 || o->small_extent_max == 0) {
    error_set(EINVAL, "pinheap_create: large_threshold and small_extent_max must be positive");
    return -1;
  }
  if (o->provider && !o->provider->obtain) {
    error_set(EINVAL, "pinheap_create: the provider has no obtain function");
    return -1;
  }
  if (o->mode == PINHEAP_FIXED && o->min_size > o->size) {
    error_set(EINVAL, "pinheap_create: min_size %zu is above size %zu", o->min_size, o->size);
    return -1;
  }
  if (o->debug & ~PINHEAP_DEBUG_ALL) {
    error_set(EINVAL, "pinheap_create: unknown debug flags %#x", o->debug & ~PINHEAP_DEBUG_ALL);
    return -1;
  }
  if (o->oom_report && (!*o->oom_report || strlen(o->oom_report) > REPORT_MAX_PATH)) {
    error_set(EINVAL, "pinheap_create: oom_report must be a path of 1 to %d bytes", REPORT_MAX_PATH);
    return -1;
  }
  if (o->arenas > HEAP_MAX_ARENAS) {
    error_set(EINVAL, "pinheap_create: %u arenas asked, at most %u", o->arenas, HEAP_MAX_ARENAS);
    return -1;
  }
  return 0;
}

PH_EXPORT int pinheap_options_check(const pinheap_options *opts) { return heap_validate(opts); }

/* What an arena takes of a FIXED region or a DYNAMIC heap's cap, for good:
 * jemalloc's metadata and the first grant it keeps, 2 MiB each (hooks.c). */
#define HEAP_ARENA_BYTES ((size_t)4 << 20)

/* The least region (or cap) a heap of arenas arenas works in: theirs, and
 * one 2 MiB extent more for what is allocated. */
static size_t heap_least_size(unsigned arenas) { return arenas * HEAP_ARENA_BYTES + ((size_t)2 << 20); }

/* How many arenas the heap may make: opts.arenas, or one per online CPU. */
static unsigned heap_arena_count(const pinheap *h) {
  if (h->opts.arenas) return h->opts.arenas;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  return n > (long)HEAP_MAX_ARENAS ? HEAP_MAX_ARENAS : (unsigned)n;
}


static int heap_check_jemalloc_page(size_t page) {
  size_t je_page = 0, sz = sizeof je_page;
  if (mallctl("arenas.page", &je_page, &sz, NULL, 0) != 0 || je_page != page) {
    error_set(ENOSYS, "pinheap_create: jemalloc's page (%zu) differs from the system's (%zu)", je_page, page);
    return -1;
  }
  return 0;
}

int heap_provider_obtain(pinheap *h, size_t size, size_t align, pinheap_region *out, const char *what) {
  const pinheap_provider *pv = h->provider;
  void *base = NULL, *handle = NULL;
  unsigned serial = error_serial();
  int err = pv->obtain(pv->ctx, size, align, &base, &handle);
  if (err == 0 && (!base || ((uintptr_t)base & (align - 1)))) {
    if (base && pv->release) pv->release(pv->ctx, base, size, handle);
    err = EINVAL;
  }
  if (err == 0) {
    *out = (pinheap_region){.base = base, .size = size, .handle = handle};
    debug_mark_defined(base, size);
    return 0;
  }
  /* A FIXED heap's one region may be EBUSY (the provider serves no other
   * now); anything else but EINVAL is a lack of memory. */
  if (err != EINVAL && !(err == EBUSY && heap_fixed(h))) err = ENOMEM;
  if (pv != &h->local || err == EINVAL) {
    /* The provider's own reason when it left one (copied: error_set
     * rewrites the buffer it lives in). */
    char why[256];
    snprintf(why, sizeof why, "%s",
             err == EINVAL                ? "it returned an address that is not aligned as asked"
             : error_serial() != serial ? pinheap_last_error()
                                          : strerror(err));
    error_set(err, "%s: provider %s cannot obtain %zu bytes: %s", what, pv->name ? pv->name : "(unnamed)", size, why);
  } else {
    errno = err;
  }
  return err;
}

void heap_provider_release(pinheap *h, const pinheap_region *r) {
  if (h->provider->release) h->provider->release(h->provider->ctx, r->base, r->size, r->handle);
}

bool heap_provider_zeroed(const pinheap *h) { return h->provider == &h->local; }

/* Obtains size bytes from the provider into h->region, retrying with sizes
 * an eighth smaller down to opts.min_size when asked to. */
static int heap_obtain_region(pinheap *h, size_t size) {
  size_t floor = util_align_up(h->opts.min_size, h->page);
  for (;;) {
    int err = heap_provider_obtain(h, size, HEAP_REGION_ALIGN, &h->region, "pinheap_create");
    if (err == 0) return 0;
    size_t next = util_align_down(size - size / 8, h->page);
    if (err != ENOMEM || floor == 0 || size <= floor || next == 0) return -1;
    size = next < floor ? floor : next;
  }
}

static void heap_release_region(pinheap *h) {
  if (!h->region.base) return;
  heap_provider_release(h, &h->region);
  h->region.base = NULL;
}

static int heap_open_region(pinheap *h) {
  const pinheap_options *o = &h->opts;
  if (heap_obtain_region(h, util_align_up(o->size, h->page)) != 0) return -1;
  size_t size = h->region.size;
  em_policy policy = o->policy == PINHEAP_POLICY_BUMP ? EM_BUMP : EM_TWO_ENDED;
  if (em_init(&h->em, policy, h->page, o->small_extent_max) != 0) {
    heap_release_region(h);
    error_set(ENOMEM, "pinheap_create: cannot set up the extent manager");
    return -1;
  }
    if (em_add_region(&h->em, h->region.base, size, heap_provider_zeroed(h)) != 0 || pagemap_init(&h->pm, h->page) != 0 ||
      pagemap_add(&h->pm, h->region.base, size, h->region.handle) != 0 ||
      hooks_shared_init(&h->grants, &h->em, &h->pm, &h->gate) != 0) {
    pagemap_fini(&h->pm);
    em_fini(&h->em);
    heap_release_region(h);
    error_set(ENOMEM, "pinheap_create: no memory for the metadata of a %zu-byte region", size);
    return -1;
  }
  return 0;
}

static void heap_close_region(pinheap *h) {
  hooks_shared_fini(&h->grants);
  pagemap_fini(&h->pm);
  em_fini(&h->em);
  heap_release_region(h);
}

static void heap_close_memory(pinheap *h) {
  if (heap_fixed(h))
    heap_close_region(h);
  else
    dynamic_close(h);
}

static void heap_destroy_arenas(pinheap *h) {
  for (unsigned i = 0; i < h->narenas; i++) hooks_arena_destroy(&h->arenas[i]);
  h->narenas = 0;
  pthread_mutex_destroy(&h->arena_lock);
}

/* The reserve's piece of arena i (heap.h). */
static char *heap_arena_piece(const pinheap *h, unsigned i) {
  return h->arena_reserve - (size_t)(i + 1) * HEAP_ARENA_BYTES;
}

/* Bytes of the reserve kept for arenas not made yet. */
static size_t heap_reserve_unused(const pinheap *h) {
  return h->arena_reserve ? (size_t)(h->arenas_max - atomic_load(&h->narenas)) * HEAP_ARENA_BYTES : 0;
}

/* Makes the next arena; arena_lock held, or the heap not yet shared. 0, or
 * -1 with the error set; then no other is made (the reserve's pieces left
 * go back to the manager). */
static int heap_add_arena(pinheap *h) {
  unsigned i = atomic_load_explicit(&h->narenas, memory_order_relaxed);
  char *piece = h->arena_reserve ? heap_arena_piece(h, i) : NULL;
  if (hooks_arena_create(&h->arenas[i], &h->grants, piece,
                         piece ? HEAP_ARENA_BYTES : 0, h->arena_reserve_pristine) != 0) {
    for (unsigned j = i + 1; h->arena_reserve && j < h->arenas_max; j++)
      em_free(&h->em, heap_arena_piece(h, j), HEAP_ARENA_BYTES);
    atomic_store(&h->arenas_max, i);
    return -1;
  }
  h->arena_index[i] = h->arenas[i].index;
  atomic_store_explicit(&h->narenas, i + 1, memory_order_release);
  return 0;
}

/* The arena of a thread's new cache: the slots taken in turn, each arena
 * made when its slot is first taken; when one cannot be made (no room
 * left), one that exists. */
static unsigned heap_arena_for(void *ctx) {
  pinheap *h = ctx;
  unsigned slot = atomic_fetch_add_explicit(&h->next_arena, 1, memory_order_relaxed) % atomic_load(&h->arenas_max);
  unsigned n = atomic_load_explicit(&h->narenas, memory_order_acquire);
  if (slot >= n) {
    int saved = errno; /* a failure here is no failure of the caller's */
    pthread_mutex_lock(&h->arena_lock);
    while ((n = atomic_load_explicit(&h->narenas, memory_order_relaxed)) <= slot && heap_add_arena(h) == 0) {
    }
    pthread_mutex_unlock(&h->arena_lock);
    errno = saved;
  }
  return h->arena_index[slot < n ? slot : slot % n];
}

/* From the kernel's random bytes for the process (no syscall), mixed with
 * the heap's address; never 0, which fresh memory holds. */
static void heap_init_free_key(pinheap *h) {
  uint64_t r[2] = {0x9E3779B97F4A7C15ull, (uintptr_t)h};
  const void *at = (const void *)getauxval(AT_RANDOM);
  if (at) memcpy(r, at, sizeof r);
  /* Independent: a caller that writes some bytes of an object handed out
   * with cached_key must not make free_key of it. */
  uint64_t mix = (uintptr_t)h * 0xBF58476D1CE4E5B9ull;
  h->free_key = (r[0] ^ mix) | 1;
  h->cached_key = (r[1] ^ (mix >> 29) ^ 0x94D049BB133111EBull) | 1;
  if (h->cached_key == h->free_key) h->cached_key ^= 2;
  /* The caches' drains mark what they hand to jemalloc; with the aids
   * nothing is marked (debug.c keeps the records), and freed small objects
   * are held back from reuse for a while (thread.h), so that a second free
   * made meanwhile finds its record saying "freed". */
  h->threads.free_mark = h->debug ? 0 : h->free_key;
  h->threads.hold = h->debug & PINHEAP_DEBUG_ALL ? HEAP_HOLD : 0;
}

PH_EXPORT pinheap *pinheap_create(const pinheap_options *opts) {
  if (heap_validate(opts) != 0) return NULL;
  /* From mmap, not malloc: the heap may be what serves this process's
   * malloc (libpinheap-preload). */
  pinheap *h = mmap(NULL, sizeof *h, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (h == MAP_FAILED) {
    error_set(ENOMEM, "pinheap_create: no memory for the heap's record");
    return NULL;
  }
  h->opts = *opts;
  if (opts->oom_report) {
    if (!(h->on_enomem_ctx = report_open(opts))) {
      munmap(h, sizeof *h);
      return NULL;
    }
    h->on_enomem = report_enomem;
    h->opts.oom_report = report_path(h->on_enomem_ctx);
  }
  h->page = (size_t)sysconf(_SC_PAGESIZE);
  h->local_opts = (local_options){.prefault = opts->prefault, .lock = opts->lock, .hugepages = opts->hugepages};
  local_provider_init(&h->local, &h->local_opts);
  h->provider = opts->provider ? opts->provider : &h->local;
  if (opts->mode == PINHEAP_SIMPLE) {
    /* Ordinary memory, charged to the system's commit limit as malloc's is:
     * a size the system cannot back is refused at once. No cap. */
    h->local_opts.charged = true;
    h->provider = &h->local;
    h->opts.size = 0;
  }
  h->large_threshold = opts->large_threshold;
  pthread_mutex_init(&h->reclaim_lock, NULL);
  gate_init(&h->gate);
  if (heap_check_jemalloc_page(h->page) != 0 || sizeclass_init(&h->classes, h->page) != 0) goto fail;
  /* jemalloc serves only its small classes: its large sizes would round up
   * and keep the rest of their grants to themselves. */
  if (h->large_threshold > h->classes.max) h->large_threshold = h->classes.max;
  if (heap_fixed(h) && heap_open_region(h) != 0) goto fail;
  if (heap_dynamic(h) && dynamic_open(h) != 0) goto fail_region;
  /* The least the arenas take, checked once the region is had (a layer
   * that obtains regions on several processes at once keeps them in step
   * up to there): a FIXED heap keeps room for all of them, a DYNAMIC one's
   * cap must hold the first (the others are made while it has room). */
  h->arenas_max = heap_arena_count(h);
  size_t limit = heap_fixed(h) ? h->region.size : h->opts.size;
  unsigned counted = heap_fixed(h) ? h->arenas_max : 1;
  size_t least = heap_least_size(counted);
  if (limit && limit < least) {
    error_set(ENOMEM,
              "pinheap_create: a %s of %zu bytes is too small: %s %u jemalloc arena%s take%s %zu MiB of it for good "
              "(metadata and a first grant each; %s) and the heap needs 2 MiB more; the least size that works is "
              "%zu bytes (%zu MiB)",
              heap_fixed(h) ? "region" : "cap", limit, heap_fixed(h) ? "its" : "its first", counted,
              counted > 1 ? "s" : "", counted > 1 ? "" : "s", counted * (HEAP_ARENA_BYTES >> 20),
              opts->arenas ? "as many as opts.arenas (PINHEAP_ARENAS) asks" : "one per CPU; opts.arenas (PINHEAP_ARENAS) sets fewer",
              least, least >> 20);
    goto fail_region;
  }
  /* A FIXED heap keeps its arenas' room at the top of the region, as if
   * they were made now, so that those made later sit there too rather
   * than where the top of the free space is then. */
  if (heap_fixed(h) && opts->policy == PINHEAP_POLICY_TWO_ENDED) {
    size_t bytes = h->arenas_max * HEAP_ARENA_BYTES;
    char *at = (char *)util_align_down((uintptr_t)h->region.base + h->region.size - bytes, HEAP_REGION_ALIGN);
    if (!em_alloc_at(&h->em, at, bytes, &h->arena_reserve_pristine)) {
      error_set(ENOMEM, "pinheap_create: no room for the arenas at the top of the region");
      goto fail_region;
    }
    h->arena_reserve = at + bytes;
  }
  /* One arena now (a FIXED heap with the bump policy: all), the others when
   * threads first need them. */
  pthread_mutex_init(&h->arena_lock, NULL);
  unsigned now = heap_fixed(h) && !h->arena_reserve ? h->arenas_max : 1;
  for (unsigned i = 0; i < now; i++) {
    if (heap_add_arena(h) != 0) {
      heap_explain(h);
      heap_destroy_arenas(h);
      goto fail_region;
    }
  }
  if (thread_registry_init(&h->threads, &h->classes, h->page,
                           /* the bump policy never reuses a freed extent */
                           opts->policy == PINHEAP_POLICY_TWO_ENDED ? heap_release_extent : NULL, h,
                           heap_arena_for, h) != 0) {
    error_set(ENOMEM, "pinheap_create: cannot set up thread caches");
    heap_destroy_arenas(h);
    goto fail_region;
  }
  h->debug = debug_flags(opts->debug);
  heap_init_free_key(h);
  debug_open(h);
  if (fork_add(h) != 0) {
    debug_close(h);
    thread_registry_fini(&h->threads);
    heap_destroy_arenas(h);
    goto fail_region;
  }
  return h;
fail_region:
  heap_close_memory(h);
fail:
  pthread_mutex_destroy(&h->reclaim_lock);
  int err = errno;
  report_close(h->on_enomem_ctx);
  munmap(h, sizeof *h);
  errno = err;
  return NULL;
}

/* Reports blocks still live at destroy: the caches emptied first, so that
 * only what callers hold counts. */
static void heap_report_live(pinheap *h) {
  heap_reclaim(h);
  pinheap_stats s;
  if (pinheap_get_stats(h, &s) != 0 || s.allocated == 0) return;
  error_report("pinheap_destroy(%p): %zu bytes still allocated, %zu of them in %zu large block(s)", (void *)h,
               s.allocated, s.large_allocated, s.large_blocks);
  if (h->debug & PINHEAP_DEBUG_ALL) debug_report_live(h);
}

PH_EXPORT int pinheap_check(pinheap *h) {
  if (!h) {
    error_set(EINVAL, "pinheap_check: heap is NULL");
    return -1;
  }
  return heap_check(h);
}

PH_EXPORT void pinheap_destroy(pinheap *h) {
  if (!h) return;
  fork_remove(h);
  heap_report_live(h);
  debug_close(h);
  thread_registry_fini(&h->threads);
  heap_destroy_arenas(h);
  heap_close_memory(h);
  pthread_mutex_destroy(&h->reclaim_lock);
  report_close(h->on_enomem_ctx);
  munmap(h, sizeof *h);
}

/* arena_lock first: making an arena takes none of the others. */
void heap_fork_prepare(pinheap *h) {
  pthread_mutex_lock(&h->arena_lock);
  pthread_mutex_lock(&h->reclaim_lock);
  thread_fork_prepare(&h->threads);
  gate_close(&h->gate);
}

void heap_fork_parent(pinheap *h) {
  gate_open(&h->gate);
  thread_fork_parent(&h->threads);
  pthread_mutex_unlock(&h->reclaim_lock);
  pthread_mutex_unlock(&h->arena_lock);
}

/* The gate first: emptying the dead threads' caches calls the hooks. */
void heap_fork_child(pinheap *h) {
  gate_reset(&h->gate);
  thread_fork_child(&h->threads);
  pthread_mutex_unlock(&h->reclaim_lock);
  pthread_mutex_unlock(&h->arena_lock);
}

/* Opens a fork section (heap.h) for a thread that may change the heap: its
 * cache held busy, or the gate when it has no cache. Pair with heap_leave. */
static thread_cache *heap_enter(pinheap *h) {
  thread_cache *tc = thread_enter(&h->threads);
  if (PH_UNLIKELY(!tc)) gate_enter(&h->gate);
  return tc;
}

static void heap_leave(pinheap *h, thread_cache *tc) {
  if (PH_LIKELY(tc != NULL))
    thread_leave(tc);
  else
    gate_leave(&h->gate);
}

void heap_reclaim(pinheap *h) {
  pthread_mutex_lock(&h->reclaim_lock);
  thread_flush_all(&h->threads);
  unsigned n = atomic_load_explicit(&h->narenas, memory_order_acquire);
  for (unsigned i = 0; i < n; i++) hooks_arena_purge(&h->arenas[i]);
  pthread_mutex_unlock(&h->reclaim_lock);
}

PH_EXPORT void pinheap_trim(pinheap *h) {
  if (!h) return;
  heap_reclaim(h);
  if (!heap_dynamic(h)) return;
  gate_enter(&h->gate);
  dynamic_quarantine_drain(h);
  dynamic_release_free_chunks(h);
  gate_leave(&h->gate);
}

/* Bytes the heap manages now: FIXED the region, DYNAMIC (SIMPLE) what is
 * registered (mapped). */
static size_t heap_capacity(pinheap *h) {
  em_stats s;
  em_get_stats(&h->em, &s);
  return s.capacity + (heap_dynamic(h) ? atomic_load(&h->direct_bytes) : 0);
}

static void heap_no_memory(pinheap *h, const char *what, size_t size) {
  em_stats s;
  gate_enter(&h->gate);
  em_get_stats(&h->em, &s);
  size_t capacity = heap_capacity(h);
  gate_leave(&h->gate);
  error_set(ENOMEM, "%s(%zu): out of memory: %zu bytes free, largest free extent %zu bytes, %s %zu bytes", what,
            size, s.free_bytes, s.largest_free, heap_fixed(h) ? "region" : "registered", capacity);
  heap_explain(h);
  if (h->on_enomem) h->on_enomem(h->on_enomem_ctx, h, what, size);
}

/* The most a block may be: the region, the cap, or what a size allows. */
static size_t heap_limit(const pinheap *h) {
  if (heap_fixed(h)) return h->region.size;
  if (heap_dynamic(h) && h->opts.size) return h->opts.size;
  return (size_t)PTRDIFF_MAX;
}

/* A request that no state of the heap could satisfy. */
static bool heap_impossible(pinheap *h, const char *what, size_t size) {
  size_t limit = heap_limit(h);
  if (size <= limit) return false;
  error_set(ENOMEM, "%s(%zu): impossible size: larger than the heap's %zu bytes", what, size, limit);
  return true;
}

/* Whether p, which jemalloc returned for one of the heap's arenas, lies in
 * the heap's memory. It may not: once a thread's jemalloc state is torn
 * down (a pthread key destructor that runs after jemalloc's at the thread's
 * exit), jemalloc serves every mallocx from its own arena 0, whatever arena
 * and tcache the flags name. */
static bool heap_jemalloc_ours(const pinheap *h, const void *p) { return pagemap_covers(&h->pm, p); }

static void *heap_large(pinheap *h, size_t size, size_t align, bool zero, bool debug, const char *what);

/* p came from jemalloc's arena 0 (heap_jemalloc_ours): back there with it,
 * and the request to the large path (an exact page-rounded extent, or a
 * direct block), which needs no jemalloc. */
static void *heap_outside(pinheap *h, void *p, size_t size, size_t align, bool zero, bool debug, const char *what) {
  dallocx(p, MALLOCX_TCACHE_NONE);
  return heap_large(h, size, align < h->page ? h->page : align, zero, debug, what);
}

/* jemalloc's flags for a thread without a cache of the heap's (its cache
 * is gone at its exit, or could not be made): the heap's first arena. */
static int heap_uncached_flags(const pinheap *h) {
  return (int)(MALLOCX_ARENA(h->arena_index[0]) | MALLOCX_TCACHE_NONE);
}

/* jemalloc path: through the thread's tcache, with reclaim and one retry.
 * The bin of every object handed out goes into its page's
 * tag (bin: the request's bin when the caller knows it, else -1), so that
 * its free takes the fast path, and so that a tag left from an earlier use of
 * the page never outlives the first object of a new slab on it. align: 0
 * for malloc's; debug as for heap_cached. */
static void *heap_small(pinheap *h, size_t size, size_t align, bool zero, int bin, bool debug, const char *what) {
  if (size == 0) size = 1; /* mallocx(0) is undefined */
  int flags = (align ? (int)MALLOCX_ALIGN(align) : 0) | (zero ? MALLOCX_ZERO : 0);
  for (int attempt = 0; attempt < 2; attempt++) {
    thread_cache *tc = thread_enter(&h->threads);
    void *p = mallocx(size, (tc ? tc->alloc_flags : heap_uncached_flags(h)) | flags);
    if (tc) thread_leave(tc);
    if (p) {
      if (PH_UNLIKELY(!heap_jemalloc_ours(h, p))) return heap_outside(h, p, size, align, zero, debug, what);
      unsigned b = bin >= 0 ? (unsigned)bin : sizeclass_bin(&h->classes, sallocx(p, 0));
      pagemap_note_bin(&h->pm, p, b, h->classes.size[b]);
      if (!debug) heap_unmark(p);
      return p;
    }
    if (attempt == 0) heap_reclaim(h);
  }
  heap_no_memory(h, what, size);
  return NULL;
}

/* size <= large_threshold (<= classes.max): the thread's stack of
 * freed objects of the size's bin, else jemalloc. debug: a constant, false
 * on the fast paths; true from debug.c, which zeroes blocks itself. */
static PH_ALWAYS_INLINE void *heap_cached(pinheap *h, size_t size, bool zero, bool debug, const char *what) {
  unsigned bin = sizeclass_bin(&h->classes, size);
  thread_cache *tc = thread_enter(&h->threads);
  if (PH_UNLIKELY(!tc)) return heap_small(h, size, 0, zero, (int)bin, debug, what);
  void *p = thread_bin_pop(&tc->bins[bin]);
  if (PH_LIKELY(p != NULL)) {
    thread_leave(tc);
    if (debug) debug_block_reused(h, p, h->classes.size[bin], what);
    if (zero) memset(p, 0, size);
    return p;
  }
  p = mallocx(size ? size : 1, tc->alloc_flags | (zero ? MALLOCX_ZERO : 0));
  thread_leave(tc);
  if (PH_LIKELY(p != NULL)) {
    if (PH_UNLIKELY(!heap_jemalloc_ours(h, p))) return heap_outside(h, p, size, 0, zero, debug, what);
    pagemap_note_bin(&h->pm, p, bin, h->classes.size[bin]);
    if (!debug) heap_unmark(p);
    return p;
  }
  heap_reclaim(h); /* then jemalloc once more, reclaiming again if need be */
  return heap_small(h, size, 0, zero, (int)bin, debug, what);
}

/* dynamic_direct_alloc in a section. */
static void *heap_direct_alloc(pinheap *h, size_t size, size_t align, bool zero, size_t grow_from, const char *what) {
  thread_cache *tc = heap_enter(h);
  void *p = dynamic_direct_alloc(h, size, align, zero, grow_from, what);
  heap_leave(h, tc);
  return p;
}

void *heap_direct_plain(pinheap *h, size_t size, size_t grow_from, const char *what) {
  if (heap_impossible(h, what, size)) return NULL;
  return heap_direct_alloc(h, size, h->page, false, grow_from, what);
}

/* Large path: an exact page-rounded extent, from the thread's cache of
 * extents of its length or from the extent manager (DYNAMIC: growing it, or
 * a registration of its own from direct_threshold up). */
static void *heap_large(pinheap *h, size_t size, size_t align, bool zero, bool debug, const char *what) {
  size_t bytes = util_align_up(size, h->page);
  if (bytes == 0 || bytes > heap_limit(h)) {
    error_set(ENOMEM, "%s(%zu): impossible size: larger than the heap's %zu bytes", what, size, heap_limit(h));
    return NULL;
  }
  if (heap_dynamic(h) && (bytes >= h->opts.direct_threshold || bytes / h->page > PAGEMAP_MAX_PAGES))
    return heap_direct_alloc(h, size, align, zero, 0, what);
  if (bytes / h->page > PAGEMAP_MAX_PAGES) {
    error_set(ENOMEM, "%s(%zu): impossible size: above %zu pages", what, size, (size_t)PAGEMAP_MAX_PAGES);
    return NULL;
  }
  size_t pages = bytes / h->page;
  bool pristine = false;
  void *p = NULL;
  /* One section from taking the extent to tagging and counting it. */
  thread_cache *tc = heap_enter(h);
  if (tc && pages <= THREAD_EXTENT_PAGES && align <= h->page && h->threads.release_extent) {
    p = thread_bin_pop(&tc->extents[pages - 1]);
    if (p && debug) debug_block_reused(h, p, bytes, what);
  }
  if (!p) p = hooks_take(&h->grants, bytes, align, &pristine);
  if (!p) {
    heap_leave(h, tc);
    heap_reclaim(h);
    tc = heap_enter(h);
    p = em_alloc(&h->em, bytes, align, &pristine);
  }
  if (p) {
    pagemap_set_large(&h->pm, p, pages);
    pagemap_set_birth(&h->pm, p, util_now_ns());
    atomic_fetch_add_explicit(&h->large_bytes, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->large_blocks, 1, memory_order_relaxed);
  }
  heap_leave(h, tc);
  if (!p) {
    heap_no_memory(h, what, size);
    return NULL;
  }
  if (zero && !pristine) memset(p, 0, bytes);
  return p;
}

static bool heap_bad_handle(const pinheap *h, const char *what) {
  if (h) return false;
  error_set(EINVAL, "%s: heap is NULL", what);
  return true;
}

/* Every allocation but realloc's: size bytes aligned to align (0:
 * malloc's alignment), zeroed when asked. debug as for heap_cached. */
static PH_ALWAYS_INLINE void *heap_alloc(pinheap *h, size_t size, size_t align, bool zero, bool debug,
                                          const char *what) {
  if (align == 0) {
    if (PH_LIKELY(size <= h->large_threshold)) return heap_cached(h, size, zero, debug, what);
    if (heap_impossible(h, what, size)) return NULL;
    return heap_large(h, size, h->page, zero, debug, what);
  }
  if (heap_impossible(h, what, size)) return NULL;
  if (size == 0) size = 1;
  /* Alignments above a page, and sizes that alignment would lift out of
   * jemalloc's small classes, go to the large path: jemalloc would ask the
   * hooks for more and keep the rest to itself. */
  if (align <= h->page && size <= h->large_threshold && util_align_up(size, align) <= h->classes.max)
    return heap_small(h, size, align, zero, -1, debug, what);
  return heap_large(h, size, align < h->page ? h->page : align, zero, debug, what);
}

void *heap_alloc_plain(pinheap *h, size_t size, size_t align, const char *what) {
  return heap_alloc(h, size, align, false, true, what);
}

PH_EXPORT void *pinheap_malloc(pinheap *h, size_t size) {
  if (heap_bad_handle(h, "pinheap_malloc")) return NULL;
  if (PH_UNLIKELY(h->debug)) return debug_alloc(h, size, 0, false, "pinheap_malloc");
  return heap_alloc(h, size, 0, false, false, "pinheap_malloc");
}

PH_EXPORT void *pinheap_calloc(pinheap *h, size_t count, size_t size) {
  if (heap_bad_handle(h, "pinheap_calloc")) return NULL;
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    error_set(ENOMEM, "pinheap_calloc(%zu, %zu): impossible size: the product overflows", count, size);
    return NULL;
  }
  if (PH_UNLIKELY(h->debug)) return debug_alloc(h, total, 0, true, "pinheap_calloc");
  return heap_alloc(h, total, 0, true, false, "pinheap_calloc");
}

PH_EXPORT void *pinheap_aligned_alloc(pinheap *h, size_t alignment, size_t size) {
  if (heap_bad_handle(h, "pinheap_aligned_alloc")) return NULL;
  if (!util_is_pow2(alignment)) {
    error_set(EINVAL, "pinheap_aligned_alloc(%zu, %zu): alignment is not a power of two", alignment, size);
    return NULL;
  }
  if (PH_UNLIKELY(h->debug)) return debug_alloc(h, size, alignment, false, "pinheap_aligned_alloc");
  return heap_alloc(h, size, alignment, false, false, "pinheap_aligned_alloc");
}

static _Noreturn void heap_foreign(const pinheap *h, const void *p, const char *what, const char *why) {
  error_fatal("%s(%p): %s of heap %p", what, p, why, (const void *)h);
}

/* dynamic_direct_find in a section: it takes the direct blocks' lock. */
static size_t heap_direct_find(pinheap *h, const void *p, bool exact, pinheap_region *out) {
  gate_enter(&h->gate);
  size_t used = dynamic_direct_find(h, p, exact, out);
  gate_leave(&h->gate);
  return used;
}

/* Length in bytes of the live large block at p, whose page holds tag, or 0
 * if p is a small object; aborts if p is neither. */
static size_t heap_classify_tag(const pinheap *h, const void *p, uint32_t tag, const char *what) {
  if (PAGEMAP_IS_SMALL(tag)) return 0;
  if (tag < 2 || (tag & 1) || ((uintptr_t)p & (h->page - 1)))
    heap_foreign(h, p, what, "pointer is not a live block (freed already, or inside a block)");
  return (size_t)(tag >> 1) * h->page;
}

/* The live block at p: its length when it is a large or direct block
 * (*direct tells which), 0 when it is a small object; aborts when p is none
 * of these. One page-map lookup. */
static size_t heap_classify(pinheap *h, const void *p, bool *direct, const char *what) {
  _Atomic uint32_t *slot = pagemap_slot(&h->pm, p);
  *direct = false;
  if (slot) return heap_classify_tag(h, p, atomic_load_explicit(slot, memory_order_acquire), what);
  size_t used = heap_dynamic(h) ? heap_direct_find(h, p, true, NULL) : 0;
  if (!used) heap_foreign(h, p, what, "pointer is not in the heap's memory, or not a live block of it");
  *direct = true;
  return used;
}

/* Interior pointers of small objects. A page's tag says where on the page
 * the objects of its bin b start (pagemap.h):
 * aborts, naming what, unless an object starts at p. */
static PH_ALWAYS_INLINE void heap_check_start(const pinheap *h, const void *p, uint32_t tag, unsigned b,
                                              const char *what) {
  if (PH_UNLIKELY(!sizeclass_starts(&h->classes, b, p, PAGEMAP_PHASE_OF(tag))))
    heap_foreign(h, p, what, "pointer is inside a block, not at its start");
}

/* Aborts, naming what, unless p, one of jemalloc's objects to a heap
 * without the debugging aids, is a live object at its start. */
static void heap_check_live(pinheap *h, void *p, const char *what) {
  uint32_t tag = pagemap_get(&h->pm, p);
  int bin = PAGEMAP_BIN_OF(tag);
  if (bin < 0) heap_foreign(h, p, what, "pointer is not a live block (inside a block)");
  heap_check_start(h, p, tag, (unsigned)bin, what);
  thread_cache *tc = thread_enter(&h->threads);
  bool freed = heap_freed(h, tc, p, (unsigned)bin, heap_first_word(p));
  if (tc) thread_leave(tc);
  if (freed) heap_foreign(h, p, what, "block freed already (a double free)");
}

/* Gives a large block's extent (its head tag already cleared) back to the
 * extent manager; also the way thread caches give back the extents they
 * keep. */
static void heap_give_back(pinheap *h, void *p, size_t bytes, const char *what) {
  em_free_result r = em_free(&h->em, p, bytes);
  if (r == EM_NO_METADATA) error_fatal("%s(%p): the system has no memory left for the heap's metadata", what, p);
  if (r != EM_FREED) heap_foreign(h, p, what, "extent overlaps free space: the heap is corrupt");
}

static void heap_release_extent(void *ctx, void *p, size_t bytes) {
  heap_give_back(ctx, p, bytes, "pinheap_trim");
}

/* One section from clearing the tag to the extent's new place. */
static void heap_large_free(pinheap *h, void *p, _Atomic uint32_t *slot) {
  thread_cache *tc = heap_enter(h);
  size_t pages = pagemap_take_large(slot);
  if (pages == 0) {
    heap_leave(h, tc);
    heap_foreign(h, p, "pinheap_free", "pointer is not a live block (freed already)");
  }
  size_t bytes = pages * h->page;
  atomic_fetch_sub_explicit(&h->large_bytes, bytes, memory_order_relaxed);
  atomic_fetch_sub_explicit(&h->large_blocks, 1, memory_order_relaxed);
  if (!tc || pages > THREAD_EXTENT_PAGES || !h->threads.release_extent ||
      !thread_bin_push(&tc->extents[pages - 1], p))
    heap_give_back(h, p, bytes, "pinheap_free");
  heap_leave(h, tc);
}

/* dynamic_direct_free in a section. */
static bool heap_direct_free(pinheap *h, void *p) {
  thread_cache *tc = heap_enter(h);
  bool freed = dynamic_direct_free(h, p);
  heap_leave(h, tc);
  return freed;
}

/* debug: a constant, as for heap_cached. */
static PH_ALWAYS_INLINE void heap_free(pinheap *h, void *p, bool debug) {
  _Atomic uint32_t *slot = pagemap_slot(&h->pm, p);
  if (PH_UNLIKELY(!slot)) {
    if (heap_dynamic(h) && heap_direct_free(h, p)) return;
    heap_foreign(h, p, "pinheap_free", "pointer is not in the heap's memory, or not a live block of it");
  }
  uint32_t tag = atomic_load_explicit(slot, memory_order_acquire);
  int bin = PAGEMAP_BIN_OF(tag);
  if (PH_LIKELY(bin >= 0)) {
    heap_check_start(h, p, tag, (unsigned)bin, "pinheap_free");
    thread_cache *tc = thread_enter(&h->threads);
    if (PH_LIKELY(tc != NULL)) {
      if (!debug) heap_check_key(h, tc, p, (unsigned)bin, "pinheap_free");
      unsigned b = (unsigned)bin;
      if (debug && tc->held.limit) {
        if (!thread_fifo_push(&tc->held, p, b, &p, &b)) {
          thread_leave(tc);
          return;
        }
        debug_block_released(h, p, h->classes.size[b], "pinheap_free");
      }
      if (PH_LIKELY(thread_bin_push(&tc->bins[b], p))) {
        if (!debug) heap_set_first_word(p, h->cached_key);
      } else {
        if (!debug) heap_set_first_word(p, h->free_key);
        sdallocx(p, h->classes.size[b], tc->free_flags);
      }
      thread_leave(tc);
    } else {
      if (!debug) {
        heap_check_key(h, NULL, p, (unsigned)bin, "pinheap_free");
        heap_set_first_word(p, h->free_key);
      }
      dallocx(p, MALLOCX_TCACHE_NONE);
    }
    return;
  }
  /* Every object handed out had its page tagged with its bin (heap_small,
   * heap_cached): a small page without one holds no object's start. */
  if (PAGEMAP_IS_SMALL(tag)) heap_foreign(h, p, "pinheap_free", "pointer is not a live block (inside a block)");
  heap_classify_tag(h, p, tag, "pinheap_free");
  heap_large_free(h, p, slot);
}

void heap_free_plain(pinheap *h, void *p) { heap_free(h, p, true); }

PH_EXPORT void pinheap_free(pinheap *h, void *p) {
  if (!p) return;
  if (PH_UNLIKELY(!h)) error_fatal("pinheap_free(%p): heap is NULL", p);
  if (PH_UNLIKELY(h->debug)) {
    debug_free(h, p);
    return;
  }
  heap_free(h, p, false);
}

size_t heap_usable_plain(pinheap *h, const void *p, heap_kind *kind, const char *what) {
  *kind = HEAP_SMALL;
  /* A small object's page names its bin: no lookup in jemalloc. */
  _Atomic uint32_t *slot = pagemap_slot(&h->pm, p);
  uint32_t tag = slot ? atomic_load_explicit(slot, memory_order_acquire) : 0;
  int bin = PAGEMAP_BIN_OF(tag);
  if (bin >= 0) {
    heap_check_start(h, p, tag, (unsigned)bin, what);
    return h->classes.size[bin];
  }
  if (PAGEMAP_IS_SMALL(tag)) heap_foreign(h, p, what, "pointer is not a live block (inside a block)");
  bool direct;
  size_t bytes = heap_classify(h, p, &direct, what);
  if (bytes) {
    *kind = direct ? HEAP_DIRECT : HEAP_LARGE;
    return bytes;
  }
  return sallocx(p, 0);
}

PH_EXPORT size_t pinheap_usable_size(pinheap *h, const void *p) {
  if (!p || !h) return 0;
  if (PH_UNLIKELY(h->debug)) return debug_usable_size(h, p);
  heap_kind kind;
  return heap_usable_plain(h, p, &kind, "pinheap_usable_size");
}

/* Resizes the large block p of old bytes in place to new bytes (both page
 * multiples), in one section; false if the next extent is not free. */
bool heap_resize_plain(pinheap *h, void *p, size_t old, size_t new) {
  char *c = p;
  if (new / h->page > PAGEMAP_MAX_PAGES) return false;
  thread_cache *tc = heap_enter(h);
  if (new > old && !em_alloc_at(&h->em, c + old, new - old, NULL)) {
    heap_leave(h, tc);
    return false;
  }
  if (!pagemap_resize_large(&h->pm, p, old / h->page, new / h->page)) {
    heap_leave(h, tc);
    heap_foreign(h, p, "pinheap_realloc", "block was freed during the call");
  }
  if (new < old) heap_give_back(h, c + new, old - new, "pinheap_realloc");
  if (new > old)
    atomic_fetch_add_explicit(&h->large_bytes, new - old, memory_order_relaxed);
  else
    atomic_fetch_sub_explicit(&h->large_bytes, old - new, memory_order_relaxed);
  heap_leave(h, tc);
  return true;
}

/* Moves p, of old_usable bytes, to q (NULL: the allocation failed). */
static void *heap_move_to(pinheap *h, void *q, void *p, size_t old_usable, size_t size) {
  if (!q) return NULL;
  memcpy(q, p, old_usable < size ? old_usable : size);
  pinheap_free(h, p);
  return q;
}

static void *heap_move(pinheap *h, void *p, size_t old_usable, size_t size) {
  return heap_move_to(h, heap_alloc(h, size, 0, false, false, "pinheap_realloc"), p, old_usable, size);
}

bool heap_direct_resize_plain(pinheap *h, void *p, size_t bytes, size_t *registered) {
  thread_cache *tc = heap_enter(h);
  pinheap_region r;
  bool fits = dynamic_direct_resize(h, p, bytes, &r);
  heap_leave(h, tc);
  *registered = r.size;
  return fits;
}

bool heap_quarantine_plain(pinheap *h, void *p) {
  thread_cache *tc = heap_enter(h);
  bool kept = dynamic_direct_quarantine(h, p);
  heap_leave(h, tc);
  return kept;
}

/* Moves the large or direct block p to a new block of size bytes: a direct
 * one with room to grow beyond grow_from bytes when size takes a direct
 * block (growth by steps costs O(total bytes)), else any. */
static void *heap_relocate(pinheap *h, void *p, size_t old, size_t size, size_t grow_from) {
  if (!heap_dynamic(h) || util_align_up(size, h->page) < h->opts.direct_threshold) return heap_move(h, p, old, size);
  return heap_move_to(h, heap_direct_plain(h, size, grow_from, "pinheap_realloc"), p, old, size);
}

/* The direct block p of old bytes resized: in place when its registration
 * holds size, else moved. */
static void *heap_direct_realloc(pinheap *h, void *p, size_t old, size_t size) {
  size_t registered = old;
  if (util_align_up(size, h->page) >= h->opts.direct_threshold &&
      heap_direct_resize_plain(h, p, util_align_up(size, h->page), &registered))
    return p;
  return heap_relocate(h, p, old, size, registered);
}

PH_EXPORT void *pinheap_realloc(pinheap *h, void *p, size_t size) {
  if (heap_bad_handle(h, "pinheap_realloc")) return NULL;
  if (!p) return pinheap_malloc(h, size);
  if (size == 0) {
    pinheap_free(h, p);
    return NULL;
  }
  if (PH_UNLIKELY(h->debug)) return debug_realloc(h, p, size);
  bool direct = false;
  size_t old_large = heap_classify(h, p, &direct, "pinheap_realloc");
  if (!old_large) heap_check_live(h, p, "pinheap_realloc");
  if (heap_impossible(h, "pinheap_realloc", size)) return NULL;
  if (direct) return heap_direct_realloc(h, p, old_large, size);
  if (old_large == 0) {
    if (size > h->large_threshold) return heap_move(h, p, sallocx(p, 0), size);
    for (int attempt = 0; attempt < 2; attempt++) {
      thread_cache *tc = thread_enter(&h->threads);
      if (!tc) return heap_move(h, p, sallocx(p, 0), size);
      void *q = rallocx(p, size, tc->alloc_flags);
      thread_leave(tc);
      if (q) {
        /* rallocx keeps to the arena named, even where mallocx would not
         * (heap_jemalloc_ours). */
        if (!heap_jemalloc_ours(h, q)) error_fatal("pinheap_realloc(%p): jemalloc moved the block out of the heap", p);
        unsigned b = sizeclass_bin(&h->classes, sallocx(q, 0));
        pagemap_note_bin(&h->pm, q, b, h->classes.size[b]);
        return q;
      }
      if (attempt == 0) heap_reclaim(h);
    }
    heap_no_memory(h, "pinheap_realloc", size);
    return NULL;
  }
  if (size <= h->large_threshold) return heap_move(h, p, old_large, size);
  size_t bytes = util_align_up(size, h->page);
  if (bytes == old_large || heap_resize_plain(h, p, old_large, bytes)) return p;
  return heap_relocate(h, p, old_large, size, old_large);
}

PH_EXPORT bool pinheap_owns(const pinheap *h, const void *p) {
  if (!h || !p) return false;
  return pagemap_covers(&h->pm, p) || (heap_dynamic(h) && heap_direct_find((pinheap *)h, p, false, NULL));
}

PH_EXPORT int pinheap_region_of(const pinheap *h, const void *p, pinheap_region *out) {
  /* A SIMPLE heap's memory is ordinary, registered nowhere. */
  bool registered = h && out && h->opts.mode != PINHEAP_SIMPLE;
  pagemap_chunk *c = registered ? pagemap_chunk_of(&h->pm, p) : NULL;
  if (c) {
    *out = (pinheap_region){.base = (void *)c->base, .size = c->size, .handle = c->handle};
    return 0;
  }
  if (registered && heap_dynamic(h) && heap_direct_find((pinheap *)h, p, false, out)) return 0;
  error_set(EINVAL, "pinheap_region_of(%p): not in memory the heap obtained from its provider", p);
  return -1;
}

static size_t heap_raise_peak(pinheap *h, size_t in_use) {
  size_t peak = atomic_load(&h->peak_seen);
  while (in_use > peak && !atomic_compare_exchange_weak(&h->peak_seen, &peak, in_use)) {
  }
  return in_use > peak ? in_use : peak;
}

void heap_note_peak(pinheap *h) {
  em_stats s;
  em_get_stats(&h->em, &s);
  heap_raise_peak(h, s.capacity - s.free_bytes + atomic_load(&h->direct_bytes));
}

PH_EXPORT int pinheap_get_stats(pinheap *h, pinheap_stats *out) {
  if (!h || !out) {
    error_set(EINVAL, "pinheap_get_stats: heap or output is NULL");
    return -1;
  }
  memset(out, 0, sizeof *out);
  hooks_stats_refresh();
  size_t small = 0;
  unsigned n = atomic_load_explicit(&h->narenas, memory_order_acquire);
  for (unsigned i = 0; i < n; i++) small += hooks_arena_allocated(&h->arenas[i]);
  out->large_allocated = atomic_load(&h->large_bytes);
  out->large_blocks = atomic_load(&h->large_blocks);
  em_stats s;
  gate_enter(&h->gate);
  em_get_stats(&h->em, &s);
  out->capacity = s.capacity;
  out->free_bytes = s.free_bytes;
  out->largest_free = s.largest_free;
  out->free_extents = s.free_extents;
  out->peak_in_use = s.peak_in_use;
  if (heap_dynamic(h)) {
    /* Direct blocks: their registrations are capacity in use (quarantined
     * ones too), the bytes the live ones use are allocated. */
    pthread_mutex_lock(&h->direct_lock);
    out->capacity += atomic_load(&h->direct_bytes);
    out->large_allocated += atomic_load(&h->direct_used);
    out->large_blocks += h->direct.count - h->quarantine.count;
    pthread_mutex_unlock(&h->direct_lock);
  }
  gate_leave(&h->gate);
  size_t in_use = out->capacity - s.free_bytes;
  out->in_use = in_use;
  out->allocated = small + out->large_allocated;
  /* The high-water mark as stats calls and direct blocks saw it, beside what
   * the manager saw. */
  size_t peak = heap_raise_peak(h, in_use);
  if (peak > out->peak_in_use) out->peak_in_use = peak;
  return 0;
}

struct heap_check_walk {
  pinheap *heap;
  int broken;
};

/* Counts the free extents with a page the map says is in use. */
static int heap_check_free_untagged(uintptr_t addr, size_t size, void *arg) {
  struct heap_check_walk *walk = arg;
  pinheap *h = walk->heap;
  for (uintptr_t a = addr; a < addr + size; a += h->page) {
    if (pagemap_get(&h->pm, (void *)a) != 0) {
      fprintf(stderr, "heap: page %#lx of free extent %#lx+%zu should carry no tag\n", (unsigned long)a,
              (unsigned long)addr, size);
      walk->broken++;
      break;
    }
  }
  return 0;
}

int heap_check(pinheap *h) {
  /* The outer locks (the thread registry's, the list's) first, outside the
   * section: fork's prepare takes them before it closes the gate. */
  int broken = thread_check(&h->threads) + fork_check(h) + (h->debug ? debug_check_cached(h) : 0);
  size_t cached = thread_cached_extent_bytes(&h->threads);
  gate_enter(&h->gate);
  if (h->debug) broken += debug_check_blocks(h);
  if (heap_dynamic(h)) broken += dynamic_check(h);
  broken += sizeclass_check(&h->classes);
  broken += em_check(&h->em);
  size_t blocks = atomic_load(&h->large_blocks), bytes = atomic_load(&h->large_bytes);
  broken += pagemap_check(&h->pm, blocks, bytes / h->page);
  broken += hooks_shared_check(&h->grants);
  size_t small_pages = pagemap_count_jemalloc_pages(&h->pm);
  em_stats s;
  em_get_stats(&h->em, &s);
  struct heap_check_walk walk = {h, 0};
  em_walk_free(&h->em, heap_check_free_untagged, &walk);
  broken += walk.broken;
  gate_leave(&h->gate);
  size_t reserved = heap_reserve_unused(h);
  if (h->opts.policy == PINHEAP_POLICY_TWO_ENDED &&
      s.free_bytes + bytes + cached + small_pages * h->page + reserved != s.capacity) {
    fprintf(stderr,
            "heap: free %zu + large %zu + cached %zu + jemalloc's %zu + kept for arenas %zu bytes should equal the "
            "region's %zu\n",
            s.free_bytes, bytes, cached, small_pages * h->page, reserved, s.capacity);
    broken++;
  }
  return broken;
}
