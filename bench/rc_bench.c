/*
 * rc_bench: the cost of reference counting, rcgc's biased counts against a
 * plain (non-atomic) counter and an atomic (lock-prefixed) one, measured in
 * the same run. A benchmark, not a test.
 *
 *   owner      incref+decref pairs by the object's owner thread
 *   nonowner   pairs by a thread that does not own the object (atomics)
 *   shared2    two threads counting the same object at once
 *
 * Peers: plain  `c++; c--` on a counter in memory
 *        atomic `lock add/sub` (__atomic_fetch_add, seq_cst)
 * Every loop body has the same compiler barrier, so no variant's pair is
 * optimised away while another's is not. Every loop polls rcgc_safepoint()
 * once per POLL_EVERY pairs (the rcgc contract for long loops; one load and
 * a branch per 64K pairs, the same for every variant).
 *
 *   rc_bench [--iters=N] [--reps=N] [--csv=FILE]
 *
 * Output: one line per (workload, variant): median and min-max of ns per
 * pair over --reps repetitions (the variants take turns within each
 * repetition, so drift of the machine spreads over all of them), a RESULT
 * line of key=value fields (ns per pair and the ratios the goals are stated
 * in), and a line comparing the ratios with the goals. --csv FILE writes
 * the per-variant figures as CSV (header included).
 */
#include <limits.h>
#include <pthread.h>
#include <rcgc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/lib/bench_util.h"

#define BARRIER() __asm__ volatile("" ::: "memory")
#define POLL_EVERY 65536L

static unsigned long iters = 20000000;
static unsigned long reps = 5;
static const char *csv_path;
static FILE *csv;

static const rcgc_type obj_type = {"bench.obj", 16, NULL, NULL, NULL, NULL, 0};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------------
 * Loops: ns per incref+decref pair
 * ------------------------------------------------------------------------ */

/* n pairs of INC; DEC, in chunks of POLL_EVERY with a safepoint poll
 * between chunks (a no-op on an unattached thread). */
#define PAIR_LOOP(n, INC, DEC)                                           \
    do {                                                                 \
        for (long i_ = 0; i_ < (n); i_ += POLL_EVERY) {                  \
            long m_ = (n) - i_ < POLL_EVERY ? (n) - i_ : POLL_EVERY;     \
            for (long j_ = 0; j_ < m_; j_++) {                           \
                INC;                                                     \
                BARRIER();                                               \
                DEC;                                                     \
                BARRIER();                                               \
            }                                                            \
            rcgc_safepoint();                                            \
        }                                                                \
    } while (0)

static double loop_plain(long *c, long n) {
    double t0 = now_s();
    PAIR_LOOP(n, (*c)++, (*c)--);
    return (now_s() - t0) * 1e9 / (double)n;
}

static double loop_atomic(long *c, long n) {
    double t0 = now_s();
    PAIR_LOOP(n, __atomic_fetch_add(c, 1, __ATOMIC_SEQ_CST), __atomic_fetch_sub(c, 1, __ATOMIC_SEQ_CST));
    return (now_s() - t0) * 1e9 / (double)n;
}

static double loop_rcgc(void *o, long n) {
    double t0 = now_s();
    PAIR_LOOP(n, rcgc_incref(o), rcgc_decref(o));
    return (now_s() - t0) * 1e9 / (double)n;
}

/* ------------------------------------------------------------------------
 * Two threads at once
 * ------------------------------------------------------------------------ */

typedef struct {
    int kind;               /* 1 atomic, 2 rcgc */
    long *counter;
    void *obj;
    pthread_barrier_t *start;
    double ns;
} pair_arg;

static void *pair_thread(void *p) {
    pair_arg *a = p;
    if (a->kind == 2 && rcgc_thread_attach() != 0)
        bench_die("rcgc_thread_attach failed");
    if (a->kind == 2)
        rcgc_blocking_begin();      /* barrier waits are blocking calls */
    pthread_barrier_wait(a->start);
    if (a->kind == 2)
        rcgc_blocking_end();
    a->ns = a->kind == 1 ? loop_atomic(a->counter, (long)iters) : loop_rcgc(a->obj, (long)iters);
    if (a->kind == 2)
        rcgc_thread_detach();
    return NULL;
}

