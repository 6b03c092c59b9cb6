/* Context of the README's first C snippet ("Use from C"): a program that
 * allocates n doubles in a FIXED heap. */
#include <stdio.h>
#include <stdlib.h>
#pragma readme top

int main(void) {
  size_t n = 1000;
#pragma readme body
  return 0;
}
