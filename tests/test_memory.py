"""Memory accounting, measured for real: a memfd mapped twice in this process."""

import collections
import ctypes
import mmap
import os

import pytest

from miniheap import memory
from miniheap.memory import MemorySnapshot, ViewUsage, fd_backing_bytes, parse_smaps, snapshot, usage_of
from miniheap.sizes import MIB, format_bytes_human

# Under AddressSanitizer (tools/sanitize) every memset also writes shadow memory, so process-wide
# growth includes ASan's own pages; the per-view figures are unaffected and still checked.
SANITIZED = os.environ.get("MINIHEAP_SANITIZED") == "1"

View = collections.namedtuple("View", "name start length")
PAGE = mmap.PAGESIZE
N = 4096  # pages: 16 MiB, large enough to stand out of the interpreter's own noise
PAGE_SLACK = 2 * PAGE  # smaps is exact to the page; allow for a neighbour's merge
PROCESS_SLACK = 2 * MIB  # process-wide figures also move with Python's own allocations


def address_of(m: mmap.mmap) -> int:
    # The mmap module hides the address; a ctypes view of its buffer reveals it.
    c = ctypes.c_char.from_buffer(m)
    try:
        return ctypes.addressof(c)
    finally:
        del c  # release the buffer export, or the mmap cannot be closed


class TwoViews:
    """One memfd, two MAP_SHARED mappings of it: the smallest multi-mapped heap."""

    def __init__(self, pages: int, flags: int = 0, page: int = PAGE):
        self.page, self.size = page, pages * page
        self.fd = os.memfd_create("miniheap-test", os.MFD_CLOEXEC | flags)
        os.ftruncate(self.fd, self.size)
        self.maps = [mmap.mmap(self.fd, self.size), mmap.mmap(self.fd, self.size)]
        self.views = [View(name, address_of(m), self.size) for name, m in zip(("first", "second"), self.maps)]

    def touch(self, which: int, pages: int) -> None:
        # Writes, not reads: a read fault may map neighbouring cached pages too ("fault-around").
        m = self.maps[which]
        for i in range(pages):
            m[i * self.page] = 1

    def snapshot(self, **kwargs) -> MemorySnapshot:
        return snapshot(self.views, fd_backing_bytes(self.fd), **kwargs)

    def close(self) -> None:
        for m in self.maps:
            m.close()
        os.close(self.fd)


@pytest.fixture
def heap():
    views = TwoViews(N)
    yield views
    views.close()


def assert_near(actual, expected, slack, what):
    assert abs(actual - expected) <= slack, f"{what}: {format_bytes_human(actual)}, expected {format_bytes_human(expected)} +- {format_bytes_human(slack)}"


# ------------------------------------------------------------------ real measurements


def test_untouched_views_cost_nothing(heap):
    s = heap.snapshot()
    assert s.backing == 0
    for v in s.views:
        assert (v.rss, v.pss) == (0, 0)
        assert v.vmas >= 1


def test_a_page_counts_in_a_view_only_once_touched_through_it(heap):
    heap.touch(0, N)
    s = heap.snapshot()
    assert s.backing == N * PAGE
    assert_near(s.view("first").rss, N * PAGE, PAGE_SLACK, "first view RSS")
    assert_near(s.view("first").pss, N * PAGE, PAGE_SLACK, "first view PSS")
    assert s.view("second").rss == 0


