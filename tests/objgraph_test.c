/*
 * objgraph_test: the object-graph tools (lib/objgraph.c, with the page walk
 * they share with lib/gc.c): exact counts by type over tracked, untracked
 * and large objects; growth deltas; the printers; shortest chains of
 * referrers from marked roots, from references held outside the tracked
 * heap and from immortal objects; weak root marks; DOT output (edges of a
 * cycle, highlighting, escaping, truncation, referrers), parsed by
 * Graphviz's dot and rendered by tools/rcgc-dot when installed; calls from
 * a collection callback; every OS allocation failing in turn (ENOMEM,
 * nothing changed); and every tool run against mutator threads.
 *
 * Threads other than the test's own record what they see; the test's
 * thread asserts after joining them.
 */
#include <sched.h>
#include <time.h>

#include "lib/heap.h"
#include "lib/object.h"
#include "lib/os.h"

#include "tests/test_util.h"

/* ------------------------------------------------------------------------
 * Test objects
 * ------------------------------------------------------------------------ */

#define CANARY 0x0B16A9A4u

/* Two references (pairs and the documentation's types), checked canary. */
typedef struct obj {
    void *a, *b;
    uint32_t canary;
    uint32_t tag;
} obj;

/* n references (hubs, large tracked objects). */
typedef struct vec {
    size_t n;
    void *ref[];
} vec;

static _Atomic size_t destroyed;

static int obj_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    obj *o = self;
    RCGC_VISIT(o->a);
    RCGC_VISIT(o->b);
    return 0;
}
static void obj_clear(void *self) {
    obj *o = self;
    rcgc_set(&o->a, NULL);
    rcgc_set(&o->b, NULL);
}
static void obj_destroy(void *self) {
    obj *o = self;
    o->canary = 0;
    atomic_fetch_add(&destroyed, 1);
}
static int vec_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    vec *v = self;
    for (size_t i = 0; i < v->n; i++)
        RCGC_VISIT(v->ref[i]);
    return 0;
}
static void vec_clear(void *self) {
    vec *v = self;
    for (size_t i = 0; i < v->n; i++)
        rcgc_set(&v->ref[i], NULL);
}

#define OBJ_TYPE(var, name) \
    static const rcgc_type var = {name, sizeof(obj), obj_traverse, obj_clear, NULL, obj_destroy, 0}
OBJ_TYPE(pair_type, "og_pair");
OBJ_TYPE(registry_type, "registry");
OBJ_TYPE(session_type, "session");
OBJ_TYPE(cache_type, "cache");
OBJ_TYPE(entry_type, "entry");
static const rcgc_type vec_type = {"og_vec", 0, vec_traverse, vec_clear, NULL, NULL, 0};
static const rcgc_type leaf_type = {"og_leaf", 16, NULL, NULL, NULL, NULL, 0};
static const rcgc_type blob_type = {"og_blob", 100000, NULL, NULL, NULL, NULL, 0};  /* large */
static const rcgc_type buffer_type = {"buffer", 4096, NULL, NULL, NULL, NULL, 0};
static const rcgc_type stable_type = {"og_stable", 48, NULL, NULL, NULL, NULL, 0};
static const rcgc_type churn_type = {"og_churn", sizeof(obj), obj_traverse, obj_clear, NULL,
                                     obj_destroy, 0};

static void *new_obj(const rcgc_type *t, void *a, void *b) {
    obj *o = rcgc_new(t);
    assert_non_null(o);
    o->canary = CANARY;
    rcgc_set(&o->a, a);
    rcgc_set(&o->b, b);
    return o;
}
static void *pair(void *a, void *b) { return new_obj(&pair_type, a, b); }

static vec *new_vec(size_t n) {
    vec *v = rcgc_new_var(&vec_type, sizeof(vec) + n * sizeof(void *));
    assert_non_null(v);
    v->n = n;
    return v;
}

static void *leaf(void) {
    void *l = rcgc_new(&leaf_type);
    assert_non_null(l);
    return l;
}

static size_t block_bytes(const void *o) { return rcgc__block_size(rcgc__hdr(o)); }

static int setup(void **state) {
    (void)state;
    atomic_store(&destroyed, 0);
    if (rcgc_init(NULL) != 0)
        return -1;
    rcgc_gc_disable();      /* collections only when a test asks */
    return 0;
}

static int teardown(void **state) { return test_rcgc_teardown(state); }

/* The entry of type t in a counts array, or NULL. */
static const rcgc_objgraph_count *find(const rcgc_objgraph_count *a, size_t n, const rcgc_type *t) {
    for (size_t i = 0; i < n; i++)
        if (a[i].type == t)
            return &a[i];
    return NULL;
}

/* Everything a FILE * received, through open_memstream. */
typedef struct {
    char *text;
    size_t len;
    FILE *f;
} capture;

static void capture_open(capture *c) {
    c->text = NULL;
    c->len = 0;
    c->f = open_memstream(&c->text, &c->len);
    assert_non_null(c->f);
}
static void capture_close(capture *c) { assert_int_equal(fclose(c->f), 0); }

/* ------------------------------------------------------------------------
 * Counts by type
 * ------------------------------------------------------------------------ */

enum { NPAIRS = 100, NSMALLVEC = 7, NBIGVEC = 3, BIGVEC_REFS = 6000, NLEAVES = 50, NBLOBS = 4 };

typedef struct {
    void *pairs[NPAIRS];
    vec *vecs[NSMALLVEC + NBIGVEC];
    void *leaves[NLEAVES];
    void *blobs[NBLOBS];
    void *immortal;
} population;

static void populate(population *p) {
    for (int i = 0; i < NLEAVES; i++)
        p->leaves[i] = leaf();
    for (int i = 0; i < NPAIRS; i++)
        p->pairs[i] = pair(p->leaves[i % NLEAVES], i ? p->pairs[i - 1] : NULL);
    for (int i = 0; i < NSMALLVEC + NBIGVEC; i++) {
        p->vecs[i] = new_vec(i < NSMALLVEC ? 3 : BIGVEC_REFS);
        rcgc_set(&p->vecs[i]->ref[0], p->pairs[i]);
    }
    for (int i = 0; i < NBLOBS; i++) {
        p->blobs[i] = rcgc_new(&blob_type);
        assert_non_null(p->blobs[i]);
    }
    p->immortal = leaf();
    rcgc_immortalize(p->immortal);
}

