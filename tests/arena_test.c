/*
 * Unit tests of the arenas (lib/arena.c): spans, pointer arithmetic,
 * ownership lookups, the return of empty arenas to the OS, large and huge
 * spans, and resident memory falling when blocks are freed.
 */
#include "test_util.h"

#include "lib/heap.h"
#include "lib/os.h"

#define SLICE RCGC_SLICE_SIZE

/* purge_delay_ms: 0 the default, -1 at once, n ms. */
static int init_delay(int purge, int arena_cache, int purge_delay_ms) {
    unsetenv("RCGC_PURGE");
    unsetenv("RCGC_ARENA_CACHE");
    unsetenv("RCGC_PURGE_DELAY_MS");
    rcgc_config cfg = {.purge = purge, .arena_cache = arena_cache, .purge_delay_ms = purge_delay_ms};
    return rcgc_init(&cfg);
}

/* Most tests check what a purge does: they purge at once. */
static int init_with(int purge, int arena_cache) { return init_delay(purge, arena_cache, -1); }

static int setup_default(void **state) {
    (void)state;
    return init_with(0, 0);
}

static int teardown(void **state) {
    (void)state;
    rcgc__os_fail_nth(0);
    rcgc_shutdown();
    return 0;
}

static rcgc_page *span(uint32_t nslices, uint8_t kind, unsigned c) {
    rcgc_page *pg = rcgc__arena_alloc_span(nslices, kind, RCGC_TAG_RAW, (uint8_t)c,
                                           kind == RCGC_PAGE_LARGE ? 0 : rcgc__class_size[c]);
    assert_non_null(pg);
    return pg;
}

/* Every pointer into [pg->start, pg->start + bytes) maps back to pg. */
static void check_interior(rcgc_page *pg, size_t bytes) {
    rcgc_arena *a = rcgc__arena_of(pg->start);
    assert_int_equal(a->magic, RCGC_ARENA_MAGIC);
    for (size_t off = 0; off < bytes; off += SLICE) {
        const size_t probes[] = {0, 1, 16, SLICE / 2 + 8, SLICE - 1};
        for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
            const uint8_t *p = pg->start + off + probes[i];
            if (rcgc__arena_of(p) != a)
                fail_msg("arena_of(start + %zu) = %p, want %p", off + probes[i],
                         (void *)rcgc__arena_of(p), (void *)a);
            if (rcgc__page_of(p) != pg)
                fail_msg("page_of(start + %zu) = %p, want %p (span of %u slices)", off + probes[i],
                         (void *)rcgc__page_of(p), (void *)pg, pg->nslices);
            if (!rcgc__arena_owns(p))
                fail_msg("arena_owns(start + %zu) = 0 in a used span of %u slices", off + probes[i],
                         pg->nslices);
        }
    }
}

/* ------------------------------------------------------------------------
 * Spans
 * ------------------------------------------------------------------------ */

static void test_span_alloc_free(void **state) {
    TEST_BEGIN(state);
    rcgc_stats s0 = test_stats();
    rcgc_page *pg = span(1, RCGC_PAGE_SMALL, 4);   /* 64-byte blocks */
    assert_int_equal((uintptr_t)pg->start % SLICE, 0);
    rcgc_arena *a = rcgc__arena_of(pg->start);
    assert_int_equal(a->magic, RCGC_ARENA_MAGIC);
    assert_ptr_equal(a, rcgc__arena_of(pg));        /* descriptors live in the arena */
    assert_ptr_equal(pg, &a->page[(pg->start - (uint8_t *)a) / SLICE]);
    assert_true(pg->start >= (uint8_t *)a + (size_t)a->meta_slices * SLICE);
    assert_int_equal(pg->nslices, 1);
    assert_int_equal(pg->kind, RCGC_PAGE_SMALL);
    assert_int_equal(pg->tag, RCGC_TAG_RAW);
    assert_int_equal(pg->size_class, 4);
    assert_int_equal(pg->block_size, 64);
    assert_int_equal(pg->capacity, SLICE / 64);
    check_interior(pg, SLICE);

    rcgc_stats s1 = test_stats();
    assert_int_equal(s1.pages, s0.pages + 1);
    assert_int_equal(s1.arenas, 1);
    assert_int_equal(s1.bytes_reserved, RCGC_ARENA_SIZE);
    assert_true(s1.bytes_committed >= s0.bytes_committed + SLICE);

    memset(pg->start, 0xee, SLICE);
    uint8_t *start = pg->start;
    rcgc__arena_free_span(pg);
    assert_false(rcgc__arena_owns(start));
    assert_false(rcgc__arena_owns(start + SLICE - 1));
    rcgc_stats s2 = test_stats();
    assert_int_equal(s2.pages, s0.pages);
    assert_int_equal(s2.bytes_committed, s1.bytes_committed - SLICE);  /* purged */

    /* First fit gives the same slice back, purged: it reads as zero. */
    rcgc_page *again = span(1, RCGC_PAGE_SMALL, 4);
    assert_ptr_equal(again->start, start);
    for (size_t i = 0; i < SLICE; i++)
        if (start[i])
            fail_msg("byte %zu of a reused, purged span is %#x", i, start[i]);
    rcgc__arena_free_span(again);
}

