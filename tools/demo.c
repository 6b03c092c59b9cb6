/*
 * `pinheap demo`: runs a few allocation scenarios (workload.c: the seed's
 * sequences, the tiny object in a freed hole, an array churn) in FIXED heaps
 * under the bump policy and under every other policy, the default
 * (two-ended) first, by replaying their traces (engine.c), and prints a
 * table of outcomes and of the free space left; with --svg, a picture of
 * each run.
 *
 * Blocks are only touched at their first and last byte: the region is
 * reserved with MAP_NORESERVE, so the untouched pages cost no real memory.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "commands.h"
#include "engine.h"
#include "picture.h"
#include "workload.h"

#define DEFAULT_SEED 12345ULL
#define CHURN_ITERS_FULL 2000u
#define CHURN_ITERS_QUICK 200u
#define DEMO_SAMPLES 200
#define DEMO_ROWS 300
#define DEMO_MAX_POLICIES 16

typedef struct scenario {
  const char *name; /* in the table */
  const char *kind; /* the workload */
  bool churn;       /* steps count requests, and the iteration is named */
} scenario;

static const scenario scenarios[] = {
    {"700 then 1000", "seq700", false},
    {"1000 then 2x500", "seq1000", false},
    {"tiny in hole", "tiny", false},
    {"array churn", "churn", true},
};
#define N_SCENARIOS (sizeof scenarios / sizeof scenarios[0])

typedef struct result {
  const scenario *sc;
  pinheap_policy policy;
  bool ok;
  char outcome[128];
  char error[512]; /* pinheap_last_error() at the first failure */
  bool have_stats;
  pinheap_stats stats;
  char detail[256]; /* for the churn; "" if none */
} result;

/* The policies in the table's order: bump first, for comparison, then the
 * others, the default first. */
static size_t demo_policies(pinheap_policy *out) {
  size_t n = 0;
  out[n++] = PINHEAP_POLICY_BUMP;
  out[n++] = cli_default_policy();
  for (pinheap_policy p = 0; pinheap_policy_name(p) && n < DEMO_MAX_POLICIES; p++)
    if (p != PINHEAP_POLICY_BUMP && p != cli_default_policy()) out[n++] = p;
  return n;
}

static const char *demo_policy_label(pinheap_policy p, char *buf, size_t len) {
  snprintf(buf, len, "%s%s", pinheap_policy_name(p), p == cli_default_policy() ? "*" : "");
  return buf;
}

/* The scenario's trace, in memory. */
static char *demo_trace(const scenario *sc, uint64_t seed, unsigned iters, size_t *len, size_t *heap) {
  const workload_kind *k = workload_find(sc->kind);
  workload_params p = {.seed = seed, .heap = k->heap, .steps = sc->churn ? iters : k->steps};
  char *buf = NULL;
  FILE *out = open_memstream(&buf, len);
  if (!out) return NULL;
  trace_writer w;
  int rc = trace_writer_open(&w, out, false) || workload_write(k, &p, &w) || trace_writer_end(&w);
  if (fclose(out) != 0 || rc) {
    free(buf);
    return NULL;
  }
  *heap = p.heap;
  return buf;
}

static int demo_picture(const char *dir, const scenario *sc, const result *res, const engine_result *er,
                        const picture *pic, size_t heap, uint64_t events) {
  char path[4096], sub[256], fail[256], call[96], h[32];
  snprintf(path, sizeof path, "%s/%s-%s.svg", dir, sc->kind, pinheap_policy_name(res->policy));
  snprintf(sub, sizeof sub, "FIXED heap of %s, policy %s: %s", cli_human(h, sizeof h, heap),
           pinheap_policy_name(res->policy), res->outcome);
  snprintf(fail, sizeof fail, "first failure: event %llu, %s", (unsigned long long)er->first.event,
           engine_describe(&er->first.ev, call, sizeof call));
  picture_labels l = {sc->name, sub, events, er->failures ? er->first.event : 0, fail};
  FILE *out = fopen(path, "w");
  int rc = out ? picture_write_svg(pic, out, &l) : -1;
  if (out && fclose(out) != 0) rc = -1;
  if (rc != 0) fprintf(stderr, "pinheap demo: cannot write %s: %s\n", path, strerror(errno));
  return rc;
}

