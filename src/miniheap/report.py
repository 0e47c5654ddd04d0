"""The run as one self-contained HTML page: ``report.write_html(path, run)``.

No network and no library: inline SVG drawn here, a little hand-written script for the slider, the
data the script needs in a JSON block. Five pictures, each with a paragraph on how to read it:

1. the address space: the reservations to scale in the 128 TiB of user space; the views to scale
   against one another and against the backing they map (their distance apart is not to scale, and
   says so); the backing and how much of it is really memory;
2. the region map at every collection, with a slider (and a play button) to replay the run;
3. the timeline: every span (collections and their phases; concurrent phases, for a collector with
   them) on the thread that ran it, and each pause's length;
4. memory over time: RSS per view stacked, PSS, and the backing's real size;
5. the GC log of the run (``gc*=debug``), the lines of the collection under the slider highlighted.
"""
from __future__ import annotations

import html
import json

from .plot import KIND_COLORS, SPACE_COLORS, STATE_SPACE
from .sizes import format_bytes_human, format_size
from .spans import PAUSE

USER_SPACE = 1 << 47  # x86-64 user space with 4-level page tables: 128 TiB
WIDTH = 960
LEFT, RIGHT = 60, 20
STATE_NAMES = {"E": "eden", "e": "eden (empty)", "S": "survivor (from)", "s": "survivor (to, empty)", "O": "old",
               "o": "old (empty)", "H": "humongous", "h": "humongous (continued)", ".": "free",
               "P": "small page", "p": "small page (empty)", "M": "medium page", "m": "medium page (continued)",
               "L": "large page", "l": "large page (continued)", "r": "relocation reserve",
               "R": "in the relocation set"}


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def tib(n: int) -> str:
    """An address as a person says it: 4 TiB, 127.9 TiB, 3 GiB."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            value = n / (1 << shift)
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} B"


# ----------------------------------------------------------------------------- 1. address space


def address_space_svg(run) -> str:
    inner = WIDTH - LEFT - RIGHT
    parts = []
    y = 30
    # Row 1: the whole user address space, to scale.
    parts.append(f'<text x="{LEFT}" y="{y - 12}" class="caption">The process\'s address space, 0 to 128 TiB, '
                 f'to scale: each reservation at its address</text>')
    parts.append(f'<rect x="{LEFT}" y="{y}" width="{inner}" height="16" class="userspace"/>')
    for i in range(0, 129, 16):
        x = LEFT + inner * i / 128
        parts.append(f'<line x1="{x:.1f}" y1="{y + 16}" x2="{x:.1f}" y2="{y + 21}" class="tick"/>'
                     f'<text x="{x:.1f}" y="{y + 32}" class="axis" text-anchor="middle">{i}T</text>')
    for n, r in enumerate(sorted(run.reservations, key=lambda r: r["start"])):
        x = LEFT + inner * min(r["start"], USER_SPACE) / USER_SPACE
        w = max(2.0, inner * r["size"] / USER_SPACE)
        label_y = y + 48 + 13 * (n % 4)
        parts.append(f'<rect x="{x:.1f}" y="{y - 3}" width="{w:.1f}" height="22" class="reservation">'
                     f'<title>{esc(r["label"])}: {r["start"]:#x}, {esc(format_size(r["size"]))} reserved</title></rect>'
                     f'<line x1="{x:.1f}" y1="{y + 19}" x2="{x:.1f}" y2="{label_y - 9}" class="leader"/>'
                     f'<text x="{x + 3:.1f}" y="{label_y}" class="label">{esc(r["label"])} at {tib(r["start"])} '
                     f'({r["start"]:#x}), {esc(format_size(r["size"]))}</text>')
    y += 48 + 13 * min(4, len(run.reservations)) + 30

    # Rows 2 and 3: the views over the backing, one scale for all of them.
    backing = run.backend["size"]
    views = [v for v in run.views if v["length"]]
    span = max([backing] + [v["offset"] + v["length"] for v in views])
    scale = inner / span
    parts.append(f'<text x="{LEFT}" y="{y - 12}" class="caption">Each view to scale against the backing, over the '
                 f'offsets it maps (how far apart the views sit is not to scale: see the addresses)</text>')
    region = run.region_size
    young = run.config.get("young_size", 0)
    previous = None
    for v in views:
        x = LEFT + v["offset"] * scale
        w = max(2.0, v["length"] * scale)
        if previous is not None and v["start"] != previous["start"] + previous["length"]:
            gap = v["start"] - (previous["start"] + previous["length"])
            where = f"{tib(abs(gap))} {'further on' if gap > 0 else 'lower'}"
            parts.append(f'<text x="{LEFT - 4}" y="{y + 2}" class="gap" text-anchor="end">⋮</text>'
                         f'<text x="{LEFT + inner}" y="{y - 2}" class="gap" text-anchor="end">'
                         f'{esc(where)} in the address space (not to scale)</text>')
            y += 8
        klass = "view source" if v.get("own") else "view"
        parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="26" class="{klass}">'
                     f'<title>view {esc(v["name"])}: {v["start"]:#x}-{v["start"] + v["length"]:#x}, maps backing '
                     f'offsets {v["offset"]:#x}-{v["offset"] + v["length"]:#x}</title></rect>')
        if young and v["offset"] < young:
            yw = (min(young, v["offset"] + v["length"]) - v["offset"]) * scale
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{yw:.1f}" height="5" class="young-band"/>')
        if region and v["length"] // region <= 512:
            for k in range(1, v["length"] // region):
                rx = x + k * region * scale
                parts.append(f'<line x1="{rx:.1f}" y1="{y + 5}" x2="{rx:.1f}" y2="{y + 26}" class="region-line"/>')
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 18}" class="view-label">{esc(v["name"])} '
                     f'{"rw" if v["writable"] else "r"}  {v["start"]:#018x}  ({tib(v["start"])}), '
                     f'{esc(format_size(v["length"]))}</text>')
        parts.append(f'<line x1="{x:.1f}" y1="{y + 26}" x2="{x:.1f}" y2="{{BACKING_Y}}" class="map-line"/>'
                     f'<line x1="{x + w:.1f}" y1="{y + 26}" x2="{x + w:.1f}" y2="{{BACKING_Y}}" class="map-line"/>')
        previous = v
        y += 40
    y += 16
    backing_y = y
    physical = run.backend["physical"]
    parts.append(f'<rect x="{LEFT}" y="{y}" width="{backing * scale:.1f}" height="26" class="backing">'
                 f'<title>the backing: {esc(run.backend["how_created"])}</title></rect>'
                 f'<rect x="{LEFT}" y="{y + 30}" width="{max(1.0, physical * scale):.1f}" height="8" class="physical"/>'
                 f'<text x="{LEFT + 6}" y="{y + 18}" class="view-label">backing ({esc(run.backend["name"])}): '
                 f'{esc(format_size(backing))} of offsets</text>'
                 f'<text x="{LEFT + 6}" y="{y + 52}" class="label">real size at the end of the run: '
                 f'{esc(format_bytes_human(physical))} of physical memory (the bar shows how much, not which '
                 f'offsets), however many views map it</text>')
    y += 66
    body = "".join(parts).replace("{BACKING_Y}", str(backing_y))
    return (f'<svg id="address-space-svg" viewBox="0 0 {WIDTH} {y}" width="{WIDTH}" height="{y}" '
            f'role="img" aria-label="address space">{body}</svg>')


# ----------------------------------------------------------------------------- 2. region map


def region_map_svg(run) -> str:
    count = len(run.regions[-1]["states"]) if run.regions else 0
    cols = min(32, max(1, count))
    cell, gap = 26, 3
    rows = -(-count // cols)
    cells = []
    for i in range(count):
        x, y = (i % cols) * (cell + gap), (i // cols) * (cell + gap)
        cells.append(f'<g class="cell" data-index="{i}" transform="translate({x},{y})">'
                     f'<rect class="frame" width="{cell}" height="{cell}"/>'
                     f'<rect class="fill" y="{cell}" width="{cell}" height="0"/>'
                     f'<text x="{cell / 2}" y="{cell / 2 + 4}" text-anchor="middle"></text>'
                     f'<title></title></g>')
    width, height = cols * (cell + gap), rows * (cell + gap)
    return (f'<svg id="region-map" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'data-cell="{cell}">{"".join(cells)}</svg>')


def legend_html() -> str:
    items = [("E", "eden"), ("S", "survivor"), ("O", "old"), ("H", "humongous"), (".", "free")]
    return "".join(f'<span class="key"><span class="swatch" style="background:{SPACE_COLORS[STATE_SPACE[c]]}">'
                   f'</span>{esc(c)} {esc(name)}</span>' for c, name in items) + \
        '<span class="key">lower case: a region holding nothing; the shade rises with the bytes in use</span>'


# ----------------------------------------------------------------------------- 3. timeline


def _axis(x0, x1, y, t0, t1, ticks=8, unit="s"):
    parts = [f'<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" class="tick"/>']
    for k in range(ticks + 1):
        t = t0 + (t1 - t0) * k / ticks
        x = x0 + (x1 - x0) * k / ticks
        parts.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" class="tick"/>'
                     f'<text x="{x:.1f}" y="{y + 15}" class="axis" text-anchor="middle">{t:.2f}{unit}</text>')
    return "".join(parts)


def timeline_svg(run) -> str:
    inner = WIDTH - LEFT - RIGHT
    end = max([run.duration] + [s.end for s in run.spans]) or 1.0
    x_of = lambda t: LEFT + inner * t / end  # noqa: E731
    parts = []
    # Pause lengths: one stem per collection, height by milliseconds.
    top, stem_h = 24, 70
    longest = max([c["pause_ms"] for c in run.collections] + [0.001])
    parts.append(f'<text x="{LEFT}" y="{top - 10}" class="caption">Pause length (ms), longest '
                 f'{longest:.3f} ms</text>')
    parts.append(f'<line x1="{LEFT}" y1="{top + stem_h}" x2="{LEFT + inner}" y2="{top + stem_h}" class="tick"/>')
    for c in run.collections:
        x = x_of(c["end"])
        h = max(1.0, stem_h * c["pause_ms"] / longest)
        parts.append(f'<rect x="{x - 1:.1f}" y="{top + stem_h - h:.1f}" width="2.5" height="{h:.1f}" '
                     f'class="stem {c["kind"]}"><title>{esc(c["name"])}: {c["pause_ms"]:.3f} ms at '
                     f'{c["end"]:.3f} s</title></rect>')
    y = top + stem_h + 34
    parts.append(f'<text x="{LEFT}" y="{y - 10}" class="caption">Spans on the thread that ran them: a '
                 f'collection, and its phases below it (widened to at least 2 px)</text>')
    y += 12
    heights = {0: 16, 1: 10, 2: 7}
    for thread in run.threads:
        parts.append(f'<text x="{LEFT}" y="{y - 1}" class="axis">thread {esc(thread)}</text>')
        y += 4
        lane_top = y
        for s in (s for s in run.spans if s.thread == thread):
            depth = min(s.depth, 2)
            sy = lane_top + sum(heights[d] + 2 for d in range(depth))
            kind = s.args.get("kind", "young") if s.depth == 0 else "phase"
            klass = f"span {kind}" if s.kind == PAUSE else "span concurrent"
            parts.append(f'<rect x="{x_of(s.start):.2f}" y="{sy}" width="{max(2.0, inner * s.duration / end):.2f}" '
                         f'height="{heights[depth]}" class="{klass}"><title>{esc(s.name)} ({s.kind}): '
                         f'{s.duration * 1e3:.3f} ms from {s.start:.4f} s</title></rect>')
        y += sum(heights.values()) + 14
    parts.append(_axis(LEFT, LEFT + inner, y, 0, end))
    parts.append(f'<line id="cursor" x1="{LEFT}" y1="{top - 4}" x2="{LEFT}" y2="{y}" class="cursor" '
                 f'data-left="{LEFT}" data-width="{inner}" data-end="{end}"/>')
    y += 24
    return f'<svg id="timeline-svg" viewBox="0 0 {WIDTH} {y}" width="{WIDTH}" height="{y}">{"".join(parts)}</svg>'


# ----------------------------------------------------------------------------- 4. memory


def memory_svg(run) -> str:
    inner, height, top = WIDTH - LEFT - RIGHT, 260, 16
    samples = run.samples
    if not samples:
        return '<p class="note">No memory checkpoints were recorded in this run.</p>'
    end = max([run.duration] + [s["time"] for s in samples]) or 1.0
    names = [v["name"] for v in run.views]
    stacked = [sum(s["views"].get(n, {}).get("rss", 0) for n in names) for s in samples]
    peak = max(stacked + [s["backing"] for s in samples] + [s["pss"] for s in samples] + [r[1] for r in run.rss] + [1])
    x_of = lambda t: LEFT + inner * t / end  # noqa: E731
    y_of = lambda b: top + height - height * b / peak  # noqa: E731
    palette = ["#90caf9", "#a5d6a7", "#ffcc80", "#ce93d8", "#80deea", "#ef9a9a"]
    parts, legend = [], []
    below = [0] * len(samples)
    for k, name in enumerate(names):
        above = [b + s["views"].get(name, {}).get("rss", 0) for b, s in zip(below, samples)]
        points = [(x_of(s["time"]), y_of(a)) for s, a in zip(samples, above)]
        points += [(x_of(s["time"]), y_of(b)) for s, b in reversed(list(zip(samples, below)))]
        color = palette[k % len(palette)]
        parts.append(f'<polygon points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}" fill="{color}" '
                     f'class="area"><title>RSS counted through view {esc(name)}</title></polygon>')
        legend.append((color, f"RSS through view {name}", "area"))
        below = above

    def line(values, klass, label, color):
        pts = " ".join(f"{x_of(t):.1f},{y_of(v):.1f}" for t, v in values)
        parts.append(f'<polyline points="{pts}" class="{klass}"/>')
        legend.append((color, label, klass))

    if run.rss:
        line(run.rss, "line rss", "process RSS, at every collection", "#9e9e9e")
    line([(s["time"], sum(v["pss"] for v in s["views"].values())) for s in samples], "line pss",
         "PSS of the views: each page divided by its mappings", "#212121")
    line([(s["time"], s["backing"]) for s in samples], "line backing", "backing: the real size", "#d81b60")
    if any(s["hugetlb"] for s in samples):
        line([(s["time"], s["hugetlb"]) for s in samples], "line hugetlb", "HugetlbPages (not in RSS)", "#6d4c41")
    for k in range(5):
        b = peak * k / 4
        parts.append(f'<line x1="{LEFT}" y1="{y_of(b):.1f}" x2="{LEFT + inner}" y2="{y_of(b):.1f}" class="grid"/>'
                     f'<text x="{LEFT - 6}" y="{y_of(b) + 4:.1f}" class="axis" text-anchor="end">'
                     f'{b / 2**20:.0f}M</text>')
    parts.append(_axis(LEFT, LEFT + inner, top + height, 0, end))
    y = top + height + 34
    for k, (color, label, klass) in enumerate(legend):
        lx, ly = LEFT + (k % 2) * 440, y + (k // 2) * 18
        mark = (f'<rect x="{lx}" y="{ly - 10}" width="14" height="10" fill="{color}"/>' if klass == "area" else
                f'<line x1="{lx}" y1="{ly - 5}" x2="{lx + 14}" y2="{ly - 5}" class="{klass}"/>')
        parts.append(f'{mark}<text x="{lx + 20}" y="{ly}" class="label">{esc(label)}</text>')
    y += 18 * (-(-len(legend) // 2)) + 6
    return f'<svg id="memory-svg" viewBox="0 0 {WIDTH} {y}" width="{WIDTH}" height="{y}">{"".join(parts)}</svg>'


# ----------------------------------------------------------------------------- 5. the log


def log_html(run) -> str:
    import re

    lines = []
    for line in run.gc_log.splitlines():
        match = re.search(r"\] GC\((\d+)\)", line)
        gc = f' data-gc="{match[1]}"' if match else ""
        lines.append(f'<span class="logline"{gc}>{esc(line)}</span>')
    return f'<pre id="gc-log">{"".join(lines)}</pre>'


def config_html(run) -> str:
    from .config import format_value

    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(format_value(k, v))}</td><td>{esc(run.sources.get(k, ''))}</td></tr>"
                   for k, v in run.config.items())
    return f'<table class="config"><tr><th>key</th><th>value</th><th>source</th></tr>{rows}</table>'


# ----------------------------------------------------------------------------- the page

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1000px; color: #212121; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 34px; }
.meta, .note { color: #616161; } section p { max-width: 900px; }
svg text { font: 11px system-ui, sans-serif; fill: #212121; }
.caption { font-weight: 600; } .axis { fill: #616161; } .tick, .leader { stroke: #9e9e9e; }
.userspace { fill: #f5f5f5; stroke: #bdbdbd; } .reservation { fill: #1e88e5; }
.view { fill: #bbdefb; stroke: #1565c0; } .view.source { fill: #eeeeee; stroke: #757575; }
.young-band { fill: #43a047; } .region-line { stroke: #1565c0; stroke-opacity: .35; }
.view-label { font-weight: 600; } .gap { fill: #757575; font-style: italic; }
.map-line { stroke: #90a4ae; stroke-dasharray: 3 3; }
.backing { fill: #fce4ec; stroke: #d81b60; } .physical { fill: #d81b60; }
#region-map .frame { fill: #fafafa; stroke: #bdbdbd; } #region-map text { font-weight: 600; }
.controls { margin: 8px 0; display: flex; gap: 12px; align-items: center; }
#snapshot { width: 420px; } #snapshot-label { font-variant-numeric: tabular-nums; }
.key { margin-right: 14px; white-space: nowrap; } .swatch { display: inline-block; width: 12px; height: 12px;
  margin-right: 4px; vertical-align: -1px; border: 1px solid #9e9e9e; }
.stem.young, .span.young { fill: KIND_YOUNG; } .stem.full, .span.full { fill: KIND_FULL; }
.span.phase { fill: #78909c; } .span.concurrent { fill: #7e57c2; }
.cursor { stroke: #ff6f00; stroke-width: 1.5; }
.area { fill-opacity: .85; } .line { fill: none; stroke-width: 1.6; }
.line.rss { stroke: #9e9e9e; stroke-width: 1; } .line.pss { stroke: #212121; }
.line.backing { stroke: #d81b60; stroke-dasharray: 6 3; stroke-width: 2.2; } .line.hugetlb { stroke: #6d4c41; }
.grid { stroke: #eeeeee; }
#gc-log { max-height: 420px; overflow: auto; background: #fafafa; border: 1px solid #e0e0e0; padding: 8px;
  font: 12px/1.35 ui-monospace, monospace; }
.logline { display: block; } .logline.current { background: #fff3e0; }
table.config { border-collapse: collapse; } table.config td, table.config th { padding: 2px 10px;
  border-bottom: 1px solid #eeeeee; text-align: left; font-variant-numeric: tabular-nums; }
""".replace("KIND_YOUNG", KIND_COLORS["young"]).replace("KIND_FULL", KIND_COLORS["full"])

SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("run-data").textContent);
  var colors = data.colors, names = data.stateNames, spaces = data.spaces, size = data.regionSize;
  var slider = document.getElementById("snapshot");
  var label = document.getElementById("snapshot-label");
  var map = document.getElementById("region-map");
  var cells = map.querySelectorAll(".cell");
  var cellSize = Number(map.getAttribute("data-cell"));
  var cursor = document.getElementById("cursor");
  var log = document.getElementById("gc-log");
  var lines = log.querySelectorAll(".logline");
  var current = [];

  function fmt(bytes) {
    return bytes >= 1048576 ? (bytes / 1048576).toFixed(1) + " MiB" : (bytes / 1024).toFixed(0) + " KiB";
  }

  function show(index) {
    var snap = data.regions[index];
    var tally = {};
    for (var i = 0; i < cells.length; i++) {
      var state = snap.states.charAt(i), used = snap.used[i] || 0;
      var cell = cells[i];
      var fill = cell.querySelector(".fill"), frame = cell.querySelector(".frame");
      var h = Math.min(cellSize, Math.round(cellSize * used / size));
      frame.style.stroke = colors[state] || "#bdbdbd";
      fill.setAttribute("y", String(cellSize - h));
      fill.setAttribute("height", String(h));
      fill.style.fill = colors[state] || "#e0e0e0";
      cell.querySelector("text").textContent = state === "." ? "" : state;
      cell.querySelector("title").textContent = "region " + i + ": " + (names[state] || state) + ", " + fmt(used);
      cell.setAttribute("data-state", state);
      var space = spaces[state] || state;  // from- and to-space are both survivor regions
      tally[space] = (tally[space] || 0) + 1;
    }
    map.setAttribute("data-snapshot", String(index));
    var counts = Object.keys(tally).map(function (k) { return tally[k] + " " + k; }).join(", ");
    label.textContent = (index + 1) + "/" + data.regions.length + ": " + snap.label + " at " +
      snap.time.toFixed(3) + " s (" + counts + ")";
    var x = Number(cursor.getAttribute("data-left")) +
      Number(cursor.getAttribute("data-width")) * snap.time / Number(cursor.getAttribute("data-end"));
    cursor.setAttribute("x1", x.toFixed(1));
    cursor.setAttribute("x2", x.toFixed(1));
    current.forEach(function (line) { line.classList.remove("current"); });
    current = [];
    if (snap.gc_id !== null) {
      for (var j = 0; j < lines.length; j++) {
        if (lines[j].getAttribute("data-gc") === String(snap.gc_id)) { current.push(lines[j]); }
      }
      current.forEach(function (line) { line.classList.add("current"); });
      if (current.length) { log.scrollTop = current[0].offsetTop - log.offsetTop - 8; }
    }
  }

  slider.addEventListener("input", function () { show(Number(slider.value)); });
  var timer = null;
  var play = document.getElementById("play");
  play.addEventListener("click", function () {
    if (timer !== null) { clearInterval(timer); timer = null; play.textContent = "Play"; return; }
    if (Number(slider.value) >= data.regions.length - 1) { slider.value = "0"; }
    play.textContent = "Pause";
    timer = setInterval(function () {
      var next = Number(slider.value) + 1;
      if (next >= data.regions.length) { clearInterval(timer); timer = null; play.textContent = "Play"; return; }
      slider.value = String(next);
      show(next);
    }, 400);
  });
  show(Number(slider.value));
  document.body.setAttribute("data-ready", "yes");
})();
"""


def _json_for_script(value) -> str:
    # Inside <script>, "</" would end the element: escape it (and the HTML comment openers).
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")


def render(run) -> str:
    """The page, as a string."""
    c = run.config
    data = {"regions": [{"time": r["time"], "label": r["label"], "gc_id": r["gc_id"], "states": r["states"],
                         "used": r["used"]} for r in run.regions],
            "regionSize": run.region_size,
            "colors": {ch: SPACE_COLORS[space] for ch, space in STATE_SPACE.items()},
            "stateNames": STATE_NAMES, "spaces": STATE_SPACE}
    young = sum(1 for x in run.collections if x["kind"] == "young")
    full = sum(1 for x in run.collections if x["kind"] == "full")
    cycles = sum(1 for x in run.collections if x["kind"] == "zgc")
    longest = max([x["pause_ms"] for x in run.collections] + [0.0])
    last = max(0, len(run.regions) - 1)
    title = f"miniheap: backend {c['backend']}, mapping {c['mapping']}, heap {format_size(c['heap_size'])}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{esc(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{esc(title)}</h1>
<p class="meta">{esc(run.title)}: <code>{esc(run.command)}</code>, {esc(run.created)} on {esc(run.machine['host'])}
(Linux {esc(run.machine['kernel'])}, {esc(run.machine['cpus'])} CPUs). {f"{cycles} zgc cycles" if cycles else f"{young} young and {full} full collections"} in
{run.duration:.2f} s; longest pause {longest:.3f} ms.</p>

<section id="address-space">
<h2>1. Where the heap lives: reservations, views, backing</h2>
<p>The heap first reserves address space (<code>mmap(PROT_NONE, MAP_NORESERVE)</code>: no memory yet), then maps
views of one backing into it. Every view of the same offsets is the same physical memory: a write through one is
read through the others. The top bar is the whole user address space to scale; the bars below are drawn to one
scale with the backing under them, each over the offsets it maps, so views of the same memory stand above the
same stretch of backing. How far apart the views are in the address space cannot be drawn to that scale
(terabytes against megabytes): the addresses say it. The green strip is the young generation (eden and the two
survivors), the thin lines the regions.</p>
{address_space_svg(run)}
</section>

<section id="regions">
<h2>2. The regions at every collection</h2>
<p>One cell per region of {esc(format_size(run.region_size))}, as the collector left it after each collection. Move
the slider (or press Play) to replay the run: eden fills and empties at each young collection, survivors move
between the two survivor spaces, old regions fill with what was promoted, and a full collection evacuates the
sparse old regions and frees them. The orange line in the timeline and the highlighted lines of the GC log follow
the slider.</p>
<div class="controls"><button id="play" type="button">Play</button>
<input id="snapshot" type="range" min="0" max="{last}" value="{last}" step="1" aria-label="collection">
<span id="snapshot-label"></span></div>
{region_map_svg(run)}
<p>{legend_html()}</p>
</section>

<section id="timeline">
<h2>3. Timeline: pauses and phases</h2>
<p>Every collection is a span on the thread that ran it, its phases under it (a phase's start is inferred: the
collector times each phase but not when it began, so the phases are laid end to end from the start of the
pause). <span style="color:{KIND_COLORS['young']}">Young</span> and <span style="color:{KIND_COLORS['full']}">full</span>
pauses have their own colours; a concurrent phase, for a collector that has them, is purple. The same spans are
in the trace-event file (<code>--trace-events</code>) for Perfetto.</p>
{timeline_svg(run)}
</section>

<section id="memory">
<h2>4. Memory: RSS per view, PSS, and the real size</h2>
<p>RSS counts a page once for every mapping it was touched through, so with several views the stacked RSS can
be several times the heap. PSS divides each page by the number of its mappings and adds up to the real size. The
dashed red line is the backing itself, the memory the kernel really gave the heap: read the others against it.
Huge pages (backend memfd-hugetlb) are in neither RSS nor PSS.</p>
{memory_svg(run)}
</section>

<section id="log">
<h2>5. The GC log</h2>
<p>The run's collections in the JDK's unified-logging format at <code>-Xlog:gc*=debug</code>, rebuilt from its
events (the run itself logged at <code>{esc(c['gc_log'])}</code>). A JDK SerialGC log reads the same way.</p>
{log_html(run)}
</section>

<section id="configuration">
<h2>Configuration</h2>
{config_html(run)}
</section>

<script type="application/json" id="run-data">{_json_for_script(data)}</script>
<script>{SCRIPT}</script>
</body>
</html>
"""


def write_html(path, run) -> None:
    """Write the report of ``run`` (a :class:`~miniheap.recording.Run`) to ``path``."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(run))
