#include "peer.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

void *peer_fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return NULL;
}

void *peer_region_map(size_t size, size_t align, bool prefault) {
  size_t len = size + align;
  char *raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  char *base = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
  if (base > raw) munmap(raw, (size_t)(base - raw));
  if (raw + len > base + size) munmap(base + size, (size_t)(raw + len - (base + size)));
  if (prefault && madvise(base, size, MADV_POPULATE_WRITE) != 0) {
    /* Kernels before 5.14: write a byte of every page. */
    for (size_t off = 0; off < size; off += 4096) ((volatile char *)base)[off] = 0;
  }
  return base;
}

void peer_region_unmap(void *base, size_t size) { munmap(base, size); }

bool peer_region_holds(const void *base, size_t len, const void *ptr, size_t size) {
  uintptr_t b = (uintptr_t)base, q = (uintptr_t)ptr;
  return q >= b && q - b <= len && size <= len - (q - b);
}
