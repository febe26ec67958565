"""Settings of the platform's storage (`dsaas:storage`): the ONTAP SVM, Trident's backends and storage
classes, the snapshot class, and the check that snapshots are offered only where the driver has them.

ONTAP credentials are never settings: `config.loader` requires them as the Pulumi secrets
dsaas:ontapUsername and dsaas:ontapPassword. Export CIDRs are checked against the node subnet in
`config.settings`, which sees both.
"""

from __future__ import annotations

from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network

from pydantic import Field, StrictBool, StrictInt

from config.model import HostName, ProjectPath, SettingsModel, SettingsProblem, check_project_file, stack_key


class NasDriver(StrEnum):
    """Trident's ONTAP NFS drivers for user homes."""

    ONTAP_NAS = "ontap-nas"
    """One FlexVol per volume: CSI snapshots, clones, SnapMirror. Up to ~1,000 volumes per node pair."""
    ONTAP_NAS_ECONOMY = "ontap-nas-economy"
    """Qtrees inside shared FlexVols: far more volumes, but no CSI snapshots or clones."""


class ReclaimPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class OntapSettings(SettingsModel):
    """The ONTAP SVM that serves the platform. Credentials are the secrets dsaas:ontapUsername/Password."""

    management_lif: HostName = Field(
        min_length=1, description="SVM (or cluster) management LIF: IP address or host name."
    )
    data_lif: IPv4Address = Field(description="NFS data LIF of the SVM, reachable from the node subnet.")
    svm: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,47}$", description="Storage virtual machine (vserver) name.")
    ca_file: ProjectPath | None = Field(
        default=None,
        description="PEM CA bundle that signed the management LIF's certificate (project-relative), for the "
        "program's own ONTAP calls (a restore's export policy); default: the system's CAs.",
    )


class StorageSettings(SettingsModel):
    """Trident backends, storage classes and snapshot class."""

    ontap: OntapSettings
    homes_driver: NasDriver = Field(
        default=NasDriver.ONTAP_NAS,
        description="Trident driver for user homes: ontap-nas (snapshots) or ontap-nas-economy (scale).",
    )
    homes_reclaim_policy: ReclaimPolicy = Field(
        default=ReclaimPolicy.RETAIN,
        description="What Kubernetes does with a home volume when its claim goes: Retain keeps user data.",
    )
    storage_prefix: str = Field(
        default="dsaas",
        pattern=r"^[a-z][a-z0-9]{0,11}$",
        description="Prefix of every ONTAP volume Trident creates (letters and digits; ONTAP names).",
    )
    export_cidrs: list[IPv4Network] | None = Field(
        default=None,
        description="Clients the automatic export policy admits; default: the node subnet only.",
    )
    nfs_mount_options: str = Field(
        default="nfsvers=4.1,hard", pattern=r"^[a-z0-9=.,_]+$", description="NFS mount options (NFS 4.1)."
    )
    snapshots: StrictBool = Field(
        default=True,
        description="Offer CSI snapshots: the dsaas-snapshots VolumeSnapshotClass (needs homesDriver ontap-nas).",
    )
    snapshot_policy: str = Field(
        default="default",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="ONTAP snapshot policy of new volumes (scheduled snapshots; 'none' to disable).",
    )
    snapshot_reserve_percent: StrictInt = Field(
        default=10, ge=0, le=90, description="Share of each volume reserved for snapshots, percent."
    )
    unix_permissions: str = Field(
        default="0770", pattern=r"^0[0-7]{3}$", description="Mode of each new volume's root directory."
    )
    autosupport: StrictBool = Field(
        default=False,
        description="Let Trident's AutoSupport send support bundles to NetApp periodically; false silences it "
        "(one bundle can still be sent on purpose).",
    )


def check_storage(storage: StorageSettings) -> list[SettingsProblem]:
    problems: list[SettingsProblem] = []
    if storage.ontap.ca_file is not None:
        problems.extend(check_project_file(stack_key("storage", "ontap", "caFile"), storage.ontap.ca_file, "pem"))
    if storage.snapshots and storage.homes_driver is NasDriver.ONTAP_NAS_ECONOMY:
        problems.append(
            SettingsProblem(
                key=stack_key("storage", "snapshots"),
                problem="ontap-nas-economy (dsaas:storage.homesDriver) keeps homes in qtrees, which have no "
                "CSI snapshots, so a VolumeSnapshotClass would only produce failing snapshots.",
                fix="set dsaas:storage.snapshots to false (ONTAP's snapshotPolicy still protects the "
                "FlexVols), or use homesDriver ontap-nas.",
            )
        )
    return problems


__all__ = ["NasDriver", "OntapSettings", "ReclaimPolicy", "StorageSettings", "check_storage"]
