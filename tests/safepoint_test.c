/*
 * safepoint_test: safepoints, blocking regions, stop-the-world, thread exit,
 * init/shutdown cycles and the pause watchdog (lib/safepoint.c,
 * lib/thread.c, lib/runtime.c).
 *
 * A pause is checked from the inside: spinner threads bump a per-thread
 * counter between safepoint polls, and the requester reads every counter
 * twice across a short wait while the world is stopped: no counter may
 * move. None of the timings below is a speed assertion; each only orders
 * two events (a pause finished while a thread was still asleep, a thread
 * did not return from a blocking region while the world was stopped).
 *
 * cmocka assertions stay on the test's thread, and never inside a pause
 * (a failed assertion would leave the world stopped): failures seen inside
 * are recorded and asserted after rcgc__start_the_world. Other threads use
 * THREAD_CHECK (print and abort).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/object.h"
#include "lib/safepoint.h"
#include "lib/thread.h"

#include "tests/test_util.h"

#define SANITIZED TEST_SANITIZER
#define SCALE(normal, sanitized) TEST_SCALE(normal, sanitized)
#define THREAD_CHECK(cond) TEST_THREAD_CHECK(cond)

static int setup(void **state) {
    (void)state;
    return rcgc_init(NULL) == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    rcgc_shutdown();
    return 0;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A sleep for an attached thread: in a blocking region. */
static void blocking_sleep_us(long us) {
    rcgc_blocking_begin();
    sleep_us(us);
    rcgc_blocking_end();
}

/* Wait (attached) until *flag >= value, or fail after `seconds`. */
static int wait_at_least(_Atomic long *flag, long value, double seconds) {
    uint64_t deadline = now_ns() + (uint64_t)(seconds * 1e9);
    while (atomic_load(flag) < value) {
        if (now_ns() > deadline)
            return 0;
        rcgc_safepoint();
        blocking_sleep_us(200);
    }
    return 1;
}

static void join_all(pthread_t *th, int n) {
    rcgc_blocking_begin();
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    rcgc_blocking_end();
}

/* Objects, for threads that attach and detach. */
static _Atomic size_t destroys;
static void count_destroy(void *self) {
    (void)self;
    atomic_fetch_add(&destroys, 1);
}
static const rcgc_type obj_type = {
    .name = "sp_obj",
    .size = 32,
    .destroy = count_destroy,
};

/* ------------------------------------------------------------------------
 * Spinners: attached threads that count between safepoint polls
 * ------------------------------------------------------------------------ */

#define MAX_SPINNERS 32

typedef struct {
    _Atomic uint64_t count;
    char pad[56];
} padded_counter;

static padded_counter counters[MAX_SPINNERS];
static _Atomic int spin_stop;

static void *spinner(void *arg) {
    padded_counter *c = arg;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    while (!atomic_load_explicit(&spin_stop, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&c->count, 1, memory_order_relaxed);
        rcgc_safepoint();
    }
    rcgc_thread_detach();
    return NULL;
}

static void spinners_start(pthread_t *th, int n) {
    atomic_store(&spin_stop, 0);
    for (int i = 0; i < n; i++) {
        atomic_store(&counters[i].count, 0);
        assert_int_equal(pthread_create(&th[i], NULL, spinner, &counters[i]), 0);
    }
    /* Every spinner is attached and running. */
    uint64_t deadline = now_ns() + 30000000000ull;
    for (int i = 0; i < n; i++) {
        while (atomic_load(&counters[i].count) == 0) {
            assert_true(now_ns() < deadline);
            blocking_sleep_us(100);
        }
    }
}

static void spinners_stop(pthread_t *th, int n) {
    atomic_store(&spin_stop, 1);
    join_all(th, n);
}

static void snapshot(uint64_t *out, int n) {
    for (int i = 0; i < n; i++)
        out[i] = atomic_load_explicit(&counters[i].count, memory_order_relaxed);
}

/* Inside a pause: do the spinners' counters stay put across `wait_us`?
 * Returns the index of one that moved, or -1. */
static int frozen_check(int n, long wait_us) {
    uint64_t a[MAX_SPINNERS], b[MAX_SPINNERS];
    snapshot(a, n);
    sleep_us(wait_us);
    snapshot(b, n);
    for (int i = 0; i < n; i++)
        if (a[i] != b[i])
            return i;
    return -1;
}

