/*
 * gc_misuse_test: fatal errors of the cycle collector and of pauses, and
 * the internal checks that no API call can reach deterministically, each
 * in a forked child (see test_util.h, "Fatal-error tests"):
 *   - a traverse that visits a pointer rcgc did not allocate, or more
 *     references than the object's count holds: the message names the
 *     object and type whose traverse ran, the visited object, the
 *     collection and the thread that started it;
 *   - a collection started inside a blocking region;
 *   - a traverse that takes a snapshot (a pause inside the pause);
 *   - internal entries: a start-the-world by a thread that did not stop
 *     it, a merge that takes a merged count below zero (reachable only
 *     through a race between a non-owner's decrement and the owner's
 *     detach), and a broken internal invariant (RCGC_ASSERT), to show
 *     that those messages name the thread and the place too.
 * The collector runs with one worker, so that traverse runs on the
 * collecting thread and the message can name the object it traversed.
 */
#define TEST_NO_TSAN_ATEXIT_SLEEP 1   /* children die on second threads */
#include "test_util.h"

#include "lib/object.h"
#include "lib/os.h"
#include "lib/safepoint.h"

#define MAIN_NAME "gc-misuse-main-thread"

static void child_init(void) {
    rcgc_set_fatal_handler(test_fatal_handler);
    rcgc_config cfg = {.gc_workers = 1, .gc_threshold = -1};
    if (rcgc_init(&cfg) != 0)
        _exit(3);
    rcgc_thread_set_name(MAIN_NAME);
}

typedef struct {
    void *ref;
} holder;

/* ------------------------------------------------------------------------
 * traverse visits a pointer that is not an rcgc object
 * ------------------------------------------------------------------------ */
static _Alignas(16) char not_an_object[64];

static int foreign_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    (void)self;
    RCGC_VISIT(not_an_object + 16);
    return 0;
}
static const rcgc_type foreign_visitor = {.name = "foreign_visitor", .size = sizeof(holder),
                                          .traverse = foreign_traverse};

static void foreign_visit_child(void *arg) {
    (void)arg;
    child_init();
    void *o = rcgc_new(&foreign_visitor);
    test_say("OBJ=%p\nPTR=%p\n", o, (void *)(not_an_object + 16));
    test_say_thread("THREAD");
    rcgc_collect();
    _exit(0);
}

static void test_traverse_visits_foreign_pointer(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(foreign_visit_child, NULL, &out);
    char want[200];
    snprintf(want, sizeof want, "a traverse function visited %s, which is not an object rcgc "
                                "allocated", test_value_of(out, "PTR"));
    test_fatal_expect(msg, want);
    snprintf(want, sizeof want, "traversed: object %s of type 'foreign_visitor'",
             test_value_of(out, "OBJ"));
    test_fatal_expect(msg, want);
    test_fatal_expect(msg, "during cycle collection #1, started by rcgc thread #1");
    test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
}

/* ------------------------------------------------------------------------
 * traverse visits more references than the count holds
 * ------------------------------------------------------------------------ */
static void *overvisited;

static int overvisit_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    holder *h = self;
    RCGC_VISIT(h->ref);
    RCGC_VISIT(h->ref);     /* one reference, visited twice */
    return 0;
}
static void holder_clear(void *self) { rcgc_set(&((holder *)self)->ref, NULL); }
static const rcgc_type overvisitor = {.name = "overvisitor", .size = sizeof(holder),
                                      .traverse = overvisit_traverse, .clear = holder_clear};
static int leaf_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    (void)self;
    (void)visit;
    (void)arg;
    return 0;
}
static const rcgc_type overvisited_type = {.name = "overvisited_leaf", .size = 16,
                                           .traverse = leaf_traverse};

static void overvisit_child(void *arg) {
    (void)arg;
    child_init();
    holder *h = rcgc_new(&overvisitor);
    overvisited = rcgc_new(&overvisited_type);
    rcgc_set(&h->ref, overvisited);
    rcgc_decref(overvisited);       /* h holds the only reference */
    test_say("OBJ=%p\nREFERRER=%p\n", overvisited, (void *)h);
    test_say_thread("THREAD");
    rcgc_collect();
    _exit(0);
}

