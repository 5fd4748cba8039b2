/*
 * gcbench: the pattern of Boehm's GCBench (John Ellis and Pete Kovac's
 * Java benchmark, as adapted by Hans Boehm), with its trees built by one of
 * three allocators, and its construction phases shared among threads:
 *
 *   rcgc   rcgc_new nodes of a type with traverse and clear (tracked: the
 *          cycle collector scans them, automatic collections on, as a
 *          program would have them); a dropped tree is freed by reference
 *          counting (rcgc_decref of its root). The long-lived array is an
 *          untracked rcgc_new_var object.
 *   boehm  GC_MALLOC nodes and a GC_MALLOC_ATOMIC array, never freed:
 *          Boehm GC collects (its default marker threads, one per core).
 *   glibc  malloc/free, a dropped tree freed node by node: not a peer (the
 *          benchmark is about collectors), the cost of explicit freeing as
 *          a reference.
 *
 *   gcbench --impl=rcgc|boehm|glibc [--threads=T] [--stretch-depth=18]
 *           [--long-lived-depth=16] [--array-size=500000] [--min-depth=4]
 *           [--max-depth=16] [--progress]
 *
 * The program (GCBench's, with its default sizes): build and drop a
 * "stretch" tree of depth 18; build a long-lived tree of depth 16 top-down
 * and a long-lived array of 500,000 doubles (half of them set), both kept
 * to the end; then for each depth d = 4, 6, ..., 16:
 *   top-down:  NumIters(d) times, allocate a root and Populate it to depth
 *              d (each node allocates its two children, then recurses),
 *              then drop the tree;
 *   bottom-up: NumIters(d) times, MakeTree(d) (children first, then the
 *              parent that points to them), then drop the tree;
 * where NumIters(d) = 2 * TreeSize(stretch) / TreeSize(d): every depth
 * allocates about the same number of nodes, in many small trees or a few
 * large ones. Finally the long-lived tree's node count and the array's
 * element 1000 (or its last set one, if fewer) are checked. A node is two
 * pointers and two ints (24 bytes).
 *
 * Threads: each construction phase (one depth, top-down or bottom-up) is
 * shared among --threads threads, thread k doing iterations k, k + T, ...;
 * every thread waits at a barrier at the end of each phase, so a phase's
 * time runs from its start until its last thread is done. The total work
 * does not change with T: more threads should finish sooner. The stretch
 * tree, the long-lived tree and the array are made by main (GCBench's
 * single thread) before the phases.
 *
 * Output: with --progress, a line per phase on stderr; then one line
 *   RESULT impl=rcgc threads=2 seconds=... nodes=... mnodes_per_s=...
 *          td4_ms=... bu4_ms=... ... td16_ms=... bu16_ms=... ok=1 ...
 * seconds: from the stretch tree to the final check (GCBench's timed
 * region: rcgc_init/GC_INIT and rcgc_shutdown are outside it; wall_s has
 * the whole of main); nodes: every node allocated in it; gc_* fields: the
 * collector's own counts (rcgc_gc_get_stats; gc_empty: rcgc's collections
 * that found nothing unreachable, from an RCGC_GC_STOP callback with
 * info->unreachable == 0; Boehm: collections and the world-stopped time
 * from GC_set_on_collection_event); peak_rss_mb: getrusage's ru_maxrss,
 * every variant. ok=0 and a warning on stderr when the final checks fail.
 */
#include <inttypes.h>
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

#include "bench/lib/bench_util.h"

static const char *opt_impl = "rcgc";
static unsigned long opt_threads = 1;
static unsigned long opt_stretch = 18;
static unsigned long opt_long_lived = 16;
static unsigned long opt_array = 500000;
static unsigned long opt_min_depth = 4;
static unsigned long opt_max_depth = 16;
static int opt_progress;

static const bench_opt options[] = {
    { "impl", BENCH_OPT_STRING, &opt_impl, 0, 0, "rcgc boehm glibc", "allocator / collector", NULL },
    { "threads", BENCH_OPT_ULONG, &opt_threads, 1, 1024, NULL, "threads sharing each phase", NULL },
    { "stretch-depth", BENCH_OPT_ULONG, &opt_stretch, 2, 26, NULL,
      "stretch tree depth; sets the work per depth (NumIters)", NULL },
    { "long-lived-depth", BENCH_OPT_ULONG, &opt_long_lived, 0, 26, NULL,
      "depth of the long-lived tree", NULL },
    { "array-size", BENCH_OPT_ULONG, &opt_array, 4, 1ul << 30, NULL,
      "doubles in the long-lived array", NULL },
    { "min-depth", BENCH_OPT_ULONG, &opt_min_depth, 0, 26, NULL, "first tree depth", NULL },
    { "max-depth", BENCH_OPT_ULONG, &opt_max_depth, 0, 26, NULL, "last tree depth (step 2)", NULL },
    { "progress", BENCH_OPT_FLAG, &opt_progress, 0, 0, NULL, "a line per phase on stderr", NULL },
};

