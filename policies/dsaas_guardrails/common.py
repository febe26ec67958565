"""Shared, pure helpers for the rules: resource lookup, config with defaults, rendered-script parsing.

Resources arrive as the engine sees them during `pulumi preview`: camelCase properties, and values
that depend on resources not yet created are *unknown* (reading one raises `UnknownValueError`).
The rules therefore link resources by URN and dependencies and read only values that come from the
stack settings; `known()` turns an unknown value into `None`.
"""

from __future__ import annotations

import base64
import gzip
import re
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import yaml
from pulumi_policy import PolicyConfigSchema, PolicyResource, ReportViolation, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

VM = "vsphere:index/virtualMachine:VirtualMachine"
ANTI_AFFINITY = "vsphere:index/computeClusterVmAntiAffinityRule:ComputeClusterVmAntiAffinityRule"
COMMAND = "command:remote:Command"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
BACKEND = "kubernetes:trident.netapp.io/v1:TridentBackendConfig"
K8S_SECRET = "kubernetes:core/v1:Secret"
HUB_CHART = "jupyterhub"
CONTROL_PLANE_VM = re.compile(r"-cp-\d+$")
STEP_MARKER = "# dsaas step: "
HEADER_END = "# --- end of dsaas parameters ---"

StackValidator = Callable[[StackValidationArgs, ReportViolation], None]
T = TypeVar("T")


def known(read: Callable[[], T]) -> T | None:
    """The value `read` returns, or None when it is missing or unknown during preview."""
    try:
        return read()
    except (UnknownValueError, KeyError, IndexError, TypeError):
        return None


def path(props: Any, *keys: str | int) -> Any:
    """props[k1][k2]…, or None when any step is missing or unknown."""

    def read() -> Any:
        value = props
        for key in keys:
            value = value[key]
        return value

    return known(read)


def of_type(args: StackValidationArgs, type_: str) -> list[PolicyResource]:
    return [r for r in args.resources if r.resource_type == type_]


def label(resource: PolicyResource) -> str:
    """How messages name a resource: logical name and short type, as `pulumi preview` shows them."""
    return f"{resource.name} ({resource.resource_type.rsplit(':', 1)[-1]})"


def schema(properties: dict[str, dict[str, Any]]) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties=properties)


def config(args: StackValidationArgs, config_schema: PolicyConfigSchema, key: str) -> Any:
    """A policy setting from the pack's config, else the default its schema declares."""
    value = args.get_config().get(key)
    return config_schema.properties[key].get("default") if value is None else value


# --- vSphere ---------------------------------------------------------------------------------------


def control_plane_vms(args: StackValidationArgs) -> list[PolicyResource]:
    """Control-plane VMs: the program names them `<cluster>-cp-<n>`."""
    return [vm for vm in of_type(args, VM) if CONTROL_PLANE_VM.search(str(path(vm.props, "name") or ""))]


def vm_address(vm: PolicyResource) -> str | None:
    """The static address in the VM's cloud-init metadata (netplan), when known."""
    encoded = path(vm.props, "extraConfig", "guestinfo.metadata")
    if not isinstance(encoded, str):
        return None
    metadata = yaml.safe_load(gzip.decompress(base64.b64decode(encoded)).decode())
    for interface in (metadata.get("network", {}).get("ethernets") or {}).values():
        for address in interface.get("addresses") or []:
            return str(address).split("/", 1)[0]
    return None


# --- node scripts ------------------------------------------------------------------------------


def step_of(command: PolicyResource) -> str | None:
    """Which template a remote command runs (`# dsaas step: <name>` in its script)."""
    script = path(command.props, "stdin")
    if not isinstance(script, str):
        return None
    for line in script.splitlines()[:3]:
        if line.startswith(STEP_MARKER):
            return line.removeprefix(STEP_MARKER)
    return None


def script_parameters(command: PolicyResource) -> dict[str, str]:
    """The `export NAME=value` header of a rendered script ({} when the script is unknown)."""
    script = path(command.props, "stdin")
    return header_parameters(script) if isinstance(script, str) else {}


def header_parameters(script: str) -> dict[str, str]:
    """The parameters of a rendered script's header ({} when `script` is not a rendered script)."""
    if HEADER_END not in script:
        return {}
    header = script.split(HEADER_END, 1)[0]
    parameters: dict[str, str] = {}
    for word in shlex.split(header, comments=True):
        if word != "export" and "=" in word:
            key, _, value = word.partition("=")
            parameters[key] = value
    return parameters


def steps(args: StackValidationArgs, step: str) -> list[PolicyResource]:
    return [c for c in of_type(args, COMMAND) if step_of(c) == step]


def decoded_documents(parameters: Mapping[str, str], key: str) -> list[dict[str, Any]]:
    """The YAML documents carried base64-encoded in a script parameter."""
    if key not in parameters:
        return []
    text = base64.b64decode(parameters[key]).decode()
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def host_of(endpoint: str) -> str:
    """`10.0.0.1:6443` → `10.0.0.1`."""
    return endpoint.rsplit(":", 1)[0] if endpoint.count(":") == 1 else endpoint


# --- Kubernetes --------------------------------------------------------------------------------


def releases(args: StackValidationArgs) -> list[PolicyResource]:
    return of_type(args, HELM_RELEASE)


def hub_release(args: StackValidationArgs) -> PolicyResource | None:
    return next((r for r in releases(args) if path(r.props, "chart") == HUB_CHART), None)


def storage_class(args: StackValidationArgs, name: str) -> PolicyResource | None:
    return next((c for c in of_type(args, STORAGE_CLASS) if path(c.props, "metadata", "name") == name), None)


def default_storage_class(args: StackValidationArgs) -> PolicyResource | None:
    annotation = "storageclass.kubernetes.io/is-default-class"
    return next(
        (c for c in of_type(args, STORAGE_CLASS) if path(c.props, "metadata", "annotations", annotation) == "true"),
        None,
    )


def walk(value: Any, trail: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every leaf under `value` with its key path (unknown leaves are skipped)."""
    if isinstance(value, Mapping):
        for key in value:
            yield from walk(path(value, key), (*trail, str(key)))
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for index in range(len(value)):
            yield from walk(path(value, index), (*trail, str(index)))
    elif value is not None:
        yield trail, value
