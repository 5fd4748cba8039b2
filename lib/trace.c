/*
 * Allocation tracing: what Python's tracemalloc does, for rcgc's heaps.
 *
 * Theory. While tracing is on, each traced allocation gets a record keyed
 * by its address: its size, its type (NULL for a raw block), a weight (1,
 * or the inverse of its sampling probability), and its call stack, interned
 * so that the thousands of allocations made at one place share one copy.
 * The record goes when the block is freed. Snapshots group the records by
 * (stack, type) and copy the groups out, so that they outlive tracing.
 *
 * Finding the record at free time must cost nothing for blocks that have
 * none. Objects carry a header bit (RCGC_GC_TRACED) that death already
 * tests alongside the weak-reference and frozen bits. Raw blocks have no
 * header, so rcgc_free tests a global count of traced raw blocks, and then
 * a counting filter indexed by the address hash (rcgc__trace_raw_filter
 * below): a zero there proves the block has no record without taking a
 * lock, which keeps rcgc_free cheap while sampling leaves a few raw
 * records alive.
 *
 * Sampling follows tcmalloc's heap profiler: each thread counts allocated
 * bytes down from a gap drawn from an exponential distribution with mean
 * `mean_bytes`; the allocation that crosses zero is sampled. An allocation
 * of s bytes is then sampled with probability p = 1 - exp(-s / mean), and
 * its record weighs 1/p, so that summing weights estimates the number of
 * live blocks, and summing s/p their bytes. The count-down is inline in
 * the allocation path (trace.h): unsampled allocations make no call.
 *
 * Locks. `trace_rw` (a writer-preferring rwlock) is read-held by every hook
 * that touches the tables and write-held by start, stop and clear, which
 * change the mode and free records and stacks: a hook that read the mode
 * before a stop finds it changed under the read lock and backs out. Under
 * it, records live in RECORD_STRIPES stripes and stacks in STACK_STRIPES,
 * each with its mutex, chosen by hash. No lock is held across a safepoint
 * or user code, so a stop-the-world pause never waits on one for long.
 * The tracer's own memory is libc's: it must not recurse into rcgc.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <execinfo.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "object.h"
#include "trace.h"

int rcgc__trace_mode;
size_t rcgc__trace_raw_live;

/* ------------------------------------------------------------------------
 * Tables
 * ------------------------------------------------------------------------ */

typedef struct stack {
    struct stack *next;         /* stripe chain */
    uint64_t hash;
    int nframes;
    void *frames[];
} stack;

typedef struct record {
    struct record *next;        /* stripe chain */
    uintptr_t ptr;
    const rcgc_type *type;      /* NULL: raw block */
    const stack *st;
    size_t bytes;               /* as asked (objects: + header) */
    double weight;              /* 1, or 1/p when sampled */
    size_t est_bytes;           /* bytes * weight, rounded: what totals add */
} record;

#define RECORD_STRIPES 256
#define STACK_STRIPES 64
#define RAW_FILTER_SIZE (1u << RCGC_TRACE_FILTER_BITS)

typedef struct {
    pthread_mutex_t lock;
    record **buckets;
    size_t nbuckets, n;
} record_stripe;

typedef struct {
    pthread_mutex_t lock;
    stack **buckets;
    size_t nbuckets, n;
} stack_stripe;

static pthread_rwlock_t trace_rw;
static pthread_once_t trace_once = PTHREAD_ONCE_INIT;
static record_stripe records[RECORD_STRIPES];
static stack_stripe stacks[STACK_STRIPES];
/* Traced raw blocks per filter slot (trace.h: a 16-bit hash of the
 * address). A slot is written only under its record stripe's lock (the
 * stripe is a function of the slot: record_stripe_of), and read relaxed by
 * rcgc_free without it. */
uint32_t rcgc__trace_raw_filter[RAW_FILTER_SIZE];

/* Written under the write lock, read under the read lock. */
static int trace_nframes;
static double trace_mean;

/* Totals: relaxed atomics, updated under a stripe lock. */
static size_t traced_current, traced_peak;
static size_t overhead_bytes;
static uint64_t dropped;        /* records lost for lack of memory */

static void trace_init_once(void) {
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    /* A stop must not starve behind allocating threads. */
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&trace_rw, &a);
    pthread_rwlockattr_destroy(&a);
    for (int i = 0; i < RECORD_STRIPES; i++)
        pthread_mutex_init(&records[i].lock, NULL);
    for (int i = 0; i < STACK_STRIPES; i++)
        pthread_mutex_init(&stacks[i].lock, NULL);
}

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* An address's hash: its filter slot in the top 16 bits (the stripe is the
 * slot's low byte, so that each slot belongs to one stripe), mixed bits
 * below for the buckets. */
