"""Pre-flight LDAP check: would the hub let this user in, and as admin? And if not, why?

    python -m tools.ldap_check <stack> <username> [--ldap-url ldaps://host:636] [--ca-file ca.pem]

Uses the hub's own LDAPAuthenticator (ldapauthenticator 2.0.2), configured exactly by the values the
program renders for the stack, so what it decides is what the hub will decide. Passwords come from the
environment, never from the command line: DSAAS_LDAP_SEARCH_PASSWORD (the search account, with
lookupDn) and, optionally, DSAAS_LDAP_USER_PASSWORD (the user's own, to try the whole login).

Exit status: 0 allowed, 1 refused (the directory works, the user may not log in), 2 the settings or
the directory are broken (each finding says what to fix).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import ssl
import sys
from dataclasses import dataclass, field
from pathlib import Path

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn
from ldapauthenticator import LDAPAuthenticator
from traitlets.config import Config

from components import hub_render
from config.services import LdapTlsStrategy
from config.settings import Settings, SettingsError, parse_settings, project_file
from tools.lab.procs import run_coroutine
from tools.lab.stack_hub import point_at_url, stack_settings_values
from tools.mockgraph import StackFileError

SEARCH_PASSWORD_ENV = "DSAAS_LDAP_SEARCH_PASSWORD"
USER_PASSWORD_ENV = "DSAAS_LDAP_USER_PASSWORD"
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Finding:
    ok: bool
    step: str
    detail: str
    fix: str = ""


@dataclass
class Report:
    username: str
    findings: list[Finding] = field(default_factory=list)
    user_dn: str | None = None
    groups: list[str] = field(default_factory=list)
    allowed: bool | None = None
    admin: bool | None = None

    @property
    def broken(self) -> bool:
        return any(not f.ok for f in self.findings)

    def add(self, ok: bool, step: str, detail: str, fix: str = "") -> bool:
        self.findings.append(Finding(ok, step, detail, fix))
        return ok


def authenticator_for(settings: Settings, search_password: str | None, ca_file: Path | None) -> LDAPAuthenticator:
    """The hub's authenticator, configured by the rendered values, with the CA at a local path."""
    config = hub_render.render_ldap_config(settings, search_password)
    if "tls_kwargs" in config:
        local_ca = ca_file or (project_file(settings.hub.ldap.ca_file) if settings.hub.ldap.ca_file else None)
        if local_ca is not None:
            config["tls_kwargs"] = {**config["tls_kwargs"], "ca_certs_file": str(local_ca)}
    return LDAPAuthenticator(config=Config({"LDAPAuthenticator": config}))


def _explain_tls(error: Exception, settings: Settings) -> tuple[str, str]:
    text = str(error)
    ldap = settings.hub.ldap
    if "Hostname mismatch" in text or "doesn't match" in text:
        return (
            f"the directory's certificate does not name {ldap.server_address}",
            "set dsaas:hub.ldap.serverAddress to a name the certificate carries",
        )
    if "CERTIFICATE_VERIFY_FAILED" in text:
        where = f"the CA in {ldap.ca_file}" if ldap.ca_file else "the system CA bundle"
        return (
            f"the directory's certificate is not signed by {where}",
            "set dsaas:hub.ldap.caFile to the PEM of the CA that signed the directory's certificate",
        )
    if ldap.tls_strategy is LdapTlsStrategy.BEFORE_BIND:
        return (
            f"StartTLS failed on port {ldap.port} ({type(error).__name__}: {text})",
            "is this the LDAPS port? Use tlsStrategy on_connect for LDAPS (636), or before_bind on the LDAP "
            "port (389) of a directory that offers StartTLS",
        )
    return (
        f"no TLS handshake on port {ldap.port} ({type(error).__name__}: {text})",
        "is this the plain LDAP port? Use tlsStrategy before_bind there, or on_connect with the LDAPS port (636)",
    )


