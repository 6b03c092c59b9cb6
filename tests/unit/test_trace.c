/*
 * Unit tests of the trace module (tools/trace.c, tools/trace_reader.c) and
 * of the block table (tools/blockmap.c): random traces written binary and
 * text and read back, binary -> text -> binary byte for byte, every
 * truncation and a set of corruptions answered with an error naming the
 * offset, the text form's grammar, the table against a shadow model.
 *
 *   test_trace [seed]
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asserts.h"
#include "blockmap.h"
#include "seed.h"
#include "trace_reader.h"

/* A random valid trace of n records: blocks of random kinds and sizes
 * (ids sequential, sometimes not), frees and reallocs of live blocks,
 * phases and info, threads changing, times. */
static size_t random_trace(trace_event *ev, size_t n) {
  uint64_t live[256], bytes[256];
  size_t nlive = 0, k = 0, next = 0;
  uint32_t thread = 0;
  while (k < n) {
    trace_event e = {0};
    if (seed_below(8) == 0) thread = (uint32_t)seed_below(seed_below(2) ? 4 : 1000000);
    e.thread = thread;
    e.dt = seed_below(3) ? seed_below(1000) : seed_next() >> seed_below(64);
    unsigned what = (unsigned)seed_below(20);
    if (what < 8 && nlive < 256) {
      e.kind = (trace_kind)(TRACE_MALLOC + (what % 3 == 1 ? 1 : what % 3 == 2 ? 3 : 0));
      e.id = seed_below(10) ? next : next + 1000 + seed_below(1000000);
      next = e.id + 1;
      e.size = seed_below(4) ? seed_below(5000) : seed_next() >> (2 + seed_below(60));
      if (e.kind == TRACE_CALLOC) {
        e.count = 1 + seed_below(100);
        e.size /= e.count;
      }
      if (e.kind == TRACE_ALIGNED) e.align = (uint64_t)1 << seed_below(40);
      live[nlive] = e.id;
      bytes[nlive++] = trace_event_bytes(&e);
    } else if (what < 16 && nlive) {
      size_t i = (size_t)seed_below(nlive);
      e.id = live[i];
      if (what < 13) {
        e.kind = TRACE_FREE;
        live[i] = live[--nlive];
        bytes[i] = bytes[nlive];
      } else {
        e.kind = TRACE_REALLOC;
        e.size = 1 + seed_below(100000);
        bytes[i] = e.size;
      }
    } else if (what < 18) {
      e.kind = what == 16 ? TRACE_PHASE : TRACE_INFO;
      e.text_len = 1 + (size_t)seed_below(TRACE_MAX_TEXT);
      for (size_t c = 0; c < e.text_len; c++) e.text[c] = (char)(0x21 + seed_below(0x7e - 0x21 + 1));
      if (e.text_len > 2) e.text[1] = ' '; /* inner spaces are kept */
      e.text[e.text_len] = '\0';
    } else {
      continue;
    }
    ev[k++] = e;
  }
  return k;
}

/* Writes the events to a memory buffer, with an end record. */
static char *write_trace(const trace_event *ev, size_t n, bool text, size_t *len) {
  char *buf = NULL;
  FILE *out = open_memstream(&buf, len);
  assert_non_null(out);
  trace_writer w;
  assert_int_equal(trace_writer_open(&w, out, text), 0);
  for (size_t i = 0; i < n; i++) assert_int_equal(trace_writer_put(&w, &ev[i]), 0);
  assert_int_equal(trace_writer_end(&w), 0);
  assert_int_equal(fclose(out), 0);
  return buf;
}

/* Reads buf into ev (up to max); returns the count, -1 on an error (its
 * text in why). */
