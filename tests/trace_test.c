/*
 * trace_test: allocation tracing (lib/trace.c), as tracemalloc's tests do
 * it: allocations are charged to the right site and type, snapshots and
 * their differences are exact, traced memory and peak follow frees, frees
 * of every kind drop their records (rcgc_free, the last decref, the
 * collector), sampling estimates the heap within a stated error, and the
 * tracer holds up under threads that allocate, free each other's blocks,
 * and snapshot while tracing starts and stops.
 *
 * The allocation sites are global, non-inlined functions and the test is
 * linked with -rdynamic, so that dladdr names them.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <rcgc.h>

#include "tests/test_util.h"

typedef struct {
    void *next;
    uint64_t pad[5];
} node;     /* 48-byte payload: 80 bytes with the header */

static int node_traverse(void *o, rcgc_visit_fn visit, void *arg) {
    node *n = o;
    return n->next ? visit(n->next, arg) : 0;
}
static void node_clear(void *o) {
    node *n = o;
    void *next = n->next;
    n->next = NULL;
    rcgc_xdecref(next);
}

static const rcgc_type plain_type = {.name = "plain", .size = 16};
static const rcgc_type node_type = {
    .name = "node", .size = sizeof(node), .traverse = node_traverse, .clear = node_clear};

#define PLAIN_BYTES (32 + 16)
#define NODE_BYTES (32 + sizeof(node))

static int setup(void **state) {
    (void)state;
    if (rcgc_init(NULL) != 0)
        return -1;
    rcgc_gc_disable();
    return 0;
}

static int teardown(void **state) {
    rcgc_trace_stop();
    return test_rcgc_teardown(state);
}

/* ------------------------------------------------------------------------
 * Allocation sites (exported, never inlined: dladdr must name them)
 * ------------------------------------------------------------------------ */

__attribute__((noinline, used)) void *trace_site_plain(void) {
    void *p = rcgc_new(&plain_type);
    __asm__ volatile("" ::: "memory");  /* not a tail call: keep this frame */
    return p;
}

__attribute__((noinline, used)) void *trace_site_raw(size_t n) {
    void *p = rcgc_malloc(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline, used)) void *trace_site_calloc(size_t n) {
    void *p = rcgc_calloc(1, n);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline, used)) void *trace_site_node(void) {
    void *p = rcgc_new(&node_type);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline, used)) void *trace_site_var(size_t n) {
    void *p = rcgc_new_var(&plain_type, n);
    __asm__ volatile("" ::: "memory");
    return p;
}

/* The name of the function holding return address pc ("" if none). */
static const char *frame_function(void *pc) {
    Dl_info info;
    if (!pc || !dladdr((char *)pc - 1, &info) || !info.dli_sname)
        return "";
    return info.dli_sname;
}

/* The stat whose first frame lies in `fn` (BY_SITE / BY_TRACEBACK). */
static const rcgc_trace_stat *find_site(const rcgc_trace_stat *st, size_t n, const char *fn) {
    for (size_t i = 0; i < n; i++)
        if (st[i].nframes > 0 && strcmp(frame_function(st[i].frames[0]), fn) == 0)
            return &st[i];
    return NULL;
}

static const rcgc_trace_stat *find_type(const rcgc_trace_stat *st, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (st[i].type_name && strcmp(st[i].type_name, name) == 0)
            return &st[i];
    return NULL;
}

/* ------------------------------------------------------------------------
 * Control
 * ------------------------------------------------------------------------ */

