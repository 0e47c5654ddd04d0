"""backends: what each memory backend costs, measured on the backends themselves (no collector).

For every backend whose probe passes here:

* **setup**: create the backing, a reservation and three views of it through the real API
  (``Backend``, ``Reservation.map_view``), as a heap does, and tear it down again;
* **first touch**: one byte per 4 KiB through a view of a fresh, uncommitted backing of 256 MiB, by a
  C loop (``mh_bench_touch``), with the page faults counted by ``getrusage`` (``ru_minflt``); then the
  same after committing (``fallocate`` / ``MADV_POPULATE_WRITE``), commit time included;
* **view creation**: many views of one 2 MiB range mapped side by side, by the raw call each backend
  makes (``mmap(MAP_SHARED|MAP_FIXED, fd)`` for the memfds, ``mremap(source, 0, ...)`` for the others),
  without the strace recording of the system-call layer, and again through ``Backend.map_view``.

4 KiB pages (memfd) against 2 MiB pages (memfd-hugetlb) needs 128 free huge pages. As root the pool
is grown by what is missing for the run and put back to its old size afterwards, whatever happens;
without root the huge-page figures are skipped, with the reason.
"""
import contextlib
import os
import resource
import sys
import time

from .. import hugepages
from .. import syscalls as sc
from ..backends import BACKENDS
from ..backends.mremap import MremapBackend
from ..errors import CommitError, SyscallError
from ..reservation import Reservation
from .common import MIB, BenchFailed, Clock, Metric, Result, Target, native_helpers, ratio

NAME = "backends"
TITLE = "Memory backends: setup, first touch (4 KiB vs 2 MiB pages), view creation"

FULL = dict(touch_mib=256, setup_mib=64, views=256, view_mib=2)
QUICK = dict(touch_mib=32, setup_mib=16, views=32, view_mib=2)
STRIDE = 4096
SETUP_VIEWS = 3

METRICS = [
    Metric("setup_ms", f"backing + reservation + {SETUP_VIEWS} views, and close (ms)", "{:.3f}"),
    Metric("touch_gbs", "first touch, uncommitted (GB/s)", "{:.2f}"),
    Metric("touch_faults", "page faults in that touch", "{:.0f}"),
    Metric("commit_touch_gbs", "commit + first touch (GB/s)", "{:.2f}"),
    Metric("view_us", "view creation, raw call (us/view)", "{:.2f}"),
    Metric("view_api_us", "view creation, Backend.map_view (us/view)", "{:.2f}"),
]


@contextlib.contextmanager
def huge_page_pool(pages, may_change=True, say=None):
    """Make sure `pages` huge pages are free for the run; yield None, or the reason they are not.

    As root, and unless `may_change` is false (``bench --no-sysctl``), grow vm.nr_hugepages by what is
    missing and restore the old value on the way out, saying so through `say` (standard error by
    default) before each change: it is a machine-wide setting."""
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    if not os.path.exists(hugepages.NR_HUGEPAGES):
        yield "this kernel has no hugetlbfs (no /proc/sys/vm/nr_hugepages)"
        return
    free = hugepages.free_pages()
    if free >= pages:
        yield None
        return
    saved = hugepages.total_pages()
    if not may_change or os.geteuid() != 0 or not os.access(hugepages.NR_HUGEPAGES, os.W_OK):
        why = "vm.nr_hugepages left alone (--no-sysctl); " if may_change is False else ""
        yield (f"{why}needs {pages} free huge pages, {free} are free (vm.nr_hugepages={saved}); "
               f"as root: sysctl vm.nr_hugepages={saved + pages - free}")
        return
    added = pages - free
    say(f"bench: raising vm.nr_hugepages from {saved} to {saved + added} for the huge-page figures; "
        f"it is put back afterwards (run with --no-sysctl to leave it alone)")
    try:
        hugepages.set_pool(saved + added)
        got = hugepages.free_pages()
        yield None if got >= pages else (f"asked the kernel for {added} more huge pages, only {got} "
                                         f"are free (memory too fragmented?)")
    finally:
        # Put back what this run added. If another process resized the pool meanwhile (a CI run does
        # the same dance), take away only our pages rather than undo its change.
        now = hugepages.total_pages()
        back = saved if now == saved + added else max(0, now - added)
        hugepages.set_pool(back)
        say(f"bench: vm.nr_hugepages put back to {back}")


