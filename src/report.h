/*
 * report: the out-of-memory report. pinheap_report writes it for a heap at
 * any time; a heap created with opts.oom_report writes it, with the request
 * that failed, at its first ENOMEM, and a picture of its memory beside it
 * (the same path with ".svg").
 *
 * Built on the public face only (pinheap_walk, pinheap_slices,
 * pinheap_get_stats): the heap holds a report_open record and calls
 * report_enomem through a pointer set at its creation, so that nothing
 * below the public face calls up into this module. Writes without
 * allocating (the heap out of memory may be the process's malloc): text is
 * formatted on the stack and written to a file descriptor (or to the FILE
 * of pinheap_report).
 *
 * Thread-safe: the first report_enomem of a record writes; any later or
 * concurrent one returns at once.
 */
#ifndef PINHEAP_REPORT_H
#define PINHEAP_REPORT_H

#include <stddef.h>

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
void report_enomem(void *ctx, pinheap *heap, const char *what, size_t size);

#endif
