"""The hub's authenticator and `ldap_check` against a real 389 Directory Server laid out as FreeIPA lays it out.

The server is `tools/lab/ds389.py` (session fixture `ds389`): users under cn=users,cn=accounts, groups as
groupOfNames + nestedGroup + posixGroup nested two levels, memberOf flattened by 389's MemberOf plugin, a
search account under cn=sysaccounts,cn=etc, anonymous reads off, a locked account (nsAccountLock), an
expired password (passwordExpirationTime, which 389 enforces) and IdM's own expiry attributes
(krbPasswordExpiration, krbPrincipalExpiration, which only IdM's plugins and KDC enforce).

The authenticator is the one the hub ships, configured by the values the program renders for the dev
stack with its site data pointed at the lab server: StartTLS verified against the lab CA (LDAPS where a
test says so).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import ldap3
import pytest

from config.settings import Settings, parse_settings
from tests.e2e.conftest import HubFactory
from tools.lab.ds389 import (
    DEFAULT_SUFFIX,
    SUBGROUPS,
    AccountState,
    Ds389Directory,
    Ds389Info,
    build_info,
    point_at_ds389,
    render_dse,
    seed_entries,
    transitive,
)
from tools.lab.hub import HubWorkspace
from tools.lab.stack_hub import lab_hub_values, stack_settings_values
from tools.preflight.ldap_check import authenticator_for, check_login, render_report

pytestmark = pytest.mark.slow


def settings_for(info: Ds389Info, *, lookup_dn: bool = True, **overrides: Any) -> Settings:
    """The dev stack's hub settings with the site data replaced by the lab 389 server's."""
    return parse_settings(values_for(info, lookup_dn=lookup_dn, **overrides))


def values_for(
    info: Ds389Info, *, lookup_dn: bool = True, tls_strategy: str = "before_bind", **overrides: Any
) -> dict[str, Any]:
    return point_at_ds389(
        stack_settings_values("dev"), info, lookup_dn=lookup_dn, tls_strategy=tls_strategy, **overrides
    )


def authenticator(info: Ds389Info, **overrides: Any) -> Any:
    return authenticator_for(settings_for(info, **overrides), info.search_password, None)


def test_the_lab_server_is_shaped_as_idm(ds389: Ds389Directory) -> None:
    """The peer itself: flattened memberOf two levels deep, anonymous reads off, and 389's own refusals."""
    info = ds389.info
    server = ldap3.Server(info.host, port=info.ldap_port, get_info=ldap3.NONE)
    search = ldap3.Connection(server, info.search_bind_dn, info.search_password, auto_bind=True)
    search.search(info.people_base, "(uid=gina)", attributes=["memberOf"])
    assert {str(v).lower() for v in search.response[0]["attributes"]["memberOf"]} == {
        g.lower() for g in info.user("gina").nested_groups
    }
    assert len(info.user("gina").nested_groups) == 3  # lab-interns ⊂ research-team ⊂ dsaas-hub-users
    search.search(info.users_group_dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["objectClass"])
    classes = {str(c).lower() for c in search.response[0]["attributes"]["objectClass"]}
    assert {"groupofnames", "nestedgroup", "posixgroup"} <= classes
    search.unbind()

    anonymous = ldap3.Connection(server, raise_exceptions=False)
    anonymous.open()
    anonymous.search(info.base_dn, "(uid=alice)")
    assert anonymous.result["result"] == 48 and not anonymous.response  # inappropriateAuthentication

    locked = ldap3.Connection(server, raise_exceptions=False)
    locked.open()
    assert not locked.rebind(info.user("lou").dn, info.user("lou").password)
    assert locked.result["result"] == 53 and "inactivated" in locked.result["message"]
    expired = ldap3.Connection(server, raise_exceptions=False)
    expired.open()
    assert not expired.rebind(info.user("pete").dn, info.user("pete").password)
    assert expired.result["result"] == 49 and "2.16.840.1.113730.3.4.4" in (expired.result.get("controls") or {})
    # IdM's Kerberos expiry is not enforced by 389 itself: only a client that reads it can tell
    krb = ldap3.Connection(server, raise_exceptions=False)
    krb.open()
    assert krb.rebind(info.user("kate").dn, info.user("kate").password)
    assert info.user("kate").state is AccountState.KRB_PASSWORD_EXPIRED
    for conn in (anonymous, locked, expired, krb):
        conn.unbind()
    print(f"\n389 timings: {ds389.timings}")


ALLOWED = {"alice": False, "carol": True, "frank": False, "gina": False}  # login → admin
NOT_MEMBERS = ("dave", "erin")
# login → what the refusal must say (lower-case fragment), at login and at refresh
UNUSABLE = {
    "lou": "locked",
    "pete": "password expired",
    "kate": "password expired",
    "paul": "account expired",
}


