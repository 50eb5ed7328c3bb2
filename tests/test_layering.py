"""Imports point one way (the layering rule, README, Layout): this test fails on a wrong arrow.

    citywatch (contract) <- models, sinks, simulators <- flows <- citywatch.cli / citywatch.commands

Models also never import I/O, clocks or the dataflow engine.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("citywatch", "models", "flows", "sinks", "simulators")
ENTRY = ("citywatch.cli", "citywatch.commands", "citywatch.__main__")
ALLOWED: dict[str, set[str]] = {
    "citywatch": {"citywatch"},
    "models": {"citywatch", "models"},
    "sinks": {"citywatch", "sinks"},
    "simulators": {"citywatch", "simulators"},
    "flows": {"citywatch", "models", "sinks", "simulators", "flows"},
}
#: Third-party or stdlib modules a package must not import at all.
FORBIDDEN: dict[str, set[str]] = {
    "models": {"bytewax", "redis", "websockets", "asyncio", "logging", "time", "socket", "paho"},
    "simulators": {"bytewax"},
    "citywatch": {"bytewax", "websockets"},
}


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:  # `from citywatch import cli` is an import of citywatch.cli
                yield node.lineno, f"{target}.{alias.name}" if target else alias.name


def _is_entry(module: str) -> bool:
    return any(module == e or module.startswith(e + ".") for e in ENTRY)


def violations(root: Path) -> list[str]:
    found: list[str] = []
    for pkg in OURS:
        for path in sorted((root / pkg).rglob("*.py")):
            module = _module_name(path, root)
            if _is_entry(module):
                continue
            for line, target in _imports(path, module):
                top = target.split(".")[0]
                where = f"{path.relative_to(root)}:{line}"
                if top in OURS:
                    if top not in ALLOWED[pkg] or (top == "citywatch" and _is_entry(target)):
                        found.append(f"{where}: {pkg} must not import {target}")
                elif top in FORBIDDEN.get(pkg, set()):
                    found.append(f"{where}: {pkg} must not import {top}")
    return found


def test_import_arrows_point_one_way() -> None:
    assert violations(ROOT) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for pkg in OURS:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("citywatch/events.py", "import models.base\n", "citywatch must not import models.base"),
        ("models/x.py", "from flows import city\n", "models must not import flows"),
        ("models/x.py", "from sinks.redis_sink import RedisSink\n", "models must not import sinks"),
        ("models/x.py", "import redis\n", "models must not import redis"),
        (
            "models/x.py",
            "def f():\n    import bytewax.operators\n",
            "models must not import bytewax",
        ),
        ("models/air/y.py", "from ... import flows\n", "models must not import flows"),
        ("sinks/x.py", "from models.base import Model\n", "sinks must not import models"),
        (
            "simulators/x.py",
            "from citywatch import cli\n",
            "simulators must not import citywatch.cli",
        ),
        (
            "flows/x.py",
            "from citywatch.commands import run\n",
            "flows must not import citywatch.commands",
        ),
    ],
)
def test_checker_catches_wrong_arrows(tmp_path: Path, name: str, text: str, fragment: str) -> None:
    found = violations(_tree(tmp_path, {name: text}))
    assert any(fragment in v for v in found), found


def test_checker_allows_right_arrows(tmp_path: Path) -> None:
    ok = {
        "models/x.py": "from citywatch.events import Air\nimport numpy\n",
        "flows/x.py": "import models.x\nimport sinks\nimport simulators\nimport bytewax\n",
        "citywatch/cli.py": "import flows.x\n",
        "citywatch/commands/run.py": "from flows import x\n",
        "sinks/x.py": "import redis\nfrom citywatch.keys import Keys\n",
    }
    assert violations(_tree(tmp_path, ok)) == []
