"""The backup rules (backups-configured, object-store-over-tls) and S3 credentials in secrets-are-secret,
on the recorded prod graph plus backup resources in the shapes the backup component registers: a Helm
release of Velero's chart (vmware-tanzu/helm-charts `velero`: `configuration.backupStorageLocation[]`
with `config.s3Url`, `credentials.secretContents.cloud` an AWS credentials file) and the inventory CronJob."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dsaas_guardrails import POLICIES, backup, secrets
from tests.test_policies import SECRET, named, violations
from tools.offline.mockgraph import Graph, RecordedResource

CREDENTIALS_FILE = "[default]\naws_access_key_id=AKIAEXAMPLE\naws_secret_access_key=wJalrEXAMPLEKEY\n"


@pytest.fixture
def prod(graphs: dict[str, Graph]) -> list[RecordedResource]:
    return copy.deepcopy(graphs["prod"].resources)


def _urn(like: RecordedResource, type_: str, name: str) -> str:
    return f"{like.urn.split('::')[0]}::{like.urn.split('::')[1]}::{type_}::{name}"


def velero_values(s3_url: str = "https://s3.dc.example.org", cloud: str = CREDENTIALS_FILE) -> dict[str, Any]:
    return {
        "configuration": {
            "backupStorageLocation": [
                {
                    "name": "default",
                    "provider": "aws",
                    "bucket": "dsaas-prod-backups",
                    "prefix": "dsaas-prod",
                    "default": True,
                    "config": {
                        "region": "us-east-1",
                        "s3ForcePathStyle": "true",
                        "s3Url": s3_url,
                        "checksumAlgorithm": "",
                    },
                }
            ],
        },
        "credentials": {"useSecret": True, "secretContents": {"cloud": cloud}},
        "snapshotsEnabled": True,
    }


def velero(prod: list[RecordedResource], values: dict[str, Any], *, secret: bool = True) -> RecordedResource:
    hub = named(prod, "hub-release")
    type_ = "kubernetes:helm.sh/v3:Release"
    return RecordedResource(
        urn=_urn(hub, type_, "backup-velero"),
        type=type_,
        name="backup-velero",
        parent="",
        custom=True,
        provider=hub.provider,
        dependencies=[],
        inputs={
            "chart": "velero",
            "version": "11.1.1",
            "namespace": "velero",
            "values": {**SECRET, "value": values} if secret else values,
        },
    )


def inventory(
    prod: list[RecordedResource], env: list[dict[str, Any]], name: str = "backup-inventory"
) -> RecordedResource:
    hub = named(prod, "hub-release")
    type_ = "kubernetes:batch/v1:CronJob"
    container = {"name": "inventory", "image": "registry.example.org/dsaas/inventory:1.0.0", "env": env}
    return RecordedResource(
        urn=_urn(hub, type_, name),
        type=type_,
        name=name,
        parent="",
        custom=True,
        provider=hub.provider,
        dependencies=[],
        inputs={
            "metadata": {"name": "dsaas-inventory", "namespace": "jupyterhub"},
            "spec": {
                "schedule": "15 * * * *",
                "jobTemplate": {"spec": {"template": {"spec": {"containers": [container], "restartPolicy": "Never"}}}},
            },
        },
    )


SECRET_REF: dict[str, Any] = {"valueFrom": {"secretKeyRef": {"name": "dsaas-s3", "key": "secretAccessKey"}}}


def test_the_pack_registers_the_backup_rules_with_their_levels() -> None:
    levels = {p.name: str(getattr(p.enforcement_level, "value", None)) for p in POLICIES}
    assert levels["backups-configured"] == "advisory" and levels["object-store-over-tls"] == "mandatory"


# --- backups-configured ------------------------------------------------------------------------------


def test_a_highly_available_stack_without_backups_is_advised(prod: list[RecordedResource]) -> None:
    bare = [r for r in prod if "velero" not in r.name and "inventory" not in r.name]
    ((message, urn),) = violations(backup.backups_configured, bare)
    assert "3 control-plane VMs" in message and "dsaas:backup.objectStore" in message and "Fix:" in message
    assert urn.endswith("cp-1")


@pytest.mark.parametrize("kind", ["velero-release", "inventory-cronjob"])
def test_a_velero_release_or_the_inventory_counts_as_backups(prod: list[RecordedResource], kind: str) -> None:
    extra = velero(prod, velero_values()) if kind == "velero-release" else inventory(prod, [])
    assert violations(backup.backups_configured, [*prod, extra]) == []


def test_a_velero_release_under_another_name_is_recognised_by_its_chart(prod: list[RecordedResource]) -> None:
    release = velero(prod, velero_values())
    release.name, release.urn = "dr", release.urn.replace("backup-velero", "dr")
    assert violations(backup.backups_configured, [*prod, release]) == []


def test_a_lab_with_one_control_plane_is_not_asked(graphs: dict[str, Graph]) -> None:
    assert violations(backup.backups_configured, graphs["dev"].resources) == []


# --- object-store-over-tls ---------------------------------------------------------------------------


def test_https_locations_and_jobs_pass(prod: list[RecordedResource]) -> None:
    job = inventory(prod, [{"name": "S3_ENDPOINT", "value": "https://s3.dc.example.org"}])
    assert violations(backup.object_store_over_tls, [*prod, velero(prod, velero_values()), job]) == []


def test_a_velero_location_over_http_is_refused_with_the_lab_downgrade(prod: list[RecordedResource]) -> None:
    release = velero(prod, velero_values(s3_url="http://s3.dc.example.org:8080"))
    ((message, urn),) = violations(backup.object_store_over_tls, [*prod, release])
    assert "http://s3.dc.example.org:8080" in message
    assert "values.configuration.backupStorageLocation[0].config.s3Url" in message
    assert "dsaas:backup.objectStore.endpoint" in message and '{"object-store-over-tls": "advisory"}' in message
    assert urn == release.urn


def test_a_backup_storage_location_object_over_http_is_refused(prod: list[RecordedResource]) -> None:
    hub = named(prod, "hub-release")
    type_ = "kubernetes:velero.io/v1:BackupStorageLocation"
    bsl = RecordedResource(
        urn=_urn(hub, type_, "backup-location"),
        type=type_,
        name="backup-location",
        parent="",
        custom=True,
        provider=hub.provider,
        dependencies=[],
        inputs={"spec": {"provider": "aws", "config": {"s3Url": "http://10.0.0.5"}}},
    )
    ((message, _),) = violations(backup.object_store_over_tls, [*prod, bsl])
    assert "spec.config.s3Url" in message


@pytest.mark.parametrize(
    "env",
    [
        [{"name": "S3_ENDPOINT", "value": "http://s3.dc.example.org"}],
        [{"name": "AWS_ENDPOINT_URL_S3", "value": "http://s3.dc.example.org"}],
    ],
)
def test_an_inventory_job_over_http_is_refused(prod: list[RecordedResource], env: list[dict[str, Any]]) -> None:
    ((message, urn),) = violations(backup.object_store_over_tls, [*prod, inventory(prod, env)])
    assert f"env {env[0]['name']}" in message and urn.endswith("backup-inventory")


def test_a_job_given_an_http_endpoint_argument_is_refused(prod: list[RecordedResource]) -> None:
    job = inventory(prod, [])
    container = job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    container["args"] = ["aws s3 cp /tmp/inventory.json s3://b/x --endpoint-url http://s3.dc.example.org"]
    ((message, _),) = violations(backup.object_store_over_tls, [*prod, job])
    assert "http://s3.dc.example.org" in message


# --- S3 credentials only as secrets --------------------------------------------------------------------


def test_velero_credentials_inside_secret_values_pass(prod: list[RecordedResource]) -> None:
    assert violations(secrets.secrets_are_secret, [*prod, velero(prod, velero_values())]) == []


def test_velero_credentials_in_plain_values_are_a_violation(prod: list[RecordedResource]) -> None:
    release = velero(prod, velero_values(), secret=False)
    ((message, urn),) = violations(secrets.secrets_are_secret, [*prod, release])
    assert "values.credentials.secretContents.cloud (an S3 credentials file)" in message and urn == release.urn


def test_a_job_with_the_secret_key_in_its_env_is_a_violation(prod: list[RecordedResource]) -> None:
    env = [
        {"name": "AWS_ACCESS_KEY_ID", **SECRET_REF},
        {"name": "AWS_SECRET_ACCESS_KEY", "value": "wJalrEXAMPLEKEY"},
    ]
    ((message, _),) = violations(secrets.secrets_are_secret, [*prod, inventory(prod, env)])
    assert "(env AWS_SECRET_ACCESS_KEY)" in message and "AWS_ACCESS_KEY_ID" not in message


def test_a_job_reading_its_keys_from_a_kubernetes_secret_passes(prod: list[RecordedResource]) -> None:
    env = [{"name": "AWS_ACCESS_KEY_ID", **SECRET_REF}, {"name": "AWS_SECRET_ACCESS_KEY", **SECRET_REF}]
    assert violations(secrets.secrets_are_secret, [*prod, inventory(prod, env)]) == []


def test_an_env_map_in_chart_values_is_checked_too(prod: list[RecordedResource]) -> None:
    values = velero_values()
    values["configuration"]["extraEnvVars"] = {"AWS_SECRET_ACCESS_KEY": "wJalrEXAMPLEKEY"}
    ((message, _),) = violations(secrets.secrets_are_secret, [*prod, velero(prod, values, secret=False)])
    assert "values.configuration.extraEnvVars.AWS_SECRET_ACCESS_KEY" in message


# --- backups-exclude-secrets (security review, issue 19) ---------------------------------------------


def test_the_prod_stack_backs_up_no_secrets(graphs: dict[str, Graph]) -> None:
    # The recorded prod graph: the component's real Velero release, which must leave Secrets out.
    assert violations(backup.backups_exclude_secrets, graphs["prod"].resources) == []


def _with_schedule(prod: list[RecordedResource], template: dict[str, Any]) -> list[RecordedResource]:
    values = velero_values()
    values["schedules"] = {"hub": {"schedule": "0 1 * * *", "template": template}}
    return [*prod, velero(prod, values)]


@pytest.mark.parametrize(
    "template",
    [
        {"includedNamespaces": ["jupyterhub"]},
        {"includedNamespaces": ["jupyterhub"], "excludedResources": ["pods"]},
        {"includedNamespaces": ["jupyterhub"], "includedResources": ["*"], "excludedResources": ["configmaps"]},
        {"includedNamespaces": ["jupyterhub"], "includedNamespaceScopedResources": ["secrets", "pods"]},
    ],
)
def test_a_schedule_that_copies_secrets_fails_the_stack(prod: list[RecordedResource], template: dict[str, Any]) -> None:
    ((message, urn),) = violations(backup.backups_exclude_secrets, _with_schedule(prod, template))
    assert "values.schedules.hub.template" in message and "excludedResources" in message
    assert urn.endswith("::backup-velero")
    levels = {p.name: str(getattr(p.enforcement_level, "value", None)) for p in POLICIES}
    assert levels["backups-exclude-secrets"] == "mandatory"


@pytest.mark.parametrize(
    "template",
    [
        {"includedNamespaces": ["jupyterhub"], "excludedResources": ["secrets"]},
        {"includedNamespaces": ["jupyterhub"], "excludedNamespaceScopedResources": ["Secret"]},
        {"includedNamespaces": ["jupyterhub"], "includedResources": ["persistentvolumeclaims", "persistentvolumes"]},
    ],
)
def test_a_schedule_without_secrets_passes(prod: list[RecordedResource], template: dict[str, Any]) -> None:
    assert violations(backup.backups_exclude_secrets, _with_schedule(prod, template)) == []


def test_a_velero_schedule_object_is_checked_too(prod: list[RecordedResource]) -> None:
    hub = named(prod, "hub-release")
    type_ = backup.VELERO_SCHEDULE
    schedule = RecordedResource(
        urn=_urn(hub, type_, "nightly"),
        type=type_,
        name="nightly",
        parent="",
        custom=True,
        provider=hub.provider,
        dependencies=[],
        inputs={"spec": {"schedule": "0 1 * * *", "template": {"includedNamespaces": ["jupyterhub"]}}},
    )
    ((message, _),) = violations(backup.backups_exclude_secrets, [*prod, schedule])
    assert "nightly (Schedule) backs up Secrets (spec.template)" in message
