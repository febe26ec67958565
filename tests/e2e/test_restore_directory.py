"""`--from ontap` asks the directory who the hub's users are (issue 21, item 8): against a real slapd, every member
of the allowed and admin groups, as the hub's own authenticator decides it, and nobody else."""

from __future__ import annotations

import pytest

from config.settings import Settings, parse_settings
from tools.dr import restore, sources
from tools.lab.directory import DirectoryInfo
from tools.lab.stack_hub import point_at_directory, stack_settings_values
from tools.preflight.ldap_check import SEARCH_PASSWORD_ENV, check_login

pytestmark = pytest.mark.slow


def lab_settings(directory: DirectoryInfo, lookup_dn: bool, search_account: bool = True) -> Settings:
    values = point_at_directory(
        stack_settings_values("dev"), directory, lookup_dn=lookup_dn, search_account=search_account
    )
    return parse_settings(values)


@pytest.mark.parametrize("lookup_dn", [True, False], ids=["search-base", "dn-templates"])
def test_the_directory_names_every_member_of_the_allowed_groups(
    lookup_dn: bool, ldap_directory: DirectoryInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = lab_settings(ldap_directory, lookup_dn)
    monkeypatch.setenv(SEARCH_PASSWORD_ENV, ldap_directory.search_password)
    users = sources.directory_users(settings)
    # The hub's decision for each seeded person, one login check at a time.
    admitted = {
        name
        for name in ldap_directory.users
        if check_login(settings, name, search_password=ldap_directory.search_password).allowed
    }
    assert set(users) == admitted
    assert {"alice", "carol"} <= set(users) and "erin" not in users
    # Each gets the claim KubeSpawner 7 gives them on this stack: what ONTAP's names are matched against.
    assert restore.claim_name("alice", settings) == "claim-alice"


def test_every_directory_shape_including_nested_groups(
    shaped_directory: DirectoryInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # AD (nested groups, memberOf), uniqueMember, OpenLDAP memberOf and RFC2307 memberUid, as the stack reads them.
    settings = lab_settings(shaped_directory, True)
    monkeypatch.setenv(SEARCH_PASSWORD_ENV, shaped_directory.search_password)
    users = set(sources.directory_users(settings))
    admitted = {
        name
        for name in shaped_directory.users
        if check_login(settings, name, search_password=shaped_directory.search_password).allowed
    }
    assert users == admitted and users


def test_without_the_search_password_the_plan_says_what_to_set(
    ldap_directory: DirectoryInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SEARCH_PASSWORD_ENV, raising=False)
    with pytest.raises(restore.PlanError, match=SEARCH_PASSWORD_ENV):
        sources.directory_users(lab_settings(ldap_directory, True))


def test_bind_dn_templates_without_a_search_account_ask_for_a_users_file(
    ldap_directory: DirectoryInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SEARCH_PASSWORD_ENV, ldap_directory.search_password)
    with pytest.raises(restore.PlanError, match=r"searchUser is not set.*--users FILE"):
        sources.directory_users(lab_settings(ldap_directory, False, search_account=False))


def test_a_wrong_search_password_is_a_plan_error_not_a_traceback(
    ldap_directory: DirectoryInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SEARCH_PASSWORD_ENV, "not-the-password")
    with pytest.raises(restore.PlanError, match="reading the directory failed"):
        sources.directory_users(lab_settings(ldap_directory, True))
