"""The generational heap and its copying collector, through the public API, on every working backend.

Property tests build random object graphs (cycles, shared children, old-to-young links, payload bytes),
collect young and full many times, and compare the graph reachable from the roots with a pure-Python
model after every collection; heap.verify() runs after every collection too.
"""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from miniheap import HeapExhaustedError
from miniheap.backends import BACKENDS

from .conftest import LAYOUTS, SERIAL_LAYOUTS, require_backend, small_config
from .graphs import SERIAL, Model, heap_shape


def build_object(heap, model, serial, nrefs, extra):
    payload = SERIAL.pack(serial) + extra
    ref = heap.alloc(refs=nrefs, data=len(payload))
    ref.data[:] = payload
    model.add(serial, nrefs, payload)
    return ref


def link(refs, model, src, slot, dst):
    a = refs[src]
    slot %= max(1, a.nrefs)
    if a.nrefs == 0:
        return
    a[slot] = None if dst is None else refs[dst]
    model.objects[src][0][slot] = dst


def check(heap, model, roots):
    heap.verify()
    expected = model.shape([serial for serial, _ in roots])
    assert heap_shape([ref for _, ref in roots]) == expected


objects = st.lists(st.tuples(st.integers(0, 4), st.binary(max_size=40)), min_size=1, max_size=40)
edge = st.tuples(st.integers(0, 10**6), st.integers(0, 3), st.one_of(st.none(), st.integers(0, 10**6)))
graph = st.fixed_dictionaries({
    "old": objects, "young": objects,
    "old_edges": st.lists(edge, max_size=80), "young_edges": st.lists(edge, max_size=80),
    "cross_edges": st.lists(edge, max_size=40),  # old -> young, the card table's business
    "roots": st.lists(st.integers(0, 10**6), max_size=8),
    "collections": st.lists(st.booleans(), min_size=1, max_size=6),
})


def run_graph(heap, g):
    model, refs = Model(), {}

    def make(batch, first):
        for i, (nrefs, extra) in enumerate(batch):
            refs[first + i] = build_object(heap, model, first + i, nrefs, extra)
        return list(range(first, first + len(batch)))

    def wire(edges, sources, targets):
        for src, slot, dst in edges:
            link(refs, model, sources[src % len(sources)], slot,
                 None if dst is None else targets[dst % len(targets)])

    old = make(g["old"], 0)
    wire(g["old_edges"], old, old)
    for _ in range(heap.config.tenuring_threshold + 1):  # age the first batch into the old generation
        heap.collect()
    young = make(g["young"], 10_000)
    wire(g["young_edges"], young, young + old)
    wire(g["cross_edges"], old, young)

    everything = old + young
    keep = sorted({everything[r % len(everything)] for r in g["roots"]})
    roots = [(s, refs[s]) for s in keep]
    for s, ref in refs.items():  # drop every other Ref: only the chosen roots stay
        if s not in keep:
            ref.release()
    for full in g["collections"]:
        heap.collect(full=full)
        check(heap, model, roots)
    heap.collect(full=True)
    check(heap, model, roots)
    reachable = model.reachable_bytes(keep)
    used = heap.occupancy()["total"]
    assert used >= reachable
    for _, ref in roots:
        ref.release()
    heap.collect(full=True)
    heap.verify()
    assert heap.occupancy()["total"] == 0, "unreachable objects were not reclaimed"


@pytest.mark.parametrize("mapping", LAYOUTS)
@pytest.mark.parametrize("backend", list(BACKENDS))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=graph)
def test_random_graphs_survive_collections(backend, mapping, g):
    require_backend(backend)
    from miniheap.heap import Heap

    with Heap(small_config(backend, mapping)) as heap:
        run_graph(heap, g)


# -- one test per mechanism ---------------------------------------------------------------------

def test_survivors_age_and_are_promoted_at_the_threshold(make_heap):
    heap = make_heap()
    obj = heap.alloc(refs=1, data=8)
    assert obj.space == "eden" and obj.age == 0
    # As in HotSpot: a survivor whose age has reached the threshold is promoted by the next collection.
    for age in range(1, heap.config.tenuring_threshold + 1):
        heap.collect()
        assert (obj.space, obj.age) == ("survivor", age)
    heap.collect()
    assert obj.space == "old"
    assert heap.stats.bytes_promoted > 0
    heap.verify()


