"""Stack settings: both stack files load, and every kind of bad input names its key and a fix."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from config import versions
from config.settings import ClusterSettings, SettingsError, parse_settings
from tests.conftest import ROOT_DIR, STACKS, load_settings, settings_values
from tests.test_hub_database_backup import EXTERNAL_POSTGRES
from tools.offline.mockgraph import RecordingMonitor, run_program


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_load(stack: str) -> None:
    settings = load_settings(stack)
    assert settings.cluster.kubernetes_minor in versions.SUPPORTED_KUBERNETES_MINORS
    assert len({n.address for n in settings.all_nodes}) == len(settings.all_nodes)


def test_dev_is_a_lab_and_prod_is_highly_available() -> None:
    dev, prod = load_settings("dev"), load_settings("prod")
    assert (len(dev.control_planes), len(dev.workers)) == (1, 2)
    assert len(prod.control_planes) == 3 and len(prod.workers) >= 3
    assert prod.cluster.high_availability


def test_project_defaults_match_the_typed_defaults() -> None:
    declared = yaml.safe_load((ROOT_DIR / "Pulumi.yaml").read_text())["config"]
    for name, field in ClusterSettings.model_fields.items():
        key = field.alias or name
        assert key in declared, f"Pulumi.yaml does not declare {key}"
        if field.is_required():
            assert "default" not in declared[key]
        else:
            assert str(declared[key]["default"]) == str(field.default), key


def _problem_keys(values: dict[str, Any]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        parse_settings(values)
    message = str(caught.value)
    for problem in caught.value.problems:
        assert problem.key in message and "Fix:" in message
    return caught.value.keys


def _edit(stack: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    values = copy.deepcopy(settings_values(stack))
    edit(values)
    return values


BAD_INPUTS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "pod-overlaps-service": (lambda v: v.update({"dsaas:podCidr": "10.96.0.0/16"}), "dsaas:podCidr"),
    "service-overlaps-nodes": (lambda v: v.update({"dsaas:serviceCidr": "10.40.0.0/16"}), "dsaas:serviceCidr"),
    "pod-overlaps-nodes": (lambda v: v.update({"dsaas:podCidr": "10.0.0.0/8"}), "dsaas:podCidr"),
    "node-outside-subnet": (
        lambda v: v["dsaas:nodes"]["controlPlane"].update(addresses=["10.40.0.11", "10.41.0.12", "10.40.0.13"]),
        "dsaas:nodes.controlPlane.addresses[1]",
    ),
    "vip-outside-subnet": (
        lambda v: v.update({"dsaas:controlPlaneEndpoint": "10.50.0.10"}),
        "dsaas:controlPlaneEndpoint",
    ),
    "vip-is-a-node": (lambda v: v.update({"dsaas:controlPlaneEndpoint": "10.40.0.12"}), "dsaas:controlPlaneEndpoint"),
    "duplicate-in-list": (
        lambda v: v["dsaas:nodes"]["controlPlane"].update(addresses=["10.40.0.11", "10.40.0.11", "10.40.0.13"]),
        "dsaas:nodes.controlPlane.addresses[1]",
    ),
    "pools-overlap": (
        lambda v: v["dsaas:nodes"]["workers"].update(firstAddress="10.40.0.13"),
        "dsaas:nodes.workers.firstAddress",
    ),
    "list-too-short": (
        lambda v: v["dsaas:nodes"]["controlPlane"].update(addresses=["10.40.0.11", "10.40.0.12"]),
        "dsaas:nodes.controlPlane.addresses",
    ),
    "range-runs-out": (
        lambda v: v["dsaas:nodes"]["workers"].update(firstAddress="10.40.0.252"),
        "dsaas:nodes.workers.firstAddress",
    ),
    "even-control-planes": (
        lambda v: v["dsaas:nodes"]["controlPlane"].update(count=2, addresses=None, firstAddress="10.40.0.11"),
        "dsaas:nodes.controlPlane.count",
    ),
    "zero-control-planes": (
        lambda v: v["dsaas:nodes"]["controlPlane"].update(count=0),
        "dsaas:nodes.controlPlane.count",
    ),
    "ha-with-one": (
        lambda v: v["dsaas:nodes"]["controlPlane"].update(count=1),
        "dsaas:nodes.controlPlane.count",
    ),
    "old-kubernetes": (lambda v: v.update({"dsaas:kubernetesVersion": "1.33.4"}), "dsaas:kubernetesVersion"),
    "unpinned-kubernetes": (lambda v: v.update({"dsaas:kubernetesVersion": "1.35"}), "dsaas:kubernetesVersion"),
    "misspelt-pool-key": (
        lambda v: v["dsaas:nodes"]["workers"].update(memoryMB=4096),
        "dsaas:nodes.workers.memoryMB",
    ),
    "unknown-top-level-key": (lambda v: v.update({"dsaas:kubernetsVersion": "1.35.1"}), "dsaas:kubernetsVersion"),
    "missing-section": (lambda v: v.pop("dsaas:network"), "dsaas:network"),
    "gateway-outside-subnet": (lambda v: v["dsaas:network"].update(gateway="10.41.0.1"), "dsaas:network.gateway"),
    "export-to-everyone": (
        lambda v: v["dsaas:storage"].update(exportCidrs=["0.0.0.0/0"]),
        "dsaas:storage.exportCidrs[0]",
    ),
    "export-beyond-nodes": (
        lambda v: v["dsaas:storage"].update(exportCidrs=["10.40.0.0/24", "10.0.0.0/8"]),
        "dsaas:storage.exportCidrs[1]",
    ),
    "snapshots-on-economy": (
        lambda v: v["dsaas:storage"].update(homesDriver="ontap-nas-economy"),
        "dsaas:storage.snapshots",
    ),
    "unknown-driver": (lambda v: v["dsaas:storage"].update(homesDriver="ontap-nfs"), "dsaas:storage.homesDriver"),
    "missing-svm": (lambda v: v["dsaas:storage"]["ontap"].pop("svm"), "dsaas:storage.ontap.svm"),
    "hub-address-is-vip": (lambda v: v["dsaas:hub"].update(address="10.40.0.10"), "dsaas:hub.address"),
    "hub-address-is-node": (lambda v: v["dsaas:hub"].update(address="10.40.0.22"), "dsaas:hub.address"),
    "hub-address-elsewhere": (lambda v: v["dsaas:hub"].update(address="192.168.1.5"), "dsaas:hub.address"),
    "hub-hostname-not-fqdn": (lambda v: v["dsaas:hub"].update(hostname="jupyter"), "dsaas:hub.hostname"),
    "ldap-no-way-to-find-dn": (
        lambda v: v["dsaas:hub"]["ldap"].update(lookupDn=False),
        "dsaas:hub.ldap.bindDnTemplates",
    ),
    "ldap-template-without-username": (
        lambda v: v["dsaas:hub"]["ldap"].update(lookupDn=False, bindDnTemplates=["cn=admin,dc=example,dc=org"]),
        "dsaas:hub.ldap.bindDnTemplates[0]",
    ),
    "ldap-lookup-and-templates": (
        lambda v: v["dsaas:hub"]["ldap"].update(lookupDn=True, bindDnTemplates=["uid={username},o=x"]),
        "dsaas:hub.ldap.lookupDn",
    ),
    "ldap-bad-domain": (
        lambda v: v["dsaas:hub"]["ldap"].update(domains=["DC", "dc example"]),
        "dsaas:hub.ldap.domains[1]",
    ),
    "ldap-unknown-membership": (
        lambda v: v["dsaas:hub"]["ldap"].update(membership="groupMembership"),
        "dsaas:hub.ldap.membership",
    ),
    "ldap-unknown-directory": (
        lambda v: v["dsaas:hub"]["ldap"].update(directory="eDirectory"),
        "dsaas:hub.ldap.directory",
    ),
    "ldap-refresh-zero": (
        lambda v: v["dsaas:hub"]["ldap"].update(refreshMinutes=0),
        "dsaas:hub.ldap.refreshMinutes",
    ),
    "ldap-lookup-without-search-user": (
        lambda v: v["dsaas:hub"]["ldap"].pop("searchUser"),
        "dsaas:hub.ldap.searchUser",
    ),
    "ldap-bad-strategy": (
        lambda v: v["dsaas:hub"]["ldap"].update(tlsStrategy="starttls"),
        "dsaas:hub.ldap.tlsStrategy",
    ),
    "ldap-no-allowed-groups": (
        lambda v: v["dsaas:hub"]["ldap"].update(allowedGroups=[]),
        "dsaas:hub.ldap.allowedGroups",
    ),
    "profile-without-tag": (
        lambda v: v["dsaas:hub"]["profiles"][0].update(image="quay.io/jupyter/r-notebook"),
        "dsaas:hub.profiles[0].image",
    ),
    "profile-registry-port-is-not-a-tag": (
        lambda v: v["dsaas:hub"]["profiles"][0].update(image="registry.example.org:5000/r-notebook"),
        "dsaas:hub.profiles[0].image",
    ),
    "profile-moving-docker-stacks-tag": (
        lambda v: v["dsaas:hub"]["profiles"][0].update(image="quay.io/jupyter/r-notebook:python-3.12"),
        "dsaas:hub.profiles[0].image",
    ),
    "profile-tag-with-a-newline": (
        lambda v: v["dsaas:hub"]["profiles"][0].update(image="quay.io/jupyter/r-notebook:latest\n"),
        "dsaas:hub.profiles[0].image",
    ),
    "profile-slug-taken": (lambda v: v["dsaas:hub"]["profiles"][0].update(slug="basic"), "dsaas:hub.profiles[0].slug"),
    "profile-guarantee-above-limit": (
        lambda v: v["dsaas:hub"]["profiles"][0].update(memoryGuaranteeGib=32),
        "dsaas:hub.profiles[0].memoryGuaranteeGib",
    ),
    "logo-missing": (
        lambda v: v["dsaas:hub"]["branding"].update(logoFile="config/branding/nope.svg"),
        "dsaas:hub.branding.logoFile",
    ),
    "logo-outside-project": (
        lambda v: v["dsaas:hub"]["branding"].update(logoFile="../shared/seed/logo.svg"),
        "dsaas:hub.branding.logoFile",
    ),
    "unknown-database": (lambda v: v["dsaas:hub"]["database"].update(kind="sqlite"), "dsaas:hub.database.kind"),
    "missing-hub-section": (lambda v: v.pop("dsaas:hub"), "dsaas:hub"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_its_key(case: str) -> None:
    edit, expected_key = BAD_INPUTS[case]
    assert expected_key in _problem_keys(_edit("prod", edit))


def test_even_count_is_refused_only_when_ha_is_required() -> None:
    """A lab stack may run 2 control planes; the policy pack's `control-plane-ha` rule stops it instead."""

    def edit(values: dict[str, Any]) -> None:
        values["dsaas:nodes"]["controlPlane"].update(count=2)
        values["dsaas:nodes"]["controlPlane"]["firstAddress"] = "10.20.30.11"

    assert parse_settings(_edit("dev", edit)).nodes.control_plane.count == 2

    def edit_ha(values: dict[str, Any]) -> None:
        edit(values)
        values["dsaas:highAvailability"] = True
        values["dsaas:backup"] = {"enabled": False}  # HA also turns backups on; not what this test is about

    assert _problem_keys(_edit("dev", edit_ha)) == ["dsaas:nodes.controlPlane.count"]


