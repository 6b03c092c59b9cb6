/*
 * preload: libpinheap-preload.so. With LD_PRELOAD, every malloc-family call
 * of an unmodified program is served by one heap configured from the
 * environment (pinheap_options_from_env; default FIXED of PINHEAP_SIZE,
 * 4 GiB when unset), so the program's whole heap lives in the heap's memory.
 * The heap is set up at the program's first allocation, with one jemalloc
 * arena (the others as threads come): a program that allocates nothing pays
 * for nothing but loading the library, which carries its own copy of
 * jemalloc (CMakeLists.txt).
 *
 * PINHEAP_STATS (a boolean, or "all") prints the heap's stats to stderr at
 * exit: of the process it was given to (and of what that process execs in
 * its place), not of its children, unless "all". The first process marks
 * the environment with its pid (PINHEAP_PRELOAD_PID) so that its children
 * know they are children; it does so only when it has something to say.
 * A SIMPLE heap has no size (pinheap.h): PINHEAP_SIZE given with it is
 * reported once, by the first process.
 *
 * Calls made while the heap is being set up, or from inside the heap's own
 * set-up of a thread (glibc's pthread_setspecific may calloc), are served by
 * a small bootstrap area that is never reused; frees of its blocks are
 * ignored.
 *
 * Built on the public header alone (pinheap.h), as any program is; it
 * links the library's objects and, where it can, a private copy of
 * jemalloc (CMakeLists.txt).
 *
 * Thread-safe: the heap is set up once (pthread_once); every other call goes
 * to the heap. fork() is safe as for any heap of the library (pinheap.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "pinheap.h"

#define PRELOAD_BOOT_BYTES ((size_t)1 << 20)
#define PRELOAD_DEFAULT_SIZE ((size_t)4 << 30)
/* The malloc family this library exports (the rest of it is hidden). */
#define PRELOAD_EXPORT __attribute__((visibility("default")))
#define PRELOAD_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* A line with the library's "pinheap: " prefix on stderr, formatted on the
 * stack and written at once: this library is malloc, so no stdio buffer
 * and no allocation. die: then abort. */
__attribute__((format(printf, 2, 3))) static void preload_say(bool die, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + 9, sizeof buf - 10, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n > sizeof buf - 11) n = sizeof buf - 11;
  memcpy(buf, "pinheap: ", 9);
  buf[9 + n] = '\n';
  ssize_t w = write(STDERR_FILENO, buf, (size_t)n + 10);
  (void)w;
  if (die) abort();
}

/* x rounded up to a multiple of the power of two a; 0 on overflow. */
static size_t preload_align_up(size_t x, size_t a) { return x > SIZE_MAX - (a - 1) ? 0 : (x + a - 1) & ~(a - 1); }

static pinheap *preload_heap;
static pthread_once_t preload_once = PTHREAD_ONCE_INIT;
static _Thread_local int preload_depth __attribute__((tls_model("initial-exec")));

/* The bootstrap area: a bump pointer, each block after a 16-byte header
 * holding its size. */
static _Alignas(16) unsigned char preload_boot[PRELOAD_BOOT_BYTES];
static _Atomic size_t preload_boot_used;

static bool preload_is_boot(const void *p) {
  return (const unsigned char *)p >= preload_boot && (const unsigned char *)p < preload_boot + PRELOAD_BOOT_BYTES;
}

static void *preload_boot_alloc(size_t size, size_t align) {
  if (align < 16) align = 16;
  size_t need = preload_align_up(size, 16) + align;
  size_t at = atomic_fetch_add(&preload_boot_used, need);
  if (need > PRELOAD_BOOT_BYTES || at > PRELOAD_BOOT_BYTES - need)
    preload_say(true, "libpinheap-preload: the bootstrap area is full (a %zu-byte request while setting up)", size);
  uintptr_t p = preload_align_up((uintptr_t)(preload_boot + at) + 16, align);
  ((size_t *)p)[-1] = size;
  return (void *)p;
}

