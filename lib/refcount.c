/*
 * Biased reference counting: the slow paths and the merge queues.
 * After Choi, Shull and Torrellas, "Biased Reference Counting" (PACT 2018),
 * as CPython's free-threaded build uses it.
 *
 * Theory. An object's true count is local + count(shared) - q, where q is 1
 * while the object sits in its owner's merge queue and 0 otherwise:
 *
 *  - the owner changes `local` with plain (relaxed) stores; everybody else
 *    adds to or subtracts from `shared` atomically;
 *  - a non-owner whose decrement would take a zero shared count below zero
 *    does not subtract: it marks the object QUEUED and hands it to the
 *    owner's merge queue. The queue holds that reference (q = 1), so a
 *    queued object cannot die before its owner looks at it. Further
 *    non-owner decrements may take the count negative; local + count stays
 *    at least 1 while q = 1;
 *  - the owner merges at its next safepoint: shared := (local + count - 1)
 *    with state MERGED, owner := UNOWNED; from then on all counting is
 *    atomic on `shared`, and whoever takes a merged count to zero frees it;
 *  - when the owner's local count reaches zero it frees the object if
 *    `shared` is exactly 0 (no other references, no flags), else gives up
 *    ownership (merge with nothing to subtract).
 *
 * Owners that go: a detaching thread merges every object it owns, walking
 * its own pages, so no live object names it as owner once its state is
 * recycled; then it marks its queue dead and drains it. The walk runs
 * while other threads work: they may free unowned objects on those pages
 * meanwhile (a freed block's first word, the owner field, becomes a
 * free-list link, stored atomically; it never equals a thread), and they
 * may change shared counts (merge uses a CAS). Nobody else allocates on the
 * thread's pages, and nobody else can own an object it allocated. A thread
 * that finds a dead queue merges the object itself: the owner is gone, so
 * nobody else writes `local`. A pusher that read an owner pointer just
 * before the owner detached and was recycled pushes onto the new thread's
 * queue: harmless, because merging is keyed by the object's state, not by
 * the queue it was found in.
 *
 * If a queue push cannot allocate memory, the pusher stops the world and
 * merges the object itself while the owner is suspended (CPython does the
 * same).
 */
#include <errno.h>
#include <string.h>

#include "object.h"
#include "gc.h"
#include "safepoint.h"
#include "thread.h"

/* ------------------------------------------------------------------------
 * Object stacks (merge queues)
 * ------------------------------------------------------------------------ */

int rcgc__objstack_push(rcgc_objstack *s, void *o) {
    rcgc_objstack_chunk *c = s->top;
    if (!c || c->n == RCGC_OBJSTACK_CHUNK) {
        rcgc_thread *self = rcgc__tls_thread;
        if (self)
            c = rcgc__heap_alloc(&self->heap, RCGC_TAG_RAW, sizeof *c);
        else
            c = NULL;
        if (!c)
            return ENOMEM;
        c->n = 0;
        c->prev = s->top;
        s->top = c;
    }
    c->items[c->n++] = o;
    return 0;
}

void *rcgc__objstack_pop(rcgc_objstack *s) {
    rcgc_objstack_chunk *c = s->top;
    while (c && c->n == 0) {
        s->top = c->prev;
        rcgc__heap_free(&rcgc__tls_thread->heap, c);
        c = s->top;
    }
    return c ? c->items[--c->n] : NULL;
}

/* ------------------------------------------------------------------------
 * Misuse checks (slow paths only)
 * ------------------------------------------------------------------------ */

static rcgc_thread *require_attached(const void *o, const char *what) {
    rcgc_thread *t = rcgc__tls_thread;
    if (rcgc_unlikely(!t))
        rcgc__object_fatal(o, what);    /* the message says "not attached" */
    return t;
}

/* ------------------------------------------------------------------------
 * Merging
 * ------------------------------------------------------------------------ */

/* Fold local into shared, state MERGED, and add `extra`. Safe against
 * concurrent non-owner changes to `shared`; the caller is the owner, or the
 * owner is gone or suspended. Returns the merged count; the caller frees the
 * object when it is 0.
 *
 * The CAS that publishes MERGED makes the object countable to zero by any
 * thread, after which it may be freed at once; so the CAS takes one extra
 * reference, the stores to local and owner happen under it, and only then
 * is it dropped (a fetch_sub, whose result says whether the object died). */
