/*
 * Weak references.
 *
 * Theory. A weak reference is a small record (from the calling thread's
 * raw heap) naming its referent. The records of one referent are found
 * through a hash table keyed by the referent's address, split into 64
 * stripes, each with its own lock and its own growing bucket array: the
 * object header has no room for a list head, and only objects with weak
 * references pay (a header bit, WEAKREFED, says to look).
 *
 * get against a dying referent. rcgc_weakref_get takes the referent's
 * stripe lock, checks the record still names it, and takes a reference
 * with try-incref (never from zero). A dying object's weak references are
 * cleared under the same lock before its memory is freed, so under the
 * lock the referent's header is valid memory, and a zero count means
 * "dying": get returns NULL. One more thing makes "zero" trustworthy: a
 * referent's shared count is moved out of the DEFAULT state when its first
 * weak reference is made, so its owner's last decref never takes the
 * "nobody else counted it: free at once" shortcut and always publishes the
 * death with a CAS that a concurrent try-incref either precedes (and keeps
 * the object alive) or sees (and fails).
 *
 * Callbacks and lifetime. A record holds one reference for its user and
 * one per pending callback; it is freed when both are gone, so a callback
 * never sees freed memory, even if the user frees the record meanwhile. A
 * record freed before its referent died gets no callback. A clear takes
 * the callback's reference before it publishes the cleared referent: a
 * free that reads NULL drops the user's reference without the lock.
 *
 * Locks: no stripe lock is held across a safepoint or an allocation that
 * may poll, so the collector can take them with the world stopped.
 */
#include <errno.h>
#include <string.h>

#include "gc.h"
#include "heap.h"

struct rcgc_weakref {
    void *_Atomic referent;             /* NULL once cleared */
    rcgc_weakref_cb cb;
    void *arg;
    struct rcgc_weakref *next;          /* bucket chain (stripe lock) */
    struct rcgc_weakref *cb_next;       /* pending callbacks (their runner) */
    _Atomic int refs;                   /* the user's, plus one per pending callback */
    _Atomic int freed;                  /* rcgc_weakref_free was called */
};

#define NSTRIPES 64
#define INITIAL_BUCKETS 16

typedef struct {
    _Alignas(64) pthread_mutex_t lock;
    rcgc_weakref **buckets;
    size_t nbuckets, count;
    rcgc_weakref *initial[INITIAL_BUCKETS];
} stripe;

static stripe stripes[NSTRIPES] = {
#define S_ {.lock = PTHREAD_MUTEX_INITIALIZER}
    S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_,
    S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_,
    S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_,
    S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_,
#undef S_
};

static inline uint64_t hash_ptr(const void *p) {
    uint64_t x = (uint64_t)(uintptr_t)p >> 4;
    x *= 0x9E3779B97F4A7C15ull;
    return x ^ (x >> 29);
}
static inline stripe *stripe_of(const void *o) { return &stripes[hash_ptr(o) >> 58]; }

/* Bucket arrays start embedded; set up lazily under the lock. */
static inline rcgc_weakref **bucket(stripe *s, const void *o) {
    if (!s->buckets) {
        s->buckets = s->initial;
        s->nbuckets = INITIAL_BUCKETS;
    }
    return &s->buckets[hash_ptr(o) & (s->nbuckets - 1)];
}

/* Double the bucket array of s if it is crowded. Allocates outside the
 * lock; no memory just means longer chains. */
static void maybe_grow(rcgc_thread *self, stripe *s) {
    pthread_mutex_lock(&s->lock);
    size_t n = s->nbuckets;
    bool crowded = s->count > 2 * n;
    pthread_mutex_unlock(&s->lock);
    if (!crowded)
        return;
    rcgc_weakref **nb = rcgc__heap_alloc(&self->heap, RCGC_TAG_RAW, 2 * n * sizeof *nb);
    if (!nb)
        return;
    memset(nb, 0, 2 * n * sizeof *nb);
    rcgc_weakref **old = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->nbuckets == n) {
        for (size_t i = 0; i < n; i++) {
            for (rcgc_weakref *w = s->buckets[i], *next; w; w = next) {
                next = w->next;
                rcgc_weakref **b = &nb[hash_ptr(atomic_load_explicit(&w->referent, memory_order_relaxed)) &
                                       (2 * n - 1)];
                w->next = *b;
                *b = w;
            }
        }
        old = s->buckets == s->initial ? NULL : s->buckets;
        s->buckets = nb;
        s->nbuckets = 2 * n;
        nb = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (nb)
        rcgc__heap_free(&self->heap, nb);
    if (old)
        rcgc__heap_free(&self->heap, old);
}

static void release(rcgc_weakref *w) {
    if (atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) == 1)
        rcgc__heap_free(&rcgc__thread_require("weak reference release")->heap, w);
}

