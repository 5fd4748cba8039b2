/*
 * churn_stress: torture test of thread churn (lib/thread.c, the heap's
 * abandonment and adoption, refcount.c's merges at detach, qsbr.c's
 * threads going offline): thousands of short-lived threads attach,
 * allocate, share objects with long-lived threads and exit, most of them
 * WITHOUT calling rcgc_thread_detach. rcgc.h promises that a thread that
 * exits attached is detached by a pthread key destructor: its owned counts
 * merged, its pages abandoned (and adopted by others), its deferred frees
 * handed on; its thread state reused, its serial never.
 *
 * NOT A BENCHMARK. The lifetimes/s it prints only show that it is making
 * progress.
 *
 * Threads. Main keeps --threads short-lived threads running: each time one
 * ends, main joins it and starts the next (a new serial number; --ops=N
 * stops after N lifetimes). --survivors long-lived threads run for the
 * whole run.
 *
 * A lifetime (its schedule drawn from (seed, serial) only): attach, then
 * 8-200 operations: make objects (tracked, canary from the id; their two
 * children, fixed at creation, taken from the exchange table or from the
 * thread's own objects, so objects of dead threads end up under objects of
 * live ones), deposit objects in the exchange table (replacing, and maybe
 * dropping the last reference to, another thread's object), take objects
 * from it, allocate raw blocks (freed locally, or handed to a survivor
 * that frees them after their owner is gone), store RCGC_TYPE_SHARED_READ
 * objects into the load slots that survivors read with rcgc_load_ref, make
 * weak references whose callbacks free them, count on others' objects,
 * collect now and then. Then it leaves in one of five ways: drop its
 * references and return attached; return attached still holding nothing
 * but its deposits (others drop them later: merged counts); call
 * pthread_exit attached; detach, then return; detach, re-attach, and
 * return attached.
 *
 * Survivors take objects from the table and check them (canary, id, no
 * death recorded, children intact), keep some in a ring, make objects
 * whose children are what they hold and deposit them, load the shared
 * slots with rcgc_load_ref, free the raw blocks handed to them after
 * checking their pattern, and collect now and then.
 *
 * Checks, while running: rcgc_stats_get never reports more attached
 * threads than can be alive (short-lived + survivors + main); the serials
 * rcgc_stats_threads lists are distinct. At the end (every lifetime over,
 * survivors joined): exactly main attached; main empties the table, the
 * load slots and the raw mailboxes and collects until nothing is found;
 * then every id died exactly once, created == destroyed, raw blocks
 * allocated == freed, one callback per weak reference (every referent
 * died), rcgc_stats_get's blocks in use back to where they were before
 * the run (besides SHARED_READ frees waiting for a grace period), and
 * after rcgc_shutdown + rcgc_init nothing in use. Any violation makes the
 * exit status 1.
 *
 * Schedule: the hash of every lifetime's schedule, summed over lifetimes
 * (order-free), so with --ops=N the same seed gives the same hash with any
 * number of threads (run.sh checks it with --threads=1).
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
#define NXCH        512u        /* exchange table */
#define NLOAD       64u         /* SHARED_READ slots read with rcgc_load_ref */
#define NLOCAL      32u         /* references a short-lived thread holds */
#define NRING       128u        /* references a survivor holds */
#define RAW_CAP     4096u       /* raw blocks waiting for a survivor */
#define MAX_OPS     200u        /* operations in a lifetime, at most */
#define MAX_DEPTH   3u          /* deeper objects are no one's children: bounds the live graph */
#define MAX_THREADS_STATS 2048u
#define EXTRA_BLOCKS_SLACK 96u
#define FINAL_ROUNDS 16
#define SALT 0xC4124Full          /* canaries: stress_canary(id, SALT) */

#define BUMP STRESS_BUMP
#define LOAD STRESS_LOAD
#define INC(v) atomic_fetch_add_explicit(&(v), 1, memory_order_relaxed)

/* ------------------------------------------------------------------------
 * Objects
 * ------------------------------------------------------------------------ */
enum { KIND_OBJ = 0x43484F42u, KIND_SHARED = 0x43485352u };

