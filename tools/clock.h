/*
 * clock: CLOCK_MONOTONIC in nanoseconds, for the tool and the recording
 * library (which use nothing of the library's own sources).
 */
#ifndef PINHEAP_TOOLS_CLOCK_H
#define PINHEAP_TOOLS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

#endif
