/*
 * binary_trees: the Computer Language Benchmarks Game's binary-trees, by
 * the game's rules (https://benchmarksgame-team.pages.debian.net/
 * benchmarksgame/description/binarytrees.html), with its allocation done
 * by one of four allocators:
 *
 *   glibc     malloc/free (glibc's, the process's own)
 *   mimalloc  mi_malloc/mi_free, called directly, in the binary_trees_mimalloc
 *             build (-DBT_MIMALLOC: linked with Debian's libmimalloc, which
 *             also replaces malloc itself in that binary, so the other
 *             variants live in the plain binary_trees)
 *   boehm     GC_MALLOC, never freed: Boehm GC collects (its marker threads:
 *             Boehm's default, one per core)
 *   rcgc      rcgc_new of a type with traverse and clear; trees are freed
 *             by reference counting (rcgc_decref of the root); automatic
 *             cycle collections stay on, as a program would have them
 *
 *   binary_trees [--alloc=glibc|boehm|rcgc] [--depth=21] [--threads=2]
 *   binary_trees_mimalloc [--alloc=mimalloc] [--depth=21] [--threads=2]
 *
 * The program (the game's, unchanged): with max depth N (at least 6),
 * build a "stretch" tree of depth N+1, check it and free it; build a
 * long-lived tree of depth N; then for each depth d = 4, 6, ..., N build,
 * check and free 2^(N-d+4) trees of depth d, summing their checks (a
 * check is the tree's node count); then check the long-lived tree. The
 * depths are shared out among --threads threads (each takes the next
 * depth not yet taken, as the game's multi-threaded C programs do with an
 * OpenMP dynamic schedule); results are printed in depth order.
 *
 * Output: the game's lines on stdout, then
 *   RESULT alloc=rcgc depth=21 threads=2 seconds=... checksum=... ...
 * seconds: from the start of main to just before it returns, the
 * allocator's set-up (rcgc_init, GC_INIT) and tear-down (rcgc_shutdown)
 * included; checksum: FNV-1a of the game's output lines, the same for
 * every allocator when they computed the same trees; peak_rss_mb: the
 * process's peak resident set (getrusage ru_maxrss), every allocator.
 * The collectors' own figures, up to the end of the program's work
 * (before rcgc_shutdown's final collection):
 *   rcgc   gc_collections, gc_young (rcgc_gc_get_stats); gc_empty: the
 *          collections that found nothing unreachable (an RCGC_GC_STOP
 *          callback with info->unreachable == 0: every one of them is
 *          wasted work on this program, whose trees reference counting
 *          frees); gc_pause_total_ms, gc_pause_max_ms (world stopped)
 *   boehm  gc_collections (GC_get_gc_no), gc_pause_total_ms and
 *          gc_pause_max_ms (its stop-world to start-world events),
 *          gc_markers, heap_mb
 */
#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <rcgc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define GC_THREADS 1
#define GC_NO_THREAD_REDIRECTS 1   /* threads register themselves (boehm only) */
#include <gc/gc.h>
#ifdef BT_MIMALLOC
#include <mimalloc.h>
#endif

#include "bench/lib/bench_util.h"

#define MIN_DEPTH 4

#ifdef BT_MIMALLOC
static const char *opt_alloc = "mimalloc";
#define ALLOC_CHOICES "mimalloc"
#else
static const char *opt_alloc = "glibc";
#define ALLOC_CHOICES "glibc boehm rcgc"
#endif
static unsigned long opt_depth = 21;
static unsigned long opt_threads = 2;

static const bench_opt options[] = {
    { "alloc", BENCH_OPT_STRING, &opt_alloc, 0, 0, ALLOC_CHOICES, "allocator", NULL },
    { "depth", BENCH_OPT_ULONG, &opt_depth, 1, 30, NULL, "max depth N (the game's argument)", NULL },
    { "threads", BENCH_OPT_ULONG, &opt_threads, 1, 256, NULL, "threads sharing the depths", NULL },
};

typedef struct tnode {
    struct tnode *left, *right;
} tnode;

/* A tree's check: its node count. */
static long check(const tnode *t) {
    return 1 + (t->left ? check(t->left) + check(t->right) : 0);
}

/* ------------------------------------------------------------------------
 * The allocators: bottom_up_<a>(d) builds a tree of depth d, free_<a> frees
 * one (nothing for boehm).
 * ------------------------------------------------------------------------ */
