"""Backups: the scripts run for real (fake kubectl/aws on PATH, a real SQLite database under writes),
the rendered objects against kubernetes-validate and the z2jh chart, and the recorded graph."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from botocore.exceptions import ClientError

from components import backup_render as render
from components import trident_render
from components.hub_render import HUB_NAMESPACE
from config import versions
from config.loader import StackSettingsError
from config.settings import Settings, SettingsError, parse_settings
from config.storage import NasDriver
from tests.conftest import ROOT_DIR, load_settings, require_tool, settings_values
from tools.lab.s3 import MotoS3
from tools.offline import charts
from tools.offline.mockgraph import ROOT, Graph, is_secret, kubernetes_objects, run_program, unwrap

SCRIPTS = render.SCRIPTS_DIR
CHARTS = ROOT / "tests" / "upstream" / "charts" / f"velero-{versions.VELERO_CHART_VERSION}"
FIXTURES = {
    "persistentvolumeclaims": {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "claim-alice", "namespace": "jupyterhub"},
                "spec": {"volumeName": "pvc-1234", "storageClassName": "dsaas-homes"},
            }
        ],
        "metadata": {"resourceVersion": ""},
    },
    "persistentvolumes": {"apiVersion": "v1", "kind": "List", "items": [{"kind": "PersistentVolume"}]},
    "tridentvolumes.trident.netapp.io": {"apiVersion": "v1", "kind": "List", "items": [{"kind": "TridentVolume"}]},
    "tridentbackends.trident.netapp.io": {"apiVersion": "v1", "kind": "List", "items": [{"kind": "TridentBackend"}]},
    "tridentbackendconfigs.trident.netapp.io": {"apiVersion": "v1", "kind": "List", "items": []},
}

FAKE_KUBECTL = """#!/usr/bin/env bash
# records its arguments; answers `get <resource> ... -o json` from $FIXTURES/<resource>.json
set -euo pipefail
printf '%s\\n' "$*" >>"$CALLS"
[ "$1" = get ] && [ "${*: -2}" = "-o json" ] || { echo "unexpected: $*" >&2; exit 2; }
cat "$FIXTURES/$2.json"
"""


def _run(script: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPTS / script)],
        env={"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def _fake(tmp_path: Path, name: str, body: str) -> None:
    (tmp_path / "bin").mkdir(exist_ok=True)
    tool = tmp_path / "bin" / name
    tool.write_text(body)
    tool.chmod(0o755)


@pytest.mark.parametrize("script", [p.name for p in sorted(SCRIPTS.glob("*.sh"))])
def test_scripts_are_shellcheck_clean_and_strict(script: str) -> None:
    result = subprocess.run(
        [require_tool("shellcheck"), "--severity=style", "--shell=bash", str(SCRIPTS / script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
    code = [line for line in (SCRIPTS / script).read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert code[0] == "set -euo pipefail"


def test_inventory_script_writes_exactly_the_contract(tmp_path: Path) -> None:
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    for resource, document in FIXTURES.items():
        (fixtures / f"{resource}.json").write_text(json.dumps(document))
    _fake(tmp_path, "kubectl", FAKE_KUBECTL)
    out = tmp_path / "out"
    out.mkdir()
    result = _run(
        "inventory.sh",
        {
            "CLUSTER": "dsaas-prod",
            "HUB_NAMESPACE": "jupyterhub",
            "TRIDENT_NAMESPACE": "trident",
            "OUT": str(out),
            "FIXTURES": str(fixtures),
            "CALLS": str(tmp_path / "calls"),
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    inventory = json.loads((out / "payload").read_text())
    stamp = (out / "stamp").read_text().strip()
    assert list(inventory) == [
        "format",
        "cluster",
        "written",
        "persistentVolumeClaims",
        "persistentVolumes",
        "tridentVolumes",
        "tridentBackends",
        "tridentBackendConfigs",
    ]
    assert inventory["format"] == render.INVENTORY_FORMAT == "dsaas-inventory/1"
    assert inventory["cluster"] == "dsaas-prod"
    # `written` (ISO 8601 UTC) and the object name's stamp are the same instant.
    assert inventory["written"].replace("-", "").replace(":", "") == stamp
    assert len(stamp) == 16 and stamp.endswith("Z")
    assert inventory["persistentVolumeClaims"] == FIXTURES["persistentvolumeclaims"]
    assert inventory["persistentVolumes"] == FIXTURES["persistentvolumes"]
    assert inventory["tridentVolumes"] == FIXTURES["tridentvolumes.trident.netapp.io"]
    assert inventory["tridentBackends"] == FIXTURES["tridentbackends.trident.netapp.io"]
    assert inventory["tridentBackendConfigs"] == FIXTURES["tridentbackendconfigs.trident.netapp.io"]
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == [
        "get persistentvolumeclaims -n jupyterhub -o json",
        "get persistentvolumes -o json",
        "get tridentvolumes.trident.netapp.io -n trident -o json",
        "get tridentbackends.trident.netapp.io -n trident -o json",
        "get tridentbackendconfigs.trident.netapp.io -n trident -o json",
    ]
    # Then the `sign` container, as the CronJob runs it, on jq's bytes; the planner verifies what it wrote.
    from tools.dr import signing

    key = tmp_path / "signing-key"
    key.write_text("f" * 64)
    signed = subprocess.run(
        [sys.executable, str(SCRIPTS / "sign_inventory.py")],
        env={"PATH": os.environ["PATH"], "OUT": str(out), "KEY_FILE": str(key)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert signed.returncode == 0, signed.stderr
    document = json.loads((out / "payload").read_text())
    signing.verify(document, b"f" * 64, "payload", "prod")
    assert {k: v for k, v in document.items() if k != "signature"} == inventory


def test_inventory_script_fails_when_kubectl_fails(tmp_path: Path) -> None:
    _fake(tmp_path, "kubectl", "#!/usr/bin/env bash\necho forbidden >&2\nexit 1\n")
    out = tmp_path / "out"
    out.mkdir()
    env = {"CLUSTER": "c", "HUB_NAMESPACE": "jupyterhub", "TRIDENT_NAMESPACE": "trident", "OUT": str(out)}
    result = _run("inventory.sh", env, tmp_path)
    assert result.returncode != 0
    assert not (out / "payload").exists() and not (out / "stamp").exists()


def test_upload_writes_the_stamped_object_then_latest(tmp_path: Path) -> None:
    _fake(tmp_path, "aws", '#!/usr/bin/env bash\nprintf "%s\\n" "$*" >>"$CALLS"\n')
    src = tmp_path / "src"
    src.mkdir()
    (src / "payload").write_text("{}")
    (src / "stamp").write_text("20261201T010203Z\n")
    env = {
        "S3_ENDPOINT": "https://s3.dc.example.org",
        "BUCKET": "b",
        "KEY_PREFIX": "dsaas-prod/inventory",
        "SUFFIX": ".json",
        "S3_ADDRESSING_STYLE": "path",
        "SRC": str(src),
        "CALLS": str(tmp_path / "calls"),
    }
    result = _run("upload.sh", env, tmp_path)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0] == "configure set default.s3.addressing_style path"
    assert calls[1].endswith(f"{src}/payload s3://b/dsaas-prod/inventory/20261201T010203Z.json")
    assert calls[2].endswith(f"{src}/payload s3://b/dsaas-prod/inventory/latest.json")
    assert all("--endpoint-url https://s3.dc.example.org" in call for call in calls[1:])


def test_sqlite_backup_is_consistent_while_the_hub_writes(tmp_path: Path) -> None:
    """A writer commits batches of 200 rows (one transaction each) while backups run: every backup
    passes integrity_check and holds only whole batches, which a file copy cannot promise."""
    source = (SCRIPTS / "sqlite_backup.py").read_text()
    assert ".backup(" in source and "shutil" not in source and "copyfile" not in source
    database = tmp_path / "jupyterhub.sqlite"
    with sqlite3.connect(database) as setup:
        setup.execute("CREATE TABLE rows (batch INTEGER, payload TEXT)")
    stop = threading.Event()

    def write() -> None:
        connection = sqlite3.connect(database, timeout=30)
        batch = 0
        while not stop.is_set():
            with connection:
                connection.executemany("INSERT INTO rows VALUES (?, ?)", [(batch, "x" * 200) for _ in range(200)])
            batch += 1
        connection.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        copies = []
        for index in range(5):
            result = subprocess.run(
                [sys.executable, str(SCRIPTS / "sqlite_backup.py"), str(database)],
                capture_output=True,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            assert result.stdout.startswith(b"SQLite format 3\x00")
            copy = tmp_path / f"copy-{index}.sqlite"
            copy.write_bytes(result.stdout)
            copies.append(copy)
    finally:
        stop.set()
        writer.join()
    for copy in copies:
        with sqlite3.connect(copy) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            sizes = connection.execute("SELECT batch, count(*) FROM rows GROUP BY batch").fetchall()
            assert all(count == 200 for _, count in sizes), sizes


def test_sqlite_backup_refuses_a_missing_database(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "sqlite_backup.py"), str(tmp_path / "missing.sqlite")],
        capture_output=True,
        check=False,
    )
    assert result.returncode != 0 and result.stdout == b""
    assert not (tmp_path / "missing.sqlite").exists()


# --- rendered objects ---------------------------------------------------------------------------


def test_every_job_object_is_valid_for_every_minor() -> None:
    settings = load_settings("prod")
    documents = render.render_job_objects(settings, "-----BEGIN CERTIFICATE-----\n")
    assert {d["kind"] for d in documents} >= {"ConfigMap", "ServiceAccount", "ClusterRole", "CronJob", "Role"}
    for document in documents:
        for minor in versions.SUPPORTED_KUBERNETES_MINORS:
            kubernetes_validate.validate(document, f"{minor}.0", strict=True)


def test_inventory_rbac_lists_only_what_the_script_lists() -> None:
    """Claims only in the hub namespace, Trident's records only in Trident's, PVs the only cluster-wide
    read; every verb `list` (what `kubectl get -o json` of a kind uses), every rule's kind in the script."""
    objects = render.render_inventory_rbac()
    rules = {
        (o["kind"], o["metadata"].get("namespace")): {r for rule in o["rules"] for r in rule["resources"]}
        for o in objects
        if o["kind"] in ("Role", "ClusterRole")
    }
    assert rules == {
        ("Role", "jupyterhub"): {"persistentvolumeclaims"},
        ("Role", "trident"): {"tridentvolumes", "tridentbackends", "tridentbackendconfigs"},
        ("ClusterRole", None): {"persistentvolumes"},
    }
    assert {v for o in objects for rule in o.get("rules", []) for v in rule["verbs"]} == {"list"}
    script = (SCRIPTS / "inventory.sh").read_text()
    for kinds in rules.values():
        assert all(f"kubectl get {kind}" in script for kind in kinds)