static size_t preload_boot_size(const void *p) { return ((const size_t *)p)[-1]; }

/* Whether this process prints the stats at exit (its pid, 0: no), and a
 * copy of stderr taken when the heap is set up: programs such as coreutils
 * close stderr at exit before the stats are printed. The copy is
 * close-on-exec, and high, away from the descriptors a program counts on
 * being next. */
static pid_t preload_stats_pid;
static int preload_stats_fd = -1;

static void preload_print_stats(void) {
  pinheap_stats s;
  unsigned made, most;
  /* A child forked without exec runs the handlers too: not its stats. */
  if (getpid() != preload_stats_pid || !preload_heap || pinheap_get_stats(preload_heap, &s) != 0 ||
      pinheap_arena_count(preload_heap, &made, &most) != 0)
    return;
  char buf[512];
  int n = snprintf(buf, sizeof buf,
                   "pinheap: capacity %zu, in use %zu, free %zu, largest free %zu, free extents %zu, allocated %zu, "
                   "peak in use %zu, large blocks %zu (%zu bytes), arenas %u of %u\n",
                   s.capacity, s.in_use, s.free_bytes, s.largest_free, s.free_extents, s.allocated, s.peak_in_use,
                   s.large_blocks, s.large_allocated, made, most);
  if (n > 0) {
    ssize_t w = write(preload_stats_fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    (void)w;
  }
}

static void preload_init(void) {
  preload_depth++;
  pinheap_options o;
  pinheap_options_init(&o);
  o.size = PRELOAD_DEFAULT_SIZE;
  if (pinheap_options_from_env(&o) != 0) preload_say(true, "libpinheap-preload: %s", pinheap_last_error());
  preload_heap = pinheap_create(&o);
  if (!preload_heap) preload_say(true, "libpinheap-preload: %s", pinheap_last_error());
  if (preload_stats_pid) {
    preload_stats_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 1000);
    if (preload_stats_fd < 0) preload_stats_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (preload_stats_fd >= 0) atexit(preload_print_stats);
  }
  preload_depth--;
}

/* At load, before the program runs: what this process is to say, from the
 * environment (the heap itself waits for the first allocation). */
__attribute__((constructor)) static void preload_start(void) {
  const char *stats = getenv("PINHEAP_STATS"), *mark = getenv("PINHEAP_PRELOAD_PID");
  pid_t self = getpid();
  /* The first process, or the program it exec'd in its place. */
  bool first = !mark || strtol(mark, NULL, 10) == (long)self;
  bool all = stats && strcasecmp(stats, "all") == 0, on = false;
  if (stats && !all && pinheap_parse_bool(stats, &on) != 0)
    preload_say(true, "libpinheap-preload: pinheap_options_from_env: PINHEAP_STATS=\"%s\" is not one of 0, 1, yes, no, "
                "true, false, on, off, all",
                stats);
  if (all || (on && first)) preload_stats_pid = self;
  const char *mode = getenv("PINHEAP_MODE"), *size = getenv("PINHEAP_SIZE");
  bool noted = false;
  if (first && mode && strcasecmp(mode, "simple") == 0 && size) {
    preload_say(false, "libpinheap-preload: PINHEAP_SIZE=%s is ignored: a SIMPLE heap takes ordinary memory as it grows, "
                 "without a cap (said once, by the first process)",
                 size);
    noted = true;
  }
  if (!mark && (on || noted)) {
    char pid[24];
    snprintf(pid, sizeof pid, "%ld", (long)self);
    setenv("PINHEAP_PRELOAD_PID", pid, 1);
  }
}

/* The heap, or NULL when the call must go to the bootstrap area. */
static inline pinheap *preload_get(void) {
  if (PRELOAD_UNLIKELY(preload_depth)) return NULL;
  if (PRELOAD_UNLIKELY(!preload_heap)) pthread_once(&preload_once, preload_init);
  return preload_heap;
}

