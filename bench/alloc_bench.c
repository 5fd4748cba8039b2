/*
 * alloc_bench: small-object malloc/free throughput of rcgc beside glibc,
 * jemalloc and mimalloc, and what rcgc's objects cost beside the same
 * malloc/free. One allocator per process; bench/run.sh runs the four in
 * turn and prints them side by side.
 *
 *   alloc_bench --alloc=rcgc|glibc|jemalloc|mimalloc
 *               --workload=local|remote|prodcons|object [--type=untracked|tracked]
 *               [--threads=N] [--seconds=S | --iters=N] [--seed=N]
 *               [--batch=K] [--min-size=B] [--max-size=B] [--progress] [--check]
 *
 * Output: one line on stdout,
 *   RESULT alloc=rcgc workload=local threads=2 ops_per_sec=123456789 ...
 * where an op is one malloc+free pair (object: one new+decref pair),
 * counted when the block is freed. Further key=value fields follow (pairs,
 * seconds, batch, sizes, seed, version; object: type; rcgc: gc_collections);
 * consumers should look fields up by key.
 *
 * Workloads. Every block size is drawn uniformly from [min-size, max-size]
 * (default 16..128) through a per-thread table filled from --seed before
 * the clock starts; one byte of each block is written after malloc.
 *   local     each thread allocates a batch of K blocks, then frees them in
 *             a shuffled order (one of 8 precomputed permutations).
 *   remote    threads form a ring: each allocates batches and hands them to
 *             the next thread through a single-producer single-consumer
 *             queue of batches; the receiver frees them (FIFO order). Every
 *             free is a cross-thread free, except with --threads=1, where
 *             the ring is one thread handing batches to itself.
 *   prodcons  the xmalloc-test pattern: threads/2 producers allocate
 *             batches, the other threads free them, through one
 *             mutex-protected list of full batches and one of empty ones.
 *             --threads=1: a single thread alternates, filling a batch and
 *             freeing it in FIFO order.
 *   object    local's loop, with rcgc's objects as a user makes them:
 *             --alloc=rcgc allocates each block as rcgc_new_var(&type, size)
 *             (size = the payload, the same size sequence the peers get)
 *             and drops it with rcgc_decref; --type picks the type:
 *               untracked  no traverse: reference counting only
 *               tracked    traverse and clear over two reference fields
 *                          that stay NULL (the cycle collector's
 *                          bookkeeping, and clear on every death);
 *                          needs --min-size >= 16, and no --check
 *             The peers do exactly local: malloc(size)/free, so their
 *             figure is the raw pair an object pair is judged against.
 * Batches (K pointers) travel whole, so the queues cost a few operations per
 * K pairs and are not the bottleneck; batch containers come from a fixed
 * pool allocated before the clock starts, so the measured allocator serves
 * only the blocks.
 *
 * How each allocator is reached, and why:
 *   rcgc      rcgc_malloc/rcgc_free, linked statically (//lib:rcgc). main
 *             calls rcgc_init(NULL); each worker attaches before the clock
 *             starts and detaches after its end stamp.
 *   glibc     the process's malloc/free. Refused unless malloc resolves to
 *             libc.so (nothing preloaded).
 *   jemalloc  the same malloc/free calls, with Debian's libjemalloc.so.2 in
 *             LD_PRELOAD (run.sh sets it). Refused unless jemalloc is really
 *             active: mallctl exists and malloc resolves into the same
 *             object as mallctl.
 *   mimalloc  mi_malloc/mi_free of Debian's libmimalloc.so.2, called through
 *             pointers from dlopen(RTLD_LOCAL) + dlsym. Debian builds
 *             mimalloc with MI_OVERRIDE: the library exports malloc and free
 *             themselves (at the same addresses as mi_malloc and mi_free).
 *             Linking it (-lmimalloc, //third_party:mimalloc) would replace
 *             malloc in every run of this binary, so the "glibc" and
 *             "jemalloc" figures would be mimalloc's. RTLD_LOCAL leaves the
 *             process's malloc alone (checked at startup).
 * Call cost: rcgc's calls are direct; glibc's and jemalloc's go through the
 * PLT and mimalloc's through a function pointer, one indirect jump each. The
 * workload loops are instantiated per allocator (always_inline bodies over a
 * constant alloc_ops), so no other indirection sits on the measured path.
 *
 * --check fills every block and verifies it before the free (to catch an
 * allocator handing out overlapping or corrupted blocks); it slows every
 * allocator down, so its figures are not benchmark figures.
 */
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <inttypes.h>
#include <limits.h>
#include <mimalloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/lib/bench_util.h"
#include "rcgc.h"

/* ------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------ */
static const char *opt_alloc;
static const char *opt_workload = "local";
static const char *opt_type;                    /* object workload, rcgc: untracked (default) or tracked */
static const char *opt_mimalloc_so = "libmimalloc.so.2";
static unsigned long opt_threads = 1;
static unsigned long opt_iters;                 /* 0: time mode */
static unsigned long opt_seed = 1;              /* fixed: every allocator gets the same work */
static unsigned long opt_batch = 1000;
static unsigned long opt_min_size = 16;
static unsigned long opt_max_size = 128;
static double opt_seconds = BENCH_SANITIZER ? 0.3 : 1.0;
static int opt_progress, opt_check, opt_verbose;
static int opt_seconds_given, opt_iters_given;

