/*
 * weakref_test: weak references (lib/weakref.c) and how they meet the
 * collector: get while alive and after death, callbacks after refcount
 * deaths and after collections, clearing before finalizers, resurrection,
 * early frees, errors, and readers racing the last reference.
 *
 * The scenarios follow CPython's Lib/test/test_weakref.py and the weakref
 * parts of test_gc.py, written again for this API. Every test runs in a
 * fresh runtime with automatic collections off (setup). Objects are
 * gt_nodes (gc_test_util.h).
 */
#include <sched.h>
#include <time.h>

#include "lib/gc.h"
#include "tests/gc_test_util.h"

#define SCALE(normal, sanitized) TEST_SCALE(normal, sanitized)
#define THREAD_CHECK(cond) TEST_THREAD_CHECK(cond)

static int setup(void **state) {
    (void)state;
    gt_reset();
    if (rcgc_init(NULL) != 0)
        return -1;
    rcgc_gc_disable();
    return 0;
}

static int teardown(void **state) {
    atomic_store(&gt_finalize_hook, NULL);
    return test_rcgc_teardown(state);
}

/* ------------------------------------------------------------------------
 * A callback that records what it saw, per id (the callback's arg is the
 * referent's id; the referent itself must not be touched there).
 * ------------------------------------------------------------------------ */

static _Atomic int cb_calls[GT_MAX_IDS];
static _Atomic int cb_saw_live_ref;     /* get(w) returned an object inside the callback */
static _Atomic int cb_cleared_at[GT_MAX_IDS];   /* referent's clear count when called */
static _Atomic int cb_destroyed_at[GT_MAX_IDS]; /* referent's destroy count when called */
static _Atomic uintptr_t cb_thread[GT_MAX_IDS];
static _Atomic int cb_free_self;        /* the callback frees its weakref */
static _Atomic size_t cb_total;

static void cb_reset(void) {
    memset((void *)cb_calls, 0, sizeof cb_calls);
    memset((void *)cb_cleared_at, 0, sizeof cb_cleared_at);
    memset((void *)cb_destroyed_at, 0, sizeof cb_destroyed_at);
    memset((void *)cb_thread, 0, sizeof cb_thread);
    atomic_store(&cb_saw_live_ref, 0);
    atomic_store(&cb_free_self, 0);
    atomic_store(&cb_total, 0);
}

static void record_cb(rcgc_weakref *w, void *arg) {
    uint32_t id = (uint32_t)(uintptr_t)arg;
    void *p = rcgc_weakref_get(w);
    if (p) {
        atomic_store(&cb_saw_live_ref, 1);
        rcgc_decref(p);
    }
    if (id && id < GT_MAX_IDS) {
        atomic_store(&cb_cleared_at[id], atomic_load(&gt_cleared[id]));
        atomic_store(&cb_destroyed_at[id], atomic_load(&gt_destroyed[id]));
        atomic_store(&cb_thread[id], (uintptr_t)pthread_self());
        atomic_fetch_add(&cb_calls[id], 1);
    }
    atomic_fetch_add(&cb_total, 1);
    if (atomic_load(&cb_free_self))
        rcgc_weakref_free(w);
}

static int fixture_setup(void **state) {
    cb_reset();
    return setup(state);
}

#define ID_ARG(n) ((void *)(uintptr_t)(n)->id)

/* ------------------------------------------------------------------------
 * Basics
 * ------------------------------------------------------------------------ */

static void test_get_alive_then_dead(void **state) {
    TEST_BEGIN(state);
    gt_node *o = gt_new(&gt_node_type);
    uint32_t id = o->id;
    rcgc_weakref *w = rcgc_weakref_new(o, NULL, NULL);
    assert_non_null(w);
    assert_int_equal(rcgc_refcount(o), 1);      /* weak: not counted */
    for (int i = 0; i < 3; i++) {
        gt_node *p = rcgc_weakref_get(w);
        assert_ptr_equal(p, o);
        assert_int_equal(rcgc_refcount(o), 2);  /* a new strong reference */
        rcgc_decref(p);
    }
    rcgc_decref(o);
    gt_assert_died(id);
    assert_null(rcgc_weakref_get(w));
    assert_null(rcgc_weakref_get(w));
    rcgc_weakref_free(w);
    rcgc_weakref_free(NULL);
    gt_assert_clean();
}

