/*
 * Helpers shared by the torture programs in stress/: option parsing, a
 * seeded RNG, time, resident memory, progress lines and violation counting.
 *
 * Header-only (every function static): each stress program is a single
 * translation unit, so the state below (the violation counter, the program
 * name) is per program. Thread-safety: everything may be called from any
 * thread except stress_parse_options, which runs once in main.
 *
 * Torture programs are not benchmarks: their figures (ops/s) only show that
 * the program is making progress.
 */
#ifndef RCGC_STRESS_UTIL_H
#define RCGC_STRESS_UTIL_H

#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <rcgc.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Sanitizers: the programs shrink their work under them. The Bazel
 * sanitizer configs pass -DRCGC_SANITIZER=1; the compiler's own macros
 * catch builds made outside Bazel.
 * ------------------------------------------------------------------------ */
#if defined(RCGC_SANITIZER) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define STRESS_SANITIZER 1
#endif
#endif
#ifndef STRESS_SANITIZER
#define STRESS_SANITIZER 0
#endif

/* ------------------------------------------------------------------------
 * Program name and violations
 * ------------------------------------------------------------------------ */
static const char *stress_prog = "stress";
static _Atomic unsigned long stress_violations;

/* Violations printed in full; later ones are only counted. */
#define STRESS_MAX_REPORTS 25

/* Record a broken expectation (a bug in the code under test): counted
 * always, printed for the first STRESS_MAX_REPORTS. */
__attribute__((format(printf, 1, 2)))
static inline void stress_violation(const char *fmt, ...) {
    unsigned long n = atomic_fetch_add_explicit(&stress_violations, 1, memory_order_relaxed) + 1;
    if (n > STRESS_MAX_REPORTS) {
        if (n == STRESS_MAX_REPORTS + 1)
            fprintf(stderr, "%s: VIOLATION: further violations are counted, not printed\n",
                    stress_prog);
        return;
    }
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: VIOLATION: %s\n", stress_prog, buf);
}

static inline unsigned long stress_violation_count(void) {
    return atomic_load_explicit(&stress_violations, memory_order_relaxed);
}

/* A failure of the test harness itself (no memory for bookkeeping, a
 * thread that cannot start): not a finding about the code under test. */