static void expect_count(const rcgc_objgraph_count *a, size_t n, const rcgc_type *t, size_t count,
                         size_t bytes) {
    const rcgc_objgraph_count *e = find(a, n, t);
    if (!count) {
        assert_null(e);
        return;
    }
    assert_non_null(e);
    assert_int_equal(e->count, count);
    assert_int_equal(e->bytes, bytes);
    assert_int_equal(e->delta, 0);
}

static void test_counts_exact(void **state) {
    TEST_BEGIN(state);
    rcgc_objgraph_count *a;
    size_t n;
    assert_int_equal(rcgc_objgraph_counts(&a, &n), 0);
    assert_int_equal(n, 0);     /* a fresh runtime holds no object */
    assert_null(a);

    population p;
    populate(&p);
    size_t pair_bytes = 0, vec_bytes = 0, leaf_bytes = 0, blob_bytes = 0;
    for (int i = 0; i < NPAIRS; i++)
        pair_bytes += block_bytes(p.pairs[i]);
    for (int i = 0; i < NSMALLVEC + NBIGVEC; i++)
        vec_bytes += block_bytes(p.vecs[i]);
    for (int i = 0; i < NLEAVES; i++)
        leaf_bytes += block_bytes(p.leaves[i]);
    leaf_bytes += block_bytes(p.immortal);
    for (int i = 0; i < NBLOBS; i++)
        blob_bytes += block_bytes(p.blobs[i]);
    assert_true(block_bytes(p.blobs[0]) >= 100000 + 32);        /* large: its own span */
    assert_true(block_bytes(p.vecs[NSMALLVEC]) >= BIGVEC_REFS * sizeof(void *));

    assert_int_equal(rcgc_objgraph_counts(&a, &n), 0);
    assert_int_equal(n, 4);
    expect_count(a, n, &pair_type, NPAIRS, pair_bytes);
    expect_count(a, n, &vec_type, NSMALLVEC + NBIGVEC, vec_bytes);
    expect_count(a, n, &leaf_type, NLEAVES + 1, leaf_bytes);
    expect_count(a, n, &blob_type, NBLOBS, blob_bytes);
    for (size_t i = 1; i < n; i++)
        assert_true(a[i - 1].count >= a[i].count);      /* most objects first */
    assert_ptr_equal(a[0].type, &pair_type);
    free(a);

    /* Drop every blob and the last big vector; pairs stay (the vectors and
     * the chain between pairs hold them). */
    for (int i = 0; i < NBLOBS; i++)
        rcgc_decref(p.blobs[i]);
    vec_bytes -= block_bytes(p.vecs[NSMALLVEC + NBIGVEC - 1]);
    rcgc_decref(p.vecs[NSMALLVEC + NBIGVEC - 1]);
    assert_int_equal(rcgc_objgraph_counts(&a, &n), 0);
    assert_int_equal(n, 3);
    expect_count(a, n, &pair_type, NPAIRS, pair_bytes);
    expect_count(a, n, &vec_type, NSMALLVEC + NBIGVEC - 1, vec_bytes);
    expect_count(a, n, &leaf_type, NLEAVES + 1, leaf_bytes);
    expect_count(a, n, &blob_type, 0, 0);
    free(a);

    /* A garbage cycle counts until it is collected. */
    void *c1 = pair(NULL, NULL), *c2 = pair(c1, NULL);
    rcgc_set(&((obj *)c1)->a, c2);
    rcgc_decref(c1);
    rcgc_decref(c2);
    assert_int_equal(rcgc_objgraph_counts(&a, &n), 0);
    assert_int_equal(find(a, n, &pair_type)->count, NPAIRS + 2);
    free(a);
    assert_int_equal(rcgc_collect(), 2);
    assert_int_equal(rcgc_objgraph_counts(&a, &n), 0);
    assert_int_equal(find(a, n, &pair_type)->count, NPAIRS);
    free(a);

    for (int i = 0; i < NSMALLVEC + NBIGVEC - 1; i++)
        rcgc_decref(p.vecs[i]);
    for (int i = 0; i < NPAIRS; i++)
        rcgc_decref(p.pairs[i]);
    for (int i = 0; i < NLEAVES; i++)
        rcgc_decref(p.leaves[i]);
    assert_int_equal(rcgc_objgraph_counts(&a, &n), 0);
    assert_int_equal(n, 1);                              /* the immortal leaf */
    expect_count(a, n, &leaf_type, 1, block_bytes(p.immortal));
    free(a);
    assert_int_equal(rcgc_objgraph_counts(NULL, &n), EINVAL);
}

static void test_show_most_common(void **state) {
    TEST_BEGIN(state);
    void *keep[60];
    for (int i = 0; i < 30; i++)
        keep[i] = leaf();
    for (int i = 30; i < 50; i++)
        keep[i] = pair(NULL, NULL);
    for (int i = 50; i < 60; i++)
        keep[i] = new_vec(1);
    capture c;
    capture_open(&c);
    assert_int_equal(rcgc_objgraph_show_most_common(c.f, 2), 0);
    capture_close(&c);
    char name[2][32];
    size_t count[2], bytes[2];
    int consumed = 0;
    assert_int_equal(sscanf(c.text, "%31s %zu %zu\n%n", name[0], &count[0], &bytes[0], &consumed), 3);
    assert_int_equal(sscanf(c.text + consumed, "%31s %zu %zu", name[1], &count[1], &bytes[1]), 3);
    assert_string_equal(name[0], "og_leaf");
    assert_int_equal(count[0], 30);
    assert_int_equal(bytes[0], 30 * block_bytes(keep[0]));
    assert_string_equal(name[1], "og_pair");
    assert_int_equal(count[1], 20);
    assert_null(strstr(c.text, "og_vec"));     /* limit 2 */
    free(c.text);

    capture_open(&c);
    assert_int_equal(rcgc_objgraph_show_most_common(c.f, 0), 0);   /* 0: ten lines at most */
    capture_close(&c);
    assert_non_null(strstr(c.text, "og_vec"));
    free(c.text);
    for (int i = 0; i < 60; i++)
        rcgc_decref(keep[i]);
}

/* ------------------------------------------------------------------------
 * Growth
 * ------------------------------------------------------------------------ */

