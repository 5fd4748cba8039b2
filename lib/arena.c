/*
 * Shared arenas (see arena.h for the layout).
 *
 * Theory. Arenas are 64 MiB reservations aligned to 64 MiB, so the arena of
 * any pointer is a mask away and its page descriptor an index. All changes
 * to arenas — the list, the slice bitmaps, span descriptors — happen under
 * one mutex, `arena_lock`; they are slow paths (once per 64 KiB page or per
 * large block). Readers that hold a block need no lock: the descriptor of
 * the block's span was written before the block was handed out, and the
 * hand-out (through the owner's heap, or a hand-off between threads that
 * synchronises) orders those writes before the reader's loads.
 *
 * rcgc__arena_owns answers for arbitrary pointers, so it reads descriptor
 * fields that may be changing; those fields (kind, slice_offset) are
 * therefore always read and written with relaxed atomics, and the arena
 * bitmap `owned` tells which 64 MiB regions are arenas at all.
 *
 * Memory returns to the OS in two steps: a span given back is purged
 * (MADV_DONTNEED), and an arena with no spans left is unmapped, except for
 * RCGC_ARENA_CACHE of them kept for reuse.
 *
 * Delayed purge (mimalloc's purge delay). A span given back is not purged
 * at once: its slices keep their memory and get a deadline, now +
 * RCGC_PURGE_DELAY_MS. A span taken again before its deadline costs no
 * system call and no page faults (a heap whose page empties and refills a
 * moment later: binary-trees, or any steady churn, paid a madvise, 16 page
 * faults and the kernel's zeroing for each page; see docs/BENCHMARKS.md).
 * Slices past their deadline are purged in batches, adjacent slices with
 * one madvise, by whoever next takes the arena lock after the earliest
 * deadline (a span given back or taken) and by a purger thread that sleeps
 * until that deadline. The purger is what returns the memory of a process
 * whose threads all went idle: it is not attached (a pause never waits for
 * it) and touches nothing but the arenas, under the arena lock. It starts
 * with the first delayed purge; if it cannot be created, purges happen at
 * once as with a delay of 0. rcgc_heap_collect purges every pending slice.
 */
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "os.h"

_Static_assert(RCGC_ARENA_SLICES % 64 == 0, "slice bitmap is whole words");
_Static_assert(sizeof(rcgc_page) == 128, "one descriptor per cache-line pair");
_Static_assert(offsetof(rcgc_page, thread_free) == 64, "shared fields on their own line");
_Static_assert(offsetof(rcgc_arena, page) % 128 == 0, "descriptors start on a line pair");
_Static_assert(RCGC_SLICE_SIZE % RCGC_ALIGN == 0, "blocks stay aligned");

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static rcgc_arena *arena_list;      /* arena_lock */
static size_t n_arenas;             /* arena_lock */
static size_t reserved_bytes;       /* arena_lock */
static size_t committed_bytes;      /* arena_lock */
static bool huge_unmap_pending;     /* a huge arena could not be unmapped (arena_lock) */

/* One bit per 64 MiB of a 48-bit address space: is there an arena here?
 * Read lock-free by rcgc__arena_owns. 512 KiB of zero pages until used. */
_Atomic uint64_t rcgc__arena_bitmap[RCGC_ARENA_BITMAP_WORDS];
#define OWNED_WORDS RCGC_ARENA_BITMAP_WORDS
#define owned rcgc__arena_bitmap

/* Slices whose memory may be resident (touched since the last purge), for
 * the committed-bytes statistic. Parallel to slice_bits; arena_lock. */
typedef struct { uint64_t bits[RCGC_ARENA_SLICES / 64]; } dirty_map;

/* Delayed purge: per slice, the CLOCK_MONOTONIC time (ns) after which a
 * free, dirty slice is purged; 0 for a slice with no purge pending. Beside
 * the dirty map in the metadata slices; arena_lock. */
typedef struct {
    uint64_t deadline[RCGC_ARENA_SLICES];
    uint32_t pending;           /* slices with a deadline */
} purge_map;

/* Pending purges over every arena (arena_lock). */
static size_t purge_pending;        /* slices with a deadline */
static uint64_t purge_next = UINT64_MAX; /* earliest deadline (ns) */

