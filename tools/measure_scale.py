#!/usr/bin/env python3
"""Measure a heap far larger than what it holds: create, fill, full collection, close, and RSS.

    python tools/measure_scale.py                 4 TiB single view, 64 MiB live
    python tools/measure_scale.py --mapping colored --color-bits 44 --heap 4T
    python tools/measure_scale.py --humongous     the 64 MiB as 2 MiB objects (a full GC copies none)

The issue 13 target: create + full collection + close under 100 ms, process RSS under twice the
used heap plus 50 MiB. Times are this machine's, on a shared 2-core box: quote them with the command.
"""
import argparse
import gc
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from miniheap.heap import Heap  # noqa: E402
from miniheap.sizes import parse_size  # noqa: E402


def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--heap", default="4T")
    p.add_argument("--live", default="64M")
    p.add_argument("--mapping", default="none")
    p.add_argument("--color-bits", type=int, default=44)
    p.add_argument("--humongous", action="store_true", help="hold the live bytes in 2 MiB objects")
    a = p.parse_args()
    live = parse_size(a.live)
    gc.collect()
    base = rss()
    t0 = time.perf_counter()
    heap = Heap(heap_size=a.heap, young_size="16M", region_size="2M", mapping=a.mapping,
                color_bits=a.color_bits, gc_log="off")
    t1 = time.perf_counter()
    keep = []
    size = (2 << 20) - 64 if a.humongous else 32 << 10
    for _ in range(live // size):
        keep.append(heap.alloc(data=size))
    t2 = time.perf_counter()
    heap.collect(full=True)
    t3 = time.perf_counter()
    used = heap.occupancy()["total"]
    grown = rss() - base
    in_use = len(heap.regions(in_use_only=True))
    regions = heap.stats.regions_committed
    region_map = heap.region_map()
    keep.clear()
    t4 = time.perf_counter()
    heap.close()
    t5 = time.perf_counter()
    print(f"heap {a.heap} ({a.mapping}), holding {used / 2**20:.1f} MiB in "
          f"{'humongous' if a.humongous else '32 KiB'} objects")
    print(f"  create {1e3 * (t1 - t0):.1f} ms, fill {1e3 * (t2 - t1):.1f} ms, full collection "
          f"{1e3 * (t3 - t2):.1f} ms, close {1e3 * (t5 - t4):.1f} ms; "
          f"create + full + close {1e3 * ((t1 - t0) + (t3 - t2) + (t5 - t4)):.1f} ms")
    print(f"  RSS grew {grown / 2**20:.1f} MiB (bound: 2 x used + 50 MiB = {(2 * used + (50 << 20)) / 2**20:.1f} MiB)")
    print(f"  regions in use {in_use}, committed {regions}; region map: {region_map}")


if __name__ == "__main__":
    main()
