"""Issue 20's matrix: each account kind × (hub login, `ldap_check`, refresh) against each real directory.

Servers: the Samba AD DC (a private copy of the template, since the matrix binds with wrong passwords and
changes accounts), the 389 Directory Server laid out as FreeIPA (the session's, every change undone), and
slapd's active-directory shape (a private one). Each cell is observed, never assumed:

- hub: `DsaasLDAPAuthenticator.authenticate` configured by the rendered hub values (the project's own
  `ldap_check.authenticator_for`): "allowed", or the refusal kind (the authenticator's `refusal`, else its
  reason) and what the login page says (JupyterHub's usual "Invalid username or password", or the
  first sentence of the 403 message the authenticator raises, "+ URL" when it names `passwordChangeUrl`);
- ldap_check: `check_login` with the user's password, as `DSAAS_LDAP_USER_PASSWORD=... tools.ldap_check`
  runs it: the exit status and the `Decision:` line (group DNs left out);
- refresh: `recheck` of a session that was allowed, after the server changed the account live (the change
  is undone and the account is allowed again before the next cell).

A kind a server cannot really produce is "n/a (why)". The observed matrix must equal EXPECTED (a regression
fails here), and docs/directories.md shows it: `--write-docs` rewrites the section (REGENERATE).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap3
import pytest
from playwright.sync_api import Page
from tornado import web

from config.settings import Settings, parse_settings
from tests.e2e.conftest import HubFactory, LdapDirectoryFactory
from tests.e2e.test_ds389 import settings_for
from tests.e2e.test_samba_dc import hub_authenticator, samba_check, samba_settings
from tools.lab import browser as lab_browser
from tools.lab.directory import DirectoryShape, LdapDirectory
from tools.lab.ds389 import FUTURE, PAST, Ds389Directory
from tools.lab.hub import HubWorkspace
from tools.lab.procs import run_coroutine
from tools.lab.samba import SambaDC, SambaInfo, filetime, group_dn
from tools.lab.stack_hub import lab_hub_values, point_at_directory, search_password_for, stack_settings_values
from tools.preflight import ldap_check

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "directories.md"
BEGIN = "<!-- account-matrix: begin (tests/e2e/test_account_matrix.py writes this table) -->"
END = "<!-- account-matrix: end -->"
REGENERATE = ".venv/bin/python -m pytest tests/e2e/test_account_matrix.py --write-docs"
CHANGE_URL = "https://password.lab.example.org/change"
WRONG = "Wrong-pw-9"
WRONG_PASSWORD_KINDS = ("disabled-wrong-password", "wrong-password", "unknown")

KINDS: Mapping[str, str] = {
    "active": "active member",
    "nested": "nested member",
    "primary": "primary-group member",
    "not-member": "not a member",
    "disabled": "disabled / locked (nsAccountLock)",
    "disabled-wrong-password": "the same, a wrong password typed",
    "account-expired": "expired account",
    "password-expired": "expired password",
    "krb-password-expired": "expired password (krbPasswordExpiration)",
    "must-change": "must change password",
    "locked-out": "locked out (bad passwords)",
    "wrong-password": "wrong password",
    "unknown": "unknown user",
}
NO_PASSWORD = "a refresh sends no password"
SERVERS = ("Samba AD DC", "389 (FreeIPA layout)", "slapd active-directory shape")


@dataclass(frozen=True)
class NotAvailable:
    why: str

    def __str__(self) -> str:
        return f"n/a ({self.why})"


@dataclass(frozen=True)
class Live:
    """A live change of the refresh account (allowed before it) and its undo."""

    change: Callable[[], object]
    undo: Callable[[], object]


@dataclass
class Server:
    name: str
    settings: Settings
    search_password: str
    password: Callable[[str], str]
    authenticator: Callable[[], Any]
    check: Callable[[str, str], ldap_check.Report]
    logins: dict[str, str | NotAvailable]
    refresh_account: str
    refreshes: dict[str, Live | NotAvailable | None] = field(default_factory=dict)
    """None: recheck the login's own account unchanged (it stays what it was)."""


Row = tuple[str, str, str]


