/*
 * The cycle collector: CPython's algorithm, on the heap walk, in parallel.
 *
 * Theory. Reference counting frees everything except cycles. With the
 * world stopped, for every candidate (a tracked object that is neither
 * frozen nor immortal nor dying; in a young collection, only those
 * allocated since the last collection):
 *
 *   A. gc_refs := true count (local + shared count - 1 if queued);
 *   B. traverse each candidate and take one from the gc_refs of every
 *      candidate it refers to. What remains counts references from outside
 *      the candidates: from roots, from non-candidates (old or frozen
 *      objects, untracked containers), from the stack;
 *   C. candidates with gc_refs > 0 are reachable: mark them and everything
 *      they reach among the candidates;
 *   D. the unmarked candidates are unreachable (garbage).
 *
 * Where the state lives. Candidates are found by walking the pages that
 * hold tracked objects (heap tag GC), not a list through every object: a
 * block of an object page is live unless its `shared` word holds the
 * FREED mark (heap.c writes it on blocks it carves, object.c on blocks it
 * frees). During the pause the header's `owner` word holds gc_refs (A, B),
 * then the mark-stack link (C), as CPython reuses ob_tid and gc_prev; the
 * `gc` word gets CANDIDATE, REACHABLE and OWNED. `owner` is restored
 * without a side table: a live object's owner is either UNOWNED or the
 * thread whose heap holds its page (only the allocating thread owns an
 * object, and a thread that leaves merges what it owns before its pages
 * are abandoned), so one bit (OWNED) says which; a large object's page has
 * no heap, so its owner waits in the page descriptor's unused `local_free`.
 *
 * In parallel. Worker 0 is the collecting thread, workers 1.. are helper
 * threads (RCGC_GC_WORKERS). Each phase is one dispatch: workers take
 * pages (or chunks of an object array) from a shared cursor, and the
 * dispatch returns when all are done, which is the barrier between phases.
 * B decrements with atomics when more than one worker runs (the referent
 * may be in another worker's page), gathered per object first. C scans
 * the pages in address order and traverses the roots and marked objects
 * it meets (the section before phase_scan explains why and how); marking
 * is a fetch-or, so each object is pushed at most once. Every worker has a
 * private stack linked through `owner`, and when some worker is idle,
 * busy ones move half their stack to a public one that idle workers take
 * whole (one exchange: no ABA, since an object is pushed at most once). A
 * worker stops when every worker is idle and every public stack is empty.
 * A traversed object gets its owner back at once, so survivors need no
 * further pass; D walks again only if there is garbage.
 *
 * Garbage, in the order PEP 442 asks for:
 *   1. in the pause: each garbage object gets a reference held by the
 *      collector (objects of other threads are merged, so their counting
 *      is atomic from here and their deaths happen on this thread), and
 *      its weak references are cleared (callbacks queued);
 *   2. the world runs: finalizers run, once per object (a header bit);
 *   3. only if a finalizer ran: a second pause runs A-C over the garbage
 *      array (gc_refs = count - the collector's reference); what has
 *      gc_refs > 0, and what it reaches, was resurrected and survives;
 *   4. the world runs: `clear` on the rest, then the collector drops its
 *      references and counting frees them; then weak-reference callbacks.
 *
 * Out of memory. The only allocations are the page list (before anything
 * changes) and the garbage array (after marking): if that fails, phase D
 * restores every header it touched (survivors were restored by C) and the
 * collection ends with nothing changed, reported through errno, the
 * statistics and the callbacks.
 *
 * Young collections. Every page remembers the collector epoch in which
 * blocks were last allocated from it (heap.c stamps the page when it
 * becomes the allocation page; a collection stamps each heap's current
 * pages as it bumps the epoch), and new objects carry a YOUNG bit, cleared
 * when they survive. A young collection walks only the pages of the
 * current epoch: its pause is proportional to the young set, plus one
 * descriptor per 64 KiB of heap to find those pages.
 *
 * Triggering. Tracked allocations minus deallocations since the last
 * collection, buffered per thread and clamped at zero globally (a thread
 * freeing old objects must not push the count below zero and delay the
 * next collection: CPython gh-142048), the collector's own frees not
 * counted. Past the threshold and a quarter of the tracked heap, the
 * allocating thread collects at its next safepoint; young, unless young
 * survivors since the last full collection exceed RCGC_GC_FULL_PCT % of
 * what survived it.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gc.h"
#include "objgraph.h"
#include "os.h"
#include "safepoint.h"

_Static_assert(RCGC_SHARED_FREED == RCGC_BLOCK_FREE_MARK, "heap.c and object.c agree on the free mark");
_Static_assert(offsetof(rcgc_thread, heap) == 0, "a page's heap is its owner thread");

uint32_t rcgc__gc_epoch = 1;

#define MAX_WORKERS 256
#define OBJ_CHUNK 2048          /* array entries per cursor step */
/* A private stack this deep is split for idle workers. Deeper than a
 * tree's depth-first stack: sharing subtrees of one tree made two workers
 * on 2 vCPUs mark 10^6 nodes in 25 ms instead of 11 (they write headers on
 * the same lines); wide graphs, with many roots, still spread. */
#define SHARE_MIN 64
#define MAX_CALLBACKS 32
#define GARBAGE_RUN 256         /* garbage-array slots a worker takes at once */
#define DEC_SLOTS 64            /* phase B: objects whose decrements a worker gathers */

/* ------------------------------------------------------------------------
 * Settings and state
 * ------------------------------------------------------------------------ */

static struct {
    _Atomic int enabled;
    _Atomic size_t threshold;
    _Atomic unsigned full_pct;
    _Atomic unsigned debug;
    _Atomic long young_count;           /* clamped at zero */
    _Atomic size_t tracked_live;        /* survivors, as of the last collection */
    /* Possible roots: live PURPLE objects, less what threads buffer (so
     * below zero at times; exact with the world stopped, see
     * policy_after_pause). */
    _Atomic long purple;
    _Atomic size_t old_deaths;          /* tracked objects that died old since the last full */
    _Atomic size_t purple_old;          /* PURPLE objects a young collection did not visit */
    _Atomic unsigned empty_streak;      /* automatic collections in a row that found nothing */
    _Atomic unsigned young_since_full;
    _Atomic size_t frozen;
    rcgc_thread *_Atomic collector;     /* the thread inside a collection or snapshot */
    /* gc_lock */
    size_t old_at_full;                 /* survivors of the last full collection */
    size_t promoted;                    /* young survivors since */
    uint64_t collections;
    /* Saved garbage (RCGC_GC_DEBUG_SAVEALL), gc_lock. */
    rcgc__header **saved;
    size_t nsaved, saved_cap, saved_bytes;
} G;
/* Serialises collections and snapshots. Held across a collection's
 * finalizers and clears; a collection started from inside one (a
 * finalizer, a callback) returns 0 at once, as CPython's does. */
static pthread_mutex_t gc_lock = PTHREAD_MUTEX_INITIALIZER;

/* RCGC_GC_TRACE (read by rcgc_init): print each pass's phase times. */
static int trace;

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static rcgc_gc_stats totals;            /* stats_lock */

static pthread_mutex_t cb_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { rcgc_gc_callback fn; void *arg; } callbacks[MAX_CALLBACKS];
static unsigned ncallbacks;             /* cb_lock */

/* ------------------------------------------------------------------------
 * Workers
 * ------------------------------------------------------------------------ */

typedef struct worker {
    _Alignas(64) unsigned id;
    bool atomic;                        /* other workers run too */
    rcgc__header *stack;                /* private mark stack (linked through owner) */
    size_t stack_n;
    size_t candidates, reached;
    size_t purple;                      /* PURPLE bits cleared (survivors, garbage) */
    size_t gfill, gend;                 /* phase D: this worker's slots of the garbage array */
    uintptr_t scan_pos, scan_end;       /* phase C on pages: where this worker's scan is */
    rcgc__header *traversing;           /* phase B: whose traverse runs (fatal messages) */
    /* Phase B with several workers: decrements gathered per object before
     * the atomic subtraction (direct-mapped; see visit_decref). */
    struct { rcgc__header *h; uintptr_t n; } dec[DEC_SLOTS];
    pthread_t thread;
    uint64_t gen_at_start;              /* pool.gen when the thread was made (pool lock) */
    /* Read by idle workers while the owner pushes and pops: its own line. */
    _Alignas(64) rcgc__header *_Atomic shared; /* published half-stacks */
} worker;

static worker workers[MAX_WORKERS];

static struct {
    pthread_mutex_t lock;
    pthread_cond_t go, done;
    unsigned started;                   /* helper threads running (workers 1..started) */
    unsigned active;                    /* workers in the current pass (the collecting thread) */
    unsigned dispatch_active;           /* workers in the dispatch numbered gen (pool lock): a
                                           helper that wakes late must not read `active`,
                                           which the next pass may have raised (TSan) */
    uint64_t gen;
    unsigned running;
    void (*fn)(worker *);
    int quit;
    _Atomic unsigned idle;              /* phase C: workers out of work */
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static void *worker_main(void *arg) {
    worker *w = arg;
    /* The dispatch count when this thread was made (a phase may be
     * dispatched before the thread first runs: it must not miss it). */
    uint64_t seen = w->gen_at_start;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (pool.gen == seen && !pool.quit)
            pthread_cond_wait(&pool.go, &pool.lock);
        if (pool.quit)
            break;
        seen = pool.gen;
        if (w->id >= pool.dispatch_active)
            continue;
        void (*fn)(worker *) = pool.fn;
        pthread_mutex_unlock(&pool.lock);
        fn(w);
        pthread_mutex_lock(&pool.lock);
        if (--pool.running == 0)
            pthread_cond_signal(&pool.done);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

static unsigned workers_wanted(void) {
    long n = rcgc__option(RCGC_OPT_GC_WORKERS);
    if (n <= 0) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n <= 0)
            n = 1;
    }
    return n > MAX_WORKERS ? MAX_WORKERS : (unsigned)n;
}

