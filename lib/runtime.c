/*
 * Runtime life cycle (rcgc_init, rcgc_shutdown) and the fatal-error path.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "debug.h"
#include "gc.h"
#include "os.h"
#include "profile.h"
#include "qsbr.h"
#include "thread.h"
#include "trace.h"

/* ------------------------------------------------------------------------
 * Fatal errors: one path for every broken invariant and detected misuse.
 *
 * The message says what went wrong (the caller's text: the function, the
 * object with its type, counts and owner, the pointer), then which thread
 * detected it (rcgc's serial number, the name given by
 * rcgc_thread_set_name or pthread_setname_np, and the OS thread id; or
 * that the thread is not attached), then where in rcgc:
 *
 *   rcgc: fatal error: rcgc_decref of a freed object
 *     object 0x7f3c2c010030 of type 'node': already freed (...)
 *     calling thread: rcgc thread #3 'worker-1' (tid 48113)
 *     detected at lib/refcount.c:195 in rcgc__decref_shared()
 *
 * It allocates nothing (the report may be about a broken heap, or about
 * running out of memory) and takes no lock.
 * ------------------------------------------------------------------------ */

static void default_fatal_handler(const char *message) {
    fprintf(stderr, "%s\n", message);
    fflush(stderr);
    abort();
}

static _Atomic(rcgc_fatal_handler) fatal_handler = default_fatal_handler;

rcgc_fatal_handler rcgc_set_fatal_handler(rcgc_fatal_handler h) {
    return atomic_exchange_explicit(&fatal_handler, h ? h : default_fatal_handler,
                                    memory_order_acq_rel);
}

/* snprintf into msg at *n, never past cap. */
static void append(char *msg, size_t cap, int *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *msg, size_t cap, int *n, const char *fmt, ...) {
    if (*n < 0 || (size_t)*n >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(msg + *n, cap - (size_t)*n, fmt, ap);
    va_end(ap);
    if (k > 0)
        *n += k;
}

static int describe_self(char *buf, size_t cap) {
    rcgc_thread *t = rcgc__tls_thread;
    long tid = (long)syscall(SYS_gettid);
    if (t) {
        /* Our own name: only we write it. */
        return snprintf(buf, cap, "rcgc thread #%llu '%s' (tid %ld)", (unsigned long long)t->serial,
                        t->name, tid);
    }
    char name[16] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    return snprintf(buf, cap, "tid %ld '%s', not attached to rcgc", tid, name);
}

void rcgc__fatal(const char *file, int line, const char *func, const char *fmt, ...) {
    char msg[2048];
    int n = 0;
    append(msg, sizeof msg, &n, "rcgc: fatal error: ");
    if (n < (int)sizeof msg) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
        va_end(ap);
        if (k > 0)
            n += k;
    }
    char self[128];
    describe_self(self, sizeof self);
    append(msg, sizeof msg, &n, "\n  calling thread: %s", self);
    append(msg, sizeof msg, &n, "\n  detected at %s:%d in %s()", file, line, func);
    atomic_load_explicit(&fatal_handler, memory_order_acquire)(msg);
    /* A handler must not return into rcgc: the state it reported is broken. */
    abort();
}

/* ------------------------------------------------------------------------
 * Init and shutdown
 * ------------------------------------------------------------------------ */

static pthread_mutex_t lifecycle_lock = PTHREAD_MUTEX_INITIALIZER;

/* RCGC_TRACE / RCGC_TRACE_SAMPLE (or their config fields): tracing from
 * the first allocation. A failure is reported, and the runtime goes on. */
static void start_tracing_option(void) {
    long frames = rcgc__option(RCGC_OPT_TRACE);
    if (frames <= 0)
        return;
    long sample = rcgc__option(RCGC_OPT_TRACE_SAMPLE);
    int err = sample > 0 ? rcgc_trace_start_sampling((int)frames, (size_t)sample)
                         : rcgc_trace_start((int)frames);
    if (err && err != EBUSY)
        fprintf(stderr, "rcgc: RCGC_TRACE=%ld: tracing not started: %s\n", frames, strerror(err));
}

/* The threads still attached at a misplaced rcgc_shutdown, for its message. */
typedef struct {
    char buf[400];
    int n;
    int more;
} shutdown_list;

static void list_other(rcgc_thread *t, void *arg) {
    shutdown_list *l = arg;
    if (t == rcgc__tls_thread)
        return;
    if (l->n > (int)sizeof l->buf - 80) {
        l->more = 1;
        return;
    }
    append(l->buf, sizeof l->buf, &l->n, "%srcgc thread #%llu '%s' (tid %ld)", l->n ? ", " : "",
           (unsigned long long)t->serial, t->name, (long)t->tid);
}

int rcgc_init(const rcgc_config *cfg) {
    pthread_mutex_lock(&lifecycle_lock);
    if (rcgc__runtime_initialized()) {
        pthread_mutex_unlock(&lifecycle_lock);
        return EBUSY;
    }
    rcgc__options_load(cfg);
    rcgc__arena_init();
    rcgc__gc_init();
    long nth = rcgc__option(RCGC_OPT_FAULT_OS_NTH);
    if (nth > 0)
        rcgc__os_fail_nth((uint64_t)nth);
    int err = rcgc__thread_registry_init();
    if (!err) {
        err = rcgc_thread_attach();
        if (err)
            rcgc__thread_registry_shutdown();
    }
    if (!err) {
        start_tracing_option();
        rcgc__debug_init();
        rcgc__profile_init();   /* RCGC_PROFILE: the usage sampler */
    }
    pthread_mutex_unlock(&lifecycle_lock);
    return err;
}

void rcgc_shutdown(void) {
    pthread_mutex_lock(&lifecycle_lock);
    if (!rcgc__runtime_initialized()) {
        pthread_mutex_unlock(&lifecycle_lock);
        return;
    }
    rcgc__profile_shutdown();   /* final row written, file closed */
    size_t others = rcgc__thread_count() - (rcgc__tls_thread ? 1 : 0);
    if (others) {
        /* Name them: the user has to find which thread forgot to detach. */
        shutdown_list l = {{0}, 0, 0};
        rcgc__thread_foreach(list_other, &l);
        RCGC_FATAL("rcgc_shutdown called while %zu other thread(s) are still attached: "
                   "detach (or join) them first\n  still attached: %s%s",
                   others, l.buf, l.more ? ", ..." : "");
    }
    rcgc__debug_before_shutdown();  /* RCGC_DEBUG=leaks */
    rcgc__gc_shutdown();    /* a last full collection; collector threads stop */
    rcgc__debug_after_collection(); /* RCGC_DEBUG=stats */
    if (rcgc__tls_thread) {
        rcgc__qsbr_barrier();   /* every deferred free done while we still have a heap */
        rcgc_thread_detach();
    }
    rcgc__heap_collect_abandoned();
    rcgc__trace_shutdown();         /* records of the heaps about to go */
    rcgc__heap_shutdown_reset();    /* pages of immortal or leaked objects */
    rcgc__thread_registry_shutdown();
    rcgc__arena_release_all();
    pthread_mutex_unlock(&lifecycle_lock);
}
