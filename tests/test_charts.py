"""Every chart release of every stack, rendered by Helm's own engine from the vendored chart sources.

The values tests (test_hub_values.py) check what we hand the charts; these check what the charts make of
it: each object Kubernetes will receive, validated for every minor the settings accept, linted by Helm,
and asserted on for what matters to an operator (images, the hub database's class, the proxy's address
and who may reach it, the network policies, namespaces).
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from components import backup_render, hub_render, kubeadm_render, trident_render
from config import versions
from config.hub import HubDatabaseKind, HubTlsMode
from config.settings import parse_settings
from dsaas_guardrails import pins
from dsaas_guardrails.versions import PINNED_SCHEMA, image_problem, notebook_images
from tests.conftest import ROOT_DIR, STACKS, load_settings, settings_values
from tools.offline import charts
from tools.offline.mockgraph import Graph

MINORS = [f"{minor}.0" for minor in versions.SUPPORTED_KUBERNETES_MINORS]
# What each stack's graph deploys, chart by chart: every one must be vendored and rendered.
DEPLOYED = {
    "hub-release": ("jupyterhub", versions.Z2JH_CHART_VERSION),
    "storage-operator": ("trident-operator", versions.TRIDENT_CHART_VERSION),
    "kubernetes-calico": ("tigera-operator", versions.CALICO_CHART_VERSION),
}
# Releases only some stacks deploy: Velero where backups are on (prod, not dev).
OPTIONAL = {"backup-velero": ("velero", versions.VELERO_CHART_VERSION)}
BACKUPS = {"prod": True, "dev": False}
# Helm lint findings that are upstream's and harmless, one reason each; anything else fails.
KNOWN_LINT = {
    "tigera-operator": {
        "Chart.yaml: version 'v3.31.4' is not a valid SemVerV2": (
            "Calico publishes its chart as v3.31.4 (`helm package --version $(GIT_VERSION)`); Helm 3 and 4 "
            "install it, only lint's strict SemVer 2 check objects to the leading v"
        ),
    },
}


@pytest.fixture(scope="module")
def rendered(graphs: dict[str, Graph]) -> dict[str, dict[str, charts.RenderedRelease]]:
    return {stack: {r.resource: r for r in charts.render_graph(graphs[stack])} for stack in STACKS}


# --- the vendored sources ----------------------------------------------------------------------


@pytest.mark.parametrize("chart", charts.load_manifest(), ids=lambda c: c.name)
def test_each_vendored_chart_is_the_tree_its_manifest_describes(chart: charts.VendoredChart) -> None:
    assert charts.tree_digest(chart.directory) == chart.sha256, (
        f"{chart.directory.relative_to(ROOT_DIR)} differs from {charts.MANIFEST.relative_to(ROOT_DIR)}: "
        f"re-vendor it with `python -m tools.charts vendor {chart.name} --git-dir <clone>` (docs/charts.md)"
    )
    source = chart.entry["source"]
    assert len(source["commit"]) == 40 and len(source["tree"]) == 40 and source["tag"]
    for license_file in chart.entry["licenses"]:
        assert (chart.directory / license_file.rsplit("/", 1)[-1]).stat().st_size > 0
    metadata = yaml.safe_load((chart.directory / "Chart.yaml").read_text())
    assert (metadata["name"], str(metadata["version"])) == (chart.name, chart.version)
    for file in chart.directory.rglob("*"):  # no release placeholder left
        if file.is_file():
            text = file.read_bytes()
            assert b"set-by-chartpress" not in text and b"set.by.chartpress" not in text, file


def test_the_chartpress_images_are_the_published_ones(rendered: dict[str, dict[str, charts.RenderedRelease]]) -> None:
    (z2jh,) = [c for c in charts.load_manifest() if c.name == "jupyterhub"]
    (tags,) = [r for r in z2jh.entry["replace"] if r["file"] == "values.yaml"]
    published = set(tags["images"])
    assert len(published) == tags["count"]
    # What the chart's defaults name, with the tags chartpress sets at release.
    with_default = {img for r in rendered["prod"].values() for o in r.objects for img in o.images()}
    assert {i for i in with_default if i.startswith("quay.io/jupyterhub/k8s-")} <= published
    assert "quay.io/jupyterhub/k8s-hub:4.4.0" in with_default


@pytest.mark.parametrize("stack", STACKS)
def test_every_release_of_the_stack_is_rendered_from_its_vendored_chart(
    stack: str, graphs: dict[str, Graph], rendered: dict[str, dict[str, charts.RenderedRelease]]
) -> None:
    recorded = {r.name: (r.inputs["chart"], r.inputs["version"]) for r in charts.releases(graphs[stack])}
    expected = {**DEPLOYED, **(OPTIONAL if BACKUPS[stack] else {})}
    assert recorded == expected
    for name, (chart, version) in expected.items():
        release = rendered[stack][name]
        assert (release.chart.name, release.chart.version) == (chart, version)
        assert release.objects, name


def test_a_release_without_a_vendored_chart_is_named() -> None:
    with pytest.raises(charts.ChartError, match=r"jupyterhub 9\.9\.9 is not vendored.*tools\.charts vendor"):
        charts.vendored_chart("jupyterhub", "9.9.9")


# --- every object, as Kubernetes receives it ---------------------------------------------------


def _strict(schema: Any) -> Any:
    """A CRD's structural schema as the API server applies it: unknown fields are not kept (pruning), so
    they are refused here, except where the schema says to preserve them."""
    if not isinstance(schema, dict):
        return schema
    result = {key: _strict(value) if key != "properties" else value for key, value in schema.items()}
    if isinstance(schema.get("pattern"), str):
        # The API server's patterns are Go RE2, which takes an inline flag anywhere (Calico's
        # FelixConfiguration: `^(?i)(Trace|...)?$`); Python wants it first, where it means the same.
        result["pattern"] = re.sub(r"^\^\(\?([a-z]+)\)", r"(?\1)^", schema["pattern"])
    if "properties" in schema:
        result["properties"] = {key: _strict(value) for key, value in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            result["additionalProperties"] = False
    return result


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → the served version's schema, from every vendored chart's CRDs."""
    schemas = {}
    for chart in charts.load_manifest():
        for crd in charts._crd_documents(chart):
            spec = crd["spec"]
            for version in spec["versions"]:
                if version.get("served", True) and "schema" in version:
                    api_version = f"{spec['group']}/{version['name']}"
                    schemas[(api_version, spec["names"]["kind"])] = _strict(version["schema"]["openAPIV3Schema"])
    return schemas


