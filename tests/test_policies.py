"""Each rule of the policy pack, called directly: a passing case (the real prod graph) and violations.

Resources reach the validators exactly as the pack builds them from an `AnalyzeStack` request:
properties through protobuf, secrets marked by `secrecy`, unknown values guarded by pulumi-policy's
proxy, parents and dependencies resolved to resources.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import json_format
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy

from config import versions as versions_config
from dsaas_guardrails import POLICIES, cluster, hub, secrecy, secrets, storage, versions
from tools.offline.mockgraph import Graph, RecordedResource, is_secret
from tools.offline.policy_runner import _struct

SECRET = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}
Validator = Callable[[StackValidationArgs, Callable[[str, str | None], None]], None]


def stack_args(resources: list[RecordedResource], config: dict[str, Any] | None = None) -> StackValidationArgs:
    """What the pack's servicer hands a stack validator for these resources."""
    built: dict[str, PolicyResource] = {}
    for r in resources:
        props = secrecy.deserialize_properties(json_format.MessageToDict(_struct(r.inputs)))
        opts = PolicyResourceOptions(
            False, [], r.delete_before_replace, [], PolicyCustomTimeouts(0, 0, 0), r.additional_secret_outputs, r.parent
        )
        built[r.urn] = PolicyResource(r.type, unknown_checking_proxy(props), r.urn, r.name, opts, None, None, [], {})
    for r in resources:
        resource = built[r.urn]
        resource.parent = built.get(r.parent)
        resource.dependencies = [built[d] for d in r.dependencies if d in built]
        resource.property_dependencies = {
            k: [built[d] for d in urns if d in built] for k, urns in r.property_dependencies.items()
        }
    return StackValidationArgs(list(built.values()), config or {})


def violations(validator: Validator, resources: list[RecordedResource], **config: Any) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append((message, urn or ""))

    validator(stack_args(resources, config), report)
    return found


@pytest.fixture
def prod(graphs: dict[str, Graph]) -> list[RecordedResource]:
    return copy.deepcopy(graphs["prod"].resources)


def named(resources: list[RecordedResource], name: str) -> RecordedResource:
    return next(r for r in resources if r.name == name)


def without(resources: list[RecordedResource], *names: str) -> list[RecordedResource]:
    return [r for r in resources if r.name not in names]


def hub_values(resources: list[RecordedResource]) -> dict[str, Any]:
    values = named(resources, "hub-release").inputs["values"]
    assert is_secret(values)  # the whole values input is a secret: it holds the cookie secret
    return dict(values["value"])


def set_param(resource: RecordedResource, key: str, value: str) -> None:
    stdin = resource.inputs["stdin"]
    text = stdin["value"] if is_secret(stdin) else stdin
    lines = [f"export {key}={value}" if line.startswith(f"export {key}=") else line for line in text.splitlines()]
    new = "\n".join(lines) + "\n"
    resource.inputs["stdin"] = {**stdin, "value": new} if is_secret(stdin) else new


ALL_VALIDATORS: list[Validator] = [
    p._StackValidationPolicy__validate  # type: ignore[attr-defined]
    for p in POLICIES
    if isinstance(p, StackValidationPolicy)
]


def test_the_pack_lists_every_rule_with_a_kebab_name_and_one_line_description() -> None:
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names)) == 17
    for policy in POLICIES:
        assert policy.name == policy.name.lower() and " " not in policy.name
        assert "\n" not in policy.description and policy.description.endswith(".")
        assert policy.enforcement_level is not None


# What config/policy-pack.dev.json downgrades: the lab's single control plane and its self-signed vCenter.
LAB_DOWNGRADES = {("dev", "control-plane-ha"), ("dev", "vcenter-certificate-verified")}


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_the_real_stacks_pass_every_rule_but_the_labs_quorum(stack: str, graphs: dict[str, Graph]) -> None:
    for policy in POLICIES:
        found = violations(policy._StackValidationPolicy__validate, graphs[stack].resources)  # type: ignore[attr-defined]
        expected = 1 if (stack, policy.name) in LAB_DOWNGRADES else 0
        assert len(found) == expected, (policy.name, found)


# --- control plane ---------------------------------------------------------------------------------


def test_ha_two_control_planes_is_even_and_too_few(prod: list[RecordedResource]) -> None:
    ((message, urn),) = violations(cluster.control_plane_ha, without(prod, "nodes-dsaas-prod-cp-3"))
    assert message.startswith("2 control-plane VM(s)") and "at least 3" in message and "for a quorum" in message
    assert "dsaas:nodes.controlPlane.count" in message and urn.endswith("nodes-dsaas-prod-cp-1")