__attribute__((noreturn, format(printf, 1, 2)))
static inline void stress_die(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: error: ", stress_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* ------------------------------------------------------------------------
 * Time
 * ------------------------------------------------------------------------ */
static inline uint64_t stress_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double stress_seconds_since(uint64_t start_ns) {
    return (double)(stress_now_ns() - start_ns) / 1e9;
}

static inline void stress_sleep_us(unsigned long us) {
    struct timespec ts = { (time_t)(us / 1000000u), (long)(us % 1000000u) * 1000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------------------
 * RNG: xorshift64* (Vigna, "An experimental exploration of Marsaglia's
 * xorshift generators, scrambled", 2016), seeded through splitmix64 so
 * that nearby seeds give unrelated streams. One per thread, never shared.
 * ------------------------------------------------------------------------ */
typedef struct stress_rng { uint64_t s; } stress_rng;

static inline uint64_t stress_mix64(uint64_t z) {   /* splitmix64 finaliser */
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Seed a stream from the run's seed and a stream number (thread slot,
 * generation...): same inputs, same stream. */
static inline void stress_rng_seed(stress_rng *r, uint64_t seed, uint64_t stream) {
    r->s = stress_mix64(seed ^ stress_mix64(stream + 0x632BE59BD9B4E019ull));
    if (r->s == 0)
        r->s = 0x2545F4914F6CDD1Dull;   /* xorshift's one forbidden state */
}

static inline uint64_t stress_rng_next(stress_rng *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n), n > 0 (the multiply-shift bias is negligible here). */
static inline uint64_t stress_rng_below(stress_rng *r, uint64_t n) {
    return (uint64_t)(((unsigned __int128)stress_rng_next(r) * n) >> 64);
}

/* Uniform in [lo, hi]. */
static inline uint64_t stress_rng_range(stress_rng *r, uint64_t lo, uint64_t hi) {
    return lo + stress_rng_below(r, hi - lo + 1);
}

/* True with probability 1/n. */
static inline int stress_rng_one_in(stress_rng *r, uint64_t n) {
    return stress_rng_below(r, n) == 0;
}

/* ------------------------------------------------------------------------
 * Resident memory from /proc/self/statm (second field, in pages).
 * ------------------------------------------------------------------------ */
static inline double stress_rss_mib(void) {
    /* open/read, not fopen: no malloc, so that it works when the address
     * space is exhausted (pressure_stress). */
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1.0;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1.0;
    buf[n] = '\0';
    unsigned long size = 0, resident = 0;
    if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
        return -1.0;
    long page = sysconf(_SC_PAGESIZE);
    return (double)resident * (double)(page > 0 ? page : 4096) / (1024.0 * 1024.0);
}

/* ------------------------------------------------------------------------
 * Progress: one line a second, with the same leading fields in every
 * program (soak.sh and readers of the logs rely on them): elapsed time,
 * RSS and, within it, the harness's own bookkeeping that grows with the
 * run by design (per-id records: see stress_chunk_get), the rcgc heap's
 * bytes in use and committed (rcgc_stats_get), operations per
 * second, collections so far (rcgc_stats_get) and live objects (the
 * program's own model: created minus destroyed, or blocks held), then the
 * program's own figures.
 * ------------------------------------------------------------------------ */
static _Atomic size_t stress_book_bytes;    /* bookkeeping chunks allocated so far */

static inline double stress_book_mib(void) {
    return (double)atomic_load_explicit(&stress_book_bytes, memory_order_relaxed) /
           (1024.0 * 1024.0);
}

__attribute__((format(printf, 4, 5)))
static inline void stress_progress(uint64_t start_ns, double ops_per_s, long long live,
                                   const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    rcgc_stats st;
    rcgc_stats_get(&st);
    printf("%s: %6.1fs  rss %7.1f MiB (harness %6.1f)  heap %6.1f in use / %6.1f committed  "
           "%9.0f ops/s  collections %6llu  live %8lld  %s\n",
           stress_prog, stress_seconds_since(start_ns), stress_rss_mib(), stress_book_mib(),
           (double)st.bytes_in_use / (1024.0 * 1024.0),
           (double)st.bytes_committed / (1024.0 * 1024.0), ops_per_s,
           (unsigned long long)st.gc_collections, live, buf);
    fflush(stdout);
}

/* ------------------------------------------------------------------------
 * Options. Every program takes --threads, --seconds and --seed; a program
 * adds its own through a table of stress_extra_opt. Accepted forms:
 * --name=value and --name value. --help prints the table and exits 0.
 * ------------------------------------------------------------------------ */
typedef struct stress_options {
    unsigned threads;       /* worker threads */
    double   seconds;       /* run time */
    uint64_t seed;          /* the run's seed (random unless given) */
    int      seed_given;    /* 1 if --seed was passed */
    uint64_t ops;           /* work per worker position, then stop (0: run for seconds) */
    const char *ops_unit;   /* what --ops counts, for --help (NULL: "operations") */
} stress_options;

typedef struct stress_extra_opt {
    const char *name;       /* without the leading dashes */
    unsigned long *value;   /* holds the default; overwritten if given */
    unsigned long min, max;
    const char *help;
} stress_extra_opt;

static inline int stress_parse_ulong(const char *s, unsigned long long *out) {
    char *end;
    errno = 0;
    if (*s == '-' || *s == '\0')
        return -1;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static inline int stress_parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v >= 0))
        return -1;
    *out = v;
    return 0;
}

static inline void stress_usage(FILE *f, const stress_options *o, const stress_extra_opt *extra,
                         size_t nextra) {
    fprintf(f, "usage: %s [options]\n", stress_prog);
    fprintf(f, "  %-14s worker threads (default %u)\n", "--threads=N", o->threads);
    fprintf(f, "  %-14s run time in seconds (default %g)\n", "--seconds=S", o->seconds);
    fprintf(f, "  %-14s seed; same seed, same single-thread schedule (default random)\n",
            "--seed=N");
    fprintf(f, "  %-14s %s per worker position, then stop; --seconds still bounds the run "
            "(default 0: run for --seconds)\n",
            "--ops=N", o->ops_unit ? o->ops_unit : "operations");
    for (size_t i = 0; i < nextra; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s=N", extra[i].name);
        fprintf(f, "  %-14s %s (default %lu)\n", flag, extra[i].help, *extra[i].value);
    }
}

/* Parse argv into *o (which holds the defaults) and the extra table.
 * Exits 2 on a malformed option, 0 after --help. */
static inline void stress_parse_options(int argc, char **argv, stress_options *o,
                                 const stress_extra_opt *extra, size_t nextra) {
    if (argc > 0 && argv[0]) {
        const char *slash = strrchr(argv[0], '/');
        stress_prog = slash ? slash + 1 : argv[0];
    }
    o->seed_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            stress_usage(stdout, o, extra, nextra);
            exit(0);
        }
        if (strncmp(arg, "--", 2) != 0) {
            stress_usage(stderr, o, extra, nextra);
            stress_die("unexpected argument '%s'", arg);
        }
        char name[64];
        const char *val;
        const char *eq = strchr(arg + 2, '=');
        size_t len = eq ? (size_t)(eq - (arg + 2)) : strlen(arg + 2);
        if (len >= sizeof name)
            stress_die("unknown option '%s'", arg);
        memcpy(name, arg + 2, len);
        name[len] = '\0';
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            stress_die("option --%s needs a value", name);
        }

        unsigned long long u;
        if (strcmp(name, "threads") == 0) {
            if (stress_parse_ulong(val, &u) || u < 1 || u > 1024)
                stress_die("--threads wants 1..1024, not '%s'", val);
            o->threads = (unsigned)u;
        } else if (strcmp(name, "seconds") == 0) {
            if (stress_parse_double(val, &o->seconds) || o->seconds > 86400)
                stress_die("--seconds wants a number of seconds, not '%s'", val);
        } else if (strcmp(name, "seed") == 0) {
            if (stress_parse_ulong(val, &u))
                stress_die("--seed wants an unsigned integer, not '%s'", val);
            o->seed = u;
            o->seed_given = 1;
        } else if (strcmp(name, "ops") == 0) {
            if (stress_parse_ulong(val, &u))
                stress_die("--ops wants an unsigned integer, not '%s'", val);
            o->ops = u;
        } else {
            size_t k;
            for (k = 0; k < nextra; k++)
                if (strcmp(name, extra[k].name) == 0)
                    break;
            if (k == nextra) {
                stress_usage(stderr, o, extra, nextra);
                stress_die("unknown option '--%s'", name);
            }
            if (stress_parse_ulong(val, &u) || u < extra[k].min || u > extra[k].max)
                stress_die("--%s wants %lu..%lu, not '%s'", name, extra[k].min, extra[k].max,
                           val);
            *extra[k].value = (unsigned long)u;
        }
    }
    if (!o->seed_given)
        o->seed = stress_mix64(stress_now_ns() ^ ((uint64_t)getpid() << 32)) & 0xFFFFFFFFFFFFull;
}

