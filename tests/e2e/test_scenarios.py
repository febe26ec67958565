"""The platform tried as a user would: the hub configuration our program renders, run by a real
JupyterHub 5.5 with ldapauthenticator 2.0.2 against a real OpenLDAP, driven by headless Chromium.

The hub's configuration is `render_hub_values` for a stack derived from `dev`, with only its LDAP
server pointed at the throwaway directory, rendered by Helm's engine from the z2jh chart and loaded by
the chart's own jupyterhub_config.py (tools/lab/hub.py); the lab replaces KubeSpawner by a local-process
spawner that keeps the profile list and gives each user a persistent `claim-<user>` home.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from config.settings import PROJECT_ROOT
from tests.e2e.conftest import HubFactory
from tools.lab import browser as lab_browser
from tools.lab.directory import DirectoryInfo, LdapDirectory
from tools.lab.hub import HubSession, HubWorkspace, LocalHub
from tools.lab.stack_hub import (
    lab_hub_values,
    load_lab_settings,
    point_at_directory,
    stack_settings_values,
)

pytestmark = pytest.mark.slow
LOGIN_REFUSED = "Invalid username or password"


def start_stack_hub(
    factory: HubFactory,
    directory: DirectoryInfo,
    root: Path,
    *,
    tls_strategy: str = "before_bind",
    lookup_dn: bool = False,
) -> LocalHub:
    """A hub from the dev stack's rendered values, LDAP pointed at `directory`, in its own workspace."""
    settings = load_lab_settings(
        point_at_directory(stack_settings_values("dev"), directory, tls_strategy=tls_strategy, lookup_dn=lookup_dn)
    )
    target = HubWorkspace.create(root)
    values = lab_hub_values(settings, target, ldap_search_password=directory.search_password if lookup_dn else None)
    return factory(values=values, workspace=target)


@pytest.fixture(scope="module")
def hub(
    module_hub_factory: HubFactory, ldap_directory: DirectoryInfo, tmp_path_factory: pytest.TempPathFactory
) -> LocalHub:
    """StartTLS (before_bind) with DN templates, the dev stack's branding and the built-in profiles."""
    return start_stack_hub(module_hub_factory, ldap_directory, tmp_path_factory.mktemp("starttls-hub"))


@pytest.fixture(scope="module")
def ldaps_hub(
    module_hub_factory: HubFactory, ldap_directory: DirectoryInfo, tmp_path_factory: pytest.TempPathFactory
) -> LocalHub:
    """LDAPS (on_connect) with a search account looking the DN up, as with Active Directory."""
    root = tmp_path_factory.mktemp("ldaps-hub")
    return start_stack_hub(module_hub_factory, ldap_directory, root, tls_strategy="on_connect", lookup_dn=True)


def _refused(response: Any) -> None:
    assert response.status == 403, f"expected the normal refusal, got {response.status}"
    assert LOGIN_REFUSED in response.body


def _unavailable(response: Any) -> None:
    """The directory could not be asked: a page that says so (503), not "Invalid username or password"."""
    assert response.status == 503, f"expected the directory-unavailable page, got {response.status}"
    assert "cannot be reached right now" in response.body and LOGIN_REFUSED not in response.body


def _server_started(hub: LocalHub, user: str) -> str:
    response = hub.api("GET", f"/users/{user}")
    assert response.status == 200
    return str(response.json()["servers"][""]["started"])


# 1 ---------------------------------------------------------------------------------------------


def test_1_allowed_user_chooses_a_profile_and_gets_jupyterlab(
    hub: LocalHub, ldap_directory: DirectoryInfo, new_page: Callable[[str], Page]
) -> None:
    alice = ldap_directory.user("alice")
    page = new_page(hub.url)
    lab_browser.login(page, alice.name, alice.password)
    page.wait_for_selector("label.js-profile-label")
    names = [h.strip() for h in page.locator("label.js-profile-label h3").all_inner_texts()]
    assert names == ["Basic", "Data Science"]
    lab_browser.screenshot(page, "1-profile-chooser")
    lab_browser.choose_profile(page, "Data Science")
    lab_browser.start_server(page)
    lab_browser.wait_for_lab(page)
    lab_browser.screenshot(page, "1-jupyterlab")
    server = hub.wait_for_server("alice")
    assert server["user_options"] == {"profile": "datascience"}


