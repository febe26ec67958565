"""Pure renderers for backups: Velero chart values, the inventory and hub database CronJobs, their RBAC.

Everything here is plain data from `Settings` (and, for Velero, the CA bundle's text); the S3
credentials never pass through these functions: the objects name the Secret that holds them.

Object layout (contract with the restore planner, `tools.restore`): under `<prefix>/` in the bucket,
where `<prefix>` is `dsaas:backup.objectStore.prefix` or else the cluster name,
  velero/                              Velero's own layout (backups/, kopia/, ...)
  inventory/<YYYYMMDDTHHMMSSZ>.json    the volume inventory, and inventory/latest.json
  hub-database/<YYYYMMDDTHHMMSSZ>.sqlite   the hub's SQLite database, and hub-database/latest.sqlite
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from components.hub_render import HUB_NAMESPACE, HUB_RELEASE
from components.trident_render import TRIDENT_NAMESPACE, render_namespace
from config import versions
from config.backup import ObjectStoreSettings
from config.hub import HubDatabaseKind
from config.model import project_file
from config.settings import Settings
from config.storage import NasDriver

BACKUP_NAMESPACE = "velero"
VELERO_RELEASE = "velero"
CREDENTIALS_SECRET = "dsaas-backup-s3"
# One credential per writer (security review, issue 19): Velero's key can read, list and delete its own
# `velero/` folder (it must, to restore and to expire backups); each job's key can only put objects into
# its own folder. A leaked job key writes one kind of object and reads nothing. docs/backups.md has the
# ONTAP S3 and StorageGRID bucket policies.
INVENTORY_CREDENTIALS_SECRET = "dsaas-backup-s3-inventory"
HUB_DATABASE_CREDENTIALS_SECRET = "dsaas-backup-s3-hub-database"
# Velero reads its credentials file from this key (chart: credentials.existingSecret); each job mounts
# its own Secret's file under the same key as AWS_SHARED_CREDENTIALS_FILE.
CREDENTIALS_KEY = "cloud"
CA_CONFIGMAP = "dsaas-backup-ca"
CA_KEY = "ca.crt"
SCRIPTS_CONFIGMAP = "dsaas-backup-scripts"
INVENTORY_JOB = "dsaas-inventory"
HUB_DATABASE_JOB = "dsaas-hub-database"
HUB_SCHEDULE = "hub"
# What the hub schedule never copies to the bucket (Backup spec `excludedResources`, Velero 1.18 CRD
# tests/upstream/charts/velero-12.1.0/crds/schedules.yaml). Secrets: the cookie secret, proxy token, LDAP
# search password (in the release's values), `hub-tls`: read access to the bucket made them a master key,
# and Pulumi recreates every one of them from its state. Pods: KubeSpawner writes each server's API token
# into its pod spec; the hub recreates user pods, the homes are their claims and volumes. Pods stay only
# where file-system backup needs them (Velero copies pod volumes while it backs up the pod that mounts them).
SECRET_RESOURCES: tuple[str, ...] = ("secrets",)
POD_RESOURCES: tuple[str, ...] = ("pods",)
INVENTORY_FORMAT = "dsaas-inventory/1"

SCRIPTS_DIR = Path(__file__).parent / "templates" / "backup"
SCRIPT_FILES: tuple[str, ...] = ("inventory.sh", "hub-database.sh", "upload.sh", "sqlite_backup.py")

# z2jh 4.4.0: the hub pod's labels (templates/hub/deployment.yaml) and where `sqlite-pvc` mounts the
# database volume (/srv/jupyterhub, database file jupyterhub.sqlite); tests check both on the chart.
HUB_SELECTOR = f"component=hub,release={HUB_RELEASE}"
HUB_CONTAINER = "hub"
HUB_SQLITE_PATH = "/srv/jupyterhub/jupyterhub.sqlite"

# Resource requests and limits of the job containers (small: kubectl, jq and an upload).
JOB_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "50m", "memory": "64Mi"},
    "limits": {"cpu": "500m", "memory": "256Mi"},
}
# Velero: requests only, like every platform pod here (tests/checkov-baseline.yaml, CKV_K8S_11/13): a
# memory limit would kill a backup of many homes halfway; the requests reserve its room.
VELERO_RESOURCES: dict[str, dict[str, str]] = {"requests": {"cpu": "100m", "memory": "128Mi"}}
HOOK_RESOURCES: dict[str, dict[str, str]] = {"requests": {"cpu": "10m", "memory": "32Mi"}}
# Kept finished jobs: the last three successes and failures stay visible to `kubectl get jobs`.
SUCCESSFUL_JOBS_HISTORY = 3
FAILED_JOBS_HISTORY = 3

WORK_DIR = "/work"
SCRIPTS_MOUNT = "/scripts"
CA_MOUNT = "/etc/dsaas-backup-ca"
CREDENTIALS_MOUNT = "/etc/dsaas-backup-s3"


def object_store(settings: Settings) -> ObjectStoreSettings:
    store = settings.backup.object_store
    if store is None:  # config.backup.check_backup refuses this with the setting to add.
        raise ValueError("backups are on but dsaas:backup.objectStore is not set")
    return store


def object_prefix(settings: Settings) -> str:
    """The stack's folder in the bucket: `objectStore.prefix`, or else the cluster name."""
    return object_store(settings).prefix or settings.cluster.cluster_name


