"""The library's own trace is what strace shows for the same run: same calls, same order, same flags."""
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from .conftest import probe

# Calls only miniheap makes in the traced program; every one strace sees must be in the trace.
OWN_CALLS = ("shmget", "shmat", "shmctl", "shmdt", "memfd_create", "ftruncate", "fallocate", "mremap")
TRACED = OWN_CALLS + ("mmap", "munmap", "mprotect", "madvise", "close")

PROGRAM = textwrap.dedent("""
    import sys
    from miniheap import syscalls as sc
    from miniheap.backends import backend_class
    from miniheap.reservation import Reservation

    calls = sc.Syscalls()
    cls = backend_class(sys.argv[1])
    size = 2 * cls.granule
    backend = cls(calls, size)
    reservation = Reservation(calls, 3 * size, alignment=cls.granule)
    backend.commit(0, size)
    for i in range(3):
        backend.map_view(reservation, reservation.start + i * size, 0, size, writable=(i != 2))
    sc.ffi.cast("char *", reservation.start)[0] = b"x"
    backend.uncommit(0, cls.granule)
    reservation.release(reservation.start + size, size)
    reservation.close()
    backend.close()
    with open(sys.argv[2], "w") as f:
        f.write(str(calls.trace) + "\\n")
""")


def normalise(line):
    return re.sub(r"\)\s+= ", ") = ", line.strip())


@pytest.mark.parametrize("name", ["shm-mremap", "anon-mremap", "memfd", "memfd-hugetlb"])
def test_trace_matches_strace(name, tmp_path):
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (apt-get install strace)")
    result = probe(name)
    if not result.works:
        pytest.skip(f"backend {name} unavailable: {result.why}")
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    ours_file, strace_file = tmp_path / "ours.txt", tmp_path / "strace.txt"
    subprocess.run(["strace", "-o", str(strace_file), "-e", "trace=" + ",".join(TRACED),
                    sys.executable, str(script), name, str(ours_file)], check=True, timeout=120)
    ours = [normalise(line) for line in ours_file.read_text().splitlines() if line]
    theirs = [normalise(line) for line in strace_file.read_text().splitlines()
              if line.split("(")[0] in TRACED]
    assert len(ours) >= 8

    # Ours, in order, is a subsequence of what strace saw (strace also sees Python's own calls).
    position = 0
    for line in ours:
        try:
            position = theirs.index(line, position) + 1
        except ValueError:
            context = "\n".join(theirs[max(0, position - 3):position + 8])
            pytest.fail(f"strace did not show, at this point, our line\n  {line}\nstrace around it:\n{context}")

    # Every call only miniheap makes is in our trace: nothing happened behind the trace's back.
    own = [line for line in theirs if line.split("(")[0] in OWN_CALLS]
    assert own == [line for line in ours if line.split("(")[0] in OWN_CALLS]
