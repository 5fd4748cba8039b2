/*
 * Object graphs: what Python's objgraph does, for rcgc objects.
 *
 * Theory. Every tool works on one snapshot of the heap taken with the
 * world stopped (rcgc__gc_snapshot_begin: the collector's lock, then a
 * pause), so what it reports was true at one instant even while other
 * threads allocate, link and drop objects:
 *
 *   counts   walk every live object, tracked and untracked (the OBJ and GC
 *            pages, large spans included), and add its block to its
 *            type's entry in a hash table keyed by the type pointer;
 *   growth   the same, then compare with the counts the previous call left
 *            and leave these instead. Both happen inside the pause, which
 *            is what serialises concurrent callers (one pause at a time),
 *            so every call compares with the one that paused just before;
 *   graph    number every live object in address order (so that a
 *            binary search finds an object's node), traverse each tracked
 *            one, recording its references (a forward index, and on
 *            demand the reverse one: referrers) and taking one from the
 *            referent's `ext`, which starts at the true count. What remains
 *            in `ext` are the references from outside the tracked heap —
 *            the collector's phase B, on a copy. An object with ext > 0, an
 *            immortal one or a marked one is a root. Untracked objects
 *            refer to nothing.
 *
 * Chains are a breadth-first search over referrers from the target, which
 * stops at the first root: the shortest chain. DOT export grows a subgraph
 * from the chosen objects, breadth first in one direction, up to a depth
 * and a node count, and draws every reference between its nodes.
 *
 * Lifetimes. Whatever outlives the pause (chain entries, DOT nodes, the
 * marked roots read before the pause) is held by a reference taken inside
 * it (or before it), so label callbacks and printing run with the world
 * running on objects that cannot die meanwhile; the references are dropped
 * at the end. The one reference a caller holds to each object it passes
 * is subtracted from that object's ext (so the target of a chain is not a
 * root merely because the caller holds it), and so is ours on marked roots.
 *
 * Memory. Indexes come from rcgc__os_alloc_big (fault injection reaches
 * every one); arrays handed to the caller from malloc. Everything is allocated
 * before the first reference is taken, so ENOMEM changes nothing. The
 * pause grows with the heap (every live object is visited twice and every
 * tracked one traversed twice: a counting pass sizes the arrays), as
 * rcgc_gc_get_referrers's does.
 *
 * Output is written inside a blocking region (a slow file or pipe must not
 * hold up other threads' pauses), after everything it needs from objects
 * has been read. Root marks are weak references in a small array under
 * marks_lock, a leaf lock held across no safepoint, allocation from the
 * heaps or user code.
 *
 * Cost when unused: none. No fast path knows this file; the only hooks are
 * rcgc__objgraph_shutdown and the page walk it shares with the collector.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "heap.h"
#include "objgraph.h"
#include "os.h"
#include "thread.h"

#define OBJECT_PAGES ((1u << RCGC_TAG_OBJ) | (1u << RCGC_TAG_GC))
#define NONE UINT32_MAX
#define LABEL_MAX 256               /* bytes of a label callback's text */

/* The calling thread, attached and outside a blocking region. */
static rcgc_thread *enter(const char *what) {
    rcgc_thread *self = rcgc__thread_require(what);
    if (rcgc_unlikely(atomic_load_explicit(&self->state, memory_order_relaxed) != RCGC_ATTACHED))
        RCGC_FATAL("%s inside a blocking region (touch no object there)", what);
    return self;
}

static const char *type_name(const rcgc_type *t, char *tmp, size_t n) {
    if (t->name)
        return t->name;
    snprintf(tmp, n, "<type %p>", (const void *)t);
    return tmp;
}

static int name_cmp(const rcgc_type *a, const rcgc_type *b) {
    if (a->name && b->name) {
        int c = strcmp(a->name, b->name);
        if (c)
            return c;
    } else if (a->name || b->name) {
        return a->name ? -1 : 1;            /* unnamed types last */
    }
    return (uintptr_t)a < (uintptr_t)b ? -1 : (uintptr_t)a > (uintptr_t)b;
}

/* Output: written in a blocking region; 0 or the stream's error. */
static void output_begin(void) {
    rcgc_blocking_begin();
    errno = 0;
}
static int output_end(FILE *f) {
    int err = 0;
    if (fflush(f) != 0 || ferror(f))
        err = errno ? errno : EIO;
    rcgc_blocking_end();
    return err;
}

/* ------------------------------------------------------------------------
 * Growable arrays of OS memory (zeroed when new)
 * ------------------------------------------------------------------------ */

typedef struct {
    void *p;
    size_t bytes;
} buf;

/* At least `need` bytes, keeping the first `used`. 0 or ENOMEM (b as it was). */
static void buf_free(buf *b) {
    if (b->p)
        rcgc__os_free(b->p, b->bytes);
    b->p = NULL;
    b->bytes = 0;
}

static int buf_reserve(buf *b, size_t used, size_t need) {
    if (need <= b->bytes)
        return 0;
    size_t bytes = b->bytes ? b->bytes : 4096;
    while (bytes < need) {
        if (bytes > SIZE_MAX / 2)
            return ENOMEM;
        bytes *= 2;
    }
    void *p = rcgc__os_alloc_big(bytes);
    if (!p)
        return ENOMEM;
    if (used)
        memcpy(p, b->p, used);
    buf_free(b);
    b->p = p;
    b->bytes = bytes;
    return 0;
}

