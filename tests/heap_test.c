/*
 * Unit tests of the per-thread heaps (lib/heap.c, lib/malloc.c,
 * lib/stats.c): size classes, every size from 0 to 40000, ownership,
 * calloc, the heap walk, exact statistics, cross-thread frees,
 * abandonment and adoption, thread exit, and init/shutdown cycles.
 *
 * Each test runs on a fresh runtime (setup: rcgc_init, teardown:
 * rcgc_shutdown). Worker threads never call cmocka: they count what went
 * wrong and the main thread asserts after joining them.
 */
#include "test_util.h"

#include "lib/heap.h"
#include "lib/thread.h"

#define SLICE RCGC_SLICE_SIZE

/* xorshift64*: deterministic workloads. */
static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A size from a mix: mostly small, some medium, rarely large. */
static size_t mixed_size(uint64_t *s) {
    uint64_t r = rng_next(s);
    switch (r % 16) {
    case 0:
        return RCGC_SMALL_MAX + 1 + (size_t)(r >> 8) % (RCGC_MEDIUM_MAX - RCGC_SMALL_MAX);
    case 1:
        return (size_t)(r >> 8) % 2048;
    default:
        return (size_t)(r >> 8) % (RCGC_SMALL_MAX + 1);
    }
}

static size_t expected_usable(size_t size) {
    if (size > RCGC_MEDIUM_MAX)
        return (size + SLICE - 1) / SLICE * SLICE;
    return rcgc__class_size[rcgc__size_class(size)];
}

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
    return x < y ? -1 : x > y;
}

static rcgc_heap *my_heap(void) {
    rcgc_thread *t = rcgc__thread_current();
    assert_non_null(t);
    return &t->heap;
}

/* ------------------------------------------------------------------------
 * Statistics first: later tests' remote frees must not be able to leak
 * into this one's figures (see test_stats_exact_after_reinit).
 * ------------------------------------------------------------------------ */

typedef struct {
    void **blocks;
    size_t n;
} free_job;

static void *free_job_thread(void *arg) {
    free_job *j = arg;
    if (rcgc_thread_attach() != 0)
        return (void *)1;
    for (size_t i = 0; i < j->n; i++)
        rcgc_free(j->blocks[i]);
    rcgc_thread_detach();
    return NULL;
}

/* Frees blocks on another (attached) thread: remote frees. */
static void free_on_other_thread(void **blocks, size_t n) {
    free_job j = {blocks, n};
    pthread_t t = test_thread_start(free_job_thread, &j);
    assert_null(test_thread_join(t));
}

static size_t class_blocks(const rcgc_stats *s, unsigned c) { return s->by_class[c].blocks_in_use; }

static void test_stats_exact(void **state) {
    TEST_BEGIN(state);
    enum { NSMALL = 1000, NMED = 100, NLARGE = 10, N = NSMALL + NMED + NLARGE };
    static void *blocks[N];
    static size_t usable[N];
    size_t per_class[RCGC_NCLASSES] = {0};

    rcgc_stats s0 = test_stats();
    assert_int_equal(s0.blocks_in_use, 0);
    assert_int_equal(s0.bytes_in_use, 0);
    assert_int_equal(s0.large_in_use, 0);
    assert_int_equal(s0.threads_attached, 1);
    assert_int_equal(s0.nclasses, RCGC_NCLASSES);
    for (unsigned c = 0; c < RCGC_NCLASSES; c++)
        assert_int_equal(s0.by_class[c].block_size, rcgc__class_size[c]);

    size_t bytes = 0;
    for (size_t i = 0; i < N; i++) {
        size_t size = i < NSMALL ? i % RCGC_SMALL_MAX + 1
                    : i < NSMALL + NMED ? RCGC_SMALL_MAX + 1 + (i - NSMALL) * 317
                                        : RCGC_MEDIUM_MAX + 1 + (i - NSMALL - NMED) * 100000;
        blocks[i] = rcgc_malloc(size);
        assert_non_null(blocks[i]);
        usable[i] = rcgc_usable_size(blocks[i]);
        assert_int_equal(usable[i], expected_usable(size));
        bytes += usable[i];
        if (size <= RCGC_MEDIUM_MAX)
            per_class[rcgc__size_class(size)]++;
    }
    rcgc_stats s1 = test_stats();
    assert_int_equal(s1.blocks_in_use, N);
    assert_int_equal(s1.bytes_in_use, bytes);
    assert_int_equal(s1.large_in_use, NLARGE);
    assert_int_equal(s1.allocs_total - s0.allocs_total, N);
    assert_int_equal(s1.frees_total - s0.frees_total, 0);
    for (unsigned c = 1; c < RCGC_NCLASSES; c++) {
        assert_int_equal(class_blocks(&s1, c), per_class[c]);
        assert_int_equal(s1.by_class[c].pages > 0, per_class[c] > 0);
    }

    /* The owner frees every fourth block (i % 4 == 0). */
    size_t freed = 0, freed_large = 0;
    for (size_t i = 0; i < N; i += 4) {
        bytes -= usable[i];
        if (i < NSMALL + NMED)
            per_class[rcgc__size_class(usable[i])]--;
        else
            freed_large++;
        rcgc_free(blocks[i]);
        blocks[i] = NULL;
        freed++;
    }
    rcgc_stats s2 = test_stats();
    assert_int_equal(s2.blocks_in_use, N - freed);
    assert_int_equal(s2.bytes_in_use, bytes);
    assert_int_equal(s2.large_in_use, NLARGE - freed_large);
    assert_int_equal(s2.frees_total - s0.frees_total, freed);
    assert_int_equal(s2.remote_frees_total - s0.remote_frees_total, 0);
    for (unsigned c = 1; c < RCGC_NCLASSES; c++)
        assert_int_equal(class_blocks(&s2, c), per_class[c]);

    /* Another thread frees the blocks with i % 4 == 1: remote frees, not
     * yet collected by this (owning) thread. */
    static void *remote[N];
    size_t nremote = 0, remote_small = 0, remote_large = 0;
    for (size_t i = 1; i < N; i += 4) {
        remote[nremote++] = blocks[i];
        bytes -= usable[i];
        if (i < NSMALL + NMED)
            remote_small++;
        else
            remote_large++;
        blocks[i] = NULL;
    }
    free_on_other_thread(remote, nremote);
    rcgc_stats s3 = test_stats();
    assert_int_equal(s3.blocks_in_use, N - freed - nremote);
    assert_int_equal(s3.bytes_in_use, bytes);
    assert_int_equal(s3.large_in_use, NLARGE - freed_large - remote_large);
    assert_int_equal(s3.frees_total - s0.frees_total, freed + nremote);
    /* Large blocks have no owner: freeing one is never a remote free. */
    assert_int_equal(s3.remote_frees_total - s0.remote_frees_total, remote_small);
    assert_int_equal(s3.threads_attached, 1);
    /* Per class, blocks freed by other threads count until collected. */
    for (unsigned c = 1; c < RCGC_NCLASSES; c++)
        assert_int_equal(class_blocks(&s3, c), per_class[c]);

    /* Collecting changes the per-class figures, not the totals. */
    rcgc_heap_collect();
    for (size_t i = 1; i < NSMALL + NMED; i += 4)
        per_class[rcgc__size_class(usable[i])]--;
    rcgc_stats s4 = test_stats();
    assert_int_equal(s4.blocks_in_use, s3.blocks_in_use);
    assert_int_equal(s4.bytes_in_use, s3.bytes_in_use);
    for (unsigned c = 1; c < RCGC_NCLASSES; c++)
        assert_int_equal(class_blocks(&s4, c), per_class[c]);

    for (size_t i = 0; i < N; i++)
        rcgc_free(blocks[i]);
    rcgc_stats s5 = test_stats();
    assert_int_equal(s5.blocks_in_use, 0);
    assert_int_equal(s5.bytes_in_use, 0);
    assert_int_equal(s5.large_in_use, 0);
    assert_int_equal(s5.allocs_total - s0.allocs_total, N);
    assert_int_equal(s5.frees_total - s0.frees_total, N);
}

