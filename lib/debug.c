/*
 * RCGC_DEBUG: reports for people, at shutdown (stats, leaks) and the
 * collector's save-all mode from the start (saveall); rcgc_stats_print.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "internal.h"
#include "trace.h"

enum {
    DEBUG_STATS   = 1u << 0,
    DEBUG_LEAKS   = 1u << 1,
    DEBUG_SAVEALL = 1u << 2,
};

static const struct {
    const char *word;
    unsigned flag;
} words[] = {
    {"stats", DEBUG_STATS},
    {"leaks", DEBUG_LEAKS},
    {"saveall", DEBUG_SAVEALL},
};

/* Set by rcgc_init, read by rcgc_shutdown (both under the lifecycle lock). */
static unsigned debug_flags;

/* "stats,leaks" -> flags; an unknown word is named on stderr and ignored. */
static unsigned parse(const char *s) {
    unsigned flags = 0;
    while (s && *s) {
        size_t n = strcspn(s, ", ");
        if (n) {
            unsigned f = 0;
            for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
                if (strlen(words[i].word) == n && strncmp(s, words[i].word, n) == 0)
                    f = words[i].flag;
            if (!f)
                fprintf(stderr, "rcgc: %s: unknown report '%.*s' ignored (known: stats, leaks, saveall)\n",
                        rcgc__option_str_name(RCGC_SOPT_DEBUG), (int)n, s);
            flags |= f;
        }
        s += n;
        s += strspn(s, ", ");
    }
    return flags;
}

static void leak_report(FILE *out);

void rcgc__debug_init(void) {
    debug_flags = parse(rcgc__option_str(RCGC_SOPT_DEBUG));
    if (debug_flags & DEBUG_SAVEALL)
        rcgc_gc_set_debug(rcgc_gc_get_debug() | RCGC_GC_DEBUG_SAVEALL);
}

void rcgc__debug_before_shutdown(void) {
    if (debug_flags & DEBUG_LEAKS) {
        /* What a last collection cannot free is what leaked. rcgc_shutdown
         * collects once more, which then finds nothing. */
        rcgc_collect();
        leak_report(stderr);
    }
}

void rcgc__debug_after_collection(void) {
    if (debug_flags & DEBUG_STATS)
        rcgc_stats_print(stderr);
    debug_flags = 0;
}

/* ------------------------------------------------------------------------
 * Leaks: the live objects by type, and their allocation sites when
 * tracing is on.
 * ------------------------------------------------------------------------ */

static void leak_report(FILE *out) {
    rcgc_objgraph_count *c = NULL;
    size_t n = 0;
    int err = rcgc_objgraph_counts(&c, &n);
    if (err) {
        fprintf(out, "rcgc: RCGC_DEBUG=leaks: no report: %s\n", strerror(err));
        return;
    }
    size_t objects = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        objects += c[i].count;
        bytes += c[i].bytes;
    }
    rcgc_stats s;
    rcgc_stats_get(&s);
    size_t other = s.blocks_in_use > objects ? s.blocks_in_use - objects : 0;
    fprintf(out, "rcgc: RCGC_DEBUG=leaks: %zu object(s) of %zu type(s) alive at shutdown, after a "
                 "last collection (%.1f KiB); %zu other block(s) in use (rcgc_malloc, and rcgc's own)\n",
            objects, n, (double)bytes / 1024, other);
    if (n)
        fprintf(out, "  %10s %12s  type\n", "objects", "bytes");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "  %10zu %12zu  %s%s\n", c[i].count, c[i].bytes,
                c[i].type && c[i].type->name ? c[i].type->name : "?",
                c[i].type && !c[i].type->traverse ? " (untracked)" : "");
    free(c);
    if (rcgc_trace_is_tracing())
        rcgc__trace_print_sites(out, 3);
    else if (objects || other)
        fprintf(out, "  (set RCGC_TRACE=8 to see where they were allocated)\n");
}

/* ------------------------------------------------------------------------
 * rcgc_stats_print
 * ------------------------------------------------------------------------ */

static void mib(FILE *out, const char *what, size_t bytes) {
    fprintf(out, "  %-26s %12.2f MiB\n", what, (double)bytes / (1024.0 * 1024.0));
}

static void num(FILE *out, const char *what, unsigned long long v) {
    fprintf(out, "  %-26s %12llu\n", what, v);
}

static void ms(FILE *out, const char *what, uint64_t ns) {
    fprintf(out, "  %-26s %12.3f ms\n", what, (double)ns / 1e6);
}

int rcgc_stats_print(FILE *out) {
    if (!out)
        return EINVAL;
    rcgc_stats s;
    rcgc_gc_stats g;
    rcgc_stats_get(&s);
    rcgc_gc_get_stats(&g);
    fprintf(out, "rcgc statistics\n memory\n");
    mib(out, "reserved", s.bytes_reserved);
    mib(out, "committed", s.bytes_committed);
    mib(out, "in use", s.bytes_in_use);
    num(out, "arenas", s.arenas);
    num(out, "pages", s.pages);
    num(out, "pages abandoned", s.pages_abandoned);
    num(out, "blocks in use", s.blocks_in_use);
    num(out, "large blocks in use", s.large_in_use);
    num(out, "allocations", s.allocs_total);
    num(out, "frees", s.frees_total);
    num(out, "remote frees", s.remote_frees_total);
    fprintf(out, " blocks by size class\n");
    for (size_t i = 0; i < s.nclasses; i++)
        if (s.by_class[i].block_size && (s.by_class[i].blocks_in_use || s.by_class[i].pages))
            fprintf(out, "  %6zu B %14zu blocks %8zu pages\n", s.by_class[i].block_size,
                    s.by_class[i].blocks_in_use, s.by_class[i].pages);
    fprintf(out, " threads and pauses\n");
    num(out, "threads attached", s.threads_attached);
    num(out, "pauses", s.pauses);
    ms(out, "time to safepoint p50", s.ttsp_p50_ns);
    ms(out, "time to safepoint p99", s.ttsp_p99_ns);
    ms(out, "time to safepoint max", s.ttsp_max_ns);
    ms(out, "pause max", s.pause_max_ns);
    ms(out, "pause total", s.pause_total_ns);
    num(out, "watchdog reports", s.watchdog_reports);
    fprintf(out, " cycle collector\n");
    num(out, "collections", g.collections);
    num(out, "  young", g.young_collections);
    num(out, "  full", g.full_collections);
    num(out, "  aborted (no memory)", g.aborted);
    num(out, "unreachable found", g.unreachable);
    num(out, "collected", g.collected);
    num(out, "uncollectable", g.uncollectable);
    num(out, "finalized", g.finalized);
    num(out, "resurrected", g.resurrected);
    num(out, "tracked objects", g.tracked_live);
    num(out, "frozen", g.frozen);
    ms(out, "collector pause max", g.pause_max_ns);
    ms(out, "collector pause total", g.pause_total_ns);
    if (rcgc_trace_is_tracing()) {
        size_t cur, peak;
        rcgc_trace_get_traced_memory(&cur, &peak);
        fprintf(out, " allocation tracing%s\n", rcgc_trace_is_tracing() == 2 ? " (sampled: estimates)" : "");
        mib(out, "traced now", cur);
        mib(out, "traced peak", peak);
        mib(out, "tracer's own memory", rcgc_trace_get_overhead());
    }
    return ferror(out) ? EIO : 0;
}
