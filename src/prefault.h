/*
 * prefault: faulting in every page of a fresh mapping before it is
 * registered or exposed, for the local provider, and for the comm layers'
 * providers through pinheap_prefault (pinheap.h).
 *
 * Thread-safe: no state.
 */
#ifndef PINHEAP_PREFAULT_H
#define PINHEAP_PREFAULT_H

#include <stddef.h>

/* Faults in [base, base + size), page-aligned and read-write: 0, or the
 * errno of MADV_POPULATE_WRITE (ENOMEM when the pages cannot be had). A
 * failure is returned, never worked around by touching the pages: a fault
 * the kernel cannot serve would kill the process instead of failing one
 * call. Only a kernel without MADV_POPULATE_WRITE (EINVAL, before Linux
 * 5.14) gets its pages touched one by one. */
int prefault_pages(void *base, size_t size, size_t page);

#endif