/* The same figures after a shutdown and a new rcgc_init: remote frees
 * collected in the earlier run must not hide this run's frees in flight. */
static void test_stats_exact_after_reinit(void **state) {
    TEST_BEGIN(state);
    enum { N = 2000 };
    static void *blocks[N];
    /* First run: remote frees, collected. */
    for (size_t i = 0; i < N; i++)
        assert_non_null(blocks[i] = rcgc_malloc(64));
    free_on_other_thread(blocks, N);
    rcgc_heap_collect();
    assert_int_equal(test_stats().blocks_in_use, 0);
    rcgc_shutdown();

    /* Second run: fewer remote frees, not collected yet. */
    assert_int_equal(rcgc_init(NULL), 0);
    rcgc_stats s0 = test_stats();
    assert_int_equal(s0.blocks_in_use, 0);
    assert_int_equal(s0.remote_frees_total, 0);
    assert_int_equal(s0.allocs_total, 0);
    for (size_t i = 0; i < N / 2; i++)
        assert_non_null(blocks[i] = rcgc_malloc(64));
    free_on_other_thread(blocks, N / 2);
    rcgc_stats s1 = test_stats();
    assert_int_equal(s1.remote_frees_total, N / 2);
    if (s1.blocks_in_use != 0 || s1.bytes_in_use != 0)
        fail_msg("after a re-init, %d blocks freed remotely (not yet collected) still count: "
                 "blocks_in_use %zu, bytes_in_use %zu",
                 N / 2, s1.blocks_in_use, s1.bytes_in_use);
    rcgc_heap_collect();
    assert_int_equal(test_stats().blocks_in_use, 0);
}

/* ------------------------------------------------------------------------
 * Size classes and sizes
 * ------------------------------------------------------------------------ */

static void test_size_classes(void **state) {
    TEST_BEGIN(state);
    /* The table: multiples of 16, strictly increasing, ending at 32 KiB. */
    assert_int_equal(rcgc__class_size[0], 0);
    for (unsigned c = 1; c < RCGC_NCLASSES; c++) {
        assert_int_equal(rcgc__class_size[c] % RCGC_ALIGN, 0);
        assert_true(rcgc__class_size[c] > rcgc__class_size[c - 1]);
        if (c <= RCGC_SMALL_CLASSES)
            assert_int_equal(rcgc__class_size[c], c * RCGC_ALIGN);
    }
    assert_int_equal(rcgc__class_size[RCGC_NCLASSES - 1], RCGC_MEDIUM_MAX);

    /* The mapping: monotonic, big enough, and the smallest that is. */
    unsigned prev = 1;
    for (size_t s = 0; s <= RCGC_MEDIUM_MAX; s++) {
        unsigned c = rcgc__size_class(s);
        if (c < 1 || c >= RCGC_NCLASSES)
            fail_msg("size %zu: class %u out of range", s, c);
        if (c < prev)
            fail_msg("size %zu: class %u after class %u for size %zu", s, c, prev, s - 1);
        if (rcgc__class_size[c] < s)
            fail_msg("size %zu: class %u holds only %u bytes", s, c, rcgc__class_size[c]);
        if (s > 0 && c > 1 && rcgc__class_size[c - 1] >= s)
            fail_msg("size %zu: class %u (%u bytes) chosen, but class %u (%u bytes) fits", s, c,
                     rcgc__class_size[c], c - 1, rcgc__class_size[c - 1]);
        prev = c;
    }
    /* Medium classes waste at most a quarter of the block. */
    for (size_t s = RCGC_SMALL_MAX + 1; s <= RCGC_MEDIUM_MAX; s++)
        assert_true(rcgc__class_size[rcgc__size_class(s)] <= s + s / 4 + RCGC_ALIGN);
}

/* Every byte of block i is (i * 131 + 7) & 0xff | 1. */
static uint8_t fill_byte(size_t i) { return (uint8_t)(((i * 131 + 7) & 0xff) | 1); }

static void check_block(void *p, size_t size, size_t usable_min) {
    if ((uintptr_t)p % RCGC_ALIGN)
        fail_msg("rcgc_malloc(%zu) = %p: not %d-byte aligned", size, p, RCGC_ALIGN);
    size_t usable = rcgc_usable_size(p);
    if (usable < size || usable < usable_min)
        fail_msg("rcgc_malloc(%zu): usable size %zu", size, usable);
    if (usable != expected_usable(size))
        fail_msg("rcgc_malloc(%zu): usable size %zu, want %zu", size, usable, expected_usable(size));
    if (!rcgc_owns(p))
        fail_msg("rcgc_owns(rcgc_malloc(%zu)) = 0", size);
    if (rcgc_owns((uint8_t *)p + 8))
        fail_msg("rcgc_owns(%p + 8) = 1 for a block of %zu bytes", p, usable);
    if (usable >= 32 && rcgc_owns((uint8_t *)p + 16))
        fail_msg("rcgc_owns(%p + 16) = 1 for a block of %zu bytes", p, usable);
    if (usable > SLICE && rcgc_owns((uint8_t *)p + SLICE))
        fail_msg("rcgc_owns(%p + 64 KiB) = 1 for a block of %zu bytes", p, usable);
    if (rcgc_owns((uint8_t *)p + usable - 1))
        fail_msg("rcgc_owns(last byte of %p) = 1", p);
}

/* Sizes 0..1024 one by one, then coarser to 40000, all live at once, each
 * written over its whole usable size; then large and huge sizes. */
