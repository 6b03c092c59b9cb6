#include "picture.h"

#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Geometry, in pixels. */
#define PIC_WIDTH 1000
#define PIC_LEFT 80
#define PIC_PLOT_W 880
#define PIC_TOP 70
#define PIC_PLOT_H 420
#define PIC_CURVE_TOP (PIC_TOP + PIC_PLOT_H + 50)
#define PIC_CURVE_H 120
#define PIC_HEIGHT (PIC_CURVE_TOP + PIC_CURVE_H + 90)

static const char *const pic_colours[PINHEAP_EXTENT_KINDS] = {
    [PINHEAP_EXTENT_FREE] = "#eeeeee", [PINHEAP_EXTENT_LARGE] = "#4e79a7", [PINHEAP_EXTENT_SLAB] = "#f28e2b",
    [PINHEAP_EXTENT_METADATA] = "#b07aa1", [PINHEAP_EXTENT_HELD] = "#8c8c8c"};
static const char *const pic_kinds[PINHEAP_EXTENT_KINDS] = {
    [PINHEAP_EXTENT_FREE] = "free",         [PINHEAP_EXTENT_LARGE] = "large blocks",
    [PINHEAP_EXTENT_SLAB] = "small-object slabs", [PINHEAP_EXTENT_METADATA] = "jemalloc metadata",
    [PINHEAP_EXTENT_HELD] = "held (in use, no block)"};

int picture_init(picture *p, size_t rows, size_t max_cols) {
  memset(p, 0, sizeof *p);
  p->rows = rows;
  p->max_cols = max_cols;
  p->cells = malloc(rows * max_cols);
  p->event = malloc(max_cols * sizeof *p->event);
  p->frag = malloc(max_cols * sizeof *p->frag);
  p->used = malloc(max_cols * sizeof *p->used);
  if (p->cells && p->event && p->frag && p->used) return 0;
  picture_fini(p);
  return -1;
}

void picture_fini(picture *p) {
  free(p->cells);
  free(p->event);
  free(p->frag);
  free(p->used);
  memset(p, 0, sizeof *p);
}

int picture_column(picture *p, pinheap *heap, uint64_t event, const pinheap_stats *st) {
  if (p->cols == p->max_cols || pinheap_slices(heap, p->cells + p->cols * p->rows, p->rows) != 0) return -1;
  p->event[p->cols] = event;
  p->frag[p->cols] = st->free_bytes ? (double)st->largest_free / (double)st->free_bytes : -1;
  p->used[p->cols] = st->capacity ? (double)st->in_use / (double)st->capacity : 0;
  p->capacity = st->capacity;
  p->cols++;
  return 0;
}

/* Where event lies on the horizontal axis. */
static double pic_x(const picture_labels *l, uint64_t event) {
  return PIC_LEFT + (l->events ? (double)event * PIC_PLOT_W / (double)l->events : 0);
}

/* Text for SVG: the characters XML gives a meaning to are escaped. */
static void pic_text(FILE *out, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '<': fputs("&lt;", out); break;
    case '>': fputs("&gt;", out); break;
    case '&': fputs("&amp;", out); break;
    case '"': fputs("&quot;", out); break;
    default: fputc(*s, out);
    }
  }
}

static void pic_columns(const picture *p, FILE *out, const picture_labels *l) {
  double row_h = (double)PIC_PLOT_H / (double)p->rows;
  for (size_t c = 0; c < p->cols; c++) {
    /* Column c covers the events from its own to the next column's. */
    double x0 = pic_x(l, p->event[c]);
    double x1 = c + 1 < p->cols ? pic_x(l, p->event[c + 1]) : PIC_LEFT + PIC_PLOT_W;
    if (x1 - x0 < 1) x1 = x0 + 1;
    const unsigned char *col = p->cells + c * p->rows;
    for (size_t r = 0; r < p->rows;) {
      size_t e = r + 1;
      while (e < p->rows && col[e] == col[r]) e++;
      if (col[r] != PINHEAP_EXTENT_FREE)
        fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>\n", x0,
                PIC_TOP + PIC_PLOT_H - (double)e * row_h, x1 - x0 + 0.3, (double)(e - r) * row_h + 0.3,
                pic_colours[col[r]]);
      r = e;
    }
  }
}

/* A curve of values in [0, 1] per column; negative values are gaps. */
static void pic_curve(const picture *p, FILE *out, const picture_labels *l, const double *v, const char *style) {
  bool open = false;
  for (size_t c = 0; c < p->cols; c++) {
    if (v[c] < 0) {
      if (open) fputs("\"/>\n", out);
      open = false;
      continue;
    }
    if (!open) fprintf(out, "<polyline fill=\"none\" %s points=\"", style);
    open = true;
    fprintf(out, "%.2f,%.2f ", pic_x(l, p->event[c]), PIC_CURVE_TOP + PIC_CURVE_H * (1 - v[c]));
  }
  if (open) fputs("\"/>\n", out);
}

