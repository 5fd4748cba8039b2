/*
 * object_misuse_test: misuse that would corrupt memory is detected and
 * reported through the fatal-error handler, with a message that names the
 * object, its type, its counts and the thread (DESIGN.md, "Errors").
 *
 * Each case runs in a forked child: this process never initialises rcgc
 * (liburcu's call_rcu thread does not survive a fork), the child calls
 * rcgc_init itself after installing a fatal handler that writes the message
 * to stdout and exits with status 42. Before the misuse the child prints
 * "OBJ=<address>" (printf %p of the payload pointer); the parent checks the
 * exit status and the message.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "rcgc.h"

#define CHILD_EXIT_FATAL 42     /* the handler ran */
#define CHILD_EXIT_SETUP 43     /* the child could not set up the case */
#define CHILD_EXIT_NONE  44     /* the misuse went unreported */

/* ------------------------------------------------------------------------
 * In the child
 * ------------------------------------------------------------------------ */

static void write_all(int fd, const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* Memory the handler dumps after the message ("DUMP=<hex>"), if set. */
static const unsigned char *dump_on_fatal;
static size_t dump_len;

static void fatal_to_stdout(const char *message) {
    static const char begin[] = "FATAL<<";
    static const char end[] = ">>\n";
    write_all(STDOUT_FILENO, begin, sizeof begin - 1);
    write_all(STDOUT_FILENO, message, strlen(message));
    write_all(STDOUT_FILENO, end, sizeof end - 1);
    if (dump_on_fatal) {
        static const char hex[] = "0123456789abcdef";
        char line[8 + 2 * 64 + 2] = "DUMP=";
        size_t n = 5;
        for (size_t i = 0; i < dump_len && i < 64; i++) {
            line[n++] = hex[dump_on_fatal[i] >> 4];
            line[n++] = hex[dump_on_fatal[i] & 15];
        }
        line[n++] = '\n';
        write_all(STDOUT_FILENO, line, n);
    }
    _exit(CHILD_EXIT_FATAL);
}

#define SETUP_CHECK(cond)                                                        \
    do {                                                                         \
        if (!(cond)) {                                                           \
            printf("setup failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
            fflush(stdout);                                                      \
            _exit(CHILD_EXIT_SETUP);                                             \
        }                                                                        \
    } while (0)

static void announce(const void *o) {
    printf("OBJ=%p\n", o);
    fflush(stdout);
}

static const rcgc_type victim_type = {
    .name = "victim_type",
    .size = 40,
};

static const rcgc_type shared_read_type = {
    .name = "victim_shared_read",
    .size = 40,
    .flags = RCGC_TYPE_SHARED_READ,
};

/* Run fn(arg) on a new thread, attached or not, and join it. */
typedef struct {
    void (*fn)(void *);
    void *arg;
    int attach;
} thread_job;

static void *thread_main(void *p) {
    thread_job *j = p;
    if (j->attach)
        SETUP_CHECK(rcgc_thread_attach() == 0);
    j->fn(j->arg);
    if (j->attach)
        rcgc_thread_detach();
    return NULL;
}

static void on_thread(void (*fn)(void *), void *arg, int attach) {
    thread_job j = {fn, arg, attach};
    pthread_t th;
    SETUP_CHECK(pthread_create(&th, NULL, thread_main, &j) == 0);
    rcgc_blocking_begin();
    pthread_join(th, NULL);
    rcgc_blocking_end();
}

static void t_incref(void *o) { rcgc_incref(o); }
static void t_decref(void *o) { rcgc_decref(o); }
static void t_decref_twice(void *o) {
    rcgc_decref(o);
    rcgc_decref(o);
}
static void t_new(void *unused) {
    (void)unused;
    rcgc_new(&victim_type);
}

/* The cases. Each ends in a fatal error (or returns: unreported). */

/* A non-owner decrements a freed object (the slow path sees it). */
static void case_decref_freed_by_other_thread(void) {
    void *o = rcgc_new(&victim_type);
    announce(o);
    rcgc_decref(o);
    on_thread(t_decref, o, 1);
}

/* The thread that owned and freed the object decrements it again. */
static void case_decref_freed_by_former_owner(void) {
    void *o = rcgc_new(&victim_type);
    announce(o);
    rcgc_decref(o);
    rcgc_decref(o);
}

static void case_incref_freed_by_other_thread(void) {
    void *o = rcgc_new(&victim_type);
    announce(o);
    rcgc_decref(o);
    on_thread(t_incref, o, 1);
}

static void case_incref_freed_by_former_owner(void) {
    void *o = rcgc_new(&victim_type);
    announce(o);
    rcgc_decref(o);
    rcgc_incref(o);
}

/* A non-owner drops two references where it held one: the queued count
 * goes to -1; the owner's merge finds the total below zero. */
static void case_below_zero_at_merge(void) {
    void *o = rcgc_new(&victim_type);     /* the reference handed to the other thread */
    announce(o);
    on_thread(t_decref_twice, o, 1);
    rcgc_safepoint();                       /* the owner merges */
}

/* The same over-decrement, found when the owner's local count goes 1 -> 0
 * and it gives up ownership with a negative shared count. */
static void case_below_zero_when_owner_gives_up(void) {
    void *o = rcgc_new(&victim_type);
    rcgc_incref(o);                         /* ours, and one for the other thread */
    announce(o);
    on_thread(t_decref_twice, o, 1);        /* one too many */
    rcgc_decref(o);                         /* local 2 -> 1 */
    rcgc_decref(o);                         /* local 1 -> 0: shared is -1 */
}

/* The owner gives up ownership (local 0, another thread counts), then
 * decrements once more than it may: that frees the object under the other
 * thread, whose next decrement is reported. */
static void case_owner_over_decref_after_giving_up(void) {
    void *o = rcgc_new(&victim_type);
    announce(o);
    on_thread(t_incref, o, 1);              /* the other thread's reference */
    rcgc_decref(o);                         /* local 1 -> 0: merged, shared 1 */
    rcgc_decref(o);                         /* misuse: takes the other's reference */
    on_thread(t_decref, o, 1);              /* the rightful last decref */
}

/* A pointer rcgc never allocated, whose "header" is all zero. */
static _Alignas(16) unsigned char fake_block[48];

static void case_foreign_pointer_decref(void) {
    void *p = fake_block + 32;              /* 16-byte aligned "payload" */
    announce(p);
    on_thread(t_decref, p, 1);
}

/* The same, and rcgc must not write into memory it does not own. */
static void case_foreign_pointer_decref_dump(void) {
    dump_on_fatal = fake_block;
    dump_len = 32;
    case_foreign_pointer_decref();
}

/* An increment through a pointer rcgc never allocated. */
static void case_foreign_pointer_incref(void) {
    void *p = fake_block + 32;
    announce(p);
    on_thread(t_incref, p, 1);
}

/* A foreign pointer whose "header" is not zero: its owner field points
 * nowhere, its local count is 1. */
static _Alignas(16) unsigned char garbage_block[48];

static void case_foreign_pointer_garbage_header_decref(void) {
    uintptr_t bogus_owner = (uintptr_t)0x123456780ull;
    uint32_t local = 1;
    memcpy(garbage_block, &bogus_owner, sizeof bogus_owner);
    memcpy(garbage_block + sizeof bogus_owner, &local, sizeof local);
    void *p = garbage_block + 32;
    announce(p);
    on_thread(t_decref, p, 1);
}

static void case_load_ref_not_shared_read(void) {
    void *o = rcgc_new(&victim_type);
    announce(o);
    void *slot = o;
    rcgc_load_ref(&slot);
}

static void case_load_ref_shared_read_ok_then_plain(void) {
    /* A SHARED_READ object loads fine; the plain one is the misuse. */
    void *ok = rcgc_new(&shared_read_type);
    void *slot = ok;
    void *r = rcgc_load_ref(&slot);
    SETUP_CHECK(r == ok);
    rcgc_decref(r);
    case_load_ref_not_shared_read();
}

static void case_new_unattached(void) { on_thread(t_new, NULL, 0); }

static void case_decref_unattached(void) {
    void *o = rcgc_new(&victim_type);
    rcgc_incref(o);
    announce(o);
    on_thread(t_decref, o, 0);
}

static void case_blocking_end_without_begin(void) { rcgc_blocking_end(); }

/* ------------------------------------------------------------------------
 * In the parent
 * ------------------------------------------------------------------------ */

/* Run fn in a child; collect its stdout+stderr. Returns the wait status. */
static int run_child(void (*fn)(void), char *out, size_t cap) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* cmocka's handlers would turn a crash into a confusing exit. */
        static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        close(fds[0]);
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        rcgc_set_fatal_handler(fatal_to_stdout);
        SETUP_CHECK(rcgc_init(NULL) == 0);
        fn();
        printf("NO FATAL ERROR\n");
        fflush(stdout);
        _exit(CHILD_EXIT_NONE);
    }
    close(fds[1]);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fds[0], out + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == cap - 1)
            break;
    }
    out[len] = '\0';
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    return status;
}

