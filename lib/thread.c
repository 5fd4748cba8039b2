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
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gc.h"
#include "object.h"
#include "os.h"
#include "qsbr.h"
#include "safepoint.h"
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

/* The registry lock. A pause holds it from start to end, so an attached
 * thread that finds it taken waits in a blocking region: the pause must
 * not wait for it. */
void rcgc__registry_lock(void) {
    if (pthread_mutex_trylock(&registry_lock) == 0)
        return;
    rcgc_thread *t = rcgc__tls_thread;
    bool attached = t && atomic_load_explicit(&t->state, memory_order_relaxed) == RCGC_ATTACHED &&
                    !rcgc__world_stopped_by_me();
    if (attached)
        rcgc__safepoint_go_detached(t);
    pthread_mutex_lock(&registry_lock);
    if (attached)
        rcgc__safepoint_go_attached(t);  /* no pause can start: we hold its lock */
}

void rcgc__registry_unlock(void) { pthread_mutex_unlock(&registry_lock); }

rcgc_thread *rcgc__registry_first(void) { return registry; }

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
        pthread_mutex_destroy(&t->mq_lock);
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
        t = rcgc__os_alloc(sizeof *t);     /* zeroed */
        if (!t)
            return ENOMEM;
        pthread_mutex_init(&t->mq_lock, NULL);
    }
    memset(t, 0, offsetof(rcgc_thread, mq_lock));
    rcgc__heap_init(&t->heap);
    t->tid = (pid_t)syscall(SYS_gettid);
    t->pthread = pthread_self();
    pthread_getname_np(t->pthread, t->name, sizeof t->name);
    rcgc__safepoint_thread_init(t);
    /* Reopen the merge queue last: a thread that read this state's address
     * as an old object's owner may push as soon as mq_dead is 0, and then
     * reads t->poll; the unlock publishes everything set above. (Such a
     * push is harmless: the old attachment merged every object it owned, and
     * merging goes by the object's state.) */
    pthread_mutex_lock(&t->mq_lock);
    t->mq.top = NULL;
    t->mq_dead = 0;
    pthread_mutex_unlock(&t->mq_lock);
    int err = rcgc__os_tls_set(exit_key, t);
    /* Not attached yet: a plain lock (a pause in progress holds it, and we
     * wait for the pause to end, as attaching threads must). */
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
    rcgc__tls_thread = t;
    pthread_mutex_unlock(&registry_lock);
    rcgc__qsbr_thread_online(t);
    return 0;
}

/* Leave the runtime: no object may name t as owner afterwards, nothing may
 * wait in its merge queue, its deferred frees are handed on, its pages are
 * abandoned. Then it leaves the registry (as DETACHED, so a pause in
 * progress does not wait for it). */
static void detach_state(rcgc_thread *t) {
    rcgc__merge_queue_drain(t);
    rcgc__merge_owned(t);
    rcgc__merge_queue_close(t);     /* pushers merge themselves from now on */
    rcgc__gc_count_flush(t);        /* its counts for the trigger */
    rcgc__qsbr_thread_offline(t);
    rcgc__heap_abandon(&t->heap);
    rcgc__safepoint_go_detached(t);
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
    __atomic_store_n(&rcgc__tls_poll, 0, __ATOMIC_RELAXED);
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
    rcgc__registry_lock();
    size_t n = n_attached;
    rcgc__registry_unlock();
    return n;
}

void rcgc__thread_foreach(void (*fn)(rcgc_thread *t, void *arg), void *arg) {
    if (rcgc__world_stopped_by_me()) {
        /* The pause holds the registry lock for us. */
        for (rcgc_thread *t = registry; t; t = t->next)
            fn(t, arg);
        return;
    }
    rcgc__registry_lock();
    for (rcgc_thread *t = registry; t; t = t->next)
        fn(t, arg);
    rcgc__registry_unlock();
}

void rcgc_thread_set_name(const char *name) {
    rcgc_thread *t = rcgc__thread_require("rcgc_thread_set_name");
    char buf[16];
    snprintf(buf, sizeof buf, "%s", name ? name : "");
    pthread_setname_np(pthread_self(), buf);
    rcgc__registry_lock();
    snprintf(t->name, sizeof t->name, "%s", name ? name : "");
    rcgc__registry_unlock();
}

void rcgc__thread_heap_stats(rcgc_thread *t, size_t out[RCGC_RETIRED_NSTATS]) {
    out[0] = RCGC_STAT_LOAD(t->heap.stat.allocs);
    out[1] = 0;     /* frees are derived: allocs - blocks in use (stats.c) */
    out[2] = RCGC_STAT_LOAD(t->heap.stat.remote_frees);
    out[3] = RCGC_STAT_LOAD(t->heap.stat.remote_free_bytes);
    out[4] = RCGC_STAT_LOAD(t->heap.stat.large_allocs);
    out[5] = RCGC_STAT_LOAD(t->heap.stat.large_frees);
}

void rcgc__thread_retired_stats(size_t out[RCGC_RETIRED_NSTATS]) {
    rcgc__registry_lock();
    for (int i = 0; i < RCGC_RETIRED_NSTATS; i++)
        out[i] = retired[i];
    rcgc__registry_unlock();
}

/* Is p the state of an attached (1) or pooled (2) thread? For fatal
 * messages, which must not follow a corrupt owner pointer: a trylock, so
 * that a report from inside a registry operation cannot deadlock (it then
 * says "unknown"), except that a pause's requester holds the lock already
 * and the registry cannot change under it. */
int rcgc__thread_lookup(uintptr_t p, uint64_t *serial, long *tid, char *name, size_t name_cap) {
    bool locked = pthread_mutex_trylock(&registry_lock) == 0;
    if (!locked && !rcgc__world_stopped_by_me())
        return 0;
    int found = 0;
    for (rcgc_thread *t = registry; t && !found; t = t->next)
        found = (uintptr_t)t == p;
    for (rcgc_thread *t = pool; t && !found; t = t->next)
        found = (uintptr_t)t == p ? 2 : 0;
    if (found) {
        *serial = ((rcgc_thread *)p)->serial;
        *tid = (long)((rcgc_thread *)p)->tid;
        snprintf(name, name_cap, "%s", ((rcgc_thread *)p)->name);
    }
    if (locked)
        pthread_mutex_unlock(&registry_lock);
    return found;
}
