/*
 * The object graph of the collector benchmarks (bench/gc_bench.c,
 * bench/gc_bench_boehm.c, bench/gc_bench.py build exactly this graph).
 *
 * N nodes, each two pointer fields a and b, numbered 0..N-1 in allocation
 * order; node 0 is the root.
 *   - tree edges: node i's a points to node 2i+1 and its b to node 2i+2
 *     (a complete binary tree in heap order, depth log2 N: freeing it
 *     by reference counting never recurses deeply);
 *   - where a child would be past N (the leaves, about N/2 nodes), a points
 *     back to the root and b to node gc_graph_xlink(i, N), a scattered
 *     node (Fibonacci hashing: i * 2654435761 mod N).
 * Every node reaches the root (through a leaf below it) and the root
 * reaches every node: the graph is one strongly connected component of 2N
 * references. Held by one outside reference to the root it is "live";
 * once that reference is dropped, all N nodes are cyclic garbage and
 * reference counting alone frees none of them.
 */
#ifndef RCGC_BENCH_GC_GRAPH_H
#define RCGC_BENCH_GC_GRAPH_H

#include <stddef.h>
#include <stdint.h>

/* The target of leaf i's b field (Python: (i * 2654435761) % n). */
static inline size_t gc_graph_xlink(size_t i, size_t n) {
    return (size_t)(((uint64_t)i * 2654435761u) % (uint64_t)n);
}

/* Node i's fields as indices into 0..n-1: *a, *b, and whether each is a
 * tree edge (the child's only tree parent) or a back/cross link. */
static inline void gc_graph_edges(size_t i, size_t n, size_t *a, int *a_tree, size_t *b,
                                  int *b_tree) {
    size_t l = 2 * i + 1, r = 2 * i + 2;
    *a_tree = l < n;
    *a = l < n ? l : 0;
    *b_tree = r < n;
    *b = r < n ? r : gc_graph_xlink(i, n);
}

#endif /* RCGC_BENCH_GC_GRAPH_H */
