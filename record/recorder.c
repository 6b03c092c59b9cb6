/*
 * libpinheap-record.so: records the malloc-family calls of an unmodified
 * program into a trace (docs/trace.md). `pinheap record` preloads it in
 * front of libpinheap-preload.so, or alone over the C library's malloc:
 * each call goes on to the next library's function (dlsym RTLD_NEXT), and
 * what that returned is recorded. The recorder only interposes; it uses
 * nothing of pinheap but the trace encoder, so whatever serves the calls
 * (the preload library in the mode the environment asks) does as it would
 * without it.
 *
 * Environment, set by `pinheap record`:
 *   PINHEAP_RECORD_FILE      the trace of the process PINHEAP_RECORD_PID
 *   PINHEAP_RECORD_PID       the process that writes to that file
 *   PINHEAP_RECORD_CHILDREN  1: any other process (a forked child, a
 *                            program run) writes its own trace to
 *                            FILE.PID; otherwise it records nothing
 *
 * Threads: one lock orders every record; a block's record is made inside
 * the call that made it (an allocation after the next library returned, a
 * free before it is passed on), so that the trace's order agrees with the
 * program's for each block: a free precedes the allocation that gets its
 * address again, and a block handed to another thread is freed after its
 * allocation. Blocks are named by ids; a table maps live addresses to
 * them. Nothing here allocates with malloc (the table and the buffer come
 * from mmap and static memory), and the next library is never called with
 * the lock held.
 *
 * fork: the prepare handler takes the lock and writes the buffer out; the
 * parent goes on; the child, on one thread, either starts a trace of its own
 * (FILE.PID: the header, then its inherited live blocks as allocations) or
 * records nothing, so it never writes into the parent's file.
 *
 * Records reach the file when the buffer is full, at fork, and when the
 * process ends by exit or _exit (the end record; _exit and _Exit are
 * interposed too, as shells and forked children end that way). A process
 * killed by a signal leaves a trace without its last records and without
 * an end record, which reads as incomplete, never as corrupt. A vfork
 * child (posix_spawn) shares the recorder's memory with its parent: its
 * _exit is passed on untouched.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blockmap.h"
#include "clock.h"
#include "trace.h"

#define RECORDER_EXPORT __attribute__((visibility("default")))
#define RECORDER_TLS __attribute__((tls_model("initial-exec")))
#define RECORDER_BUFFER ((size_t)1 << 20)
#define RECORDER_BOOT_BYTES ((size_t)64 << 10)
/* A block's table entry: its id, and the log2 of its alignment above it. */
#define RECORDER_ALIGN_SHIFT 56

/* The next library's functions. */
static void *(*next_malloc)(size_t);
static void (*next_free)(void *);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static int (*next_posix_memalign)(void **, size_t, size_t);
static void *(*next_aligned_alloc)(size_t, size_t);
static void *(*next_memalign)(size_t, size_t);
static void *(*next_valloc)(size_t);
static void *(*next_pvalloc)(size_t);
static void (*next__exit)(int);
static void (*next__Exit)(int);

static pthread_once_t recorder_once = PTHREAD_ONCE_INIT;
static _Thread_local int recorder_depth RECORDER_TLS;   /* inside a call of ours: pass through */
static _Thread_local uint32_t recorder_tid RECORDER_TLS; /* thread id + 1; 0: none yet */
static atomic_uint recorder_threads;

/* Under recorder_lock. Invariants: while recording, recorder_blocks holds
 * every block recorded and not yet freed, by address, with its id and
 * bytes; recorder_buf[0, recorder_len) holds whole records only (the
 * header first in a new file), and recorder_enc the state after the last
 * of them; recorder_records counts the records written but the end. */
static pthread_mutex_t recorder_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool recorder_on; /* written under the lock; read without it as a hint */
static int recorder_fd = -1;
static pid_t recorder_owner; /* the process whose trace recorder_fd is */
static bool recorder_children;
static char recorder_file[PATH_MAX];
static trace_encoder recorder_enc;
static uint64_t recorder_records, recorder_next_id, recorder_last_ns;
static blockmap recorder_blocks; /* address -> (id | log2 align << 56, bytes) */
static size_t recorder_len;
static uint8_t recorder_buf[RECORDER_BUFFER];

/* Calls made while dlsym looks the next library up (it may allocate): a
 * bump area never reused, its frees ignored. */
static _Alignas(16) unsigned char recorder_boot[RECORDER_BOOT_BYTES];
static atomic_size_t recorder_boot_used;

