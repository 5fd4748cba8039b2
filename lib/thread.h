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
#include <sys/types.h>

#include "heap.h"

/* A stack of object pointers in chunks from the raw heap (merge queues). */
#define RCGC_OBJSTACK_CHUNK 254
typedef struct rcgc_objstack_chunk {
    struct rcgc_objstack_chunk *prev;
    size_t n;
    void *items[RCGC_OBJSTACK_CHUNK];
} rcgc_objstack_chunk;
typedef struct { rcgc_objstack_chunk *top; } rcgc_objstack;
int   rcgc__objstack_push(rcgc_objstack *s, void *o);   /* 0 or ENOMEM; caller attached */
void *rcgc__objstack_pop(rcgc_objstack *s);             /* NULL when empty */

/* Thread states (safepoint.c has the transitions). */
enum { RCGC_ATTACHED = 0, RCGC_DETACHED = 1, RCGC_SUSPENDED = 2 };

/* Bits of a thread's poll word (rcgc__tls_poll). */
enum {
    RCGC_POLL_STW   = 1u << 0,  /* a stop-the-world is requested */
    RCGC_POLL_MERGE = 1u << 1,  /* objects wait in the merge queue */
    RCGC_POLL_QSBR  = 1u << 2,  /* report a quiescent state (a grace period waits) */
    RCGC_POLL_GC    = 1u << 3,  /* this thread passed the collection threshold: collect */
};

struct rcgc_qsbr_batch;

typedef struct rcgc_thread {
    rcgc_heap heap;             /* owner only (see heap.h) */
    uint64_t  serial;           /* unique for the life of the process, never reused */
    pid_t     tid;              /* the OS thread id, for messages */
    pthread_t pthread;
    char      name[32];         /* owner writes (rcgc_thread_set_name); registry lock for readers */
    struct rcgc_thread *next, *prev; /* registry (registry lock) */

    /* Safepoints (safepoint.c). */
    _Atomic int state;          /* RCGC_ATTACHED / DETACHED / SUSPENDED */
    uint32_t   *poll;           /* this thread's rcgc__tls_poll: others set bits atomically */
    int         stw_counted;    /* the pause requester waits for this thread (stw lock) */
    int         watchdog_warned;/* stw lock */
    uint64_t    stw_requests;   /* pause requests seen (stw lock) */
    _Atomic uint64_t polls_slow;/* safepoint slow paths taken (owner writes) */

    /* Object death (object.c), owner only: the trashcan. */
    rcgc__header *trash;        /* objects whose death is queued */
    int           dealloc_depth;

    /* The collector's allocation count (gc.c): tracked allocations minus
     * deallocations not yet added to the global count. Owner, or the
     * collector with the world stopped. */
    int gc_delta;
    int gc_purple;              /* possible roots marked minus those that died */
    unsigned gc_old_deaths;     /* tracked objects that died old */
    int gc_collecting;          /* this thread runs a collection: its frees are not counted */

    /* Allocation tracing (trace.c), owner only: bytes until the next
     * sample, and the sampler's random state (0: not seeded yet). */
    int64_t  trace_left;
    uint64_t trace_rng;

    /* Deferred frees waiting for a grace period (qsbr.c), owner only. */
    struct rcgc_qsbr_batch *qsbr_batch;
    unsigned qsbr_batch_age;    /* quiescent states since the batch began */
    int qsbr_online;            /* registered with liburcu and online */

    /* Biased counting (refcount.c): objects other threads asked this
     * thread to merge. mq_lock guards mq and mq_dead. Last in the struct:
     * a thread that read an old owner pointer may lock mq_lock after the
     * state was recycled, so the mutex lives as long as the state and
     * attach resets only the fields above it (and these under the lock). */
    pthread_mutex_t mq_lock;
    rcgc_objstack   mq;
    int             mq_dead;    /* set at detach: pushers merge themselves */
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
void   rcgc__registry_lock(void);
void   rcgc__registry_unlock(void);
rcgc_thread *rcgc__registry_first(void);   /* registry lock held */

int    rcgc__runtime_initialized(void);
/* 1 (attached) or 2 (detached, pooled) and the thread's serial, tid and
 * name if p is a thread state; 0 if not, or unknown (fatal messages). */
int    rcgc__thread_lookup(uintptr_t p, uint64_t *serial, long *tid, char *name, size_t name_cap);
/* Heap counters, in this order: allocs, (unused: frees are derived),
 * remote_frees, remote_free_bytes, large_allocs, large_frees. */
#define RCGC_RETIRED_NSTATS 6
void   rcgc__thread_heap_stats(rcgc_thread *t, size_t out[RCGC_RETIRED_NSTATS]);
/* The same counters summed over every thread that has detached. */
void   rcgc__thread_retired_stats(size_t out[RCGC_RETIRED_NSTATS]);

/* Biased counting (refcount.c). */
void   rcgc__merge_queue_drain(rcgc_thread *t);
size_t rcgc__merge_owned(rcgc_thread *t);      /* by t, attached */
void   rcgc__merge_queue_close(rcgc_thread *t);

/* Ask thread t to run its safepoint slow path (sets bits in its poll word).
 * t must be attached (registry lock, or t's merge-queue lock with !mq_dead). */
static inline void rcgc__poll_request(rcgc_thread *t, uint32_t bits) {
    __atomic_fetch_or(t->poll, bits, __ATOMIC_RELEASE);
}

#endif
