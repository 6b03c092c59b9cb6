/*
 * dht: a distributed hash table whose values live in pinheap memory.
 *
 * Every rank owns the keys that hash to it. Its index (open addressing,
 * linear probing) and the values, variable-sized blobs from a few bytes to
 * blocks above the DYNAMIC heap's direct threshold, are allocated in its own
 * DYNAMIC heap, whose chunks and direct blocks the MPI provider attaches to
 * one dynamic window. Writes go to the owner as messages (the owner
 * allocates, frees and updates its index); reads are one-sided: a reader
 * fetches index slots with MPI_Get until it finds the key, then the blob by
 * (rank, address, length), for a batch of keys at a time.
 *
 * Phases, each ended by a barrier: every rank inserts its keys; every rank
 * looks up keys of all ranks; every rank deletes a third of its keys and
 * rewrites another third with values of other sizes; every rank looks up
 * every key (deleted ones must be absent). Then each owner checks its index
 * against the keys that hash to it, frees every blob and checks its heap.
 *
 *   mpirun.mpich -np N dht_mpich [keys_per_rank] [lookups_per_rank] [seed]
 *   tests/mpi/run.sh openmpi N build/examples/dht_openmpi ...
 *
 * (build/examples/dht_<mpi>, one per MPI found; tests/mpi/run.sh gives Open
 * MPI the options it needs here.)
 *
 * Exits non-zero on any wrong, missing or unexpected value.
 */
#include <inttypes.h>
#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pinheap.h"
#include "pinheap_mpi.h"

#define DHT_TAG 7
#define DHT_BIG ((size_t)9 << 20) /* above the heap's direct threshold */

enum { DHT_EMPTY = 0, DHT_LIVE = 1, DHT_GONE = 2 };
enum { DHT_INSERT = 1, DHT_DELETE = 2, DHT_DONE = 3 };

/* An index slot, read remotely as a whole. Invariant: state LIVE means the
 * blob at addr (a window displacement on the owner) holds len bytes of the
 * value of key at version. */
typedef struct dht_slot {
  uint64_t key;
  uint64_t state;
  uint64_t addr;
  uint64_t len;
  uint64_t version;
} dht_slot;

/* A write request; an INSERT carries len bytes of value after it. */
typedef struct dht_msg {
  uint64_t type;
  uint64_t key;
  uint64_t version;
  uint64_t len;
} dht_msg;

typedef struct dht {
  int rank, nranks;
  pinheap_mpi *pm;
  pinheap *heap;
  MPI_Win win;
  dht_slot *index; /* this rank's slots, in its heap */
  uint64_t nslots;
  MPI_Aint *index_addr; /* each rank's index, as a window displacement */
  void **blob;          /* local address of each live slot's blob */
  int done_from;        /* DONE messages seen in this phase */
  uint64_t errors;
} dht;

static uint64_t dht_mix(uint64_t x) {
  x += UINT64_C(0x9e3779b97f4a7c15);
  x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
  return x ^ (x >> 31);
}

static int dht_owner(const dht *d, uint64_t key) { return (int)(dht_mix(key) % (uint64_t)d->nranks); }
static uint64_t dht_home(const dht *d, uint64_t key) { return (dht_mix(key) / (uint64_t)d->nranks) % d->nslots; }

/* The value of key at version: its length, and its bytes. */
static size_t dht_len(uint64_t key, uint64_t version) {
  uint64_t h = dht_mix(key * 2 + version);
  if (key % 499 == 0) return DHT_BIG + h % 4096;
  switch (h % 3) {
  case 0: return 1 + h % 256;
  case 1: return 256 + h % 4096;
  default: return 4096 + h % 60000;
  }
}

static void dht_fill(uint8_t *p, size_t len, uint64_t key, uint64_t version) {
  uint64_t s = dht_mix(key ^ (version << 40));
  for (size_t i = 0; i < len; i += 8) {
    s = dht_mix(s);
    size_t n = len - i < 8 ? len - i : 8;
    memcpy(p + i, &s, n);
  }
}

static bool dht_same(const uint8_t *p, size_t len, uint64_t key, uint64_t version, uint8_t *scratch) {
  dht_fill(scratch, len, key, version);
  return memcmp(p, scratch, len) == 0;
}

