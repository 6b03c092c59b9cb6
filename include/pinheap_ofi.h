/*
 * pinheap_ofi: a pinheap provider over libfabric memory registration
 * (libpinheap-ofi, built on pinheap.h's public API).
 *
 * A pinheap_ofi registers every region a heap obtains from it with
 * fi_mr_reg on one libfabric domain, and deregisters it (fi_close) when the
 * heap gives the region back. pinheap_ofi_locate then tells what a peer
 * needs to reach a block: the memory key, the local descriptor and the
 * address to pass to fi_write, fi_read or fi_atomic.
 *
 *   pinheap_ofi *po = pinheap_ofi_open(hints, FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE);
 *   opts.provider = pinheap_ofi_provider(po);
 *   pinheap *heap = pinheap_create(&opts);
 *   ... open endpoints on pinheap_ofi_domain(po) with pinheap_ofi_info(po) ...
 *   pinheap_ofi_addr a;
 *   pinheap_ofi_locate(heap, block, &a);  send a.key, a.addr to a peer
 *   ... or, for symmetric objects, no sending at all:
 *   pinheap_sym *sym = pinheap_ofi_sym_create(po, heap, size, &coll, 0);
 *   double *x = pinheap_sym_malloc(sym, n * sizeof *x);
 *   pinheap_ofi_remote(sym, &x[i], peer, &a);  a.key, a.addr on peer; a.desc here
 *   ...
 *   pinheap_destroy(heap);
 *   ... close the endpoints ...
 *   pinheap_ofi_destroy(po);
 *
 * The domain's memory-registration mode (info->domain_attr->mr_mode) decides
 * keys and addresses:
 *   FI_MR_VIRT_ADDR  the address of a block is its virtual address; without
 *                    it, its offset from the start of its registration.
 *   FI_MR_PROV_KEY   keys are the provider's (fi_mr_key); without it, keys
 *                    are requested counting up from 1 (wrapping within
 *                    mr_key_size bytes) and skipping keys already taken on
 *                    the domain: up to every key of that space, or up to
 *                    mr_cnt + 1 keys when the domain states mr_cnt, before
 *                    the registration fails.
 *   FI_MR_LOCAL      desc is the descriptor a local buffer in the heap needs
 *                    (the source of fi_write, the result buffer of fi_read):
 *                    access must then hold FI_READ and FI_WRITE (or FI_SEND
 *                    and FI_RECV for messages), else creating fails with
 *                    EINVAL rather than hand out descriptors that fail when
 *                    used.
 *   FI_MR_ALLOCATED  memory is mapped, not touched, before it is registered
 *                    (the devices that ask for it fault and pin the pages
 *                    as they register them).
 *   FI_MR_BASIC      taken as FI_MR_VIRT_ADDR | FI_MR_PROV_KEY | FI_MR_ALLOCATED.
 *   FI_MR_ENDPOINT and FI_MR_RAW are not supported: creating on such a
 *   domain fails with ENOTSUP, and pinheap_ofi_open leaves them out of the
 *   modes it asks for.
 *
 * Memory: each region is anonymous memory mapped with MAP_NORESERVE, aligned
 * as the heap asks. Registration may pin (and so commit) every page of it,
 * as it does on hardware NICs.
 *
 * Thread safety: every function may be called from any thread; a pinheap_ofi
 * makes its fi_mr_reg and fi_close calls under a lock of its own, so a
 * domain opened with FI_THREAD_SAFE (the default of the tcp and shm
 * providers) needs nothing more. With a weaker threading model the caller
 * must not use the domain while a heap on it allocates or frees.
 * pinheap_ofi_destroy must not race with any other call on the same object.
 *
 * Errors: a function that fails returns NULL (or -1), sets errno and leaves
 * a description in pinheap_ofi_last_error(), naming the libfabric call and
 * its fi_strerror. When a heap cannot obtain memory from this provider,
 * pinheap_last_error() says so and pinheap_ofi_last_error() says why.
 */
