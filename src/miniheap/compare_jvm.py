"""``python -m miniheap compare-jvm``: a real JDK's multi-mapped ZGC beside miniheap, figure by figure.

It finds a JDK (``--java``, ``JAVA_HOME``, ``java`` on PATH, then the usual JVM folders), runs the
small program shipped with miniheap (``java/LiveSet.java``, the demo's live set) with ZGC at the same
heap size as a miniheap heap in this process, and reads both processes the same way, through /proc:
the views (maps lines of the heap's memfd, grouped by their highest address bit), the address space
reserved around each view, memfd offsets against virtual offsets, RSS, PSS, Pss_Shmem, the backing's
size, and a few GC log lines. Then it names each difference and why it exists.

Multi-mapped ZGC is JDK 11 to 23 (non-generational; the default ZGC until JDK 23 made generational
the default, JEP 474; removed in JDK 24, JEP 490). A JDK 21 or later adds generational ZGC (JEP 439):
one view, RSS about PSS.
"""
import glob
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import resources

from . import memory
from .cli import Progress, quiet_on_broken_pipe
from .errors import MiniheapError
from .maps import read_maps
from .oneline import OneLineParser
from .sizes import format_bytes_human as human
from .sizes import format_size, parse_size

INSTALL_HINT = ("install one (Debian/Ubuntu: apt-get install openjdk-17-jdk-headless), or point JAVA_HOME "
                "or --java at one")
# Where JDKs live besides JAVA_HOME and PATH. MINIHEAP_JVM_DIRS (colon-separated) replaces the list.
JVM_DIRS = ("/usr/lib/jvm", "/usr/java", "/usr/local", "/usr/local/lib/jvm", "/opt", "/opt/java",
            "~/.sdkman/candidates/java", "~/.jdks")
MULTI_MAPPED = range(11, 24)  # JDK 11..23 have non-generational (multi-mapped) ZGC
GENERATIONAL_FROM = 21


# ----------------------------------------------------------------------------- finding JDKs


class Jdk:
    def __init__(self, java, major, version):
        self.java, self.major, self.version = java, major, version

    def zgc_flags(self, generational):
        if generational:
            return ["-XX:+UseZGC"] + (["-XX:+ZGenerational"] if self.major < 23 else [])
        flags = ["-XX:+UseZGC"]
        if self.major < 15:
            flags.insert(0, "-XX:+UnlockExperimentalVMOptions")
        if self.major == 23:
            flags.append("-XX:-ZGenerational")
        return flags

    def __repr__(self):
        return f"JDK {self.major} ({self.java})"


def candidate_javas(env=os.environ):
    """Paths of java launchers: JAVA_HOME first, then PATH, then the usual JVM folders."""
    found = []
    if env.get("JAVA_HOME"):
        found.append(os.path.join(env["JAVA_HOME"], "bin", "java"))
    on_path = shutil.which("java", path=env.get("PATH", os.defpath))
    if on_path:
        found.append(on_path)
    dirs = env["MINIHEAP_JVM_DIRS"].split(":") if env.get("MINIHEAP_JVM_DIRS") is not None else JVM_DIRS
    for folder in dirs:
        folder = os.path.expanduser(folder)
        found += sorted(glob.glob(os.path.join(folder, "*", "bin", "java")))
        found += sorted(glob.glob(os.path.join(folder, "*", "*", "bin", "java")))
    unique, seen = [], set()
    for path in found:
        real = os.path.realpath(path)
        if os.access(real, os.X_OK) and real not in seen:
            seen.add(real)
            unique.append(real)
    return unique


def probe_java(java):
    """A Jdk for this launcher, or None if it does not run or has no source launcher (a JRE)."""
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'version "(1\.)?(\d+)[^"]*"', result.stderr)
    if result.returncode != 0 or not m:
        return None
    home = os.path.dirname(os.path.dirname(java))
    if not glob.glob(os.path.join(home, "jmods", "jdk.compiler*")) and not os.path.exists(
            os.path.join(home, "bin", "javac")):
        return None  # a JRE: `java File.java` needs the compiler
    return Jdk(java, int(m.group(2)), result.stderr.splitlines()[0])


