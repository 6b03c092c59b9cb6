#include "compare.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ops.h"
#include "replay.h"
#include "search.h"
#include "speed.h"

#define COMPARE_MAX_PEERS 32
#define COMPARE_PAGE ((size_t)4096)
#define COMPARE_ROWS 200
#define COMPARE_COLUMNS 301
#define COMPARE_JOB_TIMEOUT "600"

static peer compare_peers[COMPARE_MAX_PEERS];
static size_t compare_n;
static char compare_self[PATH_MAX];

static const peer *compare_find(const char *name) {
  for (size_t i = 0; i < compare_n; i++)
    if (strcmp(compare_peers[i].name, name) == 0) return &compare_peers[i];
  return NULL;
}

static int compare_usage(const char *fmt, const char *arg) {
  fprintf(stderr, "compare: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nusage: see bench/compare/compare.h\n");
  return 2;
}

/* A decimal count up to max. 0, or -1. */
static int compare_uint(const char *s, unsigned long long max, unsigned long long *out) {
  char *end;
  if (!s || *s < '0' || *s > '9') return -1;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v > max) return -1;
  *out = v;
  return 0;
}

static int compare_double(const char *s, double lo, double hi, double *out) {
  char *end;
  if (!s) return -1;
  double v = strtod(s, &end);
  if (end == s || *end || !(v >= lo && v <= hi)) return -1;
  *out = v;
  return 0;
}

static void compare_json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

static double compare_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int compare_setup(const peer *p) {
  char err[256] = "";
  if (p->setup && p->setup(p, compare_self, err, sizeof err) != 0) {
    fprintf(stderr, "compare: %s: %s\n", p->name, err);
    return -1;
  }
  return 0;
}

/* ---- replay ------------------------------------------------------------ */

typedef struct compare_opts {
  const char *ops, *peer, *columns, *test, *threads;
  size_t heap, size;
  bool stop;
  double resolution, step, max_ratio, seconds, scale;
  unsigned long long scan, reps, seed;
} compare_opts;

/* Options of every subcommand; the first word that is not one is the ops
 * file. 0, or 2 (usage). */
static int compare_parse(int argc, char **argv, compare_opts *o) {
  *o = (compare_opts){.resolution = 0.5, .step = 1.0, .max_ratio = 64, .seconds = 0.3, .scale = 1, .scan = 6, .reps = 5,
                      .seed = 12345, .size = (size_t)256 << 20};
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    unsigned long long n;
    int bad = 0;
    if (strcmp(a, "--stop") == 0) {
      o->stop = true;
      continue;
    }
    if (a[0] != '-') {
      if (o->ops) return compare_usage("one input at a time ('%s')", a);
      o->ops = a;
      continue;
    }
    if (!v) return compare_usage("%s needs a value", a);
    i++;
    if (strcmp(a, "--peer") == 0)
      o->peer = v;
    else if (strcmp(a, "--columns") == 0)
      o->columns = v;
    else if (strcmp(a, "--test") == 0)
      o->test = v;
    else if (strcmp(a, "--threads") == 0)
      o->threads = v;
    else if (strcmp(a, "--heap") == 0 || strcmp(a, "--size") == 0) {
      bad = compare_uint(v, (unsigned long long)1 << 46, &n) || n < COMPARE_PAGE;
      *(a[2] == 'h' ? &o->heap : &o->size) = (size_t)n / COMPARE_PAGE * COMPARE_PAGE;
    } else if (strcmp(a, "--resolution") == 0)
      bad = compare_double(v, 0.001, 50, &o->resolution);
    else if (strcmp(a, "--step") == 0)
      bad = compare_double(v, 0.01, 100, &o->step);
    else if (strcmp(a, "--max-ratio") == 0)
      bad = compare_double(v, 1.01, 1e6, &o->max_ratio);
    else if (strcmp(a, "--scale") == 0)
      bad = compare_double(v, 0.001, 1, &o->scale);
    else if (strcmp(a, "--seconds") == 0)
      bad = compare_double(v, 0.001, 600, &o->seconds);
    else if (strcmp(a, "--scan") == 0)
      bad = compare_uint(v, 1000, &o->scan);
    else if (strcmp(a, "--reps") == 0)
      bad = compare_uint(v, 1000, &o->reps) || !o->reps;
    else if (strcmp(a, "--seed") == 0)
      bad = compare_uint(v, ULLONG_MAX, &o->seed);
    else
      return compare_usage("unknown option '%s'", a);
    if (bad) return compare_usage("bad value for %s", a);
  }
  return 0;
}

