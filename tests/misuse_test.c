/*
 * Misuse of the raw heap, the runtime and threads is fatal, and the fatal
 * message says what went wrong: each case runs in a forked child whose
 * fatal handler writes the message to stdout (a pipe to the parent) and
 * exits with TEST_FATAL_EXIT. Before the misuse the child says what the
 * message must name (the pointer, the calling thread as "rcgc thread
 * #serial 'name' (tid N)" or "tid N 'name', not attached to rcgc", other
 * threads); the parent checks the status and the message.
 *
 * Attached children name their thread with rcgc_thread_set_name, longer
 * than the 15 characters pthread_setname_np keeps, so the message must
 * use rcgc's own copy of the name.
 *
 * The parent process never initialises rcgc, so a child starts clean.
 */
#define TEST_NO_TSAN_ATEXIT_SLEEP 1   /* children die on second threads */
#include "test_util.h"

#include "lib/internal.h"
#include "lib/object.h"

#define MAIN_NAME "misuse-main-thread"     /* 18 characters */

/* A handler that returns: rcgc must abort. */
static void returning_handler(const char *message) {
    size_t len = strlen(message);
    ssize_t w = write(STDOUT_FILENO, message, len);
    (void)w;
}

static void child_init(void) {
    rcgc_set_fatal_handler(test_fatal_handler);
    if (rcgc_init(NULL) != 0)
        _exit(3);
    rcgc_thread_set_name(MAIN_NAME);
}

/* The message names the pointer the child said as PTR= (after `prefix`)
 * and the calling thread it said as THREAD=. */
static void expect_ptr_and_thread(const char *out, const char *msg, const char *prefix) {
    char want[160];
    snprintf(want, sizeof want, "%s%s", prefix, test_value_of(out, "PTR"));
    test_fatal_expect(msg, want);
    test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
}

/* ------------------------------------------------------------------------
 * rcgc_free of pointers rcgc did not allocate
 * ------------------------------------------------------------------------ */

static void free_malloced_child(void *arg) {
    (void)arg;
    child_init();
    void *p = malloc(64);
    test_say("PTR=%p\n", p);
    test_say_thread("THREAD");
    rcgc_free(p);
    _exit(0);
}

static void test_free_malloced(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(free_malloced_child, NULL, &out);
    expect_ptr_and_thread(out, msg, "rcgc_free(");
    test_fatal_expect(msg, "not in any rcgc arena");
    test_fatal_expect(msg, "'" MAIN_NAME "'");
}

static void free_stack_child(void *arg) {
    (void)arg;
    child_init();
    _Alignas(16) char buf[64];
    test_say("PTR=%p\n", (void *)buf);
    test_say_thread("THREAD");
    rcgc_free(buf);
    _exit(0);
}

static void test_free_stack_pointer(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(free_stack_child, NULL, &out);
    expect_ptr_and_thread(out, msg, "rcgc_free(");
    test_fatal_expect(msg, "not in any rcgc arena");
}

static void free_misaligned_child(void *arg) {
    (void)arg;
    child_init();
    char *p = rcgc_malloc(64);
    if (!p)
        _exit(4);
    test_say("PTR=%p\n", (void *)(p + 8));
    test_say_thread("THREAD");
    rcgc_free(p + 8);
    _exit(0);
}

static void test_free_misaligned(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(free_misaligned_child, NULL, &out);
    expect_ptr_and_thread(out, msg, "rcgc_free(");
    test_fatal_expect(msg, "not 16-byte aligned");
}

/* A huge block's arena is unmapped when it is freed: a second free names
 * the pointer. */
static void double_free_huge_child(void *arg) {
    (void)arg;
    child_init();
    void *p = rcgc_malloc(80 * TEST_MIB);
    if (!p)
        _exit(4);
    rcgc_free(p);
    test_say("PTR=%p\n", p);
    test_say_thread("THREAD");
    rcgc_free(p);
    _exit(0);
}

static void test_double_free_huge(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(double_free_huge_child, NULL, &out);
    expect_ptr_and_thread(out, msg, "rcgc_free(");
    test_fatal_expect(msg, "already released");
}

/* A large block's span goes back to its (cached) arena: a second free
 * finds the page not in use. */
