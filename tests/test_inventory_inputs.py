"""Inventories the restore planner reads (`python -m tools.restore plan`), damaged or odd (issue 22).

A damaged inventory is refused (exit 2) naming the field; one that is well-formed but wrong for a restore
is planned with a warning on the home (exit 1). Never a traceback, never exit 0 with a plan the program's
loader refuses, never a plan that grows with the square of the inventory.
"""

from __future__ import annotations

import copy
import io
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components import restore_render as render
from config.settings import Settings, parse_settings
from tests.conftest import settings_values
from tests.dr_inventory import make_inventory
from tests.fuzz import fuzz
from tools.dr import command, restore, signing, sources
from tools.dr.restore import PlanError, Source, join_inventory, plan, render_plan

SOURCE = Source("s3", "s3://dsaas-prod-backups/dsaas-prod/inventory/20261201T021500Z.json", "2026-12-01T02:15:00Z")
USERS = ["alice", "Alice.Smith", "bob@dc.example.org", "zoë", "x.y", "UPPER"]
CLAIMS = "persistentVolumeClaims"


@cache
def stack(driver: str) -> Settings:
    values = settings_values("prod")
    values["dsaas:storage"] = {**values["dsaas:storage"], "homesDriver": driver}
    if driver == "ontap-nas-economy":
        values["dsaas:storage"]["snapshots"] = False
    return parse_settings(values)


@cache
def _inventory(economy: bool) -> dict[str, Any]:
    return make_inventory(USERS, economy=[economy] * len(USERS))


def inventory(economy: bool = False) -> dict[str, Any]:
    return copy.deepcopy(_inventory(economy))


def driver_of(economy: bool) -> str:
    return "ontap-nas-economy" if economy else "ontap-nas"


def planned(inv: dict[str, Any], economy: bool = False) -> dict[str, Any]:
    return plan(join_inventory(inv), stack(driver_of(economy)), SOURCE, "prod")


def notes(result: dict[str, Any]) -> str:
    return " | ".join(" ".join(h["warnings"]) for h in result["homes"])


def item(inv: dict[str, Any], key: str, index: int = 0) -> dict[str, Any]:
    found: dict[str, Any] = inv[key]["items"][index]
    return found


# --- damaged: refused naming the field -----------------------------------------------------------

DAMAGED: dict[str, tuple[Any, str]] = {
    "claim without metadata.name": (lambda i: item(i, CLAIMS)["metadata"].pop("name"), "items[0].metadata.name"),
    "claim metadata a list": (lambda i: item(i, CLAIMS).update(metadata=["x"]), "items[0].metadata is a list"),
    "claim name a number": (lambda i: item(i, CLAIMS)["metadata"].update(name=12), "metadata.name is a int"),
    "pv without name": (lambda i: item(i, "persistentVolumes")["metadata"].pop("name"), "persistentVolumes.items[0]"),
    "pv uid an object": (
        lambda i: item(i, "persistentVolumes")["spec"]["claimRef"].update(uid={"a": 1}),
        "claimRef.uid is a dict",
    ),
    "item not an object": (lambda i: i["tridentVolumes"]["items"].append(7), "tridentVolumes.items[6] is a int"),
    "trident config a string": (lambda i: item(i, "tridentVolumes").update(config="x"), "config is a str"),
    "annotations a list": (lambda i: item(i, CLAIMS)["metadata"].update(annotations=[1]), "annotations or labels"),
    "volume name a list": (lambda i: item(i, CLAIMS)["spec"].update(volumeName=["x"]), "spec.volumeName is a list"),
    "deep nesting in a claim": (lambda i: item(i, CLAIMS).update(metadata=_deep(5000)), "items[0].metadata is a list"),
}


def _deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_inventory_is_refused_naming_the_field(case: str) -> None:
    edit, expected = DAMAGED[case]
    inv = inventory()
    edit(inv)
    with pytest.raises(PlanError) as caught:
        join_inventory(inv)
    assert expected in str(caught.value) and "--inventory" in str(caught.value), str(caught.value)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (None, "no readable"),
        (20261201, "no readable"),
        ("9999-12-31T23:59:59-01:00", "not a time"),
        ("x", "not a time"),
        ("2026-12-01\x1b[2J02:15:00", "not a time"),  # fromisoformat took any separator, an escape too
        ("2026-12-01\x1b02:15:00", "not a time"),
        ("2026-12-01 02:15:00Z", "not a time"),
        ("2026-12-01T02:15:00", "not a time"),  # no zone: how old would it be?
    ],
)
def test_an_inventory_without_a_readable_time_is_refused(written: Any, expected: str) -> None:
    with pytest.raises(PlanError, match=expected) as caught:
        restore.written_time(written)
    assert "\x1b" not in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("written", ["2026-12-01T02:15:00Z", "2026-12-01T02:15:00.5+01:00"])
def test_the_cronjobs_time_form_is_read(written: str) -> None:
    assert restore.written_time(written) == written


