"""Typed, validated stack settings.

`parse_settings` is pure: it takes the stack's `dsaas:*` values (already decoded from the stack file)
and returns frozen pydantic models or raises `SettingsError` listing every problem at once, each
naming the stack key and the fix. Pulumi secrets are read separately by `config.loader`.
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from collections.abc import Mapping
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config import pins, versions
from config.model import HostName, OneLine, SettingsModel, SshPublicKey
from config.services import (
    HubSettings,
    HubTlsMode,
    LdapTlsStrategy,
    NasDriver,
    StorageSettings,
)

NAMESPACE = "dsaas"
# Secrets live in the same namespace but are read by `config.loader` as Pulumi secrets, never here.
SECRET_KEYS: frozenset[str] = frozenset(
    {
        "dsaas:ontapUsername",
        "dsaas:ontapPassword",
        "dsaas:ldapSearchPassword",
        "dsaas:hubTlsCertificate",
        "dsaas:hubTlsKey",
        "dsaas:hubDatabaseUrl",
    }
)


class SettingsProblem(BaseModel):
    """One bad stack setting: where it is, what is wrong, how to fix it."""

    model_config = ConfigDict(frozen=True)

    key: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.key}: {self.problem} Fix: {self.fix}"


MAX_PROBLEMS_SHOWN = 50


class SettingsError(ValueError):
    """The stack file is wrong; raised before any resource is registered.

    The message lists the first `MAX_PROBLEMS_SHOWN` problems and counts the rest (all stay in `problems`).
    """

    def __init__(self, problems: list[SettingsProblem]) -> None:
        self.problems = problems
        lines = [f"  - {p}" for p in problems[:MAX_PROBLEMS_SHOWN]]
        if len(problems) > MAX_PROBLEMS_SHOWN:
            lines.append(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more problems")
        super().__init__("the stack settings are invalid:\n" + "\n".join(lines))

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.problems]


class Role(StrEnum):
    CONTROL_PLANE = "control-plane"
    WORKER = "worker"


class VSphereSettings(SettingsModel):
    """Where the VMs go. Names are looked up with the provider's data sources."""

    datacenter: OneLine = Field(min_length=1, description="vSphere datacenter name.")
    compute_cluster: OneLine = Field(min_length=1, description="Compute cluster (DRS enabled) that hosts the VMs.")
    datastore: OneLine = Field(min_length=1, description="Datastore for the VM disks.")
    network: OneLine = Field(min_length=1, description="Port group the node NIC attaches to.")
    folder: OneLine = Field(min_length=1, description="VM folder, relative to the datacenter.")
    template: OneLine = Field(
        min_length=1,
        description="Template VM to clone: Ubuntu 24.04 cloud image with cloud-init and open-vm-tools.",
    )
    allow_unverified_ssl: bool = Field(
        default=False, description="Accept a self-signed vCenter certificate (labs only)."
    )


MAX_POOL_NODES = 1000
MAX_CONTROL_PLANES = 7


class NodePool(SettingsModel):
    """A group of identical VMs, addressed from `firstAddress` on or from an explicit list."""

    count: int = Field(ge=0, le=MAX_POOL_NODES, description="Number of VMs.")
    cpus: int = Field(ge=2, le=128, description="vCPUs per VM (kubeadm needs 2).")
    # 4 TiB and 62 TiB: far above any node here, below vSphere's limits (24 TB memory, 62 TB VMDK).
    memory_mib: int = Field(ge=2048, le=4 * 1024 * 1024, description="Memory per VM in MiB.")
    disk_gib: int = Field(ge=20, le=62 * 1024, description="System disk per VM in GiB (at least the template's).")
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

    count: int = Field(ge=0, le=MAX_CONTROL_PLANES, description="Number of VMs (etcd members).")


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