def find_jdks(env=os.environ, java=None):
    paths = [os.path.realpath(java)] if java else candidate_javas(env)
    return [jdk for jdk in (probe_java(p) for p in paths) if jdk is not None]


# ----------------------------------------------------------------------------- reading a process


class HeapFigures:
    """How one process maps its heap, read from /proc the same way for the JDK and for miniheap."""

    def __init__(self, label, pid, backing_name, gc_lines, coloured=True):
        # coloured: the views sit at colour bits (multi-mapped ZGC, miniheap's colored layout); in
        # generational ZGC the colour is in the pointer's low bits and the heap's base is just an address
        self.label, self.pid, self.gc_lines, self.coloured = label, pid, gc_lines, coloured
        maps = read_maps(pid)
        heap = [m for m in maps if backing_name in m.path]
        self.memfd = heap[0].path if heap else "(none)"
        groups = {}
        for m in heap:
            groups.setdefault(m.start.bit_length() - 1, []).append(m)
        self.views = []
        vmas = memory.read_smaps(pid)
        for bit in sorted(groups):
            base, lines = 1 << bit, groups[bit]
            # The reservation: the heap's lines and the PROT_NONE anonymous lines beside them, up to
            # the next power of two (where the next view starts).
            reserved = sum(m.length for m in maps if base <= m.start < 2 * base
                           and (backing_name in m.path or (m.perms.startswith("---") and m.inode == 0)))
            extent = max(m.end for m in lines) - base
            usage = memory.usage_of(_Range(f"view at 1<<{bit}", base, extent), vmas)
            self.views.append({"bit": bit, "base": base, "mappings": len(lines), "reserved": reserved,
                               "offsets": [(m.start - base, m.offset) for m in lines],
                               "rss": usage.rss, "pss": usage.pss, "extent": extent})
        self.rollup = _rollup(pid)
        self.backing, self.fd_name = _backing(pid, backing_name)
        self.touched = memory.touched_bytes([_Range("v", v["base"], v["extent"]) for v in self.views], pid)

    @property
    def views_rss(self):
        return sum(v["rss"] for v in self.views)

    @property
    def views_pss(self):
        return sum(v["pss"] for v in self.views)

    @property
    def offsets_equal(self):
        pairs = [p for v in self.views for p in v["offsets"]]
        return sum(1 for virtual, file in pairs if virtual == file), len(pairs)

    def as_dict(self):
        return {"label": self.label, "pid": self.pid, "coloured": self.coloured, "memfd": self.memfd, "fd": self.fd_name,
                "views": self.views, "rollup": self.rollup, "backing": self.backing, "touched": self.touched,
                "views_rss": self.views_rss, "views_pss": self.views_pss, "gc": self.gc_lines}


class _Range:
    def __init__(self, name, start, length):
        self.name, self.start, self.length, self.offset = name, start, length, 0


def _rollup(pid):
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            m = re.match(r"^(Rss|Pss|Pss_Shmem):\s+(\d+) kB", line)
            if m:
                fields[m.group(1)] = int(m.group(2)) * 1024
    return fields


def _backing(pid, backing_name):
    """The real size of the heap's memfd (blocks it holds) and its name, through /proc/PID/fd."""
    folder = f"/proc/{pid}/fd"
    for fd in os.listdir(folder):
        try:
            target = os.readlink(os.path.join(folder, fd))
        except OSError:
            continue
        if backing_name in target:
            return os.stat(os.path.join(folder, fd)).st_blocks * 512, target
    return 0, "(none)"


# ----------------------------------------------------------------------------- the two sides


