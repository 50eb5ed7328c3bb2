"""The ``citywatch`` command line: one subcommand per module in ``citywatch/commands/``.

Each module exposes ``add_arguments(parser)`` and ``run(args) -> int``; the modules import
their heavy dependencies (bytewax, numpy, models) inside ``run``, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from citywatch import __version__
from citywatch.errors import CitywatchError

__all__ = ["COMMANDS", "main"]

#: name -> one-line help
COMMANDS: dict[str, str] = {
    "demo": "run the whole system on an embedded Redis, with the console",
    "simulate": "generate a seeded city scenario with ground-truth labels",
    "run": "run the city dataflow: sources -> models -> alert engine -> Redis",
    "serve": "serve the websocket feed and the duty-officer console",
    "replay": "replay recorded or simulated JSONL through the city flow",
    "evaluate": "score scenarios or recorded data through the real flow against labels",
    "report": "analysis reports (HTML, figures) per day, week or month; effectiveness tables",
    "bench": "benchmark the full city flow against 400M records/day",
    "search": "search alerts, hotline tickets and work orders by their words",
    "import": "turn CSV air-quality files into events and a registry",
    "inject": "add seeded, labelled sensor faults to recorded events",
    "users": "manage who may log in to the feed and console, with which role",
    "officers": "simulate officers working the alerts in Redis (fills the audit for reports)",
}
#: Commands whose module has another name ("import" is a Python keyword).
_MODULES: dict[str, str] = {"import": "importer"}


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"citywatch.commands.{_MODULES.get(name, name)}")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, ModuleType]]:
    parser = argparse.ArgumentParser(
        prog="citywatch",
        description="Real-time early warning for a city command centre.",
    )
    parser.add_argument("--version", action="version", version=f"citywatch {__version__}")
    parser.add_argument("--config", help="TOML settings file (else CITYWATCH_CONFIG)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, ModuleType] = {}
    for name, help_text in COMMANDS.items():
        module = modules[name] = _load(name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; every failure is one line on stderr and an exit code.

    2: bad usage or input (argparse, :class:`ConfigError`, :class:`InputError`, ...);
    1: a failing dependency (:class:`DependencyError`) or an unexpected error (its traceback
    only with ``-v``); 130: interrupted.
    """
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = modules[args.command].run(args)
    except CitywatchError as exc:
        print(f"citywatch {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last resort: one line, the traceback only when asked
        if args.verbose:
            traceback.print_exc()
        detail = f"{type(exc).__name__}: {exc}".splitlines()[0]
        hint = "" if args.verbose else " (run with -v for the traceback)"
        print(f"citywatch {args.command}: internal error: {detail}{hint}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
