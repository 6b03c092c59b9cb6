/* Small-object throughput: jemalloc as the process's malloc (the runner is
 * linked with -ljemalloc), plain malloc / free. The runner refuses to run
 * unless jemalloc really serves malloc. See small_bench.h for the workload. */
#include <dlfcn.h>
#include <jemalloc/jemalloc.h>

#define BK_NAME "jemalloc"
struct bk_thread {
  char unused;
};
/* The same backend drives the pattern runners (bench_pattern_*). */
#ifdef BK_PATTERNS
#include "pattern_bench.h"
#else
#include "small_bench.h"
#endif

static int bk_global_init(const sb_config *cfg) {
  const char *version = NULL;
  size_t len = sizeof version;
  if (mallctl("version", &version, &len, NULL, 0) != 0 || version == NULL) {
    fprintf(stderr, "jemalloc: mallctl(\"version\") failed: jemalloc is not active\n");
    return -1;
  }
  /* Which library does the dynamic linker bind malloc to? */
  const char *where = "?";
  void *sym = dlsym(RTLD_DEFAULT, "malloc");
  Dl_info info;
  if (sym != NULL && dladdr(sym, &info) != 0 && info.dli_fname != NULL)
    where = info.dli_fname;
  /* And does a malloc show up in jemalloc's per-thread counter? */
  uint64_t before = 0, after = 0;
  size_t ulen = sizeof before;
  int have_counter = mallctl("thread.allocated", &before, &ulen, NULL, 0) == 0;
  void *volatile probe = malloc(4000);
  if (have_counter)
    mallctl("thread.allocated", &after, &ulen, NULL, 0);
  free(probe);
  bool is_je = have_counter ? after - before >= 4000 : strstr(where, "jemalloc") != NULL;
  if (!is_je) {
    fprintf(stderr, "jemalloc: malloc is not jemalloc's (bound to %s)\n", where);
    return -1;
  }
  if (!cfg->quiet)
    printf("jemalloc %s serves malloc (from %s)\n", version, where);
  return 0;
}

static int bk_thread_init(bk_thread *t, unsigned index, char *msg, size_t msglen) {
  (void)t;
  (void)index;
  (void)msg;
  (void)msglen;
  return 0;
}

static void *bk_alloc(bk_thread *t, size_t size) {
  (void)t;
  return malloc(size);
}

static void bk_free(bk_thread *t, void *p) {
  (void)t;
  free(p);
}

static bool bk_owns(bk_thread *t, const void *p) {
  (void)t;
  (void)p;
  return true; /* any memory of the process: nothing to check */
}

static void bk_thread_fini(bk_thread *t) { (void)t; }

static int bk_global_fini(const sb_config *cfg) {
  (void)cfg;
  return 0;
}
