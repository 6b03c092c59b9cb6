/*
 * `pinheap info TRACE`: what a trace holds, checking every record.
 */
#include <string.h>

#include "cli.h"
#include "commands.h"

void info_usage(FILE *out) {
  fprintf(out,
          "usage: pinheap info TRACE\n"
          "\n"
          "Reads TRACE, checking every record, and prints its form, its records by\n"
          "kind, threads, blocks, peak live bytes and duration, its info records and\n"
          "its phase marks (the first 20). Exit status 0 when the whole trace reads,\n"
          "2 when it does not (the offset of the first bad record is printed).\n");
}

int info_main(int argc, char **argv) {
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    info_usage(stdout);
    return 0;
  }
  if (argc != 2 || (argv[1][0] == '-' && argv[1][1]))
    return cli_usage_error("info", info_usage, "give one trace");
  FILE *f;
  trace_reader r;
  if (cli_open_trace("info", argv[1], &f, &r) != 0) return 2;
  trace_event ev;
  int got;
  unsigned phases = 0;
  printf("%s\n", argv[1]);
  while ((got = trace_reader_next(&r, &ev)) == 1) {
    if (ev.kind == TRACE_INFO) printf("  info: %s\n", ev.text);
    if (ev.kind == TRACE_PHASE && phases++ < 20) printf("  phase: %s (after %llu events)\n", ev.text,
                                                         (unsigned long long)r.events);
  }
  char h[32];
  printf("  form: %s, version %d, %s\n", r.text ? "text" : "binary", TRACE_VERSION,
         r.ended ? "complete (an end record)" : "no end record (a recording cut short, or a trace written by hand)");
  printf("  records: %llu:", (unsigned long long)r.records);
  for (int k = TRACE_MALLOC; k < TRACE_END; k++)
    printf(" %s %llu%s", trace_kind_name((trace_kind)k), (unsigned long long)r.by_kind[k], k + 1 < TRACE_END ? "," : "\n");
  printf("  threads: %llu\n", (unsigned long long)r.threads);
  printf("  blocks live at the end: %llu (%llu bytes); at most %llu at once\n", (unsigned long long)r.live_blocks,
         (unsigned long long)r.live_bytes, (unsigned long long)r.peak_live_blocks);
  printf("  peak live bytes: %llu (%s)\n", (unsigned long long)r.peak_live_bytes,
         cli_human(h, sizeof h, r.peak_live_bytes));
  printf("  duration: %.6f s\n", (double)r.time_ns / 1e9);
  if (got < 0) printf("  ERROR: %s\n", r.error);
  cli_close_trace(f, &r);
  return got < 0 ? 2 : 0;
}
