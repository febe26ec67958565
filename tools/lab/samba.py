"""A real Active Directory domain controller for the suite: Samba 4's AD DC from Debian, on loopback only.

`provision_template(dir)` runs `samba-tool domain provision` (`--server-role=dc --use-rfc2307
--dns-backend=NONE`, every path under `dir` through its own `--targetdir` smb.conf), starts the DC once, seeds
it over LDAPS as Administrator (see SEED below) and stops it: a template, about 10 s of work. `SambaDC(workdir,
template)` copies the template (a few MB of ldb/tdb files) and runs `samba -i -M single` in the foreground as a
process of the suite, in a session of its own, stopped by `stop()`/`close()`. Only the LDAP service runs
(`server services = ldap`: no KDC, SMB, NetBIOS, DNS or RPC), bound to one loopback address (`interfaces`,
`bind interfaces only`). Samba's LDAP ports are fixed (389, 636; 3268/3269 for the global catalogue) and
it binds only addresses an interface carries, so a DC takes 127.0.0.1 and one DC runs at a time (the
suite's `samba_dc_factory` pauses the session's DC while a private one runs). Across processes on one
machine (CI runs the suite here and on a fresh Debian root at once, sharing the network namespace) a
running DC holds a lease on those ports, an abstract Unix socket: another suite's DC waits for it.

TLS: `tls enabled = yes`; Samba writes a CA and a certificate naming only its own host name
(`DC1.lab.example.org`) to `private/tls/` on first start; `info.ca_cert_path` is that CA. Nothing resolves
that name here: the suite connects to `info.host` (an IP) and verifies the certificate against
`info.tls_name` with ldap3's `Tls(valid_names=[...])` (`info.tls_kwargs()`): the chain against the DC's own
CA and the name the certificate carries, without /etc/hosts or any name query.

SEED (base DC=lab,DC=example,DC=org, NetBIOS domain LAB, UPN suffixes lab.example.org and example.org;
password policy: no complexity, lockout after 3 bad passwords for 99999 minutes)::

    OU=People  OU=Research, OU=Clinic, OU=IT   users, CN = full name (commas and umlauts, escaped in DNs)
    OU=Groups  dsaas-hub-users  <- research-team (nested) <- lab-scientists (nested two levels)
               dsaas-hub-admins, finance
    OU=Services  CN=hub-search (the search account)

Every account's password is `<login>-Lab-pw-1` (`SambaUser.password`); `kind` says what the DC makes of it:
`active` (binds), `disabled` (userAccountControl 514: bind says data 533), `expired` (accountExpires in the
past: 701), `locked` (three bad binds at seeding: 775), `must-change` (pwdLastSet 0: 773), `password-expired`
(pwdLastSet 60 days back, older than the domain's maxPwdAge of 42 days: 532; written offline into the template,
see `backdate_password`). `pat`'s only tie
to the hub is his primary group (primaryGroupID = the RID of dsaas-hub-users; AD then keeps him out of that
group's `member` and his `memberOf`).
"""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import ldap3
from ldap3.utils.dn import escape_rdn

from tools.lab.procs import LOCALHOST, StartedServer, port_open, stop_process_group, tail, wait_until

SAMBA = "/usr/sbin/samba"
SAMBA_TOOL = "/usr/bin/samba-tool"
LDBMODIFY = "/usr/bin/ldbmodify"
REALM = "LAB.EXAMPLE.ORG"
NETBIOS_DOMAIN = "LAB"
HOST_NAME = "dc1"
TLS_NAME = "DC1.lab.example.org"
BASE_DN = "DC=lab,DC=example,DC=org"
EXTRA_UPN_SUFFIX = "example.org"
ADMIN_PASSWORD = "Adm1n-Lab-pw-1"  # a throwaway domain on loopback; the template is rebuilt each session
LDAP_PORT = 389
LDAPS_PORT = 636
LOCKOUT_THRESHOLD = 3
EXPIRED_PASSWORD_AGE_DAYS = 60  # the domain's maxPwdAge stays Samba's default, 42 days
# 100-ns intervals between 1601-01-01 and 1970-01-01 (AD's FILETIME epoch).
FILETIME_EPOCH_OFFSET = 116444736000000000
UAC_NORMAL = 512
UAC_DISABLED = 514


