"""Backup rules: a production-like cluster backs up, and only over TLS to its object store.

Backups are recognised by what the backup component deploys, robustly: a Helm release of the `velero`
chart (its values carry the BackupStorageLocations), a Velero `BackupStorageLocation` object, or the
CronJob that writes the user → claim → volume inventory to the object store. The S3 endpoints checked are
Velero's `configuration.backupStorageLocation[].config.s3Url` (chart values) or `spec.config.s3Url` (a BSL
object), and any endpoint a CronJob or Job is given (an `*ENDPOINT*`/`*S3*URL*` environment variable or an
`--endpoint-url` argument). S3 credentials as secrets are `secrets-are-secret`'s concern (secrets.py).
Backups never include Secrets (`backups-exclude-secrets`): read access to the bucket must not be a master key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from .common import control_plane_vms, label, of_type, path, releases, walk

VELERO_CHART = "velero"
BACKUP_STORAGE_LOCATION = "kubernetes:velero.io/v1:BackupStorageLocation"
VELERO_SCHEDULE = "kubernetes:velero.io/v1:Schedule"
VELERO_BACKUP = "kubernetes:velero.io/v1:Backup"
JOB_TYPES = ("kubernetes:batch/v1:CronJob", "kubernetes:batch/v1:Job")
HA_CONTROL_PLANES = 3
ENDPOINT_ENV = re.compile(r"(ENDPOINT|S3_?URL|S3_?HOST)", re.IGNORECASE)
ENDPOINT_ARG = re.compile(r"--endpoint(?:-url)?[= ](\S+)")


def velero_releases(args: StackValidationArgs) -> list[PolicyResource]:
    return [r for r in releases(args) if path(r.props, "chart") == VELERO_CHART]


def inventory_jobs(args: StackValidationArgs) -> list[PolicyResource]:
    return [r for t in JOB_TYPES for r in of_type(args, t) if "inventory" in r.name]


def backups_configured(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    control_planes = sorted(control_plane_vms(args), key=lambda vm: vm.name)
    if len(control_planes) < HA_CONTROL_PLANES:
        return  # a lab; the settings already make a highly available stack back up by default
    if velero_releases(args) or of_type(args, BACKUP_STORAGE_LOCATION) or inventory_jobs(args):
        return
    report_violation(
        f"{len(control_planes)} control-plane VMs make this a production-like cluster, but the stack deploys no "
        "backups (no Velero release, no BackupStorageLocation, no volume inventory CronJob): a lost cluster "
        "loses the map from users to their ONTAP volumes, and a lost hub database the users' servers and "
        "tokens. Fix: set dsaas:backup.objectStore (check it with `python -m tools.s3_check <stack>`) and "
        "remove dsaas:backup.enabled: false.",
        control_planes[0].urn,
    )


def _locations(resource: PolicyResource) -> list[tuple[str, Any]]:
    """(where, s3Url) of each backup storage location a Velero release or BSL object configures."""
    if resource.resource_type == BACKUP_STORAGE_LOCATION:
        return [("spec.config.s3Url", path(resource.props, "spec", "config", "s3Url"))]
    locations = path(resource.props, "values", "configuration", "backupStorageLocation")
    if isinstance(locations, dict):  # chart releases before 5.0 took a single location
        locations = [locations]
    found = []
    for index, location in enumerate(locations or []):
        where = f"values.configuration.backupStorageLocation[{index}].config.s3Url"
        found.append((where, path(location, "config", "s3Url")))
    return found


def _job_endpoints(job: PolicyResource) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for trail, value in walk(job.props):
        if not isinstance(value, str):
            continue
        if trail[-1:] == ("value",) and len(trail) >= 3 and trail[-3] == "env":
            name = path(job.props, *[int(t) if t.isdigit() else t for t in trail[:-1]], "name")
            if isinstance(name, str) and ENDPOINT_ENV.search(name):
                found.append((f"env {name}", value))
        for match in ENDPOINT_ARG.finditer(value):
            found.append((".".join(trail), match.group(1)))
    return found


def object_store_over_tls(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    checked: list[tuple[PolicyResource, str, str]] = []
    for resource in [*velero_releases(args), *of_type(args, BACKUP_STORAGE_LOCATION)]:
        checked.extend((resource, where, url) for where, url in _locations(resource) if isinstance(url, str))
    for job in (r for t in JOB_TYPES for r in of_type(args, t)):
        checked.extend((job, where, url) for where, url in _job_endpoints(job))
    for resource, where, url in checked:
        if url.lower().startswith("https://"):
            continue
        report_violation(
            f"{label(resource)} sends backups to {url} ({where}) without TLS: the object store's credentials and "
            "every backed-up home directory cross the network in clear, and anyone in the path can alter a "
            "backup before it is restored. Fix: serve the object store over https, set "
            "dsaas:backup.objectStore.endpoint to https://… and dsaas:backup.objectStore.caFile to its CA (check "
            "it with `python -m tools.s3_check <stack>`). A lab stack may accept this only by setting this rule "
            'to advisory in the pack\'s config (--policy-pack-config, {"object-store-over-tls": "advisory"}).',
            resource.urn,
        )


def _backup_specs(resource: PolicyResource) -> list[tuple[str, Any]]:
    """(where, Backup spec) of every backup a Velero release, Schedule or Backup object would take."""
    if resource.resource_type == VELERO_BACKUP:
        return [("spec", path(resource.props, "spec"))]
    if resource.resource_type == VELERO_SCHEDULE:
        return [("spec.template", path(resource.props, "spec", "template"))]
    schedules = path(resource.props, "values", "schedules")
    if not isinstance(schedules, Mapping):  # policy inputs are read-only proxies, not dicts
        return []
    return [(f"values.schedules.{name}.template", path(s, "template")) for name, s in sorted(schedules.items())]


def _names(value: Any) -> set[str]:
    """Lower-case resource names of a Velero include/exclude list (`secrets`, `secrets.` and `Secret` alike)."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        return set()
    return {str(item).lower().rstrip(".").removesuffix("s") + "s" if item != "*" else "*" for item in value}


