/*
 * attachlog: the test's own record of the regions attached to dynamic
 * windows, kept through MPI's profiling interface: the program defines
 * MPI_Win_attach and MPI_Win_detach, which the provider's calls reach, and
 * passes them on to PMPI_Win_attach and PMPI_Win_detach. Some MPIs neither
 * check attachments nor need them on one machine, so that what the provider
 * says it attached is checked against what MPI was asked. Only calls that
 * succeed change the record. attachlog_fail_detaches makes detaches fail
 * (MPI_ERR_ARG, without reaching MPI), to test the provider's books. Include
 * it in one file of a program. Thread-safe.
 */
#ifndef PINHEAP_TEST_ATTACHLOG_H
#define PINHEAP_TEST_ATTACHLOG_H

#include <mpi.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define ATTACHLOG_MAX 4096

static struct {
  pthread_mutex_t lock;
  const void *base[ATTACHLOG_MAX];
  size_t size[ATTACHLOG_MAX];
  size_t live, bytes;
  size_t strays; /* detaches of nothing attached, attaches with no room */
  int fail;      /* detaches still to fail */
} attachlog = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The next n calls of MPI_Win_detach fail. */
static inline void attachlog_fail_detaches(int n) {
  pthread_mutex_lock(&attachlog.lock);
  attachlog.fail = n;
  pthread_mutex_unlock(&attachlog.lock);
}

int MPI_Win_attach(MPI_Win win, void *base, MPI_Aint size) {
  int rc = PMPI_Win_attach(win, base, size);
  if (rc != MPI_SUCCESS) return rc;
  pthread_mutex_lock(&attachlog.lock);
  if (attachlog.live < ATTACHLOG_MAX) {
    attachlog.base[attachlog.live] = base;
    attachlog.size[attachlog.live++] = (size_t)size;
    attachlog.bytes += (size_t)size;
  } else {
    attachlog.strays++;
  }
  pthread_mutex_unlock(&attachlog.lock);
  return rc;
}

int MPI_Win_detach(MPI_Win win, const void *base) {
  pthread_mutex_lock(&attachlog.lock);
  bool fail = attachlog.fail > 0;
  if (fail) attachlog.fail--;
  pthread_mutex_unlock(&attachlog.lock);
  int rc = fail ? MPI_ERR_ARG : PMPI_Win_detach(win, base);
  if (rc != MPI_SUCCESS) return rc;
  pthread_mutex_lock(&attachlog.lock);
  size_t i = 0;
  while (i < attachlog.live && attachlog.base[i] != base) i++;
  if (i == attachlog.live) {
    attachlog.strays++;
  } else {
    attachlog.bytes -= attachlog.size[i];
    attachlog.live--;
    attachlog.base[i] = attachlog.base[attachlog.live];
    attachlog.size[i] = attachlog.size[attachlog.live];
  }
  pthread_mutex_unlock(&attachlog.lock);
  return rc;
}

/* Whether exactly [base, base + size) is attached now. */
static inline bool attachlog_has(const void *base, size_t size) {
  pthread_mutex_lock(&attachlog.lock);
  size_t i = 0;
  while (i < attachlog.live && attachlog.base[i] != base) i++;
  bool found = i < attachlog.live && attachlog.size[i] == size;
  pthread_mutex_unlock(&attachlog.lock);
  return found;
}

/* The regions attached now, their bytes, and the strays so far. */
static inline void attachlog_counts(size_t *live, size_t *bytes, size_t *strays) {
  pthread_mutex_lock(&attachlog.lock);
  *live = attachlog.live;
  *bytes = attachlog.bytes;
  *strays = attachlog.strays;
  pthread_mutex_unlock(&attachlog.lock);
}

#endif
