#!/usr/bin/env bash
# Prints the cluster's admin kubeconfig (server: the virtual IP). The calling command marks its
# output secret and logs nothing.
set -euo pipefail

: "${API_ENDPOINT:?}"
kubeconfig=/etc/kubernetes/admin.conf
if ! grep -q "server: https://${API_ENDPOINT}" "$kubeconfig"; then
  echo "dsaas: ${kubeconfig} does not point at https://${API_ENDPOINT}" >&2
  exit 1
fi
cat "$kubeconfig"
