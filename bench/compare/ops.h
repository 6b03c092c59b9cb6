/*
 * ops: a trace prepared for fast replay by every runner of the comparison:
 * the block events alone, as fixed-size records whose blocks are dense
 * slot numbers (a slot is reused once its block is freed), in a file the
 * runners map read-only. `compare prepare` writes it from a trace
 * (prepare.c, which reads traces with the tool's reader); the runners that
 * do not link pinheap read this file only.
 *
 * File: an ops_header, then n ops_rec.
 * Invariants (ops_check): every record's kind is an OPS_* value and its
 * slot < slots; replayed in order, an allocation names an empty slot, a
 * realloc or free a live one, arg of a realloc and size of a free are the
 * block's bytes before it; the live bytes' maximum is peak_live; events
 * counts the block records; measure is the index of the OPS_MEASURE record
 * or n when there is none.
 */
#ifndef PINHEAP_BENCH_OPS_H
#define PINHEAP_BENCH_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OPS_MAGIC "PHOPS01"

typedef enum ops_kind {
  OPS_MALLOC = 1,  /* size */
  OPS_CALLOC = 2,  /* arg elements of size bytes */
  OPS_REALLOC = 3, /* to size bytes; arg: the bytes before */
  OPS_ALIGNED = 4, /* size bytes aligned to arg */
  OPS_FREE = 5,    /* size: the block's bytes */
  OPS_MEASURE = 6  /* the trace's "measure" phase mark: the end state of generated workloads */
} ops_kind;

typedef struct ops_rec {
  uint32_t kind;
  uint32_t slot;
  uint64_t size;
  uint64_t arg;
} ops_rec;

typedef struct ops_header {
  char magic[8];
  uint64_t n;         /* records */
  uint64_t slots;     /* distinct slots */
  uint64_t peak_live; /* bytes */
  uint64_t events;    /* block records */
  uint64_t measure;   /* index of the OPS_MEASURE record, or n */
} ops_header;

typedef struct ops {
  ops_header h;
  const ops_rec *rec;
  void *map;
  size_t map_len;
} ops;

/* Bytes a record asks for (CALLOC: arg * size); 0 for FREE and MEASURE. */
uint64_t ops_bytes(const ops_rec *r);

/* Maps the file at path: 0, or -1 with a message in err (a file that is
 * not an ops file, or breaks an invariant of its records' fields). */
int ops_load(ops *o, const char *path, char *err, size_t errlen);
void ops_unload(ops *o);

/* Number of broken invariants, each described on stderr. */
int ops_check(const ops *o);

#endif
