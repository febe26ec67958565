"""Bring-up at scale, modelled: how long a first `pulumi up` takes, and what it waits on.

`python -m tools.bringup <stack> --workers 3 150 500 [--hosts 4 16] [--parallel P] [--runs R] [--seed S]
[--json]` records the stack's real graph under the Pulumi mocks (as `tools.preview` does, with the worker
count overridden), maps each resource to a kind of step by its type and name, draws each step's duration
from `tools.bench.bringup_table` (every figure with its source), and runs `tools.bench.bringup_sim` on it: a resource
starts when everything it depends on has finished (depends_on, inputs that are other resources' outputs,
a custom parent; components take no time), at most P operations at once, VM clones queued by vCenter at 8
per ESXi host (VMs placed round-robin), downloads sharing the site's uplink. Per size it prints the median
and p90 makespan over seeded runs, the critical path of the median run and what that path waits on.
`--table` prints the duration table as Markdown (for docs/bringup.md).

Nothing here knows how the program wires its steps: every dependency comes from the recorded graph, so a
change to the program (e.g. how nodes get their join credentials) shows up by running this again.
"""

from __future__ import annotations

import argparse
import base64
import copy
import dataclasses
import gzip
import ipaddress
import json
import math
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from components import kubeadm_render
from config.settings import Role
from tools.bench import bringup_sim as sim
from tools.bench.bringup_table import (
    CLONE,
    DOWNLOAD_JITTER,
    ENGINE_CHECKPOINT_MS_PER_RESOURCE,
    ENGINE_SAVES_PER_COMPONENT,
    ENGINE_SAVES_PER_CREATE,
    FULL_CLONE_UNITS,
    HOST_UNITS,
    JOIN_FAILURE_PER_EXTRA_JOIN,
    JOIN_FAILURE_THRESHOLD,
    LINKED_CLONE_UNITS,
    NODE_DOWNLOAD_GBPS,
    PACKAGE_MB_PER_NODE,
    SITE_UPLINK_GBPS,
    SSH_HANDSHAKE,
    SSHD_DEFAULT_MAX_STARTUPS,
    STEP,
    UNPACK_MB_PER_SECOND,
    VCENTER_OPERATION_LIMIT,
    CloneKind,
    Figure,
    Triangular,
    dial_delays,
    image_gb_per_node,
    node_image_gb,
    render_table,
)
from tools.offline.mockgraph import PROJECT, RecordedResource, StackFileError, read_stack_values, run_program, unwrap

VM_TYPE = "vsphere:index/virtualMachine:VirtualMachine"
COMMAND_TYPE = "command:remote:Command"
LOCAL_COMMAND_TYPE = "command:local:Command"
HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
VCENTER_POOL = "vcenter"
ENGINE_POOL = "engine-checkpoint"
ENGINE_LABEL = "engine checkpoints"
ENGINE_QUEUE = "engine checkpoints: queue"
CLONE_QUEUE = "clone units queue (template host, destination host, vCenter)"
UPLINK_POOL = "uplink"
SSH_LABEL = "SSH handshakes"
SSH_RETRIES = "SSH dials refused by sshd (MaxStartups): retries"
NODE_IMAGES_LABEL = "per-node images (kube-proxy, Calico, Trident)"
NODE_IMAGES_QUEUE = "per-node images: uplink queue"
JOIN_GROUP = "kubeadm-join"
MAX_UPS = 5
"""A failed `pulumi up` is run again, at most this many times in all."""
DEFAULT_MAX_STARTUPS = (int(SSHD_DEFAULT_MAX_STARTUPS.value), 30, 100)

# What the time is attributed to (the "waits on" categories).
CLONE_LABEL = "template clone"
VCENTER_QUEUE = "vCenter queue"
PACKAGE_DOWNLOADS = "package downloads"
PACKAGE_QUEUE = "package downloads: uplink queue"
IMAGE_PULLS = "image pulls"
IMAGE_QUEUE = "image pulls: uplink queue"
LABELS: dict[str, str] = {
    "first-boot": "first boot",
    "cloud-init": "cloud-init packages",
    "package-install": "package installs",
    "prepare-baked": "node preparation",
    "image-fetch": "template image download",
    "template-deploy": "template deploy",
    "template-finish": "template preparation",
    "template-sealed": "template copies",
    "kube-vip": "SSH steps",
    "ssh-command": "SSH steps",
    "kubeadm-init": "kubeadm init",
    "join-control-plane": "joins",
    "join-worker": "joins",
    "join-credentials": "join credentials",
    "block-storage": "block storage (iSCSI)",
    "wait-for-operator": "Trident readiness",
    "helm-calico": "Helm installs",
    "helm-trident": "Helm installs",
    "helm-jupyterhub": "Helm installs",
    "helm": "Helm installs",
    "manifests": "Kubernetes objects",
    "kubernetes-object": "Kubernetes objects",
    "vsphere-rule": "other",
    "provider": "other",
    "local": "other",
    "other": "other",
}

# Remote command steps by the end of their resource name (`<component>-<node>-<step>`).
COMMAND_KINDS: dict[str, str] = {
    "prepare": "prepare",
    "kubeadm-init": "kubeadm-init",
    "kubeadm-join": "join",
    "join-credentials": "join-credentials",
    "membership": "ssh-command",
    "kube-vip": "kube-vip",
    "ssh-keys": "ssh-command",
    "block-storage": "block-storage",
    "ca-cert-hash": "ssh-command",
    "admin-kubeconfig": "ssh-command",
    "wait-for-operator": "wait-for-operator",
}
HELM_CHARTS: dict[str, str] = {
    "tigera-operator": "helm-calico",
    "trident-operator": "helm-trident",
    "jupyterhub": "helm-jupyterhub",
}


