#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

#define PROGRESS_WIDTH 30
#define PROGRESS_EVERY_NS 100000000u

void progress_start(progress *p, const char *label, uint64_t total) {
  memset(p, 0, sizeof *p);
  p->on = isatty(STDERR_FILENO) == 1;
  snprintf(p->label, sizeof p->label, "%s", label);
  p->total = total ? total : 1;
}

void progress_update(progress *p, uint64_t done) {
  if (!p->on) return;
  uint64_t now = clock_ns();
  if (now - p->last_ns < PROGRESS_EVERY_NS) return;
  p->last_ns = now;
  if (done > p->total) done = p->total;
  unsigned fill = (unsigned)(done * PROGRESS_WIDTH / p->total);
  char bar[PROGRESS_WIDTH + 1];
  memset(bar, '#', fill);
  memset(bar + fill, '.', PROGRESS_WIDTH - fill);
  bar[PROGRESS_WIDTH] = '\0';
  fprintf(stderr, "\r%s [%s] %3u%% %llu/%llu", p->label, bar, (unsigned)(done * 100 / p->total),
          (unsigned long long)done, (unsigned long long)p->total);
  fflush(stderr);
}

void progress_end(progress *p) {
  if (!p->on || !p->last_ns) return;
  fprintf(stderr, "\r\033[K");
  fflush(stderr);
}
