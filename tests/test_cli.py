"""The command line behaves like a Unix tool: help on stdout with status 0, usage errors named with
status 2, quiet on a closed pipe, a progress line only on a terminal, machine-wide settings changed
only after saying so."""
import io
import os
import pty
import subprocess
import sys

import pytest

from miniheap.cli import EXIT_SIGPIPE, Progress

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "examples", "gc_demo.py")
COMMANDS = ("probe", "demo", "bench")


def run(*args, timeout=120, **kwargs):
    return subprocess.run([sys.executable, "-m", "miniheap", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, **kwargs)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_main_help_goes_to_stdout_with_status_0(flag):
    done = run(flag)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("usage: python -m miniheap COMMAND")
    for name in COMMANDS:
        assert f"  {name} " in done.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_help_goes_to_stdout_with_status_0(command):
    done = run(command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith(f"usage: python -m miniheap {command}")
    assert "miniheap bench:" not in done.stdout  # the help, not a run


def test_demo_help_names_the_script_it_was_run_as():
    done = subprocess.run([sys.executable, DEMO, "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.startswith("usage: gc_demo.py")
    assert "--html" in done.stdout and "--trace-events" in done.stdout


def test_demo_help_gives_the_defaults_the_demo_runs_with():
    """The demo runs colored and pre-touched unless told otherwise: its --help must not say none and false."""
    from miniheap.demo import DEMO_DEFAULTS

    text = " ".join(run("demo", "--help").stdout.split())
    assert DEMO_DEFAULTS == {"mapping": "colored", "pretouch": True}  # what the words below describe
    assert "(default: colored in the demo, none elsewhere)" in text
    assert "(default: true in the demo, false elsewhere)" in text
    # mapping colored implies collector zgc, so the demo's --collector default is zgc, not serial
    assert "(default: zgc in the demo (its mapping colored), serial elsewhere)" in text
    assert "(default: serial)" not in text
    # zgc's -Xlog:gc prints one line per cycle, not per pause
    assert "one line per pause with serial, one per cycle with zgc" in text


def test_bench_help_has_no_internal_references_or_markup():
    text = run("bench", "--help").stdout
    assert "``" not in text and "issue #" not in text and ":ref:" not in text
    assert "--no-sysctl" in text and "vm.nr_hugepages" in text


def test_no_command_prints_usage_on_stderr_with_status_2():
    done = run()
    assert done.returncode == 2 and done.stdout == "" and "usage:" in done.stderr


def test_unknown_command_is_named():
    done = run("frobnicate")
    assert done.returncode == 2 and done.stdout == ""
    assert "unknown command 'frobnicate'" in done.stderr and "probe, demo, bench" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [("--bogus",), ("probe", "--bogus"), ("demo", "--bogus"), ("bench", "--bogus")])
def test_unknown_flags_are_named_and_nothing_runs(args):
    done = run(*args)
    assert done.returncode == 2, done.stdout[-500:]
    assert "--bogus" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""  # the probe, demo or benchmark did not start


@pytest.mark.parametrize("args", [("probe",), ("demo", "--work", "8"), ("bench", "--list"), ("--help",),
                                  ("verify-views", "--no-verify-views")])
def test_a_closed_stdout_ends_the_command_quietly(args):
    """``python -m miniheap probe | head -3``, made certain: the reader is gone before the first write."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "miniheap", *args], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=180, cwd=ROOT)
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode in (0, EXIT_SIGPIPE), done.returncode


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full to fill standard output with")
@pytest.mark.parametrize("args", [("demo", "--work", "4"), ("verify-views", "--no-verify-views"), ("probe",),
                                  ("tour", "--no-pause"), ("--help",), ("demo", "--help"), ("bench", "--help"),
                                  ("probe", "--help"), ("compare-jvm", "--help"), ("tour", "--help")])
def test_a_full_stdout_ends_the_command_with_one_line(args):
    """``python examples/gc_demo.py > /dev/full``: every write fails with ENOSPC; one line says so. With
    ``--help`` too: argparse swallows the error of its own write, and the output was lost with status 0."""
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "miniheap", *args], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=180, cwd=ROOT)
    assert done.returncode != 0
    assert done.stderr.splitlines() == ["miniheap: cannot write the output: No space left on device (free space "
                                        "where it goes, or send it elsewhere)"], done.stderr


def test_probe_piped_into_head():
    done = subprocess.run(f"{sys.executable} -m miniheap probe | head -3", shell=True, capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert len(done.stdout.splitlines()) == 3 and "Traceback" not in done.stderr


# ------------------------------------------------------------------- Ctrl-C

# A command whose Ctrl-C lands in a finalizer, made certain: SIGINT arrives while __del__ runs Python code.
INTERRUPTED_IN_A_FINALIZER = """
import os, signal, sys, time
from miniheap.cli import quiet_on_broken_pipe

class Released:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:  # Python code: the signal's handler runs in here
            pass

@quiet_on_broken_pipe
def main():
    Released()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the program goes on; the interrupt must reach it
        pass
    print("the interrupt was lost")
    return 0

sys.exit(main())
"""


def test_ctrl_c_caught_in_a_finalizer_still_ends_the_command():
    import signal

    # A job started in the background inherits SIGINT ignored, and Python then leaves it ignored: give the
    # child the default disposition, as a terminal's foreground job has, so os.kill reaches its handler.
    done = subprocess.run([sys.executable, "-c", INTERRUPTED_IN_A_FINALIZER], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 130 and done.stderr.strip() == "interrupted", (done.returncode, done.stderr)
    assert "lost" not in done.stdout


def test_ctrl_c_during_the_demo_ends_it_with_status_130_and_one_line():
    """The demo releases Refs all the time, so Ctrl-C often lands in Ref.__del__."""
    import signal
    import time

    p = subprocess.Popen([sys.executable, DEMO, "--work", "2000", "--gc-log", "off"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=ROOT,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in p.stdout:
            if line.startswith("[workload]"):
                break
        time.sleep(0.3)  # in the middle of the workload, where Refs die all the time
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, (p.returncode, err[-1000:])
    assert err.strip() == "interrupted", err[-1000:]
    assert "7. Summary" not in out


# ------------------------------------------------------------------- progress


class FakeTerminal(io.StringIO):
    def __init__(self, tty=True):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progress_line_rewrites_itself_on_a_terminal_and_is_erased():
    now = [0.0]
    term = FakeTerminal()
    with Progress("demo", stream=term, after=2, clock=lambda: now[0], interval=60) as progress:
        progress.update("workload 10%")
        assert term.getvalue() == ""  # not for short runs
        now[0] = 3.0
        progress.update("workload 40%")
        progress.print("a message of its own")
    text = term.getvalue()
    assert "\r\x1b[Kdemo: workload 40% (3 s)" in text
    assert "\r\x1b[Ka message of its own\n" in text
    assert text.endswith("\r\x1b[K")  # erased at the end


def test_progress_writes_no_status_line_when_not_a_terminal():
    now = [10.0]
    pipe = FakeTerminal(tty=False)
    with Progress("bench", stream=pipe, after=0, clock=lambda: now[0]) as progress:
        progress.update("running copy")
        progress.print("a message still gets through")
    assert pipe.getvalue() == "a message still gets through\n"


def test_demo_shows_progress_on_a_terminal_stderr_when_stdout_is_redirected():
    main, child = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "miniheap", "demo", "--work", "24"], stdout=subprocess.PIPE,
                              stderr=child, text=True, timeout=180, cwd=ROOT,
                              env=dict(os.environ, MINIHEAP_PROGRESS_AFTER="0"))
        os.close(child)
        child = None
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if child is not None:
            os.close(child)
        os.close(main)
    terminal = b"".join(chunks).decode(errors="replace")
    assert done.returncode == 0
    assert "demo: workload" in terminal and "\x1b[K" in terminal
    assert "\x1b[K" not in done.stdout and "[workload]" in done.stdout


# ------------------------------------------------------------------- machine-wide settings


def test_bench_says_before_it_changes_the_huge_page_pool_and_can_be_refused(monkeypatch):
    from miniheap.bench.backends import huge_page_pool

    from .test_bench import FakePool

    said = []
    pool = FakePool(monkeypatch, total=10, free=4)
    from miniheap import hugepages

    monkeypatch.setattr(hugepages, "set_pool", lambda pages: (said.append(f"set {pages}"), pool.set_pool(pages))[1])
    with huge_page_pool(20, say=said.append) as shortage:
        assert shortage is None
    assert said[0].startswith("bench: raising vm.nr_hugepages from 10 to 26") and "--no-sysctl" in said[0]
    assert said[1] == "set 26" and said[2] == "set 10" and said[3] == "bench: vm.nr_hugepages put back to 10"

    said.clear()
    pool = FakePool(monkeypatch, total=10, free=4)
    with huge_page_pool(20, may_change=False, say=said.append) as shortage:
        assert "--no-sysctl" in shortage and "sysctl vm.nr_hugepages=26" in shortage
    assert pool.sets == [] and said == []