class JvmRun:
    """The shipped Java program under ZGC, stopped at its "ready" line until close()."""

    def __init__(self, jdk, heap_size, work, generational=False, pretouch=True):
        self.jdk, self.generational = jdk, generational
        mb = heap_size >> 20
        source = resources.files("miniheap").joinpath("java/LiveSet.java")
        self._source = resources.as_file(source)
        path = self._source.__enter__()
        # Pre-touched: the whole heap committed at start (-Xms = -Xmx), as the demo's pretouch does.
        # Otherwise the heap starts small and grows, and its memory gets placed out of order.
        sizing = [f"-Xms{mb}m", f"-Xmx{mb}m", "-XX:+AlwaysPreTouch"] if pretouch else ["-Xms16m", f"-Xmx{mb}m"]
        self.command = [jdk.java, *jdk.zgc_flags(generational), *sizing, "-Xlog:gc,gc+init", str(path), str(work)]
        # A sanitizer preloaded into this Python (tools/sanitize) must not be preloaded into the JVM.
        env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
        self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=env)
        self.lines, self.pid = [], None
        deadline = time.monotonic() + 180
        for line in self.process.stdout:
            if line.startswith("miniheap-compare ready "):
                self.pid = int(line.split()[-1])
                break
            self.lines.append(line.rstrip("\n"))
            if time.monotonic() > deadline:
                break
        if self.pid is None:
            err = self.process.stderr.read() if self.process.poll() is not None else ""
            self.close()
            detail = " ".join((err or "\n".join(self.lines[-3:])).split())[:300]
            raise RuntimeError(f"{jdk} did not start the program: {detail}")

    @property
    def label(self):
        return f"JDK {self.jdk.major} {'generational ' if self.generational else ''}ZGC"

    def figures(self):
        gc = [line for line in self.lines if "[gc" in line and "gc,init" not in line]
        return HeapFigures(self.label, self.pid, "memfd:java_heap", gc, coloured=not self.generational)

    def init_lines(self):
        return [line for line in self.lines if "gc,init" in line]

    def close(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write("\n")
                self.process.stdin.flush()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            stream.close()
        self._source.__exit__(None, None, None)


class MiniheapRun:
    """A coloured miniheap heap of the same size in this process, with the demo's workload run on it."""

    def __init__(self, heap_size, work, color_bits, pretouch=True):
        from .config import HeapConfig
        from .demo import run_workload
        from .heap import Heap

        self._log = tempfile.NamedTemporaryFile("r", suffix=".log", prefix="miniheap-gc-")
        overrides = {"backend": "memfd", "mapping": "colored", "heap_size": heap_size,
                     # a quarter of the heap, at most 64M: the workload needs no more, and young is
                     # committed at start
                     "young_size": max(min(heap_size // 4, 64 << 20) // (2 << 20) * (2 << 20), 8 << 20),
                     "pretouch": pretouch, "gc_log": f"gc:file={self._log.name}"}
        if color_bits is not None:
            overrides["color_bits"] = color_bits
        self.heap = Heap(HeapConfig.load(cli=overrides).config)
        run_workload(self.heap, work, io.StringIO(), _NoSampler())
        self.heap.collect(full=True)

    label = "miniheap"

    def figures(self):
        # as the JDK's lines are chosen: every gc line but the init ones (miniheap's coloured heap is the
        # zgc collector, whose lines are "Garbage Collection (...)" cycles, not "Pause" lines)
        with open(self._log.name) as log:
            gc = [line.rstrip("\n") for line in log if "[gc" in line and "gc,init" not in line]
        return HeapFigures(self.label, os.getpid(), "memfd:miniheap", gc)

    def close(self):
        self.heap.close()
        self._log.close()


class _NoSampler:
    def sample(self, full=False):
        pass


# ----------------------------------------------------------------------------- the report


def side_by_side(columns):
    def views(f, key, fmt):
        return ", ".join(fmt(v[key]) for v in f.views) or "-"

    def offsets(f):
        same, total = f.offsets_equal
        if not total:
            return "-"
        return "equal on every line" if same == total else f"differ on {total - same} of {total} lines"

    rows = [
        ("process", lambda f: f"pid {f.pid}"),
        ("views (maps lines of the heap)", lambda f: str(len(f.views))),
        ("view base addresses", lambda f: views(f, "base", hex)),
        ("view colour bits", lambda f: views(f, "bit", str) if f.coloured else "none (low pointer bits)"),
        ("mappings per view", lambda f: views(f, "mappings", str)),
        ("address space reserved per view", lambda f: views(f, "reserved", format_size)),
        ("backing in /proc/PID/maps", lambda f: f.memfd),
        ("memfd offset vs virtual offset", offsets),
        ("RSS (smaps_rollup)", lambda f: human(f.rollup.get("Rss", 0))),
        ("PSS (smaps_rollup)", lambda f: human(f.rollup.get("Pss", 0))),
        ("Pss_Shmem (smaps_rollup)", lambda f: human(f.rollup.get("Pss_Shmem", 0))),
        ("views' RSS", lambda f: human(f.views_rss)),
        ("views' PSS", lambda f: human(f.views_pss)),
        ("views' RSS / PSS", lambda f: f"{f.views_rss / f.views_pss:.1f}" if f.views_pss else "-"),
        ("backing size (memfd blocks)", lambda f: human(f.backing)),
        ("touched (pagemap)", lambda f: "unknown" if f.touched is None else human(f.touched)),
    ]
    table = [("", *[f.label for f in columns])] + [(name, *[get(f) for f in columns]) for name, get in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table)


def offset_lines(f, limit=6):
    """The first view's maps lines: where each sits in the view, and which part of the memfd it maps."""
    if not f.views:
        return ""
    view = f.views[0]
    rows = [f"\n{f.label}, view at {view['base']:#x}: each maps line's offset in the view and in the memfd "
            f"(the offset column of /proc/{f.pid}/maps)"]
    for virtual, file in view["offsets"][:limit]:
        rows.append(f"  +{virtual:#012x} in the view  ->  {file:#012x} in the memfd"
                    + ("" if virtual == file else "   (differs)"))
    if len(view["offsets"]) > limit:
        rows.append(f"  ... {len(view['offsets']) - limit} more lines")
    return "\n".join(rows)


def differences(jdk, mine, heap_size, generational=None):
    """Each difference between the JDK's figures and miniheap's, with why it exists."""
    out = []
    jb, mb = [v["base"] for v in jdk.views], [v["base"] for v in mine.views]
    if jb == mb:
        out.append(f"View addresses: the same ({', '.join(hex(b) for b in jb)}): miniheap puts its views at the "
                   f"colour bits JDK 17 chooses for this heap size.")
    else:
        out.append(f"View addresses: the JDK's views are at colour bits {[v['bit'] for v in jdk.views]}, "
                   f"miniheap's at {[v['bit'] for v in mine.views]}. The JDK picks its bits from the maximum heap "
                   f"(42 to 44: bits 42-44 up to a 256G heap, 44-46 at -Xmx1t); miniheap takes color_bits from its "
                   f"configuration (under AddressSanitizer 28, as ASan's shadow memory covers 4T to 16T).")
    jr = [v["reserved"] for v in jdk.views]
    mr = [v["reserved"] for v in mine.views]
    if jr and mr and jr[0] != mr[0]:
        out.append(f"Address space per view: the JDK reserves {format_size(jr[0])} per view for a maximum heap of "
                   f"{format_size(heap_size)}; miniheap reserves exactly its heap, {format_size(mr[0])}. ZGC reserves "
                   f"several times the maximum heap (16x in JDK 17) so that it can place a page anywhere and "
                   f"never fail for lack of contiguous virtual space. It costs no memory, only addresses, but "
                   f"three views of it must fit in the 128T of user space: JEP 439 names the 16 TB heap limit "
                   f"of the multi-mapped design.")
    jm = [v["mappings"] for v in jdk.views]
    mm = [v["mappings"] for v in mine.views]
    if jm != mm:
        out.append(f"Mappings per view: {jm} for the JDK, {mm} for miniheap. ZGC maps each page's memory in "
                   f"2 MiB granules, one mmap at a time; the kernel merges neighbouring mappings of the same file "
                   f"only where their file offsets are contiguous, so a fragmented heap shows many lines. "
                   f"miniheap maps each view with one mmap of the whole backing.")
    same, total = jdk.offsets_equal
    if same != total:
        out.append(f"memfd offsets: on {total - same} of the JDK's {total} lines the file offset differs from the "
                   f"offset inside the view. ZGC allocates physical memory (memfd offsets) apart from virtual "
                   f"memory and maps any free physical segment under any virtual page. miniheap's views map "
                   f"offset o at base + o.")
    else:
        out.append("memfd offsets: equal to the virtual offsets on both sides here, because -Xms = -Xmx "
                   "committed the JDK's whole heap at once, in order. Once a ZGC heap grows, shrinks or fragments, "
                   "it maps any free physical segment under any virtual page, and the offsets part (run with "
                   "--no-pretouch to see it).")
    if jdk.memfd != mine.memfd:
        out.append(f"Names: {jdk.memfd} against {mine.memfd}: each names its memfd (memfd_create's first "
                   f"argument); the name is all /proc shows of it.")
    out.append(f"RSS: the JDK's process RSS ({human(jdk.rollup.get('Rss', 0))}) includes the JVM itself (code "
               f"cache, metaspace, thread stacks, the compiler of the source launcher), miniheap's includes "
               f"CPython; compare the views' figures: RSS / PSS {jdk.views_rss / max(jdk.views_pss, 1):.1f} for the "
               f"JDK, {mine.views_rss / max(mine.views_pss, 1):.1f} for miniheap (3.0 when every page was touched "
               f"through all three views).")
    out.append("GC log: both collect in concurrent cycles, logged in JDK 17 ZGC's -Xlog:gc format (Garbage "
               "Collection (reason) before->after, with pauses of well under a millisecond inside them): "
               "miniheap's coloured heap is its zgc collector. Its cycles start for the same reasons (Warmup, "
               "Allocation Rate, System.gc()) but at other moments: the workloads differ in detail, and "
               "miniheap has one GC thread where the JDK sizes its worker threads to the machine.")
    if generational is not None:
        out.append(f"Generational ZGC (JDK {GENERATIONAL_FROM}+, JEP 439): {len(generational.views)} view, RSS / PSS "
                   f"{generational.views_rss / max(generational.views_pss, 1):.1f}. The colour moved to the low bits "
                   f"of the pointer and the load barrier shifts it away, so one mapping is enough: tools show the "
                   f"real size and the address-space cost is gone. Non-generational ZGC stopped being the "
                   f"default in JDK 23 (JEP 474) and was removed in JDK 24 (JEP 490).")
    return out


def parse_args(argv, prog=None):
    p = OneLineParser(prog=prog or "python -m miniheap compare-jvm",
                      description="JDK ZGC (multi-mapped) and miniheap side by side, read through /proc.")
    p.add_argument("--java", metavar="PATH", help="the java launcher to use (default: JAVA_HOME, PATH, "
                   "then the usual JVM folders; MINIHEAP_JVM_DIRS replaces the folders)")
    p.add_argument("--heap-size", default="256M", metavar="SIZE", help="heap size of both (default 256M)")
    p.add_argument("--work", type=int, default=96, metavar="MB", help="MiB each allocates, counted in miniheap's object sizes (default 96)")
    p.add_argument("--no-pretouch", action="store_true", help="without -XX:+AlwaysPreTouch / pretouch")
    p.add_argument("--figures", action="store_true", help="also print every figure as one JSON line")
    p.add_argument("--wait", action="store_true",
                   help="keep both heaps mapped until a line is read on standard input (to check with /proc)")
    return p.parse_args(argv)


@quiet_on_broken_pipe
def main(argv=None, out=None, prog=None):
    import json

    out = out or sys.stdout
    args = parse_args(sys.argv[1:] if argv is None else argv, prog)
    try:
        heap_size = parse_size(args.heap_size)
    except ValueError as e:
        print(f"compare-jvm: --heap-size {e}", file=sys.stderr)
        return 2
    if heap_size < 16 << 20 or heap_size % (2 << 20) or args.work <= 0:
        print(f"compare-jvm: --heap-size {args.heap_size} --work {args.work}: the heap must be a multiple of 2M "
              f"of at least 16M and the work at least 1 MB (e.g. --heap-size 256M --work 96)", file=sys.stderr)
        return 2
    # Pre-touched, each side holds its whole heap: the JDK, miniheap, and a generational JDK.
    big = memory.too_big_to_commit(3 * heap_size, f"comparing pre-touched heaps of {format_size(heap_size)}",
                                   "lower --heap-size (256M shows everything), or add --no-pretouch")
    if big and not args.no_pretouch:
        print(f"compare-jvm: {big}", file=sys.stderr)
        return 2
    if args.java and not (os.path.isfile(args.java) and os.access(args.java, os.X_OK)):
        print(f"compare-jvm: --java {args.java}: no such program: give the path of a JDK's bin/java, or leave "
              f"out --java to search JAVA_HOME, PATH and {':'.join(JVM_DIRS)}", file=sys.stderr)
        return 2
    jdks = find_jdks(java=args.java)
    if args.java and not jdks:
        print(f"compare-jvm: --java {args.java}: not a JDK's java launcher (java -version did not answer, or it "
              f"has no compiler to run a source file: a JRE): {INSTALL_HINT}", file=sys.stderr)
        return 2
    multi = sorted((j for j in jdks if j.major in MULTI_MAPPED), key=lambda j: abs(j.major - 17))
    if not multi:
        seen = ", ".join(f"JDK {j.major} at {j.java}" for j in jdks) or "none"
        print(f"compare-jvm: no JDK with multi-mapped ZGC (JDK 11 to 23) found (JAVA_HOME, PATH, "
              f"{':'.join(JVM_DIRS)}; found: {seen}): {INSTALL_HINT}", file=sys.stderr)
        return 2
    generational_jdk = max((j for j in jdks if j.major >= GENERATIONAL_FROM), key=lambda j: j.major, default=None)
    color_bits = None
    if os.environ.get("MINIHEAP_COLOR_BITS"):
        color_bits = int(os.environ["MINIHEAP_COLOR_BITS"])
    runs = []
    # Three programs run before anything can be printed: a status line on a terminal says which.
    progress = Progress("compare-jvm")
    try:
        progress.update(f"JDK {multi[0].major} ZGC runs LiveSet.java")
        jvm = JvmRun(multi[0], heap_size, args.work, pretouch=not args.no_pretouch)
        runs.append(jvm)
        jdk = jvm.figures()
        if color_bits is None and jdk.views:
            color_bits = jdk.views[0]["bit"]  # the JDK's own choice for this heap size
        gen = None
        if generational_jdk is not None:
            progress.update(f"JDK {generational_jdk.major} generational ZGC runs LiveSet.java")
            gen_run = JvmRun(generational_jdk, heap_size, args.work, generational=True,
                             pretouch=not args.no_pretouch)
            runs.append(gen_run)
            gen = gen_run.figures()
        progress.update("miniheap runs the same workload")
        mine_run = MiniheapRun(heap_size, args.work, color_bits, pretouch=not args.no_pretouch)
        runs.append(mine_run)
        mine = mine_run.figures()
        progress.close()
        columns = [jdk, mine] + ([gen] if gen else [])
        print(f"compare-jvm: heap {format_size(heap_size)}, the same objects on each side ({args.work} MiB in "
              f"miniheap's object sizes), "
              f"{'pre-touched' if not args.no_pretouch else 'not pre-touched'}", file=out)
        print(f"JDK: {multi[0].version} ({multi[0].java})\n  $ {' '.join(jvm.command)}", file=out)
        if gen:
            print(f"JDK: {generational_jdk.version} ({generational_jdk.java})\n  $ {' '.join(gen_run.command)}",
                  file=out)
        print("\n" + side_by_side(columns), file=out)
        for f in columns:
            print(f"\nGC log, {f.label} (first lines):", file=out)
            for line in f.gc_lines[:4]:
                print(f"  {line}", file=out)
        print(offset_lines(jdk), file=out)
        init = [line for line in jvm.init_lines() if "Address Space" in line or "Backing" in line]
        if init:
            print(f"\n{jdk.label} says of its address space (-Xlog:gc+init):", file=out)
            for line in init:
                print(f"  {line}", file=out)
        print("\nDifferences, and why:", file=out)
        for text in differences(jdk, mine, heap_size, gen):
            print(f"* {text}", file=out)
        if args.figures:
            print("figures " + json.dumps([f.as_dict() for f in columns]), file=out)
        out.flush()
        if args.wait:
            sys.stdin.readline()
    except RuntimeError as e:
        print(f"compare-jvm: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise  # a closed standard output: quiet_on_broken_pipe ends the command
    except (ValueError, MemoryError, OSError, MiniheapError) as e:  # a heap miniheap cannot build here
        print(f"compare-jvm: miniheap's heap: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    finally:
        progress.close()
        for run in reversed(runs):
            run.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