enum {
    EXPECT_OBJECT = 1,  /* the message names the announced address */
    EXPECT_COUNTS = 2,  /* ... and its local and shared counts */
};

typedef struct {
    void (*fn)(void);
    unsigned flags;
    const char *must[6];    /* substrings of the message, NULL-terminated */
} misuse_case;

static void check_case(const misuse_case *c) {
    char out[16384];
    int status = run_child(c->fn, out, sizeof out);
    int ok_status = WIFEXITED(status) && WEXITSTATUS(status) == CHILD_EXIT_FATAL;
    if (!ok_status) {
        if (WIFSIGNALED(status))
            print_error("the child was killed by signal %d (%s) instead of reporting; output:\n%s\n",
                        WTERMSIG(status), strsignal(WTERMSIG(status)), out);
        else
            print_error("the child exited with status %d instead of %d; output:\n%s\n",
                        WEXITSTATUS(status), CHILD_EXIT_FATAL, out);
        fail();
    }
    char *msg = strstr(out, "FATAL<<");
    assert_non_null(msg);
    msg += 7;
    char *end = strstr(msg, ">>\n");
    assert_non_null(end);
    *end = '\0';
    print_message("%s\n", msg);

    if (!strstr(msg, "thread")) {
        print_error("the message does not name the thread\n");
        fail();
    }
    if (c->flags & EXPECT_OBJECT) {
        char *obj = strstr(out, "OBJ=");
        assert_non_null(obj);
        char addr[64];
        size_t n = strcspn(obj + 4, "\n");
        assert_true(n > 0 && n < sizeof addr);
        memcpy(addr, obj + 4, n);
        addr[n] = '\0';
        if (!strstr(msg, addr)) {
            print_error("the message does not name the object %s\n", addr);
            fail();
        }
    }
    if (c->flags & EXPECT_COUNTS) {
        if (!strstr(msg, "local count") || !strstr(msg, "shared count")) {
            print_error("the message does not give the object's counts\n");
            fail();
        }
    }
    for (int i = 0; c->must[i]; i++) {
        if (!strstr(msg, c->must[i])) {
            print_error("the message lacks \"%s\"\n", c->must[i]);
            fail();
        }
    }
}

