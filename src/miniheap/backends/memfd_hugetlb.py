"""``memfd-hugetlb``: a memfd of 2 MiB huge pages, the answer to the 2017 linux-mm thread.

    memfd_create("miniheap", MFD_CLOEXEC|MFD_HUGETLB|MFD_HUGE_2MB)
    ftruncate(fd, size)
    mmap(addr, len, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED|MAP_NORESERVE, fd, off)   each view
    fallocate(fd, 0, off, len)       commit: take the huge pages from the pool now

Views are mapped with MAP_NORESERVE so that mapping three views of a 1 GiB heap reserves nothing;
commit reserves instead, with fallocate, so that a shortage is an ENOSPC at commit time and never a
SIGBUS when the collector first touches a page. A failed fallocate keeps the pages it got before
failing, so commit punches them out again before it raises: nothing leaks from the pool.
"""
import os

from .. import hugepages
from .. import syscalls as sc
from ..errors import SyscallError
from .base import ProbeResult, commit_error
from .memfd import MemfdBackend, probe_by_aliasing


class MemfdHugetlbBackend(MemfdBackend):
    name = "memfd-hugetlb"
    granule = hugepages.HUGE_PAGE_SIZE
    how_created = 'memfd_create("miniheap", MFD_CLOEXEC|MFD_HUGETLB|MFD_HUGE_2MB) + ftruncate'
    how_viewed = "mmap(MAP_SHARED|MAP_FIXED|MAP_NORESERVE, fd, offset)"
    memfd_flags = sc.MFD_CLOEXEC | sc.MFD_HUGETLB | sc.MFD_HUGE_2MB
    map_extra = sc.MAP_NORESERVE

    def _create_hint(self):
        return "memfd_create(MFD_HUGETLB) needs Linux 4.14 or later with CONFIG_HUGETLBFS"

    def _commit(self, offset, length):
        try:
            self.sys.fallocate(self.fd, 0, offset, length)
        except SyscallError as e:
            self._uncommit(offset, length)
            raise commit_error(self, offset, length, e,
                               hugepages.shortage_advice(self.size, self.physical_bytes())) from e

    def maps_name(self):
        return "/memfd:miniheap (deleted)"

    @classmethod
    def probe(cls, syscalls):
        if not os.path.exists(hugepages.NR_HUGEPAGES):
            return ProbeResult(cls.name, False, "this kernel has no hugetlbfs (no /proc/sys/vm/nr_hugepages)",
                               "use a kernel built with CONFIG_HUGETLBFS, or the memfd backend")
        return probe_by_aliasing(cls, syscalls)

    @classmethod
    def explain_failure(cls, error):
        if isinstance(error.__cause__, SyscallError) or "fallocate" in str(error):
            return ProbeResult(
                cls.name, False,
                f"no huge page to commit: {hugepages.free_pages()} free of vm.nr_hugepages="
                f"{hugepages.total_pages()}",
                hugepages.shortage_advice(64 << 20))  # the default heap_size
        return ProbeResult(cls.name, False, str(error))