static void test_sizes(void **state) {
    TEST_BEGIN(state);
    enum { MAXN = 4096 };
    static void *blocks[MAXN];
    static size_t sizes[MAXN];
    size_t n = 0;
    for (size_t s = 0; s <= 40000; s += s < 1024 ? 1 : s < 4096 ? 13 : 97) {
        assert_true(n < MAXN);
        void *p = rcgc_malloc(s);
        assert_non_null(p);
        check_block(p, s, 1);
        memset(p, fill_byte(n), rcgc_usable_size(p));
        sizes[n] = s;
        blocks[n++] = p;
    }
    /* No two blocks overlap: sort by address, compare neighbours. */
    static void *sorted[MAXN];
    memcpy(sorted, blocks, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_ptr);
    for (size_t i = 1; i < n; i++)
        if ((uint8_t *)sorted[i - 1] + rcgc_usable_size(sorted[i - 1]) > (uint8_t *)sorted[i])
            fail_msg("blocks %p (%zu bytes) and %p overlap", sorted[i - 1],
                     rcgc_usable_size(sorted[i - 1]), sorted[i]);
    /* Every byte written is still there. */
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = blocks[i];
        size_t u = rcgc_usable_size(p);
        for (size_t k = 0; k < u; k++)
            if (p[k] != fill_byte(i))
                fail_msg("block %zu (size %zu) byte %zu: %#x, want %#x", i, sizes[i], k, p[k],
                         fill_byte(i));
    }
    /* A freed block start is still a block start (rcgc_owns: "a live or
     * free block start"), while its page lives. */
    rcgc_free(blocks[100]);
    assert_true(rcgc_owns(blocks[100]));
    blocks[100] = NULL;
    for (size_t i = 0; i < n; i++)
        rcgc_free(blocks[i]);

    /* Large and huge blocks. */
    const size_t large[] = {RCGC_MEDIUM_MAX + 1, 40000, SLICE - 1, SLICE, SLICE + 1,
                            TEST_MIB - 3, TEST_MIB, 10 * TEST_MIB + 1,
                            RCGC_ARENA_SIZE - 4 * SLICE, RCGC_ARENA_SIZE, 100 * TEST_MIB};
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
        size_t s = large[i];
        rcgc_stats s0 = test_stats();
        uint8_t *p = rcgc_malloc(s);
        assert_non_null(p);
        check_block(p, s, s);
        size_t u = rcgc_usable_size(p);
        rcgc_stats s1 = test_stats();
        assert_int_equal(s1.large_in_use, s0.large_in_use + 1);
        assert_int_equal(s1.bytes_in_use, s0.bytes_in_use + u);
        if (u <= 16 * TEST_MIB) {
            memset(p, 0x5a, u);
        } else {
            memset(p, 0x5a, TEST_MIB);
            memset(p + u - TEST_MIB, 0x5a, TEST_MIB);
        }
        assert_int_equal(p[u - 1], 0x5a);
        rcgc_free(p);
        rcgc_stats s2 = test_stats();
        assert_int_equal(s2.large_in_use, s0.large_in_use);
        assert_int_equal(s2.bytes_in_use, s0.bytes_in_use);
        /* The span is gone: no longer a block start. */
        assert_false(rcgc_owns(p));
    }
}

/* Size 0 gives distinct blocks. */
static void test_malloc_zero(void **state) {
    TEST_BEGIN(state);
    void *a = rcgc_malloc(0), *b = rcgc_malloc(0);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_true(rcgc_usable_size(a) >= 1);
    rcgc_free(a);
    rcgc_free(b);
    rcgc_free(NULL);    /* allowed */
    assert_int_equal(rcgc_usable_size(NULL), 0);
}

static void test_owns_foreign(void **state) {
    TEST_BEGIN(state);
    int local = 0;
    void *m = malloc(32);
    assert_non_null(m);
    assert_false(rcgc_owns(NULL));
    int owns_m = rcgc_owns(m);
    free(m);
    assert_false(rcgc_owns(&local));
    assert_false(owns_m);
    assert_false(rcgc_owns(test_stats));
}

static void test_too_big(void **state) {
    TEST_BEGIN(state);
    rcgc_stats s0 = test_stats();
    const size_t sizes[] = {SIZE_MAX, SIZE_MAX - SLICE, (size_t)1 << 47, (size_t)1 << 62};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        errno = 0;
        assert_null(rcgc_malloc(sizes[i]));
        assert_int_equal(errno, ENOMEM);
    }
    rcgc_stats s1 = test_stats();
    assert_int_equal(s1.allocs_total, s0.allocs_total);
    assert_int_equal(s1.bytes_reserved, s0.bytes_reserved);
}

static void test_calloc_zeroes(void **state) {
    TEST_BEGIN(state);
    const size_t sizes[] = {1, 16, 100, 512, 600, 5000, 32768, 70000, 3 * TEST_MIB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t s = sizes[i];
        /* Dirty a block of the class, free it, so calloc likely reuses it. */
        uint8_t *d = rcgc_malloc(s);
        assert_non_null(d);
        memset(d, 0xff, rcgc_usable_size(d));
        rcgc_free(d);
        uint8_t *p = rcgc_calloc(1, s);
        assert_non_null(p);
        for (size_t k = 0; k < s; k++)
            if (p[k])
                fail_msg("rcgc_calloc(1, %zu): byte %zu is %#x", s, k, p[k]);
        rcgc_free(p);
        uint32_t *q = rcgc_calloc(s, 4);
        assert_non_null(q);
        assert_true(rcgc_usable_size(q) >= s * 4);
        for (size_t k = 0; k < s; k++)
            if (q[k])
                fail_msg("rcgc_calloc(%zu, 4): word %zu is %#x", s, k, q[k]);
        rcgc_free(q);
    }
    void *z = rcgc_calloc(0, 10);
    assert_non_null(z);
    rcgc_free(z);

    rcgc_stats s0 = test_stats();
    const size_t bad[][2] = {{SIZE_MAX, 2}, {2, SIZE_MAX}, {SIZE_MAX / 2 + 1, 2},
                             {(size_t)1 << 32, (size_t)1 << 32}, {SIZE_MAX, SIZE_MAX}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        assert_null(rcgc_calloc(bad[i][0], bad[i][1]));
        assert_int_equal(errno, ENOMEM);
    }
    /* No overflow, but too big. */
    errno = 0;
    assert_null(rcgc_calloc((size_t)1 << 24, (size_t)1 << 24));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(test_stats().allocs_total, s0.allocs_total);
}

/* ------------------------------------------------------------------------
 * Heap walk
 * ------------------------------------------------------------------------ */

