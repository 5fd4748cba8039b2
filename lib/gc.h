/*
 * The cycle collector (gc.c) and weak references (weakref.c): internal
 * entry points for the other layers.
 */
#ifndef RCGC_GC_H
#define RCGC_GC_H

#include "object.h"
#include "thread.h"

/* Counting tracked objects (the automatic trigger). Allocation and death
 * change the thread's buffered delta; every RCGC_GC_COUNT_BATCH the
 * buffer goes to the global count, which may request a collection. */
#define RCGC_GC_COUNT_BATCH 64
void rcgc__gc_count_flush(rcgc_thread *t);
static inline void rcgc__gc_count_alloc(rcgc_thread *t) {
    if (rcgc_unlikely(++t->gc_delta >= RCGC_GC_COUNT_BATCH))
        rcgc__gc_count_flush(t);
}
/* A tracked object died; gc its collector bits as it died. The collector's
 * own frees change only the possible roots. */
static inline void rcgc__gc_count_dealloc(rcgc_thread *t, uint32_t gc) {
    if (rcgc_unlikely(gc & RCGC_GC_PURPLE) && --t->gc_purple <= -RCGC_GC_COUNT_BATCH)
        rcgc__gc_count_flush(t);
    if (t->gc_collecting)
        return;
    t->gc_old_deaths += !(gc & RCGC_GC_YOUNG);
    if (rcgc_unlikely(--t->gc_delta <= -RCGC_GC_COUNT_BATCH))
        rcgc__gc_count_flush(t);
}

/* A reference to h is being dropped, and h may stay alive: mark it a
 * possible root (rcgc.h's owner decrement does the same inline). The
 * caller still holds the reference. */
static inline void rcgc__gc_may_root(rcgc__header *h) {
    if (rcgc_unlikely((rcgc__gcbits(h) & (RCGC_GC_TRACKED | RCGC_GC_PURPLE)) == RCGC_GC_TRACKED))
        rcgc__possible_root(rcgc__obj(h));
}

/* A frozen object died (rcgc_gc_get_freeze_count counts live ones). */
void rcgc__gc_frozen_died(void);

/* The safepoint slow path saw RCGC_POLL_GC: run the automatic collection. */
void rcgc__gc_collect_auto(rcgc_thread *t);

/* Life cycle (runtime.c): init after the registry; shutdown collects,
 * drops saved garbage and stops the collector threads. */
void rcgc__gc_init(void);
void rcgc__gc_shutdown(void);
void rcgc__gc_stats(size_t *tracked, uint64_t *collections);

/* Snapshots for the profiling tools (objgraph.c). begin takes the
 * collector's lock (unless this thread's collection is running its
 * finalizers or callbacks: then it returns true, "nested", for end) and
 * stops the world; one snapshot or collection at a time. In between,
 * rcgc__gc_walk calls fn on every live object (counted or immortal) on the
 * pages of `tags`, a mask of 1u << RCGC_TAG_OBJ / RCGC_TAG_GC: 0 or
 * ENOMEM (fn not called). */
bool rcgc__gc_snapshot_begin(rcgc_thread *self);
void rcgc__gc_snapshot_end(bool nested);
int  rcgc__gc_walk(unsigned tags, void (*fn)(rcgc__header *h, void *arg), void *arg);

/* Weak references (weakref.c). */
/* o's count reached zero and it has (had) weak references: clear them and
 * run their callbacks, before its clear/destroy (object.c). */
void rcgc__weakref_clear_dying(rcgc__header *h);
/* With the world stopped: clear o's weak references; their callbacks are
 * appended to *pending (linked by the weakref), run later by
 * rcgc__weakref_run_callbacks. Returns how many were queued. */
size_t rcgc__weakref_clear_for_gc(rcgc__header *h, rcgc_weakref **pending);
void rcgc__weakref_run_callbacks(rcgc_weakref *pending);
void rcgc__weakref_shutdown(void);
/* Testing only (weakref_test), NULL otherwise: called by the thread that
 * clears w (stripe lock held) once it has decided that w gets a callback,
 * before it takes the callback's reference on w. */
extern void (*_Atomic rcgc__weakref_clear_hook)(rcgc_weakref *w);

#endif
