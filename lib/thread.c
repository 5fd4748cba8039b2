/*
 * Thread registry and attach/detach.
 *
 * Theory. A thread state is created by rcgc_thread_attach and lives until
 * the thread detaches (or exits: a pthread key destructor detaches it).
 * States are recycled through a free pool so that thread churn costs no
 * mmap; the `serial` given at each attach is never reused, so nothing that
 * records a serial can mistake a new thread for an old one.
 *
 * The registry is a list under `registry_lock`, taken only at attach,
 * detach and by statistics: never on an allocation or free path.
 */
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os.h"
#include "thread.h"

RCGC_TLS rcgc_thread *rcgc__tls_thread;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static rcgc_thread *registry;           /* registry_lock */
static rcgc_thread *pool;               /* detached states for reuse (registry_lock) */
static size_t n_attached;               /* registry_lock */
static uint64_t next_serial = 1;        /* registry_lock */
static _Atomic int initialized;

/* Totals of threads that have detached, so statistics keep their work. */
static size_t retired[RCGC_RETIRED_NSTATS];                              /* registry_lock */

static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static int exit_key_error;

static void detach_state(rcgc_thread *t);

/* A thread that exits while attached is detached here. */
static void on_thread_exit(void *arg) {
    rcgc_thread *t = arg;
    if (t && rcgc__tls_thread == t)
        detach_state(t);
}

static void make_exit_key(void) { exit_key_error = pthread_key_create(&exit_key, on_thread_exit); }

int rcgc__runtime_initialized(void) { return atomic_load_explicit(&initialized, memory_order_acquire); }

int rcgc__thread_registry_init(void) {
    pthread_once(&exit_key_once, make_exit_key);
    if (exit_key_error)
        return exit_key_error;
    atomic_store_explicit(&initialized, 1, memory_order_release);
    return 0;
}

void rcgc__thread_registry_shutdown(void) {
    pthread_mutex_lock(&registry_lock);
    while (pool) {
        rcgc_thread *t = pool;
        pool = t->next;
        rcgc__os_free(t, sizeof *t);
    }
    memset(retired, 0, sizeof retired);
    atomic_store_explicit(&initialized, 0, memory_order_release);
    pthread_mutex_unlock(&registry_lock);
}

int rcgc_thread_attach(void) {
    if (!rcgc__runtime_initialized())
        return EINVAL;
    if (rcgc__tls_thread)
        return EBUSY;
    pthread_mutex_lock(&registry_lock);
    rcgc_thread *t = pool;
    if (t)
        pool = t->next;
    pthread_mutex_unlock(&registry_lock);
    if (!t) {
        t = rcgc__os_alloc(sizeof *t);
        if (!t)
            return ENOMEM;
    }
    memset(t, 0, sizeof *t);
    rcgc__heap_init(&t->heap);
    t->tid = (pid_t)syscall(SYS_gettid);
    t->pthread = pthread_self();
    int err = pthread_setspecific(exit_key, t);
    pthread_mutex_lock(&registry_lock);
    if (err) {
        t->next = pool;
        pool = t;
        pthread_mutex_unlock(&registry_lock);
        return err;
    }
    t->serial = next_serial++;
    t->prev = NULL;
    t->next = registry;
    if (registry)
        registry->prev = t;
    registry = t;
    n_attached++;
    pthread_mutex_unlock(&registry_lock);
    rcgc__tls_thread = t;
    return 0;
}

static void detach_state(rcgc_thread *t) {
    rcgc__heap_abandon(&t->heap);
    pthread_mutex_lock(&registry_lock);
    if (t->prev)
        t->prev->next = t->next;
    else
        registry = t->next;
    if (t->next)
        t->next->prev = t->prev;
    n_attached--;
    size_t now[RCGC_RETIRED_NSTATS];
    rcgc__thread_heap_stats(t, now);
    for (int i = 0; i < RCGC_RETIRED_NSTATS; i++)
        retired[i] += now[i];
    t->next = pool;
    t->prev = NULL;
    pool = t;
    pthread_mutex_unlock(&registry_lock);
    rcgc__tls_thread = NULL;
    pthread_setspecific(exit_key, NULL);
}

void rcgc_thread_detach(void) {
    rcgc_thread *t = rcgc__thread_require("rcgc_thread_detach");
    detach_state(t);
}

int rcgc_is_attached(void) { return rcgc__tls_thread != NULL; }

RCGC_COLD rcgc_thread *rcgc__thread_require_slow(const char *what) {
    if (!rcgc__runtime_initialized())
        RCGC_FATAL("%s called before rcgc_init (or after rcgc_shutdown)", what);
    RCGC_FATAL("%s called from a thread that is not attached: call rcgc_thread_attach() first", what);
}

size_t rcgc__thread_count(void) {
    pthread_mutex_lock(&registry_lock);
    size_t n = n_attached;
    pthread_mutex_unlock(&registry_lock);
    return n;
}

void rcgc__thread_foreach(void (*fn)(rcgc_thread *t, void *arg), void *arg) {
    pthread_mutex_lock(&registry_lock);
    for (rcgc_thread *t = registry; t; t = t->next)
        fn(t, arg);
    pthread_mutex_unlock(&registry_lock);
}

void rcgc__thread_heap_stats(rcgc_thread *t, size_t out[RCGC_RETIRED_NSTATS]) {
    out[0] = RCGC_STAT_LOAD(t->heap.stat.allocs);
    out[1] = RCGC_STAT_LOAD(t->heap.stat.frees);
    out[2] = RCGC_STAT_LOAD(t->heap.stat.remote_frees);
    out[3] = RCGC_STAT_LOAD(t->heap.stat.remote_free_bytes);
    out[4] = RCGC_STAT_LOAD(t->heap.stat.large_allocs);
    out[5] = RCGC_STAT_LOAD(t->heap.stat.large_frees);
}

void rcgc__thread_retired_stats(size_t out[RCGC_RETIRED_NSTATS]) {
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < RCGC_RETIRED_NSTATS; i++)
        out[i] = retired[i];
    pthread_mutex_unlock(&registry_lock);
}
