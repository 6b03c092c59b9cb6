/*
 * `pinheap gen KIND`: writes a synthetic workload (workload.c) as a trace.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "workload.h"

void gen_usage(FILE *out) {
  fprintf(out,
          "usage: pinheap gen KIND [--seed N] [--heap SIZE] [--steps N] [--text] [-o FILE]\n"
          "\n"
          "Writes a synthetic workload as a trace (binary, or text with --text) to\n"
          "FILE, or to standard output when it is not a terminal. Block sizes are\n"
          "fractions of the nominal heap (--heap), which the trace records for\n"
          "`pinheap replay`; the same arguments give the same trace.\n"
          "\n"
          "kinds (default heap, steps):\n");
  char h[32];
  for (size_t i = 0; i < workload_count; i++) {
    const workload_kind *k = &workload_kinds[i];
    fprintf(out, "  %-8s %s\n           (%s", k->name, k->summary, cli_human(h, sizeof h, k->heap));
    if (k->steps) fprintf(out, ", %u steps", k->steps);
    fprintf(out, ")\n");
  }
  fprintf(out,
          "\noptions:\n"
          "  --seed N     the seed (default 1)\n"
          "  --heap SIZE  the nominal heap (sizes as PINHEAP_SIZE takes them)\n"
          "  --steps N    how many steps (iterations, requests) the kind makes\n"
          "  --text       the text form instead of the binary one\n"
          "  -o FILE      where to write (default: standard output)\n"
          "  -h, --help   print this text\n");
}

int gen_main(int argc, char **argv) {
  const workload_kind *kind = NULL;
  workload_params p = {.seed = 1};
  const char *path = NULL;
  bool text = false, heap = false, steps = false;
  for (int i = 1; i < argc; i++) {
    const char *v = NULL;
    uint64_t n;
    if (cli_option(argc, argv, &i, "--seed", &v)) {
      if (cli_uint(v, UINT64_MAX, &p.seed) != 0) return cli_usage_error("gen", gen_usage, "--seed needs a number");
    } else if (cli_option(argc, argv, &i, "--heap", &v)) {
      if (cli_size(v, &p.heap) != 0 || !p.heap) return cli_usage_error("gen", gen_usage, "--heap needs a size");
      heap = true;
    } else if (cli_option(argc, argv, &i, "--steps", &v)) {
      if (cli_uint(v, 100000000, &n) != 0) return cli_usage_error("gen", gen_usage, "--steps needs a number");
      p.steps = (unsigned)n;
      steps = true;
    } else if (cli_option(argc, argv, &i, "-o", &v)) {
      if (!v) return cli_usage_error("gen", gen_usage, "-o needs a file");
      path = v;
    } else if (strcmp(argv[i], "--text") == 0) {
      text = true;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      gen_usage(stdout);
      return 0;
    } else if (argv[i][0] == '-') {
      return cli_usage_error("gen", gen_usage, "unknown option '%s'", argv[i]);
    } else if (!kind) {
      if (!(kind = workload_find(argv[i]))) return cli_usage_error("gen", gen_usage, "unknown kind '%s'", argv[i]);
    } else {
      return cli_usage_error("gen", gen_usage, "one kind at a time ('%s')", argv[i]);
    }
  }
  if (!kind) return cli_usage_error("gen", gen_usage, "no kind given");
  if (!heap) p.heap = kind->heap;
  if (!steps) p.steps = kind->steps;
  if (!path && !text && isatty(STDOUT_FILENO))
    return cli_usage_error("gen", gen_usage, "a binary trace is not written to a terminal: give -o FILE or --text");
  FILE *out = path ? fopen(path, "wb") : stdout;
  if (!out) {
    fprintf(stderr, "pinheap gen: cannot write %s: %s\n", path, strerror(errno));
    return 2;
  }
  trace_writer w;
  int rc = trace_writer_open(&w, out, text) || workload_write(kind, &p, &w) || trace_writer_end(&w);
  if (path && fclose(out) != 0) rc = 1;
  if (rc) {
    fprintf(stderr, "pinheap gen: writing %s failed: %s\n", path ? path : "standard output", strerror(errno));
    return 2;
  }
  return 0;
}
