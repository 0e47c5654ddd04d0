"""Closing a heap while it is in use: from other threads, from a signal handler, after fork().

Each scenario runs in a subprocess with a timeout: a hang fails the test instead of stopping the
suite, and a crash (SIGSEGV, SIGBUS, an ASan report) shows as the child's exit status.
"""
import os
import subprocess
import sys
import textwrap

import pytest

from .conftest import LAYOUTS, require_backend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(body, timeout=120):
    code = textwrap.dedent('''
        import os, sys
        sys.path.insert(0, os.path.join(%r, "tests"))
        from conftest import small_config
        from miniheap import HeapClosedError
        from miniheap.heap import Heap
    ''' % ROOT) + textwrap.dedent(body)
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"hung for {timeout} s (a deadlock?): {e.stdout!r} {e.stderr!r}")
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    return done


def test_closing_while_three_threads_use_the_heap_neither_hangs_nor_crashes():
    done = run_script('''
        import threading, time
        outcomes = []
        for round_ in range(60):
            heap = Heap(small_config())
            started = threading.Barrier(4)

            def mutator(seed):
                started.wait()
                try:
                    keep = heap.alloc(refs=8)
                    i = 0
                    while True:
                        node = heap.alloc(refs=1, data=64)
                        node[0] = keep
                        keep[i % 8] = node
                        node.data[:8] = i.to_bytes(8, "little")
                        if i % 97 == seed:
                            heap.collect(full=i % 2 == 0)
                        i += 1
                except HeapClosedError:
                    outcomes.append("closed")
                except BaseException as e:
                    outcomes.append(repr(e))

            threads = [threading.Thread(target=mutator, args=(s,)) for s in range(3)]
            for t in threads:
                t.start()
            started.wait()
            time.sleep(0.002 * (round_ % 5))
            heap.close()
            for t in threads:
                t.join(30)
                assert not t.is_alive(), "a thread still runs 30 s after close()"
        bad = [o for o in outcomes if o != "closed"]
        assert not bad, bad
        print(len(outcomes), "threads ended with HeapClosedError")
    ''')
    assert "180 threads ended with HeapClosedError" in done.stdout


@pytest.mark.parametrize("mapping", LAYOUTS)
def test_a_signal_handler_may_close_the_heap_at_any_point(mapping):
    require_backend("memfd")
    done = run_script('''
        import signal, random
        mapping = %r
        random.seed(1)
        state = {}

        def on_alarm(signum, frame):
            state["heap"].close()

        signal.signal(signal.SIGALRM, on_alarm)
        closed_during = 0
        for round_ in range(60):
            heap = state["heap"] = Heap(small_config(mapping=mapping, tenuring_threshold=1))
            signal.setitimer(signal.ITIMER_REAL, random.uniform(0.0005, 0.02))
            try:
                anchors = [heap.alloc(refs=2, data=256) for _ in range(16)]
                keep = list(anchors)
                for i in range(200_000):
                    node = heap.alloc(refs=2, data=1000)
                    node[0] = anchors[i %% 16]
                    anchors[(i + 1) %% 16][1] = node
                    keep[i %% 16] = node
                    if i %% 500 == 0:
                        heap.collect(full=i %% 1000 == 0)
            except HeapClosedError:
                closed_during += 1
            signal.setitimer(signal.ITIMER_REAL, 0)
            heap.close()
        print("closed during the workload:", closed_during)
    ''' % mapping, timeout=300)
    assert "closed during the workload: 60" in done.stdout, done.stdout


@pytest.mark.parametrize("to_file", [False, True])
def test_a_forked_child_does_not_write_the_parents_gc_lines_again(tmp_path, to_file):
    log = tmp_path / "gc.log"
    spec = f"gc*:file={log}" if to_file else "gc*"  # stdout is a pipe here: block-buffered
    done = run_script('''
        heap = Heap(small_config(gc_log=%r))
        pid = os.fork()
        if pid == 0:
            heap.close()  # as an atexit cleanup would; it frees nothing of the parent's
            sys.exit(0)  # the child ends normally: Python flushes and closes its files
        os.waitpid(pid, 0)
        heap.alloc(refs=1)
        heap.collect()
        heap.close()
    ''' % spec)
    text = log.read_text() if to_file else done.stdout
    assert text.count("] Using ") == 1, text
    assert text.count("Pause Young") == 2, text  # the start line and the end line, once each


