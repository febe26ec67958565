"""The restore planner as the operator runs it, against real peers on 127.0.0.1.

- moto's S3 server over HTTPS (a lab CA, named by dsaas:backup.objectStore.caFile), versioning on, holding
  a generated inventory of 50 users with tricky names on both drivers: `python -m tools.restore plan` in
  a subprocess writes the plan, compared with the planner's pure result.
- A server replaying ONTAP REST answers (tests/e2e/ontap_replay.py), read through NetApp's own client.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.config import Config as BotoConfig
from marshmallow import RAISE
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

from config.settings import PROJECT_ROOT, parse_settings
from tests.dr_inventory import GIB, make_inventory, tricky_users
from tests.dr_ontap import SVM_UUID, ontap_view
from tests.e2e.ontap_replay import OntapReplay
from tools.dr import restore, signing
from tools.lab import pki
from tools.lab.stack_hub import project_copy, stack_settings_values

pytestmark = pytest.mark.slow

BUCKET = "dsaas-prod-backups"
KEY_ID, SECRET = "AKIADSAASTEST", "dsaas-test-secret-key"
ONTAP_USER, ONTAP_PASSWORD = "vsadmin-restore", "ontap-test-password"
USERS = tricky_users(50)
STAMP = "20261201T021500Z"
# The stack's inventory key as the planner gets it (pulumi stack output inventorySigningKey): RandomBytes(32).hex.
INVENTORY_KEY = "9d0e4b7f3a2c18e5d6f4a0b9c8e7d3f21a5b6c4d8e0f7a9b3c2d1e6f5a4b0c9d"


class TlsMotoServer(ThreadedMotoServer):
    """moto's threaded server, serving HTTPS with a lab certificate (the stack's endpoint must be HTTPS)."""

    def __init__(self, port: int, cert: Path, key: Path) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self._tls = (str(cert), str(key))

    def _server_entry(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler, ssl_context=self._tls
        )
        self._server_ready_event.set()
        self._server.serve_forever()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca = pki.make_ca("dsaas restore test CA")
    cert, key = pki.issue_server_cert(ca, ["127.0.0.1", "localhost"]).write(folder / "cert.pem", folder / "key.pem")
    return {"ca": ca.write_cert(folder / "ca.pem"), "cert": cert, "key": key}


@pytest.fixture(scope="module")
def s3(tls: dict[str, Path]) -> Iterator[str]:
    port = _free_port()
    server = TlsMotoServer(port, tls["cert"], tls["key"])
    server.start()
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        server.stop()


def _client(endpoint: str, ca: Path, key_id: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        verify=str(ca),
        config=BotoConfig(s3={"addressing_style": "path"}, request_checksum_calculation="when_required"),
    )


def _stack_dir(tmp_path: Path, object_store: dict[str, Any]) -> Path:
    """A config dir holding a copy of the prod stack whose object store is the test's."""
    raw = yaml.safe_load((PROJECT_ROOT / "config" / "Pulumi.prod.yaml").read_text())
    raw["config"]["dsaas:backup"] = {"objectStore": object_store}
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "Pulumi.prod.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DSAAS_", "AWS_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tools.restore", *args],
        cwd=PROJECT_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# The reading key: made in moto's IAM by the `uploaded` fixture.
S3_ENV: dict[str, str] = {}


@pytest.fixture(scope="module")
def uploaded(s3: str, tls: dict[str, Path]) -> Iterator[dict[str, Any]]:
    """The inventory CronJob's work: a versioned bucket with a timestamped inventory and latest.json.

    Then moto checks signatures as S3 does (its reset-auth switch): only the IAM key made here may read.
    """
    client = _client(s3, tls["ca"], KEY_ID, SECRET)
    iam = boto3.client(
        "iam",
        endpoint_url=s3,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        verify=str(tls["ca"]),
    )
    iam.create_user(UserName="dsaas-restore")
    iam.put_user_policy(
        UserName="dsaas-restore",
        PolicyName="read-backups",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName="dsaas-restore")["AccessKey"]
    S3_ENV.update(DSAAS_S3_ACCESS_KEY_ID=key["AccessKeyId"], DSAAS_S3_SECRET_ACCESS_KEY=key["SecretAccessKey"])
    S3_ENV[signing.KEY_ENV] = INVENTORY_KEY
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    # Signed as the CronJob's `sign` container signs it, with the stack's key (tools/dr/signing.py).
    inventory = signing.sign(make_inventory(USERS, legacy=["Jürgen.Müller"]), INVENTORY_KEY.encode())
    body = json.dumps(inventory).encode()
    for name in (f"{STAMP}.json", "latest.json"):
        client.put_object(Bucket=BUCKET, Key=f"dsaas-prod/inventory/{name}", Body=body)
    _reset_auth(s3, tls["ca"], "0")
    try:
        yield inventory
    finally:
        _reset_auth(s3, tls["ca"], "inf")


