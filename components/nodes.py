"""`ClusterNodes`: the control-plane and worker VMs on vSphere, configured by cloud-init."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_tls as tls
import pulumi_vsphere as vsphere

from components import cloud_init
from components.node_template import NodeTemplate, NodeTemplateArgs, Placement
from config.loader import VSphereAccess
from config.settings import NodeSpec, Role, Settings


@dataclass(frozen=True)
class ClusterNodesArgs:
    settings: Settings
    provider: vsphere.Provider
    access: VSphereAccess
    """vCenter's address and account (the password a secret): a program-built template is waited for with it."""


def vm_annotation(settings: Settings, node: NodeSpec) -> str:
    """What an operator browsing vCenter reads on the VM: who owns it and what it is."""
    return (
        f"dsaas {settings.cluster.cluster_name}: Kubernetes {node.role.value} node {node.name} "
        f"({node.address}). Managed by Pulumi; do not edit by hand."
    )


def _guestinfo_for(node: NodeSpec, settings: Settings) -> Callable[[list[Any]], dict[str, str]]:
    """Renders a node's guestinfo once its authorized keys (including the generated one), its host
    key and the template's network adapter type are known."""

    def render(known: list[Any]) -> dict[str, str]:
        keys, adapter_type, host_private, host_public = known
        metadata = cloud_init.render_metadata(node, settings, adapter_type)
        host_key = cloud_init.HostKey(private_openssh=host_private, public_openssh=host_public)
        return cloud_init.guestinfo(metadata, cloud_init.render_user_data(node, settings, keys, host_key))

    return render


