/*
 * rcgc_fuzz: each input is a program of operations on the runtime, run
 * against a model of which objects must be alive. Built as a libFuzzer
 * target (--config=fuzz: -fsanitize=fuzzer,address,undefined) and as a
 * corpus replayer (replay.c) for the ordinary configurations.
 *
 * The program. One header byte picks the runtime's configuration (one or
 * two collector workers, the automatic-collection threshold, whether
 * automatic collections start on, purge); then each operation is an
 * opcode byte (modulo 32) and its operand bytes (a missing byte reads as
 * 0). Operations work on a table of 64 object slots (strong references),
 * 64 weak-reference slots, 16 raw blocks and a list of objects that
 * finalizers resurrected: new, burst (chains and rings of up to 256
 * objects), set a field, load a field, drop, dup, incref/decref, collect,
 * collect_young, freeze, unfreeze, weakref new/fill/get/free (callbacks
 * that may free their weak reference, collect, or get every weak
 * reference), rcgc_load_ref, gc enable/disable, thresholds, save-all,
 * get/clear garbage, immortalize, rcgc_malloc/calloc/free, error returns,
 * introspection checks, and spawn: a
 * thread attaches, runs a sub-program on its own 16 slots holding
 * references the main thread handed over, then drops them or hands them
 * back, detaches (or exits attached); the main thread joins it inside a
 * blocking region before the next operation, so one thread runs at a time
 * and the model stays deterministic.
 *
 * Types: node (tracked, three reference fields), fin (node + a finalizer
 * that may resurrect itself into a global list, make a weak reference to
 * itself, or call rcgc_collect), shared (node + RCGC_TYPE_SHARED_READ),
 * big (node of variable size: 64 B .. 70 KB, medium and large pages),
 * leaf and sleaf (untracked, no references; sleaf is SHARED_READ).
 * Every payload carries its id and a canary; destroy poisons it.
 *
 * The model. Per object: references from slots and lists (ext), references
 * from other live objects (indeg), fields, frozen/immortal/finalized and
 * young state. The model is updated before the runtime call that could
 * run user code (a drop updates the model, then decrefs), so every
 * callback (clear, destroy, finalize, weak-reference callback, collection
 * start/stop) checks itself against a consistent model:
 *   - clear and destroy only of an object whose count is 0 in the model,
 *     or (clear) that is garbage of the running collection; destroy once,
 *     with the fields already cleared and the canary intact;
 *   - finalize only of garbage of the running collection, at most once;
 *   - a weak-reference callback once, for a dying referent, with get
 *     already NULL, never after rcgc_weakref_free.
 * At collection start the model computes the candidates and the garbage
 * (CPython's rule: candidates not reachable from references held outside
 * the candidates: slots, lists, frozen/immortal/uncandidate objects); at
 * the stop it checks info->candidates/unreachable/finalized/resurrected/
 * collected/saved, that garbage not resurrected (reachable again from
 * outside the garbage after the finalizers) is dead, that resurrected
 * objects live, and the weak references to garbage.
 * After every operation of the main thread (a quiet point: no other
 * thread runs, merge queues drained by rcgc_safepoint) every object whose
 * model count is 0 must be dead, and every live object's rcgc_refcount
 * must equal its model count. The check operation also compares
 * rcgc_gc_get_objects/get_referents/get_referrers, every weak reference
 * and the freeze count with the model.
 *
 * What is exact and what is bounded. Full collections: exact. Young
 * collections take objects with the YOUNG bit on pages of the current
 * epoch; objects allocated since the last collection are surely
 * candidates, objects that kept YOUNG through a collection (frozen during
 * it, saved by save-all, dying when it started) may or may not be (their
 * page may have left the epoch). When such "maybe" objects exist, the
 * model computes the garbage with them as non-candidates (a lower bound)
 * and as candidates (an upper bound: garbage only grows with the
 * candidate set) and checks the runtime lies between, plus the sound
 * implications (finalize only in the upper bound, lower-bound garbage
 * dead unless reachable from outside it); weak references to objects in
 * between become "unknown" until the next observation. Objects whose
 * last reference a spawned thread drops while another thread owns them
 * wait in the owner's merge queue: the model lets them die any time until
 * the next quiet point, where they must be dead.
 *
 * Every input leaves the runtime clean: save-all off, garbage cleared,
 * unfreeze, weak references and raw blocks freed, immortal objects'
 * fields cleared, all references dropped, collections until no finalizer
 * resurrects, then every non-immortal object must have been destroyed and
 * rcgc_shutdown runs. rcgc_init per input (init + shutdown: 0.1-0.25 ms
 * under ASan) makes inputs independent and reproducible, and lets the
 * header choose the configuration.
 *
 * A disagreement prints "rcgc_fuzz: MODEL MISMATCH: ..." with the
 * operation number and aborts (libFuzzer saves the input). Set
 * RCGC_FUZZ_TRACE=1 to print every operation.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rcgc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ------------------------------------------------------------------------
 * Sizes
 * ------------------------------------------------------------------------ */

#define NSLOTS   64     /* main thread's object slots */
#define NTSLOTS  16     /* a spawned thread's slots */
#define NFIELDS  3      /* references per tracked object */
#define NWEAK    64     /* more than 2 x 16 on one stripe grows its buckets */
#define NRAW     16
#define NRES     16     /* finalizer resurrection list */
#define MAX_OBJS 4096   /* objects per input (ids 1..MAX_OBJS) */
#define MAX_IMMORTAL 4  /* immortal objects per input */
#define MAX_THREAD_OPS 48

#define CANARY_ALIVE 0x5EEDF00DCAFEBABEull
#define CANARY_DEAD  0xDEADDEADDEADDEADull

/* ------------------------------------------------------------------------
 * Failure
 * ------------------------------------------------------------------------ */

static unsigned long op_no;     /* operation number in the input (for messages) */
static const char *op_name = "setup";
static int trace;

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "rcgc_fuzz: MODEL MISMATCH at operation %lu (%s): %s\n", op_no, op_name, msg);
    fflush(stderr);
    abort();
}

#define CHECK(cond, ...)            \
    do {                            \
        if (__builtin_expect(!(cond), 0)) \
            fail(__VA_ARGS__);      \
    } while (0)

/* ------------------------------------------------------------------------
 * Objects and types
 * ------------------------------------------------------------------------ */

enum { T_NODE, T_FIN, T_SHARED, T_BIG, T_LEAF, T_SLEAF, NTYPES };
static const char *const type_names[NTYPES] = {"node", "fin", "shared", "big", "leaf", "sleaf"};

/* Finalizer modes (fin objects). */
enum {
    FM_RESURRECT = 1u << 0,     /* store a new reference to self in res[] */
    FM_WEAKREF   = 1u << 1,     /* make a weak reference to self */
    FM_WEAKCB    = 1u << 2,     /* ... with a callback */
    FM_COLLECT   = 1u << 3,     /* rcgc_collect() from inside: must return 0 */
};

typedef struct fz_obj {
    uint64_t canary;            /* CANARY_ALIVE ^ id; CANARY_DEAD after destroy */
    uint32_t id;
    uint32_t type;
    uint32_t mode;
    uint32_t size;              /* payload bytes */
    void *f[NFIELDS];           /* references (tracked types only) */
} fz_obj;

#define BIG_EDGE 32             /* bytes of pattern checked at each end of a big payload */

static int fz_traverse(void *self, rcgc_visit_fn visit, void *arg);
static void fz_clear(void *self);
static void fz_destroy(void *self);
static void fz_finalize(void *self);

static const rcgc_type types[NTYPES] = {
    [T_NODE]   = {"fuzz.node", sizeof(fz_obj), fz_traverse, fz_clear, NULL, fz_destroy, 0},
    [T_FIN]    = {"fuzz.fin", sizeof(fz_obj), fz_traverse, fz_clear, fz_finalize, fz_destroy, 0},
    [T_SHARED] = {"fuzz.shared", sizeof(fz_obj), fz_traverse, fz_clear, NULL, fz_destroy,
                  RCGC_TYPE_SHARED_READ},
    [T_BIG]    = {"fuzz.big", 0, fz_traverse, fz_clear, NULL, fz_destroy, 0},
    [T_LEAF]   = {"fuzz.leaf", sizeof(fz_obj), NULL, NULL, NULL, fz_destroy, 0},
    [T_SLEAF]  = {"fuzz.sleaf", sizeof(fz_obj), NULL, NULL, NULL, fz_destroy, RCGC_TYPE_SHARED_READ},
};

static inline int tracked_type(unsigned t) { return t != T_LEAF && t != T_SLEAF; }
static inline int shared_read_type(unsigned t) { return t == T_SHARED || t == T_SLEAF; }

/* Payload sizes of big objects: small, medium and large pages. */
static const uint32_t big_sizes[] = {64, 600, 3000, 20000, 40000, 70000};
#define NBIG (sizeof big_sizes / sizeof big_sizes[0])