def _reset_auth(endpoint: str, ca: Path, count: str) -> None:
    """moto's switch: check every request's signature from now on ("0"), or never again ("inf")."""
    import requests

    requests.post(f"{endpoint}/moto-api/reset-auth", data=count, verify=str(ca), timeout=10).raise_for_status()


def test_the_operator_plans_a_restore_from_the_object_store(
    s3: str, tls: dict[str, Path], uploaded: dict[str, Any], tmp_path: Path
) -> None:
    ca_file = project_copy(tls["ca"], "s3-ca.pem")
    config_dir = _stack_dir(tmp_path, {"endpoint": s3, "bucket": BUCKET, "caFile": ca_file})
    done = _run("plan", "prod", "--config-dir", str(config_dir), env=S3_ENV)
    # Written, nothing to review: the legacy claim is renamed (oldClaim, no warning) and prod (ontap-nas) takes the
    # economy homes as static volumes (issue 21).
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert S3_ENV["DSAAS_S3_ACCESS_KEY_ID"] not in output and S3_ENV["DSAAS_S3_SECRET_ACCESS_KEY"] not in output
    assert INVENTORY_KEY not in output
    assert "50 homes from s3://dsaas-prod-backups/dsaas-prod/inventory/20261201T021500Z.json" in done.stdout
    assert "25 home(s) are economy qtrees" in done.stdout
    written = yaml.safe_load((config_dir / "restore.prod.yaml").read_text())
    settings = parse_settings(stack_settings_values("prod", config_dir))
    expected = restore.plan(
        restore.join_inventory(uploaded),
        settings,
        restore.Source(
            "s3",
            f"s3://{BUCKET}/dsaas-prod/inventory/{STAMP}.json",
            "2026-12-01T02:15:00Z",
            hashlib.sha256(json.dumps(uploaded).encode()).hexdigest(),  # the bytes uploaded, as the fixture did
            uploaded["signature"]["keyId"],
        ),
        "prod",
    )
    assert written == expected
    homes = {h["user"]: h for h in written["homes"]}
    assert sorted(homes) == sorted(USERS)
    assert homes["alice"]["claim"] == "claim-alice" and homes["alice"]["driver"] == "ontap-nas"
    assert homes["alice"]["sizeBytes"] == 10 * GIB
    assert homes["Alice.Smith"]["qtree"]["junctionPath"].startswith("/trident_qtree_pool_dsaasprod_")
    assert homes["Alice.Smith"]["dataLif"] == "10.40.8.20"
    # A chosen inventory, by its timestamp.
    again = _run(
        "plan",
        "prod",
        "--config-dir",
        str(config_dir),
        "--inventory",
        STAMP,
        "--out",
        str(tmp_path / "p.yaml"),
        env=S3_ENV,
    )
    assert again.returncode == 0 and yaml.safe_load((tmp_path / "p.yaml").read_text()) == written


