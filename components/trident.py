"""`TridentStorage`: NetApp Trident on ONTAP, its storage classes and the snapshot machinery.

Order: namespace → operator chart (→ TridentOrchestrator) → wait until the operator has created
the TridentBackendConfig CRD → credentials Secret + backends (each waits until Bound) → storage
classes. In parallel: snapshot CRDs → snapshot-controller (always: turning snapshots off must not
delete the CRDs, which would take every VolumeSnapshot in the cluster with them, and Trident's
csi-snapshotter sidecar expects them), and, with snapshots on, the VolumeSnapshotClass.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi_command import remote

from components import kubeadm_render
from components import trident_render as render
from components.kubeadm_node import RUN_AS_ROOT
from config import versions
from config.settings import Settings
from config.storage import NasDriver

CRD_WAIT_TIMEOUT = "15m"


@dataclass(frozen=True)
class TridentStorageArgs:
    settings: Settings
    provider: k8s.Provider
    admin_connection: remote.ConnectionArgs
    """SSH to a control plane with admin.conf, for the readiness gate."""
    ontap_username: pulumi.Output[str]
    ontap_password: pulumi.Output[str]
    cluster_ready: Sequence[pulumi.Resource]
    """Nodes joined and CNI installed (from `KubeadmCluster.ready`)."""


class TridentStorage(pulumi.ComponentResource):
    """Trident operator, ONTAP backends, storage classes and, on ontap-nas, CSI snapshots."""

    release: k8s.helm.v3.Release
    """The trident-operator chart."""
    backends: dict[str, TridentBackendConfig]
    """TridentBackendConfig by driver."""
    homes_backend: TridentBackendConfig
    """The backend user homes live on."""

    storage_classes: dict[str, k8s.storage.v1.StorageClass]
    """StorageClass by name (homes, general, hub database)."""
    homes_class: k8s.storage.v1.StorageClass
    """The class user home volumes are provisioned from."""
    snapshot_class: k8s.yaml.v2.ConfigGroup | None
    """The VolumeSnapshotClass, when snapshots are on."""

    @functools.cached_property
    def homes_backend_uuid(self) -> pulumi.Output[str]:
        """Trident's UUID of the homes backend (`status.backendInfo.backendUUID`): new with every Trident
        install, known only once the backend is Bound (unknown in a preview); what a restore's import
        claims name. Read only when asked for, so a stack without a restore never depends on it."""
        return self.homes_backend.status.apply(backend_uuid)

    def __init__(self, name: str, args: TridentStorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dsaas:storage:TridentStorage", name, None, opts)
        settings = args.settings
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)

        def with_deps(*resources: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=list(resources)))

        namespace_doc = render.render_namespace(render.TRIDENT_NAMESPACE, privileged=True)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=namespace_doc["metadata"],
            opts=with_deps(*args.cluster_ready),
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-operator",
            name="trident-operator",
            chart="trident-operator",
            version=versions.TRIDENT_CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=versions.TRIDENT_CHART_REPOSITORY),
            namespace=render.TRIDENT_NAMESPACE,
            atomic=True,
            timeout=900,
            values=render.render_trident_values(settings),
            opts=with_deps(namespace),
        )
        crds_ready = remote.Command(
            f"{name}-wait-for-operator",
            connection=args.admin_connection,
            create=RUN_AS_ROOT,
            stdin=kubeadm_render.render_script(
                "wait-for-crds",
                {
                    "CRDS": " ".join(render.TRIDENT_RUNTIME_CRDS),
                    "TIMEOUT": CRD_WAIT_TIMEOUT,
                    "STATUS_RESOURCE": "tridentorchestrator/trident",
                    "STATUS_JSONPATH": "{.status.status}",
                    "STATUS_VALUE": "Installed",
                },
            ),
            # Re-checked whenever the operator release changes (an upgrade re-creates CRDs).
            triggers=[self.release.version, self.release.values],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
        )
        credential_data: dict[str, pulumi.Input[str]] = {
            "username": pulumi.Output.secret(args.ontap_username),
            "password": pulumi.Output.secret(args.ontap_password),
        }
        credentials = k8s.core.v1.Secret(
            f"{name}-ontap-credentials",
            metadata={"name": render.CREDENTIALS_SECRET, "namespace": render.TRIDENT_NAMESPACE},
            type="Opaque",
            string_data=credential_data,
            opts=with_deps(namespace),
        )
        self.backends = {}
        for driver in render.backend_drivers(settings):
            document = render.render_backend_config(settings, driver)
            self.backends[driver] = TridentBackendConfig(
                f"{name}-backend-{driver}", document, opts=with_deps(crds_ready, credentials)
            )
        self.homes_backend = self.backends[settings.storage.homes_driver.value]

        self.storage_classes = {}
        for document in render.render_storage_classes(settings):
            driver = document["parameters"]["backendType"]
            self.storage_classes[document["metadata"]["name"]] = _storage_class(
                f"{name}-class-{document['metadata']['name']}", document, with_deps(self.backends[driver])
            )
        self.homes_class = self.storage_classes[render.HOMES_CLASS]

        snapshot_crds = k8s.yaml.v2.ConfigGroup(
            f"{name}-snapshot-crds",
            files=render.snapshotter_urls(render.SNAPSHOT_CRD_FILES, versions.EXTERNAL_SNAPSHOTTER_COMMIT),
            opts=with_deps(*args.cluster_ready),
        )
        k8s.yaml.v2.ConfigGroup(
            f"{name}-snapshot-controller",
            files=render.snapshotter_urls(render.SNAPSHOT_CONTROLLER_FILES, versions.SNAPSHOT_CONTROLLER_MANIFEST_REF),
            opts=with_deps(snapshot_crds),
        )
        self.snapshot_class = None
        if settings.storage.snapshots and settings.storage.homes_driver is NasDriver.ONTAP_NAS:
            self.snapshot_class = k8s.yaml.v2.ConfigGroup(
                f"{name}-snapshot-class",
                objs=[render.render_volume_snapshot_class(settings)],
                opts=with_deps(snapshot_crds, self.backends[NasDriver.ONTAP_NAS.value]),
            )

        self.register_outputs(
            {
                "storage_classes": list(self.storage_classes),
                "backends": list(self.backends),
                "snapshot_class": render.SNAPSHOT_CLASS if self.snapshot_class else None,
            }
        )


class TridentBackendConfig(pulumi.CustomResource):
    """A `TridentBackendConfig` whose `status` can be read: `k8s.apiextensions.CustomResource` in Python
    only resolves the properties it was given (apiVersion, kind, metadata, spec), so it has no `status`.
    Same type token, inputs and provider as that class, so the engine sees no difference."""

    status: pulumi.Output[Any]
    """As Trident writes it: phase, backendInfo (backendName, backendUUID), lastOperationStatus."""

    def __init__(self, resource_name: str, document: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        props = {
            "apiVersion": document["apiVersion"],
            "kind": document["kind"],
            "metadata": document["metadata"],
            "spec": document["spec"],
            "status": None,  # an output only: the engine fills it in
        }
        version = pulumi.ResourceOptions(version=k8s._utilities.get_version())  # type: ignore[no-untyped-call]
        super().__init__(
            f"kubernetes:{document['apiVersion']}:{document['kind']}",
            resource_name,
            props,
            pulumi.ResourceOptions.merge(opts, version),
        )


def backend_uuid(status: Any) -> str:
    """The backend's UUID from its status, or a clear error if Trident has not written one."""
    uuid = ((status or {}).get("backendInfo") or {}).get("backendUUID")
    if not uuid:
        raise ValueError(
            "the homes TridentBackendConfig is Bound but its status has no backendInfo.backendUUID; "
            "check `kubectl -n trident get tbc -o yaml` and the Trident operator's logs"
        )
    return str(uuid)


def _storage_class(
    resource_name: str, document: dict[str, Any], opts: pulumi.ResourceOptions
) -> k8s.storage.v1.StorageClass:
    # Kubernetes cannot change a class's parameters in place; Pulumi replaces it, which leaves
    # existing volumes (and their data) untouched.
    return k8s.storage.v1.StorageClass(
        resource_name,
        metadata=document["metadata"],
        provisioner=document["provisioner"],
        parameters=document["parameters"],
        reclaim_policy=document["reclaimPolicy"],
        allow_volume_expansion=document["allowVolumeExpansion"],
        volume_binding_mode=document["volumeBindingMode"],
        opts=opts,
    )
