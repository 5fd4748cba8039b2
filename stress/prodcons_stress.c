/*
 * prodcons_stress: torture test of objects and raw blocks that die on a
 * thread other than the one that made them: remote frees into the owner's
 * pages (lib/heap.c), biased reference counting's merges (lib/refcount.c),
 * deferred frees of RCGC_TYPE_SHARED_READ objects (lib/qsbr.c), and owners
 * that leave while others still hold what they made.
 *
 * NOT A BENCHMARK. The ops/s it prints only shows that it is making
 * progress; every operation carries verification work that a real program
 * would not do.
 *
 * Roles. Of the --threads worker positions, --consumers (default half) are
 * consumers and the rest producers; with one thread, that thread does both
 * (it sends to itself). Each consumer has a mailbox (stress_util.h).
 *
 * Parcels. A producer makes a parcel: a tracked object (one of two types:
 * plain, or flagged RCGC_TYPE_SHARED_READ) with a canary derived from its
 * id, 0-2 children made by the same producer (sometimes a child points
 * back at the parcel: a cycle only the collector frees) and sometimes a
 * raw rcgc_malloc block filled with a canary pattern, which the parcel's
 * destroy checks and frees (a raw block freed on whichever thread the
 * parcel dies on). It sends the parcel to a random consumer, and one time
 * in four keeps a second reference that it drops later: then the last drop
 * races between the producer and the consumer. Producers also send bare
 * raw blocks, whose receiver frees them (rcgc_free of another thread's
 * block), call rcgc_heap_collect, and now and then exit: half detach
 * first, half leave it to the pthread key destructor, with their parcels
 * still in mailboxes (main starts a successor).
 *
 * Consumers take batches from their mailbox, check every parcel (canary,
 * id, kind, children, raw block pattern, no death recorded) and then drop
 * it (the last reference, usually: a count owned by another thread reaches
 * zero here and is merged by its owner), forward it to another consumer,
 * keep it for a while in a small ring, or count on it; bare raw blocks
 * are checked and freed or forwarded. Consumers also collect (young or
 * full) now and then, and exit now and then too.
 *
 * Checks. Per id (parcels, children, raw blocks: stress_util.h's records)
 * the death count: a second death is a violation when it happens; at the
 * end every id must have died exactly once. destroy checks the canary, that
 * clear ran, and the raw block's pattern. The end: main drains the
 * mailboxes, collects until nothing is found, and checks created ==
 * destroyed, raw blocks allocated == freed, every id dead once, sent ==
 * received + what main drained, rcgc_stats_get blocks in use back to where
 * they were before the run (besides SHARED_READ frees waiting for a grace
 * period, and the batches that list them), with more than one thread some
 * remote frees and some remote last drops, and after rcgc_shutdown +
 * rcgc_init nothing in use. Any violation makes the exit status 1.
 *
 * Schedule: each worker draws a fixed number of values per operation, so
 * with --threads=1 the same seed gives the same schedule (--ops=N prints
 * its hash).
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
#define MAILBOX_CAP   4096u
#define RECV_BATCH    32u
#define KEEP_RING     64u         /* references a worker keeps for a while */
#define OPS_BATCH     32u
#define RAW_MAX       (48u << 10) /* up to medium and small large blocks */
#if STRESS_SANITIZER
#define EXIT_PER_M    400u        /* rare events, per million operations */
#define COLLECT_PER_M 2000u
#else
#define EXIT_PER_M    40u
#define COLLECT_PER_M 300u
#endif
/* Blocks the library may keep after the run besides pending SHARED_READ
 * frees: merge-queue chunks, qsbr batches (see the final check). */
#define EXTRA_BLOCKS_SLACK 64u
#define FINAL_ROUNDS 16
#define SALT 0x9A5CE1ull         /* canaries: stress_canary(id, SALT) */

#define BUMP STRESS_BUMP
#define LOAD STRESS_LOAD
#define INC(v) atomic_fetch_add_explicit(&(v), 1, memory_order_relaxed)

/* ------------------------------------------------------------------------
 * Objects and raw blocks
 * ------------------------------------------------------------------------ */
enum { KIND_PARCEL = 0x50415243u, KIND_CHILD = 0x4348494Cu };
enum { ITEM_PARCEL = 1, ITEM_RAW = 2 };

