"""A throwaway OpenLDAP directory on 127.0.0.1 with real TLS, seeded in one of the shapes found in the field.

Debian's `slapd` runs as a plain foreground process from its own `slapd.conf` in a work directory (mdb
backend). StartTLS is served on the ldap:// port and LDAPS on a second port, with a server certificate for
127.0.0.1/localhost signed by a CA generated per directory.

Every shape holds the same logical people (login → groups): alice, bob, jean-luc.picard (hub users),
carol (hub admin), dave (`finance` only), erin (no group), frank (`research-team`, which the shapes that can
nest groups make a member of the hub-users group). Passwords are `<login>-Lab-pw-1`. Base `dc=example,dc=org`.

`DirectoryShape.RFC2307` (the default; schemas core, cosine, nis, inetorgperson)::

    ou=people    uid=<login>: inetOrgPerson + posixAccount (uidNumber, gidNumber, homeDirectory)
                 e.g. uid=alice,ou=people,dc=example,dc=org; uid=jean-luc.picard,ou=people,...
    ou=groups    posixGroup (cn, gidNumber, memberUid: <login>): dsaas-hub-users, dsaas-hub-admins,
                 finance, research-team
    ou=services  cn=hub-search: read-only search account

  A posixGroup lists login names, not DNs, so it cannot hold another group: `research-team` (frank) exists
  but is NOT nested in `dsaas-hub-users`, and frank is no hub user here. No memberof overlay (no memberOf).

`DirectoryShape.ACTIVE_DIRECTORY` (schemas core, cosine, inetorgperson and a lab `ad-lite.schema`; no nis,
so no `memberUid`/`posixAccount`)::

    ou=People    cn=<Full Name> in several OUs; the login is `sAMAccountName`, never in the DN:
                 cn=Alice Example,ou=Research,ou=People,dc=example,dc=org
                 cn=Bob Example,ou=Clinic,ou=People,...
                 cn=Picard\\, Jean-Luc,ou=Clinic,ou=People,...   (login jean-luc.picard; escaped comma)
                 cn=Carol Example,ou=IT,...; cn=Dave Example,ou=Administration,...;
                 cn=Erin Example,ou=Clinic,...; cn=Frank Example,ou=Research,...
                 inetOrgPerson + dsaasAdUser (sAMAccountName, userAccountControl 512 / 514 disabled)
    ou=groups    groupOfNames (member: <user DN>); cn=research-team (member: frank) is itself a member of
                 cn=dsaas-hub-users
    ou=services  cn=hub-search

  The memberof overlay keeps `memberOf` on users and on the nested group (research-team carries
  memberOf: dsaas-hub-users), direct memberships only, as AD's own `memberOf`. slapd does not enforce
  `userAccountControl`: a "disabled" account still binds; only clients that filter on it see a difference.

`DirectoryShape.UNIQUE_MEMBER` (schemas core, cosine, inetorgperson; as 389-DS / Oracle directories)::

    ou=people    uid=<login>: inetOrgPerson
    ou=groups    groupOfUniqueNames (uniqueMember: <user DN>); cn=research-team (uniqueMember: frank) is a
                 uniqueMember of cn=dsaas-hub-users
    ou=services  cn=hub-search

  No memberof overlay.

`DirectoryShape.OPENLDAP` (schemas core, cosine, nis, inetorgperson; the common stock OpenLDAP install)::

    ou=people    uid=<login>: inetOrgPerson (a DN template builds every user's DN)
    ou=groups    groupOfNames (member: <user DN>); cn=research-team (member: frank) is a member of
                 cn=dsaas-hub-users
    ou=services  cn=hub-search

  The memberof overlay keeps `memberOf` on users and on the nested group (research-team carries
  memberOf: dsaas-hub-users), direct memberships only. nis is loaded (no entry uses it), so filters naming
  `memberUid` are valid here, as ldapauthenticator's default group filter is.

ACLs (every shape): the root DSE and cn=Subschema are public; anonymous binds may authenticate but read no
entry; the search account reads people and groups (never passwords); a bound user reads their own entry and
the groups (ldapauthenticator searches the groups with the user's own connection). ldapauthenticator 2.0.2's
default `group_search_filter` `(|(member={userdn})(uniqueMember={userdn})(memberUid={uid}))` matches every
shape's direct memberships (not nested ones).

Usage::

    with LdapDirectory(tmp_path, shape=DirectoryShape.ACTIVE_DIRECTORY) as directory:
        info = directory.info          # frozen DirectoryInfo: URLs, CA file, DNs, users, memberships
        directory.remove_member(info.users_group_dn, "alice")   # live, as rootdn; `directory.info` follows
        directory.stop()               # "the directory is down"
        directory.start()              # back again on the same ports with the same data

`directory.info` is replaced on each change (`DirectoryInfo` is frozen): read it again after a change.
`LdapDirectory(..., idle_timeout=2)` makes slapd close connections idle for 2 s (`idletimeout`), as AD closes
idle LDAP connections after `MaxConnIdleTime`.
`LdapDirectory(..., trusted_ca=False)` signs the server certificate with a second CA while
`info.ca_cert_path` still names the first: clients that verify see an untrusted certificate.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

import ldap3
from ldap3.utils.dn import escape_rdn, parse_dn

from tools.lab import pki
from tools.lab.procs import LOCALHOST, StartedServer, free_port, port_open, stop_process_group, tail, wait_until

SLAPD = "/usr/sbin/slapd"
LDAPADD = "/usr/bin/ldapadd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
DEFAULT_BASE_DN = "dc=example,dc=org"
AD_SCHEMA_FILE = "ad-lite.schema"


class DirectoryShape(StrEnum):
    """How users and groups are laid out (see the module docstring for each tree)."""

    RFC2307 = "rfc2307"
    """uid=<login>,ou=people; posixGroup with memberUid: <login>; no nesting possible."""
    ACTIVE_DIRECTORY = "active-directory"
    """cn=<Full Name> in several OUs, sAMAccountName; groupOfNames with member: <DN>, memberOf, nesting."""
    UNIQUE_MEMBER = "unique-member"
    """uid=<login>,ou=people; groupOfUniqueNames with uniqueMember: <DN>, nesting."""
    OPENLDAP = "openldap"
    """uid=<login>,ou=people (nis loaded); groupOfNames with member: <DN>, memberOf overlay, nesting."""


@dataclass(frozen=True)
class _Traits:
    schemas: tuple[str, ...]
    people_ou: str
    user_attribute: str
    membership_attribute: str
    group_class: str
    can_nest: bool
    memberof: bool
    indexes: tuple[str, ...]


TRAITS: Mapping[DirectoryShape, _Traits] = MappingProxyType(
    {
        DirectoryShape.RFC2307: _Traits(
            schemas=("core", "cosine", "nis", "inetorgperson"),
            people_ou="people",
            user_attribute="uid",
            membership_attribute="memberUid",
            group_class="posixGroup",
            can_nest=False,
            memberof=False,
            indexes=("uid", "memberUid"),
        ),
        DirectoryShape.ACTIVE_DIRECTORY: _Traits(
            schemas=("core", "cosine", "inetorgperson"),
            people_ou="People",
            user_attribute="sAMAccountName",
            membership_attribute="member",
            group_class="groupOfNames",
            can_nest=True,
            memberof=True,
            indexes=("sAMAccountName", "member"),
        ),
        DirectoryShape.UNIQUE_MEMBER: _Traits(
            schemas=("core", "cosine", "inetorgperson"),
            people_ou="people",
            user_attribute="uid",
            membership_attribute="uniqueMember",
            group_class="groupOfUniqueNames",
            can_nest=True,
            memberof=False,
            indexes=("uid", "uniqueMember"),
        ),
        DirectoryShape.OPENLDAP: _Traits(
            schemas=("core", "cosine", "nis", "inetorgperson"),
            people_ou="people",
            user_attribute="uid",
            membership_attribute="member",
            group_class="groupOfNames",
            can_nest=True,
            memberof=True,
            indexes=("uid", "member"),
        ),
    }
)

# A few AD attributes for OpenLDAP. The OIDs are LAB-ONLY, under the private arc 1.3.6.1.4.1.99999 (not
# Microsoft's 1.2.840.113556 ones): never load this file into a real directory.
AD_LITE_SCHEMA = """# generated by tools/lab/directory.py: AD-like attributes, LAB-ONLY OIDs (1.3.6.1.4.1.99999)
attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'sAMAccountName'
    DESC 'lab: the pre-Windows-2000 logon name, as in Active Directory'
    EQUALITY caseIgnoreMatch
    SUBSTR caseIgnoreSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{256}
    SINGLE-VALUE )

