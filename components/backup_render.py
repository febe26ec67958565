"""Pure renderers for backups: Velero chart values, the inventory and hub database CronJobs, their RBAC.

Everything here is plain data from `Settings` (and, for Velero, the CA bundle's text); the S3
credentials never pass through these functions: the objects name the Secret that holds them.

Object layout (contract with the restore planner, `tools.restore`): under `<prefix>/` in the bucket,
where `<prefix>` is `dsaas:backup.objectStore.prefix` or else the cluster name,
  velero/                              Velero's own layout (backups/, kopia/, ...)
  inventory/<YYYYMMDDTHHMMSSZ>.json    the volume inventory (signed: templates/backup/sign_inventory.py),
                                       and inventory/latest.json
  hub-database/<YYYYMMDDTHHMMSSZ>.sqlite   the hub's SQLite database, and hub-database/latest.sqlite

Who may do what (docs/access.md shows what the API server's authorizer answers for each account):
- The hub database job has no API access at all. It runs in the hub namespace beside the hub pod
  (required pod affinity on the hub's labels, same node), mounts the hub's own ReadWriteOnce claim
  `hub-db-dir` (ReadWriteOnce is per node, so a second pod on the hub's node may mount it) and runs
  SQLite's online backup API with the hub image's Python; no token is mounted in the pod. It used to
  exec into the hub pod, which needs `create pods/exec` in the hub namespace, and RBAC cannot narrow
  that to the hub pod (its name is generated, `resourceNames` cannot match it), so the job could
  exec into every user server. Rejected alternatives: a CSI snapshot or clone of `hub-db-dir` (needs
  the snapshot class on the database's SAN driver and rights to create claims and snapshots in the
  hub namespace), a sidecar in the hub pod (its own loop, the S3 key inside the hub pod, and a hub
  restart whenever the backup settings change), the hub's API (JupyterHub has no database export).
  The price: the S3 credentials Secret is also in the hub namespace (labelled so that Velero does not
  copy it into the bucket); the hub's account can read it, as it can read the hub's own secrets.
- The inventory job reads claims in the hub namespace and Trident's records in the trident namespace
  (Roles), and lists PVs (cluster-scoped: the only ClusterRole it needs); only its `collect`
  container gets a token (a projected volume), the uploader none.
- Velero runs without cluster-admin (`rbac.clusterAdministrator: false`), as Velero documents
  ("Run Velero more securely with restrictive RBAC settings", velero.io/docs/v1.16/rbac): the chart's
  Role in the velero namespace, a Role in the hub namespace (read every kind, write the kinds a
  restore creates, no subresources, so no exec), and a ClusterRole for the cluster-scoped objects a
  backup and restore of PVs touch. The velero chart (12.1.0) runs the node agent as the server's
  ServiceAccount (templates/node-agent-daemonset.yaml), so both get these rights.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from components.hub_render import HUB_NAMESPACE, HUB_RELEASE
from components.trident_render import TRIDENT_NAMESPACE, render_namespace
from config import versions
from config.backup import ObjectStoreSettings
from config.hub import PG_QUERY_VARIABLES, HubDatabaseKind
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
SCRIPT_FILES: tuple[str, ...] = (
    "inventory.sh",
    "sign_inventory.py",
    "hub-database.sh",
    "upload.sh",
    "sqlite_backup.py",
)
# The inventory's signing key (issue 21, item 11): a Pulumi random secret in this Secret, mounted only into the
# inventory job's `sign` container (no API token, no S3 key there); the planner reads it from the stack's
# secret output. A Secret in the velero namespace, which Velero's schedule (the hub namespace) never copies.
INVENTORY_KEY_SECRET = "dsaas-inventory-signing"
INVENTORY_KEY_KEY = "key"
INVENTORY_KEY_MOUNT = "/etc/dsaas-inventory-key"

# z2jh 4.4.0: the hub pod's labels (templates/hub/deployment.yaml) and where `sqlite-pvc` mounts the
# database volume (/srv/jupyterhub, database file jupyterhub.sqlite); tests check both on the chart.
HUB_SELECTOR = f"component=hub,release={HUB_RELEASE}"
HUB_CONTAINER = "hub"
HUB_SQLITE_PATH = "/srv/jupyterhub/jupyterhub.sqlite"
# z2jh 4.4.0: the claim sqlite-pvc makes (templates/hub/pvc.yaml), and the hub's uid/gid and fsGroup
# (values.yaml hub.containerSecurityContext, hub.podSecurityContext): the database job runs as the hub
# does, so the database's files stay the hub's and the kubelet has no group to change on the volume.
HUB_DATABASE_CLAIM = "hub-db-dir"
HUB_UID = 1000
HUB_GID = 1000
HUB_SCRIPT_FILES: tuple[str, ...] = ("hub-database.sh", "upload.sh", "sqlite_backup.py")
HUB_PG_SCRIPT_FILES: tuple[str, ...] = ("pg-dump.sh", "upload.sh")
# A PostgreSQL hub database (dsaas:hub.database.backup pg_dump): libpq's connection variables, made from the
# secret dsaas:hubDatabaseUrl, in this Secret of the hub namespace; only the dump container reads it.
HUB_PG_CONNECTION_SECRET = "dsaas-hub-database-connection"
# Velero must not copy the S3 key into the bucket it protects (Velero's exclude-from-backup label).
VELERO_EXCLUDE_LABEL = "velero.io/exclude-from-backup"
# The chart's server ServiceAccount (velero.serverServiceAccount: <fullname>-server), which the node
# agent shares, and the name of the roles this program adds for it.
VELERO_SERVICE_ACCOUNT = f"{VELERO_RELEASE}-server"
VELERO_ROLE = "dsaas-velero"
# Where the kubelet puts a ServiceAccount token; kubectl's in-cluster config reads it from there.
TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"

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
        # No cluster-admin: the chart's Role in the velero namespace plus render_velero_rbac's roles.
        "rbac": {"create": True, "clusterAdministrator": False},
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


def render_scripts_configmap(
    namespace: str = BACKUP_NAMESPACE, files: tuple[str, ...] = SCRIPT_FILES
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": SCRIPTS_CONFIGMAP, "namespace": namespace},
        "data": {name: (SCRIPTS_DIR / name).read_text() for name in files},
    }


def render_ca_configmap(ca_bundle: str, namespace: str = BACKUP_NAMESPACE) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CA_CONFIGMAP, "namespace": namespace},
        "data": {CA_KEY: ca_bundle},
    }


def credentials_secret_metadata(name: str, namespace: str) -> dict[str, Any]:
    """An S3 credentials Secret's metadata: in the velero namespace for Velero and the inventory, in
    the hub namespace for the database job; Velero's backups of the hub namespace leave it out."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if namespace != BACKUP_NAMESPACE:
        metadata["labels"] = {VELERO_EXCLUDE_LABEL: "true"}
    return metadata


