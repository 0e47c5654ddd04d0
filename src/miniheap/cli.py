"""What every miniheap command does the same way, as a Unix tool should.

* ``--help`` goes to standard output with exit status 0; a usage error names what was wrong on
  standard error with exit status 2 (argparse does both, given a ``prog`` that says how the command was
  typed).
* Standard output closed early (``python -m miniheap probe | head -3``) ends the command quietly, as
  ``cat`` ends when ``head`` stops reading: no traceback. The exit status is 141 (128 + SIGPIPE), what a
  shell reports for a process that SIGPIPE killed.
* Standard output that cannot be written (a full disk, ``> /dev/full``) ends the command with one line
  saying so and status 1, ``--help`` included (argparse ignores the error of its own write; the flush
  after it reports it).
* Ctrl-C ends the command with status 130 and one line, not a traceback, wherever it lands: an
  interrupt that arrives while a finalizer runs (a ``Ref`` released by ``__del__``, from which Python
  cannot raise) is held back a few milliseconds instead of being printed as "Exception ignored" and lost.
* :class:`Progress` keeps one line on standard error up to date during a long run, when standard error
  is a terminal; in a pipe or a log file it writes nothing.
"""
from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time

EXIT_SIGPIPE = 128 + 13
EXIT_INTERRUPTED = 128 + 2


def program_name(command: str | None = None) -> str:
    """How the user typed the program: ``python -m miniheap`` or ``miniheap`` (the console script),
    followed by the subcommand, for argparse's ``prog``."""
    argv0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "miniheap"
    base = "python -m miniheap" if argv0 in ("__main__.py", "-m", "-c", "") else argv0
    return f"{base} {command}" if command else base


EXIT_OUTPUT = 1


class OutputError(OSError):
    """Standard output could not be written (a full disk, /dev/full): not the user's mistake, nor a
    bug, so one line instead of a traceback."""