attributetype ( 1.3.6.1.4.1.99999.1.2 NAME 'userAccountControl'
    DESC 'lab: AD account flags (512 normal account, 514 disabled); slapd does not enforce them'
    EQUALITY integerMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.27
    SINGLE-VALUE )

objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'dsaasAdUser'
    DESC 'lab: Active Directory account attributes on an inetOrgPerson'
    SUP top AUXILIARY
    MAY ( sAMAccountName $ userAccountControl ) )
"""
AD_USER_CLASS = "dsaasAdUser"
UAC_NORMAL = 512
UAC_DISABLED = 514  # NORMAL_ACCOUNT | ACCOUNTDISABLE


@dataclass(frozen=True)
class LdapUser:
    """A seeded person.

    `groups` holds the DNs of the groups the user is a DIRECT member of; `nested_groups` every group the
    user is in, directly or through a nested group (direct ones first).
    """

    name: str
    """The login name (same as `login`, kept for older callers)."""
    password: str
    dn: str
    cn: str
    mail: str
    groups: tuple[str, ...]
    login: str
    given_name: str
    surname: str
    nested_groups: tuple[str, ...]
    disabled: bool = False
    """AD shape: userAccountControl is 514 (the directory still lets the account bind)."""


@dataclass(frozen=True)
class DirectoryInfo:
    """Everything a client (or a hub configuration) needs to talk to the lab directory."""

    host: str
    ldap_port: int
    ldaps_port: int
    ldap_url: str
    ldaps_url: str
    ca_cert_path: Path
    """The CA handed out to clients. With `trusted_ca=False` it did NOT sign the server certificate."""
    base_dn: str
    people_base: str
    """Every user lives somewhere below it (in the AD shape in OUs below `ou=People`)."""
    groups_base: str
    services_base: str
    search_bind_dn: str
    search_password: str
    users_group_dn: str
    admins_group_dn: str
    other_group_dn: str
    admin_dn: str
    """The rootdn (bypasses ACLs): for seeding and test set-up only."""
    admin_password: str
    users: Mapping[str, LdapUser] = field(default_factory=dict)
    """login → user."""
    shape: DirectoryShape = DirectoryShape.RFC2307
    user_attribute: str = "uid"
    """The attribute holding the login name: "uid" or "sAMAccountName"."""
    nested_group_dn: str = ""
    """`research-team`: a member of the users group where the shape can nest groups (not in RFC2307)."""
    dn_template: str | None = None
    """`uid={username},<people_base>`; None in the AD shape, where no template can build a user's DN."""
    membership_attribute: str = "memberUid"
    """The group attribute listing members: "memberUid" (a login), "member" or "uniqueMember" (a DN)."""
    subgroups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """group DN → DNs of the groups that are members of it (empty in the RFC2307 shape)."""

    def user(self, name: str) -> LdapUser:
        return self.users[name]

    @property
    def has_memberof(self) -> bool:
        """Whether the memberof overlay keeps `memberOf` on users and nested groups (AD and OpenLDAP shapes)."""
        return TRAITS[self.shape].memberof

    @property
    def schemas(self) -> tuple[str, ...]:
        """The OpenLDAP schema files loaded (the AD shape also loads the lab's ad-lite.schema)."""
        return TRAITS[self.shape].schemas

    @property
    def group_dns(self) -> tuple[str, ...]:
        """Every seeded group: users, admins, other (finance), nested (research-team)."""
        return (self.users_group_dn, self.admins_group_dn, self.other_group_dn, self.nested_group_dn)

    def is_member(self, login: str, group_dn: str, *, nested: bool) -> bool:
        """Whether `login` is in `group_dn` (the current truth): directly, or also through nested groups."""
        user = self.users[login]
        groups = user.nested_groups if nested else user.groups
        return dn_key(group_dn) in {dn_key(g) for g in groups}

    def members(self, group_dn: str, *, nested: bool = False) -> frozenset[str]:
        """The logins in `group_dn`, directly or also through nested groups."""
        return frozenset(login for login in self.users if self.is_member(login, group_dn, nested=nested))

    def membership_value(self, login: str) -> str:
        """What the group's membership attribute holds for `login`: the login itself or the user's DN."""
        return login if self.membership_attribute == "memberUid" else self.users[login].dn


