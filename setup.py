"""Only here to hand the cffi extension to setuptools (metadata: pyproject.toml)."""

from setuptools import setup

setup(cffi_modules=["tender/_build.py:ffibuilder"])