static inline uint64_t ptr_hash(uintptr_t p) {
    return ((uint64_t)rcgc__trace_filter_index(p) << 48) | (mix64((uint64_t)p >> 4) >> 16);
}
static inline size_t filter_index(uint64_t h) { return (size_t)(h >> 48); }
static inline record_stripe *record_stripe_of(uint64_t h) {
    return &records[filter_index(h) % RECORD_STRIPES];
}

/* Count a traced raw block in or out of its filter slot (its record
 * stripe's lock held: the only writer; readers load it relaxed). */
static void filter_add(uint64_t h, int delta) {
    uint32_t *slot = &rcgc__trace_raw_filter[filter_index(h)];
    __atomic_store_n(slot, __atomic_load_n(slot, __ATOMIC_RELAXED) + (uint32_t)delta, __ATOMIC_RELAXED);
}

static void overhead_add(ptrdiff_t n) {
    __atomic_fetch_add(&overhead_bytes, (size_t)n, __ATOMIC_RELAXED);
}

/* Double a stripe's bucket array (lock held). A failure keeps the old one:
 * chains get longer, nothing is lost. */
#define GROW(stripe, type)                                                          \
    do {                                                                            \
        size_t nb_ = (stripe)->nbuckets ? (stripe)->nbuckets * 2 : 16;              \
        type **b_ = calloc(nb_, sizeof *b_);                                        \
        if (!b_)                                                                    \
            break;                                                                  \
        for (size_t i_ = 0; i_ < (stripe)->nbuckets; i_++) {                        \
            type *e_ = (stripe)->buckets[i_];                                       \
            while (e_) {                                                            \
                type *next_ = e_->next;                                             \
                size_t j_ = (size_t)(bucket_hash_##type(e_) & (nb_ - 1));           \
                e_->next = b_[j_];                                                  \
                b_[j_] = e_;                                                        \
                e_ = next_;                                                         \
            }                                                                       \
        }                                                                           \
        overhead_add((ptrdiff_t)((nb_ - (stripe)->nbuckets) * sizeof *b_));         \
        free((stripe)->buckets);                                                    \
        (stripe)->buckets = b_;                                                     \
        (stripe)->nbuckets = nb_;                                                   \
    } while (0)

/* The bits of a hash below the stripe index pick the bucket. */
static inline uint64_t bucket_hash_record(const record *r) { return ptr_hash(r->ptr); }
static inline uint64_t bucket_hash_stack(const stack *s) { return s->hash / STACK_STRIPES; }

/* ------------------------------------------------------------------------
 * Stacks
 * ------------------------------------------------------------------------ */

static uint64_t frames_hash(void *const *frames, int n) {
    uint64_t h = (uint64_t)n;
    for (int i = 0; i < n; i++)
        h = mix64(h ^ (uint64_t)(uintptr_t)frames[i]);
    return h;
}

/* The interned copy of frames[0..n); NULL for lack of memory. Read lock held. */
static const stack *stack_intern(void *const *frames, int n) {
    uint64_t h = frames_hash(frames, n);
    stack_stripe *ss = &stacks[h % STACK_STRIPES];
    pthread_mutex_lock(&ss->lock);
    if (ss->nbuckets) {
        for (stack *s = ss->buckets[(h / STACK_STRIPES) & (ss->nbuckets - 1)]; s; s = s->next)
            if (s->hash == h && s->nframes == n && memcmp(s->frames, frames, (size_t)n * sizeof *frames) == 0) {
                pthread_mutex_unlock(&ss->lock);
                return s;
            }
    }
    if (ss->n >= ss->nbuckets)
        GROW(ss, stack);
    stack *s = NULL;
    if (ss->nbuckets && (s = malloc(sizeof *s + (size_t)n * sizeof *frames)) != NULL) {
        s->hash = h;
        s->nframes = n;
        memcpy(s->frames, frames, (size_t)n * sizeof *frames);
        size_t j = (size_t)((h / STACK_STRIPES) & (ss->nbuckets - 1));
        s->next = ss->buckets[j];
        ss->buckets[j] = s;
        ss->n++;
        overhead_add((ptrdiff_t)(sizeof *s + (size_t)n * sizeof *frames));
    }
    pthread_mutex_unlock(&ss->lock);
    return s;
}

/* The caller's stack from the user's allocation site `ra` outwards: the
 * frames inside rcgc (this function, the entry point) are cut off by
 * finding ra among them. Inlining differs between builds, so counting
 * frames would not do. */
static int capture(void *ra, void **out, int nframes) {
    void *buf[RCGC_TRACE_MAX_FRAMES + 8];
    int n = backtrace(buf, nframes + 8);
    for (int i = 0; i < n; i++)
        if (buf[i] == ra) {
            int k = n - i < nframes ? n - i : nframes;
            memcpy(out, buf + i, (size_t)k * sizeof *out);
            return k;
        }
    out[0] = ra;    /* the unwinder missed it: the site alone */
    return 1;
}

/* ------------------------------------------------------------------------
 * Records
 * ------------------------------------------------------------------------ */

static void totals_add(size_t est) {
    size_t cur = __atomic_add_fetch(&traced_current, est, __ATOMIC_RELAXED);
    size_t peak = __atomic_load_n(&traced_peak, __ATOMIC_RELAXED);
    while (cur > peak &&
           !__atomic_compare_exchange_n(&traced_peak, &peak, cur, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

static void totals_sub(size_t est) { __atomic_sub_fetch(&traced_current, est, __ATOMIC_RELAXED); }

/* Unlink the record of p from its stripe (lock held); NULL if none. */
static record *record_unlink(record_stripe *rs, uint64_t h, uintptr_t p) {
    if (!rs->nbuckets)
        return NULL;
    record **link = &rs->buckets[h & (rs->nbuckets - 1)];
    for (record *r = *link; r; link = &r->next, r = r->next)
        if (r->ptr == p) {
            *link = r->next;
            rs->n--;
            return r;
        }
    return NULL;
}

/* Forget record r (unlinked, stripe lock held). */
static void record_drop(record *r, uint64_t h) {
    if (!r->type) {
        filter_add(h, -1);
        __atomic_fetch_sub(&rcgc__trace_raw_live, 1, __ATOMIC_RELAXED);
    }
    totals_sub(r->est_bytes);
    free(r);
    overhead_add(-(ptrdiff_t)sizeof *r);
}

static void record_insert(void *p, size_t bytes, const rcgc_type *t, const stack *st, double weight) {
    record *r = malloc(sizeof *r);
    if (!r) {
        __atomic_fetch_add(&dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    overhead_add((ptrdiff_t)sizeof *r);
    r->ptr = (uintptr_t)p;
    r->type = t;
    r->st = st;
    r->bytes = bytes;
    r->weight = weight;
    r->est_bytes = (size_t)((double)bytes * weight + 0.5);
    uint64_t h = ptr_hash(r->ptr);
    record_stripe *rs = record_stripe_of(h);
    pthread_mutex_lock(&rs->lock);
    /* A block freed behind the tracer's back (internal frees of public
     * allocations) leaves a stale record: the new one replaces it. */
    record *old = record_unlink(rs, h, r->ptr);
    if (old)
        record_drop(old, h);
    if (rs->n >= rs->nbuckets * 2)
        GROW(rs, record);
    if (!rs->nbuckets) {
        pthread_mutex_unlock(&rs->lock);
        free(r);
        overhead_add(-(ptrdiff_t)sizeof *r);
        __atomic_fetch_add(&dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    size_t j = (size_t)(h & (rs->nbuckets - 1));
    r->next = rs->buckets[j];
    rs->buckets[j] = r;
    rs->n++;
    if (!t) {
        filter_add(h, 1);
        __atomic_fetch_add(&rcgc__trace_raw_live, 1, __ATOMIC_RELAXED);
    }
    totals_add(r->est_bytes);
    pthread_mutex_unlock(&rs->lock);
}

/* Remove p's record if it has one (read lock held). */
static void record_remove(uintptr_t p) {
    uint64_t h = ptr_hash(p);
    record_stripe *rs = record_stripe_of(h);
    pthread_mutex_lock(&rs->lock);
    record *r = record_unlink(rs, h, p);
    if (r)
        record_drop(r, h);
    pthread_mutex_unlock(&rs->lock);
}

/* Free every record and stack (write lock held). */
static void tables_clear(void) {
    for (int i = 0; i < RECORD_STRIPES; i++) {
        record_stripe *rs = &records[i];
        for (size_t j = 0; j < rs->nbuckets; j++)
            for (record *r = rs->buckets[j], *next; r; r = next) {
                next = r->next;
                free(r);
            }
        free(rs->buckets);
        rs->buckets = NULL;
        rs->nbuckets = rs->n = 0;
    }
    for (int i = 0; i < STACK_STRIPES; i++) {
        stack_stripe *ss = &stacks[i];
        for (size_t j = 0; j < ss->nbuckets; j++)
            for (stack *s = ss->buckets[j], *next; s; s = next) {
                next = s->next;
                free(s);
            }
        free(ss->buckets);
        ss->buckets = NULL;
        ss->nbuckets = ss->n = 0;
    }
    /* rcgc_free reads the filter without the lock: atomic stores. */
    for (size_t i = 0; i < RAW_FILTER_SIZE; i++)
        __atomic_store_n(&rcgc__trace_raw_filter[i], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&rcgc__trace_raw_live, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&traced_current, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&traced_peak, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&overhead_bytes, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&dropped, 0, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------------
 * Hooks
 * ------------------------------------------------------------------------ */

/* xorshift64*: the sampler's generator, seeded per thread from its serial
 * so that a single-threaded run samples the same allocations every time. */
static double next_uniform(rcgc_thread *self) {
    uint64_t x = self->trace_rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    self->trace_rng = x;
    /* 53 random bits in (0, 1]. */
    return ((double)((x * 0x2545F4914F6CDD1DULL) >> 11) + 1.0) / 9007199254740992.0;
}

static int64_t next_gap(rcgc_thread *self, double mean) {
    double g = -log(next_uniform(self)) * mean;
    return g > 4e18 ? INT64_MAX / 2 : (int64_t)g + 1;
}

void rcgc__trace_alloc(rcgc_thread *self, void *p, size_t bytes, const rcgc_type *t, void *ra) {
    pthread_rwlock_rdlock(&trace_rw);
    int mode = __atomic_load_n(&rcgc__trace_mode, __ATOMIC_RELAXED);
    double weight = 1.0;
    if (mode == RCGC_TRACE_SAMPLE) {
        if (self->trace_rng == 0) {
            /* First sample of this thread: draw its first gap, and sample
             * this allocation only if it crosses that gap too. */
            self->trace_rng = mix64(self->serial + 0x9E3779B97F4A7C15ULL) | 1;
            self->trace_left = next_gap(self, trace_mean) - (int64_t)bytes;
            if (self->trace_left >= 0) {
                pthread_rwlock_unlock(&trace_rw);
                return;
            }
        }
        /* The count-down crossed zero: sample, and draw the next gap. An
         * allocation bigger than several gaps still counts once. */
        self->trace_left = next_gap(self, trace_mean);
        weight = 1.0 / -expm1(-(double)bytes / trace_mean);
    } else if (mode != RCGC_TRACE_ALL) {
        pthread_rwlock_unlock(&trace_rw);  /* stopped since the caller looked */
        return;
    }
    void *frames[RCGC_TRACE_MAX_FRAMES];
    int n = capture(ra, frames, trace_nframes);
    const stack *st = stack_intern(frames, n);
    if (st) {
        if (t)
            __atomic_fetch_or(&rcgc__hdr(p)->gc, RCGC_GC_TRACED, __ATOMIC_RELAXED);
        record_insert(p, bytes, t, st, weight);
    } else {
        __atomic_fetch_add(&dropped, 1, __ATOMIC_RELAXED);
    }
    pthread_rwlock_unlock(&trace_rw);
}

void rcgc__trace_free_object(rcgc__header *h) {
    pthread_rwlock_rdlock(&trace_rw);
    record_remove((uintptr_t)rcgc__obj(h));
    pthread_rwlock_unlock(&trace_rw);
}

void rcgc__trace_free_raw(void *p) {
    pthread_rwlock_rdlock(&trace_rw);
    record_remove((uintptr_t)p);
    pthread_rwlock_unlock(&trace_rw);
}

/* ------------------------------------------------------------------------
 * Control
 * ------------------------------------------------------------------------ */

static int start(int nframes, int mode, size_t mean) {
    if (nframes < 1 || nframes > RCGC_TRACE_MAX_FRAMES)
        return EINVAL;
    pthread_once(&trace_once, trace_init_once);
    pthread_rwlock_wrlock(&trace_rw);
    int err = 0;
    if (__atomic_load_n(&rcgc__trace_mode, __ATOMIC_RELAXED) != RCGC_TRACE_OFF) {
        err = EBUSY;
    } else {
        trace_nframes = nframes;
        trace_mean = (double)mean;
        __atomic_store_n(&rcgc__trace_mode, mode, __ATOMIC_RELAXED);
    }
    pthread_rwlock_unlock(&trace_rw);
    return err;
}

int rcgc_trace_start(int nframes) { return start(nframes, RCGC_TRACE_ALL, 0); }

int rcgc_trace_start_sampling(int nframes, size_t mean_bytes) {
    if (mean_bytes == 0 || mean_bytes > ((size_t)1 << 50))
        return EINVAL;
    return start(nframes, RCGC_TRACE_SAMPLE, mean_bytes);
}

void rcgc_trace_stop(void) {
    pthread_once(&trace_once, trace_init_once);
    pthread_rwlock_wrlock(&trace_rw);
    __atomic_store_n(&rcgc__trace_mode, RCGC_TRACE_OFF, __ATOMIC_RELAXED);
    tables_clear();
    pthread_rwlock_unlock(&trace_rw);
}

void rcgc_trace_clear(void) {
    pthread_once(&trace_once, trace_init_once);
    pthread_rwlock_wrlock(&trace_rw);
    tables_clear();
    pthread_rwlock_unlock(&trace_rw);
}

int rcgc_trace_is_tracing(void) { return __atomic_load_n(&rcgc__trace_mode, __ATOMIC_RELAXED); }

void rcgc__trace_shutdown(void) { rcgc_trace_stop(); }

void rcgc_trace_get_traced_memory(size_t *current, size_t *peak) {
    if (current)
        *current = __atomic_load_n(&traced_current, __ATOMIC_RELAXED);
    if (peak)
        *peak = __atomic_load_n(&traced_peak, __ATOMIC_RELAXED);
}

size_t rcgc_trace_get_overhead(void) { return __atomic_load_n(&overhead_bytes, __ATOMIC_RELAXED); }

int rcgc_trace_get_traceback(const void *p, void **frames, int max) {
    if (!p || max <= 0 || __atomic_load_n(&rcgc__trace_mode, __ATOMIC_RELAXED) == RCGC_TRACE_OFF)
        return 0;
    pthread_rwlock_rdlock(&trace_rw);
    int n = 0;
    uint64_t h = ptr_hash((uintptr_t)p);
    record_stripe *rs = record_stripe_of(h);
    pthread_mutex_lock(&rs->lock);
    if (rs->nbuckets)
        for (record *r = rs->buckets[h & (rs->nbuckets - 1)]; r; r = r->next)
            if (r->ptr == (uintptr_t)p) {
                n = r->st->nframes < max ? r->st->nframes : max;
                memcpy(frames, r->st->frames, (size_t)n * sizeof *frames);
                break;
            }
    pthread_mutex_unlock(&rs->lock);
    pthread_rwlock_unlock(&trace_rw);
    return n;
}

int rcgc_trace_format_frame(const void *pc, char *buf, size_t size) {
    Dl_info info;
    if (!pc)
        return snprintf(buf, size, "?");
    /* A return address points after the call: look up pc - 1, so that a
     * call that ends a function is not charged to the next one. */
    if (!dladdr((const char *)pc - 1, &info) || !info.dli_fname)
        return snprintf(buf, size, "%p", pc);
    const char *mod = strrchr(info.dli_fname, '/');
    mod = mod ? mod + 1 : info.dli_fname;
    /* What addr2line wants: the offset from the load base for a
     * position-independent module, the address itself for a fixed one
     * (ET_EXEC, whose ELF header dladdr gives us, mapped). */
    const Elf64_Ehdr *eh = info.dli_fbase;
    uintptr_t mod_off = (uintptr_t)pc - (eh && eh->e_type == ET_EXEC ? 0 : (uintptr_t)info.dli_fbase);
    if (info.dli_sname)
        return snprintf(buf, size, "%s+%#lx (%s+%#lx)", info.dli_sname,
                        (unsigned long)((uintptr_t)pc - (uintptr_t)info.dli_saddr), mod,
                        (unsigned long)mod_off);
    return snprintf(buf, size, "%s+%#lx", mod, (unsigned long)mod_off);
}

/* ------------------------------------------------------------------------
 * Snapshots
 * ------------------------------------------------------------------------ */

typedef struct {
    const rcgc_type *type;
    int nframes;
    size_t frame_off;           /* into the snapshot's frames */
    double count, bytes;
} group;

struct rcgc_trace_snapshot {
    int sampling;
    size_t ngroups;
    group *groups;
    void **frames;
    uint64_t dropped;
};

/* While the snapshot is taken: (stack, type) -> group index, open
 * addressing. */
typedef struct {
    const stack *st;
    const rcgc_type *type;
    size_t index;
} gslot;

typedef struct {
    gslot *slots;
    size_t cap, n;
    group *groups;
    const stack **group_stacks;
    size_t gcap;
} gmap;

static uint64_t gkey_hash(const stack *st, const rcgc_type *t) {
    return mix64((uint64_t)(uintptr_t)st ^ mix64((uint64_t)(uintptr_t)t));
}

static bool gmap_grow(gmap *m) {
    size_t cap = m->cap ? m->cap * 2 : 256;
    gslot *s = calloc(cap, sizeof *s);
    if (!s)
        return false;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].st) {
            size_t j = gkey_hash(m->slots[i].st, m->slots[i].type) & (cap - 1);
            while (s[j].st)
                j = (j + 1) & (cap - 1);
            s[j] = m->slots[i];
        }
    free(m->slots);
    m->slots = s;
    m->cap = cap;
    return true;
}

static bool gmap_add(gmap *m, const record *r) {
    if ((m->n + 1) * 2 > m->cap && !gmap_grow(m))
        return false;
    size_t j = gkey_hash(r->st, r->type) & (m->cap - 1);
    while (m->slots[j].st && (m->slots[j].st != r->st || m->slots[j].type != r->type))
        j = (j + 1) & (m->cap - 1);
    if (!m->slots[j].st) {
        if (m->n == m->gcap) {
            size_t gc = m->gcap ? m->gcap * 2 : 256;
            group *g = realloc(m->groups, gc * sizeof *g);
            if (!g)
                return false;
            m->groups = g;
            const stack **gs = realloc(m->group_stacks, gc * sizeof *gs);
            if (!gs)
                return false;
            m->group_stacks = gs;
            m->gcap = gc;
        }
        m->slots[j] = (gslot){r->st, r->type, m->n};
        m->groups[m->n] = (group){.type = r->type, .nframes = r->st->nframes};
        m->group_stacks[m->n] = r->st;
        m->n++;
    }
    group *g = &m->groups[m->slots[j].index];
    g->count += r->weight;
    g->bytes += (double)r->bytes * r->weight;
    return true;
}

rcgc_trace_snapshot *rcgc_trace_take_snapshot(void) {
    if (__atomic_load_n(&rcgc__trace_mode, __ATOMIC_RELAXED) == RCGC_TRACE_OFF) {
        errno = EINVAL;
        return NULL;
    }
    rcgc_trace_snapshot *snap = calloc(1, sizeof *snap);
    gmap m = {0};
    bool ok = snap != NULL;
    pthread_rwlock_rdlock(&trace_rw);
    int mode = __atomic_load_n(&rcgc__trace_mode, __ATOMIC_RELAXED);
    if (mode == RCGC_TRACE_OFF) {
        pthread_rwlock_unlock(&trace_rw);
        free(snap);
        errno = EINVAL;
        return NULL;
    }
    for (int i = 0; ok && i < RECORD_STRIPES; i++) {
        record_stripe *rs = &records[i];
        pthread_mutex_lock(&rs->lock);
        for (size_t j = 0; ok && j < rs->nbuckets; j++)
            for (const record *r = rs->buckets[j]; ok && r; r = r->next)
                ok = gmap_add(&m, r);
        pthread_mutex_unlock(&rs->lock);
    }
    /* Copy the stacks out while they cannot be freed. */
    size_t nframes = 0;
    for (size_t i = 0; ok && i < m.n; i++)
        nframes += (size_t)m.groups[i].nframes;
    if (ok) {
        snap->frames = malloc((nframes ? nframes : 1) * sizeof *snap->frames);
        ok = snap->frames != NULL;
    }
    if (ok) {
        size_t off = 0;
        for (size_t i = 0; i < m.n; i++) {
            memcpy(snap->frames + off, m.group_stacks[i]->frames,
                   (size_t)m.groups[i].nframes * sizeof *snap->frames);
            m.groups[i].frame_off = off;
            off += (size_t)m.groups[i].nframes;
        }
        snap->sampling = mode == RCGC_TRACE_SAMPLE;
        snap->dropped = __atomic_load_n(&dropped, __ATOMIC_RELAXED);
    }
    pthread_rwlock_unlock(&trace_rw);
    free(m.slots);
    free(m.group_stacks);
    if (!ok) {
        free(m.groups);
        if (snap)
            free(snap->frames);
        free(snap);
        errno = ENOMEM;
        return NULL;
    }
    snap->groups = m.groups;
    snap->ngroups = m.n;
    return snap;
}

void rcgc_trace_snapshot_free(rcgc_trace_snapshot *s) {
    if (!s)
        return;
    free(s->groups);
    free(s->frames);
    free(s);
}

/* ------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------ */

/* One group's key under a statistics key. */
typedef struct {
    const rcgc_type *type;
    int nframes;
    void *const *frames;
    double count, bytes;
    int side;                   /* 0: from s, 1: from base */
} keyed;

static rcgc_trace_key sort_key;     /* qsort has no context argument */
static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;

static int cmp_ptr(const void *a, const void *b) { return a < b ? -1 : a > b; }

static int keyed_cmp(const void *pa, const void *pb) {
    const keyed *a = pa, *b = pb;
    switch (sort_key) {
    case RCGC_TRACE_BY_TYPE:
        return cmp_ptr(a->type, b->type);
    case RCGC_TRACE_BY_SITE:
        return cmp_ptr(a->nframes ? a->frames[0] : NULL, b->nframes ? b->frames[0] : NULL);
    case RCGC_TRACE_BY_TRACEBACK:
        if (a->nframes != b->nframes)
            return a->nframes < b->nframes ? -1 : 1;
        for (int i = 0; i < a->nframes; i++)
            if (a->frames[i] != b->frames[i])
                return cmp_ptr(a->frames[i], b->frames[i]);
        return 0;
    }
    return 0;
}

static void keyed_fill(keyed *k, const rcgc_trace_snapshot *s, int side, rcgc_trace_key key) {
    for (size_t i = 0; i < s->ngroups; i++) {
        const group *g = &s->groups[i];
        k[i] = (keyed){.type = key == RCGC_TRACE_BY_TYPE ? g->type : NULL,
                       .nframes = key == RCGC_TRACE_BY_TYPE ? 0
                                  : key == RCGC_TRACE_BY_SITE ? (g->nframes ? 1 : 0)
                                                               : g->nframes,
                       .frames = s->frames + g->frame_off,
                       .count = g->count,
                       .bytes = g->bytes,
                       .side = side};
    }
}

static long long round_ll(double v) { return (long long)(v < 0 ? v - 0.5 : v + 0.5); }

static int stat_cmp(const void *pa, const void *pb) {
    const rcgc_trace_stat *a = pa, *b = pb;
    long long da = a->bytes_diff < 0 ? -a->bytes_diff : a->bytes_diff;
    long long db = b->bytes_diff < 0 ? -b->bytes_diff : b->bytes_diff;
    if (da != db)
        return da > db ? -1 : 1;
    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    return a->count > b->count ? -1 : a->count < b->count;
}

rcgc_trace_stat *rcgc_trace_statistics(const rcgc_trace_snapshot *s, const rcgc_trace_snapshot *base,
                                       rcgc_trace_key key, size_t *n) {
    if (!s || !n || (key != RCGC_TRACE_BY_SITE && key != RCGC_TRACE_BY_TRACEBACK &&
                     key != RCGC_TRACE_BY_TYPE)) {
        errno = EINVAL;
        return NULL;
    }
    size_t total = s->ngroups + (base ? base->ngroups : 0);
    keyed *k = malloc((total ? total : 1) * sizeof *k);
    rcgc_trace_stat *out = malloc((total ? total : 1) * sizeof *out);
    if (!k || !out) {
        free(k);
        free(out);
        errno = ENOMEM;
        return NULL;
    }
    keyed_fill(k, s, 0, key);
    if (base)
        keyed_fill(k + s->ngroups, base, 1, key);
    pthread_mutex_lock(&sort_lock);
    sort_key = key;
    qsort(k, total, sizeof *k, keyed_cmp);
    /* Fold equal keys: counts of s add, counts of base subtract. */
    size_t m = 0;
    for (size_t i = 0; i < total;) {
        double c[2] = {0, 0}, b[2] = {0, 0};
        const keyed *rep = &k[i];
        size_t j = i;
        for (; j < total && keyed_cmp(&k[i], &k[j]) == 0; j++) {
            c[k[j].side] += k[j].count;
            b[k[j].side] += k[j].bytes;
            if (k[j].side == 0)
                rep = &k[j];    /* frames into s where s has the key */
        }
        rcgc_trace_stat *st = &out[m++];
        st->type = rep->type;
        st->type_name = key != RCGC_TRACE_BY_TYPE ? NULL
                        : rep->type ? (rep->type->name ? rep->type->name : "?")
                                    : "raw";
        st->nframes = rep->nframes;
        st->frames = rep->frames;
        st->count = (size_t)round_ll(c[0]);
        st->bytes = (size_t)round_ll(b[0]);
        st->count_diff = base ? round_ll(c[0]) - round_ll(c[1]) : 0;
        st->bytes_diff = base ? round_ll(b[0]) - round_ll(b[1]) : 0;
        i = j;
    }
    pthread_mutex_unlock(&sort_lock);
    free(k);
    qsort(out, m, sizeof *out, stat_cmp);
    *n = m;
    return out;
}

static void format_bytes(char *buf, size_t size, double v) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    double a = v < 0 ? -v : v;
    while (a >= 1024 && u < 4) {
        a /= 1024;
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%.0f %s", v, unit[u]);
    else
        snprintf(buf, size, "%.1f %s", v, unit[u]);
}

int rcgc_trace_print_top(FILE *out, const rcgc_trace_snapshot *s, const rcgc_trace_snapshot *base,
                         rcgc_trace_key key, size_t limit) {
    size_t n;
    rcgc_trace_stat *st = rcgc_trace_statistics(s, base, key, &n);
    if (!st)
        return errno;
    static const char *key_name[] = {"site", "traceback", "type"};
    fprintf(out, "rcgc trace: top %zu of %zu by %s%s%s\n", limit < n ? limit : n, n, key_name[key],
            base ? ", against the base snapshot" : "", s->sampling ? " (sampled: estimates)" : "");
    double tc = 0, tb = 0;
    for (size_t i = 0; i < n; i++) {
        tc += (double)st[i].count;
        tb += (double)st[i].bytes;
    }
    for (size_t i = 0; i < n && i < limit; i++) {
        char where[512], bytes[32], dbytes[32];
        if (key == RCGC_TRACE_BY_TYPE)
            snprintf(where, sizeof where, "type '%s'", st[i].type_name);
        else if (st[i].nframes == 0)
            snprintf(where, sizeof where, "(no stack)");
        else
            rcgc_trace_format_frame(st[i].frames[0], where, sizeof where);
        format_bytes(bytes, sizeof bytes, (double)st[i].bytes);
        fprintf(out, "#%zu: %s: %zu blocks, %s", i + 1, where, st[i].count, bytes);
        if (base) {
            format_bytes(dbytes, sizeof dbytes, (double)st[i].bytes_diff);
            fprintf(out, " (%+lld blocks, %s%s)", st[i].count_diff, st[i].bytes_diff >= 0 ? "+" : "",
                    dbytes);
        }
        fputc('\n', out);
        if (key == RCGC_TRACE_BY_TRACEBACK)
            for (int f = 1; f < st[i].nframes; f++) {
                rcgc_trace_format_frame(st[i].frames[f], where, sizeof where);
                fprintf(out, "      %s\n", where);
            }
    }
    char total[32];
    format_bytes(total, sizeof total, tb);
    fprintf(out, "total: %.0f blocks, %s", tc, total);
    if (s->dropped)
        fprintf(out, "; %llu allocations not recorded (no memory for the tracer)",
                (unsigned long long)s->dropped);
    fputc('\n', out);
    free(st);
    return ferror(out) ? EIO : 0;
}

/* ------------------------------------------------------------------------
 * Leak report: sites by type
 * ------------------------------------------------------------------------ */

static int group_by_type_cmp(const void *pa, const void *pb) {
    const group *a = pa, *b = pb;
    if (a->type != b->type)
        return (uintptr_t)a->type < (uintptr_t)b->type ? -1 : 1;
    return a->bytes > b->bytes ? -1 : a->bytes < b->bytes;
}

void rcgc__trace_print_sites(FILE *out, size_t per_type) {
    rcgc_trace_snapshot *s = rcgc_trace_take_snapshot();
    if (!s) {
        fprintf(out, "  allocation sites: no snapshot: %s\n", strerror(errno));
        return;
    }
    qsort(s->groups, s->ngroups, sizeof *s->groups, group_by_type_cmp);
    if (s->ngroups)
        fprintf(out, "  allocation sites of the traced blocks still alive%s:\n",
            s->sampling ? " (sampled: estimates)" : "");
    for (size_t i = 0; i < s->ngroups;) {
        size_t j = i;
        double count = 0, bytes = 0;
        for (; j < s->ngroups && s->groups[j].type == s->groups[i].type; j++) {
            count += s->groups[j].count;
            bytes += s->groups[j].bytes;
        }
        const rcgc_type *t = s->groups[i].type;
        fprintf(out, "  %s '%s': %.0f blocks, %.1f KiB, from %zu stack(s)\n", t ? "type" : "raw",
                t ? (t->name ? t->name : "?") : "rcgc_malloc", count, bytes / 1024, j - i);
        for (size_t k = i; k < j && k < i + per_type; k++) {
            const group *g = &s->groups[k];
            fprintf(out, "    %.0f blocks, %.1f KiB, allocated at\n", g->count, g->bytes / 1024);
            for (int f = 0; f < g->nframes && f < 4; f++) {
                char where[512];
                rcgc_trace_format_frame(s->frames[g->frame_off + (size_t)f], where, sizeof where);
                fprintf(out, "      %s\n", where);
            }
        }
        i = j;
    }
    rcgc_trace_snapshot_free(s);
}
