"""The callback contract seen from Python: what happens inside commit, uncommit and on_gc.

Python runs finalizers (Ref.__del__) and signal handlers wherever its interpreter happens to be, and
that may be inside one of the C heap's callbacks, in the middle of a collection. A release there is
queued (never dropped), and an exception there (KeyboardInterrupt, a timeout) fails the call that ran
the callback and is raised by it, never printed as "Exception ignored".
"""
import gc
import os
import signal

import pytest

from miniheap import HeapExhaustedError, MiniheapError



def fill_young(heap, keep):
    """Allocate until a young collection has promoted `keep` into a new old region (a commit)."""
    for _ in range(2000):
        keep.append(heap.alloc(refs=1, data=2000))
        if heap.stats.young_collections:
            return
    raise AssertionError("no young collection happened")


def hook_commit(heap, action):
    """Run action() inside every commit callback (as Python's GC or a signal handler would)."""
    backend = heap._core.backend
    real = backend.commit

    def commit(offset, length):
        action()
        return real(offset, length)

    backend.commit = commit  # an instance attribute: only this heap's backend


def test_refs_dropped_inside_a_commit_callback_are_released(make_heap):
    heap = make_heap(tenuring_threshold=0)
    doomed = [heap.alloc(refs=1, data=100_000) for _ in range(8)]  # 8 roots holding ~800 KB
    hook_commit(heap, doomed.clear)  # their Refs die inside the callback, mid-collection
    keep = []
    fill_young(heap, keep)
    assert doomed == []
    keep.clear()
    heap.collect(full=True)
    heap.verify()
    assert heap.stats.handles_live == 0, "a release inside the callback was dropped: the handle leaked"
    assert heap.occupancy()["total"] == 0


def test_cyclic_garbage_collected_inside_a_commit_callback_releases_its_refs(make_heap):
    heap = make_heap(tenuring_threshold=0)

    class Node:
        pass

    was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(8):  # Refs reachable only from Python cycles: freed by gc.collect() alone
            a, b = Node(), Node()
            a.other, b.other, a.ref = b, a, heap.alloc(refs=0, data=100_000)
        del a, b
        hook_commit(heap, gc.collect)
        keep = []
        fill_young(heap, keep)
    finally:
        if was:
            gc.enable()
    keep.clear()
    heap.collect(full=True)
    assert heap.stats.handles_live == 0
    assert heap.occupancy()["total"] == 0


def test_keyboard_interrupt_in_a_commit_is_a_failed_commit_raised_after_the_call(make_heap, capfd):
    heap = make_heap(tenuring_threshold=0)
    pressed = []

    def ctrl_c():
        if not pressed:
            pressed.append(1)
            signal.raise_signal(signal.SIGINT)  # Python's default handler raises KeyboardInterrupt here

    hook_commit(heap, ctrl_c)
    keep = []
    old = signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever an earlier test set
    try:
        with pytest.raises(KeyboardInterrupt):
            fill_young(heap, keep)
    finally:
        signal.signal(signal.SIGINT, old)
    assert pressed
    assert heap.stats.commit_failures >= 1, "the interrupted commit was taken for a success"
    assert "Exception ignored" not in capfd.readouterr().err
    heap.verify()  # the heap is whole and usable
    keep.append(heap.alloc(refs=1, data=64))
    heap.collect(full=True)
    heap.verify()


def test_a_timeout_signal_during_a_collection_reaches_the_program(make_heap, capfd):
    heap = make_heap()

    def on_alarm(signum, frame):
        raise TimeoutError("the test's deadline")

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        log = heap._core.gclog
        real = log.log_event

        def log_event(event):  # the signal arrives while on_gc runs
            signal.raise_signal(signal.SIGALRM)
            real(event)

        log.log_event = log_event
        with pytest.raises(TimeoutError, match="deadline"):
            heap.collect(full=True)
        log.log_event = real
    finally:
        signal.signal(signal.SIGALRM, old)
    assert "Exception ignored" not in capfd.readouterr().err
    heap.verify()
    heap.collect()  # usable afterwards


def test_an_exception_in_the_event_listener_reaches_the_program(make_heap):
    heap = make_heap()
    log = heap._core.gclog

    def broken(event):
        raise RuntimeError("listener bug")

    log.log_event = broken
    a = heap.alloc(refs=1)
    with pytest.raises(RuntimeError, match="listener bug"):
        heap.collect()
    del log.log_event
    assert a.space == "survivor"  # the collection itself happened
    heap.verify()


def test_exhaustion_is_still_reported_as_such(make_heap):
    heap = make_heap()
    keep = []
    with pytest.raises(HeapExhaustedError):
        for _ in range(10_000):
            keep.append(heap.alloc(data=60_000))
    keep.clear()
    heap.collect(full=True)
    heap.verify()



