/* The runner of the oshmem peers, in a process of their own. */
#include "compare.h"

int main(int argc, char **argv) {
  static const peer_family families[] = {peer_oshmem};
  return compare_main(argc, argv, families, 1, NULL, 0);
}
