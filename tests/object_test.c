/*
 * object_test: creation, death (clear, destroy, free), slots, immortal
 * objects and the trashcan (lib/object.c).
 *
 * Every test runs between rcgc_init and rcgc_shutdown (setup/teardown), on
 * the main thread unless it says otherwise. Threads the tests start report
 * failures with THREAD_CHECK (cmocka's assertions must stay on the thread
 * that runs the test).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/object.h"
#include "lib/thread.h"

#ifdef RCGC_SANITIZER
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* A check for threads other than the test's: prints and aborts. */
#define THREAD_CHECK(cond)                                                              \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: check failed in a thread: %s\n", __FILE__, __LINE__, \
                    #cond);                                                             \
            abort();                                                                    \
        }                                                                               \
    } while (0)

static int setup(void **state) {
    (void)state;
    return rcgc_init(NULL) == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    rcgc_shutdown();
    return 0;
}

/* ------------------------------------------------------------------------
 * Types that log their deaths
 * ------------------------------------------------------------------------ */

/* Event log of the single-threaded tests: which object, which callback. */
enum { EV_CLEAR = 1, EV_DESTROY = 2 };
typedef struct {
    void *obj;
    int what;
} event;
#define MAX_EVENTS 4096
static event events[MAX_EVENTS];
static size_t n_events;

static void log_event(void *obj, int what) {
    if (n_events < MAX_EVENTS)
        events[n_events] = (event){obj, what};
    n_events++;
}

static void reset_events(void) { n_events = 0; }

/* How often obj had callback `what`, and the index of its first one. */
static size_t count_events(void *obj, int what, size_t *first) {
    size_t n = 0;
    for (size_t i = 0; i < n_events && i < MAX_EVENTS; i++) {
        if (events[i].obj == obj && events[i].what == what) {
            if (n == 0 && first)
                *first = i;
            n++;
        }
    }
    return n;
}

typedef struct {
    uint64_t words[5];      /* 40 bytes: not a multiple of 16 */
    int cleared;            /* set by clear; destroy checks it */
} logged;

static void logged_clear(void *self) {
    logged *l = self;
    l->cleared = 1;
    log_event(self, EV_CLEAR);
}

static void logged_destroy(void *self) {
    logged *l = self;
    /* Destroy runs after clear, on the same still-valid memory. */
    log_event(self, l->cleared ? EV_DESTROY : -EV_DESTROY);
}

static const rcgc_type logged_type = {
    .name = "logged",
    .size = sizeof(logged),
    .clear = logged_clear,
    .destroy = logged_destroy,
};

static const rcgc_type destroy_only_type = {
    .name = "destroy_only",
    .size = sizeof(logged),
    .destroy = logged_destroy,
};

static const rcgc_type plain_type = {
    .name = "plain",
    .size = 24,
};

static const rcgc_type var_type = {
    .name = "var",
    .size = 0,      /* variable: rcgc_new_var only */
    .destroy = logged_destroy,
};

/* ------------------------------------------------------------------------
 * Creation
 * ------------------------------------------------------------------------ */

static int all_zero(const void *p, size_t n) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return 0;
    return 1;
}

static void check_new_object(void *o, const rcgc_type *t, size_t size) {
    assert_non_null(o);
    assert_int_equal((uintptr_t)o % 16, 0);
    assert_ptr_equal(rcgc_typeof(o), t);
    assert_int_equal(rcgc_refcount(o), 1);
    assert_false(rcgc_is_immortal(o));
    assert_true(all_zero(o, size));
    /* Owned by the caller, counted locally, nothing shared. */
    rcgc__header *h = rcgc__hdr(o);
    assert_int_equal(rcgc__owner(h), (uintptr_t)rcgc__thread_current());
    assert_int_equal(h->local, 1);
    assert_int_equal(RCGC_SHARED_COUNT(rcgc__shared(h)), 0);
}

static void test_new_basic(void **state) {
    (void)state;
    void *o = rcgc_new(&plain_type);
    check_new_object(o, &plain_type, plain_type.size);
    rcgc_decref(o);
}