static const peer *compare_peer_arg(const compare_opts *o) {
  const peer *p = o->peer ? compare_find(o->peer) : NULL;
  if (!p) fprintf(stderr, "compare: %s '%s' (see `peers`)\n", o->peer ? "no peer" : "--peer needed", o->peer ? o->peer : "");
  return p;
}

static void compare_print_replay(const peer *p, size_t heap, const ops *o, const replay_result *r) {
  printf("{\"peer\": ");
  compare_json_string(p->name);
  printf(", \"heap\": %zu, \"created\": %s, \"error\": ", heap, r->created ? "true" : "false");
  compare_json_string(r->error);
  printf(", \"completed\": %s, \"failures\": %llu, \"fail_record\": %llu, \"fail_live\": %llu, \"fail_size\": %llu, "
         "\"peak_live\": %llu, \"has_space\": %s, \"free_bytes\": %zu, \"largest_free\": %zu, \"space_live\": %llu, "
         "\"region\": %zu, \"outside\": %llu, \"outside_size\": %llu, \"seconds\": %.6f}\n",
         r->created && r->completed ? "true" : "false", (unsigned long long)r->failures,
         (unsigned long long)r->fail_record, (unsigned long long)r->fail_live, (unsigned long long)r->fail_size,
         (unsigned long long)o->h.peak_live, r->has_space ? "true" : "false", r->space.free_bytes,
         r->space.largest_free, (unsigned long long)r->space_live, r->region, (unsigned long long)r->outside,
         (unsigned long long)r->outside_size, r->seconds);
}

static int cmd_replay(int argc, char **argv) {
  compare_opts o;
  if (compare_parse(argc, argv, &o)) return 2;
  const peer *p = compare_peer_arg(&o);
  if (!p || !o.ops || !o.heap) return p ? compare_usage("%s", "replay needs OPS and --heap") : 2;
  ops t;
  char err[512];
  if (ops_load(&t, o.ops, err, sizeof err) != 0) {
    fprintf(stderr, "compare: %s\n", err);
    return 2;
  }
  if (compare_setup(p) != 0) return 1;
  replay_columns cols;
  bool draw = o.columns != NULL;
  if (draw && replay_columns_init(&cols, COMPARE_ROWS, COMPARE_COLUMNS) != 0) return 1;
  replay_options ro = {.heap = o.heap, .stop_at_failure = o.stop, .cols = draw ? &cols : NULL};
  replay_result r;
  int rc = replay_run(p, &t, &ro, &r);
  if (rc == 0) compare_print_replay(p, o.heap, &t, &r);
  if (draw) {
    FILE *f = fopen(o.columns, "w");
    if (!f || replay_columns_write(&cols, t.h.n, r.region, f) != 0 || fclose(f) != 0) {
      fprintf(stderr, "compare: %s: %s\n", o.columns, strerror(errno));
      rc = -1;
    }
    replay_columns_fini(&cols);
  }
  ops_unload(&t);
  return rc ? 1 : 0;
}

/* ---- frag -------------------------------------------------------------- */

/* The value of "key": in a JSON line this file printed, or -1. */
static double compare_field(const char *json, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\": ", key);
  const char *at = strstr(json, pat);
  if (!at) return -1;
  at += strlen(pat);
  if (strncmp(at, "true", 4) == 0) return 1;
  if (strncmp(at, "false", 5) == 0) return 0;
  return strtod(at, NULL);
}

/* One replay by a job of its own (PEER_EXTERNAL): the runner started again
 * under the peer's launcher, bounded in time; its JSON line into out. A job
 * that crashes or prints no line did not complete. 0, or -1. */
