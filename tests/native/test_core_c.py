"""Compile tests/native/test_core.c and test_inline.c against the native sources and run them.

test_core.c drives the handle API, test_inline.c the inline fast path of miniheap-inline.h. Builds:
* AddressSanitizer + UndefinedBehaviorSanitizer (-O1 -g), the main run;
* plain -O2 -Werror, which also maps the coloured views at ZGC's addresses (1<<42, 1<<43, 1<<44:
  under ASan they collide with its shadow memory, so that build maps them at 1<<28..1<<30), and
  caps the mark stack so the overflow path is exercised;
* the core without its card mark (-DMH_TEST_NO_CARD_MARK), which must be caught;
* test_inline.c without the inline card mark of mh_put (-DMH_TEST_NO_INLINE_CARD_MARK), which must
  be caught too.
"""
import glob
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NATIVE = os.path.join(ROOT, "src", "miniheap", "native")
TEST_SOURCE = os.path.join(HERE, "test_core.c")
INLINE_SOURCE = os.path.join(HERE, "test_inline.c")

WARNINGS = ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-strict-aliasing"]
SANITIZE = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
            "-fno-sanitize-recover=undefined"]

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")


# The core's folders (as in src/miniheap/_build.py): native/bench/ holds embedders (benchmarks) and
# native/python/ the CPython extension (miniheap._ref), neither part of the core.
CORE_DIRS = [d for d in sorted(glob.glob(os.path.join(NATIVE, "*", "")))
             if os.path.basename(d[:-1]) not in ("bench", "python")]
INCLUDES = [flag for d in [NATIVE, *CORE_DIRS] for flag in ("-I", d)]


def core_sources():
    return sorted(s for d in CORE_DIRS for s in glob.glob(os.path.join(d, "*.c")))


def build(tmp_path, name, flags, source=TEST_SOURCE):
    exe = str(tmp_path / name)
    cmd = ["gcc", *WARNINGS, *flags, *INCLUDES, source, *core_sources(), "-o", exe, "-lpthread"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stderr}"
    assert "warning" not in result.stderr, result.stderr
    return exe


def run(exe, *args, timeout=600):
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0", UBSAN_OPTIONS="print_stacktrace=1")
    result = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, env=env)
    return result


def test_core_sanitized(tmp_path):
    exe = build(tmp_path, "test_core_asan", SANITIZE)
    result = run(exe, "40000")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failures" in result.stdout


def test_core_optimised_zgc_addresses(tmp_path):
    exe = build(tmp_path, "test_core_o2", ["-O2", "-Werror", "-DMH_TEST_MARK_STACK_CAP=32"])
    result = run(exe, "100000")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failures" in result.stdout


@pytest.mark.parametrize("colored", [0])  # the serial collector has one view
def test_core_refused_commits(tmp_path, colored):
    """A third of all commits refused: every collection must still leave a correct heap."""
    exe = build(tmp_path, "test_core_commit", SANITIZE)
    env_pct = dict(os.environ, MH_TEST_COMMIT_FAIL="30")
    result = subprocess.run([exe, "mutator", str(colored), "3", "30000", "1"], capture_output=True,
                            text=True, timeout=600, env=env_pct)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failures" in result.stdout


def test_missing_card_mark_is_caught(tmp_path):
    exe = build(tmp_path, "test_core_broken", ["-O1", "-g", "-DMH_TEST_NO_CARD_MARK"])
    result = run(exe, "broken-cards")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "was caught" in result.stdout


@pytest.mark.parametrize("space", ["young", "full"])
def test_asan_reports_a_read_of_space_the_collector_emptied(tmp_path, space):
    # The heap's memory comes from the embedder, invisible to ASan unless the core poisons what a
    # collection empties (poison.h). Without that this program would print "read 0" and exit 0.
    exe = str(tmp_path / "stale_read")
    cmd = ["gcc", *WARNINGS, *SANITIZE, *INCLUDES, os.path.join(HERE, "stale_read.c"),
           *core_sources(), "-o", exe]
    built = subprocess.run(cmd, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    result = run(exe, space)
    assert "reading through a stale pointer" in result.stdout, result.stdout + result.stderr
    assert "read " not in result.stdout.replace("reading", ""), "the stale read went unnoticed"
    assert "use-after-poison" in result.stderr, result.stderr[-2000:]


def test_inline_path_sanitized(tmp_path):
    exe = build(tmp_path, "test_inline_asan", SANITIZE, INLINE_SOURCE)
    result = run(exe, "40000")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failures" in result.stdout


def test_inline_path_optimised_zgc_addresses(tmp_path):
    exe = build(tmp_path, "test_inline_o2", ["-O2", "-Werror"], INLINE_SOURCE)
    result = run(exe, "150000")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failures" in result.stdout


def test_missing_inline_card_mark_is_caught(tmp_path):
    exe = build(tmp_path, "test_inline_broken", ["-O1", "-g", "-DMH_TEST_NO_INLINE_CARD_MARK"], INLINE_SOURCE)
    result = run(exe, "broken-cards")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "was caught" in result.stdout


@pytest.mark.parametrize("flags", [SANITIZE, ["-O2", "-Werror", "-Dcalloc=mh_test_calloc", "-DMH_TEST_CALLOC_HOOK"]],
                         ids=["asan", "o2-calloc-hook"])
def test_callback_and_teardown_contract(tmp_path, flags):
    """miniheap.h's contract: re-entry from callbacks, queued releases, interrupts, deferred and
    concurrent close, sentinels and the trap of a failed bump (tests/native/test_contract.c), under
    ASan and at -O2."""
    exe = str(tmp_path / "test_contract")
    cmd = ["gcc", *WARNINGS, *flags, "-pthread", *INCLUDES,
           os.path.join(HERE, "test_contract.c"), *core_sources(), "-o", exe]
    built = subprocess.run(cmd, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert "warning" not in built.stderr, built.stderr
    result = run(exe, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    assert " 0 failures" in result.stdout
