/*
 * Test objects for the cycle collector and weak-reference tests (gc_test,
 * weakref_test, gc_mt_test): one payload layout shared by several types,
 * and per-object event counts.
 *
 * Every gt_node carries a canary (destroy poisons it), an id, a value
 * derived from the id (checked for intactness after collections) and
 * `nslots` references that its type's traverse visits. Objects with an id
 * (1 .. GT_MAX_IDS - 1) have their clear, finalize and destroy calls
 * counted and sequenced in the gt_* arrays; id 0 counts in the totals
 * only (the multithreaded tests, which allocate far more objects).
 *
 * Anything that looks wrong from inside a callback (a finalize or clear of
 * a destroyed object, a second finalize, a destroy whose references clear
 * did not drop) increments gt_bad and records a line in gt_bad_what; tests
 * end with gt_assert_clean() on their own thread.
 *
 * Header-only, every function static: each test is one translation unit.
 */
#ifndef RCGC_GC_TEST_UTIL_H
#define RCGC_GC_TEST_UTIL_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tests/test_util.h"

#define GT_CANARY_ALIVE 0x6C1ECA11AB1E5EEDull
#define GT_CANARY_DEAD  0xDEADBEEFDEADBEEFull
#define GT_NREF 4
#define GT_MAX_IDS (1u << 18)

typedef struct gt_node {
    uint64_t canary;
    uint32_t id;
    uint32_t nslots;            /* references in ref[] that traverse visits */
    uint64_t value;             /* gt_value(id): checked after collections */
    _Atomic uint32_t fin_calls; /* finalize calls on this object */
    uint32_t kind;              /* free for the tests */
    void *ref[];                /* GT_NREF for the fixed-size types, n for gt_vec_type */
} gt_node;

static inline uint64_t gt_value(uint32_t id) { return (uint64_t)id * 0x9E3779B97F4A7C15ull + 7; }

/* Per-id event counts and the sequence number of the first of each. */
static _Atomic int gt_cleared[GT_MAX_IDS];
static _Atomic int gt_finalized[GT_MAX_IDS];
static _Atomic int gt_destroyed[GT_MAX_IDS];
static _Atomic uint64_t gt_clear_seq[GT_MAX_IDS];
static _Atomic uint64_t gt_finalize_seq[GT_MAX_IDS];
static _Atomic uint64_t gt_destroy_seq[GT_MAX_IDS];
static _Atomic uintptr_t gt_destroy_thread[GT_MAX_IDS];    /* pthread_self() of the destroy */
static _Atomic uint64_t gt_seq;
static _Atomic uint32_t gt_next_id;

/* Totals, ids or not. */
static _Atomic size_t gt_allocs;
static _Atomic size_t gt_destroys;
static _Atomic size_t gt_finalizes;
static _Atomic size_t gt_bad;
static char gt_bad_what[256];   /* the first problem (written once) */
static _Atomic int gt_bad_once;

/* Called by finalize after it has counted the call (NULL: nothing). */
static void (*_Atomic gt_finalize_hook)(gt_node *self);

static void gt_report_bad(const char *what, const gt_node *n) {
    atomic_fetch_add(&gt_bad, 1);
    if (atomic_exchange(&gt_bad_once, 1) == 0)
        snprintf(gt_bad_what, sizeof gt_bad_what, "%s (object %p, id %u, canary %#llx)", what,
                 (const void *)n, n ? n->id : 0u, n ? (unsigned long long)n->canary : 0ull);
}

static inline void gt_reset(void) {
    memset((void *)gt_cleared, 0, sizeof gt_cleared);
    memset((void *)gt_finalized, 0, sizeof gt_finalized);
    memset((void *)gt_destroyed, 0, sizeof gt_destroyed);
    memset((void *)gt_clear_seq, 0, sizeof gt_clear_seq);
    memset((void *)gt_finalize_seq, 0, sizeof gt_finalize_seq);
    memset((void *)gt_destroy_seq, 0, sizeof gt_destroy_seq);
    memset((void *)gt_destroy_thread, 0, sizeof gt_destroy_thread);
    atomic_store(&gt_seq, 1);
    atomic_store(&gt_next_id, 1);
    atomic_store(&gt_allocs, 0);
    atomic_store(&gt_destroys, 0);
    atomic_store(&gt_finalizes, 0);
    atomic_store(&gt_bad, 0);
    atomic_store(&gt_bad_once, 0);
    gt_bad_what[0] = '\0';
    atomic_store(&gt_finalize_hook, NULL);
}

static inline void gt_first(_Atomic uint64_t *slot) {
    uint64_t zero = 0;
    atomic_compare_exchange_strong(slot, &zero, atomic_fetch_add(&gt_seq, 1));
}

