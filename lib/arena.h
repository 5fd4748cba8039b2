/*
 * Shared arenas: 64 MiB reservations aligned to 64 MiB, so that
 * pointer -> arena is a mask and arena -> page descriptor an index.
 *
 *   arena base                                            base + 64 MiB
 *   | meta slices: rcgc_arena + page[1024] | slice | slice | ... | slice |
 *
 * A span is 1..N contiguous 64 KiB slices handed to a heap as one page.
 * The descriptor of a span's first slice describes it; the others point
 * back to it (slice_offset). Huge blocks (bigger than an arena can hold)
 * get an arena of their own, sized to fit, holding one span.
 *
 * Thread-safety: span allocation and release take the arena lock (a slow
 * path: once per page); pointer lookups take no lock.
 */
#ifndef RCGC_ARENA_H
#define RCGC_ARENA_H

#include <ck_stack.h>
#include <pthread.h>

#include "internal.h"

/* A free block: the free-list link, then the double-free mark (heap.h,
 * rcgc__block_free_mark; every block is at least 16 bytes). */
typedef struct rcgc_block {
    struct rcgc_block *next;
    uintptr_t mark;
} rcgc_block;
typedef struct rcgc_heap rcgc_heap;

enum { RCGC_PAGE_FREE = 0, RCGC_PAGE_SMALL, RCGC_PAGE_MEDIUM, RCGC_PAGE_LARGE, RCGC_PAGE_META };

/* A page: a span of slices holding blocks of one size class (or one large
 * block). Field ownership is given per group. */
/* A page: a span of slices holding blocks of one size class (or one large
 * block). 128 bytes, 128-aligned, in two cache lines:
 *  - line 0 is written by the owner on every allocation and free;
 *  - line 1 holds what other threads touch: the thread-free stack (one CAS
 *    per batch of remote frees) and read-mostly fields.
 * Neighbouring slices usually belong to different threads' heaps; when
 * descriptors shared lines, two threads' fast paths fought over them
 * (2-thread allocation throughput varied 27-207 M/s between runs), and
 * remote frees fought the owner's allocations. */
typedef struct __attribute__((aligned(128))) rcgc_page {
    /* Line 0. Owner only: the thread whose heap is in `heap` (or, while
     * abandoned, whoever holds the abandoned-list lock). */
    rcgc_block *free;           /* blocks ready to allocate */
    rcgc_block *local_free;     /* the owner's frees, moved to `free` in batches */
    uint32_t used;              /* blocks out, remote frees not yet collected included;
                                   relaxed atomics so statistics may read it */
    uint32_t reserved;          /* blocks carved from the span so far */
    uint32_t capacity;          /* blocks the span holds */
    uint32_t gc_epoch;          /* the collector's epoch when blocks were last allocated here
                                   (young collections walk only the current epoch's pages) */
    uint8_t *start;             /* first block (set with the span) */
    struct rcgc_page *next, *prev; /* heap page queue, or the abandoned list */

    /* Line 1. Shared. */
    _Alignas(64) ck_stack_t thread_free; /* frees from other threads */
    rcgc_heap *_Atomic heap;    /* owner; NULL while abandoned. Written by the
                                   owner (abandon) or under the abandoned lock
                                   (adopt); read relaxed by freeing threads. */
    /* Set under the arena lock when the span is handed out; read by anyone
     * who holds a block of it. */
    uint32_t block_size;
    uint32_t nslices;
    uint32_t slice_offset;      /* non-first slices: index distance to the first */
    uint8_t  kind;              /* RCGC_PAGE_* */
    uint8_t  size_class;        /* 0 for large */
    uint8_t  tag;               /* RCGC_TAG_* */
    uint8_t  abandoned;         /* on the abandoned list (abandoned lock) */
} rcgc_page;

typedef struct rcgc_arena {
    uint64_t magic;
    size_t   size;              /* bytes reserved, multiple of the slice size */
    uint32_t nslices;           /* slices in the reservation */
    uint32_t meta_slices;       /* slices taken by this header and page[] */
    uint32_t slices_used;       /* arena lock */
    uint32_t is_huge;
    struct rcgc_arena *next, *prev; /* arena list (arena lock) */
    uint64_t slice_bits[RCGC_ARENA_SLICES / 64]; /* 1 = slice in a span (arena lock) */
    rcgc_page page[RCGC_ARENA_SLICES];
} rcgc_arena;

#define RCGC_ARENA_MAGIC 0x72636763415245ULL /* "rcgcARE" */

