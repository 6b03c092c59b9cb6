/*
 * pinheap: a general-purpose allocator over memory a network card can reach.
 *
 * A heap serves malloc-style requests from one of three kinds of memory:
 *   PINHEAP_SIMPLE   ordinary memory, registered nowhere: a DYNAMIC heap
 *                    over memory from mmap, charged to the system's commit
 *                    limit as malloc's is, without a cap.
 *   PINHEAP_DYNAMIC  registered chunks added as the heap grows, and large
 *                    blocks registered one by one.
 *   PINHEAP_FIXED    one region obtained once; every allocation comes from it.
 *
 * Thread safety: every function may be called from any thread at the same
 * time, on the same heap or on different heaps, except pinheap_destroy, which
 * must not race with any other call on the same heap nor with the exit of a
 * thread that used it. fork() may be called from any thread at any time,
 * except from inside a provider's function or while holding a lock one
 * waits for: it waits until no other thread is half way through a change
 * of a heap (a provider's call included), and the child finds every heap
 * consistent and usable; the blocks of the threads that did not survive the
 * fork stay allocated.
 *
 * Errors: a function that fails returns NULL (or -1), sets errno and leaves a
 * description of the failure that pinheap_last_error() returns in the failing
 * thread. A failed call changes nothing.
 */
#ifndef PINHEAP_H
#define PINHEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PINHEAP_VERSION_MAJOR 0
#define PINHEAP_VERSION_MINOR 1
#define PINHEAP_VERSION_PATCH 0

typedef struct pinheap pinheap;

/*
 * A provider: where a heap's registered memory comes from. A comm layer
 * supplies one to put the heap in memory it has registered (an MPI window,
 * libfabric memory regions, ...); NULL in pinheap_options means the local
 * provider, ordinary memory from mmap.
 *
 * Thread safety: the heap calls obtain and release under no lock of its own,
 * possibly from several threads at once; a provider that is not thread-safe
 * must lock inside. A DYNAMIC heap may call obtain from inside jemalloc, with
 * jemalloc's arena locks held (when jemalloc needs room): obtain and release
 * must not allocate from the same heap nor wait on a thread that may, and
 * may allocate from another heap only if it was created earlier (fork
 * waits for the heaps from the newest to the oldest).
 */
typedef struct pinheap_provider {
  const char *name; /* for messages */
  void *ctx;        /* passed to every call */
  /* Obtains and registers size bytes aligned to align.
   * Pre: size is a positive multiple of the page size; align is a power of
   * two, at least the page size.
   * Returns 0 with *base (aligned as asked) and *handle (whatever the comm
   * layer needs to address the memory remotely, e.g. a memory key; may be
   * NULL) set, or an errno value (ENOMEM: no memory or no registration left;
   * EBUSY: it serves no more regions until one is released, which
   * pinheap_create of a FIXED heap passes on, and a DYNAMIC heap counts as
   * ENOMEM) with nothing obtained. */
  int (*obtain)(void *ctx, size_t size, size_t align, void **base, void **handle);
  /* Deregisters and gives back a region obtain returned, whole: the same
   * base, size and handle. Returns 0, or an errno value (the heap forgets the
   * region either way). May be NULL: nothing is given back. */
  int (*release)(void *ctx, void *base, size_t size, void *handle);
} pinheap_provider;

/* A registration, as a comm layer needs it to reach an address remotely. */
typedef struct pinheap_region {
  void *base;
  size_t size;
  void *handle; /* what the provider's obtain returned */
} pinheap_region;

typedef enum pinheap_mode { PINHEAP_SIMPLE, PINHEAP_DYNAMIC, PINHEAP_FIXED } pinheap_mode;

