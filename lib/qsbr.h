/*
 * Deferred reuse of freed object memory (liburcu, QSBR flavour).
 *
 * Memory of RCGC_TYPE_SHARED_READ objects is freed only after a grace
 * period: once every attached thread has passed a quiescent state (a
 * safepoint slow path, an allocation slow path, a blocking region, a
 * pause), no lock-free reader can still hold a pointer it loaded before the
 * object died. Frees are batched: one grace period per batch, not per
 * object.
 */
#ifndef RCGC_QSBR_H
#define RCGC_QSBR_H

#include "thread.h"

void rcgc__qsbr_thread_online(rcgc_thread *t);   /* attach: register with liburcu */
void rcgc__qsbr_thread_offline(rcgc_thread *t);  /* detach: flush, unregister */
void rcgc__qsbr_pause(rcgc_thread *t);           /* entering a blocking region / suspension */
void rcgc__qsbr_resume(rcgc_thread *t);
/* A quiescent state: the thread holds no pointer loaded from a shared slot.
 * Also frees the batches whose grace period has ended. */
void rcgc__qsbr_quiescent(rcgc_thread *t);
/* Free h's block once a grace period has passed. */
void rcgc__qsbr_defer_free(rcgc_thread *t, rcgc__header *h);
/* Shutdown: wait for every pending batch and free them. */
void rcgc__qsbr_barrier(void);
/* Blocks waiting for a grace period (statistics, tests). */
size_t rcgc__qsbr_pending(void);

#endif