typedef struct {
    void **seen;
    size_t n, cap;
    size_t bad_size;    /* visits whose block_size differs from usable size */
    size_t stop_after;  /* 0: never stop */
} walk_ctx;

static int walk_visitor(void *block, size_t block_size, void *arg) {
    walk_ctx *w = arg;
    if (w->n < w->cap)
        w->seen[w->n] = block;
    w->n++;
    if (block_size != rcgc_usable_size(block))
        w->bad_size++;
    if (w->stop_after && w->n == w->stop_after)
        return 77;
    return 0;
}

/* Walks tag RAW and compares with `live` (n entries, any order). Static
 * buffers: a failed assertion leaves nothing to free. */
#define WALK_MAX 8192
static void check_walk(void **live, size_t n, const char *when) {
    static void *seen[WALK_MAX], *want[WALK_MAX];
    assert_true(n < WALK_MAX);
    walk_ctx w = {seen, 0, WALK_MAX, 0, 0};
    assert_int_equal(rcgc__heap_visit(RCGC_TAG_RAW, walk_visitor, &w), 0);
    if (w.n != n)
        fail_msg("%s: walk visited %zu blocks, %zu are live", when, w.n, n);
    assert_int_equal(w.bad_size, 0);
    if (n)
        memcpy(want, live, n * sizeof(void *));
    qsort(want, n, sizeof(void *), cmp_ptr);
    qsort(seen, n, sizeof(void *), cmp_ptr);
    for (size_t i = 0; i < n; i++)
        if (want[i] != seen[i])
            fail_msg("%s: walk and live set differ at %zu: visited %p, live %p", when, i, seen[i],
                     want[i]);
    /* Every tag at once: the same blocks (nothing but raw blocks here). */
    walk_ctx all = {NULL, 0, 0, 0, 0};
    assert_int_equal(rcgc__heap_visit(-1, walk_visitor, &all), 0);
    assert_int_equal(all.n, n);
    walk_ctx obj = {NULL, 0, 0, 0, 0};
    assert_int_equal(rcgc__heap_visit(RCGC_TAG_OBJ, walk_visitor, &obj), 0);
    assert_int_equal(obj.n, 0);
}

enum { WALK_N = 3000 };

typedef struct {
    test_gate gate;
    void *mine[WALK_N];     /* the worker's blocks */
    void **theirs;          /* main's blocks the worker frees at step 2 */
    size_t ntheirs;
    int errors;
} walk_worker;

/* Steps: 1 allocated; 2 (main) please free; 3 freed; 4 (main) detach;
 * 5 detached; 6 (main) exit. */
static void *walk_thread(void *arg) {
    walk_worker *w = arg;
    if (rcgc_thread_attach() != 0) {
        w->errors++;
        test_gate_set(&w->gate, 5);
        return NULL;
    }
    uint64_t seed = 99;
    for (size_t i = 0; i < WALK_N; i++)
        if (!(w->mine[i] = rcgc_malloc(mixed_size(&seed))))
            w->errors++;
    test_gate_set(&w->gate, 1);
    test_gate_wait(&w->gate, 2);
    for (size_t i = 0; i < w->ntheirs; i++)   /* remote frees into main's pages */
        rcgc_free(w->theirs[i]);
    for (size_t i = 2; i < WALK_N; i += 3) {  /* own frees */
        rcgc_free(w->mine[i]);
        w->mine[i] = NULL;
    }
    /* Push the remote frees still chained in this heap onto their pages'
     * thread-free stacks, uncollected (test_walk_chained_remote_frees
     * covers the chained state itself). */
    rcgc__heap_flush_remote(&rcgc__thread_current()->heap);
    test_gate_set(&w->gate, 3);
    test_gate_wait(&w->gate, 4);
    rcgc_thread_detach();
    test_gate_set(&w->gate, 5);
    test_gate_wait(&w->gate, 6);
    return NULL;
}

static void test_heap_walk(void **state) {
    TEST_BEGIN(state);
    enum { N = WALK_N };
    static void *mine[N + 4];
    static void *live[2 * N + 8];
    static walk_worker w;
    memset(&w, 0, sizeof w);
    test_gate_init(&w.gate);

    check_walk(NULL, 0, "empty heap");

    uint64_t seed = 7;
    size_t nm = 0;
    for (size_t i = 0; i < N; i++)
        assert_non_null(mine[nm++] = rcgc_malloc(mixed_size(&seed)));
    assert_non_null(mine[nm++] = rcgc_malloc(100000));
    assert_non_null(mine[nm++] = rcgc_malloc(TEST_MIB));
    assert_non_null(mine[nm++] = rcgc_malloc(70 * TEST_MIB));   /* huge */

    pthread_t t = test_thread_start(walk_thread, &w);
    test_gate_wait(&w.gate, 1);
    assert_int_equal(w.errors, 0);

    /* Main frees: every third of its own (local), every third of the
     * worker's (remote: the worker is idle and does not collect). */
    for (size_t i = 0; i < nm; i += 3) {
        rcgc_free(mine[i]);
        mine[i] = NULL;
    }
    for (size_t i = 0; i < N; i += 3) {
        rcgc_free(w.mine[i]);
        w.mine[i] = NULL;
    }
    rcgc__heap_flush_remote(my_heap());
    /* The worker frees another third of main's, and a third of its own. */
    static void *theirs[N];
    for (size_t i = 1; i < nm; i += 3) {
        theirs[w.ntheirs++] = mine[i];
        mine[i] = NULL;
    }
    w.theirs = theirs;
    test_gate_set(&w.gate, 2);
    test_gate_wait(&w.gate, 3);

    size_t n = 0;
    for (size_t i = 0; i < nm; i++)
        if (mine[i])
            live[n++] = mine[i];
    for (size_t i = 0; i < N; i++)
        if (w.mine[i])
            live[n++] = w.mine[i];
    check_walk(live, n, "remote frees in flight");
    assert_int_equal(test_stats().blocks_in_use, n);

    /* Stopping early: the visitor's value comes back. */
    walk_ctx stop = {NULL, 0, 0, 0, 5};
    assert_int_equal(rcgc__heap_visit(RCGC_TAG_RAW, walk_visitor, &stop), 77);
    assert_int_equal(stop.n, 5);

    /* The worker detaches: its pages are abandoned, its blocks still live. */
    test_gate_set(&w.gate, 4);
    test_gate_wait(&w.gate, 5);
    assert_true(test_stats().pages_abandoned > 0);
    check_walk(live, n, "after the worker detached");

    /* Main collects its remote frees: nothing changes for the walk. */
    rcgc_heap_collect();
    check_walk(live, n, "after collecting");

    /* Free everything: the walk is empty. */
    for (size_t i = 0; i < n; i++)
        rcgc_free(live[i]);
    check_walk(NULL, 0, "after freeing everything");
    test_gate_set(&w.gate, 6);
    test_thread_join(t);
    rcgc__heap_collect_abandoned();
    rcgc_stats s = test_stats();
    assert_int_equal(s.blocks_in_use, 0);
    assert_int_equal(s.pages_abandoned, 0);
}