def uses_csi_snapshots(settings: Settings) -> bool:
    """CSI snapshots with data movement where Trident takes them (ontap-nas with the snapshot class);
    elsewhere (ontap-nas-economy qtrees) Velero's file-system backup through the node agent."""
    return settings.storage.homes_driver is NasDriver.ONTAP_NAS and settings.storage.snapshots


def render_namespace_doc() -> dict[str, Any]:
    # Privileged: Velero's node agent mounts the kubelet's pod volumes from the host.
    return render_namespace(BACKUP_NAMESPACE, privileged=True)


def excluded_resources(settings: Settings) -> list[str]:
    """Resource types the hub schedule leaves out: always Secrets; pods too unless file-system backup
    (ontap-nas-economy, or no CSI snapshots) needs them to find the volumes it copies."""
    return [*SECRET_RESOURCES, *(POD_RESOURCES if uses_csi_snapshots(settings) else ())]


def render_encryption_config(store: ObjectStoreSettings) -> dict[str, str]:
    """velero-plugin-for-aws BackupStorageLocation `config` keys for server-side encryption
    (vmware-tanzu/velero-plugin-for-aws backupstoragelocation.md: `serverSideEncryption`, `kmsKeyId`)."""
    config: dict[str, str] = {}
    if store.server_side_encryption is not None:
        config["serverSideEncryption"] = store.server_side_encryption.value
    if store.kms_key_id is not None:
        config["kmsKeyId"] = store.kms_key_id
    return config


def render_credentials_file(access_key_id: str, secret_access_key: str) -> str:
    """The AWS shared-credentials file Velero's AWS plugin and the aws CLI both read."""
    return f"[default]\naws_access_key_id={access_key_id}\naws_secret_access_key={secret_access_key}\n"


def read_ca_bundle(settings: Settings) -> str | None:
    """The object store's CA bundle (PEM text), or None to trust the system CAs."""
    store = object_store(settings)
    return None if store.ca_file is None else project_file(store.ca_file).read_text()


