/*
 * Deferred frees behind QSBR grace periods (see qsbr.h).
 *
 * Theory. Each thread fills a batch of blocks to free; a full batch is
 * handed to liburcu's call_rcu, whose worker thread runs our callback after
 * a grace period. The callback does not free (the worker is not an rcgc
 * thread and has no heap): it pushes the batch on `ready`, a ck_stack that
 * any attached thread drains at its next quiescent state, freeing each
 * block into its page (locally or as a remote free).
 *
 * Grace periods need every online thread to report quiescent states. Our
 * threads report in their safepoint slow path; to
 * keep a grace period from waiting on a thread that only runs fast paths, a
 * thread that submits a batch sets RCGC_POLL_QSBR in every thread's poll
 * word, so each reports at its next rcgc_safepoint(). Threads in blocking
 * regions or suspended by a pause are offline.
 *
 * ThreadSanitizer cannot see liburcu's synchronisation (it is not
 * instrumented), so we tell it: every quiescent state releases `tsan_gp`,
 * and the callback acquires it. That is the happens-before liburcu really
 * provides: everything a reader did before its quiescent state happens
 * before the memory's reuse.
 */
#include <errno.h>
#include <urcu-qsbr.h>

#include "qsbr.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RCGC_TSAN 1
#endif
#endif
#ifdef RCGC_TSAN
#include <sanitizer/tsan_interface.h>
static char tsan_gp;

/* liburcu is not instrumented, so ThreadSanitizer cannot see the
 * synchronisation inside it and reports races between its own threads
 * (for example calloc in urcu_qsbr_barrier against free in its call_rcu
 * worker). This names that library only; reports in rcgc's code are never
 * suppressed. A program with its own __tsan_default_suppressions must add
 * these lines to it (TSAN_OPTIONS=suppressions=... works as well). */
const char *__tsan_default_suppressions(void) {
    return "called_from_lib:liburcu-qsbr.so.8\n"
           "called_from_lib:liburcu-common.so.8\n";
}
#define GP_RELEASE() __tsan_release(&tsan_gp)
#define GP_ACQUIRE() __tsan_acquire(&tsan_gp)
#else
#define GP_RELEASE() ((void)0)
#define GP_ACQUIRE() ((void)0)
#endif

#define BATCH_CAP 120

typedef struct rcgc_qsbr_batch {
    struct rcu_head rcu;        /* liburcu's link: first, so the callback can cast */
    ck_stack_entry_t ready;     /* on `ready` once the grace period is over */
    size_t n;
    void *blocks[BATCH_CAP];
} rcgc_qsbr_batch;

static ck_stack_t ready = CK_STACK_INITIALIZER;
static _Atomic size_t pending_blocks;

static rcgc_qsbr_batch *batch_of_ready(ck_stack_entry_t *e) {
    return (rcgc_qsbr_batch *)((char *)e - offsetof(rcgc_qsbr_batch, ready));
}

/* Runs on liburcu's call_rcu thread after a grace period. */
static void batch_grace_over(struct rcu_head *head) {
    GP_ACQUIRE();
    rcgc_qsbr_batch *b = (rcgc_qsbr_batch *)head;
    rcgc__stack_push(&ready, &b->ready);
}

static void free_batch(rcgc_thread *t, rcgc_qsbr_batch *b) {
    for (size_t i = 0; i < b->n; i++)
        rcgc__heap_free(&t->heap, b->blocks[i]);
    atomic_fetch_sub_explicit(&pending_blocks, b->n, memory_order_relaxed);
    rcgc__heap_free(&t->heap, b);
}

static void drain_ready(rcgc_thread *t) {
    if (rcgc__stack_empty(&ready))
        return;
    ck_stack_entry_t *e = rcgc__stack_pop_all(&ready);
    while (e) {
        ck_stack_entry_t *next = e->next;
        free_batch(t, batch_of_ready(e));
        e = next;
    }
}

static void request_quiescence(rcgc_thread *t, void *arg) {
    (void)arg;
    rcgc__poll_request(t, RCGC_POLL_QSBR);
}

static void submit(rcgc_thread *t) {
    rcgc_qsbr_batch *b = t->qsbr_batch;
    if (!b)
        return;
    t->qsbr_batch = NULL;
    call_rcu(&b->rcu, batch_grace_over);
    rcgc__thread_foreach(request_quiescence, NULL);
}

void rcgc__qsbr_defer_free(rcgc_thread *t, rcgc__header *h) {
    rcgc_qsbr_batch *b = t->qsbr_batch;
    if (!b) {
        b = rcgc__heap_alloc(&t->heap, RCGC_TAG_RAW, sizeof *b);
        if (!b) {
            /* No memory for a batch: wait for a grace period right here
             * (offline, so that we do not wait for ourselves), then free. */
            rcgc__qsbr_pause(t);
            synchronize_rcu();
            GP_ACQUIRE();
            rcgc__qsbr_resume(t);
            rcgc__heap_free(&t->heap, h);
            return;
        }
        b->n = 0;
        t->qsbr_batch = b;
        t->qsbr_batch_age = 0;
    }
    b->blocks[b->n++] = h;
    atomic_fetch_add_explicit(&pending_blocks, 1, memory_order_relaxed);
    if (b->n == BATCH_CAP)
        submit(t);
}

/* A partial batch is submitted after this many quiescent states, so that a
 * thread that frees few SHARED_READ objects does not keep them forever. */
#define BATCH_MAX_AGE 16

void rcgc__qsbr_quiescent(rcgc_thread *t) {
    if (t->qsbr_batch && ++t->qsbr_batch_age >= BATCH_MAX_AGE)
        submit(t);
    if (t->qsbr_online) {
        GP_RELEASE();
        rcu_quiescent_state();
    }
    drain_ready(t);
}

void rcgc__qsbr_thread_online(rcgc_thread *t) {
    rcu_register_thread();
    t->qsbr_online = 1;
}

void rcgc__qsbr_thread_offline(rcgc_thread *t) {
    submit(t);
    drain_ready(t);
    rcgc__qsbr_resume(t);   /* liburcu unregisters online threads */
    GP_RELEASE();
    rcu_unregister_thread();
    t->qsbr_online = 0;
}

void rcgc__qsbr_pause(rcgc_thread *t) {
    if (t->qsbr_online) {
        GP_RELEASE();
        rcu_thread_offline();
        t->qsbr_online = 0;
    }
}

void rcgc__qsbr_resume(rcgc_thread *t) {
    if (!t->qsbr_online) {
        rcu_thread_online();
        t->qsbr_online = 1;
    }
}

void rcgc__qsbr_barrier(void) {
    rcgc_thread *t = rcgc__tls_thread;
    if (t) {
        submit(t);
        rcgc__qsbr_pause(t);
    }
    rcu_barrier();      /* every callback has run: all batches are on `ready` */
    GP_ACQUIRE();
    if (t) {
        rcgc__qsbr_resume(t);
        drain_ready(t);
    }
}

size_t rcgc__qsbr_pending(void) { return atomic_load_explicit(&pending_blocks, memory_order_relaxed); }
