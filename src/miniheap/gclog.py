"""The GC log, written in the JDK 17 unified-logging format (-Xlog:gc, -Xlog:gc*).

Why copy the JDK's format: anyone who has read a Java GC log can read this one,
and the tools that parse JVM logs (including `parse_jvm_log` below, used to
compare miniheap with the JVM) read ours unchanged. The info-level pause line
is exactly SerialGC's:

    [0.052s][info][gc] GC(0) Pause Young (Allocation Failure) 12M->3M(64M) 1.234ms

Levels, as in the JDK's -Xlog selectors:
    off   nothing
    gc    the `[info][gc]` lines only: heap creation and one line per pause
    gc*   every gc-tagged line at info and debug: generation sizes, phases,
          the age table, cards, regions (like -Xlog:gc*,gc+age=debug)

The collector (C) never prints: it fills an mh_gc_event and this module turns it
into lines. Events may be cffi structs, dicts, or any object with the same names.
"""

from __future__ import annotations

import io
import os
import re
import sys
import time
from typing import IO

from attrs import frozen

from miniheap.config import parse_gc_log
from miniheap.sizes import format_size

GC_YOUNG, GC_FULL = 0, 1
CAUSE_ALLOCATION_FAILURE, CAUSE_EXPLICIT = 0, 1

KIND_NAMES = {GC_YOUNG: "Young", GC_FULL: "Full"}
# The JDK's GCCause strings. A full collection that follows a young one which
# failed to promote (or was not attempted because old was too full) keeps the
# young one's cause, as JDK 17 SerialGC does: "Pause Full (Allocation Failure)".
CAUSE_NAMES = {
    CAUSE_ALLOCATION_FAILURE: "Allocation Failure",
    CAUSE_EXPLICIT: "System.gc()",
}
COLOR_NAMES = {0: "Marked0", 1: "Marked1", 2: "Remapped"}

LEVELS = ("off", "gc", "gc*")
_INFO, _DEBUG = "info", "debug"


# ----------------------------------------------------------------------------- events


class _Event:
    """Read an event's fields by name whether it is a cffi struct, a dict or an object."""

    def __init__(self, source: object):
        self._source = source

    def __getattr__(self, name: str):
        source = self._source
        if isinstance(source, dict):
            try:
                return source[name]
            except KeyError:
                raise AttributeError(f"GC event has no field {name!r}: give every mh_gc_event field") from None
        return getattr(source, name)

    def ages(self) -> list[int]:
        return [int(x) for x in self.bytes_by_age]


# ----------------------------------------------------------------------------- number formats


def _m(n: int) -> str:
    # The JDK divides by M and truncates: 61.9 MiB prints as 61M.
    return f"{int(n) >> 20}M"


def _k(n: int) -> str:
    return f"{int(n) >> 10}K"


def _ms(ns: int) -> str:
    return f"{int(ns) / 1e6:.3f}ms"


def _change(before: int, after: int, capacity: int) -> str:
    return f"{_k(before)}({_k(capacity)})->{_k(after)}({_k(capacity)})"


# ----------------------------------------------------------------------------- the log