/* ------------------------------------------------------------------------
 * rcgc: fatal errors that name the seed, and waits that never hold up a
 * pause (main stays attached for the whole run, so each of its waits is a
 * blocking region).
 * ------------------------------------------------------------------------ */
static uint64_t stress_seed;    /* set by main from the options */

static inline void stress_fatal_handler(const char *message) {
    fprintf(stderr, "%s: rcgc fatal error (seed %llu): %s\n", stress_prog,
            (unsigned long long)stress_seed, message);
    /* Where: addresses for addr2line -e <binary> (no -rdynamic here, so
     * static functions show only as offsets). */
    void *frames[32];
    int n = backtrace(frames, 32);
    fprintf(stderr, "%s: backtrace (%d frames):\n", stress_prog, n);
    backtrace_symbols_fd(frames, n, 2);
    fflush(stderr);
    abort();
}

static inline void stress_join_blocking(pthread_t t) {
    rcgc_blocking_begin();
    pthread_join(t, NULL);
    rcgc_blocking_end();
}

/* ------------------------------------------------------------------------
 * Worker positions. A position outlives its threads: a worker that exits
 * on purpose (thread churn) marks it EXITED and main starts a successor
 * with the next generation; one that stops (time, --ops, a violation)
 * marks it DONE. `state` is written by the worker (release) and read by
 * main (acquire); the rest belongs to main.
 * ------------------------------------------------------------------------ */
enum { STRESS_RUNNING = 0, STRESS_EXITED, STRESS_DONE };

