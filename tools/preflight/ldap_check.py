"""Pre-flight LDAP check: would the hub let this user in, and as admin? If not, why, and what to set?

    python -m tools.ldap_check <stack> <username> [--ldap-url ldaps://host:636] [--ca-file ca.pem]

Uses the hub's own authenticator (the dsaas class the program ships in hub.extraConfig, on
ldapauthenticator 2.0.2), configured exactly by the values the program renders for the stack, so what
it decides is what the hub will decide. It also reads what the directory offers (schema attributes,
each group's class and membership attribute, whether users carry memberOf) and recommends the
membership setting. Passwords come from the environment, never from the command line:
DSAAS_LDAP_SEARCH_PASSWORD (the search account) and, optionally, DSAAS_LDAP_USER_PASSWORD (the
user's own, to try the whole login).

Exit status: 0 allowed, 1 refused (the directory works, the user may not log in), 2 the settings or
the directory are broken (each finding says what to fix).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.dn import escape_rdn
from traitlets.config import Config

from components import hub_render
from config.ldap import GroupMembership, LdapTlsStrategy
from config.model import MAX_PROJECT_FILE_BYTES
from config.settings import Settings, SettingsError, parse_settings, project_file
from tools.lab.stack_hub import point_at_url, stack_settings_values
from tools.offline.mockgraph import StackFileError

SEARCH_PASSWORD_ENV = "DSAAS_LDAP_SEARCH_PASSWORD"
USER_PASSWORD_ENV = "DSAAS_LDAP_USER_PASSWORD"
CONNECT_TIMEOUT_S = 5.0
SETTING = "dsaas:hub.ldap"
# Failures that say "this user may not log in" (exit 1), not "the settings are broken" (exit 2).
REFUSAL_STEPS = frozenset({"name", "lookup", "user-bind", "account"})


@dataclass(frozen=True)
class Finding:
    ok: bool
    step: str
    detail: str
    fix: str = ""


@dataclass
class DirectorySurvey:
    """What the directory offers, as far as the reading account may see."""

    schema: frozenset[str] | None = None
    group_classes: dict[str, list[str]] = field(default_factory=dict)
    group_attributes: dict[str, list[str]] = field(default_factory=dict)
    user_member_of: list[str] | None = None
    nested_groups: bool = False
    unreadable_groups: list[str] = field(default_factory=list)
    """Configured groups the reading account could not read: missing, misspelt, or hidden from it."""

    def has(self, attribute: str) -> bool | None:
        return None if self.schema is None else attribute.lower() in self.schema

    def recommendation(self) -> tuple[str, str]:
        """(membership value, why) that fits this directory."""
        if self.user_member_of is not None and self.has("memberOf") is not False:
            if self.nested_groups:
                return "nestedMemberOf", "users carry memberOf and an allowed group contains groups"
            return "memberOf", "users carry memberOf (one read per login, no group searches)"
        kinds = sorted({attr for attrs in self.group_attributes.values() for attr in attrs})
        if kinds:
            return "auto", f"the groups list members in {', '.join(kinds)}; auto checks each group by its own class"
        return "auto", "no group could be read; auto reads each group's class at login"


@dataclass
class Report:
    username: str
    findings: list[Finding] = field(default_factory=list)
    survey: DirectorySurvey | None = None
    user_dn: str | None = None
    groups: list[str] = field(default_factory=list)
    allowed: bool | None = None
    admin: bool | None = None
    refusal: str = ""
    """Why the user is refused, when it is not "not a member": unknown user, wrong password, disabled, ..."""

    def refuse(self, why: str) -> None:
        self.allowed = self.admin = False
        self.refusal = why

    @property
    def broken(self) -> bool:
        """A failure of the settings or the directory, not a refusal of this user."""
        return any(not f.ok and f.step not in REFUSAL_STEPS for f in self.findings)

    def add(self, ok: bool, step: str, detail: str, fix: str = "") -> bool:
        self.findings.append(Finding(ok, step, detail, fix))
        return ok


@functools.cache
def hub_authenticator_class() -> Any:
    """The dsaas authenticator exactly as the hub gets it: the rendered extraConfig, executed."""
    namespace: dict[str, Any] = {"c": Config()}
    exec(compile(hub_render.render_authenticator_config(), "hub.extraConfig", "exec"), namespace)
    return namespace["c"].JupyterHub.authenticator_class


def hub_module() -> dict[str, Any]:
    """The namespace the authenticator was defined in (its exceptions and helpers)."""
    globals_: dict[str, Any] = hub_authenticator_class().login.__globals__
    return globals_


def authenticator_for(settings: Settings, search_password: str | None, ca_file: Path | None) -> Any:
    """The hub's authenticator, configured by the rendered values, with the CA at a local path."""
    config = hub_render.render_hub_config(settings, hub_render.HubSecrets("", "", search_password))
    ldap = dict(config["LDAPAuthenticator"])
    if "tls_kwargs" in ldap:
        local_ca = ca_file or (project_file(settings.hub.ldap.ca_file) if settings.hub.ldap.ca_file else None)
        if local_ca is not None:
            ldap["tls_kwargs"] = {**ldap["tls_kwargs"], "ca_certs_file": str(local_ca)}
    sections = {**config, "LDAPAuthenticator": ldap}
    return hub_authenticator_class()(config=Config({k: sections[k] for k in sections if k != "KubeSpawner"}))


