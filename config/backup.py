"""Settings of backups and restores (`dsaas:backup`, `dsaas:restore`): the object store, the schedules,
retention, and the restore plan a rebuilt cluster imports the old homes from.

The object store's credentials are never settings: `config.loader` requires them as the Pulumi secrets
dsaas:s3AccessKeyId and dsaas:s3SecretAccessKey whenever backups are on. A highly available stack backs
up unless it says `enabled: false`: the paper's open problem is that a lost cluster loses the link from
users to their volumes, and a production stack should not be able to forget that by omission.
"""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field

from config.model import OneLine, ProjectPath, SettingsModel, SettingsProblem, project_file, stack_key

# Velero's schedule format: five cron fields (minute hour day-of-month month day-of-week).
_CRON = r"^(\S+\s+){4}\S+$"


class ObjectStoreSettings(SettingsModel):
    """An S3-compatible bucket: ONTAP S3, StorageGRID or any S3."""

    endpoint: AnyHttpUrl = Field(
        description="S3 endpoint URL, e.g. https://s3.dc.example.org (HTTPS: credentials and homes cross it)."
    )
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description="Bucket name (S3 rules).")
    region: str = Field(default="us-east-1", pattern=r"^[a-z0-9-]{1,32}$", description="Region the endpoint signs for.")
    path_style: bool = Field(
        default=True,
        description="Path-style addressing (https://host/bucket); ONTAP S3 and StorageGRID without "
        "wildcard DNS need it.",
    )
    ca_file: ProjectPath | None = Field(
        default=None, description="PEM CA bundle that signed the endpoint's certificate (project-relative)."
    )
    prefix: str = Field(
        default="",
        pattern=r"^([a-z0-9][a-z0-9._-]{0,62}(/[a-z0-9][a-z0-9._-]{0,62})*)?$",
        description="Folder inside the bucket for this stack (default: the cluster name).",
    )


class BackupSettings(SettingsModel):
    """Velero backups of the hub namespace and its volumes, the hub database and the volume inventory."""

    enabled: bool | None = Field(
        default=None,
        description="Back up at all; default: on when dsaas:highAvailability is true (production-like).",
    )
    object_store: ObjectStoreSettings | None = Field(default=None, description="Where backups are written.")
    schedule: OneLine = Field(
        default="0 1 * * *", pattern=_CRON, description="When Velero backs up the hub namespace (cron, UTC)."
    )
    retention_days: int = Field(default=30, ge=1, le=3650, description="How long each backup is kept, days.")
    database_schedule: OneLine = Field(
        default="*/30 * * * *", pattern=_CRON, description="When the hub database is dumped (cron, UTC)."
    )
    inventory_schedule: OneLine = Field(
        default="15 * * * *",
        pattern=_CRON,
        description="When the user → claim → volume inventory is written to the object store (cron, UTC).",
    )


class RestoreSettings(SettingsModel):
    """A rebuilt cluster's way back to its users' homes."""

    plan: ProjectPath | None = Field(
        default=None,
        description="Restore plan from `python -m tools.restore plan <stack>` (e.g. config/restore.prod.yaml): "
        "its homes are imported before the hub starts.",
    )


def backups_enabled(backup: BackupSettings, high_availability: bool) -> bool:
    return high_availability if backup.enabled is None else backup.enabled


def check_backup(backup: BackupSettings, high_availability: bool) -> list[SettingsProblem]:
    problems: list[SettingsProblem] = []
    if backups_enabled(backup, high_availability) and backup.object_store is None:
        why = "a highly available stack backs up by default" if backup.enabled is None else "backups are on"
        problems.append(
            SettingsProblem(
                key=stack_key("backup", "objectStore"),
                problem=f"{why}, but no object store is named, so nothing would outlive a lost cluster.",
                fix="add objectStore: {endpoint: https://s3.example.org, bucket: dsaas-backups} (check it with "
                "`python -m tools.s3_check <stack>`), or set dsaas:backup.enabled: false to go without knowingly.",
            )
        )
    store = backup.object_store
    if store is not None and store.ca_file is not None and not project_file(store.ca_file).is_file():
        problems.append(
            SettingsProblem(
                key=stack_key("backup", "objectStore", "caFile"),
                problem=f"{store.ca_file} is not a file in the project.",
                fix="commit the PEM CA bundle that signed the endpoint's certificate and name it here.",
            )
        )
    return problems


def check_restore(restore: RestoreSettings) -> list[SettingsProblem]:
    if restore.plan is not None and not project_file(restore.plan).is_file():
        return [
            SettingsProblem(
                key=stack_key("restore", "plan"),
                problem=f"{restore.plan} is not a file in the project.",
                fix="write it with `python -m tools.restore plan <stack>`, review and commit it, or remove the key.",
            )
        ]
    return []


__all__ = [
    "BackupSettings",
    "ObjectStoreSettings",
    "RestoreSettings",
    "backups_enabled",
    "check_backup",
    "check_restore",
]
