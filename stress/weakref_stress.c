/*
 * weakref_stress: torture test of weak references (lib/weakref.c) racing
 * their referents' death: by the last decref on another thread, by a
 * collection (cyclic referents), and through finalizers that resurrect.
 *
 * NOT A BENCHMARK. The ops/s it prints only shows that it is making
 * progress.
 *
 * Objects (canary from the id): plain (die when the last reference goes),
 * cyclic (a self-loop: only a collection frees them) and fin (a finalizer
 * that resurrects half of them into the strong table). Strong references
 * live in the strong table, weak references in the weak table (a lock per
 * cell, held for a few instructions with no safepoint inside; the weak
 * table's lock is held across rcgc_weakref_get so that nobody frees a weak
 * reference under a reader). Each weak reference has a record: the id of
 * its referent, whether it has a callback, whether the referent had been
 * finalized when it was made, its state (in the table, freed while its
 * referent was alive, freed after the referent died) and its callbacks.
 *
 * Workers make objects with 1-3 weak references into random weak cells,
 * the strong reference into a strong cell or dropped at once; kill objects
 * (take a strong cell's reference and drop it, so that the referent dies
 * on this thread while others get through its weak references); get
 * through random weak cells; free weak references (get first: one freed
 * while its referent is held must never see a callback); make new weak
 * references to objects in the strong table; and collect.
 *
 * What a get may return: NULL, or the live, intact object of the recorded
 * id, never cleared by the collector, and never a finalized object through
 * a weak reference made before its finalization (weak references are
 * cleared before finalizers run: a resurrected object is not reachable
 * through them). Once any get through a weak reference has returned NULL,
 * a get that starts after that must return NULL too. Callbacks: at most
 * one per weak reference, none for one freed while its referent was held,
 * get inside returns NULL, and the callback may allocate (it runs outside
 * any pause).
 *
 * The end: main drops the strong table, collects until nothing is found,
 * then frees every weak reference left: each had to get exactly one
 * callback if it has one (its referent died while it was alive). Every id
 * died exactly once, created == destroyed, and after rcgc_shutdown +
 * rcgc_init nothing is in use. Any violation makes the exit status 1.
 *
 * Schedule: two draws per operation, so with --threads=1 the same seed
 * gives the same schedule (--ops=N prints its hash).
 */
#include <errno.h>
#include <pthread.h>
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
#define NWEAK       512u        /* weak table */
#define NSTRONG     256u        /* strong table */
#define OPS_BATCH   32u
#define FINAL_ROUNDS 16
#define SALT 0x3EA4ull            /* canaries: stress_canary(id, SALT) */

#define BUMP STRESS_BUMP
#define LOAD STRESS_LOAD
#define INC(v) atomic_fetch_add_explicit(&(v), 1, memory_order_relaxed)

/* ------------------------------------------------------------------------
 * Objects
 * ------------------------------------------------------------------------ */
enum { KIND_PLAIN = 1, KIND_CYCLIC = 2, KIND_FIN = 3 };

typedef struct wobj {
    uint64_t canary;            /* stress_canary(id) while alive, STRESS_POISON after destroy */
    uint64_t id;
    uint32_t kind;
    _Atomic uint32_t clears;
    _Atomic uint32_t finalized; /* the finalizer has started */
    void *self;                 /* cyclic objects: themselves (set before sharing) */
} wobj;

static uint64_t g_seed;
static _Atomic uint64_t g_created, g_destroyed, g_gc_deaths, g_finalized, g_resurrected;


static int wobj_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    RCGC_VISIT(((wobj *)self)->self);
    return 0;
}

/* Only the object itself and the collector touch `self` (set before the
 * object is shared, cleared here). */
static void wobj_clear(void *self) {
    wobj *o = self;
    atomic_fetch_add_explicit(&o->clears, 1, memory_order_relaxed);
    void *s = o->self;
    o->self = NULL;
    rcgc_xdecref(s);
}

