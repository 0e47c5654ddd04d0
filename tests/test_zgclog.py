"""The zgc collector's GC log against real JDK 17 ZGC logs, line shape for line shape.

The fixtures in tests/data are real JDK 17 output, made with ZgcFixture.java (its comment says how):
  zgc-jdk17.log               -Xlog:gc, -Xmx128m
  zgc-jdk17-gcstar.log        -Xlog:gc*, -Xmx128m
  zgc-jdk17-xmx1t-init.log    -Xlog:gc+init -Xmx1t -version
  zgc-jdk17-static-init.log   -Xlog:gc+init with one static GC thread

A line's shape is its tags and its text with every number, thread name and cause replaced by a
placeholder: every line miniheap prints must have a shape the JDK printed (except miniheap's own
Heap Backend/Mapping/View init lines, named below), and the lines the JDK prints for each cycle must
all be there.
"""
import io
import re
from pathlib import Path

import pytest

from miniheap.gclog import GCLog
from miniheap.heap import Heap
from miniheap.zgclog import ZGC_CAUSE_NAMES, ZgcFormat, _Table, medium_page_size, parse_zgc_log

from .conftest import small_config

DATA = Path(__file__).resolve().parent / "data"
JDK = (DATA / "zgc-jdk17.log").read_text()
JDK_STAR = (DATA / "zgc-jdk17-gcstar.log").read_text()
JDK_1T = (DATA / "zgc-jdk17-xmx1t-init.log").read_text()
JDK_STATIC = (DATA / "zgc-jdk17-static-init.log").read_text()  # one GC thread, as miniheap

LINE_RE = re.compile(r"^\[(?P<uptime>\d+\.\d+)s\]\[(?P<level>\w+)\s*\]\[(?P<tags>[\w,]+)\s*\] (?P<message>.*)$")
CAUSES = "|".join(re.escape(c) for c in sorted(set(ZGC_CAUSE_NAMES.values()), key=len, reverse=True))
# Lines the JDK prints that miniheap has no counterpart for (see zgclog.py's docstring), and miniheap's
# own init lines the JDK has no counterpart for.
JDK_ONLY = ("gc,metaspace", "gc,nmethod", "gc,ref", "Concurrent Process Non-Strong References", "Runtime Workers",
            "Uncommit Delay", "Available space on backing filesystem", "Min Capacity", "Initial Capacity",
            "Version:")
MINIHEAP_ONLY = ("Heap Backend:", "Heap Mapping:", "Heap View ")


def shape(tags, message):
    text = re.sub(rf"\((?:{CAUSES})\)", "(CAUSE)", message)
    text = re.sub(r"Stall \([^)]*\)", "Stall (THREAD)", text)
    text = re.sub(r"Version: .*", "Version: V", text)
    text = re.sub(r"Heap Backing (File|Filesystem): .*", r"Heap Backing \1: B", text)
    text = re.sub(r"(Large Page Support|Pre-touch|Uncommit): \w+( \(\w+\))?", r"\1: X", text)
    text = re.sub(r"Medium Page Size: (\d+M|N/A)", "Medium Page Size: N", text)
    text = re.sub(r"\d+(\.\d+)?", "N", text)
    return tags.replace(" ", ""), " ".join(text.split())


def shapes_of(text):
    out = []
    for line in text.splitlines():
        m = LINE_RE.match(line)
        if m is not None:
            out.append(shape(m["tags"], m["message"]))
    return out


def miniheap_log(selector, collector_events=True):
    return miniheap_run(selector)[0]


def miniheap_run(selector, **overrides):
    """The log of a short zgc run at this selector (three System.gc() cycles, then allocation until the
    heap is exhausted: a stall), and the run's events."""
    out = io.StringIO()
    config = small_config("memfd", "colored", collector="zgc", gc_log="off", **overrides)
    with Heap(config) as heap:
        log = GCLog(selector, out, start=heap.started, format=ZgcFormat())
        log.log_start(config, heap.views)
        keep = [heap.alloc(refs=1, data=64) for _ in range(200)]
        for _ in range(3):
            for _ in range(20000):
                heap.alloc(refs=1, data=64)
            heap.collect(full=True)
        stall = None
        try:
            while True:
                keep.append(heap.alloc(refs=0, data=3000))
        except Exception as e:  # the heap ran out: it stalled for a cycle first
            stall = e
        assert stall is not None
        events = list(heap.events)
        for event in events:
            log.log_event(event)
    return out.getvalue(), events


