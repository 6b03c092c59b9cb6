/*
 * `pinheap demo`: runs a few allocation scenarios in FIXED heaps, once under
 * PINHEAP_POLICY_BUMP and once under the default policy
 * (PINHEAP_POLICY_TWO_ENDED), and prints a table of outcomes and of the free
 * space left after each run.
 *
 * Blocks are only touched at their first and last byte: the region is
 * reserved with MAP_NORESERVE, so the untouched pages cost no real memory.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "pinheap.h"

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)

#define DEFAULT_SEED 12345ULL

/* ------------------------------------------------------------------------ */
/* Deterministic random numbers: xorshift64, seeded through splitmix64 so that
 * small seeds still give well-mixed states. */

typedef struct rng {
  uint64_t state;
} rng;

static void rng_seed(rng *r, uint64_t seed) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  r->state = z != 0 ? z : 0x2545f4914f6cdd1dULL;
}

static uint64_t rng_next(rng *r) {
  uint64_t x = r->state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  r->state = x;
  return x;
}

/* A number in [0, n); n > 0. The modulo bias is negligible for our n. */
static uint64_t rng_below(rng *r, uint64_t n) { return rng_next(r) % n; }

/* ------------------------------------------------------------------------ */
/* Results */

typedef struct result {
  const char *scenario;
  pinheap_policy policy;
  bool ok;
  char outcome[128];
  char error[512]; /* pinheap_last_error() at the first failure */
  bool have_stats;
  pinheap_stats stats;
  char detail[256]; /* extra line for the churn scenario; "" if none */
} result;

static const char *policy_name(pinheap_policy p) {
  switch (p) {
  case PINHEAP_POLICY_BUMP:
    return "bump";
  case PINHEAP_POLICY_TWO_ENDED:
    return "two-ended*";
  }
  return "?";
}

static void format_size(char *buf, size_t len, size_t size) {
  if (size >= MIB && size % MIB == 0)
    snprintf(buf, len, "%zu MiB", size / MIB);
  else if (size >= MIB)
    snprintf(buf, len, "%.1f MiB", (double)size / (double)MIB);
  else if (size >= KIB && size % KIB == 0)
    snprintf(buf, len, "%zu KiB", size / KIB);
  else
    snprintf(buf, len, "%zu B", size);
}

static void copy_error(result *res) {
  const char *msg = pinheap_last_error();
  snprintf(res->error, sizeof res->error, "%s", msg != NULL && msg[0] != '\0' ? msg : "(no message)");
}

static void touch(void *p, size_t size) {
  if (p == NULL || size == 0)
    return;
  volatile unsigned char *b = p;
  b[0] = 0xa5;
  b[size - 1] = 0x5a;
}

static pinheap *create_heap(size_t size, pinheap_policy policy, result *res) {
  pinheap_options opts;
  pinheap_options_init(&opts);
  opts.mode = PINHEAP_FIXED;
  opts.size = size;
  opts.policy = policy;
  pinheap *heap = pinheap_create(&opts);
  if (heap == NULL) {
    int err = errno;
    char sz[32];
    format_size(sz, sizeof sz, size);
    res->ok = false;
    snprintf(res->outcome, sizeof res->outcome, "FAILED: pinheap_create(%s): %s", sz, strerror(err));
    copy_error(res);
  }
  return heap;
}

/* Trims the heap and reads its stats into res. */
static void take_stats(pinheap *heap, result *res) {
  pinheap_trim(heap);
  res->have_stats = pinheap_get_stats(heap, &res->stats) == 0;
}

/* ------------------------------------------------------------------------ */
/* Scripted scenarios 1-3 */

typedef enum op_kind { OP_MALLOC, OP_FREE } op_kind;

typedef struct step {
  op_kind kind;
  int slot;
  size_t size; /* OP_MALLOC only */
} step;

#define MAX_SLOTS 4

typedef struct script {
  const char *name;
  size_t heap_size;
  const step *steps;
  size_t n_steps;
} script;

static const step steps_700_1000[] = {
    {OP_MALLOC, 0, 700 * MIB},
    {OP_FREE, 0, 0},
    {OP_MALLOC, 1, 1000 * MIB},
};

static const step steps_1000_2x500[] = {
    {OP_MALLOC, 0, 1000 * MIB},
    {OP_FREE, 0, 0},
    {OP_MALLOC, 1, 500 * MIB},
    {OP_MALLOC, 2, 500 * MIB},
};

