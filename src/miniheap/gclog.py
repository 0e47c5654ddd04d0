"""The GC log, written in the JDK 17 unified-logging format (-Xlog:gc, -Xlog:gc*).

Why copy the JDK's format: anyone who has read a Java GC log can read this one, and the tools that
parse JVM logs read ours unchanged (``tests/test_gclog.py`` checks the shape of every line we print
against real JDK 17 SerialGC logs, and runs a GC-log parser from PyPI over ours). The info-level pause
line is exactly SerialGC's:

    [0.052s][info][gc] GC(0) Pause Young (Allocation Failure) 12M->3M(64M) 1.234ms

Selectors, as the JDK's -Xlog takes them (each may end in ``:file=PATH``):
    off          nothing
    gc           the lines tagged exactly ``gc`` at info: the collector's name and one line per pause
    gc*          every gc-tagged line at info: configuration, generation sizes, full-GC phases,
                 and the gc,heap,exit summary ("Heap", each generation and space) when the heap closes
    gc*=debug    and the debug lines: every phase, the desired survivor size and tenuring threshold
    gc*=trace    and the trace lines: the age table

What is miniheap's and not the JDK's, said plainly: the JDK's gc,metaspace and gc,cpu lines have no
counterpart (miniheap has no metaspace and does not time CPU per pause), nor have the exit summary's
last two lines (Metaspace, class space); in that summary the tenured space's top is where the highest
old object ends, with free regions possibly below it (old is a set of regions, not one contiguous
space), and each generation's committed end is its end (the view maps it whole from the start, while
old regions get their pages one by one as they are taken); the young collection's phases
are miniheap's (Roots, Scan Cards, Evacuate; SerialGC logs none); a full collection has three phases
(mark, evacuate, remap) where SerialGC has four (mark, compute addresses, adjust pointers, move). What
the JDK's log has no line for (objects copied, dirty cards, regions freed, the good colour) is in the
trace events and the HTML report instead.

The collector (C) never prints: it fills an mh_gc_event and this module turns it into lines. Events may
be cffi structs, dicts, or any object with the same names. The Serial format is one class,
:class:`SerialFormat`; another collector's format is another class with the same two methods.
"""

from __future__ import annotations

import io
import os
import re
import sys
import time
from typing import IO, Iterator, NamedTuple

from attrs import frozen

from miniheap.config import parse_gc_log
from miniheap.sizes import format_size
from miniheap.spans import (CAUSE_ALLOCATION_FAILURE, CAUSE_EXPLICIT, CAUSE_NAMES,  # noqa: F401
                            COLOR_NAMES, GC_FULL, GC_YOUNG, KIND_NAMES, collection_title, field_of,
                            serial_spans)

# Every selector GCLog takes; "gc=info" and "gc*=info" are the same as "gc" and "gc*".
LEVELS = ("off", "gc", "gc*", "gc*=debug", "gc*=trace", "gc=debug", "gc=trace")
LEVEL_RANK = {"error": 0, "warning": 1, "info": 2, "debug": 3, "trace": 4}
_INFO, _DEBUG, _TRACE = "info", "debug", "trace"
_SELECTOR_RE = re.compile(r"(?P<tags>gc\*?)(?:=(?P<level>info|debug|trace))?")


class Line(NamedTuple):
    """One log line before decoration: its level, tag set, text, and when it happened (seconds since
    the heap was created)."""

    level: str
    tags: tuple[str, ...]
    message: str
    at: float


class Selection:
    """Which lines a selector such as ``gc*=debug`` prints, by the JDK's rule: ``gc`` is the tag set
    that is exactly (gc), ``gc*`` every tag set that starts with gc; a level prints itself and the
    levels above it (info prints warnings and errors, debug prints info, and so on)."""

    def __init__(self, selector: str):
        self.selector = selector
        if selector == "off":
            self.wildcard, self.level = False, None
            return
        match = _SELECTOR_RE.fullmatch(selector)
        if match is None:
            raise ValueError(f"GC log selector {selector!r} is not one of {', '.join(LEVELS)}: use gc for one line "
                             f"per pause, gc* for details, gc*=debug or gc*=trace for more, off for none")
        self.wildcard = match["tags"] == "gc*"
        self.level = match["level"] or _INFO

    @property
    def enabled(self) -> bool:
        return self.level is not None

    def wants(self, level: str, tags: tuple[str, ...]) -> bool:
        if self.level is None or LEVEL_RANK[level] > LEVEL_RANK[self.level]:
            return False
        return tags[0] == "gc" if self.wildcard else tags == ("gc",)


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