def _explain_tls(text: str, settings: Settings) -> tuple[str, str]:
    ldap = settings.hub.ldap
    if "Hostname mismatch" in text or "doesn't match" in text:
        return (
            f"the directory's certificate does not name {ldap.server_address}",
            f"set {SETTING}.serverAddress to a name the certificate carries",
        )
    if "CERTIFICATE_VERIFY_FAILED" in text:
        where = f"the CA in {ldap.ca_file}" if ldap.ca_file else "the system CA bundle"
        return (
            f"the directory's certificate is not signed by {where}",
            f"set {SETTING}.caFile to the PEM of the CA that signed the directory's certificate",
        )
    if ldap.tls_strategy is LdapTlsStrategy.BEFORE_BIND:
        return (
            f"StartTLS failed on port {ldap.port} ({text})",
            "is this the LDAPS port? Use tlsStrategy on_connect for LDAPS (636), or before_bind on the LDAP "
            "port (389) of a directory that offers StartTLS",
        )
    return (
        f"no TLS handshake on port {ldap.port} ({text})",
        "is this the plain LDAP port? Use tlsStrategy before_bind there, or on_connect with the LDAPS port (636)",
    )


def survey_directory(authenticator: Any, conn: ldap3.Connection, user_dn: str | None) -> DirectorySurvey:
    """Read, without changing anything, what the directory offers for group membership."""
    survey = DirectorySurvey(schema=authenticator.directory_schema(conn))
    member_classes = hub_module()["GROUP_CLASS_ATTRIBUTE"]

    def read(dn: str, attributes: list[str]) -> dict[str, Any] | None:
        conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=attributes)
        entries = hub_module()["result_entries"](conn)
        return entries[0]["attributes"] if entries else None

    def is_group(classes: list[Any]) -> bool:
        return any(str(c).lower() in member_classes for c in classes)

    for group in authenticator.configured_groups:
        entry = read(group, ["objectClass", "member"])
        if entry is None:
            survey.unreadable_groups.append(group)
            continue
        classes = [str(c) for c in entry.get("objectClass", [])]
        survey.group_classes[group] = classes
        survey.group_attributes[group] = sorted(
            {member_classes[c.lower()] for c in classes if c.lower() in member_classes}
        )
        for member in entry.get("member") or []:
            found = read(str(member), ["objectClass"])
            if found is not None and is_group(found.get("objectClass", [])):
                survey.nested_groups = True
    if user_dn and survey.has("memberOf") is not False:
        entry = read(user_dn, ["memberOf"])
        if entry is not None and "memberOf" in entry:
            survey.user_member_of = [str(v) for v in entry["memberOf"]]
    return survey


