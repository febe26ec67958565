"""dsaas hub authenticator: LDAP and Active Directory logins that fit the directory and follow it.

Shipped verbatim as the z2jh value `hub.extraConfig`, so it runs inside the hub image of z2jh 4.4.0
(JupyterHub 5.5, ldapauthenticator 2.0.2, ldap3 2.9.1) and may import nothing else; the chart values
add the line that makes `DsaasLDAPAuthenticator` the hub's authenticator. It keeps ldapauthenticator's
settings (server, TLS, DN templates, lookup, allowed groups) and replaces what does not fit a real site:

1. Group membership fits the directory (`membership`): `member` (groupOfNames, AD groups),
   `uniqueMember` (groupOfUniqueNames), `memberUid` (posixGroup), `memberOf` on the user's own entry,
   `nestedMemberOf` (memberOf followed upwards through nested groups, AD and OpenLDAP's memberof
   overlay), and `auto`: each allowed group is read once and checked by the attribute its own object
   class defines. No filter ever names an attribute the directory may lack; ldapauthenticator's default
   names `memberUid`, which a directory without the nis schema rejects for everyone.
2. Errors say what they are: a setting the directory refuses (a group or base that isn't there, an
   attribute its schema lacks, a search account that can't read) is logged as a configuration error
   that names the stack setting and the fix (the user gets the normal refusal); only an unreachable
   server or an untrusted certificate makes "the directory unusable", and then the user gets a page
   that says the directory is unavailable (HTTP 503), never "Invalid username or password".
3. Access follows the directory: `refresh_user` re-reads membership and admin through the search
   account every `auth_refresh_age`; a removed member is sent back to the login page, a removed
   admin loses admin. Without a search account nothing can be re-read, so a session ends after
   `auth_refresh_age` and the next login re-checks (the safe choice).
4. Logins cost what a login must: connections are opened once and reused (a pool per role, one thread
   per connection at a time), the server schema is never downloaded per connection (ldap3 does it on
   every bind unless told not to), TLS stays on. Directories drop connections (restarts, idle
   timeouts): a dropped pooled connection retires every connection as old as it and the login runs
   again on a new one, so no valid login is refused once the server answers; each connection has its
   own ldap3 `Server`, so one failed connect never blocks the next for ldap3's availability window.
   The blocking ldap3 calls run on worker threads, so a burst of logins never stalls the hub's event
   loop.
5. Names as people type them: lower-cased, and `DOMAIN\\name` or `name@domain.example` become `name`
   for the domains the stack lists; any other domain is refused with a logged reason.
6. Primary groups (AD): a user's primary group (`primaryGroupID`, usually Domain Users) is in neither
   `member` nor `memberOf`; an allowed or admin group whose `objectSid` is the user's domain SID plus that
   RID counts as the user's group (directly; a primary group nested inside an allowed group does not).
7. At refresh, access follows AD's account state, not only the disabled bit: an expired account
   (accountExpires), a locked one (msDS-User-Account-Control-Computed's lockout bit where the DC offers
   it, else lockoutTime), a password that must be changed (pwdLastSet 0) or has expired (the computed bit).
8. Login names: letters of any script, digits, `.`, `_` and `-`, beginning with a letter or digit
   (`7of9`, `jürgen` are names; ldapauthenticator's `^[a-z][.a-z0-9_-]*$` refused them with a fix no stack
   setting offers). In the AD preset a typed `x@y` whose domain is not listed, or that names no
   sAMAccountName, is looked up as a userPrincipalName; the hub user is still the sAMAccountName.
9. Active Directory's reasons: a refused bind's `data <code>` (expired or must-change password, locked,
   disabled, expired account, not permitted now/here) is logged as what it is, and the login page says
   what to do (where to change the password: `password_change_url`; a locked account: no retry).
10. IdM / 389 Directory Server accounts (issue 20): a lock (`nsAccountLock: TRUE`) and an expiry
    (`krbPrincipalExpiration`, `krbPasswordExpiration`, `passwordExpirationTime`, where the entry has them)
    refuse a login and end a session like AD's disabled bit; a bind 389 refuses as "Account inactivated"
    (53) or with the password-expired or ppolicy control keeps that reason, in the log and on the page.
11. Every configured DN (user search base, groups, the parents of the DN templates) is read at hub start
    and before the first login: 389 answers a search under a base that does not exist with success and
    no entries, which would look like "no such user" or "not a member" forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ldap3
from ldap3.core.exceptions import (
    LDAPBindError,
    LDAPCommunicationError,
    LDAPException,
    LDAPResponseTimeoutError,
)
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn
from ldapauthenticator.ldapauthenticator import LDAPAuthenticator, TlsStrategy
from tornado import web  # JupyterHub runs on tornado: a 403 here re-renders its login form with the message
from traitlets import Bool, Int, List, Unicode, validate

T = TypeVar("T")

MEMBERSHIP_STRATEGIES = ("auto", "member", "uniqueMember", "memberUid", "memberOf", "nestedMemberOf")
# Which membership attribute each group object class defines (RFC 4519, RFC 2307, AD's `group`).
GROUP_CLASS_ATTRIBUTE = {
    "groupofnames": "member",
    "group": "member",
    "groupofuniquenames": "uniqueMember",
    "posixgroup": "memberUid",
}
# The attribute a strategy's filter or read names, for the schema check.
STRATEGY_ATTRIBUTE = {
    "member": "member",
    "uniqueMember": "uniqueMember",
    "memberUid": "memberUid",
    "memberOf": "memberOf",
    "nestedMemberOf": "memberOf",
}
# LDAP result codes (RFC 4511) that mean "this configuration does not fit the directory".
RESULT_CODE_MEANING = {
    16: "noSuchAttribute",
    17: "undefinedAttributeType",
    18: "inappropriateMatching",
    32: "noSuchObject",
    34: "invalidDNSyntax",
    50: "insufficientAccessRights",
    87: "filterError",
}
INVALID_CREDENTIALS = 49
AD_ACCOUNT_DISABLED = 0x2
NESTING_DEPTH_LIMIT = 16
NESTING_GROUPS_LIMIT = 2000
SCHEMA_ATTRIBUTE_NAMES = re.compile(r"NAME\s+(?:'([^']+)'|\(([^)]*)\))")
LOGIN_WORKERS = 16
CONNECT_TIMEOUT_S = 5
HTTP_SERVICE_UNAVAILABLE = 503
DIRECTORY_UNAVAILABLE_MESSAGE = (
    "The sign-in directory (LDAP) cannot be reached right now, so your password could not be checked. "
    "Please try again in a few minutes; if this persists, tell the hub's administrators."
)
RECEIVE_TIMEOUT_S = 10

_LOGIN_THREADS = ThreadPoolExecutor(max_workers=LOGIN_WORKERS, thread_name_prefix="ldap-login")

# Active Directory's sub-code in a refused bind's message ("... AcceptSecurityContext error, data 775, v1db1"),
# Microsoft's "LDAP bind error codes" (the Win32 errors ERROR_LOGON_FAILURE 0x52e ... ERROR_ACCOUNT_LOCKED_OUT
# 0x775). AD sends 530-533, 701 and 773 only when the password was right; 52e and 775 say nothing about it.
AD_BIND_DATA = re.compile(r"\bdata ([0-9a-fA-F]{3,8})\b")
REFUSAL_INVALID = "invalid-credentials"
REFUSAL_NOT_NOW = "not-permitted-now"
REFUSAL_NOT_HERE = "not-permitted-here"
REFUSAL_PASSWORD_EXPIRED = "password-expired"
REFUSAL_DISABLED = "disabled"
REFUSAL_ACCOUNT_EXPIRED = "account-expired"
REFUSAL_MUST_CHANGE = "must-change-password"
REFUSAL_LOCKED = "locked"
REFUSAL_INACTIVATED = "inactivated"  # 389's 53 "Account inactivated": checked before the password
REFUSAL_TLS_REQUIRED = "tls-required"
# Result codes with which a server refuses credentials sent without TLS (RFC 4511 4.1.9, RFC 4513 5.1.2).
TLS_REQUIRED_RESULTS = {8: "strongerAuthRequired", 13: "confidentialityRequired"}
AD_BIND_REFUSALS: dict[str, tuple[str, str]] = {
    "52e": (REFUSAL_INVALID, "invalid credentials"),
    "530": (REFUSAL_NOT_NOW, "the account may not log in at this time (logon hours)"),
    "531": (REFUSAL_NOT_HERE, "the account may not log in from this workstation"),
    "532": (REFUSAL_PASSWORD_EXPIRED, "the password has expired"),
    "533": (REFUSAL_DISABLED, "the account is disabled"),
    "701": (REFUSAL_ACCOUNT_EXPIRED, "the account has expired (accountExpires)"),
    "773": (REFUSAL_MUST_CHANGE, "the user must change the password before logging in (pwdLastSet 0)"),
    "775": (REFUSAL_LOCKED, "the account is locked out"),
}
# Refusals that mean the password was right: the account's state, not a typo, blocks the login.
PASSWORD_WAS_RIGHT = frozenset(
    {
        REFUSAL_NOT_NOW,
        REFUSAL_NOT_HERE,
        REFUSAL_PASSWORD_EXPIRED,
        REFUSAL_DISABLED,
        REFUSAL_ACCOUNT_EXPIRED,
        REFUSAL_MUST_CHANGE,
    }
)


def ad_bind_refusal(result: dict[str, Any] | None) -> tuple[str, str] | None:
    """(kind, reason) from a refused bind's result when Active Directory says why; None otherwise."""
    if not result or result.get("result") != INVALID_CREDENTIALS:
        return None
    match = AD_BIND_DATA.search(str(result.get("message") or ""))
    if match is None:
        return None
    code = match.group(1).lower()
    return AD_BIND_REFUSALS.get(code, (REFUSAL_INVALID, f"invalid credentials (directory code data {code})"))