typedef struct node {
    struct node *left, *right;
    int i, j;
} node;

enum impl { IMPL_RCGC, IMPL_BOEHM, IMPL_GLIBC };
static enum impl impl;

static long tree_size(int d) { return (1L << (d + 1)) - 1; }
static long num_iters(int d) { return 2 * tree_size((int)opt_stretch) / tree_size(d); }

/* ------------------------------------------------------------------------
 * The three allocators: new_node (zeroed fields), drop_tree.
 * ------------------------------------------------------------------------ */
static int node_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    node *n = self;
    RCGC_VISIT(n->left);
    RCGC_VISIT(n->right);
    return 0;
}

/* Drop the node's references; also what frees a dead node's children. */
static void node_clear(void *self) {
    node *n = self;
    node *l = n->left, *r = n->right;
    n->left = n->right = NULL;
    rcgc_xdecref(l);
    rcgc_xdecref(r);
}

static const rcgc_type node_type = {
    .name = "gcbench.node",
    .size = sizeof(node),
    .traverse = node_traverse,
    .clear = node_clear,
};

/* The long-lived array: no references, so untracked. */
static const rcgc_type array_type = { .name = "gcbench.array", .size = 0 };

static inline node *new_node(void) {
    node *n;
    switch (impl) {
    case IMPL_RCGC:
        n = rcgc_new(&node_type);          /* payload zeroed */
        break;
    case IMPL_BOEHM:
        n = GC_MALLOC(sizeof(node));       /* zeroed */
        break;
    default:
        n = malloc(sizeof(node));
        if (n)
            *n = (node){ NULL, NULL, 0, 0 };
        break;
    }
    if (!n)
        bench_die("out of memory allocating a node");
    return n;
}

static void free_tree_glibc(node *n) {
    if (n->left)
        free_tree_glibc(n->left);
    if (n->right)
        free_tree_glibc(n->right);
    free(n);
}

/* Drop the only reference to a tree (GCBench: tempTree = null). */
static inline void drop_tree(node *n) {
    switch (impl) {
    case IMPL_RCGC:
        rcgc_decref(n);                    /* clear frees the children */
        break;
    case IMPL_BOEHM:
        break;                             /* the collector finds it */
    default:
        free_tree_glibc(n);
        break;
    }
}

/* GCBench's Populate: build the tree top-down below n. */
static void populate(int d, node *n) {
    if (d <= 0)
        return;
    d--;
    n->left = new_node();
    n->right = new_node();
    populate(d, n->left);
    populate(d, n->right);
}

/* GCBench's MakeTree: build the tree bottom-up (children before parent). */
static node *make_tree(int d) {
    if (d <= 0)
        return new_node();
    node *l = make_tree(d - 1);
    node *r = make_tree(d - 1);
    node *n = new_node();
    n->left = l;
    n->right = r;
    return n;
}

static long count_nodes(const node *n) {
    return n ? 1 + count_nodes(n->left) + count_nodes(n->right) : 0;
}

/* ------------------------------------------------------------------------
 * Phases and threads
 * ------------------------------------------------------------------------ */
#define MAX_PHASES 64

typedef struct phase {
    int depth;
    int bottom_up;      /* 0: top-down (Populate), 1: bottom-up (MakeTree) */
    long iters;
    uint64_t ns;
} phase;

static phase phases[MAX_PHASES];
static int nphases;
static pthread_barrier_t barrier;   /* threads + main */

/* Wait at the barrier; an rcgc thread does it inside a blocking region, so
 * that a collection another thread starts need not wait for it. */
static void barrier_wait(void) {
    if (impl == IMPL_RCGC)
        rcgc_blocking_begin();
    pthread_barrier_wait(&barrier);
    if (impl == IMPL_RCGC)
        rcgc_blocking_end();
}

