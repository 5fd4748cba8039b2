/*
 * fault_walk_test: every fallible OS call of a workload that reaches every
 * OS call site of the library is made to fail, one run per call (the kth
 * call of each site, for every k: rcgc__os_fail_site), and then once more
 * with a second fault for the sites that only a first fault reaches. Each
 * run checks that
 *   - the failure surfaced as the API promises (NULL or an errno value of
 *     ENOMEM, a collection that reports ENOMEM and changed nothing, a
 *     snapshot that returned -1 + ENOMEM) or was absorbed (a purge or an
 *     unmap that failed: the memory is kept and reused; a collector thread
 *     that could not start: fewer workers);
 *   - the workload then goes on (it retries what failed, once) and finishes
 *     with exactly the results of the run without faults: the same number
 *     of objects found by each collection, delivered by each snapshot,
 *     frozen, blocks seen by the heap walk (checkpoints);
 *   - nothing is corrupted: every raw block keeps its fill pattern, every
 *     object its canary and value; every object is destroyed exactly once,
 *     every finalizer runs once, every weak-reference callback once;
 *   - nothing leaks: after everything is freed the statistics show no
 *     block and no abandoned page, and every arena reservation of the OS
 *     layer is in the statistics; after rcgc_shutdown the OS layer maps no
 *     metadata and no arena (rcgc__os_mapped: every mmap it made was
 *     unmapped), unless the OS refused an unmap at shutdown: then the
 *     arena stays reserved, counted by the statistics, and the next
 *     rcgc_init and rcgc_shutdown give it back; under ASan, LeakSanitizer
 *     checks libc memory at exit.
 * At the end every site of lib/ in the site table (rcgc__os_sites, which
 * the linker builds from every call site compiled in) must have had a
 * failure injected (been reached, for the releases that cannot fail): a
 * new OS call site that the workload does not reach fails this test. A
 * scan of the .c files of lib/ checks that no OS memory or thread call
 * bypasses lib/os.h. Under a sanitizer, sites called many times are
 * sampled (see `walked`). docs/RELIABILITY.md has the figures.
 *
 * Runs are in-process: rcgc_init, the workload, rcgc_shutdown, then the
 * next run; so "the program can continue" includes a clean shutdown and
 * re-init after every fault. The workload is deterministic: the second
 * thread runs while the main one waits for it, and grace periods are
 * waited for at fixed points, so the kth call of a site is the same call
 * in every run.
 */
#include <dirent.h>
#include <sys/stat.h>

#include "test_util.h"

#include "lib/heap.h"
#include "lib/object.h"
#include "lib/os.h"
#include "lib/qsbr.h"

/* ------------------------------------------------------------------------
 * Objects
 * ------------------------------------------------------------------------ */
#define CANARY_ALIVE 0x5AFEC0DE600DF00Dull
#define CANARY_DEAD  0xDEADDEADDEADDEADull
#define NREF 3

typedef struct wnode {
    uint64_t canary;
    uint64_t value;
    uint32_t id;
    _Atomic uint32_t fin_calls;
    void *ref[NREF];
} wnode;

static uint64_t value_of(uint32_t id) { return (uint64_t)id * 0x9E3779B97F4A7C15ull + 11; }

/* The workload's record of itself. The second thread writes it only while
 * the main thread waits on a gate, so plain fields are enough. */
typedef struct {
    int baseline;               /* recording the checkpoints */
    size_t observed;            /* failures the API reported (NULL, errno, abort) */
    size_t errors;
    char first_error[512];
    /* Checkpoints: values that every run must reproduce. */
    size_t nck;
    const char *ck_name[64];
    uint64_t ck_value[64];
} workload;

static workload W;
static uint64_t baseline_ck[64];
static size_t baseline_nck;

static _Atomic size_t made, destroyed, finalized, callbacks, bad;
static uint32_t next_id;

static void w_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void w_error(const char *fmt, ...) {
    if (W.errors++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(W.first_error, sizeof W.first_error, fmt, ap);
        va_end(ap);
    }
}

static void checkpoint(const char *name, uint64_t v) {
    size_t i = W.nck++;
    if (i >= 64) {
        w_error("too many checkpoints");
        return;
    }
    W.ck_name[i] = name;
    W.ck_value[i] = v;
    if (W.baseline)
        baseline_ck[i] = v;
    else if (i >= baseline_nck || baseline_ck[i] != v)
        w_error("checkpoint %s: %llu, the run without faults had %llu", name, (unsigned long long)v,
                i < baseline_nck ? (unsigned long long)baseline_ck[i] : 0ull);
}

static void bad_object(const char *what, const wnode *n) {
    if (atomic_fetch_add(&bad, 1) == 0)
        w_error("%s: object %p id %u canary %#llx", what, (const void *)n, n->id,
                (unsigned long long)n->canary);
}

static int n_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    wnode *n = self;
    if (n->canary != CANARY_ALIVE)
        bad_object("traverse of an object that is not alive", n);
    for (int i = 0; i < NREF; i++)
        RCGC_VISIT(__atomic_load_n(&n->ref[i], __ATOMIC_RELAXED));
    return 0;
}
static void n_clear(void *self) {
    wnode *n = self;
    if (n->canary != CANARY_ALIVE)
        bad_object("clear of an object that is not alive", n);
    for (int i = 0; i < NREF; i++)
        rcgc_set(&n->ref[i], NULL);
}
static void n_finalize(void *self) {
    wnode *n = self;
    if (n->canary != CANARY_ALIVE)
        bad_object("finalize of an object that is not alive", n);
    if (atomic_fetch_add(&n->fin_calls, 1) != 0)
        bad_object("finalize called twice", n);
    finalized++;
}
static void n_destroy(void *self) {
    wnode *n = self;
    if (n->canary != CANARY_ALIVE || n->value != value_of(n->id))
        bad_object("destroy of an object that is not intact (twice?)", n);
    for (int i = 0; i < NREF; i++) {
        void *p = __atomic_exchange_n(&n->ref[i], NULL, __ATOMIC_RELAXED);
        rcgc_xdecref(p);    /* types without clear drop their references here */
    }
    n->canary = CANARY_DEAD;
    destroyed++;
}

static const rcgc_type node_type = {"fw_node", sizeof(wnode), n_traverse, n_clear, NULL,
                                    n_destroy, 0};