intptr_t rcgc__merge(rcgc__header *h, intptr_t extra) {
    intptr_t shared = rcgc__shared(h);
    intptr_t count;
    for (;;) {
        if (RCGC_SHARED_STATE(shared) == RCGC_SHARED_MERGED) {
            /* Already merged (by the owner's detach, or by a pusher that
             * found its queue dead): only apply extra. */
            if (extra == 0)
                return RCGC_SHARED_COUNT(shared);
            intptr_t old = __atomic_fetch_add(&h->shared, extra * RCGC_SHARED_ONE, __ATOMIC_ACQ_REL);
            count = RCGC_SHARED_COUNT(old) + extra;
            if (rcgc_unlikely(count < 0 || old == RCGC_SHARED_FREED))
                rcgc__object_fatal(rcgc__obj(h), "reference count below zero while merging");
            return count;
        }
        uint32_t local = __atomic_load_n(&h->local, __ATOMIC_RELAXED);
        count = (intptr_t)local + RCGC_SHARED_COUNT(shared) + extra;
        if (rcgc_unlikely(count < 0))
            rcgc__object_fatal(rcgc__obj(h), "reference count below zero while merging");
        intptr_t desired = (count + 1) * RCGC_SHARED_ONE | RCGC_SHARED_MERGED;
        if (__atomic_compare_exchange_n(&h->shared, &shared, desired, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED))
            break;
    }
    __atomic_store_n(&h->local, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&h->owner, RCGC__UNOWNED, __ATOMIC_RELAXED);
    intptr_t old = __atomic_fetch_sub(&h->shared, RCGC_SHARED_ONE, __ATOMIC_ACQ_REL);
    return RCGC_SHARED_COUNT(old) - 1;
}

/* A merge that may find the object dead: free it then. */
static void merge_and_maybe_free(rcgc__header *h, intptr_t extra) {
    if (extra < 0)
        rcgc__gc_may_root(h);
    if (rcgc__merge(h, extra) == 0)
        rcgc__object_dealloc(rcgc__obj(h));
}

