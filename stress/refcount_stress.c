/*
 * refcount_stress: torture test of object reference counting (lib/object.c,
 * refcount.c, qsbr.c): owner and non-owner counts, merge queues, lock-free
 * loads of RCGC_TYPE_SHARED_READ objects and their deferred frees.
 *
 * NOT A BENCHMARK. The ops/s it prints only shows that it is making
 * progress; every operation carries verification work that a real program
 * would not do.
 *
 * Objects: two types with the same payload (a canary, two child
 * references): a plain `node` and a `shared` type flagged
 * RCGC_TYPE_SHARED_READ. `clear` drops the children; `destroy` checks the
 * canary, poisons it and counts the death. A second death of the same
 * object finds the poison (violation); a use after death finds it too.
 *
 * Cells: a fixed array of NCELLS global slots shared by every thread, each
 * NULL or a `shared` object, written only with rcgc_set and read only with
 * rcgc_load_ref. Plain nodes never enter a cell: they stay in the thread
 * that holds them or are handed over through per-thread mailboxes (a mutex
 * held briefly by everyone, so no blocking region is needed for it).
 *
 * Each worker thread attaches and runs a random schedule of:
 *   - create a node whose children are taken from its own references;
 *   - create a shared object whose children are loaded from cells, and
 *     store it into a cell (keeping or dropping its own reference);
 *   - load a cell (rcgc_load_ref) and verify what it got;
 *   - clear a cell, or store one of its shared objects into a cell;
 *   - incref/decref an object it holds, or keep a second reference to it
 *     (objects created by others: non-owner counting, merge queues);
 *   - drop a reference; send one to another thread's mailbox; receive;
 *   - detach and re-attach while holding references (the owner's counts
 *     are merged with live objects), verifying them while detached;
 *   - exit: hand every reference to the mailboxes and detach; the main
 *     thread then starts a successor for the position (thread churn).
 *
 * At the end main clears every cell, drops what is left in the mailboxes
 * and checks: every object created was destroyed exactly once, rcgc_stats
 * reports no block in use besides SHARED_READ frees waiting for a grace
 * period (and the qsbr batches listing them), and after rcgc_shutdown + rcgc_init nothing is in use. Any
 * violation makes the exit status 1. Under sanitizers the program holds
 * fewer references and detaches and churns more often.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rcgc.h"
#include "stress/stress_util.h"

/* ------------------------------------------------------------------------
 * Tunables
 * ------------------------------------------------------------------------ */
#define NCELLS 1024u
#if STRESS_SANITIZER
#define MAX_HELD      128u
#define DETACH_PER_M  300u      /* rare events, per million operations */
#define EXIT_PER_M    60u
#else
#define MAX_HELD      1024u
#define DETACH_PER_M  30u
#define EXIT_PER_M    3u
#endif
#define MAILBOX_CAP   (MAX_HELD * 2u)
#define OPS_BATCH     64u
#define RECV_BATCH    64u

/* Merge-queue chunks main may keep after the run (see the final check). */
#define EXTRA_BLOCKS_SLACK 8u

#define CANARY_POISON 0xDEADDEADDEADDEADull

/* ------------------------------------------------------------------------
 * Objects
 * ------------------------------------------------------------------------ */
enum { KIND_NODE = 0x4E4F4445u, KIND_SHARED = 0x53484152u };

typedef struct obj {
    uint64_t canary;    /* canary_of(self) while alive, CANARY_POISON after destroy */
    uint32_t kind;      /* KIND_* */
    uint32_t origin;    /* creating thread: position << 16 | generation */
    void *child[2];     /* set at creation, dropped by clear */
} obj;

static uint64_t g_seed;
static _Atomic uint64_t g_created, g_destroyed;

static uint64_t canary_of(const void *o) {
    uint64_t c = stress_mix64((uint64_t)(uintptr_t)o ^ g_seed);
    return c == CANARY_POISON ? c ^ 1 : c;
}

static int obj_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    obj *o = self;
    RCGC_VISIT(o->child[0]);
    RCGC_VISIT(o->child[1]);
    return 0;
}

static void obj_clear(void *self) {
    obj *o = self;
    for (int i = 0; i < 2; i++) {
        void *c = o->child[i];
        o->child[i] = NULL;
        rcgc_xdecref(c);
    }
}

