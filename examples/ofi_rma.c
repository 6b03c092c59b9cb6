/*
 * ofi_rma: two processes, each with a pinheap heap registered through
 * libfabric, write into and read back from blocks allocated in each other's
 * heap, and add to a counter in the other's heap with atomics.
 *
 *   ofi_rma <libfabric provider> [basic]      e.g. ofi_rma 'tcp;ofi_rxm'
 *
 * The process forks; parent (rank 0, a FIXED heap) and child (rank 1, a
 * DYNAMIC heap, whose 9 MiB block is a registration of its own) exchange
 * endpoint addresses and, for each block, (address, key, length) as
 * pinheap_ofi_locate gives them, over a socketpair: no launcher. Then each:
 *   - fi_writes a pattern into every block of the peer and fi_reads it back;
 *   - adds 1 to a counter in the peer's heap 100 times (fi_atomic FI_SUM),
 *     reads it (fi_fetch_atomic) and swaps 100 for 1000 (fi_compare_atomic);
 *   - checks that its own blocks hold the peer's pattern and its counter
 *     1000;
 *   - makes a symmetric heap of 16 MiB with pinheap_ofi_sym_create (its
 *     allgather: the socketpair), which gathers both processes' keys once,
 *     and writes each of its objects (64 B, 25000 B, 5 MiB) into the peer's
 *     counterpart, then reads the peer's back, each operation through the
 *     key and address pinheap_ofi_remote gives, the local object its buffer
 *     (its descriptor from the same call);
 *   - writes with a key no registration has, and rank 0 with the key of the
 *     9 MiB block rank 1 has freed and trimmed (deregistered): both must fail with an
 *     error completion. The shm provider does not answer a bad key with an
 *     error completion (here such a write never completed): this part is
 *     skipped there.
 * "basic" opens the domain in FI_MR_BASIC mode (the provider's keys and
 * virtual addresses) instead of the provider's own.
 *
 * Prints what it does; exits 0 when everything matched, 1 otherwise. Both
 * processes give up after 30 s. With the tcp provider, set FI_TCP_IFACE=lo
 * to keep it on loopback. A target makes progress only while it polls its
 * completion queue, so each process keeps polling while it waits for the
 * other.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rdma/fi_atomic.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include <pinheap.h>
#include <pinheap_ofi.h>

#define MiB ((size_t)1 << 20)
#define NBLOCKS 6
#define ADDS 100

static const size_t block_sizes[NBLOCKS] = {8, 100, 4096, 65539, MiB, 9 * MiB};

/* A block as the peer sees it. */
typedef struct remote {
  uint64_t addr, key, len;
} remote;

/* What one process sends the other: its endpoint name, its blocks and its
 * counter. */
typedef struct hello {
  char name[256];
  uint64_t name_len;
  remote block[NBLOCKS];
  remote counter;
} hello;

/* An endpoint with its completion queue and the peer's address. */
typedef struct channel {
  struct fid_cq *cq;
  struct fid_av *av;
  struct fid_ep *ep;
  fi_addr_t peer;
} channel;

typedef struct proc {
  int rank;
  int sock;
  pinheap_collective coll; /* over sock, for the symmetric heap */
  bool checks_keys;
  pinheap_ofi *po;
  pinheap *heap;
  channel chan; /* every operation but the rejected ones */
  char *block[NBLOCKS];
  uint64_t *counter;
  char *buf; /* local source and destination of transfers */
  pinheap_ofi_addr buf_at;
  uint64_t *operand; /* operand[0..2]: operand, compare, result */
  pinheap_ofi_addr operand_at;
  int failures;
} proc;

#define SAY(p, ...)                 \
  do {                              \
    printf("rank %d: ", (p)->rank); \
    printf(__VA_ARGS__);            \
    putchar('\n');                  \
    fflush(stdout);                 \
  } while (0)

#define FAIL(p, ...)                \
  do {                              \
    SAY(p, "FAILED: " __VA_ARGS__); \
    (p)->failures++;                \
  } while (0)

