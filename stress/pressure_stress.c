/*
 * pressure_stress: torture test of the runtime under memory pressure:
 * allocations that fail (NULL + ENOMEM) while other threads keep working,
 * collections that cannot get memory (they must give up and change
 * nothing), then recovery once memory is freed, cycle after cycle
 * (lib/os.c, arena.c, heap.c, gc.c's out-of-memory paths).
 *
 * NOT A BENCHMARK.
 *
 * How pressure is made (--mode):
 *   1 rlimit  setrlimit(RLIMIT_AS) to the address space in use plus
 *             --headroom-mib, so that rcgc's reservations (64 MiB arenas,
 *             huge blocks) really fail. The default in plain builds.
 *   2 inject  ASan and TSan reserve terabytes of shadow memory and map
 *             their own metadata as the program runs: under an address
 *             space limit they die in their own allocators, not in rcgc.
 *             Sanitizer builds therefore use rcgc's fault injection
 *             (rcgc__os_fail_nth, the hook behind RCGC_FAULT_OS_NTH): while
 *             workers fill, main keeps arming it so that one of the next
 *             1-4 OS calls (reservations, purges, releases) fails, and the
 *             workers try a huge block (over 64 MiB: a reservation of its
 *             own) every few hundred operations; a fill ends at a byte
 *             budget (--budget-mib) instead of at exhaustion. The default
 *             in sanitizer builds, and available in plain builds too.
 * The program prints which mode it runs.
 *
 * Cycles. All threads are created and attached before the limit is set
 * (thread stacks need address space). A cycle has two phases:
 *   FILL   workers allocate objects (chains: each object holds the chain's
 *          previous head, and sometimes a cross link into another chain,
 *          making cycles only the collector frees; some are rcgc_new_var
 *          objects of 1-200 KB with a tail canary) and raw blocks (16 B to
 *          1 MiB, now and then a huge one over 64 MiB), every payload
 *          filled with a canary pattern. A NULL must come with ENOMEM; then
 *          the worker, still under pressure, runs a collection (which may
 *          give up: the collection callback checks that `aborted` is 0 or
 *          ENOMEM), tries a weak reference (NULL + ENOMEM allowed), and
 *          walks one of its chains checking every canary; then it waits.
 *          The phase ends when every worker is out of memory (rlimit) or
 *          at its budget (inject), or after --fill-ms.
 *   DRAIN  workers walk every chain and raw list, checking every canary
 *          and counting what they find against what they made, drop it
 *          all (dropping a chain's head frees it through the trashcan),
 *          call rcgc_heap_collect; main collects (the cross links), then
 *          checks that every object made in the cycle was destroyed
 *          exactly once (destroy poisons the canary: a second destroy
 *          finds it), raw blocks allocated == freed, and rcgc_stats_get's
 *          blocks in use back to where they were before the first cycle.
 * Recovery: the first allocation of every FILL must succeed, and in
 * rlimit mode every cycle must reach at least --recover-pct percent of the
 * bytes the first cycle reached (memory freed must be usable again).
 * Any violation makes the exit status 1.
 *
 * Schedule: two draws per operation, so with --threads=1 the same seed
 * gives the same schedule of operations and sizes (--ops=N: cycles; where
 * memory runs out depends on the address space, not on the seed).
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
#include <sys/resource.h>

#include "lib/os.h"         /* rcgc__os_fail_nth: fault injection (inject mode) */
#include "rcgc.h"
#include "stress/stress_util.h"

/* ------------------------------------------------------------------------
 * Tunables
 * ------------------------------------------------------------------------ */
#define NCHAIN      16u         /* object chains per worker */
#define OPS_BATCH   16u
#define HUGE_SIZE   ((64u << 20) + 4096u)   /* over an arena: a reservation of its own */
#define EXTRA_BLOCKS_SLACK 64u
#define SALT 0x9E55ull            /* canaries: stress_canary(id, SALT) */

enum { MODE_AUTO = 0, MODE_RLIMIT = 1, MODE_INJECT = 2 };
enum { PH_FILL = 0, PH_DRAIN = 1 };

