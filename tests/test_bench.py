"""The benchmarks run and report sane figures (never how fast: no timing assertions), and the peer
GCBench programs check their own results so a broken benchmark fails instead of printing a time."""
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "src", "miniheap", "bench", "peers")
NAMES = ("gcbench-native", "gcbench-python", "copy", "backends", "scaling")


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
    assert "== targets (issues #6 and #12)" in out


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
            assert t["met"] == (t["value"] <= t["limit"] if t["op"] == "<=" else t["value"] >= t["limit"])


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
