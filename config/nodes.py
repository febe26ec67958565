"""Settings of the VMs (`dsaas:vsphere`, `dsaas:network`, `dsaas:nodes`, `dsaas:ssh`): where they go, the node
subnet, the pools and their static addresses, and the check that every node gets an address of its own.

`NodeSpec` is one VM as the components see it, derived from a pool. The Kubernetes settings built on these
nodes are in `config.cluster`.
"""

from __future__ import annotations

from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from config.model import HostName, OneLine, SettingsModel, SettingsProblem, SshPublicKey, stack_key


class Role(StrEnum):
    CONTROL_PLANE = "control-plane"
    WORKER = "worker"


class TemplateImage(SettingsModel):
    """The Ubuntu cloud image the program builds its node template from, pinned by checksum."""

    url: str = Field(
        pattern=r"^https://\S+\.ova$",
        description="HTTPS URL of a dated Ubuntu 24.04 cloud image OVA (cloud-images.ubuntu.com/releases/noble/"
        "release-YYYYMMDD/ubuntu-24.04-server-cloudimg-amd64.ova, or a mirror of it).",
    )
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="The OVA's SHA-256, from the release's signed SHA256SUMS; the download is refused if it differs.",
    )
    address: IPv4Address = Field(
        description="Static address the template VM uses while it is prepared: a free host address of the node "
        "subnet (not a node, the VIP, the hub or the gateway).",
    )
    timeout_minutes: StrictInt = Field(
        default=45, ge=5, le=240, description="How long the preparation (packages and image pulls) may take."
    )
    hosts: list[OneLine] = Field(
        default_factory=list,
        max_length=64,
        description="ESXi hosts (names as vCenter shows them) that each get a copy of the prepared template; "
        "nodes are cloned from the copies in turn. A clone holds units on its source host: with one template, "
        "that one host limits how many clones run at once, whatever the cluster's size (docs/bringup.md).",
    )


class VSphereSettings(SettingsModel):
    """Where the VMs go. Names are looked up with the provider's data sources."""

    datacenter: OneLine = Field(min_length=1, description="vSphere datacenter name.")
    compute_cluster: OneLine = Field(min_length=1, description="Compute cluster (DRS enabled) that hosts the VMs.")
    datastore: OneLine = Field(min_length=1, description="Datastore for the VM disks.")
    network: OneLine = Field(min_length=1, description="Port group the node NIC attaches to.")
    folder: OneLine = Field(min_length=1, description="VM folder, relative to the datacenter.")
    template: OneLine | None = Field(
        default=None,
        min_length=1,
        description="Template VM to clone (bring your own): Ubuntu 24.04 cloud image with cloud-init and "
        "open-vm-tools. Either this or templateImage.",
    )
    template_image: TemplateImage | None = Field(
        default=None,
        description="Let the program build the template from an Ubuntu cloud image OVA (instead of template).",
    )
    allow_unverified_ssl: StrictBool = Field(
        default=False, description="Accept a self-signed vCenter certificate (labs only)."
    )


MAX_POOL_NODES = 1000
MAX_CONTROL_PLANES = 7


class NodePool(SettingsModel):
    """A group of identical VMs, addressed from `firstAddress` on or from an explicit list."""

    count: StrictInt = Field(ge=0, le=MAX_POOL_NODES, description="Number of VMs.")
    cpus: StrictInt = Field(ge=2, le=128, description="vCPUs per VM (kubeadm needs 2).")
    # 4 TiB and 62 TiB: far above any node here, below vSphere's limits (24 TB memory, 62 TB VMDK).
    memory_mib: StrictInt = Field(ge=2048, le=4 * 1024 * 1024, description="Memory per VM in MiB.")
    disk_gib: StrictInt = Field(ge=20, le=62 * 1024, description="System disk per VM in GiB (at least the template's).")
    first_address: IPv4Address | None = Field(
        default=None, description="First static address; the pool counts up from it."
    )
    addresses: list[IPv4Address] | None = Field(
        default=None,
        max_length=MAX_POOL_NODES,
        description="Explicit static addresses, one per VM (instead of firstAddress).",
    )


class ControlPlanePool(NodePool):
    """The control-plane VMs: each is an etcd member, and etcd advises at most 7."""

    count: StrictInt = Field(ge=0, le=MAX_CONTROL_PLANES, description="Number of VMs (etcd members).")


class NodesSettings(SettingsModel):
    control_plane: ControlPlanePool
    workers: NodePool


class NetworkSettings(SettingsModel):
    """The node subnet. Every node address, the gateway and the VIP live in it."""

    subnet: IPv4Network = Field(description="Node subnet in CIDR notation.")
    gateway: IPv4Address = Field(description="Default gateway of the node subnet.")
    dns_servers: list[IPv4Address] = Field(min_length=1, description="DNS resolvers for the nodes.")
    search_domains: list[HostName] = Field(default_factory=list, description="DNS search domains.")
    interface: str = Field(
        default="ens192",
        pattern=r"^[a-z][a-z0-9]{1,14}$",
        description="Name the node's NIC is given (matched by its driver, then renamed); kube-vip binds the VIP to it.",
    )
    ntp_servers: list[HostName] = Field(default_factory=list, description="NTP servers (etcd needs sane clocks).")


class SshSettings(SettingsModel):
    user: str = Field(default="dsaas", pattern=r"^[a-z_][a-z0-9_-]{0,31}$", description="Admin user on every VM.")
    authorized_keys: list[SshPublicKey] = Field(
        default_factory=list,
        description="Operator public keys added next to the key the stack generates.",
    )


