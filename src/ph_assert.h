/*
 * ph_assert: the library's assertions, in two levels (as mimalloc's
 * mi_assert_internal and mi_assert_expensive):
 *
 *   PH_ASSERT(e)            cheap: the preconditions the headers state in
 *                           prose, and what callees promise (a provider's
 *                           alignment, ...); O(1), or O(what the call
 *                           touches anyway).
 *   PH_ASSERT_EXPENSIVE(e)  a module's checker after each of its changes
 *                           (e: "checker() == 0"); O(the structure).
 *
 * PINHEAP_ASSERT_LEVEL (0 off, 1 cheap, 2 cheap and expensive; CMake's
 * PINHEAP_ASSERT option sets it: off in Release and RelWithDebInfo, cheap in
 * Debug) selects them; an assertion below the level is not compiled, its
 * expression not evaluated (it must have no effect).
 *
 * A failed assertion goes through PH_ASSERT_FAIL(text, file, line), by
 * default the library's fatal path: the message on stderr, written without
 * malloc (error.h), then abort. Defined before this header is included (a
 * compiler flag), it replaces that path, as o1heap's O1HEAP_ASSERT can be.
 */
#ifndef PINHEAP_PH_ASSERT_H
#define PINHEAP_PH_ASSERT_H

#include "error.h"

#ifndef PINHEAP_ASSERT_LEVEL
#define PINHEAP_ASSERT_LEVEL 0
#endif

#ifndef PH_ASSERT_FAIL
#define PH_ASSERT_FAIL(text, file, line) error_fatal("%s:%d: assertion failed: %s", file, line, text)
#endif

#define PH_ASSERT_CHECK(e) ((e) ? (void)0 : PH_ASSERT_FAIL(#e, __FILE__, __LINE__))
/* Keeps the expression's names used, without evaluating it. */
#define PH_ASSERT_SKIP(e) ((void)sizeof(!(e)))

#if PINHEAP_ASSERT_LEVEL >= 1
#define PH_ASSERT(e) PH_ASSERT_CHECK(e)
#else
#define PH_ASSERT(e) PH_ASSERT_SKIP(e)
#endif

#if PINHEAP_ASSERT_LEVEL >= 2
#define PH_ASSERT_EXPENSIVE(e) PH_ASSERT_CHECK(e)
#else
#define PH_ASSERT_EXPENSIVE(e) PH_ASSERT_SKIP(e)
#endif

#endif