static inline uint8_t big_byte(uint32_t id, size_t i) { return (uint8_t)(id * 31u + i * 7u + 1u); }

/* ------------------------------------------------------------------------
 * The model
 * ------------------------------------------------------------------------ */

enum { Y_NO, Y_YES, Y_MAYBE };          /* the YOUNG bit, as far as the model knows */
enum { C_NO, C_SURE, C_MAYBE };         /* candidate in the running collection */

typedef struct mobj {
    fz_obj *p;
    uint8_t type, alive, immortal, frozen, finalized, saved;
    uint8_t young;          /* Y_* */
    uint8_t cand;           /* C_*: during a collection */
    uint8_t in_gmin, in_gmax, mark, newsaved;
    uint32_t born;          /* collections started before its allocation */
    int32_t ext;            /* references from slots, lists, temporaries */
    int32_t indeg;          /* references from the fields of live objects */
    uint32_t f[NFIELDS];    /* ids (0: none) */
} mobj;

static mobj M[MAX_OBJS + 1];
static uint32_t nobjs;          /* ids 1..nobjs used */
static uint32_t ndestroyed, nimmortal;
/* mark_from_outside: each object pushes at most its fields as an outsider
 * and its fields once more when marked. */
static uint32_t stack_buf[2 * MAX_OBJS * NFIELDS + 64];

static inline int32_t count_of(const mobj *x) { return x->ext + x->indeg; }

/* The model object of a runtime object (checks the payload). */
static mobj *mo(const void *p, const char *what) {
    const fz_obj *o = p;
    CHECK(o, "%s: NULL object", what);
    CHECK(o->canary != CANARY_DEAD, "%s: object %p was already destroyed (id %u)", what, p, o->id);
    CHECK(o->id >= 1 && o->id <= nobjs && o->canary == (CANARY_ALIVE ^ o->id),
          "%s: object %p has a bad canary %#llx / id %u", what, p, (unsigned long long)o->canary, o->id);
    mobj *x = &M[o->id];
    CHECK(x->p == o, "%s: object %p claims id %u, which is %p", what, p, o->id, (void *)x->p);
    CHECK(x->alive, "%s: object %u (%s) is dead in the model", what, o->id, type_names[x->type]);
    return x;
}

static void edge_set(mobj *x, unsigned k, uint32_t to) {
    uint32_t old = x->f[k];
    x->f[k] = to;
    if (to)
        M[to].indeg++;
    if (old)
        M[old].indeg--;
}

/* ------------------------------------------------------------------------
 * Tables
 * ------------------------------------------------------------------------ */

typedef struct {
    void **slots;
    unsigned n;
    int is_thread;
} ctx;

static void *slots[NSLOTS];
static void *res[NRES];                 /* objects finalizers resurrected */

enum { W_LIVE, W_CLEARED, W_UNKNOWN };
typedef struct wrec {
    rcgc_weakref *w;
    uint32_t target;
    uint8_t has_cb, free_in_cb, collect_in_cb, get_all_in_cb, state, cb_runs;
    uint64_t made_in;                   /* collection that made it (0: outside collections) */
} wrec;
static wrec weak[NWEAK];

typedef struct {
    uint8_t *p;
    size_t size;
    uint8_t pat;
} rawblk;
static rawblk raw[NRAW];

static const size_t raw_sizes[] = {0, 1, 8, 16, 24, 100, 496, 512, 513, 1000,
                                   4096, 30000, 33000, 70000, 300000, 1u << 20,
                                   (size_t)70 << 20 /* a huge block: an arena of its own */};
#define NRAWSIZES (sizeof raw_sizes / sizeof raw_sizes[0])

static int saveall;                     /* RCGC_GC_DEBUG_SAVEALL on */
static uint32_t nsaved;

/* Pointer sets from the introspection functions. */
typedef struct {
    void **v;
    size_t n, cap;
} ptrvec;

static int collect_ptr(void *o, void *arg) {
    ptrvec *pv = arg;
    CHECK(pv->n < pv->cap, "introspection returned more than %zu objects", pv->cap);
    pv->v[pv->n++] = o;
    return 0;
}

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

static void *ptr_buf_a[MAX_OBJS + 1], *ptr_buf_b[MAX_OBJS + 1];

static void compare_sets(ptrvec *got, ptrvec *want, const char *what) {
    qsort(got->v, got->n, sizeof(void *), cmp_ptr);
    qsort(want->v, want->n, sizeof(void *), cmp_ptr);
    CHECK(got->n == want->n, "%s: %zu objects, the model has %zu", what, got->n, want->n);
    for (size_t i = 0; i < got->n; i++)
        CHECK(got->v[i] == want->v[i], "%s: object %p, the model has %p", what, got->v[i], want->v[i]);
}

/* ------------------------------------------------------------------------
 * Collections: the model's side (gc callbacks)
 * ------------------------------------------------------------------------ */

static uint64_t ncoll;                  /* collections started since rcgc_init */
static size_t last_unreachable;         /* what the last collection found */
static int gc_enabled;                  /* rcgc_gc_enable/disable, as the model set it */
static uint64_t nfull, nyoung;
static struct {
    int active, young, exact;
    int in_death;           /* started from a weak-reference callback of a counting death */
    uint64_t no;
    size_t cand_sure, cand_maybe, gmin, gmax;
    size_t fin_expected_min, fin_expected_max, nfin;
} cur;

static inline int is_cand(const mobj *x, int upper) {
    return x->cand == C_SURE || (upper && x->cand == C_MAYBE);
}

/* Mark (x->mark) what is reachable from outside the set `in(x)` and
 * propagate only through members of the set: CPython's rule for
 * candidates (gc_refs > 0: referenced from outside), then marking. */
typedef int (*member_fn)(const mobj *x, int arg);

static void mark_from_outside(member_fn in, int arg) {
    size_t sp = 0;
    for (uint32_t i = 1; i <= nobjs; i++)
        M[i].mark = 0;
    for (uint32_t i = 1; i <= nobjs; i++) {
        mobj *x = &M[i];
        if (!x->alive)
            continue;
        if (!in(x, arg)) {
            for (unsigned k = 0; k < NFIELDS; k++)
                if (x->f[k])
                    stack_buf[sp++] = x->f[k];
        } else if (x->ext > 0) {
            stack_buf[sp++] = i;
        }
    }
    while (sp) {
        mobj *y = &M[stack_buf[--sp]];
        if (y->mark || !y->alive || !in(y, arg))
            continue;
        y->mark = 1;
        for (unsigned k = 0; k < NFIELDS; k++)
            if (y->f[k])
                stack_buf[sp++] = y->f[k];
    }
}

static int in_cand(const mobj *x, int upper) { return is_cand(x, upper); }
static int in_gmax(const mobj *x, int arg) { (void)arg; return x->in_gmax; }
static int in_gmin(const mobj *x, int arg) { (void)arg; return x->in_gmin; }

static int in_death_cb;         /* a weak-reference callback of a counting death is running */

static void gc_start(const rcgc_gc_info *info) {
    CHECK(!cur.active, "a collection started inside collection #%llu", (unsigned long long)cur.no);
    memset(&cur, 0, sizeof cur);
    cur.active = 1;
    cur.in_death = in_death_cb;
    cur.young = info->young;
    cur.no = ++ncoll;
    CHECK(info->collection == ncoll, "collection number %llu, the model counts %llu",
          (unsigned long long)info->collection, (unsigned long long)ncoll);
    if (info->young)
        nyoung++;
    else
        nfull++;
    for (uint32_t i = 1; i <= nobjs; i++) {
        mobj *x = &M[i];
        x->cand = C_NO;
        x->in_gmin = x->in_gmax = 0;
        if (!x->alive || !tracked_type(x->type) || x->immortal || x->frozen || count_of(x) <= 0)
            continue;
        if (!cur.young)
            x->cand = C_SURE;
        else if (x->young == Y_YES && x->born == ncoll - 1)
            x->cand = C_SURE;       /* allocated since the last collection */
        else if (x->young != Y_NO)
            x->cand = C_MAYBE;      /* kept YOUNG through a collection: its page may be old */
        if (x->cand == C_SURE)
            cur.cand_sure++;
        else if (x->cand == C_MAYBE)
            cur.cand_maybe++;
    }
    cur.exact = cur.cand_maybe == 0;
    for (int upper = 1; upper >= 0; upper--) {
        mark_from_outside(in_cand, upper);
        for (uint32_t i = 1; i <= nobjs; i++) {
            mobj *x = &M[i];
            if (!is_cand(x, upper) || x->mark)
                continue;
            if (upper) {
                x->in_gmax = 1;
                cur.gmax++;
                if (x->type == T_FIN && !x->finalized)
                    cur.fin_expected_max++;
            } else {
                x->in_gmin = 1;
                cur.gmin++;
                if (x->type == T_FIN && !x->finalized)
                    cur.fin_expected_min++;
            }
        }
    }
    if (trace)
        fprintf(stderr, "  gc start #%llu %s: candidates %zu+%zu maybe, garbage %zu..%zu\n",
                (unsigned long long)cur.no, cur.young ? "young" : "full", cur.cand_sure,
                cur.cand_maybe, cur.gmin, cur.gmax);
}