/* Start helper threads up to the configured count (outside any pause).
 * A thread that cannot be created just means fewer workers. */
static unsigned pool_start(void) {
    unsigned want = workers_wanted();
    pthread_mutex_lock(&pool.lock);
    while (pool.started + 1 < want) {
        worker *w = &workers[pool.started + 1];
        w->id = pool.started + 1;
        w->gen_at_start = pool.gen;
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);   /* helpers take no signals */
        int err = rcgc__os_thread_create(&w->thread, NULL, worker_main, w);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (err)
            break;
        char name[16];
        snprintf(name, sizeof name, "rcgc-gc-%u", w->id);
        pthread_setname_np(w->thread, name);
        pool.started++;
    }
    unsigned n = pool.started + 1;
    pthread_mutex_unlock(&pool.lock);
    return n;
}

static void pool_stop(void) {
    pthread_mutex_lock(&pool.lock);
    pool.quit = 1;
    unsigned n = pool.started;
    pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.lock);
    for (unsigned i = 1; i <= n; i++)
        pthread_join(workers[i].thread, NULL);
    pthread_mutex_lock(&pool.lock);
    pool.started = 0;
    pool.quit = 0;
    pthread_mutex_unlock(&pool.lock);
}

/* ------------------------------------------------------------------------
 * The collection's source: pages of tracked objects, or an object array
 * ------------------------------------------------------------------------ */

typedef struct {
    rcgc_page **pages;
    size_t npages, pages_bytes;
    rcgc__header **objs;                /* low bit set: resurrected (pass 2) */
    size_t nobjs;
    _Atomic size_t next;                /* cursor: page index or chunk index */
} source;

/* One collection (gc_lock). */
static struct {
    rcgc_thread *self;
    int young;
    int pass;                           /* 1: the heap; 2: the garbage, for resurrection */
    source src;
    rcgc__header **garbage;
    size_t ngarbage, gcap, garbage_bytes;
    _Atomic size_t garbage_fill;
    int restore_only;                   /* no memory for the garbage array: undo */
} C;

typedef struct {
    int young;
    unsigned tags;                      /* 1u << RCGC_TAG_* of the pages wanted */
    uint32_t epoch;
    rcgc_page **out;
    size_t n;
} page_select;

#define GC_PAGES (1u << RCGC_TAG_GC)

static int select_page(rcgc_page *pg, void *arg) {
    page_select *s = arg;
    if (!(s->tags & (1u << pg->tag)) || pg->block_size == 0)
        return 0;
    if (pg->kind != RCGC_PAGE_SMALL && pg->kind != RCGC_PAGE_MEDIUM && pg->kind != RCGC_PAGE_LARGE)
        return 0;
    if (s->young && pg->gc_epoch != s->epoch)
        return 0;
    if (s->out)
        s->out[s->n] = pg;
    s->n++;
    return 0;
}

static int cmp_page(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)(*(rcgc_page *const *)a)->start;
    uintptr_t y = (uintptr_t)(*(rcgc_page *const *)b)->start;
    return x < y ? -1 : x > y;
}

/* The pages to walk (world stopped): those of `tags`, young ones only if
 * young. ENOMEM leaves src empty. */
static int source_pages(source *src, int young, unsigned tags) {
    page_select s = {young, tags, __atomic_load_n(&rcgc__gc_epoch, __ATOMIC_RELAXED), NULL, 0};
    rcgc__arena_foreach_span(select_page, &s);
    size_t bytes = (s.n ? s.n : 1) * sizeof(rcgc_page *);
    rcgc_page **pages = rcgc__os_alloc(bytes);
    if (!pages)
        return ENOMEM;
    s.out = pages;
    s.n = 0;
    rcgc__arena_foreach_span(select_page, &s);
    qsort(pages, s.n, sizeof pages[0], cmp_page);     /* phase C scans in address order */
    memset(src, 0, sizeof *src);
    src->pages = pages;
    src->npages = s.n;
    src->pages_bytes = bytes;
    return 0;
}

static void source_release(source *src) {
    if (src->pages)
        rcgc__os_free(src->pages, src->pages_bytes);
    src->pages = NULL;
}

static inline bool block_live(const rcgc__header *h) {
    return rcgc__shared(h) != RCGC_SHARED_FREED;
}

/* Call fn on every live block of the source's next pieces, until none is
 * left. idx is the array index (array sources) or SIZE_MAX. */
typedef void (*block_fn)(worker *w, rcgc__header *h, size_t idx);

__attribute__((always_inline)) static inline void page_each(worker *w, rcgc_page *pg, block_fn fn) {
    if (pg->kind == RCGC_PAGE_LARGE) {
        rcgc__header *h = (rcgc__header *)pg->start;
        if (__atomic_load_n(&pg->used, __ATOMIC_RELAXED) && block_live(h))
            fn(w, h, SIZE_MAX);
        return;
    }
    size_t bs = pg->block_size, n = pg->reserved;
    uint8_t *p = pg->start;
    for (size_t i = 0; i < n; i++, p += bs) {
        rcgc__header *h = (rcgc__header *)p;
        if (block_live(h))
            fn(w, h, SIZE_MAX);
    }
}

__attribute__((always_inline)) static inline void source_each(worker *w, block_fn fn) {
    source *src = &C.src;
    for (;;) {
        size_t c = atomic_fetch_add_explicit(&src->next, 1, memory_order_relaxed);
        if (src->objs) {
            size_t lo = c * OBJ_CHUNK;
            if (lo >= src->nobjs)
                return;
            size_t hi = lo + OBJ_CHUNK < src->nobjs ? lo + OBJ_CHUNK : src->nobjs;
            for (size_t i = lo; i < hi; i++)
                if (!((uintptr_t)src->objs[i] & 1))
                    fn(w, src->objs[i], i);
        } else {
            if (c >= src->npages)
                return;
            page_each(w, src->pages[c], fn);
        }
    }
}

/* Run one phase on every active worker; returns when all are done. */
static void run_phase(void (*fn)(worker *)) {
    atomic_store_explicit(&C.src.next, 0, memory_order_relaxed);
    unsigned active = pool.active;
    if (active > 1) {
        pthread_mutex_lock(&pool.lock);
        pool.fn = fn;
        pool.running = active - 1;
        pool.dispatch_active = active;
        pool.gen++;
        pthread_cond_broadcast(&pool.go);
        pthread_mutex_unlock(&pool.lock);
    }
    fn(&workers[0]);
    if (active > 1) {
        pthread_mutex_lock(&pool.lock);
        while (pool.running > 0)
            pthread_cond_wait(&pool.done, &pool.lock);
        pthread_mutex_unlock(&pool.lock);
    }
}

/* ------------------------------------------------------------------------
 * Header fields during a pause
 * ------------------------------------------------------------------------ */

static inline uintptr_t load_owner(const rcgc__header *h) {
    return __atomic_load_n(&h->owner, __ATOMIC_RELAXED);
}
static inline void store_owner(rcgc__header *h, uintptr_t v) {
    __atomic_store_n(&h->owner, v, __ATOMIC_RELAXED);
}
static inline void store_gc(rcgc__header *h, uint32_t v) {
    __atomic_store_n(&h->gc, v, __ATOMIC_RELAXED);
}

/* The owner to put back (see the theory: OWNED means the page's heap). */
static inline uintptr_t owner_to_restore(rcgc__header *h, uint32_t gc) {
    if (!(gc & RCGC_GC_OWNED))
        return RCGC__UNOWNED;
    rcgc_page *pg = rcgc__page_of(h);
    if (pg->kind == RCGC_PAGE_LARGE) {
        uintptr_t owner = (uintptr_t)pg->local_free;
        pg->local_free = NULL;
        return owner;
    }
    return (uintptr_t)atomic_load_explicit(&pg->heap, memory_order_relaxed);
}

static inline intptr_t true_count(const rcgc__header *h) {
    intptr_t shared = rcgc__shared(h);
    return (intptr_t)__atomic_load_n(&h->local, __ATOMIC_RELAXED) + RCGC_SHARED_COUNT(shared) -
           (RCGC_SHARED_STATE(shared) == RCGC_SHARED_QUEUED);
}

/* The object whose traverse misbehaved, for fatal messages: its address
 * and type (its header's owner field holds gc_refs now, so no more). */
static void describe_referrer(const rcgc__header *h, char *buf, size_t n) {
    if (!h) {
        snprintf(buf, n, "(one of several objects: the decrements were gathered)");
        return;
    }
    snprintf(buf, n, "object %p of type '%s'", rcgc__obj((rcgc__header *)h),
             h->type && h->type->name ? h->type->name : "?");
}

RCGC_COLD static void bad_referent(const worker *w, const void *o) {
    char referrer[160];
    describe_referrer(w->traversing, referrer, sizeof referrer);
    RCGC_FATAL("a traverse function visited %p, which is not an object rcgc allocated "
               "(traverse must visit only rcgc object pointers)\n  traversed: %s\n  during "
               "cycle collection #%llu, started by rcgc thread #%llu",
               o, referrer, (unsigned long long)__atomic_load_n(&G.collections, __ATOMIC_RELAXED),
               (unsigned long long)(C.self ? C.self->serial : 0));
}

/* A referent that is not an rcgc object would have its "header" written. */
static inline void check_referent(const worker *w, const void *o) {
    if (rcgc_unlikely(((uintptr_t)o & (RCGC_ALIGN - 1)) || !rcgc__arena_mapped(o)))
        bad_referent(w, o);
}