typedef struct parcel {
    uint64_t canary;            /* stress_canary(id) while alive, STRESS_POISON after destroy */
    uint64_t id;
    uint32_t kind;              /* KIND_* */
    uint32_t origin;            /* creating thread: position << 16 | generation */
    _Atomic uint32_t hops;      /* forwards between consumers */
    stress_pair pr;             /* children: set before the parcel is shared; dropped by clear */
    unsigned char *raw;         /* raw block owned by the parcel, or NULL */
    uint64_t raw_id;
    uint32_t raw_size;
} parcel;

static uint64_t g_seed;
static _Atomic uint64_t g_created, g_destroyed, g_raw_made, g_raw_freed, g_remote_deaths,
    g_raw_remote_frees, g_cycles;
static __thread uint32_t tl_origin = UINT32_MAX;     /* the running worker (main: none) */

/* Raw blocks: 16 bytes of header (id, size), then stress_util.h's
 * pattern keyed by the id (up to the size asked for, rounded down). */
static uint64_t raw_key(uint64_t id) { return stress_mix64(id ^ g_seed); }

static unsigned char *raw_new(uint32_t size, uint64_t *id_out) {
    unsigned char *p = rcgc_malloc(size);
    if (!p) {
        stress_violation("rcgc_malloc(%u) returned NULL (errno %d)", size, errno);
        return NULL;
    }
    uint64_t id = stress_id_new();
    uint64_t hdr[2] = {id, size};
    memcpy(p, hdr, sizeof hdr);
    stress_pattern_fill(p, 16, size, raw_key(id), SIZE_MAX);
    INC(g_raw_made);
    *id_out = id;
    return p;
}

/* Check a raw block against its record, then free it (and count the death
 * of its id). origin: who allocated it (for the remote-free count). */
static void raw_free_checked(unsigned char *p, uint64_t id, uint32_t size, uint32_t origin,
                             const char *when) {
    uint64_t hdr[2];
    memcpy(hdr, p, sizeof hdr);
    int ok = 1;
    if (hdr[0] != id || hdr[1] != size) {
        stress_violation("raw block %p: header (id %llu, size %llu), expected (id %llu, size %u) "
                         "(%s)",
                         (void *)p, (unsigned long long)hdr[0], (unsigned long long)hdr[1],
                         (unsigned long long)id, size, when);
        ok = 0;
    }
    if (ok && !stress_pattern_check(p, 16, size, raw_key(id), SIZE_MAX, when))
        ok = 0;
    if (rcgc_usable_size(p) < size)
        stress_violation("raw block %p (id %llu): rcgc_usable_size %zu < %u (%s)", (void *)p,
                         (unsigned long long)id, rcgc_usable_size(p), size, when);
    uint8_t old = atomic_fetch_add_explicit(stress_id_cell(id), 1, memory_order_relaxed);
    if (old)
        stress_violation("raw block id %llu freed a second time (%s)", (unsigned long long)id,
                         when);
    if (!ok)
        return;     /* leaked: freeing a corrupted block could crash and hide the report */
    if (origin != tl_origin)
        INC(g_raw_remote_frees);
    rcgc_free(p);
    INC(g_raw_freed);
}

static int parcel_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    return stress_pair_traverse(&((parcel *)self)->pr, visit, arg);
}

static void parcel_clear(void *self) { stress_pair_clear(&((parcel *)self)->pr); }

static void parcel_destroy(void *self) {
    parcel *o = self;
    if (!stress_on_destroy(self, o->id, o->canary, SALT, 1))
        return;
    if (atomic_load_explicit(&o->pr.clears, memory_order_relaxed) == 0)
        stress_violation("object %p (id %llu) destroyed without a clear", self,
                         (unsigned long long)o->id);
    if (o->pr.child[0] || o->pr.child[1])
        stress_violation("object %p (id %llu) destroyed with children set", self,
                         (unsigned long long)o->id);
    if (o->raw)
        raw_free_checked(o->raw, o->raw_id, o->raw_size, o->origin, "in its parcel's destroy");
    o->raw = NULL;
    if (o->origin != tl_origin)
        INC(g_remote_deaths);
    o->canary = STRESS_POISON;
    INC(g_destroyed);
}

