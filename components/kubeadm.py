"""`KubeadmCluster`: Kubernetes on the node VMs, driven over SSH with pulumi-command.

Order on the first control plane: prepare → kube-vip (super-admin.conf) → kubeadm init (then
admin.conf, super-admin.conf removed) → CA hash, admin kubeconfig → Calico. Every other node joins
with credentials of its own, made on the first control plane by kubeadm as soon as init is done
and that node is prepared: workers in parallel, each waiting for nothing but its own VM and the
control plane; further control planes one after another (etcd grows one member at a time). Every
joined node has a membership step on the first control plane that deletes its join token once it
has registered, and whose `delete` drains the node and removes it before its VM goes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi_command import remote

from components import kubeadm_render as render
from components.trident_render import needs_block_storage
from config import versions
from config.settings import NodeSpec, Role, Settings

RUN_AS_ROOT = "sudo bash -s"


@dataclass(frozen=True)
class KubeadmClusterArgs:
    settings: Settings
    vms: Mapping[str, pulumi.CustomResource]
    """Node VMs by node name (from `ClusterNodes`)."""
    ssh_private_key: pulumi.Output[str]
    authorized_keys: pulumi.Output[list[str]]
    """The admin user's SSH keys, kept exactly so on every node (from `ClusterNodes`)."""
    host_keys: Mapping[str, pulumi.Output[str]]
    """Each node's SSH host public key by node name (from `ClusterNodes`): every connection pins it."""


