"""Every tracked text file reads on its own: no issue or session numbers, no outside design file.

A reader of the repository cannot follow "(issue 9)", "session 2" or "DESIGN §8": they point to
a tracker, a work log or a file that is not here. Say what is meant instead (the target, the
date of the runs, the fact itself, or the doc in ``docs/`` that has it), and no tool of the
workplace the project was built in. Lines with a link
(``http``, ``github``) are left alone.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()

#: References a reader cannot follow. This file is excluded: it has to spell them.
FORBIDDEN = re.compile(
    r"\b(session|issue)s? [0-9]+|shared/(DESIGN|STYLE)"
    r"|\bDESIGN\.md|DESIGN §|STYLE\.md|DEVELOPERS\.md"
    r"|\bfarm-(studio|bench)\b",  # the workplace's own tools: not the project's
    re.IGNORECASE,
)
LINKS = re.compile(r"http|github", re.IGNORECASE)
BINARY_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".gif", ".ico", ".gz", ".zip", ".pdf", ".woff", ".woff2"}
)


def _tracked_files() -> list[str]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    if not (ROOT / ".git").exists():
        pytest.skip(f"{ROOT} is not a git checkout (no .git): nothing tracked to read")
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return [name for name in out.decode().split("\0") if name]


def _text(path: Path) -> str | None:
    if path.suffix.lower() in BINARY_SUFFIXES or not path.is_file():
        return None
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def test_no_references_a_reader_cannot_follow() -> None:
    hits = []
    for name in _tracked_files():
        if name == THIS:
            continue
        text = _text(ROOT / name)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if FORBIDDEN.search(line) and not LINKS.search(line):
                hits.append(f"{name}:{number}: {line.strip()}")
    assert not hits, "say what is meant instead:\n" + "\n".join(hits)