# userAccountControl / msDS-User-Account-Control-Computed bits (MS-ADTS 2.2.16).
UF_LOCKOUT = 0x10
UF_PASSWORD_EXPIRED = 0x800000
# accountExpires values that mean "never" (MS-ADA1).
ACCOUNT_NEVER_EXPIRES = (0, 0x7FFFFFFFFFFFFFFF)
FILETIME_UNIX_EPOCH = 116444736000000000
# Read with a base search: AD computes msDS-User-Account-Control-Computed for base searches only.
AD_STATE_ATTRIBUTES = ("accountExpires", "lockoutTime", "pwdLastSet", "msDS-User-Account-Control-Computed")


def _int_value(attributes: dict[str, Any], name: str) -> int | None:
    value = _first(attributes.get(name))
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def ad_account_refusal(attributes: dict[str, Any], now_unix: float) -> tuple[str, str] | None:
    """(kind, reason) when an AD account's state ends its access now; None when it may continue.

    The computed attribute is the DC's own verdict on lockout (a lockout ends after lockoutDuration while
    lockoutTime keeps its value until the next good bind): lockoutTime counts only where it is not offered.
    """
    flags = _int_value(attributes, "userAccountControl")
    if flags is not None and flags & AD_ACCOUNT_DISABLED:
        return REFUSAL_DISABLED, "the account is disabled"
    expires = _int_value(attributes, "accountExpires")
    now = int(now_unix * 10_000_000) + FILETIME_UNIX_EPOCH
    if expires is not None and expires not in ACCOUNT_NEVER_EXPIRES and expires <= now:
        return REFUSAL_ACCOUNT_EXPIRED, "the account has expired (accountExpires)"
    computed = _int_value(attributes, "msDS-User-Account-Control-Computed")
    locked = computed & UF_LOCKOUT if computed is not None else (_int_value(attributes, "lockoutTime") or 0) > 0
    if locked:
        return REFUSAL_LOCKED, "the account is locked out"
    if _int_value(attributes, "pwdLastSet") == 0:
        return REFUSAL_MUST_CHANGE, "the user must change the password (pwdLastSet 0)"
    if computed is not None and computed & UF_PASSWORD_EXPIRED:
        return REFUSAL_PASSWORD_EXPIRED, "the password has expired"
    return None


# A hub user name: letters (any script), digits, ".", "_", "-"; first a letter or digit. Lower-cased before.
LOGIN_NAME = re.compile(r"[^\W_][\w.-]{0,63}")
LOGIN_NAME_RULE = (
    "a login name holds letters (any script), digits, '.', '_' and '-', begins with a letter or digit and "
    "has at most 64 characters"
)


def login_name_problem(name: str) -> str | None:
    """Why `name` (lower-cased, domain removed) cannot be a hub user; None if it can."""
    if LOGIN_NAME.fullmatch(name):
        return None
    return f"Illegal characters in username {name!r}: {LOGIN_NAME_RULE}"


def principal_name(typed: str) -> str | None:
    """`x@y` as a userPrincipalName to look up (one @, both sides, no backslash); None otherwise."""
    text = (typed or "").strip()
    local, at, domain = text.partition("@")
    if not at or not local or not domain or "@" in domain or "\\" in text or len(text) > 256:
        return None
    return text


def sid_string(raw: bytes) -> str:
    """A binary SID (MS-DTYP 2.4.2.2: revision, count, 48-bit big-endian authority, little-endian
    32-bit sub-authorities) as S-1-5-21-...; ValueError if it is not one."""
    if len(raw) < 8 or raw[0] != 1 or len(raw) != 8 + 4 * raw[1]:
        raise ValueError(f"not a SID: {raw!r}")
    authority = int.from_bytes(raw[2:8], "big")
    subs = [int.from_bytes(raw[8 + 4 * i : 12 + 4 * i], "little") for i in range(raw[1])]
    return "-".join(["S", str(raw[0]), str(authority), *map(str, subs)])


def primary_group_sid(user_sid: bytes, primary_group_id: Any) -> str | None:
    """The SID of the user's primary group: the user's domain SID with the RID `primaryGroupID`."""
    try:
        domain = sid_string(user_sid).rpartition("-")[0]
        return f"{domain}-{int(primary_group_id)}"
    except (TypeError, ValueError):
        return None


def refusal_page_message(kind: str, password_change_url: str) -> str | None:
    """What the login page tells the user for a refusal of this kind; None: the hub's usual message.

    Never "try again" for a locked account: each retry counts against the lockout policy.
    """
    where = (
        f"Change it at {password_change_url}"
        if password_change_url
        else "Change it the way your organisation changes passwords (for example Ctrl+Alt+Del on a Windows PC)"
    )
    messages = {
        REFUSAL_PASSWORD_EXPIRED: f"Your password has expired. {where}, then sign in with the new one.",
        REFUSAL_MUST_CHANGE: f"Your password must be changed before you sign in. {where}, "
        "then sign in with the new one.",
        REFUSAL_LOCKED: "Your account is locked after too many failed sign-ins. Further attempts keep it locked: "
        "ask your IT service desk to unlock it.",
        REFUSAL_ACCOUNT_EXPIRED: "Your account has expired. Ask your IT service desk to extend it.",
        REFUSAL_DISABLED: "Your account is disabled. Ask your IT service desk.",
        REFUSAL_INACTIVATED: "Your account is disabled. Ask your IT service desk.",
        REFUSAL_NOT_NOW: "Your account may not sign in at this time of day.",
        REFUSAL_NOT_HERE: "Your account may not sign in to this service.",
    }
    return messages.get(kind)


class DirectoryUnusableError(Exception):
    """The server can't be reached, or its TLS can't be trusted: nothing about the user is known."""


class ConfigurationError(Exception):
    """The directory answers, but a setting does not fit it. The message names the setting and the fix."""


def dn_key(dn: str) -> str:
    """A DN in a form two spellings of the same DN share (LDAP compares DNs case-insensitively)."""
    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except LDAPException:
        return dn.strip().lower()
    return ",".join(f"{attr.strip().lower()}={value.strip().lower()}" for attr, value, _sep in parts)


