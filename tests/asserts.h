/*
 * asserts: cmocka assertions the tests share. Include after <cmocka.h>.
 */
#ifndef PINHEAP_TEST_ASSERTS_H
#define PINHEAP_TEST_ASSERTS_H

#include <string.h>

/* hay (a message, a child's stderr) contains needle. */
#define assert_contains(hay, needle)                                           \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (!h_ || !strstr(h_, n_)) {                                              \
      print_error("\"%s\" does not contain \"%s\"\n", h_ ? h_ : "(null)", n_); \
      fail();                                                                  \
    }                                                                          \
  } while (0)

#endif
