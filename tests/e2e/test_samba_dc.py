"""The hub's authenticator and `ldap_check` against a real Active Directory DC (Samba 4.17's, tools/lab/samba.py).

The DC serves LDAPS on a loopback address with a certificate that names only its own host name
(DC1.lab.example.org). Nothing here resolves that name: the clients connect to the address and verify the
certificate against the DC's own CA and the name through ldap3's `Tls(valid_names=...)` (`trust_dc_name`),
the one thing the suite adds to what the stack renders. The tests below prove the name is really checked.
"""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ldap3
import pytest
from ldap3.core.exceptions import LDAPSocketOpenError
from playwright.sync_api import Page
from tornado import web

from config.settings import Settings, parse_settings
from tests.e2e.conftest import HubFactory, SambaTemplate
from tools.lab import browser as lab_browser
from tools.lab.hub import HubWorkspace
from tools.lab.procs import run_coroutine
from tools.lab.samba import SambaDC, SambaInfo, acquire_ports_lease, filetime, point_at_samba
from tools.lab.stack_hub import lab_hub_values, stack_settings_values
from tools.preflight import ldap_check

pytestmark = pytest.mark.slow


def samba_settings(info: SambaInfo, **ldap: Any) -> Settings:
    return parse_settings(point_at_samba(stack_settings_values("dev"), info, **ldap))


def trust_dc_name(authenticator: Any, info: SambaInfo) -> Any:
    """The harness's only addition: verify the DC's certificate against its host name, not the address."""
    authenticator.tls_kwargs = {**authenticator.tls_kwargs, "valid_names": [info.tls_name]}
    return authenticator


def hub_authenticator(info: SambaInfo, **ldap: Any) -> Any:
    """The hub's authenticator (the rendered extraConfig and hub.config) against the DC."""
    authenticator = ldap_check.authenticator_for(samba_settings(info, **ldap), info.search_password, None)
    return trust_dc_name(authenticator, info)


def ldaps(info: SambaInfo, **tls: Any) -> ldap3.Server:
    return ldap3.Server(info.host, port=info.ldaps_port, use_ssl=True, tls=ldap3.Tls(**tls), get_info=ldap3.NONE)


# -- the peer itself ---------------------------------------------------------------------------------
def test_the_dc_listens_on_loopback_only(samba_dc: SambaInfo) -> None:
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout.splitlines()
    samba = [line.split()[3] for line in listening if '"samba"' in line]
    assert samba, listening
    assert all(address.startswith("127.") for address in samba), samba
    assert f"{samba_dc.host}:{samba_dc.ldaps_port}" in samba


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


def _started_here(pid: int) -> bool:
    while pid > 1:
        if pid == os.getpid():
            return True
        pid = _parent(pid)
    return False


def test_no_samba_daemon_from_the_packages_runs(samba_dc: SambaInfo) -> None:
    """Every Samba process is the suite's own DC (a child of this test process); smbd, nmbd, winbindd: none."""
    daemons: list[str] = []
    ours: list[str] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm = (proc / "comm").read_text().strip()
            foreign = comm in ("smbd", "nmbd", "winbindd") or (comm == "samba" and not _started_here(int(proc.name)))
        except (OSError, ValueError):
            continue
        if comm in ("smbd", "nmbd", "winbindd", "samba"):
            (daemons if foreign else ours).append(f"{proc.name} {comm}")
    assert daemons == []
    assert ours, "the session DC runs as a samba process under this test process"


def test_the_certificate_names_only_the_dc_host_and_is_checked(samba_dc: SambaInfo) -> None:
    ca = {"ca_certs_file": str(samba_dc.ca_cert_path), "validate": ssl.CERT_REQUIRED}
    with pytest.raises(LDAPSocketOpenError, match="doesn't match"):
        ldap3.Connection(ldaps(samba_dc, **ca), samba_dc.search_bind_dn, samba_dc.search_password).bind()
    with pytest.raises(LDAPSocketOpenError, match="doesn't match"):
        wrong = ldaps(samba_dc, **ca, valid_names=["dc2.lab.example.org"])
        ldap3.Connection(wrong, samba_dc.search_bind_dn, samba_dc.search_password).bind()
    right = ldaps(samba_dc, **ca, valid_names=[samba_dc.tls_name])
    assert ldap3.Connection(right, samba_dc.search_bind_dn, samba_dc.search_password).bind()


