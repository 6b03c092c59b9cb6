/*
 * env: pinheap_options from the environment, and the parsers behind it.
 *
 * Thread-safe as getenv is: no state of its own.
 */
#ifndef PINHEAP_ENV_H
#define PINHEAP_ENV_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes in text: digits with an optional k, m, g or t suffix (powers of
 * 1024, either case, optionally followed by "b" or "ib"), or a percentage of
 * physical memory ("85%", "12.5%"; above 0, at most 100). 0 or -1. */
int env_parse_size(const char *text, size_t *out);

/* 0 | 1 | yes | no | true | false | on | off, in any case. 0 or -1. */
int env_parse_bool(const char *text, bool *out);

/* A count: digits only, at most max. 0 or -1. */
int env_parse_count(const char *text, unsigned max, unsigned *out);

/* PINHEAP_DEBUG_* flags: a boolean (every flag, or none) or a comma list of
 * canary, poison, in any case. 0 or -1. */
int env_parse_debug(const char *text, unsigned *out);

#endif
