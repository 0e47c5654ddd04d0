"""One owner per C heap and per handle: no copy, pickle or reference cycle makes a second one.

A Heap dropped without close() is released as soon as it is unreachable (reference counting alone,
with the cyclic collector off), with a ResourceWarning as an unclosed file gives.
"""
import copy
import gc
import pickle
import warnings

import pytest

from miniheap.heap import Heap

from .conftest import small_config


@pytest.fixture
def no_cyclic_gc():
    """Run with Python's cyclic collector off: only reference counting may free what a test drops."""
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    yield
    if was:
        gc.enable()


def test_heap_cannot_be_copied_or_pickled(make_heap):
    heap = make_heap()
    for make_copy in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError, match="Heap cannot be"):
            make_copy(heap)
    heap.alloc()  # still the one owner, still usable
    heap.verify()


def test_copy_of_a_ref_is_an_independent_handle(make_heap):
    heap = make_heap()
    a = heap.alloc(refs=1, data=4)
    b = copy.copy(a)
    assert b == a and b is not a
    a.release()
    assert not b.released
    b.data[:] = b"abcd"  # the object is still held by the copy's own handle
    assert heap.stats.handles_live == 1
    b.release()
    assert heap.stats.handles_live == 0


def test_ref_cannot_be_deep_copied_or_pickled(make_heap):
    heap = make_heap()
    a = heap.alloc(refs=1)
    with pytest.raises(TypeError, match="Ref cannot be deep-copied"):
        copy.deepcopy(a)
    with pytest.raises(TypeError, match="Ref cannot be pickled"):
        pickle.dumps(a)
    with pytest.raises(TypeError, match="Ref cannot be pickled"):
        pickle.dumps([a])
    assert heap.stats.handles_live == 1


def test_dropped_heap_is_released_at_once_with_a_resource_warning(resources, no_cyclic_gc):
    before = resources()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        heap = Heap(small_config())
        ref = heap.alloc(refs=1, data=8)
        ref[0] = ref
        del heap  # a Ref keeps its heap alive...
        assert resources().leaks_since(before, huge=False), "the heap was released while a Ref still used it"
        del ref  # ...and the last one dropped releases it, with no cyclic collection
    assert resources().leaks_since(before, huge=False) == []
    unclosed = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert len(unclosed) == 1 and "unclosed heap" in str(unclosed[0].message)


def test_closed_heap_gives_no_resource_warning(no_cyclic_gc):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Heap(small_config()) as heap:
            heap.alloc()
        del heap
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


@pytest.mark.parametrize("mapping", ["none", "colored"])
def test_a_thousand_heaps_dropped_without_close_leave_nothing(resources, no_cyclic_gc, mapping):
    # A coloured heap reserves fixed addresses: a second one built before the first is released fails.
    before = resources()

    def use_and_drop(i):
        heap = Heap(small_config(mapping=mapping))
        keep = heap.alloc(refs=2, data=16)
        keep[0] = heap.alloc(refs=1)
        keep[0][0] = keep
        keep.data[:2] = i.to_bytes(2, "little")
        heap.collect(full=i % 2 == 0)
        # the function returns without close(): the heap must go with its last reference

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        for i in range(1000):
            use_and_drop(i)
            if i % 250 == 0:
                assert resources().leaks_since(before, huge=False) == [], f"after {i + 1} heaps"
    assert resources().leaks_since(before, huge=False) == []
