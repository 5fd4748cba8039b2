/*
 * gc_bench: the time of rcgc's cycle collections, beside CPython's
 * gc.collect() (bench/gc_bench.py) and Boehm GC's GC_gcollect()
 * (bench/gc_bench_boehm.c) on the same object graph; bench/run.sh runs
 * the three in turn and prints them side by side. A benchmark, not a test.
 *
 *   gc_bench --test=full  [--n=N] [--workers=1,2] [--reps=R] [--rotate=K]
 *   gc_bench --test=young [--old=N] [--young=N] [--young-reps=R] [--workers=...]
 *
 * The graph (bench/lib/gc_graph.h): N objects of a type with two pointer
 * fields, traverse and clear; a complete binary tree whose leaves point
 * back to the root and across, so that the whole graph is one cycle.
 *
 * full: for each repetition and each collector thread count (rcgc_init with
 * cfg.gc_workers = w, rcgc_shutdown after; the counts take turns, the
 * first one rotating with --rotate and the repetition):
 *   1. build the graph with automatic collection off (rcgc_gc_disable);
 *   2. rcgc_collect() --warmup times (default once), untimed: every object
 *      is now old, as in a program whose heap has been there a while;
 *   3. "live": time rcgc_collect() with the root held (finds 0);
 *   4. "garbage": drop the root, time rcgc_collect() (finds N, and clearing
 *      them lets reference counting free all N before it returns).
 * young: build a live graph of --old objects, rcgc_collect() (they are old),
 * then --young-reps times: build a --young-object garbage graph and time
 * rcgc_collect_young(); the same with no old graph (old=0) in the same
 * process, the two taking turns.
 *
 * Output: one line per measurement on stdout,
 *   RESULT impl=rcgc test=live n=1000000 workers=2 ms=... pause_ms=... ok=1 ...
 * ms: wall time of the rcgc_collect call; pause_ms, duration_ms: the
 * library's own figures (rcgc_gc_get_stats: last.pause_ns, duration_ns);
 * found: what the call returned, expect: what it should have; freed: blocks
 * given back meanwhile (rcgc_stats_get); ok=0 and a "warning:" line on
 * stderr when found or freed differ from what the graph says. Consumers
 * look fields up by key.
 */
#include <inttypes.h>
#include <limits.h>
#include <rcgc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/lib/bench_util.h"
#include "bench/lib/gc_graph.h"

/* ------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------ */
static const char *opt_test = "full";
static unsigned long opt_n = 1000000;
static const char *opt_workers = "1,2";
static unsigned long opt_reps = 1;
static unsigned long opt_rotate;
static unsigned long opt_old = 1000000;
static unsigned long opt_young = 10000;
static unsigned long opt_young_reps = 5;
static unsigned long opt_warmup = 1;
static const char *opt_label = "rcgc";
static int opt_verbose;

static const bench_opt options[] = {
    { "test", BENCH_OPT_STRING, &opt_test, 0, 0, "full young", "what to measure", NULL },
    { "n", BENCH_OPT_ULONG, &opt_n, 2, 1ul << 32, NULL, "full: objects in the graph", NULL },
    { "workers", BENCH_OPT_STRING, &opt_workers, 0, 0, NULL,
      "collector thread counts (cfg.gc_workers), comma-separated", NULL },
    { "reps", BENCH_OPT_ULONG, &opt_reps, 1, 1000, NULL, "full: repetitions per thread count", NULL },
    { "rotate", BENCH_OPT_ULONG, &opt_rotate, 0, 1000, NULL,
      "start the turns at this thread count index (run.sh: the repetition)", NULL },
    { "old", BENCH_OPT_ULONG, &opt_old, 2, 1ul << 32, NULL, "young: objects in the old graph", NULL },
    { "young", BENCH_OPT_ULONG, &opt_young, 2, 1ul << 32, NULL,
      "young: objects of young garbage per collection", NULL },
    { "young-reps", BENCH_OPT_ULONG, &opt_young_reps, 1, 1000, NULL,
      "young: young collections per heap", NULL },
    { "warmup", BENCH_OPT_ULONG, &opt_warmup, 0, 100, NULL,
      "full: untimed collections between the build and the timed ones", NULL },
    { "label", BENCH_OPT_STRING, &opt_label, 0, 0, NULL,
      "impl= of the RESULT lines (run.sh: rcgc_purge0 for a run with RCGC_PURGE=0)", NULL },
    { "verbose", BENCH_OPT_FLAG, &opt_verbose, 0, 0, NULL, "print rcgc's gc statistics to stderr", NULL },
};

