# The C core is compiled by cffi in out-of-line API mode, and the C-level Ref (miniheap._ref) as an
# ordinary extension beside it; see src/miniheap/_build.py.
import importlib.util
import os

from setuptools import setup

_spec = importlib.util.spec_from_file_location(
    "miniheap_build", os.path.join(os.path.dirname(os.path.abspath(__file__)), "src", "miniheap", "_build.py"))
_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_build)

setup(cffi_modules=["src/miniheap/_build.py:sysbuilder", "src/miniheap/_build.py:ffibuilder"],
      ext_modules=[_build.ref_extension()],
      options={"build": {"build_base": _build.build_base()}})  # one folder per flavour (sanitized, debug, plain)
