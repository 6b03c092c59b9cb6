/*
 * prefault: faulting in every page of a fresh mapping before it is
 * registered or exposed, for the providers that offer it. Header-only: the
 * comm-layer libraries use it without libpinheap exporting it.
 */
#ifndef PINHEAP_PREFAULT_H
#define PINHEAP_PREFAULT_H

#include <errno.h>
#include <stddef.h>
#include <sys/mman.h>

/* Faults in [base, base + size), page-aligned and read-write: 0, or the
 * errno of MADV_POPULATE_WRITE (ENOMEM when the pages cannot be had). A
 * failure is returned, never worked around by touching the pages: a fault
 * the kernel cannot serve would kill the process instead of failing one
 * call. Only a kernel without MADV_POPULATE_WRITE (EINVAL, before Linux
 * 5.14) gets its pages touched one by one. */
static inline int prefault_pages(void *base, size_t size, size_t page) {
#ifdef MADV_POPULATE_WRITE
  if (madvise(base, size, MADV_POPULATE_WRITE) == 0) return 0;
  if (errno != EINVAL) return errno;
#endif
  for (size_t off = 0; off < size; off += page) ((volatile char *)base)[off] = 0;
  return 0;
}

#endif