def check_login(
    settings: Settings,
    username: str,
    search_password: str | None = None,
    user_password: str | None = None,
    ca_file: Path | None = None,
) -> Report:
    """Walk through what the hub does at login, stopping at the first step that cannot work."""
    # As the hub's extra config does (templates/hub/ldap_authenticator.py): "JDoe" logs in as jdoe.
    username = username.lower()
    report = Report(username)
    ldap = settings.hub.ldap
    authenticator = authenticator_for(settings, search_password, ca_file)

    # 1. The network.
    try:
        with socket.create_connection((ldap.server_address, ldap.port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        report.add(
            False,
            "connect",
            f"{ldap.server_address}:{ldap.port} does not answer ({error.strerror or error})",
            "check dsaas:hub.ldap.serverAddress/serverPort, that the directory runs, and the firewall",
        )
        return report
    report.add(True, "connect", f"{ldap.server_address}:{ldap.port} answers")

    # 2. TLS, exactly as ldapauthenticator sets it up.
    if ldap.tls_strategy is LdapTlsStrategy.INSECURE:
        report.add(True, "tls", "no TLS (insecure): passwords would cross the network in clear")
    else:
        server = ldap3.Server(
            ldap.server_address,
            port=ldap.port,
            use_ssl=ldap.tls_strategy is LdapTlsStrategy.ON_CONNECT,
            tls=ldap3.Tls(**authenticator.tls_kwargs),
            connect_timeout=CONNECT_TIMEOUT_S,
        )
        probe = ldap3.Connection(server)
        try:
            probe.open()
            if ldap.tls_strategy is LdapTlsStrategy.BEFORE_BIND and not probe.start_tls():
                raise LDAPException(f"StartTLS refused: {probe.result}")
        except (LDAPException, ssl.SSLError, OSError) as error:
            detail, fix = _explain_tls(error, settings)
            report.add(False, "tls", detail, fix)
            return report
        finally:
            with contextlib.suppress(LDAPException, OSError):  # a failed handshake leaves nothing to close
                probe.unbind()
        report.add(True, "tls", f"{ldap.tls_strategy.value}: the certificate is trusted and names the server")

    # 3. Who is the user? Through the search account (lookupDn) or the DN template.
    search = None
    if ldap.lookup_dn:
        if not search_password:
            report.add(False, "search-bind", f"no password for {ldap.search_user}", f"export {SEARCH_PASSWORD_ENV}")
            return report
        search = authenticator.get_connection(ldap.search_user, search_password)
        if search is None:
            report.add(
                False,
                "search-bind",
                f"the directory refused {ldap.search_user} with the given password",
                "check dsaas:hub.ldap.searchUser (a full DN) and the secret dsaas:ldapSearchPassword",
            )
            return report
        report.add(True, "search-bind", f"bound as {ldap.search_user}")
        _resolved, report.user_dn = authenticator.resolve_username(username)
        if not report.user_dn:
            report.add(
                False,
                "lookup",
                f"no unique entry with {ldap.user_attribute}={username} under {ldap.user_search_base}",
                "check the name, dsaas:hub.ldap.userSearchBase and dsaas:hub.ldap.userAttribute",
            )
            report.allowed = report.admin = False
            return report
        report.add(True, "lookup", f"{username} is {report.user_dn}")
    else:
        report.user_dn = ldap.bind_dn_templates[0].format(username=escape_rdn(username))
        report.add(True, "lookup", f"{username} binds as {report.user_dn} (first template)")

    # 4. The user's own password, if given: the real login path, groups included.
    if user_password is not None:
        authenticated = run_coroutine(
            authenticator.authenticate(None, {"username": username, "password": user_password})
        )
        if authenticated is None:
            report.add(
                False,
                "user-bind",
                f"the directory refused {username}'s password (or the name is not valid for the hub)",
                "try the password again; names must match ^[a-z][.a-z0-9_-]*$",
            )
            report.allowed = report.admin = False
            return report
        report.add(True, "user-bind", f"{username}'s password is accepted")
        report.groups = list(authenticated["auth_state"]["ldap_groups"])
    elif search is not None:
        for group in authenticator.allowed_groups:
            found = search.search(
                search_base=group,
                search_scope=ldap3.BASE,
                search_filter=authenticator.group_search_filter.format(
                    userdn=escape_filter_chars(report.user_dn), uid=escape_filter_chars(username)
                ),
                attributes=authenticator.group_attributes,
            )
            if found:
                report.groups.append(group)
    else:
        report.add(
            False,
            "groups",
            "without a search account the groups can only be read with the user's own login",
            f"export {USER_PASSWORD_ENV} (the user's password) and run again",
        )
        return report

    admin_groups = {g.lower() for g in ldap.admin_groups}
    report.allowed = bool(report.groups)
    report.admin = any(g.lower() in admin_groups for g in report.groups)
    return report


def render_report(report: Report, settings: Settings) -> str:
    lines = [
        f"LDAP pre-flight for {report.username!r} against {settings.hub.ldap.server_address}:{settings.hub.ldap.port}"
    ]
    for finding in report.findings:
        lines.append(f"  {'ok ' if finding.ok else 'FAIL'}  {finding.step:<12} {finding.detail}")
        if finding.fix:
            lines.append(f"        fix: {finding.fix}")
    if report.allowed is None:
        lines.append("Decision: unknown — fix the first failure above.")
        return "\n".join(lines)
    allowed_groups = settings.hub.ldap.allowed_groups + settings.hub.ldap.admin_groups
    if report.allowed:
        lines.append(f"Decision: ALLOWED — member of {', '.join(report.groups)}.")
    else:
        lines.append(f"Decision: REFUSED — not a member of any allowed group ({'; '.join(allowed_groups)}).")
    admins = "; ".join(settings.hub.ldap.admin_groups) or "no admin groups configured"
    lines.append(f"Admin: {'yes' if report.admin else 'no'} (admin groups: {admins}).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ldap_check", description=__doc__.splitlines()[0])
    parser.add_argument("stack")
    parser.add_argument("username")
    parser.add_argument("--ldap-url", help="another server than the stack's: ldap://host:port or ldaps://host:port")
    parser.add_argument("--ca-file", type=Path, help="CA bundle to use instead of the stack's caFile")
    parser.add_argument("--config-dir", type=Path, help="folder of stack files (default: config/)")
    args = parser.parse_args(argv)
    try:
        values = stack_settings_values(args.stack, args.config_dir)
        if args.ldap_url:
            values = point_at_url(values, args.ldap_url)
        settings = parse_settings(values)
    except (SettingsError, StackFileError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = check_login(
        settings,
        args.username,
        search_password=os.environ.get(SEARCH_PASSWORD_ENV),
        user_password=os.environ.get(USER_PASSWORD_ENV),
        ca_file=args.ca_file,
    )
    print(render_report(report, settings))
    if report.broken and report.allowed is None:
        return 2
    return 0 if report.allowed else 1


if __name__ == "__main__":
    sys.exit(main())
