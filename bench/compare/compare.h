/*
 * compare: the command line of every runner of the comparison. A runner is
 * a binary holding some families of peers (those that can share a process:
 * each of jemalloc, mimalloc and the C library must be the process's own
 * malloc); bench/compare/run.py drives them all, side by side.
 *
 *   RUNNER peers                        the peers it holds, one JSON line each
 *   RUNNER tests [--scale F]            the speed tests (speed.h), one JSON line each,
 *                                       with the region of one thread
 *   RUNNER replay OPS --peer P --heap SIZE [--stop] [--columns FILE]
 *                                       one replay (ops.h), a JSON line
 *   RUNNER frag OPS --peer P [--resolution PCT] [--scan N] [--step PCT] [--max-ratio R]
 *                                       the search (tools/search.h) for the
 *                                       smallest heap, the replay in a heap
 *                                       of 1.1 M, the space at the end: a JSON line
 *   RUNNER speed --peer P --test T [--threads LIST] [--seconds S] [--seed N] [--scale F]
 *                                       a JSON line per thread count
 *   RUNNER create --peer P [--size SIZE] [--reps K]
 *                                       heap creation, with and without prefault
 *   RUNNER prepare TRACE OPS            (with pinheap) a trace into an ops file
 *   RUNNER draw COLUMNS SVG [--title T] [--subtitle S]
 *                                       (with pinheap) columns as a heap picture
 *
 * A peer with PEER_EXTERNAL is replayed by a job of its own: frag starts
 * the runner again under the peer's launcher (oshrun) for each replay.
 */
#ifndef PINHEAP_BENCH_COMPARE_H
#define PINHEAP_BENCH_COMPARE_H

#include <stddef.h>

#include "peer.h"

/* A subcommand a runner adds (prepare and draw, in the runner with
 * pinheap): its name and its main. */
typedef struct compare_command {
  const char *name;
  int (*main)(int argc, char **argv);
} compare_command;

/* The runner's main: its families and extra commands. Exit status 0, 1
 * when a measurement failed, 2 on bad usage. */
int compare_main(int argc, char **argv, const peer_family *families, size_t n_families,
                 const compare_command *extra, size_t n_extra);

#endif