/* The byte at offset j of block i, as rank r writes it. */
static char pattern(int r, int i, size_t j) { return (char)(j * 131 + (size_t)i * 17 + (size_t)r * 101 + 1); }

static bool send_all(int fd, const void *buf, size_t len) {
  for (const char *p = buf; len > 0;) {
    ssize_t n = write(fd, p, len);
    if (n <= 0) return false;
    p += n;
    len -= (size_t)n;
  }
  return true;
}

/* Polls the main channel's completion queue, which the peer's operations
 * on this process's memory need (a target makes progress only then),
 * unless busy, an operation of this process's in flight, is on it. */
static void serve(proc *p, const channel *busy) {
  if (p->chan.cq && busy != &p->chan) {
    struct fi_cq_entry e;
    fi_cq_read(p->chan.cq, &e, 1);
  }
}

/* Reads len bytes from the peer, serving it meanwhile. */
static bool recv_all(proc *p, void *buf, size_t len) {
  for (char *q = buf; len > 0;) {
    struct pollfd pfd = {.fd = p->sock, .events = POLLIN};
    serve(p, NULL);
    if (poll(&pfd, 1, p->chan.cq ? 1 : -1) <= 0) continue;
    ssize_t n = read(p->sock, q, len);
    if (n <= 0) return false;
    q += n;
    len -= (size_t)n;
  }
  return true;
}

/* Both processes reach this point; each keeps serving the other meanwhile. */
static bool barrier(proc *p) {
  char c = 'b';
  return send_all(p->sock, &c, 1) && recv_all(p, &c, 1);
}

/* Waits for the completion of the one operation in flight on l, serving
 * the peer meanwhile: 0, or the error code of an error completion (its
 * text in err_text). */
static int wait_completion(proc *p, channel *l, char *err_text, size_t err_len) {
  for (;;) {
    struct fi_cq_entry e;
    serve(p, l);
    ssize_t ret = fi_cq_read(l->cq, &e, 1);
    if (ret == 1) return 0;
    if (ret == -FI_EAVAIL) {
      struct fi_cq_err_entry err = {0};
      fi_cq_readerr(l->cq, &err, 0);
      snprintf(err_text, err_len, "%s (provider: %s)", fi_strerror(err.err),
               fi_cq_strerror(l->cq, err.prov_errno, err.err_data, NULL, 0));
      return err.err ? err.err : FI_EOTHER;
    }
    if (ret != -FI_EAGAIN) {
      snprintf(err_text, err_len, "fi_cq_read: %s", fi_strerror((int)-ret));
      return (int)-ret;
    }
  }
}

/* Posts an operation on channel l (retrying while the provider says try
 * again) and waits for its completion: sets status (0 or an error code)
 * and err (its text). */
#define RUN_OP(p, l, err, call)                                             \
  do {                                                                      \
    ssize_t ret_;                                                           \
    while ((ret_ = (call)) == -FI_EAGAIN) {                                 \
      struct fi_cq_entry e_;                                                \
      serve(p, l);                                                          \
      fi_cq_read((l)->cq, &e_, 1);                                          \
    }                                                                       \
    if (ret_ != 0) {                                                        \
      snprintf(err, sizeof err, "posting it: %s", fi_strerror((int)-ret_)); \
      status = (int)-ret_;                                                  \
    } else {                                                                \
      status = wait_completion(p, l, err, sizeof err);                      \
    }                                                                       \
  } while (0)

static int channel_open(proc *p, channel *l) {
  struct fid_domain *d = pinheap_ofi_domain(p->po);
  struct fi_cq_attr cq_attr = {.format = FI_CQ_FORMAT_CONTEXT};
  struct fi_av_attr av_attr = {.type = FI_AV_TABLE};
  int ret;
  if ((ret = fi_cq_open(d, &cq_attr, &l->cq, NULL)) || (ret = fi_av_open(d, &av_attr, &l->av, NULL)) ||
      (ret = fi_endpoint(d, pinheap_ofi_info(p->po), &l->ep, NULL)) || (ret = fi_ep_bind(l->ep, &l->av->fid, 0)) ||
      (ret = fi_ep_bind(l->ep, &l->cq->fid, FI_TRANSMIT | FI_RECV)) || (ret = fi_enable(l->ep))) {
    FAIL(p, "opening an endpoint: %s", fi_strerror(-ret));
    return -1;
  }
  return 0;
}

