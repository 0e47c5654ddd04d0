"""The JDK's exit summary (the gc,heap,exit lines a JVM prints as it exits with -Xlog:gc*), printed
when a heap closes: shape for shape against the real JDK 17 logs in tests/data, with figures that are
the heap's own (its occupancy, its regions, its views in /proc/self/maps), only at selectors that
select gc,heap,exit, once, and never from a forked child.
"""
import gc
import io
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from miniheap.errors import HeapClosedError
from miniheap.heap import Heap
from miniheap.maps import mappings_of

from .conftest import small_config
from .logshape import read_log, shapes_of, split

DATA = Path(__file__).resolve().parent / "data"
ROOT = Path(__file__).resolve().parent.parent
EXIT = ("gc", "heap", "exit")
# miniheap has no metaspace (gclog.py and zgclog.py say so): the JDK's last two exit lines have no
# counterpart
NO_METASPACE = ("Metaspace", "class space")

ADDR = r"(0x[0-9a-f]{16})"
GENERATION = re.compile(rf" (def new generation|tenured generation) +total (\d+)K, used (\d+)K "
                        rf"\[{ADDR}, {ADDR}, {ADDR}\)")
SPACE = re.compile(rf" +(eden|from|to|the) +space (\d+)K, +(\d+)% used \[{ADDR}, {ADDR}, (?:{ADDR}, )?{ADDR}\)")
ZHEAP = re.compile(r" ZHeap +used (\d+)M, capacity (\d+)M, max capacity (\d+)M")


def exit_messages(text):
    return [message for level, tags, message in filter(None, map(split, text.splitlines()))
            if (level, tags) == ("info", EXIT)]


def jdk_exit_lines(name):
    return [m for m in exit_messages(read_log(DATA / name)) if not m.strip().startswith(NO_METASPACE)]


def serial_run(tmp_path, selector="gc*", **overrides):
    """A serial heap with objects in eden, a survivor space and old, closed: its log, and its figures
    read just before the close (nothing runs between them and the exit lines)."""
    path = tmp_path / "gc.log"
    config = small_config("memfd", "none", gc_log=f"{selector}:file={path}", **overrides)
    with Heap(config) as heap:
        old = [heap.alloc(refs=1, data=200) for _ in range(300)]
        heap.collect(full=True)  # old now holds them
        survivors = [heap.alloc(refs=1, data=64) for _ in range(200)]
        heap.collect()  # these are in a survivor space
        young = [heap.alloc(refs=0, data=32) for _ in range(100)]
        figures = {"occupancy": heap.occupancy(), "view": heap.views[0], "regions": heap.regions(),
                   "maps": [(m.start, m.end) for m in mappings_of(heap.views[0])],
                   "old": [r.address for r in old], "survivors": [r.address for r in survivors],
                   "young": [r.address for r in young], "config": heap.config}
        del old, survivors, young
    return path.read_text(), figures


def zgc_run(tmp_path, selector="gc*"):
    path = tmp_path / "gc.log"
    config = small_config("memfd", "colored", collector="zgc", gc_log=f"{selector}:file={path}", heap_size="32M")
    with Heap(config) as heap:
        keep = [heap.alloc(refs=1, data=200) for _ in range(20000)]  # 4 MiB: the M figures are not 0
        heap.collect(full=True)
        _ = heap.events  # the cycle's lines come before the figures are read
        figures = {"occupancy": heap.occupancy(), "stats": heap.stats, "config": heap.config}
        del keep
    return path.read_text(), figures


# ------------------------------------------------------------------------- shape for shape


@pytest.mark.parametrize("fixture", ["serialgc-jdk17-gcstar.log", "serialgc-jdk17-star.log"])
def test_serial_exit_lines_have_the_jdks_shapes_in_the_jdks_order(fixture, tmp_path):
    text, _ = serial_run(tmp_path)
    ours = exit_messages(text)
    jdk = jdk_exit_lines(fixture)
    assert len(jdk) == 7 and jdk[0] == "Heap"  # the control: Heap, two generations, four spaces
    assert len(ours) == len(jdk), ours
    for mine, theirs in zip(ours, jdk):
        assert re.fullmatch(shape_of(theirs), mine), (mine, theirs)
    # the whole log, exit lines included, has only the JDK's shapes at its level and tags
    golden = shapes_of(read_log(DATA / fixture))
    for line in text.splitlines():
        level, tags, message = split(line)
        if tags == EXIT:
            assert any(re.fullmatch(s, message) for s in golden[(level, tags)]), line


def shape_of(message):
    from .logshape import shape

    return shape(message, EXIT)


def test_zgc_exit_lines_have_the_jdks_shapes(tmp_path):
    text, _ = zgc_run(tmp_path)
    ours = exit_messages(text)
    jdk = jdk_exit_lines("zgc-jdk17-gcstar.log")
    assert jdk == ["Heap", " ZHeap           used 38M, capacity 128M, max capacity 128M"]  # the control
    assert len(ours) == 2 and all(re.fullmatch(shape_of(t), m) for m, t in zip(ours, jdk)), ours
    assert text.splitlines()[-1] == [line for line in text.splitlines() if "ZHeap" in line][0]  # the last line