static void double_free_large_child(void *arg) {
    (void)arg;
    child_init();
    void *keep = rcgc_malloc(100);    /* keeps the arena mapped */
    void *p = rcgc_malloc(TEST_MIB);
    if (!p || !keep)
        _exit(4);
    rcgc_free(p);
    test_say("PTR=%p\n", p);
    test_say_thread("THREAD");
    rcgc_free(p);
    _exit(0);
}

static void test_double_free_large(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(double_free_large_child, NULL, &out);
#if RCGC_DEBUG_LEVEL >= 2
    /* rcgc_free's block-start check sees it first. */
    expect_ptr_and_thread(out, msg, "rcgc_free(");
    test_fatal_expect(msg, "its span was freed");
#else
    expect_ptr_and_thread(out, msg, "free of ");
    test_fatal_expect(msg, "double free");
#endif
}

/* A small block freed twice while its page holds other live blocks (it
 * used to go onto the free list twice and be handed out twice): the free
 * mark finds it on the owner's fast path. */
static void double_free_small_child(void *arg) {
    (void)arg;
    child_init();
    void *a = rcgc_malloc(64), *p = rcgc_malloc(64), *b = rcgc_malloc(64);
    if (!a || !p || !b)
        _exit(4);
    rcgc_free(p);
    test_say("PTR=%p\n", p);
    test_say_thread("THREAD");
    rcgc_free(p);
    _exit(0);
}

static void test_double_free_small(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(double_free_small_child, NULL, &out);
    expect_ptr_and_thread(out, msg, "free of ");
    test_fatal_expect(msg, "double free");
    test_fatal_expect(msg, "block of 64 bytes, raw page");
    test_fatal_expect(msg, "owned by the calling thread");
}

/* Remote double frees: the owner frees, then another thread frees again
 * (its remote path checks the mark); or another thread frees twice (the
 * second time the block sits in that thread's chain of remote frees). */
typedef struct {
    void *p;
    int twice;
} remote_free_arg;

static void *remote_free_thread(void *arg) {
    remote_free_arg *a = arg;
    if (rcgc_thread_attach() != 0)
        _exit(5);
    rcgc_thread_set_name("misuse-remote-freer");
    if (a->twice)
        rcgc_free(a->p);
    test_say("PTR=%p\n", a->p);
    test_say_thread("THREAD");
    rcgc_free(a->p);
    _exit(0);
}

static void double_free_remote_child(void *arg) {
    child_init();
    static remote_free_arg a;
    a.twice = (int)(intptr_t)arg;
    void *x = rcgc_malloc(96), *y = rcgc_malloc(96);
    a.p = rcgc_malloc(96);
    if (!x || !y || !a.p)
        _exit(4);
    if (!a.twice)
        rcgc_free(a.p);
    pthread_t t;
    rcgc_blocking_begin();
    if (pthread_create(&t, NULL, remote_free_thread, &a) != 0)
        _exit(6);
    pthread_join(t, NULL);
    _exit(0);
}

static void test_double_free_remote(void **state) {
    TEST_BEGIN(state);
    for (intptr_t twice = 0; twice <= 1; twice++) {
        const char *out;
        const char *msg = test_fatal_run(double_free_remote_child, (void *)twice, &out);
        expect_ptr_and_thread(out, msg, "free of ");
        test_fatal_expect(msg, "double free");
        test_fatal_expect(msg, "owned by another thread");
        test_fatal_expect(msg, "'misuse-remote-freer'");
    }
}

/* A large block freed, its span taken by a small page, then freed again:
 * the second free finds either the span not in use or, if the page put a
 * block there that was freed since, that block's mark. */
static void double_free_large_reused_child(void *arg) {
    (void)arg;
    child_init();
    void *keep = rcgc_malloc(100);
    void *p = rcgc_malloc(TEST_MIB);
    if (!p || !keep)
        _exit(4);
    rcgc_free(p);
    void *x = rcgc_malloc(496);     /* a class of its own: a new page, maybe at p */
    if (!x)
        _exit(4);
    rcgc_free(x);
    test_say("PTR=%p\n", p);
    test_say("REUSED=%d\n", x == p);
    test_say_thread("THREAD");
    rcgc_free(p);
    _exit(0);
}

