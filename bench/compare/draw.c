#include "draw.h"

#include <stdio.h>
#include <string.h>

#include "picture.h"
#include "replay.h"

/* Reads the text replay_columns_write wrote into p. 0, or -1. */
static int draw_read(FILE *in, picture *p, uint64_t *events, uint64_t *failure) {
  size_t rows, n, region;
  unsigned long long ev, fail;
  if (fscanf(in, "columns %zu %zu %llu %llu %zu\n", &rows, &n, &ev, &fail, &region) != 5 || !rows || rows > 100000 ||
      n > 100000)
    return -1;
  if (picture_init(p, rows, n ? n : 1) != 0) return -1;
  p->capacity = region;
  char cells[100001];
  for (size_t c = 0; c < n; c++) {
    unsigned long long e;
    if (fscanf(in, "%llu %lf %lf %100000s\n", &e, &p->frag[c], &p->used[c], cells) != 4 || strlen(cells) != rows)
      return -1;
    p->event[c] = e;
    for (size_t r = 0; r < rows; r++) {
      int k = cells[r] - '0';
      p->cells[c * rows + r] = (unsigned char)(k == REPLAY_CELL_LARGE ? PINHEAP_EXTENT_LARGE
                                               : k == REPLAY_CELL_SMALL ? PINHEAP_EXTENT_SLAB
                                                                        : PINHEAP_EXTENT_FREE);
    }
    p->cols++;
  }
  *events = ev;
  *failure = fail;
  return 0;
}

int draw_main(int argc, char **argv) {
  const char *in = NULL, *out = NULL, *title = "heap", *subtitle = "";
  for (int i = 2; i < argc; i++) {
    if ((strcmp(argv[i], "--title") == 0 || strcmp(argv[i], "--subtitle") == 0) && i + 1 < argc) {
      *(argv[i][2] == 't' ? &title : &subtitle) = argv[i + 1];
      i++;
    } else if (!in) {
      in = argv[i];
    } else if (!out) {
      out = argv[i];
    } else {
      fprintf(stderr, "compare draw: usage: draw COLUMNS SVG [--title T] [--subtitle S]\n");
      return 2;
    }
  }
  if (!in || !out) {
    fprintf(stderr, "compare draw: usage: draw COLUMNS SVG [--title T] [--subtitle S]\n");
    return 2;
  }
  FILE *f = fopen(in, "r");
  picture p;
  memset(&p, 0, sizeof p);
  uint64_t events = 0, failure = 0;
  int rc = f && draw_read(f, &p, &events, &failure) == 0 ? 0 : -1;
  if (f) fclose(f);
  if (rc != 0) {
    fprintf(stderr, "compare draw: %s: not a columns file\n", in);
    picture_fini(&p);
    return 1;
  }
  char fail[64];
  snprintf(fail, sizeof fail, "first failure at record %llu", (unsigned long long)failure);
  picture_labels l = {.title = title, .subtitle = subtitle, .events = events, .failure_event = failure,
                      .failure = failure ? fail : NULL};
  FILE *o = fopen(out, "w");
  rc = o && picture_write_svg(&p, o, &l) == 0 ? 0 : -1;
  if (o && fclose(o) != 0) rc = -1;
  picture_fini(&p);
  if (rc != 0) fprintf(stderr, "compare draw: cannot write %s\n", out);
  return rc ? 1 : 0;
}
