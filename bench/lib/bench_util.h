/*
 * Helpers shared by the benchmarks in bench/: option parsing, a seeded RNG,
 * time, and a driver that runs N measured worker threads for a duration or
 * a fixed amount of work and reports operations per second.
 *
 * Header-only (every function static): each benchmark is a single
 * translation unit, so the state below (the program name) is per program.
 * Thread-safety: bench_parse_options and bench_run_threads run in main; the
 * bench_worker_* functions run on the worker they are given.
 *
 * Measurement protocol (bench_run_threads):
 *   1. each worker sets up (attach to its allocator, build its tables),
 *      then calls bench_worker_start, a barrier shared with main;
 *   2. main stamps the start time when the barrier opens;
 *   3. workers run until bench_worker_should_stop says so (main raised the
 *      stop flag after --seconds, or the worker did its --iters), finish
 *      the work in flight, and stamp their end time (bench_worker_end)
 *      before tearing down;
 *   4. elapsed = latest end - start; ops = sum of the workers' counters.
 * Setup and teardown (thread creation, attach/detach) are outside the
 * measured interval; finishing the work in flight after the stop flag is
 * inside it, and so is the work it completes.
 */
#ifndef RCGC_BENCH_UTIL_H
#define RCGC_BENCH_UTIL_H

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------
 * Sanitizers: benchmarks shrink their defaults under them (the figures are
 * meaningless there anyway). The Bazel configs pass -DRCGC_SANITIZER=1.
 * ------------------------------------------------------------------------ */
#if defined(RCGC_SANITIZER) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BENCH_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define BENCH_SANITIZER 1
#endif
#endif
#ifndef BENCH_SANITIZER
#define BENCH_SANITIZER 0
#endif

#define BENCH_CACHE_LINE 64

/* ------------------------------------------------------------------------
 * Program name and fatal errors of the harness
 * ------------------------------------------------------------------------ */
static const char *bench_prog = "bench";

/* The harness cannot go on (bad option, no memory for its own tables, a
 * thread that cannot start): message to stderr, exit 2. */
