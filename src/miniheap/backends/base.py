"""What every backend does: create a backing, map views of it, commit and uncommit ranges, close.

A *backing* is the physical memory of the heap: a memfd, a SysV segment or a shared anonymous mapping.
A *view* is one mapping of a range of that backing at a fixed address inside a reservation. Several
views of the same range alias: a write through one is read through the others, with no copy.
"""
import abc
import os

from ..errors import CommitError, ReservationError, SyscallError
from ..reservation import PAGE_SIZE


class View:
    """One mapping of ``[offset, offset + length)`` of the backing at ``start``."""

    __slots__ = ("name", "start", "length", "offset", "writable", "backend")

    def __init__(self, name, start, length, offset, writable, backend):
        self.name, self.start, self.length = name, start, length
        self.offset, self.writable, self.backend = offset, writable, backend

    @property
    def end(self):
        return self.start + self.length

    @property
    def protection(self):
        return "rw" if self.writable else "r"

    def __repr__(self):
        return (f"<View {self.name} [{self.start:#x}, {self.end:#x}) {self.protection} "
                f"{self.backend} +{self.offset:#x}>")


class ProbeResult:
    """Whether a backend works here, why not, and how to fix it."""

    __slots__ = ("name", "works", "why", "fix")

    def __init__(self, name, works, why, fix=""):
        self.name, self.works, self.why, self.fix = name, works, why, fix


class Backend(abc.ABC):
    name = ""
    #: sizes, offsets and view addresses must be multiples of this
    granule = PAGE_SIZE
    #: how views are made, for documentation and the probe table
    how_created = ""
    how_viewed = ""

    def __init__(self, syscalls, size):
        self.sys = syscalls
        self.closed = False
        self._check_size(size)
        self.size = size
        self.views = []
        self._create(size)

    # -- to implement ------------------------------------------------------------------------
    @abc.abstractmethod
    def _create(self, size):
        """Make the backing (and undo anything half-made if a call fails)."""

    @abc.abstractmethod
    def _map(self, addr, offset, length, writable):
        """Map the range at addr (inside a reservation), replacing the PROT_NONE there."""

    @abc.abstractmethod
    def _commit(self, offset, length):
        """Get physical pages for the range now, or raise."""

    @abc.abstractmethod
    def _uncommit(self, offset, length):
        """Give the range's physical pages back; the views stay mapped."""

    @abc.abstractmethod
    def _release(self):
        """Free the backing itself (fd, segment, source mapping)."""

    @abc.abstractmethod
    def physical_bytes(self):
        """Bytes of physical memory the backing holds now (its own size on the "disk")."""

    @abc.abstractmethod
    def maps_name(self):
        """How the backing's mappings are named in /proc/self/maps."""

    @classmethod
    @abc.abstractmethod
    def probe(cls, syscalls):
        """A :class:`ProbeResult` saying whether this backend works on this machine."""

    @classmethod
    def explain_failure(cls, error):
        """Turn the exception a probe met into a result that says why (subclasses add the fix)."""
        return ProbeResult(cls.name, False, str(error))

    # -- the interface ---------------------------------------------------------------------------
    def map_view(self, reservation, addr, offset, length, writable=True, name="view"):
        """Map ``[offset, offset+length)`` of the backing at ``addr``, which must lie in ``reservation``."""
        self._check_open()
        self._check_range("view", offset, length)
        if addr % self.granule:
            raise ReservationError(f"{self.name}: view address {addr:#x} must be aligned to "
                                   f"{self.granule:#x} bytes")
        reservation.check_range(addr, length)
        self._map(addr, offset, length, writable)
        reservation.note_mapped(addr, length)
        view = View(name, addr, length, offset, writable, self.name)
        self.views.append(view)
        return view

    def own_views(self):
        """Mappings the backing keeps for itself, outside any reservation (the mremap source)."""
        return []

    def commit(self, offset, length):
        self._check_open()
        self._check_range("commit", offset, length)
        self._commit(offset, length)

    def uncommit(self, offset, length):
        self._check_open()
        self._check_range("uncommit", offset, length)
        self._uncommit(offset, length)

    def close(self):
        """Free the backing. The views must have been unmapped (their reservations closed) first."""
        if self.closed:
            return
        self.closed = True
        self.views.clear()
        self._release()

    # -- checks ----------------------------------------------------------------------------------
    def _check_open(self):
        if self.closed:
            raise ReservationError(f"the {self.name} backing is closed")

    def _check_size(self, size):
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ValueError(f"{self.name}: backing size must be a positive number of bytes, not {size!r}")
        if size % self.granule:
            raise ValueError(f"{self.name}: backing size {size} is not a multiple of {self.granule} bytes "
                             f"({_granule_text(self.granule)}); round it up to "
                             f"{-(-size // self.granule) * self.granule}")

    def _check_range(self, what, offset, length):
        if offset < 0 or length <= 0 or offset % self.granule or length % self.granule:
            raise ValueError(f"{self.name}: {what} range offset={offset} length={length} must be positive "
                             f"multiples of {self.granule} bytes ({_granule_text(self.granule)})")
        if offset + length > self.size:
            raise ValueError(f"{self.name}: {what} range [{offset}, {offset + length}) exceeds the backing "
                             f"size {self.size}")

    def __repr__(self):
        return f"<{type(self).__name__} {self.size} bytes{' closed' if self.closed else ''}>"


def _granule_text(granule):
    return "the huge-page size, 2 MiB" if granule == 2 << 20 else "the page size"


def commit_error(backend, offset, length, err, advice=""):
    """A CommitError that reads like the failed call plus what to do."""
    text = f"{backend.name}: cannot commit [{offset}, {offset + length}) of the heap: {err}"
    if advice:
        text += f"; {advice}"
    return CommitError(text)


def fstat_bytes(fd):
    return os.fstat(fd).st_blocks * 512


__all__ = ["Backend", "View", "ProbeResult", "commit_error", "fstat_bytes", "SyscallError"]