def test_every_line_we_print_has_a_jdk17_shape():
    ours = miniheap_log("gc*")
    jdk = set(shapes_of(JDK_STAR)) | set(shapes_of(JDK)) | set(shapes_of(JDK_STATIC))
    unmatched = [s for s in shapes_of(ours) if s not in jdk and not s[1].startswith(MINIHEAP_ONLY)]
    assert not unmatched, "lines the JDK never prints in that shape:\n" + "\n".join(map(str, unmatched[:10]))
    assert any("Allocation Stall" in s[1] for s in shapes_of(ours)), "no stall line in our log"


def test_each_cycle_prints_every_line_the_jdk_prints_for_a_cycle():
    # a heap with medium pages, as the fixture's (-Xmx128m: Medium Page Size 4M)
    ours = shapes_of(miniheap_run("gc*", heap_size="64M")[0])
    jdk_cycle = [s for s in shapes_of(JDK_STAR) if s[1].startswith("GC(N) ") and not any(x in s[0] + s[1] for x in JDK_ONLY)]
    missing = sorted(set(jdk_cycle) - set(ours))
    assert not missing, "JDK lines we never print:\n" + "\n".join(map(str, missing))


@pytest.mark.parametrize("heap_size, medium", [("8M", False), ("64M", True)])
def test_the_medium_pages_line_only_when_the_heap_has_medium_pages(heap_size, medium):
    # JDK 17 prints "Medium Pages: ..." only with a medium page size (ZStatRelocation: not at -Xmx64m,
    # whose init line says "Medium Page Size: N/A"; the gc* fixture's -Xmx128m has 4M medium pages)
    text, _ = miniheap_run("gc*", heap_size=heap_size)
    init = re.search(r"Medium Page Size: (\S+)", text)[1]
    assert (init != "N/A") == medium
    reloc = re.findall(r"GC\(\d+\) (\w+) Pages: ", text)
    assert reloc and ("Medium" in reloc) == medium, (init, sorted(set(reloc)))
    assert "Medium Pages: " in JDK_STAR and "Medium Page Size: 4M" in JDK_STAR


def test_the_gc_selector_prints_what_the_jdk_prints_at_gc():
    ours = shapes_of(miniheap_log("gc"))
    assert {s[0] for s in ours} == {"gc"}
    assert set(ours) <= set(shapes_of(JDK)), set(ours) - set(shapes_of(JDK))
    assert ("gc", "Using The Z Garbage Collector") in ours
    assert ("gc", "GC(N) Garbage Collection (CAUSE) NM(N%)->NM(N%)") in ours


def test_the_heap_table_is_the_jdks_byte_for_byte():
    """GC(1) of the gc* fixture, rebuilt from its own figures."""
    want = [LINE_RE.match(line)["message"] for line in JDK_STAR.splitlines()
            if "GC(1)" in line and "gc,heap" in line][3:]
    m = 1 << 20
    used = [40 * m, 90 * m, 100 * m, 120 * m]
    event = dict(capacity=128 * m, used_at=used, reclaimed_at=[0, 0, 0, 29 * m], live=7 * m,
                 used_high=122 * m, used_low=40 * m)
    lines = [line.message for line in ZgcFormat._heap_lines(event, "GC(1)", 0.0)][2:]
    # the JDK's own rounding of live, allocated and garbage differs from ours by up to 1M: compare the
    # rows whose figures we gave it, and the layout of all
    assert lines[0] == want[0] and lines[1] == want[1]
    for ours, theirs in zip(lines, want):
        assert len(ours) == len(theirs) and [i for i, c in enumerate(ours) if c == "M"] == \
            [i for i, c in enumerate(theirs) if c == "M"], f"\n{ours!r}\n{theirs!r}"
    assert _Table.size(None, 1) == " " * 9 + "-" + " " * 9



@pytest.mark.parametrize("memory, printed", [(25276502016, "24105M"), (128 << 30, "128G")])
def test_memory_in_the_jdks_proper_unit(monkeypatch, memory, printed):
    # JDK 17's ZGC prints the shared "Memory:" line (byte_size_in_proper_unit): M below 100G, so the
    # fixture's 23.5 GiB machine shows "Memory: 24105M"; a 128 GiB machine "Memory: 128G", not "131072M".
    assert "[gc,init] Memory: 24105M" in JDK_STAR
    pages = memory // 4096  # 25276502016 bytes: the fixtures' machine, 23.5 GiB
    monkeypatch.setattr("os.sysconf", lambda name: {"SC_PHYS_PAGES": pages, "SC_PAGE_SIZE": 4096}[name])
    out = io.StringIO()
    GCLog("gc*", out, start=0.0, format=ZgcFormat()).log_start(small_config("memfd", "colored", collector="zgc"), [])
    assert f"[gc,init] Memory: {printed}\n" in out.getvalue()