def _service_account(name: str, namespace: str = BACKUP_NAMESPACE, token: bool = True) -> dict[str, Any]:
    account: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
    }
    if not token:
        account["automountServiceAccountToken"] = False
    return account


def _role(kind: str, name: str, namespace: str | None, rules: list[dict[str, Any]]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata, "rules": rules}


def _binding(role: dict[str, Any], account: str, account_namespace: str) -> dict[str, Any]:
    """The RoleBinding (or ClusterRoleBinding) of `role`, named like it, to one ServiceAccount."""
    kind = "RoleBinding" if role["kind"] == "Role" else "ClusterRoleBinding"
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": dict(role["metadata"]),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role["kind"], "name": role["metadata"]["name"]},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": account_namespace}],
    }


def render_inventory_rbac() -> list[dict[str, Any]]:
    """List exactly what inventory.sh lists, where it lists it: the hub's claims (a Role in the hub
    namespace), Trident's records (a Role in the trident namespace) and PVs (cluster-scoped, so the
    one ClusterRole). `kubectl get <kind> -o json` only lists, so `list` is the only verb."""
    claims = _role(
        "Role",
        INVENTORY_JOB,
        HUB_NAMESPACE,
        [{"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["list"]}],
    )
    trident = _role(
        "Role",
        INVENTORY_JOB,
        TRIDENT_NAMESPACE,
        [
            {
                "apiGroups": ["trident.netapp.io"],
                "resources": ["tridentvolumes", "tridentbackends", "tridentbackendconfigs"],
                "verbs": ["list"],
            }
        ],
    )
    volumes = _role(
        "ClusterRole",
        INVENTORY_JOB,
        None,
        [{"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["list"]}],
    )
    objects = [_service_account(INVENTORY_JOB)]
    for role in (claims, trident, volumes):
        objects += [role, _binding(role, INVENTORY_JOB, BACKUP_NAMESPACE)]
    return objects


def render_hub_database_account() -> dict[str, Any]:
    """The database job's account: bound to nothing, and no token is ever mounted (module docstring)."""
    return _service_account(HUB_DATABASE_JOB, HUB_NAMESPACE, token=False)


# What a restore of the hub namespace creates or changes (z2jh's objects, KubeSpawner's pods and claims,
# Velero's VolumeSnapshots); named resources only, so no subresource (pods/exec, pods/attach,
# pods/portforward, services/proxy) is writable.
VELERO_HUB_WRITES: dict[str, tuple[str, ...]] = {
    "": (
        "configmaps",
        "endpoints",
        "events",
        "persistentvolumeclaims",
        "pods",
        "secrets",
        "serviceaccounts",
        "services",
    ),
    "apps": ("daemonsets", "deployments", "replicasets", "statefulsets"),
    # this program's hub database CronJob lives there too
    "batch": ("cronjobs", "jobs"),
    "coordination.k8s.io": ("leases",),
    "networking.k8s.io": ("networkpolicies", "ingresses"),
    "policy": ("poddisruptionbudgets",),
    "rbac.authorization.k8s.io": ("roles", "rolebindings"),
    "snapshot.storage.k8s.io": ("volumesnapshots",),
}
WRITE_VERBS: tuple[str, ...] = ("create", "update", "patch", "delete")
READ_VERBS: tuple[str, ...] = ("get", "list", "watch")


def render_velero_rbac() -> list[dict[str, Any]]:
    """Velero's rights beyond the chart's own Role in the velero namespace (rbac.clusterAdministrator
    off), after Velero's restrictive-RBAC page: a Role in the namespace it backs up, a ClusterRole
    for the cluster-scoped objects of PV backups and restores."""
    hub = _role(
        "Role",
        VELERO_ROLE,
        HUB_NAMESPACE,
        [
            # A backup lists every kind the API serves in the namespace (Secrets included: a restore
            # needs them); read only.
            {"apiGroups": ["*"], "resources": ["*"], "verbs": list(READ_VERBS)},
            *(
                {"apiGroups": [group], "resources": list(resources), "verbs": list(WRITE_VERBS)}
                for group, resources in VELERO_HUB_WRITES.items()
            ),
        ],
    )
    cluster = _role(
        "ClusterRole",
        VELERO_ROLE,
        None,
        [
            # PVs of the claims it backs up, and those a restore or the data mover creates.
            {"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": [*READ_VERBS, *WRITE_VERBS]},
            # A restore recreates the hub namespace when it is gone.
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": [*READ_VERBS, "create"]},
            # The node agent finds the pods, claims and nodes of the volumes it copies on its node.
            {"apiGroups": [""], "resources": ["pods", "persistentvolumeclaims", "nodes"], "verbs": list(READ_VERBS)},
            {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": list(READ_VERBS)},
            {
                "apiGroups": ["snapshot.storage.k8s.io"],
                "resources": ["volumesnapshotclasses"],
                "verbs": list(READ_VERBS),
            },
            {
                "apiGroups": ["snapshot.storage.k8s.io"],
                "resources": ["volumesnapshotcontents"],
                "verbs": [*READ_VERBS, *WRITE_VERBS],
            },
            # A backup records the definitions of the custom resources it finds in the namespace.
            {
                "apiGroups": ["apiextensions.k8s.io"],
                "resources": ["customresourcedefinitions"],
                "verbs": list(READ_VERBS),
            },
        ],
    )
    objects = []
    for role in (hub, cluster):
        objects += [role, _binding(role, VELERO_SERVICE_ACCOUNT, BACKUP_NAMESPACE)]
    return objects


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
    namespace: str,
    schedule: str,
    producer: dict[str, Any],
    folder: str,
    suffix: str,
    ca_bundle: bool,
    pod: dict[str, Any],
    volumes: list[dict[str, Any]],
    credentials_secret: str,
) -> dict[str, Any]:
    """A CronJob whose init container writes payload + stamp into an emptyDir and whose aws-cli
    container uploads them (timestamped, then latest) with its own put-only credentials. `pod` adds to
    the pod spec, `volumes` to its volumes; no container gets a ServiceAccount token unless `volumes`
    and its producer mount one."""
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
    all_volumes: list[dict[str, Any]] = [
        {"name": "work", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "scripts", "configMap": {"name": SCRIPTS_CONFIGMAP, "defaultMode": 0o555}},
        {"name": "credentials", "secret": {"secretName": credentials_secret, "defaultMode": 0o400}},
        *volumes,
    ]
    if ca_bundle:
        upload_env["AWS_CA_BUNDLE"] = f"{CA_MOUNT}/{CA_KEY}"
        mounts.append({"name": "ca", "mountPath": CA_MOUNT, "readOnly": True})
        all_volumes.append({"name": "ca", "configMap": {"name": CA_CONFIGMAP}})
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
    pod_spec: dict[str, Any] = {
        "serviceAccountName": name,
        # The token is per pod; the uploader never calls the API server (see `volumes` for the producer).
        "automountServiceAccountToken": False,
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "fsGroup": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [producer],
        "containers": [upload],
        "volumes": all_volumes,
        **pod,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "dsaas"}},
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
                        "spec": pod_spec,
                    },
                }
            },
        },
    }


