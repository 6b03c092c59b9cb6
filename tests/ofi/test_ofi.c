/*
 * Tests of the libfabric provider on one libfabric provider, named by the
 * first argument ("tcp;ofi_rxm", "shm"); a second argument "basic" opens
 * the domain in FI_MR_BASIC mode (provider keys and virtual addresses)
 * instead of the provider's own mode. FIXED and DYNAMIC heaps on the
 * provider: regions registered and deregistered as chunks and direct blocks
 * come and go, counted; every block located and then written through a
 * loopback endpoint at the key and address locate gives; requested keys
 * that skip keys taken (more than 64 in a row) and wrap; threads; bad
 * arguments (hints without domain attributes, FI_MR_LOCAL without local
 * access); a prefault that fails (MADV_POPULATE_WRITE answers ENOMEM,
 * injected through the program's own madvise, which the library's call
 * reaches first) fails the obtain without touching the pages. Locate in
 * both shapes, (po, heap, ptr, out) and (heap, ptr, out), answers the same.
 * Symmetric heaps from pinheap_ofi_sym_create (a group of one) in FIXED and
 * DYNAMIC heaps: the key, address and descriptor pinheap_ofi_remote gives
 * are locate's, and a write through them lands.
 *
 * Longer than 600 lines: every case runs on the one libfabric provider
 * named, over the fabric, domain and loopback endpoint set up once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/mman.h>
#include <sys/syscall.h>

#include <rdma/fi_cm.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include "pinheap.h"
#include "pinheap_ofi.h"
#include "pinheap_sym.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define ACCESS (FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE)

static const char *prov_name;
static bool basic;

/* The group of one of the symmetric heaps here. */
static int solo_allgather(void *ctx, const void *in, void *out, size_t len) {
  (void)ctx;
  memcpy(out, in, len);
  return 0;
}

static const pinheap_collective solo = {.rank = 0, .nranks = 1, .allgather = solo_allgather};

/* Calls of madvise(MADV_POPULATE_WRITE) still to fail with ENOMEM. */
static int fail_populate;

int madvise(void *addr, size_t len, int advice) {
  if (advice == MADV_POPULATE_WRITE && fail_populate > 0) {
    fail_populate--;
    errno = ENOMEM;
    return -1;
  }
  return (int)syscall(SYS_madvise, addr, len, advice);
}

/* This process's resident bytes (VmRSS). */
static size_t resident(void) {
  FILE *f = fopen("/proc/self/status", "r");
  assert_non_null(f);
  char line[256];
  size_t kb = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %zu kB", &kb) == 1) break;
  fclose(f);
  assert_true(kb > 0);
  return kb << 10;
}

static pinheap_ofi *open_ofi(void) {
  struct fi_info *hints = fi_allocinfo();
  assert_non_null(hints);
  hints->caps = FI_RMA;
  hints->ep_attr->type = FI_EP_RDM;
  hints->tx_attr->op_flags = FI_DELIVERY_COMPLETE; /* a write's completion: the data is in place */
  hints->fabric_attr->prov_name = strdup(prov_name);
  /* Every mode the provider serves (it leaves FI_MR_ENDPOINT out), or the
   * legacy basic mode. */
  hints->domain_attr->mr_mode =
      basic ? FI_MR_BASIC : FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT;
  pinheap_ofi *po = pinheap_ofi_open(hints, ACCESS);
  fi_freeinfo(hints);
  if (!po) fprintf(stderr, "pinheap_ofi_open: %s\n", pinheap_ofi_last_error());
  assert_non_null(po);
  return po;
}

/* A heap whose direct blocks are registered when allocated and
 * deregistered when freed (no cache of direct registrations): the tests
 * count them. */
static pinheap *heap_on(pinheap_ofi *po, pinheap_mode mode, size_t size) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = mode;
  o.size = size;
  o.arenas = 1;
  o.chunk_size = 2 * MiB;
  o.direct_threshold = 4 * MiB;
  o.direct_cache = 0;
  o.provider = pinheap_ofi_provider(po);
  pinheap *h = pinheap_create(&o);
  if (!h) fprintf(stderr, "pinheap_create: %s (%s)\n", pinheap_last_error(), pinheap_ofi_last_error());
  assert_non_null(h);
  return h;
}

static pinheap_ofi_stats stats_of(pinheap_ofi *po) {
  pinheap_ofi_stats s;
  assert_int_equal(pinheap_ofi_get_stats(po, &s), 0);
  assert_int_equal(pinheap_ofi_check(po), 0);
  return s;
}