/* Payloads come back zeroed even when the blocks were dirtied before. */
static void test_new_zeroed_after_reuse(void **state) {
    (void)state;
    enum { N = 2000 };
    static void *objs[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            objs[i] = rcgc_new(&plain_type);
            check_new_object(objs[i], &plain_type, plain_type.size);
            memset(objs[i], 0xAB, plain_type.size);
        }
        for (int i = 0; i < N; i++)
            rcgc_decref(objs[i]);
    }
}

static void test_new_var_sizes(void **state) {
    (void)state;
    static const size_t sizes[] = {1,    7,     15,    16,    17,     100,    480,    481,
                                   1000, 4096,  20000, 32736, 32768,  40000,  100000, 1 << 20,
                                   3 << 20};
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            reset_events();
            void *o = rcgc_new_var(&var_type, sizes[i]);
            check_new_object(o, &var_type, sizes[i]);
            memset(o, 0xCD, sizes[i]);  /* the whole payload is writable */
            rcgc_decref(o);
            assert_int_equal(count_events(o, EV_DESTROY, NULL) + count_events(o, -EV_DESTROY, NULL), 1);
        }
    }
}

static void test_new_einval(void **state) {
    (void)state;
    errno = 0;
    assert_null(rcgc_new(&var_type));   /* size-0 type: rcgc_new_var only */
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(rcgc_new(NULL));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(rcgc_new_var(NULL, 16));
    assert_int_equal(errno, EINVAL);
}

static void test_new_enomem(void **state) {
    (void)state;
    static const size_t absurd[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 32, SIZE_MAX / 2,
                                    (size_t)1 << 50, ((size_t)1 << 47) + 12345};
    rcgc_stats before, after;
    rcgc_stats_get(&before);
    for (size_t i = 0; i < sizeof absurd / sizeof absurd[0]; i++) {
        errno = 0;
        assert_null(rcgc_new_var(&plain_type, absurd[i]));
        assert_int_equal(errno, ENOMEM);
    }
    const rcgc_type huge_type = {.name = "huge", .size = SIZE_MAX / 4};
    errno = 0;
    assert_null(rcgc_new(&huge_type));
    assert_int_equal(errno, ENOMEM);
    /* Nothing changed: no block handed out, and allocation still works. */
    rcgc_stats_get(&after);
    assert_int_equal(after.blocks_in_use, before.blocks_in_use);
    void *o = rcgc_new(&plain_type);
    check_new_object(o, &plain_type, plain_type.size);
    rcgc_decref(o);
}

/* ------------------------------------------------------------------------
 * Death
 * ------------------------------------------------------------------------ */

static void test_clear_then_destroy_once(void **state) {
    (void)state;
    reset_events();
    void *o = rcgc_new(&logged_type);
    rcgc_incref(o);
    rcgc_incref(o);
    assert_int_equal(rcgc_refcount(o), 3);
    rcgc_decref(o);
    rcgc_decref(o);
    assert_int_equal(n_events, 0);      /* still alive */
    assert_int_equal(rcgc_refcount(o), 1);
    rcgc_decref(o);
    size_t first_clear = 0, first_destroy = 0;
    assert_int_equal(count_events(o, EV_CLEAR, &first_clear), 1);
    assert_int_equal(count_events(o, EV_DESTROY, &first_destroy), 1);
    assert_int_equal(count_events(o, -EV_DESTROY, NULL), 0);   /* destroy saw clear's work */
    assert_true(first_clear < first_destroy);
    assert_int_equal(n_events, 2);

    /* A type with destroy only gets destroy, once; one with neither dies quietly. */
    reset_events();
    void *d = rcgc_new(&destroy_only_type);
    rcgc_decref(d);
    assert_int_equal(count_events(d, -EV_DESTROY, NULL), 1);   /* never cleared */
    assert_int_equal(n_events, 1);
    reset_events();
    void *p = rcgc_new(&plain_type);
    rcgc_decref(p);
    assert_int_equal(n_events, 0);
}

