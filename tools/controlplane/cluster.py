"""Start etcd, kube-apiserver, kube-controller-manager and kube-scheduler on 127.0.0.1, and stop them.

The API server runs with the flags kubeadm gives it (cmd/kubeadm/app/phases/controlplane/manifests.go,
getAPIServerCommand, at v1.35): Node and RBAC authorization, the default admission plugins plus
NodeRestriction (PodSecurity among the defaults), bootstrap tokens, privileged pods allowed, service
accounts signed by the cluster's own key. The controller manager runs every default controller (the PV
binder, garbage collector, Job, ServiceAccount and token controllers, node lifecycle) with per-controller
service-account credentials, as kubeadm starts it. There is no kubelet: `tools.controlplane.nodes` plays
one for simulated nodes.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import yaml

from tools.controlplane import build
from tools.controlplane.client import ApiError, KubeClient
from tools.controlplane.nodes import Launcher, NodeRunner, NodeShape
from tools.controlplane.pki import SERVICE_CIDR, ClientCredentials, ClusterPKI
from tools.lab.procs import LOCALHOST, free_port, stop_process_group, tail

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
CLUSTER_CIDR = "192.168.0.0/16"  # Calico's default pool, as the stacks render it


class ControlPlaneError(RuntimeError):
    """A component did not start; the message carries the end of its log."""


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class ControlPlane:
    """A running control plane; use as a context manager (`with ControlPlane.start(...) as cp:`)."""

    binaries: build.Binaries
    workdir: Path
    pki: ClusterPKI
    server: str
    admin: ClientCredentials
    processes: list[_Process] = field(default_factory=list)
    startup_seconds: float = 0.0
    apiserver_args: tuple[str, ...] = ()
    """Flags added to kubeadm's (e.g. the encryption configuration and audit policy a stack renders)."""

    # life cycle ---------------------------------------------------------------------------------------

    @classmethod
    def start(
        cls, workdir: Path | None = None, minor: str | None = None, apiserver_args: Sequence[str] = ()
    ) -> ControlPlane:
        binaries = build.installed(minor or build.default_minor())
        if binaries is None:
            raise ControlPlaneError(
                f"no control plane built for Kubernetes {minor or build.default_minor()}: "
                "run `.venv/bin/python -m tools.controlplane build` (make controlplane) first"
            )
        workdir = workdir or Path(tempfile.mkdtemp(prefix="dsaas-controlplane-"))
        pki = ClusterPKI(workdir / "pki")
        port = free_port()
        plane = cls(
            binaries=binaries,
            workdir=workdir,
            pki=pki,
            server=f"https://{LOCALHOST}:{port}",
            admin=pki.client("kubernetes-admin", ("system:masters",)),
            apiserver_args=tuple(apiserver_args),
        )
        started = time.monotonic()
        try:
            plane._start_etcd()
            plane._start_apiserver(port)
            plane._start_controller_manager()
            plane._start_scheduler()
            plane._wait_for_default_service_account()
        except BaseException:
            plane.stop()
            raise
        plane.startup_seconds = time.monotonic() - started
        return plane

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_process_group(process.popen)
        self.processes.clear()

    def _spawn(self, name: str, args: list[str]) -> _Process:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [str(self.binaries.path(name.split("#")[0])), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.workdir,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workdir)},
            )
        process = _Process(name, popen, log)
        self.processes.append(process)
        return process

    def _fail(self, process: _Process, what: str) -> ControlPlaneError:
        return ControlPlaneError(f"{process.name} {what}; end of {process.log}:\n{tail(process.log)}")

    def _wait(self, process: _Process, ready: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise self._fail(process, f"exited with {process.popen.returncode}")
            if callable(ready) and ready():
                return
            time.sleep(0.2)
        raise self._fail(process, f"was not {what} after {timeout:.0f} s")

    # components ---------------------------------------------------------------------------------------

    def _start_etcd(self) -> None:
        client_port, peer_port = free_port(), free_port()
        self.etcd_url = f"http://{LOCALHOST}:{client_port}"
        process = self._spawn(
            "etcd",
            [
                "--name=test",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://{LOCALHOST}:{peer_port}",
                f"--initial-advertise-peer-urls=http://{LOCALHOST}:{peer_port}",
                f"--initial-cluster=test=http://{LOCALHOST}:{peer_port}",
                # A test cluster's data is thrown away: no fsync wait per write.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )

        def healthy() -> bool:
            import urllib.request

            try:
                with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=1) as response:
                    return b'"health":"true"' in response.read()
            except OSError:
                return False

        self._wait(process, healthy, 60, "healthy")

    def _start_apiserver(self, port: int) -> None:
        pki = self.pki
        process = self._spawn(
            "kube-apiserver",
            [
                f"--advertise-address={LOCALHOST}",
                f"--bind-address={LOCALHOST}",
                f"--secure-port={port}",
                "--allow-privileged=true",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--enable-bootstrap-token-auth=true",
                f"--client-ca-file={pki.ca_file}",
                f"--tls-cert-file={pki.apiserver_cert_file}",
                f"--tls-private-key-file={pki.apiserver_key_file}",
                f"--etcd-servers={self.etcd_url}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={pki.service_account_pub_file}",
                f"--service-account-signing-key-file={pki.service_account_key_file}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
                "--profiling=false",
                "--v=0",
                *self.apiserver_args,
            ],
        )
        self._admin_client = self.client()

        def ready() -> bool:
            try:
                return self._admin_client.request("GET", "/readyz").status == 200
            except (ApiError, OSError, Exception):  # urllib3 raises its own errors while the port opens
                return False

        self._wait(process, ready, 120, "ready")

    def _kubeconfig(self, name: str, credentials: ClientCredentials) -> Path:
        path = self.workdir / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump(kubeconfig(self.server, self.pki.ca_file, credentials)))
        path.chmod(0o600)
        return path

    def _start_controller_manager(self) -> None:
        kubeconfig_file = self._kubeconfig("controller-manager", self.pki.client("system:kube-controller-manager"))
        self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={kubeconfig_file}",
                f"--authentication-kubeconfig={kubeconfig_file}",
                f"--authorization-kubeconfig={kubeconfig_file}",
                f"--bind-address={LOCALHOST}",
                "--secure-port=0",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                "--controllers=*,bootstrapsigner,tokencleaner",
                f"--root-ca-file={self.pki.ca_file}",
                f"--service-account-private-key-file={self.pki.service_account_key_file}",
                f"--cluster-signing-cert-file={self.pki.ca_file}",
                f"--cluster-signing-key-file={self.pki.ca_key_file}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--cluster-cidr={CLUSTER_CIDR}",
                "--allocate-node-cidrs=false",
                "--profiling=false",
            ],
        )

    def _start_scheduler(self) -> None:
        kubeconfig_file = self._kubeconfig("scheduler", self.pki.client("system:kube-scheduler"))
        self._spawn(
            "kube-scheduler",
            [
                f"--kubeconfig={kubeconfig_file}",
                f"--authentication-kubeconfig={kubeconfig_file}",
                f"--authorization-kubeconfig={kubeconfig_file}",
                f"--bind-address={LOCALHOST}",
                "--secure-port=0",
                "--leader-elect=false",
                "--profiling=false",
            ],
        )

    def _wait_for_default_service_account(self) -> None:
        """The ServiceAccount controller has run: the `default` account of `default` exists (pods need it)."""
        admin = self.client()
        for process in self.processes:
            if process.name == "kube-controller-manager":
                self._wait(
                    process,
                    lambda: admin.get_or_none("/api/v1/namespaces/default/serviceaccounts/default") is not None,
                    120,
                    "running its ServiceAccount controller",
                )

    def etcd_value(self, key: str) -> bytes | None:
        """The raw value etcd stores under `key` (what the API server wrote), through etcd's v3 JSON gateway."""
        request = urllib.request.Request(
            f"{self.etcd_url}/v3/kv/range",
            data=json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            kvs = json.load(response).get("kvs", [])
        return base64.b64decode(kvs[0]["value"]) if kvs else None

    # clients ------------------------------------------------------------------------------------------

    def client(self, credentials: ClientCredentials | None = None) -> KubeClient:
        credentials = credentials or self.admin
        return KubeClient(self.server, self.pki.ca_file, credentials.cert_file, credentials.key_file)

    def token_client(self, token: str) -> KubeClient:
        return KubeClient(self.server, self.pki.ca_file, token=token)

    def admin_kubeconfig(self) -> Path:
        return self._kubeconfig("admin", self.admin)

    def service_account_token(self, namespace: str, name: str, seconds: int = 3600) -> str:
        """A bound token for a service account (what a pod's projected token holds; `kubectl create token`)."""
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds},
        }
        answer = self.client().create(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", request)
        return str(answer["status"]["token"])

    def simulated_nodes(self, shapes: list[NodeShape], launcher: Launcher | None = None) -> NodeRunner:
        """Register `shapes` as nodes, each with its own node certificate, and start playing their kubelets."""
        clients = {
            shape.name: self.client(self.pki.client(f"system:node:{shape.name}", ("system:nodes",))) for shape in shapes
        }
        runner = NodeRunner(
            clients, shapes, kubelet_version=self.binaries.kubernetes_version, launcher=launcher, admin=self.client()
        )
        return runner.start()

    def logs(self) -> dict[str, str]:
        return {process.name: tail(process.log, 60) for process in self.processes}


def kubeconfig(server: str, ca_file: Path, credentials: ClientCredentials) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [
            {
                "name": credentials.user,
                "user": {"client-certificate": str(credentials.cert_file), "client-key": str(credentials.key_file)},
            }
        ],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": credentials.user}}],
        "current-context": "test",
    }
