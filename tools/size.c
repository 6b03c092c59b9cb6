/*
 * `pinheap size TRACE`: the smallest FIXED heap that completes a trace, for
 * each placement policy, and the size above which every heap probed
 * completes (what to put in PINHEAP_SIZE). The search, and why it is more
 * than one bisection, is search.h's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "engine.h"
#include "progress.h"
#include "search.h"

#define SIZE_SCAN 20
#define SIZE_STEP_PCT 1.0
#define SIZE_MAX_HEAP ((size_t)1 << 40)

void size_usage(FILE *out) {
  char names[256];
  fprintf(out,
          "usage: pinheap size TRACE [options]\n"
          "\n"
          "Finds, for each placement policy (%s), the smallest FIXED heap that\n"
          "completes TRACE (every request succeeds), and prints it with H/M: that\n"
          "size over the trace's peak live bytes. Whether a heap completes is not\n"
          "monotone in its size, so beside the bisection's answer a scan probes sizes\n"
          "around it; \"every probe from\" is the smallest probed size from which every\n"
          "larger probed size completed: the size to put in PINHEAP_SIZE.\n"
          "\n"
          "options:\n"
          "  --policy NAME      this policy only (default: every policy)\n"
          "  --arenas N         jemalloc arenas (default: as pinheap_create, one per CPU)\n"
          "  --ring-min SIZE    the ring policy's ring_min (default: as pinheap_create)\n"
          "  --resolution SIZE  bisection stops at this interval (default: a page)\n"
          "  --scan N           probes above the bisection's result (default %d;\n"
          "                     N/2 below it), --step percent apart\n"
          "  --step PCT         the scan's step, percent of that result (default %.0f)\n"
          "  --max SIZE         the largest heap tried (default 1 TiB)\n"
          "  --json             print the results as JSON\n"
          "  -h, --help         print this text\n"
          "\n"
          "Exit status: 0 when a completing heap was found for every policy, 1 when\n"
          "not, 2 on a usage error or a trace that cannot be read.\n",
          cli_policy_names(names, sizeof names), SIZE_SCAN, SIZE_STEP_PCT);
}

typedef struct size_policy {
  pinheap_policy policy;
  search_result res;
} size_policy;

typedef struct size_args {
  const char *trace;
  bool one_policy, json;
  pinheap_policy policy;
  unsigned arenas, scan;
  double step;
  size_t resolution, max, ring_min;
} size_args;

/* What a probe needs: the arguments, the policy, the trace's peak live
 * bytes and the progress bar. */
typedef struct size_ctx {
  const size_args *a;
  pinheap_policy policy;
  uint64_t peak;
  progress *prog;
} size_ctx;

/* Whether a FIXED heap of size bytes completes the trace (a search_probe_fn). */
static int size_probe_one(void *arg, size_t size, bool *completed) {
  const size_ctx *c = arg;
  FILE *f;
  trace_reader r;
  if (cli_open_trace("size", c->a->trace, &f, &r) != 0) return -1;
  engine_options o = {.stop_at_failure = true, .peak_live = c->peak};
  pinheap_options_init(&o.heap);
  o.heap.size = size;
  o.heap.policy = c->policy;
  o.heap.arenas = c->a->arenas;
  o.heap.ring_min = c->a->ring_min;
  engine_result res;
  int rc = engine_run(&r, &o, &res);
  if (rc != 0) fprintf(stderr, "pinheap size: %s\n", r.failed ? r.error : res.error);
  *completed = res.created && res.completed;
  engine_result_free(&res);
  cli_close_trace(f, &r);
  return rc != 0 ? -1 : 0;
}

static void size_progress(void *arg, size_t probes) { progress_update(((const size_ctx *)arg)->prog, probes); }

static int size_policy_run(const size_args *a, size_policy *sp, uint64_t peak, progress *prog) {
  size_ctx c = {a, sp->policy, peak, prog};
  search_params p = {.peak = peak, .page = (size_t)sysconf(_SC_PAGESIZE), .resolution = a->resolution,
                     .max = a->max, .scan = a->scan, .step = a->step};
  if (search_run(&p, size_probe_one, size_progress, &c, &sp->res) != 0) return -1;
  return search_check(&sp->res) ? -1 : 0;
}

static int size_parse(int argc, char **argv, size_args *a) {
  memset(a, 0, sizeof *a);
  a->scan = SIZE_SCAN;
  a->step = SIZE_STEP_PCT;
  a->resolution = (size_t)sysconf(_SC_PAGESIZE);
  a->max = SIZE_MAX_HEAP;
  for (int i = 1; i < argc; i++) {
    const char *v = NULL;
    uint64_t n;
    if (cli_option(argc, argv, &i, "--policy", &v)) {
      if (cli_policy(v, &a->policy) != 0) return cli_usage_error("size", size_usage, "unknown policy");
      a->one_policy = true;
    } else if (cli_option(argc, argv, &i, "--arenas", &v)) {
      if (cli_uint(v, 64, &n) != 0) return cli_usage_error("size", size_usage, "--arenas needs 0 to 64");
      a->arenas = (unsigned)n;
    } else if (cli_option(argc, argv, &i, "--ring-min", &v)) {
      if (cli_size(v, &a->ring_min) != 0) return cli_usage_error("size", size_usage, "--ring-min needs a size");
    } else if (cli_option(argc, argv, &i, "--resolution", &v)) {
      if (cli_size(v, &a->resolution) != 0 || !a->resolution)
        return cli_usage_error("size", size_usage, "--resolution needs a size");
    } else if (cli_option(argc, argv, &i, "--scan", &v)) {
      if (cli_uint(v, 1000, &n) != 0) return cli_usage_error("size", size_usage, "--scan needs 0 to 1000");
      a->scan = (unsigned)n;
    } else if (cli_option(argc, argv, &i, "--step", &v)) {
      char *end = NULL;
      a->step = v ? strtod(v, &end) : 0;
      if (!v || end == v || *end || !(a->step > 0 && a->step <= 100))
        return cli_usage_error("size", size_usage, "--step needs a percentage above 0, at most 100");
    } else if (cli_option(argc, argv, &i, "--max", &v)) {
      if (cli_size(v, &a->max) != 0 || !a->max) return cli_usage_error("size", size_usage, "--max needs a size");
    } else if (strcmp(argv[i], "--json") == 0) {
      a->json = true;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      size_usage(stdout);
      return 0;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      return cli_usage_error("size", size_usage, "unknown option '%s'", argv[i]);
    } else if (!a->trace) {
      a->trace = argv[i];
    } else {
      return cli_usage_error("size", size_usage, "one trace at a time ('%s')", argv[i]);
    }
  }
  if (!a->trace) return cli_usage_error("size", size_usage, "no trace given");
  return -1;
}

