"""zgc-latency: a large live set under steady churn, on miniheap's zgc and serial collectors and on JDK
17's ZGC, in the same run, with the same heap size, live set and churn (issue #10).

The workload (native/bench/zlatency.c, and its peer miniheap/bench/peers/ZLatency.java): a root array
holding linked lists of 64 nodes of 40 bytes (one reference and 24 payload bytes on miniheap; one
reference and two longs on a JVM running ZGC, which has no compressed pointers: 40 bytes too, as
``jmap -histo`` shows); the live set is 50, 200 or 500 MiB of them in a heap about 2.5 times larger.
Then, until the churn has allocated four times the live set: walk a random list checking every node
(loads, through the load barrier), and replace another random list with a new one (allocations and
stores). The live set stays the same; the replaced lists are garbage. Every list is checked at the end.

miniheap runs the C mutator on the inline fast path, on a heap built through the façade (memfd,
pre-touched as the JVM with -XX:+AlwaysPreTouch). Its pauses are the heap's own: each of zgc's pauses
(timed, as the JDK times its pauses, from when the GC thread holds the stopped heap), or each
collection of the serial collector. The JVM's come from its -Xlog:gc* log, read by
miniheap.zgclog.parse_zgc_log. Run by run the three subjects alternate, so machine noise falls on all.
"""
import glob
import os
import re
import shutil
import subprocess
import tempfile

from importlib import resources

from .common import (BenchFailed, Clock, MIB, Metric, Result, Target, Unavailable, close_heap, native,
                     native_heap, open_heap, percentile, ratio)

NAME = "zgc-latency"
TITLE = "a large live set under churn: miniheap zgc vs miniheap serial vs JDK 17 ZGC, same heap, live set, churn"

NODE = 40           # bytes of a node, on miniheap and on the JVM with ZGC
NODE_PAYLOAD = 24   # miniheap: 8-byte header + one 8-byte reference + 24 payload bytes (the stamp first)
LIST = 64           # nodes per list
CHURN = 4           # the churn allocates this many times the live set
SEED = 2017
SIZES = [(50, 128), (200, 512), (500, 1280)]  # live MiB, heap MiB (about 2.5 times)
# quick (tests): small, but every subject collects at every size; serial needs a 20 MiB young generation
QUICK_SIZES = [(16, 48), (24, 64), (32, 80)]

METRICS = [
    Metric("time_ms", "total time: build + churn + final check (ms)", "{:.0f}"),
    Metric("cycles", "collections (zgc: cycles)", "{:.0f}"),
    Metric("pauses", "pauses", "{:.0f}"),
    Metric("pause_max_ms", "max pause (ms)", "{:.3f}"),
    Metric("pause_p99_ms", "p99 pause (ms)", "{:.3f}"),
    Metric("pause_total_ms", "total pause (ms)", "{:.3f}"),
    Metric("mark_ms", "Concurrent Mark per cycle, mean (ms)", "{:.1f}"),
    Metric("relocate_ms", "Concurrent Relocate per cycle, mean (ms)", "{:.1f}"),
    Metric("concurrent_ms", "all concurrent phases, total (ms)", "{:.0f}"),
    Metric("stalls", "allocation stalls", "{:.0f}"),
    Metric("stall_ms", "allocation stall time (ms)", "{:.1f}"),
    Metric("relocation_stalls", "relocation stalls", "{:.0f}"),
    Metric("by_mutator", "objects relocated by the mutator", "{:.0f}"),
]

# The concurrent phases that make up "Concurrent Mark" of a cycle, as the JDK logs them.
MARK_PHASES = ("Concurrent Mark", "Concurrent Mark Continue")


def nodes_for(mib):
    return mib * MIB // NODE // LIST * LIST


def serial_shape(heap_mb):
    """SerialGC's default generation sizes for -Xmx heap_mb, in 2 MiB regions (as the scaling bench)."""
    young = max(20, round(heap_mb / 3 / 2) * 2)
    return dict(young_size=f"{young}M", survivor_ratio=8, tenuring_threshold=15)


# -- figures: pure functions of what a run left behind ---------------------------------------------

def pause_stats(pauses):
    """Count, max, p99 and total of [(name, ms)], and the name of the longest."""
    if not pauses:
        return {"pauses": 0, "pause_max_ms": 0.0, "pause_p99_ms": 0.0, "pause_total_ms": 0.0}, None
    ms = sorted(p for _, p in pauses)
    longest = max(pauses, key=lambda p: p[1])[0]
    return {"pauses": len(ms), "pause_max_ms": ms[-1], "pause_p99_ms": percentile(ms, 99),
            "pause_total_ms": sum(ms)}, longest


