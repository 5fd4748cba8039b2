/*
 * Objects: creation, death (with a trashcan), slots, lock-free loads,
 * introspection and misuse reports.
 *
 * Death. When a count reaches zero the object's type gets `clear` (drop
 * references), then `destroy` (release non-managed resources), then the
 * memory is freed. References that `clear` drops may kill further objects;
 * those deaths are queued on the thread's trash list (linked through the
 * dead objects' owner fields) and handled by the loop that is already
 * running, so freeing a chain of any length uses constant C stack (CPython's
 * trashcan, without its depth limit).
 *
 * Lock-free readers (rcgc_load_ref). An object of an RCGC_TYPE_SHARED_READ
 * type starts with the WEAKREFS state in `shared`, so its owner never takes
 * the "shared == 0: free at once" shortcut: the owner's last decref merges
 * with a CAS, which orders it against a reader's CAS increment. A reader
 * increments only a count that is not zero-and-merged, then checks the
 * slot still holds the object (try-incref-compare, as CPython). The memory
 * of such objects is reused only after a QSBR grace period (qsbr.c), so a
 * reader may look at a header whose object has just died.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gc.h"
#include "object.h"
#include "qsbr.h"
#include "safepoint.h"
#include "thread.h"
#include "trace.h"

/* ------------------------------------------------------------------------
 * Creation
 * ------------------------------------------------------------------------ */

/* rcgc_new and rcgc_new_var; `ra` is the caller's return address (the
 * allocation site for tracing). */
static inline void *new_object(const rcgc_type *t, size_t size, void *ra) {
    rcgc_thread *self = rcgc__thread_require("rcgc_new");
    if (rcgc_unlikely(!t)) {
        errno = EINVAL;
        return NULL;
    }
    if (rcgc_unlikely(size > SIZE_MAX - RCGC_HEADER_SIZE)) {
        errno = ENOMEM;
        return NULL;
    }
    /* Allocation polls: a thread that allocates cannot hold up a pause. */
    rcgc_safepoint();
    unsigned tag = t->traverse ? RCGC_TAG_GC : RCGC_TAG_OBJ;
    rcgc__header *h = rcgc__heap_alloc(&self->heap, tag, RCGC_HEADER_SIZE + size);
    if (rcgc_unlikely(!h))
        return NULL;    /* errno is ENOMEM */
    memset(h + 1, 0, size);
    bool shared_read = (t->flags & RCGC_TYPE_SHARED_READ) != 0;
    h->local = 1;
    __atomic_store_n(&h->gc,
                     (t->traverse ? RCGC_GC_TRACKED | RCGC_GC_YOUNG : 0) |
                         (shared_read ? RCGC_GC_SHARED_READ : 0),
                     __ATOMIC_RELAXED);
    h->type = t;
    __atomic_store_n(&h->shared, shared_read ? (intptr_t)RCGC_SHARED_WEAKREFS : 0, __ATOMIC_RELAXED);
    __atomic_store_n(&h->owner, (uintptr_t)self, __ATOMIC_RELAXED);
    if (t->traverse)
        rcgc__gc_count_alloc(self);
    rcgc__trace_on_alloc(self, h + 1, RCGC_HEADER_SIZE + size, t, ra);
    return h + 1;
}

void *rcgc_new_var(const rcgc_type *t, size_t size) {
    return new_object(t, size, __builtin_return_address(0));
}

void *rcgc_new(const rcgc_type *t) {
    if (t && t->size == 0) {
        errno = EINVAL;     /* variable-size types go through rcgc_new_var */
        return NULL;
    }
    return new_object(t, t ? t->size : 0, __builtin_return_address(0));
}

/* ------------------------------------------------------------------------
 * Death
 * ------------------------------------------------------------------------ */

static void release_memory(rcgc_thread *self, rcgc__header *h) {
    bool shared_read = (h->gc & RCGC_GC_SHARED_READ) != 0;
    /* Poison the count so that a late incref or decref is reported. */
    __atomic_store_n(&h->shared, RCGC_SHARED_FREED, __ATOMIC_RELEASE);
    if (shared_read)
        rcgc__qsbr_defer_free(self, h);
    else
        rcgc__heap_free(&self->heap, h);
}

RCGC_NOINLINE void rcgc__object_dealloc(void *o) {
    rcgc_thread *self = rcgc__thread_require("object deallocation");
    rcgc__header *h = rcgc__hdr(o);
    /* A second death (before clear and destroy run on freed memory). */
    if (rcgc_unlikely(rcgc__shared(h) == RCGC_SHARED_FREED))
        rcgc__object_fatal(o, "object death of an object already freed (it died twice)");
    if (self->dealloc_depth > 0) {
        /* A death inside a death: queue it, the running loop takes it. */
        __atomic_store_n(&h->owner, (uintptr_t)self->trash, __ATOMIC_RELAXED);
        self->trash = h;
        return;
    }
    self->dealloc_depth = 1;
    for (;;) {
        const rcgc_type *t = h->type;
        uint32_t gc = rcgc__gcbits(h);
        if (rcgc_unlikely(gc & (RCGC_GC_WEAKREFED | RCGC_GC_FROZEN | RCGC_GC_TRACED))) {
            if (gc & RCGC_GC_WEAKREFED)
                rcgc__weakref_clear_dying(h);  /* callbacks run here, before clear */
            if (gc & RCGC_GC_FROZEN)
                rcgc__gc_frozen_died();
            if (gc & RCGC_GC_TRACED)
                rcgc__trace_free_object(h);
        }
        if (gc & RCGC_GC_TRACKED)
            rcgc__gc_count_dealloc(self, gc);
        if (t->clear)
            t->clear(rcgc__obj(h));
        if (t->destroy)
            t->destroy(rcgc__obj(h));
        release_memory(self, h);
        h = self->trash;
        if (!h)
            break;
        self->trash = (rcgc__header *)rcgc__owner(h);
    }
    self->dealloc_depth = 0;
}

