"""``python -m miniheap verify-views``: a load that skips the barrier, caught by verify-views.

With ``verify_views = true`` only the good colour's view of a zgc heap is accessible; the two others
are PROT_NONE from one flip of the good colour to the next (HotSpot's ``-XX:+ZVerifyViews``, a
diagnostic flag of the multi-mapped ZGC, e.g. JDK 17's). This command builds such a heap, shows the views' permissions between
cycles and during marking (``/proc/PID/maps``), then reads a reference field the way code that forgot
the load barrier would: it takes the raw 64-bit value, whose colour is stale, and dereferences it.
The process dies with SIGSEGV, on purpose: that fault is the point. With ``--no-verify-views`` the same
read succeeds, and the missing barrier goes unnoticed.

``--wait`` stops at each view listing (a line ``waiting: WHAT``) until a line arrives on standard
input, so another process (the tour, a test, a learner in another terminal) can read /proc/PID/maps
while this one holds still. During marking it holds the heap meanwhile, so the GC thread's next pause
(Pause Mark End) waits for it, as a safepoint waits for a thread that has not reached it.
"""
import os
import sys
import threading
import time

from .cli import GuardedOutput, OutputError, quiet_on_broken_pipe
from .oneline import OneLineParser

COLOR_NAMES = ("Marked0", "Marked1", "Remapped")
# The live set the GC thread traces: marking then lasts long enough (milliseconds) to be caught.
LIVE_NODES = 200000
ATTEMPTS = 20
HEAP_SIZE = "32M"


def parse_args(argv, prog=None):
    p = OneLineParser(prog=prog or "python -m miniheap verify-views",
                      description="A zgc heap with only the good colour's view accessible (HotSpot's "
                                  "ZVerifyViews); a load that skips the barrier then dies with SIGSEGV.")
    p.add_argument("--no-verify-views", action="store_true",
                   help="leave every view accessible: the same load then succeeds, and the bug is missed")
    p.add_argument("--wait", action="store_true",
                   help="at each view listing, print 'waiting: WHAT' and wait for a line on standard input")
    p.add_argument("--backend", choices=("memfd", "shm-mremap", "anon-mremap"), default="memfd",
                   help="where the pages come from (default memfd, as ZGC)")
    return p.parse_args(argv)


def view_permissions(pid, views):
    """{view name: the permissions /proc/PID/maps shows over it} ('?' if several or none)."""
    found = {v.name: set() for v in views}
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            bounds, perms = line.split()[:2]
            lo, hi = (int(x, 16) for x in bounds.split("-"))
            for v in views:
                if lo < v.start + v.length and hi > v.start:
                    found[v.name].add(perms)
    return {name: perms.pop() if len(perms) == 1 else "?" for name, perms in found.items()}


