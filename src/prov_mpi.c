/*
 * prov_mpi: the MPI provider (include/pinheap_mpi.h). A library of its own
 * over libpinheap's public API, built once per MPI flavour.
 */
#include "pinheap_mpi.h"

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

/*
 * A region the provider exposes. It is the handle the heap keeps
 * (pinheap_region.handle), so that locate finds the window and the
 * displacement without a lookup.
 *
 * Invariants: base is page-aligned and size a positive multiple of the page
 * size; disp0 is the displacement of base in win: 0 (FIXED, the region's own
 * window) or MPI_Get_address(base) (DYNAMIC, the provider's window); the
 * record is in its provider's list exactly while the region is exposed.
 */
typedef struct prov_mpi_reg {
  char *base;
  size_t size;
  MPI_Win win;
  MPI_Aint disp0;
  struct prov_mpi_reg *prev, *next;
} prov_mpi_reg;

/*
 * Invariants: comm is a duplicate of the caller's communicator that returns
 * its errors; regs lists the exposed regions, stats.regions of them,
 * stats.bytes in all, and stats.regions == stats.obtained - stats.released.
 * DYNAMIC: win is the dynamic window, every region's window. FIXED: at most
 * one region; win is its window, or MPI_WIN_NULL when there is none;
 * fixed_busy is set while a region is exposed or being obtained.
 * lock guards regs, stats, win and fixed_busy; DYNAMIC attach and detach
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
  bool prefault;
  size_t page;
  pthread_mutex_t lock;
  prov_mpi_reg *regs;
  bool fixed_busy;
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

static void prov_mpi_prefault(const pinheap_mpi *pm, char *base, size_t size) {
#ifdef MADV_POPULATE_WRITE
  if (madvise(base, size, MADV_POPULATE_WRITE) == 0) return;
#endif
  for (size_t off = 0; off < size; off += pm->page) ((volatile char *)base)[off] = 0;
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

static void prov_mpi_unlink(pinheap_mpi *pm, prov_mpi_reg *r) {
  if (r->prev)
    r->prev->next = r->next;
  else
    pm->regs = r->next;
  if (r->next) r->next->prev = r->prev;
  pm->stats.regions--;
  pm->stats.bytes -= r->size;
  pm->stats.released++;
}

/*
 * FIXED: map locally, agree, then MPI_Win_create (collective). Every rank
 * learns whether all could map, and the lowest rank that could not, so that
 * all fail together or all create the window: a rank-local failure never
 * leaves the others waiting in MPI_Win_create.
 */
static int prov_mpi_obtain_fixed(pinheap_mpi *pm, size_t size, size_t align, void **base, void **handle) {
  pthread_mutex_lock(&pm->lock);
  bool busy = pm->fixed_busy;
  pm->fixed_busy = true;
  if (busy) pm->stats.refused++;
  pthread_mutex_unlock(&pm->lock);
  if (busy) {
    /* Without the collective: every rank is busy alike, or the heaps are
     * already out of step. */
    pinheap_set_error(EBUSY, "provider %s already exposes a FIXED heap's region (one at a time)", pm->provider.name);
    return EBUSY;
  }
  char why[128] = "";
  prov_mpi_reg *r = malloc(sizeof *r);
  char *b = r ? prov_mpi_map(size, align) : NULL;
  if (!r)
    snprintf(why, sizeof why, "no memory for its record");
  else if (!b)
    snprintf(why, sizeof why, "mmap: %s", strerror(errno));
  struct {
    int ok, rank;
  } mine = {b != NULL, pm->rank}, all = {0, 0};
  int rc = MPI_Allreduce(&mine, &all, 1, MPI_2INT, MPI_MINLOC, pm->comm);
  MPI_Win win = MPI_WIN_NULL;
  if (rc != MPI_SUCCESS) {
    prov_mpi_fail(ENOMEM, rc, "MPI_Allreduce (agreeing on a region of %zu bytes)", size);
  } else if (!all.ok) {
    if (b)
      pinheap_set_error(ENOMEM, "rank %d of %d cannot map its region; every rank gives up", all.rank, pm->nranks);
    else
      pinheap_set_error(ENOMEM, "rank %d of %d cannot map %zu bytes (%s); every rank gives up", pm->rank, pm->nranks,
                        size, why);
  } else {
    if (pm->prefault) prov_mpi_prefault(pm, b, size);
    rc = MPI_Win_create(b, (MPI_Aint)size, 1, pm->info, pm->comm, &win);
    if (rc == MPI_SUCCESS) rc = MPI_Win_set_errhandler(win, pm->errh);
    if (rc != MPI_SUCCESS) prov_mpi_fail(ENOMEM, rc, "MPI_Win_create of %zu bytes", size);
  }
  if (rc != MPI_SUCCESS || !all.ok) {
    if (win != MPI_WIN_NULL) MPI_Win_free(&win);
    if (b) munmap(b, size);
    free(r);
    pthread_mutex_lock(&pm->lock);
    pm->fixed_busy = false;
    pm->stats.refused++;
    pthread_mutex_unlock(&pm->lock);
    return ENOMEM;
  }
  *r = (prov_mpi_reg){.base = b, .size = size, .win = win, .disp0 = 0};
  pthread_mutex_lock(&pm->lock);
  prov_mpi_link(pm, r);
  pm->win = win;
  pthread_mutex_unlock(&pm->lock);
  *base = b;
  *handle = r;
  return 0;
}

