"""The one system-call layer: every kernel call of the backends and the reservation goes through here.

Each call is recorded in the format strace prints, so ``heap.trace`` can be read side by side with
``strace -e trace=memory,ipc,...`` of the same run: same calls, same order, same flags. A failed call
raises :class:`~miniheap.errors.SyscallError` whose message is that same line with ``= -1 ERRNO``.

Flags are written in ascending bit order, as strace writes them.
"""
import errno
import os

from . import _sys
from .errors import SyscallError

ffi, lib = _sys.ffi, _sys.lib

MAP_FAILED = 2**64 - 1


def _flag_names(value, names):
    """Render a bit mask as strace does: known bits by name in bit order, leftovers in hex."""
    parts = []
    for bit, name in sorted(names):
        if bit and value & bit == bit:
            parts.append(name)
            value &= ~bit
    if value:
        parts.append(hex(value))
    return "|".join(parts) if parts else "0"


PROT_NAMES = [(lib.PROT_READ, "PROT_READ"), (lib.PROT_WRITE, "PROT_WRITE"), (lib.PROT_EXEC, "PROT_EXEC")]
MAP_NAMES = [
    (lib.MAP_SHARED, "MAP_SHARED"), (lib.MAP_PRIVATE, "MAP_PRIVATE"), (lib.MAP_FIXED, "MAP_FIXED"),
    (lib.MAP_ANONYMOUS, "MAP_ANONYMOUS"), (lib.MAP_NORESERVE, "MAP_NORESERVE"),
    (lib.MAP_POPULATE, "MAP_POPULATE"), (lib.MAP_HUGETLB, "MAP_HUGETLB"),
    (lib.MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"),
]
MREMAP_NAMES = [(lib.MREMAP_MAYMOVE, "MREMAP_MAYMOVE"), (lib.MREMAP_FIXED, "MREMAP_FIXED")]
FALLOC_NAMES = [(lib.FALLOC_FL_KEEP_SIZE, "FALLOC_FL_KEEP_SIZE"),
                (lib.FALLOC_FL_PUNCH_HOLE, "FALLOC_FL_PUNCH_HOLE")]
MADV_NAMES = {lib.MADV_REMOVE: "MADV_REMOVE", lib.MADV_DONTNEED: "MADV_DONTNEED",
              lib.MADV_POPULATE_WRITE: "MADV_POPULATE_WRITE"}
MFD_HUGE_SHIFT = 26


def fmt_prot(prot):
    return "PROT_NONE" if prot == 0 else _flag_names(prot, PROT_NAMES)


def fmt_map_flags(flags):
    return _flag_names(flags, MAP_NAMES)


def fmt_mfd_flags(flags):
    names = [(lib.MFD_CLOEXEC, "MFD_CLOEXEC"), (lib.MFD_HUGETLB, "MFD_HUGETLB")]
    size_log2 = flags >> MFD_HUGE_SHIFT
    text = _flag_names(flags & ((1 << MFD_HUGE_SHIFT) - 1), names)
    if size_log2:
        text += f"|{size_log2}<<MFD_HUGE_SHIFT"
    return text


def fmt_shmflg(flags):
    mode = flags & 0o777
    rest = _flag_names(flags & ~0o777, [(lib.IPC_CREAT, "IPC_CREAT"), (lib.SHM_HUGETLB, "SHM_HUGETLB")])
    return f"{rest}|{mode:#o}".replace("0o", "0") if rest != "0" else f"{mode:#o}".replace("0o", "0")


def fmt_addr(addr):
    return "NULL" if not addr else hex(addr)


class Trace:
    """The strace-format lines of one heap's system calls, in order, bounded.

    A long-running heap commits and uncommits regions for as long as it runs, so the trace keeps the
    first ``limit // 2`` lines (how the heap was built) and the latest ``limit // 2``; ``len(trace)``
    counts every call made, and ``lines`` marks the gap with one line saying how many were dropped.
    """

    def __init__(self, limit=4096):
        from collections import deque

        self.head_limit = limit // 2
        self.head = []
        self.tail = deque(maxlen=limit - self.head_limit)
        self.total = 0

    def record(self, line):
        self.total += 1
        if len(self.head) < self.head_limit:
            self.head.append(line)
        else:
            self.tail.append(line)

    @property
    def dropped(self):
        return self.total - len(self.head) - len(self.tail)

    @property
    def lines(self):
        gap = [f"... {self.dropped} calls not kept (the trace keeps the first {len(self.head)} and the "
               f"latest {len(self.tail)}) ..."] if self.dropped else []
        return self.head + gap + list(self.tail)

    def __iter__(self):
        return iter(self.lines)

    def __len__(self):
        return self.total

    def __str__(self):
        return "\n".join(self.lines)


class Syscalls:
    """Calls the kernel and records each call in a :class:`Trace`.

    ``fail_on(name, errno, nth)`` makes the nth next call of that name fail with errno without
    reaching the kernel, so tests can check that a failure in the middle of building a heap leaves
    nothing behind.
    """

    def __init__(self, trace=None):
        self.trace = trace if trace is not None else Trace()
        self._inject = {}  # call name -> [calls left before the failure, errno]

    def fail_on(self, name, errno_, nth=1):
        self._inject[name] = [nth, errno_]

    def _injected(self, name):
        entry = self._inject.get(name)
        if entry is None:
            return None
        entry[0] -= 1
        if entry[0] > 0:
            return None
        del self._inject[name]
        return entry[1]

    def _call(self, name, text, invoke, failed, render=str, hint=""):
        """Run ``invoke()``, record ``text = result`` and raise :class:`SyscallError` on failure."""
        err = self._injected(name)
        if err is None:
            result = invoke()
            if failed(result):
                err = ffi.errno
        if err is not None:
            self.trace.record(f"{text} = -1 {_errno_name(err)} ({os.strerror(err)})")
            raise SyscallError(err, text, _ERRNO_HINTS.get(err, hint))
        self.trace.record(f"{text} = {render(result)}")
        return result

    # -- memory ----------------------------------------------------------------------------------
    def mmap(self, addr, length, prot, flags, fd=-1, offset=0, hint=""):
        off = f"{offset:#x}" if offset else "0"
        text = f"mmap({fmt_addr(addr)}, {length}, {fmt_prot(prot)}, {fmt_map_flags(flags)}, {fd}, {off})"
        invoke = lambda: _uint(lib.mmap(ffi.cast("void *", addr), length, prot, flags, fd, offset))
        return self._call("mmap", text, invoke, _map_failed, hex, hint)

    def munmap(self, addr, length):
        text = f"munmap({fmt_addr(addr)}, {length})"
        return self._call("munmap", text, lambda: lib.munmap(ffi.cast("void *", addr), length), _nonzero)

    def mprotect(self, addr, length, prot):
        text = f"mprotect({fmt_addr(addr)}, {length}, {fmt_prot(prot)})"
        invoke = lambda: lib.mprotect(ffi.cast("void *", addr), length, prot)
        return self._call("mprotect", text, invoke, _nonzero)

    def mprotect_function(self):
        """The address of libc's mprotect itself, for code that must change protections where Python
        cannot run: the collector's GC thread under verify_views (mh_config.protect). Those calls are
        not in this trace (strace -e mprotect shows them)."""
        return int(ffi.cast("uintptr_t", ffi.addressof(lib, "mprotect")))

    def madvise(self, addr, length, advice, hint=""):
        text = f"madvise({fmt_addr(addr)}, {length}, {MADV_NAMES.get(advice, advice)})"
        invoke = lambda: lib.madvise(ffi.cast("void *", addr), length, advice)
        return self._call("madvise", text, invoke, _nonzero, hint=hint)

    def mremap(self, old, old_size, new_size, flags, new=0, hint=""):
        # strace shows the fifth argument only when MREMAP_FIXED makes the kernel read it.
        target = f", {fmt_addr(new)}" if flags & lib.MREMAP_FIXED else ""
        text = f"mremap({fmt_addr(old)}, {old_size}, {new_size}, {_flag_names(flags, MREMAP_NAMES)}{target})"
        invoke = lambda: _uint(lib.mh_sys_mremap(ffi.cast("void *", old), old_size, new_size, flags,
                                                 ffi.cast("void *", new)))
        return self._call("mremap", text, invoke, _map_failed, hex, hint)

    # -- SysV shared memory ----------------------------------------------------------------------
    def shmget(self, key, size, flags, hint=""):
        key_text = "IPC_PRIVATE" if key == lib.IPC_PRIVATE else hex(key)
        text = f"shmget({key_text}, {size}, {fmt_shmflg(flags)})"
        return self._call("shmget", text, lambda: lib.shmget(key, size, flags), _negative, hint=hint)

    def shmat(self, shmid, addr=0, flags=0):
        text = f"shmat({shmid}, {fmt_addr(addr)}, {flags})"
        invoke = lambda: _uint(lib.shmat(shmid, ffi.cast("void *", addr), flags))
        return self._call("shmat", text, invoke, _map_failed, hex)

    def shmctl_rmid(self, shmid):
        text = f"shmctl({shmid}, IPC_RMID, NULL)"
        return self._call("shmctl", text, lambda: lib.mh_sys_shmctl_rmid(shmid), _nonzero)

    def shmdt(self, addr):
        text = f"shmdt({fmt_addr(addr)})"
        return self._call("shmdt", text, lambda: lib.shmdt(ffi.cast("void *", addr)), _nonzero)

    # -- files -----------------------------------------------------------------------------------
    def memfd_create(self, name, flags, hint=""):
        text = f'memfd_create("{name}", {fmt_mfd_flags(flags)})'
        return self._call("memfd_create", text, lambda: lib.memfd_create(name.encode(), flags),
                          _negative, hint=hint)

    def ftruncate(self, fd, length, hint=""):
        text = f"ftruncate({fd}, {length})"
        return self._call("ftruncate", text, lambda: lib.ftruncate(fd, length), _nonzero, hint=hint)

    def fallocate(self, fd, mode, offset, length, hint=""):
        text = f"fallocate({fd}, {_flag_names(mode, FALLOC_NAMES)}, {offset}, {length})"
        invoke = lambda: lib.fallocate(fd, mode, offset, length)
        return self._call("fallocate", text, invoke, _nonzero, hint=hint)

    def close(self, fd):
        return self._call("close", f"close({fd})", lambda: lib.close(fd), _nonzero)


# Errors whose cause is the same whatever the call: a call-specific hint (e.g. "memfd_create needs Linux
# 3.17") would mislead.
_ERRNO_HINTS = {
    errno.EMFILE: "no file descriptors left in this process (ulimit -n): close files you no longer "
                  "need, close unused heaps, or raise the limit",
    errno.ENFILE: "no file descriptors left on the system (fs.file-max): close files or raise the limit",
}


def _uint(pointer):
    return int(ffi.cast("uintptr_t", pointer))


def _map_failed(result):
    return result == MAP_FAILED


def _nonzero(rc):
    return rc != 0


def _negative(rc):
    return rc < 0


def _errno_name(err):
    import errno

    return errno.errorcode.get(err, str(err))


# Constants re-exported so backends need not import the cffi module.
for _name in dir(lib):
    if _name.isupper():
        globals()[_name] = getattr(lib, _name)