static void weak_check_after_gc(void);

static void gc_stop(const rcgc_gc_info *info) {
    CHECK(cur.active, "a collection stopped that the model did not see start");
    CHECK(!info->aborted, "collection #%llu aborted (errno %d)", (unsigned long long)cur.no, info->aborted);
    CHECK(info->young == cur.young, "collection kind changed between start and stop");
    if (trace)
        fprintf(stderr,
                "  gc stop #%llu: candidates %zu unreachable %zu finalized %zu resurrected %zu "
                "collected %zu saved %zu\n",
                (unsigned long long)cur.no, info->candidates, info->unreachable, info->finalized,
                info->resurrected, info->collected, info->saved);
    CHECK(info->candidates >= cur.cand_sure && info->candidates <= cur.cand_sure + cur.cand_maybe,
          "collection #%llu: %zu candidates, the model expects %zu..%zu", (unsigned long long)cur.no,
          info->candidates, cur.cand_sure, cur.cand_sure + cur.cand_maybe);
    CHECK(info->unreachable >= cur.gmin && info->unreachable <= cur.gmax,
          "collection #%llu (%s): %zu unreachable, the model expects %zu..%zu",
          (unsigned long long)cur.no, cur.young ? "young" : "full", info->unreachable, cur.gmin, cur.gmax);
    CHECK(info->finalized == cur.nfin, "collection #%llu: info says %zu finalized, %zu finalize calls seen",
          (unsigned long long)cur.no, info->finalized, cur.nfin);
    CHECK(cur.nfin >= cur.fin_expected_min && cur.nfin <= cur.fin_expected_max,
          "collection #%llu: %zu finalize calls, the model expects %zu..%zu", (unsigned long long)cur.no,
          cur.nfin, cur.fin_expected_min, cur.fin_expected_max);
    CHECK(info->uncollectable == 0, "collection #%llu: %zu uncollectable (every tracked type has clear)",
          (unsigned long long)cur.no, info->uncollectable);
    CHECK(info->collected + info->saved + info->resurrected == info->unreachable,
          "collection #%llu: collected %zu + saved %zu + resurrected %zu != unreachable %zu",
          (unsigned long long)cur.no, info->collected, info->saved, info->resurrected, info->unreachable);
    CHECK(saveall ? info->collected == 0 : info->saved == 0,
          "collection #%llu: save-all %s but collected %zu, saved %zu", (unsigned long long)cur.no,
          saveall ? "on" : "off", info->collected, info->saved);
    for (uint32_t i = 1; i <= nobjs; i++) {
        mobj *x = &M[i];
        if (x->in_gmin && x->type == T_FIN)
            CHECK(x->finalized, "collection #%llu: garbage object %u (fin) was not finalized",
                  (unsigned long long)cur.no, i);
    }

    /* Save-all: learn which objects the runtime saved (the list is
     * cumulative; the new entries are this collection's). */
    size_t nnew = 0;
    if (saveall) {
        ptrvec got = {ptr_buf_a, 0, MAX_OBJS};
        CHECK(rcgc_gc_get_garbage(collect_ptr, &got) == 0, "rcgc_gc_get_garbage failed");
        for (size_t j = 0; j < got.n; j++) {
            mobj *x = mo(got.v[j], "saved garbage");
            if (x->saved)
                continue;
            CHECK(x->in_gmax, "collection #%llu saved object %u (%s), which is not garbage",
                  (unsigned long long)cur.no, x->p->id, type_names[x->type]);
            CHECK(!x->newsaved, "object %u listed twice by rcgc_gc_get_garbage", x->p->id);
            x->newsaved = 1;
            nnew++;
        }
    }
    CHECK(info->saved == nnew, "collection #%llu: info says %zu saved, rcgc_gc_get_garbage has %zu new",
          (unsigned long long)cur.no, info->saved, nnew);

    /* Resurrection: garbage reachable from outside the garbage (after the
     * finalizers) survives; the rest is dead (or saved). With an exact
     * garbage set this is the runtime's own rule; with bounds, only the
     * implication "lower-bound garbage alive => saved, or reachable from
     * outside the lower bound" is sound. */
    if (cur.exact) {
        size_t nres = 0;
        mark_from_outside(in_gmax, 0);
        for (uint32_t i = 1; i <= nobjs; i++) {
            mobj *x = &M[i];
            if (!x->in_gmax)
                continue;
            if (x->mark) {
                nres++;
                CHECK(x->alive && !x->newsaved, "collection #%llu: object %u (%s) was resurrected but %s",
                      (unsigned long long)cur.no, i, type_names[x->type], x->alive ? "saved" : "died");
            } else if (saveall) {
                CHECK(x->alive && x->newsaved, "collection #%llu: garbage object %u (%s) should be saved "
                      "(save-all) but %s", (unsigned long long)cur.no, i, type_names[x->type],
                      x->alive ? "was not" : "died");
            } else if (!cur.in_death) {
                /* From inside a death (a weak-reference callback), the
                 * garbage dies when that death's loop takes its trash
                 * list: dead by the next quiet point (count 0). */
                CHECK(!x->alive, "collection #%llu (%s): garbage object %u (%s) is still alive "
                      "(ext %d, indeg %d)", (unsigned long long)cur.no, cur.young ? "young" : "full",
                      i, type_names[x->type], x->ext, x->indeg);
            }
        }
        CHECK(info->resurrected == nres, "collection #%llu: %zu resurrected, the model expects %zu",
              (unsigned long long)cur.no, info->resurrected, nres);
    } else {
        mark_from_outside(in_gmin, 0);
        for (uint32_t i = 1; i <= nobjs; i++) {
            mobj *x = &M[i];
            if (x->in_gmin && x->alive)
                CHECK(x->mark || x->newsaved, "collection #%llu (young, bounded): garbage object %u (%s) "
                      "is alive but not saved, and nothing outside the garbage reaches it",
                      (unsigned long long)cur.no, i, type_names[x->type]);
        }
    }

    /* The YOUNG bit: reachable candidates and resurrected garbage lose it;
     * saved garbage keeps it (Y_YES turns "maybe" with age). */
    for (uint32_t i = 1; i <= nobjs; i++) {
        mobj *x = &M[i];
        if (!x->alive || x->cand == C_NO || x->newsaved)
            continue;
        if (x->cand == C_SURE)
            x->young = Y_NO;        /* reachable, or resurrected */
        else if (x->young != Y_NO)
            x->young = Y_MAYBE;     /* perhaps not a candidate at all */
    }
    for (uint32_t i = 1; i <= nobjs; i++) {
        mobj *x = &M[i];
        if (x->newsaved) {
            x->newsaved = 0;
            x->saved = 1;
            x->ext++;               /* the runtime's reference */
            nsaved++;
        }
    }
    weak_check_after_gc();
    last_unreachable = info->unreachable;
    for (uint32_t i = 1; i <= nobjs; i++) {
        M[i].cand = C_NO;
        M[i].in_gmin = M[i].in_gmax = 0;
    }
    cur.active = 0;
}

static void gc_callback(rcgc_gc_phase phase, const rcgc_gc_info *info, void *arg) {
    (void)arg;
    if (phase == RCGC_GC_START)
        gc_start(info);
    else
        gc_stop(info);
}

/* ------------------------------------------------------------------------
 * Weak references
 * ------------------------------------------------------------------------ */

static void weak_get(ctx *c, unsigned wi, unsigned dst);

static void weak_cb(rcgc_weakref *w, void *arg) {
    wrec *r = arg;
    CHECK(r->w == w, "a callback ran for weak reference %p, freed or never made (slot holds %p)",
          (void *)w, (void *)r->w);
    CHECK(r->has_cb, "a callback ran for a weak reference made without one");
    CHECK(r->cb_runs == 0, "second callback of weak reference %p", (void *)w);
    r->cb_runs = 1;
    CHECK(rcgc_weakref_get(w) == NULL, "get inside the callback of weak reference %p is not NULL",
          (void *)w);
    mobj *t = &M[r->target];
    CHECK(!t->alive || count_of(t) == 0 || (cur.active && t->in_gmax),
          "callback of a weak reference to object %u (%s), which is alive (count %d) and not garbage",
          r->target, type_names[t->type], count_of(t));
    r->state = W_CLEARED;
    if (r->collect_in_cb) {
        /* Inside a collection this returns 0 at once; inside a counting
         * death it collects, and that death's loop frees the garbage. */
        int nested = cur.active;
        int outer = in_death_cb;
        in_death_cb = !nested;
        size_t n = rcgc_collect();
        in_death_cb = outer;
        if (nested)
            CHECK(n == 0, "rcgc_collect inside a collection's weak-reference callback returned %zu", n);
    }
    if (r->get_all_in_cb) {
        /* Every weak reference, from inside a death or a collection:
         * referents waiting on this thread's trash list (count 0, weak
         * references not yet cleared) must not come back. */
        ctx none = {NULL, 0, 0};
        for (unsigned i = 0; i < NWEAK; i++)
            weak_get(&none, i, 0);
    }
    if (r->free_in_cb) {
        r->w = NULL;
        rcgc_weakref_free(w);
    }
}

