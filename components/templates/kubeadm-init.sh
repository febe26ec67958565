#!/usr/bin/env bash
# kubeadm init on the first control-plane node, from a rendered v1beta4 config that holds no secret.
# Idempotent: a node that already has /etc/kubernetes/admin.conf is not initialised again.
# Joins never use what init makes: each node gets credentials of its own (join-credentials.sh), so
# the bootstrap token kubeadm creates here is deleted at once, and its log keeps no token.
set -euo pipefail

: "${KUBEADM_CONFIG_B64:?}" "${API_ENDPOINT:?}" "${NODE_NAME:?}"
umask 077
export KUBECONFIG=/etc/kubernetes/admin.conf

# kubeadm prints join commands with a bootstrap token (and a certificate key with --upload-certs).
redact_join_secrets() {
  sed -E -e 's/[a-z0-9]{6}\.[a-z0-9]{16}/<bootstrap token redacted>/g' \
    -e 's/(--certificate-key)[ =]+[0-9a-f]+/\1 <redacted>/g'
}

if [ ! -s /etc/kubernetes/admin.conf ]; then
  config="$(mktemp /root/kubeadm-init.XXXXXX.yaml)"
  log=/var/log/dsaas-kubeadm-init.log
  trap 'rm -f "$config"' EXIT
  base64 -d <<<"$KUBEADM_CONFIG_B64" >"$config"
  if ! kubeadm init --config "$config" 2>&1 | redact_join_secrets >"$log"; then
    echo "dsaas: kubeadm init failed; see ${log} on this node" >&2
    grep -E '^\[(ERROR|WARNING)' "$log" >&2 || true
    exit 1
  fi
  kubectl -n kube-system delete secrets --field-selector type=bootstrap.kubernetes.io/token >/dev/null
fi

# kube-vip needed super-admin.conf while the RBAC for admin.conf did not exist yet (k8s >= 1.29).
manifest=/etc/kubernetes/manifests/kube-vip.yaml
if grep -q 'path: /etc/kubernetes/super-admin.conf' "$manifest"; then
  sed -i 's#path: /etc/kubernetes/super-admin.conf#path: /etc/kubernetes/admin.conf#' "$manifest"
fi

# The API server answers through the virtual IP before anything else proceeds.
ready=""
for _ in $(seq 1 120); do
  if kubectl --server "https://${API_ENDPOINT}" get --raw /readyz >/dev/null 2>&1; then
    ready=yes
    break
  fi
  sleep 5
done
if [ -z "$ready" ]; then
  echo "dsaas: the API server did not become ready at https://${API_ENDPOINT} within 10 minutes" >&2
  exit 1
fi

# super-admin.conf bypasses RBAC for good: once the kubelet runs kube-vip with admin.conf, it goes.
if [ -e /etc/kubernetes/super-admin.conf ]; then
  for _ in $(seq 1 60); do
    mounted="$(kubectl -n kube-system get pod "kube-vip-${NODE_NAME}" \
      -o jsonpath='{.spec.volumes[?(@.name=="kubeconfig")].hostPath.path}' 2>/dev/null || true)"
    if [ "$mounted" = /etc/kubernetes/admin.conf ]; then
      rm -f /etc/kubernetes/super-admin.conf
      break
    fi
    sleep 5
  done
  if [ -e /etc/kubernetes/super-admin.conf ]; then
    echo "dsaas: kube-vip still runs with super-admin.conf after 5 minutes; it was not removed" >&2
    exit 1
  fi
fi
echo "dsaas: control plane ready at https://${API_ENDPOINT}"