/* Many objects: each is cleared then destroyed exactly once. */
static void test_death_many(void **state) {
    (void)state;
    enum { N = 1000 };
    static void *objs[N];
    reset_events();
    for (int i = 0; i < N; i++)
        objs[i] = rcgc_new(&logged_type);
    for (int i = N - 1; i >= 0; i--)
        rcgc_decref(objs[i]);
    assert_int_equal(n_events, 2 * N);
    for (int i = 0; i < N; i++) {
        size_t c = 0, d = 0;
        assert_int_equal(count_events(objs[i], EV_CLEAR, &c), 1);
        assert_int_equal(count_events(objs[i], EV_DESTROY, &d), 1);
        assert_int_equal(d, c + 1);     /* destroy right after its clear */
    }
}

/* ------------------------------------------------------------------------
 * Slots (rcgc_set)
 * ------------------------------------------------------------------------ */

static void test_set(void **state) {
    (void)state;
    reset_events();
    void *slot = NULL;
    void *v = rcgc_new(&logged_type);
    void *w = rcgc_new(&logged_type);

    rcgc_set(&slot, v);                 /* the slot takes its own reference */
    assert_ptr_equal(slot, v);
    assert_int_equal(rcgc_refcount(v), 2);

    rcgc_set(&slot, v);                 /* same value: net zero */
    assert_ptr_equal(slot, v);
    assert_int_equal(rcgc_refcount(v), 2);

    rcgc_set(&slot, w);                 /* replaces: old loses the slot's reference */
    assert_ptr_equal(slot, w);
    assert_int_equal(rcgc_refcount(v), 1);
    assert_int_equal(rcgc_refcount(w), 2);

    rcgc_set(&slot, NULL);
    assert_null(slot);
    assert_int_equal(rcgc_refcount(w), 1);
    assert_int_equal(n_events, 0);

    rcgc_set(&slot, NULL);              /* NULL over NULL: nothing */
    assert_null(slot);

    /* The slot holds the only reference: storing the same value again must
     * not free it (incref before decref). */
    rcgc_set(&slot, v);
    rcgc_decref(v);
    assert_int_equal(rcgc_refcount(v), 1);
    rcgc_set(&slot, v);
    assert_int_equal(rcgc_refcount(v), 1);
    assert_int_equal(n_events, 0);

    /* Replacing the only reference frees the old value. */
    rcgc_set(&slot, w);
    assert_int_equal(count_events(v, EV_CLEAR, NULL), 1);
    assert_int_equal(count_events(v, EV_DESTROY, NULL), 1);
    rcgc_decref(w);
    assert_int_equal(rcgc_refcount(w), 1);
    rcgc_set(&slot, NULL);
    assert_int_equal(count_events(w, EV_DESTROY, NULL), 1);
    assert_int_equal(n_events, 4);
}

/* A slot inside an object, cleared by the type's clear (the usual pattern). */
typedef struct {
    void *child;
} holder;

static void holder_clear(void *self) { rcgc_set(&((holder *)self)->child, NULL); }

static const rcgc_type holder_type = {
    .name = "holder",
    .size = sizeof(holder),
    .clear = holder_clear,
};

static void test_set_in_object(void **state) {
    (void)state;
    reset_events();
    holder *a = rcgc_new(&holder_type);
    void *c = rcgc_new(&logged_type);
    rcgc_set(&a->child, c);
    rcgc_decref(c);
    assert_int_equal(rcgc_refcount(c), 1);
    rcgc_decref(a);                     /* a's clear drops c */
    assert_int_equal(count_events(c, EV_CLEAR, NULL), 1);
    assert_int_equal(count_events(c, EV_DESTROY, NULL), 1);
}

/* ------------------------------------------------------------------------
 * Immortal objects
 * ------------------------------------------------------------------------ */

