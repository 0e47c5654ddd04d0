#!/usr/bin/env python3
"""The teaching run of miniheap. Try:

    python examples/gc_demo.py                               # ZGC-style coloured views, pre-touched
    python examples/gc_demo.py --backend shm-mremap          # the 2017 thread's system calls
    python examples/gc_demo.py --mapping none                # one view: RSS = PSS
    python examples/gc_demo.py --config examples/configs/young-mirror.toml
    python examples/gc_demo.py --html run.html               # a report to open in a browser
    python examples/gc_demo.py --trace-events run.json       # for ui.perfetto.dev or chrome://tracing
    python examples/gc_demo.py --plot gc.png                 # needs: pip install matplotlib
"""
import sys

from miniheap.demo import main

if __name__ == "__main__":
    sys.exit(main())
