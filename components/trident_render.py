"""Pure renderers for the storage layer: Trident chart values, backends, storage and snapshot classes.

Everything here is plain data from `Settings`; `components.trident` wires it into the graph.
Credentials never pass through these functions: backends name the Secret that holds them.
"""

from __future__ import annotations

from typing import Any

from config import versions
from config.hub import HubDatabaseKind
from config.settings import Settings
from config.storage import NasDriver

TRIDENT_NAMESPACE = "trident"
CSI_DRIVER = "csi.trident.netapp.io"
CREDENTIALS_SECRET = "ontap-credentials"
SAN_DRIVER = "ontap-san"
HOMES_CLASS = "dsaas-homes"
GENERAL_CLASS = "dsaas-general"
HUB_DATABASE_CLASS = "dsaas-hub-db"
SNAPSHOT_CLASS = "dsaas-snapshots"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
DEFAULT_SNAPSHOT_CLASS_ANNOTATION = "snapshot.storage.kubernetes.io/is-default-class"
# ONTAP volume names show who owns the data: prefix, namespace, claim and five characters of the PV's
# UUID for uniqueness (e.g. dsaasprod_jupyterhub_claim_alice_3f2a9). Trident turns characters ONTAP
# rejects, like '-', into '_' (and would append the UUID slice itself if the template lacked it).
# Disaster recovery maps a restored volume back to its claim by this name.
VOLUME_NAME_TEMPLATE = (
    "{{.config.StoragePrefix}}_{{.volume.Namespace}}_{{.volume.RequestName}}_{{slice .volume.Name 4 9}}"
)
# Labels Trident writes into each new ontap-nas FlexVol's ONTAP comment, so ONTAP itself can say whose volume
# it is when the inventory is gone (`python -m tools.restore plan --from ontap`). At NetApp/trident v26.06.0
# ontap_nas.go Create sets the volume's Comment from ontap_common.go ConstructLabelsFromConfigs, which renders
# each label as a Go template over {"volume": storage.VolumeConfig, "config": the driver config}
# (storage/storage_pool.go GetLabelMapFromTemplate) and marshals them as {"provisioning": {...}} (at most 1023
# characters, api.MaxNASLabelLength). VolumeConfig's fields give the claim (`RequestName`) and its namespace
# (`Namespace`), never the hub user: the planner gets users from the directory. Set at provisioning (and on
# import): volumes created before these labels existed keep their old comment.
VOLUME_LABELS: dict[str, str] = {
    "dsaas.io/claim": "{{.volume.RequestName}}",
    "dsaas.io/namespace": "{{.volume.Namespace}}",
}
# Velero's CSI support takes the VolumeSnapshotClass of a driver that carries this label.
VELERO_SNAPSHOT_CLASS_LABEL = "velero.io/csi-volumesnapshot-class"
# CRDs the Trident operator creates at run time; TridentBackendConfigs can only be created after them.
TRIDENT_RUNTIME_CRDS: tuple[str, ...] = (
    "tridentbackendconfigs.trident.netapp.io",
    "tridentbackends.trident.netapp.io",
)

# external-snapshotter files, applied as they are at their pinned refs (CRDs first, then the controller).
SNAPSHOT_CRD_FILES: tuple[str, ...] = (
    "client/config/crd/snapshot.storage.k8s.io_volumesnapshotclasses.yaml",
    "client/config/crd/snapshot.storage.k8s.io_volumesnapshotcontents.yaml",
    "client/config/crd/snapshot.storage.k8s.io_volumesnapshots.yaml",
    "client/config/crd/groupsnapshot.storage.k8s.io_volumegroupsnapshotclasses.yaml",
    "client/config/crd/groupsnapshot.storage.k8s.io_volumegroupsnapshotcontents.yaml",
    "client/config/crd/groupsnapshot.storage.k8s.io_volumegroupsnapshots.yaml",
)
SNAPSHOT_CONTROLLER_FILES: tuple[str, ...] = (
    "deploy/kubernetes/snapshot-controller/rbac-snapshot-controller.yaml",
    "deploy/kubernetes/snapshot-controller/setup-snapshot-controller.yaml",
)


def snapshotter_urls(files: tuple[str, ...], ref: str) -> list[str]:
    return [f"{versions.EXTERNAL_SNAPSHOTTER_RAW_URL}/{ref}/{path}" for path in files]


def render_namespace(name: str, privileged: bool = False, level: str = "baseline") -> dict[str, Any]:
    """A namespace enforcing Pod Security `level`; `privileged` for node plugins that mount host paths
    (Trident's CSI node pods)."""
    level = "privileged" if privileged else level
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/part-of": "dsaas",
                "pod-security.kubernetes.io/enforce": level,
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        },
    }