/* Immortal objects are never freed, so they outlive rcgc_shutdown; the
 * runtime must still come back up cleanly afterwards (re-init is allowed).
 * These run in a child forked before the test process ever initialised
 * rcgc (liburcu's call_rcu thread does not survive a fork), with their own
 * init/shutdown cycles, so that whatever they leave behind cannot disturb
 * the other tests. The child checks with CHILD_CHECK and exits 0 on success. */
#define CHILD_CHECK(cond) THREAD_CHECK(cond)

static _Atomic size_t immortal_destroys;

static void immortal_destroy(void *self) {
    (void)self;
    atomic_fetch_add(&immortal_destroys, 1);
}

static const rcgc_type immortal_type = {
    .name = "immortal",
    .size = 48,
    .destroy = immortal_destroy,
};

static void *immortal_counter_thread(void *arg) {
    THREAD_CHECK(rcgc_thread_attach() == 0);
    for (int i = 0; i < 100000; i++) {
        rcgc_incref(arg);
        rcgc_decref(arg);
        rcgc_decref(arg);   /* more decrefs than increfs: counting has stopped */
    }
    rcgc_thread_detach();
    return NULL;
}

static void child_immortal(void) {
    CHILD_CHECK(rcgc_init(NULL) == 0);
    void *o = rcgc_new(&immortal_type);
    rcgc_incref(o);
    rcgc_immortalize(o);
    CHILD_CHECK(rcgc_is_immortal(o));
    size_t rc = rcgc_refcount(o);
    CHILD_CHECK(rc >= (size_t)UINT32_MAX);  /* reported as huge */
    for (int i = 0; i < 1000; i++)
        rcgc_incref(o);
    CHILD_CHECK(rcgc_refcount(o) == rc);
    for (int i = 0; i < 5000; i++)
        rcgc_decref(o);
    CHILD_CHECK(rcgc_refcount(o) == rc);
    CHILD_CHECK(rcgc_is_immortal(o));
    CHILD_CHECK(atomic_load(&immortal_destroys) == 0);

    /* Other threads do not count it either. */
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        CHILD_CHECK(pthread_create(&th[i], NULL, immortal_counter_thread, o) == 0);
    rcgc_blocking_begin();
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    rcgc_blocking_end();
    CHILD_CHECK(rcgc_refcount(o) == rc);
    CHILD_CHECK(rcgc_typeof(o) == &immortal_type);
    /* A slot that drops it does not free it. */
    void *slot = NULL;
    rcgc_set(&slot, o);
    rcgc_set(&slot, NULL);
    CHILD_CHECK(atomic_load(&immortal_destroys) == 0);
    printf("immortal: counting stopped\n");
    fflush(stdout);

    /* Never freed, not even by rcgc_shutdown; and the runtime comes back. */
    rcgc_shutdown();
    CHILD_CHECK(atomic_load(&immortal_destroys) == 0);
    printf("immortal: survived shutdown\n");
    fflush(stdout);
    CHILD_CHECK(rcgc_init(NULL) == 0);
    for (int i = 0; i < 10000; i++) {   /* the same size class as before */
        void *p = rcgc_new(&immortal_type);
        CHILD_CHECK(p != NULL && rcgc_refcount(p) == 1);
        rcgc_decref(p);
    }
    CHILD_CHECK(atomic_load(&immortal_destroys) == 10000);
    rcgc_shutdown();
    printf("immortal: re-init after shutdown works\n");
    fflush(stdout);
}

/* An ordinary object leaked at shutdown: the same re-init must work. */
static void child_leak_then_reinit(void) {
    for (int cycle = 0; cycle < 3; cycle++) {
        CHILD_CHECK(rcgc_init(NULL) == 0);
        for (int i = 0; i < 100; i++)
            CHILD_CHECK(rcgc_new(&plain_type) != NULL);     /* leaked on purpose */
        void *big = rcgc_new_var(&plain_type, 100000);       /* a large block, leaked */
        CHILD_CHECK(big != NULL);
        rcgc_shutdown();
    }
    printf("leak: re-init after shutdown works\n");
    fflush(stdout);
}

