/*
 * refcount_test: biased reference counting (lib/refcount.c) and lock-free
 * loads (rcgc_load_ref, lib/object.c, lib/qsbr.c).
 *
 * The first tests walk the shared count through each of its states, one
 * step at a time, with a helper thread ("agent") that runs a function on
 * request while the test's thread waits in a blocking region; the header is
 * inspected after every step. The later tests race threads against each
 * other and check that every object dies exactly once, and never while a
 * thread still uses it (a destroyed object's canary is poisoned).
 *
 * cmocka assertions stay on the test's thread; other threads use
 * THREAD_CHECK (print and abort).
 */
#include <errno.h>
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
#include <time.h>

#include <cmocka.h>

#include "lib/object.h"
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

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Wait for an atomic flag from an attached thread: poll the safepoint,
 * sleep in a blocking region. */
static void wait_flag(_Atomic int *flag, int value) {
    while (atomic_load(flag) != value) {
        rcgc_safepoint();
        rcgc_blocking_begin();
        sched_yield();
        rcgc_blocking_end();
    }
}

/* ------------------------------------------------------------------------
 * The counted type: a canary that destroy poisons, an id, who destroyed it
 * ------------------------------------------------------------------------ */

#define CANARY_ALIVE 0x0A11CE0FC0FFEE00ull
#define CANARY_DEAD  0xDEADDEADDEADDEADull
#define MAX_IDS 8192

typedef struct {
    uint64_t canary;
    uint64_t id;        /* index into destroyed_by_id, or 0 */
    uint64_t seq;
} counted;

static _Atomic size_t destroys;
static _Atomic uintptr_t last_destroyer;       /* pthread_self() of the last destroy */
static _Atomic int destroyed_by_id[MAX_IDS];
static _Atomic int bad_canary_at_destroy;

static void counted_destroy(void *self) {
    counted *c = self;
    if (c->canary != CANARY_ALIVE)
        atomic_store(&bad_canary_at_destroy, 1);     /* destroyed twice, or never set up */
    c->canary = CANARY_DEAD;
    if (c->id && c->id < MAX_IDS)
        atomic_fetch_add(&destroyed_by_id[c->id], 1);
    atomic_store(&last_destroyer, (uintptr_t)pthread_self());
    atomic_fetch_add(&destroys, 1);
}

static const rcgc_type counted_type = {
    .name = "counted",
    .size = sizeof(counted),
    .destroy = counted_destroy,
};

static const rcgc_type counted_shared_read_type = {
    .name = "counted_shared_read",
    .size = sizeof(counted),
    .destroy = counted_destroy,
    .flags = RCGC_TYPE_SHARED_READ,
};

static void reset_counters(void) {
    atomic_store(&destroys, 0);
    atomic_store(&last_destroyer, 0);
    atomic_store(&bad_canary_at_destroy, 0);
    for (int i = 0; i < MAX_IDS; i++)
        atomic_store(&destroyed_by_id[i], 0);
}

static counted *new_counted(const rcgc_type *t, uint64_t id) {
    counted *c = rcgc_new(t);
    if (c) {
        c->canary = CANARY_ALIVE;
        c->id = id;
    }
    return c;
}

/* ------------------------------------------------------------------------
 * Header inspection
 * ------------------------------------------------------------------------ */

static intptr_t raw_shared(const void *o) { return rcgc__shared(rcgc__hdr(o)); }
static int state_of(const void *o) { return RCGC_SHARED_STATE(raw_shared(o)); }
static intptr_t shared_count(const void *o) { return RCGC_SHARED_COUNT(raw_shared(o)); }
static uint32_t local_of(const void *o) {
    return __atomic_load_n(&rcgc__hdr(o)->local, __ATOMIC_RELAXED);
}
static uintptr_t owner_of(const void *o) { return rcgc__owner(rcgc__hdr(o)); }
static uintptr_t me(void) { return (uintptr_t)rcgc__thread_current(); }
static uint32_t my_poll_bits(void) { return __atomic_load_n(&rcgc__tls_poll, __ATOMIC_RELAXED); }

/* ------------------------------------------------------------------------
 * Agents: a thread that runs functions on request
 * ------------------------------------------------------------------------ */

typedef struct agent {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void (*fn)(void *);
    void *arg;
    unsigned long posted, done;     /* mu */
    int quit;                       /* mu */
    const char *name;
    uintptr_t rcgc_self;            /* the agent's rcgc thread at start */
    pthread_t self;
} agent;

