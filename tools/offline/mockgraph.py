"""Run the real `__main__.py` for a stack file under Pulumi mocks and record the resource graph.

No vCenter, no Pulumi CLI, no credentials: the stack file's plain values are loaded as Pulumi would
load them, `secure:` values become placeholders (never decrypted), Pulumi.yaml defaults apply as
the CLI applies them, and a recording monitor keeps every registration (type, name, parent,
dependencies, inputs with their secretness). Shared by `tools.preview`, the tests and the benchmark.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import runpy
import string
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime.config as runtime_config
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parents[2]
TRIDENT_NAMESPACE = "trident"
PROJECT = "dsaas"
SECRET_MARK = "[secret]"


@dataclass
class RecordedResource:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    provider: str
    dependencies: list[str]
    inputs: dict[str, Any]
    """Inputs as the engine receives them; secret values stay wrapped in Pulumi's secret marker."""
    outputs: dict[str, Any] = field(default_factory=dict)
    delete_before_replace: bool = False
    additional_secret_outputs: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    """Which resources each input property depends on (as the engine passes them to policies)."""
    id: str = ""
    """The provider's ID for a custom resource: stored in clear in the state, never a secret."""
    retain_on_delete: bool = False
    """Deleting it from the stack leaves the object in place (user data)."""
    ignore_changes: list[str] = field(default_factory=list)
    """Input paths whose later changes the engine ignores (the resource keeps its old value)."""
    replace_on_changes: list[str] = field(default_factory=list)
    """Input paths whose change replaces the resource, whatever the provider says."""
    aliases: list[str] = field(default_factory=list)
    """Earlier URNs of this resource (its `aliases` option, resolved as the engine resolves them)."""


def is_secret(value: Any) -> bool:
    return bool(rpc.is_rpc_secret(value))


