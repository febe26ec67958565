"""Restore, bound for real: the program's restore objects on a real API server, bound by the real PV binder.

For each home driver, a rebuilt prod stack's graph with the fixture plan (tests/fixtures/restore.prod.*.yaml:
50 users, long names, odd characters, names that differ only in case or punctuation) gives the objects the
program applies before the hub: the hub namespace, the storage classes, the static volumes (economy) and
the claims. They are applied server-side, as Pulumi's Kubernetes provider does, to a fresh control plane
whose kube-controller-manager runs the real `persistentvolume-binder`.

- ontap-nas-economy: static NFS volumes with a `claimRef`, claims with `volumeName`; the binder alone binds.
- ontap-nas: import-annotated claims. Trident is not here, so `TridentImportStandIn` does what Trident's
  CSI controller and the csi-provisioner sidecar do for such a claim (create the PV, pre-bound to it);
  the binding that follows is again the real binder's.

Then the hub's side: the chart's own jupyterhub_config.py and KubeSpawner 7's own code, for every planned
user as a returning user after a lost hub database (tests/controlplane/returning_user.py), find the claim
by the name KubeSpawner computes and try to create it as KubeSpawner does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components import restore_render as render
from components.hub_render import HUB_NAMESPACE, HUB_POD_SECURITY_LEVEL
from tests.conftest import ROOT_DIR
from tests.controlplane.conftest import StartControlPlane
from tests.test_hub_values import hub_values
from tests.test_restore_drill import DRIVERS, drill_values, fixture_plan
from tools.controlplane.client import ApiError, KubeClient
from tools.controlplane.cluster import ControlPlane
from tools.lab.hub import CHART_FILES, HUB_ETC, ChartHub
from tools.lab.procs import wait_until
from tools.offline.mockgraph import Graph, kubernetes_objects, read_stack_values, run_program

pytestmark = pytest.mark.slow

TRIDENT = "csi.trident.netapp.io"
CLAIMS = f"/api/v1/namespaces/{HUB_NAMESPACE}/persistentvolumeclaims"
VOLUMES = "/api/v1/persistentvolumes"
# The binder re-examines every claim and volume each --pvclaimbinder-sync-period (15 s by default): after
# its first refusal, one more period and a margin shows that what is unbound stays unbound.
BINDER_PASSES_SECONDS = 20.0
BIND_TIMEOUT_SECONDS = 120.0


def claim_path(name: str) -> str:
    return f"{CLAIMS}/{name}"


def volume_path(name: str) -> str:
    return f"{VOLUMES}/{name}"


def restore_objects(graph: Graph) -> list[dict[str, Any]]:
    """What the program applies for a restore, in the graph's dependency order: the hub namespace and the
    storage classes, then the static volumes, then the claims (each claim depends on its volume)."""
    restore = graph.by_name("restore")
    children = [r for r in graph.resources if r.parent == restore.urn]
    order = ("Namespace", "StorageClass", "PersistentVolume", "PersistentVolumeClaim")
    objects = [*kubernetes_objects(graph.by_name("hub-namespace"))]
    objects += [o for r in graph.of_type("kubernetes:storage.k8s.io/v1:StorageClass") for o in kubernetes_objects(r)]
    objects += [o for r in children for o in kubernetes_objects(r)]
    return sorted(objects, key=lambda o: order.index(o["kind"]))


def backend_uuid(graph: Graph, driver: str) -> str:
    from tools.offline.mockgraph import unwrap

    status = unwrap(graph.by_name(f"storage-backend-{driver}").outputs["status"])
    return str(status["backendInfo"]["backendUUID"])


# --- the stand-in for Trident's import --------------------------------------------------------------


@dataclass
class TridentImportStandIn:
    """What Trident v26.06.0 and its csi-provisioner sidecar do for an import-annotated claim, reduced to
    what the API server sees; a stand-in, not Trident. Followed (read, not copied):

    - frontend/csi/controller_helpers/kubernetes/helper.go `GetVolumeConfig`: the claim must be Pending,
      have a storage request, name a storage class whose provisioner is csi.trident.netapp.io; the
      `trident.netapp.io/import*` annotations become the volume config's ImportOriginalName/BackendUUID;
    - frontend/csi/controller_server.go `CreateVolume`: an ImportOriginalName means `orchestrator.ImportVolume`;
    - core/orchestrator_core.go `ImportVolume` / `validateImportVolume`: the backend must be the one named
      by UUID, the volume must exist on it, the request must not exceed the volume's size, and a volume
      already managed is refused ("PV ... already exists for volume ...");
    - frontend/csi/controller_helpers/kubernetes/import.go: the PV that follows is `pvc-<claim uid>`
      (Trident waits for exactly that name), created by the sidecar: CSI driver csi.trident.netapp.io,
      volumeHandle = the Trident volume name (= the PV name), capacity = the imported volume's size, the
      class's reclaim policy, a claimRef with the claim's uid, `pv.kubernetes.io/provisioned-by`.

    It acts only once the binder has handed the claim to Trident (`volume.kubernetes.io/storage-provisioner`
    on the claim), as the sidecar does.
    """

    client: KubeClient
    backend_uuid: str
    ontap_volumes: dict[str, int]
    """What the ONTAP backend holds: FlexVol name → size in bytes."""
    imported: dict[str, str] = field(default_factory=dict)
    """FlexVol name → PV name, once imported."""
    refused: dict[str, str] = field(default_factory=dict)
    """Claim name → why Trident would refuse it."""

    def import_pending(self) -> None:
        for claim in self.client.items(CLAIMS):
            metadata, annotations = claim["metadata"], claim["metadata"].get("annotations", {})
            original = annotations.get(render.IMPORT_ORIGINAL_NAME)
            if original is None or claim.get("status", {}).get("phase") != "Pending":
                continue
            if annotations.get("volume.kubernetes.io/storage-provisioner") != TRIDENT:
                continue  # the binder has not handed it to an external provisioner (yet)
            if f"pvc-{metadata['uid']}" in self.imported.values():
                continue  # provisioned; the binder has not bound it yet (the sidecar skips it too)
            problem = self._refusal(claim, original, annotations.get(render.IMPORT_BACKEND_UUID, ""))
            if problem:
                self.refused[metadata["name"]] = problem
                continue
            self.client.create(VOLUMES, self._volume(claim, original))
            self.imported[original] = f"pvc-{metadata['uid']}"

    def _refusal(self, claim: dict[str, Any], original: str, uuid: str) -> str | None:
        class_name = claim["spec"].get("storageClassName") or ""
        storage_class = self.client.get_or_none(f"/apis/storage.k8s.io/v1/storageclasses/{class_name}")
        if storage_class is None or storage_class["provisioner"] != TRIDENT:
            return f"the provisioner for storage class {class_name} is not {TRIDENT}"
        if uuid != self.backend_uuid:
            return f"backend {uuid} not found"
        if original not in self.ontap_volumes:
            return f"volume {original} was not found"
        if original in self.imported:
            return f"PV {original} already exists for volume {self.imported[original]}"
        if _bytes(claim["spec"]["resources"]["requests"]["storage"]) > self.ontap_volumes[original]:
            return "requested size is more than actual size"
        return None

    def _volume(self, claim: dict[str, Any], original: str) -> dict[str, Any]:
        metadata = claim["metadata"]
        name = f"pvc-{metadata['uid']}"
        storage_class = self.client.get(f"/apis/storage.k8s.io/v1/storageclasses/{claim['spec']['storageClassName']}")
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": TRIDENT}},
            "spec": {
                "capacity": {"storage": str(self.ontap_volumes[original])},
                "accessModes": claim["spec"]["accessModes"],
                "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy", "Delete"),
                "storageClassName": claim["spec"]["storageClassName"],
                "volumeMode": claim["spec"].get("volumeMode", "Filesystem"),
                "csi": {
                    "driver": TRIDENT,
                    "volumeHandle": name,
                    "fsType": storage_class.get("parameters", {}).get("fsType", "nfs"),
                    "volumeAttributes": {"backendUUID": self.backend_uuid, "name": name, "protocol": "file"},
                },
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": metadata["namespace"],
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                },
            },
        }


def _bytes(quantity: str) -> int:
    # The API server writes quantities back in canonical form (13958656000 → "13958656k").
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "k": 1000, "M": 1000**2, "G": 1000**3}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(quantity[: -len(suffix)]) * factor
    return int(quantity)


# --- one restore per driver, on its own control plane -----------------------------------------------


@dataclass
class Restore:
    driver: str
    plane: ControlPlane
    client: KubeClient
    graph: Graph
    plan: dict[str, Any]
    warnings: dict[str, tuple[str, ...]]
    """`Kind/name` → the API server's warnings for that object's apply (only those with any)."""
    bind_seconds: float
    stand_in: TridentImportStandIn | None

    def claims(self) -> dict[str, dict[str, Any]]:
        return {c["metadata"]["name"]: c for c in self.client.items(CLAIMS)}

    def volumes(self) -> dict[str, dict[str, Any]]:
        return {v["metadata"]["name"]: v for v in self.client.items(VOLUMES)}

    def expected_volume(self, home: dict[str, Any]) -> str:
        """The volume that is this home: the static one, or the one made from its FlexVol."""
        if self.driver == "ontap-nas-economy":
            return render.static_volume_name(home["claim"])
        assert self.stand_in is not None
        return self.stand_in.imported[home["volume"]]


def _all_bound(client: KubeClient, names: set[str], stand_in: TridentImportStandIn | None) -> bool:
    if stand_in is not None:
        stand_in.import_pending()
    phases = {c["metadata"]["name"]: c.get("status", {}).get("phase") for c in client.items(CLAIMS)}
    return all(phases.get(name) == "Bound" for name in names)


@pytest.fixture(scope="module", params=DRIVERS)
def restore(request: pytest.FixtureRequest, start_control_plane: StartControlPlane) -> Iterator[Restore]:
    driver: str = request.param
    graph = run_program("prod", drill_values(read_stack_values("prod"), driver))
    plan = fixture_plan(driver)
    plane = start_control_plane()
    client = plane.client()
    warnings: dict[str, tuple[str, ...]] = {}
    objects = restore_objects(graph)
    started = time.monotonic()
    for document in objects:
        answer = client.apply(document, force=False)
        if answer.warnings:
            warnings[f"{document['kind']}/{document['metadata']['name']}"] = answer.warnings
    stand_in = None
    if driver == "ontap-nas":
        ontap = {home["volume"]: int(home["sizeBytes"]) for home in plan["homes"]}
        stand_in = TridentImportStandIn(client, backend_uuid(graph, driver), ontap)
    names = {o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"}
    bound = wait_until(lambda: _all_bound(client, names, stand_in), BIND_TIMEOUT_SECONDS, interval=0.5)
    seconds = time.monotonic() - started
    print(f"{driver}: {len(objects)} objects applied, {len(names)} claims bound in {seconds:.1f} s")
    assert bound, (stand_in.refused if stand_in else None, plane.logs()["kube-controller-manager"])
    yield Restore(driver, plane, client, graph, plan, warnings, seconds, stand_in)
    plane.stop()


# --- the program's objects meet the API server --------------------------------------------------------


def test_the_api_server_takes_every_restore_object_without_a_warning(restore: Restore) -> None:
    assert restore.warnings == {}
    namespace = restore.client.get(f"/api/v1/namespaces/{HUB_NAMESPACE}")
    label = namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
    assert label == HUB_POD_SECURITY_LEVEL == "restricted"
    expected = 50 if restore.driver == "ontap-nas" else 100  # economy: a volume and a claim per home
    owned = [*restore.claims().values(), *restore.volumes().values()]
    applied = [o for o in owned if any(f["manager"] == "dsaas" for f in o["metadata"].get("managedFields", []))]
    assert len(applied) == expected


def test_every_claim_is_bound_to_its_own_volume(restore: Restore) -> None:
    claims, volumes = restore.claims(), restore.volumes()
    seen: set[str] = set()
    for home in restore.plan["homes"]:
        claim = claims[home["claim"]]
        volume_name = restore.expected_volume(home)
        volume = volumes[volume_name]
        assert claim["status"]["phase"] == "Bound", home["user"]
        assert claim["spec"]["volumeName"] == volume_name, home["user"]
        assert volume["status"]["phase"] == "Bound", volume_name
        reference = volume["spec"]["claimRef"]
        assert (reference["namespace"], reference["name"]) == (HUB_NAMESPACE, home["claim"])
        assert reference["uid"] == claim["metadata"]["uid"]  # filled in by the binder (economy) or the import
        # The binder would bind these pre-bound pairs even with classes that differ (see the test below):
        # equal classes are the program's own guarantee, checked here.
        assert volume["spec"].get("storageClassName", "") == claim["spec"].get("storageClassName", "")
        assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert _bytes(volume["spec"]["capacity"]["storage"]) >= _bytes(
            claim["spec"]["resources"]["requests"]["storage"]
        )
        assert volume_name not in seen
        seen.add(volume_name)
    assert len(seen) == len(restore.plan["homes"]) == 50
    print(f"{restore.driver}: bound in {restore.bind_seconds:.1f} s")


def test_economy_volumes_are_the_qtrees_and_import_volumes_are_tridents(restore: Restore) -> None:
    volumes = restore.volumes()
    for home in restore.plan["homes"]:
        spec = volumes[restore.expected_volume(home)]["spec"]
        if restore.driver == "ontap-nas-economy":
            assert spec["nfs"] == {"server": home["dataLif"], "path": home["qtree"]["junctionPath"]}
            # The API server drops a volume's empty class (a plain string, omitempty) but keeps the claim's
            # (a pointer): "" there, not absent, is what keeps the default class's admission off the claim.
            assert "storageClassName" not in spec
            assert restore.claims()[home["claim"]]["spec"]["storageClassName"] == ""
        else:
            assert spec["csi"]["driver"] == TRIDENT and spec["csi"]["volumeHandle"] == restore.expected_volume(home)
            assert spec["storageClassName"] == "dsaas-homes"
    if restore.stand_in is not None:
        assert restore.stand_in.refused == {}


# --- what the binder does with what does not fit ------------------------------------------------------


def _phase(client: KubeClient, path: str) -> str | None:
    phase: str | None = client.get(path).get("status", {}).get("phase")
    return phase


def _binder_events(client: KubeClient, claim: str) -> list[str]:
    return [
        f"{e['reason']}: {e['message']}"
        for e in client.items(
            f"/api/v1/namespaces/{HUB_NAMESPACE}/events", fieldSelector=f"involvedObject.name={claim}"
        )
    ]


def test_what_the_binder_does_with_what_does_not_fit(restore: Restore) -> None:
    """Objects the restore never makes, next to it: a volume whose claim is missing, a claim no volume is
    meant for, a claim that names another user's volume, and storage classes that differ."""
    client, homes = restore.client, restore.plan["homes"]
    taken = restore.expected_volume(homes[0])
    nfs = {"server": "10.40.8.20", "path": "/dsaasprod_qtree_pool_000/leftover"}

    def volume(name: str, claim_ref: dict[str, str] | None, class_name: str = "") -> dict[str, Any]:
        spec: dict[str, Any] = {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"], "nfs": nfs}
        spec |= {"persistentVolumeReclaimPolicy": "Retain", "storageClassName": class_name}
        if claim_ref is not None:
            spec["claimRef"] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": HUB_NAMESPACE}
            spec["claimRef"] |= claim_ref
        return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec}

    def claim(name: str, volume_name: str | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "storageClassName": ""}
        spec["resources"] = {"requests": {"storage": "1Gi"}}
        if volume_name:
            spec["volumeName"] = volume_name
        metadata = {"name": name, "namespace": HUB_NAMESPACE}
        return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}

    before = {name: c["spec"].get("volumeName") for name, c in restore.claims().items()}
    # A volume reserved for a claim that was never created, and one whose claim existed (a uid) and is gone.
    client.apply(volume("leftover-never-claimed", {"name": "claim-nobody"}))
    client.apply(volume("leftover-claim-gone", {"name": "claim-gone", "uid": "2b8e2a47-0000-4000-8000-000000000000"}))
    client.apply(claim("no-volume-for-me"))  # the empty class: only a free static volume could serve it
    client.apply(claim("wants-someone-elses", volume_name=taken))
    # Classes that differ: a free volume of class dsaas-homes asked for by name, and one pre-bound (claimRef).
    client.apply(volume("free-other-class", None, class_name="dsaas-homes"))
    client.apply(claim("names-free-other-class", volume_name="free-other-class"))
    client.apply(volume("reserved-other-class", {"name": "reserved-other-class"}, class_name="dsaas-homes"))
    client.apply(claim("reserved-other-class"))
    refused = ("no-volume-for-me", "wants-someone-elses", "names-free-other-class")

    def settled() -> bool:
        phases = [_phase(client, volume_path(n)) for n in ("leftover-never-claimed", "leftover-claim-gone")]
        return all(p not in (None, "Pending") for p in phases) and all(_binder_events(client, c) for c in refused)

    assert wait_until(settled, BIND_TIMEOUT_SECONDS, interval=0.5)
    time.sleep(BINDER_PASSES_SECONDS)  # at least one more binder pass: what is unbound now stays so
    assert _phase(client, volume_path("leftover-never-claimed")) == "Available"
    assert _phase(client, volume_path("leftover-claim-gone")) == "Released"
    for name in refused:
        assert _phase(client, claim_path(name)) == "Pending", (name, _binder_events(client, name))
    assert _binder_events(client, "no-volume-for-me") == [
        "FailedBinding: no persistent volumes available for this claim and no storage class is set"
    ]
    assert _binder_events(client, "wants-someone-elses") == [
        f'FailedBinding: volume "{taken}" already bound to a different claim.'
    ]
    assert any("storageClassName does not match" in e for e in _binder_events(client, "names-free-other-class"))
    assert _phase(client, volume_path("free-other-class")) == "Available"
    # The binder checks classes only for a volume nobody reserved: a volume pre-bound by claimRef, as every
    # restored volume is (static or imported), is bound whatever its class (pv_controller.go,
    # syncUnboundClaim, "volume already bound, finishing the binding"). Equal classes on the restored
    # pairs (test_every_claim_is_bound_to_its_own_volume) are the program's doing, not the binder's check.
    assert _phase(client, claim_path("reserved-other-class")) == "Bound"
    assert client.get(volume_path(taken))["spec"]["claimRef"]["name"] == homes[0]["claim"]
    after = {name: c["spec"].get("volumeName") for name, c in restore.claims().items() if name in before}
    assert after == before  # nothing the restore bound moved


