"""The demo teaches its subject by default, and every misuse ends in one line (issue 11, items 1 and 8)."""
import errno
import io
import json
import os
import re
import subprocess
import sys

import pytest

from miniheap import demo
from miniheap.errors import SyscallError

from .conftest import require_backend
from .hugepool import small_pool  # noqa: F401  (a fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "examples", "gc_demo.py")
COLOR_BITS = int(os.environ.get("MINIHEAP_COLOR_BITS", "42"))  # tools/sanitize moves the views


def run_demo(*args, timeout=180):
    return subprocess.run([sys.executable, DEMO, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def test_the_default_run_shows_three_pretouched_views_of_one_memfd(tmp_path):
    out = tmp_path / "run.json"
    result = run_demo("--json", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    run = json.loads(out.read_text())
    assert run["config"]["mapping"] == "colored" and run["config"]["pretouch"] is True
    assert run["sources"]["mapping"] == run["sources"]["pretouch"] == "demo:DEMO_DEFAULTS"
    views = [v for v in run["views"]]
    assert [v["start"] for v in views] == [1 << COLOR_BITS, 1 << COLOR_BITS + 1, 1 << COLOR_BITS + 2]
    # Three lines of /proc/self/maps, one memfd: the same device and inode on each.
    lines = [line.split() for line in result.stdout.splitlines()
             if line.strip().startswith(("Marked0", "Marked1", "Remapped")) and "memfd:miniheap" in line]
    assert len(lines) == 3 and len({(f[3], f[4]) for f in lines}) == 1, lines
    assert sum(1 for line in run["trace"] if "MADV_POPULATE_WRITE" in line) == 3
    for name, snap in run["memory"].items():
        rss, pss = sum(v["rss"] for v in snap["views"]), sum(v["pss"] for v in snap["views"])
        assert rss / pss >= 2.5, (name, rss, pss)  # RSS about 3x PSS ...
        assert abs(pss - snap["backing"]) <= 64 << 10, (name, pss, snap["backing"])  # ... PSS about the backing
        assert snap["touched"] == snap["backing"]
    assert "(3.0 times as much)" in result.stdout
    # ... and beside it the same workload JDK 21+'s way: one view at the same base, RSS = PSS
    side = run["side_by_side"]["layouts"]
    assert side["none"]["view_list"][0]["start"] == 1 << COLOR_BITS
    assert side["colored"]["rss"] / side["colored"]["pss"] >= 2.5
    assert side["none"]["rss"] == side["none"]["pss"] and abs(side["none"]["pss"] - side["none"]["backing"]) <= 64 << 10
    assert "RSS = PSS, the heap at its real size" in result.stdout
    assert set(run["side_by_side"]["barrier_ns"]) == {"serial, no barrier", "zgc, three views",
                                                      "zgc, one view (low bits)", "plain C pointers"}
    assert f"figures written to {out} (JSON" in result.stdout  # each file asked for is announced


def _figure(text):
    """Bytes of a figure as the demo prints it: 16M, 16.0M, 219.1K, 0B."""
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]?)B?", text).groups()
    return float(number) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit]


def test_the_workload_allocates_what_it_says_and_its_lines_agree_with_the_heap():
    """--work N allocates N MiB of the heap's objects: the progress lines and the summary (the heap's own
    count) say the same."""
    result = run_demo("--work", "16", "--mapping", "none", "--pretouch", "false", "--gc-log", "off")
    assert result.returncode == 0, result.stderr[-2000:]
    last = re.findall(r"^\[workload\] 100%  allocated (\S+),", result.stdout, re.M)
    summary = re.search(r"^allocated: +(\S+) in \d+ objects", result.stdout, re.M)
    assert last and summary, result.stdout[-2000:]
    progress, heap = _figure(last[-1]), _figure(summary[1])
    assert progress == 16 << 20, last[-1]  # (as printed: to 0.1M)
    # the heap also holds the demo's few other objects (the session and cache tables: 48 KiB)
    assert abs(heap - progress) <= 0.1 * (1 << 20) + (64 << 10), (last[-1], summary[1])


def test_demo_defaults_yield_to_the_command_line():
    result = run_demo("--mapping", "none", "--pretouch", "false", "--work", "4")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "mapping             none     cli:--mapping" in result.stdout
    assert "MADV_POPULATE_WRITE" not in result.stdout


def test_the_colour_bits_in_the_text_follow_the_setting():
    bits = 28 if COLOR_BITS == 28 else 40  # under tools/sanitize only 28 keeps the views out of ASan's way
    result = run_demo("--color-bits", str(bits), "--work", "4")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"colour bits ({bits}, {bits + 1}, {bits + 2})" in result.stdout
    assert "(42, 43, 44)" not in result.stdout
    assert f"Marked0 at 1<<{bits}" in result.stdout


