/*
 * canary: the bytes the debugging aids write into a block and check, with
 * no knowledge of any heap: a block is an address and a number of usable
 * bytes U.
 *
 *   [0, n)         the caller's
 *   [n, U - 8)     canary bytes (CANARY_BYTE), at least 8 } with canaries
 *   [U - 8, U)     the record: n ^ key(p) while live,    }
 *                  CANARY_FREED ^ key(p) once freed       } (the freed record
 *                                                         }  with poison alone)
 *
 * A freed block is filled with PINHEAP_POISON_BYTE, but for its record; a
 * quarantined block (a direct block, debug.h) is poison throughout. The key
 * mixes the block's address in, so that a block's bytes copied elsewhere, or
 * a stray pattern, do not pass for a record.
 *
 * Under valgrind the checks make the bytes they read defined (track.h), and
 * leave them as the comments below say.
 *
 * Thread-safe: no state.
 */
#ifndef PINHEAP_CANARY_H
#define PINHEAP_CANARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CANARY_BYTE 0xCAu
/* The record's bytes, at the end of the block. */
#define CANARY_TRAILER 8u
/* What a canary adds to a request: 8 canary bytes at least, then the record. */
#define CANARY_EXTRA 16u
#define CANARY_FREED 0x46524545442d2d21ull

/* The key of the block at p. */
uint64_t canary_key(const void *p);
/* The record of the block p of usable bytes (usable >= CANARY_TRAILER). */
uint64_t canary_record(const void *p, size_t usable);
void canary_set_record(void *p, size_t usable, uint64_t v);
/* Whether the block p of usable bytes holds the freed record. */
bool canary_freed(const void *p, size_t usable);

/* The first byte of [from, to) of p that is not b, or to. */
size_t canary_mismatch(const void *p, size_t from, size_t to, unsigned char b);

/* Whether the live block p of usable bytes has its canary whole: then *n is
 * the size asked for; else why (len bytes) says what was found. The record
 * and the canary are left defined. */
bool canary_whole(const void *p, size_t usable, size_t *n, char *why, size_t len);
/* Gives the block p of usable bytes a live block's canary and record for n
 * bytes (n <= usable - CANARY_EXTRA). */
void canary_write(void *p, size_t usable, size_t n);

/* Whether the freed block p of usable bytes is still poisoned, its freed
 * record included; else why says what was found. Reads it as it is (the
 * caller makes it defined). */
bool canary_poisoned(const void *p, size_t usable, char *why, size_t len);
/* Whether the quarantined block p of size bytes is poison throughout; else
 * why says what was found. Leaves it no-access. */
bool canary_quarantined(const void *p, size_t size, char *why, size_t len);

/* A freed block of usable bytes that a cache hands out again (reused:
 * left defined) or lets go of after holding it back (left no-access):
 * when poison is set, aborts, naming what, unless it is still poisoned. */
void canary_check_reused(void *p, size_t usable, bool poison, const char *what);
void canary_check_released(void *p, size_t usable, bool poison, const char *what);

#endif