/* The purger thread: started, stopped and woken under arena_lock; it
 * waits on purge_cond (CLOCK_MONOTONIC) with arena_lock. */
static pthread_cond_t purge_cond;
static bool purger_started;         /* arena_lock */
static bool purger_quit;            /* rcgc_shutdown stops it (arena_lock) */
static bool purger_failed;          /* could not be created: purge at once (arena_lock) */
static pthread_t purger_thread;
static pthread_once_t purge_once = PTHREAD_ONCE_INIT;

static void owned_set(rcgc_arena *a, bool on) {
    uintptr_t i = (uintptr_t)a >> RCGC_ARENA_SHIFT;
    if (i / 64 >= OWNED_WORDS)
        return;     /* beyond 48 bits: rcgc__arena_owns says no */
    uint64_t bit = (uint64_t)1 << (i % 64);
    if (on)
        atomic_fetch_or_explicit(&owned[i / 64], bit, memory_order_release);
    else
        atomic_fetch_and_explicit(&owned[i / 64], ~bit, memory_order_release);
}

static bool owned_test(const void *p) { return rcgc__arena_mapped(p); }

/* Descriptor fields read by rcgc__arena_owns without the lock. */
static void desc_set(rcgc_page *pg, uint8_t kind, uint32_t offset) {
    __atomic_store_n(&pg->kind, kind, __ATOMIC_RELAXED);
    __atomic_store_n(&pg->slice_offset, offset, __ATOMIC_RELAXED);
}

/* The dirty map sits in the arena's metadata slices, after the header. */
static dirty_map *dirty_of(rcgc_arena *a) {
    return (dirty_map *)((uint8_t *)a + sizeof(rcgc_arena));
}
static purge_map *purge_of(rcgc_arena *a) {
    return (purge_map *)((uint8_t *)a + sizeof(rcgc_arena) + sizeof(dirty_map));
}
#define ARENA_META_SLICES \
    ((sizeof(rcgc_arena) + sizeof(dirty_map) + sizeof(purge_map) + RCGC_SLICE_SIZE - 1) / \
     RCGC_SLICE_SIZE)

static inline bool bit_get(const uint64_t *w, uint32_t i) { return (w[i / 64] >> (i % 64)) & 1; }
static inline void bit_put(uint64_t *w, uint32_t i, bool v) {
    if (v)
        w[i / 64] |= (uint64_t)1 << (i % 64);
    else
        w[i / 64] &= ~((uint64_t)1 << (i % 64));
}

/* ------------------------------------------------------------------------
 * Arena creation and release (arena_lock held)
 * ------------------------------------------------------------------------ */

static rcgc_arena *arena_new(size_t size, bool huge) {
    rcgc_arena *a = rcgc__os_reserve_aligned(size, RCGC_ARENA_SIZE);
    if (!a)
        return NULL;
    /* Fresh anonymous memory is zero: every slice FREE, every bit clear. */
    a->magic = RCGC_ARENA_MAGIC;
    a->size = size;
    a->nslices = (uint32_t)(size / RCGC_SLICE_SIZE);
    a->meta_slices = (uint32_t)ARENA_META_SLICES;
    a->is_huge = huge;
    for (uint32_t i = 0; i < a->meta_slices; i++) {
        bit_put(a->slice_bits, i, true);
        desc_set(&a->page[i], RCGC_PAGE_META, 0);
    }
    a->next = arena_list;
    a->prev = NULL;
    if (arena_list)
        arena_list->prev = a;
    arena_list = a;
    n_arenas++;
    reserved_bytes += size;
    committed_bytes += (size_t)a->meta_slices * RCGC_SLICE_SIZE;
    owned_set(a, true);
    return a;
}

static void arena_unlink(rcgc_arena *a) {
    if (a->prev)
        a->prev->next = a->next;
    else
        arena_list = a->next;
    if (a->next)
        a->next->prev = a->prev;
}