# -- observing ------------------------------------------------------------------------------------------
def hub_cell(authenticator: Any, login: str, password: str) -> str:
    """What the hub's `authenticate` does with this form post: allowed, or why not and what the page says."""
    verdicts: list[Any] = []
    real_login = authenticator.login

    def spy(typed: str, typed_password: str) -> Any:
        verdicts.append(real_login(typed, typed_password))
        return verdicts[-1]

    authenticator.login = spy
    try:
        model = run_coroutine(authenticator.authenticate(None, {"username": login, "password": password}))
        page = "usual page"
    except web.HTTPError as error:
        model = None
        shown = str(error.log_message) % error.args
        page = f'{error.status_code} "{shown.split(". ")[0]}."' + (" + URL" if CHANGE_URL in shown else "")
    finally:
        del authenticator.login
    if model is not None:
        return "allowed (admin)" if model["admin"] else "allowed"
    (verdict,) = verdicts
    kind = verdict.refusal or (verdict.reason if verdict.reason else "not a member")
    return f"refused: {kind}; {page}"


DECISION = re.compile(r"^Decision: (.*)$", re.M)


def check_cell(server: Server, login: str, password: str) -> str:
    report = server.check(login, password)
    match = DECISION.search(ldap_check.render_report(report, server.settings))
    assert match is not None
    decision = match.group(1).rstrip(".")
    if decision.startswith("ALLOWED"):
        decision = "ALLOWED"
    elif "not a member of any allowed group" in decision:
        decision = "REFUSED — not a member of any allowed group"
    elif decision.startswith("unknown"):
        failed = next(f for f in report.findings if not f.ok)
        decision = f"unknown — {failed.step}: {failed.detail}"
    return f"exit {ldap_check.exit_status(report)}: {decision}"


def refresh_cell(server: Server, authenticator: Any, kind: str, login: str | NotAvailable) -> str:
    how = server.refreshes.get(kind, NotAvailable("no such account"))
    if isinstance(how, NotAvailable):
        return str(how)

    def recheck(account: str) -> str:
        verdict = authenticator.recheck(account, None)
        if verdict.allowed:
            return "kept (admin)" if verdict.admin else "kept"
        return f"ended: {verdict.refusal or verdict.reason or 'not a member'}"

    if how is None:
        assert isinstance(login, str)
        return recheck(login)
    account = server.refresh_account
    before = recheck(account)
    assert before == "kept", f"{server.name}: {account} must be allowed before the change ({before})"
    how.change()
    try:
        after = recheck(account)
    finally:
        how.undo()
    assert recheck(account) == "kept", f"{server.name}: undoing the {kind} change left {account} refused"
    return after


def observe(server: Server) -> dict[str, Row]:
    authenticator = server.authenticator()
    rows: dict[str, Row] = {}
    try:
        for kind in KINDS:
            login = server.logins.get(kind, NotAvailable("no such account"))
            refresh = refresh_cell(server, authenticator, kind, login)
            if isinstance(login, NotAvailable):
                rows[kind] = (str(login), str(login), refresh)
                continue
            password = WRONG if kind in WRONG_PASSWORD_KINDS else server.password(login)
            rows[kind] = (hub_cell(authenticator, login, password), check_cell(server, login, password), refresh)
    finally:
        authenticator.close_connections()
    return rows


# -- the servers ------------------------------------------------------------------------------------------
def samba_server(dc: SambaDC) -> Server:
    info = dc.info
    settings = samba_settings(info, passwordChangeUrl=CHANGE_URL)

    def membership(add: bool) -> Callable[[], None]:
        def change() -> None:
            conn = info.admin_connection()
            try:
                action = ldap3.MODIFY_ADD if add else ldap3.MODIFY_DELETE
                conn.modify(group_dn("research-team"), {"member": [(action, [info.user("frank").dn])]})
            finally:
                conn.unbind()

        return change

    def set_frank(changes: dict[str, list[Any]]) -> Callable[[], None]:
        return lambda: dc.modify_user("frank", changes)

    def password_set_now() -> None:
        # AD's way to restart a password's age: -1 (now) is taken after 0, not over another date
        dc.modify_user("frank", {"pwdLastSet": ["0"]})
        dc.modify_user("frank", {"pwdLastSet": ["-1"]})

    return Server(
        name=SERVERS[0],
        settings=settings,
        search_password=info.search_password,
        password=lambda login: info.user(login).password,
        authenticator=lambda: hub_authenticator(info, passwordChangeUrl=CHANGE_URL),
        check=lambda login, password: samba_check(info, login, password, passwordChangeUrl=CHANGE_URL),
        logins={
            "active": "jmueller",  # a direct member
            "nested": "alice",  # lab-scientists ⊂ research-team ⊂ dsaas-hub-users
            "primary": "pat",
            "not-member": "dave",
            "disabled": "dora",
            "disabled-wrong-password": "dora",
            "account-expired": "ed",
            "password-expired": "paula",  # pwdLastSet 60 days back, written offline into the template
            "krb-password-expired": NotAvailable("an IdM attribute"),
            "must-change": "max",
            "locked-out": "lou",  # three bad binds at seeding
            "wrong-password": "carol",
            "unknown": "nobody",
        },
        refresh_account="frank",
        refreshes={
            "active": None,
            "nested": None,
            "primary": None,
            "not-member": Live(membership(add=False), membership(add=True)),
            "disabled": Live(set_frank({"userAccountControl": ["514"]}), set_frank({"userAccountControl": ["512"]})),
            "account-expired": Live(
                set_frank({"accountExpires": [str(filetime(time.time() - 60))]}), set_frank({"accountExpires": ["0"]})
            ),
            # the DC stops for the offline write (LDAP cannot backdate pwdLastSet) and starts again
            "password-expired": Live(lambda: dc.age_password("frank"), password_set_now),
            "krb-password-expired": NotAvailable("an IdM attribute"),
            "must-change": Live(set_frank({"pwdLastSet": ["0"]}), password_set_now),
            "locked-out": Live(lambda: dc.bad_binds("frank"), set_frank({"lockoutTime": ["0"]})),
            "disabled-wrong-password": NotAvailable(NO_PASSWORD),
            "wrong-password": NotAvailable(NO_PASSWORD),
            "unknown": NotAvailable("no session"),
        },
    )


