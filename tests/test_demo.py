"""The teaching run, end to end, in a subprocess: every working backend and layout, bad configs, plots."""
import json
import os
import subprocess
import sys

import pytest

from miniheap import hugepages
from miniheap.backends import BACKENDS

from .conftest import LAYOUT_FIELDS, LAYOUTS, ZGC_LAYOUTS, ZGC_ONE_VIEW, require_backend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "examples", "gc_demo.py")
HEADINGS = ["1. Configuration", "2. The system calls", "3. The heap's views", "4. One object",
            "5. A workload", "6. Memory at checkpoints", "7. Summary"]
FIRST_CALL = {"shm-mremap": "shmget(IPC_PRIVATE, ", "anon-mremap": "mmap(NULL, ",
              "memfd": 'memfd_create("miniheap", MFD_CLOEXEC)',
              "memfd-hugetlb": 'memfd_create("miniheap", MFD_CLOEXEC|MFD_HUGETLB'}
VIEWS = {"none": ["heap"], "colored": ["Marked0", "Marked1", "Remapped"],
         "young-mirror": ["heap", "young mirror 1"], ZGC_ONE_VIEW: ["heap"]}


def run_regions(backend):
    """Region count of the demo's heap in test_demo_runs_with_consistent_figures."""
    return 16 if backend == "memfd-hugetlb" else 32


def run_demo(*args, timeout=180):
    return subprocess.run([sys.executable, DEMO, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


@pytest.mark.parametrize("mapping", LAYOUTS)
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_demo_runs_with_consistent_figures(backend, mapping, tmp_path):
    require_backend(backend)
    out = tmp_path / "run.json"
    extra = ["--heap-size", "32M", "--young-size", "8M", "--survivor-ratio", "2"] \
        if backend == "memfd-hugetlb" else []
    layout = [a for field, value in LAYOUT_FIELDS.get(mapping, {"mapping": mapping}).items()
              for a in (f"--{field}", value)]
    result = run_demo("--backend", backend, *layout, "--work", "40", "--json", str(out), *extra)
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout
    positions = [text.find(h) for h in HEADINGS]
    assert -1 not in positions and positions == sorted(positions), positions
    zgc = mapping in ZGC_LAYOUTS
    if zgc:
        assert "Garbage Collection (System.gc())" in text and "Using The Z Garbage Collector" in text
        assert "relocated:" in text and "by the GC thread" in text and "MarkStart" in text
    else:
        assert "Pause Young (Allocation Failure)" in text and "Pause Full (System.gc())" in text
    assert "the same bytes" in text
    maps = [line.split()[1] for line in text.splitlines() if line.startswith("regions  ")]
    assert len(maps) == 3 and len(set(len(m) for m in maps)) == 1, maps
    regions = maps[0]
    assert len(regions) == run_regions(backend) and set(regions) <= set("PpMmLlrR." if zgc else "EeSsOoHh.")
    if not zgc:
        assert maps[2].count("O") + maps[2].count("o") <= maps[1].count("O") + maps[1].count("o") + 1

    run = json.loads(out.read_text())
    assert run["config"]["backend"] == backend and run["sources"]["backend"] == "cli:--backend"
    assert run["trace"][0].startswith(FIRST_CALL[backend])
    assert [v["name"] for v in run["views"] if not v["name"].startswith("source")] == VIEWS[mapping]
    if zgc:
        assert run["stats"]["zgc_cycles"] >= 2 and run["stats"]["pauses"] >= 6
    else:
        assert run["stats"]["young_collections"] >= 1 and run["stats"]["full_collections"] >= 2

    if zgc:  # section 8: the same workload on zgc's other layout, both pretouched (the demo's default)
        assert "8. Side by side" in text
        side = run["side_by_side"]["layouts"]
        assert side["colored"]["views"] == 3 and side["none"]["views"] == 1
        assert side["none"]["pointer"] >> 16 == side["none"]["address"] and side["none"]["pointer"] & 0x7000
        assert side["colored"]["pointer"] == side["colored"]["address"]
        if backend == "memfd":  # hugetlb pages are in neither RSS nor PSS; an mremap backend's source
            # mapping shares every page with the views (its PSS is charged there too)
            assert side["colored"]["rss"] >= 2.5 * side["colored"]["pss"]
            assert abs(side["none"]["rss"] - side["none"]["pss"]) <= 64 << 10
            assert abs(side["none"]["pss"] - side["none"]["backing"]) <= 64 << 10
        if backend != "memfd-hugetlb":  # each page once per view: three times the one view's RSS
            assert abs(side["colored"]["rss"] - 3 * side["none"]["rss"]) <= 3 * (64 << 10), side
        assert all(ns > 0 for ns in run["side_by_side"]["barrier_ns"].values())
    else:
        assert "8. Side by side" not in text and "side_by_side" not in run
    for name, snap in run["memory"].items():
        views = snap["views"]
        views_rss = sum(v["rss"] for v in views)
        views_pss = sum(v["pss"] for v in views)
        slack = 64 << 10
        # A page of the heap counts once in PSS however many views map it, so the views' PSS can't
        # exceed the backing's real size; RSS counts it once per view that touched it.
        assert views_pss <= snap["backing"] + slack, (name, views_pss, snap["backing"])
        assert views_rss >= views_pss - slack
        assert snap["pss"] >= views_pss - slack and snap["rss"] >= views_rss - slack
        if backend == "memfd-hugetlb":
            # hugetlb pages are in neither RSS nor PSS but in HugetlbPages, which (like RSS) counts the
            # pages this process has mapped, once per view: at most the backing once per view.
            touched = sum(v["hugetlb"] for v in views)
            assert views_rss <= slack and snap["backing"] > 0
            assert 0 < touched <= snap["hugetlb"] <= len(views) * snap["backing"]
        else:
            assert snap["hugetlb"] == 0
    # RSS beyond PSS comes only from pages that more than one view has touched: with one view touched
    # they are equal; the excess is at most what the views other than the biggest have touched.
    after = run["memory"]["after"]
    rss = sorted(v["rss"] for v in after["views"])
    excess = sum(rss) - sum(v["pss"] for v in after["views"])
    if backend != "memfd-hugetlb":
        assert (excess > 0) == (len(rss) > 1 and rss[-2] > 0), (rss, excess)
        assert excess <= sum(rss[:-1]) + 4096


def test_demo_default_config_runs_and_says_where_values_came_from():
    result = run_demo("--work", "8")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "backend             memfd    default" in result.stdout


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(ROOT, "examples", "configs"))))
def test_demo_runs_every_shipped_config(name):
    path = os.path.join(ROOT, "examples", "configs", name)
    import tomllib

    with open(path, "rb") as f:
        backend = tomllib.load(f)["heap"].get("backend", "memfd")
    require_backend(backend)
    result = run_demo("--config", path, "--work", "24")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"file:{path}" in result.stdout and "7. Summary" in result.stdout


