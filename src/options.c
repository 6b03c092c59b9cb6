#include "options.h"

#include <errno.h>
#include <string.h>

#include "arenas.h"
#include "dynamic.h"
#include "error.h"
#include "report.h"

#define OPTIONS_LARGE_THRESHOLD ((size_t)14 << 10)
#define OPTIONS_SMALL_EXTENT_MAX ((size_t)4 << 20)
#define OPTIONS_CHUNK_SIZE ((size_t)64 << 20)
#define OPTIONS_DIRECT_THRESHOLD ((size_t)8 << 20)
#define OPTIONS_QUARANTINE ((size_t)256 << 20)
#define OPTIONS_DIRECT_CACHE ((size_t)256 << 20)
#define OPTIONS_DIRECT_CACHE_BLOCKS 16u

void options_init(pinheap_options *opts) {
  memset(opts, 0, sizeof *opts);
  opts->mode = PINHEAP_FIXED;
  opts->size = 0;
  opts->policy = PINHEAP_POLICY_TWO_ENDED;
  opts->large_threshold = OPTIONS_LARGE_THRESHOLD;
  opts->small_extent_max = OPTIONS_SMALL_EXTENT_MAX;
  opts->arenas = 0;
  opts->chunk_size = OPTIONS_CHUNK_SIZE;
  opts->direct_threshold = OPTIONS_DIRECT_THRESHOLD;
  opts->quarantine = OPTIONS_QUARANTINE;
  opts->direct_cache = OPTIONS_DIRECT_CACHE;
  opts->direct_cache_blocks = OPTIONS_DIRECT_CACHE_BLOCKS;
}

int options_check(const pinheap_options *o) {
  if (!o) {
    error_set(EINVAL, "pinheap_create: options are NULL");
    return -1;
  }
  if (o->mode != PINHEAP_SIMPLE && o->mode != PINHEAP_DYNAMIC && o->mode != PINHEAP_FIXED) {
    error_set(EINVAL, "pinheap_create: unknown mode %d", (int)o->mode);
    return -1;
  }
  if (o->mode == PINHEAP_DYNAMIC && o->size && o->size < DYNAMIC_GRANULE) {
    error_set(EINVAL, "pinheap_create: a cap of %zu bytes is below one 2 MiB chunk", o->size);
    return -1;
  }
  if (o->mode != PINHEAP_FIXED && o->policy == PINHEAP_POLICY_BUMP) {
    error_set(EINVAL, "pinheap_create: the bump policy is for FIXED heaps");
    return -1;
  }
  if (o->mode != PINHEAP_FIXED && (o->chunk_size == 0 || o->chunk_size > ((size_t)1 << 40) ||
                                    o->direct_threshold == 0)) {
    error_set(EINVAL, "pinheap_create: chunk_size (%zu) and direct_threshold (%zu) must be positive, chunks at most "
              "1 TiB", o->chunk_size, o->direct_threshold);
    return -1;
  }
  if ((unsigned)o->policy > PINHEAP_POLICY_FIRST_FIT) {
    error_set(EINVAL, "pinheap_create: unknown policy %d", (int)o->policy);
    return -1;
  }
  if (o->mode == PINHEAP_FIXED && o->size == 0) {
    error_set(EINVAL, "pinheap_create: a FIXED heap needs a size");
    return -1;
  }
  if (o->mode == PINHEAP_FIXED && o->size > ((size_t)1 << 47)) {
    error_set(EINVAL, "pinheap_create: a region of %zu bytes is larger than the address space allows", o->size);
    return -1;
  }
  if (o->large_threshold == 0 || o->small_extent_max == 0) {
    error_set(EINVAL, "pinheap_create: large_threshold and small_extent_max must be positive");
    return -1;
  }
  if (o->provider && !o->provider->obtain) {
    error_set(EINVAL, "pinheap_create: the provider has no obtain function");
    return -1;
  }
  if (o->mode == PINHEAP_FIXED && o->min_size > o->size) {
    error_set(EINVAL, "pinheap_create: min_size %zu is above size %zu", o->min_size, o->size);
    return -1;
  }
  if (o->debug & ~PINHEAP_DEBUG_ALL) {
    error_set(EINVAL, "pinheap_create: unknown debug flags %#x", o->debug & ~PINHEAP_DEBUG_ALL);
    return -1;
  }
  if (o->oom_report && (!*o->oom_report || strlen(o->oom_report) > REPORT_MAX_PATH)) {
    error_set(EINVAL, "pinheap_create: oom_report must be a path of 1 to %d bytes", REPORT_MAX_PATH);
    return -1;
  }
  if (o->direct_cache_blocks > DYNAMIC_CACHE_MAX_BLOCKS) {
    error_set(EINVAL, "pinheap_create: direct_cache_blocks is %u, at most %u", o->direct_cache_blocks,
              DYNAMIC_CACHE_MAX_BLOCKS);
    return -1;
  }
  if (o->arenas > ARENAS_MAX) {
    error_set(EINVAL, "pinheap_create: %u arenas asked, at most %u", o->arenas, ARENAS_MAX);
    return -1;
  }
  return 0;
}