def test_the_seed_is_as_documented(samba_dc: SambaInfo) -> None:
    conn = samba_dc.admin_connection()
    jmueller = samba_dc.user("jmueller")
    assert conn.search(jmueller.dn, "(objectClass=user)", ldap3.BASE, attributes=["userPrincipalName", "cn"])
    assert conn.response[0]["attributes"]["cn"] == ["Müller, Jürgen"]
    assert conn.response[0]["attributes"]["userPrincipalName"] == ["juergen.mueller@example.org"]
    # Two levels of nesting: lab-scientists -> research-team -> dsaas-hub-users.
    conn.search(samba_dc.base_dn, "(sAMAccountName=lab-scientists)", attributes=["memberOf"])
    assert [str(g) for g in conn.response[0]["attributes"]["memberOf"]] == [
        samba_dc.users_group_dn.replace("dsaas-hub-users", "research-team")
    ]
    pat = samba_dc.user("pat")
    conn.search(pat.dn, "(objectClass=user)", ldap3.BASE, attributes=["primaryGroupID", "memberOf"])
    attributes = conn.response[0]["attributes"]
    conn.search(samba_dc.users_group_dn, "(objectClass=group)", ldap3.BASE, attributes=["primaryGroupToken"])
    assert attributes["primaryGroupID"] == conn.response[0]["attributes"]["primaryGroupToken"]
    assert samba_dc.users_group_dn not in attributes["memberOf"]


@pytest.mark.parametrize(
    ("login", "code"),
    [("dora", "533"), ("ed", "701"), ("lou", "775"), ("max", "773"), ("paula", "532"), ("alice", "52e")],
)
def test_the_dc_gives_its_reason_for_each_refused_bind(samba_dc: SambaInfo, login: str, code: str) -> None:
    user = samba_dc.user(login)
    server = ldaps(samba_dc, **samba_dc.tls_kwargs())
    # alice with a wrong password: one bad bind of 3, and a good one below resets the count.
    conn = ldap3.Connection(server, user.dn, "wrong" if code == "52e" else user.password)
    assert not conn.bind()
    assert re.search(rf"\bdata {code}\b", conn.result["message"]), conn.result
    if code == "52e":
        assert ldap3.Connection(server, user.dn, user.password).bind()


def test_the_template_is_provisioned_once_and_copies_start_fast(samba_template: SambaTemplate) -> None:
    assert set(samba_template.timings) == {"provision", "seed"}
    assert samba_template.path.joinpath("private", "sam.ldb").exists()


# -- item 4: AD's reasons -----------------------------------------------------------------------------
REFUSALS = {
    "ed": ("account-expired", "accountExpires"),
    "lou": ("locked", "locked out"),
    "max": ("must-change-password", "pwdLastSet 0"),
}


@pytest.mark.parametrize("login", sorted(REFUSALS))
def test_the_hub_logs_and_shows_ads_reason(samba_dc: SambaInfo, login: str, caplog: pytest.LogCaptureFixture) -> None:
    url = "https://password.lab.example.org/change"
    authenticator = hub_authenticator(samba_dc, passwordChangeUrl=url)
    user = samba_dc.user(login)
    kind, logged = REFUSALS[login]
    try:
        verdict = authenticator.login(login, user.password)
        assert (verdict.user_dn, verdict.refusal) == (None, kind)
        assert logged in verdict.reason
        with pytest.raises(web.HTTPError) as page:
            run_coroutine(authenticator.authenticate(None, {"username": login, "password": user.password}))
    finally:
        authenticator.close_connections()
    shown = str(page.value.log_message) % page.value.args
    assert page.value.status_code == 403
    assert (url in shown) == (kind == "must-change-password")
    assert "try again" not in shown.lower()
    assert logged in caplog.text


def test_a_wrong_password_stays_the_hubs_usual_refusal(samba_dc: SambaInfo) -> None:
    authenticator = hub_authenticator(samba_dc)
    try:
        verdict = authenticator.login("alice", "wrong")  # one bad bind of 3; the good one below resets the count
        assert verdict.refusal == "invalid-credentials"
        assert run_coroutine(authenticator.authenticate(None, {"username": "alice", "password": "wrong"})) is None
        assert authenticator.login("alice", samba_dc.user("alice").password).allowed
    finally:
        authenticator.close_connections()


