/*
 * OS primitives: the only place rcgc calls mmap, munmap and madvise, and
 * the wrappers of the two pthread calls that can fail for lack of memory
 * (pthread_create of a collector thread, pthread_setspecific at attach).
 *
 * Fault injection. Every call site of these wrappers in the library has an
 * identity: the wrappers are macros that pass a static site record
 * (file, line, function, operation) placed in the `rcgc_os_sites` section,
 * so rcgc__os_sites() lists every site compiled into the program, whether
 * it has run or not. Each site counts its calls and failures. A test (or
 * RCGC_FAULT_OS_NTH) arms a one-shot failure: the nth fallible call from
 * now, or the kth call of one site; the call then fails as if the OS had
 * said ENOMEM (EAGAIN for thread creation) without calling it. The check
 * is always compiled: its cost is two relaxed atomic increments and two
 * loads on a path that is about to make a system call (docs/RELIABILITY.md
 * "Fault injection" has the measurements).
 *
 * Fallible operations (the caller gets NULL/errno and must cope) count in
 * rcgc__os_calls() and can be failed. Releases of metadata (rcgc__os_free)
 * cannot usefully fail: a failure only leaves the mapping in place, and no
 * caller could do anything else, so those sites are counted per site but
 * are not injection points.
 *
 * Thread-safety: all functions may be called from any thread.
 */
#ifndef RCGC_OS_H
#define RCGC_OS_H

#include <pthread.h>
#include <time.h>

#include "internal.h"

/* What a site does. */
typedef enum {
    RCGC_OS_RESERVE,    /* mmap an aligned reservation (arenas) */
    RCGC_OS_ALLOC,      /* mmap metadata (thread states, collector arrays) */
    RCGC_OS_RELEASE,    /* munmap a reservation; the caller keeps it on failure */
    RCGC_OS_PURGE,      /* madvise(MADV_DONTNEED) */
    RCGC_OS_FREE,       /* munmap metadata: not an injection point */
    RCGC_OS_THREAD,     /* pthread_create */
    RCGC_OS_TLS,        /* pthread_setspecific (may allocate the key's block) */
    RCGC_OS_NOPS
} rcgc_os_op;

/* One call site. The counters are relaxed atomics: calls come from every
 * thread; tests read them when the program is quiet. */
typedef struct rcgc_os_site {
    const char *file;
    const char *func;
    int line;
    int op;                         /* rcgc_os_op */
    _Atomic uint64_t calls;         /* calls made here */
    _Atomic uint64_t failures;      /* calls that failed, injected or real */
    _Atomic uint64_t injected;      /* of which injected */
    _Atomic uint64_t fail_at;       /* rcgc__os_fail_site: the call number to fail (0: none) */
} rcgc_os_site;

/* The site record of the call being compiled, in the section the linker
 * gathers (__start_/__stop_rcgc_os_sites): a pointer per site, so that
 * the section is a plain array whatever padding the records get. */
#define RCGC_OS_SITE_(op_)                                                                   \
    ({                                                                                       \
        static rcgc_os_site rcgc_site_ = {__FILE__, __func__, __LINE__, (op_), 0, 0, 0, 0};  \
        static rcgc_os_site *const rcgc_site_ref_                                            \
            __attribute__((used, section("rcgc_os_sites"))) = &rcgc_site_;                   \
        (void)rcgc_site_ref_;                                                                \
        &rcgc_site_;                                                                         \
    })

/* Reserve `size` bytes aligned to `align` (a power of two >= page size),
 * readable and writable, lazily backed. NULL + errno ENOMEM on failure. */
#define rcgc__os_reserve_aligned(size, align) \
    rcgc__os_reserve_aligned_at(RCGC_OS_SITE_(RCGC_OS_RESERVE), (size), (align))
/* Give a reservation back to the OS. Returns 0 or errno (failure leaves the
 * mapping in place; callers keep it and count it as still reserved). */
#define rcgc__os_release(p, size) rcgc__os_release_at(RCGC_OS_SITE_(RCGC_OS_RELEASE), (p), (size))
/* Drop the physical pages behind [p, p+size) so that RSS falls; the range
 * stays usable and reads back as zeros. 0 or errno. */
#define rcgc__os_purge(p, size) rcgc__os_purge_at(RCGC_OS_SITE_(RCGC_OS_PURGE), (p), (size))
/* Anonymous memory for runtime metadata (thread states); zeroed. NULL +
 * ENOMEM. */