static void obj_destroy(void *self) {
    obj *o = self;
    if (o->canary == CANARY_POISON)
        stress_violation("object %p (kind %08x, created by %u.%u) destroyed twice", self,
                         o->kind, o->origin >> 16, o->origin & 0xFFFFu);
    else if (o->canary != canary_of(o))
        stress_violation("object %p: canary 0x%016llx corrupted when destroyed (expected "
                         "0x%016llx)",
                         self, (unsigned long long)o->canary, (unsigned long long)canary_of(o));
    if (o->child[0] || o->child[1])
        stress_violation("object %p destroyed with children still set after clear", self);
    o->canary = CANARY_POISON;
    atomic_fetch_add_explicit(&g_destroyed, 1, memory_order_relaxed);
}

static const rcgc_type node_type = {
    .name = "rs_node", .size = sizeof(obj), .traverse = obj_traverse,
    .clear = obj_clear, .destroy = obj_destroy,
};
static const rcgc_type shared_type = {
    .name = "rs_shared", .size = sizeof(obj), .traverse = obj_traverse,
    .clear = obj_clear, .destroy = obj_destroy, .flags = RCGC_TYPE_SHARED_READ,
};

/* Verify an object we hold a reference to (and its children, which it
 * holds). `attached`: rcgc_typeof may be asked too. */
static void check_one(const void *p, const char *when, int attached) {
    const obj *o = p;
    if (o->canary == CANARY_POISON) {
        stress_violation("object %p used after it was destroyed (%s)", p, when);
        return;
    }
    if (o->canary != canary_of(o)) {
        stress_violation("object %p: canary 0x%016llx, expected 0x%016llx (%s)", p,
                         (unsigned long long)o->canary, (unsigned long long)canary_of(o), when);
        return;
    }
    if (o->kind != KIND_NODE && o->kind != KIND_SHARED) {
        stress_violation("object %p: kind %08x corrupted (%s)", p, o->kind, when);
        return;
    }
    if (attached) {
        const rcgc_type *t = rcgc_typeof(p);
        if (t != (o->kind == KIND_NODE ? &node_type : &shared_type))
            stress_violation("object %p: rcgc_typeof gives %p, not its type (%s)", p,
                             (const void *)t, when);
    }
}

static void check_obj(const void *p, const char *when, int attached) {
    check_one(p, when, attached);
    const obj *o = p;
    for (int i = 0; i < 2; i++)
        if (o->child[i])
            check_one(o->child[i], when, attached);
}

static void *g_cells[NCELLS];

/* ------------------------------------------------------------------------
 * Thread positions: a mailbox and counters that outlive the threads.
 * ------------------------------------------------------------------------ */
typedef struct counters {
    _Atomic uint64_t ops, held, nodes, shareds, loads, load_nulls, sets, sent, received,
        mailbox_full, detaches, exits, sched_hash;
} counters;

typedef struct pos {
    stress_thread t;        /* first: stress_supervise */
    stress_mailbox mail;    /* references handed to this position (void * items) */
    _Alignas(64) counters c;
} pos;

static pos *g_pos;
static unsigned g_npos;
static uint64_t g_ops_limit;    /* per position; 0: run for --seconds */

#define BUMP STRESS_BUMP
#define LOAD STRESS_LOAD

/* ------------------------------------------------------------------------
 * Workers
 * ------------------------------------------------------------------------ */
typedef struct worker {
    pos *p;
    unsigned id;
    uint32_t origin;
    stress_rng rng;
    void *held[MAX_HELD];   /* strong references (duplicates allowed) */
    size_t nheld;
} worker;

static void drop_at(worker *w, size_t i) {
    void *o = w->held[i];
    w->held[i] = w->held[--w->nheld];
    check_obj(o, "before dropping a reference", 1);
    rcgc_decref(o);
}

/* Keep a reference we own; if the set is full, drop a random one first. */
static void keep(worker *w, void *o) {
    if (w->nheld == MAX_HELD)
        drop_at(w, stress_rng_below(&w->rng, w->nheld));
    w->held[w->nheld++] = o;
}

