"""The C-level Ref (miniheap._ref): what it is, that it calls the core without cffi or __del__, and that
it never waits for the heap's lock while holding the GIL (the deadlock the try-lock avoids)."""
import gc
import os
import subprocess
import sys
import textwrap
import weakref

import pytest

from miniheap import _ref
from miniheap.heap import Heap, Ref

from .conftest import small_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_ref_is_the_c_type_and_has_no_del():
    assert Ref is _ref.Ref
    assert _ref.__file__.endswith(".so")
    assert "__del__" not in vars(Ref), "the release is the type's deallocation, not a Python __del__"
    assert type(Heap(small_config()).alloc) is type(len), "heap.alloc is a method written in C"


def test_a_dropped_ref_gives_its_handle_back(make_heap):
    heap = make_heap()
    before = heap.stats.handles_live
    refs = [heap.alloc(refs=1, data=8) for _ in range(1000)]
    loaded = [r[0] for r in refs]  # null slots: None, no handle
    assert loaded == [None] * 1000
    refs[0][0] = refs[1]
    child = refs[0][0]
    assert heap.stats.handles_live == before + 1001
    del refs, child
    assert heap.stats.handles_live == before


def test_ref_supports_weak_references_and_keeps_its_heap_alive():
    heap = Heap(small_config())
    ref = heap.alloc(refs=1)
    w = weakref.ref(ref)
    assert w() is ref
    h = weakref.ref(heap)
    del heap
    assert h() is not None and ref.heap is h(), "a Ref keeps its Heap alive"
    ref.heap.close()
    del ref
    assert w() is None


def test_alloc_takes_keywords_and_explains_bad_ones(make_heap):
    heap = make_heap()
    assert heap.alloc(data=8, refs=2).nrefs == 2
    assert len(heap.alloc().data) == 0
    with pytest.raises(TypeError, match="unexpected keyword"):
        heap.alloc(slots=2)
    with pytest.raises(TypeError, match="at most 2"):
        heap.alloc(1, 2, 3)
    with pytest.raises(ValueError, match="refs must be an int"):
        heap.alloc(refs=-1)


def test_a_bound_alloc_of_a_closed_or_dropped_heap_refuses():
    from miniheap import HeapClosedError

    heap = Heap(small_config())
    alloc = heap.alloc
    heap.close()
    with pytest.raises(HeapClosedError):
        alloc(1, 8)
    alloc = Heap(small_config()).alloc  # the Heap itself is dropped: nothing else refers to it
    gc.collect()
    with pytest.raises(HeapClosedError):
        alloc(1, 8)


def test_the_fast_path_never_waits_for_the_lock_with_the_gil():
    """Another thread holds the heap and needs the GIL inside it (its collection calls the Python on_gc
    listener). A Ref call that waited for the heap's lock while holding the GIL would deadlock; the Ref
    tries the lock, and on failure releases the GIL before it waits. Run in a child with a timeout, so
    a deadlock fails the test instead of hanging it."""
    program = textwrap.dedent("""
        import threading, time
        from miniheap.heap import Heap
        from tests.conftest import small_config
        heap = Heap(small_config())
        stop = False

        def collector():
            while not stop:
                heap.collect(full=True)  # cffi: the GIL released, the heap held, on_gc takes the GIL

        keep = heap.alloc(refs=8)
        t = threading.Thread(target=collector)
        t.start()
        deadline = time.monotonic() + 3
        n = 0
        while time.monotonic() < deadline:
            x = heap.alloc(refs=1, data=8)
            keep[n % 8] = x
            x[0] = keep
            n += 1
        stop = True
        t.join()
        heap.verify()
        print("ok", n, heap.stats.full_collections)
    """)
    try:
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=40,
                              cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail("deadlock: a Ref call waited for the heap's lock while holding the GIL")
    assert done.returncode == 0, done.stdout + done.stderr
    ok, n, fulls = done.stdout.split()
    assert ok == "ok" and int(n) > 100 and int(fulls) > 10


def test_a_ref_dropped_while_an_exception_propagates_keeps_that_exception():
    """A Ref on the stack when an exception is raised dies as the frame unwinds, with the exception
    set. Its release, when another thread holds the heap, waits, and then delivers the cycles zgc's GC
    thread finished to on_gc: Python code, which swallowed the exception in flight (the interpreter
    then unwound with none and crashed with SIGSEGV; a Ctrl-C during allocations did it)."""
    program = textwrap.dedent("""
        import threading, time
        from miniheap.heap import Heap, lib
        from tests.conftest import small_config
        heap = Heap(small_config(collector="zgc", gc_interval=0.001))
        delivered = []
        heap.gc_listeners.append(delivered.append)
        stop = False

        def holder():  # holds the heap half of the time: a release often has to wait
            while not stop:
                lib.mh_lock(heap._ptr)
                time.sleep(0.0005)
                lib.mh_unlock(heap._ptr)
                time.sleep(0.0005)

        t = threading.Thread(target=holder)
        t.start()
        caught = 0
        try:
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                try:
                    (heap.alloc(data=8), 1 // 0)  # the Ref is on the stack when 1 // 0 raises
                except ZeroDivisionError:
                    caught += 1
        finally:
            stop = True
            t.join()
        heap.verify()  # nothing a listener kept (a SystemError, say) is raised here
        heap.close()
        print("ok", caught, len(delivered))
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stdout}{done.stderr[-2000:]}"
    ok, caught, delivered = done.stdout.split()
    assert ok == "ok" and int(caught) > 1000 and int(delivered) > 10
