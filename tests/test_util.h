/*
 * Helpers shared by the unit tests in tests/: sanitizer detection, runtime
 * set-up and tear-down for cmocka, statistics snapshots, resident memory,
 * a one-shot thread runner and a fork-and-wait helper.
 *
 * Header-only (every function static): each test is one translation unit.
 * cmocka assertions longjmp out of the test function, so they are only used
 * on the test's main thread; worker threads record what they saw and the
 * main thread asserts after joining them.
 */
#ifndef RCGC_TEST_UTIL_H
#define RCGC_TEST_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "rcgc.h"

/* ------------------------------------------------------------------------
 * Sanitizers. The Bazel sanitizer configs pass -DRCGC_SANITIZER=1; the
 * compiler's own macros catch builds made outside Bazel.
 * ------------------------------------------------------------------------ */
#if defined(RCGC_SANITIZER) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TEST_SANITIZER 1
#endif
#endif
#ifndef TEST_SANITIZER
#define TEST_SANITIZER 0
#endif

#define TEST_MIB ((size_t)1 << 20)
/* Work sized for the build: sanitizers run 5-20x slower. */
#define TEST_SCALE(normal, sanitized) (TEST_SANITIZER ? (sanitized) : (normal))

/* An assertion for threads other than the test's own: cmocka's assertions
 * longjmp into the test's frame, which only that thread may do. */
#define TEST_THREAD_CHECK(cond)                                                         \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: check failed in a thread: %s\n", __FILE__, __LINE__, \
                    #cond);                                                             \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* ------------------------------------------------------------------------
 * Crashes end the program. cmocka catches SIGSEGV and friends and jumps to
 * the next test; after a crash inside rcgc (which may hold a lock) that
 * turns into a hang in the teardown, so every test begins with
 * TEST_BEGIN(state), which replaces cmocka's handlers for the test's
 * duration with one that prints the signal and the faulting address and
 * dies of the signal (cmocka installs its handlers around each test
 * function and restores its saved ones afterwards). Failed assertions
 * still move on to the next test.
 * ------------------------------------------------------------------------ */
#include <signal.h>

