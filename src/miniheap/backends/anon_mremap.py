"""``anon-mremap``: a shared anonymous mapping, duplicated by mremap(old_size=0).

    mmap(NULL, size, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)   the source
    mremap(source, 0, len, MREMAP_MAYMOVE|MREMAP_FIXED, addr)                 each view

What the JVM team used in 2017 before memfd_create(MFD_HUGETLB) existed. The kernel backs a shared
anonymous mapping with an unlinked shmem file ("/dev/zero (deleted)" in /proc/self/maps).
"""
import os

from .. import syscalls as sc
from .memfd import probe_by_aliasing
from .mremap import MremapBackend


class AnonMremapBackend(MremapBackend):
    name = "anon-mremap"
    source_call = "mmap"
    how_created = "mmap(MAP_SHARED|MAP_ANONYMOUS)"

    def _create_source(self, size):
        return self.sys.mmap(0, size, sc.PROT_READ | sc.PROT_WRITE, sc.MAP_SHARED | sc.MAP_ANONYMOUS)

    def _release(self):
        self.sys.munmap(self.source, self.size)

    def physical_bytes(self):
        """The shmem file behind the mapping, reached through /proc/self/map_files (root or CAP_SYS_ADMIN
        on older kernels), or its Rss in smaps of the source when that is refused."""
        if self.closed:
            return 0
        path = f"/proc/self/map_files/{self.source:x}-{self.source + self.size:x}"
        try:
            return os.stat(path).st_blocks * 512
        except OSError:
            return -1

    def maps_name(self):
        return "/dev/zero (deleted)"

    @classmethod
    def probe(cls, syscalls):
        return probe_by_aliasing(cls, syscalls)
