#include "trace.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>


static const char *const trace_names[] = {
    [TRACE_MALLOC] = "malloc", [TRACE_CALLOC] = "calloc", [TRACE_REALLOC] = "realloc",
    [TRACE_ALIGNED] = "aligned_alloc", [TRACE_FREE] = "free", [TRACE_PHASE] = "phase",
    [TRACE_INFO] = "info", [TRACE_END] = "end"};

/* The text form's word for each kind. */
static const char *const trace_words[] = {[TRACE_MALLOC] = "m", [TRACE_CALLOC] = "c", [TRACE_REALLOC] = "r",
                                          [TRACE_ALIGNED] = "a", [TRACE_FREE] = "f", [TRACE_PHASE] = "p",
                                          [TRACE_INFO] = "i", [TRACE_END] = "end"};

const char *trace_kind_word(trace_kind k) {
  return k >= TRACE_MALLOC && k <= TRACE_KIND_MAX ? trace_words[k] : "?";
}

trace_kind trace_word_kind(const char *word) {
  for (int k = TRACE_MALLOC; k <= TRACE_KIND_MAX; k++)
    if (strcmp(word, trace_words[k]) == 0) return (trace_kind)k;
  return (trace_kind)0;
}

const char *trace_kind_name(trace_kind k) {
  return k >= TRACE_MALLOC && k <= TRACE_KIND_MAX ? trace_names[k] : "?";
}

uint64_t trace_event_bytes(const trace_event *ev) {
  switch (ev->kind) {
  case TRACE_MALLOC:
  case TRACE_ALIGNED:
  case TRACE_REALLOC:
    return ev->size;
  case TRACE_CALLOC:
    return ev->count * ev->size;
  default:
    return 0;
  }
}

static bool trace_text_valid(const trace_event *ev) {
  if (ev->text_len == 0 || ev->text_len > TRACE_MAX_TEXT || ev->text[ev->text_len] != '\0') return false;
  for (size_t i = 0; i < ev->text_len; i++)
    if (ev->text[i] < 0x20 || ev->text[i] > 0x7e) return false;
  return ev->text[0] != ' ' && ev->text[ev->text_len - 1] != ' ';
}

bool trace_event_valid(const trace_event *ev, char *why, size_t why_len) {
  const char *name = trace_kind_name(ev->kind);
  if (ev->kind < TRACE_MALLOC || ev->kind > TRACE_KIND_MAX) {
    snprintf(why, why_len, "unknown record kind %d", (int)ev->kind);
    return false;
  }
  if (trace_kind_has_block(ev->kind) && ev->id > TRACE_MAX_VALUE) {
    snprintf(why, why_len, "%s: block id %llu is above 2^63 - 1", name, (unsigned long long)ev->id);
    return false;
  }
  uint64_t product;
  switch (ev->kind) {
  case TRACE_CALLOC:
    if (ev->count > TRACE_MAX_VALUE || ev->size > TRACE_MAX_VALUE ||
        __builtin_mul_overflow(ev->count, ev->size, &product) || product > TRACE_MAX_VALUE) {
      snprintf(why, why_len, "calloc: %llu x %llu bytes is above 2^63 - 1", (unsigned long long)ev->count,
               (unsigned long long)ev->size);
      return false;
    }
    return true;
  case TRACE_ALIGNED:
    if (ev->align == 0 || (ev->align & (ev->align - 1)) || ev->align > TRACE_MAX_VALUE) {
      snprintf(why, why_len, "aligned_alloc: alignment %llu is not a power of two below 2^63",
               (unsigned long long)ev->align);
      return false;
    }
    /* fall through */
  case TRACE_MALLOC:
  case TRACE_REALLOC:
    if (ev->size > TRACE_MAX_VALUE || (ev->kind == TRACE_REALLOC && ev->size == 0)) {
      snprintf(why, why_len, "%s: size %llu is %s", name, (unsigned long long)ev->size,
               ev->size ? "above 2^63 - 1" : "0 (a realloc to 0 bytes is written as a free)");
      return false;
    }
    return true;
  case TRACE_PHASE:
  case TRACE_INFO:
    if (!trace_text_valid(ev)) {
      snprintf(why, why_len, "%s: its text is not 1 to %d printable ASCII characters without a space at either end",
               name, TRACE_MAX_TEXT);
      return false;
    }
    return true;
  default:
    return true;
  }
}

/* ------------------------------------------------------------------------ */
/* Encoding */

void trace_encoder_init(trace_encoder *e) { *e = (trace_encoder){0, 0}; }

size_t trace_encode_header(uint8_t *out) {
  memcpy(out, TRACE_MAGIC, TRACE_MAGIC_BYTES); /* with its NUL */
  out[TRACE_MAGIC_BYTES] = TRACE_VERSION;
  out[TRACE_MAGIC_BYTES + 1] = 0;
  return TRACE_HEADER_BYTES;
}

static size_t trace_put_varint(uint8_t *out, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  out[n++] = (uint8_t)v;
  return n;
}

