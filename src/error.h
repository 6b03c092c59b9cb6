/*
 * error: the per-thread text behind pinheap_last_error().
 *
 * Thread-safe: each thread has its own buffer.
 */
#ifndef PINHEAP_ERROR_H
#define PINHEAP_ERROR_H

/* Sets errno to err and this thread's message to the formatted text. */
void error_set(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* How many times this thread's message was set: a caller compares two
 * readings to learn whether a callee left a reason. */
unsigned error_serial(void);

/* Adds the formatted text to the end of this thread's message. */
void error_append(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the formatted text as a line with a "pinheap: " prefix to stderr,
 * without stdio's buffers and without malloc (the heap may be corrupt, or
 * be what serves malloc). */
void error_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* error_report, then abort. */
_Noreturn void error_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
