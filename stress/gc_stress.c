/*
 * gc_stress: torture test of the cycle collector (lib/gc.c) and weak
 * references (lib/weakref.c), under the reference counting they sit on:
 * many threads mutate a random object graph, build garbage cycles on
 * purpose and collect, while automatic collections run at a low threshold.
 *
 * NOT A BENCHMARK. The ops/s it prints only shows that it is making
 * progress; every operation carries verification work that a real program
 * would not do.
 *
 * Objects. One payload (gnode): a canary derived from a unique id, the id,
 * NSLOTS pointer slots and, beside each slot, the id of the object it holds
 * (so a slot whose referent was freed and its memory reused is caught),
 * and a count of `clear` calls. Three types share it: `plain`; `fin`,
 * which adds a finalizer; `big` (rcgc_new_var, 1 KB or 40 KB more, ending
 * in a second canary: medium and large pages). traverse visits the slots
 * (and checks what they hold); clear counts the call, drops the slots with
 * rcgc_set(slot, NULL) and sometimes reads a weak reference (below);
 * destroy checks both canaries and that clear ran, poisons the canary and
 * records the id's death. Per id, one byte (g_ids) records deaths,
 * finalizer calls, whether the object has a finalizer and whether the
 * collector cleared it: a second death or a second finalizer call is a
 * violation the moment it happens.
 *
 * Sharing. Every slot that more than one thread can reach is read and
 * written under a mutex, held for a handful of instructions with no rcgc
 * safepoint inside (no allocation, no collection) and no decref (a decref
 * may run clear/destroy): readers lock, load, incref, unlock; writers
 * incref the new value, lock, swap, unlock, then check and decref the old
 * one. The locks: one per cell of the global table (NGLOBAL), of the
 * resurrection table (NRES) and of the finalizers' weak references (NFWR),
 * and NOSTRIPES stripes for object slots (by id). Three paths read object
 * slots without the lock, because the collector promises nobody else can
 * reach the object then: traverse (the world is stopped), clear (the
 * object is garbage, or dying) and destroy (dying). ThreadSanitizer sees a
 * collector that breaks that promise as a race with the locked accesses.
 *
 * What a mutator may see. Every object a thread takes a reference to or
 * drops one of (roots, tables, slots, weak references, snapshots) is
 * checked: the canaries are intact, the id is the one recorded beside the
 * pointer, its destroy has not run, and clear was never called on it (the
 * collector clears only unreachable objects). An object that fails is
 * leaked, not touched again (the end-of-run counts then include it).
 * Garbage dies where rcgc.h says: an object the collector cleared must be
 * destroyed on the collecting thread before that collection ends.
 *
 * Finalizers (fin objects only) count their calls per id (more than one is
 * a violation), check the object and what it refers to, and by a hash of
 * the id sometimes: resurrect the object into the resurrection table
 * (round robin) or the global table, allocate a plain object into a slot,
 * drop a slot, make a weak reference to the object, make one to what it
 * refers to (kept in g_fwr: often garbage of the same collection, which
 * clear and workers read back: CPython GH-91636's case), call rcgc_collect
 * (nested: must return 0), or take an rcgc_gc_get_referents snapshot.
 * Workers and main take resurrected objects back (each must have been
 * finalized exactly once); a worker sometimes uses one as a cache: weak
 * references to what it refers to, its slots cut, the weak references
 * read back across safepoints while the collection that resurrected it
 * may still be running. A fin object that the collector cleared must have
 * been finalized first (PEP 442).
 *
 * Weak references. Each has a record (g_wr, by record number) that says
 * what its callback may do:
 *   ORPHAN      nobody keeps the handle: the callback frees it. When every
 *               object is dead, each ORPHAN must have had exactly one
 *               callback.
 *   KEPT        a worker (or g_fwr) keeps it and gets through it (the
 *               result must be NULL or the live object of the recorded
 *               id), and eventually frees it through the protocol below.
 *   FREED_LIVE  freed while holding a strong reference obtained through it
 *               (so its referent was alive and it was not yet cleared): it
 *               must never get a callback.
 *   FREED_DEAD  get returned NULL before the free (the referent died, or
 *               was found unreachable): at most one callback. (A weak
 *               reference cleared by a collection and freed before the
 *               collection ran its callbacks gets none; the summary counts
 *               how many got one.)
 * Every callback: at most one per weak reference, and get inside it
 * returns NULL.
 *
 * Collections: each worker calls rcgc_collect_young / rcgc_collect with a
 * small probability; main collects every --collect-ms, freezes and
 * unfreezes every --freeze-ms, checks rcgc_gc_get_objects and
 * rcgc_gc_get_referrers snapshots every --introspect-ms, opens a 100 ms
 * RCGC_GC_DEBUG_SAVEALL window every --saveall-ms (then checks the saved
 * garbage and drops it), and changes the threshold or turns automatic
 * collection off and on every --settings-ms; automatic collections run at
 * --threshold. A collection callback checks that collections do not
 * overlap, that their numbers follow each other, that unreachable =
 * collected + resurrected + saved (uncollectable 0: every type has clear;
 * saved only around a save-all window), and that the collection's
 * `finalized` equals the finalizer calls made between its start and end.
 *
 * Workers run a random schedule: allocate objects into their roots (their
 * slots filled from anything they can reach), link random objects into
 * random slots (through their roots, the global table, walks along slots,
 * the resurrection table), cut all the slots of an object, build garbage
 * cycles of 1-8 objects (with finalizers, weak references, links into and
 * out of the live graph), read and write the global table, make, get and
 * free weak references, take resurrected objects, count references,
 * detach and re-attach while holding roots, and exit (main starts a
 * successor: thread churn). Each operation draws exactly two values from
 * the worker's generator (its own choices come from a generator seeded by
 * the second), so the same seed with one thread gives the same schedule
 * (--threads=1 --ops=N prints its hash).
 *
 * At the end, with the workers gone, main checks the live graph against
 * its model: it collects until a full collection finds nothing, then the
 * live objects (created minus destroyed) must be exactly the ones it
 * reaches from the tables through slots, and rcgc_gc_get_objects must list
 * exactly those. Then main drops the tables and collects until a
 * collection finds nothing and nothing was resurrected, and checks: every id allocated
 * died exactly once (nothing leaked, nothing freed twice); no finalizer
 * ran twice (checked as it happens); every ORPHAN weak reference got its
 * callback, no FREED_LIVE got one; the collector's totals agree with the
 * callbacks; rcgc_stats shows no tracked object left and blocks in use
 * back to where they were before the run (within what the weak-reference
 * table and merge queues keep); after rcgc_shutdown + rcgc_init nothing is
 * in use. Any violation makes the exit status 1.
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
#define NSLOTS      4u          /* pointer slots per object */
#define NROOTS      16u         /* private roots per worker */
#define NWEAK       32u         /* KEPT weak references per worker */
#define NGLOBAL     256u        /* global table */
#define NRES        64u         /* resurrection table */
#define NFWR        64u         /* weak references finalizers make (g_fwr) */
#define NOSTRIPES   1024u       /* locks for object slots */
#define OPS_BATCH   32u         /* operations between safepoint polls */
#define MAX_CYCLE   8u
#if STRESS_SANITIZER
#define COLLECT_PER_M 300u      /* rare events, per million operations */
#define DETACH_PER_M  300u
#define EXIT_PER_M    60u
#else
#define COLLECT_PER_M 40u
#define DETACH_PER_M  30u
#define EXIT_PER_M    4u
#endif

/* After the run, blocks the library may keep besides objects: weak
 * reference bucket arrays (at most one grown array per stripe, 64) and
 * merge-queue chunks. */
#define EXTRA_BLOCKS_SLACK 96u
/* Final collections before giving up on the heap emptying. */
#define FINAL_ROUNDS 32

#define CANARY_POISON 0xDEADDEADDEADDEADull
#define NO_ID UINT64_MAX

/* ------------------------------------------------------------------------
 * Per-id records: one byte per object ever allocated, in chunks made on
 * demand (calloc, published with a CAS).
 * ------------------------------------------------------------------------ */
enum {
    ID_DEATHS     = 0x07,   /* destroy calls (saturates at 7) */
    ID_FIN        = 0x08,   /* the object's type has a finalizer */
    ID_FINALS_ONE = 0x10,
    ID_FINALS     = 0x70,   /* finalizer calls */
    ID_GC_CLEARED = 0x80,   /* cleared by the collector (clear ran twice) */
};
/* The records live in stress_util.h's per-id table (stress_id_cell). */
#define id_cell stress_id_cell
#define g_next_id stress_next_id

/* ------------------------------------------------------------------------
 * Weak-reference records, by record number (the callback's arg).
 * ------------------------------------------------------------------------ */
enum { WK_NONE = 0, WK_ORPHAN, WK_KEPT, WK_FREED_LIVE, WK_FREED_DEAD, WK_FAILED };

typedef struct wrec {
    _Atomic uint64_t obj_id;
    _Atomic uint32_t kind;
    _Atomic uint32_t cb_calls;
    _Atomic uint64_t made_during;   /* collection running finalizers when made (0: none) */
} wrec;

#define WR_CHUNK_BITS 16
#define WR_CHUNK (1u << WR_CHUNK_BITS)
#define WR_MAX_CHUNKS 4096u

static wrec *_Atomic g_wr[WR_MAX_CHUNKS];
static _Atomic uint64_t g_next_wr;

static wrec *wrec_at(uint64_t i) {
    uint64_t c = i >> WR_CHUNK_BITS;
    if (c >= WR_MAX_CHUNKS)
        stress_die("more than %llu weak references: raise WR_MAX_CHUNKS",
                   (unsigned long long)WR_MAX_CHUNKS << WR_CHUNK_BITS);
    wrec *chunk = stress_chunk_get((void *_Atomic *)&g_wr[c], c, WR_CHUNK * sizeof(wrec));
    return &chunk[i & (WR_CHUNK - 1)];
}

/* ------------------------------------------------------------------------
 * Global counters
 * ------------------------------------------------------------------------ */
static uint64_t g_seed;
static _Atomic uint64_t g_created, g_destroyed, g_gc_deaths, g_big_created;
static _Atomic uint64_t g_fin_calls, g_fin_resurrect, g_fin_published, g_fin_allocs;
static _Atomic uint64_t g_fin_nested_collects, g_fin_snapshots;
static _Atomic uint64_t g_wr_created, g_wr_callbacks;
static _Atomic uint64_t g_leaked;   /* references leaked after a failed check */

/* The collection in progress (set by the collection callback). */
static _Atomic uint64_t g_cb_last;  /* number of the last collection started */
static _Atomic int g_cb_inside;     /* 1 between its start and its end */
static __thread int tl_collecting;  /* this thread runs that collection */
static __thread const char *tl_op = "main";  /* the worker operation running (reports) */
static _Atomic uint64_t g_fin_phase;/* the last collection that called a finalizer */

#define BUMP STRESS_BUMP
#define LOAD STRESS_LOAD
#define INC(v) atomic_fetch_add_explicit(&(v), 1, memory_order_relaxed)