/* ------------------------------------------------------------------------
 * Type functions
 * ------------------------------------------------------------------------ */

static int gt_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    gt_node *n = self;
    if (n->canary == GT_CANARY_DEAD)
        gt_report_bad("traverse of a destroyed object", n);
    for (uint32_t i = 0; i < n->nslots; i++)
        RCGC_VISIT(__atomic_load_n(&n->ref[i], __ATOMIC_RELAXED));
    return 0;
}

static void gt_clear(void *self) {
    gt_node *n = self;
    if (n->canary != GT_CANARY_ALIVE)
        gt_report_bad("clear of an object that is not alive", n);
    if (n->id) {
        atomic_fetch_add(&gt_cleared[n->id], 1);
        gt_first(&gt_clear_seq[n->id]);
    }
    for (uint32_t i = 0; i < n->nslots; i++) {
        void *p = __atomic_exchange_n(&n->ref[i], NULL, __ATOMIC_ACQ_REL);
        rcgc_xdecref(p);
    }
}

static void gt_finalize(void *self) {
    gt_node *n = self;
    if (n->canary != GT_CANARY_ALIVE)
        gt_report_bad("finalize of an object that is not alive", n);
    if (atomic_fetch_add(&n->fin_calls, 1) != 0)
        gt_report_bad("finalize called twice on one object", n);
    atomic_fetch_add(&gt_finalizes, 1);
    if (n->id) {
        atomic_fetch_add(&gt_finalized[n->id], 1);
        gt_first(&gt_finalize_seq[n->id]);
    }
    void (*hook)(gt_node *) = atomic_load(&gt_finalize_hook);
    if (hook)
        hook(n);
}

/* Destroy of a type with clear: clear ran first, so the references are gone. */
static void gt_destroy(void *self) {
    gt_node *n = self;
    if (n->canary != GT_CANARY_ALIVE)
        gt_report_bad("destroy of an object that is not alive (twice?)", n);
    for (uint32_t i = 0; i < n->nslots; i++)
        if (__atomic_load_n(&n->ref[i], __ATOMIC_RELAXED))
            gt_report_bad("destroy before clear dropped the references", n);
    n->canary = GT_CANARY_DEAD;
    if (n->id) {
        atomic_store(&gt_destroy_thread[n->id], (uintptr_t)pthread_self());
        atomic_fetch_add(&gt_destroyed[n->id], 1);
        gt_first(&gt_destroy_seq[n->id]);
    }
    atomic_fetch_add(&gt_destroys, 1);
}

/* Destroy of a type without clear: drops the references itself. */
static void gt_destroy_dropping(void *self) {
    gt_node *n = self;
    if (n->canary != GT_CANARY_ALIVE)
        gt_report_bad("destroy of an object that is not alive (twice?)", n);
    n->canary = GT_CANARY_DEAD;
    if (n->id) {
        atomic_store(&gt_destroy_thread[n->id], (uintptr_t)pthread_self());
        atomic_fetch_add(&gt_destroyed[n->id], 1);
        gt_first(&gt_destroy_seq[n->id]);
    }
    atomic_fetch_add(&gt_destroys, 1);
    for (uint32_t i = 0; i < n->nslots; i++) {
        void *p = __atomic_exchange_n(&n->ref[i], NULL, __ATOMIC_ACQ_REL);
        rcgc_xdecref(p);
    }
}

#define GT_FIXED_SIZE (sizeof(gt_node) + GT_NREF * sizeof(void *))

/* Tracked, collectable. */
static const rcgc_type gt_node_type = {
    .name = "gt_node",
    .size = GT_FIXED_SIZE,
    .traverse = gt_traverse,
    .clear = gt_clear,
    .destroy = gt_destroy,
};

/* Tracked, collectable, with a finalizer (gt_finalize_hook). */
static const rcgc_type gt_fin_type = {
    .name = "gt_fin",
    .size = GT_FIXED_SIZE,
    .traverse = gt_traverse,
    .clear = gt_clear,
    .finalize = gt_finalize,
    .destroy = gt_destroy,
};

/* Tracked, without clear: uncollectable in a cycle. */
static const rcgc_type gt_noclear_type = {
    .name = "gt_noclear",
    .size = GT_FIXED_SIZE,
    .traverse = gt_traverse,
    .destroy = gt_destroy_dropping,
};

/* Untracked (no traverse); references in ref[] are dropped by destroy. */
static const rcgc_type gt_leaf_type = {
    .name = "gt_leaf",
    .size = GT_FIXED_SIZE,
    .destroy = gt_destroy_dropping,
};

