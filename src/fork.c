#include "fork.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "heap.h"

static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;
static pinheap *fork_heaps; /* newest first, linked by fork_next */
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static int fork_registered; /* pthread_atfork's result: 0, or an errno value */

static void fork_prepare(void) {
  pthread_mutex_lock(&fork_lock);
  for (pinheap *h = fork_heaps; h; h = h->fork_next) heap_fork_prepare(h);
}

static void fork_parent(void) {
  for (pinheap *h = fork_heaps; h; h = h->fork_next) heap_fork_parent(h);
  pthread_mutex_unlock(&fork_lock);
}

static void fork_child(void) {
  for (pinheap *h = fork_heaps; h; h = h->fork_next) heap_fork_child(h);
  pthread_mutex_unlock(&fork_lock);
}

static void fork_register(void) { fork_registered = pthread_atfork(fork_prepare, fork_parent, fork_child); }

int fork_add(pinheap *h) {
  pthread_once(&fork_once, fork_register);
  if (fork_registered) {
    error_set(ENOMEM, "pinheap_create: cannot register the fork handlers: %s", strerror(fork_registered));
    return -1;
  }
  pthread_mutex_lock(&fork_lock);
  h->fork_next = fork_heaps;
  fork_heaps = h;
  pthread_mutex_unlock(&fork_lock);
  return 0;
}

void fork_remove(pinheap *h) {
  pthread_mutex_lock(&fork_lock);
  for (pinheap **at = &fork_heaps; *at; at = &(*at)->fork_next) {
    if (*at != h) continue;
    *at = h->fork_next;
    break;
  }
  pthread_mutex_unlock(&fork_lock);
}

int fork_check(pinheap *h) {
  int broken = 0;
  size_t found = 0;
  pthread_mutex_lock(&fork_lock);
  for (pinheap *l = fork_heaps; l; l = l->fork_next) {
    found += l == h;
    broken += gate_check(&l->gate);
  }
  pthread_mutex_unlock(&fork_lock);
  if (found != 1) {
    fprintf(stderr, "fork: the heap should be on the list of live heaps once, is on it %zu times\n", found);
    broken++;
  }
  return broken;
}