/* An endpoint that writes to itself, with its completion queue; one at a
 * time, closed after each test, failed or not (the shm provider's files in
 * /dev/shm go with it). */
typedef struct loop {
  struct fid_cq *cq;
  struct fid_av *av;
  struct fid_ep *ep;
  fi_addr_t self;
} loop;

static loop the_loop;

static loop *loop_open(pinheap_ofi *po) {
  loop *l = &the_loop;
  assert_null(l->ep);
  struct fid_domain *d = pinheap_ofi_domain(po);
  struct fi_cq_attr cq_attr = {.format = FI_CQ_FORMAT_CONTEXT};
  struct fi_av_attr av_attr = {.type = FI_AV_TABLE};
  assert_int_equal(fi_cq_open(d, &cq_attr, &l->cq, NULL), 0);
  assert_int_equal(fi_av_open(d, &av_attr, &l->av, NULL), 0);
  assert_int_equal(fi_endpoint(d, pinheap_ofi_info(po), &l->ep, NULL), 0);
  assert_int_equal(fi_ep_bind(l->ep, &l->av->fid, 0), 0);
  assert_int_equal(fi_ep_bind(l->ep, &l->cq->fid, FI_TRANSMIT | FI_RECV), 0);
  assert_int_equal(fi_enable(l->ep), 0);
  char name[256];
  size_t len = sizeof name;
  assert_int_equal(fi_getname(&l->ep->fid, name, &len), 0);
  assert_int_equal(fi_av_insert(l->av, name, 1, &l->self, 0, NULL), 1);
  return l;
}

/* The teardown of every test. */
static int loop_close(void **state) {
  (void)state;
  loop *l = &the_loop;
  int failed = 0;
  if (l->ep) failed |= fi_close(&l->ep->fid);
  if (l->av) failed |= fi_close(&l->av->fid);
  if (l->cq) failed |= fi_close(&l->cq->fid);
  *l = (loop){0};
  return failed;
}

/* Writes len bytes of src (in a heap on po, so that it has a descriptor)
 * to dst as locate gave it, and waits for the completion (10 s at most). */
static void loop_write(loop *l, const void *src, const pinheap_ofi_addr *local, size_t len,
                       const pinheap_ofi_addr *dst) {
  time_t end = time(NULL) + 10;
  ssize_t ret;
  while ((ret = fi_write(l->ep, src, len, local->desc, l->self, dst->addr, dst->key, NULL)) == -FI_EAGAIN) {
    struct fi_cq_entry e;
    assert_true(fi_cq_read(l->cq, &e, 1) == -FI_EAGAIN);
    assert_true(time(NULL) < end);
  }
  assert_int_equal(ret, 0);
  for (;;) {
    struct fi_cq_entry e;
    ret = fi_cq_read(l->cq, &e, 1);
    if (ret == 1) return;
    if (ret == -FI_EAVAIL) {
      struct fi_cq_err_entry err = {0};
      fi_cq_readerr(l->cq, &err, 0);
      fail_msg("fi_write of %zu bytes to key %llu addr 0x%llx: %s", len, (unsigned long long)dst->key,
               (unsigned long long)dst->addr, fi_strerror(err.err));
    }
    assert_int_equal(ret, -FI_EAGAIN);
    assert_true(time(NULL) < end);
  }
}

/* Locates p (size bytes) in h and checks what locate says against the
 * registration pinheap_region_of names. */
static pinheap_ofi_addr located(pinheap_ofi *po, pinheap *h, const char *p, size_t size) {
  pinheap_ofi_addr a;
  pinheap_region r;
  assert_int_equal(pinheap_ofi_locate(po, h, p, &a), 0);
  assert_int_equal(pinheap_region_of(h, p, &r), 0);
  assert_true(p >= (char *)r.base && p + size <= (char *)r.base + r.size);
  bool virt = pinheap_ofi_info(po)->domain_attr->mr_mode & FI_MR_VIRT_ADDR ||
              pinheap_ofi_info(po)->domain_attr->mr_mode == FI_MR_BASIC;
  assert_int_equal(a.addr, virt ? (uint64_t)(uintptr_t)p : (uint64_t)(p - (char *)r.base));
  pinheap_ofi_addr last;
  assert_int_equal(pinheap_ofi_locate(po, h, p + size - 1, &last), 0);
  assert_int_equal(last.key, a.key);
  assert_int_equal(last.addr, a.addr + size - 1);
  pinheap_ofi_addr three; /* the shape of pinheap_mpi_locate: the object found through the heap */
  assert_int_equal(pinheap_ofi_locate(h, p, &three), 0);
  assert_int_equal(three.key, a.key);
  assert_int_equal(three.addr, a.addr);
  assert_ptr_equal(three.desc, a.desc);
  return a;
}