static const bench_opt options[] = {
    { "alloc", BENCH_OPT_STRING, &opt_alloc, 0, 0, "rcgc glibc jemalloc mimalloc",
      "allocator to measure (required)", NULL },
    { "workload", BENCH_OPT_STRING, &opt_workload, 0, 0, "local remote prodcons object",
      "what the threads do", NULL },
    { "type", BENCH_OPT_STRING, &opt_type, 0, 0, "untracked tracked",
      "object workload, --alloc=rcgc: the objects' type (default untracked)", NULL },
    { "threads", BENCH_OPT_ULONG, &opt_threads, 1, 1024, NULL, "worker threads", NULL },
    { "seconds", BENCH_OPT_DOUBLE, &opt_seconds, 0, 0, NULL,
      "measure for this long", &opt_seconds_given },
    { "iters", BENCH_OPT_ULONG, &opt_iters, 1, ULONG_MAX / 2, NULL,
      "instead of --seconds: pairs per allocating thread (rounded up to batches)",
      &opt_iters_given },
    { "seed", BENCH_OPT_ULONG, &opt_seed, 0, ULONG_MAX, NULL, "seed for sizes and free orders", NULL },
    { "batch", BENCH_OPT_ULONG, &opt_batch, 1, 1000000, NULL, "blocks per batch (K)", NULL },
    { "min-size", BENCH_OPT_ULONG, &opt_min_size, 1, 1 << 20, NULL, "smallest block in bytes", NULL },
    { "max-size", BENCH_OPT_ULONG, &opt_max_size, 1, 1 << 20, NULL, "largest block in bytes", NULL },
    { "progress", BENCH_OPT_FLAG, &opt_progress, 0, 0, NULL,
      "print a progress line to stderr every second", NULL },
    { "check", BENCH_OPT_FLAG, &opt_check, 0, 0, NULL,
      "fill and verify every block (correctness run, not a benchmark)", NULL },
    { "verbose", BENCH_OPT_FLAG, &opt_verbose, 0, 0, NULL,
      "print allocator details (and rcgc's stats) to stderr", NULL },
    { "mimalloc-so", BENCH_OPT_STRING, &opt_mimalloc_so, 0, 0, NULL,
      "library dlopen()ed for --alloc=mimalloc", NULL },
};

/* ------------------------------------------------------------------------
 * Allocators
 * ------------------------------------------------------------------------ */
typedef struct alloc_ops {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void (*thread_enter)(void);   /* on each worker, before the clock starts */
    void (*thread_leave)(void);   /* on each worker, after its end stamp */
    /* rcgc's runtime may pause the world: an attached thread must poll in
     * long loops and wait (barrier, condition variable, join) only inside
     * a blocking region, or a pause would wait for it. No-ops elsewhere. */
    void (*poll)(void);           /* once per batch, and in wait loops */
    void (*blocking_begin)(void);
    void (*blocking_end)(void);
    /* 1: the byte written after each malloc is 0, not the index (the
     * tracked object type's first bytes are references: they stay NULL). */
    bool touch_zero;
} alloc_ops;

static void no_hook(void) {}

/* glibc and jemalloc: the process's malloc, whichever it is (checked in
 * main against --alloc). */
static const alloc_ops ALLOC_SYSTEM = { malloc, free, no_hook, no_hook, no_hook, no_hook, no_hook,
                                        false };

/* mimalloc: resolved by dlsym in main, before any worker starts (the
 * thread creation orders these writes before the workers' reads). */
static __typeof__(&mi_malloc) mi_malloc_ptr;
static __typeof__(&mi_free) mi_free_ptr;
static void *mi_malloc_dl(size_t n) { return mi_malloc_ptr(n); }
static void mi_free_dl(void *p) { mi_free_ptr(p); }
static const alloc_ops ALLOC_MIMALLOC = { mi_malloc_dl, mi_free_dl, no_hook, no_hook,
                                          no_hook, no_hook, no_hook, false };

static void rcgc_enter(void) {
    int err = rcgc_thread_attach();
    if (err)
        bench_die("rcgc_thread_attach: %s", strerror(err));
}
static void rcgc_leave(void) { rcgc_thread_detach(); }
static void rcgc_poll(void) { rcgc_safepoint(); }
static const alloc_ops ALLOC_RCGC = { rcgc_malloc, rcgc_free, rcgc_enter, rcgc_leave,
                                      rcgc_poll, rcgc_blocking_begin, rcgc_blocking_end, false };

/* The object workload's two types, as a user declares them: variable
 * size (rcgc_new_var gives the payload), one without references and one
 * whose first 16 bytes are two references (NULL here: no object refers to
 * another, so every death is one clear and one free, and no collection
 * finds garbage). */
