"""GC log format tests.

The fixtures in tests/data are real JDK 17 output, made with SerialGcFixture.java
(the commands are at the top of that file):
  serialgc-jdk17.log                 -Xlog:gc
  serialgc-jdk17-gcstar.log          -Xlog:gc*,gc+age=trace
  serialgc-jdk17-star.log            -Xlog:gc*
  serialgc-jdk17-star-debug.log.gz   -Xlog:gc*=debug
  serialgc-jdk17-star-trace.log.gz   -Xlog:gc*=trace
  serialgc-jdk17-xmx1g-init.log      -Xmx1g -Xlog:gc+init -version (sizes in the exact unit)
  shenandoah-jdk17-region256k-init.log  Shenandoah, 256K regions (a region size under 1M)
The shape of every line miniheap prints is compared with the JDK's lines of the same level and tags
(tests/logshape.py says what a shape keeps), and a GC-log parser from PyPI reads our log.
"""

import io
import re
from pathlib import Path

import pytest

from miniheap.config import HeapConfig
from miniheap.gclog import JDK_GC_LINE_RE, GCLog, Pause, parse_gc_line, parse_jvm_log
from miniheap.sizes import KIB, MIB

DATA = Path(__file__).resolve().parent / "data"
SERIAL = (DATA / "serialgc-jdk17.log").read_text()
SERIAL_STAR = (DATA / "serialgc-jdk17-gcstar.log").read_text()
PROMOTION_FAILED = (DATA / "serialgc-jdk17-promotion-failed.log").read_text()


class FakeClock:
    def __init__(self, now=0.0):
        self.now = now

    def __call__(self):
        return self.now


def young_event(**overrides):
    ages = [0] * 16
    ages[1], ages[2] = 1_000_000, 500_000
    event = dict(
        id=0, kind=0, cause=0, good_color=3,
        capacity=64 * MIB, used_before=12 * MIB + 345 * KIB, used_after=3 * MIB + 900 * KIB,
        eden_before=12 * MIB, eden_after=0, survivor_before=345 * KIB, survivor_after=1500 * KIB,
        old_before=0, old_after=2400 * KIB,
        eden_capacity=12 * MIB, survivor_capacity=2 * MIB, old_capacity=48 * MIB,
        objects_copied=1234, bytes_copied=3900 * KIB, bytes_promoted=2400 * KIB, bytes_marked=0,
        regions_evacuated=0, regions_freed=6, cards_scanned=17, tenuring_threshold=7, tenuring_threshold_new=2,
        bytes_by_age=ages, survivor_overflow_bytes=0, survivor_desired=1 * MIB,
        ns_total=1_234_000, ns_roots=10_000, ns_cards=20_000, ns_mark=0, ns_evacuate=1_100_000, ns_remap=0,
    )
    event.update(overrides)
    return event


def full_event(**overrides):
    base = young_event(
        id=2, kind=1, cause=1, good_color=2, used_before=40 * MIB, used_after=17 * MIB,
        bytes_marked=17 * MIB, regions_evacuated=5, regions_freed=11, cards_scanned=0,
        bytes_by_age=[0] * 16, ns_total=5_212_000, ns_mark=2_000_000, ns_evacuate=2_500_000, ns_remap=600_000,
    )
    base.update(overrides)
    return base


def log_lines(level, *events, at=0.052, config=None):
    out, clock = io.StringIO(), FakeClock(at)
    log = GCLog(level, out, start=0.0, clock=clock, max_tenuring_threshold=15)
    if config is not None:
        log.log_start(config)
    for event in events:
        log.log_event(event)
    return out.getvalue().splitlines()


# ------------------------------------------------------------------- the info line


def test_young_pause_line_is_exactly_the_jdk_format():
    assert log_lines("gc", young_event()) == [
        "[0.052s][info][gc] GC(0) Pause Young (Allocation Failure) 12M->3M(64M) 1.234ms"
    ]


def test_explicit_full_pause_says_system_gc():
    assert log_lines("gc", full_event(), at=0.113) == [
        "[0.113s][info][gc] GC(2) Pause Full (System.gc()) 40M->17M(64M) 5.212ms"
    ]