@dataclass(frozen=True)
class Assumptions:
    """What the recorded graph cannot know: the data center it runs in."""

    hosts: int = 4
    """ESXi hosts the VMs are spread over (round-robin)."""
    parallel: int | None = None
    """Pulumi's --parallel (None: unbounded, Pulumi's default)."""
    clone: CloneKind | None = None
    """How the template is cloned; None: linked if the program asks for linked clones, else VAAI copy."""
    uplink_gbps: float = SITE_UPLINK_GBPS.value
    node_gbps: float = NODE_DOWNLOAD_GBPS.value
    host_units: int = int(HOST_UNITS.value)
    vcenter_limit: int = int(VCENTER_OPERATION_LIMIT.value)
    template_copies: int = 1
    """Hosts holding a copy of the template; clone i reads from copy i mod n (what-if; the program has 1)."""
    checkpoints: bool = True
    """The engine saves the whole state after each operation (Pulumi's default); False: PULUMI_SKIP_CHECKPOINTS."""
    baked_template: bool = False
    """What-if: the template already holds the packages and the notebook images."""

    def __post_init__(self) -> None:
        if self.hosts < 1:
            raise ValueError("--hosts must be at least 1")
        if self.uplink_gbps <= 0 or self.node_gbps <= 0:
            raise ValueError("link speeds must be positive")
        if not 1 <= self.template_copies <= self.hosts:
            raise ValueError("--template-copies must be between 1 and the number of hosts")


@dataclass(frozen=True)
class StepSpec:
    label: str
    seconds: Triangular
    jobs: int = 1
    pools: tuple[str, ...] = ()
    queue_label: str = ""
    dial: sim.Dial | None = None
    hazard: sim.Hazard | None = None


@dataclass(frozen=True)
class TaskSpec:
    id: str
    """The resource's URN."""
    name: str
    type: str
    kind: str
    deps: tuple[str, ...]
    steps: tuple[StepSpec, ...]
    deadline: sim.Deadline | None = None
    background: bool = False


@dataclass(frozen=True)
class Plan:
    tasks: tuple[TaskSpec, ...]
    pools: dict[str, int]
    control_planes: int
    workers: int
    clone: CloneKind


# --- the recorded graph ------------------------------------------------------------------------


def values_with_workers(stack: str, workers: int) -> dict[str, Any]:
    """The stack file's values with `workers` workers, the node subnet widened only if they do not fit.

    As `tools.benchmark` does for prod; addresses stay where the stack file puts them while they fit.
    """
    values = copy.deepcopy(read_stack_values(stack))
    pool = values["dsaas:nodes"]["workers"]
    pool["count"] = workers
    explicit = pool.pop("addresses", None)
    first_text = pool.get("firstAddress") or (explicit[0] if explicit else None)
    if first_text is None:
        raise StackFileError(f"{stack}: dsaas:nodes.workers has neither firstAddress nor addresses")
    pool["firstAddress"] = str(first_text)
    first = ipaddress.IPv4Address(first_text)
    subnet = ipaddress.IPv4Network(values["dsaas:network"]["subnet"])
    if workers == 0 or int(first) + workers - 1 < int(subnet.broadcast_address):
        return values
    for prefix in range(subnet.prefixlen - 1, 7, -1):
        wider = subnet.supernet(new_prefix=prefix)
        for start in (int(subnet.broadcast_address) + 1, int(wider.network_address) + 1):
            end = start + workers - 1
            outside_old = end < int(subnet.network_address) or start > int(subnet.broadcast_address)
            if int(wider.network_address) < start and end < int(wider.broadcast_address) and outside_old:
                values["dsaas:network"]["subnet"] = str(wider)
                pool["firstAddress"] = str(ipaddress.IPv4Address(start))
                return values
    raise StackFileError(f"{stack}: no subnet around {subnet} holds {workers} workers")


_RECORDINGS: dict[tuple[str, int | None, int | None], tuple[RecordedResource, ...]] = {}


