/*
 * A server's hot-swappable configuration: many reader threads take the
 * current config without locks while a writer replaces it now and then.
 * The pattern rcgc_load_ref exists for (RCGC_TYPE_SHARED_READ types).
 *
 *   cc shared_config.c $(pkg-config --cflags --libs rcgc) -o shared_config
 *   ./shared_config [readers] [seconds]
 *
 * Rules of thumb shown here:
 *  - every thread that touches objects is attached (rcgc_thread_attach);
 *  - a thread that blocks (join, sleep, wait) does it inside
 *    rcgc_blocking_begin/end, and loops call rcgc_safepoint(), so that a
 *    pause never waits for it;
 *  - a slot that readers load from is written with rcgc_set.
 */
#include <pthread.h>
#include <rcgc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct config {
    long version;
    char name[48];
    long checksum;          /* version * 31: readers check it */
} config;

static void config_destroy(void *self) {
    config *c = self;
    c->checksum = -1;       /* a reader that saw this would report it */
}

static const rcgc_type config_type = {
    .name = "config",
    .size = sizeof(config),
    .destroy = config_destroy,
    .flags = RCGC_TYPE_SHARED_READ,
};

static void *current;       /* the slot: written with rcgc_set, read with rcgc_load_ref */
static int stop;

static void *reader(void *arg) {
    long *seen = arg;
    if (rcgc_thread_attach() != 0)
        return NULL;
    rcgc_thread_set_name("reader");
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        config *c = rcgc_load_ref(&current);    /* a strong reference, or NULL */
        if (c) {
            if (c->checksum != c->version * 31) {
                fprintf(stderr, "reader saw a broken config %ld\n", c->version);
                exit(1);
            }
            seen[0]++;
            rcgc_decref(c);
        }
        rcgc_safepoint();
    }
    rcgc_thread_detach();
    return NULL;
}

static config *make_config(long version) {
    config *c = rcgc_new(&config_type);     /* count 1, payload zeroed */
    if (!c)
        return NULL;
    c->version = version;
    snprintf(c->name, sizeof c->name, "config-%ld", version);
    c->checksum = version * 31;
    return c;
}

int main(int argc, char **argv) {
    int nreaders = argc > 1 ? atoi(argv[1]) : 4;
    int seconds = argc > 2 ? atoi(argv[2]) : 2;
    if (nreaders < 1 || nreaders > 64 || seconds < 0) {
        fprintf(stderr, "usage: shared_config [readers 1-64] [seconds]\n");
        return 2;
    }
    int err = rcgc_init(NULL);              /* attaches this thread */
    if (err) {
        fprintf(stderr, "rcgc_init: %s\n", strerror(err));
        return 1;
    }
    config *first = make_config(0);
    rcgc_set(&current, first);              /* the slot holds its own reference */
    rcgc_decref(first);

    pthread_t t[64];
    long seen[64][8] = {{0}};               /* one cache line each */
    for (int i = 0; i < nreaders; i++)
        pthread_create(&t[i], NULL, reader, seen[i]);

    long version = 0;
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += seconds;
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
            break;
        config *c = make_config(++version);
        if (!c)
            break;
        rcgc_set(&current, c);              /* the old config dies once readers let go */
        rcgc_decref(c);
        rcgc_blocking_begin();              /* sleeping: never hold up a pause */
        usleep(100);
        rcgc_blocking_end();
    }

    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    rcgc_blocking_begin();
    for (int i = 0; i < nreaders; i++)
        pthread_join(t[i], NULL);
    rcgc_blocking_end();
    rcgc_set(&current, NULL);

    long reads = 0;
    for (int i = 0; i < nreaders; i++)
        reads += seen[i][0];
    rcgc_stats st;
    rcgc_stats_get(&st);
    printf("%d readers, %ld configs published, %ld lock-free reads; %zu blocks in use, "
           "%zu of them freed configs waiting for a grace period (rcgc_shutdown frees them)\n",
           nreaders, version, reads, st.blocks_in_use, st.objects_shared_read_pending);
    rcgc_shutdown();
    return 0;
}
