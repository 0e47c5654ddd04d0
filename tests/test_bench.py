"""The benchmarks run and report sane figures (never how fast: no timing assertions), and the peer
GCBench programs check their own results so a broken benchmark fails instead of printing a time."""
import importlib.util
import json
import math
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "src", "miniheap", "bench", "peers")
DATA = pathlib.Path(ROOT) / "tests" / "data"
NAMES = ("gcbench-native", "gcbench-python", "copy", "backends", "scaling", "zgc-latency", "barrier")


def _run_bench(*args, timeout=600, cwd=None):
    # From a folder that is not the checkout: the peers are package data, found through the package.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "miniheap", "bench", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or "/", env=env)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    path = folder / "bench.json"
    done = _run_bench("--quick", "--json", str(path), cwd=folder)
    with open(path) as f:
        document = json.load(f)
    return done, document


def test_quick_run_exits_cleanly_and_prints_every_table(quick_run):
    done, _ = quick_run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert out.startswith("miniheap bench: ")
    assert "command: python -m miniheap bench --quick --json" in out
    assert "machine: " in out
    for name in NAMES:
        assert f"== {name}: " in out, f"no table for {name}"
    assert "== targets (issues #6, #10 and #12)" in out


def test_json_has_every_benchmark_with_a_status_and_reason(quick_run):
    _, document = quick_run
    assert document["quick"] is True
    assert document["command"].startswith("python -m miniheap bench")
    assert document["machine"]["cpus"] >= 1
    assert [b["name"] for b in document["benchmarks"]] == list(NAMES)
    for bench in document["benchmarks"]:
        assert bench["status"] in ("ok", "unavailable"), (bench["name"], bench["reason"])
        if bench["status"] == "unavailable":
            assert bench["reason"], f"{bench['name']} is unavailable without a reason"


def test_summaries_are_consistent_with_their_samples(quick_run):
    _, document = quick_run
    for bench in document["benchmarks"]:
        for subject in bench["subjects"]:
            if "unavailable" in subject:
                assert subject["unavailable"]
            for key, m in subject["metrics"].items():
                values = [v for v in m["samples"] if v is not None]
                assert m["n"] == len(values), (bench["name"], subject["name"], key)
                if values:
                    assert all(math.isfinite(v) for v in values), (bench["name"], subject["name"], key)
                    assert m["min"] <= m["median"] <= m["max"], (bench["name"], subject["name"], key)


def _subject(document, bench, name):
    b = next(b for b in document["benchmarks"] if b["name"] == bench)
    return b, next((s for s in b["subjects"] if s["name"] == name), None)


def _median(subject, key):
    return subject["metrics"][key]["median"]


def test_gcbench_native_figures_are_sane(quick_run):
    _, document = quick_run
    bench, mine = _subject(document, "gcbench-native", "miniheap")
    # needs only miniheap itself: unavailable would mean the core or the façade is broken
    assert bench["status"] == "ok", bench["reason"]
    assert _median(mine, "time_ms") > 0
    assert _median(mine, "young") + _median(mine, "full") >= 1, "GCBench must trigger collections"
    assert _median(mine, "pauses") >= 1
    assert 0 < _median(mine, "pause_median_ms") <= _median(mine, "pause_max_ms")
    assert _median(mine, "pause_total_ms") <= _median(mine, "time_ms")
    run = mine["extra"]["runs"][0]
    assert run["checks"] > 0 and run["nodes_allocated"] > 0
    for peer in ("SerialGC", "ParallelGC"):
        _, s = _subject(document, "gcbench-native", peer)
        if shutil.which("java") and shutil.which("javac"):
            assert "unavailable" not in s, s.get("unavailable")
            assert _median(s, "pauses") >= 1 and _median(s, "time_ms") > 0
        else:
            assert "java" in s["unavailable"]


