"""barrier: what the load barrier costs per load, in each of the layouts a reference can have.

A dependent pointer chase (native/bench/barrierbench.c) around a ring of small objects that fits the
L1 cache, through the inline fast path's load (mh_get), on three heaps of the same size:

* serial, one view: a reference is the address; mh_get still tests it against the record's bad mask,
  which is 0 (the branch is never taken);
* zgc, three views (JDK 11-23's multi-mapping): the same AND test against the bad colour bits; the
  reference is an address in its colour's view, dereferenced as it is;
* zgc, one view (JDK 21+'s layout): the same AND test, and a shift (ref >> 16) that strips the colour
  before each dereference.

The peer is the same chase over a malloc'd copy of the ring through plain C pointers. Each load's
address is the previous load's result, so everything between two loads is on the critical path: the
figures are the latency of one load plus its barrier, in ns, and the ratio to the plain chase. Nothing
is stale during the timed chase (the slow-path count is reported and should be 0).
"""
from .common import BenchFailed, Clock, Metric, Result, Unavailable, close_heap, native, native_heap, ratio

NAME = "barrier"
TITLE = "Load barrier cost per load: one view, three coloured views, colour in the low bits"

NODES = 512          # 512 objects of 24 bytes (header, slot, payload): 12 KiB, inside any L1 cache
FULL_LOADS = 50_000_000
QUICK_LOADS = 2_000_000

# (subject name, HeapConfig fields, the chase's barrier, what it measures)
LAYOUTS = (
    ("serial, no barrier", {"collector": "serial", "mapping": "none"}, "MH_BARRIER_NONE",
     "no load barrier (serial has none): load the slot, dereference the reference as it is"),
    ("zgc, three views", {"collector": "zgc", "mapping": "colored"}, "MH_BARRIER_TEST",
     "JDK 17's multi-mapping: ref & bad_mask, the reference dereferenced as it is"),
    ("zgc, one view (low bits)", {"collector": "zgc", "mapping": "none"}, "MH_BARRIER_TEST_SHIFT",
     "JDK 21+'s layout: ref & bad_mask, then address = ref >> 16 before the next load"),
    ("zgc, one view, mh_get", {"collector": "zgc", "mapping": "none"}, "MH_BARRIER_MH_GET",
     "miniheap-inline.h's mh_get, one code for every layout: (ref >> shift) + base from the mutator record"),
)
PLAIN = "plain C pointers"

METRICS = [
    Metric("ns_per_load", "ns per load", "{:.3f}"),
    Metric("of_plain", "ratio to the plain chase", "{:.2f}"),
    Metric("loads_slow", "slow-path loads while timed", "{:.0f}"),
]


def heap_config(fields):
    """The HeapConfig of one layout: small, its colour bits where the environment puts them (the
    sanitizer stage moves them below ASan's shadow with MINIHEAP_COLOR_BITS)."""
    from miniheap.config import HeapConfig

    cli = dict(heap_size="32M", region_size="2M", young_size="16M", gc_log="off", pretouch=False,
               backend="memfd", **fields)
    return HeapConfig.load(cli=cli).config


def measure(fields, kind, loads, nodes=NODES):
    """One chase on a fresh heap of the given layout with the given barrier (an MH_BARRIER_* name):
    (ns per load on the heap, ns per load through plain pointers, slow-path loads)."""
    from miniheap.heap import Heap

    ffi, lib = native()
    heap = Heap(heap_config(fields))
    try:
        result = ffi.new("mh_barrier_result *")
        if lib.mh_bench_barrier(native_heap(heap), getattr(lib, kind), nodes, loads, result) != 0 or not result.ok:
            raise BenchFailed(f"the chase failed: {ffi.string(result.error).decode(errors='replace')}")
    finally:
        close_heap(heap)
    return result.heap_ns / loads, result.plain_ns / loads, result.loads_slow


def measure_layouts(loads=QUICK_LOADS):
    """ns per load for each layout and for plain pointers (the median of the plain chases): what the
    demo and the tour print. A dict name -> ns."""
    out, plain = {}, []
    for name, fields, kind, _ in LAYOUTS[:3]:
        ns, plain_ns, _ = measure(fields, kind, loads)
        out[name] = ns
        plain.append(plain_ns)
    out[PLAIN] = sorted(plain)[len(plain) // 2]
    return out


def run(opts):
    loads = QUICK_LOADS if opts.quick else FULL_LOADS
    runs = opts.runs or (1 if opts.quick else 5)
    result = Result(NAME, TITLE, dict(nodes=NODES, loads=loads, runs=runs))
    result.metrics = METRICS
    try:
        native()
    except Unavailable as e:
        return result.unavailable(str(e))
    subjects = [(result.subject(name, description), fields, kind) for name, fields, kind, description in LAYOUTS]
    plain = result.subject(PLAIN, "the same ring in malloc'd memory, p = p->next: no barrier, no decode")
    clock = Clock(30 if opts.quick else 60)
    for i in range(runs):  # the layouts interleaved run by run, so a noisy machine hits them alike
        plain_ns = []
        for subject, fields, kind in subjects:
            ns, p_ns, slow = measure(fields, kind, loads)
            plain_ns.append(p_ns)
            subject.add(ns_per_load=ns, loads_slow=slow, of_plain=None)
            subject.samples["of_plain"][-1] = ratio(ns, p_ns)
        plain.add(ns_per_load=sorted(plain_ns)[len(plain_ns) // 2], of_plain=1.0, loads_slow=None)
        if i + 1 < runs and clock.spent():
            result.notes.append(f"stopped after {i + 1} of {runs} runs: time budget spent")
            break
    multi, low = subjects[1][0].median("ns_per_load"), subjects[2][0].median("ns_per_load")
    if multi and low:
        result.notes.append(f"colour in the low bits / three views: {low / multi:.2f} "
                            f"({(low - multi):+.3f} ns per load: the shift is on the chain from one load to the next)")
    result.notes.append("each ratio is against the plain chase of the same heap's run; the chase is latency-bound: "
                        "what computes the next address costs its latency, a predicted branch beside it almost nothing")
    return result