/* Writes a pattern into p through the loopback endpoint and checks it
 * landed there and nowhere else. */
static void write_through(loop *l, pinheap_ofi *po, pinheap *h, char *p, size_t size, char *src, int tag) {
  pinheap_ofi_addr dst = located(po, h, p, size), local = located(po, h, src, size);
  for (size_t i = 0; i < size; i++) src[i] = (char)(i * 7 + (size_t)tag);
  memset(p, 0, size);
  loop_write(l, src, &local, size, &dst);
  assert_memory_equal(p, src, size);
}

static void test_fixed_heap(void **state) {
  (void)state;
  pinheap_ofi *po = open_ofi();
  pinheap *h = heap_on(po, PINHEAP_FIXED, 64 * MiB);
  pinheap_ofi_stats s = stats_of(po);
  assert_int_equal(s.regions, 1);
  assert_int_equal(s.registered, 1);
  assert_int_equal(s.bytes, 64 * MiB);
  loop *l = loop_open(po);
  static const size_t sizes[] = {1, 100, 4096, 20000, MiB, 10 * MiB};
  enum { N = sizeof sizes / sizeof sizes[0] };
  char *blk[N];
  char *src = pinheap_malloc(h, 10 * MiB);
  assert_non_null(src);
  uint64_t key = located(po, h, src, 10 * MiB).key;
  for (int i = 0; i < N; i++) {
    blk[i] = pinheap_malloc(h, sizes[i]);
    assert_non_null(blk[i]);
    assert_int_equal(located(po, h, blk[i], sizes[i]).key, key); /* one region, one key */
    write_through(l, po, h, blk[i], sizes[i], src, i);
  }
  for (int i = 0; i < N; i++) pinheap_free(h, blk[i]);
  pinheap_free(h, src);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
  s = stats_of(po);
  assert_int_equal(s.regions, 0);
  assert_int_equal(s.deregistered, 1);
  assert_int_equal(s.bytes, 0);
  assert_int_equal(loop_close(NULL), 0);
  pinheap_ofi_destroy(po);
}

/* Blocks share a key exactly when they share a registration. */
static void assert_key_per_region(pinheap *h, char *const *blk, const uint64_t *keys, int n) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < i; j++) {
      pinheap_region a, b;
      assert_int_equal(pinheap_region_of(h, blk[i], &a), 0);
      assert_int_equal(pinheap_region_of(h, blk[j], &b), 0);
      assert_true((a.base == b.base) == (keys[i] == keys[j]));
    }
}

static void test_dynamic_heap(void **state) {
  (void)state;
  pinheap_ofi *po = open_ofi();
  pinheap *h = heap_on(po, PINHEAP_DYNAMIC, 0);
  pinheap_ofi_stats s0 = stats_of(po); /* the first chunk and those the arena took */
  assert_true(s0.regions >= 1);
  assert_int_equal(s0.registered, s0.regions);
  loop *l = loop_open(po);
  char *src = pinheap_malloc(h, 5 * MiB); /* a direct block: its own region */
  assert_non_null(src);
  assert_int_equal(stats_of(po).regions, s0.regions + 1);

  /* Large blocks: the heap grows by 2 MiB chunks, each registered. */
  enum { N = 24, D = 3 };
  char *blk[N + D];
  uint64_t keys[N + D];
  for (int i = 0; i < N; i++) {
    size_t size = 700 * KiB + (size_t)i * 4099;
    blk[i] = pinheap_malloc(h, size);
    assert_non_null(blk[i]);
    keys[i] = located(po, h, blk[i], size).key;
    write_through(l, po, h, blk[i], size, src, i);
  }
  pinheap_ofi_stats s = stats_of(po);
  /* At most two such blocks in a chunk, the first ones in the chunks there
   * were. */
  assert_true(s.regions - (s0.regions + 1) >= (N - 2 * s0.regions) / 2);
  assert_int_equal(s.registered, s.regions);
  size_t grown = s.regions;

  /* Direct blocks: one registration each, given back when freed. */
  for (int i = N; i < N + D; i++) {
    size_t size = 4 * MiB + (size_t)i;
    blk[i] = pinheap_malloc(h, size);
    assert_non_null(blk[i]);
    keys[i] = located(po, h, blk[i], size).key;
    write_through(l, po, h, blk[i], size, src, i);
  }
  assert_key_per_region(h, blk, keys, N + D);
  assert_int_equal(stats_of(po).regions, grown + D);
  pinheap_free(h, blk[N + 1]);
  s = stats_of(po);
  assert_int_equal(s.regions, grown + D - 1);
  assert_int_equal(s.deregistered, 1);
  pinheap_ofi_addr gone;
  errno = 0;
  assert_int_equal(pinheap_ofi_locate(po, h, blk[N + 1], &gone), -1);
  assert_int_equal(errno, EINVAL);
  pinheap_free(h, blk[N]);
  pinheap_free(h, blk[N + 2]);
  assert_int_equal(stats_of(po).deregistered, D);

  /* The chunks the blocks took go back at trim. */
  for (int i = 0; i < N; i++) pinheap_free(h, blk[i]);
  pinheap_trim(h);
  s = stats_of(po);
  assert_int_equal(s.regions, s0.regions + 1);
  assert_int_equal(s.deregistered, D + grown - (s0.regions + 1));

  /* Small objects: chunks added from inside jemalloc's hooks. */
  enum { SMALL = 12000 };
  static char *obj[SMALL];
  for (int i = 0; i < SMALL; i++) {
    obj[i] = pinheap_malloc(h, 1000);
    assert_non_null(obj[i]);
    obj[i][999] = (char)i;
  }
  assert_true(stats_of(po).regions >= s0.regions + 1 + 4);
  write_through(l, po, h, obj[SMALL - 1], 1000, src, 7);
  for (int i = 0; i < SMALL; i++) pinheap_free(h, obj[i]);
  pinheap_free(h, src);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
  s = stats_of(po);
  assert_int_equal(s.regions, 0);
  assert_int_equal(s.bytes, 0);
  assert_int_equal(s.registered, s.deregistered);
  assert_int_equal(s.failures, 0);
  assert_int_equal(loop_close(NULL), 0);
  pinheap_ofi_destroy(po);
}

