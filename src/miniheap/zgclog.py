"""The GC log of the zgc collector, in JDK 17 ZGC's format (-Xlog:gc, -Xlog:gc*).

``gclog.GCLog`` picks this format for a heap whose collector is zgc. What JDK 17 prints and this
module prints the same way, line for line (tests/test_zgclog.py checks the shape of every line against
real JDK 17 logs in tests/data, made by ZgcFixture.java):

    [gc]            Using The Z Garbage Collector
                    GC(3) Garbage Collection (Warmup) 56M(22%)->32M(12%)
                    Allocation Stall (MainThread) 2.104ms
    [gc,init]       Initializing The Z Garbage Collector, CPUs, Memory, Address Space Size, Medium Page
                    Size, Max Capacity, ...
    [gc,start]      GC(3) Garbage Collection (Warmup)
    [gc,phases]     GC(3) Pause Mark Start 0.012ms, Concurrent Mark 12.345ms, ... (every phase, as timed)
    [gc,load]       GC(3) Load: 0.52/0.40/0.31
    [gc,mmu]        GC(3) MMU: 2ms/99.1%, 5ms/99.6%, ... (computed here from the pauses so far)
    [gc,marking]    GC(3) Mark: ..., Mark Stack Usage
    [gc,reloc]      GC(3) Small Pages: 19 / 38M, Empty: 0M, Relocated: 5M, In-Place: 0 (and Medium, Large),
                    Forwarding Usage
    [gc,heap]       GC(3) Max and Soft Max Capacity and the table of Mark Start, Mark End, Relocate Start,
                    Relocate End, High, Low: Capacity, Free, Used, Live, Allocated, Garbage, Reclaimed
    [gc,heap,exit]  Heap, ZHeap used 38M, capacity 128M, max capacity 128M (once, when the heap closes)

What differs, said plainly: the JDK's gc,nmethod, gc,metaspace and gc,ref lines have no counterpart
(miniheap has no compiled code, no metaspace, no weak references), and so has no "Concurrent Process
Non-Strong References" phase; the exit summary ends after its ZHeap line, without the JDK's Metaspace
and class space lines. The thread in a stall line is the Python (or C) thread's name, where the
JDK names the Java thread. "Address Space Size" is what miniheap reserves, one heap per view: the JDK
reserves 16 times the heap per view. miniheap never uncommits ("Uncommit: Disabled"), and "In-Place" is
always 0: it keeps a relocation reserve (as JDK 11 to 15) where JDK 16+ relocates a page in place.
There is no "Version:" line (nor in the serial log): the JDK names its own build there, and parsers
such as garbagecat read it as a JDK version string, which miniheap has none of; an unreadable version
line made garbagecat set aside every gc,init line after it.
"""
from __future__ import annotations

import os
import re
from typing import Iterator

from miniheap.gclog import FORMATS, Line, _m, _ms, _proper
from miniheap.sizes import format_size
from miniheap.spans import CONCURRENT, PAUSE, Span, field_of

_INFO = "info"

# The C core's causes (miniheap.h MH_CAUSE_*) with the JDK's GCCause strings.
ZGC_CAUSE_NAMES = {0: "Allocation Failure", 1: "System.gc()", 3: "Warmup", 4: "Allocation Rate",
                   5: "Proactive", 6: "Allocation Stall", 7: "High Usage", 8: "Timer"}
KIND_ZGC, KIND_ALLOCATION_STALL, KIND_RELOCATION_STALL = 2, 3, 4
STALL_NAMES = {KIND_ALLOCATION_STALL: "Allocation Stall", KIND_RELOCATION_STALL: "Relocation Stall"}
GC_THREAD = "ZDriver"  # JDK 17's name for the thread that runs the cycle (here it runs the pauses too)
MMU_WINDOWS_MS = (2, 5, 10, 20, 50, 100)
PAGE_TYPES = ("Small", "Medium", "Large")


