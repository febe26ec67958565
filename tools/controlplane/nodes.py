"""Simulated nodes: a kubelet's side of the API, played for nodes shaped like a stack's workers.

Each node talks to the API server with its own `system:node:<name>` certificate, so the Node authorizer
and NodeRestriction judge it as they judge a real kubelet. Like kwok's default stages (kwok's
kustomize/stage/node/fast and pod/fast), a node registers itself, renews its Lease, and moves the pods
bound to it to Running and Ready; pods a Job owns go on to Succeeded; pods being deleted are removed once
their process is gone. A `launcher` may take a pod over and start its container's command as a local
process (the user servers of the KubeSpawner flow): the pod is Ready when the process listens on the
container's port, and Failed or Succeeded when it exits.

What a real kubelet does and this does not: pull images, run containers, mount volumes, probes other
than the port check, resource enforcement, mirror pods for static manifests, exec and logs.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tools.controlplane.client import ApiError, KubeClient
from tools.lab.procs import port_open, stop_process_group

KUBELET_VERSION_FALLBACK = "v1.35.4"
LEASE_SECONDS = 40


@dataclass(frozen=True)
class NodeShape:
    """What a worker VM looks like to the scheduler."""

    name: str
    cpus: int
    memory_mib: int
    address: str
    pod_cidr: str
    labels: dict[str, str] = field(default_factory=dict)
    """Labels the kubelet registers with (NodeRestriction limits which)."""
    admin_labels: dict[str, str] = field(default_factory=dict)
    """Labels an administrator adds after registration (kubeadm's node-role label)."""
    taints: tuple[dict[str, str], ...] = ()
    pods: int = 110  # the kubelet's default maxPods


@dataclass
class LaunchedProcess:
    popen: subprocess.Popen[bytes]
    ip: str
    port: int | None


Launcher = Callable[[dict[str, Any]], LaunchedProcess | None]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_object(shape: NodeShape) -> dict[str, Any]:
    labels = {
        "kubernetes.io/hostname": shape.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        **shape.labels,
    }
    spec = {"taints": [dict(taint) for taint in shape.taints]} if shape.taints else {}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": shape.name, "labels": labels}, "spec": spec}


def node_status(shape: NodeShape, kubelet_version: str) -> dict[str, Any]:
    now = _now()
    resources = {
        "cpu": str(shape.cpus),
        "memory": f"{shape.memory_mib}Mi",
        "pods": str(shape.pods),
        "ephemeral-storage": "100Gi",
    }

    def condition(kind: str, status: str, reason: str) -> dict[str, str]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": reason,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return {
        "capacity": resources,
        "allocatable": resources,
        "addresses": [{"type": "InternalIP", "address": shape.address}, {"type": "Hostname", "address": shape.name}],
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID"),
            condition("Ready", "True", "KubeletReady"),
        ],
        "nodeInfo": {
            "kubeletVersion": kubelet_version,
            "kubeProxyVersion": "",
            "containerRuntimeVersion": "containerd://2.1.4",
            "operatingSystem": "linux",
            "architecture": "amd64",
            "osImage": "Ubuntu 24.04 LTS (simulated)",
            "kernelVersion": "6.8.0",
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
    }


def _owned_by_job(pod: dict[str, Any]) -> bool:
    return any(ref.get("kind") == "Job" for ref in pod["metadata"].get("ownerReferences", []))


def _container_statuses(
    containers: list[dict[str, Any]], state: dict[str, Any], ready: bool, started: bool = True
) -> list[dict[str, Any]]:
    return [
        {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": container.get("image", ""),
            "ready": ready,
            "started": started,
            "restartCount": 0,
            "state": state,
        }
        for container in containers
    ]


def pod_status(pod: dict[str, Any], shape: NodeShape, ip: str, phase: str, ready: bool) -> dict[str, Any]:
    now = _now()
    spec = pod["spec"]
    terminated = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}
    if phase == "Running":
        main_state: dict[str, Any] = {"running": {"startedAt": now}}
    elif phase == "Succeeded":
        main_state = terminated
    else:
        main_state = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}}
    ready_text = "True" if ready else "False"
    conditions = [
        {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "Ready", "status": ready_text, "lastTransitionTime": now},
        {"type": "ContainersReady", "status": ready_text, "lastTransitionTime": now},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
    ]
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": shape.address,
        "hostIPs": [{"ip": shape.address}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": pod["status"].get("startTime") or now,
        "qosClass": pod["status"].get("qosClass", "BestEffort"),
        "containerStatuses": _container_statuses(spec["containers"], main_state, ready and phase == "Running"),
    }
    if spec.get("initContainers"):
        status["initContainerStatuses"] = _container_statuses(spec["initContainers"], terminated, False, False)
    return status


