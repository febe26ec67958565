#!/usr/bin/env bash
# kubeadm join for a worker or a further control plane, from a rendered v1beta4 JoinConfiguration.
# Idempotent: a node that already has /etc/kubernetes/kubelet.conf has joined and is left alone.
set -euo pipefail

: "${KUBEADM_CONFIG_B64:?}" "${NODE_NAME:?}"
umask 077
if [ -s /etc/kubernetes/kubelet.conf ]; then
  echo "dsaas: ${NODE_NAME} has already joined"
  exit 0
fi
config="$(mktemp /root/kubeadm-join.XXXXXX.yaml)"
log=/var/log/dsaas-kubeadm-join.log
trap 'rm -f "$config"' EXIT
base64 -d <<<"$KUBEADM_CONFIG_B64" >"$config"
if ! kubeadm join --config "$config" >"$log" 2>&1; then
  echo "dsaas: kubeadm join of ${NODE_NAME} failed; see ${log} on the node" >&2
  grep -E '^\[(ERROR|WARNING)' "$log" >&2 || true
  exit 1
fi
echo "dsaas: ${NODE_NAME} joined"
