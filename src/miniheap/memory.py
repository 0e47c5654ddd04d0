"""How much memory does a multi-mapped heap use? Measure it, and say why the usual figures disagree.

A heap mapped through several views (colored, young-mirror) confuses the
usual tools, each in its own way:

* RSS counts a page once per mapping that has touched it: three views, three times.
* PSS divides each page by the number of its mappings, so it adds up to the real size.
* USS (psutil's) keeps only pages mapped exactly once, so a page mapped by two
  views of the same process is "shared" and drops out of USS altogether.
* hugetlb pages are counted in neither RSS nor PSS; they appear as HugetlbPages
  in /proc/PID/status and as Shared_Hugetlb/Private_Hugetlb in smaps.

`snapshot()` gathers the process figures (psutil) and, per view of the heap, the
figures of the /proc/PID/smaps entries inside the view, next to the one number
that is not an artefact of counting: the size of the backing itself.
`MemorySnapshot.explain()` then says, from those numbers, what each figure means.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Sequence

import attrs
import psutil
from attrs import frozen

from miniheap.sizes import format_bytes_human as human
from miniheap.sizes import format_size

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# smaps fields summed per view; all are in kB in the file.
_SMAPS_FIELDS = ("Rss", "Pss", "Private_Clean", "Private_Dirty", "Shared_Hugetlb", "Private_Hugetlb", "Swap")
_HEADER_RE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) ")
_FIELD_RE = re.compile(r"^(\w+):\s+(\d+) kB$")


# ----------------------------------------------------------------------------- smaps


@frozen
class Vma:
    """One /proc/PID/smaps entry: an address range and its counters, in bytes."""

    start: int
    end: int
    fields: dict


def parse_smaps(text: str) -> list[Vma]:
    vmas: list[Vma] = []
    for line in text.splitlines():
        header = _HEADER_RE.match(line)
        if header:
            vmas.append(Vma(int(header[1], 16), int(header[2], 16), {}))
            continue
        field = _FIELD_RE.match(line)
        if field and vmas and field[1] in _SMAPS_FIELDS:
            vmas[-1].fields[field[1]] = int(field[2]) * 1024
    return vmas


def read_smaps(pid: int | str = "self") -> list[Vma]:
    with open(f"/proc/{pid}/smaps") as f:
        return parse_smaps(f.read())


def read_hugetlb(pid: int | str = "self") -> int:
    """HugetlbPages from /proc/PID/status, in bytes (0 on kernels without the field)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("HugetlbPages:"):
                return int(line.split()[1]) * 1024
    return 0


# ----------------------------------------------------------------------------- per view


@frozen
class ViewUsage:
    """The smaps figures of one view of the heap (bytes)."""

    name: str
    start: int
    length: int
    rss: int = 0
    pss: int = 0
    private: int = 0  # Private_Clean + Private_Dirty: pages mapped once, the only ones USS counts
    hugetlb: int = 0  # Shared_Hugetlb + Private_Hugetlb: not in rss or pss
    swap: int = 0
    vmas: int = 0  # smaps entries inside the view: a view may be split in several
    partial: bool = False  # an entry crossed the view's edge, so its share was estimated

    def minus(self, other: ViewUsage) -> ViewUsage:
        return attrs.evolve(
            self,
            rss=self.rss - other.rss,
            pss=self.pss - other.pss,
            private=self.private - other.private,
            hugetlb=self.hugetlb - other.hugetlb,
            swap=self.swap - other.swap,
            partial=self.partial or other.partial,
        )


def usage_of(view, vmas: Iterable[Vma]) -> ViewUsage:
    """Sum the smaps entries that lie in `view` (any object with .name, .start, .length)."""
    start, end = view.start, view.start + view.length
    totals = dict.fromkeys(_SMAPS_FIELDS, 0.0)
    count, partial = 0, False
    for vma in vmas:
        overlap = min(end, vma.end) - max(start, vma.start)
        if overlap <= 0:
            continue
        # An entry can stick out of the view (the kernel merges neighbouring mappings
        # of the same file); smaps cannot split its counters, so take the overlapping share.
        share = overlap / (vma.end - vma.start)
        partial |= share < 1
        count += 1
        for name in _SMAPS_FIELDS:
            totals[name] += vma.fields.get(name, 0) * share
    t = {k: int(round(v)) for k, v in totals.items()}
    return ViewUsage(
        name=view.name, start=start, length=view.length,
        rss=t["Rss"], pss=t["Pss"], private=t["Private_Clean"] + t["Private_Dirty"],
        hugetlb=t["Shared_Hugetlb"] + t["Private_Hugetlb"], swap=t["Swap"], vmas=count, partial=partial,
    )


