"""python -m miniheap probe: every backend's verdict with its reason, and the 2017 thread's facts."""
import subprocess
import sys

from miniheap.backends import BACKENDS

from .conftest import probe


def test_probe_reports_every_backend_and_the_mremap_facts():
    result = subprocess.run([sys.executable, "-m", "miniheap", "probe"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in BACKENDS:
        verdict = probe(name)
        line = next(line for line in out.splitlines() if line.strip().startswith(name + " "))
        assert ("does not work" in line) == (not verdict.works), line
        if not verdict.works and name == "memfd-hugetlb":
            assert "sysctl vm.nr_hugepages=" in out  # the fix, with the number to type
    assert "mremap(old_size=0) of a shared anonymous mapping: duplicated" in out
    assert "mremap(old_size=0) of a private mapping: -1 EINVAL" in out
    assert "mremap(old_size=0) of a MAP_HUGETLB mapping: -1 EINVAL" in out
    assert "MREMAP_MAYMOVE) = -1 EINVAL (Invalid argument)" in out  # the strace lines themselves
