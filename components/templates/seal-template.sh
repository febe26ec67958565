#!/usr/bin/env bash
# Seals a prepared template so that every clone is a new instance, then powers the VM off: what a clone must
# not inherit is the preparation's address, the host keys, the machine id and cloud-init's record of this
# instance. Clones read their own identity from guestinfo (the VMware datasource) even though the OVA's vApp
# properties stay on the VM. Run at the end of bake-template.sh, and on each per-host copy of the template
# (dsaas:vsphere.templateImage.hosts), whose one boot must leave nothing behind either.
set -euo pipefail

printf 'datasource_list: [ VMware, None ]\n' >/etc/cloud/cloud.cfg.d/90-dsaas-datasource.cfg
rm -f /etc/netplan/60-dsaas-bake.yaml /etc/ssh/ssh_host_*
apt-get clean
cloud-init clean --logs --machine-id
sync
echo "dsaas: template sealed; powering off"
systemctl poweroff
