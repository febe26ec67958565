"""The lab harness itself: a real slapd with TLS and ACLs, a real JupyterHub with LDAP login, a real browser."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ldap3
import pytest
from ldap3.core.exceptions import LDAPSocketOpenError, LDAPStartTLSError
from playwright.sync_api import Page

from tests.e2e.conftest import HubFactory
from tools.lab import browser as lab_browser
from tools.lab.configs import ldap_hub_config
from tools.lab.directory import DirectoryInfo, LdapDirectory
from tools.lab.hub import HubWorkspace, map_paths

SMALL_IMAGE = "quay.io/jupyter/scipy-notebook:2025-01-01"
LARGE_IMAGE = "quay.io/jupyter/pyspark-notebook:2025-01-01"
PROFILES: list[dict[str, Any]] = [
    {
        "display_name": "Small (2 CPU, 4 GB)",
        "slug": "small",
        "description": "Everyday notebooks",
        "default": True,
        "kubespawner_override": {
            "image": "quay.io/jupyter/scipy-notebook:2025-01-01",
            "cpu_limit": 2,
            "mem_limit": "4G",
        },
    },
    {
        "display_name": "Large (8 CPU, 32 GB)",
        "slug": "large",
        "description": "Big data",
        "kubespawner_override": {
            "image": "quay.io/jupyter/pyspark-notebook:2025-01-01",
            "cpu_limit": 8,
            "mem_limit": "32G",
        },
    },
]


def tls(directory: DirectoryInfo) -> ldap3.Tls:
    return ldap3.Tls(ca_certs_file=str(directory.ca_cert_path), validate=ssl.CERT_REQUIRED)


def starttls_connection(
    directory: DirectoryInfo, user: str | None = None, password: str | None = None
) -> ldap3.Connection:
    server = ldap3.Server(directory.host, port=directory.ldap_port, tls=tls(directory), get_info=ldap3.NONE)
    return ldap3.Connection(server, user=user, password=password, auto_bind=ldap3.AUTO_BIND_TLS_BEFORE_BIND)


# -- the directory -----------------------------------------------------------------------------
def test_starttls_verifies_against_the_handed_out_ca(ldap_directory: DirectoryInfo) -> None:
    conn = starttls_connection(ldap_directory, ldap_directory.search_bind_dn, ldap_directory.search_password)
    assert conn.tls_started
    assert conn.extend.standard.who_am_i() == f"dn:{ldap_directory.search_bind_dn}"
    conn.unbind()


def test_ldaps_verifies_against_the_handed_out_ca(ldap_directory: DirectoryInfo) -> None:
    server = ldap3.Server(
        ldap_directory.host, port=ldap_directory.ldaps_port, use_ssl=True, tls=tls(ldap_directory), get_info=ldap3.NONE
    )
    alice = ldap_directory.user("alice")
    conn = ldap3.Connection(server, user=alice.dn, password=alice.password, auto_bind=ldap3.AUTO_BIND_NO_TLS)
    assert conn.extend.standard.who_am_i() == f"dn:{alice.dn}"
    conn.unbind()


def test_anonymous_bind_reads_nothing(ldap_directory: DirectoryInfo) -> None:
    conn = starttls_connection(ldap_directory)
    conn.search(ldap_directory.base_dn, "(objectClass=*)", attributes=["*"])
    assert conn.entries == []
    conn.search(ldap_directory.people_base, "(uid=alice)", attributes=["*"])
    assert conn.entries == []
    conn.unbind()


def test_wrong_password_is_refused(ldap_directory: DirectoryInfo) -> None:
    with pytest.raises(ldap3.core.exceptions.LDAPBindError):
        starttls_connection(ldap_directory, ldap_directory.user("alice").dn, "not-her-password")


def test_search_account_finds_alice_and_her_groups(ldap_directory: DirectoryInfo) -> None:
    alice = ldap_directory.user("alice")
    conn = starttls_connection(ldap_directory, ldap_directory.search_bind_dn, ldap_directory.search_password)
    conn.search(ldap_directory.people_base, "(uid=alice)", attributes=["uid", "cn", "mail", "memberOf", "userPassword"])
    [entry] = conn.entries
    assert entry.entry_dn == alice.dn
    assert entry.mail.value == "alice@example.org"
    assert list(entry.memberOf.values) == [ldap_directory.users_group_dn]
    assert "userPassword" not in entry.entry_attributes_as_dict or not entry.userPassword.values
    # ldapauthenticator 2.0.2's default group_search_filter, against each group as the base
    for group, expected in [(ldap_directory.users_group_dn, True), (ldap_directory.admins_group_dn, False)]:
        conn.search(group, f"(|(member={alice.dn})(uniqueMember={alice.dn})(memberUid=alice))", search_scope=ldap3.BASE)
        assert bool(conn.entries) is expected, group
    conn.search(ldap_directory.groups_base, "(objectClass=groupOfNames)", attributes=["cn"])
    assert {e.entry_dn for e in conn.entries} == {
        ldap_directory.users_group_dn,
        ldap_directory.admins_group_dn,
        ldap_directory.other_group_dn,
    }
    conn.unbind()


def test_seeded_memberships(ldap_directory: DirectoryInfo) -> None:
    groups = {name: user.groups for name, user in ldap_directory.users.items()}
    assert groups == {
        "alice": (ldap_directory.users_group_dn,),
        "bob": (ldap_directory.users_group_dn,),
        "carol": (ldap_directory.admins_group_dn,),
        "dave": (ldap_directory.other_group_dn,),
        "erin": (),
    }


def test_foreign_ca_and_stopped_directory_are_refused(ldap_directory_factory: Callable[..., LdapDirectory]) -> None:
    untrusted = ldap_directory_factory(trusted_ca=False).info
    with pytest.raises((LDAPSocketOpenError, LDAPStartTLSError)):
        starttls_connection(untrusted, untrusted.search_bind_dn, untrusted.search_password)
    # The same directory without verification answers: only the certificate is wrong.
    server = ldap3.Server(untrusted.host, port=untrusted.ldap_port, get_info=ldap3.NONE)
    ldap3.Connection(
        server, untrusted.search_bind_dn, untrusted.search_password, auto_bind=ldap3.AUTO_BIND_NO_TLS
    ).unbind()

    directory = ldap_directory_factory()
    info = directory.info
    starttls_connection(info, info.search_bind_dn, info.search_password).unbind()
    directory.stop()
    with pytest.raises(LDAPSocketOpenError):
        starttls_connection(info, info.search_bind_dn, info.search_password)
    directory.start()  # back on the same port with the same data
    starttls_connection(info, info.search_bind_dn, info.search_password).unbind()


# -- the hub -----------------------------------------------------------------------------------
TEMPLATES = "/usr/local/etc/jupyterhub/templates"
LOGIN_TEMPLATE = """{% extends "templates/login.html" %}
{% block login_container %}<p id="lab-banner">{{ lab_banner }}</p>{{ super() }}{% endblock %}
"""


@pytest.mark.slow
def test_hub_lets_group_members_in_over_ldap(
    ldap_directory: DirectoryInfo, hub_workspace: HubWorkspace, hub_factory: HubFactory
) -> None:
    # hub.config + hub.extraConfig + hub.extraFiles, with the in-container template path mapped to the workspace
    hub_config = ldap_hub_config(ldap_directory)
    hub_config["JupyterHub"]["template_paths"] = [TEMPLATES]
    hub = hub_factory(
        map_paths(hub_config, hub_workspace.path_map, [TEMPLATES]),
        extra_config={"20-banner": "c.JupyterHub.template_vars = {'lab_banner': 'Welcome to DSaaS'}"},
        extra_files={f"{TEMPLATES}/login.html": LOGIN_TEMPLATE},
    )
    assert '<p id="lab-banner">Welcome to DSaaS</p>' in hub.session().get("/hub/login").body
    for name, allowed in [("alice", True), ("bob", True), ("erin", False), ("dave", False)]:
        session = hub.session()
        response = session.login(name, ldap_directory.user(name).password)
        if allowed:
            assert response.status == 302, (name, response.status)
            assert session.logged_in, name
        else:
            assert response.status == 403, (name, response.status)
            assert not session.logged_in, name
    refused = hub.session()
    assert refused.login("alice", "wrong").status == 403
    users = {u["name"] for u in hub.api("GET", "/users").json()}
    assert users == {"alice", "bob"}
    log = hub.log_text()
    assert "Loading pass-through config section hub.config.LDAPAuthenticator" in log
    assert "Loading extra config: 20-banner" in log


@pytest.mark.slow
def test_hub_log_names_an_untrusted_directory_certificate(
    ldap_directory_factory: Callable[..., LdapDirectory], hub_factory: HubFactory
) -> None:
    untrusted = ldap_directory_factory(trusted_ca=False).info
    hub = hub_factory(ldap_hub_config(untrusted))
    assert hub.session().login("alice", untrusted.user("alice").password).status == 500
    assert "CERTIFICATE_VERIFY_FAILED" in hub.log_text()


@pytest.mark.slow
def test_browser_login_profile_choice_and_jupyterlab(
    ldap_directory: DirectoryInfo, hub_factory: HubFactory, new_page: Callable[[str], Page]
) -> None:
    hub = hub_factory(ldap_hub_config(ldap_directory), profile_list=PROFILES)
    page = new_page(hub.url)
    lab_browser.login(page, "alice", ldap_directory.user("alice").password)
    assert page.url.endswith("/hub/spawn")
    lab_browser.choose_profile(page, "Large (8 CPU, 32 GB)")
    lab_browser.screenshot(page, "harness-profile-form")
    lab_browser.start_server(page)
    lab_browser.wait_for_lab(page)
    shot = lab_browser.screenshot(page, "harness-jupyterlab")
    assert shot.stat().st_size > 0

    server = hub.wait_for_server("alice")
    assert server["user_options"] == {"profile": "large"}
    home = hub.workspace.home_of("alice")
    assert home.is_dir()
    # The single-user server process runs in the claim-alice home with the profile in its environment.
    pid = server["state"]["pid"]
    environ = dict(item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item)
    assert environ["HOME"] == str(home)
    assert environ["LAB_PROFILE_SLUG"] == "large"
    assert json.loads(environ["LAB_PROFILE_OVERRIDE"])["image"] == LARGE_IMAGE
    assert Path(f"/proc/{pid}/cwd").resolve() == home.resolve()

    # The home is the per-user volume: it survives stopping the server and starting it with another profile.
    (home / "notes.txt").write_text("kept")
    assert hub.api("DELETE", "/users/alice/server").status in (202, 204)
    hub.wait_for_stopped("alice")
    assert hub.api("POST", "/users/alice/server", {"profile": "small"}).status in (201, 202)
    assert hub.wait_for_server("alice")["user_options"] == {"profile": "small"}
    assert (home / "notes.txt").read_text() == "kept"
