"""KubeSpawner itself against the test control plane: what the hub's namespace holds, and what stands in.

The lab hub (tools/lab/hub.py) normally swaps the chart's KubeSpawner for a local-process spawner. Here it
keeps it: the hub runs the chart's own jupyterhub_config.py with `kubespawner.KubeSpawner`, and KubeSpawner
creates the user's PVC and pod through the real API server (admission, RBAC, Pod Security, the PV binder,
the chart's own user scheduler). Only what a real cluster would supply is provided from outside, each for a
stated reason (see `KUBE_SPAWNER_WIRING` and `hub_environment`):

- the API server address and the hub's credentials: a kubeconfig (`KUBECONFIG`) holding a bound token of the
  chart's `hub` ServiceAccount, because kubernetes_asyncio's in-cluster config reads the token from the fixed
  path /var/run/secrets/kubernetes.io/serviceaccount/ and KUBERNETES_SERVICE_HOST, which only a pod has;
  KubeSpawner's `load_config` falls back to `KUBECONFIG` when in-cluster config fails (kubespawner/clients.py);
- the user server's port (`KubeSpawner.port`, default 8888): every "pod" shares the host's loopback here, so
  a free port is chosen instead of 8888;
- the pod's address: the simulated kubelet reports 127.0.0.1 as the pod IP of a launched pod, and KubeSpawner
  (no `services_enabled`, no `internal_ssl`) connects to `http://<status.podIP>:<port>` as in a real cluster.

Stand-ins (said again in docs/testing.md): `StandInProvisioner` plays Trident's CSI provisioner (a PV shaped as
Trident's, no ONTAP volume behind it); `PodProcessLauncher` plays the container runtime (the pod's command runs
as a local process from the hub's virtualenv, not from the pod's image; the claim's volume is a local folder).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.controlplane.client import ApiError, KubeClient
from tools.controlplane.cluster import ControlPlane
from tools.controlplane.nodes import LaunchedProcess
from tools.lab.procs import LOCALHOST, stop_process_group, tail

TRIDENT_DRIVER = "csi.trident.netapp.io"
PROVISIONER_ANNOTATION = "volume.kubernetes.io/storage-provisioner"
"""Set on a claim by the real PV controller when the claim's class names an external provisioner."""
STAND_IN_BACKEND_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, "dsaas-test:stand-in-trident-backend"))
USER_POD_COMPONENT = "singleuser-server"

# The chart's objects a hub pod, the user scheduler and user pods depend on. Workloads (Deployments,
# StatefulSets, DaemonSets, Jobs) and Services are left out: the hub and proxy run as local processes, and
# a placeholder or puller pod on a simulated node would be "Running" with nothing behind it.
CHART_KINDS = (
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "PriorityClass",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "ConfigMap",
)
_APPLY_ORDER = {kind: index for index, kind in enumerate(("Namespace", "StorageClass", "PriorityClass", "ClusterRole"))}

KUBE_SPAWNER_WIRING = """\
# The chart's spawner stays: kubespawner.KubeSpawner with everything the chart configured. Overrides, each
# something a real cluster supplies and this one cannot:
if c.JupyterHub.spawner_class != "kubespawner.KubeSpawner":
    raise SystemExit(f"lab: the chart configured {c.JupyterHub.spawner_class!r}, not KubeSpawner")
# All user "pods" share the host's loopback, so 8888 (KubeSpawner's default) is replaced by a free port.
c.KubeSpawner.port = LAB["user_port"]
# The API server address and the hub's ServiceAccount token come from KUBECONFIG (the hub's environment),
# because in-cluster config needs the pod's token file and KUBERNETES_SERVICE_HOST; nothing to set here.
"""


def program_objects(
    stack: str, namespace: str = "jupyterhub", storage_class: str = "dsaas-homes"
) -> list[dict[str, Any]]:
    """The hub's Namespace (with its Pod Security labels), the homes StorageClass and the user scheduler's
    bindings to the cluster's scheduler roles, as the program declares them."""
    from components.hub_render import render_user_scheduler_bindings
    from tools.offline.mockgraph import kubernetes_objects, run_program

    wanted = {("Namespace", namespace), ("StorageClass", storage_class)}
    # The user scheduler's bindings to the release's own scheduler roles (components/hub.py).
    wanted |= {("ClusterRoleBinding", b["metadata"]["name"]) for b in render_user_scheduler_bindings()}
    found = [
        obj
        for resource in run_program(stack).resources
        for obj in kubernetes_objects(resource)
        if (obj.get("kind"), obj.get("metadata", {}).get("name")) in wanted
    ]
    if len(found) != len(wanted):
        names = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in found)
        raise LookupError(f"stack {stack!r} declares {names}, expected {sorted(wanted)}")
    return found


