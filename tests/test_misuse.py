"""Misuse from Python never crashes the interpreter: each mistake raises a specific, clear exception."""
import os
import threading

import pytest

from miniheap import (ForeignRefError, ForkedHeapError, HeapClosedError, ReleasedRefError)
from miniheap.heap import Heap

from .conftest import small_config


def test_released_ref_raises_on_every_use(make_heap):
    heap = make_heap()
    a = heap.alloc(refs=2, data=8)
    b = heap.alloc(refs=0, data=8)
    with a:
        a[0] = b
    assert a.released
    for use in (lambda: a[0], lambda: a.__setitem__(0, b), lambda: a.data[0], lambda: len(a.data),
                lambda: a.nrefs, lambda: a.address, lambda: a.space, lambda: a.copy(), lambda: a == b):
        with pytest.raises(ReleasedRefError, match="released"):
            use()
    holder = heap.alloc(refs=1)
    with pytest.raises(ReleasedRefError):
        holder[0] = a  # storing a released Ref
    a.release()  # releasing twice is harmless
    heap.collect(full=True)
    heap.verify()


def test_ref_of_another_heap_is_refused(make_heap):
    one, two = make_heap(), make_heap()
    a, b = one.alloc(refs=1), two.alloc(refs=1)
    with pytest.raises(ForeignRefError, match="another heap"):
        a[0] = b
    assert a[0] is None
    assert (a == b) is False


def test_closed_heap_raises_for_heap_and_refs():
    heap = Heap(small_config())
    a = heap.alloc(refs=1, data=4)
    heap.close()
    heap.close()  # idempotent
    for use in (lambda: heap.alloc(), lambda: heap.collect(), lambda: heap.verify(), lambda: heap.stats,
                lambda: a[0], lambda: a.data[:], lambda: a.__setitem__(0, None), lambda: heap.views):
        with pytest.raises(HeapClosedError, match="closed"):
            use()
    a.release()  # dropping a Ref of a closed heap is fine


@pytest.mark.parametrize("slot", [2, 100, -1, 2**40])
def test_slot_out_of_range(make_heap, slot):
    heap = make_heap()
    a = heap.alloc(refs=2)
    with pytest.raises(IndexError, match=str(slot) if slot >= 0 else "out of range"):
        a[slot]
    with pytest.raises(IndexError):
        a[slot] = None


@pytest.mark.parametrize("value", [42, "x", b"bytes", object(), 3.0])
def test_non_ref_stored_in_a_slot(make_heap, value):
    heap = make_heap()
    a = heap.alloc(refs=1)
    with pytest.raises(TypeError, match="holds a Ref"):
        a[0] = value
    with pytest.raises(TypeError):
        a["0"] = None


def test_payload_slices_out_of_range(make_heap):
    heap = make_heap()
    a = heap.alloc(refs=0, data=8)
    with pytest.raises(IndexError, match="8 bytes"):
        a.data[8]
    with pytest.raises(ValueError, match="cannot grow"):
        a.data[4:] = b"too long for it"
    with pytest.raises(ValueError, match="cannot grow"):
        a.data[:] = b"short"
    with pytest.raises(ValueError, match="0 to 255"):
        a.data[0] = 256
    assert a.data[6:100] == b"\0\0"  # reading past the end clips, as bytes slicing does
    a.data[-1] = 7
    assert a.data[7] == 7


@pytest.mark.parametrize("refs, data", [(-1, 0), (0, -5), ("2", 0), (0, 1.5), (2**33, 0)])
def test_bad_alloc_arguments(make_heap, refs, data):
    heap = make_heap()
    with pytest.raises(ValueError, match="alloc"):
        heap.alloc(refs=refs, data=data)


@pytest.mark.parametrize("refs", [-1, 2**20, 2**32])
def test_alloc_names_the_real_limit_of_reference_slots(make_heap, refs):
    """The header holds 20 bits of slot count: the message says 1048575, not the C call's 2**32-1."""
    with pytest.raises(ValueError, match=r"refs must be an int from 0 to 1048575 \(the most reference slots"):
        make_heap().alloc(refs=refs)


def test_heap_used_in_a_forked_child_raises():
    heap = Heap(small_config())
    a = heap.alloc(refs=1, data=8)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: every use must raise ForkedHeapError, never touch the parent's heap
        code = 0
        for use in (lambda: heap.alloc(), lambda: a[0], lambda: heap.collect(full=True)):
            try:
                use()
                code = 1
            except ForkedHeapError:
                pass
            except BaseException:
                code = 2
        os.write(w, bytes([code]))
        os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    result = os.read(r, 1)
    os.close(r)
    assert status == 0 and result == b"\0", result
    a[0] = a  # the parent's heap is untouched and usable
    heap.collect(full=True)
    heap.verify()
    heap.close()


