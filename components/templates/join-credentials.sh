#!/usr/bin/env bash
# Refreshes what a joining node needs, on the first control plane: the bootstrap token (2 h TTL)
# and the uploaded control-plane certificates (which kubeadm deletes after 2 h). Runs again
# whenever the set of nodes changes, so a node added months later still finds valid credentials.
# Prints nothing secret.
set -euo pipefail

: "${BOOTSTRAP_TOKEN:?}" "${CERTIFICATE_KEY:?}" "${TOKEN_TTL:?}"
export KUBECONFIG=/etc/kubernetes/admin.conf
kubeadm token delete "${BOOTSTRAP_TOKEN%%.*}" >/dev/null 2>&1 || true
kubeadm token create "$BOOTSTRAP_TOKEN" --ttl "$TOKEN_TTL" \
  --description "dsaas node joins" >/dev/null
kubeadm init phase upload-certs --upload-certs --certificate-key "$CERTIFICATE_KEY" >/dev/null
echo "dsaas: join credentials valid for ${TOKEN_TTL}"