def _touch_function():
    helpers = native_helpers()
    if helpers is not None:
        return (lambda addr, length: helpers[1].mh_bench_touch(addr, length, STRIDE)), "C loop (mh_bench_touch)"
    ffi = sc.ffi

    def touch(addr, length):
        p = ffi.cast("uint8_t *", addr)
        start = time.perf_counter_ns()
        for off in range(0, length, STRIDE):
            p[off] = 1
        return time.perf_counter_ns() - start

    return touch, "Python loop (miniheap._native not built: the figures include interpreter time)"


def _faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def setup_ms(cls, size):
    calls = sc.Syscalls()
    start = time.perf_counter_ns()
    backend = cls(calls, size)
    reservation = Reservation(calls, SETUP_VIEWS * size, alignment=cls.granule, label="bench")
    try:
        for i in range(SETUP_VIEWS):
            backend.map_view(reservation, reservation.start + i * size, 0, size, name=f"v{i}")
    finally:
        reservation.close()
        backend.close()
    return (time.perf_counter_ns() - start) / 1e6


def first_touch(cls, size, touch, commit):
    """(GB/s, page faults) of touching a fresh view, optionally committing the backing first (timed)."""
    calls = sc.Syscalls()
    backend = cls(calls, size)
    reservation = Reservation(calls, size, alignment=cls.granule, label="bench")
    try:
        if cls.granule > STRIDE and not commit:
            # The backend maps hugetlb views MAP_NORESERVE and reserves at commit; uncommitted, a fault
            # finds no page if the pool shrinks meanwhile (another process may resize it) and the
            # process dies of SIGBUS. Map this view without MAP_NORESERVE instead: the kernel reserves
            # the pages at mmap, which fails with ENOMEM if they are not there. Faults cost the same.
            calls.mmap(reservation.start, size, sc.PROT_READ | sc.PROT_WRITE, sc.MAP_SHARED | sc.MAP_FIXED,
                       backend.fd, 0)
            reservation.note_mapped(reservation.start, size)
            start_addr = reservation.start
        else:
            start_addr = backend.map_view(reservation, reservation.start, 0, size).start
        faults = _faults()
        start = time.perf_counter_ns()
        if commit:
            backend.commit(0, size)
        touch(start_addr, size)
        ns = time.perf_counter_ns() - start
        faults = _faults() - faults
        if sc.ffi.cast("uint8_t *", start_addr + size - STRIDE)[0] != 1:
            raise BenchFailed(f"{cls.name}: the last page touched does not read back")
    finally:
        reservation.close()
        backend.close()
    return size / ns, faults


def view_creation_us(cls, nviews, view_size):
    """Microseconds per view: raw calls, then through Backend.map_view; checks that views alias."""
    lib, ffi = sc.lib, sc.ffi
    calls = sc.Syscalls()
    backend = cls(calls, view_size)
    rw = sc.PROT_READ | sc.PROT_WRITE
    try:
        backend.commit(0, view_size)  # the page the aliasing check touches (a clean error if none is free)
        results = []
        for api in (False, True):
            reservation = Reservation(calls, nviews * view_size, alignment=cls.granule, label="bench")
            addrs = [reservation.start + i * view_size for i in range(nviews)]
            try:
                if api:
                    start = time.perf_counter_ns()
                    for a in addrs:
                        backend.map_view(reservation, a, 0, view_size)
                    ns = time.perf_counter_ns() - start
                elif isinstance(backend, MremapBackend):
                    source, flags = ffi.cast("void *", backend.source), sc.MREMAP_MAYMOVE | sc.MREMAP_FIXED
                    mremap = lib.mh_sys_mremap
                    targets = [ffi.cast("void *", a) for a in addrs]
                    start = time.perf_counter_ns()
                    got = [mremap(source, 0, view_size, flags, t) for t in targets]
                    ns = time.perf_counter_ns() - start
                    _check_mapped(got, targets, cls.name, "mremap")
                else:
                    fd, flags = backend.fd, sc.MAP_SHARED | sc.MAP_FIXED | backend.map_extra
                    mmap = lib.mmap
                    targets = [ffi.cast("void *", a) for a in addrs]
                    start = time.perf_counter_ns()
                    got = [mmap(t, view_size, rw, flags, fd, 0) for t in targets]
                    ns = time.perf_counter_ns() - start
                    _check_mapped(got, targets, cls.name, "mmap")
                # every view is the same memory: a write through the first is read through the last
                ffi.cast("uint64_t *", addrs[0])[0] = 0xB0B + api
                if ffi.cast("uint64_t *", addrs[-1])[0] != 0xB0B + api:
                    raise BenchFailed(f"{cls.name}: views made for the benchmark do not alias")
                results.append(ns / nviews / 1e3)
            finally:
                reservation.close()
        backend.views.clear()
        return results
    finally:
        backend.close()