static const rcgc_type obj_untracked_type = { .name = "alloc_bench.untracked", .size = 0 };

typedef struct obj_refs {
    void *a, *b;
} obj_refs;

static int obj_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    obj_refs *o = self;
    RCGC_VISIT(o->a);
    RCGC_VISIT(o->b);
    return 0;
}

static void obj_clear(void *self) {
    obj_refs *o = self;
    void *a = o->a, *b = o->b;
    o->a = o->b = NULL;
    rcgc_xdecref(a);
    rcgc_xdecref(b);
}

static const rcgc_type obj_tracked_type = {
    .name = "alloc_bench.tracked",
    .size = 0,
    .traverse = obj_traverse,
    .clear = obj_clear,
};

static void *obj_new_untracked(size_t n) { return rcgc_new_var(&obj_untracked_type, n); }
static void *obj_new_tracked(size_t n) { return rcgc_new_var(&obj_tracked_type, n); }
static void obj_decref(void *o) { rcgc_decref(o); }   /* the inline fast path, inlined below */
static const alloc_ops ALLOC_RCGC_OBJ = { obj_new_untracked, obj_decref, rcgc_enter, rcgc_leave,
                                          rcgc_poll, rcgc_blocking_begin, rcgc_blocking_end,
                                          false };
static const alloc_ops ALLOC_RCGC_OBJ_TRACKED = { obj_new_tracked, obj_decref, rcgc_enter,
                                                  rcgc_leave, rcgc_poll, rcgc_blocking_begin,
                                                  rcgc_blocking_end, true };

/* ------------------------------------------------------------------------
 * Batches and the per-thread tables
 * ------------------------------------------------------------------------ */
typedef struct batch {
    struct batch *next;     /* on a spare stack or a prodcons list (see owners there) */
    uint32_t n;             /* blocks in p[] */
    void *p[];
} batch;

static batch *batch_new(void) {
    return bench_xalloc(sizeof(batch) + opt_batch * sizeof(void *));
}

#define SIZE_TABLE 4096     /* power of two */
#define NPERM 8             /* free orders for the local workload */

typedef struct tables {
    uint32_t *sizes;        /* SIZE_TABLE sizes in [min, max] */
    uint32_t next_size;     /* index of the next one to use */
    uint32_t *perm[NPERM];  /* local only: shuffles of 0..K-1 */
} tables;

static void tables_init(tables *t, unsigned thread, bool perms) {
    bench_rng rng;
    bench_rng_seed(&rng, opt_seed, thread);
    t->sizes = bench_xalloc(SIZE_TABLE * sizeof(uint32_t));
    for (size_t i = 0; i < SIZE_TABLE; i++)
        t->sizes[i] = (uint32_t)(opt_min_size + bench_rng_below(&rng, opt_max_size - opt_min_size + 1));
    t->next_size = 0;
    for (int k = 0; k < NPERM; k++) {
        t->perm[k] = NULL;
        if (!perms)
            continue;
        uint32_t *p = bench_xalloc(opt_batch * sizeof(uint32_t));
        for (uint32_t i = 0; i < opt_batch; i++)
            p[i] = i;
        for (uint32_t i = (uint32_t)opt_batch - 1; i > 0; i--) {   /* Fisher-Yates */
            uint32_t j = (uint32_t)bench_rng_below(&rng, (uint64_t)i + 1);
            uint32_t x = p[i];
            p[i] = p[j];
            p[j] = x;
        }
        t->perm[k] = p;
    }
}

static void tables_free(tables *t) {
    free(t->sizes);
    for (int k = 0; k < NPERM; k++)
        free(t->perm[k]);
}

/* ------------------------------------------------------------------------
 * --check: block contents. The first 8 bytes hold size ^ address ^ magic,
 * the rest a byte derived from the address; both are verified before the
 * free. Blocks that overlap, or a block the allocator scribbled on, fail.
 * ------------------------------------------------------------------------ */
#define CHECK_MAGIC 0x5BD1E995A5A5A5A5ull
static _Atomic unsigned long check_failures;

static void check_fill(void *p, size_t size) {
    uint64_t hdr = (uint64_t)size ^ (uint64_t)(uintptr_t)p ^ CHECK_MAGIC;
    memcpy(p, &hdr, sizeof hdr);
    memset((char *)p + sizeof hdr, (int)(((uintptr_t)p >> 4) & 0xFF), size - sizeof hdr);
}

__attribute__((noinline)) static void check_fail(const void *p, const char *what) {
    unsigned long n = atomic_fetch_add_explicit(&check_failures, 1, memory_order_relaxed);
    if (n < 20)
        fprintf(stderr, "%s: CHECK FAILED: block %p: %s\n", bench_prog, p, what);
}

