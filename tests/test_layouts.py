"""Multi-mapping layouts: the views in /proc/self/maps, aliasing, read-only mirrors, colour healing."""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from miniheap.backends import BACKENDS
from miniheap.layout import COLOR_NAMES
from miniheap.maps import mappings_of, read_maps

from .conftest import LAYOUTS, ZGC_ONE_VIEW

HEADER = 8  # one header word before the slots (MH_HEADER_BYTES)

EXPECTED_VIEWS = {
    "none": ["heap"],
    "colored": list(COLOR_NAMES),
    ZGC_ONE_VIEW: ["heap"],
    "young-mirror": ["heap", "young mirror 1"],
}


@pytest.mark.parametrize("mapping", LAYOUTS)
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_maps_show_exactly_the_expected_views_of_one_backing(make_heap, backend, mapping):
    heap = make_heap(backend, mapping)
    views = heap.views
    names = [v.name for v in views if not v.name.startswith("source")]
    assert names == EXPECTED_VIEWS[mapping]
    maps = read_maps()
    identities = set()
    for view in views:
        lines = mappings_of(view, maps)
        assert lines, f"{view.name} at {view.start:#x} is not in /proc/self/maps"
        assert lines[0].start == view.start and lines[-1].end == view.end, (view, lines)
        assert sum(m.length for m in lines) == view.length, "a hole inside a view"
        for m in lines:
            identities.add((m.dev, m.inode, m.path))
            assert m.perms.startswith("rw" if view.writable else "r-"), (view, m)
            assert "s" in m.perms, "a view must be a shared mapping"
    assert len(identities) == 1, f"the views are not all of one backing: {identities}"
    assert identities.pop()[2] == heap.backend.maps_name()
    if mapping == "colored":
        bits = heap.config.color_bits
        assert [v.start for v in views[:3]] == [1 << bits, 1 << (bits + 1), 1 << (bits + 2)]
    if mapping == ZGC_ONE_VIEW:  # at the heap base bit, as JDK 21+ maps its one java_heap
        assert views[0].start == 1 << heap.config.color_bits


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_colored_object_reads_the_same_through_all_three_views(make_heap, backend):
    from miniheap.syscalls import ffi

    heap = make_heap(backend, "colored")
    obj = heap.alloc(refs=0, data=32)
    obj.data[:] = b"one object, three addresses....."
    offset = obj.address & ((1 << heap.config.color_bits) - 1)
    size = HEADER + 32
    seen = {bytes(ffi.buffer(ffi.cast("char *", v.start + offset), size)) for v in heap.views[:3]}
    assert len(seen) == 1 and seen.pop().endswith(b"one object, three addresses.....")
    # The address handed out carries the good colour's bit, and nothing else above the offset.
    assert obj.address >> heap.config.color_bits in (1, 2, 4)


def test_young_mirror_shows_writes_at_once_and_after_collections(make_heap):
    from miniheap.syscalls import ffi

    heap = make_heap("memfd", "young-mirror")
    main, mirror = heap.views[0], heap.views[1]
    obj = heap.alloc(refs=0, data=16)

    def through_mirror(ref):
        offset = ref.address - main.start
        assert offset < mirror.length, "object not in the young generation"
        return bytes(ffi.buffer(ffi.cast("char *", mirror.start + offset + HEADER), 16))

    obj.data[:] = b"written via main"
    assert through_mirror(obj) == b"written via main"
    before = obj.address
    heap.collect()  # eden -> survivor: the object moves, the mirror shows it at its new place
    assert obj.address != before and obj.space == "survivor"
    assert through_mirror(obj) == b"written via main"
    obj.data[:4] = b"WROT"
    assert through_mirror(obj)[:4] == b"WROT"


def test_young_mirror_at_the_2017_threads_low_address(make_heap):
    heap = make_heap("shm-mremap", "young-mirror", mirrors=("0x100000:r",))
    assert heap.views[1].start == 0x100000
    assert any("MREMAP_MAYMOVE|MREMAP_FIXED, 0x100000)" in line for line in heap.trace.lines)


