"""copy: how fast the collector moves live data, against memcpy of the same number of bytes.

A heap is filled with about 40 MiB of small objects (2 reference slots, 16 payload bytes) linked into
64 interleaved lists, all of them live (native/bench/copybench.c, on the inline fast path). Building
them fills eden again and again, so every young collection copies everything it scans; then explicit
full collections move the whole graph. The rate is bytes copied per second of pause, per kind of
collection, from the heap's own events; memcpy (native/bench/benchutil.c, pre-touched malloc buffers)
copies the same number of bytes twice over: cold (the caches flushed by writing a 64 MiB buffer
before each copy, so source and destination come from memory, as a collection's do: the objects were
allocated long before, the to-space was not touched since the last collection) and warm (copied again
at once, from the caches when it fits them). The fraction is against the cold copy, the like-for-like
one. Rates are decimal GB/s (1e9 bytes per second). The lists are counted after the collections, so a
collector that loses an object fails the benchmark.
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
    Metric("of_memcpy", "fraction of cold memcpy", "{:.0%}"),
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


def _memcpy_ns(ffi, lib, nbytes, cold):
    out = ffi.new("uint64_t[]", MEMCPY_REPS)
    if lib.mh_bench_memcpy(int(nbytes), MEMCPY_REPS, 1 if cold else 0, out) != 0:
        raise BenchFailed(f"mh_bench_memcpy({nbytes}) failed")
    return statistics.median(out[i] for i in range(MEMCPY_REPS))


def run_once(ffi, lib, size):
    heap = open_heap(heap_size=size["heap_size"], young_size=size["young_size"], region_size="2M",
                     survivor_ratio=size["survivor_ratio"])
    try:
        ptr = native_heap(heap)
        object_size = _object_size(ffi, lib, ptr)
        objects = int(size["live_mib"] * MIB / object_size)
        heads = ffi.new("mh_handle[]", LISTS)
        error = ffi.new("char[]", 256)
        built = len(heap.events)
        if lib.mh_bench_build_lists(ptr, objects, NREFS, NBYTES, LISTS, heads, error, 256) != 0:
            raise BenchFailed(f"building the lists: {ffi.string(error).decode(errors='replace')}")
        during_build = heap.events[built:]
        for _ in range(FULL_COLLECTIONS):
            if lib.mh_collect(ptr, 1) != 0:
                raise BenchFailed(f"mh_collect(full): {ffi.string(lib.mh_last_error_message(ptr)).decode()}")
        fulls = heap.events[-FULL_COLLECTIONS:]
        reached = lib.mh_bench_count_lists(ptr, LISTS, heads)
        if reached != objects:
            raise BenchFailed(f"after the collections the lists hold {reached} objects, expected {objects}")
        live = lib.mh_used(ptr)
        for i in range(LISTS):
            if heads[i] >= 0:
                lib.mh_release(ptr, heads[i])
    finally:
        close_heap(heap)

    young = [e for e in during_build if not e.full and e.bytes_copied]
    out = {"objects": objects, "object_size": object_size, "live_mib": live / MIB}
    for kind, events in (("young", young), ("full", fulls)):
        copied = sum(e.bytes_copied for e in events)
        ns = sum(e.ns_total for e in events)
        per = copied / len(events) if events else 0
        cold_ns = _memcpy_ns(ffi, lib, per, True) if per else None
        warm_ns = _memcpy_ns(ffi, lib, per, False) if per else None
        out[kind] = {"collections": len(events), "bytes": copied, "ns": ns, "bytes_per": per,
                     "gbs": copied / ns if ns else None,
                     "cold_gbs": per / cold_ns if cold_ns else None, "cold_ms": cold_ns / 1e6 if cold_ns else None,
                     "warm_gbs": per / warm_ns if warm_ns else None, "warm_ms": warm_ns / 1e6 if warm_ns else None}
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
    memcpy = {(k, temp): result.subject(f"memcpy {temp} ({k} bytes)",
                                        f"memcpy of the bytes one such collection copied, {temp}")
              for k in subjects for temp in ("cold", "warm")}
    try:
        for i in range(runs):
            got = run_once(ffi, lib, size)
            result.params["objects"], result.params["object_size"] = got["objects"], got["object_size"]
            result.params["live_mib"] = round(got["live_mib"], 1)
            for kind, subject in subjects.items():
                k = got[kind]
                subject.add(collections=k["collections"], mib_per_collection=k["bytes_per"] / MIB,
                            ms_per_collection=k["ns"] / k["collections"] / 1e6 if k["collections"] else None,
                            gbs=k["gbs"], of_memcpy=ratio(k["gbs"], k["cold_gbs"]))
                for temp in ("cold", "warm"):
                    memcpy[kind, temp].add(collections=None, mib_per_collection=k["bytes_per"] / MIB,
                                           ms_per_collection=k[f"{temp}_ms"], gbs=k[f"{temp}_gbs"],
                                           of_memcpy=ratio(k[f"{temp}_gbs"], k["cold_gbs"]))
            if i + 1 < runs and clock.spent():
                result.notes.append(f"stopped after {i + 1} of {runs} runs: time budget spent")
                break
    except Unavailable as e:
        return result.unavailable(str(e))
    young, full = subjects["young"], subjects["full"]
    result.targets.append(Target("copy rate, young GC (GB/s)", young.median("gbs"), 3.0, ">="))
    result.targets.append(Target("copy rate, young GC / cold memcpy of the same bytes", young.median("of_memcpy"),
                                 0.5, ">="))
    result.targets.append(Target("copy rate, full GC (GB/s)", full.median("gbs"), 3.0, ">="))
    result.targets.append(Target("copy rate, full GC / cold memcpy of the same bytes", full.median("of_memcpy"),
                                 0.4, ">="))
    result.notes.append("fraction of memcpy: against the cold copy of the same bytes")
    result.notes.append("a pause includes everything the collection does (roots, cards, marking, remapping), "
                        "not only copying")
    return result
