#include "trace_reader.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "pinheap.h"

/* ------------------------------------------------------------------------ */
/* Reading */

__attribute__((format(printf, 3, 4))) static int trace_fail(trace_reader *r, uint64_t at, const char *fmt, ...) {
  if (r->failed) return -1;
  char what[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (r->text && r->line)
    snprintf(r->error, sizeof r->error, "%s:%llu: %s (offset %llu)", r->name, (unsigned long long)r->line, what,
             (unsigned long long)at);
  else
    snprintf(r->error, sizeof r->error, "%s: offset %llu: %s", r->name, (unsigned long long)at, what);
  r->failed = true;
  return -1;
}

static int trace_getc(trace_reader *r) {
  int c = getc_unlocked(r->in);
  if (c != EOF) r->offset++;
  return c;
}

int trace_reader_open(trace_reader *r, FILE *in, const char *name) {
  memset(r, 0, sizeof *r);
  r->in = in;
  r->name = name;
  trace_encoder_init(&r->state);
  blockmap_init(&r->live);
  blockmap_init(&r->thread_set);
  uint8_t head[TRACE_HEADER_BYTES];
  size_t n = 0;
  int c = trace_getc(r);
  if (c == EOF) return trace_fail(r, 0, "empty: no trace header");
  if (c != TRACE_MAGIC[0]) {
    /* The text form: the header is its first line that is no comment. */
    ungetc(c, in);
    r->offset--;
    r->text = true;
    return 0;
  }
  head[n++] = (uint8_t)c;
  while (n < TRACE_HEADER_BYTES && (c = trace_getc(r)) != EOF) head[n++] = (uint8_t)c;
  if (n < TRACE_MAGIC_BYTES || memcmp(head, TRACE_MAGIC, TRACE_MAGIC_BYTES) != 0)
    return trace_fail(r, 0, "not a pinheap trace: no \"%s\" header (binary) nor \"%s\" line (text)", TRACE_MAGIC,
                      TRACE_TEXT_HEADER);
  if (n < TRACE_HEADER_BYTES) return trace_fail(r, n, "the input ends inside the header");
  if (head[TRACE_MAGIC_BYTES] != TRACE_VERSION)
    return trace_fail(r, TRACE_MAGIC_BYTES, "version %u, which this reader does not know (it reads version %d)",
                      head[TRACE_MAGIC_BYTES], TRACE_VERSION);
  if (head[TRACE_MAGIC_BYTES + 1] != 0)
    return trace_fail(r, TRACE_MAGIC_BYTES + 1, "header flags %#x, which version %d does not define",
                      head[TRACE_MAGIC_BYTES + 1], TRACE_VERSION);
  return 0;
}

void trace_reader_close(trace_reader *r) {
  blockmap_fini(&r->live);
  blockmap_fini(&r->thread_set);
  free(r->line_buf);
  r->line_buf = NULL;
}

/* A binary varint of the record begun at r->record_offset; what names the
 * field. Canonical: at most 10 bytes, no trailing zero bytes. */
static int trace_get_varint(trace_reader *r, const trace_event *ev, const char *what, uint64_t *out) {
  uint64_t v = 0, at = r->offset;
  for (unsigned shift = 0;; shift += 7) {
    int c = trace_getc(r);
    if (c == EOF)
      return trace_fail(r, r->offset, "the input ends inside a %s record begun at offset %llu (its %s)",
                        trace_kind_name(ev->kind), (unsigned long long)r->record_offset, what);
    if (shift == 63 && c > 1) return trace_fail(r, at, "%s: %s: a number above 2^64", trace_kind_name(ev->kind), what);
    v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) {
      if (c == 0 && shift > 0)
        return trace_fail(r, at, "%s: %s: a number written with a needless trailing zero byte",
                          trace_kind_name(ev->kind), what);
      break;
    }
  }
  *out = v;
  return 0;
}

