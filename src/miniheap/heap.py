"""The Python façade: ``Heap`` builds the layers (backend, layout, C heap) and hands out ``Ref`` handles.

Layers, bottom up: the system-call layer (:mod:`miniheap.syscalls`) records every kernel call; a
backend (:mod:`miniheap.backends`) owns the physical memory; a layout (:mod:`miniheap.layout`) maps its
views into reservations; the C heap (``miniheap._native``) allocates and collects inside the views and
asks back through callbacks to commit and uncommit regions. Python holds objects only through
``Ref`` handles, slots of a root table the collector updates when objects move.

Misuse never reaches C with a dangling pointer: a closed heap (or one inherited through ``fork()``)
passes NULL, a released ``Ref`` passes an invalid handle, and C answers with an error code that is
turned into an exception here. The fast path therefore pays for no Python-side checks.

``Ref`` is a type written in C (``miniheap._ref``, native/python/ref.c): allocation (``heap.alloc``),
``ref[i]``, ``ref[i] = other`` and the release of a dropped Ref call the core directly, without cffi
and without a Python ``__del__``. Its other methods are written here and attached to it.

Ownership: one ``Heap`` owns one C heap, and one ``Ref`` owns one handle. Neither can be copied or
pickled into a second owner (``copy.copy(ref)`` gives an independent handle to the same object). The
C heap's callbacks reach an :class:`_Embedder`, which holds the backend and the GC log but not the
``Heap``: no reference cycle keeps a dropped ``Heap`` alive, so one that is never closed is released
(with a ``ResourceWarning``, as an unclosed file gives) as soon as it is unreachable.
"""
import collections
import errno
import os
import statistics
import threading
import time
import warnings
import weakref

from . import _native, _ref
from .backends import backend_class
from .cleanup import Cleanup
from .config import HeapConfig
from .errors import (BackendUnavailableError, CommitError, ForeignRefError, ForkedHeapError,
                     HeapClosedError, HeapCorruptionError, HeapExhaustedError, MiniheapError,
                     ReleasedRefError, SyscallError)
from .layout import open_layout
from .syscalls import Syscalls

ffi, lib = _native.ffi, _native.lib
_mh_release = lib.mh_release
# The C-level Ref calls the core through the table miniheap._native hands out (one copy of the core).
_ref.init(int(ffi.cast("uintptr_t", lib.mh_python_api())), HeapClosedError)

# mh_space_of's answers: the generational collector's spaces, then zgc's page types.
SPACE_NAMES = ("eden", "survivor", "old", "humongous", "small", "medium", "large")
# mh_region_info's states; for zgc a region is a granule: part of a small, medium or large page, kept
# for relocation (the reserve), or in the relocation set of the cycle running.
REGION_STATES = ("free", "eden", "survivor-from", "survivor-to", "old", "humongous", "humongous+",
                 "small", "medium", "medium+", "large", "large+", "reserved", "relocating")
# One character per region state, for region_map(): upper case for a region in use.
REGION_CHARS = {"free": ".", "eden": "E", "survivor-from": "S", "survivor-to": "s", "old": "O",
                "humongous": "H", "humongous+": "h", "small": "P", "medium": "M", "medium+": "m",
                "large": "L", "large+": "l", "reserved": "r", "relocating": "R"}
# Where the collectors' threads show in spans and trace events.
GC_THREAD = "ZDriver"  # JDK 17's name for the thread that runs a ZGC cycle


# heap.events and the pauses behind the percentiles keep the latest this many collections (a program
# that runs for days must not grow a list per collection); Heap(history=None) keeps them all.
EVENT_HISTORY = 10_000
# region_map(): runs at least this long are written as "c×count"
REGION_RUN = 64


def _summarise_runs(text, free_above, run):
    """``text`` followed by ``free_above`` dots, with every run of ``run`` or more equal characters
    written as the character, "×" and its length."""
    out = []
    i, n = 0, len(text)
    while i < n:
        j = i
        while j < n and text[j] == text[i]:
            j += 1
        length = j - i + (free_above if j == n and text[i] == "." else 0)
        out.append(f"{text[i]}×{length}" if length >= run else text[i] * length)
        if j == n and text[i] == ".":
            free_above = 0
        i = j
    if free_above:
        out.append(f".×{free_above}" if free_above >= run else "." * free_above)
    return "".join(out)


class Stats:
    """A snapshot of the collector's counters, with pause percentiles in milliseconds."""

    def __init__(self, native, pauses_ns):
        for field in ffi.typeof("mh_stats").fields:
            setattr(self, field[0], getattr(native, field[0]))
        self.collections = self.young_collections + self.full_collections + self.zgc_cycles
        # Totals are the C heap's running counters, exact however long the program runs; the median
        # and percentiles are of the pauses kept (the latest ``history`` of them, see Heap).
        ms = sorted(p / 1e6 for p in pauses_ns)
        self.pauses_ms = ms
        self.pauses_kept = len(ms)
        # (a collector that does not count its pauses in C falls back on the window)
        self.pause_total_ms = self.total_pause_ns / 1e6 if self.total_pause_ns else sum(ms)
        self.pause_median_ms = statistics.median(ms) if ms else 0.0
        self.pause_p95_ms = ms[min(len(ms) - 1, int(0.95 * len(ms)))] if ms else 0.0
        self.pause_p99_ms = ms[min(len(ms) - 1, int(0.99 * len(ms)))] if ms else 0.0
        self.pause_max_ms = max(self.max_pause_ns / 1e6, ms[-1] if ms else 0.0)
        pause_s = self.pause_total_ms / 1e3
        self.copy_rate = self.bytes_copied / pause_s if pause_s else 0.0  # bytes per second of pause

    def as_dict(self):
        return {k: v for k, v in vars(self).items() if k != "pauses_ms"}

    def __repr__(self):
        if self.zgc_cycles:
            return (f"<Stats zgc cycles={self.zgc_cycles} pauses={self.pauses} relocated by gc="
                    f"{self.objects_relocated_by_gc} by mutators={self.objects_relocated_by_mutator} "
                    f"pause max={self.pause_max_ms:.3f}ms stalls={self.allocation_stalls}>")
        return (f"<Stats young={self.young_collections} full={self.full_collections} "
                f"copied={self.bytes_copied} promoted={self.bytes_promoted} "
                f"pause total={self.pause_total_ms:.3f}ms max={self.pause_max_ms:.3f}ms>")