typedef struct stress_thread {
    pthread_t thread;
    unsigned generation;    /* successors started on this position so far */
    int joined;
    _Atomic int state;      /* STRESS_* */
} stress_thread;

static _Atomic int stress_stop;     /* main asks every worker to stop */

static inline int stress_stopping(void) {
    return atomic_load_explicit(&stress_stop, memory_order_relaxed);
}

static inline void stress_thread_start(stress_thread *t, void *(*fn)(void *), void *arg) {
    atomic_store_explicit(&t->state, STRESS_RUNNING, memory_order_relaxed);
    t->joined = 0;
    int rc = pthread_create(&t->thread, NULL, fn, arg);
    if (rc != 0)
        stress_die("pthread_create: %s", strerror(rc));
}

/* Main stays attached for the whole run: the join is a blocking region. */
static inline void stress_thread_join(stress_thread *t) {
    if (!t->joined) {
        stress_join_blocking(t->thread);
        t->joined = 1;
    }
}

/* The worker's last word: EXITED (wants a successor) or DONE. */
static inline void stress_thread_end(stress_thread *t, int exited) {
    atomic_store_explicit(&t->state, exited ? STRESS_EXITED : STRESS_DONE, memory_order_release);
}

/* Main: if the position's worker exited on purpose, join it and start its
 * successor (unless the run is stopping). Returns the position's state
 * after that. */
static inline int stress_thread_respawn(stress_thread *t, void *(*fn)(void *), void *arg) {
    int state = atomic_load_explicit(&t->state, memory_order_acquire);
    if (state == STRESS_EXITED && !stress_stopping()) {
        stress_thread_join(t);
        t->generation++;
        stress_thread_start(t, fn, arg);
        return STRESS_RUNNING;
    }
    return state;
}

/* Sum of one _Atomic uint64_t counter over an array of n structures of
 * `stride` bytes, at byte offset `off` in each. */
static inline uint64_t stress_sum(const void *base, size_t stride, unsigned n, size_t off) {
    uint64_t t = 0;
    for (unsigned i = 0; i < n; i++)
        t += atomic_load_explicit((const _Atomic uint64_t *)((const char *)base + i * stride + off),
                                  memory_order_relaxed);
    return t;
}

/* Counters written by one thread and read by main: relaxed load + store
 * (a plain move on x86), never a locked add. */
#define STRESS_BUMP(field, n) \
    atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + (n), \
                          memory_order_relaxed)
#define STRESS_LOAD(field) atomic_load_explicit(&(field), memory_order_relaxed)

/* ------------------------------------------------------------------------
 * Mailboxes: bounded FIFO rings of fixed-size items between threads, under
 * a mutex held for a few instructions (no rcgc call inside, so no pause
 * can catch a thread holding it and no blocking region is needed).
 * ------------------------------------------------------------------------ */
typedef struct stress_mailbox {
    pthread_mutex_t lock;
    unsigned char *ring;
    size_t item, cap, head, count;  /* item size in bytes; the rest under `lock` */
} stress_mailbox;

static inline void stress_mailbox_init(stress_mailbox *m, size_t item, size_t cap) {
    pthread_mutex_init(&m->lock, NULL);
    m->item = item;
    m->cap = cap;
    m->head = m->count = 0;
    m->ring = calloc(cap, item);
    if (!m->ring)
        stress_die("out of memory for a mailbox of %zu items", cap);
}

static inline void stress_mailbox_destroy(stress_mailbox *m) {
    pthread_mutex_destroy(&m->lock);
    free(m->ring);
    m->ring = NULL;
}

/* Copies *item in; 0 if the mailbox is full. */
static inline int stress_mailbox_put(stress_mailbox *m, const void *item) {
    int ok = 0;
    pthread_mutex_lock(&m->lock);
    if (m->count < m->cap) {
        memcpy(m->ring + ((m->head + m->count) % m->cap) * m->item, item, m->item);
        m->count++;
        ok = 1;
    }
    pthread_mutex_unlock(&m->lock);
    return ok;
}

/* Takes up to max items, oldest first, into out[]; returns how many. */
static inline size_t stress_mailbox_take(stress_mailbox *m, void *out, size_t max) {
    size_t n = 0;
    pthread_mutex_lock(&m->lock);
    while (n < max && m->count > 0) {
        memcpy((unsigned char *)out + n * m->item, m->ring + m->head * m->item, m->item);
        m->head = (m->head + 1) % m->cap;
        m->count--;
        n++;
    }
    pthread_mutex_unlock(&m->lock);
    return n;
}

