"""`--from ontap` (issue 21, item 8): ONTAP as Trident v26.06.0 leaves it (tests/dr_ontap.py, built from the
Trident-shaped inventory generator), matched to the hub users of the directory by the claim name KubeSpawner 7
gives each of them; what stays unmatched, volumes or users, is listed."""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

from components import trident_render
from config.settings import Settings, parse_settings
from tests.conftest import settings_values
from tests.dr_inventory import GIB, make_inventory
from tests.dr_ontap import ontap_view, trident_comment
from tools.dr import sources
from tools.dr.restore import Source, claim_name, plan, render_plan
from tools.dr.sources import OntapFacts, match_ontap

USERS = ["alice", "Alice.Smith", "bob", "zoë", "carol", "o'brien", "x-y", "a" * 70]
ECONOMY = [False, True, False, True, True, False, True, True]
SOURCE = Source("ontap", "ontap://svm-dsaas-mgmt.dc.example.org/svm/svm_dsaas", "2026-12-04T22:00:00Z")


@cache
def prod() -> Settings:
    return parse_settings(settings_values("prod"))


@cache
def _view() -> dict[str, list[dict[str, Any]]]:
    # bob's FlexVol was made before the backend had labels: no comment, only its templated name.
    inventory = make_inventory(USERS, economy=ECONOMY)
    bob = claim_name("bob", prod())
    return ontap_view(inventory, unlabelled=[bob])


def facts(view: dict[str, list[dict[str, Any]]] | None = None) -> OntapFacts:
    view = copy.deepcopy(view or _view())
    return OntapFacts(view["volumes"], view["qtrees"], view["quota-rules"], view["connected-clients"])


def by_user(homes: list[Any]) -> dict[str | None, Any]:
    return {home.user: home for home in homes}


def test_the_comment_trident_writes_carries_the_programs_labels() -> None:
    # The labels the program sets on its ontap-nas backend, as Trident renders them into the FlexVol's comment.
    comment = trident_comment(trident_render.VOLUME_LABELS, {"requestName": "claim-alice", "namespace": "jupyterhub"})
    assert comment == '{"provisioning":{"dsaas.io/claim":"claim-alice","dsaas.io/namespace":"jupyterhub"}}'
    assert sources.comment_labels(comment) == {"dsaas.io/claim": "claim-alice", "dsaas.io/namespace": "jupyterhub"}
    # Keys the program never wrote mean nothing.
    assert sources.comment_labels('{"provisioning":{"claim":"claim-alice"}}').get(sources.CLAIM_LABEL) is None


def test_every_member_finds_the_home_trident_made_for_their_claim() -> None:
    homes, warnings = match_ontap(facts(), USERS, prod())
    found = by_user(homes)
    # "a"*70's economy qtree name passes 64 characters: Trident fell back to <prefix>_pvc_<uuid>, no claim in it.
    assert sorted(u for u in found if u) == sorted(u for u in USERS if u != "a" * 70)
    for user, home in found.items():
        assert user is not None
        assert home.claim == claim_name(user, prod()), user
        assert home.namespace == "jupyterhub"
        assert home.warnings == [], (user, home.warnings)
    alice, bob, carol = found["alice"], found["bob"], found["carol"]
    assert alice.driver.value == "ontap-nas" and alice.volume.startswith("dsaasprod_jupyterhub_claim_alice_")
    assert bob.driver.value == "ontap-nas"  # by its templated name alone: no comment
    assert carol.driver.value == "ontap-nas-economy" and carol.volume.startswith("trident_qtree_pool_dsaasprod_")
    assert carol.qtree is not None and carol.qtree.junction_path == f"/{carol.volume}/{carol.qtree.name}"
    assert carol.data_lif == "10.40.8.20" and carol.size_bytes is not None and carol.size_bytes % GIB == 0
    unmatched = next(w for w in warnings if "match no member" in w)
    assert "dsaasprod_pvc_" in unmatched and "uid of its files" in unmatched
    homeless = next(w for w in warnings if "have no volume or qtree" in w)
    assert repr("a" * 70) in homeless and "empty home" in homeless


def test_the_plan_from_ontap_loads_for_every_matched_home() -> None:
    homes, warnings = match_ontap(facts(), USERS, prod())
    result = plan(homes, prod(), SOURCE, "prod", warnings)
    assert len(result["homes"]) == len(USERS) - 1
    assert all(entry["warnings"] == [] for entry in result["homes"]), [e["warnings"] for e in result["homes"]]
    assert "dsaas-restore-plan/1" in render_plan(result)


def test_a_labelled_volume_whose_claim_no_member_gets_is_kept_for_a_decision() -> None:
    homes, warnings = match_ontap(facts(), [u for u in USERS if u != "alice"], prod())
    orphan = by_user(homes)[None]
    assert orphan.claim == "claim-alice" and "no member of the allowed groups" in orphan.warnings[0]
    entry = next(e for e in plan(homes, prod(), SOURCE, "prod", warnings)["homes"] if e["user"] is None)
    assert entry["decision"] is None  # the reviewer restores it under its old claim or skips it


