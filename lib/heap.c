/*
 * Per-thread heaps: size-class pages, free lists, remote frees,
 * abandonment and adoption, and the heap walk (see heap.h).
 *
 * Theory. A page's owner-only fields (free, local_free, used, reserved,
 * queue links) are touched by exactly one thread at a time: the thread
 * whose heap is in page->heap, or — while page->heap is NULL — whoever
 * holds `abandoned_lock`. Ownership passes only through that lock:
 *
 *   abandon (owner):  collect frees; lock; heap := NULL; link; unlock
 *   adopt (anyone):   lock; unlink; heap := me; unlock
 *
 * so every owner-only write of the old owner happens before the new owner's
 * reads. Other threads never touch owner-only fields; they push freed blocks
 * on page->thread_free (ck_stack, one CAS), which any owner drains with one
 * atomic exchange.
 *
 * A page is released to its arena only when `used` reaches zero, i.e. every
 * block it ever handed out has come home and been counted (remote frees
 * count only once collected). No thread can then hold a block of the page,
 * so no thread can be about to push onto its thread-free stack: a freeing
 * thread touches the page only before its push, never after.
 *
 * A freeing thread chains up to 64 blocks of one page before it pushes them
 * with one CAS (rf_* in the heap); the chain is flushed when the thread
 * frees into another page, allocates on its slow path, passes a safepoint
 * slow path, collects or detaches. Chained blocks still count in the
 * page's `used`, so the page cannot be released under the chain.
 *
 * Remote frees into a full page are not signalled to the owner; they are
 * found when the owner's slow path rotates through its pages of that class
 * (a bounded number per call) and in the periodic full collection, which
 * also releases empty pages. Pages abandoned with blocks still out are
 * released by rcgc__heap_collect_abandoned or by adoption.
 */
#include <errno.h>
#include <string.h>

#include "heap.h"
#include "os.h"

/* Size of each class: 16-byte steps to 512 (pymalloc), then four classes
 * per doubling up to 32 KiB. */
#define MED(b) ((1u << (b)) + (1u << ((b) - 2))), ((1u << (b)) + (2u << ((b) - 2))), \
               ((1u << (b)) + (3u << ((b) - 2))), (2u << (b))
const uint32_t rcgc__class_size[RCGC_NCLASSES] = {
    0,   16,  32,  48,  64,  80,  96,  112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
    272, 288, 304, 320, 336, 352, 368, 384, 400, 416, 432, 448, 464, 480, 496, 512,
    MED(9), MED(10), MED(11), MED(12), MED(13), MED(14),
};
_Static_assert(RCGC_NCLASSES == 57, "class table matches the tunables");
_Static_assert(RCGC_SLICE_SIZE / RCGC_ALIGN <= 4096, "page_visit's bitmap holds a page");

/* Pages a slow path inspects before it takes a fresh one from an arena. */
#define ROTATE_LIMIT 8
/* Slow paths between two full collections of the heap's pages. */
#define COLLECT_EVERY 4096
/* Blocks carved at a time from a fresh page: touching a page lazily keeps
 * RSS proportional to use. */
#define EXTEND_BYTES ((size_t)16 << 10)

/* The page every direct[] slot points at when its queue is empty: it never
 * has a free block, so the fast path falls through to the slow path. */
static rcgc_page empty_page;

/* Abandoned pages, per tag and class (abandoned_lock). */
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static rcgc_page_queue abandoned[RCGC_NTAGS][RCGC_NCLASSES];
static _Atomic size_t abandoned_total;   /* read without the lock */

/* Remote frees collected (once per batch, so a shared counter is cheap). */
static _Atomic size_t collected_blocks, collected_bytes;