/* Replays the trace in buf under policy into res; 0, or -1 when the trace
 * could not be read. */
static int demo_run(const scenario *sc, const char *buf, size_t len, size_t heap, pinheap_policy policy,
                    const char *svg_dir, result *res) {
  res->sc = sc;
  res->policy = policy;
  FILE *in = fmemopen((void *)buf, len, "rb");
  trace_reader r;
  if (!in || trace_reader_open(&r, in, sc->kind) != 0) {
    if (in) fclose(in);
    return -1;
  }
  /* The first pass counts the events, to space the picture's columns. */
  uint64_t events = 0;
  if (svg_dir) {
    trace_event ev;
    while (trace_reader_next(&r, &ev) == 1) {
    }
    events = r.events;
    trace_reader_close(&r);
    rewind(in);
    trace_reader_open(&r, in, sc->kind);
  }
  picture pic = {0};
  engine_options o = {.events = events, .measure = "measure"};
  pinheap_options_init(&o.heap);
  o.heap.size = heap;
  o.heap.policy = policy;
  if (svg_dir && picture_init(&pic, DEMO_ROWS, DEMO_SAMPLES + 1) == 0) {
    o.samples = DEMO_SAMPLES;
    o.pic = &pic;
  }
  engine_result er;
  int rc = engine_run(&r, &o, &er);
  trace_reader_close(&r);
  fclose(in);
  if (rc == 0) {
    char call[96], h[32];
    res->ok = er.created && er.completed;
    if (!er.created) {
      snprintf(res->outcome, sizeof res->outcome, "FAILED: pinheap_create(%s)", cli_human(h, sizeof h, heap));
      snprintf(res->error, sizeof res->error, "%s", er.error);
    } else if (!er.completed) {
      const engine_failure *f = &er.first;
      const char *it = strncmp(f->phase, "iteration ", 10) == 0 ? f->phase + 10 : NULL;
      if (sc->churn && it)
        snprintf(res->outcome, sizeof res->outcome, "FAILED at step %llu (iteration %.20s): %s",
                 (unsigned long long)f->request, it, engine_describe(&f->ev, call, sizeof call));
      else
        snprintf(res->outcome, sizeof res->outcome, "FAILED at step %llu: %s", (unsigned long long)f->event,
                 engine_describe(&f->ev, call, sizeof call));
      snprintf(res->error, sizeof res->error, "%s", f->error);
    } else {
      snprintf(res->outcome, sizeof res->outcome, "ok");
    }
    res->have_stats = er.measured;
    res->stats = er.measure;
    if (sc->churn)
      snprintf(res->detail, sizeof res->detail,
               "requests %llu/%llu ok (%llu failed), %llu long-lived blocks kept (%.1f KiB)",
               (unsigned long long)(er.requests - er.failures), (unsigned long long)er.requests,
               (unsigned long long)er.failures, (unsigned long long)er.measure_blocks,
               (double)er.measure_live / 1024.0);
    if (svg_dir && er.created && o.pic) demo_picture(svg_dir, sc, res, &er, &pic, heap, events);
  }
  engine_result_free(&er);
  picture_fini(&pic);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Table */

static int max_int(int a, int b) { return a > b ? a : b; }

static void print_table(const result *rows, size_t n) {
  const char *h_scen = "scenario", *h_pol = "policy", *h_out = "outcome";
  const char *h_free = "free MiB", *h_large = "largest free MiB", *h_ext = "free extents";
  char label[64];
  int w_scen = (int)strlen(h_scen), w_pol = (int)strlen(h_pol), w_out = (int)strlen(h_out);
  int w_free = (int)strlen(h_free), w_large = (int)strlen(h_large), w_ext = (int)strlen(h_ext);
  for (size_t i = 0; i < n; i++) {
    w_scen = max_int(w_scen, (int)strlen(rows[i].sc->name));
    w_pol = max_int(w_pol, (int)strlen(demo_policy_label(rows[i].policy, label, sizeof label)));
    w_out = max_int(w_out, (int)strlen(rows[i].outcome));
  }

  printf("%-*s  %-*s  %-*s  %*s  %*s  %*s\n", w_scen, h_scen, w_pol, h_pol, w_out, h_out, w_free, h_free, w_large,
         h_large, w_ext, h_ext);
  int total = w_scen + w_pol + w_out + w_free + w_large + w_ext + 5 * 2;
  for (int i = 0; i < total; i++) putchar('-');
  putchar('\n');

  for (size_t i = 0; i < n; i++) {
    const result *r = &rows[i];
    printf("%-*s  %-*s  %-*s  ", w_scen, r->sc->name, w_pol, demo_policy_label(r->policy, label, sizeof label), w_out,
           r->outcome);
    if (r->have_stats)
      printf("%*.1f  %*.1f  %*zu\n", w_free, (double)r->stats.free_bytes / (1 << 20), w_large,
             (double)r->stats.largest_free / (1 << 20), w_ext, r->stats.free_extents);
    else
      printf("%*s  %*s  %*s\n", w_free, "-", w_large, "-", w_ext, "-");
    if (i + 1 < n && rows[i + 1].sc != r->sc) putchar('\n');
  }
}

static void print_legend(void) {
  printf("\n"
         "legend:\n"
         "  policy      bump: the pointer only moves up and never takes memory back;\n"
         "              two-ended: best fit, small extents from the top, large ones\n"
         "              from the bottom, free extents coalesced at once;\n"
         "              ring: as two-ended, but arrays (a 32nd of the region and more)\n"
         "              next fit round the region, every smaller extent at the top;\n"
         "              first-fit: as two-ended, large extents lowest address first;\n"
         "              *: the default.\n"
         "  outcome     ok, or the first request that failed; steps count the\n"
         "              scenario's operations (frees included) in scenarios 1-3 and\n"
         "              its allocation requests in the array churn.\n"
         "  free MiB, largest free MiB, free extents\n"
         "              pinheap_get_stats after pinheap_trim, once the scenario freed\n"
         "              everything it held, except the long-lived small objects of\n"
         "              the array churn.\n"
         "  bump failing is the expected outcome; the default policy must not fail.\n");
}

/* ------------------------------------------------------------------------ */
/* Command */

void demo_usage(FILE *out) {
  fprintf(out,
          "usage: pinheap demo [--quick] [--seed N] [--svg DIR]\n"
          "\n"
          "Runs allocation scenarios in FIXED heaps under the bump policy and under\n"
          "every other policy the library has (the default first), and prints\n"
          "a table of the outcomes and of the free space left:\n"
          "  1. 700 then 1000     heap 1200 MiB: malloc 700 MiB, free, malloc 1000 MiB\n"
          "  2. 1000 then 2x500   heap 1050 MiB: malloc 1000 MiB, free, 2x malloc 500 MiB\n"
          "  3. tiny in hole      heap 650 MiB: malloc 500 MiB, malloc 40 B, free the\n"
          "                       500 MiB, malloc 40 B, malloc 500 MiB\n"
          "  4. array churn       heap 1024 MiB: each iteration allocates 1-3 arrays of\n"
          "                       16-300 MiB (under 75%% together) and frees them in\n"
          "                       random order; small objects of 16 B-4 KiB allocated\n"
          "                       in between outlive it, a quarter of them long-lived\n"
          "The scenarios are the traces `pinheap gen seq700|seq1000|tiny|churn` writes.\n"
          "\n"
          "options:\n"
          "  --quick     run the array churn at a smaller scale (%u instead of %u iterations)\n"
          "  --seed N    seed of the array churn (default %llu)\n"
          "  --svg DIR   draw each run (scenario, policy) to DIR/SCENARIO-POLICY.svg\n"
          "  -h, --help  print this text\n"
          "\n"
          "Exit status: 0 when the default policy completes every scenario, 1 when it\n"
          "does not, 2 on a usage error.\n",
          CHURN_ITERS_QUICK, CHURN_ITERS_FULL, (unsigned long long)DEFAULT_SEED);
}

int demo_main(int argc, char **argv) {
  bool quick = false;
  uint64_t seed = DEFAULT_SEED;
  const char *svg_dir = NULL;

  for (int i = 1; i < argc; i++) {
    const char *v = NULL;
    if (strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (cli_option(argc, argv, &i, "--seed", &v)) {
      if (cli_uint(v, UINT64_MAX, &seed) != 0)
        return cli_usage_error("demo", demo_usage, "--seed needs a non-negative integer");
    } else if (cli_option(argc, argv, &i, "--svg", &v)) {
      if (!v) return cli_usage_error("demo", demo_usage, "--svg needs a directory");
      svg_dir = v;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      demo_usage(stdout);
      return 0;
    } else {
      return cli_usage_error("demo", demo_usage, "unknown argument '%s'", argv[i]);
    }
  }
  if (svg_dir && mkdir(svg_dir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "pinheap demo: cannot make %s: %s\n", svg_dir, strerror(errno));
    return 2;
  }

  const unsigned iters = quick ? CHURN_ITERS_QUICK : CHURN_ITERS_FULL;
  pinheap_policy policies[DEMO_MAX_POLICIES];
  size_t n_policies = demo_policies(policies);

  printf("pinheap demo: FIXED heaps, every policy (%s the default)\n", pinheap_policy_name(cli_default_policy()));
  printf("array churn: seed %llu, %u iterations%s\n\n", (unsigned long long)seed, iters, quick ? " (--quick)" : "");
  fflush(stdout);

  result rows[N_SCENARIOS * DEMO_MAX_POLICIES];
  memset(rows, 0, sizeof rows);
  size_t n = 0;
  for (size_t s = 0; s < N_SCENARIOS; s++) {
    size_t len, heap;
    char *buf = demo_trace(&scenarios[s], seed, iters, &len, &heap);
    if (!buf) {
      fprintf(stderr, "pinheap demo: no memory for the trace of %s\n", scenarios[s].name);
      return 2;
    }
    for (size_t p = 0; p < n_policies; p++) {
      if (demo_run(&scenarios[s], buf, len, heap, policies[p], svg_dir, &rows[n++]) != 0) {
        fprintf(stderr, "pinheap demo: the trace of %s cannot be replayed\n", scenarios[s].name);
        free(buf);
        return 2;
      }
    }
    free(buf);
  }

  print_table(rows, n);

  char label[64];
  bool any_detail = false;
  for (size_t i = 0; i < n; i++) {
    if (rows[i].detail[0] == '\0') continue;
    if (!any_detail) printf("\n%s (seed %llu):\n", rows[i].sc->name, (unsigned long long)seed);
    any_detail = true;
    printf("  %-10s  %s\n", demo_policy_label(rows[i].policy, label, sizeof label), rows[i].detail);
  }

  bool any_failure = false;
  for (size_t i = 0; i < n; i++) {
    if (rows[i].ok) continue;
    if (!any_failure) printf("\nfailures (pinheap_last_error at the first failed request):\n");
    any_failure = true;
    printf("  %s / %s: %s\n", rows[i].sc->name, demo_policy_label(rows[i].policy, label, sizeof label),
           rows[i].error);
  }

  print_legend();
  if (svg_dir) printf("\npictures: %s/SCENARIO-POLICY.svg\n", svg_dir);

  bool default_ok = true;
  for (size_t i = 0; i < n; i++)
    if (rows[i].policy == cli_default_policy() && !rows[i].ok) default_ok = false;
  printf("\nresult: the default policy %s\n", default_ok ? "completed every scenario" : "FAILED at least one scenario");
  return default_ok ? 0 : 1;
}