@dataclass(frozen=True)
class SeedUser:
    login: str
    given_name: str
    surname: str
    cn: str
    ad_ou: str
    """The OU below ou=People that holds the user in the AD shape."""
    roles: tuple[str, ...]
    """"users", "admins", "other" (finance), "nested" (research-team)."""


SEED_USERS: tuple[SeedUser, ...] = (
    SeedUser("alice", "Alice", "Example", "Alice Example", "Research", ("users",)),
    SeedUser("bob", "Bob", "Example", "Bob Example", "Clinic", ("users",)),
    SeedUser("carol", "Carol", "Example", "Carol Example", "IT", ("admins",)),
    SeedUser("dave", "Dave", "Example", "Dave Example", "Administration", ("other",)),
    SeedUser("erin", "Erin", "Example", "Erin Example", "Clinic", ()),
    SeedUser("frank", "Frank", "Example", "Frank Example", "Research", ("nested",)),
    SeedUser("jean-luc.picard", "Jean-Luc", "Picard", "Picard, Jean-Luc", "Clinic", ("users",)),
)
GROUP_NAMES: Mapping[str, str] = MappingProxyType(
    {"users": "dsaas-hub-users", "admins": "dsaas-hub-admins", "other": "finance", "nested": "research-team"}
)
GROUP_GID_NUMBERS: Mapping[str, int] = MappingProxyType(
    {"users": 20001, "admins": 20002, "other": 20003, "nested": 20004}
)
PRIMARY_GID_NUMBER = 10000
FIRST_UID_NUMBER = 10001
SEARCH_ACCOUNT = "hub-search"


