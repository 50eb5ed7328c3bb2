"""Who acts: identities, roles and what each role may do, and the users file.

A person logs in to the feed with a token. The token maps to an :class:`Identity`: an id, a
display name, a department and a centre, and a :class:`Role`. The audit's ``actor`` comes from
the identity, never from the client.

=============== ======================================================================
role            may
=============== ======================================================================
``duty_officer`` dispatch, close, shelve, reopen (the work orders of their centre; the
                city centre's, and one without a centre id: any work order)
``handler``      sign, reject, handle, feedback: only orders dispatched to their department
``leader``       nothing: reads the feed, histories and metrics
``admin``        every action on every order; manages users (``citywatch users``)
=============== ======================================================================

A centre is a centre id of :mod:`citywatch.tiers` (``city``, ``county:<district>``,
``town:<town id>``). A users file written before centres had ids holds free text there: it
still loads, and such a centre counts as the city centre (as every officer was before).

The users file (``users_file``, default ``<data_dir>/users.json``) keeps only the SHA-256 of
each token. Tokens are 32 random bytes, so a fast hash is enough: there is nothing to guess
that a slow hash would protect. The file, not Redis, because whoever can write Redis (the flow,
the sink) must not be able to mint an administrator, and because who may act must survive
Redis losing its data. The feed re-reads it when it changes, so ``citywatch users revoke``
takes effect within seconds, without a restart.

>>> officer = Identity("li", "李值班", Role.DUTY_OFFICER, centre="市运行管理中心")
>>> authorize(officer, "dispatch", order_dept="")
>>> authorize(officer, "sign", order_dept="生态环境局")
Traceback (most recent call last):
...
citywatch.identity.Forbidden: sign: a duty officer may dispatch, close, shelve, reopen
>>> town = Identity("zhang", "张值班", Role.DUTY_OFFICER, centre="town:T32060201")
>>> authorize(town, "dispatch", order_dept="", order_centre="county:崇川区")
Traceback (most recent call last):
...
citywatch.identity.Forbidden: dispatch: this order belongs to county:崇川区, not to town:T32060201
>>> eco = Identity("wang", "王环保", Role.HANDLER, dept="生态环境局")
>>> authorize(eco, "sign", order_dept="生态环境局")
>>> authorize(eco, "sign", order_dept="公安局")
Traceback (most recent call last):
...
citywatch.identity.Forbidden: sign: this order is dispatched to 公安局, not to 生态环境局
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

from citywatch.errors import CitywatchError, ConfigError, InputError
from citywatch.tiers import is_centre_id

__all__ = [
    "DEMO_LOGINS",
    "DEV_ADMIN",
    "ROLE_ACTIONS",
    "Forbidden",
    "Identity",
    "Role",
    "User",
    "UserStore",
    "authorize",
    "hash_token",
    "is_loopback",
    "new_token",
]


class Role(enum.StrEnum):
    DUTY_OFFICER = "duty_officer"
    HANDLER = "handler"
    LEADER = "leader"
    ADMIN = "admin"


#: What each role may send (the officer actions of the work-order state machine).
ROLE_ACTIONS: Final[Mapping[Role, tuple[str, ...]]] = {
    Role.DUTY_OFFICER: ("dispatch", "close", "shelve", "reopen"),
    Role.HANDLER: ("sign", "reject", "handle", "feedback"),
    Role.LEADER: (),
    Role.ADMIN: ("dispatch", "sign", "reject", "handle", "feedback", "close", "shelve", "reopen"),
}
_ROLE_TEXT: Final = {
    Role.DUTY_OFFICER: "a duty officer",
    Role.HANDLER: "a department handler",
    Role.LEADER: "a leader",
    Role.ADMIN: "an admin",
}
#: Roles whose actions are bound to their own department's orders.
DEPT_BOUND: Final = frozenset({Role.HANDLER})
#: Roles whose actions (and queue) are bound to their own centre's orders.
CENTRE_BOUND: Final = frozenset({Role.DUTY_OFFICER})

_ID_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
MAX_NAME: Final = 64
FORMAT: Final = "citywatch-users/1"


class Forbidden(CitywatchError):
    """An identity tried an action its role or department does not allow."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is logged in. ``dev``: a development login, only accepted over direct loopback."""

    id: str
    name: str
    role: Role
    dept: str | None = None
    centre: str | None = None
    dev: bool = False

    @property
    def actions(self) -> tuple[str, ...]:
        return ROLE_ACTIONS[self.role]

    @property
    def centre_id(self) -> str:
        """The centre as an id: ``centre`` when it is one, else ``city`` (none, or the free
        text of an older users file)."""
        return self.centre if self.centre and is_centre_id(self.centre) else "city"

    @property
    def scope(self) -> str:
        """Whose queues this identity's feed carries: its centre for a centre-bound role
        below the city (``citywatch.tiers.in_scope``), else ``city`` (everything)."""
        return self.centre_id if self.role in CENTRE_BOUND else "city"

    def public(self) -> dict[str, Any]:
        """What the client is told about itself (the ``welcome`` message's ``user``)."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "dept": self.dept,
            "centre": self.centre,
            "centre_id": self.centre_id,
            "scope": self.scope,
            "actions": list(self.actions),
            "dept_bound": self.role in DEPT_BOUND,
            "centre_bound": self.scope != "city",
        }


def authorize(who: Identity, action: str, *, order_dept: str, order_centre: str = "") -> None:
    """Raise :class:`Forbidden` unless ``who`` may take ``action`` on an order now dispatched
    to ``order_dept`` ("" when it is not dispatched) and owned by ``order_centre`` ("" when
    unknown: then only the role is checked)."""
    if action not in who.actions:
        may = ", ".join(who.actions) or "take no action (read only)"
        msg = f"{action}: {_ROLE_TEXT[who.role]} may {may}"
        raise Forbidden(msg)
    if who.scope != "city" and order_centre and order_centre != who.scope:
        msg = f"{action}: this order belongs to {order_centre}, not to {who.scope}"
        raise Forbidden(msg)
    if who.role in DEPT_BOUND and order_dept != who.dept:
        where = f"dispatched to {order_dept}" if order_dept else "not dispatched to anyone"
        msg = f"{action}: this order is {where}, not to {who.dept}"
        raise Forbidden(msg)


def hash_token(token: str) -> str:
    """The stored form of a token: SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh token: ``cw_`` and 32 random bytes, URL-safe (it rides in a URL fragment)."""
    return "cw_" + secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """Whether binding or connecting from ``host`` stays on this machine.

    >>> [is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "", "10.0.0.5")]
    [True, True, True, False, False, False]
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: The development login (``feed_tokens``, default ``dev-token``): an administrator.
DEV_ADMIN: Final = Identity("dev", "开发者", Role.ADMIN, centre="开发环境", dev=True)
_DEMO_CENTRE: Final = "city"
#: The demo's published logins, one per role, and duty officers of a county and a town
#: centre (``citywatch demo`` turns them on, loopback only).
DEMO_LOGINS: Final[Mapping[str, Identity]] = {
    "demo-duty": Identity("demo-duty", "李值班", Role.DUTY_OFFICER, centre=_DEMO_CENTRE, dev=True),
    "demo-county": Identity(
        "demo-county", "孙区值班", Role.DUTY_OFFICER, centre="county:崇川区", dev=True
    ),
    "demo-town": Identity(
        "demo-town", "吴街道值班", Role.DUTY_OFFICER, centre="town:T32060201", dev=True
    ),
    "demo-eco": Identity(
        "demo-eco", "王环保", Role.HANDLER, dept="生态环境局", centre=_DEMO_CENTRE, dev=True
    ),
    "demo-traffic": Identity(
        "demo-traffic", "赵交通", Role.HANDLER, dept="交通运输局", centre=_DEMO_CENTRE, dev=True
    ),
    "demo-safety": Identity(
        "demo-safety", "陈应急", Role.HANDLER, dept="应急管理局", centre=_DEMO_CENTRE, dev=True
    ),
    "demo-leader": Identity("demo-leader", "周主任", Role.LEADER, centre=_DEMO_CENTRE, dev=True),
}