static void *new_obj(worker *w, const rcgc_type *t) {
    obj *o = rcgc_new(t);
    if (!o) {
        stress_violation("rcgc_new(%s) returned NULL (errno %d)", t->name, errno);
        return NULL;
    }
    atomic_fetch_add_explicit(&g_created, 1, memory_order_relaxed);
    if (o->canary != 0 || o->child[0] || o->child[1] || o->kind != 0)
        stress_violation("rcgc_new(%s) returned %p with a payload not zeroed", t->name,
                         (void *)o);
    if ((uintptr_t)o % 16 != 0)
        stress_violation("rcgc_new returned %p: not 16-byte aligned", (void *)o);
    o->canary = canary_of(o);
    o->kind = t == &node_type ? KIND_NODE : KIND_SHARED;
    o->origin = w->origin;
    return o;
}

/* A node: children are references we hold (any type). */
static void op_new_node(worker *w) {
    obj *o = new_obj(w, &node_type);
    if (!o)
        return;
    BUMP(w->p->c.nodes, 1);
    for (int i = 0; i < 2; i++) {
        if (w->nheld > 0 && !stress_rng_one_in(&w->rng, 3)) {
            void *c = w->held[stress_rng_below(&w->rng, w->nheld)];
            check_obj(c, "before making it a child", 1);
            rcgc_incref(c);
            o->child[i] = c;
        }
    }
    keep(w, o);
}

/* A shared object: children loaded from cells (shared objects only), then
 * stored into a cell. */
static void op_new_shared(worker *w) {
    obj *o = new_obj(w, &shared_type);
    if (!o)
        return;
    BUMP(w->p->c.shareds, 1);
    for (int i = 0; i < 2; i++) {
        if (stress_rng_one_in(&w->rng, 3))
            continue;
        void *c = rcgc_load_ref(&g_cells[stress_rng_below(&w->rng, NCELLS)]);
        if (c) {
            check_obj(c, "after loading it as a child", 1);
            o->child[i] = c;    /* the loaded reference becomes the child's */
        }
    }
    rcgc_set(&g_cells[stress_rng_below(&w->rng, NCELLS)], o);
    BUMP(w->p->c.sets, 1);
    if (stress_rng_one_in(&w->rng, 2))
        keep(w, o);
    else
        rcgc_decref(o);
}

static void op_load(worker *w) {
    void *o = rcgc_load_ref(&g_cells[stress_rng_below(&w->rng, NCELLS)]);
    BUMP(w->p->c.loads, 1);
    if (!o) {
        BUMP(w->p->c.load_nulls, 1);
        return;
    }
    check_obj(o, "after rcgc_load_ref", 1);
    if (((obj *)o)->kind != KIND_SHARED)
        stress_violation("rcgc_load_ref returned %p, not a shared object", o);
    if (stress_rng_one_in(&w->rng, 2))
        keep(w, o);
    else
        rcgc_decref(o);
}

static void op_store(worker *w) {
    void **cell = &g_cells[stress_rng_below(&w->rng, NCELLS)];
    BUMP(w->p->c.sets, 1);
    if (w->nheld > 0 && stress_rng_one_in(&w->rng, 2)) {
        void *o = w->held[stress_rng_below(&w->rng, w->nheld)];
        if (((obj *)o)->kind == KIND_SHARED) {
            check_obj(o, "before storing it into a cell", 1);
            rcgc_set(cell, o);
            return;
        }
    }
    rcgc_set(cell, NULL);
}

static void op_count(worker *w) {
    if (w->nheld == 0)
        return;
    void *o = w->held[stress_rng_below(&w->rng, w->nheld)];
    check_obj(o, "before counting it", 1);
    if (stress_rng_one_in(&w->rng, 2) && w->nheld < MAX_HELD) {
        rcgc_incref(o);     /* a second reference, dropped later in any order */
        w->held[w->nheld++] = o;
    } else {
        unsigned n = (unsigned)stress_rng_range(&w->rng, 1, 4);
        for (unsigned i = 0; i < n; i++)
            rcgc_incref(o);
        if (rcgc_refcount(o) < 1)
            stress_violation("rcgc_refcount(%p) == 0 while held", o);
        for (unsigned i = 0; i < n; i++)
            rcgc_decref(o);
        check_obj(o, "after an incref/decref pair", 1);
    }
}

