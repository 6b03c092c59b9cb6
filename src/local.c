#include "local.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "error.h"

static void local_prefault(void *base, size_t size) {
#ifdef MADV_POPULATE_WRITE
  if (madvise(base, size, MADV_POPULATE_WRITE) == 0) return;
#endif
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  for (size_t off = 0; off < size; off += page) ((volatile char *)base)[off] = 0;
}

int local_map(local_region *r, size_t size, const local_options *opts) {
  memset(r, 0, sizeof *r);
  size_t span = size + LOCAL_ALIGN;
  if (span < size) {
    error_set(ENOMEM, "cannot reserve a region of %zu bytes: too large", size);
    return -1;
  }
  char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) {
    int err = errno;
    error_set(ENOMEM, "cannot reserve a region of %zu bytes: mmap: %s", size, strerror(err));
    return -1;
  }
  /* Keep the aligned middle, give back the ends. */
  char *base = (char *)(((uintptr_t)raw + LOCAL_ALIGN - 1) & ~(uintptr_t)(LOCAL_ALIGN - 1));
  if (base > raw) munmap(raw, (size_t)(base - raw));
  size_t tail = (size_t)(raw + span - (base + size));
  if (tail) munmap(base + size, tail);
  r->base = base;
  r->size = size;
  if (opts->hugepages) madvise(base, size, MADV_HUGEPAGE);
  if (opts->lock) {
    if (mlock(base, size) != 0) {
      int err = errno;
      munmap(base, size);
      error_set(err == EPERM ? EPERM : ENOMEM,
                "cannot lock a region of %zu bytes: mlock: %s (see RLIMIT_MEMLOCK, ulimit -l)", size, strerror(err));
      r->base = NULL;
      return -1;
    }
    r->locked = true;
  } else if (opts->prefault) {
    local_prefault(base, size);
  }
  return 0;
}

void local_unmap(local_region *r) {
  if (!r->base) return;
  if (r->locked) munlock(r->base, r->size);
  munmap(r->base, r->size);
  r->base = NULL;
}
