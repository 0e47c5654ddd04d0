"""The backends, by name. ``open_backend(name, syscalls, size)`` is how the heap gets one."""
from .anon_mremap import AnonMremapBackend
from .base import Backend, ProbeResult, View
from .memfd import MemfdBackend
from .memfd_hugetlb import MemfdHugetlbBackend
from .shm_mremap import ShmMremapBackend

BACKENDS = {cls.name: cls for cls in (ShmMremapBackend, AnonMremapBackend, MemfdBackend,
                                      MemfdHugetlbBackend)}
DEFAULT_BACKEND = "memfd"


def backend_class(name):
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}") from None


def open_backend(name, syscalls, size):
    return backend_class(name)(syscalls, size)


__all__ = ["BACKENDS", "DEFAULT_BACKEND", "Backend", "ProbeResult", "View", "backend_class", "open_backend"]
