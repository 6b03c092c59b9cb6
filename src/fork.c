#include "fork.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;
static fork_link *fork_heaps; /* newest first */
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static int fork_registered; /* pthread_atfork's result: 0, or an errno value */

static void fork_prepare(void) {
  pthread_mutex_lock(&fork_lock);
  for (fork_link *l = fork_heaps; l; l = l->next) heap_prefork(l->core);
}

static void fork_parent(void) {
  for (fork_link *l = fork_heaps; l; l = l->next) heap_postfork_parent(l->core);
  pthread_mutex_unlock(&fork_lock);
}

static void fork_child(void) {
  for (fork_link *l = fork_heaps; l; l = l->next) heap_postfork_child(l->core);
  pthread_mutex_unlock(&fork_lock);
}

static void fork_register(void) { fork_registered = pthread_atfork(fork_prepare, fork_parent, fork_child); }

int fork_add(fork_link *link, heap *core) {
  pthread_once(&fork_once, fork_register);
  if (fork_registered) {
    error_set(ENOMEM, "pinheap_create: cannot register the fork handlers: %s", strerror(fork_registered));
    return -1;
  }
  link->core = core;
  pthread_mutex_lock(&fork_lock);
  link->next = fork_heaps;
  fork_heaps = link;
  pthread_mutex_unlock(&fork_lock);
  return 0;
}

void fork_remove(fork_link *link) {
  pthread_mutex_lock(&fork_lock);
  for (fork_link **at = &fork_heaps; *at; at = &(*at)->next) {
    if (*at != link) continue;
    *at = link->next;
    break;
  }
  pthread_mutex_unlock(&fork_lock);
}

int fork_check(fork_link *link) {
  int broken = 0;
  size_t found = 0;
  pthread_mutex_lock(&fork_lock);
  for (fork_link *l = fork_heaps; l; l = l->next) {
    found += l == link;
    broken += gate_check(&l->core->gate);
  }
  pthread_mutex_unlock(&fork_lock);
  if (found != 1) {
    fprintf(stderr, "fork: the heap should be on the list of live heaps once, is on it %zu times\n", found);
    broken++;
  }
  return broken;
}