void rcgc__object_trash_drain(rcgc_thread *self) {
    rcgc__header *h = self->trash;
    if (!h || self->dealloc_depth > 0)
        return;
    self->trash = (rcgc__header *)rcgc__owner(h);
    rcgc__object_dealloc(rcgc__obj(h));     /* takes the rest of the list too */
}

/* ------------------------------------------------------------------------
 * Slots and lock-free loads
 * ------------------------------------------------------------------------ */

void rcgc_set(void **slot, void *value) {
    if (value)
        rcgc_incref(value);
    void *old = __atomic_exchange_n(slot, value, __ATOMIC_ACQ_REL);
    if (old)
        rcgc_decref(old);
}

/* Take a reference unless the object is dying; never revives a zero. */
bool rcgc__try_incref(rcgc__header *h) {
    uint32_t local = __atomic_load_n(&h->local, __ATOMIC_RELAXED);
    if (local == RCGC__IMMORTAL)
        return true;
    if (rcgc__owner(h) == (uintptr_t)rcgc__tls_thread) {
        if (local == 0)
            return false;   /* the owner's own object, dying on this thread */
        __atomic_store_n(&h->local, local + 1, __ATOMIC_RELAXED);
        return true;
    }
    intptr_t shared = __atomic_load_n(&h->shared, __ATOMIC_ACQUIRE);
    for (;;) {
        /* Zero and merged (or freed): dying. Zero in the default state: the
         * owner may free it without a CAS, so it cannot be revived either. */
        if (shared == 0 || shared == RCGC_SHARED_MERGED || shared == RCGC_SHARED_FREED)
            return false;
        if (__atomic_compare_exchange_n(&h->shared, &shared, shared + RCGC_SHARED_ONE, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return true;
    }
}

void *rcgc_load_ref(void *const *slot) {
    rcgc__thread_require("rcgc_load_ref");
    for (unsigned tries = 0;; tries++) {
        void *o = __atomic_load_n((void **)slot, __ATOMIC_ACQUIRE);
        if (!o)
            return NULL;
        rcgc__header *h = rcgc__hdr(o);
        if (rcgc_unlikely(!(__atomic_load_n(&h->gc, __ATOMIC_RELAXED) & RCGC_GC_SHARED_READ) &&
                          __atomic_load_n(&h->local, __ATOMIC_RELAXED) != RCGC__IMMORTAL))
            rcgc__object_fatal(o, "rcgc_load_ref on an object whose type lacks RCGC_TYPE_SHARED_READ "
                                  "(its memory could be reused under the reader)");
        if (rcgc__try_incref(h)) {
            if (__atomic_load_n((void **)slot, __ATOMIC_ACQUIRE) == o)
                return o;
            rcgc_decref(o);     /* replaced meanwhile: try the new value */
            continue;
        }
        /* Dying. A writer that replaced it (rcgc_set stores before it
         * drops) has made the slot change; a slot that still holds a dead
         * object after many tries means its reference was dropped without
         * clearing the slot. */
        if (tries > 1000000 && __atomic_load_n((void **)slot, __ATOMIC_ACQUIRE) == o)
            rcgc__object_fatal(o, "rcgc_load_ref: the slot holds an object whose count reached zero "
                                  "(a reference was dropped without clearing the slot)");
    }
}

/* ------------------------------------------------------------------------
 * Introspection
 * ------------------------------------------------------------------------ */

size_t rcgc_refcount(const void *o) {
    const rcgc__header *h = rcgc__hdr(o);
    uint32_t local = __atomic_load_n(&h->local, __ATOMIC_RELAXED);
    if (local == RCGC__IMMORTAL)
        return RCGC__IMMORTAL;
    intptr_t shared = rcgc__shared(h);
    intptr_t n = (intptr_t)local + RCGC_SHARED_COUNT(shared) -
                 (RCGC_SHARED_STATE(shared) == RCGC_SHARED_QUEUED);
    return n > 0 ? (size_t)n : 0;
}

const rcgc_type *rcgc_typeof(const void *o) { return rcgc__hdr(o)->type; }

int rcgc_is_immortal(const void *o) {
    return __atomic_load_n(&rcgc__hdr(o)->local, __ATOMIC_RELAXED) == RCGC__IMMORTAL;
}

void rcgc_immortalize(void *o) {
    rcgc_thread *self = rcgc__thread_require("rcgc_immortalize");
    rcgc__header *h = rcgc__hdr(o);
    uintptr_t owner = rcgc__owner(h);
    if (owner != (uintptr_t)self && owner != RCGC__UNOWNED)
        rcgc__object_fatal(o, "rcgc_immortalize must be called by the object's owner (or once it is "
                              "merged)");
    __atomic_store_n(&h->local, RCGC__IMMORTAL, __ATOMIC_RELAXED);
    __atomic_store_n(&h->owner, RCGC__UNOWNED, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------------
 * Misuse reports
 * ------------------------------------------------------------------------ */

static const char *state_name(intptr_t shared) {
    if (shared == RCGC_SHARED_FREED)
        return "freed";
    static const char *names[] = {"default", "may-have-weakrefs", "queued", "merged"};
    return names[RCGC_SHARED_STATE(shared)];
}

/* The collector bits a reader of the message can use. */
static void describe_gc_bits(uint32_t gc, char *buf, size_t n) {
    static const struct { uint32_t bit; const char *name; } bits[] = {
        {RCGC_GC_TRACKED, "tracked"},     {RCGC_GC_YOUNG, "young"},
        {RCGC_GC_FROZEN, "frozen"},       {RCGC_GC_FINALIZED, "finalized"},
        {RCGC_GC_WEAKREFED, "weakly referenced"}, {RCGC_GC_SHARED_READ, "shared-read"},
    };
    int k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
        if ((gc & bits[i].bit) && k >= 0 && (size_t)k < n)
            k += snprintf(buf + k, n - (size_t)k, "%s%s", k ? ", " : "", bits[i].name);
    if (k == 0)
        snprintf(buf, n, "untracked");
}

int rcgc__object_describe(const void *o, char *buf, size_t n) {
    if (!o)
        return snprintf(buf, n, "object NULL");
    if (((uintptr_t)o & (RCGC_ALIGN - 1)) || !rcgc__arena_owns((const rcgc__header *)o - 1))
        return snprintf(buf, n, "pointer %p: not an object allocated by rcgc (not in any rcgc "
                                "arena, misaligned, or in a page that is not in use)", o);
    const rcgc__header *h = rcgc__hdr(o);
    intptr_t shared = rcgc__shared(h);
    uintptr_t owner = rcgc__owner(h);
    uint32_t gc = rcgc__gcbits(h);
    const rcgc_type *t = h->type;
    /* The type field survives a free (the free-list link takes the owner
     * field); a value inside an arena is a link, not a type. */
    const char *tname = t && ((uintptr_t)t & 7) == 0 && !rcgc__arena_mapped(t) && t->name ? t->name : "?";
    if (shared == RCGC_SHARED_FREED)
        return snprintf(buf, n, "object %p of type '%s': already freed (its memory may have been "
                                "reused since): local count: freed, shared count: freed, owner "
                                "none",
                        o, tname);
    char owner_s[120];
    char oname[32] = "";
    uint64_t serial;
    long tid;
    int found;
    if (gc & RCGC_GC_CANDIDATE)
        snprintf(owner_s, sizeof owner_s, "field holds the collector's count %ld (a collection "
                                          "is running)", (long)(intptr_t)owner);
    else if (owner == RCGC__UNOWNED)
        snprintf(owner_s, sizeof owner_s, "none (counts merged)");
    else if ((found = rcgc__thread_lookup(owner, &serial, &tid, oname, sizeof oname)))
        snprintf(owner_s, sizeof owner_s, "rcgc thread #%llu '%s' (tid %ld)%s",
                 (unsigned long long)serial, oname, tid,
                 found == 2 ? ", which has detached" : "");
    else
        snprintf(owner_s, sizeof owner_s, "unknown (%#lx: not an attached thread)",
                 (unsigned long)owner);
    char flags[96];
    describe_gc_bits(gc, flags, sizeof flags);
    return snprintf(buf, n, "object %p of type '%s' (%s): local count %u, shared count %ld (%s), "
                            "owner %s",
                    o, tname, flags, __atomic_load_n(&h->local, __ATOMIC_RELAXED),
                    (long)RCGC_SHARED_COUNT(shared), state_name(shared), owner_s);
}

void rcgc__object_fatal_at(const char *file, int line, const char *func, const void *o,
                           const char *what) {
    char desc[640];
    rcgc__object_describe(o, desc, sizeof desc);
    if (!rcgc__tls_thread)
        rcgc__fatal(file, line, func,
                    "%s from a thread that is not attached (call rcgc_thread_attach first)\n  %s",
                    what, desc);
    rcgc__fatal(file, line, func, "%s\n  %s", what, desc);
}

void rcgc__object_check_at(const char *file, int line, const char *func, const void *o,
                           const char *what) {
    if (rcgc_unlikely(((uintptr_t)o & (RCGC_ALIGN - 1)) != 0 ||
                      !rcgc__arena_owns((const rcgc__header *)o - 1)))
        rcgc__object_fatal_at(file, line, func, o, what);
}