def test_ha_threshold_comes_from_the_config(prod: list[RecordedResource]) -> None:
    ((message, _),) = violations(cluster.control_plane_ha, prod, minControlPlanes=5)
    assert "at least 5" in message and "even" not in message


def test_ha_four_control_planes_is_even(prod: list[RecordedResource]) -> None:
    extra = copy.deepcopy(named(prod, "nodes-dsaas-prod-cp-3"))
    extra.urn, extra.name, extra.inputs["name"] = extra.urn + "4", "nodes-dsaas-prod-cp-4", "dsaas-prod-cp-4"
    ((message, _),) = violations(cluster.control_plane_ha, [*prod, extra])
    assert message.startswith("4 control-plane VM(s)") and "4 members tolerate 1 failure, the same as 3" in message
    assert "count to 3 or 5 (" in message


def test_ha_fix_suggests_only_counts_the_rule_accepts(prod: list[RecordedResource]) -> None:
    ((message, _),) = violations(cluster.control_plane_ha, without(prod, "nodes-dsaas-prod-cp-3"))
    assert "2 members tolerate 0 failures, the same as 1" in message and "count to 3 (" in message
    ((message, _),) = violations(cluster.control_plane_ha, prod, minControlPlanes=5)
    assert "at least 5 are needed (they tolerate 2 failures)" in message and "count to 5 (" in message


def test_anti_affinity_missing(prod: list[RecordedResource]) -> None:
    ((message, _),) = violations(
        cluster.control_plane_anti_affinity, without(prod, "nodes-control-plane-anti-affinity")
    )
    assert "no DRS anti-affinity rule" in message and "3 control-plane VMs" in message and "Fix:" in message


def test_anti_affinity_must_name_every_control_plane_and_be_mandatory(prod: list[RecordedResource]) -> None:
    rule = named(prod, "nodes-control-plane-anti-affinity")
    rule.inputs["mandatory"] = False
    rule.property_dependencies["virtualMachineIds"] = [
        u for u in rule.property_dependencies["virtualMachineIds"] if not u.endswith("cp-3")
    ]
    ((message, urn),) = violations(cluster.control_plane_anti_affinity, prod)
    assert "does not name nodes-dsaas-prod-cp-3" in message and "mandatory is not true" in message
    assert urn == rule.urn


def test_anti_affinity_is_not_asked_of_a_single_control_plane(graphs: dict[str, Graph]) -> None:
    assert violations(cluster.control_plane_anti_affinity, graphs["dev"].resources) == []


def test_endpoint_on_a_node_address(prod: list[RecordedResource]) -> None:
    set_param(named(prod, "kubernetes-dsaas-prod-cp-1-admin-kubeconfig"), "API_ENDPOINT", "10.40.0.12:6443")
    ((message, _),) = violations(cluster.control_plane_endpoint, prod)
    assert "points the cluster at 10.40.0.12, the address of node" in message
    assert "dsaas:controlPlaneEndpoint" in message


def test_endpoint_must_be_the_address_kube_vip_announces(prod: list[RecordedResource]) -> None:
    init = named(prod, "kubernetes-dsaas-prod-cp-1-kubeadm-init")
    text = init.inputs["stdin"]  # the init config holds no secret: a reviewer sees it
    encoded = text.split("export KUBEADM_CONFIG_B64=", 1)[1].split("\n", 1)[0].strip("'")
    config = (
        base64.b64decode(encoded)
        .decode()
        .replace("controlPlaneEndpoint: 10.40.0.10:6443", "controlPlaneEndpoint: 10.40.0.99:6443")
    )
    set_param(init, "KUBEADM_CONFIG_B64", base64.b64encode(config.encode()).decode())
    ((message, urn),) = violations(cluster.control_plane_endpoint, prod)
    assert "10.40.0.99, but kube-vip announces 10.40.0.10" in message and urn == init.urn


# --- versions --------------------------------------------------------------------------------------


