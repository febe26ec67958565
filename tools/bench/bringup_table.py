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

from components.hub_render import (
    DOCKER_STACKS_BASE,
    IMAGE_SIZES,
    UNKNOWN_IMAGE,
    ImageSize,
    image_gb_per_node,
    image_repository,
)

__all__ = ["DOCKER_STACKS_BASE", "IMAGE_SIZES", "UNKNOWN_IMAGE", "ImageSize", "image_gb_per_node", "image_repository"]


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
    "pulumi-engine-measured": (
        "Measured here on 2026-12-04 with the real engine: the Pulumi CLI v3.274.0 built from its Go module "
        "(tools/engine), the file backend, an inline program (automation API) of 500 and 1,500 component "
        "resources whose outputs hold 0.2, 2 and 8 KB, `pulumi up` with and without PULUMI_SKIP_CHECKPOINTS, on 2 "
        "cores with other work running (tools/bench/engine_checkpoints.py): each save costs 0.085 ms (0.2 KB), "
        "0.099 ms (2 KB) and 0.13 ms (8 KB) per resource in the state; saves of the stack file counted with "
        "strace: 3 per component. pkg/backend/snapshot.go (v3.274.0): a create saves when it begins (doCreate marks "
        "the operation pending) and when it ends (createSnapshotMutation.End), and RegisterResourceOutputs saves "
        "again; saves go one at a time (SnapshotManager.mutate)."
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
    "sshd-maxstartups": (
        "sshd_config(5), MaxStartups: 'Specifies the maximum number of concurrent unauthenticated connections to "
        "the SSH daemon ... The default is 10:30:100. Alternatively, random early drop can be enabled by "
        'specifying the three colon separated values start:rate:full (e.g. "10:30:60"). sshd(8) will refuse '
        "connection attempts with a probability of rate/100 (30%) if there are currently start (10) "
        "unauthenticated connections. The probability increases linearly and all connection attempts are refused "
        "if the number of unauthenticated connections reaches full (60).' (man.openbsd.org/sshd_config)"
    ),
    "pulumi-command-dial": (
        "pulumi-command provider/pkg/provider/remote/connection.go (github.com/pulumi/pulumi-command, commit "
        "010bd8e): dialWithRetry retries a failed dial through pulumi's retry.Until until `dials > "
        "dialErrorLimit` (default 10; -1 unlimited; this program sets 60, components/kubeadm.py); "
        "sdk/go/common/util/retry/until.go (github.com/pulumi/pulumi, commit 1b59498): DefaultDelay 100 ms, "
        "DefaultBackoff 1.5, DefaultMaxDelay 5 s, no jitter."
    ),
    "kubeadm-3181": (
        "kubernetes/kubeadm issue 3181 (2025): 'kubeadm join' of 300 nodes at the same time fails in preflight "
        "('failed to get config map ... context deadline exceeded'); the maintainers advise against joining "
        "hundreds of nodes at once. No rate of failure against concurrency is published."
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
    0.12,
    "ms",
    "measured with the real engine (file backend) for prod's mean of about 5 KB of inputs and outputs per "
    "resource; the service backend's reports (pulumi/pulumi#14764: 58 min for 3,222 resources) are about 5x "
    "this, the figure the model used before it was measured",
    False,
    ("pulumi-engine-measured", "pulumi-checkpoints"),
)
ENGINE_SAVES_PER_CREATE: Final = Quantity(
    "the engine's saves of the whole state per created resource", 2, "saves", "", False, ("pulumi-engine-measured",)
)
ENGINE_SAVES_PER_COMPONENT: Final = Quantity(
    "the engine's saves per component resource (created, then its outputs registered)",
    3,
    "saves",
    "",
    False,
    ("pulumi-engine-measured",),
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
SSHD_DEFAULT_MAX_STARTUPS: Final = Quantity(
    "sshd's MaxStartups start on a host without the program's drop-in (unauthenticated connections before "
    "sshd refuses new ones at random)",
    10,
    "connections",
    "the default 10:30:100: 30 % refused at 10, rising linearly to all at 100; the control planes get "
    "`MaxStartups 2w+10:30:4w+20` (w: dsaas:joinConcurrency) from cloud-init, read from each VM's user data",
    False,
    ("sshd-maxstartups",),
)
DIAL_FIRST_DELAY_SECONDS: Final = Quantity(
    "pulumi-command's wait after a refused dial (then ×1.5 each retry, at most 5 s, no jitter)",
    0.1,
    "s",
    "dialErrorLimit refused dials are retried (the program's connections set 60, the provider's default is 10); "
    "one more fails the command",
    False,
    ("pulumi-command-dial",),
)
DIAL_BACKOFF: Final = 1.5
DIAL_MAX_DELAY_SECONDS: Final = 5.0
SSH_HANDSHAKE: Final = Figure(
    "SSH handshake until authenticated (the time a connection counts against MaxStartups)",
    Triangular(0.1, 0.3, 1.5),
    "estimate: TCP, key exchange and public-key authentication on a LAN; the high end is a busy control plane",
    True,
)
JOIN_FAILURE_THRESHOLD: Final = Quantity(
    "concurrent kubeadm joins the API server absorbs without failed joins",
    100,
    "joins",
    "estimate: 300 at once fail (kubeadm#3181); this program's window (dsaas:joinConcurrency, default 50) stays "
    "below it",
    True,
    ("kubeadm-3181",),
)
JOIN_FAILURE_PER_EXTRA_JOIN: Final = Quantity(
    "probability that a join fails, for each concurrent join beyond that threshold",
    0.001,
    "per join",
    "estimate: 20 % of joins fail at 300 at once; a failed join fails its `pulumi up`",
    True,
    ("kubeadm-3181",),
)
LIMITS: Final = (
    HOST_UNITS,
    FULL_CLONE_UNITS,
    LINKED_CLONE_UNITS,
    ENGINE_CHECKPOINT_MS_PER_RESOURCE,
    ENGINE_SAVES_PER_CREATE,
    ENGINE_SAVES_PER_COMPONENT,
    VCENTER_OPERATION_LIMIT,
    SITE_UPLINK_GBPS,
    NODE_DOWNLOAD_GBPS,
    PACKAGE_MB_PER_NODE,
    UNPACK_MB_PER_SECOND,
    SSHD_DEFAULT_MAX_STARTUPS,
    DIAL_FIRST_DELAY_SECONDS,
    JOIN_FAILURE_THRESHOLD,
    JOIN_FAILURE_PER_EXTRA_JOIN,
)


def dial_delays(dial_error_limit: int) -> tuple[float, ...]:
    """pulumi-command's waits after each refused dial, `dial_error_limit` of them (then the command fails)."""
    delays: list[float] = []
    delay = DIAL_FIRST_DELAY_SECONDS.value
    for _ in range(dial_error_limit):
        delays.append(min(delay, DIAL_MAX_DELAY_SECONDS))
        delay *= DIAL_BACKOFF
    return tuple(delays)


@dataclass(frozen=True)
class NodeImage:
    repository: str
    compressed_gb: float
    unpacked_gb: float
    pulled_by: str
    """Which layer pulls it on every node: kube-proxy (kubeadm), calico (tigera-operator), trident."""


NODE_IMAGES: Final[tuple[NodeImage, ...]] = (
    NodeImage("registry.k8s.io/kube-proxy", 0.03, 0.09, "kube-proxy"),
    NodeImage("quay.io/calico/node", 0.14, 0.36, "calico"),
    NodeImage("quay.io/calico/cni", 0.09, 0.21, "calico"),
    NodeImage("quay.io/calico/csi, node-driver-registrar, pod2daemon-flexvol", 0.03, 0.07, "calico"),
    NodeImage("docker.io/netapp/trident", 0.11, 0.3, "trident"),
    NodeImage("registry.k8s.io/sig-storage/csi-node-driver-registrar", 0.01, 0.03, "trident"),
)
"""What every node pulls for the cluster's own DaemonSets; estimates inside the ~0.3-0.5 GB per node that
docs/bringup.md gave for them (no registry manifest was read)."""


def node_image_gb(pulled_by: set[str]) -> tuple[float, float]:
    """(compressed GB, unpacked GB) of the per-node images these layers pull."""
    chosen = [image for image in NODE_IMAGES if image.pulled_by in pulled_by]
    return sum(i.compressed_gb for i in chosen), sum(i.unpacked_gb for i in chosen)


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


def _figure_kind(estimate: bool, sources: tuple[str, ...]) -> str:
    if estimate:
        return "estimate"
    return "measured here" if sources[:1] == ("pulumi-engine-measured",) else "published"


def render_table() -> str:
    """The duration table, limits, image sizes and numbered sources as Markdown (for docs/bringup.md)."""
    lines = ["| step | low s | mode s | high s | figure | note | sources |", "|---|---:|---:|---:|---|---|---|"]
    for figure in [*CLONE.values(), *STEP.values(), SSH_HANDSHAKE]:
        t, kind = figure.seconds, _figure_kind(figure.estimate, figure.sources)
        lines.append(
            f"| {figure.what} | {t.low:g} | {t.mode:g} | {t.high:g} | {kind} | {figure.note} | "
            f"{_refs(figure.sources)} |"
        )
    lines += ["", "| limit, size or rate | value | unit | figure | note | sources |", "|---|---:|---|---|---|---|"]
    for quantity in LIMITS:
        kind = _figure_kind(quantity.estimate, quantity.sources)
        lines.append(
            f"| {quantity.what} | {quantity.value:g} | {quantity.unit} | {kind} | {quantity.note} | "
            f"{_refs(quantity.sources)} |"
        )
    lines += ["", "| image | compressed GB | unpacked GB | figure | sources |", "|---|---:|---:|---|---|"]
    for repository, size in IMAGE_SIZES.items():
        lines.append(
            f"| `{repository}` | {size.compressed_gb:g} | {size.unpacked_gb:g} | estimate (~35-40 % compressed) | "
            f"{_refs(('image-sizes',))} |"
        )
    lines.append(f"| any other image | {UNKNOWN_IMAGE.compressed_gb:g} | {UNKNOWN_IMAGE.unpacked_gb:g} | estimate | |")
    lines += [
        "",
        "| per-node image (every node, not awaited by Pulumi) | compressed GB | unpacked GB | pulled by | figure |",
        "|---|---:|---:|---|---|",
    ]
    for node_image in NODE_IMAGES:
        lines.append(
            f"| `{node_image.repository}` | {node_image.compressed_gb:g} | {node_image.unpacked_gb:g} | "
            f"{node_image.pulled_by} | estimate |"
        )
    lines += ["", "Sources:", ""]
    lines += [f"{number}. {text}" for number, text in enumerate(SOURCES.values(), start=1)]
    return "\n".join(lines) + "\n"
