"""The hub against every directory shape found in the field, with the stack's default settings.

Each directory is a real slapd started by the suite (tools/lab/directory.py): RFC 2307 (posixGroup,
memberUid), Active Directory-like (no nis schema, sAMAccountName, users in several OUs, groupOfNames,
a nested group, memberOf), groupOfUniqueNames, and stock OpenLDAP (groupOfNames with the memberof
overlay). The hub is the program's rendered configuration for the dev stack with only its site data
(server, DNs, groups, search account) pointed at the directory; the membership setting is left at
its default unless a test is about another one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.e2e.conftest import HubFactory, LdapDirectoryFactory
from tools.lab import browser as lab_browser
from tools.lab.directory import DirectoryInfo, DirectoryShape
from tools.lab.hub import HubSession, HubWorkspace, LocalHub
from tools.lab.stack_hub import lab_hub_values, load_lab_settings, point_at_directory, search_password_for
from tools.lab.stack_hub import stack_settings_values as stack_values

pytestmark = pytest.mark.slow
REFRESH_SECONDS = 3


def start_hub(
    factory: HubFactory,
    directory: DirectoryInfo,
    root: Path,
    *,
    stack: str = "dev",
    lookup_dn: bool | None = True,
    membership: str | None = None,
    refresh_seconds: int | None = None,
) -> LocalHub:
    """The stack's rendered hub, site data pointed at `directory`; a short refresh age where a test waits for it."""
    settings = load_lab_settings(
        point_at_directory(stack_values(stack), directory, lookup_dn=lookup_dn, membership=membership)
    )
    workspace = HubWorkspace.create(root)
    values = lab_hub_values(settings, workspace, ldap_search_password=search_password_for(settings, directory))
    if refresh_seconds is not None:
        values["hub"]["config"]["Authenticator"]["auth_refresh_age"] = refresh_seconds
    return factory(values=values, workspace=workspace)


def logged_in(hub: LocalHub, login: str, password: str) -> HubSession:
    session = hub.session()
    response = session.login(login, password)
    assert response.status == 302 and session.logged_in, f"{login}: {response.status}"
    return session


def still_in(session: HubSession) -> bool:
    """Does the hub still accept this browser's session?"""
    return session.get("/hub/api/user").status == 200


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


