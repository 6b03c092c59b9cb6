#include "replay.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

typedef struct replay_block {
  unsigned char *ptr;
  uint64_t size;
} replay_block;

static double replay_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int replay_block_cmp(const void *x, const void *y) {
  uintptr_t a = (uintptr_t)((const replay_block *)x)->ptr, b = (uintptr_t)((const replay_block *)y)->ptr;
  return (a > b) - (a < b);
}

/* One column: the live blocks sorted by address (scratch: room for every
 * slot), each row the kind that covers most of it. */
static void replay_sample(replay_columns *c, const replay_block *blocks, uint64_t slots, replay_block *scratch,
                          uintptr_t base, size_t heap, uint64_t event) {
  if (c->n == c->max) return;
  size_t n = 0;
  uint64_t live = 0;
  for (uint64_t i = 0; i < slots; i++)
    if (blocks[i].ptr) {
      scratch[n++] = blocks[i];
      live += blocks[i].size;
    }
  qsort(scratch, n, sizeof *scratch, replay_block_cmp);
  unsigned char *cells = c->cells + c->n * c->rows;
  double row = (double)heap / (double)c->rows;
  /* Bytes of small and of large blocks in each row. */
  double *small = calloc(2 * c->rows, sizeof *small), *large = small ? small + c->rows : NULL;
  uint64_t gap_max = 0, covered_to = base;
  for (size_t k = 0; k < n; k++) {
    uintptr_t a = (uintptr_t)scratch[k].ptr, e = a + scratch[k].size;
    if (a > covered_to && a - covered_to > gap_max) gap_max = a - covered_to;
    if (e > covered_to) covered_to = e;
    if (!small || a < base || e > base + heap) continue;
    for (size_t r = (size_t)((double)(a - base) / row); r < c->rows && (double)r * row < (double)(e - base); r++) {
      double lo = (double)r * row, hi = lo + row;
      double from = (double)(a - base) > lo ? (double)(a - base) : lo, to = (double)(e - base) < hi ? (double)(e - base) : hi;
      if (to > from) (scratch[k].size < REPLAY_SMALL_MAX ? small : large)[r] += to - from;
    }
  }
  if (base + heap > covered_to && base + heap - covered_to > gap_max) gap_max = base + heap - covered_to;
  for (size_t r = 0; r < c->rows; r++) {
    double s = small ? small[r] : 0, l = large ? large[r] : 0;
    cells[r] = s + l < row / 2 ? REPLAY_CELL_FREE : s > l ? REPLAY_CELL_SMALL : REPLAY_CELL_LARGE;
  }
  free(small);
  c->event[c->n] = event;
  c->frag[c->n] = heap > live ? (double)gap_max / (double)(heap - live) : -1;
  c->used[c->n] = heap ? (double)live / (double)heap : 0;
  c->n++;
}

static void *replay_call(const peer *p, peer_heap *h, const ops_rec *r, void *old) {
  switch (r->kind) {
  case OPS_MALLOC: return p->malloc(h, r->size);
  case OPS_CALLOC: return p->calloc(h, r->arg, r->size);
  case OPS_REALLOC: return p->realloc(h, old, r->size);
  case OPS_ALIGNED: return p->aligned(h, r->arg, r->size);
  default: return NULL;
  }
}

