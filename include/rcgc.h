/*
 * rcgc — Python's memory management for multithreaded C programs.
 *
 * Public contract. Thread-safety: every function may be called from any
 * attached thread (rcgc_init attaches its caller; other threads call
 * rcgc_thread_attach first) unless its comment says otherwise.
 *
 * Errors: recoverable failures return NULL or an errno value and change
 * nothing. Misuse that would corrupt memory stops the program through the
 * fatal-error handler (rcgc_set_fatal_handler), with a message naming what
 * went wrong.
 */
#ifndef RCGC_H
#define RCGC_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RCGC_VERSION_MAJOR 0
#define RCGC_VERSION_MINOR 1

/* ------------------------------------------------------------------------
 * Runtime and threads
 * ------------------------------------------------------------------------ */

/* Configuration. Zero-initialise and set what you need; a zero field takes
 * its default (or the RCGC_<NAME> environment variable, read once by
 * rcgc_init). See docs/CONFIG.md for the table of options. */
typedef struct rcgc_config {
    int purge;          /* 0: default (RCGC_PURGE, else on); 1: return empty pages' memory to the OS
                           (after purge_delay_ms); -1: keep it */
    int arena_cache;    /* 0: default (RCGC_ARENA_CACHE, else 1); n > 0: empty arenas kept reserved; -1: none */
    int gc_workers;     /* 0: default (RCGC_GC_WORKERS, else the number of CPUs); n > 0: collector threads */
    int gc_threshold;   /* 0: default (RCGC_GC_THRESHOLD, else 2000); n > 0: see rcgc_gc_set_threshold; -1: automatic collection off */
    int gc_full_pct;    /* 0: default (RCGC_GC_FULL_PCT, else 25); n > 0: see rcgc_gc_set_threshold */
    /* Memory profiling (docs/PROFILING.md). */
    int trace_frames;   /* 0: default (RCGC_TRACE, else off); n > 0: rcgc_trace_start(n) in rcgc_init; -1: off */
    int trace_sample;   /* 0: default (RCGC_TRACE_SAMPLE, else 0); n > 0: with tracing on, sample one
                           allocation per n bytes on average instead of recording every one; -1: every one */
    const char *profile;        /* NULL: default (RCGC_PROFILE, else off); CSV file of the usage sampler */
    int profile_interval_ms;    /* 0: default (RCGC_PROFILE_INTERVAL, else 100): sampler period */
    const char *debug;  /* NULL: default (RCGC_DEBUG, else none); comma-separated: stats, leaks, saveall */
    int purge_delay_ms; /* 0: default (RCGC_PURGE_DELAY_MS, else 10); n > 0: an empty page's memory goes
                           to the OS n ms after it empties; -1: at once */
} rcgc_config;

int   rcgc_init(const rcgc_config *cfg);   /* NULL: defaults + RCGC_* env; attaches caller; 0 or errno */
void  rcgc_shutdown(void);                 /* a full collection (finalizers run), then release all
                                              memory; re-init allowed */
int   rcgc_thread_attach(void);            /* 0 or errno (EBUSY: already attached, EINVAL: not initialised) */
void  rcgc_thread_detach(void);            /* merges the counts of objects it owns, abandons its pages.
                                              A thread that exits attached is detached by a
                                              pthread key destructor. */
int   rcgc_is_attached(void);              /* 1 if the calling thread is attached */

/* Pauses (the collector's stop-the-world) wait for every attached thread to
 * reach a safepoint: rcgc_safepoint(), rcgc_new, rcgc_malloc. An attached
 * thread that blocks (a system call, a lock, a join, a sleep) must do it
 * inside rcgc_blocking_begin/end, or a pause waits for it (the watchdog,
 * RCGC_WATCHDOG_MS, names such a thread on stderr). Touch no rcgc object
 * inside a blocking region. */
static inline void rcgc_safepoint(void);  /* inline poll below: one load, one branch */
void  rcgc_blocking_begin(void);           /* the collector never waits for a thread in here */
void  rcgc_blocking_end(void);             /* waits for a pause in progress to end */
void  rcgc_thread_set_name(const char *name); /* for watchdog and fatal messages (also pthread_setname_np) */

/* ------------------------------------------------------------------------
 * Types
 * ------------------------------------------------------------------------ */
typedef int  (*rcgc_visit_fn)(void *obj, void *arg);   /* non-zero stops a traversal */

