"""gcbench-native: GCBench with the C mutator (native/bench/gcbench.c, on the inline fast path of
miniheap-inline.h) beside the JDK's SerialGC and
ParallelGC running GCBench.java (miniheap/bench/peers/), on 64 MiB heaps.

The miniheap heap is built through the Python ``Heap`` (real backend, real views), sized like the
JDK's serial collector with ``-Xmx64m``: a 20 MiB young generation of 2 MiB regions with survivor
ratio 8 (16 MiB eden, two 2 MiB survivors) and tenuring threshold 15. Each run is three repetitions of
the whole benchmark on one heap (the JVM runs three in one process too, so its JIT warms up as it
would); run by run the three subjects alternate, so machine noise falls on all of them.
"""
from . import jvm
from .common import (BenchFailed, Clock, Metric, Result, Target, Unavailable, native, native_heap,
                     close_heap, open_heap, pause_figures, ratio)

NAME = "gcbench-native"
TITLE = "GCBench, C mutator on the inline fast path, vs JDK SerialGC and ParallelGC (64 MiB heaps)"

CLASSIC = dict(stretch_depth=18, long_lived_depth=16, array_size=500000, min_depth=4, max_depth=16)
QUICK = dict(stretch_depth=14, long_lived_depth=12, array_size=50000, min_depth=4, max_depth=12)
HEAP = dict(heap_size="64M", young_size="20M", region_size="2M", survivor_ratio=8, tenuring_threshold=15)
HEAP_MB = 64
NODE_BYTES = 8  # the two ints of the classic Node

METRICS = [
    Metric("time_ms", "total time, all repetitions (ms)", "{:.1f}"),
    Metric("best_rep_ms", "best repetition (ms)", "{:.1f}"),
    Metric("mutator_ms", "mutator time: total - pauses (ms)", "{:.1f}"),
    Metric("young", "young collections", "{:.0f}"),
    Metric("full", "full collections", "{:.0f}"),
    Metric("pauses", "pauses", "{:.0f}"),
    Metric("pause_total_ms", "total pause (ms)", "{:.1f}"),
    Metric("pause_median_ms", "median pause (ms)", "{:.3f}"),
    Metric("pause_p95_ms", "p95 pause (ms)", "{:.2f}"),
    Metric("pause_max_ms", "max pause (ms)", "{:.2f}"),
    Metric("copied_mib", "bytes copied (MiB)", "{:.1f}"),
    Metric("copy_gbs", "copy rate (GB/s of pause)", "{:.2f}"),
]


def run_native(ffi, lib, params, repetitions, heap_config=None):
    """One run of gcbench.c on a fresh façade heap (HEAP unless heap_config says otherwise): the
    table's figures and the pause list."""
    heap = open_heap(**(heap_config or HEAP))
    try:
        ptr = native_heap(heap)
        p = ffi.new("mh_gcbench_params *")
        for key, value in params.items():
            setattr(p, key, value)
        p.depth_step, p.repetitions, p.node_bytes = 2, repetitions, NODE_BYTES
        r = ffi.new("mh_gcbench_result *")
        if lib.mh_gcbench_run(ptr, p, r) != 0 or not r.ok:
            raise BenchFailed(f"gcbench.c: {ffi.string(r.error).decode(errors='replace')}")
        problems = lib.mh_verify(ptr)
        if problems:
            raise BenchFailed(f"mh_verify after GCBench: {problems} problem(s): "
                              f"{ffi.string(lib.mh_last_error_message(ptr)).decode(errors='replace')}")
        # One pause per collection, as the JDK logs them: the façade's on_gc events.
        pause_ms, source = [e.ns_total / 1e6 for e in heap.events], "on_gc events (Heap.events)"
        stats = lib.mh_get_stats(ptr)
        out = {"time_ms": r.ns_total / 1e6, "best_rep_ms": min(r.ns_rep[i] for i in range(repetitions)) / 1e6,
               "young": stats.young_collections, "full": stats.full_collections,
               "copied_mib": stats.bytes_copied / (1 << 20),
               "copy_gbs": stats.bytes_copied / stats.total_pause_ns if stats.total_pause_ns else None}
        out.update(pause_figures(pause_ms))
        out["mutator_ms"] = out["time_ms"] - out["pause_total_ms"]
        extra = {"checks": r.checks, "nodes_allocated": r.nodes_allocated,
                 "reps_ms": [r.ns_rep[i] / 1e6 for i in range(repetitions)], "pause_source": source,
                 "stats_total_pause_ms": stats.total_pause_ns / 1e6, "backend": heap.config.backend}
        return out, extra
    finally:
        close_heap(heap)


