"""The planner on inventories shaped by Trident v26.06.0's and KubeSpawner 7.0.0's own code (issue 21):
PVs joined to TridentVolumes by CSI volume handle, a second disaster planned from the static volumes the first
restore made, and Released homes reported with what to do."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from components import restore_render as render
from config.settings import Settings, parse_settings
from tests.conftest import settings_values
from tests.dr_inventory import GIB, make_inventory
from tests.fake_object_store import ObjectStore
from tools.dr.restore import Source, join_inventory, plan, released_volumes, render_plan

SOURCE = Source("s3", "s3://dsaas-prod-backups/dsaas-prod/inventory/20261201T021500Z.json", "2026-12-01T02:15:00Z")
USERS = ["alice", "Alice.Smith", "bob", "zoë", "carol", "dave"]


@cache
def _inventory() -> dict[str, Any]:
    # alice and bob on ontap-nas, the rest economy; zoë's home is the static volume of an earlier restore;
    # dave's claim was deleted (Released PV).
    return make_inventory(USERS, economy=[False, True, False, True, True, True], restored=["zoë"], released=["dave"])


def inventory() -> dict[str, Any]:
    return copy.deepcopy(_inventory())


@cache
def economy_stack() -> Settings:
    values = settings_values("prod")
    values["dsaas:storage"] = {**values["dsaas:storage"], "homesDriver": "ontap-nas-economy", "snapshots": False}
    return parse_settings(values)


def test_a_pv_is_joined_to_its_trident_volume_by_volume_handle_not_by_name() -> None:
    inv = inventory()
    pv = next(p for p in inv["persistentVolumes"]["items"] if p["spec"]["claimRef"]["name"] == "claim-alice")
    # A PV whose name is not Trident's volume name (pre-provisioned, or re-created by a backup tool).
    new_name = "restored-home-alice"
    claim = next(c for c in inv["persistentVolumeClaims"]["items"] if c["metadata"]["name"] == "claim-alice")
    pv["metadata"]["name"] = claim["spec"]["volumeName"] = new_name
    alice = next(h for h in join_inventory(inv) if h.user == "alice")
    assert alice.warnings == []
    assert alice.volume == pv["spec"]["csi"]["volumeAttributes"]["internalName"]
    assert alice.persistent_volume == new_name


def test_a_volume_handle_without_a_trident_volume_says_so() -> None:
    inv = inventory()
    pv = next(p for p in inv["persistentVolumes"]["items"] if p["spec"]["claimRef"]["name"] == "claim-alice")
    pv["spec"]["csi"]["volumeHandle"] = "pvc-00000000-0000-0000-0000-000000000000"
    alice = next(h for h in join_inventory(inv) if h.user == "alice")
    assert "names no TridentVolume" in " ".join(alice.warnings) and alice.volume is None


def test_a_home_restored_earlier_as_a_static_volume_is_planned_again() -> None:
    result = plan(join_inventory(inventory()), economy_stack(), SOURCE, "prod")
    zoe = next(h for h in result["homes"] if h["user"] == "zoë")
    assert zoe["driver"] == "ontap-nas-economy" and zoe["warnings"] == []
    assert zoe["qtree"]["flexvol"].startswith("trident_qtree_pool_dsaasprod_")
    assert zoe["qtree"]["junctionPath"] == f"/{zoe['qtree']['flexvol']}/{zoe['qtree']['name']}"
    assert zoe["dataLif"] == "10.40.8.20" and zoe["sizeBytes"] >= 10 * GIB
    # The entry loads: the second restore makes the same static volume again.
    home = render.PlannedHome.model_validate(zoe)
    assert render.render_static_volume(home, economy_stack())["spec"]["nfs"]["path"] == zoe["qtree"]["junctionPath"]


def test_a_static_volume_whose_annotation_and_path_disagree_is_flagged() -> None:
    inv = inventory()
    pv = next(p for p in inv["persistentVolumes"]["items"] if "nfs" in p["spec"])
    pv["metadata"]["annotations"]["dsaas.io/qtree"] = "trident_qtree_pool_dsaas_OTHERVOLXX/somebody_else"
    zoe = next(h for h in join_inventory(inv) if h.user == "zoë")
    assert "someone changed one of them" in " ".join(zoe.warnings)


def test_released_homes_are_reported_with_what_to_do() -> None:
    inv = inventory()
    assert "dave" not in {h.user for h in join_inventory(inv)}
    released = released_volumes(inv)
    assert [r["oldClaim"] for r in released] == ["jupyterhub/claim-dave"]
    assert released[0]["driver"] == "ontap-nas-economy" and released[0]["source"].startswith(
        "qtree trident_qtree_pool_"
    )
    assert "deleted on purpose" in released[0]["todo"] and "by mistake" in released[0]["todo"]
    result = plan(join_inventory(inv), economy_stack(), SOURCE, "prod", released=released)
    assert any("claim-dave" in w and "Released" in w for w in result["warnings"])
    # The loader ignores the list: the rest of the plan loads.
    text = render_plan(result)
    assert "released:" in text
    loaded = render.parse_plan(text, "restore.prod.yaml")
    assert "dave" not in {h.user for h in loaded.homes}


@cache
def nas_stack() -> Settings:
    return parse_settings(settings_values("prod"))


def _unresolved_plan() -> dict[str, Any]:
    """A plan with one entry the planner could not resolve: bob's claim names a volume the inventory lacks."""
    inv = make_inventory(["alice", "bob", "carol"], economy=[False] * 3)
    bob = next(c for c in inv["persistentVolumeClaims"]["items"] if c["metadata"]["name"] == "claim-bob")
    bob["spec"]["volumeName"] = "pvc-gone"
    result = plan(join_inventory(inv), nas_stack(), SOURCE, "prod")
    entry = next(h for h in result["homes"] if h["user"] == "bob")
    assert entry["driver"] is None and entry["sizeBytes"] is None and entry["decision"] is None
    return result


