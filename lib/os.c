/*
 * OS primitives (see os.h). Every mmap, munmap and madvise of the library
 * is in this file, and every call passes one fault-injection check.
 *
 * Cost of the check. It is compiled in every build: a relaxed fetch_add on
 * the global call count and on the site's, and relaxed loads of the two
 * armed targets. That is a few nanoseconds (a contended line at worst) on
 * a path that is about to enter the kernel for a microsecond or more, and
 * that runs once per 64 KiB page or arena, never per allocation. A
 * compile-time switch would buy nothing measurable and would make the
 * release build the one configuration whose out-of-memory paths nobody can
 * exercise (RCGC_FAULT_OS_NTH works on a user's own binary).
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "os.h"

/* ------------------------------------------------------------------------
 * Fault injection
 * ------------------------------------------------------------------------ */

/* Fallible calls made so far, and the call number that must fail (0:
 * none). Atomics: calls come from every thread. */
static _Atomic uint64_t os_calls;
static _Atomic uint64_t fail_at;
/* Mapped bytes (reservations, metadata), and bytes that could not be
 * unmapped and were given up. */
static _Atomic size_t mapped_reserved, mapped_meta;
static _Atomic size_t stranded_bytes;

void rcgc__os_fail_nth(uint64_t n) {
    uint64_t now = atomic_load_explicit(&os_calls, memory_order_relaxed);
    atomic_store_explicit(&fail_at, n ? now + n : 0, memory_order_relaxed);
}

uint64_t rcgc__os_calls(void) { return atomic_load_explicit(&os_calls, memory_order_relaxed); }

void rcgc__os_fail_site(rcgc_os_site *s, uint64_t k) {
    uint64_t now = atomic_load_explicit(&s->calls, memory_order_relaxed);
    atomic_store_explicit(&s->fail_at, k ? now + k : 0, memory_order_relaxed);
}

/* Count a call at s; true if it must fail. A site that cannot fail is
 * counted per site only. */
static bool injected_failure(rcgc_os_site *s, bool fallible) {
    uint64_t c = atomic_fetch_add_explicit(&s->calls, 1, memory_order_relaxed) + 1;
    if (!fallible)
        return false;
    uint64_t n = atomic_fetch_add_explicit(&os_calls, 1, memory_order_relaxed) + 1;
    uint64_t at = atomic_load_explicit(&fail_at, memory_order_relaxed);
    uint64_t site_at = atomic_load_explicit(&s->fail_at, memory_order_relaxed);
    if (rcgc_likely((at == 0 || n != at) && (site_at == 0 || c != site_at)))
        return false;
    atomic_fetch_add_explicit(&s->injected, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->failures, 1, memory_order_relaxed);
    return true;
}

static void real_failure(rcgc_os_site *s) {
    atomic_fetch_add_explicit(&s->failures, 1, memory_order_relaxed);
}

/* The linker gathers the site pointers of every object file between these
 * two symbols (weak: a program may have no site at all). */
extern rcgc_os_site *const __start_rcgc_os_sites[] __attribute__((weak));
extern rcgc_os_site *const __stop_rcgc_os_sites[] __attribute__((weak));

size_t rcgc__os_sites(rcgc_os_site *const **out) {
    *out = __start_rcgc_os_sites;
    if (!__start_rcgc_os_sites || !__stop_rcgc_os_sites)
        return 0;
    return (size_t)(__stop_rcgc_os_sites - __start_rcgc_os_sites);
}

void rcgc__os_sites_reset(void) {
    rcgc_os_site *const *sites;
    size_t n = rcgc__os_sites(&sites);
    for (size_t i = 0; i < n; i++) {
        atomic_store_explicit(&sites[i]->calls, 0, memory_order_relaxed);
        atomic_store_explicit(&sites[i]->failures, 0, memory_order_relaxed);
        atomic_store_explicit(&sites[i]->injected, 0, memory_order_relaxed);
        atomic_store_explicit(&sites[i]->fail_at, 0, memory_order_relaxed);
    }
}

int rcgc__os_op_fallible(int op) { return op != RCGC_OS_FREE; }

const char *rcgc__os_op_name(int op) {
    static const char *names[RCGC_OS_NOPS] = {"reserve", "alloc", "release", "purge",
                                              "free", "thread_create", "tls_set"};
    return op >= 0 && op < RCGC_OS_NOPS ? names[op] : "?";
}