static const rcgc_type parcel_type = {
    .name = "pc_parcel", .size = sizeof(parcel), .traverse = parcel_traverse,
    .clear = parcel_clear, .destroy = parcel_destroy,
};
static const rcgc_type shared_parcel_type = {
    .name = "pc_shared_parcel", .size = sizeof(parcel), .traverse = parcel_traverse,
    .clear = parcel_clear, .destroy = parcel_destroy, .flags = RCGC_TYPE_SHARED_READ,
};

/* Check an object the caller holds a reference to. Returns 1 if intact. */
static int check_obj(const parcel *o, uint64_t want_id, const char *when) {
    if (!stress_check_alive(o, o->id, o->canary, SALT, want_id, 1, when))
        return 0;
    if (o->kind != KIND_PARCEL && o->kind != KIND_CHILD) {
        stress_violation("object %p (id %llu): kind %08x (%s)", (const void *)o,
                         (unsigned long long)o->id, o->kind, when);
        return 0;
    }
    const rcgc_type *t = rcgc_typeof(o);
    if (t != &parcel_type && t != &shared_parcel_type) {
        stress_violation("object %p (id %llu): rcgc_typeof gives %p (%s)", (const void *)o,
                         (unsigned long long)o->id, (const void *)t, when);
        return 0;
    }
    return 1;
}

/* A parcel and what it holds (children: set before sharing, never changed
 * until clear, which only runs once nobody holds the parcel). */
static int check_parcel(const parcel *o, uint64_t id, const char *when) {
    if (!check_obj(o, id, when))
        return 0;
    for (int i = 0; i < 2; i++)
        if (o->pr.child[i] && !check_obj(o->pr.child[i], UINT64_MAX, when))
            return 0;
    return 1;
}

static parcel *obj_new(const rcgc_type *t, uint32_t kind) {
    parcel *o = stress_new_zeroed(t, sizeof *o);
    if (!o)
        return NULL;
    o->id = stress_id_new();
    o->canary = stress_canary(o->id, SALT);
    o->kind = kind;
    o->origin = tl_origin;
    INC(g_created);
    return o;
}

/* ------------------------------------------------------------------------
 * Positions and workers
 * ------------------------------------------------------------------------ */
typedef struct item {
    void *p;
    uint64_t id;
    uint32_t kind;          /* ITEM_* */
    uint32_t size;          /* raw blocks: bytes asked for */
    uint32_t origin;        /* raw blocks: the allocating thread */
} item;

typedef struct counters {
    _Atomic uint64_t ops, parcels, raws, sent, full, received, forwarded, kept, count_bursts,
        collects, heap_collects, exits, exits_attached, sched_hash;
} counters;

typedef struct pos {
    stress_thread t;        /* first: stress_supervise */
    stress_mailbox mail;    /* consumers only: items */
    _Alignas(64) counters c;
} pos;

static pos *g_pos;
static unsigned g_npos, g_nprod;    /* positions [0, g_nprod) produce; the rest consume */
static uint64_t g_ops_limit;

typedef struct worker {
    pos *p;
    unsigned id;
    stress_rng rng;         /* one draw per operation ... */
    stress_rng sub;         /* ... seeds this one, for the operation's choices */
    item keep[KEEP_RING];
    unsigned nkeep;
} worker;

static int produces(unsigned i) { return g_npos == 1 || i < g_nprod; }
static int consumes(unsigned i) { return g_npos == 1 || i >= g_nprod; }

static unsigned pick_consumer(worker *w, int not_me) {
    if (g_npos == 1)
        return 0;
    unsigned ncons = g_npos - g_nprod;
    if (not_me && consumes(w->id) && ncons > 1) {
        unsigned t = g_nprod + (unsigned)stress_rng_below(&w->sub, ncons - 1);
        return t >= w->id ? t + 1 : t;
    }
    return g_nprod + (unsigned)stress_rng_below(&w->sub, ncons);
}

/* Drop what an item holds, after checking it. */
static void item_drop(const item *it, const char *when) {
    if (it->kind == ITEM_PARCEL) {
        if (check_parcel(it->p, it->id, when))
            rcgc_decref(it->p);
    } else {
        raw_free_checked(it->p, it->id, it->size, it->origin, when);
    }
}