#define DEFINE_BOTTOM_UP(a, ALLOC)                                         \
    static tnode *bottom_up_##a(int d) {                                   \
        tnode *t = ALLOC(sizeof *t);                                       \
        if (!t)                                                            \
            bench_die("out of memory");                                    \
        if (d > 0) {                                                       \
            t->left = bottom_up_##a(d - 1);                                \
            t->right = bottom_up_##a(d - 1);                               \
        } else {                                                           \
            t->left = t->right = NULL;                                     \
        }                                                                  \
        return t;                                                          \
    }
#define DEFINE_FREE(a, FREE)                                               \
    static void free_##a(tnode *t) {                                       \
        if (t->left) {                                                     \
            free_##a(t->left);                                             \
            free_##a(t->right);                                            \
        }                                                                  \
        FREE(t);                                                           \
    }

#ifdef BT_MIMALLOC
DEFINE_BOTTOM_UP(mimalloc, mi_malloc)
DEFINE_FREE(mimalloc, mi_free)
#else
DEFINE_BOTTOM_UP(glibc, malloc)
DEFINE_FREE(glibc, free)
#endif

#ifndef BT_MIMALLOC   /* the mimalloc build runs mimalloc only */
/* boehm: nothing is freed, and no tree is walked to free nothing. */
DEFINE_BOTTOM_UP(boehm, GC_MALLOC)
static void free_boehm(tnode *t) { (void)t; }

/* rcgc: a node owns its children's references. */
static int tnode_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    tnode *t = self;
    RCGC_VISIT(t->left);
    RCGC_VISIT(t->right);
    return 0;
}

static void tnode_clear(void *self) {
    tnode *t = self;
    tnode *l = t->left, *r = t->right;
    t->left = t->right = NULL;
    rcgc_xdecref(l);
    rcgc_xdecref(r);
}

static const rcgc_type tnode_type = {
    .name = "binary_trees.node",
    .size = sizeof(tnode),
    .traverse = tnode_traverse,
    .clear = tnode_clear,
};

static tnode *bottom_up_rcgc(int d) {
    tnode *t = rcgc_new(&tnode_type);   /* payload zeroed: a leaf's fields are NULL */
    if (!t)
        bench_die("out of memory");
    if (d > 0) {
        t->left = bottom_up_rcgc(d - 1);
        t->right = bottom_up_rcgc(d - 1);
    }
    return t;
}
static void free_rcgc(tnode *t) { rcgc_decref(t); }  /* clear frees the children */

#endif /* !BT_MIMALLOC */

typedef struct allocator {
    tnode *(*bottom_up)(int d);
    void (*free_tree)(tnode *t);
    int kind;               /* 0 malloc-like, 1 boehm, 2 rcgc */
} allocator;

static allocator A;

/* ------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------ */
typedef struct depth_result {
    int depth;
    long iterations;
    long check;
} depth_result;

static depth_result *results;
static int ndepths;
static _Atomic int next_depth;      /* index into results; relaxed: results[] is read after join */
static int max_depth;

static void do_depths(void) {
    for (;;) {
        int k = atomic_fetch_add_explicit(&next_depth, 1, memory_order_relaxed);
        if (k >= ndepths)
            return;
        int d = MIN_DEPTH + 2 * k;
        long iterations = 1L << (max_depth - d + MIN_DEPTH);
        long sum = 0;
        for (long i = 0; i < iterations; i++) {
            tnode *t = A.bottom_up(d);
            sum += check(t);
            A.free_tree(t);
        }
        results[k] = (depth_result){ d, iterations, sum };
    }
}

static void *worker(void *arg) {
    (void)arg;
    struct GC_stack_base sb;
    if (A.kind == 2 && rcgc_thread_attach() != 0)
        bench_die("rcgc_thread_attach failed");
    if (A.kind == 1) {
        if (GC_get_stack_base(&sb) != GC_SUCCESS)
            bench_die("GC_get_stack_base failed");
        GC_register_my_thread(&sb);
    }
    do_depths();
    if (A.kind == 1)
        GC_unregister_my_thread();
    if (A.kind == 2)
        rcgc_thread_detach();
    return NULL;
}

/* ------------------------------------------------------------------------
 * Output: printed and hashed (FNV-1a 64)
 * ------------------------------------------------------------------------ */
static uint64_t checksum = 0xcbf29ce484222325ull;

__attribute__((format(printf, 1, 2)))
static void out(const char *fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fputs(line, stdout);
    for (const char *p = line; *p; p++) {
        checksum ^= (unsigned char)*p;
        checksum *= 0x100000001b3ull;
    }
}