/* Fibonacci hashing of a 16-byte-aligned address into 2^bits slots. */
static inline size_t hash_ptr(const void *p, unsigned bits) {
    return (size_t)(((uint64_t)((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

/* ------------------------------------------------------------------------
 * Counts by type
 * ------------------------------------------------------------------------ */

typedef struct {
    const rcgc_type *type;              /* NULL: empty slot */
    size_t count, bytes;
} tcount;

typedef struct {
    buf slots;                          /* tcount[1 << bits] */
    unsigned bits;
    size_t n;
    int err;
} ttable;

static tcount *ttable_slot(tcount *slots, unsigned bits, const rcgc_type *t) {
    size_t mask = ((size_t)1 << bits) - 1;
    for (size_t i = hash_ptr(t, bits);; i = (i + 1) & mask)
        if (slots[i].type == t || !slots[i].type)
            return &slots[i];
}

static int ttable_grow(ttable *t) {
    unsigned bits = t->bits ? t->bits + 1 : 8;
    buf nb = {0};
    int err = buf_reserve(&nb, 0, ((size_t)1 << bits) * sizeof(tcount));
    if (err)
        return err;
    tcount *old = t->slots.p;
    for (size_t i = 0; t->bits && i < ((size_t)1 << t->bits); i++)
        if (old[i].type)
            *ttable_slot(nb.p, bits, old[i].type) = old[i];
    buf_free(&t->slots);
    t->slots = nb;
    t->bits = bits;
    return 0;
}

static void count_one(rcgc__header *h, void *arg) {
    ttable *t = arg;
    if (t->err)
        return;
    if ((t->n + 1) * 2 > ((size_t)1 << t->bits) && (t->err = ttable_grow(t)))
        return;
    tcount *s = ttable_slot(t->slots.p, t->bits, h->type);
    if (!s->type) {
        s->type = h->type;
        t->n++;
    }
    s->count++;
    s->bytes += rcgc__block_size(h);
}

/* The counts at the previous rcgc_objgraph_growth, sorted by type. Read
 * and replaced only inside a pause (one at a time), or at shutdown. */
typedef struct {
    const rcgc_type *type;
    size_t count;
} base_entry;
static struct {
    buf b;
    size_t n;
} base;

static int base_cmp(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)((const base_entry *)a)->type;
    uintptr_t y = (uintptr_t)((const base_entry *)b)->type;
    return x < y ? -1 : x > y;
}

/* World stopped: the table becomes the reference; the old one goes to *old. */
static int base_swap(const ttable *t, buf *old, size_t *old_n) {
    buf nb = {0};
    int err = buf_reserve(&nb, 0, (t->n ? t->n : 1) * sizeof(base_entry));
    if (err)
        return err;
    base_entry *e = nb.p;
    const tcount *s = t->slots.p;
    size_t k = 0;
    for (size_t i = 0; t->bits && i < ((size_t)1 << t->bits); i++)
        if (s[i].type)
            e[k++] = (base_entry){s[i].type, s[i].count};
    qsort(e, k, sizeof *e, base_cmp);
    *old = base.b;
    *old_n = base.n;
    base.b = nb;
    base.n = k;
    return 0;
}

/* One pause: count every live object; with growth, swap the reference. */
static int take_counts(rcgc_thread *self, ttable *t, buf *old, size_t *old_n) {
    bool nested = rcgc__gc_snapshot_begin(self);
    int err = ttable_grow(t);
    if (!err)
        err = rcgc__gc_walk(OBJECT_PAGES, count_one, t);
    if (!err)
        err = t->err;
    if (!err && old)
        err = base_swap(t, old, old_n);
    rcgc__gc_snapshot_end(nested);
    return err;
}

static int by_count(const void *a, const void *b) {
    const rcgc_objgraph_count *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return name_cmp(x->type, y->type);
}

static int by_delta(const void *a, const void *b) {
    const rcgc_objgraph_count *x = a, *y = b;
    if (x->delta != y->delta)
        return x->delta > y->delta ? -1 : 1;
    return name_cmp(x->type, y->type);
}

static size_t base_count(const base_entry *e, size_t n, const rcgc_type *t) {
    base_entry key = {t, 0};
    const base_entry *f = n ? bsearch(&key, e, n, sizeof *e, base_cmp) : NULL;
    return f ? f->count : 0;
}

/* The table as the caller's array: every type, or (growth) those that grew
 * against the old reference. */
static int counts_out(const ttable *t, const buf *old, size_t old_n, rcgc_objgraph_count **out,
                      size_t *n) {
    *out = NULL;
    *n = 0;
    if (!t->n)
        return 0;
    rcgc_objgraph_count *a = malloc(t->n * sizeof *a);
    if (!a)
        return ENOMEM;
    const tcount *s = t->slots.p;
    size_t k = 0;
    for (size_t i = 0; i < ((size_t)1 << t->bits); i++) {
        if (!s[i].type)
            continue;
        long delta = 0;
        if (old) {
            size_t before = base_count(old->p, old_n, s[i].type);
            if (s[i].count <= before)
                continue;
            delta = (long)(s[i].count - before);
        }
        a[k++] = (rcgc_objgraph_count){s[i].type, s[i].count, s[i].bytes, delta};
    }
    qsort(a, k, sizeof *a, old ? by_delta : by_count);
    if (!k) {
        free(a);
        a = NULL;
    }
    *out = a;
    *n = k;
    return 0;
}

static int counts_or_growth(const char *what, bool growth, rcgc_objgraph_count **out, size_t *n) {
    rcgc_thread *self = enter(what);
    if (!out || !n)
        return EINVAL;
    ttable t = {0};
    buf old = {0};
    size_t old_n = 0;
    int err = take_counts(self, &t, growth ? &old : NULL, &old_n);
    if (!err)
        err = counts_out(&t, growth ? &old : NULL, old_n, out, n);
    buf_free(&t.slots);
    buf_free(&old);
    return err;
}

int rcgc_objgraph_counts(rcgc_objgraph_count **out, size_t *n) {
    return counts_or_growth("rcgc_objgraph_counts", false, out, n);
}

int rcgc_objgraph_growth(rcgc_objgraph_count **out, size_t *n) {
    return counts_or_growth("rcgc_objgraph_growth", true, out, n);
}

static int show_counts(FILE *f, size_t limit, bool growth) {
    if (!f)
        return EINVAL;
    rcgc_objgraph_count *a;
    size_t n;
    int err = counts_or_growth(growth ? "rcgc_objgraph_show_growth" : "rcgc_objgraph_show_most_common",
                               growth, &a, &n);
    if (err)
        return err;
    if (!limit)
        limit = 10;
    if (n > limit)
        n = limit;
    char tmp[2][40];
    int width = 4;
    for (size_t i = 0; i < n; i++) {
        int len = (int)strlen(type_name(a[i].type, tmp[0], sizeof tmp[0]));
        width = len > width ? len : width;
    }
    output_begin();
    for (size_t i = 0; i < n; i++) {
        const char *name = type_name(a[i].type, tmp[1], sizeof tmp[1]);
        if (growth)
            fprintf(f, "%-*s %10zu %+10ld\n", width, name, a[i].count, a[i].delta);
        else
            fprintf(f, "%-*s %10zu %14zu\n", width, name, a[i].count, a[i].bytes);
    }
    err = output_end(f);
    free(a);
    return err;
}

int rcgc_objgraph_show_most_common(FILE *f, size_t limit) { return show_counts(f, limit, false); }
int rcgc_objgraph_show_growth(FILE *f, size_t limit) { return show_counts(f, limit, true); }

/* ------------------------------------------------------------------------
 * Root marks: weak references, so that a mark keeps nothing alive
 * ------------------------------------------------------------------------ */

typedef struct {
    void *obj;              /* compared, never dereferenced unless w says it lives */
    rcgc_weakref *w;        /* NULL: immortal (never dies, has no weak references) */
} mark;

static pthread_mutex_t marks_lock = PTHREAD_MUTEX_INITIALIZER;
static mark *marks;         /* malloc; marks_lock */
static size_t nmarks, marks_cap;

/* marks_lock held. The entry that marks o, if o is alive: its index, with
 * a reference in *held (NULL for immortal objects) to drop after the
 * unlock. An entry for a dead object at o's address (memory reused) is
 * removed, its weak reference left in *stale for the caller to free. */
static size_t marks_find(void *o, void **held, rcgc_weakref **stale) {
    *held = NULL;
    *stale = NULL;
    for (size_t i = 0; i < nmarks; i++) {
        if (marks[i].obj != o)
            continue;
        if (!marks[i].w)
            return i;
        *held = rcgc_weakref_get(marks[i].w);
        if (*held)
            return i;
        *stale = marks[i].w;
        marks[i] = marks[--nmarks];
        return SIZE_MAX;
    }
    return SIZE_MAX;
}

int rcgc_objgraph_mark_root(void *o) {
    enter("rcgc_objgraph_mark_root");
    if (!o)
        return EINVAL;
    rcgc__object_check(o, "rcgc_objgraph_mark_root of a pointer rcgc did not allocate");
    rcgc_weakref *w = NULL;
    if (!rcgc_is_immortal(o) && !(w = rcgc_weakref_new(o, NULL, NULL)))
        return errno;
    void *held;
    rcgc_weakref *stale;
    int err = 0;
    pthread_mutex_lock(&marks_lock);
    if (marks_find(o, &held, &stale) != SIZE_MAX) {
        err = EEXIST;
    } else if (nmarks == marks_cap) {
        size_t cap = marks_cap ? marks_cap * 2 : 16;
        mark *m = realloc(marks, cap * sizeof *m);
        if (m) {
            marks = m;
            marks_cap = cap;
        } else {
            err = ENOMEM;
        }
    }
    if (!err)
        marks[nmarks++] = (mark){o, w};
    pthread_mutex_unlock(&marks_lock);
    rcgc_xdecref(held);
    rcgc_weakref_free(stale);
    if (err)
        rcgc_weakref_free(w);
    return err;
}

int rcgc_objgraph_unmark_root(void *o) {
    enter("rcgc_objgraph_unmark_root");
    void *held;
    rcgc_weakref *stale, *w = NULL;
    pthread_mutex_lock(&marks_lock);
    size_t i = marks_find(o, &held, &stale);
    if (i != SIZE_MAX) {
        w = marks[i].w;
        marks[i] = marks[--nmarks];
    }
    pthread_mutex_unlock(&marks_lock);
    rcgc_xdecref(held);
    rcgc_weakref_free(stale);
    rcgc_weakref_free(w);
    return i != SIZE_MAX ? 0 : ENOENT;
}

/* The marked objects that are alive, each with a reference (before a
 * pause); entries of dead objects are dropped on the way. */
typedef struct {
    buf b;                  /* void *[n], then the stale weak references */
    size_t n;
} marked;

static int marks_take(marked *m) {
    memset(m, 0, sizeof *m);
    size_t nstale = 0;
    pthread_mutex_lock(&marks_lock);
    int err = buf_reserve(&m->b, 0, (nmarks ? nmarks : 1) * 2 * sizeof(void *));
    void **objs = m->b.p, **stale = objs ? objs + nmarks : NULL;
    for (size_t i = 0; !err && i < nmarks;) {
        void *o = marks[i].w ? rcgc_weakref_get(marks[i].w) : marks[i].obj;
        if (o) {
            objs[m->n++] = o;
            i++;
        } else {
            stale[nstale++] = marks[i].w;
            marks[i] = marks[--nmarks];
        }
    }
    pthread_mutex_unlock(&marks_lock);
    for (size_t i = 0; i < nstale; i++)
        rcgc_weakref_free(stale[i]);
    return err;
}

static void marks_drop(marked *m) {
    void **objs = m->b.p;
    for (size_t i = 0; i < m->n; i++)
        rcgc_decref(objs[i]);
    buf_free(&m->b);
}

/* ------------------------------------------------------------------------
 * The graph (built with the world stopped)
 * ------------------------------------------------------------------------ */

enum { N_TRACKED = 1, N_IMMORTAL = 2, N_MARKED = 4, N_CHOSEN = 8 };

/* Nodes are every live object, numbered in address order (the walk goes
 * page by page in address order). An object's node: its page by binary
 * search among the pages (a small table), its block index by division,
 * then a rank in the page's bitmap of live blocks (a prefix count per
 * 64 blocks plus a popcount). Every array is sized by a counting pass
 * first (the world is stopped: the second pass sees the same heap). */
typedef struct {
    const uint8_t *start;       /* the page's first block */
    uint32_t first;             /* its first node */
    uint32_t block_size;        /* 0: a large page (one block) */
    size_t word;                /* its first word in live[] and rank[] */
} gpage;

typedef struct {
    uint32_t n, npages;         /* nodes, pages holding them */
    size_t nwords;              /* words of the live-block bitmaps */
    size_t nedges, edges_cap;   /* references; how many pass 1 counted */
    buf hdr;                    /* rcgc__header *[n], ascending */
    buf ext;                    /* intptr_t[n]: references from outside the tracked heap */
    buf flags;                  /* uint8_t[n]: N_* */
    buf pages;                  /* gpage[npages + 1]; the last: {NULL, n} */
    buf live;                   /* uint64_t[nwords]: bit i of a page: block i is a node */
    buf rank;                   /* uint16_t[nwords]: nodes of the page before the word */
    buf fwd_off, fwd;           /* size_t[n + 1], uint32_t[nedges]: node i refers to
                                   fwd[fwd_off[i] .. fwd_off[i + 1]) */
    buf rev_off, rev;           /* the same for referrers (on demand) */
    const rcgc_page *last;      /* the walk's current page */
    int err;
} graph;

_Static_assert(RCGC_SLICE_SIZE * RCGC_SMALL_PAGE_SLICES / RCGC_ALIGN <= UINT16_MAX &&
                   RCGC_SLICE_SIZE * RCGC_MEDIUM_PAGE_SLICES / RCGC_SMALL_MAX <= UINT16_MAX,
               "a page's rank fits in 16 bits");

#define G_HDR(g)   ((rcgc__header **)(g)->hdr.p)
#define G_EXT(g)   ((intptr_t *)(g)->ext.p)
#define G_FLAGS(g) ((uint8_t *)(g)->flags.p)
#define G_PAGES(g) ((gpage *)(g)->pages.p)
#define G_LIVE(g)  ((uint64_t *)(g)->live.p)
#define G_RANK(g)  ((uint16_t *)(g)->rank.p)
#define G_FOFF(g)  ((size_t *)(g)->fwd_off.p)
#define G_FWD(g)   ((uint32_t *)(g)->fwd.p)
#define G_ROFF(g)  ((size_t *)(g)->rev_off.p)
#define G_REV(g)   ((uint32_t *)(g)->rev.p)

static void graph_free(graph *g) {
    buf *all[] = {&g->hdr, &g->ext,     &g->flags, &g->pages, &g->live,
                  &g->rank, &g->fwd_off, &g->fwd,   &g->rev_off, &g->rev};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        buf_free(all[i]);
}

/* The node of the live object at h, or NONE. */
static uint32_t lookup(const graph *g, const rcgc__header *h) {
    const gpage *pg = G_PAGES(g);
    size_t lo = 0, hi = g->npages;          /* the last page starting at or before h */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((const uint8_t *)h >= pg[mid].start)
            lo = mid;
        else
            hi = mid;
    }
    if (!g->npages || (const uint8_t *)h < pg[lo].start)
        return NONE;
    size_t off = (size_t)((const uint8_t *)h - pg[lo].start);
    size_t i = pg[lo].block_size ? off / pg[lo].block_size : 0;
    if (pg[lo].block_size ? off % pg[lo].block_size : off)
        return NONE;                        /* not a block start */
    size_t w = pg[lo].word + i / 64;
    if (w >= pg[lo + 1].word)
        return NONE;                        /* past the page's carved blocks */
    uint64_t bits = G_LIVE(g)[w], below = bits & (((uint64_t)1 << (i % 64)) - 1);
    if (!((bits >> (i % 64)) & 1))
        return NONE;
    return pg[lo].first + G_RANK(g)[w] + (uint32_t)__builtin_popcountll(below);
}

static int count_edge(void *o, void *arg) {
    (void)o;
    ++*(size_t *)arg;
    return 0;
}

static size_t page_words(const rcgc_page *pg) {
    return pg->kind == RCGC_PAGE_LARGE ? 1 : ((size_t)pg->reserved + 63) / 64;
}

/* Pass 1: how many nodes, pages, bitmap words and references. */
static void count_node(rcgc__header *h, void *arg) {
    graph *g = arg;
    const rcgc_page *pg = rcgc__page_of(h);
    if (pg != g->last) {
        g->last = pg;
        g->npages++;
        g->nwords += page_words(pg);
    }
    if (g->n == NONE - 1)
        g->err = ENOMEM;    /* more objects than node numbers */
    else
        g->n++;
    if (rcgc__gcbits(h) & RCGC_GC_TRACKED)
        h->type->traverse(rcgc__obj(h), count_edge, &g->nedges);
}

/* Pass 2: the nodes, with their true counts. */
static void fill_node(rcgc__header *h, void *arg) {
    graph *g = arg;
    const rcgc_page *pg = rcgc__page_of(h);
    uint32_t id = g->n++;
    if (pg != g->last) {
        g->last = pg;
        G_PAGES(g)[g->npages++] = (gpage){pg->start, id,
                                          pg->kind == RCGC_PAGE_LARGE ? 0 : pg->block_size,
                                          g->nwords};
        g->nwords += page_words(pg);
    }
    const gpage *gp = &G_PAGES(g)[g->npages - 1];
    size_t i = gp->block_size ? (size_t)((const uint8_t *)h - gp->start) / gp->block_size : 0;
    G_LIVE(g)[gp->word + i / 64] |= (uint64_t)1 << (i % 64);
    G_HDR(g)[id] = h;
    bool immortal = __atomic_load_n(&h->local, __ATOMIC_RELAXED) == RCGC__IMMORTAL;
    G_EXT(g)[id] = immortal ? 0 : (intptr_t)rcgc_refcount(rcgc__obj(h));
    G_FLAGS(g)[id] = (uint8_t)((immortal ? N_IMMORTAL : 0) |
                               (rcgc__gcbits(h) & RCGC_GC_TRACKED ? N_TRACKED : 0));
}

RCGC_COLD static void bad_referent(void *o) {
    rcgc__object_check(o, "a traverse function visited a pointer that is not an rcgc object "
                          "(traverse must visit only rcgc object pointers)");
    rcgc__object_fatal(o, "a traverse function visited an object that is not alive (freed, or "
                          "dying with a count of zero): an incref is missing");
}

/* Pass 3: the references; each takes one from its referent's ext. */
static int visit_edge(void *o, void *arg) {
    graph *g = arg;
    uint32_t id = lookup(g, rcgc__hdr(o));
    if (rcgc_unlikely(id == NONE))
        bad_referent(o);
    if (rcgc_unlikely(g->nedges == g->edges_cap))
        RCGC_FATAL("a traverse function visited more references on a second call than on the first "
                   "(with the world stopped)");
    G_FWD(g)[g->nedges++] = id;
    G_EXT(g)[id]--;
    return 0;
}

/* Flag the objects a call names (or the marked roots) and subtract the
 * reference their holder has. */
static void graph_name(graph *g, void *const *objs, size_t n, uint8_t flag) {
    for (size_t i = 0; i < n; i++) {
        uint32_t id = lookup(g, rcgc__hdr(objs[i]));
        if (id == NONE)
            rcgc__object_fatal(objs[i], "objgraph: an object given (or marked as a root) is not "
                                        "alive");
        if (!(G_FLAGS(g)[id] & (flag | N_IMMORTAL)))
            G_EXT(g)[id]--;
        G_FLAGS(g)[id] |= flag;
    }
}

/* World stopped: every live object and the references between them, the
 * chosen and marked objects flagged; with `rev`, the referrer index too. */
static int graph_build(graph *g, void *const *chosen, size_t nchosen, const marked *m, bool rev) {
    memset(g, 0, sizeof *g);
    int err = rcgc__gc_walk(OBJECT_PAGES, count_node, g);
    if (err || g->err)
        return err ? err : g->err;
    size_t n = g->n, edges = g->nedges ? g->nedges : 1;
    if ((err = buf_reserve(&g->hdr, 0, (n ? n : 1) * sizeof(rcgc__header *))) ||
        (err = buf_reserve(&g->ext, 0, (n ? n : 1) * sizeof(intptr_t))) ||
        (err = buf_reserve(&g->flags, 0, n ? n : 1)) ||
        (err = buf_reserve(&g->pages, 0, ((size_t)g->npages + 1) * sizeof(gpage))) ||
        (err = buf_reserve(&g->live, 0, (g->nwords ? g->nwords : 1) * sizeof(uint64_t))) ||
        (err = buf_reserve(&g->rank, 0, (g->nwords ? g->nwords : 1) * sizeof(uint16_t))) ||
        (err = buf_reserve(&g->fwd_off, 0, (n + 1) * sizeof(size_t))) ||
        (err = buf_reserve(&g->fwd, 0, edges * sizeof(uint32_t))))
        return err;
    if (rev && ((err = buf_reserve(&g->rev_off, 0, (n + 1) * sizeof(size_t))) ||
                (err = buf_reserve(&g->rev, 0, edges * sizeof(uint32_t)))))
        return err;
    size_t words = g->nwords;
    g->n = g->npages = 0;
    g->nwords = 0;
    g->edges_cap = g->nedges;
    g->nedges = 0;
    g->last = NULL;
    if ((err = rcgc__gc_walk(OBJECT_PAGES, fill_node, g)))
        return err;
    RCGC_ASSERT(g->n == n && g->nwords == words);
    G_PAGES(g)[g->npages] = (gpage){NULL, g->n, 0, g->nwords};
    /* Ranks: the page's nodes before each word (at most 4096 blocks a page). */
    for (uint32_t p = 0; p < g->npages; p++) {
        uint32_t before = 0;
        for (size_t w = G_PAGES(g)[p].word; w < G_PAGES(g)[p + 1].word; w++) {
            G_RANK(g)[w] = (uint16_t)before;
            before += (uint32_t)__builtin_popcountll(G_LIVE(g)[w]);
        }
    }
    for (uint32_t i = 0; i < g->n; i++) {
        G_FOFF(g)[i] = g->nedges;
        rcgc__header *h = G_HDR(g)[i];
        if (G_FLAGS(g)[i] & N_TRACKED)
            h->type->traverse(rcgc__obj(h), visit_edge, g);
    }
    G_FOFF(g)[g->n] = g->nedges;
    graph_name(g, chosen, nchosen, N_CHOSEN);
    graph_name(g, m->b.p, m->n, N_MARKED);
    if (!rev)
        return 0;
    /* Referrers: count, prefix sums, fill (advancing each start to its
     * end), then shift the ends back into starts. */
    size_t *off = G_ROFF(g);
    for (size_t e = 0; e < g->nedges; e++)
        off[G_FWD(g)[e] + 1]++;
    for (size_t i = 0; i < g->n; i++)
        off[i + 1] += off[i];
    for (uint32_t u = 0; u < g->n; u++)
        for (size_t e = G_FOFF(g)[u]; e < G_FOFF(g)[u + 1]; e++)
            G_REV(g)[off[G_FWD(g)[e]]++] = u;
    for (size_t i = g->n; i > 0; i--)
        off[i] = off[i - 1];
    off[0] = 0;
    return 0;
}

static bool is_root(const graph *g, uint32_t id, unsigned flags) {
    uint8_t f = G_FLAGS(g)[id];
    if (f & (N_MARKED | N_IMMORTAL))
        return true;
    return !(flags & RCGC_OBJGRAPH_MARKED_ROOTS) && G_EXT(g)[id] > 0;
}

/* ------------------------------------------------------------------------
 * Chains of referrers
 * ------------------------------------------------------------------------ */

/* World stopped: breadth first over referrers from t to the nearest root;
 * the chain, root first, in a new array holding a reference to each. */
static int shortest_chain(const graph *g, uint32_t t, unsigned flags, size_t max_depth, void ***out,
                          size_t *len) {
    buf par_b = {0}, q_b = {0};     /* par[v]: the node v refers to on its way to t, + 1 */
    uint32_t found = NONE;
    int err = 0;
    if (is_root(g, t, flags)) {
        found = t;
    } else if (!(err = buf_reserve(&par_b, 0, (size_t)g->n * sizeof(uint32_t))) &&
               !(err = buf_reserve(&q_b, 0, (size_t)g->n * sizeof(uint32_t)))) {
        uint32_t *par = par_b.p, *q = q_b.p;
        size_t head = 0, tail = 0;
        par[t] = t + 1;
        q[tail++] = t;
        for (size_t depth = 0; head < tail && found == NONE; depth++) {
            if (max_depth && depth >= max_depth)
                break;
            for (size_t end = tail; head < end && found == NONE; head++) {
                uint32_t u = q[head];
                for (size_t e = G_ROFF(g)[u]; e < G_ROFF(g)[u + 1]; e++) {
                    uint32_t v = G_REV(g)[e];
                    if (par[v])
                        continue;
                    par[v] = u + 1;
                    if (is_root(g, v, flags)) {
                        found = v;
                        break;
                    }
                    q[tail++] = v;
                }
            }
        }
    }
    void **chain = NULL;
    size_t n = 0;
    if (!err && found == NONE)
        err = ENOENT;
    if (!err) {
        const uint32_t *par = par_b.p;
        n = 1;
        for (uint32_t v = found; v != t; v = par[v] - 1)
            n++;
        if (!(chain = malloc(n * sizeof *chain))) {
            err = ENOMEM;
        } else {
            uint32_t v = found;
            for (size_t i = 0; i < n; i++, v = i < n ? par[v] - 1 : v) {
                chain[i] = rcgc__obj(G_HDR(g)[v]);
                rcgc_incref(chain[i]);
            }
        }
    }
    buf_free(&par_b);
    buf_free(&q_b);
    *out = chain;
    *len = err ? 0 : n;
    return err;
}

int rcgc_objgraph_find_chain(void *target, unsigned flags, size_t max_depth, void ***chain,
                             size_t *n) {
    rcgc_thread *self = enter("rcgc_objgraph_find_chain");
    if (!target || !chain || !n)
        return EINVAL;
    rcgc__object_check(target, "rcgc_objgraph_find_chain of a pointer rcgc did not allocate");
    *chain = NULL;
    *n = 0;
    marked m;
    int err = marks_take(&m);
    if (err) {
        marks_drop(&m);
        return err;
    }
    graph g;
    bool nested = rcgc__gc_snapshot_begin(self);
    err = graph_build(&g, &target, 1, &m, true);
    if (!err)
        err = shortest_chain(&g, lookup(&g, rcgc__hdr(target)), flags, max_depth, chain, n);
    rcgc__gc_snapshot_end(nested);
    graph_free(&g);
    marks_drop(&m);
    return err;
}

void rcgc_objgraph_release(void **objs, size_t n) {
    if (!objs)
        return;
    for (size_t i = 0; i < n; i++)
        rcgc_decref(objs[i]);
    free(objs);
}

int rcgc_objgraph_show_chain(FILE *f, void *const *chain, size_t n) {
    enter("rcgc_objgraph_show_chain");
    if (!f || (n && !chain))
        return EINVAL;
    /* Read the objects first: the output is written in a blocking region. */
    struct { const rcgc_type *type; size_t count; } *info = malloc((n ? n : 1) * sizeof *info);
    if (!info)
        return ENOMEM;
    for (size_t i = 0; i < n; i++) {
        info[i].type = rcgc_typeof(chain[i]);
        info[i].count = rcgc_refcount(chain[i]);
        if (info[i].count != RCGC__IMMORTAL)
            info[i].count--;            /* the chain's own reference */
    }
    char tmp[40];
    output_begin();
    for (size_t i = 0; i < n; i++) {
        const char *name = type_name(info[i].type, tmp, sizeof tmp);
        if (info[i].count == RCGC__IMMORTAL)
            fprintf(f, "%s %s %p immortal\n", i ? "  ->" : "root", name, chain[i]);
        else
            fprintf(f, "%s %s %p refcount %zu\n", i ? "  ->" : "root", name, chain[i], info[i].count);
    }
    int err = output_end(f);
    free(info);
    return err;
}

/* ------------------------------------------------------------------------
 * DOT export
 * ------------------------------------------------------------------------ */

enum { D_ROOT = 16, D_CYCLE = 32 };     /* beside N_*, in dnode.flags */

typedef struct {
    void *obj;                  /* held by a reference */
    const rcgc_type *type;
    size_t count;               /* RCGC__IMMORTAL for immortal objects */
    intptr_t ext;
    uint32_t gid;               /* its node in the graph */
    uint32_t more;              /* references not followed (max_nodes) */
    uint32_t depth;
    uint8_t flags;              /* N_* and D_* */
} dnode;

typedef struct {
    uint32_t from, to, mult;
    uint32_t cycle;
} dedge;

typedef struct {
    buf nodes, edges;           /* dnode[m], dedge[ne] */
    uint32_t m;
    size_t ne;
    size_t not_followed, dropped;   /* references past max_nodes; chosen objects past it */
    int backrefs, max_depth;
    size_t max_nodes, nchosen;
} dgraph;

#define D_NODES(d) ((dnode *)(d)->nodes.p)
#define D_EDGES(d) ((dedge *)(d)->edges.p)

static int edge_cmp(const void *a, const void *b) {
    const dedge *x = a, *y = b;
    if (x->from != y->from)
        return x->from < y->from ? -1 : 1;
    return (x->to > y->to) - (x->to < y->to);
}

static int dnode_add(dgraph *d, const graph *g, uint32_t *sub, uint32_t v, uint32_t depth,
                     unsigned flags) {
    int err = buf_reserve(&d->nodes, d->m * sizeof(dnode), (d->m + 1) * sizeof(dnode));
    if (err)
        return err;
    rcgc__header *h = G_HDR(g)[v];
    uint8_t f = G_FLAGS(g)[v];
    /* Not counting the reference marks_take holds on a marked root. */
    size_t count = rcgc_refcount(rcgc__obj(h));
    if ((f & (N_MARKED | N_IMMORTAL)) == N_MARKED)
        count--;
    D_NODES(d)[d->m] = (dnode){
        .obj = rcgc__obj(h),
        .type = h->type,
        .count = count,
        .ext = G_EXT(g)[v] > 0 ? G_EXT(g)[v] : 0,
        .gid = v,
        .depth = depth,
        .flags = (uint8_t)(f | (is_root(g, v, flags) ? D_ROOT : 0)),
    };
    sub[v] = ++d->m;
    return 0;
}

/* World stopped: the subgraph, breadth first from the chosen objects, and
 * every reference between its nodes; then a reference to each node. */
static int dot_select(dgraph *d, const graph *g, void *const *objs, size_t n, unsigned flags) {
    buf sub_b = {0};                /* sub[v]: v's dnode + 1 */
    int err = buf_reserve(&sub_b, 0, ((size_t)g->n + 1) * sizeof(uint32_t));
    uint32_t *sub = sub_b.p;
    for (size_t i = 0; !err && i < n; i++) {
        uint32_t v = lookup(g, rcgc__hdr(objs[i]));
        if (sub[v])
            continue;
        if (d->m >= d->max_nodes)
            d->dropped++;
        else
            err = dnode_add(d, g, sub, v, 0, flags);
    }
    const size_t *off = d->backrefs ? G_ROFF(g) : G_FOFF(g);
    const uint32_t *adj = d->backrefs ? G_REV(g) : G_FWD(g);
    for (uint32_t i = 0; !err && i < d->m; i++) {
        /* Copies: dnode_add may move the array. */
        uint32_t depth = D_NODES(d)[i].depth + 1;
        if ((int)depth > d->max_depth)
            continue;
        uint32_t gu = D_NODES(d)[i].gid;
        for (size_t e = off[gu]; !err && e < off[gu + 1]; e++) {
            uint32_t v = adj[e];
            if (sub[v])
                continue;
            if (d->m < d->max_nodes) {
                err = dnode_add(d, g, sub, v, depth, flags);
            } else {
                D_NODES(d)[i].more++;
                d->not_followed++;
            }
        }
    }
    /* References between the nodes, one edge per pair with its count. */
    for (uint32_t i = 0; !err && i < d->m; i++) {
        uint32_t gu = D_NODES(d)[i].gid;
        for (size_t e = G_FOFF(g)[gu]; !err && e < G_FOFF(g)[gu + 1]; e++) {
            uint32_t to = sub[G_FWD(g)[e]];
            if (!to)
                continue;
            if (!(err = buf_reserve(&d->edges, d->ne * sizeof(dedge), (d->ne + 1) * sizeof(dedge))))
                D_EDGES(d)[d->ne++] = (dedge){i, to - 1, 1, 0};
        }
    }
    buf_free(&sub_b);
    if (err)
        return err;
    dedge *ed = D_EDGES(d);
    if (d->ne)
        qsort(ed, d->ne, sizeof *ed, edge_cmp);
    size_t k = 0;
    for (size_t e = 0; e < d->ne; e++) {
        if (k && ed[k - 1].from == ed[e].from && ed[k - 1].to == ed[e].to)
            ed[k - 1].mult++;
        else
            ed[k++] = ed[e];
    }
    d->ne = k;
    for (uint32_t i = 0; i < d->m; i++)
        rcgc_incref(D_NODES(d)[i].obj);
    return 0;
}

/* Tarjan's strongly connected components (iteratively): an edge inside a
 * component lies on a cycle, and so do the nodes of a component of two or
 * more, or with an edge to itself. Edges are sorted by `from`. */
static int find_cycles(dgraph *d) {
    uint32_t m = d->m;
    dedge *ed = D_EDGES(d);
    dnode *nd = D_NODES(d);
    buf b = {0};
    size_t words = (size_t)m * 5 + 1;   /* off (m + 1), index, low, comp, stack, call (node, edge) */
    int err = buf_reserve(&b, 0, words * sizeof(size_t) + (size_t)m * 2 * sizeof(size_t));
    if (err)
        return err;
    size_t *off = b.p, *index = off + m + 1, *low = index + m, *comp = low + m, *stack = comp + m;
    size_t *call = stack + m;           /* pairs: node, next edge */
    for (size_t e = 0; e < d->ne; e++)
        off[ed[e].from + 1]++;
    for (uint32_t i = 0; i < m; i++)
        off[i + 1] += off[i];
    size_t counter = 0, sp = 0, cp = 0, ncomp = 0;
    for (uint32_t s = 0; s < m; s++) {
        if (index[s])
            continue;
        index[s] = low[s] = ++counter;
        stack[sp++] = s;
        comp[s] = SIZE_MAX;             /* on the stack */
        call[cp * 2] = s;
        call[cp * 2 + 1] = off[s];
        cp++;
        while (cp) {
            size_t v = call[(cp - 1) * 2], *ep = &call[(cp - 1) * 2 + 1];
            if (*ep < off[v + 1]) {
                size_t w = ed[(*ep)++].to;
                if (!index[w]) {
                    index[w] = low[w] = ++counter;
                    stack[sp++] = w;
                    comp[w] = SIZE_MAX;
                    call[cp * 2] = w;
                    call[cp * 2 + 1] = off[w];
                    cp++;
                } else if (comp[w] == SIZE_MAX && index[w] < low[v]) {
                    low[v] = index[w];
                }
                continue;
            }
            cp--;
            if (low[v] == index[v]) {
                size_t w, size = 0;
                do {
                    w = stack[--sp];
                    comp[w] = ncomp;
                    size++;
                } while (w != v);
                if (size > 1)
                    for (size_t i = sp; i < sp + size; i++)
                        nd[stack[i]].flags |= D_CYCLE;
                ncomp++;
            }
            if (cp) {
                size_t p = call[(cp - 1) * 2];
                if (low[v] < low[p])
                    low[p] = low[v];
            }
        }
    }
    for (size_t e = 0; e < d->ne; e++) {
        if (comp[ed[e].from] == comp[ed[e].to]) {
            ed[e].cycle = 1;
            nd[ed[e].from].flags |= D_CYCLE;
        }
    }
    buf_free(&b);
    return 0;
}

/* A DOT string's contents: quotes and backslashes escaped, line breaks as
 * \n, other control characters as spaces. */
static void put_escaped(FILE *f, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else
            fputc(c < 0x20 ? ' ' : c, f);
    }
}

static void dot_write(FILE *f, const dgraph *d, const char *labels) {
    const dnode *nd = D_NODES(d);
    const dedge *ed = D_EDGES(d);
    fputs("digraph objgraph {\n"
          "  graph [fontname=\"Helvetica\", fontsize=10, labelloc=b, labeljust=l];\n"
          "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", "
          "fontname=\"Helvetica\", fontsize=10];\n"
          "  edge [color=\"#555555\", arrowsize=0.7];\n",
          f);
    char tmp[40];
    for (uint32_t i = 0; i < d->m; i++) {
        const dnode *n = &nd[i];
        fprintf(f, "  o%u [label=\"", i);
        put_escaped(f, type_name(n->type, tmp, sizeof tmp));
        fprintf(f, "\\n%p\\n", n->obj);
        if (n->count == RCGC__IMMORTAL)
            fputs("immortal", f);
        else if (n->ext)
            fprintf(f, "refcount %zu (%ld from outside)", n->count, (long)n->ext);
        else
            fprintf(f, "refcount %zu", n->count);
        if (n->flags & D_ROOT)
            fputs(n->flags & N_MARKED ? "\\nroot (marked)"
                                      : n->flags & N_IMMORTAL ? "\\nroot (immortal)" : "\\nroot",
                  f);
        if (labels && labels[(size_t)i * LABEL_MAX]) {
            fputs("\\n", f);
            put_escaped(f, &labels[(size_t)i * LABEL_MAX]);
        }
        fputc('"', f);
        if (n->flags & N_CHOSEN)
            fputs(", penwidth=2.5", f);
        if (n->flags & D_ROOT)
            fputs(", fillcolor=\"#a1d99b\"", f);
        else if (n->flags & N_CHOSEN)
            fputs(", fillcolor=\"#9ecae1\"", f);
        if (n->flags & N_MARKED)
            fputs(", peripheries=2", f);
        if (!(n->flags & N_TRACKED))
            fputs(", style=\"rounded,filled,dashed\"", f);
        if (n->flags & D_CYCLE)
            fputs(", color=\"#d62728\"", f);
        fputs("];\n", f);
    }
    for (size_t e = 0; e < d->ne; e++) {
        fprintf(f, "  o%u -> o%u", ed[e].from, ed[e].to);
        if (ed[e].cycle || ed[e].mult > 1) {
            fputs(" [", f);
            if (ed[e].cycle)
                fputs("color=\"#d62728\", penwidth=2", f);
            if (ed[e].mult > 1)
                fprintf(f, "%slabel=\"x%u\"", ed[e].cycle ? ", " : "", ed[e].mult);
            fputc(']', f);
        }
        fputs(";\n", f);
    }
    for (uint32_t i = 0; i < d->m; i++) {
        if (!nd[i].more)
            continue;
        fprintf(f, "  more%u [shape=plaintext, style=\"\", label=\"+%u more\"];\n", i, nd[i].more);
        if (d->backrefs)
            fprintf(f, "  more%u -> o%u [style=dashed];\n", i, i);
        else
            fprintf(f, "  o%u -> more%u [style=dashed];\n", i, i);
    }
    fprintf(f, "  label=\"rcgc objgraph: ");
    if (d->max_depth == 0)
        fprintf(f, "%zu object(s) and the references between them", d->nchosen);
    else
        fprintf(f, "%s %zu object(s), depth %d", d->backrefs ? "what refers to" : "what is reached from",
                d->nchosen, d->max_depth);
    fprintf(f, "\\l%u objects, %zu references drawn\\l", d->m, d->ne);
    if (d->not_followed || d->dropped)
        fprintf(f, "truncated at max_nodes %zu: %zu references not followed, %zu chosen objects left "
                   "out\\l",
                d->max_nodes, d->not_followed, d->dropped);
    fputs("bold: chosen; green: root (double border: marked); dashed: untracked; red: on a "
          "cycle\\l\";\n}\n",
          f);
}

static int dot_args(void *const *objs, size_t n) {
    if (!objs || !n)
        return EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!objs[i])
            return EINVAL;
        rcgc__object_check(objs[i], "rcgc_objgraph_dot of a pointer rcgc did not allocate");
    }
    return 0;
}