class GuardedOutput:
    """A command's standard output whose write errors other than a closed pipe (which ends the command
    quietly) become OutputError, so quiet_on_broken_pipe can end the command with one line."""

    def __init__(self, stream):
        self._stream = stream
        self._failed = None

    def _guard(self, call, *args):
        try:
            return call(*args)
        except (BrokenPipeError, OutputError):
            raise
        except OSError as e:
            error = OutputError(f"cannot write the output: {e.strerror or e} (free space where it goes, "
                                f"or send it elsewhere)")
            error.errno = e.errno
            # argparse's --help swallows OSError from its write: the next flush raises it again
            self._failed = error
            raise error from e

    def reported(self):
        """The failure has been reported: the outer commands' flushes need not report it again."""
        self._failed = None

    def write(self, text):
        return self._guard(self._stream.write, text)

    def flush(self):
        if self._failed is not None:
            raise self._failed
        return self._guard(self._stream.flush)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def quiet_on_broken_pipe(main):
    """Wrap a command's ``main(argv)`` so a closed standard output or Ctrl-C ends it without a
    traceback. Heaps and files opened in ``with`` blocks are closed on the way out as usual."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        restore = _interrupt_outside_finalizers()
        stdout = sys.stdout
        if stdout is not None and not isinstance(stdout, GuardedOutput):
            sys.stdout = GuardedOutput(stdout)  # every print of the command, argparse's --help included
        try:
            try:
                status = main(*args, **kwargs)
            except SystemExit:  # argparse's --help and usage errors: what they printed must reach its reader
                _flush_stdout()
                raise
            _flush_stdout()  # a pipe closed (or a disk filled) after the last print fails here, inside the guard
            return status
        except BrokenPipeError:
            _silence_stdout()
            return EXIT_SIGPIPE
        except OutputError as e:
            _silence_stdout()  # what is still buffered would fail again at exit
            if isinstance(sys.stdout, GuardedOutput):
                sys.stdout.reported()
            print(f"miniheap: {e}", file=sys.stderr)
            return EXIT_OUTPUT
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            if sys.stdout is not stdout and isinstance(sys.stdout, GuardedOutput):
                sys.stdout = stdout
            restore()

    return wrapper


def _flush_stdout():
    if sys.stdout is not None:
        GuardedOutput(sys.stdout).flush()


# How long an interrupt that arrived inside a finalizer waits before it is raised again.
_RETRY_SECONDS = 0.005


def _interrupt_outside_finalizers():
    """Make Ctrl-C raise KeyboardInterrupt only outside finalizers; return what undoes it.

    Python runs a signal handler in whatever Python code is running at that moment, and in a busy heap
    that is often a ``__del__``. An exception cannot leave a finalizer: Python prints "Exception ignored
    in ... KeyboardInterrupt" and carries on as if no key had been pressed. So an interrupt that finds
    a finalizer on the stack sets a timer (SIGALRM, handled the same way) and is raised a few
    milliseconds later, in the program itself. SIGINT is left alone when it is not Python's default
    (ignored in a background job, or a handler of the caller's), SIGALRM when the caller uses it, and
    both outside the main thread."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return lambda: None
    signals = [signal.SIGINT] + ([signal.SIGALRM] if signal.getsignal(signal.SIGALRM) == signal.SIG_DFL else [])
    try:
        saved = {sig: signal.signal(sig, _on_interrupt) for sig in signals}
    except ValueError:  # not the main thread: signals are not ours to handle
        return lambda: None

    def restore():
        if signal.SIGALRM in saved:
            signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in saved.items():
            signal.signal(sig, handler)

    return restore


def _on_interrupt(signum, frame):
    if signal.getsignal(signal.SIGALRM) is _on_interrupt:
        while frame is not None:
            if frame.f_code.co_name == "__del__":
                signal.setitimer(signal.ITIMER_REAL, _RETRY_SECONDS)  # raised again from _on_interrupt
                return
            frame = frame.f_back
    raise KeyboardInterrupt


def output_problems(outputs) -> list[str]:
    """One line for each file a command was asked to write that it could not, found before it runs:
    ``outputs`` is (what asked for it, path or None) pairs such as ("--html", "run.html")."""
    problems = []
    for flag, path in outputs:
        if not path:
            continue
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            problems.append(f"{flag} {path}: the folder {folder} does not exist: create it or write elsewhere")
        elif not os.access(folder, os.W_OK):
            problems.append(f"{flag} {path}: the folder {folder} is not writable: write elsewhere")
        elif os.path.isdir(path):
            problems.append(f"{flag} {path}: is a folder: give a file name")
    return problems


def _silence_stdout() -> None:
    # Python flushes sys.stdout once more at exit; pointed at /dev/null that flush cannot fail and print
    # "Exception ignored ... BrokenPipeError".
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


class Progress:
    """One self-rewriting status line on a terminal, shown once a run has lasted ``after`` seconds.

    ``update(text)`` sets what the line says; a background thread redraws it twice a second with the
    time elapsed, so it moves even while one long step runs. ``print(text)`` writes a whole line of
    its own without mangling the status line; ``done()`` erases it. Nothing at all is written unless
    ``stream`` is a terminal: a log or a pipe gets no carriage returns. ``after`` defaults to
    ``MINIHEAP_PROGRESS_AFTER`` (seconds) or 2.
    """

    def __init__(self, label: str, stream=None, after: float | None = None, clock=time.monotonic,
                 enabled: bool | None = None, interval: float = 0.5):
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        if after is None:
            try:
                after = float(os.environ.get("MINIHEAP_PROGRESS_AFTER", "2"))
            except ValueError:
                after = 2.0
        self.after, self.clock, self.interval = after, clock, interval
        self.started = clock()
        self.text = ""
        self.shown = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if enabled is None:
            try:
                enabled = self.stream.isatty()
            except (AttributeError, ValueError):
                enabled = False
        self.enabled = enabled

    def update(self, text: str) -> None:
        if not self.enabled:
            return
        self.text = text
        self._draw()
        if self._thread is None:
            self._thread = threading.Thread(target=self._tick, name="miniheap-progress", daemon=True)
            self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._draw()

    def _draw(self) -> None:
        with self._lock:
            elapsed = self.clock() - self.started
            if not self.enabled or not self.text or elapsed < self.after:
                return
            try:
                self.stream.write(f"\r\x1b[K{self.label}: {self.text} ({elapsed:.0f} s)")
                self.stream.flush()
                self.shown = True
            except (OSError, ValueError):
                self.enabled = False

    def _erase(self) -> None:
        if self.shown:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self.shown = False

    def print(self, text: str) -> None:
        """A line of its own on the stream, above the status line."""
        with self._lock:
            self._erase()
            print(text, file=self.stream, flush=True)
        self._draw()

    def done(self) -> None:
        """Erase the line, so the next output starts on a clean line; updating again redraws it."""
        with self._lock:
            self.text = ""
            self._erase()

    def close(self) -> None:
        self._stop.set()
        self.done()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