def _load(result: dict[str, Any]) -> render.RestorePlan:
    parsed = render.parse_plan(render_plan(result), "restore.prod.yaml")
    problems = render.check_plan(parsed, nas_stack(), "prod", "restore.prod.yaml")
    if problems:
        raise render.RestorePlanError(problems)
    return parsed


def test_an_unresolved_entry_needs_a_decision_and_the_rest_of_the_plan_loads() -> None:
    result = _unresolved_plan()
    try:
        _load(result)
        raise AssertionError("an undecided entry was accepted")
    except render.RestorePlanError as error:
        assert "decision: skip" in str(error) and "reason" in str(error) and "rerun" not in str(error)
    bob = next(h for h in result["homes"] if h["user"] == "bob")
    bob["decision"] = "skip"
    try:
        _load(result)
        raise AssertionError("a skip without a reason was accepted")
    except render.RestorePlanError as error:
        assert "reason" in str(error)
    bob["reason"] = "bob left in June; HR confirmed his files are archived"
    loaded = _load(result)
    assert [h.user for h in loaded.homes] == ["alice", "carol"]
    assert [(s.user, s.reason) for s in loaded.skipped] == [("bob", bob["reason"])]


def test_a_resolved_entry_is_restored_when_the_reviewer_says_so() -> None:
    result = plan(join_inventory(make_inventory(["alice"], economy=[False])), nas_stack(), SOURCE, "prod")
    result["homes"][0]["warnings"] = ["SnapMirror destination (DP): break the mirror first"]
    try:
        _load(result)
        raise AssertionError("an unresolved warning was accepted")
    except render.RestorePlanError:
        pass
    result["homes"][0]["decision"] = "restore"
    assert [h.user for h in _load(result).homes] == ["alice"]


def test_a_kubespawner_6_claim_comes_back_under_the_new_name_and_the_plan_loads() -> None:
    inv = make_inventory(["alice", "Jürgen.Müller"], economy=[False, False], legacy=["Jürgen.Müller"])
    result = plan(join_inventory(inv), nas_stack(), SOURCE, "prod")
    jurgen = next(h for h in result["homes"] if h["user"] == "Jürgen.Müller")
    assert jurgen["oldClaim"] == "claim--4a-c3-bcrgen-2e-4d-c3-bcller" and jurgen["warnings"] == []
    loaded = _load(result)
    assert {h.claim for h in loaded.homes} == {"claim-alice", render.claim_for_user("Jürgen.Müller").name}