/* Variable size: a container of n references (rcgc_new_var). */
static const rcgc_type gt_vec_type = {
    .name = "gt_vec",
    .size = 0,
    .traverse = gt_traverse,
    .clear = gt_clear,
    .destroy = gt_destroy,
};

/* Tracked, finalizer, readable with rcgc_load_ref (the multithreaded tests). */
static const rcgc_type gt_shared_type = {
    .name = "gt_shared",
    .size = GT_FIXED_SIZE,
    .traverse = gt_traverse,
    .clear = gt_clear,
    .finalize = gt_finalize,
    .destroy = gt_destroy,
    .flags = RCGC_TYPE_SHARED_READ,
};

static inline void gt_init_node(gt_node *n, uint32_t nslots, int with_id) {
    uint32_t id = 0;
    if (with_id) {
        id = atomic_fetch_add(&gt_next_id, 1);
        if (id >= GT_MAX_IDS)
            id = 0;     /* out of ids: totals only */
    }
    n->id = id;
    n->nslots = nslots;
    n->value = gt_value(id);
    n->canary = GT_CANARY_ALIVE;
    atomic_fetch_add(&gt_allocs, 1);
}

/* A new object of a fixed-size type, with an id; NULL only on ENOMEM. */
static inline gt_node *gt_new(const rcgc_type *t) {
    gt_node *n = rcgc_new(t);
    if (n)
        gt_init_node(n, GT_NREF, 1);
    return n;
}

/* The same without an id (totals only). */
static inline gt_node *gt_new_anon(const rcgc_type *t) {
    gt_node *n = rcgc_new(t);
    if (n)
        gt_init_node(n, GT_NREF, 0);
    return n;
}

/* A container of `slots` references, with an id. */
static inline gt_node *gt_new_vec(uint32_t slots) {
    gt_node *n = rcgc_new_var(&gt_vec_type, sizeof(gt_node) + (size_t)slots * sizeof(void *));
    if (n)
        gt_init_node(n, slots, 1);
    return n;
}

/* from->ref[slot] = to, with its own reference. */
static inline void gt_link(gt_node *from, uint32_t slot, void *to) {
    rcgc_set(&from->ref[slot], to);
}

/* n objects of type t, each ref[0] -> the next, the last -> the first.
 * The caller holds the birth reference of each (in out[]). */
static inline void gt_ring(const rcgc_type *t, gt_node **out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        out[i] = gt_new(t);
        assert_non_null(out[i]);
    }
    for (size_t i = 0; i < n; i++)
        gt_link(out[i], 0, out[(i + 1) % n]);
}

static inline void gt_drop_all(gt_node **objs, size_t n) {
    for (size_t i = 0; i < n; i++)
        rcgc_decref(objs[i]);
}

/* An object is intact: alive, its value unchanged, never cleared,
 * finalized or destroyed. */
static inline void gt_assert_intact(const gt_node *n) {
    assert_int_equal(n->canary, GT_CANARY_ALIVE);
    assert_int_equal(n->value, gt_value(n->id));
    if (n->id) {
        assert_int_equal(atomic_load(&gt_cleared[n->id]), 0);
        assert_int_equal(atomic_load(&gt_destroyed[n->id]), 0);
    }
}

/* Died properly: cleared at least once (garbage is cleared by the
 * collector, and again by counting), then destroyed exactly once, after
 * its first clear. For ids recorded before the object's memory was freed. */
static inline void gt_assert_died(uint32_t id) {
    assert_true(id != 0);
    if (atomic_load(&gt_destroyed[id]) != 1)
        fail_msg("object id %u destroyed %d times, want 1", id, atomic_load(&gt_destroyed[id]));
    if (atomic_load(&gt_cleared[id]) < 1)
        fail_msg("object id %u destroyed without clear", id);
    assert_true(atomic_load(&gt_clear_seq[id]) < atomic_load(&gt_destroy_seq[id]));
}

static inline void gt_assert_clean(void) {
    if (atomic_load(&gt_bad))
        fail_msg("%zu problem(s) seen inside type callbacks; first: %s", atomic_load(&gt_bad),
                 gt_bad_what);
}

/* Wait for a thread (attached or not) without holding up a pause. */
static inline void gt_join(pthread_t t) {
    int attached = rcgc_is_attached();
    if (attached)
        rcgc_blocking_begin();
    void *res = NULL;
    int rc = pthread_join(t, &res);
    for (int i = 0; i < test_nthreads; i++) {
        if (pthread_equal(test_threads[i], t)) {
            test_threads[i] = test_threads[--test_nthreads];
            break;
        }
    }
    if (attached)
        rcgc_blocking_end();
    assert_int_equal(rc, 0);
}

#endif /* RCGC_GC_TEST_UTIL_H */
