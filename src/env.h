/*
 * env: pinheap_options from the environment, and the parsers behind it.
 *
 * Thread-safe as getenv is: no state of its own.
 */
#ifndef PINHEAP_ENV_H
#define PINHEAP_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes in text, one of:
 *   - digits: that many bytes;
 *   - digits, optionally a point and 1 to 18 digits, then a k, m, g or t
 *     suffix (powers of 1024, either case, optionally followed by "b" or
 *     "ib"): that many units, rounded up to a whole byte ("1.5g" is
 *     1610612736, "0.3k" is 308);
 *   - a percentage of physical memory: digits, optionally a point and 1 to
 *     6 digits, then "%" (above 0, at most 100), rounded up to a page.
 * Nothing else: no sign, exponent, space, second point, or point without
 * digits on both sides. 0 or -1. */
int env_parse_size(const char *text, size_t *out);

/* The longest duration env_parse_seconds takes: about 31 years. */
#define ENV_MAX_SECONDS 1000000000u

/* A duration in text: digits, optionally a point and 1 to 9 digits, in
 * seconds, at most ENV_MAX_SECONDS; *ns gets it in nanoseconds. 0 or -1. */
int env_parse_seconds(const char *text, uint64_t *ns);

/* 0 | 1 | yes | no | true | false | on | off, in any case. 0 or -1. */
int env_parse_bool(const char *text, bool *out);

/* A count: digits only, at most max. 0 or -1. */
int env_parse_count(const char *text, unsigned max, unsigned *out);

/* PINHEAP_DEBUG_* flags: a boolean (every flag, or none) or a comma list of
 * canary, poison, in any case. 0 or -1. */
int env_parse_debug(const char *text, unsigned *out);

#endif