def test_rss_counts_a_page_once_per_view_pss_divides_it(heap):
    before = heap.snapshot()
    heap.touch(0, N)
    heap.touch(1, N)
    after = heap.snapshot()
    for v in after.views:
        assert_near(v.rss, N * PAGE, PAGE_SLACK, f"{v.name} RSS")
        assert_near(v.pss, N * PAGE // 2, PAGE_SLACK, f"{v.name} PSS")
        assert v.private == 0  # every page has two mappings: "shared" inside one process
    assert_near(after.views_rss, 2 * N * PAGE, 2 * PAGE_SLACK, "views RSS")
    assert_near(after.views_pss, N * PAGE, 2 * PAGE_SLACK, "views PSS")
    grew = after.delta(before)
    assert grew.is_delta and grew.backing == N * PAGE
    if not SANITIZED:
        assert_near(grew.rss, 2 * N * PAGE, PROCESS_SLACK, "process RSS growth")
        assert_near(grew.pss, N * PAGE, PROCESS_SLACK, "process PSS growth")
        assert_near(grew.uss, 0, PROCESS_SLACK, "process USS growth")  # USS leaves the heap out


def test_uss_counts_the_heap_while_it_has_one_view(heap):
    before = heap.snapshot()
    heap.touch(0, N)
    grew = heap.snapshot().delta(before)
    if not SANITIZED:
        assert_near(grew.uss, N * PAGE, PROCESS_SLACK, "process USS growth")
    assert_near(grew.view("first").private, N * PAGE, PAGE_SLACK, "first view private")


def test_explanation_is_computed_from_the_numbers(heap):
    heap.touch(0, N)
    one_view = heap.snapshot().explain()
    heap.touch(1, N)
    s = heap.snapshot()
    two_views = s.explain()
    assert one_view != two_views
    assert "second has not been touched and cost nothing" in one_view
    assert "touched through one view only" in one_view
    assert s.touched == s.backing == N * PAGE  # the pagemap: each page once, however many views
    excess = s.views_rss - s.touched
    assert f"the 2 views count {format_bytes_human(s.views_rss)} of RSS for {format_bytes_human(s.touched)} of distinct pages, {format_bytes_human(excess)} more" in two_views
    assert "2 views each counted the pages touched through them" in two_views
    assert f"PSS: the views' PSS adds up to {format_bytes_human(s.views_pss)}" in two_views
    assert "outside these views" not in two_views and "never touched" not in two_views
    assert "USS under-reports" in two_views
    assert "Huge pages" not in two_views
    for paragraph in two_views.split("\n\n"):
        assert "\n" not in paragraph


def test_delta_explanation_speaks_of_changes(heap):
    before = heap.snapshot()
    heap.touch(0, N)
    heap.touch(1, N)
    text = heap.snapshot().delta(before).explain()
    assert f"changed by +{format_bytes_human(N * PAGE)}" in text
    assert "the 2 views added" in text


def test_table_is_aligned(heap):
    heap.touch(0, N)
    lines = heap.snapshot().table().splitlines()
    header, rows = lines[0], lines[1:-1]
    assert header.split() == ["RSS", "PSS", "USS/private", "hugetlb", "where"]
    rss_end = header.index("RSS") + len("RSS")
    for row in rows:
        assert row[rss_end - 1] != " " and row[rss_end] == " "  # right-aligned under the header
    assert any(row.strip().startswith("view first") for row in rows)
    assert lines[-1].startswith("backing (real size): 16 MiB    touched through the views: 16 MiB")


def test_quick_is_this_process_rss():
    full = memory.snapshot([], 0).rss
    assert abs(memory.quick() - full) < 8 * MIB


def test_hugetlb_pages_are_not_in_rss_or_pss():
    free = _meminfo().get("HugePages_Free", 0)
    if free < 2:
        nr = open("/proc/sys/vm/nr_hugepages").read().strip()
        pytest.skip(f"no huge pages reserved: vm.nr_hugepages={nr}" if nr == "0" else f"only {free} huge pages free (vm.nr_hugepages={nr}); this test needs 2")
    huge = _meminfo()["Hugepagesize"] * 1024
    heap = TwoViews(2, os.MFD_HUGETLB, page=huge)
    try:
        empty = heap.snapshot(hugetlb_expected=True)
        assert "none are mapped" in empty.explain()
        heap.touch(0, 2)
        heap.touch(1, 2)
        s = heap.snapshot(hugetlb_expected=True)
        assert s.backing == 2 * huge
        for v in s.views:
            assert (v.rss, v.pss) == (0, 0)
            assert v.hugetlb == 2 * huge
        assert s.delta(empty).hugetlb == 4 * huge  # HugetlbPages counts once per mapping too
        text = s.explain()
        assert "neither RSS nor PSS" in text and f"{format_bytes_human(4 * huge)} across the views" in text
    finally:
        heap.close()


def _meminfo() -> dict:
    with open("/proc/meminfo") as f:
        return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in f)}


