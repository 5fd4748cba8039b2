/*
 * leak_hunt: a small chat server with a slow leak, and the tools that find
 * it. docs/PROFILING.md walks through the hunt with this program.
 *
 *   cc -g -rdynamic leak_hunt.c $(pkg-config --cflags --libs rcgc) -o leak_hunt
 *   RCGC_TRACE=8 RCGC_PROFILE=profile.csv ./leak_hunt --seconds=10
 *   tools/rcgc-profile-plot profile.csv profile.png
 *   tools/rcgc-dot leak.dot leak.png
 *
 * Worker threads handle requests. A request makes a session with a few
 * messages and a receive buffer; every message points back at its
 * session, so each session is a small cycle that the cycle collector
 * frees once the worker drops it. Every 25th request also subscribes the
 * session to the global event bus through a listener that points back at
 * the session, and (the bug) never unsubscribes: the bus keeps the
 * listener, the listener the session, the session its messages and
 * buffer. Memory grows slowly; nothing crashes.
 *
 * Every --report seconds, main prints what grew: the object types
 * (rcgc_objgraph_show_growth) and, with tracing on, the allocation sites
 * (rcgc_trace_print_top against the previous snapshot). At the end it
 * prints the chain of references that keeps the newest leaked session
 * alive (rcgc_objgraph_find_chain) and writes the graph around it to
 * leak.dot (rcgc_objgraph_dot_path).
 *
 *   --threads=N   workers (default 4)      --seconds=S  run time (default 10)
 *   --report=S    seconds between reports  --fixed      unsubscribe (no leak)
 *   --dot=PATH    the graph (default leak.dot; "" for none)
 *   --check       exit 1 unless the tools found the leak (the chain from the
 *                 bus; as many sessions alive as listeners on the bus) or,
 *                 with --fixed, no session alive: the example's test
 */
#include <errno.h>
#include <pthread.h>
#include <rcgc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Types
 * ------------------------------------------------------------------------ */

#define MESSAGES 4

typedef struct session {
    void *listener;             /* while subscribed */
    void *messages[MESSAGES];
    char *buffer;               /* rcgc_malloc'd receive buffer */
    long id;
} session;

typedef struct message {
    void *session;              /* back pointer: session <-> message cycles */
    char text[48];
} message;

typedef struct listener {
    void *session;
    long topic;
} listener;

/* The event bus: a growing array of listeners, under a mutex. */
typedef struct bus {
    void **items;               /* rcgc_malloc'd */
    size_t n, cap;
} bus;

static int visit_all(void *const *slots, size_t n, rcgc_visit_fn visit, void *arg) {
    for (size_t i = 0; i < n; i++)
        if (slots[i]) {
            int r = visit(slots[i], arg);
            if (r)
                return r;
        }
    return 0;
}

static void clear_all(void **slots, size_t n) {
    for (size_t i = 0; i < n; i++) {
        void *o = slots[i];
        slots[i] = NULL;
        rcgc_xdecref(o);
    }
}

static int session_traverse(void *o, rcgc_visit_fn visit, void *arg) {
    session *s = o;
    int r = s->listener ? visit(s->listener, arg) : 0;
    return r ? r : visit_all(s->messages, MESSAGES, visit, arg);
}
static void session_clear(void *o) {
    session *s = o;
    clear_all(&s->listener, 1);
    clear_all(s->messages, MESSAGES);
}
static void session_destroy(void *o) {
    session *s = o;
    rcgc_free(s->buffer);
    s->buffer = NULL;
}

static int message_traverse(void *o, rcgc_visit_fn visit, void *arg) {
    message *m = o;
    return m->session ? visit(m->session, arg) : 0;
}
static void message_clear(void *o) { clear_all(&((message *)o)->session, 1); }

static int listener_traverse(void *o, rcgc_visit_fn visit, void *arg) {
    listener *l = o;
    return l->session ? visit(l->session, arg) : 0;
}
static void listener_clear(void *o) { clear_all(&((listener *)o)->session, 1); }

static int bus_traverse(void *o, rcgc_visit_fn visit, void *arg) {
    bus *b = o;
    return visit_all(b->items, b->n, visit, arg);
}
static void bus_clear(void *o) {
    bus *b = o;
    clear_all(b->items, b->n);
    b->n = 0;
}
static void bus_destroy(void *o) {
    bus *b = o;
    rcgc_free(b->items);
    b->items = NULL;
}

static const rcgc_type session_type = {.name = "session", .size = sizeof(session),
    .traverse = session_traverse, .clear = session_clear, .destroy = session_destroy};
static const rcgc_type message_type = {.name = "message", .size = sizeof(message),
    .traverse = message_traverse, .clear = message_clear};
static const rcgc_type listener_type = {.name = "listener", .size = sizeof(listener),
    .traverse = listener_traverse, .clear = listener_clear};
static const rcgc_type bus_type = {.name = "event_bus", .size = sizeof(bus),
    .traverse = bus_traverse, .clear = bus_clear, .destroy = bus_destroy};