static const step steps_tiny_in_hole[] = {
    {OP_MALLOC, 0, 500 * MIB}, {OP_MALLOC, 1, 40}, {OP_FREE, 0, 0},
    {OP_MALLOC, 2, 40},        {OP_MALLOC, 3, 500 * MIB},
};

#define SCRIPT(name, heap, steps) {name, heap, steps, sizeof steps / sizeof steps[0]}

static const script scripts[] = {
    SCRIPT("700 then 1000", 1200 * MIB, steps_700_1000),
    SCRIPT("1000 then 2x500", 1050 * MIB, steps_1000_2x500),
    SCRIPT("tiny in hole", 650 * MIB, steps_tiny_in_hole),
};

static void run_script(const script *sc, pinheap_policy policy, result *res) {
  res->scenario = sc->name;
  res->policy = policy;
  res->ok = true;
  snprintf(res->outcome, sizeof res->outcome, "ok");

  pinheap *heap = create_heap(sc->heap_size, policy, res);
  if (heap == NULL)
    return;

  void *slots[MAX_SLOTS] = {0};
  for (size_t i = 0; i < sc->n_steps; i++) {
    const step *st = &sc->steps[i];
    if (st->kind == OP_FREE) {
      pinheap_free(heap, slots[st->slot]);
      slots[st->slot] = NULL;
      continue;
    }
    void *p = pinheap_malloc(heap, st->size);
    if (p == NULL) {
      char sz[32];
      format_size(sz, sizeof sz, st->size);
      res->ok = false;
      snprintf(res->outcome, sizeof res->outcome, "FAILED at step %zu: malloc(%s)", i + 1, sz);
      copy_error(res);
      break;
    }
    touch(p, st->size);
    slots[st->slot] = p;
  }

  for (int s = 0; s < MAX_SLOTS; s++)
    pinheap_free(heap, slots[s]);
  take_stats(heap, res);
  pinheap_destroy(heap);
}

/* ------------------------------------------------------------------------ */
/* Scenario 4: array churn with long-lived small objects */

#define CHURN_NAME "array churn"
#define CHURN_HEAP (1024 * MIB)
#define CHURN_ARRAY_MIN (16 * MIB)
#define CHURN_ARRAY_MAX (300 * MIB)
#define CHURN_LIVE_PCT 75 /* live arrays stay under this share of the heap */
#define CHURN_MAX_ARRAYS 3 /* arrays per iteration, at most */
#define CHURN_ITERS_FULL 2000u
#define CHURN_ITERS_QUICK 200u
#define FOREVER UINT_MAX

typedef struct array_blk {
  void *p;
  size_t size;
} array_blk;

typedef struct small_obj {
  void *p;
  unsigned expires; /* iteration at which it is freed; FOREVER: at the end */
} small_obj;

typedef struct small_vec {
  small_obj *v;
  size_t n, cap;
} small_vec;

static bool small_push(small_vec *sv, void *p, unsigned expires) {
  if (sv->n == sv->cap) {
    size_t cap = sv->cap != 0 ? sv->cap * 2 : 1024;
    small_obj *v = realloc(sv->v, cap * sizeof *v);
    if (v == NULL)
      return false;
    sv->v = v;
    sv->cap = cap;
  }
  sv->v[sv->n].p = p;
  sv->v[sv->n].expires = expires;
  sv->n++;
  return true;
}

/* Frees the objects of sv that expire at or before iter (all when iter is
 * FOREVER), keeping the order of the others. */
static void small_expire(pinheap *heap, small_vec *sv, unsigned iter) {
  size_t kept = 0;
  for (size_t i = 0; i < sv->n; i++) {
    if (sv->v[i].expires <= iter)
      pinheap_free(heap, sv->v[i].p);
    else
      sv->v[kept++] = sv->v[i];
  }
  sv->n = kept;
}

typedef struct churn_counts {
  unsigned long arrays_req, arrays_ok, arrays_failed;
  unsigned long small_req, small_failed;
  unsigned long requests; /* all allocation requests, the "step" */
  size_t long_kept, long_kept_bytes;
} churn_counts;

static void free_random_array(pinheap *heap, rng *r, array_blk *arrays, size_t *n_arrays,
                              size_t *live) {
  size_t k = (size_t)rng_below(r, *n_arrays);
  pinheap_free(heap, arrays[k].p);
  *live -= arrays[k].size;
  arrays[k] = arrays[--*n_arrays];
}

