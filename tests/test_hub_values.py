"""The hub's Helm values, checked by the chart's own schema and by the real JupyterHub classes."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from jupyterhub.app import JupyterHub
from jupyterhub.auth import Authenticator
from kubespawner import KubeSpawner
from ldapauthenticator import LDAPAuthenticator
from tornado import web
from traitlets.config import Config, Configurable

from components import hub_render
from tests.conftest import ROOT_DIR, STACKS, load_settings
from tests.test_hub_database_backup import EXTERNAL_POSTGRES
from tools.lab.procs import run_coroutine
from tools.offline.mockgraph import Graph, run_program, unwrap
from tools.preflight.ldap_check import hub_authenticator_class

CHART_DIR = ROOT_DIR / "tests" / "upstream" / "zero-to-jupyterhub-k8s-4.4.0"
SHARED_CHART_DIR = ROOT_DIR.parent / "shared" / "upstream" / "zero-to-jupyterhub-k8s-4.4.0"


# The classes z2jh 4.4.0's hub image loads `hub.config` into, at the versions it ships.
DSAAS_AUTHENTICATOR = hub_authenticator_class()
CONFIG_CLASSES: dict[str, type[Configurable]] = {
    "JupyterHub": JupyterHub,
    "Authenticator": Authenticator,
    "LDAPAuthenticator": LDAPAuthenticator,
    hub_render.LDAP_AUTHENTICATOR_CLASS: DSAAS_AUTHENTICATOR,
    "KubeSpawner": KubeSpawner,
}


def _merge(base: Any, overlay: Any) -> Any:
    """Helm's merge of user values over chart defaults: maps merge, everything else replaces."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return overlay


@pytest.fixture(scope="module")
def chart_schema() -> dict[str, Any]:
    path = CHART_DIR / "values.schema.yaml"
    if not path.exists():
        pytest.fail(f"the vendored z2jh 4.4.0 chart is missing at {CHART_DIR}")
    schema: dict[str, Any] = yaml.safe_load(path.read_text())
    return schema


@pytest.fixture(scope="module")
def chart_defaults() -> dict[str, Any]:
    defaults: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    return defaults


def test_the_vendored_chart_files_are_the_teams_copy() -> None:
    files = sorted(p.name for p in CHART_DIR.iterdir())
    assert files == ["Chart.yaml", "LICENSE", "values.schema.yaml", "values.yaml"]
    if SHARED_CHART_DIR.is_dir():  # next to the team's checkout; a clean CI clone has only the vendored copy
        for name in files:
            assert (CHART_DIR / name).read_bytes() == (SHARED_CHART_DIR / name).read_bytes(), name


def hub_values(graph: Graph) -> dict[str, Any]:
    """The values the program really hands to the hub release (secrets unwrapped)."""
    values: dict[str, Any] = unwrap(graph.by_name("hub-release").inputs["values"])
    return values


def _kubespawner(config: Config) -> KubeSpawner:
    """A KubeSpawner with `config` loaded through its traits (validation included), no cluster needed."""
    spawner = KubeSpawner.__new__(KubeSpawner)
    spawner._load_config(config)
    return spawner


def _validate(schema: Mapping[str, Any], values: Any) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values)]


@pytest.mark.parametrize("stack", STACKS)
def test_merged_values_validate_against_the_chart_schema(
    stack: str, graphs: dict[str, Graph], chart_schema: dict[str, Any], chart_defaults: dict[str, Any]
) -> None:
    merged = _merge(chart_defaults, hub_values(graphs[stack]))
    assert _validate(chart_schema, merged) == []


def test_an_external_postgres_database_validates_too(
    stack_values: Callable[[str], dict[str, Any]], chart_schema: dict[str, Any], chart_defaults: dict[str, Any]
) -> None:
    values = stack_values("prod")
    values["dsaas:hub"]["database"] = EXTERNAL_POSTGRES
    values["dsaas:hubDatabaseUrl"] = {"secure": "AAABAHBvc3RncmVz"}
    rendered = hub_values(run_program("prod", values))
    assert rendered["hub"]["db"]["type"] == "postgres"
    assert _validate(chart_schema, _merge(chart_defaults, rendered)) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("singleuser", "storage", "dynamic", "storageclass"), "dsaas-homes"),  # misspelt storageClass
        (("proxy", "https", "secrets"), {"name": "hub-tls"}),  # misspelt secret
        (("cull", "timeout"), "one hour"),  # wrong type
    ],
)
def test_the_schema_rejects_a_misspelt_or_mistyped_key(
    path: tuple[str, ...],
    value: Any,
    graphs: dict[str, Graph],
    chart_schema: dict[str, Any],
    chart_defaults: dict[str, Any],
) -> None:
    values = copy.deepcopy(hub_values(graphs["prod"]))
    target = values
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    assert _validate(chart_schema, _merge(chart_defaults, values)) != []


