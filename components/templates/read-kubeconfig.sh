#!/usr/bin/env bash
# Prints the cluster's admin kubeconfig (server: the virtual IP). The calling command marks its
# output secret and logs nothing. Its client certificate lasts one year: one that ends within RENEW_DAYS
# is renewed first (`kubeadm certs renew admin.conf`, as the weekly dsaas-renew-certs.timer would), so the
# copy the program keeps in its state has a year ahead of it. Messages go to stderr: stdout is the kubeconfig.
set -euo pipefail

: "${API_ENDPOINT:?}" "${RENEW_DAYS:?}"
kubeconfig=/etc/kubernetes/admin.conf
if ! grep -q "server: https://${API_ENDPOINT}" "$kubeconfig"; then
  echo "dsaas: ${kubeconfig} does not point at https://${API_ENDPOINT}" >&2
  exit 1
fi
data="$(sed -n 's/^ *client-certificate-data: *//p' "$kubeconfig" | head -n 1)"
if [ -n "$data" ] && ! base64 -d <<<"$data" | openssl x509 -noout -checkend "$((RENEW_DAYS * 86400))" >/dev/null 2>&1; then
  echo "dsaas: the certificate in ${kubeconfig} ends within ${RENEW_DAYS} days: renewing it" >&2
  kubeadm certs renew admin.conf >&2
fi
cat "$kubeconfig"
