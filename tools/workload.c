#include "workload.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define KIB ((uint64_t)1 << 10)
#define MIB ((uint64_t)1 << 20)
#define FOREVER UINT_MAX

/* A generator. Invariant: next_id is above every id handed out, so that
 * each allocation names a block that is not live. */
struct workload {
  trace_writer *out;
  rng r;
  uint64_t next_id;
  uint32_t thread;
  bool failed; /* a write failed, or the generator's own memory ran out */
};

static void wl_put(workload *w, trace_event *ev) {
  ev->thread = w->thread;
  if (!w->failed && trace_writer_put(w->out, ev) != 0) w->failed = true;
}

static uint64_t wl_alloc(workload *w, trace_kind kind, uint64_t size, uint64_t align) {
  trace_event ev = {.kind = kind, .id = w->next_id++, .size = size, .align = align, .count = 1};
  wl_put(w, &ev);
  return ev.id;
}

static uint64_t wl_malloc(workload *w, uint64_t size) { return wl_alloc(w, TRACE_MALLOC, size, 0); }

static void wl_free(workload *w, uint64_t id) {
  trace_event ev = {.kind = TRACE_FREE, .id = id};
  wl_put(w, &ev);
}

static void wl_realloc(workload *w, uint64_t id, uint64_t size) {
  trace_event ev = {.kind = TRACE_REALLOC, .id = id, .size = size};
  wl_put(w, &ev);
}

__attribute__((format(printf, 3, 4))) static void wl_text(workload *w, trace_kind kind, const char *fmt, ...) {
  trace_event ev = {.kind = kind};
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(ev.text, sizeof ev.text, fmt, ap);
  va_end(ap);
  ev.text_len = n < 0 ? 0 : (size_t)n < sizeof ev.text ? (size_t)n : sizeof ev.text - 1;
  wl_put(w, &ev);
}

/* Blocks with the step at which they are freed (FOREVER: at the end). */
typedef struct wl_block {
  uint64_t id, bytes;
  unsigned expires;
} wl_block;

/* Live blocks of one kind. Invariant: bytes is the sum of their bytes. */
typedef struct wl_pool {
  wl_block *v;
  size_t n, cap;
  uint64_t bytes;
} wl_pool;

static void wl_push(workload *w, wl_pool *p, uint64_t id, uint64_t bytes, unsigned expires) {
  if (p->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 1024;
    wl_block *v = realloc(p->v, cap * sizeof *v);
    if (!v) {
      w->failed = true;
      return;
    }
    p->v = v;
    p->cap = cap;
  }
  p->v[p->n++] = (wl_block){id, bytes, expires};
  p->bytes += bytes;
}

/* Frees the blocks that expire at or before step, keeping the order of the
 * others. */
static void wl_expire(workload *w, wl_pool *p, unsigned step) {
  size_t kept = 0;
  for (size_t i = 0; i < p->n; i++) {
    if (p->v[i].expires <= step) {
      wl_free(w, p->v[i].id);
      p->bytes -= p->v[i].bytes;
    } else {
      p->v[kept++] = p->v[i];
    }
  }
  p->n = kept;
}

/* Frees block i, moving the last one into its place. */
static void wl_drop(workload *w, wl_pool *p, size_t i) {
  wl_free(w, p->v[i].id);
  p->bytes -= p->v[i].bytes;
  p->v[i] = p->v[--p->n];
}

/* Frees the oldest block (the first), keeping the order of the others. */
static void wl_drop_oldest(workload *w, wl_pool *p) {
  wl_free(w, p->v[0].id);
  p->bytes -= p->v[0].bytes;
  memmove(p->v, p->v + 1, --p->n * sizeof *p->v);
}

static void wl_pool_fini(wl_pool *p) { free(p->v); }

/* ------------------------------------------------------------------------ */
/* The sequences of `pinheap demo`: the seed's, that break a bump pointer,
 * and the tiny object in a freed hole that breaks dlmalloc-style heaps. */

/* A step of a sequence: a malloc of size bytes into a slot, or (size 0) a
 * free of the slot's block. */
typedef struct wl_step {
  unsigned slot;
  uint64_t size;
} wl_step;

#define WL_SLOTS 4

/* The steps, then frees of the blocks still live, then "measure". */
static void wl_sequence(workload *w, const wl_step *steps, size_t n) {
  uint64_t ids[WL_SLOTS];
  bool live[WL_SLOTS] = {false};
  for (size_t i = 0; i < n; i++) {
    unsigned s = steps[i].slot;
    if (steps[i].size) {
      ids[s] = wl_malloc(w, steps[i].size);
    } else {
      wl_free(w, ids[s]);
    }
    live[s] = steps[i].size != 0;
  }
  for (unsigned s = 0; s < WL_SLOTS; s++)
    if (live[s]) wl_free(w, ids[s]);
  wl_text(w, TRACE_PHASE, "measure");
}

