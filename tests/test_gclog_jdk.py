"""miniheap's GC log against the JDK's: the shape of every line at each of the four selectors, and a
GC-log parser from PyPI reading our log as it reads a real JDK 17 SerialGC log.

The golden logs are real JDK 17 SerialGC output (tests/data/SerialGcFixture.java has the commands).
"""
import importlib.util
import io
import os
import re
import sys
from pathlib import Path

import pytest

from miniheap.config import HeapConfig
from miniheap.gclog import GCLog, parse_jvm_log

from .logshape import mismatches, read_log, shapes_of, split
from .test_gclog import full_event, young_event

DATA = Path(__file__).resolve().parent / "data"
GOLDEN = {"gc": "serialgc-jdk17.log", "gc*": "serialgc-jdk17-star.log",
          "gc*=debug": "serialgc-jdk17-star-debug.log.gz", "gc*=trace": "serialgc-jdk17-star-trace.log.gz"}


def heap_run_log(selector, tmp_path):
    """The log of a real heap: young collections with survivors of several ages, promotions, an
    explicit full collection; then the events of every other branch (a full collection forced by the
    promotion guarantee) through the same writer."""
    from miniheap import Heap

    path = tmp_path / f"{selector.replace('*', 'star').replace('=', '-')}.log"
    with Heap(gc_log=f"{selector}:file={path}", heap_size="32M", young_size="8M", survivor_ratio=2,
              tenuring_threshold=3) as heap:
        keep = []
        for i in range(120_000):
            obj = heap.alloc(refs=1, data=100)
            if i % 40 == 0:
                keep.append(obj)
            if len(keep) > 1500:
                del keep[:700]
        heap.collect(full=True)
        events = list(heap.events)
    text = path.read_text()
    out = io.StringIO()
    log = GCLog(selector, out, start=0.0, max_tenuring_threshold=15)
    log.log_event(dict(full_event(id=99, cause=0), time=9.0))
    log.log_event(dict(young_event(id=100), time=9.5))
    log.log_event(dict(young_event(id=101, promotion_failed_objects=5, promotion_failed_bytes=1000), time=9.6))
    log.log_event(dict(young_event(id=102, young_skipped=1, promotion_available=10, promotion_average=20,
                                   ns_total=20_000), time=9.7))
    return text + out.getvalue(), events


# A run whose young collection failed to promote (-Xlog:gc*): its info lines, "Promotion failed" among
# them, are printed at every gc* selector.
PROMOTION_FAILED = "serialgc-jdk17-promotion-failed.log"


@pytest.fixture(scope="module")
def golden_shapes():
    shapes = {selector: shapes_of(read_log(DATA / name)) for selector, name in GOLDEN.items()}
    failed = shapes_of(read_log(DATA / PROMOTION_FAILED))
    for selector, found in shapes.items():
        for key, more in failed.items():
            if selector != "gc" or key == ("info", ("gc",)):
                found.setdefault(key, {}).update(more)
    return shapes


@pytest.mark.parametrize("selector", list(GOLDEN))
def test_every_line_has_the_shape_of_a_jdk_line_of_the_same_level_and_tags(selector, golden_shapes, tmp_path):
    text, events = heap_run_log(selector, tmp_path)
    assert len(events) >= 4 and any(e.full for e in events) and not all(e.full for e in events)
    bad = mismatches(text, golden_shapes[selector])
    assert not bad, "\n".join(f"{why}:\n    {line}" for line, why in bad[:10])


@pytest.mark.parametrize("selector", list(GOLDEN))
def test_each_selector_prints_what_the_jdk_prints_at_it(selector, golden_shapes, tmp_path):
    """Not only no foreign line: the lines the JDK prints at this selector that miniheap has a
    counterpart for are there too."""
    text, _ = heap_run_log(selector, tmp_path)
    ours = {(level, tags) for level, tags, _ in filter(None, map(split, text.splitlines()))}
    expected = {("info", ("gc",))}
    if selector != "gc":
        expected |= {("info", ("gc", "init")), ("info", ("gc", "start")), ("info", ("gc", "heap")),
                     ("info", ("gc", "phases")), ("info", ("gc", "phases", "start")),
                     ("info", ("gc", "heap", "exit"))}  # the summary as the heap closes
    if selector in ("gc*=debug", "gc*=trace"):
        expected |= {("debug", ("gc", "age")), ("debug", ("gc", "phases"))}
    if selector == "gc*=trace":
        expected |= {("trace", ("gc", "age"))}
    assert expected <= set(golden_shapes[selector]), "the golden log itself lacks a line: re-record it"
    assert expected <= ours, expected - ours
    first = text.splitlines()[0]
    assert re.fullmatch(r"\[\d+\.\d{3}s\]\[info\]\[gc\] Using Serial", first), first


