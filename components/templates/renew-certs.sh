#!/usr/bin/env bash
# Installed on every control plane as /usr/local/sbin/dsaas-renew-certs and run weekly by
# dsaas-renew-certs.timer (cert-renewal.sh installs both). kubeadm's leaf certificates last one year and only
# `kubeadm upgrade` or `kubeadm certs renew` renews them; a cluster that is not upgraded within a year loses
# its API server. When any of them expires within RENEW_DAYS, this renews them all (kubespray's weekly
# k8s-certs-renew timer does the same), then restarts the control-plane static pods one at a time as
# kubeadm's documentation says (move the manifest out, wait for the kubelet to stop the pod, move it back,
# wait until it serves again), so the components load the new certificates. Each control plane's timer fires on another weekday: never two restarting at once.
# Idempotent and resumable: a manifest left out by a run killed half-way is put back first.
set -euo pipefail

: "${RENEW_DAYS:?}" "${WAIT_SECONDS:?}"
manifests=/etc/kubernetes/manifests
paused=/etc/kubernetes/dsaas-paused-manifests
admin=/etc/kubernetes/admin.conf
components=(etcd kube-apiserver kube-controller-manager kube-scheduler)
# `kubeadm certs renew <name>` for each file kubeadm makes on a control plane (super-admin.conf only where it
# is still there: this program removes it after `kubeadm init`). Named one by one, so a missing file is
# never kubeadm's to judge.
declare -A certificates=(
  [apiserver]=pki/apiserver.crt [apiserver-kubelet-client]=pki/apiserver-kubelet-client.crt
  [apiserver-etcd-client]=pki/apiserver-etcd-client.crt [front-proxy-client]=pki/front-proxy-client.crt
  [etcd-server]=pki/etcd/server.crt [etcd-peer]=pki/etcd/peer.crt
  [etcd-healthcheck-client]=pki/etcd/healthcheck-client.crt [admin.conf]=admin.conf
  [super-admin.conf]=super-admin.conf [controller-manager.conf]=controller-manager.conf
  [scheduler.conf]=scheduler.conf
)

wait_for() { # wait_for <seconds> <what> <command...>
  local seconds="$1" what="$2" i
  shift 2
  for ((i = 0; i < seconds; i++)); do
    if "$@"; then return 0; fi
    sleep 1
  done
  echo "dsaas: ${what} after ${seconds} s; the manifest is back in ${manifests}, check the kubelet's log" >&2
  return 1
}

# containerd's socket named, as bake-template.sh does: crictl's built-in endpoint list is deprecated.
running() {
  [ -n "$(crictl --runtime-endpoint unix:///run/containerd/containerd.sock \
    ps --name "^$1\$" --state running -q 2>/dev/null)" ]
}
stopped() { ! running "$1"; }
serving() { kubectl --kubeconfig "$admin" get --raw "/readyz" >/dev/null 2>&1; }

# A run killed while a manifest was out: the component is down until it is back.
if [ -d "$paused" ]; then
  for manifest in "$paused"/*.yaml; do
    [ -e "$manifest" ] || continue
    echo "dsaas: putting back $(basename "$manifest") (a previous run stopped half-way)"
    mv "$manifest" "$manifests/"
  done
fi

expires_soon() { # expires_soon <PEM file>: within RENEW_DAYS (or unreadable)
  ! openssl x509 -noout -checkend "$((RENEW_DAYS * 86400))" -in "$1" >/dev/null 2>&1
}

embedded="$(mktemp)"
trap 'rm -f "$embedded"' EXIT
present=()
soon=()
for name in "${!certificates[@]}"; do
  file="/etc/kubernetes/${certificates[$name]}"
  [ -f "$file" ] || continue
  present+=("$name")
  if [ "${file%.conf}" != "$file" ]; then # a kubeconfig: its client certificate is embedded
    data="$(sed -n 's/^ *client-certificate-data: *//p' "$file" | head -n 1)"
    [ -n "$data" ] || continue # a client certificate in a file of its own is not kubeadm's to renew here
    base64 -d <<<"$data" >"$embedded"
    file="$embedded"
  fi
  if expires_soon "$file"; then soon+=("$name"); fi
done
if [ "${#soon[@]}" -eq 0 ]; then
  echo "dsaas: no kubeadm certificate expires within ${RENEW_DAYS} days; nothing renewed"
  exit 0
fi

echo "dsaas: expiring within ${RENEW_DAYS} days: ${soon[*]}; renewing all of kubeadm's certificates"
for name in "${present[@]}"; do
  kubeadm certs renew "$name"
done
install -d -m 0700 "$paused"
for component in "${components[@]}"; do
  [ -f "$manifests/$component.yaml" ] || continue
  mv "$manifests/$component.yaml" "$paused/"
  wait_for "$WAIT_SECONDS" "the kubelet did not stop ${component}" stopped "$component" || {
    mv "$paused/$component.yaml" "$manifests/"
    exit 1
  }
  mv "$paused/$component.yaml" "$manifests/"
  wait_for "$WAIT_SECONDS" "${component} did not start again" running "$component"
  wait_for "$WAIT_SECONDS" "the API server is not ready after restarting ${component}" serving
  echo "dsaas: restarted ${component} with its renewed certificate"
done
rmdir "$paused"
kubeadm certs check-expiration
