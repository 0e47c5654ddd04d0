"""``python -m miniheap probe``: which backends work on this kernel and machine, why not, and the fix.

It also replays the two facts the 2017 linux-mm thread was about: ``mremap(old_size=0)`` refuses a
private mapping (EINVAL since Linux 4.14) and a MAP_HUGETLB mapping (EINVAL: the duplication trick never
worked for huge pages), which is why ``memfd_create(MFD_HUGETLB)`` was added instead.
"""
import argparse
import sys

from . import hugepages
from . import syscalls as sc
from .backends import BACKENDS
from .cli import quiet_on_broken_pipe
from .errors import SyscallError


class Experiment:
    """One system-call experiment: what was tried, its strace lines, and what it shows."""

    def __init__(self, title, lines, outcome, lesson):
        self.title, self.lines, self.outcome, self.lesson = title, lines, outcome, lesson


def probe_backends():
    return [cls.probe(sc.Syscalls()) for cls in BACKENDS.values()]


def mremap_duplicate(map_flags, size):
    """Map ``size`` bytes with ``map_flags`` and try to duplicate the mapping with old_size=0."""
    calls = sc.Syscalls()
    src = dup = None
    try:
        src = calls.mmap(0, size, sc.PROT_READ | sc.PROT_WRITE, map_flags)
        dup = calls.mremap(src, 0, size, sc.MREMAP_MAYMOVE)
        outcome = "duplicated"
    except SyscallError as e:
        outcome = e.strerror.split(" = ")[-1]
    finally:
        if dup:
            calls.munmap(dup, size)
        if src:
            calls.munmap(src, size)
    return calls.trace.lines, outcome


def experiments():
    size = hugepages.HUGE_PAGE_SIZE
    private = sc.MAP_PRIVATE | sc.MAP_ANONYMOUS
    shared = sc.MAP_SHARED | sc.MAP_ANONYMOUS
    # MAP_NORESERVE lets the hugetlb mapping exist even with an empty pool, so what fails is the
    # mremap itself, not the mmap before it.
    huge = shared | sc.MAP_HUGETLB | sc.MAP_NORESERVE
    result = []
    for title, flags, lesson in (
        ("mremap(old_size=0) of a shared anonymous mapping", shared,
         "a second mapping of the same pages: the trick DOSEMU used and the JVM team found"),
        ("mremap(old_size=0) of a private mapping", private,
         "refused since Linux 4.14: it used to make an unrelated private copy"),
        ("mremap(old_size=0) of a MAP_HUGETLB mapping", huge,
         "refused: hugetlb mappings cannot be duplicated this way, so Linux 4.14 added "
         "memfd_create(MFD_HUGETLB), a huge-page file that can be mmapped as often as wanted"),
    ):
        lines, outcome = mremap_duplicate(flags, size)
        result.append(Experiment(title, lines, outcome, lesson))
    return result


def format_report(results=None, trials=None):
    results = results if results is not None else probe_backends()
    trials = trials if trials is not None else experiments()
    width = max(len(r.name) for r in results)
    out = ["Backends on this machine", ""]
    for r in results:
        out.append(f"  {r.name:<{width}}  {'works' if r.works else 'does not work'}: {r.why}")
        if r.fix:
            out.append(f"  {'':<{width}}  fix: {r.fix}")
    info = hugepages.meminfo()
    out += ["", f"Huge pages: vm.nr_hugepages={info.get('HugePages_Total', 0)}, "
                f"free {info.get('HugePages_Free', 0)}, reserved {info.get('HugePages_Rsvd', 0)}",
            "", "What the 2017 linux-mm thread was about", ""]
    for t in trials:
        out.append(f"  {t.title}: {t.outcome}")
        out += [f"      {line}" for line in t.lines]
        out.append(f"    -> {t.lesson}")
    return "\n".join(out)


def parse_args(argv, prog=None):
    parser = argparse.ArgumentParser(
        prog=prog or "python -m miniheap probe",
        description="Which memory backends work on this kernel and machine, why not, and the fix; then "
                    "the mremap(old_size=0) experiments of the 2017 linux-mm thread, with their system "
                    "calls in strace format.")
    return parser.parse_args(argv)


@quiet_on_broken_pipe
def main(argv=None, prog=None):
    parse_args(sys.argv[1:] if argv is None else argv, prog)
    print(format_report())
    return 0