static void check_verify(const void *p) {
    uint64_t hdr;
    memcpy(&hdr, p, sizeof hdr);
    uint64_t size = hdr ^ (uint64_t)(uintptr_t)p ^ CHECK_MAGIC;
    if (size < opt_min_size || size > opt_max_size) {
        check_fail(p, "header overwritten (another block overlaps it, or the allocator wrote it)");
        return;
    }
    unsigned char tag = (unsigned char)(((uintptr_t)p >> 4) & 0xFF);
    const unsigned char *b = p;
    for (size_t i = sizeof hdr; i < size; i++)
        if (b[i] != tag) {
            check_fail(p, "contents overwritten (another block overlaps it)");
            return;
        }
}

/* ------------------------------------------------------------------------
 * The measured loops' pieces: always inlined into each allocator's
 * instance, so that a->malloc and a->free become direct calls.
 * ------------------------------------------------------------------------ */
#define HOT static inline __attribute__((always_inline))

__attribute__((noinline, noreturn)) static void out_of_memory(size_t size) {
    bench_die("%s: malloc(%zu) returned NULL", opt_alloc, size);
}

/* Allocate K blocks into b. */
HOT void fill_batch(const alloc_ops *a, tables *t, batch *b, bool check) {
    uint32_t k = (uint32_t)opt_batch, s = t->next_size;
    for (uint32_t i = 0; i < k; i++) {
        size_t size = t->sizes[s++ & (SIZE_TABLE - 1)];
        void *p = a->malloc(size);
        if (__builtin_expect(p == NULL, 0))
            out_of_memory(size);
        if (check)
            check_fill(p, size);
        else
            *(volatile unsigned char *)p = a->touch_zero ? 0 : (unsigned char)i;
        b->p[i] = p;
    }
    t->next_size = s;
    b->n = k;
}

/* Free every block of b, in the order given (NULL: FIFO). */
HOT void free_batch(const alloc_ops *a, batch *b, const uint32_t *order, bool check) {
    uint32_t n = b->n;
    for (uint32_t i = 0; i < n; i++) {
        void *p = b->p[order ? order[i] : i];
        if (check)
            check_verify(p);
        a->free(p);
    }
    b->n = 0;
}

/* ------------------------------------------------------------------------
 * State shared by the workers of one run
 * ------------------------------------------------------------------------ */

/* A bounded single-producer single-consumer queue of batches (the
 * classic Lamport ring with C11 atomics). remote: the producer is the
 * ring predecessor, the consumer the owner. It never fills: its capacity
 * is at least the number of batch containers in the whole ring. */
typedef struct spsc {
    _Alignas(BENCH_CACHE_LINE) _Atomic size_t head;   /* next slot to pop: written by the consumer */
    _Alignas(BENCH_CACHE_LINE) _Atomic size_t tail;   /* next slot to fill: written by the producer */
    _Alignas(BENCH_CACHE_LINE) size_t mask;           /* capacity - 1; set before the run */
    batch **slot;
} spsc;

/* Producer only. The acquire load of head pairs with the consumer's
 * release store: its read of a slot happens before we overwrite it. The
 * release store of tail publishes the slot (and the batch's contents). */
static inline void spsc_push(spsc *q, batch *b) {
    size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    size_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    if (t - h > q->mask)
        bench_die("internal error: ring queue full (it is sized never to fill)");
    q->slot[t & q->mask] = b;
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
}

/* Consumer only; NULL when empty. The acquire load of tail pairs with the
 * producer's release store: the slot and the batch are visible. */
static inline batch *spsc_pop(spsc *q) {
    size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    size_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
    if (h == t)
        return NULL;
    batch *b = q->slot[h & q->mask];
    atomic_store_explicit(&q->head, h + 1, memory_order_release);
    return b;
}

#define RING_BATCHES_PER_THREAD 4   /* containers each ring member starts with */
#define PC_BATCHES_PER_THREAD 4     /* prodcons containers, per thread */

typedef struct shared {
    unsigned nthreads;

    /* Every worker adds the pairs it allocated (after its end stamp);
     * main compares the sum with the pairs freed: a harness self-check. */
    _Alignas(BENCH_CACHE_LINE) _Atomic uint64_t allocated;

    /* remote: inbox[i] is thread i's queue (filled by thread i-1). */
    spsc *inbox;
    /* remote: ring members that have stopped producing (release, so
     * that a member that reads nthreads here with acquire sees every push). */
    _Alignas(BENCH_CACHE_LINE) _Atomic unsigned ring_stopped;

    /* prodcons: everything below is guarded by pc_lock. */
    _Alignas(BENCH_CACHE_LINE) pthread_mutex_t pc_lock;
    pthread_cond_t pc_has_full;     /* consumers wait here */
    pthread_cond_t pc_has_empty;    /* producers wait here */
    batch *full_head, *full_tail;   /* FIFO of filled batches */
    batch *empty;                   /* stack of empty containers */
    unsigned producers, producers_done;
    unsigned full_waiters, empty_waiters;
} shared;

/* ------------------------------------------------------------------------
 * Workloads
 * ------------------------------------------------------------------------ */

/* The start barrier, in a blocking region (the other workers may still be
 * attaching, and attaching may pause the world). */
