/*
 * sym.c is longer than 600 lines: the symmetric heaps' calls and the
 * agreement they end in (sym_sync, sym_agree, the mismatch reports) share
 * the record each process contributes and the heap's lock; the header
 * (sym.h) says how they fit together.
 */
#include "sym.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "env.h"
#include "error.h"
#include "util.h"

/* Objects up to 4 MiB (the heap's own small_extent_max: locks, counters,
 * pSync arrays, message buffers) pack at the top of the block and arrays go
 * to the bottom, so that a small object never lands in the hole a freed
 * array left while room remains above. In a block under 64 MiB the limit is
 * a sixteenth of the block: what is big for the block counts as an array. */
#define SYM_SMALL_MAX ((size_t)4 << 20)

enum sym_op { SYM_MALLOC = 1, SYM_CALLOC, SYM_ALIGNED, SYM_REALLOC, SYM_FREE, SYM_DESTROY, SYM_CREATE };
static const char *const sym_op_name[] = {"?",       "malloc", "calloc",  "aligned_alloc",
                                          "realloc", "free",   "destroy", "create"};

#define SYM_NONE UINT64_MAX          /* no pointer, no object */
#define SYM_FOREIGN (UINT64_MAX - 1) /* a pointer outside the block */
#define SYM_BAD_POINTER (-1)         /* status: the pointer is not a live object */

#define SYM_OF(n) PH_CONTAINER_OF(n, sym_object, node)

/* The records travel whole: no padding of unknown contents in them. */
_Static_assert(sizeof(sym_record) == 56, "sym_record has padding");
_Static_assert(sizeof(sym_peer) == 40, "sym_peer has padding");

static int sym_cmp(const tree_node *a, const tree_node *b) {
  uintptr_t x = SYM_OF(a)->addr, y = SYM_OF(b)->addr;
  return (x > y) - (x < y);
}

static size_t sym_small_max(size_t size) {
  size_t m = util_align_down(size / 16, SYM_QUANTUM);
  if (m > SYM_SMALL_MAX) m = SYM_SMALL_MAX;
  return m ? m : SYM_QUANTUM;
}

/* Whether this process wants every call checked. The choice is made at
 * create and shared: one process asking is enough, so that all of them
 * take part in the same allgathers. */
static bool sym_wants_verify(unsigned flags) {
#ifdef PINHEAP_DEBUG_BUILD
  (void)flags;
  return true;
#else
  if (!(flags & PINHEAP_SYM_NOSYNC)) return true;
  const char *v = getenv("PINHEAP_DEBUG");
  return v && *v && strcmp(v, "0") != 0;
#endif
}

/* ---- objects ------------------------------------------------------------ */

static bool sym_large(const pinheap_sym *s, size_t bytes) { return bytes > s->small_max; }

/* Adds (sign 1) or removes (sign -1) o's share of the counters. Lock held. */
static void sym_account(pinheap_sym *s, const sym_object *o, int sign) {
  bool large = sym_large(s, o->bytes);
  if (sign > 0) {
    s->allocated += o->requested;
    s->large_bytes += large ? o->bytes : 0;
    s->large_objects += large;
  } else {
    s->allocated -= o->requested;
    s->large_bytes -= large ? o->bytes : 0;
    s->large_objects -= large;
  }
}

/* The live object starting at p, or NULL. Lock held. */
static sym_object *sym_find(const pinheap_sym *s, const void *p) {
  sym_object key = {.addr = (uintptr_t)p};
  tree_node *n = tree_floor(&s->live, &key.node);
  return n && SYM_OF(n)->addr == (uintptr_t)p ? SYM_OF(n) : NULL;
}

static bool sym_inside(const pinheap_sym *s, const void *p) { return (uintptr_t)p - s->base < s->size; }

/* What the record says of a pointer argument. */
static uint64_t sym_arg(const pinheap_sym *s, const void *p) {
  if (!p) return SYM_NONE;
  return sym_inside(s, p) ? (uint64_t)((uintptr_t)p - s->base) : SYM_FOREIGN;
}

static _Noreturn void sym_bad_pointer(pinheap_sym *s, const void *p, const char *what) {
  const char *why = "pointer is not in the symmetric heap";
  if (sym_inside(s, p)) {
    why = "pointer is not a live object (freed already?)";
    pthread_mutex_lock(&s->lock);
    sym_object key = {.addr = (uintptr_t)p};
    tree_node *n = tree_floor(&s->live, &key.node);
    if (n && SYM_OF(n)->addr + SYM_OF(n)->bytes > (uintptr_t)p) why = "pointer is inside a live object";
    pthread_mutex_unlock(&s->lock);
  }
  error_fatal("%s(%p): %s of symmetric heap %p", what, p, why, (void *)s);
}