def test_a_production_like_stack_backs_up_unless_it_says_otherwise() -> None:
    """highAvailability turns backups on by default; they need an object store, or a knowing `enabled: false`."""

    def without_store(values: dict[str, Any]) -> None:
        del values["dsaas:backup"]

    assert _problem_keys(_edit("prod", without_store)) == ["dsaas:backup.objectStore"]
    assert not parse_settings(_edit("prod", lambda v: v.update({"dsaas:backup": {"enabled": False}}))).backups_enabled
    assert parse_settings(_edit("prod", lambda v: None)).backups_enabled
    assert not parse_settings(_edit("dev", lambda v: None)).backups_enabled  # a lab stack: off unless asked
    assert _problem_keys(_edit("dev", lambda v: v.update({"dsaas:backup": {"enabled": True}}))) == [
        "dsaas:backup.objectStore"
    ]


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda b: b["objectStore"].update(endpoint="s3.example.org"), "dsaas:backup.objectStore.endpoint"),
        (lambda b: b["objectStore"].update(bucket="Bad_Bucket"), "dsaas:backup.objectStore.bucket"),
        (lambda b: b["objectStore"].update(caFile="config/no-such-ca.pem"), "dsaas:backup.objectStore.caFile"),
        (lambda b: b.update(schedule="daily"), "dsaas:backup.schedule"),
        (lambda b: b.update(retentionDays=0), "dsaas:backup.retentionDays"),
    ],
)
def test_bad_backup_settings_name_their_key(edit: Callable[[dict[str, Any]], Any], key: str) -> None:
    assert _problem_keys(_edit("prod", lambda v: edit(v["dsaas:backup"]))) == [key]