int rcgc_objgraph_dot(FILE *f, void *const *objs, size_t n, const rcgc_objgraph_dot_opts *opts) {
    rcgc_thread *self = enter("rcgc_objgraph_dot");
    int err = dot_args(objs, n);
    if (err || !f)
        return err ? err : EINVAL;
    rcgc_objgraph_dot_opts o = opts ? *opts : (rcgc_objgraph_dot_opts){0};
    dgraph d = {.backrefs = o.backrefs != 0,
                .max_depth = o.max_depth < 0 ? 0 : o.max_depth ? o.max_depth : 3,
                .max_nodes = o.max_nodes ? o.max_nodes : 100,
                .nchosen = n};
    if (d.max_nodes > NONE - 1)
        d.max_nodes = NONE - 1;
    marked m;
    if ((err = marks_take(&m))) {
        marks_drop(&m);
        return err;
    }
    graph g;
    bool nested = rcgc__gc_snapshot_begin(self);
    err = graph_build(&g, objs, n, &m, d.backrefs);
    if (!err)
        err = dot_select(&d, &g, objs, n, o.flags);
    rcgc__gc_snapshot_end(nested);
    graph_free(&g);
    marks_drop(&m);
    /* From here, if all went well, the nodes are held. */
    uint32_t held = err ? 0 : d.m;
    char *labels = NULL;
    if (!err)
        err = find_cycles(&d);
    if (!err && o.label && d.m && !(labels = calloc(d.m, LABEL_MAX)))
        err = ENOMEM;
    if (!err) {
        for (uint32_t i = 0; labels && i < d.m; i++) {
            o.label(D_NODES(&d)[i].obj, &labels[(size_t)i * LABEL_MAX], LABEL_MAX, o.label_arg);
            labels[(size_t)i * LABEL_MAX + LABEL_MAX - 1] = '\0';
        }
        output_begin();
        dot_write(f, &d, labels);
        err = output_end(f);
    }
    free(labels);
    for (uint32_t i = 0; i < held; i++)
        rcgc_decref(D_NODES(&d)[i].obj);
    buf_free(&d.nodes);
    buf_free(&d.edges);
    return err;
}