static void run_phase(const phase *p, unsigned long k) {
    for (long it = (long)k; it < p->iters; it += (long)opt_threads) {
        node *t;
        if (p->bottom_up) {
            t = make_tree(p->depth);
        } else {
            t = new_node();
            populate(p->depth, t);
        }
        drop_tree(t);
    }
}

static void *worker(void *arg) {
    unsigned long k = (unsigned long)(uintptr_t)arg;
    struct GC_stack_base sb;
    if (impl == IMPL_RCGC && rcgc_thread_attach() != 0)
        bench_die("rcgc_thread_attach failed");
    if (impl == IMPL_BOEHM) {
        if (GC_get_stack_base(&sb) != GC_SUCCESS)
            bench_die("GC_get_stack_base failed");
        GC_register_my_thread(&sb);
    }
    for (int i = 0; i < nphases; i++) {
        barrier_wait();         /* main says go */
        run_phase(&phases[i], k);
        barrier_wait();         /* every thread is done */
    }
    if (impl == IMPL_BOEHM)
        GC_unregister_my_thread();
    if (impl == IMPL_RCGC)
        rcgc_thread_detach();
    return NULL;
}

/* The long-lived data, where Boehm's scan of the data segment finds it. */
static node *volatile long_lived;
static double *volatile array;

