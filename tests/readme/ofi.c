/* Context of the README's libfabric snippet: two processes (a fork and a
 * socketpair, no launcher), rank 0 with a FIXED heap, rank 1 with a
 * DYNAMIC one, run it on tcp;ofi_rxm (FI_TCP_IFACE=lo) and on shm. Each
 * writes 5 MiB into the other's symmetric object with the snippet's hints;
 * at the snippet's "...", after a barrier (through the socketpair, both
 * reading their completion queues meanwhile, as tcp needs), each checks
 * that its own object holds every byte the other wrote. */
#define _GNU_SOURCE /* strdup */
#pragma readme top

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rdma/fi_cm.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

static int rank, sock; /* this process, and the socket to the other */
static struct fid_cq *cq;
static struct fid_av *av;
static fi_addr_t peer_addr;

static _Noreturn void die(const char *what) {
  fprintf(stderr, "libfabric snippet: rank %d: %s\n", rank, what);
  exit(1);
}

static void my_progress(struct fid_ep *ep) {
  (void)ep;
  struct fi_cq_entry e;
  if (cq && fi_cq_read(cq, &e, 1) == -FI_EAVAIL) die("an error completion");
}

/* Sends mine, receives theirs (len bytes each), reading the completion
 * queue meanwhile. */
static void trade(const void *mine, void *theirs, size_t len) {
  if (write(sock, mine, len) != (ssize_t)len) die("write to the peer");
  for (size_t got = 0; got < len;) {
    struct pollfd p = {.fd = sock, .events = POLLIN};
    my_progress(NULL);
    if (poll(&p, 1, 1) <= 0) continue;
    ssize_t r = read(sock, (char *)theirs + got, len - got);
    if (r <= 0) die("the peer went away");
    got += (size_t)r;
  }
}

static int sock_allgather(void *ctx, const void *in, void *out, size_t len) {
  (void)ctx;
  memcpy((char *)out + (size_t)rank * len, in, len);
  trade(in, (char *)out + (size_t)(1 - rank) * len, len);
  return 0;
}

static struct fid_ep *my_endpoint(pinheap_ofi *po) {
  struct fi_cq_attr cq_attr = {.format = FI_CQ_FORMAT_CONTEXT};
  struct fi_av_attr av_attr = {.type = FI_AV_TABLE};
  struct fid_ep *ep = NULL;
  char name[256], theirs[256] = {0};
  size_t len = sizeof name;
  memset(name, 0, sizeof name);
  if (!po || fi_cq_open(pinheap_ofi_domain(po), &cq_attr, &cq, NULL) ||
      fi_av_open(pinheap_ofi_domain(po), &av_attr, &av, NULL) ||
      fi_endpoint(pinheap_ofi_domain(po), pinheap_ofi_info(po), &ep, NULL) || fi_ep_bind(ep, &av->fid, 0) ||
      fi_ep_bind(ep, &cq->fid, FI_TRANSMIT | FI_RECV) || fi_enable(ep) || fi_getname(&ep->fid, name, &len))
    die(po ? "opening an endpoint" : pinheap_ofi_last_error());
  trade(name, theirs, sizeof name);
  if (fi_av_insert(av, theirs, 1, &peer_addr, 0, NULL) != 1) die("fi_av_insert");
  return ep;
}

static void my_wait(struct fid_ep *ep) {
  (void)ep;
  struct fi_cq_entry e;
  ssize_t r;
  while ((r = fi_cq_read(cq, &e, 1)) == -FI_EAGAIN) continue;
  if (r != 1) die("the write failed");
}

static void my_close(struct fid_ep *ep) {
  fi_close(&ep->fid);
  fi_close(&av->fid);
  fi_close(&cq->fid);
  cq = NULL;
}

/* The peer's write into x is complete once it reports its completion. */
#define README_ELLIPSIS()                                                    \
  do {                                                                       \
    char b = 'b';                                                            \
    trade(&b, &b, 1);                                                        \
    for (size_t j = 0; j < len; j++)                                         \
      if (x[j] != 7) die("a byte of x is not what the peer wrote");          \
  } while (0)

static int run(const char *prov) {
  pinheap_options opts;
  pinheap_options_init(&opts);
  opts.mode = rank == 0 ? PINHEAP_FIXED : PINHEAP_DYNAMIC;
  opts.size = rank == 0 ? (size_t)256 << 20 : 0;
  opts.arenas = 1;
  pinheap_collective coll = {.rank = rank, .nranks = 2, .allgather = sock_allgather};
  size_t len = (size_t)5 << 20;
  int peer = 1 - rank;
#pragma readme body
  return 0;
}

int main(void) {
  static const char *const provs[] = {"tcp;ofi_rxm", "shm"};
  int failed = 0;
  for (int k = 0; k < 2; k++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) return 1;
    alarm(60);
    rank = child == 0;
    sock = sv[rank];
    close(sv[1 - rank]);
    int rc = run(provs[k]);
    if (child == 0) _exit(rc);
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status)) rc = 1;
    close(sock);
    printf("libfabric snippet on %s: %s\n", provs[k], rc ? "FAILED" : "ok");
    failed |= rc;
  }
  return failed;
}