static bool recorder_is_boot(const void *p) {
  return (const unsigned char *)p >= recorder_boot && (const unsigned char *)p < recorder_boot + RECORDER_BOOT_BYTES;
}

static void *recorder_boot_alloc(size_t size) {
  size_t need = (size + 15) & ~(size_t)15;
  size_t at = atomic_fetch_add(&recorder_boot_used, need);
  if (need > RECORDER_BOOT_BYTES || at > RECORDER_BOOT_BYTES - need) {
    static const char msg[] = "libpinheap-record: the bootstrap area is full\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    abort();
  }
  return recorder_boot + at;
}

/* ------------------------------------------------------------------------ */
/* Writing, under the lock. */

static void recorder_flush(void) {
  size_t off = 0;
  while (off < recorder_len) {
    ssize_t w = write(recorder_fd, recorder_buf + off, recorder_len - off);
    if (w > 0) {
      off += (size_t)w;
    } else if (w < 0 && errno != EINTR) {
      /* The trace cannot be written: stop, leaving whole records only. */
      atomic_store(&recorder_on, false);
      break;
    }
  }
  recorder_len = 0;
}

static void recorder_put(trace_event *ev) {
  if (!recorder_tid) recorder_tid = atomic_fetch_add(&recorder_threads, 1) + 1;
  uint64_t now = clock_ns();
  /* The end record as the tool's writer makes it: no thread, no time. */
  bool end = ev->kind == TRACE_END;
  ev->thread = end ? recorder_enc.thread : recorder_tid - 1;
  ev->dt = end || now < recorder_last_ns ? 0 : now - recorder_last_ns;
  if (!end) recorder_last_ns = now;
  if (recorder_len + TRACE_MAX_RECORD > RECORDER_BUFFER) recorder_flush();
  recorder_len += trace_encode(&recorder_enc, ev, recorder_buf + recorder_len);
  if (ev->kind != TRACE_END) recorder_records++;
}

/* An info or phase record of text s: its printable characters, trimmed. */
static void recorder_text(trace_kind kind, const char *s) {
  trace_event ev = {.kind = kind};
  size_t n = 0;
  for (; *s && n < TRACE_MAX_TEXT; s++) {
    char c = *s >= 0x20 && *s <= 0x7e ? *s : '?';
    if (n || c != ' ') ev.text[n++] = c;
  }
  while (n && ev.text[n - 1] == ' ') n--;
  ev.text[n] = '\0';
  ev.text_len = n;
  if (n) recorder_put(&ev);
}

/* Stops recording: the end record, the buffer out, the file closed. */
static void recorder_finish(void) {
  trace_event end = {.kind = TRACE_END, .count = recorder_records};
  recorder_put(&end);
  recorder_flush();
  close(recorder_fd);
  recorder_fd = -1;
  atomic_store(&recorder_on, false);
}

/* Opens path and writes the header and the info records. */
static bool recorder_begin(const char *path, long parent) {
  recorder_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (recorder_fd < 0) return false;
  recorder_owner = getpid();
  trace_encoder_init(&recorder_enc);
  recorder_records = 0;
  recorder_len = trace_encode_header(recorder_buf);
  recorder_last_ns = clock_ns();
  atomic_store(&recorder_on, true);
  char line[TRACE_MAX_TEXT + 1];
  recorder_text(TRACE_INFO, "recorded by libpinheap-record");
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    size_t n = (size_t)snprintf(line, sizeof line, "command ");
    ssize_t got = read(fd, line + n, sizeof line - 1 - n);
    close(fd);
    for (ssize_t i = 0; i < got; i++)
      if (!line[n + (size_t)i]) line[n + (size_t)i] = ' ';
    line[n + (got > 0 ? (size_t)got : 0)] = '\0';
    recorder_text(TRACE_INFO, line);
  }
  snprintf(line, sizeof line, "pid %ld", (long)getpid());
  recorder_text(TRACE_INFO, line);
  if (parent) {
    snprintf(line, sizeof line, "forked from %ld", parent);
    recorder_text(TRACE_INFO, line);
  }
  static const char *const vars[][2] = {{"PINHEAP_MODE", "mode "}, {"PINHEAP_SIZE", "heap "},
                                        {"PINHEAP_POLICY", "policy "}};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i][0]);
    if (!v) continue;
    snprintf(line, sizeof line, "%s%s", vars[i][1], v);
    recorder_text(TRACE_INFO, line);
  }
  /* At once: a process that ends without a word still leaves a trace. */
  recorder_flush();
  return true;
}