static void test_start_stop_errors(void **state) {
    TEST_BEGIN(state);
    assert_int_equal(rcgc_trace_is_tracing(), 0);
    assert_int_equal(rcgc_trace_start(0), EINVAL);
    assert_int_equal(rcgc_trace_start(RCGC_TRACE_MAX_FRAMES + 1), EINVAL);
    assert_int_equal(rcgc_trace_start_sampling(4, 0), EINVAL);
    errno = 0;
    assert_null(rcgc_trace_take_snapshot());
    assert_int_equal(errno, EINVAL);
    assert_int_equal(rcgc_trace_start(4), 0);
    assert_int_equal(rcgc_trace_is_tracing(), 1);
    assert_int_equal(rcgc_trace_start(4), EBUSY);
    assert_int_equal(rcgc_trace_start_sampling(4, 4096), EBUSY);
    rcgc_trace_stop();
    assert_int_equal(rcgc_trace_is_tracing(), 0);
    rcgc_trace_stop();      /* twice: harmless */
    assert_int_equal(rcgc_trace_start_sampling(4, 4096), 0);
    assert_int_equal(rcgc_trace_is_tracing(), 2);
    rcgc_trace_stop();
    size_t n = 99;
    errno = 0;
    assert_null(rcgc_trace_statistics(NULL, NULL, RCGC_TRACE_BY_SITE, &n));
    assert_int_equal(errno, EINVAL);
}

/* ------------------------------------------------------------------------
 * Attribution
 * ------------------------------------------------------------------------ */

#define N_PLAIN 100
#define N_RAW 50
#define RAW_SIZE 200

__attribute__((noinline, used)) void trace_caller(void **plain, void **raw) {
    for (int i = 0; i < N_PLAIN; i++)
        plain[i] = trace_site_plain();
    for (int i = 0; i < N_RAW; i++)
        raw[i] = trace_site_raw(RAW_SIZE);
    __asm__ volatile("" ::: "memory");
}

static void test_sites_and_types(void **state) {
    TEST_BEGIN(state);
    void *plain[N_PLAIN], *raw[N_RAW];
    void *before = trace_site_plain();  /* allocated before tracing: never counted */
    assert_int_equal(rcgc_trace_start(8), 0);
    trace_caller(plain, raw);

    rcgc_trace_snapshot *s = rcgc_trace_take_snapshot();
    assert_non_null(s);
    size_t n;
    rcgc_trace_stat *st = rcgc_trace_statistics(s, NULL, RCGC_TRACE_BY_TYPE, &n);
    assert_non_null(st);
    assert_int_equal(n, 2);
    const rcgc_trace_stat *p = find_type(st, n, "plain");
    const rcgc_trace_stat *r = find_type(st, n, "raw");
    assert_non_null(p);
    assert_non_null(r);
    assert_ptr_equal(p->type, &plain_type);
    assert_null(r->type);
    assert_int_equal(p->count, N_PLAIN);
    assert_int_equal(p->bytes, N_PLAIN * PLAIN_BYTES);
    assert_int_equal(r->count, N_RAW);
    assert_int_equal(r->bytes, N_RAW * RAW_SIZE);
    assert_ptr_equal(st[0].type, NULL);     /* largest first: 10000 raw bytes > 4800 */
    free(st);

    st = rcgc_trace_statistics(s, NULL, RCGC_TRACE_BY_SITE, &n);
    assert_non_null(st);
    assert_int_equal(n, 2);
    const rcgc_trace_stat *sp = find_site(st, n, "trace_site_plain");
    const rcgc_trace_stat *sr = find_site(st, n, "trace_site_raw");
    assert_non_null(sp);
    assert_non_null(sr);
    assert_int_equal(sp->count, N_PLAIN);
    assert_int_equal(sr->bytes, N_RAW * RAW_SIZE);
    assert_int_equal(sp->nframes, 1);
    free(st);

    /* The whole stack: site, then its caller. */
    st = rcgc_trace_statistics(s, NULL, RCGC_TRACE_BY_TRACEBACK, &n);
    assert_non_null(st);
    sp = find_site(st, n, "trace_site_plain");
    assert_non_null(sp);
    assert_true(sp->nframes >= 2);
    assert_string_equal(frame_function(sp->frames[1]), "trace_caller");
    free(st);

    /* Per object. */
    void *frames[8];
    int k = rcgc_trace_get_traceback(plain[7], frames, 8);
    assert_true(k >= 2);
    assert_string_equal(frame_function(frames[0]), "trace_site_plain");
    assert_string_equal(frame_function(frames[1]), "trace_caller");
    assert_int_equal(rcgc_trace_get_traceback(raw[3], frames, 1), 1);
    assert_string_equal(frame_function(frames[0]), "trace_site_raw");
    assert_int_equal(rcgc_trace_get_traceback(before, frames, 8), 0);

    char buf[256];
    rcgc_trace_format_frame(frames[0], buf, sizeof buf);
    assert_non_null(strstr(buf, "trace_site_raw+0x"));
    assert_non_null(strstr(buf, "trace_test+0x"));

    size_t cur, peak;
    rcgc_trace_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, N_PLAIN * PLAIN_BYTES + N_RAW * RAW_SIZE);
    assert_int_equal(peak, cur);
    assert_true(rcgc_trace_get_overhead() > 0);

    rcgc_trace_snapshot_free(s);
    for (int i = 0; i < N_PLAIN; i++)
        rcgc_decref(plain[i]);
    for (int i = 0; i < N_RAW; i++)
        rcgc_free(raw[i]);
    rcgc_trace_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 0);
    assert_int_equal(peak, N_PLAIN * PLAIN_BYTES + N_RAW * RAW_SIZE);
    rcgc_decref(before);
}