def chart_objects(
    values: Mapping[str, Any], release: str = "jupyterhub", namespace: str = "jupyterhub"
) -> list[dict[str, Any]]:
    """The z2jh chart's RBAC, priority classes, policies and config maps for these values (Helm's engine)."""
    from config import versions
    from tools.offline import charts

    chart = charts.vendored_chart("jupyterhub", versions.Z2JH_CHART_VERSION)
    rendered = charts.render_chart(chart, values, name=release, namespace=namespace, stable=False)
    objects = []
    for item in rendered:
        if item.kind in CHART_KINDS:
            document = dict(item.document)
            if document.get("kind") not in ("ClusterRole", "ClusterRoleBinding", "PriorityClass"):
                document["metadata"] = {**document["metadata"], "namespace": namespace}
            objects.append(document)
    return objects


def install(admin: KubeClient, objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """Server-side apply, cluster-scoped prerequisites first; returns `Kind/name` of what was applied."""
    ordered = sorted(objects, key=lambda o: _APPLY_ORDER.get(str(o["kind"]), len(_APPLY_ORDER)))
    applied = []
    for document in ordered:
        admin.apply(document)
        applied.append(f"{document['kind']}/{document['metadata']['name']}")
    return applied


def token_kubeconfig(plane: ControlPlane, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig for a ServiceAccount's bound token: what a pod's projected token and CA give its clients."""
    token = plane.service_account_token(namespace, account)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "test", "cluster": {"server": plane.server, "certificate-authority": str(plane.pki.ca_file)}}
        ],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": account, "namespace": namespace}}],
        "current-context": "test",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def hub_environment(kubeconfig: Path) -> dict[str, str]:
    """What the hub's environment gets beyond the chart's container env: where the API server is, and as whom."""
    if "KUBERNETES_SERVICE_HOST" in os.environ:
        # kubernetes_asyncio would try in-cluster config first and talk to another cluster's API server.
        raise RuntimeError("KUBERNETES_SERVICE_HOST is set: this test must not run inside a pod")
    return {"KUBECONFIG": str(kubeconfig)}


# -- the chart's user scheduler ------------------------------------------------------------------------------


@dataclass
class UserScheduler:
    """The chart's `user-scheduler`: kube-scheduler (the control plane's own binary) with the chart's config.

    It runs as the chart's `user-scheduler` ServiceAccount (its ClusterRole decides what it may read), with the
    rendered KubeSchedulerConfiguration (profile `jupyterhub-user-scheduler`, MostAllocated scoring, leader
    election on a Lease in the hub's namespace) and the Deployment's flags, with the program's bindings to the
    release's scheduler roles (installed with `program_objects`): the program runs the cluster's kube-scheduler
    release, as this binary is."""

    plane: ControlPlane
    config_map: Mapping[str, Any]
    workdir: Path
    popen: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.workdir / "user-scheduler.log"

    def start(self) -> UserScheduler:
        self.workdir.mkdir(parents=True, exist_ok=True)
        namespace = self.config_map["metadata"]["namespace"]
        kubeconfig = token_kubeconfig(
            self.plane, namespace, "user-scheduler", self.workdir / "user-scheduler.kubeconfig"
        )
        config = yaml.safe_load(self.config_map["data"]["config.yaml"])
        # In the pod, client-go finds the API server in-cluster; here the same token comes from a kubeconfig.
        config["clientConnection"] = {"kubeconfig": str(kubeconfig)}
        config_file = self.workdir / "config.yaml"
        config_file.write_text(yaml.safe_dump(config))
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(
                [
                    str(self.plane.binaries.path("kube-scheduler")),
                    f"--config={config_file}",
                    "--authentication-skip-lookup=true",  # the chart's flag (z2jh issue 1894)
                    # No metrics/health endpoint: nothing probes it, and every server here stays on 127.0.0.1.
                    "--secure-port=0",
                    "--v=2",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.workdir,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workdir)},
            )
        return self

    def stop(self) -> None:
        if self.popen is not None:
            stop_process_group(self.popen)
            self.popen = None

    def log_text(self) -> str:
        return tail(self.log, 40)


# -- stand-in for Trident's CSI provisioner -------------------------------------------------------------------


def trident_volume(claim: Mapping[str, Any], storage_class: Mapping[str, Any]) -> dict[str, Any]:
    """The PersistentVolume Trident's CSI provisioner would create for `claim` (a stand-in: no ONTAP volume).

    Shaped as external-provisioner + Trident name it: `pvc-<claim uid>`, the provisioned-by annotation, a
    pre-bound claimRef (the PV binder completes the binding), the class's reclaim policy and mount options,
    and Trident's volume attributes (backend UUID, internal name with the default `trident_` prefix)."""
    meta = claim["metadata"]
    name = f"pvc-{meta['uid']}"
    spec: dict[str, Any] = {
        "accessModes": list(claim["spec"]["accessModes"]),
        "capacity": {"storage": claim["spec"]["resources"]["requests"]["storage"]},
        "claimRef": {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
        },
        "csi": {
            "driver": TRIDENT_DRIVER,
            "fsType": storage_class.get("parameters", {}).get("fsType", "nfs"),
            "volumeHandle": name,
            "volumeAttributes": {
                "backendUUID": STAND_IN_BACKEND_UUID,
                "internalName": "trident_" + name.replace("-", "_"),
                "name": name,
                "protocol": "file",
            },
        },
        "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy", "Delete"),
        "storageClassName": storage_class["metadata"]["name"],
        "volumeMode": claim["spec"].get("volumeMode", "Filesystem"),
    }
    if storage_class.get("mountOptions"):
        spec["mountOptions"] = list(storage_class["mountOptions"])
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": TRIDENT_DRIVER}},
        "spec": spec,
    }