static void churn_fail(result *res, const churn_counts *c, unsigned iter, size_t size) {
  if (!res->ok)
    return; /* keep the first failure */
  char sz[32];
  format_size(sz, sizeof sz, size);
  res->ok = false;
  snprintf(res->outcome, sizeof res->outcome, "FAILED at step %lu (iteration %u): malloc(%s)",
           c->requests, iter + 1, sz);
  copy_error(res);
}

/* A small size in [16 B, 4 KiB], roughly log-uniform. */
static size_t small_size(rng *r) {
  size_t lo = (size_t)1 << (4 + rng_below(r, 8)); /* 16 .. 2048 */
  return lo + (size_t)rng_below(r, lo + 1);        /* lo .. 2 lo */
}

typedef struct churn_state {
  pinheap *heap;
  rng r;
  unsigned iters;
  small_vec shorts, longs;
  churn_counts c;
  bool bookkeeping_failed;
  result *res;
} churn_state;

/* n small objects: most die within a few iterations; a quarter are
 * long-lived, half of those kept to the very end, the others freed hundreds
 * of iterations later. */
static void churn_smalls(churn_state *st, unsigned it, unsigned n) {
  for (unsigned s = 0; s < n && !st->bookkeeping_failed; s++) {
    size_t size = small_size(&st->r);
    st->c.requests++;
    st->c.small_req++;
    void *p = pinheap_malloc(st->heap, size);
    if (p == NULL) {
      st->c.small_failed++;
      churn_fail(st->res, &st->c, it, size);
      continue;
    }
    touch(p, size);
    bool ok;
    if (rng_below(&st->r, 4) == 0) {
      unsigned expires = FOREVER;
      if (rng_below(&st->r, 2) == 0)
        expires = it + st->iters / 4 + (unsigned)rng_below(&st->r, st->iters / 2 + 1);
      ok = small_push(&st->longs, p, expires);
    } else {
      ok = small_push(&st->shorts, p, it + 1 + (unsigned)rng_below(&st->r, 4));
    }
    if (!ok) {
      pinheap_free(st->heap, p);
      st->bookkeeping_failed = true;
    }
  }
}

/*
 * Each iteration is one "step" of an array runtime: a few arrays of random
 * sizes, their total under CHURN_LIVE_PCT of the heap, are allocated with
 * small objects in between, then all freed in random order. Small objects
 * outlive the step: the short-lived ones by a few iterations, the long-lived
 * ones by hundreds or to the end. Arrays do not outlive their iteration, so
 * that a policy that keeps small extents out of the way of large ones can
 * always serve them: a failure is the policy's doing, not bad luck of the
 * seed (with arrays kept across iterations, even an ideal best fit fails a
 * fraction of a percent of such requests).
 */
static void run_churn(pinheap_policy policy, uint64_t seed, unsigned iters, result *res) {
  res->scenario = CHURN_NAME;
  res->policy = policy;
  res->ok = true;
  snprintf(res->outcome, sizeof res->outcome, "ok");

  churn_state st;
  memset(&st, 0, sizeof st);
  st.heap = create_heap(CHURN_HEAP, policy, res);
  if (st.heap == NULL)
    return;
  rng_seed(&st.r, seed);
  st.iters = iters;
  st.res = res;

  const size_t limit = CHURN_HEAP / 100 * CHURN_LIVE_PCT;
  array_blk arrays[CHURN_MAX_ARRAYS];
  size_t n_arrays = 0, live = 0;

  for (unsigned it = 0; it < iters && !st.bookkeeping_failed; it++) {
    unsigned n_new = 1 + (unsigned)rng_below(&st.r, CHURN_MAX_ARRAYS);
    for (unsigned a = 0; a < n_new; a++) {
      size_t room = limit - live;
      if (room < CHURN_ARRAY_MIN)
        break;
      size_t max = room < CHURN_ARRAY_MAX ? room : CHURN_ARRAY_MAX;
      size_t size = CHURN_ARRAY_MIN + (size_t)rng_below(&st.r, max - CHURN_ARRAY_MIN + 1);
      st.c.requests++;
      st.c.arrays_req++;
      void *p = pinheap_malloc(st.heap, size);
      if (p == NULL) {
        st.c.arrays_failed++;
        churn_fail(res, &st.c, it, size);
      } else {
        st.c.arrays_ok++;
        touch(p, size);
        arrays[n_arrays].p = p;
        arrays[n_arrays].size = size;
        n_arrays++;
        live += size;
      }
      churn_smalls(&st, it, 2 + (unsigned)rng_below(&st.r, 11));
    }

    while (n_arrays > 0)
      free_random_array(st.heap, &st.r, arrays, &n_arrays, &live);
    small_expire(st.heap, &st.shorts, it);
    small_expire(st.heap, &st.longs, it);
  }

  if (st.bookkeeping_failed) {
    res->ok = false;
    snprintf(res->outcome, sizeof res->outcome, "FAILED: out of memory for bookkeeping");
    snprintf(res->error, sizeof res->error, "the tool's own malloc failed");
  }

  /* Free everything but the long-lived small objects, then measure. */
  while (n_arrays > 0)
    free_random_array(st.heap, &st.r, arrays, &n_arrays, &live);
  small_expire(st.heap, &st.shorts, FOREVER);
  st.c.long_kept = st.longs.n;
  for (size_t i = 0; i < st.longs.n; i++)
    st.c.long_kept_bytes += pinheap_usable_size(st.heap, st.longs.v[i].p);
  take_stats(st.heap, res);

  small_expire(st.heap, &st.longs, FOREVER);
  free(st.shorts.v);
  free(st.longs.v);
  pinheap_destroy(st.heap);

  const churn_counts *c = &st.c;
  snprintf(res->detail, sizeof res->detail,
           "arrays %lu/%lu ok (%lu failed), small objects %lu/%lu ok, "
           "%zu long-lived kept (%.1f KiB)",
           c->arrays_ok, c->arrays_req, c->arrays_failed, c->small_req - c->small_failed,
           c->small_req, c->long_kept, (double)c->long_kept_bytes / (double)KIB);
}