def test_promotion_failure_is_printed_as_the_jdk_does():
    # JDK 17 SerialGC (tests/data/serialgc-jdk17-promotion-failed.log, GC(74)/GC(75)): the young
    # pause says "Promotion failed" at info level, prints no heap lines, and the full collection
    # that follows is a pause of its own with the same cause.
    failed = young_event(promotion_failed_objects=38, promotion_failed_bytes=3_800_000)
    lines = log_lines("gc*", failed)
    messages = [line.split("] ", 1)[1] for line in lines]
    jdk = [line.split("] ", 1)[1] for line in PROMOTION_FAILED.splitlines() if "GC(74)" in line and "[debug" not in line and "gc,cpu" not in line]
    assert "GC(74) Promotion failed" in jdk
    assert "GC(0) Promotion failed" in messages
    assert any("[info ][gc,promotion" in line or "[info][gc,promotion" in line for line in lines)
    assert not any("DefNew:" in m for m in messages), "JDK 17 prints no heap lines for a failed young pause"
    # nor age lines: the JDK adjusts the tenuring threshold only after a young collection that succeeded
    assert not any("gc,age" in line for line in log_lines("gc*=trace", failed))
    assert messages[-1].startswith("GC(0) Pause Young (Allocation Failure) ")
    assert log_lines("gc", failed) == ["[0.052s][info][gc] GC(0) Pause Young (Allocation Failure) 12M->3M(64M) 1.234ms"]
    # an ordinary young pause says nothing of promotion
    assert not any("Promotion" in line for line in log_lines("gc*", young_event()))


def test_skipped_young_collection_is_an_empty_pause():
    # JDK 17 (serialgc-jdk17-gcstar.log, GC(23)): old cannot take the padded average of promotions,
    # so the young collection is not attempted: a start line and the pause line, then a full pause.
    skipped = young_event(young_skipped=1, promotion_available=1_000_000, promotion_average=3_000_000,
                          used_after=12 * MIB + 345 * KIB, eden_after=12 * MIB, ns_total=22_000)
    lines = log_lines("gc*=trace", skipped)
    assert [line.split("] ", 1)[1] for line in lines if "[info" in line] == [
        "GC(0) Pause Young (Allocation Failure)", "GC(0) Pause Young (Allocation Failure) 12M->12M(64M) 0.022ms"]
    assert any("[trace][gc" in line and "promo attempt is not safe: available(1000000) < av_promo(3000000)" in line
               for line in lines)  # at trace, as JDK 17 prints it


def test_fixture_shows_system_gc_and_promotion_failure_causes():
    causes = {(p.kind, p.cause) for p in parse_jvm_log(SERIAL)}
    assert causes == {("young", "Allocation Failure"), ("full", "System.gc()"), ("full", "Allocation Failure")}


def test_megabytes_truncate_like_the_jdk():
    line = log_lines("gc", young_event(used_before=MIB * 2 - 1, used_after=0, capacity=61 * MIB + 900 * KIB))[0]
    assert "1M->0M(61M)" in line


def test_heap_creation_line_names_the_collector_as_the_jdk_does():
    lines = log_lines("gc", config=HeapConfig(), at=0.001)
    assert lines == ["[0.001s][info][gc] Using Serial"]


def test_off_writes_nothing():
    assert log_lines("off", young_event(), config=HeapConfig()) == []


def test_unknown_level_is_refused():
    for selector in ("debug", "gc+", "gc*=fine", "gc**"):
        with pytest.raises(ValueError, match="gc\\* for details"):
            GCLog(selector, io.StringIO())


@pytest.mark.parametrize("selector, levels", [
    ("gc", {"info"}), ("gc*", {"info"}), ("gc*=debug", {"info", "debug"}),
    ("gc*=trace", {"info", "debug", "trace"}), ("gc=trace", {"info"}),
])
def test_selectors_print_the_levels_the_jdk_prints(selector, levels):
    lines = log_lines(selector, young_event(), full_event(), config=HeapConfig())
    seen = {re.match(r"\[[\d.]+s\]\[(\w+)", line)[1] for line in lines}
    assert seen == levels, lines
    tags = {re.match(r"\[[^]]*\]\[[^]]*\]\[([\w,]+)", line)[1] for line in lines}
    assert (tags == {"gc"}) == (not selector.startswith("gc*")), tags