/* Unmap an empty arena; on failure it stays listed (and counted). */
static void arena_release(rcgc_arena *a) {
    size_t committed = (size_t)a->meta_slices * RCGC_SLICE_SIZE;
    dirty_map *d = dirty_of(a);
    for (uint32_t w = 0; w < RCGC_ARENA_SLICES / 64; w++)
        committed += (size_t)__builtin_popcountll(d->bits[w]) * RCGC_SLICE_SIZE;
    size_t size = a->size;
    uint32_t pending = purge_of(a)->pending;
    owned_set(a, false);
    arena_unlink(a);
    if (rcgc__os_release(a, size) != 0) {
        /* Keep it: relink, it can still serve spans. */
        a->prev = NULL;
        a->next = arena_list;
        if (arena_list)
            arena_list->prev = a;
        arena_list = a;
        owned_set(a, true);
        return;
    }
    purge_pending -= pending;   /* the unmap purged them */
    n_arenas--;
    reserved_bytes -= size;
    committed_bytes -= committed;
}

/* ------------------------------------------------------------------------
 * Spans
 * ------------------------------------------------------------------------ */

static void purge_due(void);    /* purging, below */

/* First run of n free slices in a, or -1. */
static int32_t find_free_run(rcgc_arena *a, uint32_t n) {
    uint32_t run = 0;
    for (uint32_t i = a->meta_slices; i < a->nslices; i++) {
        uint64_t word = a->slice_bits[i / 64];
        if (i % 64 == 0 && word == ~(uint64_t)0) {
            run = 0;
            i += 63;
            continue;
        }
        if (bit_get(a->slice_bits, i)) {
            run = 0;
        } else if (++run == n) {
            return (int32_t)(i + 1 - n);
        }
    }
    return -1;
}

typedef struct {
    uint8_t kind, tag, size_class;
    uint32_t block_size;        /* 0 for large: the whole span */
} span_desc;

static rcgc_page *span_take(rcgc_arena *a, uint32_t first, uint32_t n, const span_desc *sd) {
    dirty_map *d = dirty_of(a);
    purge_map *pm = purge_of(a);
    /* Huge spans run past the arena's descriptors: describe the slices in
     * its first 64 MiB, so pointer -> page works there as everywhere. */
    uint32_t described = a->is_huge ? (n < RCGC_ARENA_SLICES - first ? n : RCGC_ARENA_SLICES - first) : n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t s = first + i;
        if (!a->is_huge) {
            bit_put(a->slice_bits, s, true);
            if (!bit_get(d->bits, s)) {
                bit_put(d->bits, s, true);
                committed_bytes += RCGC_SLICE_SIZE;
            }
            /* Taken again before its purge: the point of the delay. */
            if (pm->deadline[s]) {
                pm->deadline[s] = 0;
                pm->pending--;
                purge_pending--;
            }
        }
    }
    for (uint32_t i = 0; i < described; i++)
        desc_set(&a->page[first + i], sd->kind, i);
    a->slices_used += n;
    rcgc_page *pg = &a->page[first];
    size_t bytes = (size_t)n * RCGC_SLICE_SIZE;
    pg->nslices = n;
    pg->start = (uint8_t *)a + (size_t)first * RCGC_SLICE_SIZE;
    pg->free = pg->local_free = NULL;
    pg->reserved = 0;
    __atomic_store_n(&pg->used, 0, __ATOMIC_RELAXED);
    pg->tag = sd->tag;
    pg->size_class = sd->size_class;
    if (sd->kind == RCGC_PAGE_LARGE) {
        pg->block_size = bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes;
        pg->capacity = pg->reserved = 1;
        __atomic_store_n(&pg->used, 1, __ATOMIC_RELAXED);
    } else {
        pg->block_size = sd->block_size;
        pg->capacity = (uint32_t)(bytes / sd->block_size);
    }
    return pg;
}

static rcgc_page *alloc_span_locked(uint32_t n, const span_desc *sd) {
    for (rcgc_arena *a = arena_list; a; a = a->next) {
        if (a->is_huge || a->nslices - a->slices_used - a->meta_slices < n)
            continue;
        int32_t first = find_free_run(a, n);
        if (first >= 0)
            return span_take(a, (uint32_t)first, n, sd);
    }
    rcgc_arena *a = arena_new(RCGC_ARENA_SIZE, false);
    if (!a)
        return NULL;
    return span_take(a, a->meta_slices, n, sd);
}

