"""What every benchmark shares: samples and their summaries, results, targets, and finding the pieces
(the C core, the Python façade, the peer programs) that may not be there.

A benchmark module has ``NAME``, ``TITLE`` and ``run(opts) -> Result``. A result holds, per *subject*
(miniheap and each peer), a list of samples per metric, one sample per run; the table shows the median
with the min and max of the runs, and the JSON keeps every sample. Peers are measured in the same
invocation, interleaved run by run with miniheap, so their ratios hold on a noisy machine.
"""
import math
import statistics
import time

GIB = 1 << 30
MIB = 1 << 20


class Unavailable(Exception):
    """A benchmark, or one subject of it, cannot run here; the message says why."""


class BenchFailed(Exception):
    """A benchmark ran and its self-check failed: the numbers would be meaningless."""


# -- summaries --------------------------------------------------------------------------------------

def percentile(values, q):
    """The q-th percentile (0..100) by linear interpolation, as numpy's default."""
    values = sorted(values)
    if not values:
        return math.nan
    k = (len(values) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def summary(samples):
    clean = [s for s in samples if s is not None and not (isinstance(s, float) and math.isnan(s))]
    if not clean:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(clean), "min": min(clean), "max": max(clean), "n": len(clean)}


def pause_figures(pauses_ms):
    """Count, total, median, p95 and max of a list of pause times in milliseconds."""
    if not pauses_ms:
        return {"pauses": 0, "pause_total_ms": 0.0, "pause_median_ms": None, "pause_p95_ms": None,
                "pause_max_ms": None}
    return {"pauses": len(pauses_ms), "pause_total_ms": sum(pauses_ms),
            "pause_median_ms": statistics.median(pauses_ms), "pause_p95_ms": percentile(pauses_ms, 95),
            "pause_max_ms": max(pauses_ms)}


# -- results ----------------------------------------------------------------------------------------

class Metric:
    __slots__ = ("key", "label", "fmt", "better")

    def __init__(self, key, label, fmt="{:.3g}", better=None):
        self.key, self.label, self.fmt, self.better = key, label, fmt, better


class Subject:
    """One column of a benchmark's table: miniheap, or a peer."""

    def __init__(self, name, description=""):
        self.name, self.description = name, description
        self.samples = {}      # metric key -> [sample per run]
        self.unavailable = ""  # reason, when this subject could not run
        self.extra = {}        # anything else worth keeping in the JSON (e.g. one run's pause list)

    def add(self, **figures):
        for key, value in figures.items():
            self.samples.setdefault(key, []).append(value)

    def median(self, key):
        return summary(self.samples.get(key, []))["median"]

    def to_json(self):
        out = {"name": self.name, "description": self.description}
        if self.unavailable:
            out["unavailable"] = self.unavailable
        out["metrics"] = {k: dict(summary(v), samples=v) for k, v in self.samples.items()}
        if self.extra:
            out["extra"] = self.extra
        return out


class Target:
    """A goal from issue #6: ``value <op> limit``, measured on medians."""

    def __init__(self, text, value, limit, op="<=", unit="", note=""):
        self.text, self.value, self.limit, self.op, self.unit, self.note = text, value, limit, op, unit, note

    @property
    def met(self):
        if self.value is None or self.limit is None:
            return None
        return {"<=": self.value <= self.limit, "<": self.value < self.limit,
                ">": self.value > self.limit}.get(self.op, self.value >= self.limit)

    def to_json(self):
        return {"target": self.text, "value": self.value, "op": self.op, "limit": self.limit,
                "unit": self.unit, "met": self.met, "note": self.note}


class Result:
    def __init__(self, name, title, params=None):
        self.name, self.title = name, title
        self.params = dict(params or {})
        self.status = "ok"
        self.reason = ""
        self.subjects = []
        self.metrics = []
        self.targets = []
        self.notes = []
        self.seconds = 0.0

    def subject(self, name, description=""):
        s = Subject(name, description)
        self.subjects.append(s)
        return s

    def find(self, name):
        return next((s for s in self.subjects if s.name == name), None)

    def unavailable(self, reason):
        self.status, self.reason = "unavailable", reason
        return self

    def failed(self, reason):
        self.status, self.reason = "failed", reason
        return self

    def to_json(self):
        return {"name": self.name, "title": self.title, "status": self.status, "reason": self.reason,
                "seconds": round(self.seconds, 3), "params": self.params,
                "metrics": [{"key": m.key, "label": m.label} for m in self.metrics],
                "subjects": [s.to_json() for s in self.subjects],
                "targets": [t.to_json() for t in self.targets], "notes": self.notes}


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


# -- the pieces that may be missing ----------------------------------------------------------------

def native():
    """``(ffi, lib)`` of miniheap._native with the bench helpers, or raise :class:`Unavailable`."""
    try:
        from miniheap import _native
    except ImportError as e:
        raise Unavailable(f"the C core is not built (import miniheap._native: {e}); "
                          f"build it with: pip install -e .") from None
    missing = [f for f in ("mh_alloc", "mh_collect", "mh_get_stats", "mh_gcbench_run", "mh_bench_touch")
               if not hasattr(_native.lib, f)]
    if missing:
        raise Unavailable(f"miniheap._native lacks {', '.join(missing)}: rebuild with pip install -e .")
    return _native.ffi, _native.lib


def native_helpers():
    """``(ffi, lib)`` for the timing loops only (memcpy, first touch), or None without the C module."""
    try:
        return native()
    except Unavailable:
        return None


def heap_class():
    try:
        from miniheap.heap import Heap
    except ImportError as e:
        raise Unavailable(f"the Python façade is not there yet (import miniheap.heap: {e})") from None
    return Heap


def open_heap(**fields):
    """A Heap built through the façade from HeapConfig fields (gc_log off: benchmarks do not print).

    pretouch: the heap is committed and touched at creation, as the JVM peers run with -Xms = -Xmx and
    -XX:+AlwaysPreTouch, so neither side's pauses pay for first-touch page faults.
    """
    Heap = heap_class()
    from miniheap.config import HeapConfig

    fields.setdefault("gc_log", "off")
    fields.setdefault("pretouch", True)
    return Heap(HeapConfig(**fields))


def native_heap(heap):
    """The ``mh_heap *`` behind a façade Heap: ``_native_heap`` if the façade names it so, else ``_ptr``
    (what miniheap.heap calls it today)."""
    for name in ("_native_heap", "_ptr"):
        ptr = getattr(heap, name, None)
        if ptr is not None:
            return ptr
    raise Unavailable("the façade Heap exposes no mh_heap * (_native_heap or _ptr) for the C mutator")


def close_heap(heap):
    close = getattr(heap, "close", None)
    if close is not None:
        close()


class Clock:
    """Wall-clock budget of a benchmark: stop adding runs once it is spent (after at least one)."""

    def __init__(self, seconds):
        self.deadline = time.monotonic() + seconds

    def spent(self):
        return time.monotonic() > self.deadline