def _producer(name: str, image: str, script: str, env: dict[str, str], mounts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["bash", f"{SCRIPTS_MOUNT}/{script}"],
        "env": _env({**env, "OUT": WORK_DIR, "HOME": WORK_DIR}),
        "volumeMounts": [
            {"name": "work", "mountPath": WORK_DIR},
            {"name": "scripts", "mountPath": SCRIPTS_MOUNT, "readOnly": True},
            *mounts,
        ],
        "resources": JOB_RESOURCES,
        "securityContext": _CONTAINER_SECURITY,
    }


# The token of the inventory's account, in its `collect` container only: what the kubelet mounts for
# automountServiceAccountToken (a bound token, the cluster's CA, the namespace), where kubectl looks.
TOKEN_VOLUME: dict[str, Any] = {
    "name": "api-token",
    "projected": {
        "defaultMode": 0o444,
        "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
        ],
    },
}


def render_inventory_cronjob(settings: Settings, ca_bundle: bool) -> dict[str, Any]:
    producer = _producer(
        "collect",
        versions.KUBECTL_IMAGE,
        "inventory.sh",
        {
            "CLUSTER": settings.cluster.cluster_name,
            "HUB_NAMESPACE": HUB_NAMESPACE,
            "TRIDENT_NAMESPACE": TRIDENT_NAMESPACE,
        },
        [{"name": TOKEN_VOLUME["name"], "mountPath": TOKEN_MOUNT, "readOnly": True}],
    )
    cronjob = _upload_cronjob(
        settings,
        INVENTORY_JOB,
        BACKUP_NAMESPACE,
        settings.backup.inventory_schedule,
        producer,
        "inventory",
        ".json",
        ca_bundle,
        {},
        [TOKEN_VOLUME, {"name": "signing-key", "secret": {"secretName": INVENTORY_KEY_SECRET, "defaultMode": 0o400}}],
        INVENTORY_CREDENTIALS_SECRET,
    )
    # Signs what `collect` wrote before the uploader copies it: the hub image's Python (standard library only),
    # the key and nothing else; the containers with the API token and the S3 key never see the key.
    signer = _producer(
        "sign",
        versions.HUB_IMAGE,
        "sign_inventory.py",
        {"KEY_FILE": f"{INVENTORY_KEY_MOUNT}/{INVENTORY_KEY_KEY}"},
        [{"name": "signing-key", "mountPath": INVENTORY_KEY_MOUNT, "readOnly": True}],
    )
    signer["command"] = ["python3", f"{SCRIPTS_MOUNT}/sign_inventory.py"]
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"].append(signer)
    return cronjob