static void test_double_free_large_reused(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(double_free_large_reused_child, NULL, &out);
    if (strcmp(test_value_of(out, "REUSED"), "1") == 0 || RCGC_DEBUG_LEVEL < 2) {
        expect_ptr_and_thread(out, msg, "free of ");
        test_fatal_expect(msg, "double free");
    }
}

/* A second death of an object (the shape of a library bug: two paths
 * that both think they dropped the last reference) stops before the
 * type's clear and destroy run on freed memory. Stale pointers reach it
 * only through rcgc_decref/rcgc_incref, whose slow paths report a freed
 * object first (object_misuse_test). */
static int died_twice_destroys;
static void died_twice_destroy(void *self) {
    (void)self;
    if (++died_twice_destroys > 1)
        _exit(7);   /* destroy ran on freed memory: not detected */
}
static const rcgc_type died_twice_type = {.name = "died_twice", .size = 48,
                                          .destroy = died_twice_destroy};

static void double_death_child(void *arg) {
    (void)arg;
    child_init();
    void *keep = rcgc_new(&died_twice_type), *o = rcgc_new(&died_twice_type);
    if (!o || !keep)
        _exit(4);
    rcgc_decref(o);
    test_say("PTR=%p\n", o);
    test_say_thread("THREAD");
    rcgc__object_dealloc(o);
    _exit(0);
}

static void test_double_death(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(double_death_child, NULL, &out);
    expect_ptr_and_thread(out, msg, "object ");
    test_fatal_expect(msg, "of type 'died_twice': already freed");
    test_fatal_expect(msg, "died twice");
}

#if RCGC_DEBUG_LEVEL >= 2
/* At debug level 2 rcgc_free checks that p starts a block. */
static void free_interior_child(void *arg) {
    (void)arg;
    child_init();
    char *p = rcgc_malloc(256);
    if (!p)
        _exit(4);
    test_say("PTR=%p\n", (void *)(p + 32));
    test_say_thread("THREAD");
    rcgc_free(p + 32);
    _exit(0);
}

static void test_free_interior(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(free_interior_child, NULL, &out);
    expect_ptr_and_thread(out, msg, "rcgc_free(");
    test_fatal_expect(msg, "not at the start of a block");
}
#endif

static void usable_size_foreign_child(void *arg) {
    (void)arg;
    child_init();
    static _Alignas(16) char buf[64];
    test_say("PTR=%p\n", (void *)buf);
    test_say_thread("THREAD");
    (void)rcgc_usable_size(buf);
    _exit(0);
}

static void test_usable_size_foreign(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(usable_size_foreign_child, NULL, &out);
    expect_ptr_and_thread(out, msg, "rcgc_usable_size(");
}

/* ------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------ */

static void *unattached_malloc_thread(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "rogue");
    test_say_thread("THREAD");
    (void)rcgc_malloc(16);
    _exit(0);
}

static void unattached_child(void *arg) {
    (void)arg;
    child_init();
    pthread_t t;
    if (pthread_create(&t, NULL, unattached_malloc_thread, NULL) != 0)
        _exit(5);
    rcgc_blocking_begin();
    pthread_join(t, NULL);
    _exit(0);
}

static void test_malloc_unattached_thread(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(unattached_child, NULL, &out);
    test_fatal_expect(msg, "rcgc_malloc called from a thread that is not attached");
    test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
    test_fatal_expect(msg, "'rogue', not attached to rcgc");
}

static void *unattached_free_thread(void *arg) {
    test_say_thread("THREAD");
    rcgc_free(arg);
    _exit(0);
}

static void unattached_free_child(void *arg) {
    (void)arg;
    child_init();
    void *p = rcgc_malloc(32);
    pthread_t t;
    if (!p || pthread_create(&t, NULL, unattached_free_thread, p) != 0)
        _exit(5);
    rcgc_blocking_begin();
    pthread_join(t, NULL);
    _exit(0);
}

static void test_free_unattached_thread(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(unattached_free_child, NULL, &out);
    test_fatal_expect(msg, "rcgc_free called from a thread that is not attached");
    test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
}

static void before_init_child(void *arg) {
    (void)arg;
    rcgc_set_fatal_handler(test_fatal_handler);
    test_say_thread("THREAD");
    (void)rcgc_malloc(16);
    _exit(0);
}

static void test_malloc_before_init(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(before_init_child, NULL, &out);
    test_fatal_expect(msg, "rcgc_malloc called before rcgc_init");
    test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
}