/* Children forked by main() before any rcgc_init. Each waits for its test
 * to say "go", so that the children run one at a time, inside their test. */
typedef struct {
    const char *name;
    void (*fn)(void);
    pid_t pid;
    int go_fd, out_fd;
} child;

static child children[] = {
    {"immortal", child_immortal, 0, -1, -1},
    {"leak", child_leak_then_reinit, 0, -1, -1},
};

static void children_spawn(void) {
    for (size_t i = 0; i < sizeof children / sizeof children[0]; i++) {
        int go[2], out[2];
        if (pipe(go) || pipe(out))
            abort();
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0)
            abort();
        if (pid == 0) {
            close(go[1]);
            close(out[0]);
            for (size_t j = 0; j < i; j++) {    /* earlier children's pipes */
                close(children[j].go_fd);
                close(children[j].out_fd);
            }
            char c;
            if (read(go[0], &c, 1) != 1)
                _exit(0);       /* the test never ran (filtered out) */
            dup2(out[1], STDOUT_FILENO);
            dup2(out[1], STDERR_FILENO);
            close(out[1]);
            children[i].fn();
            _exit(0);
        }
        close(go[0]);
        close(out[1]);
        children[i].pid = pid;
        children[i].go_fd = go[1];
        children[i].out_fd = out[0];
    }
}

/* Run child `name`; its output goes to out. Returns the wait status. */
static int child_run(const char *name, char *out, size_t cap) {
    child *c = NULL;
    for (size_t i = 0; i < sizeof children / sizeof children[0]; i++)
        if (strcmp(children[i].name, name) == 0)
            c = &children[i];
    assert_non_null(c);
    assert_int_equal(write(c->go_fd, "g", 1), 1);
    close(c->go_fd);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(c->out_fd, out + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == cap - 1)
            break;
    }
    out[len] = '\0';
    close(c->out_fd);
    int status = 0;
    while (waitpid(c->pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    c->pid = 0;
    return status;
}

static void check_child(const char *name, const char *const *expect, size_t n_expect) {
    char out[8192];
    int status = child_run(name, out, sizeof out);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (WIFSIGNALED(status))
            print_error("child '%s' was killed by signal %d (%s); its output:\n%s\n", name,
                        WTERMSIG(status), strsignal(WTERMSIG(status)), out);
        else
            print_error("child '%s' exited with status %d; its output:\n%s\n", name,
                        WEXITSTATUS(status), out);
        fail();
    }
    for (size_t i = 0; i < n_expect; i++) {
        if (!strstr(out, expect[i])) {
            print_error("child '%s' did not print \"%s\"; its output:\n%s\n", name, expect[i], out);
            fail();
        }
    }
}

static void test_immortal(void **state) {
    (void)state;
    static const char *const expect[] = {"immortal: counting stopped", "immortal: survived shutdown",
                                         "immortal: re-init after shutdown works"};
    check_child("immortal", expect, 3);
}

static void test_leaked_objects_then_reinit(void **state) {
    (void)state;
    static const char *const expect[] = {"leak: re-init after shutdown works"};
    check_child("leak", expect, 1);
}

/* ------------------------------------------------------------------------
 * Trashcan: a long chain dies with constant C stack
 * ------------------------------------------------------------------------ */

typedef struct node {
    struct node *next;
    uint64_t index;
} node;

static _Atomic size_t nodes_destroyed;
static _Atomic int chain_order_ok = 1;
static uint64_t expect_index;   /* the chain thread only */

static void node_clear(void *self) {
    node *n = self;
    node *next = n->next;
    n->next = NULL;
    if (next)
        rcgc_decref(next);
}

static void node_destroy(void *self) {
    node *n = self;
    /* Deaths run head first, each node's after its predecessor's. */
    if (n->index != expect_index)
        atomic_store(&chain_order_ok, 0);
    expect_index--;
    atomic_fetch_add_explicit(&nodes_destroyed, 1, memory_order_relaxed);
}

