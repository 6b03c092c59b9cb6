/*
 * draw: columns a replay sampled (replay.h) drawn as a heap picture by the
 * tool's SVG writer (tools/picture.h), for peers that cannot describe their
 * own memory. Only the runner that links pinheap has it.
 */
#ifndef PINHEAP_BENCH_DRAW_H
#define PINHEAP_BENCH_DRAW_H

/* compare draw COLUMNS SVG [--title T] [--subtitle S] */
int draw_main(int argc, char **argv);

#endif
