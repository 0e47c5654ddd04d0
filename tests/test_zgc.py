"""The zgc collector from Python: Heap(HeapConfig(collector="zgc")) on every backend, its GC thread,
System.gc() (collect waits for a whole cycle), allocation stalls and exhaustion, and what it reports.

The interleavings of mutator and collector (each duty of the load barrier) are tested in C, in
stepping mode (tests/native/test_zgc.c); here the GC thread really runs beside the Python mutator."""
import threading
import time

import pytest

from miniheap import HeapConfig
from miniheap.config import ConfigError, color_bits_for
from miniheap.errors import ForeignRefError, HeapExhaustedError, ReservationError
from miniheap.heap import Heap

from .conftest import ZGC_LAYOUTS, small_config


def zgc_config(layout, backend="memfd", **overrides):
    return small_config(backend, layout, **overrides)


@pytest.fixture(params=ZGC_LAYOUTS)
def zgc_layout(request):
    """Each test runs with zgc's three coloured views (JDK 17) and with its one view, the colour in
    the pointer's low bits (JDK 21+)."""
    return request.param


def make_list(heap, n, garbage=3):
    """A list of n nodes (payload: the index), with garbage between them so its pages are sparse."""
    head = heap.alloc(refs=1, data=8)
    head.data[:] = (0).to_bytes(8, "little")
    cur = head
    for i in range(1, n):
        node = heap.alloc(refs=1, data=8)
        node.data[:] = i.to_bytes(8, "little")
        cur[0] = node
        cur = node
        for _ in range(garbage):
            heap.alloc(refs=1, data=48)
    return head


def list_values(head):
    values, cur = [], head
    while cur is not None:
        values.append(int.from_bytes(bytes(cur.data), "little"))
        cur = cur[0]
    return values


def test_config_couples_collector_and_mapping():
    assert HeapConfig(collector="zgc").mapping == "colored"
    assert HeapConfig(collector="zgc", heap_size="8M", region_size="256K").collector == "zgc"  # young_size unused
    assert HeapConfig().collector == "serial" and HeapConfig().mapping == "none"
    # JDK 21+'s layout: zgc with one view, the colour in the pointer's low bits
    assert HeapConfig(collector="zgc", mapping="none").collector == "zgc"
    with pytest.raises(ConfigError, match="zgc has no young generation.*allowed pairs are zgc with colored"):
        HeapConfig(collector="zgc", mapping="young-mirror")
    with pytest.raises(ConfigError, match="allowed pairs are zgc with colored or none"):
        HeapConfig(collector="serial", mapping="colored")
    with pytest.raises(ConfigError, match="one view sits at the heap base bit"):
        HeapConfig(collector="zgc", mapping="none", reserve_at=0x7f0000000000)
    with pytest.raises(ConfigError, match="at most 8M"):
        HeapConfig(collector="zgc", heap_size="256M", region_size="16M")
    assert HeapConfig().evolve(collector="zgc").mapping == "colored"


@pytest.mark.parametrize("heap_size, bits", [("16M", 42), ("256M", 42), ("256G", 42), ("512G", 43), ("1T", 44)])
def test_colour_bits_follow_the_heap_size_as_jdk17(heap_size, bits):
    # -Xmx256m: views at 4T, 8T, 16T; -Xmx1t: 16T, 32T, 64T (tests/data/zgc-jdk17-xmx1t-init.log:
    # "Address Space Size: 16777216M x 3", sixteen times the heap per view)
    from miniheap.sizes import parse_size

    assert color_bits_for(parse_size(heap_size)) == bits
    if parse_size(heap_size) <= 1 << 30:
        assert HeapConfig(collector="zgc", heap_size=heap_size).color_bits == bits