/* Lock-free stacks on ck_stack_t's layout. ck's own operations read the
 * head with ck_pr_load_ptr, and on x86-64 ck_pr_fas_ptr is emulated with
 * that load and a CAS: a volatile load, which ThreadSanitizer does not see
 * as atomic, so every push/pop pair would be reported as a race. These
 * helpers use compiler atomics for every shared access (and store the link
 * atomically: see heap.c, thread_free_push). Multi-producer push, and a
 * pop of the whole stack with one exchange (so no ABA problem). */
static inline void rcgc__stack_push(ck_stack_t *s, ck_stack_entry_t *e) {
    ck_stack_entry_t *head = __atomic_load_n(&s->head, __ATOMIC_RELAXED);
    do {
        __atomic_store_n(&e->next, head, __ATOMIC_RELAXED);
    } while (!__atomic_compare_exchange_n(&s->head, &head, e, true, __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
}
static inline ck_stack_entry_t *rcgc__stack_pop_all(ck_stack_t *s) {
    return __atomic_exchange_n(&s->head, NULL, __ATOMIC_ACQUIRE);
}
static inline bool rcgc__stack_empty(ck_stack_t *s) {
    return __atomic_load_n(&s->head, __ATOMIC_RELAXED) == NULL;
}

/* Pointer -> arena -> page: arithmetic only. Valid for any pointer into a
 * span's first 64 MiB; p must lie in an rcgc arena (see rcgc__arena_owns). */
static inline rcgc_arena *rcgc__arena_of(const void *p) {
    return (rcgc_arena *)((uintptr_t)p & ~(uintptr_t)(RCGC_ARENA_SIZE - 1));
}
static inline rcgc_page *rcgc__page_of(const void *p) {
    rcgc_arena *a = rcgc__arena_of(p);
    rcgc_page *pg = &a->page[((uintptr_t)p - (uintptr_t)a) >> RCGC_SLICE_SHIFT];
    return pg - pg->slice_offset;
}

/* One bit per 64 MiB of a 48-bit address space: is an arena mapped here?
 * (arena.c keeps it.) */
#define RCGC_ARENA_BITMAP_WORDS (((uintptr_t)1 << (48 - RCGC_ARENA_SHIFT)) / 64)
extern _Atomic uint64_t rcgc__arena_bitmap[RCGC_ARENA_BITMAP_WORDS];
static inline bool rcgc__arena_mapped(const void *p) {
    uintptr_t i = (uintptr_t)p >> RCGC_ARENA_SHIFT;
    if (rcgc_unlikely(i / 64 >= RCGC_ARENA_BITMAP_WORDS))
        return false;
    return (atomic_load_explicit(&rcgc__arena_bitmap[i / 64], memory_order_relaxed) >> (i % 64)) & 1;
}

/* A span of `nslices` for blocks of `block_size` bytes: kind, tag, class,
 * block_size and capacity are set under the arena lock (statistics and the
 * heap walk read them there). NULL + ENOMEM. */
rcgc_page *rcgc__arena_alloc_span(uint32_t nslices, uint8_t kind, uint8_t tag, uint8_t size_class,
                                  uint32_t block_size);
/* A span for one block of `size` bytes (large and huge), used = 1. */
rcgc_page *rcgc__arena_alloc_large(size_t size, uint8_t tag);
/* Give a span back: purged RCGC_PURGE_DELAY_MS later (at once with 0; never
 * without RCGC_PURGE); empty arenas go to the OS. */
void rcgc__arena_free_span(rcgc_page *pg);
/* Purge every span given back whose purge is still pending (rcgc_heap_collect). */
void rcgc__arena_purge_all(void);
/* rcgc_init: fork handlers (once), and a purger that failed to start may
 * be tried again. */
void rcgc__arena_init(void);
/* 1 if p points into the used part of a live arena's span. Lock-free. */
int  rcgc__arena_owns(const void *p);

/* Iterate every in-use span: call fn(page, arg) with the arena lock held
 * (fn must not allocate spans). Non-zero from fn stops and is returned. */
int  rcgc__arena_foreach_span(int (*fn)(rcgc_page *pg, void *arg), void *arg);

/* Totals (arena lock). */
void rcgc__arena_stats(size_t *reserved, size_t *committed, size_t *arenas);
/* Release every arena (rcgc_shutdown: no thread may hold blocks after).
 * One the OS refuses to unmap stays listed and counted, emptied, for the
 * next rcgc_init to reuse (a huge one for the next unmap attempt). */
void rcgc__arena_release_all(void);

#endif
