"""dsaas: one Pulumi program for the whole Data Science as a Service platform. Wiring only."""

import pulumi
import pulumi_vsphere as vsphere

from components.backup import Backups, BackupsArgs
from components.hub import JupyterHub, JupyterHubArgs
from components.kubeadm import KubeadmCluster, KubeadmClusterArgs
from components.nodes import ClusterNodes, ClusterNodesArgs
from components.trident import TridentStorage, TridentStorageArgs
from config.loader import load_stack_inputs
from config.settings import describe_address_plan

# Validates every setting and secret before the first resource is registered.
stack = load_stack_inputs()
settings = stack.settings

vsphere_provider = vsphere.Provider(
    "vsphere",
    vsphere_server=stack.vsphere.server,
    user=stack.vsphere.user,
    password=stack.vsphere.password,
    allow_unverified_ssl=settings.vsphere.allow_unverified_ssl,
)

nodes = ClusterNodes("nodes", ClusterNodesArgs(settings=settings, provider=vsphere_provider))
cluster = KubeadmCluster(
    "kubernetes",
    KubeadmClusterArgs(
        settings=settings,
        vms=nodes.vms,
        ssh_private_key=nodes.ssh_private_key,
        authorized_keys=nodes.authorized_keys,
    ),
)
storage = TridentStorage(
    "storage",
    TridentStorageArgs(
        settings=settings,
        provider=cluster.provider,
        admin_connection=cluster.admin_connection,
        ontap_username=stack.secrets.ontap_username,
        ontap_password=stack.secrets.ontap_password,
        cluster_ready=cluster.ready,
    ),
)
hub = JupyterHub(
    "hub",
    JupyterHubArgs(
        settings=settings,
        provider=cluster.provider,
        storage_ready=list(storage.storage_classes.values()),
        ldap_search_password=stack.secrets.ldap_search_password,
        tls_certificate=stack.secrets.hub_tls_certificate,
        tls_key=stack.secrets.hub_tls_key,
        database_url=stack.secrets.hub_database_url,
    ),
)
if settings.backups_enabled:
    if stack.secrets.s3_access_key_id is None or stack.secrets.s3_secret_access_key is None:
        raise ValueError("backups are on but dsaas:s3AccessKeyId / dsaas:s3SecretAccessKey were not loaded")
    Backups(
        "backup",
        BackupsArgs(
            settings=settings,
            provider=cluster.provider,
            storage_ready=[
                *storage.storage_classes.values(),
                *([storage.snapshot_class] if storage.snapshot_class else []),
            ],
            hub_namespace=hub.namespace,
            access_key_id=stack.secrets.s3_access_key_id,
            secret_access_key=stack.secrets.s3_secret_access_key,
        ),
    )

pulumi.export("hubUrl", hub.url)
pulumi.export("controlPlaneEndpoint", f"https://{settings.api_endpoint}")
pulumi.export("nodeAddresses", describe_address_plan(settings))
pulumi.export("kubernetesVersion", settings.cluster.kubernetes_version)
pulumi.export("storageClasses", list(storage.storage_classes))
pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("sshPrivateKey", nodes.ssh_private_key)
