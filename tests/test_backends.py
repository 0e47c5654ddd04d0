"""The backends: views alias, sit where asked, and leave nothing behind; bad input is refused clearly."""
import contextlib
import fcntl
import os

import pytest

from miniheap import hugepages
from miniheap import syscalls as sc
from miniheap.backends import BACKENDS, backend_class, open_backend
from miniheap.errors import CommitError, ReservationError
from miniheap.reservation import Reservation

from .conftest import require_backend, shm_segments

NVIEWS = 4


def build(name, calls, size=None, nviews=NVIEWS):
    cls = backend_class(name)
    size = size or 2 * cls.granule
    backend = cls(calls, size)
    reservation = Reservation(calls, nviews * size, alignment=cls.granule, label="test")
    backend.commit(0, size)
    views = [backend.map_view(reservation, reservation.start + i * size, 0, size, name=f"v{i}")
             for i in range(nviews)]
    return backend, reservation, views


def word(addr):
    return sc.ffi.cast("uint64_t *", addr)


def test_every_view_sees_a_write_through_any_other(backend_name):
    calls = sc.Syscalls()
    backend, reservation, views = build(backend_name, calls)
    try:
        for i, writer in enumerate(views):
            offset = (i * 4096 + 8 * i) % writer.length
            word(writer.start + offset)[0] = 0xC0FFEE00 + i
            for reader in views:
                assert word(reader.start + offset)[0] == 0xC0FFEE00 + i, (writer, reader)
    finally:
        reservation.close()
        backend.close()


def test_views_sit_exactly_at_the_requested_addresses(backend_name):
    calls = sc.Syscalls()
    backend, reservation, views = build(backend_name, calls)
    try:
        starts = {v.start for v in views}
        with open("/proc/self/maps") as f:
            mapped = {int(line.split("-")[0], 16): line for line in f}
        for v in views:
            assert v.start in mapped, f"no mapping starts at {v.start:#x}"
            assert reservation.contains(v.start, v.length)
        assert len(starts) == NVIEWS
        assert sorted(starts) == [reservation.start + i * views[0].length for i in range(NVIEWS)]
    finally:
        reservation.close()
        backend.close()


def test_read_only_view_is_mapped_without_write_permission(backend_name):
    calls = sc.Syscalls()
    cls = backend_class(backend_name)
    backend = cls(calls, cls.granule)
    reservation = Reservation(calls, 2 * cls.granule, alignment=cls.granule)
    try:
        backend.commit(0, cls.granule)
        backend.map_view(reservation, reservation.start, 0, cls.granule)
        ro = backend.map_view(reservation, reservation.start + cls.granule, 0, cls.granule, writable=False)
        with open("/proc/self/maps") as f:
            perms = next(line.split()[1] for line in f if int(line.split("-")[0], 16) == ro.start)
        assert perms.startswith("r-"), perms
    finally:
        reservation.close()
        backend.close()


def test_create_and_close_many_times_leaves_nothing_behind(backend_name, resources):
    before = resources()
    for _ in range(50):
        backend, reservation, views = build(backend_name, sc.Syscalls())
        word(views[0].start)[0] = 1
        reservation.close()
        backend.close()
    assert resources().leaks_since(before) == []


def test_uncommit_gives_the_pages_back(backend_name):
    calls = sc.Syscalls()
    backend, reservation, views = build(backend_name, calls, nviews=1)
    try:
        sc.lib.memset(sc.ffi.cast("void *", views[0].start), 1, views[0].length)
        full = backend.physical_bytes()
        backend.uncommit(0, backend.size)
        if full < 0:
            pytest.skip("the backing's physical size cannot be read here (/proc/self/map_files refused)")
        assert full >= backend.size
        assert backend.physical_bytes() == 0
        assert word(views[0].start)[0] == 0  # the pages came back zeroed
    finally:
        reservation.close()
        backend.close()


def test_trace_names_each_call_with_its_flags(backend_name):
    calls = sc.Syscalls()
    backend, reservation, views = build(backend_name, calls, nviews=2)
    reservation.close()
    backend.close()
    text = str(calls.trace)
    expected = {
        "shm-mremap": ["shmget(IPC_PRIVATE, ", "IPC_CREAT|0600) = ", "shmctl(", "IPC_RMID, NULL) = 0",
                       "MREMAP_MAYMOVE|MREMAP_FIXED, "],
        "anon-mremap": ["MAP_SHARED|MAP_ANONYMOUS, -1, 0) = 0x", "MREMAP_MAYMOVE|MREMAP_FIXED, "],
        "memfd": ['memfd_create("miniheap", MFD_CLOEXEC) = ', "MAP_SHARED|MAP_FIXED, "],
        "memfd-hugetlb": ['memfd_create("miniheap", MFD_CLOEXEC|MFD_HUGETLB|21<<MFD_HUGE_SHIFT) = ',
                          "MAP_SHARED|MAP_FIXED|MAP_NORESERVE, "],
    }[backend_name]
    for piece in expected:
        assert piece in text, f"{piece!r} not in trace:\n{text}"


# -- security ---------------------------------------------------------------------------------

def test_shm_segment_is_0600_and_removed_before_first_use():
    require_backend("shm-mremap")
    calls = sc.Syscalls()
    backend = open_backend("shm-mremap", calls, 4096)
    try:
        with open("/proc/sysvipc/shm") as f:
            header = f.readline().split()
            rows = [dict(zip(header, line.split())) for line in f]
        row = next(r for r in rows if int(r["shmid"]) == backend.shmid)
        perms = int(row["perms"], 8)
        assert perms & 0o777 == 0o600
        assert perms & 0o1000, "SHM_DEST not set: the segment was not removed with IPC_RMID"
        assert int(row["key"]) == 0  # IPC_PRIVATE: nobody can shmget it by key
        lines = calls.trace.lines
        assert lines[0].startswith("shmget(") and lines[1].startswith("shmat(")
        assert lines[2].startswith(f"shmctl({backend.shmid}, IPC_RMID")
    finally:
        backend.close()
    assert backend.shmid not in shm_segments()


