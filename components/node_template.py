"""`NodeTemplate`: the VM every node is cloned from, either one an operator built (`dsaas:vsphere.template`,
looked up by name) or one the program builds from a checksum-pinned Ubuntu cloud image
(`dsaas:vsphere.templateImage`; components/template_render.py renders what it runs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_vsphere as vsphere

from components import template_render
from components.kubeadm_render import render_script
from config.loader import VSphereAccess
from config.nodes import TemplateImage
from config.settings import Settings


@dataclass(frozen=True)
class TemplateSource:
    """What a clone takes from its template: the source VMs and the virtual hardware they share."""

    uuids: Sequence[pulumi.Input[str]]
    """The template, or its per-host copies: node i is cloned from `uuid_for(i)`."""
    guest_id: pulumi.Input[str]
    firmware: pulumi.Input[str]
    scsi_type: pulumi.Input[str]
    adapter_type: pulumi.Input[str]
    thin_provisioned: pulumi.Input[bool]
    eagerly_scrub: pulumi.Input[bool]

    def uuid_for(self, index: int) -> pulumi.Input[str]:
        """Round-robin over the copies, so each source host serves its share of the clones."""
        return self.uuids[index % len(self.uuids)]


@dataclass(frozen=True)
class Placement:
    """The vSphere objects the node VMs (and a program-built template) are placed in."""

    datacenter_id: pulumi.Input[str]
    resource_pool_id: pulumi.Input[str]
    datastore_id: pulumi.Input[str]
    network_id: pulumi.Input[str]


@dataclass(frozen=True)
class NodeTemplateArgs:
    settings: Settings
    provider: vsphere.Provider
    access: VSphereAccess
    placement: Placement


class NodeTemplate(pulumi.ComponentResource):
    """The clone source. Program-built: the OVA is fetched and checked on the operator's machine, deployed,
    prepares itself (packages, images) and powers off; clones start only after that power-off."""

    source: TemplateSource
    vm: vsphere.VirtualMachine | None
    """The program-built template VM (None for an operator's template)."""

    def __init__(self, name: str, args: NodeTemplateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dsaas:vsphere:NodeTemplate", name, None, opts)
        settings = args.settings
        image = settings.vsphere.template_image
        self.vm = None
        if image is None:
            self.source = self._existing(settings, args)
        else:
            self.source = self._built(name, settings, image, args)
        self.register_outputs({"template_uuids": list(self.source.uuids)})

    def _existing(self, settings: Settings, args: NodeTemplateArgs) -> TemplateSource:
        assert settings.vsphere.template is not None
        template = vsphere.get_virtual_machine_output(
            name=settings.vsphere.template,
            datacenter_id=args.placement.datacenter_id,
            opts=pulumi.InvokeOptions(parent=self, provider=args.provider),
        )
        return TemplateSource(
            uuids=[template.id],
            guest_id=template.guest_id,
            firmware=template.firmware,
            scsi_type=template.scsi_type,
            adapter_type=template.network_interface_types[0],
            thin_provisioned=template.disks[0].thin_provisioned,
            eagerly_scrub=template.disks[0].eagerly_scrub,
        )

    def _built(self, name: str, settings: Settings, image: TemplateImage, args: NodeTemplateArgs) -> TemplateSource:
        child = pulumi.ResourceOptions(parent=self)
        vm_name = template_render.template_vm_name(settings, image)
        fetched = command.local.Command(
            f"{name}-fetch-image",
            interpreter=["/bin/bash", "-c"],
            create=render_script("fetch-image", template_render.fetch_image_parameters(image)),
            # The image is named by its checksum: another checksum is another download.
            triggers=[image.sha256],
            opts=child,
        )
        self.vm = vsphere.VirtualMachine(
            f"{name}-vm",
            name=vm_name,
            annotation=template_render.template_annotation(settings, image),
            datacenter_id=args.placement.datacenter_id,
            **_template_hardware(settings, args.placement),
            ovf_deploy=vsphere.VirtualMachineOvfDeployArgs(
                local_ovf_path=fetched.stdout.apply(lambda out: out.strip()),
                disk_provisioning="thin",
                ovf_network_map={template_render.OVF_NETWORK: args.placement.network_id},
            ),
            vapp=vsphere.VirtualMachineVappArgs(
                properties=template_render.vapp_properties(settings, image, vm_name),
            ),
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    provider=args.provider,
                    # The OVA's path is this operator's cache; what identifies the image is its checksum,
                    # which is part of the VM's name.
                    ignore_changes=["ovfDeploy"],
                    # A new image or bake is a new VM under a new name; the old one goes once clones are made.
                    replace_on_changes=["name"],
                ),
            ),
        )
        # Clones read the template's UUID through the wait, so none starts before the template is off.
        uuid = self._powered_off(f"{name}-prepared", self.vm, vm_name, image.timeout_minutes, settings, args.access)
        copies = [
            self._copy(name, settings, args, vm_name, uuid, index, host) for index, host in enumerate(image.hosts)
        ]
        return TemplateSource(
            uuids=copies or [uuid],
            guest_id=template_render.GUEST_ID,
            firmware=template_render.FIRMWARE,
            scsi_type=template_render.SCSI_TYPE,
            adapter_type=template_render.ADAPTER_TYPE,
            thin_provisioned=True,
            eagerly_scrub=False,
        )

    def _copy(
        self,
        name: str,
        settings: Settings,
        args: NodeTemplateArgs,
        vm_name: str,
        source_uuid: pulumi.Output[str],
        index: int,
        host: str,
    ) -> pulumi.Output[str]:
        """A copy of the prepared template on `host`, booted once to seal itself and powered off; the UUID
        comes through its own wait."""
        child = pulumi.ResourceOptions(parent=self)
        vsphere_child = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(provider=args.provider))
        copy_name = template_render.copy_name(vm_name, index)
        host_system = vsphere.get_host_output(
            name=host,
            datacenter_id=args.placement.datacenter_id,
            opts=pulumi.InvokeOptions(parent=self, provider=args.provider),
        )
        copy = vsphere.VirtualMachine(
            f"{name}-copy-{index + 1}",
            name=copy_name,
            annotation=f"dsaas {settings.cluster.cluster_name}: copy of the node template {vm_name} on {host}. "
            "Managed by Pulumi; clone it, never power it on.",
            host_system_id=host_system.id,
            **_template_hardware(settings, args.placement),
            clone=vsphere.VirtualMachineCloneArgs(template_uuid=source_uuid),
            extra_config=template_render.copy_guestinfo(copy_name),
            opts=pulumi.ResourceOptions.merge(vsphere_child, pulumi.ResourceOptions(replace_on_changes=["name"])),
        )
        return self._powered_off(f"{name}-copy-{index + 1}-sealed", copy, copy_name, 15, settings, args.access)

    def _powered_off(
        self,
        resource_name: str,
        vm: vsphere.VirtualMachine,
        vm_name: str,
        timeout_minutes: int,
        settings: Settings,
        access: VSphereAccess,
    ) -> pulumi.Output[str]:
        """`vm`'s UUID once it has powered itself off (components/vsphere_wait.py): what clones of it read."""
        waited = command.local.Command(
            resource_name,
            interpreter=["/bin/sh", "-c"],
            # The engine starts providers with PULUMI_ROOT_DIRECTORY set to the project (where .venv is, as
            # Pulumi.yaml's `virtualenv` says); the module needs the program's pyVmomi.
            create='cd "${PULUMI_ROOT_DIRECTORY:-$PWD}" && exec .venv/bin/python -m components.vsphere_wait',
            environment={
                "DSAAS_VSPHERE_SERVER": access.server,
                "DSAAS_VSPHERE_USER": access.user,
                "DSAAS_VSPHERE_PASSWORD": access.password,  # a secret Output (config.loader)
                "DSAAS_VSPHERE_INSECURE": "true" if settings.vsphere.allow_unverified_ssl else "false",
                "DSAAS_VM_UUID": vm.uuid,
                "DSAAS_VM_NAME": vm_name,
                "DSAAS_TIMEOUT_MINUTES": str(timeout_minutes),
            },
            triggers=[vm.uuid],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[vm]),
        )
        return pulumi.Output.all(vm.uuid, waited.stdout).apply(lambda known: str(known[0]))


def _template_hardware(settings: Settings, placement: Placement) -> dict[str, Any]:
    """What the template and its copies share: placement and the virtual hardware every clone inherits. Neither
    keeps an address and both power themselves off, so the provider waits for no guest network."""
    return {
        "resource_pool_id": placement.resource_pool_id,
        "datastore_id": placement.datastore_id,
        "folder": settings.vsphere.folder,
        "num_cpus": template_render.CPUS,
        "memory": template_render.MEMORY_MIB,
        "guest_id": template_render.GUEST_ID,
        "firmware": template_render.FIRMWARE,
        "scsi_type": template_render.SCSI_TYPE,
        "network_interfaces": [
            vsphere.VirtualMachineNetworkInterfaceArgs(
                network_id=placement.network_id, adapter_type=template_render.ADAPTER_TYPE
            )
        ],
        "disks": [vsphere.VirtualMachineDiskArgs(label="disk0", size=template_render.DISK_GIB, thin_provisioned=True)],
        "wait_for_guest_net_timeout": 0,
        "wait_for_guest_ip_timeout": 0,
    }
