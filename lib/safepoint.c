/*
 * Safepoints, blocking regions and stop-the-world.
 *
 * Theory. Each attached thread is ATTACHED (running, may touch objects),
 * DETACHED (in a blocking region: touches no object) or SUSPENDED (parked
 * by a pause). A pause:
 *
 *   requester                               thread t
 *   ---------                               --------
 *   lock stw_lock
 *   requested := 1            (seq_cst)     blocking_begin:
 *   for each t:                               state := DETACHED   (seq_cst)
 *     DETACHED --CAS--> SUSPENDED             if requested:       (seq_cst)
 *     ATTACHED: counted, countdown++,           lock; if counted: countdown--
 *               set t's poll bit
 *   wait (condvar) until countdown == 0     safepoint poll sees the bit:
 *   unlock                                    lock; SUSPENDED; countdown--;
 *   ... world stopped ...                     wait until not SUSPENDED
 *   lock; SUSPENDED -> DETACHED for all;      ATTACHED; unlock
 *   requested := 0; broadcast; unlock
 *
 * The store/load pairs on `state` and `requested` are sequentially
 * consistent, so at least one side sees the other: either the requester
 * finds t DETACHED and suspends it with a CAS (t's blocking_end then fails
 * its CAS DETACHED -> ATTACHED and waits), or t sees the request and, under
 * stw_lock (which the requester holds while it counts), gives back its
 * count. Nobody spins: waiting is on condition variables (futexes).
 *
 * Pauses are serialised by `requester_lock`; a thread that must wait for it
 * waits in a blocking region, so the pause in progress does not wait for
 * it. The requester also holds the registry lock for the whole pause, so no
 * thread attaches or leaves the registry meanwhile; detaching threads go
 * DETACHED before they take that lock.
 *
 * The watchdog: while the requester waits, a timed wait wakes it every
 * RCGC_WATCHDOG_MS; each counted thread still running is named once per
 * pause on stderr, with the usual cause.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gc.h"
#include "os.h"
#include "qsbr.h"
#include "safepoint.h"

RCGC_TLS uint32_t rcgc__tls_poll;

static pthread_mutex_t requester_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t stw_lock = PTHREAD_MUTEX_INITIALIZER;
/* The requester waits on stopped_cond with a deadline (the watchdog); the
 * deadline is on CLOCK_MONOTONIC, so the condvar must be too (a default
 * condvar measures CLOCK_REALTIME, every wait returned at once, and the
 * requester spun through each pause: time to safepoint sat at the 4 ms
 * scheduler tick). Set up once, before the first pause. */
static pthread_cond_t stopped_cond;
static pthread_once_t stopped_cond_once = PTHREAD_ONCE_INIT;
static void stopped_cond_init(void) { rcgc__os_cond_init_monotonic(&stopped_cond); }
static pthread_cond_t resume_cond = PTHREAD_COND_INITIALIZER;    /* suspended threads wait */
static _Atomic int requested;
static int countdown;                                            /* stw_lock */
static rcgc_thread *_Atomic requester;

/* Statistics (stw_lock). Time to safepoint is kept for the last samples. */
#define TTSP_SAMPLES 4096
static struct {
    uint64_t pauses, pause_max_ns, pause_total_ns, watchdog_reports;
    uint64_t ttsp[TTSP_SAMPLES];
    uint64_t pause_started_ns;
} st;

/* ------------------------------------------------------------------------
 * Thread transitions
 * ------------------------------------------------------------------------ */

void rcgc__safepoint_thread_init(rcgc_thread *t) {
    rcgc__tls_poll = 0;
    t->poll = &rcgc__tls_poll;
    atomic_store_explicit(&t->state, RCGC_ATTACHED, memory_order_seq_cst);
}

/* Give back the requester's count for t, if it counted t. stw_lock held. */
static void uncount(rcgc_thread *t) {
    if (t->stw_counted) {
        t->stw_counted = 0;
        if (--countdown == 0)
            pthread_cond_signal(&stopped_cond);
    }
}

void rcgc__safepoint_go_detached(rcgc_thread *t) {
    rcgc__heap_flush_remote(&t->heap);  /* a pause may walk the heap */
    rcgc__qsbr_pause(t);
    atomic_store_explicit(&t->state, RCGC_DETACHED, memory_order_seq_cst);
    if (atomic_load_explicit(&requested, memory_order_seq_cst)) {
        pthread_mutex_lock(&stw_lock);
        /* Counted while running: the pause goes on without waiting for us,
         * so we are stopped for it, as if its CAS had found us DETACHED.
         * Left DETACHED, our blocking_end would attach again at once and
         * run during the pause (a collection then scanned objects this
         * thread was freeing). start_the_world makes us DETACHED again. */
        if (t->stw_counted)
            atomic_store_explicit(&t->state, RCGC_SUSPENDED, memory_order_seq_cst);
        uncount(t);
        pthread_mutex_unlock(&stw_lock);
    }
}