#define BUMP STRESS_BUMP
#define LOAD STRESS_LOAD
#define INC(v) atomic_fetch_add_explicit(&(v), 1, memory_order_relaxed)

/* ------------------------------------------------------------------------
 * Objects and raw blocks
 * ------------------------------------------------------------------------ */
typedef struct pnode {
    uint64_t canary;            /* stress_canary(id) while alive, STRESS_POISON after destroy */
    uint64_t id;
    uint64_t extra;             /* var objects: payload bytes after the pnode, ending in a canary */
    struct pnode *next;         /* the chain's previous head (set before publication) */
    struct pnode *cross;        /* a node of another chain, or NULL */
    _Atomic uint32_t clears;
} pnode;

static uint64_t g_seed;
static int g_mode;
static _Atomic uint64_t g_created, g_destroyed, g_raw_made, g_raw_freed, g_enomem, g_bad_errno,
    g_gc_aborted, g_gc_done, g_weak_fail, g_weak_ok, g_huge_ok, g_huge_fail;

static uint64_t *tail_of(const pnode *n) {
    return (uint64_t *)((char *)(n + 1) + n->extra - sizeof(uint64_t));
}

static int pnode_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    pnode *n = self;
    RCGC_VISIT(n->next);
    RCGC_VISIT(n->cross);
    return 0;
}

static void pnode_clear(void *self) {
    pnode *n = self;
    atomic_fetch_add_explicit(&n->clears, 1, memory_order_relaxed);
    pnode *a = n->next, *b = n->cross;
    n->next = n->cross = NULL;
    rcgc_xdecref(a);
    rcgc_xdecref(b);
}

static void pnode_destroy(void *self) {
    pnode *n = self;
    if (!stress_on_destroy(self, n->id, n->canary, SALT, 0))
        return;
    if (n->extra && *tail_of(n) != ~stress_canary(n->id, SALT))
        stress_violation("object %p (id %llu): tail of %llu extra bytes corrupted", self,
                         (unsigned long long)n->id, (unsigned long long)n->extra);
    n->canary = STRESS_POISON;
    INC(g_destroyed);
}

static const rcgc_type node_type = {
    .name = "ps_node", .size = sizeof(pnode), .traverse = pnode_traverse,
    .clear = pnode_clear, .destroy = pnode_destroy,
};
static const rcgc_type var_type = {
    .name = "ps_var", .size = 0, .traverse = pnode_traverse,
    .clear = pnode_clear, .destroy = pnode_destroy,
};

static int check_node(const pnode *n, const char *when) {
    if (!stress_check_alive(n, n->id, n->canary, SALT, UINT64_MAX, 0, when))
        return 0;
    if (n->extra && *tail_of(n) != ~stress_canary(n->id, SALT)) {
        stress_violation("object %p (id %llu): tail corrupted (%s)", (const void *)n,
                         (unsigned long long)n->id, when);
        return 0;
    }
    if (atomic_load_explicit(&n->clears, memory_order_relaxed)) {
        stress_violation("object %p (id %llu) cleared while referenced (%s)", (const void *)n,
                         (unsigned long long)n->id, when);
        return 0;
    }
    return 1;
}

/* Raw blocks: a list through their first word; then the size and
 * stress_util.h's pattern (dense over the first 4 KiB, then a word a page:
 * huge blocks stay mostly untouched). */
typedef struct raw_hdr {
    struct raw_hdr *next;
    uint64_t size;
    uint64_t key;
} raw_hdr;

static void raw_fill(raw_hdr *h) { stress_pattern_fill(h, sizeof *h, h->size, h->key, 4096); }

static int raw_check(const raw_hdr *h, const char *when) {
    return stress_pattern_check(h, sizeof *h, h->size, h->key, 4096, when);
}

/* ------------------------------------------------------------------------
 * Collection callback: a collection under pressure may give up, with
 * ENOMEM and nothing changed.
 * ------------------------------------------------------------------------ */