def unwrap(value: Any) -> Any:
    """The plain value, secret markers removed (for tests that inspect rendered content)."""
    if is_secret(value):
        return unwrap(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def redact(value: Any) -> Any:
    """The value with every secret replaced by `[secret]`."""
    if is_secret(value):
        return SECRET_MARK
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def plain_strings(value: Any) -> Iterator[str]:
    """Every string reachable without crossing a secret marker."""
    if is_secret(value):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from plain_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from plain_strings(item)


_NOT_OBJECTS = ("kubernetes:helm.sh/", "kubernetes:yaml/", "pulumi:providers:")


def whole_numbers(value: Any) -> Any:
    """Protobuf carries every number as a double; Kubernetes wants integers where they are whole."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


def kubernetes_objects(resource: RecordedResource) -> list[dict[str, Any]]:
    """The Kubernetes objects a recorded resource applies (plain values; secrets unwrapped)."""
    if resource.type == "kubernetes:yaml/v2:ConfigGroup":
        return [dict(whole_numbers(obj)) for obj in unwrap(resource.inputs.get("objs") or [])]
    if not resource.type.startswith("kubernetes:") or resource.type.startswith(_NOT_OBJECTS):
        return []
    document = whole_numbers(unwrap(resource.inputs))
    ordered = {key: document[key] for key in ("apiVersion", "kind", "metadata") if key in document}
    ordered.update({key: value for key, value in document.items() if key not in ordered})
    return [ordered]


@dataclass
class Graph:
    stack: str
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    secret_values: set[str]
    """Every secret the mocks produced or the stack file held (placeholders), for leak checks."""

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def node_vms(self) -> list[RecordedResource]:
        """The Kubernetes nodes' VMs: those `ClusterNodes` makes itself (a program-built template VM is not one)."""
        components = {r.urn for r in self.resources if r.type == "dsaas:vsphere:ClusterNodes"}
        return [r for r in self.of_type("vsphere:index/virtualMachine:VirtualMachine") if r.parent in components]

    def by_name(self, name: str) -> RecordedResource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def by_urn(self, urn: str) -> RecordedResource:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise KeyError(urn)

    def ancestors(self, resource: RecordedResource) -> set[str]:
        """URNs this resource depends on, directly or transitively (not through parents)."""
        index = {r.urn: r for r in self.resources}
        seen: set[str] = set()
        stack = list(resource.dependencies)
        while stack:
            urn = stack.pop()
            if urn in seen:
                continue
            seen.add(urn)
            if urn in index:
                stack.extend(index[urn].dependencies)
        return seen

    def depths(self) -> dict[str, int]:
        """Each resource's place in the longest dependency chain that ends at it (1 = nothing before it)."""
        index = {r.urn: r for r in self.resources}
        memo: dict[str, int] = {}

        def depth_of(urn: str) -> int:
            if urn not in memo:
                resource = index.get(urn)
                deps = [d for d in (resource.dependencies if resource else []) if d in index]
                memo[urn] = 1 + max((depth_of(d) for d in deps), default=0)
            return memo[urn]

        for resource in self.resources:
            depth_of(resource.urn)
        return memo

    def depth(self) -> int:
        """Length of the longest dependency chain: how many steps must run one after another."""
        depths = self.depths()
        return max((depths[r.urn] for r in self.resources if r.custom), default=0)

    def in_dependency_order(self, resources: list[RecordedResource]) -> list[RecordedResource]:
        """Resources ordered by how deep in the dependency chain their work is done, then by name.

        The engine registers resources concurrently, so recording order changes from run to run;
        what reviewers see (tree, picture) must not. A component is done with its last resource,
        which puts nodes before kubernetes before storage before the hub.
        """
        depths = self.depths()
        children: dict[str, list[RecordedResource]] = {}
        for resource in self.resources:
            children.setdefault(resource.parent, []).append(resource)

        def done(resource: RecordedResource) -> int:
            own = [depths[resource.urn]] if resource.custom else []
            return max(own + [done(child) for child in children.get(resource.urn, [])], default=depths[resource.urn])

        return sorted(resources, key=lambda r: (done(r), r.type, r.name))


# --- mocks -------------------------------------------------------------------------------------


def _digest(*parts: str, length: int = 64) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _alnum(seed: str, length: int) -> str:
    alphabet = string.ascii_lowercase + string.digits
    digest = hashlib.sha256(seed.encode()).digest() * 4
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


# A real client certificate shaped as kubeadm makes admin.conf's (CN kubernetes-admin, O kubeadm:cluster-admins,
# one year from 2026-12-01), so the program's reading of its end date runs on what a node would print.
MOCK_ADMIN_CLIENT_CERTIFICATE = Path(__file__).with_name("mock-admin-client.crt")
_MOCK_KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: {cluster}
  cluster:
    server: https://{endpoint}
    certificate-authority-data: bW9jay1jYQ==
users:
- name: kubernetes-admin
  user:
    client-certificate-data: {certificate}
    client-key-data: {key}
contexts:
- name: kubernetes-admin@{cluster}
  context: {{cluster: {cluster}, user: kubernetes-admin}}
current-context: kubernetes-admin@{cluster}
"""


class DsaasMocks(pulumi_mocks.Mocks):
    """Answers data sources and resource registrations with plausible, deterministic values."""

    def __init__(self, stack: str, previous_outputs: Mapping[str, Any] | None = None) -> None:
        self.stack = stack
        self.secret_values: set[str] = set()
        self.previous_outputs = dict(previous_outputs or {})
        """The stack's outputs from its last update, as its own `StackReference` reads them ({} on a first up)."""

    def _secret(self, value: str) -> str:
        self.secret_values.add(value)
        return value

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        token = args.token
        name = str(args.args.get("name", ""))
        results: dict[str, dict[str, Any]] = {
            "vsphere:index/getDatacenter:getDatacenter": {"id": "datacenter-3", "name": name},
            "vsphere:index/getComputeCluster:getComputeCluster": {
                "id": "domain-c8",
                "name": name,
                "resourcePoolId": "resgroup-9",
            },
            "vsphere:index/getDatastore:getDatastore": {"id": "datastore-11", "name": name},
            "vsphere:index/getHost:getHost": {
                "id": f"host-{int(_digest(name, length=4), 16) % 1000}",
                "name": name,
                "resourcePoolId": "resgroup-9",
            },
            "vsphere:index/getNetwork:getNetwork": {
                "id": "dvportgroup-12",
                "name": name,
                "type": "DistributedVirtualPortgroup",
            },
            "vsphere:index/getVirtualMachine:getVirtualMachine": {
                "id": "4211a1b2-0000-4c3d-8e9f-" + _digest(name, length=12),
                "name": name,
                "guestId": "ubuntu64Guest",
                "firmware": "efi",
                "scsiType": "pvscsi",
                "networkInterfaceTypes": ["vmxnet3"],
                "disks": [
                    {
                        "label": "Hard disk 1",
                        "size": 20,
                        "thinProvisioned": True,
                        "eagerlyScrub": False,
                        "unitNumber": 0,
                    }
                ],
            },
        }
        if token not in results:
            raise NotImplementedError(f"the mocks do not answer data source {token}")
        return results[token], []

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        name = args.name
        typ = args.typ
        resource_id = f"{name}-id"
        if typ == "pulumi:pulumi:StackReference":
            # As the engine answers a read of a stack reference (pulumi's pkg/resource/deploy/builtins.go,
            # readStackReference): the ID is the stack's name, `outputs` its last outputs, `secretOutputNames`
            # those that are secret. A stack that has never been updated has no outputs.
            return str(state["name"]), {
                "name": state["name"],
                "outputs": dict(self.previous_outputs),
                "secretOutputNames": [],
            }
        if typ == "tls:index/privateKey:PrivateKey":
            key = self._secret(
                f"-----BEGIN OPENSSH PRIVATE KEY-----\nmock-{_digest(name)}\n-----END OPENSSH PRIVATE KEY-----\n"
            )
            state.update(
                private_key_openssh=key,
                private_key_pem=self._secret(key.replace("OPENSSH", "PRIVATE")),
                public_key_openssh=f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5{_digest(name, length=43)} \n",
            )
        elif typ.startswith("random:"):
            resource_id = self._random(typ, name, state)
        elif typ == "vsphere:index/virtualMachine:VirtualMachine":
            resource_id = "4211" + _digest(name, length=28)
            state.update(uuid=resource_id, moid=f"vm-{int(_digest(name, length=6), 16) % 100000}")
        elif typ == "command:remote:Command":
            state.update(stdout=self._command_stdout(name, state), stderr="")
        elif typ == "command:local:Command":
            state.update(stdout=self._local_stdout(name, state), stderr="")
        elif typ == "kubernetes:trident.netapp.io/v1:TridentBackendConfig":
            resource_id = f"{TRIDENT_NAMESPACE}/{unwrap(state['metadata'])['name']}"
            if not pulumi.runtime.is_dry_run():
                # Trident writes the status once it has reached ONTAP; a preview cannot know it.
                state["status"] = self.backend_status(self.stack, unwrap(state["spec"]))
        return resource_id, state

    @staticmethod
    def backend_status(stack: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """A TridentBackendConfig's status as the Trident operator writes it once the backend is Bound."""
        backend = str(spec["backendName"])
        return {
            "phase": "Bound",
            "backendInfo": {
                "backendName": backend,
                "backendUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{stack}/{backend}")),
            },
            "deletionPolicy": spec.get("deletionPolicy", "delete"),
            "lastOperationStatus": "Success",
            "message": f"Backend '{backend}' created",
        }

    def _random(self, typ: str, name: str, state: dict[str, Any]) -> str:
        """The values pulumi-random (terraform-provider-random 3.x) returns, with the IDs it gives.

        The ID is what the provider puts there, and Pulumi stores every ID in clear in the state:
        RandomId's is its bytes in base64url, RandomString's is the string itself; RandomPassword's
        and RandomBytes's is the constant "none". Every generated value counts as a secret here
        whatever the program marks, so a graph test sees a secret that equals or is derived from an ID.
        """
        if typ == "random:index/randomString:RandomString":
            result = self._secret(_alnum(name, int(state.get("length", 8))))
            state["result"] = result
            return result
        if typ == "random:index/randomPassword:RandomPassword":
            state["result"] = self._secret(_alnum(name, int(state.get("length", 16))))
            return "none"
        data = bytes.fromhex(_digest(name, length=2 * int(state.get("byteLength", state.get("length", 8)))))
        encodings = {
            "hex": data.hex(),
            "b64Std": base64.b64encode(data).decode(),
            "b64Url": base64.urlsafe_b64encode(data).decode().rstrip("="),
            "dec": str(int.from_bytes(data, "big")),
        }
        if typ == "random:index/randomId:RandomId":
            state.update({key: self._secret(value) for key, value in encodings.items()})
            return encodings["b64Url"]
        if typ == "random:index/randomBytes:RandomBytes":
            state.update(hex=self._secret(encodings["hex"]), base64=self._secret(encodings["b64Std"]))
            return "none"
        raise NotImplementedError(f"the mocks do not model {typ}")

    @staticmethod
    def _local_stdout(name: str, state: Mapping[str, Any]) -> str:
        """What the program's local steps print (components/templates/fetch-image.sh, components/vsphere_wait.py)."""
        script = str(unwrap(state.get("create") or ""))
        if "# dsaas step: fetch-image" in script:
            digest = script.split("IMAGE_SHA256=", 1)[1].split("\n", 1)[0].strip("'")
            return f"/home/operator/.cache/dsaas/images/{digest}.ova\n"
        if "components.vsphere_wait" in script:
            vm_name = str(unwrap(state["environment"])["DSAAS_VM_NAME"])
            return f"dsaas: template VM {vm_name} is prepared (powered off after 21.4 min)\n"
        if "components.ontap_exports" in script:
            request = json.loads(str(unwrap(state["stdin"])))
            return (
                f"dsaas: export policy {request['policy']} on SVM {request['svm']} admits "
                f"{', '.join(request['clients'])} (created); rules added {len(request['clients'])}, removed 0; "
                f"{len(request['qtrees'])} restored qtree(s) use it\n"
            )
        return f"mock stdout of {name}"

    def _command_stdout(self, name: str, state: Mapping[str, Any]) -> str:
        script = unwrap(state.get("stdin") or "")
        if "# dsaas step: join-credentials" in script:
            # As kubeadm makes them: a bootstrap token, and a certificate key for a control plane.
            role = script.split("NODE_ROLE=", 1)[1].split("\n", 1)[0].strip("'")
            token = self._secret(f"{_alnum(name + 'id', 6)}.{_alnum(name + 'secret', 16)}")
            key = self._secret(_digest("certificate-key", name)) if role == "control-plane" else ""
            return self._secret(json.dumps({"token": token, "certificateKey": key}))
        if "# dsaas step: ca-cert-hash" in script:
            return "sha256:" + _digest("ca", self.stack)
        if "# dsaas step: read-kubeconfig" in script:
            endpoint = script.split("API_ENDPOINT=", 1)[1].split("\n", 1)[0].strip("'")
            key = self._secret("bW9jay1rZXktZm9yLWRzYWFz" + _digest("key", self.stack, length=16))
            certificate = base64.b64encode(MOCK_ADMIN_CLIENT_CERTIFICATE.read_bytes()).decode()
            return self._secret(
                _MOCK_KUBECONFIG.format(cluster=self.stack, endpoint=endpoint, key=key, certificate=certificate)
            )
        return f"mock stdout of {name}"


