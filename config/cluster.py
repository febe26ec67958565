"""Settings of the Kubernetes cluster kubeadm builds on the nodes (the top-level keys `dsaas:clusterName`,
`dsaas:kubernetesVersion`, `dsaas:controlPlaneEndpoint`, ...), and their checks against the nodes beneath:
a supported exact version, an etcd quorum, networks that never overlap, a virtual IP inside the node subnet.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network

from pydantic import Field, StrictBool, StrictInt

from config import versions
from config.model import SettingsModel, SettingsProblem, stack_key
from config.nodes import MAX_CONTROL_PLANES, ControlPlanePool, NetworkSettings


class ClusterSettings(SettingsModel):
    cluster_name: str = Field(
        pattern=r"^[a-z]([a-z0-9-]{0,20}[a-z0-9])?$",
        description="Cluster name; prefixes VM and host names.",
    )
    kubernetes_version: str = Field(
        default=versions.DEFAULT_KUBERNETES_VERSION, description="Kubernetes version (x.y.z)."
    )
    control_plane_endpoint: IPv4Address = Field(description="Virtual IP of the API server, announced by kube-vip.")
    api_server_port: StrictInt = Field(default=6443, ge=1, le=65535, description="API server port.")
    pod_cidr: IPv4Network = Field(default=IPv4Network("10.244.0.0/16"), description="Pod network (Calico IP pool).")
    service_cidr: IPv4Network = Field(default=IPv4Network("10.96.0.0/12"), description="Service network.")
    high_availability: StrictBool = Field(default=False, description="Require an HA control plane (3 or more, odd).")
    wireguard: StrictBool = Field(
        default=True,
        description="Encrypt pod traffic between nodes with WireGuard (Calico): the proxy-to-hub hop carries "
        "login passwords in plain HTTP. Nodes need Linux 5.6+ (the Ubuntu 24.04 template has 6.8) and UDP "
        "51820 open between them.",
    )

    join_concurrency: StrictInt = Field(
        default=50,
        ge=1,
        le=500,
        description="Workers that join at once (their join credentials on the first control plane, then kubeadm "
        "join); the next waits for one to finish. kubeadm's maintainers advise against joining hundreds at once "
        "(kubernetes/kubeadm#3181), and each join opens SSH sessions to the first control plane.",
    )

    upgrade_worker_batch_size: StrictInt = Field(
        default=1,
        ge=1,
        le=50,
        description="Workers upgraded at once when dsaas:kubernetesVersion changes (each drained, upgraded and Ready "
        "again before the next batch starts); every drained worker's users lose their servers, so keep it small.",
    )

    @property
    def kubernetes_minor(self) -> str:
        return ".".join(self.kubernetes_version.split(".")[:2])


_VERSION = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)")


def check_kubernetes_version(cluster: ClusterSettings) -> list[SettingsProblem]:
    key = stack_key("cluster", "kubernetesVersion")
    supported = ", ".join(f"{m}.x" for m in versions.SUPPORTED_KUBERNETES_MINORS)
    if not _VERSION.fullmatch(cluster.kubernetes_version):
        return [
            SettingsProblem(
                key=key,
                problem=f"{cluster.kubernetes_version!r} is not an exact version like "
                f"{versions.DEFAULT_KUBERNETES_VERSION} (no 'v', no ranges: the point is reproducibility).",
                fix=f"pin an exact patch release of {supported}.",
            )
        ]
    if cluster.kubernetes_minor not in versions.SUPPORTED_KUBERNETES_MINORS:
        return [
            SettingsProblem(
                key=key,
                problem=f"Kubernetes {cluster.kubernetes_version} is not supported: Trident 26.06 "
                "needs 1.34 or newer (VolumeGroupSnapshot v1beta2) and the platform is validated "
                f"for {supported} only.",
                fix=f"use one of {supported}, e.g. {versions.DEFAULT_KUBERNETES_VERSION}.",
            )
        ]
    return []


def check_control_plane_count(cluster: ClusterSettings, control_plane: ControlPlanePool) -> list[SettingsProblem]:
    key = stack_key("nodes", "controlPlane", "count")
    count = control_plane.count
    if count == 0:
        return [
            SettingsProblem(
                key=key,
                problem="a cluster needs at least one control-plane node.",
                fix="set it to 1 for a lab, or 3 (or 5) for production.",
            )
        ]
    # A lab stack (highAvailability false) may run an even count; the policy pack's mandatory
    # `control-plane-ha` rule stops it unless the pack's config downgrades that rule on purpose.
    if not cluster.high_availability:
        return []
    options = " or ".join(str(n) for n in quorum_counts(count, minimum=3, maximum=MAX_CONTROL_PLANES))
    if count % 2 == 0:
        return [
            SettingsProblem(
                key=key,
                problem=f"{count} control-plane nodes, and dsaas:highAvailability is true: etcd needs "
                f"{count // 2 + 1} of {count} members for a quorum, so {count} members tolerate "
                f"{_failures(count)}, the same as {count - 1}, with one more member that can fail.",
                fix=f"set it to {options}.",
            )
        ]
    if count < 3:
        return [
            SettingsProblem(
                key=key,
                problem=f"{count} control-plane node(s) tolerate {_failures(count)}, "
                "but dsaas:highAvailability is true.",
                fix=f"set it to {options}, or set dsaas:highAvailability to false for a lab.",
            )
        ]
    return []


def _failures(members: int) -> str:
    """How many etcd members may fail with a quorum (a majority) left."""
    tolerated = (members - 1) // 2
    return f"{tolerated} failure{'' if tolerated == 1 else 's'}"


def quorum_counts(count: int, minimum: int, maximum: int) -> list[int]:
    """The odd member counts from `minimum` to `maximum` nearest to `count`: what a fix may suggest."""
    odd = [n for n in range(minimum, maximum + 1) if n % 2 == 1]
    nearest = min(abs(n - count) for n in odd)
    return [n for n in odd if abs(n - count) == nearest]


def check_cidrs(cluster: ClusterSettings, network: NetworkSettings) -> list[SettingsProblem]:
    networks = {
        stack_key("cluster", "podCidr"): cluster.pod_cidr,
        stack_key("cluster", "serviceCidr"): cluster.service_cidr,
        stack_key("network", "subnet"): network.subnet,
    }
    problems = []
    keys = list(networks)
    for i, first in enumerate(keys):
        for second in keys[i + 1 :]:
            if networks[first].overlaps(networks[second]):
                problems.append(
                    SettingsProblem(
                        key=first,
                        problem=f"{networks[first]} overlaps {second} ({networks[second]}); "
                        "packets would be routed to the wrong network.",
                        fix="choose non-overlapping ranges for pods, services and nodes.",
                    )
                )
    return problems


def check_endpoint_and_gateway(cluster: ClusterSettings, network: NetworkSettings) -> list[SettingsProblem]:
    subnet = network.subnet
    problems = []
    vip = cluster.control_plane_endpoint
    hosts = (subnet.network_address, subnet.broadcast_address)
    if vip not in subnet or vip in hosts:
        problems.append(
            SettingsProblem(
                key=stack_key("cluster", "controlPlaneEndpoint"),
                problem=f"the virtual IP {vip} is outside the node subnet {subnet}; kube-vip "
                "announces it by ARP, so it must be on the nodes' layer-2 network.",
                fix=f"pick a free host address inside {subnet}.",
            )
        )
    elif vip == network.gateway:
        problems.append(
            SettingsProblem(
                key=stack_key("cluster", "controlPlaneEndpoint"),
                problem=f"the virtual IP {vip} is the gateway.",
                fix="pick a free host address for the VIP.",
            )
        )
    gateway = network.gateway
    if gateway not in subnet or gateway in hosts:
        problems.append(
            SettingsProblem(
                key=stack_key("network", "gateway"),
                problem=f"{gateway} is not a host address of {subnet}.",
                fix="set the subnet's router address.",
            )
        )
    return problems


__all__ = [
    "ClusterSettings",
    "check_cidrs",
    "check_control_plane_count",
    "check_endpoint_and_gateway",
    "check_kubernetes_version",
    "quorum_counts",
]
