/*
 * replay: an ops file (ops.h) replayed through a peer's heap, in order,
 * from one thread: each record becomes the call it stands for, and a new
 * or resized block is written at its first and last byte. A block that a
 * PEER_FIXED peer places beyond its region (peer.owns) is freed at once and
 * counted as a failed request. A request that fails is counted; later records on its slot are skipped (or, asked, the
 * replay stops there). Every block still live at the end is freed before
 * the heap is destroyed.
 *
 * Optionally it samples the region at evenly spaced records, as the
 * program sees it: which share of each of rows slices of the region live
 * blocks cover (replay_columns), for heap pictures of peers that cannot
 * describe their own memory.
 */
#ifndef PINHEAP_BENCH_REPLAY_H
#define PINHEAP_BENCH_REPLAY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ops.h"
#include "peer.h"

/* Blocks below this many bytes are drawn as small objects. */
#define REPLAY_SMALL_MAX (14u << 10)

/* What a column's cell holds: mostly free, mostly small blocks, mostly
 * large ones (the values of pinheap_extent_kind's FREE, SLAB and LARGE, so
 * that the tool's picture writer draws them). */
enum { REPLAY_CELL_FREE = 0, REPLAY_CELL_LARGE = 1, REPLAY_CELL_SMALL = 2 };

/* Invariants: n <= max; cells holds n columns of rows cells. */
typedef struct replay_columns {
  size_t rows, max, n;
  unsigned char *cells; /* column c, row r (0: the lowest addresses): cells[c * rows + r] */
  uint64_t *event;      /* the record after which column c was taken */
  double *frag;         /* largest gap between live blocks / bytes not live; -1 when all is live */
  double *used;         /* live bytes / region */
  uint64_t failure;     /* the first failed record, from 1; 0: none */
} replay_columns;

typedef struct replay_options {
  size_t heap;          /* the region (PEER_FIXED peers) */
  bool stop_at_failure;
  replay_columns *cols; /* NULL: no pictures */
} replay_options;

typedef struct replay_result {
  bool created;       /* else error says why */
  char error[256];
  bool completed;     /* every request succeeded */
  uint64_t failures;
  uint64_t fail_record; /* the first failure, from 1 */
  uint64_t fail_live;   /* bytes live before it */
  uint64_t fail_size;   /* bytes it asked for */
  bool has_space;       /* the peer said its space at the measure mark (or the end) */
  peer_space space;
  uint64_t space_live;  /* live bytes there */
  size_t region;        /* the bytes the heap spanned (peer's extent) */
  uint64_t outside;      /* blocks the peer placed beyond its region (peer.owns), each counted a failure */
  uint64_t outside_size; /* the first one's bytes */
  bool crashed;         /* a replay by a job: the job died (compare.c) */
  double seconds;       /* the replay's wall time */
} replay_result;

/* Replays o through a new heap of p. 0, whatever the outcome (res says),
 * or -1 when the harness ran out of memory (res->error). */
int replay_run(const peer *p, const ops *o, const replay_options *ro, replay_result *res);

int replay_columns_init(replay_columns *c, size_t rows, size_t max);
void replay_columns_fini(replay_columns *c);
/* The columns as text: "columns ROWS N EVENTS FAILURE REGION", then a line
 * per column "EVENT FRAG USED CELLS" (CELLS: a digit per row). 0, or -1. */
int replay_columns_write(const replay_columns *c, uint64_t events, size_t region, FILE *out);

#endif