# ------------------------------------------------------------------- gc* details


def test_gc_star_young_lines():
    info = "\n".join(log_lines("gc*", young_event()))
    assert info.splitlines()[0].startswith("[0.051s][info][gc,start] GC(0) Pause Young (Allocation Failure)")  # dated back by ns_total
    assert "GC(0) DefNew: 12633K(14336K)->1500K(14336K) Eden: 12288K(12288K)->0K(12288K) From: 345K(2048K)->1500K(2048K)" in info
    assert "GC(0) Tenured: 0K(49152K)->2400K(49152K)" in info
    assert "debug" not in info and "age" not in info and "Roots" not in info  # -Xlog:gc* is info only
    debug = "\n".join(log_lines("gc*=debug", young_event()))
    assert re.search(r"\[debug\]\[gc,age\s*\] GC\(0\) Desired survivor size 1048576 bytes, new threshold 2 \(max threshold 15\)", debug)
    assert "GC(0) Scan Cards 0.020ms" in debug and "GC(0) Evacuate 1.100ms" in debug and "GC(0) Roots 0.010ms" in debug
    assert "Age table" not in debug
    trace = "\n".join(log_lines("gc*=trace", young_event()))
    assert re.search(r"\[trace\]\[gc,age\s*\] GC\(0\) Age table with threshold 2 \(max threshold 15\)", trace)
    assert "GC(0) - age   1:    1000000 bytes,    1000000 total" in trace
    assert "GC(0) - age   2:     500000 bytes,    1500000 total" in trace
    assert trace.splitlines()[-1].endswith("GC(0) Pause Young (Allocation Failure) 12M->3M(64M) 1.234ms")


def test_gc_star_full_lines():
    text = "\n".join(log_lines("gc*", full_event()))
    # ns_mark already includes the roots: the C core times marking from before mark_roots.
    assert "[info][gc,phases,start] GC(2) Phase 1: Mark live objects\n" in text
    assert "GC(2) Phase 1: Mark live objects 2.000ms" in text
    assert "GC(2) Phase 2: Evacuate regions 2.500ms" in text
    assert "GC(2) Phase 3: Remap references 0.600ms" in text
    assert "Roots" not in text and "age" not in text
    debug = "\n".join(log_lines("gc*=debug", full_event()))
    assert "[debug][gc,phases      ] GC(2) Roots 0.010ms" in debug
    assert "Desired survivor" not in debug


def test_phase_lines_are_dated_where_the_phases_ran():
    # The pause ends at the event's time; its phases are laid end to end from its start.
    lines = log_lines("gc*=debug", dict(young_event(), time=1.0))
    stamps = {re.sub(r"^\[[^]]*\]\[[^]]*\]\[[^]]*\] ", "", line): float(line[1:line.index("s]")]) for line in lines}
    assert stamps["GC(0) Pause Young (Allocation Failure)"] == pytest.approx(0.999, abs=1e-3)  # 1.0 - 1.234 ms
    assert stamps["GC(0) Evacuate 1.100ms"] == pytest.approx(0.99877 + 1.13e-3, abs=1e-3)
    assert stamps["GC(0) Pause Young (Allocation Failure) 12M->3M(64M) 1.234ms"] == 1.0
    assert list(stamps.values()) == sorted(stamps.values())


def test_a_step_inside_a_phase_is_logged_inside_it_in_time_order():
    """A full collection's Roots run inside Phase 1: their lines come between its start and end lines,
    and no line is dated before the one above it, as the JDK prints nested phases."""
    lines = log_lines("gc*=debug", dict(full_event(), time=2.0))
    messages = [re.sub(r"^\[[^]]*\]\[[^]]*\]\[[^]]*\] ", "", line) for line in lines]
    order = [m for m in messages if "Phase 1" in m or "Roots" in m]
    assert order == ["GC(2) Phase 1: Mark live objects", "GC(2) Roots", "GC(2) Roots 0.010ms",
                     "GC(2) Phase 1: Mark live objects 2.000ms"], order
    stamps = [float(line[1:line.index("s]")]) for line in lines]
    assert stamps == sorted(stamps), lines