static void *agent_main(void *p) {
    agent *a = p;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    rcgc_thread_set_name(a->name);
    pthread_mutex_lock(&a->mu);
    a->rcgc_self = me();
    a->self = pthread_self();
    pthread_mutex_unlock(&a->mu);
    for (;;) {
        int attached = rcgc_is_attached();
        if (attached)
            rcgc_blocking_begin();
        pthread_mutex_lock(&a->mu);
        pthread_cond_broadcast(&a->cv);     /* started / done */
        while (a->posted == a->done && !a->quit)
            pthread_cond_wait(&a->cv, &a->mu);
        int quit = a->posted == a->done;
        void (*fn)(void *) = a->fn;
        void *arg = a->arg;
        pthread_mutex_unlock(&a->mu);
        if (attached)
            rcgc_blocking_end();
        if (quit)
            break;
        fn(arg);
        pthread_mutex_lock(&a->mu);
        a->done++;
        pthread_mutex_unlock(&a->mu);
    }
    if (rcgc_is_attached())
        rcgc_thread_detach();
    return NULL;
}

static void agent_start(agent *a, const char *name) {
    memset(a, 0, sizeof *a);
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->name = name;
    assert_int_equal(pthread_create(&a->th, NULL, agent_main, a), 0);
    rcgc_blocking_begin();
    pthread_mutex_lock(&a->mu);
    while (!a->rcgc_self)
        pthread_cond_wait(&a->cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
    rcgc_blocking_end();
}

/* Run fn(arg) on the agent and wait for it, in a blocking region. */
static void agent_call(agent *a, void (*fn)(void *), void *arg) {
    int attached = rcgc_is_attached();
    if (attached)
        rcgc_blocking_begin();
    pthread_mutex_lock(&a->mu);
    a->fn = fn;
    a->arg = arg;
    unsigned long ticket = ++a->posted;
    pthread_cond_broadcast(&a->cv);
    while (a->done < ticket)
        pthread_cond_wait(&a->cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
    if (attached)
        rcgc_blocking_end();
}

static void agent_stop(agent *a) {
    pthread_mutex_lock(&a->mu);
    a->quit = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    int attached = rcgc_is_attached();
    if (attached)
        rcgc_blocking_begin();
    pthread_join(a->th, NULL);
    if (attached)
        rcgc_blocking_end();
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
}

static void do_incref(void *o) { rcgc_incref(o); }
static void do_decref(void *o) { rcgc_decref(o); }
static void do_detach(void *unused) {
    (void)unused;
    rcgc_thread_detach();
}
static void do_attach(void *unused) {
    (void)unused;
    THREAD_CHECK(rcgc_thread_attach() == 0);
}

/* ------------------------------------------------------------------------
 * State transitions, one at a time
 * ------------------------------------------------------------------------ */

/* Owner increments and decrements: local count only; the last one frees at
 * once (nobody else ever counted). */
static void test_owner_inc_dec(void **state) {
    (void)state;
    reset_counters();
    counted *o = new_counted(&counted_type, 0);
    assert_int_equal(owner_of(o), me());
    assert_int_equal(local_of(o), 1);
    assert_int_equal(raw_shared(o), 0);
    for (int i = 0; i < 3; i++)
        rcgc_incref(o);
    assert_int_equal(local_of(o), 4);
    assert_int_equal(raw_shared(o), 0);
    assert_int_equal(rcgc_refcount(o), 4);
    for (int i = 0; i < 3; i++)
        rcgc_decref(o);
    assert_int_equal(local_of(o), 1);
    assert_int_equal(rcgc_refcount(o), 1);
    assert_int_equal(atomic_load(&destroys), 0);
    rcgc_decref(o);
    assert_int_equal(atomic_load(&destroys), 1);
    assert_int_equal(atomic_load(&last_destroyer), (uintptr_t)pthread_self());
    assert_false(atomic_load(&bad_canary_at_destroy));
}

/* A non-owner's increments and decrements go to the shared count; back at
 * zero it stays in the default state, nothing is queued. */
static void test_nonowner_incref_decref(void **state) {
    (void)state;
    reset_counters();
    agent b;
    agent_start(&b, "agent-b");
    counted *o = new_counted(&counted_type, 0);
    agent_call(&b, do_incref, o);
    assert_int_equal(shared_count(o), 1);
    assert_int_equal(state_of(o), RCGC_SHARED_DEFAULT);
    assert_int_equal(local_of(o), 1);
    assert_int_equal(owner_of(o), me());
    assert_int_equal(rcgc_refcount(o), 2);
    agent_call(&b, do_incref, o);
    assert_int_equal(shared_count(o), 2);
    assert_int_equal(rcgc_refcount(o), 3);
    agent_call(&b, do_decref, o);
    agent_call(&b, do_decref, o);
    assert_int_equal(raw_shared(o), 0);
    assert_int_equal(rcgc_refcount(o), 1);
    assert_false(my_poll_bits() & RCGC_POLL_MERGE);
    assert_int_equal(atomic_load(&destroys), 0);
    rcgc_decref(o);     /* local 1 -> 0 with shared 0: freed at once */
    assert_int_equal(atomic_load(&destroys), 1);
    assert_int_equal(atomic_load(&last_destroyer), (uintptr_t)pthread_self());
    agent_stop(&b);
}

/* A non-owner's decrement of a zero shared count queues the object to its
 * owner; the owner's safepoint merges it. */
static void test_nonowner_decref_queues_then_owner_merges(void **state) {
    (void)state;
    reset_counters();
    agent b;
    agent_start(&b, "agent-b");
    counted *o = new_counted(&counted_type, 0);
    rcgc_incref(o);                     /* the reference b will drop */
    assert_int_equal(local_of(o), 2);
    agent_call(&b, do_decref, o);
    assert_int_equal(raw_shared(o), RCGC_SHARED_QUEUED);   /* count 0, queued */
    assert_int_equal(local_of(o), 2);
    assert_int_equal(owner_of(o), me());
    assert_int_equal(rcgc_refcount(o), 1);  /* the queue holds b's decrement */
    assert_true(my_poll_bits() & RCGC_POLL_MERGE);
    assert_int_equal(atomic_load(&destroys), 0);

    rcgc_safepoint();                   /* the owner merges */
    assert_false(my_poll_bits() & RCGC_POLL_MERGE);
    assert_int_equal(state_of(o), RCGC_SHARED_MERGED);
    assert_int_equal(shared_count(o), 1);
    assert_int_equal(local_of(o), 0);
    assert_int_equal(owner_of(o), RCGC__UNOWNED);
    assert_int_equal(rcgc_refcount(o), 1);

    /* From now on all counting is atomic, the former owner's too. */
    rcgc_incref(o);
    assert_int_equal(shared_count(o), 2);
    assert_int_equal(local_of(o), 0);
    agent_call(&b, do_incref, o);
    assert_int_equal(shared_count(o), 3);
    agent_call(&b, do_decref, o);
    rcgc_decref(o);
    assert_int_equal(raw_shared(o), RCGC_SHARED_ONE | RCGC_SHARED_MERGED);
    assert_int_equal(atomic_load(&destroys), 0);
    rcgc_decref(o);
    assert_int_equal(atomic_load(&destroys), 1);
    assert_int_equal(atomic_load(&last_destroyer), (uintptr_t)pthread_self());
    agent_stop(&b);
}

/* While queued, further non-owner decrements take the count negative; the
 * merge folds them in. */
static void test_queued_count_goes_negative(void **state) {
    (void)state;
    reset_counters();
    agent b;
    agent_start(&b, "agent-b");
    counted *o = new_counted(&counted_type, 0);
    rcgc_incref(o);
    rcgc_incref(o);                     /* b gets two references */
    agent_call(&b, do_decref, o);
    assert_int_equal(raw_shared(o), RCGC_SHARED_QUEUED);
    agent_call(&b, do_decref, o);
    assert_int_equal(state_of(o), RCGC_SHARED_QUEUED);
    assert_int_equal(shared_count(o), -1);
    assert_int_equal(rcgc_refcount(o), 1);  /* 3 - 1 - queued 1 */
    rcgc_safepoint();
    assert_int_equal(raw_shared(o), RCGC_SHARED_ONE | RCGC_SHARED_MERGED);
    assert_int_equal(atomic_load(&destroys), 0);
    rcgc_decref(o);
    assert_int_equal(atomic_load(&destroys), 1);
    agent_stop(&b);
}

/* The queue holds the last reference: the owner's merge frees the object. */
static void test_queued_last_reference_freed_by_owner_merge(void **state) {
    (void)state;
    reset_counters();
    agent b;
    agent_start(&b, "agent-b");
    counted *o = new_counted(&counted_type, 0);     /* b gets our only reference */
    agent_call(&b, do_decref, o);
    assert_int_equal(raw_shared(o), RCGC_SHARED_QUEUED);
    assert_int_equal(rcgc_refcount(o), 0);
    assert_int_equal(atomic_load(&destroys), 0);    /* not before the owner looks */
    rcgc_safepoint();
    assert_int_equal(atomic_load(&destroys), 1);
    assert_int_equal(atomic_load(&last_destroyer), (uintptr_t)pthread_self());
    assert_false(atomic_load(&bad_canary_at_destroy));
    agent_stop(&b);
}

/* The owner's local count reaches 0 while others hold references: it gives
 * up ownership (merged state); the non-owner's last decrement frees it. */
static void test_owner_gives_up_then_nonowner_frees(void **state) {
    (void)state;
    reset_counters();
    agent b;
    agent_start(&b, "agent-b");
    counted *o = new_counted(&counted_type, 0);
    agent_call(&b, do_incref, o);
    agent_call(&b, do_incref, o);
    rcgc_decref(o);                     /* local 1 -> 0, shared 2 */
    assert_int_equal(local_of(o), 0);
    assert_int_equal(owner_of(o), RCGC__UNOWNED);
    assert_int_equal(state_of(o), RCGC_SHARED_MERGED);
    assert_int_equal(shared_count(o), 2);
    assert_int_equal(rcgc_refcount(o), 2);
    assert_int_equal(atomic_load(&destroys), 0);
    agent_call(&b, do_decref, o);
    assert_int_equal(raw_shared(o), RCGC_SHARED_ONE | RCGC_SHARED_MERGED);
    assert_int_equal(atomic_load(&destroys), 0);
    agent_call(&b, do_decref, o);       /* merged 1 -> 0: b frees it */
    assert_int_equal(atomic_load(&destroys), 1);
    assert_true(pthread_equal((pthread_t)atomic_load(&last_destroyer), b.self));
    assert_false(atomic_load(&bad_canary_at_destroy));
    agent_stop(&b);
}

/* An owner that detaches merges what it owns; the object lives on, and its
 * last reference, dropped by another thread, frees it. A thread that later
 * gets the same (recycled) thread state never matches the stale owner. */
static void *made_by_agent;
static void make_object(void *unused) {
    (void)unused;
    made_by_agent = new_counted(&counted_type, 0);
    rcgc_incref(made_by_agent);         /* local 2: one for the test's thread */
}

static uintptr_t attached_as;
static void incref_and_record(void *o) {
    attached_as = me();
    rcgc_incref(o);
}

static void test_owner_detaches_nonowner_frees(void **state) {
    (void)state;
    reset_counters();
    agent a;
    agent_start(&a, "agent-a");
    agent_call(&a, make_object, NULL);
    counted *o = made_by_agent;
    uintptr_t a_state = a.rcgc_self;
    assert_int_equal(owner_of(o), a_state);
    assert_int_equal(local_of(o), 2);
    agent_call(&a, do_decref, o);       /* a drops its own reference */
    agent_call(&a, do_detach, NULL);
    assert_int_equal(owner_of(o), RCGC__UNOWNED);
    assert_int_equal(state_of(o), RCGC_SHARED_MERGED);
    assert_int_equal(shared_count(o), 1);
    assert_int_equal(local_of(o), 0);
    assert_int_equal(atomic_load(&destroys), 0);

    /* Re-attach: the thread state is usually recycled (same address). */
    agent_call(&a, do_attach, NULL);
    agent_call(&a, incref_and_record, o);
    if (attached_as == a_state)
        print_message("(the thread state was recycled at the same address)\n");
    assert_int_equal(local_of(o), 0);   /* not counted as its owner */
    assert_int_equal(shared_count(o), 2);
    agent_call(&a, do_decref, o);
    assert_int_equal(shared_count(o), 1);
    rcgc_decref(o);
    assert_int_equal(atomic_load(&destroys), 1);
    assert_int_equal(atomic_load(&last_destroyer), (uintptr_t)pthread_self());
    agent_stop(&a);
}

/* An object queued to an owner that then detaches without a safepoint:
 * the detach drains the queue and frees it, exactly once. */
static void test_queued_to_detaching_owner(void **state) {
    (void)state;
    reset_counters();
    agent a;
    agent_start(&a, "agent-a");
    agent_call(&a, make_object, NULL);
    counted *o = made_by_agent;
    agent_call(&a, do_decref, o);       /* local 1: our reference */
    rcgc_decref(o);                     /* shared 0: queued to a */
    assert_int_equal(raw_shared(o), RCGC_SHARED_QUEUED);
    assert_int_equal(atomic_load(&destroys), 0);
    agent_call(&a, do_detach, NULL);
    assert_int_equal(atomic_load(&destroys), 1);
    assert_true(pthread_equal((pthread_t)atomic_load(&last_destroyer), a.self));
    assert_false(atomic_load(&bad_canary_at_destroy));
    agent_stop(&a);
}

/* ------------------------------------------------------------------------
 * Races
 * ------------------------------------------------------------------------ */

/* Eight threads count one object whose owner detaches half way. */
#define MANY_WORKERS 8

typedef struct {
    counted *obj;
    _Atomic int go;
    _Atomic long progress;      /* worker iterations done, all workers */
    _Atomic int owner_detached;
    _Atomic int ready;
    long iters;
} many_ctx;

static void *many_worker(void *arg) {
    many_ctx *c = arg;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    atomic_fetch_add(&c->ready, 1);
    wait_flag(&c->go, 1);
    counted *o = c->obj;
    /* At least iters rounds, and on until the owner has detached: its
     * detach always overlaps the counting. */
    for (long i = 0; i < c->iters || !atomic_load(&c->owner_detached); i++) {
        rcgc_incref(o);
        THREAD_CHECK(o->canary == CANARY_ALIVE);
        if (i & 1) {
            rcgc_incref(o);
            rcgc_decref(o);
        }
        rcgc_decref(o);
        if ((i & 63) == 0) {
            rcgc_safepoint();
            atomic_fetch_add(&c->progress, 64);
        }
    }
    THREAD_CHECK(o->canary == CANARY_ALIVE);
    rcgc_decref(o);             /* the reference the owner gave us */
    rcgc_thread_detach();
    return NULL;
}

static void *many_owner(void *arg) {
    many_ctx *c = arg;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    rcgc_thread_set_name("owner");
    counted *o = new_counted(&counted_type, 0);
    for (int i = 0; i < MANY_WORKERS + 1; i++)   /* one per worker, one for the test */
        rcgc_incref(o);
    c->obj = o;
    wait_flag(&c->ready, MANY_WORKERS);
    atomic_store(&c->go, 1);
    long half = (long)MANY_WORKERS * c->iters / 2;
    while (atomic_load(&c->progress) < half) {
        rcgc_incref(o);
        rcgc_decref(o);
        rcgc_safepoint();
        sched_yield();
    }
    rcgc_decref(o);             /* our own reference */
    rcgc_thread_detach();       /* merges o (if still owned) while workers count */
    atomic_store(&c->owner_detached, 1);
    return NULL;
}

static void test_many_threads_owner_detaches_midway(void **state) {
    (void)state;
    reset_counters();
    static many_ctx c;
    memset(&c, 0, sizeof c);
    c.iters = SCALE(200000, 20000);
    pthread_t owner, workers[MANY_WORKERS];
    assert_int_equal(pthread_create(&owner, NULL, many_owner, &c), 0);
    for (int i = 0; i < MANY_WORKERS; i++)
        assert_int_equal(pthread_create(&workers[i], NULL, many_worker, &c), 0);
    rcgc_blocking_begin();
    pthread_join(owner, NULL);
    for (int i = 0; i < MANY_WORKERS; i++)
        pthread_join(workers[i], NULL);
    rcgc_blocking_end();
    counted *o = c.obj;
    assert_int_equal(atomic_load(&destroys), 0);        /* alive: we hold a reference */
    assert_int_equal(o->canary, CANARY_ALIVE);
    assert_int_equal(owner_of(o), RCGC__UNOWNED);
    assert_int_equal(raw_shared(o), RCGC_SHARED_ONE | RCGC_SHARED_MERGED);
    assert_int_equal(rcgc_refcount(o), 1);
    rcgc_decref(o);
    assert_int_equal(atomic_load(&destroys), 1);
    assert_false(atomic_load(&bad_canary_at_destroy));
}

/* Objects queued to (or merged by) an owner that detaches at the same time
 * as another thread drops their last references: each dies exactly once. */
#define RACE_OBJECTS 512

typedef struct {
    counted *objs[RACE_OBJECTS];
    _Atomic int published;
    _Atomic int go;
    uint64_t first_id;
} race_ctx;

static void *race_owner(void *arg) {
    race_ctx *c = arg;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    for (int i = 0; i < RACE_OBJECTS; i++) {
        c->objs[i] = new_counted(&counted_type, c->first_id + (uint64_t)i);
        THREAD_CHECK(c->objs[i] != NULL);
        if (i & 1)
            rcgc_incref(c->objs[i]);    /* odd ones: we keep a reference too */
    }
    atomic_store(&c->published, 1);
    while (!atomic_load(&c->go))
        sched_yield();
    for (int i = 1; i < RACE_OBJECTS; i += 4)
        rcgc_decref(c->objs[i]);        /* some of ours before we go */
    rcgc_thread_detach();               /* drains and merges while the test decrefs */
    return NULL;
}

static void test_queue_races_owner_detach(void **state) {
    (void)state;
    reset_counters();
    int rounds = SCALE(3000, 300);
    static race_ctx c;
    for (int r = 0; r < rounds; r++) {
        memset(&c, 0, sizeof c);
        c.first_id = 1 + (uint64_t)(r % 8) * RACE_OBJECTS;
        for (int i = 0; i < RACE_OBJECTS; i++)
            atomic_store(&destroyed_by_id[c.first_id + (uint64_t)i], 0);
        size_t destroys_before = atomic_load(&destroys);
        pthread_t owner;
        assert_int_equal(pthread_create(&owner, NULL, race_owner, &c), 0);
        wait_flag(&c.published, 1);
        atomic_store(&c.go, 1);
        for (int i = 0; i < RACE_OBJECTS; i++) {
            rcgc_decref(c.objs[i]);     /* shared 0: queued, or merged by the detach */
            if ((i & 31) == 0)
                rcgc_safepoint();
        }
        rcgc_blocking_begin();
        pthread_join(owner, NULL);
        rcgc_blocking_end();
        /* Odd objects whose owner kept a reference (i % 4 == 3) are alive
         * and merged now: drop that reference for the gone owner. */
        for (int i = 3; i < RACE_OBJECTS; i += 4) {
            assert_int_equal(atomic_load(&destroyed_by_id[c.first_id + (uint64_t)i]), 0);
            assert_int_equal(owner_of(c.objs[i]), RCGC__UNOWNED);
            assert_int_equal(rcgc_refcount(c.objs[i]), 1);
            rcgc_decref(c.objs[i]);
        }
        for (int i = 0; i < RACE_OBJECTS; i++) {
            int n = atomic_load(&destroyed_by_id[c.first_id + (uint64_t)i]);
            if (n != 1)
                fail_msg("round %d: object %d destroyed %d times", r, i, n);
        }
        assert_int_equal(atomic_load(&destroys) - destroys_before, RACE_OBJECTS);
        assert_false(atomic_load(&bad_canary_at_destroy));
    }
}

/* The tightest form of that race: the test's thread drops each object's
 * last reference the moment the detaching owner's merge makes it MERGED.
 * The merge must be complete by then (nothing may write to the header of
 * an object another thread can already free), and the object dies once. */
typedef struct {
    counted *objs[RACE_OBJECTS];
    _Atomic int published;
    _Atomic int go;
    uint64_t first_id;
} merge_race_ctx;

static void *merge_race_owner(void *arg) {
    merge_race_ctx *c = arg;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    for (int i = 0; i < RACE_OBJECTS; i++) {
        c->objs[i] = new_counted(&counted_type, c->first_id + (uint64_t)i);   /* the test's */
        THREAD_CHECK(c->objs[i] != NULL);
    }
    atomic_store(&c->published, 1);
    while (!atomic_load(&c->go))
        sched_yield();
    rcgc_thread_detach();       /* merges each object: MERGED, count 1 */
    return NULL;
}

static void test_merge_races_last_decref(void **state) {
    (void)state;
    reset_counters();
    int rounds = SCALE(400, 60);
    static merge_race_ctx c;
    for (int r = 0; r < rounds; r++) {
        memset(&c, 0, sizeof c);
        c.first_id = 1 + (uint64_t)(r % 8) * RACE_OBJECTS;
        for (int i = 0; i < RACE_OBJECTS; i++)
            atomic_store(&destroyed_by_id[c.first_id + (uint64_t)i], 0);
        size_t destroys_before = atomic_load(&destroys);
        pthread_t owner;
        assert_int_equal(pthread_create(&owner, NULL, merge_race_owner, &c), 0);
        wait_flag(&c.published, 1);
        atomic_store(&c.go, 1);
        for (int i = 0; i < RACE_OBJECTS; i++) {
            /* No pause can be requested in this test: spinning is fine. */
            while (state_of(c.objs[i]) != RCGC_SHARED_MERGED)
                ;
            rcgc_decref(c.objs[i]);     /* merged 1 -> 0: freed here */
        }
        rcgc_blocking_begin();
        pthread_join(owner, NULL);
        rcgc_blocking_end();
        for (int i = 0; i < RACE_OBJECTS; i++) {
            int n = atomic_load(&destroyed_by_id[c.first_id + (uint64_t)i]);
            if (n != 1)
                fail_msg("round %d: object %d destroyed %d times", r, i, n);
        }
        assert_int_equal(atomic_load(&destroys) - destroys_before, RACE_OBJECTS);
        /* The freed blocks are intact free blocks: allocating them all again
         * (here, and by the next round's owner) must work. */
        static void *again[RACE_OBJECTS];
        for (int i = 0; i < RACE_OBJECTS; i++)
            again[i] = new_counted(&counted_type, 0);
        for (int i = 0; i < RACE_OBJECTS; i++)
            rcgc_decref(again[i]);
        rcgc_heap_collect();
    }
    assert_false(atomic_load(&bad_canary_at_destroy));
}

/* ------------------------------------------------------------------------
 * Lock-free loads (rcgc_load_ref) and grace periods
 * ------------------------------------------------------------------------ */

#define READERS 3

typedef struct {
    void *slot;
    _Atomic int stop;
    _Atomic int readers_ready;
    _Atomic long loads[READERS];
    _Atomic int bad;            /* a reader saw a dead or stale object */
} lr_ctx;

typedef struct {
    lr_ctx *c;
    int index;
} lr_reader_arg;

static void *lr_reader(void *arg) {
    lr_reader_arg *ra = arg;
    lr_ctx *c = ra->c;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    atomic_fetch_add(&c->readers_ready, 1);
    uint64_t last_seq = 0;
    long loads = 0;
    while (!atomic_load(&c->stop)) {
        counted *p = rcgc_load_ref(&c->slot);
        if (p) {
            if (p->canary != CANARY_ALIVE || p->seq < last_seq)
                atomic_store(&c->bad, 1);
            last_seq = p->seq;
            loads++;
            /* Keep it a little while: the writer may replace and drop it. */
            if ((loads & 7) == 0)
                sched_yield();
            if (p->canary != CANARY_ALIVE)
                atomic_store(&c->bad, 1);
            rcgc_decref(p);
        }
        rcgc_safepoint();
    }
    atomic_store(&c->loads[ra->index], loads);
    rcgc_thread_detach();
    return NULL;
}

static void test_load_ref_races_writer(void **state) {
    (void)state;
    reset_counters();
    static lr_ctx c;
    memset(&c, 0, sizeof c);
    long n = SCALE(50000, 5000);
    pthread_t readers[READERS];
    lr_reader_arg args[READERS];
    for (int i = 0; i < READERS; i++) {
        args[i] = (lr_reader_arg){&c, i};
        assert_int_equal(pthread_create(&readers[i], NULL, lr_reader, &args[i]), 0);
    }
    while (atomic_load(&c.readers_ready) < READERS) {
        rcgc_blocking_begin();
        sched_yield();
        rcgc_blocking_end();
    }
    /* The writer (this thread) replaces the object and drops it each time:
     * the slot holds the only reference. */
    /* At least n replacements, and on until the readers have loaded
     * something (on 2 busy cores they may not have run yet), up to 100 n. */
    long i = 1;
    for (;; i++) {
        counted *o = new_counted(&counted_shared_read_type, 0);
        o->seq = (uint64_t)i;
        rcgc_set(&c.slot, o);
        rcgc_decref(o);
        if ((i & 15) == 0)
            rcgc_safepoint();
        if ((i & 255) == 0)
            sched_yield();
        if (i >= n) {
            long seen = 0;
            for (int r = 0; r < READERS; r++)
                seen += atomic_load(&c.loads[r]);
            if (seen > 0 || i >= 100 * n)
                break;
        }
    }
    n = i;
    rcgc_set(&c.slot, NULL);
    atomic_store(&c.stop, 1);
    rcgc_blocking_begin();
    for (int i = 0; i < READERS; i++)
        pthread_join(readers[i], NULL);
    rcgc_blocking_end();
    long total = 0;
    for (int i = 0; i < READERS; i++)
        total += atomic_load(&c.loads[i]);
    print_message("(%ld objects replaced, %ld successful loads)\n", n, total);
    assert_false(atomic_load(&c.bad));
    assert_true(total > 0);
    assert_int_equal(atomic_load(&destroys), (size_t)n);
    assert_false(atomic_load(&bad_canary_at_destroy));

    /* Every deferred free is done by shutdown. */
    rcgc_shutdown();
    assert_int_equal(rcgc_init(NULL), 0);
    rcgc_stats st;
    rcgc_stats_get(&st);
    assert_int_equal(st.objects_shared_read_pending, 0);
}

/* The memory of a SHARED_READ object is not reused while a reader that may
 * have loaded it has not passed a quiescent state; once it has, deferred
 * frees complete. */
typedef struct {
    _Atomic int in_read;        /* the reader is in its read-side section */
    _Atomic int release;        /* the test lets it pass quiescent states */
    _Atomic int stop;
} gp_ctx;

static void *gp_reader(void *arg) {
    gp_ctx *c = arg;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    rcgc_safepoint();
    atomic_store(&c->in_read, 1);
    /* A read-side section: no safepoint, no rcgc call. (No pause is
     * requested in this test, so not polling holds nobody up.) */
    while (!atomic_load(&c->release))
        sched_yield();
    while (!atomic_load(&c->stop)) {
        rcgc_safepoint();       /* quiescent states */
        sched_yield();
    }
    rcgc_thread_detach();
    return NULL;
}

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static void test_shared_read_grace_period(void **state) {
    (void)state;
    reset_counters();
    enum { M = 600 };
    static uintptr_t freed[M];
    static counted *objs[M];
    rcgc_stats st;
    rcgc_stats_get(&st);
    assert_int_equal(st.objects_shared_read_pending, 0);

    static gp_ctx c;
    memset(&c, 0, sizeof c);
    pthread_t reader;
    assert_int_equal(pthread_create(&reader, NULL, gp_reader, &c), 0);
    wait_flag(&c.in_read, 1);

    for (int i = 0; i < M; i++) {
        objs[i] = new_counted(&counted_shared_read_type, 0);
        objs[i]->seq = (uint64_t)i;
        freed[i] = (uintptr_t)objs[i];
    }
    for (int i = 0; i < M; i++)
        rcgc_decref(objs[i]);
    assert_int_equal(atomic_load(&destroys), M);         /* dead at once ... */
    rcgc_stats_get(&st);
    assert_int_equal(st.objects_shared_read_pending, M); /* ... memory deferred */

    /* Allocate and drop more of the same size while the reader is inside:
     * none of the deferred blocks may come back. */
    qsort(freed, M, sizeof freed[0], cmp_ptr);
    for (int round = 0; round < 4; round++) {
        static counted *fresh[2 * M];
        for (int i = 0; i < 2 * M; i++) {
            fresh[i] = new_counted(&counted_type, 0);
            uintptr_t key = (uintptr_t)fresh[i];
            if (bsearch(&key, freed, M, sizeof freed[0], cmp_ptr))
                fail_msg("a deferred block came back before the grace period ended: %p",
                         (void *)fresh[i]);
        }
        for (int i = 0; i < 2 * M; i++)
            rcgc_decref(fresh[i]);
        rcgc_safepoint();
        rcgc_blocking_begin();
        sleep_ms(5);
        rcgc_blocking_end();
    }
    /* The dead objects' memory is intact (destroy's poison, the seq). */
    for (int i = 0; i < M; i++) {
        assert_int_equal(objs[i]->canary, CANARY_DEAD);
        assert_int_equal(objs[i]->seq, (uint64_t)i);
    }
    rcgc_stats_get(&st);
    assert_int_equal(st.objects_shared_read_pending, M);

    /* The reader passes quiescent states: the grace periods end, and the
     * deferred memory is freed as the runtime goes on (more SHARED_READ
     * frees, safepoints). */
    atomic_store(&c.release, 1);
    double deadline = now_s() + 20.0;
    size_t pending = M;
    while (now_s() < deadline) {
        for (int i = 0; i < 50; i++)
            rcgc_decref(new_counted(&counted_shared_read_type, 0));
        rcgc_safepoint();
        rcgc_blocking_begin();
        sleep_ms(1);
        rcgc_blocking_end();
        rcgc_safepoint();
        rcgc_stats_get(&st);
        pending = st.objects_shared_read_pending;
        if (pending < M / 2)
            break;
    }
    if (pending >= M / 2)
        fail_msg("deferred SHARED_READ frees still pending after the reader passed quiescent "
                 "states: %zu",
                 pending);
    atomic_store(&c.stop, 1);
    rcgc_blocking_begin();
    pthread_join(reader, NULL);
    rcgc_blocking_end();

    /* At shutdown every deferred free completes. */
    rcgc_shutdown();
    assert_int_equal(rcgc_init(NULL), 0);
    rcgc_stats_get(&st);
    assert_int_equal(st.objects_shared_read_pending, 0);
    assert_false(atomic_load(&bad_canary_at_destroy));
}

/* rcgc_load_ref on an empty slot, by the owner (a local increment) and by
 * another thread (a shared increment), then the last reference dropped by
 * the other thread. */
static void *b_loaded;
static void load_into(void *slot) { b_loaded = rcgc_load_ref(slot); }

static void test_load_ref_basic(void **state) {
    (void)state;
    reset_counters();
    void *slot = NULL;
    assert_null(rcgc_load_ref(&slot));
    counted *o = new_counted(&counted_shared_read_type, 0);
    assert_int_equal(raw_shared(o), RCGC_SHARED_WEAKREFS);  /* never the free-at-once shortcut */
    rcgc_set(&slot, o);
    assert_int_equal(rcgc_refcount(o), 2);
    counted *p = rcgc_load_ref(&slot);
    assert_ptr_equal(p, o);
    assert_int_equal(local_of(o), 3);
    rcgc_decref(p);
    rcgc_decref(o);
    assert_int_equal(rcgc_refcount(o), 1);     /* the slot's */

    agent b;
    agent_start(&b, "agent-b");
    b_loaded = NULL;
    agent_call(&b, load_into, &slot);
    assert_ptr_equal(b_loaded, o);
    assert_int_equal(raw_shared(o), RCGC_SHARED_ONE | RCGC_SHARED_WEAKREFS);
    assert_int_equal(rcgc_refcount(o), 2);
    rcgc_set(&slot, NULL);              /* the owner drops the slot's reference */
    assert_null(slot);
    assert_int_equal(raw_shared(o), RCGC_SHARED_ONE | RCGC_SHARED_MERGED);
    assert_int_equal(owner_of(o), RCGC__UNOWNED);
    assert_int_equal(atomic_load(&destroys), 0);
    b_loaded = NULL;
    agent_call(&b, load_into, &slot);   /* empty slot */
    assert_null(b_loaded);
    agent_call(&b, do_decref, o);       /* b's reference was the last */
    assert_int_equal(atomic_load(&destroys), 1);
    assert_true(pthread_equal((pthread_t)atomic_load(&last_destroyer), b.self));
    agent_stop(&b);
}

int main(void) {
    /* A crash on another thread must not land in cmocka's signal handler
     * (it would longjmp across threads): let it kill the process, so that
     * the log shows the signal and the sanitizers' reports. */
    setenv("CMOCKA_TEST_ABORT", "1", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_owner_inc_dec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonowner_incref_decref, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonowner_decref_queues_then_owner_merges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queued_count_goes_negative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queued_last_reference_freed_by_owner_merge, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_owner_gives_up_then_nonowner_frees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_detaches_nonowner_frees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queued_to_detaching_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_ref_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_ref_races_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_read_grace_period, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_threads_owner_detaches_midway, setup, teardown),
        /* Last: when these catch the merge race they crash the process. */
        cmocka_unit_test_setup_teardown(test_queue_races_owner_detach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_races_last_decref, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