/* Spans are contiguous runs: neighbours do not overlap and each slice of a
 * multi-slice span maps back to its first. */
static void test_multi_slice_interior(void **state) {
    TEST_BEGIN(state);
    rcgc_page *small = span(1, RCGC_PAGE_SMALL, 1);
    rcgc_page *medium = span(RCGC_MEDIUM_PAGE_SLICES, RCGC_PAGE_MEDIUM, RCGC_SMALL_CLASSES + 1);
    rcgc_page *large5 = span(5, RCGC_PAGE_LARGE, 0);
    rcgc_page *large300 = span(300, RCGC_PAGE_LARGE, 0);
    rcgc_page *all[] = {small, medium, large5, large300};
    for (int i = 0; i < 4; i++) {
        rcgc_page *pg = all[i];
        check_interior(pg, (size_t)pg->nslices * SLICE);
        memset(pg->start, i + 1, (size_t)pg->nslices * SLICE);
        for (int j = 0; j < 4; j++) {
            if (i == j)
                continue;
            uint8_t *a0 = pg->start, *a1 = a0 + (size_t)pg->nslices * SLICE;
            uint8_t *b0 = all[j]->start, *b1 = b0 + (size_t)all[j]->nslices * SLICE;
            assert_true(a1 <= b0 || b1 <= a0);
        }
    }
    assert_int_equal(medium->capacity, RCGC_MEDIUM_PAGE_SLICES * SLICE / rcgc__class_size[RCGC_SMALL_CLASSES + 1]);
    assert_int_equal(large5->capacity, 1);
    assert_int_equal(large5->used, 1);
    assert_int_equal(large5->block_size, 5 * SLICE);
    /* The writes did not spill over. */
    for (int i = 0; i < 4; i++) {
        rcgc_page *pg = all[i];
        assert_int_equal(pg->start[0], i + 1);
        assert_int_equal(pg->start[(size_t)pg->nslices * SLICE - 1], i + 1);
    }
    for (int i = 0; i < 4; i++) {
        uint8_t *start = all[i]->start;
        uint32_t n = all[i]->nslices;
        rcgc__arena_free_span(all[i]);
        for (uint32_t k = 0; k < n; k++)
            assert_false(rcgc__arena_owns(start + (size_t)k * SLICE + 8));
    }
}