HOT void start_measuring(bench_worker *w, const alloc_ops *a) {
    a->blocking_begin();
    bench_worker_start(w);
    a->blocking_end();
}
HOT void local_body(bench_worker *w, const alloc_ops *a) {
    shared *sh = w->run->arg;
    const bool check = opt_check;
    tables t;
    tables_init(&t, w->id, true);
    batch *b = batch_new();
    a->thread_enter();

    start_measuring(w, a);
    uint64_t done = 0, round = 0;
    while (!bench_worker_should_stop(w, done)) {
        fill_batch(a, &t, b, check);
        free_batch(a, b, t.perm[round++ % NPERM], check);
        done += opt_batch;
        bench_worker_add(w, opt_batch);
        a->poll();
    }
    bench_worker_end(w);

    a->thread_leave();
    atomic_fetch_add_explicit(&sh->allocated, done, memory_order_relaxed);
    free(b);
    tables_free(&t);
}

/* remote: free whatever has arrived; the containers become spares. */
HOT void ring_drain(bench_worker *w, const alloc_ops *a, spsc *in, batch **spare, bool check) {
    batch *b;
    while ((b = spsc_pop(in)) != NULL) {
        uint32_t n = b->n;
        free_batch(a, b, NULL, check);
        bench_worker_add(w, n);
        b->next = *spare;
        *spare = b;
        a->poll();
    }
}

HOT void remote_body(bench_worker *w, const alloc_ops *a) {
    shared *sh = w->run->arg;
    const bool check = opt_check;
    unsigned n = sh->nthreads;
    spsc *in = &sh->inbox[w->id], *out = &sh->inbox[(w->id + 1) % n];
    tables t;
    tables_init(&t, w->id, false);
    batch *spare = NULL;
    for (int i = 0; i < RING_BATCHES_PER_THREAD; i++) {
        batch *b = batch_new();
        b->next = spare;
        spare = b;
    }
    a->thread_enter();

    start_measuring(w, a);
    uint64_t produced = 0;
    while (!bench_worker_should_stop(w, produced)) {
        ring_drain(w, a, in, &spare, check);
        if (!spare) {
            /* Every container is downstream: wait for the predecessor. */
            a->poll();
            sched_yield();
            continue;
        }
        batch *b = spare;
        spare = b->next;
        fill_batch(a, &t, b, check);
        produced += b->n;
        spsc_push(out, b);
        a->poll();
    }
    /* Stop producing; free until every member has stopped and our inbox
     * is empty. Reading "all stopped" (acquire) before the last drain
     * makes that drain see every push. */
    atomic_fetch_add_explicit(&sh->ring_stopped, 1, memory_order_release);
    for (;;) {
        bool all = atomic_load_explicit(&sh->ring_stopped, memory_order_acquire) == n;
        ring_drain(w, a, in, &spare, check);
        if (all)
            break;
        a->poll();
        sched_yield();
    }
    bench_worker_end(w);

    a->thread_leave();
    atomic_fetch_add_explicit(&sh->allocated, produced, memory_order_relaxed);
    /* Nobody pushes any more, so the containers we hold are ours to free;
     * together the members hold all of them. */
    while (spare) {
        batch *b = spare;
        spare = b->next;
        free(b);
    }
    tables_free(&t);
}

HOT void prodcons_body(bench_worker *w, const alloc_ops *a) {
    shared *sh = w->run->arg;
    const bool check = opt_check;
    tables t;
    tables_init(&t, w->id, false);
    a->thread_enter();
    uint64_t produced = 0;

    if (sh->nthreads == 1) {
        /* One thread: producer then consumer, batch by batch. */
        batch *b = sh->empty;
        start_measuring(w, a);
        while (!bench_worker_should_stop(w, produced)) {
            fill_batch(a, &t, b, check);
            produced += b->n;
            free_batch(a, b, NULL, check);
            bench_worker_add(w, opt_batch);
            a->poll();
        }
        bench_worker_end(w);
    } else if (w->id < sh->producers) {
        start_measuring(w, a);
        while (!bench_worker_should_stop(w, produced)) {
            pthread_mutex_lock(&sh->pc_lock);
            while (!sh->empty) {
                sh->empty_waiters++;
                a->blocking_begin();
                pthread_cond_wait(&sh->pc_has_empty, &sh->pc_lock);
                a->blocking_end();
                sh->empty_waiters--;
            }
            batch *b = sh->empty;
            sh->empty = b->next;
            pthread_mutex_unlock(&sh->pc_lock);

            fill_batch(a, &t, b, check);
            produced += b->n;

            pthread_mutex_lock(&sh->pc_lock);
            b->next = NULL;
            if (sh->full_tail)
                sh->full_tail->next = b;
            else
                sh->full_head = b;
            sh->full_tail = b;
            if (sh->full_waiters)
                pthread_cond_signal(&sh->pc_has_full);
            pthread_mutex_unlock(&sh->pc_lock);
            a->poll();
        }
        pthread_mutex_lock(&sh->pc_lock);
        if (++sh->producers_done == sh->producers)
            pthread_cond_broadcast(&sh->pc_has_full);
        pthread_mutex_unlock(&sh->pc_lock);
        bench_worker_end(w);
    } else {
        start_measuring(w, a);
        for (;;) {
            pthread_mutex_lock(&sh->pc_lock);
            while (!sh->full_head && sh->producers_done < sh->producers) {
                sh->full_waiters++;
                a->blocking_begin();
                pthread_cond_wait(&sh->pc_has_full, &sh->pc_lock);
                a->blocking_end();
                sh->full_waiters--;
            }
            batch *b = sh->full_head;
            if (!b) {   /* every producer is done and the list is empty */
                pthread_mutex_unlock(&sh->pc_lock);
                break;
            }
            sh->full_head = b->next;
            if (!sh->full_head)
                sh->full_tail = NULL;
            pthread_mutex_unlock(&sh->pc_lock);

            uint32_t n = b->n;
            free_batch(a, b, NULL, check);
            bench_worker_add(w, n);

            pthread_mutex_lock(&sh->pc_lock);
            b->next = sh->empty;
            sh->empty = b;
            if (sh->empty_waiters)
                pthread_cond_signal(&sh->pc_has_empty);
            pthread_mutex_unlock(&sh->pc_lock);
            a->poll();
        }
        bench_worker_end(w);
    }

    a->thread_leave();
    atomic_fetch_add_explicit(&sh->allocated, produced, memory_order_relaxed);
    tables_free(&t);
}

