/*
 * prov_ofi: the libfabric provider (include/pinheap_ofi.h). Maps regions,
 * registers them with fi_mr_reg on one domain and keeps one record per
 * registration in a table of its own; the record is the handle the heap
 * keeps for the region, so that pinheap_ofi_locate reads the key, the
 * descriptor and the base from it without a libfabric call.
 *
 * Records come from a table reserved once (MAP_NORESERVE, so only the
 * records used cost memory) instead of from malloc, so that locate can tell
 * a record of this object from any other handle by its address alone.
 *
 * Longer than 600 lines: the registration table, the provider's calls and
 * pinheap_ofi_locate share the table's record layout, private to this file.
 */
#include "pinheap_ofi.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <rdma/fi_errno.h>

/* The functions of include/pinheap_ofi.h (the rest is hidden). */
#define PROV_OFI_EXPORT __attribute__((visibility("default")))


/* Registrations live at once, at most: the size of the record table. */
#define PROV_OFI_MAX_REGIONS ((size_t)1 << 20)
/* Objects live at once in the process, at most. */
#define PROV_OFI_MAX_OBJECTS 64
/* Memory-registration modes this provider cannot serve. */
#define PROV_OFI_UNSUPPORTED_MR (FI_MR_ENDPOINT | FI_MR_RAW)
#define PROV_OFI_ACCESS (FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE | FI_SEND | FI_RECV)
/* The flags that make a registration's descriptor good for local buffers. */
#define PROV_OFI_LOCAL_ACCESS (FI_READ | FI_WRITE | FI_SEND | FI_RECV)

/*
 * One registration. Live iff mr != NULL; then base is page-aligned, size is
 * positive, key is the key the domain knows mr by and desc is
 * fi_mr_desc(mr). A record that is not live is on the free list once.
 */
typedef struct prov_ofi_region {
  struct fid_mr *mr;
  void *desc;
  uint64_t key;
  char *base;
  size_t size;
  struct prov_ofi_region *next_free;
} prov_ofi_region;

/*
 * Invariants: records[0, used) are the records ever handed out, each live
 * or on free_list; stats.regions counts the live ones, stats.bytes sums
 * their sizes, stats.registered - stats.deregistered == stats.regions; no
 * two live records share a key; with requested keys, 1 <= next_key <=
 * key_max and 1 <= key_tries <= key_max. Fields below lock change under
 * it; the others are set at creation.
 */
struct pinheap_ofi {
  struct fid_fabric *fabric; /* opened here, else NULL */
  struct fid_domain *domain;
  bool own_domain;      /* opened here: closed by destroy */
  struct fi_info *info; /* a copy of one fi_info, ours */
  uint64_t access;
  bool prefault; /* touch every page of a region before registering it */
  bool virt_addr, prov_key;
  uint64_t key_max; /* the largest key mr_key_size bytes hold */
  /* Requested keys tried for one registration while the domain answers that
   * the key is taken: each such key belongs to a live registration on the
   * domain, so every key once, or one more than the registrations the
   * domain can hold (mr_cnt) when it says. */
  uint64_t key_tries;
  size_t page;
  prov_ofi_region *records; /* PROV_OFI_MAX_REGIONS reserved */
  int slot;                 /* in prov_ofi_objects */
  pinheap_provider provider;
  char name[64];
  pthread_mutex_t lock;
  size_t used;
  prov_ofi_region *free_list;
  uint64_t next_key;
  pinheap_ofi_stats stats;
};

/*
 * Every live object of the process, so that a record found through a heap
 * leads to its object without the caller naming it (pinheap_ofi_locate with
 * three arguments). Invariants: prov_ofi_objects[0, prov_ofi_objects_used)
 * are the slots ever taken, each a live object or NULL; a live object is in
 * one slot. Slots change under prov_ofi_objects_lock, atomically, so that
 * lookups read them without it.
 */
static pinheap_ofi *prov_ofi_objects[PROV_OFI_MAX_OBJECTS];
static size_t prov_ofi_objects_used;
static pthread_mutex_t prov_ofi_objects_lock = PTHREAD_MUTEX_INITIALIZER;

