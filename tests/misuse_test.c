/*
 * Misuse is fatal, and the fatal message says what went wrong: each case
 * runs in a forked child whose fatal handler writes the message to stdout
 * (a pipe to the parent) and exits with status 42. The parent checks the
 * status and the message: the function, the pointer, the thread.
 *
 * The parent process never initialises rcgc, so a child starts clean.
 */
#include <sys/syscall.h>

#include "test_util.h"

#include "lib/internal.h"

#define FATAL_EXIT 42

static void exit_handler(const char *message) {
    size_t len = strlen(message);
    ssize_t w = write(STDOUT_FILENO, message, len);
    w += write(STDOUT_FILENO, "\n", 1);
    (void)w;
    _exit(FATAL_EXIT);
}

/* A handler that returns: rcgc must abort. */
static void returning_handler(const char *message) {
    size_t len = strlen(message);
    ssize_t w = write(STDOUT_FILENO, message, len);
    (void)w;
}

static long gettid_(void) { return (long)syscall(SYS_gettid); }

/* What the child tells the parent before it misbehaves: "key=value" lines
 * on stdout, unbuffered (the fatal handler _exits). */
static void say(const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) {
        ssize_t w = write(STDOUT_FILENO, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
        (void)w;
    }
}

static void child_init(void) {
    if (rcgc_init(NULL) != 0)
        _exit(3);
    rcgc_set_fatal_handler(exit_handler);
}

