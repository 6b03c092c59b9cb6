#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "error.h"
#include "util.h"
#include "walk.h"

/* The largest free extents the report describes. */
#define REPORT_HOLES 8
/* Slices of the picture's band, and its geometry in pixels. */
#define REPORT_SLICES 1000
#define REPORT_LEFT 20
#define REPORT_BAND_TOP 70
#define REPORT_BAND_HEIGHT 90

struct report {
  atomic_bool done;
  pinheap_mode mode;
  pinheap_policy policy;
  char path[REPORT_MAX_PATH + 1];
};

report *report_open(const pinheap_options *opts) {
  report *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED) {
    error_set(ENOMEM, "pinheap_create: no memory for the out-of-memory report's record");
    return NULL;
  }
  atomic_init(&r->done, false);
  r->mode = opts->mode;
  r->policy = opts->policy;
  snprintf(r->path, sizeof r->path, "%s", opts->oom_report);
  return r;
}

void report_close(report *r) {
  if (r) munmap(r, sizeof *r);
}

const char *report_path(const report *r) { return r->path; }

/* ------------------------------------------------------------------------ */
/* Output, without malloc: a buffer on the stack, drained to a descriptor or
 * a FILE. */

typedef struct report_sink {
  int fd;     /* or -1: file */
  FILE *file;
  bool failed;
  size_t len;
  char buf[4096];
} report_sink;

static void report_flush(report_sink *s) {
  size_t off = 0;
  while (off < s->len && !s->failed) {
    if (s->file) {
      if (fwrite(s->buf + off, 1, s->len - off, s->file) != s->len - off) s->failed = true;
      off = s->len;
      continue;
    }
    ssize_t w = write(s->fd, s->buf + off, s->len - off);
    if (w > 0)
      off += (size_t)w;
    else if (w < 0 && errno != EINTR)
      s->failed = true;
  }
  s->len = 0;
}

__attribute__((format(printf, 2, 3))) static void report_printf(report_sink *s, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
  if (s->len + len > sizeof s->buf) report_flush(s);
  memcpy(s->buf + s->len, line, len);
  s->len += len;
}

/* "1.5 MiB" and the like. */
static const char *report_human(char *buf, size_t len, size_t bytes) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)bytes;
  unsigned u = 0;
  while (v >= 1024 && u < 4) v /= 1024, u++;
  snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

/* ------------------------------------------------------------------------ */
/* The scan: the largest free extents, what lies on either side of each,
 * and bytes per kind. */

typedef struct report_hole {
  pinheap_extent hole, below, above;
  bool has_below, has_above;
} report_hole;

typedef struct report_scan {
  report_hole holes[REPORT_HOLES]; /* largest first */
  size_t n;
  int pending; /* the hole whose upper neighbour comes next, or -1 */
  pinheap_extent prev;
  bool has_prev;
  uintptr_t lo, hi; /* the addresses walked */
  size_t bytes[PINHEAP_EXTENT_KINDS], count[PINHEAP_EXTENT_KINDS];
} report_scan;

static bool report_adjacent(const pinheap_extent *a, const pinheap_extent *b) {
  return (const char *)a->addr + a->size == (const char *)b->addr;
}

static int report_scan_visit(const pinheap_extent *e, void *arg) {
  report_scan *sc = arg;
  bool next_to_prev = sc->has_prev && report_adjacent(&sc->prev, e);
  if (sc->pending >= 0 && next_to_prev) {
    sc->holes[sc->pending].above = *e;
    sc->holes[sc->pending].has_above = true;
  }
  sc->pending = -1;
  if (e->kind == PINHEAP_EXTENT_FREE && (sc->n < REPORT_HOLES || e->size > sc->holes[sc->n - 1].hole.size)) {
    size_t at = sc->n < REPORT_HOLES ? sc->n++ : REPORT_HOLES - 1;
    while (at > 0 && sc->holes[at - 1].hole.size < e->size) {
      sc->holes[at] = sc->holes[at - 1];
      at--;
    }
    sc->holes[at] = (report_hole){.hole = *e, .below = sc->prev, .has_below = next_to_prev};
    sc->pending = (int)at;
  }
  if (!sc->has_prev || (uintptr_t)e->addr < sc->lo) sc->lo = (uintptr_t)e->addr;
  if ((uintptr_t)e->addr + e->size > sc->hi) sc->hi = (uintptr_t)e->addr + e->size;
  sc->bytes[e->kind] += e->size;
  sc->count[e->kind]++;
  sc->prev = *e;
  sc->has_prev = true;
  return 0;
}

static const char *const report_kinds[PINHEAP_EXTENT_KINDS] = {
    [PINHEAP_EXTENT_FREE] = "free extent",      [PINHEAP_EXTENT_LARGE] = "large block",
    [PINHEAP_EXTENT_SLAB] = "slab of small objects", [PINHEAP_EXTENT_METADATA] = "jemalloc metadata",
    [PINHEAP_EXTENT_HELD] = "held extent (in use, no block)"};