#define RCGC_TYPE_SHARED_READ 0x1u  /* readers may use rcgc_load_ref: memory reuse waits a grace period */

typedef struct rcgc_type {
    const char *name;
    size_t      size;                                   /* payload bytes; 0: variable, see rcgc_new_var */
    int  (*traverse)(void *self, rcgc_visit_fn visit, void *arg); /* NULL: holds no references, untracked */
    void (*clear)(void *self);                          /* drop references (breaks garbage cycles) */
    void (*finalize)(void *self);                       /* PEP 442: at most once, may resurrect */
    void (*destroy)(void *self);                        /* release non-managed resources before free */
    unsigned    flags;                                  /* RCGC_TYPE_SHARED_READ, ... */
} rcgc_type;

/* traverse calls visit only for non-NULL references. */
#define RCGC_VISIT(p)                                                  \
    do {                                                               \
        if (p) {                                                       \
            int rcgc_visit_rc_ = visit((void *)(p), arg);              \
            if (rcgc_visit_rc_)                                        \
                return rcgc_visit_rc_;                                 \
        }                                                              \
    } while (0)

/* ------------------------------------------------------------------------
 * Objects. The header sits before the returned pointer; the payload is
 * zeroed and 16-byte aligned. A new object has count 1, owned by the
 * calling thread.
 * ------------------------------------------------------------------------ */
void  *rcgc_new(const rcgc_type *t);                    /* NULL + ENOMEM (EINVAL: size 0 type) */
void  *rcgc_new_var(const rcgc_type *t, size_t size);   /* payload of `size` bytes */
static inline void rcgc_incref(void *o);
static inline void rcgc_decref(void *o);
static inline void rcgc_xincref(void *o);               /* NULL allowed */
static inline void rcgc_xdecref(void *o);
void   rcgc_set(void **slot, void *value);              /* incref value, store, decref old */
void  *rcgc_load_ref(void *const *slot);                /* new strong ref or NULL; RCGC_TYPE_SHARED_READ */
size_t rcgc_refcount(const void *o);                    /* approximate while other threads count */
const rcgc_type *rcgc_typeof(const void *o);
void   rcgc_immortalize(void *o);                       /* counting stops; never freed. Call before sharing */
int    rcgc_is_immortal(const void *o);

/* ------------------------------------------------------------------------
 * Weak references. A weak reference does not keep its referent alive. It
 * is cleared (get returns NULL) before the referent is finalized or freed;
 * then its callback, if any, runs once, outside any pause, on the thread
 * that found the referent dead (the one that dropped the last reference,
 * or the collector), with the referent already unreachable. The
 * rcgc_weakref itself stays valid until rcgc_weakref_free, also inside its
 * callback; a weak reference freed before its referent dies gets no
 * callback. Free every weak reference before rcgc_shutdown (their memory
 * goes with the heaps).
 * ------------------------------------------------------------------------ */
typedef struct rcgc_weakref rcgc_weakref;
typedef void (*rcgc_weakref_cb)(rcgc_weakref *w, void *arg);
/* A weak reference to o (the caller holds a strong one). NULL + errno:
 * ENOMEM, or EINVAL if o is NULL or immortal (immortal objects never die). */
rcgc_weakref *rcgc_weakref_new(void *o, rcgc_weakref_cb cb, void *arg);
void *rcgc_weakref_get(rcgc_weakref *w);   /* a new strong reference, or NULL once the referent died */
void  rcgc_weakref_free(rcgc_weakref *w);  /* NULL allowed; any attached thread, once */

/* ------------------------------------------------------------------------
 * The cycle collector: Python's gc module, in C.
 *
 * A collection stops the world and finds the tracked objects (those whose
 * type has `traverse`) that only other candidates refer to. Unreachable
 * objects lose their weak references, then their type's `finalize` runs
 * once per object (PEP 442) with the world running; objects a finalizer
 * made reachable again survive, with everything they reach; the rest get
 * `clear`, and counting frees them. `clear` must be idempotent: a cleared
 * object's death calls it again. Unreachable means every tracked object
 * that only garbage refers to; garbage is cleared and freed on the
 * collecting thread, whichever thread owned it.
 *
 * Automatic collections follow cycles, not allocation volume: a cycle can
 * become garbage only when a decrement leaves a tracked object alive (a
 * "possible root"). They run when tracked allocations minus deallocations
 * since the last collection exceed the threshold and a quarter of the live
 * tracked objects, if any possible root is live; with none, only past 8x
 * that (the backstop, for cycles built from stolen references). Each
 * automatic collection in a row that finds nothing doubles the limit (up
 * to 1024x); one that finds garbage resets it. They are young collections
 * (only objects allocated since the last collection are candidates) unless
 * the young survivors since the last full one, less the old objects that
 * died since, exceed full_pct percent of the objects that survived it, or
 * possible roots among old objects do, or some are left after 10 young
 * collections. docs/ARCHITECTURE.md, "Trigger", has the whole policy.
 * ------------------------------------------------------------------------ */