static inline size_t stress_mailbox_count(stress_mailbox *m) {
    pthread_mutex_lock(&m->lock);
    size_t n = m->count;
    pthread_mutex_unlock(&m->lock);
    return n;
}

/* ------------------------------------------------------------------------
 * Schedule hashes: a running hash of the operations a worker draws (and
 * the arguments drawn with them). With --threads=1 and --ops the same seed
 * must give the same hash; run.sh checks it for every program.
 * ------------------------------------------------------------------------ */
static inline uint64_t stress_sched_mix(uint64_t h, uint64_t op, uint64_t arg) {
    return stress_mix64(h ^ (op << 56) ^ arg);
}

static inline void stress_sched_note(_Atomic uint64_t *h, uint64_t op, uint64_t arg) {
    atomic_store_explicit(h, stress_sched_mix(atomic_load_explicit(h, memory_order_relaxed), op, arg),
                          memory_order_relaxed);
}

/* Printed at the end of a single-thread run (the line run.sh compares). */
static inline void stress_print_schedule(const stress_options *o, uint64_t hash) {
    if (o->threads == 1)
        printf("%s: schedule hash %016llx (seed %llu, ops %llu: same seed and --ops, same hash)\n",
               stress_prog, (unsigned long long)hash, (unsigned long long)o->seed,
               (unsigned long long)o->ops);
}

/* ------------------------------------------------------------------------
 * Per-id records: one byte per object ever created, in chunks made on
 * demand (calloc, published with a CAS), so that a program can count each
 * object's deaths (and more) without bounding the run in advance.
 * ------------------------------------------------------------------------ */
#define STRESS_ID_CHUNK_BITS 20
#define STRESS_ID_CHUNK (1u << STRESS_ID_CHUNK_BITS)
#define STRESS_ID_MAX_CHUNKS 4096u

static _Atomic uint8_t *_Atomic stress_ids[STRESS_ID_MAX_CHUNKS];
static _Atomic uint64_t stress_next_id;

/* Chunk c of a table of chunk pointers, made (zeroed) if absent. Counted
 * in stress_book_bytes: the soak checks RSS net of it. */
static inline void *stress_chunk_get(void *_Atomic *tab, uint64_t c, size_t bytes) {
    void *chunk = atomic_load_explicit(&tab[c], memory_order_acquire);
    if (chunk)
        return chunk;
    void *fresh = calloc(1, bytes);
    if (!fresh)
        stress_die("out of memory for bookkeeping");
    void *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&tab[c], &expected, fresh, memory_order_acq_rel,
                                                memory_order_acquire)) {
        atomic_fetch_add_explicit(&stress_book_bytes, bytes, memory_order_relaxed);
        return fresh;
    }
    free(fresh);
    return expected;
}

/* The record of id (any id below stress_next_id). */
static inline _Atomic uint8_t *stress_id_cell(uint64_t id) {
    uint64_t c = id >> STRESS_ID_CHUNK_BITS;
    if (c >= STRESS_ID_MAX_CHUNKS)
        stress_die("more than %llu objects: raise STRESS_ID_MAX_CHUNKS",
                   (unsigned long long)STRESS_ID_MAX_CHUNKS << STRESS_ID_CHUNK_BITS);
    _Atomic uint8_t *chunk =
        stress_chunk_get((void *_Atomic *)&stress_ids[c], c, STRESS_ID_CHUNK);
    return &chunk[id & (STRESS_ID_CHUNK - 1)];
}

/* A fresh id, its record zero. */
static inline uint64_t stress_id_new(void) {
    uint64_t id = atomic_fetch_add_explicit(&stress_next_id, 1, memory_order_relaxed);
    (void)stress_id_cell(id);
    return id;
}

static inline void stress_ids_free(void) {
    for (unsigned i = 0; i < STRESS_ID_MAX_CHUNKS; i++) {
        free((void *)atomic_load_explicit(&stress_ids[i], memory_order_relaxed));
        atomic_store_explicit(&stress_ids[i], NULL, memory_order_relaxed);
    }
}

/* Every id below stress_next_id: (record & mask) must be 1 (one death).
 * Reports the first ten that are not, then the total; returns how many. */