RCGC_COLD static void too_many_visits(const worker *w, const void *o) {
    char desc[640], referrer[160];
    rcgc__object_describe(o, desc, sizeof desc);
    describe_referrer(w->atomic ? NULL : w->traversing, referrer, sizeof referrer);
    RCGC_FATAL("traverse functions visit more references to an object than its reference count "
               "holds (a traverse visits a pointer its object does not own a reference to, or an "
               "incref is missing)\n  %s\n  its last visitor: %s\n  during cycle collection "
               "#%llu, started by rcgc thread #%llu",
               desc, referrer, (unsigned long long)__atomic_load_n(&G.collections, __ATOMIC_RELAXED),
               (unsigned long long)(C.self ? C.self->serial : 0));
}

/* ------------------------------------------------------------------------
 * Phase A: gc_refs := true count
 * ------------------------------------------------------------------------ */

static inline void init_block(worker *w, rcgc__header *h, size_t idx) {
    uint32_t gc = rcgc__gcbits(h);
    intptr_t count = true_count(h);
    if (idx == SIZE_MAX) {
        /* Pass 1: the heap. */
        if ((gc & (RCGC_GC_TRACKED | RCGC_GC_FROZEN)) != RCGC_GC_TRACKED)
            return;
        if (C.young && !(gc & RCGC_GC_YOUNG))
            return;
        if (__atomic_load_n(&h->local, __ATOMIC_RELAXED) == RCGC__IMMORTAL)
            return;
        if (count <= 0)
            return;     /* dying: on a trash list or a deferred death; not ours */
    } else {
        count -= 1;     /* pass 2: not counting the collector's own reference */
        RCGC_ASSERT(count >= 0);
    }
    uintptr_t owner = load_owner(h);
    uint32_t bits = RCGC_GC_CANDIDATE;
    if (owner != RCGC__UNOWNED) {
        bits |= RCGC_GC_OWNED;
        rcgc_page *pg = rcgc__page_of(h);
        if (pg->kind == RCGC_PAGE_LARGE)
            pg->local_free = (rcgc_block *)owner;
        else
            RCGC_ASSERT_EXPENSIVE(owner == (uintptr_t)atomic_load(&pg->heap));
    }
    store_gc(h, (gc & ~RCGC_GC_TRANSIENT) | bits);
    store_owner(h, (uintptr_t)count);
    w->candidates++;
}
static void phase_init(worker *w) { source_each(w, init_block); }

/* ------------------------------------------------------------------------
 * Phase B: subtract references between candidates
 * ------------------------------------------------------------------------ */

static void dec_flush(const worker *w, rcgc__header *h, uintptr_t n) {
    uintptr_t old = __atomic_fetch_sub(&h->owner, n, __ATOMIC_RELAXED);
    if (rcgc_unlikely(old < n))
        too_many_visits(w, rcgc__obj(h));
}

/* With several workers the subtraction is atomic; decrements are gathered
 * per object in a small direct-mapped table first, because a popular
 * object (a root that 500,000 leaves point back to) took one contended
 * atomic per reference: phase B of 10^5 objects took 7.5 ms on 2 workers
 * instead of 0.6 on one. gc_refs are read only after the phase, so late
 * subtraction is exact. */
static int visit_decref(void *o, void *arg) {
    worker *w = arg;
    check_referent(w, o);
    rcgc__header *h = rcgc__hdr(o);
    if (!(rcgc__gcbits(h) & RCGC_GC_CANDIDATE))
        return 0;
    if (w->atomic) {
        size_t i = ((uintptr_t)h >> 5) & (DEC_SLOTS - 1);
        if (w->dec[i].h == h) {
            w->dec[i].n++;
            return 0;
        }
        if (w->dec[i].h)
            dec_flush(w, w->dec[i].h, w->dec[i].n);
        w->dec[i].h = h;
        w->dec[i].n = 1;
        return 0;
    }
    uintptr_t old = load_owner(h);
    store_owner(h, old - 1);
    if (rcgc_unlikely(old == 0))
        too_many_visits(w, o);
    return 0;
}

static inline void subtract_block(worker *w, rcgc__header *h, size_t idx) {
    (void)idx;
    if (rcgc__gcbits(h) & RCGC_GC_CANDIDATE) {
        w->traversing = h;
        h->type->traverse(rcgc__obj(h), visit_decref, w);
    }
}
static void phase_subtract(worker *w) {
    source_each(w, subtract_block);
    for (size_t i = 0; i < DEC_SLOTS; i++) {
        if (w->dec[i].h)
            dec_flush(w, w->dec[i].h, w->dec[i].n);
        w->dec[i].h = NULL;
    }
}

/* ------------------------------------------------------------------------
 * Phase C: mark what is reachable from candidates with gc_refs > 0
 * ------------------------------------------------------------------------ */

static inline void push(worker *w, rcgc__header *h) {
    store_owner(h, (uintptr_t)w->stack);
    w->stack = h;
    w->stack_n++;
}

/* Mark h if it is an unmarked candidate; true if this call marked it. */
static inline bool try_mark(worker *w, rcgc__header *h) {
    uint32_t gc = rcgc__gcbits(h);
    if ((gc & (RCGC_GC_CANDIDATE | RCGC_GC_REACHABLE)) != RCGC_GC_CANDIDATE)
        return false;
    if (w->atomic) {
        uint32_t old = __atomic_fetch_or(&h->gc, RCGC_GC_REACHABLE, __ATOMIC_RELAXED);
        if (old & RCGC_GC_REACHABLE)
            return false;
    } else {
        store_gc(h, gc | RCGC_GC_REACHABLE);
    }
    w->reached++;
    return true;
}

static int visit_mark(void *o, void *arg) {
    worker *w = arg;
    rcgc__header *h = rcgc__hdr(o);
    if (try_mark(w, h))
        push(w, h);
    return 0;
}

/* Give the older half of the private stack to idle workers: the entries
 * pushed first are nearest the roots, with the most work behind them. */
static void share_half(worker *w) {
    size_t keep = w->stack_n - w->stack_n / 2;
    rcgc__header *cut = w->stack;
    for (size_t i = 1; i < keep; i++)
        cut = (rcgc__header *)load_owner(cut);
    rcgc__header *first = (rcgc__header *)load_owner(cut), *last = first;
    store_owner(cut, 0);
    while (load_owner(last))
        last = (rcgc__header *)load_owner(last);
    w->stack_n = keep;
    rcgc__header *head = atomic_load_explicit(&w->shared, memory_order_relaxed);
    do {
        store_owner(last, (uintptr_t)head);
    } while (!atomic_compare_exchange_weak_explicit(&w->shared, &head, first, memory_order_release,
                                                    memory_order_relaxed));
}

/* Pop and traverse until the private stack is empty. A popped object gets
 * its owner back and stops being a candidate (REACHABLE stays set until
 * the next collection's phase A, so nobody marks it twice). */
static void drain(worker *w, rcgc_visit_fn visit) {
    while (w->stack) {
        rcgc__header *h = w->stack;
        w->stack = (rcgc__header *)load_owner(h);
        w->stack_n--;
        uint32_t gc = rcgc__gcbits(h);
        store_owner(h, owner_to_restore(h, gc));
        /* A plain store: REACHABLE is set, so no other worker changes this
         * word now (try_mark's fetch-or finds the bit and fails). */
        store_gc(h, gc & ~(uint32_t)(RCGC_GC_CANDIDATE | RCGC_GC_OWNED | RCGC_GC_YOUNG |
                                     RCGC_GC_PURPLE));
        w->purple += (gc & RCGC_GC_PURPLE) != 0;
        h->type->traverse(rcgc__obj(h), visit, w);
        if (w->atomic && w->stack_n >= SHARE_MIN &&
            atomic_load_explicit(&pool.idle, memory_order_relaxed) > 0)
            share_half(w);
    }
}

/* C1: every candidate with gc_refs > 0 is a root: mark and push it, but
 * traverse nothing yet. No worker marks through the pages another worker
 * scans (the lines would bounce between them), and the roots start out
 * spread over the workers' stacks. With one worker, roots are traversed at
 * once, which keeps the stack shallow. */
static inline void root_block(worker *w, rcgc__header *h, size_t idx) {
    (void)idx;
    uint32_t gc = rcgc__gcbits(h);
    if ((gc & (RCGC_GC_CANDIDATE | RCGC_GC_REACHABLE)) != RCGC_GC_CANDIDATE)
        return;
    if (load_owner(h) == 0)
        return;     /* gc_refs 0: reachable only from candidates, if at all */
    if (w->atomic) {
        /* Only C1 runs now, and each object is in one worker's page. */
        store_gc(h, gc | RCGC_GC_REACHABLE);
        w->reached++;
        push(w, h);
    } else if (try_mark(w, h)) {
        push(w, h);
        drain(w, visit_mark);
    }
}
static void phase_roots(worker *w) { source_each(w, root_block); }

static bool steal(worker *w) {
    unsigned n = pool.active;
    for (unsigned i = 0; i < n; i++) {
        worker *v = &workers[(w->id + i) % n];
        if (!atomic_load_explicit(&v->shared, memory_order_relaxed))
            continue;
        rcgc__header *list = atomic_exchange_explicit(&v->shared, NULL, memory_order_acquire);
        if (!list)
            continue;
        size_t k = 0;
        for (rcgc__header *p = list; p; p = (rcgc__header *)load_owner(p))
            k++;
        w->stack = list;
        w->stack_n = k;
        return true;
    }
    return false;
}

static bool any_shared(void) {
    for (unsigned i = 0; i < pool.active; i++)
        if (atomic_load_explicit(&workers[i].shared, memory_order_relaxed))
            return true;
    return false;
}