/* Two threads: the calling (owner) thread and one other. Returns the slower
 * thread's ns per pair (both run the same number of pairs). The caller is
 * attached (rcgc_init), so its waits are blocking regions in every case. */
static double two_threads(int kind, long *counter, void *obj) {
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    pair_arg other = {kind, counter, obj, &start, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, pair_thread, &other) != 0)
        bench_die("pthread_create failed");
    rcgc_blocking_begin();
    pthread_barrier_wait(&start);
    rcgc_blocking_end();
    double mine = kind == 1 ? loop_atomic(counter, (long)iters) : loop_rcgc(obj, (long)iters);
    rcgc_blocking_begin();
    pthread_join(t, NULL);
    rcgc_blocking_end();
    pthread_barrier_destroy(&start);
    return mine > other.ns ? mine : other.ns;
}

/* ------------------------------------------------------------------------
 * Non-owner: an object owned by a thread that stays attached
 * ------------------------------------------------------------------------ */

typedef struct {
    void *obj;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int state;              /* 1: object made; 2: may exit */
} owner_ctx;

static void *owner_thread(void *p) {
    owner_ctx *c = p;
    if (rcgc_thread_attach() != 0)
        bench_die("rcgc_thread_attach failed");
    void *o = rcgc_new(&obj_type);
    rcgc_incref(o);         /* one for the benchmark thread */
    pthread_mutex_lock(&c->lock);
    c->obj = o;
    c->state = 1;
    pthread_cond_broadcast(&c->cond);
    rcgc_blocking_begin();
    while (c->state != 2)
        pthread_cond_wait(&c->cond, &c->lock);
    rcgc_blocking_end();
    pthread_mutex_unlock(&c->lock);
    rcgc_decref(o);
    rcgc_thread_detach();
    return NULL;
}

/* ------------------------------------------------------------------------
 * Reporting
 * ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    double (*fn)(void *ctx);
    double *samples;        /* reps of them */
    double med, min, max;
} variant;

/* Run every variant once per repetition, in turn (a variant's repetitions
 * spread over the whole measurement), then reduce to median, min, max
 * (median of an even count: the mean of the middle two). */
static void measure(variant *v, int n) {
    for (int i = 0; i < n; i++)
        v[i].samples = bench_xalloc(reps * sizeof(double));
    for (unsigned long r = 0; r < reps; r++)
        for (int i = 0; i < n; i++)
            v[i].samples[r] = v[i].fn(NULL);
    for (int i = 0; i < n; i++) {
        double *s = v[i].samples;
        qsort(s, reps, sizeof *s, cmp_d);
        v[i].med = reps % 2 ? s[reps / 2] : (s[reps / 2 - 1] + s[reps / 2]) / 2;
        v[i].min = s[0];
        v[i].max = s[reps - 1];
        free(s);
        v[i].samples = NULL;
    }
}

static void report(const char *workload, variant *v, int n) {
    for (int i = 0; i < n; i++) {
        printf("  %-9s %-8s %8.3f ns/pair  (min %.3f, max %.3f)\n", workload, v[i].name, v[i].med,
               v[i].min, v[i].max);
        if (csv)
            fprintf(csv, "%s,%s,%.4f,%.4f,%.4f,%lu\n", workload, v[i].name, v[i].med, v[i].min,
                    v[i].max, reps);
    }
}

static const bench_opt options[] = {
    { "iters", BENCH_OPT_ULONG, &iters, 1, LONG_MAX / 2, NULL, "incref+decref pairs per measurement", NULL },
    { "reps", BENCH_OPT_ULONG, &reps, 1, 1000, NULL, "repetitions of each measurement", NULL },
    { "csv", BENCH_OPT_STRING, &csv_path, 0, 0, NULL, "write the figures as CSV to this file", NULL },
};