def test_start_lines_list_the_configuration_as_gc_init_lines():
    out = io.StringIO()
    views = [type("View", (), dict(name="Marked0", start=1 << 42, length=64 * MIB))()]
    GCLog("gc*", out, start=0.0, clock=FakeClock()).log_start(HeapConfig(mapping="colored", pretouch=True), views)
    text = out.getvalue()
    assert text.splitlines()[0] == "[0.000s][info][gc] Using Serial"
    assert "[gc,init] Heap View Marked0: 0x0000040000000000-0x0000040004000000 (64M)" in text
    assert "[gc,init] Heap Mapping: colored" in text and "[gc,init] Heap Backend: memfd" in text
    assert "[gc,init] Heap Max Capacity: 64M" in text and "[gc,init] Pre-touch: Enabled" in text
    assert "[gc,init] Heap Region Size: 2M" in text



def init_line(config, key):
    out = io.StringIO()
    GCLog("gc*", out, start=0.0, clock=FakeClock()).log_start(config, [])
    return next(line for line in out.getvalue().splitlines() if f"[gc,init] {key}: " in line)


def jdk_init_line(fixture, key):
    return next(line for line in (DATA / fixture).read_text().splitlines() if f"[gc,init] {key}: " in line)


@pytest.mark.parametrize("heap_size", ["1G", "3G", "64M", "1536K"])
def test_heap_max_capacity_in_the_jdks_exact_unit(heap_size):
    # JDK 17's gc,init sizes ("Heap Min/Initial/Max Capacity: %lu%s") are in the largest unit that divides
    # the size exactly: -Xmx1g prints "1G" (serialgc-jdk17-xmx1g-init.log), not "1024M", and a size that is
    # no whole number of M prints in K ("Heap Min Capacity: 6656K", shenandoah-jdk17-region256k-init.log).
    assert jdk_init_line("serialgc-jdk17-xmx1g-init.log", "Heap Max Capacity").endswith("Heap Max Capacity: 1G")
    assert jdk_init_line("shenandoah-jdk17-region256k-init.log", "Heap Min Capacity").endswith(": 6656K")
    config = HeapConfig(heap_size=heap_size, young_size="768K", region_size="256K", survivor_ratio=1)
    line = init_line(config, "Heap Max Capacity")
    assert line.endswith(f"Heap Max Capacity: {heap_size}"), line


@pytest.mark.parametrize("region_size", ["64K", "256K", "2M", "1G"])
def test_heap_region_size_in_the_jdks_exact_unit(region_size):
    # SerialGC has no regions; the line is G1's and Shenandoah's. JDK 17's Shenandoah prints its 256K
    # regions as "Heap Region Size: 256K" (shenandoah-jdk17-region256k-init.log); G1's regions are never
    # under 1M. miniheap's regions may be 64K: "0M" would be false.
    assert jdk_init_line("shenandoah-jdk17-region256k-init.log", "Heap Region Size").endswith(
        "Heap Region Size: 256K")
    config = HeapConfig(heap_size="4T" if region_size == "1G" else "64M", young_size=f"{3 * int(region_size[:-1])}"
                        f"{region_size[-1]}", region_size=region_size, survivor_ratio=1)
    line = init_line(config, "Heap Region Size")
    assert line.endswith(f"Heap Region Size: {region_size}"), line


@pytest.mark.parametrize("memory, printed", [(25276502016, "24105M"), (128 << 30, "128G"), (int(99.5 * (1 << 30)), "101888M")])
def test_memory_in_the_jdks_proper_unit(monkeypatch, memory, printed):
    # JDK 17's "Memory:" (byte_size_in_proper_unit) changes unit only from 100 of the larger one: the
    # fixtures' 23.5 GiB machine is "Memory: 24105M", not "23G"; a 128 GiB machine is "Memory: 128G".
    assert "[gc,init] Memory: 24105M" in SERIAL_STAR
    pages = memory // 4096  # 25276502016 bytes: the fixtures' machine, 23.5 GiB
    monkeypatch.setattr("os.sysconf", lambda name: {"SC_PHYS_PAGES": pages, "SC_PAGE_SIZE": 4096}[name])
    assert init_line(HeapConfig(), "Memory").endswith(f"Memory: {printed}")