#define rcgc__os_alloc(size) rcgc__os_alloc_at(RCGC_OS_SITE_(RCGC_OS_ALLOC), (size))
/* The same for big, short-lived indexes over the whole heap (objgraph.c):
 * huge pages where the kernel allows them (MADV_HUGEPAGE), one fault per
 * 2 MiB instead of one per 4 KiB (a graph of 1.5M objects on this VM:
 * 1.8 s -> 0.3 s). Free with rcgc__os_free. */
#define rcgc__os_alloc_big(size) rcgc__os_alloc_big_at(RCGC_OS_SITE_(RCGC_OS_ALLOC), (size))
/* Release metadata from rcgc__os_alloc (NULL allowed). Never fails from the
 * caller's view: if munmap does, the range is purged and stays mapped
 * (counted by rcgc__os_stranded_bytes). */
#define rcgc__os_free(p, size) rcgc__os_free_at(RCGC_OS_SITE_(RCGC_OS_FREE), (p), (size))
/* pthread_create; 0 or errno (EAGAIN when injected). */
#define rcgc__os_thread_create(th, attr, fn, arg) \
    rcgc__os_thread_create_at(RCGC_OS_SITE_(RCGC_OS_THREAD), (th), (attr), (fn), (arg))
/* pthread_setspecific of a non-NULL value; 0 or errno (ENOMEM when
 * injected: glibc allocates a block for keys past the first 32). */
#define rcgc__os_tls_set(key, value) rcgc__os_tls_set_at(RCGC_OS_SITE_(RCGC_OS_TLS), (key), (value))

void *rcgc__os_reserve_aligned_at(rcgc_os_site *s, size_t size, size_t align);
int   rcgc__os_release_at(rcgc_os_site *s, void *p, size_t size);
int   rcgc__os_purge_at(rcgc_os_site *s, void *p, size_t size);
void *rcgc__os_alloc_at(rcgc_os_site *s, size_t size);
void *rcgc__os_alloc_big_at(rcgc_os_site *s, size_t size);
void  rcgc__os_free_at(rcgc_os_site *s, void *p, size_t size);
int   rcgc__os_thread_create_at(rcgc_os_site *s, pthread_t *th, const pthread_attr_t *attr,
                                void *(*fn)(void *), void *arg);
int   rcgc__os_tls_set_at(rcgc_os_site *s, pthread_key_t key, const void *value);

size_t rcgc__os_page_size(void);

/* ------------------------------------------------------------------------
 * Fault injection and accounting (tests; RCGC_FAULT_OS_NTH calls the first)
 * ------------------------------------------------------------------------ */
/* Make the nth fallible call from now fail (0 disarms). One-shot. */
void     rcgc__os_fail_nth(uint64_t n);
/* Fallible calls made so far, all sites (monotonic): a test counts a
 * workload's calls, then walks n over them. */
uint64_t rcgc__os_calls(void);
/* Make the kth call of site s from now fail (0 disarms). One-shot; works
 * beside rcgc__os_fail_nth (two faults in one run). s must be fallible. */
void     rcgc__os_fail_site(rcgc_os_site *s, uint64_t k);
/* Every site compiled into the program (the library's, and those of any
 * test that calls the wrappers), in link order. */
size_t   rcgc__os_sites(rcgc_os_site *const **out);
/* Zero every site's counters and disarm every site. */
void     rcgc__os_sites_reset(void);
/* 1 if calls of this operation can be failed. */
int      rcgc__os_op_fallible(int op);
const char *rcgc__os_op_name(int op);
/* Bytes mapped by this layer and not unmapped since, as reservations
 * (arenas: the statistics' bytes_reserved) and as metadata (thread states,
 * collector arrays): both 0 after a clean rcgc_shutdown. */
void     rcgc__os_mapped(size_t *reservations, size_t *metadata);
/* Bytes whose munmap failed where the caller could not keep them (metadata
 * release, trimming): mapped but purged, lost to the process. */
size_t   rcgc__os_stranded_bytes(void);

/* CLOCK_MONOTONIC in nanoseconds: pause timing, purge deadlines, the
 * sampler's rows. */
static inline uint64_t rcgc__os_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Initialise c so that its timed waits measure CLOCK_MONOTONIC, the clock
 * of rcgc__os_now_ns deadlines (a default condvar measures CLOCK_REALTIME:
 * a monotonic deadline is long past there, and every wait returns at once). */
void rcgc__os_cond_init_monotonic(pthread_cond_t *c);

#endif