class _Body:
    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)

    def read(self) -> bytes:
        return self._stream.read()


class _FakeS3:
    """The two calls the reader makes, answering with `body` (the object store's side is tested in e2e)."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        return {"Body": _Body(self.body)}

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        return {}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "too deep"),
        (b"{not json", "is not JSON"),
        (json.dumps({"format": "dsaas-inventory/1", "written": 5}).encode(), "no readable"),
    ],
)
def test_an_unreadable_inventory_object_is_refused(body: bytes, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "s3_client", lambda store: _FakeS3(body))
    with pytest.raises(PlanError, match=expected):
        sources.read_s3_inventory(stack("ontap-nas"))


# --- well-formed but wrong for a restore: flagged on the home ------------------------------------


def _size(value: Any) -> Any:
    def edit(inv: dict[str, Any]) -> None:
        item(inv, "tridentVolumes")["config"]["size"] = value
        item(inv, "persistentVolumes")["spec"]["capacity"]["storage"] = value

    return edit


FLAGGED: dict[str, tuple[bool, Any, str]] = {
    "size 12 GB": (False, _size("12 GB"), "not a storage quantity"),
    "size 1e999": (False, _size("1e999"), "not a storage quantity"),
    "size of 400 nines": (False, _size("9" * 400), "not a storage quantity"),
    "size too large": (False, _size("99999Pi"), "not a size a home can have"),
    "size a boolean": (False, _size(True), "not a storage quantity"),
    "no size anywhere": (False, _size(None), "sizeBytes"),
    "user a number": (False, lambda i: item(i, CLAIMS)["metadata"]["annotations"].update({_U: 12}), "not text"),
    "user a lone surrogate": (
        False,
        lambda i: item(i, CLAIMS)["metadata"]["annotations"].update({_U: "a\ud800"}),
        "unicode",
    ),
    "user with a newline": (
        False,
        lambda i: item(i, CLAIMS)["metadata"]["annotations"].update({_U: "bob\n"}),
        "whitespace",
    ),
    "claim lost": (False, lambda i: item(i, CLAIMS)["status"].update(phase="Lost"), "is Lost"),
    "claimRef of another claim": (
        False,
        lambda i: item(i, "persistentVolumes")["spec"]["claimRef"].update(uid="00000000-0000-0000-0000-000000000000"),
        "to another claim",
    ),
    "two claims on one volume": (
        False,
        lambda i: item(i, CLAIMS, 1)["spec"].update(volumeName=item(i, CLAIMS, 0)["spec"]["volumeName"]),
        "bound by 2 claims",
    ),
    "economy without an NFS server": (
        True,
        lambda i: item(i, "tridentVolumes")["config"]["accessInformation"].pop("nfsServerIp"),
        "dataLif",
    ),
    "economy on a loopback NFS server": (
        True,
        lambda i: item(i, "tridentVolumes")["config"]["accessInformation"].update(nfsServerIp="127.0.0.1"),
        "data LIF '127.0.0.1' is not the stack's",  # issue 21, item 10: before the loader's own "loopback"
    ),
    "two economy volumes on one NFS path": (
        True,
        lambda i: item(i, "tridentVolumes", 1)["config"]["accessInformation"].update(
            nfsPath=item(i, "tridentVolumes", 0)["config"]["accessInformation"]["nfsPath"]
        ),
        "share the junction path",
    ),
    "junction path with ..": (
        True,
        lambda i: item(i, "tridentVolumes")["config"]["accessInformation"].update(nfsPath="/../../etc"),
        "junction path '/../../etc' is not the qtree's own",
    ),
}
_U = "hub.jupyter.org/username"


@pytest.mark.parametrize("case", sorted(FLAGGED))
def test_a_home_wrong_for_a_restore_is_flagged_never_silently_planned(case: str) -> None:
    economy, edit, expected = FLAGGED[case]
    inv = inventory(economy)
    edit(inv)
    result = planned(inv, economy)
    assert expected in notes(result), notes(result)
    assert restore.blocking(result) > 0  # the command exits 1: review before `pulumi up`
    assert restore.unloadable(result, stack(driver_of(economy))) == []
    render_plan(result)  # writable: no lone surrogate or other unencodable text reaches the file


def test_ontap_nas_homes_on_an_economy_stack_are_flagged_and_economy_homes_load_anywhere() -> None:
    result = plan(join_inventory(inventory(economy=False)), stack("ontap-nas-economy"), SOURCE, "prod")
    assert all("homesDriver" in " ".join(h["warnings"]) for h in result["homes"])
    # Economy homes come back as static NFS volumes, which need no economy backend (issue 21, item 6).
    result = plan(join_inventory(inventory(economy=True)), stack("ontap-nas"), SOURCE, "prod")
    assert all(h["warnings"] == [] for h in result["homes"])
    assert restore.unloadable(result, stack("ontap-nas")) == []


def test_one_user_with_many_claims_gives_a_linear_plan() -> None:
    def size(claims: int) -> int:
        inv = make_inventory(["ann"] * claims, economy=[False] * claims)
        # Each claim its own volume: same user, same KubeSpawner claim name, many homes.
        for index, (pv, tv) in enumerate(
            zip(inv["persistentVolumes"]["items"], inv["tridentVolumes"]["items"], strict=True)
        ):
            name = f"pvc-{index:05d}"
            pv["metadata"]["name"] = tv["metadata"]["name"] = name
            tv["config"]["internalName"] = f"dsaasprod_pvc_{index:05d}"
            inv[CLAIMS]["items"][index]["spec"]["volumeName"] = name
            pv["spec"]["claimRef"].pop("uid")
        return len(render_plan(planned(inv)))

    small, large = size(100), size(1000)
    assert large < 12 * small, (small, large)


# --- the command: exit codes and nothing written where it does not belong -----------------------


def _run(tmp_path: Path, inv: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[int, Path]:
    # Signed as the CronJob signs (tests/test_restore_trust.py tests the signature itself); latest.json is newest.
    key = b"0123456789abcdef" * 4
    monkeypatch.setenv(signing.KEY_ENV, key.decode())
    monkeypatch.setattr(sources, "read_s3_inventory", lambda settings, name: (signing.sign(inv, key), SOURCE))
    monkeypatch.setattr(command, "latest_is_newest", lambda settings, source: None)
    out = tmp_path / "restore.prod.yaml"
    return command.main(["plan", "prod", "--out", str(out)]), out


def test_the_command_exits_2_and_writes_nothing_for_a_damaged_inventory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = inventory()
    item(inv, CLAIMS)["metadata"]["name"] = 12
    code, out = _run(tmp_path, inv, monkeypatch)
    assert code == 2 and not out.exists()
    assert capsys.readouterr().err.startswith("error: persistentVolumeClaims.items[0].metadata.name")


def test_the_command_exits_1_never_0_for_a_flagged_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inv = inventory()
    item(inv, CLAIMS)["status"]["phase"] = "Lost"
    code, out = _run(tmp_path, inv, monkeypatch)
    assert code == 1 and out.exists()


def test_the_command_never_writes_a_plan_its_loader_refuses_unflagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A planner that forgot a check (here: every entry check): the guard refuses to write what the loader refuses.
    monkeypatch.setattr(restore, "_mark_unloadable", lambda entry, driver: None)
    inv = inventory()
    _size(None)(inv)
    code, out = _run(tmp_path, inv, monkeypatch)
    err = capsys.readouterr().err
    assert code == 2 and not out.exists(), err
    assert "refused by the program's own loader" in err and "sizeBytes" in err


# --- property: whatever the inventory holds --------------------------------------------------------

NASTY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["12 GB", "1e999", "9" * 400, "10Gi", "0", "Lost", "127.0.0.1", "/", "/../x", "a\ud800", "x\n"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["name", "uid", "items"]), st.integers(), max_size=2),
)
LISTS = (CLAIMS, "persistentVolumes", "tridentVolumes", "tridentBackends")


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found.extend(_paths(inner, (*prefix, key)))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found.extend(_paths(inner, (*prefix, index)))
    return found


@cache
def _item_paths(economy: bool, key: str) -> list[tuple[Any, ...]]:
    return _paths(_inventory(economy)[key]["items"][0])


@fuzz(200)
@given(st.data())
def test_a_mutated_inventory_is_refused_by_name_or_planned_with_every_problem_flagged(data: st.DataObject) -> None:
    economy = data.draw(st.booleans())
    inv = inventory(economy)
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(LISTS))
        items = inv[key]["items"]
        index = data.draw(st.integers(0, len(items) - 1))
        path = data.draw(st.sampled_from(_item_paths(economy, key)))
        parent: Any = items[index]
        for step in path[:-1]:
            parent = parent[step] if isinstance(parent, (dict, list)) and _has(parent, step) else None
        if isinstance(parent, (dict, list)) and _has(parent, path[-1]):
            if data.draw(st.booleans()):
                parent[path[-1]] = data.draw(NASTY)
            elif isinstance(parent, dict):
                del parent[path[-1]]
            if key == CLAIMS and data.draw(st.booleans()):  # a second claim on the same volume, now and then
                items.append(copy.deepcopy(items[index]))
    try:
        result = planned(inv, economy)
    except PlanError as error:
        assert "--inventory" in str(error) and len(str(error)) < 2000
        return
    settings_ = stack(driver_of(economy))
    assert restore.unloadable(result, settings_) == []  # the guard never has to refuse: every problem is flagged
    text = render_plan(result)
    if restore.blocking(result) == 0 and not result["warnings"]:
        # Exit 0: the program's own loader takes the file as written.
        loaded = render.parse_plan(text, "restore.prod.yaml")
        assert render.check_plan(loaded, settings_, "prod", "restore.prod.yaml") == []


def _has(parent: Any, step: Any) -> bool:
    return step in parent if isinstance(parent, dict) else isinstance(step, int) and 0 <= step < len(parent)
