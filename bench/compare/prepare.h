/*
 * prepare: a trace (binary or text, read by the tool's trace reader) turned
 * into an ops file (ops.h). Only the runner that links pinheap has it.
 */
#ifndef PINHEAP_BENCH_PREPARE_H
#define PINHEAP_BENCH_PREPARE_H

#include <stddef.h>

/* Writes the ops of the trace at in to out. 0, or -1 with a message in err
 * (the reader's, with the offset, for a bad trace). */
int prepare_ops(const char *in, const char *out, char *err, size_t errlen);

#endif
