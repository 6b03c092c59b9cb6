/*
 * debug: the heap with its debugging aids (pinheap_options.debug), and
 * what lets valgrind's memcheck see the heap's blocks: a layer over the
 * heap's core (heap.h), which turns the core's small-object keys off
 * (heap_set_plain) and keeps records of its own in the blocks (canary.h).
 *
 * When an aid is on, or the heap was created under valgrind, every public
 * call goes through here, around the plain paths of heap.h. A block of U
 * usable bytes (its size class, or its page-rounded extent) asked for n
 * bytes has a canary after the caller's n bytes and the record at its end
 * (PINHEAP_DEBUG_CANARY; without it n = U and nothing follows a live block,
 * the freed record with poison alone), and a freed block is filled with
 * PINHEAP_POISON_BYTE, but for the record (PINHEAP_DEBUG_POISON): canary.h
 * draws the layout. With any aid, a freed small object waits in its
 * thread's FIFO of held-back objects (thread.h) before it can be handed out
 * again, so that a second free made meanwhile finds its record saying
 * freed; it is checked to be still poisoned when it leaves. A freed block
 * that a thread's cache hands out again is checked to be still poisoned;
 * blocks that come back through jemalloc or the extent manager are not
 * (nothing tells a fresh block from a freed one there).
 *
 * Canaries, not guard pages: mprotect of registered memory changes mappings
 * that a NIC's registration pinned (a remote access to a protected page
 * fails, or the registration must be redone), and a guard page costs a page
 * per block; a canary costs 16 bytes and catches a write past the end
 * anywhere in the slack, checked at free, at realloc and by pinheap_check.
 *
 * With PINHEAP_DEBUG_QUARANTINE a freed direct block (DYNAMIC, SIMPLE) is
 * filled with the poison, all of its used bytes, and enters the quarantine
 * (dynamic.h) instead of going back to its provider; the quarantine checks
 * it through debug's leave function as it leaves (a broken poison aborts,
 * naming the block), pinheap_check through debug_check_blocks, and
 * pinheap_destroy through debug_close (reported, not fatal).
 *
 * Under valgrind (DEBUG_VALGRIND) the heap is a memcheck memory pool
 * (track.h) whose chunks are the live blocks' [0, n): every other byte of
 * the heap's blocks is no-access, so memcheck reports a read or write of a
 * freed block, or past a block's end, where it happens.
 *
 * Invariant (DEBUG_VALGRIND): a block is a chunk of the pool iff it is live.
 *
 * Thread-safe as the heap is.
 */
#ifndef PINHEAP_DEBUG_H
#define PINHEAP_DEBUG_H

#include <stdbool.h>
#include <stddef.h>

#include "heap.h"

/* Set, besides opts.debug, when the heap is created under valgrind. */
#define DEBUG_VALGRIND (1u << 16)

typedef struct debug {
  heap *core;
  unsigned flags; /* opts.debug, and DEBUG_VALGRIND */
} debug;

/* The flags a heap runs with: asked, and DEBUG_VALGRIND under valgrind. */
unsigned debug_flags(unsigned asked);
/* Start and end of a heap's life, flags not 0: debug_open turns the core's
 * keys off and holds freed objects back (heap_set_plain), makes the
 * memcheck pool and turns the quarantine on, before the heap is used;
 * debug_close reports the quarantined blocks written after their free. */
void debug_open(debug *d, heap *core, unsigned flags);
void debug_close(debug *d);

/* The public calls on a heap with debug flags. */
void *debug_alloc(debug *d, size_t size, size_t align, bool zero, const char *what);
void debug_free(debug *d, void *p);
void *debug_realloc(debug *d, void *p, size_t size);
size_t debug_usable_size(debug *d, const void *p);

/* pinheap_destroy's list of the blocks still live, on stderr (any aid). */
void debug_report_live(debug *d);

/* Number of broken canaries of live large and direct blocks and of
 * quarantined blocks no longer poisoned (in a section of its own, fork.h:
 * it walks the page map and the direct blocks), and of freed blocks in the
 * thread caches no longer poisoned (outside any: it takes the thread
 * registry's lock); each described on stderr. */
int debug_check_blocks(debug *d);
int debug_check_cached(debug *d);

#endif
