"""Generated inventories in the shapes Trident v26.06.0 and KubeSpawner 7.0.0 really write, for the restore tests.

Every field follows the upstream file named beside it (read at the tag; nothing here is copied code):

- Claims: KubeSpawner 7.0.0's own `get_pvc_manifest` on a configured KubeSpawner (kubespawner/spawner.py),
  serialized by its Kubernetes client; `_build_common_annotations` adds hub.jupyter.org/username and, for a
  named server, hub.jupyter.org/servername. The API server and the binder add namespace, uid, finalizers,
  spec.volumeName and the bind annotations.
- PersistentVolume: the CSI external provisioner names it `pvc-<claim uid>`; Trident answers CreateVolume with
  VolumeId = volume.Config.Name and VolumeContext {backendUUID, name, internalName, protocol, internalID when
  set} (frontend/csi/controller_server.go, getCSIVolumeFromTridentVolume).
- TridentVolume: top-level backendUUID/config/orphaned/pool/state (persistent_store/crd/apis/netapp/v1/types.go);
  config is storage.VolumeConfig (storage/volume.go: internalName, internalID, size in bytes as text, namespace,
  requestName, exportPolicy, accessInformation = models.VolumeAccessInfo with nfsServerIp/nfsPath,
  utils/models/types.go).
- Names: the backend's nameTemplate (the project's VOLUME_NAME_TEMPLATE) rendered and sanitized as
  GetVolumeNameFromTemplate does (storage_drivers/ontap/ontap_common.go: non [A-Za-z0-9_] -> `_`, runs of `_`
  collapsed, trimmed); an economy name longer than 64 falls back to GetCommonInternalVolumeName
  (`<prefix>-<pvc name>`, `-`/`.` -> `_`; storage_drivers/ontap/ontap_nas_qtree.go GetInternalVolumeName).
- Economy: FlexVols are `trident_qtree_pool_<storagePrefix>_` + RandomString(10) (A-Z; ontap_nas_qtree.go
  Initialize/createFlexvolForQtree, internal/crypto/crypto.go); internalID `/svm/<svm>/flexvol/<flexvol>/qtree/
  <qtree>` (CreateQtreeInternalID); nfsPath `/<flexvol junction>/<qtree>` (CreateFollowup,
  ConstructOntapNASQTreeVolumePath); with autoExportPolicy the qtree's export policy is `<prefix>empty`
  (getEmptyExportPolicyName). ontap-nas: nfsPath `/<internalName>`, no internalID (ontap_nas.go CreateFollowup).
- TridentBackend: metadata.generateName `tbe-` (persistent_store/crd/apis/netapp/v1/backend.go), config under
  `ontap_config` (storage/backend.go PersistentStorageBackendConfig); backend names and TridentBackendConfig
  names as components/trident_render.py renders them (`<clusterName>-<driver>`, `backend-<driver>`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import random
import re
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, TypeVar

from kubernetes_asyncio.client import ApiClient

from components.hub_render import HUB_NAMESPACE
from components.restore_render import PlannedHome, render_static_claim, render_static_volume
from components.trident_render import HOMES_CLASS, VOLUME_LABELS, backend_name
from config.storage import NasDriver
from tools.dr.restore import NameScheme, _spawner, _User, kubespawner_claim_name

T = TypeVar("T")
SCHEME = NameScheme("claim-{username}", "safe")
GIB = 1024**3
QTREES_PER_FLEXVOL = 200  # Trident's default qtreesPerFlexvol (ontap_nas_qtree.go defaultQtreesPerFlexvol)
TRIDENT = "csi.trident.netapp.io"
# GetVolumeNameFromTemplate's sanitizing (ontap_common.go volumeCharRegex and "__*").
_NOT_ONTAP = re.compile(r"[^a-zA-Z0-9_]")
_UNDERSCORES = re.compile(r"__*")


def run_private(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` on a loop of its own, in a thread of its own: the calling thread's event loop is left
    alone (`asyncio.run` would unset it, and later tests that ask for it, such as Pulumi's mocks, would
    fail), and a loop still running in this thread (a harness, an earlier test) cannot get in the way."""

    def on_a_new_loop() -> T:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # this worker thread's own; KubeSpawner asks for the current loop
        try:
            return loop.run_until_complete(coroutine)
        finally:
            # KubeSpawner leaves a task behind that closes its shared API client; end it with the loop.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            asyncio.set_event_loop(None)
            loop.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(on_a_new_loop).result()


