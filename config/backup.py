"""Settings of backups and restores (`dsaas:backup`, `dsaas:restore`): the object store, the schedules,
retention, and the restore plan a rebuilt cluster imports the old homes from.

The object store's credentials are never settings: `config.loader` requires them as the Pulumi secrets
dsaas:s3AccessKeyId and dsaas:s3SecretAccessKey whenever backups are on. A highly available stack backs
up unless it says `enabled: false`: the paper's open problem is that a lost cluster loses the link from
users to their volumes, and a production stack should not be able to forget that by omission.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AnyHttpUrl, Field, StrictBool, StrictInt, model_validator

from config.model import ProjectPath, SettingsModel, SettingsProblem, check_project_file, stack_key
from config.restore_plan import MAX_PLAN_BYTES

# Velero's and CronJob's schedule format: five cron fields (minute hour day-of-month month day-of-week),
# each `*`, a number, a range or a list of them, with an optional /step; months and weekdays by name too.
_CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_CRON_ITEM = re.compile(r"(\*|\?|[0-9a-z]{1,3}(-[0-9a-z]{1,3})?)(/[0-9]{1,2})?", re.ASCII)


def _cron_value(text: str, low: int, names: tuple[str, ...]) -> int:
    if text.isdigit():
        return int(text)
    if text in names:
        return names.index(text) + (low if low == 1 else 0)
    raise ValueError(text)


def _cron(value: str) -> str:
    """Five fields, each in range, separated by plain spaces (a non-breaking space is not one to cron)."""
    fields = value.split(" ")
    fields = [f for f in fields if f]
    hint = "must be five cron fields (minute hour day-of-month month day-of-week) like 0 1 * * *"
    if len(fields) != 5 or not value.isascii():
        raise ValueError(f"{hint}, separated by plain spaces")
    for field_text, (what, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for item in field_text.lower().split(","):
            found = _CRON_ITEM.fullmatch(item)
            if not found:
                raise ValueError(f"{hint}: the {what} field is not `*`, a number, a range or a list")
            base, _, step = item.partition("/")
            try:
                bounds = [] if base in ("*", "?") else [_cron_value(part, low, names) for part in base.split("-")]
            except ValueError:
                raise ValueError(f"{hint}: the {what} field holds something that is no {what}") from None
            if any(not low <= number <= high for number in bounds) or (len(bounds) == 2 and bounds[0] > bounds[1]):
                raise ValueError(f"{hint}: the {what} field must stay within {low}-{high}")
            if step and not 1 <= int(step) <= high:
                raise ValueError(f"{hint}: the {what} field's /step must be 1-{high}")
            if base == "?" and what not in ("day of month", "day of week"):
                raise ValueError(f"{hint}: `?` is only for a day field")
    return value


def _endpoint(value: AnyHttpUrl) -> AnyHttpUrl:
    if value.username or value.password:
        # It would be rendered in clear into CronJobs and Velero's configuration.
        raise ValueError(
            "carries credentials (user:secret@): remove them and set dsaas:s3AccessKeyId and "
            "dsaas:s3SecretAccessKey as Pulumi secrets"
        )
    if value.query or value.fragment:
        raise ValueError("must be the endpoint alone, without ?query or #fragment")
    if value.scheme != "https":
        # Refused here, not only by the policy pack's object-store-over-tls (which a pack config can
        # downgrade): the backups carry every home and the hub database, and the requests their keys.
        raise ValueError(
            "is plain http: every backed-up home, the hub database and the signed S3 requests would cross "
            "the network in clear. Serve S3 over https (ONTAP S3 and StorageGRID do) and set "
            "endpoint: https://host[:port], with caFile for a private CA"
        )
    return value


_S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_S3_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def _bucket(value: str) -> str:
    """S3's bucket naming rules beyond the characters
    (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html)."""
    if ".." in value or ".-" in value or "-." in value:
        raise ValueError("must not hold two adjacent periods or a period next to a hyphen (S3 naming rules)")
    if re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+", value):
        raise ValueError("must not look like an IP address (S3 naming rules)")
    if value.startswith(_S3_RESERVED_PREFIXES) or value.endswith(_S3_RESERVED_SUFFIXES):
        raise ValueError("uses a prefix or suffix S3 reserves (xn--, sthree-, -s3alias, --ol-s3, ...)")
    return value


Cron = Annotated[str, AfterValidator(_cron)]


class ServerSideEncryption(StrEnum):
    """S3 server-side encryption of every object written (the `x-amz-server-side-encryption` header)."""

    AES256 = "AES256"
    """Keys the store manages (SSE-S3); StorageGRID supports it."""
    KMS = "aws:kms"
    """A KMS key (SSE-KMS), `kmsKeyId` or the store's default KMS key; AWS S3 and KMS-backed stores only."""


