"""A raw source over JSON Lines files (``.jsonl`` or ``.jsonl.gz``): one partition per file.

Paths may be files, directories (their ``*.jsonl`` and ``*.jsonl.gz``) or glob patterns; the
partition name is the file's path, so keep paths stable between a crash and its resume.
The resume position is ``(lines read, byte offset)``: plain files seek to the offset, gzip
files skip the lines. Blank lines are not records.
"""

from __future__ import annotations

import glob
import gzip
import itertools
from pathlib import Path
from typing import IO, Any

from citywatch.errors import ConfigError
from flows.sources import RawReader, RawSource

__all__ = ["FileSource", "expand_paths"]


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


class _FileReader(RawReader):
    def __init__(self, path: str, position: tuple[int, int] | None) -> None:
        self.path = path
        self.is_gzip = path.endswith(".gz")
        self.lines, offset = position or (0, 0)
        self.fh: IO[bytes] = _open(path, self.is_gzip)
        if self.is_gzip:
            for _ in range(self.lines):
                if not self.fh.readline():
                    break
        else:
            self.fh.seek(offset)
        self.done = False

    def read(self, max_n: int) -> list[bytes]:
        if self.done:
            raise StopIteration
        chunk = list(itertools.islice(self.fh, max_n))  # the lines, read in C
        if len(chunk) < max_n:
            self.done = True
        self.lines += len(chunk)
        out = [s for s in map(bytes.strip, chunk) if s]
        if not out and self.done:
            raise StopIteration
        return out

    def position(self) -> tuple[int, int]:
        return (self.lines, 0 if self.is_gzip else self.fh.tell())

    def close(self) -> None:
        self.fh.close()


class FileSource(RawSource):
    def __init__(self, paths: list[str]) -> None:
        self.files = expand_paths(paths)
        if not self.files:
            msg = f"files: no .jsonl or .jsonl.gz file in {paths!r}"
            raise ConfigError(msg)

    def list_parts(self) -> list[str]:
        return [f"file:{f}" for f in self.files]

    def open(self, part: str, position: Any | None) -> RawReader:
        return _FileReader(part.removeprefix("file:"), position)