static int compare_job(const peer *p, const char *opsfile, size_t heap, bool stop, char *out, size_t outlen) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    const char *argv[40] = {"timeout", "-k", "10", COMPARE_JOB_TIMEOUT};
    size_t n = 4;
    if (p->launch) {
      size_t k = p->launch(p, heap, argv + n, 40 - n - 10);
      if (!k) _exit(127);
      n += k;
    }
    char hb[32];
    snprintf(hb, sizeof hb, "%zu", heap);
    const char *tail[] = {compare_self, "replay", opsfile, "--peer", p->name, "--heap", hb, stop ? "--stop" : NULL};
    for (size_t i = 0; i < sizeof tail / sizeof tail[0] && tail[i]; i++) argv[n++] = tail[i];
    argv[n] = NULL;
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  size_t len = 0;
  ssize_t got = 0;
  while (len < outlen - 1 && (got = read(fds[0], out + len, outlen - 1 - len)) > 0) len += (size_t)got;
  out[len] = '\0';
  char sink[4096];
  while (got > 0 && (got = read(fds[0], sink, sizeof sink)) > 0) {
  }
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  /* The line that replay prints, or nothing (a crash). */
  char *line = strstr(out, "{\"peer\"");
  if (!line || !WIFEXITED(status) || WEXITSTATUS(status) != 0) out[0] = '\0';
  else memmove(out, line, strlen(line) + 1);
  return 0;
}

typedef struct compare_frag {
  const peer *p;
  const char *opsfile;
  const ops *t;
  uint64_t outside; /* blocks placed beyond the region, over every replay */
} compare_frag;

/* A replay in a heap of heap bytes: in this process, or by a job. Its
 * result into *r (for a job: the fields its line gives). */
static int compare_replay_any(compare_frag *f, size_t heap, bool stop, replay_result *r) {
  if (!(f->p->flags & PEER_EXTERNAL)) {
    replay_options ro = {.heap = heap, .stop_at_failure = stop};
    int rc = replay_run(f->p, f->t, &ro, r);
    f->outside += r->outside;
    return rc;
  }
  char line[4096];
  memset(r, 0, sizeof *r);
  if (compare_job(f->p, f->opsfile, heap, stop, line, sizeof line) != 0) return -1;
  r->created = compare_field(line, "created") == 1;
  r->completed = compare_field(line, "completed") == 1;
  r->failures = r->completed ? 0 : 1;
  double v = compare_field(line, "fail_live");
  r->fail_live = v > 0 ? (uint64_t)v : 0;
  v = compare_field(line, "fail_size");
  r->fail_size = v > 0 ? (uint64_t)v : 0;
  r->has_space = compare_field(line, "has_space") == 1;
  v = compare_field(line, "region");
  r->region = v > 0 ? (size_t)v : heap;
  v = compare_field(line, "outside");
  r->outside = v > 0 ? (uint64_t)v : 0;
  f->outside += r->outside;
  if (!line[0]) {
    snprintf(r->error, sizeof r->error, "the job crashed or printed nothing");
    r->crashed = true;
  }
  return 0;
}

static int compare_probe(void *arg, size_t size, bool *completed) {
  replay_result r;
  if (compare_replay_any(arg, size, true, &r) != 0) return -1;
  *completed = r.created && r.completed;
  return 0;
}

static size_t compare_round_up(double x) { return ((size_t)x + COMPARE_PAGE - 1) / COMPARE_PAGE * COMPARE_PAGE; }

