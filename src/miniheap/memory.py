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


# ----------------------------------------------------------------------------- distinct pages


# The pagemap's high byte of each 8-byte entry holds bit 63, "page present" (readable without root
# since Linux 4.2; only the frame number needs CAP_SYS_ADMIN). One byte per page: 1 present, 0 not.
_PRESENT = bytes(1 if b & 0x80 else 0 for b in range(256))
# Reading the pagemap costs 8 bytes per page of view: stop at 16 GiB of views (32 MiB to read).
PAGEMAP_LIMIT_PAGES = 1 << 22


def touched_bytes(views: Sequence, pid: int | str = "self") -> int | None:
    """Distinct bytes of the backing that are in this process's page tables through the views.

    RSS and PSS are per mapping; what was touched at all is a union over views. /proc/PID/maps says
    which file offset each view's lines map, /proc/PID/pagemap which of their pages are present, so a
    page present in three views counts once here. None when the pagemap cannot be read (another user's
    process) or the views are too large to read it in reasonable time.
    """
    from miniheap.maps import mappings_of, read_maps

    try:
        maps = read_maps(pid)
        lines = [m for view in views for m in mappings_of(view, maps)]
        if sum(m.length for m in lines) // PAGE_SIZE > PAGEMAP_LIMIT_PAGES:
            return None
        backings: dict[tuple[str, int], int] = {}
        with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
            for m in lines:
                pagemap.seek(m.start // PAGE_SIZE * 8)
                data = pagemap.read(m.length // PAGE_SIZE * 8)
                present = int.from_bytes(data[7::8].translate(_PRESENT), "little")
                key = (m.dev, m.inode) if m.inode else ("anon", m.start)
                # One byte per page of the backing, placed at the file offset this line maps.
                backings[key] = backings.get(key, 0) | present << (m.offset // PAGE_SIZE * 8)
    except OSError:
        return None
    return sum(bits.bit_count() for bits in backings.values()) * PAGE_SIZE


# ----------------------------------------------------------------------------- the snapshot


@frozen
class MemorySnapshot:
    """Process figures, per-view figures and the backing's real size, all in bytes.

    ``touched`` is the number of distinct bytes of the backing mapped through the views (from the
    pagemap), or None when it could not be read; explain() then estimates it from PSS and says so.
    """

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
    touched: int | None = None

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
        touched = None if self.touched is None or other.touched is None else self.touched - other.touched
        return MemorySnapshot(
            pid=self.pid, time=self.time - other.time,
            rss=self.rss - other.rss, pss=self.pss - other.pss, uss=self.uss - other.uss,
            swap=self.swap - other.swap, hugetlb=self.hugetlb - other.hugetlb, backing=self.backing - other.backing,
            views=views, hugetlb_expected=self.hugetlb_expected, is_delta=True, touched=touched,
        )

    def reading(self) -> Reading:
        """The figures explain() reasons from: double counting, untouched, mapped elsewhere."""
        return Reading.of(self)

    def explain(self) -> str:
        """Plain-language paragraphs, computed from this snapshot's numbers."""
        return _explain(self)

    def table(self) -> str:
        """An aligned table for a terminal."""
        return _table(self)


def snapshot(views: Sequence, backing_bytes: int, hugetlb_expected: bool = False, pid: int | None = None) -> MemorySnapshot:
    """Measure now. `views`: objects with .name, .start, .length; `backing_bytes`: the backing's real size."""
    pid = os.getpid() if pid is None else pid
    # smaps first, the pagemap and psutil figures right after, so all see nearly the same moment.
    vmas = read_smaps(pid)
    touched = touched_bytes(views, pid) if views else 0
    full = psutil.Process(pid).memory_full_info()
    return MemorySnapshot(
        pid=pid, time=time.monotonic(),
        rss=full.rss, pss=full.pss, uss=full.uss, swap=full.swap,
        hugetlb=read_hugetlb(pid), backing=int(backing_bytes),
        views=tuple(usage_of(v, vmas) for v in views), hugetlb_expected=hugetlb_expected, touched=touched,
    )


_self_process: psutil.Process | None = None


def quick() -> int:
    """This process's RSS in bytes, cheaply (no smaps walk): for loops."""
    global _self_process
    if _self_process is None or _self_process.pid != os.getpid():
        _self_process = psutil.Process()
    return _self_process.memory_info().rss


# ----------------------------------------------------------------------------- ground truth helpers


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo: what can be committed without pushing the machine to swap or OOM."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return psutil.virtual_memory().available


def too_big_to_commit(nbytes: int, what: str, fix: str) -> str | None:
    """A one-line reason when committing ``nbytes`` would take most of the machine's memory, else None.

    A pre-touched heap really takes its whole size at once; past about 80% of MemAvailable the kernel's
    OOM killer picks a process, perhaps not this one.
    """
    available = available_bytes()
    if nbytes <= available * 0.8:
        return None
    return (f"{what} needs {human(nbytes)} of memory at once, and this machine has {human(available)} "
            f"available (MemAvailable): {fix}")


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
    touched = "unknown" if s.touched is None else fmt(s.touched)
    lines.append(f"backing (real size): {fmt(s.backing)}    touched through the views: {touched}    swap: {fmt(s.swap)}")
    return "\n".join(lines)


def _signed(n: int) -> str:
    return ("+" if n >= 0 else "") + human(n)


# ----------------------------------------------------------------------------- explanation
# Every paragraph reads the same Reading, whose few decisions (is a page counted by several views?
# are pages mapped outside the views? was memory committed and never touched?) are taken once. So two
# paragraphs cannot tell different stories about one snapshot, and a delta reads as a change
# ("added") rather than a level ("holds").


@frozen
class Reading:
    """The quantities explain() reasons from, in bytes, with the decisions taken on them.

    For each page of the backing, say j of the views map it and k mappings exist in all (this
    process and others). The views' RSS counts it j times, their PSS j/k of it, ``touched`` once. So
    ``double`` (RSS - touched) is what further views add, and ``elsewhere`` (touched - PSS) is the
    share that PSS charged to mappings outside the views: zero unless some page really has one.
    """

    huge: bool  # the heap is in hugetlb pages: RSS and PSS leave it out, the hugetlb figures count it
    counted: int  # views' RSS (hugetlb: Shared_ + Private_Hugetlb): a page once per view it is in
    touched: int  # distinct bytes of the backing mapped through the views
    measured: bool  # touched was read from the pagemap, not estimated
    double: int  # counted - touched: the same pages counted again by further views
    elsewhere: int  # touched - views' PSS: shares charged to mappings outside the views
    untouched: int  # backing - touched: committed, but in no view's page tables
    slack: int  # figures are read a moment apart and rounded to kB: below this, a difference is noise

    @classmethod
    def of(cls, s: MemorySnapshot) -> Reading:
        huge = s.hugetlb_expected or (s.views_hugetlb > 0 and s.views_hugetlb >= s.views_rss)
        counted = s.views_hugetlb if huge else s.views_rss
        measured = s.touched is not None
        if measured:
            touched = s.touched
        else:  # no pagemap: assume every mapping of these pages is one of the views (PSS then = touched)
            touched = min(counted, s.backing) if huge else s.views_pss
        elsewhere = 0 if huge or not measured else touched - s.views_pss
        slack = max(2 * PAGE_SIZE * max(len(s.views), 1), max(abs(s.backing), abs(touched)) // 100)
        return cls(huge=huge, counted=counted, touched=touched, measured=measured,
                   double=counted - touched, elsewhere=elsewhere, untouched=s.backing - touched, slack=slack)

    @property
    def multi_view(self) -> bool:
        """Some pages are counted by more than one view."""
        return self.double > self.slack

    @property
    def other_mappers(self) -> bool:
        """Some touched pages also have mappings outside the views (PSS gave them a share)."""
        return self.elsewhere > self.slack

    @property
    def some_untouched(self) -> bool:
        """Part of the backing is in no view's page tables."""
        return self.untouched > self.slack

    @property
    def mappings_per_page(self) -> float:
        return self.counted / self.touched if self.touched > 0 else 0.0


def _explain(s: MemorySnapshot) -> str:
    r = Reading.of(s)
    parts = (_about_backing, _about_rss, _about_pss, _about_uss, _about_hugetlb, _about_swap, _about_estimates)
    return "\n\n".join(p for part in parts if (p := part(s, r)))


def _w(s: MemorySnapshot, level_word: str, change_word: str) -> str:
    return change_word if s.is_delta else level_word


def _touched_source(s: MemorySnapshot, r: Reading) -> str:
    if r.measured:
        return f"distinct pages present in the views' page tables, from /proc/{s.pid}/pagemap"
    return "estimated from PSS, as the pagemap could not be read: this assumes no other process maps the heap"


def _about_backing(s: MemorySnapshot, r: Reading) -> str:
    fmt = _signed if s.is_delta else human
    if s.is_delta:
        text = (f"Real size: the heap's backing changed by {_signed(s.backing)} between the two snapshots "
                f"({s.time:.3f} s apart): that much physical memory was really added to the heap")
    else:
        text = (f"Real size: the heap's backing holds {human(s.backing)} of physical memory, however many views "
                f"map it; read the other figures against it")
    if not s.views:
        return text + "."
    touched = f"{fmt(r.touched)} {_w(s, 'is', 'more is')} mapped through the views ({_touched_source(s, r)})"
    if r.some_untouched:
        return (f"{text}. Of it, {touched}, and {fmt(r.untouched)} {_w(s, 'was', 'more was')} committed but never "
                f"touched through them: physical memory in the backing (allocated by fallocate, or touched through "
                f"a mapping that is gone) that is in no view's RSS or PSS.")
    if r.untouched < -r.slack:
        return (f"{text}. Yet {touched}, {fmt(-r.untouched)} more than the backing holds: the backing figure was "
                f"read at another moment, or is not the size of the memory these views map.")
    return f"{text}. {touched[0].upper()}{touched[1:]}: {_within(r.untouched, 'all of it')}, nothing committed lies untouched."


def _about_rss(s: MemorySnapshot, r: Reading) -> str:
    if not s.views:
        return ""
    fmt = _signed if s.is_delta else human
    counted = _w(s, "count", "added")
    n = len(s.views)
    if r.huge:
        if s.views_rss > r.slack:
            return ""  # a mix of huge and small pages: the hugetlb paragraph says what it can
        return (f"RSS: the {n} views {counted} only {fmt(s.views_rss)} of RSS although {fmt(r.touched)} of the heap "
                f"is touched through them: its pages are huge pages, which RSS leaves out (see Huge pages).")
    if r.touched <= r.slack and r.counted <= r.slack:
        return (f"RSS: no page of the heap has been touched through the views, so they {counted} "
                f"{fmt(r.counted)} of RSS: a page enters a mapping's RSS only once it is touched through it.")
    process = _w(s, human(s.rss), "which changed by " + _signed(s.rss))
    if r.multi_view:
        touched = [v for v in s.views if v.rss > 2 * PAGE_SIZE]
        per_view = ", ".join(f"{v.name} {fmt(v.rss)}" for v in touched)
        times = f" ({r.mappings_per_page:.1f} times as much)" if r.touched > 0 else ""
        return (f"RSS: the {n} views {counted} {fmt(r.counted)} of RSS for {fmt(r.touched)} of distinct pages, "
                f"{fmt(r.double)} more{times}, because RSS counts a page once for every mapping it was touched "
                f"through: {len(touched)} views each counted the pages touched through them ({per_view}). The "
                f"process RSS ({process}), the figure ps and top show, carries the same double counting.")
    idle = [v.name for v in s.views if v.rss <= 2 * PAGE_SIZE]
    idle_note = (f"; {', '.join(idle)} {'has' if len(idle) == 1 else 'have'} not been touched and cost nothing"
                 if idle and n > 1 else "")
    return (f"RSS: the views {counted} {fmt(r.counted)} of RSS, the {fmt(r.touched)} of distinct pages touched "
            f"{_within(r.double, 'exactly')}, so each page was touched through one view only{idle_note}.")


def _about_pss(s: MemorySnapshot, r: Reading) -> str:
    if not s.views or r.huge or (r.touched <= r.slack and r.counted <= r.slack):
        return ""
    fmt = _signed if s.is_delta else human
    vp = s.views_pss
    adds = _w(s, "adds up to", "grew by")
    if r.other_mappers:
        return (f"PSS: the views' PSS {adds} {fmt(vp)}, {fmt(r.elsewhere)} less than the {fmt(r.touched)} touched "
                f"through them: some of those pages have mappings outside these views too (another process, "
                f"such as a forked child or a second attach, or another mapping of the backing in this process), "
                f"and PSS charges each mapping its share of a page.")
    per_page = f" (here about {r.mappings_per_page:.1f} mappings per page)" if r.touched > r.slack else ""
    untouched = (f" The {fmt(r.untouched)} committed but never touched is in nobody's PSS."
                 if r.some_untouched else "")
    return (f"PSS: the views' PSS {adds} {fmt(vp)}, the {fmt(r.touched)} touched "
            f"{_within(r.touched - vp, 'exactly')}, because PSS divides each page by the number of its "
            f"mappings{per_page} and no other mapping shares these pages: however many views map a page, it is "
            f"counted once. The whole process's PSS {_w(s, 'is ' + human(s.pss), 'changed by ' + _signed(s.pss))}."
            f"{untouched}")


def _about_uss(s: MemorySnapshot, r: Reading) -> str:
    if not s.views or r.huge or r.counted <= r.slack:
        return ""
    fmt = _signed if s.is_delta else human
    uss = _w(s, human(s.uss), "which changed by " + _signed(s.uss))
    shared = s.views_rss - s.views_private
    if shared <= r.slack and not r.multi_view and not r.other_mappers:
        return (f"USS: every heap page touched here has a single mapping, so USS ({uss}) includes the heap's "
                f"{fmt(s.views_private)} in full.")
    reasons = []
    if r.multi_view:
        reasons.append("several views of this process map them, which the kernel counts as sharing even though "
                       "no other process has them")
    if r.other_mappers:
        reasons.append("mappings outside these views map them too")
    why = " and ".join(reasons) or "they have more than one mapping"
    return (f"USS: psutil's USS ({uss}) counts only pages mapped exactly once. {fmt(shared)} of the views' RSS is "
            f"in pages with more than one mapping ({why}), so USS leaves them out: it includes only "
            f"{fmt(s.views_private)} of the {fmt(r.touched)} touched. USS under-reports a multi-mapped heap.")


def _about_hugetlb(s: MemorySnapshot, r: Reading) -> str:
    fmt = _signed if s.is_delta else human
    hv = s.views_hugetlb
    if s.hugetlb or hv:
        per_view = ", ".join(f"{v.name} {fmt(v.hugetlb)}" for v in s.views if v.hugetlb)
        text = (f"Huge pages: the process {_w(s, 'maps', 'added')} {fmt(s.hugetlb)} of hugetlb pages (HugetlbPages "
                f"in /proc/{s.pid}/status), {fmt(hv)} of them in the heap's views ({per_view or 'none'}). The kernel "
                f"counts hugetlb pages in neither RSS nor PSS, for historical reasons, so ps and top do not show "
                f"this memory at all; it is here instead.")
        if r.huge and r.multi_view:
            text += (f" Like RSS, these per-mapping figures count a page once per view: {fmt(hv)} across the "
                     f"views for {fmt(r.touched)} of distinct pages.")
        return text
    if s.hugetlb_expected and not s.is_delta:
        return ("Huge pages: the heap should be in hugetlb pages, but none are mapped (HugetlbPages is 0). "
                "Huge pages are taken from the pool (vm.nr_hugepages) at the first touch, so either nothing "
                "has been touched yet or the backend fell back to ordinary pages.")
    return ""


def _about_swap(s: MemorySnapshot, r: Reading) -> str:
    if s.swap <= 0:
        return ""
    in_views = sum(v.swap for v in s.views)
    return (f"Swap: {human(s.swap)} of the process is swapped out ({human(in_views)} of it from the heap's views); "
            f"swapped pages are in neither RSS nor PSS until they are touched again.")


def _about_estimates(s: MemorySnapshot, r: Reading) -> str:
    partial = [v.name for v in s.views if v.partial]
    if not partial:
        return ""
    return (f"Note: a mapping crossed the edge of view {', '.join(partial)}; smaps cannot split one mapping's "
            f"counters, so its share was estimated by address range.")


def _within(diff: int, exact: str) -> str:
    return exact if diff == 0 else f"to within {human(abs(diff))}"