def ds389_server(ds389: Ds389Directory) -> Server:
    info = ds389.info
    settings = settings_for(info, passwordChangeUrl=CHANGE_URL)

    def attribute(name: str, values: list[str]) -> Callable[[], None]:
        return lambda: ds389.set_attribute("alice", name, values)

    def membership(add: bool) -> Callable[[], None]:
        def change() -> None:
            conn = ds389.admin_connection()
            try:
                action = ldap3.MODIFY_ADD if add else ldap3.MODIFY_DELETE
                conn.modify(info.users_group_dn, {"member": [(action, [info.user("alice").dn])]})
            finally:
                conn.unbind()

        return change

    conn = ds389.admin_connection()
    try:
        conn.search(info.user("alice").dn, "(objectClass=*)", ldap3.BASE, attributes=["passwordExpirationTime"])
        alice_expiry = [v.decode() for v in conn.response[0]["raw_attributes"]["passwordExpirationTime"]]
    finally:
        conn.unbind()
    return Server(
        name=SERVERS[1],
        settings=settings,
        search_password=info.search_password,
        password=lambda login: info.user(login).password,
        authenticator=lambda: ldap_check.authenticator_for(settings, info.search_password, None),
        check=lambda login, password: ldap_check.check_login(
            settings, login, search_password=info.search_password, user_password=password
        ),
        logins={
            "active": "alice",
            "nested": "gina",  # lab-interns ⊂ research-team ⊂ dsaas-hub-users
            "primary": NotAvailable("an AD notion"),
            "not-member": "dave",
            "disabled": "lou",
            "disabled-wrong-password": "lou",
            "account-expired": "paul",  # krbPrincipalExpiration
            "password-expired": "pete",  # passwordExpirationTime, which 389 enforces
            "krb-password-expired": "kate",
            "must-change": NotAvailable("IdM's reset sets krbPasswordExpiration: the row above"),
            "locked-out": NotAvailable("the lab's 389 has no lockout policy (passwordLockout off)"),
            "wrong-password": "carol",
            "unknown": "nobody",
        },
        refresh_account="alice",
        refreshes={
            "active": None,
            "nested": None,
            "primary": NotAvailable("an AD notion"),
            "not-member": Live(membership(add=False), membership(add=True)),
            "disabled": Live(
                lambda: ds389.set_account_lock("alice", True), lambda: ds389.set_account_lock("alice", False)
            ),
            "account-expired": Live(
                attribute("krbPrincipalExpiration", [PAST]), attribute("krbPrincipalExpiration", [])
            ),
            "password-expired": Live(
                attribute("passwordExpirationTime", [PAST]), attribute("passwordExpirationTime", alice_expiry)
            ),
            "krb-password-expired": Live(
                attribute("krbPasswordExpiration", [PAST]), attribute("krbPasswordExpiration", [FUTURE])
            ),
            "must-change": NotAvailable("IdM's reset sets krbPasswordExpiration: the row above"),
            "locked-out": NotAvailable("the lab's 389 has no lockout policy (passwordLockout off)"),
            "disabled-wrong-password": NotAvailable(NO_PASSWORD),
            "wrong-password": NotAvailable(NO_PASSWORD),
            "unknown": NotAvailable("no session"),
        },
    )


