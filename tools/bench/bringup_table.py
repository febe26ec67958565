"""How long each kind of bring-up step takes, and the limits it queues on, with where each figure comes from.

Every duration is a triangular distribution (low / mode / high, in seconds) so a simulation shows the
spread, not only a point. `estimate=True` says plainly that no published measurement of that figure was
found: it is an engineering estimate, bounded by the sources named beside it. Change a figure here (and
its note), then refresh the table in docs/bringup.md with `python -m tools.bringup --table`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


@dataclass(frozen=True)
class Triangular:
    """A duration in seconds: at least `low`, most often `mode`, at most `high`."""

    low: float
    mode: float
    high: float

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.mode <= self.high:
            raise ValueError(f"need 0 <= low <= mode <= high, got {self}")

    def sample(self, rng: random.Random) -> float:
        if self.low == self.high:
            return self.low
        return rng.triangular(self.low, self.high, self.mode)

    def scaled(self, factor: float) -> Triangular:
        return Triangular(self.low * factor, self.mode * factor, self.high * factor)


@dataclass(frozen=True)
class Figure:
    what: str
    seconds: Triangular
    note: str
    """How the numbers were chosen."""
    estimate: bool
    sources: tuple[str, ...] = ()
    """Keys of `SOURCES`."""


@dataclass(frozen=True)
class Quantity:
    """A limit, size or rate that is not a duration."""

    what: str
    value: float
    unit: str
    note: str
    estimate: bool
    sources: tuple[str, ...] = ()


SOURCES: Final[dict[str, str]] = {
    "vsphere-limits": (
        "VMware vSphere 6.5/6.7 documentation, vCenter Server and Host Management, 'Limits on Simultaneous "
        "Migrations' (docs.vmware.com, GUID-25EA5833-03B5-4EDD-A167-87578B8009B3): every host has a maximum "
        "cost of 8; 'other provisioning operations' (cloning, deployment, cold migration) cost 1, a derived "
        "limit of 8 per host; an operation past a limit is queued until others release their cost. Datastore "
        "and network limits apply to vMotion and Storage vMotion only."
    ),
    "vcenter-tasks": (
        "VMware performance blog, 'vCenter Limits for Tasks Running at the Same Time' (February 2021): vCenter "
        "runs about 640 concurrent operations before it queues; each ESXi 6.x or 7.x host has 16 units for "
        "concurrent operations; an operation costs units on the source and the destination host; 'cloning a VM "
        "to the same host results in 4 units used, so 4 cloning operations can happen at the same time' (2 per "
        "host); a linked clone costs 1 unit and needs a snapshot."
    ),
    "pulumi-checkpoints": (
        "pulumi/pulumi issues 14764 (a 3,222-resource stack: 58 min to create with checkpoints, far less with "
        "PULUMI_SKIP_CHECKPOINTS), 14967 and 10960 (1-3 s per checkpoint save on large states): the engine "
        "writes the whole state after each resource operation, one save at a time."
    ),
    "netapp-vaai": (
        "NetApp KB 'When does the NetApp NFS Plugin for VMware VAAI improve clone performance?' and 'VAAI Support "
        "and Limitations for NFS FlexGroup Volumes in ONTAP': within one volume with FlexClone the SIS clone "
        "engine writes only metadata ('extremely fast'); across volumes or nodes the block copy and spin copy "
        "engines copy every block, offloaded but not accelerated; hole punching keeps thin disks thin but slows "
        "the copy. ONTAP docs 'Support for VMware vStorage over NFS' (copy offload). Without the plug-in, ESXi's "
        "data mover copies the disk through the host."
    ),
    "kubespray-996": (
        "kubespray issue 996 (2017): 6 machines (3 masters, 3 nodes) from an Ubuntu cloud image took 19 minutes, "
        "nearly 4 of them (234 s) in bootstrap-os installing packages with apt; container download tasks took "
        "28-70 s."
    ),
    "kubespray-478": (
        "kubespray issue 478 (2016): 15 min for 10 nodes, 35 min for 50, 65 min for 150, 3 h 40 min for 350."
    ),
    "kubeadm": (
        "kubeadm init output: '[preflight] Pulling images required for setting up a Kubernetes cluster ... This "
        "might take a minute or two, depending on the speed of your internet connection'; the wait-control-plane "
        "phase allows the kubelet up to 4m0s to start the static pods."
    ),
    "image-sizes": (
        "jupyter/docker-stacks issue 62 (datascience-notebook ~5 GB, minimal-notebook ~1.8 GB); nbgallery "
        "'Rationale for minimal Jupyter image' (minimal 2.1 GB, scipy 4.0 GB, datascience 5.6 GB uncompressed); "
        "Unidata science-gateway PR 867 (2023: minimal-notebook 1.58 GB, scipy-notebook 4.19 GB pulled to local "
        "storage)."
    ),
    "pulumi-parallel": (
        "`pulumi up` CLI reference: '-p, --parallel int  Allow P resource operations to run in parallel at once "
        "(1 for no parallelism). Defaults to unbounded.'"
    ),
}


class CloneKind(StrEnum):
    """How vSphere copies the template's disk for a new VM."""

    LINKED = "linked"
    """Linked clone: a delta disk on a snapshot of the template (`clone.linkedClone` in the program)."""
    VAAI_FLEXCLONE = "vaai-flexclone"
    """NFS VAAI plug-in, template and VMs in one FlexVol with FlexClone: metadata-only file clone."""
    VAAI_COPY = "vaai-copy"
    """NFS VAAI plug-in, template in another volume or on another node: the array copies every block."""
    HOST_COPY = "host-copy"
    """No VAAI: ESXi's data mover reads and writes the whole disk over NFS."""