/* Gives [addr, addr + bytes) back to the manager, which cannot refuse but
 * for want of metadata. */
static void sym_give_back(pinheap_sym *s, uintptr_t addr, size_t bytes, const char *what) {
  em_free_result r = em_free(&s->em, (void *)addr, bytes);
  if (r == EM_NO_METADATA)
    error_fatal("%s(%#lx): the system has no memory left for the heap's metadata", what, (unsigned long)addr);
  if (r != EM_FREED)
    error_fatal("%s(%#lx): extent overlaps free space: symmetric heap %p is corrupt", what, (unsigned long)addr,
                (void *)s);
}

static void sym_no_room(pinheap_sym *s, const char *what, size_t size) {
  em_stats st;
  em_get_stats(&s->em, &st);
  error_set(ENOMEM, "%s(%zu): out of symmetric memory: %zu bytes free, largest free extent %zu bytes, heap %zu bytes",
            what, size, st.free_bytes, st.largest_free, s->size);
}

/* The bytes an object of size takes, or 0 with the error set (ENOMEM) when
 * no state of the heap could hold it. */
static size_t sym_bytes(const pinheap_sym *s, size_t size, const char *what) {
  size_t bytes = util_align_up(size, SYM_QUANTUM);
  if (bytes == 0 || bytes > s->size) {
    error_set(ENOMEM, "%s(%zu): impossible size: larger than the symmetric heap's %zu bytes", what, size, s->size);
    return 0;
  }
  return bytes;
}

/* A new live object of size bytes (> 0) aligned to align, or NULL with
 * *status and the error set. */
static sym_object *sym_place(pinheap_sym *s, size_t size, size_t align, int32_t *status, const char *what) {
  size_t bytes = sym_bytes(s, size, what);
  if (!bytes) {
    *status = ENOMEM;
    return NULL;
  }
  pthread_mutex_lock(&s->lock);
  void *p = em_alloc(&s->em, bytes, align, NULL);
  sym_object *o = p ? meta_alloc(&s->objects) : NULL;
  if (o) {
    *o = (sym_object){.addr = (uintptr_t)p, .bytes = bytes, .requested = size};
    tree_insert(&s->live, &o->node);
    sym_account(s, o, 1);
  } else if (p) {
    sym_give_back(s, (uintptr_t)p, bytes, what);
  }
  pthread_mutex_unlock(&s->lock);
  if (!o) {
    *status = ENOMEM;
    sym_no_room(s, what, size);
  }
  return o;
}

/* Forgets the live object o and gives its bytes back. */
static void sym_release(pinheap_sym *s, sym_object *o, const char *what) {
  pthread_mutex_lock(&s->lock);
  sym_account(s, o, -1);
  tree_remove(&s->live, &o->node);
  sym_give_back(s, o->addr, o->bytes, what);
  meta_free(&s->objects, o);
  pthread_mutex_unlock(&s->lock);
}

/* ---- the collective check ------------------------------------------------ */

static void sym_describe(const sym_record *r, char *buf, size_t len) {
  const char *op = r->op < sizeof sym_op_name / sizeof *sym_op_name ? sym_op_name[r->op] : "?";
  char arg[48] = "NULL", res[64] = "";
  if (r->arg == SYM_FOREIGN)
    snprintf(arg, sizeof arg, "a pointer outside the heap");
  else if (r->arg != SYM_NONE)
    snprintf(arg, sizeof arg, "offset %#llx", (unsigned long long)r->arg);
  if (r->status == SYM_BAD_POINTER)
    snprintf(res, sizeof res, " (not a live object there)");
  else if (r->status)
    snprintf(res, sizeof res, " -> failed (%s)", strerror(r->status));
  else if (r->op == SYM_DESTROY)
    snprintf(res, sizeof res, " with %llu live objects", (unsigned long long)r->result);
  else if (r->result != SYM_NONE)
    snprintf(res, sizeof res, " -> offset %#llx", (unsigned long long)r->result);
  unsigned long long seq = (unsigned long long)r->seq, size = (unsigned long long)r->size;
  switch (r->op) {
  case SYM_MALLOC: snprintf(buf, len, "call %llu %s(%llu)%s", seq, op, size, res); break;
  case SYM_CALLOC:
    snprintf(buf, len, "call %llu %s(%llu, %llu)%s", seq, op, (unsigned long long)r->count, size, res);
    break;
  case SYM_ALIGNED:
    snprintf(buf, len, "call %llu %s(%llu, %llu)%s", seq, op, (unsigned long long)r->align, size, res);
    break;
  case SYM_REALLOC: snprintf(buf, len, "call %llu %s(%s, %llu)%s", seq, op, arg, size, res); break;
  case SYM_FREE: snprintf(buf, len, "call %llu %s(%s)%s", seq, op, arg, res); break;
  case SYM_CREATE: snprintf(buf, len, "%s(%llu), before call 0%s", op, size, res); break;
  default: snprintf(buf, len, "call %llu %s()%s", seq, op, res); break;
  }
}

