/*
 * heap_stress: torture test of the per-thread heaps (lib/heap.c, arena.c).
 *
 * NOT A BENCHMARK. The ops/s it prints only shows that it is making
 * progress; every operation carries verification work that a real program
 * would not do.
 *
 * Each worker thread attaches and runs a random schedule of:
 *   - allocate a block (mostly 1..512 bytes, some medium up to 32 KiB,
 *     rarely large 64 KiB..2 MiB; a few zero-sized and calloc'd), check
 *     alignment, rcgc_usable_size and rcgc_owns, and fill its whole usable
 *     size with a header (magic, size, origin) and a canary derived from
 *     (address, size, seed);
 *   - free one of its live blocks after verifying the canary;
 *   - hand a live block to another thread's mailbox; the receiver verifies
 *     it and frees it (a cross-thread free) or keeps it as its own;
 *   - detach and re-attach, keeping its live blocks across the detach (their
 *     pages are abandoned and may be adopted by other heaps meanwhile),
 *     verifying them while detached and freeing them after re-attaching;
 *   - exit: hand every live block to the mailboxes, detach and end; the main
 *     thread then starts a successor for the slot (thread churn);
 *   - free everything it holds (pages empty and go back to the arena).
 * Overlapping blocks, blocks written by the allocator while live (free-list
 * links in a live block...) and blocks moved by adoption all show up as
 * canary mismatches naming the block, its origin and the offset.
 *
 * The main thread stays attached (rcgc_init attaches it): it supervises
 * from blocking regions, reads rcgc_stats_get every second, and at the end
 * frees what is left in the mailboxes. Then rcgc_stats_get must report
 * nothing in use. Any violation makes the exit status 1.
 *
 * Determinism: each worker draws its schedule from its own RNG seeded by
 * (seed, slot, generation), so with --threads=1 the same seed gives the same
 * schedule (compare the "schedule hash" of two runs with --ops); with more
 * threads the interleaving varies. Under sanitizers the program shrinks its
 * live set and its largest blocks, and detaches and churns more often.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rcgc.h"
#include "stress/stress_util.h"

/* ------------------------------------------------------------------------
 * Tunables
 * ------------------------------------------------------------------------ */
#define SMALL_MAX   512u
#define MEDIUM_MAX  (32u << 10)
#define LARGE_MIN   (64u << 10)
#if STRESS_SANITIZER
#define LARGE_MAX         (256u << 10)
#define MAX_LIVE_DEFAULT  200ul
#define MAX_LIVE_CAP      1000ul     /* --max-live is clamped to this */
#define DETACH_PER_M      200u       /* rare events, per million operations */
#define EXIT_PER_M        50u
#define FREE_ALL_PER_M    100u
#else
#define LARGE_MAX         (2u << 20)
#define MAX_LIVE_DEFAULT  2000ul
#define MAX_LIVE_CAP      1000000ul
#define DETACH_PER_M      20u
#define EXIT_PER_M        2u
#define FREE_ALL_PER_M    10u
#endif

#define OPS_BATCH   64u    /* operations between checks of the stop flag */
#define RECV_BATCH  64u    /* blocks taken from a mailbox at once */
#define HDR_MAGIC   0x48535452u  /* "HSTR" */

/* ------------------------------------------------------------------------
 * Blocks
 * ------------------------------------------------------------------------ */

/* A live block as its holder records it (in its live set or a mailbox). */
typedef struct blk {
    unsigned char *p;
    uint32_t size;      /* bytes asked for */
    uint32_t usable;    /* rcgc_usable_size at allocation: must not change */
    uint32_t origin;    /* allocating thread: slot << 16 | generation */
} blk;

/* The first 16 bytes of a block of at least 16 bytes; smaller blocks hold
 * canary only (their size lives in the holder's record). */
typedef struct blk_header {
    uint32_t magic;     /* HDR_MAGIC */
    uint32_t size;
    uint32_t origin;
    uint32_t check;     /* low half of the canary key: ties it to the address */
} blk_header;