#ifndef PINHEAP_OFI_H
#define PINHEAP_OFI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>

#include <pinheap.h>
#include <pinheap_sym.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pinheap_ofi pinheap_ofi;

/* Registers on a domain the caller opened, with info the fi_info it was
 * opened with (copied: the caller may free it). access: the fi_mr_reg access
 * flags, a non-empty combination of FI_READ, FI_WRITE, FI_REMOTE_READ,
 * FI_REMOTE_WRITE, FI_SEND and FI_RECV (FI_REMOTE_* for the peers' fi_write,
 * fi_read, fi_atomic into the heap; FI_READ | FI_WRITE for buffers in the
 * heap given to this process's own, which FI_MR_LOCAL requires). The domain
 * stays the caller's: it must outlive the returned object.
 * Returns NULL with errno EINVAL (NULL domain or info, bad access flags, no
 * local access under FI_MR_LOCAL), ENOTSUP (FI_MR_ENDPOINT or FI_MR_RAW) or
 * ENOMEM. */
pinheap_ofi *pinheap_ofi_create(struct fid_domain *domain, const struct fi_info *info, uint64_t access);

/* Opens a fabric and a domain itself, from the first fi_info that
 * fi_getinfo returns for hints (NULL: any provider), e.g. an FI_EP_RDM
 * endpoint type, FI_RMA | FI_ATOMIC caps and a provider name such as
 * "tcp;ofi_rxm" or "shm"; attributes the hints leave NULL count as zeroed
 * ones (fi_allocinfo's); both are closed by pinheap_ofi_destroy. access as
 * for pinheap_ofi_create. Returns NULL with errno EINVAL, ENOMEM, or what
 * the failing libfabric call returned (ENODATA: no provider matches). */
pinheap_ofi *pinheap_ofi_open(const struct fi_info *hints, uint64_t access);

/* What endpoints, address vectors and completion queues are opened with.
 * pinheap_ofi_fabric is NULL for an object made by pinheap_ofi_create.
 * The info is po's copy (its domain_attr->mr_mode as found): pass it to
 * fi_endpoint, never free it. */
struct fid_fabric *pinheap_ofi_fabric(const pinheap_ofi *po);
struct fid_domain *pinheap_ofi_domain(const pinheap_ofi *po);
struct fi_info *pinheap_ofi_info(const pinheap_ofi *po);

/* The provider to put in pinheap_options.provider; it lives as long as po.
 * Its name is "libfabric <provider name>". */
const pinheap_provider *pinheap_ofi_provider(const pinheap_ofi *po);

/* Whether regions obtained from now on have every page faulted in
 * (MADV_POPULATE_WRITE) before they are registered (default: no;
 * registration on a hardware NIC pins, and so faults in, the pages itself).
 * When the pages cannot be had, the obtain fails (ENOMEM, the reason in
 * pinheap_ofi_last_error()) rather than touch them one by one and leave the
 * shortage to the OOM killer. Returns 0, or -1 with errno EINVAL. */
int pinheap_ofi_set_prefault(pinheap_ofi *po, bool on);

/* What a peer needs to reach an address in a heap. */
typedef struct pinheap_ofi_addr {
  uint64_t key;  /* the memory key of the registration holding it */
  void *desc;    /* its local descriptor (fi_mr_desc), for FI_MR_LOCAL */
  uint64_t addr; /* the `addr` argument of fi_write, fi_read, fi_atomic */
} pinheap_ofi_addr;

/* Fills *out for ptr, an address in memory heap obtained from a provider
 * of this library (a block and the bytes after it up to the block's end lie
 * in one registration):
 *   pinheap_ofi_locate(heap, ptr, &a)        as pinheap_mpi_locate(heap, ptr, &at)
 *   pinheap_ofi_locate(po, heap, ptr, &a)    the earlier form: heap must be on po
 * (a macro picks pinheap_ofi_locate_ptr for three arguments, the function
 * pinheap_ofi_locate for four). Makes no libfabric call; O(1) for FIXED
 * heaps, as pinheap_region_of (the three-argument form also looks through
 * the objects live in the process, at most 64). Returns 0, or -1 with errno
 * EINVAL (NULL argument, ptr not in memory the heap obtained, or heap not
 * on po's provider, or on none of this library's). */