/* Keep an item for a while (a full ring drops a random one first). */
static void keep(worker *w, const item *it) {
    if (w->nkeep == KEEP_RING) {
        unsigned i = (unsigned)stress_rng_below(&w->sub, KEEP_RING);
        item_drop(&w->keep[i], "dropping a kept reference to make room");
        w->keep[i] = *it;
    } else {
        w->keep[w->nkeep++] = *it;
    }
    BUMP(w->p->c.kept, 1);
}

static void drop_kept(worker *w) {
    while (w->nkeep > 0) {
        item it = w->keep[--w->nkeep];
        item_drop(&it, "dropping a kept reference");
        rcgc_safepoint();
    }
}

static void send(worker *w, const item *it, unsigned t) {
    if (stress_mailbox_put(&g_pos[t].mail, it)) {
        BUMP(w->p->c.sent, 1);
    } else {
        BUMP(w->p->c.full, 1);
        item_drop(it, "dropped by its sender (mailbox full)");
    }
}

static uint32_t raw_size(worker *w) {
    unsigned u = (unsigned)stress_rng_below(&w->sub, 64);
    if (u < 48)
        return 16 + (uint32_t)stress_rng_below(&w->sub, 240);
    if (u < 62)
        return 256 + (uint32_t)stress_rng_below(&w->sub, 4096);
    return 4096 + (uint32_t)stress_rng_below(&w->sub, RAW_MAX - 4096);
}

/* A parcel with 0-2 children, maybe a raw block and a cycle. */
static void op_parcel(worker *w) {
    int shared = stress_rng_one_in(&w->sub, 3);
    unsigned nchild = (unsigned)stress_rng_below(&w->sub, 3);
    int with_raw = stress_rng_one_in(&w->sub, 3);
    int cycle = nchild > 0 && stress_rng_one_in(&w->sub, 8);
    int keep_too = stress_rng_one_in(&w->sub, 4);
    unsigned t = pick_consumer(w, 0);
    uint32_t rsize = raw_size(w);
    parcel *o = obj_new(shared ? &shared_parcel_type : &parcel_type, KIND_PARCEL);
    if (!o)
        return;
    for (unsigned i = 0; i < nchild; i++) {
        parcel *c = obj_new(&parcel_type, KIND_CHILD);
        if (!c)
            break;
        o->pr.child[i] = c;
    }
    if (cycle && o->pr.child[0]) {
        parcel *c = o->pr.child[0];
        rcgc_incref(o);
        c->pr.child[0] = o;    /* not shared yet: no lock needed */
        INC(g_cycles);
    }
    if (with_raw) {
        o->raw = raw_new(rsize, &o->raw_id);
        o->raw_size = o->raw ? rsize : 0;
    }
    BUMP(w->p->c.parcels, 1);
    item it = {o, o->id, ITEM_PARCEL, 0, tl_origin};
    if (keep_too) {
        rcgc_incref(o);
        keep(w, &it);
    }
    send(w, &it, t);
}

static void op_raw(worker *w) {
    uint32_t size = raw_size(w);
    unsigned t = pick_consumer(w, 0);
    uint64_t id;
    unsigned char *p = raw_new(size, &id);
    if (!p)
        return;
    BUMP(w->p->c.raws, 1);
    item it = {p, id, ITEM_RAW, size, tl_origin};
    send(w, &it, t);
}

/* Take a batch: check each item, then drop it, forward it, keep it, or
 * count on it. */
