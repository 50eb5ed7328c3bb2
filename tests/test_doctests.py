"""The examples in every docstring run: pytest collects the doctests of models/ itself (see
pyproject.toml), this test those of citywatch/, sinks/, flows/ and simulators/."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import citywatch
import flows
import simulators
import sinks

#: Modules whose import has effects (the CLI entry point runs; a worker process starts).
SKIP = {"citywatch.__main__", "flows.worker"}

MODULES = [
    name
    for pkg in (citywatch, sinks, flows, simulators)
    for name in [
        pkg.__name__,
        *(m.name for m in pkgutil.walk_packages(pkg.__path__, f"{pkg.__name__}.")),
    ]
    if name not in SKIP
]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