typedef struct cobj {
    uint64_t canary;        /* stress_canary(id) while alive, STRESS_POISON after destroy */
    uint64_t id;
    uint64_t serial;        /* the lifetime that made it (survivors: UINT64_MAX - n) */
    uint32_t kind;
    uint32_t depth;         /* 0 without children, else 1 + the deepest child's */
    stress_pair pr;         /* children: fixed at creation; dropped by clear */
} cobj;

static uint64_t g_seed;
static _Atomic uint64_t g_created, g_destroyed, g_raw_made, g_raw_freed, g_wr_made, g_wr_cb,
    g_wr_failed;

static int cobj_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    return stress_pair_traverse(&((cobj *)self)->pr, visit, arg);
}

static void cobj_clear(void *self) { stress_pair_clear(&((cobj *)self)->pr); }

static void cobj_destroy(void *self) {
    cobj *o = self;
    if (!stress_on_destroy(self, o->id, o->canary, SALT, 1))
        return;
    if (atomic_load_explicit(&o->pr.clears, memory_order_relaxed) == 0 || o->pr.child[0] ||
        o->pr.child[1])
        stress_violation("object %p (id %llu) destroyed without a clear", self,
                         (unsigned long long)o->id);
    o->canary = STRESS_POISON;
    INC(g_destroyed);
}

static const rcgc_type obj_type = {
    .name = "ch_obj", .size = sizeof(cobj), .traverse = cobj_traverse,
    .clear = cobj_clear, .destroy = cobj_destroy,
};
static const rcgc_type shared_type = {
    .name = "ch_shared", .size = sizeof(cobj), .traverse = cobj_traverse,
    .clear = cobj_clear, .destroy = cobj_destroy, .flags = RCGC_TYPE_SHARED_READ,
};

static int check_one(const cobj *o, const char *when) {
    if (!stress_check_alive(o, o->id, o->canary, SALT, UINT64_MAX, 1, when))
        return 0;
    if (o->kind != KIND_OBJ && o->kind != KIND_SHARED) {
        stress_violation("object %p (id %llu): kind %08x (%s)", (const void *)o,
                         (unsigned long long)o->id, o->kind, when);
        return 0;
    }
    return 1;
}

/* An object the caller holds: intact and alive, its children too. */
static int check_obj(const cobj *o, const char *when) {
    if (!check_one(o, when))
        return 0;
    for (int i = 0; i < 2; i++)
        if (o->pr.child[i] && !check_one(o->pr.child[i], when))
            return 0;
    return 1;
}

static cobj *obj_new(const rcgc_type *t, uint64_t serial, cobj *c0, cobj *c1) {
    if (c0 && c0->depth >= MAX_DEPTH)
        c0 = NULL;
    if (c1 && c1->depth >= MAX_DEPTH)
        c1 = NULL;
    cobj *o = stress_new_zeroed(t, sizeof *o);
    if (!o)
        return NULL;
    o->id = stress_id_new();
    o->canary = stress_canary(o->id, SALT);
    o->serial = serial;
    o->kind = t == &shared_type ? KIND_SHARED : KIND_OBJ;
    o->depth = c0 || c1 ? 1 + (c0 && (!c1 || c0->depth > c1->depth) ? c0->depth : c1->depth) : 0;
    rcgc_xincref(c0);
    rcgc_xincref(c1);
    o->pr.child[0] = c0;
    o->pr.child[1] = c1;
    INC(g_created);
    return o;
}

/* ------------------------------------------------------------------------
 * Shared places: the exchange table (a lock per cell, held for a few
 * instructions with no safepoint inside and no decref), the load slots
 * (rcgc_set / rcgc_load_ref only) and the raw-block mailboxes (one per
 * survivor; with no survivor, the lifetime frees its blocks itself).
 * ------------------------------------------------------------------------ */
typedef struct xcell {
    _Alignas(64) pthread_mutex_t lock;
    cobj *obj;
} xcell;

static xcell g_xch[NXCH];
static void *g_load[NLOAD];

typedef struct rawblk {
    unsigned char *p;
    uint64_t id;
    uint32_t size;
} rawblk;