@dataclass(frozen=True)
class SambaUser:
    login: str
    """sAMAccountName, as typed at the hub."""
    cn: str
    ou: str
    """The OU under OU=People (Research, Clinic, IT)."""
    groups: tuple[str, ...]
    """Direct groups (their CNs under OU=Groups)."""
    kind: str = "active"
    upn: str = ""
    """userPrincipalName; default <login>@lab.example.org."""
    primary_group: str = ""
    """A group (CN) made the primary group instead of Domain Users."""

    @property
    def password(self) -> str:
        return f"{self.login}-Lab-pw-1"

    @property
    def dn(self) -> str:
        return f"CN={escape_rdn(self.cn)},OU={self.ou},OU=People,{BASE_DN}"

    @property
    def principal(self) -> str:
        return self.upn or f"{self.login}@{REALM.lower()}"


GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {  # group CN -> the groups it is a member of (created in this order)
        "dsaas-hub-users": (),
        "dsaas-hub-admins": (),
        "finance": (),
        "research-team": ("dsaas-hub-users",),
        "lab-scientists": ("research-team",),
    }
)

SEED_USERS: tuple[SambaUser, ...] = (
    SambaUser("alice", "Example, Alice", "Research", ("lab-scientists",)),  # two levels of nesting
    SambaUser("jmueller", "Müller, Jürgen", "Clinic", ("dsaas-hub-users",), upn="juergen.mueller@example.org"),
    SambaUser("frank", "Frank Example", "Research", ("research-team",)),
    SambaUser("carol", "Carol Example", "IT", ("dsaas-hub-admins",)),
    SambaUser("dave", "Dave Example", "Clinic", ("finance",)),
    SambaUser("erin", "Erin Example", "Clinic", ()),
    SambaUser("pat", "Primary, Pat", "Clinic", (), primary_group="dsaas-hub-users"),
    SambaUser("dora", "Disabled, Dora", "Clinic", ("dsaas-hub-users",), kind="disabled"),
    SambaUser("ed", "Expired, Ed", "Research", ("dsaas-hub-users",), kind="expired"),
    SambaUser("lou", "Locked, Lou", "Research", ("dsaas-hub-users",), kind="locked"),
    SambaUser("max", "Must-Change, Max", "IT", ("dsaas-hub-users",), kind="must-change"),
    SambaUser("paula", "Expired-Password, Paula", "Clinic", ("dsaas-hub-users",), kind="password-expired"),
)


def group_dn(cn: str) -> str:
    return f"CN={cn},OU=Groups,{BASE_DN}"


def filetime(unix_seconds: float) -> int:
    """AD's FILETIME (100 ns since 1601) for a Unix time."""
    return int(unix_seconds * 10_000_000) + FILETIME_EPOCH_OFFSET


@dataclass(frozen=True)
class SambaInfo:
    """Where a running DC answers and what it holds."""

    host: str
    ca_cert_path: Path
    workdir: Path
    tls_name: str = TLS_NAME
    ldap_port: int = LDAP_PORT
    ldaps_port: int = LDAPS_PORT
    base_dn: str = BASE_DN
    realm: str = REALM
    netbios_domain: str = NETBIOS_DOMAIN
    admin_dn: str = f"CN=Administrator,CN=Users,{BASE_DN}"
    admin_password: str = ADMIN_PASSWORD
    search_bind_dn: str = f"CN=hub-search,OU=Services,{BASE_DN}"
    search_password: str = "hub-search-Lab-pw-1"
    people_base: str = f"OU=People,{BASE_DN}"
    users_group_dn: str = group_dn("dsaas-hub-users")
    admins_group_dn: str = group_dn("dsaas-hub-admins")
    domain_users_dn: str = f"CN=Domain Users,CN=Users,{BASE_DN}"
    users: Mapping[str, SambaUser] = field(default_factory=lambda: MappingProxyType({u.login: u for u in SEED_USERS}))

    def user(self, login: str) -> SambaUser:
        return self.users[login]

    def tls_kwargs(self) -> dict[str, Any]:
        """ldap3 `Tls` arguments that verify the DC's certificate (its CA, its host name) on `host`."""
        return {
            "ca_certs_file": str(self.ca_cert_path),
            "validate": int(ssl.CERT_REQUIRED),
            "valid_names": [self.tls_name],
        }

    def admin_connection(self) -> ldap3.Connection:
        """A bound LDAPS connection as Administrator (unicodePwd and account changes need an encrypted one)."""
        tls = ldap3.Tls(**{**self.tls_kwargs(), "validate": ssl.CERT_REQUIRED})
        server = ldap3.Server(self.host, port=self.ldaps_port, use_ssl=True, tls=tls, get_info=ldap3.NONE)
        return ldap3.Connection(server, self.admin_dn, self.admin_password, auto_bind=True, raise_exceptions=True)