def tricky_users(count: int) -> list[str]:
    """User names that test a slug: capitals, dots, @, non-ASCII, very long, near-collisions."""
    fixed = [
        "alice",
        "Alice.Smith",
        "bob@dc.example.org",
        "Jürgen.Müller",
        "zoë",
        "李雷",
        "o'brien",
        "a" * 70,
        "very.long.name.of.a.research.associate@institute.example.org",
        "UPPER",
        "upper",  # the slug of UPPER differs: 'safe' adds a hash to anything it had to change
        "x-y",
        "x.y",
        "-leading-dash",
        "user_with_underscore",
        "123numeric",
    ]
    users = fixed[:count]
    i = 0
    while len(users) < count:
        users.append(["r.{i}", "R{i}@lab", "ü{i}", "user{i}"][i % 4].format(i=i))
        i += 1
    return users


@dataclass(frozen=True)
class Backend:
    name: str
    uuid: str
    driver: str
    config_uid: str
    object_name: str


def backends(cluster: str, prefix: str) -> dict[str, Backend]:
    seed = uuid.uuid5(uuid.NAMESPACE_DNS, f"{cluster}/{prefix}")
    letters = random.Random(str(seed))
    settings = SimpleNamespace(cluster=SimpleNamespace(cluster_name=cluster))
    return {
        driver: Backend(
            name=backend_name(settings, driver),  # type: ignore[arg-type]
            uuid=str(uuid.uuid5(seed, driver)),
            driver=driver,
            config_uid=str(uuid.uuid5(seed, "tbc-" + driver)),
            # generateName "tbe-": the API server appends five random lower-case letters and digits.
            object_name="tbe-" + "".join(letters.choices("bcdfghjklmnpqrstvwxz2456789", k=5)),
        )
        for driver in (NasDriver.ONTAP_NAS.value, NasDriver.ONTAP_NAS_ECONOMY.value)
    }


def template_name(prefix: str, namespace: str, claim: str, pv_name: str) -> str:
    """The project's nameTemplate `{{.config.StoragePrefix}}_{{.volume.Namespace}}_{{.volume.RequestName}}_
    {{slice .volume.Name 4 9}}` rendered and sanitized as Trident's GetVolumeNameFromTemplate does."""
    rendered = f"{prefix}_{namespace}_{claim}_{pv_name[4:9]}"
    return _UNDERSCORES.sub("_", _NOT_ONTAP.sub("_", rendered)).strip("_")


def common_name(prefix: str, pv_name: str) -> str:
    """GetCommonInternalVolumeName + the qtree driver's sanitizing: the economy fallback past 64 characters."""
    internal = f"{prefix}-{pv_name}".replace("-", "_").replace(".", "_")
    while "__" in internal:
        internal = internal.replace("__", "_")
    return internal


def economy_flexvol(prefix: str, index: int) -> str:
    """`trident_qtree_pool_<prefix>_` + RandomString(10) (upper-case letters), one per 200 qtrees."""
    letters = random.Random(f"{prefix}/{index}")
    stem = f"trident_qtree_pool_{prefix}_".replace("-", "_").replace("__", "_")
    return stem + "".join(letters.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=10))


