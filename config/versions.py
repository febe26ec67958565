"""Every version that changes what gets deployed, pinned in one place.

Bumping one of these is a deliberate, reviewed change: it shows up in `pulumi preview` and in the
offline snapshot diff. Each pin says where it comes from and what constrains it.
"""

from __future__ import annotations

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

# The hub image of Z2JH_CHART_VERSION: its Python (and sqlite3 module) run the SQLite online backup
# inside the hub pod, where the database volume is mounted.
HUB_IMAGE: Final = f"quay.io/jupyterhub/k8s-hub:{Z2JH_CHART_VERSION}"
