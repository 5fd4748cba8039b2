/*
 * The usage sampler (lib/profile.c): the CSV's columns, sample rows at the
 * interval, one gc row per collection, the options (config over
 * environment), unwritable files, start/stop twice, fork, several attached
 * threads allocating and collecting while it samples, and the plot tool
 * (tools/rcgc-profile-plot, when gnuplot is installed; its path is argv[1]).
 *
 * No assertion is on timing: row counts have bounds that hold whatever the
 * scheduler does (the first and the final rows are always written; a third
 * needs one wake-up of a 10 ms timer in a second).
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>

#include "tests/test_util.h"

/* The columns docs/PROFILING.md promises, in order. */
static const char *const columns[] = {
    "time_s", "kind", "rss_bytes", "heap_in_use_bytes", "heap_committed_bytes",
    "heap_reserved_bytes", "live_objects", "tracked_objects", "threads", "collections",
    "gc_kind", "gc_pause_ms", "gc_duration_ms", "gc_workers", "gc_candidates",
    "gc_unreachable", "gc_collected", "gc_uncollectable", "gc_finalized", "gc_resurrected",
};
#define NCOL ((int)(sizeof columns / sizeof columns[0]))
enum {
    C_TIME, C_KIND, C_RSS, C_HEAP, C_COMMITTED, C_RESERVED, C_LIVE, C_TRACKED, C_THREADS,
    C_COLLECTIONS, C_GC_KIND, C_PAUSE, C_DURATION, C_WORKERS, C_CANDIDATES, C_UNREACHABLE,
    C_COLLECTED, C_UNCOLLECTABLE, C_FINALIZED, C_RESURRECTED,
};

static const char *plot_tool;   /* argv[1]: tools/rcgc-profile-plot */

static void capture_stderr(void (*fn)(void *), void *arg, char *out, size_t cap);

/* ------------------------------------------------------------------------
 * Helpers: paths, sleeping, the CSV
 * ------------------------------------------------------------------------ */

static const char *tmpdir(void) {
    const char *d = getenv("TEST_TMPDIR");
    return d && *d ? d : "/tmp";
}

static char *tmp_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/profile_test_%ld_%s", tmpdir(), (long)getpid(), name);
    return buf;
}

