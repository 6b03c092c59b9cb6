#include "ops.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

uint64_t ops_bytes(const ops_rec *r) {
  switch (r->kind) {
  case OPS_MALLOC:
  case OPS_REALLOC:
  case OPS_ALIGNED: return r->size;
  case OPS_CALLOC: return r->size * r->arg;
  default: return 0;
  }
}

int ops_load(ops *o, const char *path, char *err, size_t errlen) {
  memset(o, 0, sizeof *o);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %m", path);
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(ops_header)) {
    snprintf(err, errlen, "%s: not an ops file (too short)", path);
    close(fd);
    return -1;
  }
  o->map_len = (size_t)st.st_size;
  o->map = mmap(NULL, o->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (o->map == MAP_FAILED) {
    snprintf(err, errlen, "%s: mmap: %m", path);
    o->map = NULL;
    return -1;
  }
  memcpy(&o->h, o->map, sizeof o->h);
  o->rec = (const ops_rec *)((const char *)o->map + sizeof(ops_header));
  if (memcmp(o->h.magic, OPS_MAGIC, sizeof o->h.magic) != 0) {
    snprintf(err, errlen, "%s: not an ops file (magic)", path);
  } else if (o->h.n > (o->map_len - sizeof(ops_header)) / sizeof(ops_rec) ||
             o->h.n != (o->map_len - sizeof(ops_header)) / sizeof(ops_rec)) {
    snprintf(err, errlen, "%s: %llu records announced, the file holds %zu", path, (unsigned long long)o->h.n,
             (o->map_len - sizeof(ops_header)) / sizeof(ops_rec));
  } else {
    for (uint64_t i = 0; i < o->h.n; i++)
      if (o->rec[i].kind < OPS_MALLOC || o->rec[i].kind > OPS_MEASURE || o->rec[i].slot >= o->h.slots) {
        snprintf(err, errlen, "%s: record %llu: kind %u, slot %u of %llu", path, (unsigned long long)i,
                 o->rec[i].kind, o->rec[i].slot, (unsigned long long)o->h.slots);
        ops_unload(o);
        return -1;
      }
    return 0;
  }
  ops_unload(o);
  return -1;
}

void ops_unload(ops *o) {
  if (o->map) munmap(o->map, o->map_len);
  memset(o, 0, sizeof *o);
}

int ops_check(const ops *o) {
  int bad = 0;
  size_t len = (size_t)o->h.slots * sizeof(uint64_t);
  /* The bytes of each slot's live block, plus one: 0 is an empty slot. */
  uint64_t *live = len ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : NULL;
  if (live == MAP_FAILED) {
    fprintf(stderr, "ops_check: no memory for %llu slots\n", (unsigned long long)o->h.slots);
    return 1;
  }
  uint64_t bytes = 0, peak = 0, events = 0, measure = o->h.n;
  for (uint64_t i = 0; i < o->h.n && bad < 10; i++) {
    const ops_rec *r = &o->rec[i];
    if (r->kind < OPS_MALLOC || r->kind > OPS_MEASURE || r->slot >= o->h.slots) {
      fprintf(stderr, "ops_check: record %llu: kind %u, slot %u\n", (unsigned long long)i, r->kind, r->slot);
      bad++;
      continue;
    }
    if (r->kind == OPS_MEASURE) {
      if (measure != o->h.n) fprintf(stderr, "ops_check: a second measure record at %llu\n", (unsigned long long)i), bad++;
      measure = i;
      continue;
    }
    events++;
    bool allocates = r->kind == OPS_MALLOC || r->kind == OPS_CALLOC || r->kind == OPS_ALIGNED;
    if (allocates != (live[r->slot] == 0)) {
      fprintf(stderr, "ops_check: record %llu (kind %u) on slot %u, which is %s\n", (unsigned long long)i, r->kind,
              r->slot, live[r->slot] ? "live" : "empty");
      bad++;
      continue;
    }
    uint64_t before = allocates ? 0 : live[r->slot] - 1;
    uint64_t stated = r->kind == OPS_REALLOC ? r->arg : r->kind == OPS_FREE ? r->size : 0;
    if (!allocates && stated != before) {
      fprintf(stderr, "ops_check: record %llu says slot %u held %llu bytes; it held %llu\n", (unsigned long long)i,
              r->slot, (unsigned long long)stated, (unsigned long long)before);
      bad++;
    }
    uint64_t after = ops_bytes(r);
    live[r->slot] = r->kind == OPS_FREE ? 0 : after + 1;
    bytes = bytes - before + after;
    if (bytes > peak) peak = bytes;
  }
  if (!bad && peak != o->h.peak_live)
    fprintf(stderr, "ops_check: peak live %llu, the header says %llu\n", (unsigned long long)peak,
            (unsigned long long)o->h.peak_live), bad++;
  if (!bad && events != o->h.events)
    fprintf(stderr, "ops_check: %llu events, the header says %llu\n", (unsigned long long)events,
            (unsigned long long)o->h.events), bad++;
  if (!bad && measure != o->h.measure)
    fprintf(stderr, "ops_check: measure at %llu, the header says %llu\n", (unsigned long long)measure,
            (unsigned long long)o->h.measure), bad++;
  if (live) munmap(live, len);
  return bad;
}