class StandInProvisioner:
    """A stand-in for Trident's CSI provisioner: answers claims the real PV controller hands to Trident.

    It only acts on claims carrying `volume.kubernetes.io/storage-provisioner: csi.trident.netapp.io`, which the
    real PV controller sets for classes naming that provisioner, creates the PV, and leaves binding to the
    real PV binder. No storage exists behind the PV."""

    def __init__(self, admin: KubeClient, interval: float = 0.3) -> None:
        self.admin = admin
        self.interval = interval
        self.created: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stand-in-provisioner", daemon=True)

    def start(self) -> StandInProvisioner:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.provision_pending()
            except Exception as error:  # retried next round; the test reads self.errors
                self.errors.append(str(error))
            self._stop.wait(self.interval)

    def provision_pending(self) -> None:
        for claim in self.admin.items("/api/v1/persistentvolumeclaims"):
            annotations = claim["metadata"].get("annotations") or {}
            if annotations.get(PROVISIONER_ANNOTATION) != TRIDENT_DRIVER or claim["spec"].get("volumeName"):
                continue
            if claim.get("status", {}).get("phase") != "Pending":
                continue
            name = f"pvc-{claim['metadata']['uid']}"
            if self.admin.get_or_none(f"/api/v1/persistentvolumes/{name}") is not None:
                continue
            storage_class = self.admin.get(
                f"/apis/storage.k8s.io/v1/storageclasses/{claim['spec']['storageClassName']}"
            )
            self.admin.create("/api/v1/persistentvolumes", trident_volume(claim, storage_class))
            self.created.append(name)


# -- stand-in for the container runtime -----------------------------------------------------------------------


@dataclass
class LaunchRecord:
    """What the launcher made of one pod (for the test and the flow log; no secret values)."""

    pod: str
    argv: list[str]
    cwd: str
    home: str
    port: int
    mounts: dict[str, str]
    """mount path in the pod → local folder."""
    skipped_env: list[str]
    log: Path


