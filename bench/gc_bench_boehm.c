/*
 * gc_bench_boehm: the peer of gc_bench (bench/gc_bench.c) in Boehm GC
 * (Debian's libgc, a conservative mark-sweep collector): GC_gcollect() on
 * the same graph (bench/lib/gc_graph.h), GC_MALLOC'd two-pointer nodes.
 * A benchmark, not a test.
 *
 *   gc_bench_boehm [--n=N] [--markers=M] [--reps=R] [--warmup=K]
 *
 * One marker count per process (Boehm reads it once, before GC_INIT):
 * --markers=M calls GC_set_markers_count(M) and, for M > 1, starts the
 * marker threads (GC_start_mark_threads; a program with no other thread
 * would otherwise mark alone). Per repetition:
 *   1. build the graph with collection off (GC_disable: the nodes are only
 *      in a malloc'd index array meanwhile, which Boehm does not scan);
 *   2. GC_gcollect() --warmup times (default 8), untimed. gc_bench does
 *      one; Boehm needs more to reach its steady state: its mark stack
 *      starts small (8192 entries here), this graph's depth-first marking
 *      overflows it, and each collection that overflows recovers by
 *      rescanning the heap and doubles the stack once (GC_PRINT_STATS
 *      shows "Mark stack overflow" and "Grew mark stack"; at N = 10^6 it
 *      settled at 131072 entries after 5 collections): after one warm-up
 *      a live collection of 10^6 took 90-130 ms, after 8 about 67 ms;
 *   3. "live": time GC_gcollect() with the root in a global;
 *   4. "garbage": clear the global, time GC_gcollect().
 * Boehm's costs differ from rcgc's in kind: it scans the stacks, registers
 * and data segments conservatively, and it sweeps lazily, so blocks with
 * some garbage are swept by later allocations, outside the timed call
 * (blocks left entirely empty are freed in it). Every node is a 16-byte
 * request; with interior pointers on (the default) Boehm adds a byte and
 * rounds it to 32.
 *
 * Output: RESULT lines with the keys of gc_bench's (impl=boehm; pause_ms =
 * ms: Boehm stops the world for the whole collection). found/expect: bytes
 * the collection gave back (heap minus free bytes, before and after) over
 * the allocation granule of a node, an estimate; ok=0 with a warning when
 * live objects disappeared or garbage stayed (more than 1 %: the
 * conservative scan may keep a little).
 */
#define GC_THREADS 1
#define GC_NO_THREAD_REDIRECTS 1
#include <gc/gc.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/lib/bench_util.h"
#include "bench/lib/gc_graph.h"

static unsigned long opt_n = 1000000;
static unsigned long opt_markers = 1;
static unsigned long opt_reps = 1;
static unsigned long opt_warmup = 8;

static const bench_opt options[] = {
    { "n", BENCH_OPT_ULONG, &opt_n, 2, 1ul << 32, NULL, "objects in the graph", NULL },
    { "markers", BENCH_OPT_ULONG, &opt_markers, 1, 64, NULL,
      "marker threads (GC_set_markers_count)", NULL },
    { "reps", BENCH_OPT_ULONG, &opt_reps, 1, 1000, NULL, "repetitions", NULL },
    { "warmup", BENCH_OPT_ULONG, &opt_warmup, 0, 100, NULL,
      "untimed collections between the build and the timed ones", NULL },
};

typedef struct gnode {
    struct gnode *a, *b;
} gnode;

/* The root, where the conservative scan finds it (data segment). */
static gnode *volatile g_root;

/* Build into g_root. noinline: no pointer into the graph is left in this
 * frame's registers or slots for main's later scans to find. */
__attribute__((noinline)) static void build_graph(size_t n, gnode **tmp) {
    GC_disable();
    for (size_t i = 0; i < n; i++) {
        tmp[i] = GC_MALLOC(sizeof(gnode));
        if (!tmp[i])
            bench_die("GC_MALLOC failed at object %zu of %zu", i, n);
    }
    for (size_t i = 0; i < n; i++) {
        size_t a, b;
        int a_tree, b_tree;
        gc_graph_edges(i, n, &a, &a_tree, &b, &b_tree);
        tmp[i]->a = tmp[a];
        tmp[i]->b = tmp[b];
    }
    g_root = tmp[0];
    for (size_t i = 0; i < n; i++)  /* not scanned anyway; no stale copies */
        tmp[i] = NULL;
    GC_enable();
}

static size_t heap_used(void) {
    struct GC_prof_stats_s s;
    GC_get_prof_stats(&s, sizeof s);
    return (size_t)(s.heapsize_full - s.free_bytes_full);
}

/* Clobber the stack below main's frame, where build_graph's locals were. */
__attribute__((noinline)) static void scrub_stack(void) {
    volatile char buf[16384];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = 0;
}

static int failures;

static void timed(const char *test, size_t n, size_t expect, double build_ms) {
    size_t before = heap_used();
    uint64_t t0 = bench_now_ns();
    GC_gcollect();
    uint64_t t1 = bench_now_ns();
    size_t after = heap_used();
    size_t gran = GC_get_all_interior_pointers() ? 32 : 16;   /* a node's block */
    size_t found = before > after ? (before - after) / gran : 0;
    /* live: nothing may go; garbage: at least 99 % must */
    int ok = expect == 0 ? found <= n / 100 : found >= expect - expect / 100;
    if (!ok) {
        failures++;
        fprintf(stderr, "%s: warning: %s n=%zu: about %zu nodes reclaimed, expected %zu\n",
                bench_prog, test, n, found, expect);
    }
    double ms = (double)(t1 - t0) / 1e6;
    printf("RESULT impl=boehm test=%s n=%zu old=0 workers=%lu used_workers=%d ms=%.4f "
           "pause_ms=%.4f duration_ms=%.4f found=%zu expect=%zu heap_mb=%.1f build_ms=%.3f "
           "ok=%d version=%u.%u.%u\n",
           test, n, opt_markers, GC_get_parallel() + 1, ms, ms, ms, found, expect,
           (double)GC_get_heap_size() / 1048576.0, build_ms, ok, GC_VERSION_MAJOR,
           GC_VERSION_MINOR, GC_VERSION_MICRO);
    fflush(stdout);
}

int main(int argc, char **argv) {
    bench_parse_options(argc, argv, "Boehm GC's GC_gcollect on gc_bench's graph.", options,
                        sizeof options / sizeof options[0]);
    GC_set_markers_count((unsigned)opt_markers);
    GC_INIT();
    if (opt_markers > 1)
        GC_start_mark_threads();
    size_t n = opt_n;
    gnode **tmp = malloc(n * sizeof *tmp);
    if (!tmp)
        bench_die("no memory for %zu pointers", n);
    for (unsigned long r = 0; r < opt_reps; r++) {
        uint64_t t0 = bench_now_ns();
        build_graph(n, tmp);
        double build_ms = (double)(bench_now_ns() - t0) / 1e6;
        scrub_stack();
        for (unsigned long k = 0; k < opt_warmup; k++)
            GC_gcollect();  /* untimed, as gc_bench's warm-up (more of them: see above) */
        timed("live", n, 0, build_ms);
        g_root = NULL;
        scrub_stack();
        timed("garbage", n, n, build_ms);
    }
    free(tmp);
    if (failures)
        fprintf(stderr, "%s: warning: %d measurement(s) reclaimed the wrong amount\n", bench_prog,
                failures);
    return 0;
}
