/*
 * pinheap_mpi: a pinheap provider over MPI-3 one-sided communication, so
 * that every block of a heap can be the target of MPI_Put, MPI_Get and the
 * RMA atomics.
 *
 *   pinheap_mpi *pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_FIXED, NULL);
 *   pinheap_options o;
 *   pinheap_options_init(&o);
 *   o.mode = PINHEAP_FIXED;              (the same mode as the provider's)
 *   o.size = (size_t)1 << 30;
 *   pinheap *heap = pinheap_mpi_heap_create(pm, &o);   (collective)
 *   double *a = pinheap_malloc(heap, n * sizeof *a);
 *   pinheap_mpi_addr at;
 *   pinheap_mpi_locate(heap, a, &at);    (send at.disp to the peers; they
 *                                         MPI_Get(..., rank, disp, ..., at.win))
 *   pinheap_sym *sym = pinheap_mpi_sym_create(pm, heap, size, 0);   (collective)
 *   double *x = pinheap_sym_malloc(sym, n * sizeof *x);             (collective)
 *   pinheap_mpi_remote(sym, &x[i], peer, &at);   (nothing to send: at.win,
 *                                         at.disp of x[i] on peer)
 *   ...
 *   pinheap_destroy(heap);               (collective for FIXED)
 *   pinheap_mpi_destroy(pm);             (collective)
 *
 * PINHEAP_FIXED: the region a heap obtains (one, when it is created) is
 * exposed by MPI_Win_create over the provider's communicator, disp_unit 1:
 * a block's displacement is its offset in the region. Create FIXED heaps
 * with pinheap_mpi_heap_create: it fails on every rank when it fails on
 * one, whatever the reason (bad options, no region, no memory for the
 * heap's metadata or arenas, no window), without a hang. pinheap_create with
 * opts.provider = pinheap_mpi_provider(pm) works too, collectively, only as
 * long as nothing can fail on one rank alone: the ranks then agree only on
 * whether each could map (and prefault) its region, so that a failure there
 * fails every rank's create (ENOMEM, naming the rank); a failure after that
 * gives the region back on that rank alone, whose MPI_Win_free then waits
 * for the others (a hang). min_size retries stay in step as long as every
 * rank passes the same size and min_size (sizes may differ between ranks
 * when min_size is 0): pinheap_mpi_heap_create checks it (EINVAL), plain
 * pinheap_create would hang. pinheap_destroy of a FIXED heap is collective.
 * One FIXED heap at a time per provider.
 *
 * PINHEAP_DYNAMIC: one MPI_Win_create_dynamic window, created by
 * pinheap_mpi_create. Every chunk and direct block the heap obtains is
 * attached to it when obtained and detached when given back (a direct block
 * when freed, a wholly free chunk at pinheap_trim): local calls, so the
 * heap's calls are not collective (pinheap_mpi_heap_create is, so that all
 * ranks have a heap or none). A block's displacement is its address
 * (MPI_Get_address). Some MPI implementations cap the regions attached to a
 * window (Open MPI's osc rdma: osc_rdma_max_attach, 32 or 64): a large
 * chunk_size and direct_threshold keep the count low; an attach the MPI
 * refuses is an ENOMEM of the allocation that needed it.
 *
 * Memory: regions are anonymous mappings (MAP_NORESERVE: reserved, committed
 * only where touched), aligned as the heap asks, unmapped when given back.
 * With prefault, their pages are faulted in with MADV_POPULATE_WRITE before
 * they are exposed (FIXED: before the ranks agree on the region); when it
 * fails (ENOMEM: not that much memory) the obtain fails, it does not touch
 * the pages one by one, which would leave a shortage to the OOM killer.
 *
 * Collective calls (create, destroy, pinheap_mpi_heap_create, pinheap_create
 * and pinheap_destroy of a FIXED heap, the collective's allgather) must be
 * made in the same order on every rank of the communicator, one at a time.
 * They run on a duplicate of it, so they never match the caller's own
 * traffic.
 *
 * Threads: obtain and release are safe from several threads at once (the
 * heap may call them from any thread that allocates or frees, and from
 * inside jemalloc); attach and detach run under a lock of the provider's.
 * A DYNAMIC heap therefore calls MPI_Win_attach and MPI_Win_detach from
 * whichever thread allocates or frees (a small malloc included, when the
 * heap needs a chunk, and any free or trim that gives one back). With
 * MPI_THREAD_MULTIPLE any thread may use it. With MPI_THREAD_SERIALIZED, the
 * caller must serialize every call into the heap with its own MPI calls.
 * Below that (MPI_THREAD_FUNNELED or SINGLE), only the thread that created
 * the provider may make MPI calls, and the provider enforces it rather than
 * make a call MPI forbids: an attach from another thread fails (the
 * allocation is an ENOMEM whose message names the thread level), and a
 * detach from another thread is not made (the region stays attached and
 * mapped, counted in stats.unreleased, and stderr says so). A FIXED heap
 * makes MPI calls only at its creation and destruction. With Open MPI 4.1,
 * osc pt2pt refuses MPI_THREAD_MULTIPLE (creating a window then fails with
 * MPI_ERR_WIN), and osc ucx runs out of its 32 attach slots once regions
 * have been attached and detached while others stay attached: osc rdma
 * does both (--mca osc rdma).
 *
 * Errors: as in pinheap.h (NULL or -1, errno, pinheap_last_error()); a
 * failed MPI call is named with MPI's error string. The windows report the
 * caller's RMA errors as MPI's default does (the job aborts) unless the
 * caller sets another handler; the provider's own calls on them return
 * their errors instead. A region whose MPI_Win_detach or MPI_Win_free fails
 * stays mapped, is counted in stats.unreleased, and is reported on stderr
 * (the heap forgets it either way).
 *
 * Link with -lpinheap-mpi-openmpi or -lpinheap-mpi-mpich (the library built
 * for the MPI the program uses) and -lpinheap. The other links too, and
 * loads both MPIs, but pinheap_mpi_create refuses it (EINVAL, naming both
 * libraries) before it passes a handle of one MPI to the other.
 */
