"""The run as one PNG (``--plot FILE.png``), four panels over the same time axis:

1. the heap in use by space, with every collection marked by kind;
2. each pause, young and full in their own colours;
3. memory: RSS per view stacked (RSS counts a page once per view that touched it), PSS, and the
   backing's real size, the line to read the others against;
4. the regions by state over time, one band per state.

Needs matplotlib, which miniheap does not require: ``pip install matplotlib``, or from a checkout
``pip install '.[plot]'``.
"""
from __future__ import annotations

from .spans import PAUSE

# The report uses the same colours.
SPACE_COLORS = {"eden": "#43a047", "survivor": "#fb8c00", "old": "#1e88e5", "humongous": "#8e24aa",
                "free": "#e0e0e0", "small": "#43a047", "medium": "#fb8c00", "large": "#8e24aa",
                "reserved": "#bdbdbd", "relocating": "#e53935"}
KIND_COLORS = {"young": "#00897b", "full": "#d81b60", "zgc": "#5e35b1"}
STATE_SPACE = {"E": "eden", "e": "eden", "S": "survivor", "s": "survivor", "O": "old", "o": "old",
               "H": "humongous", "h": "humongous", ".": "free",
               "P": "small", "p": "small", "M": "medium", "m": "medium", "L": "large", "l": "large",
               "r": "reserved", "R": "relocating"}
INSTALL_ADVICE = "pip install matplotlib (or, from a checkout of miniheap, pip install '.[plot]')"