static uint64_t raw_key(uint64_t id) { return stress_mix64(id ^ g_seed ^ 0x4A3ull); }

static int raw_new(rawblk *b, uint32_t size) {
    b->p = rcgc_malloc(size);
    if (!b->p) {
        stress_violation("rcgc_malloc(%u) returned NULL (errno %d)", size, errno);
        return 0;
    }
    b->id = stress_id_new();
    b->size = size;
    stress_pattern_fill(b->p, 0, size, raw_key(b->id), SIZE_MAX);
    INC(g_raw_made);
    return 1;
}

static void raw_free_checked(const rawblk *b, const char *when) {
    if (!stress_pattern_check(b->p, 0, b->size, raw_key(b->id), SIZE_MAX, when))
        return;     /* leaked */
    if (atomic_fetch_add_explicit(stress_id_cell(b->id), 1, memory_order_relaxed))
        stress_violation("raw block id %llu freed twice (%s)", (unsigned long long)b->id, when);
    rcgc_free(b->p);
    INC(g_raw_freed);
}

static cobj *xch_take_ref(unsigned i, const char *when) {
    xcell *c = &g_xch[i % NXCH];
    pthread_mutex_lock(&c->lock);
    cobj *o = c->obj;
    if (o)
        rcgc_incref(o);
    pthread_mutex_unlock(&c->lock);
    if (o && !check_obj(o, when))
        return NULL;    /* leaked: touching it further could crash and hide the report */
    return o;
}

/* The cell gets a new reference to v (NULL allowed); the old one is
 * dropped after the lock is released. */
static void xch_put(unsigned i, cobj *v) {
    xcell *c = &g_xch[i % NXCH];
    rcgc_xincref(v);
    pthread_mutex_lock(&c->lock);
    cobj *old = c->obj;
    c->obj = v;
    pthread_mutex_unlock(&c->lock);
    if (old && check_obj(old, "replaced in the exchange table"))
        rcgc_decref(old);
}

static void weak_cb(rcgc_weakref *w, void *arg) {
    (void)arg;
    void *o = rcgc_weakref_get(w);
    if (o) {
        stress_violation("rcgc_weakref_get inside a callback returned %p, not NULL", o);
        rcgc_decref(o);
    }
    INC(g_wr_cb);
    rcgc_weakref_free(w);
}

/* ------------------------------------------------------------------------
 * Positions: short-lived threads and survivors
 * ------------------------------------------------------------------------ */
typedef struct counters {
    _Atomic uint64_t ops, lifetimes, news, deposits, takes, raws, raws_sent, shared_sets, weaks,
        counts, collects, loads, load_nulls, received, exit_way[5], sched_hash;
} counters;

typedef struct pos {
    stress_thread t;
    uint64_t serial;        /* main writes it before starting the thread */
    stress_mailbox raw;     /* survivors only: raw blocks to free */
    _Alignas(64) counters c;
} pos;

static pos *g_short, *g_surv;
static unsigned g_nshort, g_nsurv;
static _Atomic uint64_t g_sched;    /* sum of lifetimes' schedule hashes */

/* Exit ways. */
enum { EXIT_RETURN_ATTACHED, EXIT_KEEP_DEPOSITS, EXIT_PTHREAD_EXIT, EXIT_DETACH, EXIT_REATTACH };
static const char *const exit_names[5] = {
    "returned attached", "returned attached right after depositing", "pthread_exit attached",
    "detached then returned", "detached, re-attached, returned attached",
};

typedef struct life {
    pos *p;
    stress_rng rng;         /* one draw per operation ... */
    stress_rng sub;         /* ... seeds this one */
    uint64_t hash;
    cobj *local[NLOCAL];
    unsigned nlocal;
} life;

static void attach_or_die(const char *who, uint64_t n) {
    stress_attach("ch-%s%llu", who, (unsigned long long)(n % 100000));
}

static void local_put(life *l, cobj *o) {
    if (l->nlocal == NLOCAL) {
        unsigned i = (unsigned)stress_rng_below(&l->sub, NLOCAL);
        if (check_obj(l->local[i], "dropped by a short-lived thread"))
            rcgc_decref(l->local[i]);
        l->local[i] = o;
    } else {
        l->local[l->nlocal++] = o;
    }
}