static void test_crash_handler(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    char buf[128];
    int n = snprintf(buf, sizeof buf, "\n*** crashed: signal %d (%s), address %p\n", sig,
                     strsignal(sig), si->si_addr);
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, buf, (size_t)n);
        (void)w;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static inline void test_crash_is_fatal(void) {
    const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = test_crash_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

#define TEST_BEGIN(state) \
    do {                      \
        (void)(state);        \
        test_crash_is_fatal(); \
    } while (0)

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t test_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------------
 * Resident memory (second field of /proc/self/statm), in bytes.
 * ------------------------------------------------------------------------ */
static inline size_t test_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    return n == 2 ? (size_t)resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* Virtual size (first field of /proc/self/statm), in bytes. */
static inline size_t test_vm_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long size = 0;
    int n = fscanf(f, "%lu", &size);
    fclose(f);
    return n == 1 ? (size_t)size * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* ------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------ */
/* Threads started by a test, so that a teardown after a failed assertion
 * can join them (TSan reports threads never joined, and a forked child
 * would inherit them). */
#define TEST_MAX_THREADS 64
static pthread_t test_threads[TEST_MAX_THREADS];
static int test_nthreads;

static inline pthread_t test_thread_start(void *(*fn)(void *), void *arg) {
    pthread_t t;
    assert_true(test_nthreads < TEST_MAX_THREADS);
    int rc = pthread_create(&t, NULL, fn, arg);
    assert_int_equal(rc, 0);
    test_threads[test_nthreads++] = t;
    return t;
}

/* Join a thread from test_thread_start; returns its result. */
static inline void *test_thread_join(pthread_t t) {
    void *res = NULL;
    int rc = pthread_join(t, &res);
    for (int i = 0; i < test_nthreads; i++) {
        if (pthread_equal(test_threads[i], t)) {
            test_threads[i] = test_threads[--test_nthreads];
            break;
        }
    }
    assert_int_equal(rc, 0);
    return res;
}

static inline void test_thread_run(void *(*fn)(void *), void *arg) {
    test_thread_join(test_thread_start(fn, arg));
}

/* A step counter between threads: one side sets steps, the other waits
 * for them. Gates made with test_gate_init are registered, so that a
 * teardown after a failed assertion can release every waiting worker
 * (test_release_workers) instead of leaving it blocked and attached. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int step;
} test_gate;

#define TEST_MAX_GATES 16
static test_gate *test_gates[TEST_MAX_GATES];
static int test_ngates;

static inline void test_gate_init(test_gate *g) {
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->step = 0;
    assert_true(test_ngates < TEST_MAX_GATES);
    test_gates[test_ngates++] = g;
}

static inline void test_gate_set(test_gate *g, int step) {
    pthread_mutex_lock(&g->lock);
    if (step > g->step)
        g->step = step;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* Wait without entering a blocking region (the caller is in one already,
 * or is not attached). */
static inline void test_gate_wait_raw(test_gate *g, int step) {
    pthread_mutex_lock(&g->lock);
    while (g->step < step)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

/* An attached thread waits in a blocking region, as rcgc's contract asks
 * of every attached thread that blocks (a pause never waits for it, and its
 * chained remote frees are flushed first). */
static inline void test_gate_wait(test_gate *g, int step) {
    int attached = rcgc_is_attached();
    if (attached)
        rcgc_blocking_begin();
    pthread_mutex_lock(&g->lock);
    while (g->step < step)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    if (attached)
        rcgc_blocking_end();
}

/* Open every registered gate all the way, join the threads a failed test
 * left behind, then wait (up to 10 s) for other threads to detach. Returns
 * the number of other threads still attached. */
static inline size_t test_release_workers(void) {
    for (int i = 0; i < test_ngates; i++)
        test_gate_set(test_gates[i], 1 << 30);
    while (test_nthreads > 0)
        pthread_join(test_threads[--test_nthreads], NULL);
    size_t others = 0;
    for (int ms = 0; ms < 10000; ms++) {
        rcgc_stats s;
        rcgc_stats_get(&s);
        others = s.threads_attached - (size_t)rcgc_is_attached();
        if (others == 0)
            break;
        usleep(1000);
    }
    /* The gates may live on a finished test's stack: forget them. Gates
     * stay valid until here because workers are released before. */
    test_ngates = 0;
    return others;
}

/* ------------------------------------------------------------------------
 * Runtime set-up for cmocka: a fresh runtime per test.
 * ------------------------------------------------------------------------ */
static inline int test_rcgc_setup(void **state) {
    (void)state;
    return rcgc_init(NULL);
}

/* After a failed assertion a test's worker threads may still be attached
 * (blocked, waiting for a step that never comes); rcgc_shutdown would then
 * stop the program. Leave the runtime up instead: the next setup fails,
 * and the first failure stays the one reported. */
static inline int test_rcgc_teardown(void **state) {
    (void)state;
    size_t others = test_release_workers();
    if (others) {
        fprintf(stderr, "teardown: %zu other thread(s) still attached; runtime left up\n",
                others);
        return -1;
    }
    rcgc_shutdown();
    return 0;
}

/* cmocka prints results on stdout: unbuffered, so that nothing is lost if
 * the program dies. TEST_FILTER=<glob> runs only the matching tests. */
static inline void test_main_init(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *filter = getenv("TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
}

static inline rcgc_stats test_stats(void) {
    rcgc_stats s;
    rcgc_stats_get(&s);
    return s;
}

/* ------------------------------------------------------------------------
 * Child processes: run fn in a forked child with its stdout and stderr on
 * a pipe; return the raw wait status and what it wrote (NUL-terminated,
 * truncated to cap - 1 bytes).
 * ------------------------------------------------------------------------ */
static inline int test_fork_run(void (*fn)(void *), void *arg, char *out, size_t cap) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit nocore = {0, 0};
        setrlimit(RLIMIT_CORE, &nocore);    /* children that abort on purpose */
        close(fds[0]);
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    size_t len = 0;
    for (;;) {
        char buf[4096];
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        size_t take = (size_t)n;
        if (len + take > cap - 1)
            take = cap - 1 - len;
        memcpy(out + len, buf, take);
        len += take;
    }
    out[len] = '\0';
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    return status;
}


/* ------------------------------------------------------------------------
 * Fatal-error tests. The child installs test_fatal_handler, which writes
 * the message between "FATAL<<" and ">>" on stdout and exits with
 * TEST_FATAL_EXIT. Before the misuse the child says, as KEY=value lines
 * (test_say, test_say_thread), what the message must name; the parent
 * runs it with test_fatal_run and checks the message with
 * test_fatal_expect*. Output goes through write(2): the handler _exits.
 * ------------------------------------------------------------------------ */
#include <sys/syscall.h>

#define TEST_FATAL_EXIT 42

/* ThreadSanitizer sleeps atexit_sleep_ms (1 s) before a process exits with
 * other threads alive, to catch races with atexit destructors. Every child
 * that dies of a fatal error on a second thread pays it (the misuse tests
 * fork dozens of such children); those children _exit and run no destructor. A
 * test defines TEST_NO_TSAN_ATEXIT_SLEEP before including this header to
 * turn the sleep off; TSAN_OPTIONS still overrides it. */
#if defined(TEST_NO_TSAN_ATEXIT_SLEEP) && defined(__has_feature)
#if __has_feature(thread_sanitizer)
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "atexit_sleep_ms=0"; }
#endif
#endif

static inline void test_write_all(const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static inline void test_fatal_handler(const char *message) {
    test_write_all("FATAL<<", 7);
    test_write_all(message, strlen(message));
    test_write_all(">>\n", 3);
    _exit(TEST_FATAL_EXIT);
}

static inline void test_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void test_say(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        test_write_all(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* KEY=<the calling thread as a fatal message names it>: its rcgc serial
 * and name from rcgc_stats_threads, its tid from the kernel; or, if it is
 * not attached, its pthread name. */
static inline void test_say_thread(const char *key) {
    long tid = (long)syscall(SYS_gettid);
    if (rcgc_is_attached()) {
        rcgc_thread_stats ts[64];
        size_t n = rcgc_stats_threads(ts, 64);
        for (size_t i = 0; i < n && i < 64; i++) {
            if (ts[i].tid == tid) {
                test_say("%s=rcgc thread #%llu '%s' (tid %ld)\n", key,
                         (unsigned long long)ts[i].serial, ts[i].name, tid);
                return;
            }
        }
        test_say("%s=?? attached thread %ld not in rcgc_stats_threads\n", key, tid);
        return;
    }
    char name[16] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    test_say("%s=tid %ld '%s', not attached to rcgc\n", key, tid, name);
}

/* The value of the last "key=" line in out ("" if none). */
static inline const char *test_value_of(const char *out, const char *key) {
    static char val[512];
    char k[64];
    snprintf(k, sizeof k, "%s=", key);
    const char *found = NULL;
    for (const char *p = strstr(out, k); p; p = strstr(p + 1, k))
        if (p == out || p[-1] == '\n')
            found = p;
    val[0] = '\0';
    if (found) {
        found += strlen(k);
        size_t n = strcspn(found, "\n");
        if (n >= sizeof val)
            n = sizeof val - 1;
        memcpy(val, found, n);
        val[n] = '\0';
    }
    return val;
}

/* Runs fn(arg) in a child that must die through test_fatal_handler (fn
 * installs it). Returns the message; *out (if given) gets the whole
 * output. Static buffers: valid until the next call. */
static inline const char *test_fatal_run(void (*fn)(void *), void *arg, const char **out) {
    static char buf[32768];
    static char msg[8192];
    int status = test_fork_run(fn, arg, buf, sizeof buf);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != TEST_FATAL_EXIT)
        fail_msg("child %s %d, want exit %d through the fatal handler; output:\n%s",
                 WIFEXITED(status) ? "exited" : "killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), TEST_FATAL_EXIT, buf);
    const char *b = strstr(buf, "FATAL<<");
    const char *e = b ? strstr(b, ">>\n") : NULL;
    if (!b || !e)
        fail_msg("no fatal message in the child's output:\n%s", buf);
    b += 7;
    size_t n = (size_t)(e - b) < sizeof msg ? (size_t)(e - b) : sizeof msg - 1;
    memcpy(msg, b, n);
    msg[n] = '\0';
    if (strncmp(msg, "rcgc: fatal error: ", 19) != 0)
        fail_msg("the message does not start with \"rcgc: fatal error: \":\n%s", msg);
    if (!strstr(msg, "\n  detected at lib/"))
        fail_msg("the message does not say where in rcgc it was detected:\n%s", msg);
    print_message("%s\n", msg);
    if (out)
        *out = buf;
    return msg;
}

static inline void test_fatal_expect(const char *msg, const char *what) {
    if (!strstr(msg, what))
        fail_msg("the fatal message lacks \"%s\":\n%s", what, msg);
}

/* The message names the thread the child said as `key`, after `label`
 * ("calling thread: " for the detecting thread, "owner " for an owner). */
static inline void test_fatal_expect_thread(const char *out, const char *msg, const char *key,
                                            const char *label) {
    const char *v = test_value_of(out, key);
    if (!*v)
        fail_msg("the child did not say %s; output:\n%s", key, out);
    char want[600];
    snprintf(want, sizeof want, "%s%s", label, v);
    test_fatal_expect(msg, want);
}

#endif /* RCGC_TEST_UTIL_H */
