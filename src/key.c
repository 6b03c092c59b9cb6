#include "key.h"

#include <stdio.h>
#include <sys/auxv.h>

void key_init(key *k, uintptr_t seed) {
  uint64_t r[2] = {0x9E3779B97F4A7C15ull, seed};
  const void *at = (const void *)getauxval(AT_RANDOM);
  if (at) memcpy(r, at, sizeof r);
  /* Independent: a caller that writes some bytes of an object handed out
   * with cached must not make freed of it. */
  uint64_t mix = seed * 0xBF58476D1CE4E5B9ull;
  k->freed = (r[0] ^ mix) | 1;
  k->cached = (r[1] ^ (mix >> 29) ^ 0x94D049BB133111EBull) | 1;
  if (k->cached == k->freed) k->cached ^= 2;
}

int key_check(const key *k) {
  if (k->cached != k->freed && (k->cached & k->freed & 1)) return 0;
  fprintf(stderr, "key: the keys %#llx and %#llx should differ and be odd\n", (unsigned long long)k->cached,
          (unsigned long long)k->freed);
  return 1;
}