def schema_attribute_names(attribute_types: Sequence[str]) -> frozenset[str]:
    """Every name (and alias) of the subschema's `attributeTypes` values, lower-cased."""
    names: set[str] = set()
    for definition in attribute_types:
        for match in SCHEMA_ATTRIBUTE_NAMES.finditer(definition):
            single, several = match.groups()
            for name in [single] if single else re.findall(r"'([^']+)'", several or ""):
                names.add(name.lower())
    return frozenset(names)


# -- IdM / 389 account state (issue 20 item 8) --------------------------------------------------------
# Read with every user entry; a directory whose schema lacks them simply returns none (RFC 4511 4.5.1.8).
ACCOUNT_STATE_ATTRIBUTES = (
    "nsAccountLock",
    "krbPrincipalExpiration",
    "krbPasswordExpiration",
    "passwordExpirationTime",
)
UNWILLING_TO_PERFORM = 53
# Netscape/389 "password expired" response control (draft-vchu-ldap-pwd-policy), sent with result 49.
PASSWORD_EXPIRED_CONTROL = "2.16.840.1.113730.3.4.4"
# draft-behera-ldap-password-policy response control; its error [1] ENUMERATED: 0 passwordExpired,
# 1 accountLocked, 2 changeAfterReset.
PPOLICY_CONTROL = "1.3.6.1.4.1.42.2.27.8.5.1"
PPOLICY_ERRORS = {
    0: "the password has expired",
    1: "the account is locked in the directory",
    2: "the password was reset and must be changed first",
}
GENERALIZED_TIME = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})?(\d{2})?(\d{2})?(?:[.,]\d+)?(Z|[+-]\d{4})?$")


def generalized_time(value: Any) -> datetime.datetime | None:
    """An LDAP GeneralizedTime (`20200101000000Z`; ldap3 may already give a datetime) as aware UTC, or None."""
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    match = GENERALIZED_TIME.match(str(value or "").strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        moment = datetime.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=datetime.UTC,
        )
    except ValueError:
        return None
    if zone and zone != "Z":
        offset = datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
        moment = moment - offset if zone[0] == "+" else moment + offset
    return moment


def idm_account_refusal(attributes: dict[str, Any], now: datetime.datetime) -> tuple[str, str] | None:
    """(kind, reason) when an IdM / 389 account may not be used now (locked, expired, its password
    expired); None when it may."""

    def value(name: str) -> Any:
        for key, values in attributes.items():
            if key.lower() == name.lower():
                return _first(values)
        return None

    if str(value("nsAccountLock") or "").strip().lower() == "true":
        return REFUSAL_DISABLED, "the account is locked in the directory (nsAccountLock: TRUE)"
    for attribute, kind, what in (
        ("krbPrincipalExpiration", REFUSAL_ACCOUNT_EXPIRED, "the account expired"),
        ("krbPasswordExpiration", REFUSAL_PASSWORD_EXPIRED, "the password expired"),
        ("passwordExpirationTime", REFUSAL_PASSWORD_EXPIRED, "the password expired"),
    ):
        moment = generalized_time(value(attribute))
        if moment is not None and moment <= now:
            return (
                kind,
                f"{what} on {moment:%Y-%m-%d %H:%M} UTC ({attribute}); it must be renewed in the directory first",
            )
    return None


# ppolicy error → refusal kind; draft-behera-ldap-password-policy's `error` ENUMERATED.
PPOLICY_KINDS = {0: REFUSAL_PASSWORD_EXPIRED, 1: REFUSAL_LOCKED, 2: REFUSAL_MUST_CHANGE}


def idm_bind_refusal(result: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, reason) from a refused bind's result code and response controls (389, OpenLDAP's ppolicy);
    None for a plain invalid-credentials answer."""
    controls = result.get("controls") or {}
    message = str(result.get("message") or "").strip()
    if PPOLICY_CONTROL in controls:
        error = _ppolicy_error(controls[PPOLICY_CONTROL].get("value"))
        if error in PPOLICY_ERRORS:
            return PPOLICY_KINDS[error], f"{PPOLICY_ERRORS[error]} (password policy control)"
    if PASSWORD_EXPIRED_CONTROL in controls:
        return (
            REFUSAL_PASSWORD_EXPIRED,
            f"the password has expired (the directory says: {message or 'password expired'})",
        )
    if result.get("result") == UNWILLING_TO_PERFORM:
        return (
            REFUSAL_INACTIVATED,
            "the directory refuses this account, locked or inactivated "
            f"(53 unwillingToPerform: {message or 'no message'})",
        )
    return None


def bind_refusal(result: dict[str, Any] | None) -> tuple[str, str] | None:
    """(kind, reason) when a directory says why it refused a bind (AD's data code, 389's and ppolicy's
    controls, 53); None when it only says "invalid credentials"."""
    code = (result or {}).get("result")
    if code in TLS_REQUIRED_RESULTS:
        name = TLS_REQUIRED_RESULTS[code]
        return REFUSAL_TLS_REQUIRED, f"the server refuses passwords sent without TLS ({name}, result {code})"
    return ad_bind_refusal(result) or idm_bind_refusal(result or {})


def _ppolicy_error(value: Any) -> int | None:
    """The `error` field of a ppolicy response control value (BER: SEQUENCE { [0] warning?, [1] ENUM? })."""
    data = bytes(value or b"")
    if len(data) < 2 or data[0] != 0x30:
        return None
    index = 2
    while index + 1 < len(data):
        tag, length = data[index], data[index + 1]
        if tag == 0x81 and length == 1 and index + 2 < len(data):
            return data[index + 2]
        index += 2 + length
    return None


def dn_parent(dn: str) -> str:
    """`dn` without its first RDN ("" for a one-RDN DN); an escaped comma (`\\,`) does not end the RDN."""
    index = 0
    while index < len(dn):
        if dn[index] == "\\":
            index += 2
            continue
        if dn[index] == ",":
            return dn[index + 1 :].strip()
        index += 1
    return ""


@dataclass
class LoginVerdict:
    """What the directory says about one person."""

    username: str
    user_dn: str | None = None
    groups: list[str] = field(default_factory=list)
    """The configured group DNs (allowed and admin) the user belongs to, as configured."""
    allowed: bool = False
    admin: bool = False
    reason: str = ""
    refusal: str = ""
    """Why the directory refused the bind, where it says (an AD_BIND_REFUSALS kind)."""


class StaleConnectionError(Exception):
    """A pooled connection is no longer usable (closed, or its TLS is gone): never send a password on it."""


# What a dropped connection raises: the server restarted or closed it (idle timeout), the socket broke, or
# ldap3 gave up waiting. `LDAPBindError` is what ldap3's `rebind` turns a receive error on a closed socket
# into (with raise_exceptions=False a refused bind returns False and raises nothing).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    LDAPCommunicationError,
    LDAPBindError,
    LDAPResponseTimeoutError,
    StaleConnectionError,
    OSError,
)


class ConnectionPool:
    """Bound, open ldap3 connections of one role, reused across logins. Thread-safe.

    A connection is used by one thread at a time; `size` of them are kept between uses. Directories drop
    connections: a restart drops them all, an idle timeout (AD's `MaxConnIdleTime`, slapd's `idletimeout`)
    drops the quiet ones, and a pooled connection only shows it when next used. So when a reused connection
    fails, every connection opened before that moment is presumed dropped too (a new generation starts;
    older connections are closed instead of reused or kept) and the work runs again on a connection opened
    now. That is bounded: one reused connection, then one new one; if the new one fails, the directory
    really is unavailable and the error goes up.
    """

    def __init__(self, opener: Callable[[], ldap3.Connection], size: int) -> None:
        self._opener = opener
        self._idle: queue.LifoQueue[tuple[int, ldap3.Connection]] = queue.LifoQueue()
        self._size = size
        self._generation = 0
        self._lock = threading.Lock()

    def run(self, work: Callable[[ldap3.Connection], T]) -> T:
        fresh_only = False
        while True:
            taken = None if fresh_only else self._take()
            if taken is None:
                generation, conn, reused = self._generation, self._opener(), False
            else:
                (generation, conn), reused = taken, True
            try:
                result = work(conn)
            except CONNECTION_ERRORS:
                _close(conn)
                if not reused:
                    raise
                self._drop_older_than_now(generation)
                fresh_only = True
                continue
            except BaseException:
                self._release(generation, conn)  # the directory answered: the connection is fine
                raise
            self._release(generation, conn)
            return result

    def _take(self) -> tuple[int, ldap3.Connection] | None:
        while True:
            try:
                generation, conn = self._idle.get_nowait()
            except queue.Empty:
                return None
            if generation == self._generation:
                return generation, conn
            _close(conn)

    def _drop_older_than_now(self, failed_generation: int) -> None:
        with self._lock:
            if failed_generation == self._generation:  # the first thread to notice starts the new generation
                self._generation += 1
        self.clear()

    def _release(self, generation: int, conn: ldap3.Connection) -> None:
        if generation == self._generation and self._idle.qsize() < self._size:
            self._idle.put((generation, conn))
        else:
            _close(conn)

    def clear(self) -> None:
        while True:
            try:
                _close(self._idle.get_nowait()[1])
            except queue.Empty:
                return


def result_entries(conn: ldap3.Connection) -> list[dict[str, Any]]:
    """The entries of the connection's last search, as dicts {dn, attributes}."""
    return [
        {"dn": entry["dn"], "attributes": entry.get("attributes", {})}
        for entry in conn.response or []
        if entry.get("type") == "searchResEntry"
    ]