static _Thread_local char prov_ofi_error_text[512];

/* Sets errno to err and this thread's message. */
__attribute__((format(printf, 2, 3))) static void prov_ofi_error(int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prov_ofi_error_text, sizeof prov_ofi_error_text, fmt, ap);
  va_end(ap);
  /* Also pinheap_last_error(): a heap whose obtain fails ends its message
   * with this reason. */
  pinheap_set_error(err, "%s", prov_ofi_error_text);
}

/* The errno value for a libfabric return code (libfabric's own codes from
 * FI_ERRNO_OFFSET up have none: EIO). */
static int prov_ofi_errno(int ret) {
  int e = ret < 0 ? -ret : ret;
  return e > 0 && e < FI_ERRNO_OFFSET ? e : EIO;
}

/* info's mr_mode with the legacy values spelled out as mode bits. */
static uint64_t prov_ofi_mr_mode(const struct fi_info *info) {
  int mode = info->domain_attr->mr_mode;
  if (mode == FI_MR_BASIC) return FI_MR_VIRT_ADDR | FI_MR_PROV_KEY | FI_MR_ALLOCATED;
  if (mode == FI_MR_SCALABLE) return 0;
  return (uint64_t)mode;
}

static bool prov_ofi_access_ok(uint64_t access, const char *fn) {
  if (access != 0 && (access & ~(uint64_t)PROV_OFI_ACCESS) == 0) return true;
  prov_ofi_error(EINVAL,
                 "%s: access 0x%llx: give a non-empty combination of FI_READ, FI_WRITE, FI_REMOTE_READ, "
                 "FI_REMOTE_WRITE, FI_SEND and FI_RECV",
                 fn, (unsigned long long)access);
  return false;
}

static int prov_ofi_obtain(void *ctx, size_t size, size_t align, void **base, void **handle);
static int prov_ofi_release(void *ctx, void *base, size_t size, void *handle);

/* A slot of prov_ofi_objects for po, complete: published there; or -1
 * when all are taken. */
