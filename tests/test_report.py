"""The pictures and files of a run: the HTML report in a real headless browser, the trace events
against the GC log of the same run, the JSON, the plot's advice."""
import io
import json
import os
import re
import subprocess
import sys

import pytest

from .browser import INSTALL_HINT, BrowserError, Chromium, find_chromium
from .logshape import split

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_demo_with_outputs(d, mapping):
    files = {name: d / name for name in ("report.html", "trace.json", "run.json", "gc.log")}
    done = subprocess.run(
        [sys.executable, "-m", "miniheap", "demo", "--work", "96", "--mapping", mapping,
         "--gc-log", f"gc*=debug:file={files['gc.log']}", "--html", str(files["report.html"]),
         "--trace-events", str(files["trace.json"]), "--json", str(files["run.json"])],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return files


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One demo run of the generational collector (two views: the heap and a young mirror) with every
    output file, and its GC log at gc*=debug written by the heap itself."""
    return run_demo_with_outputs(tmp_path_factory.mktemp("run"), "young-mirror")


@pytest.fixture(scope="module")
def zgc_run(tmp_path_factory):
    """The same with the coloured views: the zgc collector, its cycles on the GC thread."""
    return run_demo_with_outputs(tmp_path_factory.mktemp("zgc"), "colored")


# ------------------------------------------------------------------- the report in a browser


@pytest.fixture
def browser():
    if find_chromium() is None:
        pytest.skip(f"no headless browser to test the HTML report: {INSTALL_HINT}")
    with Chromium() as chromium:
        yield chromium


def region_states(browser):
    return browser.evaluate("Array.from(document.querySelectorAll('#region-map .cell'))"
                            ".map(c => c.getAttribute('data-state')).join('')")


def test_report_loads_without_errors_and_the_slider_replays_the_regions(demo_run, browser, tmp_path):
    run = json.loads(demo_run["run.json"].read_text())
    browser.open(demo_run["report.html"].as_uri())
    assert browser.evaluate("document.body.getAttribute('data-ready')") == "yes", browser.errors()
    assert browser.errors() == []
    snapshots = run["regions"]
    assert len(snapshots) >= 4 and len({s["states"] for s in snapshots}) >= 2
    # Opened at the last collection; the slider moves the map to any other and back.
    assert region_states(browser) == snapshots[-1]["states"]
    first_label = browser.evaluate("document.getElementById('snapshot-label').textContent")
    for index in (0, len(snapshots) // 2, len(snapshots) - 1):
        browser.evaluate(f"(() => {{ const s = document.getElementById('snapshot'); s.value = '{index}';"
                         f" s.dispatchEvent(new Event('input')); }})()")
        assert region_states(browser) == snapshots[index]["states"], index
        assert browser.evaluate("document.getElementById('region-map').getAttribute('data-snapshot')") == str(index)
    browser.evaluate("(() => { const s = document.getElementById('snapshot'); s.value = '0';"
                     " s.dispatchEvent(new Event('input')); })()")
    assert region_states(browser) != snapshots[-1]["states"]
    assert browser.evaluate("document.getElementById('snapshot-label').textContent") != first_label
    assert browser.errors() == []

    png = browser.screenshot()
    (tmp_path / "report.png").write_bytes(png)
    from matplotlib import image

    pixels = image.imread(io.BytesIO(png), format="png")
    height, width = pixels.shape[:2]
    assert width >= 900 and height >= 1500, (width, height)
    colours = {tuple(p) for p in (pixels[::7, ::7, :3] * 255).astype(int).reshape(-1, 3).tolist()}
    assert pixels[:, :, :3].std() > 0.05 and len(colours) > 30, "the screenshot is blank"


def test_the_slider_label_counts_the_regions_of_each_space(demo_run, browser):
    """The label under the slider says how many regions each space has: a survivor's empty to-space
    ('s') is a survivor region too, not a second from-space."""
    from collections import Counter

    from miniheap.plot import STATE_SPACE

    run = json.loads(demo_run["run.json"].read_text())
    browser.open(demo_run["report.html"].as_uri())
    label = browser.evaluate("document.getElementById('snapshot-label').textContent")
    counts = Counter(STATE_SPACE[ch] for ch in run["regions"][-1]["states"])
    expected = ", ".join(f"{n} {space}" for space, n in counts.items())
    assert label.endswith(f"({expected})"), (label, expected)
    assert "(from)" not in label


def test_the_tour_writes_the_report_of_its_heap(browser, tmp_path):
    html, trace = tmp_path / "tour.html", tmp_path / "tour.json"
    done = subprocess.run([sys.executable, "-m", "miniheap", "tour", "--no-pause", "--html", str(html),
                           "--trace-events", str(trace)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"report written to {html}" in done.stdout and f"trace events written to {trace}" in done.stdout
    browser.open(html.as_uri())
    assert browser.evaluate("document.body.getAttribute('data-ready')") == "yes", browser.errors()
    assert browser.errors() == []
    page = html.read_text()
    # the Remapped view of the tour's heap: 1 << (colour bits + 2), 16 TiB at ZGC's bits (42); the
    # sanitizer stage moves the colour bits (MINIHEAP_COLOR_BITS) below AddressSanitizer's shadow
    remapped = 1 << (int(os.environ.get("MINIHEAP_COLOR_BITS", "42")) + 2)
    assert "miniheap tour" in page and f"0x{remapped:016x}" in page, remapped
    names = [e["name"] for e in json.loads(trace.read_text())["traceEvents"] if e["ph"] == "X"]
    from miniheap.zgclog import parse_zgc_log

    # the tour's heap is coloured: the zgc collector, whose cycles the log lines name
    log = "\n".join(line.strip() for line in done.stdout.splitlines())  # the steps indent their lines
    logged = [f"GC({gid}) Garbage Collection ({cause})" for gid, cause, _, _ in parse_zgc_log(log)["cycles"]]
    # The recording ends after step 8's collect(full=True) has its System.gc() cycle; the step reads its
    # log lines a moment later, and the director may finish a cycle of its own in between. So the trace
    # holds the log's cycles, in order, up to that System.gc() one at least.
    traced = [n for n in names if n.startswith("GC(")]
    explicit = [i for i, n in enumerate(logged) if n.endswith("(System.gc())")]
    assert len(logged) >= 2 and explicit, logged
    assert traced == logged[:len(traced)] and len(traced) > explicit[-1], (traced, logged)


def test_a_broken_script_is_caught(demo_run, browser, tmp_path):
    """The browser test can fail: the same page with a mistake in its script reports the error."""
    page = demo_run["report.html"].read_text()
    broken = tmp_path / "broken.html"
    broken.write_text(page.replace("function show(index) {", "function show(index) { undefinedThing();", 1))
    browser.open(broken.as_uri())
    assert any("undefinedThing" in e for e in browser.errors()), browser.errors()
    assert browser.evaluate("document.body.getAttribute('data-ready')") is None


def test_report_is_self_contained(demo_run):
    page = demo_run["report.html"].read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "the page loads something from a network"
    assert "<link" not in page and "@import" not in page
    for section in ("address-space", "regions", "timeline", "memory", "log"):
        assert f'<section id="{section}">' in page
    # Views terabytes apart (4, 8, 16 TiB by default) cannot be drawn to the heap's scale: the page
    # says so, and gives each view's address.
    run = json.loads(demo_run["run.json"].read_text())
    assert "not to scale" in page
    for view in run["views"]:
        assert f"{view['start']:#018x}" in page


def test_browser_driver_reports_a_missing_browser():
    with pytest.raises(BrowserError, match="apt-get install -y chromium"):
        Chromium(executable=None) if find_chromium() is None else _no_browser()


def _no_browser():
    import shutil

    old = shutil.which
    try:
        shutil.which = lambda name: None
        Chromium()
    finally:
        shutil.which = old


# ------------------------------------------------------------------- trace events


def log_collections(text):
    """{gc id: {"start": uptime, "end": uptime, "ms": pause, "phases": [(name, ms, start uptime)]}}
    from a gc*=debug log."""
    found = {}
    starts = {}
    for line in text.splitlines():
        parts = split(line)
        if parts is None:
            continue
        level, tags, message = parts
        uptime = float(line[1:line.index("s")])
        match = re.match(r"GC\((\d+)\) (.*)$", message)
        if not match:
            continue
        gid, rest = int(match[1]), match[2]
        c = found.setdefault(gid, {"phases": []})
        if tags == ("gc", "start"):
            c["start"] = uptime
        elif tags == ("gc", "phases", "start"):
            starts[(gid, rest)] = uptime
        elif tags == ("gc", "phases"):
            name, ms = re.match(r"(.*) (\d+\.\d{3})ms$", rest).groups()
            c["phases"].append((name, float(ms), starts[(gid, name)]))
        elif tags == ("gc",):
            c["end"], c["ms"] = uptime, float(re.search(r"(\d+\.\d{3})ms$", rest)[1])
    return found


def test_trace_events_nest_and_agree_with_the_gc_log_of_the_same_run(demo_run):
    trace = json.loads(demo_run["trace.json"].read_text())
    events = trace["traceEvents"]
    threads = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert "MainThread" in threads.values()
    spans = [e for e in events if e["ph"] == "X"]
    log = log_collections(demo_run["gc.log"].read_text())
    collections = {e["args"]["gc_id"]: e for e in spans if e["name"].startswith("GC(")}
    assert sorted(collections) == sorted(log) and len(log) >= 3
    for gid, c in log.items():
        span = collections[gid]
        assert span["name"].endswith(")") and f"GC({gid}) Pause" in span["name"]
        # the slice's figures say which collection it was, as its name does
        assert span["args"]["kind"] == ("full" if " Pause Full " in span["name"] else "young"), span["args"]
        assert span["args"]["cause"] in span["name"]
        # The log prints milliseconds with 3 decimals and uptimes in whole milliseconds.
        assert span["dur"] / 1e3 == pytest.approx(c["ms"], abs=6e-4)
        assert span["ts"] / 1e6 == pytest.approx(c["start"], abs=1.1e-3)
        assert (span["ts"] + span["dur"]) / 1e6 == pytest.approx(c["end"], abs=1.1e-3)
        phases = sorted((e for e in spans if e["args"]["gc_id"] == gid and e is not span), key=lambda e: e["ts"])
        assert [p["name"] for p in phases] == [name for name, _, _ in sorted(c["phases"], key=lambda p: p[2])] or \
            sorted(p["name"] for p in phases) == sorted(name for name, _, _ in c["phases"])
        by_name = {p["name"]: p for p in phases}
        for name, ms, start in c["phases"]:
            phase = by_name[name]
            assert phase["tid"] == span["tid"] and phase["cat"] == "gc,pause"
            assert phase["dur"] / 1e3 == pytest.approx(ms, abs=6e-4)
            assert phase["ts"] / 1e6 == pytest.approx(start, abs=1.1e-3)
            # Nested: inside the collection on the same thread (the viewers draw it as a child).
            assert span["ts"] <= phase["ts"] and phase["ts"] + phase["dur"] <= span["ts"] + span["dur"] + 1e-3
    counters = {e["name"] for e in events if e["ph"] == "C"}
    assert {"heap in use (bytes)", "RSS by view (bytes)", "PSS by view (bytes)",
            "backing, the real size (bytes)"} <= counters
    views = next(e for e in events if e["name"] == "RSS by view (bytes)")["args"]
    assert set(views) == {"heap", "young mirror 1"}
    assert all(isinstance(e["ts"], (int, float)) and e["ts"] >= 0 for e in events if e["ph"] != "M")


# ------------------------------------------------------------------- the JSON


def test_json_lists_collections_in_time_order_with_kind_and_cause_and_typed_config(demo_run):
    run = json.loads(demo_run["run.json"].read_text())
    collections = run["collections"]
    assert [c["id"] for c in collections] == list(range(len(collections)))
    assert [c["end"] for c in collections] == sorted(c["end"] for c in collections)
    assert {c["kind"] for c in collections} == {"young", "full"}
    assert {c["cause"] for c in collections} <= {"Allocation Failure", "System.gc()"}
    assert any(c["cause"] == "System.gc()" and c["kind"] == "full" for c in collections)
    for c in collections:
        assert c["pause_ms"] == pytest.approx(c["ns_total"] / 1e6) and c["start"] < c["end"]
    config = run["config"]
    assert type(config["heap_size"]) is int and type(config["region_size"]) is int
    assert type(config["tenuring_threshold"]) is int and type(config["pretouch"]) is bool
    assert config["mapping"] == "young-mirror" and config["reserve_at"] is None
    assert run["sources"]["mapping"] == "cli:--mapping"
    assert "pauses_ms" not in run  # the sorted list lost the timeline; collections keep it


def test_zgc_cycles_are_spans_on_the_gc_thread_with_their_phases_inside(zgc_run):
    """A zgc cycle in the trace events: the cycle and its concurrent phases on the GC thread (ZDriver),
    its three kinds of pause as pause slices, every phase inside its cycle, and the same cycles as the
    GC log's."""
    from miniheap.zgclog import parse_zgc_log

    events = json.loads(zgc_run["trace.json"].read_text())["traceEvents"]
    threads = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    spans = [e for e in events if e["ph"] == "X"]
    cycles = {e["args"]["gc_id"]: e for e in spans if e["name"].startswith("GC(")}
    log = parse_zgc_log(zgc_run["gc.log"].read_text())
    # The recording ends before the heap closes, the log file when it closes: the GC thread may finish
    # one more cycle in between (the director does not wait for the demo). So the trace's cycles are
    # the log's, in order, up to the end of the recording.
    logged_ids = sorted(c[0] for c in log["cycles"])
    assert sorted(cycles) == logged_ids[:len(cycles)] and len(cycles) >= 2, (sorted(cycles), logged_ids)
    for gid, cycle in cycles.items():
        assert threads[cycle["tid"]] == "ZDriver" and cycle["cat"] == "gc,concurrent"
        inside = [e for e in spans if e["args"].get("gc_id") == gid and e is not cycle]
        names = {e["name"] for e in inside}
        assert {"Pause Mark Start", "Concurrent Mark", "Pause Mark End", "Pause Relocate Start",
                "Concurrent Relocate"} <= names
        for e in inside:
            assert e["cat"] == ("gc,pause" if e["name"].startswith("Pause") else "gc,concurrent")
            assert cycle["ts"] - 1 <= e["ts"] and e["ts"] + e["dur"] <= cycle["ts"] + cycle["dur"] + 1
    logged = sorted(ms for gid, name, ms in log["pauses"] if gid in cycles)
    traced = sorted(round(e["dur"] / 1e3, 3) for e in spans if e["name"].startswith("Pause"))
    assert logged == pytest.approx(traced, abs=1.1e-3)


def test_zgc_json_lists_cycles_with_their_causes(zgc_run):
    run = json.loads(zgc_run["run.json"].read_text())
    cycles = [c for c in run["collections"] if c["kind"] == "zgc"]
    assert cycles and {c["kind"] for c in run["collections"]} <= {"zgc", "allocation stall", "relocation stall"}
    assert any(c["cause"] == "System.gc()" for c in cycles)
    for c in cycles:
        assert c["start"] < c["end"] and 0 < c["pause_ms"] < 1000
        assert [p["name"] for p in c["phases"]][0] == "Pause Mark Start"
    assert run["config"]["collector"] == "zgc" and run["config"]["mapping"] == "colored"


# ------------------------------------------------------------------- the plot's advice


def test_plot_without_matplotlib_gives_advice_that_works(monkeypatch):
    from miniheap import plot

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = io.StringIO()
    assert plot.write_png("x.png", object(), out) is False
    text = out.getvalue()
    assert "pip install matplotlib" in text and "pip install '.[plot]'" in text
    assert "miniheap[plot]" not in text