/* ------------------------------------------------------------------------
 * The server
 * ------------------------------------------------------------------------ */

static bus *the_bus;
static pthread_mutex_t bus_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stopping;
static atomic_long requests;
static int fixed;

/* Lock the bus without holding up a pause while we wait. */
static void bus_lock_acquire(void) {
    rcgc_blocking_begin();
    pthread_mutex_lock(&bus_lock);
    rcgc_blocking_end();
}

/* Add l to the bus (the bus takes a reference). */
static int subscribe(listener *l) {
    bus_lock_acquire();
    int err = 0;
    if (the_bus->n == the_bus->cap) {
        size_t cap = the_bus->cap ? the_bus->cap * 2 : 64;
        void **items = rcgc_malloc(cap * sizeof *items);
        if (!items) {
            err = ENOMEM;
        } else {
            if (the_bus->n)
                memcpy(items, the_bus->items, the_bus->n * sizeof *items);
            rcgc_free(the_bus->items);
            the_bus->items = items;
            the_bus->cap = cap;
        }
    }
    if (!err) {
        rcgc_incref(l);
        the_bus->items[the_bus->n++] = l;
    }
    pthread_mutex_unlock(&bus_lock);
    return err;
}

static void unsubscribe(listener *l) {
    bus_lock_acquire();
    for (size_t i = the_bus->n; i-- > 0;)
        if (the_bus->items[i] == l) {
            the_bus->items[i] = the_bus->items[--the_bus->n];
            pthread_mutex_unlock(&bus_lock);
            rcgc_decref(l);
            return;
        }
    pthread_mutex_unlock(&bus_lock);
}

/* Where sessions are made: the allocation site the trace report names.
 * The functions a report should name are global: dladdr sees only the
 * dynamic symbol table (link with -rdynamic); tools/rcgc-symbolize adds
 * file:line for static ones too. */
__attribute__((noinline)) session *open_session(long id) {
    session *s = rcgc_new(&session_type);
    if (!s)
        return NULL;
    s->id = id;
    s->buffer = rcgc_malloc(512);
    for (int i = 0; i < MESSAGES; i++) {
        message *m = rcgc_new(&message_type);
        if (!m)
            break;
        rcgc_incref(s);
        m->session = s;
        snprintf(m->text, sizeof m->text, "hello %ld/%d", id, i);
        s->messages[i] = m;
    }
    return s;
}

__attribute__((noinline)) listener *listen_to_topic(session *s, long topic) {
    listener *l = rcgc_new(&listener_type);
    if (!l)
        return NULL;
    rcgc_incref(s);
    l->session = s;
    l->topic = topic;
    rcgc_incref(l);
    s->listener = l;
    return l;
}

__attribute__((noinline)) void handle_request(long id) {
    session *s = open_session(id);
    if (!s)
        return;
    listener *l = NULL;
    if (id % 25 == 0) {
        l = listen_to_topic(s, id % 7);
        if (l && subscribe(l) != 0) {
            rcgc_decref(l);
            l = NULL;
        }
    }
    /* ... the request's work would go here ... */
    if (l) {
        if (fixed)
            unsubscribe(l);     /* the fix: without it, the bus keeps it all */
        rcgc_decref(l);
    }
    rcgc_decref(s);             /* the session's cycles go to the collector */
}

void *worker(void *arg) {
    long base = (long)(intptr_t)arg * 1000000000L;
    if (rcgc_thread_attach() != 0)
        return NULL;
    for (long i = 0; !atomic_load_explicit(&stopping, memory_order_relaxed); i++) {
        handle_request(base + i);
        atomic_fetch_add_explicit(&requests, 1, memory_order_relaxed);
    }
    rcgc_thread_detach();
    return NULL;
}

/* ------------------------------------------------------------------------
 * The hunt
 * ------------------------------------------------------------------------ */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    rcgc_blocking_begin();
    nanosleep(&ts, NULL);
    rcgc_blocking_end();
}

/* The newest listener's session, with a reference (NULL if none). */
static session *newest_leaked_session(void) {
    session *s = NULL;
    bus_lock_acquire();
    if (the_bus->n) {
        listener *l = the_bus->items[the_bus->n - 1];
        s = l->session;
        rcgc_incref(s);
    }
    pthread_mutex_unlock(&bus_lock);
    return s;
}

