#!/usr/bin/env bash
# Installs the kube-vip static pod that announces the control-plane virtual IP.
# Idempotent: the manifest is replaced only when its content differs. On a node whose control
# plane already runs, the bootstrap-only super-admin.conf mount is swapped for admin.conf first,
# so re-running this step after `kubeadm init` never brings the broader credential back.
set -euo pipefail

: "${KUBE_VIP_MANIFEST_B64:?}"
manifest=/etc/kubernetes/manifests/kube-vip.yaml
install -d -m 0755 /etc/kubernetes/manifests
staged="$(mktemp)"
trap 'rm -f "$staged"' EXIT
base64 -d <<<"$KUBE_VIP_MANIFEST_B64" >"$staged"
if [ -s /etc/kubernetes/manifests/kube-apiserver.yaml ] && [ -s /etc/kubernetes/admin.conf ]; then
  sed -i 's#path: /etc/kubernetes/super-admin.conf#path: /etc/kubernetes/admin.conf#' "$staged"
fi
if ! cmp -s "$staged" "$manifest"; then
  install -m 0600 "$staged" "$manifest"
  echo "dsaas: kube-vip manifest installed"
else
  echo "dsaas: kube-vip manifest unchanged"
fi