static const rcgc_type fin_type = {"fw_fin", sizeof(wnode), n_traverse, n_clear, n_finalize,
                                   n_destroy, 0};
static const rcgc_type leaf_type = {"fw_leaf", sizeof(wnode), NULL, NULL, NULL, n_destroy, 0};
static const rcgc_type shared_type = {"fw_shared", sizeof(wnode), NULL, NULL, NULL, n_destroy,
                                      RCGC_TYPE_SHARED_READ};

/* ------------------------------------------------------------------------
 * The API, with failures checked and retried
 * ------------------------------------------------------------------------ */
#define TRIES 4     /* two faults in a run can hit one operation twice */

/* A NULL result must come with ENOMEM; the operation is retried. */
static bool null_ok(const char *what, int tries) {
    if (errno != ENOMEM) {
        w_error("%s returned NULL with errno %d", what, errno);
        return false;
    }
    W.observed++;
    if (tries + 1 >= TRIES) {
        w_error("%s failed %d times in a row", what, TRIES);
        return false;
    }
    return true;
}

static wnode *w_new(const rcgc_type *t) {
    for (int tries = 0;; tries++) {
        errno = 0;
        wnode *n = rcgc_new(t);
        if (n) {
            for (int i = 0; i < NREF; i++)
                if (n->ref[i])
                    w_error("rcgc_new: payload not zeroed");
            n->id = ++next_id;
            n->value = value_of(n->id);
            n->canary = CANARY_ALIVE;
            made++;
            return n;
        }
        if (!null_ok("rcgc_new", tries))
            return NULL;
    }
}

typedef struct {
    uint8_t *p;
    size_t size;
    uint8_t fill;
} wblock;

static void w_alloc(wblock *b, size_t size, uint8_t fill) {
    for (int tries = 0;; tries++) {
        errno = 0;
        b->p = rcgc_malloc(size);
        if (b->p)
            break;
        if (!null_ok("rcgc_malloc", tries))
            return;
    }
    b->size = size;
    b->fill = fill;
    size_t head = size < 4096 ? size : 4096;
    memset(b->p, fill, head);
    memset(b->p + size - head, fill, head);
}

static void w_free(wblock *b) {
    if (!b->p)
        return;
    size_t head = b->size < 4096 ? b->size : 4096;
    for (size_t k = 0; k < head; k++) {
        if (b->p[k] != b->fill || b->p[b->size - 1 - k] != b->fill) {
            w_error("block %p of %zu bytes: contents changed", (void *)b->p, b->size);
            break;
        }
    }
    rcgc_free(b->p);
    b->p = NULL;
}

static rcgc_weakref *w_weakref(void *o, rcgc_weakref_cb cb) {
    for (int tries = 0;; tries++) {
        errno = 0;
        rcgc_weakref *r = rcgc_weakref_new(o, cb, NULL);
        if (r)
            return r;
        if (!null_ok("rcgc_weakref_new", tries))
            return NULL;
    }
}

static void weak_cb(rcgc_weakref *r, void *arg) {
    (void)r;
    (void)arg;
    callbacks++;
}

static int w_attach(void) {
    for (int tries = 0;; tries++) {
        int rc = rcgc_thread_attach();
        if (rc == 0)
            return 0;
        if (rc != ENOMEM) {
            w_error("rcgc_thread_attach: %d", rc);
            return rc;
        }
        if (rcgc_is_attached()) {
            w_error("rcgc_thread_attach failed but the thread is attached");
            return rc;
        }
        W.observed++;
        if (tries + 1 >= TRIES) {
            w_error("rcgc_thread_attach failed %d times", TRIES);
            return rc;
        }
    }
}

static int w_init(const rcgc_config *cfg) {
    for (int tries = 0;; tries++) {
        int rc = rcgc_init(cfg);
        if (rc == 0)
            return 0;
        if (rc != ENOMEM) {
            w_error("rcgc_init: %d", rc);
            return rc;
        }
        rcgc_stats s;
        rcgc_stats_get(&s);
        if (rcgc_is_attached() || s.threads_attached || s.bytes_reserved)
            w_error("rcgc_init failed but left the runtime half up");
        W.observed++;
        if (tries + 1 >= TRIES) {
            w_error("rcgc_init failed %d times", TRIES);
            return rc;
        }
    }
}

/* Automatic collections report through the callback. */
static size_t auto_found, auto_aborted;
static size_t aborts_seen;          /* collections that reported ENOMEM, since rcgc_init */
static size_t shutdown_leaked;      /* objects an aborted last collection left */

static size_t mapped_reservations(void) {
    size_t r, m;
    rcgc__os_mapped(&r, &m);
    return r;
}
static int in_manual;

static void gc_cb(rcgc_gc_phase phase, const rcgc_gc_info *info, void *arg) {
    (void)arg;
    if (phase != RCGC_GC_STOP || in_manual)
        return;
    if (info->aborted) {
        if (info->aborted != ENOMEM || info->unreachable)
            w_error("automatic collection aborted with %d, %zu found", info->aborted,
                    info->unreachable);
        auto_aborted++;
        aborts_seen++;
        W.observed++;
    }
    auto_found += info->unreachable;
}

/* A collection; an aborted one must report ENOMEM and change nothing
 * (no object finalized or destroyed), and is retried. */
static size_t w_collect(int young) {
    in_manual = 1;
    size_t found = 0;
    for (int tries = 0;; tries++) {
        size_t d0 = destroyed, f0 = finalized, c0 = callbacks;
        errno = 0;
        found = young ? rcgc_collect_young() : rcgc_collect();
        int err = errno;
        rcgc_gc_stats st;
        rcgc_gc_get_stats(&st);
        if (!st.last.aborted)
            break;
        if (st.last.aborted != ENOMEM || err != ENOMEM || found != 0)
            w_error("aborted collection: aborted %d, errno %d, found %zu", st.last.aborted, err,
                    found);
        if (destroyed != d0 || finalized != f0 || callbacks != c0)
            w_error("an aborted collection destroyed %zu, finalized %zu, ran %zu callbacks",
                    destroyed - d0, finalized - f0, callbacks - c0);
        aborts_seen++;
        W.observed++;
        if (tries + 1 >= TRIES) {
            w_error("collection aborted %d times", TRIES);
            break;
        }
    }
    in_manual = 0;
    return found;
}

