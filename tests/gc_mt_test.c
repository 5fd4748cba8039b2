/*
 * gc_mt_test: the cycle collector with many threads (lib/gc.c with
 * lib/refcount.c and lib/safepoint.c): cycles whose members different
 * threads own, a collector looping while mutators change a shared graph,
 * introspection racing allocation, thresholds changed under load, and
 * freeze with objects waiting in a merge queue (CPython GH-142975).
 *
 * Threads attach, poll rcgc_safepoint() in their loops, and wait only in
 * blocking regions (test_gate_wait, gt_join), as rcgc.h asks: a collection
 * stops the world and waits for every attached thread. Each timed test
 * runs for a fixed wall time (shorter without sanitizers), so that it stays
 * well under 30 s under TSan on two cores.
 *
 * Checks on other threads record failures (gt_bad, flags) or use
 * THREAD_CHECK; the test's thread asserts after joining them.
 */
#include <sched.h>
#include <time.h>

#include "lib/object.h"
#include "lib/thread.h"

#include "tests/gc_test_util.h"

#define SCALE(normal, sanitized) TEST_SCALE(normal, sanitized)
#define THREAD_CHECK(cond) TEST_THREAD_CHECK(cond)

static int setup(void **state) {
    (void)state;
    gt_reset();
    setenv("RCGC_GC_PAGES_PER_WORKER", "1", 0);   /* the parallel paths, on small heaps */
    if (rcgc_init(NULL) != 0)
        return -1;
    rcgc_gc_disable();      /* collections only when a test asks */
    return 0;
}

static int teardown(void **state) {
    atomic_store(&gt_finalize_hook, NULL);
    return test_rcgc_teardown(state);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Yield the CPU from an attached thread without holding up a pause. */
static void polite_yield(void) {
    rcgc_safepoint();
    rcgc_blocking_begin();
    sched_yield();
    rcgc_blocking_end();
}

static void blocking_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    rcgc_blocking_begin();
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    rcgc_blocking_end();
}

/* Wait (attached) until *v >= want. */
static void wait_at_least(_Atomic int *v, int want) {
    while (atomic_load(v) < want)
        polite_yield();
}

static uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* ------------------------------------------------------------------------
 * Cycles whose members different threads own
 * ------------------------------------------------------------------------ */

#define XR_MAX_THREADS 8

typedef struct {
    int nthreads, rings, len;
    int detach_odd;             /* odd-numbered threads detach before the collection */
    gt_node **nodes;            /* rings * len; node j of ring k is made by thread j % nthreads */
    test_gate step;             /* 1: link, 2: drop, 3: finish */
    _Atomic int allocated, linked, dropped;
} xring_ctx;

typedef struct {
    xring_ctx *c;
    int index;
} xring_arg;

static void *xring_worker(void *p) {
    xring_arg *a = p;
    xring_ctx *c = a->c;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    int n = c->rings * c->len;
    for (int i = 0; i < n; i++)
        if ((i % c->len) % c->nthreads == a->index) {
            c->nodes[i] = gt_new(&gt_node_type);
            THREAD_CHECK(c->nodes[i] != NULL);
        }
    atomic_fetch_add(&c->allocated, 1);
    test_gate_wait(&c->step, 1);
    /* Link our nodes to their successors, which other threads own: the
     * increments go to the successors' shared counts. */
    for (int i = 0; i < n; i++) {
        int k = i / c->len, j = i % c->len;
        if (j % c->nthreads == a->index)
            gt_link(c->nodes[i], 0, c->nodes[k * c->len + (j + 1) % c->len]);
        if ((i & 63) == 0)
            rcgc_safepoint();
    }
    atomic_fetch_add(&c->linked, 1);
    test_gate_wait(&c->step, 2);
    for (int i = 0; i < n; i++)
        if ((i % c->len) % c->nthreads == a->index)
            rcgc_decref(c->nodes[i]);   /* our birth references */
    if (c->detach_odd && (a->index & 1)) {
        rcgc_thread_detach();           /* merges what we own */
        atomic_fetch_add(&c->dropped, 1);
        test_gate_wait(&c->step, 3);
        return NULL;
    }
    atomic_fetch_add(&c->dropped, 1);
    test_gate_wait(&c->step, 3);        /* attached, blocked: the collection goes on */
    rcgc_thread_detach();
    return NULL;
}