/* Keys the caller takes on the domain before the heap's: more than 64 in a
 * row, which once made the search for a free key give up. */
#define TAKEN 70

/* Requested keys skip those the caller took on the domain, wrap within
 * mr_key_size, and run out with an error that names fi_mr_reg once every
 * key of the space is taken. */
static void test_requested_keys(void **state) {
  (void)state;
  pinheap_ofi *po = open_ofi();
  if (pinheap_ofi_info(po)->domain_attr->mr_mode & FI_MR_PROV_KEY ||
      pinheap_ofi_info(po)->domain_attr->mr_mode == FI_MR_BASIC) {
    pinheap_ofi_destroy(po);
    skip(); /* the provider's keys */
  }
  static char mine[TAKEN][4096];
  static struct fid_mr *mr[TAKEN];
  for (int i = 0; i < TAKEN; i++)
    assert_int_equal(
        fi_mr_reg(pinheap_ofi_domain(po), mine[i], 4096, FI_REMOTE_WRITE, 0, (uint64_t)i + 1, 0, &mr[i], NULL), 0);
  /* A second provider on the same domain, with one-byte keys. */
  struct fi_info *info = fi_dupinfo(pinheap_ofi_info(po));
  info->domain_attr->mr_key_size = 1;
  pinheap_ofi *small = pinheap_ofi_create(pinheap_ofi_domain(po), info, ACCESS);
  fi_freeinfo(info);
  assert_non_null(small);
  assert_null(pinheap_ofi_fabric(small));
  pinheap *h = heap_on(small, PINHEAP_DYNAMIC, 0);
  size_t chunks = stats_of(small).regions;
  /* The heap's chunks took keys TAKEN + 1, ...: the ones below are the
   * caller's. */
  char *first = pinheap_malloc(h, 100);
  assert_non_null(first);
  pinheap_ofi_addr a;
  assert_int_equal(pinheap_ofi_locate(small, h, first, &a), 0);
  assert_true(a.key > TAKEN && a.key <= TAKEN + chunks);
  /* Direct blocks one after the other: keys count up to 255, wrap, and
   * skip the caller's and the chunks' keys. */
  uint64_t expect = TAKEN + 1 + chunks;
  for (int i = 0; i < 600; i++) {
    char *p = pinheap_malloc(h, 4 * MiB);
    assert_non_null(p);
    assert_int_equal(pinheap_ofi_locate(small, h, p, &a), 0);
    assert_int_equal(a.key, expect);
    expect = expect == 255 ? TAKEN + 1 + chunks : expect + 1;
    pinheap_free(h, p);
  }
  /* The keys left for direct blocks, then fi_mr_reg finds none. */
  size_t left = 255 - TAKEN - chunks;
  static char *held[300];
  size_t n = 0;
  while (n < 300 && (held[n] = pinheap_malloc(h, 4 * MiB)) != NULL) n++;
  assert_int_equal(n, left);
  assert_int_equal(errno, ENOMEM);
  assert_non_null(strstr(pinheap_last_error(), "libfabric"));
  assert_non_null(strstr(pinheap_ofi_last_error(), "fi_mr_reg"));
  assert_non_null(strstr(pinheap_ofi_last_error(), "after 255 keys taken"));
  pinheap_ofi_stats s = stats_of(small);
  assert_int_equal(s.failures, 1);
  assert_int_equal(s.regions, 255 - TAKEN);
  while (n > 0) pinheap_free(h, held[--n]);
  pinheap_free(h, first);
  pinheap_destroy(h);
  assert_int_equal(stats_of(small).regions, 0);
  pinheap_ofi_destroy(small);
  for (int i = 0; i < TAKEN; i++) assert_int_equal(fi_close(&mr[i]->fid), 0);
  pinheap_ofi_destroy(po);
}