static void test_calloc_and_var_sizes(void **state) {
    TEST_BEGIN(state);
    assert_int_equal(rcgc_trace_start(2), 0);
    void *c = trace_site_calloc(1000);
    void *v = trace_site_var(300);
    void *frames[2];
    assert_int_equal(rcgc_trace_get_traceback(c, frames, 2) >= 1, 1);
    assert_string_equal(frame_function(frames[0]), "trace_site_calloc");
    assert_int_equal(rcgc_trace_get_traceback(v, frames, 2) >= 1, 1);
    assert_string_equal(frame_function(frames[0]), "trace_site_var");
    size_t cur;
    rcgc_trace_get_traced_memory(&cur, NULL);
    assert_int_equal(cur, 1000 + 32 + 300);
    rcgc_free(c);
    rcgc_decref(v);
    rcgc_trace_get_traced_memory(&cur, NULL);
    assert_int_equal(cur, 0);
}

/* ------------------------------------------------------------------------
 * Snapshot differences
 * ------------------------------------------------------------------------ */

static void test_snapshot_diff_exact(void **state) {
    TEST_BEGIN(state);
    enum { A = 300, B = 120, FREED = 77 };
    void *plain[A], *raw[B];
    assert_int_equal(rcgc_trace_start(4), 0);
    for (int i = 0; i < A; i++)
        plain[i] = trace_site_plain();
    rcgc_trace_snapshot *s1 = rcgc_trace_take_snapshot();
    assert_non_null(s1);
    for (int i = 0; i < B; i++)
        raw[i] = trace_site_raw(64);
    for (int i = 0; i < FREED; i++)
        rcgc_decref(plain[i]);
    rcgc_trace_snapshot *s2 = rcgc_trace_take_snapshot();
    assert_non_null(s2);

    size_t n;
    rcgc_trace_stat *st = rcgc_trace_statistics(s2, s1, RCGC_TRACE_BY_SITE, &n);
    assert_non_null(st);
    assert_int_equal(n, 2);
    /* Ordered by growth in bytes: raw grew by 7680, plain shrank by 3696. */
    assert_string_equal(frame_function(st[0].frames[0]), "trace_site_raw");
    assert_int_equal(st[0].count_diff, B);
    assert_int_equal(st[0].bytes_diff, B * 64);
    assert_int_equal(st[0].count, B);
    assert_string_equal(frame_function(st[1].frames[0]), "trace_site_plain");
    assert_int_equal(st[1].count_diff, -FREED);
    assert_int_equal(st[1].bytes_diff, -(long long)(FREED * PLAIN_BYTES));
    assert_int_equal(st[1].count, A - FREED);
    free(st);

    /* The other way round: a group only in the base shows with count 0. */
    for (int i = 0; i < B; i++)
        rcgc_free(raw[i]);
    for (int i = FREED; i < A; i++)
        rcgc_decref(plain[i]);
    rcgc_trace_snapshot *s3 = rcgc_trace_take_snapshot();
    assert_non_null(s3);
    st = rcgc_trace_statistics(s3, s2, RCGC_TRACE_BY_TYPE, &n);
    assert_non_null(st);
    assert_int_equal(n, 2);
    const rcgc_trace_stat *r = find_type(st, n, "raw");
    assert_non_null(r);
    assert_int_equal(r->count, 0);
    assert_int_equal(r->count_diff, -B);
    free(st);

    /* The snapshots outlive tracing. */
    rcgc_trace_stop();
    st = rcgc_trace_statistics(s2, NULL, RCGC_TRACE_BY_TRACEBACK, &n);
    assert_non_null(st);
    assert_int_equal(n, 2);
    free(st);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(rcgc_trace_print_top(f, s2, s1, RCGC_TRACE_BY_SITE, 10), 0);
    assert_int_equal(rcgc_trace_print_top(f, s2, NULL, RCGC_TRACE_BY_TYPE, 10), 0);
    fclose(f);
    assert_non_null(strstr(text, "#1: trace_site_raw+0x"));
    assert_non_null(strstr(text, "120 blocks, 7.5 KiB (+120 blocks, +7.5 KiB)"));
    assert_non_null(strstr(text, "type 'plain': 223 blocks"));
    free(text);
    rcgc_trace_snapshot_free(s1);
    rcgc_trace_snapshot_free(s2);
    rcgc_trace_snapshot_free(s3);
}