static _Noreturn void dht_die(const dht *d, const char *what) {
  fprintf(stderr, "dht: rank %d: %s: %s\n", d->rank, what, pinheap_last_error());
  MPI_Abort(MPI_COMM_WORLD, 1);
  exit(1);
}

/* The slot holding key, or the first free one on its probe sequence. */
static uint64_t dht_find(const dht *d, uint64_t key, bool *found) {
  uint64_t i = dht_home(d, key), free_slot = UINT64_MAX;
  for (uint64_t n = 0; n < d->nslots; n++, i = (i + 1) % d->nslots) {
    const dht_slot *s = &d->index[i];
    if (s->state == DHT_LIVE && s->key == key) {
      *found = true;
      return i;
    }
    if (s->state != DHT_LIVE && free_slot == UINT64_MAX) free_slot = i;
    if (s->state == DHT_EMPTY) break;
  }
  *found = false;
  return free_slot;
}

static void dht_drop(dht *d, uint64_t i) {
  pinheap_free(d->heap, d->blob[i]);
  d->blob[i] = NULL;
  d->index[i].state = DHT_GONE;
}

/* The owner's side of a write. */
static void dht_apply(dht *d, const dht_msg *m, const uint8_t *value) {
  bool found;
  uint64_t i = dht_find(d, m->key, &found);
  if (found) dht_drop(d, i);
  if (m->type == DHT_DELETE) {
    if (!found) {
      fprintf(stderr, "dht: rank %d: delete of key %" PRIu64 ", which is not here\n", d->rank, m->key);
      d->errors++;
    }
    return;
  }
  if (!found) i = dht_find(d, m->key, &found);
  if (i == UINT64_MAX) dht_die(d, "index full");
  void *blob = pinheap_malloc(d->heap, m->len);
  if (!blob) dht_die(d, "pinheap_malloc");
  memcpy(blob, value, m->len);
  pinheap_mpi_addr a;
  if (pinheap_mpi_locate(d->heap, blob, &a) != 0) dht_die(d, "pinheap_mpi_locate");
  pinheap_region r;
  if (pinheap_region_of(d->heap, blob, &r) != 0 || (uintptr_t)blob + m->len > (uintptr_t)r.base + r.size) {
    fprintf(stderr, "dht: rank %d: blob %p of %" PRIu64 " bytes is not inside one registration\n", d->rank, blob,
            m->len);
    d->errors++;
  }
  d->blob[i] = blob;
  d->index[i] = (dht_slot){.key = m->key, .state = DHT_LIVE, .addr = (uint64_t)a.disp, .len = m->len,
                           .version = m->version};
}

/* Serves every write request that has arrived. */
static void dht_serve(dht *d) {
  for (;;) {
    int flag;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, DHT_TAG, MPI_COMM_WORLD, &flag, &st);
    if (!flag) return;
    int bytes;
    MPI_Get_count(&st, MPI_BYTE, &bytes);
    uint8_t *buf = malloc((size_t)bytes);
    if (!buf) dht_die(d, "malloc");
    MPI_Recv(buf, bytes, MPI_BYTE, st.MPI_SOURCE, DHT_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    dht_msg m;
    memcpy(&m, buf, sizeof m);
    if (m.type == DHT_DONE) d->done_from++;
    else dht_apply(d, &m, buf + sizeof m);
    free(buf);
  }
}

/* Sends a request, serving others' requests until it has left. */
static void dht_send(dht *d, int to, const dht_msg *m, const uint8_t *value) {
  size_t bytes = sizeof *m + (m->type == DHT_INSERT ? m->len : 0);
  uint8_t *buf = malloc(bytes);
  if (!buf) dht_die(d, "malloc");
  memcpy(buf, m, sizeof *m);
  if (m->type == DHT_INSERT) memcpy(buf + sizeof *m, value, m->len);
  MPI_Request req;
  MPI_Isend(buf, (int)bytes, MPI_BYTE, to, DHT_TAG, MPI_COMM_WORLD, &req);
  for (int flag = 0; !flag;) {
    dht_serve(d);
    MPI_Test(&req, &flag, MPI_STATUS_IGNORE);
  }
  free(buf);
}

/* Ends a write phase: DONE to every rank (after this rank's requests, which
 * MPI delivers in order), then serve until every rank said DONE. */
