/*
 * `pinheap replay TRACE`: replays a trace through the library (engine.c)
 * in a heap of the mode, size and placement policy asked, and reports
 * whether it completed, the peak live bytes, the peak in use, the live
 * bytes at the first failure, and the free bytes and largest free extent
 * over time; as text or JSON, with a picture on request.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "engine.h"
#include "picture.h"
#include "progress.h"

#define REPLAY_SAMPLES 100
#define REPLAY_ROWS 300
#define REPLAY_TABLE_ROWS 10

void replay_usage(FILE *out) {
  char names[256];
  fprintf(out,
          "usage: pinheap replay TRACE [options]\n"
          "\n"
          "Replays TRACE (binary or text, as `pinheap record` and `pinheap gen` write\n"
          "them) through the library, event by event in its order, from one thread,\n"
          "and reports whether every request succeeded, the peak live bytes, the\n"
          "peak in use, the live bytes at the first failure, and the free bytes and\n"
          "largest free extent over time. A request that fails is counted and the\n"
          "replay goes on; later events on its block are skipped.\n"
          "\n"
          "options:\n"
          "  --heap SIZE        FIXED: the region (default: the trace's own \"heap\"\n"
          "                     info record, which `pinheap gen` writes); DYNAMIC: the\n"
          "                     cap (default none); sizes as PINHEAP_SIZE takes them\n"
          "  --mode MODE        fixed (default), dynamic or simple\n"
          "  --policy NAME      placement of a FIXED heap: %s\n"
          "                     (default %s)\n"
          "  --arenas N         jemalloc arenas (default: as pinheap_create, one per CPU)\n"
          "  --ring-min SIZE    the ring policy's ring_min (default: a 32nd of the heap)\n"
          "  --samples N        stats taken at N evenly spaced events (default %d)\n"
          "  --svg FILE         draw the heap over time as SVG\n"
          "  --oom-report FILE  the heap's first ENOMEM writes its report to FILE and\n"
          "                     a picture to FILE.svg (opts.oom_report)\n"
          "  --json             print the results as JSON\n"
          "  -h, --help         print this text\n"
          "\n"
          "A progress bar is drawn on standard error when it is a terminal.\n"
          "Exit status: 0 when every request succeeded, 1 when one failed, 2 on a\n"
          "usage error or a trace that cannot be read.\n",
          cli_policy_names(names, sizeof names), pinheap_policy_name(cli_default_policy()), REPLAY_SAMPLES);
}

typedef struct replay_args {
  const char *trace, *svg, *oom;
  pinheap_options opts;
  bool heap_given, json;
  unsigned samples;
} replay_args;

static int replay_parse(int argc, char **argv, replay_args *a) {
  memset(a, 0, sizeof *a);
  pinheap_options_init(&a->opts);
  a->samples = REPLAY_SAMPLES;
  for (int i = 1; i < argc; i++) {
    const char *v = NULL;
    uint64_t n;
    if (cli_option(argc, argv, &i, "--heap", &v)) {
      if (cli_size(v, &a->opts.size) != 0) return cli_usage_error("replay", replay_usage, "--heap needs a size");
      a->heap_given = true;
    } else if (cli_option(argc, argv, &i, "--mode", &v)) {
      if (cli_mode(v, &a->opts.mode) != 0)
        return cli_usage_error("replay", replay_usage, "--mode needs fixed, dynamic or simple");
    } else if (cli_option(argc, argv, &i, "--policy", &v)) {
      if (cli_policy(v, &a->opts.policy) != 0) return cli_usage_error("replay", replay_usage, "unknown policy");
    } else if (cli_option(argc, argv, &i, "--arenas", &v)) {
      if (cli_uint(v, 64, &n) != 0) return cli_usage_error("replay", replay_usage, "--arenas needs 0 to 64");
      a->opts.arenas = (unsigned)n;
    } else if (cli_option(argc, argv, &i, "--ring-min", &v)) {
      if (cli_size(v, &a->opts.ring_min) != 0) return cli_usage_error("replay", replay_usage, "--ring-min needs a size");
    } else if (cli_option(argc, argv, &i, "--samples", &v)) {
      if (cli_uint(v, 100000, &n) != 0) return cli_usage_error("replay", replay_usage, "--samples needs 0 to 100000");
      a->samples = (unsigned)n;
    } else if (cli_option(argc, argv, &i, "--svg", &v)) {
      if (!v) return cli_usage_error("replay", replay_usage, "--svg needs a file");
      a->svg = v;
    } else if (cli_option(argc, argv, &i, "--oom-report", &v)) {
      if (!v) return cli_usage_error("replay", replay_usage, "--oom-report needs a file");
      a->oom = a->opts.oom_report = v;
    } else if (strcmp(argv[i], "--json") == 0) {
      a->json = true;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      replay_usage(stdout);
      return 0;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      return cli_usage_error("replay", replay_usage, "unknown option '%s'", argv[i]);
    } else if (!a->trace) {
      a->trace = argv[i];
    } else {
      return cli_usage_error("replay", replay_usage, "one trace at a time ('%s')", argv[i]);
    }
  }
  if (!a->trace) return cli_usage_error("replay", replay_usage, "no trace given");
  if (a->svg && a->samples == 0) a->samples = REPLAY_SAMPLES;
  return -1;
}

static void replay_heap_line(FILE *out, const pinheap_options *o) {
  char a[32];
  fprintf(out, "heap: %s", cli_mode_name(o->mode));
  if (o->mode == PINHEAP_FIXED)
    fprintf(out, " %s (%zu bytes), policy %s", cli_human(a, sizeof a, o->size), o->size, pinheap_policy_name(o->policy));
  else if (o->mode == PINHEAP_DYNAMIC)
    fprintf(out, ", cap %s", o->size ? cli_human(a, sizeof a, o->size) : "none");
  if (o->arenas) fprintf(out, ", arenas %u", o->arenas);
  fputc('\n', out);
}

static void replay_text(const replay_args *a, const trace_reader *scan, const engine_result *res) {
  char h1[32], h2[32], h3[32], h4[32], call[96];
  printf("pinheap replay: %s: %llu events, threads %llu, peak live %s (%llu bytes)%s\n", a->trace,
         (unsigned long long)scan->events, (unsigned long long)scan->threads,
         cli_human(h1, sizeof h1, scan->peak_live_bytes), (unsigned long long)scan->peak_live_bytes,
         scan->ended ? "" : "; no end record (a recording cut short, or a trace written by hand)");
  replay_heap_line(stdout, &a->opts);
  if (!res->created) {
    printf("outcome: FAILED: the heap could not be created: %s\n", res->error);
    return;
  }
  if (res->completed) {
    printf("outcome: completed (%llu requests)\n", (unsigned long long)res->requests);
  } else {
    const engine_failure *f = &res->first;
    printf("outcome: FAILED: %llu of %llu requests failed (later events on their blocks skipped: %llu)\n",
           (unsigned long long)res->failures, (unsigned long long)res->requests, (unsigned long long)res->skipped);
    printf("first failure: event %llu (request %llu%s%s%s): %s with %s live\n", (unsigned long long)f->event,
           (unsigned long long)f->request, f->phase[0] ? ", phase \"" : "", f->phase, f->phase[0] ? "\"" : "",
           engine_describe(&f->ev, call, sizeof call), cli_human(h1, sizeof h1, f->live));
    printf("  %s\n", f->error);
    printf("live bytes at the first failure: %llu\n", (unsigned long long)f->live);
  }
  printf("peak live bytes: %llu (%s)\n", (unsigned long long)res->peak_live, cli_human(h1, sizeof h1, res->peak_live));
  printf("peak in use: %zu (%s)\n", res->end.peak_in_use, cli_human(h1, sizeof h1, res->end.peak_in_use));
  printf("at the end, after pinheap_trim: %s free, free extents %zu, the largest %s\n",
         cli_human(h1, sizeof h1, res->end.free_bytes), res->end.free_extents,
         cli_human(h2, sizeof h2, res->end.largest_free));
  if (res->n_samples < 2) return;
  printf("\nover time (samples: %zu, one in %zu shown; in use counts what thread caches keep):\n", res->n_samples,
         (res->n_samples + REPLAY_TABLE_ROWS - 1) / REPLAY_TABLE_ROWS);
  printf("%12s %12s %12s %12s %14s %13s\n", "event", "live", "in use", "free", "largest free", "largest/free");
  size_t every = (res->n_samples + REPLAY_TABLE_ROWS - 1) / REPLAY_TABLE_ROWS;
  for (size_t i = 0; i < res->n_samples; i++) {
    if (i % every && i + 1 != res->n_samples) continue;
    const engine_sample *s = &res->samples[i];
    printf("%12llu %12s %12s %12s %14s %13.3f\n", (unsigned long long)s->event, cli_human(h1, sizeof h1, s->live),
           cli_human(h2, sizeof h2, s->stats.in_use), cli_human(h3, sizeof h3, s->stats.free_bytes),
           cli_human(h4, sizeof h4, s->stats.largest_free),
           s->stats.free_bytes ? (double)s->stats.largest_free / (double)s->stats.free_bytes : 0.0);
  }
}

static void replay_json(const replay_args *a, const trace_reader *scan, const engine_result *res) {
  printf("{\"trace\": ");
  cli_json_string(stdout, a->trace);
  printf(", \"events\": %llu, \"threads\": %llu, \"complete_trace\": %s, \"trace_peak_live\": %llu,\n",
         (unsigned long long)scan->events, (unsigned long long)scan->threads, scan->ended ? "true" : "false",
         (unsigned long long)scan->peak_live_bytes);
  printf(" \"heap\": {\"mode\": \"%s\", \"size\": %zu, \"policy\": \"%s\", \"arenas\": %u},\n",
         cli_mode_name(a->opts.mode), a->opts.size, pinheap_policy_name(a->opts.policy), a->opts.arenas);
  printf(" \"created\": %s, \"completed\": %s, \"requests\": %llu, \"failures\": %llu, \"skipped\": %llu,\n",
         res->created ? "true" : "false", res->created && res->completed ? "true" : "false",
         (unsigned long long)res->requests, (unsigned long long)res->failures, (unsigned long long)res->skipped);
  printf(" \"first_failure\": ");
  if (!res->created) {
    printf("{\"error\": ");
    cli_json_string(stdout, res->error);
    printf("}");
  } else if (res->failures) {
    const engine_failure *f = &res->first;
    printf("{\"event\": %llu, \"request\": %llu, \"call\": \"%s\", \"bytes\": %llu, \"align\": %llu, \"live\": %llu, "
           "\"phase\": ",
           (unsigned long long)f->event, (unsigned long long)f->request, trace_kind_name(f->ev.kind),
           (unsigned long long)trace_event_bytes(&f->ev), (unsigned long long)f->ev.align,
           (unsigned long long)f->live);
    cli_json_string(stdout, f->phase);
    printf(", \"error\": ");
    cli_json_string(stdout, f->error);
    printf("}");
  } else {
    printf("null");
  }
  printf(",\n \"peak_live\": %llu, \"peak_in_use\": %zu,\n", (unsigned long long)res->peak_live,
         res->end.peak_in_use);
  printf(" \"end\": {\"in_use\": %zu, \"free\": %zu, \"largest_free\": %zu, \"free_extents\": %zu},\n",
         res->end.in_use, res->end.free_bytes, res->end.largest_free, res->end.free_extents);
  printf(" \"samples\": [");
  for (size_t i = 0; i < res->n_samples; i++) {
    const engine_sample *s = &res->samples[i];
    printf("%s\n  {\"event\": %llu, \"live\": %llu, \"in_use\": %zu, \"free\": %zu, \"largest_free\": %zu, "
           "\"free_extents\": %zu}",
           i ? "," : "", (unsigned long long)s->event, (unsigned long long)s->live, s->stats.in_use,
           s->stats.free_bytes, s->stats.largest_free, s->stats.free_extents);
  }
  printf("]}\n");
}

static int replay_picture(const replay_args *a, const picture *pic, const engine_result *res, uint64_t events) {
  char title[256], sub[256], fail[256], call[96], h[32];
  snprintf(title, sizeof title, "%s", a->trace);
  snprintf(sub, sizeof sub, "%s heap of %s, policy %s; %s", cli_mode_name(a->opts.mode),
           a->opts.size ? cli_human(h, sizeof h, a->opts.size) : "no cap", pinheap_policy_name(a->opts.policy),
           res->completed ? "every request succeeded" : "FAILED");
  snprintf(fail, sizeof fail, "first failure: event %llu, %s", (unsigned long long)res->first.event,
           engine_describe(&res->first.ev, call, sizeof call));
  picture_labels l = {title, sub, events, res->failures ? res->first.event : 0, fail};
  FILE *out = fopen(a->svg, "w");
  int rc = out ? picture_write_svg(pic, out, &l) : -1;
  if (out && fclose(out) != 0) rc = -1;
  if (rc != 0) fprintf(stderr, "pinheap replay: cannot write %s: %s\n", a->svg, strerror(errno));
  return rc;
}

int replay_main(int argc, char **argv) {
  replay_args a;
  int rc = replay_parse(argc, argv, &a);
  if (rc >= 0) return rc;
  trace_reader scan;
  size_t heap;
  if (cli_scan_trace("replay", a.trace, &scan, &heap) != 0) return 2;
  if (!a.heap_given && a.opts.mode == PINHEAP_FIXED) {
    if (!heap) {
      return cli_usage_error("replay", replay_usage,
                             "%s does not say which heap it was made for: give --heap for a FIXED heap", a.trace);
    }
    a.opts.size = heap;
  }
  picture pic = {0};
  if (a.svg && picture_init(&pic, REPLAY_ROWS, a.samples + 1) != 0) {
    fprintf(stderr, "pinheap replay: no memory for the picture\n");
    return 2;
  }
  progress prog;
  progress_start(&prog, "replay", scan.events);
  engine_options o = {.heap = a.opts, .events = scan.events, .peak_live = scan.peak_live_bytes, .samples = a.samples,
                      .pic = a.svg ? &pic : NULL, .prog = &prog};
  FILE *f;
  trace_reader r;
  engine_result res;
  if (cli_open_trace("replay", a.trace, &f, &r) != 0) {
    picture_fini(&pic);
    return 2;
  }
  rc = engine_run(&r, &o, &res);
  progress_end(&prog);
  if (rc != 0) {
    fprintf(stderr, "pinheap replay: %s\n", r.failed ? r.error : res.error);
  } else {
    if (a.json)
      replay_json(&a, &scan, &res);
    else
      replay_text(&a, &scan, &res);
    if (a.svg && res.created && replay_picture(&a, &pic, &res, scan.events) == 0 && !a.json)
      printf("picture: %s\n", a.svg);
    if (a.oom && res.failures && !a.json) printf("out-of-memory report: %s (picture %s.svg)\n", a.oom, a.oom);
    rc = res.created && res.completed ? 0 : 1;
  }
  engine_result_free(&res);
  cli_close_trace(f, &r);
  picture_fini(&pic);
  return rc < 0 ? 2 : rc;
}