void rcgc__heap_collected_remote(size_t *blocks, size_t *bytes) {
    *blocks = atomic_load_explicit(&collected_blocks, memory_order_relaxed);
    *bytes = atomic_load_explicit(&collected_bytes, memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * Page queues (owner, or abandoned_lock for the abandoned lists)
 * ------------------------------------------------------------------------ */

static void queue_push_front(rcgc_page_queue *q, rcgc_page *pg) {
    pg->prev = NULL;
    pg->next = q->first;
    if (q->first)
        q->first->prev = pg;
    else
        q->last = pg;
    q->first = pg;
    q->count++;
}

static void queue_push_back(rcgc_page_queue *q, rcgc_page *pg) {
    pg->next = NULL;
    pg->prev = q->last;
    if (q->last)
        q->last->next = pg;
    else
        q->first = pg;
    q->last = pg;
    q->count++;
}

static void queue_remove(rcgc_page_queue *q, rcgc_page *pg) {
    if (pg->prev)
        pg->prev->next = pg->next;
    else
        q->first = pg->next;
    if (pg->next)
        pg->next->prev = pg->prev;
    else
        q->last = pg->prev;
    pg->next = pg->prev = NULL;
    q->count--;
}

/* Keep the fast path's direct pointer equal to the queue's first page.
 * The page allocation will take blocks from is young in the collector's
 * current epoch (gc.c): stamp it here, since the fast path does not (a
 * page that became first because the one before it was released was
 * missed, and young collections did not see the objects allocated on it). */
static void direct_update(rcgc_heap *h, unsigned tag, unsigned c) {
    rcgc_page *first = h->queue[tag][c].first;
    if (first)
        first->gc_epoch = __atomic_load_n(&rcgc__gc_epoch, __ATOMIC_RELAXED);
    if (c <= RCGC_SMALL_CLASSES)
        h->direct[tag][c] = first ? first : &empty_page;
}

/* ------------------------------------------------------------------------
 * Page free lists (owner)
 * ------------------------------------------------------------------------ */

/* Carve more blocks from the untouched part of the page into `free`. */
static void page_extend(rcgc_page *pg) {
    uint32_t n = pg->capacity - pg->reserved;
    uint32_t batch = (uint32_t)(EXTEND_BYTES / pg->block_size);
    if (batch == 0)
        batch = 1;
    if (n > batch)
        n = batch;
    uint8_t *p = pg->start + (size_t)pg->reserved * pg->block_size;
    rcgc_block *head = pg->free;
    /* Build in reverse so that blocks come out in address order. */
    for (uint32_t i = n; i-- > 0;) {
        rcgc_block *b = (rcgc_block *)(p + (size_t)i * pg->block_size);
        b->next = head;
        head = b;
    }
    /* Object pages: a block never allocated is marked free the way a freed
     * object is (its shared count poisoned), so the collector tells live
     * blocks from free ones by their header alone (gc.c). A reused span
     * may hold anything at these addresses. */
    if (pg->tag != RCGC_TAG_RAW) {
        for (uint32_t i = 0; i < n; i++)
            __atomic_store_n((intptr_t *)(p + (size_t)i * pg->block_size) + 2, RCGC_BLOCK_FREE_MARK,
                             __ATOMIC_RELAXED);
    }
    pg->free = head;
    pg->reserved += n;
}

/* Move the owner's and other threads' frees back to `free`; extend the page
 * if still empty. Returns true if `free` has a block. */
static bool page_collect(rcgc_page *pg) {
    if (pg->local_free) {
        /* Append: `free` is usually empty here, and order hardly matters. */
        if (!pg->free) {
            pg->free = pg->local_free;
        } else {
            rcgc_block *t = pg->local_free;
            while (t->next)
                t = t->next;
            t->next = pg->free;
            pg->free = pg->local_free;
        }
        pg->local_free = NULL;
    }
    if (!rcgc__stack_empty(&pg->thread_free)) {
        rcgc_block *list = (rcgc_block *)rcgc__stack_pop_all(&pg->thread_free);
        if (list) {
            uint32_t n = 1;
            rcgc_block *t = list;
            while (t->next) {
                t = t->next;
                n++;
            }
            t->next = pg->free;
            pg->free = list;
            RCGC_ASSERT(pg->used >= n);
            RCGC_STAT_ADD(pg->used, -n);
            atomic_fetch_add_explicit(&collected_blocks, n, memory_order_relaxed);
            atomic_fetch_add_explicit(&collected_bytes, (size_t)n * pg->block_size,
                                      memory_order_relaxed);
        }
    }
    if (!pg->free && pg->reserved < pg->capacity)
        page_extend(pg);
    return pg->free != NULL;
}

/* A fresh span becomes h's page (descriptor fields set by the arena). */
static void page_init(rcgc_page *pg, rcgc_heap *h) {
    /* reserved, used and the lists were zeroed by the arena under its lock
     * (statistics may already be reading `used`). */
    RCGC_ASSERT(pg->reserved == 0 && pg->free == NULL && pg->local_free == NULL);
    pg->abandoned = 0;
    atomic_store_explicit(&pg->heap, h, memory_order_relaxed);
    page_extend(pg);
}

/* ------------------------------------------------------------------------
 * Abandoned pages
 * ------------------------------------------------------------------------ */

/* Take an abandoned page of (tag, c) that has a free block; release the
 * empty ones met on the way. NULL if none. */
static rcgc_page *adopt_for_alloc(rcgc_heap *h, unsigned tag, unsigned c) {
    if (atomic_load_explicit(&abandoned_total, memory_order_relaxed) == 0)
        return NULL;
    rcgc_page *found = NULL;
    pthread_mutex_lock(&abandoned_lock);
    rcgc_page_queue *aq = &abandoned[tag][c];
    while (aq->first && !found) {
        rcgc_page *pg = aq->first;
        queue_remove(aq, pg);
        pg->abandoned = 0;
        atomic_fetch_sub_explicit(&abandoned_total, 1, memory_order_relaxed);
        page_collect(pg);
        if (pg->used == 0) {
            rcgc__arena_free_span(pg);
            continue;
        }
        atomic_store_explicit(&pg->heap, h, memory_order_relaxed);
        if (pg->free)
            found = pg;
        else
            queue_push_back(&h->queue[tag][c], pg);   /* full: keep it, rotate later */
    }
    pthread_mutex_unlock(&abandoned_lock);
    return found;
}

void rcgc__heap_collect_abandoned(void) {
    if (atomic_load_explicit(&abandoned_total, memory_order_relaxed) == 0)
        return;
    pthread_mutex_lock(&abandoned_lock);
    for (unsigned tag = 0; tag < RCGC_NTAGS; tag++) {
        for (unsigned c = 1; c < RCGC_NCLASSES; c++) {
            rcgc_page *pg = abandoned[tag][c].first;
            while (pg) {
                rcgc_page *next = pg->next;
                page_collect(pg);
                if (pg->used == 0) {
                    queue_remove(&abandoned[tag][c], pg);
                    atomic_fetch_sub_explicit(&abandoned_total, 1, memory_order_relaxed);
                    rcgc__arena_free_span(pg);
                }
                pg = next;
            }
        }
    }
    pthread_mutex_unlock(&abandoned_lock);
}

void rcgc__heap_shutdown_reset(void) {
    pthread_mutex_lock(&abandoned_lock);
    memset(abandoned, 0, sizeof abandoned);
    atomic_store_explicit(&abandoned_total, 0, memory_order_relaxed);
    atomic_store_explicit(&collected_blocks, 0, memory_order_relaxed);
    atomic_store_explicit(&collected_bytes, 0, memory_order_relaxed);
    pthread_mutex_unlock(&abandoned_lock);
}

size_t rcgc__heap_abandoned_pages(void) {
    return atomic_load_explicit(&abandoned_total, memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * Heap life cycle
 * ------------------------------------------------------------------------ */

void rcgc__heap_init(rcgc_heap *h) {
    memset(h, 0, sizeof *h);
    for (unsigned tag = 0; tag < RCGC_NTAGS; tag++)
        for (unsigned c = 0; c <= RCGC_SMALL_CLASSES; c++)
            h->direct[tag][c] = &empty_page;
    h->attached = 1;
}

/* Drop an empty page from the heap and give its span back. */
static void page_release(rcgc_heap *h, rcgc_page *pg) {
    unsigned tag = pg->tag, c = pg->size_class;
    queue_remove(&h->queue[tag][c], pg);
    direct_update(h, tag, c);
    rcgc__arena_free_span(pg);
}

void rcgc__heap_abandon(rcgc_heap *h) {
    rcgc__heap_flush_remote(h);
    for (unsigned tag = 0; tag < RCGC_NTAGS; tag++) {
        for (unsigned c = 1; c < RCGC_NCLASSES; c++) {
            rcgc_page_queue *q = &h->queue[tag][c];
            while (q->first) {
                rcgc_page *pg = q->first;
                queue_remove(q, pg);
                page_collect(pg);
                if (pg->used == 0) {
                    rcgc__arena_free_span(pg);
                    continue;
                }
                pthread_mutex_lock(&abandoned_lock);
                atomic_store_explicit(&pg->heap, NULL, memory_order_relaxed);
                pg->abandoned = 1;
                queue_push_back(&abandoned[tag][c], pg);
                atomic_fetch_add_explicit(&abandoned_total, 1, memory_order_relaxed);
                pthread_mutex_unlock(&abandoned_lock);
            }
            direct_update(h, tag, c);
        }
    }
    h->attached = 0;
    /* Pages abandoned earlier may have been emptied by frees since. */
    rcgc__heap_collect_abandoned();
}

void rcgc__heap_collect(rcgc_heap *h) {
    rcgc__heap_flush_remote(h);
    for (unsigned tag = 0; tag < RCGC_NTAGS; tag++) {
        for (unsigned c = 1; c < RCGC_NCLASSES; c++) {
            rcgc_page_queue *q = &h->queue[tag][c];
            rcgc_page *pg = q->first;
            while (pg) {
                rcgc_page *next = pg->next;
                page_collect(pg);
                if (pg->used == 0 && q->count > 1)
                    page_release(h, pg);
                pg = next;
            }
        }
    }
    rcgc__heap_collect_abandoned();
}

/* ------------------------------------------------------------------------
 * Allocation slow path
 * ------------------------------------------------------------------------ */

/* A page of (tag, c) with a free block, made the queue's first; NULL +
 * ENOMEM if no memory. */
static rcgc_page *find_page(rcgc_heap *h, unsigned tag, unsigned c) {
    rcgc_page_queue *q = &h->queue[tag][c];

    /* 1. The current page, and a few more in rotation: full pages go to the
     *    back, so pages with remote frees come round again. */
    for (unsigned i = 0; i < ROTATE_LIMIT && q->first; i++) {
        rcgc_page *pg = q->first;
        if (page_collect(pg))
            return pg;
        if (q->count == 1)
            break;
        queue_remove(q, pg);
        queue_push_back(q, pg);
    }

    /* 2. An abandoned page of this class. */
    rcgc_page *pg = adopt_for_alloc(h, tag, c);
    if (!pg) {
        /* 3. A fresh page. */
        bool small = c <= RCGC_SMALL_CLASSES;
        pg = rcgc__arena_alloc_span(small ? RCGC_SMALL_PAGE_SLICES : RCGC_MEDIUM_PAGE_SLICES,
                                    small ? RCGC_PAGE_SMALL : RCGC_PAGE_MEDIUM, (uint8_t)tag,
                                    (uint8_t)c, rcgc__class_size[c]);
        if (!pg)
            return NULL;
        page_init(pg, h);
    }
    queue_push_front(q, pg);
    return pg;
}

static void *alloc_large(rcgc_heap *h, unsigned tag, size_t size) {
    rcgc_page *pg = rcgc__arena_alloc_large(size, (uint8_t)tag);
    if (!pg)
        return NULL;
    pg->gc_epoch = __atomic_load_n(&rcgc__gc_epoch, __ATOMIC_RELAXED);
    RCGC_STAT_ADD(h->stat.allocs, 1);
    RCGC_STAT_ADD(h->stat.large_allocs, 1);
    return pg->start;
}

RCGC_NOINLINE
void *rcgc__heap_alloc_slow(rcgc_heap *h, unsigned tag, size_t size) {
    if (size > RCGC_MEDIUM_MAX)
        return alloc_large(h, tag, size);
    if (rcgc_unlikely(++h->slow_calls % COLLECT_EVERY == 0))
        rcgc__heap_collect(h);
    else if (h->rf_page)
        rcgc__heap_flush_remote(h);
    unsigned c = rcgc__size_class(size);
    rcgc_page *pg = find_page(h, tag, c);
    direct_update(h, tag, c);
    if (!pg) {
        errno = ENOMEM;
        return NULL;
    }
    /* Young collections walk the pages allocated from since the last
     * collection: stamp this one (the collector stamps each heap's current
     * pages when it bumps the epoch). */
    pg->gc_epoch = __atomic_load_n(&rcgc__gc_epoch, __ATOMIC_RELAXED);
    rcgc_block *b = pg->free;
    pg->free = b->next;
    rcgc__block_mark_set(b, 0);
    RCGC_STAT_ADD(pg->used, 1);
    RCGC_STAT_ADD(h->stat.allocs, 1);
    return b;
}

/* ------------------------------------------------------------------------
 * Free slow path
 * ------------------------------------------------------------------------ */

/* The owner frees b into pg; the page may become empty. */
static void free_local(rcgc_heap *h, rcgc_page *pg, rcgc_block *b) {
    b->next = pg->local_free;
    pg->local_free = b;
    RCGC_ASSERT(pg->used > 0);
    RCGC_STAT_ADD(pg->used, -1u);
    /* Keep a class's last page, so alloc/free of one block does not map and
     * purge a span each time. */
    if (pg->used == 0 && h->queue[pg->tag][pg->size_class].count > 1)
        page_release(h, pg);
}

/* A free into an abandoned page: adopt the page, then free as its owner.
 * Returns false if someone adopted it first (the caller retries). */
static bool free_adopting(rcgc_heap *h, rcgc_page *pg, rcgc_block *b) {
    pthread_mutex_lock(&abandoned_lock);
    if (atomic_load_explicit(&pg->heap, memory_order_relaxed) != NULL || !pg->abandoned) {
        pthread_mutex_unlock(&abandoned_lock);
        return false;
    }
    queue_remove(&abandoned[pg->tag][pg->size_class], pg);
    pg->abandoned = 0;
    atomic_fetch_sub_explicit(&abandoned_total, 1, memory_order_relaxed);
    atomic_store_explicit(&pg->heap, h, memory_order_relaxed);
    pthread_mutex_unlock(&abandoned_lock);

    page_collect(pg);
    queue_push_back(&h->queue[pg->tag][pg->size_class], pg);
    direct_update(h, pg->tag, pg->size_class);
    free_local(h, pg, b);
    return true;
}

/* Remote frees batch up to this many blocks of one page per CAS. */
#define REMOTE_BATCH 64

/* Links are stored atomically (as in rcgc__stack_push): a detaching owner
 * may read the first word of a block (an object's owner field) while
 * another thread frees it (refcount.c, rcgc__merge_owned). */
void rcgc__heap_flush_remote(rcgc_heap *h) {
    rcgc_page *pg = h->rf_page;
    if (!pg)
        return;
    ck_stack_entry_t *first = (ck_stack_entry_t *)h->rf_first;
    ck_stack_entry_t *last = (ck_stack_entry_t *)h->rf_last;
    ck_stack_entry_t *head = __atomic_load_n(&pg->thread_free.head, __ATOMIC_RELAXED);
    do {
        __atomic_store_n(&last->next, head, __ATOMIC_RELAXED);
    } while (!__atomic_compare_exchange_n(&pg->thread_free.head, &head, first, true,
                                          __ATOMIC_RELEASE, __ATOMIC_RELAXED));
    /* From here on the page is not ours to touch (see the theory above). */
    h->rf_page = NULL;
    h->rf_count = 0;
}

/* Chain b for its page; one CAS per REMOTE_BATCH blocks, or when the
 * thread frees into another page. */
static void free_remote(rcgc_heap *h, rcgc_page *pg, rcgc_block *b) {
    if (h->rf_page != pg) {
        rcgc__heap_flush_remote(h);
        __atomic_store_n(&b->next, NULL, __ATOMIC_RELAXED);
        h->rf_page = pg;
        h->rf_first = h->rf_last = b;
        h->rf_count = 1;
    } else {
        __atomic_store_n(&b->next, h->rf_first, __ATOMIC_RELAXED);
        h->rf_first = b;
        h->rf_count++;
    }
    if (h->rf_count >= REMOTE_BATCH)
        rcgc__heap_flush_remote(h);
}

RCGC_COLD void rcgc__heap_double_free(const rcgc_heap *self, const rcgc_block *b) {
    const rcgc_page *pg = rcgc__page_of(b);
    rcgc_heap *owner = atomic_load_explicit(&pg->heap, memory_order_relaxed);
    RCGC_FATAL("free of %p: double free (the block is already free: freed before and not "
               "allocated since)\n  block of %u bytes, %s page %p (%u of %u blocks in use), "
               "owned by %s",
               (const void *)b, pg->block_size,
               pg->tag == RCGC_TAG_RAW ? "raw" : pg->tag == RCGC_TAG_OBJ ? "object" : "tracked object",
               (const void *)pg->start, pg->used, pg->reserved,
               owner == NULL ? "no thread (abandoned)"
               : owner == self ? "the calling thread" : "another thread");
}

RCGC_NOINLINE
void rcgc__heap_free_slow(rcgc_heap *h, rcgc_page *pg, rcgc_block *b) {
    if (rcgc_unlikely(pg->kind != RCGC_PAGE_SMALL && pg->kind != RCGC_PAGE_MEDIUM &&
                      pg->kind != RCGC_PAGE_LARGE))
        RCGC_FATAL("free of %p: the block's page is not in use (double free, or a pointer rcgc "
                   "did not allocate)", (void *)b);
    if (pg->kind == RCGC_PAGE_LARGE) {
        if (rcgc_unlikely((uint8_t *)b != pg->start ||
                          __atomic_load_n(&pg->used, __ATOMIC_RELAXED) != 1))
            RCGC_FATAL("free of %p: not a large block in use (double free, or a pointer inside "
                       "the %u KiB block at %p)", (void *)b, pg->nslices * 64u,
                       (void *)pg->start);
        RCGC_STAT_ADD(pg->used, -1u);
        RCGC_STAT_ADD(h->stat.large_frees, 1);
        rcgc__arena_free_span(pg);
        return;
    }
    /* Before the block leaves this thread's hands (a remote free pushes it
     * to its owner): see rcgc__block_free_mark. */
    uintptr_t mark = rcgc__block_free_mark(b);
    if (rcgc_unlikely(rcgc__block_mark(b) == mark))
        rcgc__heap_double_free(h, b);
    rcgc__block_mark_set(b, mark);
    for (;;) {
        rcgc_heap *owner = atomic_load_explicit(&pg->heap, memory_order_relaxed);
        if (owner == h) {
            free_local(h, pg, b);
            return;
        }
        if (owner == NULL) {
            if (free_adopting(h, pg, b))
                return;
            continue;
        }
        /* Another heap owns the page: hand the block over, batched. */
        RCGC_STAT_ADD(h->stat.remote_frees, 1);
        RCGC_STAT_ADD(h->stat.remote_free_bytes, pg->block_size);
        free_remote(h, pg, b);
        return;
    }
}

/* ------------------------------------------------------------------------
 * Pointer queries
 * ------------------------------------------------------------------------ */

void *rcgc__heap_block_start(const void *p) {
    if (!rcgc__arena_owns(p))
        return NULL;
    rcgc_page *pg = rcgc__page_of(p);
    uint8_t kind = __atomic_load_n(&pg->kind, __ATOMIC_RELAXED);
    if (kind == RCGC_PAGE_LARGE)
        return (uint8_t *)p >= pg->start ? pg->start : NULL;
    if (kind != RCGC_PAGE_SMALL && kind != RCGC_PAGE_MEDIUM)
        return NULL;
    uint32_t bs = pg->block_size;
    if (bs == 0 || (uint8_t *)p < pg->start)
        return NULL;
    size_t idx = (size_t)((uint8_t *)p - pg->start) / bs;
    if (idx >= pg->capacity)
        return NULL;
    return pg->start + idx * bs;
}

/* ------------------------------------------------------------------------
 * Heap walk
 * ------------------------------------------------------------------------ */

typedef struct {
    int tag;
    rcgc_page **out;    /* NULL: count only */
    size_t n;
} pages_ctx;

static int collect_page(rcgc_page *pg, void *arg) {
    pages_ctx *ctx = arg;
    if (pg->kind != RCGC_PAGE_SMALL && pg->kind != RCGC_PAGE_MEDIUM && pg->kind != RCGC_PAGE_LARGE)
        return 0;
    if (pg->block_size == 0 || (ctx->tag >= 0 && pg->tag != ctx->tag))
        return 0;
    if (ctx->out)
        ctx->out[ctx->n] = pg;
    ctx->n++;
    return 0;
}

size_t rcgc__heap_pages(int tag, rcgc_page ***out, size_t *out_bytes) {
    pages_ctx ctx = {tag, NULL, 0};
    rcgc__arena_foreach_span(collect_page, &ctx);
    size_t bytes = (ctx.n ? ctx.n : 1) * sizeof(rcgc_page *);
    rcgc_page **arr = rcgc__os_alloc(bytes);
    if (!arr) {
        errno = ENOMEM;
        return (size_t)-1;
    }
    size_t counted = ctx.n;
    ctx.out = arr;
    ctx.n = 0;
    rcgc__arena_foreach_span(collect_page, &ctx);
    RCGC_ASSERT(ctx.n == counted);   /* the caller keeps the heap still */
    *out = arr;
    *out_bytes = bytes;
    return ctx.n;
}

void rcgc__heap_pages_free(rcgc_page **pages, size_t bytes) { rcgc__os_free(pages, bytes); }

static void mark_list(const rcgc_page *pg, const rcgc_block *b, uint64_t *bits) {
    for (; b; b = b->next) {
        size_t i = (size_t)((const uint8_t *)b - pg->start) / pg->block_size;
        RCGC_ASSERT(i < pg->reserved);
        bits[i / 64] |= (uint64_t)1 << (i % 64);
    }
}

int rcgc__page_visit(rcgc_page *pg, rcgc_block_visitor fn, void *arg) {
    if (pg->kind == RCGC_PAGE_LARGE)
        return pg->used ? fn(pg->start, (size_t)pg->nslices * RCGC_SLICE_SIZE, arg) : 0;
    /* Free blocks are those on the three lists; everything else carved is
     * allocated. */
    uint64_t bits[4096 / 64];
    size_t words = (pg->reserved + 63) / 64;
    memset(bits, 0, words * sizeof bits[0]);
    mark_list(pg, pg->free, bits);
    mark_list(pg, pg->local_free, bits);
    mark_list(pg, (const rcgc_block *)__atomic_load_n(&pg->thread_free.head, __ATOMIC_ACQUIRE), bits);
    for (size_t w = 0; w < words; w++) {
        uint64_t live = ~bits[w];
        if (w == words - 1 && pg->reserved % 64)
            live &= ((uint64_t)1 << (pg->reserved % 64)) - 1;
        while (live) {
            size_t i = w * 64 + (size_t)__builtin_ctzll(live);
            live &= live - 1;
            int rc = fn(pg->start + i * pg->block_size, pg->block_size, arg);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int rcgc__heap_visit(int tag, rcgc_block_visitor fn, void *arg) {
    rcgc_page **pages;
    size_t bytes;
    size_t n = rcgc__heap_pages(tag, &pages, &bytes);
    if (n == (size_t)-1)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = rcgc__page_visit(pages[i], fn, arg);
    rcgc__heap_pages_free(pages, bytes);
    return rc;
}

int rcgc__heap_visit_own(rcgc_heap *h, unsigned tag, rcgc_block_visitor fn, void *arg) {
    for (unsigned c = 1; c < RCGC_NCLASSES; c++) {
        for (rcgc_page *pg = h->queue[tag][c].first; pg; pg = pg->next) {
            int rc = rcgc__page_visit(pg, fn, arg);
            if (rc)
                return rc;
        }
    }
    return 0;
}