/* Points l at the peer's endpoint, named name. */
static int channel_connect(proc *p, channel *l, const char *name) {
  if (fi_av_insert(l->av, name, 1, &l->peer, 0, NULL) == 1) return 0;
  FAIL(p, "fi_av_insert of the peer's address");
  return -1;
}

static void channel_close(channel *l) {
  if (l->ep) fi_close(&l->ep->fid);
  if (l->av) fi_close(&l->av->fid);
  if (l->cq) fi_close(&l->cq->fid);
  *l = (channel){0};
}

static int locate(proc *p, const void *ptr, size_t len, remote *out) {
  pinheap_ofi_addr a;
  if (pinheap_ofi_locate(p->heap, ptr, &a) != 0) {
    FAIL(p, "pinheap_ofi_locate: %s", pinheap_ofi_last_error());
    return -1;
  }
  *out = (remote){.addr = a.addr, .key = a.key, .len = len};
  return 0;
}

/* Opens everything, allocates the blocks and trades hellos. */
static int setup(proc *p, const char *prov, bool basic, hello *peer) {
  struct fi_info *hints = fi_allocinfo();
  if (!hints) return -1;
  hints->caps = FI_RMA | FI_ATOMIC;
  hints->ep_attr->type = FI_EP_RDM;
  hints->tx_attr->op_flags = FI_DELIVERY_COMPLETE; /* a write's completion: the data is in place */
  hints->fabric_attr->prov_name = strdup(prov);
  hints->domain_attr->mr_mode = basic ? FI_MR_BASIC : FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY;
  p->po = pinheap_ofi_open(hints, FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE);
  fi_freeinfo(hints);
  if (!p->po) {
    FAIL(p, "%s", pinheap_ofi_last_error());
    return -1;
  }
  int mode = pinheap_ofi_info(p->po)->domain_attr->mr_mode;
  bool virt = mode == FI_MR_BASIC || (mode & FI_MR_VIRT_ADDR),
       prov_key = mode == FI_MR_BASIC || (mode & FI_MR_PROV_KEY);
  SAY(p, "provider %s: %s keys, %s", pinheap_ofi_info(p->po)->fabric_attr->prov_name,
      prov_key ? "the provider's" : "requested", virt ? "virtual addresses" : "offsets in the registration");

  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = p->rank == 0 ? PINHEAP_FIXED : PINHEAP_DYNAMIC;
  o.size = p->rank == 0 ? 64 * MiB : 0;
  o.arenas = 1;
  o.provider = pinheap_ofi_provider(p->po);
  p->heap = pinheap_create(&o);
  if (!p->heap) {
    FAIL(p, "pinheap_create: %s (%s)", pinheap_last_error(), pinheap_ofi_last_error());
    return -1;
  }
  if (channel_open(p, &p->chan) != 0) return -1;

  hello me = {.name_len = sizeof me.name};
  int ret = fi_getname(&p->chan.ep->fid, me.name, &me.name_len);
  if (ret) {
    FAIL(p, "fi_getname: %s", fi_strerror(-ret));
    return -1;
  }
  for (int i = 0; i < NBLOCKS; i++) {
    p->block[i] = pinheap_calloc(p->heap, 1, block_sizes[i]);
    if (!p->block[i]) {
      FAIL(p, "pinheap_calloc(%zu): %s", block_sizes[i], pinheap_last_error());
      return -1;
    }
    if (locate(p, p->block[i], block_sizes[i], &me.block[i]) != 0) return -1;
  }
  p->counter = pinheap_calloc(p->heap, 1, sizeof *p->counter);
  p->buf = pinheap_malloc(p->heap, 9 * MiB);
  p->operand = pinheap_malloc(p->heap, 3 * sizeof *p->operand);
  if (!p->counter || !p->buf || !p->operand) {
    FAIL(p, "pinheap_malloc: %s", pinheap_last_error());
    return -1;
  }
  pinheap_ofi_stats s;
  pinheap_ofi_get_stats(p->po, &s);
  SAY(p, "%s heap: %zu registrations of %zu bytes in all", p->rank == 0 ? "FIXED" : "DYNAMIC", s.regions, s.bytes);
  if (locate(p, p->counter, sizeof *p->counter, &me.counter) != 0 ||
      pinheap_ofi_locate(p->heap, p->buf, &p->buf_at) != 0 ||
      pinheap_ofi_locate(p->heap, p->operand, &p->operand_at) != 0)
    return -1;

  if (!send_all(p->sock, &me, sizeof me) || !recv_all(p, peer, sizeof *peer)) {
    FAIL(p, "exchanging addresses with the peer");
    return -1;
  }
  return channel_connect(p, &p->chan, peer->name);
}