int main(int argc, char **argv) {
    bench_parse_options(argc, argv, "The Benchmarks Game's binary-trees on one allocator.", options,
                        sizeof options / sizeof options[0]);
    uint64_t t0 = bench_now_ns();

#ifdef BT_MIMALLOC
    A = (allocator){ bottom_up_mimalloc, free_mimalloc, 0 };
#else
    if (strcmp(opt_alloc, "glibc") == 0) {
        A = (allocator){ bottom_up_glibc, free_glibc, 0 };
    } else if (strcmp(opt_alloc, "boehm") == 0) {
        A = (allocator){ bottom_up_boehm, free_boehm, 1 };
        GC_INIT();
        GC_allow_register_threads();
        GC_set_on_collection_event(bench_boehm_event);
    } else {
        A = (allocator){ bottom_up_rcgc, free_rcgc, 2 };
        if (rcgc_init(NULL) != 0)
            bench_die("rcgc_init failed");
        if (rcgc_gc_callback_add(bench_count_empty, NULL) != 0)
            bench_die("rcgc_gc_callback_add failed");
    }
#endif

    max_depth = (int)opt_depth < MIN_DEPTH + 2 ? MIN_DEPTH + 2 : (int)opt_depth;
    int stretch = max_depth + 1;
    tnode *t = A.bottom_up(stretch);
    out("stretch tree of depth %d\t check: %ld\n", stretch, check(t));
    A.free_tree(t);

    tnode *long_lived = A.bottom_up(max_depth);

    ndepths = (max_depth - MIN_DEPTH) / 2 + 1;
    results = bench_xalloc(sizeof(depth_result) * (size_t)ndepths);
    pthread_t *threads = bench_xalloc(sizeof(pthread_t) * opt_threads);
    for (unsigned long i = 0; i < opt_threads; i++)
        if (pthread_create(&threads[i], NULL, worker, NULL) != 0)
            bench_die("pthread_create failed");
    if (A.kind == 2)
        rcgc_blocking_begin();      /* joins block: the collector must not wait for main */
    for (unsigned long i = 0; i < opt_threads; i++)
        pthread_join(threads[i], NULL);
    if (A.kind == 2)
        rcgc_blocking_end();
    for (int k = 0; k < ndepths; k++)
        out("%ld\t trees of depth %d\t check: %ld\n", results[k].iterations, results[k].depth,
            results[k].check);
    out("long lived tree of depth %d\t check: %ld\n", max_depth, check(long_lived));
    A.free_tree(long_lived);

    char extra[256] = "";
#ifndef BT_MIMALLOC
    if (A.kind == 2) {
        rcgc_gc_callback_remove(bench_count_empty, NULL);  /* shutdown's own collection is not counted */
        rcgc_gc_stats st;
        rcgc_gc_get_stats(&st);
        snprintf(extra, sizeof extra,
                 " gc_collections=%" PRIu64 " gc_young=%" PRIu64 " gc_empty=%" PRIu64
                 " gc_pause_total_ms=%.3f gc_pause_max_ms=%.3f",
                 st.collections, st.young_collections,
                 atomic_load_explicit(&bench_empty_collections, memory_order_relaxed),
                 (double)st.pause_total_ns / 1e6, (double)st.pause_max_ns / 1e6);
        rcgc_shutdown();
    } else if (A.kind == 1) {
        snprintf(extra, sizeof extra,
                 " gc_collections=%lu gc_pause_total_ms=%.3f gc_pause_max_ms=%.3f gc_markers=%d"
                 " heap_mb=%.1f",
                 (unsigned long)GC_get_gc_no(),
                 (double)atomic_load_explicit(&boehm_pause_total_ns, memory_order_relaxed) / 1e6,
                 (double)atomic_load_explicit(&boehm_pause_max_ns, memory_order_relaxed) / 1e6,
                 GC_get_parallel() + 1, (double)GC_get_heap_size() / 1048576.0);
    }
#endif
    double seconds = (double)(bench_now_ns() - t0) / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("RESULT alloc=%s depth=%d threads=%lu seconds=%.4f checksum=%016" PRIx64
           " peak_rss_mb=%.1f%s\n",
           opt_alloc, max_depth, opt_threads, seconds, checksum, (double)ru.ru_maxrss / 1024.0,
           extra);
    free(threads);
    free(results);
    return 0;
}