@pytest.mark.parametrize("stack", STACKS)
def test_every_hub_config_key_is_a_real_configurable_trait(stack: str, graphs: dict[str, Graph]) -> None:
    config = hub_values(graphs[stack])["hub"]["config"]
    assert set(config) <= set(CONFIG_CLASSES), f"unknown classes: {set(config) - set(CONFIG_CLASSES)}"
    for class_name, traits in config.items():
        known = set(CONFIG_CLASSES[class_name].class_trait_names(config=True))
        assert set(traits) <= known, f"{class_name} has no traits {sorted(set(traits) - known)}"


@pytest.mark.parametrize("stack", STACKS)
def test_the_real_classes_accept_the_values(stack: str, graphs: dict[str, Graph]) -> None:
    """Loading the config into the classes runs their type checks and validators."""
    config = Config(hub_values(graphs[stack])["hub"]["config"])
    settings = load_settings(stack).hub
    authenticator = DSAAS_AUTHENTICATOR(config=config)
    ldap = config["LDAPAuthenticator"]
    assert authenticator.tls_strategy.name == ldap["tls_strategy"]
    assert authenticator.allowed_groups == ldap["allowed_groups"]
    assert authenticator.admin_users == set()
    assert authenticator.membership == settings.ldap.membership.value
    assert authenticator.admin_groups == settings.ldap.admin_groups
    assert authenticator.auth_refresh_age == settings.ldap.refresh_minutes * 60
    assert authenticator.refresh_pre_spawn is True
    assert authenticator.search_user == settings.ldap.search_user
    spawner = _kubespawner(config)
    assert spawner.slug_scheme == "safe"
    hub = JupyterHub(config=config)
    assert hub.authenticator_class is LDAPAuthenticator  # until hub.extraConfig replaces it
    assert hub.cookie_max_age_days == settings.session_hours / 24


@pytest.mark.parametrize("stack", STACKS)
def test_profiles_override_only_real_kubespawner_traits(stack: str, graphs: dict[str, Graph]) -> None:
    values = hub_values(graphs[stack])
    profiles = values["singleuser"]["profileList"]
    assert [p["display_name"] for p in profiles][:2] == ["Basic", "Data Science"]
    known = set(KubeSpawner.class_trait_names(config=True))
    for profile in profiles:
        override = profile["kubespawner_override"]
        assert set(override) <= known
        spawner = _kubespawner(Config({"KubeSpawner": override}))
        assert spawner.image == override["image"] and ":" in spawner.image.rsplit("/", 1)[-1]
        assert spawner.mem_limit > spawner.mem_guarantee > 0
    assert sum(bool(p.get("default")) for p in profiles) == 1


# Kubernetes resource quantities (binary and decimal suffixes) as the API server reads them.
_QUANTITY_FACTORS = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
}


def _kubernetes_bytes(quantity: str) -> float:
    for suffix in sorted(_QUANTITY_FACTORS, key=len, reverse=True):
        if quantity.endswith(suffix):
            return float(quantity.removesuffix(suffix)) * _QUANTITY_FACTORS[suffix]
    return float(quantity)


@pytest.mark.parametrize("stack", STACKS)
def test_a_user_placeholder_holds_the_room_of_one_default_server(stack: str, graphs: dict[str, Graph]) -> None:
    values = hub_values(graphs[stack])
    # What z2jh hands KubeSpawner (c.KubeSpawner.mem_guarantee = singleuser.memory.guarantee), parsed by it.
    spawner = _kubespawner(Config({"KubeSpawner": {"mem_guarantee": values["singleuser"]["memory"]["guarantee"]}}))
    requests = values["scheduling"]["userPlaceholder"]["resources"]["requests"]
    assert _kubernetes_bytes(requests["memory"]) == spawner.mem_guarantee
    assert requests["cpu"] == values["singleuser"]["cpu"]["guarantee"]
    # The chart's fallback (the same "1G" string read by Kubernetes) would hold 7 % less.
    assert _kubernetes_bytes(values["singleuser"]["memory"]["guarantee"]) < spawner.mem_guarantee


