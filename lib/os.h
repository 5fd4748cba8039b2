/*
 * OS memory primitives: the only place rcgc calls mmap, munmap and madvise.
 * Every call site goes through here so that fault injection
 * (RCGC_FAULT_OS_NTH, rcgc__os_fail_nth) can make any one of them fail.
 *
 * Thread-safety: all functions may be called from any thread.
 */
#ifndef RCGC_OS_H
#define RCGC_OS_H

#include "internal.h"

/* Reserve `size` bytes aligned to `align` (a power of two >= page size),
 * readable and writable, lazily backed. NULL + errno ENOMEM on failure. */
void *rcgc__os_reserve_aligned(size_t size, size_t align);
/* Give a reservation back to the OS. Returns 0 or errno (failure leaves the
 * mapping in place; callers keep it and count it as still reserved). */
int   rcgc__os_release(void *p, size_t size);
/* Drop the physical pages behind [p, p+size) so that RSS falls; the range
 * stays usable and reads back as zeros. 0 or errno. */
int   rcgc__os_purge(void *p, size_t size);
/* Anonymous memory for runtime metadata (thread states); zeroed. */
void *rcgc__os_alloc(size_t size);
/* The same for big, short-lived indexes over the whole heap (objgraph.c):
 * huge pages where the kernel allows them (MADV_HUGEPAGE), one fault per
 * 2 MiB instead of one per 4 KiB (a graph of 1.5M objects on this VM:
 * 1.8 s -> 0.3 s). Free with rcgc__os_free. */
void *rcgc__os_alloc_big(size_t size);
void  rcgc__os_free(void *p, size_t size);

/* Fault injection: make the nth OS call from now fail (0 disables); returns
 * the number of OS calls made so far (monotonic), so that a test can walk n
 * over every call site of a workload. */
void     rcgc__os_fail_nth(uint64_t n);
uint64_t rcgc__os_calls(void);
size_t   rcgc__os_page_size(void);

#endif
