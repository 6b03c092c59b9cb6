/* The runner of the glibc peer, in a process of its own. */
#include "compare.h"

int main(int argc, char **argv) {
  static const peer_family families[] = {peer_glibc};
  return compare_main(argc, argv, families, 1, NULL, 0);
}