static bool sym_same_call(const sym_record *a, const sym_record *b) {
  return a->seq == b->seq && a->op == b->op && a->size == b->size && a->count == b->count && a->align == b->align &&
         a->arg == b->arg;
}

static _Noreturn void sym_mismatch(const pinheap_sym *s, int i, const char *what, const char *how) {
  char a[160], b[160];
  sym_describe(&s->gathered[0], a, sizeof a);
  sym_describe(&s->gathered[i], b, sizeof b);
  error_fatal("%s: symmetric heap %p: %s: rank 0: %s; rank %d: %s", what, (const void *)s, how, a, i, b);
}

/* What the watchdog keeps of a call in progress. */
typedef struct sym_note {
  sym_record rec;
  const char *what; /* the public function's name */
} sym_note;
_Static_assert(sizeof(sym_note) <= WATCHDOG_NOTE_MAX, "sym_note does not fit the watchdog");

/* The watchdog's verdict on an allgather that lasts too long. */
static void sym_overdue(const void *note, uint64_t waited_ns, void *arg) {
  const sym_note *n = note;
  const pinheap_sym *s = arg;
  char call[160];
  sym_describe(&n->rec, call, sizeof call);
  error_fatal("%s: symmetric heap %p, rank %d of %d: %s has waited %llu.%03llu s in its allgather "
              "(PINHEAP_SYM_TIMEOUT=%llu.%03llu): some process has not made this call",
              n->what, (const void *)s, s->coll.rank, s->coll.nranks, call,
              (unsigned long long)(waited_ns / 1000000000u), (unsigned long long)(waited_ns / 1000000u % 1000u),
              (unsigned long long)(s->timeout_ns / 1000000000u),
              (unsigned long long)(s->timeout_ns / 1000000u % 1000u));
}

/* The collective's allgather of the record rec (len bytes of in), under
 * the watchdog when there is one. */
static int sym_allgather(pinheap_sym *s, const void *in, void *out, size_t len, const sym_record *rec,
                         const char *what) {
  if (!s->timeout_ns) return s->coll.allgather(s->coll.ctx, in, out, len);
  sym_note n = {*rec, what};
  watchdog_enter(&s->watch, &n, sizeof n);
  int err = s->coll.allgather(s->coll.ctx, in, out, len);
  watchdog_leave(&s->watch);
  return err;
}

/*
 * Ends a collective call: one allgather of every process's record, then the
 * same verdict on every process. Aborts when the calls differ, when a
 * process passed a pointer that is not a live object there, or when all
 * succeeded with different results. Returns the first rank whose call
 * failed, or -1. Without the check: this process's own outcome.
 */
static int sym_sync(pinheap_sym *s, sym_record *mine, const void *ptr, const char *what) {
  mine->seq = s->seq++;
  if (!s->verify) {
    if (mine->status == SYM_BAD_POINTER) sym_bad_pointer(s, ptr, what);
    return mine->status ? s->coll.rank : -1;
  }
  int err = sym_allgather(s, mine, s->gathered, sizeof *mine, mine, what);
  if (err) error_fatal("%s: symmetric heap %p: the allgather failed (%s)", what, (void *)s, strerror(err));
  if (mine->status == SYM_BAD_POINTER) sym_bad_pointer(s, ptr, what);
  int failed = -1;
  for (int i = 0; i < s->coll.nranks; i++) {
    const sym_record *r = &s->gathered[i];
    if (!sym_same_call(r, &s->gathered[0])) sym_mismatch(s, i, what, "the processes made different calls");
    if (r->status == SYM_BAD_POINTER) sym_mismatch(s, i, what, "a pointer is not a live object on every process");
    if (r->status && failed < 0) failed = i;
  }
  for (int i = 0; i < s->coll.nranks && failed < 0; i++)
    if (s->gathered[i].result != s->gathered[0].result)
      sym_mismatch(s, i, what, "the same call had different results: the heaps have diverged");
  return failed;
}

/* After a call that failed on rank failed: errno and the text say why. */
static void sym_failed(const pinheap_sym *s, const sym_record *mine, int failed, const char *what) {
  if (mine->status) {
    errno = mine->status; /* the text is this process's own */
    return;
  }
  int err = s->gathered[failed].status;
  error_set(err, "%s(%llu): failed on rank %d (%s); undone here", what, (unsigned long long)mine->size, failed,
            strerror(err));
}