static int trace_read_binary(trace_reader *r, trace_event *ev) {
  r->record_offset = r->offset;
  int c = trace_getc(r);
  if (c == EOF) return 0;
  unsigned kind = (unsigned)c & 0x0fu;
  if ((unsigned)c & ~(0x0fu | TRACE_THREAD_FLAG))
    return trace_fail(r, r->record_offset, "record byte %#x sets bits that version %d does not define", (unsigned)c,
                      TRACE_VERSION);
  if (kind < TRACE_MALLOC || kind > TRACE_KIND_MAX)
    return trace_fail(r, r->record_offset, "unknown record kind %u", kind);
  ev->kind = (trace_kind)kind;
  ev->thread = r->state.thread;
  uint64_t v;
  if ((unsigned)c & TRACE_THREAD_FLAG) {
    if (trace_get_varint(r, ev, "thread", &v)) return -1;
    if (v > UINT32_MAX) return trace_fail(r, r->record_offset, "thread %llu is above 2^32 - 1", (unsigned long long)v);
    ev->thread = (uint32_t)v;
  }
  if (trace_get_varint(r, ev, "time", &ev->dt)) return -1;
  if (trace_kind_has_block(ev->kind)) {
    if (trace_get_varint(r, ev, "block id", &v)) return -1;
    ev->id = trace_decode_id(&r->state, ev->kind, v);
  }
  switch (ev->kind) {
  case TRACE_CALLOC:
    if (trace_get_varint(r, ev, "count", &ev->count) || trace_get_varint(r, ev, "size", &ev->size)) return -1;
    break;
  case TRACE_ALIGNED:
    if (trace_get_varint(r, ev, "alignment", &ev->align)) return -1;
    /* fall through */
  case TRACE_MALLOC:
  case TRACE_REALLOC:
    if (trace_get_varint(r, ev, "size", &ev->size)) return -1;
    break;
  case TRACE_PHASE:
  case TRACE_INFO:
    if (trace_get_varint(r, ev, "text length", &v)) return -1;
    if (v == 0 || v > TRACE_MAX_TEXT)
      return trace_fail(r, r->record_offset, "%s: text of %llu bytes (1 to %d)", trace_kind_name(ev->kind),
                        (unsigned long long)v, TRACE_MAX_TEXT);
    ev->text_len = (size_t)v;
    for (size_t i = 0; i < ev->text_len; i++) {
      if ((c = trace_getc(r)) == EOF)
        return trace_fail(r, r->offset, "the input ends inside a %s record begun at offset %llu (its text)",
                          trace_kind_name(ev->kind), (unsigned long long)r->record_offset);
      ev->text[i] = (char)c;
    }
    ev->text[ev->text_len] = '\0';
    break;
  case TRACE_END:
    if (trace_get_varint(r, ev, "count", &ev->count)) return -1;
    break;
  default:
    break;
  }
  return 1;
}

/* Text: the next token of *p (spaces and tabs between tokens), or NULL at
 * the end of the line or at a comment. */
static char *trace_token(char **p) {
  char *s = *p;
  while (*s == ' ' || *s == '\t') s++;
  if (!*s || *s == '#') {
    *p = s;
    return NULL;
  }
  char *t = s;
  while (*s && *s != ' ' && *s != '\t') s++;
  if (*s) *s++ = '\0';
  *p = s;
  return t;
}

static int trace_text_number(trace_reader *r, const char *tok, const char *what, uint64_t max, uint64_t *out) {
  if (!tok) return trace_fail(r, r->record_offset, "%s missing", what);
  uint64_t v = 0;
  const char *s = tok;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10) break;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  if (s == tok || *s || v > max)
    return trace_fail(r, r->record_offset, "%s \"%s\" is not a number from 0 to %llu", what, tok,
                      (unsigned long long)max);
  *out = v;
  return 0;
}

/* Sizes in text as PINHEAP_SIZE has them (1.5m, 64k, 4096), but for the
 * percentages of memory, which no trace means. */
static int trace_text_size(trace_reader *r, const char *tok, const char *what, uint64_t *out) {
  size_t v;
  if (!tok) return trace_fail(r, r->record_offset, "%s missing", what);
  if (strchr(tok, '%') || pinheap_parse_size(tok, &v) != 0 || (uint64_t)v > TRACE_MAX_VALUE)
    return trace_fail(r, r->record_offset, "%s \"%s\" is not a size (bytes, or a number with k, m, g or t)", what,
                      tok);
  *out = v;
  return 0;
}