/* After a collection: weak references to garbage are cleared (those made
 * by finalizers only if their referent was not resurrected). */
static void weak_check_after_gc(void) {
    for (unsigned i = 0; i < NWEAK; i++) {
        wrec *r = &weak[i];
        if (!r->w)
            continue;
        mobj *t = &M[r->target];
        int made_now = r->made_in == cur.no;
        int expect;                     /* W_LIVE, W_CLEARED, W_UNKNOWN */
        if (!t->alive) {
            expect = W_CLEARED;
        } else if (count_of(t) == 0 && !t->immortal) {
            /* Dying: the death that called this collection from a weak-
             * reference callback (its weak references already cleared), or
             * waiting in a merge queue. */
            expect = W_UNKNOWN;
        } else if (cur.exact) {
            if (t->in_gmax && (!made_now || !t->mark))
                expect = W_CLEARED;
            else
                expect = r->state;
        } else if (t->in_gmin && !made_now) {
            expect = W_CLEARED;
        } else if (t->in_gmax || made_now) {
            expect = W_UNKNOWN;
        } else {
            expect = r->state;
        }
        void *v = rcgc_weakref_get(r->w);
        if (expect == W_CLEARED) {
            CHECK(!v, "collection #%llu: weak reference %u to object %u (%s%s) not cleared",
                  (unsigned long long)cur.no, i, r->target, type_names[t->type],
                  t->alive ? ", resurrected or saved" : ", dead");
            r->state = W_CLEARED;
            if (r->has_cb)
                CHECK(r->cb_runs == 1, "collection #%llu: weak reference %u (object %u) cleared, "
                      "callback ran %u times", (unsigned long long)cur.no, i, r->target, r->cb_runs);
        } else if (expect == W_LIVE) {
            CHECK(v == t->p, "collection #%llu: weak reference %u to live object %u (%s) gives %p",
                  (unsigned long long)cur.no, i, r->target, type_names[t->type], v);
        } else {
            CHECK(!v || v == t->p, "weak reference %u gives %p, not its referent %p", i, v, (void *)t->p);
            r->state = v ? W_UNKNOWN : W_CLEARED;
            /* (A dying referent's callbacks may still be to come.) */
            if (!v && r->has_cb && r->cb_runs == 0 && !(t->alive && count_of(t) == 0))
                fail("collection #%llu: weak reference %u (object %u) cleared without its callback",
                     (unsigned long long)cur.no, i, r->target);
        }
        if (v)
            rcgc_decref(v);
    }
}

/* ------------------------------------------------------------------------
 * Type functions
 * ------------------------------------------------------------------------ */

static int fz_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    fz_obj *o = self;
    for (unsigned k = 0; k < NFIELDS; k++) {
        void *r = __atomic_load_n(&o->f[k], __ATOMIC_RELAXED);
        RCGC_VISIT(r);
    }
    return 0;
}

static void fz_clear(void *self) {
    fz_obj *o = self;
    mobj *x = mo(o, "clear");
    CHECK(count_of(x) == 0 || (cur.active && x->in_gmax),
          "clear of object %u (%s): count %d in the model and not garbage of a collection",
          o->id, type_names[x->type], count_of(x));
    for (unsigned k = 0; k < NFIELDS; k++) {
        void *r = __atomic_exchange_n(&o->f[k], NULL, __ATOMIC_ACQ_REL);
        if (!r) {
            CHECK(!x->f[k], "object %u field %u is NULL, the model says %u", o->id, k, x->f[k]);
            continue;
        }
        CHECK(x->f[k] && M[x->f[k]].p == r, "object %u field %u holds %p, the model says %u", o->id, k,
              r, x->f[k]);
        edge_set(x, k, 0);
        rcgc_decref(r);
    }
}

static void fz_destroy(void *self) {
    fz_obj *o = self;
    mobj *x = mo(o, "destroy");
    CHECK(!x->immortal, "destroy of immortal object %u", o->id);
    CHECK(count_of(x) == 0, "destroy of object %u (%s) whose count is %d in the model (ext %d, indeg %d)",
          o->id, type_names[x->type], count_of(x), x->ext, x->indeg);
    for (unsigned k = 0; k < NFIELDS; k++)
        CHECK(!o->f[k] && !x->f[k], "destroy of object %u with field %u still set (clear not called?)",
              o->id, k);
    CHECK(o->type == x->type, "object %u's payload type changed", o->id);
    if (x->type == T_BIG) {
        uint8_t *b = (uint8_t *)o;
        size_t n = o->size;
        CHECK(n >= sizeof(fz_obj) + 2 * BIG_EDGE, "object %u: size field %zu corrupted", o->id, n);
        for (size_t i = sizeof(fz_obj); i < sizeof(fz_obj) + BIG_EDGE; i++)
            CHECK(b[i] == big_byte(o->id, i), "object %u: payload byte %zu corrupted", o->id, i);
        for (size_t i = n - BIG_EDGE; i < n; i++)
            CHECK(b[i] == big_byte(o->id, i), "object %u: payload byte %zu corrupted", o->id, i);
    }
    x->alive = 0;
    o->canary = CANARY_DEAD;
    ndestroyed++;
    /* Its weak references are cleared; callbacks of a counting death have
     * run (the collector's run after its frees). */
    for (unsigned i = 0; i < NWEAK; i++) {
        wrec *r = &weak[i];
        if (!r->w || r->target != o->id || r->state == W_CLEARED)
            continue;
        CHECK(rcgc_weakref_get(r->w) == NULL, "weak reference %u to object %u not cleared at its destroy",
              i, o->id);
        r->state = W_CLEARED;
        if (r->has_cb && !(cur.active && x->in_gmax))
            CHECK(r->cb_runs == 1, "object %u died; the callback of weak reference %u ran %u times",
                  o->id, i, r->cb_runs);
    }
}

static void fz_finalize(void *self) {
    fz_obj *o = self;
    mobj *x = mo(o, "finalize");
    CHECK(cur.active, "finalize of object %u outside a collection", o->id);
    CHECK(x->in_gmax, "finalize of object %u, which is not garbage of collection #%llu", o->id,
          (unsigned long long)cur.no);
    CHECK(!x->finalized, "second finalize of object %u", o->id);
    x->finalized = 1;
    cur.nfin++;
    if (o->mode & FM_COLLECT)
        CHECK(rcgc_collect() == 0, "rcgc_collect inside a finalizer did not return 0");
    if (o->mode & FM_RESURRECT) {
        for (unsigned i = 0; i < NRES; i++) {
            if (!res[i]) {
                x->ext++;               /* model first */
                rcgc_incref(o);
                res[i] = o;
                break;
            }
        }
    }
    if (o->mode & FM_WEAKREF) {
        for (unsigned i = 0; i < NWEAK; i++) {
            wrec *r = &weak[i];
            if (r->w)
                continue;
            memset(r, 0, sizeof *r);
            r->target = o->id;
            r->has_cb = (o->mode & FM_WEAKCB) != 0;
            r->state = W_LIVE;
            r->made_in = cur.no;
            r->w = rcgc_weakref_new(o, r->has_cb ? weak_cb : NULL, r);
            CHECK(r->w, "rcgc_weakref_new in a finalizer failed (errno %d)", errno);
            break;
        }
    }
}

/* ------------------------------------------------------------------------
 * Input
 * ------------------------------------------------------------------------ */

typedef struct {
    const uint8_t *p;
    size_t n, i;
} reader;

static reader rd;
static inline unsigned u8(void) { return rd.i < rd.n ? rd.p[rd.i++] : 0; }
static inline int more(void) { return rd.i < rd.n; }

/* ------------------------------------------------------------------------
 * Operations
 * ------------------------------------------------------------------------ */

/* Zeroed memory? The first and last 256 bytes and one word per 4 KiB:
 * byte loops are slow with coverage instrumentation. */
static int zeroed(const uint8_t *p, size_t n) {
    static const uint8_t zero[256];
    size_t m = n < 256 ? n : 256;
    if (memcmp(p, zero, m) || memcmp(p + n - m, zero, m))
        return 0;
    for (size_t i = 4096; i + 8 <= n; i += 4096)
        if (memcmp(p + i, zero, 8))
            return 0;
    return 1;
}

