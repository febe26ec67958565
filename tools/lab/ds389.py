"""A throwaway 389 Directory Server on 127.0.0.1, laid out as FreeIPA / Red Hat IdM lays out its tree.

Debian's `389-ds-base` (2.3). `dscreate` would write under /etc/dirsrv and /var/lib/dirsrv, register a
systemd unit and start the server itself; the suite needs none of that. So the instance directory is made
by hand, the way `dscreate` makes it offline (lib389/instance/setup.py renders the package's
`template-dse.ldif` into `dse.ldif`): every path points into the work directory, and the server runs as a
plain foreground `ns-slapd -D <configdir> -i <pidfile> -d 0` child of the suite, as the invoking user
(`nsslapd-localuser`), listening on 127.0.0.1 only (`nsslapd-listenhost`), no LDAPI socket. Nothing is
registered with systemd and nothing outlives `close()`.

TLS: StartTLS on the LDAP port and LDAPS on a second port, with a server certificate for 127.0.0.1/localhost
signed by a CA the suite makes (`tools/lab/pki.py`), imported into the instance's NSS database (certutil,
pk12util from libnss3-tools, which 389-ds-base depends on) under 389's default nickname `Server-Cert`.

Settings made in dse.ldif before the first start (the server reads plugin settings only at start):

- `nsslapd-allow-anonymous-access: rootdse`: anonymous clients read the root DSE and nothing else (IdM
  runs with anonymous reads limited; `off` would also hide the root DSE, which clients use to discover).
- The MemberOf plugin on, as FreeIPA enables it (install/share/memberof-conf.ldif in freeipa/freeipa:
  `nsslapd-pluginenabled: on`, keeping 389's `memberofgroupattr: member` / `memberofattr: memberOf`),
  scoped to the suffix as a live IdM is (`memberOfEntryScope: <suffix>`,
  `memberOfEntryScopeExcludeSubtree: cn=provisioning,<suffix>`; `memberOfAllBackends` stays off). The
  plugin keeps `memberOf` flattened: a user in a group nested two levels down carries all three groups.
- A global password policy with expiry (`passwordExp: on`, `passwordGraceLimit: 0`): 389 itself refuses
  the bind of an entry whose `passwordExpirationTime` is past (result 49, control 2.16.840.1.113730.3.4.4).
- Schema: 389's own (inetOrgPerson, posixAccount/posixGroup from rfc2307compat, nsAccountLock), the
  Kerberos schema 389 ships as `60kerberos.ldif` (krbPrincipalAux: krbPrincipalName,
  krbPasswordExpiration, krbPrincipalExpiration; IdM loads the same schema), and IdM's two group classes
  `nestedGroup` (SUP groupOfNames, MAY memberOf) and `ipaUserGroup` (SUP nestedGroup) with IdM's OIDs
  (freeipa/freeipa install/share/60basev2.ldif).

The tree (suffix `dc=ipa,dc=example,dc=org`)::

    cn=accounts
      cn=users     uid=<login>: inetOrgPerson + inetUser + posixAccount + krbPrincipalAux
                   (krbPrincipalName <login>@IPA.EXAMPLE.ORG); passwords `<login>-Lab-pw-1`
      cn=groups    cn=<name>: groupOfNames + nestedGroup + ipaUserGroup + posixGroup (member: <DN>)
    cn=etc
      cn=sysaccounts  uid=hub-search: the hub's search account (account + simpleSecurityObject, as IdM's
                      system accounts)
    cn=provisioning   (empty; IdM keeps staged users there, outside memberOf's scope)

Groups: dsaas-hub-users ⊃ research-team ⊃ lab-interns (two levels of nesting), dsaas-hub-admins, finance.
People: alice (hub users), carol (admins), dave (finance), erin (no group), frank (research-team: a hub
user through one level), gina (lab-interns: two levels), and hub users in an unusable state:

- lou: `nsAccountLock: TRUE` (IdM's `ipa user-disable`). 389's core bind code refuses such an entry with
  result 53 "Account inactivated. Contact system administrator." whatever the password.
- pete: `passwordExpirationTime` in the past: 389 refuses with 49 and the password-expired control.
- kate: `krbPasswordExpiration` in the past (IdM's own expiry; plain 389 does not enforce it: IdM's
  ipa-pwd-extop plugin and the KDC do, so the bind succeeds here and only a client that reads it can tell).
- paul: `krbPrincipalExpiration` in the past (IdM's account expiry; likewise not enforced by plain 389).

ACIs: authenticated users (the search account, and users on their own connection) read and search the
user and group attributes a login needs, including the lock and expiry attributes; nobody reads
passwords. The root DN `cn=Directory Manager` bypasses ACIs (seeding and test set-up only).

Idle timeout: `Ds389Directory(..., idle_timeout=2)` sets `nsslapd-idletimeout` in cn=config (seconds a client
connection may stay idle; the root DN's connections are exempt). 389 2.3 (Debian's) checks it only while its
listener thread handles activity on some connection of the same connection list (389ds/389-ds-base issue 6004,
fixed later by a once-a-second sweep): on a quiet lab server idle connections are closed at the next request
from any client, as they are on a production server that always has other clients.

Usage::

    with Ds389Directory(tmp_path) as directory:
        info = directory.info                       # Ds389Info
        directory.set_account_lock("alice", True)   # live, as the root DN; `directory.info` follows
"""