static void dht_end_writes(dht *d) {
  dht_msg done = {.type = DHT_DONE};
  for (int r = 0; r < d->nranks; r++) dht_send(d, r, &done, NULL);
  while (d->done_from < d->nranks) dht_serve(d);
  d->done_from = 0;
  MPI_Barrier(MPI_COMM_WORLD);
}

/* A read phase: one epoch over every rank's window. The owners' stores of
 * the write phase before it reach their windows before any one-sided read
 * (MPI's separate memory model needs the Win_sync). */
static void dht_begin_reads(dht *d) {
  MPI_Win_lock_all(0, d->win);
  MPI_Win_sync(d->win);
  MPI_Barrier(MPI_COMM_WORLD);
}

static void dht_end_reads(dht *d) {
  MPI_Win_unlock_all(d->win);
  MPI_Barrier(MPI_COMM_WORLD);
}

/* A lookup in flight. Lookups go in batches, so that a batch waits for the
 * network twice (the slots, then the blobs) instead of each lookup doing so:
 * the first DHT_PROBE slots of each key's probe sequence come in one get. */
#define DHT_PROBE 4
#define DHT_BATCH 64

typedef struct dht_get {
  uint64_t key;
  int owner;
  int state;   /* 0 absent, 1 found, -1 not settled by the first slots */
  dht_slot probe[DHT_PROBE];
  dht_slot slot; /* found: the key's slot */
  uint8_t *value;
} dht_get;

static void dht_get_value(dht *d, dht_get *g) {
  g->value = malloc(g->slot.len ? g->slot.len : 1);
  if (!g->value) dht_die(d, "malloc");
  for (uint64_t off = 0; off < g->slot.len; off += (uint64_t)1 << 30) {
    uint64_t n = g->slot.len - off < ((uint64_t)1 << 30) ? g->slot.len - off : (uint64_t)1 << 30;
    MPI_Get(g->value + off, (int)n, MPI_BYTE, g->owner, (MPI_Aint)(g->slot.addr + off), (int)n, MPI_BYTE, d->win);
  }
}

/* Settles g from slot, the n-th of its probe sequence: 1 when done. */
static int dht_probe_step(dht_get *g, const dht_slot *slot) {
  if (slot->state == DHT_EMPTY) {
    g->state = 0;
    return 1;
  }
  if (slot->state == DHT_LIVE && slot->key == g->key) {
    g->state = 1;
    g->slot = *slot;
    return 1;
  }
  return 0;
}

/* Follows g's probe sequence one slot at a time from slot first. */
static void dht_probe_rest(dht *d, dht_get *g, uint64_t first) {
  uint64_t i = (dht_home(d, g->key) + first) % d->nslots;
  for (uint64_t n = first; n < d->nslots; n++, i = (i + 1) % d->nslots) {
    dht_slot slot;
    MPI_Get(&slot, (int)sizeof slot, MPI_BYTE, g->owner, d->index_addr[g->owner] + (MPI_Aint)(i * sizeof slot),
            (int)sizeof slot, MPI_BYTE, d->win);
    MPI_Win_flush(g->owner, d->win);
    if (dht_probe_step(g, &slot)) return;
  }
  g->state = 0;
}

/* Looks up n keys one-sided; each g[i].key set, the rest filled. */
static void dht_lookup(dht *d, dht_get *g, size_t n) {
  for (size_t k = 0; k < n; k++) {
    g[k].owner = dht_owner(d, g[k].key);
    g[k].state = -1;
    g[k].value = NULL;
    uint64_t home = dht_home(d, g[k].key);
    if (home + DHT_PROBE <= d->nslots)
      MPI_Get(g[k].probe, (int)sizeof g[k].probe, MPI_BYTE, g[k].owner,
              d->index_addr[g[k].owner] + (MPI_Aint)(home * sizeof(dht_slot)), (int)sizeof g[k].probe, MPI_BYTE,
              d->win);
  }
  MPI_Win_flush_all(d->win);
  for (size_t k = 0; k < n; k++) {
    bool fetched = dht_home(d, g[k].key) + DHT_PROBE <= d->nslots;
    for (int j = 0; fetched && j < DHT_PROBE && g[k].state < 0; j++) dht_probe_step(&g[k], &g[k].probe[j]);
    if (g[k].state < 0) dht_probe_rest(d, &g[k], fetched ? DHT_PROBE : 0);
    if (g[k].state == 1) dht_get_value(d, &g[k]);
  }
  MPI_Win_flush_all(d->win);
}

