"""`KubeadmCluster`: Kubernetes on the node VMs, driven over SSH with pulumi-command.

Order on the first control plane: prepare → kube-vip (super-admin.conf) → kubeadm init (then
admin.conf, super-admin.conf removed) → CA hash, admin kubeconfig → Calico. Every other node joins
with credentials of its own, made on the first control plane by kubeadm as soon as init is done
and that node is prepared: workers in parallel, each waiting for nothing but its own VM and the
control plane; further control planes one after another (etcd grows one member at a time). Every
joined node has a membership step on the first control plane that deletes its join token once it
has registered, and whose `delete` drains the node and removes it before its VM goes.

Each node's steps live in its own `KubeadmNode` (components/kubeadm_node.py); this component makes
what belongs to the cluster and orders the nodes' joins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi_command import remote

from components import kubeadm_render as render
from components.kubeadm_node import JoinArgs, KubeadmNode, KubeadmNodeArgs, NodeAccess, node_step
from components.trident_render import needs_block_storage
from config import versions
from config.settings import NodeSpec, Role
from config.upgrade import batches


@dataclass(frozen=True)
class KubeadmClusterArgs(NodeAccess):
    """What the cluster needs from `ClusterNodes` (how its steps reach the nodes), and whether this `up`
    changes the Kubernetes version."""

    upgrading: bool = False
    """True when `dsaas:kubernetesVersion` differs from the stack's previous output (config/upgrade.py)."""
    admin_credential_generation: int = 0
    """`kubeadm_render.admin_credential_generation`: raised when the admin kubeconfig in the state nears its end."""