/* A call into the heap that may set up this thread's cache, and so reenter. */
#define PRELOAD_CALL(expr) \
  ({                       \
    preload_depth++;       \
    __auto_type r_ = (expr); \
    preload_depth--;       \
    r_;                    \
  })

PRELOAD_EXPORT void *malloc(size_t size) {
  pinheap *h = preload_get();
  if (!h) return preload_boot_alloc(size, 16);
  return PRELOAD_CALL(pinheap_malloc(h, size));
}

PRELOAD_EXPORT void free(void *p) {
  if (!p || preload_is_boot(p)) return;
  pinheap *h = preload_get();
  if (!h) return; /* a free while setting up: keep the block */
  preload_depth++;
  pinheap_free(h, p);
  preload_depth--;
}

PRELOAD_EXPORT void *calloc(size_t count, size_t size) {
  pinheap *h = preload_get();
  if (!h) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
      errno = ENOMEM;
      return NULL;
    }
    return memset(preload_boot_alloc(total, 16), 0, total);
  }
  return PRELOAD_CALL(pinheap_calloc(h, count, size));
}

PRELOAD_EXPORT size_t malloc_usable_size(void *p) {
  if (!p) return 0;
  if (preload_is_boot(p)) return preload_boot_size(p);
  pinheap *h = preload_get();
  return h ? pinheap_usable_size(h, p) : 0;
}

PRELOAD_EXPORT void *realloc(void *p, size_t size) {
  pinheap *h = preload_get();
  if (!h || (p && preload_is_boot(p))) {
    void *q = h ? PRELOAD_CALL(pinheap_malloc(h, size)) : preload_boot_alloc(size, 16);
    if (q && p) {
      size_t old = preload_boot_size(p);
      memcpy(q, p, old < size ? old : size);
    }
    return q;
  }
  return PRELOAD_CALL(pinheap_realloc(h, p, size));
}

PRELOAD_EXPORT void *reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, total);
}

static void *preload_aligned(size_t align, size_t size) {
  pinheap *h = preload_get();
  if (!h) return preload_boot_alloc(size, align);
  return PRELOAD_CALL(pinheap_aligned_alloc(h, align, size));
}

PRELOAD_EXPORT int posix_memalign(void **out, size_t align, size_t size) {
  if (!align || (align & (align - 1)) || align % sizeof(void *)) return EINVAL;
  int saved = errno;
  void *p = preload_aligned(align, size);
  if (!p) {
    int err = errno == EINVAL ? EINVAL : ENOMEM;
    errno = saved;
    return err;
  }
  *out = p;
  return 0;
}

/* memalign's alignment in glibc 2.36, whose aligned_alloc is the same
 * function: up to 16, malloc's (16 here too: jemalloc's smallest class is
 * only 8-aligned); one that is not a power of two is rounded up to one, 32
 * at least; above SIZE_MAX / 2 + 1 there is none (0). */
static size_t preload_glibc_alignment(size_t align) {
  if (align <= 16) return 16;
  if (align > SIZE_MAX / 2 + 1) return 0;
  size_t a = 32;
  while (a < align) a <<= 1;
  return a;
}

static void *preload_memalign(size_t align, size_t size) {
  size_t a = preload_glibc_alignment(align);
  if (!a) {
    errno = EINVAL;
    return NULL;
  }
  return preload_aligned(a, size);
}

PRELOAD_EXPORT void *aligned_alloc(size_t align, size_t size) { return preload_memalign(align, size); }

PRELOAD_EXPORT void *memalign(size_t align, size_t size) { return preload_memalign(align, size); }

PRELOAD_EXPORT void *valloc(size_t size) { return preload_aligned((size_t)sysconf(_SC_PAGESIZE), size); }

PRELOAD_EXPORT void *pvalloc(size_t size) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t rounded = preload_align_up(size ? size : 1, page);
  if (!rounded) {
    errno = ENOMEM;
    return NULL;
  }
  return preload_aligned(page, rounded);
}