/* Remote frees are chained in the freeing thread's heap before they are
 * pushed to the page (heap.c, free_remote). A walk made while every
 * thread is quiet must still not visit those blocks: they were freed. */
typedef struct {
    test_gate gate;
    void **blocks;
    size_t n;
} chain_job;

static void *chain_thread(void *arg) {
    chain_job *j = arg;
    if (rcgc_thread_attach() != 0) {
        test_gate_set(&j->gate, 1);
        return NULL;
    }
    for (size_t i = 0; i < j->n; i++)
        rcgc_free(j->blocks[i]);
    /* Idle the way the contract says: in a blocking region (which flushes
     * the chained frees), entered before main is told to walk. */
    rcgc_blocking_begin();
    test_gate_set(&j->gate, 1);
    test_gate_wait_raw(&j->gate, 2);
    rcgc_blocking_end();
    rcgc_thread_detach();
    return NULL;
}

static void test_walk_chained_remote_frees(void **state) {
    TEST_BEGIN(state);
    enum { N = 200, FREED = 10 };
    void *blocks[N];
    for (size_t i = 0; i < N; i++)
        assert_non_null(blocks[i] = rcgc_malloc(64));
    static chain_job j;
    j.blocks = blocks;
    j.n = FREED;
    test_gate_init(&j.gate);
    pthread_t t = test_thread_start(chain_thread, &j);
    test_gate_wait(&j.gate, 1);     /* freed, and idle */
    assert_int_equal(test_stats().blocks_in_use, N - FREED);
    check_walk(blocks + FREED, N - FREED, "remote frees chained in the freeing heap");
    test_gate_set(&j.gate, 2);
    test_thread_join(t);
    check_walk(blocks + FREED, N - FREED, "after the freeing thread detached");
    for (size_t i = FREED; i < N; i++)
        rcgc_free(blocks[i]);
    assert_int_equal(test_stats().blocks_in_use, 0);
}

/* ------------------------------------------------------------------------
 * Cross-thread frees at scale: NT threads in a ring, each allocating
 * blocks that its neighbour frees, round after round.
 * ------------------------------------------------------------------------ */
#if TEST_SANITIZER
enum { XT_ROUNDS = 10, XT_BATCH = 5000 };
#else
enum { XT_ROUNDS = 20, XT_BATCH = 10000 };
#endif
enum { XT_THREADS = 4 };

typedef struct {
    pthread_barrier_t barrier;
    uint64_t *buf[XT_THREADS][2][XT_BATCH];  /* per thread, two batches in turn */
    struct {
        size_t errors, allocs, frees;
    } per[XT_THREADS];
} xt_shared;

typedef struct {
    xt_shared *sh;
    int id;
} xt_arg;

static void *xt_thread(void *arg) {
    xt_arg *a = arg;
    xt_shared *sh = a->sh;
    int me = a->id, from = (a->id + XT_THREADS - 1) % XT_THREADS;
    int attached = rcgc_thread_attach() == 0;
    if (!attached)
        sh->per[me].errors++;
    uint64_t seed = 1234 + (uint64_t)me;
    for (int r = 0; r <= XT_ROUNDS; r++) {
        if (r < XT_ROUNDS && attached) {
            uint64_t **batch = sh->buf[me][r & 1];
            for (size_t i = 0; i < XT_BATCH; i++) {
                size_t size = rng_next(&seed) % 64 == 0 ? 600 + i % 4000 : 16 + i % 400;
                uint64_t *p = rcgc_malloc(size);
                if (!p) {
                    sh->per[me].errors++;
                } else {
                    p[0] = ((uint64_t)me << 56) | ((uint64_t)r << 32) | i;
                    p[1] = ~p[0];
                    sh->per[me].allocs++;
                }
                batch[i] = p;
            }
        }
        pthread_barrier_wait(&sh->barrier);
        /* Free the neighbour's batch of the previous round... */
        if (r > 0 && attached) {
            uint64_t **batch = sh->buf[from][(r - 1) & 1];
            for (size_t i = 0; i < XT_BATCH; i++) {
                uint64_t *p = batch[i];
                if (!p)
                    continue;
                uint64_t want = ((uint64_t)from << 56) | ((uint64_t)(r - 1) << 32) | i;
                if (p[0] != want || p[1] != ~want)
                    sh->per[me].errors++;
                rcgc_free(p);
                batch[i] = NULL;
                sh->per[me].frees++;
            }
        }
        /* ...while its owner allocates the next one (after this barrier the
         * batch of round r-1 is free for round r+1). */
        pthread_barrier_wait(&sh->barrier);
    }
    if (attached)
        rcgc_thread_detach();
    return NULL;
}

static void test_cross_thread_frees(void **state) {
    TEST_BEGIN(state);
    static xt_shared sh;
    memset(&sh, 0, sizeof sh);
    assert_int_equal(pthread_barrier_init(&sh.barrier, NULL, XT_THREADS), 0);
    rcgc_stats s0 = test_stats();
    pthread_t t[XT_THREADS];
    xt_arg args[XT_THREADS];
    for (int i = 0; i < XT_THREADS; i++) {
        args[i] = (xt_arg){&sh, i};
        t[i] = test_thread_start(xt_thread, &args[i]);
    }
    for (int i = 0; i < XT_THREADS; i++)
        test_thread_join(t[i]);
    pthread_barrier_destroy(&sh.barrier);
    size_t total = (size_t)XT_THREADS * XT_ROUNDS * XT_BATCH;
    size_t allocs = 0, frees = 0;
    for (int i = 0; i < XT_THREADS; i++) {
        assert_int_equal(sh.per[i].errors, 0);
        allocs += sh.per[i].allocs;
        frees += sh.per[i].frees;
    }
    assert_int_equal(allocs, total);
    assert_int_equal(frees, total);

    rcgc_stats s1 = test_stats();
    assert_int_equal(s1.threads_attached, 1);
    assert_int_equal(s1.allocs_total - s0.allocs_total, total);
    assert_int_equal(s1.frees_total - s0.frees_total, total);
    assert_true(s1.remote_frees_total - s0.remote_frees_total > 0);
    assert_int_equal(s1.blocks_in_use, 0);
    assert_int_equal(s1.bytes_in_use, 0);
    /* Pages abandoned with remote frees pending are released by a
     * collection of the abandoned pages. */
    rcgc__heap_collect_abandoned();
    rcgc_stats s2 = test_stats();
    assert_int_equal(s2.pages_abandoned, 0);
    assert_int_equal(s2.blocks_in_use, 0);
    assert_int_equal(s2.pages, 0);
    for (unsigned c = 1; c < RCGC_NCLASSES; c++)
        assert_int_equal(s2.by_class[c].blocks_in_use, 0);
}