def validate(document: dict[str, Any], kubernetes_version: str) -> None:
    schema = crd_schemas().get((document["apiVersion"], document["kind"]))
    if schema is not None:
        jsonschema.validate(document, schema)
    else:
        kubernetes_validate.validate(document, kubernetes_version, strict=True)


@pytest.mark.parametrize("minor", MINORS)
@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_object_is_valid_for_each_accepted_minor(
    stack: str, minor: str, rendered: dict[str, dict[str, charts.RenderedRelease]]
) -> None:
    counted = Counter[str]()
    for release in rendered[stack].values():
        for item in release.objects:
            try:
                validate(item.document, minor)
            except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as error:
                pytest.fail(f"{release.resource}: {item.key} ({item.source}) is invalid for {minor}: {error}")
            counted[release.resource] += 1
    assert counted == {name: len(r.objects) for name, r in rendered[stack].items()}


@pytest.mark.parametrize(
    ("resource", "kind", "edit"),
    [
        ("hub-release", "Deployment", lambda d: d["spec"]["template"]["spec"].update(restartPolicyy="Always")),
        ("kubernetes-calico", "Installation", lambda d: d["spec"]["calicoNetwork"].update(bgpp="Disabled")),
    ],
)
def test_the_validators_refuse_a_misspelt_field(
    resource: str, kind: str, edit: Any, rendered: dict[str, dict[str, charts.RenderedRelease]]
) -> None:
    (item,) = rendered["prod"][resource].of_kind(kind)[:1]
    document = copy.deepcopy(item.document)
    edit(document)
    with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
        validate(document, MINORS[0])