/* One instance of each workload per allocator. glibc and jemalloc share
 * ALLOC_SYSTEM: the same code, a different malloc behind the PLT. */
#define INSTANCES(tag, OPS)                                                      \
    static void local_##tag(bench_worker *w) { local_body(w, &OPS); }           \
    static void remote_##tag(bench_worker *w) { remote_body(w, &OPS); }         \
    static void prodcons_##tag(bench_worker *w) { prodcons_body(w, &OPS); }
INSTANCES(system, ALLOC_SYSTEM)
INSTANCES(mimalloc, ALLOC_MIMALLOC)
INSTANCES(rcgc, ALLOC_RCGC)
/* object: local's loop over rcgc's objects (the peers run local itself). */
static void object_rcgc(bench_worker *w) { local_body(w, &ALLOC_RCGC_OBJ); }
static void object_rcgc_tracked(bench_worker *w) { local_body(w, &ALLOC_RCGC_OBJ_TRACKED); }

typedef void (*body_fn)(bench_worker *);
static const struct {
    const char *name;
    body_fn system, mimalloc, rcgc, rcgc_tracked;
} workloads[] = {
    { "local", local_system, local_mimalloc, local_rcgc, NULL },
    { "remote", remote_system, remote_mimalloc, remote_rcgc, NULL },
    { "prodcons", prodcons_system, prodcons_mimalloc, prodcons_rcgc, NULL },
    { "object", local_system, local_mimalloc, object_rcgc, object_rcgc_tracked },
};

/* ------------------------------------------------------------------------
 * Setting up each allocator, and making sure it is the one measured
 * ------------------------------------------------------------------------ */

/* The file of the object that defines symbol `name` as the process sees it
 * (RTLD_DEFAULT), or NULL. */
static const char *symbol_origin(const char *name) {
    void *sym = dlsym(RTLD_DEFAULT, name);
    Dl_info info;
    if (!sym || !dladdr(sym, &info) || !info.dli_fname)
        return NULL;
    return info.dli_fname;
}

static int is_libc(const char *path) {
    const char *slash = path ? strrchr(path, '/') : NULL;
    const char *base = slash ? slash + 1 : path;
    return base && strncmp(base, "libc.so", 7) == 0;
}

/* Checks and version strings. Sanitizer builds replace malloc with their
 * own, so the origin checks are off there (only --alloc=rcgc is meant to
 * run under them). */