@pytest.mark.parametrize("endpoint", ["http://s3.dc.example.org", "http://10.0.0.5:9000", "HTTP://s3.dc.example.org"])
def test_a_plain_http_object_store_is_refused_by_the_settings(endpoint: str) -> None:
    """Not only by the pack's object-store-over-tls, which a pack configuration can downgrade."""
    with pytest.raises(SettingsError) as caught:
        parse_settings(_edit("prod", lambda v: v["dsaas:backup"]["objectStore"].update(endpoint=endpoint)))
    assert caught.value.keys == ["dsaas:backup.objectStore.endpoint"]
    assert "plain http" in str(caught.value) and "https://" in str(caught.value)


def test_a_restore_plan_must_be_a_file_in_the_project() -> None:
    keys = _problem_keys(_edit("prod", lambda v: v.update({"dsaas:restore": {"plan": "config/restore.nowhere.yaml"}})))
    assert keys == ["dsaas:restore.plan"]


def test_all_problems_are_reported_together() -> None:
    def edit(values: dict[str, Any]) -> None:
        values["dsaas:kubernetesVersion"] = "1.30.0"
        values["dsaas:podCidr"] = "10.96.0.0/16"
        values["dsaas:nodes"]["controlPlane"]["count"] = 4
        values["dsaas:nodes"]["controlPlane"]["addresses"] = ["10.40.0.11", "10.40.0.12", "10.40.0.13", "10.40.0.14"]

    keys = _problem_keys(_edit("prod", edit))
    assert {"dsaas:kubernetesVersion", "dsaas:podCidr", "dsaas:nodes.controlPlane.count"} <= set(keys)