/* Large spans through rcgc__arena_alloc_large: sized in whole slices. */
static void test_large_spans(void **state) {
    TEST_BEGIN(state);
    const size_t sizes[] = {1, SLICE - 1, SLICE, SLICE + 1, 10 * TEST_MIB + 3,
                            RCGC_ARENA_SIZE / 2};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        rcgc_stats s0 = test_stats();
        rcgc_page *pg = rcgc__arena_alloc_large(sizes[i], RCGC_TAG_RAW);
        assert_non_null(pg);
        size_t want = (sizes[i] + SLICE - 1) / SLICE;
        assert_int_equal(pg->nslices, want);
        assert_int_equal(pg->kind, RCGC_PAGE_LARGE);
        assert_int_equal(pg->used, 1);
        assert_false(rcgc__arena_of(pg->start)->is_huge);
        check_interior(pg, want * SLICE);
        pg->start[0] = 1;
        pg->start[sizes[i] - 1] = 2;
        rcgc_stats s1 = test_stats();
        assert_int_equal(s1.pages, s0.pages + 1);
        assert_int_equal(s1.large_in_use, s0.large_in_use + 1);
        assert_true(s1.bytes_committed >= s0.bytes_committed + want * SLICE);
        rcgc__arena_free_span(pg);
        rcgc_stats s2 = test_stats();
        assert_int_equal(s2.pages, s0.pages);
        assert_int_equal(s2.large_in_use, s0.large_in_use);
        /* Purged: the span's commit is gone (the arena's metadata stays). */
        assert_int_equal(s2.bytes_committed, s1.bytes_committed - want * SLICE);
    }
    /* Beyond any address space: ENOMEM, nothing reserved. */
    rcgc_stats s0 = test_stats();
    errno = 0;
    assert_null(rcgc__arena_alloc_large((size_t)1 << 47, RCGC_TAG_RAW));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(rcgc__arena_alloc_large(SIZE_MAX, RCGC_TAG_RAW));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(test_stats().bytes_reserved, s0.bytes_reserved);
}

/* Huge: an arena of its own, given back to the OS as soon as it is freed,
 * whatever the arena cache. */
static void test_huge_span(void **state) {
    TEST_BEGIN(state);
    size_t size = 100 * TEST_MIB;
    rcgc_stats s0 = test_stats();
    size_t rss0 = test_rss_bytes();
    rcgc_page *pg = rcgc__arena_alloc_large(size, RCGC_TAG_RAW);
    assert_non_null(pg);
    rcgc_arena *a = rcgc__arena_of(pg->start);
    assert_true(a->is_huge);
    assert_int_equal(a->magic, RCGC_ARENA_MAGIC);
    assert_int_equal((uintptr_t)a % RCGC_ARENA_SIZE, 0);
    assert_int_equal(pg->nslices, size / SLICE);
    assert_true(a->size >= size + (size_t)a->meta_slices * SLICE);
    assert_true(pg->start + size <= (uint8_t *)a + a->size);
    assert_int_equal(rcgc__page_of(pg->start), pg);
    assert_true(rcgc__arena_owns(pg->start));

    rcgc_stats s1 = test_stats();
    assert_int_equal(s1.arenas, s0.arenas + 1);
    assert_int_equal(s1.bytes_reserved, s0.bytes_reserved + a->size);
    assert_int_equal(s1.large_in_use, s0.large_in_use + 1);
    assert_int_equal(s1.bytes_in_use, s0.bytes_in_use + size);

    memset(pg->start, 0x3c, size);
    size_t rss1 = test_rss_bytes();
    assert_true(rss1 >= rss0 + size / 2);

    uint8_t *start = pg->start;
    rcgc__arena_free_span(pg);
    rcgc_stats s2 = test_stats();
    assert_int_equal(s2.arenas, s0.arenas);
    assert_int_equal(s2.bytes_reserved, s0.bytes_reserved);
    assert_int_equal(s2.bytes_committed, s0.bytes_committed);
    assert_int_equal(s2.large_in_use, s0.large_in_use);
    assert_false(rcgc__arena_owns(start));
    size_t rss2 = test_rss_bytes();
    if (rss1 - rss2 < size / 2)
        fail_msg("RSS %zu -> %zu -> %zu after freeing a %zu-byte huge block", rss0, rss1, rss2,
                 size);
}

/* arena.h: page_of is "valid for any pointer into a span's first 64 MiB",
 * and arena_owns is 1 for any pointer "into the used part of a live
 * arena's span". Huge spans are spans too. */
static void test_huge_interior_pointers(void **state) {
    TEST_BEGIN(state);
    rcgc_page *pg = rcgc__arena_alloc_large(100 * TEST_MIB, RCGC_TAG_RAW);
    assert_non_null(pg);
    rcgc_arena *a = rcgc__arena_of(pg->start);
    size_t first64 = RCGC_ARENA_SIZE - (size_t)(pg->start - (uint8_t *)a);
    check_interior(pg, first64);
    rcgc__arena_free_span(pg);
}

/* ------------------------------------------------------------------------
 * Ownership of foreign pointers
 * ------------------------------------------------------------------------ */
static int a_global;