def kubespawner_claim(
    user: str, capacity: str, scheme: NameScheme = SCHEME, server: str = "", slug_scheme: str | None = None
) -> dict[str, Any]:
    """The claim KubeSpawner 7 itself would ask the API server for (its own manifest, serialized)."""
    spawner = _spawner(scheme)
    spawner.user = _User(user)
    # Spawner.name reads the hub database's spawner row (jupyterhub/spawner.py): its name is the server's.
    spawner.orm_spawner = SimpleNamespace(name=server, server=None) if server else None
    spawner.storage_class = HOMES_CLASS
    spawner.storage_capacity = capacity
    spawner.storage_access_modes = ["ReadWriteOnce"]
    template = scheme.pvc_name_template if not server else "claim-{user_server}"
    spawner.pvc_name = spawner._expand_user_properties(template, slug_scheme=slug_scheme)
    try:
        manifest = spawner.get_pvc_manifest()
    finally:
        spawner.orm_spawner = None

    async def serialize() -> dict[str, Any]:
        async with ApiClient() as client:
            result: dict[str, Any] = client.sanitize_for_serialization(manifest)
            return result

    return run_private(serialize())


def _bind(claim: dict[str, Any], uid: str, pv_name: str, index: int, size_gib: int) -> None:
    """What the API server and the binder add to a created claim."""
    meta = claim["metadata"]
    meta.update(
        namespace=HUB_NAMESPACE,
        uid=uid,
        resourceVersion=str(1000 + index),
        creationTimestamp="2026-03-02T09:00:00Z",
        finalizers=["kubernetes.io/pvc-protection"],
    )
    meta["annotations"].update(
        {"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes"}
    )
    claim["spec"].update(volumeMode="Filesystem", volumeName=pv_name)
    claim["status"] = {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": f"{size_gib}Gi"}}


def make_inventory(
    users: Sequence[str],
    *,
    cluster: str = "dsaas-prod",
    svm: str = "svm_dsaas",
    data_lif: str = "10.40.8.20",
    prefix: str = "dsaasprod",  # the prod stack's dsaas:storage.storagePrefix
    economy: Sequence[bool] | None = None,
    legacy: Sequence[str] = (),
    named: Mapping[str, str] | None = None,
    restored: Sequence[str] = (),
    released: Sequence[str] = (),
    written: str = "2026-12-01T02:15:00Z",
) -> dict[str, Any]:
    """An inventory (format dsaas-inventory/1) for `users`: `economy[i]` puts user i on ontap-nas-economy;
    users in `legacy` have the claim KubeSpawner 6 named with the old 'escape' scheme; `named` gives a user a
    named server with its own claim (the old default template `claim-{user_server}`); users in `restored` have
    the static NFS home an earlier restore made (no TridentVolume; economy only); users in `released` had their
    claim deleted: their PV is Released and no claim is listed."""
    economy = economy if economy is not None else [i % 2 == 1 for i in range(len(users))]
    named = dict(named or {})
    known = backends(cluster, prefix)
    template_claim: dict[str, Any] | None = None
    claims: list[dict[str, Any]] = []
    pvs: list[dict[str, Any]] = []
    tvs: list[dict[str, Any]] = []
    qtrees = 0
    homes: list[tuple[str, str]] = [(user, "") for user in users]
    homes += [(user, server) for user, server in named.items()]
    for i, (user, server) in enumerate(homes):
        size_gib = 10 + i % 3 * 10
        on_economy = economy[users.index(user)] if user in users else False
        if len(users) > 500 and template_claim is not None and not server:
            claim = copy.deepcopy(template_claim)  # 10,000 real manifests take a while: same shape, new names
            claim["metadata"]["annotations"]["hub.jupyter.org/username"] = user
            claim["metadata"]["name"] = kubespawner_claim_name(user, SCHEME)
            claim["spec"]["resources"]["requests"]["storage"] = f"{size_gib}Gi"
        else:
            slug = "escape" if user in legacy and not server else None
            claim = kubespawner_claim(user, f"{size_gib}Gi", server=server, slug_scheme=slug)
            if not server and slug is None:
                template_claim = copy.deepcopy(claim)
        uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{cluster}/{user}/{server}"))
        if user in restored and not server:
            home = PlannedHome.model_validate(
                {
                    "user": user,
                    "claim": claim["metadata"]["name"],
                    "driver": NasDriver.ONTAP_NAS_ECONOMY.value,
                    "qtree": {
                        "flexvol": (flexvol := economy_flexvol(prefix, 99)),
                        "name": (qtree := common_name(prefix, f"pvc-{uid}")),
                        "junctionPath": f"/{flexvol}/{qtree}",
                    },
                    "dataLif": data_lif,
                    "sizeBytes": size_gib * GIB,
                }
            )
            mounts = SimpleNamespace(storage=SimpleNamespace(nfs_mount_options="nfsvers=4.1,hard"))
            pv = render_static_volume(home, mounts)  # type: ignore[arg-type]
            pv["spec"]["claimRef"]["uid"] = uid
            pv["status"] = {"phase": "Bound"}
            claim = render_static_claim(home)
            claim["metadata"]["annotations"].pop("pulumi.com/waitFor", None)
            _bind(claim, uid, pv["metadata"]["name"], i, size_gib)
            claims.append(claim)
            pvs.append(pv)
            continue
        pv_name = f"pvc-{uid}"
        backend = known[NasDriver.ONTAP_NAS_ECONOMY.value if on_economy else NasDriver.ONTAP_NAS.value]
        internal = template_name(prefix, HUB_NAMESPACE, claim["metadata"]["name"], pv_name)
        if on_economy:
            if len(internal) > 64:
                internal = common_name(prefix, pv_name)
            flexvol = economy_flexvol(prefix, qtrees // QTREES_PER_FLEXVOL)
            qtrees += 1
            internal_id: str | None = f"/svm/{svm}/flexvol/{flexvol}/qtree/{internal}"
            nfs_path = f"/{flexvol}/{internal}"
            export_policy = f"{prefix}empty"  # autoExportPolicy: unpublished qtrees sit on <prefix>empty
        else:
            internal_id = None
            nfs_path = f"/{internal}"
            export_policy = f"trident-{backend.uuid}"
        _bind(claim, uid, pv_name, i, size_gib)
        claim["metadata"]["annotations"].update(
            {
                "volume.beta.kubernetes.io/storage-provisioner": TRIDENT,
                "volume.kubernetes.io/storage-provisioner": TRIDENT,
            }
        )
        claim_ref = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "name": claim["metadata"]["name"],
            "namespace": HUB_NAMESPACE,
            "uid": uid,
            "resourceVersion": str(1000 + i),
        }
        attributes = {"backendUUID": backend.uuid, "internalName": internal, "name": pv_name, "protocol": "file"}
        if internal_id:
            attributes["internalID"] = internal_id
        pvs.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {
                    "name": pv_name,
                    "annotations": {
                        "pv.kubernetes.io/provisioned-by": TRIDENT,
                        "volume.kubernetes.io/provisioner-deletion-secret-name": "",
                        "volume.kubernetes.io/provisioner-deletion-secret-namespace": "",
                    },
                    "finalizers": [
                        "external-provisioner.volume.kubernetes.io/finalizer",
                        "kubernetes.io/pv-protection",
                    ],
                },
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "capacity": {"storage": f"{size_gib}Gi"},
                    "claimRef": claim_ref,
                    "csi": {"driver": TRIDENT, "volumeHandle": pv_name, "volumeAttributes": attributes},
                    "mountOptions": ["nfsvers=4.1", "hard"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": HOMES_CLASS,
                    "volumeMode": "Filesystem",
                },
                "status": {"phase": "Released" if user in released else "Bound"},
            }
        )
        if user not in released:
            claims.append(claim)
        config: dict[str, Any] = {
            "version": "1",
            "name": pv_name,
            "internalName": internal,
            "size": str(size_gib * GIB),
            "protocol": "file",
            "spaceReserve": "none",
            "securityStyle": "unix",
            "snapshotPolicy": "none",
            "snapshotReserve": "0",
            "snapshotDirectory": "true",
            "exportPolicy": export_policy,
            "unixPermissions": "0770",
            "storageClass": HOMES_CLASS,
            "accessMode": "ReadWriteOnce",
            "volumeMode": "Filesystem",
            "accessInformation": {"nfsServerIp": data_lif, "nfsPath": nfs_path, "mountOptions": "nfsvers=4.1,hard"},
            "blockSize": "",
            "fileSystem": "nfs",
            "encryption": "",
            "cloneSourceVolume": "",
            "cloneSourceVolumeInternal": "",
            "cloneSourceSnapshot": "",
            "cloneSourceSnapshotInternal": "",
            "splitOnClone": "",
            "readOnlyClone": False,
            "shareSourceVolume": "",
            "namespace": HUB_NAMESPACE,
            "requestName": claim["metadata"]["name"],
            "skipRecoveryQueue": "",
        }
        if internal_id:
            config["internalID"] = internal_id
        tvs.append(
            {
                "apiVersion": "trident.netapp.io/v1",
                "kind": "TridentVolume",
                "metadata": {"name": pv_name, "namespace": "trident", "finalizers": ["trident.netapp.io"]},
                "backendUUID": backend.uuid,
                "config": config,
                "orphaned": False,
                "pool": "aggr1",
                "state": "online",
            }
        )
    return {
        "format": "dsaas-inventory/1",
        "cluster": cluster,
        "written": written,
        "persistentVolumeClaims": _list("v1", claims),
        "persistentVolumes": _list("v1", pvs),
        "tridentVolumes": _list("trident.netapp.io/v1", tvs),
        "tridentBackends": _list("trident.netapp.io/v1", [_backend(b, svm, data_lif, prefix) for b in known.values()]),
        "tridentBackendConfigs": _list(
            "trident.netapp.io/v1", [_backend_config(b, svm, data_lif, prefix) for b in known.values()]
        ),
    }


