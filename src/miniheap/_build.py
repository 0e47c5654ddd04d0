"""cffi builders: miniheap._native (the C heap and collector) and miniheap._sys (the libc calls of the backends);
and miniheap._ref, the C-level Ref (a CPython extension built by setuptools, ref_extension below).

Two cffi modules because they are two layers: the collector never calls the kernel, and the
system-call layer knows nothing of the collector. The Ref is a third, written against the CPython
API: it calls the core through the table miniheap._native hands out (miniheap-pyapi.h), so there is
one copy of the core.

Run by setuptools at install time (``cffi_modules`` in setup.py). Out-of-line API mode: cffi generates
a C extension that is compiled against the real headers, so constants such as ``MAP_FIXED`` and
``MFD_HUGE_2MB`` come from the system, not from numbers written here.

Environment:
  MINIHEAP_SANITIZE=1   build the C core with AddressSanitizer and UndefinedBehaviorSanitizer.
  MINIHEAP_DEBUG=1      build with -O0 -g and assertions on.
"""
import glob
import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
NATIVE = os.path.join(HERE, "native")


def _api_cdef(header):
    """The declarations between the cdef markers of a header, which cffi can parse."""
    with open(header) as f:
        text = f.read()
    match = re.search(r"/\* cdef-begin \*/(.*)/\* cdef-end \*/", text, re.S)
    if match is None:
        raise RuntimeError(f"{header}: no /* cdef-begin */ ... /* cdef-end */ section")
    return match.group(1)


# The system calls of the backends and the reservation. Each is called from miniheap.syscalls,
# which records it in strace format. mremap is variadic and shmctl takes a struct, so both go
# through a two-line C wrapper with a fixed signature.
SYSCALL_CDEF = """
void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
int munmap(void *addr, size_t length);
int mprotect(void *addr, size_t length, int prot);
int madvise(void *addr, size_t length, int advice);
void *mh_sys_mremap(void *old_address, size_t old_size, size_t new_size, int flags, void *new_address);
int shmget(int key, size_t size, int shmflg);
void *shmat(int shmid, const void *shmaddr, int shmflg);
int shmdt(const void *shmaddr);
int mh_sys_shmctl_rmid(int shmid);
int memfd_create(const char *name, unsigned int flags);
int ftruncate(int fd, long length);
int fallocate(int fd, int mode, long offset, long len);
int close(int fd);
void *memcpy(void *dest, const void *src, size_t n);
void *memset(void *s, int c, size_t n);

#define PROT_NONE ...
#define PROT_READ ...
#define PROT_WRITE ...
#define PROT_EXEC ...
#define MAP_SHARED ...
#define MAP_PRIVATE ...
#define MAP_ANONYMOUS ...
#define MAP_FIXED ...
#define MAP_FIXED_NOREPLACE ...
#define MAP_NORESERVE ...
#define MAP_HUGETLB ...
#define MAP_POPULATE ...
#define MREMAP_MAYMOVE ...
#define MREMAP_FIXED ...
#define MADV_REMOVE ...
#define MADV_DONTNEED ...
#define MADV_POPULATE_WRITE ...
#define IPC_PRIVATE ...
#define IPC_CREAT ...
#define IPC_RMID ...
#define SHM_HUGETLB ...
#define MFD_CLOEXEC ...
#define MFD_HUGETLB ...
#define MFD_HUGE_2MB ...
#define MFD_HUGE_1GB ...
#define FALLOC_FL_KEEP_SIZE ...
#define FALLOC_FL_PUNCH_HOLE ...
"""

SYSCALL_SOURCE = r"""
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/mman.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>
#include <linux/falloc.h>
#include <linux/memfd.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
static void *mh_sys_mremap(void *old_address, size_t old_size, size_t new_size, int flags,
                           void *new_address)
{
    return mremap(old_address, old_size, new_size, flags, new_address);
}

static int mh_sys_shmctl_rmid(int shmid)
{
    return shmctl(shmid, IPC_RMID, NULL);
}
"""


