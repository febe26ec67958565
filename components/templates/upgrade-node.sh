#!/usr/bin/env bash
# A Kubernetes upgrade on this node, once the first control plane has drained it (upgrade-drain.sh): the
# pkgs.k8s.io repository of the new minor, kubeadm, `kubeadm upgrade apply` (the first control plane) or
# `kubeadm upgrade node` (every other node), then kubelet and kubectl, and a kubelet restart.
# Idempotent and resumable: a node already at the version does nothing; a run killed half-way leaves a
# marker naming its target, and the next run finishes what is left (each step checks before it acts).
set -euo pipefail

: "${NODE_NAME:?}" "${KUBERNETES_VERSION:?}" "${KUBERNETES_MINOR:?}" "${KUBERNETES_KEY_FINGERPRINT:?}"
: "${UPGRADE_COMMAND:?}"
export DEBIAN_FRONTEND=noninteractive
APT_WAIT=(-o DPkg::Lock::Timeout=600)
state_dir=/etc/dsaas/upgrade
marker="${state_dir}/upgrade-in-progress"
case "$UPGRADE_COMMAND" in apply | node) ;; *)
  echo "dsaas: UPGRADE_COMMAND must be apply or node, not '${UPGRADE_COMMAND}'" >&2
  exit 1
  ;;
esac

installed_version() {
  dpkg-query -W -f='${Version}' "$1" 2>/dev/null | sed 's/-.*//' || true
}

at_target() {
  local package
  for package in kubeadm kubelet kubectl; do
    [ "$(installed_version "$package")" = "$KUBERNETES_VERSION" ] || return 1
  done
}

if [ ! -e /etc/kubernetes/kubelet.conf ]; then
  echo "dsaas: ${NODE_NAME} has not joined a cluster; nothing to upgrade" >&2
  exit 1
fi
if [ ! -e "$marker" ] && at_target; then
  echo "dsaas: ${NODE_NAME} already runs Kubernetes ${KUBERNETES_VERSION}; nothing to do"
  exit 0
fi
if [ -e "$marker" ] && [ "$(cat "$marker")" != "$KUBERNETES_VERSION" ]; then
  # An upgrade to another version was stopped half-way: finishing it first is the only safe order.
  echo "dsaas: ${NODE_NAME} is half-way through an upgrade to $(cat "$marker"); set that version back and run again" >&2
  exit 1
fi
install -d -m 0755 "$state_dir"
echo "$KUBERNETES_VERSION" >"$marker"

# The repository of the new minor, signed by the pinned key (the same check as prepare-node.sh: the key
# file must hold exactly the pinned key; HTTPS alone would trust whatever a mirror or proxy serves).
gnupg_home="$(mktemp -d)"
trap 'rm -rf "$gnupg_home"' EXIT
key_fingerprints() {
  GNUPGHOME="$gnupg_home" gpg --batch --show-keys --with-colons "$1" 2>/dev/null |
    awk -F: '$1 == "pub" {primary = 1; next} $1 == "fpr" && primary {print $10; primary = 0}'
}
keyring=/etc/apt/keyrings/kubernetes-apt-keyring.gpg
if ! { [ -s "$keyring" ] && [ "$(key_fingerprints "$keyring")" = "$KUBERNETES_KEY_FINGERPRINT" ]; }; then
  url="https://pkgs.k8s.io/core:/stable:/v${KUBERNETES_MINOR}/deb/Release.key"
  curl -fsSL "$url" -o "${gnupg_home}/download.key"
  found="$(key_fingerprints "${gnupg_home}/download.key" | paste -sd ' ')"
  if [ "$found" != "$KUBERNETES_KEY_FINGERPRINT" ]; then
    echo "dsaas: the signing key at ${url} is '${found:-no OpenPGP key}', not the pinned ${KUBERNETES_KEY_FINGERPRINT}; refusing to trust it" >&2
    exit 1
  fi
  install -d -m 0755 /etc/apt/keyrings
  GNUPGHOME="$gnupg_home" gpg --batch --yes --dearmor -o "${keyring}.new" "${gnupg_home}/download.key"
  chmod 0644 "${keyring}.new"
  mv "${keyring}.new" "$keyring"
fi
source_line="deb [signed-by=${keyring}] https://pkgs.k8s.io/core:/stable:/v${KUBERNETES_MINOR}/deb/ /"
if [ "$(cat /etc/apt/sources.list.d/kubernetes.list 2>/dev/null || true)" != "$source_line" ]; then
  echo "$source_line" >/etc/apt/sources.list.d/kubernetes.list
fi
apt-get "${APT_WAIT[@]}" update -qq

package_version() {
  local found
  found="$(apt-cache madison "$1" | awk -v v="$KUBERNETES_VERSION" '$3 ~ "^"v"-" {print $3; exit}')"
  if [ -z "$found" ]; then
    echo "dsaas: no $1 package for version ${KUBERNETES_VERSION} in the configured repositories" >&2
    exit 1
  fi
  echo "$found"
}

install_pinned() {
  local package="$1" version
  version="$(package_version "$package")"
  if [ "$(dpkg-query -W -f='${Version}' "$package" 2>/dev/null || true)" != "$version" ]; then
    apt-mark unhold "$package" >/dev/null
    apt-get "${APT_WAIT[@]}" install -y -qq --allow-change-held-packages "${package}=${version}"
  fi
  apt-mark hold "$package" >/dev/null
}

# kubeadm first: it is the one that knows how to move the control plane and the kubelet's configuration.
install_pinned kubeadm
done_marker="${state_dir}/kubeadm-upgraded-${KUBERNETES_VERSION}"
if [ ! -e "$done_marker" ]; then
  if [ "$UPGRADE_COMMAND" = apply ]; then
    # Renews the control plane's certificates too (kubeadm's default --certificate-renewal=true).
    kubeadm upgrade apply "v${KUBERNETES_VERSION}" --yes
  else
    kubeadm upgrade node
  fi
  touch "$done_marker"
fi
install_pinned kubelet
install_pinned kubectl
systemctl daemon-reload
systemctl restart kubelet
rm -f "$done_marker" "$marker"
echo "dsaas: ${NODE_NAME} upgraded to Kubernetes ${KUBERNETES_VERSION}"
