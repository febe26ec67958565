"""`KubeadmNode`: one node's lifecycle steps on the way into the cluster, as one component.

Every step is a script run as root over SSH (pulumi-command), replaced when this node's VM is:
prepare, ssh-keys, block-storage (where the hub database needs iSCSI), apiserver-files (control
planes), kube-vip (control planes), then, for every node but the first control plane, its own join
credentials, `kubeadm join` and the membership step whose `delete` drains and removes the node.
`KubeadmCluster` makes one per node and only orders them (which join waits for which).

These steps were children of `KubeadmCluster` before this component existed: each keeps its name
and carries an alias to that URN, so the engine takes it for the same resource (pulumi's
pkg/resource/deploy/step_generator.go, getOldResource: a goal whose alias URN is in the old state
is that resource) and a deployed stack sees no create, delete or replacement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_command import remote

from components import kubeadm_render as render
from config.settings import NodeSpec, Role, Settings

NODE_TYPE = "dsaas:kubernetes:KubeadmNode"
RUN_AS_ROOT = "sudo bash -s"
# Steps made after this component existed: they never had a URN under the cluster, so no alias.
STEPS_BORN_HERE = ("upgrade", "cert-renewal")


@dataclass(frozen=True)
class NodeAccess:
    """How the steps reach the nodes: shared by the cluster and every node component."""

    settings: Settings
    vms: Mapping[str, pulumi.CustomResource]
    """Node VMs by node name (from `ClusterNodes`)."""
    ssh_private_key: pulumi.Output[str]
    authorized_keys: pulumi.Output[list[str]]
    """The admin user's SSH keys, kept exactly so on every node (from `ClusterNodes`)."""
    host_keys: Mapping[str, pulumi.Output[str]]
    """Each node's SSH host public key by node name (from `ClusterNodes`): every connection pins it."""

    def connection(self, node: NodeSpec) -> remote.ConnectionArgs:
        return remote.ConnectionArgs(
            host=str(node.address),
            user=self.settings.ssh.user,
            private_key=self.ssh_private_key,
            # Only the key cloud-init installed on this node is accepted (pulumi-command 1.2.1: a fixed
            # host key, and only its algorithm offered): whoever takes the node's address while it
            # boots gets neither join credentials nor the role of the first control plane.
            host_key=self.host_keys[node.name],
            # A fresh clone boots and runs cloud-init before SSH answers: allow ~15 minutes.
            dial_error_limit=60,
            per_dial_timeout=15,
        )


def step_name(cluster_name: str, node: NodeSpec, step: str) -> str:
    """`<cluster>-<node>-<step>`: the names every deployed stack already has in its state."""
    return f"{cluster_name}-{node.name}-{step}"


def node_step(
    access: NodeAccess,
    cluster_name: str,
    node: NodeSpec,
    step: str,
    script: str | pulumi.Output[str],
    opts: pulumi.ResourceOptions,
    depends_on: Sequence[pulumi.Resource] = (),
    delete: str | None = None,
    secret_stdout: bool = False,
    on: NodeSpec | None = None,
    triggers: Sequence[Any] = (),
) -> remote.Command:
    """One script run as root on `on` (default: `node`); replaced when `node`'s VM is, or `triggers` change.

    `opts` says where the step sits in the tree (parent, aliases)."""
    target = on or node
    secret_outputs = ["stdout", "stderr"] if secret_stdout else []
    return remote.Command(
        step_name(cluster_name, node, step),
        connection=access.connection(target),
        create=RUN_AS_ROOT,
        stdin=script,
        delete=delete,
        triggers=[access.vms[node.name].id, *triggers],
        logging=remote.Logging.NONE if secret_stdout else remote.Logging.STDOUT_AND_STDERR,
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(
                depends_on=[access.vms[node.name], *depends_on],
                additional_secret_outputs=secret_outputs,
            ),
        ),
    )


@dataclass(frozen=True)
class JoinArgs:
    """What a node needs from the cluster to join it, and what its join waits for."""

    first: NodeSpec
    """The first control plane: its credentials and membership steps run there."""
    init: pulumi.Resource
    """`kubeadm init` on the first control plane."""
    ca_cert_hash: pulumi.Output[str]
    after: Sequence[pulumi.Resource]
    """Joins this one waits for: the control plane before it, or the worker one join window earlier."""


