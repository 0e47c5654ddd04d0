"""Cleanup that finishes: every release step runs even when one fails; the first failure is raised
afterwards.

A heap is released in several steps (unmap each reservation, free the backing, close the GC log). If
the first ``munmap`` failed and the steps after it were skipped, the fd or the SysV segment would
outlive the heap. ``Cleanup`` runs them all and keeps the first exception for the end::

    with Cleanup() as cleanup:
        cleanup.run(layout.close)
        cleanup.run(backend.close)

An exception already propagating through the ``with`` block wins over the cleanup's own (the original
failure is the one to report), and the cleanup's is chained to it as ``__context__``.
"""


class Cleanup:
    __slots__ = ("first",)

    def __init__(self):
        self.first = None

    def run(self, step, *args):
        """Run one release step; remember its exception instead of stopping."""
        try:
            step(*args)
        except BaseException as e:  # KeyboardInterrupt too: the other steps still run first
            if self.first is None:
                self.first = e

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        first, self.first = self.first, None
        if first is not None and exc is None:
            raise first
        if first is not None and exc is not None and exc.__context__ is None:
            exc.__context__ = first
        return False