def test_unpinned_chart_version(prod: list[RecordedResource]) -> None:
    named(prod, "kubernetes-calico").inputs["version"] = ""
    named(prod, "storage-operator").inputs["version"] = "^100.2606"
    messages = sorted(m for m, _ in violations(versions.pinned_versions, prod))
    assert len(messages) == 2
    assert "kubernetes-calico (Release) (chart tigera-operator) has no chart version" in messages[0]
    assert "the version range '^100.2606'" in messages[1] and "config/versions.py" in messages[1]


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("quay.io/jupyter/scipy-notebook:latest", "moving tag 'latest'"),
        ("quay.io/jupyter/scipy-notebook", "no tag"),
        ("quay.io/jupyter/scipy-notebook:LATEST", "moving tag 'LATEST'"),
        ("quay.io/jupyter/scipy-notebook:Latest", "moving tag 'Latest'"),
        ("quay.io/jupyter/scipy-notebook:python-3.12", "Jupyter Docker Stacks moves"),
        ("quay.io/jupyter/scipy-notebook:x86_64-latest", "not a pin"),
        ("quay.io/jupyter/scipy-notebook:edge", "not a pin"),
        ("quay.io/jupyter/scipy-notebook:latest-2025", "not a pin"),
        ("quay.io/jupyter/scipy-notebook:latest\n", "not an image reference"),
    ],
)
def test_unpinned_profile_image(prod: list[RecordedResource], image: str, problem: str) -> None:
    values = hub_values(prod)
    values["singleuser"]["profileList"][-1]["kubespawner_override"]["image"] = image
    named(prod, "hub-release").inputs["values"]["value"] = values
    ((message, _),) = violations(versions.pinned_versions, prod)
    assert f"image {image} (profile 'r-statistics')" in message and problem in message
    assert "dsaas:hub.profiles[].image" in message


def test_prepulled_image_and_forbidden_tags_from_config(prod: list[RecordedResource]) -> None:
    """A date tag is a pin unless the pack's config withdraws that build (compared case-insensitively)."""
    values = hub_values(prod)
    values["prePuller"]["extraImages"] = {"tools": {"name": "ghcr.io/example/tools", "tag": "2025-01-13"}}
    named(prod, "hub-release").inputs["values"]["value"] = values
    assert violations(versions.pinned_versions, prod) == []
    ((message, _),) = violations(versions.pinned_versions, prod, forbiddenTags=["2025-01-13"])
    assert "prePuller.extraImages.tools" in message and "moving tag '2025-01-13'" in message
    values["prePuller"]["extraImages"]["tools"]["tag"] = "nightly"
    ((message, _),) = violations(versions.pinned_versions, prod, forbiddenTags=[])
    assert "prePuller.extraImages.tools" in message and "'nightly', which is not a pin" in message


@pytest.mark.parametrize(("tag", "problem"), [("v1.0", "not an exact release"), ("LATEST", "moving tag 'LATEST'")])
def test_kube_vip_needs_an_exact_release(prod: list[RecordedResource], tag: str, problem: str) -> None:
    step = named(prod, "kubernetes-dsaas-prod-cp-1-kube-vip")
    text = step.inputs["stdin"]["value"] if is_secret(step.inputs["stdin"]) else step.inputs["stdin"]
    encoded = text.split("export KUBE_VIP_MANIFEST_B64=", 1)[1].split("\n", 1)[0].strip("'")
    image = f"ghcr.io/kube-vip/kube-vip:{tag}"
    manifest = base64.b64decode(encoded).decode().replace(versions_config.KUBE_VIP_IMAGE, image)
    set_param(step, "KUBE_VIP_MANIFEST_B64", base64.b64encode(manifest.encode()).decode())
    ((message, _),) = violations(versions.pinned_versions, prod)
    assert f"image {image} " in message and problem in message and "KUBE_VIP_IMAGE" in message


@pytest.mark.parametrize(("key", "tag"), [("tridentImageTag", "26.06"), ("tridentAutosupportImageTag", "26.07")])
def test_chart_image_tags_are_exact_releases(prod: list[RecordedResource], key: str, tag: str) -> None:
    operator = named(prod, "storage-operator")
    operator.inputs["values"] = {**operator.inputs["values"], key: tag}
    messages = [m for m, _ in violations(versions.pinned_versions, prod)]
    # A Trident tag off its release also takes the autosupport tag's release line with it.
    assert len(messages) == (2 if key == "tridentImageTag" else 1), messages
    assert any(f"{key} is {tag!r}, not an exact release" in m and "Fix:" in m for m in messages)


def test_versions_must_be_ascii_digits(prod: list[RecordedResource]) -> None:
    set_param(named(prod, "kubernetes-dsaas-prod-worker-1-prepare"), "KUBERNETES_VERSION", "1.35.١")
    named(prod, "kubernetes-calico").inputs["version"] = "v3.31.٤"
    assert len(violations(versions.pinned_versions, prod)) == 2


