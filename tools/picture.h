/*
 * picture: a heap over time, as SVG: the address range of its memory on the
 * vertical axis (low addresses at the bottom), the trace's events on the
 * horizontal one, each column the heap at one moment coloured by kind of
 * extent (pinheap_slices), the first failure marked; beneath, the
 * fragmentation curve (largest free extent / free bytes) and the share of
 * the memory in use.
 *
 * Invariants: cols <= max_cols; cells holds cols columns of rows kinds.
 */
#ifndef PINHEAP_TOOLS_PICTURE_H
#define PINHEAP_TOOLS_PICTURE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pinheap.h"

typedef struct picture {
  size_t rows, max_cols, cols;
  unsigned char *cells; /* column c, row r (0: the lowest addresses): cells[c * rows + r] */
  uint64_t *event;      /* the event after which column c was taken */
  double *frag;         /* largest free / free bytes; -1 when nothing is free */
  double *used;         /* in use / capacity */
  size_t capacity;      /* of the last column */
} picture;

/* Room for max_cols columns of rows slices. 0, or -1 (no memory). */
int picture_init(picture *p, size_t rows, size_t max_cols);
void picture_fini(picture *p);

/* Adds a column: the heap after event, with its stats.
 * 0, or -1 (full, or pinheap_slices failed). */
int picture_column(picture *p, pinheap *heap, uint64_t event, const pinheap_stats *st);

/* What the picture says around the columns. */
typedef struct picture_labels {
  const char *title;
  const char *subtitle;
  uint64_t events;         /* the trace's events: the horizontal axis */
  uint64_t failure_event;  /* the first failure, or 0 for none */
  const char *failure;     /* its description */
} picture_labels;

/* Writes the SVG. 0, or -1 with errno from stdio. */
int picture_write_svg(const picture *p, FILE *out, const picture_labels *l);

#endif