static void test_traverse_overcounts(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(overvisit_child, NULL, &out);
    test_fatal_expect(msg, "traverse functions visit more references to an object than its "
                           "reference count holds");
    char want[200];
    snprintf(want, sizeof want, "object %s of type 'overvisited_leaf'", test_value_of(out, "OBJ"));
    test_fatal_expect(msg, want);
    test_fatal_expect(msg, "the collector's count");   /* its owner field, during the pause */
    snprintf(want, sizeof want, "its last visitor: object %s of type 'overvisitor'",
             test_value_of(out, "REFERRER"));
    test_fatal_expect(msg, want);
    test_fatal_expect(msg, "during cycle collection #1, started by rcgc thread #1");
    test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
}

/* The same with two collector workers: the decrements are gathered and
 * subtracted atomically, so the message cannot name the last visitor, and
 * the worker that finds it may be a collector thread (not attached). */
static void overvisit_parallel_child(void *arg) {
    (void)arg;
    rcgc_set_fatal_handler(test_fatal_handler);
    setenv("RCGC_GC_PAGES_PER_WORKER", "1", 1);
    rcgc_config cfg = {.gc_workers = 2, .gc_threshold = -1};
    if (rcgc_init(&cfg) != 0)
        _exit(3);
    rcgc_thread_set_name(MAIN_NAME);
    static void *filler[4000];     /* several pages of tracked objects */
    for (int i = 0; i < 4000; i++)
        filler[i] = rcgc_new(&overvisited_type);
    holder *h = rcgc_new(&overvisitor);
    overvisited = rcgc_new(&overvisited_type);
    rcgc_set(&h->ref, overvisited);
    rcgc_decref(overvisited);
    test_say("OBJ=%p\n", overvisited);
    test_say_thread("THREAD");
    rcgc_collect();
    _exit(0);
}

static void test_traverse_overcounts_parallel(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(overvisit_parallel_child, NULL, &out);
    test_fatal_expect(msg, "traverse functions visit more references to an object than its "
                           "reference count holds");
    char want[200];
    snprintf(want, sizeof want, "object %s of type 'overvisited_leaf'", test_value_of(out, "OBJ"));
    test_fatal_expect(msg, want);
    test_fatal_expect(msg, "during cycle collection #1, started by rcgc thread #1");
    /* The collecting thread, or a collector thread. */
    char main_thread[300];
    snprintf(main_thread, sizeof main_thread, "calling thread: %s", test_value_of(out, "THREAD"));
    bool collector_thread = strstr(msg, "calling thread: tid ") &&
                            strstr(msg, " 'rcgc-gc-1', not attached to rcgc");
    if (!strstr(msg, main_thread) && !collector_thread)
        fail_msg("the message names neither the collecting thread nor a collector thread:\n%s",
                 msg);
}

/* ------------------------------------------------------------------------
 * A collection inside a blocking region
 * ------------------------------------------------------------------------ */
static void collect_blocking_child(void *arg) {
    (void)arg;
    child_init();
    rcgc_blocking_begin();
    test_say_thread("THREAD");
    rcgc_collect();
    _exit(0);
}

static void test_collect_in_blocking_region(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(collect_blocking_child, NULL, &out);
    test_fatal_expect(msg, "rcgc_collect inside a blocking region");
    test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
}

/* ------------------------------------------------------------------------
 * A traverse that takes a snapshot: a pause inside the pause
 * ------------------------------------------------------------------------ */
static int count_one(void *o, void *arg) {
    (void)o;
    (*(int *)arg)++;
    return 0;
}
static int snapshot_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    (void)self;
    (void)visit;
    (void)arg;
    int n = 0;
    rcgc_gc_get_objects(count_one, &n);
    return 0;
}
static const rcgc_type snapshot_taker = {.name = "snapshot_taker", .size = 16,
                                         .traverse = snapshot_traverse};

static void nested_pause_child(void *arg) {
    (void)arg;
    child_init();
    void *o = rcgc_new(&snapshot_taker);
    (void)o;
    test_say_thread("THREAD");
    rcgc_collect();
    _exit(0);
}

static void test_snapshot_inside_traverse(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(nested_pause_child, NULL, &out);
    test_fatal_expect(msg, "stop-the-world requested while this thread already holds the world "
                           "stopped");
    test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
}

/* ------------------------------------------------------------------------
 * Introspection of a pointer rcgc did not allocate
 * ------------------------------------------------------------------------ */
static int visit_nothing(void *o, void *arg) {
    (void)o;
    (void)arg;
    return 0;
}