/* A new object held by the caller (model ext 1). NULL if the model is full. */
static void *new_obj(unsigned type, unsigned mode, unsigned bigsel) {
    if (nobjs >= MAX_OBJS)
        return NULL;
    fz_obj *o;
    size_t size = sizeof(fz_obj);
    if (type == T_BIG) {
        size = sizeof(fz_obj) + big_sizes[bigsel % NBIG];
        o = rcgc_new_var(&types[type], size);
    } else {
        o = rcgc_new(&types[type]);
    }
    CHECK(o, "rcgc_new(%s) failed (errno %d)", type_names[type], errno);
    CHECK(((uintptr_t)o & 15) == 0, "object %p not 16-byte aligned", (void *)o);
    CHECK(zeroed((uint8_t *)o, size), "new %s object: payload not zeroed", type_names[type]);
    CHECK(rcgc_typeof(o) == &types[type], "rcgc_typeof of a new object");
    CHECK(rcgc_refcount(o) == 1, "a new object has count %zu", rcgc_refcount(o));
    CHECK(rcgc_is_tracked(o) == tracked_type(type), "rcgc_is_tracked(%s) = %d", type_names[type],
          rcgc_is_tracked(o));
    uint32_t id = ++nobjs;
    o->id = id;
    o->canary = CANARY_ALIVE ^ id;
    o->type = type;
    o->mode = type == T_FIN ? mode : 0;
    o->size = (uint32_t)size;
    if (type == T_BIG) {
        uint8_t *b = (uint8_t *)o;
        for (size_t i = sizeof(fz_obj); i < sizeof(fz_obj) + BIG_EDGE; i++)
            b[i] = big_byte(id, i);
        for (size_t i = size - BIG_EDGE; i < size; i++)
            b[i] = big_byte(id, i);
    }
    mobj *x = &M[id];
    memset(x, 0, sizeof *x);
    x->p = o;
    x->type = (uint8_t)type;
    x->alive = 1;
    x->young = tracked_type(type) ? Y_YES : Y_NO;
    x->born = (uint32_t)ncoll;
    x->ext = 1;
    return o;
}

/* Drop a reference the harness holds (model first). */
static void drop_ref(void *p) {
    if (!p)
        return;
    mobj *x = mo(p, "drop");
    x->ext--;
    CHECK(x->ext >= 0, "object %u: more references dropped than held", x->p->id);
    rcgc_decref(p);
}

/* A new reference the harness takes (model first). */
static void take_ref(void *p) {
    mobj *x = mo(p, "incref");
    x->ext++;
    rcgc_incref(p);
}

static void slot_store(ctx *c, unsigned s, void *p) {
    void *old = c->slots[s];
    c->slots[s] = p;
    drop_ref(old);
}

static mobj *slot_obj(ctx *c, unsigned s) {
    void *p = c->slots[s % c->n];
    return p ? mo(p, "slot") : NULL;
}

static void set_field(mobj *x, unsigned k, void *v) {
    uint32_t to = v ? mo(v, "set value")->p->id : 0;
    edge_set(x, k, to);
    rcgc_set(&x->p->f[k], v);
}

static void op_burst(ctx *c) {
    unsigned n = u8() + 1, type = u8() % 4, shape = u8() % 4, s = u8() % c->n, mode = u8();
    unsigned bigsel = mode;
    void *first = NULL, *prev = NULL;
    for (unsigned i = 0; i < n; i++) {
        void *o = new_obj(type, mode, (bigsel + i) % 3);   /* bursts: small and medium pages */
        if (!o)
            break;
        if (prev) {
            set_field(mo(o, "burst"), 0, prev);
            if (prev != first)
                drop_ref(prev);
        } else {
            first = o;
        }
        prev = o;
    }
    if (!prev)
        return;
    if (shape & 1)      /* ring */
        set_field(mo(first, "burst"), 1, prev);
    if (prev != first)
        drop_ref(first);
    if (shape & 2)
        slot_store(c, s, prev);     /* kept */
    else
        drop_ref(prev);             /* garbage (a ring) or freed at once (a chain) */
}

static void weak_slot_free(unsigned wi) {
    wrec *r = &weak[wi];
    if (!r->w)
        return;
    rcgc_weakref *w = r->w;
    r->w = NULL;
    rcgc_weakref_free(w);
}

/* Compare a weak reference's get with the model; store or drop the result. */
static void weak_get(ctx *c, unsigned wi, unsigned dst) {
    wrec *r = &weak[wi];
    if (!r->w)
        return;
    mobj *t = &M[r->target];
    void *v = rcgc_weakref_get(r->w);
    if (r->state == W_CLEARED || !t->alive) {
        CHECK(!v, "weak reference %u: cleared (referent %u %s) but get gives %p", wi, r->target,
              t->alive ? "alive" : "dead", v);
        r->state = W_CLEARED;
    } else if (cur.active && t->in_gmax) {
        /* From a callback of the running collection (after its first
         * pause): weak references it found to garbage are cleared. */
        if (r->made_in != cur.no && (cur.exact || t->in_gmin))
            CHECK(!v, "collection #%llu: weak reference %u to garbage object %u gives %p",
                  (unsigned long long)cur.no, wi, r->target, v);
        else
            CHECK(!v || v == t->p, "weak reference %u gives %p, not its referent", wi, v);
    } else if (r->state == W_LIVE && count_of(t) > 0) {
        CHECK(v == t->p, "weak reference %u to live object %u (%s, count %d) gives %p", wi, r->target,
              type_names[t->type], count_of(t), v);
    } else {
        /* Unknown; or the referent's count is 0 and its death waits in
         * its owner's merge queue (a spawned thread dropped it): get may
         * revive it (try-incref of a queued count) or find it dying. */
        CHECK(!v || v == t->p, "weak reference %u gives %p, not its referent", wi, v);
        if (!v)
            r->state = W_CLEARED;
    }
    if (v) {
        t->ext++;                       /* the reference get returned */
        if (dst < c->n)
            slot_store(c, dst, v);
        else
            drop_ref(v);
    }
}

static void raw_check(rawblk *b) {
    size_t n = b->size < 64 ? b->size : 64;
    for (size_t i = 0; i < n; i++)
        CHECK(b->p[i] == (uint8_t)(b->pat + i), "raw block %p (%zu bytes): byte %zu corrupted", (void *)b->p,
              b->size, i);
    for (size_t i = b->size - n; i < b->size; i++)
        CHECK(b->p[i] == (uint8_t)(b->pat + i), "raw block %p (%zu bytes): byte %zu corrupted", (void *)b->p,
              b->size, i);
}

static void raw_free(unsigned bi) {
    rawblk *b = &raw[bi];
    if (!b->p)
        return;
    raw_check(b);
    CHECK(rcgc_owns(b->p), "rcgc_owns(%p) is 0 for a live block", (void *)b->p);
    rcgc_free(b->p);
    b->p = NULL;
}

static void raw_new(unsigned bi, unsigned sel, int zero) {
    raw_free(bi);
    rawblk *b = &raw[bi];
    size_t size = raw_sizes[sel % NRAWSIZES];
    uint8_t *p = zero ? rcgc_calloc(1, size) : rcgc_malloc(size);
    CHECK(p, "rcgc_%s(%zu) failed (errno %d)", zero ? "calloc" : "malloc", size, errno);
    CHECK(((uintptr_t)p & 15) == 0, "raw block %p not 16-byte aligned", (void *)p);
    CHECK(rcgc_usable_size(p) >= size, "rcgc_usable_size %zu < %zu", rcgc_usable_size(p), size);
    CHECK(rcgc_owns(p), "rcgc_owns of a new block");
    if (zero)
        CHECK(zeroed(p, size), "rcgc_calloc(%zu): block not zeroed", size);
    b->p = p;
    b->size = size;
    b->pat = (uint8_t)(sel * 13 + bi);
    size_t n = size < 64 ? size : 64;
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(b->pat + i);
    for (size_t i = size - n; i < size; i++)
        p[i] = (uint8_t)(b->pat + i);
}

static inline int snapshot_live(const mobj *x) {
    return x->alive && tracked_type(x->type) && (x->immortal || count_of(x) > 0);
}