# -- the users file ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    """One record of the users file. ``revoked_ms`` > 0: the token no longer logs in."""

    id: str
    name: str
    role: Role
    dept: str | None
    centre: str | None
    token_sha256: str
    created_ms: int
    token_ms: int
    revoked_ms: int = 0

    @property
    def active(self) -> bool:
        return not self.revoked_ms

    def identity(self) -> Identity:
        return Identity(self.id, self.name, self.role, self.dept, self.centre)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["role"] = self.role.value
        return d

    @classmethod
    def from_json(cls, d: Any, where: str) -> User:
        if not isinstance(d, dict):
            msg = f"{where}: expected an object"
            raise ConfigError(msg)
        try:
            user = cls(
                id=str(d["id"]),
                name=str(d["name"]),
                role=Role(d["role"]),
                dept=_opt_str(d.get("dept")),
                centre=_opt_str(d.get("centre")),
                token_sha256=str(d["token_sha256"]),
                created_ms=int(d.get("created_ms") or 0),
                token_ms=int(d.get("token_ms") or 0),
                revoked_ms=int(d.get("revoked_ms") or 0),
            )
        except KeyError as exc:
            msg = f"{where}: missing field {exc.args[0]!r}"
            raise ConfigError(msg) from exc
        except (TypeError, ValueError) as exc:
            msg = f"{where}: {exc}"
            raise ConfigError(msg) from exc
        if not re.fullmatch(r"[0-9a-f]{64}", user.token_sha256):
            msg = f"{where}: token_sha256 is not a SHA-256 hex digest"
            raise ConfigError(msg)
        return user