#define OBJ_COUNTS (EXPECT_OBJECT | EXPECT_COUNTS)

static void test_decref_freed_by_other_thread(void **state) {
    (void)state;
    misuse_case c = {case_decref_freed_by_other_thread, OBJ_COUNTS, {"rcgc_decref", "freed", NULL}};
    check_case(&c);
}

static void test_decref_freed_by_former_owner(void **state) {
    (void)state;
    misuse_case c = {case_decref_freed_by_former_owner, OBJ_COUNTS, {"rcgc_decref", "freed", NULL}};
    check_case(&c);
}

static void test_incref_freed_by_other_thread(void **state) {
    (void)state;
    misuse_case c = {case_incref_freed_by_other_thread, OBJ_COUNTS, {"rcgc_incref", "freed", NULL}};
    check_case(&c);
}

static void test_incref_freed_by_former_owner(void **state) {
    (void)state;
    misuse_case c = {case_incref_freed_by_former_owner, OBJ_COUNTS, {"rcgc_incref", "freed", NULL}};
    check_case(&c);
}

static void test_below_zero_at_merge(void **state) {
    (void)state;
    misuse_case c = {case_below_zero_at_merge, OBJ_COUNTS, {"below zero", "'victim_type'", NULL}};
    check_case(&c);
}

