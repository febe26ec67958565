"""Pure renderers for a node template the program builds itself (`dsaas:vsphere.templateImage`).

The template VM is deployed from an Ubuntu cloud image OVA. Its first boot is configured through the
OVA's vApp properties (cloud-init's OVF datasource reads `user-data` from them; pulumi-vsphere passes no
`extra_config` guestinfo to a VM deployed from an OVF, terraform-provider-vsphere issue #1124): the user
data installs a systemd unit that runs `bake-template.sh` after cloud-init's final stage. The bake installs
what every node needs at the pinned versions (the nodes' own `prepare-node.sh`), pulls the images every
node pulls, makes the VM a clean template and powers it off. Clones then read their own identity from
guestinfo (the VMware datasource, as with a template an operator built).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import yaml

from components import cloud_init
from components.kubeadm_render import TEMPLATES, prepare_node_parameters, render_script
from config import versions
from config.nodes import TemplateImage
from config.settings import Settings

# The virtual hardware the program gives its template (and so every clone): Ubuntu's cloud image boots
# by BIOS or UEFI and has the pvscsi and vmxnet3 drivers built in.
GUEST_ID = "ubuntu64Guest"
FIRMWARE = "efi"
SCSI_TYPE = "pvscsi"
ADAPTER_TYPE = "vmxnet3"
# The cloud image's disk is 3.5 GiB; 20 GiB is the smallest node disk (dsaas:nodes.*.diskGib), and a clone
# may grow its disk but never shrink it below the template's.
DISK_GIB = 20
CPUS = 2
MEMORY_MIB = 4096
# The network name inside Ubuntu's OVF descriptor (`<Network ovf:name="VM Network">`), mapped to the port group.
OVF_NETWORK = "VM Network"
BAKE_UNIT = "dsaas-bake.service"
SEAL_UNIT = "dsaas-seal.service"
LIBRARY = "/usr/local/lib/dsaas"


def template_images(settings: Settings) -> list[str]:
    """What the bake pulls besides kubeadm's own images: kube-vip on the control planes, and the profiles'
    notebook images (several GB each: the largest part of a first server start) when the hub pre-pulls."""
    images = [versions.KUBE_VIP_IMAGE]
    if settings.hub.prepull_images:
        images += [profile.image for profile in settings.hub.all_profiles]
    return sorted(set(images))


def template_description(settings: Settings, image: TemplateImage) -> str:
    """`/etc/dsaas/template.yaml` on the template and every clone: what it was built from."""
    return yaml.safe_dump(
        {
            "cluster": settings.cluster.cluster_name,
            "image": {"url": image.url, "sha256": image.sha256},
            "kubernetes": settings.cluster.kubernetes_version,
            "containerd": versions.CONTAINERD_VERSION,
            "images": template_images(settings),
        },
        sort_keys=False,
    ).strip()


def bake_parameters(settings: Settings, image: TemplateImage) -> dict[str, str]:
    network = settings.network
    return {
        **prepare_node_parameters(settings),
        "BAKE_ADDRESS": f"{image.address}/{network.subnet.prefixlen}",
        "BAKE_GATEWAY": str(network.gateway),
        "BAKE_DNS": ", ".join(str(a) for a in network.dns_servers),
        "NIC_DRIVER": cloud_init.nic_driver(ADAPTER_TYPE),
        "BAKE_IMAGES": " ".join(template_images(settings)),
        "BASE_PACKAGES": " ".join(cloud_init.BASE_PACKAGES),
        "TEMPLATE_DESCRIPTION": template_description(settings, image),
    }


def render_bake_unit() -> str:
    return "\n".join(
        [
            "[Unit]",
            "Description=dsaas: prepare this VM as the node template, then power it off",
            # Queued by cloud-init's runcmd, so it starts once cloud-init's final stage has finished and
            # may clean cloud-init's state without racing it.
            "After=cloud-final.service",
            "",
            "[Service]",
            "Type=oneshot",
            f"ExecStart=/bin/bash {LIBRARY}/bake-template.sh",
            "TimeoutStartSec=0",
            "",
        ]
    )


def render_seal_unit() -> str:
    """Installed by the bake, started on each per-host copy's one boot (by its guestinfo user data)."""
    return "\n".join(
        [
            "[Unit]",
            "Description=dsaas: seal this copy of the node template, then power it off",
            "After=cloud-final.service",
            "",
            "[Service]",
            "Type=oneshot",
            f"ExecStart=/bin/bash {LIBRARY}/seal-template.sh",
            "",
        ]
    )