def _urn_name(urn: str) -> str:
    return urn.split("::", 3)[3]


def _urn_type(urn: str) -> str:
    """The resource's own type: the last of its qualified type chain."""
    return urn.split("::", 3)[2].rsplit("$", 1)[-1]


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also keeps what each registration asked for: parent and dependencies."""

    def __init__(self, mocks: DsaasMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []
        self.aliases: dict[str, list[str]] = {}

    def make_urn(self, parent: str, type_: str, name: str, stack: str = "", project: str = "") -> str:
        """The URN the engine gives: the parent's whole qualified type chain before the type, the root stack's
        type never (pulumi/pkg/resource/deploy/step_generator.go, generateURN: `parent.QualifiedType()`).
        Pulumi's MockMonitor keeps only the parent's last type, which differs for a component in a component."""
        if parent:
            qualified = parent.split("::")[2]
            if qualified != "pulumi:pulumi:Stack":
                type_ = f"{qualified}${type_}"
        return "urn:pulumi:" + "::".join([stack or pulumi.get_stack(), project or pulumi.get_project(), type_, name])

    def alias_urns(self, request: Any) -> list[str]:
        """The earlier URNs a registration may claim, as the engine computes them (pulumi's
        pkg/resource/deploy/step_generator.go, generateAliases and collapseAliasToUrn): a URN alias as it is; a
        spec with this resource's name, type and parent where it leaves them out (`noParent` or the root stack:
        no parent); then this resource under each alias of its parent (inheritedChildAlias, the parent's name
        prefix renamed). The engine uses only the parent alias that matched the old state; without a state
        here, each of them is a candidate (a spec naming a parent with aliases, likewise)."""
        found: list[str] = []
        for alias in request.aliases:
            if not alias.HasField("spec"):
                found.append(alias.urn)
                continue
            spec = alias.spec
            parents = [spec.parentUrn, *self.aliases.get(spec.parentUrn, [])] if spec.parentUrn else [request.parent]
            for parent in parents:
                found.append(
                    self.make_urn(
                        "" if spec.noParent else parent,
                        spec.type or request.type,
                        spec.name or request.name,
                        spec.stack,
                        spec.project,
                    )
                )
        parent_aliases = self.aliases.get(request.parent, [])
        own = [(request.type, request.name)] + [(_urn_type(urn), _urn_name(urn)) for urn in found if parent_aliases]
        parent_name = _urn_name(request.parent) if request.parent else ""
        for parent_alias in parent_aliases:
            for type_, name in own:
                if parent_name and name.startswith(parent_name):
                    name = _urn_name(parent_alias) + name[len(parent_name) :]
                found.append(self.make_urn(parent_alias, type_, name))
        return list(dict.fromkeys(found))

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            return response
        dependencies = set(request.dependencies)
        for property_deps in request.propertyDependencies.values():
            dependencies.update(property_deps.urns)
        if request.provider:
            # A provider reference is "<urn>::<id>"; the resource waits for that provider.
            provider_urn = request.provider.rsplit("::", 1)[0]
            if not provider_urn.rsplit("::", 1)[-1].startswith("default"):
                dependencies.add(provider_urn)
        registration = self.resources.get(response.urn)
        aliases = self.alias_urns(request)
        self.aliases[response.urn] = aliases
        self.recorded.append(
            RecordedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=bool(request.custom),
                provider=request.provider,
                dependencies=sorted(dependencies),
                inputs=rpc.deserialize_properties(request.object),
                outputs=dict(registration.state) if registration else {},
                delete_before_replace=bool(request.deleteBeforeReplace),
                additional_secret_outputs=list(request.additionalSecretOutputs),
                property_dependencies={
                    key: sorted(deps.urns) for key, deps in request.propertyDependencies.items() if deps.urns
                },
                id=str(response.id or ""),
                retain_on_delete=bool(request.retainOnDelete),
                ignore_changes=list(request.ignoreChanges),
                replace_on_changes=list(request.replaceOnChanges),
                aliases=aliases,
            )
        )
        return response


# --- stack files -------------------------------------------------------------------------------


class StackFileError(ValueError):
    pass


def stack_file(stack: str, config_dir: Path | None = None) -> Path:
    return (config_dir or ROOT / "config") / f"Pulumi.{stack}.yaml"


def project_defaults() -> dict[str, Any]:
    """Defaults declared in Pulumi.yaml, applied the way the Pulumi CLI applies them."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    defaults = {}
    for key, declaration in (project.get("config") or {}).items():
        if isinstance(declaration, dict) and "default" in declaration:
            full_key = key if ":" in key else f"{PROJECT}:{key}"
            defaults[full_key] = declaration["default"]
    return defaults