def _opt_str(v: Any) -> str | None:
    return None if v is None or v == "" else str(v)


def _now_ms() -> int:
    return int(time.time() * 1000)


class UserStore:
    """The users file: read (cached, re-read when the file changes) and edited under a lock.

    Edits write a new file beside it and rename it into place (mode 0600), so a reader never
    sees half a file; a lock file serialises concurrent ``citywatch users`` commands.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._users: dict[str, User] = {}
        self._by_hash: dict[str, User] = {}

    # -- reading --------------------------------------------------------------------------

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            msg = f"users_file: cannot read {self.path}: {exc.strerror}"
            raise ConfigError(msg) from exc
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def refresh(self) -> bool:
        """Re-read the file if it changed since the last read; True when it did.

        A malformed file raises :class:`ConfigError` and leaves the last good contents in use.
        """
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        users = self._read() if stamp is not None else {}
        self._users = users
        self._by_hash = {u.token_sha256: u for u in users.values() if u.active}
        self._stamp = stamp
        return True

    def _read(self) -> dict[str, User]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            msg = f"users_file: {self.path}: {exc}"
            raise ConfigError(msg) from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            msg = f"users_file: {self.path}: not a citywatch users file (format {FORMAT!r})"
            raise ConfigError(msg)
        raw = doc.get("users")
        if not isinstance(raw, list):
            msg = f"users_file: {self.path}: 'users' must be a list"
            raise ConfigError(msg)
        users: dict[str, User] = {}
        for i, item in enumerate(raw):
            user = User.from_json(item, f"users_file: {self.path}: users[{i}]")
            users[user.id] = user
        return users

    def users(self) -> list[User]:
        """Every user (revoked ones too), sorted by id."""
        self.refresh()
        return sorted(self._users.values(), key=lambda u: u.id)

    def get(self, user_id: str) -> User | None:
        self.refresh()
        return self._users.get(user_id)

    def cached(self, user_id: str) -> User | None:
        """``user_id``'s record as last read (no re-read: see :meth:`refresh`)."""
        return self._users.get(user_id)

    def lookup(self, token: str) -> Identity | None:
        """The identity of an active user holding ``token``, or None."""
        self.refresh()
        user = self._by_hash.get(hash_token(token))
        return user.identity() if user is not None else None

    def by_hash(self, token_sha256: str) -> Identity | None:
        """The identity of an active user whose token hashes to this, as last read."""
        user = self._by_hash.get(token_sha256)
        return user.identity() if user is not None else None

    # -- editing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, User]]:
        """The current users, under the lock; what the block leaves in the dict is written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            users = self._read()
            yield users
            self._write(users)
        finally:
            os.close(fd)
        self._stamp = None  # re-read on the next access
        self.refresh()

    def _write(self, users: Mapping[str, User]) -> None:
        doc = {"format": FORMAT, "users": [users[k].to_json() for k in sorted(users)]}
        data = json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"
        fd, tmp = tempfile.mkstemp(prefix=".users-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(tmp, self.path)
        except OSError:
            os.unlink(tmp)
            raise

    def add(
        self,
        user_id: str,
        name: str,
        role: Role | str,
        *,
        dept: str | None = None,
        centre: str | None = None,
        departments: tuple[str, ...] = (),
        centres: Collection[str] | None = None,
        now_ms: int | None = None,
    ) -> str:
        """Add a user and return their token (shown once: only its hash is kept).

        ``centre`` must be a centre id; ``centres``, when given, the ids it must be one of
        (the registry's)."""
        role = _role(role)
        _check_id(user_id)
        name = _check_text("name", name)
        dept = _check_dept(role, dept, departments)
        centre = check_centre(centre, centres) if centre else None
        token = new_token()
        now = _now_ms() if now_ms is None else now_ms
        with self._editing() as users:
            if user_id in users:
                msg = f"users: {user_id!r} exists (rotate its token, or remove it first)"
                raise InputError(msg)
            users[user_id] = User(
                user_id, name, role, dept, centre, hash_token(token), created_ms=now, token_ms=now
            )
        return token

    def rotate(self, user_id: str, *, now_ms: int | None = None) -> str:
        """A new token for ``user_id`` (the old one stops working; a revoked user is restored)."""
        token = new_token()
        now = _now_ms() if now_ms is None else now_ms
        with self._editing() as users:
            user = _existing(users, user_id)
            users[user_id] = replace(
                user, token_sha256=hash_token(token), token_ms=now, revoked_ms=0
            )
        return token

    def revoke(self, user_id: str, *, now_ms: int | None = None) -> None:
        """The user's token stops working; the record stays (the audit still names them)."""
        now = _now_ms() if now_ms is None else now_ms
        with self._editing() as users:
            user = _existing(users, user_id)
            users[user_id] = replace(user, revoked_ms=user.revoked_ms or now)

    def remove(self, user_id: str) -> None:
        with self._editing() as users:
            _existing(users, user_id)
            del users[user_id]


def _existing(users: Mapping[str, User], user_id: str) -> User:
    user = users.get(user_id)
    if user is None:
        msg = f"users: no user {user_id!r}"
        raise InputError(msg)
    return user


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError as exc:
        msg = f"role: {role!r} is not one of {', '.join(r.value for r in Role)}"
        raise InputError(msg) from exc


def _check_id(user_id: str) -> None:
    if not _ID_RE.match(user_id):
        msg = (
            f"id: {user_id[:40]!r} must be 1-32 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
        raise InputError(msg)


def _check_text(field: str, value: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_NAME or _CONTROL_RE.search(value):
        msg = f"{field}: {value[:40]!r} must be 1-{MAX_NAME} printable characters"
        raise InputError(msg)
    return value


def check_centre(centre: str, known: Collection[str] | None = None) -> str:
    """``centre`` if it is a centre id (and one of ``known``, when given), else InputError.

    >>> check_centre("town:T32060201")
    'town:T32060201'
    >>> check_centre("市运行管理中心")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    citywatch.errors.InputError: centre: '市运行管理中心' is not a centre id: city, county:<dis...
    """
    centre = _check_text("centre", centre)
    if not is_centre_id(centre):
        msg = (
            f"centre: {centre[:40]!r} is not a centre id: city, county:<district> or town:<town id>"
        )
        raise InputError(msg)
    if known is not None and centre not in known:
        kind = centre.split(":", 1)[0]
        some = sorted(c for c in known if c.startswith(kind + ":"))[:5]
        hint = f" (e.g. {', '.join(some)})" if some else ""
        msg = f"centre: {centre[:40]!r} is not in the registry{hint}"
        raise InputError(msg)
    return centre


def _check_dept(role: Role, dept: str | None, departments: tuple[str, ...]) -> str | None:
    if not dept:
        if role in DEPT_BOUND:
            msg = f"dept: a {role.value} needs a department (one of {', '.join(departments)})"
            raise InputError(msg)
        return None
    if departments and dept not in departments:
        msg = f"dept: {dept[:40]!r} is not a known department (one of {', '.join(departments)})"
        raise InputError(msg)
    return dept