/* After the world restarts, every spinner moves again. */
static void assert_all_advance(int n) {
    uint64_t a[MAX_SPINNERS];
    snapshot(a, n);
    uint64_t deadline = now_ns() + 30000000000ull;
    for (int i = 0; i < n; i++) {
        while (atomic_load(&counters[i].count) == a[i]) {
            if (now_ns() > deadline)
                fail_msg("spinner %d did not run again after the pause", i);
            blocking_sleep_us(100);
        }
    }
}

/* ------------------------------------------------------------------------
 * Pauses with 1..32 spinners (oversubscribed on small machines)
 * ------------------------------------------------------------------------ */

static void test_pause_freezes_spinners(void **state) {
    (void)state;
    static const int counts[] = {1, 2, 4, 8, 16, 32};
    int pauses_each = SCALE(20, 5);
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        int n = counts[k];
        pthread_t th[MAX_SPINNERS];
        spinners_start(th, n);
        rcgc_stats before, after;
        rcgc_stats_get(&before);
        for (int p = 0; p < pauses_each; p++) {
            rcgc__stop_the_world();
            int stopped_by_me = rcgc__world_stopped_by_me();
            int moved = frozen_check(n, 2000);
            rcgc__start_the_world();
            assert_true(stopped_by_me);
            if (moved >= 0)
                fail_msg("%d spinners, pause %d: spinner %d advanced while the world was stopped", n,
                         p, moved);
            assert_false(rcgc__world_stopped_by_me());
            assert_all_advance(n);
        }
        rcgc_stats_get(&after);
        assert_int_equal(after.pauses - before.pauses, (uint64_t)pauses_each);
        assert_true(after.ttsp_max_ns > 0);
        assert_true(after.ttsp_p50_ns <= after.ttsp_p99_ns);
        assert_true(after.ttsp_p99_ns <= after.ttsp_max_ns);
        /* Each spinner was asked to stop for each pause. */
        rcgc_thread_stats ts[MAX_SPINNERS + 1];
        size_t nt = rcgc_stats_threads(ts, MAX_SPINNERS + 1);
        assert_int_equal(nt, (size_t)n + 1);
        size_t asked = 0;
        for (size_t i = 0; i < nt; i++)
            if (ts[i].pause_requests >= (uint64_t)pauses_each)
                asked++;
        assert_int_equal(asked, (size_t)n);   /* everyone but the requester */
        spinners_stop(th, n);
    }
}

/* ------------------------------------------------------------------------
 * Threads attaching and detaching while pauses come and go
 * ------------------------------------------------------------------------ */

#define CHURNERS 4

static _Atomic long attaches_done;
static _Atomic long churners_done;

static void *churner(void *arg) {
    long cycles = (long)(intptr_t)arg;
    void *kept = NULL;
    for (long i = 0; i < cycles; i++) {
        THREAD_CHECK(rcgc_thread_attach() == 0);
        atomic_fetch_add(&attaches_done, 1);
        rcgc_safepoint();
        if (kept)
            rcgc_decref(kept);      /* made by our previous attachment: merged since */
        kept = rcgc_new(&obj_type);
        THREAD_CHECK(kept != NULL);
        for (int j = 0; j < 8; j++) {
            void *o = rcgc_new(&obj_type);
            rcgc_safepoint();
            rcgc_decref(o);
        }
        if (i == cycles - 1) {
            rcgc_decref(kept);
            kept = NULL;
        }
        rcgc_thread_detach();
        if (i & 1)
            sched_yield();
    }
    atomic_fetch_add(&churners_done, 1);
    return NULL;
}

static void test_attach_detach_during_pauses(void **state) {
    (void)state;
    long cycles = SCALE(300, 60);
    atomic_store(&attaches_done, 0);
    atomic_store(&churners_done, 0);
    atomic_store(&destroys, 0);
    pthread_t th[CHURNERS];
    for (int i = 0; i < CHURNERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, churner, (void *)(intptr_t)cycles), 0);
    long pauses = 0;
    int bad_threads = 0, bad_attaches = 0;
    size_t seen_max = 0;
    while (atomic_load(&churners_done) < CHURNERS) {
        rcgc__stop_the_world();
        /* Nobody attaches or detaches while the world is stopped. */
        size_t n1 = rcgc_stats_threads(NULL, 0);
        long a1 = atomic_load(&attaches_done);
        sleep_us(300);
        size_t n2 = rcgc_stats_threads(NULL, 0);
        long a2 = atomic_load(&attaches_done);
        rcgc__start_the_world();
        if (n1 != n2)
            bad_threads++;
        if (a1 != a2)
            bad_attaches++;
        if (n1 > seen_max)
            seen_max = n1;
        pauses++;
        rcgc_safepoint();
        if (pauses % 4 == 0)
            blocking_sleep_us(100);
    }
    join_all(th, CHURNERS);
    print_message("(%ld pauses, up to %zu threads attached in one)\n", pauses, seen_max);
    assert_int_equal(bad_threads, 0);
    assert_int_equal(bad_attaches, 0);
    assert_true(seen_max <= CHURNERS + 1);
    assert_int_equal(atomic_load(&attaches_done), CHURNERS * cycles);
    assert_int_equal(atomic_load(&destroys), (size_t)(CHURNERS * cycles * 9));
    rcgc_stats st;
    rcgc_stats_get(&st);
    assert_int_equal(st.threads_attached, 1);
}

