/*
 * rcgc internal definitions shared by every layer: compile-time tunables,
 * assertions, the fatal-error path and the option table.
 *
 * Not part of the public contract: users include <rcgc.h> only.
 */
#ifndef RCGC_INTERNAL_H
#define RCGC_INTERNAL_H

#ifndef RCGC_BUILDING_LIBRARY
#error "lib/internal.h is private to rcgc: include <rcgc.h> instead"
#endif

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rcgc.h"

/* ------------------------------------------------------------------------
 * Tunables (compile time). Change with care: arena.c and heap.c check the
 * relations between them with static assertions.
 * ------------------------------------------------------------------------ */
#define RCGC_SLICE_SHIFT   16                          /* 64 KiB slices */
#define RCGC_SLICE_SIZE    ((size_t)1 << RCGC_SLICE_SHIFT)
#define RCGC_ARENA_SHIFT   26                          /* 64 MiB arenas */
#define RCGC_ARENA_SIZE    ((size_t)1 << RCGC_ARENA_SHIFT)
#define RCGC_ARENA_SLICES  (RCGC_ARENA_SIZE / RCGC_SLICE_SIZE)
#define RCGC_ALIGN         16                          /* every block start */

#define RCGC_SMALL_MAX     512                         /* pymalloc's limit */
#define RCGC_SMALL_CLASSES (RCGC_SMALL_MAX / RCGC_ALIGN) /* 16..512 step 16 */
#define RCGC_MEDIUM_MAX    ((size_t)32 << 10)          /* 4 classes per doubling */
#define RCGC_MEDIUM_CLASSES 24
#define RCGC_NCLASSES      (1 + RCGC_SMALL_CLASSES + RCGC_MEDIUM_CLASSES) /* class 0 unused */
#define RCGC_SMALL_PAGE_SLICES  1                      /* 64 KiB pages */
#define RCGC_MEDIUM_PAGE_SLICES 8                      /* 512 KiB pages */

/* Heap tags: blocks of different kinds live on different pages, so that the
 * collector walks only pages that can hold tracked objects. */
enum {
    RCGC_TAG_RAW = 0,   /* rcgc_malloc */
    RCGC_TAG_OBJ = 1,   /* objects whose type has no traverse */
    RCGC_TAG_GC  = 2,   /* objects the cycle collector tracks */
    RCGC_NTAGS   = 3
};

/* ------------------------------------------------------------------------
 * Branch hints, attributes
 * ------------------------------------------------------------------------ */
#define rcgc_likely(x)   __builtin_expect(!!(x), 1)
#define rcgc_unlikely(x) __builtin_expect(!!(x), 0)
#define RCGC_NOINLINE    __attribute__((noinline))
#define RCGC_COLD        __attribute__((cold, noinline))
#define RCGC_INLINE      static inline __attribute__((always_inline))
#define RCGC_TLS         __thread __attribute__((tls_model("initial-exec")))

/* ------------------------------------------------------------------------
 * Assertions, three levels chosen at compile time (RCGC_DEBUG_LEVEL):
 *   0: none; 1 (default): cheap checks on slow paths; 2: everything,
 *   including fast paths and full structure validation.
 * ------------------------------------------------------------------------ */
#ifndef RCGC_DEBUG_LEVEL
#define RCGC_DEBUG_LEVEL 1
#endif

RCGC_COLD __attribute__((noreturn, format(printf, 4, 5)))
void rcgc__fatal(const char *file, int line, const char *func, const char *fmt, ...);

#define RCGC_FATAL(...) rcgc__fatal(__FILE__, __LINE__, __func__, __VA_ARGS__)

#define RCGC_CHECK_(cond)                                                    \
    do {                                                                     \
        if (rcgc_unlikely(!(cond)))                                          \
            RCGC_FATAL("internal invariant broken: %s", #cond);              \
    } while (0)

#if RCGC_DEBUG_LEVEL >= 1
#define RCGC_ASSERT(cond) RCGC_CHECK_(cond)
#else
#define RCGC_ASSERT(cond) ((void)0)
#endif
#if RCGC_DEBUG_LEVEL >= 2
#define RCGC_ASSERT_EXPENSIVE(cond) RCGC_CHECK_(cond)
#else
#define RCGC_ASSERT_EXPENSIVE(cond) ((void)0)
#endif

/* ------------------------------------------------------------------------
 * Options: one table (options.c), each with a default, a comment and an
 * RCGC_<NAME> environment variable read once by rcgc_init.
 * ------------------------------------------------------------------------ */
typedef enum {
    RCGC_OPT_PURGE,           /* madvise(DONTNEED) spans that go back to an arena */
    RCGC_OPT_PURGE_DELAY_MS,  /* ... this long after they went back (0: at once) */
    RCGC_OPT_ARENA_CACHE,     /* empty arenas kept reserved instead of unmapped */
    RCGC_OPT_FAULT_OS_NTH,    /* testing: the Nth OS memory call fails (0: never) */
    RCGC_OPT_WATCHDOG_MS,     /* a pause waiting this long for one thread names it (0: off) */
    RCGC_OPT_GC_WORKERS,      /* collector threads (0: one per CPU) */
    RCGC_OPT_GC_THRESHOLD,    /* tracked allocations - deallocations that start a collection (0: off) */
    RCGC_OPT_GC_FULL_PCT,     /* young survivors, in % of the old heap, that make the next one full */
    RCGC_OPT_GC_PAGES_PER_WORKER, /* a collection uses one worker per this many pages */
    RCGC_OPT_TRACE,           /* allocation tracing from rcgc_init: frames per stack (0: off) */
    RCGC_OPT_TRACE_SAMPLE,    /* tracing samples one allocation per this many bytes (0: all) */
    RCGC_OPT_PROFILE_INTERVAL,/* usage sampler period in ms */
    RCGC_OPT_COUNT
} rcgc_option;

/* Options whose value is a string (NULL when unset). */
typedef enum {
    RCGC_SOPT_PROFILE,        /* CSV path of the usage sampler */
    RCGC_SOPT_DEBUG,          /* comma-separated: stats, leaks, saveall */
    RCGC_SOPT_COUNT
} rcgc_str_option;

long rcgc__option(rcgc_option o);
void rcgc__options_load(const rcgc_config *cfg);   /* once, from rcgc_init */
const char *rcgc__option_name(rcgc_option o);
/* The string option's value, valid until the next rcgc_init; NULL if unset. */
const char *rcgc__option_str(rcgc_str_option o);
const char *rcgc__option_str_name(rcgc_str_option o);

/* Relaxed counter helpers for per-thread statistics: written by one owner,
 * read by rcgc_stats_get from other threads. On x86 these are plain moves. */
#define RCGC_STAT_ADD(field, n) \
    __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)
#define RCGC_STAT_LOAD(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

#endif /* RCGC_INTERNAL_H */