static void xring_run(int nthreads, int rings, int len, int detach_odd) {
    static xring_ctx c;    /* static: teardown may open its gate after we return */
    memset(&c, 0, sizeof c);
    c.nthreads = nthreads;
    c.rings = rings;
    c.len = len;
    c.detach_odd = detach_odd;
    size_t n = (size_t)rings * (size_t)len;
    c.nodes = calloc(n, sizeof *c.nodes);
    uint32_t *ids = calloc(n, sizeof *ids);
    assert_true(c.nodes && ids);
    test_gate_init(&c.step);
    xring_arg args[XR_MAX_THREADS];
    pthread_t th[XR_MAX_THREADS];
    for (int i = 0; i < nthreads; i++) {
        args[i] = (xring_arg){&c, i};
        th[i] = test_thread_start(xring_worker, &args[i]);
    }
    wait_at_least(&c.allocated, nthreads);
    for (size_t i = 0; i < n; i++)
        ids[i] = c.nodes[i]->id;
    test_gate_set(&c.step, 1);
    wait_at_least(&c.linked, nthreads);
    test_gate_set(&c.step, 2);
    wait_at_least(&c.dropped, nthreads);
    assert_int_equal(atomic_load(&gt_destroys), 0);     /* cycles: nothing died */

    size_t found = rcgc_collect();
    test_gate_set(&c.step, 3);
    for (int i = 0; i < nthreads; i++)
        gt_join(th[i]);
    assert_int_equal(found, n);
    for (size_t i = 0; i < n; i++) {
        gt_assert_died(ids[i]);
        /* Garbage that other threads own is freed by the collecting thread. */
        if (!pthread_equal((pthread_t)atomic_load(&gt_destroy_thread[ids[i]]), pthread_self()))
            fail_msg("node %zu (owned by thread %d) was destroyed on another thread", i,
                     (int)((i % (size_t)len) % (size_t)nthreads));
    }
    assert_int_equal(atomic_load(&gt_destroys), n);
    assert_int_equal(rcgc_collect(), 0);
    free(c.nodes);
    free(ids);
    gt_assert_clean();
}

/* Two threads, each owning one half of every 2-cycle; both stay attached. */
static void test_cross_thread_pairs(void **state) {
    TEST_BEGIN(state);
    xring_run(2, SCALE(500, 100), 2, 0);
}

/* Rings through four threads, two of which detach before the collection. */
static void test_cross_thread_rings(void **state) {
    TEST_BEGIN(state);
    xring_run(4, SCALE(50, 10), SCALE(100, 40), 1);
}

/* ------------------------------------------------------------------------
 * A collector looping while mutators change a shared graph
 * ------------------------------------------------------------------------ */

#define MUTATORS 3
#define SLOTS_PER_MUTATOR 16
#define NSLOTS (MUTATORS * SLOTS_PER_MUTATOR)
#define NWEAK 8

typedef struct {
    void *slots[NSLOTS];        /* roots: slot s is written by mutator s % MUTATORS */
    _Atomic int stop;
    _Atomic int started;
    _Atomic int finished;       /* mutators that reached their step limit */
    long limit;                 /* steps per mutator (bounds the work under sanitizers) */
    _Atomic long iters[MUTATORS];
    _Atomic long loads, weak_hits;
    _Atomic long collections;
    _Atomic size_t found;
    _Atomic int bad;
    _Atomic uint32_t bad_line;
} graph_ctx;

static graph_ctx graph;

#define GRAPH_CHECK(cond)                                  \
    do {                                                   \
        if (!(cond)) {                                     \
            atomic_store(&graph.bad, 1);                   \
            atomic_store(&graph.bad_line, __LINE__);       \
        }                                                  \
    } while (0)

static void check_live(gt_node *n) {
    GRAPH_CHECK(n->canary == GT_CANARY_ALIVE);
    GRAPH_CHECK(n->value == gt_value(n->id));
}

typedef struct {
    int index;
} mut_arg;

