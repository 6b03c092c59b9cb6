#include "local.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "error.h"
#include "prefault.h"

void local_provider_init(pinheap_provider *p, local_options *opts) {
  *p = (pinheap_provider){.name = "local", .ctx = opts, .obtain = local_obtain, .release = local_release};
}

int local_obtain(void *ctx, size_t size, size_t align, void **base_out, void **handle) {
  const local_options *opts = ctx;
  size_t span = size + align;
  if (span < size) {
    error_set(ENOMEM, "cannot reserve a region of %zu bytes: too large", size);
    return ENOMEM;
  }
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | (opts->charged ? 0 : MAP_NORESERVE);
  char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (raw == MAP_FAILED) {
    int err = errno;
    error_set(ENOMEM, "cannot reserve a region of %zu bytes: mmap: %s", size, strerror(err));
    return ENOMEM;
  }
  /* Keep the aligned middle, give back the ends. */
  char *base = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
  if (base > raw) munmap(raw, (size_t)(base - raw));
  size_t tail = (size_t)(raw + span - (base + size));
  if (tail) munmap(base + size, tail);
  if (opts->hugepages) madvise(base, size, MADV_HUGEPAGE);
  if (opts->lock) {
    if (mlock(base, size) != 0) {
      int err = errno == EPERM ? EPERM : ENOMEM;
      error_set(err, "cannot lock a region of %zu bytes: mlock: %s (see RLIMIT_MEMLOCK, ulimit -l)", size,
                strerror(errno));
      munmap(base, size);
      return err;
    }
  } else if (opts->prefault) {
    int err = prefault_pages(base, size, (size_t)sysconf(_SC_PAGESIZE));
    if (err != 0) {
      error_set(ENOMEM, "cannot pre-fault a region of %zu bytes: madvise(MADV_POPULATE_WRITE): %s", size,
                strerror(err));
      munmap(base, size);
      return ENOMEM;
    }
  }
  *base_out = base;
  *handle = NULL;
  return 0;
}

int local_release(void *ctx, void *base, size_t size, void *handle) {
  (void)ctx;
  (void)handle;
  return munmap(base, size) == 0 ? 0 : errno;
}
