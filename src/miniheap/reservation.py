"""Address-space reservation: a PROT_NONE range that views of the heap are mapped into.

The range is reserved with ``mmap(PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE)``: it costs no
memory and no swap, but no other mapping can land inside it. Backing memory is later mapped over parts
of it with MAP_FIXED, and "unmapping" a part maps PROT_NONE over it again, so the reservation stays
whole until it is closed. This is how HotSpot's ZGC manages its views.
"""
import errno
import resource

from . import syscalls as sc
from .errors import ReservationError, SyscallError

PAGE_SIZE = 4096
RESERVE_FLAGS = sc.MAP_PRIVATE | sc.MAP_ANONYMOUS | sc.MAP_NORESERVE


class Reservation:
    """A reserved range ``[start, start + size)``; ``start`` is aligned to ``alignment``."""

    def __init__(self, syscalls, size, at=None, alignment=PAGE_SIZE, label="heap"):
        _check_size("reservation size", size, alignment)
        self.sys = syscalls
        self.size = size
        self.label = label
        self.alignment = alignment
        self.mapped = {}  # start offset -> length of each range mapped over the reservation
        self.start = self._reserve_at(at) if at is not None else self._reserve_aligned()

    def _reserve_at(self, at):
        if at % self.alignment:
            raise ReservationError(f"cannot reserve the {self.label} at {at:#x}: the address must be "
                                   f"aligned to {self.alignment:#x}; pick a multiple of it")
        flags = RESERVE_FLAGS | sc.MAP_FIXED_NOREPLACE
        try:
            got = self.sys.mmap(at, self.size, sc.PROT_NONE, flags)
        except SyscallError as e:
            if e.errno == errno.ENOMEM and _address_space_limit() is not None:
                raise self._limit_error(e) from e
            raise ReservationError(
                f"cannot reserve {self.size} bytes for the {self.label} at {at:#x}: {e.strerror}; the range "
                f"overlaps an existing mapping (see /proc/self/maps) or exceeds the address space: "
                f"choose another address or leave it to the kernel") from e
        if got != at:  # kernels before 4.17 ignore MAP_FIXED_NOREPLACE and place the range elsewhere
            self.sys.munmap(got, self.size)
            raise ReservationError(f"asked the kernel for {self.label} at {at:#x}, got {got:#x}: the "
                                   f"range is taken; choose another address")
        return got

    def _limit_error(self, e):
        limit = _address_space_limit()
        return ReservationError(
            f"cannot reserve {self.size} bytes of address space for the {self.label}: {e.strerror}; this "
            f"process may map at most {limit} bytes (RLIMIT_AS, ulimit -v), and a reservation counts in "
            f"full although it uses no memory: raise the limit (ulimit -v unlimited) or lower heap_size")

    def _reserve_aligned(self):
        """Reserve size + alignment anywhere, then trim the ends so the start is aligned."""
        length = self.size if self.alignment <= PAGE_SIZE else self.size + self.alignment
        try:
            raw = self.sys.mmap(0, length, sc.PROT_NONE, RESERVE_FLAGS)
        except SyscallError as e:
            if e.errno == errno.ENOMEM and _address_space_limit() is not None:
                raise self._limit_error(e) from e
            raise ReservationError(
                f"cannot reserve {length} bytes of address space for the {self.label}: {e.strerror}; "
                f"the address space is full or too fragmented: lower heap_size") from e
        if self.alignment <= PAGE_SIZE:
            return raw
        start = -(-raw // self.alignment) * self.alignment
        if start > raw:
            self.sys.munmap(raw, start - raw)
        tail = raw + self.size + self.alignment - (start + self.size)
        if tail:
            self.sys.munmap(start + self.size, tail)
        return start

    @property
    def end(self):
        return self.start + self.size

    def contains(self, addr, length):
        return self.start <= addr and addr + length <= self.end

    def check_range(self, addr, length):
        """Raise unless [addr, addr+length) is page aligned, inside, and not already mapped."""
        if self.start is None:
            raise ReservationError(f"the {self.label} reservation is closed")
        _check_size("view length", length, PAGE_SIZE)
        if addr % PAGE_SIZE:
            raise ReservationError(f"view address {addr:#x} is not aligned to the page size {PAGE_SIZE}")
        if not self.contains(addr, length):
            raise ReservationError(
                f"view [{addr:#x}, {addr + length:#x}) lies outside the {self.label} reservation "
                f"[{self.start:#x}, {self.end:#x}); views must be mapped inside it")
        lo = addr - self.start
        for off, n in self.mapped.items():
            if lo < off + n and off < lo + length:
                raise ReservationError(
                    f"view [{addr:#x}, {addr + length:#x}) overlaps a view already mapped at "
                    f"[{self.start + off:#x}, {self.start + off + n:#x}); release that one first")

    def note_mapped(self, addr, length):
        self.mapped[addr - self.start] = length

    def release(self, addr, length):
        """Give a mapped range back: PROT_NONE over it, so the reservation keeps the range."""
        self.sys.mmap(addr, length, sc.PROT_NONE, RESERVE_FLAGS | sc.MAP_FIXED)
        self.mapped.pop(addr - self.start, None)

    def close(self):
        """Unmap the whole range, views included. Safe to call twice."""
        if self.start is None:
            return
        start, self.start = self.start, None
        self.mapped.clear()
        self.sys.munmap(start, self.size)

    def __repr__(self):
        where = "closed" if self.start is None else f"[{self.start:#x}, {self.end:#x})"
        return f"<Reservation {self.label} {where}>"


def _check_size(what, size, alignment):
    if not isinstance(size, int) or isinstance(size, bool):
        raise ReservationError(f"{what} must be an integer number of bytes, not {size!r}")
    if size <= 0:
        raise ReservationError(f"{what} must be positive, not {size}")
    if size % alignment:
        raise ReservationError(f"{what} {size} is not a multiple of {alignment} bytes; round it up to "
                               f"{-(-size // alignment) * alignment}")


def _address_space_limit():
    """The soft RLIMIT_AS in bytes, or None when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft
