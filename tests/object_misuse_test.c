/*
 * object_misuse_test: misuse of objects that would corrupt memory is
 * detected and reported through the fatal-error handler, with a message
 * that names the object (its address), its type, its counts, its owner
 * thread and the calling thread (DESIGN.md, "Errors").
 *
 * Each case runs in a forked child: this process never initialises rcgc
 * (liburcu's call_rcu thread does not survive a fork); the child installs
 * test_fatal_handler, calls rcgc_init, names its thread, and before the
 * misuse says what the message must name: OBJ=<address>, and THREAD= (or
 * OWNER=) lines from the thread concerned (test_say_thread). The parent
 * checks the exit status and the message.
 */
#define TEST_NO_TSAN_ATEXIT_SLEEP 1   /* children die on second threads */
#include "test_util.h"

#define MAIN_NAME  "object-misuse-main"     /* longer than pthread's 15 */
#define OTHER_NAME "object-misuse-other"

/* ------------------------------------------------------------------------
 * In the child
 * ------------------------------------------------------------------------ */

/* Memory the handler dumps after the message ("DUMP=<hex>"), if set. */
static const unsigned char *dump_on_fatal;
static size_t dump_len;

static void dumping_handler(const char *message) {
    if (dump_on_fatal) {
        static const char hex[] = "0123456789abcdef";
        char line[8 + 2 * 64 + 2] = "DUMP=";
        size_t n = 5;
        for (size_t i = 0; i < dump_len && i < 64; i++) {
            line[n++] = hex[dump_on_fatal[i] >> 4];
            line[n++] = hex[dump_on_fatal[i] & 15];
        }
        line[n++] = '\n';
        test_write_all(line, n);
    }
    test_fatal_handler(message);
}

