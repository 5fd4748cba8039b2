/*
 * Out-of-memory tests: every OS call of a workload made to fail in turn
 * (fault injection, rcgc__os_fail_nth), rcgc_init and thread attach under
 * injection, and a real address-space limit (RLIMIT_AS) in a child.
 *
 * What must hold whichever call fails: allocation returns NULL with errno
 * ENOMEM (never crashes, never corrupts a block), everything can be freed,
 * and once the OS cooperates again allocation works and the statistics
 * come back to zero.
 */
#include <sys/resource.h>

#include "test_util.h"

#include "lib/heap.h"
#include "lib/os.h"

/* ------------------------------------------------------------------------
 * The workload: blocks of every kind on two threads, remote frees,
 * abandonment and adoption, a heap walk. Deterministic: the second thread
 * runs while the first waits for it, so the nth OS call is the same call
 * in every run.
 * ------------------------------------------------------------------------ */
enum { W_MAIN = 300, W_OTHER = 300, W_MAX = 1024 };

typedef struct {
    void *p;
    size_t size;
    uint8_t fill;
} wblock;

typedef struct {
    wblock main_blocks[W_MAX];
    size_t nmain;
    wblock other_blocks[W_MAX];
    size_t nother;
    size_t nulls;           /* allocations that returned NULL + ENOMEM */
    size_t errors;          /* NULL with another errno, corrupted blocks, bad walks */
    char first_error[200];
} workload;

static void w_error(workload *w, const char *what, size_t detail) {
    if (w->errors++ == 0)
        snprintf(w->first_error, sizeof w->first_error, "%s (%zu)", what, detail);
}

static size_t w_size(size_t i) {
    if (i % 50 == 49)
        return 1000 + (i * 977) % 31000;       /* medium */
    return 1 + (i * 37) % 512;                 /* small */
}

/* Allocate, fill with a byte that names the block; a NULL must be ENOMEM. */
static void w_alloc(workload *w, wblock *b, size_t size, uint8_t fill) {
    errno = 0;
    b->p = rcgc_malloc(size);
    b->size = size;
    b->fill = fill;
    if (!b->p) {
        if (errno != ENOMEM)
            w_error(w, "rcgc_malloc returned NULL with errno", (size_t)errno);
        w->nulls++;
        return;
    }
    size_t head = size < 4096 ? size : 4096;
    memset(b->p, fill, head);
    memset((uint8_t *)b->p + size - head, fill, head);
}

static void w_free(workload *w, wblock *b) {
    if (!b->p)
        return;
    const uint8_t *p = b->p;
    size_t head = b->size < 4096 ? b->size : 4096;
    for (size_t k = 0; k < head; k++) {
        if (p[k] != b->fill || p[b->size - 1 - k] != b->fill) {
            w_error(w, "block contents changed, size", b->size);
            break;
        }
    }
    rcgc_free(b->p);
    b->p = NULL;
}

static void *w_other(void *arg) {
    workload *w = arg;
    errno = 0;
    int rc = rcgc_thread_attach();
    if (rc != 0) {
        if (rc != ENOMEM)
            w_error(w, "rcgc_thread_attach failed with", (size_t)rc);
        w->nulls++;
        return NULL;
    }
    for (size_t i = 0; i < W_OTHER; i++)
        w_alloc(w, &w->other_blocks[w->nother++], w_size(i * 7 + 3), (uint8_t)(0x80 | i));
    w_alloc(w, &w->other_blocks[w->nother++], 200000, 0x71);
    w_alloc(w, &w->other_blocks[w->nother++], 3 * TEST_MIB, 0x72);
    /* Remote frees: half of the main thread's small and medium blocks. */
    for (size_t i = 0; i < W_MAIN; i += 2)
        w_free(w, &w->main_blocks[i]);
    /* Local frees: a third of our own. */
    for (size_t i = 0; i < w->nother; i += 3)
        w_free(w, &w->other_blocks[i]);
    rcgc_thread_detach();   /* the rest is abandoned */
    return NULL;
}

static int w_count(void *block, size_t size, void *arg) {
    (void)block;
    (void)size;
    (*(size_t *)arg)++;
    return 0;
}

