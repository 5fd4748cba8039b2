/*
 * safepoint_bench: how long rcgc takes to stop N running mutator threads
 * (time to safepoint, TTSP) and to stop and restart them (pause round
 * trip), beside a condition-variable ping-pong that shows the operating
 * system's floor for "wake a thread and get an answer". A benchmark, not a
 * test.
 *
 *   safepoint_bench [--threads=LIST] [--seconds=S] [--hs-seconds=S]
 *                   [--pp-seconds=S] [--interval-us=U] [--work=K]
 *
 * No peer: no allocator or reference-counting library among rcgc's peers
 * (glibc, jemalloc, mimalloc) stops the world, so there is no figure of
 * theirs to print beside ours. The references are the bare handshake and
 * the ping-pong below, run in the same process under the same load.
 *
 * For each N in --threads (comma-separated; run.sh runs one N per process):
 *   1. N mutator threads attach and loop: rcgc_new a 32-byte object (which
 *      polls), --work rounds of xorshift arithmetic folded into it,
 *      rcgc_decref (which frees it), rcgc_safepoint(), a check of the
 *      bare handshake's flag (one relaxed load), count the iteration.
 *   2. Pause phase (--seconds): main, the requester (attached by rcgc_init,
 *      an extra thread beside the N), repeats: sleep --interval-us inside a
 *      blocking region; t0; rcgc__stop_the_world(); t1;
 *      rcgc__start_the_world(); t2. TTSP = t1 - t0, round trip = t2 - t0.
 *   3. Bare handshake phase (--hs-seconds), same mutators, no rcgc pause:
 *      the least a cooperative stop of the same threads can cost, a
 *      hand-rolled stop-the-world with one mutex and two condition
 *      variables. Main raises a flag and waits until every mutator has seen
 *      it (each counts itself in under the mutex, the last signals) and
 *      parks; then main lowers the flag and broadcasts. Parked mutators wait
 *      in a blocking region, as the rcgc contract asks. The difference from
 *      phase 2 is what rcgc's pause adds over the bare protocol; the
 *      common part is the scheduler's (a preempted mutator must run again
 *      before it can see any flag).
 *   4. Ping-pong phase (--pp-seconds), the mutators still running and no
 *      pause requested: main wakes a partner thread (a plain pthread, not
 *      attached) through a mutex and condition variable and waits for its
 *      answer. This is the OS floor for "wake a sleeping thread and get an
 *      answer"; it does not include waiting for a preempted thread.
 * Phases 2-4 sleep --interval-us between rounds; main stays in a blocking
 * region for phases 3 and 4 (it touches no object there). Before the first
 * N the ping-pong also runs with no mutators (idle floor).
 *
 * Settling: in phases 2 and 3 a round starts only once every mutator has
 * done an iteration since the previous round ended (main polls their
 * counters every 50 us after the sleep, up to 100 ms; rounds that gave up
 * waiting are counted as `unsettled`). Without this, a mutator still waking
 * from the previous pause is not running, and rcgc rightly stops it without
 * waiting (it is parked, as in a blocking region): such rounds measure
 * nothing but a few stores, and under load they are common.
 *
 * Figures are percentiles of our own samples (nearest rank). rcgc keeps its
 * own TTSP figures (rcgc_stats ttsp_p50/p99/max over the last 4096 pauses,
 * reset before each pause phase here); they are printed beside ours as a
 * cross-check. rcgc's clock starts after it has taken the pause locks and
 * stops when the last thread has checked in, ours spans the whole call, so
 * each of its samples is a little shorter than ours; but it reads ranks
 * n/2 and 99n/100 of the sorted samples, one above ours, so with few pauses
 * (or two clusters of them) its percentile can come out higher.
 *
 * Output per N: a human-readable block, then
 *   RESULT bench=safepoint threads=N ttsp_p50_us=.. ttsp_p99_us=..
 *          ttsp_max_us=.. rt_p50_us=.. rt_p99_us=.. pauses=.. ...
 * Further key=value fields follow (rt_max, rcgc's own figures as lib_*,
 * the bare handshake as hs_*, ping-pong as pp_* and pp_idle_*,
 * mutator_mops, watchdog, cores);
 * consumers should look fields up by key.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/lib/bench_util.h"
#include "lib/safepoint.h"
#include "rcgc.h"

/* ------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------ */
static const char *opt_threads = "1,2,4";
static double opt_seconds = BENCH_SANITIZER ? 0.3 : 2.0;
static double opt_hs_seconds = BENCH_SANITIZER ? 0.1 : 1.0;
static double opt_pp_seconds = BENCH_SANITIZER ? 0.1 : 0.5;
static unsigned long opt_interval_us = 1000;
static unsigned long opt_work = 32;

