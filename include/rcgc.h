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
    int purge;          /* 0: default (RCGC_PURGE, else on); 1: return empty pages' memory to the OS at once; -1: keep it */
    int arena_cache;    /* 0: default (RCGC_ARENA_CACHE, else 1); n > 0: empty arenas kept reserved; -1: none */
} rcgc_config;

int   rcgc_init(const rcgc_config *cfg);   /* NULL: defaults + RCGC_* env; attaches caller; 0 or errno */
void  rcgc_shutdown(void);                 /* release all memory; re-init allowed */
int   rcgc_thread_attach(void);            /* 0 or errno (EBUSY: already attached, EINVAL: not initialised) */
void  rcgc_thread_detach(void);            /* abandons the thread's pages to other heaps */
int   rcgc_is_attached(void);              /* 1 if the calling thread is attached */

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
    size_t frees_total;
    size_t remote_frees_total; /* frees by a thread other than the page's owner */
    size_t threads_attached;
    size_t nclasses;        /* entries of by_class in use */
    rcgc_class_stats by_class[RCGC_STATS_NCLASSES];
} rcgc_stats;

/* A consistent-enough snapshot: per-thread counters are merged without
 * stopping threads, so totals may be off by operations in flight. */
void  rcgc_stats_get(rcgc_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* RCGC_H */