def load_stack_config(values: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Pulumi's view of a stack's config: strings (objects as JSON), `secure:` as placeholders."""
    from config.loader import offline_secret_placeholder

    config: dict[str, str] = {}
    secret_keys: list[str] = []
    merged = {**project_defaults(), **values}
    for key, value in merged.items():
        full_key = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            # Never decrypted: the program gets a placeholder and Pulumi's secret flag.
            config[full_key] = offline_secret_placeholder(full_key)
            secret_keys.append(full_key)
        elif isinstance(value, str):
            config[full_key] = value
        else:
            try:
                config[full_key] = json.dumps(value)
            except (TypeError, ValueError) as error:  # e.g. !!binary bytes, a !!timestamp, a mapping with list keys
                raise StackFileError(
                    f"{full_key}: holds a value that is not plain YAML data (strings, numbers, booleans, lists, "
                    f"mappings): {error}. Fix: write it as a plain value, e.g. quoted text."
                ) from None
    return config, secret_keys


class _StackFileLoader(yaml.SafeLoader):
    """YAML as a Pulumi stack file holds it: plain data, an unquoted date stays text (as Pulumi keeps it)."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return int(super().construct_yaml_int(node))
        except ValueError as error:  # more digits than Python converts (4,300)
            raise yaml.constructor.ConstructorError(None, None, str(error), node.start_mark) from None


_StackFileLoader.add_constructor("tag:yaml.org,2002:int", _StackFileLoader.construct_yaml_int)


_StackFileLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


STACK_FILE_FORM = "a mapping with a `config:` mapping of keys like dsaas:clusterName, as `pulumi config set` writes it"


# Pulumi's own rule for a stack name (alphanumerics, hyphens, underscores, periods; at most 100 characters): a
# longer name is no file name (over 255 bytes), a slash would leave the config folder.
_STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}", re.ASCII)