rcgc_page *rcgc__arena_alloc_span(uint32_t nslices, uint8_t kind, uint8_t tag, uint8_t size_class,
                                  uint32_t block_size) {
    RCGC_ASSERT(nslices >= 1 && nslices <= RCGC_ARENA_SLICES - ARENA_META_SLICES);
    RCGC_ASSERT(kind == RCGC_PAGE_LARGE || block_size > 0);
    span_desc sd = {kind, tag, size_class, block_size};
    pthread_mutex_lock(&arena_lock);
    rcgc_page *pg = alloc_span_locked(nslices, &sd);
    purge_due();
    pthread_mutex_unlock(&arena_lock);
    if (!pg)
        errno = ENOMEM;
    return pg;
}

rcgc_page *rcgc__arena_alloc_large(size_t size, uint8_t tag) {
    if (size > ((size_t)1 << 46)) {
        errno = ENOMEM;
        return NULL;
    }
    size_t slices = (size + RCGC_SLICE_SIZE - 1) / RCGC_SLICE_SIZE;
    if (slices == 0)
        slices = 1;
    if (slices <= RCGC_ARENA_SLICES - ARENA_META_SLICES)
        return rcgc__arena_alloc_span((uint32_t)slices, RCGC_PAGE_LARGE, tag, 0, 0);
    span_desc sd = {RCGC_PAGE_LARGE, tag, 0, 0};

    /* Huge: an arena of its own, holding one span. */
    size_t total = (ARENA_META_SLICES + slices) * RCGC_SLICE_SIZE;
    pthread_mutex_lock(&arena_lock);
    rcgc_page *pg = NULL;
    rcgc_arena *a = arena_new(total, true);
    if (a) {
        committed_bytes += slices * RCGC_SLICE_SIZE;
        pg = span_take(a, a->meta_slices, (uint32_t)slices, &sd);
    }
    pthread_mutex_unlock(&arena_lock);
    if (!pg)
        errno = ENOMEM;
    return pg;
}

/* Unmap empty huge arenas whose unmap failed earlier (arena_lock). */
static void retry_huge_unmaps(void) {
    huge_unmap_pending = false;
    rcgc_arena *a = arena_list;
    while (a) {
        rcgc_arena *next = a->next;
        if (a->is_huge && a->slices_used == 0) {
            size_t size = a->size;
            owned_set(a, false);
            arena_unlink(a);
            if (rcgc__os_release(a, size) == 0) {
                /* An empty huge arena counts its whole size as committed
                 * (its span's pages stayed resident when the first unmap
                 * failed): all of it goes. */
                n_arenas--;
                reserved_bytes -= size;
                committed_bytes -= size;
            } else {
                a->prev = NULL;
                a->next = arena_list;
                if (arena_list)
                    arena_list->prev = a;
                arena_list = a;
                owned_set(a, true);
                huge_unmap_pending = true;
            }
        }
        a = next;
    }
}

static size_t empty_arenas_locked(void) {
    size_t n = 0;
    for (rcgc_arena *a = arena_list; a; a = a->next)
        n += (a->slices_used == 0 && !a->is_huge);
    return n;
}

/* ------------------------------------------------------------------------
 * Purging (arena_lock held throughout)
 * ------------------------------------------------------------------------ */

/* Purge slices [first, first + n) of a now, one madvise; they stop being
 * dirty (committed) if the OS agreed. */
static void purge_run(rcgc_arena *a, uint32_t first, uint32_t n) {
    if (rcgc__os_purge((uint8_t *)a + (size_t)first * RCGC_SLICE_SIZE, (size_t)n * RCGC_SLICE_SIZE) != 0)
        return;     /* the memory stays committed, and counted so */
    dirty_map *d = dirty_of(a);
    for (uint32_t i = first; i < first + n; i++) {
        if (bit_get(d->bits, i)) {
            bit_put(d->bits, i, false);
            committed_bytes -= RCGC_SLICE_SIZE;
        }
    }
}