class ClusterSettings(SettingsModel):
    cluster_name: str = Field(
        pattern=r"^[a-z]([a-z0-9-]{0,20}[a-z0-9])?$",
        description="Cluster name; prefixes VM and host names.",
    )
    kubernetes_version: str = Field(
        default=versions.DEFAULT_KUBERNETES_VERSION, description="Kubernetes version (x.y.z)."
    )
    control_plane_endpoint: IPv4Address = Field(description="Virtual IP of the API server, announced by kube-vip.")
    api_server_port: int = Field(default=6443, ge=1, le=65535, description="API server port.")
    pod_cidr: IPv4Network = Field(default=IPv4Network("10.244.0.0/16"), description="Pod network (Calico IP pool).")
    service_cidr: IPv4Network = Field(default=IPv4Network("10.96.0.0/12"), description="Service network.")
    high_availability: bool = Field(default=False, description="Require an HA control plane (3 or more, odd).")

    @property
    def kubernetes_minor(self) -> str:
        return ".".join(self.kubernetes_version.split(".")[:2])


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


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    vsphere: VSphereSettings
    cluster: ClusterSettings
    nodes: NodesSettings
    network: NetworkSettings
    ssh: SshSettings
    storage: StorageSettings
    hub: HubSettings

    @property
    def export_cidrs(self) -> list[IPv4Network]:
        """Clients ONTAP exports to: the configured list, or the node subnet."""
        return list(self.storage.export_cidrs or [self.network.subnet])

    @property
    def control_planes(self) -> list[NodeSpec]:
        return _pool_nodes(self, Role.CONTROL_PLANE)

    @property
    def workers(self) -> list[NodeSpec]:
        return _pool_nodes(self, Role.WORKER)

    @property
    def all_nodes(self) -> list[NodeSpec]:
        return self.control_planes + self.workers

    @property
    def api_endpoint(self) -> str:
        return f"{self.cluster.control_plane_endpoint}:{self.cluster.api_server_port}"


CLUSTER_SECTION = "cluster"
_SECTIONS: dict[str, type[BaseModel]] = {
    "vsphere": VSphereSettings,
    "nodes": NodesSettings,
    "network": NetworkSettings,
    "ssh": SshSettings,
    "storage": StorageSettings,
    "hub": HubSettings,
}
_OPTIONAL_SECTIONS = {"ssh"}
_POOL_KEYS = {Role.CONTROL_PLANE: "controlPlane", Role.WORKER: "workers"}


def _pool(settings_nodes: NodesSettings, role: Role) -> NodePool:
    return settings_nodes.control_plane if role is Role.CONTROL_PLANE else settings_nodes.workers


def _pool_addresses(pool: NodePool) -> list[IPv4Address]:
    """The pool's addresses; none while it has neither firstAddress nor addresses (`_check_pools` says so)."""
    if pool.addresses is not None:
        return list(pool.addresses[: pool.count])
    if pool.first_address is None:
        return []
    last = min(pool.count, int(IPv4Address("255.255.255.255")) - int(pool.first_address) + 1)
    return [pool.first_address + i for i in range(last)]


def _pool_nodes(settings: Settings, role: Role) -> list[NodeSpec]:
    pool = _pool(settings.nodes, role)
    short = "cp" if role is Role.CONTROL_PLANE else "worker"
    return [
        NodeSpec(
            name=f"{settings.cluster.cluster_name}-{short}-{i + 1}",
            role=role,
            index=i,
            address=address,
            cpus=pool.cpus,
            memory_mib=pool.memory_mib,
            disk_gib=pool.disk_gib,
        )
        for i, address in enumerate(_pool_addresses(pool))
    ]


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)


def _key(*parts: str | int) -> str:
    """The stack key of a setting, e.g. `dsaas:nodes.controlPlane.count` or `dsaas:podCidr`.

    A key the stack file invented with odd characters is quoted (`dsaas:hub["a b"]`), so a message stays one line.
    """
    section, *rest = parts
    if section == CLUSTER_SECTION and rest:
        # Cluster-wide scalars are top-level keys, so Pulumi.yaml can declare their types.
        section, *rest = rest
    path = f"{NAMESPACE}:{section}"
    for part in rest:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if _PLAIN_KEY.fullmatch(str(part)) else f"[{json.dumps(str(part))}]"
    return path


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model inside `Model`, `Model | None`, `list[Model]` or `list[Model] | None`."""
    pending = [annotation]
    while pending:
        candidate = pending.pop()
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
        pending.extend(typing.get_args(candidate))
    return None


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The settings model that holds the key at `loc` (list positions skipped), or None."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        field = next((f for name, f in current.model_fields.items() if part in (name, f.alias)), None)
        current = _nested_model(field.annotation) if field is not None else None
    return current


def _spelling_fix(name: str, known: list[str]) -> str:
    """Point a misspelt key at the closest known one, else list the known keys."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    listed = ", ".join(known)
    if close:
        return f"did you mean `{close[0]}`? Otherwise remove it (known keys here: {listed})."
    return f"remove it or correct its spelling; known keys here: {listed}."