/* FILE.PID for a process other than the recorded one. */
static void recorder_child_path(char *out, size_t len) {
  snprintf(out, len, "%s.%ld", recorder_file, (long)getpid());
}

/* ------------------------------------------------------------------------ */
/* Set-up, once. */

static void recorder_prepare(void);
static void recorder_parent(void);
static void recorder_child(void);

#define RECORDER_RESOLVE(name) next_##name = (__typeof__(next_##name))dlsym(RTLD_NEXT, #name)

static void recorder_init(void) {
  recorder_depth++;
  RECORDER_RESOLVE(malloc);
  RECORDER_RESOLVE(free);
  RECORDER_RESOLVE(calloc);
  RECORDER_RESOLVE(realloc);
  RECORDER_RESOLVE(posix_memalign);
  RECORDER_RESOLVE(aligned_alloc);
  RECORDER_RESOLVE(memalign);
  RECORDER_RESOLVE(valloc);
  RECORDER_RESOLVE(pvalloc);
  RECORDER_RESOLVE(_exit);
  RECORDER_RESOLVE(_Exit);
  if (!next_malloc || !next_free || !next_calloc || !next_realloc || !next_posix_memalign || !next_aligned_alloc ||
      !next_memalign || !next_valloc || !next_pvalloc || !next__exit || !next__Exit) {
    static const char msg[] = "libpinheap-record: the malloc functions of the next library are not found\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    abort();
  }
  const char *file = getenv("PINHEAP_RECORD_FILE"), *pid = getenv("PINHEAP_RECORD_PID"),
             *children = getenv("PINHEAP_RECORD_CHILDREN");
  recorder_children = children && strcmp(children, "1") == 0;
  if (file && strlen(file) < sizeof recorder_file - 24) {
    snprintf(recorder_file, sizeof recorder_file, "%s", file);
    bool is_main = pid && strtol(pid, NULL, 10) == (long)getpid();
    char path[PATH_MAX + 32];
    if (is_main || recorder_children) {
      if (!is_main) recorder_child_path(path, sizeof path);
      blockmap_init(&recorder_blocks);
      pthread_mutex_lock(&recorder_lock);
      recorder_begin(is_main ? recorder_file : path, 0);
      pthread_mutex_unlock(&recorder_lock);
    }
  }
  pthread_atfork(recorder_prepare, recorder_parent, recorder_child);
  recorder_depth--;
}

static inline void recorder_ensure(void) {
  if (__builtin_expect(!next_malloc, 0)) pthread_once(&recorder_once, recorder_init);
}

/* At load: a process that never allocates still leaves its trace. */
__attribute__((constructor)) static void recorder_start(void) { recorder_ensure(); }

/* At exit, or _exit of the process that records (not of a vfork child). */
__attribute__((destructor)) static void recorder_fini(void) {
  pthread_mutex_lock(&recorder_lock);
  if (atomic_load(&recorder_on) && recorder_owner == getpid()) recorder_finish();
  pthread_mutex_unlock(&recorder_lock);
}

static void recorder_prepare(void) {
  pthread_mutex_lock(&recorder_lock);
  if (atomic_load(&recorder_on)) recorder_flush();
}

static void recorder_parent(void) { pthread_mutex_unlock(&recorder_lock); }

static int recorder_inherit(uint64_t addr, uint64_t entry, uint64_t bytes, void *arg) {
  (void)addr, (void)arg;
  unsigned log2 = (unsigned)(entry >> RECORDER_ALIGN_SHIFT);
  trace_event ev = {.kind = log2 ? TRACE_ALIGNED : TRACE_MALLOC,
                    .id = entry & (((uint64_t)1 << RECORDER_ALIGN_SHIFT) - 1),
                    .size = bytes,
                    .align = (uint64_t)1 << log2};
  recorder_put(&ev);
  return 0;
}

/* The child, on one thread, holds the lock the prepare handler took. */
static void recorder_child(void) {
  if (atomic_load(&recorder_on)) {
    long parent = (long)getppid();
    close(recorder_fd);
    recorder_fd = -1;
    recorder_len = 0;
    char path[PATH_MAX + 32];
    recorder_child_path(path, sizeof path);
    if (recorder_children && recorder_begin(path, parent)) {
      recorder_text(TRACE_INFO, "blocks inherited from the parent follow");
      blockmap_walk(&recorder_blocks, recorder_inherit, NULL);
      recorder_text(TRACE_PHASE, "after fork");
    } else {
      atomic_store(&recorder_on, false);
    }
  }
  pthread_mutex_unlock(&recorder_lock);
}

/* ------------------------------------------------------------------------ */
/* Recording, each under the lock. */