static const bench_opt options[] = {
    { "threads", BENCH_OPT_STRING, &opt_threads, 0, 0, NULL,
      "mutator thread counts, comma-separated (the requester is one more)", NULL },
    { "seconds", BENCH_OPT_DOUBLE, &opt_seconds, 0, 0, NULL, "pause phase per thread count", NULL },
    { "hs-seconds", BENCH_OPT_DOUBLE, &opt_hs_seconds, 0, 0, NULL,
      "bare handshake phase per thread count", NULL },
    { "pp-seconds", BENCH_OPT_DOUBLE, &opt_pp_seconds, 0, 0, NULL,
      "ping-pong phase per thread count (and idle)", NULL },
    { "interval-us", BENCH_OPT_ULONG, &opt_interval_us, 0, 1000000, NULL,
      "requester's sleep between pauses (and between pings)", NULL },
    { "work", BENCH_OPT_ULONG, &opt_work, 0, 1000000, NULL,
      "arithmetic rounds per mutator iteration, between polls", NULL },
};

#define MAX_THREADS 1024

/* ------------------------------------------------------------------------
 * Samples and percentiles
 * ------------------------------------------------------------------------ */
typedef struct samples {
    uint64_t *v;        /* nanoseconds */
    size_t n, cap;
} samples;

static void samples_add(samples *s, uint64_t ns) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = realloc(s->v, s->cap * sizeof s->v[0]);
        if (!s->v)
            bench_die("out of memory for samples");
    }
    s->v[s->n++] = ns;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct pct { double p50, p99, max; } pct;   /* microseconds */

/* Nearest-rank percentiles (sorts s in place); zeros when empty. */
static pct percentiles(samples *s) {
    pct r = { 0, 0, 0 };
    if (!s->n)
        return r;
    qsort(s->v, s->n, sizeof s->v[0], cmp_u64);
    size_t i50 = (s->n * 50 + 99) / 100, i99 = (s->n * 99 + 99) / 100;   /* ceil(p n) */
    r.p50 = (double)s->v[i50 ? i50 - 1 : 0] / 1e3;
    r.p99 = (double)s->v[i99 ? i99 - 1 : 0] / 1e3;
    r.max = (double)s->v[s->n - 1] / 1e3;
    return r;
}

/* ------------------------------------------------------------------------
 * Mutators
 * ------------------------------------------------------------------------ */
static const rcgc_type obj_type = { "safepoint_bench.obj", 32, NULL, NULL, NULL, NULL, 0 };

typedef struct mutator {
    /* Iterations done: the owner stores its running total (relaxed, its
     * own cache line) every iteration; main reads it (relaxed) to compute
     * the rate of a phase and to see that the mutator runs. */
    _Alignas(BENCH_CACHE_LINE) _Atomic uint64_t iters;
    unsigned id;
    uint64_t sink;              /* keeps the arithmetic alive; read after join */
    pthread_t thread;
} mutator;

static _Alignas(BENCH_CACHE_LINE) _Atomic int mutators_stop;   /* relaxed: carries no data */
static pthread_barrier_t mutators_ready;

/* The bare handshake (phase 3). `requested` is read by the mutators
 * without the lock (relaxed: it only sends them to the lock, where the
 * fields are read again); everything else is under `lock`. */