def render_velero_values(settings: Settings, ca_bundle: str | None) -> dict[str, Any]:
    """velero chart values: pinned images, the bucket as default location, one schedule for the hub."""
    store = object_store(settings)
    csi = uses_csi_snapshots(settings)
    location: dict[str, Any] = {
        "name": "default",
        "provider": "aws",
        "bucket": store.bucket,
        "prefix": f"{object_prefix(settings)}/velero",
        "default": True,
        "accessMode": "ReadWrite",
        "config": {
            "region": store.region,
            "s3ForcePathStyle": "true" if store.path_style else "false",
            "s3Url": str(store.endpoint).rstrip("/"),
            # aws-sdk-go-v2 sends CRC32 checksums by default, which ONTAP S3 before 9.15.1P2 rejects
            # (velero-plugin-for-aws README, "Non-AWS S3 compatible provider known issues"); ""
            # turns them off, and every S3 accepts requests without them.
            "checksumAlgorithm": "",
            **render_encryption_config(store),
        },
    }
    if ca_bundle is not None:
        location["caCert"] = base64.b64encode(ca_bundle.encode()).decode()
    template: dict[str, Any] = {
        "ttl": f"{settings.backup.retention_days * 24}h0m0s",
        "storageLocation": "default",
        "includedNamespaces": [HUB_NAMESPACE],
        "excludedResources": excluded_resources(settings),
        "snapshotVolumes": csi,
        "snapshotMoveData": csi,
        "defaultVolumesToFsBackup": not csi,
    }
    values: dict[str, Any] = {
        "image": {
            "repository": versions.VELERO_IMAGE_REPOSITORY,
            "tag": versions.VELERO_IMAGE_TAG,
            "pullPolicy": "IfNotPresent",
        },
        "initContainers": [
            {
                "name": "velero-plugin-for-aws",
                "image": versions.VELERO_PLUGIN_FOR_AWS_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "volumeMounts": [{"mountPath": "/target", "name": "plugins"}],
                "resources": HOOK_RESOURCES,
            }
        ],
        # The CRD upgrade hook's kubectl: pinned, not derived from the cluster's version at install time.
        "kubectl": {
            "image": {"repository": versions.KUBECTL_IMAGE_REPOSITORY, "tag": versions.KUBECTL_IMAGE_TAG},
            "resources": HOOK_RESOURCES,
        },
        "upgradeJobResources": HOOK_RESOURCES,
        "resources": VELERO_RESOURCES,
        "credentials": {"useSecret": True, "existingSecret": CREDENTIALS_SECRET},
        "configuration": {
            "backupStorageLocation": [location],
            # No provider snapshots (EBS): volumes go by CSI snapshot + data mover or by file system.
            "volumeSnapshotLocation": [],
            # Velero 1.18 still gates its built-in CSI support behind this flag.
            "features": "EnableCSI",
            "defaultSnapshotMoveData": csi,
        },
        "snapshotsEnabled": False,
        # The node agent copies file-system backups (ontap-nas-economy) and moves CSI snapshot data.
        "deployNodeAgent": True,
        "nodeAgent": {"resources": VELERO_RESOURCES},
        "metrics": {"enabled": True},
        "schedules": {
            HUB_SCHEDULE: {
                "disabled": False,
                "schedule": settings.backup.schedule,
                "useOwnerReferencesInBackup": False,
                "template": template,
            }
        },
    }
    return values


def render_scripts_configmap() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": SCRIPTS_CONFIGMAP, "namespace": BACKUP_NAMESPACE},
        "data": {name: (SCRIPTS_DIR / name).read_text() for name in SCRIPT_FILES},
    }


def render_ca_configmap(ca_bundle: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CA_CONFIGMAP, "namespace": BACKUP_NAMESPACE},
        "data": {CA_KEY: ca_bundle},
    }


def _service_account(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": BACKUP_NAMESPACE},
    }


def render_inventory_rbac() -> list[dict[str, Any]]:
    """Read-only access to exactly what the inventory lists: claims, PVs and Trident's records."""
    return [
        _service_account(INVENTORY_JOB),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": INVENTORY_JOB},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["persistentvolumeclaims", "persistentvolumes"],
                    "verbs": ["get", "list"],
                },
                {
                    "apiGroups": ["trident.netapp.io"],
                    "resources": ["tridentvolumes", "tridentbackends", "tridentbackendconfigs"],
                    "verbs": ["get", "list"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": INVENTORY_JOB},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": INVENTORY_JOB},
            "subjects": [{"kind": "ServiceAccount", "name": INVENTORY_JOB, "namespace": BACKUP_NAMESPACE}],
        },
    ]


def render_hub_database_rbac() -> list[dict[str, Any]]:
    """Find the hub pod and exec into it, only in the hub namespace (a Role, not a ClusterRole)."""
    return [
        _service_account(HUB_DATABASE_JOB),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": HUB_DATABASE_JOB, "namespace": HUB_NAMESPACE},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
                {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": HUB_DATABASE_JOB, "namespace": HUB_NAMESPACE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": HUB_DATABASE_JOB},
            "subjects": [{"kind": "ServiceAccount", "name": HUB_DATABASE_JOB, "namespace": BACKUP_NAMESPACE}],
        },
    ]


