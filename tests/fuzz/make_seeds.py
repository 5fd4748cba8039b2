#!/usr/bin/env python3
"""Writes the hand-written seed programs of rcgc_fuzz into corpus/ (or the
folder given as the first argument) as seed-<name> files.

Each program is a header byte and a list of operations, spelled with the
opcode names of rcgc_fuzz.c's interpreter and their operand bytes in the
order the interpreter reads them. Keep OPS in step with the enum there.
"""
import os
import sys

OPS = [
    "new", "burst", "set", "load", "drop", "dup", "incdec", "collect",
    "collect_young", "freeze", "unfreeze", "weak_new", "weak_get", "weak_free", "load_ref",
    "gc_toggle", "threshold", "malloc", "free", "spawn", "check", "immortalize",
    "set_mode", "res_take", "saveall", "garbage", "safepoint", "set_field_of_field", "errors",
    "weak_fill",
]
OP = {name: i for i, name in enumerate(OPS)}

# Types (operand of new): node fin shared big leaf sleaf
NODE, FIN, SHARED, BIG, LEAF, SLEAF = range(6)
# Finalizer modes
RESURRECT, WEAKREF, WEAKCB, COLLECT = 1, 2, 4, 8
NULL = 0xE0         # the "set" operand meaning NULL

# Header bits: 0-1 both set: two workers; 2-4: threshold
# (-1, 1, 2, 10, 64, 100, 500, default); 5: automatic collections off;
# 6: purge on.
HDR_DEFAULT = 0x1C          # threshold default, one worker
HDR_NOAUTO = 0x20           # automatic collections off
HDR_TWO = 0x03              # two workers, one per page
HDR_THR1 = 0x04             # threshold 1
HDR_PURGE = 0x40            # empty pages' memory back to the OS at once


def prog(header, *ops):
    out = bytearray([header])
    for op in ops:
        name, *args = op
        out.append(OP[name])
        out.extend(a & 0xFF for a in args)
    return bytes(out)


def spawn(handed, give_back, *ops):
    """A spawned thread: the main thread hands it references to its slots
    `handed` (they land in the thread's slots 0..), it runs `ops` on its own
    slots, then hands back slot i if bit i of give_back is set (bit 7:
    detach explicitly rather than exit attached)."""
    body = prog(0, *ops)[1:]
    return ("spawn", len(handed), *handed, len(ops) - 1, give_back, *body)


def cycle(a, b, ta=NODE, tb=NODE, mode=0):
    """Objects in slots a and b referring to each other (a.f0 = b, b.f0 = a)."""
    return [("new", ta, a, mode), ("new", tb, b, mode), ("set", a, 0, b), ("set", b, 0, a)]