def test_a_close_inside_a_zgc_commit_closes_the_heap_before_its_memory_is_unmapped():
    # What a signal handler may do at any point: close the heap while zgc commits a page inside an
    # allocation, with the GC thread running. The close waits for the end of the allocation (which
    # fails); it must stop the GC thread before the views are unmapped under it (it used to be left
    # pending: SIGSEGV in the GC thread).
    done = run_script('''
        import time
        from miniheap import _native
        lib = _native.lib
        for round_ in range(8):
            heap = Heap(small_config(mapping="colored", collector="zgc", gc_interval=0.002))
            record = heap._record
            backend = heap._core.backend
            real = backend.commit
            commits = []

            def commit(offset, length, heap=heap, real=real, commits=commits):
                commits.append(1)
                if len(commits) == 5 + round_:
                    heap.close()
                return real(offset, length)

            backend.commit = commit
            keep = []
            try:
                for i in range(100_000):
                    keep.append(heap.alloc(refs=1, data=1000))
                    if len(keep) > 300:
                        del keep[:150]
                raise AssertionError("the heap was never closed")
            except HeapClosedError:
                pass
            assert lib.mh_last_error(record) == lib.MH_E_CLOSED, "the C heap is still open"
            time.sleep(0.02)  # a GC thread still running would fault on the unmapped views now
            keep.clear()
            del heap
        print("closed inside a commit: 8")
    ''')
    assert "closed inside a commit: 8" in done.stdout


@pytest.mark.parametrize("collector", ["serial", "zgc"])
def test_a_listener_that_uses_the_heap_after_another_closed_it_does_not_unmap_it_under_the_call(collector):
    # The first listener closes the heap (deferred: a collection, or zgc's GC thread, is still using
    # it); the second reads it and gets HeapClosedError. That error used to unmap the views at once,
    # under the call still running (SIGSEGV).
    mapping = "colored" if collector == "zgc" else "none"
    done = run_script('''
        heap = Heap(small_config(mapping=%r, collector=%r))
        seen = []

        def closer(event):
            heap.close()

        def reader(event):
            try:
                heap.region_map()
            except HeapClosedError:
                seen.append("closed")

        heap.gc_listeners.extend([closer, reader])
        keep = []
        try:
            for i in range(200_000):
                keep.append(heap.alloc(refs=1, data=1000))
                if len(keep) > 100:
                    del keep[:50]
        except HeapClosedError:
            pass
        assert seen, "no collection ran"
        print("closed by a listener")
    ''' % (mapping, collector))
    assert "closed by a listener" in done.stdout


@pytest.mark.parametrize("collector", ["serial", "zgc"])
def test_reading_stats_while_another_thread_closes_the_heap_raises_heap_closed_error(collector):
    # heap.stats checked the heap was open, then read the C counters through the pointer
    # mh_get_stats returned, which is NULL once the heap closed in between: a segfault.
    run_script('''
        import threading, time
        bad = []
        for round_ in range(150):
            heap = Heap(small_config(collector=%r))

            def reader():
                try:
                    while True:
                        heap.stats
                except HeapClosedError:
                    pass
                except BaseException as e:
                    bad.append(repr(e))

            t = threading.Thread(target=reader)
            t.start()
            time.sleep(0.0005 * (round_ %% 4))
            heap.close()
            t.join(30)
            assert not t.is_alive(), "a reader still runs 30 s after close()"
        assert not bad, bad
    ''' % collector)


def test_stats_while_another_thread_delivers_collections_is_a_snapshot():
    # The pause percentiles iterated the deque a listener delivery appends to, in Python: another
    # thread's call that delivered a collection meanwhile raised "deque mutated during iteration".
    run_script('''
        import sys, threading
        sys.setswitchinterval(1e-5)  # switch threads often: inside the percentiles' loop too
        heap = Heap(small_config(collector="zgc"))
        for _ in range(1000):  # pauses to iterate over
            heap.collect()
        stop = threading.Event()
        bad = []

        def mutator():
            try:
                while not stop.is_set():
                    heap.alloc(refs=1, data=64)
                    heap.collect()
            except BaseException as e:
                bad.append(repr(e))

        t = threading.Thread(target=mutator)
        t.start()
        try:
            for _ in range(300):
                heap.stats
        finally:
            stop.set()
            t.join(30)
        heap.close()
        assert not bad, bad
    ''')