def record(stack: str, workers: int | None = None, join_concurrency: int | None = None) -> tuple[RecordedResource, ...]:
    """The stack's graph as the offline preview records it (cached: one recording per worker count), with
    `dsaas:joinConcurrency` overridden if given (what-if: a wider or no join window)."""
    key = (stack, workers, join_concurrency)
    if key not in _RECORDINGS:
        values = None if workers is None else values_with_workers(stack, workers)
        if join_concurrency is not None:
            values = values or copy.deepcopy(read_stack_values(stack))
            values["dsaas:joinConcurrency"] = join_concurrency
        _RECORDINGS[key] = tuple(run_program(stack, values).resources)
    return _RECORDINGS[key]


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """worker-2 before worker-10."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part)


def is_component(resource: RecordedResource, has_children: bool) -> bool:
    """A local component: it only groups its children and takes no time of its own.

    A component of another package with no recorded children (a yaml/v2 ConfigGroup, built by its provider)
    does its work when registered, so it counts as an operation.
    """
    return not resource.custom and (resource.type.startswith(f"{PROJECT}:") or has_children)


def operation_dependencies(resources: Sequence[RecordedResource]) -> dict[str, tuple[str, ...]]:
    """For every operation (custom resource or provider-built component): the operations it waits for.

    As the Pulumi SDK registers a resource: after its depends_on (a component stands for every operation
    under it), after every resource behind its inputs, after its provider, and after its parent's URN is
    known: a custom parent once created, a component parent once its own dependencies are.
    """
    by_urn = {r.urn: r for r in resources}
    children: dict[str, list[str]] = defaultdict(list)
    for resource in resources:
        children[resource.parent].append(resource.urn)
    component = {r.urn: is_component(r, bool(children[r.urn])) for r in resources}
    descendants: dict[str, frozenset[str]] = {}
    inherited: dict[str, frozenset[str]] = {}

    def operations_under(urn: str) -> frozenset[str]:
        if urn not in descendants:
            found: set[str] = set()
            for child in children[urn]:
                found |= operations_under(child) if component[child] else {child}
            descendants[urn] = frozenset(found)
        return descendants[urn]

    def expand(urns: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for urn in urns:
            if urn not in by_urn:
                continue  # the stack itself, or a default provider (not recorded)
            found |= operations_under(urn) if component[urn] else {urn}
        return found

    def from_parent(urn: str) -> frozenset[str]:
        if urn not in inherited:
            parent = by_urn.get(by_urn[urn].parent)
            if parent is None:
                inherited[urn] = frozenset()
            elif not component[parent.urn]:
                inherited[urn] = frozenset({parent.urn})
            else:
                inherited[urn] = frozenset(expand(parent.dependencies)) | from_parent(parent.urn)
        return inherited[urn]

    return {
        r.urn: tuple(sorted((expand(r.dependencies) | from_parent(r.urn)) - {r.urn}))
        for r in resources
        if not component[r.urn]
    }


def node_roles(resources: Sequence[RecordedResource]) -> dict[str, Role]:
    """Node name → role, from each VM's annotation (`components.nodes.vm_annotation`)."""
    roles: dict[str, Role] = {}
    for resource in resources:
        if resource.type == VM_TYPE and not _is_template(resource):
            annotation = str(unwrap(resource.inputs.get("annotation", "")))
            worker = f"Kubernetes {Role.WORKER.value} node" in annotation
            node = str(unwrap(resource.inputs.get("name", resource.name)))
            roles[node] = Role.WORKER if worker else Role.CONTROL_PLANE
    return roles


def _is_template(resource: RecordedResource) -> bool:
    """A program-built template VM or one of its per-host copies (components/node_template.py): no node."""
    return resource.parent.split("::")[-2].endswith("dsaas:vsphere:NodeTemplate") if resource.parent else False


def command_step(name: str) -> str | None:
    """The step a remote command runs, from the end of its name; None for a step this model does not know."""
    for step in sorted(COMMAND_KINDS, key=len, reverse=True):
        if name.endswith(f"-{step}"):
            return step
    return None


def command_node(name: str, step: str | None, roles: Mapping[str, Role]) -> str | None:
    """The node a `<component>-<node>-<step>` command is about, if it names one."""
    stem = name[: -len(step) - 1] if step else name
    parts = stem.split("-")
    for i in range(len(parts)):
        candidate = "-".join(parts[i:])
        if candidate in roles:
            return candidate
    return None


def classify(resource: RecordedResource, roles: Mapping[str, Role]) -> str:
    """The kind of step a resource is, from its Pulumi type and name."""
    typ, name = resource.type, resource.name
    if typ == VM_TYPE:
        if resource.inputs.get("ovfDeploy"):
            return "template-deploy"
        return "template-copy" if _is_template(resource) else "vm"
    if typ == LOCAL_COMMAND_TYPE:
        script = str(unwrap(resource.inputs.get("create") or ""))
        if "# dsaas step: fetch-image" in script:
            return "image-fetch"
        if "components.vsphere_wait" in script:
            return "template-sealed" if name.endswith("-sealed") else "template-bake"
        return "other"
    if typ == COMMAND_TYPE:
        step = command_step(name)
        if step is None:
            return "join-credentials" if "credential" in name or name.endswith("-token") else "ssh-command"
        kind = COMMAND_KINDS[step]
        if kind == "join":
            node = command_node(name, step, roles)
            return "join-worker" if node is not None and roles[node] is Role.WORKER else "join-control-plane"
        return kind
    if typ in HELM_TYPES:
        return HELM_CHARTS.get(str(unwrap(resource.inputs.get("chart", ""))), "helm")
    if typ == "kubernetes:yaml/v2:ConfigGroup":
        return "manifests"
    if typ.startswith("pulumi:providers:"):
        return "provider"
    if typ.startswith("kubernetes:"):
        return "kubernetes-object"
    if typ.startswith(("tls:", "random:")):
        return "local"
    if typ.startswith("vsphere:index/computeCluster"):
        return "vsphere-rule"
    return "other"


def prepulled_images(resource: RecordedResource) -> list[str]:
    """The images z2jh's pre-puller hook pulls onto every user node before the hub rolls out."""
    values = unwrap(resource.inputs.get("values") or {})
    if not isinstance(values, dict):
        return []
    pre_puller = values.get("prePuller") or {}
    if not (pre_puller.get("hook") or {}).get("enabled", True):
        return []
    singleuser = values.get("singleuser") or {}
    images: list[str] = []
    image = singleuser.get("image") or {}
    if image.get("name"):
        images.append(f"{image['name']}:{image.get('tag', 'latest')}")
    for profile in singleuser.get("profileList") or []:
        override = profile.get("kubespawner_override") or {}
        if override.get("image"):
            images.append(str(override["image"]))
    images += [f"{i['name']}:{i.get('tag', 'latest')}" for i in (pre_puller.get("extraImages") or {}).values()]
    return images


