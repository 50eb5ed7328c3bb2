"""The ``citywatch`` command line: one subcommand per module in ``citywatch/commands/``.

Each module exposes ``add_arguments(parser)`` and ``run(args) -> int`` and is imported only
when its subcommand runs, so a slow or missing part never breaks ``--help`` of another.
A subcommand whose module has not landed yet says so plainly and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from citywatch import __version__
from citywatch.errors import CitywatchError

__all__ = ["COMMANDS", "main"]

#: name -> (one-line help, the issue that delivers it)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("run the whole system on an embedded Redis, with the console", "#2/#7/#8"),
    "simulate": ("generate a seeded city scenario with ground-truth labels", "#3"),
    "run": ("run the city dataflow: sources -> models -> alert engine -> Redis", "#7"),
    "serve": ("serve the websocket feed and the duty-officer console", "#8"),
    "replay": ("replay recorded or simulated JSONL through the city flow", "#9"),
    "evaluate": ("score scenarios through the real flow against their labels", "#9"),
    "report": ("print work-order effectiveness metrics from the audit stream", "#8"),
    "bench": ("benchmark the full city flow against 400M records/day", "#9"),
}


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"citywatch.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"citywatch.commands.{name}":
            return None
        raise


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, ModuleType | None]]:
    parser = argparse.ArgumentParser(
        prog="citywatch",
        description="Real-time early warning for a city command centre.",
    )
    parser.add_argument("--version", action="version", version=f"citywatch {__version__}")
    parser.add_argument("--config", help="TOML settings file (else CITYWATCH_CONFIG)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, ModuleType | None] = {}
    for name, (help_text, issue) in COMMANDS.items():
        module = _load(name)
        modules[name] = module
        if module is None:
            help_text = f"{help_text} (not built yet: {issue})"
        p = sub.add_parser(name, help=help_text, description=help_text)
        if module is not None:
            module.add_arguments(p)
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    module = modules[args.command]
    if module is None:
        _, issue = COMMANDS[args.command]
        print(
            f"citywatch {args.command}: not built yet (issue {issue}); nothing was done.",
            file=sys.stderr,
        )
        return 2
    try:
        code: int = module.run(args)
    except CitywatchError as exc:
        print(f"citywatch {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
