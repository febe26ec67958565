#!/usr/bin/env bash
# On the first control plane, just before one node joins: fresh credentials for that node only.
# A bootstrap token of its own (deleted by the node's membership step once it has registered, else
# expired after TOKEN_TTL) and, for a control plane, the control-plane certificates uploaded again
# under a new certificate key (kubeadm deletes them after two hours; the joined control plane
# deletes them at once). kubeadm generates both: nothing secret is on a command line or in a file,
# and they are printed once, as JSON, to the calling command's secret standard output.
set -euo pipefail

: "${NODE_NAME:?}" "${NODE_ROLE:?}" "${TOKEN_TTL:?}"
export KUBECONFIG=/etc/kubernetes/admin.conf
umask 077

token="$(kubeadm token create --ttl "$TOKEN_TTL" --description "dsaas join of ${NODE_NAME}" \
  --usages signing,authentication --groups system:bootstrappers:kubeadm:default-node-token)"
if ! [[ "$token" =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]]; then
  echo "dsaas: kubeadm token create did not print a bootstrap token" >&2
  exit 1
fi

certificate_key=""
if [ "$NODE_ROLE" = "control-plane" ]; then
  # The key is the last line kubeadm prints ("[upload-certs] Using certificate key:" then the key).
  certificate_key="$(kubeadm init phase upload-certs --upload-certs 2>/dev/null | tail -n 1)"
  if ! [[ "$certificate_key" =~ ^[0-9a-f]{64}$ ]]; then
    echo "dsaas: kubeadm init phase upload-certs did not print a certificate key" >&2
    exit 1
  fi
fi

printf '{"token": "%s", "certificateKey": "%s"}\n' "$token" "$certificate_key"
