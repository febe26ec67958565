#!/usr/bin/env bash
# OS preparation for a kubeadm node: swap off, kernel modules, sysctls, containerd with the
# systemd cgroup driver, and pinned kubelet/kubeadm/kubectl from pkgs.k8s.io, held.
# Idempotent: every step checks before it changes, so a second run changes nothing.
set -euo pipefail

: "${KUBERNETES_VERSION:?}" "${KUBERNETES_MINOR:?}" "${CONTAINERD_VERSION:?}"
: "${DOCKER_KEY_FINGERPRINT:?}" "${KUBERNETES_KEY_FINGERPRINT:?}"
export DEBIAN_FRONTEND=noninteractive
# unattended-upgrades and apt-daily often hold the dpkg lock just after first boot: wait for it.
APT_WAIT=(-o DPkg::Lock::Timeout=600)

# cloud-init installs the base packages; apt must not race it.
cloud-init status --wait >/dev/null || true

# Swap: kubelet refuses to run with it (and its memory accounting would lie).
if [ -n "$(swapon --show --noheadings)" ]; then
  swapoff -a
fi
if grep -Eq '^[^#].*\sswap\s' /etc/fstab; then
  sed -ri 's/^([^#].*\sswap\s.*)$/# disabled by dsaas: \1/' /etc/fstab
fi

# Kernel modules and sysctls for container networking.
printf 'overlay\nbr_netfilter\n' >/etc/modules-load.d/dsaas-kubernetes.conf
for module in overlay br_netfilter; do
  modprobe "$module"
done
cat >/etc/sysctl.d/90-dsaas-kubernetes.conf <<'SYSCTL'
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
net.ipv4.ip_forward = 1
fs.inotify.max_user_instances = 8192
fs.inotify.max_user_watches = 1048576
SYSCTL
sysctl --system >/dev/null

# Package repositories, signed: Docker's for containerd.io, pkgs.k8s.io for the Kubernetes minor.
# A key is trusted only if the file holds exactly the pinned key (config/versions.py): HTTPS alone
# would trust whatever a compromised mirror, CDN or intercepting proxy serves. An installed key is
# checked again on every run, so a key an older script fetched unchecked is replaced if wrong.
install -d -m 0755 /etc/apt/keyrings
gnupg_home="$(mktemp -d)"
trap 'rm -rf "$gnupg_home"' EXIT

# The primary-key fingerprints in a key file (armored or binary), one a line. A temporary GNUPGHOME:
# --show-keys imports nothing, but gpg would still create root's keyring.
key_fingerprints() {
  GNUPGHOME="$gnupg_home" gpg --batch --show-keys --with-colons "$1" 2>/dev/null |
    awk -F: '$1 == "pub" {primary = 1; next} $1 == "fpr" && primary {print $10; primary = 0}'
}

install_signing_key() {
  local url="$1" fingerprint="$2" target="$3" format="$4" download found
  if [ -s "$target" ] && [ "$(key_fingerprints "$target")" = "$fingerprint" ]; then
    return 0
  fi
  download="${gnupg_home}/download.key"
  curl -fsSL "$url" -o "$download"
  found="$(key_fingerprints "$download" | paste -sd ' ')"
  if [ "$found" != "$fingerprint" ]; then
    echo "dsaas: the signing key at ${url} is '${found:-no OpenPGP key}', not the pinned ${fingerprint}; refusing to trust it" >&2
    exit 1
  fi
  if [ "$format" = binary ]; then
    GNUPGHOME="$gnupg_home" gpg --batch --yes --dearmor -o "${target}.new" "$download"
  else
    cp "$download" "${target}.new"
  fi
  chmod 0644 "${target}.new"
  mv "${target}.new" "$target"
}

install_signing_key https://download.docker.com/linux/ubuntu/gpg "$DOCKER_KEY_FINGERPRINT" \
  /etc/apt/keyrings/docker.asc armored
install_signing_key "https://pkgs.k8s.io/core:/stable:/v${KUBERNETES_MINOR}/deb/Release.key" \
  "$KUBERNETES_KEY_FINGERPRINT" /etc/apt/keyrings/kubernetes-apt-keyring.gpg binary
codename="$(awk -F= '$1 == "VERSION_CODENAME" {print $2}' /etc/os-release)"
arch="$(dpkg --print-architecture)"
echo "deb [arch=${arch} signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/ubuntu ${codename} stable" \
  >/etc/apt/sources.list.d/docker.list