static int cmd_frag(int argc, char **argv) {
  compare_opts o;
  if (compare_parse(argc, argv, &o)) return 2;
  const peer *p = compare_peer_arg(&o);
  if (!p || !o.ops) return p ? compare_usage("%s", "frag needs OPS") : 2;
  if (!(p->flags & PEER_FIXED)) return compare_usage("%s takes no fixed region", p->name);
  ops t;
  char err[512];
  if (ops_load(&t, o.ops, err, sizeof err) != 0) {
    fprintf(stderr, "compare: %s\n", err);
    return 2;
  }
  if (!(p->flags & PEER_EXTERNAL) && compare_setup(p) != 0) return 1;
  double t0 = compare_now();
  compare_frag f = {p, o.ops, &t, 0};
  double peak = (double)t.h.peak_live;
  size_t max = compare_round_up(peak * o.max_ratio);
  if (p->max_heap && max > p->max_heap) max = p->max_heap;
  search_params sp = {.peak = t.h.peak_live, .page = COMPARE_PAGE, .resolution = compare_round_up(peak * o.resolution / 100),
                      .max = max, .scan = (unsigned)o.scan, .step = o.step};
  if (sp.resolution < COMPARE_PAGE) sp.resolution = COMPARE_PAGE;
  search_result sr;
  int rc = search_run(&sp, compare_probe, NULL, &f, &sr);
  if (rc == 0 && search_check(&sr) != 0) rc = -1;
  replay_result at11 = {0}, end = {0};
  size_t h11 = compare_round_up(peak * 1.1);
  if (rc == 0) rc = compare_replay_any(&f, h11, true, &at11);
  if (rc == 0 && sr.all_from) rc = compare_replay_any(&f, sr.all_from, false, &end);
  /* H is the memory the heap spans: the size given, unless the peer took
   * more or used less (a replay at the smallest completing size says). */
  size_t h_smallest = sr.smallest, h_all = sr.all_from ? end.region : 0;
  if (rc == 0 && sr.smallest && sr.smallest != sr.all_from) {
    replay_result r;
    rc = compare_replay_any(&f, sr.smallest, true, &r);
    h_smallest = r.region;
  } else if (sr.smallest) {
    h_smallest = h_all;
  }
  if (rc != 0) {
    fprintf(stderr, "compare: frag %s %s: a replay failed to run\n", p->name, o.ops);
    search_result_free(&sr);
    ops_unload(&t);
    return 1;
  }
  double m = peak > 0 ? peak : 1;
  printf("{\"peer\": ");
  compare_json_string(p->name);
  printf(", \"ops\": ");
  compare_json_string(o.ops);
  printf(", \"peak_live\": %llu, \"events\": %llu, \"max\": %zu, \"probes\": %zu, \"smallest\": %zu, \"all_from\": %zu, "
         "\"bisected\": %zu, \"failing\": %zu, \"h_smallest\": %zu, \"h_all_from\": %zu, \"hm_smallest\": %.4f, "
         "\"hm_all_from\": %.4f, "
         "\"heap_1_1\": %zu, \"created_1_1\": %s, \"crashed_1_1\": %s, \"completed_1_1\": %s, \"fail_live_1_1\": %llu, \"fail_size_1_1\": %llu, "
         "\"end_heap\": %zu, \"end_has_space\": %s, \"end_free\": %zu, \"end_largest\": %zu, \"outside\": %llu, "
         "\"seconds\": %.3f}\n",
         (unsigned long long)t.h.peak_live, (unsigned long long)t.h.events, max, sr.n, sr.smallest, sr.all_from,
         sr.bisected, sr.failing, h_smallest, h_all, (double)h_smallest / m, (double)h_all / m, h11,
         at11.created ? "true" : "false", at11.crashed ? "true" : "false",
         at11.created && at11.completed ? "true" : "false", (unsigned long long)at11.fail_live,
         (unsigned long long)at11.fail_size, sr.all_from, end.has_space ? "true" : "false", end.space.free_bytes,
         end.space.largest_free, (unsigned long long)f.outside, compare_now() - t0);
  search_result_free(&sr);
  ops_unload(&t);
  return 0;
}

/* ---- speed and creation ------------------------------------------------ */

static int cmd_speed(int argc, char **argv) {
  compare_opts o;
  if (compare_parse(argc, argv, &o)) return 2;
  const peer *p = compare_peer_arg(&o);
  const speed_test *t = o.test ? speed_find(o.test) : NULL;
  if (!p) return 2;
  if (!t) return compare_usage("--test: no test '%s'", o.test ? o.test : "");
  if (compare_setup(p) != 0) return 1;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  char all[32];
  snprintf(all, sizeof all, "1-%ld", cores > 0 ? cores : 1);
  const char *list = o.threads ? o.threads : all;
  int status = 0;
  /* "1,2,4" or "1-8". */
  unsigned long long lo, hi;
  char buf[128];
  snprintf(buf, sizeof buf, "%s", list);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    char *dash = strchr(tok, '-');
    if (dash) *dash = '\0';
    if (compare_uint(tok, 1024, &lo) || (dash ? compare_uint(dash + 1, 1024, &hi) : (hi = lo, 0)) || !lo || hi < lo)
      return compare_usage("bad --threads '%s'", list);
    for (unsigned long long n = lo; n <= hi; n++) {
      speed_result r;
      if (speed_run(p, t, (unsigned)n, o.seconds, o.scale, o.seed, &r) != 0) return 1;
      printf("{\"peer\": ");
      compare_json_string(p->name);
      printf(", \"test\": \"%s\", \"threads\": %llu, \"ok\": %s, \"error\": ", t->name, n, r.ok ? "true" : "false");
      compare_json_string(r.error);
      printf(", \"ops\": %llu, \"seconds\": %.6f, \"ops_per_s\": %.1f}\n", (unsigned long long)r.ops, r.seconds,
             r.ops_per_s);
      fflush(stdout);
      if (!r.ok && (p->flags & PEER_THREADS || n == 1)) status = 1;
    }
  }
  return status;
}

