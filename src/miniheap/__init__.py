"""miniheap: a miniature JVM-style heap with multi-mapped regions and a copying collector in C."""
from .errors import (BackendUnavailableError, CommitError, ForeignRefError, ForkedHeapError,
                     HeapClosedError, HeapExhaustedError, MiniheapError, ReleasedRefError,
                     ReservationError, SyscallError, HeapCorruptionError)

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError", "CommitError", "ForeignRefError", "ForkedHeapError", "HeapClosedError",
    "HeapExhaustedError", "MiniheapError", "ReleasedRefError", "ReservationError", "SyscallError",
    "HeapCorruptionError",
]


def __getattr__(name):
    # Heap and HeapConfig pull in the C core; import them lazily so `python -m miniheap probe` works
    # on its own and import errors name the missing piece.
    if name in ("Heap", "Ref"):
        from . import heap

        return getattr(heap, name)
    if name == "HeapConfig":
        from .config import HeapConfig

        return HeapConfig
    raise AttributeError(f"module 'miniheap' has no attribute {name!r}")