/* ------------------------------------------------------------------------
 * Blocking regions
 * ------------------------------------------------------------------------ */

typedef struct {
    _Atomic long asleep;
    _Atomic int woke;
    long sleep_us;
} sleeper_ctx;

static void *sleeper(void *arg) {
    sleeper_ctx *c = arg;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    rcgc_blocking_begin();
    atomic_store(&c->asleep, 1);
    sleep_us(c->sleep_us);
    atomic_store(&c->woke, 1);
    rcgc_blocking_end();
    rcgc_thread_detach();
    return NULL;
}

/* A thread asleep in a blocking region does not hold up a pause: the pause
 * completes while it is still asleep (it sleeps 2 s). */
static void test_blocking_region_does_not_hold_pause(void **state) {
    (void)state;
    static sleeper_ctx c;
    memset(&c, 0, sizeof c);
    c.sleep_us = 2000000;
    pthread_t spin[2], th;
    spinners_start(spin, 2);
    assert_int_equal(pthread_create(&th, NULL, sleeper, &c), 0);
    assert_true(wait_at_least(&c.asleep, 1, 30.0));
    uint64_t t0 = now_ns();
    rcgc__stop_the_world();
    int woke = atomic_load(&c.woke);
    int moved = frozen_check(2, 1000);
    rcgc__start_the_world();
    uint64_t t1 = now_ns();
    assert_false(woke);
    assert_int_equal(moved, -1);
    assert_false(atomic_load(&c.woke));
    print_message("(pause took %.1f ms while the sleeper slept)\n", (double)(t1 - t0) / 1e6);
    join_all(&th, 1);
    assert_true(atomic_load(&c.woke));
    spinners_stop(spin, 2);
}

typedef struct {
    _Atomic long ready;
    _Atomic int go;
    _Atomic int returned;
    rcgc_thread *_Atomic thread;
} waker_ctx;

static void *waker(void *arg) {
    waker_ctx *c = arg;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    atomic_store(&c->thread, rcgc__thread_current());
    rcgc_blocking_begin();
    atomic_store(&c->ready, 1);
    while (!atomic_load(&c->go))
        sleep_us(200);
    rcgc_blocking_end();            /* must wait for the pause to end */
    atomic_store(&c->returned, 1);
    void *o = rcgc_new(&obj_type);  /* attached again: it may touch objects */
    rcgc_decref(o);
    rcgc_thread_detach();
    return NULL;
}

/* rcgc_blocking_end waits while a pause is in progress: the returning
 * thread does not proceed until the world restarts. */
static void test_blocking_end_waits_for_pause(void **state) {
    (void)state;
    int rounds = SCALE(5, 2);
    for (int r = 0; r < rounds; r++) {
        static waker_ctx c;
        memset(&c, 0, sizeof c);
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, waker, &c), 0);
        assert_true(wait_at_least(&c.ready, 1, 30.0));
        rcgc__stop_the_world();
        rcgc_thread *t = atomic_load(&c.thread);
        int suspended = atomic_load(&t->state) == RCGC_SUSPENDED;
        atomic_store(&c.go, 1);
        sleep_us(200000);           /* the waker leaves its sleep loop meanwhile */
        int returned_in_pause = atomic_load(&c.returned);
        int still_suspended = atomic_load(&t->state) == RCGC_SUSPENDED;
        rcgc__start_the_world();
        assert_true(suspended);     /* the pause suspended the detached thread */
        assert_true(still_suspended);
        assert_false(returned_in_pause);
        join_all(&th, 1);
        assert_true(atomic_load(&c.returned));
    }
}