@pytest.mark.parametrize("name", ["memfd", "memfd-hugetlb"])
def test_memfd_is_close_on_exec(name):
    backend = open_backend(name, sc.Syscalls(), backend_class(name).granule)
    try:
        assert fcntl.fcntl(backend.fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    finally:
        backend.close()


def dev_shm_files_of_this_process():
    """The files under /dev/shm this process has open or mapped (deleted ones included). /dev/shm is
    the machine's: another process (a browser, another test run) may add or remove files there at any
    moment, so what is in the folder alone says nothing about this process."""
    held = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the fd listdir itself used is gone already
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("/dev/shm/"):
                held.add(target)
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].startswith("/dev/shm/"):
                held.add(fields[5].rstrip("\n"))
    return held


def test_nothing_is_left_in_dev_shm(backend_name):
    """The backings are memfds, SysV segments or anonymous memory: none is a file in /dev/shm, so no
    crash can leave one there. Checked while the views are mapped: a file the backend made there is
    open or mapped then, even if it was unlinked at once."""
    before = dev_shm_files_of_this_process()
    backend, reservation, views = build(backend_name, sc.Syscalls())
    try:
        during = dev_shm_files_of_this_process()
    finally:
        reservation.close()
        backend.close()
    assert during == before == set(), during


# -- bad input --------------------------------------------------------------------------------

def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ValueError) as e:
        open_backend("tmpfs", sc.Syscalls(), 4096)
    for name in BACKENDS:
        assert name in str(e.value)


@pytest.mark.parametrize("size", [0, -4096, 4095, 1.5, "4096", True])
def test_bad_sizes_are_refused_with_the_alignment(size):
    with pytest.raises(ValueError) as e:
        open_backend("memfd", sc.Syscalls(), size)
    assert "memfd" in str(e.value)


def test_hugetlb_size_must_be_a_multiple_of_2m(resources):
    before = resources()
    with pytest.raises(ValueError, match="2 MiB"):
        open_backend("memfd-hugetlb", sc.Syscalls(), 4096)
    assert resources().leaks_since(before) == []


@contextlib.contextmanager
def memfd_in_reservation(backing=8192, reserved=16384):
    """A small memfd backing and a reservation to map it into, both closed afterwards."""
    calls = sc.Syscalls()
    backend = open_backend("memfd", calls, backing)
    reservation = Reservation(calls, reserved)
    try:
        yield backend, reservation
    finally:
        reservation.close()
        backend.close()


def test_view_outside_the_reservation_is_refused():
    with memfd_in_reservation(reserved=8192) as (backend, reservation):
        with pytest.raises(ReservationError, match="outside"):
            backend.map_view(reservation, reservation.end, 0, 4096)
        with pytest.raises(ReservationError, match="outside"):
            backend.map_view(reservation, reservation.start + 4096, 0, 8192)


def test_view_over_a_view_is_refused():
    with memfd_in_reservation() as (backend, reservation):
        backend.map_view(reservation, reservation.start, 0, 8192)
        with pytest.raises(ReservationError, match="overlaps"):
            backend.map_view(reservation, reservation.start + 4096, 0, 4096)


def test_reservation_at_a_taken_address_is_refused(resources):
    calls = sc.Syscalls()
    first = Reservation(calls, 1 << 20)
    before = resources()
    try:
        with pytest.raises(ReservationError, match="overlaps an existing mapping"):
            Reservation(calls, 1 << 20, at=first.start)
        assert resources().leaks_since(before) == []
    finally:
        first.close()


def test_reservation_at_a_requested_address_lands_there():
    at = 0x7E0000000000
    calls = sc.Syscalls()
    r = Reservation(calls, 1 << 21, at=at)
    try:
        assert r.start == at
    finally:
        r.close()


def test_view_range_beyond_the_backing_is_refused():
    with memfd_in_reservation() as (backend, reservation):
        with pytest.raises(ValueError, match="exceeds the backing size"):
            backend.map_view(reservation, reservation.start, 4096, 8192)


def test_huge_page_shortage_is_an_error_at_commit_and_leaks_nothing(resources):
    require_backend("memfd-hugetlb")
    free = hugepages.free_pages()
    size = (free + 2) * hugepages.HUGE_PAGE_SIZE
    before = resources()
    calls = sc.Syscalls()
    backend = open_backend("memfd-hugetlb", calls, size)
    try:
        with pytest.raises(CommitError) as e:
            backend.commit(0, size)
        message = str(e.value)
        assert "sysctl vm.nr_hugepages=" in message and "free" in message
        assert backend.physical_bytes() == 0, "a failed commit kept some huge pages"
    finally:
        backend.close()
    assert resources().leaks_since(before) == []


def test_injected_failure_while_mapping_leaves_nothing(backend_name, resources):
    before = resources()
    calls = sc.Syscalls()
    name = "mremap" if "mremap" in backend_name else "mmap"
    cls = backend_class(backend_name)
    backend = cls(calls, cls.granule)
    reservation = Reservation(calls, cls.granule, alignment=cls.granule)
    calls.fail_on(name, 12)  # ENOMEM
    with pytest.raises(OSError) as e:
        backend.map_view(reservation, reservation.start, 0, cls.granule)
    assert "ENOMEM" in str(e.value) and name in str(e.value)
    reservation.close()
    backend.close()
    assert resources().leaks_since(before) == []