_Static_assert(sizeof(blk_header) == 16, "header must keep the canary 8-byte aligned");

static uint64_t g_seed;

static uint64_t canary_key(const void *p, uint32_t size) {
    return stress_mix64((uint64_t)(uintptr_t)p ^ ((uint64_t)size << 40) ^ g_seed);
}

/* The canary word at byte offset `off` (a multiple of 8). */
static inline uint64_t canary_word(uint64_t key, size_t off) {
    return key + (uint64_t)off * 0x9E3779B97F4A7C15ull;
}

static size_t canary_start(uint32_t size) { return size >= sizeof(blk_header) ? sizeof(blk_header) : 0; }

static void block_fill(const blk *b) {
    uint64_t key = canary_key(b->p, b->size);
    size_t off = canary_start(b->size);
    if (off) {
        blk_header h = { HDR_MAGIC, b->size, b->origin, (uint32_t)key };
        memcpy(b->p, &h, sizeof h);
    }
    for (; off + 8 <= b->usable; off += 8) {
        uint64_t w = canary_word(key, off);
        memcpy(b->p + off, &w, 8);
    }
    if (off < b->usable) {
        uint64_t w = canary_word(key, off);
        memcpy(b->p + off, &w, b->usable - off);
    }
}

static const char *origin_str(uint32_t origin, char buf[32]) {
    snprintf(buf, 32, "%u.%u", origin >> 16, origin & 0xFFFFu);
    return buf;
}

/* Report the first corrupted byte of b; `when` says what was being done. */
static void report_corruption(const blk *b, size_t off, unsigned want, unsigned got,
                              const char *what, const char *when, uint32_t checker) {
    char o1[32], o2[32];
    stress_violation("block %p (size %u, usable %u, allocated by thread %s) %s corrupted at "
                     "offset %zu: expected 0x%02x, found 0x%02x; found by thread %s %s",
                     (void *)b->p, b->size, b->usable, origin_str(b->origin, o1), what, off,
                     want, got, origin_str(checker, o2), when);
}

/* Verify b's header and canary (plain reads: safe while detached). */
static int block_verify(const blk *b, const char *when, uint32_t checker) {
    uint64_t key = canary_key(b->p, b->size);
    size_t off = canary_start(b->size);
    if (off) {
        blk_header want = { HDR_MAGIC, b->size, b->origin, (uint32_t)key }, got;
        memcpy(&got, b->p, sizeof got);
        if (memcmp(&want, &got, sizeof want) != 0) {
            const unsigned char *w = (const unsigned char *)&want, *g = (const unsigned char *)&got;
            size_t i = 0;
            while (w[i] == g[i])
                i++;
            report_corruption(b, i, w[i], g[i], "header", when, checker);
            return -1;
        }
    }
    for (; off < b->usable; off += 8) {
        uint64_t w = canary_word(key, off), g = 0;
        size_t n = b->usable - off < 8 ? b->usable - off : 8;
        memcpy(&g, b->p + off, n);
        if (n < 8)
            w &= ((uint64_t)1 << (8 * n)) - 1;
        if (w != g) {
            size_t i = 0;
            while (((w >> (8 * i)) & 0xFF) == ((g >> (8 * i)) & 0xFF))
                i++;
            report_corruption(b, off + i, (unsigned)(w >> (8 * i)) & 0xFF,
                              (unsigned)(g >> (8 * i)) & 0xFF, "canary", when, checker);
            return -1;
        }
    }
    return 0;
}