/* ---- create and destroy ---------------------------------------------------- */

/* This process's part of create, before the allgather: everything that may
 * fail. 0, or an errno value with the error set. */
static int sym_open(pinheap_sym *s, pinheap *heap, size_t size, unsigned flags, sym_peer *me) {
  const char *what = "pinheap_sym_create";
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t bytes = util_align_up(size, page);
  if (!heap || size == 0 || (flags & ~PINHEAP_SYM_NOSYNC)) {
    error_set(EINVAL, "%s(%p, %zu, flags %#x): heap NULL, size 0, or unknown flags", what, (void *)heap, size, flags);
    return EINVAL;
  }
  if (bytes == 0) {
    error_set(ENOMEM, "%s(%zu): impossible size", what, size);
    return ENOMEM;
  }
  const char *t = getenv("PINHEAP_SYM_TIMEOUT");
  uint64_t timeout = 0;
  if (t && env_parse_seconds(t, &timeout) != 0) {
    error_set(EINVAL, "%s: PINHEAP_SYM_TIMEOUT=\"%s\" is not a number of seconds (such as 30 or 2.5; 0: none)", what,
              t);
    return EINVAL;
  }
  me->size = bytes;
  void *block = pinheap_aligned_alloc(heap, PINHEAP_SYM_MAX_ALIGN, bytes);
  if (!block) {
    /* The alignment is good: a refusal is about the size, impossible or
     * not, and so ENOMEM. */
    int err = ENOMEM;
    char why[512];
    snprintf(why, sizeof why, "%s", pinheap_last_error());
    error_set(err, "%s(%zu): no block in the heap: %s", what, size, why);
    return err;
  }
  pinheap_region r;
  me->base = (uintptr_t)block;
  me->reg_offset =
      pinheap_region_of(heap, block, &r) == 0 ? (uint64_t)((char *)block - (char *)r.base) : PINHEAP_SYM_NO_REG;
  s->small_max = sym_small_max(bytes);
  if (em_init(&s->em, EM_TWO_ENDED, SYM_QUANTUM, s->small_max, 0) != 0) {
    pinheap_free(heap, block);
    error_set(ENOMEM, "%s(%zu): cannot set up the extent manager", what, size);
    return ENOMEM;
  }
  if (em_add_region(&s->em, block, bytes, false) != 0) {
    em_fini(&s->em);
    pinheap_free(heap, block);
    error_set(ENOMEM, "%s(%zu): no memory for the extent manager's metadata", what, size);
    return ENOMEM;
  }
  s->heap = heap;
  s->base = (uintptr_t)block;
  s->size = bytes;
  /* Last: sym_close undoes the rest when this fails. */
  int err = timeout ? watchdog_start(&s->watch, timeout, sym_overdue, s) : 0;
  if (err) {
    error_set(ENOMEM, "%s(%zu): cannot start the watchdog thread: %s", what, size, strerror(err));
    return ENOMEM;
  }
  s->timeout_ns = timeout;
  return 0;
}

/* Undoes sym_open and gives the record back. */
static void sym_close(pinheap_sym *s) {
  if (s->timeout_ns) watchdog_stop(&s->watch);
  if (s->heap) {
    meta_fini(&s->objects);
    em_fini(&s->em);
    pinheap_free(s->heap, (void *)s->base);
  }
  pthread_mutex_destroy(&s->lock);
  munmap(s, s->record_bytes);
}

/* Whether every process's part of create succeeded and they agree; the
 * error set when not. */
static bool sym_agree(const pinheap_sym *s, const sym_peer *me, size_t size) {
  const char *what = "pinheap_sym_create";
  for (int i = 0; i < s->coll.nranks; i++) {
    const sym_peer *p = &s->peers[i];
    if (!p->status) continue;
    if (me->status)
      errno = me->status;
    else
      error_set(p->status, "%s(%zu): failed on rank %d (%s)", what, size, i, strerror(p->status));
    return false;
  }
  for (int i = 1; i < s->coll.nranks; i++) {
    const sym_peer *p = &s->peers[i], *first = &s->peers[0];
    if (p->size != first->size || p->flags != first->flags) {
      error_set(EINVAL,
                "%s: the processes disagree: rank 0 asks for %llu bytes (flags %#x), rank %d for %llu (flags %#x)",
                what, (unsigned long long)first->size, first->flags, i, (unsigned long long)p->size, p->flags);
      return false;
    }
    if (p->desc_len != first->desc_len) {
      error_set(EINVAL, "%s: the processes disagree: rank 0 describes its block in %u bytes, rank %d in %u", what,
                first->desc_len, i, p->desc_len);
      return false;
    }
  }
  return true;
}

