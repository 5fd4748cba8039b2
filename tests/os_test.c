/*
 * Unit tests of the OS layer (lib/os.c): aligned reservations, purge, and
 * fault injection. The OS layer needs no runtime, so no test calls
 * rcgc_init.
 */
#include "test_util.h"

#include "lib/os.h"

/* Reservations come back aligned, usable end to end, and release cleanly. */
static void test_reserve_aligned(void **state) {
    TEST_BEGIN(state);
    size_t ps = rcgc__os_page_size();
    assert_int_equal(ps, (size_t)sysconf(_SC_PAGESIZE));
    const size_t aligns[] = {ps, 2 * ps, (size_t)64 << 10, TEST_MIB, (size_t)64 << 20,
                             (size_t)256 << 20};
    const size_t sizes[] = {ps, 3 * ps, (size_t)64 << 10, (size_t)64 << 20};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
            /* Several in a row, so that the kernel's choices vary. */
            void *p[3];
            for (int k = 0; k < 3; k++) {
                errno = 0;
                p[k] = rcgc__os_reserve_aligned(sizes[j], aligns[i]);
                assert_non_null(p[k]);
                assert_int_equal((uintptr_t)p[k] % aligns[i], 0);
                volatile uint8_t *b = p[k];
                assert_int_equal(b[0], 0);             /* fresh memory is zero */
                assert_int_equal(b[sizes[j] - 1], 0);
                b[0] = 0xa5;
                b[sizes[j] - 1] = 0x5a;
                assert_int_equal(b[0], 0xa5);
                assert_int_equal(b[sizes[j] - 1], 0x5a);
            }
            for (int k = 0; k < 3; k++)
                assert_int_equal(rcgc__os_release(p[k], sizes[j]), 0);
        }
    }
}

/* The over-reservation cannot wrap around the address space. */
static void test_reserve_too_big(void **state) {
    TEST_BEGIN(state);
    size_t ps = rcgc__os_page_size();
    errno = 0;
    assert_null(rcgc__os_reserve_aligned(SIZE_MAX & ~(ps - 1), (size_t)64 << 20));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(rcgc__os_reserve_aligned((size_t)1 << 62, ps));
    assert_int_equal(errno, ENOMEM);
}

/* Purged memory reads back as zero, stays usable, and leaves its
 * neighbours alone. */
static void test_purge_zeroes(void **state) {
    TEST_BEGIN(state);
    size_t ps = rcgc__os_page_size();
    size_t size = 64 * ps;
    uint8_t *p = rcgc__os_reserve_aligned(size, (size_t)64 << 10);
    assert_non_null(p);
    memset(p, 0xcd, size);
    /* Purge the middle: pages [8, 40). */
    assert_int_equal(rcgc__os_purge(p + 8 * ps, 32 * ps), 0);
    for (size_t i = 0; i < size; i++) {
        uint8_t want = (i >= 8 * ps && i < 40 * ps) ? 0 : 0xcd;
        if (p[i] != want)
            fail_msg("byte %zu after purge: %#x, want %#x", i, p[i], want);
    }
    /* Still mapped and writable. */
    memset(p + 8 * ps, 0x11, 32 * ps);
    assert_int_equal(p[8 * ps], 0x11);
    assert_int_equal(p[40 * ps - 1], 0x11);
    assert_int_equal(rcgc__os_release(p, size), 0);
}

/* Purge gives the memory back: RSS falls. */
static void test_purge_lowers_rss(void **state) {
    TEST_BEGIN(state);
    size_t size = 64 * TEST_MIB;
    uint8_t *p = rcgc__os_reserve_aligned(size, (size_t)64 << 20);
    assert_non_null(p);
    size_t before = test_rss_bytes();
    memset(p, 1, size);
    size_t touched = test_rss_bytes();
    assert_true(touched >= before + size / 2);
    assert_int_equal(rcgc__os_purge(p, size), 0);
    size_t after = test_rss_bytes();
    if (touched - after < size / 2)
        fail_msg("RSS %zu -> %zu -> %zu: purge of %zu bytes gave back too little", before, touched,
                 after, size);
    assert_int_equal(rcgc__os_release(p, size), 0);
}

static void test_os_alloc_zeroed(void **state) {
    TEST_BEGIN(state);
    size_t sizes[] = {1, 100, 4096, 5000, 1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *p = rcgc__os_alloc(sizes[i]);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % rcgc__os_page_size(), 0);
        for (size_t j = 0; j < sizes[i]; j++)
            if (p[j])
                fail_msg("rcgc__os_alloc(%zu): byte %zu not zero", sizes[i], j);
        memset(p, 0xff, sizes[i]);
        rcgc__os_free(p, sizes[i]);
    }
    rcgc__os_free(NULL, 100);   /* allowed */
}

/* rcgc__os_fail_nth(1): the next injectable call fails with ENOMEM, the
 * one after succeeds; every injectable call counts once. */
