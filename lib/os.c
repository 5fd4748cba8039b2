/*
 * OS memory primitives (see os.h). Every mmap, munmap and madvise of the
 * library is in this file, behind one fault-injection check.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "os.h"

/* Fault injection: os_calls counts every call; when it reaches fail_at the
 * call fails as if the OS had said ENOMEM. Both are atomics: calls come
 * from every thread. */
static _Atomic uint64_t os_calls;
static _Atomic uint64_t fail_at;

void rcgc__os_fail_nth(uint64_t n) {
    uint64_t now = atomic_load_explicit(&os_calls, memory_order_relaxed);
    atomic_store_explicit(&fail_at, n ? now + n : 0, memory_order_relaxed);
}

uint64_t rcgc__os_calls(void) { return atomic_load_explicit(&os_calls, memory_order_relaxed); }

/* True if this call must fail. One relaxed increment: the OS call that
 * follows costs a thousand times more. */
static bool injected_failure(void) {
    uint64_t n = atomic_fetch_add_explicit(&os_calls, 1, memory_order_relaxed) + 1;
    uint64_t at = atomic_load_explicit(&fail_at, memory_order_relaxed);
    return rcgc_unlikely(at != 0 && n == at);
}

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

static void *os_map(size_t size) {
    if (injected_failure()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    return p;
}

/* Unmapping part of a fresh reservation cannot usefully fail and is not an
 * injection point: the trimmed parts are simply left mapped if it does. */
static void os_trim(void *p, size_t size) {
    if (size)
        (void)munmap(p, size);
}

void *rcgc__os_reserve_aligned(size_t size, size_t align) {
    RCGC_ASSERT((align & (align - 1)) == 0 && size % rcgc__os_page_size() == 0);
    /* Over-reserve by `align`, then trim both ends: one mmap, at most two
     * munmaps, and the result is aligned whatever the kernel chose. */
    if (size > SIZE_MAX - align) {
        errno = ENOMEM;
        return NULL;
    }
    uint8_t *raw = os_map(size + align);
    if (!raw)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
    os_trim(raw, start - (uintptr_t)raw);
    os_trim((uint8_t *)start + size, (uintptr_t)raw + size + align - (start + size));
    return (void *)start;
}

int rcgc__os_release(void *p, size_t size) {
    if (injected_failure())
        return ENOMEM;
    return munmap(p, size) == 0 ? 0 : errno;
}

int rcgc__os_purge(void *p, size_t size) {
    if (injected_failure())
        return ENOMEM;
    return madvise(p, size, MADV_DONTNEED) == 0 ? 0 : errno;
}

static size_t round_pages(size_t size) {
    size_t ps = rcgc__os_page_size();
    return (size + ps - 1) & ~(ps - 1);
}

void *rcgc__os_alloc(size_t size) {
    return os_map(round_pages(size));
}

void *rcgc__os_alloc_big(size_t size) {
    size = round_pages(size);
    void *p = os_map(size);
    /* A hint only: a failure leaves 4 KiB pages. */
    if (p && size >= ((size_t)2 << 20))
        (void)madvise(p, size, MADV_HUGEPAGE);
    return p;
}

void rcgc__os_free(void *p, size_t size) {
    /* Metadata release: a failure leaks the mapping but corrupts nothing, so
     * this is not an injection point. */
    if (p)
        (void)munmap(p, round_pages(size));
}