def samba_check(info: SambaInfo, login: str, password: str | None, **ldap: Any) -> ldap_check.Report:
    """`ldap_check` as an operator runs it, against the DC (its authenticator told the DC's certificate name)."""
    real = ldap_check.authenticator_for
    ldap_check.authenticator_for = lambda *args: trust_dc_name(real(*args), info)
    try:
        return ldap_check.check_login(samba_settings(info, **ldap), login, info.search_password, password)
    finally:
        ldap_check.authenticator_for = real


def test_ldap_check_never_suggests_retrying_a_locked_account(samba_dc: SambaInfo) -> None:
    report = samba_check(samba_dc, "lou", samba_dc.user("lou").password)
    (failure,) = [f for f in report.findings if not f.ok]
    assert failure.step == "user-bind" and "locked out" in failure.detail
    assert "do not retry" in failure.fix and "try the password again" not in failure.fix


def test_ldap_check_says_the_password_was_right_for_a_must_change_account(samba_dc: SambaInfo) -> None:
    report = samba_check(samba_dc, "max", samba_dc.user("max").password)
    (failure,) = [f for f in report.findings if not f.ok]
    assert "password is right" in failure.detail and "pwdLastSet 0" in failure.detail
    assert "passwordChangeUrl" in failure.fix


# -- item 3: primary groups ---------------------------------------------------------------------------
def test_a_user_whose_primary_group_is_the_allowed_group_logs_in(samba_dc: SambaInfo) -> None:
    authenticator = hub_authenticator(samba_dc)
    try:
        verdict = authenticator.login("pat", samba_dc.user("pat").password)
        assert verdict.allowed and verdict.groups == [samba_dc.users_group_dn]
        assert authenticator.recheck("pat", verdict.user_dn).allowed  # and at refresh
        assert not authenticator.login("erin", samba_dc.user("erin").password).allowed
    finally:
        authenticator.close_connections()


def test_domain_users_as_the_allowed_group_lets_its_members_in(samba_dc: SambaInfo) -> None:
    authenticator = hub_authenticator(samba_dc, allowedGroups=[samba_dc.domain_users_dn], adminGroups=[])
    try:
        assert authenticator.login("erin", samba_dc.user("erin").password).allowed  # primaryGroupID 513
    finally:
        authenticator.close_connections()


def test_ldap_check_says_the_primary_group_admitted_the_user(samba_dc: SambaInfo) -> None:
    report = samba_check(samba_dc, "pat", None)
    assert report.allowed is True
    (note,) = [f for f in report.findings if f.step == "primary-group"]
    assert samba_dc.users_group_dn in note.detail and "primaryGroupID" in note.detail
    assert not [f for f in samba_check(samba_dc, "jmueller", None).findings if f.step == "primary-group"]


# -- item 5: access follows the account's state at refresh -------------------------------------------
@pytest.mark.parametrize(
    ("login", "kind"),
    [
        ("alice", None),
        ("pat", None),
        ("dora", "disabled"),
        ("ed", "account-expired"),
        ("lou", "locked"),
        ("max", "must-change-password"),
    ],
)
def test_refresh_follows_the_account_state(samba_dc: SambaInfo, login: str, kind: str | None) -> None:
    authenticator = hub_authenticator(samba_dc)
    try:
        verdict = authenticator.recheck(login, None)
    finally:
        authenticator.close_connections()
    assert verdict.refusal == (kind or "")
    assert verdict.allowed == (kind is None)


def test_a_running_session_ends_when_the_dc_expires_or_locks_the_account(
    samba_dc_factory: Callable[[], SambaDC],
) -> None:
    dc = samba_dc_factory()
    info = dc.info
    authenticator = hub_authenticator(info)
    try:
        assert authenticator.login("alice", info.user("alice").password).allowed
        assert authenticator.login("frank", info.user("frank").password).allowed
        dc.modify_user("alice", {"accountExpires": [str(filetime(time.time() - 60))]})
        dc.bad_binds("frank")
        assert authenticator.recheck("alice", None).refusal == "account-expired"
        assert authenticator.recheck("frank", None).refusal == "locked"
        assert authenticator.recheck("jmueller", None).allowed
    finally:
        authenticator.close_connections()