/* A thread the requester counted while it ran, and that then enters a
 * blocking region (giving its count back), is stopped for that pause: its
 * blocking_end waits for the world to restart. (It used to attach again at
 * once and run during the pause; objgraph_test caught a collection
 * scanning objects such a thread was freeing.) */
typedef struct {
    _Atomic int ready, go, back;
    rcgc_thread *_Atomic thread;
    _Atomic int paused, back_in_pause;
} counted_ctx;

static void *counted_runner(void *arg) {
    counted_ctx *c = arg;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    atomic_store(&c->thread, rcgc__thread_current());
    atomic_store(&c->ready, 1);
    while (!atomic_load(&c->go)) {
        /* No safepoint poll: the requester counts this thread and waits. */
    }
    rcgc_blocking_begin();      /* gives the count back: the pause proceeds */
    rcgc_blocking_end();        /* must wait for the pause to end */
    atomic_store(&c->back, 1);
    rcgc_thread_detach();
    return NULL;
}

static void *counting_requester(void *arg) {
    counted_ctx *c = arg;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    rcgc__stop_the_world();
    atomic_store(&c->paused, 1);
    sleep_us(200000);           /* the runner returns from its region meanwhile, if it can */
    atomic_store(&c->back_in_pause, atomic_load(&c->back));
    rcgc__start_the_world();
    rcgc_thread_detach();
    return NULL;
}

static void test_counted_thread_stays_stopped_in_blocking_region(void **state) {
    (void)state;
    int rounds = SCALE(3, 2);
    for (int r = 0; r < rounds; r++) {
        static counted_ctx c;
        memset(&c, 0, sizeof c);
        pthread_t runner, req;
        rcgc_blocking_begin();      /* this thread must not hold the pause up */
        THREAD_CHECK(pthread_create(&runner, NULL, counted_runner, &c) == 0);
        while (!atomic_load(&c.ready))
            sleep_us(100);
        rcgc_thread *t = atomic_load(&c.thread);
        uint64_t requests = __atomic_load_n(&t->stw_requests, __ATOMIC_RELAXED);
        THREAD_CHECK(pthread_create(&req, NULL, counting_requester, &c) == 0);
        /* Wait until the requester has counted the runner (still running). */
        while (__atomic_load_n(&t->stw_requests, __ATOMIC_RELAXED) == requests)
            sleep_us(100);
        atomic_store(&c.go, 1);
        pthread_join(req, NULL);
        pthread_join(runner, NULL);
        rcgc_blocking_end();
        assert_true(atomic_load(&c.paused));
        assert_false(atomic_load(&c.back_in_pause));
        assert_true(atomic_load(&c.back));
    }
}

/* ------------------------------------------------------------------------
 * Concurrent pause requesters
 * ------------------------------------------------------------------------ */

#define REQUESTERS 3

static _Atomic int in_pause;
static _Atomic int overlap;         /* two pauses at once */
static _Atomic int moved_in_pause;  /* a spinner ran during a pause */
static _Atomic int not_mine;        /* world_stopped_by_me said no inside a pause */

static void requester_loop(long pauses, int spinners) {
    for (long i = 0; i < pauses; i++) {
        rcgc__stop_the_world();
        if (atomic_exchange(&in_pause, 1) != 0)
            atomic_store(&overlap, 1);
        if (!rcgc__world_stopped_by_me())
            atomic_store(&not_mine, 1);
        if (frozen_check(spinners, 50) >= 0)
            atomic_store(&moved_in_pause, 1);
        atomic_store(&in_pause, 0);
        rcgc__start_the_world();
        rcgc_safepoint();
        if (i & 1)
            sched_yield();
    }
}

typedef struct {
    long pauses;
    int spinners;
} requester_arg;

static void *requester(void *arg) {
    requester_arg *ra = arg;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    requester_loop(ra->pauses, ra->spinners);
    rcgc_thread_detach();
    return NULL;
}