def ssha(password: str) -> str:
    """An OpenLDAP `{SSHA}` userPassword value."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _unescape(value: str) -> str:
    """An RFC 4514 attribute value with its escapes undone (`\\,` and `\\2C` are both a comma)."""
    raw = bytearray()
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            pair = value[index + 1 : index + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                raw.append(int(pair, 16))
                index += 3
                continue
            char = value[index + 1]
            index += 1
        raw += char.encode()
        index += 1
    return raw.decode(errors="replace")


def dn_key(dn: str) -> tuple[tuple[str, str], ...]:
    """A DN for comparison: attribute names and values lower-cased, escapes undone, spaces around `,` dropped.

    Close enough to the directory's own DN matching for the lab's names (no multi-valued RDNs).
    """
    return tuple((attr.lower(), _unescape(value).lower()) for attr, value, _ in parse_dn(dn, strip=True))


def _rdn_value(dn: str) -> str:
    return dn.split(",")[0].split("=", 1)[1]


def transitive_groups(direct: Iterable[str], subgroups: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """`direct` plus every group that contains one of them, at any depth (direct ones first)."""
    found = list(dict.fromkeys(direct))
    keys = {dn_key(g) for g in found}
    changed = True
    while changed:
        changed = False
        for parent, children in subgroups.items():
            if dn_key(parent) not in keys and any(dn_key(child) in keys for child in children):
                found.append(parent)
                keys.add(dn_key(parent))
                changed = True
    return tuple(found)


def _with_groups(info: DirectoryInfo, groups_of: Mapping[str, tuple[str, ...]]) -> DirectoryInfo:
    """`info` with the users' direct groups replaced (logins not named keep theirs) and nesting recomputed."""
    users: dict[str, LdapUser] = {}
    for login, user in info.users.items():
        direct = groups_of.get(login, user.groups)
        users[login] = dataclasses.replace(user, groups=direct, nested_groups=transitive_groups(direct, info.subgroups))
    return dataclasses.replace(info, users=MappingProxyType(users))


