/*
 * gc_test: the cycle collector on one thread (lib/gc.c): what a collection
 * finds and frees, PEP 442 finalizers and resurrection, uncollectable
 * objects, freeze, young and full collections, thresholds and automatic
 * collections, callbacks, introspection, save-all and statistics.
 *
 * The scenarios follow CPython's Lib/test/test_gc.py and
 * test_finalization.py, written again for this API. Every test runs in a
 * fresh runtime with automatic collections off (setup), so that the counts
 * a collection returns are exactly the garbage the test made; the tests of
 * automatic collection turn them back on.
 *
 * Objects are gt_nodes (gc_test_util.h): their clear, finalize and destroy
 * calls are counted per object, and anything wrong seen inside a callback
 * fails the test at its end (gt_assert_clean).
 */
#include <stdbool.h>

#include "tests/gc_test_util.h"

#define SCALE(normal, sanitized) TEST_SCALE(normal, sanitized)

static int setup(void **state) {
    (void)state;
    gt_reset();
    if (rcgc_init(NULL) != 0)
        return -1;
    rcgc_gc_disable();      /* collections only when the test asks */
    return 0;
}

static int teardown(void **state) {
    atomic_store(&gt_finalize_hook, NULL);
    return test_rcgc_teardown(state);
}

static rcgc_gc_stats gc_stats(void) {
    rcgc_gc_stats s;
    rcgc_gc_get_stats(&s);
    return s;
}

/* ------------------------------------------------------------------------
 * Misuse: a traverse that visits more references than the object's count
 * (gc_refs below zero) would make the collector free a live object; it is
 * fatal, and the message says so. Runs first, in a child forked before this
 * process ever initialises rcgc (liburcu's and the collector's threads do
 * not survive a fork), so keep it first in main().
 * ------------------------------------------------------------------------ */

#define FATAL_EXIT 42

static void exit_handler(const char *message) {
    ssize_t w = write(STDOUT_FILENO, message, strlen(message));
    w += write(STDOUT_FILENO, "\n", 1);
    (void)w;
    _exit(FATAL_EXIT);
}

/* Visits itself twice but holds no reference to itself. */
static int overvisit_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    RCGC_VISIT(self);
    RCGC_VISIT(self);
    return 0;
}

static void overvisit_clear(void *self) { (void)self; }

static const rcgc_type overvisit_type = {
    .name = "overvisit",
    .size = 32,
    .traverse = overvisit_traverse,
    .clear = overvisit_clear,
};

static void overvisit_child(void *arg) {
    (void)arg;
    if (rcgc_init(NULL) != 0)
        _exit(3);
    rcgc_set_fatal_handler(exit_handler);
    void *o = rcgc_new(&overvisit_type);    /* count 1; traverse visits it twice */
    size_t n = rcgc_collect();
    printf("rcgc_collect returned %zu; the object's count is %zu\n", n, rcgc_refcount(o));
    fflush(stdout);
    _exit(0);
}

static void test_traverse_overcount_is_fatal(void **state) {
    TEST_BEGIN(state);
    static char out[8192];
    int status = test_fork_run(overvisit_child, NULL, out, sizeof out);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != FATAL_EXIT)
        fail_msg("child %s %d, want exit %d through the fatal handler; output:\n%s",
                 WIFEXITED(status) ? "exited" : "killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), FATAL_EXIT, out);
    if (!strstr(out, "traverse"))
        fail_msg("the fatal message does not mention traverse:\n%s", out);
    if (!strstr(out, "overvisit"))
        fail_msg("the fatal message does not name the object's type:\n%s", out);
}

/* ------------------------------------------------------------------------
 * Simple garbage
 * ------------------------------------------------------------------------ */

static void test_nothing_to_collect(void **state) {
    TEST_BEGIN(state);
    assert_int_equal(rcgc_collect(), 0);
    assert_int_equal(rcgc_collect_young(), 0);
    gt_node *a = gt_new(&gt_node_type);
    assert_int_equal(rcgc_collect(), 0);
    gt_assert_intact(a);
    assert_int_equal(rcgc_refcount(a), 1);
    uint32_t id = a->id;
    rcgc_decref(a);     /* no cycle: counting frees it */
    gt_assert_died(id);
    assert_int_equal(rcgc_collect(), 0);
    gt_assert_clean();
}

static void test_self_cycle(void **state) {
    TEST_BEGIN(state);
    gt_node *a = gt_new(&gt_node_type);
    gt_link(a, 0, a);
    uint32_t id = a->id;
    assert_int_equal(rcgc_refcount(a), 2);
    assert_int_equal(rcgc_collect(), 0);   /* we still hold it */
    gt_assert_intact(a);
    assert_ptr_equal(a->ref[0], a);
    assert_int_equal(rcgc_refcount(a), 2);

    rcgc_decref(a);
    assert_int_equal(atomic_load(&gt_destroyed[id]), 0);  /* counting alone cannot */
    assert_int_equal(rcgc_collect(), 1);
    gt_assert_died(id);
    rcgc_gc_stats s = gc_stats();
    assert_int_equal(s.last.unreachable, 1);
    assert_int_equal(s.last.collected, 1);
    assert_int_equal(s.last.uncollectable, 0);
    assert_int_equal(rcgc_collect(), 0);
    gt_assert_clean();
}

static void test_two_cycle(void **state) {
    TEST_BEGIN(state);
    gt_node *m[2];
    gt_ring(&gt_node_type, m, 2);
    uint32_t ids[2] = {m[0]->id, m[1]->id};
    gt_drop_all(m, 2);
    assert_int_equal(atomic_load(&gt_destroys), 0);
    assert_int_equal(rcgc_collect(), 2);
    gt_assert_died(ids[0]);
    gt_assert_died(ids[1]);
    assert_int_equal(rcgc_collect(), 0);
    gt_assert_clean();
}

static void ring_collect(size_t n) {
    gt_node **m = malloc(n * sizeof *m);
    uint32_t *ids = malloc(n * sizeof *ids);
    assert_non_null(m);
    assert_non_null(ids);
    gt_ring(&gt_node_type, m, n);
    for (size_t i = 0; i < n; i++)
        ids[i] = m[i]->id;
    gt_drop_all(m, n);
    assert_int_equal(atomic_load(&gt_destroys), 0);
    assert_int_equal(rcgc_collect(), n);
    for (size_t i = 0; i < n; i++)
        if (ids[i])
            gt_assert_died(ids[i]);
    assert_int_equal(atomic_load(&gt_destroys), n);
    assert_int_equal(rcgc_collect(), 0);
    free(m);
    free(ids);
    gt_assert_clean();
}

static void test_long_cycle(void **state) {
    TEST_BEGIN(state);
    ring_collect(1000);
}

/* Marking and freeing a very long cycle must not recurse on the C stack. */
static void test_very_long_cycle(void **state) {
    TEST_BEGIN(state);
    ring_collect(SCALE(200000, 40000));
}

/* A cycle through a fixed-size object, a variable-size container and an
 * object with a finalizer, with an untracked object hanging off it. */
static void test_cycle_several_types(void **state) {
    TEST_BEGIN(state);
    gt_node *a = gt_new(&gt_node_type);
    gt_node *v = gt_new_vec(3);
    gt_node *f = gt_new(&gt_fin_type);
    gt_node *leaf = gt_new(&gt_leaf_type);
    assert_true(a && v && f && leaf);
    gt_link(a, 0, v);
    gt_link(v, 0, f);
    gt_link(f, 0, a);
    gt_link(v, 1, leaf);
    gt_link(v, 2, a);       /* two references from v to a */
    uint32_t ia = a->id, iv = v->id, iff = f->id, il = leaf->id;
    assert_int_equal(rcgc_refcount(a), 3);
    rcgc_decref(a);
    rcgc_decref(v);
    rcgc_decref(f);
    rcgc_decref(leaf);
    assert_int_equal(atomic_load(&gt_destroyed[il]), 0);

    assert_int_equal(rcgc_collect(), 3);   /* the untracked leaf is not counted */
    gt_assert_died(ia);
    gt_assert_died(iv);
    gt_assert_died(iff);
    assert_int_equal(atomic_load(&gt_destroyed[il]), 1);    /* freed by counting */
    assert_int_equal(atomic_load(&gt_finalized[iff]), 1);
    /* Every finalizer of the unreachable set runs before any clear. */
    uint64_t fin = atomic_load(&gt_finalize_seq[iff]);
    assert_true(fin < atomic_load(&gt_clear_seq[ia]));
    assert_true(fin < atomic_load(&gt_clear_seq[iv]));
    assert_true(fin < atomic_load(&gt_clear_seq[iff]));
    rcgc_gc_stats s = gc_stats();
    assert_int_equal(s.last.finalized, 1);
    assert_int_equal(s.last.collected, 3);
    gt_assert_clean();
}

/* A cycle held by a root survives collections untouched, beside garbage
 * that is collected. */