/* ------------------------------------------------------------------------
 * Objects
 * ------------------------------------------------------------------------ */
enum { KIND_PLAIN = 0x504C4149u, KIND_FIN = 0x46494E41u, KIND_BIG = 0x42494721u };

typedef struct gnode {
    uint64_t canary;            /* canary_of(id) while alive, CANARY_POISON after destroy */
    uint64_t id;                /* unique, set at creation */
    uint32_t kind;              /* KIND_* */
    _Atomic uint32_t clears;    /* clear calls */
    _Atomic uint64_t cleared_by;/* collection whose clear ran first (0: none/not the collector) */
    _Atomic uint64_t weak_got;  /* last collection in progress while a weak get returned it */
    _Atomic uintptr_t cleared_on;   /* the thread that ran collection cleared_by */
    uint64_t extra;             /* big objects: payload bytes after the gnode (ends in a canary) */
    void *slot[NSLOTS];         /* stripe lock, except traverse/clear/destroy (see the top) */
    uint64_t slot_id[NSLOTS];   /* the id of slot[i]'s object (same lock) */
} gnode;

static uint64_t canary_of(uint64_t id) {
    uint64_t c = stress_mix64(id ^ g_seed ^ 0xC4A7A11E5EEDull);
    return c == CANARY_POISON ? c ^ 1 : c;
}

static pthread_mutex_t g_ostripe[NOSTRIPES];
static inline pthread_mutex_t *ostripe(const gnode *n) { return &g_ostripe[n->id % NOSTRIPES]; }

static int node_traverse(void *self, rcgc_visit_fn visit, void *arg);
static void node_clear(void *self);
static void node_finalize(void *self);
static void node_destroy(void *self);

/* Weak references that finalizers make (see fwr_put); the lock guards w and
 * rec, and is held across rcgc_weakref_get (no safepoint inside). */
typedef struct fwr_cell {
    _Alignas(64) pthread_mutex_t lock;
    rcgc_weakref *w;
    uint64_t rec;
} fwr_cell;

static fwr_cell g_fwr[NFWR];
static void fwr_get(unsigned i, const char *when);
static void fwr_put(unsigned i, gnode *x);

static const rcgc_type plain_type = {
    .name = "gs_plain", .size = sizeof(gnode), .traverse = node_traverse,
    .clear = node_clear, .destroy = node_destroy,
};
static const rcgc_type fin_type = {
    .name = "gs_fin", .size = sizeof(gnode), .traverse = node_traverse,
    .clear = node_clear, .finalize = node_finalize, .destroy = node_destroy,
};
/* Variable size (rcgc_new_var): medium and large pages, where the
 * collector keeps a large object's owner in its page descriptor. */
static const rcgc_type big_type = {
    .name = "gs_big", .size = 0, .traverse = node_traverse,
    .clear = node_clear, .destroy = node_destroy,
};
#define BIG_MEDIUM 1000u        /* extra payload of big objects: a medium block ... */
#define BIG_LARGE  (40u << 10)  /* ... or a large one (over RCGC_MEDIUM_MAX, 32 KiB) */

static const char *kind_name(uint32_t kind) {
    return kind == KIND_PLAIN ? "plain" : kind == KIND_FIN ? "fin" : kind == KIND_BIG ? "big" : "?";
}

static const rcgc_type *type_of_kind(uint32_t kind) {
    return kind == KIND_FIN ? &fin_type : kind == KIND_BIG ? &big_type : &plain_type;
}

static uint64_t *tail_of(const gnode *n) {
    return (uint64_t *)((char *)(n + 1) + n->extra - sizeof(uint64_t));
}
static uint64_t tail_canary(uint64_t id) { return canary_of(id) ^ 0x7A117A117A117A11ull; }

/* Check an object the caller holds a reference to. want_id: the id the
 * slot/root/record it came from says it has (NO_ID: unknown). Returns 1 if
 * it looks alive and intact. */
static int check_live(const gnode *n, uint64_t want_id, const char *when) {
    if (n->canary == CANARY_POISON) {
        stress_violation("object %p (id %llu) used after its destroy ran (%s)", (const void *)n,
                         (unsigned long long)n->id, when);
        return 0;
    }
    if (n->canary != canary_of(n->id)) {
        stress_violation("object %p: canary 0x%016llx does not match id %llu (%s): freed and "
                         "reused, or corrupted",
                         (const void *)n, (unsigned long long)n->canary,
                         (unsigned long long)n->id, when);
        return 0;
    }
    if (want_id != NO_ID && n->id != want_id) {
        stress_violation("object %p has id %llu where id %llu was stored (%s): the referent was "
                         "freed while referenced and its memory reused",
                         (const void *)n, (unsigned long long)n->id, (unsigned long long)want_id,
                         when);
        return 0;
    }
    if (n->id >= atomic_load_explicit(&g_next_id, memory_order_relaxed)) {
        stress_violation("object %p: id %llu was never handed out (%s)", (const void *)n,
                         (unsigned long long)n->id, when);
        return 0;
    }
    uint8_t rec = atomic_load_explicit(id_cell(n->id), memory_order_relaxed);
    if (rec & ID_DEATHS) {
        stress_violation("object %p (id %llu) is referenced (%s) but its destroy already ran",
                         (const void *)n, (unsigned long long)n->id, when);
        return 0;
    }
    uint32_t clears = atomic_load_explicit(&n->clears, memory_order_relaxed);
    if (clears) {
        stress_violation("object %p (id %llu, %s) is referenced (%s) but was cleared %u time(s), "
                         "first by collection #%llu (now #%llu%s; last handed out by a weak "
                         "reference during collection #%llu): the collector cleared an object "
                         "still in use",
                         (const void *)n, (unsigned long long)n->id,
                         kind_name(n->kind), when, clears,
                         (unsigned long long)atomic_load_explicit(&n->cleared_by,
                                                                  memory_order_relaxed),
                         (unsigned long long)LOAD(g_cb_last),
                         LOAD(g_cb_inside) ? ", in progress" : "",
                         (unsigned long long)atomic_load_explicit(&n->weak_got,
                                                                  memory_order_relaxed));
        return 0;
    }
    if (n->kind != KIND_PLAIN && n->kind != KIND_FIN && n->kind != KIND_BIG) {
        stress_violation("object %p (id %llu): kind %08x corrupted (%s)", (const void *)n,
                         (unsigned long long)n->id, n->kind, when);
        return 0;
    }
    if ((n->kind == KIND_BIG) != (n->extra != 0) ||
        (n->extra && *tail_of(n) != tail_canary(n->id))) {
        stress_violation("object %p (id %llu, %s): payload of %llu extra bytes, tail corrupted "
                         "(%s)",
                         (const void *)n, (unsigned long long)n->id, kind_name(n->kind),
                         (unsigned long long)n->extra, when);
        return 0;
    }
    if (!!(rec & ID_FIN) != (n->kind == KIND_FIN)) {
        stress_violation("object %p (id %llu): kind %08x disagrees with its record (%s)",
                         (const void *)n, (unsigned long long)n->id, n->kind, when);
        return 0;
    }
    const rcgc_type *t = rcgc_typeof(n);
    if (t != type_of_kind(n->kind)) {
        stress_violation("object %p (id %llu): rcgc_typeof gives %p, not its type (%s)",
                         (const void *)n, (unsigned long long)n->id, (const void *)t, when);
        return 0;
    }
    return 1;
}

/* A new object with a new id; NULL (and a violation) if rcgc_new fails.
 * extra > 0: a big object with that many more payload bytes. */
static gnode *new_node(int fin, size_t extra) {
    const rcgc_type *t = extra ? &big_type : fin ? &fin_type : &plain_type;
    gnode *n = extra ? rcgc_new_var(t, sizeof(gnode) + extra) : rcgc_new(t);
    if (!n) {
        stress_violation("rcgc_new(%s) returned NULL (errno %d)", t->name, errno);
        return NULL;
    }
    if (n->canary || n->id || n->kind || n->extra ||
        atomic_load_explicit(&n->clears, memory_order_relaxed))
        stress_violation("rcgc_new(%s) returned %p with a payload not zeroed", t->name,
                         (void *)n);
    for (unsigned i = 0; i < NSLOTS; i++)
        if (n->slot[i] || n->slot_id[i])
            stress_violation("rcgc_new(%s) returned %p with a slot not zeroed", t->name,
                             (void *)n);
    if ((uintptr_t)n % 16 != 0)
        stress_violation("rcgc_new returned %p: not 16-byte aligned", (void *)n);
    uint64_t id = atomic_fetch_add_explicit(&g_next_id, 1, memory_order_relaxed);
    _Atomic uint8_t *cell = id_cell(id);
    if (t == &fin_type)
        atomic_fetch_or_explicit(cell, ID_FIN, memory_order_relaxed);
    n->id = id;
    n->canary = canary_of(id);
    n->kind = extra ? KIND_BIG : fin ? KIND_FIN : KIND_PLAIN;
    n->extra = extra;
    if (extra) {
        if (*tail_of(n) != 0)
            stress_violation("rcgc_new_var(%s, %zu) returned %p with a payload not zeroed",
                             t->name, sizeof(gnode) + extra, (void *)n);
        *tail_of(n) = tail_canary(id);
        INC(g_big_created);
    }
    INC(g_created);
    return n;
}

/* Drop a reference (NULL allowed) after checking what it holds; one that
 * fails is leaked (see read_slot). */
static void drop_checked(gnode *o, uint64_t id, const char *when) {
    if (!o)
        return;
    if (check_live(o, id, when))
        rcgc_decref(o);
    else
        INC(g_leaked);
}

/* A new reference to n->slot[j] (NULL if empty), checked. A referent that
 * fails its check is leaked, not returned: touching it further could
 * crash and hide the report. */
static gnode *read_slot(gnode *n, unsigned j, const char *when) {
    pthread_mutex_t *l = ostripe(n);
    pthread_mutex_lock(l);
    gnode *p = n->slot[j];
    uint64_t pid = n->slot_id[j];
    if (p)
        rcgc_incref(p);
    pthread_mutex_unlock(l);
    if (p && !check_live(p, pid, when)) {
        INC(g_leaked);
        return NULL;
    }
    return p;
}

/* n->slot[j] := v (a new reference to v; the old one dropped after the
 * lock is released). */
static void link_slot(gnode *n, unsigned j, gnode *v) {
    if (v)
        rcgc_incref(v);
    pthread_mutex_t *l = ostripe(n);
    pthread_mutex_lock(l);
    gnode *old = n->slot[j];
    uint64_t old_id = n->slot_id[j];
    n->slot[j] = v;
    n->slot_id[j] = v ? v->id : 0;
    pthread_mutex_unlock(l);
    drop_checked(old, old_id, "replaced in a slot");
}

