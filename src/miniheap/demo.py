"""The teaching run: ``python examples/gc_demo.py`` (or ``python -m miniheap demo``).

Seven sections, each headed so a newcomer can follow: the configuration and where each value came from;
the system calls that built the heap; the heap's views in /proc/self/maps; one object read through
every view; a workload with the GC log streaming; memory at checkpoints, explained; a summary. With the
zgc collector an eighth puts its two layouts side by side: the same workload on three coloured views
(JDK 11-23) and on one view with the colour in the pointer's low bits (JDK 21+), their RSS against PSS
and what the load barrier costs per load in each.
"""
import sys
import textwrap
import time

from . import config as config_mod
from .cli import GuardedOutput, Progress, output_problems, quiet_on_broken_pipe
from .errors import BackendUnavailableError, CommitError, MiniheapError, ReservationError
from .oneline import OneLineParser
from .recording import Recorder

RULE = "=" * 78

# What `python examples/gc_demo.py` runs with no arguments: the subject of the lesson, ZGC's three
# coloured views of one memfd, touched through all three at start as JDK 17's -XX:+AlwaysPreTouch does
# (so RSS shows three times PSS). Each key yields to a --config file, a MINIHEAP_* variable or a flag.
# This is the one place to change the demo's subject (to the zgc collector, once it exists).
DEMO_DEFAULTS = {"mapping": "colored", "pretouch": True}
DEMO_SOURCE = config_mod.Source("demo", "DEMO_DEFAULTS")


def config_note(config) -> str:
    """The keys of section 1's table that this run does not use, so a learner does not look for their
    effect: zgc (JDK 17's) has no generations, serial has no colours or GC thread."""
    if config.collector == "zgc":
        note = ("young_size, survivor_ratio and tenuring_threshold apply to serial only: zgc (as JDK 17's ZGC) "
                "is not generational")
    else:
        note = "color_bits, verify_views and gc_interval apply to zgc only: serial has no colours and no GC thread"
    if config.mapping != "young-mirror":
        note += "; mirrors applies to mapping young-mirror only"
    return textwrap.fill(f"({note}.)", width=78)


def heading(number, title, out):
    print(f"\n{RULE}\n {number}. {title}\n{RULE}", file=out, flush=True)


def parse_args(argv, prog=None):
    p = OneLineParser(
        prog=prog, description="A guided run of miniheap: backends, views, collections, memory.",
        epilog="The same run as python -m miniheap demo and python examples/gc_demo.py.")
    config_mod.add_arguments(p, command_defaults=DEMO_DEFAULTS, command="demo")
    p.add_argument("--work", type=int, default=192, metavar="MB",
                   help="MiB the workload allocates, counted in the heap's object sizes (default 192)")
    p.add_argument("--fallback", action="store_true",
                   help="if the chosen backend cannot work here, warn and use memfd instead of exiting 2")
    out = p.add_argument_group("output files")
    out.add_argument("--html", metavar="FILE.html",
                     help="a report to open in a browser: the address space, the region map at every "
                          "collection with a slider, the timeline, memory over time, the GC log")
    out.add_argument("--trace-events", metavar="FILE.json",
                     help="Chrome trace-event JSON of the collections, their phases and memory: open it in "
                          "Perfetto (ui.perfetto.dev, Open trace file) or chrome://tracing")
    out.add_argument("--json", metavar="FILE",
                     help="the run's figures as JSON: config, collections in time order, views, memory, stats")
    out.add_argument("--plot", metavar="FILE.png",
                     help="a PNG of the heap by space, the pauses, memory per view and the regions over time "
                          "(needs matplotlib: pip install matplotlib, or pip install '.[plot]' from a checkout)")
    return p.parse_args(argv)


def load_config(args):
    """The configuration of the run: DEMO_DEFAULTS for every key that no file, variable or flag set
    (a collector or mapping the user chose takes the other with it), validated as one whole."""
    return config_mod.HeapConfig.from_args(args, command_defaults=DEMO_DEFAULTS, command_source=DEMO_SOURCE)