/* The key of rank r's i-th insert. Keys are never 0. */
static uint64_t dht_key(const dht *d, int r, uint64_t i) { return 1 + (uint64_t)r + i * (uint64_t)d->nranks; }

/* What key should read as after phase: -1 absent, else its version. */
static int dht_expected(const dht *d, uint64_t key, int phase) {
  uint64_t i = (key - 1) / (uint64_t)d->nranks;
  if (phase < 2) return 0;
  return i % 3 == 0 ? -1 : i % 3 == 1 ? 1 : 0;
}

/* Looks the n keys up and checks what each reads as after phase. */
static void dht_check_lookups(dht *d, const uint64_t *keys, size_t n, int phase, uint8_t *scratch) {
  dht_get g[DHT_BATCH];
  for (size_t at = 0; at < n; at += DHT_BATCH) {
    size_t m = n - at < DHT_BATCH ? n - at : DHT_BATCH;
    for (size_t k = 0; k < m; k++) g[k].key = keys[at + k];
    dht_lookup(d, g, m);
    for (size_t k = 0; k < m; k++) {
      uint64_t key = g[k].key;
      int want = dht_expected(d, key, phase);
      const dht_slot *s = &g[k].slot;
      if (want < 0 && g[k].state == 1) {
        fprintf(stderr, "dht: rank %d: key %" PRIu64 " was deleted but is found\n", d->rank, key);
        d->errors++;
      } else if (want >= 0 && g[k].state != 1) {
        fprintf(stderr, "dht: rank %d: key %" PRIu64 " is missing\n", d->rank, key);
        d->errors++;
      } else if (g[k].state == 1 && (s->version != (uint64_t)want || s->len != dht_len(key, s->version) ||
                                     !dht_same(g[k].value, s->len, key, s->version, scratch))) {
        fprintf(stderr, "dht: rank %d: key %" PRIu64 " reads wrong (version %" PRIu64 ", %" PRIu64 " bytes)\n",
                d->rank, key, s->version, s->len);
        d->errors++;
      }
      free(g[k].value);
    }
  }
}