@pytest.mark.parametrize(
    ("change", "env", "message"),
    [
        ({}, "none", "DSAAS_S3_ACCESS_KEY_ID is not set"),
        ({}, "wrong-secret", "refused the credentials (SignatureDoesNotMatch)"),
        ({}, "unknown-key", "refused the credentials (InvalidAccessKeyId)"),
        ({"bucket": "no-such-bucket"}, "good", "bucket no-such-bucket does not exist"),
        ({"prefix": "elsewhere"}, "good", "no inventory at s3://dsaas-prod-backups/elsewhere/inventory/latest.json"),
        ({"caFile": None}, "good", "set dsaas:backup.objectStore.caFile"),
    ],
    ids=["no-credentials", "wrong-secret", "unknown-key", "no-bucket", "wrong-prefix", "unknown-ca"],
)
def test_object_store_failures_are_explained(
    s3: str,
    tls: dict[str, Path],
    uploaded: dict[str, Any],
    tmp_path: Path,
    change: dict[str, Any],
    env: str,
    message: str,
) -> None:
    store = {"endpoint": s3, "bucket": BUCKET, "caFile": project_copy(tls["ca"], "s3-ca.pem"), **change}
    config_dir = _stack_dir(tmp_path, {k: v for k, v in store.items() if v is not None})
    credentials = {
        "none": {signing.KEY_ENV: INVENTORY_KEY},  # the object store's keys missing, not the inventory's
        "good": S3_ENV,
        "wrong-secret": {**S3_ENV, "DSAAS_S3_SECRET_ACCESS_KEY": "wrong"},
        "unknown-key": {**S3_ENV, "DSAAS_S3_ACCESS_KEY_ID": "AKIANOBODY"},
    }[env]
    done = _run("plan", "prod", "--config-dir", str(config_dir), env=credentials)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert message in done.stderr
    assert not (config_dir / "restore.prod.yaml").exists()


def test_a_replayed_or_changed_inventory_is_refused_by_the_command(
    s3: str, tls: dict[str, Path], uploaded: dict[str, Any], tmp_path: Path
) -> None:
    """Issue 21, item 11, against moto's S3 (real ListObjectsV2 pages): an older signed inventory copied over
    latest.json, then a changed one; nothing is written either time."""
    client = _client(s3, tls["ca"], S3_ENV["DSAAS_S3_ACCESS_KEY_ID"], S3_ENV["DSAAS_S3_SECRET_ACCESS_KEY"])
    older = signing.sign(make_inventory(USERS[:3], written="2026-11-30T02:15:00Z"), INVENTORY_KEY.encode())
    folder = "replayed/inventory"
    for name, document in (("20261130T021500Z.json", older), (f"{STAMP}.json", uploaded), ("latest.json", older)):
        client.put_object(Bucket=BUCKET, Key=f"{folder}/{name}", Body=json.dumps(document).encode())
    store = {"endpoint": s3, "bucket": BUCKET, "caFile": project_copy(tls["ca"], "s3-ca.pem"), "prefix": "replayed"}
    config_dir = _stack_dir(tmp_path, store)
    done = _run("plan", "prod", "--config-dir", str(config_dir), env=S3_ENV)
    assert done.returncode == 2 and f"the folder has a newer one ({STAMP}.json)" in done.stderr, done.stderr
    changed = copy.deepcopy(uploaded)
    changed["tridentVolumes"]["items"][0]["config"]["accessInformation"]["nfsServerIp"] = "10.40.8.99"
    client.put_object(Bucket=BUCKET, Key=f"{folder}/latest.json", Body=json.dumps(changed).encode())
    client.delete_object(Bucket=BUCKET, Key=f"{folder}/{STAMP}.json")
    done = _run("plan", "prod", "--config-dir", str(config_dir), env=S3_ENV)
    assert done.returncode == 2 and "does not match its signature" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (config_dir / "restore.prod.yaml").exists()


# --- ONTAP ----------------------------------------------------------------------------------------------

SVM = {"name": "svm_dsaas", "uuid": SVM_UUID}
# On ONTAP as Trident v26.06.0 left it (tests/dr_ontap.py): bob and zoë on economy qtrees, the rest FlexVols.
ONTAP_USERS = ["alice", "Jürgen.Müller", "bob", "carol", "dave", "zoë"]


def _ontap_data() -> dict[str, list[dict[str, Any]]]:
    data = ontap_view(make_inventory(ONTAP_USERS, economy=[False, False, True, False, False, True]))
    carol = next(v for v in data["volumes"] if v["name"].startswith("dsaasprod_jupyterhub_claim_carol_"))
    carol["type"] = "dp"  # a SnapMirror destination
    alice = next(v for v in data["volumes"] if v["name"].startswith("dsaasprod_jupyterhub_claim_alice_"))
    template = {k: v for k, v in alice.items() if k not in ("uuid", "name", "comment", "nas")}
    legacy = "dsaasprod_pvc_" + str(uuid.uuid5(uuid.NAMESPACE_DNS, "legacy")).replace("-", "_")
    data["volumes"] += [
        # Made before the name template: no claim in the name or the comment.
        {**template, "uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, legacy)), "name": legacy, "comment": ""},
        {**template, "uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, "other")), "name": "other_vol", "comment": ""},
    ]
    data["cluster"] = [
        {
            "name": "a800-dc1",
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, "a800")),
            "version": {"full": "NetApp Release 9.15.1: Mon Jun 10 2024", "generation": 9, "major": 15, "minor": 1},
        }
    ]
    data["connected-clients"] = [
        {
            "svm": SVM,
            "node": {"name": "a800-01"},
            "client_ip": "10.40.0.21",
            "server_ip": "10.40.8.20",
            "protocol": "nfs4.1",
            "volume": {"name": alice["name"], "uuid": alice["uuid"]},
            "idle_duration": "PT3M12S",
        },
    ]
    return data