size_t rcgc_collect(void);                  /* full collection: unreachable objects found */
size_t rcgc_collect_young(void);            /* young collection: unreachable objects found */
void   rcgc_gc_enable(void);                /* automatic collections (on after rcgc_init) */
void   rcgc_gc_disable(void);
int    rcgc_gc_is_enabled(void);
void   rcgc_gc_set_threshold(size_t threshold, unsigned full_pct); /* threshold 0: automatic off */
void   rcgc_gc_get_threshold(size_t *threshold, unsigned *full_pct);
size_t rcgc_gc_get_count(void);             /* tracked allocations - deallocations since the last
                                               collection (threads buffer up to 64 each) */
void   rcgc_gc_freeze(void);                /* every tracked object: never a candidate again */
void   rcgc_gc_unfreeze(void);              /* candidates again (at the next full collection) */
size_t rcgc_gc_get_freeze_count(void);
int    rcgc_is_tracked(const void *o);      /* 1 if o's type has traverse (frozen objects too) */

/* Introspection. Each takes a snapshot with the world stopped, holding a
 * reference to every object in it, then calls fn on each with the world
 * running (fn may do anything, including allocate and collect); a non-zero
 * return from fn stops the walk and is returned. -1 + ENOMEM: no memory
 * for the snapshot (fn not called). */
int rcgc_gc_get_objects(rcgc_visit_fn fn, void *arg);             /* every live tracked object */
int rcgc_gc_get_referrers(const void *o, rcgc_visit_fn fn, void *arg); /* tracked objects referring to o */
int rcgc_gc_get_referents(void *o, rcgc_visit_fn fn, void *arg);  /* what o's traverse visits */

/* Collection callbacks: called on the collecting thread at the start and
 * at the end of every collection, with the world running. */
typedef struct rcgc_gc_info {
    uint64_t collection;    /* 1 for the first collection since rcgc_init */
    int      young;         /* 1: young collection; 0: full */
    int      aborted;       /* ENOMEM: the collection gave up and changed nothing */
    unsigned workers;       /* collector threads used */
    size_t   candidates;    /* objects scanned */
    size_t   unreachable;   /* found unreachable (what rcgc_collect returns) */
    size_t   collected;     /* unreachable and cleared (freed unless something kept them) */
    size_t   uncollectable; /* unreachable but their type has no clear: left alive */
    size_t   finalized;     /* finalize calls */
    size_t   resurrected;   /* unreachable objects that finalizers made reachable again */
    size_t   saved;         /* kept by RCGC_GC_DEBUG_SAVEALL instead of cleared */
    uint64_t pause_ns;      /* world stopped (both pauses) */
    uint64_t duration_ns;   /* start to end, finalizers and freeing included */
} rcgc_gc_info;
typedef enum { RCGC_GC_START, RCGC_GC_STOP } rcgc_gc_phase;
typedef void (*rcgc_gc_callback)(rcgc_gc_phase phase, const rcgc_gc_info *info, void *arg);
int rcgc_gc_callback_add(rcgc_gc_callback fn, void *arg);     /* 0, ENOMEM (32 at most), EEXIST */
int rcgc_gc_callback_remove(rcgc_gc_callback fn, void *arg);  /* 0 or ENOENT */

/* Totals since rcgc_init, and the last collection's info. */
typedef struct rcgc_gc_stats {
    uint64_t collections, young_collections, full_collections, aborted;
    uint64_t candidates, unreachable, collected, uncollectable, finalized, resurrected;
    uint64_t pause_total_ns, pause_max_ns;
    size_t   tracked_live;  /* tracked objects that survived the last collection, plus count since */
    size_t   frozen;
    rcgc_gc_info last;
    size_t   possible_roots;    /* live tracked objects a decrement left alive, not yet visited
                                   by a collection: what the automatic trigger waits for */
    unsigned empty_streak;      /* automatic collections in a row that found nothing */
} rcgc_gc_stats;
void rcgc_gc_get_stats(rcgc_gc_stats *out);

