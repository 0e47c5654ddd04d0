"""Spans: how a collection becomes a timeline, and that the timeline's readers (the trace events, the
report) take any collector's spans, concurrent ones on a GC thread included."""
import json
import types

import pytest

from miniheap import report, trace_events
from miniheap.spans import CONCURRENT, PAUSE, Span, serial_spans, spans_of

from .test_gclog import full_event, young_event


def test_young_phases_are_laid_end_to_end_inside_the_pause():
    spans = serial_spans(dict(young_event(), time=2.0, thread="worker"))
    pause, phases = spans[0], spans[1:]
    assert pause.name == "GC(0) Pause Young (Allocation Failure)" and pause.kind == PAUSE
    assert pause.end == pytest.approx(2.0) and pause.duration == pytest.approx(1.234e-3)
    assert [p.name for p in phases] == ["Roots", "Scan Cards", "Evacuate"]
    assert phases[0].start == pause.start
    for a, b in zip(phases, phases[1:]):
        assert b.start == pytest.approx(a.end)
    assert all(p.thread == "worker" and p.depth == 1 and pause.start <= p.start and p.end <= pause.end for p in phases)
    assert pause.args["kind"] == "young" and pause.args["cards_scanned"] == 17


def test_full_collection_roots_are_a_step_inside_marking():
    spans = serial_spans(dict(full_event(cause=0), time=5.0))
    names = [(s.depth, s.name) for s in spans]
    assert names == [(0, "GC(2) Pause Full (Allocation Failure)"), (1, "Phase 1: Mark live objects"), (2, "Roots"),
                     (1, "Phase 2: Evacuate regions"), (1, "Phase 3: Remap references")]
    mark, roots = spans[1], spans[2]
    assert roots.start == mark.start and roots.end <= mark.end
    assert spans[0].args["reason"] == "allocation failure" and spans[0].args["cause"] == "Allocation Failure"


def zgc_like_events():
    """Events as a concurrent collector would give them: spans of their own."""
    cycle = [
        Span("GC(0) Garbage Collection (Warmup)", 1.0, 0.050, "ZDriver", CONCURRENT, 0, 0),
        Span("Pause Mark Start", 1.000, 0.0002, "VM Thread", PAUSE, 0, 0),
        Span("Concurrent Mark", 1.001, 0.030, "ZDriver", CONCURRENT, 1, 0),
        Span("Pause Mark End", 1.031, 0.0003, "VM Thread", PAUSE, 0, 0),
        Span("Concurrent Relocate", 1.035, 0.015, "ZDriver", CONCURRENT, 1, 0),
    ]
    return [types.SimpleNamespace(spans=cycle)]


def test_spans_of_takes_a_collectors_own_spans():
    spans = spans_of(zgc_like_events())
    assert {s.thread for s in spans} == {"ZDriver", "VM Thread"}
    assert [s.start for s in spans] == sorted(s.start for s in spans)


def fake_run(spans):
    return types.SimpleNamespace(
        spans=spans, threads=list(dict.fromkeys(s.thread for s in spans)), collections=[], samples=[], rss=[],
        config={"backend": "memfd", "mapping": "colored"}, command="test", created="now", duration=1.2)


def test_trace_events_and_the_timeline_draw_concurrent_spans_on_their_threads():
    run = fake_run(spans_of(zgc_like_events()))
    doc = json.loads(json.dumps(trace_events.build(run)))
    threads = {e["tid"]: e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "thread_name"}
    assert set(threads.values()) == {"ZDriver", "VM Thread"}
    complete = {e["name"]: e for e in doc["traceEvents"] if e["ph"] == "X"}
    assert complete["Concurrent Mark"]["cat"] == "gc,concurrent" and threads[complete["Concurrent Mark"]["tid"]] == "ZDriver"
    assert complete["Pause Mark Start"]["cat"] == "gc,pause" and threads[complete["Pause Mark Start"]["tid"]] == "VM Thread"
    assert complete["Concurrent Mark"]["ts"] == pytest.approx(1.001e6) and complete["Concurrent Mark"]["dur"] == pytest.approx(3e4)
    svg = report.timeline_svg(run)
    assert svg.count('class="span concurrent"') == 3 and "thread ZDriver" in svg and "thread VM Thread" in svg