def slapd_server(directory: LdapDirectory) -> Server:
    values = point_at_directory(stack_settings_values("prod"), directory.info)
    values["dsaas:hub"]["ldap"]["passwordChangeUrl"] = CHANGE_URL
    settings = parse_settings(values)
    search_password = search_password_for(settings, directory.info) or ""
    slapd_has_no = NotAvailable("slapd has no such account state")
    directory.set_account_disabled("bob", True)
    return Server(
        name=SERVERS[2],
        settings=settings,
        search_password=search_password,
        password=lambda login: directory.info.user(login).password,
        authenticator=lambda: ldap_check.authenticator_for(settings, search_password, None),
        check=lambda login, password: ldap_check.check_login(
            settings, login, search_password=search_password, user_password=password
        ),
        logins={
            "active": "alice",
            "nested": "frank",  # research-team ⊂ dsaas-hub-users
            "primary": NotAvailable("no primaryGroupID in slapd"),
            "not-member": "dave",
            "disabled": "bob",  # userAccountControl 514, set above
            "disabled-wrong-password": "bob",
            "account-expired": slapd_has_no,
            "password-expired": slapd_has_no,
            "krb-password-expired": slapd_has_no,
            "must-change": slapd_has_no,
            "locked-out": slapd_has_no,
            "wrong-password": "carol",
            "unknown": "nobody",
        },
        refresh_account="alice",
        refreshes={
            "active": None,
            "nested": None,
            "primary": NotAvailable("no primaryGroupID in slapd"),
            "not-member": Live(
                lambda: directory.remove_member(directory.info.users_group_dn, "alice"),
                lambda: directory.add_member(directory.info.users_group_dn, "alice"),
            ),
            "disabled": Live(
                lambda: directory.set_account_disabled("alice", True),
                lambda: directory.set_account_disabled("alice", False),
            ),
            "account-expired": slapd_has_no,
            "password-expired": slapd_has_no,
            "krb-password-expired": slapd_has_no,
            "must-change": slapd_has_no,
            "locked-out": slapd_has_no,
            "disabled-wrong-password": NotAvailable(NO_PASSWORD),
            "wrong-password": NotAvailable(NO_PASSWORD),
            "unknown": NotAvailable("no session"),
        },
    )


# -- the page -----------------------------------------------------------------------------------------------
def na(why: str) -> Row:
    return (str(NotAvailable(why)),) * 3


def render_matrix(matrix: Mapping[str, Mapping[str, Row]]) -> str:
    lines = [
        "| Server | Account | Hub login (page) | `ldap_check` (exit: decision) | Refresh (after a live change) |",
        "|---|---|---|---|---|",
    ]
    for server, rows in matrix.items():
        for kind, (hub, check, refresh) in rows.items():
            cells = [server, KINDS[kind], hub, check, refresh]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def section(text: str) -> str:
    start, end = text.find(BEGIN), text.find(END)
    assert 0 <= start < end, f"{DOC.name} lost its markers {BEGIN!r} … {END!r}"
    return text[start + len(BEGIN) : end].strip("\n") + "\n"


