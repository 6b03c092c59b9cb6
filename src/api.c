#include "api.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "error.h"
#include "options.h"
#include "util.h"
#include "walk.h"

PH_EXPORT void pinheap_options_init(pinheap_options *opts) {
  if (opts) options_init(opts);
}

PH_EXPORT int pinheap_options_check(const pinheap_options *opts) { return options_check(opts); }

PH_EXPORT pinheap *pinheap_create(const pinheap_options *opts) {
  if (options_check(opts) != 0) return NULL;
  /* From mmap, not malloc: the heap may be what serves this process's
   * malloc (libpinheap-preload). */
  pinheap *h = mmap(NULL, sizeof *h, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (h == MAP_FAILED) {
    error_set(ENOMEM, "pinheap_create: no memory for the heap's record");
    return NULL;
  }
  pinheap_options o = *opts;
  if (opts->oom_report) {
    if (!(h->report = report_open(opts))) goto fail;
    o.oom_report = report_path(h->report);
  }
  if (heap_open(&h->core, &o) != 0) goto fail;
  if (h->report) heap_on_enomem(&h->core, report_enomem, h->report);
  unsigned flags = debug_flags(o.debug);
  if (flags) debug_open(&h->dbg, &h->core, flags);
  if (fork_add(&h->link, &h->core) == 0) return h;
  if (flags) debug_close(&h->dbg);
  heap_close(&h->core);
fail:;
  int err = errno;
  report_close(h->report);
  munmap(h, sizeof *h);
  errno = err;
  return NULL;
}

/* Reports blocks still live at destroy: the caches emptied first, so that
 * only what callers hold counts. */
static void api_report_live(pinheap *h) {
  heap_reclaim(&h->core);
  pinheap_stats s;
  heap_get_stats(&h->core, &s);
  if (s.allocated == 0) return;
  error_report("pinheap_destroy(%p): %zu bytes still allocated, %zu of them in %zu large block(s)", (void *)h,
               s.allocated, s.large_allocated, s.large_blocks);
  if (h->dbg.flags & PINHEAP_DEBUG_ALL) debug_report_live(&h->dbg);
}

PH_EXPORT void pinheap_destroy(pinheap *h) {
  if (!h) return;
  fork_remove(&h->link);
  api_report_live(h);
  if (h->dbg.flags) debug_close(&h->dbg);
  heap_close(&h->core);
  report_close(h->report);
  munmap(h, sizeof *h);
}

PH_EXPORT int pinheap_check(pinheap *h) {
  if (!h) {
    error_set(EINVAL, "pinheap_check: heap is NULL");
    return -1;
  }
  /* The modules whose checks take outer locks (the list's, the thread
   * registry's) first, each outside any section (fork.h). */
  int broken = fork_check(&h->link);
  if (h->dbg.flags) broken += debug_check_cached(&h->dbg) + debug_check_blocks(&h->dbg);
  return broken + heap_check(&h->core);
}

static bool api_bad_handle(const pinheap *h, const char *what) {
  if (h) return false;
  error_set(EINVAL, "%s: heap is NULL", what);
  return true;
}

PH_EXPORT void *pinheap_malloc(pinheap *h, size_t size) {
  if (api_bad_handle(h, "pinheap_malloc")) return NULL;
  if (PH_UNLIKELY(h->dbg.flags)) return debug_alloc(&h->dbg, size, 0, false, "pinheap_malloc");
  return heap_malloc(&h->core, size, "pinheap_malloc");
}

PH_EXPORT void *pinheap_calloc(pinheap *h, size_t count, size_t size) {
  if (api_bad_handle(h, "pinheap_calloc")) return NULL;
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    error_set(ENOMEM, "pinheap_calloc(%zu, %zu): impossible size: the product overflows", count, size);
    return NULL;
  }
  if (PH_UNLIKELY(h->dbg.flags)) return debug_alloc(&h->dbg, total, 0, true, "pinheap_calloc");
  return heap_alloc(&h->core, total, 0, true, "pinheap_calloc");
}

