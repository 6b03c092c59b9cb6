/*
 * progress: a progress bar on standard error for long runs, drawn only when
 * standard error is a terminal (silent otherwise), redrawn at most ten
 * times a second, erased at the end.
 */
#ifndef PINHEAP_TOOLS_PROGRESS_H
#define PINHEAP_TOOLS_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct progress {
  bool on;
  char label[64];
  uint64_t total;
  uint64_t last_ns;
} progress;

/* Starts a bar for total steps, labelled. */
void progress_start(progress *p, const char *label, uint64_t total);
/* done of the total steps are done. */
void progress_update(progress *p, uint64_t done);
/* Erases the bar. */
void progress_end(progress *p);

#endif
