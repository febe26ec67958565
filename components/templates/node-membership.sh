#!/usr/bin/env bash
# On the first control plane: waits until a joined node is registered, labels its role and deletes
# the bootstrap tokens made for its join (found by description, so the token itself is never read).
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
    kubectl -n kube-system get secrets --field-selector type=bootstrap.kubernetes.io/token \
      -o go-template='{{range .items}}{{.metadata.name}}{{"\t"}}{{with .data.description}}{{base64decode .}}{{end}}{{"\n"}}{{end}}' |
      awk -F '\t' -v wanted="dsaas join of ${NODE_NAME}" '$2 == wanted { print $1 }' |
      xargs -r kubectl -n kube-system delete secret >/dev/null
    echo "dsaas: ${NODE_NAME} registered; its join token deleted"
    exit 0
  fi
  sleep 5
done
echo "dsaas: ${NODE_NAME} did not register with the API server within 5 minutes" >&2
exit 1