/* The checks that need rcgc (the caller is attached and holds b). */
static void block_check_rcgc(const blk *b, const char *when, uint32_t checker) {
    char o1[32], o2[32];
    if (!rcgc_owns(b->p))
        stress_violation("rcgc_owns(%p) == 0 for a live block (size %u, allocated by thread %s), "
                         "thread %s %s",
                         (void *)b->p, b->size, origin_str(b->origin, o1),
                         origin_str(checker, o2), when);
    size_t u = rcgc_usable_size(b->p);
    if (u != b->usable)
        stress_violation("rcgc_usable_size(%p) changed from %u to %zu (size %u, allocated by "
                         "thread %s), thread %s %s",
                         (void *)b->p, b->usable, u, b->size, origin_str(b->origin, o1),
                         origin_str(checker, o2), when);
}

/* ------------------------------------------------------------------------
 * Slots: one per worker thread position. A slot outlives its threads
 * (churn replaces the thread, not the slot), and so do its mailbox and
 * counters.
 * ------------------------------------------------------------------------ */

/* Counters: written only by the slot's current thread (STRESS_BUMP), read
 * by main for progress and, after join, for the summary. Successive
 * threads of a slot are ordered by join/create. */
typedef struct slot_counters {
    _Atomic uint64_t ops, live, allocs, callocs, larges, frees, sent, received, kept,
        mailbox_full, detaches, exits;
    _Atomic uint64_t sched_hash;    /* running hash of (op, size): the schedule */
} slot_counters;

typedef struct slot {
    stress_thread t;                /* first: stress_supervise */
    stress_mailbox mail;            /* blocks handed to this slot (blk items) */
    _Alignas(64) slot_counters c;   /* own cache line: the mailbox lock is shared */
} slot;

static slot *g_slots;
static unsigned g_nslots;
static unsigned long g_max_live = MAX_LIVE_DEFAULT;
static uint64_t g_ops_limit;        /* per slot; 0: run for --seconds */

#define BUMP STRESS_BUMP
#define LOAD STRESS_LOAD

/* ------------------------------------------------------------------------
 * Workers
 * ------------------------------------------------------------------------ */
typedef struct worker {
    slot *s;
    unsigned id;
    uint32_t origin;    /* id << 16 | generation */
    stress_rng rng;
    blk *live;          /* live set, at most g_max_live */
    size_t nlive;
} worker;

static void sched_note(worker *w, uint64_t op, uint64_t arg) {
    stress_sched_note(&w->s->c.sched_hash, op, arg);
}

/* Verify, check with rcgc, free; counts the free. */
static void free_checked(worker *w, const blk *b, const char *when) {
    block_verify(b, when, w->origin);
    block_check_rcgc(b, when, w->origin);
    rcgc_free(b->p);
    BUMP(w->s->c.frees, 1);
}

static uint32_t pick_size(worker *w) {
    uint64_t u = stress_rng_below(&w->rng, 4096);
    if (u < 4)
        return 0;                                                     /* unique block */
    if (u < 2048)
        return (uint32_t)stress_rng_range(&w->rng, 1, 64);            /* hot small classes */
    if (u < 3890)
        return (uint32_t)stress_rng_range(&w->rng, 1, SMALL_MAX);
    if (u < 4095)
        return (uint32_t)stress_rng_range(&w->rng, SMALL_MAX + 1, MEDIUM_MAX);
    BUMP(w->s->c.larges, 1);
    return (uint32_t)stress_rng_range(&w->rng, LARGE_MIN, LARGE_MAX);
}