static void test_growth(void **state) {
    TEST_BEGIN(state);
    void *leaves[10], *pairs[12];
    for (int i = 0; i < 10; i++)
        leaves[i] = leaf();
    for (int i = 0; i < 5; i++)
        pairs[i] = pair(leaves[i], NULL);

    rcgc_objgraph_count *a;
    size_t n;
    /* First call: against nothing, every type grew by its count. */
    assert_int_equal(rcgc_objgraph_growth(&a, &n), 0);
    assert_int_equal(n, 2);
    assert_ptr_equal(a[0].type, &leaf_type);
    assert_int_equal(a[0].count, 10);
    assert_int_equal(a[0].delta, 10);
    assert_ptr_equal(a[1].type, &pair_type);
    assert_int_equal(a[1].delta, 5);
    free(a);
    /* Nothing changed. */
    assert_int_equal(rcgc_objgraph_growth(&a, &n), 0);
    assert_int_equal(n, 0);
    assert_null(a);

    /* 7 more pairs, 3 fewer leaves: only the pairs grew, by exactly 7. */
    for (int i = 5; i < 12; i++)
        pairs[i] = pair(NULL, NULL);
    for (int i = 7; i < 10; i++)
        rcgc_decref(leaves[i]);
    assert_int_equal(rcgc_objgraph_growth(&a, &n), 0);
    assert_int_equal(n, 1);
    assert_ptr_equal(a[0].type, &pair_type);
    assert_int_equal(a[0].count, 12);
    assert_int_equal(a[0].delta, 7);
    assert_int_equal(a[0].bytes, 12 * block_bytes(pairs[0]));
    free(a);

    /* The leaves come back to 9 (one above the 7 seen last): +2. A new
     * type appears: +1. The printer says so. */
    leaves[7] = leaf();
    leaves[8] = leaf();
    vec *v = new_vec(2);
    capture c;
    capture_open(&c);
    assert_int_equal(rcgc_objgraph_show_growth(c.f, 0), 0);
    capture_close(&c);
    char name[2][32];
    size_t count[2];
    long delta[2];
    int consumed = 0;
    assert_int_equal(sscanf(c.text, "%31s %zu %ld\n%n", name[0], &count[0], &delta[0], &consumed), 3);
    assert_int_equal(sscanf(c.text + consumed, "%31s %zu %ld", name[1], &count[1], &delta[1]), 3);
    assert_string_equal(name[0], "og_leaf");
    assert_int_equal(count[0], 9);
    assert_int_equal(delta[0], 2);
    assert_non_null(strstr(c.text, "+2"));
    assert_string_equal(name[1], "og_vec");
    assert_int_equal(delta[1], 1);
    assert_null(strstr(c.text, "og_pair"));
    free(c.text);

    /* Nothing grew: nothing printed. */
    rcgc_decref(v);
    capture_open(&c);
    assert_int_equal(rcgc_objgraph_show_growth(c.f, 0), 0);
    capture_close(&c);
    assert_int_equal(c.len, 0);
    free(c.text);

    for (int i = 0; i < 12; i++)
        rcgc_decref(pairs[i]);
    for (int i = 0; i < 9; i++)
        rcgc_decref(leaves[i]);
}

/* ------------------------------------------------------------------------
 * Chains of referrers
 * ------------------------------------------------------------------------ */