/* Wait, under stw_lock, while a pause keeps t suspended. */
static void wait_resumed(rcgc_thread *t) {
    while (atomic_load_explicit(&t->state, memory_order_seq_cst) == RCGC_SUSPENDED)
        pthread_cond_wait(&resume_cond, &stw_lock);
}

void rcgc__safepoint_go_attached(rcgc_thread *t) {
    for (;;) {
        int expected = RCGC_DETACHED;
        if (atomic_compare_exchange_strong_explicit(&t->state, &expected, RCGC_ATTACHED,
                                                    memory_order_seq_cst, memory_order_seq_cst))
            break;
        /* A pause suspended us while we were away: wait for its end. */
        pthread_mutex_lock(&stw_lock);
        wait_resumed(t);
        pthread_mutex_unlock(&stw_lock);
    }
    rcgc__qsbr_resume(t);
}

static void suspend_self(rcgc_thread *t) {
    pthread_mutex_lock(&stw_lock);
    if (t->stw_counted) {
        rcgc__qsbr_pause(t);
        atomic_store_explicit(&t->state, RCGC_SUSPENDED, memory_order_seq_cst);
        uncount(t);
        wait_resumed(t);
        atomic_store_explicit(&t->state, RCGC_ATTACHED, memory_order_seq_cst);
        pthread_mutex_unlock(&stw_lock);
        rcgc__qsbr_resume(t);
        return;
    }
    pthread_mutex_unlock(&stw_lock);
}

RCGC_NOINLINE void rcgc__safepoint_slow(void) {
    rcgc_thread *t = rcgc__tls_thread;
    uint32_t bits = __atomic_exchange_n(&rcgc__tls_poll, 0, __ATOMIC_ACQUIRE);
    if (!t)
        return;     /* a stale bit from an earlier attachment */
    atomic_fetch_add_explicit(&t->polls_slow, 1, memory_order_relaxed);
    rcgc__heap_flush_remote(&t->heap);  /* before suspending: a pause may walk the heap */
    if (bits & RCGC_POLL_STW)
        suspend_self(t);
    if (bits & RCGC_POLL_MERGE)
        rcgc__merge_queue_drain(t);
    rcgc__qsbr_quiescent(t);
    if (bits & RCGC_POLL_GC)
        rcgc__gc_collect_auto(t);
}

void rcgc_blocking_begin(void) {
    rcgc_thread *t = rcgc__thread_require("rcgc_blocking_begin");
    if (rcgc_unlikely(atomic_load_explicit(&t->state, memory_order_relaxed) != RCGC_ATTACHED))
        RCGC_FATAL("rcgc_blocking_begin: the thread is already in a blocking region "
                   "(blocking regions do not nest)");
    rcgc__safepoint_go_detached(t);
}

void rcgc_blocking_end(void) {
    rcgc_thread *t = rcgc__thread_require("rcgc_blocking_end");
    if (rcgc_unlikely(atomic_load_explicit(&t->state, memory_order_relaxed) == RCGC_ATTACHED))
        RCGC_FATAL("rcgc_blocking_end without rcgc_blocking_begin");
    rcgc__safepoint_go_attached(t);
}

/* ------------------------------------------------------------------------
 * Stop and start the world
 * ------------------------------------------------------------------------ */

static void watchdog_report(uint64_t waited_ms) {
    for (rcgc_thread *t = rcgc__registry_first(); t; t = t->next) {
        if (!t->stw_counted || t->watchdog_warned)
            continue;
        t->watchdog_warned = 1;
        st.watchdog_reports++;
        fprintf(stderr,
                "rcgc: watchdog: a pause has waited %llu ms for thread tid %ld \"%s\" (rcgc thread "
                "#%llu) to reach a safepoint.\n"
                "  It is probably blocked (a system call, a lock, a sleep) or in a long loop outside "
                "rcgc_blocking_begin()/rcgc_blocking_end().\n"
                "  Wrap blocking calls in a blocking region, and call rcgc_safepoint() in long loops.\n",
                (unsigned long long)waited_ms, (long)t->tid, t->name[0] ? t->name : "?",
                (unsigned long long)t->serial);
    }
}

int rcgc__world_stopped_by_me(void) {
    rcgc_thread *me = rcgc__tls_thread;
    return me && atomic_load_explicit(&requester, memory_order_relaxed) == me;
}

