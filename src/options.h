/*
 * options: pinheap_options' defaults and the checks pinheap_create makes of
 * them before it takes anything (pinheap_options_init and
 * pinheap_options_check are these, on the public face).
 *
 * Thread-safe: no state.
 */
#ifndef PINHEAP_OPTIONS_H
#define PINHEAP_OPTIONS_H

#include "pinheap.h"

/* Every field of *opts to its default (pinheap.h). opts not NULL. */
void options_init(pinheap_options *opts);
/* 0 when *opts (NULL allowed) passes every check, or -1 with errno EINVAL
 * and a text naming the first that fails. */
int options_check(const pinheap_options *opts);

#endif
