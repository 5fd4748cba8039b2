/*
 * Per-thread heaps (the mimalloc design, pymalloc's size classes).
 *
 * Each attached thread owns one heap. Per tag and size class the heap keeps
 * a queue of pages; the first page of the queue is the one allocation takes
 * blocks from. Frees by the owner go to the page's local free list (no
 * atomics); frees by any other thread are pushed on the page's thread-free
 * stack (one CAS) and collected by the owner in batches, in its slow path.
 *
 * Abandonment: a detaching thread hands every page that still holds blocks
 * to a global abandoned list (per tag and class); heaps adopt them when they
 * need a page of that class, and a free into an abandoned page adopts it.
 *
 * Thread-safety: rcgc__heap_alloc and rcgc__heap_free run on the calling
 * thread's own heap; rcgc__heap_free accepts blocks from any heap.
 */
#ifndef RCGC_HEAP_H
#define RCGC_HEAP_H

#include "arena.h"

typedef struct rcgc_page_queue {
    rcgc_page *first, *last;    /* first: the page allocation takes from */
    uint32_t   count;
} rcgc_page_queue;

struct rcgc_heap {
    /* Owner only. direct[tag][c] == queue[tag][c].first, or the shared
     * empty page, so the fast path needs no NULL check. */
    rcgc_page *direct[RCGC_NTAGS][RCGC_SMALL_CLASSES + 1];
    rcgc_page_queue queue[RCGC_NTAGS][RCGC_NCLASSES];
    uint32_t slow_calls;        /* counts slow paths, for periodic housekeeping */

    /* Remote frees into one page, chained here and pushed on its
     * thread-free stack with one CAS (owner only): a consumer freeing a
     * producer's blocks frees runs of blocks from the same page. */
    rcgc_page  *rf_page;
    rcgc_block *rf_first, *rf_last;
    uint32_t    rf_count;
    uint32_t attached;

    /* Statistics: written by the owner with relaxed atomics, read by
     * rcgc_stats_get. */
    struct {
        size_t allocs, large_allocs, large_frees;   /* frees: allocs - in use */
        size_t remote_frees, remote_free_bytes;  /* pushed on other heaps' pages */
    } stat;
};

/* The collector's epoch (gc.c): bumped by every collection, with the world
 * stopped. Pages remember the epoch of their last allocation. */
extern uint32_t rcgc__gc_epoch;
/* The word at offset 16 of a free block on an object page (an object's
 * `shared` field): RCGC_SHARED_FREED (object.h), repeated here because the
 * heap layer does not know objects. */
#define RCGC_BLOCK_FREE_MARK (INTPTR_MIN | 3)

/* Double-free detection. A freed small or medium block holds, in its
 * second word, its address mixed with a key; every free checks the word
 * before it writes it, every allocation clears it (a store to the line the
 * free-list pop has just read). So a block freed twice with no allocation
 * between is caught whoever frees it (owner or not) and whatever its page
 * holds: the mark stays through remote frees (which link through the first
 * word), page collection and adoption. Exact for objects (that word is
 * `local` and `gc`, whose high half is a few flag bits, never the key's);
 * a raw block whose user data holds exactly this value at offset 8 would
 * be reported falsely. The low half is never UINT32_MAX, so a stale
 * decref of a freed object still reaches the slow path that reports it
 * (an immortal `local` would return early). Large blocks are not marked:
 * their span's descriptor says whether the block is in use. Cost:
 * docs/BENCHMARKS.md. */
#define RCGC_BLOCK_MARK_KEY ((uintptr_t)0x5bd1e9955a5c3e25u)
static inline uintptr_t rcgc__block_free_mark(const rcgc_block *b) {
    return (uintptr_t)b ^ RCGC_BLOCK_MARK_KEY;
}
static inline uintptr_t rcgc__block_mark(const rcgc_block *b) {
    return __atomic_load_n(&b->mark, __ATOMIC_RELAXED);
}
static inline void rcgc__block_mark_set(rcgc_block *b, uintptr_t v) {
    __atomic_store_n(&b->mark, v, __ATOMIC_RELAXED);
}
/* A block freed twice: fatal, naming the block, its size and its page. */
RCGC_COLD __attribute__((noreturn)) void rcgc__heap_double_free(const rcgc_heap *h,
                                                                   const rcgc_block *b);

/* Size classes. */
extern const uint32_t rcgc__class_size[RCGC_NCLASSES];
static inline unsigned rcgc__size_class(size_t size) {
    if (rcgc_likely(size <= RCGC_SMALL_MAX))
        return size == 0 ? 1 : (unsigned)((size + RCGC_ALIGN - 1) / RCGC_ALIGN);
    /* Medium: sizes in (2^b, 2^(b+1)] split in four classes. */
    unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)(size - 1));
    unsigned k = (unsigned)(((size - 1) - ((size_t)1 << b)) >> (b - 2));
    return 1 + RCGC_SMALL_CLASSES + (b - 9) * 4 + k;
}

/* Set up / tear down a heap (thread attach / detach). Detach abandons every
 * page that still holds blocks and releases the rest. */