/* Writes a pattern into each of the peer's blocks and reads it back. */
static void write_and_read(proc *p, const hello *peer) {
  channel *l = &p->chan;
  char err[256];
  int status;
  for (int i = 0; i < NBLOCKS; i++) {
    const remote *r = &peer->block[i];
    size_t len = (size_t)r->len;
    for (size_t j = 0; j < len; j++) p->buf[j] = pattern(p->rank, i, j);
    RUN_OP(p, l, err, fi_write(l->ep, p->buf, len, p->buf_at.desc, l->peer, r->addr, r->key, NULL));
    if (status) {
      FAIL(p, "fi_write of %zu bytes to key %llu: %s", len, (unsigned long long)r->key, err);
      continue;
    }
    memset(p->buf, 0, len);
    RUN_OP(p, l, err, fi_read(l->ep, p->buf, len, p->buf_at.desc, l->peer, r->addr, r->key, NULL));
    if (status) {
      FAIL(p, "fi_read of %zu bytes from key %llu: %s", len, (unsigned long long)r->key, err);
      continue;
    }
    size_t bad = 0;
    for (size_t j = 0; j < len; j++) bad += p->buf[j] != pattern(p->rank, i, j);
    if (bad)
      FAIL(p, "%zu of %zu bytes read back from the peer's block %d differ from what was written", bad, len, i);
    else
      SAY(p, "wrote and read back %zu bytes at the peer's key %llu, address 0x%llx", len, (unsigned long long)r->key,
          (unsigned long long)r->addr);
  }
}

/* Adds 1 to the peer's counter ADDS times, reads it, swaps ADDS for 1000. */
static void atomics(proc *p, const hello *peer) {
  const remote *c = &peer->counter;
  channel *l = &p->chan;
  size_t count;
  if (fi_atomicvalid(l->ep, FI_UINT64, FI_SUM, &count) ||
      fi_fetch_atomicvalid(l->ep, FI_UINT64, FI_ATOMIC_READ, &count) ||
      fi_compare_atomicvalid(l->ep, FI_UINT64, FI_CSWAP, &count)) {
    FAIL(p, "the provider has no 64-bit atomic sum, read or compare-and-swap");
    return;
  }
  char err[256];
  int status = 0;
  uint64_t *op = p->operand;
  for (int k = 0; k < ADDS && !status; k++) {
    op[0] = 1;
    RUN_OP(p, l, err,
           fi_atomic(l->ep, &op[0], 1, p->operand_at.desc, l->peer, c->addr, c->key, FI_UINT64, FI_SUM, NULL));
  }
  if (status) {
    FAIL(p, "fi_atomic FI_SUM on the peer's counter: %s", err);
    return;
  }
  op[2] = 0;
  RUN_OP(p, l, err,
         fi_fetch_atomic(l->ep, &op[0], 1, p->operand_at.desc, &op[2], p->operand_at.desc, l->peer, c->addr, c->key,
                         FI_UINT64, FI_ATOMIC_READ, NULL));
  if (status || op[2] != ADDS) {
    FAIL(p, "fi_fetch_atomic read %llu from the peer's counter, expected %d %s", (unsigned long long)op[2], ADDS,
         status ? err : "");
    return;
  }
  op[0] = 1000;
  op[1] = ADDS;
  RUN_OP(p, l, err,
         fi_compare_atomic(l->ep, &op[0], 1, p->operand_at.desc, &op[1], p->operand_at.desc, &op[2], p->operand_at.desc,
                           l->peer, c->addr, c->key, FI_UINT64, FI_CSWAP, NULL));
  if (status || op[2] != ADDS) {
    FAIL(p, "fi_compare_atomic found %llu in the peer's counter, expected %d %s", (unsigned long long)op[2], ADDS,
         status ? err : "");
    return;
  }
  SAY(p, "added 1 to the peer's counter %d times, read %d, swapped it for 1000", ADDS, ADDS);
}