__attribute__((noreturn, format(printf, 1, 2)))
static inline void bench_die(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: error: ", bench_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* Memory for the harness's own bookkeeping, cache-line aligned and zeroed;
 * never on a measured path. */
static inline void *bench_xalloc(size_t size) {
    size = (size + BENCH_CACHE_LINE - 1) & ~(size_t)(BENCH_CACHE_LINE - 1);
    void *p = aligned_alloc(BENCH_CACHE_LINE, size ? size : BENCH_CACHE_LINE);
    if (!p)
        bench_die("out of memory for the harness (%zu bytes)", size);
    memset(p, 0, size);
    return p;
}

/* ------------------------------------------------------------------------
 * Time
 * ------------------------------------------------------------------------ */
static inline uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void bench_sleep_ns(uint64_t ns) {
    struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------------------
 * RNG: xorshift64* (Vigna, "An experimental exploration of Marsaglia's
 * xorshift generators, scrambled", 2016), seeded through splitmix64 so
 * that nearby seeds give unrelated streams. One per thread, never shared.
 * ------------------------------------------------------------------------ */
typedef struct bench_rng { uint64_t s; } bench_rng;

static inline uint64_t bench_mix64(uint64_t z) {   /* splitmix64 finaliser */
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Same (seed, stream), same sequence. */
static inline void bench_rng_seed(bench_rng *r, uint64_t seed, uint64_t stream) {
    r->s = bench_mix64(seed ^ bench_mix64(stream + 0x632BE59BD9B4E019ull));
    if (r->s == 0)
        r->s = 0x2545F4914F6CDD1Dull;   /* xorshift's one forbidden state */
}

static inline uint64_t bench_rng_next(bench_rng *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n), n > 0 (the multiply-shift bias is negligible here). */
static inline uint64_t bench_rng_below(bench_rng *r, uint64_t n) {
    return (uint64_t)(((unsigned __int128)bench_rng_next(r) * n) >> 64);
}

/* ------------------------------------------------------------------------
 * Options: a table of bench_opt; accepted forms --name=value and
 * --name value (flags take no value). --help prints the table, exits 0.
 * ------------------------------------------------------------------------ */
typedef enum bench_opt_kind {
    BENCH_OPT_FLAG,     /* int *: set to 1 when present */
    BENCH_OPT_ULONG,    /* unsigned long *, within [min, max] */
    BENCH_OPT_DOUBLE,   /* double *, >= 0 */
    BENCH_OPT_STRING,   /* const char **; if choices is set, one of them (space-separated) */
} bench_opt_kind;

typedef struct bench_opt {
    const char *name;   /* without the leading dashes */
    bench_opt_kind kind;
    void *value;        /* holds the default; overwritten if given */
    unsigned long min, max;
    const char *choices;
    const char *help;
    int *given;         /* optional: set to 1 when the option is present */
} bench_opt;

static inline void bench_usage(FILE *f, const char *synopsis, const bench_opt *opts, size_t n) {
    fprintf(f, "usage: %s [options]\n%s\n", bench_prog, synopsis);
    for (size_t i = 0; i < n; i++) {
        const bench_opt *o = &opts[i];
        char flag[64], def[128] = "";
        switch (o->kind) {
        case BENCH_OPT_FLAG:
            snprintf(flag, sizeof flag, "--%s", o->name);
            break;
        case BENCH_OPT_ULONG:
            snprintf(flag, sizeof flag, "--%s=N", o->name);
            snprintf(def, sizeof def, " (default %lu)", *(unsigned long *)o->value);
            break;
        case BENCH_OPT_DOUBLE:
            snprintf(flag, sizeof flag, "--%s=X", o->name);
            snprintf(def, sizeof def, " (default %g)", *(double *)o->value);
            break;
        case BENCH_OPT_STRING:
            snprintf(flag, sizeof flag, "--%s=S", o->name);
            if (o->choices)
                snprintf(def, sizeof def, " (%s; default %s)", o->choices,
                         *(const char **)o->value ? *(const char **)o->value : "none");
            else if (*(const char **)o->value)
                snprintf(def, sizeof def, " (default %s)", *(const char **)o->value);
            break;
        }
        fprintf(f, "  %-18s %s%s\n", flag, o->help, def);
    }
}

/* 1 if word is one of the space-separated words in list. */
static inline int bench_word_in(const char *word, const char *list) {
    size_t len = strlen(word);
    for (const char *p = list; *p;) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        if ((size_t)(e - p) == len && len && strncmp(p, word, len) == 0)
            return 1;
        p = e;
    }
    return 0;
}

/* Parse argv into the table. Exits 2 on a malformed option, 0 after --help. */
static inline void bench_parse_options(int argc, char **argv, const char *synopsis,
                                       const bench_opt *opts, size_t n) {
    if (argc > 0 && argv[0]) {
        const char *slash = strrchr(argv[0], '/');
        bench_prog = slash ? slash + 1 : argv[0];
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            bench_usage(stdout, synopsis, opts, n);
            exit(0);
        }
        if (strncmp(arg, "--", 2) != 0) {
            bench_usage(stderr, synopsis, opts, n);
            bench_die("unexpected argument '%s'", arg);
        }
        const char *eq = strchr(arg + 2, '=');
        size_t len = eq ? (size_t)(eq - (arg + 2)) : strlen(arg + 2);
        const bench_opt *o = NULL;
        for (size_t k = 0; k < n && !o; k++)
            if (strlen(opts[k].name) == len && strncmp(opts[k].name, arg + 2, len) == 0)
                o = &opts[k];
        if (!o) {
            bench_usage(stderr, synopsis, opts, n);
            bench_die("unknown option '%s'", arg);
        }
        if (o->given)
            *o->given = 1;
        if (o->kind == BENCH_OPT_FLAG) {
            if (eq)
                bench_die("option --%s takes no value", o->name);
            *(int *)o->value = 1;
            continue;
        }
        const char *val;
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            bench_die("option --%s needs a value", o->name);

        char *end;
        errno = 0;
        if (o->kind == BENCH_OPT_ULONG) {
            unsigned long long v = strtoull(val, &end, 0);
            if (*val == '-' || *val == '\0' || errno || *end != '\0' || v < o->min || v > o->max)
                bench_die("--%s wants an integer in %lu..%lu, not '%s'", o->name, o->min, o->max,
                          val);
            *(unsigned long *)o->value = (unsigned long)v;
        } else if (o->kind == BENCH_OPT_DOUBLE) {
            double v = strtod(val, &end);
            if (errno || end == val || *end != '\0' || !(v >= 0))
                bench_die("--%s wants a non-negative number, not '%s'", o->name, val);
            *(double *)o->value = v;
        } else {
            if (o->choices && !bench_word_in(val, o->choices))
                bench_die("--%s wants one of: %s (not '%s')", o->name, o->choices, val);
            *(const char **)o->value = val;
        }
    }
}

/* ------------------------------------------------------------------------
 * Driver: N worker threads, one shared start, a stop flag, per-worker
 * operation counters read by main for progress lines.
 * ------------------------------------------------------------------------ */
struct bench_run;

/* One per worker, each on its own cache lines. */
typedef struct bench_worker {
    /* Completed operations. Written by the owner only (relaxed store of
     * its own running total), read by main for progress (relaxed): a
     * progress figure may lag by one batch; the final sum is read after
     * pthread_join, which orders it. */
    _Alignas(BENCH_CACHE_LINE) _Atomic uint64_t ops;
    uint64_t ops_local;         /* owner only: the total behind ops */
    uint64_t end_ns;            /* owner only until join: bench_worker_end's stamp */
    unsigned id;                /* 0..nthreads-1 */
    struct bench_run *run;
    pthread_t thread;
} bench_worker;

typedef struct bench_run {
    /* Set by main before bench_run_threads, read-only afterwards. */
    unsigned nthreads;
    double seconds;             /* time mode: stop after this long ... */
    uint64_t iters;             /* ... unless iters > 0: each worker stops after this many */
    int progress;               /* print a line to stderr every second */
    const char *label;          /* names the run in progress lines */
    void (*body)(bench_worker *w);  /* the worker: setup, start, loop, end, teardown */
    void *arg;                  /* shared state for body */

    /* Raised by main when the time is up (relaxed: it carries no data,
     * only "finish soon"). */
    _Alignas(BENCH_CACHE_LINE) _Atomic int stop;
    /* Workers that have stamped their end (release; main polls, acquire). */
    _Alignas(BENCH_CACHE_LINE) _Atomic unsigned finished;

    pthread_barrier_t start;
    uint64_t start_ns;          /* written by main after the barrier opens */
    bench_worker *workers;
} bench_run;

typedef struct bench_result {
    uint64_t ops;
    double elapsed_s;
    double ops_per_sec;
} bench_result;

/* Setup is done: wait for every worker and main. Call exactly once. */
static inline void bench_worker_start(bench_worker *w) {
    int rc = pthread_barrier_wait(&w->run->start);
    if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD)
        bench_die("pthread_barrier_wait: %s", strerror(rc));
}

/* True once the worker should stop starting new work: the time is up, or
 * (with --iters) it has done `done` >= iters units of its own work. */
static inline bool bench_worker_should_stop(bench_worker *w, uint64_t done) {
    bench_run *r = w->run;
    if (r->iters)
        return done >= r->iters;
    return atomic_load_explicit(&r->stop, memory_order_relaxed) != 0;
}

/* Count n completed operations (cheap: one plain store, no lock prefix). */
static inline void bench_worker_add(bench_worker *w, uint64_t n) {
    w->ops_local += n;
    atomic_store_explicit(&w->ops, w->ops_local, memory_order_relaxed);
}

/* The measured work is over (before teardown). Call exactly once. */
static inline void bench_worker_end(bench_worker *w) {
    w->end_ns = bench_now_ns();
    atomic_fetch_add_explicit(&w->run->finished, 1, memory_order_release);
}

static inline void *bench_worker_main(void *arg) {
    bench_worker *w = arg;
    w->run->body(w);
    return NULL;
}

static inline uint64_t bench_ops_now(const bench_run *r) {
    uint64_t sum = 0;
    for (unsigned i = 0; i < r->nthreads; i++)
        sum += atomic_load_explicit(&r->workers[i].ops, memory_order_relaxed);
    return sum;
}

/* Run r->nthreads workers; fills *out. Dies if a thread cannot start. */
static inline void bench_run_threads(bench_run *r, bench_result *out) {
    r->workers = bench_xalloc(sizeof(bench_worker) * r->nthreads);
    atomic_store_explicit(&r->stop, 0, memory_order_relaxed);
    atomic_store_explicit(&r->finished, 0, memory_order_relaxed);
    int rc = pthread_barrier_init(&r->start, NULL, r->nthreads + 1);
    if (rc)
        bench_die("pthread_barrier_init: %s", strerror(rc));
    for (unsigned i = 0; i < r->nthreads; i++) {
        bench_worker *w = &r->workers[i];
        w->id = i;
        w->run = r;
        rc = pthread_create(&w->thread, NULL, bench_worker_main, w);
        if (rc)
            bench_die("pthread_create (thread %u of %u): %s", i + 1, r->nthreads, strerror(rc));
    }
    rc = pthread_barrier_wait(&r->start);
    if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD)
        bench_die("pthread_barrier_wait: %s", strerror(rc));
    r->start_ns = bench_now_ns();

    /* Sleep in short steps: to raise the stop flag on time, to print
     * progress every second, and to notice that --iters workers are done.
     * Main is asleep nearly all the time, so it steals no measurable CPU. */
    const uint64_t step_ns = 10 * 1000 * 1000;
    uint64_t deadline = r->iters ? UINT64_MAX : r->start_ns + (uint64_t)(r->seconds * 1e9);
    uint64_t next_progress = r->start_ns + 1000000000u, last_ops = 0, last_ns = r->start_ns;
    int stopped = 0;
    while (atomic_load_explicit(&r->finished, memory_order_acquire) < r->nthreads) {
        uint64_t now = bench_now_ns();
        if (!stopped && now >= deadline) {
            atomic_store_explicit(&r->stop, 1, memory_order_relaxed);
            stopped = 1;
        }
        if (r->progress && now >= next_progress) {
            uint64_t ops = bench_ops_now(r);
            fprintf(stderr, "%s: %s t=%.1fs ops=%" PRIu64 " rate=%.2f Mops/s\n", bench_prog,
                    r->label ? r->label : "", (double)(now - r->start_ns) / 1e9, ops,
                    (double)(ops - last_ops) / ((double)(now - last_ns) / 1e9) / 1e6);
            last_ops = ops;
            last_ns = now;
            next_progress += 1000000000u;
        }
        uint64_t wake = now + step_ns;
        if (!stopped && deadline < wake)
            wake = deadline;
        if (wake > now)
            bench_sleep_ns(wake - now);
    }
    /* Every worker has stamped its end; workers of a --iters run may have
     * finished before the stop flag, so raise it anyway for any waiter. */
    atomic_store_explicit(&r->stop, 1, memory_order_relaxed);

    uint64_t end_ns = r->start_ns, ops = 0;
    for (unsigned i = 0; i < r->nthreads; i++) {
        bench_worker *w = &r->workers[i];
        rc = pthread_join(w->thread, NULL);
        if (rc)
            bench_die("pthread_join: %s", strerror(rc));
        if (w->end_ns > end_ns)
            end_ns = w->end_ns;
        ops += w->ops_local;
    }
    pthread_barrier_destroy(&r->start);
    out->ops = ops;
    out->elapsed_s = (double)(end_ns - r->start_ns) / 1e9;
    out->ops_per_sec = out->elapsed_s > 0 ? (double)ops / out->elapsed_s : 0.0;
}