def test_large_page_support_spelled_as_the_jdk():
    # JDK 17 (gcInitLogger.cpp, and libjvm.so's strings) prints "Enabled (Explicit)" for hugetlbfs pages.
    line = init_line(HeapConfig(backend="memfd-hugetlb"), "Large Page Support")
    assert line.endswith("Large Page Support: Enabled (Explicit)"), line

def test_decoration_padding_reproduces_the_jdk_fixture_byte_for_byte():
    # Feed the fixture's own (uptime, level, tags, message) through our writer:
    # unified logging pads each decoration to the widest seen so far, and so must we.
    decorated = re.compile(r"^\[([\d.]+)s\s*\]\[(\w+)\s*\]\[([\w,]+)\s*\] (.*)$")
    out = io.StringIO()
    log = GCLog("gc*=trace", out, start=0.0, clock=FakeClock())
    for line in SERIAL_STAR.splitlines():
        match = decorated.match(line)
        assert match, line
        uptime, level, tags, message = match.groups()
        log.write_line(level, tuple(tags.split(",")), message, at=float(uptime))
    assert out.getvalue() == SERIAL_STAR


# ------------------------------------------------------------------- parsing


def test_regex_parses_every_pause_line_of_the_plain_fixture():
    pause_lines = [line for line in SERIAL.splitlines() if " Pause " in line]
    assert len(pause_lines) > 10
    for line in pause_lines:
        assert JDK_GC_LINE_RE.match(line), line
    assert not JDK_GC_LINE_RE.match(SERIAL.splitlines()[0])  # "Using Serial"


def test_regex_parses_padded_pause_lines_of_the_gc_star_fixture():
    # Only the [info][gc] summary lines, not [gc,start] (no sizes) or other tags.
    summary = [line for line in SERIAL_STAR.splitlines() if re.search(r"\]\[gc\s*\] GC\(\d+\) Pause", line)]
    assert len(summary) > 10 and any("[gc     " in line for line in summary)
    assert [parse_gc_line(line) is not None for line in summary] == [True] * len(summary)
    assert len(parse_jvm_log(SERIAL_STAR)) == len(summary)


def test_parse_values_from_the_fixture():
    first = parse_jvm_log(SERIAL)[0]
    assert first == Pause(id=0, kind="young", cause="Allocation Failure", before=17 * MIB, after=1 * MIB, capacity=61 * MIB, ms=1.944, uptime=0.042)
    system = [p for p in parse_jvm_log(SERIAL) if p.cause == "System.gc()"]
    assert [p.kind for p in system] == ["full", "full"]


def test_miniheap_lines_parse_with_the_jdk_regex():
    lines = log_lines("gc*=trace", young_event(), full_event(), full_event(id=3, cause=0))
    pauses = parse_jvm_log("\n".join(lines))
    assert [(p.id, p.kind, p.cause) for p in pauses] == [(0, "young", "Allocation Failure"), (2, "full", "System.gc()"), (3, "full", "Allocation Failure")]
    assert (pauses[0].before, pauses[0].after, pauses[0].capacity, pauses[0].ms) == (12 * MIB, 3 * MIB, 64 * MIB, 1.234)


def test_parse_other_jdk_collectors():
    # Real JDK 17 lines from G1 and Parallel runs of SerialGcFixture.java.
    g1 = parse_gc_line("[0.051s][info][gc] GC(0) Pause Young (Normal) (G1 Evacuation Pause) 6M->1M(64M) 0.990ms")
    assert (g1.kind, g1.phase, g1.cause, g1.before) == ("young", "Normal", "G1 Evacuation Pause", 6 * MIB)
    remark = parse_gc_line("[0.090s][info][gc] GC(12) Pause Remark 40M->26M(64M) 0.203ms")
    assert (remark.kind, remark.cause) == ("remark", "")
    parallel = parse_gc_line("[0.151s][info][gc] GC(36) Pause Full (Ergonomics) 57M->28M(60M) 13.313ms")
    assert (parallel.kind, parallel.cause, parallel.capacity) == ("full", "Ergonomics", 60 * MIB)
    assert parse_gc_line("[0.003s][info][gc] Using Serial") is None
    assert parse_gc_line("[0.053s][info ][gc,heap     ] GC(0) Tenured: 0K(43712K)->0K(43712K)") is None


