"""The build the tests run against is the one asked for. tools/sanitize installs the C core built with
AddressSanitizer; if what it installed were not instrumented, the whole sanitizer stage of CI would pass
without checking anything."""
import shutil
import subprocess

import pytest

from miniheap import _native, _ref

from .conftest import SANITIZED


def undefined_symbols(path):
    done = subprocess.run(["nm", "-D", "--undefined-only", path], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return {line.split()[-1] for line in done.stdout.splitlines() if line.strip()}


@pytest.mark.skipif(shutil.which("nm") is None, reason="nm is not installed (binutils)")
@pytest.mark.parametrize("module", [_native, _ref], ids=["core", "ref"])
def test_the_modules_are_built_as_the_stage_says(module):
    """Under tools/sanitize (MINIHEAP_SANITIZED=1) each C module calls ASan's checks; elsewhere none."""
    checks = {s for s in undefined_symbols(module.__file__) if s.startswith("__asan_report_")}
    if SANITIZED:
        assert checks, f"{module.__file__} is not built with AddressSanitizer: the sanitizer stage checks nothing"
    else:
        assert not checks, f"{module.__file__} is built with AddressSanitizer outside the sanitizer stage"