void rcgc__os_mapped(size_t *reservations, size_t *metadata) {
    *reservations = atomic_load_explicit(&mapped_reserved, memory_order_relaxed);
    *metadata = atomic_load_explicit(&mapped_meta, memory_order_relaxed);
}
size_t rcgc__os_stranded_bytes(void) {
    return atomic_load_explicit(&stranded_bytes, memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * Memory
 * ------------------------------------------------------------------------ */

size_t rcgc__os_page_size(void) {
    static size_t page;
    size_t p = __atomic_load_n(&page, __ATOMIC_RELAXED);
    if (p == 0) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        __atomic_store_n(&page, p, __ATOMIC_RELAXED);
    }
    return p;
}

static void *os_map(rcgc_os_site *s, size_t size, _Atomic size_t *mapped) {
    if (injected_failure(s, true)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        real_failure(s);
        errno = ENOMEM;
        return NULL;
    }
    atomic_fetch_add_explicit(mapped, size, memory_order_relaxed);
    return p;
}

/* Unmap a range nobody can keep (trimmed ends, released metadata). If the
 * kernel refuses (a VMA split past vm.max_map_count), drop its pages so
 * that no memory stays resident, and count it as stranded. */
static void unmap_or_strand(void *p, size_t size, _Atomic size_t *mapped) {
    if (munmap(p, size) == 0) {
        atomic_fetch_sub_explicit(mapped, size, memory_order_relaxed);
        return;
    }
    (void)madvise(p, size, MADV_DONTNEED);
    atomic_fetch_sub_explicit(mapped, size, memory_order_relaxed);
    atomic_fetch_add_explicit(&stranded_bytes, size, memory_order_relaxed);
}

void *rcgc__os_reserve_aligned_at(rcgc_os_site *s, size_t size, size_t align) {
    RCGC_ASSERT((align & (align - 1)) == 0 && size % rcgc__os_page_size() == 0);
    /* Over-reserve by `align`, then trim both ends: one mmap, at most two
     * munmaps, and the result is aligned whatever the kernel chose. */
    if (size > SIZE_MAX - align) {
        atomic_fetch_add_explicit(&s->calls, 1, memory_order_relaxed);
        real_failure(s);
        errno = ENOMEM;
        return NULL;
    }
    uint8_t *raw = os_map(s, size + align, &mapped_reserved);
    if (!raw)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)raw;
    size_t tail = (uintptr_t)raw + size + align - (start + size);
    if (head)
        unmap_or_strand(raw, head, &mapped_reserved);
    if (tail)
        unmap_or_strand((uint8_t *)start + size, tail, &mapped_reserved);
    return (void *)start;
}

int rcgc__os_release_at(rcgc_os_site *s, void *p, size_t size) {
    if (injected_failure(s, true))
        return ENOMEM;
    if (munmap(p, size) != 0) {
        int err = errno;
        real_failure(s);
        return err;
    }
    atomic_fetch_sub_explicit(&mapped_reserved, size, memory_order_relaxed);
    return 0;
}

int rcgc__os_purge_at(rcgc_os_site *s, void *p, size_t size) {
    if (injected_failure(s, true))
        return ENOMEM;
    if (madvise(p, size, MADV_DONTNEED) != 0) {
        int err = errno;
        real_failure(s);
        return err;
    }
    return 0;
}

static size_t round_pages(size_t size) {
    size_t ps = rcgc__os_page_size();
    return (size + ps - 1) & ~(ps - 1);
}

void *rcgc__os_alloc_at(rcgc_os_site *s, size_t size) {
    return os_map(s, round_pages(size), &mapped_meta);
}

void *rcgc__os_alloc_big_at(rcgc_os_site *s, size_t size) {
    size = round_pages(size);
    void *p = os_map(s, size, &mapped_meta);
    /* A hint only: a failure leaves 4 KiB pages. */
    if (p && size >= ((size_t)2 << 20))
        (void)madvise(p, size, MADV_HUGEPAGE);
    return p;
}

void rcgc__os_free_at(rcgc_os_site *s, void *p, size_t size) {
    if (!p)
        return;
    (void)injected_failure(s, false);
    unmap_or_strand(p, round_pages(size), &mapped_meta);
}

/* ------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------ */

int rcgc__os_thread_create_at(rcgc_os_site *s, pthread_t *th, const pthread_attr_t *attr,
                              void *(*fn)(void *), void *arg) {
    if (injected_failure(s, true))
        return EAGAIN;      /* what pthread_create says when it lacks memory */
    int err = pthread_create(th, attr, fn, arg);
    if (err)
        real_failure(s);
    return err;
}

int rcgc__os_tls_set_at(rcgc_os_site *s, pthread_key_t key, const void *value) {
    if (injected_failure(s, true))
        return ENOMEM;
    int err = pthread_setspecific(key, value);
    if (err)
        real_failure(s);
    return err;
}

void rcgc__os_cond_init_monotonic(pthread_cond_t *c) {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
}