#ifndef PINHEAP_MPI_H
#define PINHEAP_MPI_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>

#include "pinheap.h"
#include "pinheap_sym.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pinheap_mpi pinheap_mpi;

typedef struct pinheap_mpi_options {
  MPI_Info info; /* given to every window the provider creates (e.g.
                    "accumulate_ops": "same_op"); duplicated; MPI_INFO_NULL: none */
  bool prefault; /* touch every page of a region before exposing it */
} pinheap_mpi_options;

/* Collective over comm. mode: PINHEAP_FIXED or PINHEAP_DYNAMIC (the heaps
 * created on the provider must have that mode). opts may be NULL: no info,
 * no prefault. The calling thread is the one that may attach and detach
 * below MPI_THREAD_SERIALIZED (see Threads). Returns the provider, or NULL
 * with errno EINVAL (bad arguments, MPI not initialized, or the program's
 * MPI is not of the family this library was built for: the message names
 * this library, the MPI it was built for and the MPI library the calls
 * reach), ENOMEM, or EIO (an MPI call failed). */
pinheap_mpi *pinheap_mpi_create(MPI_Comm comm, pinheap_mode mode, const pinheap_mpi_options *opts);

/* Collective. Frees the window(s) and the duplicate communicator, and
 * returns 0. Every heap on the provider must have been destroyed before:
 * while a heap on any rank still holds a region, every rank returns -1 with
 * errno EBUSY and a message naming the regions or the rank, and the
 * provider stays usable (destroy the heaps, then call it again); -1 with
 * EIO when the agreement itself failed. NULL does nothing and returns 0.
 * Call it before MPI_Finalize. */
int pinheap_mpi_destroy(pinheap_mpi *pm);

/* For pinheap_options.provider; valid until pinheap_mpi_destroy. */
const pinheap_provider *pinheap_mpi_provider(pinheap_mpi *pm);

/* Collective over the provider's communicator: pinheap_create(opts) on
 * every rank with opts->provider set to pm's (the caller's is ignored), and
 * a heap on every rank or on none. The ranks agree on each step: first
 * pinheap_options_check of every rank's options and the provider's mode,
 * and, FIXED with min_size on some rank, the same size and min_size on all
 * (any bad: NULL with EINVAL everywhere, nothing taken); then, FIXED, on the
 * region; then on the heaps; a rank whose heap could not be made fails every
 * rank's call, the others destroying theirs; only then, FIXED, is the window
 * created. Returns the heap, or NULL with errno: a rank that failed keeps
 * its own errno and reason (EINVAL, ENOMEM, ENOSYS as pinheap_create;
 * EBUSY, on every rank, while a FIXED heap on the provider is live); the
 * others get EINVAL (bad options) or ENOMEM, and a text naming the lowest
 * rank that failed; EIO when an agreement itself failed. Destroy the heap
 * with pinheap_destroy (collective for FIXED). */