static uint64_t trace_zigzag(uint64_t delta) { return (delta << 1) ^ (uint64_t)((int64_t)delta >> 63); }

/* What a block id is encoded against: an allocation against the id the
 * encoder expects next, other events against the last allocated one. */
static uint64_t trace_id_base(const trace_encoder *e, trace_kind k) {
  return trace_kind_allocates(k) ? e->next_id : e->next_id - 1;
}

void trace_encoder_advance(trace_encoder *e, const trace_event *ev) {
  e->thread = ev->thread;
  if (trace_kind_allocates(ev->kind)) e->next_id = ev->id + 1;
}

uint64_t trace_decode_id(const trace_encoder *e, trace_kind k, uint64_t field) {
  return trace_id_base(e, k) + ((field >> 1) ^ (uint64_t) - (int64_t)(field & 1));
}

size_t trace_encode(trace_encoder *e, const trace_event *ev, uint8_t *out) {
  size_t n = 1;
  out[0] = (uint8_t)ev->kind;
  if (ev->thread != e->thread) {
    out[0] |= TRACE_THREAD_FLAG;
    n += trace_put_varint(out + n, ev->thread);
  }
  n += trace_put_varint(out + n, ev->dt);
  if (trace_kind_has_block(ev->kind)) n += trace_put_varint(out + n, trace_zigzag(ev->id - trace_id_base(e, ev->kind)));
  switch (ev->kind) {
  case TRACE_CALLOC:
    n += trace_put_varint(out + n, ev->count);
    n += trace_put_varint(out + n, ev->size);
    break;
  case TRACE_ALIGNED:
    n += trace_put_varint(out + n, ev->align);
    /* fall through */
  case TRACE_MALLOC:
  case TRACE_REALLOC:
    n += trace_put_varint(out + n, ev->size);
    break;
  case TRACE_PHASE:
  case TRACE_INFO:
    n += trace_put_varint(out + n, ev->text_len);
    memcpy(out + n, ev->text, ev->text_len);
    n += ev->text_len;
    break;
  case TRACE_END:
    n += trace_put_varint(out + n, ev->count);
    break;
  default:
    break;
  }
  trace_encoder_advance(e, ev);
  return n;
}

int trace_write_text_header(FILE *out) {
  return fprintf(out, "%s %d\n", TRACE_TEXT_HEADER, TRACE_VERSION) < 0 ? -1 : 0;
}

int trace_write_text(FILE *out, uint32_t *thread, const trace_event *ev) {
  int r = 0;
  if (ev->thread != *thread) r |= fprintf(out, "t%u ", ev->thread) < 0;
  if (ev->dt) r |= fprintf(out, "+%llu ", (unsigned long long)ev->dt) < 0;
  r |= fputs(trace_words[ev->kind], out) < 0;
  unsigned long long id = ev->id, size = ev->size;
  switch (ev->kind) {
  case TRACE_MALLOC:
  case TRACE_REALLOC:
    r |= fprintf(out, " %llu %llu", id, size) < 0;
    break;
  case TRACE_CALLOC:
    r |= fprintf(out, " %llu %llu %llu", id, (unsigned long long)ev->count, size) < 0;
    break;
  case TRACE_ALIGNED:
    r |= fprintf(out, " %llu %llu %llu", id, (unsigned long long)ev->align, size) < 0;
    break;
  case TRACE_FREE:
    r |= fprintf(out, " %llu", id) < 0;
    break;
  case TRACE_PHASE:
  case TRACE_INFO:
    r |= fprintf(out, " %s", ev->text) < 0;
    break;
  case TRACE_END:
    r |= fprintf(out, " %llu", (unsigned long long)ev->count) < 0;
    break;
  }
  r |= fputc('\n', out) == EOF;
  *thread = ev->thread;
  return r ? -1 : 0;
}

int trace_writer_open(trace_writer *w, FILE *out, bool text) {
  memset(w, 0, sizeof *w);
  w->out = out;
  w->text = text;
  trace_encoder_init(&w->enc);
  if (text) return trace_write_text_header(out);
  uint8_t head[TRACE_HEADER_BYTES];
  size_t n = trace_encode_header(head);
  return fwrite(head, 1, n, out) == n ? 0 : -1;
}

int trace_writer_put(trace_writer *w, const trace_event *ev) {
  char why[256];
  if (!trace_event_valid(ev, why, sizeof why)) {
    errno = EINVAL;
    return -1;
  }
  if (ev->kind != TRACE_END) w->records++;
  if (w->text) return trace_write_text(w->out, &w->text_thread, ev);
  uint8_t rec[TRACE_MAX_RECORD];
  size_t n = trace_encode(&w->enc, ev, rec);
  return fwrite(rec, 1, n, w->out) == n ? 0 : -1;
}

int trace_writer_end(trace_writer *w) {
  trace_event end = {.kind = TRACE_END, .thread = w->text ? w->text_thread : w->enc.thread, .count = w->records};
  if (trace_writer_put(w, &end) != 0) return -1;
  return fflush(w->out) == 0 ? 0 : -1;
}