void rcgc__stop_the_world(void) {
    rcgc_thread *self = rcgc__thread_require("stop-the-world");
    rcgc__heap_flush_remote(&self->heap);
    if (rcgc__world_stopped_by_me())
        RCGC_FATAL("stop-the-world requested while this thread already holds the world stopped");
    if (pthread_mutex_trylock(&requester_lock) != 0) {
        /* Another pause runs or is starting: wait our turn where it does not
         * wait for us. */
        rcgc__safepoint_go_detached(self);
        pthread_mutex_lock(&requester_lock);
        rcgc__safepoint_go_attached(self);
    }
    pthread_once(&stopped_cond_once, stopped_cond_init);
    rcgc__registry_lock();
    uint64_t t0 = rcgc__os_now_ns();
    pthread_mutex_lock(&stw_lock);
    atomic_store_explicit(&requester, self, memory_order_relaxed);
    atomic_store_explicit(&requested, 1, memory_order_seq_cst);
    countdown = 0;
    for (rcgc_thread *t = rcgc__registry_first(); t; t = t->next) {
        if (t == self)
            continue;
        t->watchdog_warned = 0;
        __atomic_store_n(&t->stw_requests, t->stw_requests + 1, __ATOMIC_RELAXED);
        for (;;) {
            int s = atomic_load_explicit(&t->state, memory_order_seq_cst);
            if (s == RCGC_DETACHED) {
                if (atomic_compare_exchange_strong_explicit(&t->state, &s, RCGC_SUSPENDED,
                                                            memory_order_seq_cst,
                                                            memory_order_seq_cst))
                    break;
                continue;
            }
            RCGC_ASSERT(s == RCGC_ATTACHED);
            t->stw_counted = 1;
            countdown++;
            rcgc__poll_request(t, RCGC_POLL_STW);
            break;
        }
    }
    long watchdog_ms = rcgc__option(RCGC_OPT_WATCHDOG_MS);
    uint64_t next_report = t0 + (uint64_t)watchdog_ms * 1000000u;
    while (countdown > 0) {
        if (watchdog_ms <= 0) {
            pthread_cond_wait(&stopped_cond, &stw_lock);
            continue;
        }
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        uint64_t now = (uint64_t)deadline.tv_sec * 1000000000u + (uint64_t)deadline.tv_nsec;
        if (now >= next_report) {
            watchdog_report((now - t0) / 1000000u);
            next_report = now + (uint64_t)watchdog_ms * 1000000u;
        }
        uint64_t until = next_report;
        deadline.tv_sec = (time_t)(until / 1000000000u);
        deadline.tv_nsec = (long)(until % 1000000000u);
        pthread_cond_timedwait(&stopped_cond, &stw_lock, &deadline);
    }
    uint64_t t1 = rcgc__os_now_ns();
    st.ttsp[st.pauses % TTSP_SAMPLES] = t1 - t0;
    st.pauses++;
    st.pause_started_ns = t1;
    pthread_mutex_unlock(&stw_lock);
}

void rcgc__start_the_world(void) {
    rcgc_thread *self = rcgc__tls_thread;
    if (!rcgc__world_stopped_by_me())
        RCGC_FATAL("start-the-world from a thread that did not stop it");
    pthread_mutex_lock(&stw_lock);
    for (rcgc_thread *t = rcgc__registry_first(); t; t = t->next) {
        if (t == self)
            continue;
        int s = RCGC_SUSPENDED;
        atomic_compare_exchange_strong_explicit(&t->state, &s, RCGC_DETACHED, memory_order_seq_cst,
                                                memory_order_seq_cst);
        t->stw_counted = 0;
    }
    atomic_store_explicit(&requested, 0, memory_order_seq_cst);
    atomic_store_explicit(&requester, NULL, memory_order_relaxed);
    uint64_t paused = rcgc__os_now_ns() - st.pause_started_ns;
    st.pause_total_ns += paused;
    if (paused > st.pause_max_ns)
        st.pause_max_ns = paused;
    pthread_mutex_unlock(&stw_lock);
    /* Wake after unlocking, so the woken threads do not queue on stw_lock
     * behind us. */
    pthread_cond_broadcast(&resume_cond);
    rcgc__registry_unlock();
    pthread_mutex_unlock(&requester_lock);
}

/* ------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void rcgc__pause_stats(rcgc_pause_stats *out) {
    static uint64_t sorted[TTSP_SAMPLES];   /* stats_lock */
    static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&stats_lock);
    pthread_mutex_lock(&stw_lock);
    size_t n = st.pauses < TTSP_SAMPLES ? (size_t)st.pauses : TTSP_SAMPLES;
    memcpy(sorted, st.ttsp, n * sizeof sorted[0]);
    out->pauses = st.pauses;
    out->pause_max_ns = st.pause_max_ns;
    out->pause_total_ns = st.pause_total_ns;
    out->watchdog_reports = st.watchdog_reports;
    pthread_mutex_unlock(&stw_lock);
    if (n) {
        qsort(sorted, n, sizeof sorted[0], cmp_u64);
        /* Nearest-rank percentiles: the smallest sample with at least
         * p% of the samples at or below it. */
        out->ttsp_p50_ns = sorted[(n * 50 + 99) / 100 - 1];
        out->ttsp_p99_ns = sorted[(n * 99 + 99) / 100 - 1];
        out->ttsp_max_ns = sorted[n - 1];
    }
    pthread_mutex_unlock(&stats_lock);
}

void rcgc__pause_stats_reset(void) {
    pthread_mutex_lock(&stw_lock);
    memset(&st, 0, sizeof st);
    pthread_mutex_unlock(&stw_lock);
}
