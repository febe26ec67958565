"""Every version that changes what gets deployed, pinned in one place.

Bumping one of these is a deliberate, reviewed change: it shows up in `pulumi preview` and in the
offline snapshot diff. Each pin says where it comes from and what constrains it.
"""

from __future__ import annotations

from typing import Final

# Kubernetes. The lower bound 1.34 comes from Trident 26.06: its csi-snapshotter (v8.4+) watches
# VolumeGroupSnapshot v1beta2, which the API server serves only from 1.34 (NetApp/trident#1114).
# The kubeadm config API v1beta4 used below needs kubeadm >= 1.31, and z2jh 4.4.0 needs >= 1.28,
# so neither narrows the range further. The upper bound is the newest minor released and covered
# by Trident 26.06's support matrix (1.27 - 1.37) that we have validated manifests against
# (kubernetes-validate ships schemas up to 1.37). 1.35 is the default: supported upstream until
# early 2027 and in the middle of both support windows.
SUPPORTED_KUBERNETES_MINORS: Final[tuple[str, ...]] = ("1.34", "1.35", "1.36")
DEFAULT_KUBERNETES_VERSION: Final = "1.35.1"

# kubeadm configuration API (kubeadm.k8s.io/v1beta4, GA since kubeadm 1.31).
KUBEADM_CONFIG_API: Final = "kubeadm.k8s.io/v1beta4"

# containerd: Kubernetes 1.35 ends support for containerd 1.x, so the 2.x line is required.
# Installed from Docker's apt repository (package containerd.io), matched by upstream version.
CONTAINERD_VERSION: Final = "2.1.4"

# kube-vip announces the control-plane virtual IP (ARP, leader election) as a static pod.
KUBE_VIP_IMAGE: Final = "ghcr.io/kube-vip/kube-vip:v1.0.4"

# Calico through the tigera-operator Helm chart; it enforces NetworkPolicy, which z2jh relies on.
CALICO_CHART_REPOSITORY: Final = "https://docs.tigera.io/calico/charts"
CALICO_CHART_VERSION: Final = "v3.31.4"