static void *graph_mutator(void *p) {
    int me = ((mut_arg *)p)->index;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(me + 1);
    rcgc_weakref *wr[NWEAK] = {0};
    atomic_fetch_add(&graph.started, 1);
    long it = 0;
    while (!atomic_load(&graph.stop) && it < graph.limit) {
        uint64_t r = xorshift(&rng);
        int own = me + MUTATORS * (int)((r >> 8) % SLOTS_PER_MUTATOR);
        int any = (int)((r >> 16) % NSLOTS);
        switch (r % 10) {
        case 0:
        case 1: {   /* a garbage cycle of 2 or 3 */
            gt_node *m[3];
            int len = 2 + (int)((r >> 24) & 1);
            for (int i = 0; i < len; i++)
                m[i] = gt_new_anon(&gt_shared_type);
            for (int i = 0; i < len; i++)
                gt_link(m[i], 0, m[(i + 1) % len]);
            for (int i = 0; i < len; i++)
                rcgc_decref(m[i]);
            break;
        }
        case 2:
        case 3: {   /* a new node referring to a loaded one, maybe back too; into our slot */
            gt_node *n = gt_new_anon(&gt_shared_type);
            gt_node *q = rcgc_load_ref(&graph.slots[any]);
            if (q) {
                check_live(q);
                gt_link(n, 0, q);
                if (r & (1u << 30))
                    gt_link(q, 1, n);   /* a cycle through another thread's object */
                rcgc_decref(q);
            }
            rcgc_set(&graph.slots[own], n);
            rcgc_decref(n);
            break;
        }
        case 4: {   /* read two levels down */
            gt_node *q = rcgc_load_ref(&graph.slots[any]);
            if (q) {
                check_live(q);
                atomic_fetch_add(&graph.loads, 1);
                for (int k = 0; k < GT_NREF; k++) {
                    gt_node *s = rcgc_load_ref(&q->ref[k]);
                    if (s) {
                        check_live(s);
                        rcgc_decref(s);
                    }
                }
                rcgc_decref(q);
            }
            break;
        }
        case 5:     /* drop a root */
            rcgc_set(&graph.slots[own], NULL);
            break;
        case 6:
        case 7: {   /* weak references to loaded objects */
            int k = (int)((r >> 32) % NWEAK);
            if (wr[k]) {
                gt_node *q = rcgc_weakref_get(wr[k]);
                if (q) {
                    check_live(q);
                    atomic_fetch_add(&graph.weak_hits, 1);
                    rcgc_decref(q);
                }
                if (r & (1u << 29)) {
                    rcgc_weakref_free(wr[k]);
                    wr[k] = NULL;
                }
            } else {
                gt_node *q = rcgc_load_ref(&graph.slots[any]);
                if (q) {
                    wr[k] = rcgc_weakref_new(q, NULL, NULL);
                    GRAPH_CHECK(wr[k] != NULL);
                    rcgc_decref(q);
                }
            }
            break;
        }
        default: {  /* rewire: a loaded object's field to another loaded object */
            gt_node *q = rcgc_load_ref(&graph.slots[any]);
            gt_node *s = rcgc_load_ref(&graph.slots[(any + 1 + (int)((r >> 40) % 7)) % NSLOTS]);
            if (q) {
                check_live(q);
                gt_link(q, 2 + (uint32_t)((r >> 48) & 1), s);
            }
            if (s)
                rcgc_decref(s);
            if (q)
                rcgc_decref(q);
            break;
        }
        }
        it++;
        rcgc_safepoint();
    }
    for (int s = me; s < NSLOTS; s += MUTATORS)
        rcgc_set(&graph.slots[s], NULL);
    for (int k = 0; k < NWEAK; k++)
        rcgc_weakref_free(wr[k]);
    atomic_store(&graph.iters[me], it);
    atomic_fetch_add(&graph.finished, 1);
    rcgc_thread_detach();
    return NULL;
}

static void *graph_collector(void *p) {
    (void)p;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    long k = 0;
    while (!atomic_load(&graph.stop)) {
        size_t n = (k % 3 == 0) ? rcgc_collect() : rcgc_collect_young();
        atomic_fetch_add(&graph.found, n);
        atomic_fetch_add(&graph.collections, 1);
        k++;
        polite_yield();
    }
    rcgc_thread_detach();
    return NULL;
}

