"""A stateful model test: random sequences of allocate, store, load, drop, write payload and collect,
compared step by step with a pure-Python model of the object graph, on every backend and layout, and
with the zgc collector on every backend while its GC thread cycles continuously (a cycle every
millisecond: marking and relocation run between and during the machine's steps).

MINIHEAP_MODEL_EXAMPLES raises the number of sequences (the sanitizer stage of .ci/run uses more).
"""
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, precondition, rule

from miniheap.backends import BACKENDS
from miniheap.heap import Heap

from .conftest import LAYOUTS, ZGC_ONE_VIEW, probe, small_config
from .graphs import SERIAL, Model, heap_shape, serial_of

EXAMPLES = int(os.environ.get("MINIHEAP_MODEL_EXAMPLES", "12"))


class HeapMachine(RuleBasedStateMachine):
    backend = "memfd"
    mapping = "none"
    overrides = {}
    roots = Bundle("roots")

    def __init__(self):
        super().__init__()
        self.heap = Heap(small_config(self.backend, self.mapping, **self.overrides))
        self.model = Model()
        self.live = {}  # id(Ref) -> (Ref, serial): the roots Python holds
        self.serial = 0

    def teardown(self):
        self.heap.close()

    def _hold(self, ref, serial):
        self.live[id(ref)] = (ref, serial)
        return ref

    @rule(target=roots, nrefs=st.integers(0, 5), extra=st.binary(max_size=48))
    def allocate(self, nrefs, extra):
        self.serial += 1
        payload = SERIAL.pack(self.serial) + extra
        ref = self.heap.alloc(refs=nrefs, data=len(payload))
        ref.data[:] = payload
        self.model.add(self.serial, nrefs, payload)
        return self._hold(ref, self.serial)

    @rule(src=roots, slot=st.integers(0, 4), dst=st.one_of(st.none(), roots))
    def store(self, src, slot, dst):
        if id(src) not in self.live or (dst is not None and id(dst) not in self.live):
            return
        serial = self.live[id(src)][1]
        slots = self.model.objects[serial][0]
        if not slots:
            return
        slot %= len(slots)
        src[slot] = dst
        slots[slot] = None if dst is None else self.live[id(dst)][1]

    @rule(target=roots, src=roots, slot=st.integers(0, 4))
    def load(self, src, slot):
        if id(src) not in self.live:
            return src
        slots = self.model.objects[self.live[id(src)][1]][0]
        if not slots:
            return src
        slot %= len(slots)
        got = src[slot]
        want = slots[slot]
        assert (got is None) == (want is None)
        if got is None:
            return src
        assert serial_of(got) == want
        return self._hold(got, want)

    @rule(ref=consumes(roots))
    def drop(self, ref):
        if id(ref) in self.live:
            del self.live[id(ref)]
            ref.release()

    @rule(ref=roots, offset=st.integers(0, 47), data=st.binary(min_size=1, max_size=8))
    def write_payload(self, ref, offset, data):
        if id(ref) not in self.live:
            return
        serial = self.live[id(ref)][1]
        payload = bytearray(self.model.objects[serial][1])
        start = 8 + offset
        data = data[: max(0, len(payload) - start)]
        if not data:
            return
        ref.data[start:start + len(data)] = data
        payload[start:start + len(data)] = data
        self.model.objects[serial][1] = bytes(payload)

    @rule(full=st.booleans())
    def collect(self, full):
        self.heap.collect(full=full)
        self.heap.verify()
        refs = [ref for ref, _ in self.live.values()]
        assert heap_shape(refs) == self.model.shape([serial for _, serial in self.live.values()])

    @precondition(lambda self: self.live)
    @invariant()
    def roots_hold_their_objects(self):
        for ref, serial in self.live.values():
            assert serial_of(ref) == serial


def _machine(backend, mapping, **overrides):
    name = f"HeapMachine_{backend}_{mapping}{'_cycling' if overrides else ''}".replace("-", "_")
    machine = type(name, (HeapMachine,), {"backend": backend, "mapping": mapping, "overrides": overrides})
    case = machine.TestCase
    case.settings = settings(max_examples=EXAMPLES, stateful_step_count=40, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])
    works = probe(backend).works
    if not works:
        import unittest

        case = unittest.skip(f"backend {backend} unavailable: {probe(backend).why}")(case)
    return case


for _backend in BACKENDS:
    for _mapping in LAYOUTS:
        if _mapping == ZGC_ONE_VIEW:
            continue  # below, with its GC thread cycling
        _case = _machine(_backend, _mapping)
        globals()[f"TestModel_{_backend}_{_mapping}".replace("-", "_")] = _case
    # zgc, its GC thread cycling continuously (the director's Timer rule every millisecond)
    _case = _machine(_backend, "colored", collector="zgc", gc_interval=0.001)
    globals()[f"TestModel_{_backend}_zgc".replace("-", "_")] = _case
    # zgc with one view, the colour in the pointer's low bits (JDK 21+'s layout), cycling the same way
    _case = _machine(_backend, ZGC_ONE_VIEW, gc_interval=0.001)
    globals()[f"TestModel_{_backend}_zgc_one_view".replace("-", "_")] = _case
# zgc with verify-views (only the good colour's view accessible): a load through a stale view faults
TestModel_memfd_zgc_verify_views = _machine("memfd", "colored", collector="zgc", gc_interval=0.001,
                                            verify_views=True)
del _backend, _mapping, _case