int rcgc_objgraph_dot_path(const char *path, void *const *objs, size_t n,
                           const rcgc_objgraph_dot_opts *opts) {
    enter("rcgc_objgraph_dot_path");
    int err = dot_args(objs, n);
    if (err || !path)
        return err ? err : EINVAL;
    rcgc_blocking_begin();
    FILE *f = fopen(path, "w");
    err = f ? 0 : errno;
    rcgc_blocking_end();
    if (err)
        return err;
    err = rcgc_objgraph_dot(f, objs, n, opts);
    rcgc_blocking_begin();
    if (fclose(f) != 0 && !err)
        err = errno;
    rcgc_blocking_end();
    return err;
}

/* ------------------------------------------------------------------------
 * Shutdown
 * ------------------------------------------------------------------------ */

void rcgc__objgraph_shutdown(void) {
    pthread_mutex_lock(&marks_lock);
    mark *m = marks;
    size_t n = nmarks;
    marks = NULL;
    nmarks = marks_cap = 0;
    pthread_mutex_unlock(&marks_lock);
    /* Unattached, the weak references go with the heaps. */
    for (size_t i = 0; rcgc__tls_thread && i < n; i++)
        rcgc_weakref_free(m[i].w);
    free(m);
    buf_free(&base.b);
    base.n = 0;
}