static cobj *local_pick(life *l) {
    return l->nlocal ? l->local[stress_rng_below(&l->sub, l->nlocal)] : NULL;
}

static void drop_locals(life *l) {
    while (l->nlocal > 0) {
        cobj *o = l->local[--l->nlocal];
        if (check_obj(o, "dropped by a short-lived thread before it exits"))
            rcgc_decref(o);
    }
}

static void life_op(life *l, unsigned op) {
    counters *c = &l->p->c;
    if (op < 25) {              /* a new object, children from anywhere */
        cobj *c0 = stress_rng_one_in(&l->sub, 2) ? xch_take_ref((unsigned)stress_rng_next(&l->sub),
                                                                 "taken as a child")
                                                  : NULL;
        cobj *c1 = local_pick(l);
        cobj *o = obj_new(&obj_type, l->p->serial, c0, c1);
        if (c0)
            rcgc_decref(c0);
        if (o) {
            local_put(l, o);
            BUMP(c->news, 1);
        }
    } else if (op < 45) {       /* deposit one of ours */
        cobj *o = local_pick(l);
        unsigned i = (unsigned)stress_rng_next(&l->sub);
        if (o) {
            xch_put(i, o);
            BUMP(c->deposits, 1);
        }
    } else if (op < 60) {       /* take one of the table's */
        cobj *o = xch_take_ref((unsigned)stress_rng_next(&l->sub), "taken from the table");
        if (o) {
            local_put(l, o);
            BUMP(c->takes, 1);
        }
    } else if (op < 75) {       /* a raw block: freed here or by a survivor */
        uint32_t size = 8 + (uint32_t)stress_rng_below(&l->sub, stress_rng_one_in(&l->sub, 16)
                                                                     ? 40000 : 500);
        int send = stress_rng_one_in(&l->sub, 2);
        unsigned to = (unsigned)stress_rng_next(&l->sub);
        rawblk b;
        if (!raw_new(&b, size))
            return;
        BUMP(c->raws, 1);
        if (send && g_nsurv && stress_mailbox_put(&g_surv[to % g_nsurv].raw, &b))
            BUMP(c->raws_sent, 1);
        else
            raw_free_checked(&b, "freed by the short-lived thread that made it");
    } else if (op < 82) {       /* a SHARED_READ object into a load slot */
        cobj *o = obj_new(&shared_type, l->p->serial, NULL, NULL);
        unsigned i = (unsigned)stress_rng_next(&l->sub);
        if (o) {
            rcgc_set(&g_load[i % NLOAD], o);
            rcgc_decref(o);
            BUMP(c->shared_sets, 1);
        }
    } else if (op < 88) {       /* a weak reference that frees itself */
        cobj *o = local_pick(l);
        if (o) {
            rcgc_weakref *w = rcgc_weakref_new(o, weak_cb, NULL);
            if (w) {
                INC(g_wr_made);
                BUMP(c->weaks, 1);
            } else {
                INC(g_wr_failed);
                stress_violation("rcgc_weakref_new failed (errno %d)", errno);
            }
        }
    } else if (op < 96) {       /* count on something another thread made */
        cobj *o = xch_take_ref((unsigned)stress_rng_next(&l->sub), "taken to count on");
        if (o) {
            for (int k = 0; k < 4; k++)
                rcgc_incref(o);
            for (int k = 0; k < 4; k++)
                rcgc_decref(o);
            check_obj(o, "after a count burst");
            rcgc_decref(o);
            BUMP(c->counts, 1);
        }
    } else if (op < 99) {       /* drop one */
        if (l->nlocal) {
            unsigned i = (unsigned)stress_rng_below(&l->sub, l->nlocal);
            cobj *o = l->local[i];
            l->local[i] = l->local[--l->nlocal];
            if (check_obj(o, "dropped by a short-lived thread"))
                rcgc_decref(o);
        }
    } else {
        if (stress_rng_one_in(&l->sub, 4))
            rcgc_collect();
        else
            rcgc_collect_young();
        BUMP(c->collects, 1);
    }
}