static long count_of(const char *type_name) {
    rcgc_objgraph_count *c;
    size_t n;
    long v = -1;
    if (rcgc_objgraph_counts(&c, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (c[i].type && strcmp(c[i].type->name, type_name) == 0)
            v = (long)c[i].count;
    free(c);
    return v < 0 ? 0 : v;
}

int main(int argc, char **argv) {
    int threads = 4, check = 0;
    double seconds = 10, report = 2;
    const char *dot = "leak.dot";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--threads=", 10))
            threads = atoi(a + 10);
        else if (!strncmp(a, "--seconds=", 10))
            seconds = atof(a + 10);
        else if (!strncmp(a, "--report=", 9))
            report = atof(a + 9);
        else if (!strncmp(a, "--dot=", 6))
            dot = a + 6;
        else if (!strcmp(a, "--fixed"))
            fixed = 1;
        else if (!strcmp(a, "--check"))
            check = 1;
        else {
            fprintf(stderr, "usage: %s [--threads=N] [--seconds=S] [--report=S] [--dot=PATH] "
                            "[--fixed] [--check]\n", argv[0]);
            return 2;
        }
    }
    if (threads < 1 || threads > 256 || seconds <= 0 || report <= 0) {
        fprintf(stderr, "leak_hunt: bad --threads, --seconds or --report\n");
        return 2;
    }
    int err = rcgc_init(NULL);
    if (err) {
        fprintf(stderr, "leak_hunt: rcgc_init: %s\n", strerror(err));
        return 1;
    }
    the_bus = rcgc_new(&bus_type);
    if (!the_bus)
        return 1;
    /* A root for the referrer chains: what the program holds on to. */
    rcgc_objgraph_mark_root(the_bus);

    printf("leak_hunt: %d workers for %.0f s%s%s\n", threads, seconds,
           fixed ? ", fixed (no leak)" : "",
           rcgc_trace_is_tracing() ? ", allocation tracing on" : "");
    rcgc_objgraph_show_growth(stdout, 8);   /* the reference point */

    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    for (int i = 0; i < threads; i++)
        pthread_create(&tids[i], NULL, worker, (void *)(intptr_t)i);

    rcgc_trace_snapshot *prev = rcgc_trace_is_tracing() ? rcgc_trace_take_snapshot() : NULL;
    double start = now_s(), next = start + report;
    long sessions_mid = -1;
    while (now_s() - start < seconds) {
        sleep_s(next - now_s() > 0 ? next - now_s() : 0);
        next += report;
        rcgc_stats st;
        rcgc_stats_get(&st);
        printf("\n=== t=%.1f s: %ld requests, %.1f MiB in use, %llu collections; growth:\n",
               now_s() - start, atomic_load(&requests), (double)st.bytes_in_use / 1048576.0,
               (unsigned long long)st.gc_collections);
        rcgc_objgraph_show_growth(stdout, 8);
        if (prev) {
            rcgc_trace_snapshot *cur = rcgc_trace_take_snapshot();
            if (cur) {
                rcgc_trace_print_top(stdout, cur, prev, RCGC_TRACE_BY_TRACEBACK, 3);
                rcgc_trace_snapshot_free(prev);
                prev = cur;
            }
        }
        if (sessions_mid < 0 && now_s() - start >= seconds / 2) {
            rcgc_collect();
            sessions_mid = count_of("session");
        }
        fflush(stdout);
    }
    atomic_store(&stopping, 1);
    rcgc_blocking_begin();
    for (int i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    rcgc_blocking_end();
    free(tids);
    rcgc_trace_snapshot_free(prev);

    /* Whatever a collection cannot free is held by something. */
    rcgc_collect();
    long sessions_end = count_of("session");
    bus_lock_acquire();
    size_t subscribed = the_bus->n;
    pthread_mutex_unlock(&bus_lock);
    printf("\n=== after %ld requests and a collection: %ld sessions alive (%ld at mid-run), "
           "%zu listeners on the bus\n",
           atomic_load(&requests), sessions_end, sessions_mid, subscribed);
    int found = 0;
    session *s = newest_leaked_session();
    if (s) {
        void **chain;
        size_t n;
        if (rcgc_objgraph_find_chain(s, 0, 0, &chain, &n) == 0) {
            printf("what keeps session %ld alive:\n", s->id);
            rcgc_objgraph_show_chain(stdout, chain, n);
            found = n >= 3 && rcgc_typeof(chain[0]) == &bus_type;
            rcgc_objgraph_release(chain, n);
        }
        if (*dot) {
            rcgc_objgraph_dot_opts o = {.backrefs = 1, .max_depth = 3, .max_nodes = 40};
            err = rcgc_objgraph_dot_path(dot, (void *const *)&s, 1, &o);
            if (err)
                fprintf(stderr, "leak_hunt: %s: %s\n", dot, strerror(err));
            else
                printf("graph around it: %s (render: tools/rcgc-dot %s)\n", dot, dot);
        }
        rcgc_decref(s);
    }

    /* The bus is a global that, as in many servers, is never torn down:
     * with RCGC_DEBUG=leaks, rcgc_shutdown lists what it still holds. */
    if (fixed)
        rcgc_decref(the_bus);
    rcgc_shutdown();
    if (!check)
        return 0;
    /* --check: the leak grows and the chain leads to the bus; fixed, no
     * session outlives its request. */
    int ok = fixed ? sessions_end == 0 && !found
                   : found && sessions_end > 0 && (size_t)sessions_end == subscribed;
    printf("leak_hunt: check %s\n", ok ? "passed" : "FAILED");
    return ok ? 0 : 1;
}
