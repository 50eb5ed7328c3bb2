"""Roles and the users file (pure logic and a real file; the websocket side is in
tests/sinks/test_roles.py)."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import pytest

from citywatch.errors import ConfigError, InputError
from citywatch.identity import (
    ROLE_ACTIONS,
    Forbidden,
    Identity,
    Role,
    UserStore,
    authorize,
    hash_token,
)
from sinks.feed.lifecycle import ACTIONS

ECO, POLICE = "生态环境局", "公安局"


@pytest.mark.parametrize(
    ("role", "action", "order_dept"),
    list(itertools.product(Role, sorted(ACTIONS), ["", ECO, POLICE])),
)
def test_authorize_is_the_role_table_and_the_department(
    role: Role, action: str, order_dept: str
) -> None:
    who = Identity("x", "X", role, dept=ECO if role is Role.HANDLER else None)
    allowed = action in ROLE_ACTIONS[role] and (role is not Role.HANDLER or order_dept == ECO)
    if allowed:
        authorize(who, action, order_dept=order_dept)
    else:
        with pytest.raises(Forbidden, match=f"^{action}: "):
            authorize(who, action, order_dept=order_dept)


def test_the_roles_split_the_officer_actions() -> None:
    officer, handler = set(ROLE_ACTIONS[Role.DUTY_OFFICER]), set(ROLE_ACTIONS[Role.HANDLER])
    assert not officer & handler
    assert officer | handler == set(ROLE_ACTIONS[Role.ADMIN]) == ACTIONS
    assert ROLE_ACTIONS[Role.LEADER] == ()


def test_store_keeps_hashes_and_follows_edits(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "users.json"
    store = UserStore(path)
    assert store.users() == []
    token = store.add("li", " 李值班 ", Role.DUTY_OFFICER, centre="county:崇川区", now_ms=5)
    assert token not in path.read_text(encoding="utf-8")
    who = store.lookup(token)
    assert who == Identity("li", "李值班", Role.DUTY_OFFICER, None, "county:崇川区")
    reader = UserStore(path)  # another process's view
    assert reader.lookup(token) == who
    new = store.rotate("li", now_ms=9)
    assert reader.lookup(token) is None
    assert reader.lookup(new) == who
    store.revoke("li", now_ms=10)
    assert reader.lookup(new) is None
    record = reader.get("li")
    assert record is not None
    assert (record.revoked_ms, record.token_ms, record.created_ms) == (10, 9, 5)
    assert store.rotate("li") != new  # rotating a revoked user restores them
    store.remove("li")
    assert reader.users() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("Li", "x", "leader"), "id: 'Li' must be 1-32 lower-case"),
        (("li", "x", "boss"), "role: 'boss' is not one of duty_officer, handler, leader, admin"),
        (("li", "", "leader"), "name: '' must be 1-64 printable"),
        (("li", "a\nb", "leader"), "name: 'a\\nb' must be 1-64 printable"),
        (("li", "x", "handler"), "dept: a handler needs a department"),
    ],
)
def test_bad_users_are_refused_with_the_field(
    tmp_path: Path, args: tuple[str, str, str], message: str
) -> None:
    with pytest.raises(InputError) as info:
        UserStore(tmp_path / "u.json").add(*args, departments=(ECO,))
    assert message in str(info.value)


def test_concurrent_edits_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    tokens: dict[str, str] = {}

    def add(n: int) -> None:
        for i in range(5):
            uid = f"u{n}-{i}"
            tokens[uid] = UserStore(path).add(uid, uid, Role.LEADER)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store = UserStore(path)
    assert len(store.users()) == 40
    assert all(store.lookup(tok) is not None for tok in tokens.values())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "users_file:"),
        ('{"format": "other"}', "not a citywatch users file"),
        ('{"format": "citywatch-users/1", "users": {}}', "'users' must be a list"),
        ('{"format": "citywatch-users/1", "users": [{"id": "a"}]}', "missing field 'name'"),
        (
            json.dumps(
                {
                    "format": "citywatch-users/1",
                    "users": [{"id": "a", "name": "A", "role": "leader", "token_sha256": "abc"}],
                }
            ),
            "token_sha256 is not a SHA-256",
        ),
    ],
)
def test_a_malformed_file_is_a_config_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "users.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        UserStore(path).refresh()


def test_a_file_edited_by_hand_works(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    user = {
        "id": "zhou",
        "name": "周主任",
        "role": "leader",
        "token_sha256": hash_token("secret-token-of-zhou"),
    }
    path.write_text(json.dumps({"format": "citywatch-users/1", "users": [user]}), "utf-8")
    who = UserStore(path).lookup("secret-token-of-zhou")
    assert who is not None
    assert (who.id, who.role) == ("zhou", Role.LEADER)


# -- centres ------------------------------------------------------------------------------------


def test_a_centre_is_a_centre_id_checked_against_the_registry(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.json")
    known = {"city", "county:崇川区", "town:T32060201"}
    store.add("zhang", "张值班", Role.DUTY_OFFICER, centre="town:T32060201", centres=known)
    assert store.get("zhang") is not None
    with pytest.raises(InputError, match="not a centre id"):
        store.add("li", "李值班", Role.DUTY_OFFICER, centre="市运行管理中心")
    with pytest.raises(InputError, match=r"'town:T99' is not in the registry \(e.g. town:T3206"):
        store.add("li", "李值班", Role.DUTY_OFFICER, centre="town:T99", centres=known)
    who = store.users()[0].identity()
    assert (who.centre_id, who.scope, who.public()["centre_bound"]) == (
        "town:T32060201",
        "town:T32060201",
        True,
    )


def test_an_older_users_file_with_free_text_centres_still_loads_as_the_city(
    tmp_path: Path,
) -> None:
    path = tmp_path / "users.json"
    record = {
        "id": "li",
        "name": "李值班",
        "role": "duty_officer",
        "dept": None,
        "centre": "市运行管理中心",
        "token_sha256": hash_token("t"),
        "created_ms": 1,
        "token_ms": 1,
    }
    path.write_text(json.dumps({"format": "citywatch-users/1", "users": [record]}))
    who = UserStore(path).lookup("t")
    assert who is not None
    assert (who.centre, who.centre_id, who.scope) == ("市运行管理中心", "city", "city")
    authorize(who, "dispatch", order_dept="", order_centre="town:T32060201")  # sees all


def test_a_town_officer_acts_only_on_its_own_centres_orders() -> None:
    town = Identity("z", "张", Role.DUTY_OFFICER, centre="town:T1")
    authorize(town, "close", order_dept="", order_centre="town:T1")
    with pytest.raises(Forbidden, match="belongs to county:D, not to town:T1"):
        authorize(town, "close", order_dept="", order_centre="county:D")
    handler = Identity("w", "王", Role.HANDLER, dept="D1", centre="town:T1")
    authorize(handler, "sign", order_dept="D1", order_centre="county:D")  # departments: any centre