static int count_visit(void *o, void *arg) {
    wnode *n = o;
    if (n->canary != CANARY_ALIVE)
        bad_object("a snapshot delivered an object that is not alive", n);
    (*(size_t *)arg)++;
    return 0;
}

/* A snapshot; -1 + ENOMEM is retried. */
static size_t w_snapshot(int which, void *o) {
    for (int tries = 0;; tries++) {
        size_t n = 0;
        errno = 0;
        int rc = which == 0   ? rcgc_gc_get_objects(count_visit, &n)
                 : which == 1 ? rcgc_gc_get_referrers(o, count_visit, &n)
                 : which == 2 ? rcgc_gc_get_referents(o, count_visit, &n)
                              : rcgc_gc_get_garbage(count_visit, &n);
        if (rc == 0)
            return n;
        if (rc != -1 || errno != ENOMEM || n != 0) {
            w_error("snapshot %d: rc %d, errno %d, %zu delivered", which, rc, errno, n);
            return 0;
        }
        W.observed++;
        if (tries + 1 >= TRIES) {
            w_error("snapshot %d failed %d times", which, TRIES);
            return 0;
        }
    }
}

/* Object graphs (lib/objgraph.c): counts, a referrer chain and a DOT
 * graph, each retried on ENOMEM. What = 0: live fw_node objects; 1: the
 * chain's length to o; 2: 1 if the graph was written. */
static size_t w_objgraph(int what, void *o) {
    for (int tries = 0;; tries++) {
        int rc;
        size_t result = 0;
        if (what == 0) {
            rcgc_objgraph_count *c = NULL;
            size_t n = 0;
            rc = rcgc_objgraph_counts(&c, &n);
            for (size_t i = 0; rc == 0 && i < n; i++)
                if (c[i].type == &node_type)
                    result = c[i].count;
            free(c);
        } else if (what == 1) {
            void **chain = NULL;
            size_t n = 0;
            rc = rcgc_objgraph_find_chain(o, 0, 0, &chain, &n);
            if (rc == ENOENT)
                rc = 0;     /* nothing outside refers to it: a length of 0 */
            result = n;
            rcgc_objgraph_release(chain, n);
        } else {
            FILE *f = fopen("/dev/null", "w");
            if (!f) {
                w_error("fopen /dev/null");
                return 0;
            }
            rc = rcgc_objgraph_dot(f, &o, 1, NULL);
            fclose(f);
            result = rc == 0;
        }
        if (rc == 0)
            return result;
        if (rc != ENOMEM) {
            w_error("objgraph %d: error %d", what, rc);
            return 0;
        }
        W.observed++;
        if (tries + 1 >= TRIES) {
            w_error("objgraph %d failed %d times", what, TRIES);
            return 0;
        }
    }
}

static void w_freeze(int freeze) {
    for (int tries = 0;; tries++) {
        size_t before = rcgc_gc_get_freeze_count();
        errno = 0;
        if (freeze)
            rcgc_gc_freeze();
        else
            rcgc_gc_unfreeze();
        if (errno == 0)
            return;
        if (errno != ENOMEM || rcgc_gc_get_freeze_count() != before)
            w_error("%s failed with errno %d, freeze count %zu -> %zu",
                    freeze ? "freeze" : "unfreeze", errno, before, rcgc_gc_get_freeze_count());
        W.observed++;
        if (tries + 1 >= TRIES)
            return;
    }
}

static int visit_count(void *block, size_t size, void *arg) {
    (void)block;
    (void)size;
    (*(size_t *)arg)++;
    return 0;
}

static size_t w_heap_walk(int tag) {
    for (int tries = 0;; tries++) {
        size_t n = 0;
        int rc = rcgc__heap_visit(tag, visit_count, &n);
        if (rc == 0)
            return n;
        if (rc != -ENOMEM) {
            w_error("rcgc__heap_visit: %d", rc);
            return 0;
        }
        W.observed++;
        if (tries + 1 >= TRIES)
            return 0;
    }
}

/* ------------------------------------------------------------------------
 * Threads of the workload: each step runs while the main thread waits.
 * ------------------------------------------------------------------------ */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int step;
} gate;

