/*
 * engine: replays a trace through the library. Each block event of the
 * trace becomes the call it records (pinheap_malloc, _calloc, _realloc,
 * _aligned_alloc, _free) on one heap, in the trace's order, from one
 * thread; new blocks are written at their first and last byte. Once the
 * process holds more than twice the trace's peak live bytes (at least
 * 1 GiB), the whole pages of a block are given back to the system (madvise)
 * before it is freed or reallocated, so that the replay's memory stays near
 * the live bytes whatever the policy (a bump pointer never reuses what it
 * freed, and a realloc that moves copies the block). A request
 * that fails is counted and the replay goes on: later events on a block
 * whose allocation failed are skipped. Stats are sampled at evenly spaced
 * events (and drawn into a picture when one is given).
 */
#ifndef PINHEAP_TOOLS_ENGINE_H
#define PINHEAP_TOOLS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "picture.h"
#include "pinheap.h"
#include "progress.h"
#include "trace_reader.h"

/* The heap, sampled after an event. */
typedef struct engine_sample {
  uint64_t event;
  uint64_t live; /* bytes the replayed blocks hold (their sizes as asked) */
  pinheap_stats stats;
} engine_sample;

typedef struct engine_options {
  pinheap_options heap;
  uint64_t events;     /* block events in the trace (a first pass): spaces the samples */
  uint64_t peak_live;  /* the trace's peak live bytes (the first pass) */
  unsigned samples;    /* after as many evenly spaced events, and at the start; 0: none */
  picture *pic;        /* a column at each sample, or NULL */
  progress *prog;      /* or NULL */
  const char *measure; /* at a phase mark of this text, trim and keep the stats; or NULL */
  bool stop_at_failure;
} engine_options;

typedef struct engine_failure {
  uint64_t event;   /* its place among the block events, from 1 */
  uint64_t request; /* its place among the allocation requests, from 1 */
  trace_event ev;
  uint64_t live;    /* bytes live before it */
  char phase[TRACE_MAX_TEXT + 1]; /* the last phase mark before it, or "" */
  char error[512];  /* pinheap_last_error() */
} engine_failure;

typedef struct engine_result {
  bool created;          /* the heap was created; else error says why */
  char error[512];
  bool completed;        /* every request succeeded */
  uint64_t events, requests, failures, skipped;
  engine_failure first;  /* when failures > 0 */
  uint64_t peak_live;
  bool measured;         /* the measure mark was met */
  pinheap_stats measure; /* the stats there (after pinheap_trim) */
  uint64_t measure_live, measure_blocks;
  pinheap_stats end;     /* after the last event, after pinheap_trim */
  engine_sample *samples;
  size_t n_samples;
} engine_result;

/* Replays what r has still to read under o into *res (engine_result_free
 * it). Returns 0 when the trace was read to its end or the replay stopped
 * at a failure (o->stop_at_failure), whatever the outcome; -1 when the
 * reader failed (r->error) or the tool ran out of memory (res->error). */
int engine_run(trace_reader *r, const engine_options *o, engine_result *res);
void engine_result_free(engine_result *res);

/* "malloc(1.5 MiB)", "aligned_alloc(4096, 100 B)", "realloc(block 3, 2 MiB)". */
const char *engine_describe(const trace_event *ev, char *buf, size_t len);

#endif