def template_images(resources: Sequence[RecordedResource]) -> list[str]:
    """The images a program-built template pulls while it is prepared (its bake script's BAKE_IMAGES)."""
    for resource in resources:
        properties = (unwrap(resource.inputs.get("vapp") or {}) or {}).get("properties") or {}
        if resource.type == VM_TYPE and "user-data" in properties:
            document = yaml.safe_load(base64.b64decode(properties["user-data"]).decode())
            for entry in document.get("write_files", []):
                parameters, _ = kubeadm_render.parse_rendered_script(str(entry.get("content", "")))
                if "BAKE_IMAGES" in parameters:
                    return parameters["BAKE_IMAGES"].split()
    return []


MAX_STARTUPS = re.compile(r"^\s*MaxStartups\s+(\d+):(\d+):(\d+)\s*$", re.MULTILINE)


def user_data(resource: RecordedResource) -> str:
    """A node VM's cloud-init user data (guestinfo.userdata, gzip+base64), or ""."""
    extra = unwrap(resource.inputs.get("extraConfig") or {}) or {}
    encoded = extra.get("guestinfo.userdata")
    if not isinstance(encoded, str):
        return ""
    raw = base64.b64decode(encoded)
    return (gzip.decompress(raw) if extra.get("guestinfo.userdata.encoding") == "gzip+base64" else raw).decode()


def connection(resource: RecordedResource) -> dict[str, Any]:
    value = unwrap(resource.inputs.get("connection") or {})
    return value if isinstance(value, dict) else {}


def sshd_max_startups(resources: Sequence[RecordedResource], roles: Mapping[str, Role]) -> dict[str, tuple[int, ...]]:
    """Each node's address → its sshd's MaxStartups: the program's drop-in from the VM's user data, else
    sshd's default. A node's address is the host its own `prepare` command connects to."""
    limits = {}
    for resource in resources:
        if resource.type == VM_TYPE and not _is_template(resource):
            match = MAX_STARTUPS.search(user_data(resource))
            node = str(unwrap(resource.inputs.get("name", resource.name)))
            limits[node] = tuple(int(part) for part in match.groups()) if match else DEFAULT_MAX_STARTUPS
    by_address: dict[str, tuple[int, ...]] = {}
    for resource in resources:
        if resource.type == COMMAND_TYPE and command_step(resource.name) == "prepare":
            member = command_node(resource.name, "prepare", roles)
            host = connection(resource).get("host")
            if member is not None and host:
                by_address[str(host)] = limits.get(member, DEFAULT_MAX_STARTUPS)
    return by_address


def dial_step(resource: RecordedResource, max_startups: Mapping[str, tuple[int, ...]]) -> StepSpec:
    """The SSH handshake a remote command starts with, against its host's MaxStartups, with pulumi-command's
    retries (the connection's dialErrorLimit, pulumi-command's default 10 if unset)."""
    conn = connection(resource)
    host = str(conn.get("host", resource.name))
    start, rate, full = max_startups.get(host, DEFAULT_MAX_STARTUPS)
    delays = dial_delays(int(conn.get("dialErrorLimit", 10)))
    dial = sim.Dial(host, start, rate, full, delays)
    return StepSpec(SSH_LABEL, SSH_HANDSHAKE.seconds, queue_label=SSH_RETRIES, dial=dial)


def clone_kind(resources: Sequence[RecordedResource], assumptions: Assumptions) -> CloneKind:
    if assumptions.clone is not None:
        return assumptions.clone
    linked = any(
        bool((unwrap(r.inputs.get("clone") or {}) or {}).get("linkedClone")) for r in resources if r.type == VM_TYPE
    )
    return CloneKind.LINKED if linked else CloneKind.VAAI_COPY


def _figure_step(key: str) -> StepSpec:
    figure: Figure = STEP[key]
    return StepSpec(LABELS[key], figure.seconds)


def _transfer(seconds: float) -> Triangular:
    return DOWNLOAD_JITTER.scaled(seconds)


