/*
 * prov_mpi: the MPI provider (include/pinheap_mpi.h). A library of its own
 * over libpinheap's public API, built once per MPI flavour.
 *
 * Agreement (FIXED): a step that may fail on one rank alone is followed by
 * an MPI_Allreduce of every rank's word (prov_mpi_agree), so that all ranks
 * take the same branch and no rank waits in a collective the others skipped:
 * the options and sizes (pinheap_mpi_heap_create), the region (obtain), the heap
 * (pinheap_mpi_heap_create, after pinheap_create), the window (expose). Under
 * pinheap_mpi_heap_create the window is created only once every rank has its
 * heap, so that a heap that fails after obtaining its region gives it back
 * without a collective, and a rank that failed before obtaining casts the
 * region vote the others wait for.
 *
 * Longer than 600 lines: the provider and the collective heap creation it
 * serves agree step by step (prov_mpi_agree): split, each half would have
 * to restate the other's branches.
 */
#include "pinheap_mpi.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Regions exposed at once by all the providers of a process, at most. */
#define PROV_MPI_MAX_REGIONS ((size_t)1 << 16)

/*
 * A region the provider exposes, or (FIXED, under pinheap_mpi_heap_create)
 * is about to. It is the handle the heap keeps (pinheap_region.handle), so
 * that locate finds the window and the displacement without a lookup.
 *
 * Invariants: owner is NULL exactly while the record is free, and then it
 * is on prov_mpi_free once. A used record: base is page-aligned and size a
 * positive multiple of the page size; win is MPI_WIN_NULL exactly while the
 * region is pending (obtained, not exposed yet); disp0 is the displacement
 * of base in win: 0 (FIXED, the region's own window) or MPI_Get_address(base)
 * (DYNAMIC, the provider's window); the record is in its owner's list exactly
 * while the region is exposed.
 */
typedef struct prov_mpi_reg {
  pinheap_mpi *owner;
  char *base;
  size_t size;
  MPI_Win win;
  MPI_Aint disp0;
  struct prov_mpi_reg *prev, *next; /* the owner's list; next: the free list */
} prov_mpi_reg;

/*
 * Every provider's records, in one table of the process that is never given
 * back (untouched entries cost no memory), so that pinheap_mpi_locate, which
 * has no provider to ask, tells a record from any other handle by its
 * address alone, and so that obtain never calls malloc from inside jemalloc.
 * Invariants: prov_mpi_table[0, prov_mpi_used) were handed out, each used or
 * on prov_mpi_free; prov_mpi_records_lock guards both; owner changes under
 * it too, atomically, so that locate reads it without the lock.
 */
static prov_mpi_reg prov_mpi_table[PROV_MPI_MAX_REGIONS];
static size_t prov_mpi_used;
static prov_mpi_reg *prov_mpi_free;
static pthread_mutex_t prov_mpi_records_lock = PTHREAD_MUTEX_INITIALIZER;

/* A rank's word in an agreement; every rank learns the lowest. */
enum {
  PROV_MPI_FAILED,  /* failed, and will not retry (no window on this rank) */
  PROV_MPI_REFUSED, /* cannot go on with this step (region: a smaller one may do) */
  PROV_MPI_OK
};

/*
 * Invariants: comm is a duplicate of the caller's communicator that returns
 * its errors; regs lists the exposed regions, stats.regions of them,
 * stats.bytes in all; stats.regions == stats.obtained - stats.released -
 * stats.unreleased. DYNAMIC: win is the dynamic window, every region's
 * window. FIXED: at most one region exposed or pending, not both; win is the
 * exposed one's window, else MPI_WIN_NULL; fixed_busy is set while a region
 * is exposed, pending or being obtained. deferring, voted, gave_up and
 * pending belong to a pinheap_mpi_heap_create in progress (FIXED): outside
 * one, deferring and voted are false, gave_up is -1, pending NULL. lock
 * guards everything that changes after create; DYNAMIC attach and detach
 * run under it.
 */
struct pinheap_mpi {
  pinheap_provider provider; /* ctx: this */
  pinheap_mode mode;
  MPI_Comm comm;
  MPI_Info info;       /* for every window, or MPI_INFO_NULL */
  MPI_Errhandler errh; /* every window's (prov_mpi_win_error) */
  MPI_Win win;
  int rank, nranks;
  bool funneled; /* below MPI_THREAD_SERIALIZED: DYNAMIC attaches and detaches from main only */
  pthread_t main; /* the thread that created the provider (MPI's main thread then) */
  bool prefault;
  size_t page;
  pthread_mutex_t lock;
  prov_mpi_reg *regs;
  bool fixed_busy;
  bool deferring;        /* obtain agrees on the region, the window waits */
  bool voted;            /* obtain has cast its region vote */
  int gave_up;           /* a rank that failed before its region vote, or -1 */
  prov_mpi_reg *pending; /* the region obtained, not exposed yet */
  pinheap_mpi_stats stats;
};

/* Set while this thread makes the provider's own calls on a window, whose
 * errors are then returned to it; the caller's errors stay fatal. */
static _Thread_local bool prov_mpi_returning;

