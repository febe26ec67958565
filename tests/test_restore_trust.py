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
from tests.fake_object_store import ObjectStore
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


# --- item 11: the inventory is signed by the cluster, and the planner checks it -------------------------

KEY = b"5f1c0e9a7d3b4a2e8c6f0b1d9e7a5c3b2f4e6d8c0a1b3d5f7e9c2a4b6d8f0e1c"  # what RandomBytes(32).hex looks like
STAMP, OLDER = "20261201T021500Z", "20261130T021500Z"


def _signed(users: list[str] = USERS, written: str = "2026-12-01T02:15:00Z", key: bytes = KEY) -> dict[str, Any]:
    from tools.dr import signing

    return signing.sign(make_inventory(users, economy=[False, True, False, True][: len(users)], written=written), key)


def _bytes(document: dict[str, Any]) -> bytes:
    import json

    return json.dumps(document).encode()


def _folder() -> str:
    from tools.dr import sources

    return sources.inventory_key(prod(), None).rsplit("/", 1)[0]


def _store(latest: dict[str, Any], **stamped: dict[str, Any]) -> ObjectStore:
    objects = {f"{_folder()}/latest.json": _bytes(latest)}
    objects |= {f"{_folder()}/{stamp}.json": _bytes(document) for stamp, document in stamped.items()}
    return ObjectStore(objects)


