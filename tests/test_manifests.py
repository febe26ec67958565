"""Kubernetes manifests we render, validated by kubernetes-validate for the pinned version."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from components import kubeadm_render as render
from config import versions
from tests.conftest import STACKS, load_settings


def validate(document: dict[str, object], kubernetes_version: str) -> None:
    kubernetes_validate.validate(document, kubernetes_version, strict=True)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("kubeconfig", [render.SUPER_ADMIN_CONF, render.ADMIN_CONF])
def test_kube_vip_static_pod_is_a_valid_pod(stack: str, kubeconfig: str) -> None:
    settings = load_settings(stack)
    manifest = yaml.safe_load(render.render_kube_vip_manifest(settings, kubeconfig))
    for minor in versions.SUPPORTED_KUBERNETES_MINORS:  # every minor the settings accept
        validate(manifest, f"{minor}.0")
    container = manifest["spec"]["containers"][0]
    assert container["image"] == versions.KUBE_VIP_IMAGE and not container["image"].endswith(":latest")
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["address"] == str(settings.cluster.control_plane_endpoint)
    assert env["vip_interface"] == settings.network.interface
    assert manifest["spec"]["volumes"][0]["hostPath"]["path"] == kubeconfig


def test_the_validator_rejects_an_unknown_field() -> None:
    settings = load_settings("prod")
    manifest = yaml.safe_load(render.render_kube_vip_manifest(settings, render.ADMIN_CONF))
    manifest["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(manifest, settings.cluster.kubernetes_version)


@pytest.mark.parametrize("stack", STACKS)
def test_kubeadm_configs_use_v1beta4_and_the_virtual_ip(stack: str) -> None:
    settings = load_settings(stack)
    first = settings.control_planes[0]
    init = list(yaml.safe_load_all(render.render_init_config(settings, first)))
    kinds = {doc["kind"]: doc for doc in init}
    assert {doc["apiVersion"] for doc in init if "kubeadm" in doc["apiVersion"]} == {"kubeadm.k8s.io/v1beta4"}
    cluster = kinds["ClusterConfiguration"]
    assert cluster["controlPlaneEndpoint"] == settings.api_endpoint
    assert cluster["kubernetesVersion"] == f"v{settings.cluster.kubernetes_version}"
    assert cluster["networking"]["podSubnet"] == str(settings.cluster.pod_cidr)
    assert kinds["KubeletConfiguration"]["cgroupDriver"] == "systemd"
    # loadBalancerSourceRanges never covers NodePorts: none answer beyond the node itself.
    assert kinds["KubeProxyConfiguration"]["nodePortAddresses"] == ["127.0.0.0/8"]
    # v1beta4 takes extra args as a list of name/value pairs, not a map.
    assert kinds["InitConfiguration"]["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-ip", "value": str(first.address)}
    ]
    for node in settings.all_nodes[1:]:
        (join,) = yaml.safe_load_all(
            render.render_join_config(settings, node, render.JoinCredentials("t.t", "k"), "sha256:x")
        )
        assert join["discovery"]["bootstrapToken"]["apiServerEndpoint"] == settings.api_endpoint
        assert ("controlPlane" in join) == (node.role.value == "control-plane")
