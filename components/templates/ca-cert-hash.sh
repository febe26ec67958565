#!/usr/bin/env bash
# Prints the discovery hash of the cluster CA (public: it pins the CA, it grants nothing).
# Read once after init; joins use it to authenticate the API server they join.
set -euo pipefail

hash="$(openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt |
  openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)"
echo "sha256:${hash}"
