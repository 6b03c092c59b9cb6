#include "engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "blockmap.h"
#include "cli.h"

/* A replay in progress. Invariants: blocks holds, for every block of the
 * trace whose allocation succeeded and that is not freed, its address and
 * bytes; live is the sum of those bytes and blocks_live their count. */
typedef struct engine {
  const engine_options *o;
  engine_result *res;
  pinheap *heap;
  blockmap blocks; /* id -> (address, bytes) */
  uint64_t live, blocks_live;
  uint64_t next_sample; /* the event after which the next sample is taken */
  uint64_t release_above; /* resident bytes beyond which pages are given back */
  bool release;
  unsigned taken;
  char phase[TRACE_MAX_TEXT + 1];
} engine;

const char *engine_describe(const trace_event *ev, char *buf, size_t len) {
  char a[32], b[32];
  switch (ev->kind) {
  case TRACE_MALLOC:
    snprintf(buf, len, "malloc(%s)", cli_human(a, sizeof a, ev->size));
    break;
  case TRACE_CALLOC:
    snprintf(buf, len, "calloc(%llu, %s)", (unsigned long long)ev->count, cli_human(a, sizeof a, ev->size));
    break;
  case TRACE_ALIGNED:
    snprintf(buf, len, "aligned_alloc(%s, %s)", cli_human(b, sizeof b, ev->align), cli_human(a, sizeof a, ev->size));
    break;
  case TRACE_REALLOC:
    snprintf(buf, len, "realloc(block %llu, %s)", (unsigned long long)ev->id, cli_human(a, sizeof a, ev->size));
    break;
  default:
    snprintf(buf, len, "%s(block %llu)", trace_kind_name(ev->kind), (unsigned long long)ev->id);
  }
  return buf;
}

static void engine_touch(void *p, uint64_t size) {
  if (!size) return;
  volatile unsigned char *b = p;
  b[0] = 0xa5;
  b[size - 1] = 0x5a;
}

#define ENGINE_RELEASE_MIN ((uint64_t)1 << 30)
#define ENGINE_RSS_EVERY 1024