static void op_consume(worker *w) {
    item got[RECV_BATCH];
    unsigned choice[RECV_BATCH], target[RECV_BATCH];
    for (unsigned i = 0; i < RECV_BATCH; i++) {   /* drawn whatever arrives */
        choice[i] = (unsigned)stress_rng_below(&w->sub, 16);
        target[i] = pick_consumer(w, 1);
    }
    size_t n = stress_mailbox_take(&w->p->mail, got, RECV_BATCH);
    for (size_t i = 0; i < n; i++) {
        item *it = &got[i];
        BUMP(w->p->c.received, 1);
        if (it->kind == ITEM_PARCEL) {
            parcel *o = it->p;
            if (!check_parcel(o, it->id, "on receiving it"))
                continue;   /* leaked: see check_obj */
            if (o->raw && o->raw_size >= 16) {
                uint64_t hdr[2];
                memcpy(hdr, o->raw, sizeof hdr);
                if (hdr[0] != o->raw_id || hdr[1] != o->raw_size)
                    stress_violation("parcel id %llu: its raw block's header reads (%llu, %llu) "
                                     "on receiving it",
                                     (unsigned long long)o->id, (unsigned long long)hdr[0],
                                     (unsigned long long)hdr[1]);
            }
        }
        if (choice[i] < 2 && g_npos > 1) {
            if (it->kind == ITEM_PARCEL)
                atomic_fetch_add_explicit(&((parcel *)it->p)->hops, 1, memory_order_relaxed);
            BUMP(w->p->c.forwarded, 1);
            send(w, it, target[i]);
        } else if (choice[i] < 4) {
            keep(w, it);
        } else if (choice[i] < 5 && it->kind == ITEM_PARCEL) {
            for (int k = 0; k < 3; k++)
                rcgc_incref(it->p);
            if (rcgc_refcount(it->p) < 1)
                stress_violation("rcgc_refcount(id %llu) == 0 while held",
                                 (unsigned long long)it->id);
            for (int k = 0; k < 3; k++)
                rcgc_decref(it->p);
            BUMP(w->p->c.count_bursts, 1);
            item_drop(it, "after a count burst");
        } else {
            item_drop(it, "dropped by its receiver");
        }
    }
}

static void op_drop_kept(worker *w) {
    if (w->nkeep == 0)
        return;
    unsigned i = (unsigned)stress_rng_below(&w->sub, w->nkeep);
    item it = w->keep[i];
    w->keep[i] = w->keep[--w->nkeep];
    item_drop(&it, "dropping a kept reference");
}

static void op_collect(worker *w) {
    if (stress_rng_one_in(&w->sub, 4))
        rcgc_collect();
    else
        rcgc_collect_young();
    BUMP(w->p->c.collects, 1);
}