def test_the_shape_check_catches_a_line_out_of_place(golden_shapes):
    """The comparison can fail: a JDK line moved to another level, or given another shape, is caught."""
    good = "[0.053s][debug][gc,age] GC(0) Desired survivor size 1114112 bytes, new threshold 1 (max threshold 15)"
    assert not mismatches(good, golden_shapes["gc*=debug"])
    assert mismatches(good.replace("[debug]", "[trace]"), golden_shapes["gc*=debug"])
    assert mismatches(good.replace(" (max threshold 15)", ""), golden_shapes["gc*=debug"])
    assert mismatches(good.replace("1114112 bytes", "1.1M bytes"), golden_shapes["gc*=debug"])
    assert mismatches(good, golden_shapes["gc*"])  # -Xlog:gc* is info only


def test_our_pause_lines_agree_with_the_events(tmp_path):
    text, events = heap_run_log("gc", tmp_path)
    pauses = [p for p in parse_jvm_log(text) if p.id < 99]
    assert [(p.id, p.kind) for p in pauses] == [(e.id, "full" if e.full else "young") for e in events]
    # the log prints three decimals: half a unit of the last one, and a hair for the binary fraction
    # (0.0665 ms printed as 0.067 differs by 5.0000000000000001e-4)
    half = 5e-4 + 1e-9
    for pause, event in zip(pauses, events):
        assert pause.ms == pytest.approx(event.ns_total / 1e6, abs=half)
        assert pause.uptime == pytest.approx(event.time, abs=half)


# ------------------------------------------------------------------- a parser from PyPI

PARSER_PACKAGE = "jvmind-ce==0.1.30"


def jvmind_gc_analyzer():
    """The GC-log parser of the PyPI package jvmind-ce, loaded from where pip put it.

    Only its ``react_agent.gc_analyzer`` package is loaded, straight from its files: it needs nothing
    but the standard library, while importing ``react_agent`` itself would pull in the package's AI
    agent (langgraph, openai, ...). So ``pip install --no-deps`` is enough; .ci/run installs it into
    build/gc-log-parsers and names that folder in MINIHEAP_GC_LOG_PARSERS."""
    places = [os.environ.get("MINIHEAP_GC_LOG_PARSERS", "")] + sys.path
    for place in filter(None, places):
        init = Path(place) / "react_agent" / "gc_analyzer" / "__init__.py"
        if init.is_file():
            name = "jvmind_gc_analyzer"
            if name in sys.modules:
                return sys.modules[name]
            spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(init.parent)])
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            return module
    pytest.skip(f"the GC-log parser from PyPI is not installed: pip install --no-deps '{PARSER_PACKAGE}' "
                f"(or pip install --no-deps --target DIR and set MINIHEAP_GC_LOG_PARSERS=DIR)")


@pytest.mark.parametrize("selector", ["gc", "gc*", "gc*=debug"])
def test_a_gc_log_parser_from_pypi_reads_our_log_as_serial(selector, tmp_path):
    analyzer = jvmind_gc_analyzer()
    jdk = analyzer.parse_gc_log(read_log(DATA / GOLDEN[selector]))
    assert jdk["collector"] == "Serial"  # the control: a real JDK 17 log
    text, events = heap_run_log(selector, tmp_path)
    ours = analyzer.parse_gc_log(text)
    assert ours["collector"] == "Serial", ours["collector"]
    parsed = [e for e in ours["events"] if e.id < 99]
    assert [(e.id, e.category) for e in parsed] == [(e.id, "Full" if e.full else "Young") for e in events]
    for got, event in zip(parsed, events):
        assert got.cause in ("Allocation Failure", "System.gc()")
        assert got.duration_ms == pytest.approx(event.ns_total / 1e6, abs=5e-4)
        assert got.heap_total_mb == HeapConfig(heap_size="32M").heap_size >> 20