static void test_concurrent_requesters(void **state) {
    (void)state;
    atomic_store(&in_pause, 0);
    atomic_store(&overlap, 0);
    atomic_store(&moved_in_pause, 0);
    atomic_store(&not_mine, 0);
    int nspin = 3;
    pthread_t spin[3], req[REQUESTERS - 1];
    spinners_start(spin, nspin);
    requester_arg ra = {SCALE(300, 40), nspin};
    rcgc_stats before, after;
    rcgc_stats_get(&before);
    for (int i = 0; i < REQUESTERS - 1; i++)
        assert_int_equal(pthread_create(&req[i], NULL, requester, &ra), 0);
    requester_loop(ra.pauses, nspin);      /* this thread is the third requester */
    join_all(req, REQUESTERS - 1);
    rcgc_stats_get(&after);
    assert_false(atomic_load(&overlap));
    assert_false(atomic_load(&moved_in_pause));
    assert_false(atomic_load(&not_mine));
    assert_int_equal(after.pauses - before.pauses, (uint64_t)(REQUESTERS * ra.pauses));
    spinners_stop(spin, nspin);
}

/* ------------------------------------------------------------------------
 * Thread exit without detach
 * ------------------------------------------------------------------------ */

static void *exiting(void *arg) {
    void **out = arg;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    rcgc_thread_set_name("exiter");
    *out = rcgc_new(&obj_type);     /* our reference goes to the test */
    for (int i = 0; i < 100; i++)
        rcgc_decref(rcgc_new(&obj_type));
    return NULL;                    /* no rcgc_thread_detach */
}

static void test_thread_exit_without_detach(void **state) {
    (void)state;
    atomic_store(&destroys, 0);
    int rounds = SCALE(30, 10);
    for (int r = 0; r < rounds; r++) {
        void *o = NULL;
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, exiting, &o), 0);
        join_all(&th, 1);
        rcgc_stats st;
        rcgc_stats_get(&st);
        assert_int_equal(st.threads_attached, 1);   /* the key destructor detached it */
        /* Its objects were merged: ours now frees on our decref. */
        assert_non_null(o);
        assert_int_equal(rcgc__owner(rcgc__hdr(o)), RCGC__UNOWNED);
        size_t d = atomic_load(&destroys);
        rcgc_decref(o);
        assert_int_equal(atomic_load(&destroys), d + 1);
        /* And a pause does not wait for the dead thread. */
        rcgc__stop_the_world();
        rcgc__start_the_world();
    }
    assert_int_equal(atomic_load(&destroys), (size_t)rounds * 101);
}

/* ------------------------------------------------------------------------
 * Init / shutdown cycles
 * ------------------------------------------------------------------------ */

static const rcgc_type shared_read_type = {
    .name = "sp_shared_read",
    .size = 32,
    .destroy = count_destroy,
    .flags = RCGC_TYPE_SHARED_READ,
};

static void *cycle_helper(void *arg) {
    void *o = arg;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    rcgc_decref(o);                 /* a non-owner's decrement: queued to the test */
    void *mine = rcgc_new(&obj_type);
    rcgc_decref(mine);
    rcgc_thread_detach();
    return NULL;
}

static void *try_attach(void *arg) {
    *(int *)arg = rcgc_thread_attach();
    if (*(int *)arg == 0)
        rcgc_thread_detach();
    return NULL;
}

static void test_init_shutdown_cycles(void **state) {
    (void)state;
    int cycles = 50;
    for (int i = 0; i < cycles; i++) {
        rcgc_shutdown();
        assert_false(rcgc_is_attached());
        rcgc_shutdown();                            /* twice: harmless */
        int err = -1;
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, try_attach, &err), 0);
        pthread_join(th, NULL);
        assert_int_equal(err, EINVAL);              /* not initialised */

        assert_int_equal(rcgc_init(NULL), 0);
        assert_true(rcgc_is_attached());
        assert_int_equal(rcgc_init(NULL), EBUSY);
        assert_int_equal(rcgc_thread_attach(), EBUSY);
        rcgc_stats st;
        rcgc_stats_get(&st);
        assert_int_equal(st.threads_attached, 1);
        assert_int_equal(st.objects_shared_read_pending, 0);

        /* A little of everything, all freed again before the next shutdown. */
        atomic_store(&destroys, 0);
        void *o = rcgc_new(&obj_type);
        rcgc_incref(o);
        assert_int_equal(pthread_create(&th, NULL, cycle_helper, o), 0);
        join_all(&th, 1);
        rcgc_safepoint();                           /* merge what the helper queued */
        rcgc__stop_the_world();
        rcgc__start_the_world();
        rcgc_decref(o);
        for (int j = 0; j < 200; j++)
            rcgc_decref(rcgc_new(&shared_read_type));
        assert_int_equal(atomic_load(&destroys), 202);
    }
}

