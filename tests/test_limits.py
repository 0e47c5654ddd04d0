"""Sizes and limits: every bad value, from a file, the environment or the command line, is one line that
names the allowed range; the limits are the C core's, and --help and the docs name them."""
import os
import subprocess
import sys

import pytest

from miniheap import _native
from miniheap.backends import backend_class
from miniheap.config import MAX_HANDLES, MAX_HEAP_SIZE, MAX_REGION_SIZE, ConfigError, HeapConfig
from miniheap.heap import Heap
from miniheap.syscalls import Syscalls

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "examples", "gc_demo.py")


def test_python_and_c_agree_on_the_limits():
    lib = _native.lib
    assert MAX_HEAP_SIZE == lib.MH_MAX_HEAP_SIZE == 4 << 40
    assert MAX_REGION_SIZE == lib.MH_MAX_REGION_SIZE
    assert MAX_HANDLES == lib.MH_MAX_HANDLES


def demo(*args, env=None, timeout=120):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MINIHEAP_") or k == "MINIHEAP_COLOR_BITS"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, DEMO, "--work", "1", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=ROOT)


def one_line_error(done):
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("args, env, words", [
    (["--heap-size", str(2**63)], {}, ["heap_size", "allowed", "4T"]),
    (["--heap-size", str(2**64 - 1)], {}, ["heap_size", "allowed", "4T"]),
    (["--heap-size", str(2**64)], {}, ["heap_size", "4T"]),
    ([], {"MINIHEAP_HEAP_SIZE": str(2**62)}, ["MINIHEAP_HEAP_SIZE", "allowed", "4T"]),
    ([], {"MINIHEAP_HEAP_SIZE": "8T"}, ["MINIHEAP_HEAP_SIZE", "allowed", "4T"]),
    ([], {"MINIHEAP_MAX_HANDLES": "2147483647"}, ["MINIHEAP_MAX_HANDLES", "1..67108864"]),
    (["--max-handles", str(2**63)], {}, ["--max-handles", "1..67108864"]),
    (["--region-size", "2G"], {}, ["region_size", "64K to 1G"]),
    (["--survivor-ratio", str(2**64)], {}, ["survivor_ratio", "allowed"]),
    (["--gc-log", "gc:file=/no/such/folder/gc.log"], {}, ["gc_log", "/no/such/folder", "create"]),
])
def test_a_bad_value_is_one_line_with_the_allowed_range(args, env, words):
    line = one_line_error(demo(*args, env=env))
    for word in words:
        assert word in line, line


def test_a_bad_value_in_a_file_is_one_line(tmp_path):
    path = tmp_path / "big.toml"
    path.write_text('[heap]\nheap_size = "16T"\n')
    line = one_line_error(demo("--config", str(path)))
    assert str(path) in line and "4T" in line


def test_help_and_docs_name_the_limits():
    text = subprocess.run([sys.executable, DEMO, "--help"], capture_output=True, text=True, timeout=60).stdout
    flat = " ".join(text.split())
    assert "at most 4T" in flat
    assert "1..67108864" in flat
    assert "64K to 1G" in flat
    with open(os.path.join(ROOT, "docs", "configuration.md")) as f:
        docs = f.read()
    assert "at most `4T`" in docs and "67108864" in docs


@pytest.mark.parametrize("size", [2**64 - 2**21, 2**63, 2**62])
def test_heap_size_near_two_to_the_64_leaks_nothing(resources, size):
    before = resources()
    with pytest.raises(ConfigError, match="allowed"):
        Heap(HeapConfig(heap_size=size, gc_log="off"))
    assert resources().leaks_since(before, huge=False) == []


@pytest.mark.parametrize("size", [2**64 - 4096, 2**63])
def test_a_backing_too_large_for_the_kernel_leaks_no_fd(resources, size):
    before = resources()
    with pytest.raises((OSError, OverflowError)):
        backend_class("memfd")(Syscalls(), size)
    assert resources().leaks_since(before, huge=False) == []


def test_a_gc_log_in_a_missing_folder_is_a_config_error_and_leaks_nothing(resources, tmp_path):
    before = resources()
    with pytest.raises(ConfigError, match="create the folder"):
        Heap(HeapConfig(heap_size="8M", young_size="2M", region_size="256K",
                        gc_log=f"gc:file={tmp_path}/missing/gc.log"))
    assert resources().leaks_since(before, huge=False) == []