def plan_from_graph(resources: Sequence[RecordedResource], assumptions: Assumptions) -> Plan:
    """Every operation of the recorded graph as a task with its steps, durations still distributions."""
    deps = operation_dependencies(resources)
    roles = node_roles(resources)
    operations = sorted((r for r in resources if r.urn in deps), key=lambda r: (natural_key(r.name), r.urn))
    kind_of = {r.urn: classify(r, roles) for r in operations}
    # A program-built template (dsaas:vsphere.templateImage) holds the packages and images: its clones find
    # them in place, and the template's own preparation pays for them once.
    baked = assumptions.baked_template or "template-bake" in kind_of.values()
    # Copies of the template on hosts 1..n (dsaas:vsphere.templateImage.hosts); clone i reads copy i mod n.
    copies = max(assumptions.template_copies, sum(1 for kind in kind_of.values() if kind == "template-copy"))
    copies = min(copies, assumptions.hosts)
    copy_count = 0
    clone = clone_kind(resources, assumptions)
    stream_gbps = min(assumptions.node_gbps, assumptions.uplink_gbps)
    uplink_slots = max(1, math.floor(assumptions.uplink_gbps / stream_gbps))
    pools = {VCENTER_POOL: assumptions.vcenter_limit, UPLINK_POOL: uplink_slots, ENGINE_POOL: 1}
    pools.update({f"esxi-{h + 1}": assumptions.host_units for h in range(assumptions.hosts)})
    units = int((LINKED_CLONE_UNITS if clone is CloneKind.LINKED else FULL_CLONE_UNITS).value)
    # The state grows from nothing to every resource, components included: on average a save writes half of
    # it. A create saves twice (begun, ended); a component saves three times, when it is registered and when its
    # outputs are, which is spread over the run: its saves are charged evenly to the operations it groups.
    save_seconds = ENGINE_CHECKPOINT_MS_PER_RESOURCE.value / 1000 * len(resources) / 2
    components = len(resources) - len(operations)
    saves_per_operation = ENGINE_SAVES_PER_CREATE.value + ENGINE_SAVES_PER_COMPONENT.value * components / max(
        1, len(operations)
    )
    checkpoint_seconds = save_seconds * saves_per_operation
    workers = sum(1 for role in roles.values() if role is Role.WORKER)
    package_seconds = PACKAGE_MB_PER_NODE.value * 8 / 1000 / stream_gbps

    tasks: list[TaskSpec] = []
    max_startups = sshd_max_startups(resources, roles)
    join_hazard = sim.Hazard(
        JOIN_GROUP,
        int(JOIN_FAILURE_THRESHOLD.value),
        JOIN_FAILURE_PER_EXTRA_JOIN.value,
        "kubeadm join failed in preflight: too many joins at once (kubeadm#3181)",
    )
    vm_count = 0
    for resource in operations:
        kind = kind_of[resource.urn]
        steps: list[StepSpec]
        deadline: sim.Deadline | None = None
        if kind == "vm":
            # Every clone reads the template on the template's host (esxi-1, or one of the copies) and writes on
            # its own host; each side holds `units` of that host's 16 (the same host: both).
            host = f"esxi-{vm_count % assumptions.hosts + 1}"
            source = f"esxi-{vm_count % copies + 1}"
            vm_count += 1
            steps = [
                StepSpec(
                    CLONE_LABEL,
                    CLONE[clone].seconds,
                    pools=(source,) * units + (host,) * units + (VCENTER_POOL,),
                    queue_label=CLONE_QUEUE,
                ),
                _figure_step("first-boot"),
            ]
        elif kind == "template-copy":
            # A copy on host k is cloned from the template (on esxi-1), boots once and seals itself.
            host = f"esxi-{copy_count % assumptions.hosts + 1}"
            copy_count += 1
            steps = [
                StepSpec(
                    CLONE_LABEL,
                    CLONE[clone].seconds,
                    pools=("esxi-1",) * units + (host,) * units + (VCENTER_POOL,),
                    queue_label=CLONE_QUEUE,
                ),
                _figure_step("first-boot"),
            ]
        elif kind == "template-bake":
            compressed_gb, unpacked_gb = image_gb_per_node(template_images(resources))
            steps = [
                _figure_step("cloud-init"),
                StepSpec(PACKAGE_DOWNLOADS, _transfer(package_seconds), 1, (UPLINK_POOL,), PACKAGE_QUEUE),
                _figure_step("package-install"),
                StepSpec(IMAGE_PULLS, _transfer(compressed_gb * 8 / stream_gbps), 1, (UPLINK_POOL,), IMAGE_QUEUE),
                StepSpec("image unpack", _transfer(unpacked_gb * 1000 / UNPACK_MB_PER_SECOND.value)),
                _figure_step("template-finish"),
            ]
        elif kind == "prepare":
            if baked:
                steps = [_figure_step("prepare-baked")]
            else:
                steps = [
                    _figure_step("cloud-init"),
                    StepSpec(PACKAGE_DOWNLOADS, _transfer(package_seconds), 1, (UPLINK_POOL,), PACKAGE_QUEUE),
                    _figure_step("package-install"),
                ]
        elif kind == "block-storage" and baked:
            steps = [_figure_step("ssh-command")]
        elif kind == "helm-jupyterhub":
            steps = []
            compressed_gb, unpacked_gb = image_gb_per_node(prepulled_images(resource))
            if compressed_gb and workers and not baked:
                pull = _transfer(compressed_gb * 8 / stream_gbps)
                unpack = _transfer(unpacked_gb * 1000 / UNPACK_MB_PER_SECOND.value)
                steps += [
                    StepSpec(IMAGE_PULLS, pull, workers, (UPLINK_POOL,), IMAGE_QUEUE),
                    StepSpec("image unpack", unpack),
                ]
            timeout = float(unwrap(resource.inputs.get("timeout")) or 300)  # Helm's default: 5 min
            # Helm's timeout bounds each operation, the pre-pull hook's Job among them: past it the release
            # fails and, being atomic, rolls back. Nothing to pull (a baked template): the hook cannot time out.
            deadline = sim.Deadline(
                len(steps), timeout, f"Helm release timed out: the image pre-pull hook took longer than {timeout:g} s"
            )
            steps.append(_figure_step("helm-jupyterhub"))
        elif kind in ("join-worker", "join-control-plane"):
            figure = _figure_step(kind)
            steps = [StepSpec(figure.label, figure.seconds, hazard=join_hazard)]
        else:
            steps = [_figure_step(kind)]
        if resource.type == COMMAND_TYPE:
            steps.insert(0, dial_step(resource, max_startups))
        if assumptions.checkpoints and kind not in ("provider",):
            # The operation is done when the engine has saved it; saves queue behind one another.
            steps.append(
                StepSpec(
                    ENGINE_LABEL,
                    Triangular(checkpoint_seconds * 0.5, checkpoint_seconds, checkpoint_seconds * 1.5),
                    pools=(ENGINE_POOL,),
                    queue_label=ENGINE_QUEUE,
                )
            )
        tasks.append(
            TaskSpec(resource.urn, resource.name, resource.type, kind, deps[resource.urn], tuple(steps), deadline)
        )
    tasks += node_image_tasks(operations, kind_of, roles, baked, stream_gbps)
    control_planes = sum(1 for role in roles.values() if role is Role.CONTROL_PLANE)
    return Plan(tuple(tasks), pools, control_planes, workers, clone)


