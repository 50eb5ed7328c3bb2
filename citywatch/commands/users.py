"""``citywatch users``: who may log in to the feed, with which role (citywatch.identity).

::

    citywatch users add li --name 李值班 --role duty_officer --centre city
    citywatch users add zhang --name 张值班 --role duty_officer --centre town:T32060201
    citywatch users add wang --name 王环保 --role handler --dept 生态环境局
    citywatch users list
    citywatch users rotate wang        # a new token; the old one stops working
    citywatch users revoke wang        # the token stops working; the record stays
    citywatch users remove wang

``add`` and ``rotate`` print the new token once, alone on stdout (the explanation goes to
stderr, so ``TOKEN=$(citywatch users add ...)`` works); only its SHA-256 is stored, in
``users_file`` (default ``<data_dir>/users.json``, mode 0600). A running feed picks up every
change within a few seconds; a revoked or rotated token's connections are closed (1008).
"""

from __future__ import annotations

import argparse
import sys
import time
import unicodedata
from pathlib import Path

import orjson

from citywatch.identity import ROLE_ACTIONS, Role, UserStore
from citywatch.settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="add a user and print their token (once)")
    add.add_argument("id", help="login id: lower-case letters, digits, '.', '_', '-'")
    add.add_argument("--name", required=True, help="display name, recorded as the audit's actor")
    add.add_argument(
        "--role",
        required=True,
        choices=[r.value for r in Role],
        help="duty_officer: dispatch, close, shelve, reopen; handler: sign, reject, handle, "
        "feedback on their department's orders; leader: read only; admin: everything",
    )
    add.add_argument("--dept", help="department (required for a handler; see settings departments)")
    add.add_argument(
        "--centre",
        help="command centre the person works in: city, county:<district> or town:<town id> "
        "(checked against the registry when it has districts or towns); a duty officer of a "
        "county or town centre works on that centre's queue",
    )
    add.add_argument(
        "--registry",
        type=Path,
        help="registry to check --centre against (default: <data_dir>/registry)",
    )
    lst = sub.add_parser("list", help="list users (never tokens)")
    lst.add_argument("--json", action="store_true", help="one JSON object per line")
    for name, text in (
        ("rotate", "issue a new token (the old one stops working) and print it once"),
        ("revoke", "the user's token stops working; the record stays for the audit"),
        ("remove", "delete the user"),
    ):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("id")


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(getattr(args, "config", None))
    store = UserStore(settings.users_path)
    cmd = args.users_command
    if cmd == "add":
        token = store.add(
            args.id,
            args.name,
            args.role,
            dept=args.dept,
            centre=args.centre,
            departments=settings.departments,
            centres=_known_centres(args.registry or settings.data_dir / "registry")
            if args.centre
            else None,
        )
        _say(f"added {args.id} ({args.role}) to {store.path}")
        _print_token(settings, token)
    elif cmd == "rotate":
        token = store.rotate(args.id)
        _say(f"new token for {args.id}; the old one no longer logs in")
        _print_token(settings, token)
    elif cmd == "revoke":
        store.revoke(args.id)
        _say(f"revoked {args.id}: their token no longer logs in (rotate to restore)")
    elif cmd == "remove":
        store.remove(args.id)
        _say(f"removed {args.id}")
    else:
        _list(store, settings, as_json=args.json)
    return 0


def _known_centres(registry: Path) -> set[str] | None:
    """The centre ids of the registry, or None (said on stderr) when it has no districts or
    towns to check against."""
    from citywatch.registry import Registry

    reg = Registry.load(registry) if registry.exists() else Registry()
    if not reg.districts and not reg.towns:
        _say(f"no districts or towns in {registry}: the centre's form is checked, not its name")
        return None
    return {c["id"] for c in reg.centres()}


def _say(text: str) -> None:
    print(f"citywatch users: {text}", file=sys.stderr, flush=True)


def _print_token(settings: Settings, token: str) -> None:
    _say(
        "the token is shown this once (only its hash is kept); log in with "
        f"http://{settings.feed_host}:{settings.feed_port}/#token=<token>"
    )
    print(token, flush=True)


def _list(store: UserStore, settings: Settings, *, as_json: bool) -> None:
    users = store.users()
    if as_json:
        for u in users:
            d = u.to_json()
            del d["token_sha256"]
            sys.stdout.buffer.write(orjson.dumps(d) + b"\n")
        return
    if not users:
        _say(f"no users in {store.path}; add one with `citywatch users add`")
        return
    now = time.time() * 1000
    print(
        f"{'id':<16} {'role':<13} {_pad('name', 12)} {_pad('dept', 16)} {_pad('centre', 18)} status"
    )
    for u in users:
        status = "revoked" if u.revoked_ms else f"token {(now - u.token_ms) / 86_400_000:.0f} d old"
        if u.dept and u.dept not in settings.departments:
            status += ", dept not in settings departments"
        print(
            f"{u.id:<16} {u.role.value:<13} {_pad(u.name, 12)} {_pad(u.dept or '-', 16)} "
            f"{_pad(u.centre or '-', 18)} {status}"
        )
    roles = "; ".join(f"{r.value}: {', '.join(a) or 'read only'}" for r, a in ROLE_ACTIONS.items())
    _say("roles: " + roles)


def _pad(text: str, width: int) -> str:
    """``text`` padded to ``width`` terminal columns (a CJK character takes two)."""
    cols = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - cols)