static void recorder_free_block(uint64_t entry) {
  trace_event ev = {.kind = TRACE_FREE, .id = entry & (((uint64_t)1 << RECORDER_ALIGN_SHIFT) - 1)};
  recorder_put(&ev);
}

/* A new block at p; a stale entry at its address (a free we did not see)
 * is freed first, so that the trace stays a sequence a program can make. */
static void recorder_alloc(trace_kind kind, void *p, uint64_t count, uint64_t size, uint64_t align) {
  if (!atomic_load_explicit(&recorder_on, memory_order_relaxed)) return;
  pthread_mutex_lock(&recorder_lock);
  if (atomic_load(&recorder_on)) {
    uint64_t stale;
    if (blockmap_take(&recorder_blocks, (uintptr_t)p, &stale, NULL)) recorder_free_block(stale);
    unsigned log2 = kind == TRACE_ALIGNED ? (unsigned)__builtin_ctzll(align) : 0;
    trace_event ev = {.kind = kind, .id = recorder_next_id++, .count = count, .size = size, .align = align};
    uint64_t bytes = kind == TRACE_CALLOC ? count * size : size;
    if (blockmap_put(&recorder_blocks, (uintptr_t)p, ev.id | (uint64_t)log2 << RECORDER_ALIGN_SHIFT, bytes) == 0) {
      recorder_put(&ev);
    } else {
      recorder_text(TRACE_INFO, "recording stopped: no memory for the table of blocks");
      recorder_finish();
    }
  }
  pthread_mutex_unlock(&recorder_lock);
}

/* The free of p, when it is a block recorded. */
static void recorder_free(void *p) {
  if (!atomic_load_explicit(&recorder_on, memory_order_relaxed)) return;
  uint64_t entry;
  pthread_mutex_lock(&recorder_lock);
  if (atomic_load(&recorder_on) && blockmap_take(&recorder_blocks, (uintptr_t)p, &entry, NULL))
    recorder_free_block(entry);
  pthread_mutex_unlock(&recorder_lock);
}

/* The entry of the live block at p, taken out of the table: false when p
 * is none (not recorded, or recording is off). */
static bool recorder_take(void *p, uint64_t *entry, uint64_t *bytes) {
  if (!atomic_load_explicit(&recorder_on, memory_order_relaxed)) return false;
  pthread_mutex_lock(&recorder_lock);
  bool found = atomic_load(&recorder_on) && blockmap_take(&recorder_blocks, (uintptr_t)p, entry, bytes);
  pthread_mutex_unlock(&recorder_lock);
  return found;
}

/* ------------------------------------------------------------------------ */
/* The interposed functions. */

static void *recorder_next_malloc(size_t size) { return next_malloc ? next_malloc(size) : recorder_boot_alloc(size); }

RECORDER_EXPORT void *malloc(size_t size) {
  if (recorder_depth) return recorder_next_malloc(size);
  recorder_ensure();
  recorder_depth++;
  void *p = next_malloc(size);
  if (p) recorder_alloc(TRACE_MALLOC, p, 0, size, 0);
  recorder_depth--;
  return p;
}

RECORDER_EXPORT void free(void *p) {
  if (!p || recorder_is_boot(p)) return;
  if (recorder_depth) {
    if (next_free) next_free(p);
    return;
  }
  recorder_ensure();
  recorder_depth++;
  recorder_free(p);
  next_free(p);
  recorder_depth--;
}

RECORDER_EXPORT void *calloc(size_t count, size_t size) {
  if (recorder_depth) {
    if (next_calloc) return next_calloc(count, size);
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) return NULL;
    return recorder_boot_alloc(total); /* never used before: zero */
  }
  recorder_ensure();
  recorder_depth++;
  void *p = next_calloc(count, size);
  if (p) recorder_alloc(TRACE_CALLOC, p, count, size, 0);
  recorder_depth--;
  return p;
}

