"""scaling: GCBench on three heap sizes, with the live data growing with the heap, miniheap beside
JDK 17's SerialGC at the same -Xmx (and -Xms, -XX:+AlwaysPreTouch).

The allocation work is the classic GCBench's (stretch depth 18, trees of depth 4 to 16); what grows
is what stays live: the long-lived tree and the array of doubles.

    heap     long-lived tree     array of doubles    live (32-byte nodes, as on the JVM)
    64 MiB   depth 16 (4 MiB)    500 000 (3.8 MiB)   about 8 MiB
    256 MiB  depth 20 (64 MiB)   2 500 000 (19 MiB)  about 83 MiB
    1 GiB    depth 22 (256 MiB)  33 554 432 (256 MiB) about 512 MiB

miniheap's heap is shaped as SerialGC shapes its own by default: young is a third of the heap
(NewRatio=2), each survivor a tenth of young (SurvivorRatio=8), tenuring threshold 15, in 2 MiB
regions. Run by run the two alternate, so machine noise falls on both.
"""
from . import jvm
from .common import Clock, MIB, Metric, Result, Target, Unavailable, native, ratio
from .gcbench_native import run_native

NAME = "scaling"
TITLE = "GCBench with the live data growing with the heap, vs JDK SerialGC at the same -Xmx"

WORK = dict(stretch_depth=18, min_depth=4, max_depth=16)
SIZES = [  # heap MiB, long-lived depth, array size
    (64, 16, 500_000),
    (256, 20, 2_500_000),
    (1024, 22, 1 << 25),
]
QUICK_WORK = dict(stretch_depth=16, min_depth=4, max_depth=12)
QUICK_SIZES = [(64, 12, 50_000), (128, 14, 200_000), (256, 16, 500_000)]
NODE = 32  # bytes of a GCBench node: one header word, two references, two ints

METRICS = [
    Metric("live_mib", "live data: long-lived tree + array (MiB)", "{:.1f}"),
    Metric("time_ms", "total time, all repetitions (ms)", "{:.1f}"),
    Metric("young", "young collections", "{:.0f}"),
    Metric("full", "full collections", "{:.0f}"),
    Metric("pause_total_ms", "total pause (ms)", "{:.1f}"),
    Metric("pause_max_ms", "max pause (ms)", "{:.2f}"),
    Metric("pause_ratio", "total pause / SerialGC's", "{:.2f}"),
]


def tree_size(depth):
    return (1 << (depth + 1)) - 1


def live_mib(long_lived_depth, array_size):
    return (tree_size(long_lived_depth) * NODE + 8 * array_size) / MIB


def heap_shape(heap_mb):
    """SerialGC's default generation sizes for -Xmx heap_mb, in 2 MiB regions."""
    young = max(20, round(heap_mb / 3 / 2) * 2)  # at least the 10 regions survivor ratio 8 needs
    return dict(heap_size=f"{heap_mb}M", young_size=f"{young}M", region_size="2M", survivor_ratio=8,
                tenuring_threshold=15)


def run(opts):
    work, sizes = (QUICK_WORK, QUICK_SIZES) if opts.quick else (WORK, SIZES)
    repetitions = 1 if opts.quick else 3
    runs = opts.runs or (1 if opts.quick else 3)
    result = Result(NAME, TITLE, dict(work, repetitions=repetitions, runs=runs,
                                      sizes=[f"{mb}M: long-lived depth {d}, array {a}" for mb, d, a in sizes]))
    result.metrics = METRICS
    clock = Clock(60 if opts.quick else 400)
    try:
        ffi, lib = native()
    except Unavailable as e:
        return result.unavailable(str(e))
    mine = {mb: result.subject(f"miniheap {mb}M", f"gcbench.c on a {mb} MiB heap, young {heap_shape(mb)['young_size']}")
            for mb, _, _ in sizes}
    serial = {mb: result.subject(f"SerialGC {mb}M", f"java -XX:+UseSerialGC -Xms{mb}m -Xmx{mb}m -XX:+AlwaysPreTouch")
              for mb, _, _ in sizes}
    java = None
    try:
        java = jvm.JavaGCBench()
        result.params["java"] = java.version
    except Unavailable as e:
        for s in serial.values():
            s.unavailable = f"skipped: {e}"
    try:
        for i in range(runs):
            for mb, depth, array in sizes:
                params = dict(work, long_lived_depth=depth, array_size=array)
                live = live_mib(depth, array)
                figures, extra = run_native(ffi, lib, params, repetitions, heap_shape(mb))
                mine[mb].add(live_mib=live, time_ms=figures["time_ms"], young=figures["young"],
                             full=figures["full"], pause_total_ms=figures["pause_total_ms"],
                             pause_max_ms=figures["pause_max_ms"])
                mine[mb].extra.setdefault("runs", []).append(extra)
                if java is not None:
                    got = jvm.figures(java.run("Serial", mb, repetitions, params))
                    serial[mb].add(live_mib=live, time_ms=got["time_ms"], young=got["young"], full=got["full"],
                                   pause_total_ms=got["pause_total_ms"], pause_max_ms=got["pause_max_ms"],
                                   pause_ratio=1.0)
                    mine[mb].samples.setdefault("pause_ratio", []).append(
                        ratio(figures["pause_total_ms"], got["pause_total_ms"]))
            if i + 1 < runs and clock.spent():
                result.notes.append(f"stopped after {i + 1} of {runs} runs: time budget spent")
                break
    finally:
        if java is not None:
            java.close()
    for mb, _, _ in sizes:
        s = serial[mb]
        result.targets.append(Target(
            f"scaling, {mb} MiB heap: total pause / SerialGC's",
            ratio(mine[mb].median("pause_total_ms"), s.median("pause_total_ms")), 1.0,
            note=f"SerialGC {s.unavailable}" if s.unavailable else ""))
    result.notes.append("pause ratio per run (same run, same sizes); the target compares the medians")
    if opts.quick:
        result.notes.append("quick mode: small trees and heaps; the ratios are not the issue's targets")
    return result