static size_t w_live(workload *w) {
    size_t n = 0;
    for (size_t i = 0; i < w->nmain; i++)
        n += w->main_blocks[i].p != NULL;
    for (size_t i = 0; i < w->nother; i++)
        n += w->other_blocks[i].p != NULL;
    return n;
}

static void *w_attach_detach(void *arg) {
    workload *w = arg;
    int rc = rcgc_thread_attach();
    if (rc == 0) {
        wblock b;
        w_alloc(w, &b, 64, 0x33);
        w_free(w, &b);
        rcgc_thread_detach();
    } else if (rc != ENOMEM) {
        w_error(w, "rcgc_thread_attach failed with", (size_t)rc);
    }
    return NULL;
}

/* Runs on the main (attached) thread; frees everything it allocated. */
static void run_workload(workload *w) {
    memset(w, 0, sizeof *w);
    for (size_t i = 0; i < W_MAIN; i++)
        w_alloc(w, &w->main_blocks[w->nmain++], w_size(i), (uint8_t)(i | 1));
    w_alloc(w, &w->main_blocks[w->nmain++], 100000, 0x61);
    w_alloc(w, &w->main_blocks[w->nmain++], TEST_MIB, 0x62);
    w_alloc(w, &w->main_blocks[w->nmain++], 20 * TEST_MIB, 0x63);
    w_alloc(w, &w->main_blocks[w->nmain++], 70 * TEST_MIB, 0x64);   /* huge */

    pthread_t t;
    if (pthread_create(&t, NULL, w_other, w) != 0 || pthread_join(t, NULL) != 0)
        w_error(w, "thread", 0);

    /* The walk allocates its page array from the OS: it may fail, but if
     * it runs it sees exactly the live blocks. */
    size_t seen = 0;
    int rc = rcgc__heap_visit(RCGC_TAG_RAW, w_count, &seen);
    if (rc != 0 && rc != -ENOMEM)
        w_error(w, "rcgc__heap_visit returned", (size_t)-rc);
    if (rc == 0 && seen != w_live(w))
        w_error(w, "walk visited blocks, live differ by", seen - w_live(w));

    /* More allocation after the other thread left: adopts its pages. */
    for (size_t i = 0; i < 200; i++)
        w_alloc(w, &w->main_blocks[w->nmain++], w_size(i * 7 + 3), (uint8_t)(0x40 | i));

    /* Free everything: the other thread's blocks through adoption. */
    for (size_t i = 0; i < w->nother; i++)
        w_free(w, &w->other_blocks[i]);
    for (size_t i = 0; i < w->nmain; i++)
        w_free(w, &w->main_blocks[i]);
    rcgc_heap_collect();

    /* A thread that only comes and goes. */
    if (pthread_create(&t, NULL, w_attach_detach, w) != 0 || pthread_join(t, NULL) != 0)
        w_error(w, "thread", 0);
}

