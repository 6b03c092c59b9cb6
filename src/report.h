/*
 * report: the out-of-memory report. pinheap_report writes it for a heap at
 * any time; a heap created with opts.oom_report writes it, with the request
 * that failed, at its first ENOMEM, and a picture of its memory beside it
 * (the same path with ".svg").
 *
 * Built on the walk (walk.h) and the core's stats (heap.h): the public
 * face holds a report_open record and has the core call report_enomem
 * through a pointer (heap_on_enomem), so that the core never calls up into
 * this module. Writes without allocating (the heap out of memory may be
 * the process's malloc): text is formatted on the stack and written to a
 * file descriptor (or to the FILE of pinheap_report).
 *
 * Thread-safe: the first report_enomem of a record writes; any later or
 * concurrent one returns at once.
 */
#ifndef PINHEAP_REPORT_H
#define PINHEAP_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "heap.h"
#include "pinheap.h"

/* The longest opts.oom_report accepted. */
#define REPORT_MAX_PATH 1024

typedef struct report report;

/* A record for a heap created with *opts (opts->oom_report non-NULL, at
 * most REPORT_MAX_PATH bytes): a copy of the path and of what the report
 * says of the heap. NULL with the error set (ENOMEM). */
report *report_open(const pinheap_options *opts);
/* NULL does nothing. */
void report_close(report *r);
/* The record's copy of the path. */
const char *report_path(const report *r);

/* For the heap's ENOMEM path, ctx a report: writes the report and the
 * picture of heap, whose request what(size) just failed, once; keeps
 * errno and pinheap_last_error() as they were. */
void report_enomem(void *ctx, heap *heap, const char *what, size_t size);
/* pinheap_report of heap to out: 0, or -1 with the error set (EIO). */
int report_write(heap *heap, FILE *out);

#endif
