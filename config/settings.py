"""Typed, validated stack settings: the `Settings` of every layer, and the one entry point that reads them.

`parse_settings` is pure: it takes the stack's `dsaas:*` values (already decoded from the stack file)
and returns frozen pydantic models or raises `SettingsError` listing every problem at once, each
naming the stack key and the fix. Pulumi secrets are read separately by `config.loader`.

Each layer's models and its own checks are in its module: `config.nodes` (VMs, node network, pools),
`config.cluster` (Kubernetes on them). Here: the checks only the whole `Settings` can make.
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from collections.abc import Mapping
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from config import pins
from config.cluster import (
    ClusterSettings,
    check_cidrs,
    check_control_plane_count,
    check_endpoint_and_gateway,
    check_kubernetes_version,
    quorum_counts,
)
from config.model import CLUSTER_SECTION, NAMESPACE, PROJECT_ROOT, SettingsProblem, project_file, stack_key
from config.nodes import (
    MAX_CONTROL_PLANES,
    MAX_POOL_NODES,
    ControlPlanePool,
    NetworkSettings,
    NodePool,
    NodeSpec,
    NodesSettings,
    Role,
    SshSettings,
    VSphereSettings,
    check_pools,
    pool_nodes,
)
from config.services import HubSettings, HubTlsMode, LdapSettings, LdapTlsStrategy, NasDriver, StorageSettings

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
        return pool_nodes(self.cluster.cluster_name, self.nodes, Role.CONTROL_PLANE)

    @property
    def workers(self) -> list[NodeSpec]:
        return pool_nodes(self.cluster.cluster_name, self.nodes, Role.WORKER)

    @property
    def all_nodes(self) -> list[NodeSpec]:
        return self.control_planes + self.workers

    @property
    def api_endpoint(self) -> str:
        return f"{self.cluster.control_plane_endpoint}:{self.cluster.api_server_port}"


_SECTIONS: dict[str, type[BaseModel]] = {
    "vsphere": VSphereSettings,
    "nodes": NodesSettings,
    "network": NetworkSettings,
    "ssh": SshSettings,
    "storage": StorageSettings,
    "hub": HubSettings,
}
_OPTIONAL_SECTIONS = {"ssh"}


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
        key = stack_key(section, *item["loc"])
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
    cluster_keys = [
        stack_key(CLUSTER_SECTION, field.alias or name) for name, field in ClusterSettings.model_fields.items()
    ]
    known = [*(stack_key(s) for s in _SECTIONS), *cluster_keys]
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
        value = raw.get(stack_key(section))
        if value is None:
            if section in _OPTIONAL_SECTIONS:
                value = {}
            else:
                problems.append(
                    SettingsProblem(
                        key=stack_key(section),
                        problem="is missing.",
                        fix=f"add a `{stack_key(section)}` object to the stack file.",
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
    cluster, nodes, network = settings.cluster, settings.nodes, settings.network
    return [
        *check_kubernetes_version(cluster),
        *check_control_plane_count(cluster, nodes.control_plane),
        *check_pools(nodes, network, vip=cluster.control_plane_endpoint),
        *check_cidrs(cluster, network),
        *check_endpoint_and_gateway(cluster, network),
        *_check_export_cidrs(settings),
        *check_storage(settings.storage),
        *_check_hub_address(settings),
        *check_hub(settings.hub),
    ]


def _check_export_cidrs(settings: Settings) -> list[SettingsProblem]:
    """Only nodes mount the volumes, so ONTAP exports to nothing outside the node subnet."""
    problems = []
    subnet = settings.network.subnet
    for i, cidr in enumerate(settings.storage.export_cidrs or []):
        key = stack_key("storage", "exportCidrs", i)
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
    return problems


def _check_hub_address(settings: Settings) -> list[SettingsProblem]:
    """kube-vip announces the hub's address in the node subnet, where nothing else may hold it."""
    key = stack_key("hub", "address")
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


def describe_address_plan(settings: Settings) -> dict[str, str]:
    """Node name → address, for stack outputs and the preview."""
    return {node.name: str(node.address) for node in settings.all_nodes}


def check_storage(storage: StorageSettings) -> list[SettingsProblem]:
    if storage.snapshots and storage.homes_driver is NasDriver.ONTAP_NAS_ECONOMY:
        return [
            SettingsProblem(
                key=stack_key("storage", "snapshots"),
                problem="ontap-nas-economy (dsaas:storage.homesDriver) keeps homes in qtrees, which have no "
                "CSI snapshots, so a VolumeSnapshotClass would only produce failing snapshots.",
                fix="set dsaas:storage.snapshots to false (ONTAP's snapshotPolicy still protects the "
                "FlexVols), or use homesDriver ontap-nas.",
            )
        ]
    return []


