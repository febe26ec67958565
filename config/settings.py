"""Typed, validated stack settings: the `Settings` of every layer, and the one entry point that reads them.

`parse_settings` is pure: it takes the stack's `dsaas:*` values (already decoded from the stack file)
and returns frozen pydantic models or raises `SettingsError` listing every problem at once, each
naming the stack key and the fix. Pulumi secrets are read separately by `config.loader`.

Each layer's models and its own checks are in its module: `config.nodes` (VMs, node network, pools),
`config.cluster` (Kubernetes on them), `config.storage` (Trident on ONTAP), `config.hub` (JupyterHub,
with its login in `config.ldap`), `config.backup` (backups and restores). Here: the checks only the whole
`Settings` can make.
"""

from __future__ import annotations

import difflib
import json
import typing
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from config.backup import BackupSettings, RestoreSettings, backups_enabled, check_backup, check_restore
from config.cluster import (
    ClusterSettings,
    check_cidrs,
    check_control_plane_count,
    check_endpoint_and_gateway,
    check_kubernetes_version,
    quorum_counts,
)
from config.hub import HubDatabaseBackup, HubSettings, check_hub
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
from config.storage import StorageSettings, check_storage

# Secrets live in the same namespace but are read by `config.loader` as Pulumi secrets, never here.
SECRET_KEYS: frozenset[str] = frozenset(
    {
        "dsaas:ontapUsername",
        "dsaas:ontapPassword",
        "dsaas:ldapSearchPassword",
        "dsaas:hubTlsCertificate",
        "dsaas:hubTlsKey",
        "dsaas:hubDatabaseUrl",
        "dsaas:s3AccessKeyId",
        "dsaas:s3SecretAccessKey",
        "dsaas:s3InventoryAccessKeyId",
        "dsaas:s3InventorySecretAccessKey",
        "dsaas:s3HubDatabaseAccessKeyId",
        "dsaas:s3HubDatabaseSecretAccessKey",
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
    backup: BackupSettings
    restore: RestoreSettings

    @property
    def backups_enabled(self) -> bool:
        return backups_enabled(self.backup, self.cluster.high_availability)

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
    "backup": BackupSettings,
    "restore": RestoreSettings,
}
_OPTIONAL_SECTIONS = {"ssh", "backup", "restore"}


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
            fix = f"add `{key}` to the stack file (docs/settings.md lists every key)."
        elif kind == "extra_forbidden":
            model = _model_at(section_model, item["loc"][:-1])
            known = [field.alias or name for name, field in model.model_fields.items()] if model else []
            fix = _spelling_fix(str(item["loc"][-1]), known)
        else:
            fix = "set a value of the expected form."
        message = str(item["msg"])
        if kind == "value_error":
            # our validators' own words: pydantic's "Value error, " prefix says nothing to an operator, and a
            # validator that knows the fix gives it after ". Fix: "
            message = message.removeprefix("Value error, ")
            message, _, own_fix = message.partition(". Fix: ")
            fix = f"{own_fix.rstrip('.')}." if own_fix else fix
        problems.append(SettingsProblem(key=key, problem=f"{message.rstrip('.')}.", fix=fix))
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
        ("dsaas:vsphere.template", "dsaas:vsphere.templateImage"),
        "exactly one of them; templateImage.address a free host address of the node subnet (not a node, the "
        "VIP, the hub or the gateway).",
    ),
    (
        ("dsaas:hub.frontProxyCidrs", "dsaas:hub.tls"),
        "required with tls offload (the hub then serves plain HTTP), never 0.0.0.0/0, together at most 256 "
        "addresses (a /24, overlaps merged); only with offload.",
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
        (
            "dsaas:hub.ldap.caFile",
            "dsaas:hub.branding.logoFile",
            "dsaas:hub.branding.loginTemplateFile",
            "dsaas:storage.ontap.caFile",
        ),
        "an existing file inside the project, named relative to its root (CA files: PEM certificates).",
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
        *_check_template(settings),
        *check_hub(settings.hub),
        *_check_hub_database_dump(settings),
        *check_backup(settings.backup, settings.cluster.high_availability),
        *check_restore(settings.restore),
    ]