def _require_tools() -> None:
    for tool in (SAMBA, SAMBA_TOOL, LDBMODIFY):
        if not os.access(tool, os.X_OK):
            raise RuntimeError(
                f"{tool} is missing: install the Debian packages samba-ad-dc, samba-ad-provision and ldb-tools "
                "(make setup)"
            )


def render_smb_conf(workdir: Path, host: str) -> str:
    """The DC's whole smb.conf: every path under `workdir`, LDAP only, one loopback address, TLS on."""
    return "\n".join(
        [
            "[global]",
            f"\tnetbios name = {HOST_NAME.upper()}",
            f"\trealm = {REALM}",
            f"\tworkgroup = {NETBIOS_DOMAIN}",
            "\tserver role = active directory domain controller",
            "\tserver services = ldap",
            f"\tinterfaces = {host}",
            "\tbind interfaces only = yes",
            "\ttls enabled = yes",
            "\tidmap_ldb:use rfc2307 = yes",
            f"\tprivate dir = {workdir}/private",
            f"\tlock directory = {workdir}",
            f"\tstate directory = {workdir}/state",
            f"\tcache directory = {workdir}/cache",
            f"\tbinddns dir = {workdir}/bind-dns",
            f"\tpid directory = {workdir}/run",
            f"\tlog file = {workdir}/log.%m",
            "\tlogging = file",
            "",
        ]
    )


# Abstract Unix socket names live in the network namespace, as the ports do; the kernel frees one with its process.
PORTS_LEASE_NAME = b"\0dsaas-lab-samba-dc-ldap-ports"
PORTS_LEASE_TIMEOUT = 1200.0


def acquire_ports_lease(timeout: float = PORTS_LEASE_TIMEOUT, name: bytes = PORTS_LEASE_NAME) -> socket.socket:
    """The machine-wide right to run a DC on 127.0.0.1:389/636, held until the socket is closed. Waits while
    another suite's DC holds it (its whole test module takes about a minute)."""
    lease = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + timeout
    while True:
        try:
            lease.bind(name)
            return lease
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                lease.close()
                raise
            if time.monotonic() > deadline:
                lease.close()
                raise RuntimeError(
                    f"another Samba DC has held 127.0.0.1:389/636 for over {timeout:.0f} s (another test run on "
                    "this machine); wait for it or stop it"
                ) from error
            time.sleep(0.5)


def _loopback_address() -> str:
    """127.0.0.1, whose ports 389 and 636 must be free: Samba cannot move its LDAP ports, and it binds only
    addresses an interface carries (lo has 127.0.0.1 alone), so one DC runs at a time."""
    busy = [port for port in (LDAP_PORT, LDAPS_PORT) if port_open(port, LOCALHOST)]
    if busy:
        raise RuntimeError(
            f"127.0.0.1 port(s) {busy} are taken: another DC or LDAP server listens there; stop it "
            "(one Samba DC runs at a time: samba_dc_factory pauses the session's DC)"
        )
    return LOCALHOST


