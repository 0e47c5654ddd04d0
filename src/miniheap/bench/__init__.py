"""``python -m miniheap bench [NAME ...] [--quick] [--json FILE] [--runs N] [--no-sysctl]``: the benchmarks
of issue #6 (the command's --help says the same without the references).

Each benchmark measures miniheap beside a peer in the same invocation (the JDK's collectors, plain
CPython, memcpy, the other backends), several runs each, and reports the median with the min and max
of the runs. The table ends with the issue's targets, measured on medians, met or not. ``--quick``
runs every benchmark small, in seconds (the CI smoke test); ratios from it are not the targets.

A benchmark whose piece is missing (the C core not built, no JDK, no huge pages) reports
"unavailable: <reason>" and the others still run. A benchmark whose self-check fails (a tree of the
wrong size, a lost object) reports "failed" and makes the command exit 1.
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
import traceback

from ..cli import Progress, quiet_on_broken_pipe
from . import backends, barrier, copyrate, gcbench_native, gcbench_python, scaling, zgc_latency
from .common import BenchFailed, summary

BENCHMARKS = {m.NAME: m for m in (gcbench_native, gcbench_python, copyrate, backends, scaling, zgc_latency,
                                  barrier)}


def machine():
    info = {"host": platform.node(), "kernel": platform.release(), "arch": platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "cpu": "?", "memory_gib": None}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
        with open("/proc/meminfo") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("MemTotal"))
            info["memory_gib"] = round(kib / (1 << 20), 1)
    except (OSError, StopIteration):
        pass
    return info


def command_line(argv):
    return "python -m miniheap bench" + ("".join(" " + shlex.quote(a) for a in argv))


DESCRIPTION = """\
Measure miniheap beside a peer in the same run: the JDK's collectors, plain CPython, memcpy and the
other memory backends. Each benchmark runs several times and reports the median with the min and max
of the runs; the last table compares the medians with the project's targets.

A benchmark whose piece is missing (the C core not built, no JDK, no huge pages) reports
"unavailable" with the reason, and the others still run. A benchmark whose self-check fails exits 1.