/* DYNAMIC: map and attach; local. The record comes from malloc even when
 * jemalloc calls this from inside an arena of the heap: jemalloc sends an
 * allocation made from inside its hooks to its default arena, which is not
 * the heap's, and MPI_Win_attach itself allocates anyway. */
static int prov_mpi_obtain_dynamic(pinheap_mpi *pm, size_t size, size_t align, void **base, void **handle) {
  prov_mpi_reg *r = malloc(sizeof *r);
  char *b = r ? prov_mpi_map(size, align) : NULL;
  if (!b) {
    pinheap_set_error(ENOMEM, "cannot map %zu bytes: %s%s", size, r ? "mmap: " : "",
                      r ? strerror(errno) : "no memory for its record");
    free(r);
    pthread_mutex_lock(&pm->lock);
    pm->stats.refused++;
    pthread_mutex_unlock(&pm->lock);
    return ENOMEM;
  }
  if (pm->prefault) prov_mpi_prefault(pm, b, size);
  *r = (prov_mpi_reg){.base = b, .size = size};
  int rc = MPI_Get_address(b, &r->disp0);
  pthread_mutex_lock(&pm->lock);
  r->win = pm->win;
  if (rc == MPI_SUCCESS) {
    prov_mpi_returning = true;
    rc = MPI_Win_attach(pm->win, b, (MPI_Aint)size);
    prov_mpi_returning = false;
  }
  if (rc == MPI_SUCCESS)
    prov_mpi_link(pm, r);
  else
    pm->stats.refused++;
  pthread_mutex_unlock(&pm->lock);
  if (rc != MPI_SUCCESS) {
    prov_mpi_fail(ENOMEM, rc,
                  "MPI_Win_attach of %zu bytes (some MPIs cap the regions attached: larger chunks need fewer)", size);
    munmap(b, size);
    free(r);
    return ENOMEM;
  }
  *base = b;
  *handle = r;
  return 0;
}

static int prov_mpi_obtain(void *ctx, size_t size, size_t align, void **base, void **handle) {
  pinheap_mpi *pm = ctx;
  return pm->mode == PINHEAP_FIXED ? prov_mpi_obtain_fixed(pm, size, align, base, handle)
                                   : prov_mpi_obtain_dynamic(pm, size, align, base, handle);
}

/* FIXED: MPI_Win_free (collective, so outside the lock); DYNAMIC: detach.
 * A region MPI did not let go of stays mapped: a peer may still reach it. */
