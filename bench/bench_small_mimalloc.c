/* Small-object throughput: mimalloc over one exclusive arena of memory the
 * runner maps itself (mi_manage_os_memory_ex), a heap per thread in that
 * arena (mi_heap_new_in_arena), mi_heap_malloc / mi_free. Every block is
 * checked to lie in the region. See small_bench.h for the workload. */
#include <mimalloc.h>

#define BK_NAME "mimalloc"
struct bk_thread {
  mi_heap_t *heap;
};
/* The same backend drives the pattern runners (bench_pattern_*). */
#ifdef BK_PATTERNS
#include "pattern_bench.h"
#else
#include "small_bench.h"
#endif

/* mimalloc 2.x arenas are made of 32 MiB segments, which must be aligned to
 * their size: a pointer finds its segment by masking its low bits. */
#define MI_REGION_ALIGN ((size_t)32 << 20)

static char *g_region;
static size_t g_region_size;
static mi_arena_id_t g_arena;

static int bk_global_init(const sb_config *cfg) {
  g_region_size = cfg->region_mib << 20;
  g_region_size = (g_region_size + MI_REGION_ALIGN - 1) & ~(MI_REGION_ALIGN - 1);
  size_t map = g_region_size + MI_REGION_ALIGN;
  char *raw = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
  if (raw == MAP_FAILED) {
    perror("mimalloc: mmap region");
    return -1;
  }
  uintptr_t a = ((uintptr_t)raw + MI_REGION_ALIGN - 1) & ~(uintptr_t)(MI_REGION_ALIGN - 1);
  g_region = (char *)a;
  /* Give back the slack on both sides. */
  if (g_region > raw)
    munmap(raw, (size_t)(g_region - raw));
  char *end = g_region + g_region_size;
  if (raw + map > end)
    munmap(end, (size_t)(raw + map - end));
  /* committed (readable and writable now), not large pages, zero, any NUMA
   * node, exclusive: only heaps made for this arena allocate from it. */
  if (!mi_manage_os_memory_ex(g_region, g_region_size, true, false, true, -1, true, &g_arena)) {
    fprintf(stderr, "mimalloc: mi_manage_os_memory_ex(%p, %zu) failed\n", (void *)g_region,
            g_region_size);
    return -1;
  }
  if (!cfg->quiet) {
    int v = mi_version();
    printf("mimalloc %d.%d.%d: exclusive arena %d over [%p, %p), %zu MiB\n", v / 100,
           (v / 10) % 10, v % 10, (int)g_arena, (void *)g_region, (void *)end,
           g_region_size >> 20);
  }
  return 0;
}

static int bk_thread_init(bk_thread *t, unsigned index, char *msg, size_t msglen) {
  t->heap = mi_heap_new_in_arena(g_arena);
  if (t->heap == NULL) {
    snprintf(msg, msglen, "thread %u: mi_heap_new_in_arena(%d) returned NULL", index,
             (int)g_arena);
    return -1;
  }
  return 0;
}

static void *bk_alloc(bk_thread *t, size_t size) { return mi_heap_malloc(t->heap, size); }

static void bk_free(bk_thread *t, void *p) {
  (void)t;
  mi_free(p);
}

static bool bk_owns(bk_thread *t, const void *p) {
  (void)t;
  return (const char *)p >= g_region && (const char *)p < g_region + g_region_size;
}

static void bk_thread_fini(bk_thread *t) { mi_heap_delete(t->heap); }

static int bk_global_fini(const sb_config *cfg) {
  (void)cfg;
  return 0; /* an arena cannot be unregistered; the process ends anyway */
}