# ------------------------------------------------------------------- outputs and event shapes


def test_file_output_from_spec(tmp_path):
    path = tmp_path / "gc.log"
    with GCLog.from_spec(f"gc*=debug:file={path}", start=0.0, clock=FakeClock(0.5)) as log:
        log.log_event(young_event())
    text = path.read_text()
    assert re.search(r"\]\[info \]\[gc\s+\] GC\(0\) Pause Young", text)  # padded after wider decorations
    assert parse_jvm_log(text)[0].id == 0


def test_off_with_a_path_creates_no_file(tmp_path):
    path = tmp_path / "gc.log"
    with GCLog("off", str(path)) as log:
        log.log_event(young_event())
    assert not path.exists()


def test_from_config_uses_the_tenuring_threshold_as_max():
    out = io.StringIO()
    log = GCLog.from_config(HeapConfig(gc_log="gc*=debug", tenuring_threshold=4), start=0.0, stream=out, clock=FakeClock(1.0))
    log.log_event(young_event(tenuring_threshold=2))
    assert "threshold 2 (max threshold 4)" in out.getvalue()


def test_object_events_work_like_dicts():
    class Event:
        pass

    event = Event()
    event.__dict__.update(young_event())
    assert log_lines("gc*=trace", event) == log_lines("gc*=trace", young_event())


def test_missing_field_is_named():
    event = young_event()
    del event["ns_total"]
    with pytest.raises(AttributeError, match="ns_total"):
        log_lines("gc", event)


def test_cffi_struct_event():
    cffi = pytest.importorskip("cffi")
    header = (Path(__file__).resolve().parent.parent / "src" / "miniheap" / "native" / "miniheap.h").read_text()
    struct = re.search(r"typedef struct mh_gc_event \{.*?\} mh_gc_event;", header, re.S)
    if struct is None:
        pytest.skip("miniheap.h has no mh_gc_event struct")
    phase = re.search(r"typedef struct mh_gc_phase \{.*?\} mh_gc_phase;", header, re.S)
    ffi = cffi.FFI()
    ffi.cdef(re.sub(r"/\*.*?\*/", "", (phase.group(0) if phase else "") + struct.group(0), flags=re.S))
    event = ffi.new("mh_gc_event *")
    for name, value in young_event().items():
        if name == "bytes_by_age":
            for age, size in enumerate(value):
                event.bytes_by_age[age] = size
        else:
            setattr(event, name, value)
    assert log_lines("gc*=trace", event[0]) == log_lines("gc*=trace", young_event())


def test_age_lines_give_half_a_survivor_space_and_the_new_threshold(make_heap, tmp_path):
    """JDK 17 (serialgc-jdk17-star-trace.log.gz, GC(0): "Desired survivor size 1114112 bytes, new
    threshold 1"): the desired size is TargetSurvivorRatio, 50%, of a survivor space, and the new
    threshold the one computed from this collection's age table, at which the next one promotes."""
    log = tmp_path / "gc.log"
    heap = make_heap(gc_log=f"gc*=trace:file={log}")
    heap.collect()
    capacity = heap.events[-1].survivor_capacity
    nbytes = 1000
    keep = [heap.alloc(refs=1, data=nbytes) for _ in range(capacity * 3 // 4 // (8 + 8 + nbytes))]
    heap.collect()  # the survivors, all of age 1, fill 3/4 of a survivor space: more than half
    grown = heap.events[-1]
    assert (grown.tenuring_threshold, grown.tenuring_threshold_new) == (3, 1)
    heap.collect()  # so this one promotes them
    assert [r.space for r in keep[:3]] == ["old"] * 3
    heap.close()
    text = log.read_text()
    most = heap.config.tenuring_threshold
    assert f"GC({grown.id}) Desired survivor size {capacity // 2} bytes, new threshold 1 (max threshold {most})" in text
    assert f"GC({grown.id}) Age table with threshold 1 (max threshold {most})" in text