/* ------------------------------------------------------------------------
 * The watchdog names the thread that holds up a pause
 * ------------------------------------------------------------------------ */

static int setup_watchdog(void **state) {
    (void)state;
    setenv("RCGC_WATCHDOG_MS", "50", 1);
    return rcgc_init(NULL) == 0 ? 0 : -1;
}

static int teardown_watchdog(void **state) {
    (void)state;
    rcgc_shutdown();
    unsetenv("RCGC_WATCHDOG_MS");
    return 0;
}

typedef struct {
    int pipe_rd, pipe_wr;
    _Atomic long ready;
    _Atomic long tid;
    _Atomic int stop;
    long release_after_us;
} blocker_ctx;

/* Misbehaves on purpose: blocks in read() outside a blocking region. */
static void *blocker(void *arg) {
    blocker_ctx *c = arg;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    rcgc_thread_set_name("wd-blocker");
    atomic_store(&c->tid, (long)syscall(SYS_gettid));
    atomic_store(&c->ready, 1);
    char ch;
    ssize_t n;
    do {
        n = read(c->pipe_rd, &ch, 1);
    } while (n < 0 && errno == EINTR);
    THREAD_CHECK(n == 1);
    while (!atomic_load(&c->stop)) {
        rcgc_safepoint();
        rcgc_blocking_begin();
        sleep_us(500);
        rcgc_blocking_end();
    }
    rcgc_thread_detach();
    return NULL;
}

/* Not attached: wakes the blocker after a while. */
static void *releaser(void *arg) {
    blocker_ctx *c = arg;
    sleep_us(c->release_after_us);
    THREAD_CHECK(write(c->pipe_wr, "x", 1) == 1);
    return NULL;
}

static void test_watchdog_names_blocking_thread(void **state) {
    (void)state;
    static blocker_ctx c;
    memset(&c, 0, sizeof c);
    c.release_after_us = 400000;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    c.pipe_rd = fds[0];
    c.pipe_wr = fds[1];
    pthread_t bt, rt;
    assert_int_equal(pthread_create(&bt, NULL, blocker, &c), 0);
    assert_true(wait_at_least(&c.ready, 1, 30.0));
    blocking_sleep_us(50000);       /* let it reach read() */

    /* Capture stderr while the pause waits. */
    FILE *cap = tmpfile();
    assert_non_null(cap);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(cap), STDERR_FILENO) >= 0);

    rcgc_stats before;
    rcgc_stats_get(&before);
    uint64_t t0 = now_ns();
    int rc = pthread_create(&rt, NULL, releaser, &c);
    if (rc == 0) {
        rcgc__stop_the_world();     /* waits for the blocker to come back from read() */
        rcgc__start_the_world();
    }
    uint64_t t1 = now_ns();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    assert_int_equal(rc, 0);

    char text[8192];
    rewind(cap);
    size_t len = fread(text, 1, sizeof text - 1, cap);
    text[len] = '\0';
    fclose(cap);
    fprintf(stderr, "%s", text);    /* keep it visible in the test log */

    rcgc_stats after;
    rcgc_stats_get(&after);
    atomic_store(&c.stop, 1);
    pthread_t both[2] = {bt, rt};
    join_all(both, 2);
    close(fds[0]);
    close(fds[1]);

    /* The pause could not end before the blocker was released. */
    assert_true(t1 - t0 >= (uint64_t)c.release_after_us * 1000u - 50000000u);
    assert_true(after.ttsp_max_ns >= (uint64_t)c.release_after_us * 1000u - 100000000u);
    assert_true(after.watchdog_reports >= before.watchdog_reports + 1);
    assert_non_null(strstr(text, "watchdog"));
    assert_non_null(strstr(text, "\"wd-blocker\""));
    char tid[64];
    snprintf(tid, sizeof tid, "tid %ld", atomic_load(&c.tid));
    assert_non_null(strstr(text, tid));
}

int main(void) {
    /* A crash on another thread must not land in cmocka's signal handler
     * (it would longjmp across threads): let it kill the process, so that
     * the log shows the signal and the sanitizers' reports. */
    setenv("CMOCKA_TEST_ABORT", "1", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pause_freezes_spinners, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attach_detach_during_pauses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocking_region_does_not_hold_pause, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocking_end_waits_for_pause, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counted_thread_stays_stopped_in_blocking_region, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_requesters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_exit_without_detach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_shutdown_cycles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog_names_blocking_thread, setup_watchdog,
                                        teardown_watchdog),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