/* What the peer did to this process's memory. */
static void check_own(proc *p) {
  int peer = 1 - p->rank;
  for (int i = 0; i < NBLOCKS; i++) {
    size_t bad = 0;
    for (size_t j = 0; j < block_sizes[i]; j++) bad += p->block[i][j] != pattern(peer, i, j);
    if (bad) FAIL(p, "%zu of %zu bytes of block %d differ from what the peer wrote", bad, block_sizes[i], i);
  }
  if (*p->counter != 1000) FAIL(p, "the counter holds %llu, expected 1000", (unsigned long long)*p->counter);
  if (!p->failures) SAY(p, "its own %d blocks hold the peer's patterns, its counter 1000", NBLOCKS);
}

/* The allgather of the symmetric heap's collective, for two processes: this
 * one's bytes and the peer's, in rank order, serving the peer meanwhile. */
static int sock_allgather(void *ctx, const void *in, void *out, size_t len) {
  proc *p = ctx;
  char *mine = (char *)out + (size_t)p->rank * len, *theirs = (char *)out + (size_t)(1 - p->rank) * len;
  memcpy(mine, in, len);
  return send_all(p->sock, in, len) && recv_all(p, theirs, len) ? 0 : EIO;
}

#define SYM_OBJECTS 3
static const size_t sym_sizes[SYM_OBJECTS] = {64, 25000, 5 * MiB};

/* Symmetric objects reached through pinheap_ofi_remote: each process writes
 * its src objects into the peer's dst ones, then reads the peer's src ones
 * into its own dst ones; the local side of each transfer is the local
 * object itself. */