/* Measurement closures. */
static long plain_counter, atomic_counter;
static void *own_obj, *foreign_obj;
static double m_plain(void *c) { (void)c; return loop_plain(&plain_counter, (long)iters); }
static double m_atomic(void *c) { (void)c; return loop_atomic(&atomic_counter, (long)iters); }
static double m_rcgc_own(void *c) { (void)c; return loop_rcgc(own_obj, (long)iters); }
static double m_rcgc_foreign(void *c) { (void)c; return loop_rcgc(foreign_obj, (long)iters); }
static double m_two_atomic(void *c) { (void)c; return two_threads(1, &atomic_counter, NULL); }
static double m_two_rcgc(void *c) { (void)c; return two_threads(2, NULL, own_obj); }

int main(int argc, char **argv) {
    bench_parse_options(argc, argv, "Reference counting: rcgc against plain and atomic counters.",
                        options, sizeof options / sizeof options[0]);
    if (csv_path) {
        csv = fopen(csv_path, "w");
        if (!csv) {
            perror(csv_path);
            return 1;
        }
        fprintf(csv, "workload,variant,median_ns,min_ns,max_ns,reps\n");
    }
    if (rcgc_init(NULL) != 0) {
        fprintf(stderr, "rc_bench: rcgc_init failed\n");
        return 1;
    }
    own_obj = rcgc_new(&obj_type);

    owner_ctx oc = {NULL, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    pthread_t ot;
    if (pthread_create(&ot, NULL, owner_thread, &oc) != 0)
        bench_die("pthread_create failed");
    rcgc_blocking_begin();
    pthread_mutex_lock(&oc.lock);
    while (oc.state != 1)
        pthread_cond_wait(&oc.cond, &oc.lock);
    foreign_obj = oc.obj;
    pthread_mutex_unlock(&oc.lock);
    rcgc_blocking_end();

    printf("rc_bench: %lu pairs per measurement, %lu repetitions, medians (a benchmark, not a test)\n",
           iters, reps);
    variant one[4] = {
        { .name = "plain", .fn = m_plain },
        { .name = "atomic", .fn = m_atomic },
        { .name = "owner", .fn = m_rcgc_own },
        { .name = "nonowner", .fn = m_rcgc_foreign },
    };
    variant two[2] = {
        { .name = "atomic", .fn = m_two_atomic },
        { .name = "rcgc", .fn = m_two_rcgc },
    };
    measure(one, 4);
    report("1thread", one, 4);
    measure(two, 2);
    report("2threads", two, 2);

    double owner_vs_plain = one[2].med / one[0].med;
    double atomic_vs_owner = one[1].med / one[2].med;
    double nonowner_vs_atomic = one[3].med / one[1].med;
    double shared_vs_atomic = two[1].med / two[0].med;
    printf("RESULT bench=rc plain_ns=%.3f atomic_ns=%.3f owner_ns=%.3f nonowner_ns=%.3f "
           "two_atomic_ns=%.3f two_rcgc_ns=%.3f owner_over_plain=%.2f atomic_over_owner=%.2f "
           "nonowner_over_atomic=%.2f two_rcgc_over_atomic=%.2f iters=%lu reps=%lu\n",
           one[0].med, one[1].med, one[2].med, one[3].med, two[0].med, two[1].med, owner_vs_plain,
           atomic_vs_owner, nonowner_vs_atomic, shared_vs_atomic, iters, reps);
    printf("goals: owner/plain %.2fx (<= 1.5x: %s), atomic/owner %.2fx (>= 3x: %s), "
           "two threads rcgc/atomic %.2fx (<= 1.0x: %s)\n",
           owner_vs_plain, owner_vs_plain <= 1.5 ? "met" : "MISSED", atomic_vs_owner,
           atomic_vs_owner >= 3.0 ? "met" : "MISSED", shared_vs_atomic,
           shared_vs_atomic <= 1.0 ? "met" : "MISSED");

    pthread_mutex_lock(&oc.lock);
    oc.state = 2;
    pthread_cond_broadcast(&oc.cond);
    pthread_mutex_unlock(&oc.lock);
    rcgc_decref(foreign_obj);
    rcgc_blocking_begin();
    pthread_join(ot, NULL);
    rcgc_blocking_end();
    rcgc_decref(own_obj);
    rcgc_shutdown();
    if (csv)
        fclose(csv);
    return 0;
}
