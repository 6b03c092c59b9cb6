/*
 * phase: pinheap_phase, which marks a phase of the program in a trace being
 * recorded. The recording library (record/) defines the function the
 * program then calls; this one, outside a recording, does nothing.
 */
#include "pinheap.h"
#include "util.h"

PH_EXPORT void pinheap_phase(const char *name) { (void)name; }
