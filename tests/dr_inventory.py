"""Generated inventories in the real shapes, for the restore planner's tests.

Claims are KubeSpawner 7's own manifests (`get_pvc_manifest` on a configured KubeSpawner, serialized by
its Kubernetes client) plus what the API server and the binder add (namespace, uid, finalizers,
spec.volumeName, status, bind annotations). PersistentVolumes are Trident CSI volumes as the external
provisioner writes them; TridentVolumes, TridentBackends and TridentBackendConfigs follow Trident's CRD
types (persistent_store/crd/apis/netapp/v1: TridentVolume's top-level backendUUID/config/orphaned/pool/
state, its config being storage.VolumeConfig: internalName, internalID, size in bytes, accessInformation
with nfsServerIp/nfsPath). Economy volumes are qtrees: internalID /svm/<svm>/flexvol/<pool>/qtree/<qtree>.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes_asyncio.client import ApiClient

from components.hub_render import HUB_NAMESPACE
from components.trident_render import HOMES_CLASS
from tools.dr.restore import NameScheme, _spawner, _User, kubespawner_claim_name

T = TypeVar("T")
SCHEME = NameScheme("claim-{username}", "safe")
GIB = 1024**3
QTREES_PER_FLEXVOL = 200  # Trident's default qtreesPerFlexvol


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


def backends(svm: str, data_lif: str, prefix: str) -> dict[str, Backend]:
    seed = uuid.uuid5(uuid.NAMESPACE_DNS, prefix)
    return {
        driver: Backend(
            name=f"dsaas-{driver}",
            uuid=str(uuid.uuid5(seed, driver)),
            driver=driver,
            config_uid=str(uuid.uuid5(seed, "tbc-" + driver)),
        )
        for driver in ("ontap-nas", "ontap-nas-economy")
    }


def kubespawner_claim(user: str, capacity: str, scheme: NameScheme = SCHEME) -> dict[str, Any]:
    """The claim KubeSpawner 7 itself would ask the API server for (its own manifest, serialized)."""
    spawner = _spawner(scheme)
    spawner.user = _User(user)
    spawner.storage_class = HOMES_CLASS
    spawner.storage_capacity = capacity
    spawner.storage_access_modes = ["ReadWriteOnce"]
    spawner.pvc_name = spawner._expand_user_properties(spawner.pvc_name_template)
    manifest = spawner.get_pvc_manifest()

    async def serialize() -> dict[str, Any]:
        async with ApiClient() as client:
            result: dict[str, Any] = client.sanitize_for_serialization(manifest)
            return result

    return run_private(serialize())


def make_inventory(
    users: Sequence[str],
    *,
    cluster: str = "dsaas-prod",
    svm: str = "svm_dsaas",
    data_lif: str = "10.40.8.20",
    prefix: str = "dsaasprod",
    economy: Sequence[bool] | None = None,
    legacy: Sequence[str] = (),
    written: str = "2026-12-01T02:15:00Z",
) -> dict[str, Any]:
    """An inventory (format dsaas-inventory/1) for `users`: `economy[i]` puts user i on ontap-nas-economy;
    users in `legacy` have the claim KubeSpawner 6 named with the old 'escape' scheme."""
    economy = economy if economy is not None else [i % 2 == 1 for i in range(len(users))]
    known = backends(svm, data_lif, prefix)
    template_claim: dict[str, Any] | None = None
    claims: list[dict[str, Any]] = []
    pvs: list[dict[str, Any]] = []
    tvs: list[dict[str, Any]] = []
    for i, user in enumerate(users):
        size_gib = 10 + i % 3 * 10
        if len(users) > 500 and template_claim is not None:
            claim = copy.deepcopy(template_claim)  # 10,000 real manifests take a while: same shape, new names
            claim["metadata"]["annotations"]["hub.jupyter.org/username"] = user
            claim["metadata"]["name"] = kubespawner_claim_name(user, SCHEME)
            claim["spec"]["resources"]["requests"]["storage"] = f"{size_gib}Gi"
        else:
            claim = kubespawner_claim(user, f"{size_gib}Gi")
            template_claim = copy.deepcopy(claim)
        if user in legacy:
            legacy_spawner = _spawner(SCHEME)
            legacy_spawner.user = _User(user)
            claim["metadata"]["name"] = legacy_spawner._expand_user_properties(
                legacy_spawner.pvc_name_template, slug_scheme="escape"
            )
        uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{cluster}/{user}"))
        pv_name = f"pvc-{uid}"
        backend = known["ontap-nas-economy" if economy[i] else "ontap-nas"]
        internal = f"{prefix}_pvc_{uid.replace('-', '_')}"
        if economy[i]:
            pool = f"{prefix}_qtree_pool_{'abcdefghij'[i // QTREES_PER_FLEXVOL % 10]}{i // QTREES_PER_FLEXVOL:04d}"
            internal_id = f"/svm/{svm}/flexvol/{pool}/qtree/{internal}"
            nfs_path = f"/{pool}/{internal}"
        else:
            internal_id = f"/svm/{svm}/flexvol/{internal}"
            nfs_path = f"/{internal}"
        meta = claim["metadata"]
        meta.update(
            namespace=HUB_NAMESPACE,
            uid=uid,
            resourceVersion=str(1000 + i),
            creationTimestamp="2026-03-02T09:00:00Z",
            finalizers=["kubernetes.io/pvc-protection"],
        )
        meta["annotations"].update(
            {
                "pv.kubernetes.io/bind-completed": "yes",
                "pv.kubernetes.io/bound-by-controller": "yes",
                "volume.beta.kubernetes.io/storage-provisioner": "csi.trident.netapp.io",
                "volume.kubernetes.io/storage-provisioner": "csi.trident.netapp.io",
            }
        )
        claim["spec"].update(volumeMode="Filesystem", volumeName=pv_name)
        claim["status"] = {
            "phase": "Bound",
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": f"{size_gib}Gi"},
        }
        claims.append(claim)
        pvs.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {
                    "name": pv_name,
                    "annotations": {"pv.kubernetes.io/provisioned-by": "csi.trident.netapp.io"},
                    "finalizers": [
                        "external-provisioner.volume.kubernetes.io/finalizer",
                        "kubernetes.io/pv-protection",
                    ],
                },
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "capacity": {"storage": f"{size_gib}Gi"},
                    "claimRef": {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "name": meta["name"],
                        "namespace": HUB_NAMESPACE,
                        "uid": uid,
                    },
                    "csi": {
                        "driver": "csi.trident.netapp.io",
                        "fsType": "nfs",
                        "volumeHandle": pv_name,
                        "volumeAttributes": {
                            "backendUUID": backend.uuid,
                            "internalName": internal,
                            "name": pv_name,
                            "protocol": "file",
                        },
                    },
                    "mountOptions": ["nfsvers=4.1", "hard"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": HOMES_CLASS,
                    "volumeMode": "Filesystem",
                },
                "status": {"phase": "Bound"},
            }
        )
        tvs.append(
            {
                "apiVersion": "trident.netapp.io/v1",
                "kind": "TridentVolume",
                "metadata": {"name": pv_name, "namespace": "trident", "finalizers": ["trident.netapp.io"]},
                "backendUUID": backend.uuid,
                "config": {
                    "version": "1",
                    "name": pv_name,
                    "internalName": internal,
                    "internalID": internal_id,
                    "size": str(size_gib * GIB),
                    "protocol": "file",
                    "spaceReserve": "none",
                    "securityStyle": "unix",
                    "snapshotPolicy": "default",
                    "snapshotReserve": "10",
                    "unixPermissions": "0770",
                    "storageClass": HOMES_CLASS,
                    "accessMode": "ReadWriteOnce",
                    "volumeMode": "Filesystem",
                    "accessInformation": {"nfsServerIp": data_lif, "nfsPath": nfs_path},
                    "requisiteTopology": None,
                    "preferredTopology": None,
                },
                "orphaned": False,
                "pool": "aggr1_node1",
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
        "tridentBackends": _list(
            "trident.netapp.io/v1",
            [
                {
                    "apiVersion": "trident.netapp.io/v1",
                    "kind": "TridentBackend",
                    "metadata": {"name": f"tbe-{b.uuid[:5]}", "namespace": "trident"},
                    "backendName": b.name,
                    "backendUUID": b.uuid,
                    "config": {
                        "ontap_config": {
                            "version": 1,
                            "storageDriverName": b.driver,
                            "managementLIF": "svm-dsaas-mgmt.dc.example.org",
                            "dataLIF": data_lif,
                            "svm": svm,
                            "storagePrefix": f"{prefix}_",
                        }
                    },
                    "configRef": b.config_uid,
                    "online": True,
                    "state": "online",
                    "userState": "normal",
                    "version": "1",
                }
                for b in known.values()
            ],
        ),
        "tridentBackendConfigs": _list(
            "trident.netapp.io/v1",
            [
                {
                    "apiVersion": "trident.netapp.io/v1",
                    "kind": "TridentBackendConfig",
                    "metadata": {"name": b.name, "namespace": "trident", "uid": b.config_uid},
                    "spec": {
                        "version": 1,
                        "storageDriverName": b.driver,
                        "managementLIF": "svm-dsaas-mgmt.dc.example.org",
                        "dataLIF": data_lif,
                        "svm": svm,
                        "storagePrefix": f"{prefix}_",
                        "credentials": {"name": "ontap-credentials"},
                    },
                    "status": {
                        "backendInfo": {"backendName": b.name, "backendUUID": b.uuid},
                        "deletionPolicy": "retain",
                        "lastOperationStatus": "Success",
                        "phase": "Bound",
                    },
                }
                for b in known.values()
            ],
        ),
    }


def _list(api_version: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}