def _check_mapped(got, targets, name, call):
    for g, t in zip(got, targets):
        if g != t:
            raise BenchFailed(f"{name}: {call} of a view returned {g} instead of {t} (errno {sc.ffi.errno})")


def run(opts):
    size = QUICK if opts.quick else FULL
    runs = opts.runs or (2 if opts.quick else 5)
    result = Result(NAME, TITLE, dict(size, stride=STRIDE, runs=runs))
    result.metrics = METRICS
    clock = Clock(30 if opts.quick else 60)
    touch, how = _touch_function()
    result.params["touch_loop"] = how
    touch_bytes, view_bytes = size["touch_mib"] * MIB, size["view_mib"] * MIB
    need = hugepages.pages_for(touch_bytes) + 1

    with huge_page_pool(need, may_change=getattr(opts, "sysctl", True),
                        say=getattr(opts, "say", None)) as shortage:
        result.params["huge_pages"] = (f"vm.nr_hugepages={hugepages.total_pages()} during the run, "
                                       f"{hugepages.free_pages()} free") if shortage is None else shortage
        subjects = {}
        for name, cls in BACKENDS.items():
            subject = result.subject(name, f"{cls.how_created}; views: {cls.how_viewed}")
            probe = cls.probe(sc.Syscalls())
            if not probe.works:
                subject.unavailable = f"probe: {probe.why}" + (f" ({probe.fix})" if probe.fix else "")
            elif cls.granule > STRIDE and shortage:
                subject.unavailable = f"skipped: {shortage}"
            else:
                subjects[name] = (cls, subject)
        for name, (cls, subject) in list(subjects.items()):
            # warm-up, not recorded: the first use of a backend pays for things later heaps do not
            # (e.g. the kernel's first hugetlb faults)
            try:
                first_touch(cls, touch_bytes, touch, commit=False)
            except SyscallError as e:
                if cls.granule <= STRIDE:
                    raise
                subject.unavailable = f"huge pages ran out ({e}); another process may be using the pool"
                del subjects[name]
        for i in range(runs):
            for name, (cls, subject) in list(subjects.items()):
                try:
                    gbs, faults = first_touch(cls, touch_bytes, touch, commit=False)
                    commit_gbs, _ = first_touch(cls, touch_bytes, touch, commit=True)
                    raw_us, api_us = view_creation_us(cls, size["views"], view_bytes)
                except (SyscallError, CommitError) as e:
                    if cls.granule <= STRIDE:
                        raise
                    # the pool is shared by the whole machine: another process took the pages
                    subject.unavailable = (f"huge pages ran out during run {i + 1} ({e}); another process "
                                           f"may be using or resizing the pool")
                    del subjects[name]
                    continue
                subject.add(setup_ms=setup_ms(cls, size["setup_mib"] * MIB), touch_gbs=gbs, touch_faults=faults,
                            commit_touch_gbs=commit_gbs, view_us=raw_us, view_api_us=api_us)
            if i + 1 < runs and clock.spent():
                result.notes.append(f"stopped after {i + 1} of {runs} runs: time budget spent")
                break
    result.params["huge_pages_after"] = f"vm.nr_hugepages={hugepages.total_pages()}"

    small, huge = result.find("memfd"), result.find("memfd-hugetlb")
    result.targets.append(Target("first touch, memfd-hugetlb / memfd (2 MiB vs 4 KiB pages)",
                                 ratio(huge.median("touch_gbs"), small.median("touch_gbs")), 5.0, ">=",
                                 note=huge.unavailable))
    result.notes.append(f"first touch: one byte per {STRIDE} bytes of {size['touch_mib']} MiB by a {how}")
    result.notes.append(f"view creation: {size['views']} views of one {size['view_mib']} MiB range each; the raw "
                        f"call goes through cffi without the strace-format recording, map_view with it")
    return result