from __future__ import annotations

import copy
import dataclasses
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import ldap3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import load_pem_x509_certificate

from tools.lab import pki
from tools.lab.directory import ssha
from tools.lab.procs import LOCALHOST, StartedServer, free_port, port_open, stop_process_group, tail, wait_until

NS_SLAPD = "/usr/sbin/ns-slapd"
CERTUTIL = "/usr/bin/certutil"
PK12UTIL = "/usr/bin/pk12util"
SERVER_CERT_NICKNAME = "Server-Cert"  # what template-dse.ldif's cn=RSA,cn=encryption names
DATA_DIR = Path("/usr/share/dirsrv/data")
SYSCONF_DIR = Path("/etc/dirsrv/config")
DEFAULT_SUFFIX = "dc=ipa,dc=example,dc=org"
REALM = "IPA.EXAMPLE.ORG"
ROOT_DN = "cn=Directory Manager"
SEARCH_ACCOUNT = "hub-search"
PAST = "20200101000000Z"
FUTURE = "20991231000000Z"
# IdM's group classes (freeipa/freeipa install/share/60basev2.ldif), with IdM's OIDs, as a schema file.
IPA_GROUP_SCHEMA = """dn: cn=schema
objectClasses: ( 2.16.840.1.113730.3.8.4.3 NAME 'nestedGroup' DESC 'Group that supports nesting'
  SUP groupOfNames STRUCTURAL MAY memberOf X-ORIGIN 'IPA v2 (lab copy of the class definition)' )
objectClasses: ( 2.16.840.1.113730.3.8.4.4 NAME 'ipaUserGroup' DESC 'IPA user group object class'
  SUP nestedGroup STRUCTURAL X-ORIGIN 'IPA v2 (lab copy of the class definition)' )
"""
USER_CLASSES = ("top", "person", "organizationalPerson", "inetOrgPerson", "inetUser", "posixAccount", "krbPrincipalAux")
GROUP_CLASSES = ("top", "groupOfNames", "nestedGroup", "ipaUserGroup", "posixGroup")
# What authenticated users may read (never userPassword or krbPrincipalKey).
READABLE_ATTRIBUTES = (
    "objectClass",
    "cn",
    "sn",
    "givenName",
    "displayName",
    "mail",
    "uid",
    "uidNumber",
    "gidNumber",
    "homeDirectory",
    "loginShell",
    "member",
    "memberOf",
    "description",
    "nsAccountLock",
    "krbPrincipalName",
    "krbPasswordExpiration",
    "krbPrincipalExpiration",
    "passwordExpirationTime",
)