/* C2: drain the stacks, stealing when out of work. */
static void mark_until_done(worker *w, rcgc_visit_fn visit) {
    for (;;) {
        drain(w, visit);
        if (steal(w))
            continue;
        /* Out of work: idle until some appears or everyone is idle. */
        atomic_fetch_add_explicit(&pool.idle, 1, memory_order_acq_rel);
        for (unsigned spins = 0;; spins++) {
            if (any_shared()) {
                atomic_fetch_sub_explicit(&pool.idle, 1, memory_order_acq_rel);
                if (steal(w))
                    break;
                atomic_fetch_add_explicit(&pool.idle, 1, memory_order_acq_rel);
                continue;
            }
            if (atomic_load_explicit(&pool.idle, memory_order_acquire) == pool.active && !any_shared())
                return;
            /* Spin briefly, then nap: a spinning worker slows the busy one
             * (on this 2-vCPU VM, marking a tree took 2-3x as long). */
            if (spins < 64) {
                __builtin_ia32_pause();
            } else {
                struct timespec nap = {0, 20000};
                nanosleep(&nap, NULL);
            }
        }
    }
}

static void phase_mark(worker *w) { mark_until_done(w, visit_mark); }

/* ------------------------------------------------------------------------
 * Phase C on the heap: marking in address order
 *
 * Depth-first marking visits objects in the order of the graph, which on a
 * big heap is a cache and TLB miss per object (10^6 nodes of a tree with
 * cross links: 300 ms, where CPython took 64). Instead the workers scan the
 * pages in address order (the page list is sorted, the cursor hands pages
 * out in order) and traverse each reachable candidate they meet; a
 * referent they mark is left for the scan if it lies ahead of it (later in
 * the worker's current page, or in a page not yet handed out), and pushed
 * on the mark stack only if the scan has passed it. Marking a referent and
 * deciding who traverses it are two steps: REACHABLE (fetch-or: counted
 * once), then CLAIMED, which the scanner that meets the object and the
 * marker that would push it both try to take; the winner traverses. A
 * marker that found the referent ahead reads the cursor after its
 * fetch-or and the scanner reads the object after taking its page, both
 * sequentially consistent, so the scanner sees the mark.
 * ------------------------------------------------------------------------ */

static inline bool ahead_of_scan(const worker *w, const rcgc__header *r) {
    if ((uintptr_t)r > w->scan_pos && (uintptr_t)r < w->scan_end)
        return true;
    size_t c = atomic_load_explicit(&C.src.next, memory_order_seq_cst);
    return c < C.src.npages && (uintptr_t)r >= (uintptr_t)C.src.pages[c]->start;
}

/* Set bits and CLAIMED; the old word says whether another worker had
 * claimed h already. */
static inline uint32_t claim(worker *w, rcgc__header *h, uint32_t bits) {
    if (!w->atomic) {
        uint32_t gc = rcgc__gcbits(h);
        store_gc(h, gc | bits | RCGC_GC_CLAIMED);
        return gc;
    }
    return __atomic_fetch_or(&h->gc, bits | RCGC_GC_CLAIMED, __ATOMIC_SEQ_CST);
}

static int visit_scan_mark(void *o, void *arg) {
    worker *w = arg;
    rcgc__header *h = rcgc__hdr(o);
    uint32_t gc = rcgc__gcbits(h);
    if ((gc & (RCGC_GC_CANDIDATE | RCGC_GC_REACHABLE)) != RCGC_GC_CANDIDATE)
        return 0;
    if (w->atomic) {
        uint32_t old = __atomic_fetch_or(&h->gc, RCGC_GC_REACHABLE, __ATOMIC_SEQ_CST);
        if (old & RCGC_GC_REACHABLE)
            return 0;
    } else {
        store_gc(h, gc | RCGC_GC_REACHABLE);
    }
    w->reached++;
    if (ahead_of_scan(w, h))
        return 0;   /* the scan will meet it */
    if (!(claim(w, h, 0) & RCGC_GC_CLAIMED))
        push(w, h);
    return 0;
}

/* Traverse h now (claimed by this worker, not on any stack). */
static inline void traverse_claimed(worker *w, rcgc__header *h) {
    uint32_t gc = rcgc__gcbits(h);
    store_owner(h, owner_to_restore(h, gc));
    /* REACHABLE and CLAIMED are set: nobody else writes this word now. */
    store_gc(h, gc & ~(uint32_t)(RCGC_GC_CANDIDATE | RCGC_GC_OWNED | RCGC_GC_YOUNG |
                                 RCGC_GC_PURPLE));
    w->purple += (gc & RCGC_GC_PURPLE) != 0;
    h->type->traverse(rcgc__obj(h), visit_scan_mark, w);
    drain(w, visit_scan_mark);
}

static inline void scan_block(worker *w, rcgc__header *h, size_t idx) {
    (void)idx;
    w->scan_pos = (uintptr_t)h;
    uint32_t gc = rcgc__gcbits(h);
    if (!(gc & RCGC_GC_CANDIDATE) || (gc & RCGC_GC_CLAIMED))
        return;
    uint32_t old;
    if (!(gc & RCGC_GC_REACHABLE)) {
        if (load_owner(h) == 0)
            return;     /* gc_refs 0 and not marked (yet: a later mark pushes it) */
        /* A root. Whoever sets REACHABLE counts it (a referrer's fetch-or
         * may come first). */
        old = claim(w, h, RCGC_GC_REACHABLE);
        if (!(old & RCGC_GC_REACHABLE))
            w->reached++;
    } else {
        old = claim(w, h, 0);
    }
    if (!(old & RCGC_GC_CLAIMED))
        traverse_claimed(w, h);
}

static void phase_scan(worker *w) {
    source *src = &C.src;
    for (;;) {
        size_t c = atomic_fetch_add_explicit(&src->next, 1, memory_order_seq_cst);
        if (c >= src->npages)
            break;
        rcgc_page *pg = src->pages[c];
        w->scan_end = (uintptr_t)pg->start +
                      (pg->kind == RCGC_PAGE_LARGE ? 1 : (size_t)pg->reserved * pg->block_size);
        page_each(w, pg, scan_block);
    }
    w->scan_pos = w->scan_end = 0;
    if (w->atomic)
        mark_until_done(w, visit_scan_mark);
}

/* ------------------------------------------------------------------------
 * Phase D: the unmarked candidates
 * ------------------------------------------------------------------------ */

static inline void finish_block(worker *w, rcgc__header *h, size_t idx) {
    uint32_t gc = rcgc__gcbits(h);
    if (!(gc & RCGC_GC_CANDIDATE)) {
        /* Marked: restored as it was popped. In pass 2, resurrected. */
        if (idx != SIZE_MAX && (gc & RCGC_GC_REACHABLE))
            C.src.objs[idx] = (rcgc__header *)((uintptr_t)h | 1);
        return;
    }
    uintptr_t owner = owner_to_restore(h, gc);
    store_owner(h, owner);
    if (C.restore_only || idx != SIZE_MAX) {
        store_gc(h, gc & ~RCGC_GC_TRANSIENT);
        return;     /* undo; or pass 2, where the collector already holds it */
    }
    /* Garbage is no possible root any more: the collector frees it. */
    store_gc(h, gc & ~(RCGC_GC_TRANSIENT | RCGC_GC_PURPLE));
    w->purple += (gc & RCGC_GC_PURPLE) != 0;
    if (w->gfill == w->gend) {
        /* Slots in runs, not one shared increment per object. */
        size_t i = atomic_fetch_add_explicit(&C.garbage_fill, GARBAGE_RUN, memory_order_relaxed);
        RCGC_ASSERT(i + GARBAGE_RUN <= C.gcap);
        w->gfill = i;
        w->gend = i + GARBAGE_RUN;
    }
    C.garbage[w->gfill++] = h;
    /* The collector's reference. Its own objects keep their owner (the
     * clears and frees happen on this thread); others' are merged, so
     * their counting is atomic and their deaths happen here. */
    if (owner == (uintptr_t)C.self)
        __atomic_store_n(&h->local, __atomic_load_n(&h->local, __ATOMIC_RELAXED) + 1,
                         __ATOMIC_RELAXED);
    else
        rcgc__merge(h, 1);
}
static void phase_finish(worker *w) { source_each(w, finish_block); }

/* ------------------------------------------------------------------------
 * One pass: A-D over the source, world stopped
 * ------------------------------------------------------------------------ */

typedef struct {
    size_t candidates, reached;
} pass_counts;

/* One worker per RCGC_GC_PAGES_PER_WORKER pages (default 128): waking a
 * helper and waiting for it costs about a millisecond on a 2-vCPU VM, so
 * helpers pay only on a big heap (with 8, 10^5 live objects, 73 pages,
 * took 6.5 ms on 2 workers against 1.7 on one). */
static pass_counts run_pass(size_t units) {
    unsigned active = pool.started + 1;
    size_t per = (size_t)rcgc__option(RCGC_OPT_GC_PAGES_PER_WORKER);
    unsigned by_size = (unsigned)(units / (per ? per : 1)) + 1;
    if (by_size < active)
        active = by_size;
    pool.active = active;
    for (unsigned i = 0; i < active; i++) {
        worker *w = &workers[i];
        w->id = i;
        w->atomic = active > 1;
        w->stack = NULL;
        w->stack_n = 0;
        atomic_store_explicit(&w->shared, NULL, memory_order_relaxed);
        w->candidates = w->reached = w->purple = 0;
        w->gfill = w->gend = 0;
        w->scan_pos = w->scan_end = 0;
    }
    atomic_store_explicit(&pool.idle, 0, memory_order_relaxed);
    uint64_t t0 = rcgc__os_now_ns();
    run_phase(phase_init);
    uint64_t t1 = rcgc__os_now_ns();
    run_phase(phase_subtract);
    uint64_t t2 = rcgc__os_now_ns();
    if (C.src.objs) {
        /* The garbage array (pass 2): depth-first from the roots. */
        run_phase(phase_roots);
        if (workers[0].atomic)
            run_phase(phase_mark);
    } else {
        run_phase(phase_scan);
    }
    uint64_t t3 = rcgc__os_now_ns();
    if (trace)
        fprintf(stderr, "gc: %u workers: init %.2f ms, subtract %.2f ms, mark %.2f ms\n", active,
                (t1 - t0) / 1e6, (t2 - t1) / 1e6, (t3 - t2) / 1e6);
    pass_counts pc = {0, 0};
    for (unsigned i = 0; i < active; i++) {
        pc.candidates += workers[i].candidates;
        pc.reached += workers[i].reached;
    }
    return pc;
}