/* ------------------------------------------------------------------------
 * The node type
 * ------------------------------------------------------------------------ */
typedef struct gnode {
    struct gnode *a, *b;
} gnode;

static int gnode_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    gnode *n = self;
    RCGC_VISIT(n->a);
    RCGC_VISIT(n->b);
    return 0;
}

/* Idempotent, as rcgc.h asks: the fields are NULL before the decrefs. */
static void gnode_clear(void *self) {
    gnode *n = self;
    gnode *a = n->a, *b = n->b;
    n->a = n->b = NULL;
    rcgc_xdecref(a);
    rcgc_xdecref(b);
}

static const rcgc_type gnode_type = {
    .name = "gc_bench.node",
    .size = sizeof(gnode),
    .traverse = gnode_traverse,
    .clear = gnode_clear,
};

/* Build the graph of n nodes; returns the root with one reference the
 * caller owns (every other reference is held by a node's field). tmp: room
 * for n pointers (the harness's, outside rcgc's heap). */
static gnode *build_graph(size_t n, gnode **tmp) {
    for (size_t i = 0; i < n; i++) {
        tmp[i] = rcgc_new(&gnode_type);
        if (!tmp[i])
            bench_die("rcgc_new failed at object %zu of %zu", i, n);
    }
    for (size_t i = 0; i < n; i++) {
        size_t a, b;
        int a_tree, b_tree;
        gc_graph_edges(i, n, &a, &a_tree, &b, &b_tree);
        /* A tree child's birth reference moves into its parent's field; a
         * back or cross link takes a new one. */
        if (!a_tree)
            rcgc_incref(tmp[a]);
        if (!b_tree)
            rcgc_incref(tmp[b]);
        tmp[i]->a = tmp[a];
        tmp[i]->b = tmp[b];
    }
    return tmp[0];
}

/* ------------------------------------------------------------------------
 * Measurement helpers
 * ------------------------------------------------------------------------ */
static int failures;

static size_t blocks_in_use(void) {
    static rcgc_stats s;    /* large (per-class table): not on the stack */
    rcgc_stats_get(&s);
    return s.blocks_in_use;
}

static void start_runtime(unsigned workers) {
    rcgc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.gc_workers = (int)workers;
    int rc = rcgc_init(&cfg);
    if (rc != 0)
        bench_die("rcgc_init(gc_workers=%u): %s", workers, strerror(rc));
    rcgc_gc_disable();
}

/* Blocks the collector may allocate or free for itself during a
 * collection, beside the graph's (its own bookkeeping, if it uses rcgc's
 * heaps): the freed check allows this much either way. */
#define FREED_SLACK 1024

/* One timed collection; prints its RESULT line. expect_freed: blocks that
 * must be given back by the time it returns (within FREED_SLACK). */
static void timed_collect(int young, const char *test, size_t n, size_t old, unsigned workers,
                          size_t expect, size_t expect_freed, double build_ms) {
    size_t before = blocks_in_use();
    uint64_t t0 = bench_now_ns();
    size_t found = young ? rcgc_collect_young() : rcgc_collect();
    uint64_t t1 = bench_now_ns();
    rcgc_heap_collect();    /* take back frees made by other threads (collector workers) */
    size_t after = blocks_in_use();
    size_t freed = before > after ? before - after : 0;   /* none if it grew */

    rcgc_gc_stats st;
    rcgc_gc_get_stats(&st);
    int ok = found == expect && freed >= expect_freed && freed <= expect_freed + FREED_SLACK &&
             st.last.young == young && st.last.unreachable == found;
    if (!ok) {
        failures++;
        fprintf(stderr,
                "%s: warning: %s n=%zu old=%zu workers=%u: %s returned %zu (expected %zu), "
                "%zu blocks freed (expected %zu); last info: young=%d unreachable=%zu "
                "collected=%zu uncollectable=%zu aborted=%d\n",
                bench_prog, test, n, old, workers, young ? "rcgc_collect_young" : "rcgc_collect",
                found, expect, freed, expect_freed,
                st.last.young, st.last.unreachable, st.last.collected, st.last.uncollectable,
                st.last.aborted);
    }
    printf("RESULT impl=%s test=%s n=%zu old=%zu workers=%u used_workers=%u ms=%.4f "
           "pause_ms=%.4f duration_ms=%.4f found=%zu expect=%zu freed=%zu candidates=%zu "
           "build_ms=%.3f ok=%d\n",
           opt_label, test, n, old, workers, st.last.workers, (double)(t1 - t0) / 1e6,
           (double)st.last.pause_ns / 1e6, (double)st.last.duration_ns / 1e6, found, expect,
           freed, st.last.candidates, build_ms, ok);
    fflush(stdout);
    if (opt_verbose)
        fprintf(stderr,
                "%s: collections=%" PRIu64 " (young %" PRIu64 ", full %" PRIu64 ") pause_total=%.3f ms "
                "pause_max=%.3f ms tracked_live=%zu\n",
                bench_prog, st.collections, st.young_collections, st.full_collections,
                (double)st.pause_total_ns / 1e6, (double)st.pause_max_ns / 1e6, st.tracked_live);
}

