/*
 * Corpus replay: runs rcgc_fuzz's LLVMFuzzerTestOneInput over files and
 * folders given on the command line, without libFuzzer. This is what
 * //tests/fuzz:corpus_test runs in the default, tsan and asan
 * configurations (libFuzzer itself is built only with --config=fuzz, and
 * cannot be combined with ThreadSanitizer here), and what reproduces a
 * crash outside the fuzz build:
 *
 *     bazel-bin/tests/fuzz/corpus_test tests/fuzz/corpus crash-1234...
 *
 * A model mismatch aborts inside the target, naming the operation; this
 * driver names the file first with RCGC_FUZZ_TRACE=1. Exits 2 if no input
 * was found (an empty corpus is a packaging error, not a pass). Honours
 * Bazel's test sharding (TEST_TOTAL_SHARDS): shard i takes every n-th file.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t inputs, bytes, seen;
static size_t shard_index, shard_count = 1;    /* Bazel test sharding */
static double t_start, t_last;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run_file(const char *path) {
    if (seen++ % shard_count != shard_index)
        return 0;       /* another shard's */
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            uint8_t *b = realloc(buf, cap);
            if (!b) {
                fprintf(stderr, "%s: out of memory\n", path);
                free(buf);
                fclose(f);
                return 1;
            }
            buf = b;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    /* Named before it runs: a mismatch aborts. Quiet unless it is slow. */
    if (getenv("RCGC_FUZZ_TRACE"))
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    inputs++;
    bytes += n;
    double t = now();
    if (t - t_last >= 1.0) {
        printf("replay: %zu inputs, %.1f s\n", inputs, t - t_start);
        fflush(stdout);
        t_last = t;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return 1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path);
    DIR *d = opendir(path);
    if (!d) {
        perror(path);
        return 1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn)
                break;
            names = nn;
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        if (!names[n])
            break;
        snprintf(names[n], len, "%s/%s", path, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);     /* a fixed order: runs are reproducible */
    int err = 0;
    for (size_t i = 0; i < n; i++) {
        err |= run_path(names[i]);
        free(names[i]);
    }
    free(names);
    return err;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    /* Under `bazel test` with shard_count, each shard replays every
     * shard_count-th input (in sorted order) and says it understood. */
    const char *si = getenv("TEST_SHARD_INDEX"), *sc = getenv("TEST_TOTAL_SHARDS");
    if (si && sc && atoi(sc) > 0) {
        shard_index = (size_t)atoi(si);
        shard_count = (size_t)atoi(sc);
        const char *status = getenv("TEST_SHARD_STATUS_FILE");
        if (status) {
            FILE *f = fopen(status, "w");
            if (f)
                fclose(f);
        }
    }
    LLVMFuzzerInitialize(&argc, &argv);
    t_start = t_last = now();
    int err = 0;
    for (int i = 1; i < argc; i++)
        err |= run_path(argv[i]);
    printf("replay: %zu inputs (%zu bytes) in %.1f s, all agreed with the model", inputs, bytes,
           now() - t_start);
    if (shard_count > 1)
        printf(" (shard %zu of %zu)", shard_index + 1, shard_count);
    printf("\n");
    if (inputs == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        return 2;
    }
    return err;
}
