"""Spans: what ran, on which thread, from when to when. The one timeline every picture reads.

A collection becomes a tree of spans: the collection itself (a pause, for the generational collector)
and its phases inside it, all on the thread that ran them. The report's timeline and the trace-event
writer draw spans and know nothing of any collector, so a collector with concurrent phases (ZGC's
Concurrent Mark on a GC thread, its pauses on another) only has to give its events a ``spans``
attribute: :func:`spans_of` uses it as it is.

Times are seconds since the heap was created (``heap.started``), the zero of the GC log's uptime.

How the generational collector's spans are built, and what is inferred: the C core reports, per
collection, its total pause and the duration of each timed phase, not when each phase began. The
pause ends when the event arrives (``event.time``), so it began ``ns_total`` earlier; the phases are
laid end to end from the start of the pause, in the order the collector runs them. Work the C core
does not time (choosing the evacuation set, freeing dead regions, releasing memory) lies between or
after them, so a phase's start may be early by that much; its duration and its place inside the pause
are exact.
"""
from __future__ import annotations

from attrs import field, frozen

PAUSE, CONCURRENT = "pause", "concurrent"
GC_YOUNG, GC_FULL = 0, 1
KIND_NAMES = {GC_YOUNG: "Young", GC_FULL: "Full"}
# The JDK's GCCause strings. A full collection that follows a young one which failed to promote (or was
# not attempted because old was too full) keeps the young one's cause, as JDK 17 SerialGC does.
CAUSE_ALLOCATION_FAILURE, CAUSE_EXPLICIT = 0, 1
CAUSE_NAMES = {CAUSE_ALLOCATION_FAILURE: "Allocation Failure", CAUSE_EXPLICIT: "System.gc()"}
# Why, in miniheap's own words (for JSON and the report, where "Allocation Failure" would hide it).
CAUSE_REASONS = {CAUSE_ALLOCATION_FAILURE: "allocation failure", CAUSE_EXPLICIT: "explicit (collect)"}
COLOR_NAMES = {0: "Marked0", 1: "Marked1", 2: "Remapped"}
DEFAULT_THREAD = "MainThread"


@frozen
class Span:
    """One interval of work. ``kind`` is PAUSE (the program's threads are stopped) or CONCURRENT (they
    run meanwhile); ``depth`` 0 is a collection (or a concurrent phase of its own), 1 a phase inside
    it, 2 a step inside a phase."""

    name: str
    start: float
    duration: float
    thread: str
    kind: str = PAUSE
    depth: int = 0
    gc_id: int | None = None
    args: dict = field(factory=dict)

    @property
    def end(self) -> float:
        return self.start + self.duration

    def as_dict(self) -> dict:
        return {"name": self.name, "start": self.start, "duration": self.duration, "thread": self.thread,
                "kind": self.kind, "depth": self.depth, "gc_id": self.gc_id, "args": dict(self.args)}


_REQUIRED = object()


def field_of(event, name, default=_REQUIRED):
    """A field of an event that may be a GCEvent, a cffi struct or a dict; without a default, a missing
    field raises AttributeError naming it."""
    try:
        return event[name] if isinstance(event, dict) else getattr(event, name)
    except (KeyError, AttributeError):
        if default is _REQUIRED:
            raise AttributeError(f"GC event has no field {name!r}: give every mh_gc_event field") from None
        return default


def collection_title(event) -> str:
    """``GC(3) Pause Young (Allocation Failure)``, as the JDK names a pause."""
    kind = int(field_of(event, "kind"))
    cause = int(field_of(event, "cause"))
    return (f"GC({field_of(event, 'id')}) Pause {KIND_NAMES.get(kind, str(kind))} "
            f"({CAUSE_NAMES.get(cause, 'Unknown')})")


def serial_phases(event) -> list[tuple[int, str, int]]:
    """(depth, name, nanoseconds) of each timed phase, in the order the collector runs them.

    Young: roots, dirty cards, the Cheney scan. Full: marking (which starts with the roots),
    evacuation, remapping. The names of a full collection's phases follow the JDK's "Phase N: ..."."""
    ns = lambda name: int(field_of(event, name, 0) or 0)  # noqa: E731
    if int(field_of(event, "kind")) == GC_FULL:
        return [(1, "Phase 1: Mark live objects", ns("ns_mark")), (2, "Roots", ns("ns_roots")),
                (1, "Phase 2: Evacuate regions", ns("ns_evacuate")),
                (1, "Phase 3: Remap references", ns("ns_remap"))]
    if ns("young_skipped"):
        return []  # not attempted: old could not take what it might promote; a full collection follows
    return [(1, "Roots", ns("ns_roots")), (1, "Scan Cards", ns("ns_cards")),
            (1, "Evacuate", ns("ns_evacuate"))]


def collection_args(event) -> dict:
    """What the collection did, beyond its name and time: the figures miniheap has and the JDK's log
    lines have no place for."""
    names = ("used_before", "used_after", "capacity", "eden_before", "eden_after", "survivor_before",
             "survivor_after", "old_before", "old_after", "objects_copied", "bytes_copied",
             "bytes_promoted", "bytes_marked", "regions_evacuated", "regions_freed", "cards_scanned",
             "tenuring_threshold", "tenuring_threshold_new", "survivor_desired", "survivor_overflow_bytes",
             "promotion_available", "promotion_average",
             "young_skipped", "promotion_failed_objects", "promotion_failed_bytes")
    args = {name: int(field_of(event, name, 0) or 0) for name in names}
    args["kind"] = "full" if int(field_of(event, "kind")) == GC_FULL else "young"
    args["cause"] = CAUSE_NAMES.get(int(field_of(event, "cause")), "Unknown")
    args["reason"] = CAUSE_REASONS.get(int(field_of(event, "cause")), "unknown")
    if args["young_skipped"]:
        args["reason"] += "; not attempted: old could not take the padded average of promotions"
    elif args["promotion_failed_objects"]:
        args["reason"] += "; promotion failed: a full collection follows"
    color = COLOR_NAMES.get(int(field_of(event, "good_color", 3) or 0))
    if color:
        args["good_color"] = color
    return args


def serial_spans(event, end: float | None = None) -> list[Span]:
    """The collection and its phases as spans (see the module's note on inferred starts). ``end``
    overrides the event's own time (seconds since heap creation) for events that carry none."""
    end = float(field_of(event, "time", 0.0) if end is None else end)
    total = int(field_of(event, "ns_total")) / 1e9
    start = end - total
    thread = field_of(event, "thread", None) or DEFAULT_THREAD
    gc_id = int(field_of(event, "id"))
    spans = [Span(collection_title(event), start, total, thread, PAUSE, 0, gc_id, collection_args(event))]
    cursor = {1: start, 2: start}
    for depth, name, ns in serial_phases(event):
        begin = cursor[depth]
        spans.append(Span(name, begin, ns / 1e9, thread, PAUSE, depth, gc_id))
        cursor[depth] = begin + ns / 1e9
        if depth == 1:
            cursor[2] = begin  # steps start inside the phase just opened
    return spans


def spans_of(events) -> list[Span]:
    """Every span of every event, in time order (a parent before the phases it contains)."""
    spans: list[Span] = []
    for event in events:
        own = field_of(event, "spans", None)
        spans.extend(own if own is not None else serial_spans(event))
    return sorted(spans, key=lambda s: (s.start, s.depth))