/* Give slices [first, first + n) of a a purge deadline. */
static void purge_defer(rcgc_arena *a, uint32_t first, uint32_t n, uint64_t deadline) {
    purge_map *pm = purge_of(a);
    if (purge_pending == 0)
        purge_next = UINT64_MAX;    /* nothing waits: an old deadline means nothing (span_take) */
    for (uint32_t i = first; i < first + n; i++) {
        if (!pm->deadline[i]) {
            pm->pending++;
            purge_pending++;
        }
        pm->deadline[i] = deadline;
    }
    if (deadline < purge_next) {
        purge_next = deadline;
        /* The purger sleeps until the old, later deadline, or without one
         * while nothing was pending: wake it. */
        pthread_cond_signal(&purge_cond);
    }
}

/* Purge the free slices whose deadline is at most `now` (every pending one
 * if now is UINT64_MAX), adjacent ones with one call; recompute the next
 * deadline. */
static void purge_expired(uint64_t now) {
    uint64_t next = UINT64_MAX;
    for (rcgc_arena *a = arena_list; a; a = a->next) {
        purge_map *pm = purge_of(a);
        if (a->is_huge || pm->pending == 0)
            continue;
        uint32_t run = 0;
        for (uint32_t i = a->meta_slices; i <= a->nslices; i++) {
            bool due = false;
            if (i < a->nslices && pm->deadline[i]) {
                if (pm->deadline[i] <= now) {
                    due = true;
                    pm->deadline[i] = 0;
                    pm->pending--;
                    purge_pending--;
                } else if (pm->deadline[i] < next) {
                    next = pm->deadline[i];
                }
            }
            if (due) {
                run++;
            } else if (run) {
                purge_run(a, i - run, run);
                run = 0;
            }
        }
    }
    purge_next = purge_pending ? next : UINT64_MAX;
}

/* Purge what is due, if anything is (cheap when nothing is). */
static void purge_due(void) {
    if (rcgc_unlikely(purge_pending != 0)) {
        uint64_t now = rcgc__os_now_ns();
        if (now >= purge_next)
            purge_expired(now);
    }
}

/* The purger: sleeps until the earliest deadline, purges, repeats. Never
 * attached; holds arena_lock except while it waits. */
static void *purger_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&arena_lock);
    while (!purger_quit) {
        if (purge_pending == 0) {
            pthread_cond_wait(&purge_cond, &arena_lock);
            continue;
        }
        uint64_t now = rcgc__os_now_ns();
        if (now < purge_next) {
            uint64_t t = purge_next;
            struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
            pthread_cond_timedwait(&purge_cond, &arena_lock, &ts);
            continue;
        }
        purge_expired(now);
    }
    pthread_mutex_unlock(&arena_lock);
    return NULL;
}

static void purge_init_once(void) { rcgc__os_cond_init_monotonic(&purge_cond); }

/* Start the purger if it is not running; false if it cannot run (then
 * purges happen at once). */
static bool purger_ensure(void) {
    if (rcgc_likely(purger_started))
        return true;
    if (purger_failed)
        return false;
    pthread_once(&purge_once, purge_init_once);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);   /* it takes no signals */
    int err = rcgc__os_thread_create(&purger_thread, &attr, purger_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err) {
        /* Not fatal: purge at once from now on (fault_walk_test fails this
         * site on purpose). A later rcgc_init tries again. */
        purger_failed = true;
        return false;
    }
    pthread_setname_np(purger_thread, "rcgc-purge");
    purger_started = true;
    return true;
}

/* rcgc_shutdown: the purger ends (the next rcgc_init starts a new one
 * when it is needed). */
static void purger_stop(void) {
    pthread_mutex_lock(&arena_lock);
    bool started = purger_started;
    purger_quit = true;
    if (started)
        pthread_cond_signal(&purge_cond);
    pthread_mutex_unlock(&arena_lock);
    if (started)
        pthread_join(purger_thread, NULL);
    pthread_mutex_lock(&arena_lock);
    purger_started = false;
    purger_quit = false;
    pthread_mutex_unlock(&arena_lock);
}

/* fork() while another thread (the purger, an allocating thread) holds
 * arena_lock would leave the child's lock held forever: the forking thread
 * takes it first. The child has no purger; its pending purges are done by
 * the next span given back or taken, which also starts a new purger. */
