"""The storage layer and the hub in the recorded graph: valid objects, right order, secrets kept secret."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from components import kubeadm_render, trident_render
from config import versions
from tests.conftest import STACKS, load_settings
from tests.test_hub_database_backup import EXTERNAL_POSTGRES
from tools.offline.mockgraph import Graph, RecordedResource, is_secret, kubernetes_objects, run_program, unwrap
from tools.offline.redaction import ARTIFACT_SECRET_MARK, scrub

# Structural schemas for the two custom resources, written from their upstream definitions at the
# pinned versions (kubernetes-validate has core schemas only). VolumeSnapshotClass: the v1 CRD of
# kubernetes-csi/external-snapshotter (client/config/crd/...volumesnapshotclasses.yaml).
# TridentBackendConfig: Trident 26.06's CRD preserves unknown spec fields, so the spec keys are
# checked against the backend config fields of storage_drivers/types.go and the docs' defaults list.
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "annotations": _STRING_MAP,
        "labels": _STRING_MAP,
    },
    "additionalProperties": False,
}
VOLUME_SNAPSHOT_CLASS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "driver", "deletionPolicy"],
    "properties": {
        "apiVersion": {"const": "snapshot.storage.k8s.io/v1"},
        "kind": {"const": "VolumeSnapshotClass"},
        "metadata": _METADATA,
        "driver": {"type": "string"},
        "deletionPolicy": {"enum": ["Delete", "Retain"]},
        "parameters": _STRING_MAP,
    },
    "additionalProperties": False,
}
_TRIDENT_DEFAULTS = [
    "spaceAllocation",
    "spaceReserve",
    "snapshotPolicy",
    "snapshotReserve",
    "snapshotDir",
    "unixPermissions",
    "exportPolicy",
    "securityStyle",
    "splitOnClone",
    "fileSystemType",
    "encryption",
    "LUKSEncryption",
    "mirroring",
    "tieringPolicy",
    "qosPolicy",
    "adaptiveQosPolicy",
    "formatOptions",
    "skipRecoveryQueue",
    "adAdminUser",
    "size",
    "nameTemplate",
]
TRIDENT_BACKEND_CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "trident.netapp.io/v1"},
        "kind": {"const": "TridentBackendConfig"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["version", "storageDriverName", "managementLIF", "svm", "credentials"],
            "properties": {
                "version": {"const": 1},
                "storageDriverName": {"enum": ["ontap-nas", "ontap-nas-economy", "ontap-nas-flexgroup", "ontap-san"]},
                "backendName": {"type": "string"},
                "storagePrefix": {"type": "string", "pattern": "^[a-zA-Z_.-][a-zA-Z0-9_.-]*$"},
                "managementLIF": {"type": "string"},
                "dataLIF": {"type": "string"},
                "svm": {"type": "string"},
                "aggregate": {"type": "string"},
                "nfsMountOptions": {"type": "string"},
                "autoExportPolicy": {"type": "boolean"},
                "autoExportCIDRs": {"type": "array", "items": {"type": "string"}},
                "nasType": {"enum": ["nfs", "smb"]},
                "sanType": {"enum": ["iscsi", "nvme", "fcp"]},
                "useREST": {"type": "boolean"},
                "labels": _STRING_MAP,
                "limitVolumeSize": {"type": "string"},
                "deletionPolicy": {"enum": ["delete", "retain"]},
                "credentials": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "type": {"enum": ["secret", "awsarn"]}},
                    "additionalProperties": False,
                },
                "defaults": {
                    "type": "object",
                    "properties": {key: {"type": "string"} for key in _TRIDENT_DEFAULTS},
                    "additionalProperties": False,
                },
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
CUSTOM_SCHEMAS = {
    "VolumeSnapshotClass": VOLUME_SNAPSHOT_CLASS_SCHEMA,
    "TridentBackendConfig": TRIDENT_BACKEND_CONFIG_SCHEMA,
}


def kubernetes_resources(graph: Graph) -> list[RecordedResource]:
    return [r for r in graph.resources if r.type.startswith("kubernetes:")]


def validate_object(document: dict[str, Any], kubernetes_version: str) -> None:
    schema = CUSTOM_SCHEMAS.get(document["kind"])
    if schema is not None:
        jsonschema.validate(document, schema)
    else:
        kubernetes_validate.validate(document, kubernetes_version, strict=True)


@pytest.mark.parametrize("stack", STACKS)
def test_every_object_the_program_applies_is_valid(stack: str, graphs: dict[str, Graph]) -> None:
    # For every Kubernetes minor the settings accept, not only the one the stack runs today.
    minors = [f"{minor}.0" for minor in versions.SUPPORTED_KUBERNETES_MINORS]
    assert load_settings(stack).cluster.kubernetes_minor in versions.SUPPORTED_KUBERNETES_MINORS
    kinds = []
    for resource in kubernetes_resources(graphs[stack]):
        for document in kubernetes_objects(resource):
            for version in minors:
                validate_object(document, version)
            kinds.append(document["kind"])
    assert {"Namespace", "Secret", "StorageClass", "TridentBackendConfig"} <= set(kinds)
    assert ("VolumeSnapshotClass" in kinds) == (stack == "prod")


@pytest.mark.parametrize(
    ("kind", "edit"),
    [
        ("StorageClass", lambda d: d.update(reclaimPolicyy="Retain")),
        ("TridentBackendConfig", lambda d: d["spec"].update(autoExportCIDR=["10.0.0.0/8"])),
        ("TridentBackendConfig", lambda d: d["spec"]["defaults"].update(snapshotReserve=10)),
        ("VolumeSnapshotClass", lambda d: d.update(deletionPolicy="Keep")),
    ],
)
def test_the_validators_reject_a_wrong_object(
    kind: str, edit: Callable[[dict[str, Any]], None], graphs: dict[str, Graph]
) -> None:
    documents = [d for r in kubernetes_resources(graphs["prod"]) for d in kubernetes_objects(r) if d["kind"] == kind]
    document = documents[0]
    edit(document)
    with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
        validate_object(document, "1.35.1")


def _objects(graph: Graph, kind: str) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d
        for r in kubernetes_resources(graph)
        for d in kubernetes_objects(r)
        if d["kind"] == kind
    }


@pytest.mark.parametrize("stack", STACKS)
def test_storage_classes_keep_user_data_and_let_fsgroup_work(stack: str, graphs: dict[str, Graph]) -> None:
    settings = load_settings(stack)
    classes = _objects(graphs[stack], "StorageClass")
    homes = classes["dsaas-homes"]
    assert homes["reclaimPolicy"] == "Retain" and homes["allowVolumeExpansion"] is True
    assert homes["parameters"] == {"backendType": settings.storage.homes_driver.value, "fsType": "nfs"}
    assert homes["provisioner"] == "csi.trident.netapp.io"
    defaults = [
        n for n, c in classes.items() if c["metadata"]["annotations"].get(trident_render.DEFAULT_CLASS_ANNOTATION)
    ]
    assert defaults == ["dsaas-general"]
    assert classes["dsaas-hub-db"]["parameters"] == {"backendType": "ontap-san", "fsType": "ext4"}


@pytest.mark.parametrize("stack", STACKS)
def test_backends_export_only_to_the_node_subnet_over_nfs41(stack: str, graphs: dict[str, Graph]) -> None:
    settings = load_settings(stack)
    backends = _objects(graphs[stack], "TridentBackendConfig")
    assert set(backends) == {f"backend-{d}" for d in trident_render.backend_drivers(settings)}
    for name, backend in backends.items():
        spec = backend["spec"]
        assert spec["credentials"] == {"name": "ontap-credentials"}
        assert spec["deletionPolicy"] == "retain"  # removing the object never removes Trident's backend
        assert "{{.volume.Namespace}}" in spec["defaults"]["nameTemplate"]
        assert "{{.volume.RequestName}}" in spec["defaults"]["nameTemplate"]
        if name.endswith("-san"):
            assert "autoExportCIDRs" not in spec
            continue
        assert spec["autoExportPolicy"] is True
        assert spec["autoExportCIDRs"] == [str(settings.network.subnet)]
        assert "nfsvers=4.1" in spec["nfsMountOptions"]
        assert spec["defaults"]["snapshotDir"] == "true"


def test_economy_homes_have_no_snapshot_class_but_nas_homes_do(graphs: dict[str, Graph]) -> None:
    assert _objects(graphs["dev"], "VolumeSnapshotClass") == {}
    (snapshot_class,) = _objects(graphs["prod"], "VolumeSnapshotClass").values()
    assert snapshot_class["driver"] == "csi.trident.netapp.io"
    for stack in STACKS:  # the CRDs and controller whatever the homes driver: see test_changing_the_homes_storage_class
        crds = graphs[stack].by_name("storage-snapshot-crds")
        # The commit the v8.6.0 tag points at, never the tag itself (a tag can be pushed again).
        crd_prefix = f"/external-snapshotter/{versions.EXTERNAL_SNAPSHOTTER_COMMIT}/client/config/crd/"
        assert all(crd_prefix in url for url in unwrap(crds.inputs["files"]))
        controller = graphs[stack].by_name("storage-snapshot-controller")
        # An immutable commit (its manifest runs the v8.6.0 image), never a branch.
        ref = versions.SNAPSHOT_CONTROLLER_MANIFEST_REF
        assert len(ref) == 40 and all(
            f"/external-snapshotter/{ref}/" in url for url in unwrap(controller.inputs["files"])
        )


@pytest.mark.parametrize("stack", STACKS)
def test_backends_wait_for_the_operator_and_the_hub_for_the_homes_class(stack: str, graphs: dict[str, Graph]) -> None:
    graph = graphs[stack]
    operator = graph.by_name("storage-operator")
    gate = graph.by_name("storage-wait-for-operator")
    assert operator.urn in gate.dependencies
    parameters, _ = kubeadm_render.parse_rendered_script(unwrap(gate.inputs["stdin"]))
    assert "tridentbackendconfigs.trident.netapp.io" in parameters["CRDS"].split()
    for backend in graph.of_type("kubernetes:trident.netapp.io/v1:TridentBackendConfig"):
        assert {gate.urn, operator.urn, graph.by_name("storage-ontap-credentials").urn} <= graph.ancestors(backend)
        assert (
            unwrap(backend.inputs["metadata"])["annotations"]["pulumi.com/waitFor"] == "jsonpath={.status.phase}=Bound"
        )
    hub = graph.by_name("hub-release")
    homes = graph.by_name("storage-class-dsaas-homes")
    assert homes.urn in hub.dependencies
    assert graph.by_name("storage-backend-ontap-nas").urn in graph.ancestors(hub) | {homes.urn}
    # Nothing in storage starts before every node has joined and the CNI runs.
    assert graph.by_name("kubernetes-calico").urn in graph.ancestors(graph.by_name("storage-namespace"))


@pytest.mark.parametrize("stack", STACKS)
def test_every_kubernetes_resource_uses_the_clusters_provider(stack: str, graphs: dict[str, Graph]) -> None:
    graph = graphs[stack]
    (provider,) = graph.of_type("pulumi:providers:kubernetes")
    for resource in kubernetes_resources(graph):
        if resource.type == "pulumi:providers:kubernetes":
            continue
        assert resource.provider.rsplit("::", 1)[0] == provider.urn, resource.name


@pytest.mark.parametrize("stack", STACKS)
def test_ontap_ldap_and_hub_secrets_are_secret(stack: str, graphs: dict[str, Graph]) -> None:
    graph = graphs[stack]
    assert is_secret(graph.by_name("storage-ontap-credentials").inputs["stringData"])
    # The SDK lifts a nested secret to the whole `values` input: the engine stores all of it encrypted.
    release_values = graph.by_name("hub-release").inputs["values"]
    assert is_secret(release_values)
    # Reviewers read the values through the preview, where exactly the secret leaves are redacted.
    shown = yaml.safe_load(scrub(yaml.safe_dump(unwrap(release_values)), graph.secret_values))
    assert shown["hub"]["cookieSecret"] == ARTIFACT_SECRET_MARK
    assert shown["proxy"]["secretToken"] == ARTIFACT_SECRET_MARK
    ldap = shown["hub"]["config"]["LDAPAuthenticator"]
    assert ldap["server_address"] == load_settings(stack).hub.ldap.server_address
    if load_settings(stack).hub.ldap.lookup_dn:
        assert ldap["lookup_dn_search_password"] == ARTIFACT_SECRET_MARK
        assert is_secret(graph.by_name("hub-tls").inputs["stringData"])
    assert ARTIFACT_SECRET_MARK not in yaml.safe_dump(shown["singleuser"])


def test_block_hub_database_prepares_iscsi_and_postgres_does_not(stack_values: Callable[[str], dict[str, Any]]) -> None:
    prod = run_program("prod")
    settings = load_settings("prod")
    operator = prod.by_name("storage-operator")
    initiators = set()
    for node in settings.all_nodes:
        step = prod.by_name(f"kubernetes-{node.name}-block-storage")
        parameters = kubeadm_render.parse_rendered_script(unwrap(step.inputs["stdin"]))[0]
        initiators.add(parameters["INITIATOR_NAME"])
        # RFC 3720 iqn. form, and Trident (through the cluster's readiness) waits for every node.
        assert re.fullmatch(r"iqn\.\d{4}-\d{2}\.[a-z0-9.-]+(:[a-z0-9.:-]+)?", parameters["INITIATOR_NAME"])
        assert step.urn in prod.ancestors(operator)
    assert len(initiators) == len(settings.all_nodes)  # one initiator per node, never shared

    values = stack_values("prod")
    values["dsaas:hub"]["database"] = EXTERNAL_POSTGRES
    values["dsaas:hubDatabaseUrl"] = {"secure": "AAABAHBvc3RncmVz"}
    external = run_program("prod", values)
    assert not [r.name for r in external.resources if r.name.endswith("-block-storage")]
    hub_values = external.by_name("hub-release").inputs["values"]
    shown = yaml.safe_load(scrub(yaml.safe_dump(unwrap(hub_values)), external.secret_values))
    assert shown["hub"]["db"] == {"type": "postgres", "url": ARTIFACT_SECRET_MARK}
    assert "storage-class-dsaas-hub-db" not in {r.name for r in external.resources}


# Top-level keys of the trident-operator chart 100.2606.0 (helm/trident-operator/values.yaml at NetApp/trident
# tag v26.06.0). The chart has no values schema, so Helm would silently ignore a misspelt key.
TRIDENT_CHART_KEYS = frozenset(
    [
        "acpImage",
        "affinity",
        "anfConfigurator",
        "cloudIdentity",
        "cloudProvider",
        "configuratorReconcileInterval",
        "deploymentAnnotations",
        "enableACP",
        "enableConcurrency",
        "enableForceDetach",
        "forceInstallRancherClusterRoles",
        "helmHookImage",
        "hostNetwork",
        "httpsMetrics",
        "imagePullPolicy",
        "imagePullSecrets",
        "imageRegistry",
        "iscsiSelfHealingInterval",
        "iscsiSelfHealingWaitTime",
        "k8sAPIQPS",
        "kubeletDir",
        "nodePrep",
        "nodeSelector",
        "ontapConfigurator",
        "operatorDebug",
        "operatorImage",
        "operatorImageTag",
        "podAnnotations",
        "resources",
        "tolerations",
        "tridentAutosupportImage",
        "tridentAutosupportImageTag",
        "tridentAutosupportInsecure",
        "tridentAutosupportProxy",
        "tridentDebug",
        "tridentDisableAuditLog",
        "tridentEnableNodePrep",
        "tridentExcludeAutosupport",
        "tridentHttpRequestTimeout",
        "tridentIPv6",
        "tridentImage",
        "tridentImageTag",
        "tridentK8sTimeout",
        "tridentLogFormat",
        "tridentLogLayers",
        "tridentLogWorkflows",
        "tridentProbePort",
        "tridentSilenceAutosupport",
        "tridentSkipK8sVersionCheck",
        "windows",
    ]
)


@pytest.mark.parametrize("stack", STACKS)
def test_trident_sends_nothing_to_netapp_unless_chosen(stack: str, graphs: dict[str, Graph]) -> None:
    """Trident 26.06 uploads an AutoSupport bundle to NetApp daily unless silenced."""
    (release,) = [r for r in graphs[stack].of_type("kubernetes:helm.sh/v3:Release") if r.name == "storage-operator"]
    values = unwrap(release.inputs["values"])
    assert set(values) <= TRIDENT_CHART_KEYS, set(values) - TRIDENT_CHART_KEYS
    assert values.get("tridentSilenceAutosupport") is True
    assert load_settings(stack).storage.autosupport is False


def test_autosupport_is_a_knowing_choice(stack_values: Callable[[str], dict[str, Any]]) -> None:
    values = stack_values("prod")
    values["dsaas:storage"]["autosupport"] = True
    graph = run_program("prod", values)
    rendered = unwrap(graph.by_name("storage-operator").inputs["values"])
    assert rendered["tridentSilenceAutosupport"] is False