static int prov_ofi_slot_take(pinheap_ofi *po) {
  pthread_mutex_lock(&prov_ofi_objects_lock);
  int slot = -1;
  for (size_t i = 0; i < prov_ofi_objects_used && slot < 0; i++)
    if (!prov_ofi_objects[i]) slot = (int)i;
  if (slot >= 0) {
    __atomic_store_n(&prov_ofi_objects[slot], po, __ATOMIC_RELEASE);
  } else if (prov_ofi_objects_used < PROV_OFI_MAX_OBJECTS) {
    slot = (int)prov_ofi_objects_used;
    __atomic_store_n(&prov_ofi_objects[slot], po, __ATOMIC_RELEASE);
    __atomic_store_n(&prov_ofi_objects_used, prov_ofi_objects_used + 1, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&prov_ofi_objects_lock);
  return slot;
}

static void prov_ofi_slot_put(int slot) {
  pthread_mutex_lock(&prov_ofi_objects_lock);
  __atomic_store_n(&prov_ofi_objects[slot], NULL, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&prov_ofi_objects_lock);
}

/* A new object on domain (not owned yet), or NULL with the error set. */
static pinheap_ofi *prov_ofi_new(struct fid_domain *domain, const struct fi_info *info, uint64_t access,
                                 const char *fn) {
  if (!domain || !info || !info->domain_attr) {
    prov_ofi_error(EINVAL, "%s: domain or info is NULL", fn);
    return NULL;
  }
  if (!prov_ofi_access_ok(access, fn)) return NULL;
  uint64_t mode = prov_ofi_mr_mode(info);
  if ((mode & FI_MR_LOCAL) && !(access & PROV_OFI_LOCAL_ACCESS)) {
    /* desc would be handed out for local buffers and fail when used. */
    prov_ofi_error(EINVAL,
                   "%s: the domain's memory registration mode has FI_MR_LOCAL, so buffers in the heap need a "
                   "registration with local access: add FI_READ and FI_WRITE (or FI_SEND and FI_RECV) to access 0x%llx",
                   fn, (unsigned long long)access);
    return NULL;
  }
  if (mode & PROV_OFI_UNSUPPORTED_MR) {
    prov_ofi_error(ENOTSUP,
                   "%s: the domain's memory registration mode has %s, which pinheap_ofi does not support; "
                   "open the domain with hints whose domain_attr->mr_mode leaves it out",
                   fn,
                   mode & FI_MR_ENDPOINT ? "FI_MR_ENDPOINT (regions bound to an endpoint)" : "FI_MR_RAW (raw keys)");
    return NULL;
  }
  pinheap_ofi *po = calloc(1, sizeof *po);
  struct fi_info *copy = fi_dupinfo(info);
  void *records = mmap(NULL, PROV_OFI_MAX_REGIONS * sizeof(prov_ofi_region), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (!po || !copy || records == MAP_FAILED) {
    if (records != MAP_FAILED) munmap(records, PROV_OFI_MAX_REGIONS * sizeof(prov_ofi_region));
    fi_freeinfo(copy);
    free(po);
    prov_ofi_error(ENOMEM, "%s: no memory for the provider's state", fn);
    return NULL;
  }
  size_t key_size = info->domain_attr->mr_key_size;
  uint64_t key_max = key_size == 0 || key_size >= 8 ? UINT64_MAX : ((uint64_t)1 << (8 * key_size)) - 1;
  size_t mr_cnt = info->domain_attr->mr_cnt;
  *po = (pinheap_ofi){
      .domain = domain,
      .info = copy,
      .access = access,
      .virt_addr = (mode & FI_MR_VIRT_ADDR) != 0,
      .prov_key = (mode & FI_MR_PROV_KEY) != 0,
      .key_max = key_max,
      .key_tries = mr_cnt && mr_cnt < key_max ? mr_cnt + 1 : key_max,
      .page = (size_t)sysconf(_SC_PAGESIZE),
      .records = records,
      .next_key = 1,
  };
  pthread_mutex_init(&po->lock, NULL);
  const char *prov = info->fabric_attr && info->fabric_attr->prov_name ? info->fabric_attr->prov_name : "?";
  snprintf(po->name, sizeof po->name, "libfabric %s", prov);
  po->provider =
      (pinheap_provider){.name = po->name, .ctx = po, .obtain = prov_ofi_obtain, .release = prov_ofi_release};
  if ((po->slot = prov_ofi_slot_take(po)) < 0) {
    pthread_mutex_destroy(&po->lock);
    munmap(records, PROV_OFI_MAX_REGIONS * sizeof(prov_ofi_region));
    fi_freeinfo(copy);
    free(po);
    prov_ofi_error(ENOMEM, "%s: more than %d objects at once in the process", fn, PROV_OFI_MAX_OBJECTS);
    return NULL;
  }
  return po;
}

PROV_OFI_EXPORT pinheap_ofi *pinheap_ofi_create(struct fid_domain *domain, const struct fi_info *info, uint64_t access) {
  return prov_ofi_new(domain, info, access, "pinheap_ofi_create");
}

PROV_OFI_EXPORT pinheap_ofi *pinheap_ofi_open(const struct fi_info *hints, uint64_t access) {
  static const char fn[] = "pinheap_ofi_open";
  if (!prov_ofi_access_ok(access, fn)) return NULL;
  struct fi_info *ask = hints ? fi_dupinfo(hints) : fi_allocinfo();
  if (!ask) {
    prov_ofi_error(ENOMEM, "%s: no memory for a copy of the hints", fn);
    return NULL;
  }
  /* Hints built by hand may have no domain attributes: zero ones, as
   * fi_allocinfo gives (fi_freeinfo frees them). */
  if (!ask->domain_attr && !(ask->domain_attr = calloc(1, sizeof *ask->domain_attr))) {
    fi_freeinfo(ask);
    prov_ofi_error(ENOMEM, "%s: no memory for a copy of the hints", fn);
    return NULL;
  }
  /* Only modes this provider serves: a provider that needs another is not
   * matched rather than refused after opening. */
  ask->domain_attr->mr_mode &= ~PROV_OFI_UNSUPPORTED_MR;
  const char *prov = ask->fabric_attr && ask->fabric_attr->prov_name ? ask->fabric_attr->prov_name : "any";
  struct fi_info *found = NULL;
  struct fid_fabric *fabric = NULL;
  struct fid_domain *domain = NULL;
  pinheap_ofi *po = NULL;
  int ret = fi_getinfo(FI_VERSION(FI_MAJOR_VERSION, FI_MINOR_VERSION), NULL, NULL, 0, ask, &found);
  if (ret != 0) {
    prov_ofi_error(prov_ofi_errno(ret), "%s: fi_getinfo (provider %s): %s", fn, prov, fi_strerror(-ret));
    goto out;
  }
  ret = fi_fabric(found->fabric_attr, &fabric, NULL);
  if (ret != 0) {
    prov_ofi_error(prov_ofi_errno(ret), "%s: fi_fabric (provider %s): %s", fn, found->fabric_attr->prov_name,
                   fi_strerror(-ret));
    goto out;
  }
  ret = fi_domain(fabric, found, &domain, NULL);
  if (ret != 0) {
    prov_ofi_error(prov_ofi_errno(ret), "%s: fi_domain (provider %s, domain %s): %s", fn, found->fabric_attr->prov_name,
                   found->domain_attr->name, fi_strerror(-ret));
    goto out;
  }
  po = prov_ofi_new(domain, found, access, fn);
  if (po) {
    po->fabric = fabric;
    po->own_domain = true;
  }
out:
  if (!po) {
    int err = errno;
    if (domain) fi_close(&domain->fid);
    if (fabric) fi_close(&fabric->fid);
    errno = err;
  }
  fi_freeinfo(found);
  fi_freeinfo(ask);
  return po;
}

PROV_OFI_EXPORT struct fid_fabric *pinheap_ofi_fabric(const pinheap_ofi *po) { return po ? po->fabric : NULL; }
PROV_OFI_EXPORT struct fid_domain *pinheap_ofi_domain(const pinheap_ofi *po) { return po ? po->domain : NULL; }
PROV_OFI_EXPORT struct fi_info *pinheap_ofi_info(const pinheap_ofi *po) { return po ? po->info : NULL; }
PROV_OFI_EXPORT const pinheap_provider *pinheap_ofi_provider(const pinheap_ofi *po) { return po ? &po->provider : NULL; }

PROV_OFI_EXPORT int pinheap_ofi_set_prefault(pinheap_ofi *po, bool on) {
  if (!po) {
    prov_ofi_error(EINVAL, "pinheap_ofi_set_prefault: NULL object");
    return -1;
  }
  pthread_mutex_lock(&po->lock);
  po->prefault = on;
  pthread_mutex_unlock(&po->lock);
  return 0;
}

/* A record for a new registration, or NULL when the table is full. Under
 * the lock. */
static prov_ofi_region *prov_ofi_record_take(pinheap_ofi *po) {
  prov_ofi_region *r = po->free_list;
  if (r) {
    po->free_list = r->next_free;
    return r;
  }
  return po->used < PROV_OFI_MAX_REGIONS ? &po->records[po->used++] : NULL;
}

/* Puts a record that is not live back. Under the lock. */
static void prov_ofi_record_put(pinheap_ofi *po, prov_ofi_region *r) {
  *r = (prov_ofi_region){.next_free = po->free_list};
  po->free_list = r;
}

/* The live record handle points to, or NULL when handle is no live record
 * of po. */
static prov_ofi_region *prov_ofi_record_of(const pinheap_ofi *po, const void *handle) {
  uintptr_t first = (uintptr_t)po->records, h = (uintptr_t)handle;
  if (h < first || h >= first + PROV_OFI_MAX_REGIONS * sizeof(prov_ofi_region) ||
      (h - first) % sizeof(prov_ofi_region) != 0)
    return NULL;
  prov_ofi_region *r = (prov_ofi_region *)handle;
  return r->mr ? r : NULL;
}

/* Registers [base, base + size) into r: a requested key from the counter,
 * or the provider's. Under the lock. Returns 0 or a libfabric error code,
 * with the error set. */
static int prov_ofi_register(pinheap_ofi *po, prov_ofi_region *r, char *base, size_t size) {
  struct fid_mr *mr = NULL;
  uint64_t key = 0;
  int ret;
  uint64_t tries = 0;
  do {
    if (!po->prov_key) {
      key = po->next_key;
      po->next_key = key == po->key_max ? 1 : key + 1;
    }
    ret = fi_mr_reg(po->domain, base, size, po->access, 0, key, 0, &mr, NULL);
  } while (ret == -FI_ENOKEY && !po->prov_key && ++tries < po->key_tries);
  if (ret != 0) {
    char taken[64] = "";
    if (ret == -FI_ENOKEY && !po->prov_key)
      snprintf(taken, sizeof taken, ", after %llu keys taken", (unsigned long long)tries);
    prov_ofi_error(prov_ofi_errno(ret), "%s: fi_mr_reg of %zu bytes at %p (key %llu%s%s): %s", po->name, size,
                   (void *)base, (unsigned long long)key, po->prov_key ? ", the provider's" : "", taken,
                   fi_strerror(-ret));
    return ret;
  }
  if (po->prov_key) {
    key = fi_mr_key(mr);
    if (key == FI_KEY_NOTAVAIL) {
      fi_close(&mr->fid);
      prov_ofi_error(ENOTSUP, "%s: fi_mr_key: the provider gives no 64-bit key (raw keys)", po->name);
      return -FI_ENOKEY;
    }
  }
  *r = (prov_ofi_region){.mr = mr, .desc = fi_mr_desc(mr), .key = key, .base = base, .size = size};
  return 0;
}

static int prov_ofi_obtain(void *ctx, size_t size, size_t align, void **base_out, void **handle) {
  pinheap_ofi *po = ctx;
  size_t span = size + align;
  char *raw = span < size
                  ? MAP_FAILED
                  : mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) {
    prov_ofi_error(ENOMEM, "%s: cannot map %zu bytes: %s", po->name, size, strerror(span < size ? ENOMEM : errno));
    pthread_mutex_lock(&po->lock);
    po->stats.failures++;
    pthread_mutex_unlock(&po->lock);
    return ENOMEM;
  }
  /* Keep the aligned middle, give back the ends. */
  char *base = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
  if (base > raw) munmap(raw, (size_t)(base - raw));
  if (raw + span > base + size) munmap(base + size, (size_t)(raw + span - (base + size)));
  pthread_mutex_lock(&po->lock);
  bool prefault = po->prefault;
  pthread_mutex_unlock(&po->lock);
  int err = prefault ? pinheap_prefault(base, size) : 0;

  pthread_mutex_lock(&po->lock);
  prov_ofi_region *r = err ? NULL : prov_ofi_record_take(po);
  int ret = -FI_ENOMEM;
  if (err)
    prov_ofi_error(ENOMEM, "%s: cannot prefault %zu bytes: MADV_POPULATE_WRITE: %s", po->name, size, strerror(err));
  else if (!r)
    prov_ofi_error(ENOMEM, "%s: more than %zu registrations at once", po->name, PROV_OFI_MAX_REGIONS);
  else if ((ret = prov_ofi_register(po, r, base, size)) != 0)
    prov_ofi_record_put(po, r);
  if (ret == 0) {
    po->stats.regions++;
    po->stats.bytes += size;
    po->stats.registered++;
  } else {
    po->stats.failures++;
  }
  pthread_mutex_unlock(&po->lock);
  if (ret != 0) {
    munmap(base, size);
    errno = ENOMEM;
    return ENOMEM; /* the heap's contract: no memory or no registration left */
  }
  *base_out = base;
  *handle = r;
  return 0;
}

/* A region whose fi_close fails stays live and mapped: the NIC may still
 * reach it. pinheap_ofi_destroy tries again. */
static int prov_ofi_release(void *ctx, void *base, size_t size, void *handle) {
  pinheap_ofi *po = ctx;
  pthread_mutex_lock(&po->lock);
  prov_ofi_region *r = prov_ofi_record_of(po, handle);
  int err = 0;
  if (!r || r->base != base || r->size != size) {
    prov_ofi_error(EINVAL, "%s: release of %zu bytes at %p: not a registration of this provider", po->name, size, base);
    err = EINVAL;
  } else {
    int ret = fi_close(&r->mr->fid);
    if (ret != 0) {
      prov_ofi_error(prov_ofi_errno(ret), "%s: fi_close of the registration of %zu bytes at %p: %s", po->name, size,
                     base, fi_strerror(-ret));
      err = prov_ofi_errno(ret);
    } else {
      prov_ofi_record_put(po, r);
      po->stats.regions--;
      po->stats.bytes -= size;
      po->stats.deregistered++;
    }
  }
  if (err) po->stats.failures++;
  pthread_mutex_unlock(&po->lock);
  if (err) return err;
  return munmap(base, size) == 0 ? 0 : errno;
}

/* The live object whose table holds handle, or NULL. */
static const pinheap_ofi *prov_ofi_owner_of(const void *handle) {
  size_t used = __atomic_load_n(&prov_ofi_objects_used, __ATOMIC_ACQUIRE);
  for (size_t i = 0; i < used; i++) {
    const pinheap_ofi *po = __atomic_load_n(&prov_ofi_objects[i], __ATOMIC_ACQUIRE);
    if (po && prov_ofi_record_of(po, handle)) return po;
  }
  return NULL;
}

/* Both shapes of pinheap_ofi_locate: po NULL finds the object through the
 * heap's handle. */
static int prov_ofi_locate(const pinheap_ofi *po, const pinheap *heap, const void *ptr, pinheap_ofi_addr *out) {
  pinheap_region reg;
  if (pinheap_region_of(heap, ptr, &reg) != 0) {
    prov_ofi_error(EINVAL, "pinheap_ofi_locate(%p): not in memory the heap obtained from its provider", ptr);
    return -1;
  }
  if (!po) po = prov_ofi_owner_of(reg.handle);
  const prov_ofi_region *r = po ? prov_ofi_record_of(po, reg.handle) : NULL;
  if (!r || r->base != reg.base) {
    prov_ofi_error(EINVAL, "pinheap_ofi_locate(%p): the heap's memory there is not registered by %s", ptr,
                   po ? po->name : "a libfabric provider of pinheap_ofi");
    return -1;
  }
  *out = (pinheap_ofi_addr){
      .key = r->key,
      .desc = r->desc,
      .addr = po->virt_addr ? (uint64_t)(uintptr_t)ptr : (uint64_t)((const char *)ptr - r->base),
  };
  return 0;
}

PROV_OFI_EXPORT int pinheap_ofi_locate(const pinheap_ofi *po, const pinheap *heap, const void *ptr, pinheap_ofi_addr *out) {
  if (!po || !heap || !out) {
    prov_ofi_error(EINVAL, "pinheap_ofi_locate: provider, heap or output is NULL");
    return -1;
  }
  return prov_ofi_locate(po, heap, ptr, out);
}

PROV_OFI_EXPORT int pinheap_ofi_locate_ptr(const pinheap *heap, const void *ptr, pinheap_ofi_addr *out) {
  if (!heap || !out) {
    prov_ofi_error(EINVAL, "pinheap_ofi_locate: heap or output is NULL");
    return -1;
  }
  return prov_ofi_locate(NULL, heap, ptr, out);
}

/* What pinheap_ofi_sym_create gathers of each process's block: its key,
 * the address a peer's operations give for its first byte, and that
 * process's local descriptor of it (a reader uses the key and address of
 * the target's entry and the descriptor of its own). */
typedef struct prov_ofi_sym_desc {
  uint64_t key;
  uint64_t addr;
  void *desc;
} prov_ofi_sym_desc;

/* Names this library's descriptors in symmetric heaps. */
static const char prov_ofi_sym_id = 0;

static int prov_ofi_sym_describe(void *ctx, pinheap *heap, void *block, size_t size, void *desc) {
  (void)size;
  pinheap_ofi_addr a;
  if (prov_ofi_locate(ctx, heap, block, &a) != 0) return EINVAL;
  prov_ofi_sym_desc d;
  memset(&d, 0, sizeof d); /* every byte travels */
  d.key = a.key;
  d.addr = a.addr;
  d.desc = a.desc;
  memcpy(desc, &d, sizeof d);
  return 0;
}

PROV_OFI_EXPORT pinheap_sym *pinheap_ofi_sym_create(pinheap_ofi *po, pinheap *heap, size_t size,
                                              const pinheap_collective *coll, unsigned flags) {
  if (!po) {
    prov_ofi_error(EINVAL, "pinheap_ofi_sym_create: the provider is NULL");
    return NULL;
  }
  pinheap_sym_layer layer = {
      .id = &prov_ofi_sym_id, .ctx = po, .desc_len = sizeof(prov_ofi_sym_desc), .describe = prov_ofi_sym_describe};
  return pinheap_sym_create_layer(heap, size, coll, flags, &layer);
}

PROV_OFI_EXPORT int pinheap_ofi_remote(const pinheap_sym *sym, const void *ptr, int rank, pinheap_ofi_addr *out) {
  size_t off = pinheap_sym_offset(sym, ptr);
  const prov_ofi_sym_desc *theirs = pinheap_sym_layer_desc(sym, &prov_ofi_sym_id, rank);
  const prov_ofi_sym_desc *mine = pinheap_sym_layer_desc(sym, &prov_ofi_sym_id, pinheap_sym_rank(sym));
  if (!out || off == SIZE_MAX || !theirs || !mine) {
    prov_ofi_error(EINVAL,
                   "pinheap_ofi_remote(%p, rank %d): output NULL, symmetric heap not from pinheap_ofi_sym_create, "
                   "rank out of range, or pointer outside the symmetric heap",
                   ptr, rank);
    return -1;
  }
  prov_ofi_sym_desc t, m;
  memcpy(&t, theirs, sizeof t); /* the table's bytes need not be aligned */
  memcpy(&m, mine, sizeof m);
  *out = (pinheap_ofi_addr){.key = t.key, .desc = m.desc, .addr = t.addr + off};
  return 0;
}

PROV_OFI_EXPORT int pinheap_ofi_get_stats(const pinheap_ofi *po, pinheap_ofi_stats *out) {
  if (!po || !out) {
    prov_ofi_error(EINVAL, "pinheap_ofi_get_stats: provider or output is NULL");
    return -1;
  }
  pinheap_ofi *w = (pinheap_ofi *)po; /* the lock only */
  pthread_mutex_lock(&w->lock);
  *out = po->stats;
  pthread_mutex_unlock(&w->lock);
  return 0;
}

static int prov_ofi_key_order(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

PROV_OFI_EXPORT int pinheap_ofi_check(const pinheap_ofi *po) {
  if (!po) return 1;
  pinheap_ofi *w = (pinheap_ofi *)po; /* the lock only */
  int broken = 0;
#define PROV_OFI_EXPECT(cond, ...)                        \
  do {                                                    \
    if (!(cond)) {                                        \
      fprintf(stderr, "pinheap_ofi_check: " __VA_ARGS__); \
      fputc('\n', stderr);                                \
      broken++;                                           \
    }                                                     \
  } while (0)
  pthread_mutex_lock(&w->lock);
  size_t live = 0, bytes = 0, free_records = 0;
  uint64_t *keys = malloc((po->used ? po->used : 1) * sizeof *keys);
  for (size_t i = 0; i < po->used; i++) {
    const prov_ofi_region *r = &po->records[i];
    if (!r->mr) continue;
    PROV_OFI_EXPECT(r->size > 0 && (uintptr_t)r->base % po->page == 0,
                    "record %zu: a registration of %zu bytes at %p should be page-aligned and non-empty", i, r->size,
                    (void *)r->base);
    PROV_OFI_EXPECT(r->desc == fi_mr_desc(r->mr), "record %zu: its descriptor should be fi_mr_desc of its region", i);
    if (keys) keys[live] = r->key;
    live++;
    bytes += r->size;
  }
  for (const prov_ofi_region *r = po->free_list; r && free_records <= po->used; r = r->next_free, free_records++)
    PROV_OFI_EXPECT(r >= po->records && r < po->records + po->used && !r->mr,
                    "the free list should hold only records handed out and not live (%p)", (const void *)r);
  PROV_OFI_EXPECT(live + free_records == po->used, "%zu live and %zu free records should make the %zu handed out", live,
                  free_records, po->used);
  PROV_OFI_EXPECT(live == po->stats.regions, "%zu live records, the stats say %zu", live, po->stats.regions);
  PROV_OFI_EXPECT(bytes == po->stats.bytes, "live records cover %zu bytes, the stats say %zu", bytes, po->stats.bytes);
  PROV_OFI_EXPECT(po->stats.registered - po->stats.deregistered == po->stats.regions,
                  "%zu registered less %zu deregistered should be the %zu live", po->stats.registered,
                  po->stats.deregistered, po->stats.regions);
  PROV_OFI_EXPECT(po->prov_key || (po->next_key >= 1 && po->next_key <= po->key_max),
                  "the next requested key %llu should be within 1..%llu", (unsigned long long)po->next_key,
                  (unsigned long long)po->key_max);
  PROV_OFI_EXPECT(po->prov_key || (po->key_tries >= 1 && po->key_tries <= po->key_max),
                  "the keys tried for one registration (%llu) should be within 1..%llu",
                  (unsigned long long)po->key_tries, (unsigned long long)po->key_max);
  PROV_OFI_EXPECT(keys, "no memory to check that keys are distinct");
  PROV_OFI_EXPECT(po->slot >= 0 && po->slot < PROV_OFI_MAX_OBJECTS &&
                      __atomic_load_n(&prov_ofi_objects[po->slot], __ATOMIC_ACQUIRE) == po,
                  "the object should be in its slot %d of the process's objects", po->slot);
  if (keys) {
    qsort(keys, live, sizeof *keys, prov_ofi_key_order);
    for (size_t i = 1; i < live; i++)
      PROV_OFI_EXPECT(keys[i] != keys[i - 1], "two live registrations share key %llu", (unsigned long long)keys[i]);
    free(keys);
  }
  pthread_mutex_unlock(&w->lock);
#undef PROV_OFI_EXPECT
  return broken;
}

PROV_OFI_EXPORT int pinheap_ofi_destroy(pinheap_ofi *po) {
  if (!po) return 0;
  pthread_mutex_lock(&po->lock);
  size_t regions = po->stats.regions, bytes = po->stats.bytes;
  pthread_mutex_unlock(&po->lock);
  if (regions) {
    prov_ofi_error(EBUSY,
                   "pinheap_ofi_destroy: %zu registration(s) of %zu bytes still live: destroy the heaps first; the "
                   "provider is left as it was",
                   regions, bytes);
    return -1;
  }
  prov_ofi_slot_put(po->slot);
  if (po->own_domain) {
    int ret = fi_close(&po->domain->fid);
    if (ret)
      fprintf(stderr,
              "pinheap_ofi_destroy: fi_close of the domain: %s (close its endpoints, address vectors and "
              "completion queues first)\n",
              fi_strerror(-ret));
    ret = fi_close(&po->fabric->fid);
    if (ret) fprintf(stderr, "pinheap_ofi_destroy: fi_close of the fabric: %s\n", fi_strerror(-ret));
  }
  fi_freeinfo(po->info);
  munmap(po->records, PROV_OFI_MAX_REGIONS * sizeof(prov_ofi_region));
  pthread_mutex_destroy(&po->lock);
  free(po);
  return 0;
}

PROV_OFI_EXPORT const char *pinheap_ofi_last_error(void) { return prov_ofi_error_text; }