static struct {
    _Alignas(BENCH_CACHE_LINE) _Atomic int requested;
    pthread_mutex_t lock;
    pthread_cond_t all_arrived;     /* main waits */
    pthread_cond_t resume;          /* parked mutators wait */
    unsigned n, arrived;            /* lock */
    uint64_t gen;                   /* lock: bumped at each release */
} hs = { .lock = PTHREAD_MUTEX_INITIALIZER,
         .all_arrived = PTHREAD_COND_INITIALIZER,
         .resume = PTHREAD_COND_INITIALIZER };

/* A mutator saw the flag: count itself in and park until released. */
__attribute__((noinline)) static void hs_park(void) {
    rcgc_blocking_begin();
    pthread_mutex_lock(&hs.lock);
    if (atomic_load_explicit(&hs.requested, memory_order_relaxed)) {
        uint64_t gen = hs.gen;
        if (++hs.arrived == hs.n)
            pthread_cond_signal(&hs.all_arrived);
        while (hs.gen == gen)
            pthread_cond_wait(&hs.resume, &hs.lock);
    }
    pthread_mutex_unlock(&hs.lock);
    rcgc_blocking_end();
}

/* Main, in a blocking region: stop every mutator, then release them.
 * *stopped and *released get the times the calls return at. */
static void hs_stop_release(uint64_t *stopped, uint64_t *released) {
    pthread_mutex_lock(&hs.lock);
    hs.arrived = 0;
    atomic_store_explicit(&hs.requested, 1, memory_order_relaxed);
    while (hs.arrived < hs.n)
        pthread_cond_wait(&hs.all_arrived, &hs.lock);
    *stopped = bench_now_ns();
    atomic_store_explicit(&hs.requested, 0, memory_order_relaxed);
    hs.gen++;
    pthread_cond_broadcast(&hs.resume);
    pthread_mutex_unlock(&hs.lock);
    *released = bench_now_ns();
}

static void *mutator_main(void *arg) {
    mutator *m = arg;
    if (rcgc_thread_attach() != 0)
        bench_die("rcgc_thread_attach failed in mutator %u", m->id);
    char name[16];
    snprintf(name, sizeof name, "mutator-%u", m->id);
    rcgc_thread_set_name(name);

    rcgc_blocking_begin();      /* a barrier wait is a blocking call */
    pthread_barrier_wait(&mutators_ready);
    rcgc_blocking_end();

    uint64_t x = bench_mix64(m->id + 1), n = 0;
    const unsigned long work = opt_work;
    while (!atomic_load_explicit(&mutators_stop, memory_order_relaxed)) {
        uint64_t *o = rcgc_new(&obj_type);     /* polls */
        if (!o)
            bench_die("rcgc_new failed in mutator %u: %s", m->id, strerror(errno));
        o[0] = x;
        for (unsigned long k = 0; k < work; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            o[k & 3] += x;
        }
        x += o[0] ^ o[1] ^ o[2] ^ o[3];
        rcgc_decref(o);                         /* count 1 -> 0: freed */
        rcgc_safepoint();
        if (__builtin_expect(atomic_load_explicit(&hs.requested, memory_order_relaxed), 0))
            hs_park();
        atomic_store_explicit(&m->iters, ++n, memory_order_relaxed);
    }
    m->sink = x;
    rcgc_thread_detach();
    return NULL;
}

static uint64_t mutator_iters(mutator *ms, unsigned n) {
    uint64_t sum = 0;
    for (unsigned i = 0; i < n; i++)
        sum += atomic_load_explicit(&ms[i].iters, memory_order_relaxed);
    return sum;
}

/* Record where every mutator stands (at the end of a round). */
static void mutators_mark(mutator *ms, unsigned n, uint64_t *mark) {
    for (unsigned i = 0; i < n; i++)
        mark[i] = atomic_load_explicit(&ms[i].iters, memory_order_relaxed);
}

