#include "search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int search_one(search_result *res, search_probe_fn probe, search_progress_fn progress, void *ctx,
                      size_t size, bool *completed) {
  if (probe(ctx, size, completed) != 0) return -1;
  if (res->n == res->cap) {
    size_t cap = res->cap ? 2 * res->cap : 64;
    search_probe *p = realloc(res->probes, cap * sizeof *p);
    if (!p) return -1;
    res->probes = p;
    res->cap = cap;
  }
  res->probes[res->n++] = (search_probe){size, *completed};
  if (progress) progress(ctx, res->n);
  return 0;
}

static int search_cmp(const void *x, const void *y) {
  size_t a = ((const search_probe *)x)->size, b = ((const search_probe *)y)->size;
  return (a > b) - (a < b);
}

static size_t search_round(size_t x, size_t page) { return x / page * page; }

/* smallest, failing and all_from from the sorted probes. */
static void search_summarize(search_result *res) {
  qsort(res->probes, res->n, sizeof *res->probes, search_cmp);
  for (size_t i = 0; i < res->n; i++) {
    if (res->probes[i].completed && !res->smallest) res->smallest = res->probes[i].size;
    if (!res->probes[i].completed) res->failing = res->probes[i].size;
  }
  for (size_t i = 0; i < res->n; i++)
    if (res->probes[i].completed && res->probes[i].size > res->failing) {
      res->all_from = res->probes[i].size;
      break;
    }
}

int search_run(const search_params *sp, search_probe_fn probe, search_progress_fn progress, void *ctx,
               search_result *res) {
  memset(res, 0, sizeof *res);
  size_t page = sp->page, peak = (size_t)sp->peak;
  bool ok;
  size_t lo = peak > page ? search_round(peak - 1, page) : 0;
  size_t hi = search_round(peak * 2 > ((size_t)8 << 20) + peak ? peak * 2 : peak + ((size_t)8 << 20), page);
  if (hi > sp->max) hi = search_round(sp->max, page);
  for (;;) {
    if (search_one(res, probe, progress, ctx, hi, &ok) != 0) return -1;
    if (ok) break;
    lo = hi;
    if (hi >= sp->max) {
      search_summarize(res);
      return 0; /* none completes up to max */
    }
    hi = hi > sp->max / 2 ? search_round(sp->max, page) : search_round(hi * 2, page);
  }
  while (hi - lo > sp->resolution) {
    size_t mid = search_round(lo + (hi - lo) / 2, page);
    if (mid <= lo) break;
    if (search_one(res, probe, progress, ctx, mid, &ok) != 0) return -1;
    if (ok)
      hi = mid;
    else
      lo = mid;
  }
  res->bisected = hi;
  size_t step = search_round((size_t)((double)hi * sp->step / 100), page);
  if (step < page) step = page;
  for (unsigned k = 1; k <= sp->scan; k++)
    if (search_one(res, probe, progress, ctx, hi + k * step, &ok) != 0) return -1;
  for (unsigned k = 1; k <= sp->scan / 2 && hi > k * step && hi - k * step > peak; k++)
    if (search_one(res, probe, progress, ctx, hi - k * step, &ok) != 0) return -1;
  search_summarize(res);
  return 0;
}

void search_result_free(search_result *res) {
  free(res->probes);
  memset(res, 0, sizeof *res);
}

int search_check(const search_result *res) {
  int bad = 0;
  for (size_t i = 1; i < res->n; i++)
    if (res->probes[i - 1].size > res->probes[i].size) {
      fprintf(stderr, "search_check: probes %zu and %zu out of order (%zu > %zu)\n", i - 1, i,
              res->probes[i - 1].size, res->probes[i].size);
      bad++;
    }
  const size_t named[3] = {res->smallest, res->all_from, res->failing};
  for (int k = 0; k < 3; k++) {
    bool found = !named[k];
    for (size_t i = 0; i < res->n && !found; i++) found = res->probes[i].size == named[k];
    if (!found) {
      fprintf(stderr, "search_check: a result of %zu bytes that no probe made\n", named[k]);
      bad++;
    }
  }
  if (res->all_from && res->failing && res->all_from <= res->failing) {
    fprintf(stderr, "search_check: every probe from %zu completes, but %zu failed above it\n", res->all_from,
            res->failing);
    bad++;
  }
  return bad;
}