static void sleep_ms(unsigned ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* An attached thread sleeps in a blocking region. */
static void sleep_ms_blocking(unsigned ms) {
    rcgc_blocking_begin();
    sleep_ms(ms);
    rcgc_blocking_end();
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

typedef struct {
    char *text;             /* the file, split in place */
    char *header;
    size_t nrows;
    char *(*rows)[NCOL];    /* fields of each row */
    int bad_fields;         /* rows without exactly NCOL fields */
} csv;

static void csv_free(csv *c) {
    free(c->text);
    free(c->rows);
    memset(c, 0, sizeof *c);
}

/* Read and split the file; fails the test if it cannot be read. */
static void csv_read(csv *c, const char *path) {
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t cap = 1 << 16, len = 0;
    c->text = malloc(cap);
    assert_non_null(c->text);
    for (;;) {
        if (len + 4096 > cap) {
            cap *= 2;
            c->text = realloc(c->text, cap);
            assert_non_null(c->text);
        }
        size_t n = fread(c->text + len, 1, cap - len - 1, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    c->text[len] = '\0';
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += c->text[i] == '\n';
    c->rows = calloc(lines + 1, sizeof *c->rows);
    assert_non_null(c->rows);
    char *save = NULL;
    for (char *line = strtok_r(c->text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!c->header) {
            c->header = line;
            continue;
        }
        int n = 0;
        char *p = line;
        for (;;) {
            char *comma = strchr(p, ',');
            if (n < NCOL)
                c->rows[c->nrows][n] = p;
            n++;
            if (!comma)
                break;
            *comma = '\0';
            p = comma + 1;
        }
        if (n != NCOL)
            c->bad_fields++;
        else
            c->nrows++;
    }
}

static int is_kind(char *const *row, const char *kind) { return strcmp(row[C_KIND], kind) == 0; }

static size_t count_kind(const csv *c, const char *kind) {
    size_t n = 0;
    for (size_t i = 0; i < c->nrows; i++)
        n += is_kind(c->rows[i], kind);
    return n;
}

static double num(const char *s) {
    char *end;
    double v = strtod(s, &end);
    assert_true(*s && *end == '\0');    /* a number, nothing else */
    return v;
}

static unsigned long long unum(const char *s) {
    char *end;
    assert_true(*s >= '0' && *s <= '9');
    unsigned long long v = strtoull(s, &end, 10);
    assert_true(*end == '\0');
    return v;
}

/* Every row: the right fields filled for its kind, the others empty;
 * sample times increase; numbers are numbers. */
static void csv_check(const csv *c) {
    char expect[1024] = "";
    for (int i = 0; i < NCOL; i++) {
        strcat(expect, columns[i]);
        if (i + 1 < NCOL)
            strcat(expect, ",");
    }
    assert_non_null(c->header);
    assert_string_equal(c->header, expect);
    assert_int_equal(c->bad_fields, 0);
    double last_sample = -1;
    for (size_t i = 0; i < c->nrows; i++) {
        char *const *r = c->rows[i];
        double t = num(r[C_TIME]);
        assert_true(t >= 0);
        if (is_kind(r, "sample")) {
            assert_true(t >= last_sample);
            last_sample = t;
            assert_true(unum(r[C_RSS]) > 0);
            assert_true(unum(r[C_COMMITTED]) <= unum(r[C_RESERVED]));
            (void)unum(r[C_HEAP]);
            assert_true(unum(r[C_TRACKED]) <= unum(r[C_LIVE]));
            assert_true(unum(r[C_THREADS]) >= 1);
            (void)unum(r[C_COLLECTIONS]);
            for (int k = C_GC_KIND; k < NCOL; k++)
                assert_string_equal(r[k], "");
        } else {
            assert_true(is_kind(r, "gc"));
            for (int k = C_RSS; k < C_COLLECTIONS; k++)
                assert_string_equal(r[k], "");
            assert_true(unum(r[C_COLLECTIONS]) >= 1);
            const char *g = r[C_GC_KIND];
            assert_true(!strcmp(g, "young") || !strcmp(g, "full") || !strcmp(g, "young_aborted") ||
                        !strcmp(g, "full_aborted"));
            double pause = num(r[C_PAUSE]), duration = num(r[C_DURATION]);
            assert_true(pause >= 0);
            assert_true(duration >= pause);
            assert_true(unum(r[C_WORKERS]) >= 1);
            assert_true(unum(r[C_CANDIDATES]) >= unum(r[C_UNREACHABLE]));
            assert_true(unum(r[C_UNREACHABLE]) >= unum(r[C_COLLECTED]));
            (void)unum(r[C_UNCOLLECTABLE]);
            (void)unum(r[C_FINALIZED]);
            (void)unum(r[C_RESURRECTED]);
        }
    }
}

/* ------------------------------------------------------------------------
 * A tracked object with two references
 * ------------------------------------------------------------------------ */

typedef struct node {
    void *a, *b;
    char pad[48];
} node;

static int node_traverse(void *self, rcgc_visit_fn visit, void *arg) {
    node *n = self;
    RCGC_VISIT(n->a);
    RCGC_VISIT(n->b);
    return 0;
}

static void node_clear(void *self) {
    node *n = self;
    void *a = n->a, *b = n->b;
    n->a = n->b = NULL;
    rcgc_xdecref(a);
    rcgc_xdecref(b);
}

static const rcgc_type node_type = {
    .name = "profile_test.node",
    .size = sizeof(node),
    .traverse = node_traverse,
    .clear = node_clear,
};

/* Untracked: no traverse. */
static const rcgc_type leaf_type = {
    .name = "profile_test.leaf",
    .size = 24,
};

/* n two-object cycles, dropped: 2n garbage objects. */
static size_t make_garbage_cycles(size_t n) {
    for (size_t i = 0; i < n; i++) {
        node *x = rcgc_new(&node_type), *y = rcgc_new(&node_type);
        if (!x || !y)
            return 0;
        rcgc_set(&x->a, y);
        rcgc_set(&y->a, x);
        rcgc_decref(x);
        rcgc_decref(y);
    }
    return 2 * n;
}

/* ------------------------------------------------------------------------
 * Setup: each test initialises the runtime itself (some through the
 * environment); teardown shuts down whatever is left.
 * ------------------------------------------------------------------------ */

static int setup(void **state) {
    (void)state;
    unsetenv("RCGC_PROFILE");
    unsetenv("RCGC_PROFILE_INTERVAL");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unsetenv("RCGC_PROFILE");
    unsetenv("RCGC_PROFILE_INTERVAL");
    if (rcgc_is_attached()) {
        if (test_release_workers())
            return -1;
        rcgc_shutdown();
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------ */

/* The header names the promised columns; rows reach the file while the
 * program runs; sample rows come at the interval; figures follow what the
 * program holds. */
static void test_header_and_samples(void **state) {
    TEST_BEGIN(state);
    char path[512];
    tmp_path(path, sizeof path, "samples.csv");
    assert_int_equal(rcgc_init(NULL), 0);
    assert_int_equal(rcgc_profile_is_running(), 0);
    assert_int_equal(rcgc_profile_start(path, 10), 0);
    assert_int_equal(rcgc_profile_is_running(), 1);

    /* Written at every tick: the first row shows up while sampling. */
    int seen = 0;
    for (int i = 0; i < 10000 && !seen; i++) {
        csv c;
        csv_read(&c, path);
        csv_check(&c);
        seen = count_kind(&c, "sample") >= 1;
        csv_free(&c);
        if (!seen)
            sleep_ms_blocking(1);
    }
    assert_true(seen);

    /* Objects held at the final row: N tracked, M untracked. */
    enum { N = 2000, M = 700 };
    void **held = rcgc_malloc((N + M) * sizeof *held);
    assert_non_null(held);
    for (int i = 0; i < N + M; i++) {
        held[i] = rcgc_new(i < N ? &node_type : &leaf_type);
        assert_non_null(held[i]);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sleep_ms_blocking(1000);    /* 100 intervals */
    assert_int_equal(rcgc_profile_stop(), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(rcgc_profile_is_running(), 0);
    double elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

    csv c;
    csv_read(&c, path);
    csv_check(&c);
    size_t samples = count_kind(&c, "sample");
    /* The first row, the final one, and at least one tick in between; at
     * most one per interval (ticks are on a fixed schedule) plus the final
     * one, over the whole run (a generous bound on the time before t0). */
    assert_true(samples >= 3);
    double span = num(c.rows[c.nrows - 1][C_TIME]);
    assert_true(span >= elapsed * 0.99);
    assert_true((double)samples <= span / 0.010 + 2);
    char *const *last = c.rows[c.nrows - 1];
    assert_true(is_kind(last, "sample"));
    /* Exact: one quiet thread, nothing freed by another. */
    assert_int_equal(unum(last[C_LIVE]), N + M);
    assert_int_equal(unum(last[C_TRACKED]), N);
    assert_true(unum(last[C_HEAP]) >= N * sizeof(node));
    assert_true(unum(last[C_COMMITTED]) >= unum(last[C_HEAP]));
    assert_int_equal(unum(last[C_THREADS]), 1);
    /* The same figures as rcgc_stats_get, on a quiet heap. */
    rcgc_stats st = test_stats();
    assert_int_equal(unum(last[C_HEAP]), st.bytes_in_use);
    assert_int_equal(unum(last[C_COMMITTED]), st.bytes_committed);
    assert_int_equal(unum(last[C_RESERVED]), st.bytes_reserved);
    assert_int_equal(unum(last[C_COLLECTIONS]), test_stats().gc_collections);
    csv_free(&c);

    for (int i = 0; i < N + M; i++)
        rcgc_decref(held[i]);
    rcgc_free(held);
    rcgc_shutdown();
    unlink(path);
}

/* One gc row per collection, with its kind, pause and what it found. */
static void test_gc_rows(void **state) {
    TEST_BEGIN(state);
    char path[512];
    tmp_path(path, sizeof path, "gc.csv");
    assert_int_equal(rcgc_init(NULL), 0);
    rcgc_gc_disable();      /* only the collections made here */
    assert_int_equal(rcgc_profile_start(path, 1000), 0);

    size_t g1 = make_garbage_cycles(300);
    assert_int_equal(rcgc_collect(), g1);
    size_t g2 = make_garbage_cycles(50);
    assert_int_equal(rcgc_collect_young(), g2);
    assert_int_equal(rcgc_collect(), 0);
    rcgc_gc_stats gs;
    rcgc_gc_get_stats(&gs);
    assert_int_equal(gs.collections, 3);
    assert_int_equal(rcgc_profile_stop(), 0);

    csv c;
    csv_read(&c, path);
    csv_check(&c);
    assert_int_equal(count_kind(&c, "gc"), 3);
    const size_t want_unreachable[3] = {g1, g2, 0};
    const char *want_kind[3] = {"full", "young", "full"};
    unsigned seen = 0;
    double prev_t = -1;
    for (size_t i = 0; i < c.nrows; i++) {
        char *const *r = c.rows[i];
        if (!is_kind(r, "gc"))
            continue;
        unsigned long long n = unum(r[C_COLLECTIONS]);
        assert_int_equal(n, seen + 1);      /* in order, none missing */
        assert_string_equal(r[C_GC_KIND], want_kind[seen]);
        assert_int_equal(unum(r[C_UNREACHABLE]), want_unreachable[seen]);
        assert_int_equal(unum(r[C_COLLECTED]), want_unreachable[seen]);
        assert_int_equal(unum(r[C_UNCOLLECTABLE]), 0);
        assert_int_equal(unum(r[C_FINALIZED]), 0);
        assert_true(unum(r[C_CANDIDATES]) >= want_unreachable[seen]);
        assert_true(num(r[C_PAUSE]) >= 0);
        assert_true(num(r[C_TIME]) >= prev_t);
        prev_t = num(r[C_TIME]);
        seen++;
    }
    assert_int_equal(seen, 3);
    /* The final sample counts them. */
    assert_int_equal(unum(c.rows[c.nrows - 1][C_COLLECTIONS]), 3);
    csv_free(&c);
    rcgc_shutdown();
    unlink(path);
}

static int collect_many_stop;
static void collect_many(void *arg) {
    size_t n = *(size_t *)arg;
    for (size_t i = 0; i < n; i++)
        rcgc_collect_young();
    collect_many_stop = rcgc_profile_stop();
}

static void collect_many_keep(void *arg) {
    size_t n = *(size_t *)arg;
    for (size_t i = 0; i < n; i++)
        rcgc_collect_young();
}

static void stop_only(void *arg) {
    (void)arg;
    collect_many_stop = rcgc_profile_stop();
}

/* The number of lost collection rows that rcgc_profile_stop reported. */
static unsigned long long lost_rows(const char *err) {
    unsigned long long lost = 0;
    const char *p = strstr(err, "rcgc: profile: ");
    if (p)
        assert_int_equal(sscanf(p, "rcgc: profile: %llu collection row(s)", &lost), 1);
    return lost;
}

/* More collections than the ring holds, with an hour between ticks: the
 * collector wakes the sampler when the ring is half full, and every
 * collection is either a row or counted as lost on stderr (none, unless
 * the sampler was starved for 512 collections). */
static void test_gc_ring(void **state) {
    TEST_BEGIN(state);
    char path[512];
    tmp_path(path, sizeof path, "ring.csv");
    assert_int_equal(rcgc_init(NULL), 0);
    rcgc_gc_disable();
    assert_int_equal(rcgc_profile_start(path, 3600000), 0);
    size_t n = TEST_SCALE(3000, 1500);
    char err[1024];
    capture_stderr(collect_many, &n, err, sizeof err);
    assert_int_equal(collect_many_stop, 0);
    unsigned long long lost = lost_rows(err);
    csv c;
    csv_read(&c, path);
    csv_check(&c);
    size_t rows = count_kind(&c, "gc");
    print_message("ring: %zu collections, %zu rows, %llu lost\n", n, rows, lost);
    assert_int_equal(rows + lost, n);
    assert_true(rows >= 1024);      /* what the ring holds with no sampler at all */
    assert_int_equal(count_kind(&c, "sample"), 2);  /* half-full wake-ups write no sample */
    /* In order, no duplicates. */
    unsigned long long prev = 0;
    for (size_t i = 0; i < c.nrows; i++) {
        if (!is_kind(c.rows[i], "gc"))
            continue;
        unsigned long long k = unum(c.rows[i][C_COLLECTIONS]);
        assert_true(k > prev);
        assert_string_equal(c.rows[i][C_GC_KIND], "young");
        prev = k;
    }
    csv_free(&c);
    rcgc_shutdown();
    unlink(path);
}

/* A reader of a FIFO that reads the header, stops reading (so that the
 * sampler blocks in write once the pipe is full), then reads the rest to
 * the end into a file. Unattached. */
typedef struct {
    const char *fifo, *copy;
    test_gate *gate;
    int ok;
} fifo_reader_arg;

static void *fifo_reader(void *p) {
    fifo_reader_arg *a = p;
    int in = open(a->fifo, O_RDONLY);
    int out = open(a->copy, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0)
        return NULL;
    char buf[4096];
    int first = 1;
    for (;;) {
        ssize_t n = read(in, buf, first ? 64 : sizeof buf);   /* some of the header */
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (write(out, buf, (size_t)n) != n)
            break;
        if (first) {
            first = 0;
            test_gate_wait_raw(a->gate, 1);     /* stop reading: the pipe fills */
        }
    }
    close(in);
    close(out);
    a->ok = 1;
    return NULL;
}

/* A sampler stuck in write(2) (a FIFO nobody reads) holds up no
 * collection: the ring fills, rows are dropped and counted, and every row
 * that is written is whole. */
static void test_gc_ring_full(void **state) {
    TEST_BEGIN(state);
    char fifo[512], copy[512];
    tmp_path(fifo, sizeof fifo, "ring.fifo");
    tmp_path(copy, sizeof copy, "ring_copy.csv");
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(rcgc_init(NULL), 0);
    rcgc_gc_disable();
    test_gate gate;
    test_gate_init(&gate);
    fifo_reader_arg arg = {fifo, copy, &gate, 0};
    pthread_t reader = test_thread_start(fifo_reader, &arg);
    rcgc_blocking_begin();      /* open waits for the reader */
    int rc = rcgc_profile_start(fifo, 1);
    rcgc_blocking_end();
    assert_int_equal(rc, 0);
    /* A pipe holds 64 KiB (about 650 gc rows), the ring 1024 rows. */
    size_t n = 4000;
    char err[1024];
    capture_stderr(collect_many_keep, &n, err, sizeof err);
    test_gate_set(&gate, 1);    /* read again: the sampler gets going */
    capture_stderr(stop_only, NULL, err, sizeof err);
    assert_int_equal(collect_many_stop, 0);
    test_thread_join(reader);
    assert_true(arg.ok);
    unsigned long long lost = lost_rows(err);
    csv c;
    csv_read(&c, copy);
    csv_check(&c);
    size_t rows = count_kind(&c, "gc");
    print_message("ring full: %zu collections, %zu rows, %llu lost\n", n, rows, lost);
    assert_true(lost > 0);
    assert_int_equal(rows + lost, n);
    assert_true(count_kind(&c, "sample") >= 2);
    csv_free(&c);
    rcgc_shutdown();
    unlink(fifo);
    unlink(copy);
}

/* RCGC_PROFILE starts the sampler in rcgc_init, rcgc_shutdown stops it;
 * rcgc_config's fields win over the environment. */
static void test_options(void **state) {
    TEST_BEGIN(state);
    char env_path[512], cfg_path[512];
    tmp_path(env_path, sizeof env_path, "env.csv");
    tmp_path(cfg_path, sizeof cfg_path, "cfg.csv");
    unlink(env_path);
    unlink(cfg_path);

    /* The environment alone: an hour's interval gives exactly the first
     * and the final rows. */
    setenv("RCGC_PROFILE", env_path, 1);
    setenv("RCGC_PROFILE_INTERVAL", "3600000", 1);
    assert_int_equal(rcgc_init(NULL), 0);
    assert_int_equal(rcgc_profile_is_running(), 1);
    assert_int_equal(rcgc_profile_start(cfg_path, 0), EBUSY);  /* one at a time */
    sleep_ms_blocking(200);
    rcgc_shutdown();
    assert_int_equal(rcgc_profile_is_running(), 0);
    csv c;
    csv_read(&c, env_path);
    csv_check(&c);
    assert_int_equal(count_kind(&c, "sample"), 2);
    csv_free(&c);
    assert_false(file_exists(cfg_path));
    unlink(env_path);

    /* Config fields over the environment: the file and the interval. */
    rcgc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.profile = cfg_path;
    cfg.profile_interval_ms = 10;
    assert_int_equal(rcgc_init(&cfg), 0);
    assert_int_equal(rcgc_profile_is_running(), 1);
    sleep_ms_blocking(1000);
    rcgc_shutdown();
    assert_false(file_exists(env_path));
    csv_read(&c, cfg_path);
    csv_check(&c);
    assert_true(count_kind(&c, "sample") >= 3);
    csv_free(&c);
    unlink(cfg_path);

    /* "%p" is the process id. */
    char want[512], dir[512];
    snprintf(dir, sizeof dir, "%s/profile_test_%ld_pid", tmpdir(), (long)getpid());
    assert_true(mkdir(dir, 0777) == 0 || errno == EEXIST);
    char pattern[600];
    snprintf(pattern, sizeof pattern, "%s/%%%%p-literal-%%p.csv", dir);
    setenv("RCGC_PROFILE", pattern, 1);
    snprintf(want, sizeof want, "%s/%%p-literal-%ld.csv", dir, (long)getpid());
    assert_int_equal(rcgc_init(NULL), 0);
    rcgc_shutdown();
    assert_true(file_exists(want));
    unlink(want);
    rmdir(dir);

    /* Unset, or empty: no sampler, no file. */
    setenv("RCGC_PROFILE", "", 1);
    assert_int_equal(rcgc_init(NULL), 0);
    assert_int_equal(rcgc_profile_is_running(), 0);
    assert_int_equal(rcgc_profile_stop(), ENOENT);
    rcgc_shutdown();
}

/* A program that shuts rcgc down and initialises it again with the same
 * RCGC_PROFILE keeps one file: later runtimes append, on the same time
 * axis. rcgc_profile_start truncates. */
static void test_reinit_appends(void **state) {
    TEST_BEGIN(state);
    char path[512];
    tmp_path(path, sizeof path, "reinit.csv");
    unlink(path);
    setenv("RCGC_PROFILE", path, 1);
    setenv("RCGC_PROFILE_INTERVAL", "3600000", 1);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(rcgc_init(NULL), 0);
        rcgc_gc_disable();
        make_garbage_cycles(5 + round);
        assert_int_equal(rcgc_collect(), 10 + 2 * round);
        rcgc_shutdown();
    }
    csv c;
    csv_read(&c, path);
    csv_check(&c);      /* one header; sample times never go back */
    assert_int_equal(count_kind(&c, "sample"), 6);
    assert_int_equal(count_kind(&c, "gc"), 3);
    int round = 0;
    for (size_t i = 0; i < c.nrows; i++) {
        if (!is_kind(c.rows[i], "gc"))
            continue;
        assert_int_equal(unum(c.rows[i][C_COLLECTIONS]), 1);   /* counted per runtime */
        assert_int_equal(unum(c.rows[i][C_UNREACHABLE]), 10 + 2 * round);
        round++;
    }
    csv_free(&c);

    /* An explicit start truncates; the next rcgc_init starts afresh. */
    unsetenv("RCGC_PROFILE");
    assert_int_equal(rcgc_init(NULL), 0);
    assert_int_equal(rcgc_profile_start(path, 3600000), 0);
    assert_int_equal(rcgc_profile_stop(), 0);
    rcgc_shutdown();
    csv_read(&c, path);
    csv_check(&c);
    assert_int_equal(count_kind(&c, "sample"), 2);
    csv_free(&c);
    setenv("RCGC_PROFILE", path, 1);
    assert_int_equal(rcgc_init(NULL), 0);
    rcgc_shutdown();
    csv_read(&c, path);
    csv_check(&c);
    assert_int_equal(count_kind(&c, "sample"), 2);
    csv_free(&c);
    unlink(path);
}

/* Run fn with stderr going to a file; return what it wrote. */
static void capture_stderr(void (*fn)(void *), void *arg, char *out, size_t cap) {
    char path[512];
    tmp_path(path, sizeof path, "stderr.txt");
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDERR_FILENO);
    fn(arg);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    ssize_t n = pread(fd, out, cap - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
}

static int init_rc;
static void init_null(void *arg) {
    (void)arg;
    init_rc = rcgc_init(NULL);
}

/* A file that cannot be written: rcgc_init goes on without the sampler,
 * after one line on stderr naming the file and the error; the call
 * returns the errno. */
static void test_unwritable(void **state) {
    TEST_BEGIN(state);
    char path[512];
    snprintf(path, sizeof path, "%s/profile_test_no_such_dir_%ld/x.csv", tmpdir(), (long)getpid());
    setenv("RCGC_PROFILE", path, 1);
    char err[2048];
    capture_stderr(init_null, NULL, err, sizeof err);
    assert_int_equal(init_rc, 0);
    assert_int_equal(rcgc_profile_is_running(), 0);
    assert_non_null(strstr(err, "RCGC_PROFILE"));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, strerror(ENOENT)));
    assert_int_equal(strchr(err, '\n') - err + 1, (long)strlen(err));  /* one line */
    /* The runtime works. */
    void *o = rcgc_new(&node_type);
    assert_non_null(o);
    rcgc_decref(o);

    assert_int_equal(rcgc_profile_start(path, 0), ENOENT);
    if (file_exists("/dev/full"))
        assert_int_equal(rcgc_profile_start("/dev/full", 0), ENOSPC);  /* the header's write */
    assert_int_equal(rcgc_profile_start(NULL, 0), EINVAL);
    assert_int_equal(rcgc_profile_start("", 0), EINVAL);
    char ok[512];
    tmp_path(ok, sizeof ok, "ok.csv");
    assert_int_equal(rcgc_profile_start(ok, 3600001), EINVAL);
    assert_int_equal(rcgc_profile_is_running(), 0);
    rcgc_shutdown();
    assert_int_equal(rcgc_profile_start(ok, 0), EINVAL);   /* not initialised */
    assert_false(file_exists(ok));
}

/* Start and stop, twice, in one runtime and across runtimes. */
static void test_start_stop_twice(void **state) {
    TEST_BEGIN(state);
    char a[512], b[512];
    tmp_path(a, sizeof a, "a.csv");
    tmp_path(b, sizeof b, "b.csv");
    assert_int_equal(rcgc_init(NULL), 0);
    assert_int_equal(rcgc_profile_stop(), ENOENT);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(rcgc_profile_start(a, 5), 0);
        assert_int_equal(rcgc_profile_start(b, 5), EBUSY);
        make_garbage_cycles(10);
        assert_int_equal(rcgc_collect(), 20);
        assert_int_equal(rcgc_profile_stop(), 0);
        assert_int_equal(rcgc_profile_stop(), ENOENT);
        assert_int_equal(rcgc_profile_start(b, 5), 0);
        assert_int_equal(rcgc_collect(), 0);
        assert_int_equal(rcgc_profile_stop(), 0);

        csv c;
        csv_read(&c, a);    /* truncated by the second round's start */
        csv_check(&c);
        assert_int_equal(count_kind(&c, "gc"), 1);
        assert_true(count_kind(&c, "sample") >= 2);
        csv_free(&c);
        csv_read(&c, b);
        csv_check(&c);
        assert_int_equal(count_kind(&c, "gc"), 1);
        csv_free(&c);
    }
    /* Left running: rcgc_shutdown stops it, the next runtime starts anew. */
    assert_int_equal(rcgc_profile_start(a, 5), 0);
    rcgc_shutdown();
    assert_int_equal(rcgc_profile_is_running(), 0);
    assert_int_equal(rcgc_init(NULL), 0);
    assert_int_equal(rcgc_profile_start(a, 5), 0);
    assert_int_equal(rcgc_profile_stop(), 0);
    rcgc_shutdown();
    unlink(a);
    unlink(b);
}

static void fork_child(void *arg) {
    (void)arg;
    /* No sampler here: stop forgets the parent's without waiting. */
    int running = rcgc_profile_is_running();
    int stop = rcgc_profile_stop();
    int again = rcgc_profile_stop();
    printf("child running=%d stop=%d again=%d\n", running, stop, again);
    fflush(stdout);
}

/* A forked child writes nothing into the parent's file. */
static void test_fork(void **state) {
    TEST_BEGIN(state);
    char path[512];
    tmp_path(path, sizeof path, "fork.csv");
    assert_int_equal(rcgc_init(NULL), 0);
    assert_int_equal(rcgc_profile_start(path, 2), 0);
    sleep_ms_blocking(20);
    char out[256];
    rcgc_blocking_begin();
    int status = test_fork_run(fork_child, NULL, out, sizeof out);
    rcgc_blocking_end();
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char want[128];
    snprintf(want, sizeof want, "child running=0 stop=0 again=%d\n", ENOENT);
    assert_string_equal(out, want);
    assert_int_equal(rcgc_profile_is_running(), 1);   /* the parent's goes on */
    make_garbage_cycles(5);
    assert_int_equal(rcgc_collect(), 10);
    sleep_ms_blocking(20);
    assert_int_equal(rcgc_profile_stop(), 0);
    csv c;
    csv_read(&c, path);
    csv_check(&c);   /* one header, whole rows only */
    assert_true(count_kind(&c, "gc") >= 1);
    assert_true(count_kind(&c, "sample") >= 2);
    csv_free(&c);
    rcgc_shutdown();
    unlink(path);
}

/* ------------------------------------------------------------------------
 * Several attached threads allocating (live objects, garbage cycles,
 * automatic collections) while the sampler samples every millisecond.
 * ------------------------------------------------------------------------ */

#define MT_THREADS 4

typedef struct {
    test_gate *ready, *go_home;
    _Atomic int *nready;
    size_t steps;
} mt_arg;

static void *mt_worker(void *p) {
    mt_arg *a = p;
    TEST_THREAD_CHECK(rcgc_thread_attach() == 0);
    rcgc_thread_set_name("profile-mt");
    enum { KEEP = 512 };
    void *keep[KEEP] = {0};
    for (size_t i = 0; i < a->steps; i++) {
        node *x = rcgc_new(&node_type), *y = rcgc_new(&node_type);
        TEST_THREAD_CHECK(x && y);
        rcgc_set(&x->a, y);
        if (i % 3)
            rcgc_set(&y->a, x);     /* a cycle: only the collector frees it */
        rcgc_decref(y);
        void *old = keep[i % KEEP];
        keep[i % KEEP] = x;         /* a sliding window stays alive */
        rcgc_xdecref(old);
        void *raw = rcgc_malloc(16 + i % 200);
        TEST_THREAD_CHECK(raw);
        rcgc_free(raw);
    }
    /* Done: stay attached, holding the window, until the final row. */
    atomic_fetch_add(a->nready, 1);
    test_gate_set(a->ready, 1);
    test_gate_wait(a->go_home, 1);
    for (int i = 0; i < KEEP; i++)
        rcgc_xdecref(keep[i]);
    rcgc_thread_detach();
    return NULL;
}

static void test_multithreaded(void **state) {
    TEST_BEGIN(state);
    char path[512];
    tmp_path(path, sizeof path, "mt.csv");
    rcgc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.gc_threshold = 500;
    cfg.profile = path;
    cfg.profile_interval_ms = 1;
    assert_int_equal(rcgc_init(&cfg), 0);
    assert_int_equal(rcgc_profile_is_running(), 1);

    test_gate ready, go_home;
    test_gate_init(&ready);
    test_gate_init(&go_home);
    _Atomic int nready = 0;
    mt_arg arg = {&ready, &go_home, &nready, TEST_SCALE(60000, 8000)};
    for (int i = 0; i < MT_THREADS; i++)
        test_thread_start(mt_worker, &arg);
    for (int done = 0; done < MT_THREADS;) {
        test_gate_wait(&ready, 1);
        done = atomic_load(&nready);
        if (done < MT_THREADS)
            sleep_ms_blocking(1);
    }
    /* Every worker attached: the final row counts them. */
    rcgc_gc_stats gs;
    rcgc_gc_get_stats(&gs);
    assert_int_equal(rcgc_profile_stop(), 0);
    test_gate_set(&go_home, 1);
    while (test_nthreads)
        test_thread_join(test_threads[test_nthreads - 1]);

    csv c;
    csv_read(&c, path);
    csv_check(&c);
    size_t gc_rows = count_kind(&c, "gc");
    print_message("mt: %zu rows, %zu samples, %zu gc rows, %llu collections\n", c.nrows,
                  count_kind(&c, "sample"), gc_rows, (unsigned long long)gs.collections);
    assert_true(gs.collections >= 1);
    /* The ring holds 1024 rows even if the sampler never ran. */
    if (gs.collections <= 1024)
        assert_int_equal(gc_rows, gs.collections);
    else
        assert_true(gc_rows >= 1024);
    char *const *last = c.rows[c.nrows - 1];
    assert_true(is_kind(last, "sample"));
    assert_int_equal(unum(last[C_THREADS]), MT_THREADS + 1);
    assert_true(unum(last[C_LIVE]) >= MT_THREADS * 512);
    assert_true(count_kind(&c, "sample") >= 2);
    csv_free(&c);

    /* The plot tool on this file, if gnuplot is installed. */
    if (plot_tool && system("command -v gnuplot >/dev/null 2>&1") == 0) {
        /* Run from an empty directory, which it must leave empty. */
        char png[600], cmd[4096], cwd[512], tool[PATH_MAX];
        assert_non_null(realpath(plot_tool, tool));
        snprintf(png, sizeof png, "%s.png", path);
        unlink(png);
        tmp_path(cwd, sizeof cwd, "plot_cwd");
        assert_true(mkdir(cwd, 0777) == 0 || errno == EEXIST);
        snprintf(cmd, sizeof cmd, "cd '%s' && '%s' -o '%s' -t 'profile_test' '%s'", cwd, tool, png,
                 path);
        rcgc_blocking_begin();
        int rc = system(cmd);
        rcgc_blocking_end();
        assert_int_equal(rc, 0);
        DIR *d = opendir(cwd);
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                fail_msg("the plot tool left '%s' in its working directory", e->d_name);
        closedir(d);
        rmdir(cwd);
        unsigned char magic[8] = {0};
        FILE *f = fopen(png, "rb");
        assert_non_null(f);
        assert_int_equal(fread(magic, 1, 8, f), 8);
        fclose(f);
        static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        assert_memory_equal(magic, png_magic, 8);
        unlink(png);
    }
    rcgc_shutdown();
    unlink(path);
}

/* The plot tool's errors: usage, a missing file, a file that is not a
 * profile. Exit status 2, a message on stderr. */
static void test_plot_tool_errors(void **state) {
    TEST_BEGIN(state);
    if (!plot_tool)
        skip();
    char cmd[1024], bogus[512];
    snprintf(cmd, sizeof cmd, "'%s' >/dev/null 2>&1", plot_tool);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 2);
    snprintf(cmd, sizeof cmd, "'%s' /nonexistent/profile.csv >/dev/null 2>&1", plot_tool);
    rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 2);
    tmp_path(bogus, sizeof bogus, "bogus.csv");
    FILE *f = fopen(bogus, "w");
    assert_non_null(f);
    fputs("a,b,c\n1,2,3\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' '%s' >/dev/null 2>&1", plot_tool, bogus);
    rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 2);
    unlink(bogus);
}

int main(int argc, char **argv) {
    test_main_init();
    plot_tool = argc > 1 ? argv[1] : NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_header_and_samples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_ring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_ring_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reinit_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_stop_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multithreaded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plot_tool_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