def test_jobs_pin_their_images_and_keep_history() -> None:
    settings = load_settings("prod")
    # The inventory is collected with kubectl, then signed with the hub image's Python (its key in no other container).
    jobs = [
        ([versions.KUBECTL_IMAGE, versions.HUB_IMAGE], render.render_inventory_cronjob(settings, True)),
        ([versions.HUB_IMAGE], render.render_hub_database_cronjob(settings, True)),
    ]
    for producer_images, job in jobs:
        spec = job["spec"]
        assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        images = [c["image"] for c in pod["initContainers"] + pod["containers"]]
        assert images == [*producer_images, versions.AWS_CLI_IMAGE]
        env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
        assert env["AWS_REQUEST_CHECKSUM_CALCULATION"] == "when_required"
        assert env["KEY_PREFIX"].startswith(f"{settings.cluster.cluster_name}/")
        assert "AWS_SECRET_ACCESS_KEY" not in env and "AWS_ACCESS_KEY_ID" not in env


def test_only_the_inventory_collector_gets_a_token() -> None:
    """The token is per pod: both pods turn it off, and only the container that calls the API server
    mounts the projected one; the database job has no binding, no token and no API call."""
    settings = load_settings("prod")
    mounted = {}
    for job in (render.render_inventory_cronjob(settings, True), render.render_hub_database_cronjob(settings, True)):
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        for container in pod["initContainers"] + pod["containers"]:
            if any(m["mountPath"] == render.TOKEN_MOUNT for m in container["volumeMounts"]):
                mounted[job["metadata"]["name"]] = container["name"]
    assert mounted == {render.INVENTORY_JOB: "collect"}
    assert render.render_hub_database_account()["automountServiceAccountToken"] is False
    objects = render.render_job_objects(settings, None)
    subjects = [s["name"] for o in objects if "subjects" in o for s in o["subjects"]]
    assert render.HUB_DATABASE_JOB not in subjects
    assert "kubectl" not in (SCRIPTS / "hub-database.sh").read_text()