static unsigned pick_target(worker *w, int others_only) {
    if (g_npos == 1)
        return 0;
    if (!others_only)
        return (unsigned)stress_rng_below(&w->rng, g_npos);
    unsigned t = (unsigned)stress_rng_below(&w->rng, g_npos - 1);
    return t >= w->id ? t + 1 : t;
}

/* Hand a reference over; if the mailbox is full, drop it here. */
static void send(worker *w, void *o, unsigned t) {
    check_obj(o, "before sending it", 1);
    if (stress_mailbox_put(&g_pos[t].mail, &o)) {
        BUMP(w->p->c.sent, 1);
    } else {
        BUMP(w->p->c.mailbox_full, 1);
        rcgc_decref(o);
    }
}

static void op_send(worker *w) {
    if (w->nheld == 0)
        return;
    size_t i = stress_rng_below(&w->rng, w->nheld);
    void *o = w->held[i];
    w->held[i] = w->held[--w->nheld];
    send(w, o, pick_target(w, 1));
}

static void op_receive(worker *w, int keep_some) {
    void *got[RECV_BATCH];
    size_t n = stress_mailbox_take(&w->p->mail, got, RECV_BATCH);
    for (size_t i = 0; i < n; i++) {
        BUMP(w->p->c.received, 1);
        check_obj(got[i], "on receiving it", 1);
        if (keep_some && !stress_rng_one_in(&w->rng, 4)) {
            if (stress_rng_one_in(&w->rng, 4)) {
                rcgc_incref(got[i]);
                rcgc_decref(got[i]);
            }
            keep(w, got[i]);
        } else {
            rcgc_decref(got[i]);
        }
    }
}

static void drop_all(worker *w) {
    while (w->nheld > 0) {
        drop_at(w, w->nheld - 1);
        rcgc_safepoint();
    }
}

static void attach_or_die(worker *w) {
    stress_attach("rs-%u.%u", w->id, w->origin & 0xFFFFu);
}

/* Detach while holding references: our counts are merged; the objects
 * must stay alive and intact until we drop them after re-attaching. */
static void op_detach(worker *w) {
    BUMP(w->p->c.detaches, 1);
    for (size_t i = 0; i < w->nheld; i++)
        check_obj(w->held[i], "before detaching", 1);
    rcgc_thread_detach();
    if (rcgc_is_attached() != 0)
        stress_violation("rcgc_is_attached() != 0 after rcgc_thread_detach (thread %u)", w->id);
    if (stress_rng_one_in(&w->rng, 2))
        stress_sleep_us((unsigned long)stress_rng_range(&w->rng, 10, 300));
    else
        sched_yield();
    for (size_t i = 0; i < w->nheld; i++)
        check_obj(w->held[i], "while detached", 0);
    attach_or_die(w);
    /* Drop about half now: decrefs of objects this thread created before
     * the detach, by a thread that no longer owns them. */
    for (size_t i = 0; i < w->nheld;) {
        if (stress_rng_one_in(&w->rng, 2))
            drop_at(w, i);
        else
            i++;
    }
}

static void op_exit(worker *w) {
    BUMP(w->p->c.exits, 1);
    while (w->nheld > 0) {
        void *o = w->held[--w->nheld];
        send(w, o, pick_target(w, 0));
    }
    rcgc_thread_detach();
}