int main(int argc, char **argv) {
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SINGLE, &provided);
  dht d = {0};
  MPI_Comm_rank(MPI_COMM_WORLD, &d.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &d.nranks);
  uint64_t keys = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000;
  uint64_t lookups = argc > 2 ? strtoull(argv[2], NULL, 10) : 2000;
  uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
  if (keys == 0) keys = 1;
  if (d.rank == 0)
    printf("dht: %d ranks, %" PRIu64 " keys and %" PRIu64 " lookups per rank, seed %" PRIu64 "\n", d.nranks, keys,
           lookups, seed);

  d.pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_DYNAMIC, NULL);
  if (!d.pm) dht_die(&d, "pinheap_mpi_create");
  pinheap_options opts;
  pinheap_options_init(&opts);
  opts.mode = PINHEAP_DYNAMIC;
  opts.size = 0;
  opts.arenas = 1;
  opts.chunk_size = (size_t)32 << 20;
  d.heap = pinheap_mpi_heap_create(d.pm, &opts);
  if (!d.heap) dht_die(&d, "pinheap_mpi_heap_create");
  d.win = pinheap_mpi_window(d.pm);

  /* Each rank owns about keys of them; twice as many slots. */
  d.nslots = 2 * keys + 16;
  d.index = pinheap_calloc(d.heap, d.nslots, sizeof *d.index);
  d.blob = calloc(d.nslots, sizeof *d.blob);
  d.index_addr = calloc((size_t)d.nranks, sizeof *d.index_addr);
  uint8_t *value = malloc(DHT_BIG + 4096), *scratch = malloc(DHT_BIG + 4096);
  uint64_t *wanted = calloc(keys > lookups ? keys : lookups, sizeof *wanted);
  if (!d.index || !d.blob || !d.index_addr || !value || !scratch || !wanted) dht_die(&d, "allocating the index");
  pinheap_mpi_addr ia;
  if (pinheap_mpi_locate(d.heap, d.index, &ia) != 0) dht_die(&d, "pinheap_mpi_locate");
  MPI_Allgather(&ia.disp, 1, MPI_AINT, d.index_addr, 1, MPI_AINT, MPI_COMM_WORLD);

  /* Phase 0: inserts. */
  for (uint64_t i = 0; i < keys; i++) {
    uint64_t key = dht_key(&d, d.rank, i);
    dht_msg m = {.type = DHT_INSERT, .key = key, .version = 0, .len = dht_len(key, 0)};
    dht_fill(value, m.len, key, 0);
    dht_send(&d, dht_owner(&d, key), &m, value);
  }
  dht_end_writes(&d);

  /* Phase 1: random one-sided lookups of every rank's keys. */
  dht_begin_reads(&d);
  uint64_t s = dht_mix(seed ^ (uint64_t)d.rank);
  for (uint64_t n = 0; n < lookups; n++) {
    s = dht_mix(s);
    wanted[n] = dht_key(&d, (int)(s % (uint64_t)d.nranks), (s >> 20) % keys);
  }
  dht_check_lookups(&d, wanted, lookups, 1, scratch);
  dht_end_reads(&d);

  /* Phase 2: deletes and rewrites with values of other sizes. */
  for (uint64_t i = 0; i < keys; i++) {
    uint64_t key = dht_key(&d, d.rank, i);
    if (i % 3 == 2) continue;
    dht_msg m = {.type = i % 3 == 0 ? DHT_DELETE : DHT_INSERT, .key = key, .version = 1, .len = 0};
    if (m.type == DHT_INSERT) {
      m.len = dht_len(key, 1);
      dht_fill(value, m.len, key, 1);
    }
    dht_send(&d, dht_owner(&d, key), &m, value);
  }
  dht_end_writes(&d);

  /* Phase 3: every key, one-sided. */
  dht_begin_reads(&d);
  for (int r = 0; r < d.nranks; r++) {
    for (uint64_t i = 0; i < keys; i++) wanted[i] = dht_key(&d, r, i);
    dht_check_lookups(&d, wanted, keys, 3, scratch);
  }
  dht_end_reads(&d);

  /* The owner's check: its live slots are exactly the live keys hashing to
   * it, each blob the right value. */
  uint64_t live = 0, want = 0;
  for (int r = 0; r < d.nranks; r++)
    for (uint64_t i = 0; i < keys; i++) {
      uint64_t key = dht_key(&d, r, i);
      if (dht_owner(&d, key) == d.rank && dht_expected(&d, key, 3) >= 0) want++;
    }
  for (uint64_t i = 0; i < d.nslots; i++) {
    const dht_slot *sl = &d.index[i];
    if (sl->state != DHT_LIVE) continue;
    live++;
    if (dht_owner(&d, sl->key) != d.rank || dht_expected(&d, sl->key, 3) != (int)sl->version ||
        !dht_same(d.blob[i], sl->len, sl->key, sl->version, scratch)) {
      fprintf(stderr, "dht: rank %d: slot %" PRIu64 " (key %" PRIu64 ") is wrong\n", d.rank, i, sl->key);
      d.errors++;
    }
  }
  if (live != want) {
    fprintf(stderr, "dht: rank %d: %" PRIu64 " live keys, expected %" PRIu64 "\n", d.rank, live, want);
    d.errors++;
  }
  pinheap_stats st;
  pinheap_get_stats(d.heap, &st);
  size_t peak_capacity = st.capacity;
  for (uint64_t i = 0; i < d.nslots; i++)
    if (d.index[i].state == DHT_LIVE) dht_drop(&d, i);
  pinheap_free(d.heap, d.index);
  pinheap_trim(d.heap);
  pinheap_get_stats(d.heap, &st);
  if (pinheap_check(d.heap) != 0 || st.large_blocks != 0) d.errors++;

  uint64_t errors = 0, all_live = 0;
  MPI_Reduce(&d.errors, &errors, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
  MPI_Reduce(&live, &all_live, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
  if (d.rank == 0) {
    printf("dht: %" PRIu64 " keys live at the end (of %" PRIu64 " inserted); rank 0 registered %zu MiB at the "
           "peak, %zu MiB after freeing everything\n", all_live, keys * (uint64_t)d.nranks, peak_capacity >> 20,
           st.capacity >> 20);
    printf("dht: %" PRIu64 " errors\n", errors);
  }
  pinheap_destroy(d.heap);
  pinheap_mpi_destroy(d.pm);
  free(d.blob);
  free(d.index_addr);
  free(value);
  free(scratch);
  free(wanted);
  int status = errors == 0 ? 0 : 1;
  MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Finalize();
  return status;
}