# ------------------------------------------------------------------ smaps arithmetic


SMAPS = """\
7f0000000000-7f0000004000 rw-s 00000000 00:01 42                         /memfd:heap (deleted)
Size:                 16 kB
Rss:                  16 kB
Pss:                   8 kB
Private_Clean:         0 kB
Private_Dirty:         4 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
VmFlags: rd wr sh mr mw me ms sd
7f0000004000-7f0000008000 rw-s 00004000 00:01 42                         /memfd:heap (deleted)
Rss:                   8 kB
Pss:                   8 kB
Shared_Hugetlb:     2048 kB
VmFlags: rd wr sh mr mw me ms sd
7f0000008000-7f000000c000 rw-p 00000000 00:00 0
Rss:                   4 kB
Pss:                   4 kB
"""


def test_a_view_split_in_several_vmas_is_summed():
    vmas = parse_smaps(SMAPS)
    assert [v.start for v in vmas] == [0x7F0000000000, 0x7F0000004000, 0x7F0000008000]
    u = usage_of(View("heap", 0x7F0000000000, 0x8000), vmas)
    assert (u.rss, u.pss, u.private, u.hugetlb, u.vmas, u.partial) == (24 * 1024, 16 * 1024, 4 * 1024, 2048 * 1024, 2, False)


def test_a_vma_crossing_the_view_edge_is_prorated_and_flagged():
    u = usage_of(View("half", 0x7F0000002000, 0x2000), parse_smaps(SMAPS))
    assert (u.rss, u.partial, u.vmas) == (8 * 1024, True, 1)
    s = MemorySnapshot(pid=1, time=0, rss=0, pss=0, uss=0, swap=0, hugetlb=0, backing=8192, views=(u,))
    assert "its share was estimated" in s.explain()


def _synthetic(**kw):
    base = dict(pid=1, time=0.0, rss=200 * MIB, pss=100 * MIB, uss=40 * MIB, swap=0, hugetlb=0, backing=64 * MIB, views=())
    base.update(kw)
    return MemorySnapshot(**base)


def test_swap_paragraph():
    views = (ViewUsage("heap", 0x1000, 64 * MIB, rss=60 * MIB, pss=60 * MIB, private=60 * MIB, swap=4 * MIB),)
    assert "Swap: 8 MiB of the process is swapped out (4 MiB of it from the heap's views)" in _synthetic(views=views, swap=8 * MIB).explain()


def test_view_lookup_names_the_choices(heap):
    with pytest.raises(KeyError, match="first, second"):
        heap.snapshot().view("third")


def test_sysv_backing_bytes_unknown_segment():
    with pytest.raises(LookupError, match="no System V segment with shmid -5"):
        memory.sysv_backing_bytes(-5)


def test_sysv_backing_bytes_is_the_rss_column():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    libc.shmat.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
    libc.shmdt.argtypes = (ctypes.c_void_p,)
    IPC_PRIVATE, IPC_CREAT, IPC_RMID = 0, 0o1000, 0
    shmid = libc.shmget(IPC_PRIVATE, ctypes.c_size_t(64 * PAGE), IPC_CREAT | 0o600)
    if shmid < 0:
        pytest.skip(f"shmget failed: {os.strerror(ctypes.get_errno())}")
    address = libc.shmat(shmid, None, 0)
    try:
        assert memory.sysv_backing_bytes(shmid) == 0
        ctypes.memset(address, 1, 16 * PAGE)
        assert memory.sysv_backing_bytes(shmid) == 16 * PAGE
    finally:
        libc.shmdt(ctypes.c_void_p(address))
        libc.shmctl(shmid, IPC_RMID, None)
