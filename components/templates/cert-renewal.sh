#!/usr/bin/env bash
# Installs the weekly renewal of kubeadm's certificates on a control plane (issue 26): the program
# /usr/local/sbin/dsaas-renew-certs (renew-certs.sh, rendered with its parameters), a oneshot service that
# runs it and a timer on this node's weekday. Idempotent: files are rewritten only when their content
# differs, and systemd is told only then.
set -euo pipefail

: "${RENEW_PROGRAM_B64:?}" "${RENEW_ON_CALENDAR:?}"
changed=0
put() { # put <path> <mode> <content>
  local staged
  staged="$(mktemp)"
  printf '%s' "$3" >"$staged"
  if ! cmp -s "$staged" "$1"; then
    install -D -m "$2" "$staged" "$1"
    changed=1
  fi
  rm -f "$staged"
}

put /usr/local/sbin/dsaas-renew-certs 0700 "$(base64 -d <<<"$RENEW_PROGRAM_B64")
"
put /etc/systemd/system/dsaas-renew-certs.service 0644 "[Unit]
Description=dsaas: renew kubeadm's certificates before they expire
After=kubelet.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/dsaas-renew-certs
"
put /etc/systemd/system/dsaas-renew-certs.timer 0644 "[Unit]
Description=dsaas: weekly check of kubeadm's certificates

[Timer]
OnCalendar=${RENEW_ON_CALENDAR}
Persistent=true

[Install]
WantedBy=timers.target
"
if [ "$changed" -eq 1 ]; then
  systemctl daemon-reload
  systemctl enable --now dsaas-renew-certs.timer
  echo "dsaas: certificate renewal installed (${RENEW_ON_CALENDAR})"
else
  echo "dsaas: certificate renewal unchanged"
fi