class GCLog:
    """Writes GC lines at a level ("off", "gc", "gc*") to a stream or a file path.

    `start` is time.monotonic() at heap creation: every line's [uptime] counts from it.
    """

    def __init__(
        self,
        level: str = "gc",
        output: IO[str] | str | os.PathLike | None = None,
        start: float | None = None,
        max_tenuring_threshold: int = 15,
        clock=time.monotonic,
    ):
        if level not in LEVELS:
            raise ValueError(f"GC log level {level!r} is not one of {', '.join(LEVELS)}: use gc for one line per pause, gc* for details, off for none")
        self.level = level
        self.clock = clock  # replaceable so tests can print exact timestamps
        self.start = clock() if start is None else start
        self.max_tenuring_threshold = max_tenuring_threshold
        self._owned = isinstance(output, (str, os.PathLike))
        # A path is opened (and truncated, as the JDK does for -Xlog:...:file=) only if logging is on.
        if self._owned:
            self._out: IO[str] | None = open(output, "w", encoding="utf-8") if level != "off" else None  # type: ignore[arg-type]
        else:
            self._out = output if output is not None else sys.stdout
        # Unified logging pads each decoration to the widest seen so far on this output.
        self._widths = [0, 0, 0]

    @classmethod
    def from_spec(cls, spec: str, start: float | None = None, stream: IO[str] | None = None, max_tenuring_threshold: int = 15, clock=time.monotonic) -> GCLog:
        """From a gc_log setting such as "gc", "gc*:file=gc.log" or "off"; without a file, lines go to `stream` (stdout)."""
        level, path = parse_gc_log(spec)
        return cls(level, path if path is not None else stream, start, max_tenuring_threshold, clock)

    @classmethod
    def from_config(cls, config, start: float | None = None, stream: IO[str] | None = None, clock=time.monotonic) -> GCLog:
        """From a HeapConfig: its gc_log setting, and its tenuring_threshold as the max threshold."""
        return cls.from_spec(config.gc_log, start, stream, config.tenuring_threshold, clock)

    @property
    def enabled(self) -> bool:
        return self.level != "off"

    def close(self) -> None:
        if self._owned and self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> GCLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ writing lines

    def _wants(self, level: str, tags: tuple[str, ...]) -> bool:
        if self.level == "gc*":
            return True
        return self.level == "gc" and level == _INFO and tags == ("gc",)

    def write_line(self, level: str, tags: tuple[str, ...], message: str, at: float | None = None) -> None:
        """One decorated line, if the level selects it: [uptime][level][tags] message."""
        if self._out is None or not self._wants(level, tags):
            return
        uptime = (self.clock() if at is None else at) - self.start
        decorations = (f"{max(uptime, 0.0):.3f}s", level, ",".join(tags))
        self._widths = [max(w, len(d)) for w, d in zip(self._widths, decorations)]
        prefix = "".join(f"[{d:<{w}}]" for d, w in zip(decorations, self._widths))
        self._out.write(f"{prefix} {message}\n")

    def flush(self) -> None:
        if self._out is not None:
            self._out.flush()

    # ------------------------------------------------------------------ heap creation

    def log_start(self, config, views: list | None = None) -> None:
        """Lines printed when a heap is created, like the JDK's `Using Serial` and gc,init."""
        self.write_line(_INFO, ("gc",), f"Using Miniheap Copying (backend {config.backend}, mapping {config.mapping})")
        init = ("gc", "init")
        # gc,init lines pick a unit per value, as the JDK's "Heap Max Capacity: 64M" does.
        self.write_line(_INFO, init, f"Heap Max Capacity: {format_size(config.heap_size)}")
        self.write_line(_INFO, init, f"Region Size: {format_size(config.region_size)}")
        eden, survivor = _young_split(config)
        self.write_line(_INFO, init, f"Young Capacity: {format_size(config.young_size)} (Eden {format_size(eden)}, 2 Survivors of {format_size(survivor)})")
        self.write_line(_INFO, init, f"Tenuring Threshold: {config.tenuring_threshold} (max 15)")
        self.write_line(_INFO, init, f"Handle Table: {config.max_handles} handles")
        for view in views or ():
            self.write_line(_INFO, init, f"View {view.name}: {view.start:#x}-{view.start + view.length:#x} ({format_size(view.length)})")

    # ------------------------------------------------------------------ collections

    def log_event(self, event: object) -> None:
        """Write the lines for one collection (an mh_gc_event, or a dict/object with its fields)."""
        if not self.enabled:
            return
        e = _Event(event)
        now = self.clock()
        title = f"GC({e.id}) Pause {KIND_NAMES.get(int(e.kind), str(e.kind))} ({CAUSE_NAMES.get(int(e.cause), 'Unknown')})"
        # The event arrives after the pause: date the start line back by its length.
        self.write_line(_INFO, ("gc", "start"), title, at=now - int(e.ns_total) / 1e9)
        if int(e.kind) == GC_FULL:
            self._full_details(e, now)
            self._heap_lines(e, now)
        elif _field(e, "young_skipped"):
            # JDK 17: "promo attempt is not safe" (at trace level there), then an empty pause
            self.write_line(_DEBUG, ("gc",), f"GC({e.id}) Tenured: promo attempt is not safe: available({e.promotion_available}) < av_promo({e.promotion_average}), max_promo({int(e.eden_before) + int(e.survivor_before)})", now)
        else:
            self._young_details(e, now)
            if _field(e, "promotion_failed_objects"):
                # JDK 17 prints one debug line per object that could not be promoted
                # ("Promotion failure size = N) "); one line with the totals says the same.
                self.write_line(_DEBUG, ("gc", "promotion"), f"GC({e.id}) Promotion failure: {e.promotion_failed_objects} objects, {e.promotion_failed_bytes} bytes stay in young, forwarded to themselves", now)
                self.write_line(_INFO, ("gc", "promotion"), f"GC({e.id}) Promotion failed", now)
            else:
                # when a full collection follows, JDK 17 prints no heap lines for the young one
                self._heap_lines(e, now)
        self.write_line(_INFO, ("gc",), f"{title} {_m(e.used_before)}->{_m(e.used_after)}({_m(e.capacity)}) {_ms(e.ns_total)}", at=now)
        self.flush()

    def _young_details(self, e: _Event, now: float) -> None:
        gid = f"GC({e.id})"
        self.write_line(_DEBUG, ("gc", "phases"), f"{gid} Roots: {_ms(e.ns_roots)}", now)
        self.write_line(_DEBUG, ("gc", "phases"), f"{gid} Scan Cards: {_ms(e.ns_cards)} ({e.cards_scanned} dirty cards)", now)
        self.write_line(_DEBUG, ("gc", "phases"), f"{gid} Evacuate: {_ms(e.ns_evacuate)} ({_copied(e)})", now)
        self._age_lines(e, now)

    def _age_lines(self, e: _Event, now: float) -> None:
        gid, tt, most = f"GC({e.id})", e.tenuring_threshold, self.max_tenuring_threshold
        self.write_line(_DEBUG, ("gc", "age"), f"{gid} Survivor capacity {e.survivor_capacity} bytes, overflow {e.survivor_overflow_bytes} bytes, threshold {tt} (max threshold {most})", now)
        self.write_line(_DEBUG, ("gc", "age"), f"{gid} Age table with threshold {tt} (max threshold {most})", now)
        total = 0
        for age, size in enumerate(e.ages()):
            total += size
            if size:
                # Same widths as HotSpot's AgeTable::print_age_table.
                self.write_line(_DEBUG, ("gc", "age"), f"{gid} - age {age:3d}: {size:10d} bytes, {total:10d} total", now)

    def _full_details(self, e: _Event, now: float) -> None:
        gid = f"GC({e.id})"
        self.write_line(_INFO, ("gc", "phases"), f"{gid} Phase 1: Mark live objects {_ms(int(e.ns_roots) + int(e.ns_mark))}", now)
        self.write_line(_INFO, ("gc", "phases"), f"{gid} Phase 2: Evacuate regions {_ms(e.ns_evacuate)}", now)
        self.write_line(_INFO, ("gc", "phases"), f"{gid} Phase 3: Remap references {_ms(e.ns_remap)}", now)
        self.write_line(_DEBUG, ("gc", "phases"), f"{gid} Roots: {_ms(e.ns_roots)}", now)
        self.write_line(_DEBUG, ("gc", "marking"), f"{gid} Marked {_k(e.bytes_marked)} live of {_k(e.used_before)} used", now)
        self.write_line(_DEBUG, ("gc", "phases"), f"{gid} Evacuate: {_copied(e)}", now)

    def _heap_lines(self, e: _Event, now: float) -> None:
        gid = f"GC({e.id})"
        young_cap = int(e.eden_capacity) + int(e.survivor_capacity)
        young = _change(int(e.eden_before) + int(e.survivor_before), int(e.eden_after) + int(e.survivor_after), young_cap)
        eden = _change(e.eden_before, e.eden_after, e.eden_capacity)
        survivor = _change(e.survivor_before, e.survivor_after, e.survivor_capacity)
        # SerialGC's own labels, so the lines read (and parse) like a JDK log.
        self.write_line(_INFO, ("gc", "heap"), f"{gid} DefNew: {young} Eden: {eden} From: {survivor}", now)
        self.write_line(_INFO, ("gc", "heap"), f"{gid} Tenured: {_change(e.old_before, e.old_after, e.old_capacity)}", now)
        self.write_line(_DEBUG, ("gc", "heap"), f"{gid} Regions: {e.regions_evacuated} evacuated, {e.regions_freed} freed", now)
        color = COLOR_NAMES.get(int(e.good_color))
        if color is not None:
            self.write_line(_DEBUG, ("gc", "barrier"), f"{gid} Good colour: {color} (loads of other colours take the slow path and heal the field)", now)


