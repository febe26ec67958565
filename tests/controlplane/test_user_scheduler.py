"""z2jh's user scheduler, as the prod stack deploys it, run for real: the kube-scheduler of the cluster's
release loads the chart's own configuration, authenticates as the chart's service account with the
chart's RBAC plus the program's bindings, and places a user pod on a simulated worker.

Only one thing differs from the pod the chart makes: the scheduler reaches the API server through a
kubeconfig holding that service account's bound token (in a pod, client-go builds the same from the
projected token and KUBERNETES_SERVICE_HOST), so `clientConnection.kubeconfig` is set in the test's copy.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import hub_render
from config import versions
from tests.controlplane.conftest import StartControlPlane, start_stack_nodes
from tools.controlplane.cluster import ControlPlane
from tools.lab.procs import stop_process_group, tail, wait_until
from tools.offline import charts
from tools.offline.mockgraph import Graph, kubernetes_objects

pytestmark = pytest.mark.slow

NAMESPACE = hub_render.HUB_NAMESPACE
# Restricted-compliant, so only scheduling can keep it Pending.
RESTRICTED_CONTAINER = {
    "name": "notebook",
    "image": "quay.io/jupyter/minimal-notebook:2025-10-06",
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


def _hub_release(graph: Graph) -> charts.RenderedRelease:
    (release,) = [r for r in charts.render_graph(graph) if r.chart.name == "jupyterhub"]
    return release


def _program_objects(graph: Graph, kind: str) -> list[dict[str, Any]]:
    return [doc for r in graph.resources for doc in kubernetes_objects(r) if doc["kind"] == kind]


@pytest.fixture(scope="module")
def plane(start_control_plane: StartControlPlane) -> ControlPlane:
    return start_control_plane()


@pytest.fixture(scope="module")
def user_scheduler(graphs: dict[str, Graph]) -> list[charts.RenderedObject]:
    release = _hub_release(graphs["prod"])
    return [o for o in release.objects if "user-scheduler" in o.name]


def _apply_chart_part(plane: ControlPlane, graph: Graph, objects: list[charts.RenderedObject]) -> None:
    admin = plane.client()
    (namespace,) = [ns for ns in _program_objects(graph, "Namespace") if ns["metadata"]["name"] == NAMESPACE]
    admin.apply(namespace)
    for item in objects:
        document = dict(item.document)
        if item.namespaced:
            document["metadata"] = {**document["metadata"], "namespace": item.namespace}
        admin.apply(document)


@pytest.fixture(scope="module")
def running_scheduler(
    plane: ControlPlane, graphs: dict[str, Graph], user_scheduler: list[charts.RenderedObject], tmp_path_factory: Any
) -> Iterator[tuple[ControlPlane, Path, str]]:
    graph = graphs["prod"]
    _apply_chart_part(plane, graph, user_scheduler)
    for binding in _program_objects(graph, "ClusterRoleBinding"):
        if binding["metadata"]["name"].startswith("dsaas-user-scheduler-"):
            plane.client().apply(binding)
    workdir = Path(tmp_path_factory.mktemp("user-scheduler"))
    (deployment,) = [o.document for o in user_scheduler if o.kind == "Deployment"]
    (config_map,) = [o.document for o in user_scheduler if o.kind == "ConfigMap"]
    pod_spec = deployment["spec"]["template"]["spec"]
    (container,) = pod_spec["containers"]
    token = plane.service_account_token(NAMESPACE, pod_spec["serviceAccountName"])
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": plane.server, "certificate-authority": str(plane.pki.ca_file)}}
        ],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "sa"}}],
        "current-context": "c",
    }
    (workdir / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    (workdir / "kubeconfig").chmod(0o600)
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    config["clientConnection"] = {"kubeconfig": str(workdir / "kubeconfig")}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    mount = container["volumeMounts"][0]["mountPath"]
    # The chart's own command line, with the config path mapped and no serving port (it would need a
    # serving certificate and a free port; the scheduler's health endpoints are not under test).
    args = [arg.replace(f"{mount}/", f"{workdir}/") for arg in container["command"][1:]] + ["--secure-port=0"]
    log = workdir / "kube-scheduler.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(plane.binaries.path("kube-scheduler")), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield plane, log, config["profiles"][0]["schedulerName"]
    finally:
        stop_process_group(process)


def test_the_user_scheduler_runs_the_clusters_kube_scheduler_release(
    user_scheduler: list[charts.RenderedObject], graphs: dict[str, Graph]
) -> None:
    (deployment,) = [o for o in user_scheduler if o.kind == "Deployment"]
    release = _hub_release(graphs["prod"])
    cluster_version = release.values["scheduling"]["userScheduler"]["image"]["tag"]
    assert deployment.images() == [f"registry.k8s.io/kube-scheduler:{cluster_version}"]
    assert cluster_version.removeprefix("v").rsplit(".", 1)[0] in versions.SUPPORTED_KUBERNETES_MINORS
    (account,) = [o for o in user_scheduler if o.kind == "ServiceAccount"]
    assert account.name == hub_render.USER_SCHEDULER_SERVICE_ACCOUNT


def test_the_charts_own_role_lacks_what_a_current_scheduler_waits_for(
    start_control_plane: StartControlPlane, graphs: dict[str, Graph], user_scheduler: list[charts.RenderedObject]
) -> None:
    """Why the program's bindings exist: with the chart's RBAC alone, a 1.34+ scheduler may not list the
    objects it waits for before scheduling anything."""
    plane = start_control_plane()
    _apply_chart_part(plane, graphs["prod"], user_scheduler)
    account = f"system:serviceaccount:{NAMESPACE}:{hub_render.USER_SCHEDULER_SERVICE_ACCOUNT}"
    groups = ("system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}", "system:authenticated")
    admin = plane.client()
    assert not admin.can(account, groups, "list", "resourceclaims", group="resource.k8s.io")
    assert not admin.can(account, groups, "list", "volumeattachments", group="storage.k8s.io")
    assert admin.can(account, groups, "create", "pods", NAMESPACE, subresource="binding")
    plane.stop()


def test_it_loads_the_charts_configuration_and_places_a_user_pod(
    running_scheduler: tuple[ControlPlane, Path, str],
) -> None:
    plane, log, scheduler_name = running_scheduler
    admin = plane.client()
    with start_stack_nodes(plane, "prod"):
        started = time.monotonic()
        admin.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "jupyter-probe", "namespace": NAMESPACE},
                "spec": {"schedulerName": scheduler_name, "containers": [RESTRICTED_CONTAINER]},
            }
        )

        def placed() -> bool:
            pod = admin.get(f"/api/v1/namespaces/{NAMESPACE}/pods/jupyter-probe")
            return bool(pod["spec"].get("nodeName"))

        assert wait_until(placed, 60), f"the user scheduler placed nothing in 60 s:\n{tail(log, 30)}"
        pod = admin.get(f"/api/v1/namespaces/{NAMESPACE}/pods/jupyter-probe")
        print(f"user scheduler placed the pod on {pod['spec']['nodeName']} in {time.monotonic() - started:.1f} s")
        assert "-worker-" in pod["spec"]["nodeName"]
    text = log.read_text(errors="replace")
    assert "forbidden" not in text, [line for line in text.splitlines() if "forbidden" in line][:5]
