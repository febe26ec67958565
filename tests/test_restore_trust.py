"""The restore trusts nothing the stack did not make (issue 21, items 10 and 11): every planned home must be on
the stack's data LIF, carry the stack's storage prefix and be the qtree its junction path names, both in the
planner (a warning naming the entry) and in the program's plan check (refused whatever the decision); and the
inventory is signed by the cluster with a key only the cluster and the stack hold."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest

from components import restore_render as render
from components.trident_render import home_source_problems
from config.settings import Settings, parse_settings
from tests.conftest import settings_values
from tests.dr_inventory import economy_flexvol, make_inventory
from tools.dr.restore import Source, join_inventory, plan

SOURCE = Source("s3", "s3://dsaas-prod-backups/dsaas-prod/inventory/20261201T021500Z.json", "2026-12-01T02:15:00Z")
USERS = ["alice", "bob", "carol", "dave"]


@cache
def _inventory() -> dict[str, Any]:
    return make_inventory(USERS, economy=[False, True, False, True])


def inventory() -> dict[str, Any]:
    return copy.deepcopy(_inventory())


@cache
def prod() -> Settings:
    return parse_settings(settings_values("prod"))


def _trident_volume(inv: dict[str, Any], claim: str) -> dict[str, Any]:
    pv_name = next(
        c["spec"]["volumeName"] for c in inv["persistentVolumeClaims"]["items"] if c["metadata"]["name"] == claim
    )
    tv: dict[str, Any] = next(t for t in inv["tridentVolumes"]["items"] if t["metadata"]["name"] == pv_name)
    return tv


def _entry(result: dict[str, Any], user: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(h for h in result["homes"] if h["user"] == user)
    return entry


def test_a_clean_inventory_is_the_stacks_own() -> None:
    result = plan(join_inventory(inventory()), prod(), SOURCE, "prod")
    assert all(h["warnings"] == [] for h in result["homes"]), result["homes"]


def test_an_economy_home_on_another_data_lif_is_flagged_and_refused() -> None:
    inv = inventory()
    _trident_volume(inv, "claim-bob")["config"]["accessInformation"]["nfsServerIp"] = "10.99.0.5"
    bob = _entry(plan(join_inventory(inv), prod(), SOURCE, "prod"), "bob")
    said = " ".join(bob["warnings"])
    assert "data LIF '10.99.0.5' is not the stack's" in said and "claim claim-bob" in said
    assert bob["decision"] is None
    # A reviewer who sets `decision: restore` anyway gets the program's refusal, naming the entry.
    problems = _check({**bob, "decision": "restore"})
    assert any("'bob'" in str(p) and "10.99.0.5" in str(p) and "decision: skip" in str(p) for p in problems)


def test_a_junction_path_that_is_not_the_qtrees_own_is_refused() -> None:
    inv = inventory()
    access = _trident_volume(inv, "claim-dave")["config"]["accessInformation"]
    access["nfsPath"] = "/" + access["nfsPath"].strip("/").split("/")[0]  # the whole FlexVol: everyone's homes
    dave = _entry(plan(join_inventory(inv), prod(), SOURCE, "prod"), "dave")
    assert "is not the qtree's own" in " ".join(dave["warnings"])


@pytest.mark.parametrize(
    ("volume", "said"),
    [
        ("svm_dsaas_root", "does not carry the stack's storage prefix"),
        ("chemistry_jupyterhub_claim_alice_1a2b3", "does not carry the stack's storage prefix"),
        ("dsaasprod_jupyterhub_hub_db_dir_4c5d6", "is the hub database's volume"),
        (economy_flexvol("dsaasprod", 0), "is a whole economy FlexVol"),
    ],
)
def test_an_ontap_nas_volume_the_stack_did_not_make_is_flagged_and_refused(volume: str, said: str) -> None:
    inv = inventory()
    _trident_volume(inv, "claim-alice")["config"]["internalName"] = volume
    alice = _entry(plan(join_inventory(inv), prod(), SOURCE, "prod"), "alice")
    assert said in " ".join(alice["warnings"])
    assert any(said in str(p) for p in _check({**alice, "decision": "restore"}))


def test_an_economy_qtree_outside_the_stacks_flexvols_is_refused() -> None:
    foreign = "trident_qtree_pool_chem_ABCDEFGHIJ"
    problems = home_source_problems(
        prod(), "ontap-nas-economy", None, (foreign, "chem_x", f"/{foreign}/chem_x"), "10.40.8.20"
    )
    assert len(problems) == 2
    assert "not one of the stack's economy FlexVols (trident_qtree_pool_dsaasprod_" in problems[0]
    assert "does not carry the stack's storage prefix" in problems[1]


def test_a_swapped_home_is_named_by_its_ontap_name() -> None:
    inv = inventory()
    alice, carol = _trident_volume(inv, "claim-alice"), _trident_volume(inv, "claim-carol")
    alice["config"]["internalName"], carol["config"]["internalName"] = (
        carol["config"]["internalName"],
        alice["config"]["internalName"],
    )
    result = plan(join_inventory(inv), prod(), SOURCE, "prod")
    for user in ("alice", "carol"):
        said = " ".join(_entry(result, user)["warnings"])
        assert "names another claim" in said and "dsaas.io/claim" in said


def _check(entry: dict[str, Any]) -> list[Any]:
    source = {"kind": "s3", "location": SOURCE.location, "written": SOURCE.written}
    document = {"format": render.PLAN_FORMAT, "stack": "prod", "source": source, "homes": [entry]}
    return render.check_plan(render.RestorePlan.model_validate(document), prod(), "prod", "config/restore.prod.yaml")
