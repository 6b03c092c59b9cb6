/*
 * libFuzzer target: the trace reader (tools/trace_reader.c) on arbitrary
 * bytes, binary or text. It must never crash, and what it accepts must
 * survive the writers: the records read, written binary and read again,
 * and written as text and read again, are the same records, and the binary
 * written from either is the same bytes. A refused input's error names an
 * offset.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace_reader.h"

#define FUZZ_MAX_EVENTS 4096

static void fuzz_fail(const char *what) {
  fprintf(stderr, "fuzz_trace: %s\n", what);
  abort();
}

/* Reads buf; the records into ev (at most FUZZ_MAX_EVENTS, *n of them);
 * whether the end record came; -1 on an error. */
static int fuzz_read(const uint8_t *buf, size_t len, trace_event *ev, size_t *n, bool *ended) {
  FILE *in = fmemopen((void *)buf, len, "rb");
  if (!in) return -2;
  trace_reader r;
  int got = trace_reader_open(&r, in, "input") == 0 ? 1 : -1;
  *n = 0;
  trace_event e;
  while (got == 1 && (got = trace_reader_next(&r, &e)) == 1)
    if (*n < FUZZ_MAX_EVENTS) ev[(*n)++] = e;
  if (got < 0 && !strstr(r.error, "offset")) fuzz_fail("an error without an offset");
  *ended = r.ended;
  trace_reader_close(&r);
  fclose(in);
  return got < 0 ? -1 : 0;
}

static uint8_t *fuzz_write(const trace_event *ev, size_t n, bool text, bool end, size_t *len) {
  char *out = NULL;
  FILE *f = open_memstream(&out, len);
  trace_writer w;
  if (!f || trace_writer_open(&w, f, text) != 0) fuzz_fail("cannot open the writer");
  for (size_t i = 0; i < n; i++)
    if (trace_writer_put(&w, &ev[i]) != 0) fuzz_fail("the writer refused a record the reader accepted");
  if (end && trace_writer_end(&w) != 0) fuzz_fail("the writer refused the end record");
  fclose(f);
  return (uint8_t *)out;
}

static void fuzz_same(const trace_event *a, const trace_event *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (a[i].kind != b[i].kind || a[i].thread != b[i].thread || a[i].dt != b[i].dt || a[i].id != b[i].id ||
        trace_event_bytes(&a[i]) != trace_event_bytes(&b[i]) || a[i].align != b[i].align ||
        strcmp(a[i].text, b[i].text) != 0)
      fuzz_fail("a record changed through the writers");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static trace_event ev[FUZZ_MAX_EVENTS], again[FUZZ_MAX_EVENTS];
  size_t n, m, blen, tlen, b2len;
  bool ended, ended2;
  if (size == 0 || fuzz_read(data, size, ev, &n, &ended) != 0 || n == FUZZ_MAX_EVENTS) return 0;
  uint8_t *bin = fuzz_write(ev, n, false, ended, &blen);
  if (fuzz_read(bin, blen, again, &m, &ended2) != 0 || m != n || ended2 != ended)
    fuzz_fail("the binary written does not read back");
  fuzz_same(ev, again, n);
  uint8_t *text = fuzz_write(ev, n, true, ended, &tlen);
  if (fuzz_read(text, tlen, again, &m, &ended2) != 0 || m != n || ended2 != ended)
    fuzz_fail("the text written does not read back");
  fuzz_same(ev, again, n);
  uint8_t *bin2 = fuzz_write(again, m, false, ended, &b2len);
  if (b2len != blen || memcmp(bin, bin2, blen) != 0) fuzz_fail("binary -> text -> binary changed the bytes");
  free(bin);
  free(text);
  free(bin2);
  return 0;
}
