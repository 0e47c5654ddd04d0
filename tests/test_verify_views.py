"""verify_views (HotSpot's ZVerifyViews): only the good colour's view of a zgc heap is accessible.

What is checked here, from Python and from /proc read by the test itself: the configuration (only with
the zgc collector's coloured views), whole zgc cycles on the GC thread on every backend with
heap.verify() after each, the views' permissions in /proc/self/maps between flips, pretouch touching
only the good view, closing in every phase, and a child process that dereferences a stale-coloured
reference without the barrier: it dies with SIGSEGV, and without verify_views the same read succeeds.
The interleavings (stepping mode) run with verify-views in C: tests/native/test_zgc_c.py."""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from miniheap import HeapConfig
from miniheap.config import ConfigError
from miniheap.heap import Heap

from .conftest import small_config
from .test_zgc import list_values, make_list, mutated_long_enough

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLOURS = ("Marked0", "Marked1", "Remapped")


def vv_config(backend="memfd", **overrides):
    return small_config(backend, "colored", collector="zgc", verify_views=True, **overrides)


def permissions(pid, view):
    """The permission strings /proc/PID/maps shows over a view's range: read here, not by miniheap."""
    seen = set()
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            bounds, perms = line.split()[:2]
            lo, hi = (int(x, 16) for x in bounds.split("-"))
            if lo < view.start + view.length and hi > view.start:
                seen.add(perms)
    return seen


def check_only_good_view_open(heap):
    """Hold the heap (no flip meanwhile) and read every view's permissions."""
    from miniheap._native import lib

    lib.mh_lock(heap._ptr)
    try:
        good = lib.mh_good_color(heap._ptr)
        for colour, view in enumerate(heap.layout.views):
            want = {"rw-s"} if colour == good else {"---s"}
            assert permissions(os.getpid(), view) == want, (COLOURS[colour], COLOURS[good])
    finally:
        lib.mh_unlock(heap._ptr)


def test_verify_views_is_off_by_default_and_only_for_zgc():
    assert HeapConfig().verify_views is False
    assert HeapConfig(collector="zgc", verify_views="true").verify_views is True
    for bad in (dict(verify_views=True), dict(mapping="young-mirror", verify_views=True),
                dict(collector="serial", verify_views=True)):
        with pytest.raises(ConfigError) as e:
            HeapConfig(**bad)
        text = str(e.value)
        assert "verify_views needs the zgc collector" in text and "set verify_views = false" in text, text
        assert "\n" not in text
    with pytest.raises(ConfigError, match="verify_views 'sometimes' is not a boolean"):
        HeapConfig(collector="zgc", verify_views="sometimes")


def test_verify_views_comes_from_toml_env_and_flags(tmp_path):
    path = tmp_path / "h.toml"
    path.write_text('[heap]\ncollector = "zgc"\nverify_views = true\n')
    assert HeapConfig.load(path, env={}).config.verify_views is True
    loaded = HeapConfig.load(None, env={"MINIHEAP_COLLECTOR": "zgc", "MINIHEAP_VERIFY_VIEWS": "1"})
    assert loaded.config.verify_views is True and loaded.source_of("verify_views") == "env:MINIHEAP_VERIFY_VIEWS"
    with pytest.raises(ConfigError) as e:
        HeapConfig.load(None, env={"MINIHEAP_VERIFY_VIEWS": "true"})
    assert "environment variable MINIHEAP_VERIFY_VIEWS" in str(e.value)


def test_zgc_cycles_run_clean_with_only_the_good_view_open(backend_name):
    with Heap(vv_config(backend_name)) as heap:
        check_only_good_view_open(heap)
        head = make_list(heap, 2000, garbage=30)
        before = head.address
        for _ in range(3):
            heap.collect(full=True)
            heap.verify()
            check_only_good_view_open(heap)
            assert list_values(head) == list(range(2000))
        assert head.address != before, "nothing was relocated: the test saw no Relocate Start with moves"
        stats = heap.stats
        assert stats.zgc_cycles >= 3 and stats.view_protect_failures == 0
        assert stats.view_protects >= 3 + 2 * 2 * stats.zgc_cycles  # at creation, then 2 per flip
        assert stats.view_protect_ns > 0


def test_without_verify_views_every_view_stays_open():
    with Heap(small_config("memfd", "colored", collector="zgc")) as heap:
        make_list(heap, 200)
        heap.collect()
        for view in heap.layout.views:
            assert permissions(os.getpid(), view) == {"rw-s"}
        assert heap.stats.view_protects == 0