ONTAP_DATA = _ontap_data()


def test_the_replayed_answers_pass_netapps_own_schemas() -> None:
    from netapp_ontap.resources.cluster import ClusterSchema
    from netapp_ontap.resources.nfs_clients import NfsClientsSchema
    from netapp_ontap.resources.qtree import QtreeSchema
    from netapp_ontap.resources.quota_rule import QuotaRuleSchema
    from netapp_ontap.resources.volume import VolumeSchema

    for kind, schema in (
        ("cluster", ClusterSchema),
        ("volumes", VolumeSchema),
        ("qtrees", QtreeSchema),
        ("quota-rules", QuotaRuleSchema),
        ("connected-clients", NfsClientsSchema),
    ):
        assert ONTAP_DATA[kind]
        for record in ONTAP_DATA[kind]:
            schema().load(record, unknown=RAISE)


def test_the_operator_plans_from_ontap_itself(tls: dict[str, Path], tmp_path: Path) -> None:
    config_dir = _stack_dir(tmp_path, {"endpoint": "https://s3.dc.example.org", "bucket": BUCKET})
    env = {"DSAAS_ONTAP_USERNAME": ONTAP_USER, "DSAAS_ONTAP_PASSWORD": ONTAP_PASSWORD}
    # The directory's answer, as a file: dave left the groups, newbie joined after the disaster.
    users = tmp_path / "users.txt"
    users.write_text("\n".join([u for u in ONTAP_USERS if u != "dave"] + ["newbie"]) + "\n", encoding="utf-8")
    with OntapReplay(ONTAP_DATA, tls["cert"], tls["key"], ONTAP_USER, ONTAP_PASSWORD) as ontap:
        args = [
            "plan",
            "prod",
            "--from",
            "ontap",
            "--config-dir",
            str(config_dir),
            "--ontap-address",
            f"127.0.0.1:{ontap.port}",
            "--users",
            str(users),
        ]
        done = _run(*args, "--ontap-ca-file", str(tls["ca"]), env=env)
        refused = _run(*args, "--ontap-ca-file", str(tls["ca"]), env={**env, "DSAAS_ONTAP_PASSWORD": "wrong"})
        untrusted = _run(*args, env=env)
        no_directory = _run(*args[:-2], "--ontap-ca-file", str(tls["ca"]), env=env)
    assert done.returncode == 1, done.stderr
    assert ONTAP_PASSWORD not in done.stdout + done.stderr
    plan = yaml.safe_load((config_dir / "restore.prod.yaml").read_text())
    assert plan["source"]["kind"] == "ontap" and plan["source"]["location"].startswith("ontap://svm-dsaas-mgmt")
    homes = {h["user"]: h for h in plan["homes"]}
    settings = parse_settings(stack_settings_values("prod"))
    assert set(homes) == {"alice", "Jürgen.Müller", "bob", "carol", "zoë", None}
    for user in ("Jürgen.Müller", "bob", "zoë"):
        assert homes[user]["claim"] == restore.claim_name(user, settings) and not homes[user]["warnings"], user
    assert homes["bob"]["driver"] == "ontap-nas-economy"
    assert homes["bob"]["qtree"]["flexvol"].startswith("trident_qtree_pool_dsaasprod_")
    assert (
        homes["bob"]["qtree"]["junctionPath"] == f"/{homes['bob']['qtree']['flexvol']}/{homes['bob']['qtree']['name']}"
    )
    assert homes["bob"]["sizeBytes"] and homes["bob"]["dataLif"] == "10.40.8.20"
    assert homes["Jürgen.Müller"]["driver"] == "ontap-nas" and homes["Jürgen.Müller"]["sizeBytes"] == 20 * GIB
    assert "SnapMirror destination" in homes["carol"]["warnings"][0]
    assert "NFS clients 10.40.0.21 are connected" in homes["alice"]["warnings"][0]
    # dave's FlexVol names claim-dave in its comment, but dave is no member now: kept for a decision.
    assert homes[None]["claim"] == "claim-dave" and homes[None]["decision"] is None
    assert any("match no member" in w and "dsaasprod_pvc_" in w for w in plan["warnings"])
    assert any("have no volume or qtree" in w and "'newbie'" in w for w in plan["warnings"])
    assert not any("other_vol" in w for w in plan["warnings"])  # not the stack's
    assert refused.returncode == 2 and "ONTAP refused the credentials" in refused.stderr, refused.stderr
    assert untrusted.returncode == 2 and "--ontap-ca-file" in untrusted.stderr, untrusted.stderr
    assert no_directory.returncode == 2 and "DSAAS_LDAP_SEARCH_PASSWORD" in no_directory.stderr, no_directory.stderr
    assert "Traceback" not in refused.stderr + untrusted.stderr + no_directory.stderr