static void *short_main(void *arg) {
    pos *p = arg;
    life l = {.p = p};
    stress_rng_seed(&l.rng, g_seed, p->serial);
    attach_or_die("t", p->serial);
    unsigned nops = 8 + (unsigned)stress_rng_below(&l.rng, MAX_OPS - 7);
    unsigned way = (unsigned)stress_rng_below(&l.rng, 5);
    l.hash = stress_sched_mix(p->serial, nops, way);
    for (unsigned k = 0; k < nops && !stress_stopping(); k++) {
        uint64_t r = stress_rng_next(&l.rng);
        l.sub.s = stress_rng_next(&l.rng) | 1;
        unsigned op = (unsigned)(r % 100);
        l.hash = stress_sched_mix(l.hash, op, r >> 32);
        life_op(&l, op);
        rcgc_safepoint();
    }
    atomic_fetch_add_explicit(&g_sched, stress_mix64(l.hash), memory_order_relaxed);
    BUMP(p->c.ops, nops);
    BUMP(p->c.lifetimes, 1);
    BUMP(p->c.exit_way[way], 1);
    switch (way) {
    case EXIT_RETURN_ATTACHED:
        drop_locals(&l);
        break;
    case EXIT_KEEP_DEPOSITS:
        /* Leave our objects to the table, owned by us (local counts) until
         * the key destructor merges them. */
        for (unsigned i = 0; i < l.nlocal; i++)
            xch_put((unsigned)(p->serial * 31 + i), l.local[i]);
        drop_locals(&l);
        break;
    case EXIT_PTHREAD_EXIT:
        drop_locals(&l);
        stress_thread_end(&p->t, 1);
        pthread_exit(NULL);
    case EXIT_DETACH:
        drop_locals(&l);
        rcgc_thread_detach();
        if (rcgc_is_attached())
            stress_violation("rcgc_is_attached() after rcgc_thread_detach");
        break;
    case EXIT_REATTACH:
        rcgc_thread_detach();
        for (unsigned i = 0; i < l.nlocal; i++)   /* held across the detach */
            if (l.local[i]->canary != stress_canary(l.local[i]->id, SALT))
                stress_violation("object id %llu held across a detach: canary corrupted",
                                 (unsigned long long)l.local[i]->id);
        attach_or_die("r", p->serial);
        drop_locals(&l);
        break;
    }
    stress_thread_end(&p->t, 1);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Survivors
 * ------------------------------------------------------------------------ */
static void *survivor_main(void *arg) {
    pos *p = arg;
    unsigned id = (unsigned)(p - g_surv);
    stress_rng rng;
    stress_rng_seed(&rng, g_seed, 0xABCD0000ull + id);
    attach_or_die("s", id);
    cobj *ring[NRING] = {0};
    rawblk got[64];
    uint64_t serial = UINT64_MAX - id;
    while (!stress_stopping()) {
        for (unsigned k = 0; k < 64; k++) {
            unsigned op = (unsigned)stress_rng_below(&rng, 100);
            unsigned slot = (unsigned)stress_rng_below(&rng, NRING);
            if (op < 40) {
                cobj *o = xch_take_ref((unsigned)stress_rng_next(&rng), "taken by a survivor");
                if (o) {
                    if (ring[slot] && check_obj(ring[slot], "dropped by a survivor"))
                        rcgc_decref(ring[slot]);
                    ring[slot] = o;
                }
            } else if (op < 55) {
                cobj *o = obj_new(&obj_type, serial, ring[slot],
                                  ring[stress_rng_below(&rng, NRING)]);
                if (o) {
                    xch_put((unsigned)stress_rng_next(&rng), o);
                    rcgc_decref(o);
                }
            } else if (op < 85) {
                cobj *o = rcgc_load_ref(&g_load[stress_rng_below(&rng, NLOAD)]);
                BUMP(p->c.loads, 1);
                if (!o) {
                    BUMP(p->c.load_nulls, 1);
                } else {
                    if (o->kind != KIND_SHARED)
                        stress_violation("rcgc_load_ref returned %p, not a shared object",
                                         (void *)o);
                    if (check_obj(o, "loaded by a survivor with rcgc_load_ref"))
                        rcgc_decref(o);
                }
            } else if (op < 99 || !stress_rng_one_in(&rng, 16)) {
                if (ring[slot]) {
                    if (check_obj(ring[slot], "dropped by a survivor"))
                        rcgc_decref(ring[slot]);
                    ring[slot] = NULL;
                }
            } else {
                rcgc_collect_young();
                BUMP(p->c.collects, 1);
            }
        }
        size_t n = stress_mailbox_take(&p->raw, got, 64);
        for (size_t i = 0; i < n; i++)
            raw_free_checked(&got[i], "freed by a survivor");
        BUMP(p->c.received, n);
        BUMP(p->c.ops, 64);
        rcgc_safepoint();
    }
    for (unsigned i = 0; i < NRING; i++)
        if (ring[i] && check_obj(ring[i], "dropped by a survivor at the end"))
            rcgc_decref(ring[i]);
    rcgc_thread_detach();
    stress_thread_end(&p->t, 0);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Main thread
 * ------------------------------------------------------------------------ */
#define SUM_SHORT(field) stress_sum(g_short, sizeof *g_short, g_nshort, offsetof(pos, c.field))
#define SUM_SURV(field) stress_sum(g_surv, sizeof *g_surv, g_nsurv, offsetof(pos, c.field))

static rcgc_thread_stats g_ts[MAX_THREADS_STATS];

/* Attached threads: never more than can be alive; distinct serials. */
static size_t check_threads(void) {
    size_t n = rcgc_stats_threads(g_ts, MAX_THREADS_STATS);
    size_t bound = (size_t)g_nshort + g_nsurv + 1;
    if (n > bound)
        stress_violation("rcgc_stats_threads: %zu threads attached, at most %zu can be", n,
                         bound);
    size_t m = n < MAX_THREADS_STATS ? n : MAX_THREADS_STATS;
    for (size_t i = 0; i < m; i++)
        for (size_t j = i + 1; j < m; j++)
            if (g_ts[i].serial == g_ts[j].serial)
                stress_violation("rcgc_stats_threads: serial %llu listed twice (%s, %s)",
                                 (unsigned long long)g_ts[i].serial, g_ts[i].name, g_ts[j].name);
    return n;
}

int main(int argc, char **argv) {
    stress_options opt = {.threads = 8, .seconds = 5, .ops_unit = "short-lived threads in all"};
    unsigned long survivors = 2, collect_ms = 200;
    stress_extra_opt extra[] = {
        {"survivors", &survivors, 0, 64, "long-lived threads beside the short-lived ones"},
        {"collect-ms", &collect_ms, 0, 100000, "main collects every this many ms (0: never)"},
    };
    stress_parse_options(argc, argv, &opt, extra, sizeof extra / sizeof extra[0]);
    g_seed = stress_seed = opt.seed;
    g_nshort = opt.threads;
    g_nsurv = (unsigned)survivors;

    printf("%s: torture test, not a benchmark: %u short-lived threads at a time, %u survivors, "
           "seconds %g, lifetimes %llu, seed %llu%s\n",
           stress_prog, g_nshort, g_nsurv, opt.seconds, (unsigned long long)opt.ops,
           (unsigned long long)g_seed, opt.seed_given ? "" : " (pass --seed to repeat)");
    fflush(stdout);

    stress_init_runtime(NULL, "ch-main");
    for (unsigned i = 0; i < NXCH; i++)
        pthread_mutex_init(&g_xch[i].lock, NULL);
    rcgc_stats st0;
    rcgc_stats_get(&st0);
    double rss0 = stress_rss_mib(), rss_warm = -1;

    g_short = calloc(g_nshort, sizeof *g_short);
    g_surv = calloc(g_nsurv ? g_nsurv : 1, sizeof *g_surv);
    if (!g_short || !g_surv)
        stress_die("out of memory");
    for (unsigned i = 0; i < g_nsurv; i++) {
        stress_mailbox_init(&g_surv[i].raw, sizeof(rawblk), RAW_CAP);
        stress_thread_start(&g_surv[i].t, survivor_main, &g_surv[i]);
    }
    uint64_t next_serial = 0, started = 0;
    uint64_t start = stress_now_ns(), last = start, last_lives = 0;
    uint64_t deadline = start + (uint64_t)(opt.seconds * 1e9);
    uint64_t next_collect = start + collect_ms * 1000000u, main_collects = 0;
    size_t max_attached = 0;
    for (unsigned i = 0; i < g_nshort; i++)
        g_short[i].t.joined = 1;    /* idle until started */
    for (;;) {
        uint64_t now = stress_now_ns();
        int stopping = now >= deadline || stress_violation_count() > 0;
        int can_start = !stopping && (!opt.ops || started < opt.ops);
        unsigned running = 0;
        for (unsigned i = 0; i < g_nshort; i++) {
            pos *p = &g_short[i];
            if (!p->t.joined) {
                if (atomic_load_explicit(&p->t.state, memory_order_acquire) == STRESS_RUNNING) {
                    running++;
                    continue;
                }
                stress_thread_join(&p->t);
            }
            can_start = !stopping && (!opt.ops || started < opt.ops);
            if (can_start) {
                p->serial = next_serial++;
                started++;
                stress_thread_start(&p->t, short_main, p);
                running++;
            }
        }
        if (collect_ms && now >= next_collect) {
            rcgc_collect();
            main_collects++;
            next_collect = now + collect_ms * 1000000u;
        }
        if (now - last >= 1000000000u) {
            size_t n = check_threads();
            rcgc_stats hs;
            rcgc_stats_get(&hs);
            if (n > max_attached)
                max_attached = n;
            uint64_t lives = SUM_SHORT(lifetimes);
            if (rss_warm < 0 && lives >= 200)
                rss_warm = stress_rss_mib();
            double dt = (double)(now - last) / 1e9;
            stress_progress(start, (double)(lives - last_lives) / dt,
                            (long long)(LOAD(g_created) - LOAD(g_destroyed)),
                            "objects (ops/s = lifetimes/s)  lifetimes %llu  attached now %zu  raw "
                            "blocks live %lld  weakrefs %llu (callbacks %llu)  heap: %zu pages "
                            "(%zu abandoned), %.1f MiB committed",
                            (unsigned long long)lives, n,
                            (long long)(LOAD(g_raw_made) - LOAD(g_raw_freed)),
                            (unsigned long long)LOAD(g_wr_made), (unsigned long long)LOAD(g_wr_cb),
                            hs.pages, hs.pages_abandoned,
                            (double)hs.bytes_committed / (1024.0 * 1024.0));
            last = now;
            last_lives = lives;
        }
        if (running == 0 && !can_start)
            break;
        rcgc_blocking_begin();
        stress_sleep_us(500);
        rcgc_blocking_end();
    }
    atomic_store_explicit(&stress_stop, 1, memory_order_relaxed);
    for (unsigned i = 0; i < g_nsurv; i++)
        stress_thread_join(&g_surv[i].t);
    double elapsed = stress_seconds_since(start);
    double rss_end = stress_rss_mib();

    size_t attached = check_threads();
    if (attached != 1)
        stress_violation("%zu threads attached after every worker ended (only main is)",
                         attached);
    /* Empty everything, then collect until nothing is found. */
    for (unsigned i = 0; i < NXCH; i++)
        xch_put(i, NULL);
    for (unsigned i = 0; i < NLOAD; i++)
        rcgc_set(&g_load[i], NULL);
    uint64_t main_raw = 0;
    rawblk got[64];
    for (unsigned i = 0; i < g_nsurv; i++) {
        size_t n;
        while ((n = stress_mailbox_take(&g_surv[i].raw, got, 64)) > 0) {
            for (size_t j = 0; j < n; j++)
                raw_free_checked(&got[j], "freed by main at the end");
            main_raw += n;
        }
    }
    int rounds;
    size_t found = 0;
    for (rounds = 1; rounds <= FINAL_ROUNDS; rounds++)
        if ((found = rcgc_collect()) == 0)
            break;
    for (int i = 0; i < 100; i++)
        rcgc_safepoint();

    stress_ids_check_deaths(0xFF);
    uint64_t created = LOAD(g_created), destroyed = LOAD(g_destroyed);
    if (created != destroyed)
        stress_violation("%llu objects created, %llu destroyed after every reference was dropped "
                         "(%d final collections, the last found %zu)",
                         (unsigned long long)created, (unsigned long long)destroyed, rounds,
                         found);
    if (LOAD(g_raw_made) != LOAD(g_raw_freed))
        stress_violation("%llu raw blocks allocated, %llu freed",
                         (unsigned long long)LOAD(g_raw_made),
                         (unsigned long long)LOAD(g_raw_freed));
    if (LOAD(g_wr_made) != LOAD(g_wr_cb))
        stress_violation("%llu weak references made, %llu callbacks (every referent died: one "
                         "each expected)",
                         (unsigned long long)LOAD(g_wr_made), (unsigned long long)LOAD(g_wr_cb));
    stress_check_heap_back(&st0, EXTRA_BLOCKS_SLACK);
    rcgc_stats st;
    rcgc_stats_get(&st);

    uint64_t lives = SUM_SHORT(lifetimes);
    printf("%s: ran %.2fs: %llu short-lived threads (%.0f/s, not a benchmark), %llu operations "
           "in them; ways out:",
           stress_prog, elapsed, (unsigned long long)lives, elapsed > 0 ? lives / elapsed : 0.0,
           (unsigned long long)SUM_SHORT(ops));
    for (int i = 0; i < 5; i++)
        printf("%s %llu %s", i ? "," : "", (unsigned long long)SUM_SHORT(exit_way[i]),
               exit_names[i]);
    printf("\n%s: %llu objects created, %llu destroyed; %llu new, %llu deposits, %llu takes, %llu "
           "shared-read sets, %llu count bursts, %llu collections by short-lived threads; %llu "
           "raw blocks (%llu freed by survivors, %llu by main); %llu weak references, %llu "
           "callbacks\n",
           stress_prog, (unsigned long long)created, (unsigned long long)destroyed,
           (unsigned long long)SUM_SHORT(news), (unsigned long long)SUM_SHORT(deposits),
           (unsigned long long)SUM_SHORT(takes), (unsigned long long)SUM_SHORT(shared_sets),
           (unsigned long long)SUM_SHORT(counts), (unsigned long long)SUM_SHORT(collects),
           (unsigned long long)LOAD(g_raw_made), (unsigned long long)SUM_SURV(received),
           (unsigned long long)main_raw, (unsigned long long)LOAD(g_wr_made),
           (unsigned long long)LOAD(g_wr_cb));
    printf("%s: survivors: %llu ops, %llu rcgc_load_ref (%llu NULL), %llu collections; main: %llu "
           "collections; at most %zu threads attached at a progress line; rss %.1f MiB at start, "
           "%.1f after 200 lifetimes (-1: fewer ran), %.1f at the end; final stats: blocks_in_use %zu (%zu "
           "before), pages %zu (%zu abandoned), pauses %llu\n",
           stress_prog, (unsigned long long)SUM_SURV(ops), (unsigned long long)SUM_SURV(loads),
           (unsigned long long)SUM_SURV(load_nulls), (unsigned long long)SUM_SURV(collects),
           (unsigned long long)main_collects, max_attached, rss0, rss_warm, rss_end,
           st.blocks_in_use, st0.blocks_in_use, st.pages, st.pages_abandoned,
           (unsigned long long)st.pauses);
    stress_print_schedule(&opt, LOAD(g_sched));

    stress_shutdown_checked();
    for (unsigned i = 0; i < NXCH; i++)
        pthread_mutex_destroy(&g_xch[i].lock);
    for (unsigned i = 0; i < g_nsurv; i++)
        stress_mailbox_destroy(&g_surv[i].raw);
    free(g_short);
    free(g_surv);
    stress_ids_free();
    return stress_finish();
}