#define SETUP_CHECK(cond)                                                        \
    do {                                                                         \
        if (!(cond)) {                                                           \
            test_say("setup failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);  \
            _exit(43);                                                           \
        }                                                                        \
    } while (0)

/* The object and the thread about to misuse it. */
static void announce(const void *o) {
    test_say("OBJ=%p\n", o);
    test_say_thread("THREAD");
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
    if (j->attach) {
        SETUP_CHECK(rcgc_thread_attach() == 0);
        rcgc_thread_set_name(OTHER_NAME);
    } else {
        pthread_setname_np(pthread_self(), "unattached");
    }
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
static void t_say_incref(void *o) {
    test_say_thread("THREAD");
    rcgc_incref(o);
}
static void t_say_decref(void *o) {
    test_say_thread("THREAD");
    rcgc_decref(o);
}
static void t_decref_twice(void *o) {
    rcgc_decref(o);
    rcgc_decref(o);
}

/* The cases. Each ends in a fatal error (or returns: unreported). */

/* A non-owner decrements a freed object (the slow path sees it). */
static void case_decref_freed_by_other_thread(void) {
    void *o = rcgc_new(&victim_type);
    test_say("OBJ=%p\n", o);
    rcgc_decref(o);
    on_thread(t_say_decref, o, 1);
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
    test_say("OBJ=%p\n", o);
    rcgc_decref(o);
    on_thread(t_say_incref, o, 1);
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
    test_say_thread("OWNER");
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
    test_say("OBJ=%p\n", o);
    on_thread(t_incref, o, 1);              /* the other thread's reference */
    rcgc_decref(o);                         /* local 1 -> 0: merged, shared 1 */
    rcgc_decref(o);                         /* misuse: takes the other's reference */
    on_thread(t_say_decref, o, 1);          /* the rightful last decref */
}

/* An object decrements itself while it dies (its count is already zero):
 * on its owner, through the owner's count. */
static void selfish_clear(void *self) { rcgc_decref(self); }
static const rcgc_type self_decref_type = {
    .name = "self_decref_on_clear",
    .size = 40,
    .clear = selfish_clear,
};
static void case_owner_decref_at_zero(void) {
    void *o = rcgc_new(&self_decref_type);
    announce(o);
    test_say_thread("OWNER");
    rcgc_decref(o);                         /* dies; its clear decrefs it again */
}

/* The same on a merged object (no owner): through the shared count, and
 * an increment of a dying object. */
static void self_decref_destroy(void *self) { rcgc_decref(self); }
static void self_incref_destroy(void *self) { rcgc_incref(self); }
static const rcgc_type merged_self_decref_type = {
    .name = "self_decref_on_destroy",
    .size = 40,
    .destroy = self_decref_destroy,
};
static const rcgc_type merged_self_incref_type = {
    .name = "self_incref_on_destroy",
    .size = 40,
    .destroy = self_incref_destroy,
};
static const rcgc_type *merged_type;
static void *merged_obj;
static void t_make_merged_of_type(void *unused) {
    (void)unused;
    merged_obj = rcgc_new(merged_type);
    SETUP_CHECK(merged_obj);
}
static void case_merged_decref_at_zero(void) {
    merged_type = &merged_self_decref_type;
    on_thread(t_make_merged_of_type, NULL, 1);
    announce(merged_obj);
    rcgc_decref(merged_obj);
}
static void case_merged_incref_at_zero(void) {
    merged_type = &merged_self_incref_type;
    on_thread(t_make_merged_of_type, NULL, 1);
    announce(merged_obj);
    rcgc_decref(merged_obj);
}

/* A pointer rcgc never allocated, whose "header" is all zero. */
static _Alignas(16) unsigned char fake_block[48];

static void case_foreign_pointer_decref(void) {
    void *p = fake_block + 32;              /* 16-byte aligned "payload" */
    test_say("OBJ=%p\n", p);
    on_thread(t_say_decref, p, 1);
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
    test_say("OBJ=%p\n", p);
    on_thread(t_say_incref, p, 1);
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
    test_say("OBJ=%p\n", p);
    on_thread(t_say_decref, p, 1);
}

static void case_load_ref_not_shared_read(void) {
    void *o = rcgc_new(&victim_type);
    announce(o);
    test_say_thread("OWNER");
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

/* A slot still holding an object whose last reference was dropped. */
static void case_load_ref_dead_slot(void) {
    void *o = rcgc_new(&shared_read_type);
    announce(o);
    void *slot = o;
    rcgc_decref(o);                         /* dead; its memory waits a grace period */
    rcgc_load_ref(&slot);
}

/* Only the owner may make an object immortal. */
static void *immortal_victim;
static void t_immortalize(void *o) {
    test_say_thread("THREAD");
    rcgc_immortalize(o);
}
static void case_immortalize_not_owner(void) {
    immortal_victim = rcgc_new(&victim_type);
    test_say("OBJ=%p\n", immortal_victim);
    test_say_thread("OWNER");
    on_thread(t_immortalize, immortal_victim, 1);
}

static void case_decref_unattached(void) {
    void *o = rcgc_new(&victim_type);
    rcgc_incref(o);
    test_say("OBJ=%p\n", o);
    test_say_thread("OWNER");
    on_thread(t_say_decref, o, 0);
}

/* Weak references. */
static void case_weakref_to_freed(void) {
    void *o = rcgc_new(&victim_type);
    announce(o);
    rcgc_decref(o);
    (void)rcgc_weakref_new(o, NULL, NULL);
}

static void case_weakref_to_foreign(void) {
    void *p = fake_block + 32;
    announce(p);
    (void)rcgc_weakref_new(p, NULL, NULL);
}

/* ------------------------------------------------------------------------
 * In the parent
 * ------------------------------------------------------------------------ */

static void (*current_case)(void);

static void run_case(void *arg) {
    (void)arg;
    rcgc_set_fatal_handler(dumping_handler);
    SETUP_CHECK(rcgc_init(NULL) == 0);
    rcgc_thread_set_name(MAIN_NAME);
    current_case();
    test_say("NO FATAL ERROR\n");
    _exit(44);
}

enum {
    EXPECT_OBJECT = 1,  /* the message names the announced address and the type */
    EXPECT_COUNTS = 2,  /* ... and its local and shared counts */
    EXPECT_OWNER  = 4,  /* ... and its owner, as the child said OWNER= */
    EXPECT_FOREIGN = 8, /* the address, as not rcgc's */
};

typedef struct {
    void (*fn)(void);
    unsigned flags;
    const char *type;       /* the type the message names (EXPECT_OBJECT) */
    const char *must[6];    /* substrings of the message, NULL-terminated */
} misuse_case;

static const char *check_case(const misuse_case *c) {
    current_case = c->fn;
    const char *out;
    const char *msg = test_fatal_run(run_case, NULL, &out);
    test_fatal_expect_thread(out, msg, "THREAD", "calling thread: ");
    if (c->flags & (EXPECT_OBJECT | EXPECT_FOREIGN)) {
        char want[160];
        snprintf(want, sizeof want, c->flags & EXPECT_FOREIGN ? "pointer %s: not an object"
                                                              : "object %s of type '%s'",
                 test_value_of(out, "OBJ"), c->type);
        test_fatal_expect(msg, want);
    }
    if (c->flags & EXPECT_COUNTS) {
        test_fatal_expect(msg, "local count");
        test_fatal_expect(msg, "shared count");
    }
    if (c->flags & EXPECT_OWNER)
        test_fatal_expect_thread(out, msg, "OWNER", "owner ");
    for (int i = 0; c->must[i]; i++)
        test_fatal_expect(msg, c->must[i]);
    return out;
}

#define OBJ_COUNTS (EXPECT_OBJECT | EXPECT_COUNTS)
#define V "victim_type"

#define CASE(name, ...)                                                      \
    static void test_##name(void **state) {                                  \
        TEST_BEGIN(state);                                                   \
        misuse_case c = {case_##name, __VA_ARGS__};                          \
        check_case(&c);                                                      \
    }

CASE(decref_freed_by_other_thread, OBJ_COUNTS, V, {"rcgc_decref of a freed object", "owner none", NULL})
CASE(decref_freed_by_former_owner, OBJ_COUNTS, V, {"rcgc_decref of a freed object", NULL})
CASE(incref_freed_by_other_thread, OBJ_COUNTS, V, {"rcgc_incref of a freed object", NULL})
CASE(incref_freed_by_former_owner, OBJ_COUNTS, V, {"rcgc_incref of a freed object", NULL})
CASE(below_zero_at_merge, OBJ_COUNTS | EXPECT_OWNER, V,
     {"reference count below zero while merging", "(queued)", NULL})
CASE(below_zero_when_owner_gives_up, OBJ_COUNTS, V,
     {"rcgc_decref: reference count below zero", "shared count -1", NULL})
CASE(owner_over_decref_after_giving_up, OBJ_COUNTS, V, {"rcgc_decref of a freed object", NULL})
CASE(owner_decref_at_zero, OBJ_COUNTS | EXPECT_OWNER, "self_decref_on_clear",
     {"rcgc_decref: reference count below zero (owner's count was 0)", "local count 0", NULL})
CASE(merged_decref_at_zero, OBJ_COUNTS, "self_decref_on_destroy",
     {"rcgc_decref: reference count below zero", "owner none (counts merged)", NULL})
CASE(merged_incref_at_zero, OBJ_COUNTS, "self_incref_on_destroy",
     {"rcgc_incref of an object whose count is zero", "owner none (counts merged)", NULL})
CASE(foreign_pointer_decref, EXPECT_FOREIGN, NULL, {"rcgc_decref of a pointer rcgc did not allocate", NULL})
CASE(foreign_pointer_incref, EXPECT_FOREIGN, NULL, {"rcgc_incref of a pointer rcgc did not allocate", NULL})
CASE(foreign_pointer_garbage_header_decref, EXPECT_FOREIGN, NULL,
     {"rcgc_decref of a pointer rcgc did not allocate", NULL})
CASE(load_ref_shared_read_ok_then_plain, OBJ_COUNTS | EXPECT_OWNER, V,
     {"rcgc_load_ref on an object whose type lacks RCGC_TYPE_SHARED_READ", NULL})
CASE(load_ref_dead_slot, EXPECT_OBJECT, "victim_shared_read",
     {"rcgc_load_ref: the slot holds an object whose count reached zero", NULL})
CASE(immortalize_not_owner, OBJ_COUNTS | EXPECT_OWNER, V,
     {"rcgc_immortalize must be called by the object's owner", NULL})
CASE(decref_unattached, OBJ_COUNTS | EXPECT_OWNER, V,
     {"rcgc_decref from a thread that is not attached", "local count 2", "'unattached', not attached",
      NULL})
CASE(weakref_to_freed, OBJ_COUNTS, V, {"rcgc_weakref_new of a freed object", NULL})
CASE(weakref_to_foreign, EXPECT_FOREIGN, NULL,
     {"rcgc_weakref_new of a pointer rcgc did not allocate", NULL})

/* Reported before rcgc writes anything into the foreign memory (DESIGN:
 * misuse is detected, never a corruption). */
static void test_foreign_pointer_decref_leaves_memory_alone(void **state) {
    TEST_BEGIN(state);
    misuse_case c = {case_foreign_pointer_decref_dump, EXPECT_FOREIGN, NULL, {NULL}};
    const char *out = check_case(&c);
    const char *dump = strstr(out, "DUMP=");
    assert_non_null(dump);
    char expect[5 + 64 + 1];
    memcpy(expect, "DUMP=", 5);
    memset(expect + 5, '0', 64);
    expect[69] = '\0';
    if (strncmp(dump, expect, 69) != 0)
        fail_msg("rcgc wrote into the header of memory it does not own:\n  %.*s\n  (was all zero)",
                 69, dump);
}

int main(void) {
    test_main_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decref_freed_by_other_thread),
        cmocka_unit_test(test_decref_freed_by_former_owner),
        cmocka_unit_test(test_incref_freed_by_other_thread),
        cmocka_unit_test(test_incref_freed_by_former_owner),
        cmocka_unit_test(test_below_zero_at_merge),
        cmocka_unit_test(test_below_zero_when_owner_gives_up),
        cmocka_unit_test(test_owner_over_decref_after_giving_up),
        cmocka_unit_test(test_owner_decref_at_zero),
        cmocka_unit_test(test_merged_decref_at_zero),
        cmocka_unit_test(test_merged_incref_at_zero),
        cmocka_unit_test(test_foreign_pointer_decref),
        cmocka_unit_test(test_foreign_pointer_decref_leaves_memory_alone),
        cmocka_unit_test(test_foreign_pointer_incref),
        cmocka_unit_test(test_foreign_pointer_garbage_header_decref),
        cmocka_unit_test(test_load_ref_shared_read_ok_then_plain),
        cmocka_unit_test(test_load_ref_dead_slot),
        cmocka_unit_test(test_immortalize_not_owner),
        cmocka_unit_test(test_decref_unattached),
        cmocka_unit_test(test_weakref_to_freed),
        cmocka_unit_test(test_weakref_to_foreign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
