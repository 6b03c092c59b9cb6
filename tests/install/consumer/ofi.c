/* Uses an installed libpinheap-ofi: a FIXED heap of 16 MiB registered on
 * the shm provider, one block located, then prints "ok". Exits non-zero on
 * any failure. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <pinheap_ofi.h>

#include <stdio.h>
#include <string.h>

int main(void) {
  struct fi_info *hints = fi_allocinfo();
  if (hints == NULL) return 1;
  hints->caps = FI_RMA;
  hints->ep_attr->type = FI_EP_RDM;
  hints->fabric_attr->prov_name = strdup("shm");
  pinheap_ofi *po = pinheap_ofi_open(hints, FI_REMOTE_READ | FI_REMOTE_WRITE);
  fi_freeinfo(hints);
  if (po == NULL) {
    fprintf(stderr, "consumer_ofi: pinheap_ofi_open failed: %s\n", pinheap_ofi_last_error());
    return 1;
  }
  pinheap_options opts;
  pinheap_options_init(&opts);
  opts.size = (size_t)16 << 20;
  opts.arenas = 1;
  opts.provider = pinheap_ofi_provider(po);
  pinheap *heap = pinheap_create(&opts);
  void *block = heap ? pinheap_malloc(heap, 1000) : NULL;
  pinheap_ofi_addr at;
  if (block == NULL || pinheap_ofi_locate(po, heap, block, &at) != 0) {
    fprintf(stderr, "consumer_ofi: %s / %s\n", pinheap_last_error(), pinheap_ofi_last_error());
    return 1;
  }
  pinheap_free(heap, block);
  pinheap_destroy(heap);
  pinheap_ofi_destroy(po);
  printf("ok\n");
  return 0;
}