def _per_cycle(phases):
    """{cycle: {phase name: ms}} of [(cycle, name, ms)], summing a name that repeats in a cycle."""
    out = {}
    for cycle, name, ms in phases:
        out.setdefault(cycle, {}).setdefault(name, 0.0)
        out[cycle][name] += ms
    return out


def _concurrent_figures(concurrent):
    """Mean Concurrent Mark and Concurrent Relocate per cycle, and the total of every concurrent phase,
    from [(cycle, name, ms)]; a cycle cut short (the program ended) counts only for what it logged."""
    by_cycle = _per_cycle(concurrent)
    mark = [sum(c[n] for n in MARK_PHASES if n in c) for c in by_cycle.values() if "Concurrent Mark" in c]
    relocate = [c["Concurrent Relocate"] for c in by_cycle.values() if "Concurrent Relocate" in c]
    return {"mark_ms": sum(mark) / len(mark) if mark else None,
            "relocate_ms": sum(relocate) / len(relocate) if relocate else None,
            "concurrent_ms": sum(ms for _, _, ms in concurrent)}


def jdk_figures(log_text, stdout):
    """The table's figures for one JVM run: from its -Xlog:gc* log and what ZLatency printed."""
    from miniheap.zgclog import parse_zgc_log

    m = re.search(r"^total ms ([\d.]+)$", stdout, re.M)
    if m is None or "ok checks" not in stdout:
        raise BenchFailed(f"ZLatency printed no result: {stdout.strip()[-300:]}")
    parsed = parse_zgc_log(log_text)
    pauses, longest = pause_stats([(name, ms) for _, name, ms in parsed["pauses"]])
    out = {"time_ms": float(m[1]), "cycles": len(parsed["cycles"])}
    out.update(pauses)
    out.update(_concurrent_figures(parsed["concurrent"]))
    allocation = [ms for name, _, ms in parsed["stalls"] if name == "Allocation Stall"]
    out.update(stalls=len(allocation), stall_ms=sum(allocation),
               relocation_stalls=sum(1 for name, _, _ in parsed["stalls"] if name == "Relocation Stall"))
    return out, longest


def zgc_figures(events, stats):
    """Figures of a miniheap zgc run from its events (GCEvent records) and its mh_stats.

    Counts, the total and the max come from the stats, which are exact whatever the event history
    kept; the p99 and the per-cycle phase times from the events, which must then all be there."""
    cycles = [e for e in events if e.zgc and not e.stall]
    pauses = [(p.name, p.ms) for e in cycles for p in e.phases if p.pause]
    if len(cycles) != stats.zgc_cycles or len(pauses) != stats.pauses:
        raise BenchFailed(f"the events hold {len(cycles)} cycles and {len(pauses)} pauses, the stats "
                          f"{stats.zgc_cycles} and {stats.pauses}: events were lost (events_dropped="
                          f"{stats.events_dropped})")
    out, longest = pause_stats(pauses)
    out.update(pause_max_ms=stats.max_pause_ns / 1e6, pause_total_ms=stats.total_pause_ns / 1e6)
    out["cycles"] = stats.zgc_cycles
    out.update(_concurrent_figures([(i, p.name, p.ms) for i, e in enumerate(cycles)
                                    for p in e.phases if not p.pause]))
    out.update(stalls=stats.allocation_stalls, stall_ms=stats.allocation_stall_ns / 1e6,
               relocation_stalls=stats.relocation_stalls, by_mutator=stats.objects_relocated_by_mutator)
    return out, longest


def serial_figures(events, stats):
    """Figures of a miniheap serial run: one pause per collection, as SerialGC logs them."""
    pauses = [("Pause Full" if e.full else "Pause Young", e.ns_total / 1e6) for e in events]
    if len(pauses) != stats.young_collections + stats.full_collections:
        raise BenchFailed(f"the events hold {len(pauses)} collections, the stats "
                          f"{stats.young_collections + stats.full_collections}: events were lost")
    out, longest = pause_stats(pauses)
    out["cycles"] = len(pauses)
    return out, longest


def targets(sizes, zgc, serial, jdk, jdk_unavailable=""):
    """The issue's targets, from the medians: zgc, serial, jdk map a live size to {metric: median}."""
    out = []
    first, last = sizes[0], sizes[-1]
    for live in sizes:
        z = zgc.get(live, {})
        out.append(Target(f"zgc-latency, {live} MiB live: miniheap zgc max pause (ms)",
                          z.get("pause_max_ms"), 1.0, op="<"))
        out.append(Target(f"zgc-latency, {live} MiB live: zgc max pause / JDK 17 ZGC's",
                          ratio(z.get("pause_max_ms"), jdk.get(live, {}).get("pause_max_ms")), 1.0,
                          note=f"JDK ZGC {jdk_unavailable}" if jdk_unavailable else ""))
        out.append(Target(f"zgc-latency, {live} MiB live: zgc total time / serial's",
                          ratio(z.get("time_ms"), serial.get(live, {}).get("time_ms")), 1.5))
    out.append(Target(f"zgc-latency: zgc max pause at {last} MiB live / at {first} MiB",
                      ratio(zgc.get(last, {}).get("pause_max_ms"), zgc.get(first, {}).get("pause_max_ms")), 1.5))
    return out