typedef struct worker {
  pinheap_ofi *po;
  pinheap *h;
  int id, failures;
} worker;

/* Direct blocks and small objects, allocated, located and freed. */
static void *worker_run(void *arg) {
  worker *w = arg;
  for (int i = 0; i < 200; i++) {
    size_t size = 4 * MiB + (size_t)(i % 5) * 4096;
    char *p = pinheap_malloc(w->h, size), *q = pinheap_malloc(w->h, 64 + (size_t)i);
    pinheap_ofi_addr a, b;
    pinheap_region r;
    if (!p || !q || pinheap_ofi_locate(w->po, w->h, p + size - 1, &a) != 0 ||
        pinheap_ofi_locate(w->po, w->h, q, &b) != 0 || pinheap_region_of(w->h, p, &r) != 0 || r.base != p ||
        a.key == b.key)
      w->failures++;
    if (p) p[size - 1] = (char)w->id;
    pinheap_free(w->h, p);
    pinheap_free(w->h, q);
  }
  return NULL;
}

enum { THREADS = 4 };

/* THREADS workers on h, joined, each without a failure. */
static void run_workers(pinheap_ofi *po, pinheap *h) {
  pthread_t t[THREADS];
  worker w[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker){.po = po, .h = h, .id = i};
    assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
  }
  for (int i = 0; i < THREADS; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(w[i].failures, 0);
  }
}

static void test_threads(void **state) {
  (void)state;
  pinheap_ofi *po = open_ofi();
  pinheap *h = heap_on(po, PINHEAP_DYNAMIC, 0);
  pinheap_ofi_stats s0 = stats_of(po);
  run_workers(po, h);
  /* Every direct block registered and deregistered; chunks stay. */
  pinheap_ofi_stats s = stats_of(po);
  assert_int_equal(s.deregistered - s0.deregistered, THREADS * 200);
  assert_true(s.registered - s0.registered >= THREADS * 200);
  pinheap_destroy(h);
  assert_int_equal(stats_of(po).regions, 0);
  pinheap_ofi_destroy(po);
}

/* The same with the cache of direct registrations (the default): the
 * threads reuse the registrations the others freed, so far fewer are
 * made; pinheap_trim deregisters those the cache holds. */
static void test_threads_cached(void **state) {
  (void)state;
  pinheap_ofi *po = open_ofi();
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_DYNAMIC;
  o.arenas = 1;
  o.chunk_size = 2 * MiB;
  o.direct_threshold = 4 * MiB;
  o.provider = pinheap_ofi_provider(po);
  pinheap *h = pinheap_create(&o);
  assert_non_null(h);
  pinheap_ofi_stats s0 = stats_of(po);
  run_workers(po, h);
  pinheap_trim(h);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_ofi_stats s = stats_of(po);
  assert_true(s.registered - s0.registered < THREADS * 200 / 2);
  assert_true(s.regions <= s0.regions);
  pinheap_destroy(h);
  assert_int_equal(stats_of(po).regions, 0);
  pinheap_ofi_destroy(po);
}

static void expect_error(int err, const char *text) {
  assert_int_equal(errno, err);
  if (!strstr(pinheap_ofi_last_error(), text)) fail_msg("'%s' does not say '%s'", pinheap_ofi_last_error(), text);
}

