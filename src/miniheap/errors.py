"""The exceptions miniheap raises. Every message says what was wrong, what is allowed and how to fix it."""


class MiniheapError(Exception):
    """Base class of miniheap's own errors."""


class SyscallError(OSError):
    """A system call failed. ``call`` is its strace-format line, so the failure reads like strace output."""

    def __init__(self, errno_, call, hint=""):
        import os

        self.call = call
        self.hint = hint
        name = _errno_name(errno_)
        text = f"{call} = -1 {name} ({os.strerror(errno_)})"
        if hint:
            text += f": {hint}"
        super().__init__(errno_, text)

    def __str__(self):
        return self.strerror


def _errno_name(errno_):
    import errno

    return errno.errorcode.get(errno_, str(errno_))


class BackendUnavailableError(MiniheapError):
    """The chosen backend cannot work on this kernel or machine (the message says why and how to fix it)."""


class ReservationError(MiniheapError):
    """The address-space reservation could not be made or a range asked of it is wrong."""


class CommitError(MiniheapError, MemoryError):
    """Physical memory could not be committed (for huge pages: too few free in the pool)."""


class HeapExhaustedError(MiniheapError, MemoryError):
    """Even a full collection could not make room for an allocation. The heap stays usable."""


class HeapClosedError(MiniheapError):
    """The heap was closed; its objects and references can no longer be used."""


class ReleasedRefError(MiniheapError):
    """A Ref was used after release() (or after its ``with`` block ended)."""


class ForeignRefError(MiniheapError, ValueError):
    """A Ref of one heap was given to another heap."""


class HeapCorruptionError(MiniheapError):
    """heap.verify() found a broken invariant (a bug in the collector, never in the caller)."""


class ForkedHeapError(MiniheapError):
    """A heap was used in a child process after fork(); its memory belongs to the parent."""
