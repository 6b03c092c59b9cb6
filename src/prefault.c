#include "prefault.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pinheap.h"
#include "util.h"

int prefault_pages(void *base, size_t size, size_t page) {
#ifdef MADV_POPULATE_WRITE
  if (madvise(base, size, MADV_POPULATE_WRITE) == 0) return 0;
  if (errno != EINVAL) return errno;
#endif
  for (size_t off = 0; off < size; off += page) ((volatile char *)base)[off] = 0;
  return 0;
}

PH_EXPORT int pinheap_prefault(void *base, size_t size) {
  return prefault_pages(base, size, (size_t)sysconf(_SC_PAGESIZE));
}
