"""Shared test fixtures: which backends work here, and a snapshot of the resources a heap may leak."""
import ctypes
import os

import pytest
from hypothesis import HealthCheck, settings

from miniheap import hugepages
from miniheap.backends import BACKENDS
from miniheap.syscalls import Syscalls

_probe_cache = {}

# glibc gives a thread that mallocs while another thread's arena is busy an arena of its own: two new
# anonymous mappings (64 MiB reserved) that stay for the life of the process. zgc's GC thread is such
# a thread, so whether a test that counts /proc/self/maps sees one depended on which threads ran
# before it. One arena for the whole test process makes the count depend on the heap alone.
M_ARENA_MAX = -8
ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)

# Hypothesis fails an example that runs longer than 200 ms (its default deadline), and a test whose
# data generation is slow (too_slow). Both measure wall time: CI runs once on a loaded shared machine,
# the second time with every malloc of the interpreter through ASan, where a descheduled example
# fails, or fails only once and is reported Flaky. What the properties check does not depend on time.
settings.register_profile("miniheap", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("miniheap")


def probe(name):
    if name not in _probe_cache:
        _probe_cache[name] = BACKENDS[name].probe(Syscalls())
    return _probe_cache[name]


def require_backend(name):
    """Skip unless the backend works here, with the probe's reason (it names vm.nr_hugepages)."""
    result = probe(name)
    if not result.works:
        pytest.skip(f"backend {name} unavailable: {result.why}" + (f" ({result.fix})" if result.fix else ""))


@pytest.fixture(params=list(BACKENDS))
def backend_name(request):
    require_backend(request.param)
    return request.param


class Resources:
    """What a heap could leave behind: fds, mappings, SysV segments, huge pages."""

    def __init__(self):
        self.fds = sorted(os.listdir("/proc/self/fd"))
        with open("/proc/self/maps") as f:
            lines = f.readlines()
        # Private read-write anonymous memory is malloc's and Python's: freeing a block in the middle
        # of anonymous mappings the kernel had merged splits one line into two, so counting those
        # lines blamed the heap for the allocator. Nothing a heap maps is of that kind (views are
        # shared mappings of the backing, reservations PROT_NONE), so every other line is counted.
        self.maps = sum(1 for line in lines if not _private_anonymous(line))
        self.heap_maps = sum(1 for line in lines if any(name in line for name in BACKING_NAMES))
        self.shm = shm_segments()
        self.huge_free = hugepages.meminfo().get("HugePages_Free", 0)

    def leaks_since(self, before, huge=True):
        """What changed since ``before``. The huge-page pool is machine-wide, so a test of a backend
        that cannot take huge pages passes huge=False rather than blame it for another process."""
        problems = []
        if self.fds != before.fds:
            problems.append(f"fds {before.fds} -> {self.fds}")
        if SANITIZED:
            # ASan maps and unmaps memory of its own (PROT_NONE regions included), so under it only
            # the mappings of a heap's backing are compared; the normal stage compares every mapping.
            if self.heap_maps != before.heap_maps:
                problems.append(f"heap mappings {before.heap_maps} -> {self.heap_maps}")
        elif self.maps != before.maps:
            problems.append(f"mappings {before.maps} -> {self.maps}")
        if self.shm - before.shm:
            problems.append(f"SysV segments left: {sorted(self.shm - before.shm)}")
        if huge and self.huge_free != before.huge_free:
            problems.append(f"free huge pages {before.huge_free} -> {self.huge_free}")
        return problems


SANITIZED = os.environ.get("MINIHEAP_SANITIZED") == "1"


def _private_anonymous(line):
    fields = line.split()
    return len(fields) == 5 and fields[1] == "rw-p" and fields[4] == "0"
BACKING_NAMES = ("/memfd:miniheap", "/SYSV", "/dev/zero (deleted)")


def shm_segments(pid=None):
    """The shmids of segments created by this process (cpid column of /proc/sysvipc/shm)."""
    pid = pid or os.getpid()
    ids = set()
    with open("/proc/sysvipc/shm") as f:
        header = f.readline().split()
        for line in f:
            fields = dict(zip(header, line.split()))
            if int(fields["cpid"]) == pid:
                ids.add(int(fields["shmid"]))
    return ids


@pytest.fixture
def resources():
    return Resources


def small_config(backend="memfd", mapping="none", **overrides):
    """A small heap that collects often. memfd-hugetlb needs 2 MiB regions, so its heap is larger."""
    from miniheap.config import HeapConfig

    if backend == "memfd-hugetlb":
        base = dict(heap_size="32M", young_size="8M", region_size="2M", survivor_ratio=2)
    else:
        base = dict(heap_size="8M", young_size="2M", region_size="256K", survivor_ratio=6)
    base.update(backend=backend, tenuring_threshold=3, gc_log="off")
    base.update(LAYOUT_FIELDS.get(mapping, {"mapping": mapping}))
    if "MINIHEAP_COLOR_BITS" in os.environ:  # the sanitizer stage moves the colour views (tools/sanitize)
        base["color_bits"] = int(os.environ["MINIHEAP_COLOR_BITS"])
    base.update(overrides)
    return HeapConfig(**base)


# Every layout; "colored" is the zgc collector's (its three coloured views), "zgc-one-view" too (one
# view, the colour in the pointer's low bits: mapping none with collector zgc), the others serial's.
ZGC_ONE_VIEW = "zgc-one-view"
LAYOUTS = ("none", "colored", ZGC_ONE_VIEW, "young-mirror")
# A layout name of these tests as HeapConfig fields (small_config, make_heap take either).
LAYOUT_FIELDS = {ZGC_ONE_VIEW: {"mapping": "none", "collector": "zgc"}}
# The zgc collector's two layouts, for tests of what every zgc heap does.
ZGC_LAYOUTS = ("colored", ZGC_ONE_VIEW)
# The layouts of the generational collector, for tests of what only it does (young and full
# collections, promotion, cards).
SERIAL_LAYOUTS = ("none", "young-mirror")


@pytest.fixture
def make_heap():
    """make_heap(backend, mapping, **overrides) -> an open Heap, closed after the test."""
    from miniheap.heap import Heap

    heaps = []

    def make(backend="memfd", mapping="none", **overrides):
        require_backend(backend)
        heap = Heap(small_config(backend, mapping, **overrides))
        heaps.append(heap)
        return heap

    yield make
    for heap in heaps:
        heap.close()
