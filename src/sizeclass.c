#include "sizeclass.h"

#include <errno.h>
#include <jemalloc/jemalloc.h>
#include <stdio.h>

#include "error.h"

int sizeclass_init(sizeclass *sc, size_t page) {
  unsigned nbins = 0;
  size_t sz = sizeof nbins;
  if (mallctl("arenas.nbins", &nbins, &sz, NULL, 0) != 0 || nbins == 0 || nbins > SIZECLASS_MAX_BINS) {
    error_set(ENOSYS, "jemalloc reports %u small size classes, pinheap handles 1 to %u", nbins, SIZECLASS_MAX_BINS);
    return -1;
  }
  sc->nbins = nbins;
  for (unsigned b = 0; b < nbins; b++) {
    char name[64];
    size_t size = 0;
    sz = sizeof size;
    snprintf(name, sizeof name, "arenas.bin.%u.size", b);
    if (mallctl(name, &size, &sz, NULL, 0) != 0 || size % 8 || size > SIZECLASS_MAX_SIZE ||
        (b && size <= sc->size[b - 1])) {
      error_set(ENOSYS, "jemalloc's size class %u (%zu bytes) is not one pinheap handles", b, size);
      return -1;
    }
    sc->size[b] = (uint32_t)size;
    uint32_t shift = (uint32_t)__builtin_ctzll(size), odd = (uint32_t)(size >> shift), inverse = odd;
    for (int i = 0; i < 5; i++) inverse *= 2 - odd * inverse; /* Newton: correct to 32 bits */
    sc->div[b] = (struct sizeclass_div){
        .inverse = inverse, .limit = UINT32_MAX / odd, .low = (1u << shift) - 1, .page_mask = (uint32_t)page - 1};
  }
  sc->max = sc->size[nbins - 1];
  unsigned b = 0;
  sc->bin_of[0] = 0;
  for (size_t k = 1; k <= sc->max / 8; k++) {
    while (sc->size[b] < k * 8) b++;
    sc->bin_of[k] = (uint8_t)b;
  }
  return 0;
}

int sizeclass_check(const sizeclass *sc) {
  int broken = 0;
  for (unsigned b = 0; b < sc->nbins; b++) {
    uint32_t s = sc->size[b];
    /* From a page-aligned address: at its start, and 8 bytes in. */
    uintptr_t page = (uintptr_t)sc->div[b].page_mask + 1;
    if (!sizeclass_starts(sc, b, (const void *)page, 0) || !sizeclass_starts(sc, b, (const void *)(page + 8), s - 8) ||
        (s > 8 && sizeclass_starts(sc, b, (const void *)(page + 8), 0))) {
      fprintf(stderr, "sizeclass: bin %u (%u bytes): its divisor (%#x, %#x, %u) should tell object starts\n", b, s,
              sc->div[b].inverse, sc->div[b].low, sc->div[b].limit);
      broken++;
    }
  }
  for (size_t n = 1; n <= sc->max; n++) {
    unsigned b = sizeclass_bin(sc, n);
    if (sc->size[b] < n || (b > 0 && sc->size[b - 1] >= n)) {
      fprintf(stderr, "sizeclass: %zu bytes map to bin %u of %u bytes, should be the smallest bin that fits\n", n, b,
              sc->size[b]);
      broken++;
      break;
    }
  }
  return broken;
}