int replay_run(const peer *p, const ops *o, const replay_options *ro, replay_result *res) {
  memset(res, 0, sizeof *res);
  uint64_t slots = o->h.slots ? o->h.slots : 1;
  size_t len = slots * sizeof(replay_block);
  replay_block *blocks = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  replay_block *scratch = ro->cols ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : NULL;
  if (blocks == MAP_FAILED || scratch == MAP_FAILED) {
    snprintf(res->error, sizeof res->error, "no memory for %llu slots", (unsigned long long)slots);
    if (blocks != MAP_FAILED) munmap(blocks, len);
    return -1;
  }
  peer_heap *h = p->create(p, ro->heap, 1, false, res->error, sizeof res->error);
  if (!h) {
    munmap(blocks, len);
    if (scratch) munmap(scratch, len);
    return 0;
  }
  res->created = true;
  res->region = p->extent ? p->extent(h) : ro->heap;
  if (p->thread_start) p->thread_start(h);
  uintptr_t base = ro->cols && p->base ? (uintptr_t)p->base(h) : 0;
  uint64_t every = ro->cols && ro->cols->max > 1 ? (o->h.n + ro->cols->max - 2) / (ro->cols->max - 1) : 0;
  if (ro->cols && base) replay_sample(ro->cols, blocks, slots, scratch, base, ro->heap, 0);
  uint64_t live = 0;
  double t0 = replay_now();
  for (uint64_t i = 0; i < o->h.n; i++) {
    const ops_rec *r = &o->rec[i];
    replay_block *b = &blocks[r->slot];
    if (r->kind == OPS_MEASURE) {
      if (p->space && p->space(h, &res->space) == 0) {
        res->has_space = true;
        res->space_live = live;
      }
    } else if (r->kind == OPS_FREE) {
      if (b->ptr) {
        p->free(h, b->ptr);
        live -= b->size;
        b->ptr = NULL;
      }
    } else if (r->kind == OPS_REALLOC && !b->ptr) {
      /* its allocation failed: skipped */
    } else {
      unsigned char *q = replay_call(p, h, r, b->ptr);
      uint64_t want = ops_bytes(r);
      if (q && want && p->owns && !p->owns(h, q, want)) {
        /* Memory from beyond the region: the request failed in this heap
         * (a realloc's old block is gone with it). */
        if (!res->outside) res->outside_size = want;
        res->outside++;
        p->free(h, q);
        q = NULL;
        if (r->kind == OPS_REALLOC && b->ptr) {
          live -= b->size;
          b->ptr = NULL;
        }
      }
      if (!q && want) {
        if (!res->failures) {
          res->fail_record = i + 1;
          res->fail_live = live;
          res->fail_size = want;
          if (ro->cols) ro->cols->failure = i + 1;
        }
        res->failures++;
        if (ro->stop_at_failure) break;
        continue;
      }
      if (b->ptr) live -= b->size;
      b->ptr = q;
      b->size = want;
      live += want;
      if (q && want) q[0] = q[want - 1] = (unsigned char)i;
    }
    if (every && base && (i + 1) % every == 0) replay_sample(ro->cols, blocks, slots, scratch, base, ro->heap, i + 1);
  }
  res->seconds = replay_now() - t0;
  res->completed = res->failures == 0;
  if (o->h.measure == o->h.n && res->completed && p->space && p->space(h, &res->space) == 0) {
    res->has_space = true;
    res->space_live = live;
  }
  for (uint64_t s = 0; s < slots; s++)
    if (blocks[s].ptr) p->free(h, blocks[s].ptr);
  if (p->thread_stop) p->thread_stop(h);
  p->destroy(h);
  munmap(blocks, len);
  if (scratch) munmap(scratch, len);
  return 0;
}

int replay_columns_init(replay_columns *c, size_t rows, size_t max) {
  memset(c, 0, sizeof *c);
  c->rows = rows;
  c->max = max;
  c->cells = calloc(rows, max);
  c->event = calloc(max, sizeof *c->event);
  c->frag = calloc(max, sizeof *c->frag);
  c->used = calloc(max, sizeof *c->used);
  if (c->cells && c->event && c->frag && c->used) return 0;
  replay_columns_fini(c);
  return -1;
}

void replay_columns_fini(replay_columns *c) {
  free(c->cells);
  free(c->event);
  free(c->frag);
  free(c->used);
  memset(c, 0, sizeof *c);
}

int replay_columns_write(const replay_columns *c, uint64_t events, size_t region, FILE *out) {
  fprintf(out, "columns %zu %zu %llu %llu %zu\n", c->rows, c->n, (unsigned long long)events,
          (unsigned long long)c->failure, region);
  for (size_t k = 0; k < c->n; k++) {
    fprintf(out, "%llu %.6f %.6f ", (unsigned long long)c->event[k], c->frag[k], c->used[k]);
    for (size_t r = 0; r < c->rows; r++) fputc('0' + c->cells[k * c->rows + r], out);
    fputc('\n', out);
  }
  return ferror(out) ? -1 : 0;
}
