"""The restore planner's pure parts: joining the inventory, naming claims with KubeSpawner's own code, the plan."""

from __future__ import annotations

import copy
import re
import time
from typing import Any

import pytest
import yaml

from config.settings import Settings, parse_settings
from config.storage import NasDriver
from tests.dr_inventory import GIB, make_inventory, tricky_users
from tools.dr import restore
from tools.dr.restore import NameScheme, PlanError, Source, join_inventory, kubespawner_claim_name, plan, render_plan
from tools.lab.stack_hub import stack_settings_values

SOURCE = Source("s3", "s3://dsaas-backups/dsaas-prod/inventory/20261201T021500Z.json", "2026-12-01T02:15:00Z")


@pytest.fixture(scope="module")
def prod() -> Settings:
    return parse_settings(stack_settings_values("prod"))


def test_the_stack_pins_the_names_kubespawner_uses(prod: Settings) -> None:
    assert restore.name_scheme(prod) == NameScheme("claim-{username}", "safe")
    assert restore.claim_name("alice", prod) == "claim-alice"
    # 'safe' lowercases, replaces what Kubernetes refuses and adds a hash wherever it changed the name.
    assert restore.claim_name("Alice.Smith", prod).startswith("claim-alice-smith---")
    assert restore.claim_name("Alice.Smith", prod) != restore.claim_name("alice-smith", prod)


def test_join_finds_every_home_on_both_drivers() -> None:
    users = tricky_users(50)
    homes = join_inventory(make_inventory(users))
    assert sorted(h.user or "" for h in homes) == sorted(users)
    by_user = {h.user: h for h in homes}
    nas, economy = by_user["alice"], by_user["Alice.Smith"]
    assert nas.driver is NasDriver.ONTAP_NAS
    # Trident's own names: the backend's nameTemplate, sanitized (ontap_common.go GetVolumeNameFromTemplate) ...
    assert nas.volume and re.fullmatch(r"dsaasprod_jupyterhub_claim_alice_[0-9a-f]{5}", nas.volume)
    assert nas.qtree is None
    assert nas.size_bytes == 10 * GIB and nas.backend_name == "dsaas-prod-ontap-nas"
    assert economy.driver is NasDriver.ONTAP_NAS_ECONOMY and economy.qtree is not None
    # ... and the qtree driver's FlexVols, trident_qtree_pool_<prefix>_ + ten letters (ontap_nas_qtree.go).
    assert re.fullmatch(r"trident_qtree_pool_dsaasprod_[A-Z]{10}", economy.qtree.flexvol)
    assert economy.qtree.junction_path == f"/{economy.qtree.flexvol}/{economy.qtree.name}"
    assert economy.data_lif == "10.40.8.20"
    assert all(not h.warnings for h in homes)


def test_plan_names_claims_as_kubespawner_does_now(prod: Settings) -> None:
    users = tricky_users(50)
    result = plan(join_inventory(make_inventory(users, legacy=["Jürgen.Müller"])), prod, SOURCE, "prod")
    assert result["format"] == "dsaas-restore-plan/1" and result["stack"] == "prod"
    # No signature was checked for this Source (the command checks it and sets signed_by): the plan says so.
    source = {"kind": "s3", "location": SOURCE.location, "written": SOURCE.written, "signed": False}
    assert result["source"] == source
    scheme = NameScheme("claim-{username}", "safe")
    for home in result["homes"]:
        assert home["claim"] == kubespawner_claim_name(home["user"], scheme)
        keys = {"user", "claim", "driver", "volume", "qtree", "dataLif", "sizeBytes", "warnings"}
        keys |= {"decision"} if home["warnings"] else set()
        assert set(home) == (keys | {"oldClaim"} if home["user"] == "Jürgen.Müller" else keys)
        if home["driver"] == "ontap-nas":
            assert home["volume"] and home["qtree"] is None and home["dataLif"] is None
        else:
            assert home["volume"] is None and set(home["qtree"]) == {"flexvol", "name", "junctionPath"}
    # The inventory mixes both drivers; prod (ontap-nas) takes its economy homes as static volumes (issue 21).
    assert {h["driver"] for h in result["homes"]} == {"ontap-nas", "ontap-nas-economy"}
    warned = {h["user"]: h["warnings"] for h in result["homes"] if h["warnings"]}
    # The KubeSpawner 6 ('escape') claim of a non-ASCII name differs from what KubeSpawner 7 computes now: the
    # restore gives it the new name (no warning that would stop the entry), and the old one stays on record.
    assert warned == {}
    jurgen = next(h for h in result["homes"] if h["user"] == "Jürgen.Müller")
    assert jurgen["oldClaim"] == "claim--4a-c3-bcrgen-2e-4d-c3-bcller" and jurgen["claim"].startswith("claim-j")
    assert result["warnings"] == []
    parsed = yaml.safe_load(render_plan(result))
    assert parsed == result


