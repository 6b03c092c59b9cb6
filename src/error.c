#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "pinheap.h"

static _Thread_local char error_text[512];

void error_set(int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(error_text, sizeof error_text, fmt, ap);
  va_end(ap);
  errno = err;
}

void error_fatal(const char *fmt, ...) {
  /* No stdio buffering and no malloc: the heap may be corrupt. */
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n > sizeof buf - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, "pinheap: ", 9);
  w = write(STDERR_FILENO, buf, (size_t)n);
  (void)w;
  abort();
}

__attribute__((visibility("default"))) const char *pinheap_last_error(void) { return error_text; }
