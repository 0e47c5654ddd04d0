"""The peers the benchmarks measure miniheap against, shipped inside the package so that
``python -m miniheap bench`` works from any folder after ``pip install .``:

* ``GCBench.java``: GCBench for the JVM, compiled with ``javac`` at bench time (package data);
* ``gcbench_cpython.py``: GCBench on plain CPython objects, imported as a module.
"""