def test_manifests_from_a_branch(prod: list[RecordedResource]) -> None:
    controller = named(prod, "storage-snapshot-controller")
    files = list(controller.inputs["files"])
    pinned = files[0]
    files[0] = pinned.replace(versions_config.SNAPSHOT_CONTROLLER_MANIFEST_REF, "master")
    controller.inputs["files"] = files
    ((message, urn),) = violations(versions.pinned_versions, prod)
    assert "storage-snapshot-controller (ConfigGroup)" in message and "git ref 'master'" in message
    assert urn == controller.urn
    assert versions.manifest_url_problem(pinned) is None
    tagged = pinned.replace(versions_config.SNAPSHOT_CONTROLLER_MANIFEST_REF, "v8.6.0")
    assert "git ref 'v8.6.0'" in str(versions.manifest_url_problem(tagged))  # a tag can be pushed again
    short = pinned.replace(versions_config.SNAPSHOT_CONTROLLER_MANIFEST_REF, "1d996ef")
    assert "git ref '1d996ef'" in str(versions.manifest_url_problem(short))
    assert "git ref 'refs'" in str(versions.manifest_url_problem(tagged.replace("v8.6.0", "refs/heads/main")))


def test_unpinned_kubernetes_packages(prod: list[RecordedResource]) -> None:
    set_param(named(prod, "kubernetes-dsaas-prod-worker-1-prepare"), "KUBERNETES_VERSION", "1.35")
    ((message, _),) = violations(versions.pinned_versions, prod)
    assert "installs kubernetes packages at '1.35'" in message and "dsaas:kubernetesVersion" in message


# --- hub -------------------------------------------------------------------------------------------


def test_ldap_insecure(prod: list[RecordedResource]) -> None:
    values = hub_values(prod)
    values["hub"]["config"]["LDAPAuthenticator"]["tls_strategy"] = "insecure"
    named(prod, "hub-release").inputs["values"]["value"] = values
    ((message, _),) = violations(hub.ldap_over_tls, prod)
    assert "tls_strategy is 'insecure'" in message and "dsaas:hub.ldap.tlsStrategy" in message


def test_sqlite_on_nfs(prod: list[RecordedResource]) -> None:
    values = hub_values(prod)
    values["hub"]["db"]["pvc"]["storageClassName"] = "dsaas-homes"
    named(prod, "hub-release").inputs["values"]["value"] = values
    ((message, _),) = violations(hub.no_sqlite_on_nfs, prod)
    assert "storage class dsaas-homes (ontap-nas, fsType nfs)" in message and "dsaas:hub.database.kind" in message


def test_sqlite_on_the_default_class_is_nfs_too(prod: list[RecordedResource]) -> None:
    values = hub_values(prod)
    del values["hub"]["db"]["pvc"]["storageClassName"]
    named(prod, "hub-release").inputs["values"]["value"] = values
    ((message, _),) = violations(hub.no_sqlite_on_nfs, prod)
    assert "dsaas-general" in message


@pytest.mark.parametrize(
    ("validator", "edit", "expected"),
    [
        (hub.idle_culling, lambda v: v["cull"].update(enabled=False), "dsaas:hub.culling.enabled"),
        (hub.idle_culling, lambda v: v["cull"].update(timeout=3600 * 24), "dsaas:hub.culling.timeoutMinutes"),
        (
            hub.singleuser_network_policy,
            lambda v: v["singleuser"]["networkPolicy"].update(enabled=False),
            "networkPolicy",
        ),
        (
            hub.image_prepuller,
            lambda v: v["prePuller"]["continuous"].update(enabled=False),
            "continuous image pre-puller",
        ),
    ],
)
def test_advisory_hub_features(
    prod: list[RecordedResource], validator: Validator, edit: Callable[[dict[str, Any]], None], expected: str
) -> None:
    assert violations(validator, prod) == []
    values = hub_values(prod)
    edit(values)
    named(prod, "hub-release").inputs["values"]["value"] = values
    ((message, _),) = violations(validator, prod)
    assert expected in message and "hub-release (Release)" in message


# --- storage ---------------------------------------------------------------------------------------