PH_EXPORT void *pinheap_aligned_alloc(pinheap *h, size_t alignment, size_t size) {
  if (api_bad_handle(h, "pinheap_aligned_alloc")) return NULL;
  if (!util_is_pow2(alignment)) {
    error_set(EINVAL, "pinheap_aligned_alloc(%zu, %zu): alignment is not a power of two", alignment, size);
    return NULL;
  }
  if (PH_UNLIKELY(h->dbg.flags)) return debug_alloc(&h->dbg, size, alignment, false, "pinheap_aligned_alloc");
  return heap_alloc(&h->core, size, alignment, false, "pinheap_aligned_alloc");
}

PH_EXPORT void pinheap_free(pinheap *h, void *p) {
  if (!p) return;
  if (PH_UNLIKELY(!h)) error_fatal("pinheap_free(%p): heap is NULL", p);
  if (PH_UNLIKELY(h->dbg.flags)) {
    debug_free(&h->dbg, p);
    return;
  }
  heap_free(&h->core, p);
}

PH_EXPORT size_t pinheap_usable_size(pinheap *h, const void *p) {
  if (!p || !h) return 0;
  if (PH_UNLIKELY(h->dbg.flags)) return debug_usable_size(&h->dbg, p);
  return heap_usable_size(&h->core, p);
}

PH_EXPORT void *pinheap_realloc(pinheap *h, void *p, size_t size) {
  if (api_bad_handle(h, "pinheap_realloc")) return NULL;
  if (!p) return pinheap_malloc(h, size);
  if (size == 0) {
    pinheap_free(h, p);
    return NULL;
  }
  if (PH_UNLIKELY(h->dbg.flags)) return debug_realloc(&h->dbg, p, size);
  return heap_realloc(&h->core, p, size);
}

PH_EXPORT bool pinheap_owns(const pinheap *h, const void *p) {
  return h && p && heap_owns((heap *)&h->core, p);
}

PH_EXPORT int pinheap_region_of(const pinheap *h, const void *p, pinheap_region *out) {
  if (h && out) return heap_region_of((heap *)&h->core, p, out);
  error_set(EINVAL, "pinheap_region_of(%p): not in memory the heap obtained from its provider", p);
  return -1;
}

PH_EXPORT void pinheap_trim(pinheap *h) {
  if (h) heap_trim(&h->core);
}

PH_EXPORT int pinheap_get_stats(pinheap *h, pinheap_stats *out) {
  if (!h || !out) {
    error_set(EINVAL, "pinheap_get_stats: heap or output is NULL");
    return -1;
  }
  heap_get_stats(&h->core, out);
  return 0;
}

PH_EXPORT int pinheap_arena_count(const pinheap *h, unsigned *made, unsigned *most) {
  if (!h || !made || !most) {
    error_set(EINVAL, "pinheap_arena_count: a NULL argument");
    return -1;
  }
  arenas_count(&h->core.arenas, made, most);
  return 0;
}

static bool api_refuse(const pinheap *h, const void *p, const char *what) {
  if (h && p) return false;
  error_set(EINVAL, "%s: a NULL argument", what);
  return true;
}

PH_EXPORT int pinheap_walk(pinheap *h, int (*visit)(const pinheap_extent *extent, void *arg), void *arg) {
  if (api_refuse(h, (const void *)visit, "pinheap_walk")) return -1;
  return walk_extents(&h->core, visit, arg);
}

PH_EXPORT int pinheap_slices(pinheap *h, unsigned char *kinds, size_t n) {
  if (api_refuse(h, kinds, "pinheap_slices")) return -1;
  if (n == 0) {
    error_set(EINVAL, "pinheap_slices: no slices asked");
    return -1;
  }
  walk_slices(&h->core, kinds, n);
  return 0;
}

PH_EXPORT int pinheap_report(pinheap *h, FILE *out) {
  if (api_refuse(h, out, "pinheap_report")) return -1;
  return report_write(&h->core, out);
}