int main(int argc, char **argv) {
    bench_parse_options(argc, argv, "Boehm's GCBench pattern on rcgc, Boehm GC or malloc/free.",
                        options, sizeof options / sizeof options[0]);
    if (opt_min_depth > opt_max_depth)
        bench_die("--min-depth (%lu) is above --max-depth (%lu)", opt_min_depth, opt_max_depth);
    if (opt_max_depth > opt_stretch)
        bench_die("--max-depth (%lu) is above --stretch-depth (%lu): no iterations",
                  opt_max_depth, opt_stretch);
    uint64_t w0 = bench_now_ns();

    if (strcmp(opt_impl, "rcgc") == 0) {
        impl = IMPL_RCGC;
        if (rcgc_init(NULL) != 0)
            bench_die("rcgc_init failed");
        if (rcgc_gc_callback_add(bench_count_empty, NULL) != 0)
            bench_die("rcgc_gc_callback_add failed");
    } else if (strcmp(opt_impl, "boehm") == 0) {
        impl = IMPL_BOEHM;
        GC_INIT();
        GC_allow_register_threads();
        GC_set_on_collection_event(bench_boehm_event);
    } else {
        impl = IMPL_GLIBC;
    }

    for (unsigned long d = opt_min_depth; d <= opt_max_depth; d += 2) {
        if (nphases + 2 > MAX_PHASES)
            bench_die("too many depths");
        long it = num_iters((int)d);
        phases[nphases++] = (phase){ (int)d, 0, it, 0 };
        phases[nphases++] = (phase){ (int)d, 1, it, 0 };
    }

    if (pthread_barrier_init(&barrier, NULL, (unsigned)opt_threads + 1) != 0)
        bench_die("pthread_barrier_init failed");
    pthread_t *threads = bench_xalloc(sizeof(pthread_t) * opt_threads);
    for (unsigned long k = 0; k < opt_threads; k++)
        if (pthread_create(&threads[k], NULL, worker, (void *)(uintptr_t)k) != 0)
            bench_die("pthread_create failed");

    uint64_t t0 = bench_now_ns();
    long nodes = 0;

    /* Stretch the heap: build a tree of the largest depth, drop it. */
    node *t = make_tree((int)opt_stretch);
    nodes += tree_size((int)opt_stretch);
    drop_tree(t);
    t = NULL;

    /* The long-lived tree, top-down, and the array. */
    node *ll = new_node();
    populate((int)opt_long_lived, ll);
    long_lived = ll;
    nodes += tree_size((int)opt_long_lived);
    double *a;
    if (impl == IMPL_RCGC)
        a = rcgc_new_var(&array_type, opt_array * sizeof(double));
    else if (impl == IMPL_BOEHM)
        a = GC_MALLOC_ATOMIC(opt_array * sizeof(double));
    else
        a = calloc(opt_array, sizeof(double));
    if (!a)
        bench_die("out of memory allocating the array");
    for (unsigned long i = 1; i < opt_array / 2; i++)
        a[i] = 1.0 / (double)i;
    array = a;
    a = NULL;
    ll = NULL;
    uint64_t t_setup = bench_now_ns();
    if (opt_progress)
        fprintf(stderr, "gcbench %s: stretch %lu + long-lived %lu: %.1f ms\n", opt_impl,
                opt_stretch, opt_long_lived, (double)(t_setup - t0) / 1e6);

    for (int i = 0; i < nphases; i++) {
        phase *p = &phases[i];
        barrier_wait();
        uint64_t s = bench_now_ns();
        barrier_wait();
        p->ns = bench_now_ns() - s;
        nodes += p->iters * tree_size(p->depth);
        if (opt_progress)
            fprintf(stderr, "gcbench %s: %s depth %d, %ld trees: %.1f ms\n", opt_impl,
                    p->bottom_up ? "bottom-up" : "top-down ", p->depth, p->iters,
                    (double)p->ns / 1e6);
    }

    /* GCBench's check: the long-lived data survived intact. */
    /* GCBench checks element 1000; a smaller array, its last set element */
    unsigned long chk = opt_array / 2 - 1 < 1000 ? opt_array / 2 - 1 : 1000;
    long ll_nodes = count_nodes(long_lived);
    int ok = ll_nodes == tree_size((int)opt_long_lived) && array[chk] == 1.0 / (double)chk;
    uint64_t t1 = bench_now_ns();
    if (!ok)
        fprintf(stderr, "gcbench: warning: long-lived data damaged: %ld nodes (expected %ld), "
                        "array[%lu] = %g (expected %g)\n", ll_nodes, tree_size((int)opt_long_lived),
                chk, array[chk], 1.0 / (double)chk);

    if (impl == IMPL_RCGC)
        rcgc_blocking_begin();
    for (unsigned long k = 0; k < opt_threads; k++)
        pthread_join(threads[k], NULL);
    if (impl == IMPL_RCGC)
        rcgc_blocking_end();

    char phase_fields[MAX_PHASES * 24] = "";
    size_t off = 0;
    for (int i = 0; i < nphases; i++)
        off += (size_t)snprintf(phase_fields + off, sizeof phase_fields - off, " %s%d_ms=%.3f",
                                phases[i].bottom_up ? "bu" : "td", phases[i].depth,
                                (double)phases[i].ns / 1e6);

    char extra[256] = "";
    if (impl == IMPL_RCGC) {
        rcgc_gc_callback_remove(bench_count_empty, NULL);  /* shutdown's own collection is not counted */
        rcgc_gc_stats st;
        rcgc_gc_get_stats(&st);
        snprintf(extra, sizeof extra,
                 " gc_collections=%" PRIu64 " gc_young=%" PRIu64 " gc_empty=%" PRIu64
                 " gc_pause_total_ms=%.3f gc_pause_max_ms=%.3f",
                 st.collections, st.young_collections,
                 atomic_load_explicit(&bench_empty_collections, memory_order_relaxed),
                 (double)st.pause_total_ns / 1e6, (double)st.pause_max_ns / 1e6);
        drop_tree(long_lived);
        long_lived = NULL;
        rcgc_decref(array);
        array = NULL;
        rcgc_shutdown();
    } else if (impl == IMPL_BOEHM) {
        snprintf(extra, sizeof extra,
                 " gc_collections=%lu gc_pause_total_ms=%.3f gc_pause_max_ms=%.3f gc_markers=%d"
                 " heap_mb=%.1f",
                 (unsigned long)GC_get_gc_no(),
                 (double)atomic_load(&boehm_pause_total_ns) / 1e6,
                 (double)atomic_load(&boehm_pause_max_ns) / 1e6, GC_get_parallel() + 1,
                 (double)GC_get_heap_size() / 1048576.0);
    } else {
        drop_tree(long_lived);
        long_lived = NULL;
        free(array);
        array = NULL;
    }

    double seconds = (double)(t1 - t0) / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("RESULT impl=%s threads=%lu stretch=%lu long_lived=%lu array=%lu min_depth=%lu "
           "max_depth=%lu seconds=%.4f setup_ms=%.3f nodes=%ld mnodes_per_s=%.3f%s ok=%d "
           "peak_rss_mb=%.1f wall_s=%.4f%s\n",
           opt_impl, opt_threads, opt_stretch, opt_long_lived, opt_array, opt_min_depth,
           opt_max_depth, seconds, (double)(t_setup - t0) / 1e6, nodes,
           (double)nodes / seconds / 1e6, phase_fields, ok, (double)ru.ru_maxrss / 1024.0,
           (double)(bench_now_ns() - w0) / 1e9, extra);
    pthread_barrier_destroy(&barrier);
    free(threads);
    return ok ? 0 : 1;
}