def test_peers_are_package_data():
    """What `pip install .` ships: the Java source beside the Python peer, both inside the package."""
    from importlib import resources

    peers = resources.files("miniheap.bench.peers")
    assert "class GCBench" in peers.joinpath("GCBench.java").read_text()
    assert "def run(" in peers.joinpath("gcbench_cpython.py").read_text()
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        assert '"bench/peers/*.java"' in f.read()


def test_gcbench_python_and_cpython_peer_ran(quick_run):
    _, document = quick_run
    bench, mine = _subject(document, "gcbench-python", "miniheap")
    _, peer = _subject(document, "gcbench-python", "CPython")
    assert _median(peer, "time_s") > 0
    assert peer["extra"]["runs"][0]["checks"] > 0
    assert bench["status"] == "ok", bench["reason"]
    assert _median(mine, "time_s") > 0
    assert mine["extra"]["runs"][0]["checks"] == peer["extra"]["runs"][0]["checks"]


def test_scaling_runs_every_size_beside_serialgc(quick_run):
    _, document = quick_run
    bench = next(b for b in document["benchmarks"] if b["name"] == "scaling")
    assert bench["status"] == "ok", bench["reason"]
    mine = [s for s in bench["subjects"] if s["name"].startswith("miniheap ")]
    serial = [s for s in bench["subjects"] if s["name"].startswith("SerialGC ")]
    assert len(mine) == len(serial) == 3
    lives = [_median(s, "live_mib") for s in mine]
    assert lives == sorted(lives) and lives[0] > 0, "the live data grows with the heap"
    for s in mine:
        assert _median(s, "time_ms") > 0 and _median(s, "young") + _median(s, "full") >= 1
    if shutil.which("java") and shutil.which("javac"):
        for s in serial:
            assert "unavailable" not in s, s.get("unavailable")
            assert _median(s, "time_ms") > 0
    texts = [t["target"] for t in document["targets"] if t["benchmark"] == "scaling"]
    assert len(texts) == 3 and all("total pause / SerialGC" in t for t in texts)


def test_copy_rate_is_bytes_over_pause(quick_run):
    _, document = quick_run
    bench, full = _subject(document, "copy", "full GC")
    assert bench["status"] == "ok", bench["reason"]
    assert bench["params"]["objects"] > 0
    _, cold = _subject(document, "copy", "memcpy cold (full bytes)")
    _, warm = _subject(document, "copy", "memcpy warm (full bytes)")
    assert _median(full, "collections") >= 1
    if _median(full, "mib_per_collection") > 0:
        assert _median(full, "gbs") > 0 and _median(cold, "gbs") > 0 and _median(warm, "gbs") > 0
        # the fraction is against the cold copy of the same bytes
        assert _median(cold, "of_memcpy") == 1.0
        assert math.isclose(_median(full, "of_memcpy"), _median(full, "gbs") / _median(cold, "gbs"), rel_tol=0.05)


def test_barrier_cost_is_measured_for_every_layout_against_plain_pointers(quick_run):
    from miniheap.bench import barrier

    _, document = quick_run
    bench = next(b for b in document["benchmarks"] if b["name"] == "barrier")
    assert bench["status"] == "ok", bench["reason"]
    names = [s["name"] for s in bench["subjects"]]
    assert names == [name for name, *_ in barrier.LAYOUTS] + [barrier.PLAIN]
    for subject in bench["subjects"]:
        ns = subject["metrics"]["ns_per_load"]["samples"]
        assert ns and all(x > 0 for x in ns), subject
        if subject["name"] != barrier.PLAIN:
            assert subject["metrics"]["loads_slow"]["samples"] == [0] * len(ns)  # nothing stale while timed