class ClusterNodes(pulumi.ComponentResource):
    """VMs cloned from the template; static addresses and SSH keys through cloud-init guestinfo."""

    vms: dict[str, vsphere.VirtualMachine]
    """Every node VM by node name, control planes first."""
    control_plane_anti_affinity: vsphere.ComputeClusterVmAntiAffinityRule | None
    """Mandatory DRS rule keeping control-plane VMs on different ESXi hosts (two or more CPs)."""
    ssh_private_key: pulumi.Output[str]
    """OpenSSH private key the kubeadm layer connects with (secret)."""
    template: NodeTemplate
    """The clone source: the operator's template VM, or the one the program built and prepared."""
    ssh_public_key: pulumi.Output[str]
    """Matching public key, installed for the admin user on every VM."""
    authorized_keys: pulumi.Output[list[str]]
    """The admin user's keys: the generated one first, then the operators' (`dsaas:ssh.authorizedKeys`)."""
    host_keys: dict[str, pulumi.Output[str]]
    """Each node's SSH host public key (`ssh-ed25519 AAAA...`) by node name: what connections pin."""

    def __init__(self, name: str, args: ClusterNodesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dsaas:vsphere:ClusterNodes", name, None, opts)
        settings = args.settings
        placement = settings.vsphere
        child = pulumi.ResourceOptions(parent=self)
        vsphere_child = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(provider=args.provider))
        invoke = pulumi.InvokeOptions(parent=self, provider=args.provider)

        key = tls.PrivateKey(
            f"{name}-ssh-key",
            algorithm="ED25519",
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(additional_secret_outputs=["private_key_openssh", "private_key_pem"])
            ),
        )
        self.ssh_private_key = pulumi.Output.secret(key.private_key_openssh)
        self.ssh_public_key = key.public_key_openssh

        datacenter = vsphere.get_datacenter_output(name=placement.datacenter, opts=invoke)
        compute_cluster = vsphere.get_compute_cluster_output(
            name=placement.compute_cluster, datacenter_id=datacenter.id, opts=invoke
        )
        datastore = vsphere.get_datastore_output(name=placement.datastore, datacenter_id=datacenter.id, opts=invoke)
        network = vsphere.get_network_output(name=placement.network, datacenter_id=datacenter.id, opts=invoke)
        self.template = NodeTemplate(
            f"{name}-template",
            NodeTemplateArgs(
                settings=settings,
                provider=args.provider,
                access=args.access,
                placement=Placement(
                    datacenter_id=datacenter.id,
                    resource_pool_id=compute_cluster.resource_pool_id,
                    datastore_id=datastore.id,
                    network_id=network.id,
                ),
            ),
            opts=child,
        )
        template = self.template.source

        self.authorized_keys = self.ssh_public_key.apply(
            lambda generated: [generated.strip(), *settings.ssh.authorized_keys]
        )

        self.vms = {}
        self.host_keys = {}
        previous_control_plane: vsphere.VirtualMachine | None = None
        for position, node in enumerate(settings.all_nodes):
            # Made here rather than by the guest, so the program knows the key before the VM first
            # answers: no connection ever trusts whatever is at the node's address on first use. The
            # key lives as long as the VM's name: a replacement VM of that name gets the same key.
            host_key = tls.PrivateKey(
                f"{name}-{node.name}-host-key",
                algorithm="ED25519",
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(additional_secret_outputs=["private_key_openssh", "private_key_pem"])
                ),
            )
            self.host_keys[node.name] = host_key.public_key_openssh.apply(lambda line: line.strip())
            # The user data carries the host's private key: the whole guestinfo is a secret.
            host_private: pulumi.Output[str] = pulumi.Output.secret(host_key.private_key_openssh)
            guestinfo: pulumi.Output[dict[str, str]] = pulumi.Output.all(
                self.authorized_keys, template.adapter_type, host_private, host_key.public_key_openssh
            ).apply(_guestinfo_for(node, settings))
            extra_config: pulumi.Output[dict[str, str]] = pulumi.Output.secret(guestinfo)
            self.vms[node.name] = vsphere.VirtualMachine(
                f"{name}-{node.name}",
                name=node.name,
                annotation=vm_annotation(settings, node),
                resource_pool_id=compute_cluster.resource_pool_id,
                datastore_id=datastore.id,
                folder=placement.folder,
                num_cpus=node.cpus,
                memory=node.memory_mib,
                # Hot-add would disable vNUMA; resizing is a planned, drained replacement instead.
                cpu_hot_add_enabled=False,
                memory_hot_add_enabled=False,
                guest_id=template.guest_id,
                firmware=template.firmware,
                scsi_type=template.scsi_type,
                enable_disk_uuid=True,
                network_interfaces=[
                    vsphere.VirtualMachineNetworkInterfaceArgs(
                        network_id=network.id,
                        adapter_type=template.adapter_type,
                    )
                ],
                disks=[
                    vsphere.VirtualMachineDiskArgs(
                        label="disk0",
                        size=node.disk_gib,
                        # Clones keep the template's provisioning; both flags follow it.
                        thin_provisioned=template.thin_provisioned,
                        eagerly_scrub=template.eagerly_scrub,
                    )
                ],
                clone=vsphere.VirtualMachineCloneArgs(template_uuid=template.uuid_for(position)),
                extra_config=extra_config,
                # The guest configures its own static address; wait for it to be routable.
                wait_for_guest_net_routable=True,
                # The guest data is read once, by cloud-init at first boot: a later change (new keys,
                # NTP) must not power-cycle every VM at once for nothing.
                extra_config_reboot_required=False,
                opts=pulumi.ResourceOptions.merge(
                    vsphere_child,
                    pulumi.ResourceOptions(
                        # A replacement VM reuses the name and address: the old one must go first.
                        delete_before_replace=True,
                        # A new template (a new image, Kubernetes version or a rebuilt one) is for the
                        # nodes made after it: replacing every node at once would take the cluster down.
                        # A node moves to it when it is replaced (docs/operations.md).
                        ignore_changes=["clone"],
                        # Control planes one after another: with hot-add off a new CPU or memory size
                        # powers the VM off, and in parallel that would take all of etcd down at once.
                        depends_on=[previous_control_plane]
                        if node.role is Role.CONTROL_PLANE and previous_control_plane
                        else [],
                    ),
                ),
            )
            if node.role is Role.CONTROL_PLANE:
                previous_control_plane = self.vms[node.name]

        control_planes = [self.vms[n.name] for n in settings.control_planes]
        self.control_plane_anti_affinity = None
        if len(control_planes) >= 2:
            self.control_plane_anti_affinity = vsphere.ComputeClusterVmAntiAffinityRule(
                f"{name}-control-plane-anti-affinity",
                name=f"{settings.cluster.cluster_name}-control-plane-anti-affinity",
                compute_cluster_id=compute_cluster.id,
                virtual_machine_ids=[vm.id for vm in control_planes],
                enabled=True,
                mandatory=True,
                opts=vsphere_child,
            )

        self.register_outputs(
            {
                "vm_ids": {node_name: vm.id for node_name, vm in self.vms.items()},
                "ssh_public_key": self.ssh_public_key,
                "host_keys": self.host_keys,
                "control_plane_anti_affinity": self.control_plane_anti_affinity,
            }
        )