def _registrations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    registered: list[str] = []
    original = RecordingMonitor.RegisterResource

    def spy(self: RecordingMonitor, request: Any) -> Any:
        if request.type != "pulumi:pulumi:Stack":
            registered.append(request.type)
        return original(self, request)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", spy)
    return registered


def test_missing_secret_fails_before_any_resource(
    monkeypatch: pytest.MonkeyPatch, stack_values: Callable[[str], dict[str, Any]]
) -> None:
    registered = _registrations(monkeypatch)
    values = stack_values("prod")
    del values["vsphere:password"]
    with pytest.raises(SettingsError) as caught:
        run_program("prod", values)
    assert caught.value.keys == ["vsphere:password"]
    assert "pulumi config set --secret vsphere:password" in str(caught.value)
    assert registered == []


def test_secret_in_clear_text_is_refused(stack_values: Callable[[str], dict[str, Any]]) -> None:
    values = stack_values("prod")
    values["vsphere:password"] = "hunter2"
    with pytest.raises(SettingsError) as caught:
        run_program("prod", values)
    assert caught.value.keys == ["vsphere:password"]
    assert "clear text" in str(caught.value) and "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("edit", "needed"),
    [
        (
            lambda v: None,
            [
                "dsaas:ontapUsername",
                "dsaas:ontapPassword",
                "dsaas:ldapSearchPassword",
                "dsaas:hubTlsCertificate",
                "dsaas:hubTlsKey",
            ],
        ),
        (lambda v: v["dsaas:hub"].update(database=EXTERNAL_POSTGRES), ["dsaas:hubDatabaseUrl"]),
    ],
)
def test_secrets_the_settings_ask_for_are_required(
    edit: Callable[[dict[str, Any]], None], needed: list[str], stack_values: Callable[[str], dict[str, Any]]
) -> None:
    values = stack_values("prod")
    edit(values)
    for key in needed:
        values.pop(key, None)
    with pytest.raises(SettingsError) as caught:
        run_program("prod", values)
    assert sorted(caught.value.keys) == sorted(needed)
    assert all(f"pulumi config set --secret {key}" in str(caught.value) for key in needed)