def _env(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": key, "value": value} for key, value in values.items()]


_CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "runAsGroup": 65534,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _upload_cronjob(
    settings: Settings,
    name: str,
    schedule: str,
    producer: dict[str, Any],
    folder: str,
    suffix: str,
    ca_bundle: bool,
    credentials_secret: str,
) -> dict[str, Any]:
    """A CronJob whose init container writes payload + stamp into an emptyDir and whose aws-cli
    container uploads them (timestamped, then latest) with its own put-only credentials."""
    store = object_store(settings)
    upload_env = {
        "S3_ENDPOINT": str(store.endpoint).rstrip("/"),
        "BUCKET": store.bucket,
        "KEY_PREFIX": f"{object_prefix(settings)}/{folder}",
        "SUFFIX": suffix,
        "S3_ADDRESSING_STYLE": "path" if store.path_style else "virtual",
        "SRC": WORK_DIR,
        "AWS_DEFAULT_REGION": store.region,
        "AWS_SHARED_CREDENTIALS_FILE": f"{CREDENTIALS_MOUNT}/{CREDENTIALS_KEY}",
        "AWS_CONFIG_FILE": f"{WORK_DIR}/.aws-config",
        "HOME": WORK_DIR,
        # Older ONTAP S3 releases reject the CRC checksums recent AWS CLIs send by default.
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    }
    if store.server_side_encryption is not None:
        upload_env["SSE"] = store.server_side_encryption.value
    if store.kms_key_id is not None:
        upload_env["SSE_KMS_KEY_ID"] = store.kms_key_id
    mounts = [
        {"name": "work", "mountPath": WORK_DIR},
        {"name": "scripts", "mountPath": SCRIPTS_MOUNT, "readOnly": True},
        {"name": "credentials", "mountPath": CREDENTIALS_MOUNT, "readOnly": True},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "work", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "scripts", "configMap": {"name": SCRIPTS_CONFIGMAP, "defaultMode": 0o555}},
        {"name": "credentials", "secret": {"secretName": credentials_secret, "defaultMode": 0o400}},
    ]
    if ca_bundle:
        upload_env["AWS_CA_BUNDLE"] = f"{CA_MOUNT}/{CA_KEY}"
        mounts.append({"name": "ca", "mountPath": CA_MOUNT, "readOnly": True})
        volumes.append({"name": "ca", "configMap": {"name": CA_CONFIGMAP}})
    upload = {
        "name": "upload",
        "image": versions.AWS_CLI_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["bash", f"{SCRIPTS_MOUNT}/upload.sh"],
        "env": _env(upload_env),
        "volumeMounts": mounts,
        "resources": JOB_RESOURCES,
        "securityContext": _CONTAINER_SECURITY,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": BACKUP_NAMESPACE, "labels": {"app.kubernetes.io/part-of": "dsaas"}},
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            # A run never overlaps the previous one, and a missed run is not made up for later.
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": SUCCESSFUL_JOBS_HISTORY,
            "failedJobsHistoryLimit": FAILED_JOBS_HISTORY,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": 1800,
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "dsaas"}},
                        "spec": {
                            "serviceAccountName": name,
                            "restartPolicy": "Never",
                            "securityContext": {
                                "runAsNonRoot": True,
                                "fsGroup": 65534,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "initContainers": [producer],
                            "containers": [upload],
                            "volumes": volumes,
                        },
                    },
                }
            },
        },
    }


def _kubectl_container(script: str, env: dict[str, str]) -> dict[str, Any]:
    return {
        "name": "collect",
        "image": versions.KUBECTL_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["bash", f"{SCRIPTS_MOUNT}/{script}"],
        "env": _env({**env, "OUT": WORK_DIR, "HOME": WORK_DIR}),
        "volumeMounts": [
            {"name": "work", "mountPath": WORK_DIR},
            {"name": "scripts", "mountPath": SCRIPTS_MOUNT, "readOnly": True},
        ],
        "resources": JOB_RESOURCES,
        "securityContext": _CONTAINER_SECURITY,
    }


def render_inventory_cronjob(settings: Settings, ca_bundle: bool) -> dict[str, Any]:
    producer = _kubectl_container(
        "inventory.sh",
        {
            "CLUSTER": settings.cluster.cluster_name,
            "HUB_NAMESPACE": HUB_NAMESPACE,
            "TRIDENT_NAMESPACE": TRIDENT_NAMESPACE,
        },
    )
    return _upload_cronjob(
        settings,
        INVENTORY_JOB,
        settings.backup.inventory_schedule,
        producer,
        "inventory",
        ".json",
        ca_bundle,
        INVENTORY_CREDENTIALS_SECRET,
    )