static void wobj_destroy(void *self) {
    wobj *o = self;
    if (!stress_on_destroy(self, o->id, o->canary, SALT, 1))
        return;
    if (atomic_load_explicit(&o->clears, memory_order_relaxed) >= 2)
        INC(g_gc_deaths);
    o->canary = STRESS_POISON;
    INC(g_destroyed);
}

static void wobj_finalize(void *self);

static const rcgc_type plain_type = {
    .name = "wr_plain", .size = sizeof(wobj), .traverse = wobj_traverse,
    .clear = wobj_clear, .destroy = wobj_destroy,
};
static const rcgc_type fin_type = {
    .name = "wr_fin", .size = sizeof(wobj), .traverse = wobj_traverse,
    .clear = wobj_clear, .finalize = wobj_finalize, .destroy = wobj_destroy,
};

/* An object the caller holds. want_id: UINT64_MAX for any. */
static int check_obj(const wobj *o, uint64_t want_id, const char *when) {
    if (!stress_check_alive(o, o->id, o->canary, SALT, want_id, 1, when))
        return 0;
    if (atomic_load_explicit(&o->clears, memory_order_relaxed)) {
        stress_violation("object %p (id %llu, kind %u) referenced after the collector cleared it "
                         "(%s)",
                         (const void *)o, (unsigned long long)o->id, o->kind, when);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------
 * Tables and weak-reference records
 * ------------------------------------------------------------------------ */
typedef struct scell {
    _Alignas(64) pthread_mutex_t lock;
    wobj *obj;
} scell;

enum { WS_NONE = 0, WS_TABLE, WS_FREED_LIVE, WS_FREED_DEAD, WS_END };

/* A record is one atomic word (8 bytes a weak reference: the table grows
 * with the run). Bits: 0-39 the referent's id, 40-42 state (WS_*), 43 has
 * a callback, 44 the referent was finalized when it was made, 45 a get
 * returned NULL, 48- callbacks. */
typedef struct wrec {
    _Atomic uint64_t word;
} wrec;
#define WR_ID_MASK   ((1ull << 40) - 1)
#define WR_STATE_SHIFT 40
#define WR_HAS_CB    (1ull << 43)
#define WR_AFTER_FIN (1ull << 44)
#define WR_NULL_SEEN (1ull << 45)
#define WR_CB_ONE    (1ull << 48)

static uint64_t wr_load(wrec *r) { return atomic_load_explicit(&r->word, memory_order_acquire); }
static uint64_t wr_id(uint64_t v) { return v & WR_ID_MASK; }
static uint32_t wr_state(uint64_t v) { return (uint32_t)(v >> WR_STATE_SHIFT) & 7u; }
static uint32_t wr_calls(uint64_t v) { return (uint32_t)(v >> 48); }

static void wr_set_state(wrec *r, uint32_t state) {
    uint64_t v = atomic_load_explicit(&r->word, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(
        &r->word, &v, (v & ~(7ull << WR_STATE_SHIFT)) | ((uint64_t)state << WR_STATE_SHIFT),
        memory_order_acq_rel, memory_order_relaxed)) {
    }
}

typedef struct wcell {
    _Alignas(64) pthread_mutex_t lock;
    rcgc_weakref *w;
    uint64_t rec;
} wcell;

static scell g_strong[NSTRONG];
static wcell g_weak[NWEAK];

#define WR_CHUNK_BITS 16
#define WR_CHUNK (1u << WR_CHUNK_BITS)
#define WR_MAX_CHUNKS 4096u
static wrec *_Atomic g_wr[WR_MAX_CHUNKS];
static _Atomic uint64_t g_next_wr, g_cb_total, g_get_hits, g_get_nulls;

static wrec *wrec_at(uint64_t i) {
    uint64_t c = i >> WR_CHUNK_BITS;
    if (c >= WR_MAX_CHUNKS)
        stress_die("too many weak references: raise WR_MAX_CHUNKS");
    wrec *chunk = stress_chunk_get((void *_Atomic *)&g_wr[c], c, WR_CHUNK * sizeof(wrec));
    return &chunk[i & (WR_CHUNK - 1)];
}

static wobj *strong_take(unsigned i) {
    scell *c = &g_strong[i % NSTRONG];
    pthread_mutex_lock(&c->lock);
    wobj *o = c->obj;
    c->obj = NULL;
    pthread_mutex_unlock(&c->lock);
    return o;
}

static wobj *strong_read(unsigned i) {
    scell *c = &g_strong[i % NSTRONG];
    pthread_mutex_lock(&c->lock);
    wobj *o = c->obj;
    if (o)
        rcgc_incref(o);
    pthread_mutex_unlock(&c->lock);
    return o;
}

/* The cell gets a new reference to v; the old one is dropped outside the
 * lock (a death runs callbacks and clear). */
static void strong_put(unsigned i, wobj *v) {
    scell *c = &g_strong[i % NSTRONG];
    rcgc_xincref(v);
    pthread_mutex_lock(&c->lock);
    wobj *old = c->obj;
    c->obj = v;
    pthread_mutex_unlock(&c->lock);
    if (old && check_obj(old, UINT64_MAX, "replaced in the strong table"))
        rcgc_decref(old);
}

static void wobj_finalize(void *self) {
    wobj *o = self;
    if (atomic_exchange_explicit(&o->finalized, 1, memory_order_relaxed))
        stress_violation("finalizer of id %llu called twice", (unsigned long long)o->id);
    INC(g_finalized);
    if (o->canary != stress_canary(o->id, SALT))
        stress_violation("finalizer of id %llu: canary corrupted", (unsigned long long)o->id);
    uint64_t d = stress_mix64(o->id ^ g_seed ^ 0xF1ull);
    if (d & 1) {
        strong_put((unsigned)(d >> 8), o);     /* resurrected */
        INC(g_resurrected);
    }
}

static void weak_cb(rcgc_weakref *w, void *arg) {
    uint64_t idx = (uint64_t)(uintptr_t)arg;
    wrec *r = wrec_at(idx);
    INC(g_cb_total);
    uint64_t v = atomic_fetch_add_explicit(&r->word, WR_CB_ONE, memory_order_acq_rel);
    uint32_t calls = wr_calls(v), state = wr_state(v);
    if (calls)
        stress_violation("weak reference #%llu (to id %llu): callback called %u times",
                         (unsigned long long)idx,
                         (unsigned long long)wr_id(v), calls + 1);
    if (state == WS_FREED_LIVE)
        stress_violation("weak reference #%llu: callback after it was freed while its referent "
                         "was held",
                         (unsigned long long)idx);
    if (!(v & WR_HAS_CB))
        stress_violation("weak reference #%llu made without a callback got one",
                         (unsigned long long)idx);
    void *o = rcgc_weakref_get(w);
    if (o) {
        stress_violation("rcgc_weakref_get inside the callback of #%llu returned %p, not NULL",
                         (unsigned long long)idx, o);
        rcgc_decref(o);
    }
    /* Outside any pause: allocating must work. */
    wobj *t = stress_new_zeroed(&plain_type, sizeof *t);
    if (t) {
        t->id = stress_id_new();
        t->canary = stress_canary(t->id, SALT);
        t->kind = KIND_PLAIN;
        INC(g_created);
        rcgc_decref(t);
    }
}

/* A weak reference to o (held by the caller) into weak cell i; the one it
 * replaces is freed through free_checked. */
static void free_checked(rcgc_weakref *w, uint64_t rec, int at_end);

static void weak_make(wobj *o, unsigned i, int with_cb) {
    uint64_t idx = atomic_fetch_add_explicit(&g_next_wr, 1, memory_order_relaxed);
    wrec *r = wrec_at(idx);
    if (o->id > WR_ID_MASK)
        stress_die("object ids beyond 2^40: widen the weak-reference records");
    atomic_store_explicit(&r->word,
                          o->id | (uint64_t)WS_TABLE << WR_STATE_SHIFT | (with_cb ? WR_HAS_CB : 0) |
                              (atomic_load_explicit(&o->finalized, memory_order_relaxed)
                                   ? WR_AFTER_FIN : 0),
                          memory_order_release);
    rcgc_weakref *w = rcgc_weakref_new(o, with_cb ? weak_cb : NULL, (void *)(uintptr_t)idx);
    if (!w) {
        stress_violation("rcgc_weakref_new(id %llu) failed (errno %d)", (unsigned long long)o->id,
                         errno);
        /* Counted as a violation already: record it as settled. */
        atomic_store_explicit(&r->word, o->id | (uint64_t)WS_END << WR_STATE_SHIFT |
                                            (with_cb ? WR_HAS_CB | WR_CB_ONE : 0),
                              memory_order_release);
        return;
    }
    wcell *c = &g_weak[i % NWEAK];
    pthread_mutex_lock(&c->lock);
    rcgc_weakref *old = c->w;
    uint64_t old_rec = c->rec;
    c->w = w;
    c->rec = idx;
    pthread_mutex_unlock(&c->lock);
    if (old)
        free_checked(old, old_rec, 0);
}

/* What a get returned through record rec (null_before: the record's
 * null_seen before the get started). Returns o if fine to use. */
static wobj *check_got(wobj *o, uint64_t rec, uint32_t null_before, const char *when) {
    wrec *r = wrec_at(rec);
    if (!o) {
        atomic_fetch_or_explicit(&r->word, WR_NULL_SEEN, memory_order_relaxed);
        INC(g_get_nulls);
        return NULL;
    }
    INC(g_get_hits);
    uint64_t v = wr_load(r), id = wr_id(v);
    if (!check_obj(o, id, when))
        return NULL;    /* leaked: see check_obj */
    if (null_before)
        stress_violation("weak reference #%llu returned id %llu after a get through it had "
                         "returned NULL (%s)",
                         (unsigned long long)rec, (unsigned long long)id, when);
    if (atomic_load_explicit(&o->finalized, memory_order_relaxed) && !(v & WR_AFTER_FIN))
        stress_violation("weak reference #%llu, made before its referent id %llu was finalized, "
                         "returned it after the finalizer ran (weak references are cleared "
                         "before finalizers) (%s)",
                         (unsigned long long)rec, (unsigned long long)id, when);
    return o;
}

/* Free a weak reference through the protocol: get first; one freed while
 * its referent is held must never get a callback. at_end: the referent is
 * known dead and the weak reference was alive when it died. */
static void free_checked(rcgc_weakref *w, uint64_t rec, int at_end) {
    wrec *r = wrec_at(rec);
    uint32_t null_before = (wr_load(r) & WR_NULL_SEEN) != 0;
    wobj *o = check_got(rcgc_weakref_get(w), rec, null_before, "before freeing the weak reference");
    if (!o) {
        wr_set_state(r, at_end ? WS_END : WS_FREED_DEAD);
        rcgc_weakref_free(w);
        return;
    }
    wr_set_state(r, WS_FREED_LIVE);
    rcgc_weakref_free(w);
    if (at_end)
        stress_violation("weak reference #%llu returned a live object after every object died",
                         (unsigned long long)rec);
    rcgc_decref(o);
}

/* ------------------------------------------------------------------------
 * Workers
 * ------------------------------------------------------------------------ */
typedef struct counters {
    _Atomic uint64_t ops, makes, kills, gets, weak_frees, weak_news, collects, sched_hash;
} counters;

typedef struct pos {
    stress_thread t;
    _Alignas(64) counters c;
} pos;

static pos *g_pos;
static unsigned g_npos;
static uint64_t g_ops_limit;

static void op_make(stress_rng *s, counters *c) {
    unsigned k = (unsigned)stress_rng_below(s, 10);
    unsigned kind = k < 5 ? KIND_PLAIN : k < 8 ? KIND_CYCLIC : KIND_FIN;
    unsigned nweak = 1 + (unsigned)stress_rng_below(s, 3);
    unsigned cells[3], cbs[3];
    for (unsigned i = 0; i < 3; i++) {
        cells[i] = (unsigned)stress_rng_next(s);
        cbs[i] = !stress_rng_one_in(s, 3);
    }
    int keep = !stress_rng_one_in(s, 4);
    unsigned where = (unsigned)stress_rng_next(s);
    wobj *o = stress_new_zeroed(kind == KIND_FIN ? &fin_type : &plain_type, sizeof *o);
    if (!o)
        return;
    o->id = stress_id_new();
    o->canary = stress_canary(o->id, SALT);
    o->kind = kind;
    if (kind != KIND_PLAIN) {
        rcgc_incref(o);
        o->self = o;
    }
    INC(g_created);
    for (unsigned i = 0; i < nweak; i++)
        weak_make(o, cells[i], (int)cbs[i]);
    if (keep)
        strong_put(where, o);
    rcgc_decref(o);     /* not kept: dies here (plain) or becomes garbage */
    BUMP(c->makes, 1);
}

static void op_kill(stress_rng *s, counters *c) {
    wobj *o = strong_take((unsigned)stress_rng_next(s));
    if (o && check_obj(o, UINT64_MAX, "taken from the strong table to kill it")) {
        rcgc_decref(o);
        BUMP(c->kills, 1);
    }
}

static void op_get(stress_rng *s, counters *c) {
    unsigned i = (unsigned)stress_rng_next(s) % NWEAK;
    int hold = stress_rng_one_in(s, 4);
    wcell *wc = &g_weak[i];
    pthread_mutex_lock(&wc->lock);
    uint64_t rec = wc->rec;
    wobj *o = NULL;
    uint32_t null_before = 0;
    int had = wc->w != NULL;
    if (had) {
        null_before = (wr_load(wrec_at(rec)) & WR_NULL_SEEN) != 0;
        o = rcgc_weakref_get(wc->w);
    }
    pthread_mutex_unlock(&wc->lock);
    BUMP(c->gets, 1);
    if (!had)
        return;
    o = check_got(o, rec, null_before, "from rcgc_weakref_get");
    if (!o)
        return;
    if (hold)
        rcgc_safepoint();   /* a pause (a collection) while we hold it */
    if (check_obj(o, UINT64_MAX, "held after a get"))
        rcgc_decref(o);     /* maybe the last reference: death on this thread */
}

static void op_weak_free(stress_rng *s, counters *c) {
    wcell *wc = &g_weak[stress_rng_next(s) % NWEAK];
    pthread_mutex_lock(&wc->lock);
    rcgc_weakref *w = wc->w;
    uint64_t rec = wc->rec;
    wc->w = NULL;
    pthread_mutex_unlock(&wc->lock);
    if (w) {
        free_checked(w, rec, 0);
        BUMP(c->weak_frees, 1);
    }
}

static void op_weak_new(stress_rng *s, counters *c) {
    unsigned cell = (unsigned)stress_rng_next(s);
    int cb = stress_rng_one_in(s, 2);
    wobj *o = strong_read((unsigned)stress_rng_next(s));
    if (!o)
        return;
    if (check_obj(o, UINT64_MAX, "read from the strong table")) {
        weak_make(o, cell, cb);
        rcgc_decref(o);
        BUMP(c->weak_news, 1);
    }
}

static void *worker_main(void *arg) {
    pos *p = arg;
    unsigned id = (unsigned)(p - g_pos);
    stress_rng rng, sub;
    stress_rng_seed(&rng, g_seed, id);
    stress_attach("wr-%u", id);
    while (!stress_stopping()) {
        if (g_ops_limit && LOAD(p->c.ops) >= g_ops_limit)
            break;
        for (unsigned k = 0; k < OPS_BATCH; k++) {
            uint64_t r = stress_rng_next(&rng);
            sub.s = stress_rng_next(&rng) | 1;
            unsigned op = (unsigned)(r % 1000);
            stress_sched_note(&p->c.sched_hash, op, r >> 32);
            if (op < 200)
                op_make(&sub, &p->c);
            else if (op < 350)
                op_kill(&sub, &p->c);
            else if (op < 800)
                op_get(&sub, &p->c);
            else if (op < 880)
                op_weak_free(&sub, &p->c);
            else if (op < 995)
                op_weak_new(&sub, &p->c);
            else {
                if (stress_rng_one_in(&sub, 3))
                    rcgc_collect();
                else
                    rcgc_collect_young();
                BUMP(p->c.collects, 1);
            }
        }
        rcgc_safepoint();
        BUMP(p->c.ops, OPS_BATCH);
    }
    rcgc_thread_detach();
    stress_thread_end(&p->t, 0);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Main thread
 * ------------------------------------------------------------------------ */
#define SUM(field) stress_sum(g_pos, sizeof *g_pos, g_npos, offsetof(pos, c.field))

static void progress(uint64_t start, double dt) {
    static uint64_t last_ops;
    uint64_t ops = SUM(ops);
    stress_progress(start, (double)(ops - last_ops) / dt,
                    (long long)(LOAD(g_created) - LOAD(g_destroyed)),
                    "objects  weakrefs %llu  gets %llu hit / %llu NULL  callbacks %llu  "
                    "finalized %llu (resurrected %llu)  died in collections %llu",
                    (unsigned long long)LOAD(g_next_wr), (unsigned long long)LOAD(g_get_hits),
                    (unsigned long long)LOAD(g_get_nulls), (unsigned long long)LOAD(g_cb_total),
                    (unsigned long long)LOAD(g_finalized), (unsigned long long)LOAD(g_resurrected),
                    (unsigned long long)LOAD(g_gc_deaths));
    last_ops = ops;
}

int main(int argc, char **argv) {
    stress_options opt = {.threads = 4, .seconds = 5};
    unsigned long collect_ms = 50, threshold = 500;
    stress_extra_opt extra[] = {
        {"collect-ms", &collect_ms, 0, 100000, "main collects every this many ms (0: never)"},
        {"threshold", &threshold, 0, 1000000, "automatic collection threshold (0: off)"},
    };
    stress_parse_options(argc, argv, &opt, extra, sizeof extra / sizeof extra[0]);
    g_seed = stress_seed = opt.seed;
    g_npos = opt.threads;
    g_ops_limit = opt.ops;
    printf("%s: torture test, not a benchmark: threads %u, seconds %g, seed %llu%s, collect "
           "every %lu ms, threshold %lu\n",
           stress_prog, g_npos, opt.seconds, (unsigned long long)g_seed,
           opt.seed_given ? "" : " (pass --seed to repeat)", collect_ms, threshold);
    fflush(stdout);

    rcgc_config cfg = {0};
    cfg.gc_threshold = threshold ? (int)threshold : -1;
    stress_init_runtime(&cfg, "wr-main");
    for (unsigned i = 0; i < NSTRONG; i++)
        pthread_mutex_init(&g_strong[i].lock, NULL);
    for (unsigned i = 0; i < NWEAK; i++)
        pthread_mutex_init(&g_weak[i].lock, NULL);

    g_pos = calloc(g_npos, sizeof *g_pos);
    if (!g_pos)
        stress_die("out of memory");
    stress_run_spec run = {g_pos, sizeof *g_pos, g_npos, worker_main, 2000, collect_ms, NULL,
                           progress};
    uint64_t main_collects;
    double elapsed = stress_run(&run, opt.seconds, &main_collects);

    /* Every object dies (finalizers may resurrect into the strong table:
     * drop it again until it stays empty), then every weak reference left
     * is freed: each saw its referent die. */
    int rounds;
    size_t found = 0;
    for (rounds = 1; rounds <= FINAL_ROUNDS; rounds++) {
        for (unsigned i = 0; i < NSTRONG; i++) {
            wobj *o = strong_take(i);
            if (o && check_obj(o, UINT64_MAX, "main, end of run"))
                rcgc_decref(o);
        }
        found = rcgc_collect();
        unsigned left = 0;
        for (unsigned i = 0; i < NSTRONG; i++) {
            pthread_mutex_lock(&g_strong[i].lock);
            left += g_strong[i].obj != NULL;
            pthread_mutex_unlock(&g_strong[i].lock);
        }
        if (found == 0 && left == 0)
            break;
    }
    for (unsigned i = 0; i < NWEAK; i++) {
        rcgc_weakref *w = g_weak[i].w;
        g_weak[i].w = NULL;
        if (w)
            free_checked(w, g_weak[i].rec, 1);
    }
    uint64_t nwr = LOAD(g_next_wr), states[5] = {0}, cb_live = 0, cb_dead = 0, end_missing = 0;
    for (uint64_t i = 0; i < nwr; i++) {
        wrec *r = wrec_at(i);
        uint64_t v = wr_load(r);
        uint32_t st = wr_state(v), calls = wr_calls(v);
        states[st < 5 ? st : 0]++;
        if (st == WS_FREED_LIVE)
            cb_live += calls;
        if (st == WS_FREED_DEAD)
            cb_dead += calls;
        if (st == WS_END && (v & WR_HAS_CB) && calls != 1 && ++end_missing <= 10)
            stress_violation("weak reference #%llu (to id %llu, which died while it was alive): "
                             "%u callbacks, 1 expected",
                             (unsigned long long)i,
                             (unsigned long long)wr_id(v), calls);
        if (st == WS_TABLE || st == WS_NONE)
            stress_violation("weak reference #%llu left in state %u", (unsigned long long)i, st);
    }
    if (cb_live)
        stress_violation("%llu callbacks for weak references freed while their referent was held",
                         (unsigned long long)cb_live);
    stress_ids_check_deaths(0xFF);
    uint64_t created = LOAD(g_created), destroyed = LOAD(g_destroyed);
    if (created != destroyed)
        stress_violation("%llu objects created, %llu destroyed (%d final rounds, the last "
                         "collection found %zu)",
                         (unsigned long long)created, (unsigned long long)destroyed, rounds,
                         found);

    uint64_t ops = SUM(ops);
    printf("%s: ran %.2fs: %llu ops (%.0f/s, not a benchmark), %llu objects (%llu died in "
           "collections, %llu finalized, %llu resurrected), %llu kills, %llu gets through the "
           "table (with the gets before frees: %llu returned the referent, %llu NULL)\n",
           stress_prog, elapsed, (unsigned long long)ops, elapsed > 0 ? ops / elapsed : 0.0,
           (unsigned long long)created, (unsigned long long)LOAD(g_gc_deaths),
           (unsigned long long)LOAD(g_finalized), (unsigned long long)LOAD(g_resurrected),
           (unsigned long long)SUM(kills), (unsigned long long)SUM(gets),
           (unsigned long long)LOAD(g_get_hits), (unsigned long long)LOAD(g_get_nulls));
    printf("%s: weak references %llu: freed while held %llu (callbacks %llu), freed after the "
           "referent died %llu (callbacks %llu), alive when every object died %llu (one callback "
           "each if it has one); callbacks %llu in all; %llu worker collections, %llu by main\n",
           stress_prog, (unsigned long long)nwr, (unsigned long long)states[WS_FREED_LIVE],
           (unsigned long long)cb_live, (unsigned long long)states[WS_FREED_DEAD],
           (unsigned long long)cb_dead, (unsigned long long)states[WS_END],
           (unsigned long long)LOAD(g_cb_total), (unsigned long long)SUM(collects),
           (unsigned long long)main_collects);
    stress_print_schedule(&opt, LOAD(g_pos[0].c.sched_hash));
    stress_shutdown_checked();
    for (unsigned i = 0; i < NSTRONG; i++)
        pthread_mutex_destroy(&g_strong[i].lock);
    for (unsigned i = 0; i < NWEAK; i++)
        pthread_mutex_destroy(&g_weak[i].lock);
    for (unsigned i = 0; i < WR_MAX_CHUNKS; i++)
        free(atomic_load_explicit(&g_wr[i], memory_order_relaxed));
    free(g_pos);
    stress_ids_free();
    return stress_finish();
}
