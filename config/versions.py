"""Every version that changes what gets deployed, pinned in one place.

Bumping one of these is a deliberate, reviewed change: it shows up in `pulumi preview` and in the
offline snapshot diff. Each pin says where it comes from and what constrains it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Kubernetes. The lower bound 1.34 comes from Trident 26.06: its csi-snapshotter (v8.4+) watches
# VolumeGroupSnapshot v1beta2, which the API server serves only from 1.34 (NetApp/trident#1114).
# The kubeadm config API v1beta4 used below needs kubeadm >= 1.31, and z2jh 4.4.0 needs >= 1.28,
# so neither narrows the range further. The upper bound is the newest minor in Trident 26.06's
# support matrix (1.27 - 1.36: KubernetesVersionMax in its config/config.go; the operator refuses
# newer clusters). 1.35 is the default: supported upstream until
# early 2027 and in the middle of both support windows.
SUPPORTED_KUBERNETES_MINORS: Final[tuple[str, ...]] = ("1.34", "1.35", "1.36")
DEFAULT_KUBERNETES_VERSION: Final = "1.35.1"

# kubeadm configuration API (kubeadm.k8s.io/v1beta4, GA since kubeadm 1.31).
KUBEADM_CONFIG_API: Final = "kubeadm.k8s.io/v1beta4"

# containerd: Kubernetes 1.35 ends support for containerd 1.x, so the 2.x line is required.
# Installed from Docker's apt repository (package containerd.io), matched by upstream version.
CONTAINERD_VERSION: Final = "2.1.4"

# apt repository signing keys, pinned by their primary key's fingerprint: prepare-node.sh downloads each
# key over HTTPS and trusts it only if the file holds exactly this key, so a tampered download, mirror or
# proxy cannot slip in a key of its own. Docker's "Docker Release (CE deb)" key (docker/docs
# engine/install/debian.md: "Verify that you now have the key with the fingerprint 9DC8 5822 ...").
# pkgs.k8s.io's key is the same for every core:/stable:/v1.x repository (the isv:kubernetes OBS
# project's; kubernetes/website#42718 asks the docs to check it); its renewals keep the fingerprint.
DOCKER_APT_KEY_FINGERPRINT: Final = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
KUBERNETES_APT_KEY_FINGERPRINT: Final = "DE15B14486CD377B9E876E1A234654DA9A296436"

# kube-vip announces the control-plane virtual IP (ARP, leader election) as a static pod.
KUBE_VIP_IMAGE: Final = "ghcr.io/kube-vip/kube-vip:v1.0.4"

# Calico through the tigera-operator Helm chart; it enforces NetworkPolicy, which z2jh relies on.
CALICO_CHART_REPOSITORY: Final = "https://docs.tigera.io/calico/charts"
CALICO_CHART_VERSION: Final = "v3.31.4"

# NetApp Trident through its operator chart. Chart 100.2606.0 installs Trident 26.06.0, which
# supports Kubernetes 1.27 - 1.36 (see above). The chart repository is NetApp's own.
TRIDENT_CHART_REPOSITORY: Final = "https://netapp.github.io/trident-helm-chart"
TRIDENT_CHART_VERSION: Final = "100.2606.0"
TRIDENT_VERSION: Final = "26.06.0"
# The chart truncates the autosupport tag to five characters (26.06).
TRIDENT_AUTOSUPPORT_TAG: Final = "26.06"

# CSI external-snapshotter: the VolumeSnapshot / VolumeGroupSnapshot CRDs and the snapshot-controller,
# which kubeadm clusters lack. v8.6.0 because Trident 26.06 runs csi-snapshotter v8.6.0, and for a v8.6+
# sidecar its operator turns volume group snapshots on only when the CRDs serve VolumeGroupSnapshot v1
# (GA in v8.6.0; NetApp/trident cli/k8s_client/feature_gate.go, volumeGroupSnapshotRequiredAPIs).
EXTERNAL_SNAPSHOTTER_VERSION: Final = "v8.6.0"
EXTERNAL_SNAPSHOTTER_RAW_URL: Final = "https://raw.githubusercontent.com/kubernetes-csi/external-snapshotter"
# The CRDs are read from the commit the v8.6.0 tag points at, not from the tag: a tag can be re-pushed, a
# commit ID is the hash of the tree it names, so the files applied are the ones vendored and digested in
# tests/upstream/manifests.yaml (snapshot-crds), which tests/controlplane/test_objects.py rechecks.
EXTERNAL_SNAPSHOTTER_COMMIT: Final = "78e32cd84e0abec2621924a30e38c755f93e180a"
# The v8.6.0 tag's controller manifest still runs the v8.5.0 image (release tags lag their deploy/
# manifests by one). Upstream's next change to it, commit 1d996ef "deploy: update sidecar image
# versions", changes only that image line to v8.6.0; the controller files are applied from that
# immutable commit so CRDs, controller and Trident's sidecar are one release.
SNAPSHOT_CONTROLLER_MANIFEST_REF: Final = "1d996efb33c8a2ec38d4dabf85aa59f611aa9d22"
SNAPSHOT_CONTROLLER_IMAGE: Final = "registry.k8s.io/sig-storage/snapshot-controller:v8.6.0"

# Zero to JupyterHub: chart 4.4.0's hub image ships jupyterhub 5.5.0, jupyterhub-kubespawner 7.0.0
# and jupyterhub-ldapauthenticator 2.0.2 (images/hub/requirements.txt at tag 4.4.0); the tests load
# our hub config into exactly those versions. Its values schema is vendored under tests/upstream.
Z2JH_CHART_REPOSITORY: Final = "https://hub.jupyter.org/helm-chart/"
Z2JH_CHART_VERSION: Final = "4.4.0"
# What that chart's hub image runs (for the environment manifest; the tests pin the same versions).
Z2JH_HUB_COMPONENTS: Final[dict[str, str]] = {
    "jupyterhub": "5.5.0",
    "jupyterhub-kubespawner": "7.0.0",
    "jupyterhub-ldapauthenticator": "2.0.2",
}

# Jupyter Docker Stacks images of the built-in profiles. Date tags are immutable weekly builds;
# both images are built together, so the same date gives matching Python/JupyterLab versions.
NOTEBOOK_IMAGES: Final[dict[str, str]] = {
    "basic": "quay.io/jupyter/minimal-notebook:2025-10-06",
    "datascience": "quay.io/jupyter/datascience-notebook:2025-10-06",
}

# Velero (dsaas:backup) through the vmware-tanzu chart. Chart 12.1.0 (tag velero-12.1.0 of
# vmware-tanzu/helm-charts) ships Velero v1.18.1 (its appVersion and image tag, set again here).
# velero-plugin-for-aws v1.14.x is the line its README lists for Velero v1.18.x; v1.10+ reads the
# storage location's `checksumAlgorithm` ("" turns the CRC32 default off for older ONTAP S3).
VELERO_CHART_REPOSITORY: Final = "https://vmware-tanzu.github.io/helm-charts"
VELERO_CHART_VERSION: Final = "12.1.0"
VELERO_IMAGE_REPOSITORY: Final = "docker.io/velero/velero"
VELERO_IMAGE_TAG: Final = "v1.18.1"
VELERO_PLUGIN_FOR_AWS_IMAGE: Final = "docker.io/velero/velero-plugin-for-aws:v1.14.0"

# The official kubectl image (registry.k8s.io/kubectl, debian-base since kubernetes/kubernetes#119592,
# so it has bash and jq): the inventory job, the hub database job and Velero's CRD upgrade job.
# kubectl supports one minor of skew either way, so v1.35 serves every minor in
# SUPPORTED_KUBERNETES_MINORS (1.34 - 1.36); bump it with DEFAULT_KUBERNETES_VERSION.
KUBECTL_IMAGE_REPOSITORY: Final = "registry.k8s.io/kubectl"
KUBECTL_IMAGE_TAG: Final = "v1.35.1"
KUBECTL_IMAGE: Final = f"{KUBECTL_IMAGE_REPOSITORY}:{KUBECTL_IMAGE_TAG}"

# AWS CLI v2 (amazon/aws-cli) uploads the inventory and the hub database. It honours
# AWS_REQUEST_CHECKSUM_CALCULATION=when_required (2.23+), which older ONTAP S3 releases need.
AWS_CLI_IMAGE: Final = "docker.io/amazon/aws-cli:2.35.10"

# The official PostgreSQL image's client dumps a PostgreSQL hub database (dsaas:hub.database.backup pg_dump).
# pg_dump reads every server from 9.2 up to its own major and refuses a newer server, so the newest major:
# 18.4 on Debian trixie. PostgreSQL's releases have two parts (18.4), and Docker's official images re-push a
# tag whenever their Debian base changes, so the tag is pinned to one build by its digest: the multi-platform
# index docker-library/repo-info records for postgres:18.4-trixie (repos/postgres/remote/18.4-trixie.md at
# 475cf910d0be, built 2026-07-16). A server of a newer major needs this bumped (the job says so).
POSTGRES_CLIENT_MAJOR: Final = 18
POSTGRES_CLIENT_IMAGE: Final = (
    f"docker.io/library/postgres:{POSTGRES_CLIENT_MAJOR}.4-trixie"
    "@sha256:3a82e1f56c8f0f5616a11103ac3d47e632c3938698946a7ad26da0df1334744a"
)

# The hub image of Z2JH_CHART_VERSION: its Python (and sqlite3 module) run the SQLite online backup
# inside the hub pod, where the database volume is mounted.
HUB_IMAGE: Final = f"quay.io/jupyterhub/k8s-hub:{Z2JH_CHART_VERSION}"


@dataclass(frozen=True)
class KubernetesSupport:
    """The Kubernetes minors one pinned component supports, and where that is stated upstream."""

    component: str
    """What is pinned, with its version as deployed (e.g. `Calico v3.31.4`)."""
    pin: str
    """The constant above to change when the target minor is outside this range."""
    oldest: str
    newest: str | None
    """None: upstream states no upper bound (the component follows the API server's stable APIs)."""
    source: str

    def supports(self, minor: str) -> bool:
        key = _minor_key(minor)
        return key >= _minor_key(self.oldest) and (self.newest is None or key <= _minor_key(self.newest))

    @property
    def range(self) -> str:
        return f"{self.oldest} - {self.newest}" if self.newest else f"{self.oldest} and newer"


def _minor_key(minor: str) -> tuple[int, int]:
    major, number = minor.split(".")[:2]
    return int(major), int(number)


# Checked before an upgrade (or a first `up`) starts: a target minor outside any range here is refused, naming
# the pin to bump first (config/upgrade.py). Each range is what upstream states for the pinned release.
COMPONENT_KUBERNETES_SUPPORT: Final[tuple[KubernetesSupport, ...]] = (
    KubernetesSupport(
        f"Calico {CALICO_CHART_VERSION}",
        "CALICO_CHART_VERSION",
        "1.33",
        "1.35",
        # Calico tests each release against the three newest minors ("stable, stable-1 and stable-2", its
        # maintainers in projectcalico discussion #11717, which added 1.35 to v3.31's list on
        # docs.tigera.io .../getting-started/kubernetes/requirements); 1.36 needed Calico v3.32
        # (Netcracker/KubeMarine#807: "calico v3.32.0 for k8s 1.36, 1.35 and 1.34 (versions tested by calico)").
        "docs.tigera.io calico/latest/getting-started/kubernetes/requirements; projectcalico/calico discussion 11717",
    ),
    KubernetesSupport(
        f"Trident {TRIDENT_VERSION}",
        "TRIDENT_CHART_VERSION",
        "1.27",
        "1.36",
        "NetApp/trident config/config.go KubernetesVersionMin/Max (the operator refuses other clusters)",
    ),
    KubernetesSupport(
        f"snapshot-controller {EXTERNAL_SNAPSHOTTER_VERSION}",
        "EXTERNAL_SNAPSHOTTER_VERSION",
        # VolumeSnapshot v1 is served from 1.20 (kubernetes-csi/external-snapshotter README); its CRDs are
        # ours, not the API server's, so no upper bound is stated. RKE2 ships snapshot-controller v8.6.0
        # with Kubernetes v1.36 (rancher hardened-snapshot-controller:v8.6.0 beside hardened-kubernetes:v1.36.4).
        "1.20",
        None,
        "kubernetes-csi/external-snapshotter README (snapshot API v1 GA in 1.20); "
        "kubernetes-csi/docs book/src/snapshot-controller.md",
    ),
    KubernetesSupport(
        f"z2jh {Z2JH_CHART_VERSION} (with its user scheduler)",
        "Z2JH_CHART_VERSION",
        # The chart's Chart.yaml: kubeVersion ">=1.28.0-0". Its user scheduler runs kube-scheduler at the
        # cluster's own version (components/hub_render.py), so it moves with every upgrade.
        "1.28",
        None,
        "zero-to-jupyterhub-k8s 4.4.0 Chart.yaml kubeVersion (vendored under ../shared/upstream)",
    ),
    KubernetesSupport(
        f"Velero {VELERO_IMAGE_TAG}",
        "VELERO_CHART_VERSION",
        # Velero's compatibility matrix (its README): "Expected Kubernetes version compatibility 1.18-latest"
        # for every release since 1.13 (tested for 1.17 on 1.31 - 1.34).
        "1.18",
        None,
        "vmware-tanzu/velero README, Velero compatibility matrix",
    ),
    KubernetesSupport(
        f"kube-vip {KUBE_VIP_IMAGE.rsplit(':', 1)[1]}",
        "KUBE_VIP_IMAGE",
        # kube-vip publishes no matrix; from 1.29 kubeadm's admin.conf has no rights before init, and kube-vip
        # works there only with super-admin.conf (kube-vip issue 684), which this program does.
        "1.29",
        None,
        "kube-vip.io docs/installation/static; kube-vip/kube-vip issue 684",
    ),
)
