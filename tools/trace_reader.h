/*
 * trace_reader: reads a trace (trace.h), binary or text.
 */
#ifndef PINHEAP_TOOLS_TRACE_READER_H
#define PINHEAP_TOOLS_TRACE_READER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "blockmap.h"
#include "trace.h"

/*
 * The reader: binary or text (told apart by the first bytes), from any
 * stdio stream, checking every record: its encoding, its fields, and its
 * block (an allocation names a block that is not live, a realloc or a free
 * one that is), so that a trace read without error is a sequence a program
 * could have made. An error leaves a message naming the file and the byte
 * offset (text: and the line) in error, and every later read fails.
 * Statistics of what was read so far are kept.
 *
 * Invariants: live holds every block allocated and not freed, with its
 * bytes; live_bytes and live_blocks are their sums, peak_* the largest
 * these were; state is the encoder's state after the last record read.
 */
typedef struct trace_reader {
  FILE *in;
  const char *name;
  bool text;
  bool ended;  /* the end record was read */
  bool failed;
  uint64_t offset;        /* bytes consumed */
  uint64_t record_offset; /* where the last record began */
  uint64_t line;          /* text: the line number of the last record */
  uint64_t records;       /* records read (the end record excepted) */
  uint64_t events;        /* block events read */
  uint64_t by_kind[TRACE_KIND_MAX + 1];
  uint64_t time_ns;       /* the sum of dt */
  uint64_t live_bytes, peak_live_bytes;
  uint64_t live_blocks, peak_live_blocks;
  uint64_t threads;       /* distinct threads seen */
  trace_encoder state;
  blockmap live;          /* id -> bytes */
  blockmap thread_set;
  char *line_buf;
  size_t line_cap;
  char error[512];
} trace_reader;

/* Starts reading in (named name in messages; in stays the caller's):
 * reads the header. 0, or -1 with the error in r->error. Call
 * trace_reader_close either way. */
int trace_reader_open(trace_reader *r, FILE *in, const char *name);
/* The next record into *ev: 1, or 0 at the end of the trace (the end
 * record, or the end of the input at a record boundary: r->ended tells
 * which), or -1 with r->error set. */
int trace_reader_next(trace_reader *r, trace_event *ev);
void trace_reader_close(trace_reader *r);

#endif