/* After rcgc_shutdown the runtime is gone: the same message. */
static void after_shutdown_child(void *arg) {
    (void)arg;
    child_init();
    rcgc_shutdown();
    test_say_thread("THREAD");
    (void)rcgc_new(&(rcgc_type){.name = "late", .size = 16});
    _exit(0);
}

static void test_new_after_shutdown(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(after_shutdown_child, NULL, &out);
    test_fatal_expect(msg, "rcgc_new called before rcgc_init (or after rcgc_shutdown)");
    test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
}

static void detach_unattached_child(void *arg) {
    (void)arg;
    child_init();
    rcgc_thread_detach();
    test_say_thread("THREAD");
    rcgc_thread_detach();
    _exit(0);
}

static void test_detach_twice(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(detach_unattached_child, NULL, &out);
    test_fatal_expect(msg, "rcgc_thread_detach called from a thread that is not attached");
    test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
}

/* Every entry point that needs an attached thread says so, by name, when
 * called from one that is not. */
static const rcgc_type probe_type = {.name = "probe", .size = 32};
static void *probe_obj;
static void *probe_slot;

static void call_new(void) { (void)rcgc_new(&probe_type); }
static void call_new_var(void) { (void)rcgc_new_var(&probe_type, 64); }
static void call_incref(void) { rcgc_incref(probe_obj); }
static void call_decref(void) { rcgc_decref(probe_obj); }
static void call_set(void) { rcgc_set(&probe_slot, probe_obj); }
static void call_load_ref(void) { (void)rcgc_load_ref(&probe_slot); }
static void call_immortalize(void) { rcgc_immortalize(probe_obj); }
static void call_malloc(void) { (void)rcgc_malloc(8); }
static void call_calloc(void) { (void)rcgc_calloc(2, 8); }
static void call_heap_collect(void) { rcgc_heap_collect(); }
static void call_set_name(void) { rcgc_thread_set_name("x"); }
static void call_blocking_begin(void) { rcgc_blocking_begin(); }
static void call_blocking_end(void) { rcgc_blocking_end(); }
static void call_collect(void) { (void)rcgc_collect(); }
static void call_collect_young(void) { (void)rcgc_collect_young(); }
static int visit_none(void *o, void *arg) {
    (void)o;
    (void)arg;
    return 0;
}
static void call_get_objects(void) { (void)rcgc_gc_get_objects(visit_none, NULL); }
static void call_get_referrers(void) { (void)rcgc_gc_get_referrers(probe_obj, visit_none, NULL); }
static void call_get_referents(void) { (void)rcgc_gc_get_referents(probe_obj, visit_none, NULL); }
static void call_get_garbage(void) { (void)rcgc_gc_get_garbage(visit_none, NULL); }
static void call_clear_garbage(void) { (void)rcgc_gc_clear_garbage(); }
static void call_freeze(void) { rcgc_gc_freeze(); }
static void call_unfreeze(void) { rcgc_gc_unfreeze(); }
static void call_weakref_new(void) { (void)rcgc_weakref_new(probe_obj, NULL, NULL); }
static rcgc_weakref *probe_weak;
static void call_weakref_get(void) { (void)rcgc_weakref_get(probe_weak); }
static void call_weakref_free(void) { rcgc_weakref_free(probe_weak); }

typedef struct {
    const char *name;       /* what the message says */
    void (*call)(void);
    int object;             /* the object path: the message describes the object too */
} entry;

#define UNATTACHED 0
#define UNATTACHED_OBJ 1