/* The value of "key=" in the child's output (up to the end of the line). */
static void value_of(const char *out, const char *key, char *val, size_t cap) {
    char k[64];
    snprintf(k, sizeof k, "%s=", key);
    const char *p = strstr(out, k);
    if (!p)
        fail_msg("the child did not say %s; output:\n%s", key, out);
    p += strlen(k);
    size_t n = strcspn(p, "\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(val, p, n);
    val[n] = '\0';
}

static void expect_contains(const char *out, const char *what) {
    if (!strstr(out, what))
        fail_msg("the fatal message lacks \"%s\"; output:\n%s", what, out);
}

/* Runs fn in a child; it must die through the fatal handler. Returns the
 * output (static buffer). */
static const char *run_fatal(void (*fn)(void *), void *arg) {
    static char out[8192];
    int status = test_fork_run(fn, arg, out, sizeof out);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != FATAL_EXIT)
        fail_msg("child %s %d, want exit %d through the fatal handler; output:\n%s",
                 WIFEXITED(status) ? "exited" : "killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), FATAL_EXIT, out);
    expect_contains(out, "rcgc: fatal error: ");
    return out;
}

/* The message names the pointer the child reported as ptr=, and the
 * thread it reported as tid=. */
static void expect_ptr_and_thread(const char *out) {
    char ptr[64], tid[32], line[96];
    value_of(out, "ptr", ptr, sizeof ptr);
    value_of(out, "tid", tid, sizeof tid);
    expect_contains(strstr(out, "rcgc: fatal error: "), ptr);
    snprintf(line, sizeof line, "thread: tid %s ", tid);
    expect_contains(out, line);
    expect_contains(out, "detected at ");
}

/* ------------------------------------------------------------------------
 * rcgc_free of pointers rcgc did not allocate
 * ------------------------------------------------------------------------ */

static void free_malloced_child(void *arg) {
    (void)arg;
    child_init();
    void *p = malloc(64);
    say("ptr=%p\ntid=%ld\n", p, gettid_());
    rcgc_free(p);
    _exit(0);
}

static void test_free_malloced(void **state) {
    TEST_BEGIN(state);
    const char *out = run_fatal(free_malloced_child, NULL);
    char ptr[64], want[96];
    value_of(out, "ptr", ptr, sizeof ptr);
    snprintf(want, sizeof want, "rcgc_free(%s)", ptr);
    expect_contains(out, want);
    expect_contains(out, "not in any rcgc arena");
    expect_ptr_and_thread(out);
    expect_contains(out, "(rcgc thread #");
}

static void free_stack_child(void *arg) {
    (void)arg;
    child_init();
    _Alignas(16) char buf[64];
    say("ptr=%p\ntid=%ld\n", (void *)buf, gettid_());
    rcgc_free(buf);
    _exit(0);
}

static void test_free_stack_pointer(void **state) {
    TEST_BEGIN(state);
    const char *out = run_fatal(free_stack_child, NULL);
    char ptr[64], want[96];
    value_of(out, "ptr", ptr, sizeof ptr);
    snprintf(want, sizeof want, "rcgc_free(%s)", ptr);
    expect_contains(out, want);
    expect_ptr_and_thread(out);
}

static void free_misaligned_child(void *arg) {
    (void)arg;
    child_init();
    char *p = rcgc_malloc(64);
    if (!p)
        _exit(4);
    say("ptr=%p\ntid=%ld\n", (void *)(p + 8), gettid_());
    rcgc_free(p + 8);
    _exit(0);
}

static void test_free_misaligned(void **state) {
    TEST_BEGIN(state);
    const char *out = run_fatal(free_misaligned_child, NULL);
    char ptr[64], want[96];
    value_of(out, "ptr", ptr, sizeof ptr);
    snprintf(want, sizeof want, "rcgc_free(%s)", ptr);
    expect_contains(out, want);
    expect_contains(out, "aligned");
    expect_ptr_and_thread(out);
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
    say("ptr=%p\ntid=%ld\n", p, gettid_());
    rcgc_free(p);
    _exit(0);
}

static void test_double_free_huge(void **state) {
    TEST_BEGIN(state);
    const char *out = run_fatal(double_free_huge_child, NULL);
    char ptr[64], want[96];
    value_of(out, "ptr", ptr, sizeof ptr);
    snprintf(want, sizeof want, "rcgc_free(%s)", ptr);
    expect_contains(out, want);
    expect_ptr_and_thread(out);
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
    say("ptr=%p\ntid=%ld\n", p, gettid_());
    rcgc_free(p);
    _exit(0);
}

static void test_double_free_large(void **state) {
    TEST_BEGIN(state);
    const char *out = run_fatal(double_free_large_child, NULL);
    expect_contains(out, "double free");
    expect_ptr_and_thread(out);
}

#if RCGC_DEBUG_LEVEL >= 2
/* At debug level 2 rcgc_free checks that p starts a block. */
static void free_interior_child(void *arg) {
    (void)arg;
    child_init();
    char *p = rcgc_malloc(256);
    if (!p)
        _exit(4);
    say("ptr=%p\ntid=%ld\n", (void *)(p + 32), gettid_());
    rcgc_free(p + 32);
    _exit(0);
}

static void test_free_interior(void **state) {
    TEST_BEGIN(state);
    const char *out = run_fatal(free_interior_child, NULL);
    char ptr[64], want[96];
    value_of(out, "ptr", ptr, sizeof ptr);
    snprintf(want, sizeof want, "rcgc_free(%s)", ptr);
    expect_contains(out, want);
    expect_contains(out, "inside a block");
    expect_ptr_and_thread(out);
}
#endif

static void usable_size_foreign_child(void *arg) {
    (void)arg;
    child_init();
    static _Alignas(16) char buf[64];
    say("ptr=%p\ntid=%ld\n", (void *)buf, gettid_());
    (void)rcgc_usable_size(buf);
    _exit(0);
}

static void test_usable_size_foreign(void **state) {
    TEST_BEGIN(state);
    const char *out = run_fatal(usable_size_foreign_child, NULL);
    char ptr[64], want[96];
    value_of(out, "ptr", ptr, sizeof ptr);
    snprintf(want, sizeof want, "rcgc_usable_size(%s)", ptr);
    expect_contains(out, want);
    expect_ptr_and_thread(out);
}

/* ------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------ */

static void *unattached_malloc_thread(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "rogue");
    say("tid=%ld\n", gettid_());
    (void)rcgc_malloc(16);
    _exit(0);
}

static void unattached_child(void *arg) {
    (void)arg;
    child_init();
    pthread_t t;
    if (pthread_create(&t, NULL, unattached_malloc_thread, NULL) != 0)
        _exit(5);
    pthread_join(t, NULL);
    _exit(0);
}