/* PURPLE bits the workers cleared in this pass, phase D's included. */
static size_t purple_cleared(void) {
    size_t n = 0;
    for (unsigned i = 0; i < pool.active; i++)
        n += workers[i].purple;
    return n;
}

/* ------------------------------------------------------------------------
 * Merge queues, epochs, counts (world stopped)
 * ------------------------------------------------------------------------ */

/* Merge every queued object of every thread (the owners are suspended).
 * Objects that die are linked through `owner` on *dead and freed once the
 * world runs (their death runs user code). */
static void drain_merge_queues(rcgc_thread *self, rcgc__header **dead) {
    for (rcgc_thread *t = rcgc__registry_first(); t; t = t->next) {
        for (;;) {
            pthread_mutex_lock(&t->mq_lock);
            void *o = rcgc__objstack_pop(&t->mq);
            pthread_mutex_unlock(&t->mq_lock);
            if (!o)
                break;
            rcgc__header *h = rcgc__hdr(o);
            if (rcgc__merge(h, -1) == 0) {
                store_owner(h, (uintptr_t)*dead);
                *dead = h;
            }
        }
    }
    rcgc__heap_flush_remote(&self->heap);
}

/* The collecting thread runs user code (finalizers, clears, deaths) with
 * the world running: it polls like any mutator, so that a pause requested
 * meanwhile does not wait for it. */
static inline void poll_every(size_t i) {
    if ((i & 127) == 127)
        rcgc_safepoint();
}

static void free_dead(rcgc__header *dead) {
    for (size_t i = 0; dead; i++) {
        rcgc__header *next = (rcgc__header *)load_owner(dead);
        rcgc__object_dealloc(rcgc__obj(dead));
        dead = next;
        poll_every(i);
    }
}

/* A new epoch: the pages each heap allocates from now are young again. */
static void next_epoch(void) {
    uint32_t e = __atomic_load_n(&rcgc__gc_epoch, __ATOMIC_RELAXED) + 1;
    if (e == 0)
        e = 1;
    __atomic_store_n(&rcgc__gc_epoch, e, __ATOMIC_RELAXED);
    for (rcgc_thread *t = rcgc__registry_first(); t; t = t->next) {
        for (unsigned c = 1; c < RCGC_NCLASSES; c++) {
            rcgc_page *pg = t->heap.queue[RCGC_TAG_GC][c].first;
            if (pg)
                pg->gc_epoch = e;
        }
        t->gc_delta = 0;
    }
    atomic_store_explicit(&G.young_count, 0, memory_order_relaxed);
}

/* Add d to a count that never goes below zero (its decrements can belong
 * to increments made before the count was last reset); the new value. */
static long add_clamped(_Atomic long *count, long d) {
    long cur = atomic_load_explicit(count, memory_order_relaxed), nv;
    do {
        nv = cur + d;
        if (nv < 0)
            nv = 0;
    } while (!atomic_compare_exchange_weak_explicit(count, &cur, nv, memory_order_relaxed,
                                                    memory_order_relaxed));
    return nv;
}

/* Book-keeping for the trigger, world stopped, after the first pause's
 * marking: every thread's buffered possible roots and old deaths become
 * global, the PURPLE bits this collection cleared (on what it visited)
 * leave the possible roots, and the survivors become the tracked heap. */