PH_EXPORT pinheap_sym *pinheap_sym_create(pinheap *heap, size_t size, const pinheap_collective *coll, unsigned flags) {
  return pinheap_sym_create_layer(heap, size, coll, flags, NULL);
}

PH_EXPORT pinheap_sym *pinheap_sym_create_layer(pinheap *heap, size_t size, const pinheap_collective *coll,
                                                unsigned flags, const pinheap_sym_layer *layer) {
  if (!coll || !coll->allgather || coll->nranks < 1 || coll->rank < 0 || coll->rank >= coll->nranks) {
    error_set(EINVAL,
              "pinheap_sym_create: the collective is NULL, has no allgather, or its rank is not in 0..nranks-1");
    return NULL;
  }
  if (layer && (!layer->id || !layer->describe || layer->desc_len == 0 || layer->desc_len > PINHEAP_SYM_DESC_MAX)) {
    error_set(EINVAL, "pinheap_sym_create: the layer has no id or describe, or its desc_len is not in 1..%d",
              PINHEAP_SYM_DESC_MAX);
    return NULL;
  }
  size_t n = (size_t)coll->nranks, desc_len = layer ? layer->desc_len : 0;
  size_t record_bytes = sizeof(pinheap_sym) + n * sizeof(sym_peer) + n * sizeof(sym_record) + n * desc_len;
  /* From mmap, not malloc: the heap may be what serves this process's
   * malloc (libpinheap-preload). */
  pinheap_sym *s = mmap(NULL, record_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (s == MAP_FAILED) {
    error_set(ENOMEM, "pinheap_sym_create: no memory for the records of %d processes", coll->nranks);
    return NULL;
  }
  s->record_bytes = record_bytes;
  s->coll = *coll;
  s->flags = flags;
  s->peers = (sym_peer *)(s + 1);
  s->gathered = (sym_record *)(s->peers + n);
  s->layer_id = layer ? layer->id : NULL;
  s->desc_len = desc_len;
  s->descs = (unsigned char *)(s->gathered + n);
  pthread_mutex_init(&s->lock, NULL);
  tree_init(&s->live, sym_cmp, NULL);
  meta_init(&s->objects, sizeof(sym_object));
  sym_peer me = {.flags = flags, .verify = sym_wants_verify(flags), .desc_len = (uint32_t)desc_len};
  me.status = sym_open(s, heap, size, flags, &me);
  unsigned char desc[PINHEAP_SYM_DESC_MAX] = {0};
  if (!me.status && layer) me.status = layer->describe(layer->ctx, heap, (void *)s->base, s->size, desc);
  sym_record rec = {.op = SYM_CREATE, .size = size, .arg = SYM_NONE, .result = SYM_NONE};
  int err = sym_allgather(s, &me, s->peers, sizeof me, &rec, "pinheap_sym_create");
  if (err) {
    sym_close(s);
    error_set(err, "pinheap_sym_create(%zu): the allgather failed (%s)", size, strerror(err));
    return NULL;
  }
  if (!sym_agree(s, &me, size)) {
    err = errno;
    sym_close(s);
    errno = err;
    return NULL;
  }
  if (desc_len && (err = sym_allgather(s, desc, s->descs, desc_len, &rec, "pinheap_sym_create")) != 0) {
    sym_close(s);
    error_set(err, "pinheap_sym_create(%zu): the allgather of the layer's descriptors failed (%s)", size,
              strerror(err));
    return NULL;
  }
  for (int i = 0; i < coll->nranks; i++) s->verify |= s->peers[i].verify != 0;
  return s;
}

PH_EXPORT void pinheap_sym_destroy(pinheap_sym *s) {
  if (!s) return;
  pthread_mutex_lock(&s->lock);
  size_t live = s->live.count, bytes = s->allocated;
  pthread_mutex_unlock(&s->lock);
  sym_record rec = {.op = SYM_DESTROY, .arg = SYM_NONE, .result = live};
  sym_sync(s, &rec, NULL, "pinheap_sym_destroy");
  if (live) {
    char buf[192];
    int len = snprintf(buf, sizeof buf, "pinheap: pinheap_sym_destroy(%p): %zu object(s) still live, %zu bytes\n",
                       (void *)s, live, bytes);
    if (len > 0) {
      ssize_t w = write(STDERR_FILENO, buf, (size_t)len < sizeof buf ? (size_t)len : sizeof buf - 1);
      (void)w;
    }
  }
  sym_close(s);
}

/* ---- allocation ------------------------------------------------------------ */

static bool sym_bad_handle(const pinheap_sym *s, const char *what) {
  if (s) return false;
  error_set(EINVAL, "%s: symmetric heap is NULL", what);
  return true;
}

/* The collective part of every allocation: a new object of size bytes
 * unless rec already failed or size is 0, the check, and its undoing when
 * some process failed. The object is zeroed before the allgather: once any
 * process has returned it, others may write into it remotely, and nothing
 * here writes it any more (its undoing only gives it back). */
static void *sym_alloc(pinheap_sym *s, sym_record *rec, size_t size, size_t align, bool zero, const char *what) {
  sym_object *o = NULL;
  if (!rec->status && size) o = sym_place(s, size, align, &rec->status, what);
  rec->result = o ? (uint64_t)(o->addr - s->base) : SYM_NONE;
  if (o && zero) memset((void *)o->addr, 0, size);
  int failed = sym_sync(s, rec, NULL, what);
  if (failed >= 0) {
    if (o) sym_release(s, o, what);
    sym_failed(s, rec, failed, what);
    return NULL;
  }
  return o ? (void *)o->addr : NULL;
}

PH_EXPORT void *pinheap_sym_malloc(pinheap_sym *s, size_t size) {
  if (sym_bad_handle(s, "pinheap_sym_malloc")) return NULL;
  sym_record rec = {.op = SYM_MALLOC, .size = size, .arg = SYM_NONE};
  return sym_alloc(s, &rec, size, SYM_QUANTUM, false, "pinheap_sym_malloc");
}

PH_EXPORT void *pinheap_sym_calloc(pinheap_sym *s, size_t count, size_t size) {
  if (sym_bad_handle(s, "pinheap_sym_calloc")) return NULL;
  sym_record rec = {.op = SYM_CALLOC, .size = size, .count = count, .arg = SYM_NONE};
  size_t total = 0;
  if (__builtin_mul_overflow(count, size, &total)) {
    error_set(ENOMEM, "pinheap_sym_calloc(%zu, %zu): the product overflows", count, size);
    rec.status = ENOMEM;
  }
  return sym_alloc(s, &rec, total, SYM_QUANTUM, true, "pinheap_sym_calloc");
}

PH_EXPORT void *pinheap_sym_aligned_alloc(pinheap_sym *s, size_t alignment, size_t size) {
  if (sym_bad_handle(s, "pinheap_sym_aligned_alloc")) return NULL;
  sym_record rec = {.op = SYM_ALIGNED, .size = size, .align = alignment, .arg = SYM_NONE};
  if (!util_is_pow2(alignment) || alignment > PINHEAP_SYM_MAX_ALIGN) {
    error_set(EINVAL, "pinheap_sym_aligned_alloc(%zu, %zu): alignment is not a power of two of at most %zu", alignment,
              size, PINHEAP_SYM_MAX_ALIGN);
    rec.status = EINVAL;
  }
  return sym_alloc(s, &rec, size, alignment < SYM_QUANTUM ? SYM_QUANTUM : alignment, false,
                   "pinheap_sym_aligned_alloc");
}

/* How a realloc changes its object. */
enum sym_resize { SYM_KEEP, SYM_GROW, SYM_MOVE, SYM_DROP };

PH_EXPORT void *pinheap_sym_realloc(pinheap_sym *s, void *ptr, size_t size) {
  const char *what = "pinheap_sym_realloc";
  if (sym_bad_handle(s, what)) return NULL;
  sym_record rec = {.op = SYM_REALLOC, .size = size, .arg = sym_arg(s, ptr), .result = SYM_NONE};
  if (!ptr) return sym_alloc(s, &rec, size, SYM_QUANTUM, false, what);
  pthread_mutex_lock(&s->lock);
  sym_object *o = sym_find(s, ptr);
  pthread_mutex_unlock(&s->lock);
  enum sym_resize how = SYM_DROP;
  size_t bytes = 0;
  uintptr_t moved = 0;
  if (!o) {
    rec.status = SYM_BAD_POINTER;
  } else if (size && !(bytes = sym_bytes(s, size, what))) {
    rec.status = ENOMEM;
  } else if (size) {
    /* Grow into the free extent above, else move: the same choice on every
     * process, since their managers are in the same state. */
    how = SYM_KEEP;
    pthread_mutex_lock(&s->lock);
    if (bytes > o->bytes) {
      how = SYM_GROW;
      if (!em_alloc_at(&s->em, (void *)(o->addr + o->bytes), bytes - o->bytes, NULL)) {
        how = SYM_MOVE;
        moved = (uintptr_t)em_alloc(&s->em, bytes, SYM_QUANTUM, NULL);
        if (!moved) rec.status = ENOMEM;
      }
    }
    pthread_mutex_unlock(&s->lock);
    if (rec.status) sym_no_room(s, what, size);
    rec.result = how == SYM_MOVE ? (uint64_t)(moved - s->base) : rec.arg;
    /* Copied before the allgather, as sym_alloc zeroes: after it, the new
     * place belongs to the processes' remote writes. */
    if (moved) memcpy((void *)moved, ptr, o->requested < size ? o->requested : size);
  }
  int failed = sym_sync(s, &rec, ptr, what);
  if (failed >= 0) {
    if (how == SYM_GROW) sym_give_back(s, o->addr + o->bytes, bytes - o->bytes, what);
    if (how == SYM_MOVE && moved) sym_give_back(s, moved, bytes, what);
    sym_failed(s, &rec, failed, what);
    return NULL;
  }
  if (how == SYM_DROP) {
    sym_release(s, o, what);
    return NULL;
  }
  pthread_mutex_lock(&s->lock);
  sym_account(s, o, -1);
  if (how == SYM_KEEP && bytes < o->bytes) sym_give_back(s, o->addr + bytes, o->bytes - bytes, what);
  if (how == SYM_MOVE) {
    sym_give_back(s, o->addr, o->bytes, what);
    tree_remove(&s->live, &o->node);
    o->addr = moved;
    tree_insert(&s->live, &o->node);
  }
  o->bytes = bytes;
  o->requested = size;
  sym_account(s, o, 1);
  pthread_mutex_unlock(&s->lock);
  return (void *)o->addr;
}

PH_EXPORT void pinheap_sym_free(pinheap_sym *s, void *ptr) {
  const char *what = "pinheap_sym_free";
  if (!s) {
    if (ptr) error_fatal("%s(%p): symmetric heap is NULL", what, ptr);
    return;
  }
  sym_record rec = {.op = SYM_FREE, .arg = sym_arg(s, ptr), .result = SYM_NONE};
  sym_object *o = NULL;
  if (ptr) {
    pthread_mutex_lock(&s->lock);
    o = sym_find(s, ptr);
    pthread_mutex_unlock(&s->lock);
    if (!o) rec.status = SYM_BAD_POINTER;
  }
  sym_sync(s, &rec, ptr, what);
  if (o) sym_release(s, o, what);
}

/* ---- queries --------------------------------------------------------------- */

PH_EXPORT size_t pinheap_sym_offset(const pinheap_sym *s, const void *ptr) {
  return s && ptr && sym_inside(s, ptr) ? (size_t)((uintptr_t)ptr - s->base) : SIZE_MAX;
}

PH_EXPORT void *pinheap_sym_ptr(const pinheap_sym *s, size_t offset) {
  return s && offset < s->size ? (void *)(s->base + offset) : NULL;
}

PH_EXPORT int pinheap_sym_remote(const pinheap_sym *s, const void *ptr, int rank, pinheap_sym_addr *out) {
  if (!s || !out || rank < 0 || rank >= s->coll.nranks || !ptr || !sym_inside(s, ptr)) {
    error_set(EINVAL,
              "pinheap_sym_remote(%p, rank %d): symmetric heap or output NULL, rank out of range, or pointer "
              "outside the symmetric heap",
              ptr, rank);
    return -1;
  }
  uint64_t off = (uintptr_t)ptr - s->base;
  const sym_peer *p = &s->peers[rank];
  out->addr = p->base + off;
  out->reg_offset = p->reg_offset == PINHEAP_SYM_NO_REG ? PINHEAP_SYM_NO_REG : p->reg_offset + off;
  return 0;
}

PH_EXPORT const void *pinheap_sym_layer_desc(const pinheap_sym *s, const void *id, int rank) {
  if (!s || !id || s->layer_id != id || rank < 0 || rank >= s->coll.nranks) {
    error_set(EINVAL,
              "pinheap_sym_layer_desc(rank %d): symmetric heap NULL, made without that layer, or rank out of range",
              rank);
    return NULL;
  }
  return s->descs + (size_t)rank * s->desc_len;
}

PH_EXPORT int pinheap_sym_rank(const pinheap_sym *s) {
  if (!s) {
    error_set(EINVAL, "pinheap_sym_rank: symmetric heap is NULL");
    return -1;
  }
  return s->coll.rank;
}

PH_EXPORT int pinheap_sym_get_stats(pinheap_sym *s, pinheap_stats *out) {
  if (!s || !out) {
    error_set(EINVAL, "pinheap_sym_get_stats: symmetric heap or output is NULL");
    return -1;
  }
  em_stats st;
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&s->lock);
  em_get_stats(&s->em, &st);
  out->capacity = st.capacity;
  out->free_bytes = st.free_bytes;
  out->in_use = st.capacity - st.free_bytes;
  out->largest_free = st.largest_free;
  out->free_extents = st.free_extents;
  out->peak_in_use = st.peak_in_use;
  out->allocated = s->allocated;
  out->large_allocated = s->large_bytes;
  out->large_blocks = s->large_objects;
  pthread_mutex_unlock(&s->lock);
  return 0;
}