static void *worker_main(void *arg) {
    pos *p = arg;
    worker *w = calloc(1, sizeof *w);
    if (!w)
        stress_die("out of memory for a worker");
    w->p = p;
    w->id = (unsigned)(p - g_pos);
    w->origin = (uint32_t)w->id << 16 | (p->t.generation & 0xFFFFu);
    stress_rng_seed(&w->rng, g_seed, (uint64_t)w->id << 32 | p->t.generation);
    attach_or_die(w);

    const uint64_t t_detach = (uint64_t)DETACH_PER_M * (1u << 20) / 1000000u;
    const uint64_t t_exit = t_detach + (uint64_t)EXIT_PER_M * (1u << 20) / 1000000u;
    int exiting = 0;

    while (!exiting && !stress_stopping()) {
        if (g_ops_limit && LOAD(p->c.ops) >= g_ops_limit)
            break;
        unsigned k;
        for (k = 0; k < OPS_BATCH && !exiting; k++) {
            uint64_t r = stress_rng_below(&w->rng, 1u << 20);
            stress_sched_note(&p->c.sched_hash, r, w->nheld);
            if (r < t_detach) {
                op_detach(w);
            } else if (r < t_exit) {
                op_exit(w);
                exiting = 1;
            } else {
                unsigned op = (unsigned)(r % 1000);
                if (op < 150)
                    op_new_node(w);
                else if (op < 280)
                    op_new_shared(w);
                else if (op < 430)
                    op_load(w);
                else if (op < 500)
                    op_store(w);
                else if (op < 620)
                    op_count(w);
                else if (op < 780) {
                    if (w->nheld > 0)
                        drop_at(w, stress_rng_below(&w->rng, w->nheld));
                } else if (op < 870)
                    op_send(w);
                else if (op < 950)
                    op_receive(w, 1);
                else if (w->nheld > 0)
                    check_obj(w->held[stress_rng_below(&w->rng, w->nheld)], "on a check", 1);
            }
        }
        rcgc_safepoint();
        atomic_store_explicit(&p->c.held, w->nheld, memory_order_relaxed);
        BUMP(p->c.ops, k);
    }

    if (!exiting) {
        drop_all(w);
        op_receive(w, 0);
        rcgc_thread_detach();
    }
    atomic_store_explicit(&p->c.held, 0, memory_order_relaxed);
    free(w);
    stress_thread_end(&p->t, exiting);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Main thread
 * ------------------------------------------------------------------------ */
#define SUM(field) stress_sum(g_pos, sizeof *g_pos, g_npos, offsetof(pos, c.field))

static void progress(uint64_t start, double dt) {
    static uint64_t last_ops;
    uint64_t ops = SUM(ops), ops_delta = ops - last_ops;
    last_ops = ops;
    rcgc_stats st;
    rcgc_stats_get(&st);
    uint64_t created = atomic_load_explicit(&g_created, memory_order_relaxed);
    uint64_t destroyed = atomic_load_explicit(&g_destroyed, memory_order_relaxed);
    stress_progress(start, dt > 0 ? (double)ops_delta / dt : 0.0,
                    (long long)(created - destroyed),
                    "objects (held refs %llu)  blocks in use %zu "
                    "(%zu shared-read pending)  %zu threads  churn %llu  detaches %llu",
                    (unsigned long long)SUM(held), st.blocks_in_use,
                    st.objects_shared_read_pending, st.threads_attached,
                    (unsigned long long)SUM(exits), (unsigned long long)SUM(detaches));
}

static uint64_t drain_mailboxes(void) {
    uint64_t n = 0;
    void *got[RECV_BATCH];
    for (unsigned i = 0; i < g_npos; i++) {
        size_t k;
        while ((k = stress_mailbox_take(&g_pos[i].mail, got, RECV_BATCH)) > 0) {
            for (size_t j = 0; j < k; j++) {
                check_obj(got[j], "main, end of run", 1);
                rcgc_decref(got[j]);
                n++;
            }
            rcgc_safepoint();
        }
    }
    return n;
}

int main(int argc, char **argv) {
    stress_options opt = { .threads = 4, .seconds = 5 };
    stress_parse_options(argc, argv, &opt, NULL, 0);
    g_seed = opt.seed;
    stress_seed = g_seed;
    g_npos = opt.threads;
    g_ops_limit = opt.ops;

    printf("%s: torture test, not a benchmark: threads %u, seconds %g, cells %u, max held %u, "
           "seed %llu%s%s\n",
           stress_prog, opt.threads, opt.seconds, NCELLS, MAX_HELD, (unsigned long long)g_seed,
           opt.seed_given ? "" : " (pass --seed to repeat)",
           STRESS_SANITIZER ? ", sanitizer build: reduced work" : "");
    fflush(stdout);

    stress_init_runtime(NULL, "rs-main");

    g_pos = calloc(g_npos, sizeof *g_pos);
    if (!g_pos)
        stress_die("out of memory");
    for (unsigned i = 0; i < g_npos; i++)
        stress_mailbox_init(&g_pos[i].mail, sizeof(void *), MAILBOX_CAP);

    stress_run_spec run = {g_pos, sizeof *g_pos, g_npos, worker_main, 2000, 0, NULL, progress};
    /* A worker that exits as the run stops (it drew the exit op before
     * seeing the stop) has no successor: its references sit in the
     * mailboxes, which main drains below. */
    double elapsed = stress_run(&run, opt.seconds, NULL);

    /* Cleanup: cells first (their objects may be in mailboxes too). */
    for (unsigned i = 0; i < NCELLS; i++) {
        void *o = rcgc_load_ref(&g_cells[i]);
        if (o) {
            check_obj(o, "main, clearing the cells", 1);
            rcgc_decref(o);
        }
        rcgc_set(&g_cells[i], NULL);
        rcgc_safepoint();
    }
    uint64_t main_drops = drain_mailboxes();
    for (int i = 0; i < 100; i++)
        rcgc_safepoint();

    uint64_t created = atomic_load_explicit(&g_created, memory_order_relaxed);
    uint64_t destroyed = atomic_load_explicit(&g_destroyed, memory_order_relaxed);
    rcgc_stats st;
    rcgc_stats_get(&st);
    uint64_t ops = SUM(ops);
    printf("%s: ran %.2fs: %llu ops (%.0f/s, not a benchmark), %llu objects created (%llu nodes, "
           "%llu shared), %llu destroyed, %llu loads (%llu NULL), %llu cell sets, %llu handed "
           "over (%llu received, %llu dropped by main at the end), %llu mailbox full, %llu "
           "detaches, %llu thread exits\n",
           stress_prog, elapsed, (unsigned long long)ops, elapsed > 0 ? (double)ops / elapsed : 0,
           (unsigned long long)created, (unsigned long long)SUM(nodes),
           (unsigned long long)SUM(shareds), (unsigned long long)destroyed,
           (unsigned long long)SUM(loads), (unsigned long long)SUM(load_nulls),
           (unsigned long long)SUM(sets), (unsigned long long)SUM(sent),
           (unsigned long long)SUM(received), (unsigned long long)main_drops,
           (unsigned long long)SUM(mailbox_full), (unsigned long long)SUM(detaches),
           (unsigned long long)SUM(exits));
    printf("%s: final stats: blocks_in_use %zu, objects_shared_read_pending %zu, bytes_in_use "
           "%zu, pages %zu (%zu abandoned), allocs_total %zu, frees_total %zu, "
           "remote_frees_total %zu, threads_attached %zu, pauses %llu, watchdog reports %llu\n",
           stress_prog, st.blocks_in_use, st.objects_shared_read_pending, st.bytes_in_use,
           st.pages, st.pages_abandoned, st.allocs_total, st.frees_total, st.remote_frees_total,
           st.threads_attached, (unsigned long long)st.pauses,
           (unsigned long long)st.watchdog_reports);

    if (created != destroyed)
        stress_violation("%llu objects created but %llu destroyed after every reference was "
                         "dropped",
                         (unsigned long long)created, (unsigned long long)destroyed);
    /* What may stay in use: SHARED_READ objects waiting for a grace period
     * (objects_shared_read_pending) and the qsbr batches that list them
     * (heap blocks of their own, at most one per pending object, not
     * counted as pending), plus a few merge-queue chunks the threads keep.
     * rcgc_shutdown below waits for the grace periods: then nothing. */
    if (st.blocks_in_use < st.objects_shared_read_pending ||
        st.blocks_in_use - st.objects_shared_read_pending >
            st.objects_shared_read_pending + EXTRA_BLOCKS_SLACK)
        stress_violation("after every reference was dropped, rcgc_stats_get reports "
                         "blocks_in_use %zu with %zu shared-read frees pending (at most %zu "
                         "bookkeeping blocks expected besides them)",
                         st.blocks_in_use, st.objects_shared_read_pending,
                         st.objects_shared_read_pending + (size_t)EXTRA_BLOCKS_SLACK);
    if (st.threads_attached != 1)
        stress_violation("rcgc_stats_get reports %zu threads attached; only main is",
                         st.threads_attached);

    stress_print_schedule(&opt, LOAD(g_pos[0].c.sched_hash));
    stress_shutdown_checked();
    for (unsigned i = 0; i < g_npos; i++)
        stress_mailbox_destroy(&g_pos[i].mail);
    free(g_pos);
    return stress_finish();
}