def test_plan_warns_of_collisions_and_of_users_with_two_homes(prod: Settings, monkeypatch: Any) -> None:
    inventory = make_inventory(["ann", "bob"])
    second = copy.deepcopy(inventory["persistentVolumeClaims"]["items"][0])
    second["metadata"]["name"] = "claim-ann-old"
    inventory["persistentVolumeClaims"]["items"].append(second)
    result = plan(join_inventory(inventory), prod, SOURCE, "prod")
    ann = [h for h in result["homes"] if h["user"] == "ann"]
    assert len(ann) == 2 and all("owns 2 homes" in " ".join(h["warnings"]) for h in ann)
    # One user's two claims are that user's two homes, warned as such: no "collision" with themselves (issue 21).
    assert not any("collision" in w for w in result["warnings"])
    # A template that ignores the user name maps everybody onto one claim.
    monkeypatch.setattr(restore, "name_scheme", lambda settings: NameScheme("claim-home", "safe"))
    result = plan(join_inventory(make_inventory(["ann", "bob"])), prod, SOURCE, "prod")
    assert result["warnings"] == ["name collision on claim claim-home ('ann', 'bob')"]


def test_homes_that_cannot_be_joined_say_why(prod: Settings) -> None:
    inventory = make_inventory(["ann", "bob", "cy"])
    claims = inventory["persistentVolumeClaims"]["items"]
    claims[0]["spec"]["volumeName"] = "pvc-gone"
    del claims[1]["metadata"]["annotations"]["hub.jupyter.org/username"]
    inventory["tridentVolumes"]["items"] = [
        tv for tv in inventory["tridentVolumes"]["items"] if tv["metadata"]["name"] != claims[2]["spec"]["volumeName"]
    ]
    notes = {h.claim: " ".join(h.warnings) for h in join_inventory(inventory)}
    assert "bound to no persistent volume" in notes[claims[0]["metadata"]["name"]]
    assert "no hub.jupyter.org/username annotation" in notes[claims[1]["metadata"]["name"]]
    assert "names no TridentVolume" in notes[claims[2]["metadata"]["name"]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda inv: inv.update(format="something/2"), "format is 'something/2'"),
        (lambda inv: inv.update(persistentVolumeClaims=[1, 2]), "persistentVolumeClaims is not a Kubernetes List"),
    ],
)
def test_an_inventory_of_another_shape_is_refused(change: Any, message: str) -> None:
    inventory = make_inventory(["ann"])
    change(inventory)
    with pytest.raises(PlanError, match=message):
        join_inventory(inventory)


def test_a_template_with_the_database_user_id_is_refused(prod: Settings, monkeypatch: Any) -> None:
    from components import hub_render

    monkeypatch.setattr(hub_render, "PVC_NAME_TEMPLATE", "claim-{userid}")
    with pytest.raises(PlanError, match="hub database assigns"):
        restore.name_scheme(prod)


def test_ten_thousand_economy_users_get_through_the_planner(prod: Settings, capsys: Any) -> None:
    inventory = make_inventory(tricky_users(10_000), economy=[True] * 10_000)
    started = time.perf_counter()
    result = plan(join_inventory(inventory), prod, SOURCE, "prod")
    text = render_plan(result)
    seconds = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n10,000 economy homes: join + plan + render in {seconds:.2f} s ({len(text) / 1e6:.1f} MB)")
    assert len(result["homes"]) == 10_000 and restore.economy_homes(result) == 10_000
    assert not result["warnings"]