/* ------------------------------------------------------------------------
 * The double-free mark: a block freed, allocated again and freed again is
 * not a double free, whoever freed it the first time (owner, another
 * thread, a thread that left), and the caller never writes to it
 * ------------------------------------------------------------------------ */
enum { FM_N = 3000 };
static void *fm_blocks[FM_N];

static void *fm_free_all(void *arg) {
    (void)arg;
    if (rcgc_thread_attach() != 0)
        return (void *)1;
    for (int i = 0; i < FM_N; i++)
        rcgc_free(fm_blocks[i]);
    rcgc_thread_detach();
    return NULL;
}

static void *fm_alloc_and_leave(void *arg) {
    size_t size = (size_t)(uintptr_t)arg;
    if (rcgc_thread_attach() != 0)
        return (void *)1;
    for (int i = 0; i < FM_N; i++)
        fm_blocks[i] = rcgc_malloc(size);
    rcgc_thread_detach();      /* abandons the pages */
    return NULL;
}

/* Allocate FM_N blocks of `size` without touching them; count those at an
 * address of the previous round, and check that allocation cleared the mark. */
static size_t fm_alloc_round(size_t size, void **prev) {
    size_t reused = 0;
    for (int i = 0; i < FM_N; i++) {
        fm_blocks[i] = rcgc_malloc(size);
        assert_non_null(fm_blocks[i]);
        assert_int_equal(((rcgc_block *)fm_blocks[i])->mark, 0);
    }
    for (int i = 0; i < FM_N; i++)
        for (int j = i; j < FM_N && j < i + 64; j++)
            if (prev && fm_blocks[i] == prev[j % FM_N]) {
                reused++;
                break;
            }
    return reused;
}

static void test_free_mark_after_reuse(void **state) {
    TEST_BEGIN(state);
    static void *prev[FM_N];
    const size_t sizes[] = {16, 48, 512, 640, 4000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t size = sizes[k], reused = 0;
        /* The owner frees, twice over. */
        for (int round = 0; round < 3; round++) {
            reused += fm_alloc_round(size, round ? prev : NULL);
            memcpy(prev, fm_blocks, sizeof prev);
            for (int i = FM_N; i-- > 0;)
                rcgc_free(fm_blocks[i]);
        }
        /* Another thread frees (remote frees, collected by the owner). */
        fm_alloc_round(size, NULL);
        memcpy(prev, fm_blocks, sizeof prev);
        test_thread_join(test_thread_start(fm_free_all, NULL));
        rcgc_heap_collect();
        reused += fm_alloc_round(size, prev);
        for (int i = 0; i < FM_N; i++)
            rcgc_free(fm_blocks[i]);
        /* A thread that left allocated them: freeing adopts its pages. */
        test_thread_join(test_thread_start(fm_alloc_and_leave, (void *)(uintptr_t)size));
        memcpy(prev, fm_blocks, sizeof prev);
        for (int i = 0; i < FM_N; i++)
            rcgc_free(fm_blocks[i]);
        reused += fm_alloc_round(size, prev);
        for (int i = 0; i < FM_N; i++)
            rcgc_free(fm_blocks[i]);
        if (reused == 0)
            fail_msg("size %zu: no block was allocated again; the test tests nothing", size);
    }
    rcgc_stats st = test_stats();
    assert_int_equal(st.blocks_in_use, 0);
}

/* ------------------------------------------------------------------------
 * Abandonment and adoption
 * ------------------------------------------------------------------------ */
enum { AB_N = 5000, AB_SIZE = 48 };

typedef struct {
    void *blocks[AB_N];
    int free_odd;       /* free every odd block before leaving */
    int detach;         /* detach explicitly (else exit attached) */
    int errors;
} ab_job;

static void *ab_thread(void *arg) {
    ab_job *j = arg;
    if (rcgc_thread_attach() != 0) {
        j->errors++;
        return NULL;
    }
    for (size_t i = 0; i < AB_N; i++) {
        j->blocks[i] = rcgc_malloc(AB_SIZE);
        if (!j->blocks[i])
            j->errors++;
        else
            memset(j->blocks[i], 0xab, AB_SIZE);
    }
    if (j->free_odd) {
        for (size_t i = 1; i < AB_N; i += 2) {
            rcgc_free(j->blocks[i]);
            j->blocks[i] = NULL;
        }
    }
    if (j->detach)
        rcgc_thread_detach();
    return NULL;
}

/* The distinct pages of the job's live blocks. */
static size_t job_pages(ab_job *j, rcgc_page **pages, size_t max) {
    size_t n = 0;
    for (size_t i = 0; i < AB_N; i++) {
        if (!j->blocks[i])
            continue;
        rcgc_page *pg = rcgc__page_of(j->blocks[i]);
        size_t k = 0;
        while (k < n && pages[k] != pg)
            k++;
        if (k == n) {
            assert_true(n < max);
            pages[n++] = pg;
        }
    }
    return n;
}

/* A free into an abandoned page adopts it. */
static void test_abandon_free_adopts(void **state) {
    TEST_BEGIN(state);
    static ab_job j;
    memset(&j, 0, sizeof j);
    j.detach = 1;
    test_thread_run(ab_thread, &j);
    assert_int_equal(j.errors, 0);

    rcgc_page *pages[64];
    size_t np = job_pages(&j, pages, 64);
    assert_true(np >= 3);   /* 5000 blocks of 48 bytes: several 64 KiB pages */
    rcgc_stats s0 = test_stats();
    assert_int_equal(s0.threads_attached, 1);
    assert_int_equal(s0.pages_abandoned, np);
    assert_int_equal(s0.blocks_in_use, AB_N);
    for (size_t k = 0; k < np; k++) {
        assert_null(atomic_load(&pages[k]->heap));
        assert_true(pages[k]->abandoned);
    }

    /* Free one block of the first page: that page is adopted. */
    rcgc_page *first = rcgc__page_of(j.blocks[0]);
    rcgc_free(j.blocks[0]);
    j.blocks[0] = NULL;
    assert_ptr_equal(atomic_load(&first->heap), my_heap());
    assert_false(first->abandoned);
    rcgc_stats s1 = test_stats();
    assert_int_equal(s1.pages_abandoned, np - 1);
    assert_int_equal(s1.blocks_in_use, AB_N - 1);
    assert_int_equal(s1.remote_frees_total, s0.remote_frees_total);  /* adopted: a local free */

    for (size_t i = 0; i < AB_N; i++)
        rcgc_free(j.blocks[i]);
    rcgc_stats s2 = test_stats();
    assert_int_equal(s2.pages_abandoned, 0);
    assert_int_equal(s2.blocks_in_use, 0);
    rcgc__heap_collect_abandoned();
    rcgc_heap_collect();
    rcgc_stats s3 = test_stats();
    assert_int_equal(s3.pages_abandoned, 0);
    assert_int_equal(s3.blocks_in_use, 0);
    assert_true(s3.pages <= 1);     /* a heap keeps one empty page per class */
}