@pytest.mark.parametrize("mapping, collector, kind", [
    ("colored", "zgc", "MH_BARRIER_NONE"),        # zgc's references need the colour test
    ("none", "zgc", "MH_BARRIER_TEST"),           # the colour in the low bits must be shifted away
    ("colored", "zgc", "MH_BARRIER_TEST_SHIFT"),  # multi-mapped references are addresses
])
def test_barrier_chase_refuses_a_barrier_that_does_not_fit_the_layout(mapping, collector, kind):
    from miniheap.bench import barrier
    from miniheap.bench.common import BenchFailed

    with pytest.raises(BenchFailed, match="chase failed: .*(colour|address)"):
        barrier.measure({"mapping": mapping, "collector": collector}, kind, 1000)


def test_backends_cover_every_backend_and_count_faults(quick_run):
    _, document = quick_run
    bench, memfd = _subject(document, "backends", "memfd")
    assert bench["status"] == "ok", bench["reason"]
    assert {s["name"] for s in bench["subjects"]} == {"shm-mremap", "anon-mremap", "memfd", "memfd-hugetlb"}
    # one fault per 4 KiB page touched, give or take a few for the loop's own pages
    pages = bench["params"]["touch_mib"] * (1 << 20) // 4096
    assert 0.9 * pages <= _median(memfd, "touch_faults") <= 1.2 * pages
    assert _median(memfd, "view_us") > 0
    _, huge = _subject(document, "backends", "memfd-hugetlb")
    if "unavailable" not in huge:
        assert _median(huge, "touch_faults") < pages / 100


def test_targets_say_met_or_why_not(quick_run):
    done, document = quick_run
    texts = [t["target"] for t in document["targets"]]
    assert any("SerialGC" in t for t in texts)
    assert any("CPython" in t for t in texts)
    assert any("memcpy" in t for t in texts)
    assert any("hugetlb" in t for t in texts)
    for t in document["targets"]:
        assert t["met"] in (True, False, None)
        if t["value"] is not None:
            expected = {"<=": t["value"] <= t["limit"], "<": t["value"] < t["limit"]}
            assert t["met"] == expected.get(t["op"], t["value"] >= t["limit"])


def test_huge_page_pool_size_is_recorded_after_the_run(quick_run):
    _, document = quick_run
    bench = next(b for b in document["benchmarks"] if b["name"] == "backends")
    assert bench["params"]["huge_pages_after"].startswith("vm.nr_hugepages=")


class FakePool:
    """hugepages.* functions over a pretend pool, so the restore logic is tested without sysctl."""

    def __init__(self, monkeypatch, total, free, writable=True):
        from miniheap import hugepages

        self.total, self.free, self.sets = total, free, []
        monkeypatch.setattr(hugepages, "total_pages", lambda: self.total)
        monkeypatch.setattr(hugepages, "free_pages", lambda: self.free)
        monkeypatch.setattr(hugepages, "set_pool", self.set_pool)
        monkeypatch.setattr(os, "geteuid", lambda: 0 if writable else 1000)
        monkeypatch.setattr(os, "access", lambda path, mode: writable)

    def set_pool(self, pages):
        self.free += pages - self.total
        self.total = pages
        self.sets.append(pages)
        return pages


def test_huge_page_pool_grows_for_the_run_and_is_restored(monkeypatch):
    from miniheap.bench.backends import huge_page_pool

    pool = FakePool(monkeypatch, total=10, free=4)
    with huge_page_pool(20) as shortage:
        assert shortage is None and pool.total == 26 and pool.free == 20
    assert pool.total == 10 and pool.sets == [26, 10]


def test_huge_page_pool_is_restored_when_the_benchmark_raises(monkeypatch):
    from miniheap.bench.backends import huge_page_pool

    pool = FakePool(monkeypatch, total=0, free=0)
    with pytest.raises(RuntimeError):
        with huge_page_pool(8):
            raise RuntimeError("boom")
    assert pool.total == 0


def test_huge_page_pool_takes_back_only_its_pages_if_someone_else_resized_it(monkeypatch):
    from miniheap.bench.backends import huge_page_pool

    pool = FakePool(monkeypatch, total=0, free=0)
    with huge_page_pool(8):
        pool.set_pool(pool.total + 96)  # a CI run adds 96 pages meanwhile
    assert pool.total == 96