def _judge_membership(report: Report, settings: Settings, survey: DirectorySurvey) -> None:
    """Does the configured membership fit what the directory offers? Record it, with the recommendation."""
    configured = settings.hub.ldap.membership
    recommended, why = survey.recommendation()
    needs = {
        GroupMembership.MEMBER: "member",
        GroupMembership.UNIQUE_MEMBER: "uniqueMember",
        GroupMembership.MEMBER_UID: "memberUid",
        GroupMembership.MEMBER_OF: "memberOf",
        GroupMembership.NESTED_MEMBER_OF: "memberOf",
    }
    schema_text = "unreadable" if survey.schema is None else f"{len(survey.schema)} attribute types"
    offered = "; ".join(
        [f"{group.split(',', 1)[0]}: {'/'.join(classes)}" for group, classes in survey.group_classes.items()]
        + [f"{group.split(',', 1)[0]}: UNREADABLE" for group in survey.unreadable_groups]
    )
    report.add(
        True,
        "directory",
        f"schema {schema_text}; memberUid {_yes(survey.has('memberUid'))}, memberOf {_yes(survey.has('memberOf'))}; "
        f"groups {offered or 'unreadable'}; users carry memberOf: {_yes(survey.user_member_of is not None)}",
    )
    attribute = needs.get(configured)
    if attribute is not None and survey.has(attribute) is False:
        report.add(
            False,
            "membership",
            f"{SETTING}.membership is {configured.value}, but the directory's schema has no {attribute} attribute",
            f"set {SETTING}.membership to {recommended} ({why})",
        )
        return
    unfit = [
        group
        for group, attrs in survey.group_attributes.items()
        if attribute in ("member", "uniqueMember", "memberUid") and attribute not in attrs
    ]
    if unfit:
        report.add(
            False,
            "membership",
            f"{SETTING}.membership is {configured.value}, but {', '.join(unfit)} list members in "
            f"{'/'.join(sorted({a for g in unfit for a in survey.group_attributes[g]})) or 'no known attribute'}",
            f"set {SETTING}.membership to {recommended} ({why})",
        )
        return
    if configured.value in ("memberOf", "nestedMemberOf") and survey.user_member_of is None:
        report.add(
            False,
            "membership",
            f"{SETTING}.membership is {configured.value}, but the user's entry carries no memberOf "
            "(OpenLDAP needs the memberof overlay)",
            f"set {SETTING}.membership to auto, or enable memberOf in the directory",
        )
        return
    note = "" if configured.value == recommended else f" (would also fit: {recommended}: {why})"
    report.add(True, "membership", f"{configured.value} fits this directory{note}")


def _bind_result(authenticator: Any, user_dn: str, password: str) -> int | None:
    """The LDAP result code of binding `user_dn` with `password` on a new connection (None: no connection)."""
    try:
        conn = authenticator._open()
    except hub_module()["DirectoryUnusableError"]:
        return None
    try:
        conn.rebind(user_dn, password, read_server_info=False)
        return int((conn.result or {}).get("result", -1))
    except (LDAPException, OSError):
        return None
    finally:
        conn.unbind()


def tls_required_explanation(text: str) -> str | None:
    """ "this server requires TLS" when an answer names strongerAuthRequired (8) or confidentialityRequired (13)."""
    lowered = text.lower()
    for code, name in hub_module()["TLS_REQUIRED_RESULTS"].items():
        if name.lower() in lowered or f"result {code}" in lowered:
            return (
                f"this server requires TLS ({name}, result {code}): it refuses passwords sent in clear. Fix: set "
                f"{SETTING}.tlsStrategy to before_bind (StartTLS) or on_connect (LDAPS, port 636)"
            )
    return None


def _report_unreadable_groups(report: Report, authenticator: Any, groups: list[str]) -> None:
    """A configured group the hub can't read is a settings error (exit 2), whatever the membership strategy."""
    reader = f"the search account {authenticator.search_user}" if authenticator.search_user else "the user's own login"
    for group in groups:
        key = authenticator._group_setting(group)
        report.add(
            False,
            "group-dns",
            f"{key} names {group!r}, which does not exist or {reader} may not read",
            f"correct the DN in {key} (copy it from the directory), or grant {reader} read access to it",
        )