class ObjectStoreSettings(SettingsModel):
    """An S3-compatible bucket: ONTAP S3, StorageGRID or any S3."""

    endpoint: Annotated[AnyHttpUrl, AfterValidator(_endpoint)] = Field(
        description="S3 endpoint URL, e.g. https://s3.dc.example.org; https only (credentials and homes cross it)."
    )
    bucket: Annotated[str, AfterValidator(_bucket)] = Field(
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description="Bucket name (S3 rules)."
    )
    region: str = Field(default="us-east-1", pattern=r"^[a-z0-9-]{1,32}$", description="Region the endpoint signs for.")
    path_style: StrictBool = Field(
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
    server_side_encryption: ServerSideEncryption | None = Field(
        default=None,
        description="Encrypt every object at rest: AES256 (store-managed keys) or aws:kms (with kmsKeyId). "
        "Velero and the backup jobs send it with every upload; leave it unset on a store that encrypts "
        "the bucket's volume itself (ONTAP S3 on an NVE/NAE volume).",
    )
    kms_key_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9:/_.+=@-]{1,2048}$",
        description="KMS key ID, ARN or alias/<name> for serverSideEncryption: aws:kms.",
    )

    @model_validator(mode="after")
    def _kms_key_needs_kms(self) -> ObjectStoreSettings:
        if self.kms_key_id is not None and self.server_side_encryption is not ServerSideEncryption.KMS:
            raise ValueError(
                "kmsKeyId is set but serverSideEncryption is not aws:kms: set serverSideEncryption: aws:kms "
                "to encrypt with that key, or remove kmsKeyId"
            )
        return self


class BackupSettings(SettingsModel):
    """Velero backups of the hub namespace and its volumes, the hub database and the volume inventory."""

    enabled: StrictBool | None = Field(
        default=None,
        description="Back up at all; default: on when dsaas:highAvailability is true (production-like).",
    )
    object_store: ObjectStoreSettings | None = Field(default=None, description="Where backups are written.")
    schedule: Cron = Field(
        default="0 1 * * *",
        description="When Velero backs up the hub namespace (five-field cron, UTC).",
    )
    retention_days: StrictInt = Field(default=30, ge=1, le=3650, description="How long each backup is kept, days.")
    database_schedule: Cron = Field(
        default="*/30 * * * *",
        description="When the hub database is dumped (five-field cron, UTC).",
    )
    inventory_schedule: Cron = Field(
        default="15 * * * *",
        description="When the user → claim → volume inventory is written to the object store (five-field cron, UTC).",
    )


class RestoreSettings(SettingsModel):
    """A rebuilt cluster's way back to its users' homes."""

    plan: ProjectPath | None = Field(
        default=None,
        description="Restore plan from `python -m tools.restore plan <stack>` (e.g. config/restore.prod.yaml): "
        "its homes are imported before the hub starts.",
    )
    generation: StrictInt = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="Raise by one after every restore of the hub database or the cluster: the hub gets a new "
        "cookie secret, so no login cookie forged from an old backup is accepted (docs/restore.md).",
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
    if store is not None and store.ca_file is not None:
        problems.extend(check_project_file(stack_key("backup", "objectStore", "caFile"), store.ca_file, "pem"))
    return problems


def check_restore(restore: RestoreSettings) -> list[SettingsProblem]:
    if restore.plan is None:
        return []
    # Read as text by components.restore_render, which parses and checks it; here: inside the project, bounded.
    problems = check_project_file(stack_key("restore", "plan"), restore.plan, "text", MAX_PLAN_BYTES)
    return [
        problem.model_copy(
            update={
                "fix": "write it with `python -m tools.restore plan <stack>`, review and commit it, or remove the key."
            }
        )
        for problem in problems
    ]


__all__ = [
    "BackupSettings",
    "ObjectStoreSettings",
    "RestoreSettings",
    "ServerSideEncryption",
    "backups_enabled",
    "check_backup",
    "check_restore",
]