/* Debugging: with RCGC_GC_DEBUG_SAVEALL, unreachable objects are kept (with
 * a reference) instead of cleared; see them with rcgc_gc_get_garbage. */
#define RCGC_GC_DEBUG_SAVEALL 0x1u
void     rcgc_gc_set_debug(unsigned flags);
unsigned rcgc_gc_get_debug(void);
int      rcgc_gc_get_garbage(rcgc_visit_fn fn, void *arg);  /* as get_objects, over the saved garbage */
size_t   rcgc_gc_clear_garbage(void);                       /* drop the saved references; how many */

/* ------------------------------------------------------------------------
 * Raw memory from the per-thread heaps (like PyMem_Malloc).
 * Blocks are 16-byte aligned. Any attached thread may free a block that
 * another allocated. Calls from an unattached thread are misuse (fatal).
 * ------------------------------------------------------------------------ */
void  *rcgc_malloc(size_t size);           /* NULL + ENOMEM on failure; size 0 gives a unique block */
void  *rcgc_calloc(size_t n, size_t size); /* zeroed; NULL + ENOMEM on overflow or failure */
void   rcgc_free(void *p);                 /* NULL allowed; a pointer rcgc did not allocate is fatal */
size_t rcgc_usable_size(const void *p);    /* bytes usable at p (>= the size asked for) */
int    rcgc_owns(const void *p);           /* 1 if p is a live or free block start in an rcgc heap */
void   rcgc_heap_collect(void);            /* take back frees other threads made into the caller's
                                              pages and give empty pages' memory to the OS */

/* ------------------------------------------------------------------------
 * Fatal errors
 * ------------------------------------------------------------------------ */
/* Called with a complete, human-readable message (no trailing newline).
 * The default prints it to stderr and aborts. A replacement must not return
 * into rcgc (longjmp out, exit, or abort); if it returns, rcgc aborts. */
typedef void (*rcgc_fatal_handler)(const char *message);
rcgc_fatal_handler rcgc_set_fatal_handler(rcgc_fatal_handler h);  /* NULL restores the default */

/* ------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------ */
#define RCGC_STATS_NCLASSES 64

typedef struct rcgc_class_stats {
    size_t block_size;      /* 0 for unused slots */
    size_t blocks_in_use;   /* includes blocks freed by other threads and not yet collected */
    size_t pages;           /* pages of this class currently held by heaps or abandoned */
} rcgc_class_stats;

typedef struct rcgc_stats {
    size_t bytes_reserved;  /* address space reserved from the OS */
    size_t bytes_committed; /* memory that may be resident (not yet purged) */
    size_t bytes_in_use;    /* block bytes handed out and not yet freed (by block size) */
    size_t arenas;          /* arenas currently reserved */
    size_t pages;           /* pages (spans) in use by heaps or abandoned */
    size_t pages_abandoned; /* pages waiting for adoption */
    size_t blocks_in_use;
    size_t large_in_use;    /* blocks in their own span */
    size_t allocs_total;    /* allocations since rcgc_init */
    size_t frees_total;     /* allocs_total - blocks_in_use (the free fast path counts nothing) */
    size_t remote_frees_total; /* frees by a thread other than the page's owner */
    size_t threads_attached;
    /* Objects */
    size_t objects_shared_read_pending; /* freed SHARED_READ objects waiting for a grace period */
    size_t objects_tracked; /* tracked objects alive at the last collection, plus allocations -
                               deallocations since (approximate) */
    uint64_t gc_collections;/* cycle collections (rcgc_gc_get_stats has the details) */
    /* Safepoints and pauses (time to safepoint over the last 4096 pauses) */
    uint64_t pauses;
    uint64_t ttsp_p50_ns, ttsp_p99_ns, ttsp_max_ns;
    uint64_t pause_max_ns, pause_total_ns;
    uint64_t watchdog_reports;
    uint64_t safepoint_slow_polls;  /* safepoint slow paths taken, all threads */
    size_t nclasses;        /* entries of by_class in use */
    rcgc_class_stats by_class[RCGC_STATS_NCLASSES];
} rcgc_stats;