def test_an_unlabelled_volume_of_someone_gone_is_listed_not_guessed() -> None:
    bob = claim_name("bob", prod())
    homes, warnings = match_ontap(facts(), [u for u in USERS if u != "bob"], prod())
    assert bob not in {h.claim for h in homes}
    assert any("match no member" in w and "claim_bob" in w for w in warnings)


def test_two_users_whose_claims_trident_names_alike_are_both_flagged() -> None:
    # 'safe' gives "x--y" the claim claim-x-y---<hash>; Trident's name turns "---" into "_", so the member named
    # x-y-<hash> (claim-x-y-<hash>, a valid name left as it is) looks the same on ONTAP.
    twin = "x-y-" + claim_name("x--y", prod()).rsplit("---", 1)[1]
    inventory = make_inventory(["x--y"], economy=[True])
    homes, _ = match_ontap(facts(ontap_view(inventory)), ["x--y", twin], prod())
    assert len(homes) == 1 and "fits the claims of 2 users" in homes[0].warnings[0]
    assert repr(twin) in homes[0].warnings[0]


def test_the_claims_namespace_comes_from_the_comment() -> None:
    view = copy.deepcopy(_view())
    alice = next(v for v in view["volumes"] if v["name"].startswith("dsaasprod_jupyterhub_claim_alice_"))
    alice["comment"] = json.dumps({"provisioning": {"dsaas.io/claim": "claim-alice", "dsaas.io/namespace": "lab"}})
    home = by_user(match_ontap(facts(view), USERS, prod())[0])["alice"]
    assert home.namespace == "lab" and "was not a hub home" in " ".join(home.warnings)


def test_deleted_qtrees_and_other_volumes_are_not_homes() -> None:
    view = copy.deepcopy(_view())
    flexvol = next(v["name"] for v in view["volumes"] if v["name"].startswith("trident_qtree_pool_"))
    view["qtrees"].append(
        {**view["qtrees"][0], "id": 99, "name": "deleted_dsaasprod_jupyterhub_claim_gone_1a2b3_XYZAB"}
    )
    homes, warnings = match_ontap(facts(view), USERS, prod())
    assert all("deleted_" not in (h.qtree.name if h.qtree else "") for h in homes)
    assert any("Trident deleted" in w and flexvol in w for w in warnings)


def test_economy_states_come_from_the_flexvol() -> None:
    view = copy.deepcopy(_view())
    carol = by_user(match_ontap(facts(view), USERS, prod())[0])["carol"]
    view["connected-clients"].append({"client_ip": "10.40.0.21", "volume": {"name": carol.volume}})
    next(v for v in view["volumes"] if v["name"] == carol.volume)["type"] = "dp"
    home = by_user(match_ontap(facts(view), USERS, prod())[0])["carol"]
    text = " ".join(home.warnings)
    assert "SnapMirror destination" in text and "NFS clients 10.40.0.21" in text


def test_a_qtree_without_a_tree_quota_asks_for_its_size() -> None:
    view = copy.deepcopy(_view())
    carol = by_user(match_ontap(facts(view), USERS, prod())[0])["carol"]
    view["quota-rules"] = [q for q in view["quota-rules"] if q["qtree"]["name"] != carol.qtree.name]
    home = by_user(match_ontap(facts(view), USERS, prod())[0])["carol"]
    assert home.size_bytes is None and "no tree quota" in home.warnings[0]


def test_the_users_file_takes_names_one_a_line(tmp_path: Any) -> None:
    listed = tmp_path / "users.txt"
    listed.write_text("alice\n# left in June\n  bob  \n\nalice\nzoë # exchange student\n", encoding="utf-8")
    assert sources.read_users_file(listed) == ["alice", "bob", "zoë"]


def test_volumes_of_other_claims_are_not_homes() -> None:
    view = copy.deepcopy(_view())
    labels = {"dsaas.io/claim": "hub-db-dir", "dsaas.io/namespace": "jupyterhub"}
    view["volumes"].append({**view["volumes"][0], "name": "dsaasprod_jupyterhub_hub_db_dir_0a1b2"})
    view["volumes"][-1]["comment"] = json.dumps({"provisioning": labels})
    view["volumes"].append({**view["volumes"][0], "name": "dsaasprod_jupyterhub_scratch_9f8e7", "comment": ""})
    homes, warnings = match_ontap(facts(view), USERS, prod())
    assert not {"dsaasprod_jupyterhub_hub_db_dir_0a1b2", "dsaasprod_jupyterhub_scratch_9f8e7"} & {
        h.volume for h in homes
    }
    other = next(w for w in warnings if "never makes" in w)
    assert "hub_db_dir" in other and "scratch" in other and "claim hub-db-dir" in other


def test_the_directory_options_go_with_from_ontap_only(tmp_path: Any, capsys: Any) -> None:
    from tools.dr import command

    listed = tmp_path / "users.txt"
    listed.write_text("alice\n", encoding="utf-8")
    assert command.main(["plan", "prod", "--users", str(listed), "--out", str(tmp_path / "plan.yaml")]) == 2
    assert "go with --from ontap" in capsys.readouterr().err
