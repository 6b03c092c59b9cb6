/* pinheap itself: a FIXED heap for each placement policy the library has
 * (by pinheap_policy_name, so that a new policy joins the comparison
 * without an edit here), and a SIMPLE heap, the speed reference among
 * pinheap's modes. Default options otherwise (one arena per CPU). */
#include <stdio.h>

#include "peer.h"
#include "pinheap.h"

#define PEER_PINHEAP_SIMPLE (-1)

static char peer_pinheap_names[16][48];

static peer_heap *ph_create(const peer *p, size_t size, unsigned threads, bool prefault, char *err, size_t errlen) {
  (void)threads;
  pinheap_options o;
  pinheap_options_init(&o);
  if (p->variant == PEER_PINHEAP_SIMPLE) {
    o.mode = PINHEAP_SIMPLE;
  } else {
    o.mode = PINHEAP_FIXED;
    o.size = size;
    o.policy = (pinheap_policy)p->variant;
    o.prefault = prefault;
  }
  pinheap *h = pinheap_create(&o);
  return h ? (peer_heap *)h : peer_fail(err, errlen, "pinheap_create: %s", pinheap_last_error());
}

static void *ph_malloc(peer_heap *h, size_t size) { return pinheap_malloc((pinheap *)h, size); }
static void *ph_calloc(peer_heap *h, size_t n, size_t size) { return pinheap_calloc((pinheap *)h, n, size); }
static void *ph_realloc(peer_heap *h, void *ptr, size_t size) { return pinheap_realloc((pinheap *)h, ptr, size); }
static void *ph_aligned(peer_heap *h, size_t a, size_t size) { return pinheap_aligned_alloc((pinheap *)h, a, size); }
static void ph_free(peer_heap *h, void *ptr) { pinheap_free((pinheap *)h, ptr); }
static void ph_destroy(peer_heap *h) { pinheap_destroy((pinheap *)h); }

static int ph_space(peer_heap *h, peer_space *out) {
  pinheap_stats st;
  pinheap_trim((pinheap *)h); /* cached extents counted free, as the stats' contract asks */
  if (pinheap_get_stats((pinheap *)h, &st) != 0) return -1;
  out->free_bytes = st.free_bytes;
  out->largest_free = st.largest_free;
  return 0;
}

static int ph_first(const pinheap_extent *e, void *arg) {
  *(void **)arg = e->addr;
  return 1;
}

static bool ph_owns(peer_heap *h, const void *ptr, size_t size) {
  return pinheap_owns((pinheap *)h, ptr) && pinheap_owns((pinheap *)h, (const char *)ptr + (size ? size - 1 : 0));
}

static void *ph_base(peer_heap *h) {
  void *base = NULL;
  pinheap_walk((pinheap *)h, ph_first, &base);
  return base;
}

size_t peer_pinheap(peer *out, size_t max) {
  static const peer proto = {.create = ph_create, .malloc = ph_malloc, .calloc = ph_calloc, .realloc = ph_realloc,
                             .aligned = ph_aligned, .free = ph_free, .space = ph_space, .base = ph_base, .owns = ph_owns,
                             .destroy = ph_destroy};
  size_t n = 0;
  for (pinheap_policy pol = 0; pinheap_policy_name(pol) && n < 15; pol++, n++) {
    if (n >= max) continue;
    snprintf(peer_pinheap_names[n], sizeof peer_pinheap_names[n], "pinheap-%s", pinheap_policy_name(pol));
    out[n] = proto;
    out[n].name = peer_pinheap_names[n];
    out[n].what = "pinheap FIXED heap over the region, this placement policy (pinheap_policy_name)";
    out[n].flags = PEER_FIXED | PEER_THREADS | PEER_SPACE;
    out[n].variant = (int)pol;
  }
  if (n < max) {
    out[n] = proto;
    out[n].name = "pinheap-simple";
    out[n].what = "pinheap SIMPLE heap (ordinary memory, no region): the speed of pinheap's paths alone";
    out[n].flags = PEER_THREADS;
    out[n].variant = PEER_PINHEAP_SIMPLE;
    out[n].space = NULL;
    out[n].base = NULL;
    out[n].owns = NULL;
  }
  return n + 1;
}