static void test_malloc_unattached_thread(void **state) {
    TEST_BEGIN(state);
    const char *out = run_fatal(unattached_child, NULL);
    char tid[32], line[96];
    value_of(out, "tid", tid, sizeof tid);
    expect_contains(out, "rcgc_malloc called from a thread that is not attached");
    snprintf(line, sizeof line, "thread: tid %s \"rogue\" (not attached)", tid);
    expect_contains(out, line);
}

static void *unattached_free_thread(void *arg) {
    say("tid=%ld\n", gettid_());
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
    pthread_join(t, NULL);
    _exit(0);
}

static void test_free_unattached_thread(void **state) {
    TEST_BEGIN(state);
    const char *out = run_fatal(unattached_free_child, NULL);
    char tid[32], line[96];
    value_of(out, "tid", tid, sizeof tid);
    expect_contains(out, "rcgc_free called from a thread that is not attached");
    snprintf(line, sizeof line, "thread: tid %s ", tid);
    expect_contains(out, line);
    expect_contains(out, "(not attached)");
}

static void before_init_child(void *arg) {
    (void)arg;
    rcgc_set_fatal_handler(exit_handler);
    say("tid=%ld\n", gettid_());
    (void)rcgc_malloc(16);
    _exit(0);
}

static void test_malloc_before_init(void **state) {
    TEST_BEGIN(state);
    const char *out = run_fatal(before_init_child, NULL);
    char tid[32], line[96];
    value_of(out, "tid", tid, sizeof tid);
    expect_contains(out, "rcgc_malloc called before rcgc_init");
    snprintf(line, sizeof line, "thread: tid %s ", tid);
    expect_contains(out, line);
}

static void detach_unattached_child(void *arg) {
    (void)arg;
    child_init();
    rcgc_thread_detach();
    say("tid=%ld\n", gettid_());
    rcgc_thread_detach();
    _exit(0);
}

static void test_detach_twice(void **state) {
    TEST_BEGIN(state);
    const char *out = run_fatal(detach_unattached_child, NULL);
    expect_contains(out, "rcgc_thread_detach called from a thread that is not attached");
}

typedef struct {
    test_gate gate;
} hold_arg;

static void *attached_holder(void *arg) {
    hold_arg *h = arg;
    if (rcgc_thread_attach() != 0)
        _exit(6);
    pthread_setname_np(pthread_self(), "holder");
    test_gate_set(&h->gate, 1);
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
    say("tid=%ld\n", gettid_());
    rcgc_shutdown();
    _exit(0);
}

static void test_shutdown_with_thread_attached(void **state) {
    TEST_BEGIN(state);
    const char *out = run_fatal(shutdown_with_thread_child, NULL);
    char tid[32], line[96];
    value_of(out, "tid", tid, sizeof tid);
    expect_contains(out, "rcgc_shutdown called while 1 other thread(s) are still attached");
    snprintf(line, sizeof line, "thread: tid %s ", tid);
    expect_contains(out, line);
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
    say("ptr=%p\ntid=%ld\n", p, gettid_());
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
    expect_contains(out, "rcgc: fatal error: rcgc_free(");
    expect_ptr_and_thread(out);
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
    expect_contains(out, "rcgc_free(0x1000)");
}

/* rcgc_set_fatal_handler returns the previous handler; NULL restores the
 * default. */
static void test_set_handler_returns_previous(void **state) {
    TEST_BEGIN(state);
    rcgc_fatal_handler def = rcgc_set_fatal_handler(exit_handler);
    assert_non_null(def);
    assert_ptr_equal(rcgc_set_fatal_handler(returning_handler), exit_handler);
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
#if RCGC_DEBUG_LEVEL >= 2
        cmocka_unit_test(test_free_interior),
#endif
        cmocka_unit_test(test_usable_size_foreign),
        cmocka_unit_test(test_malloc_unattached_thread),
        cmocka_unit_test(test_free_unattached_thread),
        cmocka_unit_test(test_malloc_before_init),
        cmocka_unit_test(test_detach_twice),
        cmocka_unit_test(test_shutdown_with_thread_attached),
        cmocka_unit_test(test_default_handler_aborts),
        cmocka_unit_test(test_returning_handler_aborts),
        cmocka_unit_test(test_set_handler_returns_previous),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