static void test_bad_arguments(void **state) {
  (void)state;
  pinheap_ofi *po = open_ofi();
  struct fid_domain *d = pinheap_ofi_domain(po);
  struct fi_info *info = pinheap_ofi_info(po);
  errno = 0;
  assert_null(pinheap_ofi_create(NULL, info, ACCESS));
  expect_error(EINVAL, "NULL");
  assert_null(pinheap_ofi_create(d, NULL, ACCESS));
  expect_error(EINVAL, "NULL");
  assert_null(pinheap_ofi_create(d, info, 0));
  expect_error(EINVAL, "access");
  assert_null(pinheap_ofi_create(d, info, FI_REMOTE_WRITE | FI_TAGGED));
  expect_error(EINVAL, "access");
  assert_null(pinheap_ofi_open(NULL, 0));
  expect_error(EINVAL, "access");
  /* Modes it cannot serve. */
  struct fi_info *copy = fi_dupinfo(info);
  copy->domain_attr->mr_mode = FI_MR_ENDPOINT | FI_MR_VIRT_ADDR;
  assert_null(pinheap_ofi_create(d, copy, ACCESS));
  expect_error(ENOTSUP, "FI_MR_ENDPOINT");
  copy->domain_attr->mr_mode = FI_MR_RAW | FI_MR_PROV_KEY;
  assert_null(pinheap_ofi_create(d, copy, ACCESS));
  expect_error(ENOTSUP, "FI_MR_RAW");
  /* FI_MR_LOCAL: the descriptors are for local buffers, which need local
   * access. */
  copy->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR;
  assert_null(pinheap_ofi_create(d, copy, FI_REMOTE_READ | FI_REMOTE_WRITE));
  expect_error(EINVAL, "FI_MR_LOCAL");
  pinheap_ofi *with_local = pinheap_ofi_create(d, copy, ACCESS);
  assert_non_null(with_local);
  pinheap_ofi_destroy(with_local);
  fi_freeinfo(copy);
  /* Hints built by hand, without domain attributes. */
  struct fi_info *bare = fi_allocinfo();
  bare->caps = FI_RMA;
  bare->ep_attr->type = FI_EP_RDM;
  bare->fabric_attr->prov_name = strdup(prov_name);
  free(bare->domain_attr);
  bare->domain_attr = NULL;
  pinheap_ofi *from_bare = pinheap_ofi_open(bare, ACCESS);
  if (!from_bare) fprintf(stderr, "pinheap_ofi_open: %s\n", pinheap_ofi_last_error());
  assert_non_null(from_bare);
  assert_non_null(strstr(pinheap_ofi_provider(from_bare)->name, prov_name));
  pinheap_ofi_destroy(from_bare);
  fi_freeinfo(bare);
  /* No such provider. */
  struct fi_info *hints = fi_allocinfo();
  hints->fabric_attr->prov_name = strdup("no-such-provider");
  assert_null(pinheap_ofi_open(hints, ACCESS));
  expect_error(ENODATA, "fi_getinfo (provider no-such-provider)");
  fi_freeinfo(hints);

  pinheap *h = heap_on(po, PINHEAP_FIXED, 16 * MiB);
  char *p = pinheap_malloc(h, 100);
  pinheap_ofi_addr a;
  assert_int_equal(pinheap_ofi_locate(NULL, h, p, &a), -1);
  expect_error(EINVAL, "NULL");
  assert_int_equal(pinheap_ofi_locate(po, NULL, p, &a), -1);
  expect_error(EINVAL, "NULL");
  assert_int_equal(pinheap_ofi_locate(po, h, p, NULL), -1);
  expect_error(EINVAL, "NULL");
  int local;
  assert_int_equal(pinheap_ofi_locate(po, h, &local, &a), -1);
  expect_error(EINVAL, "not in memory the heap obtained");
  assert_int_equal(pinheap_ofi_locate(NULL, p, &a), -1);
  expect_error(EINVAL, "NULL");
  assert_int_equal(pinheap_ofi_locate(h, p, NULL), -1);
  expect_error(EINVAL, "NULL");
  assert_int_equal(pinheap_ofi_locate(h, &local, &a), -1);
  expect_error(EINVAL, "not in memory the heap obtained");
  /* A heap on the local provider, and one on another pinheap_ofi. */
  pinheap_options o;
  pinheap_options_init(&o);
  o.size = 16 * MiB;
  o.arenas = 1;
  pinheap *lh = pinheap_create(&o);
  assert_non_null(lh);
  char *lp = pinheap_malloc(lh, 100);
  assert_int_equal(pinheap_ofi_locate(po, lh, lp, &a), -1);
  expect_error(EINVAL, "not registered by libfabric");
  assert_int_equal(pinheap_ofi_locate(lh, lp, &a), -1);
  expect_error(EINVAL, "not registered by a libfabric provider of pinheap_ofi");
  pinheap_ofi *other = pinheap_ofi_create(d, info, ACCESS);
  assert_non_null(other);
  assert_int_equal(pinheap_ofi_locate(other, h, p, &a), -1);
  expect_error(EINVAL, "not registered by libfabric");
  assert_int_equal(pinheap_ofi_locate(po, h, p, &a), 0);
  pinheap_ofi_addr three; /* found among two objects */
  assert_int_equal(pinheap_ofi_locate(h, p, &three), 0);
  assert_int_equal(three.key, a.key);
  assert_int_equal(three.addr, a.addr);
  assert_int_equal(pinheap_ofi_check(other), 0);
  pinheap_ofi_destroy(other);
  /* A symmetric heap on a heap of another provider, and remote addressing
   * of one made without this library. */
  errno = 0;
  assert_null(pinheap_ofi_sym_create(po, lh, MiB, &solo, 0));
  expect_error(EINVAL, "not registered by libfabric");
  assert_null(pinheap_ofi_sym_create(NULL, h, MiB, &solo, 0));
  expect_error(EINVAL, "NULL");
  pinheap_sym *plain = pinheap_sym_create(h, MiB, &solo, 0);
  assert_non_null(plain);
  assert_int_equal(pinheap_ofi_remote(plain, pinheap_sym_ptr(plain, 0), 0, &a), -1);
  expect_error(EINVAL, "pinheap_ofi_sym_create");
  pinheap_sym_destroy(plain);
  pinheap_free(lh, lp);
  pinheap_destroy(lh);

  pinheap_ofi_stats s;
  assert_int_equal(pinheap_ofi_get_stats(NULL, &s), -1);
  expect_error(EINVAL, "NULL");
  assert_int_equal(pinheap_ofi_get_stats(po, NULL), -1);
  expect_error(EINVAL, "NULL");
  assert_null(pinheap_ofi_domain(NULL));
  assert_null(pinheap_ofi_info(NULL));
  assert_null(pinheap_ofi_provider(NULL));
  assert_null(pinheap_ofi_fabric(NULL));
  assert_non_null(pinheap_ofi_fabric(po));
  assert_non_null(strstr(pinheap_ofi_provider(po)->name, prov_name));
  assert_int_equal(pinheap_ofi_destroy(NULL), 0);
  /* Destroying the provider under a live heap is refused; both stay usable. */
  assert_int_equal(pinheap_ofi_destroy(po), -1);
  expect_error(EBUSY, "registration(s) of 16777216 bytes still live: destroy the heaps first");
  char *q = pinheap_malloc(h, 4 * MiB);
  assert_non_null(q);
  assert_int_equal(pinheap_ofi_locate(po, h, q, &a), 0);
  pinheap_free(h, q);
  assert_int_equal(pinheap_ofi_check(po), 0);
  pinheap_free(h, p);
  pinheap_destroy(h);
  assert_int_equal(pinheap_ofi_destroy(po), 0);
}