SEEDS = {
    # Every operation at least once, one thread.
    "new-drop": prog(HDR_NOAUTO, ("new", NODE, 0, 0), ("new", LEAF, 1, 0), ("new", SLEAF, 2, 0),
                     ("new", BIG, 3, 5), ("new", SHARED, 4, 0), ("check", 0), ("drop", 0),
                     ("drop", 3), ("collect",)),
    "cycle-collect": prog(HDR_NOAUTO, *cycle(0, 1), ("drop", 0), ("drop", 1), ("collect",),
                          ("check", 0)),
    "cycle-young": prog(HDR_NOAUTO, *cycle(0, 1), ("drop", 0), ("drop", 1), ("collect_young",),
                        ("collect_young",), ("check", 0)),
    "old-young": prog(HDR_NOAUTO, ("new", NODE, 5, 0), ("collect",), *cycle(0, 1), ("set", 0, 1, 5),
                      ("set", 5, 0, 0), ("drop", 0), ("drop", 1), ("collect_young",), ("drop", 5),
                      ("collect_young",), ("collect",)),
    "self-loop": prog(HDR_NOAUTO, ("new", SHARED, 0, 0), ("set", 0, 2, 0), ("drop", 0),
                      ("collect",)),
    "chain-load": prog(HDR_NOAUTO, ("new", NODE, 0, 0), ("new", NODE, 1, 0), ("new", LEAF, 2, 0),
                       ("set", 0, 0, 1), ("set", 1, 1, 2), ("drop", 1), ("drop", 2),
                       ("load", 3, 0, 0), ("load", 4, 3, 1), ("set_field_of_field", 0, 3, 2, 1),
                       ("check", 3), ("drop", 0), ("drop", 3), ("drop", 4)),
    "dup-incdec": prog(HDR_NOAUTO, ("new", NODE, 0, 0), ("dup", 0, 1), ("dup", 1, 2),
                       ("incdec", 2, 7), ("drop", 0), ("incdec", 1, 3), ("drop", 1), ("drop", 2)),
    "finalizer": prog(HDR_NOAUTO, *cycle(0, 1, FIN, NODE, 0), ("drop", 0), ("drop", 1),
                      ("collect",)),
    "resurrect": prog(HDR_NOAUTO, *cycle(0, 1, FIN, NODE, RESURRECT), ("new", LEAF, 2, 0),
                      ("set", 1, 1, 2), ("drop", 2), ("weak_new", 1, 0, 1), ("drop", 0),
                      ("drop", 1), ("collect",), ("check", 0), ("weak_get", 0, 3),
                      ("res_take", 0, 5), ("check", 5), ("drop", 5), ("collect",)),
    "resurrect-twice": prog(HDR_NOAUTO, *cycle(0, 1, FIN, FIN, RESURRECT), ("drop", 0),
                            ("drop", 1), ("collect",), ("res_take", 0, 0x90),
                            ("res_take", 1, 0x90), ("collect",), ("check", 0)),
    # A resurrected (already finalized) object in a cycle with a new one:
    # only the new one is finalized.
    "resurrect-mixed": prog(HDR_NOAUTO, ("new", FIN, 0, RESURRECT), ("set", 0, 0, 0), ("drop", 0),
                            ("collect",), ("res_take", 0, 1), ("new", FIN, 2, 0),
                            ("set", 1, 1, 2), ("set", 2, 0, 1), ("drop", 1), ("drop", 2),
                            ("collect",)),
    "fin-weakref": prog(HDR_NOAUTO, *cycle(0, 1, FIN, NODE, WEAKREF | WEAKCB),
                        ("new", FIN, 2, WEAKREF | RESURRECT), ("set", 2, 0, 2), ("drop", 0),
                        ("drop", 1), ("drop", 2), ("collect",), ("weak_get", 0, 0x90),
                        ("weak_get", 1, 4), ("check", 4), ("drop", 4), ("res_take", 0, 0x90),
                        ("collect",)),
    "fin-collect": prog(HDR_NOAUTO, *cycle(0, 1, FIN, FIN, COLLECT), ("drop", 0), ("drop", 1),
                        ("collect",)),
    "set-mode": prog(HDR_NOAUTO, *cycle(0, 1, FIN, NODE, 0), ("set_mode", 0, RESURRECT),
                     ("drop", 0), ("drop", 1), ("collect",), ("res_take", 0, 0x90), ("collect",)),
    "weakref": prog(HDR_NOAUTO, ("new", NODE, 0, 0), ("weak_new", 0, 0, 1), ("weak_new", 0, 1, 3),
                    ("weak_new", 0, 2, 0), ("weak_get", 0, 1), ("drop", 1), ("weak_free", 2),
                    ("drop", 0), ("weak_get", 0, 2), ("weak_get", 1, 2), ("check", 0)),
    # A weak-reference callback that collects: inside a counting death (the
    # garbage dies when that death's loop ends) and inside a collection
    # (rcgc_collect returns 0 there).
    "weak-collect": prog(HDR_NOAUTO, *cycle(2, 3, FIN, NODE, 0), ("new", NODE, 0, 0),
                         ("weak_new", 0, 0, 5), ("set", 3, 1, 0), ("new", NODE, 1, 0),
                         ("weak_new", 1, 1, 7), ("drop", 2), ("drop", 3), ("drop", 1),
                         ("check", 0), ("drop", 0), ("collect",)),
    # 60 weak references to one object: its stripe's buckets grow; then a
    # callback that gets every weak reference while the chain it heads
    # dies (referents on the trash list must stay dead).
    "weak-fill": prog(HDR_NOAUTO, ("new", NODE, 0, 0), ("weak_fill", 0, 59, 1), ("check", 0),
                      ("drop", 0), ("new", NODE, 1, 0), ("new", NODE, 2, 0), ("set", 1, 0, 2),
                      ("new", NODE, 3, 0), ("set", 2, 0, 3), ("weak_new", 2, 0, 9),
                      ("weak_new", 3, 1, 1), ("weak_new", 1, 2, 8 | 1), ("drop", 2), ("drop", 3),
                      ("drop", 1), ("check", 0)),
    "weakref-cycle": prog(HDR_NOAUTO, *cycle(0, 1), ("weak_new", 0, 0, 1), ("weak_new", 1, 1, 1),
                          ("drop", 0), ("drop", 1), ("weak_get", 0, 2), ("drop", 2),
                          ("collect",), ("weak_get", 1, 0x90), ("check", 0)),
    "freeze": prog(HDR_NOAUTO, *cycle(0, 1), ("freeze",), ("drop", 0), ("drop", 1), ("collect",),
                   ("check", 0), ("new", NODE, 2, 0), ("collect_young",), ("unfreeze",),
                   ("collect_young",), ("collect",), ("check", 0)),
    "freeze-young": prog(HDR_NOAUTO, *cycle(0, 1), ("freeze",), ("collect",), ("drop", 0),
                         ("drop", 1), ("unfreeze",), ("collect_young",), ("collect",)),
    "load-ref": prog(HDR_NOAUTO, ("new", SHARED, 0, 0), ("new", SLEAF, 1, 0), ("set", 0, 0, 1),
                     ("new", SHARED, 2, 0), ("set", 0, 1, 2), ("load_ref", 3, 0, 0),
                     ("load_ref", 4, 0, 1), ("load_ref", 5, 2, 3), ("load_ref", 6, 0, 2),
                     ("check", 0)),
    "gc-auto": prog(HDR_THR1, ("burst", 200, NODE, 1, 0, 0), ("burst", 200, FIN, 1, 0, RESURRECT),
                    ("burst", 100, SHARED, 3, 2, 0), ("burst", 255, BIG, 0, 0, 1), ("check", 0)),
    "gc-toggle": prog(HDR_DEFAULT, ("threshold", 1 | (2 << 3)), ("gc_toggle", 0),
                      ("burst", 150, NODE, 1, 0, 0), ("gc_toggle", 1), ("burst", 150, NODE, 1, 0, 0),
                      ("threshold", 0), ("burst", 100, NODE, 1, 0, 0)),
    "bursts": prog(HDR_NOAUTO | HDR_PURGE, ("burst", 255, NODE, 0, 0, 0), ("burst", 255, NODE, 2, 1, 0),
                   ("burst", 50, BIG, 3, 2, 3), ("collect_young",), ("drop", 1), ("drop", 2),
                   ("collect",)),
    "raw": prog(HDR_NOAUTO | HDR_PURGE, *[("malloc", i, i * 9 + (0x80 if i % 3 == 0 else 0)) for i in range(16)],
                ("free", 3), ("free", 7), ("malloc", 3, 15), ("malloc", 7, 16), ("safepoint", 1)),
    "errors": prog(HDR_DEFAULT, ("errors",), ("gc_toggle", 0), ("gc_toggle", 1), ("threshold", 3),
                   ("threshold", 0x2A), ("new", NODE, 0, 0), ("check", 0)),
    "immortal": prog(HDR_NOAUTO, ("new", NODE, 0, 0), ("new", NODE, 1, 0), ("immortalize", 0),
                     ("set", 0, 0, 1), ("set", 1, 0, 0), ("weak_new", 0, 0, 1), ("drop", 1),
                     ("incdec", 0, 2), ("collect",), ("new", SHARED, 2, 0), ("set", 0, 1, 2),
                     ("load_ref", 3, 0, 1), ("load_ref", 4, 0, 3), ("check", 0), ("drop", 0)),
    "saveall": prog(HDR_NOAUTO, ("saveall", 1), *cycle(0, 1, FIN, NODE, 0), ("drop", 0),
                    ("drop", 1), ("collect",), ("garbage", 0), ("collect",), ("saveall", 0),
                    ("garbage", 1), ("collect",), ("check", 0)),
    "saveall-young": prog(HDR_NOAUTO, ("saveall", 1), *cycle(0, 1), ("drop", 0), ("drop", 1),
                          ("collect_young",), ("saveall", 0), ("garbage", 1),
                          ("collect_young",), ("collect",)),
    "two-workers": prog(HDR_TWO | HDR_NOAUTO, ("burst", 255, NODE, 1, 0, 0),
                        ("burst", 255, BIG, 3, 1, 4), ("burst", 100, FIN, 1, 0, RESURRECT),
                        ("collect",), ("res_take", 0, 0x90), ("drop", 1), ("collect",)),
    # Threads: ("spawn", ...) built by spawn().
    "spawn-drop": prog(HDR_NOAUTO, *cycle(0, 1),
                       spawn([0, 1], 0x80, ("drop", 0), ("drop", 1)), ("collect",)),
    "spawn-new": prog(HDR_NOAUTO, ("new", NODE, 0, 0),
                      spawn([0], 0x01, ("new", NODE, 1, 0), ("set", 1, 0, 0), ("set", 0, 0, 1),
                            ("burst", 100, NODE, 3, 2, 0)),
                      ("check", 0), ("collect",), ("drop", 0), ("collect",)),
    "spawn-collect": prog(HDR_NOAUTO, *cycle(0, 1, FIN, NODE, RESURRECT),
                          spawn([0, 1], 0x08, ("drop", 0), ("drop", 1), ("collect",),
                                ("res_take", 0, 3)),
                          ("check", 0), ("collect",)),
    # The thread takes a main-thread object's count to 0 (it waits in the
    # main thread's merge queue), then collects: the first pause merges it
    # and frees it once the world runs.
    "spawn-queued-collect": prog(HDR_NOAUTO, ("new", NODE, 0, 0), ("new", FIN, 1, 0),
                                 ("set", 0, 0, 1), ("drop", 1),
                                 spawn([0], 0x01, ("set", 0, 0, NULL), ("errors",),
                                       ("collect_young",)),
                                 ("errors",), ("check", 0)),
    "spawn-weak": prog(HDR_NOAUTO, ("new", NODE, 0, 0), ("weak_new", 0, 0, 1),
                       spawn([0], 0x80, ("weak_get", 0, 2), ("drop", 0), ("weak_get", 0, 3)),
                       ("drop", 0), ("weak_get", 0, 0x90)),
    "spawn-raw": prog(HDR_NOAUTO, ("malloc", 0, 5), ("malloc", 1, 12),
                      spawn([], 0, ("free", 0), ("malloc", 2, 7), ("malloc", 3, 13)),
                      ("free", 1), ("free", 2), ("free", 3)),
    "spawn-auto": prog(HDR_THR1, ("new", FIN, 0, RESURRECT), ("set", 0, 0, 0),
                       spawn([0], 0, ("drop", 0), ("burst", 255, NODE, 1, 0, 0)),
                       ("check", 0)),
    "spawn-freeze": prog(HDR_NOAUTO, *cycle(0, 1),
                         spawn([0, 1], 0x81, ("freeze",), ("drop", 0), ("collect",), ("unfreeze",)),
                         ("drop", 0), ("drop", 1), ("collect_young",), ("collect",)),
    "spawn-loadref": prog(HDR_NOAUTO, ("new", SHARED, 0, 0), ("new", SLEAF, 1, 0), ("set", 0, 0, 1),
                          ("drop", 1),
                          spawn([0], 0x03, ("load_ref", 1, 0, 0), ("incdec", 1, 4), ("check", 1)),
                          ("check", 0)),
    "spawn-revive": prog(HDR_NOAUTO, ("new", NODE, 0, 0), ("weak_new", 0, 0, 0),
                         spawn([0], 0x01, ("drop", 0), ("weak_get", 0, 1), ("collect",)),
                         ("drop", 0), ("drop", 1), ("weak_get", 0, 2)),
    # Regressions: programs the fuzzer (or its author) found a library bug with.
    # An object whose count a spawned thread took to 0 waits in its owner's
    # merge queue; unfreeze then revive it through a weak reference: it was
    # still frozen, and its cycle never collected (lib/gc.c walk_tracked).
    "regress-unfreeze-queued": prog(HDR_NOAUTO, ("new", NODE, 0, 0), ("new", NODE, 1, 0),
                                    ("set", 0, 0, 1), ("weak_new", 1, 0, 0), ("drop", 1), ("freeze",),
                                    spawn([0], 0x02, ("set", 0, 0, NULL), ("unfreeze",),
                                          ("weak_get", 0, 1)),
                                    ("check", 0), ("drop", 0), ("set", 1, 0, 1), ("drop", 1),
                                    ("collect",)),
    # The same with freeze: the queued object was not frozen.
    "regress-freeze-queued": prog(HDR_NOAUTO, ("new", NODE, 0, 0), ("new", NODE, 1, 0),
                                  ("set", 0, 0, 1), ("weak_new", 1, 0, 0), ("drop", 1),
                                  spawn([0], 0x02, ("set", 0, 0, NULL), ("freeze",),
                                        ("weak_get", 0, 1), ("check", 0)),
                                  ("check", 0), ("set", 1, 0, 1), ("drop", 1), ("collect",),
                                  ("check", 0), ("unfreeze",), ("collect",)),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds written to {out}")


if __name__ == "__main__":
    main()