def available() -> bool:
    """Whether --plot can draw here (matplotlib imports)."""
    return _pyplot() is not None


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def write_png(path, run, out=None) -> bool:
    """Draw ``run`` (a :class:`~miniheap.recording.Run`) into ``path``. Without matplotlib, say how to
    install it on ``out`` and return False."""
    plt = _pyplot()
    if plt is None:
        if out is not None:
            print(f"--plot: matplotlib is not installed, so {path} was not written; {INSTALL_ADVICE}", file=out)
        return False
    mib = 1 / 2**20
    fig, (occ, pauses, mem, regions) = plt.subplots(4, 1, figsize=(10, 11), sharex=True,
                                                    gridspec_kw={"height_ratios": [3, 1.4, 3, 2]})
    collections = run.collections

    # 1. heap in use by space: before and after each collection (the sawtooth), and at checkpoints.
    # (zgc: by page type, at the checkpoints; its cycles add the total in use at their start and end)
    zgc = run.config.get("collector") == "zgc"
    spaces = ("large", "medium", "small") if zgc else ("old", "survivor", "eden")
    points = [(s["time"], *[s["used"].get(name, 0) for name in spaces]) for s in run.samples]
    for c in collections:
        if c["kind"] in ("young", "full"):
            points.append((c["start"], c["old_before"], c["survivor_before"], c["eden_before"]))
            points.append((c["end"], c["old_after"], c["survivor_after"], c["eden_after"]))
        elif c["kind"] == "zgc":
            points.append((c["start"], 0, 0, c["used_before"]))
            points.append((c["end"], 0, 0, c["used_after"]))
    points.sort()
    if points:
        t = [p[0] for p in points]
        occ.stackplot(t, [[p[i] * mib for p in points] for i in (1, 2, 3)], labels=list(spaces),
                      colors=[SPACE_COLORS[name] for name in spaces], alpha=0.85)
    for kind in ("young", "full", "zgc"):
        times = [c["end"] for c in collections if c["kind"] == kind]
        if times:
            occ.vlines(times, 0, 1, transform=occ.get_xaxis_transform(), colors=KIND_COLORS[kind], linewidth=0.6,
                       alpha=0.6, label=f"{kind} collection")
    occ.set_ylabel("heap in use (MiB)")
    occ.set_title("Heap in use by space; every collection marked by kind", fontsize=10, loc="left")
    occ.legend(loc="upper left", fontsize=8, ncol=3)

    # 2. pauses.
    for kind in ("young", "full", "zgc"):
        chosen = [c for c in collections if c["kind"] == kind]
        if chosen:
            pauses.vlines([c["end"] for c in chosen], 0, [c["pause_ms"] for c in chosen], colors=KIND_COLORS[kind],
                          linewidth=2, label=f"{kind} pause ({len(chosen)})")
    concurrent = [s for s in run.spans if s.kind != PAUSE and s.depth == 0]
    if concurrent:
        pauses.hlines([0] * len(concurrent), [s.start for s in concurrent], [s.end for s in concurrent],
                      colors="#757575", linewidth=6, label="concurrent phase")
    pauses.set_ylabel("pause (ms)")
    pauses.set_title("Pauses", fontsize=10, loc="left")
    pauses.legend(loc="upper left", fontsize=8, ncol=3)

    # 3. memory.
    samples = run.samples
    if samples:
        t = [s["time"] for s in samples]
        names = [v["name"] for v in run.views]
        layers = [[s["views"].get(n, {}).get("rss", 0) * mib for s in samples] for n in names]
        palette = ["#90caf9", "#a5d6a7", "#ffcc80", "#ce93d8", "#80deea", "#ef9a9a"]
        mem.stackplot(t, layers, labels=[f"RSS, view {n}" for n in names], colors=palette[:len(names)] or None,
                      alpha=0.9)
        mem.plot(t, [sum(v["pss"] for v in s["views"].values()) * mib for s in samples], "o-", color="#212121",
                 linewidth=1.2, markersize=3, label="PSS of the views")
        mem.plot(t, [s["backing"] * mib for s in samples], "s--", color="#d81b60", linewidth=1.8, markersize=3,
                 label="backing: the real size")
        if any(s["hugetlb"] for s in samples):
            mem.plot(t, [s["hugetlb"] * mib for s in samples], ":", color="#6d4c41", label="HugetlbPages")
    if run.rss:
        mem.plot([r[0] for r in run.rss], [r[1] * mib for r in run.rss], color="#9e9e9e", linewidth=0.8,
                 label="process RSS")
    mem.set_ylabel("MiB")
    mem.set_title("Memory: RSS per view (stacked) against PSS and the backing's real size", fontsize=10, loc="left")
    mem.legend(loc="upper left", fontsize=8, ncol=2)

    # 4. every region over time: its state's colour, darker the fuller it is.
    if run.regions:
        import numpy as np
        from matplotlib.colors import ListedColormap, to_rgb

        order = (["free", "small", "medium", "large", "reserved", "relocating"] if zgc
                 else ["free", "eden", "survivor", "old", "humongous"])
        shades = 5  # per state: from nearly white (empty) to the full colour
        colours = []
        for space in order:
            r, g, b = to_rgb(SPACE_COLORS[space])
            for k in range(shades):
                f = 0.25 + 0.75 * k / (shades - 1)
                colours.append((1 - f * (1 - r), 1 - f * (1 - g), 1 - f * (1 - b)))
        nregions = len(run.regions[0]["states"])
        grid = np.zeros((nregions, len(run.regions)))
        for col, snap in enumerate(run.regions):
            for row, (state, used) in enumerate(zip(snap["states"], snap["used"])):
                space = STATE_SPACE.get(state, "free")
                level = 0 if space == "free" else min(shades - 1, round((shades - 1) * used / run.region_size))
                grid[row, col] = order.index(space) * shades + level
        edges = [r["time"] for r in run.regions] + [max(run.duration, run.regions[-1]["time"]) + 1e-3]
        regions.pcolormesh(edges, np.arange(nregions + 1), grid, cmap=ListedColormap(colours),
                           vmin=0, vmax=len(colours) - 1, shading="flat")
        regions.set_ylim(nregions, 0)
        from matplotlib.patches import Patch

        regions.legend(handles=[Patch(color=SPACE_COLORS[s], label=s) for s in order], loc="lower right",
                       fontsize=8, ncol=5)
    regions.set_ylabel("region")
    regions.set_xlabel("seconds since the heap was created")
    size = run.region_size
    regions.set_title(f"Every region of {size >> 20 or size >> 10}{'M' if size >> 20 else 'K'} after each "
                      f"collection: colour by state, darker when fuller", fontsize=10, loc="left")

    c = run.config
    fig.suptitle(f"miniheap: backend {c['backend']}, mapping {c['mapping']}, heap {c['heap_size'] >> 20}M")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    if out is not None:
        print(f"plot written to {path}", file=out)
    return True
