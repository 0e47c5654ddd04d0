"""A recording of one run of a heap: everything the pictures and files are drawn from.

:class:`Recorder` attaches to a heap when the run starts. At every collection it notes the region map
as the collection left it and the process's RSS (cheap); at the checkpoints the program chooses
(:meth:`Recorder.sample`) it reads the full memory figures, per view, from smaps (about 20 ms per GiB).
:meth:`Recorder.finish` returns a :class:`Run`: plain data (numbers, strings, lists, dicts), so the
HTML report, the trace events, the plot and the JSON file all read the same thing, and a command
such as the demo or the tour only has to record and then call the writers it was asked for.
"""
from __future__ import annotations

import datetime
import os
import platform
import sys
import time

import attrs
from attrs import define, field

from .config import FIELD_NAMES
from .spans import CAUSE_NAMES, CAUSE_REASONS, Span, collection_title, spans_of


def typed_config(config) -> dict:
    """The configuration as JSON values of their own types: sizes and counts as ints, flags as bools,
    an address as an int or None, the mirrors as their "ADDRESS:PROT" strings."""
    result = {}
    for name in FIELD_NAMES:
        value = getattr(config, name)
        if name == "mirrors":
            value = [str(m) for m in value]
        result[name] = value
    return result


# mh_gc_event.kind, by name
KIND_NAMES = {0: "young", 1: "full", 2: "zgc", 3: "allocation stall", 4: "relocation stall"}


def event_record(event) -> dict:
    """One collection as JSON: its id, kind and cause first, then every figure of the event. A zgc
    cycle's start and end are when it ran (its spans), not when its event reached Python; its pause_ms
    is the longest of its pauses."""
    fields = [f for f in getattr(type(event), "__slots__", ()) if f not in ("time", "thread")]
    kind = KIND_NAMES.get(int(event.kind), str(event.kind))
    record = {"id": int(event.id), "kind": kind,
              "cause": CAUSE_NAMES.get(int(event.cause), "Unknown"),
              "reason": CAUSE_REASONS.get(int(event.cause), "unknown"), "name": collection_title(event),
              "end": float(event.time), "start": float(event.time) - int(event.ns_total) / 1e9,
              "pause_ms": int(event.ns_total) / 1e6, "thread": getattr(event, "thread", None)}
    spans = getattr(event, "spans", None)
    if spans:  # zgc: a cycle, or a stall
        from .zgclog import ZGC_CAUSE_NAMES

        record.update(start=spans[0].start, end=spans[0].end, name=spans[0].name)
        if kind == "zgc":
            cause = ZGC_CAUSE_NAMES.get(int(event.cause), "Unknown")
            record.update(cause=cause, reason=cause, pause_ms=max(
                [p.duration_ns / 1e6 for p in event.phases if p.pause] + [0.0]))
    for name in fields:
        if name not in ("id", "kind", "cause"):
            value = getattr(event, name)
            if name == "phases":  # (name, start, duration, pause, thread) of each phase
                record[name] = [dict(p._asdict()) for p in value]
            elif name == "spans":
                continue
            else:
                record[name] = [int(v) for v in value] if isinstance(value, (list, tuple)) else int(value)
    return record


@define
class Run:
    """What one run of a heap produced. Times are seconds since the heap was created."""

    title: str
    created: str
    command: str
    machine: dict
    config: dict
    sources: dict
    backend: dict
    reservations: list
    views: list
    region_size: int
    regions: list  # one snapshot per collection (and at the start and end): time, label, states, used
    collections: list  # event_record() of each collection, in time order
    spans: list  # Span
    samples: list  # memory checkpoints: time, rss, pss, backing, per-view rss and pss, heap in use
    rss: list  # (time, rss) at every collection: cheap, frequent
    gc_log: str  # the gc*=debug log of the run, rebuilt from its events
    strace: list
    stats: dict
    duration: float

    def to_json(self) -> dict:
        data = attrs.asdict(self, recurse=False)
        data["spans"] = [s.as_dict() for s in self.spans]
        return data

    @property
    def threads(self) -> list[str]:
        seen = []
        for span in self.spans:
            if span.thread not in seen:
                seen.append(span.thread)
        return seen