/* Allocating a class that has abandoned pages with free blocks adopts them
 * before taking a fresh page. */
static void test_abandon_alloc_adopts(void **state) {
    TEST_BEGIN(state);
    static ab_job j;
    memset(&j, 0, sizeof j);
    j.detach = 1;
    j.free_odd = 1;
    test_thread_run(ab_thread, &j);
    assert_int_equal(j.errors, 0);

    rcgc_page *pages[64];
    size_t np = job_pages(&j, pages, 64);
    rcgc_stats s0 = test_stats();
    assert_true(np >= 3);
    assert_int_equal(s0.pages_abandoned, np);
    assert_int_equal(s0.blocks_in_use, AB_N / 2);

    /* Refill the holes: every block comes from the abandoned pages. */
    static void *mine[AB_N / 2];
    for (size_t i = 0; i < AB_N / 2; i++) {
        mine[i] = rcgc_malloc(AB_SIZE);
        assert_non_null(mine[i]);
        rcgc_page *pg = rcgc__page_of(mine[i]);
        size_t k = 0;
        while (k < np && pages[k] != pg)
            k++;
        if (k == np)
            fail_msg("allocation %zu came from a fresh page while %zu abandoned pages had room",
                     i, test_stats().pages_abandoned);
        assert_ptr_equal(atomic_load(&pg->heap), my_heap());
        for (size_t b = 0; b < AB_N; b++)
            if (j.blocks[b] == mine[i])
                fail_msg("block %p handed out while the detached thread's block is live", mine[i]);
    }
    rcgc_stats s1 = test_stats();
    assert_int_equal(s1.pages, s0.pages);            /* no fresh page */
    assert_true(s1.pages_abandoned < s0.pages_abandoned);
    assert_int_equal(s1.blocks_in_use, AB_N);

    /* The detached thread's blocks were left intact. */
    for (size_t i = 0; i < AB_N; i += 2)
        for (size_t k = 0; k < AB_SIZE; k++)
            if (((uint8_t *)j.blocks[i])[k] != 0xab)
                fail_msg("block %zu of the detached thread changed", i);

    for (size_t i = 0; i < AB_N; i++)
        rcgc_free(j.blocks[i]);
    for (size_t i = 0; i < AB_N / 2; i++)
        rcgc_free(mine[i]);
    rcgc_heap_collect();
    rcgc__heap_collect_abandoned();
    rcgc_stats s2 = test_stats();
    assert_int_equal(s2.blocks_in_use, 0);
    assert_int_equal(s2.pages_abandoned, 0);
}

/* Remote frees pending on pages whose owner detaches are collected on
 * abandonment or by rcgc__heap_collect_abandoned. */
typedef struct {
    test_gate gate;
    void *blocks[AB_N];
    int errors;
} pend_job;

static void *pend_thread(void *arg) {
    pend_job *j = arg;
    if (rcgc_thread_attach() != 0) {
        j->errors++;
        test_gate_set(&j->gate, 1);
        return NULL;
    }
    for (size_t i = 0; i < AB_N; i++)
        if (!(j->blocks[i] = rcgc_malloc(AB_SIZE)))
            j->errors++;
    test_gate_set(&j->gate, 1);
    test_gate_wait(&j->gate, 2);     /* main frees some, remotely */
    rcgc_thread_detach();
    return NULL;
}

static void test_abandon_with_remote_frees(void **state) {
    TEST_BEGIN(state);
    static pend_job j;
    memset(&j, 0, sizeof j);
    test_gate_init(&j.gate);
    pthread_t t = test_thread_start(pend_thread, &j);
    test_gate_wait(&j.gate, 1);
    assert_int_equal(j.errors, 0);
    /* Free the first 2000 remotely (whole pages), keep the rest. */
    for (size_t i = 0; i < 2000; i++)
        rcgc_free(j.blocks[i]);
    rcgc_stats s0 = test_stats();
    assert_int_equal(s0.blocks_in_use, AB_N - 2000);
    assert_int_equal(s0.remote_frees_total, 2000);
    test_gate_set(&j.gate, 2);
    test_thread_join(t);
    rcgc_stats s1 = test_stats();
    assert_int_equal(s1.blocks_in_use, AB_N - 2000);
    assert_int_equal(s1.threads_attached, 1);
    /* Pages all of whose blocks came back were released, not abandoned. */
    rcgc_page *pages[64];
    size_t np = 0;
    for (size_t i = 2000; i < AB_N; i++) {
        rcgc_page *pg = rcgc__page_of(j.blocks[i]);
        if (np == 0 || pages[np - 1] != pg)
            pages[np++] = pg;
    }
    assert_int_equal(s1.pages_abandoned, np);
    for (size_t i = 2000; i < AB_N; i++)
        rcgc_free(j.blocks[i]);
    rcgc__heap_collect_abandoned();
    rcgc_heap_collect();
    rcgc_stats s2 = test_stats();
    assert_int_equal(s2.blocks_in_use, 0);
    assert_int_equal(s2.pages_abandoned, 0);
}

/* A thread that exits attached is detached by the key destructor: its
 * pages are abandoned, its counters kept. */
static void test_thread_exit_detaches(void **state) {
    TEST_BEGIN(state);
    static ab_job j;
    memset(&j, 0, sizeof j);
    j.detach = 0;
    rcgc_stats s0 = test_stats();
    test_thread_run(ab_thread, &j);
    assert_int_equal(j.errors, 0);
    rcgc_stats s1 = test_stats();
    assert_int_equal(s1.threads_attached, 1);
    assert_int_equal(rcgc_stats_threads(NULL, 0), 1);
    assert_true(s1.pages_abandoned > 0);
    assert_int_equal(s1.blocks_in_use, AB_N);
    assert_int_equal(s1.allocs_total - s0.allocs_total, AB_N);

    /* Threads come and go; each new one gets a new serial. */
    rcgc_thread_stats ts[2];
    assert_int_equal(rcgc_stats_threads(ts, 2), 1);
    uint64_t main_serial = ts[0].serial;
    for (int round = 0; round < 3; round++) {
        static ab_job k;
        memset(&k, 0, sizeof k);
        k.free_odd = 1;
        test_thread_run(ab_thread, &k);
        assert_int_equal(k.errors, 0);
        assert_int_equal(test_stats().threads_attached, 1);
        for (size_t i = 0; i < AB_N; i++)
            rcgc_free(k.blocks[i]);
    }
    assert_int_equal(rcgc_stats_threads(ts, 2), 1);
    assert_int_equal(ts[0].serial, main_serial);

    for (size_t i = 0; i < AB_N; i++)
        rcgc_free(j.blocks[i]);
    rcgc__heap_collect_abandoned();
    rcgc_stats s2 = test_stats();
    assert_int_equal(s2.blocks_in_use, 0);
    assert_int_equal(s2.pages_abandoned, 0);
    assert_int_equal(s2.allocs_total, s2.frees_total);
}