static void symmetric(proc *p) {
  pinheap_sym *sym = pinheap_ofi_sym_create(p->po, p->heap, 16 * MiB, &p->coll, 0);
  if (!sym) {
    FAIL(p, "pinheap_ofi_sym_create: %s (%s)", pinheap_last_error(), pinheap_ofi_last_error());
    return;
  }
  channel *l = &p->chan;
  char *src[SYM_OBJECTS] = {0}, *dst[SYM_OBJECTS] = {0}, err[256];
  int status = 0, peer = 1 - p->rank;
  for (int i = 0; i < SYM_OBJECTS; i++) {
    src[i] = pinheap_sym_malloc(sym, sym_sizes[i]);
    dst[i] = pinheap_sym_calloc(sym, 1, sym_sizes[i]);
    if (!src[i] || !dst[i]) {
      /* A failure on one process is one on both: they stop alike. */
      FAIL(p, "pinheap_sym_malloc(%zu): %s", sym_sizes[i], pinheap_last_error());
      goto out;
    }
    for (size_t j = 0; j < sym_sizes[i]; j++) src[i][j] = pattern(p->rank, i + NBLOCKS, j);
  }
  for (int i = 0; i < SYM_OBJECTS; i++) {
    pinheap_ofi_addr at, from;
    if (pinheap_ofi_remote(sym, dst[i], peer, &at) != 0 || pinheap_ofi_remote(sym, src[i], peer, &from) != 0) {
      FAIL(p, "pinheap_ofi_remote: %s", pinheap_ofi_last_error());
      continue;
    }
    /* The local side: src[i] itself, whose descriptor comes with its own
     * remote call. */
    RUN_OP(p, l, err, fi_write(l->ep, src[i], sym_sizes[i], from.desc, l->peer, at.addr, at.key, NULL));
    if (status) FAIL(p, "fi_write of %zu bytes to the peer's symmetric object: %s", sym_sizes[i], err);
  }
  /* Delivery complete: the writes are in place once they completed. */
  if (barrier(p))
    for (int i = 0; i < SYM_OBJECTS; i++) {
      size_t bad = 0;
      for (size_t j = 0; j < sym_sizes[i]; j++) bad += dst[i][j] != pattern(peer, i + NBLOCKS, j);
      if (bad) FAIL(p, "%zu of %zu bytes of a symmetric object differ from what the peer wrote", bad, sym_sizes[i]);
    }
  for (int i = 0; i < SYM_OBJECTS; i++) {
    pinheap_ofi_addr from, into;
    memset(dst[i], 0, sym_sizes[i]);
    if (pinheap_ofi_remote(sym, src[i], peer, &from) != 0 || pinheap_ofi_remote(sym, dst[i], peer, &into) != 0) {
      FAIL(p, "pinheap_ofi_remote: %s", pinheap_ofi_last_error());
      continue;
    }
    RUN_OP(p, l, err, fi_read(l->ep, dst[i], sym_sizes[i], into.desc, l->peer, from.addr, from.key, NULL));
    size_t bad = 0;
    for (size_t j = 0; !status && j < sym_sizes[i]; j++) bad += dst[i][j] != pattern(peer, i + NBLOCKS, j);
    if (status || bad)
      FAIL(p, "fi_read of the peer's symmetric object of %zu bytes: %s, %zu bytes differ", sym_sizes[i],
           status ? err : "completed", bad);
  }
  if (!p->failures)
    SAY(p, "symmetric objects of 64, 25000 and %zu bytes written and read through pinheap_ofi_remote", 5 * MiB);
out:
  /* Each free is collective: the peer's reads of these objects are over. */
  for (int i = 0; i < SYM_OBJECTS; i++) {
    pinheap_sym_free(sym, src[i]);
    pinheap_sym_free(sym, dst[i]);
  }
  pinheap_sym_destroy(sym);
}

/* A write with key must end in an error completion. It goes through an
 * endpoint of its own: the tcp provider drops the connection that carried
 * a rejected operation. */
static void expect_rejected(proc *p, const char *peer_name, const remote *r, uint64_t key, const char *what) {
  channel l = {0};
  char err[256];
  int status;
  size_t len = r->len < 4096 ? (size_t)r->len : 4096;
  memset(p->buf, 0x5a, len);
  if (channel_open(p, &l) != 0 || channel_connect(p, &l, peer_name) != 0) {
    channel_close(&l);
    return;
  }
  RUN_OP(p, &l, err, fi_write(l.ep, p->buf, len, p->buf_at.desc, l.peer, r->addr, key, NULL));
  channel_close(&l);
  if (status == 0)
    FAIL(p, "a write with %s (key %llu) completed", what, (unsigned long long)key);
  else
    SAY(p, "a write with %s (key %llu) was rejected: %s", what, (unsigned long long)key, err);
}