def node_image_tasks(
    operations: Sequence[RecordedResource],
    kind_of: Mapping[str, str],
    roles: Mapping[str, Role],
    baked: bool,
    stream_gbps: float,
) -> list[TaskSpec]:
    """Every node's kubelet pulling the cluster's own DaemonSet images through the shared uplink: kube-proxy
    (unless the template holds kubeadm's images) and Calico once the node is in the cluster, Trident's node
    plugin once the Trident operator is installed too. Nothing in the program waits for them (no step checks
    that a node is Ready), so they take no --parallel slot and no checkpoint and never end the run; they only
    delay other downloads."""
    member: dict[str, str] = {}
    trident: list[str] = []
    calico: list[str] = []
    for resource in operations:
        kind = kind_of[resource.urn]
        if kind in ("kubeadm-init", "join-worker", "join-control-plane"):
            node = command_node(resource.name, command_step(resource.name), roles)
            if node is not None:
                member[node] = resource.urn
        elif kind == "helm-trident":
            trident.append(resource.urn)
        elif kind == "helm-calico":
            calico.append(resource.urn)
    tasks = []
    for node, join in sorted(member.items(), key=lambda item: natural_key(item[0])):
        waves = [({"calico"} if baked else {"calico", "kube-proxy"}, (join, *calico), "cluster")]
        if trident:
            waves.append(({"trident"}, (join, *trident), "trident"))
        for layers, deps, suffix in waves:
            compressed_gb, unpacked_gb = node_image_gb(layers)
            steps = (
                StepSpec(
                    NODE_IMAGES_LABEL,
                    _transfer(compressed_gb * 8 / stream_gbps),
                    1,
                    (UPLINK_POOL,),
                    NODE_IMAGES_QUEUE,
                ),
                StepSpec("image unpack", _transfer(unpacked_gb * 1000 / UNPACK_MB_PER_SECOND.value)),
            )
            name = f"{node} {suffix} images"
            task_id = f"node-images:{node}:{suffix}"
            tasks.append(TaskSpec(task_id, name, "node-images", "node-images", deps, steps, background=True))
    return tasks


def sample(plan: Plan, seed: int, run: int) -> list[sim.Task]:
    """One draw of every duration. Each resource draws from its own generator, seeded by the seed, the run
    and its URN: a resource takes the same time in every graph it appears in, whatever else the graph
    holds, so sizes and versions of the program are compared on the same draws."""
    tasks = []
    for spec in plan.tasks:
        rng = random.Random(f"{seed}/{run}/{spec.id}")
        # The SSH handshake draws from a generator of its own: every other step draws what it drew before
        # handshakes were modelled, so the figures before and after compare the same draws.
        handshake = random.Random(f"{seed}/{run}/{spec.id}/ssh")
        steps = tuple(
            sim.Step(
                s.label,
                tuple(s.seconds.sample(handshake if s.dial else rng) for _ in range(s.jobs)),
                s.pools,
                s.queue_label,
                s.dial,
                s.hazard,
            )
            for s in spec.steps
        )
        tasks.append(sim.Task(spec.id, spec.deps, steps, spec.deadline, spec.background))
    return tasks


# --- runs and summaries ------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    makespan: float
    """Until the stack is up: every `pulumi up` it took, one after another."""
    no_queue: float
    path: list[sim.PathEntry]
    """The critical path of each `up` in turn, later ones shifted by the earlier ones' length."""
    ups: int = 1
    failure: sim.Failure | None = None
    """What failed the first `up`, if anything did."""
    complete: bool = True
    """False if the stack was still not up after MAX_UPS runs of `pulumi up`."""