class Phase(collections.namedtuple("Phase", "name start_ns duration_ns pause thread")):
    """One phase of a collection: its JDK name ("Pause Mark Start", "Concurrent Mark", ...), when it
    started (CLOCK_MONOTONIC ns), how long it took, whether the mutators were stopped, and which thread
    ran it ("mutator" or "gc")."""

    __slots__ = ()

    @property
    def ms(self):
        return self.duration_ns / 1e6


_THREAD_NAMES = {lib.MH_THREAD_MUTATOR: "mutator", lib.MH_THREAD_GC: "gc"}


def _phases(native):
    return [Phase(ffi.string(p.name).decode(), p.start_ns, p.duration_ns, bool(p.pause),
                  _THREAD_NAMES.get(p.thread, str(p.thread)))
            for p in native.phases[0:native.nphases]]


_ARRAY_FIELDS = {name for name, f in ffi.typeof("mh_gc_event").fields if f.type.kind == "array"}


class GCEvent:
    """One collection, copied out of the C event record (which is only valid during the callback)."""

    # time: seconds since the heap was created, when the collection ended; thread: the name of the
    # thread that ran it (the one whose allocation or collect() call triggered it).
    __slots__ = tuple(f[0] for f in ffi.typeof("mh_gc_event").fields) + ("time", "thread", "spans")

    def __init__(self, native, when, thread=None, started=None):
        for name in GCEvent.__slots__[:-3]:
            value = getattr(native, name)
            if name == "phases":
                value = _phases(native)
            elif name in _ARRAY_FIELDS:
                value = list(value)
            setattr(self, name, value)
        self.time = when
        self.thread = thread
        # A zgc cycle brings its own spans (its phases on the GC thread, with their real start times);
        # the generational collector's are inferred from the event (spans.serial_spans).
        self.spans = None
        if self.collector == lib.MH_COLLECTOR_ZGC and started is not None:
            from .zgclog import zgc_spans

            self.spans = zgc_spans(self, started, thread)

    @property
    def zgc(self):
        return self.collector == lib.MH_COLLECTOR_ZGC

    @property
    def stall(self):
        """A mutator that waited (an Allocation or Relocation Stall): not a collection."""
        return self.kind in (lib.MH_GC_ALLOCATION_STALL, lib.MH_GC_RELOCATION_STALL)

    @property
    def pauses(self):
        """The phases during which the mutators were stopped."""
        return [p for p in self.phases if p.pause]

    @property
    def full(self):
        return self.kind == lib.MH_GC_FULL

    @property
    def pause_ms(self):
        return self.ns_total / 1e6


_live_heaps = weakref.WeakSet()


def _forget_heaps_in_child():
    # The child of a fork() shares the parent's backing (MAP_SHARED): letting it collect would move
    # objects under the parent's feet. Disable every heap; using one raises ForkedHeapError.
    for heap in list(_live_heaps):
        heap._forked = True
        heap._ptr = ffi.NULL
        if heap._refcore is not None:
            heap._refcore.close()


def _flush_logs_before_fork():
    # Whatever a log has buffered would be written once by the parent and again by the child.
    for heap in list(_live_heaps):
        try:
            heap._core.gclog.flush()
        except Exception:
            pass


os.register_at_fork(before=_flush_logs_before_fork, after_in_child=_forget_heaps_in_child)