class KubeadmCluster(pulumi.ComponentResource):
    """kubeadm HA control plane behind kube-vip, workers, Calico; exposes a kubernetes.Provider.

    Each node's steps are its own `KubeadmNode`; this component makes the cluster (the encryption key,
    `kubeadm init`, the CA hash, the admin kubeconfig, Calico) and orders the nodes' joins.
    """

    kubeconfig: pulumi.Output[str]
    """Admin kubeconfig pointing at the virtual IP (secret)."""
    provider: k8s.Provider
    """Provider for every later Kubernetes resource; built from `kubeconfig`, never ambient."""
    nodes: dict[str, KubeadmNode]
    """Each node's component by node name."""
    init: remote.Command
    """`kubeadm init` on the first control plane."""
    joins: dict[str, remote.Command]
    """`kubeadm join` by node name (all nodes but the first control plane)."""
    cni: k8s.helm.v3.Release
    """Calico through the tigera-operator chart."""
    ready: list[pulumi.Resource]
    """Depend on these to run after every node is registered and the CNI is installed (and, where the
    hub database is on ontap-san, every node has iSCSI and multipath)."""
    upgraded: list[remote.Command]
    """Every node runs `dsaas:kubernetesVersion` once these are done: the last upgrade stage's releases (when
    upgrading), otherwise `kubeadm init` and every node's membership."""
    admin_connection: remote.ConnectionArgs
    """SSH to the first control plane, where later layers run readiness checks with admin.conf."""

    def __init__(self, name: str, args: KubeadmClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dsaas:kubernetes:KubeadmCluster", name, None, opts)
        settings = args.settings
        self._name = name
        self._access: NodeAccess = args
        child = pulumi.ResourceOptions(parent=self)
        first, *other_control_planes = settings.control_planes

        # Secrets are encrypted in etcd with this key. It lives in the stack's state, not on a node: a
        # replaced control plane gets the same key, so it reads what the others wrote.
        encryption_key = random.RandomBytes(
            f"{name}-secrets-encryption-key",
            length=render.ENCRYPTION_KEY_BYTES,
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(additional_secret_outputs=["base64", "hex"])
            ),
        )
        apiserver_files_script: pulumi.Output[str] = pulumi.Output.secret(
            encryption_key.base64.apply(
                lambda key: render.render_script("apiserver-files", render.apiserver_files_parameters(key))
            )
        )
        block_storage = needs_block_storage(settings)

        def node_component(node: NodeSpec, join: JoinArgs | None) -> KubeadmNode:
            component = KubeadmNode(
                f"{name}-{node.name}",
                KubeadmNodeArgs(
                    access=self._access,
                    node=node,
                    cluster=self,
                    cluster_name=name,
                    apiserver_files_script=apiserver_files_script if node.role is Role.CONTROL_PLANE else None,
                    block_storage=block_storage,
                    join=join,
                ),
                opts=child,
            )
            self.nodes[node.name] = component
            return component

        self.nodes = {}
        # The first control plane is prepared like any other; `kubeadm init` on it makes the cluster, so
        # init, the CA hash and the admin kubeconfig belong to the cluster (everything else reads them).
        first_node = node_component(first, None)
        assert first_node.kube_vip is not None and first_node.apiserver_files is not None
        init_script = render.render_script(
            "kubeadm-init",
            {
                "KUBEADM_CONFIG_B64": render.b64(render.render_init_config(settings, first)),
                "API_ENDPOINT": settings.api_endpoint,
                "NODE_NAME": first.name,
            },
        )
        self.init = self._step(
            first, "kubeadm-init", init_script, depends_on=[first_node.kube_vip, first_node.apiserver_files]
        )

        ca_cert_hash_step = self._step(
            first, "ca-cert-hash", render.render_script("ca-cert-hash", {}), depends_on=[self.init]
        )
        ca_cert_hash = ca_cert_hash_step.stdout.apply(lambda out: out.strip())

        kubeconfig_step = self._step(
            first,
            "admin-kubeconfig",
            render.render_script(
                "read-kubeconfig",
                {"API_ENDPOINT": settings.api_endpoint, "RENEW_DAYS": str(render.CERTIFICATE_RENEW_DAYS)},
            ),
            depends_on=[self.init],
            secret_stdout=True,
            # A new generation reads the (renewed) admin.conf again: the copy in the state lasts one year.
            triggers=[args.admin_credential_generation] if args.admin_credential_generation else [],
        )
        self.admin_credential_expires: pulumi.Output[str] = pulumi.Output.unsecret(
            kubeconfig_step.stdout.apply(render.client_certificate_expires)
        )
        self.kubeconfig = pulumi.Output.secret(kubeconfig_step.stdout)
        self.provider = k8s.Provider(
            f"{name}-kubernetes",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=child,
        )

        def joined(node: NodeSpec, after: Sequence[pulumi.Resource]) -> remote.Command:
            component = node_component(node, JoinArgs(first, self.init, ca_cert_hash, after))
            assert component.join is not None
            return component.join

        previous: pulumi.Resource = self.init
        # etcd grows one member at a time, and each control plane's certificate upload replaces the
        # previous one: a control plane's credentials are made only after the one before has joined.
        for node in other_control_planes:
            previous = joined(node, [previous])
        # A sliding window of joins: worker i starts after worker i - joinConcurrency has joined, so at most
        # that many joins (and their SSH sessions to the first control plane) are in flight.
        gate = settings.cluster.join_concurrency
        worker_joins: list[remote.Command] = []
        for index, node in enumerate(settings.workers):
            worker_joins.append(joined(node, [worker_joins[index - gate]] if index >= gate else []))
        self.joins = {
            node_name: component.join for node_name, component in self.nodes.items() if component.join is not None
        }
        for node in settings.control_planes:
            component = self.nodes[node.name]
            component.add_cert_renewal([self.init] if component.join is None else [component.join])

        self.cni = k8s.helm.v3.Release(
            f"{name}-calico",
            name="calico",
            chart="tigera-operator",
            version=versions.CALICO_CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=versions.CALICO_CHART_REPOSITORY),
            namespace="tigera-operator",
            create_namespace=True,
            atomic=True,
            timeout=900,
            values=render.render_calico_values(settings),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(provider=self.provider)),
        )
        # Upgrades (config/upgrade.py): the first control plane, then each other control plane alone, then
        # workers by dsaas:upgradeWorkerBatchSize, each stage after the previous one's nodes are Ready again.
        # The steps exist only in an `up` that changes the version: three no-op steps per node on every other
        # `up` would cost a first `up` of 3+500 half an hour of engine checkpoints (docs/bringup.md). After the
        # upgrade the next `up` deletes them (they have no delete command: nothing runs). An `up` stopped half-way
        # never records the new version (the stack output waits for the last stage), so the next `up` plans the
        # same upgrade again: the steps done are unchanged, the rest run.
        memberships = [c.membership for c in self.nodes.values() if c.membership is not None]
        control_plane_names = {node.name for node in settings.control_planes}
        stage_done: list[remote.Command] = []
        control_planes_upgraded: list[remote.Command] = []
        for stage in batches(settings) if args.upgrading else []:
            released: list[remote.Command] = []
            for node_name in stage:
                component = self.nodes[node_name]
                in_cluster = [self.init] if component.membership is None else [component.membership]
                command = "apply" if node_name == first.name else "node"
                released.append(component.add_upgrade(first, command, in_cluster, list(stage_done)))
            stage_done = released
            if stage[0] in control_plane_names:
                control_planes_upgraded = released
        self.upgraded = stage_done if args.upgrading else [self.init, *memberships]
        storage_ready = [c.block_storage for c in self.nodes.values() if c.block_storage is not None]
        # Layers above wait for the control planes' upgrade (the hub's user scheduler runs kube-scheduler at the
        # new version, which must not be newer than the API server); workers upgrade beside them.
        self.ready = [self.cni, *memberships, *storage_ready, *control_planes_upgraded]
        self.admin_connection = self._access.connection(first)

        self.register_outputs(
            {
                "kubeconfig": self.kubeconfig,
                "api_endpoint": settings.api_endpoint,
                "init": self.init,
                "joins": self.joins,
                "cni": self.cni,
            }
        )

    def _step(
        self,
        node: NodeSpec,
        step: str,
        script: str,
        depends_on: Sequence[pulumi.Resource] = (),
        secret_stdout: bool = False,
        triggers: Sequence[Any] = (),
    ) -> remote.Command:
        """A step of the cluster itself, run on the first control plane; replaced when its VM is (or `triggers`)."""
        return node_step(
            self._access,
            self._name,
            node,
            step,
            script,
            pulumi.ResourceOptions(parent=self),
            depends_on=depends_on,
            secret_stdout=secret_stdout,
            triggers=triggers,
        )
