"""``shm-mremap``: a SysV segment, duplicated by mremap(old_size=0): the 2017 thread's sequence.

    shmget(IPC_PRIVATE, size, IPC_CREAT|0600)   a private segment only this user can attach
    shmat(id, NULL, 0)                         the source mapping
    shmctl(id, IPC_RMID, NULL)                 removed at once: its key is gone and it is freed when
                                               the last mapping goes (Linux still lets the same user
                                               shmat it by id; other users get EACCES from 0600)
    mremap(source, 0, len, MREMAP_MAYMOVE|MREMAP_FIXED, addr)   each view
"""
import os

from .. import syscalls as sc
from ..cleanup import Cleanup
from ..errors import SyscallError
from .base import ProbeResult
from .memfd import probe_by_aliasing
from .mremap import MremapBackend

SHM_MODE = 0o600


class ShmMremapBackend(MremapBackend):
    name = "shm-mremap"
    source_call = "shmat"
    how_created = "shmget(IPC_PRIVATE, 0600) + shmat + shmctl(IPC_RMID)"

    def _create_source(self, size):
        self.shmid = self.sys.shmget(sc.IPC_PRIVATE, size, sc.IPC_CREAT | SHM_MODE,
                                     hint=f"see kernel.shmmax ({_read('/proc/sys/kernel/shmmax')}) "
                                          f"and kernel.shmall")
        source = None
        with Cleanup() as cleanup:
            cleanup.run(self._attach)
            source = self._source
            # Remove the id before anything can use it, whatever happened: the segment now lives
            # only as long as its mappings.
            cleanup.run(self.sys.shmctl_rmid, self.shmid)
            if cleanup.first is not None and source is not None:
                # Building failed (IPC_RMID refused): give the mapping back, and try the removal once
                # more, so a refusal that passes leaves no segment behind the failed heap.
                cleanup.run(self.sys.shmdt, source)
                cleanup.run(self.sys.shmctl_rmid, self.shmid)
        return source

    def _attach(self):
        self._source = None
        self._source = self.sys.shmat(self.shmid, 0, 0)

    def _release(self):
        self.sys.shmdt(self.source)

    def physical_bytes(self):
        """The segment's resident size, from the rss column of /proc/sysvipc/shm."""
        if self.closed:
            return 0
        with open("/proc/sysvipc/shm") as f:
            header = f.readline().split()
            for line in f:
                fields = dict(zip(header, line.split()))
                if int(fields["shmid"]) == self.shmid:
                    return int(fields.get("rss", 0))
        return 0

    def maps_name(self):
        return "/SYSV00000000 (deleted)"

    @classmethod
    def probe(cls, syscalls):
        if not os.path.exists("/proc/sysvipc/shm"):
            return ProbeResult(cls.name, False, "this kernel has no SysV IPC (CONFIG_SYSVIPC)",
                               "use the memfd backend")
        return probe_by_aliasing(cls, syscalls)

    @classmethod
    def explain_failure(cls, error):
        if isinstance(error, SyscallError) and "shmget" in error.call:
            return ProbeResult(cls.name, False, str(error), "raise kernel.shmmax / kernel.shmall")
        return ProbeResult(cls.name, False, str(error))


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "?"