static void op_check(ctx *c, unsigned s) {
    ptrvec got = {ptr_buf_a, 0, MAX_OBJS}, want = {ptr_buf_b, 0, MAX_OBJS};
    CHECK(rcgc_gc_get_objects(collect_ptr, &got) == 0, "rcgc_gc_get_objects failed");
    for (uint32_t i = 1; i <= nobjs; i++)
        if (snapshot_live(&M[i]))
            want.v[want.n++] = M[i].p;
    compare_sets(&got, &want, "rcgc_gc_get_objects");

    mobj *x = slot_obj(c, s);
    if (x) {
        got.n = want.n = 0;
        CHECK(rcgc_gc_get_referrers(x->p, collect_ptr, &got) == 0, "rcgc_gc_get_referrers failed");
        for (uint32_t i = 1; i <= nobjs; i++) {
            mobj *y = &M[i];
            if (!snapshot_live(y))
                continue;
            for (unsigned k = 0; k < NFIELDS; k++) {
                if (y->f[k] == x->p->id) {
                    want.v[want.n++] = y->p;
                    break;
                }
            }
        }
        compare_sets(&got, &want, "rcgc_gc_get_referrers");
        got.n = 0;
        CHECK(rcgc_gc_get_referents(x->p, collect_ptr, &got) == 0, "rcgc_gc_get_referents failed");
        size_t j = 0;
        for (unsigned k = 0; k < NFIELDS; k++) {
            if (!x->f[k])
                continue;
            CHECK(j < got.n && got.v[j] == M[x->f[k]].p, "rcgc_gc_get_referents of object %u: entry %zu",
                  x->p->id, j);
            j++;
        }
        CHECK(j == got.n, "rcgc_gc_get_referents of object %u: %zu entries, the model has %zu",
              x->p->id, got.n, j);
    }

    size_t frozen = 0;
    for (uint32_t i = 1; i <= nobjs; i++)
        if (M[i].alive && M[i].frozen)
            frozen++;
    CHECK(rcgc_gc_get_freeze_count() == frozen, "rcgc_gc_get_freeze_count %zu, the model has %zu",
          rcgc_gc_get_freeze_count(), frozen);

    for (unsigned i = 0; i < NWEAK; i++)
        weak_get(c, i, c->n);           /* compare, drop the result */

    rcgc_stats rs;
    rcgc_stats_get(&rs);
    rcgc_thread_stats ts[4];
    size_t nth = rcgc_stats_threads(ts, 4);
    CHECK(rs.threads_attached == (size_t)(1 + c->is_thread) && nth == rs.threads_attached,
          "rcgc_stats: %zu threads attached, rcgc_stats_threads %zu, the model has %d", rs.threads_attached,
          nth, 1 + c->is_thread);
    CHECK(rs.gc_collections == ncoll, "rcgc_stats_get: %llu collections, the model counts %llu",
          (unsigned long long)rs.gc_collections, (unsigned long long)ncoll);
    rcgc_gc_stats st;
    rcgc_gc_get_stats(&st);
    CHECK(st.collections == ncoll && st.full_collections == nfull && st.young_collections == nyoung,
          "rcgc_gc_get_stats: %llu collections (%llu full, %llu young), the model counts %llu (%llu, %llu)",
          (unsigned long long)st.collections, (unsigned long long)st.full_collections,
          (unsigned long long)st.young_collections, (unsigned long long)ncoll, (unsigned long long)nfull,
          (unsigned long long)nyoung);
}

/* The saved garbage (save-all) against the model. */
static void check_garbage_list(void) {
    ptrvec got = {ptr_buf_a, 0, MAX_OBJS}, want = {ptr_buf_b, 0, MAX_OBJS};
    CHECK(rcgc_gc_get_garbage(collect_ptr, &got) == 0, "rcgc_gc_get_garbage failed");
    for (uint32_t i = 1; i <= nobjs; i++)
        if (M[i].alive && M[i].saved)
            want.v[want.n++] = M[i].p;
    compare_sets(&got, &want, "rcgc_gc_get_garbage");
}

static void clear_garbage(void) {
    uint32_t n = 0;
    for (uint32_t i = 1; i <= nobjs; i++) {
        mobj *x = &M[i];
        if (x->saved) {
            CHECK(x->alive, "saved object %u died", i);
            x->saved = 0;
            x->ext--;               /* model first: the decrefs may kill */
            n++;
        }
    }
    CHECK(n == nsaved, "internal: saved count");
    size_t got = rcgc_gc_clear_garbage();
    CHECK(got == n, "rcgc_gc_clear_garbage dropped %zu, the model saved %u", got, n);
    nsaved = 0;
}

/* ------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------ */

static void run_ops(ctx *c, unsigned max_ops);

typedef struct {
    void *slots[NTSLOTS];
    unsigned nops;
    unsigned give_back;         /* bit i: hand slot i back to the main thread */
    int detach;                 /* 1: rcgc_thread_detach; 0: exit attached */
} thread_arg;

static void *thread_main(void *arg) {
    thread_arg *ta = arg;
    CHECK(rcgc_thread_attach() == 0, "rcgc_thread_attach failed");
    rcgc_thread_set_name("rcgc_fuzz spawn");
    ctx c = {ta->slots, NTSLOTS, 1};
    run_ops(&c, ta->nops);
    for (unsigned i = 0; i < NTSLOTS; i++) {
        void *p = ta->slots[i];
        if (!p)
            continue;
        ta->slots[i] = NULL;
        if (ta->give_back & (1u << i)) {
            unsigned s;
            for (s = 0; s < NSLOTS && slots[s]; s++) {
            }
            if (s < NSLOTS) {
                slots[s] = p;       /* the reference moves: no count changes */
                continue;
            }
        }
        drop_ref(p);
    }
    if (ta->detach)
        rcgc_thread_detach();
    return NULL;
}

static void op_spawn(ctx *c) {
    thread_arg ta;
    memset(&ta, 0, sizeof ta);
    unsigned nh = u8() % 6;
    for (unsigned i = 0; i < nh; i++) {
        void *p = c->slots[u8() % c->n];
        if (p) {
            take_ref(p);
            ta.slots[i] = p;
        }
    }
    ta.nops = u8() % MAX_THREAD_OPS + 1;
    ta.give_back = u8();
    ta.detach = (ta.give_back & 0x80) != 0;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, thread_main, &ta) == 0, "pthread_create failed");
    rcgc_blocking_begin();
    pthread_join(t, NULL);
    rcgc_blocking_end();
    rcgc_safepoint();           /* merge what the thread queued to us */
}

/* ------------------------------------------------------------------------
 * The interpreter
 * ------------------------------------------------------------------------ */

enum {
    OP_NEW, OP_BURST, OP_SET, OP_LOAD, OP_DROP, OP_DUP, OP_INCDEC, OP_COLLECT,
    OP_COLLECT_YOUNG, OP_FREEZE, OP_UNFREEZE, OP_WNEW, OP_WGET, OP_WFREE, OP_LOADREF,
    OP_GCTOGGLE, OP_THRESHOLD, OP_MALLOC, OP_FREE, OP_SPAWN, OP_CHECK, OP_IMMORTAL,
    OP_SETMODE, OP_RESTAKE, OP_SAVEALL, OP_GARBAGE, OP_SAFEPOINT, OP_SETFIELD2, OP_ERRORS,
    OP_WFILL,
    NOPS,
    /* The opcode byte is taken modulo OPCODES, a fixed 32: a new operation
     * takes a reserved code (read as "check") without changing what the
     * corpus's other bytes mean. */
    OPCODES = 32
};
_Static_assert(NOPS <= OPCODES, "opcodes");
static const char *const op_names[] = {
    "new", "burst", "set", "load", "drop", "dup", "incdec", "collect",
    "collect_young", "freeze", "unfreeze", "weak_new", "weak_get", "weak_free", "load_ref",
    "gc_toggle", "threshold", "malloc", "free", "spawn", "check", "immortalize",
    "set_mode", "res_take", "saveall", "garbage", "safepoint", "set_field_of_field", "errors",
    "weak_fill",
};
_Static_assert(sizeof op_names / sizeof op_names[0] == NOPS, "a name per operation");

static const size_t thresholds[] = {0, 1, 2, 5, 10, 64, 100, 2000};

static void dummy_gc_callback(rcgc_gc_phase phase, const rcgc_gc_info *info, void *arg) {
    (void)phase, (void)info, (void)arg;
}

/* Recoverable errors return NULL or an errno value and change nothing. */
static void op_errors(void) {
    errno = 0;
    CHECK(!rcgc_new(&types[T_BIG]) && errno == EINVAL, "rcgc_new of a variable-size type: errno %d", errno);
    errno = 0;
    CHECK(!rcgc_new(NULL) && errno == EINVAL, "rcgc_new(NULL): errno %d", errno);
    errno = 0;
    CHECK(!rcgc_weakref_new(NULL, NULL, NULL) && errno == EINVAL, "rcgc_weakref_new(NULL): errno %d", errno);
    errno = 0;
    CHECK(!rcgc_calloc(SIZE_MAX / 2, 4) && errno == ENOMEM, "rcgc_calloc overflow: errno %d", errno);
    CHECK(rcgc_thread_attach() == EBUSY, "rcgc_thread_attach of an attached thread is not EBUSY");
    CHECK(rcgc_is_attached() == 1, "rcgc_is_attached is not 1");
    CHECK(rcgc_gc_callback_add(gc_callback, NULL) == EEXIST, "rcgc_gc_callback_add twice is not EEXIST");
    CHECK(rcgc_gc_callback_remove(dummy_gc_callback, NULL) == ENOENT, "rcgc_gc_callback_remove: not ENOENT");
    CHECK(rcgc_gc_callback_add(dummy_gc_callback, &ncoll) == 0, "rcgc_gc_callback_add failed");
    CHECK(rcgc_gc_callback_remove(dummy_gc_callback, &ncoll) == 0, "rcgc_gc_callback_remove failed");
    /* Tracked allocations minus deaths since the last collection, clamped
     * at 0 and buffered per thread: at most the allocations. */
    size_t young = 0;
    for (uint32_t i = 1; i <= nobjs; i++)
        if (tracked_type(M[i].type) && M[i].born == ncoll)
            young++;
    CHECK(rcgc_gc_get_count() <= young, "rcgc_gc_get_count %zu, but only %zu tracked allocations since the "
          "last collection", rcgc_gc_get_count(), young);
    CHECK(rcgc_gc_get_debug() == (saveall ? RCGC_GC_DEBUG_SAVEALL : 0u), "rcgc_gc_get_debug %#x",
          rcgc_gc_get_debug());
    rcgc_free(NULL);
    rcgc_weakref_free(NULL);
    rcgc_xincref(NULL);
    rcgc_xdecref(NULL);
}
static const unsigned full_pcts[] = {0, 1, 10, 25, 100, 1000};