def test_huge_page_pool_is_left_alone_when_enough_pages_are_free_or_not_root(monkeypatch):
    from miniheap.bench.backends import huge_page_pool

    pool = FakePool(monkeypatch, total=64, free=64)
    with huge_page_pool(16) as shortage:
        assert shortage is None
    assert pool.sets == []
    pool = FakePool(monkeypatch, total=0, free=0, writable=False)
    with huge_page_pool(16) as shortage:
        assert "sysctl vm.nr_hugepages=16" in shortage
    assert pool.sets == []


def test_unknown_benchmark_is_refused_with_the_list():
    done = _run_bench("gcbench-rust", timeout=60)
    assert done.returncode == 2
    assert "gcbench-native" in done.stderr and "gcbench-rust" in done.stderr


def test_list_names_every_benchmark():
    done = _run_bench("--list", timeout=60)
    assert done.returncode == 0
    assert [line.split()[0] for line in done.stdout.splitlines()] == list(NAMES)


# -- the peer programs check themselves -----------------------------------------------------------

def _cpython_gcbench():
    path = os.path.join(PEERS, "gcbench_cpython.py")
    spec = importlib.util.spec_from_file_location("gcbench_cpython_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cpython_gcbench_passes_its_checks():
    module = _cpython_gcbench()
    got = module.run(**module.QUICK)
    assert got["checks"] == 2 + 2 * len(range(module.QUICK["min_depth"], module.QUICK["max_depth"] + 1, 2)) + 1


def test_cpython_gcbench_fails_when_a_tree_is_built_wrong(monkeypatch):
    module = _cpython_gcbench()
    real = module.populate

    def lossy(depth, node):  # forgets the right subtree at the bottom level
        real(depth, node)
        if depth == 1:
            node.right = None

    monkeypatch.setattr(module, "populate", lossy)
    with pytest.raises(module.GCBenchFailed, match="tree of depth"):
        module.run(**module.QUICK)


def test_cpython_gcbench_fails_when_the_array_is_wrong(monkeypatch):
    module = _cpython_gcbench()
    real_array = module.array.array

    class Corrupt:
        @staticmethod
        def array(code, init):
            a = real_array(code, init)
            return _Wrong(a)

    class _Wrong:
        def __init__(self, a):
            self.a = a

        def __setitem__(self, i, v):
            self.a[i] = v + (1.0 if i == 1 else 0.0)

        def __getitem__(self, i):
            return self.a[i]

    monkeypatch.setattr(module, "array", Corrupt)
    with pytest.raises(module.GCBenchFailed, match=r"array\[1\]"):
        module.run(**module.QUICK)


@pytest.mark.skipif(not (shutil.which("java") and shutil.which("javac")), reason="no JDK (java/javac) on PATH")
def test_java_gcbench_compiles_runs_and_checks(tmp_path):
    source = os.path.join(PEERS, "GCBench.java")
    subprocess.run(["javac", "-d", str(tmp_path), source], check=True, timeout=120)
    done = subprocess.run(["java", "-Xmx64m", "-cp", str(tmp_path), "GCBench", "2", "10", "8", "1000", "4", "8"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [["rep", "0"], ["rep", "1"]]
    # per repetition: stretch, long-lived, array, and two trees per depth (4, 6, 8)
    assert lines[-1].startswith("ok checks 18 ")


@pytest.mark.skipif(not (shutil.which("java") and shutil.which("javac")), reason="no JDK (java/javac) on PATH")
def test_java_gcbench_refuses_bad_arguments(tmp_path):
    source = os.path.join(PEERS, "GCBench.java")
    subprocess.run(["javac", "-d", str(tmp_path), source], check=True, timeout=120)
    done = subprocess.run(["java", "-cp", str(tmp_path), "GCBench", "1", "10"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "usage" in done.stderr


def test_jvm_log_parser_reads_pause_lines():
    from miniheap.bench.jvm import figures, parse_pauses

    log = ("[0.003s][info][gc] Using Serial\n"
           "[0.073s][info][gc] GC(0) Pause Young (Allocation Failure) 17M->16M(61M) 26.586ms\n"
           "[0.108s][info][gc] GC(1) Pause Young (Allocation Failure) 33M->22M(61M) 9.345ms\n"
           "[0.327s][info][gc] GC(2) Pause Full (Allocation Failure) 60M->8M(61M) 17.360ms\n")
    pauses = parse_pauses(log)
    assert pauses == [("Young", 26.586), ("Young", 9.345), ("Full", 17.360)]
    got = figures({"reps_ms": [100.0, 80.0], "pauses": pauses})
    assert got["young"] == 2 and got["full"] == 1 and got["pauses"] == 3
    assert got["pause_median_ms"] == 17.360 and got["time_ms"] == 180.0 and got["best_rep_ms"] == 80.0


def test_zgc_latency_runs_zgc_serial_and_jdk_zgc_at_every_size(quick_run):
    _, document = quick_run
    bench = next(b for b in document["benchmarks"] if b["name"] == "zgc-latency")
    assert bench["status"] == "ok", bench["reason"]
    by_kind = {kind: [s for s in bench["subjects"] if s["name"].startswith(kind + " ")]
               for kind in ("zgc", "serial", "JDK ZGC")}
    assert all(len(subjects) == 3 for subjects in by_kind.values()), bench["subjects"]
    for s in by_kind["zgc"]:
        # even the quick sizes make zgc work: whole cycles, each with at least its three pauses
        assert _median(s, "cycles") >= 1 and _median(s, "pauses") >= 3 * _median(s, "cycles"), s
        assert 0 < _median(s, "pause_max_ms") and _median(s, "pause_p99_ms") <= _median(s, "pause_max_ms")
        assert _median(s, "mark_ms") > 0 and _median(s, "time_ms") > 0
        assert all(name.startswith("Pause ") for name in s["extra"]["longest_pause"])
    for s in by_kind["serial"]:
        assert _median(s, "cycles") >= 1 and _median(s, "pause_max_ms") > 0 and _median(s, "time_ms") > 0
    if shutil.which("java") and shutil.which("javac"):
        for s in by_kind["JDK ZGC"]:
            assert "unavailable" not in s, s.get("unavailable")
            assert _median(s, "time_ms") > 0 and _median(s, "cycles") >= 1 and _median(s, "pause_max_ms") > 0
    texts = [t["target"] for t in document["targets"] if t["benchmark"] == "zgc-latency"]
    assert len(texts) == 10 and sum("miniheap zgc max pause (ms)" in t for t in texts) == 3


def test_zgc_latency_java_peer_is_package_data():
    from importlib import resources

    assert "class ZLatency" in resources.files("miniheap.bench.peers").joinpath("ZLatency.java").read_text()


ZLATENCY_STDOUT = "build ms 1.0\nchurn ms 2.0\ntotal ms 7201.16\nops 10\nok checks\n"


def test_zgc_latency_reads_a_jdk17_zgc_log():
    """A real JDK 17 log of ZLatency (500 MiB live, -Xmx1280m, -Xlog:gc*): its figures, counted by hand
    with grep: 13 pauses of 0.007-0.018 ms, 4 finished cycles (a fifth aborted at exit), 3 allocation
    stalls of 1033.127 ms in all, 1 relocation stall, Concurrent Mark 2934.146 ms and Concurrent
    Relocate 2582.779 ms over 4 cycles, 5635.59 ms of concurrent phases."""
    from miniheap.bench.zgc_latency import jdk_figures

    log = (DATA / "zgc-jdk17-zlatency.log").read_text()
    got, longest = jdk_figures(log, ZLATENCY_STDOUT)
    assert got["time_ms"] == 7201.16 and got["cycles"] == 4 and got["pauses"] == 13
    assert got["pause_max_ms"] == 0.018 and longest == "Pause Mark End"
    assert got["pause_total_ms"] == pytest.approx(0.146)
    assert 0.017 <= got["pause_p99_ms"] <= 0.018
    assert got["stalls"] == 3 and got["stall_ms"] == pytest.approx(1033.127) and got["relocation_stalls"] == 1
    assert got["mark_ms"] == pytest.approx(2934.146 / 4) and got["relocate_ms"] == pytest.approx(2582.779 / 4)
    assert got["concurrent_ms"] == pytest.approx(5635.59, abs=0.01)


def test_zgc_latency_refuses_a_jvm_run_without_its_result():
    from miniheap.bench.common import BenchFailed
    from miniheap.bench.zgc_latency import jdk_figures

    log = (DATA / "zgc-jdk17-zlatency.log").read_text()
    with pytest.raises(BenchFailed, match="no result"):
        jdk_figures(log, ZLATENCY_STDOUT.replace("ok checks", "list 3 is wrong"))


class _Phase:
    def __init__(self, name, ms, pause):
        self.name, self.ms, self.pause = name, ms, pause


class _Cycle:
    zgc, stall = True, False

    def __init__(self, *phases):
        self.phases = [_Phase(*p) for p in phases]


class _Stats:
    def __init__(self, **fields):
        self.__dict__.update(dict(zgc_cycles=0, pauses=0, max_pause_ns=0, total_pause_ns=0, allocation_stalls=0,
                                  allocation_stall_ns=0, relocation_stalls=0, objects_relocated_by_mutator=0,
                                  events_dropped=0), **fields)


def test_zgc_latency_figures_of_miniheap_zgc_events():
    from miniheap.bench.common import BenchFailed
    from miniheap.bench.zgc_latency import zgc_figures

    cycles = [_Cycle(("Pause Mark Start", 0.002, True), ("Concurrent Mark", 10.0, False),
                     ("Pause Mark End", 0.001, True), ("Concurrent Mark Continue", 2.0, False),
                     ("Pause Mark End", 0.001, True), ("Concurrent Select Relocation Set", 1.0, False),
                     ("Pause Relocate Start", 0.009, True), ("Concurrent Relocate", 5.0, False)),
              _Cycle(("Pause Mark Start", 0.003, True), ("Concurrent Mark", 20.0, False),
                     ("Pause Mark End", 0.001, True), ("Pause Relocate Start", 0.004, True),
                     ("Concurrent Relocate", 7.0, False))]
    stats = _Stats(zgc_cycles=2, pauses=7, max_pause_ns=9000, total_pause_ns=21000, allocation_stalls=1,
                   allocation_stall_ns=3_000_000, relocation_stalls=2, objects_relocated_by_mutator=5)
    got, longest = zgc_figures(cycles, stats)
    assert longest == "Pause Relocate Start" and got["pause_max_ms"] == 0.009 and got["pauses"] == 7
    assert got["cycles"] == 2 and got["pause_total_ms"] == pytest.approx(0.021)
    assert got["mark_ms"] == pytest.approx((12.0 + 20.0) / 2) and got["relocate_ms"] == pytest.approx(6.0)
    assert got["concurrent_ms"] == pytest.approx(45.0)
    assert (got["stalls"], got["stall_ms"], got["relocation_stalls"], got["by_mutator"]) == (1, 3.0, 2, 5)
    # an event the history did not keep would make the p99 and the phase times lie: refused
    with pytest.raises(BenchFailed, match="lost"):
        zgc_figures(cycles[1:], stats)


def test_zgc_latency_targets_from_constructed_medians():
    from miniheap.bench.zgc_latency import targets

    zgc = {50: {"pause_max_ms": 0.010, "time_ms": 150.0}, 500: {"pause_max_ms": 0.015, "time_ms": 900.0}}
    serial = {50: {"pause_max_ms": 80.0, "time_ms": 100.0}, 500: {"pause_max_ms": 900.0, "time_ms": 1000.0}}
    jdk = {50: {"pause_max_ms": 0.010, "time_ms": 90.0}, 500: {"pause_max_ms": 0.020, "time_ms": 700.0}}
    ts = targets([50, 500], zgc, serial, jdk)
    # every limit reached exactly: 1.5 x serial's time, the JDK's max pause, 1.5 x the 50 MiB pause
    assert len(ts) == 7 and all(t.met for t in ts), [(t.text, t.value, t.met) for t in ts]
    zgc[50].update(pause_max_ms=0.0101, time_ms=150.1)  # above the JDK's pause, over 1.5 x serial's time
    missed = {t.text for t in targets([50, 500], zgc, serial, jdk) if t.met is False}
    assert missed == {"zgc-latency, 50 MiB live: zgc max pause / JDK 17 ZGC's",
                      "zgc-latency, 50 MiB live: zgc total time / serial's"}, missed
    zgc = {50: {"pause_max_ms": 1.0, "time_ms": 100.0}, 500: {"pause_max_ms": 1.6, "time_ms": 100.0}}
    by_text = {t.text: t for t in targets([50, 500], zgc, serial, {}, "unavailable: no JDK 17 found")}
    assert by_text["zgc-latency, 50 MiB live: miniheap zgc max pause (ms)"].met is False  # under 1 ms: 1.0 is not
    growth = by_text["zgc-latency: zgc max pause at 500 MiB live / at 50 MiB"]
    assert growth.value == pytest.approx(1.6) and growth.met is False
    vs_jdk = [t for t in by_text.values() if "JDK" in t.text]
    assert len(vs_jdk) == 2 and all(t.met is None and "no JDK 17 found" in t.note for t in vs_jdk)


def test_zgc_latency_without_a_jdk_runs_the_rest_and_says_why(monkeypatch):
    from miniheap.bench import zgc_latency
    from miniheap.bench.common import Unavailable

    def no_jdk():
        raise Unavailable("no java and javac on PATH nor in /usr/lib/jvm: install JDK 17")

    def fake_run(ffi, lib, collector, live, heap):
        return {"time_ms": 100.0 if collector == "zgc" else 90.0, "pause_max_ms": 0.01 * live,
                "cycles": 1, "pauses": 3}, "Pause Mark Start"

    monkeypatch.setattr(zgc_latency, "find_jdk17", no_jdk)
    monkeypatch.setattr(zgc_latency, "run_miniheap", fake_run)
    monkeypatch.setattr(zgc_latency, "native", lambda: (None, type("lib", (), {"mh_zlat_run": None})))
    opts = type("opts", (), {"quick": True, "runs": 1})
    result = zgc_latency.run(opts)
    assert result.status == "ok"
    jdk = [s for s in result.subjects if s.name.startswith("JDK ZGC ")]
    assert len(jdk) == 3 and all("no java and javac" in s.unavailable and not s.samples for s in jdk)
    zgc = [s for s in result.subjects if s.name.startswith("zgc ")]
    assert [s.median("pause_max_ms") for s in zgc] == pytest.approx([0.16, 0.24, 0.32])
    vs_jdk = [t for t in result.targets if "JDK" in t.text]
    assert len(vs_jdk) == 3 and all(t.met is None and "no java and javac" in t.note for t in vs_jdk)
    growth = result.targets[-1]
    assert growth.value == pytest.approx(2.0) and growth.met is False


def test_target_strictly_below():
    from miniheap.bench.common import Target

    assert Target("t", 0.99, 1.0, op="<").met is True
    assert Target("t", 1.0, 1.0, op="<").met is False
    assert Target("t", 1.0, 1.0).met is True
