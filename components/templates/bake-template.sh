#!/usr/bin/env bash
# Turns a fresh Ubuntu cloud image VM into the node template, once: the node's pinned packages
# (prepare-node.sh, the same file every node runs), the images every node pulls, then the clean-up that
# makes each clone a new instance. Runs as a systemd unit after cloud-init's final stage, logs to the
# console and /var/log/dsaas-bake.log, and powers the VM off only when everything worked: the program
# waits for that power-off. On a failure the VM stays on with the failing step on its console.
set -euo pipefail

: "${BAKE_ADDRESS:?}" "${BAKE_GATEWAY:?}" "${BAKE_DNS:?}" "${NIC_DRIVER:?}" "${KUBERNETES_VERSION:?}"
: "${BAKE_IMAGES?}" "${BASE_PACKAGES:?}" "${TEMPLATE_DESCRIPTION:?}"
export DEBIAN_FRONTEND=noninteractive
exec > >(tee -a /var/log/dsaas-bake.log >/dev/console) 2>&1
trap 'echo "dsaas: preparing the template failed at line ${LINENO}; the VM stays powered on (log: /var/log/dsaas-bake.log)"' ERR

# The address is the template's own (dsaas:vsphere.templateImage.address), for this boot only.
cat >/etc/netplan/60-dsaas-bake.yaml <<NETPLAN
network:
  version: 2
  ethernets:
    bake:
      match: {driver: ${NIC_DRIVER}}
      dhcp4: false
      dhcp6: false
      addresses: [${BAKE_ADDRESS}]
      routes: [{to: default, via: ${BAKE_GATEWAY}}]
      nameservers: {addresses: [${BAKE_DNS}]}
NETPLAN
chmod 0600 /etc/netplan/60-dsaas-bake.yaml
rm -f /etc/netplan/50-cloud-init.yaml
netplan apply
for _ in $(seq 60); do
  ip route show default | grep -q . && break
  sleep 1
done

apt-get -o DPkg::Lock::Timeout=600 update -qq
# shellcheck disable=SC2086  # a list of package names
apt-get -o DPkg::Lock::Timeout=600 install -y -qq ${BASE_PACKAGES}
bash /usr/local/lib/dsaas/prepare-node.sh

# The images every node pulls before its first pod: kubeadm's own, then the program's pinned ones.
kubeadm config images pull --kubernetes-version "v${KUBERNETES_VERSION}" \
  --cri-socket unix:///run/containerd/containerd.sock
for image in ${BAKE_IMAGES}; do
  crictl --runtime-endpoint unix:///run/containerd/containerd.sock pull "$image" >/dev/null
  echo "dsaas: pulled ${image}"
done

install -d -m 0755 /etc/dsaas
printf '%s\n' "$TEMPLATE_DESCRIPTION" >/etc/dsaas/template.yaml
echo "dsaas: template prepared"
bash /usr/local/lib/dsaas/seal-template.sh