def test_a_named_servers_second_claim_is_recorded_with_its_server_and_old_name() -> None:
    inv = make_inventory(["alice", "bob"], economy=[False, False], named={"alice": "gpu"})
    claims = {c["metadata"]["name"] for c in inv["persistentVolumeClaims"]["items"]}
    assert claims == {"claim-alice", "claim-bob", "claim-alice--gpu"}  # KubeSpawner 7's {user_server}
    result = plan(join_inventory(inv), nas_stack(), SOURCE, "prod")
    gpu = next(h for h in result["homes"] if h.get("server") == "gpu")
    assert gpu["user"] == "alice" and gpu["oldClaim"] == "claim-alice--gpu" and gpu["claim"] == "claim-alice"
    assert "named server 'gpu'" in " ".join(gpu["warnings"])
    assert not any("template changed" in w or "collision" in w for w in result["warnings"])
    alice = [h for h in result["homes"] if h["user"] == "alice"]
    assert all("owns 2 homes" in " ".join(h["warnings"]) for h in alice)


def test_the_summary_beside_the_plan_makes_a_swapped_home_stand_out() -> None:
    from tools.dr.restore import render_summary, summary_file

    assert summary_file("config/restore.prod.yaml") == "config/restore.prod.summary.txt"
    inv = inventory()
    result = plan(join_inventory(inv), economy_stack(), SOURCE, "prod", released=released_volumes(inv))
    text = render_summary(result)
    rows = [line for line in text.splitlines()[2:] if not line.startswith("RELEASED")]
    assert [row.split(" | ")[0].split(maxsplit=1)[1] for row in rows] == sorted(
        ascii(h["user"]) for h in result["homes"]
    )
    assert "NAME?" not in text and "RELEASED" in text and "claim-dave" in text
    # Swap alice's and bob's volumes (a tampered inventory or a hand-edited plan): both rows say NAME?.
    homes = {h["user"]: h for h in result["homes"]}
    homes["alice"]["volume"], homes["bob"]["volume"] = homes["bob"]["volume"], homes["alice"]["volume"]
    flagged = [line for line in render_summary(result).splitlines() if line.startswith("NAME?")]
    assert len(flagged) == 2 and "'alice'" in flagged[0] and "'bob'" in flagged[1]


def test_a_claim_on_a_san_backend_is_no_home_and_never_guessed_as_ontap_nas() -> None:
    inv = inventory()
    backend = next(
        b for b in inv["tridentBackends"]["items"] if b["config"]["ontap_config"]["storageDriverName"] == "ontap-nas"
    )
    backend["config"]["ontap_config"]["storageDriverName"] = "ontap-san"
    alice = next(h for h in join_inventory(inv) if h.user == "alice")
    assert "'ontap-san' backend" in " ".join(alice.warnings) and alice.driver is None and alice.volume is None


def test_the_plan_names_the_object_it_used_and_a_swapped_latest_json_is_refused(monkeypatch: Any) -> None:
    import hashlib
    import json

    import pytest

    from tools.dr import sources
    from tools.dr.restore import PlanError

    settings = nas_stack()
    body = json.dumps(make_inventory(["alice"], economy=[False])).encode()
    latest = sources.inventory_key(settings, None)
    stamped = sources.inventory_key(settings, "20261201T021500Z")
    store = ObjectStore({latest: body, stamped: body})
    monkeypatch.setattr(sources, "s3_client", lambda store_settings: store)
    _, source = sources.read_s3_inventory(settings)
    assert source.location.endswith(stamped) and source.sha256 == hashlib.sha256(body).hexdigest()
    assert plan([], settings, source, "prod")["source"]["sha256"] == source.sha256
    # latest.json swapped for another inventory claiming the same time: refused, naming both objects.
    other = make_inventory(["mallory"], economy=[False])
    store.objects[latest] = json.dumps(other).encode()
    with pytest.raises(PlanError, match="contents differ from"):
        sources.read_s3_inventory(settings)
    # No timestamped copy: the plan names latest.json itself, with the digest of what it read.
    del store.objects[stamped]
    _, source = sources.read_s3_inventory(settings)
    assert source.location.endswith(latest) and source.sha256 == hashlib.sha256(store.objects[latest]).hexdigest()
