#!/usr/bin/env python3
"""A multi-mapped heap in 30 lines, without miniheap's collector: one memfd mapped three times.

    python examples/three_views.py               # touch through all three views, then explain
    python examples/three_views.py --touch 1     # through one view only: RSS = PSS
    python examples/three_views.py --hold 30 &   # keep the views for 30 s to check them in /proc

docs/memory.md walks through its output.
"""
import argparse
import ctypes
import mmap
import os
import time
from collections import namedtuple

from miniheap import memory

View = namedtuple("View", "name start length")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--touch", type=int, default=3, choices=(0, 1, 2, 3), help="views to touch (default 3)")
parser.add_argument("--hold", type=float, default=0, metavar="SECONDS", help="keep the views this long")
args = parser.parse_args()

size = 64 << 20
fd = os.memfd_create("demo")                    # the backing: an anonymous file in RAM
os.ftruncate(fd, size)
views, maps = [], []
for name in ("marked0", "marked1", "remapped"):
    m = mmap.mmap(fd, size)                     # MAP_SHARED: all views show the same pages
    c = ctypes.c_char.from_buffer(m)            # the mmap module hides the address;
    views.append(View(name, ctypes.addressof(c), size))  # ctypes reveals it
    del c
    maps.append(m)
for m in maps[:args.touch]:                     # touch every page through the first N views
    for offset in range(0, size, mmap.PAGESIZE):
        m[offset] = 1
s = memory.snapshot(views, memory.fd_backing_bytes(fd))
print(s.table())
print()
print(s.explain())
print(f"ready: pid {os.getpid()}", flush=True)
time.sleep(args.hold)