def build_info(
    base_dn: str,
    ldap_port: int,
    ldaps_port: int,
    ca_cert_path: Path,
    admin_password: str,
    shape: DirectoryShape = DirectoryShape.RFC2307,
) -> DirectoryInfo:
    traits = TRAITS[shape]
    people = f"ou={traits.people_ou},{base_dn}"
    groups = f"ou=groups,{base_dn}"
    services = f"ou=services,{base_dn}"
    group_dns = {role: f"cn={name},{groups}" for role, name in GROUP_NAMES.items()}
    subgroups = {group_dns["users"]: (group_dns["nested"],)} if traits.can_nest else {}

    def user_dn(seed: SeedUser) -> str:
        if shape is DirectoryShape.ACTIVE_DIRECTORY:
            return f"cn={escape_rdn(seed.cn)},ou={seed.ad_ou},{people}"
        return f"uid={escape_rdn(seed.login)},{people}"

    users = {
        seed.login: LdapUser(
            name=seed.login,
            password=f"{seed.login}-Lab-pw-1",
            dn=user_dn(seed),
            cn=seed.cn,
            mail=f"{seed.login}@example.org",
            groups=tuple(group_dns[role] for role in seed.roles),
            login=seed.login,
            given_name=seed.given_name,
            surname=seed.surname,
            nested_groups=(),
        )
        for seed in SEED_USERS
    }
    info = DirectoryInfo(
        host=LOCALHOST,
        ldap_port=ldap_port,
        ldaps_port=ldaps_port,
        ldap_url=f"ldap://{LOCALHOST}:{ldap_port}",
        ldaps_url=f"ldaps://{LOCALHOST}:{ldaps_port}",
        ca_cert_path=ca_cert_path,
        base_dn=base_dn,
        people_base=people,
        groups_base=groups,
        services_base=services,
        search_bind_dn=f"cn={SEARCH_ACCOUNT},{services}",
        search_password="hub-search-Lab-pw-1",
        users_group_dn=group_dns["users"],
        admins_group_dn=group_dns["admins"],
        other_group_dn=group_dns["other"],
        admin_dn=f"cn=admin,{base_dn}",
        admin_password=admin_password,
        users=MappingProxyType(users),
        shape=shape,
        user_attribute=traits.user_attribute,
        nested_group_dn=group_dns["nested"],
        dn_template=None if shape is DirectoryShape.ACTIVE_DIRECTORY else f"uid={{username}},{people}",
        membership_attribute=traits.membership_attribute,
        subgroups=MappingProxyType(subgroups),
    )
    return _with_groups(info, {})


