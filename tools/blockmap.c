#include "blockmap.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define BLOCKMAP_FIRST_CAP 1024u

static size_t blockmap_home(uint64_t key, size_t cap) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdULL;
  key ^= key >> 33;
  key *= 0xc4ceb9fe1a85ec53ULL;
  key ^= key >> 33;
  return (size_t)key & (cap - 1);
}

static blockmap_slot *blockmap_table(size_t cap) {
  void *t = mmap(NULL, cap * sizeof(blockmap_slot), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (t == MAP_FAILED) return NULL;
  memset(t, 0xff, cap * sizeof(blockmap_slot)); /* every key BLOCKMAP_EMPTY */
  return t;
}

void blockmap_init(blockmap *m) { memset(m, 0, sizeof *m); }

void blockmap_fini(blockmap *m) {
  if (m->slots) munmap(m->slots, m->cap * sizeof(blockmap_slot));
  blockmap_init(m);
}

/* The slot holding key, or the empty slot where it would go. */
static blockmap_slot *blockmap_find(const blockmap *m, uint64_t key) {
  size_t i = blockmap_home(key, m->cap);
  while (m->slots[i].key != key && m->slots[i].key != BLOCKMAP_EMPTY) i = (i + 1) & (m->cap - 1);
  return &m->slots[i];
}

static int blockmap_grow(blockmap *m) {
  size_t cap = m->cap ? m->cap * 2 : BLOCKMAP_FIRST_CAP;
  blockmap_slot *t = blockmap_table(cap);
  if (!t) return -1;
  blockmap old = *m;
  m->slots = t;
  m->cap = cap;
  for (size_t i = 0; i < old.cap; i++)
    if (old.slots[i].key != BLOCKMAP_EMPTY) *blockmap_find(m, old.slots[i].key) = old.slots[i];
  if (old.slots) munmap(old.slots, old.cap * sizeof(blockmap_slot));
  return 0;
}

int blockmap_put(blockmap *m, uint64_t key, uint64_t a, uint64_t b) {
  if (key == BLOCKMAP_EMPTY) return -1;
  if (m->cap) {
    blockmap_slot *s = blockmap_find(m, key);
    if (s->key == key) {
      s->a = a;
      s->b = b;
      return 0;
    }
  }
  if ((m->count + 1) * 2 > m->cap && blockmap_grow(m) != 0) return -1;
  blockmap_slot *s = blockmap_find(m, key);
  *s = (blockmap_slot){key, a, b};
  m->count++;
  return 0;
}

bool blockmap_get(const blockmap *m, uint64_t key, uint64_t *a, uint64_t *b) {
  if (!m->cap || key == BLOCKMAP_EMPTY) return false;
  const blockmap_slot *s = blockmap_find(m, key);
  if (s->key != key) return false;
  if (a) *a = s->a;
  if (b) *b = s->b;
  return true;
}

bool blockmap_take(blockmap *m, uint64_t key, uint64_t *a, uint64_t *b) {
  if (!blockmap_get(m, key, a, b)) return false;
  size_t mask = m->cap - 1, hole = (size_t)(blockmap_find(m, key) - m->slots);
  /* Backward shift: move up every later key of the run whose home does not
   * lie cyclically in (hole, j], so that no key is cut off from its home. */
  for (size_t j = (hole + 1) & mask; m->slots[j].key != BLOCKMAP_EMPTY; j = (j + 1) & mask) {
    size_t home = blockmap_home(m->slots[j].key, m->cap);
    bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays) continue;
    m->slots[hole] = m->slots[j];
    hole = j;
  }
  m->slots[hole].key = BLOCKMAP_EMPTY;
  m->count--;
  return true;
}

int blockmap_walk(const blockmap *m, int (*visit)(uint64_t key, uint64_t a, uint64_t b, void *arg), void *arg) {
  for (size_t i = 0; i < m->cap; i++) {
    const blockmap_slot *s = &m->slots[i];
    if (s->key == BLOCKMAP_EMPTY) continue;
    int r = visit(s->key, s->a, s->b, arg);
    if (r) return r;
  }
  return 0;
}

int blockmap_check(const blockmap *m) {
  int broken = 0;
  if (m->cap & (m->cap - 1)) {
    fprintf(stderr, "blockmap: capacity %zu should be a power of two\n", m->cap);
    return 1;
  }
  size_t n = 0;
  for (size_t i = 0; i < m->cap; i++) {
    uint64_t key = m->slots[i].key;
    if (key == BLOCKMAP_EMPTY) continue;
    n++;
    for (size_t j = blockmap_home(key, m->cap); j != i; j = (j + 1) & (m->cap - 1)) {
      if (m->slots[j].key == BLOCKMAP_EMPTY) {
        fprintf(stderr, "blockmap: key %#llx in slot %zu is cut off from its home by empty slot %zu\n",
                (unsigned long long)key, i, j);
        broken++;
        break;
      }
    }
  }
  if (n != m->count || n * 2 > m->cap) {
    fprintf(stderr, "blockmap: %zu keys found, %zu counted, capacity %zu (at most half full)\n", n, m->count, m->cap);
    broken++;
  }
  return broken;
}
