"""A raw source over JSON Lines files (``.jsonl`` or ``.jsonl.gz``): one partition per file.

Paths may be files, directories (their ``*.jsonl`` and ``*.jsonl.gz``) or glob patterns; the
partition name is the file's path, so keep paths stable between a crash and its resume.
The resume position is ``(lines read, byte offset)``: plain files seek to the offset, gzip
files skip the lines. Blank lines are not records; a UTF-8 byte-order mark before the first
line and CRLF line ends are read as a plain line.

A file that cannot be read at all (missing, unreadable, a ``.gz`` that is not gzip) is an
:class:`~citywatch.errors.InputError` before the flow starts. A file that breaks while it
is read (a gzip cut short, corrupt data, an I/O error) ends its partition after the last
line read before the break (those records are processed) and adds a :class:`FileProblem`
to :data:`PROBLEMS`; the commands report them after the flow and exit with 2.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import itertools
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from citywatch.errors import ConfigError, InputError
from citywatch.events import BOM
from flows.sources import RawReader, RawSource

__all__ = [
    "BREAKS",
    "PROBLEMS",
    "FileProblem",
    "FileSource",
    "check_readable",
    "describe_break",
    "expand_paths",
]

#: What a gzip file starts with.
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class FileProblem:
    """A file that broke while it was read: the lines before the break were read."""

    path: str
    problem: str
    lines: int

    def __str__(self) -> str:
        return (
            f"{self.path}: {self.problem} after {self.lines:,} lines "
            "(the records before it were processed)"
        )


class _Problems:
    """The files of this process that broke while read (readers run in bytewax's thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[FileProblem] = []

    def add(self, problem: FileProblem) -> None:
        with self._lock:
            self._items.append(problem)

    def take(self) -> list[FileProblem]:
        """Every problem so far, and forget them (call before and after a run)."""
        with self._lock:
            out, self._items = self._items, []
        return out

    def check(self) -> None:
        """Raise the problems so far as one :class:`InputError` (and forget them)."""
        problems = self.take()
        if problems:
            more = f" (and {len(problems) - 1} more file(s))" if len(problems) > 1 else ""
            msg = f"{problems[0]}{more}"
            raise InputError(msg)


#: Files of this process that broke while they were read.
PROBLEMS = _Problems()


#: What ``citywatch simulate --out DIR`` writes next to its records: truth, not input.
TRUTH_FILES = frozenset({"labels.jsonl", "workshops.jsonl", "negatives.jsonl"})


def expand_paths(paths: list[str]) -> list[str]:
    """Files, directories and globs -> a sorted, de-duplicated list of record files.

    A directory means its ``.jsonl``/``.jsonl.gz`` files except the ground truth a simulator
    output directory keeps beside its ``part-*`` files (``labels.jsonl``, ...): the truth must
    never be read as input. A file named explicitly is taken as it is.
    """
    out: set[str] = set()
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files = [
                str(f)
                for f in path.iterdir()
                if f.is_file()
                and f.name.endswith((".jsonl", ".jsonl.gz"))
                and f.name not in TRUTH_FILES
            ]
            if not files:
                msg = f"files: no .jsonl or .jsonl.gz record file in directory {p!r}"
                raise ConfigError(msg)
            out.update(files)
        elif path.is_file():
            out.add(str(path))
        else:
            matches = [m for m in glob.glob(p) if Path(m).is_file()]
            if not matches:
                msg = f"files: {p!r} matches no file"
                raise ConfigError(msg)
            out.update(matches)
    return sorted(out)


def _open(path: str, is_gzip: bool) -> IO[bytes]:
    if is_gzip:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def check_readable(path: str) -> None:
    """Raise :class:`InputError` (one line: the file and the problem) unless ``path`` can be
    read as JSON Lines: it opens, and a ``.gz`` starts like gzip."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        msg = f"{path}: cannot read it ({exc.strerror or exc})"
        raise InputError(msg) from None
    if path.endswith(".gz") and head and not head.startswith(GZIP_MAGIC):
        msg = (
            f"{path}: not a gzip file (it starts with {head[:12]!r}); "
            "plain JSON Lines should be named .jsonl"
        )
        raise InputError(msg)


#: What reading a file can raise half-way: a gzip cut short, corrupt data, an I/O error.
BREAKS = (EOFError, OSError, zlib.error)


def describe_break(exc: BaseException) -> str:
    """What broke, for a user: the file's name goes before it."""
    if isinstance(exc, EOFError):
        return "gzip data cut short (the file is truncated)"
    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return f"corrupt gzip data ({exc})"
    if isinstance(exc, OSError):
        return f"read error ({exc.strerror or exc})"
    return str(exc)


class _FileReader(RawReader):
    def __init__(self, path: str, position: tuple[int, int] | None) -> None:
        self.path = path
        self.is_gzip = path.endswith(".gz")
        self.lines, offset = position or (0, 0)
        self.done = False
        self.fh: IO[bytes] = _open(path, self.is_gzip)
        try:
            if self.is_gzip:
                for _ in range(self.lines):
                    if not self.fh.readline():
                        break
            else:
                self.fh.seek(offset)
        except BREAKS as exc:  # resumed past a break: nothing more to read
            self._broke(exc)

    def read(self, max_n: int) -> list[bytes]:
        if self.done:
            raise StopIteration
        first = self.lines == 0
        try:
            chunk = list(itertools.islice(self.fh, max_n))  # the lines, read in C
        except BREAKS as exc:
            chunk = self._salvage(max_n)
            self._broke(exc, len(chunk))
        if len(chunk) < max_n:
            self.done = True
        self.lines += len(chunk)
        if first and chunk and chunk[0].startswith(BOM):
            chunk[0] = chunk[0][len(BOM) :]
        out = [s for s in map(bytes.strip, chunk) if s]
        if not out and self.done:
            raise StopIteration
        return out

    def _salvage(self, max_n: int) -> list[bytes]:
        """The whole lines before the break (the fast read lost them): read again from the
        last position, one line at a time, until the break."""
        lines: list[bytes] = []
        with contextlib.suppress(*BREAKS), _open(self.path, self.is_gzip) as fh:
            for _ in range(self.lines):
                fh.readline()
            while len(lines) < max_n:
                line = fh.readline()
                if not line.endswith(b"\n"):  # the end, or a line the break cut
                    break
                lines.append(line)
        return lines

    def _broke(self, exc: BaseException, more: int = 0) -> None:
        self.done = True
        PROBLEMS.add(FileProblem(self.path, describe_break(exc), self.lines + more))

    def position(self) -> tuple[int, int]:
        return (self.lines, 0 if self.is_gzip else self.fh.tell())

    def close(self) -> None:
        self.fh.close()


class FileSource(RawSource):
    """One partition per file of ``paths``; every file is checked readable up front."""

    def __init__(self, paths: list[str]) -> None:
        self.files = expand_paths(paths)
        if not self.files:
            msg = f"files: no .jsonl or .jsonl.gz file in {paths!r}"
            raise ConfigError(msg)
        for f in self.files:
            check_readable(f)

    def list_parts(self) -> list[str]:
        return [f"file:{f}" for f in self.files]

    def open(self, part: str, position: Any | None) -> RawReader:
        return _FileReader(part.removeprefix("file:"), position)
