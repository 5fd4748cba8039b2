/*
 * Thread states and the registry of attached threads.
 *
 * Thread-safety: the registry list is guarded by the registry lock; a
 * thread's own state is touched only by that thread, except the fields
 * marked shared.
 */
#ifndef RCGC_THREAD_H
#define RCGC_THREAD_H

#include <pthread.h>

#include "heap.h"

typedef struct rcgc_thread {
    rcgc_heap heap;             /* owner only (see heap.h) */
    uint64_t  serial;           /* unique for the life of the process, never reused */
    pid_t     tid;              /* the OS thread id, for messages */
    pthread_t pthread;
    struct rcgc_thread *next, *prev; /* registry (registry lock) */
} rcgc_thread;

extern RCGC_TLS rcgc_thread *rcgc__tls_thread;

/* The calling thread's state, or NULL if it is not attached. */
static inline rcgc_thread *rcgc__thread_current(void) { return rcgc__tls_thread; }
RCGC_COLD __attribute__((noreturn)) rcgc_thread *rcgc__thread_require_slow(const char *what);
/* The calling thread's state; fatal error naming `what` if unattached. */
static inline rcgc_thread *rcgc__thread_require(const char *what) {
    rcgc_thread *t = rcgc__tls_thread;
    if (rcgc_unlikely(!t))
        rcgc__thread_require_slow(what);
    return t;
}

int    rcgc__thread_registry_init(void);
void   rcgc__thread_registry_shutdown(void);
size_t rcgc__thread_count(void);
/* Call fn on every attached thread, registry lock held. */
void   rcgc__thread_foreach(void (*fn)(rcgc_thread *t, void *arg), void *arg);

int    rcgc__runtime_initialized(void);
/* Heap counters, in this order: allocs, frees, remote_frees,
 * remote_free_bytes, large_allocs, large_frees. */
#define RCGC_RETIRED_NSTATS 6
void   rcgc__thread_heap_stats(rcgc_thread *t, size_t out[RCGC_RETIRED_NSTATS]);
/* The same counters summed over every thread that has detached. */
void   rcgc__thread_retired_stats(size_t out[RCGC_RETIRED_NSTATS]);

#endif