# -- item 6: user principal names ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "typed", ["juergen.mueller@example.org", "Juergen.Mueller@EXAMPLE.ORG", "jmueller@lab.example.org", "LAB\\jmueller"]
)
def test_a_upn_or_the_account_name_signs_in_as_the_account_name(samba_dc: SambaInfo, typed: str) -> None:
    authenticator = hub_authenticator(samba_dc)
    try:
        verdict = authenticator.login(typed, samba_dc.user("jmueller").password)
    finally:
        authenticator.close_connections()
    assert verdict.allowed and verdict.username == "jmueller"


def test_an_unknown_principal_in_an_unlisted_domain_is_refused_truthfully(samba_dc: SambaInfo) -> None:
    authenticator = hub_authenticator(samba_dc)
    try:
        verdict = authenticator.login("nobody@example.org", "x")
    finally:
        authenticator.close_connections()
    assert verdict.user_dn is None
    assert "'example.org' is not one this hub accepts" in verdict.reason
    assert "no account has the user principal name 'nobody@example.org'" in verdict.reason


def test_ldap_check_follows_a_principal_name(samba_dc: SambaInfo) -> None:
    report = samba_check(samba_dc, "juergen.mueller@example.org", None)
    assert report.allowed is True and report.username == "jmueller"
    assert any(f.step == "name" and "user principal name" in f.detail for f in report.findings)


# -- a real hub and a real browser --------------------------------------------------------------------
def test_the_browser_signs_in_by_upn_and_sees_where_to_change_a_password(
    samba_dc: SambaInfo, hub_factory: HubFactory, tmp_path: Path, new_page: Callable[[str], Page]
) -> None:
    url = "https://password.lab.example.org/change"
    settings = samba_settings(samba_dc, passwordChangeUrl=url)
    workspace = HubWorkspace.create(tmp_path / "hub")
    values = lab_hub_values(settings, workspace, ldap_search_password=samba_dc.search_password)
    tls = values["hub"]["config"]["LDAPAuthenticator"]["tls_kwargs"]
    tls["valid_names"] = [samba_dc.tls_name]  # the harness's one addition (see the module docstring)
    hub = hub_factory(values=values, workspace=workspace)

    page = new_page(hub.url)
    lab_browser.login(page, "juergen.mueller@example.org", samba_dc.user("jmueller").password)
    assert "/hub/login" not in page.url
    assert "User logged in: jmueller" in hub.log_text()  # the hub user is the sAMAccountName

    expired = new_page(hub.url)
    lab_browser.login(expired, "max", samba_dc.user("max").password)
    shown = expired.locator(".login_error").inner_text()
    assert "must be changed" in shown and url in shown

    locked = new_page(hub.url)
    lab_browser.login(locked, "lou", samba_dc.user("lou").password)
    shown = locked.locator(".login_error").inner_text()
    assert "locked" in shown and "try again" not in shown.lower()
    assert "dsaas: login of 'lou' refused: the account is locked out" in hub.log_text()


@pytest.mark.parametrize(
    ("login", "reason"),
    [("dora", "disabled"), ("ed", "has expired"), ("lou", "locked out"), ("max", "must change the password")],
)
def test_ldap_check_without_the_password_refuses_by_the_account_state(
    samba_dc: SambaInfo, login: str, reason: str
) -> None:
    report = samba_check(samba_dc, login, None)
    assert report.allowed is False
    (failure,) = [f for f in report.findings if not f.ok]
    assert failure.step == "account" and reason in failure.detail


def test_one_dc_per_machine_the_ports_lease_waits_then_names_the_holder() -> None:
    """CI runs this suite twice at once (here and in a fresh Debian root, one network namespace): a DC
    started while another suite's DC holds 127.0.0.1:389/636 waits for the lease instead of failing."""
    name = f"\0dsaas-test-lease-{os.getpid()}".encode()  # the session DC may hold the real one right now
    with acquire_ports_lease(name=name) as held:
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="another Samba DC"):
            acquire_ports_lease(timeout=1.0, name=name)
        assert time.monotonic() - started >= 1.0
        held.close()
        acquire_ports_lease(timeout=1.0, name=name).close()  # free again once the holder closes it
