#!/usr/bin/env bash
# iSCSI and multipath for Trident's ontap-san volumes (the hub database), as NetApp asks for Ubuntu:
# open-iscsi with manual session scans, multipathd with find_multipaths no, and an initiator name of
# the node's own (ONTAP igroups list initiators, and clones of a template that ever started iscsid
# would all share one). The VMs' own disks are kept out of multipath: with disk.EnableUUID on they
# report a WWID, and find_multipaths no would otherwise claim them.
# Idempotent: a second run changes nothing and restarts nothing.
set -euo pipefail

: "${INITIATOR_NAME:?}"
export DEBIAN_FRONTEND=noninteractive
# unattended-upgrades and apt-daily often hold the dpkg lock just after first boot: wait for it.
APT_WAIT=(-o DPkg::Lock::Timeout=600)

apt-get "${APT_WAIT[@]}" install -y -qq open-iscsi lsscsi sg3-utils multipath-tools scsitools >/dev/null

iscsi_changed=false
if ! grep -q '^node.session.scan = manual$' /etc/iscsi/iscsid.conf; then
  sed -ri 's/^#?\s*node\.session\.scan\s*=.*$/node.session.scan = manual/' /etc/iscsi/iscsid.conf
  grep -q '^node.session.scan = manual$' /etc/iscsi/iscsid.conf || echo 'node.session.scan = manual' >>/etc/iscsi/iscsid.conf
  iscsi_changed=true
fi
if [ "$(cat /etc/iscsi/initiatorname.iscsi 2>/dev/null || true)" != "InitiatorName=${INITIATOR_NAME}" ]; then
  printf 'InitiatorName=%s\n' "$INITIATOR_NAME" >/etc/iscsi/initiatorname.iscsi
  iscsi_changed=true
fi

multipath_changed=false
wanted="$(mktemp)"
trap 'rm -f "$wanted"' EXIT
cat >"$wanted" <<'MULTIPATH'
defaults {
    user_friendly_names yes
    find_multipaths no
}
blacklist {
    device {
        vendor "VMware"
        product "Virtual disk"
    }
}
MULTIPATH
if ! cmp -s "$wanted" /etc/multipath.conf; then
  install -m 0644 "$wanted" /etc/multipath.conf
  multipath_changed=true
fi

# multipathd.service is the unit; multipath-tools.service is only its alias, and `systemctl enable`
# refuses to operate on an alias once the unit is enabled (which the package does on install).
systemctl enable --now multipathd.service iscsid.service open-iscsi.service >/dev/null
if [ "$multipath_changed" = true ]; then
  systemctl restart multipathd.service
fi
if [ "$iscsi_changed" = true ]; then
  systemctl restart iscsid.service
fi
echo "dsaas: block storage ready (${INITIATOR_NAME}; iscsi changed: ${iscsi_changed}, multipath changed: ${multipath_changed})"