def _pydantic_problems(section: str, error: ValidationError) -> list[SettingsProblem]:
    problems = []
    section_model = ClusterSettings if section == CLUSTER_SECTION else _SECTIONS[section]
    for item in error.errors():
        key = _key(section, *item["loc"])
        kind = item["type"]
        if kind == "missing":
            fix = f"add `{key}` to the stack file (see the settings table in the README)."
        elif kind == "extra_forbidden":
            model = _model_at(section_model, item["loc"][:-1])
            known = [field.alias or name for name, field in model.model_fields.items()] if model else []
            fix = _spelling_fix(str(item["loc"][-1]), known)
        else:
            fix = "set a value of the expected form."
        problems.append(SettingsProblem(key=key, problem=f"{item['msg']}.", fix=fix))
    return problems


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    """Turn the stack's `dsaas:*` values into `Settings`, or raise `SettingsError`."""
    problems: list[SettingsProblem] = []
    sections: dict[str, Any] = {}
    cluster_keys = [_key(CLUSTER_SECTION, field.alias or name) for name, field in ClusterSettings.model_fields.items()]
    known = [*(_key(s) for s in _SECTIONS), *cluster_keys]
    for key in raw:
        namespace, _, _name = key.partition(":")
        if namespace == NAMESPACE and key not in known and key not in SECRET_KEYS:
            problems.append(
                SettingsProblem(
                    key=key if key.isprintable() else f"{NAMESPACE}:[{json.dumps(_name)}]",
                    problem="is not a known setting.",
                    fix=_spelling_fix(key, known),
                )
            )
    try:
        sections[CLUSTER_SECTION] = ClusterSettings.model_validate(
            {key.split(":", 1)[1]: raw[key] for key in cluster_keys if key in raw}
        )
    except ValidationError as error:
        problems.extend(_pydantic_problems(CLUSTER_SECTION, error))
    for section, model in _SECTIONS.items():
        value = raw.get(_key(section))
        if value is None:
            if section in _OPTIONAL_SECTIONS:
                value = {}
            else:
                problems.append(
                    SettingsProblem(
                        key=_key(section),
                        problem="is missing.",
                        fix=f"add a `{_key(section)}` object to the stack file.",
                    )
                )
                continue
        try:
            sections[section] = model.model_validate(value)
        except ValidationError as error:
            problems.extend(_pydantic_problems(section, error))
    if problems:
        raise SettingsError(problems)
    settings = Settings(**sections)
    problems = check_consistency(settings)
    if problems:
        raise SettingsError(problems)
    return settings


# The rules `check_consistency` applies, for the generated settings reference (docs/settings.md).
CONSISTENCY_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("dsaas:kubernetesVersion",), "an exact x.y.z of a supported minor (1.34 - 1.36)."),
    (
        ("dsaas:nodes.controlPlane.count", "dsaas:highAvailability"),
        "at least 1 control plane; with highAvailability, 3 or more and odd (etcd quorum).",
    ),
    (("dsaas:nodes.workers.count",), "at least one worker (the hub and user servers run there)."),
    (
        ("dsaas:nodes.controlPlane", "dsaas:nodes.workers"),
        "firstAddress or addresses, not both; enough host addresses in the subnet; no address twice, "
        "none the gateway or the VIP.",
    ),
    (("dsaas:podCidr", "dsaas:serviceCidr", "dsaas:network.subnet"), "no two of them overlap."),
    (
        ("dsaas:controlPlaneEndpoint", "dsaas:network.gateway"),
        "host addresses inside the node subnet; the VIP is not the gateway.",
    ),
    (
        ("dsaas:storage.exportCidrs",),
        "each inside the node subnet, never 0.0.0.0/0 (default: the node subnet).",
    ),
    (("dsaas:storage.snapshots", "dsaas:storage.homesDriver"), "snapshots need homesDriver ontap-nas."),
    (("dsaas:hub.address",), "a free host address of the node subnet: not a node, the VIP or the gateway."),
    (
        ("dsaas:hub.frontProxyCidrs", "dsaas:hub.tls"),
        "required with tls offload (the hub then serves plain HTTP), never 0.0.0.0/0; only with offload.",
    ),
    (
        ("dsaas:hub.ldap.bindDnTemplates", "dsaas:hub.ldap.lookupDn"),
        "templates contain {username}; without templates, lookupDn with searchUser and userSearchBase; not both.",
    ),
    (("dsaas:hub.ldap.caFile",), "not combined with tlsStrategy insecure."),
    (
        ("dsaas:hub.profiles",),
        "slugs and names unique (Basic and Data Science built in); image pinned by a build date or commit tag "
        "or a digest (config/pins.py); "
        "guarantees not above limits; only Basic is the default.",
    ),
    (
        ("dsaas:hub.ldap.caFile", "dsaas:hub.branding.logoFile", "dsaas:hub.branding.loginTemplateFile"),
        "an existing file inside the project, named relative to its root.",
    ),
)


