/*
 * The usage sampler (as Python's memory_profiler / mprof): a thread that
 * writes a CSV file with one `sample` row of memory figures every interval
 * and one `gc` row per cycle collection, with its pause and what it found.
 * tools/rcgc-profile-plot turns the file into a PNG.
 *
 * Theory.
 *
 * The sampler thread never attaches. A stop-the-world pause waits only for
 * attached threads, so the sampler can never hold one up, whatever it does
 * (sleep, write to a slow disk, get descheduled). It only calls what is
 * safe from an unattached thread: the parts of rcgc_stats_get it needs,
 * which take the arena lock (a walk of the page descriptors), the registry
 * lock (rcgc__registry_lock handles callers with no thread state) and the
 * collector's statistics lock, one at a time and briefly, and read
 * atomics. A pause holds the registry lock from start to end, so a sample
 * taken during a pause waits for it to end: rows are spaced by the
 * interval, not exactly at it.
 *
 * Collections reach the sampler through a collection callback (gc.c calls
 * it on the collecting thread, with the world running, after the
 * collection). The callback must not wait for the sampler: it copies the
 * collection's info into a bounded ring (Vyukov's bounded MPMC queue: a
 * sequence number per slot, one CAS to claim a slot; here one consumer)
 * and returns. A full ring drops the row and counts it; the sampler is
 * woken when the ring is half full, so with 1024 slots only a sampler
 * starved for 512 collections loses any. Producers are serialised by the
 * collector's lock today; the ring does not rely on it.
 *
 * Stopping against a callback in flight. gc.c copies the callback list and
 * calls the copy, so a callback may run after rcgc_gc_callback_remove has
 * returned. The callback raises `inflight`, then reads `active`; stop
 * clears `active`, then waits for `inflight` to be zero, all seq_cst (the
 * store-load pattern of Dekker's algorithm): either stop sees the callback
 * in flight and waits for it to leave, or the callback sees `active` clear
 * and touches nothing. Only then is the ring drained and freed.
 *
 * Files. Rows are formatted in a buffer and written with write(2) at every
 * tick (one system call per interval), so a crash loses at most the rows of
 * the current tick; no stdio stream holds data that a forked child's exit()
 * could write a second time.
 *
 * fork(). A child has no sampler thread. The atfork handler marks the state
 * as the parent's: the child writes nothing into the file (its copy of the
 * descriptor stays open and unused, closed by exec: O_CLOEXEC) and records
 * no collection; rcgc_profile_stop in the child forgets the parent's
 * sampler without joining it, and the child may start its own. A fork while
 * another thread is inside rcgc_profile_start or _stop is not supported.
 *
 * Runtimes. rcgc_init's sampler appends to the file of the process's
 * previous rcgc_init when it names the same one, keeping its time origin;
 * rcgc_profile_start truncates.
 *
 * Cost when off: rcgc_init reads one string option. Nothing else, on any
 * path: no callback is registered and no thread runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "gc.h"
#include "os.h"
#include "profile.h"
#include "safepoint.h"
#include "thread.h"

/* The columns, in order (docs/PROFILING.md describes each). A sample row
 * fills 3-10, a gc row 10-20; the others are empty. */
static const char header[] =
    "time_s,kind,rss_bytes,heap_in_use_bytes,heap_committed_bytes,heap_reserved_bytes,"
    "live_objects,tracked_objects,threads,collections,gc_kind,gc_pause_ms,gc_duration_ms,"
    "gc_workers,gc_candidates,gc_unreachable,gc_collected,gc_uncollectable,gc_finalized,"
    "gc_resurrected\n";

#define RING_CAP 1024u              /* power of two */
#define INTERVAL_MAX_MS 3600000u    /* RCGC_PROFILE_INTERVAL's limit */

typedef struct {
    _Atomic uint64_t seq;   /* == position: free for that push; position + 1: full */
    uint64_t t_ns;          /* since the sampler started */
    rcgc_gc_info info;
} gc_slot;

static struct {
    /* Start and stop, one at a time (taken inside a blocking region). */
    pthread_mutex_t ctl_lock;
    _Atomic int running;    /* started and not yet stopped (ctl_lock writes) */
    _Atomic int forked;     /* this is a forked child of the sampler's process */
    pthread_t thread;       /* ctl_lock */