#define WL_SEQUENCE(name, ...)                                  \
  static void name(workload *w, const workload_params *p) {     \
    (void)p;                                                    \
    static const wl_step steps[] = {__VA_ARGS__};               \
    wl_sequence(w, steps, sizeof steps / sizeof steps[0]);      \
  }

WL_SEQUENCE(wl_seq700, {0, 700 * MIB}, {0, 0}, {1, 1000 * MIB})
WL_SEQUENCE(wl_seq1000, {0, 1000 * MIB}, {0, 0}, {1, 500 * MIB}, {2, 500 * MIB})
WL_SEQUENCE(wl_tiny, {0, 500 * MIB}, {1, 40}, {0, 0}, {2, 40}, {3, 500 * MIB})

/*
 * The demo's array churn. Each iteration is one step of an array runtime:
 * 1-3 arrays of 16-300 MiB, together under 75% of the heap, with small
 * objects allocated in between, then the arrays freed in random order.
 * Small objects outlive the iteration: most by a few iterations, a quarter
 * long-lived (half of those to the very end, the others hundreds of
 * iterations).
 */
static void wl_churn(workload *w, const workload_params *p) {
  const uint64_t min = 16 * MIB, max_size = 300 * MIB, limit = p->heap / 100 * 75;
  const unsigned iters = p->steps;
  wl_pool arrays = {0}, shorts = {0}, longs = {0};
  uint64_t live = 0;
  for (unsigned it = 0; it < iters && !w->failed; it++) {
    wl_text(w, TRACE_PHASE, "iteration %u", it + 1);
    unsigned n_new = 1 + (unsigned)rng_below(&w->r, 3);
    for (unsigned a = 0; a < n_new; a++) {
      uint64_t room = limit - live;
      if (room < min) break;
      uint64_t max = room < max_size ? room : max_size;
      uint64_t size = min + rng_below(&w->r, max - min + 1);
      wl_push(w, &arrays, wl_malloc(w, size), size, 0);
      live += size;
      unsigned smalls = 2 + (unsigned)rng_below(&w->r, 11);
      for (unsigned s = 0; s < smalls; s++) {
        uint64_t bytes = rng_small_size(&w->r);
        uint64_t id = wl_malloc(w, bytes);
        if (rng_below(&w->r, 4) == 0) {
          unsigned expires = FOREVER;
          if (rng_below(&w->r, 2) == 0) expires = it + iters / 4 + (unsigned)rng_below(&w->r, iters / 2 + 1);
          wl_push(w, &longs, id, bytes, expires);
        } else {
          wl_push(w, &shorts, id, bytes, it + 1 + (unsigned)rng_below(&w->r, 4));
        }
      }
    }
    while (arrays.n > 0) {
      size_t k = (size_t)rng_below(&w->r, arrays.n);
      live -= arrays.v[k].bytes;
      wl_drop(w, &arrays, k);
    }
    wl_expire(w, &shorts, it);
    wl_expire(w, &longs, it);
  }
  wl_expire(w, &shorts, FOREVER);
  wl_text(w, TRACE_PHASE, "measure");
  wl_expire(w, &longs, FOREVER);
  wl_pool_fini(&arrays);
  wl_pool_fini(&shorts);
  wl_pool_fini(&longs);
}

/* ------------------------------------------------------------------------ */
/* Workloads of the kinds the placement measurements use. */

/*
 * PGAS-like: per step, an array of 1-30% of the heap with a random lifetime
 * (1-40 steps), the oldest arrays evicted first when the live ones would
 * pass 60% of the heap; 20-100 small objects (16 B-4 KiB; 3% immortal, the
 * others live 1-20 steps); 0-3 medium blocks of 256 KiB-8 MiB (1-10 steps,
 * at most 10% of the heap live); 4-16 tasks, each a 64 KiB-1 MiB stack
 * (page-aligned) on one of 4 threads, freed at the end of the step.
 */