static void gc_cb(rcgc_gc_phase phase, const rcgc_gc_info *info, void *arg) {
    (void)arg;
    if (phase != RCGC_GC_STOP)
        return;
    if (info->aborted) {
        INC(g_gc_aborted);
        if (info->aborted != ENOMEM)
            stress_violation("collection #%llu aborted with %d, not ENOMEM",
                             (unsigned long long)info->collection, info->aborted);
        if (info->unreachable || info->collected || info->finalized)
            stress_violation("collection #%llu aborted but reports %zu unreachable, %zu "
                             "collected, %zu finalized",
                             (unsigned long long)info->collection, info->unreachable,
                             info->collected, info->finalized);
    } else {
        INC(g_gc_done);
    }
}

/* ------------------------------------------------------------------------
 * Workers
 * ------------------------------------------------------------------------ */
typedef struct counters {
    _Atomic uint64_t ops, objs, raws, bytes, nulls, walks, sched_hash;
    _Atomic uint64_t phase_done;    /* last phase number this worker finished */
    _Atomic int exhausted;          /* out of memory (or at budget) in this FILL */
} counters;

typedef struct pos {
    stress_thread t;
    _Alignas(64) counters c;
} pos;

static pos *g_pos;
static unsigned g_npos;
static _Atomic uint64_t g_phase;    /* even: FILL of cycle phase/2; odd: DRAIN; MAX: end */
static _Atomic int g_go;            /* main has set the limit: start */
static uint64_t g_budget;           /* inject mode: bytes per worker per fill */

typedef struct worker {
    pos *p;
    unsigned id;
    stress_rng rng, sub;
    pnode *chain[NCHAIN];
    raw_hdr *raw;
    uint64_t made_objs, made_raw, bytes;    /* this cycle */
} worker;

/* NULL from an allocation: ENOMEM expected. */
static void got_null(worker *w, const char *what, size_t size) {
    INC(g_enomem);
    BUMP(w->p->c.nulls, 1);
    if (errno != ENOMEM) {
        INC(g_bad_errno);
        stress_violation("%s(%zu) returned NULL with errno %d, not ENOMEM", what, size, errno);
    }
}

static size_t walk_chain(pnode *n, const char *when) {
    size_t k = 0;
    for (; n; n = n->next) {
        if (!check_node(n, when))
            break;
        if (n->cross && !check_node(n->cross, when))
            break;
        k++;
        if ((k & 1023) == 0)
            rcgc_safepoint();
    }
    return k;
}

/* One allocation; returns 0 on NULL (pressure). */
static int op_alloc(worker *w, int first) {
    unsigned kind = (unsigned)stress_rng_below(&w->sub, 100);
    unsigned c = (unsigned)stress_rng_below(&w->sub, NCHAIN);
    unsigned c2 = (unsigned)stress_rng_below(&w->sub, NCHAIN);
    int cross = stress_rng_one_in(&w->sub, 16);
    size_t extra = (1024 + (size_t)stress_rng_below(&w->sub, 200u << 10)) & ~(size_t)7;
    size_t rsize = stress_rng_one_in(&w->sub, 8) ? 4096 + (size_t)stress_rng_below(&w->sub, 1u << 20)
                                                 : 32 + (size_t)stress_rng_below(&w->sub, 2000);
    int huge = stress_rng_one_in(&w->sub, g_mode == MODE_INJECT ? 40 : 3000);
    if (first)
        kind = 0, huge = 0;     /* recovery check: a small object */
    if (kind < 70 || (kind < 75 && !huge)) {
        int var = kind >= 60 && !first;
        pnode *n = var ? rcgc_new_var(&var_type, sizeof(pnode) + extra) : rcgc_new(&node_type);
        if (!n) {
            got_null(w, var ? "rcgc_new_var" : "rcgc_new", var ? sizeof(pnode) + extra : 0);
            if (first)
                stress_violation("the first allocation of a fill failed: memory freed by the "
                                 "last drain is not usable again");
            return 0;
        }
        n->id = atomic_fetch_add_explicit(&g_created, 1, memory_order_relaxed);
        n->canary = stress_canary(n->id, SALT);
        n->extra = var ? extra : 0;
        if (var)
            *tail_of(n) = ~stress_canary(n->id, SALT);
        n->next = w->chain[c];      /* takes the chain's reference */
        if (cross && w->chain[c2] && c2 != c) {
            rcgc_incref(w->chain[c2]);
            n->cross = w->chain[c2];
        }
        w->chain[c] = n;
        w->made_objs++;
        w->bytes += sizeof(pnode) + (var ? extra : 0);
        BUMP(w->p->c.objs, 1);
    } else {
        size_t size = huge ? HUGE_SIZE : rsize;
        raw_hdr *h = rcgc_malloc(size);
        if (!h) {
            got_null(w, "rcgc_malloc", size);
            if (huge)
                INC(g_huge_fail);
            return 0;
        }
        if (huge)
            INC(g_huge_ok);
        h->size = huge ? 4096 : size;   /* huge: pattern over the first page only */
        h->key = stress_mix64((uintptr_t)h ^ g_seed);
        raw_fill(h);
        h->next = w->raw;
        w->raw = h;
        INC(g_raw_made);
        w->made_raw++;
        w->bytes += huge ? 4096 : size;   /* huge: counts what it touches */
        BUMP(w->p->c.raws, 1);
    }
    return 1;
}

