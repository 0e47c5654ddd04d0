"""Compaction as the last resort: before HeapExhaustedError the collector compacts all of old, so an
allocation fails only when the live bytes plus the request exceed the heap.

The checkerboard: old regions alternately full of live objects and free. Half of old is free, but no
two free regions are adjacent, so a humongous object of two regions does not fit until the dense
regions slide together (SerialGC's mark-compact would do the same).
"""
import pytest

from miniheap import HeapExhaustedError

from .conftest import SERIAL_LAYOUTS

REGION = 256 << 10


def region_of(heap, ref):
    base = next(v for v in heap.views if v.start <= ref.address < v.end)
    return (ref.address - base.start + base.offset) // REGION


def fill(heap, refs, data):
    """Allocate objects of `data` payload bytes until the heap is exhausted."""
    for _ in range(10_000):
        try:
            ref = heap.alloc(refs=1, data=data)
        except HeapExhaustedError:
            return
        ref.data[:4] = len(refs).to_bytes(4, "little")
        refs.append(ref)
    raise AssertionError("the heap never filled up")


def checkerboard(heap, humongous):
    """Fill old (through promotion, then with one-region humongous objects for what is left), then
    keep only the objects of every other old region."""
    young = heap.config.young_size // REGION
    refs = []
    if not humongous:
        fill(heap, refs, 60_000)  # four to a region, promoted at once (tenuring_threshold 0)
    fill(heap, refs, 200_000)  # humongous, one region each: whatever old regions are still free
    kept = [(r, bytes(r.data[:4])) for r in refs
            if region_of(heap, r) >= young and (region_of(heap, r) - young) % 2 == 0]
    refs.clear()
    heap.collect(full=True)
    heap_map = heap.region_map()
    old = heap_map[young:]
    assert "OO" not in old.replace("H", "O"), f"two regions in use side by side: {heap_map}"
    assert ".." not in old, f"two free regions side by side: {heap_map}"
    return kept


@pytest.mark.parametrize("humongous", [False, True], ids=["dense-old", "humongous"])
@pytest.mark.parametrize("mapping", SERIAL_LAYOUTS)  # the serial collector's compaction
def test_a_humongous_object_fits_once_old_is_compacted(make_heap, mapping, humongous):
    heap = make_heap(mapping=mapping, tenuring_threshold=0)
    kept = checkerboard(heap, humongous)
    live = heap.occupancy()["total"]
    free = heap.config.heap_size - heap.config.young_size - live
    assert free >= 3 * REGION, "the checkerboard should leave at least a third of old free"
    big = heap.alloc(refs=1, data=2 * REGION - 4096)  # two adjacent regions, none of them free
    assert big.space == "humongous"
    big[0] = kept[0][0]
    heap.verify()
    for ref, data in kept:
        assert bytes(ref.data[:4]) == data
    assert big[0] == kept[0][0]
    assert heap.events[-1].full
    heap.collect()
    heap.collect(full=True)
    heap.verify()


def test_an_allocation_still_fails_when_live_bytes_plus_the_request_exceed_the_heap(make_heap):
    heap = make_heap(tenuring_threshold=0)
    kept = checkerboard(heap, humongous=True)
    old = heap.config.heap_size - heap.config.young_size
    too_big = old - heap.occupancy()["total"] + REGION
    with pytest.raises(HeapExhaustedError):
        heap.alloc(data=too_big)
    heap.verify()
    assert all(bytes(r.data[:4]) == d for r, d in kept)
