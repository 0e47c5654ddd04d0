"""A run as Chrome trace-event JSON, the format Perfetto (ui.perfetto.dev, "Open trace file") and
chrome://tracing open directly, as Whippet and MMTk export their collectors' phases.

* every span (a collection, a phase inside it; a concurrent phase, for a collector that has them) is a
  complete event (``"ph": "X"``) on a track named after the thread that ran it, so a phase nests inside
  its collection the way the viewers draw a call stack;
* memory is counters (``"ph": "C"``): the heap's occupancy by space before and after each collection,
  the process's RSS at each collection, and at each checkpoint RSS and PSS per view and the backing's
  real size, one track per figure;
* a process and its threads are named with metadata events (``"ph": "M"``).

Timestamps are microseconds since the heap was created (the GC log's uptime times 10^6).
"""
from __future__ import annotations

import json

PID = 1  # one process per file: the run


def _us(seconds: float) -> float:
    return round(seconds * 1e6, 3)


def build(run) -> dict:
    """The trace document of a :class:`~miniheap.recording.Run` (or anything with its attributes)."""
    threads = {name: tid for tid, name in enumerate(run.threads or ["MainThread"], 1)}
    events = [{"name": "process_name", "ph": "M", "pid": PID, "tid": 0,
               "args": {"name": f"miniheap ({run.config['backend']}, mapping {run.config['mapping']})"}}]
    for name, tid in threads.items():
        events.append({"name": "thread_name", "ph": "M", "pid": PID, "tid": tid, "args": {"name": name}})
        events.append({"name": "thread_sort_index", "ph": "M", "pid": PID, "tid": tid, "args": {"sort_index": tid}})
    for span in run.spans:
        events.append({"name": span.name, "cat": f"gc,{span.kind}", "ph": "X", "pid": PID,
                       "tid": threads[span.thread], "ts": _us(span.start), "dur": _us(span.duration),
                       # a collection's own args (kind young or full, cause, figures) win over the span's
                       # pause/concurrent, which the category carries too
                       "args": {"gc_id": span.gc_id, "kind": span.kind, **span.args}})
    events += _counters(run)
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"producer": "miniheap", "command": run.command, "created": run.created,
                          "time_zero": "heap creation (the GC log's uptime 0)"}}


def _counters(run) -> list:
    out = []

    def counter(name, when, values):
        out.append({"name": name, "ph": "C", "pid": PID, "tid": 0, "ts": _us(when),
                    "args": {k: int(v) for k, v in values.items()}})

    for c in run.collections:
        if c["kind"] == "zgc":  # pages in use, at the cycle's Mark Start and Relocate End
            counter("heap in use (bytes)", c["start"], {"pages": c["used_before"]})
            counter("heap in use (bytes)", c["end"], {"pages": c["used_after"]})
        elif c["kind"] in ("young", "full"):
            counter("heap in use (bytes)", c["start"], {"eden": c["eden_before"], "survivor": c["survivor_before"],
                                                        "old": c["old_before"]})
            counter("heap in use (bytes)", c["end"], {"eden": c["eden_after"], "survivor": c["survivor_after"],
                                                      "old": c["old_after"]})
    for when, rss in run.rss:
        counter("process RSS (bytes)", when, {"rss": rss})
    for s in run.samples:
        counter("RSS by view (bytes)", s["time"], {name: v["rss"] for name, v in s["views"].items()})
        counter("PSS by view (bytes)", s["time"], {name: v["pss"] for name, v in s["views"].items()})
        counter("backing, the real size (bytes)", s["time"], {"backing": s["backing"]})
        counter("process RSS (bytes)", s["time"], {"rss": s["rss"]})
        counter("process PSS (bytes)", s["time"], {"pss": s["pss"]})
    return sorted(out, key=lambda e: e["ts"])


def write(path, run) -> None:
    """Write the trace of ``run`` to ``path``."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(build(run), f)
        f.write("\n")
