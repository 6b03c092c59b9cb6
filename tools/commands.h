/*
 * Subcommands of the pinheap tool. Each lives in its own file under tools/
 * and is dispatched by tools/main.c. Each NAME_main takes its argv (argv[0]
 * is the subcommand's name) and returns the process exit status (2 on a
 * usage error); NAME_usage writes its usage text to out.
 */
#ifndef PINHEAP_TOOLS_COMMANDS_H
#define PINHEAP_TOOLS_COMMANDS_H

#include <stdio.h>

/* `pinheap demo [--quick] [--seed N] [--svg DIR]`: compares the extent
 * policies of a FIXED heap on a few scenarios and prints a table. 0 when the
 * default policy completed every scenario, 1 when it did not. */
int demo_main(int argc, char **argv);
void demo_usage(FILE *out);

/* `pinheap record [-o FILE] [--children] [--no-heap] -- CMD ARGS`: runs a
 * program under the recording library. CMD's exit status. */
int record_main(int argc, char **argv);
void record_usage(FILE *out);

/* `pinheap replay TRACE [options]`: replays a trace through the library. 0
 * when every request succeeded, 1 when one failed. */
int replay_main(int argc, char **argv);
void replay_usage(FILE *out);

/* `pinheap size TRACE [options]`: the smallest FIXED heap per policy. 0 when
 * one was found for every policy, 1 when not. */
int size_main(int argc, char **argv);
void size_usage(FILE *out);

/* `pinheap offline TRACE...`: the heap a placement that knows every
 * lifetime needs. 0, 1 when a trace holds no allocation. */
int offline_main(int argc, char **argv);
void offline_usage(FILE *out);

/* `pinheap gen KIND [options]`: a synthetic workload as a trace. */
int gen_main(int argc, char **argv);
void gen_usage(FILE *out);

/* `pinheap convert [--text | --binary] IN OUT`: binary to text and back. */
int convert_main(int argc, char **argv);
void convert_usage(FILE *out);

/* `pinheap info TRACE`: what a trace holds. */
int info_main(int argc, char **argv);
void info_usage(FILE *out);

#endif /* PINHEAP_TOOLS_COMMANDS_H */
