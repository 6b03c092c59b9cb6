/*
 * search: the smallest heap that completes a workload, for `pinheap size`
 * and the comparison of allocators (bench/compare), over a probe that
 * answers whether a heap of a given size completes it.
 *
 * Whether a heap of S bytes completes is not monotone in S (a heap a page
 * larger places differently and may fail where a smaller one passed), so
 * one bisection is not the answer:
 *   1. below the peak live bytes M no heap can complete; heaps of 2M (at
 *      least M + 8 MiB), 4M, ... are probed until one completes (up to max);
 *   2. bisection between the largest failing and the smallest completing
 *      heap, to resolution bytes, gives B;
 *   3. a scan probes B + k steps of step percent of B, scan steps above and
 *      half as many below (not below M).
 * The result: the smallest heap any probe saw complete, and the smallest
 * probed heap from which every larger probe completed. Both are claims
 * about the heaps probed only: between two probes a heap may fail.
 *
 * Invariants of a search_result: probes[0..n) sorted by size once
 * search_run returns; smallest, all_from and failing are 0 or sizes of
 * probes; all_from > failing when both are set.
 */
#ifndef PINHEAP_TOOLS_SEARCH_H
#define PINHEAP_TOOLS_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct search_params {
  uint64_t peak;      /* M: the workload's peak live bytes */
  size_t page;        /* sizes probed are multiples of it */
  size_t resolution;  /* the bisection stops at this interval (>= page) */
  size_t max;         /* the largest heap probed */
  unsigned scan;      /* probes above the bisection's result (scan / 2 below) */
  double step;        /* the scan's step, percent of that result */
} search_params;

typedef struct search_probe {
  size_t size;
  bool completed;
} search_probe;

typedef struct search_result {
  search_probe *probes;
  size_t n, cap;
  size_t bisected; /* the bisection's result; 0: none completed up to max */
  size_t smallest; /* the smallest completing probe; 0: none */
  size_t all_from; /* every probe from here up completed; 0: none */
  size_t failing;  /* the largest failing probe; 0: none */
} search_result;

/* Answers whether a heap of size bytes completes the workload: 0 with
 * *completed set, or -1 (the search stops with -1). */
typedef int (*search_probe_fn)(void *ctx, size_t size, bool *completed);
/* Told after every probe, with the number made so far; may be NULL. */
typedef void (*search_progress_fn)(void *ctx, size_t probes);

/* Runs the search; *res (zeroed first) holds every probe. 0, or -1 when a
 * probe failed or no memory was left for the record (res keeps what was
 * probed; search_result_free it either way). */
int search_run(const search_params *sp, search_probe_fn probe, search_progress_fn progress, void *ctx,
               search_result *res);
void search_result_free(search_result *res);

/* Number of broken invariants of res, each described on stderr. */
int search_check(const search_result *res);

#endif