Run as root, the backends benchmark raises vm.nr_hugepages when too few huge pages are free, says so
on standard error before it does, and puts the old value back afterwards; --no-sysctl leaves the
setting alone and skips the huge-page figures instead."""


def parse_args(argv, prog=None):
    parser = argparse.ArgumentParser(prog=prog or "python -m miniheap bench", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)} "
                                                                 f"(default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes, one or two runs: seconds (CI)")
    parser.add_argument("--json", metavar="FILE", help="also write every sample and summary as JSON")
    parser.add_argument("--runs", type=int, default=None, metavar="N", help="runs per benchmark (default: per benchmark)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--no-sysctl", dest="sysctl", action="store_false",
                        help="never change vm.nr_hugepages, even as root (the huge-page figures are then "
                             "skipped unless enough huge pages are already free)")
    opts = parser.parse_args(argv)
    unknown = [n for n in opts.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(map(repr, unknown))}: choose from {', '.join(BENCHMARKS)}")
    if opts.runs is not None and opts.runs < 1:
        parser.error("--runs must be at least 1")
    return opts


# -- the table ------------------------------------------------------------------------------------

def _fmt(fmt, value):
    if value is None:
        return "-"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def _cell(metric, samples):
    s = summary(samples)
    if s["n"] == 0:
        return "-"
    if s["n"] == 1 or s["min"] == s["max"]:
        return _fmt(metric.fmt, s["median"])
    return f"{_fmt(metric.fmt, s['median'])} [{_fmt(metric.fmt, s['min'])}..{_fmt(metric.fmt, s['max'])}]"


def format_result(result):
    lines = [f"== {result.name}: {result.title}  ({result.seconds:.1f} s)"]
    if result.status != "ok":
        lines.append(f"   {result.status}: {result.reason}")
    params = ", ".join(f"{k}={v}" for k, v in result.params.items())
    if params:
        lines.append(f"   parameters: {params}")
    shown = [s for s in result.subjects if s.samples]
    if shown:
        header = ["median [min..max] of runs"] + [s.name for s in shown]
        rows = [header]
        for metric in result.metrics:
            row = [metric.label] + [_cell(metric, s.samples.get(metric.key, [])) for s in shown]
            if any(c != "-" for c in row[1:]):
                rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for n, row in enumerate(rows):
            lines.append("   " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
            if n == 0:
                lines.append("   " + "  ".join("-" * w for w in widths))
    for s in result.subjects:
        if s.unavailable:
            lines.append(f"   {s.name}: unavailable: {s.unavailable}")
    for s in shown:
        if s.description:
            lines.append(f"   {s.name}: {s.description}")
    for note in result.notes:
        lines.append(f"   note: {note}")
    return "\n".join(lines)


def format_targets(results):
    rows = [("target (on medians)", "measured", "required", "status")]
    for r in results:
        for t in r.targets:
            if t.met is None:
                why = r.reason if r.status != "ok" else (t.note or "no figure")
                status = f"not measured ({why})" if why else "not measured"
            else:
                status = "met" if t.met else "NOT met"
            rows.append((t.text, _fmt("{:.3g}", t.value), f"{t.op} {t.limit:g}", status))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    out = ["== targets (issues #6, #10 and #12)"]
    for n, row in enumerate(rows):
        out.append("   " + "  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3])
        if n == 0:
            out.append("   " + "  ".join("-" * w for w in widths) + "  " + "-" * 6)
    return "\n".join(out)


# -- running --------------------------------------------------------------------------------------

def run_one(module, opts):
    from .common import Result

    start = time.monotonic()
    try:
        result = module.run(opts)
    except BenchFailed as e:
        result = Result(module.NAME, module.TITLE).failed(str(e))
    except Exception as e:  # one broken benchmark must not hide the others' figures
        result = Result(module.NAME, module.TITLE).failed(f"{type(e).__name__}: {e}")
        result.notes.append("traceback: " + traceback.format_exc().replace("\n", " | "))
    result.seconds = time.monotonic() - start
    return result


@quiet_on_broken_pipe
def main(argv=None, prog=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    opts = parse_args(argv, prog)
    if opts.list:
        for name, module in BENCHMARKS.items():
            print(f"{name:16} {module.TITLE}")
        return 0
    names = opts.names or list(BENCHMARKS)
    started = datetime.datetime.now().astimezone()
    info = machine()
    command = command_line(argv)
    print(f"miniheap bench: {started.isoformat(timespec='seconds')}")
    print(f"command: {command}")
    print(f"machine: {info['host']}, {info['cpu']}, {info['cpus']} CPUs, {info['memory_gib']} GiB, "
          f"Linux {info['kernel']} {info['arch']}, Python {info['python']}")
    print(f"mode: {'quick (small sizes; ratios are not the targets)' if opts.quick else 'full'}\n", flush=True)

    results = []
    with Progress("bench") as progress:
        # Messages during a run (the huge-page pool) go through the progress line, not across it.
        opts.say = progress.print if progress.enabled else None
        for n, name in enumerate(names, 1):
            # Every benchmark takes seconds or minutes: say which one runs, on a terminal only.
            progress.update(f"running {name} ({n} of {len(names)})")
            result = run_one(BENCHMARKS[name], opts)
            results.append(result)
            progress.done()
            print(format_result(result) + "\n", flush=True)
    print(format_targets(results))

    if opts.json:
        document = {"date": started.isoformat(timespec="seconds"), "command": command, "machine": info,
                    "quick": opts.quick, "benchmarks": [r.to_json() for r in results],
                    "targets": [dict(t.to_json(), benchmark=r.name) for r in results for t in r.targets]}
        with open(opts.json, "w") as f:
            json.dump(document, f, indent=2, default=str)
            f.write("\n")
        print(f"\nwrote {opts.json}")
    return 1 if any(r.status == "failed" for r in results) else 0