def test_homes_deleted_with_their_claim(prod: list[RecordedResource]) -> None:
    named(prod, "storage-class-dsaas-homes").inputs["reclaimPolicy"] = "Delete"
    ((message, urn),) = violations(storage.user_data_retained, prod)
    assert "storage class storage-class-dsaas-homes (StorageClass) holds user homes" in message
    assert "dsaas:storage.homesReclaimPolicy to Retain" in message and urn.endswith("storage-class-dsaas-homes")


@pytest.mark.parametrize(("cidr", "expected"), [("0.0.0.0/0", "(everyone)"), ("10.0.0.0/8", "wider than /16")])
def test_exports_too_wide(prod: list[RecordedResource], cidr: str, expected: str) -> None:
    named(prod, "storage-backend-ontap-nas").inputs["spec"]["autoExportCIDRs"] = ["10.40.0.0/24", cidr]
    ((message, _),) = violations(storage.exports_limited, prod)
    assert f"exports its NFS volumes to {cidr}{' ' if cidr.endswith('/0') else ', '}{expected}" in message
    assert "dsaas:storage.exportCidrs" in message


# --- secrets ---------------------------------------------------------------------------------------


def test_provider_password_in_clear(prod: list[RecordedResource]) -> None:
    provider = named(prod, "vsphere")
    provider.inputs["password"] = provider.inputs["password"]["value"]
    ((message, urn),) = violations(secrets.secrets_are_secret, prod)
    assert message.startswith("vsphere (vsphere) receives password as plain text") and urn == provider.urn


def test_secret_data_and_join_tokens_in_clear(prod: list[RecordedResource]) -> None:
    ontap = named(prod, "storage-ontap-credentials")
    ontap.inputs["stringData"] = ontap.inputs["stringData"]["value"]
    join = named(prod, "kubernetes-dsaas-prod-worker-2-kubeadm-join")
    join.inputs["stdin"] = join.inputs["stdin"]["value"]
    messages = sorted(m for m, _ in violations(secrets.secrets_are_secret, prod))
    assert len(messages) == 2
    assert "stdin (script parameters KUBEADM_CONFIG_B64)" in messages[0]
    assert "stringData.password, stringData.username" in messages[1]


def test_kubeconfig_printed_without_secret_stdout(prod: list[RecordedResource]) -> None:
    named(prod, "kubernetes-dsaas-prod-cp-1-admin-kubeconfig").additional_secret_outputs = []
    ((message, _),) = violations(secrets.secrets_are_secret, prod)
    assert "stdout (prints the admin kubeconfig" in message


def test_join_credentials_printed_without_secret_stdout(prod: list[RecordedResource]) -> None:
    named(prod, "kubernetes-dsaas-prod-worker-3-join-credentials").additional_secret_outputs = []
    ((message, _),) = violations(secrets.secrets_are_secret, prod)
    assert "stdout (prints a bootstrap token and certificate key" in message


def test_a_token_inside_an_encoded_config_needs_a_secret_script(prod: list[RecordedResource]) -> None:
    """The init config is plain because it holds no token; one that did would be caught."""
    init = named(prod, "kubernetes-dsaas-prod-cp-1-kubeadm-init")
    assert violations(secrets.secrets_are_secret, prod) == []
    text = init.inputs["stdin"]
    encoded = text.split("export KUBEADM_CONFIG_B64=", 1)[1].split("\n", 1)[0].strip("'")
    config = base64.b64decode(encoded).decode().replace("ttl: 15m0s", "ttl: 15m0s\n    token: abcdef.0123456789abcdef")
    set_param(init, "KUBEADM_CONFIG_B64", base64.b64encode(config.encode()).decode())
    ((message, urn),) = violations(secrets.secrets_are_secret, prod)
    assert "stdin (script parameters KUBEADM_CONFIG_B64)" in message and urn == init.urn


def test_a_script_installed_on_the_node_is_judged_by_its_own_parameters(prod: list[RecordedResource]) -> None:
    """The certificate renewal ships a rendered script base64-encoded: plain while its parameters hold nothing
    secret, caught once one would (a token the installed program would keep on the node)."""
    renewal = named(prod, "kubernetes-dsaas-prod-cp-2-cert-renewal")
    assert violations(secrets.secrets_are_secret, prod) == []
    encoded = renewal.inputs["stdin"].split("export RENEW_PROGRAM_B64=", 1)[1].split("\n", 1)[0].strip("'")
    program = (
        base64.b64decode(encoded).decode().replace("export RENEW_DAYS=", "export API_TOKEN=abc\nexport RENEW_DAYS=")
    )
    set_param(renewal, "RENEW_PROGRAM_B64", base64.b64encode(program.encode()).decode())
    ((message, urn),) = violations(secrets.secrets_are_secret, prod)
    assert "stdin (script parameters RENEW_PROGRAM_B64)" in message and urn == renewal.urn