def includes_secrets(spec: Any) -> bool:
    """Whether a Velero Backup spec copies the Secrets of the namespaces it backs up.

    Velero 1.18 (Backup CRD): `includedResources` / `includedNamespaceScopedResources` empty or `*` mean
    every type; `excludedResources` / `excludedNamespaceScopedResources` drop types, `*` drops all."""
    if not isinstance(spec, Mapping):
        return True  # unknown or unreadable: assume the worst
    included = _names(spec.get("includedResources")) | _names(spec.get("includedNamespaceScopedResources"))
    excluded = _names(spec.get("excludedResources")) | _names(spec.get("excludedNamespaceScopedResources"))
    if "secrets" in excluded or "*" in excluded:
        return False
    return not included or "*" in included or "secrets" in included


def backups_exclude_secrets(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    found = [*velero_releases(args), *of_type(args, VELERO_SCHEDULE), *of_type(args, VELERO_BACKUP)]
    for resource in found:
        for where, spec in _backup_specs(resource):
            if not includes_secrets(spec):
                continue
            report_violation(
                f"{label(resource)} backs up Secrets ({where}): the hub's cookie secret, proxy token, LDAP search "
                "password and TLS key would sit in the bucket, and anyone who can read it could forge an admin "
                "login. Pulumi recreates every one of them, so a backup needs none. Fix: add `secrets` to the "
                "template's excludedResources (components/backup_render.py renders it so).",
                resource.urn,
            )


POLICIES = [
    StackValidationPolicy(
        name="backups-configured",
        description="A cluster with a highly available control plane backs up its hub and user volumes.",
        validate=backups_configured,
        enforcement_level=EnforcementLevel.ADVISORY,
    ),
    StackValidationPolicy(
        name="object-store-over-tls",
        description="Backups and the volume inventory reach the object store only over https.",
        validate=object_store_over_tls,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    StackValidationPolicy(
        name="backups-exclude-secrets",
        description="No Velero backup or schedule copies Kubernetes Secrets to the object store.",
        validate=backups_exclude_secrets,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
]