def check_consistency(settings: Settings) -> list[SettingsProblem]:
    """Rules that span several settings: quorum, addressing, CIDRs, versions."""
    return [
        *_check_kubernetes_version(settings.cluster),
        *_check_control_plane_count(settings),
        *_check_pools(settings),
        *_check_cidrs(settings),
        *_check_endpoint_and_gateway(settings),
        *_check_storage(settings),
        *_check_hub_address(settings),
        *_check_front_proxy(settings),
        *_check_ldap(settings),
        *_check_profiles(settings),
        *_check_project_files(settings),
    ]


_VERSION = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)")


def _check_kubernetes_version(cluster: ClusterSettings) -> list[SettingsProblem]:
    key = _key("cluster", "kubernetesVersion")
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


def _check_control_plane_count(settings: Settings) -> list[SettingsProblem]:
    key = _key("nodes", "controlPlane", "count")
    count = settings.nodes.control_plane.count
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
    if not settings.cluster.high_availability:
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


def _check_pools(settings: Settings) -> list[SettingsProblem]:
    problems: list[SettingsProblem] = []
    subnet = settings.network.subnet
    if settings.nodes.workers.count == 0:
        problems.append(
            SettingsProblem(
                key=_key("nodes", "workers", "count"),
                problem="the hub and user servers need at least one worker node.",
                fix="set it to 1 or more.",
            )
        )
    seen: dict[IPv4Address, str] = {}
    for role, pool_key in _POOL_KEYS.items():
        pool = _pool(settings.nodes, role)
        if pool.first_address is not None and pool.addresses is not None:
            problems.append(
                SettingsProblem(
                    key=_key("nodes", pool_key),
                    problem="sets both firstAddress and addresses.",
                    fix="keep one of them.",
                )
            )
            continue
        if pool.first_address is None and pool.addresses is None:
            problems.append(
                SettingsProblem(
                    key=_key("nodes", pool_key, "firstAddress"),
                    problem="the pool has no addresses.",
                    fix=f"set firstAddress (or an addresses list) inside {subnet}.",
                )
            )
            continue
        if pool.addresses is not None:
            if len(pool.addresses) < pool.count:
                problems.append(
                    SettingsProblem(
                        key=_key("nodes", pool_key, "addresses"),
                        problem=f"{len(pool.addresses)} addresses for {pool.count} nodes.",
                        fix=f"list {pool.count - len(pool.addresses)} more, or lower count.",
                    )
                )
            candidates = [(_key("nodes", pool_key, "addresses", i), a) for i, a in enumerate(pool.addresses)]
        else:
            assert pool.first_address is not None
            if pool.first_address not in subnet:
                problems.append(
                    SettingsProblem(
                        key=_key("nodes", pool_key, "firstAddress"),
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
                        key=_key("nodes", pool_key, "firstAddress"),
                        problem=f"only {available} addresses from {pool.first_address} to the end "
                        f"of {subnet} for {pool.count} nodes.",
                        fix="start lower, use a larger subnet, or list the addresses explicitly.",
                    )
                )
                continue
            candidates = [
                (_key("nodes", pool_key, "firstAddress") + (f" (+{i})" if i else ""), pool.first_address + i)
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
    gateway = settings.network.gateway
    vip = settings.cluster.control_plane_endpoint
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
                    key=_key("cluster", "controlPlaneEndpoint"),
                    problem=f"the virtual IP {vip} is also the address of a node ({owner}); "
                    "kube-vip would fight the node for it.",
                    fix="pick a free address in the node subnet for the VIP.",
                )
            )
    return problems


