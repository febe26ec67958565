"""The test control plane itself: real components, real admission, real controllers."""

from __future__ import annotations

import pytest

from tests.controlplane.conftest import start_stack_nodes
from tools.controlplane.client import ApiError
from tools.controlplane.cluster import ControlPlane
from tools.lab.procs import wait_until

pytestmark = pytest.mark.slow


def test_it_is_the_pinned_release_with_kubeadms_authorizers(control_plane: ControlPlane) -> None:
    version = control_plane.client().get("/version")
    assert version["gitVersion"] == control_plane.binaries.kubernetes_version
    anonymous_node = control_plane.client().can("system:node:stranger", ("system:nodes",), "get", "secrets", "default")
    assert anonymous_node is False  # the Node authorizer: a node reads only its own pods' secrets


def test_pod_security_refuses_a_privileged_pod_in_a_baseline_namespace(control_plane: ControlPlane) -> None:
    admin = control_plane.client()
    admin.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "psa-probe", "labels": {"pod-security.kubernetes.io/enforce": "baseline"}},
        }
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged", "namespace": "psa-probe"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "securityContext": {"privileged": True}}]},
    }
    with pytest.raises(ApiError) as refused:
        admin.apply(pod)
    assert refused.value.status == 403
    assert 'violates PodSecurity "baseline:latest"' in refused.value.message


def test_simulated_workers_run_a_deployment_and_complete_a_job(control_plane: ControlPlane) -> None:
    admin = control_plane.client()
    admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "workloads"}})
    with start_stack_nodes(control_plane, "dev") as nodes:
        admin.apply(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "workloads"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                    },
                },
            }
        )
        admin.apply(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": "once", "namespace": "workloads"},
                "spec": {
                    "template": {
                        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1.36"}]}
                    }
                },
            }
        )

        def deployment_ready() -> bool:
            status = admin.get("/apis/apps/v1/namespaces/workloads/deployments/web").get("status", {})
            return bool(status.get("readyReplicas") == 2)

        def job_complete() -> bool:
            status = admin.get("/apis/batch/v1/namespaces/workloads/jobs/once").get("status", {})
            return bool(status.get("succeeded") == 1)

        assert wait_until(deployment_ready, 60), control_plane.logs()
        assert wait_until(job_complete, 60), control_plane.logs()
        assert not nodes.errors, nodes.errors[:5]
        pods = list(admin.items("/api/v1/namespaces/workloads/pods", labelSelector="app=web"))
        # the scheduler placed them, never on a tainted control-plane node
        assert all(not pod["spec"]["nodeName"].endswith(("-cp-1", "-cp-2", "-cp-3")) for pod in pods)