class NodeSpec(BaseModel):
    """One VM, derived from the settings: its stable name, role and static address."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: Role
    index: int
    address: IPv4Address
    cpus: int
    memory_mib: int
    disk_gib: int


_POOL_KEYS = {Role.CONTROL_PLANE: "controlPlane", Role.WORKER: "workers"}


def _pool(settings_nodes: NodesSettings, role: Role) -> NodePool:
    return settings_nodes.control_plane if role is Role.CONTROL_PLANE else settings_nodes.workers


def _pool_addresses(pool: NodePool) -> list[IPv4Address]:
    """The pool's addresses; none while it has neither firstAddress nor addresses (`check_pools` says so)."""
    if pool.addresses is not None:
        return list(pool.addresses[: pool.count])
    if pool.first_address is None:
        return []
    last = min(pool.count, int(IPv4Address("255.255.255.255")) - int(pool.first_address) + 1)
    return [pool.first_address + i for i in range(last)]


def pool_nodes(cluster_name: str, nodes: NodesSettings, role: Role) -> list[NodeSpec]:
    """The VMs of one pool, named `<cluster>-cp-<n>` or `<cluster>-worker-<n>` from 1."""
    pool = _pool(nodes, role)
    short = "cp" if role is Role.CONTROL_PLANE else "worker"
    return [
        NodeSpec(
            name=f"{cluster_name}-{short}-{i + 1}",
            role=role,
            index=i,
            address=address,
            cpus=pool.cpus,
            memory_mib=pool.memory_mib,
            disk_gib=pool.disk_gib,
        )
        for i, address in enumerate(_pool_addresses(pool))
    ]


def check_pools(nodes: NodesSettings, network: NetworkSettings, vip: IPv4Address) -> list[SettingsProblem]:
    """At least one worker; every node a host address of the subnet of its own, none the gateway or the
    API server's virtual IP `vip` (dsaas:controlPlaneEndpoint)."""
    problems: list[SettingsProblem] = []
    subnet = network.subnet
    if nodes.workers.count == 0:
        problems.append(
            SettingsProblem(
                key=stack_key("nodes", "workers", "count"),
                problem="the hub and user servers need at least one worker node.",
                fix="set it to 1 or more.",
            )
        )
    seen: dict[IPv4Address, str] = {}
    for role, pool_key in _POOL_KEYS.items():
        pool = _pool(nodes, role)
        if pool.first_address is not None and pool.addresses is not None:
            problems.append(
                SettingsProblem(
                    key=stack_key("nodes", pool_key),
                    problem="sets both firstAddress and addresses.",
                    fix="keep one of them.",
                )
            )
            continue
        if pool.first_address is None and pool.addresses is None:
            problems.append(
                SettingsProblem(
                    key=stack_key("nodes", pool_key, "firstAddress"),
                    problem="the pool has no addresses.",
                    fix=f"set firstAddress (or an addresses list) inside {subnet}.",
                )
            )
            continue
        if pool.addresses is not None:
            if len(pool.addresses) < pool.count:
                problems.append(
                    SettingsProblem(
                        key=stack_key("nodes", pool_key, "addresses"),
                        problem=f"{len(pool.addresses)} addresses for {pool.count} nodes.",
                        fix=f"list {pool.count - len(pool.addresses)} more, or lower count.",
                    )
                )
            candidates = [(stack_key("nodes", pool_key, "addresses", i), a) for i, a in enumerate(pool.addresses)]
        else:
            assert pool.first_address is not None
            if pool.first_address not in subnet:
                problems.append(
                    SettingsProblem(
                        key=stack_key("nodes", pool_key, "firstAddress"),
                        problem=f"{pool.first_address} is not a host address of the node subnet {subnet}.",
                        fix=f"use an address inside {subnet} (dsaas:network.subnet).",
                    )
                )
                continue
            last = int(subnet.broadcast_address) - 1
            available = max(0, last - int(pool.first_address) + 1)
            if available < pool.count:
                problems.append(
                    SettingsProblem(
                        key=stack_key("nodes", pool_key, "firstAddress"),
                        problem=f"only {available} addresses from {pool.first_address} to the end "
                        f"of {subnet} for {pool.count} nodes.",
                        fix="start lower, use a larger subnet, or list the addresses explicitly.",
                    )
                )
                continue
            candidates = [
                (stack_key("nodes", pool_key, "firstAddress") + (f" (+{i})" if i else ""), pool.first_address + i)
                for i in range(pool.count)
            ]
        for key, address in candidates:
            if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
                problems.append(
                    SettingsProblem(
                        key=key,
                        problem=f"{address} is not a host address of the node subnet {subnet}.",
                        fix=f"use an address inside {subnet} (dsaas:network.subnet).",
                    )
                )
            elif address in seen:
                problems.append(
                    SettingsProblem(
                        key=key,
                        problem=f"{address} is already used by {seen[address]}.",
                        fix="give every node its own address.",
                    )
                )
            else:
                seen[address] = key
    gateway = network.gateway
    for address, owner in seen.items():
        if address == gateway:
            problems.append(
                SettingsProblem(
                    key=owner,
                    problem=f"{address} is the gateway (dsaas:network.gateway).",
                    fix="move the node range off the gateway.",
                )
            )
        if address == vip:
            problems.append(
                SettingsProblem(
                    key=stack_key("cluster", "controlPlaneEndpoint"),
                    problem=f"the virtual IP {vip} is also the address of a node ({owner}); "
                    "kube-vip would fight the node for it.",
                    fix="pick a free address in the node subnet for the VIP.",
                )
            )
    return problems


__all__ = [
    "MAX_CONTROL_PLANES",
    "MAX_POOL_NODES",
    "ControlPlanePool",
    "NetworkSettings",
    "NodePool",
    "NodeSpec",
    "NodesSettings",
    "Role",
    "SshSettings",
    "VSphereSettings",
    "check_pools",
    "pool_nodes",
]