static void arena_before_fork(void) { pthread_mutex_lock(&arena_lock); }
static void arena_after_fork_parent(void) { pthread_mutex_unlock(&arena_lock); }
static void arena_after_fork_child(void) {
    purger_started = false;
    purger_failed = false;
    pthread_mutex_unlock(&arena_lock);
}
static void arena_register_atfork(void) {
    pthread_atfork(arena_before_fork, arena_after_fork_parent, arena_after_fork_child);
}

void rcgc__arena_init(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, arena_register_atfork);
    pthread_mutex_lock(&arena_lock);
    purger_failed = false;      /* a purger that could not start is tried again */
    pthread_mutex_unlock(&arena_lock);
}

void rcgc__arena_purge_all(void) {
    pthread_mutex_lock(&arena_lock);
    if (purge_pending)
        purge_expired(UINT64_MAX);
    pthread_mutex_unlock(&arena_lock);
}

void rcgc__arena_free_span(rcgc_page *pg) {
    rcgc_arena *a = rcgc__arena_of(pg);
    uint32_t first = (uint32_t)(pg - a->page);
    uint32_t n = pg->nslices;
    RCGC_ASSERT(a->magic == RCGC_ARENA_MAGIC && pg->slice_offset == 0);

    pthread_mutex_lock(&arena_lock);
    if (a->is_huge) {
        desc_set(pg, RCGC_PAGE_FREE, 0);
        a->slices_used = 0;
        /* The span's commit is dropped with the mapping. */
        committed_bytes -= (size_t)n * RCGC_SLICE_SIZE;
        size_t size = a->size;
        size_t meta = (size_t)a->meta_slices * RCGC_SLICE_SIZE;  /* read before the unmap */
        owned_set(a, false);
        arena_unlink(a);
        if (rcgc__os_release(a, size) == 0) {
            n_arenas--;
            reserved_bytes -= size;
            committed_bytes -= meta;
        } else {
            /* Could not unmap: keep the huge arena listed, empty (it serves
             * no other span); the next span freed retries the unmap. */
            huge_unmap_pending = true;
            committed_bytes += (size_t)n * RCGC_SLICE_SIZE;
            a->prev = NULL;
            a->next = arena_list;
            if (arena_list)
                arena_list->prev = a;
            arena_list = a;
            owned_set(a, true);
        }
        pthread_mutex_unlock(&arena_lock);
        return;
    }

    /* Reset the span's descriptor for its next use; kind and slice_offset
     * are reset atomically below (rcgc__arena_owns reads them unlocked). */
    memset(pg, 0, offsetof(rcgc_page, thread_free));
    pg->thread_free.head = NULL;
    pg->thread_free.generation = NULL;
    atomic_store_explicit(&pg->heap, NULL, memory_order_relaxed);
    pg->block_size = 0;
    pg->nslices = 0;
    pg->size_class = 0;
    pg->tag = 0;
    pg->abandoned = 0;
    for (uint32_t i = 0; i < n; i++) {
        desc_set(&a->page[first + i], RCGC_PAGE_FREE, 0);
        bit_put(a->slice_bits, first + i, false);
    }
    a->slices_used -= n;
    if (rcgc__option(RCGC_OPT_PURGE)) {
        long delay_ms = rcgc__option(RCGC_OPT_PURGE_DELAY_MS);
        if (delay_ms > 0 && purger_ensure())
            purge_defer(a, first, n, rcgc__os_now_ns() + (uint64_t)delay_ms * 1000000u);
        else
            purge_run(a, first, n);
    }
    if (a->slices_used == 0 && empty_arenas_locked() > (size_t)rcgc__option(RCGC_OPT_ARENA_CACHE))
        arena_release(a);
    if (rcgc_unlikely(huge_unmap_pending))
        retry_huge_unmaps();
    purge_due();
    pthread_mutex_unlock(&arena_lock);
}

/* ------------------------------------------------------------------------
 * Lookups and iteration
 * ------------------------------------------------------------------------ */

