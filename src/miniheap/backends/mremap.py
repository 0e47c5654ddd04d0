"""What the two mremap backends share: views made by ``mremap(source, 0, len, MAYMOVE|FIXED, addr)``.

With ``old_size == 0`` on a *shared* mapping, mremap does not move anything: it creates a second
mapping of the same pages at the new address. DOSEMU relied on it; the JVM team that became ZGC found
it in 2017 and asked for it to work on hugetlb mappings too (it does not: EINVAL, and on private
mappings it has failed with EINVAL since Linux 4.14). The first mapping (the *source*) stays for the
life of the backing: every view is duplicated from it, and commit and uncommit act through it.
"""
import abc

from .. import syscalls as sc
from ..errors import SyscallError
from .base import Backend, View, commit_error

DUPLICATE = sc.MREMAP_MAYMOVE | sc.MREMAP_FIXED


class MremapBackend(Backend):
    how_viewed = "mremap(source, 0, len, MREMAP_MAYMOVE|MREMAP_FIXED, addr)"

    @abc.abstractmethod
    def _create_source(self, size):
        """Make the first, shared mapping of the backing; return its address."""

    #: how the source mapping is made, for its label
    source_call = ""

    def _create(self, size):
        self.source = self._create_source(size)

    def own_views(self):
        return [View(f"source ({self.source_call})", self.source, self.size, 0, True, self.name)]

    def _map(self, addr, offset, length, writable):
        self.sys.mremap(self.source + offset, 0, length, DUPLICATE, addr,
                        hint="mremap(old_size=0) duplicates only shared mappings")
        if not writable:
            # The duplicate inherits the source's protection; a read-only view drops the write bit.
            self.sys.mprotect(addr, length, sc.PROT_READ)

    def _commit(self, offset, length):
        # Fault the pages in through the source: the segment has them now, not at first touch.
        try:
            self.sys.madvise(self.source + offset, length, sc.MADV_POPULATE_WRITE,
                             hint="MADV_POPULATE_WRITE needs Linux 5.14 or later")
        except SyscallError as e:
            raise commit_error(self, offset, length, e) from e

    def _uncommit(self, offset, length):
        # MADV_REMOVE frees the shared pages themselves (MADV_DONTNEED would only drop this mapping's
        # page-table entries and leave the memory in the segment).
        self.sys.madvise(self.source + offset, length, sc.MADV_REMOVE)