pinheap *pinheap_mpi_heap_create(pinheap_mpi *pm, const pinheap_options *opts);

/* The window: DYNAMIC, the one window; FIXED, the window of the live heap's
 * region (between pinheap_create and pinheap_destroy), else MPI_WIN_NULL. */
MPI_Win pinheap_mpi_window(const pinheap_mpi *pm);

/* What a peer needs to address a local byte remotely: the window, and the
 * displacement to give MPI_Put/MPI_Get/... with this rank as target. */
typedef struct pinheap_mpi_addr {
  MPI_Win win;
  MPI_Aint disp; /* FIXED: offset in the region (disp_unit 1); DYNAMIC: the address */
} pinheap_mpi_addr;

/* Fills *out for ptr, any byte of a block of heap (a heap on an MPI
 * provider). Returns 0, or -1 with errno EINVAL when ptr is not in memory
 * the heap obtained, or the heap is not on an MPI provider (its handles are
 * checked against the table of the provider's records, without reading
 * them). Costs one pinheap_region_of (O(1) for a FIXED heap) and no MPI
 * lookup; thread-safe. Every byte of one block has the same window. */
int pinheap_mpi_locate(const pinheap *heap, const void *ptr, pinheap_mpi_addr *out);

/* Collective over the provider's communicator: pinheap_sym_create(heap,
 * size, the provider's collective, flags) on a heap of this provider, with
 * every rank's window and displacement of its block gathered at once, so
 * that pinheap_mpi_remote answers for any rank without communication.
 * Returns the symmetric heap (destroy it with pinheap_sym_destroy), or NULL
 * with errno as pinheap_sym_create, and EINVAL on every rank when a rank's
 * heap is not on the provider. */
pinheap_sym *pinheap_mpi_sym_create(pinheap_mpi *pm, pinheap *heap, size_t size, unsigned flags);

/* What MPI_Put, MPI_Get, MPI_Accumulate and the other RMA calls take to
 * reach, on rank, the counterpart of ptr (a local address inside sym, a
 * symmetric heap from pinheap_mpi_sym_create): the window and the
 * displacement, right for FIXED windows (the offset in the region) and
 * DYNAMIC ones (the address on rank) alike:
 *   pinheap_mpi_addr t;
 *   pinheap_mpi_remote(sym, &x[i], peer, &t);
 *   MPI_Put(&v, 1, MPI_DOUBLE, peer, t.disp, 1, MPI_DOUBLE, t.win);
 * Returns 0, or -1 with errno EINVAL (out NULL, sym not from
 * pinheap_mpi_sym_create, rank out of range, ptr outside sym). No MPI call,
 * O(1), thread-safe. */
int pinheap_mpi_remote(const pinheap_sym *sym, const void *ptr, int rank, pinheap_mpi_addr *out);

/* Fills *out with a collective over the provider's communicator
 * (MPI_Allgather of MPI_BYTE; a length over INT_MAX is EINVAL), for
 * pinheap_sym_create; valid until pinheap_mpi_destroy. Returns 0, or -1
 * with errno EINVAL (NULL argument). */
int pinheap_mpi_collective(pinheap_mpi *pm, pinheap_collective *out);

typedef struct pinheap_mpi_stats {
  size_t regions;  /* regions exposed now: FIXED, windows; DYNAMIC, attached */
  size_t bytes;    /* their bytes */
  size_t obtained; /* since create: windows created, or regions attached */
  size_t released; /* windows freed, or regions detached */
  size_t refused;  /* obtains that failed, and FIXED regions given up before
                      they were exposed (another rank's heap failed) */
  /* Regions MPI did not let go of: MPI_Win_free or MPI_Win_detach failed
   * (or, DYNAMIC, was not allowed from the calling thread). Left mapped,
   * counted in neither regions nor released: regions == obtained -
   * released - unreleased. */
  size_t unreleased;
} pinheap_mpi_stats;

/* Fills *out; returns 0, or -1 with errno EINVAL. Thread-safe. */
int pinheap_mpi_get_stats(pinheap_mpi *pm, pinheap_mpi_stats *out);

/* Number of broken invariants of the provider (its records of regions
 * against its counters, windows and displacements), each described on
 * stderr; 0 when consistent, -1 with errno EINVAL for NULL. Local. */
int pinheap_mpi_check(pinheap_mpi *pm);

#ifdef __cplusplus
}
#endif

#endif /* PINHEAP_MPI_H */