/* ------------------------------------------------------------------------ */
/* Table */

#define N_SCENARIOS (sizeof scripts / sizeof scripts[0] + 1)
#define N_POLICIES 2
#define N_RESULTS (N_SCENARIOS * N_POLICIES)

static int max_int(int a, int b) { return a > b ? a : b; }

static void print_table(const result *rows, size_t n) {
  const char *h_scen = "scenario", *h_pol = "policy", *h_out = "outcome";
  const char *h_free = "free MiB", *h_large = "largest free MiB", *h_ext = "free extents";
  int w_scen = (int)strlen(h_scen), w_pol = (int)strlen(h_pol), w_out = (int)strlen(h_out);
  int w_free = (int)strlen(h_free), w_large = (int)strlen(h_large), w_ext = (int)strlen(h_ext);
  for (size_t i = 0; i < n; i++) {
    w_scen = max_int(w_scen, (int)strlen(rows[i].scenario));
    w_pol = max_int(w_pol, (int)strlen(policy_name(rows[i].policy)));
    w_out = max_int(w_out, (int)strlen(rows[i].outcome));
  }

  printf("%-*s  %-*s  %-*s  %*s  %*s  %*s\n", w_scen, h_scen, w_pol, h_pol, w_out, h_out, w_free,
         h_free, w_large, h_large, w_ext, h_ext);
  int total = w_scen + w_pol + w_out + w_free + w_large + w_ext + 5 * 2;
  for (int i = 0; i < total; i++)
    putchar('-');
  putchar('\n');

  for (size_t i = 0; i < n; i++) {
    const result *r = &rows[i];
    printf("%-*s  %-*s  %-*s  ", w_scen, r->scenario, w_pol, policy_name(r->policy), w_out,
           r->outcome);
    if (r->have_stats)
      printf("%*.1f  %*.1f  %*zu\n", w_free, (double)r->stats.free_bytes / (double)MIB, w_large,
             (double)r->stats.largest_free / (double)MIB, w_ext, r->stats.free_extents);
    else
      printf("%*s  %*s  %*s\n", w_free, "-", w_large, "-", w_ext, "-");
    if (i + 1 < n && strcmp(rows[i + 1].scenario, r->scenario) != 0)
      putchar('\n');
  }
}