@pytest.fixture(scope="module")
def shape_hubs(
    module_hub_factory: HubFactory,
    ldap_directories: dict[DirectoryShape, DirectoryInfo],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[DirectoryShape, LocalHub]:
    """One hub per shape, with the dev stack's default membership (auto) and a search account."""
    return {
        shape: start_hub(module_hub_factory, directory, tmp_path_factory.mktemp(f"hub-{shape}"))
        for shape, directory in ldap_directories.items()
    }


def test_a_member_logs_in_in_the_browser_and_gets_a_server(
    shaped_directory: DirectoryInfo, shape_hubs: dict[DirectoryShape, LocalHub], new_page: Callable[[str], Page]
) -> None:
    hub = shape_hubs[shaped_directory.shape]
    picard = shaped_directory.user("jean-luc.picard")  # in AD its DN has an escaped comma
    page = new_page(hub.url)
    lab_browser.login(page, picard.login, picard.password)
    lab_browser.choose_profile(page, "Basic")
    lab_browser.start_server(page)
    lab_browser.wait_for_lab(page)
    assert hub.wait_for_server(picard.login)["user_options"] == {"profile": "basic"}


def test_default_membership_decides_right_for_everyone(
    shaped_directory: DirectoryInfo, shape_hubs: dict[DirectoryShape, LocalHub]
) -> None:
    hub = shape_hubs[shaped_directory.shape]
    for login, user in shaped_directory.users.items():
        session = hub.session()
        response = session.login(login, user.password)
        member = shaped_directory.is_member(login, shaped_directory.users_group_dn, nested=False)
        admin = shaped_directory.is_member(login, shaped_directory.admins_group_dn, nested=False)
        assert (response.status == 302) is (member or admin), f"{login}: HTTP {response.status}"
        if member or admin:
            assert (session.get("/hub/admin").status == 200) is admin, login
            assert hub.api("GET", f"/users/{login}").json()["admin"] is admin
    log = hub.log_text()
    assert "configuration error" not in log and "is unusable" not in log


def test_nested_group_members_get_in_where_the_strategy_follows_nesting(
    ldap_directories: dict[DirectoryShape, DirectoryInfo], hub_factory: HubFactory, tmp_path: Path
) -> None:
    directory = ldap_directories[DirectoryShape.ACTIVE_DIRECTORY]
    frank = directory.user("frank")
    assert directory.is_member("frank", directory.users_group_dn, nested=True)
    nested = start_hub(hub_factory, directory, tmp_path / "nested", stack="prod")  # the AD preset
    assert nested.session().login(frank.login, frank.password).status == 302
    direct = start_hub(hub_factory, directory, tmp_path / "direct", stack="prod", membership="memberOf")
    assert direct.session().login(frank.login, frank.password).status == 403
    assert "not a member of any allowed group" in direct.log_text()


def test_an_active_directory_without_memberuid_refuses_nobody_with_the_defaults(
    ldap_directories: dict[DirectoryShape, DirectoryInfo], hub_factory: HubFactory, tmp_path: Path
) -> None:
    """The field report: groupOfNames, no nis schema, a search account. Stock filters named memberUid."""
    directory = ldap_directories[DirectoryShape.ACTIVE_DIRECTORY]
    hub = start_hub(hub_factory, directory, tmp_path / "ad", stack="prod", membership=None)
    alice = directory.user("alice")
    session = logged_in(hub, "Alice", alice.password)
    assert still_in(session)
    assert "LDAPAttributeError" not in hub.log_text()


def test_a_membership_the_directory_lacks_is_logged_as_a_configuration_error(
    ldap_directories: dict[DirectoryShape, DirectoryInfo], hub_factory: HubFactory, tmp_path: Path
) -> None:
    directory = ldap_directories[DirectoryShape.ACTIVE_DIRECTORY]
    hub = start_hub(hub_factory, directory, tmp_path / "ad", stack="prod", membership="memberUid")
    response = hub.session().login("alice", directory.user("alice").password)
    assert response.status == 403
    log = hub.log_text()
    assert "configuration error" in log and "dsaas:hub.ldap.membership" in log and "memberUid" in log
    assert "is unusable" not in log  # the directory is fine; the setting is not


@pytest.mark.parametrize("shape", [DirectoryShape.ACTIVE_DIRECTORY, DirectoryShape.RFC2307])
def test_removal_from_the_group_ends_access_within_the_refresh_age(
    shape: DirectoryShape, ldap_directory_factory: LdapDirectoryFactory, hub_factory: HubFactory, tmp_path: Path
) -> None:
    directory = ldap_directory_factory(shape=shape)
    info = directory.info
    hub = start_hub(hub_factory, info, tmp_path / "hub", refresh_seconds=REFRESH_SECONDS)
    bob = logged_in(hub, "bob", info.user("bob").password)
    carol = logged_in(hub, "carol", info.user("carol").password)
    assert carol.get("/hub/admin").status == 200
    directory.remove_member(info.users_group_dn, "bob")
    directory.add_member(info.users_group_dn, "carol")  # still a user, no longer an admin
    directory.add_member(info.admins_group_dn, "erin")  # groupOfNames may not be left empty
    directory.remove_member(info.admins_group_dn, "carol")
    assert wait_for(lambda: not still_in(bob), REFRESH_SECONDS * 3), "bob kept his session"
    assert bob.get("/hub/home").status == 302  # back to the login page
    assert bob.login("bob", info.user("bob").password).status == 403
    assert wait_for(lambda: carol.get("/hub/admin").status == 403, REFRESH_SECONDS * 3), "carol kept admin"
    assert still_in(carol)
    assert hub.api("GET", "/users/carol").json()["admin"] is False
    assert "access of 'bob' ended" in hub.log_text()


def test_a_disabled_ad_account_loses_access(
    ldap_directory_factory: LdapDirectoryFactory, hub_factory: HubFactory, tmp_path: Path
) -> None:
    directory = ldap_directory_factory(shape=DirectoryShape.ACTIVE_DIRECTORY)
    hub = start_hub(hub_factory, directory.info, tmp_path / "hub", stack="prod", refresh_seconds=REFRESH_SECONDS)
    alice = logged_in(hub, "alice", directory.info.user("alice").password)
    directory.set_account_disabled("alice", True)
    assert wait_for(lambda: not still_in(alice), REFRESH_SECONDS * 3)
    assert "the account is disabled" in hub.log_text()


def test_without_a_search_account_a_login_lasts_one_refresh_age(
    ldap_directories: dict[DirectoryShape, DirectoryInfo], hub_factory: HubFactory, tmp_path: Path
) -> None:
    """DN templates only: nothing can be re-read without the user's password, so the next login re-checks."""
    directory = ldap_directories[DirectoryShape.RFC2307]
    hub = start_hub(hub_factory, directory, tmp_path / "hub", lookup_dn=False, refresh_seconds=REFRESH_SECONDS)
    alice = logged_in(hub, "alice", directory.user("alice").password)
    assert still_in(alice)
    assert wait_for(lambda: not still_in(alice), REFRESH_SECONDS * 3)
    assert "must log in again" in hub.log_text()
    assert alice.login("alice", directory.user("alice").password).status == 302 and still_in(alice)
