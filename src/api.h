/*
 * api: the public face (include/pinheap.h): what a pinheap handle is made
 * of, and the exported functions on it, each composing the modules below:
 * the arguments checked, the debugging aids dispatched (debug.h), the rest
 * sent to the heap's core (heap.h). pinheap_create checks the options
 * (options.h), opens the core, opens the debugging aids, has the core call
 * the out-of-memory report (report.h) and puts the heap on the fork
 * handlers' list (fork.h); pinheap_destroy does the reverse; pinheap_check
 * adds up each module's checker.
 *
 * The core comes first in the handle, so that the handle's address is the
 * core's: messages and reports name either as "heap %p".
 *
 * Invariants: core is open; dbg.flags == 0 or debug_open was called with
 * them; link is on the fork list (fork.h).
 *
 * Thread-safe, as the public header says.
 */
#ifndef PINHEAP_API_H
#define PINHEAP_API_H

#include "debug.h"
#include "fork.h"
#include "heap.h"
#include "report.h"

struct pinheap {
  heap core;
  debug dbg; /* dbg.flags: any bit sends every call through debug.c */
  fork_link link;
  report *report; /* opts.oom_report's, or NULL */
};

#endif