def render_trident_values(settings: Settings) -> dict[str, Any]:
    """trident-operator chart values: image tags pinned explicitly (not left to the chart's appVersion)."""
    return {
        "operatorImageTag": versions.TRIDENT_VERSION,
        "tridentImageTag": versions.TRIDENT_VERSION,
        "tridentAutosupportImageTag": versions.TRIDENT_AUTOSUPPORT_TAG,
        "tridentDebug": False,
        "operatorDebug": False,
        "tridentLogFormat": "json",
        "imagePullPolicy": "IfNotPresent",
        # Trident's autosupport container sends bundles to NetApp on its own unless silenced. Chart value
        # tridentSilenceAutosupport (helm/trident-operator/values.yaml at NetApp/trident v26.06.0: "allows
        # disabling Trident's periodic Autosupport reporting") → TridentOrchestrator spec.silenceAutosupport
        # → the container's --trident-silence-collector (tridentctl's own flag: "Don't send autosupport
        # bundles to NetApp automatically"). The container stays (tridentExcludeAutosupport would remove
        # it), so a support case can still send one bundle on purpose: tridentctl send autosupport.
        "tridentSilenceAutosupport": not settings.storage.autosupport,
    }


def backend_drivers(settings: Settings) -> list[str]:
    """Trident drivers this stack needs, in a stable order: homes, general purpose, hub database."""
    drivers = [settings.storage.homes_driver.value]
    if NasDriver.ONTAP_NAS.value not in drivers:
        drivers.append(NasDriver.ONTAP_NAS.value)
    if settings.hub.database.kind is HubDatabaseKind.BLOCK:
        drivers.append(SAN_DRIVER)
    return drivers


def needs_block_storage(settings: Settings) -> bool:
    """Whether nodes need iSCSI and multipath (the hub database on ontap-san)."""
    return SAN_DRIVER in backend_drivers(settings)


def backend_name(settings: Settings, driver: str) -> str:
    return f"{settings.cluster.cluster_name}-{driver}"


def render_backend_config(settings: Settings, driver: str) -> dict[str, Any]:
    """A `TridentBackendConfig` for one ONTAP driver on the stack's SVM."""
    storage = settings.storage
    defaults: dict[str, str] = {
        "spaceReserve": "none",
        "snapshotPolicy": storage.snapshot_policy,
        "snapshotReserve": str(storage.snapshot_reserve_percent),
        "nameTemplate": VOLUME_NAME_TEMPLATE,
    }
    spec: dict[str, Any] = {
        "version": 1,
        "storageDriverName": driver,
        "backendName": backend_name(settings, driver),
        "managementLIF": storage.ontap.management_lif,
        "svm": storage.ontap.svm,
        "storagePrefix": storage.storage_prefix,
        "credentials": {"name": CREDENTIALS_SECRET},
        # Deleting this object (a renamed backend, a driver switch) must not take Trident's backend,
        # and with it the management of every user's volume, along: retire backends with tridentctl.
        "deletionPolicy": "retain",
    }
    if driver == SAN_DRIVER:
        spec["sanType"] = "iscsi"
    else:
        spec["dataLIF"] = str(storage.ontap.data_lif)
        spec["nfsMountOptions"] = storage.nfs_mount_options
        spec["autoExportPolicy"] = True
        spec["autoExportCIDRs"] = [str(cidr) for cidr in settings.export_cidrs]
        defaults["snapshotDir"] = "true"
        defaults["unixPermissions"] = storage.unix_permissions
    if driver == NasDriver.ONTAP_NAS.value:
        # One FlexVol per claim: its comment names the claim. Economy qtrees have no comment in ONTAP and
        # Trident writes none on their shared FlexVols (ontap_nas_qtree.go createFlexvolForQtree): the planner
        # matches them by the name nameTemplate gave them.
        spec["labels"] = dict(VOLUME_LABELS)
    spec["defaults"] = defaults
    return {
        "apiVersion": "trident.netapp.io/v1",
        "kind": "TridentBackendConfig",
        "metadata": {
            "name": f"backend-{driver}",
            "namespace": TRIDENT_NAMESPACE,
            # pulumi-kubernetes waits until Trident has reached ONTAP with these settings.
            "annotations": {"pulumi.com/waitFor": "jsonpath={.status.phase}=Bound"},
        },
        "spec": spec,
    }


def _storage_class(
    name: str, driver: str, fs_type: str, reclaim_policy: str, description: str, default: bool = False
) -> dict[str, Any]:
    annotations = {"dsaas.io/purpose": description}
    if default:
        annotations[DEFAULT_CLASS_ANNOTATION] = "true"
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name, "annotations": annotations},
        "provisioner": CSI_DRIVER,
        # fsType nfs lets the kubelet apply the pod's fsGroup to NFS volumes (user homes are group-owned).
        "parameters": {"backendType": driver, "fsType": fs_type},
        "reclaimPolicy": reclaim_policy,
        "allowVolumeExpansion": True,
        "volumeBindingMode": "Immediate",
    }


def render_storage_classes(settings: Settings) -> list[dict[str, Any]]:
    """Homes (retained, expandable), general purpose (default) and, with a block hub database, its class."""
    classes = [
        _storage_class(
            HOMES_CLASS,
            settings.storage.homes_driver.value,
            "nfs",
            settings.storage.homes_reclaim_policy.value,
            "user home directories",
        ),
        _storage_class(GENERAL_CLASS, NasDriver.ONTAP_NAS.value, "nfs", "Delete", "general purpose", default=True),
    ]
    if settings.hub.database.kind is HubDatabaseKind.BLOCK:
        classes.append(_storage_class(HUB_DATABASE_CLASS, SAN_DRIVER, "ext4", "Retain", "hub database (block)"))
    return classes