static int compare_dcmp(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

static int cmd_create(int argc, char **argv) {
  compare_opts o;
  if (compare_parse(argc, argv, &o)) return 2;
  const peer *p = compare_peer_arg(&o);
  if (!p) return 2;
  if (compare_setup(p) != 0) return 1;
  double times[2][1000], destroy[1000];
  for (unsigned long long k = 0; k < o.reps; k++)
    for (int pf = 0; pf < 2; pf++) {
      char err[256] = "";
      double t0 = compare_now();
      peer_heap *h = p->create(p, o.size, 1, pf, err, sizeof err);
      if (!h) {
        fprintf(stderr, "compare: create %s (%zu bytes%s): %s\n", p->name, o.size, pf ? ", prefault" : "", err);
        return 1;
      }
      if (p->thread_start) p->thread_start(h);
      void *b = p->malloc(h, 64);
      if (b) p->free(h, b);
      if (p->thread_stop) p->thread_stop(h);
      double t1 = compare_now();
      p->destroy(h);
      times[pf][k] = t1 - t0;
      if (!pf) destroy[k] = compare_now() - t1;
      if (!b) {
        fprintf(stderr, "compare: create %s: the first malloc(64) failed\n", p->name);
        return 1;
      }
    }
  qsort(times[0], o.reps, sizeof(double), compare_dcmp);
  qsort(times[1], o.reps, sizeof(double), compare_dcmp);
  qsort(destroy, o.reps, sizeof(double), compare_dcmp);
  printf("{\"peer\": ");
  compare_json_string(p->name);
  printf(", \"size\": %zu, \"reps\": %llu, \"create_s\": %.6f, \"create_prefault_s\": %.6f, \"destroy_s\": %.6f}\n",
         o.size, o.reps, times[0][o.reps / 2], times[1][o.reps / 2], destroy[o.reps / 2]);
  return 0;
}

static int cmd_peers(int argc, char **argv) {
  (void)argc, (void)argv;
  for (size_t i = 0; i < compare_n; i++) {
    const peer *p = &compare_peers[i];
    printf("{\"name\": ");
    compare_json_string(p->name);
    printf(", \"what\": ");
    compare_json_string(p->what);
    printf(", \"fixed\": %s, \"threads\": %s, \"space\": %s, \"external\": %s, \"max_heap\": %zu}\n",
           p->flags & PEER_FIXED ? "true" : "false", p->flags & PEER_THREADS ? "true" : "false",
           p->flags & PEER_SPACE ? "true" : "false", p->flags & PEER_EXTERNAL ? "true" : "false", p->max_heap);
  }
  return 0;
}

static int cmd_tests(int argc, char **argv) {
  compare_opts o;
  if (compare_parse(argc, argv, &o)) return 2;
  for (size_t i = 0; i < speed_test_count; i++) {
    printf("{\"name\": \"%s\", \"what\": ", speed_tests[i].name);
    compare_json_string(speed_tests[i].what);
    printf(", \"region\": %zu}\n", speed_region(&speed_tests[i], 1, o.scale));
  }
  return 0;
}

int compare_main(int argc, char **argv, const peer_family *families, size_t n_families,
                 const compare_command *extra, size_t n_extra) {
  ssize_t len = readlink("/proc/self/exe", compare_self, sizeof compare_self - 1);
  if (len <= 0) snprintf(compare_self, sizeof compare_self, "%s", argv[0]);
  for (size_t i = 0; i < n_families; i++) {
    size_t got = families[i](compare_peers + compare_n, COMPARE_MAX_PEERS - compare_n);
    compare_n += got < COMPARE_MAX_PEERS - compare_n ? got : COMPARE_MAX_PEERS - compare_n;
  }
  static const compare_command commands[] = {
      {"peers", cmd_peers}, {"tests", cmd_tests}, {"replay", cmd_replay}, {"frag", cmd_frag}, {"speed", cmd_speed}, {"create", cmd_create}};
  if (argc < 2) return compare_usage("%s", "a command is needed");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(argv[1], commands[i].name) == 0) return commands[i].main(argc, argv);
  for (size_t i = 0; i < n_extra; i++)
    if (strcmp(argv[1], extra[i].name) == 0) return extra[i].main(argc, argv);
  return compare_usage("unknown command '%s'", argv[1]);
}