# 2 ---------------------------------------------------------------------------------------------


def test_2_logging_in_again_returns_to_the_same_server(
    hub: LocalHub, ldap_directory: DirectoryInfo, new_page: Callable[[str], Page]
) -> None:
    bob = ldap_directory.user("bob")
    page = new_page(hub.url)
    lab_browser.login(page, bob.name, bob.password)
    lab_browser.choose_profile(page, "Basic")
    lab_browser.start_server(page)
    lab_browser.wait_for_lab(page)
    started = _server_started(hub, "bob")
    spawns_before = hub.log_text().count("Spawning ") + hub.log_text().count("spawning ")
    page.goto("/hub/logout")
    page.wait_for_selector("#username_input")
    lab_browser.login(page, bob.name, bob.password)
    lab_browser.wait_for_lab(page)  # straight back to JupyterLab: no profile chooser, no spawn
    lab_browser.screenshot(page, "2-back-to-the-same-server")
    assert _server_started(hub, "bob") == started
    assert hub.log_text().count("Spawning ") + hub.log_text().count("spawning ") == spawns_before


# 3 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password_of"),
    [
        ("erin", "erin"),  # a real account in no allowed group
        ("dave", "dave"),  # in an unrelated group only
        ("alice", None),  # wrong password
        ("alice", ""),  # empty password: never an anonymous bind
        ("alice", "   "),  # blank password
        ("*", "x"),
        ("alice)(uid=*", "x"),
        ("alice\\", "x"),
        ("*)(|(objectClass=*)", "x"),
    ],
)
@pytest.mark.parametrize("which", ["starttls", "ldaps"])
def test_3_the_wrong_people_are_refused_normally(
    which: str,
    username: str,
    password_of: str | None,
    hub: LocalHub,
    ldaps_hub: LocalHub,
    ldap_directory: DirectoryInfo,
) -> None:
    target = hub if which == "starttls" else ldaps_hub
    if password_of is None:
        password = "not-" + ldap_directory.user(username).password
    elif password_of in ldap_directory.users:
        password = ldap_directory.user(password_of).password
    else:
        password = password_of
    session = target.session()
    _refused(session.login(username, password))
    assert not session.logged_in


def test_3_the_refusals_leave_the_reason_in_the_log(hub: LocalHub, ldap_directory: DirectoryInfo) -> None:
    hub.session().login("erin", ldap_directory.user("erin").password)
    hub.session().login("alice", "")
    hub.session().login("alice)(uid=*", "x")
    log = hub.log_text()
    assert "blank password" in log
    assert "Illegal characters in username" in log
    login_statuses = [status for status, _method in re.findall(r"\] (\d{3}) (GET|POST) /hub/login", log)]
    assert login_statuses.count("403") >= 3  # the access log was read: the three refusals are in it
    assert "500" not in login_statuses


# "Alice" as Windows shows it: directories match names case-insensitively, and so must the hub.
@pytest.mark.parametrize("typed", ["alice", "Alice"])
@pytest.mark.parametrize("which", ["starttls", "ldaps"])
def test_3_allowed_users_get_in_with_both_tls_strategies(
    which: str, typed: str, hub: LocalHub, ldaps_hub: LocalHub, ldap_directory: DirectoryInfo
) -> None:
    target = hub if which == "starttls" else ldaps_hub
    session = target.session()
    response = session.login(typed, ldap_directory.user("alice").password)
    assert response.status == 302 and session.logged_in
    assert target.api("GET", "/users/alice").status == 200
    assert typed == "alice" or typed not in {user["name"] for user in target.api("GET", "/users").json()}


# 4 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["starttls", "ldaps"])
def test_4_admin_group_members_see_the_admin_page_and_others_do_not(
    which: str, hub: LocalHub, ldaps_hub: LocalHub, ldap_directory: DirectoryInfo
) -> None:
    target = hub if which == "starttls" else ldaps_hub
    carol = target.session()
    assert carol.login("carol", ldap_directory.user("carol").password).status == 302
    assert carol.get("/hub/admin").status == 200
    assert target.api("GET", "/users/carol").json()["admin"] is True
    alice = target.session()
    alice.login("alice", ldap_directory.user("alice").password)
    assert alice.get("/hub/admin").status == 403
    assert target.api("GET", "/users/alice").json()["admin"] is False