@pytest.mark.parametrize("minor", MINORS)
@pytest.mark.parametrize("stack", STACKS)
def test_helm_lints_each_chart_with_the_stack_values(
    stack: str, minor: str, rendered: dict[str, dict[str, charts.RenderedRelease]]
) -> None:
    for release in rendered[stack].values():
        known = KNOWN_LINT.get(release.chart.name, {})
        unexpected = [f for f in charts.lint_release(release, minor) if f not in known]
        assert unexpected == [], f"{release.resource} ({release.chart.label}) on {minor}"


def test_lint_sees_a_bad_value() -> None:
    chart = charts.vendored_chart("jupyterhub", versions.Z2JH_CHART_VERSION)
    broken = charts.RenderedRelease("x", "jupyterhub", "jupyterhub", chart, {"proxy": {"https": {"secrets": {}}}})
    assert any("secrets" in finding for finding in charts.lint_release(broken, MINORS[0]))


# --- what an operator relies on ----------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_image_in_every_pod_is_pinned(stack: str, rendered: dict[str, dict[str, charts.RenderedRelease]]) -> None:
    """The pack's own rule on the objects: notebook images (what users run) by date, commit or digest;
    every other image (the charts' own) by an exact release or digest."""
    forbidden = list(PINNED_SCHEMA.properties["forbiddenTags"]["default"])
    users_images = {image for release in rendered[stack].values() for _, image in notebook_images(release.values)}
    images = {
        (release.resource, item.key, image)
        for release in rendered[stack].values()
        for item in release.objects
        for image in item.images()
    }
    assert len(images) > 10 and users_images
    problems = [
        f"{resource}: {key}: {image} {problem}"
        for resource, key, image in sorted(images)
        if (problem := image_problem(image, forbidden, pins.NOTEBOOK if image in users_images else pins.PLATFORM))
    ]
    assert problems == []


def test_the_pin_rule_catches_a_moving_tag() -> None:
    forbidden = list(PINNED_SCHEMA.properties["forbiddenTags"]["default"])
    assert image_problem("quay.io/jupyterhub/k8s-hub:latest", forbidden)
    assert image_problem("quay.io/jupyterhub/k8s-hub", forbidden)


@pytest.mark.parametrize("stack", STACKS)
def test_nothing_lands_in_the_default_namespace(
    stack: str, rendered: dict[str, dict[str, charts.RenderedRelease]]
) -> None:
    wrong = [
        f"{r.resource}: {o.key}"
        for r in rendered[stack].values()
        for o in r.objects
        if o.namespaced and o.namespace in ("default", "", None)
    ]
    assert wrong == []
    namespaces = {r.resource: {o.namespace for o in r.objects if o.namespaced} for r in rendered[stack].values()}
    assert namespaces == {
        "hub-release": {hub_render.HUB_NAMESPACE},
        "storage-operator": {trident_render.TRIDENT_NAMESPACE},
        "kubernetes-calico": {"tigera-operator"},
        **({"backup-velero": {backup_render.BACKUP_NAMESPACE}} if BACKUPS[stack] else {}),
    }