static void wl_pgas(workload *w, const workload_params *p) {
  const uint64_t h = p->heap;
  wl_pool arrays = {0}, smalls = {0}, mediums = {0}, immortal = {0}, stacks = {0};
  for (unsigned step = 0; step < p->steps && !w->failed; step++) {
    if (step % 100 == 0) wl_text(w, TRACE_PHASE, "step %u", step);
    w->thread = 0;
    uint64_t size = rng_range(&w->r, h / 100, h * 30 / 100);
    while (arrays.n && arrays.bytes + size > h * 60 / 100) wl_drop_oldest(w, &arrays);
    wl_push(w, &arrays, wl_malloc(w, size), size, step + (unsigned)rng_range(&w->r, 1, 40));
    unsigned tasks = (unsigned)rng_range(&w->r, 4, 16);
    for (unsigned t = 0; t < tasks; t++) {
      w->thread = t % 4;
      uint64_t stack = rng_range(&w->r, 64 * KIB, 1 * MIB);
      wl_push(w, &stacks, wl_alloc(w, TRACE_ALIGNED, stack, 4 * KIB), stack, step);
      unsigned n = (unsigned)rng_range(&w->r, 20, 100) / tasks + 1;
      for (unsigned i = 0; i < n; i++) {
        uint64_t bytes = rng_small_size(&w->r);
        uint64_t id = wl_malloc(w, bytes);
        if (rng_below(&w->r, 100) < 3)
          wl_push(w, &immortal, id, bytes, FOREVER);
        else
          wl_push(w, &smalls, id, bytes, step + (unsigned)rng_range(&w->r, 1, 20));
      }
    }
    w->thread = 0;
    unsigned mediums_now = (unsigned)rng_below(&w->r, 4);
    for (unsigned i = 0; i < mediums_now; i++) {
      uint64_t bytes = rng_range(&w->r, 256 * KIB, 8 * MIB);
      if (mediums.bytes + bytes > h / 10) break;
      wl_push(w, &mediums, wl_malloc(w, bytes), bytes, step + (unsigned)rng_range(&w->r, 1, 10));
    }
    wl_expire(w, &stacks, step);
    wl_expire(w, &arrays, step);
    wl_expire(w, &smalls, step);
    wl_expire(w, &mediums, step);
  }
  wl_expire(w, &stacks, FOREVER);
  wl_expire(w, &arrays, FOREVER);
  wl_expire(w, &smalls, FOREVER);
  wl_expire(w, &mediums, FOREVER);
  wl_text(w, TRACE_PHASE, "measure");
  wl_expire(w, &immortal, FOREVER);
  wl_pool_fini(&arrays);
  wl_pool_fini(&smalls);
  wl_pool_fini(&mediums);
  wl_pool_fini(&immortal);
  wl_pool_fini(&stacks);
}

/*
 * Server-like, every block under 64 KiB: 4 worker threads serve requests;
 * each request allocates 10-50 objects of 16 B-2 KiB and 1-3 buffers of
 * 4-64 KiB, and frees them when it ends; one in 20 of its objects goes into
 * a cache (at most 40% of the heap, the oldest entries evicted first);
 * connections come and go, each holding a 2-8 KiB state and a 16 KiB
 * buffer for 50-500 requests (at most 30% of the heap in connections).
 * A step is one request.
 */
static void wl_server(workload *w, const workload_params *p) {
  const uint64_t h = p->heap;
  wl_pool conns = {0}, cache = {0}, req = {0};
  for (unsigned step = 0; step < p->steps && !w->failed; step++) {
    if (step % 1000 == 0) wl_text(w, TRACE_PHASE, "request %u", step);
    w->thread = (uint32_t)rng_below(&w->r, 4);
    wl_expire(w, &conns, step);
    while (conns.bytes < h * 30 / 100 && rng_below(&w->r, 4) == 0) {
      unsigned until = step + (unsigned)rng_range(&w->r, 50, 500);
      uint64_t state = rng_range(&w->r, 2 * KIB, 8 * KIB);
      wl_push(w, &conns, wl_malloc(w, state), state, until);
      wl_push(w, &conns, wl_malloc(w, 16 * KIB), 16 * KIB, until);
    }
    unsigned objects = (unsigned)rng_range(&w->r, 10, 50), buffers = (unsigned)rng_range(&w->r, 1, 3);
    for (unsigned i = 0; i < objects + buffers; i++) {
      uint64_t bytes = i < objects ? rng_range(&w->r, 16, 2 * KIB) : rng_range(&w->r, 4 * KIB, 64 * KIB - 1);
      uint64_t id = wl_malloc(w, bytes);
      if (i < objects && rng_below(&w->r, 20) == 0) {
        while (cache.n && cache.bytes + bytes > h * 40 / 100) wl_drop_oldest(w, &cache);
        wl_push(w, &cache, id, bytes, FOREVER);
      } else {
        wl_push(w, &req, id, bytes, 0);
      }
    }
    while (req.n) wl_drop(w, &req, (size_t)rng_below(&w->r, req.n));
  }
  w->thread = 0;
  wl_expire(w, &conns, FOREVER);
  wl_text(w, TRACE_PHASE, "measure");
  wl_expire(w, &cache, FOREVER);
  wl_pool_fini(&conns);
  wl_pool_fini(&cache);
  wl_pool_fini(&req);
}