class AccountState(StrEnum):
    """The unusable states the seed holds (see the module docstring)."""

    LOCKED = "locked"
    PASSWORD_EXPIRED = "password-expired"
    KRB_PASSWORD_EXPIRED = "krb-password-expired"
    PRINCIPAL_EXPIRED = "principal-expired"


@dataclass(frozen=True)
class Seed389User:
    login: str
    given_name: str
    surname: str
    groups: tuple[str, ...]
    """Group names the user is a direct member of."""
    state: AccountState | None = None


SEED: tuple[Seed389User, ...] = (
    Seed389User("alice", "Alice", "Example", ("dsaas-hub-users",)),
    Seed389User("carol", "Carol", "Example", ("dsaas-hub-admins",)),
    Seed389User("dave", "Dave", "Example", ("finance",)),
    Seed389User("erin", "Erin", "Example", ()),
    Seed389User("frank", "Frank", "Example", ("research-team",)),
    Seed389User("gina", "Gina", "Example", ("lab-interns",)),
    Seed389User("lou", "Lou", "Locked", ("dsaas-hub-users",), AccountState.LOCKED),
    Seed389User("pete", "Pete", "Expired", ("dsaas-hub-users",), AccountState.PASSWORD_EXPIRED),
    Seed389User("kate", "Kate", "Krbexpired", ("dsaas-hub-users",), AccountState.KRB_PASSWORD_EXPIRED),
    Seed389User("paul", "Paul", "Principalexpired", ("dsaas-hub-users",), AccountState.PRINCIPAL_EXPIRED),
)
# group → groups nested in it (members of it)
SUBGROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"dsaas-hub-users": ("research-team",), "research-team": ("lab-interns",)}
)
GROUPS: tuple[str, ...] = ("dsaas-hub-users", "dsaas-hub-admins", "finance", "research-team", "lab-interns")
FIRST_UID_NUMBER = 30001
FIRST_GID_NUMBER = 40001


@dataclass(frozen=True)
class Ds389User:
    login: str
    password: str
    dn: str
    groups: tuple[str, ...]
    """DNs of the groups the user is a direct member of."""
    nested_groups: tuple[str, ...]
    """DNs of every group the user is in, directly or through nesting (what memberOf holds)."""
    state: AccountState | None = None


@dataclass(frozen=True)
class Ds389Info:
    """What a client (or a hub configuration) needs to talk to the lab 389 server."""

    host: str
    ldap_port: int
    ldap_url: str
    ldaps_port: int
    ldaps_url: str
    ca_cert_path: Path
    """The PEM of the CA that signed the server certificate (StartTLS and LDAPS)."""
    base_dn: str
    people_base: str
    groups_base: str
    search_bind_dn: str
    search_password: str
    users_group_dn: str
    admins_group_dn: str
    other_group_dn: str
    nested_group_dn: str
    """research-team: a member of dsaas-hub-users."""
    deep_group_dn: str
    """lab-interns: a member of research-team, two levels below dsaas-hub-users."""
    admin_dn: str
    admin_password: str
    dn_template: str
    users: Mapping[str, Ds389User] = field(default_factory=dict)
    user_attribute: str = "uid"

    def user(self, login: str) -> Ds389User:
        return self.users[login]

    def group_dn(self, name: str) -> str:
        return f"cn={name},{self.groups_base}"


