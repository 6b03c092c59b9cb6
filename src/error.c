#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

void error_append(const char *fmt, ...) {
  size_t len = strlen(error_text);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(error_text + len, sizeof error_text - len, fmt, ap);
  va_end(ap);
}

static void error_vreport(const char *fmt, va_list ap) {
  char buf[512];
  int n = vsnprintf(buf + 9, sizeof buf - 10, fmt, ap);
  if (n < 0) n = 0;
  if ((size_t)n > sizeof buf - 11) n = sizeof buf - 11;
  memcpy(buf, "pinheap: ", 9);
  buf[9 + n] = '\n';
  ssize_t w = write(STDERR_FILENO, buf, (size_t)n + 10);
  (void)w;
}

void error_report(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  error_vreport(fmt, ap);
  va_end(ap);
}

void error_fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  error_vreport(fmt, ap);
  va_end(ap);
  abort();
}

__attribute__((visibility("default"))) const char *pinheap_last_error(void) { return error_text; }

__attribute__((visibility("default"))) void pinheap_set_error(int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  error_vset(err, fmt, ap);
  va_end(ap);
}
