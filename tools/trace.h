/*
 * trace: pinheap's allocation traces (the format is in docs/trace.md): the
 * events, their binary encoding and their text form, a reader of both that
 * checks every record, and the encoders.
 *
 * A trace is a header and a sequence of records: allocation events (malloc,
 * calloc, realloc, aligned allocation, free) on blocks named by ids, phase
 * marks, informative text, and an end record. Each record carries the thread
 * that made it and the nanoseconds since the record before.
 *
 * The encoders (trace_encode_header, trace_encode) never allocate and keep
 * their state in a trace_encoder: the recording library calls them from
 * inside malloc. The writer uses stdio; the reader is trace_reader.h.
 */
#ifndef PINHEAP_TOOLS_TRACE_H
#define PINHEAP_TOOLS_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TRACE_VERSION 1
/* Binary header: the magic, then the version byte, then a flags byte (0). */
#define TRACE_MAGIC "PHTRACE"
#define TRACE_MAGIC_BYTES 8 /* the 7 letters and a NUL */
#define TRACE_HEADER_BYTES (TRACE_MAGIC_BYTES + 2)
/* Text form: its first line that is not a comment. */
#define TRACE_TEXT_HEADER "pinheap-trace"

/* Record kinds: the low 4 bits of a record's first byte. */
typedef enum trace_kind {
  TRACE_MALLOC = 1,  /* id size */
  TRACE_CALLOC = 2,  /* id count size */
  TRACE_REALLOC = 3, /* id size: the live block id, resized (it keeps its id) */
  TRACE_ALIGNED = 4, /* id align size */
  TRACE_FREE = 5,    /* id */
  TRACE_PHASE = 6,   /* text: a phase of the program begins */
  TRACE_INFO = 7,    /* text: what recorded it, the command, ... */
  TRACE_END = 8      /* count: the records before it */
} trace_kind;
#define TRACE_KIND_MAX TRACE_END
/* A record's first byte: this bit says a thread id follows. */
#define TRACE_THREAD_FLAG 0x10u

#define TRACE_MAX_TEXT 255
/* Block ids, sizes, calloc's count and product, and alignments are below
 * 2^63. */
#define TRACE_MAX_VALUE (UINT64_MAX >> 1)
/* The longest binary record: the first byte, six varints, the text. */
#define TRACE_MAX_RECORD (1 + 6 * 10 + TRACE_MAX_TEXT)

/* One record. Fields a kind does not use are 0. */
typedef struct trace_event {
  trace_kind kind;
  uint32_t thread;
  uint64_t dt;    /* nanoseconds since the previous record */
  uint64_t id;    /* MALLOC .. FREE: the block */
  uint64_t count; /* CALLOC: elements; END: the records before it */
  uint64_t align; /* ALIGNED: a power of two */
  uint64_t size;  /* MALLOC, ALIGNED, REALLOC: bytes; CALLOC: bytes per element */
  /* Filled by the reader, ignored by the encoders: REALLOC and FREE, the
   * block's bytes before the event. */
  uint64_t old_size;
  size_t text_len; /* PHASE, INFO: 1 to TRACE_MAX_TEXT printable ASCII */
  char text[TRACE_MAX_TEXT + 1]; /* NUL-terminated */
} trace_event;

/* Whether a kind allocates a new block (MALLOC, CALLOC, ALIGNED). */
static inline bool trace_kind_allocates(trace_kind k) {
  return k == TRACE_MALLOC || k == TRACE_CALLOC || k == TRACE_ALIGNED;
}
/* Whether a kind names a block (MALLOC .. FREE). */
static inline bool trace_kind_has_block(trace_kind k) { return k >= TRACE_MALLOC && k <= TRACE_FREE; }

/* The bytes the event asks for (CALLOC: count * size); 0 for FREE and
 * the records without a block. */
uint64_t trace_event_bytes(const trace_event *ev);

/* "malloc", "calloc", ...; "?" for a value that is no kind. */
const char *trace_kind_name(trace_kind k);

/* Whether ev is a record an encoder may write (fields in range, text
 * printable, ...), leaving a reason in why (at least 128 bytes) when not.
 * Blocks are not checked: that needs the trace before it. */
bool trace_event_valid(const trace_event *ev, char *why, size_t why_len);

/* What an encoder remembers between records: the current thread and the
 * next block id it expects. Starts as trace_encoder_init sets it. */
typedef struct trace_encoder {
  uint32_t thread;
  uint64_t next_id;
} trace_encoder;

void trace_encoder_init(trace_encoder *e);
/* Writes the binary header into out (TRACE_HEADER_BYTES); returns that. */
size_t trace_encode_header(uint8_t *out);
/* Encodes ev (trace_event_valid) into out (TRACE_MAX_RECORD bytes); returns
 * the bytes written. Never allocates. */
size_t trace_encode(trace_encoder *e, const trace_event *ev, uint8_t *out);

/* For decoders: the block id that a record's id field stands for, given the
 * encoder's state before the record; and that state after ev. */
uint64_t trace_decode_id(const trace_encoder *e, trace_kind k, uint64_t field);
void trace_encoder_advance(trace_encoder *e, const trace_event *ev);

/* The text form's word for a kind ("m", "c", ... "end"), and the kind a
 * word names (0 for none). */
const char *trace_kind_word(trace_kind k);
trace_kind trace_word_kind(const char *word);

/* Text form: the header line, and one record as one line; the writer's
 * thread is that of the previous record (0 at the start). 0, or -1 with
 * errno from stdio. */
int trace_write_text_header(FILE *out);
int trace_write_text(FILE *out, uint32_t *thread, const trace_event *ev);

/* A trace written to a stdio stream, binary or text. Each put checks the
 * record (trace_event_valid); the end record counts the records put. */
typedef struct trace_writer {
  FILE *out;
  bool text;
  trace_encoder enc;
  uint32_t text_thread;
  uint64_t records;
} trace_writer;

/* Writes the header. 0, or -1 with errno. */
int trace_writer_open(trace_writer *w, FILE *out, bool text);
/* Writes ev. 0, or -1 (errno EINVAL for an invalid record, else stdio's). */
int trace_writer_put(trace_writer *w, const trace_event *ev);
/* Writes the end record and flushes. 0, or -1 with errno. */
int trace_writer_end(trace_writer *w);

#endif