/* ---- check ----------------------------------------------------------------- */

typedef struct sym_check_state {
  const pinheap_sym *s;
  const sym_object *prev;
  size_t bytes, requested, large_bytes, large_objects;
  int broken;
} sym_check_state;

#define SYM_BROKEN(st, ...)               \
  do {                                    \
    fprintf(stderr, "sym: " __VA_ARGS__); \
    (st)->broken++;                       \
  } while (0)

static int sym_check_object(tree_node *n, void *arg) {
  sym_check_state *st = arg;
  const pinheap_sym *s = st->s;
  const sym_object *o = SYM_OF(n);
  unsigned long a = (unsigned long)o->addr;
  if ((o->addr | o->bytes) & (SYM_QUANTUM - 1) || o->bytes == 0)
    SYM_BROKEN(st, "object %#lx+%zu should be a non-empty multiple of %zu bytes\n", a, o->bytes, SYM_QUANTUM);
  if (o->requested == 0 || o->requested > o->bytes)
    SYM_BROKEN(st, "object %#lx: %zu bytes asked should be in 1..%zu\n", a, o->requested, o->bytes);
  if (o->addr < s->base || o->addr + o->bytes > s->base + s->size || o->addr + o->bytes < o->addr)
    SYM_BROKEN(st, "object %#lx+%zu should lie inside the block %#lx+%zu\n", a, o->bytes, (unsigned long)s->base,
               s->size);
  if (st->prev && st->prev->addr + st->prev->bytes > o->addr)
    SYM_BROKEN(st, "objects %#lx+%zu and %#lx+%zu should not overlap\n", (unsigned long)st->prev->addr, st->prev->bytes,
               a, o->bytes);
  st->bytes += o->bytes;
  st->requested += o->requested;
  if (sym_large(s, o->bytes)) {
    st->large_bytes += o->bytes;
    st->large_objects++;
  }
  st->prev = o;
  return 0;
}