# -- running ----------------------------------------------------------------------------------------

def run_miniheap(ffi, lib, collector, live_mib, heap_mb):
    """One run of zlatency.c on a fresh façade heap: (figures, name of the longest pause)."""
    fields = dict(heap_size=f"{heap_mb}M", region_size="2M")
    fields.update(dict(collector="zgc") if collector == "zgc" else serial_shape(heap_mb))
    if collector == "zgc" and os.environ.get("MINIHEAP_COLOR_BITS"):
        # the sanitizer stages (tools/sanitize, tools/tsan) move the coloured views low, below the
        # shadow memory that sits at ZGC's addresses; HeapConfig.load reads the same variable
        fields["color_bits"] = os.environ["MINIHEAP_COLOR_BITS"]
    heap = open_heap(**fields)
    try:
        p = ffi.new("mh_zlat_params *")
        p.live_nodes, p.list_length, p.node_bytes = nodes_for(live_mib), LIST, NODE_PAYLOAD
        p.churn_nodes, p.seed = CHURN * nodes_for(live_mib), SEED
        r = ffi.new("mh_zlat_result *")
        ptr = native_heap(heap)
        if lib.mh_zlat_run(ptr, p, r) != 0 or not r.ok:
            raise BenchFailed(f"zlatency.c on {collector}: {ffi.string(r.error).decode(errors='replace')}")
        if lib.mh_verify(ptr):
            raise BenchFailed(f"mh_verify after zlatency.c on {collector}: "
                              f"{ffi.string(lib.mh_last_error_message(ptr)).decode(errors='replace')}")
        events = heap.events  # delivers what the GC thread queued
        stats = lib.mh_get_stats(ptr)
        figures, longest = (zgc_figures if collector == "zgc" else serial_figures)(events, stats)
        figures["time_ms"] = r.ns_total / 1e6
        return figures, longest
    finally:
        close_heap(heap)


def find_jdk17():
    """(java, javac) of a JDK 17: the one on PATH if it is 17, else one in /usr/lib/jvm."""
    candidates = [(shutil.which("java"), shutil.which("javac"))]
    candidates += [(os.path.join(d, "bin", "java"), os.path.join(d, "bin", "javac"))
                   for d in sorted(glob.glob("/usr/lib/jvm/*17*"))]
    seen = []
    for java, javac in candidates:
        if not java or not javac or not os.access(java, os.X_OK) or not os.access(javac, os.X_OK):
            continue
        version = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60,
                                 env=java_env()).stderr
        first = version.splitlines()[0] if version else "?"
        if re.search(r'version "17[."]', version):
            return java, javac, first
        seen.append(f"{java}: {first}")
    if not seen:
        raise Unavailable("no java and javac on PATH nor in /usr/lib/jvm: install JDK 17 "
                          "(e.g. apt-get install openjdk-17-jdk-headless)")
    raise Unavailable(f"no JDK 17 found ({'; '.join(seen)}): non-generational ZGC is JDK 11-23's, and this "
                      f"benchmark compares with JDK 17's; install openjdk-17-jdk-headless")


def java_env():
    """The environment for the JVM: without a sanitizer preloaded into this process (tools/sanitize),
    whose shadow memory takes the addresses ZGC reserves its heap views at."""
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS",
                                                             "TSAN_OPTIONS")}


