#!/usr/bin/env bash
# kubeadm join for a worker or a further control plane, from a rendered v1beta4 JoinConfiguration
# that carries this node's own credentials (join-credentials.sh): written 0600, removed on exit.
# Idempotent: a node that already has /etc/kubernetes/kubelet.conf has joined and is left alone.
set -euo pipefail

: "${KUBEADM_CONFIG_B64:?}" "${NODE_NAME:?}" "${NODE_ROLE:?}" "${CREDENTIALS_URN:?}"
umask 077
if [ -s /etc/kubernetes/kubelet.conf ]; then
  echo "dsaas: ${NODE_NAME} has already joined"
  exit 0
fi
config="$(mktemp /root/kubeadm-join.XXXXXX.yaml)"
log=/var/log/dsaas-kubeadm-join.log
trap 'rm -f "$config"' EXIT
base64 -d <<<"$KUBEADM_CONFIG_B64" >"$config"
if ! kubeadm join --config "$config" 2>&1 |
  sed -E -e 's/[a-z0-9]{6}\.[a-z0-9]{16}/<bootstrap token redacted>/g' >"$log"; then
  echo "dsaas: kubeadm join of ${NODE_NAME} failed; see ${log} on the node" >&2
  grep -E '^\[(ERROR|WARNING)' "$log" >&2 || true
  if grep -qiE 'token|kubeadm-certs|certificate key|JWS signature' "$log"; then
    echo "dsaas: the credentials made for this join live 2 hours; if they expired, make new ones with" \
      "pulumi up --replace '${CREDENTIALS_URN}'" >&2
  fi
  exit 1
fi
if [ "$NODE_ROLE" = "control-plane" ]; then
  # The uploaded certificates are needed by no one else: delete them now rather than in two hours.
  kubectl --kubeconfig /etc/kubernetes/admin.conf -n kube-system delete secret kubeadm-certs \
    --ignore-not-found >/dev/null
fi
echo "dsaas: ${NODE_NAME} joined"