def _field(e: _Event, name: str) -> int:
    """An event field that older event records may lack (0 then)."""
    try:
        return int(getattr(e, name))
    except AttributeError:
        return 0


def _copied(e: _Event) -> str:
    return f"{e.objects_copied} objects, {_k(e.bytes_copied)} copied, {_k(e.bytes_promoted)} promoted"


def _young_split(config) -> tuple[int, int]:
    young_regions = config.young_size // config.region_size
    survivor_regions = young_regions // (config.survivor_ratio + 2)
    eden_regions = young_regions - 2 * survivor_regions
    return eden_regions * config.region_size, survivor_regions * config.region_size


# ----------------------------------------------------------------------------- reading JVM logs

# Written against JDK 17 SerialGC output (tests/data/serialgc-jdk17*.log): the
# info-level pause line, with or without the padding unified logging adds to
# the decorations once wider tags have been printed. It also takes the labels
# G1 adds ("Pause Young (Normal) (G1 Evacuation Pause)") and label-less pauses
# ("Pause Remark"); the last label is the cause, and "System.gc()" keeps its
# parentheses.
JDK_GC_LINE_RE = re.compile(
    r"^(?:\[(?P<uptime>\d+\.\d+)s\s*\])?(?:\[[^\]]*\])*?"
    r"\[info\s*\]\[gc\s*\] "
    r"GC\((?P<id>\d+)\) Pause (?P<kind>\w+)"
    r"(?P<labels>(?: \((?:[^()]|\(\))*\))*) "
    r"(?P<before>\d+)(?P<before_unit>[KMG])->(?P<after>\d+)(?P<after_unit>[KMG])"
    r"\((?P<capacity>\d+)(?P<capacity_unit>[KMG])\) "
    r"(?P<ms>\d+(?:\.\d+)?)ms\s*$"
)