/* How the extent manager of a FIXED heap places extents. */
typedef enum pinheap_policy {
  /* Best fit, small extents from the top of the region, large ones from the
   * bottom, free extents coalesced at once. The default: it needs the
   * smallest regions on the grow-by-realloc workload the README measures,
   * and completes every sequence of `pinheap demo`. */
  PINHEAP_POLICY_TWO_ENDED,
  /* A pointer that only moves up and never takes memory back, as the hooks
   * of jemalloc-based runtimes do today. For comparison only. */
  PINHEAP_POLICY_BUMP,
  /* Extents of at least ring_min bytes are placed next fit from a roving
   * pointer that wraps round the region (a ring): large arrays that die
   * oldest first leave their room where the next one goes. Smaller extents
   * are placed from the top, as small ones under two-ended, and the ring
   * keeps room below them; a block realloc moves is placed as under
   * two-ended. It needs the smallest regions on the PGAS-like workload the
   * README measures, about the same as two-ended on its server-like one
   * and more on its grow-by-realloc one (1.24 against 1.20: two-ended
   * places blocks under 64 KiB low): a choice for programs whose arrays
   * die oldest first. An addition to the contract. */
  PINHEAP_POLICY_RING,
  /* As two-ended, but extents above small_extent_max take the lowest-
   * addressed free extent that fits (address-ordered first fit). For
   * comparison. An addition to the contract. */
  PINHEAP_POLICY_FIRST_FIT
} pinheap_policy;

/* A policy's name, as PINHEAP_POLICY takes it ("two-ended", "bump", "ring",
 * "first-fit"), or
 * NULL for a value that names none. Policies are numbered from 0 without
 * gaps: a loop from 0 until NULL meets every one. */
const char *pinheap_policy_name(pinheap_policy policy);

typedef struct pinheap_options {
  pinheap_mode mode;
  /* FIXED: bytes in the region; DYNAMIC: cap on registered bytes, 0 = none;
   * SIMPLE: not used. */
  size_t size;
  /* Fields below: pinheap_options_init sets every one to its default. */
  pinheap_policy policy;
  /* Requests above this many bytes skip jemalloc and take an exact
   * page-rounded extent from the extent manager, placed by small_extent_max
   * (FIXED; under 64 KiB, see there), or a freed extent the thread's cache
   * holds, taken whole when at most a quarter longer (an eighth above 64
   * KiB), which the cache holds only while a quarter of the heap is free;
   * a block jemalloc holds (not one of the fine path's, 1-2 and 10-14
   * KiB), grown by realloc, stays on jemalloc's classes up to 14 KiB but
   * for 1-2 KiB. Default 14 KiB, jemalloc's largest small size class. */
  size_t large_threshold;
  /* Extents of at most this many bytes are placed from the top of the
   * region, larger ones from the bottom (every policy but bump; the ring
   * places at the top every extent below ring_min). Default 4 MiB. Blocks
   * under 64 KiB, whatever this, take the lowest free extent that holds
   * them, apart from the slabs at the top (FIXED, two-ended and first fit;
   * a block that realloc moves is placed as the other extents are). */
  size_t small_extent_max;
  /* jemalloc arenas in the heap; 0 = one per online CPU, at most 64. One
   * is made with the heap, the others as threads first need them; an
   * arena takes of the heap's memory only the slabs it uses (under the
   * bump policy, where all are made with the heap, 2 MiB each for good),
   * and jemalloc's metadata for it (2 MiB or more) from ordinary memory,
   * outside the heap's. */
  unsigned arenas;
  bool prefault;  /* touch every page of the region at creation */
  bool lock;      /* mlock the region */
  bool hugepages; /* ask for transparent huge pages (madvise MADV_HUGEPAGE) */
  /* prefault, lock and hugepages apply to the local provider only. */
  const pinheap_provider *provider; /* NULL: the local provider (SIMPLE: always) */
  /* FIXED: when size cannot be had, retry with sizes an eighth smaller each
   * time down to this many bytes (0: no retry); stats.capacity tells what
   * was obtained. */
  size_t min_size;
  /* DYNAMIC and SIMPLE: registered chunks are this big (rounded up to 2 MiB;
   * default 64 MiB); blocks of at least direct_threshold bytes (default
   * 8 MiB) get a registration of their own, given back when they are freed.
   * realloc growing such a block moves it into a registration half as big
   * again as its old one (as the cap allows), which the next steps fill in
   * place: growth by steps costs O(total bytes). */
  size_t chunk_size;
  size_t direct_threshold;
  /* Debugging aids: PINHEAP_DEBUG_* flags or'ed together; 0 (the default)
   * for none. With any of them pinheap_destroy also lists the blocks still
   * live. They cost time and memory: see the README. */
  unsigned debug;
  /* PINHEAP_DEBUG_QUARANTINE: the most bytes of freed direct blocks kept
   * registered at once (default 256 MiB). An addition to the contract. */
  size_t quarantine;
  /* A file the heap's first ENOMEM writes its report to (pinheap_report,
   * with the request that failed), and a picture of the region to the same
   * name with ".svg" added; "%p" in it stands for the process id. NULL
   * (the default): no report. The heap keeps a copy. An addition to the
   * contract. */
  const char *oom_report;
  /* The ring policy: extents of at least this many bytes go round the ring
   * (raised to small_extent_max plus a page when below it). 0 (the
   * default): a 32nd of the region (FIXED), of chunk_size (DYNAMIC). An
   * addition to the contract. */
  size_t ring_min;
  /* DYNAMIC and SIMPLE: a freed direct block keeps its registration in a
   * cache of at most direct_cache bytes (default 256 MiB) and
   * direct_cache_blocks blocks (default 16, at most 1024), and a later
   * direct block of the same size, or up to a quarter smaller, takes it
   * over without asking the provider; the oldest go back past either
   * bound, every one before an allocation fails for want of memory, at
   * pinheap_trim and pinheap_destroy. Either 0: no cache. Cached bytes
   * count in capacity and free_bytes, not in_use. An addition to the
   * contract. */
  size_t direct_cache;
  unsigned direct_cache_blocks;
} pinheap_options;