static int prov_mpi_release(void *ctx, void *base, size_t size, void *handle) {
  pinheap_mpi *pm = ctx;
  prov_mpi_reg *r = handle;
  int rc;
  const char *call;
  if (pm->mode == PINHEAP_FIXED) {
    call = "MPI_Win_free";
    prov_mpi_returning = true;
    rc = MPI_Win_free(&r->win);
    prov_mpi_returning = false;
    pthread_mutex_lock(&pm->lock);
    prov_mpi_unlink(pm, r);
    pm->win = MPI_WIN_NULL;
    pm->fixed_busy = false;
    pthread_mutex_unlock(&pm->lock);
  } else {
    call = "MPI_Win_detach";
    pthread_mutex_lock(&pm->lock);
    prov_mpi_returning = true;
    rc = MPI_Win_detach(pm->win, base);
    prov_mpi_returning = false;
    prov_mpi_unlink(pm, r);
    pthread_mutex_unlock(&pm->lock);
  }
  free(r);
  if (rc != MPI_SUCCESS) {
    /* The heap forgets the region whatever is returned: say it here. */
    prov_mpi_fail(EIO, rc, "%s of a %zu-byte region at %p (left mapped)", call, size, base);
    fprintf(stderr, "pinheap_mpi: %s\n", pinheap_last_error());
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
  pm->prefault = opts && opts->prefault;
  pm->page = (size_t)sysconf(_SC_PAGESIZE);
  pthread_mutex_init(&pm->lock, NULL);
  int rc;
  const char *call;
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

void pinheap_mpi_destroy(pinheap_mpi *pm) {
  if (!pm) return;
  if (pm->stats.regions) {
    fprintf(stderr,
            "pinheap_mpi_destroy: %zu region(s) of %zu bytes are still obtained by a heap: destroy the heap first\n",
            pm->stats.regions, pm->stats.bytes);
    abort();
  }
  prov_mpi_close(pm);
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
  const prov_mpi_reg *r = reg.handle;
  if (!r) {
    pinheap_set_error(EINVAL, "pinheap_mpi_locate(%p): the heap's memory is not from an MPI provider", ptr);
    return -1;
  }
  out->win = r->win;
  out->disp = MPI_Aint_add(r->disp0, (MPI_Aint)((const char *)ptr - r->base));
  return 0;
}

void pinheap_mpi_collective(pinheap_mpi *pm, pinheap_collective *out) {
  *out = (pinheap_collective){.ctx = pm, .rank = pm->rank, .nranks = pm->nranks, .allgather = prov_mpi_allgather};
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

int pinheap_mpi_check(pinheap_mpi *pm) {
  int broken = 0;
  size_t n = 0, bytes = 0;
  pthread_mutex_lock(&pm->lock);
  for (const prov_mpi_reg *r = pm->regs; r; r = r->next) {
    n++;
    bytes += r->size;
    if ((uintptr_t)r->base % pm->page || !r->size || r->size % pm->page)
      PROV_MPI_BROKEN("region %p of %zu bytes: base or size is not a multiple of the page", (void *)r->base, r->size);
    if (r->win != pm->win) PROV_MPI_BROKEN("region %p: its window is not the provider's", (void *)r->base);
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
  if (pm->stats.obtained - pm->stats.released != pm->stats.regions)
    PROV_MPI_BROKEN("%zu obtained - %zu released != %zu regions", pm->stats.obtained, pm->stats.released,
                    pm->stats.regions);
  if (pm->mode == PINHEAP_FIXED && (n > 1 || (n == 0 && pm->win != MPI_WIN_NULL) || (n == 1 && !pm->fixed_busy)))
    PROV_MPI_BROKEN("FIXED: %zu regions, window %s, %s", n, pm->win == MPI_WIN_NULL ? "none" : "set",
                    pm->fixed_busy ? "busy" : "not busy");
  if (pm->mode == PINHEAP_DYNAMIC && pm->win == MPI_WIN_NULL) PROV_MPI_BROKEN("DYNAMIC: no window");
  pthread_mutex_unlock(&pm->lock);
  return broken;
}
