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
/* The calling thread's state; fatal error naming `what` if unattached. */
rcgc_thread *rcgc__thread_require(const char *what);

int    rcgc__thread_registry_init(void);
void   rcgc__thread_registry_shutdown(void);
size_t rcgc__thread_count(void);
/* Call fn on every attached thread, registry lock held. */
void   rcgc__thread_foreach(void (*fn)(rcgc_thread *t, void *arg), void *arg);

int    rcgc__runtime_initialized(void);

#endif
