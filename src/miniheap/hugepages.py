"""The huge-page pool: how many 2 MiB pages are reserved, free, and what to type to get more."""
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


def shortage_advice(needed_bytes):
    """A sentence saying how many huge pages are free, how many are needed, and the sysctl to fix it."""
    need = pages_for(needed_bytes)
    free = free_pages()
    total = total_pages()
    target = total + max(0, need - free)
    return (f"{free} huge pages of 2 MiB are free (vm.nr_hugepages={total}), {need} are needed; "
            f"as root run: sysctl vm.nr_hugepages={target}")


def set_pool(pages):
    """Resize the pool (root only). Returns the size the kernel actually gave."""
    with open(NR_HUGEPAGES, "w") as f:
        f.write(str(pages))
    return total_pages()