def run(opts):
    params = QUICK if opts.quick else CLASSIC
    repetitions = 1 if opts.quick else 3
    runs = opts.runs or (1 if opts.quick else 5)
    result = Result(NAME, TITLE, dict(params, repetitions=repetitions, runs=runs, heap=HEAP,
                                      node_bytes=NODE_BYTES))
    result.metrics = METRICS
    clock = Clock(30 if opts.quick else 100)

    mine = result.subject("miniheap", "gcbench.c on miniheap-inline.h (mh_new, mh_put, mh_get); heap from miniheap.Heap "
                                      f"({HEAP['heap_size']}, young {HEAP['young_size']})")
    try:
        ffi, lib = native()
    except Unavailable as e:
        mine.unavailable = str(e)

    peers = {gc: result.subject(f"{gc}GC", f"java -XX:+Use{gc}GC -Xms{HEAP_MB}m -Xmx{HEAP_MB}m -XX:+AlwaysPreTouch")
             for gc in ("Serial", "Parallel")}
    java = None
    try:
        java = jvm.JavaGCBench()
        result.params["java"] = java.version
    except Unavailable as e:
        for peer in peers.values():
            peer.unavailable = f"skipped: {e}"

    try:
        for i in range(runs):
            if not mine.unavailable:
                try:
                    figures, extra = run_native(ffi, lib, params, repetitions)
                    mine.add(**figures)
                    mine.extra.setdefault("runs", []).append(extra)
                except Unavailable as e:
                    mine.unavailable = str(e)
            if java is not None:
                for gc, peer in peers.items():
                    got = java.run(gc, HEAP_MB, repetitions, params)
                    figures = jvm.figures(got)
                    figures["mutator_ms"] = figures["time_ms"] - figures["pause_total_ms"]
                    peer.add(**figures, copied_mib=None, copy_gbs=None)
                    peer.extra["parser"] = got["parser"]
                    peer.extra["command"] = got["command"]
                    peer.extra.setdefault("reps_ms", []).append(got["reps_ms"])
            if i + 1 < runs and clock.spent():
                result.notes.append(f"stopped after {i + 1} of {runs} runs: time budget spent")
                break
    finally:
        if java is not None:
            java.close()

    if mine.unavailable:
        result.unavailable(mine.unavailable)
    serial = peers["Serial"]
    why = f"SerialGC {serial.unavailable}" if serial.unavailable else ""
    result.targets = [
        Target("gcbench-native total pause / SerialGC's", ratio(mine.median("pause_total_ms"),
                                                                 serial.median("pause_total_ms")), 0.9,
               note=why),
        Target("gcbench-native median pause / SerialGC's", ratio(mine.median("pause_median_ms"),
                                                                  serial.median("pause_median_ms")), 1.0,
               note=why),
        Target("gcbench-native total time / SerialGC's", ratio(mine.median("time_ms"), serial.median("time_ms")),
               1.2, note=why),
        Target("gcbench-native full collections - SerialGC's", None if mine.median("full") is None or
               serial.median("full") is None else mine.median("full") - serial.median("full"), 0, note=why),
    ]
    if opts.quick:
        result.notes.append("quick mode: small trees, one repetition; ratios are not the issue's targets")
    sources = {r["pause_source"] for r in mine.extra.get("runs", [])}
    if sources:
        result.notes.append(f"miniheap pauses: {', '.join(sorted(sources))}")
    return result