static inline uint64_t stress_ids_check_deaths(uint8_t mask) {
    uint64_t n = atomic_load_explicit(&stress_next_id, memory_order_relaxed), bad = 0;
    for (uint64_t id = 0; id < n; id++) {
        uint8_t d = atomic_load_explicit(stress_id_cell(id), memory_order_relaxed) & mask;
        if (d != 1 && ++bad <= 10)
            stress_violation("id %llu died %u times by the end (1 expected)",
                             (unsigned long long)id, d);
    }
    if (bad > 10)
        stress_violation("%llu ids in all did not die exactly once", (unsigned long long)bad);
    return bad;
}

/* ------------------------------------------------------------------------
 * Objects: canaries derived from an id, poisoned by destroy, and the
 * checks every program makes on what it holds and on what dies.
 * ------------------------------------------------------------------------ */
#define STRESS_POISON 0xDEADDEADDEADDEADull

/* The canary of id (salt: one per program or type); never the poison. */
static inline uint64_t stress_canary(uint64_t id, uint64_t salt) {
    uint64_t c = stress_mix64(id ^ stress_seed ^ salt);
    return c == STRESS_POISON ? c ^ 1 : c;
}

/* A new object of type t (t->size 0: rcgc_new_var with `size` bytes),
 * checked: not NULL, 16-byte aligned, its first `size` bytes zero. NULL
 * (and a violation) if rcgc_new failed. */
static inline void *stress_new_zeroed(const rcgc_type *t, size_t size) {
    unsigned char *o = t->size ? rcgc_new(t) : rcgc_new_var(t, size);
    if (!o) {
        stress_violation("rcgc_new(%s) returned NULL (errno %d)", t->name, errno);
        return NULL;
    }
    if ((uintptr_t)o % 16 != 0)
        stress_violation("rcgc_new(%s) returned %p: not 16-byte aligned", t->name, (void *)o);
    for (size_t i = 0; i < size; i++)
        if (o[i]) {
            stress_violation("rcgc_new(%s) returned %p with byte %zu of the payload not zero",
                             t->name, (void *)o, i);
            break;
        }
    return o;
}

/* An object the caller holds a reference to: its canary matches its id
 * (and want_id, unless UINT64_MAX) and its destroy has not run (the id's
 * record, when `records`). Returns 1 if so; else reports what `when`
 * found. */
static inline int stress_check_alive(const void *o, uint64_t id, uint64_t canary, uint64_t salt,
                                     uint64_t want_id, int records, const char *when) {
    if (canary != stress_canary(id, salt) || (want_id != UINT64_MAX && id != want_id)) {
        stress_violation("object %p: canary 0x%016llx, id %llu (expected id %llu) (%s): %s",
                         o, (unsigned long long)canary, (unsigned long long)id,
                         (unsigned long long)want_id, when,
                         canary == STRESS_POISON ? "used after its destroy"
                                                 : "freed and reused, or corrupted");
        return 0;
    }
    if (records && (atomic_load_explicit(stress_id_cell(id), memory_order_relaxed) & 7)) {
        stress_violation("object %p (id %llu) referenced after its destroy ran (%s)", o,
                         (unsigned long long)id, when);
        return 0;
    }
    return 1;
}

/* In a type's destroy: the canary must be intact (the poison means a
 * second destroy); the id's death is recorded (`records`) and a second one
 * reported. Returns 1 if the object was intact: the caller then poisons
 * its canary. */
static inline int stress_on_destroy(const void *o, uint64_t id, uint64_t canary, uint64_t salt,
                                    int records) {
    if (canary != stress_canary(id, salt)) {
        stress_violation("object %p (id %llu): canary 0x%016llx when destroyed: %s", o,
                         (unsigned long long)id, (unsigned long long)canary,
                         canary == STRESS_POISON ? "destroyed twice" : "corrupted");
        return 0;
    }
    if (records && atomic_fetch_add_explicit(stress_id_cell(id), 1, memory_order_relaxed) & 7)
        stress_violation("id %llu (object %p) destroyed a second time", (unsigned long long)id,
                         o);
    return 1;
}

/* ------------------------------------------------------------------------
 * Raw blocks: a pattern of 8-byte words derived from a key, from byte
 * `from` to `size`: every word below `dense` bytes, then one a page (huge
 * blocks stay mostly untouched).
 * ------------------------------------------------------------------------ */