@dataclass(frozen=True)
class Result:
    stack: str
    plan: Plan
    assumptions: Assumptions
    seed: int
    runs: list[Run] = field(repr=False)

    @property
    def makespans(self) -> list[float]:
        return sorted(run.makespan for run in self.runs)

    @property
    def median(self) -> float:
        return statistics.median(self.makespans)

    @property
    def p90(self) -> float:
        values = self.makespans
        return values[0] if len(values) == 1 else statistics.quantiles(values, n=10, method="inclusive")[8]

    @property
    def representative(self) -> Run:
        """The run whose makespan is the median (the lower middle one for an even number of runs)."""
        ordered = sorted(self.runs, key=lambda run: run.makespan)
        return ordered[(len(ordered) - 1) // 2]


def simulate_plan(stack: str, plan: Plan, assumptions: Assumptions, runs: int, seed: int) -> Result:
    if runs < 1:
        raise ValueError("--runs must be at least 1")
    results = []
    for index in range(runs):
        tasks = sample(plan, seed, index)
        results.append(until_up(tasks, plan, assumptions, f"{seed}/{index}"))
    return Result(stack, plan, assumptions, seed, results)


def resume(task: sim.Task, resumed: Mapping[str, sim.Failure]) -> sim.Task:
    """A task cut off by its deadline, as the next `up` finds it: the steps it finished and the jobs of its
    last step that finished stay done (images pulled before the Helm timeout are on their nodes)."""
    failure = resumed.get(task.id)
    if failure is None:
        return task
    step = task.steps[failure.step]
    left = step.seconds[len(step.seconds) - failure.unfinished :] if failure.unfinished else ()
    deadline = task.deadline
    if deadline is not None:
        deadline = dataclasses.replace(deadline, steps=max(0, deadline.steps - failure.step))
    steps = (dataclasses.replace(step, seconds=left), *task.steps[failure.step + 1 :])
    return dataclasses.replace(task, steps=steps, deadline=deadline)


def until_up(tasks: list[sim.Task], plan: Plan, assumptions: Assumptions, seed: str) -> Run:
    """`pulumi up` until the stack is up (at most MAX_UPS times). A failed `up` stops starting operations and
    ends when the running ones have; the next `up` creates what is left, the failed resource again (a release
    past its timeout keeps the images it pulled), on fresh draws of what may fail. The operator's time
    between the two is not counted."""
    offset, path = 0.0, []
    first_failure: sim.Failure | None = None
    left = tasks
    for up in range(1, MAX_UPS + 1):
        schedule = sim.simulate(left, plan.pools, assumptions.parallel, f"{seed}/up{up}")
        path += [
            dataclasses.replace(entry, ready=entry.ready + offset, start=entry.start + offset, end=entry.end + offset)
            for entry in sim.critical_path(left, schedule)
        ]
        offset += schedule.makespan
        if first_failure is None:
            first_failure = schedule.failed
        if schedule.failed is None:
            return Run(offset, sim.longest_path(tasks), path, up, first_failure)
        done = schedule.completed()
        resumed = {failure.task: failure for failure in schedule.failures if failure.resumable}
        left = [
            resume(dataclasses.replace(task, deps=tuple(dep for dep in task.deps if dep not in done)), resumed)
            for task in left
            if task.id not in done
        ]
    return Run(offset, sim.longest_path(tasks), path, MAX_UPS, first_failure, complete=False)


def _minutes(seconds: float) -> float:
    return round(seconds / 60, 2)


def to_json(result: Result) -> dict[str, Any]:
    spec = {task.id: task for task in result.plan.tasks}
    run = result.representative
    return {
        "stack": result.stack,
        "workers": result.plan.workers,
        "control_planes": result.plan.control_planes,
        "hosts": result.assumptions.hosts,
        "parallel": result.assumptions.parallel,
        "clone": result.plan.clone.value,
        "baked_template": result.assumptions.baked_template,
        "uplink_gbps": result.assumptions.uplink_gbps,
        "operations": len(result.plan.tasks),
        "runs": len(result.runs),
        "seed": result.seed,
        "makespan_min": _minutes(result.median),
        "makespan_p90_min": _minutes(result.p90),
        "makespan_range_min": [_minutes(result.makespans[0]), _minutes(result.makespans[-1])],
        "median_run_makespan_min": _minutes(run.makespan),
        "median_run_without_queues_min": _minutes(run.no_queue),
        "critical_path": [
            {
                "resource": spec[entry.task].name,
                "kind": spec[entry.task].kind,
                "ready_min": _minutes(entry.ready),
                "end_min": _minutes(entry.end),
                "waited_min": _minutes(entry.waited),
            }
            for entry in run.path
        ],
        "waits_on_min": {label: _minutes(seconds) for label, seconds in sim.waits_on(run.path).items()},
        "engine_min": _minutes(
            sum(seconds for label, seconds in sim.waits_on(run.path).items() if label in (ENGINE_LABEL, ENGINE_QUEUE))
        ),
        "limits": limits_applied(result.plan, result.assumptions),
        "failed": failure_json(result, run),
        "ups": run.ups,
        "stack_up": run.complete,
        "runs_with_a_failed_up": sum(1 for r in result.runs if r.failure is not None),
    }


def failure_json(result: Result, run: Run) -> dict[str, Any] | None:
    """What failed the median run's first `pulumi up` (the run ended failed; `ups` says how many it took)."""
    if run.failure is None:
        return None
    names = {task.id: task.name for task in result.plan.tasks}
    return {
        "resource": names.get(run.failure.task, run.failure.task),
        "reason": run.failure.reason,
        "at_min": _minutes(run.failure.time),
    }


def limits_applied(plan: Plan, assumptions: Assumptions) -> list[dict[str, Any]]:
    """Each limit the run applied, with its value: what a reviewer checks the model against."""
    units = LINKED_CLONE_UNITS if plan.clone is CloneKind.LINKED else FULL_CLONE_UNITS
    return [
        {"limit": "units per ESXi host", "value": assumptions.host_units},
        {"limit": f"units per clone on each host ({plan.clone.value})", "value": int(units.value)},
        {"limit": "hosts holding a copy of the template", "value": assumptions.template_copies},
        {"limit": "concurrent vCenter operations", "value": assumptions.vcenter_limit},
        {"limit": "downloads at once on the site uplink", "value": plan.pools[UPLINK_POOL]},
        {"limit": "engine checkpoint saves at once", "value": 1 if assumptions.checkpoints else 0},
        {"limit": "pulumi --parallel", "value": assumptions.parallel},
        {"limit": "sshd MaxStartups without the program's drop-in", "value": ":".join(map(str, DEFAULT_MAX_STARTUPS))},
        {"limit": "sshd MaxStartups by host", "value": max_startups_summary(plan)},
        {"limit": "concurrent kubeadm joins before joins fail (estimate)", "value": int(JOIN_FAILURE_THRESHOLD.value)},
        {"limit": "jupyterhub release timeout (s)", "value": hub_timeout(plan)},
    ]


def max_startups_summary(plan: Plan) -> dict[str, int]:
    """MaxStartups setting → how many hosts the commands dial have it."""
    hosts: dict[str, str] = {}
    for task in plan.tasks:
        for step in task.steps:
            if step.dial is not None:
                hosts[step.dial.host] = f"{step.dial.start}:{step.dial.rate}:{step.dial.full}"
    counts: dict[str, int] = defaultdict(int)
    for setting in hosts.values():
        counts[setting] += 1
    return dict(sorted(counts.items()))


def hub_timeout(plan: Plan) -> float | None:
    return next((task.deadline.seconds for task in plan.tasks if task.deadline is not None), None)


def render_text(result: Result) -> str:
    data = to_json(result)
    parallel = "unbounded" if data["parallel"] is None else str(data["parallel"])
    lines = [
        f"{data['stack']}: {data['control_planes']} control planes + {data['workers']} workers "
        f"({data['operations']} operations) on {data['hosts']} ESXi hosts; clone {data['clone']}, "
        f"uplink {data['uplink_gbps']:g} Gbit/s, --parallel {parallel}"
        + (", baked template" if data["baked_template"] else "")
        + f"; {data['runs']} runs, seed {data['seed']}",
        f"  makespan: median {data['makespan_min']:.1f} min, p90 {data['makespan_p90_min']:.1f} min "
        f"(range {data['makespan_range_min'][0]:.1f}-{data['makespan_range_min'][1]:.1f}); the median run "
        f"without any queue: {data['median_run_without_queues_min']:.1f} min",
        "  critical path of the median run (ready → end, minutes; waited in a queue):",
    ]
    for entry in data["critical_path"]:
        waited = f"  waited {entry['waited_min']:.1f}" if entry["waited_min"] >= 0.05 else ""
        lines.append(
            f"    {entry['ready_min']:6.1f} → {entry['end_min']:6.1f}  {entry['resource']} ({entry['kind']}){waited}"
        )
    waits = ", ".join(f"{label} {minutes:.1f}" for label, minutes in data["waits_on_min"].items() if minutes >= 0.05)
    lines.append(f"  waits on (minutes): {waits}")
    failed = data["failed"]
    if failed is not None:
        state = "then it was up" if data["stack_up"] else "still not up"
        lines.append(
            f"  FAILED: the median run's first `pulumi up` failed at {failed['at_min']:.1f} min on "
            f"{failed['resource']}: {failed['reason']}; {data['ups']} `pulumi up`s in all, {state}"
        )
    if data["runs_with_a_failed_up"]:
        lines.append(f"  runs whose first `up` failed: {data['runs_with_a_failed_up']} of {data['runs']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bringup", description=__doc__.splitlines()[0])
    parser.add_argument("stack", nargs="?", help="stack name (config/Pulumi.<stack>.yaml)")
    parser.add_argument("--workers", type=int, nargs="+", help="worker counts (default: the stack file's)")
    parser.add_argument("--hosts", type=int, nargs="+", default=[4], help="ESXi hosts (default 4)")
    parser.add_argument("--parallel", type=int, default=None, help="Pulumi --parallel (default unbounded)")
    parser.add_argument("--runs", type=int, default=11, help="seeded runs per size (default 11)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--clone",
        choices=[kind.value for kind in CloneKind],
        help="how the template is cloned (default: linked if the program asks for it, else vaai-copy)",
    )
    parser.add_argument("--uplink-gbps", type=float, default=SITE_UPLINK_GBPS.value)
    parser.add_argument(
        "--baked-template", action="store_true", help="what-if: the template holds the packages and images"
    )
    parser.add_argument(
        "--template-copies", type=int, default=1, help="what-if: copies of the template on that many hosts (default 1)"
    )
    parser.add_argument(
        "--skip-checkpoints",
        action="store_true",
        help="what-if: PULUMI_SKIP_CHECKPOINTS (the engine saves once, at the end)",
    )
    parser.add_argument(
        "--join-concurrency",
        type=int,
        help="what-if: record the program with this dsaas:joinConcurrency (default: the stack file's)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list, one entry per size and host count")
    parser.add_argument("--table", action="store_true", help="print the duration table as Markdown and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(render_table(), end="")
        return 0
    if not args.stack:
        parser.error("the stack is required (or --table)")
    started = time.perf_counter()
    results: list[Result] = []
    try:
        for workers in args.workers or [None]:
            resources = record(args.stack, workers, args.join_concurrency)
            for hosts in args.hosts:
                assumptions = Assumptions(
                    hosts=hosts,
                    parallel=args.parallel,
                    clone=CloneKind(args.clone) if args.clone else None,
                    uplink_gbps=args.uplink_gbps,
                    baked_template=args.baked_template,
                    template_copies=args.template_copies,
                    checkpoints=not args.skip_checkpoints,
                )
                plan = plan_from_graph(resources, assumptions)
                results.append(simulate_plan(args.stack, plan, assumptions, args.runs, args.seed))
    except (StackFileError, ValueError, sim.ModelError) as error:
        print(f"bringup: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([to_json(result) for result in results], indent=2))
    else:
        print("\n\n".join(render_text(result) for result in results))
        print(f"\n({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