def test_4_admin_page_in_the_browser(
    hub: LocalHub, ldap_directory: DirectoryInfo, new_page: Callable[[str], Page]
) -> None:
    page = new_page(hub.url)
    lab_browser.login(page, "carol", ldap_directory.user("carol").password)
    page.goto("/hub/admin")
    page.wait_for_selector("text=Add Users", timeout=30_000)
    lab_browser.screenshot(page, "4-admin-page")


# 5 ---------------------------------------------------------------------------------------------


def test_5_login_page_shows_the_branding(hub: LocalHub, new_page: Callable[[str], Page]) -> None:
    session = hub.session()
    logo = session.get("/hub/logo")
    assert logo.status == 200
    assert logo.body == (PROJECT_ROOT / "config" / "branding" / "logo.svg").read_text()
    page = new_page(hub.url)
    page.goto("/hub/login")
    assert page.locator("#dsaas-service-name").inner_text() == "Data Science Service"
    assert "Sign in with your institutional account" in page.locator("#dsaas-login-text").inner_text()
    assert page.locator("#username_input").is_visible()  # the stock form is still there
    lab_browser.screenshot(page, "5-branded-login")


# 6 ---------------------------------------------------------------------------------------------


def test_6_a_users_files_survive_a_server_stop_and_restart(hub: LocalHub, ldap_directory: DirectoryInfo) -> None:
    session = hub.session()
    session.login("alice", ldap_directory.user("alice").password)
    hub.api("POST", "/users/alice/server", {"profile": "basic"})
    hub.wait_for_server("alice")
    token = hub.api("POST", "/users/alice/tokens", {"note": "scenario 6", "expires_in": 600}).json()["token"]
    headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
    client = HubSession(hub.url)
    body = json.dumps({"type": "file", "format": "text", "content": "results that must not be lost\n"}).encode()
    written = client.request("PUT", "/user/alice/api/contents/results.txt", data=body, headers=headers)
    assert written.status in (200, 201), written.body
    assert hub.api("DELETE", "/users/alice/server").status in (202, 204)
    hub.wait_for_stopped("alice")
    hub.api("POST", "/users/alice/server", {"profile": "datascience"})
    hub.wait_for_server("alice")
    read = client.request("GET", "/user/alice/api/contents/results.txt?content=1", headers=headers)
    assert read.status == 200 and read.json()["content"] == "results that must not be lost\n"


# 7 ---------------------------------------------------------------------------------------------


@pytest.fixture
def private_directory(ldap_directory_factory: Callable[..., LdapDirectory]) -> Iterator[Callable[..., LdapDirectory]]:
    yield ldap_directory_factory


@pytest.mark.parametrize("tls_strategy", ["before_bind", "on_connect"])
def test_7_directory_down_means_an_unavailable_page_and_a_logged_cause(
    tls_strategy: str, hub_factory: HubFactory, private_directory: Callable[..., LdapDirectory], tmp_path: Path
) -> None:
    directory = private_directory()
    target = start_stack_hub(hub_factory, directory.info, tmp_path / "hub", tls_strategy=tls_strategy)
    directory.stop()
    _unavailable(target.session().login("alice", directory.info.user("alice").password))
    log = target.log_text()
    assert "the LDAP directory 127.0.0.1" in log and "is unusable: LDAPSocketOpenError" in log


@pytest.mark.parametrize("tls_strategy", ["before_bind", "on_connect"])
def test_7_an_untrusted_certificate_means_an_unavailable_page_and_a_logged_cause(
    tls_strategy: str, hub_factory: HubFactory, private_directory: Callable[..., LdapDirectory], tmp_path: Path
) -> None:
    directory = private_directory(trusted_ca=False)
    target = start_stack_hub(hub_factory, directory.info, tmp_path / "hub", tls_strategy=tls_strategy)
    _unavailable(target.session().login("alice", directory.info.user("alice").password))
    log = target.log_text()
    assert "is unusable" in log and "CERTIFICATE_VERIFY_FAILED" in log