echo "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v${KUBERNETES_MINOR}/deb/ /" \
  >/etc/apt/sources.list.d/kubernetes.list
apt-get "${APT_WAIT[@]}" update -qq

# The exact package revision for an upstream version, or a clear failure.
package_version() {
  local package="$1" upstream="$2" found
  found="$(apt-cache madison "$package" | awk -v v="$upstream" '$3 ~ "^"v"-" {print $3; exit}')"
  if [ -z "$found" ]; then
    echo "dsaas: no ${package} package for version ${upstream} in the configured repositories" >&2
    exit 1
  fi
  echo "$found"
}

install_pinned() {
  local package="$1" version="$2" installed
  installed="$(dpkg-query -W -f='${Version}' "$package" 2>/dev/null || true)"
  if [ "$installed" != "$version" ]; then
    apt-mark unhold "$package" >/dev/null 2>&1 || true
    apt-get "${APT_WAIT[@]}" install -y -qq --allow-change-held-packages "${package}=${version}"
  fi
  apt-mark hold "$package" >/dev/null
}

# Assignments, not arguments: set -e stops on a failed substitution only in an assignment.
containerd_version="$(package_version containerd.io "$CONTAINERD_VERSION")"
kube_version="$(package_version kubeadm "$KUBERNETES_VERSION")"
install_pinned containerd.io "$containerd_version"
# Swapping packages under a running node would break the version-skew rules: a node that has joined
# is upgraded by its own upgrade steps (upgrade-drain.sh, upgrade-node.sh), drained, one stage at a time,
# never by this script. This step runs again when dsaas:kubernetesVersion changes, beside those steps: it
# leaves the Kubernetes packages of a joined node alone unless all three already run the version.
joined_elsewhere=""
if [ -e /etc/kubernetes/kubelet.conf ]; then
  for package in kubelet kubeadm kubectl; do
    installed="$(dpkg-query -W -f='${Version}' "$package" 2>/dev/null || true)"
    if [ -n "$installed" ] && [ "$installed" != "$kube_version" ]; then
      joined_elsewhere="${package} ${installed}"
    fi
  done
  [ ! -e /etc/dsaas/upgrade/upgrade-in-progress ] || joined_elsewhere="an upgrade in progress"
fi
if [ -n "$joined_elsewhere" ]; then
  echo "dsaas: this node has joined and runs ${joined_elsewhere}; refusing to switch to ${kube_version} outside its upgrade step ('kubeadm upgrade')"
else
  for package in kubelet kubeadm kubectl; do
    install_pinned "$package" "$kube_version"
  done
fi

# containerd: CRI enabled, systemd cgroup driver (what kubelet is told to use). The default
# config of containerd 2.1.4 has no SystemdCgroup key at all (2.1.5+ prints it as false), so the
# key is set in the runc options table either way, and the result is checked.
runc_options="[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]"
containerd config default >/tmp/dsaas-containerd.toml
if grep -q 'SystemdCgroup' /tmp/dsaas-containerd.toml; then
  sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /tmp/dsaas-containerd.toml
else
  awk -v table="$runc_options" '{ print } $1 == table { print "  SystemdCgroup = true" }' \
    /tmp/dsaas-containerd.toml >/tmp/dsaas-containerd.toml.new
  mv /tmp/dsaas-containerd.toml.new /tmp/dsaas-containerd.toml
fi
if [ "$(grep -c 'SystemdCgroup = true' /tmp/dsaas-containerd.toml)" != 1 ]; then
  echo "dsaas: could not set SystemdCgroup in ${runc_options} of containerd ${CONTAINERD_VERSION}'s config" >&2
  exit 1
fi
if ! cmp -s /tmp/dsaas-containerd.toml /etc/containerd/config.toml; then
  install -m 0644 /tmp/dsaas-containerd.toml /etc/containerd/config.toml
  systemctl restart containerd
fi
rm -f /tmp/dsaas-containerd.toml
systemctl enable --now containerd >/dev/null
systemctl enable kubelet >/dev/null

# iSCSI and multipath, where the stack needs block storage, are prepare-block-storage.sh's job.
echo "dsaas: node prepared (containerd ${CONTAINERD_VERSION}, Kubernetes ${KUBERNETES_VERSION})"
