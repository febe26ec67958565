#!/usr/bin/env bash
# The API server's encryption configuration (it holds the stack's Secret-encryption key) and audit
# policy, written on a control plane before kubeadm init or join renders the API server that reads
# them. Both arrive on stdin, never on a command line; files 0600 in a 0700 directory, root only.
# Idempotent: unchanged files are left alone. An encryption configuration that differs from the one
# on the node is refused: the Secrets in etcd are readable only with the key they were written with.
set -euo pipefail

: "${ENCRYPTION_CONFIG_B64:?}" "${AUDIT_POLICY_B64:?}" "${CONFIG_DIR:?}" "${AUDIT_LOG_DIR:?}"
umask 077
install -d -m 0700 "$CONFIG_DIR" "$AUDIT_LOG_DIR"

encryption_config="${CONFIG_DIR}/encryption-config.yaml"
audit_policy="${CONFIG_DIR}/audit-policy.yaml"
new="$(mktemp "${CONFIG_DIR}/.new.XXXXXX")"
trap 'rm -f "$new"' EXIT

base64 -d <<<"$ENCRYPTION_CONFIG_B64" >"$new"
if [ ! -e "$encryption_config" ]; then
  mv "$new" "$encryption_config"
elif ! cmp -s "$new" "$encryption_config"; then
  echo "dsaas: ${encryption_config} on this node holds another key than the stack's;" \
    "refusing to replace it (Secrets written with it would become unreadable)." \
    "See 'Secrets at rest' in docs/operations.md for a key rotation." >&2
  exit 1
fi

base64 -d <<<"$AUDIT_POLICY_B64" >"$new"
if ! cmp -s "$new" "$audit_policy"; then
  changed=""
  [ -e "$audit_policy" ] && changed=yes
  mv "$new" "$audit_policy"
  if [ -n "$changed" ]; then
    echo "dsaas: audit policy updated; the API server reads it when it next starts"
  fi
fi
chmod 0600 "$encryption_config" "$audit_policy"
echo "dsaas: API server encryption configuration and audit policy in place"