static int node_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    gnode *n = self;
    if (n->canary != canary_of(n->id))
        stress_violation("traverse of object %p (id %llu) whose canary is 0x%016llx: %s",
                         self, (unsigned long long)n->id, (unsigned long long)n->canary,
                         n->canary == CANARY_POISON ? "destroyed" : "corrupted");
    for (unsigned i = 0; i < NSLOTS; i++) {
        gnode *c = n->slot[i];
        if (c && (c->canary != canary_of(c->id) || c->id != n->slot_id[i]))
            stress_violation("traverse of object %p (id %llu): slot %u holds %p, id %llu (stored "
                             "id %llu), canary 0x%016llx: a referent freed while referenced",
                             self, (unsigned long long)n->id, i, (void *)c,
                             (unsigned long long)c->id, (unsigned long long)n->slot_id[i],
                             (unsigned long long)c->canary);
        RCGC_VISIT(c);
    }
    return 0;
}

static void node_clear(void *self) {
    gnode *n = self;
    if (n->canary == CANARY_POISON)
        stress_violation("clear of object %p (id %llu) after its destroy", self,
                         (unsigned long long)n->id);
    atomic_fetch_add_explicit(&n->clears, 1, memory_order_relaxed);
    if (tl_collecting) {
        uint64_t none = 0;
        if (atomic_compare_exchange_strong_explicit(&n->cleared_by, &none, LOAD(g_cb_last),
                                                    memory_order_relaxed, memory_order_relaxed))
            atomic_store_explicit(&n->cleared_on, (uintptr_t)pthread_self(),
                                  memory_order_relaxed);
    }
    for (unsigned i = 0; i < NSLOTS; i++)
        rcgc_set(&n->slot[i], NULL);
    uint64_t h = stress_mix64(n->id ^ g_seed ^ 0xC1EA5EEDull);
    if ((h & 3) == 0)
        fwr_get((unsigned)(h >> 32), "in a clear, from a weak reference a finalizer made");
}

static void node_destroy(void *self) {
    gnode *n = self;
    if (n->canary == CANARY_POISON) {
        stress_violation("object %p (id %llu) destroyed twice", self, (unsigned long long)n->id);
        return;
    }
    if (n->canary != canary_of(n->id)) {
        stress_violation("object %p: canary 0x%016llx corrupted when destroyed (id %llu)", self,
                         (unsigned long long)n->canary, (unsigned long long)n->id);
        return;
    }
    if (n->extra && *tail_of(n) != tail_canary(n->id))
        stress_violation("big object %p (id %llu): tail of its %llu extra bytes corrupted when "
                         "destroyed",
                         self, (unsigned long long)n->id, (unsigned long long)n->extra);
    for (unsigned i = 0; i < NSLOTS; i++)
        if (n->slot[i])
            stress_violation("object %p (id %llu) destroyed with slot %u still set (clear did "
                             "not run last)",
                             self, (unsigned long long)n->id, i);
    uint32_t clears = atomic_load_explicit(&n->clears, memory_order_relaxed);
    if (clears == 0)
        stress_violation("object %p (id %llu) destroyed without a clear", self,
                         (unsigned long long)n->id);
    _Atomic uint8_t *cell = id_cell(n->id);
    uint8_t old = atomic_fetch_add_explicit(cell, 1, memory_order_relaxed);
    if (old & ID_DEATHS)
        stress_violation("id %llu (object %p) destroyed a second time", (unsigned long long)n->id,
                         self);
    if (clears >= 2) {
        /* Cleared by a collection (clear ran before this death's): rcgc.h
         * says garbage dies on the collecting thread, so in that
         * collection, on this thread. */
        uint64_t by = atomic_load_explicit(&n->cleared_by, memory_order_relaxed);
        int same_thread = atomic_load_explicit(&n->cleared_on, memory_order_relaxed) ==
                          (uintptr_t)pthread_self();
        if (!tl_collecting || by != LOAD(g_cb_last))
            stress_violation("object %p (id %llu, %s) cleared by collection #%llu died after it, "
                             "%s (in %s; last collection #%llu%s): garbage must die on the "
                             "collecting thread",
                             self, (unsigned long long)n->id, kind_name(n->kind),
                             (unsigned long long)by,
                             same_thread ? "on the thread that ran it" : "on another thread",
                             tl_op,
                             (unsigned long long)LOAD(g_cb_last),
                             LOAD(g_cb_inside) ? ", in progress" : "");
        atomic_fetch_or_explicit(cell, ID_GC_CLEARED, memory_order_relaxed);
        INC(g_gc_deaths);
        if ((old & ID_FIN) && !(old & ID_FINALS))
            stress_violation("fin object %p (id %llu) was cleared by the collector without its "
                             "finalizer having run (PEP 442: finalize first)",
                             self, (unsigned long long)n->id);
    }
    n->canary = CANARY_POISON;
    INC(g_destroyed);
}

/* ------------------------------------------------------------------------
 * Shared tables: the global table and the resurrection table, a lock per
 * slot.
 * ------------------------------------------------------------------------ */
typedef struct cell {
    _Alignas(64) pthread_mutex_t lock;
    gnode *obj;
    uint64_t id;
} cell;

static cell g_global[NGLOBAL];
static cell g_res[NRES];
static _Atomic uint64_t g_res_next;     /* finalizers fill g_res round robin */

static gnode *cell_read(cell *c, const char *when) {
    pthread_mutex_lock(&c->lock);
    gnode *o = c->obj;
    uint64_t id = c->id;
    if (o)
        rcgc_incref(o);
    pthread_mutex_unlock(&c->lock);
    if (o && !check_live(o, id, when)) {
        INC(g_leaked);
        return NULL;
    }
    return o;
}

static void cell_write(cell *c, gnode *v) {
    if (v)
        rcgc_incref(v);
    pthread_mutex_lock(&c->lock);
    gnode *old = c->obj;
    uint64_t old_id = c->id;
    c->obj = v;
    c->id = v ? v->id : 0;
    pthread_mutex_unlock(&c->lock);
    drop_checked(old, old_id, "replaced in a table");
}

/* Take the cell's reference (NULL if empty); *id gets the recorded id. */
static gnode *cell_take(cell *c, uint64_t *id) {
    pthread_mutex_lock(&c->lock);
    gnode *o = c->obj;
    *id = c->id;
    c->obj = NULL;
    c->id = 0;
    pthread_mutex_unlock(&c->lock);
    return o;
}

/* A resurrected object taken from g_res: finalized exactly once. Returns
 * 1 if it is fine to use. */
