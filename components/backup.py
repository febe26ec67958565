"""`Backups`: Velero for the hub namespace and its volumes, the hub database dump, the volume inventory.

Order: namespace → one credentials Secret per writer (Velero, the inventory job, the hub database job:
each pair of Pulumi secrets as an AWS credentials file, a secret end to end; the jobs' keys are put-only
on their own folders) and the inventory's signing key (a random secret) → Velero chart (after the storage
layer: CSI snapshots need the snapshot class, and the node agent the Trident volumes) → scripts, RBAC and
the two CronJobs (the hub database job binds a Role in the hub namespace, so it waits for that namespace).

Velero's roles (no cluster-admin) exist before the chart, whose server and node agent need them from
their first start. The hub database job runs in the hub namespace beside the hub pod, on the hub's
own volume, with no API access (why: components/backup_render.py); it reads a second copy of the S3
credentials Secret there, which Velero's backups of that namespace leave out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import backup_render as render
from components.hub_render import HUB_NAMESPACE
from config import versions
from config.hub import HubDatabaseKind
from config.settings import Settings


@dataclass(frozen=True)
class S3Credentials:
    """One writer's key pair (Pulumi secrets)."""

    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]


@dataclass(frozen=True)
class BackupsArgs:
    settings: Settings
    provider: k8s.Provider
    storage_ready: Sequence[pulumi.Resource]
    """Storage classes, backends and the snapshot class (from `TridentStorage`)."""
    hub_namespace: pulumi.Resource
    """The hub namespace, where the database job's Role lives."""
    velero: S3Credentials
    """Velero's key: reads, lists, writes and deletes its `velero/` folder."""
    inventory: S3Credentials
    """The inventory job's put-only key."""
    hub_database: S3Credentials | None
    """The hub database job's put-only key; None where the program dumps no database (external PostgreSQL)."""
    hub_database_url: pulumi.Output[str] | None = None
    """dsaas:hubDatabaseUrl, for the pg_dump job's connection Secret (PostgreSQL with backup pg_dump)."""