def hub_database_backed_up(settings: Settings) -> bool:
    """Whether this program dumps the hub database: SQLite on its block volume, or PostgreSQL with
    dsaas:hub.database.backup pg_dump (an `external` one is backed up by its own operators)."""
    return settings.hub.database.dumped_by_program


def render_pg_connection(url: str) -> dict[str, str]:
    """libpq's variables for the database in `url`: what pg_dump reads from its environment, so the password
    is never on its command line. `url` has passed `pg_url_problems`."""
    parts = urlsplit(url)
    variables = {
        "PGHOST": parts.hostname or "",
        "PGPORT": str(parts.port or 5432),
        "PGUSER": unquote(parts.username or ""),
        "PGDATABASE": unquote(parts.path.strip("/")),
    }
    if parts.password is not None:
        variables["PGPASSWORD"] = unquote(parts.password)
    for name, values in parse_qs(parts.query).items():
        variables[PG_QUERY_VARIABLES[name]] = values[-1]
    return variables


def render_hub_database_cronjob(settings: Settings, ca_bundle: bool) -> dict[str, Any]:
    """Beside the hub pod, on its volume, as its uid; no API access (module docstring). A PostgreSQL
    database is dumped over the network instead (`_render_pg_dump_cronjob`)."""
    if settings.hub.database.kind is HubDatabaseKind.POSTGRES:
        return _render_pg_dump_cronjob(settings, ca_bundle)
    database_dir = str(Path(HUB_SQLITE_PATH).parent)
    producer = _producer(
        "copy",
        versions.HUB_IMAGE,
        "hub-database.sh",
        {"DATABASE": HUB_SQLITE_PATH, "SCRIPT": f"{SCRIPTS_MOUNT}/sqlite_backup.py"},
        # Read-write: SQLite's readers take their locks through the database file, and a reader that
        # finds a hot journal (the hub died mid-transaction) must roll it back.
        [{"name": "hub-database", "mountPath": database_dir}],
    )
    producer["securityContext"] = {**_CONTAINER_SECURITY, "runAsUser": HUB_UID, "runAsGroup": HUB_GID}
    hub_labels = dict(term.split("=", 1) for term in HUB_SELECTOR.split(","))
    pod: dict[str, Any] = {
        "securityContext": {
            "runAsNonRoot": True,
            # The hub's fsGroup: the kubelet finds the volume's group as the hub left it.
            "fsGroup": HUB_GID,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # ReadWriteOnce: only a pod on the hub's node can mount the volume while the hub runs; without a
        # hub pod the job waits (and its deadline ends it) instead of taking the volume elsewhere.
        "affinity": {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": hub_labels}, "topologyKey": "kubernetes.io/hostname"}
                ]
            }
        },
    }
    volumes = [{"name": "hub-database", "persistentVolumeClaim": {"claimName": HUB_DATABASE_CLAIM}}]
    return _hub_database_upload(settings, producer, ".sqlite", ca_bundle, pod, volumes)