class JavaZLatency:
    """ZLatency.java (package data), compiled once, run with ZGC and -Xlog:gc*."""

    def __init__(self):
        self.java, self.javac, self.version = find_jdk17()
        try:
            text = resources.files("miniheap.bench.peers").joinpath("ZLatency.java").read_text()
        except (FileNotFoundError, ModuleNotFoundError) as e:
            raise Unavailable(f"the Java peer is not installed with the package ({e}); reinstall miniheap") from None
        self.dir = tempfile.mkdtemp(prefix="miniheap-zlatency-java-")
        source = os.path.join(self.dir, "ZLatency.java")
        with open(source, "w") as f:
            f.write(text)
        done = subprocess.run([self.javac, "-d", self.dir, source], capture_output=True, text=True, timeout=120,
                              env=java_env())
        if done.returncode != 0:
            self.close()
            raise Unavailable(f"javac failed: {done.stderr.strip()[:400]}")

    def command(self, live_mib, heap_mb, log):
        nodes = nodes_for(live_mib)
        return [self.java, "-XX:+UseZGC", f"-Xms{heap_mb}m", f"-Xmx{heap_mb}m", "-XX:+AlwaysPreTouch",
                f"-Xlog:gc*:file={log}", "-cp", self.dir, "ZLatency", str(nodes), str(LIST),
                str(CHURN * nodes), str(SEED)]

    def run(self, live_mib, heap_mb):
        """One JVM run: (figures, name of the longest pause, command line)."""
        log = os.path.join(self.dir, "gc.log")
        if os.path.exists(log):
            os.unlink(log)
        args = self.command(live_mib, heap_mb, log)
        done = subprocess.run(args, capture_output=True, text=True, timeout=1800, env=java_env())
        if done.returncode != 0:
            raise BenchFailed(f"java ZLatency failed (exit {done.returncode}): "
                              f"{(done.stdout + done.stderr).strip()[-400:]}")
        with open(log) as f:
            figures, longest = jdk_figures(f.read(), done.stdout)
        return figures, longest, " ".join(args)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def run(opts):
    sizes = QUICK_SIZES if opts.quick else SIZES
    runs = opts.runs or (1 if opts.quick else 3)
    result = Result(NAME, TITLE, dict(node_bytes=NODE, list_length=LIST, churn=f"{CHURN} x the live set",
                                      runs=runs, sizes=[f"{live} MiB live in {heap} MiB" for live, heap in sizes]))
    result.metrics = METRICS
    clock = Clock(120 if opts.quick else 1800)
    try:
        ffi, lib = native()
    except Unavailable as e:
        return result.unavailable(str(e))
    if not hasattr(lib, "mh_zlat_run"):
        return result.unavailable("miniheap._native lacks mh_zlat_run: rebuild with pip install -e .")
    zgc = {live: result.subject(f"zgc {live}M", f"miniheap zgc, {heap} MiB heap, zlatency.c") for live, heap in sizes}
    serial = {live: result.subject(f"serial {live}M", f"miniheap serial, {heap} MiB heap (young "
                                   f"{serial_shape(heap)['young_size']}), zlatency.c") for live, heap in sizes}
    jdk = {live: result.subject(f"JDK ZGC {live}M", f"java -XX:+UseZGC -Xms{heap}m -Xmx{heap}m -XX:+AlwaysPreTouch")
           for live, heap in sizes}
    java, jdk_unavailable = None, ""
    try:
        java = JavaZLatency()
        result.params["java"] = f"{java.version} ({java.java})"
    except Unavailable as e:
        jdk_unavailable = f"unavailable: {e}"
        for s in jdk.values():
            s.unavailable = str(e)
    longest = {}  # subject name -> [longest pause's name, per run]
    try:
        for i in range(runs):
            for live, heap in sizes:
                for subject, collector in ((zgc[live], "zgc"), (serial[live], "serial")):
                    figures, name = run_miniheap(ffi, lib, collector, live, heap)
                    subject.add(**figures)
                    longest.setdefault(subject.name, []).append(name)
                if java is not None:
                    figures, name, command = java.run(live, heap)
                    jdk[live].add(**figures)
                    longest.setdefault(jdk[live].name, []).append(name)
                    if i == 0:
                        result.params.setdefault("java_commands", []).append(command)
            if i + 1 < runs and clock.spent():
                result.notes.append(f"stopped after {i + 1} of {runs} runs: time budget spent")
                break
    finally:
        if java is not None:
            java.close()
    for s in result.subjects:
        if s.name in longest:
            s.extra["longest_pause"] = longest[s.name]
    lives = [live for live, _ in sizes]
    medians = [{live: {k: s[live].median(k) for k in ("pause_max_ms", "time_ms")} for live in lives}
               for s in (zgc, serial, jdk)]
    result.targets += targets(lives, *medians, jdk_unavailable=jdk_unavailable)
    result.notes.append("longest pause of each run: " + "; ".join(
        f"{name}: {', '.join(names)}" for name, names in longest.items() if not name.startswith("serial")))
    result.notes.append("pauses: miniheap's from its events and stats (zgc: each pause of each cycle; serial: "
                        "each collection), the JDK's from its -Xlog:gc* log; neither counts the time to reach "
                        "the safepoint")
    result.notes.append(f"the same workload object for object: {NODE}-byte nodes in lists of {LIST}, the churn "
                        f"allocates {CHURN} times the live set; total time is measured inside the program "
                        f"(the JVM's start and pre-touch, the heap's creation are not in it)")
    if opts.quick:
        result.notes.append("quick mode: small live sets; the ratios are not the issue's targets")
    return result
