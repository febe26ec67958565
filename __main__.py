"""dsaas: one Pulumi program for the whole Data Science as a Service platform. Wiring only."""

import datetime

import pulumi
import pulumi_vsphere as vsphere

from components.backup import Backups, BackupsArgs, S3Credentials
from components.hub import JupyterHub, JupyterHubArgs
from components.kubeadm import KubeadmCluster, KubeadmClusterArgs
from components.kubeadm_render import admin_credential_generation
from components.nodes import ClusterNodes, ClusterNodesArgs
from components.restore import RestoredHomes, RestoredHomesArgs
from components.restore_render import RestorePlanError, load_plan
from components.trident import TridentStorage, TridentStorageArgs
from config.loader import StackSettingsError, load_previous_outputs, load_stack_inputs
from config.settings import describe_address_plan
from config.upgrade import UpgradeError, upgrade_plan

# Validates every setting and secret before the first resource is registered.
stack = load_stack_inputs()
settings = stack.settings
# The restore plan is checked against the settings before any resource exists, too.
try:
    restore_plan = load_plan(settings, pulumi.get_stack())
except RestorePlanError as error:
    raise StackSettingsError(error.problems) from None
# A version change is checked against the version the stack ran before (docs/operations.md, Versions).
try:
    previous = load_previous_outputs()
    upgrade = upgrade_plan(previous.kubernetes_version, settings.cluster.kubernetes_version, settings)
except UpgradeError as error:
    raise StackSettingsError(error.problems) from None
pulumi.log.info(upgrade.describe())
admin_credential = admin_credential_generation(
    previous.admin_credential_expires, previous.admin_credential_generation, datetime.datetime.now(datetime.UTC)
)
if admin_credential != (previous.admin_credential_generation or 0):
    pulumi.log.info(
        f"the admin kubeconfig this stack holds ends on {previous.admin_credential_expires}: this update reads "
        f"the renewed one from the first control plane (admin credential generation {admin_credential})"
    )

vsphere_provider = vsphere.Provider(
    "vsphere",
    vsphere_server=stack.vsphere.server,
    user=stack.vsphere.user,
    password=stack.vsphere.password,
    allow_unverified_ssl=settings.vsphere.allow_unverified_ssl,
)

nodes = ClusterNodes("nodes", ClusterNodesArgs(settings=settings, provider=vsphere_provider, access=stack.vsphere))
cluster = KubeadmCluster(
    "kubernetes",
    KubeadmClusterArgs(
        settings=settings,
        vms=nodes.vms,
        ssh_private_key=nodes.ssh_private_key,
        host_keys=nodes.host_keys,
        authorized_keys=nodes.authorized_keys,
        upgrading=upgrade.upgrading,
        admin_credential_generation=admin_credential,
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


def restore_homes(hub_namespace: pulumi.Resource) -> list[pulumi.Resource]:
    """The planned users' old homes, claimed before the hub starts (docs/restore.md)."""
    assert restore_plan is not None
    restored = RestoredHomes(
        "restore",
        RestoredHomesArgs(
            settings=settings,
            plan=restore_plan,
            provider=cluster.provider,
            backend_uuid=storage.homes_backend_uuid,
            ready=[hub_namespace, storage.homes_class, storage.homes_backend],
            ontap_username=stack.secrets.ontap_username,
            ontap_password=stack.secrets.ontap_password,
        ),
    )
    return [restored]


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
        before_release=None if restore_plan is None else restore_homes,
        restore_plan_written=None if restore_plan is None else restore_plan.source.written,
    ),
)
if settings.backups_enabled:
    secrets = stack.secrets
    if (
        secrets.s3_access_key_id is None
        or secrets.s3_secret_access_key is None
        or secrets.s3_inventory_access_key_id is None
        or secrets.s3_inventory_secret_access_key is None
    ):
        raise ValueError("backups are on but the S3 keys of Velero or the inventory job were not loaded")
    hub_database_keys = (
        None
        if secrets.s3_hub_database_access_key_id is None or secrets.s3_hub_database_secret_access_key is None
        else S3Credentials(secrets.s3_hub_database_access_key_id, secrets.s3_hub_database_secret_access_key)
    )
    backups = Backups(
        "backup",
        BackupsArgs(
            settings=settings,
            provider=cluster.provider,
            storage_ready=[
                *storage.storage_classes.values(),
                *([storage.snapshot_class] if storage.snapshot_class else []),
            ],
            hub_namespace=hub.namespace,
            velero=S3Credentials(secrets.s3_access_key_id, secrets.s3_secret_access_key),
            inventory=S3Credentials(secrets.s3_inventory_access_key_id, secrets.s3_inventory_secret_access_key),
            hub_database=hub_database_keys,
            hub_database_url=secrets.hub_database_url,
        ),
    )
    # For the restore planner (`export DSAAS_INVENTORY_KEY="$(pulumi stack output inventorySigningKey
    # --show-secrets)"`): after a lost cluster, only the state still holds the key the inventories were signed with.
    pulumi.export("inventorySigningKey", backups.inventory_signing_key)

pulumi.export("hubUrl", hub.url)
pulumi.export("controlPlaneEndpoint", f"https://{settings.api_endpoint}")
pulumi.export("nodeAddresses", describe_address_plan(settings))
# The version every node runs: known once the last upgrade stage is done, so an `up` stopped half-way through
# an upgrade leaves the previous version recorded, and the next `up` plans from there.
pulumi.export(
    "kubernetesVersion",
    pulumi.Output.all(*(step.id for step in cluster.upgraded)).apply(lambda _: settings.cluster.kubernetes_version),
)
pulumi.export("storageClasses", list(storage.storage_classes))
pulumi.export("kubeconfig", cluster.kubeconfig)
# When the admin kubeconfig above ends (not secret); the next `up` reads a renewed one from 60 days before.
pulumi.export("adminCredentialExpires", cluster.admin_credential_expires)
pulumi.export("adminCredentialGeneration", admin_credential)
pulumi.export("sshPrivateKey", nodes.ssh_private_key)