def render_slapd_conf(info: DirectoryInfo, workdir: Path, rootpw_hash: str, *, idle_timeout: int | None = None) -> str:
    """slapd.conf for the shape; `idle_timeout` (seconds) makes slapd close idle client connections, as AD's
    `MaxConnIdleTime` does (900 s there; a few seconds in tests)."""
    if idle_timeout is not None and idle_timeout < 1:
        raise ValueError(f"idle_timeout {idle_timeout}: slapd's idletimeout is a positive number of seconds")
    traits = TRAITS[info.shape]
    schema_files = [SCHEMA_DIR / f"{name}.schema" for name in traits.schemas]
    if info.shape is DirectoryShape.ACTIVE_DIRECTORY:
        schema_files.append(workdir / AD_SCHEMA_FILE)
    includes = "\n".join(f"include {path}" for path in schema_files)
    indexes = "\n".join(f"index {attribute} eq" for attribute in traits.indexes)
    search = info.search_bind_dn
    memberof_module = "moduleload memberof\n" if traits.memberof else ""
    memberof_overlay = (
        "overlay memberof\n"
        "memberof-group-oc groupOfNames\n"
        "memberof-member-ad member\n"
        "memberof-memberof-ad memberOf\n"
        "memberof-refint TRUE\n"
        if traits.memberof
        else ""
    )
    return f"""# generated by tools/lab/directory.py (shape {info.shape})
{includes}
pidfile {workdir / "slapd.pid"}
argsfile {workdir / "slapd.args"}
{f"idletimeout {idle_timeout}" if idle_timeout is not None else ""}
modulepath {MODULE_DIR}
moduleload back_mdb
{memberof_module}
TLSCACertificateFile {workdir / "served-ca.pem"}
TLSCertificateFile {workdir / "server.pem"}
TLSCertificateKeyFile {workdir / "server.key"}
TLSVerifyClient never

# The root DSE and the schema are public, as in AD.
access to dn.base="" by * read
access to dn.base="cn=Subschema" by * read

database mdb
maxsize 67108864
suffix "{info.base_dn}"
rootdn "{info.admin_dn}"
rootpw {rootpw_hash}
directory {workdir / "data"}
index objectClass eq
{indexes}

{memberof_overlay}
access to attrs=userPassword
  by self write
  by anonymous auth
  by * none
access to dn.subtree="{info.people_base}"
  by self read
  by dn.exact="{search}" read
  by * none
access to dn.subtree="{info.groups_base}"
  by dn.exact="{search}" read
  by users read
  by * none
access to *
  by dn.exact="{search}" read
  by * none
"""


def _ou_entry(dn: str) -> str:
    return f"dn: {dn}\nobjectClass: organizationalUnit\nou: {_rdn_value(dn)}"


def _user_entry(info: DirectoryInfo, user: LdapUser, uid_number: int) -> str:
    lines = [f"dn: {user.dn}", "objectClass: inetOrgPerson"]
    if info.shape is DirectoryShape.RFC2307:
        lines.append("objectClass: posixAccount")
    if info.shape is DirectoryShape.ACTIVE_DIRECTORY:
        lines += [f"objectClass: {AD_USER_CLASS}", f"sAMAccountName: {user.login}"]
        lines += [f"userAccountControl: {UAC_DISABLED if user.disabled else UAC_NORMAL}"]
        lines += [f"displayName: {user.given_name} {user.surname}"]
    else:
        lines.append(f"uid: {user.login}")
    lines += [
        f"cn: {user.cn}",
        f"sn: {user.surname}",
        f"givenName: {user.given_name}",
        f"mail: {user.mail}",
    ]
    if info.shape is DirectoryShape.RFC2307:
        lines += [
            f"uidNumber: {uid_number}",
            f"gidNumber: {PRIMARY_GID_NUMBER}",
            f"homeDirectory: /home/{user.login}",
            "loginShell: /bin/bash",
        ]
    lines.append(f"userPassword: {ssha(user.password)}")
    return "\n".join(lines)


def _group_entry(info: DirectoryInfo, group_dn: str, gid_number: int) -> str:
    traits = TRAITS[info.shape]
    lines = [f"dn: {group_dn}", f"objectClass: {traits.group_class}", f"cn: {_rdn_value(group_dn)}"]
    if info.shape is DirectoryShape.RFC2307:
        lines.append(f"gidNumber: {gid_number}")
    values = [info.membership_value(login) for login, user in info.users.items() if group_dn in user.groups]
    values += list(info.subgroups.get(group_dn, ()))
    lines += [f"{traits.membership_attribute}: {value}" for value in values]
    return "\n".join(lines)