def render_bake_user_data(settings: Settings, image: TemplateImage, vm_name: str) -> str:
    """The template VM's `#cloud-config`. It carries no secret: nobody logs in to the template, it
    prepares itself and powers off, and the vApp properties stay readable in vCenter."""
    document: dict[str, Any] = {
        "hostname": vm_name,
        "disable_root": True,
        "ssh_pwauth": False,
        "write_files": [
            {
                "path": f"{LIBRARY}/prepare-node.sh",
                "permissions": "0755",
                "content": (TEMPLATES / "prepare-node.sh").read_text(),
            },
            {
                "path": f"{LIBRARY}/bake-template.sh",
                "permissions": "0755",
                "content": render_script("bake-template", bake_parameters(settings, image)),
            },
            {
                "path": f"{LIBRARY}/seal-template.sh",
                "permissions": "0755",
                "content": (TEMPLATES / "seal-template.sh").read_text(),
            },
            {"path": f"/etc/systemd/system/{BAKE_UNIT}", "permissions": "0644", "content": render_bake_unit()},
            {"path": f"/etc/systemd/system/{SEAL_UNIT}", "permissions": "0644", "content": render_seal_unit()},
        ],
        "runcmd": [["systemctl", "daemon-reload"], ["systemctl", "start", "--no-block", BAKE_UNIT]],
    }
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def template_vm_name(settings: Settings, image: TemplateImage) -> str:
    """`<cluster>-template-<digest>`: a new image or a new bake is a new template VM beside the old one
    (vSphere names are unique in a folder), so the old one stays until every clone is made."""
    user_data = render_bake_user_data(settings, image, vm_name="")
    digest = hashlib.sha256(f"{image.sha256}\n{user_data}".encode()).hexdigest()[:10]
    return f"{settings.cluster.cluster_name}-template-{digest}"


def vapp_properties(settings: Settings, image: TemplateImage, vm_name: str) -> dict[str, str]:
    """The OVA's properties cloud-init's OVF datasource reads (Ubuntu's OVF descriptor declares
    instance-id, hostname, seedfrom, public-keys, user-data and password; only these three are set)."""
    user_data = render_bake_user_data(settings, image, vm_name)
    return {
        "instance-id": vm_name,
        "hostname": vm_name,
        "user-data": base64.b64encode(user_data.encode()).decode(),
    }


def fetch_image_parameters(image: TemplateImage) -> dict[str, str]:
    return {"IMAGE_URL": image.url, "IMAGE_SHA256": image.sha256}


def template_annotation(settings: Settings, image: TemplateImage) -> str:
    return (
        f"dsaas {settings.cluster.cluster_name}: node template from {image.url} (sha256 {image.sha256[:12]}...), "
        f"Kubernetes {settings.cluster.kubernetes_version}. Managed by Pulumi; clone it, never power it on."
    )


def copy_name(vm_name: str, index: int) -> str:
    return f"{vm_name}-copy-{index + 1}"


def copy_guestinfo(name: str) -> dict[str, str]:
    """A per-host copy boots once from guestinfo (the template reads only the VMware datasource): it is a
    new instance, so cloud-init runs, and its user data starts the seal the bake installed. No secret, no
    address: nobody connects to it."""
    metadata = yaml.safe_dump({"instance-id": name, "local-hostname": name}, sort_keys=False)
    user_data = "#cloud-config\n" + yaml.safe_dump(
        {"runcmd": [["systemctl", "start", "--no-block", SEAL_UNIT]]}, sort_keys=False
    )
    return cloud_init.guestinfo(metadata, user_data)
