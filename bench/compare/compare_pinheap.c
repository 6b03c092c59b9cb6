/* The runner of the peers that share jemalloc as the process's malloc:
 * pinheap (each policy, SIMPLE), jemalloc's default malloc and the
 * emulations of bump-pointer hooks; and the commands that need pinheap's
 * tools (prepare, draw). */
#include <stdio.h>

#include "compare.h"
#include "draw.h"
#include "ops.h"
#include "prepare.h"

static int prepare_cmd(int argc, char **argv) {
  char err[512];
  if (argc != 4) {
    fprintf(stderr, "compare prepare: usage: prepare TRACE OPS\n");
    return 2;
  }
  if (prepare_ops(argv[2], argv[3], err, sizeof err) != 0) {
    fprintf(stderr, "compare prepare: %s\n", err);
    return 1;
  }
  ops o;
  if (ops_load(&o, argv[3], err, sizeof err) != 0) {
    fprintf(stderr, "compare prepare: %s\n", err);
    return 1;
  }
  int bad = ops_check(&o);
  ops_unload(&o);
  return bad ? 1 : 0;
}

int main(int argc, char **argv) {
  static const peer_family families[] = {peer_pinheap, peer_jemalloc, peer_jebump};
  static const compare_command extra[] = {{"prepare", prepare_cmd}, {"draw", draw_main}};
  return compare_main(argc, argv, families, 3, extra, 2);
}