int pinheap_ofi_locate(const pinheap_ofi *po, const pinheap *heap, const void *ptr, pinheap_ofi_addr *out);
int pinheap_ofi_locate_ptr(const pinheap *heap, const void *ptr, pinheap_ofi_addr *out);
#define PINHEAP_OFI_LOCATE_PICK(a1, a2, a3, a4, name, ...) name
#define pinheap_ofi_locate(...) \
  PINHEAP_OFI_LOCATE_PICK(__VA_ARGS__, pinheap_ofi_locate, pinheap_ofi_locate_ptr, )(__VA_ARGS__)

/* Collective over coll (the group's allgather, as pinheap_sym_create takes
 * it; libfabric has none of its own): pinheap_sym_create(heap, size, coll,
 * flags) on a heap of po's provider, with every process's key and address
 * of its block gathered at once, so that pinheap_ofi_remote answers for any
 * rank without communication. Returns the symmetric heap (destroy it with
 * pinheap_sym_destroy), or NULL with errno as pinheap_sym_create, and
 * EINVAL on every process when a process's heap is not on its po. */
pinheap_sym *pinheap_ofi_sym_create(pinheap_ofi *po, pinheap *heap, size_t size, const pinheap_collective *coll,
                                    unsigned flags);

/* What fi_write, fi_read and fi_atomic take to reach, on process rank, the
 * counterpart of ptr (a local address inside sym, a symmetric heap from
 * pinheap_ofi_sym_create): out->key and out->addr are rank's (its
 * registration's key; the virtual address under FI_MR_VIRT_ADDR, else the
 * offset in its registration, as rank's domain wants), out->desc is this
 * process's descriptor of ptr, for using the local object as the buffer of
 * the operation (FI_MR_LOCAL):
 *   pinheap_ofi_addr t;
 *   pinheap_ofi_remote(sym, &x[i], peer, &t);
 *   fi_write(ep, &x[i], len, t.desc, peer_fi_addr, t.addr, t.key, ctx);
 * The endpoint address of rank (peer_fi_addr) is the caller's, from its
 * address vector. Returns 0, or -1 with errno EINVAL (out NULL, sym not
 * from pinheap_ofi_sym_create, rank out of range, ptr outside sym). No
 * libfabric call, O(1), thread-safe. */
int pinheap_ofi_remote(const pinheap_sym *sym, const void *ptr, int rank, pinheap_ofi_addr *out);

typedef struct pinheap_ofi_stats {
  size_t regions;      /* registrations live now */
  size_t bytes;        /* bytes they cover */
  size_t registered;   /* fi_mr_reg calls that succeeded, ever */
  size_t deregistered; /* registrations closed, ever */
  size_t failures;     /* obtains and releases that failed, ever */
} pinheap_ofi_stats;

/* Fills *out; returns 0, or -1 with errno EINVAL. */
int pinheap_ofi_get_stats(const pinheap_ofi *po, pinheap_ofi_stats *out);

/* Walks every invariant of po's table of registrations (counts, bytes,
 * free records, distinct keys) and returns how many are broken, each
 * described on stderr; 0 when consistent. */
int pinheap_ofi_check(const pinheap_ofi *po);

/* Closes po and returns 0; NULL does nothing and returns 0. Call it after
 * pinheap_destroy of every heap on it and, for an object from
 * pinheap_ofi_open, after closing every endpoint, address vector and
 * completion queue opened on its domain. While a registration is live (a
 * heap on po not destroyed yet) it returns -1 with errno EBUSY and a
 * message, and po stays usable. */
int pinheap_ofi_destroy(pinheap_ofi *po);

/* This thread's last failure in this library, in words; "" when none. */
const char *pinheap_ofi_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* PINHEAP_OFI_H */