/* ------------------------------------------------------------------------
 * Every way a block dies drops its record
 * ------------------------------------------------------------------------ */

static void test_collector_frees_drop_records(void **state) {
    TEST_BEGIN(state);
    assert_int_equal(rcgc_trace_start(2), 0);
    enum { CYCLES = 50 };
    for (int i = 0; i < CYCLES; i++) {
        node *a = trace_site_node(), *b = trace_site_node();
        a->next = b;        /* our references move into the fields: */
        b->next = a;        /* a cycle that nothing else refers to */
    }
    size_t cur;
    rcgc_trace_get_traced_memory(&cur, NULL);
    assert_int_equal(cur, 2 * CYCLES * NODE_BYTES);
    assert_int_equal(rcgc_collect(), 2 * CYCLES);
    rcgc_trace_get_traced_memory(&cur, NULL);
    assert_int_equal(cur, 0);
}

static void *free_on_other_thread(void *arg) {
    void **blocks = arg;
    assert_int_equal(rcgc_thread_attach(), 0);
    for (int i = 0; i < 64; i++)
        rcgc_free(blocks[i]);
    rcgc_thread_detach();
    return NULL;
}

static void test_remote_frees_drop_records(void **state) {
    TEST_BEGIN(state);
    void *blocks[64];
    assert_int_equal(rcgc_trace_start(1), 0);
    for (int i = 0; i < 64; i++)
        blocks[i] = trace_site_raw(32 + (size_t)i);
    rcgc_blocking_begin();
    test_thread_run(free_on_other_thread, blocks);
    rcgc_blocking_end();
    size_t cur;
    rcgc_trace_get_traced_memory(&cur, NULL);
    assert_int_equal(cur, 0);
}

/* Objects and raw blocks traced before a stop, freed after it (and after
 * a restart at the same addresses' reuse): no stale record survives. */
static void test_stop_restart_with_live_blocks(void **state) {
    TEST_BEGIN(state);
    enum { N = 200 };
    void *o[N], *r[N];
    assert_int_equal(rcgc_trace_start(2), 0);
    for (int i = 0; i < N; i++) {
        o[i] = trace_site_plain();
        r[i] = trace_site_raw(48);
    }
    rcgc_trace_stop();
    assert_int_equal(rcgc_trace_start(2), 0);
    for (int i = 0; i < N; i += 2) {
        rcgc_decref(o[i]);
        rcgc_free(r[i]);
        o[i] = trace_site_plain();  /* likely at the same address */
        r[i] = trace_site_raw(48);
    }
    size_t cur;
    rcgc_trace_get_traced_memory(&cur, NULL);
    assert_int_equal(cur, (N / 2) * (PLAIN_BYTES + 48));
    rcgc_trace_clear();
    rcgc_trace_get_traced_memory(&cur, NULL);
    assert_int_equal(cur, 0);
    void *frames[2];
    assert_int_equal(rcgc_trace_get_traceback(o[0], frames, 2), 0);
    for (int i = 0; i < N; i++) {
        rcgc_decref(o[i]);
        rcgc_free(r[i]);
    }
    rcgc_trace_get_traced_memory(&cur, NULL);
    assert_int_equal(cur, 0);
}