def render_seed_ldif(info: DirectoryInfo) -> str:
    dc = _rdn_value(info.base_dn)
    entries = [
        f"dn: {info.base_dn}\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\no: {dc}\ndc: {dc}",
    ]
    ous = [info.people_base]
    if info.shape is DirectoryShape.ACTIVE_DIRECTORY:
        ous += list(dict.fromkeys(f"ou={seed.ad_ou},{info.people_base}" for seed in SEED_USERS))
    ous += [info.groups_base, info.services_base]
    entries += [_ou_entry(dn) for dn in ous]
    entries.append(
        f"dn: {info.search_bind_dn}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: {SEARCH_ACCOUNT}\ndescription: read-only search account for JupyterHub\n"
        f"userPassword: {ssha(info.search_password)}"
    )
    entries += [_user_entry(info, user, FIRST_UID_NUMBER + index) for index, user in enumerate(info.users.values())]
    # Nested groups first, so the memberof overlay finds them when their parent group is added.
    nested_first = sorted(info.group_dns, key=lambda dn: dn != info.nested_group_dn)
    gid_numbers = {dn: GROUP_GID_NUMBERS[role] for role, dn in zip(GROUP_NAMES, info.group_dns, strict=True)}
    entries += [_group_entry(info, dn, gid_numbers[dn]) for dn in nested_first]
    return "\n\n".join(entries) + "\n"