@dataclass(frozen=True)
class KubeadmNodeArgs:
    access: NodeAccess
    node: NodeSpec
    cluster: pulumi.Resource
    """The `KubeadmCluster`: these steps' parent before this component existed (their aliases)."""
    cluster_name: str
    apiserver_files_script: pulumi.Output[str] | None
    """The secret script that writes the encryption configuration (control planes only)."""
    block_storage: bool
    """Whether the hub database's ontap-san volume needs iSCSI and multipath on this node."""
    join: JoinArgs | None
    """None for the first control plane, which `kubeadm init` makes the cluster on instead."""


class KubeadmNode(pulumi.ComponentResource):
    """One node's steps, from its preparation to its membership in the cluster."""

    prepared: remote.Command
    ssh_keys: remote.Command
    block_storage: remote.Command | None
    apiserver_files: remote.Command | None
    """Control planes: the encryption configuration and audit policy, before init or join."""
    kube_vip: remote.Command | None
    """Control planes: the first before `kubeadm init` (super-admin.conf), the others after their join."""
    credentials: remote.Command | None
    join: remote.Command | None
    membership: remote.Command | None
    """On the first control plane; its delete drains and removes this node before its VM goes."""
    upgrade_drain: remote.Command | None
    """On the first control plane: drains this node before its Kubernetes upgrade (a no-op at the version)."""
    upgrade: remote.Command | None
    """On this node: kubeadm, `kubeadm upgrade apply|node`, kubelet and kubectl, when the version changes."""
    upgrade_release: remote.Command | None
    """On the first control plane: uncordons this node once Ready at the new version; the next stage waits."""
    cert_renewal: remote.Command | None
    """Control planes: the weekly renewal of kubeadm's certificates (renew-certs.sh under a systemd timer)."""

    def __init__(self, name: str, args: KubeadmNodeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(NODE_TYPE, name, None, opts)
        self._args = args
        node, settings = args.node, args.access.settings
        is_control_plane = node.role is Role.CONTROL_PLANE

        self.prepared = self._step(
            "prepare", render.render_script("prepare-node", render.prepare_node_parameters(settings))
        )
        # cloud-init installs the keys at first boot only; adding or removing an operator's key must
        # reach existing nodes too (the generated key stays first, so this connection never breaks).
        self.ssh_keys = self._step(
            "ssh-keys",
            args.access.authorized_keys.apply(
                lambda keys: render.render_script(
                    "authorized-keys", {"ADMIN_USER": settings.ssh.user, "AUTHORIZED_KEYS": "\n".join(keys)}
                )
            ),
        )
        # Only the hub database's ontap-san volume needs these, so nothing in the cluster's own
        # bring-up waits for them; layers above wait through the cluster's `ready`.
        self.block_storage = (
            self._step(
                "block-storage",
                render.render_script("prepare-block-storage", render.block_storage_parameters(node)),
                depends_on=[self.prepared],
            )
            if args.block_storage
            else None
        )
        self.apiserver_files = None
        if is_control_plane:
            if args.apiserver_files_script is None:
                raise ValueError(f"control plane {node.name} needs the apiserver-files script")
            self.apiserver_files = self._step(
                "apiserver-files", args.apiserver_files_script, depends_on=[self.prepared]
            )

        self.kube_vip = self.credentials = self.join = self.membership = None
        self.upgrade_drain = self.upgrade = self.upgrade_release = self.cert_renewal = None
        if args.join is None:
            if is_control_plane:
                # kube-vip must hold the virtual IP before `kubeadm init`, when only super-admin.conf exists.
                self.kube_vip = self._step(
                    "kube-vip",
                    render.render_script("kube-vip", render.kube_vip_parameters(settings, render.SUPER_ADMIN_CONF)),
                    depends_on=[self.prepared],
                )
        else:
            self._join(args.join)
        self.register_outputs({"join": self.join, "membership": self.membership})

    def add_upgrade(
        self, first: NodeSpec, command: str, in_cluster: Sequence[pulumi.Resource], after: Sequence[pulumi.Resource]
    ) -> remote.Command:
        """This node's upgrade steps, run when `dsaas:kubernetesVersion` changes (their scripts carry it); returns
        the step the next upgrade stage waits for. `in_cluster`: what makes this node a working member (its
        membership, or `kubeadm init`); `after`: the previous stage's releases (config/upgrade.py orders them).

        Drain and release run on the first control plane with admin.conf (a worker holds no credential that
        may evict pods); the upgrade itself runs on the node, where kubeadm must. On a first `up` every node
        is already at the version and the three steps change nothing."""
        settings = self._args.access.settings
        node = self._args.node
        waits = [*in_cluster, *([self.kube_vip] if self.kube_vip is not None else [])]
        self.upgrade_drain = self._step(
            "upgrade-drain",
            render.render_script("upgrade-drain", render.upgrade_drain_parameters(settings, node, "drain")),
            depends_on=[*waits, *after],
            on=first,
        )
        self.upgrade = self._step(
            "upgrade",
            render.render_script("upgrade-node", render.upgrade_node_parameters(settings, node, command)),
            depends_on=[self.upgrade_drain],
        )
        self.upgrade_release = self._step(
            "upgrade-release",
            render.render_script("upgrade-drain", render.upgrade_drain_parameters(settings, node, "release")),
            depends_on=[self.upgrade],
            on=first,
        )
        return self.upgrade_release

    def add_cert_renewal(self, in_cluster: Sequence[pulumi.Resource]) -> remote.Command:
        """A control plane's weekly certificate renewal, installed once it runs its control plane (`in_cluster`:
        `kubeadm init` or its join): without it a cluster not upgraded within a year loses its API server."""
        settings, node = self._args.access.settings, self._args.node
        self.cert_renewal = self._step(
            "cert-renewal",
            render.render_script("cert-renewal", render.cert_renewal_parameters(settings, node)),
            depends_on=list(in_cluster),
        )
        return self.cert_renewal

    def _step(
        self,
        step: str,
        script: str | pulumi.Output[str],
        depends_on: Sequence[pulumi.Resource] = (),
        delete: str | None = None,
        secret_stdout: bool = False,
        on: NodeSpec | None = None,
        parent: pulumi.Resource | None = None,
    ) -> remote.Command:
        args = self._args
        owner = parent or self
        # Same name, new parent: the alias names the URN the step has had under the cluster. Steps that never
        # lived there (the upgrade's) need none.
        aliases = (
            [] if owner is args.cluster or step.startswith(STEPS_BORN_HERE) else [pulumi.Alias(parent=args.cluster)]
        )
        return node_step(
            args.access,
            args.cluster_name,
            args.node,
            step,
            script,
            pulumi.ResourceOptions(parent=owner, aliases=aliases),
            depends_on=depends_on,
            delete=delete,
            secret_stdout=secret_stdout,
            on=on,
        )

    def _join(self, join: JoinArgs) -> None:
        """This node's own credentials, made on the first control plane just before it joins, then the join.

        The credentials step runs as soon as `kubeadm init` is done and this node is prepared (and,
        being a step of this node, again when its VM is replaced): no node waits for any other VM,
        and every run makes a new token and certificate key.
        """
        node, settings = self._args.node, self._args.access.settings
        waits: list[pulumi.Resource] = [self.prepared]
        if self.apiserver_files is not None:
            waits.append(self.apiserver_files)
        waits.extend(join.after)
        # The credentials stay under the cluster: the join script names their URN (the `pulumi up --replace`
        # that makes new ones, docs/architecture.md), so moving them would rewrite every deployed node's
        # join script, an update that runs `kubeadm join` again on every node of a live cluster.
        self.credentials = self._step(
            "join-credentials",
            render.render_script("join-credentials", render.join_credentials_parameters(node)),
            depends_on=[join.init, *waits],
            secret_stdout=True,
            on=join.first,
            parent=self._args.cluster,
        )
        script = pulumi.Output.all(self.credentials.stdout, join.ca_cert_hash, self.credentials.urn).apply(
            lambda values: render.render_script(
                "kubeadm-join",
                {
                    "KUBEADM_CONFIG_B64": render.b64(
                        render.render_join_config(
                            settings, node, render.parse_join_credentials(values[0], node), values[1]
                        )
                    ),
                    "NODE_NAME": node.name,
                    "NODE_ROLE": node.role.value,
                    "CREDENTIALS_URN": values[2],
                },
            )
        )
        reset = (
            render.heredoc_command(render.render_script("kubeadm-reset", {}))
            if node.role is Role.CONTROL_PLANE
            else None
        )
        self.join = self._step(
            "kubeadm-join", pulumi.Output.secret(script), depends_on=[self.credentials, *waits], delete=reset
        )
        if node.role is Role.CONTROL_PLANE:
            self.kube_vip = self._step(
                "kube-vip",
                render.render_script("kube-vip", render.kube_vip_parameters(settings, render.ADMIN_CONF)),
                depends_on=[self.join],
            )
        self.membership = self._step(
            "membership",
            render.render_script("node-membership", render.node_label_parameters(node)),
            depends_on=[self.join],
            delete=render.heredoc_command(render.render_script("drain-node", render.drain_node_parameters(node))),
            on=join.first,
        )
