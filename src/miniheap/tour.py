"""``python -m miniheap tour``: a multi-mapped heap built one step at a time, each step checkable.

Every step does one thing, says what just happened (the system calls, in strace format), gives the
process ID and the exact command that shows it with the system's own tools (grep on /proc/PID/maps,
the view's lines in /proc/PID/smaps, ``ps -o rss=``, ``dd`` on /proc/PID/mem), then waits for Enter so
the command can be run from another terminal while the process still holds the memory.

The first six steps build the views by hand from the layers (reservation, backend); the next two hand
the same layout to miniheap's collector, to show a coloured pointer healed by the load barrier and a
collection; the ninth puts that layout beside JDK 21+'s (one view, the colour in the pointer's low
bits: RSS equals PSS) with the load barrier's cost per load in each; then huge pages, then everything
is closed and the tour checks nothing is left.

``--no-pause`` runs straight through (scripts, CI); with no standard input it does the same.
``--figures`` adds one JSON line per step (``figures {...}``) with the numbers the step printed, so a
test can compare them with /proc/PID/smaps read independently while the tour waits. ``--html`` and
``--trace-events`` write the report and the trace of the heap that steps 7 and 8 build and collect.
"""
import io
import json
import os
import resource
import sys

from . import hugepages, memory
from . import syscalls as sc
from .cli import OutputError, output_problems, quiet_on_broken_pipe
from .oneline import OneLineParser
from .sizes import format_bytes_human as human
from .sizes import format_size

RULE = "-" * 78
COLOR_NAMES = ("Marked0", "Marked1", "Remapped")


def parse_args(argv, prog=None):
    p = OneLineParser(prog=prog or "python -m miniheap tour",
                      description="A multi-mapped heap built one step at a time, each step checkable "
                                  "with /proc, ps and dd.")
    p.add_argument("--no-pause", action="store_true", help="do not wait for Enter after each step")
    p.add_argument("--figures", action="store_true",
                   help="print one machine-readable line per step: figures {json}")
    p.add_argument("--backend", choices=("memfd", "shm-mremap", "anon-mremap"), default="memfd",
                   help="where the pages come from (default memfd, as ZGC)")
    p.add_argument("--heap-size", default="64M", metavar="SIZE", help="size of the heap (default 64M)")
    out = p.add_argument_group("output files (of the heap that steps 7 and 8 build and collect)")
    out.add_argument("--html", metavar="FILE.html",
                     help="a report to open in a browser: the address space, the region map at every "
                          "collection with a slider, the timeline, memory, the GC log")
    out.add_argument("--trace-events", metavar="FILE.json",
                     help="Chrome trace-event JSON of the collections and their phases: open it in Perfetto "
                          "(ui.perfetto.dev, Open trace file) or chrome://tracing")
    return p.parse_args(argv)