class Heap:
    """A generational heap in multi-mapped memory. Use as a context manager, or call close().

    ``Heap(config)`` or ``Heap(backend="memfd", heap_size="64M", ...)``; ``syscalls`` lets a test pass
    a :class:`~miniheap.syscalls.Syscalls` that fails on purpose; ``history`` is how many collections
    ``events`` keeps (the latest; ``None`` keeps all).

    What is kept per collection is bounded, so a program may run for days: ``events`` and the pause
    percentiles cover the latest ``history`` collections, ``trace`` the first and latest system calls,
    while ``stats`` counts and totals every collection exactly.
    """

    def __init__(self, config=None, *, syscalls=None, history=EVENT_HISTORY, **overrides):
        if config is None:
            config = HeapConfig(**overrides)
        elif overrides:
            config = config.evolve(**overrides)
        self.config = config
        self._ptr = self._record = ffi.NULL  # _ptr: NULL once closed; _record: freed at finalization
        self._refcore = None  # what the C-level Refs share: the core's heap pointer (miniheap._ref.Core)
        self._closed = False
        self._close_deferred = False
        self._forked = False
        self.sys = syscalls if syscalls is not None else Syscalls()
        self.trace = self.sys.trace
        self.backend = self.layout = None
        self.started = time.monotonic()
        # What the C heap calls back: it must not refer to this Heap (see _Embedder).
        self._core = _Embedder(_open_gclog(config, self.started), self.started, history)
        self._ctx = ffi.new_handle(self._core)
        try:
            self.backend = self._core.backend = self._open_backend()
            self.layout = open_layout(config.mapping, self.sys, self.backend, config)
            self._ptr = self._record = self._core.ptr = self._create_native()
            self._refcore = _ref.Core(self, int(ffi.cast("uintptr_t", self._ptr)))  # holds the Heap weakly
            # heap.alloc is the Core's method, in C: no Python frame per allocation
            self.alloc = self._refcore.alloc
            if config.pretouch:
                self._pretouch()
        except BaseException:
            with Cleanup() as cleanup:  # the original failure is raised; every step still runs
                cleanup.run(self._release_memory)
                cleanup.run(self._core.gclog.close)
            raise
        self._core.gclog.log_start(config, self.views)
        self._core.gclog.flush()  # a fork() later must not find these lines buffered (and write them twice)
        _live_heaps.add(self)

    @property
    def gc_listeners(self):
        """Called with each GCEvent after the GC log, on the collecting thread, while it still holds
        the heap (so a listener may read regions() of the heap as the collection left it)."""
        return self._core.listeners

    @property
    def _gclog(self):
        return self._core.gclog

    # -- construction ----------------------------------------------------------------------------
    def _open_backend(self):
        cls = backend_class(self.config.backend)
        try:
            return cls(self.sys, self.config.heap_size)
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):  # a shortage, not the backend's fault
                raise MiniheapError(f"cannot create the {cls.name} backing of {self.config.heap_size} "
                                    f"bytes: {e}") from e
            verdict = cls.explain_failure(e)
            raise BackendUnavailableError(
                f"backend {cls.name} cannot work here: {verdict.why}"
                + (f"; fix: {verdict.fix}" if verdict.fix
                   else "; try backend='memfd'" if cls.name != "memfd" else "")) from e

    def _create_native(self):
        c = self.config
        cfg = ffi.new("mh_config *")
        cfg.heap_size, cfg.region_size, cfg.young_size = c.heap_size, c.region_size, c.young_size
        cfg.survivor_ratio, cfg.tenuring_threshold = c.survivor_ratio, c.tenuring_threshold
        cfg.max_handles = c.max_handles
        cfg.colored = (lib.MH_VIEWS_MULTI if self.layout.colored
                       else lib.MH_VIEWS_LOW_BITS if self.layout.color_in_low_bits else lib.MH_VIEWS_ONE)
        cfg.view_base = list(self.layout.view_bases)
        cfg.commit, cfg.uncommit, cfg.on_gc = lib.mh_py_commit, lib.mh_py_uncommit, lib.mh_py_on_gc
        cfg.ctx = self._ctx
        cfg.keep_committed = 1 if c.pretouch else 0
        cfg.collector = lib.MH_COLLECTOR_ZGC if c.collector == "zgc" else lib.MH_COLLECTOR_SERIAL
        cfg.collection_interval_ms = max(1, round(c.gc_interval * 1000)) if c.gc_interval else 0
        if c.verify_views:
            # The GC thread changes the views' protections at each flip, where Python cannot run: it
            # gets libc's mprotect itself (plain C, safe on any thread).
            cfg.verify_views = 1
            cfg.protect = ffi.cast("int (*)(void *, size_t, int)", self.sys.mprotect_function())
        err = ffi.new("char[]", 512)
        ptr = lib.mh_heap_new(cfg, err, 512)
        if ptr == ffi.NULL:
            self._core.raise_pending()
            if self._core.commit_error is not None:
                raise self._core.commit_error
            raise MiniheapError(ffi.string(err).decode())
        return ptr

    def _pretouch(self):
        """Fault every page in through every writable view, as -XX:+AlwaysPreTouch does (JDK 17's ZGC
        touches its heap through all three views), so no collection takes a page fault on memory it
        copies into. Each view's page tables then hold the whole heap: RSS counts it once per view.

        With verify_views only the good colour's view is accessible, and only it is touched (as JDK 17
        does with -XX:+ZVerifyViews); the heap is held meanwhile, so the GC thread cannot flip."""
        views = self.layout.views
        if self.config.verify_views:
            lib.mh_lock(self._ptr)
            try:
                views = [views[lib.mh_good_color(self._ptr)]]
                self._touch(views)
            finally:
                lib.mh_unlock(self._ptr)
        else:
            self._touch(views)

    def _touch(self, views):
        from . import syscalls as sc

        for view in views:
            if view.writable:
                self.sys.madvise(view.start, view.length, sc.MADV_POPULATE_WRITE,
                                 hint="MADV_POPULATE_WRITE needs Linux 5.14 or later; set pretouch = false")

    # -- objects ---------------------------------------------------------------------------------
    def alloc(self, refs=0, data=0):
        """A new object with ``refs`` null reference slots and ``data`` zeroed payload bytes.

        (Each Heap replaces this method by its Core's ``alloc``, the same call written in C.)"""
        if self._refcore is None:
            self._raise()
        return self._refcore.alloc(refs, data)

    def _raise_alloc(self, refs, data):
        # the limits of the object header (native/core/object.h) and of the C call's uint32_t
        for name, value, most, what in (("refs", refs, (1 << 20) - 1, "the most reference slots an object has"),
                                        ("data", data, (1 << 32) - 1, "payload bytes")):
            if type(value) is not int or not 0 <= value <= most:
                raise ValueError(f"alloc({name}={value!r}): {name} must be an int from 0 to {most} ({what})")
        self._raise()

    def collect(self, full=False):
        """Run a young collection, or a full one with ``full=True``."""
        if lib.mh_collect(self._ptr, 1 if full else 0) != 0:
            self._raise()

    def verify(self):
        """Check every invariant of the heap; raise HeapCorruptionError describing the first broken one."""
        problems = lib.mh_verify(self._ptr)
        if problems < 0:
            self._raise()
        if problems:
            raise HeapCorruptionError(f"{problems} problem(s); first: {self._error_message()}")

    # -- figures ---------------------------------------------------------------------------------
    @property
    def events(self):
        """The latest collections (and, with zgc, stalls) as GCEvent records, oldest first: the last
        ``history`` of them (10,000 unless the Heap was built with another ``history``; ``None`` keeps
        every one); counts and pause totals in ``stats`` stay exact whatever is dropped. A concurrent
        collector's GC thread never calls Python: its events wait in the C core until a call of this
        heap delivers them, which reading this property does."""
        if self._ptr != ffi.NULL and not self._forked:
            lib.mh_drain_events(self._ptr)
        return self._core.events

    @property
    def stats(self):
        # NULL once the heap is closed, by another thread too between a check here and the call
        native = lib.mh_get_stats(self._ptr)
        if native == ffi.NULL:
            self._raise()
        # Copies: another thread's call may deliver a collection (and append its pauses) meanwhile.
        return Stats(ffi.new("mh_stats *", native[0]), tuple(self._core.pauses_ns))

    def occupancy(self):
        """Bytes in use: dict of eden, survivor, old and total (serial); small, medium, large pages and
        total (zgc, which counts whole pages as used, as the JDK does)."""
        self._check_open()
        p = self._ptr
        if self.config.collector == "zgc":
            used = dict.fromkeys(("small", "medium", "large"), 0)
            for _, state, _ in self.regions():
                kind = state.rstrip("+")
                if kind in used or kind == "relocating":
                    used["small" if kind == "relocating" else kind] += self.config.region_size
            return {**used, "total": lib.mh_used(p)}
        return {"eden": lib.mh_eden_used(p), "survivor": lib.mh_survivor_used(p),
                "old": lib.mh_old_used(p), "total": lib.mh_used(p)}

    def regions(self, in_use_only=False):
        """(index, state, used bytes) for every region, for teaching outputs. The C heap is asked only
        about the regions in use: every region above them is free and empty (``in_use_only`` leaves
        those out, which for a 4 TiB heap is two million tuples fewer)."""
        self._check_open()
        used = ffi.new("uint64_t *")
        result = []
        in_use = lib.mh_regions_in_use(self._ptr)
        for i in range(in_use):
            state = lib.mh_region_info(self._ptr, i, used)
            result.append((i, REGION_STATES[state] if 0 <= state < len(REGION_STATES) else "?", used[0]))
        if not in_use_only:
            result.extend((i, "free", 0) for i in range(in_use, lib.mh_region_count(self._ptr)))
        return result

    def region_map(self, run=REGION_RUN):
        """The regions as one character each: E eden, S survivor (from; s is the empty to-space), O old,
        H/h humongous (start/continuation), . free; lower case e, s, o for a region holding nothing.

        A run of ``run`` or more equal characters is summarised as the character, "×" and the count
        (a 4 TiB heap holding 64 MiB reads ``eeeeee…OOOO.×2097110``, not two million dots)."""
        chars = []
        for _, state, used in self.regions(in_use_only=True):
            c = REGION_CHARS.get(state, "?")
            chars.append(c.lower() if used == 0 and state in ("eden", "old", "survivor-from", "small") else c)
        free_above = lib.mh_region_count(self._ptr) - len(chars)
        return _summarise_runs("".join(chars), free_above, run)

    @property
    def views(self):
        """The heap's mappings: name, address range, protection, backing."""
        self._check_open()
        return list(self.layout.views) + self.backend.own_views()

    @property
    def good_color(self):
        self._check_open()
        return lib.mh_good_color(self._ptr)

    def raw_slot(self, ref, slot):
        """The reference stored in a slot as it is in memory, WITHOUT the load barrier (0 for null).

        For teaching and testing the coloured layout: after a full collection a field may still hold a
        stale colour; loading it (``ref[slot]``) heals it, and raw_slot shows the before and after.
        """
        self._own(ref, "raw_slot")
        if type(slot) is not int:
            raise TypeError(f"reference slots are indexed by int, not {type(slot).__name__}")
        if not 0 <= slot < ref.nrefs:
            raise IndexError(f"reference slot {slot} out of range: the object has {ref.nrefs} slots")
        raw = lib.mh_peek_slot(self._ptr, ref._h, slot)
        if raw == lib.MH_BAD_REF:  # 0 is a null slot; only this value is an error
            self._raise(ref)
        return raw

    def raw_color(self, ref, slot):
        """The colour (MH_COLOR_*) of the raw reference in a slot, before any load barrier."""
        self._own(ref, "raw_color")
        return lib.mh_ref_color(self._ptr, self.raw_slot(ref, slot))

    def _own(self, ref, method):
        """Every method that takes a Ref checks that it is a Ref of this heap."""
        if type(ref) is not Ref:
            raise TypeError(f"{method}() takes a Ref of this heap, not {type(ref).__name__}")
        if ref._heap is not self:
            raise ForeignRefError(f"{method}(): this Ref belongs to another heap; pass a Ref allocated "
                                  f"by this heap")

    def memory(self):
        """A full memory snapshot (RSS, PSS, USS, huge pages, backing, per view). About 20 ms per GiB."""
        from . import memory

        self._check_open()
        return memory.snapshot(self.views, self.backend.physical_bytes(),
                               hugetlb_expected=self.config.backend == "memfd-hugetlb")

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self):
        """Free the collector's metadata, unmap every view and free the backing. Idempotent.

        Safe from any thread and from a signal handler: a call in progress on another thread finishes
        first, and threads that use the heap afterwards get HeapClosedError. Inside one of this heap's
        callbacks (a signal handler may run there) the C heap closes when the call that ran the
        callback returns, and only then is the memory unmapped.
        """
        if self._closed:
            return
        self._closed = True
        _live_heaps.discard(self)
        with Cleanup() as cleanup:  # a log that cannot be written must not keep the memory mapped
            cleanup.run(self._log_exit)
            cleanup.run(self._close_native)

    def _log_exit(self):
        """The JDK's exit summary (gc,heap,exit), once, with the heap's figures as it closes. Not from
        a forked child (the heap and its log are the parent's), and not when the close comes from
        inside one of this heap's callbacks on this thread (a listener, or a signal handler during a
        collection): the call that ran it is still under way, and the heap is not at rest."""
        log, ptr = self._core.gclog, self._ptr
        if self._forked or ptr == ffi.NULL or not log.wants_exit or self._core.calling_back == threading.get_ident():
            return
        from .heapsummary import read_summary

        lib.mh_lock(ptr)  # no collection (nor a zgc pause) between the figures
        try:
            # the cycles zgc's GC thread finished are logged first, as the JDK's precede its summary
            lib.mh_drain_events(ptr)
            if self._ptr == ffi.NULL:  # a listener closed the heap meanwhile
                return
            summary = read_summary(self)
        finally:
            lib.mh_unlock(ptr)
        log.log_exit(summary)

    def _close_native(self):
        if self._refcore is not None:
            self._refcore.close()  # the C-level Refs refuse from now on
        ptr, self._ptr = self._ptr, ffi.NULL
        if ptr != ffi.NULL and not self._forked:
            if lib.mh_heap_close(ptr) == lib.MH_CLOSE_DEFERRED:
                self._close_deferred = True  # _raise finishes when the interrupted call fails
                return
        self._finish_close()

    def _finish_close(self):
        record = self._record
        if self._close_deferred and record != ffi.NULL and not self._forked:
            # Closed inside a callback: the C heap closes when the call that ran the callback ends,
            # and until then that call (and zgc's GC thread) still use the memory. Whatever uses the
            # heap later in the same callback (another listener, the signal handler's next line)
            # lands here: unmap only once the C heap is closed (now, if that call has ended).
            if lib.mh_heap_close(record) == lib.MH_CLOSE_DEFERRED:
                return
        self._close_deferred = False
        with Cleanup() as cleanup:  # every step, then the first failure
            if not self._forked:
                cleanup.run(self._release_memory)
            cleanup.run(self._core.gclog.close)

    def _release_memory(self):
        """Unmap the views, then free the backing, even when an unmap fails (raised afterwards)."""
        with Cleanup() as cleanup:
            if self.layout is not None:
                cleanup.run(self.layout.close)
            if self.backend is not None:
                cleanup.run(self.backend.close)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if not hasattr(self, "_record"):  # __init__ never got far enough to own anything
            return
        try:
            if not self._closed and not self._forked:
                warnings.warn(f"unclosed heap {self!r}: call close() or use 'with Heap(...) as heap:'",
                              ResourceWarning, stacklevel=2, source=self)
            try:
                self.close()
            except Exception:  # (the exit summary's write, say): the heap is released all the same
                pass
            if self._close_deferred:
                self._finish_close()
            # No thread can be inside a call now (each would hold a reference to this Heap).
            record, self._record = self._record, ffi.NULL
            if record != ffi.NULL and not self._forked:
                lib.mh_heap_free(record)
        except Exception:
            pass

    def __repr__(self):
        state = "closed" if self._closed else f"{self.config.backend}, {self.config.mapping}"
        return f"<Heap {self.config.heap_size >> 20}M ({state})>"

    # -- one owner -------------------------------------------------------------------------------
    def __copy__(self):
        raise TypeError("a Heap cannot be copied: it owns its memory and C heap; create another "
                        "Heap(heap.config) for an independent, empty heap")

    def __deepcopy__(self, memo):
        raise TypeError("a Heap cannot be deep-copied: it owns its memory and C heap; create another "
                        "Heap(heap.config) for an independent, empty heap")

    def __reduce_ex__(self, protocol):
        raise TypeError("a Heap cannot be pickled: its objects live in memory mapped by this process; "
                        "pickle heap.config instead and build a new Heap from it")

    # -- errors ----------------------------------------------------------------------------------
    def _check_open(self):
        if self._ptr == ffi.NULL:
            self._raise()

    def _error_message(self):
        return ffi.string(lib.mh_last_error_message(self._ptr)).decode(errors="replace")

    def _raise(self, ref=None):
        """Turn the C heap's last error (or a closed/forked state) into the right exception."""
        if self._forked:
            raise ForkedHeapError("this heap was created in the parent process before fork(); a child "
                                  "must not use it (its memory is shared with the parent): create a new "
                                  "Heap in the child")
        if self._close_deferred:  # closed inside a callback of the call that just failed
            self._finish_close()
        self._core.raise_pending()  # what a callback could not raise (a signal's exception)
        if self._closed or self._ptr == ffi.NULL:
            raise HeapClosedError("the heap is closed: its objects and Refs can no longer be used; "
                                  "create a new Heap")
        if ref is not None and ref._h < 0:
            raise ReleasedRefError("this Ref was released (release() or the end of its with-block); "
                                   "keep another Ref to the object if you still need it")
        code = lib.mh_last_error(self._ptr)
        message = self._error_message()
        if code == lib.MH_E_EXHAUSTED:
            raise HeapExhaustedError(message)
        if code == lib.MH_E_COMMIT:
            cause, self._core.commit_error = self._core.commit_error, None
            raise CommitError(f"{message}: {cause}" if cause else message) from cause
        if code in (lib.MH_E_BAD_SLOT, lib.MH_E_TOO_LARGE):
            raise IndexError(message) if code == lib.MH_E_BAD_SLOT else ValueError(message)
        if code == lib.MH_E_BAD_HANDLE:
            # Every Ref this call passed was live when it was read: another thread released one while
            # this call waited for the heap (a store's value, say). The core's sentence speaks of C.
            raise ReleasedRefError("a Ref this call used was released by another thread while the call "
                                   "waited for the heap; a Ref must not be released while another thread "
                                   "still uses it (keep a copy() per thread)")
        if code == lib.MH_E_NO_HANDLES:  # the core names its C call; a Python program drops Refs instead
            message = message.replace("(mh_release)", "(every live Ref holds one: drop the Refs you no "
                                                      "longer need, or call their release())")
        if code == lib.MH_E_BUSY:  # the core's sentence names its C calls; say it in this API's words
            if "on_gc" in message:
                message = ("the heap is reporting a collection: a gc listener may read the heap (verify(), "
                           "ref.data, len(ref), stats) and drop Refs, but not allocate, collect, store or "
                           "load; do that after the listener has returned")
            else:
                message = ("the heap is busy with a collection: a backend's commit or uncommit ran code "
                           "that called back into the heap (only stats may be read there, and Refs "
                           "dropped); do that after the collection has returned")
        raise MiniheapError(message or f"miniheap error {code}")