/* A consistent-enough snapshot: per-thread counters are merged without
 * stopping threads, so totals may be off by operations in flight. */
void  rcgc_stats_get(rcgc_stats *out);

typedef struct rcgc_thread_stats {
    uint64_t serial;        /* rcgc's thread number, never reused */
    long     tid;           /* OS thread id */
    char     name[32];
    uint64_t safepoint_slow_polls;
    uint64_t pause_requests;/* pauses this thread was asked to stop for */
    size_t   allocs;        /* allocations by this thread */
    size_t   frees;         /* always 0: frees are counted globally only */
} rcgc_thread_stats;
/* Per-thread figures of up to `max` attached threads; returns how many
 * threads are attached (may exceed max). */
size_t rcgc_stats_threads(rcgc_thread_stats *out, size_t max);
/* Every figure above, the collector's and the tracer's, as a table for a
 * person (what RCGC_DEBUG=stats prints at shutdown); 0 or errno. */
int rcgc_stats_print(FILE *out);

/* ------------------------------------------------------------------------
 * Memory profiling: what Python's tracemalloc, objgraph and
 * memory_profiler do, built in (docs/PROFILING.md). Each tool is also
 * driven by rcgc_config / RCGC_* variables (docs/CONFIG.md).
 * ------------------------------------------------------------------------ */

/* --- Allocation tracing (as tracemalloc) -------------------------------- */

/* While tracing is on, every allocation (rcgc_new, rcgc_new_var,
 * rcgc_malloc, rcgc_calloc) records its call stack, up to `nframes` return
 * addresses starting at the caller of rcgc, and its type (NULL for raw
 * blocks), until the block is freed. Bytes are the size asked for, plus the
 * 32-byte header for objects. Off, it costs one predictable branch on the
 * allocation path and on rcgc_free.
 *
 * Sampling (rcgc_trace_start_sampling) records one allocation per
 * `mean_bytes` on average (the gap is drawn from an exponential
 * distribution, as tcmalloc's heap profiler does) and gives each sample a
 * weight, 1 / P(an allocation of that size is sampled), so that counts and
 * bytes in snapshots estimate the whole heap. Cheap enough to leave on:
 * see docs/PROFILING.md for what it costs.
 *
 * Tracing state is global; every function may be called from any attached
 * thread. Tracing stops, and its records go, at rcgc_shutdown. */
#define RCGC_TRACE_MAX_FRAMES 64
int  rcgc_trace_start(int nframes);         /* 0; EINVAL (nframes outside 1..64); EBUSY (on already) */
int  rcgc_trace_start_sampling(int nframes, size_t mean_bytes); /* the same, sampling; EINVAL if 0 */
void rcgc_trace_stop(void);                 /* forget every record (live snapshots stay valid) */
int  rcgc_trace_is_tracing(void);           /* 0 off, 1 every allocation, 2 sampling */
void rcgc_trace_clear(void);                /* forget the records so far, keep tracing; resets peak */
void rcgc_trace_get_traced_memory(size_t *current, size_t *peak);   /* traced bytes (estimates when sampling) */
size_t rcgc_trace_get_overhead(void);       /* bytes of memory the tracer itself uses */
/* The recorded stack of live block p (object or raw): its frames into
 * frames[0..max), innermost first; returns how many, 0 if p is not traced. */
int  rcgc_trace_get_traceback(const void *p, void **frames, int max);
/* "function+0x1c (binary+0x4a2f1)" for a return address (dladdr); the
 * module offset is what addr2line wants (tools/rcgc-symbolize). */
int  rcgc_trace_format_frame(const void *pc, char *buf, size_t size);   /* as snprintf */

/* A snapshot: the live traced blocks grouped by (call stack, type), taken
 * without stopping the world (each group is exact; groups of different
 * threads may be a few allocations apart). Independent of later tracing. */
typedef struct rcgc_trace_snapshot rcgc_trace_snapshot;
rcgc_trace_snapshot *rcgc_trace_take_snapshot(void);   /* NULL + ENOMEM, or + EINVAL if tracing is off */
void rcgc_trace_snapshot_free(rcgc_trace_snapshot *s); /* NULL allowed */

/* Statistics of a snapshot, grouped by key, largest first; with a base
 * snapshot, the differences too, ordered by the growth in bytes. */