/* Colours of the kinds in pictures. */
static const char *const report_colours[PINHEAP_EXTENT_KINDS] = {
    [PINHEAP_EXTENT_FREE] = "#eeeeee", [PINHEAP_EXTENT_LARGE] = "#4e79a7", [PINHEAP_EXTENT_SLAB] = "#f28e2b",
    [PINHEAP_EXTENT_METADATA] = "#b07aa1", [PINHEAP_EXTENT_HELD] = "#8c8c8c"};

static void report_neighbour(report_sink *s, const char *side, bool has, const pinheap_extent *e) {
  char hs[32];
  if (!has) {
    report_printf(s, "       %s: the %s of the region\n", side, side[0] == 'b' ? "start" : "end");
    return;
  }
  report_printf(s, "       %s: %s of %zu bytes (%s) at %p", side, report_kinds[e->kind], e->size,
                report_human(hs, sizeof hs, e->size), e->addr);
  if (e->kind == PINHEAP_EXTENT_SLAB && e->object_size) report_printf(s, ", objects of %zu bytes", e->object_size);
  if (e->age >= 0) report_printf(s, ", age %.6f s", e->age);
  report_printf(s, "\n");
}

/* The report's text. what NULL: no request (pinheap_report). */
static int report_text(report_sink *s, heap *heap, const report *r, const char *what, size_t size,
                       const char *picture) {
  report_scan sc = {.pending = -1};
  pinheap_stats st;
  heap_get_stats(heap, &st);
  walk_extents(heap, report_scan_visit, &sc);
  char a[32], b[32];
  report_printf(s, "pinheap out-of-memory report: process %ld, heap %p", (long)getpid(), (void *)heap);
  if (r)
    report_printf(s, " (%s, policy %s)",
                  r->mode == PINHEAP_FIXED ? "FIXED" : r->mode == PINHEAP_DYNAMIC ? "DYNAMIC" : "SIMPLE",
                  pinheap_policy_name(r->policy) ? pinheap_policy_name(r->policy) : "?");
  report_printf(s, "\n");
  if (what)
    report_printf(s, "request: %s(%zu) (%s) failed: ENOMEM\n", what, size, report_human(a, sizeof a, size));
  else
    report_printf(s, "request: none (pinheap_report)\n");
  report_printf(s, "memory: %zu bytes (%s) at %#lx-%#lx\n", st.capacity, report_human(a, sizeof a, st.capacity),
                (unsigned long)sc.lo, (unsigned long)sc.hi);
  report_printf(s, "free: %zu bytes (%s) in %zu free extents; the largest is %zu bytes (%s)\n", st.free_bytes,
                report_human(a, sizeof a, st.free_bytes), st.free_extents, st.largest_free,
                report_human(b, sizeof b, st.largest_free));
  report_printf(s, "live allocations: %zu bytes (%s), %zu bytes of them in %zu large blocks\n", st.allocated,
                report_human(a, sizeof a, st.allocated), st.large_allocated, st.large_blocks);
  report_printf(s, "extents by kind:\n");
  for (unsigned k = 0; k < PINHEAP_EXTENT_KINDS; k++)
    report_printf(s, "  %-32s count %6zu, %14zu bytes (%s)\n", report_kinds[k], sc.count[k], sc.bytes[k],
                  report_human(a, sizeof a, sc.bytes[k]));
  report_printf(s, "\nthe %zu largest free extents, and what lies on either side of each:\n", sc.n);
  for (size_t i = 0; i < sc.n; i++) {
    const report_hole *h = &sc.holes[i];
    report_printf(s, "  %2zu. %zu bytes (%s) free at %p (offset %s)\n", i + 1, h->hole.size,
                  report_human(a, sizeof a, h->hole.size), h->hole.addr,
                  report_human(b, sizeof b, (uintptr_t)h->hole.addr - sc.lo));
    report_neighbour(s, "below", h->has_below, &h->below);
    report_neighbour(s, "above", h->has_above, &h->above);
  }
  if (picture) report_printf(s, "\npicture: %s\n", picture);
  report_flush(s);
  return s->failed ? -1 : 0;
}

/* The picture: the heap's memory as one band, low addresses on the left,
 * coloured by kind, the largest free extents numbered as in the text. */
