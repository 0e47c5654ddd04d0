"""pretouch = true touches the heap through every view, as JDK 17's -XX:+AlwaysPreTouch does with ZGC."""
import pytest

from miniheap import memory
from miniheap.backends import BACKENDS

from .conftest import LAYOUTS


@pytest.mark.parametrize("mapping", LAYOUTS)
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_pretouch_touches_every_writable_view(make_heap, backend, mapping):
    heap = make_heap(backend, mapping, pretouch=True)
    size = heap.config.heap_size
    writable = [v for v in heap.layout.views if v.writable]
    populate = [line for line in heap.trace.lines if "MADV_POPULATE_WRITE" in line and f", {size}," in line]
    assert len(populate) >= len(writable), populate
    vmas = memory.read_smaps()
    for view in writable:
        usage = memory.usage_of(view, vmas)
        touched = usage.hugetlb if backend == "memfd-hugetlb" else usage.rss
        assert touched >= size - (64 << 10), f"{view.name}: only {touched} of {size} bytes touched"


def test_pretouched_coloured_heap_has_rss_three_times_pss(make_heap):
    heap = make_heap("memfd", "colored", pretouch=True)
    size = heap.config.heap_size
    snap = heap.memory()
    assert snap.backing == size and snap.touched == size
    assert snap.views_rss >= 3 * size - (64 << 10)
    assert abs(snap.views_pss - size) <= 16 << 10
    assert snap.views_rss / snap.views_pss >= 2.9