typedef enum {
    RCGC_TRACE_BY_SITE,         /* the allocating frame (frames[0]) */
    RCGC_TRACE_BY_TRACEBACK,    /* the whole recorded stack */
    RCGC_TRACE_BY_TYPE,         /* the object type; raw blocks are one group */
} rcgc_trace_key;
typedef struct rcgc_trace_stat {
    const rcgc_type *type;      /* BY_TYPE; NULL for raw blocks (and for other keys) */
    const char *type_name;      /* the type's name, "raw" for raw blocks, NULL for other keys */
    int nframes;                /* BY_SITE: 1; BY_TRACEBACK: the stack; BY_TYPE: 0 */
    void *const *frames;        /* into the snapshot: valid while it lives */
    size_t count, bytes;        /* live blocks and their bytes (estimates when sampling) */
    long long count_diff, bytes_diff;   /* minus the base snapshot's (0 without one) */
} rcgc_trace_stat;
/* A malloc'd array of *n stats (free it with free()), or NULL + ENOMEM /
 * EINVAL. Groups only in the base (all freed since) appear with count 0. */
rcgc_trace_stat *rcgc_trace_statistics(const rcgc_trace_snapshot *s, const rcgc_trace_snapshot *base,
                                       rcgc_trace_key key, size_t *n);
/* Print the top `limit` groups as tracemalloc's "top 10" does; 0 or errno. */
int rcgc_trace_print_top(FILE *out, const rcgc_trace_snapshot *s, const rcgc_trace_snapshot *base,
                         rcgc_trace_key key, size_t limit);


/* --- Object graphs (as objgraph) ---------------------------------------- */

/* What is alive, by type; what grew since last time; why an object is
 * alive (the shortest chain of references from a root to it); and a
 * picture of the graph around chosen objects, as Graphviz DOT
 * (tools/rcgc-dot renders it to PNG or SVG). docs/PROFILING.md shows each.
 *
 * Each call takes one snapshot: it stops the world once, for a pause that
 * grows with the live heap (every live object is visited and every
 * tracked one traversed), takes a reference to each object it hands out,
 * and calls callbacks and writes output with the world running. Nothing
 * of it runs when not called. Returns 0 or an errno value: ENOMEM (nothing
 * changed; no memory for the snapshot), EINVAL, or the error that writing
 * the output met. Any attached thread may call them, also from finalizers
 * and collection callbacks. */
#include <stdio.h>

/* Live objects of one type. */
typedef struct rcgc_objgraph_count {
    const rcgc_type *type;
    size_t count;       /* live objects, tracked and untracked (immortal ones too) */
    size_t bytes;       /* their blocks: header, payload and size-class rounding */
    long   delta;       /* rcgc_objgraph_growth: count - the count at the previous call */
} rcgc_objgraph_count;

/* Every type with live objects, most objects first (ties by name). *out:
 * *n entries from malloc (the caller frees it; NULL when *n is 0). */
int rcgc_objgraph_counts(rcgc_objgraph_count **out, size_t *n);
/* The types whose count rose since the previous call (the first call
 * compares with an empty heap), largest rise first, with delta; the
 * counts seen become the next call's reference. As objgraph.growth. */
int rcgc_objgraph_growth(rcgc_objgraph_count **out, size_t *n);
/* Print the `limit` (0: 10) first of them, one line each: "name count
 * bytes" and "name count +delta" (objgraph.show_most_common_types and
 * show_growth; nothing printed when nothing grew). */
int rcgc_objgraph_show_most_common(FILE *f, size_t limit);
int rcgc_objgraph_show_growth(FILE *f, size_t limit);

/* Roots: where chains of references start. A root is an object marked
 * with rcgc_objgraph_mark_root, an immortal object, or (unless a call
 * passes RCGC_OBJGRAPH_MARKED_ROOTS) an object referred to from outside
 * the tracked heap: from variables, untracked memory, other threads —
 * its count exceeds the references tracked objects hold to it, as the
 * collector computes it. One reference to each object a call is given (the
 * target, the chosen objects) is taken to be the caller's, and not
 * counted. A mark is a weak reference: it does not keep the object alive,
 * and goes when the object dies. */
