/*
 * Subcommands of the pinheap tool. Each lives in its own file under tools/
 * and is dispatched by tools/main.c.
 */
#ifndef PINHEAP_TOOLS_COMMANDS_H
#define PINHEAP_TOOLS_COMMANDS_H

#include <stdio.h>

/* `pinheap demo [--quick] [--seed N]`: compares the extent policies of a
 * FIXED heap on a few scenarios and prints a table. argv[0] is "demo".
 * Returns the process exit status: 0 when the default policy completed every
 * scenario, 1 when it did not, 2 on a usage error. */
int demo_main(int argc, char **argv);

/* Writes the usage text of `pinheap demo` to out. */
void demo_usage(FILE *out);

#endif /* PINHEAP_TOOLS_COMMANDS_H */