static int run(proc *p, const char *prov, bool basic) {
  hello peer;
  if (setup(p, prov, basic, &peer) == 0 && barrier(p)) {
    write_and_read(p, &peer);
    atomics(p, &peer);
    if (barrier(p)) check_own(p);
    symmetric(p);
    if (!p->checks_keys) {
      SAY(p, "skipping the writes with bad keys: the %s provider does not reject them with an error", prov);
    } else {
      /* Rank 1 frees its 9 MiB block and trims (the cache): its registration goes. */
      if (p->rank == 1) {
        pinheap_ofi_stats before, after;
        pinheap_ofi_get_stats(p->po, &before);
        pinheap_free(p->heap, p->block[NBLOCKS - 1]);
        p->block[NBLOCKS - 1] = NULL;
        pinheap_trim(p->heap);
        pinheap_ofi_get_stats(p->po, &after);
        if (after.deregistered == before.deregistered)
          FAIL(p, "freeing the 9 MiB block and trimming deregistered nothing");
        else
          SAY(p, "freed its 9 MiB block and trimmed: its registration is closed");
      }
      if (barrier(p)) {
        uint64_t unknown = 0;
        for (int i = 0; i < NBLOCKS; i++) unknown = peer.block[i].key > unknown ? peer.block[i].key : unknown;
        expect_rejected(p, peer.name, &peer.block[0], unknown + 12345, "a key no registration has");
        if (p->rank == 0)
          expect_rejected(p, peer.name, &peer.block[NBLOCKS - 1], peer.block[NBLOCKS - 1].key,
                          "the key of a freed block");
      }
    }
    if (!barrier(p)) FAIL(p, "the peer went away");
  }
  channel_close(&p->chan);
  if (p->heap) {
    for (int i = 0; i < NBLOCKS; i++) pinheap_free(p->heap, p->block[i]);
    pinheap_free(p->heap, p->counter);
    pinheap_free(p->heap, p->buf);
    pinheap_free(p->heap, p->operand);
    pinheap_destroy(p->heap);
  }
  if (p->po) {
    pinheap_ofi_stats s;
    pinheap_ofi_get_stats(p->po, &s);
    if (s.regions || s.registered != s.deregistered)
      FAIL(p, "%zu registrations left after the heap was destroyed", s.regions);
    else
      SAY(p, "%zu registrations made and closed", s.registered);
    pinheap_ofi_destroy(p->po);
  }
  SAY(p, "%s", p->failures ? "FAILED" : "ok");
  return p->failures ? 1 : 0;
}

/* Files left in /dev/shm by process pid: the shm provider names those of
 * an endpoint "<pid>:..." and removes them when the endpoint is closed. */
static int shm_files_left(pid_t pid) {
  char prefix[32];
  int n = 0, len = snprintf(prefix, sizeof prefix, "%d:", (int)pid);
  DIR *d = opendir("/dev/shm");
  if (!d) return 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (strncmp(e->d_name, prefix, (size_t)len) == 0) {
      printf("left in /dev/shm: %s\n", e->d_name);
      n++;
    }
  closedir(d);
  return n;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "basic") != 0)) {
    fprintf(stderr, "usage: %s <libfabric provider, e.g. 'tcp;ofi_rxm' or shm> [basic]\n", argv[0]);
    return 2;
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    perror("socketpair");
    return 1;
  }
  fflush(stdout);
  pid_t child = fork();
  if (child < 0) {
    perror("fork");
    return 1;
  }
  alarm(30); /* in both processes: a hang ends */
  proc p = {.rank = child == 0 ? 1 : 0, .sock = sv[child == 0 ? 1 : 0], .checks_keys = strcmp(argv[1], "shm") != 0};
  p.coll = (pinheap_collective){.ctx = &p, .rank = p.rank, .nranks = 2, .allgather = sock_allgather};
  close(sv[child == 0 ? 0 : 1]);
  int rc = run(&p, argv[1], argc == 3);
  close(p.sock);
  if (child == 0) return rc;
  int status;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    printf("rank 1 failed (%s %d)\n", WIFSIGNALED(status) ? "signal" : "exit status",
           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    rc = 1;
  }
  if (shm_files_left(getpid()) + shm_files_left(child) != 0) rc = 1;
  printf("%s\n", rc ? "FAILED" : "ok: both processes, no files left in /dev/shm");
  return rc;
}