/* The next line of text into r->line_buf without its end of line; 1, or 0
 * at the end of the input. */
static int trace_next_line(trace_reader *r, char **line) {
  r->record_offset = r->offset;
  ssize_t n = getline(&r->line_buf, &r->line_cap, r->in);
  if (n < 0) return 0;
  r->offset += (uint64_t)n;
  r->line++;
  if (memchr(r->line_buf, '\0', (size_t)n))
    return trace_fail(r, r->record_offset, "%s", r->records || r->line > 1 ? "a NUL byte in a text line"
                                                                         : "not a pinheap trace (binary data)");
  if (n > 0 && r->line_buf[n - 1] == '\n') r->line_buf[--n] = '\0';
  if (n > 0 && r->line_buf[n - 1] == '\r') r->line_buf[--n] = '\0';
  *line = r->line_buf;
  return 1;
}

static bool trace_blank(const char *s) {
  while (*s == ' ' || *s == '\t') s++;
  return !*s || *s == '#';
}

static int trace_read_text(trace_reader *r, trace_event *ev) {
  char *p;
  int got;
  if (r->line == 0) {
    /* The header: the first line that is no comment. */
    while ((got = trace_next_line(r, &p)) == 1 && trace_blank(p)) {
    }
    if (got <= 0) return got < 0 ? -1 : trace_fail(r, r->offset, "no \"%s %d\" line", TRACE_TEXT_HEADER, TRACE_VERSION);
    char *word = trace_token(&p), *version = trace_token(&p);
    uint64_t v = 0;
    if (!word || strcmp(word, TRACE_TEXT_HEADER) != 0)
      return trace_fail(r, r->record_offset, "not a pinheap trace: no \"%s\" header (binary) nor \"%s\" line (text)",
                        TRACE_MAGIC, TRACE_TEXT_HEADER);
    if (trace_text_number(r, version, "version", UINT32_MAX, &v)) return -1;
    if (v != TRACE_VERSION)
      return trace_fail(r, r->record_offset, "version %llu, which this reader does not know (it reads version %d)",
                        (unsigned long long)v, TRACE_VERSION);
    if (trace_token(&p)) return trace_fail(r, r->record_offset, "more after the version");
  }
  while ((got = trace_next_line(r, &p)) == 1 && trace_blank(p)) {
  }
  if (got <= 0) return got;
  char *tok = trace_token(&p);
  uint64_t v = 0;
  ev->thread = r->state.thread;
  if (tok[0] == 't' && tok[1] >= '0' && tok[1] <= '9') {
    if (trace_text_number(r, tok + 1, "thread", UINT32_MAX, &v)) return -1;
    ev->thread = (uint32_t)v;
    tok = trace_token(&p);
  }
  if (tok && tok[0] == '+') {
    if (trace_text_number(r, tok + 1, "time", UINT64_MAX, &ev->dt)) return -1;
    tok = trace_token(&p);
  }
  if (!tok) return trace_fail(r, r->record_offset, "a thread or time without a record");
  int kind = trace_word_kind(tok);
  if (!kind)
    return trace_fail(r, r->record_offset, "unknown record \"%s\" (one of m, c, r, a, f, p, i, end)", tok);
  ev->kind = (trace_kind)kind;
  if (ev->kind == TRACE_PHASE || ev->kind == TRACE_INFO) {
    while (*p == ' ' || *p == '\t') p++;
    size_t len = strlen(p);
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
    if (len == 0 || len > TRACE_MAX_TEXT)
      return trace_fail(r, r->record_offset, "%s: text of %zu bytes (1 to %d)", trace_kind_name(ev->kind), len,
                        TRACE_MAX_TEXT);
    memcpy(ev->text, p, len);
    ev->text[len] = '\0';
    ev->text_len = len;
    return 1;
  }
  if (trace_kind_has_block(ev->kind) && trace_text_number(r, trace_token(&p), "block id", TRACE_MAX_VALUE, &ev->id))
    return -1;
  switch (ev->kind) {
  case TRACE_CALLOC:
    if (trace_text_number(r, trace_token(&p), "count", TRACE_MAX_VALUE, &ev->count) ||
        trace_text_size(r, trace_token(&p), "size", &ev->size))
      return -1;
    break;
  case TRACE_ALIGNED:
    if (trace_text_size(r, trace_token(&p), "alignment", &ev->align)) return -1;
    /* fall through */
  case TRACE_MALLOC:
  case TRACE_REALLOC:
    if (trace_text_size(r, trace_token(&p), "size", &ev->size)) return -1;
    break;
  case TRACE_END:
    if (trace_text_number(r, trace_token(&p), "count", UINT64_MAX, &ev->count)) return -1;
    break;
  default:
    break;
  }
  if ((tok = trace_token(&p))) return trace_fail(r, r->record_offset, "\"%s\" after the record", tok);
  return 1;
}