@pytest.mark.parametrize(
    ("lookup_dn", "tls_strategy"),
    [(True, "before_bind"), (False, "on_connect")],
    ids=["lookup-starttls", "template-ldaps"],
)
def test_logins_refuse_locked_and_expired_idm_accounts(
    ds389: Ds389Directory, lookup_dn: bool, tls_strategy: str
) -> None:
    """Item 8: locked and expired accounts are refused with their reason, whether the DN is looked up or built
    from a template (then 389's own bind refusal is the reason); members and non-members as before."""
    info = ds389.info
    auth = authenticator(info, lookup_dn=lookup_dn, tls_strategy=tls_strategy)
    assert auth.membership == "auto"
    try:
        for login, admin in ALLOWED.items():
            if login in NESTED:
                continue  # item 9, below
            verdict = auth.login(login, info.user(login).password)
            assert (verdict.allowed, verdict.admin, verdict.reason) == (True, admin, ""), (login, verdict)
        for login in NOT_MEMBERS:
            verdict = auth.login(login, info.user(login).password)
            assert verdict.user_dn is not None and not verdict.allowed and not verdict.reason, (login, verdict)
        for login, why in UNUSABLE.items():
            verdict = auth.login(login, info.user(login).password)
            assert not verdict.allowed and verdict.reason, (login, verdict)
            if login == "lou" and not lookup_dn:
                # no entry read before the bind: 389's own refusal (53 "Account inactivated") is the reason
                assert "account inactivated" in verdict.reason.lower(), verdict
            elif login == "pete" and not lookup_dn:
                assert "password has expired" in verdict.reason, verdict  # 49 + the password-expired control
            else:
                assert why in verdict.reason.lower(), (login, verdict)
        assert auth.login("alice", "wrong-password").reason == "invalid credentials"
    finally:
        auth.close_connections()


NESTED = ("frank", "gina")  # research-team (one level below dsaas-hub-users), lab-interns (two levels)


@pytest.mark.parametrize("lookup_dn", [True, False], ids=["lookup", "template"])
def test_the_default_membership_admits_nested_members_of_an_idm_tree(ds389: Ds389Directory, lookup_dn: bool) -> None:
    """Item 9: `auto` (the default) lets in every member the directory counts, at login, refresh and in
    ldap_check, where the MemberOf plugin flattens memberOf; a non-member stays out."""
    info = ds389.info
    settings = settings_for(info, lookup_dn=lookup_dn)
    assert settings.hub.ldap.membership.value == "auto"
    auth = authenticator_for(settings, info.search_password, None)
    try:
        for login in NESTED:
            user = info.user(login)
            verdict = auth.login(login, user.password)
            assert verdict.allowed and verdict.groups == [info.users_group_dn], (login, verdict)
            assert auth.recheck(login, user.dn).allowed, login
            report = check_login(settings, login, search_password=info.search_password)
            assert report.allowed is True, render_report(report, settings)
        assert not auth.login("erin", info.user("erin").password).allowed
        report = check_login(settings, "erin", search_password=info.search_password)
        assert report.allowed is False and not report.broken, render_report(report, settings)
    finally:
        auth.close_connections()


def test_refresh_ends_sessions_of_locked_and_expired_accounts(ds389: Ds389Directory) -> None:
    """Item 8 at refresh: the re-check reads the lock and expiry attributes, not only uid and memberOf."""
    info = ds389.info
    auth = authenticator(info)
    try:
        for login, why in UNUSABLE.items():
            verdict = auth.recheck(login, info.user(login).dn)
            assert not verdict.allowed and why in verdict.reason.lower(), (login, verdict)
        # a live lock, as `ipa user-disable` sets it, ends a running session at the next refresh
        assert auth.recheck("alice", info.user("alice").dn).allowed
        ds389.set_account_lock("alice", True)
        try:
            verdict = auth.recheck("alice", info.user("alice").dn)
            assert not verdict.allowed and "nsaccountlock" in verdict.reason.lower(), verdict
        finally:
            ds389.set_account_lock("alice", False)
        assert auth.recheck("alice", info.user("alice").dn).allowed
    finally:
        auth.close_connections()


def test_ldap_check_never_calls_locked_or_expired_accounts_allowed(ds389: Ds389Directory) -> None:
    """Item 8 in ldap_check: without the user's password (the re-check) and with it (the login)."""
    info = ds389.info
    settings = settings_for(info)
    for login, why in UNUSABLE.items():
        for password in (None, info.user(login).password):
            report = check_login(settings, login, search_password=info.search_password, user_password=password)
            text = render_report(report, settings)
            assert report.allowed is False and not report.broken, text
            assert why in text.lower() and "ALLOWED" not in text, text
            assert "try the password again" not in text, text
    carol = check_login(settings, "carol", search_password=info.search_password)
    assert (carol.allowed, carol.admin) == (True, True), render_report(carol, settings)


