"""The hub's authenticator without a directory: settings presets, names as people type them, DNs, schema.

Everything that needs a directory is in tests/e2e (real slapd directories of several shapes).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tornado import web
from traitlets.config import Config

from components import hub_render
from config.ldap import DirectoryKind, GroupMembership
from config.settings import SettingsError, parse_settings
from tests.conftest import settings_values
from tools.preflight.ldap_check import hub_authenticator_class, hub_module

AUTHENTICATOR = hub_authenticator_class()
MODULE = hub_module()


def _ldap(**overrides: Any) -> dict[str, Any]:
    values = copy.deepcopy(settings_values("prod"))
    ldap = values["dsaas:hub"]["ldap"]
    ldap.update(overrides)
    return values


def test_the_active_directory_preset_needs_only_server_account_base_and_groups() -> None:
    values = copy.deepcopy(settings_values("prod"))
    values["dsaas:hub"]["ldap"] = {
        "directory": "active-directory",
        "serverAddress": "ad.example.org",
        "searchUser": "CN=svc-hub,OU=Service,DC=example,DC=org",
        "userSearchBase": "OU=People,DC=example,DC=org",
        "allowedGroups": ["CN=Hub Users,OU=Groups,DC=example,DC=org"],
    }
    ldap = parse_settings(values).hub.ldap
    assert ldap.directory is DirectoryKind.ACTIVE_DIRECTORY
    assert (ldap.user_attribute, ldap.lookup_dn, ldap.membership) == (
        "sAMAccountName",
        True,
        GroupMembership.NESTED_MEMBER_OF,
    )
    config = hub_render.render_dsaas_ldap_config(parse_settings(values))
    assert config["active_directory"] is True and config["membership"] == "nestedMemberOf"


def test_an_explicit_setting_wins_over_the_preset() -> None:
    ldap = parse_settings(_ldap(membership="member", userAttribute="userPrincipalName")).hub.ldap
    assert (ldap.membership, ldap.user_attribute) == (GroupMembership.MEMBER, "userPrincipalName")


def test_the_generic_default_reads_each_groups_own_class() -> None:
    ldap = parse_settings(settings_values("dev")).hub.ldap
    assert (ldap.directory, ldap.membership, ldap.user_attribute) == (
        DirectoryKind.GENERIC,
        GroupMembership.AUTO,
        "uid",
    )


def test_the_search_password_is_required_whenever_there_is_a_search_account() -> None:
    from config.loader import LDAP_SEARCH_PASSWORD, required_secrets

    values = copy.deepcopy(settings_values("dev"))
    assert LDAP_SEARCH_PASSWORD not in required_secrets(parse_settings(values))
    values["dsaas:hub"]["ldap"]["searchUser"] = "cn=hub-search,ou=services,dc=lab,dc=example,dc=org"
    assert LDAP_SEARCH_PASSWORD in required_secrets(parse_settings(values))


def test_the_membership_choices_are_the_same_on_both_sides() -> None:
    assert tuple(m.value for m in GroupMembership) == MODULE["MEMBERSHIP_STRATEGIES"]
    with pytest.raises(Exception, match="membership 'groupMembership'"):
        AUTHENTICATOR(config=Config({"DsaasLDAPAuthenticator": {"membership": "groupMembership"}}))


def _authenticator(**traits: Any) -> Any:
    return AUTHENTICATOR(
        config=Config(
            {
                "LDAPAuthenticator": {"server_address": "ad.example.org", "bind_dn_template": ["uid={username},o=x"]},
                "DsaasLDAPAuthenticator": traits,
            }
        )
    )


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("alice", "alice"),
        ("  Alice ", "alice"),
        ("EXAMPLE\\Alice", "alice"),
        ("example\\alice", "alice"),
        ("alice@example.org", "alice"),
        ("Alice@EXAMPLE.ORG", "alice"),
        ("jean-luc.picard", "jean-luc.picard"),
        ("OTHER\\alice", None),
        ("alice@other.org", None),
        ("alice@example.org.evil", None),
        ("\\alice", None),
        ("alice@", None),
        ("EXAMPLE\\", None),
        ("alice)(uid=*", None),
        ("*", None),
        ("", None),
    ],
)
def test_names_as_windows_users_type_them(typed: str, expected: str | None) -> None:
    name, why = _authenticator(login_domains=["EXAMPLE", "example.org"]).login_name(typed)
    assert name == expected
    assert (why == "") == (expected is not None)


def test_without_listed_domains_a_domain_is_refused_with_the_setting_named() -> None:
    name, why = _authenticator().login_name("EXAMPLE\\alice")
    assert name is None and "dsaas:hub.ldap.domains" in why and "'example'" in why


def test_dns_compare_as_ldap_compares_them() -> None:
    dn_key = MODULE["dn_key"]
    assert dn_key("CN=Hub Users, OU=Groups,DC=example,DC=org") == dn_key("cn=hub users,ou=groups,dc=example,dc=org")
    assert dn_key("cn=Picard\\, Jean-Luc,ou=Clinic,dc=x") != dn_key("cn=Picard,ou=Clinic,dc=x")


def test_schema_attribute_names_include_aliases() -> None:
    names = MODULE["schema_attribute_names"](
        [
            "( 2.5.4.31 NAME 'member' SUP distinguishedName )",
            "( 2.5.4.3 NAME ( 'cn' 'commonName' ) DESC 'RFC4519: common name(s)' SUP name )",
            "( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' SYNTAX '1.3.6.1.4.1.1466.115.121.1.15' SINGLE-VALUE )",
        ]
    )
    assert names == frozenset({"member", "cn", "commonname", "samaccountname"})


def test_admin_comes_only_from_admin_groups() -> None:
    authenticator = _authenticator(admin_groups=["cn=admins,o=x"])
    authenticator.allowed_groups = ["cn=users,o=x"]
    assert (authenticator.verdict("a", "uid=a,o=x", ["CN=Admins,O=X"]).admin) is True
    assert authenticator.verdict("a", "uid=a,o=x", ["cn=users,o=x"]).admin is False
    assert authenticator.verdict("a", "uid=a,o=x", ["cn=other,o=x"]).allowed is False


def test_a_bad_stack_value_never_reaches_the_hub() -> None:
    with pytest.raises(SettingsError):
        parse_settings(_ldap(membership="memberof"))


def test_an_unavailable_directory_is_a_503_page_not_a_wrong_password() -> None:
    page = MODULE["directory_unavailable_page"]()
    assert isinstance(page, web.HTTPError) and page.status_code == 503
    assert "cannot be reached" in page.jupyterhub_message and "password could not be checked" in page.jupyterhub_message  # type: ignore[attr-defined]


class _NestedGroups:
    """The parents (memberOf) of each group, as a directory would answer; counts the reads per group."""

    def __init__(self, parents: dict[str, list[str]]) -> None:
        self.parents = parents
        self.reads: dict[str, int] = {}

    def read_entry(self, _conn: Any, dn: str, _attributes: Any, **_kwargs: Any) -> dict[str, Any]:
        self.reads[dn] = self.reads.get(dn, 0) + 1
        return {"memberOf": self.parents.get(dn, [])}


USERS, TEAM, FINANCE = "cn=users,o=x", "cn=team,o=x", "cn=finance,o=x"


def _nested(directory: _NestedGroups, reread_seconds: int) -> Any:
    authenticator = _authenticator(membership="nestedMemberOf", directory_reread_seconds=reread_seconds)
    authenticator.allowed_groups = [USERS]
    authenticator._read_entry = directory.read_entry
    return authenticator


def test_a_group_nested_again_counts_at_the_next_login_not_after_the_cache_age() -> None:
    directory = _NestedGroups({TEAM: []})
    authenticator = _nested(directory, reread_seconds=10)
    # Read while team was out of users: cached for directory_cache_seconds (60 s).
    assert authenticator._parents(None, TEAM) == []
    directory.parents[TEAM] = [USERS]  # nested again
    assert authenticator._memberof_groups(None, [TEAM]) == [USERS]
    assert authenticator._memberof_groups(None, [TEAM]) == [USERS]  # and remembered
    assert directory.reads[TEAM] == 2


def test_a_non_member_cannot_make_every_login_reread_the_groups() -> None:
    directory = _NestedGroups({FINANCE: []})
    authenticator = _nested(directory, reread_seconds=3600)
    for _ in range(50):
        assert authenticator._memberof_groups(None, [FINANCE]) == []
    assert directory.reads[FINANCE] == 2  # the first read, and one re-read on the first miss