class Run:
    def __init__(self, args, out):
        from .config import HeapConfig
        from .heap import Heap

        self.args, self.out = args, out
        # The configuration layers apply (MINIHEAP_COLOR_BITS moves the views under AddressSanitizer).
        config = HeapConfig.load(cli={"backend": args.backend, "mapping": "colored", "heap_size": HEAP_SIZE,
                                      "verify_views": not args.no_verify_views, "gc_log": "off"}).config
        self.heap = Heap(config)
        self.pid = os.getpid()

    def say(self, text=""):
        print(text, file=self.out, flush=True)

    def show_views(self, when, what):
        views = self.heap.layout.views
        perms = view_permissions(self.pid, views)
        self.say(f"\n{when}, the views in /proc/{self.pid}/maps:")
        for v in views:
            self.say(f"  {v.name:<9} {v.start:#016x}  {perms[v.name]}")
        if self.args.wait:
            self.say(f"waiting: {what}")
            sys.stdin.readline()

    def run(self):
        from ._native import ffi, lib

        heap, ptr = self.heap, self.heap._ptr
        verify = heap.config.verify_views
        self.say(f"miniheap verify-views (PID {self.pid}): a zgc heap of "
                 f"{heap.config.heap_size >> 20}M, verify_views = {'true' if verify else 'false'}")
        # a long list (so marking takes a while), and an object whose slot will hold a stale colour
        head = node = heap.alloc(refs=1)
        for _ in range(LIVE_NODES):
            nxt = heap.alloc(refs=1)
            node[0] = nxt
            node = nxt
        del node, nxt
        holder, target = heap.alloc(refs=1), heap.alloc(data=8)
        target.data[:8] = (0x5EED).to_bytes(8, "little")
        holder[0] = target
        del target
        heap.collect()
        self.show_between_cycles(lib)
        self.catch_marking(lib)
        # Hold the heap: no flip can happen between reading the raw value and dereferencing it. The
        # director may have started a cycle of its own whose marking made the slot's colour good again:
        # then let it finish and look again.
        for _ in range(ATTEMPTS):
            lib.mh_lock(ptr)
            try:
                raw = heap.raw_slot(holder, 0)
                colour, good = lib.mh_ref_color(ptr, raw), lib.mh_good_color(ptr)
                if colour != good:
                    self.skip_the_barrier(ffi, raw, colour, good)
                    break
            finally:
                lib.mh_unlock(ptr)
            heap.collect()
        else:
            self.say(f"\nSlot 0 never held a stale reference in {ATTEMPTS} cycles: nothing to show.")
            return 1
        head.release()
        holder.release()
        heap.close()
        return 0

    def skip_the_barrier(self, ffi, raw, colour, good):
        self.say(f"\nSlot 0 of an object, as marking left it (no load has healed it since): {raw:#018x}, "
                 f"coloured {COLOR_NAMES[colour]}; the good colour is {COLOR_NAMES[good]}, so the reference "
                 f"is stale: a load must go through the barrier (holder[0]), which would remap it and heal "
                 f"the field.")
        self.say(f"Reading 8 bytes at {raw:#x} directly, skipping the barrier...")
        value = ffi.cast("uint64_t *", raw)[0]  # verify_views: SIGSEGV here
        self.say(f"read {value:#018x} (the object's header): no fault, because the stale colour's view is "
                 f"mapped and accessible. The missing barrier went unnoticed; had the object moved, this "
                 f"would have read its old copy.")

    def show_between_cycles(self, lib):
        """List the views with no cycle flipping them: the good colour Remapped, the heap held meanwhile.
        collect() has just ended a cycle, but the director may start one of its own at once (a Warmup
        one: the list fills more than a tenth of the heap), whose Pause Mark Start would close the
        Remapped view under the listing, or before another process reads it. Holding the heap, no
        pause can run; if marking runs already, let it go on to Relocate Start and look again. (A
        cycle that is relocating leaves the views as between cycles: only Remapped is open.)"""
        ptr = self.heap._ptr
        while True:
            lib.mh_lock(ptr)
            try:
                if lib.mh_good_color(ptr) == lib.MH_COLOR_REMAPPED:
                    self.show_views("Between cycles (good colour Remapped; this thread holds the heap, so no "
                                    "cycle can flip the views meanwhile)", "between cycles")
                    return
            finally:
                lib.mh_unlock(ptr)
            time.sleep(0.001)  # marking: the GC thread needs the heap for Pause Mark End

    def catch_marking(self, lib):
        """Run a cycle on another thread and hold the heap while its marking runs."""
        heap, ptr = self.heap, self.heap._ptr
        for _ in range(ATTEMPTS):
            cycle = threading.Thread(target=heap.collect)
            cycle.start()
            held = False
            while cycle.is_alive() and not held:
                lib.mh_lock(ptr)
                if lib.mh_good_color(ptr) != lib.MH_COLOR_REMAPPED:  # a marking colour: Concurrent Mark runs
                    held = True
                    try:
                        self.show_views(f"During Concurrent Mark (good colour "
                                        f"{COLOR_NAMES[lib.mh_good_color(ptr)]}; this thread holds the "
                                        f"heap, so Pause Mark End waits)", "marking")
                    finally:
                        lib.mh_unlock(ptr)
                else:
                    lib.mh_unlock(ptr)
            cycle.join()
            if held:
                return
        self.say(f"\n(Marking ended too fast to be caught in {ATTEMPTS} cycles: no view listing during it.)")


@quiet_on_broken_pipe
def main(argv=None, out=None, prog=None):
    from .config import ConfigError
    from .errors import MiniheapError

    args = parse_args(sys.argv[1:] if argv is None else argv, prog)
    out = GuardedOutput(out or sys.stdout)
    try:
        return Run(args, out).run()
    except (BrokenPipeError, OutputError):
        raise  # standard output closed or full: quiet_on_broken_pipe ends the command
    except (ConfigError, MiniheapError, OSError) as e:
        print(f"miniheap verify-views: {' '.join(str(e).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