def _program() -> str:
    argv0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "python -m miniheap" if argv0 in ("__main__.py", "") else f"python {sys.argv[0]}"


def _machine() -> dict:
    return {"host": platform.node(), "kernel": platform.release(), "arch": platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "pid": os.getpid()}


@define
class Recorder:
    """Attach to ``heap`` and record the run; ``loaded`` (a LoadedConfig) adds where each value came
    from. Call :meth:`sample` at checkpoints and :meth:`finish` at the end, before the heap closes."""

    heap: object
    loaded: object = None
    title: str = "miniheap run"
    command: str = field(factory=lambda: " ".join([_program()] + sys.argv[1:]))
    regions: list = field(factory=list)
    samples: list = field(factory=list)
    rss: list = field(factory=list)
    _process: object = None

    def __attrs_post_init__(self):
        import psutil

        self._process = psutil.Process()
        self.snapshot_regions("start of the recording", None, time.monotonic() - self.heap.started)
        self.heap.gc_listeners.append(self._on_gc)

    def _on_gc(self, event) -> None:
        # On the collecting thread, which still holds the heap: the map is as the collection left it.
        self.snapshot_regions(collection_title(event), int(event.id), float(event.time))
        self.rss.append((float(event.time), self._process.memory_info().rss))

    def snapshot_regions(self, label: str, gc_id: int | None, when: float) -> None:
        from .heap import REGION_CHARS

        states, used = [], []
        for _, state, nbytes in self.heap.regions():
            c = REGION_CHARS.get(state, "?")
            states.append(c.lower() if nbytes == 0 and state in ("eden", "old", "survivor-from", "small") else c)
            used.append(int(nbytes))
        self.regions.append({"time": when, "label": label, "gc_id": gc_id, "states": "".join(states),
                             "used": used})

    def sample(self, label: str = "") -> dict:
        """Full memory figures now: process RSS and PSS, each view's RSS and PSS, the backing's real
        size and the heap's occupancy."""
        snap = self.heap.memory()
        occupancy = self.heap.occupancy()
        row = {"time": time.monotonic() - self.heap.started, "label": label, "rss": snap.rss,
               "pss": snap.pss, "uss": snap.uss, "hugetlb": snap.hugetlb, "backing": snap.backing,
               "views": {v.name: {"rss": v.rss, "pss": v.pss, "hugetlb": v.hugetlb} for v in snap.views},
               "used": occupancy}
        self.samples.append(row)
        return row

    def finish(self) -> Run:
        """The run so far, as plain data. Reads the heap, so call it before the heap closes."""
        from .gclog import format_log

        heap = self.heap
        now = time.monotonic() - heap.started
        self.heap.gc_listeners[:] = [f for f in self.heap.gc_listeners if f != self._on_gc]
        if not self.regions or self.regions[-1]["time"] < now:
            self.snapshot_regions("end of the run", None, now)
        events = list(heap.events)
        config = heap.config
        backend = heap.backend
        sources = {name: self.loaded.source_of(name) for name in FIELD_NAMES} if self.loaded else {}
        own = {id(v) for v in backend.own_views()}
        return Run(
            title=self.title,
            created=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            command=self.command, machine=_machine(), config=typed_config(config), sources=sources,
            backend={"name": backend.name, "size": int(backend.size), "granule": int(backend.granule),
                     "physical": int(backend.physical_bytes()), "how_created": backend.how_created,
                     "how_viewed": backend.how_viewed},
            reservations=[{"label": r.label, "start": int(r.start), "size": int(r.size)}
                          for r in heap.layout.reservations if r.start is not None],
            views=[{"name": v.name, "start": int(v.start), "length": int(v.length), "offset": int(v.offset),
                    "writable": bool(v.writable), "own": id(v) in own} for v in heap.views],
            region_size=int(config.region_size), regions=list(self.regions),
            collections=[event_record(e) for e in events], spans=spans_of(events), samples=list(self.samples),
            rss=list(self.rss), gc_log=format_log(events, config, heap.views, "gc*=debug"),
            strace=list(heap.trace.lines), stats=heap.stats.as_dict(), duration=now,
        )


__all__ = ["Recorder", "Run", "Span", "event_record", "typed_config"]
