"""The hub's authenticator without a directory: settings presets, names as people type them, DNs, schema.

Everything that needs a directory is in tests/e2e (real slapd directories of several shapes).
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest
from tornado import web
from traitlets.config import Config

from components import hub_render
from config.ldap import DirectoryKind, GroupMembership
from config.settings import SettingsError, parse_settings
from tests.conftest import settings_values
from tools.preflight.ldap_check import check_login, hub_authenticator_class, hub_module

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


# -- Active Directory's reasons for a refused bind (issue 20 item 4) ------------------------------------
def _bind_result(message: str, code: int = 49) -> dict[str, object]:
    return {"result": code, "description": "invalidCredentials", "message": message}


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("52e", "invalid-credentials"),
        ("530", "not-permitted-now"),
        ("531", "not-permitted-here"),
        ("532", "password-expired"),
        ("533", "disabled"),
        ("701", "account-expired"),
        ("773", "must-change-password"),
        ("775", "locked"),
    ],
)
def test_ad_sub_codes_are_read_from_the_bind_message(code: str, kind: str) -> None:
    message = f"80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data {code}, v1db1"
    assert MODULE["ad_bind_refusal"](_bind_result(message))[0] == kind


def test_a_bind_without_ads_sub_code_has_no_reason() -> None:
    assert MODULE["ad_bind_refusal"](_bind_result("")) is None  # slapd, 389 DS
    assert MODULE["ad_bind_refusal"](_bind_result("data 775", code=50)) is None  # not a refused password
    assert MODULE["ad_bind_refusal"](None) is None
    assert MODULE["ad_bind_refusal"](_bind_result("data 7750"))[0] == "invalid-credentials"  # an unknown code
    assert MODULE["ad_bind_refusal"](_bind_result("metadata 775")) is None


def test_the_login_page_says_where_to_change_an_expired_password() -> None:
    message = MODULE["refusal_page_message"]
    url = "https://password.example.org/change?x=%41"
    assert url in message("password-expired", url) and url in message("must-change-password", url)
    assert "Ctrl+Alt+Del" in message("password-expired", "")
    assert message("invalid-credentials", url) is None  # the hub's own "Invalid username or password"


def test_a_locked_account_is_never_told_to_try_again() -> None:
    text = MODULE["refusal_page_message"]("locked", "https://password.example.org").lower()
    assert "locked" in text and "try again" not in text and "retry" not in text


def test_the_password_change_page_must_be_https() -> None:
    with pytest.raises(SettingsError, match="passwordChangeUrl"):
        parse_settings(_ldap(passwordChangeUrl="http://password.example.org"))
    settings = parse_settings(_ldap(passwordChangeUrl="https://password.example.org"))
    assert hub_render.render_dsaas_ldap_config(settings)["password_change_url"] == "https://password.example.org"


# -- primary groups (issue 20 item 3) ---------------------------------------------------------------
DOMAIN_USERS_SID = bytes.fromhex("010500000000000515000000940e0a8cb9d5dc6016b76c0a01020000")


def test_a_binary_sid_reads_as_windows_writes_it() -> None:
    assert MODULE["sid_string"](DOMAIN_USERS_SID) == "S-1-5-21-2349469332-1625085369-174896918-513"
    with pytest.raises(ValueError):
        MODULE["sid_string"](DOMAIN_USERS_SID[:-1])


def test_the_primary_group_is_the_users_domain_with_the_rid() -> None:
    user = DOMAIN_USERS_SID[:-4] + (1105).to_bytes(4, "little")
    assert MODULE["primary_group_sid"](user, "1102") == "S-1-5-21-2349469332-1625085369-174896918-1102"
    assert MODULE["primary_group_sid"](user, None) is None
    assert MODULE["primary_group_sid"](b"junk", "513") is None


# -- AD account state at refresh (issue 20 item 5) ----------------------------------------------------
NOW = 1_800_000_000.0
NOW_FILETIME = int(NOW * 10_000_000) + 116444736000000000


@pytest.mark.parametrize(
    ("attributes", "kind"),
    [
        ({"userAccountControl": ["512"], "accountExpires": ["9223372036854775807"], "pwdLastSet": ["1"]}, None),
        ({"accountExpires": ["0"]}, None),
        ({"accountExpires": [str(NOW_FILETIME + 10**9)]}, None),
        ({"userAccountControl": ["514"]}, "disabled"),
        ({"accountExpires": [str(NOW_FILETIME - 1)]}, "account-expired"),
        ({"lockoutTime": ["133000000000000000"]}, "locked"),  # no computed attribute: lockoutTime counts
        ({"lockoutTime": ["133000000000000000"], "msDS-User-Account-Control-Computed": ["0"]}, None),  # lapsed
        ({"msDS-User-Account-Control-Computed": ["16"]}, "locked"),
        ({"pwdLastSet": ["0"]}, "must-change-password"),
        ({"msDS-User-Account-Control-Computed": ["8388608"]}, "password-expired"),
        ({"lockoutTime": ["0"], "pwdLastSet": []}, None),
    ],
)
def test_ad_account_state_ends_access(attributes: dict[str, list[str]], kind: str | None) -> None:
    refused = MODULE["ad_account_refusal"](attributes, NOW)
    assert (refused[0] if refused else None) == kind


# -- login names and user principal names (issue 20 item 6) ------------------------------------------
@pytest.mark.parametrize(
    ("typed", "expected"),
    [("7of9", "7of9"), ("Jürgen", "jürgen"), ("ÅSA.berg", "åsa.berg"), ("_x", None), ("-x", None), ("a b", None)],
)
def test_names_beginning_with_a_digit_or_holding_non_ascii_letters(typed: str, expected: str | None) -> None:
    name, why = _authenticator().login_name(typed)
    assert name == expected
    if expected is None:
        assert "begins with a letter or digit" in why and "regex" not in why


@pytest.mark.parametrize(
    ("typed", "upn"),
    [
        ("juergen.mueller@example.org", "juergen.mueller@example.org"),
        (" a@b ", "a@b"),
        ("a@b@c", None),
        ("@b", None),
        ("a@", None),
        ("LAB\\a@b", None),
        ("alice", None),
    ],
)
def test_what_may_be_a_user_principal_name(typed: str, upn: str | None) -> None:
    assert MODULE["principal_name"](typed) == upn


def test_principal_names_are_looked_up_only_in_the_ad_preset_with_a_search_account() -> None:
    assert not _authenticator(active_directory=True).upn_lookup  # no search account
    assert not _authenticator().upn_lookup


def test_ldap_check_blames_no_setting_for_a_name_no_setting_allows() -> None:
    settings = parse_settings(_ldap())
    (finding,) = check_login(settings, "_domain").findings
    assert finding.step == "name" and "begins with a letter or digit" in finding.detail
    assert "domains" not in finding.fix
    (finding,) = check_login(settings, "OTHER\\alice").findings
    assert "domains" in finding.fix


# -- IdM / 389 account state, bind refusals, configured DNs (issue 20 items 8-10) ---------------------
IDM_NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20200101000000Z", "2020-01-01 00:00"),
        ("20260601113000.5Z", "2026-06-01 11:30"),
        ("202606011330+0200", "2026-06-01 11:30"),  # GeneralizedTime without seconds, two hours east of UTC
        ("2026060112-0130", "2026-06-01 13:30"),
        ("not a time", None),
        ("20261341000000Z", None),  # month 13
        (None, None),
    ],
)
def test_generalized_time_as_utc(text: str | None, expected: str | None) -> None:
    moment = MODULE["generalized_time"](text)
    assert (None if moment is None else f"{moment:%Y-%m-%d %H:%M}") == expected


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({}, ""),
        ({"nsAccountLock": ["TRUE"]}, "locked"),
        ({"nsaccountlock": ["true"]}, "locked"),
        ({"nsAccountLock": ["FALSE"], "krbPasswordExpiration": ["20991231000000Z"]}, ""),
        ({"nsAccountLock": []}, ""),
        (
            {"krbPrincipalExpiration": ["20260601115959Z"]},
            "account expired on 2026-06-01 11:59 UTC (krbPrincipalExpiration)",
        ),
        (
            {"krbPasswordExpiration": ["20200101000000Z"]},
            "password expired on 2020-01-01 00:00 UTC (krbPasswordExpiration)",
        ),
        (
            {"passwordExpirationTime": ["19700101000000Z"]},
            "password expired on 1970-01-01 00:00 UTC (passwordExpirationTime)",
        ),
        ({"passwordExpirationTime": ["20260601120001Z"]}, ""),
        ({"krbPasswordExpiration": ["garbage"]}, ""),  # unreadable: the directory's own bind still decides
    ],
)
def test_idm_account_state(attributes: dict[str, Any], expected: str) -> None:
    refused = MODULE["idm_account_refusal"](attributes, IDM_NOW)
    reason = refused[1] if refused else ""
    assert (expected in reason) if expected else refused is None, refused


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"result": 49, "message": ""}, "invalid credentials"),
        (
            {"result": 53, "message": "Account inactivated. Contact system administrator."},
            "the directory refuses this account, locked or inactivated (53 unwillingToPerform: Account inactivated.",
        ),
        (
            {"result": 49, "message": "password expired!", "controls": {"2.16.840.1.113730.3.4.4": {"value": b"0"}}},
            "the password has expired (the directory says: password expired!)",
        ),
        ({"result": 49, "controls": {"1.3.6.1.4.1.42.2.27.8.5.1": {"value": b"\x30\x03\x81\x01\x00"}}}, "has expired"),
        ({"result": 49, "controls": {"1.3.6.1.4.1.42.2.27.8.5.1": {"value": b"\x30\x03\x81\x01\x01"}}}, "locked"),
        ({"result": 49, "controls": {"1.3.6.1.4.1.42.2.27.8.5.1": {"value": b"\x30\x03\x81\x01\x02"}}}, "reset"),
        # a warning only (time before expiration 0x80) and no error: still a wrong password
        (
            {"result": 49, "controls": {"1.3.6.1.4.1.42.2.27.8.5.1": {"value": b"\x30\x05\xa0\x03\x80\x01\x05"}}},
            "invalid",
        ),
    ],
)
def test_bind_refusals_keep_the_directorys_reason(result: dict[str, Any], expected: str) -> None:
    refused = MODULE["bind_refusal"](result)
    assert expected in (refused[1] if refused else "invalid credentials"), refused


def test_the_parent_of_a_dn_template() -> None:
    parent = MODULE["dn_parent"]
    assert parent("uid={username},cn=users,cn=accounts,dc=ipa") == "cn=users,cn=accounts,dc=ipa"
    assert parent("cn=Picard\\, {username},ou=People,dc=x") == "ou=People,dc=x"
    assert parent("dc=org") == ""


def test_configured_dns_name_their_settings() -> None:
    authenticator = _authenticator(admin_groups=["cn=admins,o=x"])
    authenticator.allowed_groups = ["cn=users,o=x", "CN=Admins,O=X"]
    assert authenticator.configured_dns() == [
        ("dsaas:hub.ldap.bindDnTemplates", "o=x"),
        ("dsaas:hub.ldap.allowedGroups", "cn=users,o=x"),
        ("dsaas:hub.ldap.adminGroups", "CN=Admins,O=X"),
    ]
    assert [dn for _, dn in authenticator.configured_dns(bases=False)] == ["cn=users,o=x", "CN=Admins,O=X"]


def test_auto_admits_the_groups_the_users_memberof_lists() -> None:
    """Item 9: where memberOf is flattened (389's MemberOf plugin), it names groups nested members are in."""
    authenticator = _authenticator(admin_groups=["cn=admins,o=x"])
    authenticator.allowed_groups = ["cn=users,o=x"]
    flattened = {"memberOf": ["cn=team,o=x", "CN=Users,O=X"]}
    assert authenticator._memberof_admits([], flattened) == ["cn=users,o=x"]
    assert authenticator._memberof_admits(["cn=users,o=x"], flattened) == ["cn=users,o=x"]
    assert authenticator._memberof_admits([], {"memberOf": ["cn=team,o=x"]}) == []


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
