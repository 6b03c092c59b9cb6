#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "pinheap.h"

static _Thread_local char error_text[512];
static _Thread_local unsigned error_sets;

static void error_vset(int err, const char *fmt, va_list ap) {
  vsnprintf(error_text, sizeof error_text, fmt, ap);
  error_sets++;
  errno = err;
}

void error_set(int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  error_vset(err, fmt, ap);
  va_end(ap);
}

unsigned error_serial(void) { return error_sets; }

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

__attribute__((visibility("default"))) void pinheap_set_error(int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  error_vset(err, fmt, ap);
  va_end(ap);
}
