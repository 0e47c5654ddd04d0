"""Cleanup that finishes, and errors that say what ran out.

Every release step runs even when one fails, and the first failure is reported afterwards; running out
of file descriptors or address space is named as such; what the SysV backend's IPC_RMID does and does
not protect against is exactly what the docs say.
"""
import errno
import os
import subprocess
import sys
import textwrap

import pytest

from miniheap import SyscallError
from miniheap.cleanup import Cleanup
from miniheap.heap import Heap
from miniheap.syscalls import Syscalls

from .conftest import LAYOUTS, SANITIZED, require_backend, shm_segments, small_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_cleanup_runs_every_step_and_raises_the_first_failure():
    ran = []

    def fail(name):
        ran.append(name)
        raise OSError(name)

    with pytest.raises(OSError, match="first"):
        with Cleanup() as cleanup:
            cleanup.run(fail, "first")
            cleanup.run(ran.append, "second")
            cleanup.run(fail, "third")
    assert ran == ["first", "second", "third"]


@pytest.mark.parametrize("mapping", ["colored", "young-mirror"])
def test_a_failing_munmap_at_close_still_frees_the_rest(resources, mapping):
    before = resources()
    calls = Syscalls()
    heap = Heap(small_config(mapping=mapping), syscalls=calls)
    first = heap.layout.reservations[0]
    start, size = first.start, first.size
    calls.fail_on("munmap", errno.EINVAL)  # the first reservation's munmap fails
    with pytest.raises(SyscallError, match="munmap"):
        heap.close()
    assert heap.backend.closed, "the backing was not freed after the unmap failed"
    assert all(r.start is None for r in heap.layout.reservations[1:]) or heap.layout.reservations == []
    left = resources().leaks_since(before, huge=False)
    # only the range whose munmap failed is still mapped; the fd and the other views are gone
    assert len(left) == 1 and "mappings" in left[0], left
    Syscalls().munmap(start, size)
    assert resources().leaks_since(before, huge=False) == []


def test_ipc_rmid_refused_while_building_leaves_no_segment(resources):
    require_backend("shm-mremap")
    before = resources()
    calls = Syscalls()
    calls.fail_on("shmctl", errno.EPERM)
    with pytest.raises(Exception, match="EPERM|shmctl"):
        Heap(small_config("shm-mremap"), syscalls=calls)
    assert shm_segments() == before.shm, "the SysV segment outlived the failed heap"
    assert resources().leaks_since(before, huge=False) == []


def run_limited(body, timeout=120):
    code = textwrap.dedent('''
        import os, sys, resource
        sys.path.insert(0, os.path.join(%r, "tests"))
        from conftest import small_config
        from miniheap.heap import Heap
    ''' % ROOT) + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("backend", ["memfd"])  # the backends whose backing is a file descriptor
def test_no_file_descriptors_left_is_named_as_such(backend):
    require_backend(backend)
    out = run_limited('''
        Heap(small_config(%r, gc_log="off")).close()  # every module imported while files can be opened
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        held = []
        try:
            while True:
                held.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            pass
        try:
            Heap(small_config(%r, gc_log="off")).close()
            print("built")
        except Exception as e:
            print(type(e).__name__, e)
    ''' % (backend, backend))
    assert "file descriptors" in out, out
    assert "Linux 3.17" not in out and "try backend" not in out, out


@pytest.mark.skipif(SANITIZED, reason="AddressSanitizer reserves terabytes of shadow address space, so "
                                      "RLIMIT_AS cannot be lowered under it")
@pytest.mark.parametrize("mapping", LAYOUTS)
def test_an_address_space_limit_is_named_in_every_layout(mapping):
    out = run_limited('''
        with open("/proc/self/status") as f:
            vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + (256 << 20), resource.RLIM_INFINITY))
        try:
            Heap(small_config(mapping=%r, heap_size="1G", young_size="64M", gc_log="off")).close()
            print("built")
        except Exception as e:
            print(type(e).__name__, e)
    ''' % mapping)
    assert out.startswith("ReservationError"), out
    assert "RLIMIT_AS" in out and "ulimit -v" in out, out


@pytest.mark.skipif(os.geteuid() != 0, reason="attaching as another user needs root to switch users")
def test_after_ipc_rmid_only_the_same_user_can_attach_by_id():
    """What docs/multimapping.md says: on Linux a removed segment can still be attached by its id
    (a Linux extension) by whoever its mode 0600 allows: the same user (and root); another user
    gets EACCES."""
    require_backend("shm-mremap")
    with Heap(small_config("shm-mremap")) as heap:
        shmid = heap.backend.shmid

        def attach_in_child(uid):
            pid = os.fork()
            if pid == 0:
                code = 3
                try:
                    if uid is not None:
                        os.setgid(uid)
                        os.setuid(uid)
                    calls = Syscalls()
                    addr = calls.shmat(shmid)
                    calls.shmdt(addr)
                    code = 0
                except SyscallError as e:
                    code = 1 if e.errno == errno.EACCES else 2
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)

        assert attach_in_child(None) == 0, "the same user could not attach the removed segment by id"
        assert attach_in_child(65534) == 1, "another user attached the 0600 segment"