static void policy_after_pause(bool young, size_t survivors, size_t purple_cleared) {
    long purple = 0;
    size_t old_deaths = 0;
    for (rcgc_thread *t = rcgc__registry_first(); t; t = t->next) {
        purple += t->gc_purple;
        old_deaths += t->gc_old_deaths;
        t->gc_purple = 0;
        t->gc_old_deaths = 0;
    }
    long left = atomic_fetch_add_explicit(&G.purple, purple - (long)purple_cleared,
                                          memory_order_relaxed) +
                purple - (long)purple_cleared;
    RCGC_ASSERT_EXPENSIVE(left >= 0);
    if (left < 0)
        left = 0;
    if (young) {
        __atomic_store_n(&G.promoted, G.promoted + survivors, __ATOMIC_RELAXED);
        atomic_fetch_add_explicit(&G.old_deaths, old_deaths, memory_order_relaxed);
        atomic_store_explicit(&G.tracked_live,
                              atomic_load_explicit(&G.tracked_live, memory_order_relaxed) + survivors,
                              memory_order_relaxed);
        /* What is still PURPLE is old: only a full collection visits it. */
        atomic_store_explicit(&G.purple_old, (size_t)left, memory_order_relaxed);
        atomic_fetch_add_explicit(&G.young_since_full, 1, memory_order_relaxed);
    } else {
        __atomic_store_n(&G.old_at_full, survivors, __ATOMIC_RELAXED);
        __atomic_store_n(&G.promoted, 0, __ATOMIC_RELAXED);
        atomic_store_explicit(&G.old_deaths, 0, memory_order_relaxed);
        atomic_store_explicit(&G.tracked_live,
                              survivors + atomic_load_explicit(&G.frozen, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&G.purple_old, 0, memory_order_relaxed);
        atomic_store_explicit(&G.young_since_full, 0, memory_order_relaxed);
    }
}

/* ------------------------------------------------------------------------
 * The collection
 * ------------------------------------------------------------------------ */

static void run_callbacks(rcgc_gc_phase phase, const rcgc_gc_info *info) {
    struct { rcgc_gc_callback fn; void *arg; } copy[MAX_CALLBACKS];
    pthread_mutex_lock(&cb_lock);
    unsigned n = ncallbacks;
    memcpy(copy, callbacks, n * sizeof copy[0]);
    pthread_mutex_unlock(&cb_lock);
    for (unsigned i = 0; i < n; i++)
        copy[i].fn(phase, info, copy[i].arg);
}

/* Take gc_lock; waiting happens in a blocking region (a pause in progress
 * must not wait for us). false if !wait and it is taken. */
static bool gc_lock_take(rcgc_thread *self, bool wait) {
    if (pthread_mutex_trylock(&gc_lock) == 0)
        return true;
    if (!wait)
        return false;
    rcgc__safepoint_go_detached(self);
    pthread_mutex_lock(&gc_lock);
    rcgc__safepoint_go_attached(self);
    return true;
}

static void record(const rcgc_gc_info *info) {
    pthread_mutex_lock(&stats_lock);
    totals.collections++;
    if (info->aborted)
        totals.aborted++;
    else if (info->young)
        totals.young_collections++;
    else
        totals.full_collections++;
    totals.candidates += info->candidates;
    totals.unreachable += info->unreachable;
    totals.collected += info->collected;
    totals.uncollectable += info->uncollectable;
    totals.finalized += info->finalized;
    totals.resurrected += info->resurrected;
    totals.pause_total_ns += info->pause_ns;
    if (info->pause_ns > totals.pause_max_ns)
        totals.pause_max_ns = info->pause_ns;
    totals.last = *info;
    pthread_mutex_unlock(&stats_lock);
}

/* Grow the saved-garbage array to hold `more` (gc_lock). */
static int saved_reserve(size_t more) {
    if (G.nsaved + more <= G.saved_cap)
        return 0;
    size_t cap = G.saved_cap ? G.saved_cap : 256;
    while (cap < G.nsaved + more)
        cap *= 2;
    size_t bytes = cap * sizeof(rcgc__header *);
    rcgc__header **a = rcgc__os_alloc(bytes);
    if (!a)
        return ENOMEM;
    if (G.saved) {
        memcpy(a, G.saved, G.nsaved * sizeof a[0]);
        rcgc__os_free(G.saved, G.saved_bytes);
    }
    G.saved = a;
    G.saved_cap = cap;
    G.saved_bytes = bytes;
    return 0;
}

/* The first pause: find the garbage, take references, clear weakrefs.
 * Returns 0 or ENOMEM (nothing changed). */
static int first_pause(rcgc_gc_info *info, rcgc_weakref **pending, rcgc__header **dead,
                       size_t *need_finalize) {
    rcgc_thread *self = C.self;
    drain_merge_queues(self, dead);
    int err = source_pages(&C.src, C.young, GC_PAGES);
    if (err)
        return err;
    pass_counts pc = run_pass(C.src.npages);
    info->workers = pool.active;
    info->candidates = pc.candidates;
    size_t ngarbage = pc.candidates - pc.reached;
    C.ngarbage = ngarbage;
    C.garbage = NULL;
    C.restore_only = 0;
    atomic_store_explicit(&C.garbage_fill, 0, memory_order_relaxed);
    if (ngarbage) {
        /* Workers fill runs of slots: room for each one's last, partial
         * run (the mapping comes zeroed; the holes are squeezed out). */
        C.gcap = ngarbage + (size_t)pool.active * GARBAGE_RUN;
        C.garbage_bytes = C.gcap * sizeof(rcgc__header *);
        C.garbage = rcgc__os_alloc(C.garbage_bytes);
        bool saveall = atomic_load_explicit(&G.debug, memory_order_relaxed) & RCGC_GC_DEBUG_SAVEALL;
        if (C.garbage && saveall && saved_reserve(ngarbage)) {
            rcgc__os_free(C.garbage, C.garbage_bytes);
            C.garbage = NULL;
        }
        if (!C.garbage) {
            C.restore_only = 1;
            err = ENOMEM;
        }
        run_phase(phase_finish);
    }
    source_release(&C.src);
    if (err)
        return err;
    size_t filled = 0;
    for (size_t i = 0; i < C.gcap; i++)
        if (C.garbage[i])
            C.garbage[filled++] = C.garbage[i];
    RCGC_ASSERT(filled == ngarbage);
    info->unreachable = ngarbage;
    for (size_t i = 0; i < ngarbage; i++) {
        rcgc__header *h = C.garbage[i];
        uint32_t gc = rcgc__gcbits(h);
        if (gc & RCGC_GC_WEAKREFED)
            rcgc__weakref_clear_for_gc(h, pending);
        if (h->type->finalize && !(gc & RCGC_GC_FINALIZED))
            (*need_finalize)++;
    }
    policy_after_pause(C.young, pc.reached, purple_cleared());
    next_epoch();
    return 0;
}

/* The second pause: which garbage did finalizers make reachable again?
 * Marks them in C.garbage (low bit). Returns how many. Weak references
 * made to the rest while finalizers ran are cleared too (else a get after
 * this pause would hand out an object about to be cleared). */
static size_t resurrection_pause(rcgc_weakref **pending) {
    memset(&C.src, 0, sizeof C.src);
    C.src.objs = C.garbage;
    C.src.nobjs = C.ngarbage;
    run_pass(C.ngarbage / OBJ_CHUNK * (size_t)rcgc__option(RCGC_OPT_GC_PAGES_PER_WORKER));
    run_phase(phase_finish);
    atomic_fetch_sub_explicit(&G.purple, (long)purple_cleared(), memory_order_relaxed);
    size_t n = 0;
    for (size_t i = 0; i < C.ngarbage; i++) {
        rcgc__header *h = C.garbage[i];
        if ((uintptr_t)h & 1)
            n++;
        else if (rcgc__gcbits(h) & RCGC_GC_WEAKREFED)
            rcgc__weakref_clear_for_gc(h, pending);
    }
    memset(&C.src, 0, sizeof C.src);
    return n;
}

/* The tracked heap now, estimated: survivors of the collections since the
 * last full one, less the old objects counting has freed since. */
static size_t live_estimate(void) {
    size_t live = atomic_load_explicit(&G.tracked_live, memory_order_relaxed);
    size_t dead = atomic_load_explicit(&G.old_deaths, memory_order_relaxed);
    return dead < live ? live - dead : 0;
}

static inline size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* The automatic trigger (the theory comment, "Triggering"): how many new
 * tracked objects, net, start a collection. With possible roots, the
 * threshold or a quarter of the tracked heap, whichever is more; without,
 * only the backstop, 8x the threshold or the tracked heap. Either doubles
 * for each automatic collection in a row that found nothing, up to 1024x. */
#define EMPTY_SHIFT_MAX 10
static size_t young_limit(size_t thr) {
    size_t live = live_estimate();
    unsigned streak = atomic_load_explicit(&G.empty_streak, memory_order_relaxed);
    unsigned shift = streak < EMPTY_SHIFT_MAX ? streak : EMPTY_SHIFT_MAX;
    if (atomic_load_explicit(&G.purple, memory_order_relaxed) > 0)
        return max_size(thr, live / 4) << shift;
    return max_size(thr, live) << (3 + shift);
}

/* Still worth collecting once the lock is ours (an automatic trigger that
 * waited for another collection usually finds its work done). */
static bool over_threshold(void) {
    size_t thr = atomic_load_explicit(&G.threshold, memory_order_relaxed);
    long n = atomic_load_explicit(&G.young_count, memory_order_relaxed);
    return thr && atomic_load_explicit(&G.enabled, memory_order_relaxed) && n > 0 &&
           (size_t)n > young_limit(thr);
}

/* auto: an automatic collection. It waits for one in progress (so threads
 * that allocate faster than one collector frees are held back rather than
 * piling up garbage for the next, ever larger, collection), then collects
 * only if the count is still over the threshold. */
static size_t collect(int young, bool automatic) {
    rcgc_thread *self = rcgc__thread_require("rcgc_collect");
    if (atomic_load_explicit(&G.collector, memory_order_relaxed) == self)
        return 0;   /* from a finalizer, callback or clear of this collection */
    if (atomic_load_explicit(&self->state, memory_order_relaxed) != RCGC_ATTACHED)
        RCGC_FATAL("rcgc_collect inside a blocking region (touch no object there)");
    gc_lock_take(self, true);
    if (automatic && !over_threshold()) {
        pthread_mutex_unlock(&gc_lock);
        return 0;
    }
    atomic_store_explicit(&G.collector, self, memory_order_relaxed);
    pool_start();

    rcgc_gc_info info;
    memset(&info, 0, sizeof info);
    info.collection = G.collections + 1;
    __atomic_store_n(&G.collections, info.collection, __ATOMIC_RELAXED);
    info.young = young;
    uint64_t t0 = rcgc__os_now_ns();
    run_callbacks(RCGC_GC_START, &info);

    memset(&C, 0, sizeof C);
    C.self = self;
    C.young = young;
    rcgc_weakref *pending = NULL;
    rcgc__header *dead = NULL;
    size_t need_finalize = 0;

    uint64_t p0 = rcgc__os_now_ns();
    rcgc__stop_the_world();
    int err = first_pause(&info, &pending, &dead, &need_finalize);
    rcgc__start_the_world();
    info.pause_ns = rcgc__os_now_ns() - p0;

    self->gc_collecting = 1;
    free_dead(dead);
    if (err) {
        info.aborted = err;
        fprintf(stderr, "rcgc: cycle collection #%llu abandoned: out of memory (nothing was "
                        "changed)\n", (unsigned long long)info.collection);
    } else if (C.ngarbage) {
        /* Finalizers, with the world running (PEP 442: once per object). */
        for (size_t i = 0; i < C.ngarbage && need_finalize; i++) {
            rcgc__header *h = C.garbage[i];
            if (!h->type->finalize)
                continue;
            uint32_t old = __atomic_fetch_or(&h->gc, RCGC_GC_FINALIZED, __ATOMIC_RELAXED);
            if (old & RCGC_GC_FINALIZED)
                continue;
            h->type->finalize(rcgc__obj(h));
            info.finalized++;
            poll_every(info.finalized);
        }
        if (info.finalized) {
            p0 = rcgc__os_now_ns();
            rcgc__stop_the_world();
            info.resurrected = resurrection_pause(&pending);
            rcgc__start_the_world();
            info.pause_ns += rcgc__os_now_ns() - p0;
        }
        /* Clear what is still garbage, or keep it (save-all). */
        bool saveall = atomic_load_explicit(&G.debug, memory_order_relaxed) & RCGC_GC_DEBUG_SAVEALL;
        for (size_t i = 0; i < C.ngarbage; i++) {
            rcgc__header *h = C.garbage[i];
            if ((uintptr_t)h & 1)
                continue;
            if (saveall && G.nsaved < G.saved_cap) {
                G.saved[G.nsaved++] = h;
                C.garbage[i] = NULL;
                info.saved++;
            } else if (h->type->clear) {
                h->type->clear(rcgc__obj(h));
                info.collected++;
            } else {
                info.uncollectable++;
            }
            poll_every(i);
        }
        /* Drop the collector's references: counting frees the cleared. */
        for (size_t i = 0; i < C.ngarbage; i++) {
            rcgc__header *h = (rcgc__header *)((uintptr_t)C.garbage[i] & ~(uintptr_t)1);
            if (h)
                rcgc_decref(rcgc__obj(h));
            poll_every(i);
        }
        /* Our own garbage keeps its owner (us); a reference another thread
         * dropped while finalizers ran waits in our merge queue. Merge now,
         * so that garbage dies before the collection returns (gc_stress). */
        rcgc__merge_queue_drain(self);
        rcgc__os_free(C.garbage, C.garbage_bytes);
        C.garbage = NULL;
        /* Freeing the garbage adopted the abandoned pages it lay in: this
         * thread owns them now, and other threads' frees into them wait
         * on their thread-free stacks until the owner collects. A thread
         * that collects but rarely allocates never reaches the periodic
         * collection of its alloc slow path, so its pages grew without
         * bound (gc_stress, 150 s: 2961 pages held, 64 blocks in use). */
        rcgc__heap_collect(&self->heap);
    }
    self->gc_collecting = 0;
    rcgc__gc_count_flush(self);     /* the deaths of what it freed leave the possible roots */
    rcgc__weakref_run_callbacks(pending);

    info.duration_ns = rcgc__os_now_ns() - t0;
    if (automatic && !info.aborted)
        atomic_store_explicit(&G.empty_streak,
                              info.unreachable ? 0 : atomic_load_explicit(&G.empty_streak,
                                                                           memory_order_relaxed) + 1,
                              memory_order_relaxed);
    record(&info);
    run_callbacks(RCGC_GC_STOP, &info);
    atomic_store_explicit(&G.collector, NULL, memory_order_relaxed);
    pthread_mutex_unlock(&gc_lock);
    if (info.aborted)
        errno = info.aborted;
    return info.unreachable;
}

size_t rcgc_collect(void) { return collect(0, false); }
size_t rcgc_collect_young(void) { return collect(1, false); }

#define FULL_AFTER_YOUNG 10    /* CPython's gen-1 collections per gen-2 one */
void rcgc__gc_collect_auto(rcgc_thread *t) {
    if (!atomic_load_explicit(&G.enabled, memory_order_relaxed) || t->dealloc_depth > 0)
        return;
    unsigned pct = atomic_load_explicit(&G.full_pct, memory_order_relaxed);
    /* Unlocked reads of the book-keeping: a wrong guess only picks the
     * other kind of collection once. */
    size_t promoted = __atomic_load_n(&G.promoted, __ATOMIC_RELAXED);
    size_t old = __atomic_load_n(&G.old_at_full, __ATOMIC_RELAXED);
    /* Promoted objects counting has freed since (in-flight trees that
     * survived a young collection, then died) do not count: deaths of old
     * objects are taken from the promoted first. */
    size_t dead = atomic_load_explicit(&G.old_deaths, memory_order_relaxed);
    promoted = dead < promoted ? promoted - dead : 0;
    /* Garbage among old objects needs an old possible root: full when they
     * are many, or after FULL_AFTER_YOUNG young collections that left one. */
    size_t purple_old = atomic_load_explicit(&G.purple_old, memory_order_relaxed);
    bool old_roots = purple_old * 100 > (size_t)pct * old ||
                     (purple_old > 0 && atomic_load_explicit(&G.young_since_full, memory_order_relaxed) >=
                                            FULL_AFTER_YOUNG);
    int young = __atomic_load_n(&G.collections, __ATOMIC_RELAXED) > 0 &&
                promoted * 100 <= (size_t)pct * old && !old_roots;
    collect(young, true);
}

static void purple_flush(rcgc_thread *t) {
    long d = t->gc_purple;
    t->gc_purple = 0;
    atomic_fetch_add_explicit(&G.purple, d, memory_order_relaxed);
}

void rcgc__gc_count_flush(rcgc_thread *t) {
    long d = t->gc_delta;
    t->gc_delta = 0;
    if (t->gc_purple)
        purple_flush(t);
    if (t->gc_old_deaths) {
        atomic_fetch_add_explicit(&G.old_deaths, t->gc_old_deaths, memory_order_relaxed);
        t->gc_old_deaths = 0;
    }
    /* Deaths of old objects: never below zero (gh-142048). */
    long nv = add_clamped(&G.young_count, d);
    if (d <= 0)
        return;
    size_t thr = atomic_load_explicit(&G.threshold, memory_order_relaxed);
    if (!thr || !atomic_load_explicit(&G.enabled, memory_order_relaxed))
        return;
    if ((size_t)nv > young_limit(thr))
        __atomic_fetch_or(t->poll, RCGC_POLL_GC, __ATOMIC_RELAXED);
}

/* A decrement left tracked object o alive (its owner's, or a reference
 * the caller still holds): o is a possible root (Bacon and Rajan), until
 * it dies or a collection visits it. The first possible root after none
 * is published at once (the trigger waits for one); the rest in batches. */
RCGC_NOINLINE void rcgc__possible_root(void *o) {
    rcgc__header *h = rcgc__hdr(o);
    uint32_t old = __atomic_fetch_or(&h->gc, RCGC_GC_PURPLE, __ATOMIC_RELAXED);
    if (old & RCGC_GC_PURPLE)
        return;
    rcgc_thread *t = rcgc__tls_thread;
    if (++t->gc_purple >= RCGC_GC_COUNT_BATCH ||
        atomic_load_explicit(&G.purple, memory_order_relaxed) <= 0)
        purple_flush(t);
}

/* ------------------------------------------------------------------------
 * Settings
 * ------------------------------------------------------------------------ */

void rcgc_gc_enable(void) { atomic_store(&G.enabled, 1); }
void rcgc_gc_disable(void) { atomic_store(&G.enabled, 0); }
int  rcgc_gc_is_enabled(void) { return atomic_load(&G.enabled); }

void rcgc_gc_set_threshold(size_t threshold, unsigned full_pct) {
    atomic_store(&G.threshold, threshold);
    if (full_pct)
        atomic_store(&G.full_pct, full_pct);
}

void rcgc_gc_get_threshold(size_t *threshold, unsigned *full_pct) {
    if (threshold)
        *threshold = atomic_load(&G.threshold);
    if (full_pct)
        *full_pct = atomic_load(&G.full_pct);
}

size_t rcgc_gc_get_count(void) {
    /* The global count plus the caller's buffer, changing neither (a
     * flush here would change when collections run: CPython gh-157377). */
    long n = atomic_load_explicit(&G.young_count, memory_order_relaxed);
    rcgc_thread *t = rcgc__tls_thread;
    if (t)
        n += t->gc_delta;
    return n > 0 ? (size_t)n : 0;
}

void rcgc_gc_set_debug(unsigned flags) { atomic_store(&G.debug, flags); }
unsigned rcgc_gc_get_debug(void) { return atomic_load(&G.debug); }

int rcgc_is_tracked(const void *o) {
    return (rcgc__gcbits(rcgc__hdr(o)) & RCGC_GC_TRACKED) != 0;
}

void rcgc_gc_get_stats(rcgc_gc_stats *out) {
    pthread_mutex_lock(&stats_lock);
    *out = totals;
    pthread_mutex_unlock(&stats_lock);
    out->tracked_live = live_estimate() + (size_t)atomic_load(&G.young_count);
    out->frozen = atomic_load(&G.frozen);
    long purple = atomic_load_explicit(&G.purple, memory_order_relaxed);
    out->possible_roots = purple > 0 ? (size_t)purple : 0;
    out->empty_streak = atomic_load_explicit(&G.empty_streak, memory_order_relaxed);
}

void rcgc__gc_stats(size_t *tracked, uint64_t *collections) {
    *tracked = live_estimate() + (size_t)atomic_load(&G.young_count);
    pthread_mutex_lock(&stats_lock);
    *collections = totals.collections;
    pthread_mutex_unlock(&stats_lock);
}

int rcgc_gc_callback_add(rcgc_gc_callback fn, void *arg) {
    int err = 0;
    pthread_mutex_lock(&cb_lock);
    for (unsigned i = 0; i < ncallbacks && !err; i++)
        if (callbacks[i].fn == fn && callbacks[i].arg == arg)
            err = EEXIST;
    if (!err && ncallbacks == MAX_CALLBACKS)
        err = ENOMEM;
    if (!err) {
        callbacks[ncallbacks].fn = fn;
        callbacks[ncallbacks].arg = arg;
        ncallbacks++;
    }
    pthread_mutex_unlock(&cb_lock);
    return err;
}

int rcgc_gc_callback_remove(rcgc_gc_callback fn, void *arg) {
    int err = ENOENT;
    pthread_mutex_lock(&cb_lock);
    for (unsigned i = 0; i < ncallbacks; i++) {
        if (callbacks[i].fn == fn && callbacks[i].arg == arg) {
            memmove(&callbacks[i], &callbacks[i + 1], (ncallbacks - i - 1) * sizeof callbacks[0]);
            ncallbacks--;
            err = 0;
            break;
        }
    }
    pthread_mutex_unlock(&cb_lock);
    return err;
}

/* ------------------------------------------------------------------------
 * Snapshots: introspection with the world stopped, callbacks without
 * ------------------------------------------------------------------------ */

typedef struct {
    void **items;
    size_t n, cap, bytes;
    int err;
} objvec;

static void objvec_push(objvec *v, void *o) {
    if (v->err)
        return;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 1024;
        size_t bytes = cap * sizeof(void *);
        void **a = rcgc__os_alloc(bytes);
        if (!a) {
            v->err = ENOMEM;
            return;
        }
        if (v->items) {
            memcpy(a, v->items, v->n * sizeof(void *));
            rcgc__os_free(v->items, v->bytes);
        }
        v->items = a;
        v->cap = cap;
        v->bytes = bytes;
    }
    /* A reference for the snapshot (the world is stopped: nothing can die). */
    rcgc_incref(o);
    v->items[v->n++] = o;
}

