"""What a heap holds when it closes, space by space: the figures of the JDK's exit summary.

JDK 17 prints, as the JVM exits with ``-Xlog:gc*`` (the tag set gc,heap,exit at info), a "Heap" block:
for SerialGC each generation and each of its spaces with its size, how much is used and where it lies;
for ZGC the heap's used, committed and maximum capacity. :mod:`miniheap.gclog` prints the lines; this
module reads the figures from a live heap (the layer below: the C heap through ``Heap``), so the
writer knows nothing of the heap.

Addresses are in the heap's allocation view (the single view, or ``heap`` of young-mirror): the
addresses /proc/PID/maps shows for that view and ``Ref.address`` gives for an object.
"""
from __future__ import annotations

from attrs import frozen

# Young regions in the order the JDK names the spaces (eden, from, to), as mh_region_info calls them.
_YOUNG_STATES = ("eden", "survivor-from", "survivor-to")
_OLD_STATES = ("old", "humongous", "humongous+")


@frozen
class Space:
    """One contiguous space: [bottom, end) with the objects in [bottom, top)."""

    bottom: int
    top: int
    end: int
    used: int

    @property
    def capacity(self) -> int:
        return self.end - self.bottom


@frozen
class SerialSummary:
    """The generational heap: eden and the two survivor spaces make the young generation (whose
    capacity, as the JDK counts it, is eden and one survivor space); old is the rest of the heap."""

    eden: Space
    from_space: Space
    to_space: Space
    old: Space

    @property
    def young_bottom(self) -> int:
        return self.eden.bottom

    @property
    def young_end(self) -> int:
        return max(self.from_space.end, self.to_space.end)  # the survivor spaces swap roles


@frozen
class ZgcSummary:
    used: int
    capacity: int  # committed, as ZPageAllocator's capacity
    max_capacity: int


def read_summary(heap) -> SerialSummary | ZgcSummary:
    """The summary of an open heap. The caller holds the heap (``mh_lock``) so that no collection runs
    between the figures."""
    config = heap.config
    if config.collector == "zgc":
        stats = heap.stats
        return ZgcSummary(used=heap.occupancy()["total"], capacity=stats.regions_committed * config.region_size,
                          max_capacity=config.heap_size)
    return _serial_summary(heap)


def _serial_summary(heap) -> SerialSummary:
    size = heap.config.region_size
    base = heap.layout.views[0].start
    regions = heap.regions(in_use_only=True)
    young = {state: [(i, used) for i, s, used in regions if s == state] for state in _YOUNG_STATES}
    spaces = []
    for state in _YOUNG_STATES:
        first, last = young[state][0][0], young[state][-1][0]
        used = sum(u for _, u in young[state])
        # each young space fills from its bottom up (a bump pointer): its top is bottom + used
        spaces.append(Space(base + first * size, base + first * size + used, base + (last + 1) * size, used))
    old_bottom = max(s.end for s in spaces)  # young is the heap's first regions, old all the others
    old_used, old_top = 0, old_bottom
    for i, state, used in regions:
        if state in _OLD_STATES and used:
            old_used += used
            # the old generation is a set of regions with free ones between them, not one bump
            # pointer: its top is where the highest old object ends (everything above it is free)
            old_top = max(old_top, base + i * size + used)
    old = Space(old_bottom, old_top, base + heap.config.heap_size, old_used)
    return SerialSummary(*spaces, old)