def test_hub_database_job_runs_beside_the_hub_on_its_volume(graphs: dict[str, Graph]) -> None:
    """The job's pod follows the hub pod (its labels, its node), mounts the hub's claim where the hub
    does and runs as the hub's uid and fsGroup, all as z2jh 4.4.0 renders the hub for prod."""
    (hub,) = [r for r in charts.releases(graphs["prod"]) if r.name == "hub-release"]
    rendered = charts.render_release(hub)
    template = rendered.get("Deployment", "hub").document["spec"]["template"]
    (term,) = render.render_hub_database_cronjob(load_settings("prod"), False)["spec"]["jobTemplate"]["spec"][
        "template"
    ]["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    (container,) = [c for c in template["spec"]["containers"] if c["name"] == render.HUB_CONTAINER]
    (volume,) = [v for v in template["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"]["claimName"] == render.HUB_DATABASE_CLAIM
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["mountPath"] == str(Path(render.HUB_SQLITE_PATH).parent)
    assert container["image"] == versions.HUB_IMAGE
    assert container["securityContext"]["runAsUser"] == render.HUB_UID
    assert container["securityContext"]["runAsGroup"] == render.HUB_GID
    assert template["spec"]["securityContext"]["fsGroup"] == render.HUB_GID
    job = render.render_hub_database_cronjob(load_settings("prod"), False)
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (copy,) = pod["initContainers"]
    assert {m["mountPath"] for m in copy["volumeMounts"]} >= {mount["mountPath"]}
    assert copy["securityContext"]["runAsUser"] == render.HUB_UID
    assert job["metadata"]["namespace"] == "jupyterhub"
    assert rendered.get("PersistentVolumeClaim", render.HUB_DATABASE_CLAIM) is not None


def test_hub_database_script_copies_the_database_without_the_api(tmp_path: Path) -> None:
    database = tmp_path / "jupyterhub.sqlite"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE users (name TEXT)")
        connection.execute("INSERT INTO users VALUES ('alice')")
    connection.close()
    _fake(tmp_path, "python3", f'#!/usr/bin/env bash\nexec {sys.executable} "$@"\n')
    _fake(tmp_path, "kubectl", "#!/usr/bin/env bash\necho called >&2\nexit 1\n")
    out = tmp_path / "out"
    out.mkdir()
    env = {"DATABASE": str(database), "SCRIPT": str(SCRIPTS / "sqlite_backup.py"), "OUT": str(out)}
    result = _run("hub-database.sh", env, tmp_path)
    assert result.returncode == 0, result.stderr
    copy = sqlite3.connect(out / "payload")
    assert copy.execute("SELECT name FROM users").fetchall() == [("alice",)]
    copy.close()
    assert len((out / "stamp").read_text().strip()) == 16
    missing = _run("hub-database.sh", {**env, "DATABASE": str(tmp_path / "none.sqlite")}, tmp_path)
    assert missing.returncode != 0 and "is the hub's volume mounted" in missing.stderr
    assert not (out / "payload.tmp").exists()


def test_velero_runs_without_cluster_admin() -> None:
    """The chart binds no cluster-admin; our roles never write a subresource (no exec) and read
    cluster-wide nothing but the cluster-scoped kinds of PV backups and the node agent's pods and claims."""
    values = render.render_velero_values(load_settings("prod"), None)
    assert values["rbac"] == {"create": True, "clusterAdministrator": False}
    objects = render.render_velero_rbac()
    for role in (o for o in objects if o["kind"] in ("Role", "ClusterRole")):
        for rule in role["rules"]:
            writes = set(rule["verbs"]) - set(render.READ_VERBS)
            assert not writes or all("/" not in r and r != "*" for r in rule["resources"]), rule
            assert "*" not in rule["verbs"] and not {"bind", "escalate", "impersonate"} & set(rule["verbs"])
    (cluster,) = [o for o in objects if o["kind"] == "ClusterRole"]
    assert not [r for rule in cluster["rules"] for r in rule["resources"] if r in ("secrets", "*", "pods/exec")]
    assert {o["kind"] for o in objects} == {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    assert {s["name"] for o in objects if "subjects" in o for s in o["subjects"]} == {render.VELERO_SERVICE_ACCOUNT}


def test_velero_values_follow_the_homes_driver() -> None:
    settings = load_settings("prod")
    values = render.render_velero_values(settings, None)
    template = values["schedules"][render.HUB_SCHEDULE]["template"]
    assert template["snapshotMoveData"] is True and template["defaultVolumesToFsBackup"] is False
    assert template["ttl"] == f"{settings.backup.retention_days * 24}h0m0s"
    assert values["configuration"]["backupStorageLocation"][0]["prefix"] == f"{settings.cluster.cluster_name}/velero"
    economy = settings.model_copy(
        update={
            "storage": settings.storage.model_copy(
                update={"homes_driver": NasDriver.ONTAP_NAS_ECONOMY, "snapshots": False}
            )
        }
    )
    template = render.render_velero_values(economy, None)["schedules"][render.HUB_SCHEDULE]["template"]
    assert template["snapshotMoveData"] is False and template["defaultVolumesToFsBackup"] is True


# --- the graph ----------------------------------------------------------------------------------


def test_no_backups_without_the_setting(graphs: dict[str, Graph]) -> None:
    assert not load_settings("dev").backups_enabled
    assert graphs["dev"].of_type("dsaas:backup:Backups") == []
    assert [r for r in charts.releases(graphs["dev"]) if r.inputs["chart"] == "velero"] == []


def test_velero_waits_for_storage_and_its_credentials_are_secret(graphs: dict[str, Graph]) -> None:
    graph = graphs["prod"]
    release = graph.by_name("backup-velero")
    ancestors = graph.ancestors(release)
    assert graph.by_name("storage-snapshot-class").urn in ancestors
    assert graph.by_name("storage-class-dsaas-homes").urn in ancestors
    secret = graph.by_name("backup-s3-credentials")
    assert secret.urn in ancestors
    assert is_secret(secret.inputs["stringData"])
    assert unwrap(release.inputs["values"])["credentials"]["existingSecret"] == render.CREDENTIALS_SECRET
    hub_secret = graph.by_name("backup-s3-credentials-hub-database")
    assert hub_secret.inputs["metadata"]["namespace"] == "jupyterhub"
    assert is_secret(hub_secret.inputs["stringData"])
    assert hub_secret.inputs["metadata"]["labels"] == {render.VELERO_EXCLUDE_LABEL: "true"}
    job = graph.by_name("backup-cronjob-jupyterhub-dsaas-hub-database")
    assert graph.by_name("hub-namespace").urn in graph.ancestors(job)
    assert hub_secret.urn in graph.ancestors(job)
    assert graph.by_name("backup-configmap-jupyterhub-dsaas-backup-scripts").urn in graph.ancestors(job)
    # Velero's roles exist before its server and node agent start.
    assert graph.by_name("backup-clusterrolebinding-dsaas-velero").urn in ancestors
    assert graph.by_name("backup-rolebinding-jupyterhub-dsaas-velero").urn in ancestors
    for job in graph.of_type("kubernetes:batch/v1:CronJob"):
        for document in kubernetes_objects(job):
            kubernetes_validate.validate(document, "1.35.0", strict=True)


def test_snapshot_class_is_velero_s(graphs: dict[str, Graph]) -> None:
    (document,) = kubernetes_objects(graphs["prod"].by_name("storage-snapshot-class"))
    assert document["metadata"]["labels"] == {trident_render.VELERO_SNAPSHOT_CLASS_LABEL: "true"}


def test_ontap_nas_volumes_name_their_claim_in_the_comment() -> None:
    settings = load_settings("prod")
    nas = trident_render.render_backend_config(settings, "ontap-nas")
    assert nas["spec"]["labels"] == {
        "dsaas.io/claim": "{{.volume.RequestName}}",
        "dsaas.io/namespace": "{{.volume.Namespace}}",
    }
    assert "labels" not in trident_render.render_backend_config(settings, "ontap-san")["spec"]


# --- security review, issue 19: the bucket is no master key -------------------------------------------


def _economy(settings: Settings) -> Settings:
    storage = settings.storage.model_copy(update={"homes_driver": NasDriver.ONTAP_NAS_ECONOMY, "snapshots": False})
    return settings.model_copy(update={"storage": storage})


def _with_store(settings: Settings, **store: Any) -> Settings:
    current = render.object_store(settings).model_dump(by_alias=True, mode="json", exclude_none=True)
    values = settings_values("prod")
    values["dsaas:backup"]["objectStore"] = {**current, **store}
    return parse_settings(values)


def test_the_hub_schedule_leaves_secrets_out_and_pods_where_nothing_needs_them() -> None:
    settings = load_settings("prod")
    template = render.render_velero_values(settings, None)["schedules"][render.HUB_SCHEDULE]["template"]
    # CSI snapshots with data movement: Velero copies claims' snapshots, no pod is read.
    assert template["excludedResources"] == ["secrets", "pods"]
    economy = render.render_velero_values(_economy(settings), None)["schedules"][render.HUB_SCHEDULE]["template"]
    # File-system backup copies a volume while it backs up the pod that mounts it: pods must stay.
    assert economy["excludedResources"] == ["secrets"]
    # Both are fields of Velero 1.18's Schedule template (the chart's CRD), not chart-only values.
    crd = yaml.safe_load((CHARTS / "crds" / "schedules.yaml").read_text())
    fields = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["template"]
    assert {"excludedResources", "includedNamespaces"} <= fields["properties"].keys()


def test_server_side_encryption_reaches_velero_and_both_jobs() -> None:
    plain = load_settings("prod")
    assert (
        "serverSideEncryption"
        not in render.render_velero_values(plain, None)["configuration"]["backupStorageLocation"][0]["config"]
    )
    settings = _with_store(plain, serverSideEncryption="aws:kms", kmsKeyId="alias/dsaas-backups")
    config = render.render_velero_values(settings, None)["configuration"]["backupStorageLocation"][0]["config"]
    assert config["serverSideEncryption"] == "aws:kms" and config["kmsKeyId"] == "alias/dsaas-backups"
    jobs = [d for d in render.render_job_objects(settings, None) if d["kind"] == "CronJob"]
    assert len(jobs) == 2
    for job in jobs:
        (upload,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e["value"] for e in upload["env"]}
        assert env["SSE"] == "aws:kms" and env["SSE_KMS_KEY_ID"] == "alias/dsaas-backups"


def test_a_kms_key_without_kms_encryption_is_a_named_settings_problem() -> None:
    with pytest.raises(SettingsError) as caught:
        _with_store(load_settings("prod"), serverSideEncryption="AES256", kmsKeyId="alias/dsaas-backups")
    assert "dsaas:backup.objectStore" in str(caught.value) and "serverSideEncryption: aws:kms" in str(caught.value)
    with pytest.raises(SettingsError, match="serverSideEncryption"):
        _with_store(load_settings("prod"), serverSideEncryption="aws:kms:dsse")


def test_each_job_mounts_its_own_credentials() -> None:
    settings = load_settings("prod")
    mounted = {}
    for job in (d for d in render.render_job_objects(settings, None) if d["kind"] == "CronJob"):
        volumes = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
        (secret,) = [v["secret"]["secretName"] for v in volumes if v["name"] == "credentials"]
        mounted[job["metadata"]["name"]] = secret
    assert mounted == {
        render.INVENTORY_JOB: render.INVENTORY_CREDENTIALS_SECRET,
        render.HUB_DATABASE_JOB: render.HUB_DATABASE_CREDENTIALS_SECRET,
    }
    assert render.CREDENTIALS_SECRET not in mounted.values()  # Velero's key never leaves Velero


def test_the_graph_has_one_secret_credentials_file_per_writer(graphs: dict[str, Graph]) -> None:
    graph = graphs["prod"]
    files = {}
    for name in ("backup-s3-credentials", "backup-s3-credentials-inventory", "backup-s3-credentials-hub-database"):
        secret = graph.by_name(name)
        assert is_secret(secret.inputs["stringData"])
        files[secret.inputs["metadata"]["name"]] = unwrap(secret.inputs["stringData"])[render.CREDENTIALS_KEY]
    assert len(set(files.values())) == 3  # three different key pairs
    assert "dsaas:s3InventoryAccessKeyId" in files[render.INVENTORY_CREDENTIALS_SECRET]
    assert "dsaas:s3HubDatabaseAccessKeyId" in files[render.HUB_DATABASE_CREDENTIALS_SECRET]


def test_the_inventory_signing_key_is_a_random_secret_mounted_only_by_the_signer(graphs: dict[str, Graph]) -> None:
    """Issue 21, item 11: RandomBytes (its ID is no secret, its hex is), in a Secret of the velero namespace
    (never in Velero's backups of the hub namespace), exported as a secret for the restore planner."""
    graph = graphs["prod"]
    key = graph.by_name("backup-inventory-signing-key")
    assert key.type == "random:index/randomBytes:RandomBytes" and key.inputs["length"] == 32
    secret = graph.by_name("backup-inventory-signing-secret")
    assert secret.inputs["metadata"]["name"] == render.INVENTORY_KEY_SECRET
    assert secret.inputs["metadata"]["namespace"] == render.BACKUP_NAMESPACE != HUB_NAMESPACE
    assert is_secret(secret.inputs["stringData"])
    cronjob = graph.by_name(f"backup-cronjob-{render.INVENTORY_JOB}")
    assert secret.urn in cronjob.dependencies
    volumes = unwrap(cronjob.inputs["spec"])["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
    mounted = {"secretName": render.INVENTORY_KEY_SECRET, "defaultMode": 0o400}
    assert {"name": "signing-key", "secret": mounted} in volumes


def test_a_missing_writer_key_is_a_named_settings_problem(stack_values: Callable[[str], dict[str, Any]]) -> None:
    values = stack_values("prod")
    del values["dsaas:s3InventoryAccessKeyId"]
    with pytest.raises(StackSettingsError) as caught:
        run_program("prod", values)
    assert "dsaas:s3InventoryAccessKeyId" in str(caught.value) and "pulumi config set" in str(caught.value)


@pytest.fixture(scope="module")
def writers_store() -> Iterator[MotoS3]:
    # Each writer's statements as an IAM user policy: moto enforces those (not bucket policies), and the
    # statements are the same ones the bucket policy gives each principal.
    statements = render.writer_statements(load_settings("prod"))
    users = {writer: {"Version": "2012-10-17", "Statement": s} for writer, s in statements.items()}
    moto = MotoS3(users).start()
    moto.client().create_bucket(Bucket=render.object_store(load_settings("prod")).bucket)
    yield moto
    moto.stop()


def _upload_for_real(tmp_path: Path, store: MotoS3, writer: str, folder: str, env: dict[str, str]) -> Any:
    # The CLI `make setup` installs in its own virtualenv (requirements-awscli.txt), first on PATH for upload.sh.
    aws_bin = ROOT_DIR / ".venv-awscli" / "bin"
    if not (aws_bin / "aws").exists():
        pytest.fail(f"{aws_bin / 'aws'} is not installed: run the README's test command (make setup installs it)")
    key = store.keys[writer]
    (tmp_path / "credentials").write_text(render.render_credentials_file(key.access_key_id, key.secret_access_key))
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "payload").write_text('{"format": "dsaas-inventory/1"}')
    (src / "stamp").write_text("20261204T010203Z\n")
    settings = load_settings("prod")
    return subprocess.run(
        ["bash", str(SCRIPTS / "upload.sh")],
        env={
            "PATH": f"{aws_bin}:{os.environ['PATH']}",
            "S3_ENDPOINT": store.url,
            "BUCKET": render.object_store(settings).bucket,
            "KEY_PREFIX": f"{render.object_prefix(settings)}/{folder}",
            "SUFFIX": ".json",
            "S3_ADDRESSING_STYLE": "path",
            "SRC": str(src),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
            "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
            "HOME": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_real_aws_cli_uploads_encrypted_with_a_put_only_key(tmp_path: Path, writers_store: MotoS3) -> None:
    settings = load_settings("prod")
    bucket, prefix = render.object_store(settings).bucket, render.object_prefix(settings)
    result = _upload_for_real(tmp_path, writers_store, render.INVENTORY_WRITER, "inventory", {"SSE": "AES256"})
    assert result.returncode == 0, result.stderr
    admin = writers_store.client()
    for name in ("20261204T010203Z", "latest"):
        head = admin.head_object(Bucket=bucket, Key=f"{prefix}/inventory/{name}.json")
        assert head["ServerSideEncryption"] == "AES256"
    # The same key can neither read back, list, nor write into another writer's folder.
    own = writers_store.client(user=render.INVENTORY_WRITER)
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("get_object", {"Key": f"{prefix}/inventory/latest.json"}),
        ("list_objects_v2", {"Prefix": f"{prefix}/"}),
        ("put_object", {"Key": f"{prefix}/hub-database/latest.sqlite", "Body": b"x"}),
        ("delete_object", {"Key": f"{prefix}/inventory/latest.json"}),
    ]
    for operation, arguments in attempts:
        with pytest.raises(ClientError, match="AccessDenied"):
            getattr(own, operation)(Bucket=bucket, **arguments)
    refused = _upload_for_real(tmp_path, writers_store, render.INVENTORY_WRITER, "velero/backups", {})
    assert refused.returncode != 0 and "AccessDenied" in refused.stderr
    velero = writers_store.client(user=render.VELERO_WRITER)
    with pytest.raises(ClientError, match="AccessDenied"):
        velero.get_object(Bucket=bucket, Key=f"{prefix}/inventory/latest.json")


def test_the_bucket_policies_in_the_docs_are_the_rendered_ones() -> None:
    text = (ROOT / "docs" / "backups.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, re.DOTALL)
    settings = load_settings("prod")
    ontap = render.render_bucket_policy(settings, {w: [f"dsaas-prod-{w}"] for w in render.writer_statements(settings)})
    grid = render.render_bucket_policy(
        settings,
        {
            w: {"AWS": f"urn:sgws:identity::12345678901234567890:user/dsaas-prod-{w}"}
            for w in render.writer_statements(settings)
        },
    )
    assert [json.loads(b) for b in blocks[:2]] == [ontap, grid]