static void test_owns_foreign(void **state) {
    TEST_BEGIN(state);
    int on_stack = 0;
    void *m = malloc(64);
    assert_non_null(m);
    int owns_m = rcgc__arena_owns(m);
    free(m);
    assert_false(owns_m);
    assert_false(rcgc__arena_owns(&on_stack));
    assert_false(rcgc__arena_owns(&a_global));
    assert_false(rcgc__arena_owns(NULL));
    assert_false(rcgc__arena_owns((void *)(uintptr_t)-16));
    assert_false(rcgc__arena_owns((void *)((uintptr_t)1 << 50)));

    rcgc_page *pg = span(2, RCGC_PAGE_LARGE, 0);
    rcgc_arena *a = rcgc__arena_of(pg->start);
    /* The arena's own header is metadata, not a span. */
    assert_false(rcgc__arena_owns(a));
    assert_false(rcgc__arena_owns((uint8_t *)a + SLICE));
    /* Free slices of a live arena. */
    assert_false(rcgc__arena_owns((uint8_t *)a + RCGC_ARENA_SIZE - 16));
    assert_true(rcgc__arena_owns(pg->start + SLICE + 16));
    uint8_t *start = pg->start;
    rcgc__arena_free_span(pg);
    assert_false(rcgc__arena_owns(start));
    assert_false(rcgc__arena_owns(start + SLICE + 16));
}

/* ------------------------------------------------------------------------
 * Empty arenas go back to the OS, except RCGC_ARENA_CACHE of them
 * (docs/CONFIG.md: default 1; -1 in the config means none).
 * ------------------------------------------------------------------------ */

/* Three spans too big to share an arena: three arenas. Frees them in
 * order, checking the arena count after each against `cache`. */
static void check_arena_cache(size_t cache) {
    rcgc_stats s0 = test_stats();
    assert_int_equal(s0.arenas, 0);
    assert_int_equal(s0.bytes_reserved, 0);
    uint32_t n = RCGC_ARENA_SLICES - 64;   /* more than half an arena */
    rcgc_page *pg[3];
    for (int i = 0; i < 3; i++) {
        pg[i] = span(n, RCGC_PAGE_LARGE, 0);
        assert_int_equal(test_stats().arenas, (size_t)i + 1);
    }
    assert_int_equal(test_stats().bytes_reserved, 3 * RCGC_ARENA_SIZE);
    for (int i = 0; i < 3; i++) {
        rcgc__arena_free_span(pg[i]);
        size_t empty = (size_t)i + 1, live = 2 - (size_t)i;
        size_t want = live + (empty < cache ? empty : cache);
        rcgc_stats s = test_stats();
        if (s.arenas != want)
            fail_msg("cache %zu, after %d of 3 frees: %zu arenas, want %zu", cache, i + 1,
                     s.arenas, want);
        assert_int_equal(s.bytes_reserved, want * RCGC_ARENA_SIZE);
    }
    /* A cached arena serves the next span: nothing new is reserved. */
    if (cache) {
        rcgc_page *again = span(n, RCGC_PAGE_LARGE, 0);
        assert_int_equal(test_stats().arenas, cache < 3 ? cache : 3);
        rcgc__arena_free_span(again);
    }
    rcgc_shutdown();
    rcgc_stats s = test_stats();
    assert_int_equal(s.arenas, 0);
    assert_int_equal(s.bytes_reserved, 0);
    assert_int_equal(s.bytes_committed, 0);
}

static void test_arena_cache_default(void **state) {
    TEST_BEGIN(state);
    rcgc_shutdown();
    assert_int_equal(init_with(0, 0), 0);
    check_arena_cache(1);
    assert_int_equal(init_with(0, 0), 0);    /* for the teardown */
}

static void test_arena_cache_none(void **state) {
    TEST_BEGIN(state);
    rcgc_shutdown();
    assert_int_equal(init_with(0, -1), 0);
    check_arena_cache(0);
    assert_int_equal(init_with(0, 0), 0);
}

static void test_arena_cache_two(void **state) {
    TEST_BEGIN(state);
    rcgc_shutdown();
    assert_int_equal(init_with(0, 2), 0);
    check_arena_cache(2);
    assert_int_equal(init_with(0, 0), 0);
}

/* Without purging, freed spans stay committed; the arena's unmap still
 * gives everything back. */