def render_volume_snapshot_class(settings: Settings) -> dict[str, Any]:
    """Snapshots of ontap-nas volumes through Trident; kept on ONTAP if the Kubernetes object goes."""
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotClass",
        "metadata": {
            "name": SNAPSHOT_CLASS,
            "annotations": {DEFAULT_SNAPSHOT_CLASS_ANNOTATION: "true"},
            "labels": {VELERO_SNAPSHOT_CLASS_LABEL: "true"},
        },
        "driver": CSI_DRIVER,
        "deletionPolicy": "Retain",
    }


# --- what the stack's backends can have made: the restore's trust check (issue 21, item 10) ----------
# A restore plan (and the inventory it comes from) is data anyone with write access to the bucket or the
# repository could change. Before a home is mounted for a user it must be something this stack's backends
# made on this stack's SVM: these names follow Trident v26.06.0 (tests/dr_inventory.py cites the files).
# The economy FlexVols: "trident" + "_qtree_pool_" + storagePrefix + "_" + RandomString(10)
# (storage_drivers/ontap/ontap_nas_qtree.go, Initialize: artifactPrefix "trident", flexvolNamePrefix).
ECONOMY_FLEXVOL_PREFIX = "trident_qtree_pool_"


def ontap_name(text: str) -> str:
    """`text` as Trident's GetVolumeNameFromTemplate leaves it (ontap_common.go): characters other than
    [A-Za-z0-9_] become `_`, runs of `_` collapse, and leading/trailing `_` go."""
    cleaned = "".join(char if char.isascii() and (char.isalnum() or char == "_") else "_" for char in text)
    while "__" in cleaned:
        cleaned = cleaned.replace("__", "_")
    return cleaned.strip("_")


def economy_flexvol_stem(settings: Settings) -> str:
    """How every economy FlexVol of the stack's backend begins: `trident_qtree_pool_<storagePrefix>_`."""
    return f"{ECONOMY_FLEXVOL_PREFIX}{settings.storage.storage_prefix}_"


def home_source_problems(
    settings: Settings,
    driver: NasDriver | str | None,
    volume: str | None,
    qtree: tuple[str, str, str] | None,
    data_lif: str | None,
) -> list[str]:
    """Why the ONTAP source of a planned home (an ontap-nas FlexVol, or an economy qtree as (flexvol, qtree,
    junction path) with its data LIF) is not something this stack's Trident backends made: each a sentence
    naming the value and what the stack expects. Empty when it is the stack's. Names can be forged, so this is
    necessary, not sufficient: the signed inventory and `--verify ontap` do the rest."""
    storage = settings.storage
    prefix = storage.storage_prefix
    problems: list[str] = []
    stem = economy_flexvol_stem(settings)
    driver_value = driver.value if isinstance(driver, NasDriver) else driver
    if driver_value == NasDriver.ONTAP_NAS_ECONOMY.value and qtree is not None:
        flexvol, name, junction = qtree
        if not flexvol.startswith(stem) or len(flexvol) == len(stem):
            problems.append(
                f"FlexVol {flexvol!r} is not one of the stack's economy FlexVols ({stem}<10 letters>, from "
                f"dsaas:storage.storagePrefix {prefix!r})"
            )
        if not name.startswith(f"{prefix}_"):
            problems.append(f"qtree {name!r} does not carry the stack's storage prefix ({prefix}_...)")
        if junction.rstrip("/") != f"/{flexvol}/{name}":
            problems.append(
                f"junction path {junction!r} is not the qtree's own (/{flexvol}/{name}): it would mount another "
                "directory than the qtree the plan names"
            )
    elif driver_value == NasDriver.ONTAP_NAS.value and volume is not None:
        if volume.startswith(ECONOMY_FLEXVOL_PREFIX):
            problems.append(
                f"volume {volume!r} is a whole economy FlexVol (every qtree in it is someone's home), not one home"
            )
        elif not volume.startswith(f"{prefix}_"):
            problems.append(
                f"volume {volume!r} does not carry the stack's storage prefix ({prefix}_..., "
                "dsaas:storage.storagePrefix): another stack's or department's volume, or an SVM root"
            )
        # Both import this module: read at call time. The hub database's volume has the homes' name template.
        from components.backup_render import HUB_DATABASE_CLAIM
        from components.hub_render import HUB_NAMESPACE

        if volume.startswith(ontap_name(f"{prefix}_{HUB_NAMESPACE}_{HUB_DATABASE_CLAIM}") + "_"):
            problems.append(f"volume {volume!r} is the hub database's volume (claim {HUB_DATABASE_CLAIM}), not a home")
    if data_lif is not None and data_lif != str(storage.ontap.data_lif):
        problems.append(
            f"data LIF {data_lif!r} is not the stack's (dsaas:storage.ontap.dataLif {storage.ontap.data_lif}): "
            "the home would be mounted from another NFS server"
        )
    return problems