void rcgc__heap_init(rcgc_heap *h);
void rcgc__heap_abandon(rcgc_heap *h);

void *rcgc__heap_alloc_slow(rcgc_heap *h, unsigned tag, size_t size);
void  rcgc__heap_free_slow(rcgc_heap *h, rcgc_page *pg, rcgc_block *b);

/* Allocation fast path: small sizes, one page load, one branch. The block
 * is not zeroed. NULL + ENOMEM from the slow path only. */
static inline void *rcgc__heap_alloc(rcgc_heap *h, unsigned tag, size_t size) {
    if (rcgc_likely(size <= RCGC_SMALL_MAX)) {
        rcgc_page *pg = h->direct[tag][(size + RCGC_ALIGN - 1) / RCGC_ALIGN];
        rcgc_block *b = pg->free;
        if (rcgc_likely(b != NULL)) {
            pg->free = b->next;
            rcgc__block_mark_set(b, 0);
            RCGC_STAT_ADD(pg->used, 1);
            RCGC_STAT_ADD(h->stat.allocs, 1);
            return b;
        }
    }
    return rcgc__heap_alloc_slow(h, tag, size);
}

/* Free fast path: the owner pushes on the page's local list. Anything else
 * (another thread's page, an abandoned page, a large block, the page
 * becoming empty) goes to the slow path. */
static inline void rcgc__heap_free(rcgc_heap *h, void *p) {
    rcgc_page *pg = rcgc__page_of(p);
    rcgc_block *b = (rcgc_block *)p;
    /* Large spans never have a heap, so they always take the slow path. */
    if (rcgc_likely(atomic_load_explicit(&pg->heap, memory_order_relaxed) == h &&
                    pg->used > 1)) {
        uintptr_t mark = rcgc__block_free_mark(b);
        if (rcgc_unlikely(rcgc__block_mark(b) == mark))
            rcgc__heap_double_free(h, b);
        rcgc__block_mark_set(b, mark);
        b->next = pg->local_free;
        pg->local_free = b;
        RCGC_STAT_ADD(pg->used, -1u);
        return;
    }
    rcgc__heap_free_slow(h, pg, b);
}

/* Usable bytes of the block at p. */
static inline size_t rcgc__block_size(const void *p) {
    const rcgc_page *pg = rcgc__page_of(p);
    return pg->kind == RCGC_PAGE_LARGE ? (size_t)pg->nslices * RCGC_SLICE_SIZE : pg->block_size;
}

/* The block start containing p, or NULL if p is not inside a carved block
 * of an rcgc page. Lock-free; the answer is stable only if the caller knows
 * the block cannot be freed meanwhile. */
void *rcgc__heap_block_start(const void *p);

/* Push h's chained remote frees (rf_*) to their page. */
void rcgc__heap_flush_remote(rcgc_heap *h);
/* Collect deferred frees on every page of h; release empty pages. */
void rcgc__heap_collect(rcgc_heap *h);
/* Collect abandoned pages: release the empty ones (any thread). */
void rcgc__heap_collect_abandoned(void);

/* ------------------------------------------------------------------------
 * Heap walk (for the cycle collector and introspection). The caller must
 * ensure no thread allocates or frees on the walked pages meanwhile, and
 * that no thread holds chained remote frees (rf_*): both hold when the
 * world is stopped (threads flush their chain before they suspend or enter
 * a blocking region; the requester flushes its own), or when every other
 * thread has detached or flushed (rcgc_heap_collect).
 * ------------------------------------------------------------------------ */
typedef int (*rcgc_block_visitor)(void *block, size_t block_size, void *arg);

/* Pages holding blocks of `tag` (every tag if tag < 0), written into a new
 * array from rcgc__os_alloc: the unit that parallel walkers split. Returns
 * the count, or (size_t)-1 + ENOMEM. Free with rcgc__heap_pages_free. */
size_t rcgc__heap_pages(int tag, rcgc_page ***out, size_t *out_bytes);
void   rcgc__heap_pages_free(rcgc_page **pages, size_t bytes);
/* Visit every allocated block of one page; stops at and returns non-zero. */
int    rcgc__page_visit(rcgc_page *pg, rcgc_block_visitor fn, void *arg);
/* Visit every allocated block of `tag` (every tag if tag < 0). */
int    rcgc__heap_visit(int tag, rcgc_block_visitor fn, void *arg);
/* Visit the allocated blocks of `tag` on the pages h owns (not large ones). */
int    rcgc__heap_visit_own(rcgc_heap *h, unsigned tag, rcgc_block_visitor fn, void *arg);

/* Shutdown: drop the abandoned lists (pages holding immortal or leaked
 * blocks) before the arenas go, and zero the remote-free counters that
 * statistics pair with the (reset) per-thread ones. */
void   rcgc__heap_shutdown_reset(void);
/* Abandoned pages (statistics). */
size_t rcgc__heap_abandoned_pages(void);
/* Remote frees collected by page owners so far (blocks, bytes): with the
 * heaps' remote_frees counters this gives the frees still in flight. */
void   rcgc__heap_collected_remote(size_t *blocks, size_t *bytes);

#endif