def test_dev_needs_no_hub_certificate_or_search_password(stack_values: Callable[[str], dict[str, Any]]) -> None:
    values = stack_values("dev")
    assert not {"dsaas:hubTlsCertificate", "dsaas:ldapSearchPassword"} & set(values)
    run_program("dev", values)  # TLS offloaded, bind DN templates: nothing more is needed


def test_bad_settings_fail_before_any_resource(
    monkeypatch: pytest.MonkeyPatch, stack_values: Callable[[str], dict[str, Any]]
) -> None:
    registered = _registrations(monkeypatch)
    values = stack_values("prod")
    values["dsaas:nodes"]["controlPlane"]["count"] = 2
    with pytest.raises(SettingsError):
        run_program("prod", values)
    assert registered == []


@pytest.mark.parametrize("key", ["dsaas:hubTlsKey", "dsaas:hubTlsCertificate", "dsaas:ldapSearchPassword"])
def test_an_unused_secret_in_clear_text_is_refused_too(key: str, stack_values: Callable[[str], dict[str, Any]]) -> None:
    """dev offloads TLS and binds with templates, so it uses none of these; in clear they still leak."""
    values = stack_values("dev")
    values[key] = "-----BEGIN PRIVATE KEY-----hunter2"
    with pytest.raises(SettingsError) as caught:
        run_program("dev", values)
    assert caught.value.keys == [key]
    message = str(caught.value)
    assert "clear text" in message and f"pulumi config set --secret {key}" in message
    assert "hunter2" not in message


def test_every_secret_key_has_its_command() -> None:
    from config import loader
    from config.settings import SECRET_KEYS

    specs = {spec.key for spec in loader.known_secrets()}
    assert SECRET_KEYS | {"vsphere:password"} <= specs