def _one_line(result, *words):
    assert result.returncode == 2, (result.returncode, result.stdout[-500:], result.stderr[-500:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.parametrize("args, words", [
    # the demo's coloured default is the zgc collector, whose colour bits follow the heap size as JDK
    # 17's do; set by hand they must leave room for it
    (["--heap-size", "4T", "--color-bits", "42"], ["heap_size 4T", "colour bit 42", "--color-bits"]),
    # a flag that conflicts with the demo's own default names that default and how to change it
    (["--reserve-at", "0x500000000000"], ["--reserve-at", "the demo's default mapping", "--mapping"]),
    # above the collector's limit (4T), whatever the mapping: the allowed range, before any other check
    (["--heap-size", "100T", "--mapping", "none", "--pretouch", "false"], ["heap_size 100T", "allowed", "4T"]),
    (["--heap-size", "4T", "--mapping", "none"], ["pretouch of a 4T heap", "MemAvailable"]),
    (["--work", "0"], ["--work 0", "at least 1 MB"]),
    (["--work", "-3"], ["--work -3", "at least 1 MB"]),
    (["--work", "lots"], ["--work", "'lots'", "--help"]),
])
def test_misuse_is_one_line(args, words):
    _one_line(run_demo(*args), *words)


@pytest.mark.parametrize("flag", ["--json", "--plot", "--gc-log"])
def test_an_output_in_a_missing_folder_is_refused_before_the_run(tmp_path, flag):
    missing = tmp_path / "no" / "such" / "folder"
    path = str(missing / "out.file")
    value = f"gc:file={path}" if flag == "--gc-log" else path
    result = run_demo(flag, value)
    line = _one_line(result, str(missing), "does not exist")
    assert result.stdout == "", "the run started before the output was checked"
    assert not missing.exists()
    assert line.startswith("miniheap: ")


def test_plot_without_matplotlib_is_refused_before_the_run(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as on a machine without it
    out = io.StringIO()
    status = demo.main(["--plot", str(tmp_path / "run.png"), "--work", "1"], out=out)
    err = capsys.readouterr().err
    assert status == 2 and out.getvalue() == "", "the run started although the plot cannot be drawn"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "matplotlib is not installed" in lines[0] and "pip install" in lines[0], err
    assert not (tmp_path / "run.png").exists()


def test_a_commit_that_fails_mid_run_ends_in_one_line(monkeypatch, capsys):
    """A huge-page pool that runs dry during the workload: the old generation's first commit fails
    (the generational collector: the young generation is committed at the start)."""
    from miniheap.backends import memfd

    original = memfd.MemfdBackend._commit
    young = 16 << 20

    def commit(self, offset, length):
        if offset + length > young:  # the young generation commits at start; old regions fail
            raise SyscallError(errno.ENOSPC, f"fallocate({self.fd}, 0, {offset}, {length})")
        return original(self, offset, length)

    monkeypatch.setattr(memfd.MemfdBackend, "_commit", commit)
    out = io.StringIO()
    status = demo.main(["--mapping", "none", "--pretouch", "false", "--work", "96", "--gc-log", "off"], out=out)
    err = capsys.readouterr().err
    assert status == 2, out.getvalue()[-1000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("miniheap: the run stopped: ") and "ENOSPC" in lines[0]
    assert "5. A workload" in out.getvalue()  # it failed in the middle, not at the start


def test_a_pool_that_runs_dry_mid_run_ends_in_one_line_with_the_whole_runs_need(small_pool):
    require_backend("memfd")
    small_pool(8)  # the 16M young generation: 8 pages; the old generation's first region finds none
    result = run_demo("--backend", "memfd-hugetlb", "--pretouch", "false", "--heap-size", "64M",
                      "--young-size", "16M", "--work", "96")
    line = _one_line(result, "the run stopped", "ENOSPC", "a heap of 64M needs 32 huge pages",
                     "sysctl vm.nr_hugepages=")
    assert "5. A workload" in result.stdout
    # the advice counts what the whole run needs: 32 pages in all, 8 of them held already
    assert "it holds 8" in line, line


def _more_than_the_machine_has():
    from miniheap.memory import available_bytes

    return f"{(available_bytes() >> 30) + 8}G"


def test_a_pretouched_heap_larger_than_the_machine_is_refused_before_anything_is_committed():
    size = _more_than_the_machine_has()
    line = _one_line(run_demo("--heap-size", size, "--mapping", "none"),
                     f"pretouch of a {size} heap", "MemAvailable", "--pretouch false")
    assert line.startswith("miniheap: ")


def test_a_flag_that_needs_the_demos_coloured_default_works_with_it():
    # validated with the demo's defaults, not before them: --verify-views alone asks for what the
    # default run already is (zgc's three views); it used to fail with "collector is serial"
    result = run_demo("--verify-views", "true", "--work", "4")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "verify_views        true     cli:--verify-views" in result.stdout
    assert "mapping             colored  demo:DEMO_DEFAULTS" in result.stdout
    # section 1 says which of its keys zgc does not use, so a learner does not look for their effect
    assert "(young_size, survivor_ratio and tenuring_threshold apply to serial only" in result.stdout
    # and a collector the user names takes its own mapping, not the demo's
    result = run_demo("--collector", "serial", "--work", "4")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "collector           serial   cli:--collector" in result.stdout
    assert "mapping             none     default" in result.stdout
    assert "(color_bits, verify_views and gc_interval apply to zgc only" in result.stdout
    assert "apply to serial only" not in result.stdout


def test_zgc_summary_says_why_slow_loads_and_pauses_are_that_many():
    """The summary's totals puzzle a learner (more slow loads than fast, more than 3 pauses a cycle):
    it says why, and its arithmetic (cycles x 3 + Pause Mark End retries) is the run's pause count."""
    result = run_demo("--work", "16")
    assert result.returncode == 0, result.stderr[-2000:]
    text = " ".join(result.stdout.split())
    assert "makes every pointer in the heap stale at once" in text and "in the total only" in text
    cycles = int(re.search(r"cycles: (\d+) \(", text)[1])
    pauses = int(re.search(r"pauses: (\d+):", text)[1])
    note = re.search(r"Pauses: (\d+) = (\d+) cycles x 3(?: \+ (\d+))?", text)
    assert note, text[-1500:]
    assert int(note[1]) == pauses and int(note[2]) == cycles
    assert pauses == 3 * cycles + int(note[3] or 0)