def test_keyboard_interrupt_in_a_zgc_commit_fails_that_allocation_and_nothing_after(make_heap):
    # zgc commits its pages inside the allocation: the interrupt must end with that call (it used to
    # stay pending and fail the next collection with "interrupted")
    heap = make_heap(mapping="colored", collector="zgc", heap_size="64M")
    commits = []

    def ctrl_c():
        commits.append(1)
        if len(commits) == 2:
            raise KeyboardInterrupt

    hook_commit(heap, ctrl_c)
    keep = []
    with pytest.raises(KeyboardInterrupt):
        for _ in range(50_000):
            keep.append(heap.alloc(refs=1, data=1000))
    assert heap.stats.commit_failures >= 1, "the interrupted commit was taken for a success"
    live = heap.stats.handles_live
    assert live == len(keep), "the interrupted allocation kept a handle"
    heap.collect()
    keep.append(heap.alloc(refs=1, data=1000))
    heap.verify()


@pytest.mark.parametrize("collector", ["serial", "zgc"])
def test_ctrl_c_while_the_core_collects_reaches_the_program(make_heap, capfd, collector):
    # A signal that arrives while C runs has its Python handler run by the first Python code the
    # thread executes: a callback's first instruction, before the callback's own try. cffi used to
    # print that KeyboardInterrupt as "Exception ignored" and drop it.
    import os
    import threading

    heap = make_heap(mapping="colored" if collector == "zgc" else "none", collector=collector,
                     heap_size="64M", young_size="16M", region_size="1M")
    keep = [heap.alloc(refs=2, data=16) for _ in range(100_000)]  # a live set: slow collections
    for a, b in zip(keep, keep[1:]):
        a[0] = b
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
    try:
        with pytest.raises(KeyboardInterrupt):
            timer.start()
            for _ in range(2000):  # far longer than the timer, almost all of it in C
                heap.collect(full=True)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, old)
    assert "Exception ignored" not in capfd.readouterr().err
    heap.verify()
    heap.collect(full=True)  # usable afterwards


def test_a_release_inside_a_listener_does_not_let_other_threads_into_the_busy_heap():
    """A release made inside on_gc (a __del__ the cyclic collector ran there) is a call nested in the
    call that delivers the event. When zgc's GC thread wanted a pause, that nested call let go of the
    heap for it, and another mutator took the heap next and found it reporting a collection: its
    ordinary store failed with "an on_gc callback may ... not ... store". Run in a child: the
    interleaving needs the GC thread cycling and a few hundred events."""
    import subprocess
    import sys
    import textwrap

    program = textwrap.dedent("""
        import threading, time
        from miniheap.heap import Heap
        from tests.conftest import small_config
        heap = Heap(small_config(collector="zgc", gc_interval=0.001))
        spare = []

        def listener(event):
            time.sleep(0.0005)  # long enough for the GC thread to ask for its next pause
            if spare:
                spare.pop().release()  # a call nested in the delivering call

        heap.gc_listeners.append(listener)
        errors = []
        stop = False

        def mutator():
            keep = heap.alloc(refs=8)
            i = 0
            while not stop:
                try:
                    x = heap.alloc(refs=1, data=64)
                    keep[i % 8] = x
                    x[0] = keep
                except Exception as e:
                    errors.append(repr(e))
                i += 1

        threads = [threading.Thread(target=mutator) for _ in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 2
        try:
            while time.monotonic() < deadline:
                try:
                    spare.extend(heap.alloc(data=8) for _ in range(4))
                    heap.collect()
                except Exception as e:
                    errors.append(repr(e))
        finally:
            stop = True
            for t in threads:
                t.join()
        heap.verify()
        heap.close()
        print(len(errors), errors[:3])
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("0 "), done.stdout


@pytest.mark.parametrize("collector, mapping", [("serial", "none"), ("zgc", "colored")])
def test_a_listener_refused_a_change_is_told_in_pythons_words(make_heap, collector, mapping):
    """The core's MH_E_BUSY sentence names its C calls (mh_verify, mh_nrefs...); a Python listener is
    told what it may do in this API's terms, and those reads do work there."""
    heap = make_heap("memfd", mapping, collector=collector)
    a = heap.alloc(refs=2, data=8)
    a.data[:2] = b"hi"
    seen = []

    def listener(event):
        seen.append((bytes(a.data[:2]), len(a)))
        heap.verify()
        with pytest.raises(MiniheapError) as refused:
            heap.alloc(refs=1, data=8)
        seen.append(str(refused.value))

    heap.gc_listeners.append(listener)
    heap.collect(full=True)
    assert seen[0] == (b"hi", 2)
    assert "gc listener may read the heap (verify(), ref.data, len(ref), stats)" in seen[1], seen[1]
    assert "mh_" not in seen[1]