static void print_legend(void) {
  printf("\n"
         "legend:\n"
         "  policy      bump: the pointer only moves up and never takes memory back;\n"
         "              two-ended*: the default, best fit, small extents from the top,\n"
         "              large ones from the bottom, free extents coalesced at once.\n"
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
          "usage: pinheap demo [--quick] [--seed N]\n"
          "\n"
          "Runs allocation scenarios in FIXED heaps under the bump policy and under\n"
          "the default two-ended policy, and prints a table of the outcomes and of\n"
          "the free space left:\n"
          "  1. 700 then 1000     heap 1200 MiB: malloc 700 MiB, free, malloc 1000 MiB\n"
          "  2. 1000 then 2x500   heap 1050 MiB: malloc 1000 MiB, free, 2x malloc 500 MiB\n"
          "  3. tiny in hole      heap 650 MiB: malloc 500 MiB, malloc 40 B, free the\n"
          "                       500 MiB, malloc 40 B, malloc 500 MiB\n"
          "  4. array churn       heap 1024 MiB: each iteration allocates 1-3 arrays of\n"
          "                       16-300 MiB (under 75%% together) and frees them in\n"
          "                       random order; small objects of 16 B-4 KiB allocated\n"
          "                       in between outlive it, a quarter of them long-lived\n"
          "\n"
          "options:\n"
          "  --quick     run the array churn at a smaller scale (%u instead of %u iterations)\n"
          "  --seed N    seed of the array churn (default %llu)\n"
          "  -h, --help  print this text\n"
          "\n"
          "Exit status: 0 when the default policy completes every scenario, 1 when it\n"
          "does not, 2 on a usage error.\n",
          CHURN_ITERS_QUICK, CHURN_ITERS_FULL, (unsigned long long)DEFAULT_SEED);
}

static bool parse_seed(const char *s, uint64_t *out) {
  if (s == NULL || *s == '\0' || *s == '-')
    return false;
  errno = 0;
  char *end = NULL;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno != 0 || end == s || *end != '\0')
    return false;
  *out = (uint64_t)v;
  return true;
}

int demo_main(int argc, char **argv) {
  bool quick = false;
  uint64_t seed = DEFAULT_SEED;

  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--quick") == 0) {
      quick = true;
    } else if (strcmp(arg, "--seed") == 0 || strncmp(arg, "--seed=", 7) == 0) {
      const char *val = arg[6] == '=' ? arg + 7 : (i + 1 < argc ? argv[++i] : NULL);
      if (!parse_seed(val, &seed)) {
        fprintf(stderr, "pinheap demo: --seed needs a non-negative integer\n\n");
        demo_usage(stderr);
        return 2;
      }
    } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      demo_usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "pinheap demo: unknown argument '%s'\n\n", arg);
      demo_usage(stderr);
      return 2;
    }
  }

  const unsigned iters = quick ? CHURN_ITERS_QUICK : CHURN_ITERS_FULL;
  static const pinheap_policy policies[N_POLICIES] = {PINHEAP_POLICY_BUMP,
                                                      PINHEAP_POLICY_TWO_ENDED};

  printf("pinheap demo: FIXED heaps, policies bump and two-ended (default)\n");
  printf("array churn: seed %llu, %u iterations%s\n\n", (unsigned long long)seed, iters,
         quick ? " (--quick)" : "");
  fflush(stdout);

  result rows[N_RESULTS];
  memset(rows, 0, sizeof rows);
  size_t n = 0;
  for (size_t s = 0; s < N_SCENARIOS; s++) {
    for (size_t p = 0; p < N_POLICIES; p++) {
      result *res = &rows[n++];
      if (s < N_SCENARIOS - 1)
        run_script(&scripts[s], policies[p], res);
      else
        run_churn(policies[p], seed, iters, res);
    }
  }

  print_table(rows, n);

  bool any_detail = false;
  for (size_t i = 0; i < n; i++) {
    if (rows[i].detail[0] == '\0')
      continue;
    if (!any_detail)
      printf("\n%s (seed %llu):\n", CHURN_NAME, (unsigned long long)seed);
    any_detail = true;
    printf("  %-10s  %s\n", policy_name(rows[i].policy), rows[i].detail);
  }

  bool any_failure = false;
  for (size_t i = 0; i < n; i++) {
    if (rows[i].ok)
      continue;
    if (!any_failure)
      printf("\nfailures (pinheap_last_error at the first failed request):\n");
    any_failure = true;
    printf("  %s / %s: %s\n", rows[i].scenario, policy_name(rows[i].policy), rows[i].error);
  }

  print_legend();

  bool default_ok = true;
  for (size_t i = 0; i < n; i++)
    if (rows[i].policy == PINHEAP_POLICY_TWO_ENDED && !rows[i].ok)
      default_ok = false;
  printf("\nresult: the default policy %s\n",
         default_ok ? "completed every scenario" : "FAILED at least one scenario");
  return default_ok ? 0 : 1;
}
