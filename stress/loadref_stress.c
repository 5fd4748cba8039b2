/*
 * loadref_stress: torture test of lock-free readers (rcgc_load_ref, lib/
 * object.c) against writers that replace what they read (rcgc_set), and of
 * the deferred reuse of RCGC_TYPE_SHARED_READ memory that makes it safe
 * (lib/qsbr.c).
 *
 * NOT A BENCHMARK. The ops/s it prints only shows that it is making
 * progress; every load carries verification work.
 *
 * Slots: NSLOTS shared pointers, each NULL or an object of a SHARED_READ
 * type, written only with rcgc_set by the one writer position that owns
 * the slot (slot % writers) and read only with rcgc_load_ref. Every object
 * is made for one slot (its home) with the slot's next version number, a
 * canary and a payload derived from its id, and half the time a reference
 * to the object it replaces (`prev`, only if that one has none: chains of
 * two).
 *
 * Readers (the other positions) load random slots in a tight loop, with
 * no lock and no blocking region. Every object a load returns must be
 * alive (its destroy has not run: per-id records), intact (canary,
 * payload, prev), at home (the slot it came from) and not older than the
 * newest version this reader has already seen in that slot (one writer per
 * slot: a load returns the slot's content at some moment during the call).
 * Then the reader drops it (often the last reference: a writer-owned
 * object dies on the reader's thread, its memory reused only after a grace
 * period), keeps it in a small ring for a while (checked again when
 * dropped: nothing may free what a reader holds), or counts on it. Readers
 * also go offline (a blocking region), detach and re-attach while holding
 * references, and exit (main starts a successor). Writers replace, clear
 * and re-set their slots, and exit too.
 *
 * The end: main clears every slot and checks that every id died exactly
 * once, created == destroyed, and that after rcgc_shutdown (which waits for
 * the grace periods) + rcgc_init nothing is in use. Any violation makes the
 * exit status 1.
 *
 * With --threads=1 the one thread both writes and reads; each operation
 * draws a fixed number of values, so the same seed gives the same
 * schedule (--ops=N prints its hash).
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
#define NSLOTS      256u
#define NPAYLOAD    6u          /* payload words checked on every load */
#define NRING       32u         /* references a reader keeps for a while */
#define OPS_BATCH   64u
#if STRESS_SANITIZER
#define EXIT_PER_M    300u      /* rare events, per million operations */
#define DETACH_PER_M  300u
#define OFFLINE_PER_M 3000u
#else
#define EXIT_PER_M    20u
#define DETACH_PER_M  30u
#define OFFLINE_PER_M 300u
#endif
#define SALT 0x10ADull            /* canaries: stress_canary(id, SALT) */

#define BUMP STRESS_BUMP
#define LOAD STRESS_LOAD
#define INC(v) atomic_fetch_add_explicit(&(v), 1, memory_order_relaxed)

/* ------------------------------------------------------------------------
 * Objects
 * ------------------------------------------------------------------------ */
typedef struct robj {
    uint64_t canary;        /* stress_canary(id) while alive, STRESS_POISON after destroy */
    uint64_t id;
    uint64_t version;       /* the home slot's version when made (from 1) */
    uint32_t home;          /* the slot it is made for */
    _Atomic uint32_t clears;
    struct robj *prev;      /* the object it replaced, or NULL; dropped by clear */
    uint64_t payload[NPAYLOAD];
} robj;

static uint64_t g_seed;
static _Atomic uint64_t g_created, g_destroyed;
static void *g_slot[NSLOTS];
static uint64_t g_version[NSLOTS];  /* owned by the slot's writer position */

static uint64_t payload_word(uint64_t id, unsigned i) { return stress_mix64(id * 8 + i + g_seed); }

static int robj_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    RCGC_VISIT(((robj *)self)->prev);
    return 0;
}

static void robj_clear(void *self) {
    robj *o = self;
    atomic_fetch_add_explicit(&o->clears, 1, memory_order_relaxed);
    robj *p = o->prev;
    o->prev = NULL;
    rcgc_xdecref(p);
}

static void robj_destroy(void *self) {
    robj *o = self;
    if (!stress_on_destroy(self, o->id, o->canary, SALT, 1))
        return;
    if (atomic_load_explicit(&o->clears, memory_order_relaxed) == 0 || o->prev)
        stress_violation("object %p (id %llu) destroyed without a clear", self,
                         (unsigned long long)o->id);
    /* Readers that raced with this death may still read the header and
     * this payload until a grace period ends: the poison is what a load
     * that returned a dead object would see. */
    o->canary = STRESS_POISON;
    INC(g_destroyed);
}

