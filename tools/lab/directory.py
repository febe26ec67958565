"""A throwaway OpenLDAP directory on 127.0.0.1 with real TLS, seeded like a small Active Directory.

Debian's `slapd` runs as a plain foreground process from its own `slapd.conf` in a work directory (mdb
backend; schemas core, cosine, nis, inetorgperson; the memberof overlay so users carry `memberOf` as in
AD). StartTLS is served on the ldap:// port and LDAPS on a second port, with a server certificate for
127.0.0.1/localhost signed by a CA generated per directory.

Tree (base `dc=example,dc=org`)::

    ou=people    alice, bob (hub users), carol (hub admin), dave (unrelated group only), erin (no group)
    ou=groups    groupOfNames: dsaas-hub-users, dsaas-hub-admins, finance (member = user DN)
    ou=services  cn=hub-search: read-only search account

ACLs: the root DSE and schema are public; anonymous binds may authenticate but read nothing else; the
search account reads people and groups (never passwords); a bound user reads their own entry and the
groups (ldapauthenticator searches the groups with the user's own connection).

groupOfNames/`member` is what ldapauthenticator 2.0.2's default `group_search_filter`
`(|(member={userdn})(uniqueMember={userdn})(memberUid={uid}))` matches first.

Usage::

    with LdapDirectory(tmp_path) as directory:
        info = directory.info          # frozen DirectoryInfo: URLs, CA file, DNs, users
        directory.stop()               # "the directory is down"
        directory.start()              # back again on the same ports with the same data

`LdapDirectory(..., trusted_ca=False)` signs the server certificate with a second CA while
`info.ca_cert_path` still names the first: clients that verify see an untrusted certificate.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, TracebackType

from tools.lab import pki
from tools.lab.procs import LOCALHOST, free_port, port_open, stop_process_group, tail, wait_until

SLAPD = "/usr/sbin/slapd"
LDAPADD = "/usr/bin/ldapadd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")
DEFAULT_BASE_DN = "dc=example,dc=org"


@dataclass(frozen=True)
class LdapUser:
    """A seeded person. `groups` holds group DNs."""

    name: str
    password: str
    dn: str
    cn: str
    mail: str
    groups: tuple[str, ...]


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

    def user(self, name: str) -> LdapUser:
        return self.users[name]


# name → (given name, groups by role). Roles: "users", "admins", "other".
SEED_USERS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "alice": ("Alice", ("users",)),
    "bob": ("Bob", ("users",)),
    "carol": ("Carol", ("admins",)),
    "dave": ("Dave", ("other",)),
    "erin": ("Erin", ()),
}
GROUP_NAMES: Mapping[str, str] = {"users": "dsaas-hub-users", "admins": "dsaas-hub-admins", "other": "finance"}
SEARCH_ACCOUNT = "hub-search"


def ssha(password: str) -> str:
    """An OpenLDAP `{SSHA}` userPassword value."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def build_info(base_dn: str, ldap_port: int, ldaps_port: int, ca_cert_path: Path, admin_password: str) -> DirectoryInfo:
    people = f"ou=people,{base_dn}"
    groups = f"ou=groups,{base_dn}"
    services = f"ou=services,{base_dn}"
    group_dns = {role: f"cn={name},{groups}" for role, name in GROUP_NAMES.items()}
    users = {
        name: LdapUser(
            name=name,
            password=f"{name}-Lab-pw-1",
            dn=f"uid={name},{people}",
            cn=f"{given} Example",
            mail=f"{name}@example.org",
            groups=tuple(group_dns[role] for role in roles),
        )
        for name, (given, roles) in SEED_USERS.items()
    }
    return DirectoryInfo(
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
    )


def render_slapd_conf(info: DirectoryInfo, workdir: Path, rootpw_hash: str) -> str:
    includes = "\n".join(f"include {SCHEMA_DIR / name}.schema" for name in SCHEMAS)
    search = info.search_bind_dn
    return f"""# generated by tools/lab/directory.py
{includes}
pidfile {workdir / "slapd.pid"}
argsfile {workdir / "slapd.args"}
modulepath {MODULE_DIR}
moduleload back_mdb
moduleload memberof

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
index uid eq
index member eq

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE

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


def render_seed_ldif(info: DirectoryInfo) -> str:
    dc = info.base_dn.split(",")[0].split("=", 1)[1]
    entries = [
        f"dn: {info.base_dn}\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\no: {dc}\ndc: {dc}",
    ]
    for ou_dn in (info.people_base, info.groups_base, info.services_base):
        ou = ou_dn.split(",")[0].split("=", 1)[1]
        entries.append(f"dn: {ou_dn}\nobjectClass: organizationalUnit\nou: {ou}")
    entries.append(
        f"dn: {info.search_bind_dn}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: {SEARCH_ACCOUNT}\ndescription: read-only search account for JupyterHub\n"
        f"userPassword: {ssha(info.search_password)}"
    )
    for user in info.users.values():
        given = user.cn.split()[0]
        entries.append(
            f"dn: {user.dn}\nobjectClass: inetOrgPerson\nuid: {user.name}\ncn: {user.cn}\nsn: Example\n"
            f"givenName: {given}\nmail: {user.mail}\nuserPassword: {ssha(user.password)}"
        )
    for group_dn in (info.users_group_dn, info.admins_group_dn, info.other_group_dn):
        cn = group_dn.split(",")[0].split("=", 1)[1]
        members = [u.dn for u in info.users.values() if group_dn in u.groups]
        lines = [f"dn: {group_dn}", "objectClass: groupOfNames", f"cn: {cn}"]
        lines += [f"member: {m}" for m in members]
        entries.append("\n".join(lines))
    return "\n\n".join(entries) + "\n"


class LdapDirectory:
    """A slapd process with seeded data. `start()` / `stop()` may be called repeatedly (same ports, same data)."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        trusted_ca: bool = True,
        base_dn: str = DEFAULT_BASE_DN,
        start_timeout: float = 10.0,
    ) -> None:
        for tool in (SLAPD, LDAPADD):
            if not os.access(tool, os.X_OK):
                raise RuntimeError(f"{tool} is missing: install the Debian packages slapd and ldap-utils (make setup)")
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="lab-ldap-")) if workdir is None else workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.trusted_ca = trusted_ca
        self.base_dn = base_dn
        self.start_timeout = start_timeout
        self.log_path = self.workdir / "slapd.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._info: DirectoryInfo | None = None
        self._seeded = False

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def info(self) -> DirectoryInfo:
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

    def __enter__(self) -> LdapDirectory:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

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
        info = build_info(self.base_dn, ldap_port, ldaps_port, work / "ca.pem", admin_password)
        (work / "slapd.conf").write_text(render_slapd_conf(info, work, ssha(admin_password)))
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