class LdapDirectory(StartedServer):
    """A slapd process with seeded data. `start()` / `stop()` may be called repeatedly (same ports, same data)."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        shape: DirectoryShape = DirectoryShape.RFC2307,
        trusted_ca: bool = True,
        base_dn: str = DEFAULT_BASE_DN,
        start_timeout: float = 10.0,
        idle_timeout: int | None = None,
    ) -> None:
        for tool in (SLAPD, LDAPADD):
            if not os.access(tool, os.X_OK):
                raise RuntimeError(f"{tool} is missing: install the Debian packages slapd and ldap-utils (make setup)")
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="lab-ldap-")) if workdir is None else workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.shape = DirectoryShape(shape)
        self.trusted_ca = trusted_ca
        self.base_dn = base_dn
        self.start_timeout = start_timeout
        self.idle_timeout = idle_timeout
        self.log_path = self.workdir / "slapd.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._info: DirectoryInfo | None = None
        self._seeded = False

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def info(self) -> DirectoryInfo:
        """The current truth, replaced by each membership or account change."""
        if self._info is None:
            raise RuntimeError("the directory was never started")
        return self._info

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> DirectoryInfo:
        if self.running:
            return self.info
        if self._info is None:
            self._prepare()
        for attempt in range(3):
            if self._launch():
                break
            if self._seeded or attempt == 2:
                raise RuntimeError(f"slapd did not start; log {self.log_path}:\n{tail(self.log_path)}")
            self._prepare()  # a port was taken between choosing and binding: choose again
        if not self._seeded:
            self._seed()
            self._seeded = True
        return self.info

    def stop(self) -> None:
        if self._proc is not None:
            stop_process_group(self._proc, timeout=5)
            self._proc = None

    def close(self) -> None:
        """Stop and, if the work directory was created here, remove it."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- live changes (as the rootdn) -------------------------------------------------------
    def add_member(self, group_dn: str, login: str) -> DirectoryInfo:
        """Make `login` a direct member of `group_dn` (a no-op if it is one). Returns the new `info`."""
        return self._change_membership(group_dn, login, add=True)

    def remove_member(self, group_dn: str, login: str) -> DirectoryInfo:
        """Remove `login`'s direct membership of `group_dn` (a no-op if none). Returns the new `info`.

        groupOfNames and groupOfUniqueNames must keep one member: removing the last one raises.
        """
        return self._change_membership(group_dn, login, add=False)

    def set_account_disabled(self, login: str, disabled: bool) -> DirectoryInfo:
        """AD shape: set `userAccountControl` to 514 (disabled) or 512. slapd itself still accepts the bind."""
        info = self.info
        if info.shape is not DirectoryShape.ACTIVE_DIRECTORY:
            raise ValueError(f"userAccountControl exists only in the {DirectoryShape.ACTIVE_DIRECTORY} shape")
        user = info.users[login]
        value = UAC_DISABLED if disabled else UAC_NORMAL
        self._modify(user.dn, {"userAccountControl": [(ldap3.MODIFY_REPLACE, [str(value)])]}, tolerated=())
        users = {**info.users, login: dataclasses.replace(user, disabled=disabled)}
        self._info = dataclasses.replace(info, users=MappingProxyType(users))
        return self._info

    def _change_membership(self, group_dn: str, login: str, *, add: bool) -> DirectoryInfo:
        info = self.info
        user = info.users[login]
        canonical = {dn_key(dn): dn for dn in info.group_dns}.get(dn_key(group_dn))
        if canonical is None:
            raise ValueError(f"{group_dn!r} is not one of the seeded groups {info.group_dns}")
        operation = ldap3.MODIFY_ADD if add else ldap3.MODIFY_DELETE
        # 20 attributeOrValueExists (already a member), 16 noSuchAttribute (not a member): nothing to do.
        tolerated = (20,) if add else (16,)
        value = info.membership_value(login)
        self._modify(canonical, {info.membership_attribute: [(operation, [value])]}, tolerated=tolerated)
        others = tuple(g for g in user.groups if dn_key(g) != dn_key(canonical))
        groups = (*others, canonical) if add else others
        self._info = _with_groups(info, {login: groups})
        return self._info

    def _modify(self, dn: str, changes: Mapping[str, object], *, tolerated: tuple[int, ...]) -> None:
        info = self.info
        if not self.running:
            raise RuntimeError("the directory is not running")
        server = ldap3.Server(info.host, port=info.ldap_port, get_info=ldap3.NONE)
        conn = ldap3.Connection(server, info.admin_dn, info.admin_password, auto_bind=ldap3.AUTO_BIND_NO_TLS)
        try:
            if not conn.modify(dn, dict(changes)) and conn.result["result"] not in tolerated:
                result = conn.result
                raise RuntimeError(
                    f"modifying {dn} failed: {result['result']} {result['description']} {result['message']}".rstrip()
                )
        finally:
            conn.unbind()

    # -- internals -------------------------------------------------------------------------
    def _prepare(self) -> None:
        work = self.workdir
        data = work / "data"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir()
        handed_out = pki.make_ca("dsaas lab LDAP CA")
        signer = handed_out if self.trusted_ca else pki.make_ca("dsaas lab UNTRUSTED CA")
        handed_out.write_cert(work / "ca.pem")
        signer.write_cert(work / "served-ca.pem")
        pki.issue_server_cert(signer).write(work / "server.pem", work / "server.key")
        admin_password = secrets.token_urlsafe(16)
        (work / "admin.pw").write_text(admin_password)
        (work / "admin.pw").chmod(0o600)
        ldap_port = free_port()
        ldaps_port = free_port()
        while ldaps_port == ldap_port:
            ldaps_port = free_port()
        info = build_info(self.base_dn, ldap_port, ldaps_port, work / "ca.pem", admin_password, self.shape)
        if self.shape is DirectoryShape.ACTIVE_DIRECTORY:
            (work / AD_SCHEMA_FILE).write_text(AD_LITE_SCHEMA)
        (work / "slapd.conf").write_text(
            render_slapd_conf(info, work, ssha(admin_password), idle_timeout=self.idle_timeout)
        )
        self._info = info

    def _launch(self) -> bool:
        info = self.info
        urls = f"ldap://{LOCALHOST}:{info.ldap_port}/ ldaps://{LOCALHOST}:{info.ldaps_port}/"
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                # -d 256 (stats) keeps slapd in the foreground and logs connections, binds and TLS to stderr.
                [SLAPD, "-f", str(self.workdir / "slapd.conf"), "-h", urls, "-d", "256"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        proc = self._proc

        def ready() -> bool:
            return proc.poll() is not None or (port_open(info.ldap_port) and port_open(info.ldaps_port))

        wait_until(ready, self.start_timeout, interval=0.05)
        if proc.poll() is not None or not port_open(info.ldap_port):
            self.stop()
            return False
        return True

    def _seed(self) -> None:
        info = self.info
        ldif = self.workdir / "seed.ldif"
        ldif.write_text(render_seed_ldif(info))
        password_file = str(self.workdir / "admin.pw")
        result = subprocess.run(
            [LDAPADD, "-x", "-H", info.ldap_url, "-D", info.admin_dn, "-y", password_file, "-f", str(ldif)],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if result.returncode != 0:
            raise RuntimeError(f"seeding the directory failed: {result.stderr.strip()}")