static const entry entries[] = {
    {"rcgc_new", call_new, UNATTACHED},
    {"rcgc_new", call_new_var, UNATTACHED},
    {"rcgc_incref", call_incref, UNATTACHED_OBJ},
    {"rcgc_decref", call_decref, UNATTACHED_OBJ},
    {"rcgc_incref", call_set, UNATTACHED_OBJ},
    {"rcgc_load_ref", call_load_ref, UNATTACHED},
    {"rcgc_immortalize", call_immortalize, UNATTACHED},
    {"rcgc_malloc", call_malloc, UNATTACHED},
    {"rcgc_malloc", call_calloc, UNATTACHED},
    {"rcgc_heap_collect", call_heap_collect, UNATTACHED},
    {"rcgc_thread_set_name", call_set_name, UNATTACHED},
    {"rcgc_blocking_begin", call_blocking_begin, UNATTACHED},
    {"rcgc_blocking_end", call_blocking_end, UNATTACHED},
    {"rcgc_collect", call_collect, UNATTACHED},
    {"rcgc_collect", call_collect_young, UNATTACHED},
    {"rcgc_gc_get_objects", call_get_objects, UNATTACHED},
    {"rcgc_gc_get_referrers", call_get_referrers, UNATTACHED},
    {"rcgc_gc_get_referents", call_get_referents, UNATTACHED},
    {"rcgc_gc_get_garbage", call_get_garbage, UNATTACHED},
    {"rcgc_gc_clear_garbage", call_clear_garbage, UNATTACHED},
    {"rcgc_gc_freeze", call_freeze, UNATTACHED},
    {"rcgc_gc_unfreeze", call_unfreeze, UNATTACHED},
    {"rcgc_weakref_new", call_weakref_new, UNATTACHED},
    {"rcgc_weakref_get", call_weakref_get, UNATTACHED},
    {"rcgc_weakref_free", call_weakref_free, UNATTACHED},
};

static void *entry_thread(void *arg) {
    const entry *e = arg;
    pthread_setname_np(pthread_self(), "unattached");
    test_say_thread("THREAD");
    e->call();
    test_say("RETURNED\n");
    _exit(0);
}

static void entry_child(void *arg) {
    child_init();
    probe_obj = rcgc_new(&probe_type);
    probe_weak = rcgc_weakref_new(probe_obj, NULL, NULL);
    if (!probe_obj || !probe_weak)
        _exit(4);
    test_say("PTR=%p\n", probe_obj);
    pthread_t t;
    if (pthread_create(&t, NULL, entry_thread, arg) != 0)
        _exit(5);
    rcgc_blocking_begin();
    pthread_join(t, NULL);
    _exit(0);
}

static void test_every_entry_point_unattached(void **state) {
    TEST_BEGIN(state);
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        const entry *e = &entries[i];
        const char *out;
        const char *msg = test_fatal_run(entry_child, (void *)e, &out);
        char want[160];
        snprintf(want, sizeof want, "%s%s", e->name,
                 e->object ? " from a thread that is not attached"
                           : " called from a thread that is not attached");
        test_fatal_expect(msg, want);
        test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
        test_fatal_expect(msg, "'unattached', not attached to rcgc");
        if (e->object) {    /* the object, its type and owner too */
            char obj[80];
            snprintf(obj, sizeof obj, "object %s of type 'probe'", test_value_of(out, "PTR"));
            test_fatal_expect(msg, obj);
            test_fatal_expect(msg, "owner rcgc thread #1 '" MAIN_NAME "'");
        }
    }
    print_message("%zu entry points called from an unattached thread: each named\n",
                  sizeof entries / sizeof entries[0]);
}

/* Blocking regions do not nest. */
static void nested_blocking_child(void *arg) {
    (void)arg;
    child_init();
    rcgc_blocking_begin();
    test_say_thread("THREAD");
    rcgc_blocking_begin();
    _exit(0);
}

static void test_blocking_begin_nested(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(nested_blocking_child, NULL, &out);
    test_fatal_expect(msg, "rcgc_blocking_begin: the thread is already in a blocking region");
    test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
}

static void blocking_end_child(void *arg) {
    (void)arg;
    child_init();
    test_say_thread("THREAD");
    rcgc_blocking_end();
    _exit(0);
}

static void test_blocking_end_without_begin(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(blocking_end_child, NULL, &out);
    test_fatal_expect(msg, "rcgc_blocking_end without rcgc_blocking_begin");
    test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
}

typedef struct {
    test_gate gate;
} hold_arg;

static void *attached_holder(void *arg) {
    hold_arg *h = arg;
    if (rcgc_thread_attach() != 0)
        _exit(6);
    rcgc_thread_set_name("holder-thread-long");
    test_say_thread("HOLDER");
    test_gate_set(&h->gate, 1);
    rcgc_blocking_begin();
    for (;;)
        pause();    /* the child ends in the fatal handler */
    return NULL;
}

