"""Pure renderers for the cloud-init documents a node VM boots with.

On vSphere, cloud-init's VMware datasource reads `guestinfo.metadata` and `guestinfo.userdata`
(each with a `.encoding`) from the VM's `extra_config`. The metadata carries the instance id,
the host name and a netplan v2 `network` block; the user data is a `#cloud-config` document.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from config.settings import NodeSpec, Role, Settings

ENCODING = "gzip+base64"

# Packages every node needs before the kubeadm scripts run: TLS/apt tooling for the pinned
# repositories, conntrack/socat for kubelet, nfs-common for Trident's NFS volumes and
# open-vm-tools so vCenter sees the guest's state and addresses.
BASE_PACKAGES: tuple[str, ...] = (
    "apt-transport-https",
    "ca-certificates",
    "conntrack",
    "curl",
    "gpg",
    "jq",
    "nfs-common",
    "open-vm-tools",
    "socat",
)


@dataclass(frozen=True)
class HostKey:
    """A node's SSH host key pair, made by the program (tls.PrivateKey) so every connection can pin
    the public half instead of trusting whatever answers at the node's address first."""

    private_openssh: str
    """OpenSSH private key (secret: whoever holds it can answer as the node)."""
    public_openssh: str
    """`ssh-ed25519 AAAA...`: the line pulumi-command pins (`hostKey`) and a known_hosts entry carries."""


def _dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def render_user_data(node: NodeSpec, settings: Settings, authorized_keys: Sequence[str], host_key: HostKey) -> str:
    """The `#cloud-config` user data: admin user with SSH keys only, the node's own host key, packages,
    time sync. Holds the host's private key: the document is a secret wherever it travels."""
    domain = settings.network.search_domains[0] if settings.network.search_domains else None
    document: dict[str, Any] = {
        "hostname": node.name,
        **({"fqdn": f"{node.name}.{domain}"} if domain else {}),
        "manage_etc_hosts": True,
        "users": [
            {
                "name": settings.ssh.user,
                "gecos": "dsaas automation (pulumi-command over SSH)",
                "groups": ["sudo"],
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "shell": "/bin/bash",
                "lock_passwd": True,
                "ssh_authorized_keys": list(authorized_keys),
            }
        ],
        "disable_root": True,
        "ssh_pwauth": False,
        # The template's host keys are shared by every clone (and whoever can read the template):
        # cloud-init deletes them and installs only this node's ed25519 key, the one every
        # connection pins. With `ssh_keys` given, cloud-init generates no other key type.
        "ssh_deletekeys": True,
        "ssh_keys": {
            "ed25519_private": host_key.private_openssh,
            "ed25519_public": host_key.public_openssh.strip(),
        },
        "package_update": True,
        "packages": list(BASE_PACKAGES),
        "timezone": "Etc/UTC",
        "write_files": [
            {
                "path": "/etc/dsaas/node.yaml",
                "permissions": "0644",
                "content": _dump(
                    {"cluster": settings.cluster.cluster_name, "node": node.name, "role": node.role.value}
                ),
            }
        ],
    }
    if node.role is Role.CONTROL_PLANE:
        document["write_files"].append(
            {"path": SSHD_DROP_IN, "permissions": "0644", "content": render_sshd_limits(settings)}
        )
    if settings.network.ntp_servers:
        document["ntp"] = {"enabled": True, "servers": list(settings.network.ntp_servers)}
    return "#cloud-config\n" + _dump(document)


SSHD_DROP_IN = "/etc/ssh/sshd_config.d/60-dsaas-maxstartups.conf"


def render_sshd_limits(settings: Settings) -> str:
    """sshd's default `MaxStartups 10:30:100` drops 30% of new connections once 10 are unauthenticated: the
    first control plane serves two SSH sessions per joining worker (credentials, membership), so it admits
    twice the join window with room for the control planes' own steps before it starts dropping any."""
    start = max(10, 2 * settings.cluster.join_concurrency + 10)
    return f"# dsaas: room for 2 x dsaas:joinConcurrency handshakes at once\nMaxStartups {start}:30:{2 * start}\n"


# vSphere network adapter type → the guest kernel driver netplan matches on.
NIC_DRIVERS: dict[str, str] = {"vmxnet3": "vmxnet3", "e1000e": "e1000e", "e1000": "e1000"}
PRIMARY_NIC = "primary"


def nic_driver(adapter_type: str) -> str:
    if adapter_type not in NIC_DRIVERS:
        raise ValueError(
            f"the template's network adapter type {adapter_type!r} is not one dsaas configures "
            f"({', '.join(NIC_DRIVERS)}): give the template a vmxnet3 adapter"
        )
    return NIC_DRIVERS[adapter_type]


def render_network_config(node: NodeSpec, settings: Settings, adapter_type: str) -> dict[str, Any]:
    """A netplan v2 document giving the node its static address."""
    network = settings.network
    nameservers: dict[str, Any] = {"addresses": [str(a) for a in network.dns_servers]}
    if network.search_domains:
        nameservers["search"] = list(network.search_domains)
    return {
        "version": 2,
        "ethernets": {
            PRIMARY_NIC: {
                # Matched by driver and renamed: the kernel's name depends on the virtual hardware's PCI
                # slot (ens160, ens192, ...), and kube-vip must know the name to announce the VIP on it.
                "match": {"driver": nic_driver(adapter_type)},
                "set-name": network.interface,
                "dhcp4": False,
                "dhcp6": False,
                "addresses": [f"{node.address}/{network.subnet.prefixlen}"],
                "routes": [{"to": "default", "via": str(network.gateway)}],
                "nameservers": nameservers,
            }
        },
    }


def render_metadata(node: NodeSpec, settings: Settings, adapter_type: str) -> str:
    """The VMware datasource metadata: identity and network."""
    return _dump(
        {
            "instance-id": node.name,
            "local-hostname": node.name,
            "network": render_network_config(node, settings, adapter_type),
        }
    )


def encode(text: str) -> str:
    """gzip+base64, deterministic (mtime 0) so an unchanged document never shows as a diff."""
    return base64.b64encode(gzip.compress(text.encode(), mtime=0)).decode()


def decode(encoded: str) -> str:
    return gzip.decompress(base64.b64decode(encoded)).decode()


def guestinfo(metadata: str, user_data: str) -> dict[str, str]:
    """The `extra_config` keys the VMware datasource reads."""
    return {
        "guestinfo.metadata": encode(metadata),
        "guestinfo.metadata.encoding": ENCODING,
        "guestinfo.userdata": encode(user_data),
        "guestinfo.userdata.encoding": ENCODING,
    }