/* ------------------------------------------------------------------------
 * Life cycle
 * ------------------------------------------------------------------------ */

typedef struct {
    int errors;
    void *blocks[64];
} cycle_job;

static void *cycle_thread(void *arg) {
    cycle_job *j = arg;
    if (rcgc_thread_attach() != 0) {
        j->errors++;
        return NULL;
    }
    if (rcgc_thread_attach() != EBUSY)
        j->errors++;
    uint64_t seed = 5;
    for (int i = 0; i < 64; i++)
        if (!(j->blocks[i] = rcgc_malloc(mixed_size(&seed))))
            j->errors++;
    for (int i = 0; i < 64; i += 2) {
        rcgc_free(j->blocks[i]);
        j->blocks[i] = NULL;
    }
    rcgc_thread_detach();
    return NULL;
}

static void test_init_shutdown_cycles(void **state) {
    TEST_BEGIN(state);
    assert_int_equal(rcgc_init(NULL), EBUSY);
    assert_int_equal(rcgc_thread_attach(), EBUSY);
    assert_true(rcgc_is_attached());
    for (int cycle = 0; cycle < 5; cycle++) {
        if (cycle > 0) {
            assert_false(rcgc_is_attached());
            assert_int_equal(rcgc_thread_attach(), EINVAL);
            assert_int_equal(rcgc_init(NULL), 0);
            assert_true(rcgc_is_attached());
        }
        rcgc_stats s0 = test_stats();
        assert_int_equal(s0.allocs_total, 0);
        assert_int_equal(s0.blocks_in_use, 0);
        assert_int_equal(s0.threads_attached, 1);
        assert_int_equal(s0.pages_abandoned, 0);

        uint64_t seed = (uint64_t)cycle + 1;
        void *b[200];
        for (int i = 0; i < 200; i++)
            assert_non_null(b[i] = rcgc_malloc(mixed_size(&seed)));
        void *big = rcgc_malloc(5 * TEST_MIB), *huge = rcgc_malloc(80 * TEST_MIB);
        assert_non_null(big);
        assert_non_null(huge);
        static cycle_job j;
        memset(&j, 0, sizeof j);
        test_thread_run(cycle_thread, &j);
        assert_int_equal(j.errors, 0);
        for (int i = 0; i < 64; i++)
            rcgc_free(j.blocks[i]);
        for (int i = 0; i < 200; i++)
            rcgc_free(b[i]);
        rcgc_free(big);
        rcgc_free(huge);
        rcgc_stats s1 = test_stats();
        assert_int_equal(s1.blocks_in_use, 0);
        assert_int_equal(s1.allocs_total, 200 + 2 + 64);
        assert_int_equal(s1.frees_total, 200 + 2 + 64);
        assert_true(s1.bytes_reserved > 0);

        rcgc_shutdown();
        rcgc_stats s2 = test_stats();
        assert_int_equal(s2.bytes_reserved, 0);
        assert_int_equal(s2.bytes_committed, 0);
        assert_int_equal(s2.arenas, 0);
        assert_int_equal(s2.pages, 0);
        assert_int_equal(s2.pages_abandoned, 0);
        assert_int_equal(s2.threads_attached, 0);
        rcgc_shutdown();    /* a second shutdown does nothing */
    }
    assert_int_equal(rcgc_init(NULL), 0);   /* for the teardown */
}

/* Blocks still allocated at rcgc_shutdown ("release all memory; re-init
 * allowed"): the next run must start clean. In a child: a stale abandoned
 * page would crash it. */
static void reinit_after_leak_child(void *arg) {
    (void)arg;
    rcgc_shutdown();    /* the runtime the fixture set up, inherited */
    if (rcgc_init(NULL) != 0)
        _exit(10);
    for (int i = 0; i < 10; i++)
        if (!rcgc_malloc(100))     /* leaked on purpose */
            _exit(11);
    if (!rcgc_malloc(200000))
        _exit(12);
    rcgc_shutdown();

    rcgc_stats s;
    rcgc_stats_get(&s);
    if (s.bytes_reserved || s.arenas || s.pages)
        _exit(13);
    if (rcgc_init(NULL) != 0)
        _exit(14);
    rcgc_stats_get(&s);
    if (s.pages_abandoned || s.pages || s.blocks_in_use) {
        printf("after re-init: %zu pages abandoned, %zu pages, %zu blocks in use\n",
               s.pages_abandoned, s.pages, s.blocks_in_use);
        fflush(stdout);
        _exit(15);
    }
    static void *b[2000];
    for (int i = 0; i < 2000; i++)
        if (!(b[i] = rcgc_malloc(100)))
            _exit(16);
    for (int i = 0; i < 2000; i++)
        rcgc_free(b[i]);
    rcgc_heap_collect();
    rcgc_stats_get(&s);
    if (s.blocks_in_use || s.pages_abandoned)
        _exit(17);
    rcgc_shutdown();
    _exit(0);
}

static void test_reinit_after_leak(void **state) {
    TEST_BEGIN(state);
    char out[4096];
    int status = test_fork_run(reinit_after_leak_child, NULL, out, sizeof out);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child %s %d; output:\n%s", WIFEXITED(status) ? "exited" : "killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), out);
}

int main(void) {
    test_main_init();
#define T(f) cmocka_unit_test_setup_teardown(f, test_rcgc_setup, test_rcgc_teardown)
    const struct CMUnitTest tests[] = {
        T(test_stats_exact),
        T(test_stats_exact_after_reinit),
        T(test_size_classes),
        T(test_sizes),
        T(test_malloc_zero),
        T(test_owns_foreign),
        T(test_too_big),
        T(test_calloc_zeroes),
        T(test_heap_walk),
        T(test_walk_chained_remote_frees),
        T(test_cross_thread_frees),
        T(test_free_mark_after_reuse),
        T(test_abandon_free_adopts),
        T(test_abandon_alloc_adopts),
        T(test_abandon_with_remote_frees),
        T(test_thread_exit_detaches),
        T(test_init_shutdown_cycles),
        T(test_reinit_after_leak),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
