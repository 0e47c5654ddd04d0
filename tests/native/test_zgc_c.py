"""Compile tests/native/test_zgc.c against the C core and run it: the zgc collector's interleavings in
stepping mode, and its GC thread with mutator threads.

Builds:
* AddressSanitizer + UndefinedBehaviorSanitizer, views at 1<<28 (ASan's shadow covers ZGC's addresses);
* plain -O2 -Werror at JDK 17's addresses (1<<42, 1<<43, 1<<44), with a tiny mark stack so the
  overflow rescan runs;
* one build per duty of the load barrier with that duty removed (-DMH_TEST_NO_...): the tests of
  that duty must fail, which shows they test it.

The ThreadSanitizer build runs in .ci/run's third stage (tools/tsan).
"""
import os
import subprocess

import pytest

from .test_core_c import HERE, INCLUDES, SANITIZE, WARNINGS, core_sources

SOURCE = os.path.join(HERE, "test_zgc.c")


def build(tmp_path, name, flags, werror=True):
    exe = str(tmp_path / name)
    cmd = ["gcc", *WARNINGS, *flags, *INCLUDES, SOURCE, *core_sources(), "-o", exe, "-lpthread"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stderr}"
    if werror:
        assert "warning" not in result.stderr, result.stderr
    return exe


def run(exe, *args, env=None, timeout=600):
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1", **(env or {}))
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def asan_exe(tmp_path_factory):
    return build(tmp_path_factory.mktemp("zgc"), "test_zgc_asan", SANITIZE)


# Every test runs in both of zgc's layouts: three views (JDK 17) and one view with the colour in the
# references' low bits (JDK 21+).
@pytest.fixture(params=["multi", "low-bits"])
def views(request):
    return {"MINIHEAP_TEST_VIEWS": request.param}


STEPPING = ["config", "basics", "pages", "mark-barrier", "relocate-barrier", "forwarding-race", "stale-store",
            "remap-after-gc-copy", "root-changes", "heal", "reserve-comes-back", "exhausted-stepping", "churn-stepping"]


@pytest.mark.parametrize("name", STEPPING)
def test_stepping_sanitized(asan_exe, name, views):
    result = run(asan_exe, name, env={"MINIHEAP_COLOR_BITS": "28", **views})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{name}: ok" in result.stdout


def test_random_stepping_sanitized(asan_exe, views):
    """Random mutator operations with a random GC step between each, checked against a model."""
    result = run(asan_exe, "stepping-random", "1", "15000", env={"MINIHEAP_COLOR_BITS": "28", **views})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stepping-random: ok" in result.stdout


@pytest.mark.parametrize("name", ["exhausted", "churn", "close", "threads", "inline"])
def test_gc_thread_sanitized(asan_exe, name, views):
    result = run(asan_exe, name, "1", env={"MINIHEAP_COLOR_BITS": "28", **views})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{name}: ok" in result.stdout


# Verify-views (only the good colour's view accessible, HotSpot's ZVerifyViews): every interleaving and
# the GC thread against mutators run with the bad views PROT_NONE; a collector or barrier that reads
# through a bad view dies with SIGSEGV (verify-views itself is tested by "verify-views" above).
# Three views only: one view has no other to close.
@pytest.mark.parametrize("args", [["verify-views"], ["verify-views-failing-hook"]]
                         + [[name] for name in STEPPING[1:]] + [["stepping-random", "1", "15000"]]
                         + [[name, "1"] for name in ("threads", "inline", "churn", "close")],
                         ids=lambda args: args[0])
def test_verify_views_sanitized(asan_exe, args):
    result = run(asan_exe, *args,
                 env={"MINIHEAP_COLOR_BITS": "28", "MINIHEAP_TEST_VERIFY_VIEWS": "1", "MINIHEAP_TEST_VIEWS": "multi"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{args[0]}: ok" in result.stdout


def test_optimised_at_jdk_addresses(tmp_path, views):
    exe = build(tmp_path, "test_zgc_o2", ["-O2", "-Werror", "-DMH_TEST_MARK_STACK_CAP=32"])
    # pauses-allocate-nothing reads glibc's malloc counters: only this build (no sanitizer) has them
    for args in (["basics"], ["pauses-allocate-nothing"], ["stepping-random", "7", "20000"], ["threads", "1"]):
        result = run(exe, *args, env=views)
        assert result.returncode == 0, result.stdout + result.stderr
        assert " 0 failures" in result.stdout


# Each duty of the load barrier, and the tests that must catch its absence.
DUTIES = {
    "NO_MARK_BARRIER": ["mark-barrier", "root-changes"],
    "NO_RELOCATE_BARRIER": ["relocate-barrier", "root-changes"],
    "NO_FORWARDING_CAS": ["forwarding-race"],
    "NO_REMAP": ["stale-store", "remap-after-gc-copy"],
    "NO_HEAL": ["heal"],
}


@pytest.mark.parametrize("duty", sorted(DUTIES))
def test_removing_a_barrier_duty_is_caught(tmp_path, duty, views):
    exe = build(tmp_path, f"test_zgc_{duty.lower()}", ["-O1", "-g", f"-DMH_TEST_{duty}"], werror=False)
    for name in DUTIES[duty]:
        result = run(exe, name, timeout=120, env=views)
        assert result.returncode != 0 and f"{name}: FAILED" in result.stdout, (
            f"{name} passed with the barrier's {duty} removed:\n{result.stdout}{result.stderr}")