static void test_fail_next_call(void **state) {
    TEST_BEGIN(state);
    size_t ps = rcgc__os_page_size();
    uint64_t c0 = rcgc__os_calls();

    rcgc__os_fail_nth(1);
    assert_int_equal(rcgc__os_calls(), c0);     /* arming is not a call */
    errno = 0;
    assert_null(rcgc__os_reserve_aligned(ps, ps));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(rcgc__os_calls(), c0 + 1);

    void *p = rcgc__os_reserve_aligned(ps, ps);  /* one-shot: this succeeds */
    assert_non_null(p);
    assert_int_equal(rcgc__os_calls(), c0 + 2);

    /* Purge and release fail with ENOMEM and leave the mapping in place. */
    memset(p, 7, ps);
    rcgc__os_fail_nth(1);
    assert_int_equal(rcgc__os_purge(p, ps), ENOMEM);
    assert_int_equal(((uint8_t *)p)[ps - 1], 7);   /* not purged */
    rcgc__os_fail_nth(1);
    assert_int_equal(rcgc__os_release(p, ps), ENOMEM);
    ((uint8_t *)p)[0] = 8;                        /* still mapped */
    assert_int_equal(rcgc__os_calls(), c0 + 4);
    assert_int_equal(rcgc__os_release(p, ps), 0);
    assert_int_equal(rcgc__os_calls(), c0 + 5);

    /* Metadata allocation is an injection point; its release is not. */
    rcgc__os_fail_nth(1);
    errno = 0;
    assert_null(rcgc__os_alloc(100));
    assert_int_equal(errno, ENOMEM);
    void *m = rcgc__os_alloc(100);
    assert_non_null(m);
    uint64_t c1 = rcgc__os_calls();
    assert_int_equal(c1, c0 + 7);
    rcgc__os_free(m, 100);
    assert_int_equal(rcgc__os_calls(), c1);
}

/* rcgc__os_fail_nth(n) counts from now: n-1 calls succeed, the nth fails,
 * later ones succeed; 0 disarms. */
static void test_fail_nth_counts_from_now(void **state) {
    TEST_BEGIN(state);
    size_t ps = rcgc__os_page_size();
    enum { CALLS = 8 };
    for (uint64_t n = 1; n <= 6; n++) {
        void *p[CALLS];
        rcgc__os_fail_nth(n);
        uint64_t c0 = rcgc__os_calls();
        for (uint64_t i = 1; i <= CALLS; i++) {
            errno = 0;
            p[i - 1] = rcgc__os_reserve_aligned(ps, ps);
            assert_int_equal(rcgc__os_calls(), c0 + i);
            if (i == n) {
                assert_null(p[i - 1]);
                assert_int_equal(errno, ENOMEM);
            } else {
                assert_non_null(p[i - 1]);
            }
        }
        for (int i = 0; i < CALLS; i++)
            if (p[i])
                assert_int_equal(rcgc__os_release(p[i], ps), 0);
    }

    /* Disarmed: nothing fails. */
    rcgc__os_fail_nth(2);
    rcgc__os_fail_nth(0);
    for (int i = 0; i < 4; i++) {
        void *p = rcgc__os_reserve_aligned(ps, ps);
        assert_non_null(p);
        assert_int_equal(rcgc__os_release(p, ps), 0);
    }
}

/* The call counter only grows, from every thread. */
typedef struct {
    int iters;
    int failures;
} count_arg;

static void *count_thread(void *arg) {
    count_arg *a = arg;
    size_t ps = rcgc__os_page_size();
    uint64_t last = rcgc__os_calls();
    for (int i = 0; i < a->iters; i++) {
        void *p = rcgc__os_reserve_aligned(ps, ps);
        if (!p || rcgc__os_release(p, ps) != 0)
            a->failures++;
        uint64_t now = rcgc__os_calls();
        if (now < last + 2)     /* our own two calls, at least */
            a->failures++;
        last = now;
    }
    return NULL;
}

static void test_calls_monotonic(void **state) {
    TEST_BEGIN(state);
    enum { NT = 4, ITERS = 500 };
    rcgc__os_fail_nth(0);
    uint64_t c0 = rcgc__os_calls();
    count_arg args[NT];
    pthread_t t[NT];
    for (int i = 0; i < NT; i++) {
        args[i] = (count_arg){ITERS, 0};
        t[i] = test_thread_start(count_thread, &args[i]);
    }
    for (int i = 0; i < NT; i++)
        test_thread_join(t[i]);
    for (int i = 0; i < NT; i++)
        assert_int_equal(args[i].failures, 0);
    assert_int_equal(rcgc__os_calls(), c0 + (uint64_t)NT * ITERS * 2);
}

int main(void) {
    test_main_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve_aligned),
        cmocka_unit_test(test_reserve_too_big),
        cmocka_unit_test(test_purge_zeroes),
        cmocka_unit_test(test_purge_lowers_rss),
        cmocka_unit_test(test_os_alloc_zeroed),
        cmocka_unit_test(test_fail_next_call),
        cmocka_unit_test(test_fail_nth_counts_from_now),
        cmocka_unit_test(test_calls_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