static int report_picture(report_sink *s, heap *heap, const char *what, size_t size) {
  unsigned char kinds[REPORT_SLICES];
  report_scan sc = {.pending = -1};
  pinheap_stats st;
  heap_get_stats(heap, &st);
  walk_slices(heap, kinds, REPORT_SLICES);
  walk_extents(heap, report_scan_visit, &sc);
  char a[32], b[32], c[32];
  int width = REPORT_SLICES + 2 * REPORT_LEFT, height = REPORT_BAND_TOP + REPORT_BAND_HEIGHT + 70;
  report_printf(s,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
                width, height, width, height, width, height);
  if (what)
    report_printf(s, "<text x=\"%d\" y=\"20\" font-size=\"14\">Out of memory: %s(%zu) (%s); %s free, the largest extent %s</text>\n",
                  REPORT_LEFT, what, size, report_human(a, sizeof a, size), report_human(b, sizeof b, st.free_bytes),
                  report_human(c, sizeof c, st.largest_free));
  else
    report_printf(s, "<text x=\"%d\" y=\"20\" font-size=\"14\">Heap %p: %s free, the largest extent %s</text>\n",
                  REPORT_LEFT, (void *)heap, report_human(a, sizeof a, st.free_bytes),
                  report_human(b, sizeof b, st.largest_free));
  report_printf(s, "<text x=\"%d\" y=\"40\">%s of memory at %#lx, low addresses on the left</text>\n", REPORT_LEFT,
                report_human(a, sizeof a, st.capacity), (unsigned long)sc.lo);
  for (size_t i = 0; i < REPORT_SLICES;) {
    size_t j = i + 1;
    while (j < REPORT_SLICES && kinds[j] == kinds[i]) j++;
    report_printf(s, "<rect x=\"%zu\" y=\"%d\" width=\"%zu\" height=\"%d\" fill=\"%s\"/>\n", REPORT_LEFT + i,
                  REPORT_BAND_TOP, j - i, REPORT_BAND_HEIGHT, report_colours[kinds[i]]);
    i = j;
  }
  report_printf(s, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"black\"/>\n",
                REPORT_LEFT, REPORT_BAND_TOP, REPORT_SLICES, REPORT_BAND_HEIGHT);
  size_t span = sc.hi > sc.lo ? sc.hi - sc.lo : 1;
  for (size_t i = 0; i < sc.n; i++) {
    double x = REPORT_LEFT + (double)((uintptr_t)sc.holes[i].hole.addr - sc.lo) * REPORT_SLICES / (double)span;
    double w = (double)sc.holes[i].hole.size * REPORT_SLICES / (double)span;
    report_printf(s,
                  "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"6\" fill=\"#e15759\"/>"
                  "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%zu</text>\n",
                  x, REPORT_BAND_TOP - 8, w < 1 ? 1 : w, x + w / 2, REPORT_BAND_TOP - 12, i + 1);
  }
  int ly = REPORT_BAND_TOP + REPORT_BAND_HEIGHT + 25;
  for (unsigned k = 0; k < PINHEAP_EXTENT_KINDS; k++) {
    int x = REPORT_LEFT + (int)k * 200;
    report_printf(s,
                  "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"%s\" stroke=\"black\"/>"
                  "<text x=\"%d\" y=\"%d\">%s</text>\n",
                  x, ly, report_colours[k], x + 20, ly + 12, report_kinds[k]);
  }
  report_printf(s, "<text x=\"%d\" y=\"%d\">numbered: the largest free extents of the report, largest first</text>\n",
                REPORT_LEFT, ly + 40);
  report_printf(s, "</svg>\n");
  report_flush(s);
  return s->failed ? -1 : 0;
}

int report_write(heap *heap, FILE *out) {
  report_sink s = {.fd = -1, .file = out};
  if (report_text(&s, heap, NULL, NULL, 0, NULL) != 0) {
    if (s.failed) error_set(EIO, "pinheap_report: writing the report failed");
    return -1;
  }
  return 0;
}

/* path with "%p" replaced by the process id, into out (REPORT_MAX_PATH + 32). */
static void report_expand(const char *path, char *out, size_t len) {
  size_t n = 0;
  for (const char *p = path; *p && n + 1 < len; p++) {
    if (p[0] == '%' && p[1] == 'p') {
      n += (size_t)snprintf(out + n, len - n, "%ld", (long)getpid());
      p++;
    } else {
      out[n++] = *p;
    }
  }
  out[n < len ? n : len - 1] = '\0';
}

static bool report_write_file(const char *path, heap *heap, const report *r, const char *what, size_t size,
                              const char *picture) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    error_report("the out-of-memory report cannot be written to %s: %s", path, strerror(errno));
    return false;
  }
  report_sink s = {.fd = fd};
  int rc = picture ? report_text(&s, heap, r, what, size, picture) : report_picture(&s, heap, what, size);
  close(fd);
  if (rc != 0) error_report("the out-of-memory report %s is incomplete: %s", path, strerror(errno));
  return rc == 0;
}

void report_enomem(void *ctx, heap *heap, const char *what, size_t size) {
  report *r = ctx;
  if (atomic_exchange(&r->done, true)) return;
  int err = errno;
  char saved[512], path[REPORT_MAX_PATH + 32], picture[REPORT_MAX_PATH + 40];
  snprintf(saved, sizeof saved, "%s", pinheap_last_error());
  report_expand(r->path, path, sizeof path);
  snprintf(picture, sizeof picture, "%s.svg", path);
  if (report_write_file(path, heap, r, what, size, picture) && report_write_file(picture, heap, r, what, size, NULL))
    error_report("%s(%zu): out of memory; report in %s, picture in %s", what, size, path, picture);
  error_set(err, "%s", saved);
}