static inline void bench_run_free(bench_run *r) {
    free(r->workers);
    r->workers = NULL;
}

/* Boehm's world-stopped time, from its collection events, for the
 * RESULT lines of binary_trees and gcbench: register bench_boehm_event
 * with GC_set_on_collection_event. Called with Boehm's lock held, by the
 * collecting thread; main reads the totals after the work. Only where
 * <gc/gc.h> was included first. */
#ifdef GC_API
static uint64_t bench_boehm_stop_ns;
static _Atomic uint64_t boehm_pause_total_ns, boehm_pause_max_ns;
static inline void GC_CALLBACK bench_boehm_event(GC_EventType e) {
    if (e == GC_EVENT_PRE_STOP_WORLD) {
        bench_boehm_stop_ns = bench_now_ns();
    } else if (e == GC_EVENT_POST_START_WORLD && bench_boehm_stop_ns) {
        uint64_t d = bench_now_ns() - bench_boehm_stop_ns;
        bench_boehm_stop_ns = 0;
        atomic_fetch_add_explicit(&boehm_pause_total_ns, d, memory_order_relaxed);
        if (d > atomic_load_explicit(&boehm_pause_max_ns, memory_order_relaxed))
            atomic_store_explicit(&boehm_pause_max_ns, d, memory_order_relaxed);
    }
}
#endif

/* rcgc's collections that found nothing (RCGC_GC_STOP with unreachable
 * 0), for the RESULT lines of binary_trees and gcbench: register
 * bench_count_empty with rcgc_gc_callback_add; counted on the collecting
 * thread, read by main after the work (relaxed: a counter). One counter
 * per program (a static in this header). */
#ifdef RCGC_H
static _Atomic uint64_t bench_empty_collections;
static inline void bench_count_empty(rcgc_gc_phase phase, const rcgc_gc_info *info, void *arg) {
    (void)arg;
    if (phase == RCGC_GC_STOP && info->unreachable == 0)
        atomic_fetch_add_explicit(&bench_empty_collections, 1, memory_order_relaxed);
}
#endif

#endif /* RCGC_BENCH_UTIL_H */