static void expect_chain(void *target, unsigned flags, size_t max_depth, void *const *want,
                         size_t nwant) {
    void **chain = (void **)1;
    size_t n = 99;
    int rc = rcgc_objgraph_find_chain(target, flags, max_depth, &chain, &n);
    if (!nwant) {
        assert_int_equal(rc, ENOENT);
        assert_null(chain);
        assert_int_equal(n, 0);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(chain[i], want[i]);
    rcgc_objgraph_release(chain, n);
}

static void test_chain_marked_root(void **state) {
    TEST_BEGIN(state);
    /*   R -> a -> b -> t      R is marked (held by this test)
     *   R -> x -> y -> z -> t (longer)
     *   Q -> b                Q is held by this test, not marked */
    void *t = leaf();
    void *b = pair(t, NULL), *a = pair(b, NULL);
    void *z = pair(t, NULL), *y = pair(z, NULL), *x = pair(y, NULL);
    void *R = pair(a, x), *Q = pair(b, NULL);
    rcgc_decref(a);
    rcgc_decref(b);
    rcgc_decref(x);
    rcgc_decref(y);
    rcgc_decref(z);

    /* Default roots: the nearest object referred to from outside is Q. */
    expect_chain(t, 0, 0, (void *[]){Q, b, t}, 3);
    /* Marked roots only: none marked yet. */
    expect_chain(t, RCGC_OBJGRAPH_MARKED_ROOTS, 0, NULL, 0);
    assert_int_equal(rcgc_objgraph_mark_root(R), 0);
    assert_int_equal(rcgc_objgraph_mark_root(R), EEXIST);
    expect_chain(t, RCGC_OBJGRAPH_MARKED_ROOTS, 0, (void *[]){R, a, b, t}, 4);
    expect_chain(t, RCGC_OBJGRAPH_MARKED_ROOTS, 3, (void *[]){R, a, b, t}, 4);
    expect_chain(t, RCGC_OBJGRAPH_MARKED_ROOTS, 2, NULL, 0);        /* too deep */
    /* A marked target is its own chain. */
    expect_chain(R, RCGC_OBJGRAPH_MARKED_ROOTS, 0, (void *[]){R}, 1);

    /* The chain holds a reference to each object while the caller has it. */
    size_t before = rcgc_refcount(b);
    void **chain;
    size_t n;
    assert_int_equal(rcgc_objgraph_find_chain(t, RCGC_OBJGRAPH_MARKED_ROOTS, 0, &chain, &n), 0);
    assert_int_equal(rcgc_refcount(b), before + 1);
    capture c;
    capture_open(&c);
    assert_int_equal(rcgc_objgraph_show_chain(c.f, chain, n), 0);
    capture_close(&c);
    rcgc_objgraph_release(chain, n);
    assert_int_equal(rcgc_refcount(b), before);
    char line[128];
    snprintf(line, sizeof line, "root og_pair %p refcount", R);
    assert_non_null(strstr(c.text, line));
    snprintf(line, sizeof line, "  -> og_leaf %p refcount 3\n", t);    /* ours, b's and z's */
    assert_non_null(strstr(c.text, line));
    free(c.text);

    assert_int_equal(rcgc_objgraph_unmark_root(R), 0);
    assert_int_equal(rcgc_objgraph_unmark_root(R), ENOENT);
    expect_chain(t, RCGC_OBJGRAPH_MARKED_ROOTS, 0, NULL, 0);

    /* Unmarked and with Q gone, the default root is R (held here). */
    rcgc_decref(Q);
    expect_chain(t, 0, 0, (void *[]){R, a, b, t}, 4);
    rcgc_decref(R);
    /* Nothing refers to t now but this test. */
    expect_chain(t, 0, 0, NULL, 0);
    rcgc_decref(t);
    assert_int_equal(rcgc_objgraph_find_chain(NULL, 0, 0, &chain, &n), EINVAL);
}

static void test_chain_default_roots(void **state) {
    TEST_BEGIN(state);
    /* c2 -> c1 -> t, c2 held only from untracked memory (a raw block): a
     * reference from outside the tracked heap makes c2 the root. */
    void *t = pair(NULL, NULL);
    void *c1 = pair(t, NULL);
    void **global = rcgc_malloc(sizeof(void *));
    assert_non_null(global);
    *global = pair(c1, NULL);
    void *c2 = *global;
    rcgc_decref(c1);
    expect_chain(t, 0, 0, (void *[]){c2, c1, t}, 3);

    /* A target held twice by the caller is a root itself. */
    rcgc_incref(t);
    expect_chain(t, 0, 0, (void *[]){t}, 1);
    rcgc_decref(t);

    /* An untracked object holding the only reference is no referrer:
     * untracked objects refer to nothing, so the root is the object it
     * holds, seen as referred to from outside. */
    expect_chain(c1, 0, 0, (void *[]){c2, c1}, 2);

    /* Only garbage refers to g2 (a cycle): no root reaches it. */
    void *g1 = pair(NULL, NULL), *g2 = pair(g1, NULL);
    rcgc_set(&((obj *)g1)->a, g2);
    rcgc_decref(g1);
    expect_chain(g2, 0, 0, NULL, 0);
    rcgc_decref(g2);
    assert_int_equal(rcgc_collect(), 2);

    /* Immortal objects are roots, also for RCGC_OBJGRAPH_MARKED_ROOTS. */
    void *t2 = leaf();
    void *imm = pair(t2, NULL);
    rcgc_immortalize(imm);
    expect_chain(t2, RCGC_OBJGRAPH_MARKED_ROOTS, 0, (void *[]){imm, t2}, 2);
    rcgc_decref(t2);

    rcgc_decref(*global);
    rcgc_free(global);
    expect_chain(t, 0, 0, NULL, 0);
    rcgc_decref(t);
}

static void test_marks_are_weak(void **state) {
    TEST_BEGIN(state);
    void *x = pair(NULL, NULL);
    assert_int_equal(rcgc_objgraph_mark_root(x), 0);
    size_t before = atomic_load(&destroyed);
    rcgc_decref(x);         /* the mark does not keep it */
    assert_int_equal(atomic_load(&destroyed), before + 1);
    /* The next pair of this size likely reuses x's block: the dead mark
     * must not make it look marked. */
    void *y = pair(NULL, NULL);
    if (y == x)
        print_message("(the new object reuses the marked object's address)\n");
    void *t = leaf();
    rcgc_set(&((obj *)y)->a, t);
    expect_chain(t, RCGC_OBJGRAPH_MARKED_ROOTS, 0, NULL, 0);
    assert_int_equal(rcgc_objgraph_unmark_root(y), ENOENT);
    assert_int_equal(rcgc_objgraph_mark_root(y), 0);
    expect_chain(t, RCGC_OBJGRAPH_MARKED_ROOTS, 0, (void *[]){y, t}, 2);
    /* Immortal objects can be marked too (they have no weak references). */
    void *imm = leaf();
    rcgc_immortalize(imm);
    assert_int_equal(rcgc_objgraph_mark_root(imm), 0);
    assert_int_equal(rcgc_objgraph_mark_root(imm), EEXIST);
    assert_int_equal(rcgc_objgraph_unmark_root(imm), 0);
    assert_int_equal(rcgc_objgraph_mark_root(NULL), EINVAL);
    /* y stays marked: rcgc_shutdown frees the mark. */
    rcgc_decref(t);
    rcgc_decref(y);
}

/* ------------------------------------------------------------------------
 * DOT
 * ------------------------------------------------------------------------ */

static char *dot_text(void *const *objs, size_t n, const rcgc_objgraph_dot_opts *opts) {
    capture c;
    capture_open(&c);
    assert_int_equal(rcgc_objgraph_dot(c.f, objs, n, opts), 0);
    capture_close(&c);
    return c.text;
}

/* The DOT node id of obj ("oN"), or -1 if it is not drawn. */
static int node_of(const char *dot, const void *o) {
    char pat[64];
    snprintf(pat, sizeof pat, "\\n%p\\n", o);
    const char *p = strstr(dot, pat);
    if (!p)
        return -1;
    while (p > dot && p[-1] != '\n')
        p--;
    int id = -1;
    if (sscanf(p, "  o%d [label=", &id) != 1)
        return -1;
    return id;
}

/* The attributes of the line "  oA -> oB..." (after the arrow), or NULL. */
static const char *edge_of(const char *dot, int a, int b) {
    char pat[48];
    snprintf(pat, sizeof pat, "\n  o%d -> o%d", a, b);
    const char *p = strstr(dot, pat);
    while (p) {
        const char *after = p + strlen(pat);
        if (*after == ';' || *after == ' ')
            return after;
        p = strstr(after, pat);
    }
    return NULL;
}

/* The node line of id. */
static char *node_line(const char *dot, int id, char *out, size_t size) {
    char pat[32];
    snprintf(pat, sizeof pat, "\n  o%d [label=", id);
    const char *p = strstr(dot, pat);
    assert_non_null(p);
    p++;
    size_t len = strcspn(p, "\n");
    assert_true(len < size);
    memcpy(out, p, len);
    out[len] = '\0';
    return out;
}

static size_t count_substr(const char *s, const char *sub) {
    size_t n = 0;
    for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub))
        n++;
    return n;
}