/* ------------------------------------------------------------------------
 * The tests
 * ------------------------------------------------------------------------ */
static void run_full(size_t n, unsigned workers, gnode **tmp) {
    start_runtime(workers);
    uint64_t t0 = bench_now_ns();
    gnode *root = build_graph(n, tmp);
    double build_ms = (double)(bench_now_ns() - t0) / 1e6;

    for (unsigned long k = 0; k < opt_warmup; k++) {
        size_t warm = rcgc_collect();       /* untimed: the graph is old now */
        if (warm != 0) {
            failures++;
            fprintf(stderr, "%s: warning: rcgc_collect on a live graph of %zu found %zu\n",
                    bench_prog, n, warm);
        }
    }
    timed_collect(0, "live", n, 0, workers, 0, 0, build_ms);
    rcgc_decref(root);      /* now N objects of cyclic garbage */
    timed_collect(0, "garbage", n, 0, workers, n, n, build_ms);
    rcgc_shutdown();
}

static void run_young(size_t old, size_t young, unsigned workers, gnode **tmp) {
    start_runtime(workers);
    gnode *old_root = NULL;
    double build_ms = 0;
    if (old) {
        uint64_t t0 = bench_now_ns();
        old_root = build_graph(old, tmp);
        build_ms = (double)(bench_now_ns() - t0) / 1e6;
    }
    rcgc_collect();         /* the old graph (if any) is old now */
    for (unsigned long r = 0; r < opt_young_reps; r++) {
        rcgc_decref(build_graph(young, tmp));
        timed_collect(1, "young", young, old, workers, young, young, build_ms);
    }
    if (old_root)
        rcgc_decref(old_root);
    rcgc_shutdown();
}

static unsigned parse_workers(const char *list, unsigned *out, unsigned max) {
    unsigned k = 0;
    const char *p = list;
    while (*p) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || v < 1 || v > 1024 || k == max)
            bench_die("--workers wants a comma-separated list of 1..1024, not '%s'", list);
        out[k++] = (unsigned)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            bench_die("--workers wants a comma-separated list of 1..1024, not '%s'", list);
    }
    if (k == 0)
        bench_die("--workers is empty");
    return k;
}

int main(int argc, char **argv) {
    bench_parse_options(argc, argv,
                        "Cycle collection time of rcgc (full and young) on a graph of two-field objects.",
                        options, sizeof options / sizeof options[0]);
    unsigned W[16];
    unsigned nw = parse_workers(opt_workers, W, 16);
    int young = strcmp(opt_test, "young") == 0;
    size_t cap = young ? (opt_old > opt_young ? opt_old : opt_young) : opt_n;
    gnode **tmp = malloc(cap * sizeof *tmp);
    if (!tmp)
        bench_die("no memory for %zu pointers", cap);

    for (unsigned long r = 0; r < opt_reps; r++) {
        for (unsigned k = 0; k < nw; k++) {
            unsigned w = W[(k + r + opt_rotate) % nw];
            if (!young) {
                run_full(opt_n, w, tmp);
            } else {
                /* with and without the old graph, taking turns */
                int first_none = (int)((r + opt_rotate) % 2);
                run_young(first_none ? 0 : opt_old, opt_young, w, tmp);
                run_young(first_none ? opt_old : 0, opt_young, w, tmp);
            }
        }
    }
    free(tmp);
    if (failures)
        fprintf(stderr, "%s: warning: %d measurement(s) found or freed the wrong number of objects\n",
                bench_prog, failures);
    return 0;
}