static void test_live_cycle_kept(void **state) {
    TEST_BEGIN(state);
    enum { LIVE = 100, DEAD = 50 };
    gt_node *live[LIVE], *leaves[LIVE], *dead[DEAD];
    uint32_t dead_ids[DEAD], live_ids[LIVE], leaf_ids[LIVE];
    gt_ring(&gt_fin_type, live, LIVE);
    for (int i = 0; i < LIVE; i++) {
        leaves[i] = gt_new(&gt_leaf_type);
        gt_link(live[i], 1, leaves[i]);
        rcgc_decref(leaves[i]);
        live_ids[i] = live[i]->id;
        leaf_ids[i] = leaves[i]->id;
    }
    gt_ring(&gt_node_type, dead, DEAD);
    for (int i = 0; i < DEAD; i++)
        dead_ids[i] = dead[i]->id;
    gt_drop_all(dead, DEAD);
    gt_drop_all(live + 1, LIVE - 1);    /* the test keeps live[0] only */

    assert_int_equal(rcgc_collect(), DEAD);
    assert_int_equal(rcgc_collect_young(), 0);
    assert_int_equal(rcgc_collect(), 0);
    assert_int_equal(rcgc_collect(), 0);
    for (int i = 0; i < DEAD; i++)
        gt_assert_died(dead_ids[i]);
    for (int i = 0; i < LIVE; i++) {
        gt_assert_intact(live[i]);
        gt_assert_intact(leaves[i]);
        assert_ptr_equal(live[i]->ref[0], live[(i + 1) % LIVE]);
        assert_ptr_equal(live[i]->ref[1], leaves[i]);
        assert_null(live[i]->ref[2]);
        assert_int_equal(rcgc_refcount(live[i]), i == 0 ? 2 : 1);
        assert_int_equal(rcgc_refcount(leaves[i]), 1);
        assert_int_equal(atomic_load(&gt_finalized[live_ids[i]]), 0);
    }

    rcgc_decref(live[0]);
    assert_int_equal(rcgc_collect(), LIVE);
    for (int i = 0; i < LIVE; i++) {
        gt_assert_died(live_ids[i]);
        assert_int_equal(atomic_load(&gt_finalized[live_ids[i]]), 1);
        assert_int_equal(atomic_load(&gt_destroyed[leaf_ids[i]]), 1);
    }
    gt_assert_clean();
}

/* A dict-like container with many entries, each referring back to it. */
static void test_container_many_refs(void **state) {
    TEST_BEGIN(state);
    const uint32_t n = SCALE(20000, 5000);
    gt_node *d = gt_new_vec(n);
    assert_non_null(d);
    uint32_t did = d->id;
    uint32_t *ids = malloc(n * sizeof *ids);
    assert_non_null(ids);
    for (uint32_t i = 0; i < n; i++) {
        gt_node *v = gt_new(&gt_node_type);
        assert_non_null(v);
        gt_link(d, i, v);
        gt_link(v, 0, d);
        ids[i] = v->id;
        rcgc_decref(v);
    }
    assert_int_equal(rcgc_refcount(d), n + 1);
    assert_int_equal(rcgc_collect(), 0);
    gt_assert_intact(d);
    assert_int_equal(rcgc_refcount(d), n + 1);
    for (uint32_t i = 0; i < n; i++) {
        gt_node *v = d->ref[i];
        gt_assert_intact(v);
        assert_int_equal(v->id, ids[i]);
        assert_ptr_equal(v->ref[0], d);
        assert_int_equal(rcgc_refcount(v), 1);
    }
    rcgc_decref(d);
    assert_int_equal(rcgc_collect(), (size_t)n + 1);
    gt_assert_died(did);
    for (uint32_t i = 0; i < n; i++)
        gt_assert_died(ids[i]);
    free(ids);
    gt_assert_clean();
}

