/*
 * Raw memory from the per-thread heaps: rcgc_malloc and friends.
 */
#include <errno.h>
#include <string.h>

#include "thread.h"
#include "trace.h"

/* Tracing on: allocate, then record. Out of line, so that the untraced
 * path below stays a tail call into the heap (a frame and a test of p on
 * every rcgc_malloc cost 15% of a malloc/free pair). */
static RCGC_NOINLINE void *malloc_traced(rcgc_thread *t, size_t size, void *ra) {
    void *p = rcgc__heap_alloc(&t->heap, RCGC_TAG_RAW, size);
    if (p)
        rcgc__trace_on_alloc(t, p, size, NULL, ra);
    return p;
}

/* `ra`: the caller's return address, the allocation site for tracing. */
static inline void *malloc_at(size_t size, void *ra) {
    rcgc_thread *t = rcgc__thread_require("rcgc_malloc");
    rcgc_safepoint();   /* allocating threads cannot hold up a pause */
    if (rcgc_unlikely(rcgc__trace_active()))
        return malloc_traced(t, size, ra);
    return rcgc__heap_alloc(&t->heap, RCGC_TAG_RAW, size);
}

void *rcgc_malloc(size_t size) { return malloc_at(size, __builtin_return_address(0)); }

void *rcgc_calloc(size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = malloc_at(total, __builtin_return_address(0));
    if (p)
        memset(p, 0, total);
    return p;
}

/* A pointer that is not a block start of an rcgc heap: fatal, naming it. */
RCGC_COLD __attribute__((noreturn)) static void bad_free(const void *p, const char *why) {
    RCGC_FATAL("rcgc_free(%p): %s", p, why);
}

/* Traced raw blocks are alive: drop p's record if it has one, then free. */
static RCGC_NOINLINE void free_traced(rcgc_thread *t, void *p) {
    rcgc__trace_on_free_raw(p);
    rcgc__heap_free(&t->heap, p);
}

void rcgc_free(void *p) {
    if (!p)
        return;
    rcgc_thread *t = rcgc__thread_require("rcgc_free");
    /* Cheap checks that stay on in release builds: alignment, and that p
     * lies in an arena (one bitmap load, inline); a block in a released
     * page is caught on the slow path. The block-start check costs a
     * division and runs at debug level 2. */
    if (rcgc_unlikely(((uintptr_t)p & (RCGC_ALIGN - 1)) != 0))
        bad_free(p, "pointer is not 16-byte aligned, so rcgc did not allocate it");
    if (rcgc_unlikely(!rcgc__arena_mapped(p)))
        bad_free(p, "pointer is not in any rcgc arena (not allocated by rcgc, or already released)");
#if RCGC_DEBUG_LEVEL >= 2
    if (rcgc__heap_block_start(p) != p)
        bad_free(p, "pointer is not at the start of a block (inside one, or its span was freed)");
#endif
    if (rcgc_unlikely(rcgc__trace_raw_maybe()))
        return free_traced(t, p);     /* a tail call: the fast path keeps no registers */
    rcgc__heap_free(&t->heap, p);
}

size_t rcgc_usable_size(const void *p) {
    if (!p)
        return 0;
    if (!rcgc__arena_owns(p))
        RCGC_FATAL("rcgc_usable_size(%p): pointer is not in any rcgc arena", p);
    return rcgc__block_size(p);
}

int rcgc_owns(const void *p) {
    return p && rcgc__heap_block_start(p) == p;
}

void rcgc_heap_collect(void) {
    rcgc_thread *t = rcgc__thread_require("rcgc_heap_collect");
    rcgc__heap_collect(&t->heap);
    rcgc__arena_purge_all();
}
