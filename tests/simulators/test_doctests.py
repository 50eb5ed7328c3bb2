"""The examples in the simulators' docstrings run (pytest collects doctests of models/ only)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import simulators

SUBMODULES = pkgutil.iter_modules(simulators.__path__, prefix="simulators.")
MODULES = ["simulators", *sorted(m.name for m in SUBMODULES)]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