def transitive(direct: Sequence[str], subgroups: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Every group name reached from `direct` by walking up `subgroups` (parent → children), direct first."""
    parents: dict[str, list[str]] = {}
    for parent, children in subgroups.items():
        for child in children:
            parents.setdefault(child, []).append(parent)
    seen = list(direct)
    frontier = list(direct)
    while frontier:
        frontier = [p for g in frontier for p in parents.get(g, []) if p not in seen]
        seen.extend(dict.fromkeys(frontier))
    return tuple(seen)


def build_info(
    ldap_port: int, ldaps_port: int, ca_cert_path: Path, admin_password: str, suffix: str = DEFAULT_SUFFIX
) -> Ds389Info:
    people = f"cn=users,cn=accounts,{suffix}"
    groups = f"cn=groups,cn=accounts,{suffix}"
    users = {
        seed.login: Ds389User(
            login=seed.login,
            password=f"{seed.login}-Lab-pw-1",
            dn=f"uid={seed.login},{people}",
            groups=tuple(f"cn={g},{groups}" for g in seed.groups),
            nested_groups=tuple(f"cn={g},{groups}" for g in transitive(seed.groups, SUBGROUPS)),
            state=seed.state,
        )
        for seed in SEED
    }
    return Ds389Info(
        host=LOCALHOST,
        ldap_port=ldap_port,
        ldap_url=f"ldap://{LOCALHOST}:{ldap_port}",
        ldaps_port=ldaps_port,
        ldaps_url=f"ldaps://{LOCALHOST}:{ldaps_port}",
        ca_cert_path=ca_cert_path,
        base_dn=suffix,
        people_base=people,
        groups_base=groups,
        search_bind_dn=f"uid={SEARCH_ACCOUNT},cn=sysaccounts,cn=etc,{suffix}",
        search_password="hub-search-Lab-pw-1",
        users_group_dn=f"cn=dsaas-hub-users,{groups}",
        admins_group_dn=f"cn=dsaas-hub-admins,{groups}",
        other_group_dn=f"cn=finance,{groups}",
        nested_group_dn=f"cn=research-team,{groups}",
        deep_group_dn=f"cn=lab-interns,{groups}",
        admin_dn=ROOT_DN,
        admin_password=admin_password,
        dn_template=f"uid={{username}},{people}",
        users=MappingProxyType(users),
    )


# -- dse.ldif -------------------------------------------------------------------------------------------
def _entries(ldif: str) -> list[list[str]]:
    """An LDIF as entries of unfolded lines (template-dse.ldif folds no lines, but be safe)."""
    entries: list[list[str]] = []
    current: list[str] = []
    for raw in ldif.splitlines():
        if raw.startswith(" ") and current:
            current[-1] += raw[1:]
        elif raw.strip():
            current.append(raw)
        elif current:
            entries.append(current)
            current = []
    if current:
        entries.append(current)
    return entries


def _set(entry: list[str], attribute: str, values: Sequence[str]) -> list[str]:
    """`entry` with every value of `attribute` replaced by `values`."""
    prefix = attribute.lower() + ":"
    kept = [line for line in entry if not line.lower().replace(" ", "").startswith(prefix)]
    return kept + [f"{attribute}: {value}" for value in values]


def render_dse(
    workdir: Path, port: int, secure_port: int, rootpw_hash: str, suffix: str, *, idle_timeout: int | None = None
) -> str:
    """The instance's dse.ldif: the package's template with every path in `workdir`, and the lab's settings;
    `idle_timeout` (seconds) is `nsslapd-idletimeout` (389's default: 3600)."""
    if idle_timeout is not None and idle_timeout < 1:
        raise ValueError(f"idle_timeout {idle_timeout}: nsslapd-idletimeout is a positive number of seconds (0: never)")
    template = (DATA_DIR / "template-dse.ldif").read_text()
    values = {
        "schema_dir": str(workdir / "etc" / "schema"),
        "lock_dir": str(workdir / "lock"),
        "tmp_dir": str(workdir / "tmp"),
        "cert_dir": str(workdir / "etc"),
        "ldif_dir": str(workdir / "ldif"),
        "bak_dir": str(workdir / "bak"),
        "run_dir": str(workdir / "run"),
        "inst_dir": str(workdir),
        "log_dir": str(workdir / "log"),
        "fqdn": "localhost",
        "ds_port": str(port),
        "ds_user": _current_user(),
        "rootdn": ROOT_DN,
        "ds_passwd": rootpw_hash,
        "ds_suffix": suffix,
        "config_dir": str(workdir / "etc"),
        "db_dir": str(workdir / "db"),
        "db_home_dir": str(workdir / "db"),
        "db_lib": "bdb",
        "ldapi_enabled": "off",
        "ldapi": str(workdir / "run" / "ldapi"),
        "ldapi_autobind": "off",
    }
    for key, value in values.items():
        template = template.replace(f"%{key}%", value)
    leftover = sorted(set(re.findall(r"%[a-z_]+%", template)))
    if leftover:  # a placeholder a newer package added: fail loudly rather than start half-configured
        raise RuntimeError(f"{DATA_DIR / 'template-dse.ldif'} has placeholders this lab does not fill: {leftover}")
    out: list[list[str]] = []
    for entry in _entries(template):
        dn = entry[0].partition(":")[2].strip().lower()
        if dn == "cn=config":
            entry = _set(entry, "nsslapd-listenhost", [LOCALHOST])
            entry = _set(entry, "nsslapd-securelistenhost", [LOCALHOST])
            entry = _set(entry, "nsslapd-security", ["on"])
            entry = _set(entry, "nsslapd-securePort", [str(secure_port)])
            entry = _set(entry, "nsslapd-allow-anonymous-access", ["rootdse"])
            entry = _set(entry, "passwordExp", ["on"])
            entry = _set(entry, "passwordMaxAge", ["8640000"])
            entry = _set(entry, "passwordGraceLimit", ["0"])
            entry = _set(entry, "passwordStorageScheme", ["SSHA512"])  # PBKDF2's 10k rounds slow every bind
            if idle_timeout is not None:
                entry = _set(entry, "nsslapd-idletimeout", [str(idle_timeout)])
        elif dn == "cn=memberof plugin,cn=plugins,cn=config":
            entry = _set(entry, "nsslapd-pluginEnabled", ["on"])
            entry = _set(entry, "memberOfEntryScope", [suffix])
            entry = _set(entry, "memberOfEntryScopeExcludeSubtree", [f"cn=provisioning,{suffix}"])
        out.append(entry)
    backend = [
        "dn: cn=userRoot,cn=ldbm database,cn=plugins,cn=config",
        "objectClass: top",
        "objectClass: extensibleObject",
        "objectClass: nsBackendInstance",
        "cn: userRoot",
        f"nsslapd-suffix: {suffix}",
        f"nsslapd-directory: {workdir / 'db' / 'userRoot'}",
    ]
    mapping = [
        f'dn: cn="{suffix}",cn=mapping tree,cn=config',
        "objectClass: top",
        "objectClass: extensibleObject",
        "objectClass: nsMappingTree",
        f'cn: "{suffix}"',
        f"cn: {suffix}",
        "nsslapd-state: backend",
        "nsslapd-backend: userRoot",
    ]
    out.extend([backend, mapping])
    return "\n\n".join("\n".join(entry) for entry in out) + "\n"


def _current_user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


# -- the seed -------------------------------------------------------------------------------------------
def seed_entries(info: Ds389Info) -> list[tuple[str, dict[str, list[str]]]]:
    """(dn, attributes) in the order they must be added."""
    s = info.base_dn
    entries: list[tuple[str, dict[str, list[str]]]] = [
        (
            s,
            {
                "objectClass": ["top", "domain"],
                "dc": [s.split(",")[0].split("=")[1]],
                "aci": [
                    f'(targetattr = "{" || ".join(READABLE_ATTRIBUTES)}")(version 3.0; acl "lab: authenticated '
                    'users read users and groups"; allow (read, search, compare) userdn = "ldap:///all";)'
                ],
            },
        ),
    ]
    for container in ("cn=accounts", "cn=users,cn=accounts", "cn=groups,cn=accounts", "cn=etc"):
        entries.append((f"{container},{s}", _container(container)))
    entries.append((f"cn=sysaccounts,cn=etc,{s}", _container("cn=sysaccounts")))
    entries.append((f"cn=provisioning,{s}", _container("cn=provisioning")))
    entries.append(
        (
            info.search_bind_dn,
            {
                "objectClass": ["account", "simpleSecurityObject"],
                "uid": [SEARCH_ACCOUNT],
                "userPassword": [ssha(info.search_password)],
                "passwordExpirationTime": [FUTURE],  # IdM's system accounts never expire
            },
        )
    )
    for number, seed in enumerate(SEED):
        user = info.users[seed.login]
        attributes: dict[str, list[str]] = {
            "objectClass": list(USER_CLASSES),
            "uid": [seed.login],
            "cn": [f"{seed.given_name} {seed.surname}"],
            "givenName": [seed.given_name],
            "sn": [seed.surname],
            "displayName": [f"{seed.given_name} {seed.surname}"],
            "mail": [f"{seed.login}@ipa.example.org"],
            "uidNumber": [str(FIRST_UID_NUMBER + number)],
            "gidNumber": [str(FIRST_UID_NUMBER + number)],
            "homeDirectory": [f"/home/{seed.login}"],
            "loginShell": ["/bin/bash"],
            "krbPrincipalName": [f"{seed.login}@{REALM}"],
            "krbPasswordExpiration": [PAST if seed.state == AccountState.KRB_PASSWORD_EXPIRED else FUTURE],
            "userPassword": [ssha(user.password)],
        }
        if seed.state == AccountState.PRINCIPAL_EXPIRED:
            attributes["krbPrincipalExpiration"] = [PAST]
        if seed.state == AccountState.LOCKED:
            attributes["nsAccountLock"] = ["TRUE"]
        entries.append((user.dn, attributes))
    # children before parents, so every member exists when its group is added
    for number, name in reversed(list(enumerate(GROUPS))):
        members = [info.users[u.login].dn for u in SEED if name in u.groups]
        members += [info.group_dn(child) for child in SUBGROUPS.get(name, ())]
        group: dict[str, list[str]] = {
            "objectClass": list(GROUP_CLASSES),
            "cn": [name],
            "gidNumber": [str(FIRST_GID_NUMBER + number)],
        }
        if members:
            group["member"] = members
        entries.append((info.group_dn(name), group))
    return entries


def _container(rdn: str) -> dict[str, list[str]]:
    return {"objectClass": ["top", "nsContainer"], "cn": [rdn.split(",")[0].split("=")[1]]}


class Ds389Directory(StartedServer):
    """A seeded 389 Directory Server instance in `workdir`, run by the suite as a foreground ns-slapd."""

    def __init__(self, workdir: Path, *, suffix: str = DEFAULT_SUFFIX, idle_timeout: int | None = None) -> None:
        self.workdir = workdir
        self.suffix = suffix
        self.idle_timeout = idle_timeout
        self._port = free_port()
        self._secure_port = free_port()
        self._info = build_info(self._port, self._secure_port, workdir / "ca.pem", secrets.token_urlsafe(18), suffix)
        self._proc: subprocess.Popen[bytes] | None = None
        self._prepared = False
        self.timings: dict[str, float] = {}
        """Seconds: "create" (instance directory written), "start" (first answer), "seed"."""

    @property
    def info(self) -> Ds389Info:
        return self._info

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def error_log(self) -> Path:
        return self.workdir / "log" / "errors"

    def start(self) -> Ds389Info:
        if self.running:
            return self._info
        fresh = not self._prepared
        if fresh:
            began = time.monotonic()
            self._prepare()
            self.timings["create"] = time.monotonic() - began
        began = time.monotonic()
        self._launch()
        self.timings["start"] = time.monotonic() - began
        if fresh:
            began = time.monotonic()
            self._seed()
            self.timings["seed"] = time.monotonic() - began
        return self._info

    def stop(self) -> None:
        if self._proc is not None:
            stop_process_group(self._proc)
            self._proc = None

    def close(self) -> None:
        self.stop()

    # -- live changes, as the root DN --------------------------------------------------------------------
    def set_account_lock(self, login: str, locked: bool) -> Ds389Info:
        """IdM's `ipa user-disable` / `user-enable`: nsAccountLock TRUE, or no nsAccountLock."""
        dn = self._info.users[login].dn
        change = (ldap3.MODIFY_REPLACE, ["TRUE"]) if locked else (ldap3.MODIFY_DELETE, [])
        self._modify(dn, {"nsAccountLock": [change]}, tolerated=(16,))
        user = dataclasses.replace(self._info.users[login], state=AccountState.LOCKED if locked else None)
        self._info = dataclasses.replace(self._info, users=MappingProxyType({**self._info.users, login: user}))
        return self._info

    def set_attribute(self, login: str, attribute: str, values: Sequence[str]) -> None:
        """Replace (or, with no values, remove) one attribute of a user's entry."""
        change = (ldap3.MODIFY_REPLACE, list(values)) if values else (ldap3.MODIFY_DELETE, [])
        self._modify(self._info.users[login].dn, {attribute: [change]}, tolerated=(16,))

    def admin_connection(self) -> ldap3.Connection:
        conn = ldap3.Connection(
            ldap3.Server(LOCALHOST, port=self._port, get_info=ldap3.NONE, connect_timeout=5),
            user=ROOT_DN,
            password=self._info.admin_password,
            raise_exceptions=True,
            receive_timeout=10,
        )
        conn.bind()
        return conn

    def _modify(self, dn: str, changes: Mapping[str, object], *, tolerated: tuple[int, ...] = ()) -> None:
        conn = self.admin_connection()
        try:
            conn.raise_exceptions = False
            if not conn.modify(dn, dict(changes)) and (conn.result or {}).get("result") not in tolerated:
                raise RuntimeError(f"modifying {dn} failed: {conn.result}")
        finally:
            conn.unbind()

    # -- set-up ------------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        for sub in ("etc/schema", "db", "bak", "ldif", "run", "lock", "log", "tmp"):
            (self.workdir / sub).mkdir(parents=True)
        etc = self.workdir / "etc"
        for name in ("slapd-collations.conf", "certmap.conf"):
            shutil.copy(SYSCONF_DIR / name, etc / name)
        shutil.copy(DATA_DIR / "60kerberos.ldif", etc / "schema" / "60kerberos.ldif")
        (etc / "schema" / "65ipa-lab-groups.ldif").write_text(IPA_GROUP_SCHEMA)
        self._make_nss_db(etc)
        (etc / "dse.ldif").write_text(
            render_dse(
                self.workdir,
                self._port,
                self._secure_port,
                ssha(self._info.admin_password),
                self.suffix,
                idle_timeout=self.idle_timeout,
            )
        )
        self._prepared = True

    def _make_nss_db(self, etc: Path) -> None:
        """The instance's NSS database (no password): the lab CA trusted, the server certificate and key."""
        ca = pki.make_ca("dsaas lab 389 CA")
        server = pki.issue_server_cert(ca)
        ca.write_cert(self._info.ca_cert_path)
        bundle = etc / "server.p12"
        transport = secrets.token_urlsafe(12)  # only protects the PKCS#12 file on its way into the database
        key = serialization.load_pem_private_key(server.key_pem, password=None)
        bundle.write_bytes(
            pkcs12.serialize_key_and_certificates(
                SERVER_CERT_NICKNAME.encode(),
                key,  # type: ignore[arg-type]
                load_pem_x509_certificate(server.cert_pem),
                None,
                serialization.BestAvailableEncryption(transport.encode()),
            )
        )
        password_file = etc / "p12.pw"
        password_file.write_text(transport)
        for command in (
            [CERTUTIL, "-N", "-d", f"sql:{etc}", "--empty-password"],
            [CERTUTIL, "-A", "-d", f"sql:{etc}", "-n", ca.name, "-t", "CT,,", "-a", "-i", str(self._info.ca_cert_path)],
            [PK12UTIL, "-i", str(bundle), "-d", f"sql:{etc}", "-w", str(password_file), "-K", ""],
        ):
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command[:2])} failed: {done.stderr or done.stdout}")
        bundle.unlink()
        password_file.unlink()

    def _launch(self) -> None:
        log = (self.workdir / "log" / "ns-slapd.out").open("ab")
        # -d 0: stay in the foreground (no fork into the background), log to the error log as configured
        self._proc = subprocess.Popen(
            [NS_SLAPD, "-D", str(self.workdir / "etc"), "-i", str(self.workdir / "run" / "ns-slapd.pid"), "-d", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

        def ready() -> bool:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(
                    f"ns-slapd exited with {self._proc.returncode}:\n{tail(self.error_log)}\n"
                    f"{tail(self.workdir / 'log' / 'ns-slapd.out')}"
                )
            return port_open(self._port) and port_open(self._secure_port)

        if not wait_until(ready, timeout=30):
            raise RuntimeError(
                f"389 Directory Server did not answer on {LOCALHOST}:{self._port}:\n{tail(self.error_log)}"
            )

    def _seed(self) -> None:
        conn = self.admin_connection()
        try:
            for dn, attributes in seed_entries(self._info):
                classes = attributes["objectClass"]
                conn.add(dn, classes, {k: v for k, v in attributes.items() if k != "objectClass"})
            for user in self._info.users.values():
                if user.state == AccountState.PASSWORD_EXPIRED:
                    # 389 sets passwordExpirationTime (now + passwordMaxAge) when a password is set; move it back
                    conn.modify(user.dn, {"passwordExpirationTime": [(ldap3.MODIFY_REPLACE, [PAST])]})
        finally:
            conn.unbind()


def point_at_ds389(
    values: dict[str, Any], info: Ds389Info, *, lookup_dn: bool = True, tls_strategy: str = "before_bind", **ldap: Any
) -> dict[str, Any]:
    """A stack's settings values with its site data in `dsaas:hub.ldap` replaced by this server's (StartTLS
    verified against the lab CA, the search account, hub-users allowed, hub-admins admin; LDAPS with
    tls_strategy on_connect; DN template instead of lookup with lookup_dn False); the stack's behaviour keys
    stay; `ldap` overrides keys (camelCase, as in a stack file)."""
    from tools.lab.stack_hub import BEHAVIOUR_KEYS, project_copy  # the lab's hub helpers import far more

    stack_ldap = values["dsaas:hub"]["ldap"]
    edited_ldap: dict[str, Any] = {key: stack_ldap[key] for key in BEHAVIOUR_KEYS if key in stack_ldap}
    edited_ldap.update(
        serverAddress=info.host,
        serverPort=info.ldaps_port if tls_strategy == "on_connect" else info.ldap_port,
        tlsStrategy=tls_strategy,
        allowedGroups=[info.users_group_dn],
        adminGroups=[info.admins_group_dn],
        userAttribute=info.user_attribute,
        lookupDn=lookup_dn,
        searchUser=info.search_bind_dn,
    )
    if tls_strategy != "insecure":
        edited_ldap["caFile"] = project_copy(info.ca_cert_path, "ca.pem")
    if lookup_dn:
        edited_ldap["userSearchBase"] = info.people_base
    else:
        edited_ldap["bindDnTemplates"] = [info.dn_template]
    edited_ldap.update(ldap)
    edited = copy.deepcopy(values)
    edited["dsaas:hub"]["ldap"] = edited_ldap
    return edited