/* Between rounds, main in a blocking region: sleep the interval, then wait
 * until every mutator has moved past its mark (see "Settling" above).
 * Returns 0 if they all did, 1 if it gave up after 100 ms. */
static int settle(mutator *ms, unsigned n, const uint64_t *mark) {
    bench_sleep_ns((uint64_t)opt_interval_us * 1000u);
    uint64_t give_up = bench_now_ns() + 100u * 1000 * 1000;
    unsigned i = 0;
    while (i < n) {
        if (atomic_load_explicit(&ms[i].iters, memory_order_relaxed) != mark[i]) {
            i++;
            continue;
        }
        if (bench_now_ns() >= give_up)
            return 1;
        bench_sleep_ns(50 * 1000);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Condition-variable ping-pong (the OS floor)
 * ------------------------------------------------------------------------ */
typedef struct pingpong {
    pthread_mutex_t lock;
    pthread_cond_t ping, pong;
    int turn;                   /* lock: 1 the partner's, 0 main's */
    int quit;                   /* lock */
    pthread_t thread;
} pingpong;

static void *partner_main(void *arg) {
    pingpong *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->turn != 1 && !p->quit)
            pthread_cond_wait(&p->ping, &p->lock);
        if (p->quit)
            break;
        p->turn = 0;
        pthread_cond_signal(&p->pong);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Ping-pong rounds for `seconds`, one every interval; round trips into s.
 * Called from main in a blocking region. */
static void pingpong_run(double seconds, samples *s) {
    pingpong p = { .lock = PTHREAD_MUTEX_INITIALIZER,
                   .ping = PTHREAD_COND_INITIALIZER,
                   .pong = PTHREAD_COND_INITIALIZER };
    if (pthread_create(&p.thread, NULL, partner_main, &p) != 0)
        bench_die("pthread_create (ping-pong partner) failed");
    uint64_t deadline = bench_now_ns() + (uint64_t)(seconds * 1e9);
    while (bench_now_ns() < deadline) {
        bench_sleep_ns((uint64_t)opt_interval_us * 1000u);
        uint64_t t0 = bench_now_ns();
        pthread_mutex_lock(&p.lock);
        p.turn = 1;
        pthread_cond_signal(&p.ping);
        while (p.turn != 0)
            pthread_cond_wait(&p.pong, &p.lock);
        pthread_mutex_unlock(&p.lock);
        samples_add(s, bench_now_ns() - t0);
    }
    pthread_mutex_lock(&p.lock);
    p.quit = 1;
    pthread_cond_signal(&p.ping);
    pthread_mutex_unlock(&p.lock);
    pthread_join(p.thread, NULL);
}

/* ------------------------------------------------------------------------
 * One thread count
 * ------------------------------------------------------------------------ */
static void run_one(unsigned n, long cores, const pct *idle) {
    mutator *ms = bench_xalloc(sizeof(mutator) * n);
    atomic_store_explicit(&mutators_stop, 0, memory_order_relaxed);
    if (pthread_barrier_init(&mutators_ready, NULL, n + 1) != 0)
        bench_die("pthread_barrier_init failed");
    for (unsigned i = 0; i < n; i++) {
        ms[i].id = i;
        int rc = pthread_create(&ms[i].thread, NULL, mutator_main, &ms[i]);
        if (rc)
            bench_die("pthread_create (mutator %u of %u): %s", i + 1, n, strerror(rc));
    }
    rcgc_blocking_begin();
    pthread_barrier_wait(&mutators_ready);
    rcgc_blocking_end();

    /* Pause phase. */
    samples ttsp = { 0 }, rt = { 0 };
    uint64_t *mark = bench_xalloc(sizeof(uint64_t) * n);
    unsigned unsettled = 0, hs_unsettled = 0;
    rcgc__pause_stats_reset();
    mutators_mark(ms, n, mark);
    uint64_t it0 = mutator_iters(ms, n), start = bench_now_ns();
    uint64_t deadline = start + (uint64_t)(opt_seconds * 1e9);
    while (bench_now_ns() < deadline) {
        rcgc_blocking_begin();
        unsettled += settle(ms, n, mark);
        rcgc_blocking_end();
        uint64_t t0 = bench_now_ns();
        rcgc__stop_the_world();
        uint64_t t1 = bench_now_ns();
        rcgc__start_the_world();
        uint64_t t2 = bench_now_ns();
        mutators_mark(ms, n, mark);
        samples_add(&ttsp, t1 - t0);
        samples_add(&rt, t2 - t0);
    }
    double phase_s = (double)(bench_now_ns() - start) / 1e9;
    double mops = (double)(mutator_iters(ms, n) - it0) / phase_s / 1e6;
    rcgc_stats st;
    rcgc_stats_get(&st);

    /* Bare handshake and ping-pong phases, same load, no rcgc pause. */
    samples hs_stop = { 0 }, hs_rt = { 0 }, pp = { 0 };
    rcgc_blocking_begin();
    pthread_mutex_lock(&hs.lock);
    hs.n = n;
    pthread_mutex_unlock(&hs.lock);
    deadline = bench_now_ns() + (uint64_t)(opt_hs_seconds * 1e9);
    mutators_mark(ms, n, mark);
    while (bench_now_ns() < deadline) {
        hs_unsettled += settle(ms, n, mark);
        uint64_t t0 = bench_now_ns(), t1, t2;
        hs_stop_release(&t1, &t2);
        mutators_mark(ms, n, mark);
        samples_add(&hs_stop, t1 - t0);
        samples_add(&hs_rt, t2 - t0);
    }
    pingpong_run(opt_pp_seconds, &pp);
    rcgc_blocking_end();

    atomic_store_explicit(&mutators_stop, 1, memory_order_relaxed);
    uint64_t sink = 0;
    rcgc_blocking_begin();
    for (unsigned i = 0; i < n; i++) {
        pthread_join(ms[i].thread, NULL);
        sink ^= ms[i].sink;
    }
    rcgc_blocking_end();
    pthread_barrier_destroy(&mutators_ready);

    size_t pauses = ttsp.n;
    pct t = percentiles(&ttsp), r = percentiles(&rt), q = percentiles(&pp);
    pct h = percentiles(&hs_stop), hr = percentiles(&hs_rt);
    printf("\n%u mutator thread%s (+ the requester), %ld core%s, %.1f s, %zu pauses, mutators "
           "%.2f M iterations/s\n",
           n, n == 1 ? "" : "s", cores, cores == 1 ? "" : "s", phase_s, pauses, mops);
    printf("  %-28s %10s %10s %10s\n", "microseconds", "p50", "p99", "max");
    printf("  %-28s %10.1f %10.1f %10.1f\n", "time to safepoint", t.p50, t.p99, t.max);
    printf("  %-28s %10.1f %10.1f %10.1f\n", "pause round trip", r.p50, r.p99, r.max);
    printf("  %-28s %10.1f %10.1f %10.1f\n", "rcgc_stats time to safepoint",
           (double)st.ttsp_p50_ns / 1e3, (double)st.ttsp_p99_ns / 1e3, (double)st.ttsp_max_ns / 1e3);
    printf("  %-28s %10.1f %10.1f %10.1f\n", "bare handshake: stop", h.p50, h.p99, h.max);
    printf("  %-28s %10.1f %10.1f %10.1f\n", "bare handshake: round trip", hr.p50, hr.p99, hr.max);
    printf("  %-28s %10.1f %10.1f %10.1f\n", "condvar ping-pong, same load", q.p50, q.p99, q.max);
    printf("  %-28s %10.1f %10.1f %10.1f\n", "condvar ping-pong, idle", idle->p50, idle->p99,
           idle->max);
    if (st.pauses != pauses)
        printf("  warning: rcgc_stats counts %" PRIu64 " pauses, we made %zu\n", st.pauses, pauses);
    if (unsettled || hs_unsettled)
        printf("  note: %u pause(s) and %u handshake(s) started before every mutator had run again "
               "(gave up after 100 ms)\n", unsettled, hs_unsettled);
    if (st.watchdog_reports)
        printf("  warning: the pause watchdog reported %" PRIu64 " time(s)\n", st.watchdog_reports);
    printf("RESULT bench=safepoint threads=%u ttsp_p50_us=%.2f ttsp_p99_us=%.2f ttsp_max_us=%.2f "
           "rt_p50_us=%.2f rt_p99_us=%.2f pauses=%zu rt_max_us=%.2f "
           "lib_ttsp_p50_us=%.2f lib_ttsp_p99_us=%.2f lib_ttsp_max_us=%.2f lib_pauses=%" PRIu64 " "
           "hs_p50_us=%.2f hs_p99_us=%.2f hs_max_us=%.2f hs_rt_p50_us=%.2f hs_rt_p99_us=%.2f hs_rounds=%zu "
           "pp_p50_us=%.2f pp_p99_us=%.2f pp_max_us=%.2f "
           "pp_idle_p50_us=%.2f pp_idle_p99_us=%.2f pp_idle_max_us=%.2f "
           "mutator_mops=%.3f unsettled=%u hs_unsettled=%u watchdog=%" PRIu64 " cores=%ld seconds=%.2f work=%lu interval_us=%lu "
           "sink=%" PRIu64 "\n",
           n, t.p50, t.p99, t.max, r.p50, r.p99, pauses, r.max, (double)st.ttsp_p50_ns / 1e3,
           (double)st.ttsp_p99_ns / 1e3, (double)st.ttsp_max_ns / 1e3, st.pauses, h.p50, h.p99, h.max,
           hr.p50, hr.p99, hs_stop.n, q.p50, q.p99,
           q.max, idle->p50, idle->p99, idle->max, mops, unsettled, hs_unsettled, st.watchdog_reports, cores, phase_s,
           opt_work, opt_interval_us, sink & 0xff);
    fflush(stdout);
    free(ttsp.v);
    free(rt.v);
    free(pp.v);
    free(hs_stop.v);
    free(hs_rt.v);
    free(mark);
    free(ms);
}

int main(int argc, char **argv) {
    bench_parse_options(argc, argv,
                        "Time to safepoint and pause round trip of rcgc's stop-the-world, beside a "
                        "condvar ping-pong.",
                        options, sizeof options / sizeof options[0]);
    unsigned list[64];
    size_t nlist = 0;
    for (const char *p = opt_threads; *p;) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || errno || v < 1 || v > MAX_THREADS || (*end && *end != ','))
            bench_die("--threads wants a comma-separated list of 1..%d, not '%s'", MAX_THREADS,
                      opt_threads);
        if (nlist == sizeof list / sizeof list[0])
            bench_die("--threads: at most %zu thread counts", sizeof list / sizeof list[0]);
        list[nlist++] = (unsigned)v;
        p = *end ? end + 1 : end;
    }
    if (!nlist)
        bench_die("--threads is empty");

    int err = rcgc_init(NULL);
    if (err)
        bench_die("rcgc_init: %s", strerror(err));
    rcgc_thread_set_name("requester");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("safepoint_bench: rcgc %d.%d, pause phase %.1f s, ping-pong %.1f s, a pause every %lu "
           "us, %lu arithmetic rounds per mutator iteration (a benchmark, not a test)\n",
           RCGC_VERSION_MAJOR, RCGC_VERSION_MINOR, opt_seconds, opt_pp_seconds, opt_interval_us,
           opt_work);

    samples idle = { 0 };
    rcgc_blocking_begin();
    pingpong_run(opt_pp_seconds, &idle);
    rcgc_blocking_end();
    pct idle_p = percentiles(&idle);
    free(idle.v);

    for (size_t i = 0; i < nlist; i++)
        run_one(list[i], cores, &idle_p);
    rcgc_shutdown();
    return 0;
}