RECORDER_EXPORT void *realloc(void *p, size_t size) {
  if (p && recorder_is_boot(p)) {
    void *q = malloc(size);
    if (q) memcpy(q, p, size < RECORDER_BOOT_BYTES - (size_t)((unsigned char *)p - recorder_boot)
                            ? size
                            : RECORDER_BOOT_BYTES - (size_t)((unsigned char *)p - recorder_boot));
    return q;
  }
  if (recorder_depth) return next_realloc ? next_realloc(p, size) : recorder_boot_alloc(size);
  if (!p) return malloc(size);
  recorder_ensure();
  recorder_depth++;
  uint64_t entry = 0, old = 0;
  bool known = recorder_take(p, &entry, &old);
  void *q = next_realloc(p, size);
  if (known) {
    pthread_mutex_lock(&recorder_lock);
    if (atomic_load(&recorder_on)) {
      uint64_t id = entry & (((uint64_t)1 << RECORDER_ALIGN_SHIFT) - 1);
      if (!q && size) {
        /* Failed: p is still the block. */
        blockmap_put(&recorder_blocks, (uintptr_t)p, entry, old);
      } else if (!q || !size) {
        recorder_free_block(entry); /* realloc(p, 0) freed p */
      } else if (blockmap_put(&recorder_blocks, (uintptr_t)q, id, size) == 0) {
        trace_event ev = {.kind = TRACE_REALLOC, .id = id, .size = size};
        recorder_put(&ev);
      } else {
        recorder_text(TRACE_INFO, "recording stopped: no memory for the table of blocks");
        recorder_finish();
      }
    }
    pthread_mutex_unlock(&recorder_lock);
  }
  /* A block realloc(p, 0) returned, or one from a block never recorded. */
  if (q && (!known || !size)) recorder_alloc(TRACE_MALLOC, q, 0, size, 0);
  recorder_depth--;
  return q;
}

RECORDER_EXPORT void *reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, total);
}

/* The alignment a call asked, as a power of two (what the block has). */
static uint64_t recorder_pow2(size_t align) {
  uint64_t a = 1;
  while (a < align && a < ((uint64_t)1 << 62)) a <<= 1;
  return a;
}

RECORDER_EXPORT int posix_memalign(void **out, size_t align, size_t size) {
  if (recorder_depth) {
    if (next_posix_memalign) return next_posix_memalign(out, align, size);
    *out = recorder_boot_alloc(size + align);
    *out = (void *)(((uintptr_t)*out + align - 1) & ~(uintptr_t)(align - 1));
    return 0;
  }
  recorder_ensure();
  recorder_depth++;
  int rc = next_posix_memalign(out, align, size);
  if (rc == 0) recorder_alloc(TRACE_ALIGNED, *out, 0, size, recorder_pow2(align));
  recorder_depth--;
  return rc;
}

/* While the next library is looked up (its function still NULL), from the
 * bootstrap area: only dlsym's own calls get there. */
#define RECORDER_ALIGNED(name, params, next, args, align_expr, size_expr)                  \
  RECORDER_EXPORT void *name params {                                                     \
    if (recorder_depth) {                                                                 \
      if (next) return next args;                                                         \
      uint64_t a_ = recorder_pow2(align_expr);                                            \
      return (void *)(((uintptr_t)recorder_boot_alloc((size_expr) + a_) + a_ - 1) & ~(uintptr_t)(a_ - 1)); \
    }                                                                                     \
    recorder_ensure();                                                                    \
    recorder_depth++;                                                                     \
    void *p = next args;                                                                  \
    if (p) recorder_alloc(TRACE_ALIGNED, p, 0, size_expr, recorder_pow2(align_expr));     \
    recorder_depth--;                                                                     \
    return p;                                                                             \
  }

#define RECORDER_PAGE ((size_t)sysconf(_SC_PAGESIZE))
RECORDER_ALIGNED(aligned_alloc, (size_t align, size_t size), next_aligned_alloc, (align, size), align, size)
RECORDER_ALIGNED(memalign, (size_t align, size_t size), next_memalign, (align, size), align, size)
RECORDER_ALIGNED(valloc, (size_t size), next_valloc, (size), RECORDER_PAGE, size)
RECORDER_ALIGNED(pvalloc, (size_t size), next_pvalloc, (size), RECORDER_PAGE,
                 size ? (size + RECORDER_PAGE - 1) & ~(RECORDER_PAGE - 1) : RECORDER_PAGE)

RECORDER_EXPORT _Noreturn void _exit(int status) {
  recorder_ensure();
  recorder_fini();
  next__exit(status);
  __builtin_unreachable();
}

RECORDER_EXPORT _Noreturn void _Exit(int status) {
  recorder_ensure();
  recorder_fini();
  next__Exit(status);
  __builtin_unreachable();
}

/* pinheap_phase of the library, which the program calls: a phase mark. */
RECORDER_EXPORT void pinheap_phase(const char *name) {
  if (!name || !atomic_load(&recorder_on)) return;
  pthread_mutex_lock(&recorder_lock);
  if (atomic_load(&recorder_on)) recorder_text(TRACE_PHASE, name);
  pthread_mutex_unlock(&recorder_lock);
}