def test_medium_page_size_and_colour_bits_as_the_fixtures_show():
    star_init = {m["message"].split(":")[0]: m["message"] for line in JDK_STAR.splitlines()
                 if (m := LINE_RE.match(line)) and m["tags"].strip() == "gc,init" and ":" in m["message"]}
    assert star_init["Medium Page Size"] == "Medium Page Size: 4M"  # -Xmx128m
    assert medium_page_size(128 << 20, 2 << 20) == 4 << 20
    assert medium_page_size(64 << 20, 2 << 20) == 0  # "N/A" below 128M
    assert medium_page_size(1 << 40, 2 << 20) == 32 << 20
    assert "Medium Page Size: 32M" in JDK_1T and "Address Space Size: 16777216M x 3" in JDK_1T


def test_parse_reads_the_jdks_pauses_phases_and_stalls():
    jdk = parse_zgc_log(JDK_STAR)
    names = {n for _, n, _ in jdk["pauses"]}
    assert names == {"Pause Mark Start", "Pause Mark End", "Pause Relocate Start"}
    assert {"Concurrent Mark", "Concurrent Relocate"} <= {n for _, n, _ in jdk["concurrent"]}
    assert jdk["stalls"] and {s[0] for s in jdk["stalls"]} == {"Allocation Stall", "Relocation Stall"}
    assert {c[1] for c in jdk["cycles"]} >= {"Warmup", "Allocation Stall", "System.gc()"}
    ours = parse_zgc_log(miniheap_log("gc*"))
    assert {n for _, n, _ in ours["pauses"]} == names and ours["stalls"] and ours["cycles"]


@pytest.mark.parametrize("fixture", ["zgc-jdk17.log", "zgc-jdk17-gcstar.log"])
def test_fixture_is_real_jdk17_zgc_output(fixture):
    text = (DATA / fixture).read_text()
    assert "Using The Z Garbage Collector" in text
    assert re.search(r"GC\(\d+\) Garbage Collection \(Warmup\) \d+M\(\d+%\)->\d+M\(\d+%\)", text)


@pytest.mark.parametrize("selector", ["gc", "gc*"])
def test_a_gc_log_parser_from_pypi_reads_our_zgc_log_as_zgc(selector):
    """jvmind-ce's parser (tests/test_gclog_jdk.py says where it comes from) takes a real JDK 17 ZGC log
    as collector "Z": ours must be read the same, with our cycles' figures and phase times."""
    from .test_gclog_jdk import jvmind_gc_analyzer

    analyzer = jvmind_gc_analyzer()
    jdk = analyzer.parse_gc_log(JDK_STAR if selector == "gc*" else JDK)
    assert jdk["collector"] == "Z" and jdk["events"]  # the control
    text, events = miniheap_run(selector)
    ours = analyzer.parse_gc_log(text)
    assert ours["collector"] == "Z", ours["collector"]
    cycles = {int(e.id): e for e in events if e.zgc and not e.stall}
    parsed = [e for e in ours["events"] if e.category not in ("ZGC", "Concurrent")]
    assert parsed, "the parser found none of our cycles"
    for got in parsed:  # the cycles it reads at gc level (System.gc(), Allocation Stall, ...)
        event = cycles[got.id]
        assert (got.heap_before_mb, got.heap_after_mb) == (event.used_before >> 20, event.used_after >> 20)
        # the cause of that very cycle: which rule started the director's cycles depends on the timing
        # of its ticks (a Proactive or High Usage cycle is as much zgc's as a Warmup one)
        assert got.cause == ZGC_CAUSE_NAMES[event.cause], (got.id, got.cause, event.cause)
    if selector == "gc*":
        assert ours["heap_max_mb"] == small_config("memfd").heap_size >> 20
        jdk_phases = {e.cause for e in jdk["events"] if e.category in ("ZGC", "Concurrent")}
        phases = [(e.id, e.category, e.cause, e.duration_ms) for e in ours["events"] if e.category in ("ZGC", "Concurrent")]
        want = [(gid, "ZGC" if p.pause else "Concurrent", p.name, round(p.duration_ns / 1e6, 3))
                for gid, event in sorted(cycles.items()) for p in event.phases]
        assert sorted(phases) == sorted(want)
        assert {p[2] for p in phases} == jdk_phases - {"Concurrent Process Non-Strong References"}


def test_no_version_line_a_parser_would_read_as_a_jdk_version():
    """garbagecat reads "Version:" as a JDK build string; miniheap's made it set aside every gc,init line
    after it. The JDK's other init lines are all there, in the JDK's order."""
    ours = [s[1].split(":")[0] for s in shapes_of(miniheap_log("gc*")) if s[0] == "gc,init"]
    assert "Version" not in ours, ours
    jdk = [s[1].split(":")[0] for s in shapes_of(JDK_STAR) if s[0] == "gc,init" and not any(x in s[1] for x in JDK_ONLY)]
    assert [name for name in ours if name in jdk] == jdk