static void test_no_purge(void **state) {
    TEST_BEGIN(state);
    rcgc_shutdown();
    assert_int_equal(init_with(-1, -1), 0);
    rcgc_page *keep = span(1, RCGC_PAGE_SMALL, 1);
    rcgc_page *pg = span(16, RCGC_PAGE_LARGE, 0);
    memset(pg->start, 0x77, 16 * SLICE);
    uint8_t *start = pg->start;
    size_t committed = test_stats().bytes_committed;
    rcgc__arena_free_span(pg);
    assert_int_equal(test_stats().bytes_committed, committed);   /* not purged */
    pg = span(16, RCGC_PAGE_LARGE, 0);
    assert_ptr_equal(pg->start, start);
    assert_int_equal(start[0], 0x77);      /* the old contents: nothing purged */
    rcgc__arena_free_span(pg);
    rcgc__arena_free_span(keep);
    rcgc_stats s = test_stats();
    assert_int_equal(s.arenas, 0);
    assert_int_equal(s.bytes_committed, 0);
    rcgc_shutdown();
    assert_int_equal(init_with(0, 0), 0);
}

/* ------------------------------------------------------------------------
 * OS failures while giving memory back
 * ------------------------------------------------------------------------ */

/* arena.c: an empty arena that cannot be unmapped "stays listed (and
 * counted)" and "can still serve spans". */
static void test_release_failure_keeps_arena(void **state) {
    TEST_BEGIN(state);
    rcgc_shutdown();
    assert_int_equal(init_with(0, -1), 0);
    uint32_t n = RCGC_ARENA_SLICES - 64;
    rcgc_page *pg = span(n, RCGC_PAGE_LARGE, 0);
    uint8_t *start = pg->start;
    assert_int_equal(test_stats().arenas, 1);
    rcgc__os_fail_nth(2);     /* the purge succeeds, the unmap fails */
    uint64_t c0 = rcgc__os_calls();
    rcgc__arena_free_span(pg);
    assert_int_equal(rcgc__os_calls(), c0 + 2);
    rcgc__os_fail_nth(0);
    rcgc_stats s = test_stats();
    assert_int_equal(s.arenas, 1);
    assert_int_equal(s.bytes_reserved, RCGC_ARENA_SIZE);
    assert_false(rcgc__arena_owns(start));
    /* It serves the next span: no new reservation. */
    pg = span(n, RCGC_PAGE_LARGE, 0);
    assert_ptr_equal(pg->start, start);
    assert_true(rcgc__arena_owns(start));
    assert_int_equal(test_stats().arenas, 1);
    rcgc__arena_free_span(pg);
    s = test_stats();
    assert_int_equal(s.arenas, 0);
    assert_int_equal(s.bytes_reserved, 0);
    rcgc_shutdown();
    assert_int_equal(init_with(0, 0), 0);
}

/* arena.c, rcgc__arena_free_span: a huge arena that cannot be unmapped is
 * kept "listed, empty", to be retried "when the next span is freed or at
 * shutdown". */
static void test_huge_release_failure_retried(void **state) {
    TEST_BEGIN(state);
    rcgc_stats s0 = test_stats();
    rcgc_page *huge = rcgc__arena_alloc_large(100 * TEST_MIB, RCGC_TAG_RAW);
    assert_non_null(huge);
    rcgc__os_fail_nth(1);     /* the unmap */
    rcgc__arena_free_span(huge);
    rcgc__os_fail_nth(0);
    rcgc_stats s1 = test_stats();
    assert_int_equal(s1.large_in_use, s0.large_in_use);
    assert_int_equal(s1.arenas, s0.arenas + 1);     /* still listed */
    /* The next span freed retries the unmap. */
    rcgc_page *pg = span(1, RCGC_PAGE_SMALL, 1);
    rcgc__arena_free_span(pg);
    rcgc_stats s2 = test_stats();
    if (s2.arenas > s0.arenas + 1 || s2.bytes_reserved >= s0.bytes_reserved + 100 * TEST_MIB)
        fail_msg("huge arena not released after the next span free: %zu arenas, %zu bytes "
                 "reserved (before the huge block: %zu arenas, %zu bytes)",
                 s2.arenas, s2.bytes_reserved, s0.arenas, s0.bytes_reserved);
}