/* Out of memory: do what a program would while it lasts. */
static void under_pressure(worker *w) {
    unsigned c = (unsigned)stress_rng_below(&w->sub, NCHAIN);
    if (stress_rng_one_in(&w->sub, 2))
        rcgc_collect();
    else
        rcgc_collect_young();
    pnode *n = w->chain[c];
    if (n) {
        rcgc_weakref *wr = rcgc_weakref_new(n, NULL, NULL);
        if (wr) {
            INC(g_weak_ok);
            void *g = rcgc_weakref_get(wr);
            if (g != n)
                stress_violation("rcgc_weakref_get of a held object returned %p, not %p", g,
                                 (void *)n);
            if (g)
                rcgc_decref(g);
            rcgc_weakref_free(wr);
        } else {
            INC(g_weak_fail);
            if (errno != ENOMEM)
                stress_violation("rcgc_weakref_new failed with errno %d, not ENOMEM", errno);
        }
    }
    walk_chain(w->chain[c], "walked under memory pressure");
    BUMP(w->p->c.walks, 1);
}

static void drain(worker *w, uint64_t *objs_seen) {
    uint64_t seen = 0, raws = 0;
    for (unsigned c = 0; c < NCHAIN; c++) {
        seen += walk_chain(w->chain[c], "walked before the drain");
        pnode *n = w->chain[c];
        w->chain[c] = NULL;
        rcgc_xdecref(n);    /* the whole chain, through the trashcan (cross links: cycles) */
        rcgc_safepoint();
    }
    while (w->raw) {
        raw_hdr *h = w->raw;
        w->raw = h->next;
        if (raw_check(h, "before freeing it in the drain")) {
            rcgc_free(h);
            INC(g_raw_freed);
        }
        raws++;
        if ((raws & 255) == 0)
            rcgc_safepoint();
    }
    rcgc_heap_collect();
    if (seen != w->made_objs)
        stress_violation("worker %u made %llu objects this cycle but its chains hold %llu",
                         w->id, (unsigned long long)w->made_objs, (unsigned long long)seen);
    if (raws != w->made_raw)
        stress_violation("worker %u made %llu raw blocks this cycle but its list holds %llu",
                         w->id, (unsigned long long)w->made_raw, (unsigned long long)raws);
    *objs_seen = seen;
    w->made_objs = w->made_raw = w->bytes = 0;
    atomic_store_explicit(&w->p->c.bytes, 0, memory_order_relaxed);
}

/* Wait (offline) for main to move the phase past `phase`. */
static int wait_phase(uint64_t phase) {
    while (atomic_load_explicit(&g_phase, memory_order_acquire) == phase) {
        if (stress_stopping())
            return 0;
        rcgc_blocking_begin();
        stress_sleep_us(200);
        rcgc_blocking_end();
    }
    return 1;
}

