#include "prepare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockmap.h"
#include "ops.h"
#include "trace_reader.h"

/* Free slots, reused last in first out so that the slot table stays small.
 * Invariants: n <= cap; free[0..n) are distinct slots below next, each
 * released and not yet reused; next is the count of slots ever used. */
typedef struct prepare_slots {
  uint32_t *free;
  size_t n, cap;
  uint32_t next;
} prepare_slots;

static int prepare_slot(prepare_slots *s, uint32_t *slot) {
  if (s->n) {
    *slot = s->free[--s->n];
    return 0;
  }
  if (s->next == UINT32_MAX) return -1;
  *slot = s->next++;
  return 0;
}

static int prepare_release(prepare_slots *s, uint32_t slot) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 1024;
    uint32_t *f = realloc(s->free, cap * sizeof *f);
    if (!f) return -1;
    s->free = f;
    s->cap = cap;
  }
  s->free[s->n++] = slot;
  return 0;
}

int prepare_ops(const char *in, const char *out, char *err, size_t errlen) {
  err[0] = '\0';
  FILE *f = fopen(in, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: %m", in);
    return -1;
  }
  FILE *o = fopen(out, "wb");
  if (!o) {
    snprintf(err, errlen, "%s: %m", out);
    fclose(f);
    return -1;
  }
  trace_reader r;
  blockmap slot_of; /* block id -> slot */
  blockmap_init(&slot_of);
  prepare_slots slots = {0};
  ops_header h = {.magic = OPS_MAGIC};
  int rc = -1;
  bool measured = false;
  if (trace_reader_open(&r, f, in) != 0 || fwrite(&h, sizeof h, 1, o) != 1) goto done;
  trace_event ev;
  int got;
  uint64_t live = 0;
  while ((got = trace_reader_next(&r, &ev)) == 1) {
    ops_rec rec = {0};
    if (ev.kind == TRACE_PHASE && strcmp(ev.text, "measure") == 0 && !measured) {
      measured = true;
      h.measure = h.n;
      rec.kind = OPS_MEASURE;
    } else if (trace_kind_has_block(ev.kind)) {
      uint64_t s, unused;
      if (trace_kind_allocates(ev.kind)) {
        uint32_t slot;
        if (prepare_slot(&slots, &slot) != 0 || blockmap_put(&slot_of, ev.id, slot, 0) != 0) goto nomem;
        s = slot;
      } else if (!blockmap_get(&slot_of, ev.id, &s, &unused)) {
        snprintf(err, errlen, "%s: block %llu not live (the reader let it through)", in, (unsigned long long)ev.id);
        goto done;
      }
      rec.slot = (uint32_t)s;
      rec.kind = ev.kind == TRACE_MALLOC ? OPS_MALLOC : ev.kind == TRACE_CALLOC ? OPS_CALLOC
               : ev.kind == TRACE_REALLOC ? OPS_REALLOC : ev.kind == TRACE_ALIGNED ? OPS_ALIGNED : OPS_FREE;
      rec.size = ev.kind == TRACE_FREE ? ev.old_size : ev.size;
      rec.arg = ev.kind == TRACE_CALLOC ? ev.count : ev.kind == TRACE_ALIGNED ? ev.align
              : ev.kind == TRACE_REALLOC ? ev.old_size : 0;
      if (ev.kind == TRACE_FREE) {
        blockmap_take(&slot_of, ev.id, NULL, NULL);
        if (prepare_release(&slots, rec.slot) != 0) goto nomem;
      }
      live = live - (ev.kind == TRACE_FREE || ev.kind == TRACE_REALLOC ? ev.old_size : 0) + ops_bytes(&rec);
      if (live > h.peak_live) h.peak_live = live;
      h.events++;
    } else {
      continue;
    }
    if (fwrite(&rec, sizeof rec, 1, o) != 1) goto done;
    h.n++;
  }
  if (got < 0) {
    snprintf(err, errlen, "%s", r.error);
    goto done;
  }
  if (!measured) h.measure = h.n;
  h.slots = slots.next;
  if (fseek(o, 0, SEEK_SET) != 0 || fwrite(&h, sizeof h, 1, o) != 1) goto done;
  rc = 0;
  goto done;
nomem:
  snprintf(err, errlen, "%s: out of memory for the slot table", in);
done:
  if (rc != 0 && !err[0]) snprintf(err, errlen, "%s: %m", out);
  if (fclose(o) != 0 && rc == 0) {
    snprintf(err, errlen, "%s: %m", out);
    rc = -1;
  }
  trace_reader_close(&r);
  fclose(f);
  blockmap_fini(&slot_of);
  free(slots.free);
  return rc;
}