/* A symmetric heap of sym_size bytes on a heap of mode, a group of one:
 * pinheap_ofi_remote answers what locate does, for rank 0, and a write from
 * one object into another through it lands. */
static void sym_on(pinheap_mode mode, size_t heap_size, size_t sym_size) {
  pinheap_ofi *po = open_ofi();
  pinheap *h = heap_on(po, mode, heap_size);
  pinheap_sym *sym = pinheap_ofi_sym_create(po, h, sym_size, &solo, 0);
  if (!sym) fail_msg("pinheap_ofi_sym_create: %s", pinheap_last_error());
  assert_int_equal(pinheap_sym_rank(sym), 0);
  loop *l = loop_open(po);
  static const size_t sizes[] = {64, 25000, 3 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes && 2 * sizes[i] < sym_size; i++) {
    char *src = pinheap_sym_malloc(sym, sizes[i]), *dst = pinheap_sym_calloc(sym, 1, sizes[i]);
    assert_non_null(src);
    assert_non_null(dst);
    pinheap_ofi_addr from, to, a;
    assert_int_equal(pinheap_ofi_remote(sym, src, 0, &from), 0);
    assert_int_equal(pinheap_ofi_remote(sym, dst + sizes[i] - 1, 0, &to), 0);
    a = located(po, h, dst, sizes[i]);
    assert_int_equal(to.key, a.key);
    assert_int_equal(to.addr, a.addr + sizes[i] - 1);
    assert_ptr_equal(to.desc, a.desc);
    assert_int_equal(pinheap_ofi_remote(sym, dst, 0, &to), 0);
    for (size_t j = 0; j < sizes[i]; j++) src[j] = (char)(j * 13 + i);
    loop_write(l, src, &from, sizes[i], &to);
    assert_memory_equal(dst, src, sizes[i]);
    int local;
    assert_int_equal(pinheap_ofi_remote(sym, dst, 1, &a), -1);
    expect_error(EINVAL, "rank 1");
    assert_int_equal(pinheap_ofi_remote(sym, &local, 0, &a), -1);
    expect_error(EINVAL, "outside");
    assert_int_equal(pinheap_ofi_remote(sym, dst, 0, NULL), -1);
    expect_error(EINVAL, "NULL");
    pinheap_sym_free(sym, src);
    pinheap_sym_free(sym, dst);
  }
  assert_int_equal(pinheap_sym_check(sym), 0);
  pinheap_sym_destroy(sym);
  assert_int_equal(loop_close(NULL), 0);
  pinheap_destroy(h);
  assert_int_equal(stats_of(po).regions, 0);
  pinheap_ofi_destroy(po);
}