#define RCGC_OBJGRAPH_MARKED_ROOTS 0x1u    /* roots are marked and immortal objects only */
int rcgc_objgraph_mark_root(void *o);      /* 0, EEXIST, ENOMEM */
int rcgc_objgraph_unmark_root(void *o);    /* 0 or ENOENT */

/* The shortest chain of references from a root to target, as
 * objgraph.find_backref_chain: (*chain)[0] is a root, each entry refers to
 * the next, (*chain)[*n - 1] is target (alone if it is a root itself).
 * flags: RCGC_OBJGRAPH_MARKED_ROOTS or 0; max_depth: references at most
 * (0: no limit). The chain holds a reference to each object: give them
 * back with rcgc_objgraph_release. ENOENT: no root reaches target (within
 * max_depth): only garbage refers to it, or it is not referred to. */
int  rcgc_objgraph_find_chain(void *target, unsigned flags, size_t max_depth, void ***chain,
                              size_t *n);
void rcgc_objgraph_release(void **objs, size_t n);  /* decref each, free the array; NULL allowed */
/* One line per object of a chain from rcgc_objgraph_find_chain, root
 * first: type, address, count (without the chain's own reference). */
int  rcgc_objgraph_show_chain(FILE *f, void *const *chain, size_t n);

/* Graphviz DOT of the objects reachable from objs[0..n) (or, with
 * backrefs, of those that reach them), as objgraph.show_refs and
 * show_backrefs. Nodes show type, address, count and references from
 * outside; objs are drawn bold and blue, roots green (marked ones with a
 * double border), untracked objects dashed, and references on a cycle
 * red. Past max_nodes the graph stops growing: boxes and the caption say
 * how many references were not followed. */
typedef void (*rcgc_objgraph_label_fn)(void *obj, char *buf, size_t size, void *arg);
typedef struct rcgc_objgraph_dot_opts {
    int      backrefs;  /* 0: what objs refer to (show_refs); 1: what refers to them (show_backrefs) */
    int      max_depth; /* 0: default 3; n > 0: references followed from objs; -1: objs alone */
    size_t   max_nodes; /* 0: default 100; objects drawn at most */
    unsigned flags;     /* RCGC_OBJGRAPH_MARKED_ROOTS or 0 */
    rcgc_objgraph_label_fn label; /* NULL, or writes a line about obj into buf (world running) */
    void    *label_arg;
} rcgc_objgraph_dot_opts;
/* opts NULL: the defaults. EINVAL: n is 0, or an object is NULL. */
int rcgc_objgraph_dot(FILE *f, void *const *objs, size_t n, const rcgc_objgraph_dot_opts *opts);
int rcgc_objgraph_dot_path(const char *path, void *const *objs, size_t n,
                           const rcgc_objgraph_dot_opts *opts);


/* --- Usage over time (as memory_profiler) ------------------------------- */

/* A sampler thread writes a CSV file: a `sample` row every interval (RSS,
 * heap bytes in use, committed and reserved, live and tracked objects,
 * attached threads, collections so far) and a `gc` row per collection (its
 * kind, pause and duration in ms, workers, what it found). The first line
 * names the columns; times are seconds since the start; rows are written
 * at every tick. tools/rcgc-profile-plot draws the file (PNG, gnuplot).
 * Columns and cost: docs/PROFILING.md.
 *
 * rcgc_init starts it when RCGC_PROFILE / rcgc_config.profile name a file
 * (a file it cannot open prints one line on stderr and leaves sampling
 * off; rcgc_init still succeeds; a later rcgc_init in the same process
 * that names the same file appends to it); rcgc_shutdown stops it. The
 * sampler never attaches, so a pause never waits for it. One at a time.
 * After fork() the child has no sampler and writes nothing into the
 * parent's file; it may start its own. */
/* 0, or EBUSY (one runs: stop it first), EINVAL (not initialised, no path,
 * interval over an hour), an errno of open or write. interval_ms 0: the
 * RCGC_PROFILE_INTERVAL option (default 100). "%p" in path becomes the
 * process id. The file is truncated. */
int rcgc_profile_start(const char *path, unsigned interval_ms);
/* Final row, close: 0, ENOENT (none runs), or the errno of a failed write
 * (the sampler stopped at it, and said so on stderr). */
int rcgc_profile_stop(void);
int rcgc_profile_is_running(void);  /* 1: sampling (0 after a write error: call stop) */