static inline size_t stress_pattern_step(size_t off, size_t dense) { return off < dense ? 8 : 4096; }
static inline uint64_t stress_pattern_word(uint64_t key, size_t off) {
    return key + off * 0x9E3779B97F4A7C15ull;
}

static inline void stress_pattern_fill(void *p, size_t from, size_t size, uint64_t key,
                                       size_t dense) {
    for (size_t off = from; off + 8 <= size; off += stress_pattern_step(off, dense)) {
        uint64_t v = stress_pattern_word(key, off);
        memcpy((char *)p + off, &v, 8);
    }
}

/* 1 if intact; else reports the first bad word. */
static inline int stress_pattern_check(const void *p, size_t from, size_t size, uint64_t key,
                                       size_t dense, const char *when) {
    for (size_t off = from; off + 8 <= size; off += stress_pattern_step(off, dense)) {
        uint64_t v;
        memcpy(&v, (const char *)p + off, 8);
        if (v != stress_pattern_word(key, off)) {
            stress_violation("raw block %p (%zu bytes): word at offset %zu corrupted (%s)", p,
                             size, off, when);
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------------
 * Threads: attach, and main's supervision loop
 * ------------------------------------------------------------------------ */
/* Attach the calling thread (or die: a harness failure) and name it. */
__attribute__((format(printf, 1, 2)))
static inline void stress_attach(const char *fmt, ...) {
    int rc = rcgc_thread_attach();
    if (rc != 0)
        stress_die("rcgc_thread_attach: %s", strerror(rc));
    if (!rcgc_is_attached())
        stress_violation("rcgc_is_attached() == 0 right after rcgc_thread_attach");
    char name[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    rcgc_thread_set_name(name);
}

/* One step of main's loop: sleep `us` in a blocking region, then restart
 * the positions whose worker exited. Positions are `stride` bytes apart
 * and each starts with its stress_thread (fn gets the position). Returns
 * how many are DONE. */
static inline unsigned stress_supervise(void *first, size_t stride, unsigned n,
                                        void *(*fn)(void *), unsigned long us) {
    rcgc_blocking_begin();
    stress_sleep_us(us);
    rcgc_blocking_end();
    unsigned done = 0;
    for (unsigned i = 0; i < n; i++) {
        stress_thread *t = (stress_thread *)((char *)first + i * stride);
        done += stress_thread_respawn(t, fn, t) == STRESS_DONE;
    }
    return done;
}

/* True once a second (on `now`): *last moves to now, *dt gets the
 * seconds since the previous time. */
static inline int stress_second_passed(uint64_t now, uint64_t *last, double *dt) {
    if (now - *last < 1000000000u)
        return 0;
    *dt = (double)(now - *last) / 1e9;
    *last = now;
    return 1;
}

/* rcgc_init (cfg NULL: defaults and RCGC_* variables), the fatal handler
 * that names the seed, and the main thread's name. */
static inline void stress_init_runtime(const rcgc_config *cfg, const char *main_name) {
    int rc = rcgc_init(cfg);
    if (rc != 0)
        stress_die("rcgc_init: %s", strerror(rc));
    rcgc_set_fatal_handler(stress_fatal_handler);
    rcgc_thread_set_name(main_name);
}

/* Main's run: start a worker on every position, then supervise them
 * (stress_supervise every step_us), collect every collect_ms (0: never),
 * call each_step (if any) at every step and progress once a second, until
 * the deadline, the first violation, or every position DONE; then stop
 * and join every worker. Returns the seconds it ran; *collects gets main's
 * collections. */
typedef struct stress_run_spec {
    void *positions;                /* each starts with its stress_thread */
    size_t stride;
    unsigned n;
    void *(*worker)(void *);        /* gets its position */
    unsigned long step_us, collect_ms;
    void (*each_step)(uint64_t now);
    void (*progress)(uint64_t start, double dt);
} stress_run_spec;

static inline double stress_run(const stress_run_spec *r, double seconds, uint64_t *collects) {
    uint64_t start = stress_now_ns(), last = start, n_collect = 0;
    uint64_t deadline = start + (uint64_t)(seconds * 1e9);
    uint64_t next_collect = start + r->collect_ms * 1000000u;
    for (unsigned i = 0; i < r->n; i++) {
        stress_thread *t = (stress_thread *)((char *)r->positions + i * r->stride);
        stress_thread_start(t, r->worker, t);
    }
    for (;;) {
        unsigned done = stress_supervise(r->positions, r->stride, r->n, r->worker, r->step_us);
        uint64_t now = stress_now_ns();
        double dt;
        if (r->collect_ms && now >= next_collect) {
            rcgc_collect();
            n_collect++;
            next_collect = now + r->collect_ms * 1000000u;
        }
        if (r->each_step)
            r->each_step(now);
        if (r->progress && stress_second_passed(now, &last, &dt))
            r->progress(start, dt);
        if (done == r->n || stress_violation_count() > 0 || now >= deadline)
            break;
    }
    atomic_store_explicit(&stress_stop, 1, memory_order_relaxed);
    for (unsigned i = 0; i < r->n; i++)
        stress_thread_join((stress_thread *)((char *)r->positions + i * r->stride));
    if (collects)
        *collects = n_collect;
    return stress_seconds_since(start);
}

/* Two child references, fixed before the object is shared and dropped by
 * clear: a part of several programs' payloads (traverse and clear below). */
typedef struct stress_pair {
    _Atomic uint32_t clears;        /* clear calls */
    void *child[2];
} stress_pair;

static inline int stress_pair_traverse(stress_pair *pr, rcgc_visit_fn visit, void *arg) {
    RCGC_VISIT(pr->child[0]);
    RCGC_VISIT(pr->child[1]);
    return 0;
}

static inline void stress_pair_clear(stress_pair *pr) {
    atomic_fetch_add_explicit(&pr->clears, 1, memory_order_relaxed);
    for (int i = 0; i < 2; i++) {
        void *c = pr->child[i];
        pr->child[i] = NULL;
        rcgc_xdecref(c);
    }
}

/* After every object died: rcgc_stats_get's blocks in use back to st0's,
 * besides SHARED_READ frees waiting for a grace period, the qsbr batches
 * that list them (a block at most per pending object) and `slack` more
 * (merge-queue chunks, weak-reference buckets); only main attached. */
static inline void stress_check_heap_back(const rcgc_stats *st0, size_t slack) {
    rcgc_stats st;
    rcgc_stats_get(&st);
    size_t pending = st.objects_shared_read_pending;
    if (st.blocks_in_use < st0->blocks_in_use + pending ||
        st.blocks_in_use - st0->blocks_in_use - pending > pending + slack)
        stress_violation("after every object died, rcgc_stats_get reports blocks_in_use %zu "
                         "(%zu before the run) with %zu shared-read frees pending (at most %zu "
                         "more expected)",
                         st.blocks_in_use, st0->blocks_in_use, pending, pending + slack);
    if (st.threads_attached != 1)
        stress_violation("rcgc_stats_get reports %zu threads attached; only main is",
                         st.threads_attached);
}

/* ------------------------------------------------------------------------
 * The end of a run
 * ------------------------------------------------------------------------ */
/* The last line: PASS or FAIL with the count and the seed; the exit
 * status (0 or 1). */
static inline int stress_finish(void) {
    unsigned long v = stress_violation_count();
    printf("%s: %s: %lu violation%s (seed %llu)\n", stress_prog, v ? "FAIL" : "PASS", v,
           v == 1 ? "" : "s", (unsigned long long)stress_seed);
    fflush(stdout);
    return v ? 1 : 0;
}

/* rcgc_shutdown, then rcgc_init and rcgc_shutdown again: after a shutdown
 * a new runtime must start empty. */
static inline void stress_shutdown_checked(void) {
    rcgc_shutdown();
    int rc = rcgc_init(NULL);
    if (rc != 0)
        stress_die("rcgc_init after rcgc_shutdown: %s", strerror(rc));
    rcgc_stats st;
    rcgc_stats_get(&st);
    if (st.blocks_in_use != 0 || st.bytes_in_use != 0)
        stress_violation("after rcgc_shutdown and rcgc_init, rcgc_stats_get reports "
                         "blocks_in_use %zu, bytes_in_use %zu",
                         st.blocks_in_use, st.bytes_in_use);
    rcgc_shutdown();
}

#endif /* RCGC_STRESS_UTIL_H */