/* A container whose every entry is the same object, which refers back. */
static void test_container_same_object(void **state) {
    TEST_BEGIN(state);
    const uint32_t n = SCALE(10000, 3000);
    gt_node *d = gt_new_vec(n);
    gt_node *x = gt_new(&gt_node_type);
    for (uint32_t i = 0; i < n; i++)
        gt_link(d, i, x);
    gt_link(x, 0, d);
    uint32_t did = d->id, xid = x->id;
    assert_int_equal(rcgc_refcount(x), n + 1);
    rcgc_decref(x);
    assert_int_equal(rcgc_collect(), 0);
    gt_assert_intact(x);
    assert_int_equal(rcgc_refcount(x), n);
    rcgc_decref(d);
    assert_int_equal(rcgc_collect(), 2);
    gt_assert_died(did);
    gt_assert_died(xid);
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * Finalizers (PEP 442) and resurrection
 * ------------------------------------------------------------------------ */

/* The finalizer of the object with id resurrect_id (0: any) stores it into
 * a global root, resurrect_budget times in all. */
static _Atomic int resurrect_budget;
static _Atomic uint32_t resurrect_id;
static gt_node *roots[16];
static _Atomic int nroots;

static void hook_resurrect(gt_node *self) {
    uint32_t want = atomic_load(&resurrect_id);
    if (want && self->id != want)
        return;
    if (atomic_fetch_sub(&resurrect_budget, 1) <= 0)
        return;
    rcgc_incref(self);
    roots[atomic_fetch_add(&nroots, 1)] = self;
}

static void resurrect_setup(uint32_t id, int budget) {
    atomic_store(&resurrect_id, id);
    atomic_store(&resurrect_budget, budget);
    atomic_store(&nroots, 0);
    memset(roots, 0, sizeof roots);
    atomic_store(&gt_finalize_hook, hook_resurrect);
}

static void test_finalizer_once_across_collections(void **state) {
    TEST_BEGIN(state);
    enum { N = 4 };
    gt_node *m[N];
    uint32_t ids[N];
    gt_ring(&gt_fin_type, m, N);
    for (int i = 0; i < N; i++)
        ids[i] = m[i]->id;
    resurrect_setup(0, 1);      /* the first finalizer to run resurrects its object */
    gt_drop_all(m, N);

    assert_int_equal(rcgc_collect(), N);
    rcgc_gc_stats s = gc_stats();
    assert_int_equal(s.last.unreachable, N);
    assert_int_equal(s.last.finalized, N);
    assert_int_equal(s.last.resurrected, N);    /* one resurrected, and the rest through it */
    assert_int_equal(s.last.collected, 0);
    assert_int_equal(atomic_load(&nroots), 1);
    for (int i = 0; i < N; i++) {
        gt_assert_intact(m[i]);
        assert_ptr_equal(m[i]->ref[0], m[(i + 1) % N]);
        assert_int_equal(atomic_load(&gt_finalized[ids[i]]), 1);
    }
    /* Reachable now: further collections leave it, and never finalize again. */
    for (int r = 0; r < 3; r++) {
        assert_int_equal(rcgc_collect(), 0);
        assert_int_equal(rcgc_collect_young(), 0);
    }
    rcgc_decref(roots[0]);      /* garbage again */
    assert_int_equal(rcgc_collect(), N);
    s = gc_stats();
    assert_int_equal(s.last.finalized, 0);
    assert_int_equal(s.last.resurrected, 0);
    assert_int_equal(s.last.collected, N);
    for (int i = 0; i < N; i++) {
        gt_assert_died(ids[i]);
        assert_int_equal(atomic_load(&gt_finalized[ids[i]]), 1);
    }
    assert_int_equal(rcgc_collect(), 0);
    gt_assert_clean();
}

/* a <-> b, and a -> c -> d (no cycle there): a's finalizer stores a into a
 * root. All four survive intact and uncleared; dropped again, they are
 * freed without a second finalize. */
static void test_resurrection(void **state) {
    TEST_BEGIN(state);
    gt_node *a = gt_new(&gt_fin_type);
    gt_node *b = gt_new(&gt_fin_type);
    gt_node *c = gt_new(&gt_node_type);
    gt_node *d = gt_new(&gt_node_type);
    gt_link(a, 0, b);
    gt_link(b, 0, a);
    gt_link(a, 1, c);
    gt_link(c, 0, d);
    uint32_t ids[4] = {a->id, b->id, c->id, d->id};
    resurrect_setup(a->id, 1);
    rcgc_decref(a);
    rcgc_decref(b);
    rcgc_decref(c);
    rcgc_decref(d);

    assert_int_equal(rcgc_collect(), 4);
    rcgc_gc_stats s = gc_stats();
    assert_int_equal(s.last.finalized, 2);
    assert_int_equal(s.last.resurrected, 4);
    assert_int_equal(s.last.collected, 0);
    assert_int_equal(atomic_load(&nroots), 1);
    assert_ptr_equal(roots[0], a);
    gt_node *all[4] = {a, b, c, d};
    for (int i = 0; i < 4; i++)
        gt_assert_intact(all[i]);
    assert_ptr_equal(a->ref[0], b);
    assert_ptr_equal(b->ref[0], a);
    assert_ptr_equal(a->ref[1], c);
    assert_ptr_equal(c->ref[0], d);
    assert_int_equal(rcgc_refcount(a), 2);      /* b's and the root's */
    assert_int_equal(rcgc_refcount(b), 1);
    assert_int_equal(rcgc_refcount(c), 1);
    assert_int_equal(rcgc_refcount(d), 1);
    assert_int_equal(atomic_load(&gt_finalized[ids[0]]), 1);
    assert_int_equal(atomic_load(&gt_finalized[ids[1]]), 1);

    rcgc_decref(a);             /* the root's reference */
    assert_int_equal(rcgc_collect(), 4);    /* c and d: tracked, referred to by garbage only */
    for (int i = 0; i < 4; i++)
        gt_assert_died(ids[i]);
    assert_int_equal(atomic_load(&gt_finalized[ids[0]]), 1);
    assert_int_equal(atomic_load(&gt_finalized[ids[1]]), 1);
    assert_int_equal(gc_stats().last.finalized, 0);
    gt_assert_clean();
}

/* Resurrecting one member of a cycle keeps the whole cycle. */
static void test_transitive_resurrection(void **state) {
    TEST_BEGIN(state);
    enum { N = 10 };
    gt_node *m[N];
    uint32_t ids[N];
    gt_ring(&gt_fin_type, m, N);
    for (int i = 0; i < N; i++)
        ids[i] = m[i]->id;
    resurrect_setup(m[5]->id, 1);
    gt_drop_all(m, N);
    assert_int_equal(rcgc_collect(), N);
    assert_ptr_equal(roots[0], m[5]);
    for (int i = 0; i < N; i++) {
        gt_assert_intact(m[i]);
        assert_ptr_equal(m[i]->ref[0], m[(i + 1) % N]);
        assert_int_equal(rcgc_refcount(m[i]), i == 5 ? 2 : 1);
        assert_int_equal(atomic_load(&gt_finalized[ids[i]]), 1);
    }
    assert_int_equal(rcgc_collect(), 0);
    rcgc_decref(m[5]);
    assert_int_equal(rcgc_collect(), N);
    for (int i = 0; i < N; i++) {
        gt_assert_died(ids[i]);
        assert_int_equal(atomic_load(&gt_finalized[ids[i]]), 1);
    }
    gt_assert_clean();
}

/* Each finalizer breaks its own link: the cycle falls apart while the
 * finalizers are still running. No object may be freed before its own
 * finalizer ran, nor finalized after it was destroyed. */
static void hook_break_link(gt_node *self) {
    void *p = __atomic_exchange_n(&self->ref[0], NULL, __ATOMIC_ACQ_REL);
    rcgc_xdecref(p);
}

static void test_finalizer_breaks_cycle(void **state) {
    TEST_BEGIN(state);
    enum { N = 3 };
    gt_node *m[N];
    uint32_t ids[N];
    gt_ring(&gt_fin_type, m, N);
    for (int i = 0; i < N; i++)
        ids[i] = m[i]->id;
    atomic_store(&gt_finalize_hook, hook_break_link);
    gt_drop_all(m, N);
    assert_int_equal(rcgc_collect(), N);
    assert_int_equal(gc_stats().last.resurrected, 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(atomic_load(&gt_finalized[ids[i]]), 1);
        assert_int_equal(atomic_load(&gt_destroyed[ids[i]]), 1);
        assert_true(atomic_load(&gt_finalize_seq[ids[i]]) < atomic_load(&gt_destroy_seq[ids[i]]));
    }
    assert_int_equal(rcgc_collect(), 0);
    gt_assert_clean();
}

/* A finalizer that makes new garbage: that garbage is left to the next
 * collection. */
static _Atomic int alloc_budget;
static uint32_t made_ids[2];

static void hook_make_garbage(gt_node *self) {
    (void)self;
    if (atomic_fetch_sub(&alloc_budget, 1) <= 0)
        return;
    gt_node *x = gt_new(&gt_node_type);
    gt_node *y = gt_new(&gt_node_type);
    TEST_THREAD_CHECK(x && y);
    gt_link(x, 0, y);
    gt_link(y, 0, x);
    made_ids[0] = x->id;
    made_ids[1] = y->id;
    rcgc_decref(x);
    rcgc_decref(y);
}

static void test_finalizer_allocates(void **state) {
    TEST_BEGIN(state);
    gt_node *m[2];
    gt_ring(&gt_fin_type, m, 2);
    uint32_t ids[2] = {m[0]->id, m[1]->id};
    atomic_store(&alloc_budget, 1);
    atomic_store(&gt_finalize_hook, hook_make_garbage);
    gt_drop_all(m, 2);
    assert_int_equal(rcgc_collect(), 2);
    gt_assert_died(ids[0]);
    gt_assert_died(ids[1]);
    assert_true(made_ids[0] != 0);
    assert_int_equal(atomic_load(&gt_destroyed[made_ids[0]]), 0);
    assert_int_equal(atomic_load(&gt_destroyed[made_ids[1]]), 0);
    assert_int_equal(rcgc_collect(), 2);
    gt_assert_died(made_ids[0]);
    gt_assert_died(made_ids[1]);
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * Clear and destroy: every garbage object cleared, destroyed exactly once
 * ------------------------------------------------------------------------ */

static void test_destroy_once_mixed(void **state) {
    TEST_BEGIN(state);
    enum { MAXOBJ = 2000 };
    static uint32_t ids[MAXOBJ];
    size_t nids = 0, tracked = 0;
#define KEEP(n) (ids[nids++] = (n)->id)
    /* 50 self-cycles */
    for (int i = 0; i < 50; i++) {
        gt_node *a = gt_new(&gt_node_type);
        gt_link(a, 0, a);
        KEEP(a);
        rcgc_decref(a);
        tracked++;
    }
    /* 50 two-cycles, half with finalizers, each with a leaf */
    for (int i = 0; i < 50; i++) {
        gt_node *a = gt_new(i & 1 ? &gt_fin_type : &gt_node_type);
        gt_node *b = gt_new(&gt_node_type);
        gt_node *l = gt_new(&gt_leaf_type);
        gt_link(a, 0, b);
        gt_link(b, 0, a);
        gt_link(b, 1, l);
        KEEP(a);
        KEEP(b);
        KEEP(l);
        rcgc_decref(a);
        rcgc_decref(b);
        rcgc_decref(l);
        tracked += 2;
    }
    /* 5 rings of 40 with chords */
    for (int r = 0; r < 5; r++) {
        gt_node *m[40];
        gt_ring(&gt_node_type, m, 40);
        for (int i = 0; i < 40; i++) {
            gt_link(m[i], 1, m[(i * 7 + 3) % 40]);
            KEEP(m[i]);
        }
        gt_drop_all(m, 40);
        tracked += 40;
    }
    /* A container of 200 chained entries, the last pointing back to it */
    gt_node *v = gt_new_vec(200);
    KEEP(v);
    tracked++;
    gt_node *prev = NULL;
    for (int i = 0; i < 200; i++) {
        gt_node *e = gt_new(&gt_node_type);
        gt_link(v, (uint32_t)i, e);
        if (prev)
            gt_link(prev, 0, e);
        KEEP(e);
        tracked++;
        prev = e;
        rcgc_decref(e);
    }
    gt_link(prev, 0, v);
    rcgc_decref(v);
    /* A diamond closed into a cycle: a -> b, a -> c, b -> d, c -> d, d -> a */
    gt_node *a = gt_new(&gt_fin_type), *b = gt_new(&gt_node_type), *c = gt_new(&gt_node_type),
            *d = gt_new(&gt_fin_type);
    gt_link(a, 0, b);
    gt_link(a, 1, c);
    gt_link(b, 0, d);
    gt_link(c, 0, d);
    gt_link(d, 0, a);
    KEEP(a);
    KEEP(b);
    KEEP(c);
    KEEP(d);
    tracked += 4;
    rcgc_decref(a);
    rcgc_decref(b);
    rcgc_decref(c);
    rcgc_decref(d);
#undef KEEP
    assert_int_equal(atomic_load(&gt_destroys), 0);
    assert_int_equal(rcgc_collect(), tracked);
    for (size_t i = 0; i < nids; i++)
        assert_int_equal(atomic_load(&gt_destroyed[ids[i]]), 1);
    assert_int_equal(atomic_load(&gt_destroys), atomic_load(&gt_allocs));
    assert_int_equal(rcgc_collect(), 0);
    assert_int_equal(atomic_load(&gt_destroys), atomic_load(&gt_allocs));
    gt_assert_clean();
}

/* Objects whose type has no clear cannot be broken apart: a cycle of them
 * is found unreachable, reported uncollectable and left alive. */
static void test_uncollectable(void **state) {
    TEST_BEGIN(state);
    gt_node *x = gt_new(&gt_noclear_type), *y = gt_new(&gt_noclear_type);
    gt_link(x, 0, y);
    gt_link(y, 0, x);
    gt_node *p = gt_new(&gt_node_type), *q = gt_new(&gt_node_type);
    gt_link(p, 0, q);
    gt_link(q, 0, p);
    uint32_t ip = p->id, iq = q->id;
    rcgc_decref(x);
    rcgc_decref(y);
    rcgc_decref(p);
    rcgc_decref(q);
    assert_int_equal(rcgc_collect(), 4);
    rcgc_gc_stats s = gc_stats();
    assert_int_equal(s.last.unreachable, 4);
    assert_int_equal(s.last.uncollectable, 2);
    assert_int_equal(s.last.collected, 2);
    gt_assert_died(ip);
    gt_assert_died(iq);
    /* Left alive, untouched (the contract says so: reading them is fine). */
    gt_assert_intact(x);
    gt_assert_intact(y);
    assert_ptr_equal(x->ref[0], y);
    assert_ptr_equal(y->ref[0], x);
    assert_int_equal(rcgc_refcount(x), 1);
    assert_int_equal(rcgc_refcount(y), 1);
    gt_assert_clean();
}

static void test_is_tracked(void **state) {
    TEST_BEGIN(state);
    gt_node *objs[5] = {gt_new(&gt_node_type), gt_new(&gt_fin_type), gt_new(&gt_noclear_type),
                        gt_new_vec(7), gt_new(&gt_leaf_type)};
    assert_true(rcgc_is_tracked(objs[0]));
    assert_true(rcgc_is_tracked(objs[1]));
    assert_true(rcgc_is_tracked(objs[2]));
    assert_true(rcgc_is_tracked(objs[3]));
    assert_false(rcgc_is_tracked(objs[4]));
    /* A collection changes nothing. */
    assert_int_equal(rcgc_collect(), 0);
    assert_true(rcgc_is_tracked(objs[0]));
    assert_false(rcgc_is_tracked(objs[4]));
    gt_drop_all(objs, 5);
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * Freeze
 * ------------------------------------------------------------------------ */

static void test_freeze(void **state) {
    TEST_BEGIN(state);
    gt_node *live = gt_new(&gt_node_type);      /* held */
    gt_node *solo = gt_new(&gt_node_type);      /* held, dies by counting later */
    gt_node *leaf = gt_new(&gt_leaf_type);      /* untracked: never frozen */
    gt_node *g[2];
    gt_ring(&gt_node_type, g, 2);
    uint32_t gid[2] = {g[0]->id, g[1]->id}, solo_id = solo->id;
    gt_drop_all(g, 2);                          /* garbage, about to be frozen */
    assert_int_equal(rcgc_gc_get_freeze_count(), 0);

    rcgc_gc_freeze();
    assert_int_equal(rcgc_gc_get_freeze_count(), 4);
    assert_int_equal(gc_stats().frozen, 4);
    assert_true(rcgc_is_tracked(live));         /* frozen objects are still tracked */
    assert_false(rcgc_is_tracked(leaf));
    assert_int_equal(rcgc_collect(), 0);        /* frozen: never candidates */
    assert_int_equal(rcgc_collect_young(), 0);
    assert_int_equal(atomic_load(&gt_destroyed[gid[0]]), 0);
    assert_int_equal(atomic_load(&gt_destroyed[gid[1]]), 0);

    /* A frozen object's references count as external. */
    gt_node *c[2];
    gt_ring(&gt_node_type, c, 2);
    gt_link(live, 1, c[0]);
    gt_drop_all(c, 2);
    /* New garbage is collected as usual. */
    gt_node *n[2];
    gt_ring(&gt_node_type, n, 2);
    uint32_t nid[2] = {n[0]->id, n[1]->id};
    gt_drop_all(n, 2);
    assert_int_equal(rcgc_collect(), 2);
    gt_assert_died(nid[0]);
    gt_assert_died(nid[1]);
    gt_assert_intact(c[0]);
    gt_assert_intact(c[1]);
    assert_int_equal(rcgc_gc_get_freeze_count(), 4);    /* new objects are not frozen */

    /* A frozen object may still die by counting. */
    rcgc_decref(solo);
    gt_assert_died(solo_id);

    rcgc_gc_unfreeze();
    assert_int_equal(rcgc_gc_get_freeze_count(), 0);
    assert_int_equal(gc_stats().frozen, 0);
    assert_int_equal(rcgc_collect(), 2);        /* the garbage frozen earlier */
    gt_assert_died(gid[0]);
    gt_assert_died(gid[1]);
    gt_assert_intact(live);
    gt_assert_intact(c[0]);

    uint32_t cid[2] = {c[0]->id, c[1]->id};
    rcgc_decref(live);      /* no cycle: counting frees it, and c becomes garbage */
    rcgc_decref(leaf);
    assert_int_equal(rcgc_collect(), 2);
    gt_assert_died(cid[0]);
    gt_assert_died(cid[1]);
    assert_int_equal(atomic_load(&gt_destroys), atomic_load(&gt_allocs));

    /* Freeze twice, unfreeze once: nothing is frozen. */
    gt_node *z = gt_new(&gt_node_type);
    rcgc_gc_freeze();
    rcgc_gc_freeze();
    assert_int_equal(rcgc_gc_get_freeze_count(), 1);
    rcgc_gc_unfreeze();
    assert_int_equal(rcgc_gc_get_freeze_count(), 0);
    rcgc_decref(z);
    gt_assert_clean();
}

/* The freeze count is the number of frozen objects (gc.get_freeze_count:
 * "the number of objects in the permanent generation"): one that dies is
 * not counted any more, nor in the statistics. */
static void test_freeze_count_drops_dead_objects(void **state) {
    TEST_BEGIN(state);
    gt_node *objs[3];
    for (int i = 0; i < 3; i++)
        objs[i] = gt_new(&gt_node_type);
    rcgc_gc_freeze();
    assert_int_equal(rcgc_gc_get_freeze_count(), 3);
    rcgc_decref(objs[0]);
    assert_int_equal(atomic_load(&gt_destroys), 1);
    assert_int_equal(rcgc_gc_get_freeze_count(), 2);
    assert_int_equal(gc_stats().frozen, 2);
    rcgc_gc_unfreeze();
    assert_int_equal(rcgc_gc_get_freeze_count(), 0);
    rcgc_decref(objs[1]);
    rcgc_decref(objs[2]);
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * Young and full collections
 * ------------------------------------------------------------------------ */

/* Rounds of young garbage, each collected young, then rcgc_heap_collect:
 * it releases the emptied pages, the one the collection stamped as young
 * among them, so the next round allocates from a page that became the
 * allocation page without a slow-path allocation. Its objects must still
 * count as young (gc_bench found 0 of 10,000 in every other round before
 * heap.c stamped pages in direct_update). */
typedef struct pair_node {
    struct pair_node *a, *b;
} pair_node;
static int pair_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    pair_node *n = self;
    RCGC_VISIT(n->a);
    RCGC_VISIT(n->b);
    return 0;
}
static void pair_clear(void *self) {
    pair_node *n = self;
    rcgc_set((void **)&n->a, NULL);
    rcgc_set((void **)&n->b, NULL);
}
static const rcgc_type pair_type = {"gc_test.pair", sizeof(pair_node), pair_traverse, pair_clear,
                                    NULL, NULL, 0};

static void test_young_after_pages_released(void **state) {
    TEST_BEGIN(state);
    enum { N = 10000 };
    static pair_node *objs[N];
    rcgc_collect();
    rcgc_collect();
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < N; i++)
            objs[i] = rcgc_new(&pair_type);
        for (int i = 0; i < N; i++)
            rcgc_set((void **)&objs[i]->a, objs[(i + 1) % N]);
        for (int i = 0; i < N; i++)
            rcgc_decref(objs[i]);
        assert_int_equal(rcgc_collect_young(), N);
        rcgc_heap_collect();    /* releases the emptied pages, the stamped one too */
    }
    assert_int_equal(rcgc_collect(), 0);
}

static void test_young_vs_full(void **state) {
    TEST_BEGIN(state);
    gt_node *p = gt_new(&gt_node_type);     /* an old object, held */
    gt_node *o[2];
    gt_ring(&gt_node_type, o, 2);           /* an old cycle, held through o[0] */
    uint32_t oid[2] = {o[0]->id, o[1]->id};
    rcgc_decref(o[1]);
    assert_int_equal(rcgc_collect(), 0);    /* p and o are old now */
    rcgc_decref(o[0]);                      /* old garbage */

    gt_node *y[2];
    gt_ring(&gt_node_type, y, 2);           /* young garbage */
    uint32_t yid[2] = {y[0]->id, y[1]->id};
    gt_drop_all(y, 2);
    gt_node *z[2];
    gt_ring(&gt_node_type, z, 2);           /* young, referred to by old p */
    uint32_t zid[2] = {z[0]->id, z[1]->id};
    gt_link(p, 0, z[0]);
    gt_drop_all(z, 2);

    rcgc_gc_stats before = gc_stats();
    assert_int_equal(rcgc_collect_young(), 2);
    rcgc_gc_stats s = gc_stats();
    assert_int_equal(s.last.young, 1);
    assert_int_equal(s.young_collections, before.young_collections + 1);
    assert_int_equal(s.full_collections, before.full_collections);
    gt_assert_died(yid[0]);
    gt_assert_died(yid[1]);
    gt_assert_intact(z[0]);
    gt_assert_intact(z[1]);
    assert_int_equal(atomic_load(&gt_destroyed[oid[0]]), 0);   /* old garbage: not a candidate */
    assert_int_equal(atomic_load(&gt_destroyed[oid[1]]), 0);
    assert_int_equal(rcgc_collect_young(), 0);

    assert_int_equal(rcgc_collect(), 2);    /* the old cycle */
    s = gc_stats();
    assert_int_equal(s.last.young, 0);
    assert_int_equal(s.full_collections, before.full_collections + 1);
    gt_assert_died(oid[0]);
    gt_assert_died(oid[1]);
    gt_assert_intact(z[0]);

    gt_link(p, 0, NULL);                    /* z: garbage, and old by now */
    assert_int_equal(rcgc_collect_young(), 0);
    assert_int_equal(atomic_load(&gt_destroyed[zid[0]]), 0);
    assert_int_equal(rcgc_collect(), 2);
    gt_assert_died(zid[0]);
    gt_assert_died(zid[1]);
    rcgc_decref(p);
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * Thresholds and automatic collections
 * ------------------------------------------------------------------------ */

static void test_thresholds(void **state) {
    TEST_BEGIN(state);
    size_t th = 0;
    unsigned pct = 0;
    if (!getenv("RCGC_GC_THRESHOLD") && !getenv("RCGC_GC_FULL_PCT")) {
        rcgc_gc_get_threshold(&th, &pct);
        assert_int_equal(th, 2000);
        assert_int_equal(pct, 25);
    }
    rcgc_gc_set_threshold(500, 10);
    rcgc_gc_get_threshold(&th, &pct);
    assert_int_equal(th, 500);
    assert_int_equal(pct, 10);
    rcgc_gc_set_threshold(0, 25);
    rcgc_gc_get_threshold(&th, &pct);
    assert_int_equal(th, 0);
    assert_int_equal(pct, 25);

    /* From the configuration; automatic collections on after rcgc_init. */
    rcgc_shutdown();
    rcgc_config cfg = {.gc_threshold = 700, .gc_full_pct = 40};
    assert_int_equal(rcgc_init(&cfg), 0);
    assert_true(rcgc_gc_is_enabled());
    rcgc_gc_get_threshold(&th, &pct);
    assert_int_equal(th, 700);
    assert_int_equal(pct, 40);
    rcgc_gc_disable();
    assert_false(rcgc_gc_is_enabled());

    /* The count: tracked allocations - deallocations since the last
     * collection, up to 64 buffered per thread. */
    enum { N = 1000 };
    static gt_node *objs[N];
    rcgc_collect();
    assert_true(rcgc_gc_get_count() <= 64);
    for (int i = 0; i < N; i++)
        objs[i] = gt_new(&gt_node_type);
    size_t c = rcgc_gc_get_count();
    if (c + 64 < N || c > N)
        fail_msg("after %d tracked allocations the count is %zu", N, c);
    gt_node *leaves[100];
    for (int i = 0; i < 100; i++)
        leaves[i] = gt_new(&gt_leaf_type);   /* untracked: not counted */
    size_t c2 = rcgc_gc_get_count();
    if (c2 + 64 < c || c2 > c + 64)
        fail_msg("untracked allocations moved the count from %zu to %zu", c, c2);
    gt_drop_all(objs, 600);
    c = rcgc_gc_get_count();
    if (c + 128 < N - 600 || c > N - 600 + 128)
        fail_msg("after %d allocations and 600 deallocations the count is %zu", N, c);
    rcgc_collect();
    assert_true(rcgc_gc_get_count() <= 64);
    gt_drop_all(objs + 600, N - 600);
    gt_drop_all(leaves, 100);
    gt_assert_clean();
}

/* cycles garbage 2-cycles, anonymous; returns nothing. */
static void make_garbage_cycles(int cycles) {
    for (int i = 0; i < cycles; i++) {
        gt_node *a = gt_new_anon(&gt_node_type);
        gt_node *b = gt_new_anon(&gt_node_type);
        assert_true(a && b);
        gt_link(a, 0, b);
        gt_link(b, 0, a);
        rcgc_decref(a);
        rcgc_decref(b);
    }
}

/* ------------------------------------------------------------------------
 * The collection policy: possible roots (lib/gc.c, "Triggering")
 * ------------------------------------------------------------------------ */

/* A decrement that leaves a tracked object alive makes it a possible root;
 * its death takes that back, and so does a collection that visits it. The
 * first possible root after none is published at once; later changes are
 * buffered per thread until a collection folds them in. */
static void test_possible_roots(void **state) {
    TEST_BEGIN(state);
    rcgc_collect();
    assert_int_equal(gc_stats().possible_roots, 0);
    /* Untracked objects are never possible roots. */
    static const rcgc_type plain = {.name = "plain", .size = 16};
    void *u = rcgc_new(&plain);
    rcgc_incref(u);
    rcgc_decref(u);
    assert_int_equal(gc_stats().possible_roots, 0);
    rcgc_decref(u);
    /* A tracked object whose count goes 2 -> 1: a possible root, once. */
    gt_node *a = gt_new(&gt_node_type);
    rcgc_incref(a);
    rcgc_decref(a);
    assert_int_equal(gc_stats().possible_roots, 1);
    rcgc_incref(a);
    rcgc_decref(a);
    rcgc_collect_young();       /* folds the buffers in */
    assert_int_equal(gc_stats().possible_roots, 0);  /* young a visited, survived */
    /* Now old: a young collection does not visit it; a full one does. */
    rcgc_incref(a);
    rcgc_decref(a);
    assert_int_equal(gc_stats().possible_roots, 1);
    rcgc_collect_young();
    assert_int_equal(gc_stats().possible_roots, 1);
    rcgc_collect();
    assert_int_equal(gc_stats().possible_roots, 0);
    /* A possible root that dies is no longer one. */
    rcgc_incref(a);
    rcgc_decref(a);
    assert_int_equal(gc_stats().possible_roots, 1);
    uint32_t id = a->id;
    rcgc_decref(a);
    gt_assert_died(id);
    rcgc_collect();
    assert_int_equal(gc_stats().possible_roots, 0);
    /* Garbage found by a collection is not counted after it. */
    make_garbage_cycles(100);
    assert_true(gc_stats().possible_roots > 0);
    assert_int_equal(rcgc_collect(), 200);
    assert_int_equal(gc_stats().possible_roots, 0);
    gt_assert_clean();
}

/* A binary tree of 2^(depth+1) - 1 gt_nodes. steal: each child's birth
 * reference goes into its parent (no decrement leaves anything alive, as in
 * bench/binary_trees.c); else rcgc_set and a decrement of the child, as most
 * code is written (every node becomes a possible root, until it dies). */
static gt_node *policy_tree(int depth, bool steal) {
    gt_node *n = gt_new_anon(&gt_node_type);
    assert_non_null(n);
    if (depth > 0) {
        for (int i = 0; i < 2; i++) {
            gt_node *c = policy_tree(depth - 1, steal);
            if (steal) {
                n->ref[i] = c;
            } else {
                gt_link(n, (uint32_t)i, c);
                rcgc_decref(c);
            }
        }
    }
    return n;
}

/* Work that makes no cycles runs (almost) no collections. */
static void test_policy_no_cycles(void **state) {
    TEST_BEGIN(state);
    const int trees = SCALE(400, 60);
    rcgc_gc_set_threshold(500, 25);
    rcgc_gc_enable();
    for (int steal = 1; steal >= 0; steal--) {
        rcgc_collect();
        rcgc_gc_stats before = gc_stats();
        for (int i = 0; i < trees; i++)
            rcgc_decref(policy_tree(11, steal));   /* 4095 nodes, 8x the threshold */
        rcgc_gc_stats after = gc_stats();
        uint64_t n = after.collections - before.collections;
        print_message("(%s: %llu automatic collections for %d trees of 4095 nodes, threshold 500, "
                      "%llu found something)\n", steal ? "stolen references" : "rcgc_set",
                      (unsigned long long)n, trees,
                      (unsigned long long)(after.unreachable - before.unreachable));
        assert_int_equal(after.unreachable, before.unreachable);
        /* Stolen: no possible roots, only the backstop (8x the threshold,
         * doubling). rcgc_set: possible roots while each tree lives; the
         * threshold doubles per empty collection until one tree fits. */
        if (n > (steal ? 3u : 6u))
            fail_msg("%llu automatic collections found nothing (%s)", (unsigned long long)n,
                     steal ? "stolen references" : "rcgc_set");
    }
    assert_int_equal(atomic_load(&gt_destroys), atomic_load(&gt_allocs));
    gt_assert_clean();
}

/* Steady cyclic garbage beside a live heap: the tracked heap stays below
 * twice the live one, collections are young, and they find garbage. */
static void test_policy_steady_cycles(void **state) {
    TEST_BEGIN(state);
    const int depth = SCALE(14, 11);              /* 32767 or 4095 live nodes */
    const int cycles = SCALE(200000, 20000);
    gt_node *live = policy_tree(depth, true);
    size_t live_nodes = ((size_t)2 << depth) - 1;
    rcgc_collect();                                /* the live tree is old */
    rcgc_gc_set_threshold(500, 25);
    rcgc_gc_enable();
    rcgc_gc_stats before = gc_stats();
    size_t max_tracked = 0;
    for (int i = 0; i < cycles; i++) {
        make_garbage_cycles(1);
        size_t tracked = atomic_load(&gt_allocs) - atomic_load(&gt_destroys);
        if (tracked > max_tracked)
            max_tracked = tracked;
    }
    rcgc_gc_stats after = gc_stats();
    uint64_t n = after.collections - before.collections;
    uint64_t young = after.young_collections - before.young_collections;
    print_message("(%d garbage cycles beside %zu live nodes: %llu collections, %llu young, "
                  "tracked objects at most %zu)\n", cycles, live_nodes, (unsigned long long)n,
                  (unsigned long long)young, max_tracked);
    assert_true(n > 0);
    if (max_tracked >= 2 * live_nodes)
        fail_msg("tracked objects reached %zu with %zu live", max_tracked, live_nodes);
    /* Every collection here finds the garbage made since the last. */
    assert_int_equal(after.empty_streak, 0);
    if (young * 4 < n * 3)
        fail_msg("only %llu of %llu collections were young", (unsigned long long)young,
                 (unsigned long long)n);
    rcgc_gc_disable();
    rcgc_decref(live);
    rcgc_collect();
    assert_int_equal(atomic_load(&gt_destroys), atomic_load(&gt_allocs));
    gt_assert_clean();
}

/* Old garbage needs a full collection: a cycle cut loose from a large old
 * heap (its last outside reference dropped, a possible root among old
 * objects) is found by the automatic collections that follow, while new
 * garbage keeps them running. */
static void test_policy_old_garbage(void **state) {
    TEST_BEGIN(state);
    const int depth = SCALE(13, 10);
    gt_node *live = policy_tree(depth, true);
    rcgc_collect();                                /* old */
    /* An old cycle hanging off the root: root -> a <-> b. */
    gt_node *a = gt_new(&gt_node_type), *b = gt_new(&gt_node_type);
    gt_link(live, 2, a);
    gt_link(a, 0, b);
    gt_link(b, 0, a);
    uint32_t ida = a->id, idb = b->id;
    rcgc_decref(a);
    rcgc_decref(b);
    rcgc_collect();                                /* a and b are old too */
    rcgc_gc_set_threshold(500, 25);
    rcgc_gc_enable();
    gt_link(live, 2, NULL);                        /* old garbage now */
    rcgc_gc_stats before = gc_stats();
    for (int i = 0; i < SCALE(200, 50) && !atomic_load(&gt_destroyed[ida]); i++)
        make_garbage_cycles(1000);
    rcgc_gc_stats after = gc_stats();
    print_message("(old cycle found after %llu collections, %llu full)\n",
                  (unsigned long long)(after.collections - before.collections),
                  (unsigned long long)(after.full_collections - before.full_collections));
    gt_assert_died(ida);
    gt_assert_died(idb);
    rcgc_gc_disable();
    rcgc_decref(live);
    rcgc_collect();
    gt_assert_clean();
}

/* Cycles made only of stolen references (no decrement ever leaves one
 * alive) have no possible roots: the backstop still finds them. */
static void test_policy_backstop(void **state) {
    TEST_BEGIN(state);
    const int cycles = SCALE(20000, 4000);
    rcgc_gc_set_threshold(100, 25);
    rcgc_gc_enable();
    rcgc_collect();
    rcgc_gc_stats before = gc_stats();
    for (int i = 0; i < cycles; i++) {
        gt_node *x = gt_new_anon(&gt_node_type), *y = gt_new_anon(&gt_node_type);
        assert_true(x && y);
        x->ref[0] = y;      /* y's birth reference */
        y->ref[0] = x;      /* x's */
    }
    assert_int_equal(gc_stats().possible_roots, 0);
    rcgc_gc_stats after = gc_stats();
    print_message("(%d stolen-reference cycles: %llu automatic collections)\n", cycles,
                  (unsigned long long)(after.collections - before.collections));
    assert_true(after.collections > before.collections);
    assert_true(atomic_load(&gt_destroys) >= atomic_load(&gt_allocs) / 2);
    rcgc_collect();
    assert_int_equal(atomic_load(&gt_destroys), atomic_load(&gt_allocs));
    gt_assert_clean();
}

static void test_automatic_collection(void **state) {
    TEST_BEGIN(state);
    const int cycles = SCALE(5000, 2000);
    rcgc_gc_set_threshold(100, 25);
    rcgc_gc_enable();
    assert_true(rcgc_gc_is_enabled());
    rcgc_gc_stats before = gc_stats();
    make_garbage_cycles(cycles);
    rcgc_gc_stats after = gc_stats();
    print_message("(%llu automatic collections for %d garbage cycles, threshold 100)\n",
                  (unsigned long long)(after.collections - before.collections), cycles);
    if (after.collections - before.collections < 5)
        fail_msg("only %llu automatic collections for %d garbage cycles with threshold 100",
                 (unsigned long long)(after.collections - before.collections), cycles);
    assert_true(after.young_collections > before.young_collections);
    assert_true(atomic_load(&gt_destroys) >= atomic_load(&gt_allocs) / 2);

    /* Disabled: none, however much garbage; rcgc_collect still works. */
    rcgc_gc_disable();
    assert_false(rcgc_gc_is_enabled());
    before = gc_stats();
    size_t destroys = atomic_load(&gt_destroys);
    make_garbage_cycles(cycles);
    after = gc_stats();
    assert_int_equal(after.collections, before.collections);
    assert_int_equal(atomic_load(&gt_destroys), destroys);
    assert_true(rcgc_collect() >= (size_t)2 * cycles);
    assert_int_equal(atomic_load(&gt_destroys), atomic_load(&gt_allocs));

    /* Enabled with threshold 0: off all the same. */
    rcgc_gc_set_threshold(0, 25);
    rcgc_gc_enable();
    before = gc_stats();
    make_garbage_cycles(cycles);
    assert_int_equal(gc_stats().collections, before.collections);

    /* A threshold again: collections resume. */
    rcgc_gc_set_threshold(100, 25);
    before = gc_stats();
    make_garbage_cycles(cycles);
    assert_true(gc_stats().collections > before.collections);
    rcgc_gc_disable();
    rcgc_collect();
    assert_int_equal(atomic_load(&gt_destroys), atomic_load(&gt_allocs));
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * Callbacks
 * ------------------------------------------------------------------------ */

typedef struct {
    int starts, stops;
    int bad_order;              /* STOP without START, or START twice */
    int wrong_thread;
    int open;
    rcgc_gc_info start, stop;
    pthread_t thread;           /* expected caller */
} cb_rec;

static void record_cb(rcgc_gc_phase phase, const rcgc_gc_info *info, void *arg) {
    cb_rec *r = arg;
    if (!pthread_equal(pthread_self(), r->thread))
        r->wrong_thread++;
    if (phase == RCGC_GC_START) {
        if (r->open)
            r->bad_order++;
        r->open = 1;
        r->starts++;
        r->start = *info;
    } else {
        if (!r->open)
            r->bad_order++;
        r->open = 0;
        r->stops++;
        r->stop = *info;
    }
    /* The world is running: allocating and freeing is fine here. */
    gt_node *tmp = gt_new_anon(&gt_leaf_type);
    if (tmp)
        rcgc_decref(tmp);
}

static void other_cb(rcgc_gc_phase phase, const rcgc_gc_info *info, void *arg) {
    (void)phase;
    (void)info;
    (void)arg;
}

static void test_callbacks(void **state) {
    TEST_BEGIN(state);
    cb_rec r1 = {.thread = pthread_self()}, r2 = {.thread = pthread_self()};
    int unused;
    assert_int_equal(rcgc_gc_callback_add(record_cb, &r1), 0);
    assert_int_equal(rcgc_gc_callback_add(record_cb, &r1), EEXIST);
    assert_int_equal(rcgc_gc_callback_add(record_cb, &r2), 0);
    assert_int_equal(rcgc_gc_callback_remove(record_cb, &unused), ENOENT);
    assert_int_equal(rcgc_gc_callback_remove(other_cb, &r1), ENOENT);

    gt_node *live = gt_new(&gt_node_type);
    gt_node *m[2];
    gt_ring(&gt_fin_type, m, 2);
    gt_drop_all(m, 2);
    assert_int_equal(rcgc_collect(), 2);
    cb_rec *rs[2] = {&r1, &r2};
    for (int i = 0; i < 2; i++) {
        cb_rec *r = rs[i];
        assert_int_equal(r->starts, 1);
        assert_int_equal(r->stops, 1);
        assert_int_equal(r->bad_order, 0);
        assert_int_equal(r->wrong_thread, 0);
        assert_int_equal(r->start.collection, 1);   /* the first since rcgc_init */
        assert_int_equal(r->start.young, 0);
        assert_int_equal(r->stop.collection, 1);
        assert_int_equal(r->stop.young, 0);
        assert_int_equal(r->stop.aborted, 0);
        assert_true(r->stop.workers >= 1);
        assert_true(r->stop.candidates >= 3);
        assert_int_equal(r->stop.unreachable, 2);
        assert_int_equal(r->stop.collected, 2);
        assert_int_equal(r->stop.uncollectable, 0);
        assert_int_equal(r->stop.finalized, 2);
        assert_int_equal(r->stop.resurrected, 0);
        assert_int_equal(r->stop.saved, 0);
        assert_true(r->stop.duration_ns > 0);
        assert_true(r->stop.duration_ns >= r->stop.pause_ns);
    }
    rcgc_gc_stats s = gc_stats();
    assert_int_equal(s.last.collection, r1.stop.collection);
    assert_int_equal(s.last.unreachable, r1.stop.unreachable);
    assert_int_equal(s.last.candidates, r1.stop.candidates);
    assert_int_equal(s.last.pause_ns, r1.stop.pause_ns);

    assert_int_equal(rcgc_collect_young(), 0);
    assert_int_equal(r1.starts, 2);
    assert_int_equal(r1.stops, 2);
    assert_int_equal(r1.start.collection, 2);
    assert_int_equal(r1.stop.collection, 2);
    assert_int_equal(r1.start.young, 1);
    assert_int_equal(r1.stop.young, 1);
    assert_int_equal(r1.stop.unreachable, 0);

    assert_int_equal(rcgc_gc_callback_remove(record_cb, &r1), 0);
    assert_int_equal(rcgc_gc_callback_remove(record_cb, &r1), ENOENT);
    rcgc_collect();
    assert_int_equal(r1.starts, 2);
    assert_int_equal(r2.starts, 3);
    assert_int_equal(r2.stops, 3);
    assert_int_equal(r2.stop.collection, 3);
    assert_int_equal(rcgc_gc_callback_remove(record_cb, &r2), 0);
    rcgc_collect();
    assert_int_equal(r2.starts, 3);
    assert_int_equal(r1.bad_order + r2.bad_order, 0);
    rcgc_decref(live);
    gt_assert_clean();
}

static void test_callback_limit(void **state) {
    TEST_BEGIN(state);
    static cb_rec recs[33];
    for (int i = 0; i < 33; i++)
        recs[i] = (cb_rec){.thread = pthread_self()};
    for (int i = 0; i < 32; i++)
        assert_int_equal(rcgc_gc_callback_add(record_cb, &recs[i]), 0);
    assert_int_equal(rcgc_gc_callback_add(record_cb, &recs[32]), ENOMEM);
    assert_int_equal(rcgc_gc_callback_add(record_cb, &recs[0]), EEXIST);
    assert_int_equal(rcgc_gc_callback_remove(record_cb, &recs[5]), 0);
    assert_int_equal(rcgc_gc_callback_add(record_cb, &recs[32]), 0);
    rcgc_collect();
    for (int i = 0; i < 33; i++) {
        assert_int_equal(recs[i].starts, i == 5 ? 0 : 1);
        assert_int_equal(recs[i].stops, i == 5 ? 0 : 1);
    }
    for (int i = 0; i < 33; i++)
        assert_int_equal(rcgc_gc_callback_remove(record_cb, &recs[i]), i == 5 ? ENOENT : 0);
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * Introspection
 * ------------------------------------------------------------------------ */

static int is_gt(const void *o) {
    const rcgc_type *t = rcgc_typeof(o);
    return t == &gt_node_type || t == &gt_fin_type || t == &gt_noclear_type ||
           t == &gt_leaf_type || t == &gt_vec_type || t == &gt_shared_type;
}

typedef struct {
    size_t calls;
    size_t ours;
    uint32_t seen[64];
    size_t nseen;
    int bad;                    /* a dead object, or one without a reference */
    int collect_inside;         /* run rcgc_collect from the first call */
    size_t collected_inside;
    uint32_t stop_at_id;        /* return 7 when this id is seen */
    const void *x;              /* refcount checked: the snapshot holds one */
    size_t x_count;
} walk;

static int walk_fn(void *o, void *arg) {
    walk *w = arg;
    w->calls++;
    if (w->collect_inside == 1) {
        w->collect_inside = 2;
        w->collected_inside = rcgc_collect();
    }
    if (!is_gt(o))
        return 0;
    gt_node *n = o;
    w->ours++;
    if (n->canary != GT_CANARY_ALIVE || rcgc_refcount(o) == 0)
        w->bad++;
    if (o == w->x)
        w->x_count = rcgc_refcount(o);
    if (w->nseen < 64)
        w->seen[w->nseen++] = n->id;
    if (w->stop_at_id && n->id == w->stop_at_id)
        return 7;
    return 0;
}

static int seen(const walk *w, uint32_t id) {
    for (size_t i = 0; i < w->nseen; i++)
        if (w->seen[i] == id)
            return 1;
    return 0;
}

static void test_get_objects(void **state) {
    TEST_BEGIN(state);
    gt_node *x = gt_new(&gt_node_type);                 /* tracked, held */
    gt_node *leaf = gt_new(&gt_leaf_type);              /* untracked */
    gt_node *y = gt_new(&gt_node_type);
    uint32_t yid = y->id;
    rcgc_decref(y);                                     /* freed by counting */
    gt_node *g[2];
    gt_ring(&gt_node_type, g, 2);                       /* garbage, not yet collected */
    uint32_t gid[2] = {g[0]->id, g[1]->id};
    gt_drop_all(g, 2);

    walk w = {.collect_inside = 1, .x = x};
    assert_int_equal(rcgc_gc_get_objects(walk_fn, &w), 0);
    assert_int_equal(w.ours, 3);
    assert_true(w.calls >= 3);
    assert_int_equal(w.bad, 0);
    assert_true(seen(&w, x->id));
    assert_true(seen(&w, gid[0]));
    assert_true(seen(&w, gid[1]));
    assert_false(seen(&w, yid));
    assert_false(seen(&w, leaf->id));
    /* The snapshot held references: the collection inside found nothing. */
    assert_int_equal(w.collected_inside, 0);
    assert_int_equal(w.x_count, 2);
    assert_int_equal(rcgc_refcount(x), 1);      /* and gave them back */

    assert_int_equal(rcgc_collect(), 2);
    walk w2 = {0};
    assert_int_equal(rcgc_gc_get_objects(walk_fn, &w2), 0);
    assert_int_equal(w2.ours, 1);
    assert_true(seen(&w2, x->id));
    assert_false(seen(&w2, gid[0]));

    /* A non-zero return stops the walk and is returned. */
    gt_node *more[10];
    for (int i = 0; i < 10; i++)
        more[i] = gt_new(&gt_node_type);
    walk w3 = {.stop_at_id = x->id};
    assert_int_equal(rcgc_gc_get_objects(walk_fn, &w3), 7);
    assert_true(w3.ours >= 1 && w3.ours <= 11);
    assert_int_equal(w3.seen[w3.nseen - 1], x->id);
    assert_int_equal(rcgc_refcount(x), 1);
    gt_drop_all(more, 10);
    rcgc_decref(x);
    rcgc_decref(leaf);
    gt_assert_clean();
}

typedef struct {
    void *got[16];
    size_t n;
    int stop_value;
} collect_ptrs;

static int collect_ptr_fn(void *o, void *arg) {
    collect_ptrs *c = arg;
    if (c->n < 16)
        c->got[c->n] = o;
    c->n++;
    return c->stop_value;
}

static int has_ptr(const collect_ptrs *c, const void *p) {
    for (size_t i = 0; i < c->n && i < 16; i++)
        if (c->got[i] == p)
            return 1;
    return 0;
}

static void test_get_referrers_referents(void **state) {
    TEST_BEGIN(state);
    /* a -> b, c -> b, b -> d, b -> e (untracked), f alone */
    gt_node *a = gt_new(&gt_node_type), *b = gt_new(&gt_node_type), *c = gt_new(&gt_node_type),
            *d = gt_new(&gt_node_type), *e = gt_new(&gt_leaf_type), *f = gt_new(&gt_node_type);
    gt_link(a, 0, b);
    gt_link(c, 2, b);
    gt_link(b, 0, d);
    gt_link(b, 3, e);

    collect_ptrs r = {0};
    assert_int_equal(rcgc_gc_get_referrers(b, collect_ptr_fn, &r), 0);
    assert_int_equal(r.n, 2);
    assert_true(has_ptr(&r, a));
    assert_true(has_ptr(&r, c));

    collect_ptrs t = {0};
    assert_int_equal(rcgc_gc_get_referents(b, collect_ptr_fn, &t), 0);
    assert_int_equal(t.n, 2);
    assert_true(has_ptr(&t, d));
    assert_true(has_ptr(&t, e));

    collect_ptrs ta = {0};
    assert_int_equal(rcgc_gc_get_referents(a, collect_ptr_fn, &ta), 0);
    assert_int_equal(ta.n, 1);
    assert_ptr_equal(ta.got[0], b);

    collect_ptrs re = {0};
    assert_int_equal(rcgc_gc_get_referrers(e, collect_ptr_fn, &re), 0);
    assert_int_equal(re.n, 1);
    assert_ptr_equal(re.got[0], b);

    collect_ptrs none = {0};
    assert_int_equal(rcgc_gc_get_referrers(a, collect_ptr_fn, &none), 0);
    assert_int_equal(rcgc_gc_get_referrers(f, collect_ptr_fn, &none), 0);
    assert_int_equal(rcgc_gc_get_referents(f, collect_ptr_fn, &none), 0);
    assert_int_equal(rcgc_gc_get_referents(e, collect_ptr_fn, &none), 0);  /* no traverse */
    assert_int_equal(none.n, 0);

    collect_ptrs stop = {.stop_value = 5};
    assert_int_equal(rcgc_gc_get_referrers(b, collect_ptr_fn, &stop), 5);
    assert_int_equal(stop.n, 1);
    collect_ptrs stop2 = {.stop_value = -3};
    assert_int_equal(rcgc_gc_get_referents(b, collect_ptr_fn, &stop2), -3);
    assert_int_equal(stop2.n, 1);

    /* Nothing changed: counts as before. */
    assert_int_equal(rcgc_refcount(b), 3);
    assert_int_equal(rcgc_refcount(d), 2);
    assert_int_equal(rcgc_refcount(e), 2);
    gt_node *all[6] = {a, b, c, d, e, f};
    gt_drop_all(all, 6);
    assert_int_equal(rcgc_collect(), 0);
    assert_int_equal(atomic_load(&gt_destroys), 6);
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * Save-all
 * ------------------------------------------------------------------------ */

static void test_saveall(void **state) {
    TEST_BEGIN(state);
    assert_int_equal(rcgc_gc_get_debug(), 0);
    rcgc_gc_set_debug(RCGC_GC_DEBUG_SAVEALL);
    assert_int_equal(rcgc_gc_get_debug(), RCGC_GC_DEBUG_SAVEALL);
    gt_node *m[3];
    gt_ring(&gt_fin_type, m, 3);
    uint32_t ids[3] = {m[0]->id, m[1]->id, m[2]->id};
    gt_drop_all(m, 3);

    assert_int_equal(rcgc_collect(), 3);
    rcgc_gc_stats s = gc_stats();
    assert_int_equal(s.last.saved, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(atomic_load(&gt_cleared[ids[i]]), 0);
        assert_int_equal(atomic_load(&gt_destroyed[ids[i]]), 0);
    }
    walk w = {0};
    assert_int_equal(rcgc_gc_get_garbage(walk_fn, &w), 0);
    assert_int_equal(w.ours, 3);
    assert_int_equal(w.calls, 3);
    assert_int_equal(w.bad, 0);
    for (int i = 0; i < 3; i++)
        assert_true(seen(&w, ids[i]));
    /* Saved objects are referenced: not garbage any more. */
    assert_int_equal(rcgc_collect(), 0);
    walk w2 = {.stop_at_id = ids[1]};
    assert_int_equal(rcgc_gc_get_garbage(walk_fn, &w2), 7);

    assert_int_equal(rcgc_gc_clear_garbage(), 3);
    assert_int_equal(rcgc_gc_clear_garbage(), 0);
    walk w3 = {0};
    assert_int_equal(rcgc_gc_get_garbage(walk_fn, &w3), 0);
    assert_int_equal(w3.calls, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&gt_destroyed[ids[i]]), 0);   /* still a cycle */

    rcgc_gc_set_debug(0);
    assert_int_equal(rcgc_collect(), 3);
    for (int i = 0; i < 3; i++) {
        gt_assert_died(ids[i]);
        assert_true(atomic_load(&gt_finalized[ids[i]]) <= 1);
    }
    assert_int_equal(gc_stats().last.saved, 0);
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------ */

static void test_gc_stats(void **state) {
    TEST_BEGIN(state);
    rcgc_gc_stats s0 = gc_stats();
    assert_int_equal(s0.collections, 0);
    assert_int_equal(s0.frozen, 0);
    gt_node *live[10];
    for (int i = 0; i < 10; i++)
        live[i] = gt_new(&gt_node_type);
    for (int i = 0; i < 3; i++) {
        gt_node *m[2];
        gt_ring(&gt_fin_type, m, 2);
        gt_drop_all(m, 2);
    }
    assert_int_equal(rcgc_collect(), 6);
    rcgc_gc_stats s1 = gc_stats();
    assert_int_equal(s1.collections, s0.collections + 1);
    assert_int_equal(s1.full_collections, s0.full_collections + 1);
    assert_int_equal(s1.young_collections, s0.young_collections);
    assert_int_equal(s1.unreachable, s0.unreachable + 6);
    assert_int_equal(s1.collected, s0.collected + 6);
    assert_int_equal(s1.finalized, s0.finalized + 6);
    assert_int_equal(s1.uncollectable, s0.uncollectable);
    assert_int_equal(s1.resurrected, s0.resurrected);
    assert_int_equal(s1.aborted, 0);
    assert_true(s1.candidates >= s0.candidates + 16);
    assert_true(s1.pause_total_ns >= s0.pause_total_ns);
    assert_true(s1.pause_max_ns <= s1.pause_total_ns);
    assert_int_equal(s1.last.collection, s1.collections);
    assert_int_equal(s1.last.unreachable, 6);
    assert_int_equal(s1.tracked_live, 10);
    assert_int_equal(test_stats().gc_collections, s1.collections);

    assert_int_equal(rcgc_collect_young(), 0);
    rcgc_gc_stats s2 = gc_stats();
    assert_int_equal(s2.collections, s1.collections + 1);
    assert_int_equal(s2.young_collections, s1.young_collections + 1);
    assert_int_equal(s2.unreachable, s1.unreachable);
    assert_true(s2.pause_total_ns >= s1.pause_total_ns);
    assert_true(s2.pause_max_ns >= s1.pause_max_ns);
    assert_int_equal(s2.last.young, 1);
    gt_drop_all(live, 10);
    gt_assert_clean();
}

/* rcgc_shutdown runs a full collection first: finalizers run, garbage dies. */
static void test_shutdown_collects(void **state) {
    TEST_BEGIN(state);
    gt_node *m[5], *p[2];
    gt_ring(&gt_fin_type, m, 5);
    gt_ring(&gt_node_type, p, 2);
    uint32_t ids[7];
    for (int i = 0; i < 5; i++)
        ids[i] = m[i]->id;
    ids[5] = p[0]->id;
    ids[6] = p[1]->id;
    gt_drop_all(m, 5);
    gt_drop_all(p, 2);
    rcgc_shutdown();
    for (int i = 0; i < 7; i++)
        gt_assert_died(ids[i]);
    for (int i = 0; i < 5; i++)
        assert_int_equal(atomic_load(&gt_finalized[ids[i]]), 1);
    assert_int_equal(rcgc_init(NULL), 0);
    rcgc_gc_disable();
    gt_assert_clean();
}

int main(void) {
    test_main_init();
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traverse_overcount_is_fatal),    /* first: forks before any init */
        T(test_nothing_to_collect),
        T(test_self_cycle),
        T(test_two_cycle),
        T(test_long_cycle),
        T(test_very_long_cycle),
        T(test_cycle_several_types),
        T(test_live_cycle_kept),
        T(test_container_many_refs),
        T(test_container_same_object),
        T(test_finalizer_once_across_collections),
        T(test_resurrection),
        T(test_transitive_resurrection),
        T(test_finalizer_breaks_cycle),
        T(test_finalizer_allocates),
        T(test_destroy_once_mixed),
        T(test_uncollectable),
        T(test_is_tracked),
        T(test_freeze),
        T(test_freeze_count_drops_dead_objects),
        T(test_young_vs_full),
        T(test_young_after_pages_released),
        T(test_thresholds),
        T(test_automatic_collection),
        T(test_possible_roots),
        T(test_policy_no_cycles),
        T(test_policy_steady_cycles),
        T(test_policy_old_garbage),
        T(test_policy_backstop),
        T(test_callbacks),
        T(test_callback_limit),
        T(test_get_objects),
        T(test_get_referrers_referents),
        T(test_saveall),
        T(test_gc_stats),
        T(test_shutdown_collects),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