# The C core, one folder per part: core/ is shared by every collector (objects, views and colours,
# regions, handles, the API), each collector has a folder of its own, and bench/ holds C mutators for
# the benchmarks. Every folder is on the include path, so a file includes a header by its name alone.
CORE_PARTS = ("core", "serial", "zgc")


def core_dirs():
    return [os.path.join(NATIVE, part) for part in CORE_PARTS if os.path.isdir(os.path.join(NATIVE, part))]


def _native_sources():
    sources = [s for d in core_dirs() for s in sorted(glob.glob(os.path.join(d, "*.c")))]
    sources += sorted(glob.glob(os.path.join(NATIVE, "bench", "*.c")))
    # cffi wants paths relative to the project root when run from setup.py.
    root = os.path.dirname(os.path.dirname(HERE))
    return [os.path.relpath(s, root) for s in sources]


def _bench_cdef():
    header = os.path.join(NATIVE, "bench", "bench.h")
    return _api_cdef(header) if os.path.exists(header) else ""


def _compile_args():
    args = ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-strict-aliasing"]
    if os.environ.get("MINIHEAP_SANITIZE") == "1":
        args += ["-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                 "-fno-wrapv", "-UNDEBUG", "-DMH_SANITIZE=1"]
    elif os.environ.get("MINIHEAP_DEBUG") == "1":
        args += ["-O0", "-g", "-UNDEBUG"]
    else:
        args += ["-O2", "-DNDEBUG"]
    return args


def build_base():
    """Where setuptools builds (setup.py's ``build_base``): a folder per flavour of the build. setuptools
    reuses an object file that is newer than its source, whatever flags made it; in one folder, tools/sanitize
    run after ``pip install .`` in the same checkout (as CI does) installed the plain objects, and the
    sanitizer stage checked nothing, while a ``pip install .`` after tools/sanitize installed a core
    that aborts without ASan preloaded."""
    if os.environ.get("MINIHEAP_SANITIZE") == "1":
        return os.path.join("build", "sanitize")
    if os.environ.get("MINIHEAP_DEBUG") == "1":
        return os.path.join("build", "debug")
    return "build"


def _link_args():
    if os.environ.get("MINIHEAP_SANITIZE") == "1":
        return ["-fsanitize=address,undefined"]
    return []


def ref_extension():
    """miniheap._ref: native/python/ref.c, with the same warning, optimisation and sanitizer flags as
    the core (MINIHEAP_SANITIZE=1 builds it with ASan and UBSan too)."""
    from setuptools import Extension

    root = os.path.dirname(os.path.dirname(HERE))
    return Extension("miniheap._ref", sources=[os.path.relpath(os.path.join(NATIVE, "python", "ref.c"), root)],
                     include_dirs=[NATIVE], extra_compile_args=_compile_args() + ["-Wno-missing-field-initializers"],
                     extra_link_args=_link_args())


# The embedder's callbacks, implemented in Python (miniheap.heap) with @ffi.def_extern.
CALLBACK_CDEF = """
extern "Python" int mh_py_commit(void *ctx, uint64_t offset, uint64_t length);
extern "Python" int mh_py_uncommit(void *ctx, uint64_t offset, uint64_t length);
extern "Python" void mh_py_on_gc(void *ctx, const mh_gc_event *event);
"""

ffibuilder = FFI()
ffibuilder.cdef(_api_cdef(os.path.join(NATIVE, "miniheap.h")) + _bench_cdef() + CALLBACK_CDEF)
ffibuilder.set_source(
    "miniheap._native",
    '#include "miniheap.h"\n' + ('#include "bench/bench.h"\n' if _bench_cdef() else ""),
    sources=_native_sources(),
    include_dirs=[NATIVE, *core_dirs()],
    extra_compile_args=_compile_args(),
    extra_link_args=_link_args(),
)

sysbuilder = FFI()
sysbuilder.cdef(SYSCALL_CDEF)
sysbuilder.set_source("miniheap._sys", SYSCALL_SOURCE, extra_compile_args=["-O2", "-Wall"])

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
    sysbuilder.compile(verbose=True)