/* pinheap_options.debug. Blocks are checked when freed (and reallocated);
 * a broken check prints the pointer, the block's size and what was found,
 * and aborts. pinheap_check also checks the live large blocks' canaries and
 * the poison of every freed block the thread caches hold. */
/* Canary bytes after every block (at least 8, in the slack of its size
 * class or page rounding, which grows by 16 bytes), and a record of its
 * size: an overflow, or a free of a small object already freed, is caught.
 * pinheap_usable_size then answers the size requested. */
#define PINHEAP_DEBUG_CANARY 1u
/* Freed blocks are filled with PINHEAP_POISON_BYTE (direct blocks excepted:
 * they go back to the provider, the cache of direct registrations, or the
 * quarantine), and a freed block a thread's cache hands out again is
 * checked to be still poisoned: a write after free is caught. */
#define PINHEAP_DEBUG_POISON 2u
/* DYNAMIC and SIMPLE: a freed direct block stays registered, filled with
 * PINHEAP_POISON_BYTE, in a quarantine of at most opts.quarantine bytes
 * (bigger blocks go back at once). It leaves, oldest first, when newer ones
 * need the room, when the heap needs the bytes under its cap, and at
 * pinheap_trim, and is checked then: a late write into it (a remote one
 * too) is reported, naming the block, instead of landing in memory given
 * back. pinheap_check checks the quarantined blocks too, and
 * pinheap_destroy reports those written. */
#define PINHEAP_DEBUG_QUARANTINE 4u
#define PINHEAP_DEBUG_ALL (PINHEAP_DEBUG_CANARY | PINHEAP_DEBUG_POISON | PINHEAP_DEBUG_QUARANTINE)
#define PINHEAP_POISON_BYTE 0xDF