def _ontap_config(b: Backend, svm: str, data_lif: str, prefix: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": 1,
        "storageDriverName": b.driver,
        "backendName": b.name,
        "managementLIF": "svm-dsaas-mgmt.dc.example.org",
        "dataLIF": data_lif,
        "svm": svm,
        "storagePrefix": prefix,
        "autoExportPolicy": True,
    }
    if b.driver == NasDriver.ONTAP_NAS.value:
        config["labels"] = dict(VOLUME_LABELS)
    return config


def _backend(b: Backend, svm: str, data_lif: str, prefix: str) -> dict[str, Any]:
    return {
        "apiVersion": "trident.netapp.io/v1",
        "kind": "TridentBackend",
        "metadata": {"name": b.object_name, "generateName": "tbe-", "namespace": "trident"},
        "backendName": b.name,
        "backendUUID": b.uuid,
        "config": {"ontap_config": _ontap_config(b, svm, data_lif, prefix)},
        "configRef": b.config_uid,
        "online": True,
        "state": "online",
        "userState": "normal",
        "version": "1",
    }


def _backend_config(b: Backend, svm: str, data_lif: str, prefix: str) -> dict[str, Any]:
    spec = {k: v for k, v in _ontap_config(b, svm, data_lif, prefix).items() if k != "labels"}
    return {
        "apiVersion": "trident.netapp.io/v1",
        "kind": "TridentBackendConfig",
        "metadata": {"name": f"backend-{b.driver}", "namespace": "trident", "uid": b.config_uid},
        "spec": {**spec, "credentials": {"name": "ontap-credentials"}, "deletionPolicy": "retain"},
        "status": {
            "backendInfo": {"backendName": b.name, "backendUUID": b.uuid},
            "deletionPolicy": "retain",
            "lastOperationStatus": "Success",
            "phase": "Bound",
        },
    }


def _list(api_version: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}