class Tour:
    def __init__(self, args, out=None):
        from .config import HeapConfig

        self.args, self.out = args, out or sys.stdout
        self.pid = os.getpid()
        # The configuration layers apply (MINIHEAP_COLOR_BITS moves the views under AddressSanitizer).
        self.config = HeapConfig.load(cli={"backend": args.backend, "mapping": "colored",
                                           "heap_size": args.heap_size, "young_size": "16M",
                                           "gc_log": "off"}).config
        self.size = self.config.heap_size
        self.bits = self.config.color_bits
        self.sys = sc.Syscalls()
        self.reservations, self.views, self.backend, self.heap = [], [], None, None
        self.recorder, self.recording = None, None  # for --html and --trace-events
        self.logged = 0  # collections whose GC log lines a step has shown
        self.number, self.total = 0, 12
        self.quit = False

    # -- output ----------------------------------------------------------------------------------
    def say(self, text=""):
        print(text, file=self.out, flush=True)

    def step(self, title, happened, checks, figures=None):
        self.number += 1
        self.say(f"\n{RULE}\nStep {self.number}/{self.total}: {title}    (PID {self.pid})\n{RULE}")
        self.say(happened.rstrip())
        if checks:
            self.say("\nCheck it yourself (in another terminal, while the tour waits):")
            for command, expect in checks:
                self.say(f"  $ {command}")
                if expect:
                    self.say(f"    {expect}")
        if self.args.figures:
            self.say("figures " + json.dumps({"step": self.number, "pid": self.pid, **(figures or {})}))
        self.pause()

    def pause(self):
        if self.args.no_pause:
            return
        try:
            answer = input("\n[Enter: next step, q: quit] ")
        except EOFError:  # no terminal (a script, CI): go on without waiting
            self.args.no_pause = True
            return
        if answer.strip().lower() in ("q", "quit"):
            self.quit = True

    def calls_since(self, mark):
        return "\n".join("  " + line for line in self.sys.trace.lines[mark:])

    def view_figures(self, views):
        vmas = memory.read_smaps()
        usage = [memory.usage_of(v, vmas) for v in views]
        return {"views": [{"name": u.name, "start": u.start, "length": u.length, "rss": u.rss, "pss": u.pss}
                          for u in usage],
                "rss": memory.quick()}

    def maps_pattern(self):
        return {"memfd": "memfd:miniheap", "shm-mremap": "SYSV", "anon-mremap": "dev/zero"}[self.args.backend]

    def backing_check(self):
        if self.args.backend == "memfd":
            return (f"stat -L -c '%s bytes long, %b blocks of 512 bytes' /proc/{self.pid}/fd/{self.backend.fd}",
                    "its length, and the blocks it really holds: the real size of the heap")
        if self.args.backend == "shm-mremap":
            return (f"awk 'NR == 1 || $2 == {self.backend.shmid}' /proc/sysvipc/shm",
                    "the segment: its size, and the rss column, the memory it really holds")
        return (f"grep -c 'dev/zero' /proc/{self.pid}/maps", "a shared anonymous mapping lives in a hidden "
                "shmem file named /dev/zero (deleted)")

    def smaps_check(self, view):
        return (f"grep -A5 '^{view.start:x}-' /proc/{self.pid}/smaps | grep -E '^(Rss|Pss):'",
                f"the {view.name} view's lines of smaps")

    # -- the steps -------------------------------------------------------------------------------
    def run(self):
        steps = (self.reserve, self.create_backing, self.map_first_view, self.map_other_views,
                 self.write_and_read, self.touch_all, self.coloured_pointer, self.collection,
                 self.one_view, self.verify_views, self.huge_pages, self.close)
        try:
            for step in steps:
                if self.quit:
                    break
                step()
        finally:
            self.release()
        return 0

    def reserve(self):
        from .reservation import Reservation

        mark = len(self.sys.trace.lines)
        for colour, name in enumerate(COLOR_NAMES):
            self.reservations.append(Reservation(self.sys, self.size, at=1 << (self.bits + colour),
                                                 alignment=2 << 20, label=f"{name} view"))
        starts = "|".join(f"{r.start:x}" for r in self.reservations)
        self.step(
            "reserve address space for three views",
            f"Three ranges of {format_size(self.size)}, at 1<<{self.bits}, 1<<{self.bits + 1} and 1<<{self.bits + 2}: "
            f"the addresses JDK 17's ZGC uses for its Marked0, Marked1 and Remapped views (bits 42-44 for a "
            f"heap up to 256G). PROT_NONE with MAP_NORESERVE costs no memory and no swap; it only keeps "
            f"other mappings out.\n{self.calls_since(mark)}",
            [(f"grep -E '^({starts})-' /proc/{self.pid}/maps", "three lines with ---p: reserved, not accessible")],
            {"reservations": [r.start for r in self.reservations]})

    def create_backing(self):
        from .backends import backend_class

        mark = len(self.sys.trace.lines)
        self.backend = backend_class(self.args.backend)(self.sys, self.size)
        self.step(
            f"create the backing ({self.args.backend})",
            f"The physical memory of the heap, not yet mapped where the heap will be and not yet touched: "
            f"it holds {human(self.backend.physical_bytes())} so far.\n{self.calls_since(mark)}",
            [self.backing_check()],
            {"backing": self.backend.physical_bytes()})

    def _map(self, colour):
        name = COLOR_NAMES[colour]
        view = self.backend.map_view(self.reservations[colour], self.reservations[colour].start, 0, self.size,
                                     True, name)
        self.views.append(view)
        return view

    def map_first_view(self):
        mark = len(self.sys.trace.lines)
        view = self._map(0)
        self.step(
            "map view 1 (Marked0)",
            f"The backing mapped over the first reservation, MAP_SHARED|MAP_FIXED, so a write through it "
            f"goes to the backing.\n{self.calls_since(mark)}",
            [(f"grep {self.maps_pattern()} /proc/{self.pid}/maps",
              f"a line at {view.start:x} with rw-s: s for shared")],
            self.view_figures(self.views))

    def map_other_views(self):
        mark = len(self.sys.trace.lines)
        self._map(1)
        self._map(2)
        self.step(
            "map views 2 and 3 (Marked1, Remapped)",
            f"The same backing mapped twice more. Three virtual ranges, one physical memory; nothing is "
            f"touched yet, so the views cost nothing.\n{self.calls_since(mark)}",
            [(f"grep {self.maps_pattern()} /proc/{self.pid}/maps",
              "three view lines (more with an mremap backend's source): the same device and inode on each"),
             (f"ps -o rss= -p {self.pid}", "the process's RSS in KiB: not grown by the views")],
            self.view_figures(self.views))

    def write_and_read(self):
        text = b"written through Marked0, read through Remapped"
        first, last = self.views[0], self.views[2]
        sc.ffi.memmove(sc.ffi.cast("char *", first.start), text, len(text))
        seen = bytes(sc.ffi.buffer(sc.ffi.cast("char *", last.start), len(text)))
        checks = [(f"dd if=/proc/{self.pid}/mem bs=1 skip=$((0x{last.start:x})) count={len(text)} "
                   f"2>/dev/null; echo", "the bytes, read at the Remapped address by another process")]
        if self.args.backend == "memfd":
            checks.append((f"head -c {len(text)} /proc/{self.pid}/fd/{self.backend.fd}; echo",
                           "the same bytes, read from the memfd itself"))
        self.step(
            "write through one view, read through another",
            f"Wrote {len(text)} bytes at {first.start:#x} (Marked0) and read at {last.start:#x} (Remapped):\n"
            f"  {seen.decode()!r}\n"
            f"{'the same bytes' if seen == text else 'DIFFERENT bytes (a bug)'}: no copy was made, both "
            f"addresses reach the same physical page.",
            checks, {"read": seen.decode(errors="replace"), **self.view_figures(self.views)})

    def touch_all(self):
        mark = len(self.sys.trace.lines)
        lines = []
        for view in self.views:
            self.sys.madvise(view.start, view.length, sc.MADV_POPULATE_WRITE,
                             hint="MADV_POPULATE_WRITE needs Linux 5.14 or later")
            f = self.view_figures(self.views)
            total = sum(v["rss"] for v in f["views"])
            pss = sum(v["pss"] for v in f["views"])
            lines.append(f"  after touching {view.name:<8}  views' RSS {human(total):>9}   views' PSS {human(pss):>9}")
        figures = self.view_figures(self.views)
        rss = sum(v["rss"] for v in figures["views"])
        pss = sum(v["pss"] for v in figures["views"])
        backing = self.backend.physical_bytes()
        figures["backing"] = backing
        self.step(
            "touch every page through all three views (what -XX:+AlwaysPreTouch does)",
            f"{self.calls_since(mark)}\n" + "\n".join(lines) + "\n"
            f"RSS counts a page once for every mapping it is touched through: {human(rss)} for a heap of "
            f"{human(backing)} ({rss / max(pss, 1):.1f} times). PSS divides each page by its mappings: "
            f"{human(pss)}, the real size. ps and top show RSS; JDK 17's ZGC with -XX:+AlwaysPreTouch shows "
            f"the same threefold RSS.",
            [(f"ps -o rss= -p {self.pid}", f"about {rss >> 10} KiB more than before"),
             self.smaps_check(self.views[0]),
             (f"grep -E '^(Rss|Pss|Pss_Shmem):' /proc/{self.pid}/smaps_rollup",
              "Pss_Shmem: the heap at its real size"),
             self.backing_check()],
            figures)

    def _close_by_hand(self):
        for reservation in self.reservations:
            reservation.close()
        self.reservations.clear()
        self.views.clear()
        if self.backend is not None:
            self.backend.close()
            self.backend = None

    def coloured_pointer(self):
        from .heap import Heap

        self._close_by_hand()
        heap = self.heap = Heap(self.config)
        if self.args.html or self.args.trace_events:
            from .recording import Recorder

            self.recorder = Recorder(heap, title="miniheap tour")
        holder = heap.alloc(refs=8, data=0)
        targets, garbage = [], []
        for i in range(8):
            t = heap.alloc(refs=0, data=64)
            t.data[:8] = i.to_bytes(8, "little")
            holder[i] = t
            targets.append(t)
            # garbage-to-be between the targets spreads them over several pages: relocating one sparse
            # page into one new page reclaims nothing, so ZGC (and miniheap, as JDK 17 selects) leaves
            # a lone sparse page where it is; several are compacted into one
            garbage += [heap.alloc(refs=0, data=2000) for _ in range(400)]
        heap.collect(full=True)  # a zgc cycle: everything is still live, nothing worth moving
        del garbage
        for t in targets:
            t.release()
        moved_before = heap.stats.objects_relocated_by_gc + heap.stats.objects_relocated_by_mutator
        heap.collect(full=True)  # relocates the now sparse pages; roots are fixed, fields are not
        moved = heap.stats.objects_relocated_by_gc + heap.stats.objects_relocated_by_mutator - moved_before
        good = heap.good_color
        stale_slots = [i for i in range(8) if heap.raw_color(holder, i) != good]
        slot = stale_slots[0] if stale_slots else 0
        stale = heap.raw_slot(holder, slot)
        mask = (1 << self.bits) - 1
        from ._native import lib

        field = heap.views[2].start + (holder.address & mask) + lib.MH_HEADER_BYTES + 8 * slot
        before = heap.stats
        holder[slot]  # the load barrier: slow path, heals the field
        after = heap.stats
        healed = heap.raw_slot(holder, slot)
        self.step(
            "one pointer's raw 64-bit value: its colour, loaded stale and healed",
            f"The hand-built views were closed and miniheap's Heap built the same layout with a collector "
            f"(heap.trace):\n" + "\n".join("  " + line for line in heap.trace.lines) + "\n"
            f"Two zgc cycles (System.gc()) ran (its GC log, in JDK 17 ZGC's -Xlog:gc format):\n"
            f"{self.gc_log_lines(start=True)}\n"
            f"The second moved {moved} objects out of the pages that had become sparse into one new page. "
            f"The roots were fixed at once, but "
            + (f"{len(stale_slots)} fields inside an object still hold an old colour and an old address.\n\n"
               if stale_slots else "no field was left with an old colour this time.\n\n")
            + f"Slot {slot} of that object, as it is in memory (no barrier):\n"
            f"{describe_pointer(stale, self.bits)}\n\n"
            f"Loading it (holder[{slot}]) runs the load barrier: the colour is not the good one "
            f"({COLOR_NAMES[good]}), so the slow path finds the object's current address, writes the good "
            f"pointer back into the field (self-healing) and returns it. Slow paths {before.loads_slow} -> "
            f"{after.loads_slow}, healed {before.loads_healed} -> {after.loads_healed}. The field now:\n"
            f"{describe_pointer(healed, self.bits)}\n"
            + (f"The offset changed too ({stale & mask:#x} -> {healed & mask:#x}): the object lives in its new "
               f"page now, and its old page was freed. " if (stale & mask) != (healed & mask) else
               "The offset is the same: this object was not moved, only its pointer's colour was stale. ")
            + "The next load of this field takes the fast path.",
            [(f"dd if=/proc/{self.pid}/mem bs=8 count=1 skip=$((0x{field:x} / 8)) 2>/dev/null | od -A n -t x8",
              f"the field's raw value, read from outside: {healed:#018x}")],
            {"field": field, "stale": stale, "healed": healed, "good": good, "moved": moved,
             "stale_offset": stale & mask, "healed_offset": healed & mask,
             "stale_color": _colour_of(stale, self.bits),
             "healed_color": _colour_of(healed, self.bits)})
        holder.release()
        if self.recorder is not None:
            self.recorder.sample("after the field was healed")

    def gc_log_lines(self, start=False):
        """The -Xlog:gc lines of the collections since the last step that showed some (printed in the
        step's text, so they appear under its heading rather than streaming before it)."""
        from .gclog import GCLog

        heap = self.heap
        out = io.StringIO()
        from .gclog import FORMATS

        # uptimes from the events; "Using ..." at 0
        log = GCLog("gc", out, start=0.0, clock=lambda: 0.0, format=FORMATS[heap.config.collector]())
        if start:
            log.log_start(heap.config)
        events = list(heap.events)
        for event in events[self.logged:]:
            log.log_event(event)
        self.logged = len(events)
        return "\n".join("  " + line for line in out.getvalue().splitlines())

    def collection(self):
        heap = self.heap
        live = [heap.alloc(refs=1, data=100) for _ in range(2000)]
        for _ in range(40000):
            heap.alloc(refs=0, data=200)  # garbage: the director may start a cycle of its own meanwhile
        heap.collect()
        heap.collect(full=True)
        s = heap.stats
        if self.recorder is not None:
            self.recorder.sample("after the collections")
            self.recording = self.recorder.finish()  # the heap is closed before the tour ends
        backing = heap.backend.physical_bytes()
        figures = self.view_figures(heap.layout.views)
        figures["backing"] = backing
        self.step(
            "a collection (a zgc cycle, concurrent with this program)",
            f"Two more zgc cycles (and any the director started), in the GC log:\n{self.gc_log_lines()}\n"
            f"{s.zgc_cycles} cycles so far, {s.pauses} pauses of at most {s.max_pause_ns / 1e6:.3f} ms; "
            f"{format_size(s.bytes_copied)} copied, {s.objects_relocated_by_gc} objects by the GC thread and "
            f"{s.objects_relocated_by_mutator} by this program's own loads. Copying moves "
            f"objects between regions of the same backing: the views do not change, only which pages are "
            f"in use. The backing now holds {human(backing)}.",
            [(f"grep {heap.backend.maps_name().split()[0].lstrip('/')} /proc/{self.pid}/maps",
              "the same three views as before the collection"),
             self.smaps_check(heap.layout.views[2])],
            figures)
        del live

    def one_view(self):
        """The same heap the JDK 21+ way, after the three views: both pretouched, both holding the same
        objects, built one after the other at the same addresses (one heap per process, as one JVM);
        RSS against PSS for each, a pointer of each, the barrier's cost per load."""
        from .bench import barrier
        from .heap import Heap

        self.heap.close()
        self.heap = None
        costs = barrier.measure_layouts()  # its own small heaps, at the same addresses: first
        figures = {}
        for mapping in ("colored", "none"):
            heap = self.heap = Heap(self.config.evolve(mapping=mapping, collector="zgc", pretouch=True))
            keep = heap.alloc(refs=64, data=0)
            for i in range(64):
                keep[i] = heap.alloc(refs=0, data=1000)
            heap.collect(full=True)
            heap.verify()
            figures[mapping] = self.view_figures(heap.layout.views)
            if mapping == "colored":
                heap.close()  # the one view takes the Marked0 view's address
                self.heap = None
        self._one_view_step(self.heap, figures, costs)
        self.heap.close()
        self.heap = None

    def _one_view_step(self, one, figures, costs):
        rows = []
        for title, f in (("three views (JDK 11-23)", figures["colored"]), ("one view (JDK 21+)", figures["none"])):
            rss = sum(v["rss"] for v in f["views"])
            pss = sum(v["pss"] for v in f["views"])
            rows.append(f"  {title:<26} {len(f['views'])} view{'s' if len(f['views']) > 1 else ' '}  "
                        f"RSS {human(rss):>9}  PSS {human(pss):>9}  RSS/PSS {rss / max(pss, 1):.2f}")
        view = one.layout.views[0]
        obj = one.alloc(refs=0, data=8)
        pointer, address = obj.pointer, obj.address
        obj.release()
        plain = costs[barrier_plain()]
        cost_lines = "\n".join(f"  {name:<28} {ns:5.2f} ns per load ({ns / plain:.2f} x plain pointers)"
                               for name, ns in costs.items())
        self.step(
            "the JDK 21+ way: one view, the colour in the pointer's low bits",
            f"Two zgc heaps of {format_size(self.size)}, one after the other at the same addresses, both "
            f"pretouched through every view and holding the same objects: the three views of the steps "
            f"before (measured, then closed), and one view at 1<<{self.bits}, where JDK 25 maps its one "
            f"java_heap (still open).\n" + "\n".join(rows) + "\n"
            f"With one view every page is counted once: RSS equals PSS. The colour did not go away, it moved "
            f"into the pointer's low 16 bits, and the address into the bits above them (JDK 21's layout):\n"
            f"{describe_low_bits_pointer(pointer)}\n"
            f"So every dereference first strips the colour (pointer >> 16): one more instruction per load, on "
            f"the chain from one load to the next. Measured here (a pointer chase in the L1 cache):\n{cost_lines}",
            [(f"grep -E '^{view.start:x}-' /proc/{self.pid}/maps", "the one view: one line, rw-s"),
             self.smaps_check(view),
             (f"ps -o rss= -p {self.pid}", "the process's RSS in KiB: the heap counted once")],
            {"views": figures["none"]["views"], "rss": memory.quick(), "three_views": figures["colored"]["views"],
             "pointer": pointer, "address": address, "barrier_ns": costs})

    def verify_views(self):
        """A child process with verify_views: its views' permissions at each flip, read here from
        /proc/CHILD/maps, then a load that skips the barrier, which kills it with SIGSEGV."""
        import signal
        import subprocess

        from .sizes import parse_size
        from .verify_views import HEAP_SIZE

        env = dict(os.environ)
        env.pop("PYTHONFAULTHANDLER", None)  # the fault is expected: no traceback dump
        if "ASAN_OPTIONS" in env:  # under tools/sanitize the fault must kill the child as it would unsanitized
            env["ASAN_OPTIONS"] += ":handle_segv=0"
        child = subprocess.Popen([sys.executable, "-m", "miniheap", "verify-views", "--wait",
                                  "--backend", self.args.backend], text=True, env=env,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        listings, lines, views = {}, [], {}
        try:
            for line in child.stdout:
                lines.append(line.rstrip("\n"))
                parts = line.split()
                if len(parts) == 3 and parts[0] in COLOR_NAMES and parts[1].startswith("0x"):
                    views[parts[0]] = int(parts[1], 16)
                if line.startswith("waiting: "):
                    listings[line.split(": ", 1)[1].strip()] = _permissions(child.pid, views, parse_size(HEAP_SIZE))
                    child.stdin.write("\n")
                    child.stdin.flush()
            child.wait(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        status = child.returncode
        said = next((ln for ln in lines if ln.startswith("Slot 0")), "")
        raw = said.split(": ", 1)[1].split(",")[0] if ": " in said else "?"

        def table(perms):
            return "\n".join(f"    {name:<9} {views[name]:#016x}  {perms[name]}" for name in COLOR_NAMES)

        shown = [f"  between cycles:\n{table(listings['between cycles'])}"] if "between cycles" in listings else []
        if "marking" in listings:
            shown.append(f"  during Concurrent Mark (the child held the heap, so Pause Mark End waited):\n"
                         f"{table(listings['marking'])}")
        died = (f"The child died with SIGSEGV (exit status {status}; a shell reports 139, 128 + 11)"
                if status == -signal.SIGSEGV else f"The child ended with status {status}, NOT the expected "
                                                   f"SIGSEGV (-11)")
        python = _python_command()
        self.step(
            "verify-views: a load that skips the barrier faults",
            f"A child process (PID {child.pid}) built a zgc heap with verify_views = true: only the good "
            f"colour's view is accessible, the other two are PROT_NONE until the next flip. Its views, read "
            f"by this tour from /proc/{child.pid}/maps while the child waited:\n" + "\n".join(shown) + "\n"
            f"At each flip (Pause Mark Start, Pause Relocate Start) the GC thread calls mprotect twice: the new "
            f"good view opens, the old one closes.\n"
            f"Then the child read a reference field's raw value, {raw}, stale since marking coloured it, and "
            f"dereferenced it without the load barrier. {died}: the read touched a PROT_NONE view.\n\n"
            f"That is the barrier's duty made visible: every reference loaded from the heap must go through "
            f"it before use, to be marked, remapped or relocated, and healed. With three views mapped, code "
            f"that forgets the barrier still works by accident and reads whatever the stale address holds "
            f"(an old copy of a moved object); verify-views turns that silent bug into a crash at the faulty "
            f"load. HotSpot's multi-mapped ZGC has the same debugging aid: JDK 17's diagnostic flag "
            f"-XX:+UnlockDiagnosticVMOptions -XX:+ZVerifyViews (it unmaps the bad views rather than "
            f"protect them; JDK 25, with one view, has no such flag). Its cost is why it is off by default: "
            f"mprotect calls at every flip, each walking the view's page tables.",
            [(f"{python} -m miniheap verify-views; echo \"exit status $?\"",
              "the same run: the shell reports the Segmentation fault, exit status 139"),
             (f"{python} -m miniheap verify-views --no-verify-views | tail -1",
              "the same load without verify-views: no fault, the bug goes unnoticed")],
            {"child": child.pid, "status": status, "listings": listings, "view_bases": views})

    def huge_pages(self):
        need = 4  # pages of 2 MiB: a small heap of 8 MiB
        free = hugepages.free_pages()
        if free < need:
            advice = hugepages.shortage_advice(need * hugepages.HUGE_PAGE_SIZE)
            self.step(
                "huge pages (skipped: the pool is too small)",
                f"Huge pages come from a pool that root reserves in advance, and this step needs {need} of "
                f"them. {advice[0].upper()}{advice[1:]}, then run the tour again. Give them back afterwards "
                f"with sysctl vm.nr_hugepages={hugepages.total_pages()}.",
                [("grep -E 'HugePages_(Total|Free|Rsvd)' /proc/meminfo", "the pool")],
                {"huge": False, "free": free})
            return
        from .backends import backend_class
        from .reservation import Reservation

        size = need * hugepages.HUGE_PAGE_SIZE
        mark = len(self.sys.trace.lines)
        backend = backend_class("memfd-hugetlb")(self.sys, size)
        reservation = Reservation(self.sys, size, alignment=hugepages.HUGE_PAGE_SIZE, label="huge view")
        try:
            view = backend.map_view(reservation, reservation.start, 0, size, True, "huge")
            backend.commit(0, size)
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for offset in range(0, size, 4096):  # one write per 4 KiB page
                sc.ffi.cast("char *", view.start + offset)[0] = b"x"
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            held = memory.read_hugetlb()
            entries = hugepages.tlb_entries()
            reach = (f"A TLB entry maps one page: with {entries} entries (this CPU's /proc/cpuinfo) the TLB "
                     f"reaches {human(hugepages.tlb_reach(entries, 4096))} of 4 KiB pages but "
                     f"{human(hugepages.tlb_reach(entries, hugepages.HUGE_PAGE_SIZE))} of 2 MiB pages, so a "
                     f"large heap takes far fewer TLB misses." if entries else
                     "A TLB entry maps one page, so with 2 MiB pages each entry reaches 512 times as much "
                     "memory, and a large heap takes far fewer TLB misses.")
            self.step(
                "huge pages",
                f"A memfd of huge pages ({format_size(size)}), committed with fallocate (an empty pool "
                f"fails there with ENOSPC) and touched one byte per 4 KiB: {faults} page faults for "
                f"{size // 4096} writes, one per 2 MiB page instead of one per 4 KiB page. {reach} "
                f"Huge pages are in neither RSS nor PSS: this process holds {human(held)} of them "
                f"(HugetlbPages).\n{self.calls_since(mark)}",
                [(f"grep HugetlbPages /proc/{self.pid}/status", f"{held >> 10} kB"),
                 ("grep -E 'HugePages_(Total|Free)' /proc/meminfo", f"{need} fewer free than before"),
                 (f"grep -A3 '^{view.start:x}-' /proc/{self.pid}/smaps | grep -E 'KernelPageSize'",
                  "KernelPageSize: 2048 kB")],
                {"huge": True, "faults": faults, "hugetlb": held})
        finally:
            reservation.close()
            backend.close()

    def close(self):
        names = ("memfd:miniheap", "SYSV", "dev/zero (deleted)")
        self.release()
        with open("/proc/self/maps") as f:
            maps = [line for line in f if any(n in line for n in names)]
        fds = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
               if _is_link(f"/proc/self/fd/{fd}")]
        memfds = [fd for fd in fds if "memfd:miniheap" in fd]
        segments = _sysv_segments_of(self.pid)
        verdict = ("nothing is left" if not (maps or memfds or segments) else
                   f"LEFT BEHIND: {len(maps)} mappings, {len(memfds)} memfds, {len(segments)} SysV segments")
        self.step(
            "close",
            f"The heap was closed: views unmapped, reservations released, the backing freed. Checked here: "
            f"{len(maps)} mappings of a backing in /proc/{self.pid}/maps, {len(memfds)} memfds among the open "
            f"fds, {len(segments)} SysV segments created by this process: {verdict}.",
            [(f"grep -cE 'memfd:miniheap|SYSV|dev/zero' /proc/{self.pid}/maps", "0"),
             (f"ls -l /proc/{self.pid}/fd | grep -c memfd", "0"),
             (f"awk -v pid={self.pid} 'NR > 1 && $5 == pid' /proc/sysvipc/shm | wc -l", "0")],
            {"maps": len(maps), "memfds": len(memfds), "segments": len(segments)})

    def release(self):
        self._close_by_hand()
        if self.heap is not None:
            self.heap.close()
            self.heap = None


def barrier_plain():
    from .bench import barrier

    return barrier.PLAIN


def describe_low_bits_pointer(value):
    """A reference of the one-view layout: address << 16 | colour bit, its colour bits marked."""
    from ._native import lib

    colour_bits = [lib.MH_LOW_BITS_COLOR0 << c for c in range(3)]
    colour = [COLOR_NAMES[c] for c in range(3) if value & colour_bits[c]]
    low = format(value & 0xFFFF, "016b")
    marks = "".join("^" if 12 <= b <= 14 else " " for b in range(15, -1, -1))
    return (f"  value            {value:#018x}\n"
            f"  bits 15..0       {low}\n"
            f"                   {marks}  bits 14, 13, 12: the colour = {colour[0] if len(colour) == 1 else 'none'}\n"
            f"  address          {value >> 16:#x} (value >> 16)")


def _permissions(pid, starts, size):
    """{view name: permissions over it in /proc/PID/maps} for views at starts {name: address}."""
    found = {name: set() for name in starts}
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            bounds, perms = line.split()[:2]
            lo, hi = (int(x, 16) for x in bounds.split("-"))
            for name, start in starts.items():
                if lo < start + size and hi > start:
                    found[name].add(perms)
    return {name: " ".join(sorted(perms)) or "?" for name, perms in found.items()}


def _python_command():
    """How to run this interpreter from a shell: python if that is the one on PATH, else its path."""
    import shlex
    import shutil

    found = shutil.which("python")
    if found and os.path.realpath(found) == os.path.realpath(sys.executable):
        return "python"
    return shlex.quote(sys.executable)


def _colour_of(value, bits):
    colours = [COLOR_NAMES[i] for i in range(3) if value >> (bits + i) & 1]
    return colours[0] if len(colours) == 1 else None


def describe_pointer(value, bits):
    """A 64-bit reference with its colour bits marked."""
    top = bits + 2
    binary = format(value >> (bits - 1) & ((1 << (48 - bits + 1)) - 1), f"0{48 - bits + 1}b")
    marks = "".join("^" if bits <= b <= top else " " for b in range(47, bits - 2, -1))
    colour = _colour_of(value, bits)
    label = f"  bits 47..{bits - 1:<2}       "
    return (f"  value            {value:#018x}\n"
            f"{label}{binary}\n"
            f"{' ' * len(label)}{marks}  bits {top}, {top - 1}, {bits}: the colour = "
            f"{colour or 'none (several bits set: not a valid reference)'}\n"
            f"  offset           {value & ((1 << bits) - 1):#x} (value & (1<<{bits})-1): the same in every view")


def _is_link(path):
    try:
        os.readlink(path)
        return True
    except OSError:
        return False


def _sysv_segments_of(pid):
    with open("/proc/sysvipc/shm") as f:
        header = f.readline().split()
        return [row for row in (dict(zip(header, line.split())) for line in f) if int(row["cpid"]) == pid]


def write_outputs(args, recording, out):
    """The files asked for, drawn from the recording of the heap of steps 7 and 8."""
    if not (args.html or args.trace_events):
        return
    if recording is None:
        print(f"\nNot written ({', '.join(p for p in (args.html, args.trace_events) if p)}): the tour ended "
              f"before step 8, the last with a heap to record.", file=out)
        return
    if args.html:
        from .report import write_html

        write_html(args.html, recording)
        print(f"\nreport written to {args.html} (open it in a browser)", file=out)
    if args.trace_events:
        from . import trace_events

        trace_events.write(args.trace_events, recording)
        print(f"trace events written to {args.trace_events} (open in ui.perfetto.dev or chrome://tracing)",
              file=out)


@quiet_on_broken_pipe
def main(argv=None, out=None, prog=None):
    from .config import ConfigError
    from .errors import MiniheapError

    args = parse_args(sys.argv[1:] if argv is None else argv, prog)
    try:
        tour = Tour(args, out)
    except ConfigError as e:
        print(f"miniheap tour: {e}", file=sys.stderr)
        return 2
    problems = output_problems([("--html", args.html), ("--trace-events", args.trace_events)])
    if problems:
        print("\n".join(f"miniheap tour: {p}" for p in problems), file=sys.stderr)
        return 2
    big = memory.too_big_to_commit(tour.size, f"touching a {format_size(tour.size)} heap",
                                   "lower --heap-size (64M is plenty to see everything)")
    if big:
        print(f"miniheap tour: {big}", file=sys.stderr)
        return 2
    try:
        status = tour.run()
        write_outputs(args, tour.recording, tour.out)
        return status
    except (BrokenPipeError, OutputError):
        raise  # standard output closed or full: quiet_on_broken_pipe ends the command with one line
    except (MiniheapError, OSError) as e:
        print(f"miniheap tour: step {tour.number + 1} failed: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nminiheap tour: interrupted; everything was closed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
