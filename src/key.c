#include "key.h"

#include <stdio.h>
#include <sys/auxv.h>

/* Set in every key (key.h's invariants). */
#define KEY_BITS ((uint64_t)1 << 63 | 1)

void key_init(key *k, uintptr_t seed) {
  uint64_t r[2] = {0x9E3779B97F4A7C15ull, seed};
  const void *at = (const void *)getauxval(AT_RANDOM);
  if (at) memcpy(r, at, sizeof r);
  /* Independent: a caller that writes some bytes of an object handed out
   * with cached must not make freed of it. */
  uint64_t mix = seed * 0xBF58476D1CE4E5B9ull;
  k->freed = (r[0] ^ mix) | KEY_BITS;
  k->cached = (r[1] ^ (mix >> 29) ^ 0x94D049BB133111EBull) | KEY_BITS;
  if (k->cached == k->freed) k->cached ^= 2;
}

int key_check(const key *k) {
  if (k->cached != k->freed && (k->cached & k->freed & KEY_BITS) == KEY_BITS) return 0;
  fprintf(stderr, "key: the keys %#llx and %#llx should differ, be odd and have the top bit set\n",
          (unsigned long long)k->cached, (unsigned long long)k->freed);
  return 1;
}