# ----------------------------------------------------------------------------- the snapshot


@frozen
class MemorySnapshot:
    """Process figures, per-view figures and the backing's real size, all in bytes."""

    pid: int
    time: float
    rss: int
    pss: int
    uss: int
    swap: int
    hugetlb: int
    backing: int
    views: tuple[ViewUsage, ...]
    hugetlb_expected: bool = False
    is_delta: bool = False  # made by delta(): every figure is a change

    @property
    def views_rss(self) -> int:
        return sum(v.rss for v in self.views)

    @property
    def views_pss(self) -> int:
        return sum(v.pss for v in self.views)

    @property
    def views_private(self) -> int:
        return sum(v.private for v in self.views)

    @property
    def views_hugetlb(self) -> int:
        return sum(v.hugetlb for v in self.views)

    def view(self, name: str) -> ViewUsage:
        for v in self.views:
            if v.name == name:
                return v
        raise KeyError(f"no view named {name!r} in this snapshot: it has {', '.join(v.name for v in self.views) or 'no views'}")

    def delta(self, other: MemorySnapshot) -> MemorySnapshot:
        """self - other, figure by figure; views are matched by name."""
        earlier = {v.name: v for v in other.views}
        views = tuple(v.minus(earlier[v.name]) if v.name in earlier else v for v in self.views)
        return MemorySnapshot(
            pid=self.pid, time=self.time - other.time,
            rss=self.rss - other.rss, pss=self.pss - other.pss, uss=self.uss - other.uss,
            swap=self.swap - other.swap, hugetlb=self.hugetlb - other.hugetlb, backing=self.backing - other.backing,
            views=views, hugetlb_expected=self.hugetlb_expected, is_delta=True,
        )

    def explain(self) -> str:
        """Plain-language paragraphs, computed from this snapshot's numbers."""
        return _explain(self)

    def table(self) -> str:
        """An aligned table for a terminal."""
        return _table(self)


def snapshot(views: Sequence, backing_bytes: int, hugetlb_expected: bool = False, pid: int | None = None) -> MemorySnapshot:
    """Measure now. `views`: objects with .name, .start, .length; `backing_bytes`: the backing's real size."""
    pid = os.getpid() if pid is None else pid
    # smaps first, the psutil figures right after, so both see nearly the same moment.
    vmas = read_smaps(pid)
    full = psutil.Process(pid).memory_full_info()
    return MemorySnapshot(
        pid=pid, time=time.monotonic(),
        rss=full.rss, pss=full.pss, uss=full.uss, swap=full.swap,
        hugetlb=read_hugetlb(pid), backing=int(backing_bytes),
        views=tuple(usage_of(v, vmas) for v in views), hugetlb_expected=hugetlb_expected,
    )


_self_process: psutil.Process | None = None


def quick() -> int:
    """This process's RSS in bytes, cheaply (no smaps walk): for loops."""
    global _self_process
    if _self_process is None or _self_process.pid != os.getpid():
        _self_process = psutil.Process()
    return _self_process.memory_info().rss


# ----------------------------------------------------------------------------- ground truth helpers


def fd_backing_bytes(fd: int) -> int:
    """Physical size of a memfd (or any tmpfs/hugetlbfs file): the blocks it really holds."""
    return os.fstat(fd).st_blocks * 512


def sysv_backing_bytes(shmid: int) -> int:
    """Physical size of a System V segment: the rss column of /proc/sysvipc/shm."""
    with open("/proc/sysvipc/shm") as f:
        header = f.readline().split()
        for line in f:
            row = dict(zip(header, line.split()))
            if int(row["shmid"]) == shmid:
                return int(row["rss"])
    raise LookupError(f"no System V segment with shmid {shmid} in /proc/sysvipc/shm: it was removed, or belongs to another IPC namespace")


# ----------------------------------------------------------------------------- table


