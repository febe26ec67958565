#!/usr/bin/env bash
# On the first control plane: waits until a joined node is registered and labels its role.
# Idempotent: labelling with --overwrite is a no-op when the label is already there.
set -euo pipefail

: "${NODE_NAME:?}" "${NODE_ROLE:?}"
export KUBECONFIG=/etc/kubernetes/admin.conf
for _ in $(seq 1 60); do
  if kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
    kubectl label node "$NODE_NAME" "dsaas.io/role=${NODE_ROLE}" --overwrite >/dev/null
    if [ "$NODE_ROLE" = "worker" ]; then
      kubectl label node "$NODE_NAME" node-role.kubernetes.io/worker= --overwrite >/dev/null
    fi
    echo "dsaas: ${NODE_NAME} registered"
    exit 0
  fi
  sleep 5
done
echo "dsaas: ${NODE_NAME} did not register with the API server within 5 minutes" >&2
exit 1