    /* Set by start before the thread and the callback can see them (the
     * thread's creation, the seq_cst store of `active`), then read-only
     * until stop has joined the thread and drained the callbacks. */
    int fd;
    uint64_t interval_ns;
    uint64_t t0_ns;         /* CLOCK_MONOTONIC at start: rows' times are relative to it */
    gc_slot *_Atomic ring;
    char path[PATH_MAX];

    /* The sampler's sleep. */
    pthread_mutex_t lock;
    pthread_cond_t wake;    /* CLOCK_MONOTONIC */
    int stop;               /* lock */

    /* The collection callback (see the theory above). */
    _Atomic int active;
    _Atomic unsigned inflight;
    _Atomic uint64_t head;  /* next position to push (CAS by producers) */
    _Atomic uint64_t tail;  /* next position to pop: the sampler writes, producers peek */
    _Atomic uint64_t dropped;

    /* The sampler's outcome: written by it, read after the join (or by
     * rcgc_profile_is_running, hence atomic). */
    _Atomic int write_err;
} P = {
    .ctl_lock = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .fd = -1,
};

/* ------------------------------------------------------------------------
 * Once per process: the condition variable's clock, the fork handler.
 * ------------------------------------------------------------------------ */

static void wake_init(void) { rcgc__os_cond_init_monotonic(&P.wake); }

/* The child of a fork: one thread, the forking one. The parent's locks
 * may have been held by threads that do not exist here. */
static void after_fork_child(void) {
    pthread_mutex_init(&P.ctl_lock, NULL);
    pthread_mutex_init(&P.lock, NULL);
    wake_init();
    atomic_store(&P.active, 0);
    atomic_store(&P.inflight, 0);
    if (atomic_load(&P.running))
        atomic_store(&P.forked, 1);
}

static void once_init(void) {
    wake_init();
    pthread_atfork(NULL, NULL, after_fork_child);
}

/* ------------------------------------------------------------------------
 * The collection callback and its ring
 * ------------------------------------------------------------------------ */

static void on_gc(rcgc_gc_phase phase, const rcgc_gc_info *info, void *arg) {
    (void)arg;
    if (phase != RCGC_GC_STOP)
        return;
    uint64_t t = rcgc__os_now_ns();
    atomic_fetch_add(&P.inflight, 1);               /* seq_cst: before reading `active` */
    if (atomic_load(&P.active)) {
        gc_slot *ring = atomic_load_explicit(&P.ring, memory_order_relaxed);
        uint64_t pos = atomic_load_explicit(&P.head, memory_order_relaxed);
        gc_slot *s;
        for (;;) {
            s = &ring[pos & (RING_CAP - 1)];
            /* Acquire: the sampler's reads of this slot's last row are done. */
            uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
            int64_t diff = (int64_t)(seq - pos);
            if (diff == 0) {
                if (atomic_compare_exchange_weak_explicit(&P.head, &pos, pos + 1,
                                                          memory_order_relaxed,
                                                          memory_order_relaxed))
                    break;
            } else if (diff < 0) {
                s = NULL;   /* full */
                break;
            } else {
                pos = atomic_load_explicit(&P.head, memory_order_relaxed);
            }
        }
        if (s) {
            s->t_ns = t > P.t0_ns ? t - P.t0_ns : 0;
            s->info = *info;
            /* Release: the row is written before the sampler sees it full. */
            atomic_store_explicit(&s->seq, pos + 1, memory_order_release);
            uint64_t tail = atomic_load_explicit(&P.tail, memory_order_relaxed);
            if (pos + 1 - tail >= RING_CAP / 2)
                pthread_cond_signal(&P.wake);   /* a hint: the sampler checks before sleeping */
        } else {
            atomic_fetch_add_explicit(&P.dropped, 1, memory_order_relaxed);
        }
    }
    atomic_fetch_sub_explicit(&P.inflight, 1, memory_order_release);
}