/* ------------------------------------------------------------------------
 * Inline fast paths. Everything below this line is implementation: the
 * layout may change between versions (rebuild against the new header).
 * Each function is kept to a handful of instructions with one unlikely
 * branch to an out-of-line slow path.
 * ------------------------------------------------------------------------ */
struct rcgc_thread;
/* The calling thread's state, NULL if unattached (initial-exec TLS: one
 * %fs-relative load). */
extern __thread struct rcgc_thread *rcgc__tls_thread __attribute__((tls_model("initial-exec")));
/* Non-zero when the calling thread has safepoint work (a pause request,
 * merges to do, a grace period to report). Written by other threads. */
extern __thread uint32_t rcgc__tls_poll __attribute__((tls_model("initial-exec")));

/* The object header: 32 bytes before the payload.
 *   owner   the owning thread, RCGC__UNOWNED (1) once the counts are
 *           merged: never equal to a thread, nor to an unattached thread's
 *           NULL. Written by the owner (merge), read by everyone (relaxed).
 *   local   owner-only count (relaxed atomics so readers never tear);
 *           RCGC__IMMORTAL marks an immortal object.
 *   gc      collector bits (see lib/object.h).
 *   shared  (count << 2) | state, atomic; state: 0 default, 1 may have weak
 *           references, 2 queued to the owner for a merge, 3 merged.
 *   type    the object's type. */
typedef struct rcgc__header {
    uintptr_t owner;
    uint32_t  local;
    uint32_t  gc;
    intptr_t  shared;
    const rcgc_type *type;
} rcgc__header;

#define RCGC__IMMORTAL    UINT32_MAX
#define RCGC__UNOWNED     ((uintptr_t)1)
/* gc bits the inline decrement reads (lib/object.h has them all). */
#define RCGC__GC_TRACKED  1u
#define RCGC__GC_PURPLE   (1u << 7)
#define RCGC__SHARED_SHIFT 2

#define RCGC__HDR(o) ((rcgc__header *)(o) - 1)

void rcgc__incref_shared(void *o);
void rcgc__decref_shared(void *o);
void rcgc__decref_local_slow(void *o);
void rcgc__possible_root(void *o);
void rcgc__safepoint_slow(void);

static inline void rcgc_safepoint(void) {
    if (__builtin_expect(__atomic_load_n(&rcgc__tls_poll, __ATOMIC_RELAXED) != 0, 0))
        rcgc__safepoint_slow();
}

static inline void rcgc_incref(void *o) {
    rcgc__header *h = RCGC__HDR(o);
    uint32_t local = __atomic_load_n(&h->local, __ATOMIC_RELAXED) + 1;
    if (local == 0)
        return;     /* immortal: UINT32_MAX + 1 wraps */
    if (__builtin_expect(__atomic_load_n(&h->owner, __ATOMIC_RELAXED) == (uintptr_t)rcgc__tls_thread, 1))
        __atomic_store_n(&h->local, local, __ATOMIC_RELAXED);
    else
        rcgc__incref_shared(o);
}

static inline void rcgc_decref(void *o) {
    rcgc__header *h = RCGC__HDR(o);
    uint32_t local = __atomic_load_n(&h->local, __ATOMIC_RELAXED);
    if (local == RCGC__IMMORTAL)
        return;
    if (__builtin_expect(__atomic_load_n(&h->owner, __ATOMIC_RELAXED) == (uintptr_t)rcgc__tls_thread, 1)) {
        if (__builtin_expect(local > 1, 1)) {
            /* It stays alive: a tracked object that does may have become
             * cyclic garbage (a possible root: lib/gc.c, "Triggering"). */
            uint32_t gc = __atomic_load_n(&h->gc, __ATOMIC_RELAXED);
            if (__builtin_expect((gc & (RCGC__GC_TRACKED | RCGC__GC_PURPLE)) == RCGC__GC_TRACKED, 0))
                rcgc__possible_root(o);
            __atomic_store_n(&h->local, local - 1, __ATOMIC_RELAXED);
        } else
            rcgc__decref_local_slow(o);     /* 1 -> 0: merge or free; 0: misuse */
    } else {
        rcgc__decref_shared(o);
    }
}

static inline void rcgc_xincref(void *o) { if (o) rcgc_incref(o); }
static inline void rcgc_xdecref(void *o) { if (o) rcgc_decref(o); }

#ifdef __cplusplus
}
#endif
#endif /* RCGC_H */