@pytest.mark.parametrize("content, words", [
    ("[heap]\nheap_size = \n", ["syntax"]),
    ("[heap]\nheap_sise = \"64M\"\n", ["heap_sise", "heap_size"]),
    ("[heap]\ntenuring_threshold = \"seven\"\n", ["tenuring_threshold", "seven"]),
    ("[heap]\nheap_size = \"64Q\"\n", ["heap_size", "64Q"]),
])
def test_bad_config_file_gives_one_line_with_file_key_and_fix(tmp_path, content, words):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    result = run_demo("--config", str(path))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def _too_big_for_the_pool():
    free = hugepages.free_pages()
    return str(max(64, 4 * (free + 4)) << 20 >> 20) + "M"


def test_unavailable_backend_exits_2_with_the_reason_and_the_fix():
    young = _too_big_for_the_pool()
    size = f"{2 * int(young[:-1])}M"
    # one view: a coloured heap this size would not fit below the sanitizer stage's colour bit 28
    result = run_demo("--backend", "memfd-hugetlb", "--heap-size", size, "--young-size", young, "--mapping", "none")
    assert result.returncode == 2, result.stdout[-1000:] + result.stderr[-1000:]
    assert "sysctl vm.nr_hugepages=" in result.stderr and "Traceback" not in result.stderr


def test_fallback_uses_memfd_with_a_warning():
    young = _too_big_for_the_pool()
    size = f"{2 * int(young[:-1])}M"
    result = run_demo("--backend", "memfd-hugetlb", "--heap-size", size, "--young-size", young,
                      "--fallback", "--work", "8", "--mapping", "none")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "WARNING" in result.stdout and "falling back to backend memfd" in result.stdout
    assert 'memfd_create("miniheap", MFD_CLOEXEC) = ' in result.stdout


def test_plot_is_a_valid_png(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: pip install '.[plot]'")
    png = tmp_path / "gc.png"
    result = run_demo("--work", "16", "--plot", str(png))
    assert result.returncode == 0, result.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    from matplotlib import image

    pixels = image.imread(str(png))
    assert pixels.shape[0] > 300 and pixels.shape[1] > 300 and pixels.std() > 0.01


def test_python_m_miniheap_demo_is_the_same_run():
    result = subprocess.run([sys.executable, "-m", "miniheap", "demo", "--work", "4"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0 and "7. Summary" in result.stdout