def test_a_secret_leaf_key_in_chart_values(prod: list[RecordedResource]) -> None:
    calico = named(prod, "kubernetes-calico")
    calico.inputs["values"]["apiServer"]["token"] = SECRET | {"value": "t0ken"}
    assert violations(secrets.secrets_are_secret, prod) == []
    calico.inputs["values"]["apiServer"]["token"] = "t0ken"
    ((message, _),) = violations(secrets.secrets_are_secret, prod)
    assert "receives values.apiServer.token as plain text" in message


def test_unknown_values_are_skipped_not_fatal(prod: list[RecordedResource]) -> None:
    """During a real preview, values from resources not yet created are unknown."""
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    for resource in prod:
        if resource.type == "command:remote:Command" and resource.name.endswith("-kubeadm-init"):
            resource.inputs["stdin"] = unknown
        if resource.type == "vsphere:index/virtualMachine:VirtualMachine":
            resource.inputs["extraConfig"] = unknown
    for validator in ALL_VALIDATORS:
        assert violations(validator, prod) == []


# --- issue 11: plain HTTP behind a front proxy, vCenter certificate --------------------------------


@pytest.fixture
def dev(graphs: dict[str, Graph]) -> list[RecordedResource]:
    return copy.deepcopy(graphs["dev"].resources)


def set_hub_values(resources: list[RecordedResource], edit: Callable[[dict[str, Any]], None]) -> None:
    values = hub_values(resources)
    edit(values)
    named(resources, "hub-release").inputs["values"]["value"] = values


@pytest.mark.parametrize(
    ("ranges", "expected"),
    [
        (None, "admits every address"),
        ([], "admits every address"),
        (["10.20.0.80/32", "0.0.0.0/0"], "0.0.0.0/0 is wider than /24"),
        (["10.0.0.0/8"], "10.0.0.0/8 is wider than /24"),
    ],
)
def test_offloaded_tls_without_source_ranges(dev: list[RecordedResource], ranges: Any, expected: str) -> None:
    assert violations(hub.offload_source_ranges, dev) == []

    def edit(values: dict[str, Any]) -> None:
        service = values["proxy"]["service"]
        service.pop("loadBalancerSourceRanges", None)
        if ranges is not None:
            service["loadBalancerSourceRanges"] = ranges

    set_hub_values(dev, edit)
    ((message, urn),) = violations(hub.offload_source_ranges, dev)
    assert "plain HTTP" in message and expected in message and "dsaas:hub.frontProxyCidrs" in message
    assert urn.endswith("hub-release")


def test_https_at_the_proxy_needs_no_source_ranges(prod: list[RecordedResource]) -> None:
    assert violations(hub.offload_source_ranges, prod) == []
    set_hub_values(prod, lambda v: v["proxy"]["https"].update(type="offload"))
    ((message, _),) = violations(hub.offload_source_ranges, prod)
    assert "admits every address" in message


def test_source_range_width_comes_from_the_config(dev: list[RecordedResource]) -> None:
    set_hub_values(dev, lambda v: v["proxy"]["service"].update(loadBalancerSourceRanges=["10.20.0.0/22"]))
    assert len(violations(hub.offload_source_ranges, dev)) == 1
    assert violations(hub.offload_source_ranges, dev, minPrefixLength=22) == []


@pytest.mark.parametrize("value", ["true", True, "True"])
def test_vcenter_certificate_not_verified(prod: list[RecordedResource], value: Any) -> None:
    assert violations(secrets.vcenter_certificate_verified, prod) == []
    provider = named(prod, "vsphere")
    provider.inputs["allowUnverifiedSsl"] = value
    ((message, urn),) = violations(secrets.vcenter_certificate_verified, prod)
    assert "vsphere (vsphere): allowUnverifiedSsl is true" in message and "vCenter password" in message
    assert "dsaas:vsphere.allowUnverifiedSsl" in message and '{"vcenter-certificate-verified": "advisory"}' in message
    assert urn == provider.urn


def test_the_lab_skips_vcenter_certificate_checks(dev: list[RecordedResource]) -> None:
    ((message, _),) = violations(secrets.vcenter_certificate_verified, dev)
    assert "vcenter.lab.example.org" in message