static void test_dot_cycle(void **state) {
    TEST_BEGIN(state);
    /* a -> b -> c -> a, c -> L (untracked); a held here. */
    void *L = leaf();
    void *a = pair(NULL, NULL), *b = pair(NULL, NULL), *c = pair(a, L);
    rcgc_set(&((obj *)a)->a, b);
    rcgc_set(&((obj *)b)->a, c);
    rcgc_decref(b);
    rcgc_decref(c);
    rcgc_decref(L);
    char *dot = dot_text(&a, 1, NULL);
    int na = node_of(dot, a), nb = node_of(dot, b), nc = node_of(dot, c), nl = node_of(dot, L);
    assert_true(na >= 0 && nb >= 0 && nc >= 0 && nl >= 0);
    assert_int_equal(count_substr(dot, " [label="), 4);
    const char *e;
    assert_non_null(e = edge_of(dot, na, nb));
    assert_true(strncmp(e, " [color=\"#d62728\"", 17) == 0);     /* on the cycle: red */
    assert_non_null(e = edge_of(dot, nb, nc));
    assert_true(strncmp(e, " [color=\"#d62728\"", 17) == 0);
    assert_non_null(e = edge_of(dot, nc, na));
    assert_true(strncmp(e, " [color=\"#d62728\"", 17) == 0);
    assert_non_null(e = edge_of(dot, nc, nl));
    assert_int_equal(*e, ';');                                  /* not on a cycle */
    assert_null(edge_of(dot, nb, na));
    char line[512];
    node_line(dot, na, line, sizeof line);
    assert_non_null(strstr(line, "og_pair\\n"));
    /* c's reference and ours; ours, the caller's, is not "from outside". */
    assert_non_null(strstr(line, "\\nrefcount 2\""));
    assert_non_null(strstr(line, "penwidth=2.5"));                 /* chosen */
    assert_null(strstr(line, "\\nroot"));     /* our one reference is not counted */
    node_line(dot, nl, line, sizeof line);
    assert_non_null(strstr(line, "og_leaf\\n"));
    assert_non_null(strstr(line, "dashed"));                       /* untracked */
    assert_null(strstr(line, "#d62728"));
    node_line(dot, nb, line, sizeof line);
    assert_non_null(strstr(line, "color=\"#d62728\""));
    assert_non_null(strstr(dot, "4 objects, 4 references drawn"));
    assert_null(strstr(dot, "truncated"));
    assert_true(strncmp(dot, "digraph objgraph {\n", 19) == 0);
    assert_true(strcmp(dot + strlen(dot) - 2, "}\n") == 0);
    free(dot);

    /* Depth 1: a and b only, and no cycle among them. */
    dot = dot_text(&a, 1, &(rcgc_objgraph_dot_opts){.max_depth = 1});
    assert_int_equal(count_substr(dot, " [label="), 2);
    assert_null(strstr(dot, "#d62728"));
    free(dot);

    /* A root: held twice by us, a is drawn green. */
    rcgc_incref(a);
    dot = dot_text(&a, 1, NULL);
    node_line(dot, node_of(dot, a), line, sizeof line);
    assert_non_null(strstr(line, "\\nroot\""));
    assert_non_null(strstr(line, "fillcolor=\"#a1d99b\""));
    free(dot);
    rcgc_decref(a);
    /* Marked: double border. */
    assert_int_equal(rcgc_objgraph_mark_root(b), 0);
    dot = dot_text(&a, 1, NULL);
    node_line(dot, node_of(dot, b), line, sizeof line);
    assert_non_null(strstr(line, "root (marked)"));
    assert_non_null(strstr(line, "peripheries=2"));
    free(dot);
    assert_int_equal(rcgc_objgraph_unmark_root(b), 0);

    rcgc_decref(a);
    assert_int_equal(rcgc_collect(), 3);
}

static void test_dot_multiple_references(void **state) {
    TEST_BEGIN(state);
    /* p refers to l twice; p refers to itself. */
    void *l = leaf();
    void *p = pair(l, l);
    rcgc_decref(l);
    char *dot = dot_text(&p, 1, NULL);
    int np = node_of(dot, p), nl = node_of(dot, l);
    const char *e = edge_of(dot, np, nl);
    assert_non_null(e);
    assert_true(strncmp(e, " [label=\"x2\"]", 13) == 0);
    free(dot);
    rcgc_set(&((obj *)p)->b, p);
    dot = dot_text(&p, 1, NULL);
    e = edge_of(dot, np, np);
    assert_non_null(e);
    assert_true(strncmp(e, " [color=\"#d62728\"", 17) == 0);    /* a cycle of one */
    free(dot);
    rcgc_decref(p);
    assert_int_equal(rcgc_collect(), 1);
}

static void escaping_label(void *o, char *buf, size_t size, void *arg) {
    (void)arg;
    snprintf(buf, size, "tag \"%u\" \\ back\nnext", ((obj *)o)->tag);
}

static void test_dot_labels_escaped(void **state) {
    TEST_BEGIN(state);
    void *p = pair(NULL, NULL);
    ((obj *)p)->tag = 42;
    char *dot = dot_text(&p, 1, &(rcgc_objgraph_dot_opts){.label = escaping_label});
    assert_non_null(strstr(dot, "\\ntag \\\"42\\\" \\\\ back\\nnext\""));
    free(dot);
    rcgc_decref(p);
}

static void test_dot_truncation(void **state) {
    TEST_BEGIN(state);
    enum { N = 50 };
    vec *hub = new_vec(N);
    for (int i = 0; i < N; i++) {
        void *l = leaf();
        rcgc_set(&hub->ref[i], l);
        rcgc_decref(l);
    }
    void *h = hub;
    char *dot = dot_text(&h, 1, &(rcgc_objgraph_dot_opts){.max_nodes = 10});
    assert_int_equal(count_substr(dot, " [label=\"og_"), 10);      /* the hub and 9 leaves */
    int nh = node_of(dot, hub);
    assert_true(nh >= 0);
    char pat[64];
    snprintf(pat, sizeof pat, "  more%d [shape=plaintext, style=\"\", label=\"+41 more\"];", nh);
    assert_non_null(strstr(dot, pat));
    snprintf(pat, sizeof pat, "  o%d -> more%d [style=dashed];", nh, nh);
    assert_non_null(strstr(dot, pat));
    assert_non_null(strstr(dot, "truncated at max_nodes 10: 41 references not followed"));
    assert_non_null(strstr(dot, "10 objects, 9 references drawn"));
    free(dot);

    /* Without a limit hit: every leaf, no note. */
    dot = dot_text(&h, 1, &(rcgc_objgraph_dot_opts){.max_nodes = 51});
    assert_int_equal(count_substr(dot, " [label=\"og_"), 51);
    assert_null(strstr(dot, "truncated"));
    free(dot);

    /* The objects alone: three leaves and nothing else; more chosen objects
     * than max_nodes: the rest are left out, and said so. */
    void *three[3] = {hub->ref[0], hub->ref[1], hub->ref[2]};
    dot = dot_text(three, 3, &(rcgc_objgraph_dot_opts){.max_depth = -1});
    assert_int_equal(count_substr(dot, " [label=\"og_"), 3);
    assert_non_null(strstr(dot, "3 object(s) and the references between them"));
    free(dot);
    dot = dot_text(three, 3, &(rcgc_objgraph_dot_opts){.max_depth = -1, .max_nodes = 2});
    assert_int_equal(count_substr(dot, " [label=\"og_"), 2);
    assert_non_null(strstr(dot, "0 references not followed, 1 chosen objects left out"));
    free(dot);
    rcgc_decref(hub);

    void *null_obj = NULL;
    capture c;
    capture_open(&c);
    assert_int_equal(rcgc_objgraph_dot(c.f, &null_obj, 1, NULL), EINVAL);
    assert_int_equal(rcgc_objgraph_dot(c.f, &h, 0, NULL), EINVAL);
    capture_close(&c);
    free(c.text);
}