def _close(conn: ldap3.Connection) -> None:
    with contextlib.suppress(LDAPException, OSError):
        conn.unbind()


class DsaasLDAPAuthenticator(LDAPAuthenticator):  # type: ignore[misc]
    """LDAPAuthenticator that fits the directory's shape, re-checks sessions and reuses connections."""

    membership = Unicode(
        "auto",
        config=True,
        help="How group membership is read: " + ", ".join(MEMBERSHIP_STRATEGIES) + ".",
    )
    admin_groups = List(Unicode(), config=True, help="Group DNs whose members are hub admins.")
    login_domains = List(
        Unicode(),
        config=True,
        help="Domains users may type before or after their name (DOMAIN\\name, name@domain): NetBIOS or DNS.",
    )
    search_connections = Int(LOGIN_WORKERS, config=True, help="Search-account connections kept open for reuse.")
    bind_connections = Int(LOGIN_WORKERS, config=True, help="Connections kept open for checking users' passwords.")
    directory_cache_seconds = Int(
        60, config=True, help="How long group facts (object classes, nested parents) are remembered."
    )
    directory_reread_seconds = Int(
        10,
        config=True,
        help="After a membership miss, cached nested parents of a group are re-read at most once this often.",
    )
    active_directory = Bool(
        False, config=True, help="Active Directory: refuse accounts disabled in userAccountControl."
    )
    outage_grace_seconds = Int(
        900,
        config=True,
        help="While the directory is unreachable, sessions confirmed within this time continue.",
    )
    password_change_url = Unicode(
        "", config=True, help="Where users change an expired password; shown when the directory says it expired."
    )
    setting_prefix = Unicode(
        "dsaas:hub.ldap", config=True, help="Where the stack keeps these settings, for error messages."
    )

    @validate("membership")
    def _valid_membership(self, proposal: Any) -> str:
        value = str(proposal["value"])
        if value not in MEMBERSHIP_STRATEGIES:
            raise ValueError(f"membership {value!r}: expected one of {', '.join(MEMBERSHIP_STRATEGIES)}")
        return value

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._search_pool = ConnectionPool(self._open_search_connection, self.search_connections)
        self._bind_pool = ConnectionPool(self._open_anonymous_connection, self.bind_connections)
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}
        self._cache_lock = threading.Lock()
        self._reread_at: dict[tuple[str, str], float] = {}
        self._confirmed_at: dict[str, float] = {}

    # -- settings as the operator knows them -----------------------------------------------------
    def setting(self, name: str) -> str:
        return f"{self.setting_prefix}.{name}"

    @property
    def search_user(self) -> str | None:
        return self.lookup_dn_search_user or None

    @property
    def configured_groups(self) -> list[str]:
        """Allowed and admin groups, each once, as configured."""
        seen: dict[str, str] = {}
        for group in [*(self.allowed_groups or []), *self.admin_groups]:
            seen.setdefault(dn_key(group), group)
        return list(seen.values())

    def describe_server(self) -> str:
        return f"{self.server_address}:{self.server_port} (tls_strategy {self.tls_strategy.name})"

    # -- connections ------------------------------------------------------------------------------
    def new_server(self) -> ldap3.Server:
        """A Server object for ONE connection. ldap3's `Server` keeps state every connection through it shares:
        after one failed connect it marks the address unavailable and skips it for RESET_AVAILABILITY_TIMEOUT
        (5 s, compared as `.seconds >`, so about 6 s: `Server.update_availability` / `candidate_addresses` in
        ldap3/core/server.py), failing every open meanwhile with "invalid server address" though the server is
        back; and `close()` of any connection resets the shared `current_address` that a concurrent `open()`
        on another thread reads back (ldap3/strategy/base.py). One Server per connection shares neither."""
        return ldap3.Server(
            self.server_address,
            port=self.server_port,
            use_ssl=self.tls_strategy is TlsStrategy.on_connect,
            tls=ldap3.Tls(**self.tls_kwargs),
            # The schema is read once, by `directory_schema`, not on every bind.
            get_info=ldap3.NONE,
            connect_timeout=CONNECT_TIMEOUT_S,
        )

    def _open(self) -> ldap3.Connection:
        conn = ldap3.Connection(
            self.new_server(), receive_timeout=RECEIVE_TIMEOUT_S, read_only=True, raise_exceptions=False
        )
        try:
            conn.open(read_server_info=False)
            if self.tls_strategy is TlsStrategy.before_bind and not conn.start_tls(read_server_info=False):
                raise DirectoryUnusableError(f"StartTLS refused: {conn.result}")
        except LDAPException as error:
            _close(conn)
            raise DirectoryUnusableError(f"{type(error).__name__}: {error}") from error
        except OSError as error:
            _close(conn)
            raise DirectoryUnusableError(f"{type(error).__name__}: {error}") from error
        return conn

    def _usable(self, conn: ldap3.Connection) -> None:
        """Refuse a pooled connection that lost its socket or its TLS: ldap3's bind silently re-opens a closed
        connection WITHOUT StartTLS, which would send the password in clear text."""
        if conn.closed or (self.tls_strategy is TlsStrategy.before_bind and not conn.tls_started):
            raise StaleConnectionError("the pooled connection was closed")

    def _open_anonymous_connection(self) -> ldap3.Connection:
        return self._open()

    def _open_search_connection(self) -> ldap3.Connection:
        conn = self._open()
        if not conn.rebind(self.search_user, self.lookup_dn_search_password, read_server_info=False):
            result = conn.result or {}
            _close(conn)
            if result.get("result") == INVALID_CREDENTIALS:
                raise ConfigurationError(
                    f"the directory refused the search account {self.search_user!r} "
                    f"({result.get('description')}). Fix: check {self.setting('searchUser')} (a full DN) "
                    "and the secret dsaas:ldapSearchPassword."
                )
            raise ConfigurationError(
                f"binding the search account {self.search_user!r} failed: {result.get('description')} "
                f"{result.get('message', '')}. Fix: check {self.setting('searchUser')} and dsaas:ldapSearchPassword."
            )
        conn.password = None
        return conn

    def with_search(self, work: Callable[[ldap3.Connection], T]) -> T:
        return self._run(self._search_pool, work)

    def _run(self, pool: ConnectionPool, work: Callable[[ldap3.Connection], T]) -> T:
        try:
            return pool.run(work)
        except (DirectoryUnusableError, ConfigurationError):
            raise
        except (LDAPException, OSError) as error:
            raise DirectoryUnusableError(f"{type(error).__name__}: {error}") from error

    def close_connections(self) -> None:
        self._search_pool.clear()
        self._bind_pool.clear()

    # -- small cache for facts about groups --------------------------------------------------------
    def _cached(self, kind: str, key: str, compute: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get((kind, key))
            if hit is not None and now - hit[0] < self.directory_cache_seconds:
                return hit[1]  # type: ignore[no-any-return]
        value = compute()
        with self._cache_lock:
            self._cache[(kind, key)] = (now, value)
        return value

    # -- reading the directory -------------------------------------------------------------------
    def _search(
        self,
        conn: ldap3.Connection,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        *,
        scope: str = ldap3.BASE,
        setting: str,
        what: str,
        missing_ok: bool = False,
    ) -> list[dict[str, Any]]:
        """Entries as dicts {dn, attributes}; an answer that means "misconfigured" raises ConfigurationError."""
        conn.search(
            search_base=base,
            search_filter=search_filter,
            search_scope=scope,
            attributes=list(attributes) or ["1.1"],
            size_limit=0 if scope == ldap3.BASE else 2,
        )
        result = conn.result or {}
        code = result.get("result", 0)
        if code in (0, 4):  # success, sizeLimitExceeded (a lookup that matched more than one entry)
            return result_entries(conn)
        if code == 32 and missing_ok:
            return []
        meaning = RESULT_CODE_MEANING.get(code, result.get("description", str(code)))
        if code == 32:
            problem = f"{what} {base!r} does not exist, or {self._reader()} may not read it"
            fix = f"check the DN in {setting}, and that {self._reader()} can read it"
        elif code == 50:
            problem = f"{self._reader()} may not read {what} {base!r}"
            fix = f"grant {self._reader()} read access there, or change {setting}"
        elif code in (16, 17, 18, 87):
            problem = f"the directory rejects the filter {search_filter} on {what} ({meaning})"
            fix = f"set {self.setting('membership')} to what the directory's groups use (auto finds it)"
        else:
            problem = f"searching {what} {base!r} failed: {meaning} {result.get('message', '')}".strip()
            fix = f"check {setting}"
        raise ConfigurationError(f"{problem}. Fix: {fix}.")

    def _reader(self) -> str:
        return f"the search account {self.search_user!r}" if self.search_user else "a user (own login)"

    def directory_schema(self, conn: ldap3.Connection) -> frozenset[str] | None:
        """The attribute names the directory's schema defines (None if unreadable), read once a cache age."""

        def read() -> frozenset[str] | None:
            conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["subschemaSubentry"])
            entries = result_entries(conn)
            subentry = _first(entries[0]["attributes"].get("subschemaSubentry")) if entries else None
            if not subentry:
                return None
            conn.search(subentry, "(objectClass=subschema)", search_scope=ldap3.BASE, attributes=["attributeTypes"])
            entries = result_entries(conn)
            types = entries[0]["attributes"].get("attributeTypes") or [] if entries else []
            names = schema_attribute_names([t if isinstance(t, str) else t.decode() for t in types])
            return names or None

        return self._cached("schema", "", read)

    def check_schema(self, conn: ldap3.Connection) -> None:
        """Refuse, with the fix, a strategy or user attribute whose attribute the directory's schema lacks."""
        names = self.directory_schema(conn)
        if names is None:
            return
        needed = {self.setting("userAttribute"): self.user_attribute} if self.lookup_dn else {}
        if self.membership in STRATEGY_ATTRIBUTE:
            needed[self.setting("membership")] = STRATEGY_ATTRIBUTE[self.membership]
        for setting, attribute in needed.items():
            if attribute.lower() not in names:
                hint = (
                    "auto (reads each group's own class)"
                    if setting.endswith("membership")
                    else "the attribute that holds login names"
                )
                raise ConfigurationError(
                    f"the directory's schema has no attribute {attribute!r}, which {setting} "
                    f"{self.membership if setting.endswith('membership') else attribute!r} needs. Fix: set {setting} "
                    f"to {hint}; python -m tools.ldap_check shows what the directory offers."
                )

    def lookup_user(self, conn: ldap3.Connection, username: str) -> tuple[str, dict[str, Any]] | None:
        """The user's DN and attributes, through the search account; None if no such (enabled) user."""
        attributes = [self.user_attribute, *self._user_entry_attributes()]
        entries = self._search(
            conn,
            self.user_search_base,
            f"({self.user_attribute}={escape_filter_chars(username)})",
            attributes,
            scope=ldap3.SUBTREE,
            setting=self.setting("userSearchBase"),
            what="the user search base",
        )
        if len(entries) != 1:
            if len(entries) > 1:
                self.log.error(
                    "dsaas: configuration error: %d entries under %s have %s=%s; a login name must be unique. "
                    "Fix: narrow %s, or use an attribute that is unique.",
                    len(entries),
                    self.user_search_base,
                    self.user_attribute,
                    username,
                    self.setting("userSearchBase"),
                )
            return None
        return entries[0]["dn"], entries[0]["attributes"]

    def _read_entry(
        self,
        conn: ldap3.Connection,
        dn: str,
        attributes: Sequence[str],
        *,
        setting: str,
        what: str,
        missing_ok: bool = True,
    ) -> dict[str, Any] | None:
        """The attributes of one entry; None if it does not exist (or may not be read)."""
        entries = self._search(
            conn, dn, "(objectClass=*)", attributes, setting=setting, what=what, missing_ok=missing_ok
        )
        return entries[0]["attributes"] if entries else None

    def read_user_entry(self, conn: ldap3.Connection, user_dn: str) -> dict[str, Any] | None:
        return self._read_entry(
            conn, user_dn, self._user_entry_attributes(), setting=self.setting("bindDnTemplates"), what="the user"
        )

    def _user_entry_attributes(self) -> list[str]:
        wanted = []
        if self.membership in ("memberOf", "nestedMemberOf"):
            wanted.append("memberOf")
        if self.active_directory:
            wanted.extend(["userAccountControl", "objectSid", "primaryGroupID"])
        if self.membership == "auto" and "memberOf" not in wanted:
            wanted.append("memberOf")  # see _memberof_admits
        wanted.extend(ACCOUNT_STATE_ATTRIBUTES)
        return wanted

    def account_disabled(self, attributes: dict[str, Any]) -> bool:
        if not self.active_directory:
            return False
        flags = _first(attributes.get("userAccountControl"))
        try:
            return bool(int(flags or 0) & AD_ACCOUNT_DISABLED)
        except (TypeError, ValueError):
            return False

    # -- configured DNs exist (issue 20 item 10) ---------------------------------------------------------
    def configured_dns(self, *, bases: bool = True, groups: bool = True) -> list[tuple[str, str]]:
        """(setting, DN) for every DN the settings name that must exist: with `bases` the user search base
        (or the parent of each DN template), with `groups` the allowed and admin groups."""
        dns: list[tuple[str, str]] = []
        if bases and self.lookup_dn:
            if self.user_search_base:
                dns.append((self.setting("userSearchBase"), str(self.user_search_base)))
        elif bases:
            for template in self.bind_dn_template or []:
                parent = dn_parent(str(template))
                if parent and (self.setting("bindDnTemplates"), parent) not in dns:
                    dns.append((self.setting("bindDnTemplates"), parent))
        if groups:
            dns.extend((self._group_setting(group), group) for group in self.configured_groups)
        return dns

    def check_configured_dns(self, conn: ldap3.Connection, *, bases: bool = True, groups: bool = True) -> list[str]:
        """One message (problem. Fix: ...) per configured DN whose entry cannot be read; [] if all exist.

        Each entry is read itself (a BASE search): 389 answers a search under a base that does not exist
        with success and no entries, so only reading the entry tells a missing base from an empty one.
        """
        problems = []
        for setting, dn in self.configured_dns(bases=bases, groups=groups):
            try:
                entry = self._read_entry(conn, dn, [], setting=setting, what="the entry")
            except ConfigurationError as error:
                problems.append(str(error))
                continue
            if entry is None:
                problems.append(
                    f"{dn!r} (from {setting}) does not exist, or {self._reader()} may not read it. "
                    f"Fix: correct the DN in {setting}, or let {self._reader()} read it."
                )
        return problems

    def _require_configured_dns(self, conn: ldap3.Connection, *, bases: bool = True, groups: bool = True) -> None:
        """Raise ConfigurationError for the first missing configured DN (the answer is kept a cache age).

        Before a login only the bases are required (a missing group must not lock out the members of the
        groups that exist: see membership_of). After a user's bind the bases are proven (the user's entry is
        below them), and a user's own connection may well not read its parent container: then only the
        groups are read."""
        problems = self._cached(
            "configured-dns",
            f"{bases}/{groups}",
            lambda: self.check_configured_dns(conn, bases=bases, groups=groups),
        )
        if problems:
            raise ConfigurationError(problems[0] + (f" ({len(problems) - 1} more in the log)" if problems[1:] else ""))

    def idm_state_refusal(self, attributes: dict[str, Any] | None) -> tuple[str, str] | None:
        """IdM / 389: (kind, reason) when the account may not be used now. See idm_account_refusal."""
        return idm_account_refusal(attributes or {}, datetime.datetime.now(datetime.UTC))

    def group_membership_attribute(self, conn: ldap3.Connection, group: str) -> list[str]:
        """`auto`: the membership attribute(s) the group's own object classes define."""

        def read() -> list[str]:
            setting = self._group_setting(group)
            entry = self._read_entry(conn, group, ["objectClass"], setting=setting, what="the group")
            if entry is None:
                raise ConfigurationError(
                    f"the group {group!r} does not exist, or {self._reader()} may not read it. "
                    f"Fix: check the DN in {setting}."
                )
            classes = [str(c).lower() for c in entry.get("objectClass", [])]
            attributes = sorted({GROUP_CLASS_ATTRIBUTE[c] for c in classes if c in GROUP_CLASS_ATTRIBUTE})
            if not attributes:
                raise ConfigurationError(
                    f"the group {group!r} is of class {', '.join(classes) or '(unreadable)'}, which holds no "
                    f"members auto knows (groupOfNames, group, groupOfUniqueNames, posixGroup). Fix: set "
                    f"{self.setting('membership')} to the attribute its members are listed in."
                )
            return attributes

        return self._cached("group-attribute", dn_key(group), read)

    def _group_setting(self, group: str) -> str:
        in_admin = any(dn_key(group) == dn_key(g) for g in self.admin_groups)
        return self.setting("adminGroups" if in_admin else "allowedGroups")

    def unreadable_groups(self, conn: ldap3.Connection) -> list[str]:
        """The allowed and admin groups `conn` cannot read (missing, misspelt, or hidden by ACLs)."""
        return [
            group
            for group in self.configured_groups
            if self._read_entry(conn, group, ["objectClass"], setting=self._group_setting(group), what="the group")
            is None
        ]

    def startup_check(self) -> None:
        """At hub start: log every configured DN (bases, groups) the search account can't read."""
        if not self.search_user:
            # nothing can be read before a user logs in; checked on their connection then
            self.log.info("dsaas: configured DNs are checked at the first login (no search account)")
            return
        try:
            problems = self.with_search(self.check_configured_dns)
        except ConfigurationError as error:
            problems = [str(error)]
        except DirectoryUnusableError as error:
            self.log.warning(
                "dsaas: the LDAP directory %s is unusable at hub start (%s); settings are checked at login",
                self.describe_server(),
                error,
            )
            return
        for problem in problems:
            self.log.error("dsaas: configuration error at hub start: %s", problem)

    def check_allow_config(self) -> None:
        """JupyterHub calls this once at start (app.py `init_users`): the group check runs on a worker thread,
        so a directory that is down does not hold up the hub's start."""
        super().check_allow_config()
        _LOGIN_THREADS.submit(self.startup_check)

    def _member_of_groups(self, conn: ldap3.Connection, user_dn: str, username: str) -> list[str]:
        """Filter strategies: a base search on each configured group for the user."""
        found = []
        for group in self.configured_groups:
            if self.membership == "auto":
                attributes = self.group_membership_attribute(conn, group)
            else:
                attributes = [self.membership]
            clauses = [
                f"({attr}={escape_filter_chars(username if attr == 'memberUid' else user_dn)})" for attr in attributes
            ]
            search_filter = clauses[0] if len(clauses) == 1 else f"(|{''.join(clauses)})"
            entries = self._search(conn, group, search_filter, [], setting=self._group_setting(group), what="the group")
            if entries:
                found.append(group)
        return found

    def _parents(self, conn: ldap3.Connection, group_dn: str) -> list[str]:
        def read() -> list[str]:
            entry = self._read_entry(
                conn,
                group_dn,
                ["memberOf"],
                setting=self.setting("membership"),
                what="the nested group",
                missing_ok=False,
            )
            return [str(v) for v in (entry or {}).get("memberOf") or []]

        return self._cached("parents", dn_key(group_dn), read)

    def _memberof_groups(self, conn: ldap3.Connection, direct: Sequence[str]) -> list[str]:
        """memberOf strategies: the user's own groups (and, nested, their parents) against the configured ones.

        Nested parents come from the group cache. A group nested again (or newly) is missed until its cached
        parents expire, so a miss re-reads the parents of the groups it walked, once, and only groups not
        re-read in the last `directory_reread_seconds`: a non-member logging in again and again costs one
        re-read per group per that interval, not one per login."""
        found, walked = self._walk_memberof(conn, direct)
        if not found and walked and self._forget_parents(walked):
            found, _ = self._walk_memberof(conn, direct)
        return found

    def _walk_memberof(self, conn: ldap3.Connection, direct: Sequence[str]) -> tuple[list[str], list[str]]:
        """(configured groups reached, groups whose parents were read on the way)."""
        wanted = {dn_key(g): g for g in self.configured_groups}
        seen = {dn_key(g) for g in direct}
        frontier = list(direct)
        walked: list[str] = []
        if self.membership == "nestedMemberOf":
            depth = 0
            while frontier and depth < NESTING_DEPTH_LIMIT and len(seen) < NESTING_GROUPS_LIMIT:
                if all(key in seen for key in wanted):
                    break
                next_frontier = []
                for group in frontier:
                    walked.append(group)
                    for parent in self._parents(conn, group):
                        if dn_key(parent) not in seen:
                            seen.add(dn_key(parent))
                            next_frontier.append(parent)
                frontier, depth = next_frontier, depth + 1
        return [group for key, group in wanted.items() if key in seen], walked

    def _forget_parents(self, groups: Sequence[str]) -> bool:
        """Drop the cached parents of `groups` not re-read within `directory_reread_seconds`; whether any went."""
        now = time.monotonic()
        forgotten = False
        with self._cache_lock:
            for group in groups:
                key = ("parents", dn_key(group))
                if key not in self._cache or now - self._reread_at.get(key, -1e18) < self.directory_reread_seconds:
                    continue
                self._reread_at[key] = now
                del self._cache[key]
                forgotten = True
        return forgotten

    def membership_of(
        self, conn: ldap3.Connection, user_dn: str, username: str, user_attributes: dict[str, Any] | None
    ) -> list[str]:
        """The configured groups the user is in, read through `conn` (AD: the primary group too).

        In none: a configured group that cannot be read makes it a configuration error (under memberOf a
        misspelt group would never match, and every login would be "not a member"); members of the groups
        that do exist still get in."""
        groups = self._membership(conn, user_dn, username, user_attributes)
        if not groups:
            self._require_configured_dns(conn, bases=False)
        return groups

    def _membership(
        self, conn: ldap3.Connection, user_dn: str, username: str, user_attributes: dict[str, Any] | None
    ) -> list[str]:
        if not self.active_directory:
            return self._listed_membership(conn, user_dn, username, user_attributes)
        if user_attributes is None or "primaryGroupID" not in user_attributes:
            user_attributes = self.read_user_entry(conn, user_dn) or {}
        listed = self._listed_membership(conn, user_dn, username, user_attributes)
        keys = {dn_key(g) for g in listed}
        return listed + [g for g in self.primary_groups(conn, user_attributes) if dn_key(g) not in keys]

    def group_sid(self, conn: ldap3.Connection, group: str) -> str | None:
        """The configured group's objectSid as a string (None: it has none), remembered a cache age."""

        def read() -> str | None:
            entry = self._read_entry(conn, group, ["objectSid"], setting=self._group_setting(group), what="the group")
            raw = _first((entry or {}).get("objectSid"))
            if not isinstance(raw, bytes):
                return None
            try:
                return sid_string(raw)
            except ValueError:
                return None

        return self._cached("group-sid", dn_key(group), read)

    def primary_groups(self, conn: ldap3.Connection, user_attributes: dict[str, Any]) -> list[str]:
        """The configured groups that are the user's primary group (AD keeps it out of memberOf)."""
        raw = _first(user_attributes.get("objectSid"))
        wanted = (
            primary_group_sid(raw, _first(user_attributes.get("primaryGroupID"))) if isinstance(raw, bytes) else None
        )
        if wanted is None:
            return []
        return [g for g in self.configured_groups if self.group_sid(conn, g) == wanted]

    def _listed_membership(
        self, conn: ldap3.Connection, user_dn: str, username: str, user_attributes: dict[str, Any] | None
    ) -> list[str]:
        """The configured groups that list the user (member/memberOf and the other strategies)."""
        if self.membership in ("memberOf", "nestedMemberOf"):
            if user_attributes is None or "memberOf" not in user_attributes:
                user_attributes = self.read_user_entry(conn, user_dn) or {}
            direct = [str(v) for v in (user_attributes.get("memberOf") or [])]
            return self._memberof_groups(conn, direct)
        found = self._member_of_groups(conn, user_dn, username)
        if self.membership == "auto":
            if user_attributes is None or "memberOf" not in user_attributes:
                user_attributes = self.read_user_entry(conn, user_dn) or {}
            found = self._memberof_admits(found, user_attributes)
        return found

    def _memberof_admits(self, found: list[str], user_attributes: dict[str, Any]) -> list[str]:
        """`auto`: a configured group the user's own `memberOf` lists counts too (issue 20 item 9).

        The directory keeps memberOf itself; where it flattens nesting (389's MemberOf plugin, as IdM runs
        it) memberOf lists every group the directory counts the user in, nested ones included, which a
        group's own `member` values cannot show. Where memberOf holds direct groups only (AD, OpenLDAP's
        overlay) it adds nothing the group's attribute did not already say.
        """
        listed = {dn_key(str(v)) for v in user_attributes.get("memberOf") or []}
        have = {dn_key(g) for g in found}
        return found + [g for g in self.configured_groups if dn_key(g) in listed and dn_key(g) not in have]

    def verdict(self, username: str, user_dn: str, groups: list[str]) -> LoginVerdict:
        keys = {dn_key(g) for g in groups}
        allowed_keys = {dn_key(g) for g in [*(self.allowed_groups or []), *self.admin_groups]}
        admin_keys = {dn_key(g) for g in self.admin_groups}
        return LoginVerdict(
            username=username,
            user_dn=user_dn,
            groups=groups,
            allowed=bool(keys & allowed_keys),
            admin=bool(keys & admin_keys),
        )

    # -- names ------------------------------------------------------------------------------------
    def login_name(self, typed: str) -> tuple[str | None, str]:
        """The hub user for what was typed, or (None, why not)."""
        name = (typed or "").strip().lower()
        domains = {d.strip().lower() for d in self.login_domains}
        domain = None
        if "\\" in name:
            domain, _, name = name.partition("\\")
        elif "@" in name:
            name, _, domain = name.rpartition("@")
        if domain is not None and domain not in domains:
            listed = ", ".join(sorted(domains)) or "none"
            return None, (
                f"the domain {domain!r} is not one this hub accepts (listed: {listed}; "
                f"setting {self.setting('domains')})"
            )
        problem = login_name_problem(name)
        if problem is not None:
            return None, problem
        return name, ""

    @property
    def upn_lookup(self) -> bool:
        """The AD preset with a search account: `x@y` may be a userPrincipalName."""
        return bool(self.active_directory and self.lookup_dn and self.search_user)

    def name_from_principal(self, typed: str) -> str | None:
        """Blocking: the hub user (the sAMAccountName, lower-cased) whose userPrincipalName was typed."""
        upn = principal_name(typed)
        if upn is None or not self.upn_lookup:
            return None

        def find(conn: ldap3.Connection) -> str | None:
            entries = self._search(
                conn,
                self.user_search_base,
                f"(userPrincipalName={escape_filter_chars(upn)})",
                [self.user_attribute],
                scope=ldap3.SUBTREE,
                setting=self.setting("userSearchBase"),
                what="the user search base",
            )
            if len(entries) != 1:
                return None
            value = _first(entries[0]["attributes"].get(self.user_attribute))
            name = str(value).lower() if value else None
            return name if name and login_name_problem(name) is None else None

        return self.with_search(find)

    # -- the login, on a worker thread --------------------------------------------------------------
    def _bind(self, conn: ldap3.Connection, user_dn: str, password: str) -> bool:
        """Check a password by binding this connection as the user."""
        self._usable(conn)
        ok = bool(conn.rebind(user_dn, password, read_server_info=False))
        conn.password = None
        if not ok and (conn.result or {}).get("result") not in (INVALID_CREDENTIALS, None):
            # e.g. a template that builds an invalid DN: says something about the settings
            self.log.warning("dsaas: bind as %r failed: %s", user_dn, (conn.result or {}).get("description"))
        return ok

    def login(self, typed: str, password: str) -> LoginVerdict:
        """Blocking: the whole login against the directory. Raises DirectoryUnusableError or ConfigurationError."""
        name, why = self.login_name(typed)
        if name is None and principal_name(typed) and self.upn_lookup:
            name = self.name_from_principal(typed)
            if name is None:
                why += f", and no account has the user principal name {typed.strip()!r}"
        if name is None:
            return LoginVerdict(username=typed, reason=why)
        username: str = name
        if not password or not password.strip():
            return LoginVerdict(username=username, reason="Login denied for blank password")

        user_attributes: dict[str, Any] | None = None
        if self.lookup_dn:

            def lookup(conn: ldap3.Connection) -> tuple[str, dict[str, Any]] | None:
                self.check_schema(conn)
                self._require_configured_dns(conn, groups=False)
                return self.lookup_user(conn, username)

            found = self.with_search(lookup)
            if found is None and principal_name(typed):
                # name@listed-domain where name is no sAMAccountName: it may still be a UPN (x@y != sam@y)
                by_principal = self.name_from_principal(typed)
                if by_principal is not None:
                    username = by_principal
                    found = self.with_search(lookup)
            if found is None:
                return LoginVerdict(username=username, reason="no such user under the user search base")
            candidates = [found[0]]
            user_attributes = found[1]
            # A disabled AD account, or an IdM account locked or expired, is refused after its password is
            # tried, never before: with the right one the page says why (not "invalid password", which sends
            # people to reset a good password), with a wrong one it stays the usual refusal and says nothing
            # about the account. AD answers the bind itself (533), 389 refuses a locked account's bind (53)
            # whatever the password; a directory that does not enforce the state accepts the bind.
            blocked = (
                (REFUSAL_DISABLED, "the account is disabled")
                if self.account_disabled(user_attributes)
                else self.idm_state_refusal(user_attributes)
            )
        else:
            blocked = None  # nothing is read before the bind: the bind result, or the entry after it, says so
            candidates = [template.format(username=escape_rdn(username)) for template in self.bind_dn_template]
            if self.search_user:
                # a template under a missing parent would only ever look like a wrong password
                self.with_search(lambda conn: self._require_configured_dns(conn, groups=False))

        def check_password(conn: ldap3.Connection) -> LoginVerdict:
            refused: tuple[str, str] | None = None
            for user_dn in candidates:
                if not self._bind(conn, user_dn, password):
                    # the directory said why: keep it over a plain 49 of another template
                    refused = bind_refusal(conn.result) or refused
                    continue
                if blocked is not None:
                    return LoginVerdict(username=username, user_dn=user_dn, reason=blocked[1], refusal=blocked[0])
                if self.search_user:
                    return LoginVerdict(username=username, user_dn=user_dn)
                # No search account: the user's own connection reads the groups, right after the bind.
                self.check_schema(conn)
                return self._verdict_after_bind(conn, username, user_dn, user_attributes)
            if refused is not None:
                return LoginVerdict(username=username, reason=refused[1], refusal=refused[0])
            return LoginVerdict(username=username, reason="invalid credentials")

        checked = self._run(self._bind_pool, check_password)
        if checked.user_dn is None or checked.reason or not self.search_user:
            return checked
        user_dn = checked.user_dn

        def read_groups(conn: ldap3.Connection) -> LoginVerdict:
            return self._verdict_after_bind(conn, username, user_dn, user_attributes)

        return self.with_search(read_groups)

    def _verdict_after_bind(
        self, conn: ldap3.Connection, username: str, user_dn: str, user_attributes: dict[str, Any] | None
    ) -> LoginVerdict:
        """The groups, once the password is accepted; an entry found by a DN template is checked for IdM's
        lock and expiry here (plain 389 lets a krbPasswordExpiration-expired user bind)."""
        if user_attributes is None:
            user_attributes = self.read_user_entry(conn, user_dn)
            state = self.idm_state_refusal(user_attributes)
            if state is not None:
                return LoginVerdict(username=username, user_dn=user_dn, reason=state[1], refusal=state[0])
        return self.verdict(username, user_dn, self.membership_of(conn, user_dn, username, user_attributes))

    def recheck(self, username: str, user_dn: str | None) -> LoginVerdict | None:
        """Blocking: membership now, through the search account; None if there is no search account."""
        if not self.search_user:
            return None

        def read(conn: ldap3.Connection) -> LoginVerdict:
            self.check_schema(conn)
            attributes: dict[str, Any] | None
            if self.lookup_dn:
                found = self.lookup_user(conn, username)
                if found is None:
                    return LoginVerdict(username=username, reason="the account is gone from the directory")
                dn, attributes = found
            else:
                dn = user_dn or self.bind_dn_template[0].format(username=escape_rdn(username))
                attributes = self.read_user_entry(conn, dn)
                if attributes is None:
                    return LoginVerdict(username=username, reason="the account is gone from the directory")
            refused = self.account_state_refusal(conn, dn, attributes)
            if refused is not None:
                return LoginVerdict(username=username, user_dn=dn, reason=refused[1], refusal=refused[0])
            return self.verdict(username, dn, self.membership_of(conn, dn, username, attributes))

        return self.with_search(read)

    def account_state_refusal(
        self, conn: ldap3.Connection, user_dn: str, attributes: dict[str, Any] | None
    ) -> tuple[str, str] | None:
        """Why the account may no longer use the hub (AD: disabled, expired, locked, password to change;
        IdM / 389: nsAccountLock and the Kerberos and 389 expiry times)."""
        if not self.active_directory:
            return self.idm_state_refusal(attributes)
        state = self._read_entry(
            conn, user_dn, AD_STATE_ATTRIBUTES, setting=self.setting("userSearchBase"), what="the user"
        )
        return ad_account_refusal({**(attributes or {}), **(state or {})}, time.time())

    # -- JupyterHub's interface ---------------------------------------------------------------------
    def _log_failure(self, action: str, username: str, error: Exception) -> None:
        if isinstance(error, ConfigurationError):
            self.log.error("dsaas: %s of %r refused: configuration error: %s", action, username, error)
        else:
            self.log.error(
                "dsaas: %s of %r refused: the LDAP directory %s is unusable: %s",
                action,
                username,
                self.describe_server(),
                error,
            )

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> dict[str, Any] | None:
        typed = str(data.get("username") or "")
        password = str(data.get("password") or "")
        loop = asyncio.get_running_loop()
        try:
            verdict = await loop.run_in_executor(_LOGIN_THREADS, self.login, typed, password)
        except DirectoryUnusableError as error:
            self._log_failure("login", typed.strip().lower(), error)
            raise directory_unavailable_page() from error
        except ConfigurationError as error:
            self._log_failure("login", typed.strip().lower(), error)
            return None
        if verdict.user_dn is None or verdict.reason:
            self.log.warning("dsaas: login of %r refused: %s", verdict.username, verdict.reason or "unknown user")
            self.raise_refusal_page(verdict)
            return None
        if not verdict.allowed:
            self.log.warning(
                "dsaas: login of %r refused: not a member of any allowed group (%s)",
                verdict.username,
                "; ".join(self.configured_groups),
            )
            return None
        self._confirmed_at[verdict.username] = time.monotonic()
        return self._auth_model(verdict)

    def raise_refusal_page(self, verdict: LoginVerdict) -> None:
        """The login page with what the user must do, where the directory said why (JupyterHub 5 re-renders
        its login form with an HTTPError's message for a form post: LoginHandler.render_template)."""
        message = refusal_page_message(verdict.refusal, self.password_change_url)
        if message is not None:
            raise web.HTTPError(403, "%s", message)  # a URL may hold "%"

    def _auth_model(self, verdict: LoginVerdict) -> dict[str, Any]:
        return {
            "name": verdict.username,
            "admin": verdict.admin,
            "auth_state": {"ldap_groups": verdict.groups, "user_dn": verdict.user_dn},
        }

    async def check_allowed(self, username: str, auth_model: dict[str, Any] | None = None) -> bool:
        groups = ((auth_model or {}).get("auth_state") or {}).get("ldap_groups") or []
        allowed_keys = {dn_key(g) for g in [*(self.allowed_groups or []), *self.admin_groups]}
        return any(dn_key(g) in allowed_keys for g in groups)

    async def refresh_user(self, user: Any, handler: Any = None) -> bool | dict[str, Any]:
        name = str(user.name)
        now = time.monotonic()
        confirmed = self._confirmed_at.get(name)
        if not self.search_user:
            # Nothing can be re-read without the user's password: the session lasts one refresh age.
            if confirmed is not None and now - confirmed < self.auth_refresh_age:
                return True
            self.log.info("dsaas: %r must log in again: without a search account groups are checked at login", name)
            return False
        auth_state = await user.get_auth_state() if self.enable_auth_state else None
        user_dn = (auth_state or {}).get("user_dn")
        loop = asyncio.get_running_loop()
        try:
            verdict = await loop.run_in_executor(_LOGIN_THREADS, self.recheck, name, user_dn)
        except DirectoryUnusableError as error:
            if confirmed is not None and now - confirmed < self.outage_grace_seconds:
                self.log.warning(
                    "dsaas: access of %r kept for now: the LDAP directory %s is unusable: %s",
                    name,
                    self.describe_server(),
                    error,
                )
                return True
            self._log_failure("session", name, error)
            return False
        except ConfigurationError as error:
            self._log_failure("session", name, error)
            return False
        if verdict is None or verdict.reason or not verdict.allowed:
            why = verdict.reason if verdict and verdict.reason else "no longer a member of any allowed group"
            self.log.warning("dsaas: access of %r ended: %s", name, why)
            self._confirmed_at.pop(name, None)
            return False
        self._confirmed_at[name] = now
        if user.admin != verdict.admin:
            self.log.info("dsaas: admin of %r is now %s (directory groups)", name, verdict.admin)
        return self._auth_model(verdict)


def directory_unavailable_page() -> web.HTTPError:
    """What a user sees when the directory can't be asked: not "Invalid username or password", which would
    send them to reset a password that is fine. JupyterHub renders an HTTPError raised by `authenticate` as
    its error page, showing `jupyterhub_message` (jupyterhub/handlers/base.py `write_error`)."""
    error = web.HTTPError(HTTP_SERVICE_UNAVAILABLE, log_message="the LDAP directory is unavailable")
    error.jupyterhub_message = DIRECTORY_UNAVAILABLE_MESSAGE  # type: ignore[attr-defined]
    return error


def _first(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return value[0] if value else None
    return value