def _table(s: MemorySnapshot) -> str:
    # A delta shows signs, so "+16 MiB" cannot be read as a level.
    fmt = _signed if s.is_delta else human
    header = ("", "RSS", "PSS", "USS/private", "hugetlb", "where")
    rows = [header, (f"process {s.pid}", fmt(s.rss), fmt(s.pss), fmt(s.uss), fmt(s.hugetlb), "")]
    for v in s.views:
        where = f"{v.start:#x} {format_size(v.length)}" + (" (estimated)" if v.partial else "")
        rows.append((f"  view {v.name}", fmt(v.rss), fmt(v.pss), fmt(v.private), fmt(v.hugetlb), where))
    if len(s.views) > 1:
        rows.append(("  views total", fmt(s.views_rss), fmt(s.views_pss), fmt(s.views_private), fmt(s.views_hugetlb), ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i in (0, 5) else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows]
    lines.append(f"backing (real size): {fmt(s.backing)}    swap: {fmt(s.swap)}")
    return "\n".join(lines)


def _signed(n: int) -> str:
    return ("+" if n >= 0 else "") + human(n)


# ----------------------------------------------------------------------------- explanation
# Each paragraph is chosen and filled from the numbers: a heap touched through one
# view gets a different story from one touched through three, and a delta reads as
# a change ("added") rather than a level ("holds").


def _explain(s: MemorySnapshot) -> str:
    parts = (_about_backing, _about_rss, _about_pss, _about_uss, _about_hugetlb, _about_swap, _about_estimates)
    return "\n\n".join(p for part in parts if (p := part(s)))


def _w(s: MemorySnapshot, level_word: str, change_word: str) -> str:
    return change_word if s.is_delta else level_word


def _slack(s: MemorySnapshot) -> int:
    # Figures are read a moment apart and rounded to kB: allow a couple of pages per view, or 1%.
    return max(2 * PAGE_SIZE * max(len(s.views), 1), abs(s.backing) // 100)


def _about_backing(s: MemorySnapshot) -> str:
    if s.is_delta:
        return (f"Real size: the heap's backing changed by {_signed(s.backing)} between the two snapshots "
                f"({s.time:.3f} s apart): that much physical memory was really added to the heap.")
    return (f"Real size: the heap's backing holds {human(s.backing)} of physical memory. That is what the kernel "
            f"allocated for the heap however many views map it; read the other figures against it.")


def _about_rss(s: MemorySnapshot) -> str:
    if not s.views:
        return ""
    vr, b, slack = s.views_rss, s.backing, _slack(s)
    excess = vr - b
    counted = _w(s, "count", "added")
    if vr <= slack and s.views_hugetlb > 0:
        return (f"RSS: the {len(s.views)} views {counted} only {human(vr)} of RSS although the heap is {human(b)}: "
                f"its pages are huge pages, which RSS leaves out (see Huge pages).")
    if excess > slack:
        touched = [v for v in s.views if v.rss > 2 * PAGE_SIZE]
        per_view = ", ".join(f"{v.name} {human(v.rss)}" for v in touched)
        times = f" ({vr / b:.1f} times as much)" if b > 0 else ""
        return (f"RSS: the {len(s.views)} views {counted} {human(vr)} of RSS, {human(excess)} more than the real "
                f"{human(b)}{times}, because RSS counts a page once for every mapping it was touched through: "
                f"{len(touched)} views each counted the pages touched through them ({per_view}). The process RSS "
                f"({_w(s, human(s.rss), 'which changed by ' + _signed(s.rss))}), the figure ps and top show, "
                f"carries the same double counting.")
    if excess < -slack:
        return (f"RSS: the views {counted} {human(vr)} of RSS, {human(-excess)} less than the real {human(b)}: "
                f"a page enters a view's RSS only once it is touched through that view, so pages of the backing "
                f"that were written by another process, committed ahead of use, or swapped out are not in it.")
    idle = [v.name for v in s.views if v.rss <= 2 * PAGE_SIZE]
    idle_note = f"; {', '.join(idle)} {'has' if len(idle) == 1 else 'have'} not been touched and cost nothing" if idle and len(s.views) > 1 else ""
    return (f"RSS: the views {counted} {human(vr)} of RSS, {_within(excess)}, "
            f"so each page was touched through one view only{idle_note}.")


def _about_pss(s: MemorySnapshot) -> str:
    if not s.views or (s.views_rss <= _slack(s) and s.views_hugetlb > 0):
        return ""
    vp, vr, b, slack = s.views_pss, s.views_rss, s.backing, _slack(s)
    diff = vp - b
    if abs(diff) <= slack:
        return (f"PSS: the views' PSS {_w(s, 'adds up to', 'grew by')} {human(vp)}, {_within(diff)}, "
                f"because PSS divides each page by the number of its mappings{_sharing(vr, vp)}. "
                f"PSS is the figure that shows a multi-mapped heap at its true size; the whole process's PSS "
                f"{_w(s, 'is ' + human(s.pss), 'changed by ' + _signed(s.pss))}.")
    if diff < -slack:
        return (f"PSS: the views' PSS {_w(s, 'adds up to', 'grew by')} {human(vp)}, {human(-diff)} below the real "
                f"{human(b)}: PSS charges each process its share of a page, so pages also mapped by another "
                f"process (a forked child, a second attach) are partly charged there, and pages not mapped here count nothing.")
    return (f"PSS: the views' PSS ({human(vp)}) exceeds the real size by {human(diff)}: the backing figure "
            f"was read at another moment than smaps, or is not the size of the memory these views map.")


def _about_uss(s: MemorySnapshot) -> str:
    if not s.views or s.views_rss <= _slack(s):
        return ""
    shared = s.views_rss - s.views_private
    if shared > _slack(s):
        return (f"USS: psutil's USS ({_w(s, human(s.uss), 'which changed by ' + _signed(s.uss))}) counts only pages mapped exactly once. {human(shared)} of the "
                f"views' RSS is in pages mapped by more than one view, which the kernel calls shared even though "
                f"no other process has them, so USS leaves them out: it includes only {human(s.views_private)} of "
                f"the heap, {human(s.backing - s.views_private)} less than its real size. USS under-reports a "
                f"multi-mapped heap.")
    return (f"USS: every heap page touched in this process is mapped once, so USS ({_w(s, human(s.uss), 'which changed by ' + _signed(s.uss))}) includes "
            f"the heap's {human(s.views_private)} in full.")


def _about_hugetlb(s: MemorySnapshot) -> str:
    hv = s.views_hugetlb
    if s.hugetlb or hv:
        per_view = ", ".join(f"{v.name} {human(v.hugetlb)}" for v in s.views if v.hugetlb)
        text = (f"Huge pages: the process {_w(s, 'maps', 'added')} {human(s.hugetlb)} of hugetlb pages (HugetlbPages "
                f"in /proc/{s.pid}/status), {human(hv)} of them in the heap's views ({per_view or 'none'}). The kernel "
                f"counts hugetlb pages in neither RSS nor PSS, for historical reasons, so ps and top do not show "
                f"this memory at all; it is here instead.")
        if hv > s.backing + _slack(s):
            text += (f" Like RSS, these per-mapping figures count a page once per view: {human(hv)} across the "
                     f"views for {human(s.backing)} of real memory.")
        return text
    if s.hugetlb_expected and not s.is_delta:
        return ("Huge pages: the heap should be in hugetlb pages, but none are mapped (HugetlbPages is 0). "
                "Huge pages are taken from the pool (vm.nr_hugepages) at the first touch, so either nothing "
                "has been touched yet or the backend fell back to ordinary pages.")
    return ""


def _about_swap(s: MemorySnapshot) -> str:
    if s.swap <= 0:
        return ""
    in_views = sum(v.swap for v in s.views)
    return (f"Swap: {human(s.swap)} of the process is swapped out ({human(in_views)} of it from the heap's views); "
            f"swapped pages are in neither RSS nor PSS until they are touched again.")


def _about_estimates(s: MemorySnapshot) -> str:
    partial = [v.name for v in s.views if v.partial]
    if not partial:
        return ""
    return (f"Note: a mapping crossed the edge of view {', '.join(partial)}; smaps cannot split one mapping's "
            f"counters, so its share was estimated by address range.")


def _within(diff: int) -> str:
    return "exactly the real size" if diff == 0 else f"the real size to within {human(abs(diff))}"


def _sharing(rss: int, pss: int) -> str:
    if pss <= 0:
        return ""
    ratio = rss / pss
    return " (here every page has a single mapping)" if ratio < 1.05 else f" (here about {ratio:.1f} mappings per page)"