def check_outputs(args, config):
    """Problems with the files the run will write, found before the run: one line each."""
    problems = output_problems([("--json", args.json), ("--plot", args.plot), ("--html", args.html),
                                ("--trace-events", args.trace_events),
                                (f"gc_log {config.gc_log}", config.gc_log_file)])
    if args.plot:
        from . import plot

        if not plot.available():
            problems.append(f"--plot {args.plot}: matplotlib is not installed: {plot.INSTALL_ADVICE}, "
                            f"or leave out --plot")
    if args.work <= 0:
        problems.append(f"--work {args.work}: the workload must allocate at least 1 MB: give e.g. --work 192")
    if config.pretouch:
        from .memory import too_big_to_commit
        from .sizes import format_size

        big = too_big_to_commit(config.heap_size, f"pretouch of a {format_size(config.heap_size)} heap",
                                "lower --heap-size, or add --pretouch false to commit as the heap grows")
        if big:
            problems.append(big)
    return problems


def one_line(error):
    """An exception as one line: its own message (the cause is already in it), newlines folded."""
    return " ".join(str(error).split())


def heap_advice(config, error):
    """What to do about a heap that cannot be built, in a few words."""
    if isinstance(error, (BackendUnavailableError, CommitError)):
        return "run `python -m miniheap probe` to see every backend; add --fallback to use memfd instead"
    if isinstance(error, (OSError, ReservationError)) and "PROT_NONE" in str(error):
        from .sizes import format_size

        return (f"no free range of {format_size(config.heap_size)} in this process's address space "
                f"(x86-64 user space is 128T, shared with the program, libraries and stack): "
                f"choose a smaller --heap-size, e.g. 1G")
    return "lower --heap-size, or see python -m miniheap probe for what works here"