_LOGIN_DOMAIN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def check_ldap(ldap: LdapSettings) -> list[SettingsProblem]:
    """Every login name can become a DN one way, and a CA bundle is not set for nothing."""
    problems = []
    if not ldap.lookup_dn and not ldap.bind_dn_templates:
        problems.append(
            SettingsProblem(
                key=stack_key("hub", "ldap", "bindDnTemplates"),
                problem="the hub cannot turn a login name into a DN: no bindDnTemplates and lookupDn is false.",
                fix="add a template like uid={username},ou=people,dc=example,dc=org, or set lookupDn: true "
                "with searchUser and userSearchBase (Active Directory).",
            )
        )
    for i, template in enumerate(ldap.bind_dn_templates):
        if "{username}" not in template:
            problems.append(
                SettingsProblem(
                    key=stack_key("hub", "ldap", "bindDnTemplates", i),
                    problem=f"'{template}' has no {{username}} placeholder, so every user would bind as one DN.",
                    fix="put {username} where the login name goes.",
                )
            )
    if ldap.lookup_dn and ldap.bind_dn_templates:
        problems.append(
            SettingsProblem(
                key=stack_key("hub", "ldap", "lookupDn"),
                problem="both lookupDn and bindDnTemplates are set, so it is unclear which finds the user's DN.",
                fix="keep one: bindDnTemplates where the login name is in the DN, lookupDn (with searchUser and "
                "userSearchBase) where it is not, as in Active Directory.",
            )
        )
    for i, domain in enumerate(ldap.domains):
        if not _LOGIN_DOMAIN.fullmatch(domain):
            problems.append(
                SettingsProblem(
                    key=stack_key("hub", "ldap", "domains", i),
                    problem=f"{domain!r} is not a NetBIOS or DNS domain name.",
                    fix="list names like EXAMPLE or example.org, as users type them before a backslash or after an @.",
                )
            )
    if ldap.lookup_dn:
        for field, value in (("searchUser", ldap.search_user), ("userSearchBase", ldap.user_search_base)):
            if not value:
                problems.append(
                    SettingsProblem(
                        key=stack_key("hub", "ldap", field),
                        problem="lookupDn is true but this is not set.",
                        fix=f"set dsaas:hub.ldap.{field} (a DN), or use bindDnTemplates instead of lookupDn.",
                    )
                )
    if ldap.ca_file and ldap.tls_strategy is LdapTlsStrategy.INSECURE:
        problems.append(
            SettingsProblem(
                key=stack_key("hub", "ldap", "caFile"),
                problem="a CA bundle is set but tlsStrategy is insecure, so it would never be used.",
                fix="set dsaas:hub.ldap.tlsStrategy to before_bind or on_connect.",
            )
        )
    return problems


def check_hub(hub: HubSettings) -> list[SettingsProblem]:
    """The hub's own rules; its login's are `check_ldap`."""
    return [*_check_front_proxy(hub), *check_ldap(hub.ldap), *_check_profiles(hub), *_check_project_files(hub)]


def _check_front_proxy(hub: HubSettings) -> list[SettingsProblem]:
    """Offloaded TLS leaves the proxy serving plain HTTP (passwords in clear): only the front proxy may reach it."""
    key = stack_key("hub", "frontProxyCidrs")
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
            key=stack_key("hub", "frontProxyCidrs", i),
            problem=f"{cidr} would admit the whole network to the hub's plain HTTP.",
            fix="list only the front proxy's own addresses.",
        )
        for i, cidr in enumerate(hub.front_proxy_cidrs)
        if cidr.prefixlen == 0
    ]


def _check_profiles(hub: HubSettings) -> list[SettingsProblem]:
    problems = []
    builtin = len(hub.all_profiles) - len(hub.profiles)
    seen_slugs: dict[str, str] = {}
    seen_names: dict[str, str] = {}
    for i, profile in enumerate(hub.all_profiles):
        key = stack_key("hub", "profiles", i - builtin) if i >= builtin else f"built-in profile '{profile.slug}'"
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
    if sum(profile.default for profile in hub.profiles) > 0:
        problems.append(
            SettingsProblem(
                key=stack_key("hub", "profiles"),
                problem="an added profile is marked default, but Basic is the default.",
                fix="remove `default: true` from the added profile.",
            )
        )
    return problems


def _check_project_files(hub: HubSettings) -> list[SettingsProblem]:
    files = {
        stack_key("hub", "ldap", "caFile"): hub.ldap.ca_file,
        stack_key("hub", "branding", "logoFile"): hub.branding.logo_file,
        stack_key("hub", "branding", "loginTemplateFile"): hub.branding.login_template_file,
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


__all__ = [
    "CLUSTER_SECTION",
    "CONSISTENCY_RULES",
    "MAX_CONTROL_PLANES",
    "MAX_POOL_NODES",
    "MAX_PROBLEMS_SHOWN",
    "NAMESPACE",
    "PROJECT_ROOT",
    "SECRET_KEYS",
    "ClusterSettings",
    "ControlPlanePool",
    "HubSettings",
    "NetworkSettings",
    "NodePool",
    "NodeSpec",
    "NodesSettings",
    "Role",
    "Settings",
    "SettingsError",
    "SettingsProblem",
    "SshSettings",
    "StorageSettings",
    "VSphereSettings",
    "check_consistency",
    "describe_address_plan",
    "parse_settings",
    "project_file",
    "quorum_counts",
]