class Backups(pulumi.ComponentResource):
    """Velero with one schedule for the hub namespace, plus the hub database and inventory CronJobs."""

    release: k8s.helm.v3.Release
    """The velero chart."""
    cron_jobs: dict[str, k8s.batch.v1.CronJob]
    """The inventory and hub database CronJobs by name."""
    object_prefix: str
    """The stack's folder in the bucket."""
    inventory_signing_key: pulumi.Output[str]
    """The key the inventory job signs every inventory with (secret; the restore planner checks with it)."""

    def __init__(self, name: str, args: BackupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dsaas:backup:Backups", name, None, opts)
        settings = args.settings
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)

        def with_deps(*resources: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=list(resources)))

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=render.render_namespace_doc()["metadata"],
            opts=with_deps(*args.storage_ready),
        )
        # (resource name suffix, Secret name, its namespace, keys); Velero's keeps the resource name it always
        # had. The database job runs beside the hub, so its key lives in the hub namespace (left out of backups).
        writers: list[tuple[str, str, str, S3Credentials, pulumi.Resource]] = [
            ("s3-credentials", render.CREDENTIALS_SECRET, render.BACKUP_NAMESPACE, args.velero, namespace),
            (
                "s3-credentials-inventory",
                render.INVENTORY_CREDENTIALS_SECRET,
                render.BACKUP_NAMESPACE,
                args.inventory,
                namespace,
            ),
        ]
        if render.hub_database_backed_up(settings):
            if args.hub_database is None:
                raise ValueError("the hub database is dumped but dsaas:s3HubDatabaseAccessKeyId was not loaded")
            writers.append(
                (
                    "s3-credentials-hub-database",
                    render.HUB_DATABASE_CREDENTIALS_SECRET,
                    HUB_NAMESPACE,
                    args.hub_database,
                    args.hub_namespace,
                )
            )
        secrets = [
            _credentials_secret(f"{name}-{suffix}", secret_name, secret_namespace, keys, with_deps(after))
            for suffix, secret_name, secret_namespace, keys, after in writers
        ]
        if render.hub_database_backed_up(settings) and settings.hub.database.kind is HubDatabaseKind.POSTGRES:
            if args.hub_database_url is None:
                raise ValueError("the hub database is dumped with pg_dump but dsaas:hubDatabaseUrl was not loaded")
            # libpq's variables, so pg_dump never sees the password on a command line (secret end to end).
            connection: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
                args.hub_database_url.apply(render.render_pg_connection)
            )
            secrets.append(
                k8s.core.v1.Secret(
                    f"{name}-hub-database-connection",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        **render.credentials_secret_metadata(render.HUB_PG_CONNECTION_SECRET, HUB_NAMESPACE)
                    ),
                    type="Opaque",
                    string_data=connection,
                    opts=with_deps(args.hub_namespace),
                )
            )
        # The inventory's signing key (issue 21, item 11). RandomBytes: its ID is "none" and its values are secret
        # outputs (a RandomId's ID would be the key, in clear in the state). Only the job's `sign` container
        # mounts it; the stack exports it as a secret for the restore planner.
        signing_key = random.RandomBytes(
            f"{name}-inventory-signing-key", length=32, opts=pulumi.ResourceOptions(parent=self)
        )
        self.inventory_signing_key = pulumi.Output.secret(signing_key.hex)
        secrets.append(
            k8s.core.v1.Secret(
                f"{name}-inventory-signing-secret",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=render.INVENTORY_KEY_SECRET, namespace=render.BACKUP_NAMESPACE
                ),
                type="Opaque",
                string_data={render.INVENTORY_KEY_KEY: self.inventory_signing_key},
                opts=with_deps(namespace),
            )
        )
        credentials = secrets[0]
        ca_bundle = render.read_ca_bundle(settings)
        created: dict[str, pulumi.Resource] = {}
        velero_roles = [
            self._create(name, document, args.provider, [namespace], args.hub_namespace, created)
            for document in render.render_velero_rbac()
        ]
        self.release = k8s.helm.v3.Release(
            f"{name}-velero",
            name=render.VELERO_RELEASE,
            chart="velero",
            version=versions.VELERO_CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=versions.VELERO_CHART_REPOSITORY),
            namespace=render.BACKUP_NAMESPACE,
            atomic=True,
            timeout=900,
            values=render.render_velero_values(settings, ca_bundle),
            opts=with_deps(namespace, credentials, *velero_roles, *args.storage_ready),
        )

        self.cron_jobs = {}
        for document in render.render_job_objects(settings, ca_bundle):
            created[_key(document)] = self._create(
                name, document, args.provider, [namespace, *secrets], args.hub_namespace, created
            )
        for key, resource in created.items():
            if key.startswith("CronJob/") and isinstance(resource, k8s.batch.v1.CronJob):
                self.cron_jobs[key.rsplit("/", 1)[1]] = resource
        self.object_prefix = render.object_prefix(settings)
        self.register_outputs(
            {
                "release": self.release.name,
                "cron_jobs": list(self.cron_jobs),
                "object_prefix": self.object_prefix,
                "inventory_signing_key": self.inventory_signing_key,
            }
        )

    def _create(
        self,
        name: str,
        document: dict[str, Any],
        provider: k8s.Provider,
        base: list[pulumi.Resource],
        hub_namespace: pulumi.Resource,
        created: dict[str, pulumi.Resource],
    ) -> pulumi.Resource:
        kind = document["kind"]
        metadata = document["metadata"]
        # Objects outside the velero namespace carry theirs: one name may live in several namespaces.
        where = metadata.get("namespace", render.BACKUP_NAMESPACE)
        scope = "" if where == render.BACKUP_NAMESPACE else f"{where}-"
        resource_name = f"{name}-{kind.lower()}-{scope}{metadata['name']}"
        depends: list[pulumi.Resource] = list(base)
        if metadata.get("namespace") == HUB_NAMESPACE:
            depends.append(hub_namespace)
        if kind == "CronJob":
            # Everything the job's pod needs (scripts, CA, RBAC, credentials) exists before its first run.
            depends += created.values()
        opts = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=depends)
        if kind == "ConfigMap":
            return k8s.core.v1.ConfigMap(resource_name, metadata=metadata, data=document["data"], opts=opts)
        if kind == "ServiceAccount":
            return k8s.core.v1.ServiceAccount(
                resource_name,
                metadata=metadata,
                automount_service_account_token=document.get("automountServiceAccountToken"),
                opts=opts,
            )
        if kind == "ClusterRole":
            return k8s.rbac.v1.ClusterRole(resource_name, metadata=metadata, rules=document["rules"], opts=opts)
        if kind == "Role":
            return k8s.rbac.v1.Role(resource_name, metadata=metadata, rules=document["rules"], opts=opts)
        if kind in ("ClusterRoleBinding", "RoleBinding"):
            binding = k8s.rbac.v1.ClusterRoleBinding if kind == "ClusterRoleBinding" else k8s.rbac.v1.RoleBinding
            return binding(
                resource_name, metadata=metadata, role_ref=document["roleRef"], subjects=document["subjects"], opts=opts
            )
        if kind == "CronJob":
            return k8s.batch.v1.CronJob(resource_name, metadata=metadata, spec=document["spec"], opts=opts)
        raise ValueError(f"no resource type for {kind}")


def _credentials_secret(
    resource_name: str, secret_name: str, namespace: str, keys: S3Credentials, opts: pulumi.ResourceOptions
) -> k8s.core.v1.Secret:
    credentials_file: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.all(keys.access_key_id, keys.secret_access_key).apply(
            lambda pair: render.render_credentials_file(str(pair[0]), str(pair[1]))
        )
    )
    data: dict[str, pulumi.Input[str]] = {render.CREDENTIALS_KEY: credentials_file}
    return k8s.core.v1.Secret(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(**render.credentials_secret_metadata(secret_name, namespace)),
        type="Opaque",
        string_data=data,
        opts=opts,
    )


def _key(document: dict[str, Any]) -> str:
    return f"{document['kind']}/{document['metadata'].get('namespace', '')}/{document['metadata']['name']}"
