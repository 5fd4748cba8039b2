/*
 * Objects: header helpers, collector bits, allocation and death.
 *
 * The header layout is public (include/rcgc.h, rcgc__header) because the
 * counting fast paths are inline. Who writes what:
 *   owner   the owner (merge); the collector during a pause
 *   local   the owner only
 *   gc      the allocating thread before the object is shared; afterwards
 *           only with the world stopped, or with atomics (RCGC_GC_* below)
 *   shared  anyone, atomically
 *   type    the allocating thread, before the object is shared
 */
#ifndef RCGC_OBJECT_H
#define RCGC_OBJECT_H

#include "internal.h"

#define RCGC_HEADER_SIZE sizeof(rcgc__header)
_Static_assert(sizeof(rcgc__header) == 32, "the header is 32 bytes");
_Static_assert(offsetof(rcgc__header, shared) == 2 * sizeof(intptr_t),
               "heap.c marks free object blocks through the word at offset 16");

/* States of the shared count (low two bits). */
enum {
    RCGC_SHARED_DEFAULT  = 0,
    RCGC_SHARED_WEAKREFS = 1,   /* may have weak references: check on death */
    RCGC_SHARED_QUEUED   = 2,   /* queued to its owner for a merge */
    RCGC_SHARED_MERGED   = 3,   /* owner gone: all counting is atomic */
    RCGC_SHARED_STATE_MASK = 3,
};
#define RCGC_SHARED_ONE ((intptr_t)1 << RCGC__SHARED_SHIFT)
#define RCGC_SHARED_COUNT(v) ((v) >> RCGC__SHARED_SHIFT)    /* arithmetic shift: signed */
#define RCGC_SHARED_STATE(v) ((int)((v) & RCGC_SHARED_STATE_MASK))
/* Written into `shared` when an object is freed: a merged, hugely negative
 * count that every slow path recognises as "freed". */
#define RCGC_SHARED_FREED (INTPTR_MIN | RCGC_SHARED_MERGED)

/* Collector bits (header `gc`). */
enum {
    RCGC_GC_TRACKED   = 1u << 0,  /* type has traverse: a collector candidate */
    RCGC_GC_FINALIZED = 1u << 1,  /* finalize has run (PEP 442: once) */
    RCGC_GC_FROZEN    = 1u << 2,  /* rcgc_gc_freeze: never a candidate */
    RCGC_GC_SHARED_READ = 1u << 3,/* memory reuse waits a QSBR grace period */
    RCGC_GC_YOUNG     = 1u << 4,  /* allocated since the last collection */
    RCGC_GC_WEAKREFED = 1u << 5,  /* a weak reference was made to it (weakref.c) */
    RCGC_GC_TRACED    = 1u << 6,  /* allocation tracing holds a record of it (trace.c) */
    RCGC_GC_PURPLE    = 1u << 7,  /* a possible root: a decrement left it alive (gc.c) */
    /* Transient, during a collection (gc.c): */
    RCGC_GC_CANDIDATE = 1u << 8,  /* `owner` holds gc_refs, then a mark-stack link */
    RCGC_GC_REACHABLE = 1u << 9,  /* marked; meaningful only with CANDIDATE */
    RCGC_GC_OWNED     = 1u << 10, /* `owner` was a thread (its page's heap) before */
    RCGC_GC_CLAIMED   = 1u << 11, /* marked, and someone took on traversing it */
    RCGC_GC_TRANSIENT = RCGC_GC_CANDIDATE | RCGC_GC_REACHABLE | RCGC_GC_OWNED | RCGC_GC_CLAIMED,
};

_Static_assert(RCGC_GC_TRACKED == RCGC__GC_TRACKED && RCGC_GC_PURPLE == RCGC__GC_PURPLE,
               "rcgc.h's inline decrement reads the same bits");

static inline rcgc__header *rcgc__hdr(const void *o) { return (rcgc__header *)o - 1; }
static inline void *rcgc__obj(rcgc__header *h) { return h + 1; }

static inline uintptr_t rcgc__owner(const rcgc__header *h) {
    return __atomic_load_n(&h->owner, __ATOMIC_RELAXED);
}
static inline intptr_t rcgc__shared(const rcgc__header *h) {
    return __atomic_load_n(&h->shared, __ATOMIC_RELAXED);
}
static inline uint32_t rcgc__gcbits(const rcgc__header *h) {
    return __atomic_load_n(&h->gc, __ATOMIC_RELAXED);
}

/* Fold the owner's count into `shared` (state MERGED, owner UNOWNED) and
 * add `extra`; returns the merged count. The caller is the owner, or the
 * owner is gone or suspended (refcount.c). */
intptr_t rcgc__merge(rcgc__header *h, intptr_t extra);
/* Take a reference unless the object is dying (count zero); never revives
 * a zero. For lock-free loads and weak references (object.c). */
bool rcgc__try_incref(rcgc__header *h);

/* Death: clear, destroy, free — queued, not recursed (object.c). */
void rcgc__object_dealloc(void *o);
struct rcgc_thread;
/* Run the deaths queued on the thread's trash list (when none is running). */
void rcgc__object_trash_drain(struct rcgc_thread *self);
/* Describe o for a fatal message: address, type, counts, owner. */
int  rcgc__object_describe(const void *o, char *buf, size_t n);
/* Fatal misuse on o (message names the object, and where the caller is). */
RCGC_COLD __attribute__((noreturn)) void rcgc__object_fatal_at(const char *file, int line,
                                                               const char *func, const void *o,
                                                               const char *what);
#define rcgc__object_fatal(o, what) rcgc__object_fatal_at(__FILE__, __LINE__, __func__, (o), (what))
/* Check that o could be a live rcgc object (slow paths). */
void rcgc__object_check_at(const char *file, int line, const char *func, const void *o,
                           const char *what);
#define rcgc__object_check(o, what) rcgc__object_check_at(__FILE__, __LINE__, __func__, (o), (what))

#endif