/* Counts the free extents that overlap a live object. */
static int sym_check_free(uintptr_t addr, size_t size, void *arg) {
  sym_check_state *st = arg;
  sym_object key = {.addr = addr + size - 1};
  tree_node *n = tree_floor(&st->s->live, &key.node);
  if (n && SYM_OF(n)->addr + SYM_OF(n)->bytes > addr)
    SYM_BROKEN(st, "free extent %#lx+%zu should not overlap object %#lx+%zu\n", (unsigned long)addr, size,
               (unsigned long)SYM_OF(n)->addr, SYM_OF(n)->bytes);
  return 0;
}

int sym_check(pinheap_sym *s) {
  pthread_mutex_lock(&s->lock);
  sym_check_state st = {.s = s};
  st.broken += em_check(&s->em) + tree_check(&s->live, "sym.live") + meta_check(&s->objects);
  if (s->timeout_ns) st.broken += watchdog_check(&s->watch, true);
  if (s->objects.live != s->live.count)
    SYM_BROKEN(&st, "%zu object records handed out should equal %zu live objects\n", s->objects.live, s->live.count);
  tree_walk(&s->live, sym_check_object, &st);
  em_walk_free(&s->em, sym_check_free, &st);
  em_stats es;
  em_get_stats(&s->em, &es);
  if (es.capacity != s->size || st.bytes + es.free_bytes != s->size)
    SYM_BROKEN(&st, "objects %zu + free %zu bytes should equal the block's %zu (manager: %zu)\n", st.bytes,
               es.free_bytes, s->size, es.capacity);
  if (st.requested != s->allocated || st.large_bytes != s->large_bytes || st.large_objects != s->large_objects)
    SYM_BROKEN(&st, "counters allocated %zu, large %zu bytes in %zu should be %zu, %zu in %zu\n", s->allocated,
               s->large_bytes, s->large_objects, st.requested, st.large_bytes, st.large_objects);
  if (s->peers[s->coll.rank].base != s->base)
    SYM_BROKEN(&st, "this process's entry in the table should hold its base %#lx\n", (unsigned long)s->base);
  if ((s->layer_id == NULL) != (s->desc_len == 0) || s->desc_len > PINHEAP_SYM_DESC_MAX)
    SYM_BROKEN(&st, "a layer's id and descriptors go together: id %p, %zu bytes each\n", s->layer_id, s->desc_len);
  pthread_mutex_unlock(&s->lock);
  return st.broken;
}

PH_EXPORT int pinheap_sym_check(pinheap_sym *s) {
  if (!s) {
    error_set(EINVAL, "pinheap_sym_check: symmetric heap is NULL");
    return -1;
  }
  return sym_check(s);
}