def _check_hub_database_dump(settings: Settings) -> list[SettingsProblem]:
    """pg_dump writes into the backup bucket: without backups it would back up nothing, silently."""
    if settings.hub.database.backup is not HubDatabaseBackup.PG_DUMP or settings.backups_enabled:
        return []
    return [
        SettingsProblem(
            key=stack_key("hub", "database", "backup"),
            problem="is pg_dump, but this stack makes no backups (dsaas:backup.enabled is false, or the stack is "
            "not highly available and does not turn them on), so the dump would have nowhere to go.",
            fix="turn backups on (dsaas:backup.enabled: true with an objectStore), or set backup to external and "
            "describe the database's own backup in dsaas:hub.database.externalBackup.",
        )
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


def _check_free_address(
    settings: Settings, key: str, address: IPv4Address, outside: str, extra_taken: Mapping[IPv4Address, str]
) -> list[SettingsProblem]:
    """`address` is a host address of the node subnet that no node, VIP, router (or `extra_taken`) holds;
    `outside` says why it must be in the subnet."""
    subnet = settings.network.subnet
    if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
        return [
            SettingsProblem(
                key=key,
                problem=f"{address} is outside the node subnet {subnet}{outside}.",
                fix=f"pick a free host address inside {subnet}.",
            )
        ]
    taken = {node.address: node.name for node in settings.all_nodes}
    taken[settings.cluster.control_plane_endpoint] = "the API server VIP (dsaas:controlPlaneEndpoint)"
    taken[settings.network.gateway] = "the gateway (dsaas:network.gateway)"
    taken.update(extra_taken)
    if address in taken:
        holders = "node, VIP, hub or router" if extra_taken else "node, VIP or router"
        return [
            SettingsProblem(
                key=key,
                problem=f"{address} is already used by {taken[address]}.",
                fix=f"pick an address no {holders} uses.",
            )
        ]
    return []


def _check_hub_address(settings: Settings) -> list[SettingsProblem]:
    """kube-vip announces the hub's address in the node subnet, where nothing else may hold it."""
    return _check_free_address(
        settings, stack_key("hub", "address"), settings.hub.address, "; kube-vip announces it by ARP", {}
    )


def _check_template(settings: Settings) -> list[SettingsProblem]:
    """One template source; the address a program-built template is prepared at must be free for as long as
    the stack lives, since a new image or Kubernetes version prepares a new template while the nodes run."""
    placement = settings.vsphere
    if (placement.template is None) == (placement.template_image is None):
        return [
            SettingsProblem(
                key=stack_key("vsphere", "template"),
                problem="sets both template and templateImage."
                if placement.template
                else "names no template to clone the nodes from.",
                fix="keep one: template (a template VM you built) or templateImage (the program builds it from "
                "an Ubuntu cloud image; docs/site.md).",
            )
        ]
    if placement.template_image is None:
        return []
    problems = []
    hosts = placement.template_image.hosts
    repeated = sorted({host for host in hosts if hosts.count(host) > 1})
    if repeated:
        problems.append(
            SettingsProblem(
                key=stack_key("vsphere", "templateImage", "hosts"),
                problem=f"names {', '.join(repeated)} more than once; one copy per host is all a host can use.",
                fix="list each ESXi host once.",
            )
        )
    return problems + _check_template_address(settings)


def _check_template_address(settings: Settings) -> list[SettingsProblem]:
    assert settings.vsphere.template_image is not None
    return _check_free_address(
        settings,
        stack_key("vsphere", "templateImage", "address"),
        settings.vsphere.template_image.address,
        ", where the template VM is attached",
        {settings.hub.address: "the hub (dsaas:hub.address)"},
    )


def describe_address_plan(settings: Settings) -> dict[str, str]:
    """Node name → address, for stack outputs and the preview."""
    return {node.name: str(node.address) for node in settings.all_nodes}


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
