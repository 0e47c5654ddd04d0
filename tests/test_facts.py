"""Facts the lesson states, pinned: wrong ones the issue found must not come back, right ones are checked
on this machine's kernel (and the JDK facts in test_compare_jvm.py against real JDKs)."""
import errno
import glob
import mmap
import os
import re
import resource

import pytest

from miniheap import hugepages
from miniheap.sizes import GIB, MIB, parse_size

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LORE = "https://lore.kernel.org/lkml/1499357846-7481-1-git-send-email-mike.kravetz@oracle.com/"


def teaching_files():
    """docs/, README.md, examples/ and the code's strings and docstrings (the Python sources)."""
    patterns = ["docs/*.md", "README.md", "examples/*.py", "examples/configs/*.toml", "src/miniheap/**/*.py",
                "src/miniheap/java/*.java"]
    return sorted({p for pattern in patterns for p in glob.glob(os.path.join(ROOT, pattern), recursive=True)})


def read(path):
    with open(path) as f:
        return f.read()


WRONG = [
    (r"JDK 11\s*(to|-|–)\s*(17|20)\b", "multi-mapped ZGC is JDK 11 to 23 (default until JDK 23, JEP 474; "
                                        "removed in JDK 24, JEP 490)"),
    (r"shared/reference", f"the 2017 thread is public: {LORE}"),
    (r"(cap|limit)\w*[^.]{0,80}\b4 ?TiB|\b4 ?TiB[^.]{0,40}\b(cap|limit)", "JEP 439 names a 16 TB limit"),
    (r"colour bits are bits 42, 43 and 44", "the colour bits depend on the heap: 44-46 at -Xmx1t"),
    (r"but `?mmap`? fails with `?ENOMEM", "miniheap's empty pool fails at fallocate with ENOSPC "
                                          "(a reserving mmap fails with ENOMEM: say which)"),
    (r"\(42, 43, 44\)", "the colour bits follow color_bits: never hard-code them in output"),
]


@pytest.mark.parametrize("pattern, truth", WRONG, ids=[w[0][:30] for w in WRONG])
def test_no_wrong_fact_is_taught(pattern, truth):
    hits = []
    for path in teaching_files():
        text = " ".join(read(path).replace("#", " ").split())  # sentences run across lines and comments
        for m in re.finditer(pattern, text):
            hits.append(f"{os.path.relpath(path, ROOT)}: ...{text[max(0, m.start() - 60):m.end() + 20]}...")
    assert not hits, f"{truth}:\n" + "\n".join(hits)


def test_the_right_facts_are_taught():
    docs = "\n".join(read(p) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
    for fact in ("JEP 439", "JEP 474", "JEP 490", "16 TB", "JDK 11 to 23", LORE, "ENOSPC", "TLB",
                 "44, 45\nand 46 at `-Xmx1t`", "Address Space Size: 4096M x 3"):
        assert fact in docs, fact


def test_huge_page_advice_is_the_same_everywhere():
    """The probe, a failed commit, the configs and the docs all count a whole run's pages: heap / 2 MiB."""
    statements = []
    for path in teaching_files():
        text = " ".join(read(path).replace("#", " ").split())
        for size, pages in re.findall(r"[Aa] heap of (\d+[MG]) needs (\d+) huge pages", text):
            statements.append((path, size, int(pages)))
        for pages, size in re.findall(r"(\d+) pages of 2 MiB: what a (\d+[MG]) heap needs", text):
            statements.append((path, size, int(pages)))
    assert len(statements) >= 3, statements
    for path, size, pages in statements:
        assert pages == hugepages.pages_for(parse_size(size)), (path, size, pages)
    assert "a heap of 64M needs 32 huge pages of 2 MiB over the whole run" in hugepages.shortage_advice(64 * MIB)
    # A heap that already holds some pages needs only the rest: the sysctl target counts both.
    advice = hugepages.shortage_advice(64 * MIB, held_bytes=16 * MIB)
    used = hugepages.total_pages() - hugepages.free_pages()
    assert f"sysctl vm.nr_hugepages={max(used + 24, hugepages.total_pages())}" in advice, advice
    hugetlb_config = read(os.path.join(ROOT, "examples", "configs", "memfd-hugetlb.toml"))
    assert "sysctl vm.nr_hugepages=32" in hugetlb_config and 'heap_size = "64M"' in hugetlb_config


def test_tlb_reach_with_4k_and_2m_pages():
    assert hugepages.tlb_reach(1536, 4096) == 6 * MIB  # what docs/multimapping.md says
    assert hugepages.tlb_reach(1536, 2 * MIB) == 3 * GIB
    assert hugepages.tlb_reach(192, 2 * MIB) // hugepages.tlb_reach(192, 4096) == 512


def test_tlb_entries_come_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nTLB size\t: 3072 4K pages\n")
    assert hugepages.tlb_entries(str(info)) == 3072
    info.write_text("processor\t: 0\n")
    assert hugepages.tlb_entries(str(info)) is None


def _require_hugetlbfs():
    if not os.path.exists(hugepages.NR_HUGEPAGES):
        pytest.skip("this kernel has no hugetlbfs (no /proc/sys/vm/nr_hugepages)")


def test_an_empty_pool_fails_at_fallocate_with_enospc_and_a_reserving_mmap_with_enomem():
    _require_hugetlbfs()
    pages = hugepages.free_pages() + 1  # one more than the pool can give
    fd = os.memfd_create("miniheap-facts", os.MFD_CLOEXEC | os.MFD_HUGETLB)
    try:
        os.ftruncate(fd, pages * hugepages.HUGE_PAGE_SIZE)  # succeeds: a size, no pages
        with pytest.raises(OSError) as mapped:
            mmap.mmap(fd, pages * hugepages.HUGE_PAGE_SIZE)  # reserves the whole mapping: refused
        assert mapped.value.errno == errno.ENOMEM
        with pytest.raises(OSError) as committed:
            os.posix_fallocate(fd, 0, pages * hugepages.HUGE_PAGE_SIZE)  # takes the pages: runs out
        assert committed.value.errno == errno.ENOSPC
    finally:
        os.close(fd)


def _faults_touching(m, size, step=4096):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for offset in range(0, size, step):
        m[offset] = 1
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_first_touch_faults_once_per_4k_page():
    size = 8 * MIB
    fd = os.memfd_create("miniheap-facts", os.MFD_CLOEXEC)
    os.ftruncate(fd, size)
    m = mmap.mmap(fd, size)
    try:
        assert _faults_touching(m, size) >= 0.9 * size // 4096  # about 2048
    finally:
        m.close()
        os.close(fd)


def test_first_touch_faults_once_per_2m_huge_page():
    _require_hugetlbfs()
    if hugepages.free_pages() < 4:
        pytest.skip(f"needs 4 free huge pages: {hugepages.free_pages()} free "
                    f"(vm.nr_hugepages={hugepages.total_pages()})")
    size = 4 * hugepages.HUGE_PAGE_SIZE
    fd = os.memfd_create("miniheap-facts", os.MFD_CLOEXEC | os.MFD_HUGETLB)
    os.ftruncate(fd, size)
    m = mmap.mmap(fd, size)
    try:
        assert _faults_touching(m, size) <= 4 + 4  # one per 2 MiB page (and a few of Python's own)
    finally:
        m.close()
        os.close(fd)