/* ------------------------------------------------------------------------
 * Sampling
 * ------------------------------------------------------------------------ */

/* 200,000 blocks of 256 bytes (51.2 MB) sampled once per 32 KiB on
 * average: about 1,560 samples, so the estimate's standard error is about
 * 1/sqrt(1560) = 2.5%. The test allows 10% (four standard errors); the
 * sampler's generator is seeded from the thread's serial, so a run gives
 * the same figures every time. */
static void test_sampling_estimate(void **state) {
    TEST_BEGIN(state);
    enum { N = 200000, SIZE = 256 };
    void **blocks = malloc(N * sizeof *blocks);
    assert_non_null(blocks);
    assert_int_equal(rcgc_trace_start_sampling(4, 32768), 0);
    for (int i = 0; i < N; i++)
        blocks[i] = trace_site_raw(SIZE);
    rcgc_trace_snapshot *s = rcgc_trace_take_snapshot();
    assert_non_null(s);
    size_t n;
    rcgc_trace_stat *st = rcgc_trace_statistics(s, NULL, RCGC_TRACE_BY_SITE, &n);
    assert_non_null(st);
    const rcgc_trace_stat *site = find_site(st, n, "trace_site_raw");
    assert_non_null(site);
    double bytes_err = ((double)site->bytes - (double)N * SIZE) / ((double)N * SIZE);
    double count_err = ((double)site->count - N) / N;
    print_message("sampling: %zu blocks, %zu bytes estimated (truth %d, %d): errors %+.2f%%, %+.2f%%\n",
                  site->count, site->bytes, N, N * SIZE, 100 * count_err, 100 * bytes_err);
    assert_true(bytes_err > -0.10 && bytes_err < 0.10);
    assert_true(count_err > -0.10 && count_err < 0.10);
    /* Records are few: far fewer than blocks. */
    assert_true(rcgc_trace_get_overhead() < (size_t)N * 8);
    free(st);
    rcgc_trace_snapshot_free(s);
    for (int i = 0; i < N; i++)
        rcgc_free(blocks[i]);
    size_t cur;
    rcgc_trace_get_traced_memory(&cur, NULL);
    assert_int_equal(cur, 0);
    free(blocks);
}

/* A block bigger than the mean is nearly always sampled, weighing ~1. */
static void test_sampling_large_blocks(void **state) {
    TEST_BEGIN(state);
    enum { N = 40 };
    void *b[N];
    assert_int_equal(rcgc_trace_start_sampling(2, 4096), 0);
    for (int i = 0; i < N; i++)
        b[i] = trace_site_raw(1 << 20);
    size_t cur;
    rcgc_trace_get_traced_memory(&cur, NULL);
    /* Each sampled 1 MiB block weighs 1/(1 - e^-256): exactly 1 MiB. */
    assert_true(cur >= (size_t)(N - 1) << 20 && cur <= (size_t)N << 20);
    for (int i = 0; i < N; i++)
        rcgc_free(b[i]);
    rcgc_trace_get_traced_memory(&cur, NULL);
    assert_int_equal(cur, 0);
}

/* ------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------ */

#define MT_THREADS 4
#define MT_ROUNDS TEST_SCALE(4000, 600)

typedef struct {
    int id;
    void *handoff[MT_THREADS][64];  /* blocks for the next thread to free */
} mt_shared;

static mt_shared mt;
static pthread_mutex_t mt_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int mt_stop_flips;