def test_a_zgc_heap_works_on_every_backend(backend_name, zgc_layout):
    with Heap(zgc_config(zgc_layout, backend_name)) as heap:
        head = make_list(heap, 2000, garbage=30)  # several granules, even of 2M: a relocation set
        before = head.address
        for _ in range(3):
            heap.collect(full=True)
            heap.verify()
            assert list_values(head) == list(range(2000))
        assert head.space == "small"
        assert head.address != before, "the list's sparse pages were never relocated"
        stats = heap.stats
        assert stats.zgc_cycles >= 3 and stats.pauses >= 9 and stats.objects_relocated_by_gc > 0
        cycles = [e for e in heap.events if e.zgc and not e.stall]
        assert [p.name for p in cycles[-1].phases][:3] == ["Pause Mark Start", "Concurrent Mark", "Pause Mark End"]
        assert all(p.thread == "gc" for p in cycles[-1].phases)


def test_collect_waits_for_a_cycle_that_starts_after_the_call(zgc_layout):
    with Heap(zgc_config(zgc_layout)) as heap:
        keep = make_list(heap, 100)
        for _ in range(3):
            n = len(heap.events)
            heap.collect(full=True)
            explicit = [e for e in heap.events[n:] if e.zgc and not e.stall and e.cause == 1]
            assert explicit, "collect() returned before its System.gc() cycle was delivered"
        assert list_values(keep) == list(range(100))


def mutated_long_enough(heap, start, seconds, reached, give_up=60.0):
    """Whether a mutator loop that began at `start` may stop: `seconds` are over and `reached(stats)`,
    or `give_up` seconds are over whatever the stats say (the test's asserts then fail)."""
    spent = time.monotonic() - start
    return spent >= seconds and (spent >= give_up or reached(heap.stats))


def test_the_gc_thread_cycles_while_python_mutates(zgc_layout):
    """A Python mutator rebuilding lists while the GC thread runs a cycle every few milliseconds: its
    loads meet stale references (the barrier's slow path), and objects move under it."""
    with Heap(zgc_config(zgc_layout, gc_interval=0.002)) as heap:
        lists = [make_list(heap, 20, garbage=0) for _ in range(20)]
        start = time.monotonic()
        rounds = 0
        # 1.5 s at least, then until the figures below are reached (a loaded machine or ASan may leave
        # the GC thread little time) or a minute has passed (they never will: the asserts fail)
        while not mutated_long_enough(heap, start, 1.5, lambda s: s.zgc_cycles >= 5 and s.loads_healed > 0):
            i = rounds % len(lists)
            assert list_values(lists[i]) == list(range(20))
            lists[i] = make_list(heap, 20, garbage=1)
            rounds += 1
        heap.verify()
        stats = heap.stats
        assert stats.zgc_cycles >= 5, stats
        assert stats.loads_slow > 0 and stats.loads_healed > 0
        assert stats.pause_max_ms < 1000
        threads = {s.thread for e in heap.events if e.spans for s in e.spans}
        assert "ZDriver" in threads


def test_two_python_threads_and_the_gc_thread(zgc_layout):
    with Heap(zgc_config(zgc_layout, heap_size="16M", gc_interval=0.002)) as heap:
        errors = []

        def work(seed):
            try:
                mine = [make_list(heap, 10, garbage=0) for _ in range(10)]
                end = time.monotonic() + 1.0
                k = seed
                while time.monotonic() < end:
                    k = (k * 7 + 3) % 10
                    assert list_values(mine[k]) == list(range(10))
                    mine[k] = make_list(heap, 10, garbage=1)
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(s,)) for s in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        heap.verify()


def test_allocation_stalls_and_then_a_clear_error_when_the_live_set_does_not_fit(zgc_layout):
    with Heap(zgc_config(zgc_layout)) as heap:
        keep = []
        with pytest.raises(HeapExhaustedError, match="after a complete zgc cycle"):
            while True:
                keep.append(heap.alloc(refs=0, data=4000))
        stalls = [e for e in heap.events if e.stall]
        assert stalls, "the heap gave up without stalling for a cycle"
        del keep[:]
        heap.collect(full=True)
        heap.verify()
        heap.alloc(refs=0, data=4000)  # usable again


def test_garbage_far_beyond_the_heap_never_fails(zgc_layout):
    with Heap(zgc_config(zgc_layout)) as heap:
        kept = make_list(heap, 50)
        for _ in range(60000):
            heap.alloc(refs=1, data=100)
        assert list_values(kept) == list(range(50))
        heap.verify()