def medium_page_size(heap_size: int, granule: int) -> int:
    """JDK 17's medium page for a heap (ZHeuristics::set_medium_page_size), 0 when there is none."""
    clamped = min(max(heap_size // 32, granule), granule * 16)
    size = 1 << (clamped.bit_length() - 1)
    return size if size > granule else 0


def cycle_title(event) -> str:
    cause = ZGC_CAUSE_NAMES.get(int(field_of(event, "cause")), "Unknown")
    return f"GC({field_of(event, 'id')}) Garbage Collection ({cause})"


def zgc_spans(event, started: float, mutator_thread: str | None = None) -> list[Span]:
    """A zgc cycle as spans: the cycle on the GC thread, its pauses and concurrent phases with the start
    times the C core measured (CLOCK_MONOTONIC, as time.monotonic). A stall is a span on the mutator's
    thread."""
    kind = int(field_of(event, "kind"))
    if kind in STALL_NAMES:
        start = int(field_of(event, "start_ns")) / 1e9 - started
        return [Span(STALL_NAMES[kind], start, int(field_of(event, "ns_total")) / 1e9,
                     mutator_thread or "MainThread", PAUSE, 0, None, {"stall": STALL_NAMES[kind]})]
    gc_id = int(field_of(event, "id"))
    start = int(field_of(event, "start_ns")) / 1e9 - started
    args = {"cause": ZGC_CAUSE_NAMES.get(int(field_of(event, "cause")), "Unknown"),
            "used_before": int(field_of(event, "used_before")), "used_after": int(field_of(event, "used_after")),
            "live": int(field_of(event, "live")),
            "objects_relocated_by_gc": int(field_of(event, "objects_relocated_by_gc")),
            "objects_relocated_by_mutator": int(field_of(event, "objects_relocated_by_mutator")),
            "loads_slow": int(field_of(event, "loads_slow"))}
    spans = [Span(cycle_title(event), start, int(field_of(event, "ns_total")) / 1e9, GC_THREAD, CONCURRENT, 0,
                  gc_id, args)]
    for phase in field_of(event, "phases"):
        thread = GC_THREAD if phase.thread == "gc" else (mutator_thread or "MainThread")
        spans.append(Span(phase.name, phase.start_ns / 1e9 - started, phase.duration_ns / 1e9, thread,
                          PAUSE if phase.pause else CONCURRENT, 0 if phase.pause else 1, gc_id))
    return spans


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def _size_pct(n: int, capacity: int) -> str:
    """``56M(22%)``, as the pause line prints a size."""
    return f"{int(n) >> 20}M({_pct(n, capacity):.0f}%)"


class _Table:
    """JDK 17's ZStatTablePrinter, as ZStatHeap uses it: a label right-aligned in 10 columns, then cells
    of 19 (a size with its M at the 10th column, or a heading centred), and one trailing space."""

    @staticmethod
    def row(gid: str, label: str, cells: list[str]) -> str:
        return f"{gid} {label:>10}" + "".join(cells) + " "

    @staticmethod
    def size(n: int | None, capacity: int) -> str:
        if n is None:
            return f"{'-':>10}".ljust(19)
        return f"{int(n) >> 20:>9}M ({_pct(n, capacity):.0f}%)".ljust(19)

    @staticmethod
    def heading(text: str) -> str:
        pad = 19 - len(text)
        left = (pad + 1) // 2
        return " " * left + text + " " * (pad - left)


class ZgcFormat:
    """The lines JDK 17's ZGC prints, filled from miniheap's zgc collector."""

    collector = "The Z Garbage Collector"

    def __init__(self, max_tenuring_threshold: int = 15):
        self._pauses: list[tuple[float, float]] = []  # (start, end) of every pause so far: the MMU
        self._mmu = {w: 100.0 for w in MMU_WINDOWS_MS}
        self._medium_pages = True  # whether the heap has medium pages: known once start_lines has run

    def start_lines(self, config, views=None, at: float = 0.0) -> Iterator[Line]:
        init = ("gc", "init")
        cpus = os.cpu_count() or 1
        available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
        huge = config.backend == "memfd-hugetlb"
        medium = medium_page_size(config.heap_size, config.region_size)
        self._medium_pages = medium > 0
        view_mb = config.heap_size >> 20
        backing = {"memfd": "/memfd:miniheap", "memfd-hugetlb": "/memfd:miniheap.hugetlb",
                   "shm-mremap": "SysV shared memory (shmget)", "anon-mremap": "/dev/zero (deleted), MAP_SHARED"}
        for text in ("Initializing The Z Garbage Collector",
                     "NUMA Support: Disabled",
                     f"CPUs: {cpus} total, {available} available",
                     f"Memory: {_proper(memory)}",
                     f"Large Page Support: {'Enabled (Explicit)' if huge else 'Disabled'}",
                     "GC Workers: 1/1 (static)",
                     "Address Space Type: Contiguous/Unrestricted/Complete",
                     f"Address Space Size: {view_mb}M x 3 = {3 * view_mb}M",
                     f"Heap Backing File: {backing.get(config.backend, config.backend)}",
                     f"Heap Backing Filesystem: {'hugetlbfs' if huge else 'tmpfs'}",
                     f"Min Capacity: {_m(config.region_size)}",
                     f"Initial Capacity: {_m(config.heap_size if config.pretouch else config.region_size)}",
                     f"Max Capacity: {_m(config.heap_size)}",
                     f"Medium Page Size: {_m(medium) if medium else 'N/A'}",
                     f"Pre-touch: {'Enabled' if config.pretouch else 'Disabled'}",
                     "Uncommit: Disabled",
                     f"Heap Backend: {config.backend}",
                     f"Heap Mapping: {config.mapping} (colour bits at {config.color_bits})"):
            yield Line(_INFO, init, text, at)
        for view in views or ():
            yield Line(_INFO, init, f"Heap View {view.name}: {view.start:#018x}-{view.start + view.length:#018x} "
                                    f"({format_size(view.length)})", at)
        yield Line(_INFO, ("gc",), f"Using {self.collector}", at)

    # ------------------------------------------------------------------ one cycle

    def event_lines(self, event, end: float) -> Iterator[Line]:
        kind = int(field_of(event, "kind"))
        thread = field_of(event, "thread", None) or "MainThread"
        if kind in STALL_NAMES:
            yield Line(_INFO, ("gc",), f"{STALL_NAMES[kind]} ({thread}) {_ms(field_of(event, 'ns_total'))}", end)
            return
        if kind != KIND_ZGC:
            return
        started = end - int(field_of(event, "ns_total")) / 1e9
        gid = f"GC({field_of(event, 'id')})"
        phases = list(field_of(event, "phases"))
        # phases carry CLOCK_MONOTONIC times; place them relative to the cycle's own start
        t0 = int(field_of(event, "start_ns"))
        at = lambda ns: started + (ns - t0) / 1e9  # noqa: E731
        yield Line(_INFO, ("gc", "start"), cycle_title(event), started)
        yield Line(_INFO, ("gc", "task"), f"{gid} Using {int(field_of(event, 'gc_workers', 1) or 1)} workers", started)
        for p in phases:
            yield Line(_INFO, ("gc", "phases"), f"{gid} {p.name} {_ms(p.duration_ns)}", at(p.start_ns + p.duration_ns))
            if p.pause:
                self._pause(at(p.start_ns), at(p.start_ns + p.duration_ns))
        if hasattr(os, "getloadavg"):
            load = "/".join(f"{x:.2f}" for x in os.getloadavg())
            yield Line(_INFO, ("gc", "load"), f"{gid} Load: {load}", end)
        mmu = ", ".join(f"{w}ms/{self._mmu[w]:.1f}%" for w in MMU_WINDOWS_MS)
        yield Line(_INFO, ("gc", "mmu"), f"{gid} MMU: {mmu}", end)
        ends = int(field_of(event, "mark_ends"))
        yield Line(_INFO, ("gc", "marking"), f"{gid} Mark: 1 stripe(s), 0 proactive flush(es), {ends} terminate "
                                             f"flush(es), 0 completion(s), {max(ends - 1, 0)} continuation(s) ", end)
        yield Line(_INFO, ("gc", "marking"), f"{gid} Mark Stack Usage: {_m(field_of(event, 'mark_stack_bytes'))}", end)
        yield from self._reloc_lines(event, gid, end, self._medium_pages)
        yield from self._heap_lines(event, gid, end)
        capacity = int(field_of(event, "capacity"))
        yield Line(_INFO, ("gc",), f"{cycle_title(event)} {_size_pct(field_of(event, 'used_before'), capacity)}->"
                                   f"{_size_pct(field_of(event, 'used_after'), capacity)}", end)

    def exit_lines(self, summary, at: float) -> Iterator[Line]:
        """The "Heap" block JDK 17 prints at exit (gc,heap,exit), as ZHeap::print_on, from a
        :class:`~miniheap.heapsummary.ZgcSummary`: used (whole pages, as the cycle lines count it),
        capacity (committed) and max capacity, each truncated to whole M."""
        tags = ("gc", "heap", "exit")
        yield Line(_INFO, tags, "Heap", at)
        yield Line(_INFO, tags, f" ZHeap           used {_m(summary.used)}, capacity {_m(summary.capacity)}, "
                                f"max capacity {_m(summary.max_capacity)}", at)

    def _pause(self, start: float, end: float) -> None:
        """The minimum mutator utilisation, as JDK 17's ZStatMMU keeps it: for each window, the least
        share of it the mutators had, over every window that ends at the end of a pause, so far."""
        self._pauses.append((start, end))
        horizon = end - max(MMU_WINDOWS_MS) / 1e3
        self._pauses = [p for p in self._pauses if p[1] > horizon]
        for w in MMU_WINDOWS_MS:
            window = w / 1e3
            paused = sum(max(0.0, min(e, end) - max(s, end - window)) for s, e in self._pauses)
            self._mmu[w] = min(self._mmu[w], max(0.0, 100.0 * (window - paused) / window))

    @staticmethod
    def _reloc_lines(event, gid: str, end: float, medium_pages: bool = True) -> Iterator[Line]:
        # JDK 17's ZStatRelocation prints the Medium line only when the heap has medium pages
        pages = field_of(event, "pages")
        page_bytes = field_of(event, "page_bytes")
        empty = field_of(event, "empty_bytes")
        relocated = field_of(event, "relocated_bytes")
        for t, name in enumerate(PAGE_TYPES):
            if name == "Medium" and not medium_pages:
                continue
            yield Line(_INFO, ("gc", "reloc"), f"{gid} {name} Pages: {int(pages[t])} / {_m(page_bytes[t])}, "
                                               f"Empty: {_m(empty[t])}, Relocated: {_m(relocated[t])}, In-Place: 0", end)
        yield Line(_INFO, ("gc", "reloc"), f"{gid} Forwarding Usage: {_m(field_of(event, 'forwarding_bytes'))}", end)

    @staticmethod
    def _heap_lines(event, gid: str, end: float) -> Iterator[Line]:
        capacity = int(field_of(event, "capacity"))
        used = [int(x) for x in field_of(event, "used_at")]
        reclaimed = [int(x) for x in field_of(event, "reclaimed_at")]
        live = int(field_of(event, "live"))
        high, low = int(field_of(event, "used_high")), int(field_of(event, "used_low"))
        # JDK 17's ZStatHeap: allocated since Mark Start = used + reclaimed - used at Mark Start; garbage
        # = what Mark Start's used holds beyond the live bytes, less what has been reclaimed
        allocated = [None] + [max(0, used[i] + reclaimed[i] - used[0]) for i in (1, 2, 3)]
        garbage = [None] + [max(0, used[0] - live - reclaimed[i]) for i in (1, 2, 3)]
        heap = ("gc", "heap")
        # (no "Min Capacity": miniheap commits lazily and has no -Xms)
        for label, value in (("Max Capacity", capacity), ("Soft Max Capacity", capacity)):
            yield Line(_INFO, heap, f"{gid} {label}: {_size_pct(value, capacity)}", end)
        t = _Table
        yield Line(_INFO, heap, t.row(gid, "", [t.heading(h) for h in ("Mark Start", "Mark End", "Relocate Start",
                                                                       "Relocate End", "High", "Low")]), end)
        rows = (("Capacity:", [capacity] * 6),
                ("Free:", [capacity - u for u in used] + [capacity - low, capacity - high]),
                ("Used:", used + [high, low]),
                ("Live:", [None, live, live, live, None, None]),
                ("Allocated:", allocated + [None, None]),
                ("Garbage:", garbage + [None, None]),
                ("Reclaimed:", [None, None, reclaimed[2], reclaimed[3], None, None]))
        for label, values in rows:
            yield Line(_INFO, heap, t.row(gid, label, [t.size(v, capacity) for v in values]), end)


FORMATS["zgc"] = ZgcFormat


# ----------------------------------------------------------------------------- reading ZGC logs

_PHASE_RE = re.compile(r"\]\s*GC\((?P<id>\d+)\) (?P<name>(?:Pause|Concurrent) [A-Za-z -]+?) (?P<ms>\d+\.\d+)ms\s*$")
_STALL_RE = re.compile(r"\]\s*(?P<name>Allocation Stall|Relocation Stall) \((?P<thread>[^)]*)\) (?P<ms>\d+\.\d+)ms\s*$")
_CYCLE_RE = re.compile(r"\]\s*GC\((?P<id>\d+)\) Garbage Collection \((?P<cause>[^)]*(?:\(\))?)\) "
                       r"(?P<before>\d+)M\((?P<bp>\d+)%\)->(?P<after>\d+)M\((?P<ap>\d+)%\)\s*$")


def parse_zgc_log(text: str) -> dict:
    """The pauses, concurrent phases, stalls and cycles of a ZGC log (JDK 17's -Xlog:gc* or miniheap's):
    {"pauses": [(gc_id, name, ms)], "concurrent": [(gc_id, name, ms)], "stalls": [(name, thread, ms)],
    "cycles": [(gc_id, cause, before_mb, after_mb)]}."""
    out = {"pauses": [], "concurrent": [], "stalls": [], "cycles": []}
    for line in text.splitlines():
        if (m := _PHASE_RE.search(line)) is not None:
            kind = "pauses" if m["name"].startswith("Pause") else "concurrent"
            out[kind].append((int(m["id"]), m["name"], float(m["ms"])))
        elif (m := _STALL_RE.search(line)) is not None:
            out["stalls"].append((m["name"], m["thread"], float(m["ms"])))
        elif (m := _CYCLE_RE.search(line)) is not None:
            out["cycles"].append((int(m["id"]), m["cause"], int(m["before"]), int(m["after"])))
    return out