class NodeRunner:
    """Runs the simulated nodes in one background thread until `stop()`."""

    def __init__(
        self,
        clients: dict[str, KubeClient],
        shapes: list[NodeShape],
        kubelet_version: str = KUBELET_VERSION_FALLBACK,
        launcher: Launcher | None = None,
        interval: float = 0.3,
        admin: KubeClient | None = None,
    ) -> None:
        self.clients = clients
        self.admin = admin
        self.shapes = {shape.name: shape for shape in shapes}
        self.kubelet_version = kubelet_version
        self.launcher = launcher
        self.interval = interval
        self.processes: dict[str, LaunchedProcess] = {}
        self.errors: list[str] = []
        self._addresses: dict[str, str] = {}
        self._leases: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulated-nodes", daemon=True)

    def start(self) -> NodeRunner:
        for shape in self.shapes.values():
            client = self.clients[shape.name]
            existing = client.get_or_none(f"/api/v1/nodes/{shape.name}")
            if existing is None:
                client.create("/api/v1/nodes", node_object(shape))
            if shape.admin_labels and self.admin is not None:
                self.admin.merge_patch(f"/api/v1/nodes/{shape.name}", {"metadata": {"labels": shape.admin_labels}})
            self._renew_lease(shape)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for process in self.processes.values():
            stop_process_group(process.popen)
        self.processes.clear()

    def __enter__(self) -> NodeRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # the loop -----------------------------------------------------------------------------------------

    def _run(self) -> None:
        import time

        while not self._stop.is_set():
            for shape in self.shapes.values():
                try:
                    if time.monotonic() - self._leases.get(shape.name, 0) > 10:
                        self._renew_lease(shape)
                    self._sync_pods(shape)
                except Exception as error:  # a failed round is retried; tests read self.errors
                    self.errors.append(f"{shape.name}: {error}")
            self._stop.wait(self.interval)

    def _renew_lease(self, shape: NodeShape) -> None:
        import time

        client = self.clients[shape.name]
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{shape.name}"
        spec = {"holderIdentity": shape.name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": _micro_now()}
        if client.get_or_none(path) is None:
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": shape.name, "namespace": "kube-node-lease"},
                "spec": spec,
            }
            client.create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease)
        else:
            client.merge_patch(path, {"spec": spec})
        client.merge_patch(f"/api/v1/nodes/{shape.name}/status", {"status": node_status(shape, self.kubelet_version)})
        self._leases[shape.name] = time.monotonic()

    def _pod_ip(self, shape: NodeShape, uid: str) -> str:
        if uid not in self._addresses:
            network = ipaddress.ip_network(shape.pod_cidr)
            used = {ip for ip in self._addresses.values()}
            for host in network.hosts():
                if str(host) not in used:
                    self._addresses[uid] = str(host)
                    break
        return self._addresses[uid]

    def _sync_pods(self, shape: NodeShape) -> None:
        client = self.clients[shape.name]
        for pod in client.items("/api/v1/pods", fieldSelector=f"spec.nodeName={shape.name}"):
            meta = pod["metadata"]
            uid = meta["uid"]
            path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
            if meta.get("deletionTimestamp"):
                process = self.processes.pop(uid, None)
                if process is not None:
                    stop_process_group(process.popen, timeout=5)
                with contextlib.suppress(ApiError):
                    client.delete(path, grace_seconds=0, uid=uid)
                continue
            phase = pod.get("status", {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                continue
            self._advance(client, shape, pod, path, phase)

    def _advance(self, client: KubeClient, shape: NodeShape, pod: dict[str, Any], path: str, phase: str | None) -> None:
        uid = pod["metadata"]["uid"]
        if uid not in self.processes and phase != "Running" and self.launcher is not None:
            launched = self.launcher(pod)
            if launched is not None:
                self.processes[uid] = launched
        process = self.processes.get(uid)
        if process is not None:
            returncode = process.popen.poll()
            if returncode is not None:
                final = "Succeeded" if returncode == 0 else "Failed"
                client.merge_patch(f"{path}/status", {"status": pod_status(pod, shape, process.ip, final, False)})
                return
            ready = process.port is None or port_open(process.port, process.ip)
            if phase != "Running" or ready != _is_ready(pod):
                status = pod_status(pod, shape, process.ip, "Running", ready)
                client.merge_patch(f"{path}/status", {"status": status})
            return
        ip = shape.address if pod["spec"].get("hostNetwork") else self._pod_ip(shape, uid)
        if phase != "Running":
            client.merge_patch(f"{path}/status", {"status": pod_status(pod, shape, ip, "Running", True)})
        elif _owned_by_job(pod):
            client.merge_patch(f"{path}/status", {"status": pod_status(pod, shape, ip, "Succeeded", False)})


def _is_ready(pod: dict[str, Any]) -> bool:
    return any(
        condition.get("type") == "Ready" and condition.get("status") == "True"
        for condition in pod.get("status", {}).get("conditions", [])
    )


CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def stack_node_shapes(settings: Any) -> list[NodeShape]:
    """Every VM of a stack (a `config.settings.Settings`) as a simulated node, as kubeadm makes them.

    Control-plane nodes register with the `node-role.kubernetes.io/control-plane` NoSchedule taint and
    get the role label from kubeadm as admin (a kubelet may not set it: NodeRestriction); workers
    register untainted (kubeadm_render's nodeRegistration.taints: []). Each node gets a /24 of the
    stack's pod CIDR."""
    subnets = ipaddress.ip_network(str(settings.cluster.pod_cidr)).subnets(new_prefix=24)
    shapes = []
    for node in settings.control_planes:
        shapes.append(
            NodeShape(
                name=node.name,
                cpus=node.cpus,
                memory_mib=node.memory_mib,
                address=str(node.address),
                pod_cidr=str(next(subnets)),
                admin_labels={"node-role.kubernetes.io/control-plane": ""},
                taints=(CONTROL_PLANE_TAINT,),
            )
        )
    for node in settings.workers:
        shapes.append(
            NodeShape(
                name=node.name,
                cpus=node.cpus,
                memory_mib=node.memory_mib,
                address=str(node.address),
                pod_cidr=str(next(subnets)),
            )
        )
    return shapes