static void *mt_worker(void *arg) {
    int id = (int)(intptr_t)arg;
    assert_int_equal(rcgc_thread_attach(), 0);
    void *mine[64] = {0};
    for (int r = 0; r < MT_ROUNDS; r++) {
        int slot = r % 64;
        if (mine[slot])
            rcgc_decref(mine[slot]);
        mine[slot] = trace_site_plain();
        void *raw = trace_site_raw(16 + (size_t)(r % 300));
        /* Hand the raw block to the next thread; free what it left us. */
        void *theirs;
        rcgc_blocking_begin();
        pthread_mutex_lock(&mt_lock);
        rcgc_blocking_end();
        int next = (id + 1) % MT_THREADS;
        theirs = mt.handoff[id][slot];
        mt.handoff[id][slot] = NULL;
        void *old = mt.handoff[next][slot];
        mt.handoff[next][slot] = raw;
        pthread_mutex_unlock(&mt_lock);
        rcgc_free(theirs);
        rcgc_free(old);
        if (id == 0 && r % 500 == 0) {
            rcgc_trace_snapshot *s = rcgc_trace_take_snapshot();
            if (s) {
                size_t n;
                rcgc_trace_stat *st = rcgc_trace_statistics(s, NULL, RCGC_TRACE_BY_TYPE, &n);
                TEST_THREAD_CHECK(st != NULL);
                free(st);
                rcgc_trace_snapshot_free(s);
            }
        }
        if (id == 1 && r % 700 == 350) {
            /* Flip tracing under the others' feet. */
            int mode = rcgc_trace_is_tracing();
            rcgc_trace_stop();
            TEST_THREAD_CHECK(rcgc_trace_start(3) == 0 || mode == 0);
            atomic_fetch_add(&mt_stop_flips, 1);
        }
        rcgc_safepoint();
    }
    for (int i = 0; i < 64; i++)
        rcgc_xdecref(mine[i]);
    rcgc_thread_detach();
    return NULL;
}

static void test_threads_allocate_free_snapshot_and_flip(void **state) {
    TEST_BEGIN(state);
    memset(&mt, 0, sizeof mt);
    assert_int_equal(rcgc_trace_start(3), 0);
    pthread_t t[MT_THREADS];
    rcgc_blocking_begin();
    for (int i = 0; i < MT_THREADS; i++)
        t[i] = test_thread_start(mt_worker, (void *)(intptr_t)i);
    for (int i = 0; i < MT_THREADS; i++)
        test_thread_join(t[i]);
    rcgc_blocking_end();
    for (int i = 0; i < MT_THREADS; i++)
        for (int j = 0; j < 64; j++)
            rcgc_free(mt.handoff[i][j]);
    assert_true(atomic_load(&mt_stop_flips) > 0);
    /* Every traced block is gone: the tracer agrees. */
    size_t cur;
    rcgc_trace_get_traced_memory(&cur, NULL);
    assert_int_equal(cur, 0);
}

/* ------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------ */

static void test_config_starts_tracing(void **state) {
    TEST_BEGIN(state);
    rcgc_shutdown();
    assert_int_equal(rcgc_trace_is_tracing(), 0);   /* shutdown stops it */
    rcgc_config cfg = {.trace_frames = 5};
    assert_int_equal(rcgc_init(&cfg), 0);
    assert_int_equal(rcgc_trace_is_tracing(), 1);
    void *p = trace_site_plain();
    void *frames[5];
    assert_true(rcgc_trace_get_traceback(p, frames, 5) >= 1);
    rcgc_decref(p);
    rcgc_shutdown();
    cfg = (rcgc_config){.trace_frames = 3, .trace_sample = 1024};
    assert_int_equal(rcgc_init(&cfg), 0);
    assert_int_equal(rcgc_trace_is_tracing(), 2);
    rcgc_shutdown();
    setenv("RCGC_TRACE", "2", 1);
    cfg = (rcgc_config){.trace_frames = -1};
    assert_int_equal(rcgc_init(&cfg), 0);
    assert_int_equal(rcgc_trace_is_tracing(), 0);   /* the field wins over the variable */
    rcgc_shutdown();
    assert_int_equal(rcgc_init(NULL), 0);
    assert_int_equal(rcgc_trace_is_tracing(), 1);
    unsetenv("RCGC_TRACE");
}

int main(void) {
    test_main_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_start_stop_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sites_and_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_calloc_and_var_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_diff_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collector_frees_drop_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_frees_drop_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_restart_with_live_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sampling_estimate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sampling_large_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_allocate_free_snapshot_and_flip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_starts_tracing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