static void setup_allocator(char *version, size_t vlen) {
    const char *malloc_from = symbol_origin("malloc");
    if (opt_verbose)
        fprintf(stderr, "%s: malloc resolves to %s\n", bench_prog,
                malloc_from ? malloc_from : "(unknown)");

    if (strcmp(opt_alloc, "glibc") == 0) {
        if (!BENCH_SANITIZER && !is_libc(malloc_from))
            bench_die("--alloc=glibc, but malloc comes from %s (unset LD_PRELOAD)",
                      malloc_from ? malloc_from : "an unknown object");
        snprintf(version, vlen, "%s", gnu_get_libc_version());
    } else if (strcmp(opt_alloc, "jemalloc") == 0) {
        int (*mallctl)(const char *, void *, size_t *, void *, size_t) =
            (int (*)(const char *, void *, size_t *, void *, size_t))dlsym(RTLD_DEFAULT, "mallctl");
        const char *mallctl_from = symbol_origin("mallctl");
        if (!mallctl || !mallctl_from)
            bench_die("--alloc=jemalloc, but jemalloc is not active (no mallctl): run with "
                      "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 (run.sh does)");
        if (!malloc_from || strcmp(malloc_from, mallctl_from) != 0)
            bench_die("--alloc=jemalloc: mallctl is in %s but malloc comes from %s", mallctl_from,
                      malloc_from ? malloc_from : "an unknown object");
        const char *v = NULL;
        size_t len = sizeof v;
        if (mallctl("version", &v, &len, NULL, 0) != 0 || !v)
            v = "unknown";
        /* "5.3.0-0-g54eaed1d..." -> "5.3.0" */
        snprintf(version, vlen, "%.*s", (int)strcspn(v, "-"), v);
    } else if (strcmp(opt_alloc, "mimalloc") == 0) {
        void *h = dlopen(opt_mimalloc_so, RTLD_NOW | RTLD_LOCAL);
        if (!h)
            bench_die("--alloc=mimalloc: dlopen(%s): %s", opt_mimalloc_so, dlerror());
        mi_malloc_ptr = (__typeof__(&mi_malloc))dlsym(h, "mi_malloc");
        mi_free_ptr = (__typeof__(&mi_free))dlsym(h, "mi_free");
        __typeof__(&mi_version) version_fn = (__typeof__(&mi_version))dlsym(h, "mi_version");
        if (!mi_malloc_ptr || !mi_free_ptr || !version_fn)
            bench_die("--alloc=mimalloc: %s lacks mi_malloc, mi_free or mi_version", opt_mimalloc_so);
        const char *after = symbol_origin("malloc");
        if (!BENCH_SANITIZER && (!after || !malloc_from || strcmp(after, malloc_from) != 0))
            fprintf(stderr, "%s: warning: loading %s moved malloc from %s to %s\n", bench_prog,
                    opt_mimalloc_so, malloc_from ? malloc_from : "?", after ? after : "?");
        int v = version_fn();   /* 209 for 2.0.9 */
        snprintf(version, vlen, "%d.%d.%d", v / 100, (v / 10) % 10, v % 10);
    } else {
        int err = rcgc_init(NULL);
        if (err)
            bench_die("rcgc_init: %s", strerror(err));
        snprintf(version, vlen, "%d.%d", RCGC_VERSION_MAJOR, RCGC_VERSION_MINOR);
    }
}

/* rcgc only, after every worker has detached: its own counters should
 * agree with ours. A disagreement is reported, not fatal: it is a finding
 * about rcgc's statistics (or a leak), not about the figure measured. */
static void rcgc_report(uint64_t pairs, uint64_t *gc_collections) {
    rcgc_stats st;
    memset(&st, 0, sizeof st);
    rcgc_stats_get(&st);
    if (opt_verbose)
        fprintf(stderr,
                "%s: rcgc stats: allocs_total=%zu frees_total=%zu remote_frees_total=%zu "
                "blocks_in_use=%zu bytes_in_use=%zu pages=%zu pages_abandoned=%zu arenas=%zu "
                "bytes_reserved=%zu bytes_committed=%zu threads_attached=%zu\n",
                bench_prog, st.allocs_total, st.frees_total, st.remote_frees_total,
                st.blocks_in_use, st.bytes_in_use, st.pages, st.pages_abandoned, st.arenas,
                st.bytes_reserved, st.bytes_committed, st.threads_attached);
    if (st.blocks_in_use != 0 || st.allocs_total != st.frees_total || st.allocs_total != pairs)
        fprintf(stderr,
                "%s: warning: rcgc stats disagree with the benchmark: %" PRIu64
                " pairs done, rcgc counts allocs_total=%zu frees_total=%zu blocks_in_use=%zu\n",
                bench_prog, pairs, st.allocs_total, st.frees_total, st.blocks_in_use);
    *gc_collections = st.gc_collections;
}

