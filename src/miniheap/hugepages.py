"""The huge-page pool: how many 2 MiB pages are reserved, free, what to type to get more, and what they buy.

What they buy: a TLB entry maps one page, so with 2 MiB pages each entry covers 512 times the memory of
a 4 KiB page (fewer TLB misses on a large heap), and a first touch faults once per 2 MiB instead of once
per 4 KiB. What they cost: the pool is reserved by root in advance and is memory nobody else can use.
An empty pool shows where the pages are taken: ``mmap`` of a hugetlb file fails with ENOMEM when it
reserves (the default), ``fallocate`` fails with ENOSPC when the mapping is MAP_NORESERVE (miniheap's
way, as commit is where the heap takes memory).
"""
import re

HUGE_PAGE_SIZE = 2 << 20
NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"


def meminfo():
    """HugePages_* fields of /proc/meminfo as a dict of ints (pages), plus Hugepagesize in bytes."""
    fields = {}
    with open("/proc/meminfo") as f:
        for line in f:
            m = re.match(r"(HugePages_\w+|Hugepagesize):\s+(\d+)", line)
            if m:
                fields[m.group(1)] = int(m.group(2))
    if "Hugepagesize" in fields:
        fields["Hugepagesize"] *= 1024
    return fields


def free_pages():
    """Pages in the pool that nobody has allocated or reserved."""
    info = meminfo()
    return info.get("HugePages_Free", 0) - info.get("HugePages_Rsvd", 0)


def total_pages():
    return meminfo().get("HugePages_Total", 0)


def pages_for(nbytes):
    return -(-nbytes // HUGE_PAGE_SIZE)


def shortage_advice(heap_size, held_bytes=0):
    """The one piece of huge-page advice (the probe, a failed commit, the configs and docs all use it).

    It counts what the whole run needs: a heap of ``heap_size`` may commit all of it before it ends
    (the old generation grows, pretouch commits everything at once), so it needs ``heap_size`` / 2 MiB
    pages in all, of which it already holds ``held_bytes``. The pool must hold those plus what other
    programs use now (total - free).
    """
    from .sizes import format_size

    need, held = pages_for(heap_size), pages_for(held_bytes)
    free, total = free_pages(), total_pages()
    target = (total - free) + (need - held)
    return (f"a heap of {format_size(heap_size)} needs {need} huge pages of 2 MiB over the whole run; "
            f"{f'it holds {held}, ' if held else ''}{free} are free (vm.nr_hugepages={total}): "
            f"as root run sysctl vm.nr_hugepages={max(target, total)}")


def tlb_reach(entries, page_size):
    """Memory a TLB of ``entries`` entries covers without a miss: one page per entry."""
    return entries * page_size


def tlb_entries(cpuinfo="/proc/cpuinfo"):
    """The TLB size this CPU reports ("TLB size: 3072 4K pages" on AMD), or None if it reports none."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                m = re.match(r"TLB size\s*:\s*(\d+)", line)
                if m:
                    return int(m.group(1))
    except OSError:
        pass
    return None


def set_pool(pages):
    """Resize the pool (root only). Returns the size the kernel actually gave."""
    with open(NR_HUGEPAGES, "w") as f:
        f.write(str(pages))
    return total_pages()
