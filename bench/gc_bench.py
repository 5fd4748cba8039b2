#!/usr/bin/env python3
"""gc_bench.py: the peer of gc_bench (bench/gc_bench.c) in CPython.

Times gc.collect() on the same object graph (bench/lib/gc_graph.h): N
objects of a class with __slots__ = ('a', 'b') (two fields, no __dict__:
the closest Python has to gc_bench's two-pointer struct; such objects are
tracked by the collector), a complete binary tree whose leaves point back
to the root and across (node (i * 2654435761) % N), so that the whole
graph is one cycle. A benchmark, not a test.

    gc_bench.py --test=full  [--n=N] [--reps=R]
    gc_bench.py --test=young [--old=N] [--young=N] [--young-reps=R] [--rotate=K]

full, per repetition (gc_bench's protocol):
  1. build the graph with automatic collection off (gc.disable());
  2. gc.collect() --warmup times (default once), untimed (every object is
     in the oldest generation);
  3. "live": time gc.collect() with the root in a local variable (finds 0);
  4. "garbage": del the root, time gc.collect() (finds N and frees them).
young: a live graph of --old objects, gc.collect(); then --young-reps times
a --young-object garbage graph and a timed gc.collect(0) (the youngest
generation only); the same with no old graph, the two taking turns.

CPython's collector is single-threaded and stops the interpreter for the
whole collection: workers=1, pause_ms = ms. Output: RESULT lines with the
keys of gc_bench's (impl=cpython).
"""
import argparse
import gc
import platform
import sys
import time


class Node:
    __slots__ = ("a", "b")


def build_graph(n):
    """The graph of n nodes; returns its root (the only outside reference)."""
    nodes = [Node() for _ in range(n)]
    for i in range(n):
        node = nodes[i]
        left, right = 2 * i + 1, 2 * i + 2
        node.a = nodes[left] if left < n else nodes[0]
        node.b = nodes[right] if right < n else nodes[(i * 2654435761) % n]
    return nodes[0]


failures = 0


def timed(test, n, old, expect, build_ms, generation=2):
    global failures
    t0 = time.perf_counter_ns()
    found = gc.collect(generation)
    t1 = time.perf_counter_ns()
    ok = int(found == expect)
    if not ok:
        failures += 1
        print(f"gc_bench.py: warning: {test} n={n} old={old}: gc.collect({generation}) "
              f"found {found}, expected {expect}", file=sys.stderr)
    ms = (t1 - t0) / 1e6
    print(f"RESULT impl=cpython test={test} n={n} old={old} workers=1 used_workers=1 "
          f"ms={ms:.4f} pause_ms={ms:.4f} duration_ms={ms:.4f} found={found} "
          f"expect={expect} build_ms={build_ms:.3f} ok={ok} "
          f"version={platform.python_version()}", flush=True)


def run_full(n, warmup):
    t0 = time.perf_counter_ns()
    root = build_graph(n)
    build_ms = (time.perf_counter_ns() - t0) / 1e6
    for _ in range(warmup):         # untimed: the graph is old now
        gc.collect()
    timed("live", n, 0, 0, build_ms)
    del root                        # n objects of cyclic garbage
    timed("garbage", n, 0, n, build_ms)


def run_young(old, young, reps):
    build_ms = 0.0
    old_root = None
    if old:
        t0 = time.perf_counter_ns()
        old_root = build_graph(old)
        build_ms = (time.perf_counter_ns() - t0) / 1e6
    gc.collect()                    # the old graph (if any) is in generation 2
    for _ in range(reps):
        build_graph(young)          # dropped at once: young garbage
        timed("young", young, old, young, build_ms, generation=0)
    del old_root
    gc.collect()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--test", choices=("full", "young"), default="full")
    p.add_argument("--n", type=int, default=1000000)
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1,
                   help="full: untimed collections between the build and the timed ones")
    p.add_argument("--rotate", type=int, default=0)
    p.add_argument("--old", type=int, default=1000000)
    p.add_argument("--young", type=int, default=10000)
    p.add_argument("--young-reps", type=int, default=5)
    p.add_argument("--workers", default="1", help="ignored: CPython collects on one thread")
    args = p.parse_args()
    gc.disable()
    gc.collect()
    for r in range(args.reps):
        if args.test == "full":
            run_full(args.n, args.warmup)
        else:
            order = (0, args.old) if (r + args.rotate) % 2 else (args.old, 0)
            for old in order:
                run_young(old, args.young, args.young_reps)
    if failures:
        print(f"gc_bench.py: warning: {failures} collection(s) found the wrong number",
              file=sys.stderr)


if __name__ == "__main__":
    main()