/* ------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------ */
int main(int argc, char **argv) {
    bench_parse_options(argc, argv,
                        "Small-object malloc/free throughput of one allocator; prints a "
                        "RESULT line.\nSee the comment at the top of bench/alloc_bench.c.",
                        options, sizeof options / sizeof options[0]);
    if (!opt_alloc)
        bench_die("--alloc is required (rcgc, glibc, jemalloc or mimalloc)");
    if (opt_iters_given && opt_seconds_given)
        bench_die("give --seconds or --iters, not both");
    if (!opt_iters_given && !(opt_seconds > 0))
        bench_die("--seconds must be positive");
    if (opt_min_size > opt_max_size)
        bench_die("--min-size (%lu) is above --max-size (%lu)", opt_min_size, opt_max_size);
    if (opt_check && opt_min_size < 8)
        bench_die("--check needs --min-size of at least 8");
    bool object = strcmp(opt_workload, "object") == 0;
    bool tracked = opt_type && strcmp(opt_type, "tracked") == 0;
    if (opt_type && !(object && strcmp(opt_alloc, "rcgc") == 0))
        bench_die("--type applies to --workload=object --alloc=rcgc only");
    if (tracked && opt_min_size < sizeof(obj_refs))
        bench_die("--type=tracked needs --min-size of at least %zu (its references)",
                  sizeof(obj_refs));
    if (tracked && opt_check)
        bench_die("--check fills the payload, where --type=tracked keeps its references");
    if (opt_iters)   /* whole batches */
        opt_iters = (opt_iters + opt_batch - 1) / opt_batch * opt_batch;

    size_t wl = 0;
    while (strcmp(workloads[wl].name, opt_workload) != 0)
        wl++;   /* bench_parse_options checked the name */

    char version[64];
    setup_allocator(version, sizeof version);

    shared *sh = bench_xalloc(sizeof *sh);
    unsigned n = (unsigned)opt_threads;
    sh->nthreads = n;
    size_t ncontainers = 0;
    if (strcmp(opt_workload, "remote") == 0) {
        size_t cap = 1;
        while (cap < (size_t)n * RING_BATCHES_PER_THREAD)
            cap <<= 1;
        sh->inbox = bench_xalloc(sizeof(spsc) * n);
        for (unsigned i = 0; i < n; i++) {
            sh->inbox[i].mask = cap - 1;
            sh->inbox[i].slot = bench_xalloc(cap * sizeof(batch *));
        }
    } else if (strcmp(opt_workload, "prodcons") == 0) {
        pthread_mutex_init(&sh->pc_lock, NULL);
        pthread_cond_init(&sh->pc_has_full, NULL);
        pthread_cond_init(&sh->pc_has_empty, NULL);
        sh->producers = n / 2;
        ncontainers = n == 1 ? 1 : (size_t)n * PC_BATCHES_PER_THREAD;
        for (size_t i = 0; i < ncontainers; i++) {
            batch *b = batch_new();
            b->next = sh->empty;
            sh->empty = b;
        }
    }

    body_fn body = strcmp(opt_alloc, "rcgc") == 0 && tracked ? workloads[wl].rcgc_tracked
                   : strcmp(opt_alloc, "rcgc") == 0       ? workloads[wl].rcgc
                   : strcmp(opt_alloc, "mimalloc") == 0 ? workloads[wl].mimalloc
                                                        : workloads[wl].system;
    char label[128];
    snprintf(label, sizeof label, "%s%s alloc=%s threads=%u", opt_workload,
             object && strcmp(opt_alloc, "rcgc") == 0 ? (tracked ? " tracked" : " untracked") : "",
             opt_alloc, n);
    bench_run run = {
        .nthreads = n,
        .seconds = opt_seconds,
        .iters = opt_iters_given ? opt_iters : 0,
        .progress = opt_progress,
        .label = label,
        .body = body,
        .arg = sh,
    };
    bench_result res;
    /* main (attached by rcgc_init) only sleeps and joins meanwhile. */
    if (strcmp(opt_alloc, "rcgc") == 0)
        rcgc_blocking_begin();
    bench_run_threads(&run, &res);
    if (strcmp(opt_alloc, "rcgc") == 0)
        rcgc_blocking_end();

    uint64_t allocated = atomic_load_explicit(&sh->allocated, memory_order_relaxed);
    if (allocated != res.ops)
        bench_die("internal error: %" PRIu64 " pairs allocated but %" PRIu64 " freed", allocated,
                  res.ops);
    char rcgc_fields[64] = "";
    if (strcmp(opt_alloc, "rcgc") == 0) {
        uint64_t colls = 0;
        rcgc_report(res.ops, &colls);
        snprintf(rcgc_fields, sizeof rcgc_fields, " gc_collections=%" PRIu64, colls);
        rcgc_shutdown();
    }

    /* Teardown of the harness's own memory. */
    if (sh->inbox) {
        for (unsigned i = 0; i < n; i++)
            free(sh->inbox[i].slot);
        free(sh->inbox);
    }
    size_t freed = 0;
    while (sh->empty) {
        batch *b = sh->empty;
        sh->empty = b->next;
        free(b);
        freed++;
    }
    if (freed != ncontainers)
        bench_die("internal error: %zu of %zu batch containers came back", freed, ncontainers);
    if (ncontainers) {
        pthread_cond_destroy(&sh->pc_has_full);
        pthread_cond_destroy(&sh->pc_has_empty);
        pthread_mutex_destroy(&sh->pc_lock);
    }
    free(sh);
    bench_run_free(&run);

    char type_field[32] = "";
    if (object)   /* the peers' pairs are plain malloc+free */
        snprintf(type_field, sizeof type_field, " type=%s",
                 strcmp(opt_alloc, "rcgc") != 0 ? "malloc" : tracked ? "tracked" : "untracked");
    printf("RESULT alloc=%s workload=%s threads=%u ops_per_sec=%.0f pairs=%" PRIu64
           " seconds=%.3f batch=%lu sizes=%lu..%lu seed=%lu version=%s%s%s%s\n",
           opt_alloc, opt_workload, n, res.ops_per_sec, res.ops, res.elapsed_s, opt_batch,
           opt_min_size, opt_max_size, opt_seed, version, type_field, rcgc_fields,
           opt_check ? " check=1" : "");
    fflush(stdout);

    unsigned long bad = atomic_load_explicit(&check_failures, memory_order_relaxed);
    if (bad) {
        fprintf(stderr, "%s: %lu block(s) failed --check\n", bench_prog, bad);
        return 1;
    }
    return 0;
}