/*
 * Grow-by-realloc: 8 vectors grow at once, each by half its size per step
 * (realloc) from 64 B-4 KiB to a target of 64 KiB-8% of the heap, then live
 * 0-20 steps more and are freed, and a new one starts; one in ten stays to
 * the end while those kept hold less than 15% of the heap. 4-16 small
 * objects per step live 1-10 steps.
 */
static void wl_grow(workload *w, const workload_params *p) {
  const uint64_t h = p->heap;
  enum { VECTORS = 8 };
  struct {
    uint64_t id, size, target;
    unsigned until; /* once grown: the step it is freed at */
    bool grown;
  } v[VECTORS];
  wl_pool smalls = {0}, kept = {0};
  for (unsigned i = 0; i < VECTORS; i++) v[i].id = UINT64_MAX;
  for (unsigned step = 0; step < p->steps && !w->failed; step++) {
    if (step % 100 == 0) wl_text(w, TRACE_PHASE, "step %u", step);
    for (unsigned i = 0; i < VECTORS; i++) {
      if (v[i].id == UINT64_MAX) {
        v[i].size = rng_range(&w->r, 64, 4 * KIB);
        v[i].target = rng_range(&w->r, 64 * KIB, h * 8 / 100);
        v[i].grown = false;
        v[i].id = wl_malloc(w, v[i].size);
      } else if (!v[i].grown) {
        v[i].size += v[i].size / 2;
        if (v[i].size >= v[i].target) {
          v[i].size = v[i].target;
          v[i].grown = true;
          v[i].until = step + (unsigned)rng_below(&w->r, 21);
        }
        wl_realloc(w, v[i].id, v[i].size);
      } else if (v[i].until <= step) {
        if (rng_below(&w->r, 10) == 0 && kept.bytes + v[i].size <= h * 15 / 100)
          wl_push(w, &kept, v[i].id, v[i].size, FOREVER);
        else
          wl_free(w, v[i].id);
        v[i].id = UINT64_MAX;
      }
    }
    unsigned n = (unsigned)rng_range(&w->r, 4, 16);
    for (unsigned i = 0; i < n; i++) {
      uint64_t bytes = rng_small_size(&w->r);
      wl_push(w, &smalls, wl_malloc(w, bytes), bytes, step + (unsigned)rng_range(&w->r, 1, 10));
    }
    wl_expire(w, &smalls, step);
  }
  for (unsigned i = 0; i < VECTORS; i++)
    if (v[i].id != UINT64_MAX) wl_free(w, v[i].id);
  wl_expire(w, &smalls, FOREVER);
  wl_text(w, TRACE_PHASE, "measure");
  wl_expire(w, &kept, FOREVER);
  wl_pool_fini(&smalls);
  wl_pool_fini(&kept);
}

const workload_kind workload_kinds[] = {
    {"pgas", "PGAS-like: arrays of 1-30% of the heap evicted oldest first, small objects (3% immortal), medium "
             "blocks, task stacks",
     1024 * MIB, 2000, wl_pgas},
    {"server", "server-like: requests of small objects and buffers under 64 KiB, a cache, connections",
     256 * MIB, 20000, wl_server},
    {"grow", "grow-by-realloc: vectors growing by half per step up to 8% of the heap, small objects", 256 * MIB,
     2000, wl_grow},
    {"seq700", "malloc 700 MiB, free it, malloc 1000 MiB (heap 1200 MiB)", 1200 * MIB, 0, wl_seq700},
    {"seq1000", "malloc 1000 MiB, free it, malloc 500 MiB twice (heap 1050 MiB)", 1050 * MIB, 0, wl_seq1000},
    {"tiny", "malloc 500 MiB and 40 B, free the 500 MiB, malloc 40 B and 500 MiB (heap 650 MiB)", 650 * MIB, 0,
     wl_tiny},
    {"churn", "array churn: 1-3 arrays of 16-300 MiB per iteration, small objects outliving it", 1024 * MIB, 2000,
     wl_churn},
};
const size_t workload_count = sizeof workload_kinds / sizeof workload_kinds[0];

const workload_kind *workload_find(const char *name) {
  for (size_t i = 0; i < workload_count; i++)
    if (strcmp(workload_kinds[i].name, name) == 0) return &workload_kinds[i];
  return NULL;
}

int workload_write(const workload_kind *k, const workload_params *p, trace_writer *out) {
  workload w = {.out = out};
  rng_seed(&w.r, p->seed);
  wl_text(&w, TRACE_INFO, "generated by pinheap gen %s --seed %llu --heap %zu --steps %u", k->name,
          (unsigned long long)p->seed, p->heap, p->steps);
  wl_text(&w, TRACE_INFO, "heap %zu", p->heap);
  k->make(&w, p);
  if (w.failed && !errno) errno = ENOMEM;
  return w.failed ? -1 : 0;
}
