/*
 * `pinheap offline TRACE...`: the heap a placement that knows every
 * block's lifetime needs for a trace, for comparison with the policies'
 * `pinheap size`.
 *
 * Every block above OFFLINE_LARGE bytes (the extents the extent manager
 * places, page-rounded) is placed offline, greedy by size: the largest
 * first (ties: the earlier born), each at the lowest address where it
 * meets no block placed before it that is live at the same time (the
 * heuristic used to plan the buffers of a computation whose lifetimes are
 * known). The blocks of at most OFFLINE_LARGE bytes count as their live
 * bytes (as if packed without loss) above the extents live at the same
 * moment. The heap needed is the largest, over the trace's block events,
 * of the highest end of the extents live then plus the small blocks' live
 * bytes then. No online policy is promised to reach it, since it knows
 * when every block dies; nor is it a lower bound (greedy by size is not
 * proved the least).
 *
 * Time is counted in block events (an allocation, a realloc, a free); a
 * block is live over [birth, death), a realloc ending the old block and
 * starting the new one at the same event. Placed extents are indexed by
 * buckets of OFFLINE_BUCKET events, so that a block meets only those that
 * share a bucket with its lifetime.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

#define OFFLINE_PAGE ((uint64_t)4096)
#define OFFLINE_LARGE ((uint64_t)14 << 10) /* the default large_threshold */
#define OFFLINE_BUCKET ((uint64_t)1024)

void offline_usage(FILE *out) {
  fprintf(out,
          "usage: pinheap offline TRACE...\n"
          "\n"
          "Places each TRACE's blocks above 14 KiB (page-rounded) knowing when each\n"
          "dies: the largest first, each at the lowest address where it meets no\n"
          "block live at the same time; the smaller blocks count as their live bytes.\n"
          "Prints, per trace, its peak live bytes M, the heap that placement needs,\n"
          "and H/M, then the mean H/M: what a placement that knows every lifetime\n"
          "needs, to set beside `pinheap size` (not a lower bound).\n"
          "\n"
          "Exit status: 0, 1 when a trace holds no allocation, 2 on a usage error, a\n"
          "trace that cannot be read or whose sizes pass 64 bits, or no memory.\n");
}

/* An extent: its bytes, lifetime [birth, death) in events, and place. */
typedef struct offline_extent {
  uint64_t bytes, birth, death, off;
} offline_extent;

/* A growable array of n items of size bytes. */
typedef struct offline_vec {
  void *items;
  size_t n, cap, size;
} offline_vec;

static _Noreturn void offline_no_memory(void) {
  fprintf(stderr, "pinheap offline: out of memory\n");
  exit(2);
}

static _Noreturn void offline_overflow(const char *path) {
  fprintf(stderr, "pinheap offline: %s: its sizes add up past 64 bits\n", path);
  exit(2);
}

static void *offline_push(offline_vec *v) {
  if (v->n == v->cap) {
    size_t cap = v->cap ? 2 * v->cap : 64;
    void *items = realloc(v->items, cap * v->size);
    if (!items) offline_no_memory();
    v->items = items;
    v->cap = cap;
  }
  return (char *)v->items + v->n++ * v->size;
}

/* The trace's extents and, per event, the small blocks' live bytes. */
typedef struct offline_trace {
  offline_vec extents; /* offline_extent */
  offline_vec small;   /* uint64_t per event */
  uint64_t peak;
} offline_trace;

static void offline_trace_fini(offline_trace *tr) {
  free(tr->extents.items);
  free(tr->small.items);
}

/* The block id of bytes, born at birth, dies at event t. */
static void offline_gone(offline_trace *tr, uint64_t bytes, uint64_t birth, uint64_t t, uint64_t *small) {
  if (bytes <= OFFLINE_LARGE) {
    *small -= bytes;
    return;
  }
  offline_extent *e = offline_push(&tr->extents);
  *e = (offline_extent){(bytes + OFFLINE_PAGE - 1) / OFFLINE_PAGE * OFFLINE_PAGE, birth, t, 0};
}

/* blockmap_walk over the blocks live at the end of the trace. */
typedef struct offline_end {
  offline_trace *tr;
  const blockmap *births;
  uint64_t small;
} offline_end;

static int offline_end_one(uint64_t id, uint64_t bytes, uint64_t unused, void *arg) {
  (void)unused;
  offline_end *end = arg;
  uint64_t birth = 0;
  blockmap_get(end->births, id, &birth, NULL);
  offline_gone(end->tr, bytes, birth, end->tr->small.n, &end->small);
  return 0;
}

static int offline_read(const char *path, offline_trace *tr) {
  FILE *f;
  trace_reader r;
  if (cli_open_trace("offline", path, &f, &r) != 0) return -1;
  blockmap births; /* id -> birth */
  blockmap_init(&births);
  trace_event ev;
  uint64_t small = 0, live = 0;
  int got;
  while ((got = trace_reader_next(&r, &ev)) == 1) {
    if (!trace_kind_has_block(ev.kind)) continue;
    uint64_t t = tr->small.n, birth = 0;
    if (ev.kind == TRACE_REALLOC || ev.kind == TRACE_FREE) {
      blockmap_take(&births, ev.id, &birth, NULL);
      offline_gone(tr, ev.old_size, birth, t, &small);
      live -= ev.old_size;
    }
    if (ev.kind != TRACE_FREE) {
      uint64_t bytes = trace_event_bytes(&ev);
      if (blockmap_put(&births, ev.id, t, 0) != 0) offline_no_memory();
      if (bytes <= OFFLINE_LARGE) small += bytes;
      if (bytes > UINT64_MAX / 2 - OFFLINE_PAGE || __builtin_add_overflow(live, bytes, &live)) offline_overflow(path);
    }
    *(uint64_t *)offline_push(&tr->small) = small;
  }
  if (got < 0) {
    fprintf(stderr, "pinheap offline: %s\n", r.error);
  } else {
    /* Blocks never freed live to the end. */
    offline_end end = {tr, &births, small};
    blockmap_walk(&r.live, offline_end_one, &end);
    tr->peak = r.peak_live_bytes;
  }
  blockmap_fini(&births);
  cli_close_trace(f, &r);
  return got < 0 ? -1 : 0;
}