/* Call fn on each item with the world running, then drop the snapshot. */
static int objvec_deliver(objvec *v, rcgc_visit_fn fn, void *arg) {
    int rc = 0;
    for (size_t i = 0; i < v->n; i++) {
        if (!rc && !v->err)
            rc = fn(v->items[i], arg);
        rcgc_decref(v->items[i]);
    }
    if (v->items)
        rcgc__os_free(v->items, v->bytes);
    if (v->err) {
        errno = v->err;
        return -1;
    }
    return rc;
}

/* Live: immortal, or counted (a zero count is an object dying on some
 * thread's trash list). */
static inline bool live_object(const rcgc__header *h) {
    return __atomic_load_n(&h->local, __ATOMIC_RELAXED) == RCGC__IMMORTAL || true_count(h) > 0;
}

/* Count zero, but waiting in its owner's merge queue: the queue's
 * reference keeps it, and a try-incref (rcgc_weakref_get from another
 * thread) may still revive it. Not dying, as far as freezing goes. */
static inline bool queued_tracked(const rcgc__header *h) {
    return (rcgc__gcbits(h) & RCGC_GC_TRACKED) && RCGC_SHARED_STATE(rcgc__shared(h)) == RCGC_SHARED_QUEUED;
}

typedef void (*walk_fn)(rcgc__header *h, void *arg);

/* Every live object on pages of `tags` (tracked ones only on GC pages),
 * world stopped, on this thread; with queued_too, also tracked objects
 * whose count is zero in a merge queue (freeze and unfreeze: an object
 * revived from there kept FROZEN through rcgc_gc_unfreeze and was never
 * collected again; rcgc_fuzz found it). */