def _hub_database_upload(
    settings: Settings,
    producer: dict[str, Any],
    suffix: str,
    ca_bundle: bool,
    pod: dict[str, Any],
    volumes: list[dict[str, Any]],
) -> dict[str, Any]:
    """The hub database's CronJob around its `producer`: beside the hub, at the database schedule, into the
    bucket's hub-database/ folder with the job's own put-only key."""
    return _upload_cronjob(
        settings,
        HUB_DATABASE_JOB,
        HUB_NAMESPACE,
        settings.backup.database_schedule,
        producer,
        "hub-database",
        suffix,
        ca_bundle,
        pod,
        volumes,
        HUB_DATABASE_CREDENTIALS_SECRET,
    )


def _render_pg_dump_cronjob(settings: Settings, ca_bundle: bool) -> dict[str, Any]:
    """pg_dump of the official PostgreSQL image (its client dumps every server from 9.2 up to its own major),
    custom format (compressed, restorable table by table with pg_restore), connection from libpq's variables
    in HUB_PG_CONNECTION_SECRET; no API access, no volume but its emptyDir."""
    producer = _producer(
        "dump",
        versions.POSTGRES_CLIENT_IMAGE,
        "pg-dump.sh",
        {"PG_CLIENT_MAJOR": str(versions.POSTGRES_CLIENT_MAJOR)},
        [],
    )
    producer["envFrom"] = [{"secretRef": {"name": HUB_PG_CONNECTION_SECRET}}]
    return _hub_database_upload(settings, producer, ".dump", ca_bundle, {}, [])


def render_job_objects(settings: Settings, ca_bundle: str | None) -> list[dict[str, Any]]:
    """Every plain object of the backup jobs and Velero's roles, in apply order (ConfigMaps and RBAC
    before CronJobs). The S3 credentials Secrets are not here: they hold Pulumi secrets (backup.py)."""
    objects = [render_scripts_configmap()]
    if ca_bundle is not None:
        objects.append(render_ca_configmap(ca_bundle))
    objects += render_inventory_rbac()
    if hub_database_backed_up(settings):
        postgres = settings.hub.database.kind is HubDatabaseKind.POSTGRES
        objects.append(render_scripts_configmap(HUB_NAMESPACE, HUB_PG_SCRIPT_FILES if postgres else HUB_SCRIPT_FILES))
        if ca_bundle is not None:
            objects.append(render_ca_configmap(ca_bundle, HUB_NAMESPACE))
        objects.append(render_hub_database_account())
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