static void test_collector_vs_mutators(void **state) {
    TEST_BEGIN(state);
    memset(&graph, 0, sizeof graph);
    graph.limit = SCALE(3000000, 100000);
    mut_arg args[MUTATORS];
    pthread_t th[MUTATORS + 1];
    for (int i = 0; i < MUTATORS; i++) {
        args[i].index = i;
        th[i] = test_thread_start(graph_mutator, &args[i]);
    }
    wait_at_least(&graph.started, MUTATORS);
    th[MUTATORS] = test_thread_start(graph_collector, NULL);
    double end = now_s() + SCALE(2.0, 6.0);
    while (now_s() < end && !atomic_load(&graph.bad) && atomic_load(&graph.finished) < MUTATORS)
        blocking_sleep_ms(20);
    atomic_store(&graph.stop, 1);
    for (int i = 0; i <= MUTATORS; i++)
        gt_join(th[i]);
    if (atomic_load(&graph.bad))
        fail_msg("a mutator saw a dead or damaged object (check at line %u)",
                 atomic_load(&graph.bad_line));
    gt_assert_clean();
    long iters = 0;
    for (int i = 0; i < MUTATORS; i++) {
        assert_true(atomic_load(&graph.iters[i]) > 0);
        iters += atomic_load(&graph.iters[i]);
    }
    print_message("(%ld mutator steps, %ld collections found %zu objects, %ld loads, %ld weak "
                  "hits)\n",
                  iters, atomic_load(&graph.collections), atomic_load(&graph.found),
                  atomic_load(&graph.loads), atomic_load(&graph.weak_hits));
    assert_true(atomic_load(&graph.collections) > 0);

    /* Every root dropped: everything left is garbage; collect until none. */
    for (int i = 0; i < 10 && rcgc_collect() != 0; i++) {
    }
    assert_int_equal(rcgc_collect(), 0);
    assert_int_equal(atomic_load(&gt_destroys), atomic_load(&gt_allocs));
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * rcgc_gc_get_objects racing allocation
 * ------------------------------------------------------------------------ */

typedef struct {
    _Atomic int stop;
    _Atomic int started;
    _Atomic int finished;       /* mutators that reached the limit */
    long limit;                 /* objects per mutator (bounds the work under sanitizers) */
    _Atomic long made;
    _Atomic long progress;      /* objects made so far, all mutators, in steps of 1024 */
    _Atomic int halfway;        /* thresholds test: mutators at half their work */
    _Atomic int phase2;         /* thresholds test: the random settings are over */
} churn_ctx;

static churn_ctx churn;

static void *churn_mutator(void *p) {
    int me = *(int *)p;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    uint64_t rng = 0xD1B54A32D192ED03ull * (uint64_t)(me + 1);
    enum { KEEP = 32 };
    gt_node *keep[KEEP] = {0};
    atomic_fetch_add(&churn.started, 1);
    long made = 0;
    while (!atomic_load(&churn.stop) && made < churn.limit) {
        uint64_t r = xorshift(&rng);
        int k = (int)(r % KEEP);
        gt_node *n = gt_new_anon(&gt_node_type);
        THREAD_CHECK(n != NULL);
        if (r & 0x100) {        /* a garbage self-cycle */
            gt_link(n, 0, n);
            rcgc_decref(n);
        } else {                /* replace a kept object */
            if (keep[k])
                rcgc_decref(keep[k]);
            keep[k] = n;
        }
        made++;
        if ((made & 1023) == 0 && me == 0)
            rcgc_collect_young();
        rcgc_safepoint();
    }
    for (int k = 0; k < KEEP; k++)
        if (keep[k])
            rcgc_decref(keep[k]);
    atomic_fetch_add(&churn.made, made);
    atomic_fetch_add(&churn.finished, 1);
    rcgc_thread_detach();
    return NULL;
}

typedef struct {
    const void *anchor;
    int anchor_seen;
    size_t ours, all;
    int bad;
} objects_walk;

static int objects_fn(void *o, void *arg) {
    objects_walk *w = arg;
    w->all++;
    if (o == w->anchor)
        w->anchor_seen++;
    if (rcgc_typeof(o) == &gt_node_type) {
        gt_node *n = o;
        w->ours++;
        if (n->canary != GT_CANARY_ALIVE || rcgc_refcount(o) == 0)
            w->bad++;
    }
    return 0;
}

static void test_get_objects_racing_allocation(void **state) {
    TEST_BEGIN(state);
    memset(&churn, 0, sizeof churn);
    churn.limit = SCALE(3000000, 150000);
    enum { N = 2 };
    int idx[N];
    pthread_t th[N];
    gt_node *anchor = gt_new(&gt_node_type);
    for (int i = 0; i < N; i++) {
        idx[i] = i;
        th[i] = test_thread_start(churn_mutator, &idx[i]);
    }
    wait_at_least(&churn.started, N);
    double end = now_s() + SCALE(1.5, 4.0);
    long walks = 0;
    size_t max_seen = 0;
    int failed = 0;
    while (now_s() < end && atomic_load(&churn.finished) < N) {
        objects_walk w = {.anchor = anchor};
        int rc = rcgc_gc_get_objects(objects_fn, &w);
        if (rc != 0 || w.anchor_seen != 1 || w.bad) {
            failed = 1;
            print_error("walk %ld: rc %d, anchor seen %d times, %d bad objects of %zu\n", walks,
                        rc, w.anchor_seen, w.bad, w.ours);
            break;
        }
        if (w.ours > max_seen)
            max_seen = w.ours;
        walks++;
        if (walks % 8 == 0)
            rcgc_collect();
        polite_yield();
    }
    atomic_store(&churn.stop, 1);
    for (int i = 0; i < N; i++)
        gt_join(th[i]);
    assert_false(failed);
    assert_true(walks > 0);
    assert_int_equal(rcgc_refcount(anchor), 1);     /* every snapshot gave its reference back */
    print_message("(%ld walks, up to %zu objects each, %ld objects made)\n", walks, max_seen,
                  atomic_load(&churn.made));
    rcgc_decref(anchor);
    rcgc_collect();
    assert_int_equal(rcgc_collect(), 0);
    assert_int_equal(atomic_load(&gt_destroys), atomic_load(&gt_allocs));
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * Thresholds changed under load; automatic collections on the mutators
 * ------------------------------------------------------------------------ */

static _Atomic long cb_starts, cb_stops, cb_off_main;
static pthread_t main_thread;

static void count_cb(rcgc_gc_phase phase, const rcgc_gc_info *info, void *arg) {
    (void)info;
    (void)arg;
    if (phase == RCGC_GC_START)
        atomic_fetch_add(&cb_starts, 1);
    else
        atomic_fetch_add(&cb_stops, 1);
    if (!pthread_equal(pthread_self(), main_thread))
        atomic_fetch_add(&cb_off_main, 1);
}

static void *garbage_mutator(void *p) {
    (void)p;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    atomic_fetch_add(&churn.started, 1);
    long made = 0;
    while (!atomic_load(&churn.stop) && made < churn.limit) {
        gt_node *a = gt_new_anon(&gt_fin_type), *b = gt_new_anon(&gt_node_type);
        THREAD_CHECK(a && b);
        gt_link(a, 0, b);
        gt_link(b, 0, a);
        rcgc_decref(a);
        rcgc_decref(b);
        made += 2;
        if ((made & 1023) == 0)
            atomic_fetch_add(&churn.progress, 1024);
        /* Half way, wait (polling) until the settings stop changing, so
         * that every change happens under load. */
        if (made == (churn.limit / 2 & ~1L)) {
            atomic_fetch_add(&churn.halfway, 1);
            while (!atomic_load(&churn.phase2) && !atomic_load(&churn.stop))
                polite_yield();
        }
        rcgc_safepoint();
    }
    atomic_fetch_add(&churn.made, made);
    atomic_fetch_add(&churn.finished, 1);
    rcgc_thread_detach();
    return NULL;
}

static void test_thresholds_under_load(void **state) {
    TEST_BEGIN(state);
    memset(&churn, 0, sizeof churn);
    churn.limit = SCALE(3000000, 60000);
    atomic_store(&cb_starts, 0);
    atomic_store(&cb_stops, 0);
    atomic_store(&cb_off_main, 0);
    main_thread = pthread_self();
    assert_int_equal(rcgc_gc_callback_add(count_cb, NULL), 0);
    rcgc_gc_set_threshold(200, 25);
    rcgc_gc_enable();
    enum { N = 3 };
    pthread_t th[N];
    for (int i = 0; i < N; i++)
        th[i] = test_thread_start(garbage_mutator, NULL);
    wait_at_least(&churn.started, N);
    static const size_t thresholds[] = {0, 50, 200, 1000, 5000, 100};
    uint64_t rng = 12345;
    double end = now_s() + SCALE(2.0, 5.0);
    int mismatches = 0;
    long changes = 0;
    /* Random settings while the mutators do the first half of their work
     * (at least 200 changes, at most the time), then a fixed threshold
     * while they finish. */
    while (now_s() < end && (changes < 200 || atomic_load(&churn.halfway) < N)) {
        uint64_t r = xorshift(&rng);
        size_t th_set = thresholds[r % 6];
        unsigned pct = 5 + (unsigned)((r >> 8) % 50);
        rcgc_gc_set_threshold(th_set, pct);
        size_t th_got;
        unsigned pct_got;
        rcgc_gc_get_threshold(&th_got, &pct_got);
        if (th_got != th_set || pct_got != pct)
            mismatches++;
        if ((r >> 16) % 8 == 0)
            rcgc_gc_disable();
        else
            rcgc_gc_enable();
        if ((r >> 20) % 16 == 0)
            rcgc_collect();
        changes++;
        polite_yield();
    }
    rcgc_gc_set_threshold(200, 25);
    rcgc_gc_enable();
    rcgc_collect();
    atomic_store(&churn.phase2, 1);
    while (now_s() < end + 30 && atomic_load(&churn.finished) < N)
        blocking_sleep_ms(5);
    atomic_store(&churn.stop, 1);
    for (int i = 0; i < N; i++)
        gt_join(th[i]);
    rcgc_gc_disable();
    rcgc_collect();
    assert_int_equal(rcgc_collect(), 0);
    assert_int_equal(rcgc_gc_callback_remove(count_cb, NULL), 0);
    rcgc_gc_stats s;
    rcgc_gc_get_stats(&s);
    print_message("(%ld threshold changes, %llu collections, %ld on mutator threads, %ld objects)\n",
                  changes, (unsigned long long)s.collections, atomic_load(&cb_off_main),
                  atomic_load(&churn.made));
    assert_int_equal(mismatches, 0);
    assert_int_equal(atomic_load(&cb_starts), atomic_load(&cb_stops));
    assert_int_equal(atomic_load(&cb_starts), (long)s.collections);
    assert_true(atomic_load(&cb_off_main) > 0);     /* automatic ones, on the allocating threads */
    assert_int_equal(atomic_load(&gt_destroys), atomic_load(&gt_allocs));
    assert_int_equal(atomic_load(&gt_finalizes), atomic_load(&gt_allocs) / 2);
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * Freeze with objects in a merge queue (CPython GH-142975)
 *
 * An agent thread owns the objects and waits, in a blocking region, for
 * work: it reaches no safepoint, so a reference the test's thread drops is
 * queued to it and stays queued until the test lets it run.
 * ------------------------------------------------------------------------ */

typedef struct {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void (*fn)(void *);
    void *arg;
    unsigned long posted, done;
    int quit, started;
} agent;

static void *agent_main(void *p) {
    agent *a = p;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    rcgc_thread_set_name("agent");
    for (;;) {
        rcgc_blocking_begin();
        pthread_mutex_lock(&a->mu);
        a->started = 1;
        pthread_cond_broadcast(&a->cv);
        while (a->posted == a->done && !a->quit)
            pthread_cond_wait(&a->cv, &a->mu);
        int quit = a->posted == a->done;
        void (*fn)(void *) = a->fn;
        void *arg = a->arg;
        pthread_mutex_unlock(&a->mu);
        rcgc_blocking_end();
        if (quit)
            break;
        fn(arg);
        pthread_mutex_lock(&a->mu);
        a->done++;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
    }
    rcgc_thread_detach();
    return NULL;
}

static void agent_start(agent *a) {
    memset(a, 0, sizeof *a);
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->th = test_thread_start(agent_main, a);
    rcgc_blocking_begin();
    pthread_mutex_lock(&a->mu);
    while (!a->started)
        pthread_cond_wait(&a->cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
    rcgc_blocking_end();
}

/* Run fn(arg) on the agent; wait for it in a blocking region. */
static void agent_call(agent *a, void (*fn)(void *), void *arg) {
    rcgc_blocking_begin();
    pthread_mutex_lock(&a->mu);
    a->fn = fn;
    a->arg = arg;
    unsigned long ticket = ++a->posted;
    pthread_cond_broadcast(&a->cv);
    while (a->done < ticket)
        pthread_cond_wait(&a->cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
    rcgc_blocking_end();
}

static void agent_stop(agent *a) {
    pthread_mutex_lock(&a->mu);
    a->quit = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    gt_join(a->th);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
}

static gt_node *made_x, *made_y;

/* x alone; its birth reference is for the test's thread. */
static void make_single(void *unused) {
    (void)unused;
    made_x = gt_new(&gt_node_type);
    made_y = NULL;
}

/* x <-> y; x's birth reference is for the test's thread, y's is dropped. */
static void make_pair(void *unused) {
    (void)unused;
    made_x = gt_new(&gt_node_type);
    made_y = gt_new(&gt_node_type);
    gt_link(made_x, 0, made_y);
    gt_link(made_y, 0, made_x);
    rcgc_decref(made_y);
}

/* The owner reaches a safepoint: it merges its queue. */
static void do_safepoint(void *unused) {
    (void)unused;
    rcgc_safepoint();
    rcgc_heap_collect();
}

static int state_of(const void *o) { return RCGC_SHARED_STATE(rcgc__shared(rcgc__hdr(o))); }

/* Allocate and free enough objects to reuse recently freed blocks: a block
 * freed twice, or still referenced by a queue, shows up as damage here. */
static void reuse_memory(void) {
    enum { N = 2000 };
    static gt_node *objs[N];
    for (int i = 0; i < N; i++) {
        objs[i] = gt_new_anon(&gt_node_type);
        assert_non_null(objs[i]);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(objs[i]->canary, GT_CANARY_ALIVE);
        rcgc_decref(objs[i]);
    }
    assert_int_equal(rcgc_collect(), 0);
}

/* Frozen while its last reference sits in the owner's queue; the owner
 * merges (and frees it) while it is frozen; then unfreeze and collect. */
static void test_freeze_object_in_merge_queue(void **state) {
    TEST_BEGIN(state);
    agent a;
    agent_start(&a);
    for (int round = 0; round < SCALE(50, 10); round++) {
        agent_call(&a, make_single, NULL);
        gt_node *x = made_x;
        uint32_t id = x->id;
        rcgc_decref(x);                 /* not the owner: queued to the agent, count 0 */
        assert_int_equal(state_of(x), RCGC_SHARED_QUEUED);
        assert_int_equal(rcgc_refcount(x), 0);
        assert_int_equal(atomic_load(&gt_destroyed[id]), 0);
        rcgc_gc_freeze();
        assert_true(rcgc_gc_get_freeze_count() <= 1);
        agent_call(&a, do_safepoint, NULL);     /* merge: freed, frozen or not */
        gt_assert_died(id);
        rcgc_gc_unfreeze();
        assert_int_equal(rcgc_gc_get_freeze_count(), 0);
        assert_int_equal(rcgc_collect(), 0);
        reuse_memory();
        assert_int_equal(atomic_load(&gt_destroyed[id]), 1);
    }
    agent_stop(&a);
    assert_int_equal(atomic_load(&gt_destroys), atomic_load(&gt_allocs));
    gt_assert_clean();
}

/* A garbage cycle frozen while one member's reference is queued; the owner
 * merges while it is frozen; after unfreeze the next collection frees it. */
static void test_freeze_cycle_merged_while_frozen(void **state) {
    TEST_BEGIN(state);
    agent a;
    agent_start(&a);
    for (int round = 0; round < SCALE(50, 10); round++) {
        agent_call(&a, make_pair, NULL);
        gt_node *x = made_x, *y = made_y;
        uint32_t ix = x->id, iy = y->id;
        rcgc_decref(x);                 /* queued: the cycle is garbage, one count pending */
        assert_int_equal(state_of(x), RCGC_SHARED_QUEUED);
        rcgc_gc_freeze();
        assert_int_equal(rcgc_gc_get_freeze_count(), 2);
        assert_int_equal(rcgc_collect(), 0);
        agent_call(&a, do_safepoint, NULL);
        assert_int_equal(atomic_load(&gt_destroyed[ix]), 0);
        assert_int_equal(rcgc_collect(), 0);    /* still frozen */
        rcgc_gc_unfreeze();
        assert_int_equal(rcgc_collect(), 2);
        gt_assert_died(ix);
        gt_assert_died(iy);
        reuse_memory();
        agent_call(&a, do_safepoint, NULL);
        assert_int_equal(atomic_load(&gt_destroyed[ix]), 1);
    }
    agent_stop(&a);
    assert_int_equal(atomic_load(&gt_destroys), atomic_load(&gt_allocs));
    gt_assert_clean();
}

/* The same cycle frozen and unfrozen while the reference is still queued:
 * the collection frees the cycle before the owner merges; the owner's
 * merge afterwards must not touch the freed object. */
static void test_unfreeze_collect_before_owner_merges(void **state) {
    TEST_BEGIN(state);
    agent a;
    agent_start(&a);
    for (int round = 0; round < SCALE(50, 10); round++) {
        agent_call(&a, make_pair, NULL);
        gt_node *x = made_x, *y = made_y;
        uint32_t ix = x->id, iy = y->id;
        rcgc_decref(x);
        assert_int_equal(state_of(x), RCGC_SHARED_QUEUED);
        rcgc_gc_freeze();
        assert_int_equal(rcgc_collect(), 0);
        rcgc_gc_unfreeze();
        assert_int_equal(rcgc_collect(), 2);    /* the agent has not merged yet */
        gt_assert_died(ix);
        gt_assert_died(iy);
        assert_true(pthread_equal((pthread_t)atomic_load(&gt_destroy_thread[ix]), pthread_self()));
        reuse_memory();
        agent_call(&a, do_safepoint, NULL);     /* its queue must not hold x any more */
        reuse_memory();
        assert_int_equal(atomic_load(&gt_destroyed[ix]), 1);
        assert_int_equal(atomic_load(&gt_destroyed[iy]), 1);
    }
    agent_stop(&a);
    assert_int_equal(atomic_load(&gt_destroys), atomic_load(&gt_allocs));
    gt_assert_clean();
}

/* No freeze: a lone object whose last reference is queued when a
 * collection runs. It dies exactly once, whoever frees it. */
static void test_collect_with_dead_object_in_queue(void **state) {
    TEST_BEGIN(state);
    agent a;
    agent_start(&a);
    for (int round = 0; round < SCALE(50, 10); round++) {
        agent_call(&a, make_single, NULL);
        gt_node *x = made_x;
        uint32_t id = x->id;
        rcgc_decref(x);
        assert_int_equal(state_of(x), RCGC_SHARED_QUEUED);
        size_t n = rcgc_collect();
        assert_true(n <= 1);
        agent_call(&a, do_safepoint, NULL);
        gt_assert_died(id);
        reuse_memory();
        assert_int_equal(atomic_load(&gt_destroyed[id]), 1);
    }
    agent_stop(&a);
    assert_int_equal(atomic_load(&gt_destroys), atomic_load(&gt_allocs));
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * A thread the pause counted while it ran, that then enters a blocking
 * region (docs/RELIABILITY.md, item 2: `filled == ngarbage` in first_pause)
 * ------------------------------------------------------------------------ */

/* The interleaving that commit 2bb89fc closed, forced:
 *
 *   mutator (frees, no poll)          collector (rcgc_collect)
 *                                     stop the world: counts the mutator
 *   sees the STW poll bit
 *   blocking_begin: gives its count back
 *                                     countdown 0: world "stopped"
 *   blocking_end                      phase A: the mutator's objects are
 *                                       candidates (gc_refs 1: roots)
 *                                     phase B: the gate's traverse waits
 *   frees its objects                   for the mutator's frees
 *                                     phase C: the freed roots are not
 *                                       live, so not reached
 *                                     D: ngarbage counts them, filled
 *                                       does not: the invariant breaks
 *
 * Before the fix blocking_end attached again at once (the requester had
 * passed the thread while it was ATTACHED) and the mutator ran during the
 * pause; the gate's traverse (phase B, after every candidate was counted)
 * makes its frees land between A and C every time. With the fix the
 * mutator is SUSPENDED for the pause: the gate waits its timeout and the
 * frees come after the collection. No test hook: the mutator watches its
 * own poll word (the inline fast path's TLS word) for the request, and the
 * gate is an ordinary traverse function. */
#define BF_OBJECTS 256
#define BF_GATE_WAIT_MS 200

static struct {
    _Atomic int armed;          /* the gate waits once per round */
    _Atomic int in_pause;       /* the gate's traverse runs (phase B) */
    _Atomic int gate_done;      /* ... and has stopped waiting */
    _Atomic int freed;          /* the mutator has freed its objects */
    _Atomic int freed_in_pause; /* ... while the gate waited: the bug */
    _Atomic int ready;          /* the mutator holds its objects */
    _Atomic int no_request;     /* the mutator never saw the pause request */
    uint32_t ids[BF_OBJECTS];
} bf;

static int bf_gate_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    (void)self, (void)visit, (void)arg;
    if (atomic_exchange(&bf.armed, 0)) {
        atomic_store(&bf.in_pause, 1);
        double until = now_s() + BF_GATE_WAIT_MS / 1000.0;
        while (!atomic_load(&bf.freed) && now_s() < until)
            sched_yield();
        if (atomic_load(&bf.freed))
            atomic_store(&bf.freed_in_pause, 1);
        atomic_store(&bf.gate_done, 1);
    }
    return 0;
}

static const rcgc_type bf_gate_type = {
    .name = "bf_gate",
    .size = 16,
    .traverse = bf_gate_traverse,
};

static void *bf_mutator(void *p) {
    (void)p;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    gt_node *objs[BF_OBJECTS];
    for (int i = 0; i < BF_OBJECTS; i++) {
        objs[i] = gt_new(&gt_node_type);
        THREAD_CHECK(objs[i] != NULL);
        bf.ids[i] = objs[i]->id;
    }
    /* Free the first half, then wait (running, not polling) for the pause
     * request: the requester counts this thread. */
    for (int i = 0; i < BF_OBJECTS / 2; i++)
        rcgc_decref(objs[i]);
    atomic_store(&bf.ready, 1);
    double until = now_s() + 10;
    while (!(__atomic_load_n(&rcgc__tls_poll, __ATOMIC_RELAXED) & RCGC_POLL_STW))
        if (now_s() > until) {
            atomic_store(&bf.no_request, 1);
            break;
        }
    rcgc_blocking_begin();      /* a blocking call: gives the pause its count back */
    rcgc_blocking_end();        /* with the fix: waits for the pause to end */
    /* Free the rest once the collector is inside its pass (with the fix,
     * the pause is over by now and this does not wait). */
    until = now_s() + 10;
    while (!atomic_load(&bf.in_pause) && now_s() < until)
        sched_yield();
    for (int i = BF_OBJECTS / 2; i < BF_OBJECTS; i++)
        rcgc_decref(objs[i]);
    atomic_store(&bf.freed, 1);
    rcgc_thread_detach();
    return NULL;
}

static void test_counted_thread_frees_in_blocking_region(void **state) {
    TEST_BEGIN(state);
    for (int round = 0; round < SCALE(3, 2); round++) {
        memset(&bf, 0, sizeof bf);
        void *gate = rcgc_new(&bf_gate_type);   /* a root: its traverse runs in phase B */
        assert_non_null(gate);
        atomic_store(&bf.armed, 1);
        pthread_t th = test_thread_start(bf_mutator, NULL);
        while (!atomic_load(&bf.ready))
            polite_yield();
        size_t found = rcgc_collect();
        gt_join(th);
        assert_false(atomic_load(&bf.no_request));
        assert_true(atomic_load(&bf.gate_done));
        if (atomic_load(&bf.freed_in_pause))
            fail_msg("round %d: a thread counted by the pause ran (and freed objects) during it",
                     round);
        assert_int_equal(found, 0);
        for (int i = 0; i < BF_OBJECTS; i++)
            gt_assert_died(bf.ids[i]);
        rcgc_decref(gate);
        assert_int_equal(rcgc_collect(), 0);
    }
    assert_int_equal(atomic_load(&gt_destroys), atomic_load(&gt_allocs));
    gt_assert_clean();
}

int main(void) {
    test_main_init();
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_cross_thread_pairs),
        T(test_cross_thread_rings),
        T(test_freeze_object_in_merge_queue),
        T(test_freeze_cycle_merged_while_frozen),
        T(test_unfreeze_collect_before_owner_merges),
        T(test_collect_with_dead_object_in_queue),
        T(test_counted_thread_frees_in_blocking_region),
        T(test_get_objects_racing_allocation),
        T(test_thresholds_under_load),
        T(test_collector_vs_mutators),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
