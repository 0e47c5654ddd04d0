"""What is kept per collection stays bounded in a long run: windows over the latest collections and
system calls, with counts and totals that stay exact (issue 13)."""
from miniheap.heap import EVENT_HISTORY, Heap
from miniheap.syscalls import Trace

from .conftest import small_config


def test_events_keep_the_latest_window_and_exact_totals():
    with Heap(small_config(), history=100) as heap:
        for _ in range(300):
            heap.collect()
        stats = heap.stats
        assert len(heap.events) == 100
        assert [e.id for e in heap.events] == list(range(200, 300))
        assert [e.id for e in heap.events[-3:]] == [297, 298, 299]  # slices as a list does
        assert stats.young_collections == 300 and stats.collections == 300
        assert stats.pauses_kept == 100
        assert abs(stats.pause_total_ms - stats.total_pause_ns / 1e6) < 1e-9
        assert stats.pause_total_ms >= sum(e.ns_total for e in heap.events) / 1e6


def test_events_are_bounded_by_default_and_all_kept_on_request():
    with Heap(small_config()) as heap:
        assert heap.events.maxlen == EVENT_HISTORY
    with Heap(small_config(), history=None) as heap:
        for _ in range(150):
            heap.collect()
        assert len(heap.events) == 150


def test_the_trace_keeps_the_first_and_latest_calls():
    trace = Trace(limit=100)
    for i in range(10_000):
        trace.record(f"call({i}) = 0")
    lines = trace.lines
    assert len(trace) == 10_000 and trace.dropped == 9_900
    assert len(lines) == 101
    assert lines[0] == "call(0) = 0" and lines[49] == "call(49) = 0"
    assert "9900 calls not kept" in lines[50]
    assert lines[-1] == "call(9999) = 0"


def test_a_heap_trace_stays_bounded_in_a_long_run():
    with Heap(small_config(young_size="2M", tenuring_threshold=0), history=10) as heap:
        trace = heap.trace
        for i in range(400):  # each round commits old regions and uncommits them again
            keep = [heap.alloc(data=100_000) for _ in range(30)]
            heap.collect(full=True)
            del keep
            heap.collect(full=True)
        assert len(trace) > 4096, "the run should make more calls than the trace keeps"
        assert len(trace.lines) <= 4097
        assert len(heap.events) == 10