def hub_database_backed_up(settings: Settings) -> bool:
    """Whether this program dumps the hub database: SQLite on its block volume. (PostgreSQL's
    pg_dump job is not built yet: such a database is backed up by its own operators.)"""
    return settings.hub.database.kind is HubDatabaseKind.BLOCK


def render_hub_database_cronjob(settings: Settings, ca_bundle: bool) -> dict[str, Any]:
    producer = _kubectl_container(
        "hub-database.sh",
        {
            "HUB_NAMESPACE": HUB_NAMESPACE,
            "HUB_SELECTOR": HUB_SELECTOR,
            "HUB_CONTAINER": HUB_CONTAINER,
            "DATABASE": HUB_SQLITE_PATH,
            "SCRIPT": f"{SCRIPTS_MOUNT}/sqlite_backup.py",
        },
    )
    return _upload_cronjob(
        settings,
        HUB_DATABASE_JOB,
        settings.backup.database_schedule,
        producer,
        "hub-database",
        ".sqlite",
        ca_bundle,
        HUB_DATABASE_CREDENTIALS_SECRET,
    )


def render_job_objects(settings: Settings, ca_bundle: str | None) -> list[dict[str, Any]]:
    """Every plain object of the backup jobs, in apply order (ConfigMaps and RBAC before CronJobs)."""
    objects = [render_scripts_configmap()]
    if ca_bundle is not None:
        objects.append(render_ca_configmap(ca_bundle))
    objects += render_inventory_rbac()
    if hub_database_backed_up(settings):
        objects += render_hub_database_rbac()
    objects.append(render_inventory_cronjob(settings, ca_bundle is not None))
    if hub_database_backed_up(settings):
        objects.append(render_hub_database_cronjob(settings, ca_bundle is not None))
    return objects


# --- one key per writer: bucket policies ----------------------------------------------------------

VELERO_WRITER = "velero"
INVENTORY_WRITER = "inventory"
HUB_DATABASE_WRITER = "hub-database"
# Velero must read its backups back (restore, sync), list them and delete expired ones, all in its folder.
VELERO_ACTIONS: tuple[str, ...] = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)
# The jobs only add objects (`aws s3 cp` is a PutObject, or a multipart upload above 8 MiB, which
# s3:PutObject covers): no read, list or delete, so a leaked job key reveals nothing and destroys nothing.
JOB_ACTIONS: tuple[str, ...] = ("s3:PutObject", "s3:AbortMultipartUpload")


def writer_statements(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Per writer, the S3 policy statements (without Principal) that confine its key to its own folder:
    the same grammar for an ONTAP S3 or StorageGRID bucket policy and an IAM user policy."""
    bucket = object_store(settings).bucket
    prefix = object_prefix(settings)

    def objects(folder: str) -> str:
        return f"arn:aws:s3:::{bucket}/{prefix}/{folder}/*"

    statements: dict[str, list[dict[str, Any]]] = {
        VELERO_WRITER: [
            {
                "Sid": "VeleroObjects",
                "Effect": "Allow",
                "Action": list(VELERO_ACTIONS),
                "Resource": [objects("velero")],
            },
            {
                "Sid": "VeleroList",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
                "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/velero/*"]}},
            },
        ],
        INVENTORY_WRITER: [
            {
                "Sid": "InventoryPutOnly",
                "Effect": "Allow",
                "Action": list(JOB_ACTIONS),
                "Resource": [objects("inventory")],
            }
        ],
    }
    if hub_database_backed_up(settings):
        statements[HUB_DATABASE_WRITER] = [
            {
                "Sid": "HubDatabasePutOnly",
                "Effect": "Allow",
                "Action": list(JOB_ACTIONS),
                "Resource": [objects("hub-database")],
            }
        ]
    return statements


def render_bucket_policy(settings: Settings, principals: dict[str, Any]) -> dict[str, Any]:
    """A bucket policy giving each writer's principal (ONTAP S3: the S3 user name; StorageGRID:
    {"AWS": "urn:sgws:identity::<account>:user/<name>"}) exactly its own statements."""
    statements = writer_statements(settings)
    missing = sorted(statements.keys() - principals.keys())
    if missing:
        raise ValueError(f"no principal for writer(s) {', '.join(missing)}")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {**statement, "Principal": principals[writer]}
            for writer, writer_statements_ in statements.items()
            for statement in writer_statements_
        ],
    }
