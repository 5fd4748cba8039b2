/*
 * Statistics: per-thread counters merged into one view, plus what the
 * arenas and page descriptors say.
 *
 * Pages count a block freed by another thread as in use until the page's
 * owner collects it; the frees still in flight are known from the freeing
 * threads' counters and the owners' collected totals, and are subtracted
 * from the totals (not from the per-class figures, which stay per page).
 */
#include <string.h>

#include "gc.h"
#include "heap.h"
#include "qsbr.h"
#include "safepoint.h"
#include "thread.h"

static int add_span(rcgc_page *pg, void *arg) {
    rcgc_stats *s = arg;
    if (pg->kind == RCGC_PAGE_META || pg->block_size == 0)
        return 0;
    size_t used = __atomic_load_n(&pg->used, __ATOMIC_RELAXED);
    s->pages++;
    if (pg->kind == RCGC_PAGE_LARGE) {
        s->large_in_use += used;
        s->blocks_in_use += used;
        s->bytes_in_use += used * (size_t)pg->nslices * RCGC_SLICE_SIZE;
        return 0;
    }
    rcgc_class_stats *c = &s->by_class[pg->size_class];
    c->pages++;
    c->blocks_in_use += used;
    s->blocks_in_use += used;
    s->bytes_in_use += used * (size_t)pg->block_size;
    return 0;
}

static void add_counters(rcgc_stats *s, size_t *remote_bytes, const size_t c[RCGC_RETIRED_NSTATS]) {
    s->allocs_total += c[0];
    s->frees_total += c[1];
    s->remote_frees_total += c[2];
    *remote_bytes += c[3];
}

typedef struct {
    rcgc_stats *s;
    size_t remote_bytes;
} thread_ctx;

static void add_thread(rcgc_thread *t, void *arg) {
    thread_ctx *ctx = arg;
    size_t c[RCGC_RETIRED_NSTATS];
    rcgc__thread_heap_stats(t, c);
    add_counters(ctx->s, &ctx->remote_bytes, c);
    ctx->s->threads_attached++;
    ctx->s->safepoint_slow_polls += atomic_load_explicit(&t->polls_slow, memory_order_relaxed);
}

static size_t sub_floor(size_t a, size_t b) { return a > b ? a - b : 0; }

void rcgc_stats_get(rcgc_stats *out) {
    memset(out, 0, sizeof *out);
    /* Collected counts first: a batch collected after we read the pushers'
     * counters could otherwise be subtracted without having been added. */
    size_t coll_blocks, coll_bytes;
    rcgc__heap_collected_remote(&coll_blocks, &coll_bytes);

    rcgc__arena_stats(&out->bytes_reserved, &out->bytes_committed, &out->arenas);
    out->nclasses = RCGC_NCLASSES;
    for (unsigned c = 0; c < RCGC_NCLASSES; c++)
        out->by_class[c].block_size = rcgc__class_size[c];
    rcgc__arena_foreach_span(add_span, out);
    out->pages_abandoned = rcgc__heap_abandoned_pages();

    thread_ctx ctx = {out, 0};
    rcgc__thread_foreach(add_thread, &ctx);
    size_t retired[RCGC_RETIRED_NSTATS];
    rcgc__thread_retired_stats(retired);
    add_counters(out, &ctx.remote_bytes, retired);

    rcgc_pause_stats ps;
    rcgc__pause_stats(&ps);
    out->pauses = ps.pauses;
    out->ttsp_p50_ns = ps.ttsp_p50_ns;
    out->ttsp_p99_ns = ps.ttsp_p99_ns;
    out->ttsp_max_ns = ps.ttsp_max_ns;
    out->pause_max_ns = ps.pause_max_ns;
    out->pause_total_ns = ps.pause_total_ns;
    out->watchdog_reports = ps.watchdog_reports;
    out->objects_shared_read_pending = rcgc__qsbr_pending();
    rcgc__gc_stats(&out->objects_tracked, &out->gc_collections);

    /* Frees in flight: pushed by other threads, not yet collected. */
    out->blocks_in_use = sub_floor(out->blocks_in_use, sub_floor(out->remote_frees_total, coll_blocks));
    out->bytes_in_use = sub_floor(out->bytes_in_use, sub_floor(ctx.remote_bytes, coll_bytes));
    /* The free fast path counts nothing: frees are what was allocated and
     * is no longer in use (exact when the threads are quiet). */
    out->frees_total = sub_floor(out->allocs_total, out->blocks_in_use);
}

typedef struct {
    rcgc_thread_stats *out;
    size_t max, n;
} threads_ctx;

static void add_thread_stats(rcgc_thread *t, void *arg) {
    threads_ctx *ctx = arg;
    if (ctx->n < ctx->max) {
        rcgc_thread_stats *o = &ctx->out[ctx->n];
        size_t c[RCGC_RETIRED_NSTATS];
        rcgc__thread_heap_stats(t, c);
        memset(o, 0, sizeof *o);
        o->serial = t->serial;
        o->tid = (long)t->tid;
        memcpy(o->name, t->name, sizeof o->name);
        o->safepoint_slow_polls = atomic_load_explicit(&t->polls_slow, memory_order_relaxed);
        o->pause_requests = __atomic_load_n(&t->stw_requests, __ATOMIC_RELAXED);
        o->allocs = c[0];
        o->frees = 0;       /* per-thread frees are not counted (see rcgc.h) */
    }
    ctx->n++;
}

size_t rcgc_stats_threads(rcgc_thread_stats *out, size_t max) {
    threads_ctx ctx = {out, max, 0};
    rcgc__thread_foreach(add_thread_stats, &ctx);
    return ctx.n;
}