@dataclass
class PodProcessLauncher:
    """Plays the container runtime for user pods: runs the pod's own command as a local process.

    From the pod spec: the container's `command` + `args` (the executable is looked up in the hub's virtualenv,
    which has the same jupyterhub-singleuser and JupyterLab an image would), `env`, `workingDir` and the
    container port. The claim volumes' mount paths map to `<homes_root>/<claim name>`, so a returning user's
    claim has the same folder, and paths in the working dir and env under a mount follow it. The pod's network
    namespace is the host's loopback: the process is told to listen on 127.0.0.1 and reported with that IP.
    Running as root, `--allow-root` is added (the pod runs as uid 1000; this process as whoever runs the test).
    Pods that are not user servers are left to the simulated kubelet."""

    homes_root: Path
    log_dir: Path
    venv_bin: Path
    records: list[LaunchRecord] = field(default_factory=list)

    def __call__(self, pod: dict[str, Any]) -> LaunchedProcess | None:
        labels = pod["metadata"].get("labels") or {}
        if labels.get("component") != USER_POD_COMPONENT:
            return None
        spec = pod["spec"]
        container = spec["containers"][0]
        mounts = self._mounts(spec, container)
        argv = [*container.get("command", []), *container.get("args", [])]
        if not argv:
            raise ValueError(f"{pod['metadata']['name']}: no command in the pod spec (the image's would be used)")
        executable = shutil.which(argv[0], path=str(self.venv_bin))
        if executable is None:
            raise FileNotFoundError(f"{argv[0]} is not in {self.venv_bin}")
        argv = [executable, *argv[1:], "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if os.geteuid() == 0:
            argv.append("--allow-root")
        env: dict[str, str] = {}
        skipped = []
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = self._map_path(str(item["value"]), mounts)
            else:
                skipped.append(item["name"])  # valueFrom would need the kubelet's resolution
        # The pod listens on all of its own addresses; here that would be every address of the host.
        env["JUPYTERHUB_SERVICE_URL"] = env.get("JUPYTERHUB_SERVICE_URL", "").replace("//0.0.0.0:", f"//{LOCALHOST}:")
        home_mount = next(iter(mounts), None)
        home = mounts[home_mount] if home_mount else str(self.homes_root)
        cwd = self._map_path(container.get("workingDir") or home_mount or "/", mounts)
        port = int(container["ports"][0]["containerPort"])
        log = self.log_dir / f"{pod['metadata']['name']}-{pod['metadata']['uid'][:8]}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            popen = subprocess.Popen(
                argv,
                cwd=cwd,
                env={
                    "PATH": f"{self.venv_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
                    "HOME": home,
                    "PYTHONUNBUFFERED": "1",
                    **env,
                },
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.records.append(LaunchRecord(pod["metadata"]["name"], argv, cwd, home, port, mounts, skipped, log))
        return LaunchedProcess(popen, LOCALHOST, port)

    def _mounts(self, spec: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, str]:
        claims = {
            volume["name"]: volume["persistentVolumeClaim"]["claimName"]
            for volume in spec.get("volumes", [])
            if "persistentVolumeClaim" in volume
        }
        mounts = {}
        for mount in container.get("volumeMounts", []):
            claim = claims.get(mount["name"])
            if claim is None:
                continue
            folder = self.homes_root / claim / mount.get("subPath", "")
            folder.mkdir(parents=True, exist_ok=True)
            mounts[str(mount["mountPath"]).rstrip("/")] = str(folder)
        return mounts

    @staticmethod
    def _map_path(value: str, mounts: Mapping[str, str]) -> str:
        for mount_path, folder in mounts.items():
            if value == mount_path or value.startswith(mount_path + "/"):
                return folder + value[len(mount_path) :]
        return value


# -- the flow log ----------------------------------------------------------------------------------------------


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class FlowEntry:
    at: datetime.datetime
    source: str
    text: str


class ApiRecorder:
    """Polls the hub's namespace (and PVs) and records each object's appearance and state changes, timed."""

    def __init__(self, admin: KubeClient, namespace: str, interval: float = 0.2) -> None:
        self.admin = admin
        self.namespace = namespace
        self.interval = interval
        self.entries: list[FlowEntry] = []
        self._seen: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-recorder", daemon=True)

    def start(self) -> ApiRecorder:
        # What exists before the recording starts is the baseline, not part of the flow.
        self.poll(record=False)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(ApiError, OSError):  # the next round sees the same state again
                self.poll()
            self._stop.wait(self.interval)

    def poll(self, record: bool = True) -> None:
        ns = self.namespace
        states: dict[str, str] = {}
        for claim in self.admin.items(f"/api/v1/namespaces/{ns}/persistentvolumeclaims"):
            meta, status = claim["metadata"], claim.get("status", {})
            states[f"PersistentVolumeClaim/{meta['name']}"] = (
                f"uid={meta['uid'][:8]} phase={status.get('phase')} volume={claim['spec'].get('volumeName') or '-'} "
                f"class={claim['spec'].get('storageClassName')} provisioner="
                f"{(meta.get('annotations') or {}).get(PROVISIONER_ANNOTATION, '-')}"
            )
        for volume in self.admin.items("/api/v1/persistentvolumes"):
            ref = volume["spec"].get("claimRef") or {}
            states[f"PersistentVolume/{volume['metadata']['name']}"] = (
                f"phase={volume.get('status', {}).get('phase')} driver={volume['spec'].get('csi', {}).get('driver')} "
                f"claim={ref.get('namespace')}/{ref.get('name')}"
            )
        for pod in self.admin.items(f"/api/v1/namespaces/{ns}/pods"):
            meta, status = pod["metadata"], pod.get("status", {})
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
            deleting = " deleting" if meta.get("deletionTimestamp") else ""
            states[f"Pod/{meta['name']}"] = (
                f"uid={meta['uid'][:8]} phase={status.get('phase')} node={pod['spec'].get('nodeName') or '-'} "
                f"scheduler={pod['spec'].get('schedulerName')} podIP={status.get('podIP') or '-'} "
                f"ready={ready}{deleting}"
            )
        for event in self.admin.items(f"/api/v1/namespaces/{ns}/events"):
            key = f"Event/{event['metadata']['name']}"
            involved = event.get("involvedObject", {})
            reporter = event.get("reportingComponent") or event.get("source", {}).get("component")
            states[key] = (
                f"{involved.get('kind')}/{involved.get('name')} {event.get('reason')} "
                f"({reporter}): {event.get('message')}"
            )
        now = _utc_now()
        for key, state in states.items():
            if not record:
                self._seen[key] = state
            elif self._seen.get(key) != state:
                verb = "event" if key.startswith("Event/") else ("created" if key not in self._seen else "changed")
                text = state if verb == "event" else f"{key} {verb}: {state}"
                self.entries.append(FlowEntry(now, "api", text))
                self._seen[key] = state
        for key in list(self._seen):
            if key not in states:
                if record and not key.startswith("Event/"):
                    self.entries.append(FlowEntry(now, "api", f"{key} gone"))
                del self._seen[key]


_HUB_LINE = re.compile(r"^\[(?P<level>[A-Z]) (?P<stamp>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}) (?P<rest>.*)$")


def hub_entries(log_text: str, since: datetime.datetime) -> list[FlowEntry]:
    """The hub log's timestamped lines (local time, as JupyterHub writes them) from `since` on."""
    entries = []
    for line in log_text.splitlines():
        match = _HUB_LINE.match(line)
        if not match:
            continue
        local = datetime.datetime.strptime(match["stamp"], "%Y-%m-%d %H:%M:%S.%f").astimezone()
        at = local.astimezone(datetime.UTC)
        if at >= since:
            entries.append(FlowEntry(at, "hub", f"[{match['level']}] {match['rest']}"))
    return entries


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    # JupyterHub logs the XSRF cookie's value when it sets one.
    text = re.sub(r"(xsrf cookie for b')[^']*'", r"\1<redacted>'", text)
    # Any token-shaped value the list missed (e.g. a user server's OAuth token in a URL or header).
    return re.sub(r"(?i)(token[=:\s\"']+)([A-Za-z0-9_\-.]{20,})", r"\1<redacted>", text)


def pod_secrets(admin: KubeClient, namespace: str) -> set[str]:
    """Values of user pods' env variables that are credentials (the hub's API token for the server)."""
    values = set()
    for pod in admin.items(f"/api/v1/namespaces/{namespace}/pods"):
        for container in pod["spec"]["containers"]:
            for item in container.get("env", []):
                if re.search(r"TOKEN|SECRET|PASSWORD|KEY", item["name"]) and item.get("value"):
                    values.add(str(item["value"]))
    return values


def write_flow_log(path: Path, sections: Mapping[str, Iterable[FlowEntry]], secrets: Iterable[str], header: str) -> str:
    """Each section's entries in time order (offsets from the section's first entry), secrets redacted."""
    lines = [header.rstrip()]
    for title, entries in sections.items():
        ordered = sorted(entries, key=lambda e: e.at)
        start = ordered[0].at if ordered else _utc_now()
        lines += ["", f"== {title}"]
        for entry in ordered:
            offset = (entry.at - start).total_seconds()
            lines.append(f"{entry.at.strftime('%H:%M:%S.%f')[:-3]}Z +{offset:6.2f}s {entry.source:3} {entry.text}")
    text = redact("\n".join(lines) + "\n", secrets)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll `predicate` until it returns something truthy; its value, or TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} after {timeout:.0f} s")