def test_survivor_overflow_promotes_early(make_heap):
    heap = make_heap()
    survivor = heap.config.young_size // (heap.config.survivor_ratio + 2)
    keep = [heap.alloc(refs=0, data=1000) for _ in range(int(1.5 * survivor) // 1016)]
    heap.collect()
    spaces = {r.space for r in keep}
    assert spaces == {"survivor", "old"}, spaces
    assert heap.events[-1].survivor_overflow_bytes > 0
    assert all(r.age <= 1 for r in keep)
    heap.verify()


def test_old_to_young_reference_is_found_through_the_card_table(make_heap):
    heap = make_heap()
    parent = heap.alloc(refs=4, data=0)
    heap.collect(full=True)  # a full collection promotes every young survivor
    assert parent.space == "old"
    child = heap.alloc(refs=0, data=16)
    child.data[:5] = b"child"
    parent[2] = child
    child.release()  # now only the old object keeps the child alive
    heap.collect()
    assert heap.events[-1].cards_scanned >= 1
    got = parent[2]
    assert got is not None and got.data[:5] == b"child"
    assert got.space == "survivor"
    heap.verify()


def test_exhausted_heap_raises_and_stays_usable(make_heap):
    heap = make_heap()
    head = heap.alloc(refs=1, data=0)
    node = head.copy()
    with pytest.raises(HeapExhaustedError) as e:
        for _ in range(10**6):
            nxt = heap.alloc(refs=1, data=1024)
            node[0] = nxt
            node.release()
            node = nxt
    assert "heap" in str(e.value)
    heap.verify()
    node.release()
    head.release()
    heap.collect(full=True)
    assert heap.occupancy()["total"] == 0
    again = heap.alloc(refs=2, data=64)  # usable again
    again[0] = again
    assert again[0] == again
    heap.verify()


def test_large_objects_live_in_the_old_generation(make_heap):
    heap = make_heap()
    big = heap.alloc(refs=2, data=heap.config.region_size)  # more than a region: humongous
    assert big.space == "humongous"
    big.data[-3:] = b"end"
    small = heap.alloc(refs=0, data=8)
    big[1] = small
    small.release()
    heap.collect()
    heap.collect(full=True)
    assert big.data[-3:] == b"end" and big[1] is not None
    heap.verify()
    big.release()
    heap.collect(full=True)
    assert heap.occupancy()["total"] == 0


def test_an_object_larger_than_the_heap_is_refused(make_heap):
    heap = make_heap()
    with pytest.raises((ValueError, HeapExhaustedError)) as e:
        heap.alloc(refs=0, data=2 * heap.config.heap_size)
    assert "heap" in str(e.value)
    heap.alloc(refs=0, data=8)


def test_stats_report_copying_and_pauses(make_heap):
    heap = make_heap()
    keep = [heap.alloc(refs=1, data=100) for _ in range(100)]
    heap.collect()
    s = heap.stats
    assert s.young_collections == 1 and s.bytes_copied >= 100 * 116
    assert len(s.pauses_ms) == 1 and s.pause_total_ms > 0
    heap.collect(full=True)
    assert heap.stats.full_collections == 1
    assert heap.events[-1].full
    del keep


def test_garbage_is_reclaimed_by_a_young_collection(make_heap):
    heap = make_heap()
    for _ in range(1000):
        heap.alloc(refs=1, data=64)  # dropped at once: garbage
    before = heap.occupancy()["eden"]
    heap.collect()
    assert before > 0 and heap.occupancy()["total"] == 0


def test_gc_log_lines_parse_like_the_jdks(tmp_path):
    from miniheap.gclog import JDK_GC_LINE_RE
    from miniheap.heap import Heap

    log = tmp_path / "gc.log"
    with Heap(small_config(gc_log=f"gc:file={log}")) as heap:
        keep = heap.alloc(refs=64)
        for i in range(20_000):
            keep[i % 64] = heap.alloc(refs=1, data=200)
        heap.collect(full=True)
        collections = heap.stats.collections
    pauses = [line for line in log.read_text().splitlines() if " Pause " in line]
    assert len(pauses) == collections >= 3
    for line in pauses:
        assert JDK_GC_LINE_RE.search(line), line
    assert "Pause Young (Allocation Failure)" in pauses[0] and "Pause Full (System.gc())" in pauses[-1]
    # and the same expression reads the real JDK 17 SerialGC log kept as a fixture
    import pathlib

    fixture = pathlib.Path(__file__).parent / "data" / "serialgc-jdk17.log"
    jdk = [line for line in fixture.read_text().splitlines() if " Pause " in line]
    assert jdk and all(JDK_GC_LINE_RE.search(line) for line in jdk)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_pretouch_commits_and_touches_the_whole_heap_and_keeps_it(make_heap, backend):
    from miniheap import memory

    heap = make_heap(backend, pretouch=True)
    size = heap.config.heap_size
    assert heap.stats.regions_committed == size // heap.config.region_size
    assert any("MADV_POPULATE_WRITE" in line and str(size) in line for line in heap.trace.lines)
    if backend in ("memfd", "memfd-hugetlb", "shm-mremap"):
        assert heap.backend.physical_bytes() == size
    main = heap.views[0]
    vmas = memory.read_smaps()
    usage = memory.usage_of(main, vmas)
    touched = usage.hugetlb if backend == "memfd-hugetlb" else usage.rss
    assert touched >= size - (64 << 10), f"only {touched} of {size} bytes touched"
    keep = [heap.alloc(refs=1, data=2000) for _ in range(1000)]
    del keep
    heap.collect(full=True)  # frees regions, which stay committed
    assert heap.stats.regions_committed == size // heap.config.region_size
    heap.verify()


def test_region_map_follows_the_generations(make_heap):
    heap = make_heap()
    young = heap.config.young_size // heap.config.region_size
    survivors = young // (heap.config.survivor_ratio + 2)
    eden = young - 2 * survivors
    assert heap.region_map() == "e" * eden + "ss" + "." * (len(heap.regions()) - young)
    keep = heap.alloc(refs=0, data=100)
    assert heap.region_map()[0] == "E"
    heap.collect(full=True)  # promotes keep: one old region in use, eden empty again
    m = heap.region_map()
    assert m[:eden] == "e" * eden and m[young:].count("O") == 1 and keep.space == "old"
    big = heap.alloc(refs=0, data=3 * heap.config.region_size)  # humongous: H then h h h
    assert "Hhhh" in heap.region_map()
    del big


def make_chain(heap, n, nbytes, first):
    """n objects, each slot 0 referring to the one made before; returns the last (the head)."""
    prev = None
    for i in range(n):
        obj = heap.alloc(refs=1, data=nbytes)
        obj.data[:8] = SERIAL.pack(first + i)
        obj[0] = prev
        prev = obj
    return prev


def chain_serials(head):
    serials, node = [], head
    while node is not None:
        serials.append(SERIAL.unpack(node.data[:8])[0])
        node = node[0]
    return serials


@pytest.mark.parametrize("mapping", SERIAL_LAYOUTS)
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_promotion_failure_is_recovered_by_a_full_collection(make_heap, backend, mapping, tmp_path):
    """Old is full of garbage a young collection cannot see (unreachable humongous objects) and the
    young survivors overflow the survivor space: the young collection is attempted (nothing was ever
    promoted, so the padded average is 0), promotion fails, the objects that could not be copied stay
    in young, and a full collection follows, as in JDK 17 ("Promotion failed", then "Pause Full")."""
    log = tmp_path / "gc.log"
    heap = make_heap(backend, mapping, gc_log=f"gc*:file={log}")
    c = heap.config
    old_regions = (c.heap_size - c.young_size) // c.region_size
    big = [heap.alloc(data=c.region_size * 3 // 5) for _ in range(old_regions)]  # one region each
    assert heap.occupancy()["old"] >= old_regions * c.region_size * 3 // 5
    heap.verify()
    eden = sum(1 for _, state, _ in heap.regions() if state == "eden") * c.region_size
    nbytes = 504
    n = int(eden * 0.4) // (8 + 8 + nbytes)  # two chains: 80% of eden, more than a survivor space
    one = make_chain(heap, n, nbytes, 0)
    two = make_chain(heap, n, nbytes, 1_000_000)
    heap.verify()
    for b in big:
        b.release()
    heap.verify()
    assert heap.stats.collections == 0
    heap.collect()
    heap.verify()
    failed = [e for e in heap.events if e.promotion_failed_objects]
    assert len(failed) == 1, [(e.kind, e.promotion_failed_objects) for e in heap.events]
    after = heap.events[heap.events.index(failed[0]) + 1]
    assert after.full and after.id == failed[0].id + 1 and after.cause == failed[0].cause
    assert failed[0].promotion_failed_bytes > 0 and failed[0].survivor_overflow_bytes > 0
    assert heap.occupancy()["eden"] == 0 and heap.occupancy()["survivor"] == 0
    assert chain_serials(one) == list(range(n - 1, -1, -1))
    assert chain_serials(two) == list(range(1_000_000 + n - 1, 999_999, -1))
    assert one.space == "old"
    heap.verify()
    # the heap goes on as before: ordinary young collections again
    three = make_chain(heap, 100, 64, 2_000_000)
    heap.collect()
    heap.verify()
    assert not heap.events[-1].full and heap.events[-1].promotion_failed_objects == 0
    assert chain_serials(three)[-1] == 2_000_000
    heap.close()
    text = log.read_text()
    assert f"GC({failed[0].id}) Promotion failed" in text
    assert f"GC({after.id}) Pause Full (System.gc())" in text