def _check_cidrs(settings: Settings) -> list[SettingsProblem]:
    networks = {
        _key("cluster", "podCidr"): settings.cluster.pod_cidr,
        _key("cluster", "serviceCidr"): settings.cluster.service_cidr,
        _key("network", "subnet"): settings.network.subnet,
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


def _check_endpoint_and_gateway(settings: Settings) -> list[SettingsProblem]:
    subnet = settings.network.subnet
    problems = []
    vip = settings.cluster.control_plane_endpoint
    hosts = (subnet.network_address, subnet.broadcast_address)
    if vip not in subnet or vip in hosts:
        problems.append(
            SettingsProblem(
                key=_key("cluster", "controlPlaneEndpoint"),
                problem=f"the virtual IP {vip} is outside the node subnet {subnet}; kube-vip "
                "announces it by ARP, so it must be on the nodes' layer-2 network.",
                fix=f"pick a free host address inside {subnet}.",
            )
        )
    elif vip == settings.network.gateway:
        problems.append(
            SettingsProblem(
                key=_key("cluster", "controlPlaneEndpoint"),
                problem=f"the virtual IP {vip} is the gateway.",
                fix="pick a free host address for the VIP.",
            )
        )
    gateway = settings.network.gateway
    if gateway not in subnet or gateway in hosts:
        problems.append(
            SettingsProblem(
                key=_key("network", "gateway"),
                problem=f"{gateway} is not a host address of {subnet}.",
                fix="set the subnet's router address.",
            )
        )
    return problems


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def project_file(relative: str) -> Path:
    """A file named in the stack settings (CA bundle, logo, login template), relative to the project."""
    return PROJECT_ROOT / relative


def _check_storage(settings: Settings) -> list[SettingsProblem]:
    storage = settings.storage
    problems = []
    subnet = settings.network.subnet
    for i, cidr in enumerate(storage.export_cidrs or []):
        key = _key("storage", "exportCidrs", i)
        if cidr.prefixlen == 0:
            problems.append(
                SettingsProblem(
                    key=key,
                    problem=f"{cidr} would export every user's home directory to the whole network.",
                    fix=f"list only the node subnet ({subnet}) or parts of it.",
                )
            )
        elif not cidr.subnet_of(subnet):
            problems.append(
                SettingsProblem(
                    key=key,
                    problem=f"{cidr} is not inside the node subnet {subnet}; only nodes mount the volumes.",
                    fix=f"use {subnet} or a part of it (or leave exportCidrs out).",
                )
            )
    if storage.snapshots and storage.homes_driver is NasDriver.ONTAP_NAS_ECONOMY:
        problems.append(
            SettingsProblem(
                key=_key("storage", "snapshots"),
                problem="ontap-nas-economy (dsaas:storage.homesDriver) keeps homes in qtrees, which have no "
                "CSI snapshots, so a VolumeSnapshotClass would only produce failing snapshots.",
                fix="set dsaas:storage.snapshots to false (ONTAP's snapshotPolicy still protects the "
                "FlexVols), or use homesDriver ontap-nas.",
            )
        )
    return problems


def _check_hub_address(settings: Settings) -> list[SettingsProblem]:
    key = _key("hub", "address")
    address = settings.hub.address
    subnet = settings.network.subnet
    if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
        return [
            SettingsProblem(
                key=key,
                problem=f"{address} is outside the node subnet {subnet}; kube-vip announces it by ARP.",
                fix=f"pick a free host address inside {subnet}.",
            )
        ]
    taken = {node.address: node.name for node in settings.all_nodes}
    taken[settings.cluster.control_plane_endpoint] = "the API server VIP (dsaas:controlPlaneEndpoint)"
    taken[settings.network.gateway] = "the gateway (dsaas:network.gateway)"
    if address in taken:
        return [
            SettingsProblem(
                key=key,
                problem=f"{address} is already used by {taken[address]}.",
                fix="pick an address no node, VIP or router uses.",
            )
        ]
    return []


def _check_front_proxy(settings: Settings) -> list[SettingsProblem]:
    """Offloaded TLS leaves the proxy serving plain HTTP (passwords in clear): only the front proxy may reach it."""
    hub = settings.hub
    key = _key("hub", "frontProxyCidrs")
    if hub.tls is not HubTlsMode.OFFLOAD:
        if hub.front_proxy_cidrs is None:
            return []
        return [
            SettingsProblem(
                key=key,
                problem="is used only with dsaas:hub.tls offload; with tls secret the hub serves HTTPS itself "
                "and this list would restrict nothing.",
                fix="remove it, or set dsaas:hub.tls to offload if a front proxy terminates TLS.",
            )
        ]
    if not hub.front_proxy_cidrs:
        return [
            SettingsProblem(
                key=key,
                problem=f"with dsaas:hub.tls offload the hub serves plain HTTP on {hub.address}, so every "
                "password crosses the network in clear; without the front proxy's addresses anyone could "
                "connect there directly.",
                fix="list the addresses of the proxy that terminates TLS, e.g. frontProxyCidrs: [10.0.0.80/32], "
                "or set dsaas:hub.tls to secret.",
            )
        ]
    return [
        SettingsProblem(
            key=_key("hub", "frontProxyCidrs", i),
            problem=f"{cidr} would admit the whole network to the hub's plain HTTP.",
            fix="list only the front proxy's own addresses.",
        )
        for i, cidr in enumerate(hub.front_proxy_cidrs)
        if cidr.prefixlen == 0
    ]


_LOGIN_DOMAIN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def _check_ldap(settings: Settings) -> list[SettingsProblem]:
    ldap = settings.hub.ldap
    problems = []
    if not ldap.lookup_dn and not ldap.bind_dn_templates:
        problems.append(
            SettingsProblem(
                key=_key("hub", "ldap", "bindDnTemplates"),
                problem="the hub cannot turn a login name into a DN: no bindDnTemplates and lookupDn is false.",
                fix="add a template like uid={username},ou=people,dc=example,dc=org, or set lookupDn: true "
                "with searchUser and userSearchBase (Active Directory).",
            )
        )
    for i, template in enumerate(ldap.bind_dn_templates):
        if "{username}" not in template:
            problems.append(
                SettingsProblem(
                    key=_key("hub", "ldap", "bindDnTemplates", i),
                    problem=f"'{template}' has no {{username}} placeholder, so every user would bind as one DN.",
                    fix="put {username} where the login name goes.",
                )
            )
    if ldap.lookup_dn and ldap.bind_dn_templates:
        problems.append(
            SettingsProblem(
                key=_key("hub", "ldap", "lookupDn"),
                problem="both lookupDn and bindDnTemplates are set, so it is unclear which finds the user's DN.",
                fix="keep one: bindDnTemplates where the login name is in the DN, lookupDn (with searchUser and "
                "userSearchBase) where it is not, as in Active Directory.",
            )
        )
    for i, domain in enumerate(ldap.domains):
        if not _LOGIN_DOMAIN.fullmatch(domain):
            problems.append(
                SettingsProblem(
                    key=_key("hub", "ldap", "domains", i),
                    problem=f"{domain!r} is not a NetBIOS or DNS domain name.",
                    fix="list names like EXAMPLE or example.org, as users type them before a backslash or after an @.",
                )
            )
    if ldap.lookup_dn:
        for field, value in (("searchUser", ldap.search_user), ("userSearchBase", ldap.user_search_base)):
            if not value:
                problems.append(
                    SettingsProblem(
                        key=_key("hub", "ldap", field),
                        problem="lookupDn is true but this is not set.",
                        fix=f"set dsaas:hub.ldap.{field} (a DN), or use bindDnTemplates instead of lookupDn.",
                    )
                )
    if ldap.ca_file and ldap.tls_strategy is LdapTlsStrategy.INSECURE:
        problems.append(
            SettingsProblem(
                key=_key("hub", "ldap", "caFile"),
                problem="a CA bundle is set but tlsStrategy is insecure, so it would never be used.",
                fix="set dsaas:hub.ldap.tlsStrategy to before_bind or on_connect.",
            )
        )
    return problems


def _check_profiles(settings: Settings) -> list[SettingsProblem]:
    problems = []
    builtin = len(settings.hub.all_profiles) - len(settings.hub.profiles)
    seen_slugs: dict[str, str] = {}
    seen_names: dict[str, str] = {}
    for i, profile in enumerate(settings.hub.all_profiles):
        key = _key("hub", "profiles", i - builtin) if i >= builtin else f"built-in profile '{profile.slug}'"
        if profile.slug in seen_slugs:
            problems.append(
                SettingsProblem(
                    key=f"{key}.slug",
                    problem=f"slug '{profile.slug}' is already used by {seen_slugs[profile.slug]}.",
                    fix="give every profile its own slug (basic and datascience are built in).",
                )
            )
        seen_slugs.setdefault(profile.slug, key)
        if profile.display_name in seen_names:
            problems.append(
                SettingsProblem(
                    key=f"{key}.displayName",
                    problem=f"'{profile.display_name}' is already shown for {seen_names[profile.display_name]}.",
                    fix="give every profile its own name.",
                )
            )
        seen_names.setdefault(profile.display_name, key)
        image_problem = pins.image_problem(profile.image, pins.NOTEBOOK)
        if image_problem:
            problems.append(
                SettingsProblem(
                    key=f"{key}.image",
                    problem=f"{profile.image!r} {image_problem}, so what users get would drift.",
                    fix=f"pin {pins.EXAMPLES[pins.NOTEBOOK]}.",
                )
            )
        if profile.cpu_guarantee > profile.cpu_limit:
            problems.append(
                SettingsProblem(
                    key=f"{key}.cpuGuarantee",
                    problem=f"{profile.cpu_guarantee} CPUs guaranteed but only {profile.cpu_limit} allowed.",
                    fix="keep cpuGuarantee at or below cpuLimit.",
                )
            )
        if profile.memory_guarantee_gib > profile.memory_limit_gib:
            problems.append(
                SettingsProblem(
                    key=f"{key}.memoryGuaranteeGib",
                    problem=f"{profile.memory_guarantee_gib} GiB guaranteed but only "
                    f"{profile.memory_limit_gib} GiB allowed.",
                    fix="keep memoryGuaranteeGib at or below memoryLimitGib.",
                )
            )
    if sum(profile.default for profile in settings.hub.profiles) > 0:
        problems.append(
            SettingsProblem(
                key=_key("hub", "profiles"),
                problem="an added profile is marked default, but Basic is the default.",
                fix="remove `default: true` from the added profile.",
            )
        )
    return problems


def _check_project_files(settings: Settings) -> list[SettingsProblem]:
    files = {
        _key("hub", "ldap", "caFile"): settings.hub.ldap.ca_file,
        _key("hub", "branding", "logoFile"): settings.hub.branding.logo_file,
        _key("hub", "branding", "loginTemplateFile"): settings.hub.branding.login_template_file,
    }
    problems = []
    for key, relative in files.items():
        if relative is None:
            continue
        path = project_file(relative)
        try:
            exists = path.is_file()
        except (OSError, ValueError) as error:  # e.g. a name longer than the file system allows
            problems.append(
                SettingsProblem(
                    key=key,
                    problem=f"{relative!r} cannot be read: {getattr(error, 'strerror', None) or error}.",
                    fix="name a file inside the project, relative to its root (e.g. config/branding/logo.svg).",
                )
            )
            continue
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            problems.append(
                SettingsProblem(
                    key=key,
                    problem=f"{relative!r} must be a path inside the project, so every operator deploys the same file.",
                    fix="commit the file (e.g. under config/branding/) and name it relative to the project root.",
                )
            )
        elif not exists:
            problems.append(
                SettingsProblem(
                    key=key,
                    problem=f"{path} does not exist.",
                    fix="commit the file or correct the path (relative to the project root).",
                )
            )
    return problems


def describe_address_plan(settings: Settings) -> dict[str, str]:
    """Node name → address, for stack outputs and the preview."""
    return {node.name: str(node.address) for node in settings.all_nodes}


__all__ = [
    "ClusterSettings",
    "NetworkSettings",
    "NodePool",
    "NodeSpec",
    "NodesSettings",
    "Role",
    "Settings",
    "SettingsError",
    "SettingsProblem",
    "SshSettings",
    "VSphereSettings",
    "describe_address_plan",
    "parse_settings",
]