static void *worker_main(void *arg) {
    pos *p = arg;
    worker *w = calloc(1, sizeof *w);
    if (!w)
        stress_die("out of memory for a worker");
    w->p = p;
    w->id = (unsigned)(p - g_pos);
    stress_rng_seed(&w->rng, g_seed, w->id);
    stress_attach("ps-%u", w->id);
    /* Everything this thread needs is allocated: tell main, then wait for
     * the limit to be set. */
    atomic_store_explicit(&p->c.phase_done, UINT64_MAX, memory_order_release);
    while (!atomic_load_explicit(&g_go, memory_order_acquire) && !stress_stopping()) {
        rcgc_blocking_begin();
        stress_sleep_us(200);
        rcgc_blocking_end();
    }
    uint64_t phase;
    while (!stress_stopping() &&
           (phase = atomic_load_explicit(&g_phase, memory_order_acquire)) != UINT64_MAX) {
        if ((phase & 1) == PH_FILL) {
            w->made_objs = w->made_raw = w->bytes = 0;
            int first = 1, out = 0;
            unsigned nulls = 0;
            atomic_store_explicit(&p->c.exhausted, 0, memory_order_relaxed);
            while (!out && atomic_load_explicit(&g_phase, memory_order_acquire) == phase &&
                   !stress_stopping()) {
                for (unsigned k = 0; k < OPS_BATCH && !out; k++) {
                    uint64_t r = stress_rng_next(&w->rng);
                    w->sub.s = stress_rng_next(&w->rng) | 1;
                    stress_sched_note(&p->c.sched_hash, r % 100, r >> 40);
                    int ok = op_alloc(w, first);
                    first = 0;
                    if (!ok) {
                        /* Out of memory, or an injected failure: carry on as
                         * a program would, a few times, then give up. */
                        nulls++;
                        if (nulls == 1 || nulls == 8 || nulls == 32)
                            under_pressure(w);
                        if (g_mode == MODE_RLIMIT && nulls >= 32)
                            out = 1;
                    }
                }
                BUMP(p->c.ops, OPS_BATCH);
                atomic_store_explicit(&p->c.bytes, w->bytes, memory_order_relaxed);
                if (g_mode == MODE_INJECT && w->bytes >= g_budget)
                    out = 1;
                rcgc_safepoint();
            }
            atomic_store_explicit(&p->c.exhausted, out, memory_order_release);
        } else {
            uint64_t seen;
            drain(w, &seen);
        }
        atomic_store_explicit(&p->c.phase_done, phase, memory_order_release);
        if (!wait_phase(phase))
            break;
    }
    uint64_t seen;
    drain(w, &seen);
    rcgc_thread_detach();
    free(w);
    stress_thread_end(&p->t, 0);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Main thread
 * ------------------------------------------------------------------------ */
#define SUM(field) stress_sum(g_pos, sizeof *g_pos, g_npos, offsetof(pos, c.field))

static double vm_mib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0;
    if (!f || fscanf(f, "%lu", &size) != 1)
        stress_die("cannot read /proc/self/statm");
    fclose(f);
    return (double)size * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static int all_done(uint64_t phase) {
    for (unsigned i = 0; i < g_npos; i++)
        if (atomic_load_explicit(&g_pos[i].c.phase_done, memory_order_acquire) != phase)
            return 0;
    return 1;
}

int main(int argc, char **argv) {
    stress_options opt = {.threads = 2, .seconds = 5, .ops_unit = "fill/drain cycles in all"};
    unsigned long mode = MODE_AUTO, headroom = 192, budget = STRESS_SANITIZER ? 48 : 128,
                  fill_ms = 5000, recover_pct = 50;
    stress_extra_opt extra[] = {
        {"mode", &mode, 0, 2,
         "0: rlimit in plain builds, inject under sanitizers; 1: setrlimit(RLIMIT_AS); 2: fault "
         "injection"},
        {"headroom-mib", &headroom, 130, 1u << 20,
         "rlimit mode: address space allowed above what is in use at the start"},
        {"budget-mib", &budget, 1, 1u << 20, "inject mode: bytes a fill allocates, all workers"},
        {"fill-ms", &fill_ms, 10, 600000, "a fill ends after this long even if memory lasts"},
        {"recover-pct", &recover_pct, 0, 100,
         "rlimit mode: each cycle must reach this percentage of the first cycle's bytes"},
    };
    stress_parse_options(argc, argv, &opt, extra, sizeof extra / sizeof extra[0]);
    g_seed = stress_seed = opt.seed;
    g_npos = opt.threads;
    g_mode = mode != MODE_AUTO ? (int)mode : STRESS_SANITIZER ? MODE_INJECT : MODE_RLIMIT;
    g_budget = ((uint64_t)budget << 20) / g_npos;
    if (g_mode == MODE_RLIMIT && STRESS_SANITIZER)
        stress_die("--mode=1 (RLIMIT_AS) cannot run under a sanitizer: its own allocators fail "
                   "first; use --mode=2");

    printf("%s: torture test, not a benchmark: threads %u, seconds %g, seed %llu%s; pressure: "
           "%s\n",
           stress_prog, g_npos, opt.seconds, (unsigned long long)g_seed,
           opt.seed_given ? "" : " (pass --seed to repeat)",
           g_mode == MODE_RLIMIT
               ? "setrlimit(RLIMIT_AS) at the address space in use + --headroom-mib"
               : STRESS_SANITIZER
                     ? "fault injection (rcgc__os_fail_nth) and a byte budget: this is a "
                       "sanitizer build, where RLIMIT_AS would break the sanitizer's own "
                       "allocators"
                     : "fault injection (rcgc__os_fail_nth) and a byte budget (--mode=2)");
    fflush(stdout);

    stress_init_runtime(NULL, "ps-main");
    if (rcgc_gc_callback_add(gc_cb, NULL) != 0)
        stress_die("rcgc_gc_callback_add failed");
    g_pos = calloc(g_npos, sizeof *g_pos);
    if (!g_pos)
        stress_die("out of memory");
    for (unsigned i = 0; i < g_npos; i++)
        stress_thread_start(&g_pos[i].t, worker_main, &g_pos[i]);
    for (unsigned i = 0; i < g_npos; i++)
        while (atomic_load_explicit(&g_pos[i].c.phase_done, memory_order_acquire) != UINT64_MAX) {
            rcgc_blocking_begin();
            stress_sleep_us(1000);
            rcgc_blocking_end();
        }
    /* The collector's helper threads, now, while stacks can be mapped. */
    rcgc_collect();
    rcgc_stats st0;
    rcgc_stats_get(&st0);
    double vm0 = vm_mib();
    struct rlimit old_lim;
    getrlimit(RLIMIT_AS, &old_lim);
    if (g_mode == MODE_RLIMIT) {
        struct rlimit lim = old_lim;
        lim.rlim_cur = (rlim_t)((vm0 + (double)headroom) * 1024 * 1024);
        if (setrlimit(RLIMIT_AS, &lim) != 0)
            stress_die("setrlimit(RLIMIT_AS): %s", strerror(errno));
        printf("%s: address space in use %.0f MiB; RLIMIT_AS set to %.0f MiB\n", stress_prog, vm0,
               vm0 + (double)headroom);
    } else {
        printf("%s: budget %lu MiB a fill; OS calls made so far %llu\n", stress_prog, budget,
               (unsigned long long)rcgc__os_calls());
    }
    fflush(stdout);

    stress_rng main_rng;
    stress_rng_seed(&main_rng, g_seed, 0xFFFFFFFFull);
    uint64_t start = stress_now_ns(), last = start, last_ops = 0;
    uint64_t deadline = start + (uint64_t)(opt.seconds * 1e9);
    uint64_t phase = 0, cycles = 0, fill_timeouts = 0, first_bytes = 0, min_bytes = UINT64_MAX,
             max_bytes = 0, injections = 0, live_objs = 0;
    /* Complete fills: the first ten and the last ten (a ring), for the
     * trend in the summary. */
    uint64_t fills_first[10], fills_last[10], nfills = 0;
    uint64_t phase_start = stress_now_ns();
    atomic_store_explicit(&g_go, 1, memory_order_release);
    for (;;) {
        rcgc_blocking_begin();
        stress_sleep_us(g_mode == MODE_INJECT ? 500 : 2000);
        rcgc_blocking_end();
        uint64_t now = stress_now_ns();
        int stopping = now >= deadline || stress_violation_count() > 0;
        if ((phase & 1) == PH_FILL) {
            if (g_mode == MODE_INJECT) {
                rcgc__os_fail_nth(1 + stress_rng_below(&main_rng, 4));
                injections++;
            }
            int done = all_done(phase), cut = 0;
            if (!done && now - phase_start >= fill_ms * 1000000u) {
                fill_timeouts++;
                done = cut = 1;
            }
            cut |= !done && stopping;   /* a fill the end of the run cut short */
            if (done || stopping) {
                if (g_mode == MODE_INJECT)
                    rcgc__os_fail_nth(0);
                uint64_t bytes = SUM(bytes);
                if (cycles == 0 && !cut)
                    first_bytes = bytes;
                if (!cut && bytes < min_bytes)
                    min_bytes = bytes;
                if (!cut) {
                    if (nfills < 10)
                        fills_first[nfills] = bytes;
                    fills_last[nfills % 10] = bytes;
                    nfills++;
                }
                if (bytes > max_bytes)
                    max_bytes = bytes;
                live_objs = LOAD(g_created) - LOAD(g_destroyed);
                if (g_mode == MODE_RLIMIT && first_bytes && !cut &&
                    bytes * 100 < first_bytes * recover_pct)
                    stress_violation("cycle %llu reached %.1f MiB, under %lu%% of the first "
                                     "cycle's %.1f MiB: memory freed is not usable again",
                                     (unsigned long long)cycles, bytes / 1048576.0, recover_pct,
                                     first_bytes / 1048576.0);
                phase++;
                atomic_store_explicit(&g_phase, phase, memory_order_release);
                phase_start = now;
            }
        } else if (all_done(phase)) {
            /* Drained: the cross links are garbage cycles. */
            rcgc_collect();
            for (int i = 0; i < 16 && rcgc_collect() != 0; i++) {
            }
            uint64_t created = LOAD(g_created), destroyed = LOAD(g_destroyed);
            if (created != destroyed)
                stress_violation("cycle %llu: %llu objects made so far, %llu destroyed after the "
                                 "drain",
                                 (unsigned long long)cycles, (unsigned long long)created,
                                 (unsigned long long)destroyed);
            if (LOAD(g_raw_made) != LOAD(g_raw_freed))
                stress_violation("cycle %llu: %llu raw blocks made so far, %llu freed",
                                 (unsigned long long)cycles,
                                 (unsigned long long)LOAD(g_raw_made),
                                 (unsigned long long)LOAD(g_raw_freed));
            rcgc_stats st;
            rcgc_stats_get(&st);
            if (st.blocks_in_use > st0.blocks_in_use + EXTRA_BLOCKS_SLACK)
                stress_violation("cycle %llu: after the drain rcgc_stats_get reports "
                                 "blocks_in_use %zu (%zu before the first cycle)",
                                 (unsigned long long)cycles, st.blocks_in_use, st0.blocks_in_use);
            cycles++;
            if (stopping || (opt.ops && cycles >= opt.ops)) {
                atomic_store_explicit(&g_phase, UINT64_MAX, memory_order_release);
                break;
            }
            phase++;
            atomic_store_explicit(&g_phase, phase, memory_order_release);
            phase_start = now;
        }
        if (now - last >= 1000000000u) {
            double dt = (double)(now - last) / 1e9;
            uint64_t ops = SUM(ops);
            rcgc_stats st;
            rcgc_stats_get(&st);
            stress_progress(start, (double)(ops - last_ops) / dt,
                            (long long)(LOAD(g_created) - LOAD(g_destroyed)),
                            "objects  cycle %llu (%s)  held %.1f MiB  NULLs %llu  collections "
                            "given up %llu  reserved %.0f MiB  committed %.1f MiB",
                            (unsigned long long)cycles, (phase & 1) ? "drain" : "fill",
                            SUM(bytes) / 1048576.0, (unsigned long long)LOAD(g_enomem),
                            (unsigned long long)LOAD(g_gc_aborted),
                            st.bytes_reserved / 1048576.0, st.bytes_committed / 1048576.0);
            last = now;
            last_ops = ops;
        }
    }
    atomic_store_explicit(&g_phase, UINT64_MAX, memory_order_release);
    atomic_store_explicit(&stress_stop, 1, memory_order_relaxed);
    for (unsigned i = 0; i < g_npos; i++)
        stress_thread_join(&g_pos[i].t);
    if (g_mode == MODE_INJECT)
        rcgc__os_fail_nth(0);
    if (g_mode == MODE_RLIMIT)
        setrlimit(RLIMIT_AS, &old_lim);
    double elapsed = stress_seconds_since(start);
    rcgc_collect();
    if (LOAD(g_created) != LOAD(g_destroyed))
        stress_violation("%llu objects made, %llu destroyed at the end",
                         (unsigned long long)LOAD(g_created), (unsigned long long)LOAD(g_destroyed));
    if (g_mode == MODE_RLIMIT && cycles > 0 && LOAD(g_enomem) == 0)
        stress_violation("%llu cycles under RLIMIT_AS and not one allocation failed: the limit "
                         "did not bite (raise the fill time or lower --headroom-mib)",
                         (unsigned long long)cycles);
    if (g_mode == MODE_INJECT && cycles > 0 && LOAD(g_enomem) == 0)
        stress_violation("%llu cycles with fault injection and not one allocation failed",
                         (unsigned long long)cycles);
    uint64_t ops = SUM(ops);
    printf("%s: ran %.2fs: %llu cycles (%llu fills ended by --fill-ms), %llu allocations tried, "
           "%llu objects made and destroyed, %llu raw blocks (%llu huge ok, %llu huge failed), "
           "%llu NULL + ENOMEM (%llu with another errno); per complete fill %.1f to %.1f MiB "
           "(first %.1f); %llu collections, %llu gave up (ENOMEM); weak references under pressure "
           "%llu made, %llu refused; %llu chain walks under pressure%s",
           stress_prog, elapsed, (unsigned long long)cycles, (unsigned long long)fill_timeouts,
           (unsigned long long)ops, (unsigned long long)LOAD(g_created),
           (unsigned long long)LOAD(g_raw_made), (unsigned long long)LOAD(g_huge_ok),
           (unsigned long long)LOAD(g_huge_fail), (unsigned long long)LOAD(g_enomem),
           (unsigned long long)LOAD(g_bad_errno), min_bytes == UINT64_MAX ? 0 : min_bytes / 1048576.0,
           max_bytes / 1048576.0, first_bytes / 1048576.0, (unsigned long long)LOAD(g_gc_done),
           (unsigned long long)LOAD(g_gc_aborted), (unsigned long long)LOAD(g_weak_ok),
           (unsigned long long)LOAD(g_weak_fail), (unsigned long long)SUM(walks),
           g_mode == MODE_INJECT ? "" : "\n");
    if (g_mode == MODE_INJECT)
        printf("; %llu injections armed\n", (unsigned long long)injections);
    if (nfills >= 20) {
        double a = 0, b = 0;
        for (int i = 0; i < 10; i++) {
            a += fills_first[i] / 10.0;
            b += fills_last[i] / 10.0;
        }
        printf("%s: complete fills: the first 10 averaged %.1f MiB, the last 10 %.1f MiB (%llu "
               "fills)\n",
               stress_prog, a / 1048576.0, b / 1048576.0, (unsigned long long)nfills);
    }
    (void)live_objs;
    stress_print_schedule(&opt, LOAD(g_pos[0].c.sched_hash));
    rcgc_gc_callback_remove(gc_cb, NULL);
    stress_shutdown_checked();
    free(g_pos);
    return stress_finish();
}