int picture_write_svg(const picture *p, FILE *out, const picture_labels *l) {
  char a[32];
  fprintf(out,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
          "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
          PIC_WIDTH, PIC_HEIGHT, PIC_WIDTH, PIC_HEIGHT, PIC_WIDTH, PIC_HEIGHT);
  fprintf(out, "<text x=\"%d\" y=\"24\" font-size=\"16\">", PIC_LEFT);
  pic_text(out, l->title);
  fprintf(out, "</text>\n<text x=\"%d\" y=\"46\">", PIC_LEFT);
  pic_text(out, l->subtitle);
  fputs("</text>\n", out);
  /* The heap over time. */
  fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>\n", PIC_LEFT, PIC_TOP, PIC_PLOT_W,
          PIC_PLOT_H, pic_colours[PINHEAP_EXTENT_FREE]);
  pic_columns(p, out, l);
  fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"black\"/>\n", PIC_LEFT,
          PIC_TOP, PIC_PLOT_W, PIC_PLOT_H);
  for (int t = 0; t <= 4; t++) {
    double y = PIC_TOP + PIC_PLOT_H - PIC_PLOT_H * t / 4.0;
    fprintf(out,
            "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"black\"/>"
            "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
            PIC_LEFT - 5, y, PIC_LEFT, y, PIC_LEFT - 8, y + 4, cli_human(a, sizeof a, p->capacity * (size_t)t / 4));
    double x = PIC_LEFT + PIC_PLOT_W * t / 4.0;
    fprintf(out,
            "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"black\"/>"
            "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%llu</text>\n",
            x, PIC_TOP + PIC_PLOT_H, x, PIC_TOP + PIC_PLOT_H + 5, x, PIC_TOP + PIC_PLOT_H + 18,
            (unsigned long long)(l->events * (uint64_t)t / 4));
  }
  fprintf(out,
          "<text x=\"18\" y=\"%d\" transform=\"rotate(-90 18 %d)\" text-anchor=\"middle\">offset in the heap's "
          "memory</text>\n",
          PIC_TOP + PIC_PLOT_H / 2, PIC_TOP + PIC_PLOT_H / 2);
  fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">events of the trace</text>\n",
          PIC_LEFT + PIC_PLOT_W / 2, PIC_TOP + PIC_PLOT_H + 34);
  /* Fragmentation and use beneath. */
  fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"black\"/>\n", PIC_LEFT,
          PIC_CURVE_TOP, PIC_PLOT_W, PIC_CURVE_H);
  fprintf(out,
          "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">1</text><text x=\"%d\" y=\"%d\" "
          "text-anchor=\"end\">0</text>\n",
          PIC_LEFT - 8, PIC_CURVE_TOP + 4, PIC_LEFT - 8, PIC_CURVE_TOP + PIC_CURVE_H + 4);
  pic_curve(p, out, l, p->frag, "stroke=\"black\" stroke-width=\"1.5\"");
  pic_curve(p, out, l, p->used, "stroke=\"#4e79a7\" stroke-dasharray=\"4 3\"");
  fprintf(out,
          "<text x=\"%d\" y=\"%d\">fragmentation: largest free extent / free bytes (solid); memory in use / "
          "capacity (dashed)</text>\n",
          PIC_LEFT, PIC_CURVE_TOP + PIC_CURVE_H + 18);
  if (l->failure_event) {
    double x = pic_x(l, l->failure_event);
    fprintf(out,
            "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#e15759\" stroke-width=\"2\"/>\n"
            "<text x=\"%.2f\" y=\"%d\" fill=\"#e15759\" text-anchor=\"%s\">",
            x, PIC_TOP - 6, x, PIC_CURVE_TOP + PIC_CURVE_H, x, PIC_TOP - 10,
            x > PIC_LEFT + PIC_PLOT_W / 2 ? "end" : "start");
    pic_text(out, l->failure);
    fputs("</text>\n", out);
  }
  int ly = PIC_CURVE_TOP + PIC_CURVE_H + 45;
  for (unsigned k = 0; k < PINHEAP_EXTENT_KINDS; k++) {
    int x = PIC_LEFT + (int)k * 175;
    fprintf(out,
            "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"%s\" stroke=\"black\"/>"
            "<text x=\"%d\" y=\"%d\">%s</text>\n",
            x, ly, pic_colours[k], x + 20, ly + 12, pic_kinds[k]);
  }
  fputs("</svg>\n", out);
  return ferror(out) ? -1 : 0;
}