/* After a run: injection off, allocation works, nothing is left. */
static void check_recovered(workload *w, uint64_t n) {
    rcgc__os_fail_nth(0);
    if (w->errors)
        fail_msg("fail_nth(%llu): %zu errors, first: %s", (unsigned long long)n, w->errors,
                 w->first_error);
    const size_t sizes[] = {16, 100, 512, 5000, 32768, 100000, 20 * TEST_MIB, 70 * TEST_MIB};
    void *p[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        p[i] = rcgc_malloc(sizes[i]);
        if (!p[i])
            fail_msg("fail_nth(%llu): rcgc_malloc(%zu) fails after the injection ended",
                     (unsigned long long)n, sizes[i]);
        memset(p[i], 1, sizes[i] < 65536 ? sizes[i] : 65536);
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        rcgc_free(p[i]);
    rcgc_heap_collect();
    rcgc__heap_collect_abandoned();
    rcgc_stats s = test_stats();
    if (s.blocks_in_use || s.bytes_in_use || s.large_in_use || s.pages_abandoned)
        fail_msg("fail_nth(%llu): after freeing everything: %zu blocks, %zu bytes, %zu large in "
                 "use, %zu pages abandoned",
                 (unsigned long long)n, s.blocks_in_use, s.bytes_in_use, s.large_in_use,
                 s.pages_abandoned);
    if (s.threads_attached != 1)
        fail_msg("fail_nth(%llu): %zu threads attached", (unsigned long long)n,
                 s.threads_attached);
}

static void test_fault_injection_walk(void **state) {
    TEST_BEGIN(state);
    static workload w;
    rcgc_shutdown();

    /* Count the workload's OS calls, with nothing failing. Purges at once:
     * a timed purge would make the count depend on the clock. */
    const rcgc_config cfg = {.purge_delay_ms = -1};
    assert_int_equal(rcgc_init(&cfg), 0);
    uint64_t c0 = rcgc__os_calls();
    run_workload(&w);
    uint64_t count = rcgc__os_calls() - c0;
    assert_int_equal(w.nulls, 0);
    check_recovered(&w, 0);
    rcgc_shutdown();
    assert_true(count >= 5);   /* arenas, a huge arena, purges, a thread state, a walk */

    size_t runs_with_null = 0;
    for (uint64_t n = 1; n <= count; n++) {
        assert_int_equal(rcgc_init(&cfg), 0);
        rcgc__os_fail_nth(n);
        c0 = rcgc__os_calls();
        run_workload(&w);
        uint64_t made = rcgc__os_calls() - c0;
        rcgc__os_fail_nth(0);
        if (made < n)
            fail_msg("fail_nth(%llu): the workload made only %llu OS calls (%llu without "
                     "failures): not deterministic",
                     (unsigned long long)n, (unsigned long long)made, (unsigned long long)count);
        runs_with_null += w.nulls > 0;
        check_recovered(&w, n);
        rcgc_shutdown();
        rcgc_stats s = test_stats();
        assert_int_equal(s.bytes_reserved, 0);
        assert_int_equal(s.arenas, 0);
    }
    /* Most calls are reservations or thread states: their failure shows. */
    assert_true(runs_with_null > 0);
    print_message("fault injection: %llu OS calls, %zu of the failures surfaced as NULL\n",
                  (unsigned long long)count, runs_with_null);
    assert_int_equal(rcgc_init(NULL), 0);
}

/* rcgc_init under injection: ENOMEM or success, never a half-initialised
 * runtime. */
static void test_init_under_injection(void **state) {
    TEST_BEGIN(state);
    rcgc_shutdown();
    for (uint64_t n = 1; n <= 4; n++) {
        rcgc__os_fail_nth(n);
        int rc = rcgc_init(NULL);
        rcgc__os_fail_nth(0);
        if (rc != 0 && rc != ENOMEM)
            fail_msg("rcgc_init with OS call %llu failing: %d", (unsigned long long)n, rc);
        if (n == 1)     /* the caller's thread state comes from the OS */
            assert_int_equal(rc, ENOMEM);
        if (rc == 0) {
            assert_true(rcgc_is_attached());
            void *p = rcgc_malloc(100);
            assert_non_null(p);
            rcgc_free(p);
            rcgc_shutdown();
        } else {
            assert_false(rcgc_is_attached());
            assert_int_equal(rcgc_thread_attach(), EINVAL);   /* not initialised */
            rcgc_stats s = test_stats();
            assert_int_equal(s.threads_attached, 0);
            assert_int_equal(s.bytes_reserved, 0);
        }
    }
    /* RCGC_FAULT_OS_NTH does the same from the environment. */
    setenv("RCGC_FAULT_OS_NTH", "1", 1);
    int rc = rcgc_init(NULL);
    unsetenv("RCGC_FAULT_OS_NTH");
    rcgc__os_fail_nth(0);
    assert_int_equal(rc, ENOMEM);
    assert_false(rcgc_is_attached());
    assert_int_equal(rcgc_init(NULL), 0);
    assert_true(rcgc_is_attached());
}

/* A thread whose attach fails can attach later. */
typedef struct {
    int first, second, attached_after_fail;
    void *p;
} attach_result;

static void *attach_under_injection(void *arg) {
    attach_result *r = arg;
    rcgc__os_fail_nth(1);
    r->first = rcgc_thread_attach();
    rcgc__os_fail_nth(0);
    r->attached_after_fail = rcgc_is_attached();
    r->second = rcgc_thread_attach();
    if (r->second == 0) {
        r->p = rcgc_malloc(64);
        rcgc_free(r->p);
        rcgc_thread_detach();
    }
    return NULL;
}

static void test_attach_under_injection(void **state) {
    TEST_BEGIN(state);
    /* Empty the pool of thread states: a recycled one needs no OS call. */
    rcgc_shutdown();
    assert_int_equal(rcgc_init(NULL), 0);
    attach_result r = {0};
    test_thread_run(attach_under_injection, &r);
    assert_int_equal(r.first, ENOMEM);
    assert_false(r.attached_after_fail);
    assert_int_equal(r.second, 0);
    assert_non_null(r.p);
    rcgc_stats s = test_stats();
    assert_int_equal(s.threads_attached, 1);
    assert_int_equal(s.blocks_in_use, 0);
}

/* ------------------------------------------------------------------------
 * A real limit: RLIMIT_AS in a child. Sanitizers reserve terabytes of
 * shadow memory, so the limit cannot be set under them.
 * ------------------------------------------------------------------------ */
#define RL_MAX 200000
static void *rl_blocks[RL_MAX];

static void rlimit_child(void *arg) {
    (void)arg;
    rcgc_shutdown();    /* the parent's runtime, inherited */
    if (rcgc_init(NULL) != 0)
        _exit(10);
    printf("child: limiting\n");
    fflush(stdout);
    struct rlimit rl = {test_vm_bytes() + 256 * TEST_MIB, RLIM_INFINITY};
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        _exit(11);

    /* Large blocks until the limit: NULL with ENOMEM. */
    size_t n = 0;
    for (;;) {
        if (n == RL_MAX)
            _exit(12);
        errno = 0;
        void *p = rcgc_malloc(TEST_MIB);
        if (!p) {
            if (errno != ENOMEM)
                _exit(13);
            break;
        }
        memset(p, 0x5c, 4096);
        rl_blocks[n++] = p;
    }
    size_t nlarge = n;
    if (nlarge < 32)    /* the limit left room for several arenas' worth */
        _exit(14);
    /* Small blocks until the limit too (the arenas' free space holds a
     * few MiB of them). */
    for (;;) {
        if (n == RL_MAX)
            _exit(18);
        errno = 0;
        void *p = rcgc_malloc(256);
        if (!p) {
            if (errno != ENOMEM)
                _exit(15);
            break;
        }
        rl_blocks[n++] = p;
    }
    for (size_t i = 0; i < n; i++)
        rcgc_free(rl_blocks[i]);
    rcgc_heap_collect();
    rcgc_stats s;
    rcgc_stats_get(&s);
    if (s.blocks_in_use)
        _exit(16);

    /* Memory is back: the same again succeeds. */
    for (size_t i = 0; i < nlarge; i++)
        if (!(rl_blocks[i] = rcgc_malloc(TEST_MIB)))
            _exit(17);
    for (size_t i = 0; i < nlarge; i++)
        rcgc_free(rl_blocks[i]);
    printf("child: %zu large blocks before ENOMEM, then %zu small\n", nlarge, n - nlarge);
    fflush(stdout);
    rcgc_shutdown();
    _exit(0);
}

static void test_rlimit_as(void **state) {
    TEST_BEGIN(state);
    if (TEST_SANITIZER) {
        print_message("RLIMIT_AS cannot be set under a sanitizer: skipped\n");
        skip();
        return;
    }
    char out[4096];
    int status = test_fork_run(rlimit_child, NULL, out, sizeof out);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child %s %d; output:\n%s", WIFEXITED(status) ? "exited" : "killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), out);
    print_message("%s", out);
}

int main(void) {
    test_main_init();
#define T(f) cmocka_unit_test_setup_teardown(f, test_rcgc_setup, test_rcgc_teardown)
    const struct CMUnitTest tests[] = {
        T(test_init_under_injection),
        T(test_attach_under_injection),
        T(test_rlimit_as),
        T(test_fault_injection_walk),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