static void test_below_zero_when_owner_gives_up(void **state) {
    (void)state;
    misuse_case c = {case_below_zero_when_owner_gives_up, OBJ_COUNTS,
                     {"below zero", "'victim_type'", "shared count -1", NULL}};
    check_case(&c);
}

static void test_owner_over_decref_after_giving_up(void **state) {
    (void)state;
    misuse_case c = {case_owner_over_decref_after_giving_up, OBJ_COUNTS,
                     {"rcgc_decref", "freed", NULL}};
    check_case(&c);
}

static void test_foreign_pointer_decref(void **state) {
    (void)state;
    misuse_case c = {case_foreign_pointer_decref, EXPECT_OBJECT, {"not allocated by rcgc", NULL}};
    check_case(&c);
}

/* Reported before rcgc writes anything into the foreign memory (DESIGN:
 * misuse is detected, never a corruption). */
static void test_foreign_pointer_decref_leaves_memory_alone(void **state) {
    (void)state;
    char out[16384];
    int status = run_child(case_foreign_pointer_decref_dump, out, sizeof out);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), CHILD_EXIT_FATAL);
    char *dump = strstr(out, "DUMP=");
    assert_non_null(dump);
    char expect[5 + 64 + 1];
    memcpy(expect, "DUMP=", 5);
    memset(expect + 5, '0', 64);
    expect[69] = '\0';
    if (strncmp(dump, expect, 69) != 0) {
        print_error("rcgc wrote into the header of memory it does not own:\n  %.*s\n"
                    "  (was all zero)\n",
                    69, dump);
        fail();
    }
}

static void test_foreign_pointer_incref(void **state) {
    (void)state;
    misuse_case c = {case_foreign_pointer_incref, EXPECT_OBJECT, {"not allocated by rcgc", NULL}};
    check_case(&c);
}

static void test_foreign_pointer_garbage_header_decref(void **state) {
    (void)state;
    misuse_case c = {case_foreign_pointer_garbage_header_decref, EXPECT_OBJECT,
                     {"not allocated by rcgc", NULL}};
    check_case(&c);
}

static void test_load_ref_not_shared_read(void **state) {
    (void)state;
    misuse_case c = {case_load_ref_shared_read_ok_then_plain, OBJ_COUNTS,
                     {"rcgc_load_ref", "RCGC_TYPE_SHARED_READ", "'victim_type'", NULL}};
    check_case(&c);
}

static void test_new_unattached(void **state) {
    (void)state;
    misuse_case c = {case_new_unattached, 0, {"rcgc_new", "not attached", NULL}};
    check_case(&c);
}

static void test_decref_unattached(void **state) {
    (void)state;
    misuse_case c = {case_decref_unattached, OBJ_COUNTS,
                     {"rcgc_decref", "not attached", "'victim_type'", "local count 2", NULL}};
    check_case(&c);
}

static void test_blocking_end_without_begin(void **state) {
    (void)state;
    misuse_case c = {case_blocking_end_without_begin, 0,
                     {"rcgc_blocking_end without rcgc_blocking_begin", NULL}};
    check_case(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decref_freed_by_other_thread),
        cmocka_unit_test(test_decref_freed_by_former_owner),
        cmocka_unit_test(test_incref_freed_by_other_thread),
        cmocka_unit_test(test_incref_freed_by_former_owner),
        cmocka_unit_test(test_below_zero_at_merge),
        cmocka_unit_test(test_below_zero_when_owner_gives_up),
        cmocka_unit_test(test_owner_over_decref_after_giving_up),
        cmocka_unit_test(test_foreign_pointer_decref),
        cmocka_unit_test(test_foreign_pointer_decref_leaves_memory_alone),
        cmocka_unit_test(test_foreign_pointer_incref),
        cmocka_unit_test(test_foreign_pointer_garbage_header_decref),
        cmocka_unit_test(test_load_ref_not_shared_read),
        cmocka_unit_test(test_new_unattached),
        cmocka_unit_test(test_decref_unattached),
        cmocka_unit_test(test_blocking_end_without_begin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