int rcgc__arena_owns(const void *p) {
    if (!owned_test(p))
        return 0;
    rcgc_arena *a = rcgc__arena_of(p);
    uintptr_t idx = ((uintptr_t)p - (uintptr_t)a) >> RCGC_SLICE_SHIFT;
    if (idx >= RCGC_ARENA_SLICES)
        return 0;   /* beyond the first 64 MiB of a huge block: not a block start */
    rcgc_page *pg = &a->page[idx];
    uint8_t kind = __atomic_load_n(&pg->kind, __ATOMIC_RELAXED);
    return kind != RCGC_PAGE_FREE && kind != RCGC_PAGE_META;
}

int rcgc__arena_foreach_span(int (*fn)(rcgc_page *pg, void *arg), void *arg) {
    int rc = 0;
    pthread_mutex_lock(&arena_lock);
    for (rcgc_arena *a = arena_list; a && !rc; a = a->next) {
        uint32_t limit = a->is_huge ? a->meta_slices + 1 : a->nslices;
        for (uint32_t i = a->meta_slices; i < limit && !rc; i++) {
            rcgc_page *pg = &a->page[i];
            if (pg->kind == RCGC_PAGE_FREE || pg->slice_offset != 0)
                continue;
            rc = fn(pg, arg);
            i += pg->nslices - 1;
        }
    }
    pthread_mutex_unlock(&arena_lock);
    return rc;
}

void rcgc__arena_stats(size_t *reserved, size_t *committed, size_t *arenas) {
    pthread_mutex_lock(&arena_lock);
    *reserved = reserved_bytes;
    *committed = committed_bytes;
    *arenas = n_arenas;
    pthread_mutex_unlock(&arena_lock);
}

/* An arena that rcgc_shutdown could not unmap, emptied: no block survives
 * shutdown. A normal arena serves the next rcgc_init; a huge one waits for
 * its unmap to be retried. Its commitment stays counted (arena_lock). */
static void keep_emptied(rcgc_arena *a) {
    uint32_t described = a->nslices < RCGC_ARENA_SLICES ? a->nslices : RCGC_ARENA_SLICES;
    for (uint32_t i = a->meta_slices; i < described; i++) {
        rcgc_page *pg = &a->page[i];
        desc_set(pg, RCGC_PAGE_FREE, 0);
        memset(pg, 0, offsetof(rcgc_page, thread_free));
        pg->thread_free.head = NULL;
        atomic_store_explicit(&pg->heap, NULL, memory_order_relaxed);
        pg->block_size = pg->nslices = 0;
        pg->size_class = pg->tag = pg->abandoned = 0;
        if (!a->is_huge)
            bit_put(a->slice_bits, i, false);
    }
    a->slices_used = 0;
    if (!a->is_huge)
        memset(purge_of(a), 0, sizeof(purge_map));
    size_t committed = a->size;
    if (!a->is_huge) {
        committed = (size_t)a->meta_slices * RCGC_SLICE_SIZE;
        dirty_map *d = dirty_of(a);
        for (uint32_t w = 0; w < RCGC_ARENA_SLICES / 64; w++)
            committed += (size_t)__builtin_popcountll(d->bits[w]) * RCGC_SLICE_SIZE;
    } else {
        huge_unmap_pending = true;
    }
    a->prev = NULL;
    a->next = arena_list;
    if (arena_list)
        arena_list->prev = a;
    arena_list = a;
    n_arenas++;
    reserved_bytes += a->size;
    committed_bytes += committed;
    owned_set(a, true);
}

void rcgc__arena_release_all(void) {
    purger_stop();
    pthread_mutex_lock(&arena_lock);
    rcgc_arena *kept = NULL;
    while (arena_list) {
        rcgc_arena *a = arena_list;
        size_t size = a->size;
        owned_set(a, false);
        arena_unlink(a);
        if (rcgc__os_release(a, size) != 0) {
            a->next = kept;     /* the OS refused (fault injection, or a VMA limit) */
            kept = a;
        }
    }
    n_arenas = 0;
    reserved_bytes = 0;
    committed_bytes = 0;
    huge_unmap_pending = false;
    purge_pending = 0;
    purge_next = UINT64_MAX;
    while (kept) {
        rcgc_arena *a = kept;
        kept = a->next;
        keep_emptied(a);
    }
    pthread_mutex_unlock(&arena_lock);
}