def _exact(n: int) -> str:
    # JDK 17's gc,init sizes (byte_size_in_exact_unit): the largest of G, M, K that divides the size
    # exactly, so -Xmx1g prints "1G" and Shenandoah's 256K regions "256K" where _m would say "0M".
    n = int(n)
    for letter, shift in (("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{letter}"
    return f"{n}B"


def _proper(n: int) -> str:
    # JDK 17's "Memory:" line (byte_size_in_proper_unit): G from 100G up, M from 100M, K from 100K,
    # truncated, so this machine's 23.5 GiB prints as 24105M and a 128 GiB one as 128G.
    n = int(n)
    for letter, shift in (("G", 30), ("M", 20), ("K", 10)):
        if n >= 100 << shift:
            return f"{n >> shift}{letter}"
    return f"{n}B"


def _k(n: int) -> str:
    return f"{int(n) >> 10}K"


def _ms(ns: int | float) -> str:
    return f"{float(ns) / 1e6:.3f}ms"


def _change(before: int, after: int, capacity: int) -> str:
    return f"{_k(before)}({_k(capacity)})->{_k(after)}({_k(capacity)})"


def _addr(address: int) -> str:
    # HotSpot's INTPTR_FORMAT: 0x and 16 hex digits
    return f"{int(address):#018x}"


def _generation(name: str, capacity: int, used: int, low: int, high: int, high_boundary: int) -> str:
    """A generation's exit line, as HotSpot's Generation::print_on pads it."""
    return (f" {name:<20} total {_k(capacity)}, used {_k(used)} [{_addr(low)}, {_addr(high)}, "
            f"{_addr(high_boundary)})")


def _space(space) -> str:
    """`` space 17472K,   2% used``, as HotSpot's Space::print_short_on (the percentage truncated)."""
    percent = int(space.used * 100 / space.capacity) if space.capacity else 0
    return f" space {_k(space.capacity)}, {percent:3d}% used"


CARD_BYTES = 512  # the card of the card table and block-offset table (native/serial/card.h CARD_SHIFT 9)


# ----------------------------------------------------------------------------- the Serial format


class SerialFormat:
    """The lines JDK 17's SerialGC prints, filled from miniheap's generational collector."""

    collector = "Serial"

    def __init__(self, max_tenuring_threshold: int = 15):
        self.max_tenuring_threshold = max_tenuring_threshold

    def start_lines(self, config, views=None, at: float = 0.0) -> Iterator[Line]:
        """``Using Serial`` and the gc,init lines, the JDK's own and then miniheap's (backend, mapping,
        views), each a ``Key: value`` as the JDK prints them."""
        yield Line(_INFO, ("gc",), f"Using {self.collector}", at)
        init = ("gc", "init")
        cpus = os.cpu_count() or 1
        available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
        huge = config.backend == "memfd-hugetlb"
        for text in (f"CPUs: {cpus} total, {available} available",
                     f"Memory: {_proper(memory)}",
                     f"Large Page Support: {'Enabled (Explicit)' if huge else 'Disabled'}",
                     f"Heap Max Capacity: {_exact(config.heap_size)}",
                     f"Pre-touch: {'Enabled' if config.pretouch else 'Disabled'}",
                     f"Heap Region Size: {_exact(config.region_size)}",
                     f"Heap Backend: {config.backend}",
                     f"Heap Mapping: {config.mapping}"):
            yield Line(_INFO, init, text, at)
        for view in views or ():
            yield Line(_INFO, init, f"Heap View {view.name}: {view.start:#018x}-{view.start + view.length:#018x} "
                                    f"({format_size(view.length)})", at)

    def event_lines(self, event, end: float) -> Iterator[Line]:
        """The lines of one collection that ended at ``end``, each dated when it happened."""
        e = _Event(event)
        spans = serial_spans(event, end)
        pause, phases = spans[0], spans[1:]
        gid, full = f"GC({e.id})", int(e.kind) == GC_FULL
        yield Line(_INFO, ("gc", "start"), pause.name, pause.start)
        if not full and int(field_of(event, "young_skipped", 0) or 0):
            # JDK 17 (GC(23) of serialgc-jdk17-star-trace.log.gz): old cannot take the padded average of
            # promotions, so the young collection is not attempted: an empty pause, a full one follows.
            yield Line(_TRACE, ("gc",), f"{gid} Tenured: promo attempt is not safe: available({int(e.promotion_available)}) "
                                        f"< av_promo({int(e.promotion_average)}), "
                                        f"max_promo({int(e.eden_before) + int(e.survivor_before)})", pause.start)
            yield self._pause_line(e, pause, end)
            return
        yield from self._phase_lines(gid, full, phases)
        if not full:
            if int(field_of(event, "promotion_failed_objects", 0) or 0):
                # JDK 17 (serialgc-jdk17-promotion-failed.log, GC(74)): "Promotion failed" at info and no
                # heap lines for the young pause; the full collection that follows is a pause of its own.
                # No age lines either: the JDK adjusts the threshold only after a young collection that
                # did not fail (DefNewGeneration::collect).
                yield Line(_INFO, ("gc", "promotion"), f"{gid} Promotion failed", end)
                yield self._pause_line(e, pause, end)
                return
            yield from self._age_lines(e, end)
        young_cap = int(e.eden_capacity) + int(e.survivor_capacity)
        young = _change(int(e.eden_before) + int(e.survivor_before), int(e.eden_after) + int(e.survivor_after), young_cap)
        eden = _change(e.eden_before, e.eden_after, e.eden_capacity)
        survivor = _change(e.survivor_before, e.survivor_after, e.survivor_capacity)
        yield Line(_INFO, ("gc", "heap"), f"{gid} DefNew: {young} Eden: {eden} From: {survivor}", end)
        yield Line(_INFO, ("gc", "heap"), f"{gid} Tenured: {_change(e.old_before, e.old_after, e.old_capacity)}", end)
        yield self._pause_line(e, pause, end)

    @staticmethod
    def _phase_lines(gid: str, full: bool, phases) -> Iterator[Line]:
        """A start and an end line per phase, a step's lines inside its phase's (the spans come parent
        first), so the lines run in time order as the JDK prints nested phases."""
        def level(span):
            # SerialGC logs a full collection's "Phase N" lines at info and nothing finer; the steps
            # inside them, and every phase of a young collection, are miniheap's and go to debug.
            return _INFO if full and span.depth == 1 else _DEBUG

        def end(span):
            return Line(level(span), ("gc", "phases"), f"{gid} {span.name} {_ms(span.duration * 1e9)}", span.end)

        open_spans = []
        for span in phases:
            while open_spans and open_spans[-1].depth >= span.depth:
                yield end(open_spans.pop())
            yield Line(level(span), ("gc", "phases", "start"), f"{gid} {span.name}", span.start)
            open_spans.append(span)
        while open_spans:
            yield end(open_spans.pop())

    @staticmethod
    def _pause_line(e: _Event, pause, end: float) -> Line:
        return Line(_INFO, ("gc",), f"{pause.name} {_m(e.used_before)}->{_m(e.used_after)}({_m(e.capacity)}) "
                                    f"{_ms(e.ns_total)}", end)

    def exit_lines(self, summary, at: float) -> Iterator[Line]:
        """The "Heap" block JDK 17 prints at exit (gc,heap,exit), from a
        :class:`~miniheap.heapsummary.SerialSummary`: each generation as HotSpot's Generation::print_on
        (reserved start, committed end, reserved end) and each space as its Space::print_on (bottom,
        top, end; the tenured space adds the block-offset table's next threshold before its end)."""
        tags = ("gc", "heap", "exit")
        eden, survivor, to, old = summary.eden, summary.from_space, summary.to_space, summary.old
        yield Line(_INFO, tags, "Heap", at)
        # The JDK counts young's capacity and use as eden and the from-space: the to-space is empty
        # between collections. Every young region is committed when the heap is made, so the
        # committed end is the reserved end, as the JDK's with -Xms = -Xmx.
        young_end = summary.young_end
        yield Line(_INFO, tags, _generation("def new generation", eden.capacity + survivor.capacity,
                                            eden.used + survivor.used, summary.young_bottom, young_end, young_end), at)
        for name, space in (("eden", eden), ("from", survivor), ("to  ", to)):
            yield Line(_INFO, tags, f"  {name}{_space(space)} [{_addr(space.bottom)}, {_addr(space.top)}, "
                                    f"{_addr(space.end)})", at)
        # Old regions are committed one by one as they are claimed, but the view maps the whole old
        # range read-write from the start (/proc/PID/maps shows one mapping): the committed end of the
        # address range is its end, and the capacity is the whole range, as the Tenured: lines count it.
        yield Line(_INFO, tags, _generation("tenured generation", old.capacity, old.used, old.bottom, old.end,
                                            old.end), at)
        # The block-offset table's threshold: the first card boundary above the last object, as the
        # JDK's (one card above bottom while the space is empty).
        threshold = max(-(-old.top // CARD_BYTES) * CARD_BYTES, old.bottom + CARD_BYTES)
        yield Line(_INFO, tags, f"   the{_space(old)} [{_addr(old.bottom)}, {_addr(old.top)}, {_addr(threshold)}, "
                                f"{_addr(old.end)})", at)

    def _age_lines(self, e: _Event, at: float) -> Iterator[Line]:
        # As the JDK's AgeTable: the survivors should fill at most the desired size (TargetSurvivorRatio,
        # half a survivor space), and the new threshold, computed from this collection's ages, is the
        # age at which the next one promotes; the table is printed with that threshold.
        gid, most = f"GC({e.id})", self.max_tenuring_threshold
        tt, desired = int(e.tenuring_threshold_new), int(e.survivor_desired)
        yield Line(_DEBUG, ("gc", "age"), f"{gid} Desired survivor size {desired} bytes, "
                                          f"new threshold {tt} (max threshold {most})", at)
        yield Line(_TRACE, ("gc", "age"), f"{gid} Age table with threshold {tt} (max threshold {most})", at)
        total = 0
        for age, size in enumerate(e.ages()):
            total += size
            if size:
                # Same widths as HotSpot's AgeTable::print_age_table.
                yield Line(_TRACE, ("gc", "age"), f"{gid} - age {age:3d}: {size:10d} bytes, {total:10d} total", at)


FORMATS = {"serial": SerialFormat}  # "zgc": ZgcFormat, added by miniheap.zgclog below


# ----------------------------------------------------------------------------- the log


class GCLog:
    """Writes GC lines selected by a selector ("off", "gc", "gc*", "gc*=debug", "gc*=trace") to a
    stream or a file path.

    `start` is time.monotonic() at heap creation: every line's [uptime] counts from it, and an event's
    own ``time`` (seconds since then, as Heap records it) dates its lines.
    """

    def __init__(
        self,
        level: str = "gc",
        output: IO[str] | str | os.PathLike | None = None,
        start: float | None = None,
        max_tenuring_threshold: int = 15,
        clock=time.monotonic,
        format=None,
    ):
        if level not in LEVELS and not _SELECTOR_RE.fullmatch(level):
            raise ValueError(f"GC log selector {level!r} is not one of {', '.join(LEVELS)}: use gc for one line "
                             f"per pause, gc* for details, gc*=debug or gc*=trace for more, off for none")
        self.level = level
        self.selection = Selection(level)
        self.clock = clock  # replaceable so tests can print exact timestamps
        self.start = clock() if start is None else start
        self.max_tenuring_threshold = max_tenuring_threshold
        self.format = format if format is not None else SerialFormat(max_tenuring_threshold)
        self._owned = isinstance(output, (str, os.PathLike))
        # A path is opened (and truncated, as the JDK does for -Xlog:...:file=) only if logging is on.
        if self._owned:
            self._out: IO[str] | None = open(output, "w", encoding="utf-8") if self.enabled else None  # type: ignore[arg-type]
        else:
            self._out = output if output is not None else sys.stdout
        # Unified logging pads each decoration to the widest seen so far on this output.
        self._widths = [0, 0, 0]
        self._exit_logged = False

    @classmethod
    def from_spec(cls, spec: str, start: float | None = None, stream: IO[str] | None = None, max_tenuring_threshold: int = 15, clock=time.monotonic, format=None) -> GCLog:
        """From a gc_log setting such as "gc", "gc*=debug:file=gc.log" or "off"; without a file, lines go to `stream` (stdout)."""
        level, path = parse_gc_log(spec)
        return cls(level, path if path is not None else stream, start, max_tenuring_threshold, clock, format)

    @classmethod
    def from_config(cls, config, start: float | None = None, stream: IO[str] | None = None, clock=time.monotonic) -> GCLog:
        """From a HeapConfig: its gc_log setting, its collector's format, and its tenuring_threshold as the max threshold."""
        fmt = FORMATS.get(getattr(config, "collector", "serial"), SerialFormat)(config.tenuring_threshold)
        return cls.from_spec(config.gc_log, start, stream, config.tenuring_threshold, clock, fmt)

    @property
    def enabled(self) -> bool:
        return self.selection.enabled

    def close(self) -> None:
        if self._owned and self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> GCLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ writing lines

    def write_line(self, level: str, tags: tuple[str, ...], message: str, at: float | None = None) -> None:
        """One decorated line, if the selector selects it: [uptime][level][tags] message.
        ``at`` is an absolute clock reading (as ``clock()`` returns)."""
        if self._out is None or not self.selection.wants(level, tags):
            return
        uptime = (self.clock() if at is None else at) - self.start
        decorations = (f"{max(uptime, 0.0):.3f}s", level, ",".join(tags))
        self._widths = [max(w, len(d)) for w, d in zip(self._widths, decorations)]
        prefix = "".join(f"[{d:<{w}}]" for d, w in zip(decorations, self._widths))
        try:
            self._out.write(f"{prefix} {message}\n")
        except BrokenPipeError:
            # The reader went away (``| head``): stop logging, and let the program's next print end it.
            self._out = None

    def _write(self, lines) -> None:
        for line in lines:
            self.write_line(line.level, line.tags, line.message, at=self.start + line.at)

    def flush(self) -> None:
        if self._out is not None:
            try:
                self._out.flush()
            except BrokenPipeError:
                self._out = None

    # ------------------------------------------------------------------ heap creation

    def log_start(self, config, views: list | None = None) -> None:
        """Lines printed when a heap is created, like the JDK's ``Using Serial`` and gc,init."""
        if self.enabled:
            self._write(self.format.start_lines(config, views, self.clock() - self.start))

    # ------------------------------------------------------------------ collections

    def log_event(self, event: object) -> None:
        """Write the lines of one collection (an mh_gc_event, or a dict/object with its fields). The
        event's ``time`` (seconds since heap creation) says when it ended; without one, now."""
        if not self.enabled:
            return
        when = getattr(_Event(event), "time", None) if not isinstance(event, dict) else event.get("time")
        end = float(when) if when is not None else self.clock() - self.start
        self._write(self.format.event_lines(event, end))
        self.flush()

    # ------------------------------------------------------------------ heap close

    EXIT_TAGS = ("gc", "heap", "exit")

    @property
    def wants_exit(self) -> bool:
        """Whether the selector prints the exit summary (gc,heap,exit at info: gc* does, gc does not)
        and it has not been printed yet: the caller need not read the heap's figures otherwise."""
        return self._out is not None and not self._exit_logged and self.selection.wants(_INFO, self.EXIT_TAGS)

    def log_exit(self, summary) -> None:
        """The "Heap" block the JDK prints as the JVM exits, once: a heap closes once, as a JVM exits
        once. ``summary`` is a :mod:`miniheap.heapsummary` record of the heap as it closes."""
        if not self.wants_exit:
            return
        self._exit_logged = True
        self._write(self.format.exit_lines(summary, self.clock() - self.start))
        self.flush()


def format_log(events, config, views=None, selector: str = "gc*=debug") -> str:
    """The whole log of a finished run, rebuilt from its events at any selector: what the report
    shows, whatever the run itself logged."""
    out = io.StringIO()
    log = GCLog(selector, out, start=0.0, max_tenuring_threshold=config.tenuring_threshold, clock=lambda: 0.0,
                format=FORMATS.get(getattr(config, "collector", "serial"), SerialFormat)(config.tenuring_threshold))
    log.log_start(config, views)
    for event in events:
        log.log_event(event)
    return out.getvalue()


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


# The zgc collector's format lives in a module of its own, which imports Line and the number formats
# from this one and registers itself in FORMATS (so the import comes last, whichever module is first).
import miniheap.zgclog  # noqa: E402,F401