@pytest.mark.parametrize("stack", STACKS)
def test_home_volumes_keep_their_names_across_upgrades(stack: str, graphs: dict[str, Graph]) -> None:
    values = hub_values(graphs[stack])
    storage = values["singleuser"]["storage"]
    assert storage["dynamic"]["pvcNameTemplate"] == "claim-{username}"
    assert storage["dynamic"]["storageClass"] == "dsaas-homes"
    assert storage["capacity"] == f"{load_settings(stack).hub.home_capacity_gib}Gi"
    spawner = _kubespawner(Config({"KubeSpawner": {"pvc_name_template": storage["dynamic"]["pvcNameTemplate"]}}))
    assert spawner.pvc_name_template == "claim-{username}"
    # KubeSpawner's own default names homes per server ({user_server}); pinning avoids that drift.
    assert KubeSpawner.class_traits()["pvc_name_template"].default_value != "claim-{username}"


def _extra_config(values: Mapping[str, Any]) -> Config:
    """`hub.extraConfig` executed as the chart does: in order, in a namespace where `c` is the config."""
    namespace: dict[str, Any] = {"c": Config()}
    for _key, code in sorted(values["hub"]["extraConfig"].items()):
        exec(compile(code, "hub.extraConfig", "exec"), namespace)
    config: Config = namespace["c"]
    return config


def test_admin_group_members_become_admins_and_others_do_not(graphs: dict[str, Graph]) -> None:
    values = hub_values(graphs["prod"])
    authenticator = _extra_config(values).JupyterHub.authenticator_class(config=Config(values["hub"]["config"]))
    admins = load_settings("prod").hub.ldap.admin_groups
    users = load_settings("prod").hub.ldap.allowed_groups

    def verdict(groups: list[str]) -> tuple[bool, bool]:
        decided = authenticator.verdict("alice", "CN=Alice,OU=People,DC=dc,DC=example,DC=org", groups)
        return decided.allowed, decided.admin

    assert verdict([users[0], admins[0]]) == (True, True)
    # AD returns DNs in its own case and spacing; membership still counts.
    assert verdict([admins[0].upper().replace(",", ", ")]) == (True, True)
    assert verdict([users[0]]) == (True, False)
    assert verdict(["CN=Finance,OU=Groups,DC=dc,DC=example,DC=org"]) == (False, False)
    assert verdict([]) == (False, False)


def test_ldap_certificates_are_always_verified(graphs: dict[str, Graph]) -> None:
    for stack in STACKS:
        ldap = hub_values(graphs[stack])["hub"]["config"]["LDAPAuthenticator"]
        # ldap3 verifies nothing by default (CERT_NONE); 2 is ssl.CERT_REQUIRED.
        assert ldap["tls_kwargs"]["validate"] == 2
        assert ldap["tls_kwargs"]["ca_certs_file"]


def test_ca_bundle_and_branding_are_shipped_as_files(tmp_path: Path) -> None:
    settings = load_settings("prod")
    files = hub_render.hub_extra_files(settings)
    assert files["branding-logo"]["mountPath"] == "/usr/local/etc/jupyterhub/branding/logo.svg"
    assert "<svg" in files["branding-logo"]["stringData"]
    assert '{% extends "templates/login.html" %}' in files["branding-login"]["stringData"]
    config = hub_render.render_hub_config(settings, hub_render.HubSecrets("c", "p", "s"))
    assert config["JupyterHub"]["logo_file"] == files["branding-logo"]["mountPath"]
    assert config["JupyterHub"]["template_paths"] == ["/usr/local/etc/jupyterhub/templates"]


def test_binary_logo_goes_as_binary_data(tmp_path: Path) -> None:
    png = tmp_path / "logo.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff")
    entry = hub_render._extra_file(hub_render.BRANDING_DIR / "logo.png", png)
    assert set(entry) == {"mountPath", "binaryData"}


def _extra_config_authenticator(values: Mapping[str, Any]) -> Any:
    return _extra_config(values).JupyterHub.authenticator_class