def test_write_through_a_read_only_mirror_is_refused(tmp_path):
    program = textwrap.dedent("""
        from miniheap.heap import Heap
        from miniheap.syscalls import ffi
        from tests.conftest import small_config
        heap = Heap(small_config("memfd", "young-mirror"))
        obj = heap.alloc(refs=0, data=16)
        mirror = heap.views[1]
        offset = obj.address - heap.views[0].start
        print("writing", flush=True)
        ffi.cast("char *", mirror.start + offset + 8)[0] = b"X"  # the payload, after the header word
        print("the write went through", flush=True)
    """)
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    assert "writing" in result.stdout, result.stderr
    assert "went through" not in result.stdout
    # Under AddressSanitizer (tools/sanitize) its handler reports the SEGV and aborts instead.
    by_asan = result.returncode == -6 and "SEGV on unknown address" in result.stderr
    assert result.returncode == -11 or by_asan, \
        f"expected SIGSEGV, got {result.returncode}: {result.stderr[-500:]}"


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_load_barrier_heals_stale_references(make_heap, backend):
    heap = make_heap(backend, "colored")
    holder = heap.alloc(refs=8, data=0)
    targets = [heap.alloc(refs=0, data=64) for _ in range(8)]
    for i, t in enumerate(targets):
        t.data[:8] = i.to_bytes(8, "little")
        holder[i] = t
    garbage = [heap.alloc(refs=0, data=2000) for _ in range(200)]  # sparse regions after it dies
    heap.collect(full=True)  # everything young is promoted
    del garbage
    for t in targets:
        t.release()
    heap.collect(full=True)  # evacuates the sparse old regions; only roots are fixed eagerly
    good = heap.good_color
    stale = [i for i in range(8) if heap.raw_color(holder, i) != good]
    assert stale, "a full collection left no stale (bad-coloured) reference in the heap"
    before = heap.stats
    for i in range(8):
        assert holder[i].data[:8] == i.to_bytes(8, "little")
    after = heap.stats
    assert after.loads_slow - before.loads_slow >= len(stale)
    assert after.loads_healed - before.loads_healed >= len(stale)
    assert all(heap.raw_color(holder, i) == good for i in range(8)), "the fields were not healed"
    loads_slow = after.loads_slow
    for i in range(8):
        holder[i]
    assert heap.stats.loads_slow == loads_slow, "a healed field took the slow path again"
    heap.verify()


@pytest.mark.skipif(shutil.which("java") is None or shutil.which("javac") is None,
                    reason="no JDK: java and javac are not installed")
def test_colored_views_sit_where_jdk17_zgc_puts_its_heap(make_heap, tmp_path):
    if os.environ.get("MINIHEAP_COLOR_BITS", "42") != "42":
        pytest.skip("colour bits moved off ZGC's 42 (MINIHEAP_COLOR_BITS): under AddressSanitizer its "
                    "shadow memory occupies the addresses of ZGC's views")
    source = tmp_path / "Idle.java"
    source.write_text("public class Idle { public static void main(String[] a) throws Exception {"
                      " byte[][] keep = new byte[64][]; for (int i = 0; i < 64; i++) keep[i] = new byte[1 << 16];"
                      " System.out.println(\"ready\"); System.out.flush(); Thread.sleep(30000); } }")
    subprocess.run(["javac", "-d", str(tmp_path), str(source)], check=True, timeout=120)
    java = subprocess.Popen(["java", "-XX:+UseZGC", "-Xmx256m", "-cp", str(tmp_path), "Idle"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = java.stdout.readline()
        if "ready" not in line:
            pytest.skip(f"this JDK did not start with -XX:+UseZGC: {line!r}")
        zgc = sorted({m.start >> 42 << 42 for m in read_maps(java.pid) if "java_heap" in m.path})
    finally:
        java.kill()
        java.wait()
    heap = make_heap("memfd", "colored")
    ours = [v.start for v in heap.views[:3]]
    assert zgc == ours == [0x40000000000, 0x80000000000, 0x100000000000]