def check_stack_name(stack: str) -> None:
    """`StackFileError` for a name no Pulumi stack can have, before it becomes a path."""
    if not _STACK_NAME.fullmatch(stack) or stack in (".", ".."):
        shown = ascii(stack) if len(stack) <= 60 else ascii(stack[:57]) + "..."
        raise StackFileError(
            f"{shown} ({len(stack.encode(errors='replace'))} bytes) is not a stack name. Fix: name a stack as "
            "Pulumi does: 1-100 letters, digits, hyphens, underscores or periods (config/Pulumi.<stack>.yaml)."
        )


def yaml_error_fix(error: BaseException) -> str:
    """The fix for a stack file YAML cannot read: a tab in the indentation is the common slip (editors insert
    them; YAML forbids them), and it deserves more than a description of the expected file."""
    mark = getattr(error, "problem_mark", None)
    problem = str(getattr(error, "problem", "") or "")
    if "'\\t'" in problem or "tab character" in problem:
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return f"replace the tab{where} with spaces: YAML indents with spaces only"
    return f"expected {STACK_FILE_FORM}"


def read_stack_values(stack: str, config_dir: Path | None = None) -> dict[str, Any]:
    """The `config:` mapping of a stack file, or `StackFileError` saying why the file has none."""
    check_stack_name(stack)
    path = stack_file(stack, config_dir)
    if not path.exists():
        raise StackFileError(f"no stack file {path}")
    try:
        with path.open(encoding="utf-8") as stream:
            document = yaml.load(stream, Loader=_StackFileLoader)
    except (yaml.YAMLError, ValueError, RecursionError) as error:  # ValueError: bad UTF-8, a 5,000-digit number
        raise StackFileError(f"{path}: is not valid YAML: {error}. Fix: {yaml_error_fix(error)}.") from None
    if document is None:
        return {}
    config = document.get("config") if isinstance(document, dict) else document
    if config is None:
        return {}
    if not isinstance(config, dict):
        where = "its `config:` is" if isinstance(document, dict) else "it is"
        raise StackFileError(f"{path}: {where} a {type(config).__name__}. Fix: expected {STACK_FILE_FORM}.")
    for key in config:
        if not isinstance(key, str):
            raise StackFileError(
                f"{path}: config key {key!r} is a {type(key).__name__}, not text. Fix: keys look like "
                "dsaas:clusterName (quote a key YAML would read as a number, boolean or null)."
            )
    return dict(config)