static const rcgc_type robj_type = {
    .name = "lr_obj", .size = sizeof(robj), .traverse = robj_traverse,
    .clear = robj_clear, .destroy = robj_destroy, .flags = RCGC_TYPE_SHARED_READ,
};

/* Check an object the caller holds (want_home: the slot it came from, or
 * NSLOTS for any). Returns 1 if intact. */
static int check_obj(const robj *o, unsigned want_home, const char *when) {
    if (!stress_check_alive(o, o->id, o->canary, SALT, UINT64_MAX, 1, when))
        return 0;
    if (o->home >= NSLOTS || (want_home < NSLOTS && o->home != want_home)) {
        stress_violation("object %p (id %llu) made for slot %u found in slot %u (%s)",
                         (const void *)o, (unsigned long long)o->id, o->home, want_home, when);
        return 0;
    }
    for (unsigned i = 0; i < NPAYLOAD; i++)
        if (o->payload[i] != payload_word(o->id, i)) {
            stress_violation("object %p (id %llu): payload word %u corrupted (%s)",
                             (const void *)o, (unsigned long long)o->id, i, when);
            return 0;
        }
    if (rcgc_typeof(o) != &robj_type) {
        stress_violation("object %p (id %llu): rcgc_typeof is not its type (%s)", (const void *)o,
                         (unsigned long long)o->id, when);
        return 0;
    }
    const robj *p = o->prev;
    if (p && (p->canary != stress_canary(p->id, SALT) || p->home != o->home || p->version >= o->version ||
              atomic_load_explicit(stress_id_cell(p->id), memory_order_relaxed))) {
        stress_violation("object %p (id %llu, slot %u, version %llu): its prev %p (id %llu, slot "
                         "%u, version %llu, canary 0x%016llx) is not intact (%s)",
                         (const void *)o, (unsigned long long)o->id, o->home,
                         (unsigned long long)o->version, (const void *)p,
                         (unsigned long long)p->id, p->home, (unsigned long long)p->version,
                         (unsigned long long)p->canary, when);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------
 * Positions and workers
 * ------------------------------------------------------------------------ */
typedef struct counters {
    _Atomic uint64_t ops, loads, load_nulls, kept, bursts, sets, clears, offline, detaches, exits,
        sched_hash;
} counters;

typedef struct pos {
    stress_thread t;
    _Alignas(64) counters c;
} pos;

static pos *g_pos;
static unsigned g_npos, g_nwriters;
static uint64_t g_ops_limit;

typedef struct worker {
    pos *p;
    unsigned id;
    stress_rng rng, sub;
    robj *ring[NRING];
    uint64_t seen[NSLOTS];      /* newest version seen per slot (readers) */
} worker;

static int writes(unsigned i) { return g_npos == 1 || i < g_nwriters; }
static int reads(unsigned i) { return g_npos == 1 || i >= g_nwriters; }

/* Replace slot i (one of ours) with a new object, or clear it. */
static void op_write(worker *w) {
    /* Writer position id owns the slots id, id + nw, id + 2 nw, ... */
    unsigned nw = g_npos == 1 ? 1 : g_nwriters, first = g_npos == 1 ? 0 : w->id;
    unsigned owned = (NSLOTS - first + nw - 1) / nw;
    unsigned i = first + (unsigned)stress_rng_below(&w->sub, owned) * nw;
    int clear = stress_rng_one_in(&w->sub, 8);
    int chain = stress_rng_one_in(&w->sub, 2);
    if (clear) {
        rcgc_set(&g_slot[i], NULL);
        BUMP(w->p->c.clears, 1);
        return;
    }
    robj *o = stress_new_zeroed(&robj_type, sizeof *o);
    if (!o)
        return;
    o->id = stress_id_new();
    o->canary = stress_canary(o->id, SALT);
    o->home = i;
    o->version = ++g_version[i];
    for (unsigned j = 0; j < NPAYLOAD; j++)
        o->payload[j] = payload_word(o->id, j);
    INC(g_created);
    if (chain) {
        /* The writer reads its own slot as readers do. */
        robj *old = rcgc_load_ref(&g_slot[i]);
        if (old && check_obj(old, i, "loaded by its writer") && !old->prev)
            o->prev = old;      /* takes the loaded reference */
        else if (old)
            rcgc_decref(old);
    }
    rcgc_set(&g_slot[i], o);
    rcgc_decref(o);
    BUMP(w->p->c.sets, 1);
}

static void ring_drop(worker *w, unsigned i, const char *when) {
    robj *o = w->ring[i];
    w->ring[i] = NULL;
    if (o && check_obj(o, NSLOTS, when))
        rcgc_decref(o);
}

static void op_read(worker *w) {
    unsigned i = (unsigned)stress_rng_below(&w->sub, NSLOTS);
    unsigned what = (unsigned)stress_rng_below(&w->sub, 16);
    unsigned r = (unsigned)stress_rng_below(&w->sub, NRING);
    robj *o = rcgc_load_ref(&g_slot[i]);
    BUMP(w->p->c.loads, 1);
    if (!o) {
        BUMP(w->p->c.load_nulls, 1);
        return;
    }
    if (!check_obj(o, i, "returned by rcgc_load_ref"))
        return;     /* leaked: touching it further could crash and hide the report */
    if (o->version < w->seen[i])
        stress_violation("rcgc_load_ref(slot %u) returned version %llu (id %llu) after this "
                         "reader saw version %llu there (one writer per slot)",
                         i, (unsigned long long)o->version, (unsigned long long)o->id,
                         (unsigned long long)w->seen[i]);
    w->seen[i] = o->version;
    if (what < 3) {
        ring_drop(w, r, "dropped from a reader's ring");
        w->ring[r] = o;
        BUMP(w->p->c.kept, 1);
    } else if (what < 4) {
        for (int k = 0; k < 3; k++)
            rcgc_incref(o);
        for (int k = 0; k < 3; k++)
            rcgc_decref(o);
        check_obj(o, i, "after a count burst");
        rcgc_decref(o);
        BUMP(w->p->c.bursts, 1);
    } else {
        rcgc_decref(o);
    }
}

static void attach_or_die(worker *w) {
    stress_attach("lr-%c%u.%u", writes(w->id) ? 'w' : 'r', w->id, w->p->t.generation % 1000);
}

/* Rare events: offline for a moment (a QSBR quiescent period), or detach
 * and re-attach holding the ring (checked while detached). */
static void op_offline(worker *w, int detach) {
    unsigned us = (unsigned)stress_rng_below(&w->sub, 100);
    if (detach) {
        rcgc_thread_detach();
        for (unsigned i = 0; i < NRING; i++)
            if (w->ring[i] && w->ring[i]->canary != stress_canary(w->ring[i]->id, SALT))
                stress_violation("object id %llu held across a detach: canary corrupted",
                                 (unsigned long long)w->ring[i]->id);
        stress_sleep_us(us);
        attach_or_die(w);
        BUMP(w->p->c.detaches, 1);
    } else {
        rcgc_blocking_begin();
        stress_sleep_us(us);
        rcgc_blocking_end();
        BUMP(w->p->c.offline, 1);
    }
}

static void *worker_main(void *arg) {
    pos *p = arg;
    worker *w = calloc(1, sizeof *w);
    if (!w)
        stress_die("out of memory for a worker");
    w->p = p;
    w->id = (unsigned)(p - g_pos);
    stress_rng_seed(&w->rng, g_seed, (uint64_t)w->id << 32 | p->t.generation);
    attach_or_die(w);
    const int wr = writes(w->id), rd = reads(w->id);
    const uint64_t t_exit = (uint64_t)EXIT_PER_M * (1u << 20) / 1000000u;
    const uint64_t t_detach = t_exit + (uint64_t)DETACH_PER_M * (1u << 20) / 1000000u;
    const uint64_t t_offline = t_detach + (uint64_t)OFFLINE_PER_M * (1u << 20) / 1000000u;
    int exiting = 0;
    while (!exiting && !stress_stopping()) {
        if (g_ops_limit && LOAD(p->c.ops) >= g_ops_limit)
            break;
        unsigned k;
        for (k = 0; k < OPS_BATCH && !exiting; k++) {
            uint64_t r = stress_rng_next(&w->rng);
            w->sub.s = stress_rng_next(&w->rng) | 1;
            uint64_t rare = r & ((1u << 20) - 1);
            unsigned op = (unsigned)((r >> 20) % 1000);
            stress_sched_note(&p->c.sched_hash, op, rare);
            if (rare < t_exit)
                exiting = 1;
            else if (rare < t_offline)
                op_offline(w, rare < t_detach);
            else if (wr && (!rd || op < 300))
                op_write(w);
            else if (op % 64 == 0)
                ring_drop(w, (unsigned)stress_rng_below(&w->sub, NRING), "dropped from a ring");
            else
                op_read(w);
        }
        rcgc_safepoint();
        BUMP(p->c.ops, k);
    }
    for (unsigned i = 0; i < NRING; i++)
        ring_drop(w, i, "dropped from a reader's ring at its end");
    if (exiting)
        BUMP(p->c.exits, 1);
    rcgc_thread_detach();
    free(w);
    stress_thread_end(&p->t, exiting);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Main thread
 * ------------------------------------------------------------------------ */
#define SUM(field) stress_sum(g_pos, sizeof *g_pos, g_npos, offsetof(pos, c.field))

static void progress(uint64_t start, double dt) {
    static uint64_t last_ops, last_loads;
    uint64_t ops = SUM(ops), loads = SUM(loads);
    rcgc_stats st;
    rcgc_stats_get(&st);
    stress_progress(start, (double)(ops - last_ops) / dt,
                    (long long)(LOAD(g_created) - LOAD(g_destroyed)),
                    "objects  %.0f loads/s (%llu NULL in all)  %llu sets  shared-read pending %zu  "
                    "churn %llu  detaches %llu",
                    (double)(loads - last_loads) / dt, (unsigned long long)SUM(load_nulls),
                    (unsigned long long)SUM(sets), st.objects_shared_read_pending,
                    (unsigned long long)SUM(exits), (unsigned long long)SUM(detaches));
    last_ops = ops;
    last_loads = loads;
}

int main(int argc, char **argv) {
    stress_options opt = {.threads = 4, .seconds = 5};
    unsigned long writers = 0;
    stress_extra_opt extra[] = {
        {"writers", &writers, 0, 1023, "writer positions (0: a quarter of the threads, at least 1)"},
    };
    stress_parse_options(argc, argv, &opt, extra, sizeof extra / sizeof extra[0]);
    g_seed = stress_seed = opt.seed;
    g_npos = opt.threads;
    g_ops_limit = opt.ops;
    g_nwriters = writers ? (unsigned)writers : g_npos / 4;
    if (g_nwriters < 1)
        g_nwriters = 1;
    if (g_npos > 1 && g_nwriters >= g_npos)
        stress_die("--writers=%u leaves no reader among %u threads", g_nwriters, g_npos);

    printf("%s: torture test, not a benchmark: threads %u (%u writers, %u lock-free readers%s), "
           "%u slots, seconds %g, seed %llu%s%s\n",
           stress_prog, g_npos, g_npos == 1 ? 1 : g_nwriters,
           g_npos == 1 ? 1 : g_npos - g_nwriters, g_npos == 1 ? ": one thread does both" : "",
           NSLOTS, opt.seconds, (unsigned long long)g_seed,
           opt.seed_given ? "" : " (pass --seed to repeat)",
           STRESS_SANITIZER ? ", sanitizer build: more churn" : "");
    fflush(stdout);

    stress_init_runtime(NULL, "lr-main");

    g_pos = calloc(g_npos, sizeof *g_pos);
    if (!g_pos)
        stress_die("out of memory");
    stress_run_spec run = {g_pos, sizeof *g_pos, g_npos, worker_main, 2000, 0, NULL, progress};
    double elapsed = stress_run(&run, opt.seconds, NULL);

    for (unsigned i = 0; i < NSLOTS; i++) {
        robj *o = rcgc_load_ref(&g_slot[i]);
        if (o) {
            check_obj(o, i, "main, clearing the slots");
            rcgc_decref(o);
        }
        rcgc_set(&g_slot[i], NULL);
    }
    for (int i = 0; i < 100; i++)
        rcgc_safepoint();
    uint64_t created = LOAD(g_created), destroyed = LOAD(g_destroyed);
    stress_ids_check_deaths(0xFF);
    if (created != destroyed)
        stress_violation("%llu objects created, %llu destroyed after every slot was cleared",
                         (unsigned long long)created, (unsigned long long)destroyed);
    rcgc_stats st;
    rcgc_stats_get(&st);
    if (st.threads_attached != 1)
        stress_violation("rcgc_stats_get reports %zu threads attached; only main is",
                         st.threads_attached);
    uint64_t ops = SUM(ops);
    printf("%s: ran %.2fs: %llu ops (%.0f/s, not a benchmark), %llu objects created and %llu "
           "destroyed, %llu rcgc_load_ref (%llu NULL), %llu kept in rings, %llu count bursts, "
           "%llu sets, %llu clears, %llu offline periods, %llu detaches, %llu thread exits; "
           "final stats: blocks_in_use %zu, shared-read pending %zu, pauses %llu\n",
           stress_prog, elapsed, (unsigned long long)ops, elapsed > 0 ? ops / elapsed : 0.0,
           (unsigned long long)created, (unsigned long long)destroyed,
           (unsigned long long)SUM(loads), (unsigned long long)SUM(load_nulls),
           (unsigned long long)SUM(kept), (unsigned long long)SUM(bursts),
           (unsigned long long)SUM(sets), (unsigned long long)SUM(clears),
           (unsigned long long)SUM(offline), (unsigned long long)SUM(detaches),
           (unsigned long long)SUM(exits), st.blocks_in_use, st.objects_shared_read_pending,
           (unsigned long long)st.pauses);
    stress_print_schedule(&opt, LOAD(g_pos[0].c.sched_hash));
    stress_shutdown_checked();
    free(g_pos);
    stress_ids_free();
    return stress_finish();
}