static long read_trace(const char *buf, size_t len, trace_event *ev, size_t max, char *why, bool *ended) {
  FILE *in = fmemopen((void *)buf, len, "rb");
  assert_non_null(in);
  trace_reader r;
  long n = 0;
  int got = trace_reader_open(&r, in, "t") == 0 ? 1 : -1;
  trace_event e;
  while (got == 1 && (got = trace_reader_next(&r, &e)) == 1)
    if ((size_t)n < max) ev[n++] = e;
  if (got < 0) snprintf(why, 512, "%s", r.error);
  if (ended) *ended = r.ended;
  trace_reader_close(&r);
  fclose(in);
  return got < 0 ? -1 : n;
}

static void assert_same_events(const trace_event *a, const trace_event *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(a[i].kind, b[i].kind);
    assert_int_equal(a[i].thread, b[i].thread);
    assert_int_equal(a[i].dt, b[i].dt);
    assert_int_equal(a[i].id, b[i].id);
    assert_int_equal(trace_event_bytes(&a[i]), trace_event_bytes(&b[i]));
    assert_int_equal(a[i].align, b[i].align);
    assert_string_equal(a[i].text, b[i].text);
  }
}

#define N_EVENTS 3000

static void test_round_trip(void **state) {
  (void)state;
  static trace_event ev[N_EVENTS], back[N_EVENTS];
  char why[512];
  for (int round = 0; round < 20; round++) {
    size_t n = random_trace(ev, N_EVENTS), blen, tlen, b2len;
    char *bin = write_trace(ev, n, false, &blen);
    bool ended = false;
    assert_int_equal(read_trace(bin, blen, back, N_EVENTS, why, &ended), (long)n);
    assert_true(ended);
    assert_same_events(ev, back, n);
    /* text, and binary again from the text: the same bytes */
    char *text = write_trace(back, n, true, &tlen);
    assert_int_equal(read_trace(text, tlen, back, N_EVENTS, why, &ended), (long)n);
    assert_true(ended);
    assert_same_events(ev, back, n);
    char *bin2 = write_trace(back, n, false, &b2len);
    assert_int_equal(blen, b2len);
    assert_memory_equal(bin, bin2, blen);
    free(bin);
    free(text);
    free(bin2);
  }
}

/* Every prefix of a binary trace: the records before the cut, then either
 * a clean end (at a record boundary) or an error naming an offset. */
static void test_every_truncation(void **state) {
  (void)state;
  static trace_event ev[200], back[200];
  size_t n = random_trace(ev, 200), len;
  char *bin = write_trace(ev, n, false, &len);
  char why[512];
  size_t clean = 0, errors = 0;
  for (size_t cut = 0; cut < len; cut++) {
    bool ended = true;
    long got = read_trace(bin, cut, back, 200, why, &ended);
    if (got < 0) {
      assert_contains(why, "offset");
      errors++;
    } else {
      assert_false(ended);
      assert_same_events(ev, back, (size_t)got);
      clean++;
    }
  }
  assert_true(errors > 0 && clean > 0);
  free(bin);
}

/* Random bytes changed: no crash; an error names an offset, or the trace
 * read is a valid one (the reader checked it). */
static void test_random_corruption(void **state) {
  (void)state;
  static trace_event ev[300], back[400];
  size_t n = random_trace(ev, 300), len;
  char *bin = write_trace(ev, n, false, &len);
  char why[512];
  for (int round = 0; round < 2000; round++) {
    char *bad = malloc(len);
    memcpy(bad, bin, len);
    for (int k = 1 + (int)seed_below(4); k > 0; k--) bad[seed_below(len)] ^= (char)(1 + seed_below(255));
    if (read_trace(bad, len, back, 400, why, NULL) < 0) assert_contains(why, "offset");
    free(bad);
  }
  free(bin);
}

static void expect_error(const char *trace, size_t len, const char *needle) {
  char why[512] = "";
  trace_event back[8];
  assert_int_equal(read_trace(trace, len, back, 8, why, NULL), -1);
  assert_contains(why, needle);
}

#define HEAD "PHTRACE\0\1\0"