def test_large_and_medium_objects_have_pages_of_their_own_type(zgc_layout):
    with Heap(zgc_config(zgc_layout, heap_size="64M", region_size="256K")) as heap:
        small = heap.alloc(refs=0, data=100)
        medium = heap.alloc(refs=0, data=100 * 1024)  # above 256K/8: a medium page (64M/32 = 2M)
        large = heap.alloc(refs=0, data=1024 * 1024)  # above 2M/8
        assert (small.space, medium.space, large.space) == ("small", "medium", "large")
        heap.collect(full=True)
        heap.verify()
        assert set(heap.region_map(run=1 << 40)) <= set(".PpMmLlrR")


def test_closing_while_the_gc_thread_runs_leaves_nothing_behind(resources, zgc_layout):
    before = resources()
    for _ in range(10):
        heap = Heap(zgc_config(zgc_layout, gc_interval=0.001))
        make_list(heap, 200)
        time.sleep(0.01)
        heap.close()
    assert resources().leaks_since(before, huge=False) == []


def test_stall_and_cycle_events_carry_what_the_log_needs(zgc_layout):
    with Heap(zgc_config(zgc_layout)) as heap:
        kept = make_list(heap, 500)
        heap.collect(full=True)
        assert list_values(kept) == list(range(500))
        event = [e for e in heap.events if e.zgc and not e.stall][-1]
        assert event.used_at[0] == event.used_before and event.used_at[3] == event.used_after
        assert event.live > 0 and event.gc_workers == 1 and event.mark_ends >= 1
        assert sum(event.pages) > 0
        names = [p.name for p in event.phases]
        for phase in ("Pause Mark Start", "Concurrent Mark", "Pause Mark End", "Concurrent Mark Free",
                      "Concurrent Reset Relocation Set", "Concurrent Select Relocation Set",
                      "Pause Relocate Start", "Concurrent Relocate"):
            assert phase in names
        assert [p.pause for p in event.phases if p.name.startswith("Pause")] == [True] * 3


def test_a_large_object_refused_for_scattered_free_space_says_so(zgc_layout):
    """A large page needs contiguous granules here (the heap is mapped once per view, offset for offset),
    so free space scattered between pages can refuse one: the error says that, not 'release references'
    (half the heap is free)."""
    with Heap(zgc_config(zgc_layout)) as heap:  # 8M, granules of 256K
        objs = [heap.alloc(refs=0, data=300_000) for _ in range(12)]  # large pages of 2 granules
        objs[::2] = [None] * 6
        with pytest.raises(HeapExhaustedError, match=r"granules are free but the longest run of them is \d+") as e:
            heap.alloc(refs=0, data=3_000_000)  # 12 granules
        assert "contiguous" in str(e.value) and "release references" not in str(e.value)
        heap.verify()
        assert heap.alloc(refs=0, data=1_000_000).space == "large"  # a run of 6 is there


def test_a_second_zgc_heap_at_the_same_colour_bits_is_refused_with_the_way_out(zgc_layout, resources):
    """Both heaps' views sit at the same fixed addresses (JDK 17's ZGC has one heap per JVM): the
    error names the other heap and the two ways out, and leaves nothing behind; the way out works."""
    before = resources()
    with Heap(zgc_config(zgc_layout)) as first:
        bits = first.config.color_bits
        with pytest.raises(ReservationError, match=r"another zgc heap of this process") as e:
            Heap(zgc_config(zgc_layout))
        assert "close it first" in str(e.value)
        if bits - 3 < 28:  # the sanitizer stage's bits (28): nothing lower; higher is ASan's shadow
            assert f"color_bits = {bits + 3} or higher" in str(e.value)
        else:
            assert f"color_bits = {bits - 3} or lower" in str(e.value)
            with Heap(zgc_config(zgc_layout, color_bits=bits - 3)) as second:  # the way out
                ref = second.alloc(refs=1, data=8)
                with pytest.raises(ForeignRefError):
                    first.alloc(refs=1)[0] = ref
    assert resources().leaks_since(before, huge=False) == []