def _yes(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def note_primary_groups(report: Report, authenticator: Any, search: ldap3.Connection, verdict: Any) -> None:
    """Say which groups admit the user only as their primary group (AD lists those in no memberOf)."""
    entry = authenticator.read_user_entry(search, verdict.user_dn) or {}
    for group in authenticator.primary_groups(search, entry):
        report.add(
            True,
            "primary-group",
            f"{verdict.username}'s primary group (primaryGroupID) is {group}: that group counts through the "
            "user's primaryGroupID and its objectSid, not through memberOf",
        )


def bind_refusal_advice(username: str, reason: str, refusal: str) -> tuple[str, str]:
    """(detail, fix) for a refused user bind, by the reason the directory gave (Active Directory's data codes).

    A locked account is never told to retry: each wrong password counts against the lockout policy.
    """
    module = hub_module()
    if refusal == module["REFUSAL_LOCKED"]:
        return (
            f"the directory says {username}'s account is locked out ({reason}); the password was not checked",
            "do not retry the password (each try extends the lockout); the directory's administrators unlock it",
        )
    if refusal in module["PASSWORD_WAS_RIGHT"]:
        fixes = {
            module["REFUSAL_PASSWORD_EXPIRED"]: f"{username} changes the password (see {SETTING}.passwordChangeUrl)",
            module["REFUSAL_MUST_CHANGE"]: f"{username} changes the password (see {SETTING}.passwordChangeUrl)",
        }
        return (
            f"the password is right, but the directory refuses {username}: {reason}",
            fixes.get(refusal, "ask the directory's administrators"),
        )
    if refusal and refusal != module["REFUSAL_INVALID"]:
        # e.g. 389's "Account inactivated": a retried password would not help
        return f"the directory refused {username}'s login: {reason}", "ask the directory's administrators"
    return f"the directory refused {username}'s password ({reason})", "try the password again"


def check_login(
    settings: Settings,
    username: str,
    search_password: str | None = None,
    user_password: str | None = None,
    ca_file: Path | None = None,
    ldap_url: str | None = None,
) -> Report:
    """Walk through what the hub does at login, stopping at the first step that cannot work (`ldap_url`: the
    --ldap-url in use instead of the stack's server, so a failure to connect names the flag)."""
    report = Report(username)
    try:
        _check(report, settings, username, search_password, user_password, ca_file, ldap_url)
    except Exception as error:  # the pre-flight must explain, never end in a traceback
        report.add(
            False,
            "unexpected",
            f"{type(error).__name__}: {error}",
            "this is a bug in the check or an answer it does not know; run again with the directory's logs at hand",
        )
    return report


def _check(
    report: Report,
    settings: Settings,
    typed: str,
    search_password: str | None,
    user_password: str | None,
    ca_file: Path | None,
    ldap_url: str | None = None,
) -> None:
    ldap = settings.hub.ldap
    module = hub_module()
    configuration_error, unusable = module["ConfigurationError"], module["DirectoryUnusableError"]
    authenticator = authenticator_for(settings, search_password, ca_file)

    # 0. The name, as the hub reads what people type.
    username, why = authenticator.login_name(typed)
    if username is None and search_password and module["principal_name"](typed) and authenticator.upn_lookup:
        with contextlib.suppress(configuration_error, unusable):  # the steps below explain those
            username = authenticator.name_from_principal(typed)
        if username is not None:
            report.add(True, "name", f"{typed.strip()!r} is the user principal name of the hub user {username!r}")
    if username is None:
        # Only a domain is a setting; the name rule is the hub's own (see the authenticator's LOGIN_NAME).
        fix = (
            "type the login name (sAMAccountName or uid) as the directory holds it"
            if why.startswith("Illegal characters")
            else f"check {SETTING}.domains"
        )
        report.add(False, "name", f"{typed!r} is not a name the hub accepts: {why}", fix)
        report.refuse(why)
        return
    report.username = username

    # 1. The network.
    try:
        with socket.create_connection((ldap.server_address, ldap.port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        report.add(
            False,
            "connect",
            f"{ldap.server_address}:{ldap.port} does not answer ({error.strerror or error})",
            f"check {f'--ldap-url {ldap_url}' if ldap_url else f'{SETTING}.serverAddress/serverPort'}, that the "
            "directory runs, and the firewall",
        )
        return
    report.add(True, "connect", f"{ldap.server_address}:{ldap.port} answers")

    # 2. TLS, exactly as the hub sets it up.
    try:
        probe = authenticator._open()
    except unusable as error:
        detail, fix = _explain_tls(str(error), settings)
        report.add(False, "tls", detail, fix)
        return
    probe.unbind()
    if ldap.tls_strategy is LdapTlsStrategy.INSECURE:
        report.add(True, "tls", "no TLS (insecure): passwords would cross the network in clear")
    else:
        report.add(True, "tls", f"{ldap.tls_strategy.value}: the certificate is trusted and names the server")

    # 3. The search account, if the stack has one.
    search: ldap3.Connection | None = None
    if ldap.search_user:
        if not search_password:
            report.add(False, "search-bind", f"no password for {ldap.search_user}", f"export {SEARCH_PASSWORD_ENV}")
            return
        try:
            search = authenticator._open_search_connection()
        except configuration_error as error:
            tls = tls_required_explanation(str(error))
            if tls:
                report.add(False, "search-bind", tls.split(". Fix: ")[0], tls.split(". Fix: ")[1])
                return
            report.add(
                False,
                "search-bind",
                f"the directory refused {ldap.search_user} with the given password ({error})",
                f"check {SETTING}.searchUser (a full DN) and the secret dsaas:ldapSearchPassword",
            )
            return
        report.add(True, "search-bind", f"bound as {ldap.search_user}")
        if not _configured_dns_exist(report, authenticator, search):
            search.unbind()
            return

    try:
        # 4. Who is the user?
        if ldap.lookup_dn:
            assert search is not None
            found = authenticator.lookup_user(search, username)
            if found is None:
                report.add(
                    False,
                    "lookup",
                    f"no unique entry with {ldap.user_attribute}={username} under {ldap.user_search_base}",
                    f"check the name, {SETTING}.userSearchBase and {SETTING}.userAttribute",
                )
                report.refuse(f"unknown user: no {ldap.user_attribute}={username} under {ldap.user_search_base}")
                return
            report.user_dn = found[0]
            report.add(True, "lookup", f"{username} is {report.user_dn}")
        else:
            report.user_dn = ldap.bind_dn_templates[0].format(username=escape_rdn(username))
            report.add(True, "lookup", f"{username} binds as {report.user_dn} (first template)")

        # 5. What the directory offers, read by the search account (or, without one, by the user).
        reader = search
        if reader is None and user_password:
            reader = authenticator._open()
            if not reader.rebind(report.user_dn, user_password, read_server_info=False):
                reader.unbind()
                reader = None
        if reader is not None:
            report.survey = survey_directory(authenticator, reader, report.user_dn)
            _judge_membership(report, settings, report.survey)
            if reader is not search:
                reader.unbind()
            if report.survey.unreadable_groups:
                _report_unreadable_groups(report, authenticator, report.survey.unreadable_groups)
                return

        # 6. The decision: the real login with the user's password, or the session re-check.
        if user_password is not None:
            verdict = authenticator.login(typed, user_password)
            wrong_password = verdict.user_dn is None and verdict.refusal in ("", module["REFUSAL_INVALID"])
            # The hub tells a disabled AD account's state only to its right password; the operator is told
            # either way, from the entry the search account reads (the hub's own refresh check).
            state = authenticator.recheck(username, report.user_dn) if wrong_password and report.user_dn else None
            if state is not None and state.reason and state.user_dn:
                report.add(True, "user-bind", f"{username}'s password: refused as well ({verdict.reason})")
                verdict = state
            elif verdict.user_dn is None:
                # the hub's own verdict says so (no second bind: on AD each one counts towards a lockout)
                tls = verdict.refusal == module["REFUSAL_TLS_REQUIRED"] and tls_required_explanation(verdict.reason)
                if tls:
                    report.add(False, "tls", tls.split(". Fix: ")[0], tls.split(". Fix: ")[1])
                    return
                detail, fix = bind_refusal_advice(username, verdict.reason, verdict.refusal)
                report.add(False, "user-bind", detail, fix)
                report.refuse(f"wrong password ({verdict.reason})" if wrong_password else verdict.reason)
                return
            elif verdict.reason:
                # The hub refuses an IdM account by its state before it binds (and a disabled one the directory
                # lets bind without saying which password it took): the password is checked here on its own,
                # so the report never calls a password it did not try "accepted".
                code = _bind_result(authenticator, verdict.user_dn, user_password)
                said = {0: "accepted", None: "not checked (no connection)"}.get(
                    code, f"refused as well (result {code})"
                )
                report.add(True, "user-bind", f"{username}'s password: {said}")
            else:
                report.add(True, "user-bind", f"{username}'s password is accepted")
        elif search is not None:
            verdict = authenticator.recheck(username, report.user_dn)
        else:
            report.add(
                False,
                "groups",
                "without a search account the groups can only be read with the user's own login",
                f"export {USER_PASSWORD_ENV} (the user's password) and run again",
            )
            return
        if search is not None and authenticator.active_directory and verdict.user_dn and verdict.groups:
            note_primary_groups(report, authenticator, search, verdict)
    except configuration_error as error:
        report.add(False, "settings", str(error).split(". Fix: ")[0], str(error).partition(". Fix: ")[2])
        return
    except (unusable, LDAPException, OSError) as error:
        report.add(False, "directory", f"the directory stopped answering: {error}", "check it and run again")
        return
    finally:
        if search is not None:
            search.unbind()
        authenticator.close_connections()
    if verdict.reason and verdict.user_dn is not None:
        report.add(False, "account", f"{username}: {verdict.reason}", "ask the directory's administrators")
        report.refuse(verdict.reason)
        return
    report.groups = list(verdict.groups)
    report.allowed = verdict.allowed
    report.admin = verdict.admin


def _configured_dns_exist(report: Report, authenticator: Any, conn: ldap3.Connection) -> bool:
    """The bases the settings name (user search base, template parents) are read themselves; one finding per
    missing one. The groups are the survey's (step "group-dns")."""
    problems = authenticator.check_configured_dns(conn, groups=False)
    for problem in problems:
        detail, _, fix = str(problem).partition(". Fix: ")
        report.add(False, "settings", detail, fix.rstrip("."))
    if not problems:
        report.add(True, "settings", f"{len(authenticator.configured_dns(groups=False))} configured base DNs exist")
    return not problems


def render_report(report: Report, settings: Settings) -> str:
    lines = [
        f"LDAP pre-flight for {report.username!r} against {settings.hub.ldap.server_address}:{settings.hub.ldap.port}"
    ]
    for finding in report.findings:
        lines.append(f"  {'ok ' if finding.ok else 'FAIL'}  {finding.step:<12} {finding.detail}")
        if finding.fix:
            lines.append(f"        fix: {finding.fix}")
    if report.survey is not None:
        recommended, why = report.survey.recommendation()
        lines.append(f"Recommended {SETTING}.membership: {recommended} ({why}).")
    if report.allowed is None:
        lines.append("Decision: unknown — fix the first failure above.")
        return "\n".join(lines)
    allowed_groups = settings.hub.ldap.allowed_groups + settings.hub.ldap.admin_groups
    if report.allowed:
        lines.append(f"Decision: ALLOWED — member of {', '.join(report.groups)}.")
    elif report.refusal:
        lines.append(f"Decision: REFUSED — {report.refusal}.")
    else:
        lines.append(f"Decision: REFUSED — not a member of any allowed group ({'; '.join(allowed_groups)}).")
    admins = "; ".join(settings.hub.ldap.admin_groups) or "no admin groups configured"
    lines.append(f"Admin: {'yes' if report.admin else 'no'} (admin groups: {admins}).")
    return "\n".join(lines)


def exit_status(report: Report) -> int:
    """The command's exit status: 0 allowed, 1 refused, 2 broken (or undecided: fix the first failure)."""
    if report.broken or report.allowed is None:
        return 2
    return 0 if report.allowed else 1


def check_ca_flag(ca_file: Path) -> None:
    """`--ca-file` names a readable PEM CA bundle, or `ValueError` saying so (not "a bug in the check")."""
    from cryptography import x509

    fix = "Fix: give --ca-file the PEM CA bundle that signed the directory's certificate."
    try:
        if not ca_file.is_file() or ca_file.stat().st_size > MAX_PROJECT_FILE_BYTES:
            raise ValueError(f"--ca-file {ca_file} is not a file (or is larger than any CA bundle). {fix}")
        x509.load_pem_x509_certificates(ca_file.read_bytes())
    except OSError as error:
        raise ValueError(f"--ca-file {ca_file} cannot be read ({error.strerror}). {fix}") from None
    except ValueError as error:
        if str(error).startswith("--ca-file"):
            raise
        raise ValueError(f"--ca-file {ca_file} holds no readable PEM certificate. {fix}") from None


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
        if args.ldap_url is not None:  # `--ldap-url ''` is a mistake to report, not a flag to ignore
            values = point_at_url(values, args.ldap_url)
        settings = parse_settings(values)
        if args.ca_file is not None:
            check_ca_flag(args.ca_file)
    except (SettingsError, StackFileError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = check_login(
        settings,
        args.username,
        search_password=os.environ.get(SEARCH_PASSWORD_ENV),
        user_password=os.environ.get(USER_PASSWORD_ENV),
        ca_file=args.ca_file,
        ldap_url=args.ldap_url,
    )
    print(render_report(report, settings))
    return exit_status(report)


if __name__ == "__main__":
    sys.exit(main())