class KubeadmCluster(pulumi.ComponentResource):
    """kubeadm HA control plane behind kube-vip, workers, Calico; exposes a kubernetes.Provider."""

    kubeconfig: pulumi.Output[str]
    """Admin kubeconfig pointing at the virtual IP (secret)."""
    provider: k8s.Provider
    """Provider for every later Kubernetes resource; built from `kubeconfig`, never ambient."""
    init: remote.Command
    """`kubeadm init` on the first control plane."""
    joins: dict[str, remote.Command]
    """`kubeadm join` by node name (all nodes but the first control plane)."""
    cni: k8s.helm.v3.Release
    """Calico through the tigera-operator chart."""
    ready: list[pulumi.Resource]
    """Depend on these to run after every node is registered and the CNI is installed (and, where the
    hub database is on ontap-san, every node has iSCSI and multipath)."""
    admin_connection: remote.ConnectionArgs
    """SSH to the first control plane, where later layers run readiness checks with admin.conf."""

    def __init__(self, name: str, args: KubeadmClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dsaas:kubernetes:KubeadmCluster", name, None, opts)
        settings = args.settings
        self._name = name
        self._args = args
        child = pulumi.ResourceOptions(parent=self)
        first, *other_control_planes = settings.control_planes

        prepared = {
            node.name: self._step(
                node, "prepare", render.render_script("prepare-node", render.prepare_node_parameters(settings))
            )
            for node in settings.all_nodes
        }
        # cloud-init installs the keys at first boot only; adding or removing an operator's key must
        # reach existing nodes too (the generated key stays first, so this connection never breaks).
        for node in settings.all_nodes:
            self._step(
                node,
                "ssh-keys",
                args.authorized_keys.apply(
                    lambda keys: render.render_script(
                        "authorized-keys", {"ADMIN_USER": settings.ssh.user, "AUTHORIZED_KEYS": "\n".join(keys)}
                    )
                ),
            )
        # Only the hub database's ontap-san volume needs these, so nothing in the cluster's own
        # bring-up waits for them; layers above wait through `ready`.
        block_storage = (
            [
                self._step(
                    node,
                    "block-storage",
                    render.render_script("prepare-block-storage", render.block_storage_parameters(node)),
                    depends_on=[prepared[node.name]],
                )
                for node in settings.all_nodes
            ]
            if needs_block_storage(settings)
            else []
        )

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
        apiserver_files = {
            node.name: self._step(node, "apiserver-files", apiserver_files_script, depends_on=[prepared[node.name]])
            for node in settings.control_planes
        }

        first_kube_vip = self._step(
            first,
            "kube-vip",
            render.render_script("kube-vip", render.kube_vip_parameters(settings, render.SUPER_ADMIN_CONF)),
            depends_on=[prepared[first.name]],
        )
        init_script = render.render_script(
            "kubeadm-init",
            {
                "KUBEADM_CONFIG_B64": render.b64(render.render_init_config(settings, first)),
                "API_ENDPOINT": settings.api_endpoint,
                "NODE_NAME": first.name,
            },
        )
        self.init = self._step(
            first, "kubeadm-init", init_script, depends_on=[first_kube_vip, apiserver_files[first.name]]
        )

        ca_cert_hash_step = self._step(
            first, "ca-cert-hash", render.render_script("ca-cert-hash", {}), depends_on=[self.init]
        )
        ca_cert_hash = ca_cert_hash_step.stdout.apply(lambda out: out.strip())

        kubeconfig_step = self._step(
            first,
            "admin-kubeconfig",
            render.render_script("read-kubeconfig", {"API_ENDPOINT": settings.api_endpoint}),
            depends_on=[self.init],
            secret_stdout=True,
        )
        self.kubeconfig = pulumi.Output.secret(kubeconfig_step.stdout)
        self.provider = k8s.Provider(
            f"{name}-kubernetes",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=child,
        )

        self.joins = {}
        memberships: list[pulumi.Resource] = []
        previous: pulumi.Resource = self.init
        # etcd grows one member at a time, and each control plane's certificate upload replaces the
        # previous one: a control plane's credentials are made only after the one before has joined.
        for node in other_control_planes:
            join = self._join(
                node, first, ca_cert_hash, depends_on=[prepared[node.name], apiserver_files[node.name], previous]
            )
            self._step(
                node,
                "kube-vip",
                render.render_script("kube-vip", render.kube_vip_parameters(settings, render.ADMIN_CONF)),
                depends_on=[join],
            )
            memberships.append(self._membership(node, first, join))
            previous = join
        # A sliding window of joins: worker i starts after worker i - joinConcurrency has joined, so at most
        # that many joins (and their SSH sessions to the first control plane) are in flight.
        gate = settings.cluster.join_concurrency
        worker_joins: list[remote.Command] = []
        for index, node in enumerate(settings.workers):
            window = [worker_joins[index - gate]] if index >= gate else []
            join = self._join(node, first, ca_cert_hash, depends_on=[prepared[node.name], *window])
            worker_joins.append(join)
            memberships.append(self._membership(node, first, join))

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
        self.ready = [self.cni, *memberships, *block_storage]
        self.admin_connection = self._connection(first)

        self.register_outputs(
            {
                "kubeconfig": self.kubeconfig,
                "api_endpoint": settings.api_endpoint,
                "init": self.init,
                "joins": self.joins,
                "cni": self.cni,
            }
        )

    # --- helpers ---------------------------------------------------------------------------

    def _connection(self, node: NodeSpec) -> remote.ConnectionArgs:
        return remote.ConnectionArgs(
            host=str(node.address),
            user=self._args.settings.ssh.user,
            private_key=self._args.ssh_private_key,
            # Only the key cloud-init installed on this node is accepted (pulumi-command 1.2.1: a fixed
            # host key, and only its algorithm offered): whoever takes the node's address while it
            # boots gets neither join credentials nor the role of the first control plane.
            host_key=self._args.host_keys[node.name],
            # A fresh clone boots and runs cloud-init before SSH answers: allow ~15 minutes.
            dial_error_limit=60,
            per_dial_timeout=15,
        )

    def _step(
        self,
        node: NodeSpec,
        step: str,
        script: str | pulumi.Output[str],
        depends_on: Sequence[pulumi.Resource] = (),
        triggers: Sequence[object] = (),
        delete: str | None = None,
        secret_stdout: bool = False,
        on: NodeSpec | None = None,
    ) -> remote.Command:
        """One script run as root on `on` (default: `node`); replaced when `node`'s VM is."""
        target = on or node
        secret_outputs = ["stdout", "stderr"] if secret_stdout else []
        return remote.Command(
            f"{self._name}-{node.name}-{step}",
            connection=self._connection(target),
            create=RUN_AS_ROOT,
            stdin=script,
            delete=delete,
            triggers=[self._args.vms[node.name].id, *triggers],
            logging=remote.Logging.NONE if secret_stdout else remote.Logging.STDOUT_AND_STDERR,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self._args.vms[node.name], *depends_on],
                additional_secret_outputs=secret_outputs,
            ),
        )

    def _join(
        self,
        node: NodeSpec,
        first: NodeSpec,
        ca_cert_hash: pulumi.Output[str],
        depends_on: Sequence[pulumi.Resource],
    ) -> remote.Command:
        """This node's own credentials, made on the first control plane just before it joins, then the join.

        The credentials step runs as soon as `kubeadm init` is done and this node is prepared (and,
        being a step of this node, again when its VM is replaced): no node waits for any other VM,
        and every run makes a new token and certificate key.
        """
        settings = self._args.settings
        credentials = self._step(
            node,
            "join-credentials",
            render.render_script("join-credentials", render.join_credentials_parameters(node)),
            depends_on=[self.init, *depends_on],
            secret_stdout=True,
            on=first,
        )
        script = pulumi.Output.all(credentials.stdout, ca_cert_hash, credentials.urn).apply(
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
        join = self._step(
            node, "kubeadm-join", pulumi.Output.secret(script), depends_on=[credentials, *depends_on], delete=reset
        )
        self.joins[node.name] = join
        return join

    def _membership(self, node: NodeSpec, first: NodeSpec, join: remote.Command) -> remote.Command:
        """Runs on the first control plane; its delete drains and removes the node."""
        return self._step(
            node,
            "membership",
            render.render_script("node-membership", render.node_label_parameters(node)),
            depends_on=[join],
            delete=render.heredoc_command(render.render_script("drain-node", {"NODE_NAME": node.name})),
            on=first,
        )
