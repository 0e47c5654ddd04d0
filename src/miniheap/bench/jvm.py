"""The JDK peer of gcbench-native: GCBench.java (package data in miniheap/bench/peers/), compiled at
bench time, run with a
given collector and ``-Xlog:gc``, its pauses read from the log.

Pauses come from ``miniheap.gclog.parse_jvm_log`` when that module exists and gives pause times;
until then (and as a cross-check) from the small parser here, which reads the unified-logging lines
of JDK 9+:

    [0.073s][info][gc] GC(0) Pause Young (Allocation Failure) 17M->16M(61M) 26.586ms
"""
import os
import re
import shutil
import subprocess
import tempfile

from importlib import resources

from .common import BenchFailed, Unavailable, pause_figures

PAUSE_RE = re.compile(r"GC\((?P<id>\d+)\) Pause (?P<kind>Young|Full|Remark|Cleanup|Initial Mark|Mark Start|"
                      r"Mark End|Relocate Start)\b.*?(?P<ms>\d+(?:\.\d+)?)ms\s*$")


def parse_pauses(text):
    """[(kind, ms)] of every pause line in an -Xlog:gc log."""
    pauses = []
    for line in text.splitlines():
        m = PAUSE_RE.search(line)
        if m:
            pauses.append((m["kind"], float(m["ms"])))
    return pauses


def pauses_from_log(text):
    """Pause list [(kind, ms)] and which parser gave it."""
    own = parse_pauses(text)
    try:
        from miniheap.gclog import parse_jvm_log
    except ImportError:
        return own, "bench's own parser (miniheap.gclog.parse_jvm_log not there yet)"
    try:
        theirs = _normalise(parse_jvm_log(text))
    except Exception as e:  # the shared parser is someone else's work in progress: fall back, say so
        return own, f"bench's own parser (miniheap.gclog.parse_jvm_log failed: {e})"
    if theirs is None or len(theirs) != len(own):
        return own, "bench's own parser (miniheap.gclog.parse_jvm_log disagreed on the pause count)"
    return theirs, "miniheap.gclog.parse_jvm_log"


def _normalise(parsed):
    """Accept what parse_jvm_log may return: pauses as objects or dicts with a kind and milliseconds."""
    if isinstance(parsed, dict):
        parsed = parsed.get("pauses", [])
    out = []
    for p in parsed:
        get = p.get if isinstance(p, dict) else lambda k, d=None, p=p: getattr(p, k, d)
        ms = next((get(k) for k in ("ms", "pause_ms", "duration_ms") if get(k) is not None), None)
        if ms is None and get("seconds") is not None:
            ms = get("seconds") * 1e3
        if ms is None and get("ns") is not None:
            ms = get("ns") / 1e6
        if ms is None:
            return None
        kind = str(get("kind", "") or get("type", "") or "")
        out.append(("Full" if "full" in kind.lower() else "Young", float(ms)))
    return out


class JavaGCBench:
    """Compile once, then run as often as asked."""

    def __init__(self):
        self.java, self.javac = shutil.which("java"), shutil.which("javac")
        if not self.java or not self.javac:
            missing = " and ".join(n for n, p in (("java", self.java), ("javac", self.javac)) if not p)
            raise Unavailable(f"{missing} not found on PATH: install a JDK (e.g. apt-get install openjdk-17-jdk-headless)")
        self.dir = tempfile.mkdtemp(prefix="miniheap-gcbench-java-")
        # the source is package data: copied out, so it compiles from a wheel or a zip alike
        self.source = os.path.join(self.dir, "GCBench.java")
        try:
            text = resources.files("miniheap.bench.peers").joinpath("GCBench.java").read_text()
        except (FileNotFoundError, ModuleNotFoundError) as e:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise Unavailable(f"the Java peer is not installed with the package ({e}); reinstall miniheap") from None
        with open(self.source, "w") as f:
            f.write(text)
        done = subprocess.run([self.javac, "-d", self.dir, self.source], capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            raise Unavailable(f"javac failed: {done.stderr.strip()[:400]}")
        self.version = subprocess.run([self.java, "-version"], capture_output=True, text=True).stderr.splitlines()[0]

    def run(self, collector, heap_mb, repetitions, params):
        """One JVM run: {'reps_ms': [...], 'pauses': [(kind, ms)], 'parser': ...}."""
        log = os.path.join(self.dir, f"gc-{collector}.log")
        if os.path.exists(log):
            os.unlink(log)
        args = [self.java, f"-XX:+Use{collector}GC", f"-Xms{heap_mb}m", f"-Xmx{heap_mb}m", "-XX:+AlwaysPreTouch",
                f"-Xlog:gc:file={log}", "-cp", self.dir, "GCBench", str(repetitions)]
        args += [str(params[k]) for k in ("stretch_depth", "long_lived_depth", "array_size", "min_depth",
                                          "max_depth")]
        done = subprocess.run(args, capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or "FAILED" in done.stdout:
            raise BenchFailed(f"java GCBench with {collector}GC failed (exit {done.returncode}): "
                              f"{(done.stdout + done.stderr).strip()[-400:]}")
        reps = [float(m.group(1)) for m in re.finditer(r"^rep \d+ ms ([\d.]+)$", done.stdout, re.M)]
        if len(reps) != repetitions or "ok checks" not in done.stdout:
            raise BenchFailed(f"java GCBench printed no result: {done.stdout.strip()[-300:]}")
        with open(log) as f:
            pauses, parser = pauses_from_log(f.read())
        return {"reps_ms": reps, "pauses": pauses, "parser": parser, "command": " ".join(args)}

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def figures(run):
    """The table's figures for one JVM run."""
    ms = [ms for _, ms in run["pauses"]]
    out = {"time_ms": sum(run["reps_ms"]), "best_rep_ms": min(run["reps_ms"]),
           "young": sum(1 for k, _ in run["pauses"] if k != "Full"),
           "full": sum(1 for k, _ in run["pauses"] if k == "Full")}
    out.update(pause_figures(ms))
    return out