class Payload:
    """The payload bytes of one object, read and written through the heap on every access.

    Not a memoryview: the collector moves objects, so a buffer kept across an allocation (or across
    another thread's call) would point at the object's old copy. Each access copies under the heap's
    lock from where the object is now. Supports ``len``, indexing and slicing
    (``ref.data[:4] = b"abcd"``), ``bytes(ref.data)``.
    """

    __slots__ = ("_ref",)

    def __init__(self, ref):
        self._ref = ref

    def __len__(self):
        ref = self._ref
        n = lib.mh_nbytes(ref._heap._ptr, ref._h)
        if n < 0:
            ref._heap._raise(ref)
        return n

    def _read(self, offset, length):
        buf = bytearray(length)
        if length:
            ref = self._ref
            if lib.mh_read_payload(ref._heap._ptr, ref._h, offset, ffi.from_buffer(buf), length):
                ref._heap._raise(ref)
        return bytes(buf)

    def _write(self, offset, data):
        if len(data):
            ref = self._ref
            if lib.mh_write_payload(ref._heap._ptr, ref._h, offset, ffi.from_buffer(data), len(data)):
                ref._heap._raise(ref)

    def __getitem__(self, index):
        n = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step != 1:
                return self._read(0, n)[index]
            return self._read(start, max(0, stop - start))
        return self._read(_payload_index(index, n), 1)[0]

    def __setitem__(self, index, value):
        n = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            value = _bytes_like(value)
            if step != 1 or len(value) != max(0, stop - start):
                raise ValueError(f"payload slice [{start}:{stop}] holds {max(0, stop - start)} bytes, "
                                 f"got {len(value)}: the payload cannot grow or shrink "
                                 f"(its size {n} is fixed at alloc)")
            self._write(start, value)
        else:
            if not isinstance(value, int) or not 0 <= value < 256:
                raise ValueError(f"a payload byte is an int from 0 to 255, not {value!r}")
            self._write(_payload_index(index, n), bytes((value,)))

    def __bytes__(self):
        return self._read(0, len(self))

    tobytes = __bytes__

    def __eq__(self, other):
        # bytes(5) is five zero bytes: only bytes-like values (and payloads) compare, never ints
        if isinstance(other, Payload):
            return bytes(self) == bytes(other)
        try:
            other = memoryview(other).cast("B")
        except TypeError:
            return NotImplemented
        return bytes(self) == other

    __hash__ = None  # the bytes change under it

    def __repr__(self):
        return f"<Payload {bytes(self)!r}>"


