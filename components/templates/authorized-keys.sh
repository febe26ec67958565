#!/usr/bin/env bash
# The admin user's SSH keys, exactly as the stack lists them (the key the stack generates first, so
# Pulumi's own access never goes). cloud-init wrote them once, at first boot; this step makes adding
# or removing an operator key reach nodes that already exist. Idempotent: rewrites only on change.
set -euo pipefail

: "${ADMIN_USER:?}" "${AUTHORIZED_KEYS:?}"
home="$(getent passwd "$ADMIN_USER" | cut -d: -f6 || true)"
if [ -z "$home" ]; then
  echo "dsaas: there is no user ${ADMIN_USER} on this node" >&2
  exit 1
fi
group="$(id -gn "$ADMIN_USER")"
install -d -m 0700 -o "$ADMIN_USER" -g "$group" "${home}/.ssh"
wanted="$(mktemp)"
trap 'rm -f "$wanted"' EXIT
printf '%s\n' "$AUTHORIZED_KEYS" >"$wanted"
if cmp -s "$wanted" "${home}/.ssh/authorized_keys"; then
  echo "dsaas: SSH keys of ${ADMIN_USER} unchanged"
  exit 0
fi
install -m 0600 -o "$ADMIN_USER" -g "$group" "$wanted" "${home}/.ssh/authorized_keys"
echo "dsaas: SSH keys of ${ADMIN_USER} set ($(grep -c . "$wanted") keys)"
