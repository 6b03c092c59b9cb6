#include "shblock.h"

#include <errno.h>
#include <pshmem.h>
#include <stdint.h>
#include <stdio.h>

static int shblock_obtain(void *ctx, size_t size, size_t align, void **base, void **handle) {
  shblock *b = ctx;
  if (b->base) {
    pinheap_set_error(EBUSY, "it serves one block, obtained already");
    return EBUSY;
  }
  void *p = pshmem_align(align, size);
  if (!p) {
    pinheap_set_error(ENOMEM, "the implementation's shmem_align(%zu, %zu) returned NULL", align, size);
    return ENOMEM;
  }
  *b = (shblock){.provider = b->provider, .base = p, .size = size, .align = align, .held = true};
  *base = p;
  *handle = NULL;
  return 0;
}

static int shblock_release(void *ctx, void *base, size_t size, void *handle) {
  shblock *b = ctx;
  (void)handle;
  if (base != b->base || size != b->size || !b->held) return EINVAL;
  b->held = false;
  return 0;
}

void shblock_init(shblock *b) {
  *b = (shblock){.provider = {.name = "libpinheap-shmem", .ctx = b, .obtain = shblock_obtain,
                              .release = shblock_release}};
}

void shblock_free(shblock *b) {
  if (!b->base || b->held) return;
  pshmem_free(b->base);
  shblock_init(b);
}

int shblock_check(const shblock *b) {
  int broken = 0;
  if ((b->base == NULL) != (b->size == 0) || (b->held && !b->base)) {
    fprintf(stderr, "shblock: block %p of %zu bytes, %s: a block has a size, a held block exists\n", b->base, b->size,
            b->held ? "held" : "not held");
    broken++;
  }
  if (b->base && (b->align == 0 || ((uintptr_t)b->base & (b->align - 1)))) {
    fprintf(stderr, "shblock: block %p should be aligned to %zu\n", b->base, b->align);
    broken++;
  }
  if (b->provider.ctx != b) {
    fprintf(stderr, "shblock: the provider's context %p should be the block's record %p\n", b->provider.ctx,
            (const void *)b);
    broken++;
  }
  return broken;
}