static void shutdown_with_thread_child(void *arg) {
    (void)arg;
    child_init();
    static hold_arg h;
    test_gate_init(&h.gate);
    pthread_t t;
    if (pthread_create(&t, NULL, attached_holder, &h) != 0)
        _exit(5);
    test_gate_wait(&h.gate, 1);
    test_say_thread("THREAD");
    rcgc_shutdown();
    _exit(0);
}

static void test_shutdown_with_thread_attached(void **state) {
    TEST_BEGIN(state);
    const char *out;
    const char *msg = test_fatal_run(shutdown_with_thread_child, NULL, &out);
    test_fatal_expect(msg, "rcgc_shutdown called while 1 other thread(s) are still attached");
    test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
    test_fatal_expect_thread(out, msg, "HOLDER", "still attached: ");
}

/* ------------------------------------------------------------------------
 * The handler itself
 * ------------------------------------------------------------------------ */

/* No handler installed: the default prints the message to stderr and
 * aborts. */
static void default_handler_child(void *arg) {
    (void)arg;
    if (rcgc_init(NULL) != 0)
        _exit(3);
    void *p = malloc(32);
    test_say("PTR=%p\n", p);
    test_say_thread("THREAD");
    rcgc_free(p);
    _exit(0);
}

static void test_default_handler_aborts(void **state) {
    TEST_BEGIN(state);
    char out[8192];
    int status = test_fork_run(default_handler_child, NULL, out, sizeof out);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("child %s %d, want SIGABRT; output:\n%s",
                 WIFEXITED(status) ? "exited" : "killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), out);
    test_fatal_expect(out, "rcgc: fatal error: rcgc_free(");
    expect_ptr_and_thread(out, out, "rcgc_free(");
    test_fatal_expect(out, "detected at lib/malloc.c:");
}

/* A handler that returns: rcgc aborts anyway. */
static void returning_handler_child(void *arg) {
    (void)arg;
    if (rcgc_init(NULL) != 0)
        _exit(3);
    rcgc_set_fatal_handler(returning_handler);
    rcgc_free((void *)(uintptr_t)0x1000);
    _exit(0);
}

static void test_returning_handler_aborts(void **state) {
    TEST_BEGIN(state);
    char out[8192];
    int status = test_fork_run(returning_handler_child, NULL, out, sizeof out);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("child %s %d, want SIGABRT; output:\n%s",
                 WIFEXITED(status) ? "exited" : "killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), out);
    test_fatal_expect(out, "rcgc_free(0x1000)");
}

/* rcgc_set_fatal_handler returns the previous handler; NULL restores the
 * default. */
static void test_set_handler_returns_previous(void **state) {
    TEST_BEGIN(state);
    rcgc_fatal_handler def = rcgc_set_fatal_handler(test_fatal_handler);
    assert_non_null(def);
    assert_ptr_equal(rcgc_set_fatal_handler(returning_handler), test_fatal_handler);
    assert_ptr_equal(rcgc_set_fatal_handler(NULL), returning_handler);
    assert_ptr_equal(rcgc_set_fatal_handler(NULL), def);
}

int main(void) {
    test_main_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_free_malloced),
        cmocka_unit_test(test_free_stack_pointer),
        cmocka_unit_test(test_free_misaligned),
        cmocka_unit_test(test_double_free_huge),
        cmocka_unit_test(test_double_free_large),
        cmocka_unit_test(test_double_free_small),
        cmocka_unit_test(test_double_free_remote),
        cmocka_unit_test(test_double_free_large_reused),
        cmocka_unit_test(test_double_death),
#if RCGC_DEBUG_LEVEL >= 2
        cmocka_unit_test(test_free_interior),
#endif
        cmocka_unit_test(test_usable_size_foreign),
        cmocka_unit_test(test_malloc_unattached_thread),
        cmocka_unit_test(test_free_unattached_thread),
        cmocka_unit_test(test_malloc_before_init),
        cmocka_unit_test(test_new_after_shutdown),
        cmocka_unit_test(test_detach_twice),
        cmocka_unit_test(test_every_entry_point_unattached),
        cmocka_unit_test(test_blocking_begin_nested),
        cmocka_unit_test(test_blocking_end_without_begin),
        cmocka_unit_test(test_shutdown_with_thread_attached),
        cmocka_unit_test(test_default_handler_aborts),
        cmocka_unit_test(test_returning_handler_aborts),
        cmocka_unit_test(test_set_handler_returns_previous),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
