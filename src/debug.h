/*
 * debug: the heap with its debugging aids (pinheap_options.debug), and the
 * annotations that let valgrind's memcheck see the heap's blocks.
 *
 * When an aid is on, or the heap was created under valgrind, every public
 * call goes through here, around the plain paths of heap.c. A block of U
 * usable bytes (its size class, or its page-rounded extent) asked for n
 * bytes is laid out as
 *
 *   [0, n)         the caller's
 *   [n, U - 8)     canary bytes, at least 8          } PINHEAP_DEBUG_CANARY
 *   [U - 8, U)     n ^ key(p) while live,            } (without it n = U,
 *                  DEBUG_FREED ^ key(p) once freed   }  nothing follows
 *                                                    }  a live block; the
 *                                                    }  freed record with
 *                                                    }  poison alone)
 *
 * and a freed block is filled with PINHEAP_POISON_BYTE, but for that last
 * word (PINHEAP_DEBUG_POISON). With any aid, a freed small object waits in
 * its thread's FIFO of held-back objects (thread.h) before it can be
 * handed out again, so that a second free made meanwhile finds its record
 * saying freed; it is checked to be still poisoned when it leaves. A freed block that a thread's cache hands out
 * again is checked to be still poisoned; blocks that come back through
 * jemalloc or the extent manager are not (nothing tells a fresh block from a
 * freed one there).
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
 * Under valgrind (DEBUG_VALGRIND) the heap is a memcheck memory pool whose
 * chunks are the live blocks' [0, n): every other byte of the heap's blocks
 * is no-access, so memcheck reports a read or write of a freed block, or
 * past a block's end, where it happens.
 *
 * Invariant (DEBUG_VALGRIND): a block is a chunk of the pool iff it is live.
 *
 * Thread-safe as the heap is.
 */
#ifndef PINHEAP_DEBUG_H
#define PINHEAP_DEBUG_H

#include <stdbool.h>
#include <stddef.h>

#include "pinheap.h"

#ifdef PINHEAP_HAVE_VALGRIND
#include <valgrind/memcheck.h>
#endif

/* Set, besides opts.debug, when the heap is created under valgrind. */
#define DEBUG_VALGRIND (1u << 16)

/* The flags a heap runs with: asked, and DEBUG_VALGRIND under valgrind. */
unsigned debug_flags(unsigned asked);
/* Start and end of a heap's life (the memcheck pool, the quarantine: debug_open
 * turns it on, debug_close reports its written blocks). */
void debug_open(pinheap *h);
void debug_close(pinheap *h);

/* The public calls on a heap with debug flags. */
void *debug_alloc(pinheap *h, size_t size, size_t align, bool zero, const char *what);
void debug_free(pinheap *h, void *p);
void *debug_realloc(pinheap *h, void *p, size_t size);
size_t debug_usable_size(pinheap *h, const void *p);

/* A freed block of usable bytes that a thread's cache hands out again:
 * checked to be still poisoned (aborts, naming what, when it is not). */
void debug_block_reused(pinheap *h, void *p, size_t usable, const char *what);

/* A freed block of usable bytes leaving a thread's hold-back FIFO
 * (thread.h), still freed: checked to be still poisoned (aborts, naming
 * what, when it is not). */
void debug_block_released(pinheap *h, void *p, size_t usable, const char *what);

/* pinheap_destroy's list of the blocks still live, on stderr. */
void debug_report_live(pinheap *h);

/* Number of broken canaries of live large and direct blocks and of
 * quarantined blocks no longer poisoned (inside the heap's gate: it walks
 * the page map and the direct blocks), and of freed blocks in the thread
 * caches no longer poisoned (outside it: it takes the thread registry's
 * lock); each described on stderr. */
int debug_check_blocks(pinheap *h);
int debug_check_cached(pinheap *h);

/* [p, p + size) is about to be handed to jemalloc, and may have been a
 * freed block: accessible for memcheck. Nothing without valgrind. */
static inline void debug_mark_undefined(void *p, size_t size) {
#ifdef PINHEAP_HAVE_VALGRIND
  VALGRIND_MAKE_MEM_UNDEFINED(p, size);
#else
  (void)p, (void)size;
#endif
}

/* [p, p + size) is fresh from the provider, which may have lent it before
 * (and the heap marked it no-access then): what it holds now is the
 * provider's, defined. Nothing without valgrind. */
static inline void debug_mark_defined(void *p, size_t size) {
#ifdef PINHEAP_HAVE_VALGRIND
  VALGRIND_MAKE_MEM_DEFINED(p, size);
#else
  (void)p, (void)size;
#endif
}

#endif