static void test_dot_backrefs(void **state) {
    TEST_BEGIN(state);
    /* q_i -> p_i -> t for i < 3; the q_i held here. */
    void *t = leaf(), *p[3], *q[3];
    for (int i = 0; i < 3; i++) {
        p[i] = pair(t, NULL);
        q[i] = pair(p[i], NULL);
        rcgc_decref(p[i]);
    }
    char *dot = dot_text(&t, 1, &(rcgc_objgraph_dot_opts){.backrefs = 1, .max_depth = 1});
    assert_int_equal(count_substr(dot, " [label="), 4);
    int nt = node_of(dot, t);
    for (int i = 0; i < 3; i++) {
        assert_non_null(edge_of(dot, node_of(dot, p[i]), nt));
        assert_int_equal(node_of(dot, q[i]), -1);
    }
    assert_non_null(strstr(dot, "what refers to 1 object(s), depth 1"));
    free(dot);
    dot = dot_text(&t, 1, &(rcgc_objgraph_dot_opts){.backrefs = 1});
    assert_int_equal(count_substr(dot, " [label="), 7);
    char line[512];
    for (int i = 0; i < 3; i++) {
        int nq = node_of(dot, q[i]);
        assert_non_null(edge_of(dot, nq, node_of(dot, p[i])));
        node_line(dot, nq, line, sizeof line);
        assert_non_null(strstr(line, "(1 from outside)\\nroot\""));   /* held here */
    }
    /* Truncated referrers get a note pointing at what they refer to. */
    free(dot);
    dot = dot_text(&t, 1, &(rcgc_objgraph_dot_opts){.backrefs = 1, .max_nodes = 2});
    char pat[64];
    snprintf(pat, sizeof pat, "  more%d -> o%d [style=dashed];", nt, nt);
    assert_non_null(strstr(dot, pat));
    free(dot);
    for (int i = 0; i < 3; i++)
        rcgc_decref(q[i]);
    rcgc_decref(t);
}

/* The DOT files parse: Graphviz's dot renders them, and so does
 * tools/rcgc-dot (a data dependency of this test). */
static int have_dot(void) { return system("command -v dot >/dev/null 2>&1") == 0; }

static void expect_png(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char magic[8] = {0};
    assert_int_equal(fread(magic, 1, 8, f), 8);
    fclose(f);
    assert_memory_equal(magic, "\x89PNG\r\n\x1a\n", 8);
}

static void test_dot_parses(void **state) {
    TEST_BEGIN(state);
    if (!have_dot()) {
        print_message("Graphviz's dot is not installed: DOT output not parsed (skipped)\n");
        skip();
    }
    /* Everything the writer can emit: cycle, self-reference, multiple
     * references, marked root, immortal, untracked, escaped label,
     * truncation note. */
    void *L = leaf();
    void *a = pair(NULL, L), *b = pair(a, a), *c = pair(b, NULL);
    rcgc_set(&((obj *)a)->a, c);
    rcgc_set(&((obj *)c)->b, c);
    void *imm = pair(a, NULL);
    rcgc_immortalize(imm);
    assert_int_equal(rcgc_objgraph_mark_root(b), 0);
    vec *hub = new_vec(30);
    for (int i = 0; i < 30; i++)
        rcgc_set(&hub->ref[i], i % 2 ? L : (void *)a);
    char dir[] = "/tmp/objgraph_test_XXXXXX";
    const char *tmpdir = getenv("TEST_TMPDIR");
    char path[512], png[512], cmd[2048];
    if (tmpdir && *tmpdir) {
        snprintf(path, sizeof path, "%s/graph.dot", tmpdir);
    } else {
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/graph.dot", dir);
    }
    void *objs[2] = {a, hub};
    rcgc_objgraph_dot_opts opts = {.max_nodes = 6, .label = escaping_label};
    for (int backrefs = 0; backrefs < 2; backrefs++) {
        opts.backrefs = backrefs;
        assert_int_equal(rcgc_objgraph_dot_path(path, objs, 2, &opts), 0);
        snprintf(png, sizeof png, "%s.png", path);
        snprintf(cmd, sizeof cmd, "dot -Tpng -o '%s' '%s'", png, path);
        assert_int_equal(system(cmd), 0);
        expect_png(png);
    }
    /* tools/rcgc-dot, from the runfiles (bazel test) or the source tree. */
    if (access("tools/rcgc-dot", X_OK) == 0) {
        snprintf(cmd, sizeof cmd, "tools/rcgc-dot '%s' > /dev/null", path);
        assert_int_equal(system(cmd), 0);
        char out[512];
        snprintf(out, sizeof out, "%.*s.png", (int)(strlen(path) - 4), path);
        expect_png(out);
        snprintf(cmd, sizeof cmd, "tools/rcgc-dot -T svg -o '%s.svg' '%s' > /dev/null", path, path);
        assert_int_equal(system(cmd), 0);
    } else {
        print_message("tools/rcgc-dot not found from %s: not run\n", getcwd(cmd, sizeof cmd));
    }
    assert_int_equal(rcgc_objgraph_dot_path("/nonexistent-dir/x.dot", objs, 2, NULL), ENOENT);
    assert_int_equal(rcgc_objgraph_unmark_root(b), 0);
    rcgc_decref(hub);
    rcgc_decref(c);
    rcgc_decref(b);
    rcgc_decref(a);
    rcgc_decref(L);
}

/* ------------------------------------------------------------------------
 * From a collection callback (the collector's lock is held there)
 * ------------------------------------------------------------------------ */

static size_t seen_in_callback;
static int callback_rc;

static void counting_callback(rcgc_gc_phase phase, const rcgc_gc_info *info, void *arg) {
    (void)info;
    if (phase != RCGC_GC_STOP)
        return;
    rcgc_objgraph_count *a;
    size_t n;
    callback_rc = rcgc_objgraph_counts(&a, &n);
    const rcgc_objgraph_count *e = callback_rc ? NULL : find(a, n, arg);
    seen_in_callback = e ? e->count : 0;
    free(a);
}

