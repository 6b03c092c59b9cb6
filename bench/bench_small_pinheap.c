/* Small-object throughput: pinheap, one FIXED heap shared by every thread,
 * pinheap_malloc / pinheap_free. See small_bench.h for the workload. Takes
 * PINHEAP_DEBUG (and the other PINHEAP_* but the size) from the
 * environment; PINHEAP_MODE=simple or dynamic runs such a heap instead. */
#include "pinheap.h"

#define BK_NAME "pinheap"
struct bk_thread {
  pinheap *heap;
};
/* The same backend drives the pattern runners (bench_pattern_*). */
#ifdef BK_PATTERNS
#include "pattern_bench.h"
#else
#include "small_bench.h"
#endif

static pinheap *g_heap;

static int bk_global_init(const sb_config *cfg) {
  pinheap_options o;
  pinheap_options_init(&o);
  /* PINHEAP_* from the environment (PINHEAP_DEBUG, for run_small.sh -d),
   * but the size: a FIXED heap of -m MiB unless PINHEAP_MODE says
   * otherwise. */
  if (pinheap_options_from_env(&o) != 0) {
    fprintf(stderr, "pinheap: %s\n", pinheap_last_error());
    return -1;
  }
  if (!getenv("PINHEAP_MODE")) o.mode = PINHEAP_FIXED;
  o.size = o.mode == PINHEAP_FIXED ? cfg->region_mib << 20 : 0;
  g_heap = pinheap_create(&o);
  if (g_heap == NULL) {
    fprintf(stderr, "pinheap: pinheap_create(FIXED, %zu MiB) failed: %s (%s)\n", cfg->region_mib,
            strerror(errno), pinheap_last_error());
    return -1;
  }
  if (!cfg->quiet)
    printf("pinheap %d.%d.%d: %s heap, %zu MiB region, debug flags %#x\n", PINHEAP_VERSION_MAJOR,
           PINHEAP_VERSION_MINOR, PINHEAP_VERSION_PATCH,
           o.mode == PINHEAP_FIXED ? "FIXED" : o.mode == PINHEAP_DYNAMIC ? "DYNAMIC" : "SIMPLE",
           o.mode == PINHEAP_FIXED ? cfg->region_mib : 0, o.debug);
  return 0;
}

static int bk_thread_init(bk_thread *t, unsigned index, char *msg, size_t msglen) {
  (void)index;
  (void)msg;
  (void)msglen;
  t->heap = g_heap;
  return 0;
}

static void *bk_alloc(bk_thread *t, size_t size) { return pinheap_malloc(t->heap, size); }

static void bk_free(bk_thread *t, void *p) { pinheap_free(t->heap, p); }

static bool bk_owns(bk_thread *t, const void *p) { return pinheap_owns(t->heap, p); }

static void bk_thread_fini(bk_thread *t) { (void)t; }

static int bk_global_fini(const sb_config *cfg) {
  pinheap_stats st;
  pinheap_trim(g_heap);
  if (pinheap_get_stats(g_heap, &st) != 0) {
    fprintf(stderr, "pinheap: pinheap_get_stats failed: %s\n", pinheap_last_error());
    pinheap_destroy(g_heap);
    return -1;
  }
  /* Every block was freed and the caches trimmed: the heap should count
   * nothing as allocated. Reported, not fatal: it is a statistic. */
  if (st.allocated != 0 || st.large_blocks != 0)
    fprintf(stderr,
            "pinheap: note: stats show %zu bytes allocated, %zu large blocks after every "
            "block was freed and the heap trimmed\n",
            st.allocated, st.large_blocks);
  if (!cfg->quiet)
    printf("pinheap stats at end: capacity=%zu in_use=%zu peak_in_use=%zu allocated=%zu "
           "free_extents=%zu peak_capacity=%zu\n",
           st.capacity, st.in_use, st.peak_in_use, st.allocated, st.free_extents, st.peak_capacity);
  pinheap_destroy(g_heap);
  return 0;
}
