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
};

static inline rcgc__header *rcgc__hdr(const void *o) { return (rcgc__header *)o - 1; }
static inline void *rcgc__obj(rcgc__header *h) { return h + 1; }

static inline uintptr_t rcgc__owner(const rcgc__header *h) {
    return __atomic_load_n(&h->owner, __ATOMIC_RELAXED);
}
static inline intptr_t rcgc__shared(const rcgc__header *h) {
    return __atomic_load_n(&h->shared, __ATOMIC_RELAXED);
}

/* Death: clear, destroy, free — queued, not recursed (object.c). */
void rcgc__object_dealloc(void *o);
struct rcgc_thread;
/* Run the deaths queued on the thread's trash list (when none is running). */
void rcgc__object_trash_drain(struct rcgc_thread *self);
/* Describe o for a fatal message: address, type, counts, owner. */
int  rcgc__object_describe(const void *o, char *buf, size_t n);
/* Fatal misuse on o (message names the object). */
RCGC_COLD __attribute__((noreturn)) void rcgc__object_fatal(const void *o, const char *what);
/* Check that o could be a live rcgc object (slow paths). */
void rcgc__object_check(const void *o, const char *what);

#endif