typedef struct pinheap_stats {
  size_t capacity;     /* bytes the heap manages now (FIXED: the region) */
  /* Bytes of extents handed out: slabs, large blocks, and the extents the
   * threads' caches and the arenas keep for reuse until pinheap_trim (up to
   * 16 MiB per thread of freed mid-size blocks; the freed objects a
   * thread's stacks and fronts hold, up to about 4 MiB per thread, and
   * the slabs they lie in; an arena keeps its emptied slabs, FIXED until
   * pinheap_trim or an allocation that finds no room, DYNAMIC and SIMPLE
   * also until jemalloc's decay hands them back over about 1 s of the
   * arena's use): in_use, free_bytes, largest_free and free_extents are
   * exact after pinheap_trim. */
  size_t in_use;
  size_t free_bytes;   /* capacity - in_use */
  size_t largest_free; /* the largest free contiguous extent */
  size_t free_extents; /* how many free extents */
  /* Bytes in live allocations: the sum of pinheap_usable_size over the
   * live blocks (under the debugging aids' canaries, of the blocks they
   * wrap, canaries included), whatever the threads' caches hold, without
   * pinheap_trim. Read without stopping the threads: exact while no other
   * thread is inside a call of the heap; else it may be off by the bytes
   * of the blocks other threads allocate or free while it is read. */
  size_t allocated;
  size_t peak_in_use;  /* high-water mark of in_use */
  /* Fields below are additions to the contract. */
  /* bytes in live large blocks: each its extent's length, the request
   * page-rounded (a block that took a cached extent whole counts the
   * extent) */
  size_t large_allocated;
  size_t large_blocks;    /* live large blocks */
  /* The most bytes the heap has managed at once: FIXED the region, DYNAMIC
   * the high-water mark of registered bytes. An addition to the contract. */
  size_t peak_capacity;
} pinheap_stats;

/* Fills *opts with the defaults: FIXED, 0 bytes (must be set), two-ended. */
void pinheap_options_init(pinheap_options *opts);

/* Returns a new heap, or NULL with errno EINVAL (bad options), ENOMEM (the
 * region or metadata could not be had, or a FIXED region or DYNAMIC cap is
 * smaller than 2 MiB, under the bump policy than 2 MiB per arena and 2 MiB
 * more: the message gives the least size that works), EBUSY (FIXED: the
 * provider serves no other region now), ENOSYS (the jemalloc found does not
 * fit). */
pinheap *pinheap_create(const pinheap_options *opts);

/* The checks of *opts that pinheap_create makes before it takes anything:
 * 0 when they pass, or -1 with errno EINVAL and the text pinheap_create
 * would give. Local, no memory taken: a layer that creates heaps on several
 * processes at once agrees on it before any of them calls pinheap_create. */
int pinheap_options_check(const pinheap_options *opts);

/* Releases the heap and its region. Blocks still live become invalid; when
 * there are any, their count and bytes are reported on stderr. No other
 * thread may be using the heap or exiting after having used it. */
void pinheap_destroy(pinheap *heap);

/* This thread's last failure, in words; "" when there was none. */
const char *pinheap_last_error(void);

/* For providers and layers built over pinheap: sets errno to err and the
 * text pinheap_last_error() returns in this thread. A provider's obtain that
 * fails may call it to say why: the heap's message then ends with that
 * reason instead of strerror(err). */