static void referrers_foreign_child(void *arg) {
    child_init();
    test_say("PTR=%p\n", (void *)(not_an_object + 16));
    test_say_thread("THREAD");
    if (arg)
        rcgc_gc_get_referents(not_an_object + 16, visit_nothing, NULL);
    else
        rcgc_gc_get_referrers(not_an_object + 16, visit_nothing, NULL);
    _exit(0);
}

static void test_introspection_of_foreign_pointer(void **state) {
    TEST_BEGIN(state);
    for (int referents = 0; referents < 2; referents++) {
        const char *out;
        const char *msg = test_fatal_run(referrers_foreign_child, referents ? (void *)1 : NULL, &out);
        test_fatal_expect(msg, referents ? "rcgc_gc_get_referents of a pointer rcgc did not allocate"
                                         : "rcgc_gc_get_referrers of a pointer rcgc did not allocate");
        char want[120];
        snprintf(want, sizeof want, "pointer %s: not an object", test_value_of(out, "PTR"));
        test_fatal_expect(msg, want);
        test_fatal_expect(msg, "detected at lib/gc.c:");
        test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
    }
}

/* ------------------------------------------------------------------------
 * Internal entries
 * ------------------------------------------------------------------------ */
static void start_world_child(void *arg) {
    (void)arg;
    child_init();
    test_say_thread("THREAD");
    rcgc__start_the_world();
    _exit(0);
}

static void test_start_world_not_stopped(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(start_world_child, NULL, &out);
    test_fatal_expect(msg, "start-the-world from a thread that did not stop it");
    test_fatal_expect(msg, "detected at lib/safepoint.c:");
    test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
}

/* A merged object (its owner detached) whose count a merge takes below
 * zero: the path a non-owner's queued decrement takes when it races with
 * the owner's detach. */
static const rcgc_type plain = {.name = "merged_victim", .size = 16};
static void *merged;

static void *make_merged(void *arg) {
    (void)arg;
    if (rcgc_thread_attach() != 0)
        _exit(6);
    merged = rcgc_new(&plain);
    rcgc_thread_detach();      /* merges it: count 1, owner none */
    return NULL;
}

static void merge_below_zero_child(void *arg) {
    (void)arg;
    child_init();
    pthread_t t;
    if (pthread_create(&t, NULL, make_merged, NULL) != 0)
        _exit(5);
    rcgc_blocking_begin();
    pthread_join(t, NULL);
    rcgc_blocking_end();
    test_say("OBJ=%p\n", merged);
    test_say_thread("THREAD");
    rcgc__merge(rcgc__hdr(merged), -2);
    _exit(0);
}

static void test_merge_of_merged_below_zero(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(merge_below_zero_child, NULL, &out);
    test_fatal_expect(msg, "reference count below zero while merging");
    char want[200];
    snprintf(want, sizeof want, "object %s of type 'merged_victim'", test_value_of(out, "OBJ"));
    test_fatal_expect(msg, want);
    test_fatal_expect(msg, "owner none (counts merged)");
    test_fatal_expect(msg, "detected at lib/refcount.c:");
    test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
}

/* An internal invariant (RCGC_ASSERT, on at the default debug level 1). */
static void assert_child(void *arg) {
    (void)arg;
    child_init();
    test_say_thread("THREAD");
    (void)rcgc__os_reserve_aligned(rcgc__os_page_size(), 3 * rcgc__os_page_size());
    _exit(0);
}

static void test_internal_invariant(void **state) {
    TEST_BEGIN(state);
#if RCGC_DEBUG_LEVEL >= 1
    const char *out;
    const char *msg = test_fatal_run(assert_child, NULL, &out);
    test_fatal_expect(msg, "internal invariant broken: ");
    test_fatal_expect(msg, "detected at lib/os.c:");
    test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
#else
    skip();
#endif
}

int main(void) {
    test_main_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traverse_visits_foreign_pointer),
        cmocka_unit_test(test_traverse_overcounts),
        cmocka_unit_test(test_traverse_overcounts_parallel),
        cmocka_unit_test(test_collect_in_blocking_region),
        cmocka_unit_test(test_snapshot_inside_traverse),
        cmocka_unit_test(test_introspection_of_foreign_pointer),
        cmocka_unit_test(test_start_world_not_stopped),
        cmocka_unit_test(test_merge_of_merged_below_zero),
        cmocka_unit_test(test_internal_invariant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