static uint64_t ring_fill(void) {
    return atomic_load_explicit(&P.head, memory_order_relaxed) -
           atomic_load_explicit(&P.tail, memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * Output: rows go to a buffer, written out with write(2) at every tick.
 * ------------------------------------------------------------------------ */

typedef struct {
    int err;                /* first write error; nothing more is written */
    size_t len;
    char buf[16384];
} outbuf;

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void out_flush(outbuf *o) {
    if (o->len && !o->err)
        o->err = write_all(P.fd, o->buf, o->len);
    o->len = 0;
}

__attribute__((format(printf, 2, 3)))
static void out_row(outbuf *o, const char *fmt, ...) {
    if (o->len > sizeof o->buf - 512)       /* a row is under 400 bytes */
        out_flush(o);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, sizeof o->buf - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n < sizeof o->buf - o->len ? (size_t)n : sizeof o->buf - o->len - 1;
}

static double secs(uint64_t ns) { return (double)ns / 1e9; }
static double msecs(uint64_t ns) { return (double)ns / 1e6; }

/* Every collection row waiting in the ring (the sampler only). */
static void drain_gc(outbuf *o) {
    uint64_t pos = atomic_load_explicit(&P.tail, memory_order_relaxed);
    for (;;) {
        gc_slot *s = &P.ring[pos & (RING_CAP - 1)];
        /* Acquire: pairs with the producer's release of this slot. */
        if (atomic_load_explicit(&s->seq, memory_order_acquire) != pos + 1)
            break;
        const rcgc_gc_info *g = &s->info;
        const char *kind = g->aborted ? (g->young ? "young_aborted" : "full_aborted")
                                      : (g->young ? "young" : "full");
        out_row(o, "%.6f,gc,,,,,,,,%llu,%s,%.3f,%.3f,%u,%zu,%zu,%zu,%zu,%zu,%zu\n", secs(s->t_ns),
                (unsigned long long)g->collection, kind, msecs(g->pause_ns),
                msecs(g->duration_ns), g->workers, g->candidates, g->unreachable, g->collected,
                g->uncollectable, g->finalized, g->resurrected);
        /* Release: our reads of the row are done before a producer reuses it. */
        atomic_store_explicit(&s->seq, pos + RING_CAP, memory_order_release);
        pos++;
        atomic_store_explicit(&P.tail, pos, memory_order_relaxed);
    }
}

/* Resident set size: the second field of /proc/self/statm (pages). Opened
 * at each sample: /proc/self names the process that opens it. */
static size_t rss_bytes(void) {
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    unsigned long size, resident;
    if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
        return 0;
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* One sample: the figures of rcgc_stats_get that a row holds, gathered
 * the same way, with the object counts in the same walk of the page
 * descriptors, and without what a row does not hold (the per-class table,
 * the pause percentiles, which sort up to 4096 samples per call). */
typedef struct {
    size_t bytes_in_use;    /* block bytes, frees in flight subtracted (as stats.c) */
    size_t objects;         /* blocks in use on object pages */
    size_t tracked;         /* of those, on pages of tracked objects (frozen included) */
    size_t remote_bytes;    /* bytes freed by other threads into pages (pushed) */
    size_t threads;
} sample;

/* Arena lock held. Like rcgc_stats_get's per-class figures, a block that
 * another thread freed counts until the page's owner collects the free;
 * for bytes the total is corrected below, as stats.c does (objects are
 * not: the in-flight counters are not kept per tag). */
static int sample_span(rcgc_page *pg, void *arg) {
    sample *s = arg;
    if (pg->kind == RCGC_PAGE_META || pg->block_size == 0)
        return 0;
    size_t used = __atomic_load_n(&pg->used, __ATOMIC_RELAXED);
    s->bytes_in_use += pg->kind == RCGC_PAGE_LARGE ? used * (size_t)pg->nslices * RCGC_SLICE_SIZE
                                                   : used * (size_t)pg->block_size;
    if (pg->tag != RCGC_TAG_RAW)
        s->objects += used;
    if (pg->tag == RCGC_TAG_GC)
        s->tracked += used;
    return 0;
}

static void sample_thread(rcgc_thread *t, void *arg) {
    sample *s = arg;
    size_t c[RCGC_RETIRED_NSTATS];
    rcgc__thread_heap_stats(t, c);
    s->remote_bytes += c[3];
    s->threads++;
}

static void sample_row(outbuf *o) {
    uint64_t t = rcgc__os_now_ns() - P.t0_ns;
    sample s;
    memset(&s, 0, sizeof s);
    /* Collected frees first: a batch collected after we read the pushers'
     * counters could otherwise be subtracted without having been added. */
    size_t coll_blocks, coll_bytes;
    rcgc__heap_collected_remote(&coll_blocks, &coll_bytes);
    size_t reserved, committed, arenas;
    rcgc__arena_stats(&reserved, &committed, &arenas);
    rcgc__arena_foreach_span(sample_span, &s);
    rcgc__thread_foreach(sample_thread, &s);
    size_t retired[RCGC_RETIRED_NSTATS];
    rcgc__thread_retired_stats(retired);
    s.remote_bytes += retired[3];
    size_t in_flight = s.remote_bytes > coll_bytes ? s.remote_bytes - coll_bytes : 0;
    s.bytes_in_use = s.bytes_in_use > in_flight ? s.bytes_in_use - in_flight : 0;
    size_t trigger_count;
    uint64_t collections;
    rcgc__gc_stats(&trigger_count, &collections);
    out_row(o, "%.6f,sample,%zu,%zu,%zu,%zu,%zu,%zu,%zu,%llu,,,,,,,,,,\n", secs(t), rss_bytes(),
            s.bytes_in_use, committed, reserved, s.objects, s.tracked, s.threads,
            (unsigned long long)collections);
}

/* ------------------------------------------------------------------------
 * The sampler thread
 * ------------------------------------------------------------------------ */

/* Sleep until `deadline` or a stop; empty the ring when it fills meanwhile.
 * Returns 1 if asked to stop. */
static int sleep_until(uint64_t deadline, outbuf *o) {
    pthread_mutex_lock(&P.lock);
    while (!P.stop && !o->err && rcgc__os_now_ns() < deadline) {
        if (ring_fill() >= RING_CAP / 2) {
            pthread_mutex_unlock(&P.lock);
            drain_gc(o);
            out_flush(o);
            pthread_mutex_lock(&P.lock);
            continue;
        }
        struct timespec ts = {(time_t)(deadline / 1000000000u), (long)(deadline % 1000000000u)};
        pthread_cond_timedwait(&P.wake, &P.lock, &ts);     /* spurious wake-ups loop */
    }
    int stop = P.stop;
    pthread_mutex_unlock(&P.lock);
    return stop;
}

static void *sampler_main(void *arg) {
    (void)arg;
    outbuf *o = malloc(sizeof *o);   /* libc: this thread has no rcgc heap */
    if (!o) {
        atomic_store(&P.write_err, ENOMEM);
        fprintf(stderr, "rcgc: profile: no memory for the sampler's buffer; \"%s\" stops here\n",
                P.path);
        return NULL;
    }
    o->err = 0;
    o->len = 0;
    /* The first row at once, the last after the stop: a file has at least
     * two sample rows, however soon the sampler is stopped. */
    uint64_t deadline = P.t0_ns;
    int stop = 0;
    for (;;) {
        drain_gc(o);
        sample_row(o);
        out_flush(o);
        if (o->err) {
            atomic_store(&P.write_err, o->err);
            fprintf(stderr, "rcgc: profile: writing \"%s\" failed: %s (errno %d); the usage "
                            "sampler stops\n", P.path, strerror(o->err), o->err);
            break;
        }
        if (stop)
            break;
        uint64_t now = rcgc__os_now_ns();
        deadline += P.interval_ns;
        if (deadline <= now)
            deadline = now + P.interval_ns;     /* a late tick: skip, do not catch up */
        stop = sleep_until(deadline, o);
    }
    free(o);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Start and stop
 * ------------------------------------------------------------------------ */

/* Start and stop block (file system calls, a join): an attached caller
 * does it in a blocking region, so that no pause waits for it. */
static int blocking_enter(void) {
    rcgc_thread *t = rcgc__tls_thread;
    if (!t || atomic_load_explicit(&t->state, memory_order_relaxed) != RCGC_ATTACHED ||
        rcgc__world_stopped_by_me())
        return 0;
    rcgc_blocking_begin();
    return 1;
}

static void blocking_leave(int entered) {
    if (entered)
        rcgc_blocking_end();
}

/* "%p" in the path becomes the process id, "%%" a percent sign. */
static int expand_path(const char *in, char *out, size_t cap) {
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        char tmp[24];
        const char *piece = tmp;
        if (p[0] == '%' && p[1] == 'p') {
            snprintf(tmp, sizeof tmp, "%ld", (long)getpid());
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            tmp[0] = '%', tmp[1] = '\0';
            p++;
        } else {
            tmp[0] = *p, tmp[1] = '\0';
        }
        size_t len = strlen(piece);
        if (n + len >= cap)
            return ENAMETOOLONG;
        memcpy(out + n, piece, len);
        n += len;
    }
    out[n] = '\0';
    return 0;
}

/* Wait for callbacks that saw `active` set to leave (ctl_lock). */
static void callbacks_quiesce(void) {
    atomic_store(&P.active, 0);                     /* seq_cst: before reading `inflight` */
    while (atomic_load(&P.inflight))
        sched_yield();
}

/* Forget the state (ctl_lock), the ring last: a child forked from here on
 * sees `running` clear and does not free it again. */
static void state_release(void) {
    gc_slot *ring = atomic_exchange(&P.ring, NULL);
    P.fd = -1;
    atomic_store(&P.running, 0);
    atomic_store(&P.forked, 0);
    free(ring);
}

/* The file that RCGC_PROFILE named at this process's last rcgc_init, and
 * its time origin (ctl_lock): a later rcgc_init that names it again
 * appends to it, on the same time axis, so that a program that shuts rcgc
 * down and initialises it again keeps one profile. */
static struct {
    pid_t pid;              /* 0: none (a fork's child has another pid) */
    uint64_t t0_ns;
    char path[PATH_MAX];
} last_init;

static int start_locked(const char *path, unsigned interval_ms, bool from_init) {
    if (atomic_load(&P.running)) {
        if (!atomic_load(&P.forked))
            return EBUSY;
        state_release();        /* the parent's sampler, in a forked child */
    }
    if (interval_ms == 0) {
        long opt = rcgc__option(RCGC_OPT_PROFILE_INTERVAL);
        interval_ms = opt > 0 ? (unsigned)opt : 100u;
    }
    char full[PATH_MAX];
    int err = expand_path(path, full, sizeof full);
    if (err)
        return err;
    bool append = from_init && last_init.pid == getpid() && strcmp(last_init.path, full) == 0;
    int fd = open(full, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0666);
    if (fd < 0)
        return errno;
    struct stat st;
    if (append && (fstat(fd, &st) != 0 || st.st_size == 0))
        append = false;     /* removed meanwhile: a new file */
    err = append ? 0 : write_all(fd, header, sizeof header - 1);
    gc_slot *ring = err ? NULL : calloc(RING_CAP, sizeof *ring);
    if (!err && !ring)
        err = ENOMEM;
    if (err) {
        close(fd);
        return err;
    }
    for (unsigned i = 0; i < RING_CAP; i++)
        atomic_init(&ring[i].seq, i);
    atomic_store(&P.head, 0);
    atomic_store(&P.tail, 0);
    atomic_store(&P.dropped, 0);
    atomic_store(&P.write_err, 0);
    memcpy(P.path, full, sizeof P.path);
    P.fd = fd;
    P.interval_ns = (uint64_t)interval_ms * 1000000u;
    P.t0_ns = append ? last_init.t0_ns : rcgc__os_now_ns();
    P.stop = 0;     /* no sampler thread: no lock needed */
    atomic_store(&P.ring, ring);

    /* The callback: EEXIST is ours, left registered by a forked parent. */
    err = rcgc_gc_callback_add(on_gc, NULL);
    if (err == EEXIST)
        err = 0;
    if (!err) {
        atomic_store(&P.active, 1);     /* seq_cst: publishes the fields above to on_gc */
        /* The sampler takes no signal meant for the program. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        err = rcgc__os_thread_create(&P.thread, NULL, sampler_main, NULL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (err) {
            rcgc_gc_callback_remove(on_gc, NULL);
            callbacks_quiesce();
        }
    }
    if (err) {
        close(fd);
        state_release();
        return err;
    }
    pthread_setname_np(P.thread, "rcgc-profile");
    atomic_store(&P.running, 1);
    if (from_init) {
        last_init.pid = getpid();
        last_init.t0_ns = P.t0_ns;
        memcpy(last_init.path, full, sizeof last_init.path);
    } else if (strcmp(last_init.path, full) == 0) {
        last_init.pid = 0;      /* truncated: the next rcgc_init starts it afresh */
    }
    return 0;
}

static int stop_locked(void) {
    if (!atomic_load(&P.running))
        return ENOENT;
    if (atomic_load(&P.forked)) {
        /* A forked child: the sampler thread is the parent's, and so is the
         * file (its descriptor here stays unused). The callback stays
         * registered, inactive: the parent's threads may have held the
         * callback lock at the fork. */
        state_release();
        return 0;
    }
    rcgc_gc_callback_remove(on_gc, NULL);
    callbacks_quiesce();
    pthread_mutex_lock(&P.lock);
    P.stop = 1;
    pthread_cond_signal(&P.wake);
    pthread_mutex_unlock(&P.lock);
    pthread_join(P.thread, NULL);     /* it drains the ring and writes the final row */
    int err = atomic_load(&P.write_err);
    if (close(P.fd) != 0 && !err)
        err = errno;
    uint64_t dropped = atomic_load(&P.dropped);
    if (dropped && !err)
        fprintf(stderr, "rcgc: profile: %llu collection row(s) of \"%s\" lost: the sampler fell "
                        "%u collections behind\n", (unsigned long long)dropped, P.path, RING_CAP);
    state_release();
    return err;
}

static int start(const char *path, unsigned interval_ms, bool from_init) {
    if (!path || !*path || interval_ms > INTERVAL_MAX_MS || !rcgc__runtime_initialized())
        return EINVAL;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, once_init);
    int entered = blocking_enter();
    pthread_mutex_lock(&P.ctl_lock);
    int err = start_locked(path, interval_ms, from_init);
    pthread_mutex_unlock(&P.ctl_lock);
    blocking_leave(entered);
    return err;
}

int rcgc_profile_start(const char *path, unsigned interval_ms) {
    return start(path, interval_ms, false);
}

int rcgc_profile_stop(void) {
    if (!atomic_load(&P.running))
        return ENOENT;
    if (atomic_load(&P.forked)) {
        /* A forked child: nothing to wait for (no blocking region either:
         * the child's runtime is a copy of the parent's at the fork). */
        pthread_mutex_lock(&P.ctl_lock);
        int err = stop_locked();
        pthread_mutex_unlock(&P.ctl_lock);
        return err;
    }
    int entered = blocking_enter();
    pthread_mutex_lock(&P.ctl_lock);
    int err = stop_locked();
    pthread_mutex_unlock(&P.ctl_lock);
    blocking_leave(entered);
    return err;
}

int rcgc_profile_is_running(void) {
    return atomic_load(&P.running) && !atomic_load(&P.forked) && !atomic_load(&P.write_err);
}

/* ------------------------------------------------------------------------
 * rcgc_init / rcgc_shutdown hooks
 * ------------------------------------------------------------------------ */

void rcgc__profile_init(void) {
    const char *path = rcgc__option_str(RCGC_SOPT_PROFILE);
    if (rcgc_likely(!path))
        return;
    int err = start(path, 0, true);
    if (err) {
        char full[PATH_MAX];
        if (expand_path(path, full, sizeof full))
            snprintf(full, sizeof full, "%s", path);
        fprintf(stderr, "rcgc: %s: cannot write \"%s\": %s (errno %d); usage sampling is off\n",
                rcgc__option_str_name(RCGC_SOPT_PROFILE), full, strerror(err), err);
    }
}

void rcgc__profile_shutdown(void) {
    if (rcgc_unlikely(atomic_load_explicit(&P.running, memory_order_relaxed)))
        rcgc_profile_stop();
}