def _plan(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, bucket: ObjectStore, *flags: str, key: bytes | None = KEY
) -> tuple[int, str, Any]:
    from tools.dr import command, signing, sources

    if key is None:
        monkeypatch.delenv(signing.KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(signing.KEY_ENV, key.decode())
    monkeypatch.setattr(sources, "s3_client", lambda store: bucket)
    out = tmp_path / "restore.prod.yaml"
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = command.main(["plan", "prod", "--out", str(out), *flags])
    return code, err.getvalue(), out


def test_a_signed_inventory_is_planned_and_the_plan_names_the_key(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from tools.dr import signing

    document = _signed()
    code, err, out = _plan(tmp_path, monkeypatch, _store(document, **{STAMP: document}))
    assert code == 0, err
    source = yaml.safe_load(out.read_text(encoding="utf-8"))["source"]
    assert source["location"].endswith(f"{STAMP}.json") and source["signedBy"] == document["signature"]["keyId"]
    assert signing.KEY_ENV not in out.read_text(encoding="utf-8") and KEY.decode() not in out.read_text(
        encoding="utf-8"
    )


def _swap_homes(document: dict[str, Any]) -> None:
    volumes = [t for t in document["tridentVolumes"]["items"] if "internalID" not in t["config"]]
    first, second = volumes[0]["config"], volumes[1]["config"]
    first["internalName"], second["internalName"] = second["internalName"], first["internalName"]


def _change_lif(document: dict[str, Any]) -> None:
    document["tridentVolumes"]["items"][1]["config"]["accessInformation"]["nfsServerIp"] = "10.40.8.99"


def _drop_entry(document: dict[str, Any]) -> None:
    del document["persistentVolumeClaims"]["items"][0]


def _move_time(document: dict[str, Any]) -> None:
    document["written"] = "2026-12-03T02:15:00Z"


@pytest.mark.parametrize("tamper", [_swap_homes, _change_lif, _drop_entry, _move_time])
def test_a_changed_inventory_is_refused(tamper: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    document = _signed()
    tamper(document)  # after signing: what someone with write access to the bucket could do
    code, err, out = _plan(tmp_path, monkeypatch, _store(document))
    assert code == 2 and not out.exists()
    assert "does not match its signature: it was changed after the cluster signed it" in err
    assert "latest.json" in err and "Traceback" not in err


def test_a_replayed_older_inventory_presented_as_latest_is_refused(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    older = _signed(["alice", "bob"], written="2026-11-30T02:15:00Z")  # signed, by this cluster, a day earlier
    newer = _signed()
    code, err, out = _plan(tmp_path, monkeypatch, _store(older, **{OLDER: older, STAMP: newer}))
    assert code == 2 and not out.exists()
    assert f"the folder has a newer one ({STAMP}.json)" in err and f"--inventory {STAMP}" in err
    # ... and copied under the newer name instead: the object's name and its signed time disagree.
    code, err, out = _plan(tmp_path, monkeypatch, _store(newer, **{STAMP: older}), "--inventory", STAMP)
    assert code == 2 and "not the one of its name's time: an older inventory was copied over it" in err
    # Named on purpose, the older inventory is planned (the operator chose it).
    code, err, out = _plan(tmp_path, monkeypatch, _store(newer, **{OLDER: older, STAMP: newer}), "--inventory", OLDER)
    assert code == 0, err


def test_an_unsigned_inventory_is_refused_unless_the_operator_says_so(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    document = _signed()
    del document["signature"]
    code, err, out = _plan(tmp_path, monkeypatch, _store(document))
    assert code == 2 and "carries no signature" in err and "--unsigned" in err and not out.exists()
    code, err, out = _plan(tmp_path, monkeypatch, _store(document), "--unsigned", key=None)
    plan_ = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert code == 1 and plan_["source"]["signed"] is False
    assert any("was NOT checked against the stack's signature" in w for w in plan_["warnings"])


def test_another_stacks_inventory_and_a_missing_key_are_refused_naming_the_fix(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    foreign = _signed(key=b"another stack's key, 64 characters long, for the inventory job.")
    code, err, _ = _plan(tmp_path, monkeypatch, _store(foreign))
    assert code == 2 and "was signed with another key" in err and "pulumi stack output inventorySigningKey" in err
    code, err, _ = _plan(tmp_path, monkeypatch, ObjectStore({}), key=None)
    assert code == 2 and "DSAAS_INVENTORY_KEY is not set" in err
    assert 'export DSAAS_INVENTORY_KEY="$(pulumi stack output inventorySigningKey --show-secrets --stack <' in err


def test_the_cronjobs_signing_script_signs_what_the_planner_verifies(tmp_path: Any) -> None:
    import json
    import os
    import subprocess
    import sys

    from tools.dr import signing

    document = make_inventory(["alice", "zoë"], economy=[False, True])
    (tmp_path / "payload").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "key").write_bytes(KEY + b"\n")  # a Secret's file, as the kubelet mounts it
    env = {"PATH": os.environ["PATH"], "OUT": str(tmp_path), "KEY_FILE": str(tmp_path / "key")}
    done = subprocess.run(
        [sys.executable, str(signing.SCRIPT)], env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert KEY.decode() not in done.stdout + done.stderr
    signed = json.loads((tmp_path / "payload").read_bytes())
    signing.verify(signed, KEY, "payload", "prod")
    assert {k: v for k, v in signed.items() if k != "signature"} == document
    (tmp_path / "key").write_bytes(b"short")
    done = subprocess.run(
        [sys.executable, str(signing.SCRIPT)], env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 1 and "shorter than 32 bytes" in done.stderr


def test_only_the_signing_container_mounts_the_key() -> None:
    from components import backup_render

    cronjob = backup_render.render_inventory_cronjob(prod(), ca_bundle=False)
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    volume = next(
        v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == backup_render.INVENTORY_KEY_SECRET
    )
    mounting = {
        c["name"]
        for c in pod["initContainers"] + pod["containers"]
        if any(m["name"] == volume["name"] for m in c["volumeMounts"])
    }
    assert mounting == {"sign"}
    assert [c["name"] for c in pod["initContainers"]] == ["collect", "sign"]  # signs what collect wrote
    sign = pod["initContainers"][1]
    assert not any(m["mountPath"] == backup_render.TOKEN_MOUNT for m in sign["volumeMounts"])
    assert "sign_inventory.py" in backup_render.render_scripts_configmap()["data"]


# --- --verify ontap: each home against ONTAP as it is now -------------------------------------------------


def _ontap_records(result: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """ONTAP's answers for the planned homes (shapes as tests/e2e/ontap_replay.py documents, loaded by NetApp's
    own schemas there): alice as planned; bob's qtree gone; carol's FlexVol made for alice's claim (a swap);
    dave's economy FlexVol a SnapMirror destination with an old node still connected."""
    import json
    import uuid

    svm = {"name": "svm_dsaas", "uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, "svm_dsaas"))}
    homes = {h["user"]: h for h in result["homes"]}

    def volume(name: str, claim: str | None, **extra: Any) -> dict[str, Any]:
        comment = json.dumps({"provisioning": {"dsaas.io/claim": claim, "dsaas.io/namespace": "jupyterhub"}})
        ident = str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
        record: dict[str, Any] = {"uuid": ident, "name": name, "type": "rw", "state": "online"}
        record["comment"] = comment if claim else ""
        record |= {"is_svm_root": False, "svm": svm, "_links": {"self": {"href": f"/api/storage/volumes/{ident}"}}}
        return record | extra

    def qtree(home: dict[str, Any]) -> dict[str, Any]:
        flexvol, name = home["qtree"]["flexvol"], home["qtree"]["name"]
        return {"svm": svm, "volume": {"name": flexvol, "uuid": svm["uuid"]}, "id": 1, "name": name}

    return {
        "cluster": [{"name": "a800-dc1", "uuid": svm["uuid"], "version": {"full": "NetApp Release 9.15.1"}}],
        "volumes": [
            volume(homes["alice"]["volume"], "claim-alice"),
            volume(homes["carol"]["volume"], "claim-alice"),
            volume(homes["bob"]["qtree"]["flexvol"], None),
            volume(homes["dave"]["qtree"]["flexvol"], None, type="dp"),
        ],
        "qtrees": [qtree(homes["dave"])],
        "connected-clients": [
            {
                "svm": svm,
                "node": {"name": "a800-01"},
                "client_ip": "10.40.0.21",
                "server_ip": "10.40.8.20",
                "protocol": "nfs4.1",
                "volume": {"name": homes["dave"]["qtree"]["flexvol"], "uuid": svm["uuid"]},
                "idle_duration": "PT3M12S",
            }
        ],
    }


def test_verify_ontap_flags_what_ontap_contradicts(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from marshmallow import RAISE
    from netapp_ontap.resources.nfs_clients import NfsClientsSchema
    from netapp_ontap.resources.qtree import QtreeSchema
    from netapp_ontap.resources.volume import VolumeSchema

    from tests.e2e.ontap_replay import OntapReplay
    from tools.dr import verify
    from tools.lab import pki

    # Two economy homes, each in a FlexVol of its own (Trident fills one first; here one FlexVol is a mirror).
    inv = make_inventory(USERS, economy=[False, True, False, True])
    dave_tv = _trident_volume(inv, "claim-dave")
    other = economy_flexvol("dsaasprod", 1)
    old = dave_tv["config"]["internalID"].split("/")[4]
    access = dave_tv["config"]["accessInformation"]
    dave_tv["config"]["internalID"] = dave_tv["config"]["internalID"].replace(old, other)
    access["nfsPath"] = access["nfsPath"].replace(old, other)
    result = plan(join_inventory(inv), prod(), SOURCE, "prod")
    assert all(h["warnings"] == [] for h in result["homes"])
    ca = pki.make_ca("dsaas verify test CA")
    cert, key = pki.issue_server_cert(ca, ["127.0.0.1"]).write(tmp_path / "cert.pem", tmp_path / "key.pem")
    ca_file = ca.write_cert(tmp_path / "ca.pem")
    monkeypatch.setenv("DSAAS_ONTAP_USERNAME", "vsadmin-restore")
    monkeypatch.setenv("DSAAS_ONTAP_PASSWORD", "ontap-test-password")
    records = _ontap_records(result)
    for kind, schema in (("volumes", VolumeSchema), ("qtrees", QtreeSchema), ("connected-clients", NfsClientsSchema)):
        for record in records[kind]:
            schema().load(record, unknown=RAISE)  # NetApp's own schemas: no field ONTAP does not have
    with OntapReplay(records, cert, key, "vsadmin-restore", "ontap-test-password") as ontap:
        found = verify.read_ontap(prod(), ca_file, f"127.0.0.1:{ontap.port}")
        asked = list(ontap.requests)
    assert verify.cross_check(result, found) == 3
    homes = {h["user"]: h for h in result["homes"]}
    assert homes["alice"]["warnings"] == [] and "decision" not in homes["alice"]
    assert "ONTAP has no qtree" in homes["bob"]["warnings"][0] and homes["bob"]["decision"] is None
    assert "made for claim 'claim-alice' (dsaas.io/claim)" in homes["carol"]["warnings"][0]
    dave = " ".join(homes["dave"]["warnings"])
    assert "SnapMirror destination" in dave and "NFS clients 10.40.0.21 are connected" in dave
    assert len(asked) == 3  # three collection reads, however many homes
    assert all("svm.name=svm_dsaas" in request for request in asked)