/* A strong reference from get keeps the referent alive after the others go. */
static void test_get_keeps_alive(void **state) {
    TEST_BEGIN(state);
    gt_node *o = gt_new(&gt_leaf_type);
    uint32_t id = o->id;
    rcgc_weakref *w = rcgc_weakref_new(o, record_cb, ID_ARG(o));
    gt_node *p = rcgc_weakref_get(w);
    rcgc_decref(o);
    assert_int_equal(atomic_load(&gt_destroyed[id]), 0);
    assert_int_equal(atomic_load(&cb_calls[id]), 0);
    gt_assert_intact(p);
    gt_node *q = rcgc_weakref_get(w);
    assert_ptr_equal(q, p);
    rcgc_decref(q);
    rcgc_decref(p);
    assert_int_equal(atomic_load(&gt_destroyed[id]), 1);
    assert_int_equal(atomic_load(&cb_calls[id]), 1);
    assert_null(rcgc_weakref_get(w));
    rcgc_weakref_free(w);
    gt_assert_clean();
}

static void test_einval(void **state) {
    TEST_BEGIN(state);
    errno = 0;
    assert_null(rcgc_weakref_new(NULL, NULL, NULL));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(rcgc_weakref_new(NULL, record_cb, NULL));
    assert_int_equal(errno, EINVAL);
    /* Immortal objects never die (and are never freed: a small untracked
     * object without destroy, left behind on purpose). */
    static const rcgc_type plain = {.name = "plain", .size = 16};
    void *imm = rcgc_new(&plain);
    rcgc_immortalize(imm);
    errno = 0;
    assert_null(rcgc_weakref_new(imm, record_cb, NULL));
    assert_int_equal(errno, EINVAL);
    /* A failure changed nothing: weak references still work. */
    gt_node *o = gt_new(&gt_node_type);
    rcgc_weakref *w = rcgc_weakref_new(o, NULL, NULL);
    assert_non_null(w);
    rcgc_decref(o);
    rcgc_weakref_free(w);
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * Callbacks after refcount deaths
 * ------------------------------------------------------------------------ */

static void test_callback_refcount_death(void **state) {
    TEST_BEGIN(state);
    const rcgc_type *types[2] = {&gt_leaf_type, &gt_node_type};
    for (int t = 0; t < 2; t++) {
        gt_node *o = gt_new(types[t]);
        uint32_t id = o->id;
        rcgc_weakref *w = rcgc_weakref_new(o, record_cb, ID_ARG(o));
        assert_non_null(w);
        rcgc_decref(o);
        assert_int_equal(atomic_load(&cb_calls[id]), 1);
        assert_false(atomic_load(&cb_saw_live_ref));       /* cleared before the callback */
        /* Refcount death: the callback runs before clear and destroy. */
        assert_int_equal(atomic_load(&cb_cleared_at[id]), 0);
        assert_int_equal(atomic_load(&cb_destroyed_at[id]), 0);
        assert_true(pthread_equal((pthread_t)atomic_load(&cb_thread[id]), pthread_self()));
        assert_int_equal(atomic_load(&gt_destroyed[id]), 1);
        assert_null(rcgc_weakref_get(w));
        rcgc_weakref_free(w);
        assert_int_equal(atomic_load(&cb_calls[id]), 1);   /* once */
    }
    gt_assert_clean();
}

/* The last reference dropped by another thread: the callback runs there. */
typedef struct {
    gt_node *o;
    test_gate took, drop, dropped;
} other_ctx;

static void *other_dropper(void *arg) {
    other_ctx *c = arg;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    rcgc_incref(c->o);              /* a shared reference of our own */
    test_gate_set(&c->took, 1);
    test_gate_wait(&c->drop, 1);
    rcgc_decref(c->o);              /* the last one: the owner gave up its own */
    test_gate_set(&c->dropped, 1);
    rcgc_thread_detach();
    return NULL;
}

static void test_callback_on_dropping_thread(void **state) {
    TEST_BEGIN(state);
    static other_ctx c;    /* static: teardown may open its gates after we return */
    memset(&c, 0, sizeof c);
    test_gate_init(&c.took);
    test_gate_init(&c.drop);
    test_gate_init(&c.dropped);
    c.o = gt_new(&gt_node_type);
    uint32_t id = c.o->id;
    rcgc_weakref *w = rcgc_weakref_new(c.o, record_cb, ID_ARG(c.o));
    pthread_t th = test_thread_start(other_dropper, &c);
    test_gate_wait(&c.took, 1);
    rcgc_decref(c.o);               /* ours: the other thread's keeps it alive */
    assert_int_equal(atomic_load(&gt_destroyed[id]), 0);
    assert_int_equal(atomic_load(&cb_calls[id]), 0);
    gt_node *p = rcgc_weakref_get(w);
    assert_ptr_equal(p, c.o);
    rcgc_decref(p);
    test_gate_set(&c.drop, 1);
    gt_join(th);
    assert_int_equal(atomic_load(&gt_destroyed[id]), 1);
    assert_int_equal(atomic_load(&cb_calls[id]), 1);
    assert_true(pthread_equal((pthread_t)atomic_load(&cb_thread[id]), th));
    assert_false(atomic_load(&cb_saw_live_ref));
    assert_null(rcgc_weakref_get(w));
    rcgc_weakref_free(w);
    gt_assert_clean();
}

/* rcgc_weakref_free on one thread while the referent's death clears the
 * same weak reference on another (weakref_stress, seed 192723271397954:
 * `pg->used >= n` in page_collect). The free returns without the stripe
 * lock once it reads the referent cleared, and drops the user's reference;
 * the clearing thread must already hold the callback's reference by then,
 * or the free releases the record while the clear still takes a reference
 * to it and queues it, and the callback runner frees it a second time.
 * The hook stops the clearing thread where it has decided on a callback:
 * the free runs there (or waits for the stripe lock, 100 ms at most). */
typedef struct {
    gt_node *o;
    rcgc_weakref *w;
    test_gate took, drop;
    _Atomic int in_hook, freed;
} clear_race_ctx;
static clear_race_ctx clear_race;  /* static: teardown may open its gates after we return */

static uint64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void clear_race_hook(rcgc_weakref *w) {
    if (w != clear_race.w || atomic_exchange(&clear_race.in_hook, 1))
        return;
    uint64_t until = mono_ms() + 100;
    while (!atomic_load(&clear_race.freed) && mono_ms() < until)
        sched_yield();
}

static void *clear_race_dropper(void *arg) {
    clear_race_ctx *c = arg;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    rcgc_incref(c->o);
    test_gate_set(&c->took, 1);
    test_gate_wait(&c->drop, 1);
    rcgc_decref(c->o);      /* the last reference: the weak reference is cleared here */
    rcgc_thread_detach();   /* pushes the callback runner's free to its page */
    return NULL;
}

static void test_mt_free_races_clear(void **state) {
    TEST_BEGIN(state);
    clear_race_ctx *c = &clear_race;
    memset(c, 0, sizeof *c);
    test_gate_init(&c->took);
    test_gate_init(&c->drop);
    rcgc_heap_collect();
    rcgc_stats st0;
    rcgc_stats_get(&st0);
    c->o = gt_new(&gt_node_type);
    uint32_t id = c->o->id;
    c->w = rcgc_weakref_new(c->o, record_cb, ID_ARG(c->o));
    assert_non_null(c->w);
    atomic_store(&rcgc__weakref_clear_hook, clear_race_hook);
    pthread_t th = test_thread_start(clear_race_dropper, c);
    test_gate_wait(&c->took, 1);
    rcgc_decref(c->o);      /* ours: the dropper's reference is the last */
    test_gate_set(&c->drop, 1);
    while (!atomic_load(&c->in_hook))
        sched_yield();
    rcgc_weakref_free(c->w);
    atomic_store(&c->freed, 1);
    gt_join(th);
    atomic_store(&rcgc__weakref_clear_hook, NULL);
    assert_int_equal(atomic_load(&gt_destroyed[id]), 1);
    assert_true(atomic_load(&cb_calls[id]) <= 1);
    /* The record went back to its page once: the blocks in use are what
     * they were (a second free made page_collect count one block more than
     * the page had out, or left one fewer in use). */
    rcgc_heap_collect();
    rcgc_stats st1;
    rcgc_stats_get(&st1);
    assert_int_equal(st1.blocks_in_use, st0.blocks_in_use);
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * Callbacks after collections
 * ------------------------------------------------------------------------ */

static void test_callback_after_collection(void **state) {
    TEST_BEGIN(state);
    gt_node *m[2];
    gt_ring(&gt_node_type, m, 2);
    gt_node *live = gt_new(&gt_node_type);
    uint32_t ids[2] = {m[0]->id, m[1]->id};
    rcgc_weakref *w0 = rcgc_weakref_new(m[0], record_cb, ID_ARG(m[0]));
    rcgc_weakref *w1 = rcgc_weakref_new(m[1], record_cb, ID_ARG(m[1]));
    rcgc_weakref *wl = rcgc_weakref_new(live, record_cb, ID_ARG(live));
    assert_true(w0 && w1 && wl);
    gt_drop_all(m, 2);
    assert_int_equal(atomic_load(&cb_total), 0);      /* a cycle: nothing died yet */
    assert_non_null(w0);

    assert_int_equal(rcgc_collect(), 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(atomic_load(&cb_calls[ids[i]]), 1);
        /* After the collector's clears, on the collecting thread. */
        assert_true(atomic_load(&cb_cleared_at[ids[i]]) >= 1);
        assert_true(pthread_equal((pthread_t)atomic_load(&cb_thread[ids[i]]), pthread_self()));
        gt_assert_died(ids[i]);
    }
    assert_false(atomic_load(&cb_saw_live_ref));
    assert_int_equal(atomic_load(&cb_calls[live->id]), 0);
    assert_null(rcgc_weakref_get(w0));
    assert_null(rcgc_weakref_get(w1));
    gt_node *p = rcgc_weakref_get(wl);
    assert_ptr_equal(p, live);
    rcgc_decref(p);
    assert_int_equal(rcgc_collect(), 0);
    assert_int_equal(atomic_load(&cb_total), 2);      /* once each */
    rcgc_weakref_free(w0);
    rcgc_weakref_free(w1);
    rcgc_weakref_free(wl);
    rcgc_decref(live);
    gt_assert_clean();
}

/* get on a member of an uncollected garbage cycle hands out a strong
 * reference: the cycle is reachable again until it is dropped. */
static void test_get_revives_garbage_cycle(void **state) {
    TEST_BEGIN(state);
    gt_node *m[3];
    gt_ring(&gt_node_type, m, 3);
    uint32_t ids[3] = {m[0]->id, m[1]->id, m[2]->id};
    rcgc_weakref *w = rcgc_weakref_new(m[1], record_cb, ID_ARG(m[1]));
    gt_drop_all(m, 3);
    gt_node *p = rcgc_weakref_get(w);
    assert_ptr_equal(p, m[1]);
    assert_int_equal(rcgc_collect(), 0);
    for (int i = 0; i < 3; i++)
        gt_assert_intact(m[i]);
    assert_int_equal(atomic_load(&cb_calls[ids[1]]), 0);
    rcgc_decref(p);
    assert_int_equal(rcgc_collect(), 3);
    for (int i = 0; i < 3; i++)
        gt_assert_died(ids[i]);
    assert_int_equal(atomic_load(&cb_calls[ids[1]]), 1);
    assert_null(rcgc_weakref_get(w));
    rcgc_weakref_free(w);
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * Finalizers see their objects' weak references cleared
 * ------------------------------------------------------------------------ */

static rcgc_weakref *weak_of[64];      /* by id */
static _Atomic int fin_saw_live_weak;
static _Atomic int fin_checked;
static _Atomic uint32_t resurrect_id;
static gt_node *root;

static void hook_check_weak(gt_node *self) {
    if (self->id < 64 && weak_of[self->id]) {
        void *p = rcgc_weakref_get(weak_of[self->id]);
        if (p) {
            atomic_store(&fin_saw_live_weak, 1);
            rcgc_decref(p);
        }
        atomic_fetch_add(&fin_checked, 1);
    }
    if (self->id == atomic_load(&resurrect_id)) {
        rcgc_incref(self);
        root = self;
    }
}

static void test_cleared_before_finalizers(void **state) {
    TEST_BEGIN(state);
    memset(weak_of, 0, sizeof weak_of);
    atomic_store(&fin_saw_live_weak, 0);
    atomic_store(&fin_checked, 0);
    atomic_store(&resurrect_id, 0);
    enum { N = 5 };
    gt_node *m[N];
    uint32_t ids[N];
    gt_ring(&gt_fin_type, m, N);
    for (int i = 0; i < N; i++) {
        ids[i] = m[i]->id;
        assert_true(ids[i] < 64);
        weak_of[ids[i]] = rcgc_weakref_new(m[i], record_cb, ID_ARG(m[i]));
    }
    atomic_store(&gt_finalize_hook, hook_check_weak);
    gt_drop_all(m, N);
    assert_int_equal(rcgc_collect(), N);
    assert_int_equal(atomic_load(&fin_checked), N);
    assert_false(atomic_load(&fin_saw_live_weak));
    for (int i = 0; i < N; i++) {
        gt_assert_died(ids[i]);
        assert_int_equal(atomic_load(&cb_calls[ids[i]]), 1);
        rcgc_weakref_free(weak_of[ids[i]]);
    }
    gt_assert_clean();
}

/* A finalizer resurrects its object: its weak references stay cleared
 * (the object did look dead to them), a new one works, and the callbacks
 * never run twice. */
static void test_resurrected_stays_cleared(void **state) {
    TEST_BEGIN(state);
    memset(weak_of, 0, sizeof weak_of);
    atomic_store(&fin_saw_live_weak, 0);
    atomic_store(&fin_checked, 0);
    gt_node *a = gt_new(&gt_fin_type), *b = gt_new(&gt_fin_type);
    gt_link(a, 0, b);
    gt_link(b, 0, a);
    uint32_t ia = a->id, ib = b->id;
    weak_of[ia] = rcgc_weakref_new(a, record_cb, ID_ARG(a));
    weak_of[ib] = rcgc_weakref_new(b, record_cb, ID_ARG(b));
    rcgc_weakref *plain = rcgc_weakref_new(a, NULL, NULL);
    root = NULL;
    atomic_store(&resurrect_id, ia);
    atomic_store(&gt_finalize_hook, hook_check_weak);
    rcgc_decref(a);
    rcgc_decref(b);

    assert_int_equal(rcgc_collect(), 2);
    assert_ptr_equal(root, a);
    gt_assert_intact(a);
    gt_assert_intact(b);
    assert_false(atomic_load(&fin_saw_live_weak));
    assert_null(rcgc_weakref_get(weak_of[ia]));
    assert_null(rcgc_weakref_get(weak_of[ib]));
    assert_null(rcgc_weakref_get(plain));
    assert_true(atomic_load(&cb_calls[ia]) <= 1);
    assert_true(atomic_load(&cb_calls[ib]) <= 1);

    /* A weak reference made after the resurrection works as usual. */
    rcgc_weakref *again = rcgc_weakref_new(a, NULL, NULL);
    assert_non_null(again);
    gt_node *p = rcgc_weakref_get(again);
    assert_ptr_equal(p, a);
    rcgc_decref(p);

    atomic_store(&resurrect_id, 0);
    rcgc_decref(root);
    assert_int_equal(rcgc_collect(), 2);
    gt_assert_died(ia);
    gt_assert_died(ib);
    assert_null(rcgc_weakref_get(again));
    assert_null(rcgc_weakref_get(weak_of[ia]));
    assert_true(atomic_load(&cb_calls[ia]) <= 1);
    assert_true(atomic_load(&cb_calls[ib]) <= 1);
    assert_int_equal(atomic_load(&gt_finalized[ia]), 1);
    rcgc_weakref_free(weak_of[ia]);
    rcgc_weakref_free(weak_of[ib]);
    rcgc_weakref_free(plain);
    rcgc_weakref_free(again);
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * Frees, many weak references, callbacks that free
 * ------------------------------------------------------------------------ */

static void test_free_before_death_no_callback(void **state) {
    TEST_BEGIN(state);
    /* Refcount death. */
    gt_node *o = gt_new(&gt_node_type);
    uint32_t id = o->id;
    rcgc_weakref *w = rcgc_weakref_new(o, record_cb, ID_ARG(o));
    rcgc_weakref_free(w);
    rcgc_decref(o);
    gt_assert_died(id);
    assert_int_equal(atomic_load(&cb_calls[id]), 0);

    /* Collection. */
    gt_node *m[2];
    gt_ring(&gt_node_type, m, 2);
    uint32_t ids[2] = {m[0]->id, m[1]->id};
    rcgc_weakref *w0 = rcgc_weakref_new(m[0], record_cb, ID_ARG(m[0]));
    rcgc_weakref *w1 = rcgc_weakref_new(m[1], record_cb, ID_ARG(m[1]));
    gt_drop_all(m, 2);
    rcgc_weakref_free(w0);
    assert_int_equal(rcgc_collect(), 2);
    assert_int_equal(atomic_load(&cb_calls[ids[0]]), 0);
    assert_int_equal(atomic_load(&cb_calls[ids[1]]), 1);
    rcgc_weakref_free(w1);
    assert_int_equal(atomic_load(&cb_total), 1);
    gt_assert_clean();
}

static _Atomic int many_calls[256];
static _Atomic int many_saw_live;
static rcgc_weakref *many_w[256];

static void many_cb(rcgc_weakref *w, void *arg) {
    uintptr_t i = (uintptr_t)arg;
    if (i >= 256 || many_w[i] != w)
        atomic_store(&many_saw_live, 2);        /* wrong pairing of w and arg */
    else
        atomic_fetch_add(&many_calls[i], 1);
    void *p = rcgc_weakref_get(w);
    if (p) {
        atomic_store(&many_saw_live, 1);
        rcgc_decref(p);
    }
}

static void many_round(int by_collection) {
    enum { N = 200 };
    memset((void *)many_calls, 0, sizeof many_calls);
    atomic_store(&many_saw_live, 0);
    gt_node *o = gt_new(&gt_node_type);
    uint32_t id = o->id;
    if (by_collection)
        gt_link(o, 0, o);
    for (uintptr_t i = 0; i < N; i++) {
        many_w[i] = rcgc_weakref_new(o, (i % 3) ? many_cb : NULL, (void *)i);
        assert_non_null(many_w[i]);
    }
    for (uintptr_t i = 0; i < N; i++) {
        gt_node *p = rcgc_weakref_get(many_w[i]);
        assert_ptr_equal(p, o);
        rcgc_decref(p);
    }
    for (uintptr_t i = 0; i < N; i += 2) {
        rcgc_weakref_free(many_w[i]);   /* even ones go before the referent */
        many_w[i] = NULL;
    }
    rcgc_decref(o);
    if (by_collection)
        assert_int_equal(rcgc_collect(), 1);
    gt_assert_died(id);
    assert_int_equal(atomic_load(&many_saw_live), 0);
    for (uintptr_t i = 0; i < N; i++) {
        int want = (i % 2 == 1 && i % 3 != 0) ? 1 : 0;
        if (atomic_load(&many_calls[i]) != want)
            fail_msg("weak reference %zu: %d callbacks, want %d", (size_t)i,
                     atomic_load(&many_calls[i]), want);
        if (many_w[i]) {
            assert_null(rcgc_weakref_get(many_w[i]));
            rcgc_weakref_free(many_w[i]);
        }
    }
}

static void test_many_weakrefs(void **state) {
    TEST_BEGIN(state);
    many_round(0);
    many_round(1);
    gt_assert_clean();
}

/* The weak reference stays valid inside its callback, which may free it. */
static void test_callback_frees_weakref(void **state) {
    TEST_BEGIN(state);
    atomic_store(&cb_free_self, 1);
    gt_node *o = gt_new(&gt_leaf_type);
    uint32_t id = o->id;
    assert_non_null(rcgc_weakref_new(o, record_cb, ID_ARG(o)));
    rcgc_decref(o);
    assert_int_equal(atomic_load(&cb_calls[id]), 1);

    gt_node *m[2];
    gt_ring(&gt_node_type, m, 2);
    uint32_t ids[2] = {m[0]->id, m[1]->id};
    assert_non_null(rcgc_weakref_new(m[0], record_cb, ID_ARG(m[0])));
    assert_non_null(rcgc_weakref_new(m[1], record_cb, ID_ARG(m[1])));
    gt_drop_all(m, 2);
    assert_int_equal(rcgc_collect(), 2);
    assert_int_equal(atomic_load(&cb_calls[ids[0]]), 1);
    assert_int_equal(atomic_load(&cb_calls[ids[1]]), 1);
    atomic_store(&cb_free_self, 0);
    gt_assert_clean();
}

/* A callback may allocate, and make weak references to what it made. */
static rcgc_weakref *made_w;
static gt_node *made;

static void allocating_cb(rcgc_weakref *w, void *arg) {
    (void)w;
    (void)arg;
    made = gt_new(&gt_node_type);
    made_w = rcgc_weakref_new(made, record_cb, ID_ARG(made));
}

static void test_callback_allocates(void **state) {
    TEST_BEGIN(state);
    gt_node *m[2];
    gt_ring(&gt_node_type, m, 2);
    rcgc_weakref *w = rcgc_weakref_new(m[0], allocating_cb, NULL);
    gt_drop_all(m, 2);
    made = NULL;
    assert_int_equal(rcgc_collect(), 2);
    assert_non_null(made);
    assert_non_null(made_w);
    gt_assert_intact(made);
    gt_node *p = rcgc_weakref_get(made_w);
    assert_ptr_equal(p, made);
    rcgc_decref(p);
    uint32_t id = made->id;
    rcgc_decref(made);
    assert_int_equal(atomic_load(&cb_calls[id]), 1);
    rcgc_weakref_free(made_w);
    rcgc_weakref_free(w);
    gt_assert_clean();
}

/* ------------------------------------------------------------------------
 * Readers racing the last reference
 * ------------------------------------------------------------------------ */

#define READERS 2

typedef struct {
    rcgc_weakref *_Atomic w;
    _Atomic int round;              /* published round */
    _Atomic int done[READERS];      /* last round each reader saw end */
    _Atomic int stop;
    _Atomic long hits;
    _Atomic int bad;
    _Atomic uint32_t bad_id;
} race_ctx;

typedef struct {
    race_ctx *c;
    int index;
} race_arg;

static void *race_reader(void *p) {
    race_arg *ra = p;
    race_ctx *c = ra->c;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    int last = 0;
    long hits = 0;
    while (!atomic_load(&c->stop)) {
        int r = atomic_load(&c->round);
        if (r == last) {
            rcgc_safepoint();
            rcgc_blocking_begin();
            sched_yield();
            rcgc_blocking_end();
            continue;
        }
        rcgc_weakref *w = atomic_load(&c->w);
        for (;;) {
            gt_node *o = rcgc_weakref_get(w);
            if (!o)
                break;
            hits++;
            /* Never a dying object: alive, not cleared, not destroyed. */
            if (o->canary != GT_CANARY_ALIVE || atomic_load(&gt_destroyed[o->id]) != 0 ||
                atomic_load(&gt_cleared[o->id]) != 0) {
                atomic_store(&c->bad, 1);
                atomic_store(&c->bad_id, o->id);
            }
            if ((hits & 3) == 0)
                sched_yield();
            if (o->canary != GT_CANARY_ALIVE)
                atomic_store(&c->bad, 1);
            rcgc_decref(o);     /* may be the last reference: it dies here */
            rcgc_safepoint();
        }
        last = r;
        atomic_store(&c->done[ra->index], r);
    }
    atomic_fetch_add(&c->hits, hits);
    rcgc_thread_detach();
    return NULL;
}

static void wait_readers(race_ctx *c, int round) {
    for (int i = 0; i < READERS; i++) {
        while (atomic_load(&c->done[i]) < round) {
            rcgc_safepoint();
            rcgc_blocking_begin();
            sched_yield();
            rcgc_blocking_end();
        }
    }
}

/* The owner drops the last reference while readers call get in a loop. */
static void test_mt_get_races_last_decref(void **state) {
    TEST_BEGIN(state);
    static race_ctx c;
    memset(&c, 0, sizeof c);
    race_arg args[READERS];
    pthread_t th[READERS];
    for (int i = 0; i < READERS; i++) {
        args[i] = (race_arg){&c, i};
        th[i] = test_thread_start(race_reader, &args[i]);
    }
    const int rounds = SCALE(3000, 400);
    for (int r = 1; r <= rounds; r++) {
        gt_node *o = gt_new(r & 1 ? &gt_node_type : &gt_leaf_type);
        uint32_t id = o->id;
        assert_true(id != 0);
        rcgc_weakref *w = rcgc_weakref_new(o, record_cb, ID_ARG(o));
        assert_non_null(w);
        atomic_store(&c.w, w);
        atomic_store(&c.round, r);
        for (int k = 0; k < (r % 8); k++) {     /* vary the moment of the drop */
            rcgc_blocking_begin();
            sched_yield();
            rcgc_blocking_end();
        }
        rcgc_decref(o);
        wait_readers(&c, r);
        if (atomic_load(&c.bad))
            break;
        /* Dead now, whoever dropped last; one callback. */
        rcgc_safepoint();
        assert_int_equal(atomic_load(&gt_destroyed[id]), 1);
        assert_int_equal(atomic_load(&cb_calls[id]), 1);
        assert_null(rcgc_weakref_get(w));
        rcgc_weakref_free(w);
    }
    atomic_store(&c.stop, 1);
    for (int i = 0; i < READERS; i++)
        gt_join(th[i]);
    if (atomic_load(&c.bad))
        fail_msg("a reader got a dying object from rcgc_weakref_get (id %u)",
                 atomic_load(&c.bad_id));
    assert_false(atomic_load(&cb_saw_live_ref));
    print_message("(%d rounds, %ld successful gets)\n", rounds, atomic_load(&c.hits));
    gt_assert_clean();
}

/* The collector finds a garbage cycle while readers keep getting one of
 * its members: a get either revives the cycle for a while or returns NULL,
 * never an object the collector has started to clear. */
static void test_mt_get_races_collection(void **state) {
    TEST_BEGIN(state);
    static race_ctx c;
    memset(&c, 0, sizeof c);
    race_arg args[READERS];
    pthread_t th[READERS];
    for (int i = 0; i < READERS; i++) {
        args[i] = (race_arg){&c, i};
        th[i] = test_thread_start(race_reader, &args[i]);
    }
    const int rounds = SCALE(400, 80);
    size_t revived = 0;
    for (int r = 1; r <= rounds; r++) {
        gt_node *m[2];
        gt_ring(r & 1 ? &gt_node_type : &gt_fin_type, m, 2);
        uint32_t ids[2] = {m[0]->id, m[1]->id};
        rcgc_weakref *w = rcgc_weakref_new(m[r & 1], record_cb, ID_ARG(m[r & 1]));
        assert_non_null(w);
        atomic_store(&c.w, w);
        atomic_store(&c.round, r);
        gt_drop_all(m, 2);
        size_t found;
        int tries = 0;
        while ((found = rcgc_collect()) == 0) {
            revived++;
            assert_true(++tries < 100000);
        }
        assert_int_equal(found, 2);
        wait_readers(&c, r);
        if (atomic_load(&c.bad))
            break;
        gt_assert_died(ids[0]);
        gt_assert_died(ids[1]);
        assert_int_equal(atomic_load(&cb_calls[ids[r & 1]]), 1);
        assert_null(rcgc_weakref_get(w));
        rcgc_weakref_free(w);
    }
    atomic_store(&c.stop, 1);
    for (int i = 0; i < READERS; i++)
        gt_join(th[i]);
    if (atomic_load(&c.bad))
        fail_msg("a reader got an object the collector was clearing (id %u)",
                 atomic_load(&c.bad_id));
    print_message("(%d rounds, %ld successful gets, %zu collections found the cycle held)\n",
                  rounds, atomic_load(&c.hits), revived);
    gt_assert_clean();
}

int main(void) {
    test_main_init();
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_get_alive_then_dead),
        T(test_get_keeps_alive),
        T(test_einval),
        T(test_callback_refcount_death),
        T(test_callback_on_dropping_thread),
        T(test_mt_free_races_clear),
        T(test_callback_after_collection),
        T(test_get_revives_garbage_cycle),
        T(test_cleared_before_finalizers),
        T(test_resurrected_stays_cleared),
        T(test_free_before_death_no_callback),
        T(test_many_weakrefs),
        T(test_callback_frees_weakref),
        T(test_callback_allocates),
        T(test_mt_get_races_last_decref),
        T(test_mt_get_races_collection),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