static void op_alloc(worker *w) {
    uint32_t size = pick_size(w);
    int use_calloc = stress_rng_one_in(&w->rng, 16);
    sched_note(w, 1 + use_calloc, size);
    unsigned char *p;
    if (use_calloc) {
        p = (size & 1) ? rcgc_calloc(size, 1) : rcgc_calloc(1, size);
        BUMP(w->s->c.callocs, 1);
    } else {
        p = rcgc_malloc(size);
    }
    if (!p) {
        stress_violation("rcgc_%s(%u) returned NULL (errno %d) with %zu blocks live in thread %u",
                         use_calloc ? "calloc" : "malloc", size, errno, w->nlive, w->id);
        return;
    }
    BUMP(w->s->c.allocs, 1);
    if ((uintptr_t)p % 16 != 0)
        stress_violation("rcgc_malloc(%u) returned %p: not 16-byte aligned", size, (void *)p);
    if (!rcgc_owns(p))
        stress_violation("rcgc_owns(%p) == 0 for a fresh block of %u bytes", (void *)p, size);
    size_t usable = rcgc_usable_size(p);
    if (usable < size || usable > (size_t)UINT32_MAX) {
        stress_violation("rcgc_usable_size(%p) == %zu for a block of %u bytes", (void *)p, usable,
                         size);
        usable = size;
    }
    if (use_calloc) {
        for (uint32_t i = 0; i < size; i++) {
            if (p[i] != 0) {
                stress_violation("rcgc_calloc block %p of %u bytes: byte %u is 0x%02x, not 0",
                                 (void *)p, size, i, p[i]);
                break;
            }
        }
    }
    blk b = { p, size, (uint32_t)usable, w->origin };
    block_fill(&b);
    w->live[w->nlive++] = b;
}

static blk take_random(worker *w) {
    size_t i = stress_rng_below(&w->rng, w->nlive);
    blk b = w->live[i];
    w->live[i] = w->live[--w->nlive];
    return b;
}

static void op_free(worker *w) {
    blk b = take_random(w);
    sched_note(w, 3, b.size);
    free_checked(w, &b, "before freeing it");
}

static unsigned pick_target(worker *w, int others_only) {
    if (g_nslots == 1)
        return 0;
    if (!others_only)
        return (unsigned)stress_rng_below(&w->rng, g_nslots);
    unsigned t = (unsigned)stress_rng_below(&w->rng, g_nslots - 1);
    return t >= w->id ? t + 1 : t;
}

/* Hand b to slot `t`; if its mailbox is full, free b here. */
static void send(worker *w, const blk *b, unsigned t) {
    block_verify(b, "before sending it", w->origin);
    if (stress_mailbox_put(&g_slots[t].mail, b)) {
        BUMP(w->s->c.sent, 1);
    } else {
        BUMP(w->s->c.mailbox_full, 1);
        free_checked(w, b, "before freeing it (mailbox full)");
    }
}

static void op_send(worker *w) {
    blk b = take_random(w);
    unsigned t = pick_target(w, 1);
    sched_note(w, 4, t);
    send(w, &b, t);
}

/* Take blocks from our mailbox: verify each, then free it (a cross-thread
 * free when another thread allocated it) or, one in four, keep it. */
static void op_receive(worker *w) {
    blk got[RECV_BATCH];
    size_t n = stress_mailbox_take(&w->s->mail, got, RECV_BATCH);
    sched_note(w, 5, n);
    for (size_t i = 0; i < n; i++) {
        BUMP(w->s->c.received, 1);
        if (w->nlive < g_max_live && stress_rng_one_in(&w->rng, 4)) {
            block_verify(&got[i], "on receiving it", w->origin);
            block_check_rcgc(&got[i], "on receiving it", w->origin);
            w->live[w->nlive++] = got[i];
            BUMP(w->s->c.kept, 1);
        } else {
            free_checked(w, &got[i], "on receiving it");
        }
    }
}

static void free_all(worker *w, const char *when) {
    while (w->nlive > 0)
        free_checked(w, &w->live[--w->nlive], when);
}

/* `attached`: poll for safepoints between blocks (a long loop must not
 * hold up a pause); a detached thread must not. */
static void verify_all(worker *w, const char *when, int attached) {
    for (size_t i = 0; i < w->nlive; i++) {
        block_verify(&w->live[i], when, w->origin);
        if (attached)
            rcgc_safepoint();
    }
}

static void attach_or_die(worker *w) {
    stress_attach("hs-%u.%u", w->id, w->origin & 0xFFFFu);
}

/* Detach with live blocks: their pages are abandoned, other heaps may adopt
 * them and allocate their free blocks meanwhile; ours must stay intact. */