def _bytes_like(value):
    """A payload write's value as a flat byte view. bytes(5) would be five zero bytes, so an int (or any
    object without the buffer protocol) is refused rather than converted."""
    if isinstance(value, Payload):
        return bytes(value)
    try:
        return memoryview(value).cast("B")
    except TypeError:
        raise TypeError(f"payload bytes are written from a bytes-like object (bytes, bytearray, "
                        f"memoryview), not {type(value).__name__}: e.g. ref.data[0:2] = b'hi'; to set "
                        f"one byte use ref.data[i] = 7") from None


def _payload_index(index, n):
    if not isinstance(index, int):
        raise TypeError(f"payload indices are ints or slices, not {type(index).__name__}")
    if not -n <= index < n:
        raise IndexError(f"payload index {index} out of range: the payload has {n} bytes")
    return index % n


Ref = _ref.Ref


# The methods of Ref written in Python, attached to the C type after the class body.
class _RefMethods:
    """A handle to one object of a heap. Compare with ``==`` (same object), never with addresses.

    ``ref[i]`` loads reference slot i (a new Ref, or None), ``ref[i] = other`` stores with the write
    barrier, ``ref.data`` is the payload. Released when garbage-collected by Python, by ``release()``,
    or at the end of ``with ref:``.
    """

    def _fail_slot(self, slot):
        if type(slot) is not int:
            raise TypeError(f"reference slots are indexed by int, not {type(slot).__name__}")
        if not 0 <= slot < 2**32:
            raise IndexError(f"reference slot {slot} out of range: slots are numbered from 0 to nrefs-1")
        self._heap._raise(self)

    def _fail_released_value(self, slot):
        raise ReleasedRefError(f"cannot store a released Ref into slot {slot}")

    def _fail_store_value(self, value):
        if isinstance(value, Ref):
            raise ForeignRefError("this Ref belongs to another heap: a slot can only refer to an object "
                                  "of its own heap")
        raise TypeError(f"a reference slot holds a Ref of the same heap or None, not "
                        f"{type(value).__name__}; put bytes in the payload (ref.data) instead")

    def __eq__(self, other):
        if type(other) is not Ref:
            return NotImplemented
        if other._heap is not self._heap:
            return False
        same = lib.mh_same(self._heap._ptr, self._h, other._h)
        if same < 0:
            self._heap._raise(self if self._h < 0 else other)
        return same == 1

    __hash__ = None  # objects move: no address-based hash would stay valid

    def __len__(self):
        return self.nrefs

    def __bool__(self):
        # A Ref always names an object (a null slot loads as None), whatever its number of slots.
        return True

    @property
    def nrefs(self):
        n = lib.mh_nrefs(self._heap._ptr, self._h)
        if n < 0:
            self._heap._raise(self)
        return n

    @property
    def data(self):
        return Payload(self)

    @data.setter
    def data(self, value):
        Payload(self)[:] = value

    @property
    def pointer(self):
        """The object's reference as the heap stores it, 64 raw bits (the load barrier's input). Three
        coloured views: the address in the view of its colour. One view with zgc (JDK 21+'s layout):
        address << 16 | colour bit. Otherwise the address. Changes when the object moves."""
        ref = lib.mh_handle_ref(self._heap._ptr, self._h)
        if not ref:
            self._heap._raise(self)
        return ref

    @property
    def address(self):
        """The object's current address: its pointer decoded as every load decodes it (with three
        coloured views, an address in its colour's view). Changes when it moves."""
        addr = lib.mh_ref_address(self._heap._ptr, self.pointer)
        if not addr:
            self._heap._raise(self)
        return addr

    @property
    def age(self):
        a = lib.mh_age(self._heap._ptr, self._h)
        if a < 0:
            self._heap._raise(self)
        return a

    @property
    def space(self):
        """Where the object lives now: eden, survivor, old or humongous."""
        s = lib.mh_space_of(self._heap._ptr, self._h)
        if s < 0:
            self._heap._raise(self)
        return SPACE_NAMES[s]

    @property
    def released(self):
        return self._h < 0

    @property
    def heap(self):
        return self._heap

    def copy(self):
        """Another Ref to the same object (released independently)."""
        heap = self._heap
        h = lib.mh_dup(heap._ptr, self._h)
        if h < 0:
            heap._raise(self)
        return heap._refcore.wrap(h)

    def release(self):
        """Drop this root now. Using the Ref afterwards raises ReleasedRefError. Idempotent."""
        h, self._h = self._h, -4
        heap = self._heap
        if h >= 0 and heap._ptr != ffi.NULL:
            _mh_release(heap._ptr, h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    # -- one owner per handle --------------------------------------------------------------------
    def __copy__(self):
        return self.copy()  # an independent handle to the same object

    def __deepcopy__(self, memo):
        raise TypeError("a Ref cannot be deep-copied: its object lives in the heap, which is not "
                        "copied; use ref.copy() for another Ref to the same object")

    def __reduce_ex__(self, protocol):
        raise TypeError("a Ref cannot be pickled: it names an object in this process's heap; pickle "
                        "the payload (bytes(ref.data)) instead")

    def __repr__(self):
        if self._heap is None:  # Ref.__new__(Ref) alone: owns nothing
            return "<Ref uninitialised>"
        if self._h < 0:
            return "<Ref released>"
        if self._heap._ptr == ffi.NULL:
            return "<Ref of a closed heap>"
        return f"<Ref {self.address:#x} refs={self.nrefs} data={len(self.data)}B {self.space}>"


for _name, _value in vars(_RefMethods).items():
    if not _name.startswith("__") or _name in ("__eq__", "__hash__", "__len__", "__bool__", "__enter__",
                                               "__exit__", "__repr__", "__copy__", "__deepcopy__",
                                               "__reduce_ex__"):
        setattr(Ref, _name, _value)
Ref.__doc__ = _RefMethods.__doc__
del _name, _value


# -- callbacks from the C heap ---------------------------------------------------------------------

class _Window(collections.deque):
    """The latest items, bounded; indexes and slices as a list does (``events[-5:]``)."""

    def __getitem__(self, index):
        if isinstance(index, slice):
            return list(self)[index]
        return super().__getitem__(index)


class _Embedder:
    """The C heap's embedder: what its callbacks (commit, uncommit, on_gc) need, and nothing more.

    ``ffi.new_handle`` keeps this object alive while the C heap lives. It holds no reference to the
    ``Heap``, so the Heap is freed by reference counting as soon as the program drops it (no cycle
    waiting for Python's cyclic collector).

    An exception raised inside a callback (by the backend, or by a signal handler that Python runs
    there: KeyboardInterrupt, a timeout) cannot unwind through C. It is kept in ``pending`` and raised
    by the Heap when the call that ran the callback returns; a commit that raised has failed.
    """

    __slots__ = ("backend", "gclog", "events", "pauses_ns", "listeners", "started", "commit_error", "pending",
                 "ptr", "calling_back",
                 "__weakref__")

    def __init__(self, gclog, started, history=None):
        self.ptr = None  # the C heap, once built: a callback interrupts the call that ran it
        self.backend = None
        self.gclog = gclog
        self.events = _Window(maxlen=history)  # maxlen None: every one (opt-in)
        self.pauses_ns = collections.deque(maxlen=history)
        self.listeners = []
        self.started = started
        self.commit_error = None
        self.pending = None
        self.calling_back = None  # the thread running one of the callbacks below, if one is

    def keep(self, exc):
        """Remember the first exception a callback could not raise, and make the call that ran the
        callback fail (MH_E_INTERRUPTED), so the Heap raises it as soon as the call returns."""
        if self.pending is None:
            self.pending = exc
        if self.ptr is not None:
            lib.mh_interrupt(self.ptr)

    def raise_pending(self):
        exc, self.pending = self.pending, None
        if exc is not None:
            raise exc


def _backend_call(ctx, method, offset, length):
    core = ffi.from_handle(ctx)
    outer, core.calling_back = core.calling_back, threading.get_ident()
    try:
        getattr(core.backend, method)(offset, length)
        return 0
    except (MiniheapError, SyscallError) as e:  # the backend failed: C reports MH_E_COMMIT with this cause
        core.commit_error = e
        return -1
    except BaseException as e:  # anything else (KeyboardInterrupt, a timeout): raised as it is
        core.keep(e)
        return -1
    finally:
        core.calling_back = outer


def _escaped(kind, exc, tb):
    """cffi's onerror for the callbacks below: an exception that escaped one. Each catches what it
    raises, but a signal that arrived while C ran has its Python handler run at the callback's very
    first instruction, before its ``try``: a Ctrl-C there was printed as "Exception ignored" and lost.
    It is kept as any other (raised once the call has returned, which fails); returning None leaves
    the callback's error value (a commit that raised has failed)."""
    ctx = tb.tb_frame.f_locals.get("ctx") if tb is not None else None
    if ctx is not None:
        ffi.from_handle(ctx).keep(exc)


# error=-1: should anything escape _backend_call, C sees a failed commit, never a success
@ffi.def_extern(error=-1, onerror=_escaped)
def mh_py_commit(ctx, offset, length):
    return _backend_call(ctx, "commit", offset, length)


@ffi.def_extern(error=-1, onerror=_escaped)
def mh_py_uncommit(ctx, offset, length):
    return _backend_call(ctx, "uncommit", offset, length)


@ffi.def_extern(onerror=_escaped)
def mh_py_on_gc(ctx, event):
    core = ffi.from_handle(ctx)
    outer, core.calling_back = core.calling_back, threading.get_ident()
    try:
        record = GCEvent(event, time.monotonic() - core.started, threading.current_thread().name, core.started)
        if record.zgc:
            core.pauses_ns.extend(p.duration_ns for p in record.phases if p.pause)
        else:
            core.pauses_ns.append(record.ns_total)
        core.events.append(record)
        core.gclog.log_event(record)
        for listener in core.listeners:
            listener(record)
    except BaseException as e:  # never unwind through C: raised once the call has returned
        core.keep(e)
    finally:
        core.calling_back = outer


def _open_gclog(config, started):
    from .config import ConfigError
    from .gclog import GCLog

    try:
        return GCLog.from_config(config, started)
    except OSError as e:  # one line, as every configuration mistake is
        path = config.gc_log_file
        folder = os.path.dirname(os.path.abspath(path))
        fix = (f"create the folder {folder} first" if not os.path.isdir(folder)
               else "choose a path you can write to")
        raise ConfigError(f"gc_log {config.gc_log!r}: cannot open {path} for writing ({e.strerror}): "
                          f"{fix}, or write gc_log = \"gc\" to log to standard output",
                          ("gc_log",)) from None
