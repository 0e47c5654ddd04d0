"""copy: how fast the collector moves live data, against memcpy of the same number of bytes.

A heap is filled with about 40 MiB of small objects (2 reference slots, 16 payload bytes) linked into
64 interleaved lists, all of them live (native/bench/copybench.c). Building them fills eden again and
again, so every young collection copies everything it scans; then explicit full collections move the
whole graph. The rate is bytes copied per second of pause, per kind of collection, from the
collector's own counters; memcpy (native/bench/benchutil.c, pre-touched malloc buffers) copies the
same number of bytes. Rates are decimal GB/s (1e9 bytes per second). The lists are counted after the
collections, so a collector that loses an object fails the benchmark.
"""
import statistics

from .common import (MIB, BenchFailed, Clock, Metric, Result, Target, Unavailable, close_heap, native,
                     native_heap, open_heap, ratio)

NAME = "copy"
TITLE = "Collector copy rate on a live graph of small objects, vs memcpy of the same bytes"

FULL = dict(live_mib=40, heap_size="128M", young_size="16M", survivor_ratio=6)
QUICK = dict(live_mib=12, heap_size="64M", young_size="8M", survivor_ratio=2)
NREFS, NBYTES, LISTS = 2, 16, 64
FULL_COLLECTIONS = 3
MEMCPY_REPS = 5

METRICS = [
    Metric("collections", "collections", "{:.0f}"),
    Metric("mib_per_collection", "MiB copied per collection", "{:.1f}"),
    Metric("ms_per_collection", "ms per collection (pause / memcpy)", "{:.2f}"),
    Metric("gbs", "rate (GB/s)", "{:.2f}"),
    Metric("of_memcpy", "fraction of memcpy", "{:.0%}"),
]


def _object_size(ffi, lib, ptr):
    """Bytes one object takes in eden, header included, measured by allocating a few."""
    before = lib.mh_eden_used(ptr)
    handles = [lib.mh_alloc(ptr, NREFS, NBYTES) for _ in range(256)]
    after = lib.mh_eden_used(ptr)
    for h in handles:
        if h < 0:
            raise BenchFailed(f"mh_alloc: {ffi.string(lib.mh_last_error_message(ptr)).decode()}")
        lib.mh_release(ptr, h)
    if after <= before:
        raise BenchFailed("mh_eden_used did not grow while allocating: cannot size the objects")
    return (after - before) / len(handles)


def _memcpy_ns(ffi, lib, nbytes):
    out = ffi.new("uint64_t[]", MEMCPY_REPS)
    if lib.mh_bench_memcpy(int(nbytes), MEMCPY_REPS, out) != 0:
        raise BenchFailed(f"mh_bench_memcpy({nbytes}) failed")
    return statistics.median(out[i] for i in range(MEMCPY_REPS))


def _pauses(ffi, capacity=1 << 14):
    items = ffi.new("mh_bench_pause[]", capacity)
    pauses = ffi.new("mh_bench_pauses *")
    pauses.items, pauses.capacity = items, capacity
    return pauses, items


def run_once(ffi, lib, size):
    heap = open_heap(heap_size=size["heap_size"], young_size=size["young_size"], region_size="2M",
                     survivor_ratio=size["survivor_ratio"])
    try:
        ptr = native_heap(heap)
        object_size = _object_size(ffi, lib, ptr)
        objects = int(size["live_mib"] * MIB / object_size)
        heads = ffi.new("mh_handle[]", LISTS)
        error = ffi.new("char[]", 256)
        build, build_items = _pauses(ffi)
        if lib.mh_bench_build_lists(ptr, objects, NREFS, NBYTES, LISTS, heads, build, error, 256) != 0:
            raise BenchFailed(f"building the lists: {ffi.string(error).decode(errors='replace')}")
        full, full_items = _pauses(ffi)
        for _ in range(FULL_COLLECTIONS):
            if lib.mh_bench_collect(ptr, 1, full) != 0:
                raise BenchFailed(f"mh_collect(full): {ffi.string(lib.mh_last_error_message(ptr)).decode()}")
        reached = lib.mh_bench_count_lists(ptr, LISTS, heads)
        if reached != objects:
            raise BenchFailed(f"after the collections the lists hold {reached} objects, expected {objects}")
        live = lib.mh_used(ptr)
        for i in range(LISTS):
            lib.mh_release(ptr, heads[i])
    finally:
        close_heap(heap)

    young = [build_items[i] for i in range(build.count) if not build_items[i].full and build_items[i].bytes_copied]
    fulls = [full_items[i] for i in range(full.count)]
    out = {"objects": objects, "object_size": object_size, "live_mib": live / MIB}
    for kind, pauses in (("young", young), ("full", fulls)):
        copied = sum(p.bytes_copied for p in pauses)
        ns = sum(p.ns for p in pauses)
        per = copied / len(pauses) if pauses else 0
        mc_ns = _memcpy_ns(ffi, lib, per) if per else None
        out[kind] = {"collections": len(pauses), "bytes": copied, "ns": ns, "bytes_per": per,
                     "gbs": copied / ns if ns else None,
                     "memcpy_gbs": per / mc_ns if mc_ns else None,
                     "memcpy_ms": mc_ns / 1e6 if mc_ns else None}
    return out


def run(opts):
    size = QUICK if opts.quick else FULL
    runs = opts.runs or (1 if opts.quick else 5)
    result = Result(NAME, TITLE, dict(size, object_refs=NREFS, object_payload=NBYTES, lists=LISTS,
                                      full_collections_per_run=FULL_COLLECTIONS, runs=runs))
    result.metrics = METRICS
    clock = Clock(30 if opts.quick else 60)
    try:
        ffi, lib = native()
    except Unavailable as e:
        return result.unavailable(str(e))
    subjects = {"young": result.subject("young GC", "young collections while the lists grow (all live)"),
                "full": result.subject("full GC", f"{FULL_COLLECTIONS} explicit full collections of the whole graph")}
    memcpy = {k: result.subject(f"memcpy ({k} bytes)", "memcpy of the bytes one such collection copied")
              for k in subjects}
    try:
        for i in range(runs):
            got = run_once(ffi, lib, size)
            result.params["objects"], result.params["object_size"] = got["objects"], got["object_size"]
            result.params["live_mib"] = round(got["live_mib"], 1)
            for kind, subject in subjects.items():
                k = got[kind]
                subject.add(collections=k["collections"], mib_per_collection=k["bytes_per"] / MIB,
                            ms_per_collection=k["ns"] / k["collections"] / 1e6 if k["collections"] else None,
                            gbs=k["gbs"], of_memcpy=ratio(k["gbs"], k["memcpy_gbs"]))
                memcpy[kind].add(collections=None, mib_per_collection=k["bytes_per"] / MIB,
                                 ms_per_collection=k["memcpy_ms"], gbs=k["memcpy_gbs"], of_memcpy=1.0)
            if i + 1 < runs and clock.spent():
                result.notes.append(f"stopped after {i + 1} of {runs} runs: time budget spent")
                break
    except Unavailable as e:
        return result.unavailable(str(e))
    for kind, subject in subjects.items():
        result.targets.append(Target(f"copy rate, {subject.name} (GB/s)", subject.median("gbs"), 3.0, ">="))
        result.targets.append(Target(f"copy rate, {subject.name} / memcpy", subject.median("of_memcpy"), 0.4, ">="))
    result.notes.append("a pause includes everything the collection does (roots, cards, marking, remapping), "
                        "not only copying")
    return result
