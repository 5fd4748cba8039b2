/*
 * The collector out of memory: every OS call a collection makes is made to
 * fail in turn (fault injection). A collection that fails must change
 * nothing: every header (owner, counts, collector bits) as before, no
 * finalizer run, no weak reference cleared, no object freed; it reports
 * ENOMEM (errno, statistics, callbacks), and the next collection, with
 * memory back, finds and frees exactly the garbage.
 *
 * Half of the garbage is owned by a second thread (parked in a blocking
 * region), so restoring `owner` from the page's heap is exercised as well
 * as the merged (unowned) case.
 */
#include "test_util.h"

#include "lib/object.h"
#include "lib/os.h"

enum { LIVE = 2000, CYCLES = 300 };

typedef struct node {
    void *a, *b;
    uint32_t canary;
    uint32_t id;
} node;

#define CANARY 0x6763u

static _Atomic int destroyed, finalized, callbacks_run;

static int node_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    node *n = self;
    RCGC_VISIT(n->a);
    RCGC_VISIT(n->b);
    return 0;
}
static void node_clear(void *self) {
    node *n = self;
    rcgc_set(&n->a, NULL);
    rcgc_set(&n->b, NULL);
}
static void node_destroy(void *self) {
    node *n = self;
    assert_int_equal(n->canary, CANARY);
    n->canary = 0;
    destroyed++;
}
static void node_finalize(void *self) {
    (void)self;
    finalized++;
}
static const rcgc_type plain_type = {"gc_oom_node", sizeof(node), node_traverse, node_clear, NULL,
                                     node_destroy, 0};
static const rcgc_type fin_type = {"gc_oom_fin_node", sizeof(node), node_traverse, node_clear,
                                   node_finalize, node_destroy, 0};

static void weak_cb(rcgc_weakref *w, void *arg) {
    (void)w;
    (void)arg;
    callbacks_run++;
}

static node *make(const rcgc_type *t, uint32_t id) {
    node *n = rcgc_new(t);
    assert_non_null(n);
    n->canary = CANARY;
    n->id = id;
    return n;
}

/* ------------------------------------------------------------------------
 * The graph: a live chain held by `root`, and CYCLES 3-cycles of garbage
 * (every third with a finalizer, every fifth with a weak reference), half
 * of them made by the second thread.
 * ------------------------------------------------------------------------ */
typedef struct {
    node *cyc[CYCLES][3];
    rcgc_weakref *weak[CYCLES];
    int nweak;
} garbage_set;

static void make_cycles(garbage_set *g, int from, int to) {
    for (int i = from; i < to; i++) {
        const rcgc_type *t = i % 3 == 0 ? &fin_type : &plain_type;
        for (int k = 0; k < 3; k++)
            g->cyc[i][k] = make(t, (uint32_t)(i * 3 + k));
        for (int k = 0; k < 3; k++)
            rcgc_set(&g->cyc[i][k]->a, g->cyc[i][(k + 1) % 3]);
    }
}

typedef struct {
    garbage_set *g;
    test_gate gate;     /* round r: 2r+1 cycles made; 2r+2 the main thread is done */
    int round;
} other_ctx;

static void *other_thread(void *arg) {
    other_ctx *c = arg;
    assert_int_equal(rcgc_thread_attach(), 0);
    make_cycles(c->g, CYCLES / 2, CYCLES);
    test_gate_set(&c->gate, 2 * c->round + 1);
    test_gate_wait(&c->gate, 2 * c->round + 2);  /* stays attached, owning its objects */
    rcgc_thread_detach();
    return NULL;
}

/* The headers of every object, to compare after a failed collection. */
typedef struct {
    uintptr_t owner;
    uint32_t local, gc;
    intptr_t shared;
} snap;

static void snap_of(snap *s, void *o) {
    rcgc__header *h = rcgc__hdr(o);
    s->owner = __atomic_load_n(&h->owner, __ATOMIC_RELAXED);
    s->local = __atomic_load_n(&h->local, __ATOMIC_RELAXED);
    s->gc = __atomic_load_n(&h->gc, __ATOMIC_RELAXED) & ~(uint32_t)RCGC_GC_REACHABLE;
    s->shared = __atomic_load_n(&h->shared, __ATOMIC_RELAXED);
}

/* The true count (local + shared - 1 if queued to its owner). */
static intptr_t count_of(const snap *s) {
    return (intptr_t)s->local + (s->shared >> 2) - ((s->shared & 3) == 2);
}

/* Same count, same collector bits, same owner, except that the pause may
 * have merged objects queued to their owner (owner becomes unowned, the
 * count moves to `shared`: what the owner's next safepoint would do). */
static void assert_same(const snap *a, const snap *b, const char *what, int i) {
    bool owner_ok = a->owner == b->owner || ((a->shared & 3) == 2 && b->owner == RCGC__UNOWNED);
    if (!owner_ok || count_of(a) != count_of(b) || a->gc != b->gc)
        fail_msg("%s %d changed by a failed collection: owner %#lx -> %#lx, local %u -> %u, "
                 "gc %#x -> %#x, shared %ld -> %ld",
                 what, i, (unsigned long)a->owner, (unsigned long)b->owner, a->local, b->local, a->gc,
                 b->gc, (long)a->shared, (long)b->shared);
}