/* The owner's local count went 1 -> 0 (or was 0: misuse). */
RCGC_NOINLINE void rcgc__decref_local_slow(void *o) {
    rcgc__header *h = rcgc__hdr(o);
    if (rcgc_unlikely(__atomic_load_n(&h->local, __ATOMIC_RELAXED) == 0))
        rcgc__object_fatal(o, "rcgc_decref: reference count below zero (owner's count was 0)");
    __atomic_store_n(&h->local, 0, __ATOMIC_RELAXED);
    intptr_t shared = __atomic_load_n(&h->shared, __ATOMIC_ACQUIRE);
    if (shared == 0) {
        /* Nobody else ever counted it: the fast way out. */
        rcgc__object_dealloc(o);
        return;
    }
    rcgc__gc_may_root(h);   /* others still count it */
    /* Give up ownership: owner first, so that an UNOWNED owner always means
     * a merged count to anyone who looks (CPython gh-121794). */
    __atomic_store_n(&h->owner, RCGC__UNOWNED, __ATOMIC_RELAXED);
    intptr_t desired;
    do {
        desired = (shared & ~(intptr_t)RCGC_SHARED_STATE_MASK) | RCGC_SHARED_MERGED;
    } while (!__atomic_compare_exchange_n(&h->shared, &shared, desired, false, __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
    if (desired == RCGC_SHARED_MERGED)
        rcgc__object_dealloc(o);
    else if (rcgc_unlikely(RCGC_SHARED_COUNT(desired) < 0))
        rcgc__object_fatal(o, "rcgc_decref: reference count below zero");
}

/* ------------------------------------------------------------------------
 * Non-owner counting
 * ------------------------------------------------------------------------ */

RCGC_NOINLINE void rcgc__incref_shared(void *o) {
    rcgc__header *h = rcgc__hdr(o);
    require_attached(o, "rcgc_incref");
    rcgc__object_check(o, "rcgc_incref of a pointer rcgc did not allocate");
    intptr_t old = __atomic_fetch_add(&h->shared, RCGC_SHARED_ONE, __ATOMIC_RELAXED);
    if (rcgc_unlikely(RCGC_SHARED_STATE(old) == RCGC_SHARED_MERGED && RCGC_SHARED_COUNT(old) <= 0)) {
        /* A merged object with no references is dead or being freed. */
        __atomic_fetch_sub(&h->shared, RCGC_SHARED_ONE, __ATOMIC_RELAXED);
        rcgc__object_fatal(o, old == RCGC_SHARED_FREED ? "rcgc_incref of a freed object"
                                                       : "rcgc_incref of an object whose count is zero");
    }
}

static void queue_to_owner(rcgc__header *h);

RCGC_NOINLINE void rcgc__decref_shared(void *o) {
    rcgc__header *h = rcgc__hdr(o);
    require_attached(o, "rcgc_decref");
    rcgc__object_check(o, "rcgc_decref of a pointer rcgc did not allocate");
    intptr_t shared = rcgc__shared(h);
    intptr_t desired;
    bool queue;
    /* Before the decrement, while our reference keeps it alive: if it is
     * not the last, it may leave cyclic garbage (if it is, death takes
     * the mark back). */
    if (shared != RCGC_SHARED_FREED)
        rcgc__gc_may_root(h);
    do {
        if (rcgc_unlikely(shared == RCGC_SHARED_FREED))
            rcgc__object_fatal(o, "rcgc_decref of a freed object");
        /* Zero shared count, owner still counting: don't go negative, ask
         * the owner to merge (the queue keeps this reference). */
        queue = shared == 0 || shared == RCGC_SHARED_WEAKREFS;
        desired = queue ? (intptr_t)RCGC_SHARED_QUEUED : shared - RCGC_SHARED_ONE;
        if (rcgc_unlikely(RCGC_SHARED_STATE(desired) == RCGC_SHARED_MERGED &&
                          RCGC_SHARED_COUNT(desired) < 0))
            rcgc__object_fatal(o, "rcgc_decref: reference count below zero");
    } while (!__atomic_compare_exchange_n(&h->shared, &shared, desired, false, __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
    if (queue)
        queue_to_owner(h);
    else if (desired == RCGC_SHARED_MERGED)
        rcgc__object_dealloc(o);
}

/* ------------------------------------------------------------------------
 * Merge queues
 * ------------------------------------------------------------------------ */

static void queue_to_owner(rcgc__header *h) {
    rcgc_thread *owner = (rcgc_thread *)rcgc__owner(h);
    if (owner == (rcgc_thread *)RCGC__UNOWNED || owner == NULL) {
        /* Merged meanwhile: just apply our decrement. */
        merge_and_maybe_free(h, -1);
        return;
    }
    pthread_mutex_lock(&owner->mq_lock);
    if (owner->mq_dead) {
        /* The owner has gone (and merged what it owned): merge ourselves. */
        pthread_mutex_unlock(&owner->mq_lock);
        merge_and_maybe_free(h, -1);
        return;
    }
    int err = rcgc__objstack_push(&owner->mq, rcgc__obj(h));
    if (!err)
        rcgc__poll_request(owner, RCGC_POLL_MERGE);
    pthread_mutex_unlock(&owner->mq_lock);
    if (err) {
        /* No memory for the queue: merge with the owner suspended, and free
         * (which runs user code) only once the world runs again. */
        rcgc__stop_the_world();
        intptr_t n = rcgc__merge(h, -1);
        rcgc__start_the_world();
        if (n == 0)
            rcgc__object_dealloc(rcgc__obj(h));
    }
}

void rcgc__merge_queue_drain(rcgc_thread *t) {
    for (;;) {
        pthread_mutex_lock(&t->mq_lock);
        void *o = rcgc__objstack_pop(&t->mq);
        pthread_mutex_unlock(&t->mq_lock);
        if (!o)
            break;
        merge_and_maybe_free(rcgc__hdr(o), -1);
    }
}

/* ------------------------------------------------------------------------
 * Detach: merge everything the thread owns
 * ------------------------------------------------------------------------ */

typedef struct {
    rcgc_thread *self;
    size_t merged;
} owned_ctx;

static int merge_if_owned(void *block, size_t size, void *arg) {
    (void)size;
    owned_ctx *ctx = arg;
    rcgc__header *h = block;
    /* Owner first: a block freed meanwhile has a link there, never us. */
    if (rcgc__owner(h) == (uintptr_t)ctx->self &&
        __atomic_load_n(&h->local, __ATOMIC_RELAXED) != RCGC__IMMORTAL) {
        /* Other threads may drop references while we merge, so the object
         * can die here; rcgc__merge_owned defers the death past the walk. */
        if (rcgc__merge(h, 0) == 0)
            rcgc__object_dealloc(rcgc__obj(h));
        ctx->merged++;
    }
    return 0;
}

static int merge_large_owned(rcgc_page *pg, void *arg) {
    /* `used` is read atomically: another thread may be freeing the block
     * (it drops `used` before it takes the arena lock to free the span). */
    if (pg->kind == RCGC_PAGE_LARGE && pg->tag != RCGC_TAG_RAW &&
        __atomic_load_n(&pg->used, __ATOMIC_RELAXED))
        merge_if_owned(pg->start, 0, arg);
    return 0;
}

/* Called by t itself, while attached (see the theory above). */
size_t rcgc__merge_owned(rcgc_thread *t) {
    owned_ctx ctx = {t, 0};
    /* Deaths found by the walk must not free blocks (and maybe pages) under
     * it: with dealloc_depth raised they queue on the trash list. */
    t->dealloc_depth++;
    for (unsigned tag = RCGC_TAG_OBJ; tag <= RCGC_TAG_GC; tag++)
        rcgc__heap_visit_own(&t->heap, tag, merge_if_owned, &ctx);
    rcgc__arena_foreach_span(merge_large_owned, &ctx);
    t->dealloc_depth--;
    rcgc__object_trash_drain(t);
    return ctx.merged;
}

void rcgc__merge_queue_close(rcgc_thread *t) {
    pthread_mutex_lock(&t->mq_lock);
    t->mq_dead = 1;
    pthread_mutex_unlock(&t->mq_lock);
    rcgc__merge_queue_drain(t);
}
