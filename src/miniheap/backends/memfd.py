"""``memfd``: an anonymous, unlinked file; every view is one more mmap of it (what ZGC does).

    memfd_create("miniheap", MFD_CLOEXEC)            the backing, born close-on-exec
    ftruncate(fd, size)                              its size (no memory yet)
    mmap(addr, len, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, fd, off)   each view
    fallocate(fd, 0, off, len)                       commit: allocate the pages
    fallocate(fd, FALLOC_FL_KEEP_SIZE|FALLOC_FL_PUNCH_HOLE, off, len)     uncommit
"""
from .. import syscalls as sc
from ..errors import SyscallError
from .base import Backend, ProbeResult, commit_error, fstat_bytes

MEMFD_NAME = "miniheap"


class MemfdBackend(Backend):
    name = "memfd"
    how_created = 'memfd_create("miniheap", MFD_CLOEXEC) + ftruncate'
    how_viewed = "mmap(MAP_SHARED|MAP_FIXED, fd, offset)"
    memfd_flags = sc.MFD_CLOEXEC
    map_extra = 0

    def _create(self, size):
        self.fd = self.sys.memfd_create(MEMFD_NAME, self.memfd_flags, hint=self._create_hint())
        try:
            self.sys.ftruncate(self.fd, size)
        except BaseException:  # OverflowError for a size past off_t too: the fd must not leak
            self.sys.close(self.fd)
            raise

    def _create_hint(self):
        return "memfd_create needs Linux 3.17 or later"

    def _map(self, addr, offset, length, writable):
        prot = sc.PROT_READ | (sc.PROT_WRITE if writable else 0)
        flags = sc.MAP_SHARED | sc.MAP_FIXED | self.map_extra
        self.sys.mmap(addr, length, prot, flags, self.fd, offset)

    def _commit(self, offset, length):
        try:
            self.sys.fallocate(self.fd, 0, offset, length)
        except SyscallError as e:
            raise commit_error(self, offset, length, e) from e

    def _uncommit(self, offset, length):
        mode = sc.FALLOC_FL_PUNCH_HOLE | sc.FALLOC_FL_KEEP_SIZE
        self.sys.fallocate(self.fd, mode, offset, length)

    def _release(self):
        self.sys.close(self.fd)
        self.fd = -1

    def physical_bytes(self):
        return 0 if self.closed else fstat_bytes(self.fd)

    def maps_name(self):
        return f"/memfd:{MEMFD_NAME} (deleted)"

    @classmethod
    def probe(cls, syscalls):
        return probe_by_aliasing(cls, syscalls)


def probe_by_aliasing(cls, syscalls, size=None):
    """Build the smallest heap the backend allows with two views, write through one, read the other."""
    from ..reservation import Reservation

    size = size or cls.granule
    backend = reservation = None
    try:
        backend = cls(syscalls, size)
        reservation = Reservation(syscalls, 2 * size, alignment=cls.granule, label="probe")
        backend.commit(0, size)
        a = backend.map_view(reservation, reservation.start, 0, size)
        b = backend.map_view(reservation, reservation.start + size, 0, size)
        sc.ffi.cast("uint64_t *", a.start)[0] = 0x5EED
        seen = sc.ffi.cast("uint64_t *", b.start)[0]
        if seen != 0x5EED:
            return ProbeResult(cls.name, False, "a write through one view was not seen through the other")
        return ProbeResult(cls.name, True, f"two views alias ({cls.how_viewed})")
    except Exception as e:  # the probe reports, it does not raise
        return cls.explain_failure(e)
    finally:
        if reservation is not None:
            reservation.close()
        if backend is not None:
            backend.close()