/* ------------------------------------------------------------------------
 * Resident memory: 64 MiB of small blocks, touched, then freed.
 * ------------------------------------------------------------------------ */
static void test_rss_returns(void **state) {
    TEST_BEGIN(state);
    enum { BLOCK = 256 };
    size_t total = 64 * TEST_MIB, n = total / BLOCK;
    static void *blocks[64 * TEST_MIB / BLOCK];
    memset(blocks, 0, sizeof blocks);       /* resident before the baseline */

    size_t rss0 = test_rss_bytes();
    rcgc_stats s0 = test_stats();
    for (size_t i = 0; i < n; i++) {
        blocks[i] = rcgc_malloc(BLOCK);
        assert_non_null(blocks[i]);
        memset(blocks[i], (int)(i & 0xff) | 1, BLOCK);
    }
    size_t rss1 = test_rss_bytes();
    rcgc_stats s1 = test_stats();
    assert_int_equal(s1.blocks_in_use, s0.blocks_in_use + n);
    assert_true(s1.bytes_committed >= s0.bytes_committed + total);
    if (rss1 < rss0 + total * 3 / 4)
        fail_msg("RSS rose by %zu bytes only, for %zu touched", rss1 - rss0, total);

    for (size_t i = 0; i < n; i++)
        rcgc_free(blocks[i]);
    rcgc_heap_collect();
    size_t rss2 = test_rss_bytes();
    rcgc_stats s2 = test_stats();
    assert_int_equal(s2.blocks_in_use, s0.blocks_in_use);
    /* Every page but the one a heap keeps per class was purged. */
    assert_true(s1.bytes_committed - s2.bytes_committed >= total - 2 * SLICE);
    if (rss1 < rss2 || rss1 - rss2 < total * 3 / 4)
        fail_msg("RSS %zu -> %zu -> %zu: freeing %zu bytes gave back too little", rss0, rss1, rss2,
                 total);
}

/* ------------------------------------------------------------------------
 * Delayed purge
 * ------------------------------------------------------------------------ */

static void sleep_blocking_ms(unsigned ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    rcgc_blocking_begin();      /* an idle thread, as a pause expects it */
    nanosleep(&ts, NULL);
    rcgc_blocking_end();
}

/* A span given back keeps its memory until the delay has passed: taken
 * again meanwhile, it still holds what it held (no purge, no fault), and
 * the committed bytes do not fall. Given back and left alone, the purger
 * thread purges it within twice the delay although no thread touches the
 * heap. */
static void test_delayed_purge(void **state) {
    TEST_BEGIN(state);
    rcgc_shutdown();
    const unsigned delay = 100;
    assert_int_equal(init_delay(0, 0, (int)delay), 0);
    rcgc_page *keep = span(1, RCGC_PAGE_SMALL, 1);   /* keeps the arena mapped */
    rcgc_page *pg = span(4, RCGC_PAGE_LARGE, 0);
    memset(pg->start, 0x5a, 4 * SLICE);
    uint8_t *start = pg->start;
    size_t committed = test_stats().bytes_committed;
    rcgc__arena_free_span(pg);
    assert_int_equal(test_stats().bytes_committed, committed);     /* not purged yet */
    pg = span(4, RCGC_PAGE_LARGE, 0);
    assert_ptr_equal(pg->start, start);
    /* Taken again before its deadline: the old contents, so no purge ran
     * (a purged page reads as zero). A purge due meanwhile only under a
     * very slow machine: the delay is 100 ms. */
    assert_int_equal(start[0], 0x5a);
    assert_int_equal(start[4 * SLICE - 1], 0x5a);
    rcgc__arena_free_span(pg);
    uint64_t t0 = test_now_ns();
    size_t after = committed;
    while (test_now_ns() - t0 < 2ull * delay * 1000000u) {
        sleep_blocking_ms(10);
        after = test_stats().bytes_committed;
        if (after == committed - 4 * SLICE)
            break;
    }
    if (after != committed - 4 * SLICE)
        fail_msg("committed %zu -> %zu: the span was not purged within twice the delay (%u ms)",
                 committed, after, delay);
    /* Purged: it reads as zero when taken again. */
    pg = span(4, RCGC_PAGE_LARGE, 0);
    assert_ptr_equal(pg->start, start);
    assert_int_equal(start[0], 0);
    rcgc__arena_free_span(pg);
    /* rcgc_heap_collect purges what is pending at once. */
    pg = span(2, RCGC_PAGE_LARGE, 0);
    memset(pg->start, 1, 2 * SLICE);
    committed = test_stats().bytes_committed;
    rcgc__arena_free_span(pg);
    rcgc_heap_collect();
    size_t collected = test_stats().bytes_committed;
    if (collected > committed - 2 * SLICE)
        fail_msg("committed %zu -> %zu: rcgc_heap_collect left the pending purge", committed,
                 collected);
    rcgc__arena_free_span(keep);
}