static gate G1 = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void gate_set(gate *g, int step) {
    pthread_mutex_lock(&g->lock);
    if (step > g->step)
        g->step = step;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* Wait for step; an attached thread waits in a blocking region. */
static void gate_wait(gate *g, int step) {
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

static void join(pthread_t t) {
    rcgc_blocking_begin();
    pthread_join(t, NULL);
    rcgc_blocking_end();
}

enum { MAIN_BLOCKS = 400, OTHER_BLOCKS = 240, CYCLES = 120, LIVE = 150, SHARED = 130,
       SAVED = 300 };

typedef struct {
    wblock main_blocks[MAIN_BLOCKS + 120];
    wblock other_blocks[OTHER_BLOCKS + 8];
    size_t nmain, nother;
    wnode *live[LIVE];          /* held by the main thread through root */
    wnode *root;
    wnode *shared[SHARED];
    wnode *other_live[40];      /* made by the other thread, handed to main */
    rcgc_weakref *weak[CYCLES];
    size_t nweak;
    rcgc_weakref *live_weak[20];
} state;

static state S;

static size_t block_size(size_t i) {
    if (i % 40 == 39)
        return 600 + (i * 977) % 30000;     /* medium */
    return 1 + (i * 37) % 512;              /* small */
}

/* n garbage 3-cycles of `t` (every third element of `fin` type), those of
 * index % 5 == 0 with a weak reference to their head. */
static void make_cycles(int n, bool weak) {
    for (int i = 0; i < n; i++) {
        wnode *c[3];
        for (int k = 0; k < 3; k++)
            c[k] = w_new(k == 0 && i % 3 == 0 ? &fin_type : &node_type);
        if (!c[0] || !c[1] || !c[2])
            return;
        for (int k = 0; k < 3; k++)
            rcgc_set(&c[k]->ref[0], c[(k + 1) % 3]);
        if (weak && i % 5 == 0 && S.nweak < CYCLES)
            S.weak[S.nweak++] = w_weakref(c[0], weak_cb);
        for (int k = 0; k < 3; k++)
            rcgc_decref(c[k]);
    }
}

/* The other thread: allocates, frees main's blocks (remote frees), drops
 * references to main's objects (merge queues), makes garbage that spans
 * both owners, then waits (attached, in a blocking region) while main
 * collects, frees a third of its own blocks and detaches (abandons the
 * rest). */
static void *other_main(void *arg) {
    (void)arg;
    if (w_attach() != 0) {
        gate_set(&G1, 1);
        gate_set(&G1, 3);
        return NULL;
    }
    rcgc_thread_set_name("fw-other");
    for (size_t i = 0; i < OTHER_BLOCKS; i++)
        w_alloc(&S.other_blocks[S.nother++], block_size(i * 7 + 3), (uint8_t)(0x80 | i));
    w_alloc(&S.other_blocks[S.nother++], 200000, 0x71);
    for (size_t i = 0; i < MAIN_BLOCKS; i += 2)
        w_free(&S.main_blocks[i]);
    /* Cross-owner cycles: ours pointing at main's live objects and back. */
    for (int i = 0; i < 40; i++) {
        wnode *o = w_new(i % 4 ? &node_type : &fin_type);
        if (!o)
            break;
        rcgc_set(&o->ref[1], S.live[i]);
        S.other_live[i] = o;    /* main holds it from here */
    }
    make_cycles(CYCLES / 2, false);
    /* Non-owner decrefs of main's objects: queued to main for a merge. */
    for (int i = 40; i < 80; i++)
        rcgc_decref(S.live[i]);
    gate_set(&G1, 1);
    gate_wait(&G1, 2);          /* main collects with us attached */
    for (size_t i = 0; i < S.nother; i += 3)
        w_free(&S.other_blocks[i]);
    rcgc_thread_detach();
    gate_set(&G1, 3);
    return NULL;
}

/* Attach churn: two threads attached at once (the second needs a new
 * thread state), one block each. */
static gate G2 = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void *churn_main(void *arg) {
    int second = (int)(intptr_t)arg;
    if (w_attach() != 0) {
        gate_set(&G2, second ? 3 : 1);
        return NULL;
    }
    wblock b;
    w_alloc(&b, 48, 0x44);
    if (!second) {
        gate_set(&G2, 1);
        gate_wait(&G2, 2);
    }
    w_free(&b);
    rcgc_thread_detach();
    if (second)
        gate_set(&G2, 3);
    return NULL;
}

static size_t live_raw_blocks(void) {
    size_t n = 0;
    for (size_t i = 0; i < S.nmain; i++)
        n += S.main_blocks[i].p != NULL;
    for (size_t i = 0; i < S.nother; i++)
        n += S.other_blocks[i].p != NULL;
    return n;
}

/* ------------------------------------------------------------------------
 * The workload
 * ------------------------------------------------------------------------ */

/* Part one: purge on, no arena cache (empty arenas are unmapped at once),
 * two collector workers. */
static void part_one(void) {
    /* Purges at once: a timed purge would make the calls of the purge site
     * depend on the clock (arena_test covers the delayed purge and a
     * purger that cannot start). */
    rcgc_config cfg = {.purge = 1, .purge_delay_ms = -1, .arena_cache = -1, .gc_workers = 2,
                       .gc_threshold = -1};
    if (w_init(&cfg) != 0)
        return;
    if (rcgc_gc_callback_add(gc_cb, NULL) != 0)
        w_error("callback_add");
    memset(&S, 0, sizeof S);
    G1.step = G2.step = 0;

    /* Raw blocks of every kind. */
    for (size_t i = 0; i < MAIN_BLOCKS; i++)
        w_alloc(&S.main_blocks[S.nmain++], block_size(i), (uint8_t)(i | 1));
    w_alloc(&S.main_blocks[S.nmain++], 100000, 0x61);
    w_alloc(&S.main_blocks[S.nmain++], TEST_MIB, 0x62);
    w_alloc(&S.main_blocks[S.nmain++], 20 * TEST_MIB, 0x63);
    w_alloc(&S.main_blocks[S.nmain++], 70 * TEST_MIB, 0x64);    /* huge: its own arena */

    /* Objects: a live tree under root, untracked leaves, SHARED_READ ones. */
    S.root = w_new(&node_type);
    wnode *prev = S.root;
    for (int i = 0; i < LIVE && prev; i++) {
        S.live[i] = w_new(i % 5 ? &node_type : &fin_type);
        if (!S.live[i])
            return;
        rcgc_set(&prev->ref[0], S.live[i]);
        rcgc_decref(S.live[i]);     /* the chain holds it */
        prev = S.live[i];
        if (i % 10 == 0) {
            wnode *leaf = w_new(&leaf_type);
            if (leaf) {
                rcgc_set(&S.live[i]->ref[2], leaf);
                rcgc_decref(leaf);
            }
        }
    }
    /* The chain holds one reference each; we keep one more on 40..79, which
     * the other thread drops (non-owner decrefs). */
    for (int i = 40; i < 80; i++)
        rcgc_incref(S.live[i]);
    for (int i = 0; i < 20; i++)
        S.live_weak[i] = w_weakref(S.live[i * 7], NULL);
    for (int i = 0; i < SHARED; i++)
        S.shared[i] = w_new(&shared_type);
    make_cycles(CYCLES / 2, true);

    /* The other thread, while we wait. */
    pthread_t th;
    if (pthread_create(&th, NULL, other_main, NULL) != 0) {
        w_error("pthread_create");
        return;
    }
    gate_wait(&G1, 1);
    rcgc_safepoint();           /* merge what the other thread queued to us */

    /* Collections with the other thread attached: young, then full. */
    checkpoint("young collection", w_collect(1));
    make_cycles(CYCLES / 3, true);
    checkpoint("full collection", w_collect(0));
    gate_set(&G1, 2);
    gate_wait(&G1, 3);
    join(th);

    /* The other thread's objects in cycles with ours: drop them. */
    for (int i = 0; i < 40; i++)
        if (S.other_live[i])
            rcgc_set(&S.live[i]->ref[1], S.other_live[i]);  /* a cycle through two owners */
    for (int i = 0; i < 40; i++)
        rcgc_xdecref(S.other_live[i]);

    /* Save-all: kept garbage, grown once, delivered, dropped. */
    rcgc_gc_set_debug(RCGC_GC_DEBUG_SAVEALL);
    make_cycles(SAVED / 3, false);
    checkpoint("save-all collection 1", w_collect(0));
    make_cycles(SAVED / 3 + 20, false);
    checkpoint("save-all collection 2", w_collect(0));
    rcgc_gc_set_debug(0);
    checkpoint("saved garbage", w_snapshot(3, NULL));
    checkpoint("garbage cleared", rcgc_gc_clear_garbage());
    checkpoint("collection of the cleared garbage", w_collect(0));

    /* Freeze: frozen garbage is not collected until unfrozen. */
    make_cycles(30, false);
    w_freeze(1);
    checkpoint("frozen", rcgc_gc_get_freeze_count());
    checkpoint("collection while frozen", w_collect(0));
    w_freeze(0);
    checkpoint("collection after unfreeze", w_collect(0));

    /* Snapshots: over 1024 objects, so the snapshot array grows. */
    wnode *many[1100];
    for (int i = 0; i < 1100; i++) {
        many[i] = w_new(&node_type);
        if (!many[i])
            return;
    }
    checkpoint("get_objects", w_snapshot(0, NULL));
    checkpoint("get_referrers", w_snapshot(1, S.live[3]));
    checkpoint("get_referents", w_snapshot(2, S.live[3]));
    checkpoint("objgraph counts", w_objgraph(0, NULL));
    checkpoint("objgraph chain", w_objgraph(1, S.live[3]));
    checkpoint("objgraph dot", w_objgraph(2, S.live[3]));
    /* The usage sampler: its thread is a fault site. */
    for (int tries = 0;; tries++) {
        int rc = rcgc_profile_start("/dev/null", 1000);
        if (rc == 0) {
            checkpoint("profile stop", (uint64_t)rcgc_profile_stop());
            break;
        }
        if (rc != EAGAIN || tries + 1 >= TRIES) {
            w_error("rcgc_profile_start: error %d", rc);
            break;
        }
        W.observed++;
    }
    for (int i = 0; i < 1100; i++)
        rcgc_decref(many[i]);

    /* Automatic collections: young ones, then whatever a full one finds. */
    auto_found = 0;
    rcgc_gc_set_threshold(150, 0);
    rcgc_gc_enable();
    make_cycles(200, false);
    rcgc_gc_set_threshold(0, 0);
    checkpoint("automatic + full collections", auto_found + w_collect(0));

    /* Attach churn. */
    pthread_t c1, c2;
    if (pthread_create(&c1, NULL, churn_main, (void *)0) != 0) {
        w_error("pthread_create");
        return;
    }
    gate_wait(&G2, 1);
    if (pthread_create(&c2, NULL, churn_main, (void *)1) != 0) {
        w_error("pthread_create");
        return;
    }
    gate_wait(&G2, 3);
    join(c2);
    gate_set(&G2, 2);
    join(c1);

    /* The heap walk sees exactly the live raw blocks. */
    /* Raw blocks: the workload's, and one record per weak reference. */
    size_t walked = w_heap_walk(RCGC_TAG_RAW);
    checkpoint("raw blocks walked", walked);
    if (walked != live_raw_blocks() + 20 + S.nweak)
        w_error("the heap walk saw %zu raw blocks, the workload holds %zu and %zu weak references",
                walked, live_raw_blocks(), 20 + S.nweak);

    /* Adopt the other thread's pages by allocating; free everything. */
    for (size_t i = 0; i < 100; i++)
        w_alloc(&S.main_blocks[S.nmain++], block_size(i * 7 + 3), (uint8_t)(0x40 | i));
    for (size_t i = 0; i < S.nother; i++)
        w_free(&S.other_blocks[i]);
    for (size_t i = 0; i < S.nmain; i++)
        w_free(&S.main_blocks[i]);
    for (int i = 0; i < SHARED; i++)
        rcgc_xdecref(S.shared[i]);
    rcgc__qsbr_barrier();       /* the shared objects' grace period, here */
    for (int i = 0; i < 20; i++) {
        void *o = rcgc_weakref_get(S.live_weak[i]);
        if (o != S.live[i * 7])
            w_error("a weak reference to a live object lost it");
        rcgc_xdecref(o);
    }
    for (int i = 40; i < 80; i++)   /* the references the other thread dropped */
        if (rcgc_refcount(S.live[i]) != 1)
            w_error("live object %d: count %zu, want 1", i, rcgc_refcount(S.live[i]));
    rcgc_xdecref(S.root);       /* the chain dies by counting, less the cycles */
    checkpoint("final collection", w_collect(0));
    for (int i = 0; i < 20; i++) {
        if (rcgc_weakref_get(S.live_weak[i]))
            w_error("a weak reference outlived its referent");
        rcgc_weakref_free(S.live_weak[i]);
    }
    for (size_t i = 0; i < S.nweak; i++) {
        if (rcgc_weakref_get(S.weak[i]))
            w_error("a weak reference to garbage still answers");
        rcgc_weakref_free(S.weak[i]);
    }
    rcgc_heap_collect();
    rcgc__heap_collect_abandoned();
    rcgc_stats s;
    rcgc_stats_get(&s);
    if (s.blocks_in_use || s.bytes_in_use || s.large_in_use || s.pages_abandoned)
        w_error("after freeing everything: %zu blocks, %zu bytes, %zu large in use, %zu pages "
                "abandoned",
                s.blocks_in_use, s.bytes_in_use, s.large_in_use, s.pages_abandoned);
    /* Every arena reservation the OS layer holds is in the statistics. */
    if (s.bytes_reserved != mapped_reservations() || s.bytes_committed > s.bytes_reserved ||
        (s.bytes_reserved == 0) != (s.bytes_committed == 0))
        w_error("after freeing everything: %zu bytes reserved in %zu arenas, %zu committed, the OS "
                "layer has %zu mapped as reservations",
                s.bytes_reserved, s.arenas, s.bytes_committed, mapped_reservations());

    if (made != destroyed)
        w_error("%zu objects made, %zu destroyed", (size_t)made, (size_t)destroyed);
    if (W.baseline)
        print_message("fault walk: the workload's first part allocates %zu blocks and objects\n",
                      s.allocs_total);
    /* The statistics count every aborted collection the workload saw. */
    rcgc_gc_stats gs;
    rcgc_gc_get_stats(&gs);
    if (gs.aborted != aborts_seen)
        w_error("the statistics count %llu aborted collections, the workload saw %zu",
                (unsigned long long)gs.aborted, aborts_seen);
    checkpoint("finalized", finalized);
    checkpoint("weak-reference callbacks", callbacks);
    rcgc_shutdown();            /* its last collection reports through gc_cb too */
    rcgc_gc_callback_remove(gc_cb, NULL);
}

/* Part two, after a re-init: purge off, an arena cache of two, objects and
 * blocks left for rcgc_shutdown to collect and unmap. */
static void part_two(void) {
    rcgc_config cfg = {.purge = -1, .purge_delay_ms = -1, .arena_cache = 2, .gc_workers = 2,
                       .gc_threshold = -1};
    if (w_init(&cfg) != 0)
        return;
    wblock b[64];
    for (int i = 0; i < 64; i++)
        w_alloc(&b[i], block_size((size_t)i * 13), (uint8_t)(0x20 | i));
    wblock huge;
    w_alloc(&huge, 80 * TEST_MIB, 0x21);
    w_free(&huge);              /* its arena goes back at once */
    for (int i = 0; i < 64; i += 2)
        w_free(&b[i]);          /* a span freed after the huge one */
    rcgc_heap_collect();
    make_cycles(40, false);
    checkpoint("part two collection", w_collect(0));
    for (int i = 1; i < 64; i += 2)
        w_free(&b[i]);
    make_cycles(10, false);     /* garbage for the collection inside rcgc_shutdown */
    size_t before = destroyed, garbage = made - destroyed;
    size_t aborted = auto_aborted;
    if (rcgc_gc_callback_add(gc_cb, NULL) != 0)
        w_error("callback_add");
    rcgc_shutdown();
    rcgc_gc_callback_remove(gc_cb, NULL);
    /* A last collection that aborts for lack of memory leaves its garbage
     * to go with the arenas, without clear or destroy (documented); it
     * must not do half of it. */
    if (auto_aborted != aborted) {
        if (destroyed != before)
            w_error("the aborted last collection destroyed %zu objects", destroyed - before);
        shutdown_leaked = garbage;
    }
    checkpoint("destroyed by shutdown, or left by its aborted collection",
               destroyed - before + shutdown_leaked);
}

/* After rcgc_shutdown every byte the OS layer still maps is an arena that
 * the OS refused to unmap, kept and counted by the statistics. */
static void check_after_shutdown(const char *when) {
    rcgc_stats s;
    rcgc_stats_get(&s);
    size_t r, m;
    rcgc__os_mapped(&r, &m);
    if (s.bytes_reserved != r || m != 0 || rcgc__os_stranded_bytes() != 0)
        w_error("after %s: %zu bytes in %zu arenas reserved, the OS layer maps %zu bytes of "
                "reservations and %zu of metadata (%zu stranded)",
                when, s.bytes_reserved, s.arenas, r, m, rcgc__os_stranded_bytes());
    if (s.threads_attached || rcgc_is_attached())
        w_error("after %s: %zu threads attached", when, s.threads_attached);
}

/* Part three: the delayed purge, with a delay no run outlasts (an hour),
 * so that what the clock decides cannot change the calls: the first span
 * given back starts the purger thread (fails: purges happen at once), and
 * rcgc_heap_collect purges what is pending. */
static void part_three(void) {
    rcgc_config cfg = {.purge = 1, .purge_delay_ms = 3600000, .arena_cache = -1, .gc_workers = 1,
                       .gc_threshold = -1};
    if (w_init(&cfg) != 0)
        return;
    wblock b[32];
    for (int i = 0; i < 32; i++)
        w_alloc(&b[i], 20000, (uint8_t)(0x40 | i));    /* medium pages of 512 KiB */
    for (int i = 0; i < 32; i++)
        w_free(&b[i]);
    rcgc_heap_collect();
    rcgc_shutdown();
}

static void run_workload(int baseline) {
    memset(&W, 0, sizeof W);
    W.baseline = baseline;
    made = destroyed = finalized = callbacks = bad = 0;
    next_id = 0;
    auto_found = auto_aborted = shutdown_leaked = aborts_seen = 0;
    part_one();
    check_after_shutdown("the first shutdown");
    part_two();
    check_after_shutdown("the second shutdown");
    part_three();
    check_after_shutdown("the third shutdown");
    if (made != destroyed + shutdown_leaked)
        w_error("%zu objects made, %zu destroyed, %zu left by an aborted last collection",
                (size_t)made, (size_t)destroyed, shutdown_leaked);
    if (rcgc_is_attached())
        w_error("still attached after shutdown");
    if (baseline)
        baseline_nck = W.nck;
    else if (W.nck != baseline_nck)
        w_error("%zu checkpoints, the run without faults had %zu", W.nck, baseline_nck);
}

/* ------------------------------------------------------------------------
 * The walk
 * ------------------------------------------------------------------------ */

static bool lib_site(const rcgc_os_site *s) { return strncmp(s->file, "lib/", 4) == 0; }

/* Per-site totals over the walk. */
typedef struct {
    uint64_t base_calls;        /* calls in the run without faults */
    uint64_t injected;          /* failures injected here over the walk */
    uint64_t surfaced;          /* of which the API reported */
    uint64_t reached;           /* calls over the whole walk */
} site_total;

static rcgc_os_site *const *sites;
static size_t nsites;
static site_total *totals;
static size_t kept_at_shutdown;     /* runs whose shutdown could not unmap an arena */
static uint64_t total_injected;
static uint64_t *calls_before;

static void snapshot_calls(void) {
    for (size_t i = 0; i < nsites; i++)
        calls_before[i] = atomic_load(&sites[i]->calls);
}

static const char *site_name(const rcgc_os_site *s) {
    static char buf[160];
    snprintf(buf, sizeof buf, "%s:%d %s() [%s]", s->file, s->line, s->func,
             rcgc__os_op_name(s->op));
    return buf;
}

/* One run with the kth call of site s1 failing (and the k2th of s2, if
 * s2 >= 0); checks the run, adds to the totals, and records in *reached
 * (per site) the calls this run made. */
static void one_run(long s1, uint64_t k1, long s2, uint64_t k2, uint64_t *reached) {
    uint64_t inj0[512];
    for (size_t i = 0; i < nsites; i++)
        inj0[i] = atomic_load(&sites[i]->injected);
    snapshot_calls();
    rcgc__os_fail_site(sites[s1], k1);
    if (s2 >= 0)
        rcgc__os_fail_site(sites[s2], k2);
    run_workload(0);
    rcgc__os_fail_site(sites[s1], 0);
    if (s2 >= 0)
        rcgc__os_fail_site(sites[s2], 0);
    uint64_t s1_calls = atomic_load(&sites[s1]->calls) - calls_before[s1];
    /* An arena the OS would not unmap at shutdown is kept, counted: the
     * next init reuses it and the next shutdown gives it back. */
    rcgc_stats st;
    rcgc_stats_get(&st);
    if (st.bytes_reserved) {
        kept_at_shutdown++;
        rcgc_config again = {.purge_delay_ms = -1};    /* deterministic, as the parts */
        if (rcgc_init(&again) != 0)
            w_error("rcgc_init after a kept arena");
        void *p = rcgc_malloc(1000);
        if (!p)
            w_error("rcgc_malloc after a kept arena");
        rcgc_free(p);
        rcgc_shutdown();
        check_after_shutdown("the shutdown after a kept arena");
        rcgc_stats_get(&st);
        if (st.bytes_reserved)
            w_error("the kept arena was not given back: %zu bytes", st.bytes_reserved);
    }
    uint64_t ninjected = 0;
    for (size_t i = 0; i < nsites; i++) {
        uint64_t d = atomic_load(&sites[i]->injected) - inj0[i];
        uint64_t here = atomic_load(&sites[i]->calls) - calls_before[i];
        totals[i].reached += here;
        if (reached)
            reached[i] = here;
        ninjected += d;
        totals[i].injected += d;
        totals[i].surfaced += d && W.observed > 0;
    }
    total_injected += ninjected;
    char where[200];
    snprintf(where, sizeof where, "call %llu of %s", (unsigned long long)k1, site_name(sites[s1]));
    if (s2 >= 0)
        snprintf(where + strlen(where), sizeof where - strlen(where), " and call %llu of %s:%d",
                 (unsigned long long)k2, sites[s2]->file, sites[s2]->line);
    if (W.errors)
        fail_msg("fault at %s: %zu error(s), first: %s", where, W.errors, W.first_error);
    if (s1_calls < k1)
        fail_msg("fault at %s: the run made only %llu calls there: not deterministic", where,
                 (unsigned long long)s1_calls);
    if (ninjected != 1 + (s2 >= 0))
        fail_msg("fault at %s: %llu faults injected", where, (unsigned long long)ninjected);
}

/* Under a sanitizer, a site called many times has its first and last six
 * calls failed and every fourth between (the purge of a freed page is 89
 * of the 148 calls, all absorbed alike); RCGC_TEST_FULL_WALK=1 walks
 * every call there too. Without a sanitizer every call is failed. */
static bool walked(uint64_t k, uint64_t calls) {
    static int full = -1;
    if (full < 0) {
        const char *e = getenv("RCGC_TEST_FULL_WALK");
        full = !TEST_SANITIZER || (e && *e == '1');
    }
    return full || calls <= 16 || k <= 6 || k > calls - 6 || k % 4 == 0;
}

static void test_fault_walk(void **state) {
    TEST_BEGIN(state);
    setenv("RCGC_GC_PAGES_PER_WORKER", "1", 1);    /* both workers on this small heap */
    setenv("RCGC_WATCHDOG_MS", "0", 1);
    nsites = rcgc__os_sites(&sites);
    assert_true(nsites > 0 && nsites <= 512);
    totals = calloc(nsites, sizeof *totals);
    calls_before = calloc(nsites, sizeof *calls_before);
    uint64_t *reached = calloc(nsites, sizeof *reached);
    rcgc__os_sites_reset();

    /* The run without faults: the calls per site. */
    uint64_t c0 = rcgc__os_calls();
    snapshot_calls();
    time_t start = time(NULL), last_print = start;
    run_workload(1);
    if (W.errors)
        fail_msg("the run without faults: %zu error(s), first: %s", W.errors, W.first_error);
    uint64_t N = rcgc__os_calls() - c0, to_walk = 0;
    for (size_t i = 0; i < nsites; i++) {
        totals[i].base_calls = atomic_load(&sites[i]->calls) - calls_before[i];
        totals[i].reached += totals[i].base_calls;
        if (lib_site(sites[i]) && rcgc__os_op_fallible(sites[i]->op))
            for (uint64_t k = 1; k <= totals[i].base_calls; k++)
                to_walk += walked(k, totals[i].base_calls);
    }
    print_message("fault walk: %llu fallible OS calls in the workload, %llu to fail one per run, "
                  "%zu checkpoints\n",
                  (unsigned long long)N, (unsigned long long)to_walk, baseline_nck);

    /* One fault per run: the kth call of each site, for every k. Sites
     * that the run reached more often than the run without faults did (a
     * retry after a failed unmap, never reached otherwise) get a second
     * fault below. */
    typedef struct { long site; uint64_t k; long second; uint64_t calls; } secondary;
    size_t cap = 64, nsec = 0;
    secondary *sec = calloc(cap, sizeof *sec);
    uint64_t runs = 0;
    for (size_t i = 0; i < nsites; i++) {
        if (!lib_site(sites[i]) || !rcgc__os_op_fallible(sites[i]->op))
            continue;
        for (uint64_t k = 1; k <= totals[i].base_calls; k++) {
            if (!walked(k, totals[i].base_calls))
                continue;
            one_run((long)i, k, -1, 0, reached);
            runs++;
            for (size_t j = 0; j < nsites; j++) {
                if (totals[j].base_calls || reached[j] == 0 || !lib_site(sites[j]) ||
                    !rcgc__os_op_fallible(sites[j]->op))
                    continue;
                if (nsec == cap)
                    sec = realloc(sec, (cap *= 2) * sizeof *sec);
                sec[nsec++] = (secondary){(long)i, k, (long)j, reached[j]};
            }
            if (time(NULL) != last_print) {
                last_print = time(NULL);
                print_message("  ... %llu/%llu\n", (unsigned long long)runs,
                              (unsigned long long)to_walk);
            }
        }
    }
    /* Two faults per run: the first again, and each call (four at most) of
     * a site that only the first made reachable. */
    uint64_t double_runs = 0;
    for (size_t j = 0; j < nsec; j++) {
        uint64_t k_max = sec[j].calls < 4 ? sec[j].calls : 4;
        for (uint64_t k = 1; k <= k_max; k++) {
            one_run(sec[j].site, sec[j].k, sec[j].second, k, NULL);
            double_runs++;
        }
    }
    free(sec);
    free(reached);

    /* Every site of lib/ failed (or, for the releases that cannot fail,
     * reached). */
    size_t lib_sites = 0, missed = 0;
    print_message("%-44s %-13s %6s %8s %8s %8s\n", "site", "operation", "calls", "reached",
                  "injected", "surfaced");
    for (size_t i = 0; i < nsites; i++) {
        const rcgc_os_site *s = sites[i];
        if (!lib_site(s))
            continue;
        lib_sites++;
        char where[96];
        snprintf(where, sizeof where, "%s:%d %s()", s->file, s->line, s->func);
        print_message("%-44s %-13s %6llu %8llu %8llu %8llu\n", where, rcgc__os_op_name(s->op),
                      (unsigned long long)totals[i].base_calls,
                      (unsigned long long)totals[i].reached,
                      (unsigned long long)totals[i].injected,
                      (unsigned long long)totals[i].surfaced);
        bool ok = rcgc__os_op_fallible(s->op) ? totals[i].injected > 0 : totals[i].reached > 0;
        if (!ok) {
            missed++;
            print_error("site never %s by the walk: %s\n",
                        rcgc__os_op_fallible(s->op) ? "failed" : "reached", site_name(s));
        }
    }
    print_message("fault walk: %zu sites in lib/, %llu single-fault runs (of %llu calls), %llu "
                  "double-fault runs, %llu faults injected, %zu arena(s) kept by a shutdown, %ld s\n",
                  lib_sites, (unsigned long long)runs, (unsigned long long)N,
                  (unsigned long long)double_runs, (unsigned long long)total_injected,
                  kept_at_shutdown, (long)(time(NULL) - start));
    assert_int_equal(missed, 0);
    assert_true(lib_sites >= 20);
    free(totals);
    free(calls_before);
}

/* ------------------------------------------------------------------------
 * Every OS call of lib/ goes through lib/os.h: a scan of the sources (the
 * site table cannot see a raw mmap). Runs where the sources are data.
 * ------------------------------------------------------------------------ */
static void test_no_raw_os_calls(void **state) {
    TEST_BEGIN(state);
    static const char *const banned[] = {"mmap(",   "munmap(",  "madvise(",        "mremap(",
                                         "malloc(", "calloc(",  "realloc(",        "strdup(",
                                         "posix_memalign(",     "aligned_alloc(",  "pthread_create(",
                                         "pthread_setspecific(", "free(",          NULL};
    DIR *d = opendir("lib");
    if (!d) {
        print_message("lib/ sources not found from %s: skipped\n", getenv("PWD"));
        skip();
        return;
    }
    size_t files = 0, wrapper_calls = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 3 || strcmp(e->d_name + len - 2, ".c") != 0 || strcmp(e->d_name, "os.c") == 0)
            continue;
        /* The profiling tools use libc's memory on purpose, and their
         * failures never reach the runtime's state: the tracer's records
         * (trace.c: it must not recurse into rcgc's heaps; a record it
         * cannot allocate is counted as dropped and reported), the arrays
         * objgraph hands to callers, who free() them (objgraph.c, debug.c),
         * the usage sampler's buffers (profile.c: its thread has no rcgc
         * heap; a failure stops sampling and says so), and the copies of
         * string options (options.c: an option that cannot be copied stays
         * unset). */
        static const char *const libc_ok[] = {"trace.c", "objgraph.c", "debug.c", "options.c",
                                              "profile.c", NULL};
        bool exempt = false;
        for (int k = 0; libc_ok[k]; k++)
            exempt |= strcmp(e->d_name, libc_ok[k]) == 0;
        char path[300];
        snprintf(path, sizeof path, "lib/%s", e->d_name);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        files++;
        char line[1024];
        int ln = 0;
        while (fgets(line, sizeof line, f)) {
            ln++;
            const char *code = line;
            while (*code == ' ')
                code++;
            if (code[0] == '*' || (code[0] == '/' && (code[1] == '*' || code[1] == '/')))
                continue;   /* comments */
            for (int b = 0; banned[b]; b++) {
                bool libc_memory = b >= 4 && b <= 7;  /* malloc calloc realloc strdup */
                libc_memory |= strcmp(banned[b], "free(") == 0;
                if (exempt && libc_memory)
                    continue;
                for (const char *p = strstr(line, banned[b]); p; p = strstr(p + 1, banned[b])) {
                    /* A word on its own: not rcgc_malloc(, rcgc_free(, ... */
                    char before = p == line ? ' ' : p[-1];
                    if (before == '_' || (before >= 'a' && before <= 'z') ||
                        (before >= 'A' && before <= 'Z') || (before >= '0' && before <= '9') ||
                        before == '.' || before == '>')
                        continue;
                    /* Clearing a key's value never allocates. */
                    if (strcmp(banned[b], "pthread_setspecific(") == 0 && strstr(p, ", NULL)"))
                        continue;
                    fail_msg("%s:%d calls %s outside lib/os.c: %s", path, ln, banned[b], line);
                }
            }
            for (const char *p = strstr(line, "rcgc__os_"); p; p = strstr(p + 1, "rcgc__os_")) {
                static const char *const wrappers[] = {
                    "rcgc__os_reserve_aligned(", "rcgc__os_release(", "rcgc__os_purge(",
                    "rcgc__os_alloc(", "rcgc__os_alloc_big(", "rcgc__os_free(", "rcgc__os_thread_create(",
                    "rcgc__os_tls_set(", NULL};
                for (int w = 0; wrappers[w]; w++)
                    wrapper_calls += strncmp(p, wrappers[w], strlen(wrappers[w])) == 0;
            }
        }
        fclose(f);
    }
    closedir(d);
    /* Each wrapper call in the sources is one site in the table. */
    rcgc_os_site *const *all;
    size_t n = rcgc__os_sites(&all), in_lib = 0;
    for (size_t i = 0; i < n; i++)
        in_lib += lib_site(all[i]);
    print_message("%zu files of lib/ scanned: %zu wrapper calls, %zu sites in the table\n", files,
                  wrapper_calls, in_lib);
    assert_true(files >= 10);
    assert_int_equal(wrapper_calls, in_lib);
}

int main(void) {
    test_main_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_raw_os_calls),
        cmocka_unit_test(test_fault_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