def open_heap(loaded, fallback, out):
    """Build the heap; explain in one line and exit 2 when it cannot be built, or fall back to memfd."""
    from .heap import Heap

    try:
        return Heap(loaded.config)
    except config_mod.ConfigError as e:  # found only when the heap is built (the GC log's folder)
        print(f"miniheap: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except (MiniheapError, OSError) as e:
        if fallback and loaded.config.backend != "memfd" and isinstance(
                e, (BackendUnavailableError, CommitError, ReservationError)):
            print(f"\nWARNING: {one_line(e)}\nWARNING: falling back to backend memfd (--fallback)", file=out)
            return Heap(loaded.config.evolve(backend="memfd"))
        print(f"miniheap: cannot build the heap: {one_line(e)} ({heap_advice(loaded.config, e)})",
              file=sys.stderr)
        raise SystemExit(2) from None


def describe_views(heap):
    """A sentence on what the maps lines above show, from the heap's own figures."""
    from .sizes import format_size

    views = heap.layout.views
    text = (f"\n{len(views)} view{'s' if len(views) > 1 else ''} of one backing "
            f"({heap.backend.maps_name()}: the same device and inode on every line).")
    if heap.config.mapping == "colored":
        bits = heap.config.color_bits
        text += (f" Each view sits at one colour bit: Marked0 at 1<<{bits} ({format_size(1 << bits)}), "
                 f"Marked1 at 1<<{bits + 1}, Remapped at 1<<{bits + 2}, as JDK 17's ZGC puts its three views "
                 f"(bits 42-44 for heaps up to 256G; the JDK picks higher bits for larger heaps).")
    if heap.config.pretouch:
        text += (" pretouch = true: every page was touched through every writable view at start "
                 "(the madvise(MADV_POPULATE_WRITE) lines above), as -XX:+AlwaysPreTouch does.")
    return text


def show_object_through_views(heap, out):
    """Allocate one object and read its bytes at its address in every view that maps it."""
    from ._native import lib

    obj = heap.alloc(refs=1, data=24)
    obj.data[:] = b"hello from miniheap!\x00\x00\x00\x00"
    base_view = next(v for v in heap.views if v.start <= obj.address < v.end)
    offset = obj.address - base_view.start + base_view.offset
    header = lib.MH_HEADER_BYTES
    size = header + 8 + 24
    print(f"An object of 1 reference slot and 24 payload bytes sits at heap offset {offset:#x}.\n"
          f"Its {size} bytes ({header} header, 8 slot, 24 payload), read at its address in each view:\n",
          file=out)
    seen = set()
    # verify_views: only the good colour's view can be read (the others are PROT_NONE until the next
    # flip); the heap is held meanwhile, so the GC thread cannot flip between the check and the read.
    closed = []
    if heap.config.verify_views:
        lib.mh_lock(heap._ptr)
        good = heap.layout.views[lib.mh_good_color(heap._ptr)]
        closed = [v for v in heap.layout.views if v is not good]
    try:
        _read_views(heap, offset, size, closed, seen, out)
    finally:
        if heap.config.verify_views:
            lib.mh_unlock(heap._ptr)
    verdict = "the same bytes" if len(seen) == 1 else "DIFFERENT bytes (a bug)"
    print(f"\n{verdict}: one physical copy, several virtual addresses, no copying.",
          file=out)
    if heap.config.verify_views:
        print("verify_views is on: only the good colour's view is accessible; a pointer that skipped the load "
              "barrier\nfaults (python -m miniheap verify-views shows it).", file=out)
    elif heap.config.mapping == "colored":
        bits = heap.config.color_bits
        print(f"The addresses differ only in the colour bits ({bits}, {bits + 1}, {bits + 2}): a pointer of any "
              f"colour can be\ndereferenced as it is, which is what ZGC's multi-mapping bought.", file=out)
    obj.release()


def _read_views(heap, offset, size, closed, seen, out):
    from .syscalls import ffi

    for view in heap.views:
        if not view.offset <= offset < view.offset + view.length:
            continue
        addr = view.start + offset - view.offset
        if view in closed:
            print(f"  {view.name:<22} {addr:#016x}  not read: PROT_NONE (verify_views, not the good colour)",
                  file=out)
            continue
        data = bytes(ffi.buffer(ffi.cast("char *", addr), size))
        seen.add(data)
        print(f"  {view.name:<22} {addr:#016x}  {data[:16].hex(' ')}  {data[-24:-4]!r}", file=out)


class _NoSampler:
    def sample(self, label):
        pass


# The zgc collector's two layouts, as the side-by-side section names them.
LAYOUT_TITLES = {"colored": "three views (JDK 11-23)", "none": "one view, colour in low bits (JDK 21+)"}


def layout_figures(heap):
    """What section 8 shows of a heap: its views' RSS and PSS (the layout's views: an mremap backend's
    source mapping is not one), the backing, one new object's pointer."""
    snap = heap.memory()
    names = {v.name for v in heap.layout.views}
    views = [v for v in snap.views if v.name in names]
    probe = heap.alloc(refs=0, data=8)
    pointer, address = probe.pointer, probe.address
    probe.release()
    return {"title": LAYOUT_TITLES[heap.config.mapping], "views": len(heap.layout.views),
            "rss": sum(v.rss for v in views), "pss": sum(v.pss for v in views), "backing": snap.backing,
            "pointer": pointer, "address": address,
            "view_list": [{"name": v.name, "start": v.start, "length": v.length, "rss": v.rss, "pss": v.pss}
                          for v in views]}


def compare_layouts(config, first, megabytes, out):
    """Section 8: the run's heap (``first``: its layout_figures, taken before it closed) beside the same
    workload on zgc's other layout, a second heap of the same configuration, pretouched the same way,
    built once the first is gone (one heap per process, as one JVM: both use the same addresses):
    views, RSS against PSS, one pointer, and the load barrier's cost per load in each. Returns the
    figures for the JSON."""
    from .bench import barrier
    from .heap import Heap
    from .sizes import format_size

    other_mapping = "none" if config.mapping == "colored" else "colored"
    print(f"The run's heap is closed; the same {megabytes} MiB workload now runs on a second heap that differs "
          f"only in its layout\n(mapping {other_mapping}), at the same addresses:", file=out, flush=True)
    # (verify_views closes views, and one view has none to close)
    other = Heap(config.evolve(mapping=other_mapping, collector="zgc", gc_log="off",
                               verify_views=config.verify_views and other_mapping == "colored"))
    try:
        run_workload(other, megabytes, _Quiet(), _NoSampler())
        other.collect(full=True)
        other.verify()
        figures = {config.mapping: first, other_mapping: layout_figures(other)}
    finally:
        other.close()
    print(f"\n  {'layout':<40}{'views':>6}{'views RSS':>11}{'views PSS':>11}{'RSS/PSS':>9}{'backing':>10}",
          file=out)
    for mapping in ("colored", "none"):
        f = figures[mapping]
        print(f"  {f['title']:<40}{f['views']:>6}{format_size(f['rss']):>11}{format_size(f['pss']):>11}"
              f"{f['rss'] / max(f['pss'], 1):>9.2f}{format_size(f['backing']):>10}", file=out)
    multi, one = figures["colored"], figures["none"]
    equal = abs(one["rss"] - one["pss"]) <= 64 << 10
    print("\nPretouched through every view, the three views count each page three times in RSS (what ps "
          "and top show);\nthe one view counts it once"
          + (": RSS = PSS, the heap at its real size." if equal else
             f" (its PSS is lower than its RSS: the {config.backend} backend's source mapping shares the pages).")
          + " That was one reason JDK 21's generational\nZGC gave up multi-mapping (JEP 439); the address space "
          "the views cost was another.", file=out)
    print(f"\nOne new object's pointer in each (Ref.pointer: the 64 bits a field stores):\n"
          f"  three views  {multi['pointer']:#018x}  the address itself, in the view of its colour\n"
          f"  one view     {one['pointer']:#018x}  address {one['address']:#x} << 16 | colour bit "
          f"{one['pointer'] & 0xffff:#06x}\n"
          f"With one view a pointer is no address: every dereference strips the colour first "
          f"(address = pointer >> 16).", file=out)
    costs = barrier.measure_layouts()
    plain = costs[barrier.PLAIN]
    print(f"\nWhat the load barrier costs per load (a pointer chase in the L1 cache, {barrier.QUICK_LOADS // 10**6}M "
          f"loads each;\npython -m miniheap bench barrier measures it with more runs):", file=out)
    for name, ns in costs.items():
        print(f"  {name:<28} {ns:6.2f} ns per load  ({ns / plain:.2f} x plain pointers)", file=out)
    print("The colour test is an AND and a predicted branch, off the chain from one load to the next; the "
          "shift is on it.", file=out)
    return {"layouts": figures, "barrier_ns": costs}


class _Quiet:
    def write(self, text):
        return len(text)

    def flush(self):
        pass


def walk(node):
    """Follow slot 0 from node to the end of its list."""
    while node is not None:
        node = node[0]


def object_bytes(refs, data):
    """An object's size in the heap, as the C core lays it out: one header word, one word per
    reference slot, the payload rounded up to whole words."""
    from ._native import lib

    return lib.MH_HEADER_BYTES + 8 * refs + (data + 7) // 8 * 8


def run_workload(heap, megabytes, out, sampler, progress=None):
    """Three lifetimes, as a server makes them: per-request garbage, sessions that live for a few
    collections, and cache entries that live long enough to be promoted and die in the old generation
    (garbage only a full collection reclaims). ``megabytes`` (MiB) is counted in the heap's own object
    sizes, so the progress lines agree with the heap's allocated bytes; java/LiveSet.java counts the
    same sizes, so both sides of compare-jvm make the same objects."""
    import random

    from .sizes import format_size

    rng = random.Random(2017)
    target = megabytes << 20
    request_bytes = object_bytes(2, 48) + object_bytes(0, 32)
    session_bytes = object_bytes(1, 96)
    entry_bytes = 4 * object_bytes(1, 120)
    sessions = heap.alloc(refs=4096, data=0)
    cache = heap.alloc(refs=2048, data=0)
    allocated, i, step = 0, 0, target // 10
    next_report, halfway_done = step, False
    started = time.monotonic()
    while allocated < target:
        request = heap.alloc(refs=2, data=48)  # dies at once
        request[0] = heap.alloc(refs=0, data=32)
        allocated += request_bytes
        if i % 16 == 0:  # a session: replaced after about 65k requests
            session = heap.alloc(refs=1, data=96)
            session[0] = request
            sessions[rng.randrange(4096)] = session
            allocated += session_bytes
        if i % 128 == 0:  # a cache entry of four nodes: lives for many collections
            entry = heap.alloc(refs=1, data=120)
            for _ in range(3):
                node = heap.alloc(refs=1, data=120)
                node[0] = entry
                entry = node
            slot = rng.randrange(2048)
            walk(cache[slot])  # read the entry it replaces: every step is a load, with the barrier
            cache[slot] = entry
            allocated += entry_bytes
        i += 1
        if not halfway_done and allocated >= target // 2:
            # As a System.gc() would (zgc: a whole cycle, this call waiting for it): afterwards the
            # coloured layout's heap fields hold stale colours until loads heal them.
            heap.collect(full=True)
            halfway_done = True
        if allocated >= next_report:
            sampler.sample(f"{100 * allocated // target}% of the workload")
            if progress is not None:
                progress.update(f"workload {100 * allocated // target}%")
            occupancy = heap.occupancy()
            spaces = ("eden", "survivor", "old") if "eden" in occupancy else ("small", "medium", "large")
            in_use = ", ".join(f"{name} {format_size(occupancy[name])}" for name in spaces)
            print(f"[workload] {100 * allocated // target:3d}%  allocated {format_size(allocated)}, "
                  f"in use: {in_use}; {heap.stats.collections} collections, "
                  f"{time.monotonic() - started:.1f}s", file=out, flush=True)
            next_report += step
    sessions.release()
    cache.release()


def memory_checkpoint(heap, title, out):
    snap = heap.memory()
    if title:
        print(f"-- {title}", file=out)
    print(snap.table(), file=out)
    print(file=out)
    print(snap.explain(), file=out)
    print(file=out)
    return snap


def summary(heap, out, wall):
    from .sizes import format_size

    s = heap.stats
    if heap.config.collector == "zgc":
        zgc_summary(heap, out, wall)
        return
    print(f"collections:   {s.young_collections} young, {s.full_collections} full\n"
          f"pauses:        median {s.pause_median_ms:.3f} ms, p95 {s.pause_p95_ms:.3f} ms, "
          f"max {s.pause_max_ms:.3f} ms, total {s.pause_total_ms:.1f} ms of {wall:.1f} s\n"
          f"copied:        {format_size(s.bytes_copied)} ({format_size(s.bytes_promoted)} promoted to old)\n"
          f"copy rate:     {s.copy_rate / 1e9:.2f} GB/s of pause\n"
          f"allocated:     {format_size(s.bytes_allocated)} in {s.objects_allocated} objects", file=out)
    if heap.config.mapping == "colored":
        print(f"load barrier:  {s.loads_fast} fast, {s.loads_slow} slow, {s.loads_healed} healed",
              file=out)


# The phases of a zgc cycle in the per-cycle table, with short headings.
ZGC_COLUMNS = (("Pause Mark Start", "MarkStart"), ("Concurrent Mark", "Mark"), ("Pause Mark End", "MarkEnd"),
               ("Concurrent Select Relocation Set", "Select"), ("Pause Relocate Start", "RelocStart"),
               ("Concurrent Relocate", "Relocate"))


def zgc_summary(heap, out, wall):
    """What the zgc collector did while the workload ran: its cycles, their pauses against their
    concurrent phases, the loads that took the barrier's slow path, and who moved the objects."""
    from .sizes import format_size
    from .zgclog import ZGC_CAUSE_NAMES

    s = heap.stats
    cycles = [e for e in heap.events if e.zgc and not e.stall]
    pauses = sorted(p.duration_ns / 1e6 for e in cycles for p in e.phases if p.pause)
    concurrent = sum(p.duration_ns for e in cycles for p in e.phases if not p.pause) / 1e6
    causes = {}
    for e in cycles:
        name = ZGC_CAUSE_NAMES.get(e.cause, "?")
        causes[name] = causes.get(name, 0) + 1
    stalls = [e for e in heap.events if e.stall]
    p99 = pauses[min(len(pauses) - 1, int(0.99 * len(pauses)))] if pauses else 0.0
    print(f"cycles:        {len(cycles)} ({', '.join(f'{n} {c}' for c, n in causes.items())}), each on the "
          f"GC thread while the workload kept running\n"
          f"pauses:        {len(pauses)}: median {pauses[len(pauses) // 2] if pauses else 0:.3f} ms, p99 {p99:.3f} "
          f"ms, max {pauses[-1] if pauses else 0:.3f} ms, total {sum(pauses):.1f} ms of {wall:.1f} s\n"
          f"concurrent:    {concurrent:.1f} ms of marking, selecting and relocating, the workload running meanwhile\n"
          f"load barrier:  {s.loads_fast} fast, {s.loads_slow} slow (the loaded object was marked, or "
          f"relocated or remapped), {s.loads_healed} fields healed\n"
          f"relocated:     {s.objects_relocated_by_gc} objects by the GC thread, {s.objects_relocated_by_mutator} "
          f"by the workload's own loads (it copied them itself, first)\n"
          f"copied:        {format_size(s.bytes_copied)}\n"
          f"stalls:        {len(stalls)} (a mutator waiting for a page)\n"
          f"allocated:     {format_size(s.bytes_allocated)} in {s.objects_allocated} objects", file=out)
    print("\nEach cycle: its three pauses (ms) against its concurrent phases (ms); the loads that took the "
          "slow path during it;\nobjects relocated by the GC thread / by the mutator:", file=out)
    print(f"  {'cycle':<26}" + "".join(f"{short:>11}" for _, short in ZGC_COLUMNS)
          + f"{'slow loads':>11}{'gc/mutator':>14}", file=out)
    for e in cycles:
        times = {}
        for p in e.phases:
            times[p.name] = times.get(p.name, 0) + p.duration_ns / 1e6
        cells = "".join(f"{times.get(name, 0):>11.3f}" for name, _ in ZGC_COLUMNS)
        moved = f"{e.objects_relocated_by_gc}/{e.objects_relocated_by_mutator}"
        print(f"  {f'GC({e.id})':<7}{ZGC_CAUSE_NAMES.get(e.cause, '?'):<19}{cells}{e.loads_slow:>11}{moved:>14}",
              file=out)
    print(zgc_summary_notes(len(cycles), len(pauses), sum(e.mark_ends - 1 for e in cycles)), file=out)


def zgc_summary_notes(cycles, pauses, mark_end_retries):
    """Why the summary's counts are what they are (core/barrier.h counts the fast loads,
    zgc/zbarrier.c the slow ones; zgc/zdriver.c gives a cycle the slow loads between its start and its
    end, and retries Pause Mark End while marking is not done)."""
    return textwrap.fill(
        "Why so many slow loads: Pause Mark Start (and then Pause Relocate Start) changes the good colour, "
        "which makes every pointer in the heap stale at once, so the first load of each field after it "
        "takes the slow path once and heals the field; the next loads of that field are fast. The slow "
        "loads column counts only those made while a cycle ran, from its Pause Mark Start to the end of "
        "its relocation; those between cycles are in the total only.", width=100) + "\n" + textwrap.fill(
        pauses_note(cycles, pauses, mark_end_retries), width=100)


def pauses_note(cycles, pauses, mark_end_retries):
    if mark_end_retries:
        return (f"Pauses: {pauses} = {cycles} cycles x 3 + {mark_end_retries}: Pause Mark End found marking "
                f"not done {mark_end_retries} time(s) (the workload's loads had marked objects still to trace), "
                f"so marking continued (Concurrent Mark Continue) and Pause Mark End was tried again, as JDK "
                f"17's ZGC does; the MarkEnd column adds them up.")
    return (f"Pauses: {pauses} = {cycles} cycles x 3 (Mark Start, Mark End, Relocate Start); when Pause Mark "
            f"End finds marking not done, marking continues and it is tried again, as JDK 17's ZGC does.")


@quiet_on_broken_pipe
def main(argv=None, out=None, prog=None):
    """Run the demo; a heap that runs out of memory mid-run (a huge-page pool that empties, a live set
    larger than the heap) ends it with one line and exit status 2, never a traceback."""
    try:
        return run(argv, GuardedOutput(out or sys.stdout), prog)
    except (CommitError, MemoryError, MiniheapError) as e:
        print(f"miniheap: the run stopped: {one_line(e)}", file=sys.stderr)
        return 2


def run(argv=None, out=None, prog=None):
    out = out or sys.stdout
    args = parse_args(sys.argv[1:] if argv is None else argv, prog)
    try:
        loaded = load_config(args)
    except config_mod.ConfigError as e:
        print(f"miniheap: {e}", file=sys.stderr)
        return 2
    problems = check_outputs(args, loaded.config)
    if problems:
        print("\n".join(f"miniheap: {p}" for p in problems), file=sys.stderr)
        return 2
    wall_start = time.monotonic()

    heading(1, "Configuration, and where each value came from", out)
    print(loaded.describe(), file=out)
    print(config_note(loaded.config), file=out)

    heading(2, "The system calls that built the heap (strace format)", out)
    heap = open_heap(loaded, args.fallback, out)
    with heap:
        print("\n".join(heap.trace.lines), file=out)
        if heap.config.backend == "shm-mremap":
            print("\nThis is the 2017 thread's sequence: shmget, shmat, shmctl(IPC_RMID) at once, then\n"
                  "mremap(old_size=0) to make each further view of the same segment.", file=out)

        heading(3, "The heap's views, from /proc/self/maps", out)
        from .maps import format_view_table

        print(format_view_table(heap.views), file=out)
        print(describe_views(heap), file=out)

        heading(4, "One object, read through every view", out)
        show_object_through_views(heap, out)

        sampler = Recorder(heap, loaded, title="miniheap demo")
        heading(5, f"A workload: {args.work} MiB of short- and long-lived objects, GC log streaming", out)
        before, map_before = heap.memory(), heap.region_map()
        sampler.sample("before the workload")
        # The demo's own lines show its progress on a terminal; the status line is for a redirected run.
        with Progress("demo", enabled=_progress_wanted()) as progress:
            run_workload(heap, args.work, out, sampler, progress)
        after, map_after = heap.memory(), heap.region_map()
        heap.collect(full=True)
        sampler.sample("after a full collection")
        heap.verify()

        heading(6, "Memory at checkpoints: RSS vs PSS vs USS vs huge pages vs backing", out)
        from .sizes import format_size

        if heap.config.collector == "zgc":
            print(f"Granules of {format_size(heap.config.region_size)}: P small page (p: empty), M/m medium "
                  f"page, L/l large page, r the relocation reserve, R in the relocation set, . free\n", file=out)
        else:
            print(f"Regions of {format_size(heap.config.region_size)}: E eden, S survivor, O old, "
                  f"H humongous, . free (lower case: holding nothing)\n", file=out)
        for title, snap, regions in (("before the workload", before, map_before),
                                     ("after the workload", after, map_after)):
            print(f"-- {title}\nregions  {regions}\n{snap.table()}\n", file=out)
        print(f"-- after a full collection\nregions  {heap.region_map()}", file=out)
        memory_checkpoint(heap, None, out)

        heading(7, "Summary", out)
        summary(heap, out, time.monotonic() - wall_start)
        run = sampler.finish()
        checkpoints = {"before": before, "after": after, "after_full": heap.memory()}
        first = layout_figures(heap) if heap.config.collector == "zgc" else None
    side_by_side = None
    if first is not None:
        heading(8, "Side by side: three views (JDK 11-23) and one view, the colour in the pointer's low "
                   "bits (JDK 21+)", out)
        side_by_side = compare_layouts(heap.config, first, args.work, out)
    write_outputs(args, run, checkpoints, out, side_by_side)
    return 0


def _progress_wanted():
    try:
        return sys.stderr.isatty() and not sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def write_outputs(args, run, checkpoints, out, side_by_side=None):
    """The files asked for on the command line, all drawn from the same recording."""
    if args.plot:
        from .plot import write_png

        write_png(args.plot, run, out)
    if args.html:
        from .report import write_html

        write_html(args.html, run)
        print(f"report written to {args.html} (open it in a browser)", file=out)
    if args.trace_events:
        from .trace_events import write

        write(args.trace_events, run)
        print(f"trace events written to {args.trace_events} (open in ui.perfetto.dev or chrome://tracing)",
              file=out)
    if args.json:
        write_json(args.json, run, checkpoints, side_by_side)
        print(f"figures written to {args.json} (JSON: config, collections in time order, memory)", file=out)


def write_json(path, run, checkpoints, side_by_side=None):
    """The run's figures as JSON: typed configuration values, the collections in time order with their
    kind and cause, the spans, the memory checkpoints, and (zgc) the two layouts side by side."""
    import json

    import attrs

    record = run.to_json()
    record["trace"] = record.pop("strace")
    record["memory"] = {name: attrs.asdict(snap) for name, snap in checkpoints.items()}
    if side_by_side is not None:
        record["side_by_side"] = side_by_side
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
