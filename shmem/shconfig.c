#include "shconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pinheap.h"
#include "pinheap_sym.h"

static size_t shconfig_page(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static size_t shconfig_down(size_t v, size_t align) { return v & ~(align - 1); }

size_t shconfig_least_block(void) { return PINHEAP_SYM_HEAP_SIZE(PINHEAP_SYM_MAX_ALIGN, 1); }

size_t shconfig_sym_size(size_t block) {
  if (block < shconfig_least_block()) return 0;
  return shconfig_down(block - PINHEAP_SYM_ARENA_BYTES, PINHEAP_SYM_MAX_ALIGN);
}

/* A size variable: 0 with *out set (unset: *out unchanged), or -1 with the
 * error naming the variable. */
static int shconfig_size(const char *name, size_t *out, bool *given) {
  const char *v = getenv(name);
  if (!v) return 0;
  if (pinheap_parse_size(v, out) != 0) {
    char why[256];
    snprintf(why, sizeof why, "%s", pinheap_last_error());
    pinheap_set_error(EINVAL, "%s=\"%s\": %s", name, v, why);
    return -1;
  }
  *given = true;
  return 0;
}

int shconfig_from_env(shconfig *out) {
  shconfig c = {.impl_heap = SHCONFIG_IMPL_DEFAULT};
  pinheap_options o;
  pinheap_options_init(&o);
  if (pinheap_options_from_env(&o) != 0) return -1;
  c.debug = o.debug;
  const char *stats = getenv("PINHEAP_STATS");
  c.stats = stats && strcmp(stats, "1") == 0;
  bool impl_given = false;
  if (shconfig_size("PINHEAP_SHMEM_SIZE", &c.block, &c.explicit_size) != 0) return -1;
  size_t page = shconfig_page(), least = shconfig_least_block();
  if (c.explicit_size) {
    c.block = (c.block + page - 1) & ~(page - 1);
    if (c.block < least) {
      pinheap_set_error(EINVAL, "PINHEAP_SHMEM_SIZE=\"%s\" is below the %zu bytes a symmetric heap needs",
                        getenv("PINHEAP_SHMEM_SIZE"), least);
      return -1;
    }
    c.min_block = c.block;
    /* Only said in messages: the implementation's heap may differ. */
    const char *v = getenv("SHMEM_SYMMETRIC_HEAP_SIZE");
    if (v && pinheap_parse_size(v, &c.impl_heap) != 0) c.impl_heap = 0;
    *out = c;
    return 0;
  }
  if (shconfig_size("SHMEM_SYMMETRIC_HEAP_SIZE", &c.impl_heap, &impl_given) != 0) {
    char why[320];
    snprintf(why, sizeof why, "%s", pinheap_last_error());
    pinheap_set_error(EINVAL, "%s; set PINHEAP_SHMEM_SIZE to the block to take from it", why);
    return -1;
  }
  size_t margin = c.impl_heap / 16 > SHCONFIG_MIN_MARGIN ? c.impl_heap / 16 : SHCONFIG_MIN_MARGIN;
  c.block = c.impl_heap > margin ? shconfig_down(c.impl_heap - margin, PINHEAP_SYM_MAX_ALIGN) : 0;
  c.min_block = shconfig_down(c.impl_heap / 4, page);
  if (c.min_block < least) c.min_block = least;
  if (c.block < c.min_block) {
    pinheap_set_error(EINVAL,
                      "a symmetric heap of %zu bytes (SHMEM_SYMMETRIC_HEAP_SIZE%s) leaves no block "
                      "of at least %zu bytes beside a margin of %zu: make it larger, or set PINHEAP_SHMEM_SIZE",
                      c.impl_heap, impl_given ? "" : " unset: the default", c.min_block, margin);
    return -1;
  }
  *out = c;
  return 0;
}

int shconfig_check(const shconfig *c) {
  int broken = 0;
  size_t page = shconfig_page(), least = shconfig_least_block();
  if (c->min_block > c->block || c->block % page || c->min_block % page || c->min_block < least) {
    fprintf(stderr, "shconfig: blocks %zu (least %zu) should be page multiples of at least %zu, least <= block\n",
            c->block, c->min_block, least);
    broken++;
  }
  if (c->explicit_size && c->min_block != c->block) {
    fprintf(stderr, "shconfig: PINHEAP_SHMEM_SIZE gave %zu bytes: nothing smaller (%zu) should be tried\n", c->block,
            c->min_block);
    broken++;
  }
  return broken;
}