static int check_resurrected(gnode *o, uint64_t id, const char *when) {
    if (!check_live(o, id, when))
        return 0;
    uint8_t rec = atomic_load_explicit(id_cell(o->id), memory_order_relaxed);
    if (o->kind != KIND_FIN || (rec & ID_FINALS) != ID_FINALS_ONE) {
        stress_violation("object %p (id %llu, %s) found in the resurrection table with %u "
                         "finalizer calls (%s)",
                         (void *)o, (unsigned long long)o->id, kind_name(o->kind),
                         (unsigned)(rec & ID_FINALS) >> 4,
                         when);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------
 * Weak references
 * ------------------------------------------------------------------------ */
static void weak_cb(rcgc_weakref *w, void *arg) {
    uint64_t idx = (uint64_t)(uintptr_t)arg;
    wrec *r = wrec_at(idx);
    INC(g_wr_callbacks);
    uint32_t calls = atomic_fetch_add_explicit(&r->cb_calls, 1, memory_order_relaxed);
    uint32_t kind = atomic_load_explicit(&r->kind, memory_order_acquire);
    uint64_t oid = atomic_load_explicit(&r->obj_id, memory_order_relaxed);
    if (calls)
        stress_violation("weak reference #%llu (to id %llu): callback called %u times",
                         (unsigned long long)idx, (unsigned long long)oid, calls + 1);
    if (kind == WK_FREED_LIVE)
        stress_violation("weak reference #%llu (to id %llu): callback after rcgc_weakref_free, "
                         "which ran while its referent was alive and it was not cleared",
                         (unsigned long long)idx, (unsigned long long)oid);
    else if (kind == WK_NONE || kind == WK_FAILED)
        stress_violation("weak reference #%llu: callback for a record in state %u",
                         (unsigned long long)idx, kind);
    void *o = rcgc_weakref_get(w);
    if (o) {
        stress_violation("weak reference #%llu (to id %llu): rcgc_weakref_get inside its "
                         "callback returned %p, not NULL",
                         (unsigned long long)idx, (unsigned long long)oid, o);
        rcgc_decref(o);
    }
    if (kind == WK_ORPHAN)
        rcgc_weakref_free(w);
}

/* A new weak-reference record for an object of id `oid`. */
static uint64_t wrec_new(uint32_t kind, uint64_t oid) {
    uint64_t idx = atomic_fetch_add_explicit(&g_next_wr, 1, memory_order_relaxed);
    wrec *r = wrec_at(idx);
    atomic_store_explicit(&r->obj_id, oid, memory_order_relaxed);
    /* Mutators reach a collection's garbage only once its finalizers
     * have started (a finalizer publishes its object). */
    uint64_t now = LOAD(g_cb_last);
    atomic_store_explicit(&r->made_during,
                          LOAD(g_cb_inside) && LOAD(g_fin_phase) == now ? now : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&r->kind, kind, memory_order_release);
    INC(g_wr_created);
    return idx;
}

/* An ORPHAN weak reference to n (the caller holds a reference). */
static void weak_orphan(gnode *n) {
    uint64_t idx = wrec_new(WK_ORPHAN, n->id);
    rcgc_weakref *w = rcgc_weakref_new(n, weak_cb, (void *)(uintptr_t)idx);
    if (!w) {
        atomic_store_explicit(&wrec_at(idx)->kind, WK_FAILED, memory_order_release);
        stress_violation("rcgc_weakref_new(id %llu) failed: errno %d", (unsigned long long)n->id,
                         errno);
    }
}

/* ------------------------------------------------------------------------
 * Finalizer: decisions by a hash of the id, so that they do not depend on
 * which thread collects.
 * ------------------------------------------------------------------------ */
static int check_referent_fn(void *o, void *arg) {
    check_live(o, NO_ID, (const char *)arg);
    return 0;
}

static void node_finalize(void *self) {
    gnode *n = self;
    INC(g_fin_calls);
    if (tl_collecting)
        atomic_store_explicit(&g_fin_phase, LOAD(g_cb_last), memory_order_relaxed);
    if (!check_live(n, NO_ID, "finalizer, on itself"))
        return;
    uint8_t old = atomic_fetch_add_explicit(id_cell(n->id), ID_FINALS_ONE, memory_order_relaxed);
    if (old & ID_FINALS) {
        stress_violation("finalizer of id %llu (object %p) called %u times",
                         (unsigned long long)n->id, self, ((old & ID_FINALS) >> 4) + 1);
        return;
    }
    /* What it refers to is alive and not yet cleared: clears come after
     * every finalizer of the collection. */
    for (unsigned i = 0; i < NSLOTS; i++) {
        gnode *c = read_slot(n, i, "finalizer, through a slot");
        if (c)
            rcgc_decref(c);
    }
    uint64_t d = stress_mix64(n->id ^ g_seed ^ 0xF1A1F1A1ull);
    if ((d & 3) == 0) {
        /* Round robin: workers take the newest first (see op_res_take). */
        uint64_t slot = atomic_fetch_add_explicit(&g_res_next, 1, memory_order_relaxed);
        cell_write(&g_res[slot % NRES], n);
        INC(g_fin_resurrect);
    }
    if (((d >> 2) & 15) == 0) {
        cell_write(&g_global[(d >> 32) % NGLOBAL], n);
        INC(g_fin_published);
    }
    if (((d >> 6) & 3) == 0) {
        gnode *m = new_node(0, 0);  /* plain: finalizers never make finalizers */
        if (m) {
            link_slot(n, (unsigned)(d >> 40) % NSLOTS, m);
            rcgc_decref(m);
            INC(g_fin_allocs);
        }
    }
    if (((d >> 8) & 7) == 0)
        link_slot(n, (unsigned)(d >> 44) % NSLOTS, NULL);
    if (((d >> 11) & 7) == 0)
        weak_orphan(n);
    if (((d >> 14) & 31) == 0) {
        size_t r = ((d >> 19) & 1) ? rcgc_collect() : rcgc_collect_young();
        if (r != 0)
            stress_violation("rcgc_collect from a finalizer (nested in a collection) returned "
                             "%zu, not 0",
                             r);
        INC(g_fin_nested_collects);
    }
    if (((d >> 25) & 3) == 0) {
        gnode *x = read_slot(n, (unsigned)(d >> 48) % NSLOTS, "finalizer, through a slot");
        if (x) {
            fwr_put((unsigned)(d >> 52), x);
            rcgc_decref(x);
        }
    }
    if (((d >> 20) & 31) == 0) {
        if (rcgc_gc_get_referents(n, check_referent_fn, "finalizer, get_referents") != 0)
            stress_violation("rcgc_gc_get_referents from a finalizer failed (errno %d)", errno);
        INC(g_fin_snapshots);
    }
}

/* ------------------------------------------------------------------------
 * Collection callback
 * ------------------------------------------------------------------------ */
static _Atomic uint64_t g_cb_fin_start, g_cb_young, g_cb_full;
/* Save-all windows: main bumps g_saveall_gen before turning
 * RCGC_GC_DEBUG_SAVEALL on and after turning it off (odd: on), so a
 * collection may save garbage only if the window was open at its start or
 * moved during it. g_saved_total: garbage saved, by the callbacks. */
static _Atomic uint64_t g_saveall_gen, g_cb_saveall_gen_start, g_saved_total;

static void gc_cb(rcgc_gc_phase phase, const rcgc_gc_info *info, void *arg) {
    (void)arg;
    if (phase == RCGC_GC_START) {
        if (atomic_exchange_explicit(&g_cb_inside, 1, memory_order_relaxed))
            stress_violation("collection #%llu started inside another one",
                             (unsigned long long)info->collection);
        uint64_t last = LOAD(g_cb_last);
        if (info->collection != last + 1)
            stress_violation("collection #%llu started after #%llu",
                             (unsigned long long)info->collection, (unsigned long long)last);
        atomic_store_explicit(&g_cb_last, info->collection, memory_order_relaxed);
        atomic_store_explicit(&g_cb_fin_start, LOAD(g_fin_calls), memory_order_relaxed);
        atomic_store_explicit(&g_cb_saveall_gen_start, LOAD(g_saveall_gen), memory_order_relaxed);
        tl_collecting = 1;
        return;
    }
    tl_collecting = 0;
    if (!atomic_exchange_explicit(&g_cb_inside, 0, memory_order_relaxed) ||
        info->collection != LOAD(g_cb_last))
        stress_violation("collection #%llu ended without starting (last start #%llu)",
                         (unsigned long long)info->collection, (unsigned long long)LOAD(g_cb_last));
    uint64_t fins = LOAD(g_fin_calls) - LOAD(g_cb_fin_start);
    if (info->aborted)
        stress_violation("collection #%llu aborted (errno %d)",
                         (unsigned long long)info->collection,
                         info->aborted);
    if (fins != info->finalized)
        stress_violation("collection #%llu reports %zu finalizer calls; %llu were made",
                         (unsigned long long)info->collection, info->finalized,
                         (unsigned long long)fins);
    if (info->unreachable !=
        info->collected + info->resurrected + info->uncollectable + info->saved)
        stress_violation("collection #%llu: unreachable %zu != collected %zu + resurrected %zu + "
                         "uncollectable %zu + saved %zu",
                         (unsigned long long)info->collection, info->unreachable, info->collected,
                         info->resurrected, info->uncollectable, info->saved);
    uint64_t gen0 = LOAD(g_cb_saveall_gen_start);
    int saveall_possible = (gen0 & 1) || LOAD(g_saveall_gen) != gen0;
    if (info->uncollectable || (info->saved && !saveall_possible))
        stress_violation("collection #%llu: %zu uncollectable, %zu saved (every type has clear; "
                         "save-all was off)",
                         (unsigned long long)info->collection, info->uncollectable, info->saved);
    atomic_fetch_add_explicit(&g_saved_total, info->saved, memory_order_relaxed);
    if (info->resurrected && !info->finalized)
        stress_violation("collection #%llu: %zu resurrected without a finalizer call",
                         (unsigned long long)info->collection, info->resurrected);
    if (info->unreachable > info->candidates)
        stress_violation("collection #%llu: %zu unreachable of %zu candidates",
                         (unsigned long long)info->collection, info->unreachable,
                         info->candidates);
    if (info->young)
        INC(g_cb_young);
    else
        INC(g_cb_full);
}

/* ------------------------------------------------------------------------
 * Thread positions: counters that outlive the threads (thread churn).
 * ------------------------------------------------------------------------ */
typedef struct counters {
    _Atomic uint64_t ops, news, links, cycles, cycle_nodes, reads, writes, drops, prunes, counts,
        weak_new, weak_get, weak_get_null, weak_free_live, weak_free_dead, res_taken, caches,
        collects, detaches, exits, sched_hash;
} counters;

typedef struct pos {
    stress_thread t;
    _Alignas(64) counters c;
} pos;

static pos *g_pos;
static uint64_t g_ops_limit;    /* per position; 0: run for --seconds */
static unsigned g_npos;
static unsigned long g_collect_per_m = COLLECT_PER_M;
static unsigned long g_prune = 20;  /* op_prune per 1000 operations */

/* ------------------------------------------------------------------------
 * Workers
 * ------------------------------------------------------------------------ */
typedef struct kept {
    rcgc_weakref *w;
    uint64_t rec;
} kept;

typedef struct worker {
    pos *p;
    unsigned id;
    stress_rng rng;         /* one draw per operation ... */
    stress_rng sub;         /* ... seeds this one, for the operation's choices */
    gnode *root[NROOTS];    /* references only this thread touches */
    uint64_t root_id[NROOTS];
    kept wk[NWEAK];
    unsigned nwk;
} worker;

static uint64_t rnd(worker *w, uint64_t n) { return stress_rng_below(&w->sub, n); }
static int one_in(worker *w, uint64_t n) { return stress_rng_one_in(&w->sub, n); }

/* root[i] := o, taking over the caller's reference. */
static void root_set(worker *w, unsigned i, gnode *o) {
    gnode *old = w->root[i];
    uint64_t old_id = w->root_id[i];
    w->root[i] = o;
    w->root_id[i] = o ? o->id : 0;
    drop_checked(old, old_id, "dropped from a root");
}

static gnode *root_get(worker *w, unsigned i) {
    gnode *o = w->root[i];
    if (!o)
        return NULL;
    if (!check_live(o, w->root_id[i], "from a root")) {
        w->root[i] = NULL;  /* leaked: see read_slot */
        INC(g_leaked);
        return NULL;
    }
    rcgc_incref(o);
    return o;
}

/* A new reference to some reachable object, or NULL: from a root, the
 * global table or the resurrection table, then a walk of 0-3 slots. */
static gnode *pick(worker *w) {
    gnode *cur;
    unsigned src = (unsigned)rnd(w, 16);
    if (src < 6)
        cur = root_get(w, (unsigned)rnd(w, NROOTS));
    else if (src < 15)
        cur = cell_read(&g_global[rnd(w, NGLOBAL)], "read from the global table");
    else
        cur = cell_read(&g_res[rnd(w, NRES)], "read from the resurrection table");
    unsigned steps = (unsigned)rnd(w, 4);
    for (unsigned i = 0; cur && i < steps; i++) {
        gnode *next = read_slot(cur, (unsigned)rnd(w, NSLOTS), "on a walk");
        if (!next)
            break;
        rcgc_decref(cur);
        cur = next;
    }
    return cur;
}

/* Allocate an object whose slots point at reachable objects; keep it in a
 * root, sometimes publish it. */
static void op_new(worker *w) {
    int fin = one_in(w, 4);
    size_t extra = one_in(w, 48) ? (one_in(w, 4) ? BIG_LARGE : BIG_MEDIUM) : 0;
    gnode *n = new_node(fin, extra);
    if (!n)
        return;
    BUMP(w->p->c.news, 1);
    for (unsigned i = 0; i < NSLOTS; i++) {
        if (!one_in(w, 3))
            continue;
        gnode *v = pick(w);     /* not yet shared: no lock needed */
        n->slot_id[i] = v ? v->id : 0;
        n->slot[i] = v;
    }
    if (one_in(w, 4))
        cell_write(&g_global[rnd(w, NGLOBAL)], n);
    if (one_in(w, 8))
        link_slot(n, (unsigned)rnd(w, NSLOTS), n);   /* a self-loop */
    root_set(w, (unsigned)rnd(w, NROOTS), n);
}

static void op_link(worker *w) {
    gnode *a = pick(w);
    gnode *b = one_in(w, 3) ? NULL : pick(w);
    if (a)
        link_slot(a, (unsigned)rnd(w, NSLOTS), b);
    if (b)
        rcgc_decref(b);
    if (a)
        rcgc_decref(a);
    BUMP(w->p->c.links, 1);
}

/* A cycle of 1-8 new objects, with chords, finalizers, weak references,
 * links out to the live graph and sometimes in from it; then the local
 * references go, so it is garbage unless a link in keeps it. */
static void op_cycle(worker *w) {
    gnode *c[MAX_CYCLE];
    unsigned k = 1 + (unsigned)rnd(w, MAX_CYCLE), made = 0;
    for (unsigned i = 0; i < k; i++) {
        int fin = one_in(w, 3);
        size_t extra = one_in(w, 48) ? (one_in(w, 4) ? BIG_LARGE : BIG_MEDIUM) : 0;
        gnode *n = new_node(fin, extra);
        if (!n)
            break;
        c[made++] = n;
    }
    for (unsigned i = 0; i < made; i++)
        link_slot(c[i], 0, c[(i + 1) % made]);
    for (unsigned i = 0, chords = (unsigned)rnd(w, made + 1); i < chords; i++)
        link_slot(c[rnd(w, made)], 1 + (unsigned)rnd(w, NSLOTS - 1), c[rnd(w, made)]);
    for (unsigned i = 0; i < made; i++) {
        if (one_in(w, 3)) {
            gnode *out = pick(w);
            link_slot(c[i], 1 + (unsigned)rnd(w, NSLOTS - 1), out);
            if (out)
                rcgc_decref(out);
        }
        if (one_in(w, 5))
            weak_orphan(c[i]);
    }
    if (made && one_in(w, 4)) {
        gnode *in = pick(w);
        if (in) {
            link_slot(in, (unsigned)rnd(w, NSLOTS), c[rnd(w, made)]);
            rcgc_decref(in);
        }
    }
    if (made && one_in(w, 8))
        cell_write(&g_global[rnd(w, NGLOBAL)], c[rnd(w, made)]);
    for (unsigned i = 0; i < made; i++)
        rcgc_decref(c[i]);
    BUMP(w->p->c.cycles, 1);
    BUMP(w->p->c.cycle_nodes, made);
}

static void op_read(worker *w) {
    gnode *o = pick(w);
    BUMP(w->p->c.reads, 1);
    if (!o)
        return;
    if (one_in(w, 3))
        root_set(w, (unsigned)rnd(w, NROOTS), o);
    else
        rcgc_decref(o);
}

static void op_write(worker *w) {
    cell *c = &g_global[rnd(w, NGLOBAL)];
    unsigned how = (unsigned)rnd(w, 4);
    gnode *v = how == 0 ? NULL : how == 1 ? root_get(w, (unsigned)rnd(w, NROOTS)) : pick(w);
    cell_write(c, v);
    if (v)
        rcgc_decref(v);
    BUMP(w->p->c.writes, 1);
}

/* Cut every slot of a reachable object: without cuts the reachable graph
 * only grows (links add edges faster than overwrites remove them). */
static void op_prune(worker *w) {
    gnode *o = pick(w);
    if (!o)
        return;
    for (unsigned i = 0; i < NSLOTS; i++)
        link_slot(o, i, NULL);
    rcgc_decref(o);
    BUMP(w->p->c.prunes, 1);
}

static void op_drop(worker *w) {
    root_set(w, (unsigned)rnd(w, NROOTS), NULL);
    BUMP(w->p->c.drops, 1);
}

/* A KEPT weak reference to o (held by the caller); 0 if the worker keeps
 * enough already or the weak reference could not be made. */
static int weak_keep(worker *w, gnode *o) {
    if (w->nwk == NWEAK)
        return 0;
    uint64_t idx = wrec_new(WK_KEPT, o->id);
    rcgc_weakref *wr = rcgc_weakref_new(o, weak_cb, (void *)(uintptr_t)idx);
    if (!wr) {
        atomic_store_explicit(&wrec_at(idx)->kind, WK_FAILED, memory_order_release);
        stress_violation("rcgc_weakref_new(id %llu) failed: errno %d", (unsigned long long)o->id,
                         errno);
        return 0;
    }
    /* We hold o: the weak reference must give it back. */
    void *g = rcgc_weakref_get(wr);
    if (g != o)
        stress_violation("rcgc_weakref_get of a new weak reference to id %llu (held) returned "
                         "%p, not %p",
                         (unsigned long long)o->id, g, (void *)o);
    if (g)
        rcgc_decref(g);
    w->wk[w->nwk].w = wr;
    w->wk[w->nwk].rec = idx;
    w->nwk++;
    return 1;
}

static void op_weak_new(worker *w) {
    gnode *o = pick(w);
    int keep = one_in(w, 2);
    if (!o)
        return;
    BUMP(w->p->c.weak_new, 1);
    if (!keep || !weak_keep(w, o))
        weak_orphan(o);
    rcgc_decref(o);
}

/* After a failed check of what a weak reference gave: its history. */
static void weak_note(uint64_t idx) {
    wrec *r = wrec_at(idx);
    fprintf(stderr, "%s: note: weak reference #%llu to id %llu was made %s%llu%s\n", stress_prog,
            (unsigned long long)idx,
            (unsigned long long)atomic_load_explicit(&r->obj_id, memory_order_relaxed),
            atomic_load_explicit(&r->made_during, memory_order_relaxed)
                ? "while collection #" : "outside any finalizer phase (",
            (unsigned long long)atomic_load_explicit(&r->made_during, memory_order_relaxed),
            atomic_load_explicit(&r->made_during, memory_order_relaxed)
                ? " was running finalizers" : ")");
}

/* o came from a weak get: note it if a collection is running (for the
 * report of a cleared object). */
static void weak_got(gnode *o) {
    if (LOAD(g_cb_inside))
        atomic_store_explicit(&o->weak_got, LOAD(g_cb_last), memory_order_relaxed);
}

/* Get through wk[i]: NULL, or the live object of the recorded id, which
 * goes to root[r] if keep. */
static void weak_get_at(worker *w, unsigned i, int keep, unsigned r) {
    kept *k = &w->wk[i];
    BUMP(w->p->c.weak_get, 1);
    gnode *o = rcgc_weakref_get(k->w);
    if (!o) {
        BUMP(w->p->c.weak_get_null, 1);
        return;
    }
    weak_got(o);
    if (!check_live(o, atomic_load_explicit(&wrec_at(k->rec)->obj_id, memory_order_relaxed),
                    "from rcgc_weakref_get")) {
        weak_note(k->rec);
        INC(g_leaked);
        return;
    }
    if (keep)
        root_set(w, r, o);
    else
        rcgc_decref(o);
}

static void op_weak_get(worker *w) {
    if (one_in(w, 4)) {
        fwr_get((unsigned)rnd(w, NFWR), "from a weak reference a finalizer made");
        return;
    }
    if (w->nwk == 0)
        return;
    unsigned i = (unsigned)rnd(w, w->nwk);
    int keep = one_in(w, 4);
    weak_get_at(w, i, keep, (unsigned)rnd(w, NROOTS));
}

/* Free wk[i] through the protocol: get first; a live referent (held
 * while freeing) means no callback ever. */
/* Free wr (record rec) through the protocol: get first; a live referent
 * (held while freeing) means no callback ever. Returns 1 if the referent
 * was alive (FREED_LIVE), 0 if not (FREED_DEAD). */
static int weak_free_checked(rcgc_weakref *wr, uint64_t rec) {
    wrec *r = wrec_at(rec);
    gnode *o = rcgc_weakref_get(wr);
    if (!o) {
        atomic_store_explicit(&r->kind, WK_FREED_DEAD, memory_order_release);
        rcgc_weakref_free(wr);
        return 0;
    }
    weak_got(o);
    uint64_t oid = atomic_load_explicit(&r->obj_id, memory_order_relaxed);
    int ok = check_live(o, oid, "from rcgc_weakref_get before a free");
    if (!ok) {
        weak_note(rec);
        INC(g_leaked);
    }
    atomic_store_explicit(&r->kind, WK_FREED_LIVE, memory_order_release);
    rcgc_weakref_free(wr);
    if (atomic_load_explicit(&r->cb_calls, memory_order_relaxed))
        stress_violation("weak reference #%llu (to id %llu) got a callback while its referent "
                         "was alive and reachable through it",
                         (unsigned long long)rec, (unsigned long long)oid);
    if (ok)
        rcgc_decref(o);
    return 1;
}

static void weak_free_at(worker *w, unsigned i) {
    kept k = w->wk[i];
    w->wk[i] = w->wk[--w->nwk];
    if (weak_free_checked(k.w, k.rec))
        BUMP(w->p->c.weak_free_live, 1);
    else
        BUMP(w->p->c.weak_free_dead, 1);
}

/* ------------------------------------------------------------------------
 * Weak references that finalizers make to what their objects refer to
 * (CPython GH-91636's case: often garbage of the same collection), kept in
 * g_fwr and read back by clear (of any object, so also by the collector's
 * clears of that garbage) and by workers. Each cell's lock is held across
 * rcgc_weakref_get (no safepoint inside), so nobody frees the weak
 * reference under a reader.
 * ------------------------------------------------------------------------ */
static _Atomic uint64_t g_fwr_made, g_fwr_gets, g_fwr_hits;

static void fwr_put(unsigned i, gnode *x) {
    uint64_t idx = wrec_new(WK_KEPT, x->id);
    rcgc_weakref *wr = rcgc_weakref_new(x, weak_cb, (void *)(uintptr_t)idx);
    if (!wr) {
        atomic_store_explicit(&wrec_at(idx)->kind, WK_FAILED, memory_order_release);
        stress_violation("rcgc_weakref_new(id %llu) failed: errno %d", (unsigned long long)x->id,
                         errno);
        return;
    }
    fwr_cell *c = &g_fwr[i % NFWR];
    pthread_mutex_lock(&c->lock);
    rcgc_weakref *old = c->w;
    uint64_t old_rec = c->rec;
    c->w = wr;
    c->rec = idx;
    pthread_mutex_unlock(&c->lock);
    INC(g_fwr_made);
    if (old)
        weak_free_checked(old, old_rec);
}

static void fwr_get(unsigned i, const char *when) {
    fwr_cell *c = &g_fwr[i % NFWR];
    pthread_mutex_lock(&c->lock);
    gnode *o = c->w ? rcgc_weakref_get(c->w) : NULL;
    uint64_t rec = c->rec;
    pthread_mutex_unlock(&c->lock);
    INC(g_fwr_gets);
    if (!o)
        return;
    INC(g_fwr_hits);
    weak_got(o);
    if (check_live(o, atomic_load_explicit(&wrec_at(rec)->obj_id, memory_order_relaxed), when)) {
        rcgc_decref(o);
    } else {
        weak_note(rec);
        INC(g_leaked);
    }
}

static void fwr_drop_all(void) {
    for (unsigned i = 0; i < NFWR; i++) {
        fwr_cell *c = &g_fwr[i];
        pthread_mutex_lock(&c->lock);
        rcgc_weakref *wr = c->w;
        uint64_t rec = c->rec;
        c->w = NULL;
        pthread_mutex_unlock(&c->lock);
        if (wr)
            weak_free_checked(wr, rec);
    }
}

static void op_weak_free(worker *w) {
    if (w->nwk > 0)
        weak_free_at(w, (unsigned)rnd(w, w->nwk));
}

/* Take a resurrected object (half the time the newest). Sometimes use it
 * as a cache: keep only weak references to what it refers to, cut its
 * slots, and read the weak references back across a few safepoints,
 * keeping some of what they give in roots. If the collection that
 * resurrected it is still running, what it referred to may now be that
 * collection's garbage: the weak references must go NULL, never hand out
 * an object the collector then clears. */
static void op_res_take(worker *w) {
    uint64_t id, newest = LOAD(g_res_next) - 1;
    gnode *o = cell_take(&g_res[one_in(w, 2) ? newest % NRES : rnd(w, NRES)], &id);
    int keep = one_in(w, 2), cache = one_in(w, 2);
    unsigned r = (unsigned)rnd(w, NROOTS);
    if (!o)
        return;
    BUMP(w->p->c.res_taken, 1);
    if (!check_resurrected(o, id, "taken from the resurrection table by a worker")) {
        INC(g_leaked);
        return;
    }
    if (cache) {
        unsigned first = w->nwk;
        for (unsigned i = 0; i < NSLOTS; i++) {
            gnode *x = read_slot(o, i, "through a resurrected object's slot");
            if (!x)
                continue;
            weak_keep(w, x);
            link_slot(o, i, NULL);
            rcgc_decref(x);
        }
        for (unsigned round = 0; round < 8 && w->nwk > first; round++) {
            rcgc_safepoint();
            for (unsigned i = first; i < w->nwk; i++) {
                int keep_got = one_in(w, 2);
                weak_get_at(w, i, keep_got, (unsigned)rnd(w, NROOTS));
            }
        }
        BUMP(w->p->c.caches, 1);
    }
    if (keep)
        root_set(w, r, o);
    else
        rcgc_decref(o);
}

/* Counting on objects others own: increfs and decrefs in a burst. */
static void op_count(worker *w) {
    gnode *o = pick(w);
    unsigned n = 1 + (unsigned)rnd(w, 4);
    if (!o)
        return;
    for (unsigned i = 0; i < n; i++)
        rcgc_incref(o);
    if (rcgc_refcount(o) < 1)
        stress_violation("rcgc_refcount(id %llu) == 0 while held", (unsigned long long)o->id);
    for (unsigned i = 0; i < n; i++)
        rcgc_decref(o);
    check_live(o, NO_ID, "after an incref/decref burst");
    rcgc_decref(o);
    BUMP(w->p->c.counts, 1);
}

static void op_collect(worker *w) {
    if (one_in(w, 4))
        rcgc_collect();
    else
        rcgc_collect_young();
    BUMP(w->p->c.collects, 1);
}

static void attach_or_die(worker *w) {
    stress_attach("gs-%u.%u", w->id, w->p->t.generation % 1000);
}

/* Detach holding roots (their counts are merged), then come back. */
static void op_detach(worker *w) {
    unsigned us = (unsigned)rnd(w, 200);
    rcgc_thread_detach();
    stress_sleep_us(us);
    attach_or_die(w);
    BUMP(w->p->c.detaches, 1);
}

static void drop_everything(worker *w) {
    for (unsigned i = 0; i < NROOTS; i++) {
        root_set(w, i, NULL);
        rcgc_safepoint();
    }
    while (w->nwk > 0)
        weak_free_at(w, w->nwk - 1);
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

    const uint64_t t_collect = (uint64_t)g_collect_per_m * (1u << 20) / 1000000u;
    const uint64_t t_detach = t_collect + (uint64_t)DETACH_PER_M * (1u << 20) / 1000000u;
    const uint64_t t_exit = t_detach + (uint64_t)EXIT_PER_M * (1u << 20) / 1000000u;
    int exiting = 0;

#define RUN(op) (tl_op = #op, op(w))
    while (!exiting && !stress_stopping()) {
        if (g_ops_limit && LOAD(p->c.ops) >= g_ops_limit)
            break;
        unsigned k;
        for (k = 0; k < OPS_BATCH && !exiting; k++) {
            /* Exactly two draws per operation: the schedule does not depend
             * on what the operations find. */
            uint64_t r = stress_rng_next(&w->rng);
            w->sub.s = stress_rng_next(&w->rng) | 1;
            uint64_t rare = r & ((1u << 20) - 1);
            unsigned op = (unsigned)((r >> 20) % 1000);
            stress_sched_note(&p->c.sched_hash, op, rare);
            if (rare < t_collect)
                RUN(op_collect);
            else if (rare < t_detach)
                RUN(op_detach);
            else if (rare < t_exit)
                exiting = 1;
            else if (op < 170)
                RUN(op_new);
            else if (op < 330)
                RUN(op_link);
            else if (op < 390)
                RUN(op_cycle);
            else if (op < 530)
                RUN(op_read);
            else if (op < 620)
                RUN(op_write);
            else if (op < 680)
                RUN(op_drop);
            else if (op < 730)
                RUN(op_weak_new);
            else if (op < 820)
                RUN(op_weak_get);
            else if (op < 850)
                RUN(op_weak_free);
            else if (op < 890)
                RUN(op_res_take);
            else if (op < 890 + g_prune)
                RUN(op_prune);
            else
                RUN(op_count);
        }
        rcgc_safepoint();
        BUMP(p->c.ops, k);
    }
#undef RUN
    tl_op = "drop_everything";
    drop_everything(w);
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

static int introspect_fn(void *o, void *arg) {
    check_live(o, NO_ID, "in an rcgc_gc_get_objects snapshot");
    (*(uint64_t *)arg)++;
    return 0;
}

/* Take everything out of the resurrection table: checked, then dropped
 * (or, for some, published in the global table). Returns how many. */
static uint64_t drain_res(int republish) {
    uint64_t n = 0;
    for (unsigned i = 0; i < NRES; i++) {
        uint64_t id;
        gnode *o = cell_take(&g_res[i], &id);
        if (!o)
            continue;
        n++;
        if (!check_resurrected(o, id, "taken from the resurrection table by main")) {
            INC(g_leaked);
            continue;
        }
        if (republish && (o->id & 7) == 0)
            cell_write(&g_global[o->id % NGLOBAL], o);
        rcgc_decref(o);
    }
    return n;
}

static int saved_fn(void *o, void *arg) {
    check_live(o, NO_ID, "in rcgc_gc_get_garbage (saved garbage)");
    (*(uint64_t *)arg)++;
    return 0;
}

static int referrer_fn(void *o, void *arg) {
    check_live(o, NO_ID, "in an rcgc_gc_get_referrers snapshot");
    (*(uint64_t *)arg)++;
    return 0;
}

/* Close a save-all window: check the saved garbage, drop it, and check
 * that rcgc_gc_clear_garbage dropped what the collections saved. */
static uint64_t g_saved_at_clear;  /* g_saved_total at the last clear (main only) */
static uint64_t saveall_close(void) {
    rcgc_gc_set_debug(0);
    atomic_fetch_add_explicit(&g_saveall_gen, 1, memory_order_relaxed);
    uint64_t n = 0;
    if (rcgc_gc_get_garbage(saved_fn, &n) != 0)
        stress_violation("rcgc_gc_get_garbage failed (errno %d)", errno);
    size_t dropped = rcgc_gc_clear_garbage();
    /* Every collection that saved has ended (clear_garbage waited for a
     * running one); none saves from now on. */
    uint64_t total = LOAD(g_saved_total);
    if (dropped != total - g_saved_at_clear || n > dropped)
        stress_violation("rcgc_gc_clear_garbage dropped %zu objects (get_garbage saw %llu); the "
                         "collections reported %llu saved since the last clear",
                         dropped, (unsigned long long)n,
                         (unsigned long long)(total - g_saved_at_clear));
    g_saved_at_clear = total;
    return dropped;
}

static unsigned table_count(cell *t, unsigned n) {
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++) {
        pthread_mutex_lock(&t[i].lock);
        k += t[i].obj != NULL;
        pthread_mutex_unlock(&t[i].lock);
    }
    return k;
}

/* ------------------------------------------------------------------------
 * The model of the live graph, checked once the workers are gone: after a
 * full collection that finds nothing, the live objects (created minus
 * destroyed) must be exactly those the program can reach from the global
 * and resurrection tables through slots (more: garbage the collector
 * missed; fewer would have shown as a use after free), and
 * rcgc_gc_get_objects must list exactly them.
 * ------------------------------------------------------------------------ */
typedef struct model_t {
    uint64_t reachable, live, snapshot, rounds;
} model_t;

typedef struct walk {
    uint8_t *seen;          /* bit per id */
    gnode **stack;
    size_t n, cap;
    uint64_t count;
} walk;

static void walk_push(walk *wk, gnode *o) {
    if (!o || (wk->seen[o->id >> 3] & (1u << (o->id & 7))))
        return;
    wk->seen[o->id >> 3] |= (uint8_t)(1u << (o->id & 7));
    wk->count++;
    if (wk->n == wk->cap) {
        wk->cap = wk->cap ? wk->cap * 2 : 1024;
        wk->stack = realloc(wk->stack, wk->cap * sizeof *wk->stack);
        if (!wk->stack)
            stress_die("out of memory for the model walk");
    }
    wk->stack[wk->n++] = o;
}

static int snapshot_fn(void *o, void *arg) {
    walk *wk = arg;
    gnode *n = o;
    if (check_live(n, NO_ID, "in the end-of-run rcgc_gc_get_objects snapshot") &&
        !(wk->seen[n->id >> 3] & (1u << (n->id & 7))))
        stress_violation("rcgc_gc_get_objects lists id %llu (%s), which the program cannot "
                         "reach after a full collection that found nothing",
                         (unsigned long long)n->id, kind_name(n->kind));
    wk->count++;
    return 0;
}

static model_t model_check(void) {
    model_t m = {0};
    /* Collect until a full collection finds nothing (finalizers may
     * publish objects into the tables: they are reachable then). */
    for (m.rounds = 1; m.rounds <= FINAL_ROUNDS; m.rounds++)
        if (rcgc_collect() == 0)
            break;
    uint64_t nids = LOAD(g_next_id);
    walk wk = {0};
    wk.seen = calloc(nids / 8 + 1, 1);
    if (!wk.seen)
        stress_die("out of memory for the model walk");
    cell *tables[2] = {g_global, g_res};
    unsigned sizes[2] = {NGLOBAL, NRES};
    for (int t = 0; t < 2; t++) {
        for (unsigned i = 0; i < sizes[t]; i++) {
            pthread_mutex_lock(&tables[t][i].lock);
            walk_push(&wk, tables[t][i].obj);
            pthread_mutex_unlock(&tables[t][i].lock);
        }
    }
    /* Only main runs now: nothing changes the slots under the walk (the
     * locks are taken anyway, as everywhere). */
    while (wk.n > 0) {
        gnode *o = wk.stack[--wk.n];
        check_live(o, NO_ID, "on the end-of-run walk of the live graph");
        pthread_mutex_lock(ostripe(o));
        for (unsigned j = 0; j < NSLOTS; j++)
            walk_push(&wk, o->slot[j]);
        pthread_mutex_unlock(ostripe(o));
        rcgc_safepoint();
    }
    m.reachable = wk.count;
    m.live = LOAD(g_created) - LOAD(g_destroyed);
    if (m.live != m.reachable && !LOAD(g_leaked)) {
        stress_violation("after a full collection found nothing, %llu objects are alive but the "
                         "program reaches %llu (%s)",
                         (unsigned long long)m.live, (unsigned long long)m.reachable,
                         m.live > m.reachable ? "garbage the collector missed"
                                              : "objects destroyed while reachable");
        unsigned shown = 0;
        for (uint64_t id = 0; id < nids && shown < 10; id++) {
            uint8_t rec = atomic_load_explicit(id_cell(id), memory_order_relaxed);
            if (!(rec & ID_DEATHS) && !(wk.seen[id >> 3] & (1u << (id & 7)))) {
                fprintf(stderr, "%s: note: id %llu is alive (%s, %u finalizer calls) and "
                        "unreachable\n", stress_prog, (unsigned long long)id,
                        (rec & ID_FIN) ? "fin" : "plain or big", (rec & ID_FINALS) >> 4);
                shown++;
            }
        }
    }
    wk.count = 0;
    if (rcgc_gc_get_objects(snapshot_fn, &wk) != 0)
        stress_violation("rcgc_gc_get_objects failed (errno %d)", errno);
    m.snapshot = wk.count;
    if (m.snapshot != m.reachable && !LOAD(g_leaked))
        stress_violation("rcgc_gc_get_objects lists %llu objects; the program reaches %llu",
                         (unsigned long long)m.snapshot, (unsigned long long)m.reachable);
    free(wk.seen);
    free(wk.stack);
    return m;
}

static void progress(uint64_t start, double dt, uint64_t ops_delta, uint64_t coll_delta) {
    rcgc_gc_stats gs;
    rcgc_gc_get_stats(&gs);
    uint64_t created = LOAD(g_created), destroyed = LOAD(g_destroyed);
    stress_progress(start, dt > 0 ? (double)ops_delta / dt : 0.0,
                    (long long)(created - destroyed),
                    "objects (tracked %zu)  collections %.0f/s (young %llu, full %llu)  "
                    "finalized %llu  resurrected %llu  weakrefs %llu (callbacks %llu)",
                    gs.tracked_live, dt > 0 ? (double)coll_delta / dt : 0.0,
                    (unsigned long long)gs.young_collections,
                    (unsigned long long)gs.full_collections, (unsigned long long)gs.finalized,
                    (unsigned long long)gs.resurrected, (unsigned long long)LOAD(g_wr_created),
                    (unsigned long long)LOAD(g_wr_callbacks));
}

int main(int argc, char **argv) {
    stress_options opt = { .threads = 4, .seconds = 5 };
    unsigned long threshold = 500, gc_workers = 0, collect_ms = 50, freeze_ms = 2000,
                  introspect_ms = 500, saveall_ms = 3000, settings_ms = 700;
    unsigned long collect_per_m = COLLECT_PER_M;
    stress_extra_opt extra[] = {
        {"threshold", &threshold, 0, 1000000,
         "automatic collection threshold (rcgc_gc_set_threshold; 0: automatic off)"},
        {"gc-workers", &gc_workers, 0, 256,
         "collector threads (0: RCGC_GC_WORKERS or one per CPU)"},
        {"collect-ms", &collect_ms, 0, 100000, "main collects every this many ms (0: never)"},
        {"collect-per-m", &collect_per_m, 0, 100000,
         "worker collections per million operations"},
        {"prune", &g_prune, 0, 110,
         "slot cuts per 1000 operations (fewer: a larger live graph)"},
        {"freeze-ms", &freeze_ms, 0, 100000,
         "main freezes the heap every this many ms, for a quarter of it (0: never)"},
        {"introspect-ms", &introspect_ms, 0, 100000,
         "main checks rcgc_gc_get_objects and get_referrers snapshots every this many ms (0: "
         "never)"},
        {"saveall-ms", &saveall_ms, 0, 100000,
         "main turns RCGC_GC_DEBUG_SAVEALL on for 100 ms every this many ms, then checks and "
         "drops the saved garbage (0: never)"},
        {"settings-ms", &settings_ms, 0, 100000,
         "main changes the threshold or turns automatic collection off/on every this many ms "
         "(0: never)"},
    };
    stress_parse_options(argc, argv, &opt, extra, sizeof extra / sizeof extra[0]);
    g_seed = opt.seed;
    stress_seed = g_seed;
    g_npos = opt.threads;
    g_ops_limit = opt.ops;
    g_collect_per_m = collect_per_m;

    printf("%s: torture test, not a benchmark: threads %u, seconds %g, seed %llu%s, threshold "
           "%lu, gc workers %lu, collect every %lu ms + %lu per M ops, prune %lu, freeze every %lu "
           "ms, snapshot every %lu ms, save-all every %lu ms, settings every %lu ms%s\n",
           stress_prog, opt.threads, opt.seconds, (unsigned long long)g_seed,
           opt.seed_given ? "" : " (pass --seed to repeat)", threshold, gc_workers, collect_ms,
           collect_per_m, g_prune, freeze_ms, introspect_ms, saveall_ms, settings_ms,
           STRESS_SANITIZER ? ", sanitizer build: reduced work" : "");
    fflush(stdout);

    /* Every collection on all its workers, however small the heap: the
     * parallel paths are what this program is for. */
    setenv("RCGC_GC_PAGES_PER_WORKER", "1", 0);
    rcgc_config cfg = {0};
    cfg.gc_threshold = threshold ? (int)threshold : -1;
    cfg.gc_workers = (int)gc_workers;
    stress_init_runtime(&cfg, "gs-main");
    rcgc_gc_set_threshold(threshold, 0);
    if (rcgc_gc_callback_add(gc_cb, NULL) != 0)
        stress_die("rcgc_gc_callback_add failed");

    for (unsigned i = 0; i < NOSTRIPES; i++)
        pthread_mutex_init(&g_ostripe[i], NULL);
    for (unsigned i = 0; i < NGLOBAL; i++)
        pthread_mutex_init(&g_global[i].lock, NULL);
    for (unsigned i = 0; i < NRES; i++)
        pthread_mutex_init(&g_res[i].lock, NULL);
    for (unsigned i = 0; i < NFWR; i++)
        pthread_mutex_init(&g_fwr[i].lock, NULL);

    rcgc_stats st0;
    rcgc_stats_get(&st0);

    g_pos = calloc(g_npos, sizeof *g_pos);
    if (!g_pos)
        stress_die("out of memory");

    uint64_t start = stress_now_ns(), last = start, last_ops = 0, last_coll = 0;
    uint64_t deadline = start + (uint64_t)(opt.seconds * 1e9);
    uint64_t next_collect = start + collect_ms * 1000000u;
    uint64_t next_freeze = start + freeze_ms * 1000000u, unfreeze_at = 0;
    uint64_t next_introspect = start + introspect_ms * 1000000u;
    uint64_t next_saveall = start + saveall_ms * 1000000u, saveall_off_at = 0;
    uint64_t next_settings = start + settings_ms * 1000000u;
    uint64_t main_collects = 0, main_res = 0, freezes = 0, snapshots = 0, snapshot_objs = 0;
    uint64_t saveall_windows = 0, saved_dropped = 0, settings_changes = 0, referrers = 0;
    stress_rng main_rng;
    stress_rng_seed(&main_rng, g_seed, 0xFFFFFFFFull);
    for (unsigned i = 0; i < g_npos; i++)
        stress_thread_start(&g_pos[i].t, worker_main, &g_pos[i]);

    for (;;) {
        unsigned done = stress_supervise(g_pos, sizeof *g_pos, g_npos, worker_main, 2000);
        uint64_t now = stress_now_ns();
        double dt;
        if (collect_ms && now >= next_collect) {
            if (main_collects % 4 == 3)
                rcgc_collect();
            else
                rcgc_collect_young();
            main_collects++;
            main_res += drain_res(1);
            next_collect = now + collect_ms * 1000000u;
        }
        if (freeze_ms && !unfreeze_at && now >= next_freeze) {
            rcgc_gc_freeze();
            freezes++;
            unfreeze_at = now + freeze_ms * 250000u;
        } else if (unfreeze_at && now >= unfreeze_at) {
            rcgc_gc_unfreeze();
            if (rcgc_gc_get_freeze_count() != 0)
                stress_violation("rcgc_gc_get_freeze_count() is %zu after rcgc_gc_unfreeze",
                                 rcgc_gc_get_freeze_count());
            unfreeze_at = 0;
            next_freeze = now + freeze_ms * 1000000u;
        }
        if (introspect_ms && now >= next_introspect) {
            uint64_t n = 0;
            if (rcgc_gc_get_objects(introspect_fn, &n) != 0)
                stress_violation("rcgc_gc_get_objects failed (errno %d)", errno);
            snapshots++;
            snapshot_objs += n;
            gnode *o = cell_read(&g_global[stress_rng_below(&main_rng, NGLOBAL)],
                                 "main, read from the global table");
            if (o) {
                n = 0;
                if (rcgc_gc_get_referrers(o, referrer_fn, &n) != 0)
                    stress_violation("rcgc_gc_get_referrers failed (errno %d)", errno);
                referrers += n;
                rcgc_decref(o);
            }
            next_introspect = stress_now_ns() + introspect_ms * 1000000u;
        }
        if (saveall_ms && !saveall_off_at && now >= next_saveall) {
            atomic_fetch_add_explicit(&g_saveall_gen, 1, memory_order_relaxed);
            rcgc_gc_set_debug(RCGC_GC_DEBUG_SAVEALL);
            if (rcgc_gc_get_debug() != RCGC_GC_DEBUG_SAVEALL)
                stress_violation("rcgc_gc_get_debug() is %u after setting save-all",
                                 rcgc_gc_get_debug());
            saveall_windows++;
            saveall_off_at = now + 100000000u;
        } else if (saveall_off_at && now >= saveall_off_at) {
            saved_dropped += saveall_close();
            saveall_off_at = 0;
            next_saveall = stress_now_ns() + saveall_ms * 1000000u;
        }
        if (settings_ms && now >= next_settings) {
            /* Threshold: lower, higher, off, back; or automatic off/on. */
            unsigned k = (unsigned)stress_rng_below(&main_rng, 6);
            if (k < 4) {
                size_t t = k == 0 ? threshold : k == 1 ? threshold / 10 + 1
                                              : k == 2 ? threshold * 10 : 0;
                rcgc_gc_set_threshold(t, 0);
                size_t got = 0;
                rcgc_gc_get_threshold(&got, NULL);
                if (got != t)
                    stress_violation("rcgc_gc_get_threshold gives %zu after setting %zu", got, t);
            } else if (k == 4) {
                rcgc_gc_disable();
                if (rcgc_gc_is_enabled())
                    stress_violation("rcgc_gc_is_enabled() after rcgc_gc_disable()");
            } else {
                rcgc_gc_enable();
                if (!rcgc_gc_is_enabled())
                    stress_violation("!rcgc_gc_is_enabled() after rcgc_gc_enable()");
            }
            settings_changes++;
            next_settings = now + settings_ms * 1000000u;
        }
        now = stress_now_ns();
        if (stress_second_passed(now, &last, &dt)) {
            uint64_t ops = SUM(ops), coll = LOAD(g_cb_last);
            progress(start, dt, ops - last_ops, coll - last_coll);
            last_ops = ops;
            last_coll = coll;
        }
        if (done == g_npos || stress_violation_count() > 0 || now >= deadline)
            break;
    }
    atomic_store_explicit(&stress_stop, 1, memory_order_relaxed);
    for (unsigned i = 0; i < g_npos; i++)
        stress_thread_join(&g_pos[i].t);
    double elapsed = stress_seconds_since(start);
    if (unfreeze_at)
        rcgc_gc_unfreeze();
    if (saveall_off_at)
        saved_dropped += saveall_close();
    rcgc_gc_set_threshold(threshold, 0);
    rcgc_gc_enable();

    model_t model = model_check();

    /* Empty the tables and collect until nothing is found and no
     * finalizer put anything back. */
    int rounds = 0, settled = 0;
    size_t found_last = 0;
    for (rounds = 1; rounds <= FINAL_ROUNDS; rounds++) {
        for (unsigned i = 0; i < NGLOBAL; i++)
            cell_write(&g_global[i], NULL);
        main_res += drain_res(0);
        found_last = rcgc_collect();
        if (found_last == 0 && table_count(g_global, NGLOBAL) == 0 &&
            table_count(g_res, NRES) == 0) {
            settled = 1;
            break;
        }
    }
    if (!settled)
        stress_violation("after %d final collections the heap has not settled (last found %zu)",
                         FINAL_ROUNDS, found_last);
    fwr_drop_all();     /* their referents are dead by now: no new references */

    uint64_t created = LOAD(g_created), destroyed = LOAD(g_destroyed);
    uint64_t nids = LOAD(g_next_id);
    rcgc_stats st;
    rcgc_stats_get(&st);
    rcgc_gc_stats gs;
    rcgc_gc_get_stats(&gs);
    uint64_t ops = SUM(ops);

    /* Every id: died exactly once. */
    uint64_t bad_deaths = 0, fins = 0, fin_objs = 0, gc_cleared = 0;
    for (uint64_t id = 0; id < nids; id++) {
        uint8_t rec = atomic_load_explicit(id_cell(id), memory_order_relaxed);
        if ((rec & ID_DEATHS) != 1) {
            if (++bad_deaths <= 10)
                stress_violation("id %llu died %u times by the end (1 expected)",
                                 (unsigned long long)id, rec & ID_DEATHS);
        }
        fin_objs += !!(rec & ID_FIN);
        fins += (rec & ID_FINALS) >> 4;
        gc_cleared += !!(rec & ID_GC_CLEARED);
    }
    if (bad_deaths > 10)
        stress_violation("%llu ids in all did not die exactly once",
                         (unsigned long long)bad_deaths);
    if (created != destroyed || created != nids)
        stress_violation("%llu objects created (%llu ids) but %llu destroyed after every "
                         "reference was dropped",
                         (unsigned long long)created, (unsigned long long)nids,
                         (unsigned long long)destroyed);

    /* Weak references: callbacks against the rule of each kind. */
    uint64_t nwr = LOAD(g_next_wr), wr_kind[6] = {0}, orphan_missing = 0, dead_cb = 0;
    for (uint64_t i = 0; i < nwr; i++) {
        wrec *r = wrec_at(i);
        uint32_t kind = atomic_load_explicit(&r->kind, memory_order_relaxed);
        uint32_t calls = atomic_load_explicit(&r->cb_calls, memory_order_relaxed);
        wr_kind[kind < 6 ? kind : 0]++;
        if (kind == WK_ORPHAN && calls != 1 && ++orphan_missing <= 10)
            stress_violation("weak reference #%llu (ORPHAN, to id %llu, which died): %u callbacks, "
                             "1 expected",
                             (unsigned long long)i,
                             (unsigned long long)atomic_load_explicit(&r->obj_id,
                                                                      memory_order_relaxed),
                             calls);
        if (kind == WK_FREED_LIVE && calls)
            stress_violation("weak reference #%llu (freed while its referent was alive) got %u "
                             "callbacks",
                             (unsigned long long)i, calls);
        if (kind == WK_FREED_DEAD)
            dead_cb += calls;
        if (kind == WK_KEPT || kind == WK_NONE)
            stress_violation("weak reference #%llu left in state %u (the program lost it)",
                             (unsigned long long)i, kind);
    }
    if (orphan_missing > 10)
        stress_violation("%llu ORPHAN weak references in all without exactly one callback",
                         (unsigned long long)orphan_missing);

    /* The collector's totals against what the callbacks and types saw. */
    if (gs.collections != LOAD(g_cb_last))
        stress_violation("rcgc_gc_get_stats: %llu collections; the callback saw %llu",
                         (unsigned long long)gs.collections, (unsigned long long)LOAD(g_cb_last));
    if (gs.finalized != LOAD(g_fin_calls) || fins != LOAD(g_fin_calls))
        stress_violation("finalizer calls: rcgc_gc_get_stats %llu, made %llu, per id %llu",
                         (unsigned long long)gs.finalized, (unsigned long long)LOAD(g_fin_calls),
                         (unsigned long long)fins);
    if (gs.young_collections != LOAD(g_cb_young) || gs.full_collections != LOAD(g_cb_full))
        stress_violation("rcgc_gc_get_stats: %llu young + %llu full; the callback saw %llu + %llu",
                         (unsigned long long)gs.young_collections,
                         (unsigned long long)gs.full_collections,
                         (unsigned long long)LOAD(g_cb_young), (unsigned long long)LOAD(g_cb_full));
    if (gs.tracked_live != 0 || st.objects_tracked != 0)
        stress_violation("with no object alive, rcgc_gc_get_stats tracked_live is %zu and "
                         "rcgc_stats_get objects_tracked %zu (0 expected)",
                         gs.tracked_live, st.objects_tracked);
    if (rcgc_gc_get_freeze_count() != 0)
        stress_violation("freeze count %zu at the end", rcgc_gc_get_freeze_count());
    if (st.blocks_in_use > st0.blocks_in_use + EXTRA_BLOCKS_SLACK)
        stress_violation("after every object died, rcgc_stats_get reports blocks_in_use %zu "
                         "(%zu before the run, at most %u more expected)",
                         st.blocks_in_use, st0.blocks_in_use, EXTRA_BLOCKS_SLACK);
    if (st.threads_attached != 1)
        stress_violation("rcgc_stats_get reports %zu threads attached; only main is",
                         st.threads_attached);

    printf("%s: ran %.2fs: %llu ops (%.0f/s, not a benchmark), %llu objects (%llu with "
           "finalizers, %llu big), %llu destroyed (%llu cleared by the collector), %llu cycles "
           "(%llu objects), %llu links, %llu reads, %llu writes, %llu root drops, %llu prunes, "
           "%llu count bursts\n",
           stress_prog, elapsed, (unsigned long long)ops, elapsed > 0 ? (double)ops / elapsed : 0,
           (unsigned long long)created, (unsigned long long)fin_objs,
           (unsigned long long)LOAD(g_big_created), (unsigned long long)destroyed,
           (unsigned long long)gc_cleared,
           (unsigned long long)SUM(cycles), (unsigned long long)SUM(cycle_nodes),
           (unsigned long long)SUM(links), (unsigned long long)SUM(reads),
           (unsigned long long)SUM(writes), (unsigned long long)SUM(drops),
           (unsigned long long)SUM(prunes), (unsigned long long)SUM(counts));
    printf("%s: collections %llu (young %llu, full %llu; %llu by workers, %llu by main, the rest "
           "automatic), candidates %llu, unreachable %llu, collected %llu, finalized %llu, "
           "resurrected %llu, pause max %.2f ms, total %.1f ms; final rounds %d\n",
           stress_prog, (unsigned long long)gs.collections,
           (unsigned long long)gs.young_collections, (unsigned long long)gs.full_collections,
           (unsigned long long)SUM(collects), (unsigned long long)main_collects,
           (unsigned long long)gs.candidates, (unsigned long long)gs.unreachable,
           (unsigned long long)gs.collected, (unsigned long long)gs.finalized,
           (unsigned long long)gs.resurrected, gs.pause_max_ns / 1e6, gs.pause_total_ns / 1e6,
           rounds);
    printf("%s: finalizers: %llu resurrected into the table (%llu taken back), %llu published, "
           "%llu allocated, %llu nested collections, %llu snapshots; main: %llu freezes, %llu "
           "snapshots (%llu objects, %llu referrers), %llu save-all windows (%llu saved), %llu "
           "settings changes\n",
           stress_prog, (unsigned long long)LOAD(g_fin_resurrect),
           (unsigned long long)(main_res + SUM(res_taken)),
           (unsigned long long)LOAD(g_fin_published), (unsigned long long)LOAD(g_fin_allocs),
           (unsigned long long)LOAD(g_fin_nested_collects),
           (unsigned long long)LOAD(g_fin_snapshots), (unsigned long long)freezes,
           (unsigned long long)snapshots, (unsigned long long)snapshot_objs,
           (unsigned long long)referrers, (unsigned long long)saveall_windows,
           (unsigned long long)saved_dropped, (unsigned long long)settings_changes);
    printf("%s: weak references %llu (orphan %llu, freed live %llu, freed dead %llu with %llu "
           "callbacks), %llu callbacks, %llu gets (%llu NULL); %llu resurrected objects taken by "
           "workers, %llu used as caches; finalizers made %llu weak references to what they "
           "refer to, read %llu times (%llu non-NULL)\n",
           stress_prog, (unsigned long long)nwr, (unsigned long long)wr_kind[WK_ORPHAN],
           (unsigned long long)wr_kind[WK_FREED_LIVE], (unsigned long long)wr_kind[WK_FREED_DEAD],
           (unsigned long long)dead_cb, (unsigned long long)LOAD(g_wr_callbacks),
           (unsigned long long)SUM(weak_get), (unsigned long long)SUM(weak_get_null),
           (unsigned long long)SUM(res_taken), (unsigned long long)SUM(caches),
           (unsigned long long)LOAD(g_fwr_made), (unsigned long long)LOAD(g_fwr_gets),
           (unsigned long long)LOAD(g_fwr_hits));
    printf("%s: model at the end of the run: %llu objects alive after %llu full collection(s), "
           "%llu reachable from the tables, %llu in rcgc_gc_get_objects\n",
           stress_prog, (unsigned long long)model.live, (unsigned long long)model.rounds,
           (unsigned long long)model.reachable, (unsigned long long)model.snapshot);
    printf("%s: %llu detaches, %llu thread exits; final stats: blocks_in_use %zu (%zu before), "
           "objects_tracked %zu, pages %zu (%zu abandoned), pauses %llu, watchdog reports %llu\n",
           stress_prog, (unsigned long long)SUM(detaches), (unsigned long long)SUM(exits),
           st.blocks_in_use, st0.blocks_in_use, st.objects_tracked, st.pages, st.pages_abandoned,
           (unsigned long long)st.pauses, (unsigned long long)st.watchdog_reports);

    /* Collections after shutdown + init restart at #1: stop checking. */
    rcgc_gc_callback_remove(gc_cb, NULL);
    stress_print_schedule(&opt, LOAD(g_pos[0].c.sched_hash));
    stress_shutdown_checked();

    for (unsigned i = 0; i < NOSTRIPES; i++)
        pthread_mutex_destroy(&g_ostripe[i]);
    for (unsigned i = 0; i < NGLOBAL; i++)
        pthread_mutex_destroy(&g_global[i].lock);
    for (unsigned i = 0; i < NRES; i++)
        pthread_mutex_destroy(&g_res[i].lock);
    for (unsigned i = 0; i < NFWR; i++)
        pthread_mutex_destroy(&g_fwr[i].lock);
    stress_ids_free();
    for (unsigned i = 0; i < WR_MAX_CHUNKS; i++)
        free(atomic_load_explicit(&g_wr[i], memory_order_relaxed));
    free(g_pos);

    if (LOAD(g_leaked))
        printf("%s: %llu reference(s) leaked on purpose after failed checks: the end-of-run "
               "checks count the objects they keep alive\n",
               stress_prog, (unsigned long long)LOAD(g_leaked));
    return stress_finish();
}