# --- limits, sizes, rates ---------------------------------------------------------------------

HOST_UNITS: Final = Quantity(
    "units each ESXi 6.x/7.x host has for concurrent operations", 16, "units", "", False, ("vcenter-tasks",)
)
FULL_CLONE_UNITS: Final = Quantity(
    "units a full clone holds on its source host and again on its destination host",
    2,
    "units per host",
    "a clone to the template's own host holds 4 units there: 4 such clones at once",
    False,
    ("vcenter-tasks",),
)
LINKED_CLONE_UNITS: Final = Quantity(
    "units a linked clone holds on each host", 1, "units per host", "", False, ("vcenter-tasks",)
)
ENGINE_CHECKPOINT_MS_PER_RESOURCE: Final = Quantity(
    "the engine's checkpoint: milliseconds per resource in the state, each save (file backend, serialized)",
    0.67,
    "ms",
    "estimate: a 3,222-resource create took 58 min with default checkpointing (pulumi/pulumi#14764), which "
    "a save of the whole state after every step, saves one at a time, gives for 0.67 ms per resource; 1-3 s "
    "per save at ~3,000 resources (pulumi/pulumi#14967, #10960) agrees",
    True,
    ("pulumi-checkpoints",),
)
VCENTER_OPERATION_LIMIT: Final = Quantity(
    "concurrent operations per vCenter", 640, "operations", "", False, ("vcenter-tasks",)
)
SITE_UPLINK_GBPS: Final = Quantity(
    "site link to package mirrors and image registries, shared by every node",
    10,
    "Gbit/s",
    "a data center's internet or mirror link; with a pull-through registry on site, that registry's NIC "
    "(`--uplink-gbps`)",
    True,
)
NODE_DOWNLOAD_GBPS: Final = Quantity(
    "what one node's download reaches (apt, or containerd with a few parallel layer downloads)",
    1,
    "Gbit/s",
    "containerd downloads 3 layers at once by default; a registry CDN serves ~30-60 MB/s per connection",
    True,
)
PACKAGE_MB_PER_NODE: Final = Quantity(
    "package bytes a fresh node downloads (apt indexes, base packages, containerd.io, kubelet/kubeadm/kubectl "
    "with cri-tools and kubernetes-cni)",
    180,
    "MB",
    ".deb sizes in the Ubuntu, Docker and pkgs.k8s.io repositories: containerd.io ~30 MB, the Kubernetes "
    "packages ~70 MB, Ubuntu noble indexes ~60 MB",
    True,
)
UNPACK_MB_PER_SECOND: Final = Quantity(
    "image layer decompression and write on one node",
    200,
    "MB/s",
    "gzip decompression is single-threaded per layer (~100-300 MB/s)",
    True,
)
LIMITS: Final = (
    HOST_UNITS,
    FULL_CLONE_UNITS,
    LINKED_CLONE_UNITS,
    ENGINE_CHECKPOINT_MS_PER_RESOURCE,
    VCENTER_OPERATION_LIMIT,
    SITE_UPLINK_GBPS,
    NODE_DOWNLOAD_GBPS,
    PACKAGE_MB_PER_NODE,
    UNPACK_MB_PER_SECOND,
)