/* The purger thread cannot be created: purges happen at once instead,
 * nothing is lost. */
static void test_purger_cannot_start(void **state) {
    TEST_BEGIN(state);
    rcgc_shutdown();
    assert_int_equal(init_delay(0, 0, 1000), 0);
    rcgc_page *keep = span(1, RCGC_PAGE_SMALL, 1);
    rcgc_page *pg = span(2, RCGC_PAGE_LARGE, 0);
    memset(pg->start, 3, 2 * SLICE);
    size_t committed = test_stats().bytes_committed;
    rcgc__os_fail_nth(1);       /* the purger's pthread_create: the free's first fallible call */
    rcgc__arena_free_span(pg);
    rcgc__os_fail_nth(0);
    assert_int_equal(test_stats().bytes_committed, committed - 2 * SLICE);
    rcgc__arena_free_span(keep);
}

/* A large heap freed by its owner, which then sits idle in a blocking
 * region: RSS falls within twice the delay. */
static void test_rss_returns_idle_owner(void **state) {
    TEST_BEGIN(state);
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
    /* OPEN BUG, not a tolerance: under ASan this test finds the freed
     * heap's 32 MiB still committed (bytes_in_use 0) after twice the delay,
     * while the default and TSan builds pass; the cause is not found yet
     * (docs/RELIABILITY.md, "Delayed purge under ASan"). Skipped here, so
     * that it is reported, not silently passed. */
    print_message("delayed purge under ASan: open bug, see docs/RELIABILITY.md; skipped\n");
    skip();
#endif
#endif
    rcgc_shutdown();
    const unsigned delay = 100;
    assert_int_equal(init_delay(0, 0, (int)delay), 0);
    enum { N = 64 * 1024 };
    const size_t size = 512, total = (size_t)N * size;     /* 32 MiB */
    void **blocks = malloc(N * sizeof *blocks);
    assert_non_null(blocks);
    size_t rss0 = test_rss_bytes();
    for (size_t i = 0; i < N; i++) {
        blocks[i] = rcgc_malloc(size);
        assert_non_null(blocks[i]);
        memset(blocks[i], 0x11, size);
    }
    size_t rss1 = test_rss_bytes();
    if (rss1 < rss0 + total * 3 / 4)
        fail_msg("RSS rose by %zu bytes only, for %zu touched", rss1 - rss0, total);
    for (size_t i = 0; i < N; i++)
        rcgc_free(blocks[i]);
    free(blocks);
    uint64_t t0 = test_now_ns();
    size_t rss2 = rss1;
    while (test_now_ns() - t0 < 2ull * delay * 1000000u) {
        sleep_blocking_ms(10);
        rss2 = test_rss_bytes();
        if (rss1 - rss2 >= total * 3 / 4)
            break;
    }
    if (rss2 > rss1 || rss1 - rss2 < total * 3 / 4)
        fail_msg("RSS %zu -> %zu -> %zu: %zu bytes freed, too little back within %u ms (twice "
                 "the purge delay); heap committed %zu, in use %zu", rss0, rss1, rss2, total,
                 2 * delay, test_stats().bytes_committed, test_stats().bytes_in_use);
}

int main(void) {
    test_main_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_span_alloc_free, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_multi_slice_interior, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_large_spans, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_huge_span, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_huge_interior_pointers, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_owns_foreign, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_arena_cache_default, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_arena_cache_none, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_arena_cache_two, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_no_purge, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_release_failure_keeps_arena, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_huge_release_failure_retried, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_rss_returns, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_delayed_purge, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_purger_cannot_start, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_rss_returns_idle_owner, setup_default, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