static void size_cell(char *buf, size_t len, size_t size, uint64_t peak, const char *none) {
  char h[32];
  if (!size)
    snprintf(buf, len, "%s", none);
  else
    snprintf(buf, len, "%s (%zu) %6.3f", cli_human(h, sizeof h, size), size, peak ? (double)size / (double)peak : 0.0);
}

static void size_table(const size_args *a, const trace_reader *scan, const size_policy *sp, size_t n) {
  char h[32], c1[96], c2[96];
  printf("pinheap size: %s: %llu events, peak live bytes M = %s (%llu)\n", a->trace, (unsigned long long)scan->events,
         cli_human(h, sizeof h, scan->peak_live_bytes), (unsigned long long)scan->peak_live_bytes);
  printf("%-12s %-34s %-34s %s\n", "policy", "smallest found, bytes, H/M", "every probe from, bytes, H/M", "probes");
  for (size_t i = 0; i < n; i++) {
    size_cell(c1, sizeof c1, sp[i].res.smallest, scan->peak_live_bytes, "none up to --max");
    size_cell(c2, sizeof c2, sp[i].res.all_from, scan->peak_live_bytes,
              sp[i].res.smallest ? "none: the largest probe failed" : "none up to --max");
    printf("%-12s %-34s %-34s %zu\n", pinheap_policy_name(sp[i].policy), c1, c2, sp[i].res.n);
  }
  for (size_t i = 0; i < n; i++) {
    if (!sp[i].res.all_from) continue;
    printf("%s: PINHEAP_SIZE=%zu (bisection %zu; largest failing probe %zu; scan %.1f%% steps, %u above, %u below)\n",
           pinheap_policy_name(sp[i].policy), sp[i].res.all_from, sp[i].res.bisected, sp[i].res.failing, a->step, a->scan,
           a->scan / 2);
  }
}

static void size_json(const size_args *a, const trace_reader *scan, const size_policy *sp, size_t n) {
  printf("{\"trace\": ");
  cli_json_string(stdout, a->trace);
  printf(", \"events\": %llu, \"peak_live\": %llu, \"step_pct\": %g, \"policies\": [", (unsigned long long)scan->events,
         (unsigned long long)scan->peak_live_bytes, a->step);
  double m = scan->peak_live_bytes ? (double)scan->peak_live_bytes : 1;
  for (size_t i = 0; i < n; i++) {
    printf("%s\n  {\"policy\": \"%s\", \"smallest\": %zu, \"smallest_hm\": %.4f, \"every_probe_from\": %zu, "
           "\"every_probe_from_hm\": %.4f, \"bisection\": %zu, \"largest_failing\": %zu, \"probes\": [",
           i ? "," : "", pinheap_policy_name(sp[i].policy), sp[i].res.smallest, (double)sp[i].res.smallest / m,
           sp[i].res.all_from, (double)sp[i].res.all_from / m, sp[i].res.bisected, sp[i].res.failing);
    for (size_t k = 0; k < sp[i].res.n; k++)
      printf("%s{\"size\": %zu, \"completed\": %s}", k ? ", " : "", sp[i].res.probes[k].size,
             sp[i].res.probes[k].completed ? "true" : "false");
    printf("]}");
  }
  printf("]}\n");
}

int size_main(int argc, char **argv) {
  size_args a;
  int rc = size_parse(argc, argv, &a);
  if (rc >= 0) return rc;
  trace_reader scan;
  size_t heap;
  if (cli_scan_trace("size", a.trace, &scan, &heap) != 0) return 2;
  size_policy sp[16];
  size_t n = 0;
  for (pinheap_policy p = 0; pinheap_policy_name(p) && n < 16; p++)
    if (!a.one_policy || p == a.policy) sp[n++] = (size_policy){.policy = p};
  rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    char label[64];
    progress prog;
    snprintf(label, sizeof label, "size %s", pinheap_policy_name(sp[i].policy));
    progress_start(&prog, label, 20 + a.scan + a.scan / 2);
    rc = size_policy_run(&a, &sp[i], scan.peak_live_bytes, &prog);
    progress_end(&prog);
  }
  if (rc == 0) {
    if (a.json)
      size_json(&a, &scan, sp, n);
    else
      size_table(&a, &scan, sp, n);
  }
  bool all = true;
  for (size_t i = 0; i < n; i++) {
    all = all && sp[i].res.all_from;
    search_result_free(&sp[i].res);
  }
  return rc != 0 ? 2 : all ? 0 : 1;
}