def run_program(
    stack: str,
    values: Mapping[str, Any] | None = None,
    config_dir: Path | None = None,
    preview: bool = False,
    previous_outputs: Mapping[str, Any] | None = None,
) -> Graph:
    """Evaluate `__main__.py` for `stack` (or for explicit `values`) and return the recorded graph.

    `preview=True` runs it as `pulumi preview` does: what only exists after a create (a backend's
    status) is unknown. `previous_outputs` are the stack's outputs from its last update (none: a first up)."""
    stack_values = dict(values) if values is not None else read_stack_values(stack, config_dir)
    config, secret_keys = load_stack_config(stack_values)
    mocks = DsaasMocks(stack, previous_outputs)
    mocks.secret_values.update(config[k] for k in secret_keys)
    monitor = RecordingMonitor(mocks)
    runtime_config.set_all_config(config, secret_keys)
    pulumi.runtime.settings.set_root_resource(None)  # type: ignore[arg-type]  # a fresh stack per run
    pulumi_mocks.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    try:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        _sync_await(wait_for_rpcs())
    finally:
        runtime_config.set_all_config({}, [])
    root = pulumi.runtime.settings.get_root_resource()
    outputs: dict[str, Any] = {}
    if root is not None and getattr(root, "outputs", None):
        outputs = dict(root.outputs)  # type: ignore[attr-defined]
    return Graph(stack=stack, resources=monitor.recorded, outputs=outputs, secret_values=set(mocks.secret_values))