# --- KubeSpawner's lookup, as a returning user's hub does it --------------------------------------------


def _lay_out_hub_etc(values: dict[str, Any], etc: Path) -> dict[str, str]:
    """What the hub pod mounts at /usr/local/etc/jupyterhub, from the chart rendered with the stack's values
    (as tools/lab/hub.py lays it out for the lab hub); returns the hub container's environment."""
    chart = ChartHub.render(values)
    (etc / "config").mkdir(parents=True)
    (etc / "secret").mkdir()
    for key, text in chart.configmap.items():
        (etc / "config" / key).write_text(text)
    for name in CHART_FILES:
        (etc / name).write_text(chart.configmap[name].replace(HUB_ETC, str(etc)))
    for key, data in chart.secret.items():
        (etc / "secret" / key).write_bytes(data)
    return dict(chart.env)


@dataclass(frozen=True)
class Returning:
    before: dict[str, dict[str, Any]]
    """The claims as they were before KubeSpawner's code ran."""
    answers: dict[str, dict[str, Any]]
    """User → {claim, manifest, created} from tests/controlplane/returning_user.py."""


@pytest.fixture(scope="module")
def returning(restore: Restore, tmp_path_factory: pytest.TempPathFactory) -> Returning:
    """Each planned user's claim as the hub finds it after a lost database, by KubeSpawner 7's own code."""
    folder = tmp_path_factory.mktemp(f"hub-{restore.driver}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "JUPYTERHUB_"))}
    env |= _lay_out_hub_etc(hub_values(restore.graph), folder / "etc")
    # What Kubernetes adds to the hub pod for the chart's Services (the chart's config reads the ports), and
    # the admin's credentials: the hub's own RBAC comes with the chart's Role, which this cluster lacks.
    env |= {"PROXY_API_SERVICE_PORT": "8001", "HUB_SERVICE_PORT": "8081"}
    env["KUBECONFIG"] = str(restore.plane.admin_kubeconfig())
    users, answers = folder / "users.json", folder / "answers.json"
    users.write_text(json.dumps([home["user"] for home in restore.plan["homes"]], ensure_ascii=False))
    before = restore.claims()
    done = subprocess.run(
        [sys.executable, "-m", "tests.controlplane.returning_user", str(folder / "etc"), str(users), str(answers)],
        cwd=ROOT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return Returning(before, json.loads(answers.read_text(encoding="utf-8")))


def test_kubespawner_finds_each_restored_home_by_its_own_name(restore: Restore, returning: Returning) -> None:
    for home in restore.plan["homes"]:
        answer = returning.answers[home["user"]]
        assert answer["claim"] == home["claim"], home["user"]
        claim = restore.client.get(claim_path(answer["claim"]))
        assert claim["status"]["phase"] == "Bound"
        assert claim["spec"]["volumeName"] == restore.expected_volume(home)
        # KubeSpawner's own create request: its POST was answered 409 and it took the claim as existing.
        assert answer["created"] is True


def test_the_claim_kubespawner_would_create_changes_nothing(restore: Restore, returning: Returning) -> None:
    for home in restore.plan["homes"]:
        manifest = returning.answers[home["user"]]["manifest"]
        with pytest.raises(ApiError) as refused:
            restore.client.create(CLAIMS, manifest)  # the POST KubeSpawner makes
        assert refused.value.status == 409
        assert refused.value.body["reason"] == "AlreadyExists"
        assert refused.value.body["details"]["name"] == home["claim"]
    after = restore.claims()
    for home in restore.plan["homes"]:
        old, new = returning.before[home["claim"]], after[home["claim"]]
        assert new["spec"] == old["spec"] and new["status"] == old["status"]
        assert new["metadata"]["resourceVersion"] == old["metadata"]["resourceVersion"]