static void op_detach(worker *w) {
    sched_note(w, 6, w->nlive);
    BUMP(w->s->c.detaches, 1);
    verify_all(w, "before detaching", 1);
    rcgc_thread_detach();
    if (rcgc_is_attached() != 0)
        stress_violation("rcgc_is_attached() != 0 after rcgc_thread_detach (thread %u)", w->id);
    /* Give the others time to adopt our pages. */
    if (stress_rng_one_in(&w->rng, 2))
        stress_sleep_us((unsigned long)stress_rng_range(&w->rng, 10, 300));
    else
        sched_yield();
    verify_all(w, "while detached", 0);
    attach_or_die(w);
    free_all(w, "after re-attaching");
}

/* Leave for good: hand every live block to the mailboxes (our own slot's
 * goes to our successor), detach; main starts the successor. */
static void op_exit(worker *w) {
    sched_note(w, 7, w->nlive);
    BUMP(w->s->c.exits, 1);
    while (w->nlive > 0) {
        blk b = w->live[--w->nlive];
        send(w, &b, pick_target(w, 0));
    }
    rcgc_thread_detach();
}

/* Once per thread: misuse the API in the ways that must fail cleanly. */
static void api_checks(worker *w) {
    int rc = rcgc_thread_attach();
    if (rc != EBUSY)
        stress_violation("rcgc_thread_attach on an attached thread returned %d, not EBUSY", rc);
    errno = 0;
    void *p = rcgc_calloc(SIZE_MAX / 8 + 1, 16);
    if (p != NULL || errno != ENOMEM)
        stress_violation("rcgc_calloc overflow returned %p with errno %d, not NULL + ENOMEM", p,
                         errno);
    rcgc_free(NULL);
}

