"""Every Kubernetes object a stack's program creates, in the order the program creates it (pure, offline).

Three sources make up a stack's objects:
- the recorded graph's `kubernetes:*` resources (namespaces, secrets, storage classes, backends, CronJobs, and
  `yaml/v2:ConfigGroup`s with inline `objs`);
- each `helm.sh/v3:Release`, rendered by Helm's engine from the vendored chart (tools/offline/charts.py), with
  the Namespace Helm makes for `createNamespace`, its hooks, and the objects ordered as Helm installs them;
- the remote files two ConfigGroups fetch at deploy time and the CRD the Trident operator creates at run
  time, vendored under tests/upstream/manifests/ (tools/controlplane/upstream.py).

Resources follow the graph's dependency order (tools.offline.mockgraph.Graph.in_dependency_order), so a
custom resource comes after its CRD and a namespaced object after its namespace, as in a real `pulumi up`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from config import versions
from tools.controlplane import upstream
from tools.offline import charts
from tools.offline.mockgraph import Graph, RecordedResource, kubernetes_objects, unwrap

CONFIG_GROUP_TYPE = "kubernetes:yaml/v2:ConfigGroup"
TRIDENT_RUNTIME_CRD = ("trident-backendconfig-crd", "tridentbackendconfigs.trident.netapp.io.yaml")
"""The vendored file of the TridentBackendConfig CRD the Trident operator creates (tests/upstream/manifests.yaml)."""

# Helm's install order for kinds (helm.sh/helm/v3 pkg/releaseutil/kind_sorter.go, InstallOrder); kinds it does
# not list come after these, by kind name, as Helm sorts them.
HELM_INSTALL_ORDER: tuple[str, ...] = (
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
)
INSTALL_HOOKS = frozenset({"pre-install", "post-install"})


@dataclass(frozen=True)
class ProgramObject:
    """One object as the API server receives it, and where it comes from."""

    document: dict[str, Any]
    resource: str
    """The Pulumi logical name of the resource that creates it."""
    source: str
    """`graph`, a chart's template or crds/ file, a vendored remote file, or `trident-operator (run time)`."""
    hook: str | None = None
    """Helm hook events (`pre-install,pre-upgrade`), None for a plain object."""

    @property
    def kind(self) -> str:
        return str(self.document["kind"])

    @property
    def api_version(self) -> str:
        return str(self.document["apiVersion"])

    @property
    def name(self) -> str:
        return str(self.document["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        namespace = self.document["metadata"].get("namespace")
        return str(namespace) if namespace else None

    @property
    def key(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    @property
    def on_install(self) -> bool:
        """Whether `pulumi up` creates it: plain objects and install hooks. Other hooks (pre-delete,
        test) run only on uninstall or `helm test`, so they are only ever checked with a dry run."""
        return self.hook is None or bool(INSTALL_HOOKS & set(self.hook.split(",")))


def _copy(document: Mapping[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(document))
    return copied


def _helm_kind_rank(kind: str) -> tuple[int, str]:
    if kind in HELM_INSTALL_ORDER:
        return HELM_INSTALL_ORDER.index(kind), ""
    return len(HELM_INSTALL_ORDER), kind


def _hook_weight(item: charts.RenderedObject) -> int:
    annotations = item.document.get("metadata", {}).get("annotations") or {}
    return int(annotations.get("helm.sh/hook-weight", "0"))


def release_objects(resource: RecordedResource) -> list[ProgramObject]:
    """A release's objects in Helm's install order: crds/, the namespace (createNamespace), pre-install hooks
    (by weight, then kind), the manifest (by kind), post-install hooks; then hooks of other events."""
    inputs = unwrap(resource.inputs)
    # One real install's render: the "stable" render marks random values, which the API would not accept.
    release = charts.render_release(resource, stable=False)
    crds = [o for o in release.objects if o.source.startswith("crds/")]
    rest = [o for o in release.objects if not o.source.startswith("crds/")]

    def hooks(event: str) -> list[charts.RenderedObject]:
        chosen = [o for o in rest if o.hook and event in o.hook.split(",")]
        return sorted(chosen, key=lambda o: (_hook_weight(o), _helm_kind_rank(o.kind), o.name))

    pre, post = hooks("pre-install"), hooks("post-install")
    plain = sorted((o for o in rest if not o.hook), key=lambda o: _helm_kind_rank(o.kind))
    other = [o for o in rest if o.hook and o not in pre and o not in post]
    ordered: list[ProgramObject] = [ProgramObject(_copy(o.document), resource.name, o.source) for o in crds]
    if inputs.get("createNamespace"):
        # Helm's install action creates the namespace with this one label (pkg/action/install.go).
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": release.namespace, "labels": {"name": release.namespace}},
        }
        ordered.append(ProgramObject(namespace, resource.name, "helm createNamespace"))
    for item in [*pre, *plain, *post, *other]:
        ordered.append(ProgramObject(charts.as_received(item), resource.name, item.source, item.hook))
    return ordered


def _yaml_documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def remote_file(url: str) -> tuple[upstream.VendoredSource, str]:
    """The vendored source and path of a raw.githubusercontent.com URL a ConfigGroup fetches."""
    prefix = versions.EXTERNAL_SNAPSHOTTER_RAW_URL + "/"
    if not url.startswith(prefix):
        raise upstream.UpstreamError(f"{url}: no vendored copy (only {prefix}... files are vendored)")
    ref, path = url.removeprefix(prefix).split("/", 1)
    for source in upstream.load_manifest():
        refs = {source.entry["source"].get("tag"), source.entry["source"]["commit"]}
        if ref in refs and any(item.path == path for item in source.files):
            return source, path
    raise upstream.UpstreamError(f"{url}: not vendored in {upstream.MANIFEST.name} (ref {ref}, path {path})")


def _config_group_objects(resource: RecordedResource) -> list[ProgramObject]:
    """A ConfigGroup's objects: its files' documents (vendored copies), then its inline objs. yaml/v2 creates
    CRDs and namespaces before the objects that may need them, the rest in file order."""
    found: list[ProgramObject] = []
    for url in unwrap(resource.inputs.get("files") or []):
        source, path = remote_file(str(url))
        found.extend(
            ProgramObject(d, resource.name, f"{source.name}:{path}") for d in _yaml_documents(source.text(path))
        )
    found.extend(ProgramObject(d, resource.name, "graph") for d in kubernetes_objects(resource))
    first = [o for o in found if o.kind in ("CustomResourceDefinition", "Namespace")]
    return first + [o for o in found if o not in first]


def trident_runtime_crd(resource: str) -> ProgramObject:
    source = upstream.vendored(TRIDENT_RUNTIME_CRD[0])
    (document,) = _yaml_documents(source.text(TRIDENT_RUNTIME_CRD[1]))
    return ProgramObject(document, resource, "trident-operator (run time): " + TRIDENT_RUNTIME_CRD[1])


def program_objects(graph: Graph) -> list[ProgramObject]:
    """Every object the stack's program creates (and the operator CRD its backends wait for), in order."""
    # yaml/v2 ConfigGroups are (remote) components, not custom resources, yet they create objects.
    kubernetes = [
        r for r in graph.resources if r.type.startswith("kubernetes:") and (r.custom or r.type == CONFIG_GROUP_TYPE)
    ]
    ordered: list[ProgramObject] = []
    for resource in graph.in_dependency_order(kubernetes):
        if resource.type == charts.RELEASE_TYPE:
            ordered.extend(release_objects(resource))
            if charts.release_chart(resource).name == "trident-operator":
                # The operator creates it once running; the backends wait for it (components/trident.py).
                ordered.append(trident_runtime_crd(resource.name))
        elif resource.type == CONFIG_GROUP_TYPE:
            ordered.extend(_config_group_objects(resource))
        else:
            ordered.extend(ProgramObject(d, resource.name, "graph") for d in kubernetes_objects(resource))
    _check_order(ordered)
    return ordered


def _check_order(objects: list[ProgramObject]) -> None:
    """Fail early if the order could not work: a custom resource before its CRD, an object before its namespace."""

    def served(item: ProgramObject) -> set[tuple[str, str]]:
        spec = item.document["spec"]
        return {(f"{spec['group']}/{v['name']}", spec["names"]["kind"]) for v in spec["versions"]}

    custom = set().union(*(served(o) for o in objects if o.kind == "CustomResourceDefinition"))
    seen_crds: set[tuple[str, str]] = set()
    seen_namespaces = {"default", "kube-system", "kube-public", "kube-node-lease"}  # the API server makes these
    for item in objects:
        if item.kind == "CustomResourceDefinition":
            seen_crds |= served(item)
        elif item.kind == "Namespace":
            seen_namespaces.add(item.name)
        if (item.api_version, item.kind) in custom - seen_crds:
            raise ValueError(f"{item.key} ({item.resource}) comes before the CRD of {item.api_version} {item.kind}")
        if item.namespace and item.namespace not in seen_namespaces:
            raise ValueError(f"{item.key} ({item.resource}) comes before its namespace")


def counts(objects: Iterable[ProgramObject]) -> dict[str, Counter[str]]:
    """Objects per kind and per namespace (`(cluster)` for cluster-wide ones)."""
    chosen = list(objects)
    return {
        "kind": Counter(o.kind for o in chosen),
        "namespace": Counter(o.namespace or "(cluster)" for o in chosen),
    }