static void test_sym_fixed(void **state) {
  (void)state;
  sym_on(PINHEAP_FIXED, 64 * MiB, 16 * MiB);
}

/* 16 MiB: above the direct threshold, a registration of its own; 1 MiB:
 * inside a chunk. */
static void test_sym_dynamic(void **state) {
  (void)state;
  sym_on(PINHEAP_DYNAMIC, 0, 16 * MiB);
  sym_on(PINHEAP_DYNAMIC, 0, MiB);
}

/* A prefault that cannot have its pages fails the obtain and touches none;
 * one that can faults them in. */
static void test_prefault(void **state) {
  (void)state;
  pinheap_ofi *po = open_ofi();
  assert_int_equal(pinheap_ofi_set_prefault(po, true), 0);
  pinheap_options o;
  pinheap_options_init(&o);
  o.size = 64 * MiB;
  o.arenas = 1;
  o.provider = pinheap_ofi_provider(po);
  size_t before = resident();
  fail_populate = 1;
  errno = 0;
  pinheap *h = pinheap_create(&o);
  int err = errno;
  assert_int_equal(fail_populate, 0);
  assert_null(h);
  assert_int_equal(err, ENOMEM);
  if (!strstr(pinheap_ofi_last_error(), "MADV_POPULATE_WRITE"))
    fail_msg("'%s' does not say MADV_POPULATE_WRITE", pinheap_ofi_last_error());
  assert_true(resident() < before + 16 * MiB);
  pinheap_ofi_stats s = stats_of(po);
  assert_int_equal(s.failures, 1);
  assert_int_equal(s.regions, 0);
  h = pinheap_create(&o);
  assert_non_null(h);
  assert_true(resident() >= before + 48 * MiB);
  pinheap_destroy(h);
  assert_int_equal(stats_of(po).regions, 0);
  pinheap_ofi_destroy(po);
}

/* Last: the shm provider names the files of an endpoint "<pid>:..." in
 * /dev/shm and must have removed them all when they were closed. */
static void test_no_shm_files_left(void **state) {
  (void)state;
  char prefix[32];
  int n = 0, len = snprintf(prefix, sizeof prefix, "%d:", (int)getpid());
  DIR *d = opendir("/dev/shm");
  if (!d) skip();
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (strncmp(e->d_name, prefix, (size_t)len) == 0) {
      fprintf(stderr, "left in /dev/shm: %s\n", e->d_name);
      n++;
    }
  closedir(d);
  assert_int_equal(n, 0);
}

int main(int argc, char **argv) {
  if (argc < 2 || (argc > 2 && strcmp(argv[2], "basic") != 0)) {
    fprintf(stderr, "usage: %s <libfabric provider, e.g. 'tcp;ofi_rxm' or shm> [basic]\n", argv[0]);
    return 2;
  }
  prov_name = argv[1];
  basic = argc > 2;
  printf("libfabric provider %s, %s memory registration mode\n", prov_name, basic ? "FI_MR_BASIC" : "its own");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_fixed_heap, loop_close),
      cmocka_unit_test_teardown(test_dynamic_heap, loop_close),
      cmocka_unit_test_teardown(test_requested_keys, loop_close),
      cmocka_unit_test_teardown(test_threads, loop_close),
      cmocka_unit_test_teardown(test_threads_cached, loop_close),
      cmocka_unit_test_teardown(test_bad_arguments, loop_close),
      cmocka_unit_test_teardown(test_prefault, loop_close),
      cmocka_unit_test_teardown(test_sym_fixed, loop_close),
      cmocka_unit_test_teardown(test_sym_dynamic, loop_close),
      cmocka_unit_test(test_no_shm_files_left),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