static void test_binary_errors(void **state) {
  (void)state;
  expect_error("", 0, "offset 0: empty");
  expect_error("PHTRACX\0\1\0", 10, "not a pinheap trace");
  expect_error("PHTRACE\0\2\0", 10, "offset 8: version 2");
  expect_error("PHTRACE\0\1\1", 10, "offset 9: header flags");
  expect_error("PHTRACE\0\1", 9, "ends inside the header");
  expect_error(HEAD "\x09\x00", 12, "offset 10: unknown record kind 9");
  expect_error(HEAD "\x41\x00", 12, "offset 10: record byte 0x41 sets bits");
  /* malloc, dt 0, id 0, size 0x80 0x00: a needless trailing zero byte */
  expect_error(HEAD "\x01\x00\x00\x80\x00", 15, "offset 13: malloc: size: a number written with a needless");
  expect_error(HEAD "\x01\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 23, "a number above 2^64");
  expect_error(HEAD "\x01\x00\x00", 13, "offset 13: the input ends inside a malloc record begun at offset 10 (its size)");
  /* free of block 0, never allocated: id field zigzag(0 - (0 - 1)) = 2 */
  expect_error(HEAD "\x05\x00\x02", 13, "offset 10: free: block 0 is not live");
  /* malloc 0 twice: the second's id field is zigzag(0 - 1) = 1 */
  expect_error(HEAD "\x01\x00\x00\x05\x01\x00\x01\x05", 18, "offset 14: malloc: block 0 is already live");
  expect_error(HEAD "\x08\x00\x05", 13, "offset 10: the end record counts 5 records, 0 came before it");
  expect_error(HEAD "\x08\x00\x00\x01", 14, "offset 13: data after the end record");
  expect_error(HEAD "\x06\x00\x00", 13, "phase: text of 0 bytes");
  expect_error(HEAD "\x06\x00\x02\x41\x09", 15, "phase: its text is not 1 to 255 printable");
  expect_error(HEAD "\x04\x00\x00\x03\x10", 15, "aligned_alloc: alignment 3 is not a power of two");
  expect_error(HEAD "\x02\x00\x00\xff\xff\xff\xff\x0f\xff\xff\xff\xff\x0f", 23, "calloc: 4294967295 x 4294967295");
  expect_error(HEAD "\x11\x80\x80\x80\x80\x10\x00", 17, "thread 4294967296 is above");
}

static void test_text_form(void **state) {
  (void)state;
  static const char good[] = "# a trace written by hand\n"
                             "\n"
                             "  pinheap-trace 1   # the header\n"
                             "m 7 1.5k\n"
                             "t3 +250 c 8 10 4K   # calloc\n"
                             "a 9 4096 2m\n"
                             "p the second phase  \n"
                             "i anything # at all\n"
                             "r 7 1g\n"
                             "t0 f 9\n"
                             "f 8\r\n";
  trace_event ev[16];
  char why[512];
  bool ended = true;
  assert_int_equal(read_trace(good, sizeof good - 1, ev, 16, why, &ended), 8);
  assert_false(ended);
  assert_int_equal(ev[0].kind, TRACE_MALLOC);
  assert_int_equal(ev[0].id, 7);
  assert_int_equal(ev[0].size, 1536);
  assert_int_equal(ev[1].kind, TRACE_CALLOC);
  assert_int_equal(ev[1].thread, 3);
  assert_int_equal(ev[1].dt, 250);
  assert_int_equal(trace_event_bytes(&ev[1]), 40960);
  assert_int_equal(ev[2].thread, 3); /* a thread stays until changed */
  assert_int_equal(ev[2].align, 4096);
  assert_int_equal(ev[2].size, 2 << 20);
  assert_string_equal(ev[3].text, "the second phase");
  assert_string_equal(ev[4].text, "anything # at all");
  assert_int_equal(ev[5].size, 1u << 30);
  assert_int_equal(ev[5].old_size, 1536);
  assert_int_equal(ev[6].old_size, 2 << 20);
  assert_int_equal(ev[6].thread, 0);
  assert_int_equal(ev[7].old_size, 40960);

  static const struct {
    const char *text, *error;
  } bad[] = {
      {"m 1 10\n", "t:1: not a pinheap trace"},
      {"pinheap-trace 2\n", "t:1: version 2"},
      {"pinheap-trace 1\nm 1\n", "t:2: size missing (offset 16)"},
      {"pinheap-trace 1\nm 1 10 11\n", "t:2: \"11\" after the record"},
      {"pinheap-trace 1\nm 1 10%\n", "t:2: size \"10%\" is not a size"},
      {"pinheap-trace 1\nx 1 10\n", "t:2: unknown record \"x\""},
      {"pinheap-trace 1\nt1 +5\n", "a thread or time without a record"},
      {"pinheap-trace 1\nm 1 10\nr 1 0\n", "t:3: realloc: size 0 is 0 (a realloc to 0 bytes is written as a free)"},
      {"pinheap-trace 1\nm 1 10\nend 2\n", "t:3: the end record counts 2 records, 1 came before it"},
      {"pinheap-trace 1\nend 0\nm 1 10\n", "t:3: a record after the end record"},
      {"pinheap-trace 1\nm 99999999999999999999 1\n", "block id \"99999999999999999999\" is not a number"},
      {"pinheap-trace 1\np \n", "phase: text of 0 bytes"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_error(bad[i].text, strlen(bad[i].text), bad[i].error);
}

static void test_reader_statistics(void **state) {
  (void)state;
  static const char t[] = "pinheap-trace 1\nm 1 100\nt1 m 2 50\nr 1 300\nf 2\nt2 c 3 2 10\nend 5\n";
  FILE *in = fmemopen((void *)t, sizeof t - 1, "rb");
  trace_reader r;
  assert_int_equal(trace_reader_open(&r, in, "t"), 0);
  trace_event e;
  while (trace_reader_next(&r, &e) == 1) {
  }
  assert_false(r.failed);
  assert_true(r.ended);
  assert_int_equal(r.records, 5);
  assert_int_equal(r.events, 5);
  assert_int_equal(r.threads, 3);
  assert_int_equal(r.peak_live_bytes, 350);
  assert_int_equal(r.live_bytes, 320);
  assert_int_equal(r.live_blocks, 2);
  trace_reader_close(&r);
  fclose(in);
}

static void test_blockmap(void **state) {
  (void)state;
  enum { KEYS = 5000 };
  static uint64_t shadow[KEYS];
  static bool present[KEYS];
  blockmap m;
  blockmap_init(&m);
  for (int op = 0; op < 200000; op++) {
    size_t k = (size_t)seed_below(KEYS);
    uint64_t key = k * 0x10000 + (k & 7); /* clustered, as addresses are */
    uint64_t a, b;
    if (seed_below(2)) {
      uint64_t v = seed_next();
      assert_int_equal(blockmap_put(&m, key, v, ~v), 0);
      shadow[k] = v;
      present[k] = true;
    } else {
      bool got = blockmap_take(&m, key, &a, &b);
      assert_int_equal(got, present[k]);
      if (got) assert_true(a == shadow[k] && b == ~shadow[k]);
      present[k] = false;
    }
    if (op % 10000 == 0) assert_int_equal(blockmap_check(&m), 0);
  }
  size_t n = 0;
  for (size_t k = 0; k < KEYS; k++) {
    uint64_t a;
    assert_int_equal(blockmap_get(&m, k * 0x10000 + (k & 7), &a, NULL), present[k]);
    if (present[k]) assert_int_equal(a, shadow[k]);
    n += present[k];
  }
  assert_int_equal(m.count, n);
  assert_int_equal(blockmap_check(&m), 0);
  assert_int_equal(blockmap_put(&m, BLOCKMAP_EMPTY, 1, 1), -1);
  blockmap_fini(&m);
}

int main(int argc, char **argv) {
  seed_init(argc, argv, "test_trace");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_every_truncation),
      cmocka_unit_test(test_random_corruption), cmocka_unit_test(test_binary_errors),
      cmocka_unit_test(test_text_form),       cmocka_unit_test(test_reader_statistics),
      cmocka_unit_test(test_blockmap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
