#include "shgather.h"

#include <errno.h>
#include <pshmem.h>
#include <stdio.h>
#include <string.h>

#include "pinheap.h"

#define SHGATHER_WORDS (SHGATHER_MAX_LEN / sizeof(uint64_t))

int shgather_init(shgather *g) {
  int npes = pshmem_n_pes();
  size_t set = SHMEM_COLLECT_SYNC_SIZE * sizeof(long) + SHGATHER_MAX_LEN + (size_t)npes * SHGATHER_MAX_LEN;
  char *area = pshmem_malloc(2 * set);
  if (!area) {
    pinheap_set_error(ENOMEM, "the implementation's shmem_malloc(%zu) for the allgather's buffers returned NULL",
                      2 * set);
    return ENOMEM;
  }
  *g = (shgather){.me = pshmem_my_pe(), .npes = npes, .area = area};
  for (int t = 0; t < 2; t++) {
    char *p = area + (size_t)t * set;
    g->sync[t] = (long *)p;
    g->src[t] = (uint64_t *)(p + SHMEM_COLLECT_SYNC_SIZE * sizeof(long));
    g->dst[t] = g->src[t] + SHGATHER_WORDS;
    for (int i = 0; i < SHMEM_COLLECT_SYNC_SIZE; i++) g->sync[t][i] = SHMEM_SYNC_VALUE;
  }
  /* Every PE's pSync must be set before any PE uses it. */
  pshmem_barrier_all();
  return 0;
}

int shgather_allgather(void *ctx, const void *in, void *out, size_t len) {
  shgather *g = ctx;
  if (len == 0 || len > SHGATHER_MAX_LEN) return EMSGSIZE;
  size_t words = (len + sizeof(uint64_t) - 1) / sizeof(uint64_t);
  unsigned t = g->turn;
  g->turn ^= 1u;
  g->src[t][words - 1] = 0; /* the padding travels too: no stale bytes */
  memcpy(g->src[t], in, len);
  pshmem_quiet();
  pshmem_fcollect64(g->dst[t], g->src[t], words, 0, 0, g->npes, g->sync[t]);
  for (int i = 0; i < g->npes; i++) memcpy((char *)out + (size_t)i * len, g->dst[t] + (size_t)i * words, len);
  return 0;
}

void shgather_fini(shgather *g) {
  if (!g->area) return;
  pshmem_free(g->area);
  g->area = NULL;
}

int shgather_check(const shgather *g) {
  int broken = 0;
  if (g->npes < 1 || g->me < 0 || g->me >= g->npes || g->turn > 1) {
    fprintf(stderr, "shgather: PE %d of %d, turn %u: the PE should be in 0..npes-1, the turn 0 or 1\n", g->me, g->npes,
            g->turn);
    broken++;
  }
  for (int t = 0; t < 2 && g->area; t++)
    for (int i = 0; i < SHMEM_COLLECT_SYNC_SIZE; i++)
      if (g->sync[t][i] != SHMEM_SYNC_VALUE) {
        fprintf(stderr, "shgather: pSync %d[%d] holds %ld between calls, not SHMEM_SYNC_VALUE\n", t, i,
                g->sync[t][i]);
        broken++;
      }
  return broken;
}
