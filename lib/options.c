/*
 * The option table: every runtime option, its default, what it does and
 * its environment variable. Read once by rcgc_init (config fields win over
 * the environment, the environment over the default).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
    const char *env;        /* RCGC_<NAME> */
    long        def;
    long        min, max;
    const char *doc;
} option_desc;

static const option_desc table[RCGC_OPT_COUNT] = {
    [RCGC_OPT_PURGE]        = {"RCGC_PURGE", 1, 0, 1,
                               "give the memory of empty pages back to the OS (madvise), "
                               "RCGC_PURGE_DELAY_MS after they empty"},
    [RCGC_OPT_PURGE_DELAY_MS] = {"RCGC_PURGE_DELAY_MS", 10, 0, 3600000,
                               "milliseconds an empty page keeps its memory before it is purged, "
                               "so that a page reused meanwhile costs no system call (0: at once)"},
    [RCGC_OPT_ARENA_CACHE]  = {"RCGC_ARENA_CACHE", 1, 0, 1024,
                               "empty 64 MiB arenas kept reserved for reuse instead of unmapped"},
    [RCGC_OPT_FAULT_OS_NTH] = {"RCGC_FAULT_OS_NTH", 0, 0, 1L << 40,
                               "testing: make the Nth fallible OS call fail (mmap, munmap, madvise, "
                               "pthread_create, pthread_setspecific; 0: never)"},
    [RCGC_OPT_WATCHDOG_MS]  = {"RCGC_WATCHDOG_MS", 1000, 0, 3600000,
                               "a pause that waits this long for one thread prints its name (0: off)"},
    [RCGC_OPT_GC_WORKERS]   = {"RCGC_GC_WORKERS", 0, 0, 256,
                               "collector threads, the collecting thread included (0: one per CPU)"},
    [RCGC_OPT_GC_THRESHOLD] = {"RCGC_GC_THRESHOLD", 2000, 0, 1L << 40,
                               "tracked allocations minus deallocations that start an automatic "
                               "collection, if also above a quarter of the tracked heap (0: off)"},
    [RCGC_OPT_GC_PAGES_PER_WORKER] = {"RCGC_GC_PAGES_PER_WORKER", 128, 1, 1L << 30,
                               "a collection uses one more worker per this many 64 KiB pages of "
                               "tracked objects (tests set 1 to run the parallel paths on small heaps)"},
    [RCGC_OPT_GC_FULL_PCT]  = {"RCGC_GC_FULL_PCT", 25, 1, 10000,
                               "objects promoted by young collections, in percent of those that "
                               "survived the last full one, that make the next collection full"},
    [RCGC_OPT_TRACE]        = {"RCGC_TRACE", 0, 0, 64,
                               "start allocation tracing in rcgc_init, keeping this many stack "
                               "frames per allocation (0: off)"},
    [RCGC_OPT_TRACE_SAMPLE] = {"RCGC_TRACE_SAMPLE", 0, 0, 1L << 40,
                               "tracing records one allocation per this many bytes on average, "
                               "weighted (0: every allocation)"},
    [RCGC_OPT_PROFILE_INTERVAL] = {"RCGC_PROFILE_INTERVAL", 100, 1, 3600000,
                               "milliseconds between two rows of the RCGC_PROFILE sampler"},
};

typedef struct {
    const char *env;
    const char *doc;
} str_option_desc;

static const str_option_desc str_table[RCGC_SOPT_COUNT] = {
    [RCGC_SOPT_PROFILE] = {"RCGC_PROFILE", "CSV file the usage sampler writes (unset: no sampler)"},
    [RCGC_SOPT_DEBUG]   = {"RCGC_DEBUG", "comma-separated reports: stats, leaks, saveall"},
};

/* Written by rcgc_init before any other thread can use the runtime, then
 * only read; relaxed atomics keep concurrent init/read pairs well defined. */
static long values[RCGC_OPT_COUNT];
static _Atomic int loaded;
/* Copies (libc malloc) of the string options, replaced by each load. */
static char *str_values[RCGC_SOPT_COUNT];

static long from_env(const option_desc *d) {
    const char *s = getenv(d->env);
    if (!s || !*s)
        return d->def;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || *end || v < d->min || v > d->max)
        return d->def;     /* a bad value is ignored, as Python does with PYTHONxxx */
    return v;
}

/* A config field: 0 means "not set", -1 means "off / none". */
static void from_config(rcgc_option o, int field) {
    if (field > 0)
        __atomic_store_n(&values[o], field > table[o].max ? table[o].max : field, __ATOMIC_RELAXED);
    else if (field < 0)
        __atomic_store_n(&values[o], 0, __ATOMIC_RELAXED);
}

void rcgc__options_load(const rcgc_config *cfg) {
    for (int i = 0; i < RCGC_OPT_COUNT; i++)
        __atomic_store_n(&values[i], from_env(&table[i]), __ATOMIC_RELAXED);
    if (cfg) {
        from_config(RCGC_OPT_PURGE, cfg->purge);
        from_config(RCGC_OPT_PURGE_DELAY_MS, cfg->purge_delay_ms);
        from_config(RCGC_OPT_ARENA_CACHE, cfg->arena_cache);
        from_config(RCGC_OPT_GC_WORKERS, cfg->gc_workers);
        from_config(RCGC_OPT_GC_THRESHOLD, cfg->gc_threshold);
        from_config(RCGC_OPT_GC_FULL_PCT, cfg->gc_full_pct);
        from_config(RCGC_OPT_TRACE, cfg->trace_frames);
        from_config(RCGC_OPT_TRACE_SAMPLE, cfg->trace_sample);
        from_config(RCGC_OPT_PROFILE_INTERVAL, cfg->profile_interval_ms);
    }
    const char *strs[RCGC_SOPT_COUNT] = {
        [RCGC_SOPT_PROFILE] = cfg && cfg->profile ? cfg->profile : getenv("RCGC_PROFILE"),
        [RCGC_SOPT_DEBUG]   = cfg && cfg->debug ? cfg->debug : getenv("RCGC_DEBUG"),
    };
    for (int i = 0; i < RCGC_SOPT_COUNT; i++) {
        free(str_values[i]);
        /* An empty string is unset; a failed copy too (the option is
         * then off, which is the safe reading of "no memory"). */
        str_values[i] = strs[i] && *strs[i] ? strdup(strs[i]) : NULL;
    }
    atomic_store_explicit(&loaded, 1, memory_order_release);
}

const char *rcgc__option_str(rcgc_str_option o) {
    if (rcgc_unlikely(!atomic_load_explicit(&loaded, memory_order_acquire)))
        return NULL;
    return str_values[o];
}

const char *rcgc__option_str_name(rcgc_str_option o) { return str_table[o].env; }

long rcgc__option(rcgc_option o) {
    if (rcgc_unlikely(!atomic_load_explicit(&loaded, memory_order_acquire)))
        return table[o].def;
    return __atomic_load_n(&values[o], __ATOMIC_RELAXED);
}

const char *rcgc__option_name(rcgc_option o) { return table[o].env; }