static void quiet_check(void);

static void run_op(ctx *c, unsigned op) {
    op_name = op_names[op];
    switch (op) {
    case OP_NEW: {
        unsigned type = u8() % NTYPES, s = u8() % c->n, mode = u8();
        void *o = new_obj(type, mode, mode);
        if (o)
            slot_store(c, s, o);
        break;
    }
    case OP_BURST:
        op_burst(c);
        break;
    case OP_SET: {
        mobj *x = slot_obj(c, u8());
        unsigned k = u8() % NFIELDS, b = u8();
        void *v = b >= 0xE0 ? NULL : c->slots[b % c->n];
        if (x && tracked_type(x->type))
            set_field(x, k, v);
        break;
    }
    case OP_SETFIELD2: {
        /* a.f[k] := b.f[j]: graphs deeper than the slots */
        mobj *a = slot_obj(c, u8()), *b = slot_obj(c, u8());
        unsigned k = u8() % NFIELDS, j = u8() % NFIELDS;
        if (a && b && tracked_type(a->type) && tracked_type(b->type))
            set_field(a, k, b->f[j] ? M[b->f[j]].p : NULL);
        break;
    }
    case OP_LOAD: {
        unsigned dst = u8() % c->n;
        mobj *a = slot_obj(c, u8());
        unsigned k = u8() % NFIELDS;
        if (!a || !tracked_type(a->type))
            break;
        void *v = __atomic_load_n(&a->p->f[k], __ATOMIC_RELAXED);
        CHECK(v == (a->f[k] ? (void *)M[a->f[k]].p : NULL), "object %u field %u holds %p, the model says %u",
              a->p->id, k, v, a->f[k]);
        if (v) {
            take_ref(v);
            slot_store(c, dst, v);
        }
        break;
    }
    case OP_DROP:
        slot_store(c, u8() % c->n, NULL);
        break;
    case OP_DUP: {
        unsigned a = u8() % c->n, b = u8() % c->n;
        void *v = c->slots[a];
        if (v && a != b) {
            take_ref(v);
            slot_store(c, b, v);
        }
        break;
    }
    case OP_INCDEC: {
        mobj *x = slot_obj(c, u8());
        unsigned k = u8() % 8 + 1;
        if (!x)
            break;
        for (unsigned i = 0; i < k; i++)
            rcgc_incref(x->p);
        size_t want = x->immortal ? (size_t)UINT32_MAX : (size_t)count_of(x) + k;
        CHECK(rcgc_refcount(x->p) == want, "object %u: refcount %zu after %u increfs, the model says %zu",
              x->p->id, rcgc_refcount(x->p), k, want);
        for (unsigned i = 0; i < k; i++)
            rcgc_decref(x->p);
        break;
    }
    case OP_COLLECT:
    case OP_COLLECT_YOUNG: {
        /* The callbacks check the collection against the model. */
        uint64_t before = ncoll;
        size_t n = op == OP_COLLECT ? rcgc_collect() : rcgc_collect_young();
        CHECK(ncoll == before + 1, "rcgc_collect%s ran %llu collections", op == OP_COLLECT ? "" : "_young",
              (unsigned long long)(ncoll - before));
        CHECK(n == last_unreachable, "rcgc_collect returned %zu, its callback saw %zu unreachable", n,
              last_unreachable);
        break;
    }
    case OP_FREEZE:
        /* Every tracked object not yet destroyed: those whose count is 0
         * wait in a merge queue (a spawned thread dropped them) and may
         * still be revived by a weak reference. */
        rcgc_gc_freeze();
        for (uint32_t i = 1; i <= nobjs; i++)
            if (M[i].alive && tracked_type(M[i].type))
                M[i].frozen = 1;
        break;
    case OP_UNFREEZE:
        rcgc_gc_unfreeze();
        for (uint32_t i = 1; i <= nobjs; i++)
            M[i].frozen = 0;
        break;
    case OP_WNEW: {
        mobj *x = slot_obj(c, u8());
        unsigned wi = u8() % NWEAK, fl = u8();
        if (!x)
            break;
        weak_slot_free(wi);
        wrec *r = &weak[wi];
        memset(r, 0, sizeof *r);
        r->target = x->p->id;
        r->has_cb = fl & 1;
        r->free_in_cb = (fl >> 1) & 1;
        r->collect_in_cb = (fl >> 2) & 1;
        r->get_all_in_cb = (fl >> 3) & 1;
        r->state = W_LIVE;
        errno = 0;
        rcgc_weakref *w = rcgc_weakref_new(x->p, r->has_cb ? weak_cb : NULL, r);
        if (x->immortal) {
            CHECK(!w && errno == EINVAL, "rcgc_weakref_new of an immortal object: %p, errno %d", (void *)w,
                  errno);
            break;
        }
        CHECK(w, "rcgc_weakref_new failed (errno %d)", errno);
        r->w = w;
        break;
    }
    case OP_WFILL: {
        /* Up to n more weak references to one object, in free weak slots:
         * a stripe's bucket array grows past 2 x 16. */
        mobj *x = slot_obj(c, u8());
        unsigned n = u8() % NWEAK + 1, fl = u8();
        if (!x || x->immortal)
            break;
        for (unsigned wi = 0; wi < NWEAK && n; wi++) {
            wrec *r = &weak[wi];
            if (r->w)
                continue;
            memset(r, 0, sizeof *r);
            r->target = x->p->id;
            r->has_cb = fl & 1;
            r->free_in_cb = (fl >> 1) & 1;
            r->state = W_LIVE;
            r->w = rcgc_weakref_new(x->p, r->has_cb ? weak_cb : NULL, r);
            CHECK(r->w, "rcgc_weakref_new failed (errno %d)", errno);
            n--;
        }
        break;
    }
    case OP_WGET: {
        unsigned wi = u8() % NWEAK, dst = u8();
        weak_get(c, wi, dst < 0x80 ? dst % c->n : c->n);
        break;
    }
    case OP_WFREE:
        weak_slot_free(u8() % NWEAK);
        break;
    case OP_LOADREF: {
        unsigned dst = u8() % c->n, a = u8() % c->n, k = u8() % (NFIELDS + 1);
        void *const *slot;
        uint32_t want;
        if (k == NFIELDS) {
            slot = &c->slots[a];        /* a global slot */
            want = c->slots[a] ? mo(c->slots[a], "load_ref")->p->id : 0;
        } else {
            mobj *x = slot_obj(c, a);
            if (!x || !tracked_type(x->type))
                break;
            slot = &x->p->f[k];
            want = x->f[k];
        }
        if (want && !shared_read_type(M[want].type) && !M[want].immortal)
            break;                      /* rcgc_load_ref would be misuse */
        void *v = rcgc_load_ref(slot);
        CHECK(v == (want ? (void *)M[want].p : NULL), "rcgc_load_ref gave %p, the model has object %u", v,
              want);
        if (v) {
            M[want].ext++;
            slot_store(c, dst, v);
        }
        break;
    }
    case OP_GCTOGGLE:
        CHECK(rcgc_gc_is_enabled() == gc_enabled, "rcgc_gc_is_enabled %d, the model set %d",
              rcgc_gc_is_enabled(), gc_enabled);
        gc_enabled = u8() & 1;
        if (gc_enabled)
            rcgc_gc_enable();
        else
            rcgc_gc_disable();
        CHECK(rcgc_gc_is_enabled() == gc_enabled, "rcgc_gc_is_enabled after %s",
              gc_enabled ? "enable" : "disable");
        break;
    case OP_THRESHOLD: {
        unsigned a = u8(), pct_before;
        size_t thr = thresholds[a % 8], got;
        unsigned pct = full_pcts[(a >> 3) % 6], pct_got;
        rcgc_gc_get_threshold(NULL, &pct_before);
        rcgc_gc_set_threshold(thr, pct);
        rcgc_gc_get_threshold(&got, &pct_got);
        CHECK(got == thr && pct_got == (pct ? pct : pct_before),
              "rcgc_gc_set_threshold(%zu, %u) then get: %zu, %u", thr, pct, got, pct_got);
        break;
    }
    case OP_ERRORS:
        op_errors();
        break;
    case OP_MALLOC: {
        unsigned b = u8() % NRAW, sel = u8();
        raw_new(b, sel & 0x7f, sel >> 7);
        break;
    }
    case OP_FREE:
        raw_free(u8() % NRAW);
        break;
    case OP_SPAWN:
        if (!c->is_thread)
            op_spawn(c);
        break;
    case OP_CHECK:
        op_check(c, u8());
        break;
    case OP_IMMORTAL: {
        mobj *x = slot_obj(c, u8());
        if (!x || x->immortal || nimmortal >= MAX_IMMORTAL)
            break;
        uintptr_t owner = __atomic_load_n(&RCGC__HDR(x->p)->owner, __ATOMIC_RELAXED);
        if (owner != (uintptr_t)rcgc__tls_thread && owner != RCGC__UNOWNED)
            break;                      /* only the owner may (misuse otherwise) */
        int weakrefed = 0;
        for (unsigned i = 0; i < NWEAK; i++)
            if (weak[i].w && weak[i].target == x->p->id && weak[i].state != W_CLEARED)
                weakrefed = 1;
        if (weakrefed)
            break;                      /* an immortal referent's weak reference never clears */
        rcgc_immortalize(x->p);
        CHECK(rcgc_is_immortal(x->p), "rcgc_is_immortal after rcgc_immortalize");
        x->immortal = 1;
        nimmortal++;
        break;
    }
    case OP_SETMODE: {
        mobj *x = slot_obj(c, u8());
        unsigned m = u8();
        if (x && x->type == T_FIN)
            x->p->mode = m;
        break;
    }
    case OP_RESTAKE: {
        unsigned r = u8() % NRES, dst = u8();
        void *p = res[r];
        if (!p)
            break;
        res[r] = NULL;
        if (dst < 0x80)
            slot_store(c, dst % c->n, p);   /* the reference moves */
        else
            drop_ref(p);
        break;
    }
    case OP_SAVEALL:
        saveall = u8() & 1;
        rcgc_gc_set_debug(saveall ? RCGC_GC_DEBUG_SAVEALL : 0);
        break;
    case OP_GARBAGE:
        check_garbage_list();
        if (u8() & 1)
            clear_garbage();
        break;
    case OP_SAFEPOINT:
        rcgc_safepoint();
        if (u8() & 1)
            rcgc_heap_collect();
        break;
    }
}