def with_section(text: str, table: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return f"{text[:start]}\n{table}{text[end:]}"


def test_the_section_is_replaced_between_its_markers_only() -> None:
    page = f"# x\n{BEGIN}\n| old |\n{END}\nafter\n"
    rewritten = with_section(page, "| new |\n")
    assert rewritten == f"# x\n{BEGIN}\n| new |\n{END}\nafter\n"
    assert section(rewritten) == "| new |\n"


# -- the matrix ---------------------------------------------------------------------------------------------
@pytest.fixture
def samba_matrix_dc(samba_dc_factory: Callable[[], SambaDC]) -> Iterator[SambaDC]:
    yield samba_dc_factory()


def test_the_account_matrix(
    samba_matrix_dc: SambaDC,
    ds389: Ds389Directory,
    ldap_directory_factory: LdapDirectoryFactory,
    request: pytest.FixtureRequest,
) -> None:
    started = time.monotonic()
    slapd = ldap_directory_factory(shape=DirectoryShape.ACTIVE_DIRECTORY)
    matrix = {
        SERVERS[0]: observe(samba_server(samba_matrix_dc)),
        SERVERS[1]: observe(ds389_server(ds389)),
        SERVERS[2]: observe(slapd_server(slapd)),
    }
    print(f"\nthe matrix took {time.monotonic() - started:.1f} s")
    table = render_matrix(matrix)
    print(table)
    assert {server: dict(rows) for server, rows in matrix.items()} == EXPECTED
    text = DOC.read_text()
    if request.config.getoption("--write-docs"):
        DOC.write_text(with_section(text, table))
        text = DOC.read_text()
    assert section(text) == table, f"{DOC.name}'s account matrix is out of date: run `{REGENERATE}`"


EXPECTED: dict[str, dict[str, Row]] = {
    SERVERS[0]: {
        "active": ("allowed", "exit 0: ALLOWED", "kept"),
        "nested": ("allowed", "exit 0: ALLOWED", "kept"),
        "primary": ("allowed", "exit 0: ALLOWED", "kept"),
        "not-member": (
            "refused: not a member; usual page",
            "exit 1: REFUSED — not a member of any allowed group",
            "ended: not a member",
        ),
        "disabled": (
            'refused: disabled; 403 "Your account is disabled."',
            "exit 1: REFUSED — the account is disabled",
            "ended: disabled",
        ),
        "disabled-wrong-password": (
            "refused: invalid-credentials; usual page",
            "exit 1: REFUSED — the account is disabled",
            "n/a (a refresh sends no password)",
        ),
        "account-expired": (
            'refused: account-expired; 403 "Your account has expired."',
            "exit 1: REFUSED — the account has expired (accountExpires)",
            "ended: account-expired",
        ),
        "password-expired": (
            'refused: password-expired; 403 "Your password has expired." + URL',
            "exit 1: REFUSED — the password has expired",
            "ended: password-expired",
        ),
        "krb-password-expired": na("an IdM attribute"),
        "must-change": (
            'refused: must-change-password; 403 "Your password must be changed before you sign in." + URL',
            "exit 1: REFUSED — the user must change the password before logging in (pwdLastSet 0)",
            "ended: must-change-password",
        ),
        "locked-out": (
            'refused: locked; 403 "Your account is locked after too many failed sign-ins."',
            "exit 1: REFUSED — the account is locked out",
            "ended: locked",
        ),
        "wrong-password": (
            "refused: invalid-credentials; usual page",
            "exit 1: REFUSED — wrong password (invalid credentials)",
            "n/a (a refresh sends no password)",
        ),
        "unknown": (
            "refused: no such user under the user search base; usual page",
            "exit 1: REFUSED — unknown user: no sAMAccountName=nobody under OU=People,DC=lab,DC=example,DC=org",
            "n/a (no session)",
        ),
    },
    SERVERS[1]: {
        "active": ("allowed", "exit 0: ALLOWED", "kept"),
        "nested": ("allowed", "exit 0: ALLOWED", "kept"),
        "primary": na("an AD notion"),
        "not-member": (
            "refused: not a member; usual page",
            "exit 1: REFUSED — not a member of any allowed group",
            "ended: not a member",
        ),
        "disabled": (
            'refused: inactivated; 403 "Your account is disabled."',
            "exit 1: REFUSED — the directory refuses this account, locked or inactivated"
            " (53 unwillingToPerform: Account inactivated. Contact system administrator.)",
            "ended: disabled",
        ),
        "disabled-wrong-password": (
            'refused: inactivated; 403 "Your account is disabled."',
            "exit 1: REFUSED — the directory refuses this account, locked or inactivated"
            " (53 unwillingToPerform: Account inactivated. Contact system administrator.)",
            "n/a (a refresh sends no password)",
        ),
        "account-expired": (
            'refused: account-expired; 403 "Your account has expired."',
            "exit 1: REFUSED — the account expired on 2020-01-01 00:00 UTC"
            " (krbPrincipalExpiration); it must be renewed in the directory first",
            "ended: account-expired",
        ),
        "password-expired": (
            'refused: password-expired; 403 "Your password has expired." + URL',
            "exit 1: REFUSED — the password has expired (the directory says: password expired!)",
            "ended: password-expired",
        ),
        "krb-password-expired": (
            'refused: password-expired; 403 "Your password has expired." + URL',
            "exit 1: REFUSED — the password expired on 2020-01-01 00:00 UTC"
            " (krbPasswordExpiration); it must be renewed in the directory first",
            "ended: password-expired",
        ),
        "must-change": na("IdM's reset sets krbPasswordExpiration: the row above"),
        "locked-out": na("the lab's 389 has no lockout policy (passwordLockout off)"),
        "wrong-password": (
            "refused: invalid credentials; usual page",
            "exit 1: REFUSED — wrong password (invalid credentials)",
            "n/a (a refresh sends no password)",
        ),
        "unknown": (
            "refused: no such user under the user search base; usual page",
            "exit 1: REFUSED — unknown user: no uid=nobody under cn=users,cn=accounts,dc=ipa,dc=example,dc=org",
            "n/a (no session)",
        ),
    },
    SERVERS[2]: {
        "active": ("allowed", "exit 0: ALLOWED", "kept"),
        "nested": ("allowed", "exit 0: ALLOWED", "kept"),
        "primary": na("no primaryGroupID in slapd"),
        "not-member": (
            "refused: not a member; usual page",
            "exit 1: REFUSED — not a member of any allowed group",
            "ended: not a member",
        ),
        "disabled": (
            'refused: disabled; 403 "Your account is disabled."',
            "exit 1: REFUSED — the account is disabled",
            "ended: disabled",
        ),
        "disabled-wrong-password": (
            "refused: invalid credentials; usual page",
            "exit 1: REFUSED — the account is disabled",
            "n/a (a refresh sends no password)",
        ),
        "account-expired": na("slapd has no such account state"),
        "password-expired": na("slapd has no such account state"),
        "krb-password-expired": na("slapd has no such account state"),
        "must-change": na("slapd has no such account state"),
        "locked-out": na("slapd has no such account state"),
        "wrong-password": (
            "refused: invalid credentials; usual page",
            "exit 1: REFUSED — wrong password (invalid credentials)",
            "n/a (a refresh sends no password)",
        ),
        "unknown": (
            "refused: no such user under the user search base; usual page",
            "exit 1: REFUSED — unknown user: no sAMAccountName=nobody under ou=People,dc=example,dc=org",
            "n/a (no session)",
        ),
    },
}


# -- the expired-password page in a real browser ---------------------------------------------------------------
def test_the_browser_shows_where_to_change_an_expired_389_password(
    ds389: Ds389Directory, hub_factory: HubFactory, tmp_path: Path, new_page: Callable[[str], Page]
) -> None:
    """A real hub on the rendered values with the stack's `passwordChangeUrl`: both of 389's / IdM's expired
    passwords (passwordExpirationTime, krbPasswordExpiration) get a page naming the URL; a member gets in."""
    info = ds389.info
    workspace = HubWorkspace.create(tmp_path / "hub")
    settings = settings_for(info, passwordChangeUrl=CHANGE_URL)
    values = lab_hub_values(settings, workspace, ldap_search_password=info.search_password)
    hub = hub_factory(values=values, workspace=workspace)
    for login, attribute in (("pete", "passwordExpirationTime"), ("kate", "krbPasswordExpiration")):
        page = new_page(hub.url)
        lab_browser.login(page, login, info.user(login).password)
        assert "/hub/login" in page.url
        shown = page.locator(".login_error").inner_text()
        assert "Your password has expired" in shown and CHANGE_URL in shown, shown
        assert "Invalid username or password" not in shown
        lab_browser.screenshot(page, f"ds389-expired-password-{attribute}")
        # pete's from 389's own bind answer (the password-expired control), kate's from IdM's attribute
        assert re.search(f"login of '{login}' refused: the password (has )?expired", hub.log_text())
    member = new_page(hub.url)
    lab_browser.login(member, "gina", info.user("gina").password)
    assert "/hub/login" not in member.url


def test_the_browser_shows_where_to_change_an_expired_ad_password(
    samba_dc: SambaInfo, hub_factory: HubFactory, tmp_path: Path, new_page: Callable[[str], Page]
) -> None:
    """The same against the Samba DC: paula's password is older than maxPwdAge, and the DC answers 532."""
    workspace = HubWorkspace.create(tmp_path / "hub")
    settings = samba_settings(samba_dc, passwordChangeUrl=CHANGE_URL)
    values = lab_hub_values(settings, workspace, ldap_search_password=samba_dc.search_password)
    values["hub"]["config"]["LDAPAuthenticator"]["tls_kwargs"]["valid_names"] = [samba_dc.tls_name]
    hub = hub_factory(values=values, workspace=workspace)
    page = new_page(hub.url)
    lab_browser.login(page, "paula", samba_dc.user("paula").password)
    shown = page.locator(".login_error").inner_text()
    assert "Your password has expired" in shown and CHANGE_URL in shown, shown
    lab_browser.screenshot(page, "samba-expired-password-532")
    assert "login of 'paula' refused: the password has expired" in hub.log_text()