static void *worker_main(void *arg) {
    pos *p = arg;
    worker *w = calloc(1, sizeof *w);
    if (!w)
        stress_die("out of memory for a worker");
    w->p = p;
    w->id = (unsigned)(p - g_pos);
    tl_origin = (uint32_t)w->id << 16 | (p->t.generation & 0xFFFFu);
    stress_rng_seed(&w->rng, g_seed, (uint64_t)w->id << 32 | p->t.generation);
    stress_attach("pc-%c%u.%u", produces(w->id) ? 'p' : 'c', w->id, p->t.generation % 1000);
    const int prod = produces(w->id), cons = consumes(w->id);
    const uint64_t t_exit = (uint64_t)EXIT_PER_M * (1u << 20) / 1000000u;
    const uint64_t t_collect = t_exit + (uint64_t)COLLECT_PER_M * (1u << 20) / 1000000u;
    int exiting = 0, detach_first = 0;

    while (!exiting && !stress_stopping()) {
        if (g_ops_limit && LOAD(p->c.ops) >= g_ops_limit)
            break;
        unsigned k;
        for (k = 0; k < OPS_BATCH && !exiting; k++) {
            /* Two draws per operation, whatever it finds. */
            uint64_t r = stress_rng_next(&w->rng);
            w->sub.s = stress_rng_next(&w->rng) | 1;
            uint64_t rare = r & ((1u << 20) - 1);
            unsigned op = (unsigned)((r >> 20) % 1000);
            stress_sched_note(&p->c.sched_hash, op, rare);
            if (rare < t_exit) {
                exiting = 1;
                detach_first = (int)(r >> 40) & 1;
            } else if (rare < t_collect) {
                op_collect(w);
            } else if (prod && (!cons || op < 500)) {
                unsigned q = op % 100;
                if (q < 60)
                    op_parcel(w);
                else if (q < 90)
                    op_raw(w);
                else if (q < 98)
                    op_drop_kept(w);
                else {
                    rcgc_heap_collect();
                    BUMP(p->c.heap_collects, 1);
                }
            } else {
                if (op % 10 < 9)
                    op_consume(w);
                else
                    op_drop_kept(w);
            }
        }
        rcgc_safepoint();
        BUMP(p->c.ops, k);
    }
    drop_kept(w);
    if (cons && !exiting)
        while (stress_mailbox_count(&p->mail) > 0) {
            w->sub.s = stress_rng_next(&w->rng) | 1;
            op_consume(w);
            drop_kept(w);
        }
    free(w);
    if (exiting) {
        BUMP(p->c.exits, 1);
        if (detach_first)
            rcgc_thread_detach();
        else
            BUMP(p->c.exits_attached, 1);   /* the key destructor detaches */
    } else {
        rcgc_thread_detach();
    }
    stress_thread_end(&p->t, exiting);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Main thread
 * ------------------------------------------------------------------------ */
#define SUM(field) stress_sum(g_pos, sizeof *g_pos, g_npos, offsetof(pos, c.field))

static size_t in_mailboxes(void) {
    size_t n = 0;
    for (unsigned i = 0; i < g_npos; i++)
        if (consumes(i))
            n += stress_mailbox_count(&g_pos[i].mail);
    return n;
}

static void progress(uint64_t start, double dt) {
    static uint64_t last_ops;
    uint64_t ops = SUM(ops), ops_delta = ops - last_ops;
    last_ops = ops;
    rcgc_stats st;
    rcgc_stats_get(&st);
    stress_progress(start, dt > 0 ? (double)ops_delta / dt : 0.0,
                    (long long)(LOAD(g_created) - LOAD(g_destroyed)),
                    "objects  raw blocks %lld  in mailboxes %zu  remote deaths %llu  remote "
                    "frees %zu  shared-read pending %zu  churn %llu",
                    (long long)(LOAD(g_raw_made) - LOAD(g_raw_freed)), in_mailboxes(),
                    (unsigned long long)LOAD(g_remote_deaths), st.remote_frees_total,
                    st.objects_shared_read_pending, (unsigned long long)SUM(exits));
}

static uint64_t drain_mailboxes(void) {
    uint64_t n = 0;
    item got[RECV_BATCH];
    for (unsigned i = 0; i < g_npos; i++) {
        if (!consumes(i))
            continue;
        size_t k;
        while ((k = stress_mailbox_take(&g_pos[i].mail, got, RECV_BATCH)) > 0) {
            for (size_t j = 0; j < k; j++)
                item_drop(&got[j], "main, end of run");
            n += k;
            rcgc_safepoint();
        }
    }
    return n;
}

int main(int argc, char **argv) {
    stress_options opt = {.threads = 4, .seconds = 5};
    unsigned long consumers = 0, collect_ms = 100;
    stress_extra_opt extra[] = {
        {"consumers", &consumers, 0, 1023, "consumer positions (0: half the threads, at least 1)"},
        {"collect-ms", &collect_ms, 0, 100000, "main collects every this many ms (0: never)"},
    };
    stress_parse_options(argc, argv, &opt, extra, sizeof extra / sizeof extra[0]);
    g_seed = stress_seed = opt.seed;
    g_npos = opt.threads;
    g_ops_limit = opt.ops;
    unsigned ncons = consumers ? (unsigned)consumers : g_npos / 2;
    if (ncons < 1)
        ncons = 1;
    if (g_npos > 1 && ncons >= g_npos)
        stress_die("--consumers=%u leaves no producer among %u threads", ncons, g_npos);
    g_nprod = g_npos == 1 ? 1 : g_npos - ncons;

    printf("%s: torture test, not a benchmark: threads %u (%u producers, %u consumers%s), "
           "seconds %g, seed %llu%s%s\n",
           stress_prog, g_npos, g_npos == 1 ? 1 : g_nprod, g_npos == 1 ? 1 : ncons,
           g_npos == 1 ? ": one thread does both" : "", opt.seconds,
           (unsigned long long)g_seed, opt.seed_given ? "" : " (pass --seed to repeat)",
           STRESS_SANITIZER ? ", sanitizer build: more churn" : "");
    fflush(stdout);

    stress_init_runtime(NULL, "pc-main");
    rcgc_stats st0;
    rcgc_stats_get(&st0);

    g_pos = calloc(g_npos, sizeof *g_pos);
    if (!g_pos)
        stress_die("out of memory");
    for (unsigned i = 0; i < g_npos; i++)
        if (consumes(i))
            stress_mailbox_init(&g_pos[i].mail, sizeof(item), MAILBOX_CAP);

    stress_run_spec run = {g_pos, sizeof *g_pos, g_npos, worker_main, 2000, collect_ms, NULL,
                           progress};
    uint64_t main_collects;
    double elapsed = stress_run(&run, opt.seconds, &main_collects);

    uint64_t drained = drain_mailboxes();
    int rounds;
    size_t found = 0;
    for (rounds = 1; rounds <= FINAL_ROUNDS; rounds++)
        if ((found = rcgc_collect()) == 0)
            break;
    for (int i = 0; i < 100; i++)
        rcgc_safepoint();   /* quiescent states: grace periods for SHARED_READ frees */

    uint64_t created = LOAD(g_created), destroyed = LOAD(g_destroyed);
    uint64_t raw_made = LOAD(g_raw_made), raw_freed = LOAD(g_raw_freed);
    stress_ids_check_deaths(0xFF);
    if (created != destroyed)
        stress_violation("%llu objects created, %llu destroyed after every reference was dropped "
                         "(%d final collections, the last found %zu)",
                         (unsigned long long)created, (unsigned long long)destroyed, rounds,
                         found);
    if (raw_made != raw_freed)
        stress_violation("%llu raw blocks allocated, %llu freed", (unsigned long long)raw_made,
                         (unsigned long long)raw_freed);
    uint64_t sent = SUM(sent), received = SUM(received);
    if (sent != received + drained)
        stress_violation("%llu items sent, %llu received + %llu drained by main",
                         (unsigned long long)sent, (unsigned long long)received,
                         (unsigned long long)drained);
    stress_check_heap_back(&st0, EXTRA_BLOCKS_SLACK);
    rcgc_stats st;
    rcgc_stats_get(&st);
    if (g_npos > 1 && SUM(received) > 1000 &&
        (LOAD(g_remote_deaths) == 0 || st.remote_frees_total == 0))
        stress_violation("%llu items crossed threads but %llu objects died remotely and "
                         "rcgc_stats_get counts %zu remote frees",
                         (unsigned long long)SUM(received),
                         (unsigned long long)LOAD(g_remote_deaths), st.remote_frees_total);

    uint64_t ops = SUM(ops);
    printf("%s: ran %.2fs: %llu ops (%.0f/s, not a benchmark), %llu parcels (%llu with a cycle), "
           "%llu objects created, %llu destroyed (%llu on a thread other than their maker's), "
           "%llu raw blocks (%llu freed remotely), %llu items sent, %llu received, %llu forwarded, "
           "%llu kept, %llu dropped by a full mailbox, %llu drained by main, %llu count bursts\n",
           stress_prog, elapsed, (unsigned long long)ops, elapsed > 0 ? ops / elapsed : 0.0,
           (unsigned long long)SUM(parcels), (unsigned long long)LOAD(g_cycles),
           (unsigned long long)created, (unsigned long long)destroyed,
           (unsigned long long)LOAD(g_remote_deaths), (unsigned long long)raw_made,
           (unsigned long long)LOAD(g_raw_remote_frees), (unsigned long long)sent,
           (unsigned long long)received, (unsigned long long)SUM(forwarded),
           (unsigned long long)SUM(kept), (unsigned long long)SUM(full),
           (unsigned long long)drained, (unsigned long long)SUM(count_bursts));
    printf("%s: %llu thread exits (%llu left attached to the key destructor), %llu worker "
           "collections, %llu by main, %llu heap collects; final stats: blocks_in_use %zu (%zu "
           "before), shared-read pending %zu, remote_frees_total %zu, pages %zu (%zu abandoned), "
           "pauses %llu\n",
           stress_prog, (unsigned long long)SUM(exits), (unsigned long long)SUM(exits_attached),
           (unsigned long long)SUM(collects), (unsigned long long)main_collects,
           (unsigned long long)SUM(heap_collects), st.blocks_in_use, st0.blocks_in_use,
           st.objects_shared_read_pending, st.remote_frees_total, st.pages, st.pages_abandoned,
           (unsigned long long)st.pauses);
    stress_print_schedule(&opt, LOAD(g_pos[0].c.sched_hash));

    stress_shutdown_checked();
    for (unsigned i = 0; i < g_npos; i++)
        if (consumes(i))
            stress_mailbox_destroy(&g_pos[i].mail);
    free(g_pos);
    stress_ids_free();
    return stress_finish();
}