static int walk_live(unsigned tags, walk_fn fn, void *arg, bool queued_too) {
    source src;
    int err = source_pages(&src, 0, tags);
    if (err)
        return err;
    for (size_t i = 0; i < src.npages; i++) {
        rcgc_page *pg = src.pages[i];
        size_t n = pg->kind == RCGC_PAGE_LARGE ? 1 : pg->reserved;
        size_t bs = pg->kind == RCGC_PAGE_LARGE ? 0 : pg->block_size;
        uint32_t need = pg->tag == RCGC_TAG_GC ? RCGC_GC_TRACKED : 0;
        if (pg->kind == RCGC_PAGE_LARGE && !__atomic_load_n(&pg->used, __ATOMIC_RELAXED))
            continue;
        for (size_t j = 0; j < n; j++) {
            rcgc__header *h = (rcgc__header *)(pg->start + j * bs);
            if (block_live(h) && (rcgc__gcbits(h) & need) == need &&
                (live_object(h) || (queued_too && queued_tracked(h))))
                fn(h, arg);
        }
    }
    source_release(&src);
    return 0;
}

static int walk_tracked(walk_fn fn, void *arg, bool queued_too) {
    return walk_live(GC_PAGES, fn, arg, queued_too);
}

/* Enter a snapshot: gc_lock (unless this thread's collection is running
 * its finalizers or callbacks), then stop the world. */
static bool snapshot_begin(rcgc_thread *self) {
    bool nested = atomic_load_explicit(&G.collector, memory_order_relaxed) == self;
    if (!nested) {
        gc_lock_take(self, true);
        atomic_store_explicit(&G.collector, self, memory_order_relaxed);
    }
    rcgc__stop_the_world();
    return nested;
}

static void snapshot_end(bool nested) {
    rcgc__start_the_world();
    if (!nested) {
        atomic_store_explicit(&G.collector, NULL, memory_order_relaxed);
        pthread_mutex_unlock(&gc_lock);
    }
}

/* The same for the profiling tools (objgraph.c), whose walks also cover
 * untracked objects. */
bool rcgc__gc_snapshot_begin(rcgc_thread *self) { return snapshot_begin(self); }
void rcgc__gc_snapshot_end(bool nested) { snapshot_end(nested); }
int rcgc__gc_walk(unsigned tags, void (*fn)(rcgc__header *h, void *arg), void *arg) {
    RCGC_ASSERT(!(tags & (1u << RCGC_TAG_RAW)));    /* raw blocks have no header */
    return walk_live(tags, fn, arg, false);
}

static void add_object(rcgc__header *h, void *arg) { objvec_push(arg, rcgc__obj(h)); }

int rcgc_gc_get_objects(rcgc_visit_fn fn, void *arg) {
    rcgc_thread *self = rcgc__thread_require("rcgc_gc_get_objects");
    objvec v = {0};
    bool nested = snapshot_begin(self);
    int err = walk_tracked(add_object, &v, false);
    snapshot_end(nested);
    if (err && !v.err)
        v.err = err;
    return objvec_deliver(&v, fn, arg);
}

typedef struct {
    const void *target;
    bool found;
} find_ctx;

static int visit_find(void *o, void *arg) {
    find_ctx *f = arg;
    if (o == f->target) {
        f->found = true;
        return 1;
    }
    return 0;
}

typedef struct {
    const void *target;
    objvec *v;
} referrers_ctx;

static void add_if_referrer(rcgc__header *h, void *arg) {
    referrers_ctx *r = arg;
    find_ctx f = {r->target, false};
    h->type->traverse(rcgc__obj(h), visit_find, &f);
    if (f.found)
        objvec_push(r->v, rcgc__obj(h));
}

int rcgc_gc_get_referrers(const void *o, rcgc_visit_fn fn, void *arg) {
    rcgc_thread *self = rcgc__thread_require("rcgc_gc_get_referrers");
    rcgc__object_check(o, "rcgc_gc_get_referrers of a pointer rcgc did not allocate");
    objvec v = {0};
    referrers_ctx r = {o, &v};
    bool nested = snapshot_begin(self);
    int err = walk_tracked(add_if_referrer, &r, false);
    snapshot_end(nested);
    if (err && !v.err)
        v.err = err;
    return objvec_deliver(&v, fn, arg);
}

static int visit_collect(void *o, void *arg) {
    objvec_push(arg, o);
    return 0;
}

int rcgc_gc_get_referents(void *o, rcgc_visit_fn fn, void *arg) {
    rcgc_thread *self = rcgc__thread_require("rcgc_gc_get_referents");
    rcgc__object_check(o, "rcgc_gc_get_referents of a pointer rcgc did not allocate");
    objvec v = {0};
    const rcgc_type *t = rcgc__hdr(o)->type;
    if (!t->traverse)
        return 0;
    bool nested = snapshot_begin(self);
    t->traverse(o, visit_collect, &v);
    snapshot_end(nested);
    return objvec_deliver(&v, fn, arg);
}

/* ------------------------------------------------------------------------
 * Freezing
 * ------------------------------------------------------------------------ */

static void freeze_one(rcgc__header *h, void *arg) {
    size_t *n = arg;
    uint32_t old = __atomic_fetch_or(&h->gc, RCGC_GC_FROZEN, __ATOMIC_RELAXED);
    if (!(old & RCGC_GC_FROZEN))
        (*n)++;
}

static void unfreeze_one(rcgc__header *h, void *arg) {
    (void)arg;
    __atomic_fetch_and(&h->gc, ~(uint32_t)RCGC_GC_FROZEN, __ATOMIC_RELAXED);
}

void rcgc_gc_freeze(void) {
    rcgc_thread *self = rcgc__thread_require("rcgc_gc_freeze");
    size_t n = 0;
    bool nested = snapshot_begin(self);
    int err = walk_tracked(freeze_one, &n, true);
    atomic_fetch_add(&G.frozen, n);
    snapshot_end(nested);
    if (err)
        errno = err;
}

void rcgc_gc_unfreeze(void) {
    rcgc_thread *self = rcgc__thread_require("rcgc_gc_unfreeze");
    bool nested = snapshot_begin(self);
    int err = walk_tracked(unfreeze_one, NULL, true);
    if (!err)
        atomic_store(&G.frozen, 0);
    snapshot_end(nested);
    if (err)
        errno = err;
}

size_t rcgc_gc_get_freeze_count(void) { return atomic_load(&G.frozen); }

void rcgc__gc_frozen_died(void) {
    size_t n = atomic_load_explicit(&G.frozen, memory_order_relaxed);
    /* Never below zero: an unfreeze may have reset the count meanwhile. */
    while (n && !atomic_compare_exchange_weak_explicit(&G.frozen, &n, n - 1, memory_order_relaxed,
                                                       memory_order_relaxed)) {
    }
}

/* ------------------------------------------------------------------------
 * Saved garbage (RCGC_GC_DEBUG_SAVEALL)
 * ------------------------------------------------------------------------ */

int rcgc_gc_get_garbage(rcgc_visit_fn fn, void *arg) {
    rcgc_thread *self = rcgc__thread_require("rcgc_gc_get_garbage");
    bool nested = atomic_load_explicit(&G.collector, memory_order_relaxed) == self;
    if (!nested)
        gc_lock_take(self, true);
    objvec v = {0};
    for (size_t i = 0; i < G.nsaved; i++)
        objvec_push(&v, rcgc__obj(G.saved[i]));
    if (!nested)
        pthread_mutex_unlock(&gc_lock);
    return objvec_deliver(&v, fn, arg);
}

size_t rcgc_gc_clear_garbage(void) {
    rcgc_thread *self = rcgc__thread_require("rcgc_gc_clear_garbage");
    bool nested = atomic_load_explicit(&G.collector, memory_order_relaxed) == self;
    if (!nested)
        gc_lock_take(self, true);
    rcgc__header **saved = G.saved;
    size_t n = G.nsaved, bytes = G.saved_bytes;
    G.saved = NULL;
    G.nsaved = G.saved_cap = G.saved_bytes = 0;
    if (!nested)
        pthread_mutex_unlock(&gc_lock);
    for (size_t i = 0; i < n; i++)
        rcgc_decref(rcgc__obj(saved[i]));
    if (saved)
        rcgc__os_free(saved, bytes);
    return n;
}

/* ------------------------------------------------------------------------
 * Life cycle
 * ------------------------------------------------------------------------ */

/* A forked child has none of the parent's helper threads. */
static void pool_after_fork_child(void) {
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.go, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.started = 0;
    pool.quit = 0;
}
static void register_atfork(void) { pthread_atfork(NULL, NULL, pool_after_fork_child); }

void rcgc__gc_init(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_atfork);
    const char *tr = getenv("RCGC_GC_TRACE");
    trace = tr && *tr && *tr != '0';
    atomic_store(&G.enabled, 1);
    atomic_store(&G.threshold, (size_t)rcgc__option(RCGC_OPT_GC_THRESHOLD));
    long pct = rcgc__option(RCGC_OPT_GC_FULL_PCT);
    atomic_store(&G.full_pct, pct > 0 ? (unsigned)pct : 25u);
    atomic_store(&G.debug, 0);
    atomic_store(&G.young_count, 0);
    atomic_store(&G.tracked_live, 0);
    atomic_store(&G.purple, 0);
    atomic_store(&G.old_deaths, 0);
    atomic_store(&G.purple_old, 0);
    atomic_store(&G.empty_streak, 0);
    atomic_store(&G.young_since_full, 0);
    atomic_store(&G.frozen, 0);
    atomic_store(&G.collector, NULL);
    __atomic_store_n(&G.old_at_full, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&G.promoted, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&G.collections, 0, __ATOMIC_RELAXED);
    pthread_mutex_lock(&stats_lock);
    memset(&totals, 0, sizeof totals);
    pthread_mutex_unlock(&stats_lock);
}

void rcgc__gc_shutdown(void) {
    rcgc__objgraph_shutdown();      /* its root marks are weak references */
    if (rcgc__tls_thread) {
        rcgc_gc_clear_garbage();
        rcgc_collect();
    }
    pool_stop();
    rcgc__weakref_shutdown();
}