static void test_from_gc_callback(void **state) {
    TEST_BEGIN(state);
    void *keep[5];
    for (int i = 0; i < 5; i++)
        keep[i] = pair(NULL, NULL);
    void *g1 = pair(NULL, NULL), *g2 = pair(g1, NULL);
    rcgc_set(&((obj *)g1)->a, g2);
    rcgc_decref(g1);
    rcgc_decref(g2);
    assert_int_equal(rcgc_gc_callback_add(counting_callback, (void *)&pair_type), 0);
    assert_int_equal(rcgc_collect(), 2);
    assert_int_equal(rcgc_gc_callback_remove(counting_callback, (void *)&pair_type), 0);
    assert_int_equal(callback_rc, 0);
    assert_int_equal(seen_in_callback, 5);      /* the garbage is freed by then */
    for (int i = 0; i < 5; i++)
        rcgc_decref(keep[i]);
}

/* ------------------------------------------------------------------------
 * Out of memory: every OS call of each tool fails in turn
 * ------------------------------------------------------------------------ */

typedef struct {
    void *a, *b, *c, *t;
} small_graph;

static small_graph make_small_graph(void) {
    small_graph g;
    g.t = leaf();
    g.c = pair(g.t, NULL);
    g.b = pair(g.c, NULL);
    g.a = pair(g.b, NULL);
    rcgc_set(&((obj *)g.c)->b, g.a);       /* a -> b -> c -> a, c -> t */
    rcgc_decref(g.b);
    rcgc_decref(g.c);
    return g;
}

enum { TOOL_COUNTS, TOOL_GROWTH, TOOL_CHAIN, TOOL_DOT, TOOL_BACKREFS, NTOOLS };

static int run_tool(int tool, small_graph *g) {
    rcgc_objgraph_count *a = NULL;
    size_t n = 0;
    void **chain = NULL;
    int rc;
    switch (tool) {
    case TOOL_COUNTS:
        rc = rcgc_objgraph_counts(&a, &n);
        free(a);
        return rc;
    case TOOL_GROWTH:
        rc = rcgc_objgraph_growth(&a, &n);
        free(a);
        return rc;
    case TOOL_CHAIN:
        rc = rcgc_objgraph_find_chain(g->t, RCGC_OBJGRAPH_MARKED_ROOTS, 0, &chain, &n);
        if (!rc) {
            assert_int_equal(n, 4);
            rcgc_objgraph_release(chain, n);
        }
        return rc;
    default: {
        FILE *f = fopen("/dev/null", "w");
        assert_non_null(f);
        rc = rcgc_objgraph_dot(f, &g->a, 1, &(rcgc_objgraph_dot_opts){.backrefs = tool == TOOL_BACKREFS});
        fclose(f);
        return rc;
    }
    }
}