/* glibc's introspection calls, answered for the heap (until it exists, for
 * an empty one). */
static pinheap_stats preload_stats(void) {
  pinheap_stats s = {0};
  pinheap *h = preload_get();
  if (h) pinheap_get_stats(h, &s);
  return s;
}

/* arena: the bytes the heap manages; ordblks: its free extents; hblks and
 * hblkhd: its large blocks; uordblks: the bytes allocated; fordblks: the
 * free bytes; usmblks: the peak in use; keepcost: the largest free extent. */
PRELOAD_EXPORT struct mallinfo2 mallinfo2(void) {
  pinheap_stats s = preload_stats();
  return (struct mallinfo2){.arena = s.capacity,
                            .ordblks = s.free_extents,
                            .hblks = s.large_blocks,
                            .hblkhd = s.large_allocated,
                            .usmblks = s.peak_in_use,
                            .uordblks = s.allocated,
                            .fordblks = s.free_bytes,
                            .keepcost = s.largest_free};
}

/* The same in int fields, which saturate. */
PRELOAD_EXPORT struct mallinfo mallinfo(void) {
  struct mallinfo2 m = mallinfo2();
#define PRELOAD_INT(v) ((v) > INT_MAX ? INT_MAX : (int)(v))
  return (struct mallinfo){.arena = PRELOAD_INT(m.arena),
                           .ordblks = PRELOAD_INT(m.ordblks),
                           .hblks = PRELOAD_INT(m.hblks),
                           .hblkhd = PRELOAD_INT(m.hblkhd),
                           .usmblks = PRELOAD_INT(m.usmblks),
                           .uordblks = PRELOAD_INT(m.uordblks),
                           .fordblks = PRELOAD_INT(m.fordblks),
                           .keepcost = PRELOAD_INT(m.keepcost)};
#undef PRELOAD_INT
}

/* pinheap_trim: every cache emptied back into the heap. 1: memory may have
 * been released. */
PRELOAD_EXPORT int malloc_trim(size_t pad) {
  (void)pad;
  pinheap *h = preload_get();
  if (h) pinheap_trim(h);
  return 1;
}

/* glibc's layout, with the heap's figures: system bytes are what it
 * manages, in use bytes what is allocated, the mmap lines its large
 * blocks. */
PRELOAD_EXPORT void malloc_stats(void) {
  pinheap_stats s = preload_stats();
  fprintf(stderr,
          "Arena 0:\nsystem bytes     = %10zu\nin use bytes     = %10zu\nTotal (incl. mmap):\n"
          "system bytes     = %10zu\nin use bytes     = %10zu\nmax mmap regions = %10zu\nmax mmap bytes   = %10zu\n",
          s.capacity, s.allocated, s.capacity, s.allocated, s.large_blocks, s.large_allocated);
}

/* XML as glibc's, with the heap's figures. options must be 0. */
PRELOAD_EXPORT int malloc_info(int options, FILE *fp) {
  if (options != 0) {
    errno = EINVAL;
    return -1;
  }
  pinheap_stats s = preload_stats();
  fprintf(fp,
          "<malloc version=\"pinheap-1\">\n<heap nr=\"0\">\n"
          "<total type=\"allocated\" size=\"%zu\"/>\n<total type=\"large\" count=\"%zu\" size=\"%zu\"/>\n"
          "<total type=\"free\" count=\"%zu\" size=\"%zu\"/>\n<total type=\"largest_free\" size=\"%zu\"/>\n"
          "<system type=\"current\" size=\"%zu\"/>\n<system type=\"in_use\" size=\"%zu\"/>\n"
          "<system type=\"max\" size=\"%zu\"/>\n</heap>\n</malloc>\n",
          s.allocated, s.large_blocks, s.large_allocated, s.free_extents, s.free_bytes, s.largest_free, s.capacity,
          s.in_use, s.peak_in_use);
  return 0;
}