static void run_ops(ctx *c, unsigned max_ops) {
    for (unsigned i = 0; i < max_ops && more(); i++) {
        unsigned op = u8() % OPCODES;
        if (op >= NOPS)
            op = OP_CHECK;      /* reserved */
        op_no++;
        if (trace)
            fprintf(stderr, "%s op %lu: %s\n", c->is_thread ? "  [thread]" : "", op_no, op_names[op]);
        run_op(c, op);
        if (!c->is_thread)
            quiet_check();
    }
}

/* ------------------------------------------------------------------------
 * Quiet points
 * ------------------------------------------------------------------------ */

/* No other thread runs and merge queues are drained: counts are exact. */
static void quiet_check(void) {
    op_name = "quiet check";
    CHECK(!cur.active, "a collection is still running");
    uint32_t alive = 0;
    for (uint32_t i = 1; i <= nobjs; i++) {
        mobj *x = &M[i];
        if (!x->alive)
            continue;
        alive++;
        fz_obj *o = x->p;
        CHECK(o->canary == (CANARY_ALIVE ^ i) && o->id == i, "object %u: payload corrupted", i);
        if (x->immortal) {
            CHECK(rcgc_refcount(o) == UINT32_MAX, "immortal object %u: refcount %zu", i, rcgc_refcount(o));
            continue;
        }
        CHECK(count_of(x) > 0, "object %u (%s) has no references in the model but was not destroyed", i,
              type_names[x->type]);
        CHECK(rcgc_refcount(o) == (size_t)count_of(x),
              "object %u (%s): refcount %zu, the model counts %d (ext %d, indeg %d)", i,
              type_names[x->type], rcgc_refcount(o), count_of(x), x->ext, x->indeg);
        for (unsigned k = 0; k < NFIELDS; k++) {
            void *r = __atomic_load_n(&o->f[k], __ATOMIC_RELAXED);
            CHECK(r == (x->f[k] ? (void *)M[x->f[k]].p : NULL), "object %u field %u: %p, the model says %u",
                  i, k, r, x->f[k]);
        }
    }
    CHECK(alive + ndestroyed == nobjs, "internal: %u alive + %u destroyed != %u", alive, ndestroyed, nobjs);
}

/* ------------------------------------------------------------------------
 * Input life cycle
 * ------------------------------------------------------------------------ */

static void cleanup(void) {
    op_name = "cleanup";
    ctx c = {slots, NSLOTS, 0};
    if (saveall) {
        saveall = 0;
        rcgc_gc_set_debug(0);
    }
    check_garbage_list();
    clear_garbage();
    rcgc_gc_unfreeze();
    for (uint32_t i = 1; i <= nobjs; i++)
        M[i].frozen = 0;
    for (unsigned i = 0; i < NWEAK; i++)
        weak_slot_free(i);
    for (unsigned i = 0; i < NRAW; i++)
        raw_free(i);
    for (uint32_t i = 1; i <= nobjs; i++) {
        mobj *x = &M[i];
        if (x->alive && x->immortal && tracked_type(x->type))
            for (unsigned k = 0; k < NFIELDS; k++)
                if (x->f[k])
                    set_field(x, k, NULL);
    }
    for (unsigned s = 0; s < NSLOTS; s++)
        slot_store(&c, s, NULL);
    for (int round = 0;; round++) {
        int any = 0;
        for (unsigned i = 0; i < NWEAK; i++) {
            if (weak[i].w) {
                any = round > 0;        /* finalizers made it: collect again */
                weak_slot_free(i);
            }
        }
        for (unsigned i = 0; i < NRES; i++) {
            void *p = res[i];
            res[i] = NULL;
            if (p) {
                any = 1;
                drop_ref(p);
            }
        }
        if (!any && round > 0)
            break;
        CHECK(round < 8, "finalizers keep resurrecting after %d collections", round);
        rcgc_collect();
    }
    rcgc_safepoint();
    for (uint32_t i = 1; i <= nobjs; i++) {
        mobj *x = &M[i];
        CHECK(!x->alive || x->immortal, "after the cleanup, object %u (%s) is alive: ext %d, indeg %d, "
              "frozen %d, young %d", i, type_names[x->type], x->ext, x->indeg, x->frozen, x->young);
    }
    CHECK(ndestroyed + nimmortal == nobjs, "%u destroyed + %u immortal != %u created", ndestroyed, nimmortal,
          nobjs);
    CHECK(rcgc_gc_get_freeze_count() == 0, "freeze count %zu after unfreeze", rcgc_gc_get_freeze_count());
    for (unsigned i = 0; i < NWEAK; i++)
        CHECK(!weak[i].w, "internal: weak slot %u", i);
}

static int initialised_once;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *t = getenv("RCGC_FUZZ_TRACE");
    trace = t && *t && *t != '0';
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rd.p = data;
    rd.n = size;
    rd.i = 0;
    op_no = 0;
    op_name = "setup";

    /* Header: bits 0-1 both set: two collector workers, one per page (the
     * parallel paths; a quarter of the inputs, as they cost ~4x); bits
     * 2-4: threshold; bit 5: automatic collections off; bit 6: purge on (madvise at
     * every empty page: slow). */
    unsigned h = u8();
    rcgc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    int two = (h & 3) == 3;
    cfg.gc_workers = two ? 2 : 1;
    static const int init_thresholds[] = {-1, 1, 2, 10, 64, 100, 500, 0};
    cfg.gc_threshold = init_thresholds[(h >> 2) & 7];
    cfg.purge = (h & 0x40) ? 1 : -1;
    if (two)
        setenv("RCGC_GC_PAGES_PER_WORKER", "1", 1);
    else
        unsetenv("RCGC_GC_PAGES_PER_WORKER");
    CHECK(rcgc_init(&cfg) == 0, "rcgc_init failed");
    if (!initialised_once) {
        int err = rcgc_gc_callback_add(gc_callback, NULL);
        CHECK(err == 0 || err == EEXIST, "rcgc_gc_callback_add: %d", err);
        initialised_once = 1;
    }
    gc_enabled = !(h & 0x20);
    if (!gc_enabled)
        rcgc_gc_disable();

    memset(M, 0, sizeof(M[0]) * (nobjs + 1));
    nobjs = ndestroyed = nimmortal = 0;
    ncoll = nfull = nyoung = 0;
    last_unreachable = 0;
    in_death_cb = 0;
    memset(&cur, 0, sizeof cur);
    memset(slots, 0, sizeof slots);
    memset(res, 0, sizeof res);
    memset(weak, 0, sizeof weak);
    memset(raw, 0, sizeof raw);
    saveall = 0;
    nsaved = 0;

    ctx c = {slots, NSLOTS, 0};
    run_ops(&c, UINT32_MAX);
    cleanup();
    rcgc_shutdown();
    return 0;
}