def provision(workdir: Path) -> float:
    """`samba-tool domain provision` into `workdir`; returns its wall time in seconds."""
    _require_tools()
    started = time.monotonic()
    result = subprocess.run(
        [
            SAMBA_TOOL,
            "domain",
            "provision",
            f"--realm={REALM}",
            f"--domain={NETBIOS_DOMAIN}",
            "--server-role=dc",
            "--dns-backend=NONE",
            "--use-rfc2307",
            f"--host-name={HOST_NAME}",
            f"--adminpass={ADMIN_PASSWORD}",
            f"--targetdir={workdir}",
            "--option=interfaces=127.0.0.1",
            "--option=bind interfaces only=yes",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    if result.returncode != 0:
        raise RuntimeError(f"samba-tool domain provision failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.monotonic() - started


class SambaDC(StartedServer):
    """A Samba AD DC process from a copy of a template. `start()`/`stop()` may be repeated (same data)."""

    def __init__(self, workdir: Path, template: Path, *, start_timeout: float = 30.0) -> None:
        _require_tools()
        self.workdir = workdir
        self.template = template
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._info: SambaInfo | None = None
        self._lease: socket.socket | None = None
        self.log_path = workdir / "samba.out"

    @property
    def info(self) -> SambaInfo:
        if self._info is None:
            raise RuntimeError("the DC was never started")
        return self._info

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> SambaInfo:
        if self.running:
            return self.info
        if self._lease is None:
            self._lease = acquire_ports_lease()
        if self._info is None:
            if self.workdir != self.template:
                shutil.copytree(self.template, self.workdir, symlinks=True, ignore=_sockets)
            self._info = SambaInfo(
                host=_loopback_address(),
                ca_cert_path=self.workdir / "private" / "tls" / "ca.pem",
                workdir=self.workdir,
            )
        info = self.info
        conf = self.workdir / "etc" / "smb.conf"
        conf.write_text(render_smb_conf(self.workdir, info.host))
        (self.workdir / "run").mkdir(exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [SAMBA, "-i", "-M", "single", "-s", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        proc = self._proc

        def ready() -> bool:
            return proc.poll() is not None or (port_open(LDAP_PORT, info.host) and port_open(LDAPS_PORT, info.host))

        wait_until(ready, self.start_timeout, interval=0.05)
        if proc.poll() is not None or not port_open(LDAPS_PORT, info.host):
            self.stop()
            raise RuntimeError(f"samba did not start; log {self.log_path}:\n{tail(self.log_path)}")
        return info

    def stop(self, *, keep_ports: bool = False) -> None:
        """Stop the DC. `keep_ports`: a restart to come; keep the machine-wide lease on 389/636, so no other
        suite's DC takes them while this one is down (a test that stops a DC to see it down would talk to it)."""
        if self._proc is not None:
            stop_process_group(self._proc, timeout=10)
            self._proc = None
        if self._lease is not None and not keep_ports:
            self._lease.close()
            self._lease = None

    def close(self) -> None:
        self.stop()

    # -- live changes, as Administrator ----------------------------------------------------------
    def modify_user(self, login: str, changes: Mapping[str, list[Any]]) -> None:
        """Replace attributes of a seeded user (e.g. {"accountExpires": ["0"]})."""
        conn = self.info.admin_connection()
        try:
            conn.modify(self.info.user(login).dn, {k: [(ldap3.MODIFY_REPLACE, v)] for k, v in changes.items()})
        finally:
            conn.unbind()

    def set_max_conn_idle_time(self, seconds: int) -> None:
        """AD's idle timeout: `MaxConnIdleTime` in the lDAPAdminLimits of the Default Query Policy. Samba's LDAP
        server reads the policy for each connection it accepts (source4/ldap_server/ldap_server.c in
        samba-team/samba: ldapsrv_accept -> ldapsrv_load_limits) and closes a connection that sends nothing for
        that long; connections open before the change keep the old limit, so set it before clients connect."""
        if seconds < 1:  # ldapsrv_load_limits skips a value of 0 and keeps its default (900 s)
            raise ValueError(f"MaxConnIdleTime {seconds}: Samba takes a positive number of seconds")
        conn = self.info.admin_connection()
        try:
            conn.search(query_policy_dn(self.info.base_dn), "(objectClass=*)", ldap3.BASE, attributes=[LIMITS])
            current = [str(v) for v in conn.response[0]["attributes"][LIMITS]]
            wanted = with_admin_limit(current, "MaxConnIdleTime", seconds)
            conn.modify(query_policy_dn(self.info.base_dn), {LIMITS: [(ldap3.MODIFY_REPLACE, wanted)]})
        finally:
            conn.unbind()

    def age_password(self, login: str, days: float = EXPIRED_PASSWORD_AGE_DAYS) -> SambaInfo:
        """Make `login`'s password `days` old: the DC is stopped for the offline write and started again."""
        self.stop()
        backdate_password(self.workdir, self.info.user(login), days)
        return self.start()

    def bad_binds(self, login: str, count: int = LOCKOUT_THRESHOLD) -> None:
        """Bind with a wrong password `count` times (the lockout threshold locks the account)."""
        _bad_binds(self.info, self.info.user(login), count)


LIMITS = "lDAPAdminLimits"


def query_policy_dn(base_dn: str) -> str:
    """Where AD (and Samba) keep the LDAP server's limits: the Default Query Policy in the configuration partition."""
    return (
        "CN=Default Query Policy,CN=Query-Policies,CN=Directory Service,CN=Windows NT,CN=Services,"
        f"CN=Configuration,{base_dn}"
    )


def with_admin_limit(limits: list[str], name: str, value: int) -> list[str]:
    """lDAPAdminLimits values ("Name=value") with `name` set to `value`, the others kept in their order."""
    kept = [limit for limit in limits if limit.partition("=")[0].lower() != name.lower()]
    return [*kept, f"{name}={value}"]


def _bad_binds(info: SambaInfo, user: SambaUser, count: int) -> None:
    tls = ldap3.Tls(**{**info.tls_kwargs(), "validate": ssl.CERT_REQUIRED})
    server = ldap3.Server(info.host, port=info.ldaps_port, use_ssl=True, tls=tls, get_info=ldap3.NONE)
    for _ in range(count):
        conn = ldap3.Connection(server, user.dn, "wrong-password")
        with contextlib.suppress(ldap3.core.exceptions.LDAPException):
            conn.bind()
        conn.unbind()


def backdate_password(workdir: Path, user: SambaUser, days: float) -> None:
    """Set `user`'s pwdLastSet `days` in the past in a stopped DC's files.

    Over LDAP a DC takes only 0 or -1 for pwdLastSet, and Samba answers a bind with 532 (password expired) only
    for a password older than maxPwdAge (at least a day; Samba treats a shorter one as "never", and a
    fine-grained password policy is held to the same). So the value is written below Samba's modules, straight
    into the domain partition's ldb file with ldbmodify (ldb-tools); the DC computes msDS-User-Account-Control-
    Computed's UF_PASSWORD_EXPIRED and msDS-UserPasswordExpiryTimeComputed from it when it next starts.
    """
    partition = workdir / "private" / "sam.ldb.d" / f"{BASE_DN.upper()}.ldb"
    ldif = (
        f"dn: {user.dn}\nchangetype: modify\nreplace: pwdLastSet\npwdLastSet: {filetime(time.time() - days * 86400)}\n"
    )
    done = subprocess.run([LDBMODIFY, "-H", f"tdb://{partition}"], input=ldif, capture_output=True, text=True)
    if done.returncode != 0 or "Modified 1 records" not in done.stdout:
        raise RuntimeError(f"ldbmodify could not set {user.login}'s pwdLastSet in {partition}: {done.stderr}")


def _sockets(folder: str, names: list[str]) -> list[str]:
    """The running template's ldapi sockets: not copied (the copy's DC makes its own)."""
    return [name for name in names if stat.S_ISSOCK(os.lstat(os.path.join(folder, name)).st_mode)]


def _rid(sid: bytes) -> int:
    return int.from_bytes(sid[-4:], "little")


def seed(info: SambaInfo) -> None:
    """Policy, OUs, groups, users and their states (see the module docstring), over LDAPS as Administrator."""
    conn = info.admin_connection()
    try:

        def add(dn: str, classes: list[str], attributes: dict[str, Any]) -> None:
            if not conn.add(dn, classes, attributes):
                raise RuntimeError(f"adding {dn} failed: {conn.result}")

        def replace(dn: str, changes: dict[str, Any]) -> None:
            if not conn.modify(dn, {k: [(ldap3.MODIFY_REPLACE, v)] for k, v in changes.items()}):
                raise RuntimeError(f"modifying {dn} ({sorted(changes)}) failed: {conn.result}")

        # Lockout after 3 bad passwords (durations are negative 100-ns intervals); no complexity, so the
        # lab's passwords may contain the login.
        minutes = -99999 * 60 * 10_000_000
        replace(
            info.base_dn,
            {
                "pwdProperties": ["0"],
                "minPwdAge": ["0"],
                "pwdHistoryLength": ["0"],
                "lockoutThreshold": [str(LOCKOUT_THRESHOLD)],
                "lockoutDuration": [str(minutes)],
                "lockOutObservationWindow": [str(minutes)],
            },
        )
        replace(f"CN=Partitions,CN=Configuration,{info.base_dn}", {"uPNSuffixes": [EXTRA_UPN_SUFFIX]})
        for ou in ("OU=People", "OU=Research,OU=People", "OU=Clinic,OU=People", "OU=IT,OU=People"):
            add(f"{ou},{info.base_dn}", ["organizationalUnit"], {})
        add(f"OU=Groups,{info.base_dn}", ["organizationalUnit"], {})
        add(f"OU=Services,{info.base_dn}", ["organizationalUnit"], {})
        for cn in GROUPS:
            add(group_dn(cn), ["group"], {"sAMAccountName": cn})
        for cn, parents in GROUPS.items():
            for parent in parents:
                conn.modify(group_dn(parent), {"member": [(ldap3.MODIFY_ADD, [group_dn(cn)])]})

        def add_user(dn: str, login: str, password: str, upn: str) -> None:
            add(dn, ["user"], {"sAMAccountName": login, "userPrincipalName": upn})
            replace(dn, {"unicodePwd": [f'"{password}"'.encode("utf-16-le")]})
            replace(dn, {"userAccountControl": [str(UAC_NORMAL)]})

        add_user(info.search_bind_dn, "hub-search", info.search_password, f"hub-search@{REALM.lower()}")
        for user in SEED_USERS:
            names = user.cn.split(", ")
            add_user(user.dn, user.login, user.password, user.principal)
            replace(user.dn, {"displayName": [" ".join(reversed(names))]})
            for group in (*user.groups, *([user.primary_group] if user.primary_group else [])):
                conn.modify(group_dn(group), {"member": [(ldap3.MODIFY_ADD, [user.dn])]})
            if user.primary_group:
                conn.search(group_dn(user.primary_group), "(objectClass=group)", ldap3.BASE, attributes=["objectSid"])
                rid = _rid(conn.response[0]["raw_attributes"]["objectSid"][0])
                replace(user.dn, {"primaryGroupID": [str(rid)]})
            if user.kind == "disabled":
                replace(user.dn, {"userAccountControl": [str(UAC_DISABLED)]})
            elif user.kind == "expired":
                replace(user.dn, {"accountExpires": [str(filetime(time.time() - 86400))]})
            elif user.kind == "must-change":
                replace(user.dn, {"pwdLastSet": ["0"]})
            elif user.kind == "locked":
                _bad_binds(info, user, LOCKOUT_THRESHOLD)
    finally:
        conn.unbind()


def provision_template(workdir: Path) -> dict[str, float]:
    """Provision, start, seed and stop a DC in `workdir` (a template to copy); returns the phases' seconds."""
    workdir.mkdir(parents=True, exist_ok=True)
    timings = {"provision": provision(workdir)}
    started = time.monotonic()
    dc = SambaDC(workdir, workdir)
    try:
        seed(dc.start())
    finally:
        dc.stop()
    for user in SEED_USERS:
        if user.kind == "password-expired":
            backdate_password(workdir, user, EXPIRED_PASSWORD_AGE_DAYS)
    timings["seed"] = time.monotonic() - started
    return timings


def point_at_samba(values: dict[str, Any], info: SambaInfo, **ldap: Any) -> dict[str, Any]:
    """A stack's settings values with `dsaas:hub.ldap` replaced by the AD preset against this DC (LDAPS, its
    CA, the search account, hub-users allowed, hub-admins admin, domains LAB and lab.example.org); `ldap`
    overrides keys (camelCase, as in a stack file)."""
    from tools.lab.stack_hub import project_copy  # the lab's hub helpers import far more than this module needs

    edited = copy.deepcopy(values)
    edited["dsaas:hub"]["ldap"] = {
        "directory": "active-directory",
        "serverAddress": info.host,
        "serverPort": info.ldaps_port,
        "tlsStrategy": "on_connect",
        "caFile": project_copy(info.ca_cert_path, "samba-ca.pem"),
        "searchUser": info.search_bind_dn,
        "userSearchBase": info.people_base,
        "allowedGroups": [info.users_group_dn],
        "adminGroups": [info.admins_group_dn],
        "domains": [info.netbios_domain, info.realm.lower()],
        **ldap,
    }
    return edited


def main(argv: list[str] | None = None) -> None:
    """python -m tools.lab.samba: provision a template in a temp dir and print its timings."""
    import argparse  # only the command needs it

    argparse.ArgumentParser(prog="python -m tools.lab.samba", description=main.__doc__).parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lab-samba-") as tmp:
        print(provision_template(Path(tmp) / "template"))


if __name__ == "__main__":
    main()