void pinheap_set_error(int err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The usual meanings. A failure returns NULL with errno ENOMEM, as malloc's
 * does: no room now (the message gives the request, the free bytes and the
 * largest free extent, and for a DYNAMIC heap why it could not grow), or an
 * impossible size, which no state of the heap could hold (larger than a
 * FIXED region or a DYNAMIC heap's cap, beyond the address space, or an
 * overflowing calloc; the message says "impossible size"). EINVAL is for a
 * bad alignment or a NULL heap only. Size 0 for pinheap_malloc is allowed
 * and returns a minimal block. */
void *pinheap_malloc(pinheap *heap, size_t size);
void *pinheap_calloc(pinheap *heap, size_t count, size_t size);
/* ptr NULL: malloc. size 0: frees ptr and returns NULL. On failure ptr is
 * left as it was. Large blocks grow in place when the next extent is free;
 * else (policies other than bump, blocks below a DYNAMIC heap's
 * direct_threshold) the new block is placed as if the old one were free,
 * over its room where that fits best, the contents moved with memmove. */
void *pinheap_realloc(pinheap *heap, void *ptr, size_t size);
/* alignment: a power of two; any size is accepted. */
void *pinheap_aligned_alloc(pinheap *heap, size_t alignment, size_t size);

/* ptr NULL does nothing. A pointer the heap does not own, a large block freed
 * twice or an interior pointer of a large block prints the pointer and
 * aborts. */
void pinheap_free(pinheap *heap, void *ptr);

/* Bytes usable at ptr (at least the size requested). ptr must be live. */
size_t pinheap_usable_size(pinheap *heap, const void *ptr);

/* Whether ptr lies in memory the heap manages (FIXED: the region; DYNAMIC
 * and SIMPLE: its chunks and live direct blocks). */
bool pinheap_owns(const pinheap *heap, const void *ptr);

/* Hands cached free extents back (jemalloc's caches and every thread's cache
 * of this heap), so that the stats show the true free space (in_use,
 * free_bytes, largest_free, free_extents; allocated needs no trim). */
void pinheap_trim(pinheap *heap);

/* Fills *out; returns 0, or -1 with errno EINVAL. */
int pinheap_get_stats(pinheap *heap, pinheap_stats *out);

/* The jemalloc arenas the heap has made so far (*made: they are made as
 * threads first need them) and the most it may make (*most: opts.arenas,
 * or one per CPU, lowered when one could not be made). Returns 0, or -1
 * with errno EINVAL (a NULL argument). An addition to the contract. */
int pinheap_arena_count(const pinheap *heap, unsigned *made, unsigned *most);

/* Walks every invariant of the heap (extent manager, page map, grants,
 * thread caches, regions, counters) and returns how many are broken, each
 * described on stderr with what it expected; 0 for a consistent heap. Takes
 * the heap's locks in turn: meant for debug builds and tests, and exact only
 * while no other thread uses the heap. */
int pinheap_check(pinheap *heap);

/* The registration holding ptr: 0 with *out filled, or -1 with errno EINVAL
 * when ptr is not in memory the heap obtained from its provider (SIMPLE
 * heaps have none). O(1) for a FIXED heap. A block never straddles two
 * registrations. */
int pinheap_region_of(const pinheap *heap, const void *ptr, pinheap_region *out);

/* Sets the fields of *opts named by the environment, leaving the others:
 *   PINHEAP_MODE             simple | dynamic | fixed
 *   PINHEAP_SIZE             bytes, with an optional k, m, g or t suffix
 *                            (powers of 1024), or a percentage of physical
 *                            memory such as 85%
 *   PINHEAP_MIN_SIZE         as PINHEAP_SIZE: the floor of retries
 *   PINHEAP_POLICY           two-ended | bump | ring | first-fit
 *   PINHEAP_LARGE_THRESHOLD, PINHEAP_SMALL_EXTENT_MAX, PINHEAP_CHUNK_SIZE,
 *   PINHEAP_DIRECT_THRESHOLD, PINHEAP_RING_MIN, PINHEAP_DIRECT_CACHE
 *                            as PINHEAP_SIZE
 *   PINHEAP_DIRECT_CACHE_BLOCKS   a count: opts.direct_cache_blocks
 *   PINHEAP_ARENAS           a count
 *   PINHEAP_HUGEPAGES, PINHEAP_PREFAULT, PINHEAP_LOCK   0 | 1 | yes | no |
 *                            true | false | on | off
 *   PINHEAP_DEBUG            as those (every aid, or none), or a comma list
 *                            of canary, poison, quarantine
 *   PINHEAP_QUARANTINE       as PINHEAP_SIZE: opts.quarantine
 *   PINHEAP_OOM_REPORT       a path: opts.oom_report
 * Returns 0, or -1 with errno EINVAL and a pinheap_last_error() text naming
 * the variable and its value; *opts is then unchanged. */
int pinheap_options_from_env(pinheap_options *opts);

/* Bytes in text, read as PINHEAP_SIZE is: digits; or digits, optionally a
 * fraction, then a k, m, g or t suffix (powers of 1024, optionally followed
 * by b or ib), rounded up to a whole byte; or a percentage of physical
 * memory such as 85% or 12.5%, rounded up to a page. For layers over
 * pinheap that read sizes of their own from the environment. Returns 0 with
 * *out set, or -1 with errno EINVAL and a pinheap_last_error() text quoting
 * text (*out unchanged). An addition to the contract. */
int pinheap_parse_size(const char *text, size_t *out);

/* A boolean in text, read as PINHEAP_PREFAULT is: 0, 1, yes, no, true,
 * false, on or off, in any case. For layers over pinheap that read
 * settings of their own from the environment. Returns 0 with *out set, or
 * -1 with errno EINVAL and a pinheap_last_error() text quoting text (*out
 * unchanged). An addition to the contract. */
int pinheap_parse_bool(const char *text, bool *out);

/* For providers: faults in every page of [base, base + size) (page-aligned,
 * read-write, fresh from mmap) before it is registered, as the local
 * provider does with opts.prefault. Returns 0, or an errno value (ENOMEM
 * when the pages cannot be had): a failure is returned, never worked around
 * by touching the pages, as a fault the kernel cannot serve would kill the
 * process. An addition to the contract. */
int pinheap_prefault(void *base, size_t size);

/*
 * What the heap's memory holds, extent by extent, for reports and pictures.
 */
typedef enum pinheap_extent_kind {
  PINHEAP_EXTENT_FREE,     /* free: the heap can place blocks there */
  PINHEAP_EXTENT_LARGE,    /* one large block (above large_threshold) */
  PINHEAP_EXTENT_SLAB,     /* an extent jemalloc, or the fine path, holds for small objects */
  /* jemalloc's metadata of an arena: never reported, as it lies in
   * ordinary memory outside the heap's; kept for source compatibility. */
  PINHEAP_EXTENT_METADATA,
  /* In use, but holding no block: extents thread caches keep for reuse,
   * pieces jemalloc gave back while the rest of their extent is still its
   * own, and (bump policy) extents freed and never reused. */
  PINHEAP_EXTENT_HELD
} pinheap_extent_kind;
#define PINHEAP_EXTENT_KINDS 5

typedef struct pinheap_extent {
  void *addr;
  size_t size; /* a multiple of the page size */
  pinheap_extent_kind kind;
  /* Seconds since the block or extent was handed out (LARGE, SLAB; a
   * LARGE block's to a clock tick, a few ms), -1 for the other kinds. */
  double age;
  /* SLAB: the size of the objects of its first page when known, else 0. */
  size_t object_size;
} pinheap_extent;

/* Calls visit on every extent of the heap's memory in address order: its
 * regions (FIXED: the one region; DYNAMIC and SIMPLE: its chunks, each
 * reported whole; direct blocks, which are mapped one by one, are not
 * reported), so that consecutive extents of one region are adjacent and
 * together cover it. Stops when visit returns non-zero. visit runs with the
 * heap's extent lock held: it must not call into the heap, nor allocate
 * from it. Returns 0, visit's non-zero value, or -1 with errno EINVAL (a
 * NULL argument). */
int pinheap_walk(pinheap *heap, int (*visit)(const pinheap_extent *extent, void *arg), void *arg);

/* A summary of the heap's memory for pictures: its regions laid end to end
 * in address order, cut into n slices of equal length; kinds[i] gets the
 * pinheap_extent_kind covering most bytes of slice i. Returns 0, or -1
 * with errno EINVAL (a NULL argument, n = 0). Does not allocate; the
 * heap's extent lock is held meanwhile. */
int pinheap_slices(pinheap *heap, unsigned char *kinds, size_t n);

/* Writes a report of the heap's memory to out: free bytes, the largest free
 * extents with their addresses, and what lies on either side of each (kind,
 * size, age), so that a reader sees which blocks cut the region into
 * pieces. The report an ENOMEM writes (opts.oom_report) is the same with
 * the request that failed. 0, or -1 with errno EINVAL (NULL) or EIO (out
 * failed). */
int pinheap_report(pinheap *heap, FILE *out);

/* Marks the start of a phase of the program (name: printable text) in the
 * trace `pinheap record` is recording, whose library defines this function;
 * outside a recording it does nothing. */
void pinheap_phase(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* PINHEAP_H */