def _dev_hub(edit: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    def apply(values: dict[str, Any]) -> None:
        edit(values["dsaas:hub"])

    return _edit("dev", apply)


@pytest.mark.parametrize(
    ("edit", "key", "words"),
    [
        (lambda hub: hub.pop("frontProxyCidrs", None), "dsaas:hub.frontProxyCidrs", "plain HTTP"),
        (lambda hub: hub.update(frontProxyCidrs=[]), "dsaas:hub.frontProxyCidrs", "plain HTTP"),
        (lambda hub: hub.update(frontProxyCidrs=["0.0.0.0/0"]), "dsaas:hub.frontProxyCidrs[0]", "whole network"),
        (
            lambda hub: hub.update(frontProxyCidrs=["0.0.0.0/1", "128.0.0.0/1"]),
            "dsaas:hub.frontProxyCidrs",
            "4294967296 addresses (0.0.0.0/0)",
        ),
        (lambda hub: hub.update(frontProxyCidrs=["10.0.0.0/23"]), "dsaas:hub.frontProxyCidrs", "512 addresses"),
        (
            lambda hub: hub.update(frontProxyCidrs=["10.0.0.0/25", "10.0.0.128/25", "10.0.1.0/32"]),
            "dsaas:hub.frontProxyCidrs",
            "257 addresses (10.0.0.0/24, 10.0.1.0/32)",
        ),
        (lambda hub: hub.update(tls="secret"), "dsaas:hub.frontProxyCidrs", "only with dsaas:hub.tls offload"),
    ],
)
def test_offloaded_tls_must_name_the_front_proxy(edit: Callable[[dict[str, Any]], Any], key: str, words: str) -> None:
    """With TLS at a front proxy the hub serves plain HTTP: only that proxy may reach it."""
    with pytest.raises(SettingsError) as caught:
        parse_settings(_dev_hub(edit))
    assert caught.value.keys == [key]
    assert words in str(caught.value) and "Fix:" in str(caught.value)


def test_the_front_proxy_may_be_one_address_or_a_few_networks() -> None:
    settings = parse_settings(_dev_hub(lambda hub: hub.update(frontProxyCidrs=["10.20.0.80", "10.20.1.0/28"])))
    assert [str(c) for c in settings.hub.front_proxy_cidrs or []] == ["10.20.0.80/32", "10.20.1.0/28"]


# --- messages that say what is true and what to do -------------------------------------------------


def _with_control_planes(count: int) -> Callable[[dict[str, Any]], None]:
    def edit(values: dict[str, Any]) -> None:
        values["dsaas:nodes"]["controlPlane"].update(count=count, addresses=[f"10.40.0.{11 + i}" for i in range(count)])

    return edit


@pytest.mark.parametrize(
    ("count", "tolerated", "same_as"), [(2, "0 failures", 1), (4, "1 failure", 3), (6, "2 failures", 5)]
)
def test_an_even_ha_count_states_what_etcd_tolerates(count: int, tolerated: str, same_as: int) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings(_edit("prod", _with_control_planes(count)))
    (problem,) = caught.value.problems
    assert f"{count} members tolerate {tolerated}, the same as {same_as}" in problem.problem
    assert "no more failures than" not in problem.problem


@pytest.mark.parametrize("count", [1, 2, 4, 6])
def test_the_control_plane_fix_suggests_only_counts_the_settings_accept(count: int) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings(_edit("prod", _with_control_planes(count)))
    (problem,) = caught.value.problems
    suggested = [int(n) for n in re.findall(r"\b[0-9]+\b", problem.fix.split("dsaas:highAvailability")[0])]
    assert suggested
    for value in suggested:
        parse_settings(_edit("prod", _with_control_planes(value)))  # following the fix gives no new error


@pytest.mark.parametrize(
    ("edit", "key", "closest"),
    [
        (lambda v: v["dsaas:nodes"]["workers"].update(memoryMB=4096), "dsaas:nodes.workers.memoryMB", "memoryMib"),
        (
            lambda v: v["dsaas:hub"]["ldap"].update(serverAdress=v["dsaas:hub"]["ldap"].pop("serverAddress")),
            "dsaas:hub.ldap.serverAdress",
            "serverAddress",
        ),
        (
            lambda v: v["dsaas:hub"]["culling"].update(timoutMinutes=30),
            "dsaas:hub.culling.timoutMinutes",
            "timeoutMinutes",
        ),
        (lambda v: v["dsaas:hub"]["profiles"][0].update(cpuLimt=2), "dsaas:hub.profiles[0].cpuLimt", "cpuLimit"),
        (lambda v: v["dsaas:storage"]["ontap"].update(dataLIF="10.40.8.20"), "dsaas:storage.ontap.dataLIF", "dataLif"),
        (lambda v: v.update({"dsaas:kubernetsVersion": "1.35.1"}), "dsaas:kubernetsVersion", "dsaas:kubernetesVersion"),
    ],
)
def test_a_misspelt_key_is_answered_with_the_closest_known_key(
    edit: Callable[[dict[str, Any]], None], key: str, closest: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings(_edit("prod", edit))
    (problem,) = [p for p in caught.value.problems if p.key == key]
    assert f"did you mean `{closest}`?" in problem.fix
    assert "e.g. memoryMib" not in problem.fix


@pytest.mark.parametrize(
    ("key", "dn", "said"),
    [
        ("allowedGroups", "cn=hub-users,,dc=example,dc=org", "empty RDN"),
        ("adminGroups", "cn=hub-admins,dc=example,dc=org,", "ends with ','"),
        ("userSearchBase", "ou=people;dc=example;dc=org", "';'"),
        ("searchUser", "cn=,ou=services,dc=example,dc=org", "cn= without a value"),
        ("allowedGroups", "cn=hub-users,ou=groups,dc", "'dc' without '='"),
        ("allowedGroups", "cn=R&D <lab>,dc=example,dc=org", "unescaped '<'"),
        ("allowedGroups", "cn=a\\q,dc=example,dc=org", "backslash"),
    ],
)
def test_a_dn_that_is_not_rfc_4514_is_refused_naming_the_setting(key: str, dn: str, said: str) -> None:
    def edit(values: dict[str, Any]) -> None:
        ldap = values["dsaas:hub"]["ldap"]
        ldap[key] = [dn] if key.endswith("Groups") else dn

    with pytest.raises(SettingsError) as caught:
        parse_settings(_edit("prod", edit))
    expected = f"dsaas:hub.ldap.{key}" + ("[0]" if key.endswith("Groups") else "")
    assert caught.value.keys == [expected]
    assert "is not an RFC 4514 DN" in str(caught.value) and said in str(caught.value)


@pytest.mark.parametrize(
    "dn",
    [
        "CN=Hub Users, OU=Groups,DC=example,DC=org",  # spaces after commas, as AD tools print them
        "cn=Picard\\, Jean-Luc,ou=Clinic,dc=example,dc=org",
        "cn=Picard\\2C Jean-Luc+uid=jlp,dc=example,dc=org",
        "cn=Müller,ou=people,dc=example,dc=org",
        "1.3.6.1.4.1.1466.0=#04024869,dc=example,dc=org",
    ],
)
def test_valid_dns_pass(dn: str) -> None:
    settings = parse_settings(_edit("prod", lambda v: v["dsaas:hub"]["ldap"].update(allowedGroups=[dn])))
    assert settings.hub.ldap.allowed_groups == [dn]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (
            "ldaps://dc1.example.org",
            "  - dsaas:hub.ldap.serverAddress: is a URL (ldaps://dc1.example.org), but this setting is the directory's "
            "host name alone. Fix: set `serverAddress: dc1.example.org` and `tlsStrategy: on_connect` (LDAPS).",
        ),
        (
            "LDAP://dc1.example.org:3268/",
            "  - dsaas:hub.ldap.serverAddress: is a URL (LDAP://dc1.example.org:3268/), but this setting is the "
            "directory's host name alone. Fix: set `serverAddress: dc1.example.org`, `serverPort: 3268` and "
            "`tlsStrategy: before_bind` (StartTLS).",
        ),
        (
            "dc1 example org",
            "  - dsaas:hub.ldap.serverAddress: must be a DNS name like ldap.example.org or an IPv4 address. "
            "Fix: set a value of the expected form.",
        ),
    ],
)
def test_a_url_as_the_directory_address_names_the_settings_it_maps_to(typed: str, expected: str) -> None:
    """Issue 27: `ldaps://dc1...` got pydantic's "Value error, ..." and a fix that did not say what to set."""
    values = _edit("prod", lambda v: v["dsaas:hub"]["ldap"].update(serverAddress=typed))
    with pytest.raises(SettingsError) as caught:
        parse_settings(values)
    assert expected in str(caught.value).splitlines(), str(caught.value)
    assert "Value error" not in str(caught.value)


def test_the_ontap_ca_file_must_be_a_pem_file_in_the_project() -> None:
    """The restore's export step verifies ONTAP's certificate with it (components/ontap_exports.py)."""
    for named in ("config/no-such-ontap-ca.pem", "README.md"):

        def name_it(values: dict[str, Any], ca_file: str = named) -> None:
            values["dsaas:storage"]["ontap"]["caFile"] = ca_file

        assert _problem_keys(_edit("prod", name_it)) == ["dsaas:storage.ontap.caFile"], named