/* The process's resident bytes, or 0 when unknown. */
static uint64_t engine_resident(void) {
  unsigned long long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  if (fscanf(f, "%llu %llu", &size, &resident) != 2) resident = 0;
  fclose(f);
  return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The whole pages inside the block at p of size bytes, back to the system
 * once the replay holds too much: its blocks hold nothing worth keeping. */
static void engine_release(const engine *g, void *p, uint64_t size) {
  if (!g->release) return;
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1), b = ((uintptr_t)p + size) & ~(page - 1);
  if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

/* The sample after event number e (0: at the start), when it is due; at
 * most o->samples + 1 of them. */
static void engine_sample_now(engine *g, uint64_t e) {
  const engine_options *o = g->o;
  engine_result *res = g->res;
  if (!o->samples || e < g->next_sample || res->n_samples > o->samples) return;
  engine_sample *s = &res->samples[res->n_samples++];
  s->event = e;
  s->live = g->live;
  pinheap_get_stats(g->heap, &s->stats);
  g->taken++;
  /* Sample k comes after ceil(k * events / samples) events. */
  g->next_sample = (o->events * g->taken + o->samples - 1) / o->samples;
  if (g->next_sample <= e) g->next_sample = e + 1;
  if (o->pic) picture_column(o->pic, g->heap, e, &s->stats);
}

static void engine_fail(engine *g, const trace_event *ev) {
  engine_result *res = g->res;
  res->failures++;
  res->completed = false;
  if (res->failures > 1) return;
  engine_failure *f = &res->first;
  f->event = res->events;
  f->request = res->requests;
  f->ev = *ev;
  f->live = g->live;
  snprintf(f->phase, sizeof f->phase, "%s", g->phase);
  snprintf(f->error, sizeof f->error, "%s", pinheap_last_error());
}

/* One block event; -1 when the tool's own table has no memory. */
static int engine_event(engine *g, const trace_event *ev) {
  engine_result *res = g->res;
  uint64_t addr = 0, bytes = 0;
  bool known = trace_kind_has_block(ev->kind) && !trace_kind_allocates(ev->kind) &&
               blockmap_get(&g->blocks, ev->id, &addr, &bytes);
  res->events++;
  if (ev->kind != TRACE_FREE) res->requests++;
  if (!trace_kind_allocates(ev->kind) && !known) {
    res->skipped++; /* its allocation failed */
    return 0;
  }
  void *p = (void *)(uintptr_t)addr, *q = NULL;
  uint64_t size = trace_event_bytes(ev);
  switch (ev->kind) {
  case TRACE_MALLOC:
    q = pinheap_malloc(g->heap, size);
    break;
  case TRACE_CALLOC:
    q = pinheap_calloc(g->heap, ev->count, ev->size);
    break;
  case TRACE_ALIGNED:
    q = pinheap_aligned_alloc(g->heap, ev->align, size);
    break;
  case TRACE_REALLOC:
    engine_release(g, p, bytes);
    q = pinheap_realloc(g->heap, p, size);
    break;
  case TRACE_FREE:
    engine_release(g, p, bytes);
    pinheap_free(g->heap, p);
    blockmap_take(&g->blocks, ev->id, NULL, NULL);
    g->live -= bytes;
    g->blocks_live--;
    return 0;
  default:
    return 0;
  }
  if (!q) {
    engine_fail(g, ev);
    return 0;
  }
  if (ev->kind != TRACE_CALLOC) engine_touch(q, size);
  if (blockmap_put(&g->blocks, ev->id, (uint64_t)(uintptr_t)q, size) != 0) return -1;
  g->live = g->live - bytes + size;
  if (ev->kind != TRACE_REALLOC) g->blocks_live++;
  if (g->live > res->peak_live) res->peak_live = g->live;
  return 0;
}

static int engine_free_one(uint64_t key, uint64_t addr, uint64_t bytes, void *arg) {
  (void)key, (void)bytes;
  pinheap_free(arg, (void *)(uintptr_t)addr);
  return 0;
}

int engine_run(trace_reader *r, const engine_options *o, engine_result *res) {
  memset(res, 0, sizeof *res);
  engine g = {.o = o, .res = res};
  g.release_above = o->peak_live * 2 > ENGINE_RELEASE_MIN ? o->peak_live * 2 : ENGINE_RELEASE_MIN;
  blockmap_init(&g.blocks);
  if (o->samples && !(res->samples = calloc((size_t)o->samples + 1, sizeof *res->samples))) {
    snprintf(res->error, sizeof res->error, "no memory for %u samples", o->samples);
    return -1;
  }
  g.heap = pinheap_create(&o->heap);
  if (!g.heap) {
    snprintf(res->error, sizeof res->error, "%s", pinheap_last_error());
    return 0;
  }
  res->created = true;
  res->completed = true;
  engine_sample_now(&g, 0);
  trace_event ev;
  int got, rc = 0;
  while ((got = trace_reader_next(r, &ev)) == 1) {
    if (ev.kind == TRACE_PHASE) {
      snprintf(g.phase, sizeof g.phase, "%s", ev.text);
      if (o->measure && strcmp(ev.text, o->measure) == 0) {
        pinheap_trim(g.heap);
        pinheap_get_stats(g.heap, &res->measure);
        res->measured = true;
        res->measure_live = g.live;
        res->measure_blocks = g.blocks_live;
      }
      continue;
    }
    if (!trace_kind_has_block(ev.kind)) continue;
    if (engine_event(&g, &ev) != 0) {
      snprintf(res->error, sizeof res->error, "no memory for the table of blocks");
      rc = -1;
      break;
    }
    engine_sample_now(&g, res->events);
    if (!g.release && res->events % ENGINE_RSS_EVERY == 0) g.release = engine_resident() > g.release_above;
    if (o->prog && (res->events & 1023) == 0) progress_update(o->prog, res->events);
    if (o->stop_at_failure && res->failures) break;
  }
  if (got < 0) rc = -1;
  pinheap_trim(g.heap);
  pinheap_get_stats(g.heap, &res->end);
  blockmap_walk(&g.blocks, engine_free_one, g.heap);
  blockmap_fini(&g.blocks);
  pinheap_destroy(g.heap);
  return rc;
}

void engine_result_free(engine_result *res) {
  free(res->samples);
  res->samples = NULL;
}
