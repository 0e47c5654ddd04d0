"""Faults: a failed mmap/mremap half-way through building a heap, huge pages running out as the heap
grows, and many create/collect/close cycles: errors are clear and nothing is left behind."""
import errno
import os

import psutil
import pytest

from miniheap import CommitError, HeapExhaustedError, hugepages
from miniheap.backends import BACKENDS
from miniheap.heap import Heap
from miniheap.syscalls import Syscalls

from .conftest import LAYOUTS, Resources, require_backend, small_config

VIEW_CALL = {"shm-mremap": "mremap", "anon-mremap": "mremap", "memfd": "mmap", "memfd-hugetlb": "mmap"}


def count_calls(backend, mapping, name):
    calls = Syscalls()
    Heap(small_config(backend, mapping), syscalls=calls).close()
    return sum(1 for line in calls.trace.lines if line.startswith(name + "("))


@pytest.mark.parametrize("mapping", LAYOUTS)
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_failed_call_while_building_views_leaves_nothing_mapped(backend, mapping, tmp_path):
    require_backend(backend)
    log = f"gc:file={tmp_path / 'gc.log'}"  # a log file is opened first: it must be closed too
    for name in sorted({VIEW_CALL[backend], "mmap"}):
        total = count_calls(backend, mapping, name)
        assert total >= 1
        for nth in range(1, total + 1):
            before = Resources()
            calls = Syscalls()
            calls.fail_on(name, errno.ENOMEM, nth)
            with pytest.raises(Exception) as e:
                Heap(small_config(backend, mapping, gc_log=log), syscalls=calls)
            assert "ENOMEM" in str(e.value) or "Cannot allocate" in str(e.value), e.value
            leaks = Resources().leaks_since(before, huge=backend == "memfd-hugetlb")
            assert leaks == [], f"{name} #{nth} of {total} failed and left: {leaks}"


@pytest.mark.skipif(os.geteuid() != 0, reason="resizing vm.nr_hugepages needs root")
def test_huge_pages_running_out_as_the_heap_grows_is_an_error_not_sigbus():
    require_backend("memfd-hugetlb")
    config = small_config("memfd-hugetlb", heap_size="64M", young_size="8M")
    saved = hugepages.total_pages()
    in_use = saved - hugepages.meminfo()["HugePages_Free"]
    young_pages = config.young_size // hugepages.HUGE_PAGE_SIZE
    try:
        hugepages.set_pool(in_use + young_pages + 3)  # the young generation and 3 old regions
        before = Resources()
        with Heap(config) as heap:
            keep = heap.alloc(refs=4096)
            with pytest.raises((CommitError, HeapExhaustedError)) as e:
                for i in range(100_000):
                    keep[i % 4096] = heap.alloc(refs=0, data=60_000)
            assert "vm.nr_hugepages" in str(e.value) or "huge page" in str(e.value), e.value
            heap.verify()
            keep.release()
            heap.collect(full=True)
            again = heap.alloc(refs=0, data=1000)  # still usable
            again.data[:3] = b"yes"
            heap.verify()
        assert Resources().leaks_since(before) == []
    finally:
        hugepages.set_pool(saved)


CYCLES = int(os.environ.get("MINIHEAP_CYCLES", "1000"))


@pytest.mark.parametrize("mapping", LAYOUTS)
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_many_create_collect_close_cycles_leave_nothing_behind(backend, mapping):
    require_backend(backend)
    process = psutil.Process()

    def cycle():
        with Heap(small_config(backend, mapping)) as heap:
            a = heap.alloc(refs=2, data=64)
            a[0] = heap.alloc(refs=0, data=8)
            heap.collect()
            heap.collect(full=True)

    for _ in range(20):  # warm up: imports, caches, the allocator's arenas
        cycle()
    before, rss = Resources(), process.memory_info().rss
    for _ in range(CYCLES):
        cycle()
    assert Resources().leaks_since(before, huge=backend == "memfd-hugetlb") == []
    if os.environ.get("MINIHEAP_SANITIZED") == "1":
        return  # AddressSanitizer's quarantine holds freed memory back on purpose: RSS grows
    growth = process.memory_info().rss - rss
    assert growth < 4 << 20, f"RSS grew by {growth} bytes over {CYCLES} cycles"