@dataclass(frozen=True)
class ImageSize:
    compressed_gb: float
    """What is downloaded."""
    unpacked_gb: float
    """What is written to the node's disk."""
    shares_base: bool
    """Built on jupyter/docker-stacks' minimal-notebook: those layers are downloaded once per node."""


DOCKER_STACKS_BASE: Final = ImageSize(0.6, 1.6, True)
"""quay.io/jupyter/minimal-notebook: the base the other docker-stacks images are built on."""
IMAGE_SIZES: Final[dict[str, ImageSize]] = {
    "quay.io/jupyter/minimal-notebook": DOCKER_STACKS_BASE,
    "quay.io/jupyter/scipy-notebook": ImageSize(1.5, 4.2, True),
    "quay.io/jupyter/r-notebook": ImageSize(1.2, 3.2, True),
    "quay.io/jupyter/datascience-notebook": ImageSize(2.3, 6.5, True),
    "quay.io/jupyter/pytorch-notebook": ImageSize(2.6, 7.0, True),
    "quay.io/jupyter/tensorflow-notebook": ImageSize(2.4, 6.5, True),
}
UNKNOWN_IMAGE: Final = ImageSize(1.5, 4.0, False)
"""Any other image: a mid-sized data science image (estimate)."""


def image_repository(image: str) -> str:
    """`quay.io/jupyter/r-notebook:2025-10-06` → `quay.io/jupyter/r-notebook` (digests too)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


def image_gb_per_node(images: list[str]) -> tuple[float, float]:
    """(compressed GB, unpacked GB) that one node pulls for these images; shared docker-stacks layers once."""
    sizes = [IMAGE_SIZES.get(repository, UNKNOWN_IMAGE) for repository in sorted({image_repository(i) for i in images})]
    if not sizes:
        return 0.0, 0.0
    shared = any(size.shares_base for size in sizes)
    base = DOCKER_STACKS_BASE if shared else ImageSize(0, 0, False)
    compressed = base.compressed_gb + sum(s.compressed_gb - (base.compressed_gb if s.shares_base else 0) for s in sizes)
    unpacked = base.unpacked_gb + sum(s.unpacked_gb - (base.unpacked_gb if s.shares_base else 0) for s in sizes)
    return compressed, unpacked


# --- durations ---------------------------------------------------------------------------------

CLONE: Final[dict[CloneKind, Figure]] = {
    CloneKind.LINKED: Figure(
        "template clone, linked (delta disk on the template's snapshot)",
        Triangular(3, 8, 20),
        "no data is copied",
        True,
        ("vcenter-tasks",),
    ),
    CloneKind.VAAI_FLEXCLONE: Figure(
        "template clone, NFS VAAI within one FlexVol with FlexClone (metadata only)",
        Triangular(8, 15, 45),
        "vCenter task overhead dominates",
        True,
        ("netapp-vaai",),
    ),
    CloneKind.VAAI_COPY: Figure(
        "template clone, NFS VAAI copy offload across volumes (the array copies every block)",
        Triangular(30, 60, 180),
        "a 20 GiB thin cloud-image disk, hole punching on",
        True,
        ("netapp-vaai",),
    ),
    CloneKind.HOST_COPY: Figure(
        "template clone, no VAAI (ESXi's data mover copies the disk over NFS)",
        Triangular(60, 150, 420),
        "20 GiB through the host at 100-300 MB/s",
        True,
        ("netapp-vaai",),
    ),
}

STEP: Final[dict[str, Figure]] = {
    "first-boot": Figure(
        "power-on and first boot until the guest reports a routable address",
        Triangular(30, 60, 150),
        "Ubuntu 24.04 cloud image with open-vm-tools; the vSphere provider waits up to 5 min "
        "(wait_for_guest_net_timeout)",
        True,
    ),
    "cloud-init": Figure(
        "rest of cloud-init (package_update, base packages), which prepare waits for",
        Triangular(45, 90, 240),
        "with the package installs below, about kubespray's 234 s apt bootstrap",
        True,
        ("kubespray-996",),
    ),
    "package-install": Figure(
        "apt repositories, containerd and kubelet/kubeadm/kubectl unpacked and configured",
        Triangular(45, 90, 300),
        "the high end covers unattended-upgrades holding the dpkg lock after first boot",
        True,
        ("kubespray-996",),
    ),
    "prepare-baked": Figure(
        "prepare on a template that already has the packages (`--baked-template`: checks only)",
        Triangular(10, 20, 45),
        "the script's idempotent checks and a containerd restart",
        True,
    ),
    "image-fetch": Figure(
        "the template's cloud image OVA (about 0.6 GB) downloaded and checked on the operator's machine",
        Triangular(10, 40, 180),
        "estimate: 0.6 GB at 30-500 Mbit/s to cloud-images.ubuntu.com; a cached copy is only checked",
        True,
    ),
    "template-deploy": Figure(
        "the OVA deployed as the template VM (disk upload to an ESXi host over NFC) and its first boot",
        Triangular(90, 180, 420),
        "estimate: a 3.5 GiB disk written from a 0.6 GB stream-optimised VMDK, then a cloud-init boot",
        True,
    ),
    "template-finish": Figure(
        "the template cleans up and powers off; the wait sees it at its next poll (every 15 s)",
        Triangular(15, 30, 60),
        "cloud-init clean, apt-get clean, shutdown, half a poll interval",
        True,
    ),
    "template-sealed": Figure(
        "a per-host copy of the template seals itself and powers off; the wait sees it at its next poll",
        Triangular(20, 40, 90),
        "estimate: cloud-init's final stage, cloud-init clean, shutdown, half a 15 s poll",
        True,
    ),
    "kube-vip": Figure("kube-vip static pod manifest", Triangular(3, 6, 20), "writes one file", True),
    "kubeadm-init": Figure(
        "kubeadm init (control-plane images, certificates, static pods, addons)",
        Triangular(60, 100, 240),
        "image pull 'a minute or two', static pods within 4 min",
        True,
        ("kubeadm",),
    ),
    "join-control-plane": Figure(
        "kubeadm join --control-plane (images, etcd member, static pods)",
        Triangular(60, 90, 240),
        "as kubeadm init, etcd grows by one member",
        True,
        ("kubeadm",),
    ),
    "join-worker": Figure(
        "kubeadm join of a worker (preflight, TLS bootstrap, kubelet start)",
        Triangular(15, 30, 90),
        "kube-proxy and CNI pods pull their images after the join, which does not wait for them",
        True,
        ("kubespray-996",),
    ),
    "join-credentials": Figure(
        "join credentials on the first control plane (kubeadm token create, upload-certs)",
        Triangular(3, 8, 20),
        "two kubeadm calls against a running API server",
        True,
    ),
    "ssh-command": Figure(
        "short script over SSH (CA hash, kubeconfig, SSH keys, membership label)",
        Triangular(2, 4, 15),
        "SSH handshake and a kubectl call",
        True,
    ),
    "block-storage": Figure(
        "iSCSI and multipath packages and services",
        Triangular(20, 45, 150),
        "two small apt installs",
        True,
    ),
    "wait-for-operator": Figure(
        "Trident operator installs Trident until TridentOrchestrator reports Installed",
        Triangular(60, 150, 480),
        "controller and node pods start; our gate allows 15 min",
        True,
    ),
    "helm-calico": Figure(
        "Helm release tigera-operator (atomic: waits for the operator)",
        Triangular(30, 60, 180),
        "one Deployment pulled and rolled out",
        True,
    ),
    "helm-trident": Figure(
        "Helm release trident-operator (atomic: waits for the operator)",
        Triangular(30, 60, 180),
        "one Deployment pulled and rolled out",
        True,
    ),
    "helm-jupyterhub": Figure(
        "Helm release jupyterhub, without the image pre-pull (hub, proxy, user scheduler)",
        Triangular(45, 90, 240),
        "hub and proxy images (~100-300 MB) and their readiness probes",
        True,
    ),
    "helm": Figure("any other Helm release", Triangular(30, 60, 180), "", True),
    "manifests": Figure(
        "yaml/v2 ConfigGroup (CRDs, controller, classes) applied",
        Triangular(3, 8, 30),
        "server-side apply of a few objects",
        True,
    ),
    "kubernetes-object": Figure(
        "one Kubernetes object (namespace, secret, storage class, backend)",
        Triangular(1, 2, 6),
        "one API call and Pulumi's readiness check",
        True,
    ),
    "vsphere-rule": Figure("DRS anti-affinity rule", Triangular(2, 5, 15), "one vCenter task", True),
    "provider": Figure("provider configuration", Triangular(0.5, 1, 3), "", True),
    "local": Figure("key, password or random value made locally", Triangular(0, 0.1, 0.5), "", True),
    "other": Figure("any other resource", Triangular(1, 3, 10), "", True),
}

DOWNLOAD_JITTER: Final = Triangular(0.9, 1.0, 1.5)
"""Each computed download or unpack time is multiplied by a draw from this (mirrors and disks vary)."""


def _refs(keys: tuple[str, ...]) -> str:
    order = list(SOURCES)
    return " ".join(f"[{order.index(key) + 1}]" for key in keys)


def render_table() -> str:
    """The duration table, limits, image sizes and numbered sources as Markdown (for docs/bringup.md)."""
    yes = {True: "estimate", False: "published"}
    lines = ["| step | low s | mode s | high s | figure | note | sources |", "|---|---:|---:|---:|---|---|---|"]
    for figure in [*CLONE.values(), *STEP.values()]:
        t = figure.seconds
        lines.append(
            f"| {figure.what} | {t.low:g} | {t.mode:g} | {t.high:g} | {yes[figure.estimate]} | {figure.note} | "
            f"{_refs(figure.sources)} |"
        )
    lines += ["", "| limit, size or rate | value | unit | figure | note | sources |", "|---|---:|---|---|---|---|"]
    for quantity in LIMITS:
        lines.append(
            f"| {quantity.what} | {quantity.value:g} | {quantity.unit} | {yes[quantity.estimate]} | {quantity.note} | "
            f"{_refs(quantity.sources)} |"
        )
    lines += ["", "| image | compressed GB | unpacked GB | figure | sources |", "|---|---:|---:|---|---|"]
    for repository, size in IMAGE_SIZES.items():
        lines.append(
            f"| `{repository}` | {size.compressed_gb:g} | {size.unpacked_gb:g} | estimate (~35-40 % compressed) | "
            f"{_refs(('image-sizes',))} |"
        )
    lines.append(f"| any other image | {UNKNOWN_IMAGE.compressed_gb:g} | {UNKNOWN_IMAGE.unpacked_gb:g} | estimate | |")
    lines += ["", "Sources:", ""]
    lines += [f"{number}. {text}" for number, text in enumerate(SOURCES.values(), start=1)]
    return "\n".join(lines) + "\n"