static void collect_cb(rcgc_gc_phase phase, const rcgc_gc_info *info, void *arg) {
    if (phase == RCGC_GC_STOP && info->aborted)
        ++*(int *)arg;
}

static void test_every_os_call_of_a_collection(void **state) {
    TEST_BEGIN(state);
    rcgc_gc_disable();
    int aborted_seen = 0;
    assert_int_equal(rcgc_gc_callback_add(collect_cb, &aborted_seen), 0);

    /* The live chain. */
    node *root = make(&plain_type, 1000000);
    static node *live[LIVE];
    node *prev = root;
    for (int i = 0; i < LIVE; i++) {
        live[i] = make(i % 7 == 0 ? &fin_type : &plain_type, (uint32_t)i);
        rcgc_set(&prev->a, live[i]);
        rcgc_decref(live[i]);
        prev = live[i];
    }
    rcgc_collect();     /* the chain is now old and settled */

    int failures = 0, rounds = 0;
    uint64_t calls_needed = 0;
    static other_ctx ctx;
    test_gate_init(&ctx.gate);
    for (uint64_t nth = 1;; nth++) {
        destroyed = finalized = callbacks_run = 0;
        garbage_set *g = calloc(1, sizeof *g);
        ctx.g = g;
        ctx.round = rounds;
        pthread_t th = test_thread_start(other_thread, &ctx);
        make_cycles(g, 0, CYCLES / 2);
        test_gate_wait(&ctx.gate, 2 * rounds + 1);
        g->nweak = 0;
        for (int i = 0; i < CYCLES; i += 5)
            g->weak[g->nweak++] = rcgc_weakref_new(g->cyc[i][0], weak_cb, NULL);
        /* Drop the external references: the cycles are garbage. Those of
         * the other thread are dropped by us (non-owner decrefs). */
        for (int i = 0; i < CYCLES; i++)
            for (int k = 0; k < 3; k++)
                rcgc_decref(g->cyc[i][k]);

        static snap before[CYCLES * 3], live_before[LIVE];
        for (int i = 0; i < CYCLES * 3; i++)
            snap_of(&before[i], g->cyc[i / 3][i % 3]);
        for (int i = 0; i < LIVE; i++)
            snap_of(&live_before[i], live[i]);

        uint64_t c0 = rcgc__os_calls();
        rcgc__os_fail_nth(nth);
        errno = 0;
        size_t found = rcgc_collect();
        int err = errno;
        rcgc__os_fail_nth(0);
        uint64_t used = rcgc__os_calls() - c0;
        rcgc_gc_stats st;
        rcgc_gc_get_stats(&st);
        rounds++;

        if (st.last.aborted) {
            failures++;
            assert_int_equal(st.last.aborted, ENOMEM);
            assert_int_equal(err, ENOMEM);
            assert_int_equal(found, 0);
            assert_int_equal(destroyed, 0);
            assert_int_equal(finalized, 0);
            assert_int_equal(callbacks_run, 0);
            for (int i = 0; i < CYCLES * 3; i++) {
                snap now;
                snap_of(&now, g->cyc[i / 3][i % 3]);
                assert_same(&before[i], &now, "garbage object", i);
                assert_int_equal(g->cyc[i / 3][i % 3]->canary, CANARY);
            }
            for (int w = 0; w < g->nweak; w++) {
                void *o = rcgc_weakref_get(g->weak[w]);
                assert_non_null(o);
                rcgc_decref(o);
            }
            /* With memory back, the same garbage is found and freed. */
            found = rcgc_collect();
        } else if (calls_needed == 0) {
            calls_needed = used;    /* a collection that succeeded: its call count */
        }
        assert_int_equal(found, CYCLES * 3);
        assert_int_equal(destroyed, CYCLES * 3);
        assert_int_equal(finalized, CYCLES / 3 * 3);
        assert_int_equal(callbacks_run, g->nweak);
        for (int i = 0; i < LIVE; i++) {
            snap now;
            snap_of(&now, live[i]);
            assert_int_equal(live[i]->canary, CANARY);
            assert_int_equal(count_of(&now), count_of(&live_before[i]));
        }
        for (int w = 0; w < g->nweak; w++) {
            assert_null(rcgc_weakref_get(g->weak[w]));
            rcgc_weakref_free(g->weak[w]);
        }
        test_gate_set(&ctx.gate, 2 * (rounds - 1) + 2);
        test_thread_join(th);
        free(g);
        /* Past every call a successful collection makes: done. */
        if (calls_needed && nth > calls_needed + 2)
            break;
        assert_true(nth < 200);
    }
    printf("# %d rounds, %d collections failed by injection (a successful one makes %llu OS "
           "calls); every failure changed nothing\n",
           rounds, failures, (unsigned long long)calls_needed);
    assert_true(failures >= 2);     /* the page list and the garbage array */
    assert_int_equal(aborted_seen, failures);

    rcgc_decref(root);
    assert_int_equal(rcgc_collect(), 0);   /* a chain: counting freed it */
    assert_int_equal(rcgc_gc_callback_remove(collect_cb, &aborted_seen), 0);
}

static int setup(void **state) {
    (void)state;
    rcgc_config cfg = {0};
    cfg.gc_workers = 2;
    setenv("RCGC_GC_PAGES_PER_WORKER", "1", 0);   /* both workers, on this small heap */
    return rcgc_init(&cfg);
}

int main(void) {
    test_main_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_os_call_of_a_collection, setup,
                                        test_rcgc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
