#!/usr/bin/env bash
# kubeadm init on the first control-plane node, from a rendered v1beta4 config.
# Idempotent: a node that already has /etc/kubernetes/admin.conf is not initialised again.
# The config holds the bootstrap token and certificate key: it is written 0600 and removed.
set -euo pipefail

: "${KUBEADM_CONFIG_B64:?}" "${API_ENDPOINT:?}"
umask 077
if [ ! -s /etc/kubernetes/admin.conf ]; then
  config="$(mktemp /root/kubeadm-init.XXXXXX.yaml)"
  log=/var/log/dsaas-kubeadm-init.log
  trap 'rm -f "$config"' EXIT
  base64 -d <<<"$KUBEADM_CONFIG_B64" >"$config"
  # The output contains join commands with the token: it goes to a root-only log, not stdout.
  if ! kubeadm init --config "$config" --upload-certs >"$log" 2>&1; then
    echo "dsaas: kubeadm init failed; see ${log} on this node (it contains secrets)" >&2
    grep -E '^\[(ERROR|WARNING)' "$log" >&2 || true
    exit 1
  fi
fi

# kube-vip needed super-admin.conf while the RBAC for admin.conf did not exist yet (k8s >= 1.29).
manifest=/etc/kubernetes/manifests/kube-vip.yaml
if grep -q 'path: /etc/kubernetes/super-admin.conf' "$manifest"; then
  sed -i 's#path: /etc/kubernetes/super-admin.conf#path: /etc/kubernetes/admin.conf#' "$manifest"
fi

# The API server answers through the virtual IP before anything else proceeds.
for _ in $(seq 1 120); do
  if kubectl --kubeconfig /etc/kubernetes/admin.conf --server "https://${API_ENDPOINT}" get --raw /readyz >/dev/null 2>&1; then
    echo "dsaas: control plane ready at https://${API_ENDPOINT}"
    exit 0
  fi
  sleep 5
done
echo "dsaas: the API server did not become ready at https://${API_ENDPOINT} within 10 minutes" >&2
exit 1