@pytest.mark.parametrize(
    ("key", "lookup_dn", "bad"),
    [
        ("userSearchBase", True, {"userSearchBase": "cn=userz,cn=accounts,dc=ipa,dc=example,dc=org"}),
        (
            "bindDnTemplates",
            False,
            {"bindDnTemplates": ["uid={username},cn=userz,cn=accounts,dc=ipa,dc=example,dc=org"]},
        ),
        (
            "allowedGroups",
            True,
            {"allowedGroups": ["cn=dsaas-hub-userz,cn=groups,cn=accounts,dc=ipa,dc=example,dc=org"]},
        ),
    ],
)
def test_a_configured_dn_that_does_not_exist_is_a_configuration_error(
    ds389: Ds389Directory, key: str, lookup_dn: bool, bad: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Item 10: 389 answers a search under a missing base with success and no entries; the entry is read."""
    info = ds389.info
    settings = settings_for(info, lookup_dn=lookup_dn, **bad)
    report = check_login(settings, "alice", search_password=info.search_password)
    text = render_report(report, settings)
    assert report.broken and f"dsaas:hub.ldap.{key}" in text and "does not exist" in text, text
    auth = authenticator_for(settings, info.search_password, None)
    try:
        with pytest.raises(Exception, match=f"dsaas:hub.ldap.{key}") as raised:
            auth.login("alice", info.user("alice").password)
        assert type(raised.value).__name__ == "ConfigurationError"
        # the handler on auth.log itself: an earlier test's Application may have made that logger not propagate
        auth.log.addHandler(caplog.handler)
        try:
            auth.startup_check()  # what check_allow_config runs on a worker thread at hub start
        finally:
            auth.log.removeHandler(caplog.handler)
        assert any(f"dsaas:hub.ldap.{key}" in r.getMessage() for r in caplog.records), caplog.text
    finally:
        auth.close_connections()


def test_the_real_hub_against_389(ds389: Ds389Directory, hub_factory: HubFactory, tmp_path: Path) -> None:
    """The rendered hub: a member two levels down logs in; locked and expired accounts are refused with their
    reason in the log; a session whose account is locked meanwhile ends at the next refresh."""
    info = ds389.info
    workspace = HubWorkspace.create(tmp_path / "hub")
    values = lab_hub_values(settings_for(info), workspace, ldap_search_password=info.search_password)
    values["hub"]["config"]["Authenticator"]["auth_refresh_age"] = 2
    hub = hub_factory(values=values, workspace=workspace)
    gina = hub.session()
    assert gina.login("gina", info.user("gina").password).status == 302 and gina.logged_in
    for login in ("lou", "kate"):
        session = hub.session()
        session.login(login, info.user(login).password)
        assert not session.logged_in, login
    log = hub.log_text()
    assert "configuration error" not in log  # the start-up check of every configured DN found them all
    assert "login of 'lou' refused: the directory refuses this account, locked or inactivated" in log, log[-2000:]
    assert "login of 'kate' refused: the password expired" in log, log[-2000:]
    alice = hub.session()
    assert alice.login("alice", info.user("alice").password).status == 302 and alice.logged_in
    ds389.set_account_lock("alice", True)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and alice.get("/hub/api/user").status == 200:
            time.sleep(0.5)
        assert alice.get("/hub/api/user").status != 200
        assert "access of 'alice' ended: the account is locked in the directory" in hub.log_text()
    finally:
        ds389.set_account_lock("alice", False)


def test_the_instance_configuration_and_seed(tmp_path: Path) -> None:
    """Pure: what the lab writes before ns-slapd starts, and the order it seeds in."""
    dse = render_dse(tmp_path, 3890, 6360, "{SSHA}x", DEFAULT_SUFFIX)
    config = dse.split("\n\n")[0]
    assert "nsslapd-listenhost: 127.0.0.1" in config and "nsslapd-securelistenhost: 127.0.0.1" in config
    assert "nsslapd-allow-anonymous-access: rootdse" in config and "nsslapd-ldapilisten: off" in config
    memberof = next(e for e in dse.split("\n\n") if e.startswith("dn: cn=MemberOf Plugin,")).lower()
    assert "nsslapd-pluginenabled: on" in memberof and "off" not in memberof
    assert "memberofgroupattr: member\n" in memberof and "memberofattr: memberof\n" in memberof
    assert f"memberofentryscope: {DEFAULT_SUFFIX}" in memberof
    assert str(tmp_path) in dse and "/var/lib/dirsrv" not in dse and "/etc/dirsrv" not in dse
    assert transitive(("lab-interns",), SUBGROUPS) == ("lab-interns", "research-team", "dsaas-hub-users")
    info = build_info(3890, 6360, tmp_path / "ca.pem", "pw")
    added: list[str] = []
    for dn, attributes in seed_entries(info):
        for member in attributes.get("member", []):
            assert member in added, f"{dn} names {member} before it exists"
        assert dn.partition(",")[2] in added or dn == info.base_dn, dn
        added.append(dn)