static int offline_cmp(const void *a, const void *b) {
  const offline_extent *x = a, *y = b;
  if (x->bytes != y->bytes) return x->bytes > y->bytes ? -1 : 1;
  return (x->birth > y->birth) - (x->birth < y->birth);
}

static int offline_cmp_range(const void *a, const void *b) {
  const uint64_t *x = a, *y = b;
  return (x[0] > y[0]) - (x[0] < y[0]);
}

/* Places the extents (sorted largest first), greedy by size. */
static void offline_place(const char *path, offline_extent *ext, size_t n, uint64_t events) {
  size_t nb = events / OFFLINE_BUCKET + 2;
  offline_vec *buckets = calloc(nb, sizeof *buckets);
  size_t *seen = calloc(n ? n : 1, sizeof *seen); /* seen[j] = i + 1: met while placing i */
  offline_vec busy = {.size = 2 * sizeof(uint64_t)};
  if (!buckets || !seen) offline_no_memory();
  for (size_t k = 0; k < nb; k++) buckets[k].size = sizeof(size_t);
  for (size_t i = 0; i < n; i++) {
    offline_extent *e = &ext[i];
    uint64_t first = e->birth / OFFLINE_BUCKET, last = (e->death > e->birth ? e->death - 1 : e->birth) / OFFLINE_BUCKET;
    busy.n = 0;
    for (uint64_t k = first; k <= last; k++) {
      const size_t *in = buckets[k].items;
      for (size_t m = 0; m < buckets[k].n; m++) {
        size_t j = in[m];
        if (seen[j] == i + 1) continue;
        seen[j] = i + 1;
        if (ext[j].birth < e->death && e->birth < ext[j].death) {
          uint64_t *range = offline_push(&busy);
          range[0] = ext[j].off;
          range[1] = ext[j].off + ext[j].bytes;
        }
      }
    }
    if (busy.n > 1) qsort(busy.items, busy.n, busy.size, offline_cmp_range);
    uint64_t off = 0;
    for (size_t m = 0; m < busy.n; m++) {
      const uint64_t *range = (const uint64_t *)busy.items + 2 * m;
      if (off + e->bytes <= range[0]) break;
      if (range[1] > off) off = range[1];
    }
    if (off + e->bytes < off) offline_overflow(path);
    e->off = off;
    for (uint64_t k = first; k <= last; k++) *(size_t *)offline_push(&buckets[k]) = i;
  }
  for (size_t k = 0; k < nb; k++) free(buckets[k].items);
  free(buckets);
  free(seen);
  free(busy.items);
}

/* The heap the placement needs: the largest, over events, of the highest
 * end of the extents live then plus the small blocks' live bytes then. */
static uint64_t offline_heap(const char *path, const offline_extent *ext, size_t n, const uint64_t *small,
                             uint64_t events) {
  uint64_t *top = calloc(events ? events : 1, sizeof *top), need = 0;
  if (!top) offline_no_memory();
  for (size_t i = 0; i < n; i++)
    for (uint64_t t = ext[i].birth; t < ext[i].death && t < events; t++)
      if (ext[i].off + ext[i].bytes > top[t]) top[t] = ext[i].off + ext[i].bytes;
  for (uint64_t t = 0; t < events; t++) {
    if (top[t] + small[t] < top[t]) offline_overflow(path);
    if (top[t] + small[t] > need) need = top[t] + small[t];
  }
  free(top);
  return need;
}

int offline_main(int argc, char **argv) {
  if (argc < 2) {
    offline_usage(stderr);
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      offline_usage(stdout);
      return 0;
    }
  }
  double sum = 0;
  for (int i = 1; i < argc; i++) {
    offline_trace tr = {.extents = {.size = sizeof(offline_extent)}, .small = {.size = sizeof(uint64_t)}};
    int err = offline_read(argv[i], &tr) != 0 ? 2 : 0;
    if (!err && !tr.peak) {
      fprintf(stderr, "pinheap offline: %s: no allocation\n", argv[i]);
      err = 1;
    }
    if (err) {
      offline_trace_fini(&tr);
      return err;
    }
    offline_extent *ext = tr.extents.items;
    if (tr.extents.n > 1) qsort(ext, tr.extents.n, sizeof *ext, offline_cmp);
    offline_place(argv[i], ext, tr.extents.n, tr.small.n);
    uint64_t need = offline_heap(argv[i], ext, tr.extents.n, tr.small.items, tr.small.n);
    const char *base = strrchr(argv[i], '/');
    if (i == 1) printf("%-40s %14s %14s %7s\n", "trace", "peak live M", "heap needed", "H/M");
    printf("%-40s %14llu %14llu %7.3f\n", base ? base + 1 : argv[i], (unsigned long long)tr.peak,
           (unsigned long long)need, (double)need / (double)tr.peak);
    sum += (double)need / (double)tr.peak;
    offline_trace_fini(&tr);
  }
  printf("mean H/M over %d trace%s: %.3f\n", argc - 1, argc == 2 ? "" : "s", sum / (argc - 1));
  return 0;
}