@pytest.mark.parametrize("stack", STACKS)
def test_the_hub_runs_the_pinned_image_and_keeps_its_database_where_the_settings_say(
    stack: str, rendered: dict[str, dict[str, charts.RenderedRelease]]
) -> None:
    settings = load_settings(stack)
    hub = rendered[stack]["hub-release"]
    assert hub.get("Deployment", "hub").images() == [f"quay.io/jupyterhub/k8s-hub:{versions.Z2JH_CHART_VERSION}"]
    claims = {o.name: o.document for o in hub.of_kind("PersistentVolumeClaim")}
    if settings.hub.database.kind is HubDatabaseKind.BLOCK:
        claim = claims["hub-db-dir"]["spec"]
        assert claim["storageClassName"] == trident_render.HUB_DATABASE_CLASS  # ontap-san, never NFS
        assert claim["accessModes"] == ["ReadWriteOnce"]
        assert claim["resources"]["requests"]["storage"] == f"{settings.hub.database.capacity_gib}Gi"
    else:
        assert claims == {}
    # The per-user home claims are KubeSpawner's, not the chart's: no object of the release holds user data.
    assert not [o for o in hub.objects if o.kind == "PersistentVolumeClaim" and o.name != "hub-db-dir"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_proxy_service_is_where_kube_vip_announces_it_and_admits_whom_the_settings_say(
    stack: str, rendered: dict[str, dict[str, charts.RenderedRelease]]
) -> None:
    settings = load_settings(stack)
    service = rendered[stack]["hub-release"].get("Service", "proxy-public").document
    spec = service["spec"]
    assert spec["type"] == "LoadBalancer"
    assert service["metadata"]["annotations"]["kube-vip.io/loadbalancerIPs"] == str(settings.hub.address)
    assert "loadBalancerIP" not in spec  # the address is kube-vip's annotation, not the deprecated field
    assert spec.get("externalTrafficPolicy", "Cluster") == "Cluster"
    ports = {p["name"]: p for p in spec["ports"]}
    if settings.hub.tls is HubTlsMode.OFFLOAD:
        # Plain HTTP only, and only from the front proxy (kube-proxy enforces the ranges).
        assert set(ports) == {"http"}
        assert spec["loadBalancerSourceRanges"] == [str(c) for c in settings.hub.front_proxy_cidrs or []]
        assert spec["loadBalancerSourceRanges"] and "0.0.0.0/0" not in spec["loadBalancerSourceRanges"]
    else:
        assert set(ports) == {"https", "http"} and ports["https"]["port"] == 443
        assert "loadBalancerSourceRanges" not in spec
        secret_volumes = rendered[stack]["hub-release"].get("Deployment", "proxy").pod_spec() or {}
        tls = [v for v in secret_volumes.get("volumes", []) if v.get("secret", {}).get("secretName") == "hub-tls"]
        assert tls, "the proxy mounts the hub-tls Secret the stack creates"


def _rules_from(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [peer for rule in policy["spec"].get("ingress", []) for peer in rule.get("from", [{}])]


@pytest.mark.parametrize("stack", STACKS)
def test_the_network_policies_admit_only_what_z2jh_needs(
    stack: str, rendered: dict[str, dict[str, charts.RenderedRelease]]
) -> None:
    settings = load_settings(stack)
    policies = {o.name: o.document for o in rendered[stack]["hub-release"].of_kind("NetworkPolicy")}
    expected = {"hub", "proxy"} | ({"singleuser"} if settings.hub.network_policy else set())
    assert set(policies) == expected
    # The hub's API: only pods labelled for it (proxy, user servers, image pullers are not).
    hub_peers = _rules_from(policies["hub"])
    assert hub_peers == [{"podSelector": {"matchLabels": {"hub.jupyter.org/network-access-hub": "true"}}}]
    # The proxy: its public ports from anywhere (the Service and kube-proxy narrow who reaches them), its API
    # only from pods labelled for it (the hub).
    proxy_rules = [
        (sorted(p["port"] for p in rule["ports"]), rule.get("from")) for rule in policies["proxy"]["spec"]["ingress"]
    ]
    assert (["http", "https"], None) in proxy_rules
    api_peers = [peers for ports, peers in proxy_rules if "api" in ports]
    assert api_peers == [[{"podSelector": {"matchLabels": {"hub.jupyter.org/network-access-proxy-api": "true"}}}]]
    if settings.hub.network_policy:
        user = policies["singleuser"]["spec"]
        assert [peer for rule in user["ingress"] for peer in rule["from"]] == [
            {"podSelector": {"matchLabels": {"hub.jupyter.org/network-access-singleuser": "true"}}}
        ]
        # Notebooks reach the internet and DNS, never the data center's private addresses (ONTAP
        # management, the nodes, the directory) nor the cloud metadata address.
        wide = [peer["ipBlock"] for rule in user["egress"] for peer in rule.get("to", []) if "ipBlock" in peer]
        open_ranges = [b for b in wide if b["cidr"] == "0.0.0.0/0"]
        assert open_ranges and all(
            {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.169.254/32"} <= set(b["except"])
            for b in open_ranges
        )
        private = [r for r in user["egress"] if any(p.get("ipBlock", {}).get("cidr") == "10.0.0.0/8" for p in r["to"])]
        assert private and all({p["port"] for p in rule["ports"]} == {53} for rule in private)


@pytest.mark.parametrize("stack", STACKS)
def test_the_storage_and_network_operators_get_the_values_we_pin(
    stack: str, rendered: dict[str, dict[str, charts.RenderedRelease]]
) -> None:
    settings = load_settings(stack)
    trident = rendered[stack]["storage-operator"]
    assert trident.get("Deployment", "trident-operator").images() == [
        f"docker.io/netapp/trident-operator:{versions.TRIDENT_VERSION}"
    ]
    orchestrator = trident.get("TridentOrchestrator", "trident").document["spec"]
    assert orchestrator["namespace"] == trident_render.TRIDENT_NAMESPACE
    assert orchestrator["silenceAutosupport"] is (not settings.storage.autosupport)
    assert orchestrator["tridentImage"].endswith(f":{versions.TRIDENT_VERSION}")
    calico = rendered[stack]["kubernetes-calico"]
    installation = calico.get("Installation", "default").document["spec"]
    (pool,) = installation["calicoNetwork"]["ipPools"]
    assert pool["cidr"] == str(settings.cluster.pod_cidr) and pool["encapsulation"] == "VXLAN"
    assert installation["calicoNetwork"]["nodeAddressAutodetectionV4"] == {"kubernetes": "NodeInternalIP"}
    assert calico.get("Deployment", "tigera-operator").images() == ["quay.io/tigera/operator:v1.40.7"]
    # WireGuard between nodes (dsaas:wireguard, on by default): the chart renders Felix's default config.
    felix = calico.get("FelixConfiguration", "default").document
    assert felix["apiVersion"] == "crd.projectcalico.org/v1" and felix["spec"] == {"wireguardEnabled": True}
    assert settings.cluster.wireguard


def test_wireguard_off_renders_no_felix_configuration(graphs: dict[str, Graph]) -> None:
    settings = parse_settings({**settings_values("dev"), "dsaas:wireguard": False})
    values = kubeadm_render.render_calico_values(settings)
    assert values["defaultFelixConfiguration"] == {"enabled": False}
    release = charts.render_release(graphs["dev"].by_name("kubernetes-calico"))
    objects = charts.render_chart(release.chart, values, name=release.release, namespace=release.namespace)
    assert not [o for o in objects if o.kind == "FelixConfiguration"]
    assert [o for o in release.objects if o.kind == "FelixConfiguration"]


def test_the_lab_hub_gets_the_charts_own_configuration_files(graphs: dict[str, Graph]) -> None:
    from tools.lab.hub import CHART_FILES, ChartHub

    values = charts.render_release(graphs["dev"].by_name("hub-release")).values
    hub = ChartHub.render(values)
    chart = charts.vendored_chart("jupyterhub", versions.Z2JH_CHART_VERSION)
    for name in CHART_FILES:  # what the hub pod mounts from the ConfigMap is the chart's file, unchanged
        assert hub.configmap[name] == (chart.directory / "files" / "hub" / name).read_text()
    assert yaml.safe_load(hub.secret["values.yaml"])["hub"]["config"]["JupyterHub"]["authenticator_class"]
    assert hub.env["CONFIGPROXY_AUTH_TOKEN"] == values["proxy"]["secretToken"]
    assert hub.env["POD_NAMESPACE"] == hub_render.HUB_NAMESPACE
    assert set(hub.extra_files) == {entry["mountPath"] for entry in values["hub"]["extraFiles"].values()}