/* Nothing but comments (text) may follow the end record. */
static int trace_expect_eof(trace_reader *r) {
  if (!r->text) {
    int c = trace_getc(r);
    if (c == EOF) return 0;
    return trace_fail(r, r->offset - 1, "data after the end record");
  }
  char *p;
  int got;
  while ((got = trace_next_line(r, &p)) == 1)
    if (!trace_blank(p)) return trace_fail(r, r->record_offset, "a record after the end record");
  return got;
}

/* The checks that need what came before: blocks, the end record's count. */
static int trace_accept(trace_reader *r, trace_event *ev) {
  char why[256];
  if (!trace_event_valid(ev, why, sizeof why)) return trace_fail(r, r->record_offset, "%s", why);
  const char *name = trace_kind_name(ev->kind);
  uint64_t old = 0, bytes = trace_event_bytes(ev);
  if (trace_kind_allocates(ev->kind)) {
    if (blockmap_get(&r->live, ev->id, NULL, NULL))
      return trace_fail(r, r->record_offset, "%s: block %llu is already live", name, (unsigned long long)ev->id);
  } else if (trace_kind_has_block(ev->kind)) {
    if (!blockmap_get(&r->live, ev->id, &old, NULL))
      return trace_fail(r, r->record_offset, "%s: block %llu is not live", name, (unsigned long long)ev->id);
    ev->old_size = old;
  }
  if (ev->kind == TRACE_FREE) {
    blockmap_take(&r->live, ev->id, NULL, NULL);
    r->live_blocks--;
  } else if (trace_kind_has_block(ev->kind)) {
    if (blockmap_put(&r->live, ev->id, bytes, 0) != 0)
      return trace_fail(r, r->record_offset, "no memory for the reader's table of live blocks");
    if (ev->kind != TRACE_REALLOC) r->live_blocks++;
  }
  if (ev->kind == TRACE_END) {
    if (ev->count != r->records)
      return trace_fail(r, r->record_offset, "the end record counts %llu records, %llu came before it",
                        (unsigned long long)ev->count, (unsigned long long)r->records);
    r->ended = true;
    return trace_expect_eof(r);
  }
  r->live_bytes = r->live_bytes - old + bytes;
  if (r->live_bytes > r->peak_live_bytes) r->peak_live_bytes = r->live_bytes;
  if (r->live_blocks > r->peak_live_blocks) r->peak_live_blocks = r->live_blocks;
  if ((r->records == 0 || ev->thread != r->state.thread) && !blockmap_get(&r->thread_set, ev->thread, NULL, NULL)) {
    if (blockmap_put(&r->thread_set, ev->thread, 0, 0) != 0)
      return trace_fail(r, r->record_offset, "no memory for the reader's table of threads");
    r->threads++;
  }
  r->records++;
  r->by_kind[ev->kind]++;
  if (trace_kind_has_block(ev->kind)) r->events++;
  r->time_ns = r->time_ns + ev->dt < r->time_ns ? UINT64_MAX : r->time_ns + ev->dt;
  trace_encoder_advance(&r->state, ev);
  return 0;
}

int trace_reader_next(trace_reader *r, trace_event *ev) {
  if (r->failed) return -1;
  if (r->ended) return 0;
  memset(ev, 0, sizeof *ev);
  int got = r->text ? trace_read_text(r, ev) : trace_read_binary(r, ev);
  if (got <= 0) return r->failed ? -1 : got;
  if (trace_accept(r, ev) != 0) return -1;
  return ev->kind == TRACE_END ? 0 : 1;
}
