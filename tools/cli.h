/*
 * cli: what the subcommands of the tool share: options, sizes, the names of
 * modes and policies, opening traces.
 */
#ifndef PINHEAP_TOOLS_CLI_H
#define PINHEAP_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pinheap.h"
#include "trace_reader.h"

/* Whether argv[*i] is the option name, as "name VALUE" or "name=VALUE":
 * then *value is the value (NULL when it is missing) and *i has moved past
 * it. */
bool cli_option(int argc, char **argv, int *i, const char *name, const char **value);

/* A non-negative integer (decimal or 0x hex) up to max. 0, or -1. */
int cli_uint(const char *s, uint64_t max, uint64_t *out);
/* A size as PINHEAP_SIZE takes it. 0, or -1. */
int cli_size(const char *s, size_t *out);
/* A mode by name (fixed, dynamic, simple). 0, or -1. */
int cli_mode(const char *s, pinheap_mode *out);
const char *cli_mode_name(pinheap_mode m);
/* A policy by its name (pinheap_policy_name). 0, or -1. */
int cli_policy(const char *s, pinheap_policy *out);
/* "two-ended, bump": every policy's name, into buf. */
const char *cli_policy_names(char *buf, size_t len);
/* The policy pinheap_options_init sets. */
pinheap_policy cli_default_policy(void);

/* "1.5 MiB", "512 KiB", "100 B" into buf. */
const char *cli_human(char *buf, size_t len, uint64_t bytes);

/* Prints "pinheap CMD: " and the message to stderr; returns 2 (usage). */
int cli_usage_error(const char *cmd, void (*usage)(FILE *), const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* s as a JSON string, quotes included. */
void cli_json_string(FILE *out, const char *s);

/* A trace file opened for reading (a binary or text trace): 0, or -1 with
 * the reason printed to stderr prefixed by cmd. Close with
 * cli_close_trace. */
int cli_open_trace(const char *cmd, const char *path, FILE **file, trace_reader *r);
void cli_close_trace(FILE *file, trace_reader *r);

/* A first pass over the trace at path: its statistics in *r (counts, peak
 * live bytes) and, when the trace says which heap it was made for (an info
 * record "heap SIZE"), that size in *heap (else 0). 0, or -1 with the
 * reader's error printed. */
int cli_scan_trace(const char *cmd, const char *path, trace_reader *r, size_t *heap);

#endif