def test_an_unreachable_directory_is_an_unavailable_page_not_a_refusal_or_a_crash(
    graphs: dict[str, Graph], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The authenticator extra config turns a connection failure into HTTP 503 with a page that says the directory
    is unavailable (not "Invalid username or password", not a server error), and logs why."""
    values = hub_values(graphs["dev"])
    authenticator_class = _extra_config_authenticator(values)
    assert issubclass(authenticator_class, LDAPAuthenticator)
    ldap = {**values["hub"]["config"]["LDAPAuthenticator"], "server_address": "127.0.0.1", "server_port": 1}
    authenticator = authenticator_class(config=Config({"LDAPAuthenticator": ldap}))
    messages: list[str] = []
    # the logger is traitlets' shared one: patched for this test only
    monkeypatch.setattr(authenticator.log, "error", lambda message, *args: messages.append(message % args))
    with pytest.raises(web.HTTPError) as unavailable:
        run_coroutine(authenticator.authenticate(None, {"username": "alice", "password": "secret"}))
    assert unavailable.value.status_code == 503
    assert "cannot be reached" in unavailable.value.jupyterhub_message  # type: ignore[attr-defined]
    assert "127.0.0.1:1" in messages[0] and "LDAPSocketOpenError" in messages[0]
    # Without the extra config, ldapauthenticator itself raises (the hub would show a server error).
    with pytest.raises(Exception, match="socket"):
        run_coroutine(
            LDAPAuthenticator(config=Config({"LDAPAuthenticator": ldap})).authenticate(
                None, {"username": "alice", "password": "secret"}
            )
        )


def test_a_slow_directory_does_not_stall_the_hub(graphs: dict[str, Graph], monkeypatch: pytest.MonkeyPatch) -> None:
    """ldap3 blocks; the hub's event loop must keep serving while a login waits for the directory."""
    values = hub_values(graphs["dev"])
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []

    def hold_connections() -> None:  # accepts, says nothing for a second, then hangs up
        listener.settimeout(5)
        with contextlib.suppress(OSError):
            connection, _ = listener.accept()
            held.append(connection)
            time.sleep(1.0)
            connection.close()

    ldap = {
        **values["hub"]["config"]["LDAPAuthenticator"],
        "server_address": "127.0.0.1",
        "server_port": port,
        "tls_strategy": "insecure",
    }

    async def login_while_ticking(authenticator: Any) -> int:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        with contextlib.suppress(Exception):  # the bare LDAPAuthenticator raises when the server hangs up
            await authenticator.authenticate(None, {"username": "alice", "password": "secret"})
        ticker.cancel()
        return ticks

    def ticks_during_login(authenticator_class: Any) -> int:
        thread = threading.Thread(target=hold_connections)
        thread.start()
        try:
            authenticator = authenticator_class(config=Config({"LDAPAuthenticator": ldap}))
            monkeypatch.setattr(authenticator.log, "error", lambda *args: None)
            return int(run_coroutine(login_while_ticking(authenticator)))
        finally:
            thread.join()

    try:
        assert ticks_during_login(_extra_config_authenticator(values)) > 50
        assert ticks_during_login(LDAPAuthenticator) < 10  # upstream blocks the loop for the whole second
    finally:
        listener.close()


def test_offloaded_tls_admits_only_the_front_proxy(graphs: dict[str, Graph]) -> None:
    """dev offloads TLS: the proxy's plain HTTP admits the front proxy's addresses only (kube-proxy drops the rest)."""
    dev = hub_values(graphs["dev"])
    assert dev["proxy"]["https"] == {"enabled": False}
    expected = [str(cidr) for cidr in load_settings("dev").hub.front_proxy_cidrs or []]
    assert expected and dev["proxy"]["service"]["loadBalancerSourceRanges"] == expected
    prod = hub_values(graphs["prod"])
    assert prod["proxy"]["https"]["enabled"] is True
    assert "loadBalancerSourceRanges" not in prod["proxy"]["service"]


def test_the_release_timeout_covers_the_pre_pull_of_every_image_on_every_worker(graphs: dict[str, Graph]) -> None:
    images = ["quay.io/jupyter/minimal-notebook:x", "quay.io/jupyter/datascience-notebook:x"]
    compressed_gb, unpacked_gb = hub_render.image_gb_per_node(images)
    # 150 workers share the 2.5 Gbit/s the pre-pull is sized for; then each unpacks at 200 MB/s.
    wave = (
        150 * compressed_gb * 8 / hub_render.PREPULL_UPLINK_GBPS + unpacked_gb * 1000 / hub_render.UNPACK_MB_PER_SECOND
    )
    assert hub_render.prepull_seconds(150, images) == pytest.approx(wave)
    assert hub_render.release_timeout_seconds(150, images) >= hub_render.RELEASE_TIMEOUT_MARGIN * wave
    assert hub_render.release_timeout_seconds(500, images) > hub_render.release_timeout_seconds(150, images)
    more_images = [*images, "quay.io/jupyter/pytorch-notebook:x"]
    assert hub_render.release_timeout_seconds(500, more_images) > hub_render.release_timeout_seconds(500, images)
    # A few nodes, or nothing to pull: the chart's own rollout decides (the old fixed 30 minutes).
    assert hub_render.release_timeout_seconds(3, images) == hub_render.RELEASE_TIMEOUT_FLOOR_SECONDS == 1800
    assert hub_render.release_timeout_seconds(500, []) == 1800
    with pytest.raises(ValueError, match="uplink"):
        hub_render.prepull_seconds(3, images, uplink_gbps=0)
    for stack in STACKS:
        settings = load_settings(stack)
        release = next(r for r in graphs[stack].resources if r.name == "hub-release")
        assert release.inputs["timeout"] == hub_render.release_timeout(settings)
