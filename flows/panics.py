"""While bytewax runs: no Rust panic text on the terminal, and its errors as our one-liners.

An exception raised inside a step or a source makes bytewax's Rust side panic: the default
panic hook writes ``thread '...' panicked at src/...`` (and, with ``RUST_BACKTRACE`` set in the
environment, a backtrace of dozens of lines) straight to file descriptor 2, and ``cli_main``
raises a ``BytewaxRuntimeError`` that wraps the Python exception. :func:`contained` turns
both into what a user of the CLI should see:

- ``RUST_BACKTRACE=0`` for the run (Rust reads it when it panics), and the panic hook's
  lines are filtered out of file descriptor 2 (everything else passes; Python's own
  ``sys.stderr`` bypasses the filter, so a progress bar keeps its carriage returns). With
  logging at INFO or below (``citywatch -v``) the panic text is let through;
- the wrapped exception is unwrapped: our :class:`~citywatch.errors.CitywatchError` (one
  line and its exit code in ``citywatch.cli``), else the innermost Python exception.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator

from citywatch.errors import CitywatchError

__all__ = ["contained", "unwrap"]

_PANIC = re.compile(rb"^thread '.*' panicked at ")


def unwrap(exc: BaseException) -> BaseException:
    """The exception a user should hear about: the first :class:`CitywatchError` in the chain
    of causes, else the innermost one that is not bytewax's wrapper, else ``exc``."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    inner: BaseException = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, CitywatchError):
            return cur
        seen.add(id(cur))
        if type(cur).__name__ != "BytewaxRuntimeError":
            inner = cur
        cur = cur.__cause__ or cur.__context__
    return inner


@contextlib.contextmanager
def contained() -> Iterator[None]:
    """Run bytewax inside this (see the module)."""
    before = os.environ.get("RUST_BACKTRACE")
    os.environ["RUST_BACKTRACE"] = "0"
    try:
        if logging.getLogger().isEnabledFor(logging.INFO):
            with _unwrapped():
                yield
        else:
            with _filtered_stderr(), _unwrapped():
                yield
    finally:
        if before is None:
            os.environ.pop("RUST_BACKTRACE", None)
        else:
            os.environ["RUST_BACKTRACE"] = before


@contextlib.contextmanager
def _unwrapped() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        inner = unwrap(exc)
        if inner is exc:
            raise
        raise inner from None


@contextlib.contextmanager
def _filtered_stderr() -> Iterator[None]:
    """File descriptor 2 through a thread that drops Rust panic messages."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable descriptor 2: nothing to filter
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    pump = threading.Thread(target=_pump, args=(read_end, saved), daemon=True, name="panics")
    pump.start()
    own = _own_stderr(saved)
    previous = sys.stderr
    if own is not None:
        sys.stderr = own
    try:
        yield
    finally:
        if own is not None:
            sys.stderr = previous
            own.flush()
        with contextlib.suppress(ValueError, OSError):
            previous.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the pump drains and stops
        pump.join(timeout=5.0)
        if own is not None:
            own.close()
        os.close(saved)


def _own_stderr(fd: int) -> io.TextIOWrapper | None:
    """A ``sys.stderr`` on the real descriptor, when ``sys.stderr`` is descriptor 2."""
    try:
        if sys.stderr.fileno() != 2:
            return None
    except (OSError, ValueError, io.UnsupportedOperation):
        return None  # captured (tests): leave it
    return open(os.dup(fd), "w", buffering=1, encoding=sys.stderr.encoding, errors="replace")


def _pump(read_end: int, out: int) -> None:
    """Copy lines from ``read_end`` to ``out``, without the panic hook's: its header, the
    payload line after it and, the first time, the ``note: run with RUST_BACKTRACE`` line."""
    skip = 0
    pending = b""
    with open(read_end, "rb", buffering=0) as src:
        while True:
            chunk = src.read(65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = []
            for line in lines:
                if _PANIC.match(line):
                    skip = 2
                    continue
                if skip == 2:  # the payload (``Box<dyn Any>``, or the message)
                    skip = 1
                    continue
                if skip == 1:
                    skip = 0
                    if line.startswith(b"note: "):
                        continue
                kept.append(line + b"\n")
            if kept:
                _write_all(out, b"".join(kept))
    if pending:
        _write_all(out, pending)


def _write_all(fd: int, data: bytes) -> None:
    with contextlib.suppress(OSError):
        while data:
            data = data[os.write(fd, data) :]