def test_the_gc_thread_flips_while_python_mutates():
    """Cycles every few milliseconds, the views' protections changed by the GC thread each time, while
    this thread loads (through the barrier) and allocates: nothing faults, nothing is lost."""
    with Heap(vv_config(gc_interval=0.002)) as heap:
        lists = [make_list(heap, 20, garbage=0) for _ in range(20)]
        start = time.monotonic()
        rounds = 0
        # 1 s at least, then until the figures below are reached or a minute has passed
        while not mutated_long_enough(heap, start, 1.0, lambda s: s.zgc_cycles >= 5 and s.loads_slow > 0):
            i = rounds % len(lists)
            assert list_values(lists[i]) == list(range(20))
            lists[i] = make_list(heap, 20, garbage=1)
            rounds += 1
            if rounds % 50 == 0:
                check_only_good_view_open(heap)
        heap.verify()
        stats = heap.stats
        assert stats.zgc_cycles >= 5 and stats.loads_slow > 0 and stats.view_protect_failures == 0


def test_pretouch_touches_only_the_good_view():
    from miniheap import memory

    with Heap(vv_config(pretouch=True)) as heap:
        vmas = memory.read_smaps()
        rss = {v.name: memory.usage_of(v, vmas).rss for v in heap.layout.views}
        good = COLOURS[heap.good_color]
        assert rss[good] == heap.config.heap_size, rss
        assert all(rss[name] == 0 for name in rss if name != good), rss
        make_list(heap, 500)
        heap.collect()
        heap.verify()


@pytest.mark.parametrize("delay", [0.0, 0.0005, 0.002, 0.01])
def test_close_in_every_phase_leaves_nothing(resources, delay):
    """Closed while another thread's System.gc() cycle runs: in a pause, marking, relocating or idle,
    whichever the GC thread is in after delay."""
    from miniheap.errors import HeapClosedError

    before = None
    for i in range(4):  # the first round warms up: glibc keeps thread stacks and malloc arenas mapped
        if i == 1:
            before = resources()
        heap = Heap(vv_config(gc_interval=0.001))
        keep = make_list(heap, 3000, garbage=2)

        def collect():
            try:
                heap.collect(full=True)
            except HeapClosedError:
                pass

        cycle = threading.Thread(target=collect)
        cycle.start()
        time.sleep(delay)
        heap.close()
        cycle.join()
        del keep
    assert resources().leaks_since(before, huge=False) == []


def verify_views_child(*args, **kwargs):
    env = dict(os.environ, **kwargs.pop("env", {}))
    if "ASAN_OPTIONS" in env:  # under tools/sanitize: let the fault kill the child, as it would unsanitized
        env["ASAN_OPTIONS"] += ":handle_segv=0"
    env.pop("PYTHONFAULTHANDLER", None)
    return subprocess.Popen([sys.executable, "-m", "miniheap", "verify-views", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, **kwargs)


def test_a_load_that_skips_the_barrier_faults_only_with_verify_views():
    p = verify_views_child()
    out, err = p.communicate(timeout=120)
    assert p.returncode == -signal.SIGSEGV, (p.returncode, out, err)
    assert "skipping the barrier" in out and "no fault" not in out
    p = verify_views_child("--no-verify-views")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert "no fault" in out


class _Range:
    def __init__(self, start, length):
        self.start, self.length = start, length


def test_the_child_shows_each_flip_in_its_maps():
    """The child waits at each listing; its views' permissions are read here from /proc/CHILD/maps."""
    size = HeapConfig.load(cli={"mapping": "colored", "heap_size": "32M"}).config.heap_size
    p = verify_views_child("--wait", stdin=subprocess.PIPE)
    seen, text, shown = {}, [], {}
    try:
        for line in p.stdout:
            text.append(line)
            parts = line.split()
            if len(parts) == 3 and parts[0] in COLOURS and parts[1].startswith("0x"):
                shown[parts[0]] = (int(parts[1], 16), parts[2])
            if line.startswith("waiting: "):
                what = line.split(": ", 1)[1].strip()
                seen[what] = {name: permissions(p.pid, _Range(start, size)) for name, (start, _) in shown.items()}
                assert seen[what] == {name: {perms} for name, (_, perms) in shown.items()}, (what, shown)
                shown = {}
                p.stdin.write("\n")
                p.stdin.flush()
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == -signal.SIGSEGV, (p.returncode, "".join(text), p.stderr.read())
    assert seen["between cycles"] == {"Marked0": {"---s"}, "Marked1": {"---s"}, "Remapped": {"rw-s"}}
    assert "marking" in seen, "the marking window was never caught"
    marking = seen["marking"]
    assert marking["Remapped"] == {"---s"}, marking
    assert sorted(p for perms in marking.values() for p in perms) == ["---s", "---s", "rw-s"], marking
