# The C core is compiled by cffi in out-of-line API mode; see src/miniheap/_build.py.
from setuptools import setup

setup(cffi_modules=["src/miniheap/_build.py:sysbuilder", "src/miniheap/_build.py:ffibuilder"])