# --- the whole drill: inventory in the object store → plan → a rebuilt stack's graph ----------------


def test_disaster_drill_from_the_object_store_to_the_rebuilt_graph(
    s3: str, tls: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """50 users with tricky names on ontap-nas: the inventory CronJob's object in moto, the operator's
    `python -m tools.restore plan prod`, then `pulumi up` of a new stack from the same settings plus the
    plan (under the mocks): every user's old volume is claimed under KubeSpawner's name, with the rebuilt
    backend's UUID, before the hub starts."""
    from tests.test_restore_drill import drill_values, relative_to_project
    from tools.offline.mockgraph import run_program, unwrap

    users = tricky_users(50)
    client = _client(s3, tls["ca"], KEY_ID, SECRET)
    _reset_auth(s3, tls["ca"], "inf")
    client.create_bucket(Bucket="dsaas-drill")
    inventory = signing.sign(make_inventory(users, economy=[False] * len(users)), INVENTORY_KEY.encode())
    client.put_object(Bucket="dsaas-drill", Key="dsaas-prod/inventory/latest.json", Body=json.dumps(inventory).encode())

    ca_file = project_copy(tls["ca"], "s3-ca.pem")
    config_dir = _stack_dir(tmp_path, {"endpoint": s3, "bucket": "dsaas-drill", "caFile": ca_file})
    planned = _run(
        "plan", "prod", "--config-dir", str(config_dir),
        env={"DSAAS_S3_ACCESS_KEY_ID": KEY_ID, "DSAAS_S3_SECRET_ACCESS_KEY": SECRET, signing.KEY_ENV: INVENTORY_KEY},
    )  # fmt: skip
    assert planned.returncode == 0, planned.stdout + planned.stderr  # no home needs attention
    plan_file = config_dir / "restore.prod.yaml"
    plan = yaml.safe_load(plan_file.read_text())

    values = yaml.safe_load((config_dir / "Pulumi.prod.yaml").read_text())["config"]
    graph = run_program("prod", drill_values(values, "ontap-nas", relative_to_project(plan_file)))
    claims = {
        unwrap(r.inputs)["metadata"]["name"]: r
        for r in graph.resources
        if r.type == "kubernetes:core/v1:PersistentVolumeClaim" and r.name.startswith("restore-")
    }
    hub = graph.by_name("hub-release")
    backend = next(r for r in graph.resources if r.type.endswith("TridentBackendConfig") and "nas" in r.name)
    assert sorted(claims) == sorted(h["claim"] for h in plan["homes"])
    for home in plan["homes"]:
        claim = claims[home["claim"]]
        annotations = unwrap(claim.inputs)["metadata"]["annotations"]
        assert annotations["trident.netapp.io/importOriginalName"] == home["volume"]
        assert (
            annotations["trident.netapp.io/importBackendUUID"]
            == unwrap(backend.outputs)["status"]["backendInfo"]["backendUUID"]
        )
        assert claim.urn in graph.ancestors(hub)
    with capsys.disabled():
        print(f"\ndrill: {planned.stdout.strip()}")
        print(f"drill: the rebuilt graph claims {len(claims)} homes before hub-release:")
        for home in plan["homes"]:
            print(f"drill:   {home['user']!r:>32} → {home['claim']:<60} ← {home['volume']}")
