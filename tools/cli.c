#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool cli_option(int argc, char **argv, int *i, const char *name, const char **value) {
  size_t n = strlen(name);
  const char *arg = argv[*i];
  if (strncmp(arg, name, n) != 0) return false;
  if (arg[n] == '=') {
    *value = arg + n + 1;
    return true;
  }
  if (arg[n] != '\0') return false;
  *value = *i + 1 < argc ? argv[++*i] : NULL;
  return true;
}

int cli_uint(const char *s, uint64_t max, uint64_t *out) {
  if (!s || !*s || *s == '-' || *s == '+' || *s == ' ') return -1;
  errno = 0;
  char *end = NULL;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || end == s || *end || v > max) return -1;
  *out = v;
  return 0;
}

int cli_size(const char *s, size_t *out) { return s && pinheap_parse_size(s, out) == 0 ? 0 : -1; }

static const char *const cli_modes[] = {[PINHEAP_SIMPLE] = "simple", [PINHEAP_DYNAMIC] = "dynamic",
                                        [PINHEAP_FIXED] = "fixed"};

int cli_mode(const char *s, pinheap_mode *out) {
  for (unsigned m = 0; s && m < sizeof cli_modes / sizeof cli_modes[0]; m++)
    if (strcasecmp(s, cli_modes[m]) == 0) return *out = (pinheap_mode)m, 0;
  return -1;
}

const char *cli_mode_name(pinheap_mode m) {
  return (unsigned)m < sizeof cli_modes / sizeof cli_modes[0] ? cli_modes[m] : "?";
}

int cli_policy(const char *s, pinheap_policy *out) {
  for (pinheap_policy p = 0; s && pinheap_policy_name(p); p++)
    if (strcasecmp(s, pinheap_policy_name(p)) == 0) return *out = p, 0;
  return -1;
}

pinheap_policy cli_default_policy(void) {
  pinheap_options o;
  pinheap_options_init(&o);
  return o.policy;
}

const char *cli_policy_names(char *buf, size_t len) {
  size_t n = 0;
  buf[0] = '\0';
  for (pinheap_policy p = 0; pinheap_policy_name(p) && n < len; p++)
    n += (size_t)snprintf(buf + n, len - n, "%s%s", p ? ", " : "", pinheap_policy_name(p));
  return buf;
}

const char *cli_human(char *buf, size_t len, uint64_t bytes) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  unsigned u = 0;
  double v = (double)bytes;
  while (v >= 1024 && u < 5) v /= 1024, u++;
  if (u == 0)
    snprintf(buf, len, "%llu B", (unsigned long long)bytes);
  else if (bytes % ((uint64_t)1 << (10 * u)) == 0)
    snprintf(buf, len, "%.0f %s", v, units[u]);
  else
    snprintf(buf, len, "%.1f %s", v, units[u]);
  return buf;
}

int cli_usage_error(const char *cmd, void (*usage)(FILE *), const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "pinheap %s: ", cmd);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n\n", stderr);
  usage(stderr);
  return 2;
}

int cli_open_trace(const char *cmd, const char *path, FILE **file, trace_reader *r) {
  *file = fopen(path, "rb");
  memset(r, 0, sizeof *r);
  if (!*file) {
    fprintf(stderr, "pinheap %s: cannot open %s: %s\n", cmd, path, strerror(errno));
    return -1;
  }
  if (trace_reader_open(r, *file, path) != 0) {
    fprintf(stderr, "pinheap %s: %s\n", cmd, r->error);
    cli_close_trace(*file, r);
    *file = NULL;
    return -1;
  }
  return 0;
}

void cli_close_trace(FILE *file, trace_reader *r) {
  trace_reader_close(r);
  if (file) fclose(file);
}

int cli_scan_trace(const char *cmd, const char *path, trace_reader *r, size_t *heap) {
  FILE *f;
  *heap = 0;
  if (cli_open_trace(cmd, path, &f, r) != 0) return -1;
  trace_event ev;
  int got;
  while ((got = trace_reader_next(r, &ev)) == 1) {
    size_t v;
    if (ev.kind == TRACE_INFO && strncmp(ev.text, "heap ", 5) == 0 && !strchr(ev.text, '%') &&
        cli_size(ev.text + 5, &v) == 0)
      *heap = v;
  }
  if (got < 0) fprintf(stderr, "pinheap %s: %s\n", cmd, r->error);
  fclose(f);
  /* The statistics stay; the reader's tables go. */
  trace_reader_close(r);
  return got < 0 ? -1 : 0;
}

void cli_json_string(FILE *out, const char *s) {
  fputc('"', out);
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(out, "\\%c", c);
    else if (c < 0x20)
      fprintf(out, "\\u%04x", c);
    else
      fputc(c, out);
  }
  fputc('"', out);
}