# ------------------------------------------------------------------------- the heap's own figures


def test_serial_exit_figures_are_the_heaps(tmp_path):
    text, f = serial_run(tmp_path)
    lines = exit_messages(text)
    gens = {m[1]: m for m in map(GENERATION.fullmatch, lines) if m}
    spaces = {m[1]: m for m in map(SPACE.fullmatch, lines) if m}
    assert set(gens) == {"def new generation", "tenured generation"} and set(spaces) == {"eden", "from", "to", "the"}
    view, config, occupancy = f["view"], f["config"], f["occupancy"]
    K = 1024

    def addrs(m):
        return [int(a, 16) for a in m.groups()[3:] if a is not None]

    # every address is inside the heap's view, and the view is what /proc/self/maps shows
    lo, hi = view.start, view.start + view.length
    maps = f["maps"]  # (one line, or several that follow each other)
    assert maps and maps[0][0] == lo and maps[-1][1] == hi and all(a[1] == b[0] for a, b in zip(maps, maps[1:]))
    for m in list(gens.values()) + list(spaces.values()):
        a = addrs(m)
        assert all(lo <= x <= hi for x in a) and a == sorted(a), m.group(0)
    young, old = addrs(gens["def new generation"]), addrs(gens["tenured generation"])
    assert young == [lo, lo + config.young_size, lo + config.young_size]
    assert old == [lo + config.young_size, hi, hi]
    # the spaces tile the generations: eden, then the two survivor spaces, then the tenured space
    eden, frm, to, the = (addrs(spaces[n]) for n in ("eden", "from", "to", "the"))
    assert eden[0] == lo and sorted([(frm[0], frm[-1]), (to[0], to[-1])]) == [(eden[-1], min(frm[-1], to[-1])),
                                                                              (max(frm[0], to[0]), young[-1])]
    assert (the[0], the[-1]) == (old[0], old[-1])
    # used: each space's from its bump pointer (top - bottom), matching the heap's occupancy
    assert eden[1] - eden[0] == occupancy["eden"] > 0
    assert frm[1] - frm[0] == occupancy["survivor"] > 0 and to[1] == to[0]
    for name, used in (("eden", occupancy["eden"]), ("from", occupancy["survivor"]), ("to", 0)):
        m = spaces[name]
        capacity = addrs(m)[-1] - addrs(m)[0]
        assert int(m[2]) * K == capacity and int(m[3]) == int(used * 100 / capacity)
    assert int(gens["def new generation"][3]) == (occupancy["eden"] + occupancy["survivor"]) >> 10
    assert int(gens["def new generation"][2]) == (eden[-1] - eden[0] + frm[-1] - frm[0]) >> 10
    assert int(gens["tenured generation"][3]) == occupancy["old"] >> 10 > 0
    assert int(gens["tenured generation"][2]) == (hi - old[0]) >> 10 == int(spaces["the"][2])
    assert int(spaces["the"][3]) == int(occupancy["old"] * 100 / (hi - old[0]))
    # the objects are where the lines say: young ones below eden's top, survivors below from's top,
    # old ones below the tenured space's top; its threshold is the next card boundary above the top
    assert all(eden[0] <= a < eden[1] for a in f["young"])
    assert all(frm[0] <= a < frm[1] for a in f["survivors"])
    assert all(the[0] <= a < the[1] for a in f["old"])
    old_regions = [(i, used) for i, state, used in f["regions"] if state == "old" and used]
    i, used = old_regions[-1]
    assert the[1] == lo + i * config.region_size + used
    assert the[2] == -(-the[1] // 512) * 512 and the[1] <= the[2] < the[1] + 512


def test_zgc_exit_figures_are_the_heaps(tmp_path):
    text, f = zgc_run(tmp_path)
    m = [m for m in map(ZHEAP.fullmatch, exit_messages(text)) if m][0]
    used, capacity, max_capacity = (int(x) for x in m.groups())
    # (the GC thread may run a cycle of its own between the figures and the close: it frees, never adds)
    assert 0 < used <= f["occupancy"]["total"] >> 20
    assert capacity == (f["stats"].regions_committed * f["config"].region_size) >> 20
    assert max_capacity == f["config"].heap_size >> 20
    assert used <= capacity <= max_capacity
    # every cycle's lines come before the summary, whose used is what the last cycle left: nothing was
    # allocated since
    cycle = [line for line in text.splitlines() if re.search(r"\[gc *\] GC\(\d+\) Garbage Collection", line)][-1]
    after = int(re.search(r"->(\d+)M", cycle)[1])
    assert text.index(cycle) < text.index("ZHeap") and used == after


# ------------------------------------------------------------------------- when, and how often


@pytest.mark.parametrize("selector, printed", [("gc*", True), ("gc*=debug", True), ("gc*=trace", True),
                                               ("gc", False), ("gc=debug", False), ("gc=trace", False)])
def test_printed_only_when_the_selector_selects_gc_heap_exit(selector, printed, tmp_path):
    """As the JDK's -Xlog: gc,heap,exit is a tag set starting with gc (gc* selects it), not the tag set
    exactly (gc)."""
    text, _ = serial_run(tmp_path, selector)
    assert bool(exit_messages(text)) == printed
    assert text.count("] Heap\n") == text.count(" def new generation ") == text.count(" tenured generation ") == printed


@pytest.mark.parametrize("collector", ["serial", "zgc"])
def test_printed_once_however_often_the_heap_is_closed(collector, tmp_path):
    path = tmp_path / "gc.log"
    mapping = "colored" if collector == "zgc" else "none"
    with Heap(small_config("memfd", mapping, collector=collector, gc_log=f"gc*:file={path}")) as heap:
        heap.alloc(refs=1, data=10)
        heap.close()
        heap.close()
    heap.close()
    assert path.read_text().count("] Heap\n") == 1


def test_a_heap_dropped_unclosed_prints_it_once(tmp_path):
    """The heap's life ends, as a JVM's does at exit, and its log is still open: the summary is
    printed (after the ResourceWarning an unclosed heap gives)."""
    path = tmp_path / "gc.log"
    heap = Heap(small_config("memfd", "none", gc_log=f"gc*:file={path}"))
    heap.alloc(refs=1, data=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del heap
        gc.collect()
    text = path.read_text()
    assert text.count("] Heap\n") == 1 and len(exit_messages(text)) == 7


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_a_forked_child_does_not_print_the_parents_summary(tmp_path):
    path = tmp_path / "gc.log"
    with Heap(small_config("memfd", "none", gc_log=f"gc*:file={path}")) as heap:
        heap.alloc(refs=1, data=10)
        pid = os.fork()
        if pid == 0:  # the child closes (and drops) the parent's heap, then exits as a program does
            try:
                heap.close()
                del heap
                gc.collect()
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert "] Heap\n" not in path.read_text()
    assert path.read_text().count("] Heap\n") == 1


def test_a_close_inside_the_heaps_own_callback_prints_nothing_and_closes(tmp_path):
    """A listener (or a signal handler) that closes the heap runs inside the collection that called
    it: the heap is not at rest, so no summary; the heap still closes."""
    path = tmp_path / "gc.log"
    heap = Heap(small_config("memfd", "none", gc_log=f"gc*:file={path}"))
    heap.gc_listeners.append(lambda event: heap.close())
    with pytest.raises(HeapClosedError):
        heap.collect()
    heap.close()
    assert "] Heap\n" not in path.read_text() and heap._closed


# ------------------------------------------------------------------------- the demo


@pytest.mark.parametrize("collector, mapping, first", [("serial", "none", " def new generation"),
                                                      ("zgc", "colored", " ZHeap ")])
def test_the_demo_prints_the_exit_summary_with_gc_star(collector, mapping, first):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "gc_demo.py"), "--collector", collector,
                             "--mapping", mapping, "--gc-log", "gc*", "--work", "8"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    messages = exit_messages(result.stdout)
    assert messages[0] == "Heap" and messages[1].startswith(first), messages
    assert result.stdout.count("][gc,heap,exit") == len(messages) == (7 if collector == "serial" else 2)


# ------------------------------------------------------------------------- the format, byte for byte


def _jdk_serial_summary(text):
    """The figures of a JDK SerialGC exit block (its spaces are contiguous: used = top - bottom)."""
    from miniheap.heapsummary import SerialSummary, Space

    spaces = {}
    for message in exit_messages(text):
        if (m := SPACE.fullmatch(message)) is not None:
            a = [int(x, 16) for x in m.groups()[3:] if x is not None]
            spaces[m[1]] = Space(a[0], a[1], a[-1], a[1] - a[0])
    return SerialSummary(spaces["eden"], spaces["from"], spaces["to"], spaces["the"])


@pytest.mark.parametrize("fixture", ["serialgc-jdk17-gcstar.log", "serialgc-jdk17-star.log"])
def test_the_serial_format_prints_the_jdks_figures_as_the_jdk_does(fixture):
    """The JDK's own figures through our writer give the JDK's lines, padding and percentages and the
    tenured space's threshold included."""
    from miniheap.gclog import GCLog

    jdk = read_log(DATA / fixture)
    out = io.StringIO()
    log = GCLog("gc*", out, start=0.0, clock=lambda: 0.0)
    log.log_exit(_jdk_serial_summary(jdk))
    log.log_exit(_jdk_serial_summary(jdk))  # once only
    assert exit_messages(out.getvalue()) == jdk_exit_lines(fixture)


def test_the_zgc_format_prints_the_jdks_figures_as_the_jdk_does():
    from miniheap.gclog import GCLog
    from miniheap.heapsummary import ZgcSummary
    from miniheap.zgclog import ZgcFormat

    out = io.StringIO()
    log = GCLog("gc*", out, start=0.0, clock=lambda: 0.0, format=ZgcFormat())
    log.log_exit(ZgcSummary(used=(38 << 20) + 12345, capacity=128 << 20, max_capacity=128 << 20))
    log.log_exit(ZgcSummary(used=1, capacity=2, max_capacity=3))  # once only
    assert exit_messages(out.getvalue()) == jdk_exit_lines("zgc-jdk17-gcstar.log")