def test_two_threads_allocating_and_collecting_keep_the_heap_sound(make_heap):
    heap = make_heap()
    errors = []
    rounds = 3000

    def mutator(seed):
        try:
            keep = heap.alloc(refs=64)
            for i in range(rounds):
                node = heap.alloc(refs=1, data=16)
                node.data[:8] = (seed * rounds + i).to_bytes(8, "little")
                keep[i % 64] = node
                if i % 500 == 0:
                    heap.collect(full=(i % 1000 == 0))
            for k in range(64):
                got = keep[k]
                i = max(j for j in range(rounds) if j % 64 == k)
                assert got.data[:8] == (seed * rounds + i).to_bytes(8, "little")
        except BaseException as e:  # reported to the main thread
            errors.append(e)

    threads = [threading.Thread(target=mutator, args=(s,)) for s in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    heap.verify()


# -- a Python API without traps (issue 13) ------------------------------------------------------------

def test_a_ref_is_always_true(make_heap):
    heap = make_heap()
    for refs, data in ((0, 0), (0, 8), (3, 0)):
        ref = heap.alloc(refs=refs, data=data)
        assert bool(ref) is True  # not len(): a Ref with no slots still names an object
        assert ref
    holder = heap.alloc(refs=1)
    assert holder[0] is None  # a null slot is None, the only false answer


@pytest.mark.parametrize("value", [5, 0, 2, True, 3.0, "ab", None, [1, 2]])
def test_payload_writes_take_bytes_like_values_only(make_heap, value):
    heap = make_heap()
    a = heap.alloc(data=4)
    a.data[:] = b"wxyz"
    with pytest.raises(TypeError, match="bytes-like"):
        a.data = value
    with pytest.raises(TypeError, match="bytes-like"):
        a.data[1:3] = value
    assert a.data == b"wxyz"  # nothing was written


def test_payload_writes_accept_every_bytes_like_object(make_heap):
    heap = make_heap()
    a, b = heap.alloc(data=4), heap.alloc(data=4)
    a.data = bytearray(b"abcd")
    assert a.data == b"abcd"
    a.data[1:3] = memoryview(b"XY")
    assert a.data == b"aXYd"
    import array

    a.data = array.array("H", [0x4241, 0x4443])  # 4 bytes through the buffer protocol
    assert a.data == b"ABCD"
    b.data = a.data  # one payload into another
    assert b.data == b"ABCD"


def test_a_payload_never_equals_an_int(make_heap):
    heap = make_heap()
    empty, zeros = heap.alloc(data=0), heap.alloc(data=3)
    assert empty.data != 0
    assert zeros.data != 3  # bytes(3) == b"\0\0\0" must not make them equal
    assert zeros.data == b"\0\0\0"
    assert zeros.data == bytearray(3)
    assert zeros.data != "\0\0\0"


def test_heap_methods_refuse_a_ref_of_another_heap(make_heap):
    one, two = make_heap(), make_heap()
    theirs = two.alloc(refs=1)
    with pytest.raises(ForeignRefError, match="another heap"):
        one.raw_slot(theirs, 0)
    with pytest.raises(ForeignRefError, match="another heap"):
        one.raw_color(theirs, 0)
    with pytest.raises(TypeError, match="Ref of this heap"):
        one.raw_slot(object(), 0)
    assert two.raw_slot(theirs, 0) == 0  # its own heap answers


def test_an_uninitialised_ref_is_dropped_silently():
    import gc
    import subprocess
    import sys

    # __del__ of a Ref that never got its fields (Ref.__new__ alone) must print nothing
    code = ("from miniheap.heap import Ref\nr = Ref.__new__(Ref)\nprint(repr(r))\ndel r\n"
            "import gc; gc.collect()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    assert "uninitialised" in done.stdout
    gc.collect()


@pytest.mark.parametrize("mapping", ["none", "colored"])
def test_a_full_handle_table_says_what_a_python_program_can_do(mapping):
    # every live Ref holds a handle; the core's own advice names its C call (mh_release), which a
    # Python program never makes
    from miniheap import MiniheapError

    with Heap(small_config(mapping=mapping, max_handles=64)) as heap:
        refs = [heap.alloc(refs=1) for _ in range(64)]
        with pytest.raises(MiniheapError, match="handle table is full") as caught:
            heap.alloc(refs=1)
        message = str(caught.value)
        assert "mh_release" not in message and "release()" in message and "max_handles" in message, message
        refs.pop().release()
        refs.append(heap.alloc(refs=1))  # a released handle is taken again
        heap.verify()


@pytest.mark.parametrize("collector", ["serial", "zgc"])
def test_a_value_released_by_another_thread_while_its_store_waits_is_a_released_ref_error(collector):
    # The store read the value's handle, then waited for the heap another thread held; that thread
    # released the value. The core's "handle 2 is not live ... until mh_release" came out as a bare
    # MiniheapError speaking of C.
    from miniheap.heap import lib

    heap = Heap(small_config(collector=collector))
    try:
        a, b = heap.alloc(refs=1), heap.alloc(data=1)
        held = threading.Event()

        def other():
            lib.mh_lock(heap._ptr)
            held.set()
            threading.Event().wait(0.2)  # the store below now waits for the heap, b's handle in hand
            b.release()
            lib.mh_unlock(heap._ptr)

        t = threading.Thread(target=other)
        t.start()
        held.wait()
        try:
            with pytest.raises(ReleasedRefError, match="another thread"):
                a[0] = b
        finally:
            t.join()
        assert a[0] is None
    finally:
        heap.close()


def test_a_ref_cannot_be_made_directly():
    # Ref() gave an empty Ref whose every use raised AttributeError ('NoneType' object has no
    # attribute '_raise'); only a heap makes Refs
    from miniheap import Ref

    with pytest.raises(TypeError, match=r"heap.alloc\(refs, data\)"):
        Ref()
    with pytest.raises(TypeError, match="cannot be made directly"):
        Ref(1, 2)