rcgc_weakref *rcgc_weakref_new(void *o, rcgc_weakref_cb cb, void *arg) {
    rcgc_thread *self = rcgc__thread_require("rcgc_weakref_new");
    if (!o) {
        errno = EINVAL;
        return NULL;
    }
    rcgc__object_check(o, "rcgc_weakref_new of a pointer rcgc did not allocate");
    rcgc__header *h = rcgc__hdr(o);
    if (__atomic_load_n(&h->local, __ATOMIC_RELAXED) == RCGC__IMMORTAL) {
        errno = EINVAL;     /* never dies: a weak reference would never clear */
        return NULL;
    }
    if (rcgc__shared(h) == RCGC_SHARED_FREED)
        rcgc__object_fatal(o, "rcgc_weakref_new of a freed object");
    rcgc_weakref *w = rcgc__heap_alloc(&self->heap, RCGC_TAG_RAW, sizeof *w);
    if (!w)
        return NULL;        /* errno is ENOMEM */
    atomic_init(&w->referent, o);
    w->cb = cb;
    w->arg = arg;
    w->cb_next = NULL;
    atomic_init(&w->refs, 1);
    atomic_init(&w->freed, 0);

    /* Out of the DEFAULT state (see the theory), then the header bit. */
    intptr_t shared = rcgc__shared(h);
    while (RCGC_SHARED_STATE(shared) == RCGC_SHARED_DEFAULT &&
           !__atomic_compare_exchange_n(&h->shared, &shared, shared | RCGC_SHARED_WEAKREFS, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
    }
    __atomic_fetch_or(&h->gc, RCGC_GC_WEAKREFED, __ATOMIC_RELAXED);

    stripe *s = stripe_of(o);
    pthread_mutex_lock(&s->lock);
    rcgc_weakref **b = bucket(s, o);
    w->next = *b;
    *b = w;
    s->count++;
    pthread_mutex_unlock(&s->lock);
    maybe_grow(self, s);
    return w;
}

void *rcgc_weakref_get(rcgc_weakref *w) {
    rcgc__thread_require("rcgc_weakref_get");
    void *o = atomic_load_explicit(&w->referent, memory_order_acquire);
    if (!o)
        return NULL;
    stripe *s = stripe_of(o);
    void *r = NULL;
    pthread_mutex_lock(&s->lock);
    if (atomic_load_explicit(&w->referent, memory_order_relaxed) == o && rcgc__try_incref(rcgc__hdr(o)))
        r = o;
    pthread_mutex_unlock(&s->lock);
    return r;
}

/* Unlink w from its bucket (s locked, w names o). */
static void unlink_locked(stripe *s, rcgc_weakref *w, const void *o) {
    for (rcgc_weakref **p = bucket(s, o); *p; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            s->count--;
            return;
        }
    }
    RCGC_FATAL("weak reference %p not found in the table of its referent %p", (void *)w, o);
}

void rcgc_weakref_free(rcgc_weakref *w) {
    if (!w)
        return;
    rcgc__thread_require("rcgc_weakref_free");
    atomic_store_explicit(&w->freed, 1, memory_order_release);
    void *o = atomic_load_explicit(&w->referent, memory_order_acquire);
    if (o) {
        stripe *s = stripe_of(o);
        pthread_mutex_lock(&s->lock);
        if (atomic_load_explicit(&w->referent, memory_order_relaxed) == o) {
            unlink_locked(s, w, o);
            atomic_store_explicit(&w->referent, NULL, memory_order_release);
        }
        pthread_mutex_unlock(&s->lock);
    }
    release(w);
}

void (*_Atomic rcgc__weakref_clear_hook)(rcgc_weakref *w);

/* Clear every weak reference to the object at h; those with a callback
 * (and not freed) are pushed on *pending with a reference. */
static size_t clear_all(rcgc__header *h, rcgc_weakref **pending) {
    void *o = rcgc__obj(h);
    stripe *s = stripe_of(o);
    size_t n = 0;
    pthread_mutex_lock(&s->lock);
    for (rcgc_weakref **p = bucket(s, o); *p;) {
        rcgc_weakref *w = *p;
        if (atomic_load_explicit(&w->referent, memory_order_relaxed) != o) {
            p = &w->next;
            continue;
        }
        *p = w->next;
        s->count--;
        if (w->cb && !atomic_load_explicit(&w->freed, memory_order_acquire)) {
            void (*hook)(rcgc_weakref *) =
                atomic_load_explicit(&rcgc__weakref_clear_hook, memory_order_relaxed);
            if (rcgc_unlikely(hook != NULL))
                hook(w);
            atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
            w->cb_next = *pending;
            *pending = w;
            n++;
        }
        /* Last, and the last touch of w: a rcgc_weakref_free that reads
         * NULL here (acquire, pairs with this release) drops the user's
         * reference without the lock, so the callback's reference must be
         * taken before. Cleared first, the free could release the record
         * before the increment above, which then revived a freed record
         * that the callback runner freed again (weakref_stress: `pg->used
         * >= n` in page_collect). */
        atomic_store_explicit(&w->referent, NULL, memory_order_release);
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

void rcgc__weakref_run_callbacks(rcgc_weakref *pending) {
    while (pending) {
        rcgc_weakref *w = pending;
        pending = w->cb_next;
        w->cb_next = NULL;
        if (!atomic_load_explicit(&w->freed, memory_order_acquire))
            w->cb(w, w->arg);
        release(w);
    }
}

void rcgc__weakref_clear_dying(rcgc__header *h) {
    rcgc_weakref *pending = NULL;
    clear_all(h, &pending);
    rcgc__weakref_run_callbacks(pending);
}

size_t rcgc__weakref_clear_for_gc(rcgc__header *h, rcgc_weakref **pending) {
    return clear_all(h, pending);
}

void rcgc__weakref_shutdown(void) {
    /* Bucket arrays live in the heaps, which go with the arenas. */
    for (int i = 0; i < NSTRIPES; i++) {
        stripe *s = &stripes[i];
        pthread_mutex_lock(&s->lock);
        s->buckets = NULL;
        s->nbuckets = 0;
        s->count = 0;
        memset(s->initial, 0, sizeof s->initial);
        pthread_mutex_unlock(&s->lock);
    }
}