_LABEL_RE = re.compile(r"\(((?:[^()]|\(\))*)\)")
_UNIT = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


@frozen
class Pause:
    """One stop-the-world pause from a JDK (or miniheap) log. Sizes in bytes, as printed (truncated to whole M)."""

    id: int
    kind: str  # "young", "full", or for G1 "remark", "cleanup"
    cause: str  # "Allocation Failure", "System.gc()", ... ("" when the line has none)
    before: int
    after: int
    capacity: int
    ms: float
    uptime: float | None = None
    phase: str = ""  # G1's extra label, e.g. "Normal", "Concurrent Start"


def parse_gc_line(line: str) -> Pause | None:
    """The Pause on this line, or None if the line is not an info-level pause line."""
    match = JDK_GC_LINE_RE.match(line.rstrip("\n"))
    if match is None:
        return None
    labels = _LABEL_RE.findall(match["labels"])
    return Pause(
        id=int(match["id"]),
        kind=match["kind"].lower(),
        cause=labels[-1] if labels else "",
        before=int(match["before"]) * _UNIT[match["before_unit"]],
        after=int(match["after"]) * _UNIT[match["after_unit"]],
        capacity=int(match["capacity"]) * _UNIT[match["capacity_unit"]],
        ms=float(match["ms"]),
        uptime=float(match["uptime"]) if match["uptime"] else None,
        phase=" ".join(labels[:-1]),
    )


def parse_jvm_log(text: str) -> list[Pause]:
    """Every pause line of a JDK -Xlog:gc / -Xlog:gc* log (or a miniheap log), in order."""
    return [pause for line in io.StringIO(text) if (pause := parse_gc_line(line)) is not None]
