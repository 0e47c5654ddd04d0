"""A fixture that sets the huge-page pool to a given number of free pages and restores it (root only)."""
import os

import pytest

from miniheap import hugepages


@pytest.fixture
def small_pool():
    """small_pool(free): vm.nr_hugepages set so that `free` pages are free; restored afterwards."""
    path = hugepages.NR_HUGEPAGES
    if not os.path.exists(path):
        pytest.skip("no hugetlbfs: /proc/sys/vm/nr_hugepages is missing")
    if not os.access(path, os.W_OK):
        pytest.skip("resizing the huge-page pool needs root (vm.nr_hugepages is not writable)")
    saved = hugepages.total_pages()

    def set_free(free):
        used = hugepages.total_pages() - hugepages.free_pages()
        got = hugepages.set_pool(used + free)
        if got != used + free:
            pytest.skip(f"the kernel gave {got} huge pages, not {used + free} (memory too fragmented)")

    yield set_free
    hugepages.set_pool(saved)