static void prov_mpi_win_error(MPI_Win *win, int *code, ...) {
  (void)win;
  if (prov_mpi_returning) return;
  char words[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(*code, words, &len);
  fprintf(stderr, "pinheap_mpi: an MPI call on a heap's window failed: %s\n", words);
  MPI_Abort(MPI_COMM_WORLD, *code);
}

/* Sets errno to err and the text to the formatted context, a colon and
 * MPI's words for code. */
__attribute__((format(printf, 3, 4))) static void prov_mpi_fail(int err, int code, const char *fmt, ...) {
  char what[256], words[MPI_MAX_ERROR_STRING];
  int len = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (MPI_Error_string(code, words, &len) != MPI_SUCCESS) snprintf(words, sizeof words, "MPI error %d", code);
  pinheap_set_error(err, "%s: %s", what, words);
}

/* One agreement over the provider's communicator (collective): every rank
 * gives its word and learns the lowest, and the lowest rank that gave it.
 * A failed MPI_Allreduce counts as this rank's PROV_MPI_FAILED; its code is
 * returned. */
static int prov_mpi_agree(pinheap_mpi *pm, int word, int *low, int *who) {
  struct {
    int word, rank;
  } mine = {word, pm->rank}, all = mine;
  int rc = MPI_Allreduce(&mine, &all, 1, MPI_2INT, MPI_MINLOC, pm->comm);
  *low = rc == MPI_SUCCESS ? all.word : PROV_MPI_FAILED;
  *who = rc == MPI_SUCCESS ? all.rank : pm->rank;
  return rc;
}

/* A free record for pm, or NULL when the table is full. */
static prov_mpi_reg *prov_mpi_record_take(pinheap_mpi *pm) {
  pthread_mutex_lock(&prov_mpi_records_lock);
  prov_mpi_reg *r = prov_mpi_free;
  if (r)
    prov_mpi_free = r->next;
  else if (prov_mpi_used < PROV_MPI_MAX_REGIONS)
    r = &prov_mpi_table[prov_mpi_used++];
  if (r) {
    r->base = NULL;
    r->size = 0;
    r->win = MPI_WIN_NULL;
    r->disp0 = 0;
    r->prev = r->next = NULL;
    __atomic_store_n(&r->owner, pm, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&prov_mpi_records_lock);
  return r;
}

static void prov_mpi_record_put(prov_mpi_reg *r) {
  pthread_mutex_lock(&prov_mpi_records_lock);
  __atomic_store_n(&r->owner, NULL, __ATOMIC_RELEASE);
  r->next = prov_mpi_free;
  prov_mpi_free = r;
  pthread_mutex_unlock(&prov_mpi_records_lock);
}

/* The used record handle is, or NULL when it is none. */
static const prov_mpi_reg *prov_mpi_record_of(const void *handle) {
  uintptr_t first = (uintptr_t)prov_mpi_table, h = (uintptr_t)handle;
  if (h < first || h >= (uintptr_t)(prov_mpi_table + PROV_MPI_MAX_REGIONS) || (h - first) % sizeof(prov_mpi_reg))
    return NULL;
  const prov_mpi_reg *r = handle;
  return __atomic_load_n(&r->owner, __ATOMIC_ACQUIRE) ? r : NULL;
}

/* size bytes aligned to align, reserved without committing swap; NULL with
 * errno when they cannot be had. */
static char *prov_mpi_map(size_t size, size_t align) {
  size_t span = size + align;
  if (span < size) {
    errno = ENOMEM;
    return NULL;
  }
  char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  /* Keep the aligned middle, give back the ends. */
  char *base = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
  if (base > raw) munmap(raw, (size_t)(base - raw));
  size_t tail = (size_t)(raw + span - (base + size));
  if (tail) munmap(base + size, tail);
  return base;
}

/* Maps (and prefaults) a region into a new record: the record, or NULL with
 * why[0, len) saying what failed. */
static prov_mpi_reg *prov_mpi_new_region(pinheap_mpi *pm, size_t size, size_t align, char *why, size_t len) {
  prov_mpi_reg *r = prov_mpi_record_take(pm);
  if (!r) {
    snprintf(why, len, "more than %zu regions at once in the process", PROV_MPI_MAX_REGIONS);
    return NULL;
  }
  r->base = prov_mpi_map(size, align);
  int err = r->base ? 0 : errno;
  if (r->base && pm->prefault && (err = pinheap_prefault(r->base, size)) != 0) munmap(r->base, size);
  if (err) {
    snprintf(why, len, "%s: %s", r->base ? "prefault (MADV_POPULATE_WRITE)" : "mmap", strerror(err));
    prov_mpi_record_put(r);
    return NULL;
  }
  r->size = size;
  return r;
}

/* Records a region as exposed; lock held. */
static void prov_mpi_link(pinheap_mpi *pm, prov_mpi_reg *r) {
  r->prev = NULL;
  r->next = pm->regs;
  if (pm->regs) pm->regs->prev = r;
  pm->regs = r;
  pm->stats.regions++;
  pm->stats.bytes += r->size;
  pm->stats.obtained++;
}

/* Forgets an exposed region: released, or left to MPI (unreleased); lock
 * held. */
static void prov_mpi_unlink(pinheap_mpi *pm, prov_mpi_reg *r, bool released) {
  if (r->prev)
    r->prev->next = r->next;
  else
    pm->regs = r->next;
  if (r->next) r->next->prev = r->prev;
  pm->stats.regions--;
  pm->stats.bytes -= r->size;
  if (released)
    pm->stats.released++;
  else
    pm->stats.unreleased++;
}

/*
 * FIXED: creates r's window (collective) and agrees that every rank has it
 * with the provider's error handler; returns 0 with r->win set, or ENOMEM
 * with the error set and no window kept: when every rank created one, all
 * free it; when some rank could not, the others cannot free theirs alone
 * and leave it to MPI.
 */
static int prov_mpi_expose(pinheap_mpi *pm, prov_mpi_reg *r) {
  MPI_Win win = MPI_WIN_NULL;
  int rc = MPI_Win_create(r->base, (MPI_Aint)r->size, 1, pm->info, pm->comm, &win);
  bool created = rc == MPI_SUCCESS;
  if (created) rc = MPI_Win_set_errhandler(win, pm->errh);
  int word = rc == MPI_SUCCESS ? PROV_MPI_OK : created ? PROV_MPI_REFUSED : PROV_MPI_FAILED;
  if (rc != MPI_SUCCESS)
    prov_mpi_fail(ENOMEM, rc, "%s of %zu bytes on rank %d of %d (every rank gives up)",
                  created ? "MPI_Win_set_errhandler" : "MPI_Win_create", r->size, pm->rank, pm->nranks);
  int low, who;
  int arc = prov_mpi_agree(pm, word, &low, &who);
  if (low == PROV_MPI_OK) {
    r->win = win;
    return 0;
  }
  if (arc != MPI_SUCCESS)
    prov_mpi_fail(ENOMEM, arc, "MPI_Allreduce (agreeing on the window of a %zu-byte region)", r->size);
  else if (word == PROV_MPI_OK)
    pinheap_set_error(ENOMEM, "rank %d of %d cannot create the window of its region; every rank gives up", who,
                      pm->nranks);
  if (created && low == PROV_MPI_REFUSED) {
    prov_mpi_returning = true;
    MPI_Win_free(&win);
    prov_mpi_returning = false;
  }
  return ENOMEM;
}

/*
 * FIXED: map (and prefault), agree, then expose. Every rank learns whether
 * all could map, and the lowest rank that could not, so that all fail
 * together or all go on: a rank-local failure never leaves the others
 * waiting in MPI_Win_create. Under pinheap_mpi_heap_create (deferring) the
 * region stays pending and the window waits for every rank's heap.
 */
static int prov_mpi_obtain_fixed(pinheap_mpi *pm, size_t size, size_t align, void **base, void **handle) {
  pthread_mutex_lock(&pm->lock);
  bool busy = pm->fixed_busy;
  int gave_up = pm->gave_up;
  if (busy || gave_up >= 0)
    pm->stats.refused++;
  else
    pm->fixed_busy = true;
  pthread_mutex_unlock(&pm->lock);
  if (busy) {
    /* Without the collective: every rank is busy alike, or the heaps are
     * already out of step (pinheap_mpi_heap_create then votes for it). */
    pinheap_set_error(EBUSY, "provider %s already exposes a FIXED heap's region (one at a time)", pm->provider.name);
    return EBUSY;
  }
  if (gave_up >= 0) {
    /* A retry after a rank failed outright: every rank fails alike. */
    pinheap_set_error(ENOMEM, "rank %d of %d could not create its heap; every rank gives up", gave_up, pm->nranks);
    return ENOMEM;
  }
  char why[128] = "";
  prov_mpi_reg *r = prov_mpi_new_region(pm, size, align, why, sizeof why);
  int low, who;
  int rc = prov_mpi_agree(pm, r ? PROV_MPI_OK : PROV_MPI_REFUSED, &low, &who);
  pthread_mutex_lock(&pm->lock);
  if (pm->deferring) {
    pm->voted = true;
    if (low == PROV_MPI_FAILED && rc == MPI_SUCCESS) pm->gave_up = who;
  }
  pthread_mutex_unlock(&pm->lock);
  int err = 0;
  if (rc != MPI_SUCCESS) {
    prov_mpi_fail(ENOMEM, rc, "MPI_Allreduce (agreeing on a region of %zu bytes)", size);
    err = ENOMEM;
  } else if (low == PROV_MPI_FAILED) {
    pinheap_set_error(ENOMEM, "rank %d of %d could not create its heap; every rank gives up", who, pm->nranks);
    err = ENOMEM;
  } else if (low == PROV_MPI_REFUSED) {
    if (r)
      pinheap_set_error(ENOMEM, "rank %d of %d cannot map its region; every rank gives up", who, pm->nranks);
    else
      pinheap_set_error(ENOMEM, "rank %d of %d cannot map %zu bytes (%s); every rank gives up", pm->rank, pm->nranks,
                        size, why);
    err = ENOMEM;
  } else if (!pm->deferring) {
    err = prov_mpi_expose(pm, r);
  }
  if (err) {
    if (r) {
      munmap(r->base, r->size);
      prov_mpi_record_put(r);
    }
    pthread_mutex_lock(&pm->lock);
    pm->fixed_busy = false;
    pm->stats.refused++;
    pthread_mutex_unlock(&pm->lock);
    return err;
  }
  pthread_mutex_lock(&pm->lock);
  if (pm->deferring) {
    pm->pending = r;
  } else {
    prov_mpi_link(pm, r);
    pm->win = r->win;
  }
  pthread_mutex_unlock(&pm->lock);
  *base = r->base;
  *handle = r;
  return 0;
}

/* DYNAMIC, lock held: whether this thread may call MPI; if not, the error
 * says so. */
static bool prov_mpi_thread_ok(const pinheap_mpi *pm, const char *call) {
  if (!pm->funneled || pthread_equal(pthread_self(), pm->main)) return true;
  pinheap_set_error(ENOMEM,
                    "%s from a thread other than the one that created provider %s: MPI was initialized below "
                    "MPI_THREAD_SERIALIZED",
                    call, pm->provider.name);
  return false;
}

/* DYNAMIC: map and attach; local. */
static int prov_mpi_obtain_dynamic(pinheap_mpi *pm, size_t size, size_t align, void **base, void **handle) {
  char why[128] = "";
  prov_mpi_reg *r = prov_mpi_new_region(pm, size, align, why, sizeof why);
  int rc = MPI_SUCCESS;
  pthread_mutex_lock(&pm->lock);
  bool allowed = prov_mpi_thread_ok(pm, "MPI_Win_attach");
  if (r && allowed) {
    r->win = pm->win;
    rc = MPI_Get_address(r->base, &r->disp0);
    prov_mpi_returning = true;
    if (rc == MPI_SUCCESS) rc = MPI_Win_attach(pm->win, r->base, (MPI_Aint)size);
    prov_mpi_returning = false;
    if (rc == MPI_SUCCESS) prov_mpi_link(pm, r);
  }
  bool ok = r && allowed && rc == MPI_SUCCESS;
  if (!ok) pm->stats.refused++;
  pthread_mutex_unlock(&pm->lock);
  if (ok) {
    *base = r->base;
    *handle = r;
    return 0;
  }
  if (!r)
    pinheap_set_error(ENOMEM, "cannot map %zu bytes: %s", size, why);
  else if (rc != MPI_SUCCESS)
    prov_mpi_fail(ENOMEM, rc,
                  "MPI_Win_attach of %zu bytes (some MPIs cap the regions attached: larger chunks need fewer)", size);
  if (r) {
    munmap(r->base, size);
    prov_mpi_record_put(r);
  }
  return ENOMEM;
}

static int prov_mpi_obtain(void *ctx, size_t size, size_t align, void **base, void **handle) {
  pinheap_mpi *pm = ctx;
  return pm->mode == PINHEAP_FIXED ? prov_mpi_obtain_fixed(pm, size, align, base, handle)
                                   : prov_mpi_obtain_dynamic(pm, size, align, base, handle);
}

/* FIXED: MPI_Win_free (collective, so outside the lock), or for a region
 * still pending nothing but the unmapping; DYNAMIC: detach. A region MPI
 * did not let go of stays mapped (a peer may still reach it) and counts as
 * unreleased. */
static int prov_mpi_release(void *ctx, void *base, size_t size, void *handle) {
  pinheap_mpi *pm = ctx;
  prov_mpi_reg *r = handle;
  int rc = MPI_SUCCESS;
  bool allowed = true;
  const char *call;
  if (pm->mode == PINHEAP_FIXED) {
    call = "MPI_Win_free";
    if (r->win != MPI_WIN_NULL) {
      prov_mpi_returning = true;
      rc = MPI_Win_free(&r->win);
      prov_mpi_returning = false;
    }
    pthread_mutex_lock(&pm->lock);
    if (pm->pending == r) {
      pm->pending = NULL;
      pm->stats.refused++;
    } else {
      prov_mpi_unlink(pm, r, rc == MPI_SUCCESS);
    }
    pm->win = MPI_WIN_NULL;
    pm->fixed_busy = false;
    pthread_mutex_unlock(&pm->lock);
  } else {
    call = "MPI_Win_detach";
    pthread_mutex_lock(&pm->lock);
    allowed = prov_mpi_thread_ok(pm, call);
    if (allowed) {
      prov_mpi_returning = true;
      rc = MPI_Win_detach(pm->win, base);
      prov_mpi_returning = false;
    }
    prov_mpi_unlink(pm, r, allowed && rc == MPI_SUCCESS);
    pthread_mutex_unlock(&pm->lock);
  }
  prov_mpi_record_put(r);
  if (!allowed || rc != MPI_SUCCESS) {
    /* The heap forgets the region whatever is returned: say it here. */
    if (allowed) prov_mpi_fail(EIO, rc, "%s of a %zu-byte region at %p (left mapped)", call, size, base);
    fprintf(stderr, "pinheap_mpi: %s%s\n", pinheap_last_error(), allowed ? "" : " (the region stays attached and mapped)");
    errno = EIO;
    return EIO;
  }
  munmap(base, size);
  return 0;
}

static int prov_mpi_allgather(void *ctx, const void *in, void *out, size_t len) {
  pinheap_mpi *pm = ctx;
  if (len > INT_MAX) {
    pinheap_set_error(EINVAL, "allgather of %zu bytes: more than MPI_Allgather counts", len);
    return EINVAL;
  }
  int rc = MPI_Allgather(in, (int)len, MPI_BYTE, out, (int)len, MPI_BYTE, pm->comm);
  if (rc != MPI_SUCCESS) {
    prov_mpi_fail(EIO, rc, "MPI_Allgather of %zu bytes", len);
    return EIO;
  }
  return 0;
}

/* Frees what the provider holds of MPI's, whatever create got to; collective. */
static void prov_mpi_close(pinheap_mpi *pm) {
  if (pm->mode == PINHEAP_DYNAMIC && pm->win != MPI_WIN_NULL) {
    prov_mpi_returning = true;
    MPI_Win_free(&pm->win);
    prov_mpi_returning = false;
  }
  if (pm->errh != MPI_ERRHANDLER_NULL) MPI_Errhandler_free(&pm->errh);
  if (pm->info != MPI_INFO_NULL) MPI_Info_free(&pm->info);
  if (pm->comm != MPI_COMM_NULL) MPI_Comm_free(&pm->comm);
  pthread_mutex_destroy(&pm->lock);
  free(pm);
}

/* The MPI this library was compiled against, and its ABI family: Open
 * MPI's handles are pointers to its objects, MPICH's (and those of the MPIs
 * that share its ABI: Intel MPI, MVAPICH, Cray MPICH) are integers. */
#define PROV_MPI_STR2(x) #x
#define PROV_MPI_STR(x) PROV_MPI_STR2(x)
#if defined(OPEN_MPI)
#define PROV_MPI_BUILT_FOR                                                                 \
  "Open MPI " PROV_MPI_STR(OMPI_MAJOR_VERSION) "." PROV_MPI_STR(OMPI_MINOR_VERSION) "." \
      PROV_MPI_STR(OMPI_RELEASE_VERSION)
#define PROV_MPI_OPEN_MPI 1
#elif defined(MPICH)
#define PROV_MPI_BUILT_FOR "MPICH " MPICH_VERSION
#define PROV_MPI_OPEN_MPI 0
#endif
#ifndef PINHEAP_MPI_FLAVOUR
#define PINHEAP_MPI_FLAVOUR "?"
#endif

/*
 * Whether the MPI this library's calls reach is of the family it was
 * compiled for. A program built with one MPI's wrapper that links the
 * provider built for the other loads both MPIs, and every call of this
 * library then reaches the program's MPI with the other's handles and
 * constants (MPICH answers "Invalid errhandler", Open MPI crashes).
 * MPI_Get_library_version has the same signature in both and may be called
 * before MPI_Init; its buffer is sized for the larger of the two maxima
 * (MPICH's 8192, Open MPI's 256), whichever MPI answers. On a mismatch the
 * error names both libraries.
 */
static bool prov_mpi_same_abi(void) {
#ifdef PROV_MPI_BUILT_FOR
  static char version[16384];
  int len = 0;
  if (MPI_Get_library_version(version, &len) != MPI_SUCCESS) return true; /* nothing to compare: let MPI say */
  version[len > 0 && (size_t)len < sizeof version ? (size_t)len : sizeof version - 1] = '\0';
  bool open_mpi = strstr(version, "Open MPI") != NULL;
  if (open_mpi == PROV_MPI_OPEN_MPI) return true;
  version[strcspn(version, "\n,")] = '\0';
  for (char *c = version; *c; c++)
    if (*c == '\t') *c = ' ';
  Dl_info mine = {0}, theirs = {0};
  dladdr((void *)pinheap_mpi_create, &mine);
  dladdr((void *)MPI_Get_library_version, &theirs);
  pinheap_set_error(EINVAL,
                    "pinheap_mpi_create: libpinheap-mpi-" PINHEAP_MPI_FLAVOUR " (%s) was built for " PROV_MPI_BUILT_FOR
                    ", but this program's MPI calls reach %s (%s), whose handles and constants differ: link "
                    "libpinheap-mpi-%s, the provider built for the program's MPI",
                    mine.dli_fname ? mine.dli_fname : "?", version, theirs.dli_fname ? theirs.dli_fname : "?",
                    open_mpi ? "openmpi" : "mpich");
  return false;
#else
  return true; /* neither family: nothing to compare with */
#endif
}

/* In pinheap_mpi_create: on a failed call, to its failure path with the
 * call's name. */
#define PROV_MPI_TRY(fn, ...)                    \
  do {                                           \
    if ((rc = fn(__VA_ARGS__)) != MPI_SUCCESS) { \
      call = #fn;                                \
      goto fail;                                 \
    }                                            \
  } while (0)

pinheap_mpi *pinheap_mpi_create(MPI_Comm comm, pinheap_mode mode, const pinheap_mpi_options *opts) {
  if (!prov_mpi_same_abi()) return NULL; /* before any call that passes a handle */
  int up = 0, down = 0;
  MPI_Initialized(&up);
  MPI_Finalized(&down);
  if (!up || down) {
    pinheap_set_error(EINVAL, "pinheap_mpi_create: MPI is %s", down ? "finalized" : "not initialized");
    return NULL;
  }
  if (comm == MPI_COMM_NULL || (mode != PINHEAP_FIXED && mode != PINHEAP_DYNAMIC)) {
    pinheap_set_error(EINVAL, "pinheap_mpi_create: %s",
                      comm == MPI_COMM_NULL ? "the communicator is MPI_COMM_NULL"
                                            : "the mode must be PINHEAP_FIXED or PINHEAP_DYNAMIC");
    return NULL;
  }
  pinheap_mpi *pm = calloc(1, sizeof *pm);
  if (!pm) {
    pinheap_set_error(ENOMEM, "pinheap_mpi_create: no memory");
    return NULL;
  }
  pm->provider = (pinheap_provider){.name = "mpi", .ctx = pm, .obtain = prov_mpi_obtain, .release = prov_mpi_release};
  pm->mode = mode;
  pm->comm = MPI_COMM_NULL;
  pm->info = MPI_INFO_NULL;
  pm->errh = MPI_ERRHANDLER_NULL;
  pm->win = MPI_WIN_NULL;
  pm->main = pthread_self();
  pm->gave_up = -1;
  pm->prefault = opts && opts->prefault;
  pm->page = (size_t)sysconf(_SC_PAGESIZE);
  pthread_mutex_init(&pm->lock, NULL);
  int rc, level = MPI_THREAD_SINGLE;
  const char *call;
  PROV_MPI_TRY(MPI_Query_thread, &level);
  pm->funneled = level < MPI_THREAD_SERIALIZED;
  PROV_MPI_TRY(MPI_Comm_dup, comm, &pm->comm);
  PROV_MPI_TRY(MPI_Comm_set_errhandler, pm->comm, MPI_ERRORS_RETURN);
  PROV_MPI_TRY(MPI_Comm_rank, pm->comm, &pm->rank);
  PROV_MPI_TRY(MPI_Comm_size, pm->comm, &pm->nranks);
  if (opts && opts->info != MPI_INFO_NULL) PROV_MPI_TRY(MPI_Info_dup, opts->info, &pm->info);
  PROV_MPI_TRY(MPI_Win_create_errhandler, prov_mpi_win_error, &pm->errh);
  if (mode == PINHEAP_DYNAMIC) {
    PROV_MPI_TRY(MPI_Win_create_dynamic, pm->info, pm->comm, &pm->win);
    PROV_MPI_TRY(MPI_Win_set_errhandler, pm->win, pm->errh);
  }
  return pm;
fail:
  prov_mpi_fail(EIO, rc, "pinheap_mpi_create: %s", call);
  prov_mpi_close(pm);
  errno = EIO;
  return NULL;
}

int pinheap_mpi_destroy(pinheap_mpi *pm) {
  if (!pm) return 0;
  pthread_mutex_lock(&pm->lock);
  size_t regions = pm->stats.regions, bytes = pm->stats.bytes;
  pthread_mutex_unlock(&pm->lock);
  /* Every rank frees the windows or none: one with a live heap keeps the
   * provider on all. */
  int low, who;
  int rc = prov_mpi_agree(pm, regions ? PROV_MPI_FAILED : PROV_MPI_OK, &low, &who);
  if (rc != MPI_SUCCESS) {
    prov_mpi_fail(EIO, rc, "pinheap_mpi_destroy: MPI_Allreduce (agreeing that no heap is live)");
    return -1;
  }
  if (low != PROV_MPI_OK) {
    if (regions)
      pinheap_set_error(EBUSY,
                        "pinheap_mpi_destroy: %zu region(s) of %zu bytes are still obtained by a heap: destroy the "
                        "heap first; the provider is left as it was",
                        regions, bytes);
    else
      pinheap_set_error(EBUSY,
                        "pinheap_mpi_destroy: rank %d still has a heap on the provider: destroy it first; the provider "
                        "is left as it was",
                        who);
    return -1;
  }
  prov_mpi_close(pm);
  return 0;
}

/* pinheap_mpi_heap_create's first step: this rank's options, checked as
 * pinheap_create would, with the provider's mode; o gets them with the
 * provider set. */
static bool prov_mpi_options_ok(const pinheap_mpi *pm, const pinheap_options *opts, pinheap_options *o) {
  if (!opts) return pinheap_options_check(NULL) == 0;
  *o = *opts;
  o->provider = &pm->provider;
  if (pinheap_options_check(o) != 0) return false;
  if (o->mode == pm->mode) return true;
  pinheap_set_error(EINVAL, "pinheap_mpi_heap_create: the heap's mode is not its provider's (%s)",
                    pm->mode == PINHEAP_FIXED ? "PINHEAP_FIXED" : "PINHEAP_DYNAMIC");
  return false;
}

/* pinheap_mpi_heap_create's first agreement (collective): whether every
 * rank's options are good (good: this rank's, o), and, FIXED, whether
 * min_size retries can stay in step: every rank asks the same size and
 * min_size, or none retries. Otherwise the error is set: EINVAL, or EIO when
 * MPI_Allreduce failed. One MPI_MAX over the lowest bad rank (as nranks -
 * rank) and the sizes, each also complemented to learn its minimum. */
static bool prov_mpi_agree_options(pinheap_mpi *pm, bool good, const pinheap_options *o) {
  uint64_t mine[5] = {good ? 0 : (uint64_t)(pm->nranks - pm->rank)}, all[5];
  if (good && pm->mode == PINHEAP_FIXED) {
    mine[1] = o->size;
    mine[2] = o->min_size;
    mine[3] = ~(uint64_t)o->size;
    mine[4] = ~(uint64_t)o->min_size;
  }
  int rc = MPI_Allreduce(mine, all, 5, MPI_UINT64_T, MPI_MAX, pm->comm);
  if (rc != MPI_SUCCESS) {
    prov_mpi_fail(EIO, rc, "pinheap_mpi_heap_create: MPI_Allreduce (agreeing on the options)");
    return false;
  }
  if (all[0]) {
    if (good)
      pinheap_set_error(EINVAL, "pinheap_mpi_heap_create: rank %d of %d has bad options; every rank gives up",
                        pm->nranks - (int)all[0], pm->nranks);
    return false;
  }
  if (all[2] && (all[1] != ~all[3] || all[2] != ~all[4])) {
    pinheap_set_error(EINVAL,
                      "pinheap_mpi_heap_create: with min_size, every rank must ask the same size and min_size, "
                      "so that the retries stay in step (sizes %llu to %llu, min_size %llu to %llu)",
                      (unsigned long long)~all[3], (unsigned long long)all[1], (unsigned long long)~all[4],
                      (unsigned long long)all[2]);
    return false;
  }
  return true;
}

pinheap *pinheap_mpi_heap_create(pinheap_mpi *pm, const pinheap_options *opts) {
  if (!pm) {
    pinheap_set_error(EINVAL, "pinheap_mpi_heap_create: the provider is NULL");
    return NULL;
  }
  pinheap_options o;
  if (!prov_mpi_agree_options(pm, prov_mpi_options_ok(pm, opts, &o), &o)) return NULL;
  int low, who;
  bool fixed = pm->mode == PINHEAP_FIXED;
  if (fixed) {
    pthread_mutex_lock(&pm->lock);
    pm->deferring = true;
    pthread_mutex_unlock(&pm->lock);
  }
  pinheap *heap = pinheap_create(&o);
  int err = errno;
  if (fixed) {
    pthread_mutex_lock(&pm->lock);
    bool voted = pm->voted;
    pm->deferring = pm->voted = false;
    pm->gave_up = -1;
    pthread_mutex_unlock(&pm->lock);
    /* Failed before obtain voted on a region: the vote the others wait for. */
    if (!heap && !voted) prov_mpi_agree(pm, PROV_MPI_FAILED, &low, &who);
  }
  int rc = prov_mpi_agree(pm, heap ? PROV_MPI_OK : PROV_MPI_FAILED, &low, &who);
  if (low != PROV_MPI_OK) {
    if (!heap) {
      errno = err; /* this rank's own reason stands */
      return NULL;
    }
    pinheap_destroy(heap);
    if (rc != MPI_SUCCESS)
      prov_mpi_fail(EIO, rc, "pinheap_mpi_heap_create: MPI_Allreduce (agreeing on the heaps)");
    else
      pinheap_set_error(ENOMEM, "pinheap_mpi_heap_create: rank %d of %d could not create its heap; every rank gives up",
                        who, pm->nranks);
    return NULL;
  }
  if (!fixed) return heap;
  pthread_mutex_lock(&pm->lock);
  prov_mpi_reg *r = pm->pending;
  pthread_mutex_unlock(&pm->lock);
  if (prov_mpi_expose(pm, r) != 0) {
    char why[512];
    snprintf(why, sizeof why, "%s", pinheap_last_error());
    pinheap_destroy(heap);
    pinheap_set_error(ENOMEM, "pinheap_mpi_heap_create: %s", why);
    return NULL;
  }
  pthread_mutex_lock(&pm->lock);
  pm->pending = NULL;
  prov_mpi_link(pm, r);
  pm->win = r->win;
  pthread_mutex_unlock(&pm->lock);
  return heap;
}

const pinheap_provider *pinheap_mpi_provider(pinheap_mpi *pm) { return pm ? &pm->provider : NULL; }

MPI_Win pinheap_mpi_window(const pinheap_mpi *pm) { return pm ? pm->win : MPI_WIN_NULL; }

int pinheap_mpi_locate(const pinheap *heap, const void *ptr, pinheap_mpi_addr *out) {
  pinheap_region reg;
  if (!out) {
    pinheap_set_error(EINVAL, "pinheap_mpi_locate: out is NULL");
    return -1;
  }
  if (pinheap_region_of(heap, ptr, &reg) != 0) return -1;
  const prov_mpi_reg *r = prov_mpi_record_of(reg.handle);
  if (!r || r->base != reg.base || r->win == MPI_WIN_NULL) {
    pinheap_set_error(EINVAL, "pinheap_mpi_locate(%p): the heap's memory is not from an MPI provider", ptr);
    return -1;
  }
  out->win = r->win;
  out->disp = MPI_Aint_add(r->disp0, (MPI_Aint)((const char *)ptr - r->base));
  return 0;
}

/* What pinheap_mpi_sym_create gathers of each rank's block: its
 * displacement in the window, and that rank's handle of the window (the
 * same window on every rank, each rank with a handle of its own: a reader
 * takes the displacement of the target's entry and the window of its own). */
typedef struct prov_mpi_sym_desc {
  MPI_Aint disp;
  MPI_Win win;
} prov_mpi_sym_desc;

/* Names this library's descriptors in symmetric heaps. */
static const char prov_mpi_sym_id = 0;

/* The describe of pinheap_mpi_sym_create's layer: the block must be in a
 * region exposed by pm. */
static int prov_mpi_sym_describe(void *ctx, pinheap *heap, void *block, size_t size, void *desc) {
  (void)size;
  pinheap_mpi *pm = ctx;
  pinheap_mpi_addr at;
  pinheap_region reg;
  if (pinheap_mpi_locate(heap, block, &at) != 0 || pinheap_region_of(heap, block, &reg) != 0 ||
      prov_mpi_record_of(reg.handle)->owner != pm) {
    pinheap_set_error(EINVAL, "pinheap_mpi_sym_create: the heap is not on this MPI provider");
    return EINVAL;
  }
  prov_mpi_sym_desc d;
  memset(&d, 0, sizeof d); /* every byte travels */
  d.disp = at.disp;
  d.win = at.win;
  memcpy(desc, &d, sizeof d);
  return 0;
}

pinheap_sym *pinheap_mpi_sym_create(pinheap_mpi *pm, pinheap *heap, size_t size, unsigned flags) {
  pinheap_collective coll;
  if (pinheap_mpi_collective(pm, &coll) != 0) return NULL;
  pinheap_sym_layer layer = {
      .id = &prov_mpi_sym_id, .ctx = pm, .desc_len = sizeof(prov_mpi_sym_desc), .describe = prov_mpi_sym_describe};
  return pinheap_sym_create_layer(heap, size, &coll, flags, &layer);
}

int pinheap_mpi_remote(const pinheap_sym *sym, const void *ptr, int rank, pinheap_mpi_addr *out) {
  size_t off = pinheap_sym_offset(sym, ptr);
  const prov_mpi_sym_desc *theirs = pinheap_sym_layer_desc(sym, &prov_mpi_sym_id, rank);
  const prov_mpi_sym_desc *mine = pinheap_sym_layer_desc(sym, &prov_mpi_sym_id, pinheap_sym_rank(sym));
  if (!out || off == SIZE_MAX || !theirs || !mine) {
    pinheap_set_error(EINVAL,
                      "pinheap_mpi_remote(%p, rank %d): output NULL, symmetric heap not from pinheap_mpi_sym_create, "
                      "rank out of range, or pointer outside the symmetric heap",
                      ptr, rank);
    return -1;
  }
  prov_mpi_sym_desc t, m;
  memcpy(&t, theirs, sizeof t); /* the table's bytes need not be aligned */
  memcpy(&m, mine, sizeof m);
  out->win = m.win;
  out->disp = MPI_Aint_add(t.disp, (MPI_Aint)off);
  return 0;
}

int pinheap_mpi_collective(pinheap_mpi *pm, pinheap_collective *out) {
  if (!pm || !out) {
    pinheap_set_error(EINVAL, "pinheap_mpi_collective: provider or output is NULL");
    return -1;
  }
  *out = (pinheap_collective){.ctx = pm, .rank = pm->rank, .nranks = pm->nranks, .allgather = prov_mpi_allgather};
  return 0;
}

int pinheap_mpi_get_stats(pinheap_mpi *pm, pinheap_mpi_stats *out) {
  if (!pm || !out) {
    pinheap_set_error(EINVAL, "pinheap_mpi_get_stats: provider or output is NULL");
    return -1;
  }
  pthread_mutex_lock(&pm->lock);
  *out = pm->stats;
  pthread_mutex_unlock(&pm->lock);
  return 0;
}

#define PROV_MPI_BROKEN(...)                            \
  do {                                                  \
    fprintf(stderr, "pinheap_mpi_check: " __VA_ARGS__); \
    fputc('\n', stderr);                                \
    broken++;                                           \
  } while (0)

/* The table of records: every record handed out is used or free, once. */
static int prov_mpi_records_check(void) {
  int broken = 0;
  pthread_mutex_lock(&prov_mpi_records_lock);
  size_t used = 0, free_records = 0;
  for (size_t i = 0; i < prov_mpi_used; i++) used += prov_mpi_table[i].owner != NULL;
  for (const prov_mpi_reg *r = prov_mpi_free; r && free_records <= prov_mpi_used; r = r->next, free_records++)
    if (r < prov_mpi_table || r >= prov_mpi_table + prov_mpi_used || r->owner)
      PROV_MPI_BROKEN("the free list holds record %p, not a free record of the table", (const void *)r);
  if (used + free_records != prov_mpi_used)
    PROV_MPI_BROKEN("%zu records used and %zu free, %zu handed out", used, free_records, prov_mpi_used);
  pthread_mutex_unlock(&prov_mpi_records_lock);
  return broken;
}

int pinheap_mpi_check(pinheap_mpi *pm) {
  if (!pm) {
    pinheap_set_error(EINVAL, "pinheap_mpi_check: provider is NULL");
    return -1;
  }
  int broken = 0;
  size_t n = 0, bytes = 0;
  pthread_mutex_lock(&pm->lock);
  for (const prov_mpi_reg *r = pm->regs; r; r = r->next) {
    n++;
    bytes += r->size;
    if (prov_mpi_record_of(r) != r || r->owner != pm)
      PROV_MPI_BROKEN("region %p: its record is not one of the provider's", (void *)r->base);
    if ((uintptr_t)r->base % pm->page || !r->size || r->size % pm->page)
      PROV_MPI_BROKEN("region %p of %zu bytes: base or size is not a multiple of the page", (void *)r->base, r->size);
    if (r->win != pm->win || r->win == MPI_WIN_NULL)
      PROV_MPI_BROKEN("region %p: its window is not the provider's", (void *)r->base);
    if (r->next && r->next->prev != r) PROV_MPI_BROKEN("region %p: its successor does not point back", (void *)r->base);
    MPI_Aint want = 0;
    if (pm->mode == PINHEAP_DYNAMIC) MPI_Get_address(r->base, &want);
    if (r->disp0 != want)
      PROV_MPI_BROKEN("region %p: displacement %ld, expected %ld", (void *)r->base, (long)r->disp0, (long)want);
    for (const prov_mpi_reg *q = r->next; q; q = q->next)
      if (q->base < r->base + r->size && r->base < q->base + q->size)
        PROV_MPI_BROKEN("regions %p and %p overlap", (void *)r->base, (void *)q->base);
  }
  if (n != pm->stats.regions || bytes != pm->stats.bytes)
    PROV_MPI_BROKEN("%zu regions of %zu bytes listed, the counters say %zu of %zu", n, bytes, pm->stats.regions,
                    pm->stats.bytes);
  if (pm->stats.obtained - pm->stats.released - pm->stats.unreleased != pm->stats.regions)
    PROV_MPI_BROKEN("%zu obtained - %zu released - %zu unreleased != %zu regions", pm->stats.obtained,
                    pm->stats.released, pm->stats.unreleased, pm->stats.regions);
  const prov_mpi_reg *p = pm->pending;
  if (pm->mode == PINHEAP_FIXED &&
      (n + (p != NULL) > 1 || (n == 0 && pm->win != MPI_WIN_NULL) || (n + (p != NULL) == 1 && !pm->fixed_busy)))
    PROV_MPI_BROKEN("FIXED: %zu regions exposed, %s pending, window %s, %s", n, p ? "one" : "none",
                    pm->win == MPI_WIN_NULL ? "none" : "set", pm->fixed_busy ? "busy" : "not busy");
  if (p && (prov_mpi_record_of(p) != p || p->owner != pm || p->win != MPI_WIN_NULL))
    PROV_MPI_BROKEN("the pending region %p: not a record of the provider's without a window", (void *)p->base);
  if (pm->mode == PINHEAP_DYNAMIC && (pm->win == MPI_WIN_NULL || p))
    PROV_MPI_BROKEN("DYNAMIC: %s", p ? "a region pending" : "no window");
  if (!pm->deferring && (pm->voted || pm->gave_up >= 0 || p))
    PROV_MPI_BROKEN("no heap being created, yet its state is set (voted %d, gave up %d, pending %p)", pm->voted,
                    pm->gave_up, (const void *)p);
  pthread_mutex_unlock(&pm->lock);
  broken += prov_mpi_records_check();
  return broken;
}