static void test_out_of_memory(void **state) {
    TEST_BEGIN(state);
    small_graph g = make_small_graph();
    assert_int_equal(rcgc_objgraph_mark_root(g.a), 0);
    void *objs[4] = {g.a, g.b, g.c, g.t};
    size_t counts[4];
    for (int i = 0; i < 4; i++)
        counts[i] = rcgc_refcount(objs[i]);
    rcgc_objgraph_count *base;
    size_t nbase;
    assert_int_equal(rcgc_objgraph_growth(&base, &nbase), 0);   /* the reference for growth */
    free(base);
    size_t failures = 0;
    for (int tool = 0; tool < NTOOLS; tool++) {
        uint64_t c0 = rcgc__os_calls();
        assert_int_equal(run_tool(tool, &g), 0);
        uint64_t calls = rcgc__os_calls() - c0;
        assert_true(calls > 0);
        for (uint64_t k = 1; k <= calls; k++) {
            rcgc__os_fail_nth(k);
            int rc = run_tool(tool, &g);
            rcgc__os_fail_nth(0);
            assert_int_equal(rc, ENOMEM);
            failures++;
            for (int i = 0; i < 4; i++)
                assert_int_equal(rcgc_refcount(objs[i]), counts[i]);
        }
        assert_int_equal(run_tool(tool, &g), 0);
    }
    print_message("%zu OS calls failed in turn, each reported as ENOMEM\n", failures);
    /* Failed growth calls kept the reference: nothing grew since. */
    rcgc_objgraph_count *a;
    size_t n;
    assert_int_equal(rcgc_objgraph_growth(&a, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(rcgc_objgraph_unmark_root(g.a), 0);
    rcgc_decref(g.t);
    rcgc_decref(g.a);
    assert_int_equal(rcgc_collect(), 3);
}

/* ------------------------------------------------------------------------
 * Mutator threads running during every tool
 * ------------------------------------------------------------------------ */

enum { MT_THREADS = 4, MT_SLOTS = 8, STABLE = 500 };

typedef struct {
    int id;
    vec *hub;                   /* shared: this thread writes ref[id * MT_SLOTS ..] only */
    _Atomic int *stop;
    size_t rounds;
} mutator;

/* Allocates, links into its part of the shared hub, makes garbage cycles,
 * drops objects, collects now and then; every rcgc_new is a safepoint. */
static void *mutator_main(void *arg) {
    mutator *m = arg;
    TEST_THREAD_CHECK(rcgc_thread_attach() == 0);
    unsigned seed = 0x9E3779B9u * (unsigned)(m->id + 1);
    void *mine[16] = {0};
    while (!atomic_load_explicit(m->stop, memory_order_relaxed)) {
        uint64_t r = (uint64_t)rand_r(&seed) << 31 | (uint64_t)rand_r(&seed);
        void *l = rcgc_new(&leaf_type);
        TEST_THREAD_CHECK(l != NULL);
        void *p = new_obj(&churn_type, l, mine[r % 16]);
        rcgc_decref(l);
        rcgc_set(&mine[(r >> 8) % 16], p);
        rcgc_set(&m->hub->ref[m->id * MT_SLOTS + (r >> 16) % MT_SLOTS], p);
        rcgc_decref(p);
        if ((r >> 24) % 8 == 0) {       /* a garbage cycle */
            void *x = new_obj(&churn_type, NULL, NULL), *y = new_obj(&churn_type, x, NULL);
            rcgc_set(&((obj *)x)->a, y);
            rcgc_decref(x);
            rcgc_decref(y);
        }
        if ((r >> 40) % 512 == 0)
            rcgc_collect();
        m->rounds++;
    }
    for (int i = 0; i < 16; i++)
        rcgc_set(&mine[i], NULL);
    rcgc_thread_detach();
    return NULL;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_mutators_running(void **state) {
    TEST_BEGIN(state);
    /* A fixed population the mutators never touch: its figures must be
     * exact in every snapshot. */
    void *stable[STABLE];
    for (int i = 0; i < STABLE; i++) {
        stable[i] = rcgc_new(&stable_type);
        assert_non_null(stable[i]);
    }
    small_graph g = make_small_graph();     /* a -> b -> c -> a, c -> t */
    void *R = pair(g.a, NULL);
    assert_int_equal(rcgc_objgraph_mark_root(R), 0);
    vec *hub = new_vec(MT_THREADS * MT_SLOTS);

    _Atomic int stop = 0;
    mutator m[MT_THREADS];
    pthread_t th[MT_THREADS];
    for (int i = 0; i < MT_THREADS; i++) {
        m[i] = (mutator){.id = i, .hub = hub, .stop = &stop};
        th[i] = test_thread_start(mutator_main, &m[i]);
    }
    double t0 = now_s(), limit = TEST_SCALE(2.0, 4.0);
    size_t iterations = 0, chains = 0, dots = 0, hub_nodes = 0;
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    while (now_s() - t0 < limit || iterations < 5) {
        rcgc_objgraph_count *a;
        size_t n;
        assert_int_equal(rcgc_objgraph_counts(&a, &n), 0);
        const rcgc_objgraph_count *e = find(a, n, &stable_type);
        assert_non_null(e);
        assert_int_equal(e->count, STABLE);
        assert_int_equal(e->bytes, STABLE * block_bytes(stable[0]));
        free(a);

        expect_chain(g.t, RCGC_OBJGRAPH_MARKED_ROOTS, 0, (void *[]){R, g.a, g.b, g.c, g.t}, 5);
        chains++;

        /* The hub, which the mutators rewrite: it and what it reaches,
         * drawn from one consistent snapshot. */
        void *h = hub;
        char *dot = dot_text(&h, 1, &(rcgc_objgraph_dot_opts){.max_depth = 2, .max_nodes = 200});
        assert_true(node_of(dot, hub) >= 0);
        hub_nodes += count_substr(dot, " [label=");
        free(dot);
        dot = dot_text(&g.t, 1, &(rcgc_objgraph_dot_opts){.backrefs = 1, .max_depth = 4});
        assert_int_equal(count_substr(dot, " [label="), 5);     /* t, c, b, a, R */
        free(dot);
        dots += 2;

        assert_int_equal(rcgc_objgraph_growth(&a, &n), 0);
        if (iterations)
            assert_null(find(a, n, &stable_type));         /* it never grows */
        free(a);
        assert_int_equal(rcgc_objgraph_show_most_common(devnull, 5), 0);
        iterations++;
    }
    atomic_store(&stop, 1);
    rcgc_blocking_begin();      /* the mutators' collections must not wait for us */
    for (int i = 0; i < MT_THREADS; i++)
        test_thread_join(th[i]);
    rcgc_blocking_end();
    fclose(devnull);
    size_t rounds = 0;
    for (int i = 0; i < MT_THREADS; i++)
        rounds += m[i].rounds;
    print_message("%zu snapshots of each tool (%zu chains, %zu DOT graphs, %.1f hub nodes each) "
                  "against %d mutators making %zu rounds\n",
                  iterations, chains, dots, (double)hub_nodes / (double)iterations, MT_THREADS,
                  rounds);
    assert_true(rounds > 0);

    assert_int_equal(rcgc_objgraph_unmark_root(R), 0);
    rcgc_decref(hub);
    rcgc_decref(R);
    rcgc_decref(g.t);
    rcgc_decref(g.a);
    for (int i = 0; i < STABLE; i++)
        rcgc_decref(stable[i]);
    rcgc_collect();
}

/* ------------------------------------------------------------------------
 * The case docs/PROFILING.md walks through: a session that a cache entry
 * refers back to (a cycle), held by a marked registry.
 * ------------------------------------------------------------------------ */

static void test_session_cycle(void **state) {
    TEST_BEGIN(state);
    void *buffer = rcgc_new(&buffer_type);
    assert_non_null(buffer);
    void *session = new_obj(&session_type, NULL, buffer);
    void *entry = new_obj(&entry_type, session, NULL);      /* back to its session */
    void *cache = new_obj(&cache_type, entry, NULL);
    rcgc_set(&((obj *)session)->a, cache);
    void *registry = new_obj(&registry_type, session, NULL);
    assert_int_equal(rcgc_objgraph_mark_root(registry), 0);
    rcgc_decref(buffer);
    rcgc_decref(cache);
    rcgc_decref(session);

    /* Why is the entry alive? */
    expect_chain(entry, RCGC_OBJGRAPH_MARKED_ROOTS, 0, (void *[]){registry, session, cache, entry}, 4);
    rcgc_objgraph_dot_opts opts = {.backrefs = 1, .max_depth = 4};
    char *dot = dot_text(&entry, 1, &opts);
    /* entry <- cache <- session <- registry, and session <- entry. */
    int ne = node_of(dot, entry), nc = node_of(dot, cache), ns = node_of(dot, session),
        nr = node_of(dot, registry);
    assert_true(ne >= 0 && nc >= 0 && ns >= 0 && nr >= 0);
    assert_int_equal(node_of(dot, buffer), -1);     /* refers to nothing: not a referrer */
    assert_non_null(edge_of(dot, nr, ns));
    char line[512];
    node_line(dot, nr, line, sizeof line);  /* ours, not the tool's reference on a marked root */
    assert_non_null(strstr(line, "\\nrefcount 1 (1 from outside)\\nroot (marked)\""));
    assert_non_null(strstr(edge_of(dot, ns, nc), "#d62728"));
    assert_non_null(strstr(edge_of(dot, nc, ne), "#d62728"));
    assert_non_null(strstr(edge_of(dot, ne, ns), "#d62728"));
    free(dot);

    /* Dropping the registry leaves the cycle to the collector. */
    assert_int_equal(rcgc_objgraph_unmark_root(registry), 0);
    rcgc_decref(registry);
    expect_chain(entry, 0, 0, NULL, 0);     /* only the cycle (and our one reference) */
    rcgc_decref(entry);
    assert_int_equal(rcgc_collect(), 3);
}

int main(void) {
    test_main_init();
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_counts_exact),
        T(test_show_most_common),
        T(test_growth),
        T(test_chain_marked_root),
        T(test_chain_default_roots),
        T(test_marks_are_weak),
        T(test_dot_cycle),
        T(test_dot_multiple_references),
        T(test_dot_labels_escaped),
        T(test_dot_truncation),
        T(test_dot_backrefs),
        T(test_dot_parses),
        T(test_from_gc_callback),
        T(test_out_of_memory),
        T(test_mutators_running),
        T(test_session_cycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