static const rcgc_type node_type = {
    .name = "node",
    .size = sizeof(node),
    .clear = node_clear,
    .destroy = node_destroy,
};

typedef struct {
    size_t length;
    size_t built;
} chain_job;

static void *chain_thread(void *arg) {
    chain_job *job = arg;
    THREAD_CHECK(rcgc_thread_attach() == 0);
    node *head = NULL;
    for (size_t i = 0; i < job->length; i++) {
        node *n = rcgc_new(&node_type);
        THREAD_CHECK(n != NULL);
        n->next = head;     /* steals the reference to the old head */
        n->index = i;
        head = n;
    }
    job->built = job->length;
    expect_index = job->length - 1;
    rcgc_decref(head);      /* one decref kills the whole chain */
    rcgc_thread_detach();
    return NULL;
}

static void test_trashcan_long_chain(void **state) {
    (void)state;
    chain_job job = {.length = SANITIZED ? 1000000 : 10000000};
    atomic_store(&nodes_destroyed, 0);
    atomic_store(&chain_order_ok, 1);
    /* A small stack: recursion of even a few bytes per node would overflow it. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    assert_int_equal(pthread_attr_setstacksize(&attr, 256 << 10), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, &attr, chain_thread, &job), 0);
    pthread_attr_destroy(&attr);
    rcgc_blocking_begin();
    pthread_join(th, NULL);
    rcgc_blocking_end();
    assert_int_equal(job.built, job.length);
    assert_int_equal(atomic_load(&nodes_destroyed), job.length);
    assert_true(atomic_load(&chain_order_ok));
    rcgc_stats st;
    rcgc_stats_get(&st);
    /* The whole chain's memory went back to the heaps. */
    assert_true(st.blocks_in_use < 1000);
}

/* A wide, deep tree: nested deaths of many children from one clear. */
typedef struct tree {
    struct tree *kids[3];
} tree;

static _Atomic size_t trees_destroyed;

static void tree_clear(void *self) {
    tree *t = self;
    for (int i = 0; i < 3; i++)
        rcgc_set((void **)&t->kids[i], NULL);
}

static void tree_destroy(void *self) {
    tree *t = self;
    for (int i = 0; i < 3; i++)
        if (t->kids[i])
            abort();    /* clear ran first and dropped them */
    atomic_fetch_add_explicit(&trees_destroyed, 1, memory_order_relaxed);
}

static const rcgc_type tree_type = {
    .name = "tree",
    .size = sizeof(tree),
    .clear = tree_clear,
    .destroy = tree_destroy,
};

static tree *build_tree(int depth, size_t *count) {
    tree *t = rcgc_new(&tree_type);
    (*count)++;
    if (depth > 0)
        for (int i = 0; i < 3; i++)
            t->kids[i] = build_tree(depth - 1, count);
    return t;
}

static void test_trashcan_tree(void **state) {
    (void)state;
    size_t count = 0;
    atomic_store(&trees_destroyed, 0);
    tree *root = build_tree(SANITIZED ? 8 : 11, &count);
    /* A shared subtree: alive until both holders drop it. */
    tree *shared = root->kids[1];
    rcgc_incref(shared);
    rcgc_decref(root);
    size_t shared_size = 0;
    for (int d = 0, n = 1; d <= (SANITIZED ? 7 : 10); d++, n *= 3)
        shared_size += (size_t)n;
    assert_int_equal(atomic_load(&trees_destroyed), count - shared_size);
    rcgc_decref(shared);
    assert_int_equal(atomic_load(&trees_destroyed), count);
}

int main(void) {
    children_spawn();   /* before any rcgc_init (see "Immortal objects") */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_zeroed_after_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_var_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_einval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_enomem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear_then_destroy_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_death_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_in_object, setup, teardown),
        cmocka_unit_test(test_immortal),
        cmocka_unit_test(test_leaked_objects_then_reinit),
        cmocka_unit_test_setup_teardown(test_trashcan_long_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trashcan_tree, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
