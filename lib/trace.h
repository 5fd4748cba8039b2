/*
 * Allocation tracing (trace.c): the hooks the allocation and free paths
 * call. Off, each is one relaxed load and one branch predicted not taken.
 */
#ifndef RCGC_TRACE_H
#define RCGC_TRACE_H

#include <stdio.h>

#include "thread.h"

enum { RCGC_TRACE_OFF = 0, RCGC_TRACE_ALL = 1, RCGC_TRACE_SAMPLE = 2 };

/* The tracing mode (written under the tracer's lock, read relaxed). */
extern int rcgc__trace_mode;
/* Traced raw blocks alive: rcgc_free looks a block up only when non-zero. */
extern size_t rcgc__trace_raw_live;

/* Slow paths (trace.c). `ra`: the return address of the public entry
 * point, that is, the user's allocation site. */
RCGC_NOINLINE void rcgc__trace_alloc(rcgc_thread *self, void *p, size_t bytes, const rcgc_type *t,
                                     void *ra);
RCGC_NOINLINE void rcgc__trace_free_object(rcgc__header *h);
RCGC_NOINLINE void rcgc__trace_free_raw(void *p);
/* The live traced blocks grouped by type, with the `per_type` largest
 * allocation stacks of each (RCGC_DEBUG=leaks). */
void rcgc__trace_print_sites(FILE *out, size_t per_type);
/* rcgc_shutdown: drop everything (no thread allocates any more). */
void rcgc__trace_shutdown(void);

/* RCGC_NO_TRACE_HOOKS compiles the hooks out: only for the benchmark that
 * measures what they cost when tracing is off (bench/run.sh trace); the
 * rcgc_trace_* calls then record nothing. */
#ifdef RCGC_NO_TRACE_HOOKS
#define RCGC_TRACE_HOOKS 0
#else
#define RCGC_TRACE_HOOKS 1
#endif

/* 1 if tracing or sampling is on (one relaxed load). */
static inline bool rcgc__trace_active(void) {
    return RCGC_TRACE_HOOKS && __atomic_load_n(&rcgc__trace_mode, __ATOMIC_RELAXED) != RCGC_TRACE_OFF;
}

/* After a successful allocation of `bytes` at p. Sampling counts bytes
 * down here, inline, so that unsampled allocations make no call. */
static inline void rcgc__trace_on_alloc(rcgc_thread *self, void *p, size_t bytes,
                                        const rcgc_type *t, void *ra) {
    int mode = RCGC_TRACE_HOOKS ? __atomic_load_n(&rcgc__trace_mode, __ATOMIC_RELAXED) : RCGC_TRACE_OFF;
    if (rcgc_unlikely(mode != RCGC_TRACE_OFF)) {
        if (mode == RCGC_TRACE_SAMPLE && (self->trace_left -= (int64_t)bytes) >= 0)
            return;
        rcgc__trace_alloc(self, p, bytes, t, ra);
    }
}

/* Traced raw blocks per slot of a 16-bit hash of their address: most
 * frees find 0 there and make no call (trace.c). */
#define RCGC_TRACE_FILTER_BITS 16
extern uint32_t rcgc__trace_raw_filter[1u << RCGC_TRACE_FILTER_BITS];
static inline size_t rcgc__trace_filter_index(uintptr_t p) {
    return (size_t)(((uint64_t)(p >> 4) * 0x9E3779B97F4A7C15ULL) >> (64 - RCGC_TRACE_FILTER_BITS));
}

/* 1 if any traced raw block is alive (one relaxed load): rcgc_free then
 * goes through rcgc__trace_on_free_raw. */
static inline bool rcgc__trace_raw_maybe(void) {
    return RCGC_TRACE_HOOKS && __atomic_load_n(&rcgc__trace_raw_live, __ATOMIC_RELAXED) != 0;
}

/* Before rcgc_free releases p, while traced raw blocks are alive. */
static inline void rcgc__trace_on_free_raw(void *p) {
    if (__atomic_load_n(&rcgc__trace_raw_filter[rcgc__trace_filter_index((uintptr_t)p)],
                        __ATOMIC_RELAXED) != 0)
        rcgc__trace_free_raw(p);
}

#endif /* RCGC_TRACE_H */