static void *worker_main(void *arg) {
    slot *s = arg;
    worker w = { .s = s, .id = (unsigned)(s - g_slots) };
    w.origin = (uint32_t)w.id << 16 | (s->t.generation & 0xFFFFu);
    stress_rng_seed(&w.rng, g_seed, (uint64_t)w.id << 32 | s->t.generation);
    w.live = calloc(g_max_live, sizeof *w.live);
    if (!w.live)
        stress_die("out of memory for the live set");

    attach_or_die(&w);
    api_checks(&w);

    /* Thresholds of the rare events out of 2^20 draws. */
    const uint64_t t_detach = (uint64_t)DETACH_PER_M * (1u << 20) / 1000000u;
    const uint64_t t_exit = t_detach + (uint64_t)EXIT_PER_M * (1u << 20) / 1000000u;
    const uint64_t t_freeall = t_exit + (uint64_t)FREE_ALL_PER_M * (1u << 20) / 1000000u;
    int exiting = 0;

    while (!exiting && !stress_stopping()) {
        if (g_ops_limit && LOAD(s->c.ops) >= g_ops_limit)
            break;
        unsigned k;
        for (k = 0; k < OPS_BATCH && !exiting; k++) {
            uint64_t r = stress_rng_below(&w.rng, 1u << 20);
            if (r < t_detach) {
                op_detach(&w);
            } else if (r < t_exit) {
                op_exit(&w);
                exiting = 1;
            } else if (r < t_freeall) {
                sched_note(&w, 8, w.nlive);
                free_all(&w, "before freeing it (free all)");
            } else {
                unsigned op = (unsigned)(r % 1000);
                if (op < 500)
                    w.nlive < g_max_live ? op_alloc(&w) : op_free(&w);
                else if (op < 850)
                    w.nlive > 0 ? op_free(&w) : op_alloc(&w);
                else if (op < 930)
                    w.nlive > 0 ? op_send(&w) : op_alloc(&w);
                else
                    op_receive(&w);
            }
        }
        atomic_store_explicit(&s->c.live, w.nlive, memory_order_relaxed);
        BUMP(s->c.ops, k);
    }

    if (!exiting) {
        /* Stop or op limit: free what we hold and what was sent to us;
         * main collects what arrives after. */
        free_all(&w, "before freeing it (end of run)");
        op_receive(&w);
        while (w.nlive > 0 || stress_mailbox_count(&s->mail) > 0) {
            free_all(&w, "before freeing it (end of run)");
            op_receive(&w);
        }
        rcgc_thread_detach();
    }
    atomic_store_explicit(&s->c.live, 0, memory_order_relaxed);
    free(w.live);
    stress_thread_end(&s->t, exiting);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Main thread
 * ------------------------------------------------------------------------ */
#define SUM(field) stress_sum(g_slots, sizeof *g_slots, g_nslots, offsetof(slot, c.field))

static void progress(uint64_t start, double dt) {
    static uint64_t last_ops;
    uint64_t ops = SUM(ops), ops_delta = ops - last_ops;
    last_ops = ops;
    rcgc_stats st;
    rcgc_stats_get(&st);
    uint64_t in_mail = 0;
    for (unsigned i = 0; i < g_nslots; i++)
        in_mail += stress_mailbox_count(&g_slots[i].mail);
    stress_progress(start, dt > 0 ? (double)ops_delta / dt : 0.0, (long long)SUM(live),
                    "blocks held (+%llu in mailboxes)  heap in use %8.2f MiB "
                    "(%zu blocks, %zu pages, %zu abandoned, %zu threads)  churn %llu",
                    (unsigned long long)in_mail, (double)st.bytes_in_use / (1024.0 * 1024.0),
                    st.blocks_in_use, st.pages, st.pages_abandoned, st.threads_attached,
                    (unsigned long long)SUM(exits));
}

/* After every worker ended: free what is left in the mailboxes (main is
 * attached; these frees land on abandoned pages). */
static uint64_t drain_mailboxes(void) {
    uint64_t n = 0;
    blk got[RECV_BATCH];
    for (unsigned i = 0; i < g_nslots; i++) {
        size_t k;
        while ((k = stress_mailbox_take(&g_slots[i].mail, got, RECV_BATCH)) > 0) {
            for (size_t j = 0; j < k; j++) {
                block_verify(&got[j], "before freeing it (main, end of run)", 0xFFFFu << 16);
                block_check_rcgc(&got[j], "before freeing it (main, end of run)", 0xFFFFu << 16);
                rcgc_free(got[j].p);
                n++;
            }
        }
    }
    return n;
}

#define CHECK_ZERO(st, field)                                                               \
    do {                                                                                    \
        if ((st).field != 0)                                                                \
            stress_violation("after every block was freed and every worker detached, "      \
                             "rcgc_stats_get reports " #field " == %zu, not 0",             \
                             (size_t)(st).field);                                           \
    } while (0)

int main(int argc, char **argv) {
    stress_options opt = { .threads = 4, .seconds = 5 };
    stress_extra_opt extra[] = {
        { "max-live", &g_max_live, 1, ~0ul, "live blocks per thread at most" },
    };
    stress_parse_options(argc, argv, &opt, extra, sizeof extra / sizeof extra[0]);
    g_seed = opt.seed;
    stress_seed = g_seed;
    g_nslots = opt.threads;
    g_ops_limit = opt.ops;
    if (g_max_live > MAX_LIVE_CAP) {
        printf("%s: --max-live capped at %lu in this build\n", stress_prog, MAX_LIVE_CAP);
        g_max_live = MAX_LIVE_CAP;
    }

    printf("%s: torture test, not a benchmark: threads %u, seconds %g, max-live %lu, "
           "seed %llu%s%s\n",
           stress_prog, opt.threads, opt.seconds, g_max_live, (unsigned long long)g_seed,
           opt.seed_given ? "" : " (pass --seed to repeat)",
           STRESS_SANITIZER ? ", sanitizer build: reduced work" : "");
    fflush(stdout);

    stress_init_runtime(NULL, "hs-main");

    g_slots = calloc(g_nslots, sizeof *g_slots);
    if (!g_slots)
        stress_die("out of memory");
    for (unsigned i = 0; i < g_nslots; i++) {
        stress_mailbox_init(&g_slots[i].mail, sizeof(blk), g_max_live * 2 + 256);
    }

    stress_run_spec run = {g_slots, sizeof *g_slots, g_nslots, worker_main, 2000, 0, NULL, progress};
    double elapsed = stress_run(&run, opt.seconds, NULL);

    uint64_t main_frees = drain_mailboxes();
    uint64_t allocs = SUM(allocs), frees = SUM(frees) + main_frees;

    rcgc_stats st;
    rcgc_stats_get(&st);
    uint64_t ops = SUM(ops);
    printf("%s: ran %.2fs: %llu ops (%.0f/s, not a benchmark), %llu allocs (%llu calloc, "
           "%llu large), %llu frees, %llu handed over (%llu kept by the receiver, %llu freed by "
           "main at the end), %llu mailbox full, %llu detaches, %llu thread exits\n",
           stress_prog, elapsed, (unsigned long long)ops, elapsed > 0 ? (double)ops / elapsed : 0,
           (unsigned long long)allocs, (unsigned long long)SUM(callocs),
           (unsigned long long)SUM(larges), (unsigned long long)frees,
           (unsigned long long)SUM(sent), (unsigned long long)SUM(kept),
           (unsigned long long)main_frees, (unsigned long long)SUM(mailbox_full),
           (unsigned long long)SUM(detaches), (unsigned long long)SUM(exits));
    printf("%s: final stats: blocks_in_use %zu, bytes_in_use %zu, large_in_use %zu, pages %zu "
           "(%zu abandoned), arenas %zu, reserved %.1f MiB, committed %.1f MiB, allocs_total %zu, "
           "frees_total %zu, remote_frees_total %zu, threads_attached %zu, pauses %llu, "
           "watchdog reports %llu\n",
           stress_prog, st.blocks_in_use, st.bytes_in_use, st.large_in_use, st.pages,
           st.pages_abandoned, st.arenas, (double)st.bytes_reserved / (1024.0 * 1024.0),
           (double)st.bytes_committed / (1024.0 * 1024.0), st.allocs_total, st.frees_total,
           st.remote_frees_total, st.threads_attached, (unsigned long long)st.pauses,
           (unsigned long long)st.watchdog_reports);
    stress_print_schedule(&opt, LOAD(g_slots[0].c.sched_hash));

    if (allocs != frees)
        stress_violation("harness bookkeeping: %llu allocs but %llu frees",
                         (unsigned long long)allocs, (unsigned long long)frees);
    CHECK_ZERO(st, blocks_in_use);
    CHECK_ZERO(st, bytes_in_use);
    CHECK_ZERO(st, large_in_use);
    for (size_t i = 0; i < st.nclasses && i < RCGC_STATS_NCLASSES; i++)
        if (st.by_class[i].blocks_in_use != 0)
            stress_violation("rcgc_stats_get: class %zu (%zu bytes) reports %zu blocks in use "
                             "after every block was freed",
                             i, st.by_class[i].block_size, st.by_class[i].blocks_in_use);
    if (st.threads_attached != 1)
        stress_violation("rcgc_stats_get reports %zu threads attached; only main is",
                         st.threads_attached);
    if (st.allocs_total != allocs || st.frees_total != frees)
        stress_violation("rcgc_stats_get reports allocs_total %zu and frees_total %zu; the "
                         "program made %llu allocations and %llu frees",
                         st.allocs_total, st.frees_total, (unsigned long long)allocs,
                         (unsigned long long)frees);

    rcgc_shutdown();
    for (unsigned i = 0; i < g_nslots; i++)
        stress_mailbox_destroy(&g_slots[i].mail);
    free(g_slots);
    return stress_finish();
}
