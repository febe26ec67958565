"""Login throughput of the project's hub configurations against a plain JupyterHub + ldapauthenticator baseline.

    .venv/bin/python -m tools.login_benchmark                       # baseline, dev, prod at 50, 100, 200
    .venv/bin/python -m tools.login_benchmark --configs baseline dev --concurrency 50 --logins 200
    .venv/bin/python -m tools.login_benchmark --directories slapd,samba,389 --concurrency 200

What it measures: logins per second, p50/p95 latency and errors of the browser's form login (GET
/hub/login for the XSRF cookie, POST the form; success = HTTP 302 with the login cookie set) at each
concurrency, for these configurations, one after another (never two hubs at once), each in a real
JupyterHub on 127.0.0.1 with its own workspace, all against ONE throwaway directory server per
`--directories` entry (default `slapd`: the stock OpenLDAP layout of the `openldap` shape,
uid=<login>,ou=people, groupOfNames, memberof overlay):

- `baseline`: a plain hub: stock `ldapauthenticator.LDAPAuthenticator`, allowed_groups [the users group]
  with its default group filter; against slapd and 389 plain LDAP (tls_strategy insecure) and one
  bind_dn_template; against Samba LDAPS (a DC refuses simple binds without TLS) and a search-account
  lookup of sAMAccountName;
- `dev`, `prod`: the stack's own rendered hub configuration (hub.config, hub.extraConfig with the dsaas
  authenticator, extraFiles, profiles), its site data pointed at the server (slapd as `tools.try_hub`
  does: prod StartTLS, search-account lookup, nestedMemberOf; dev LDAPS, DN template). Only the stacks
  whose LDAP behaviour fits a server run against it: both against slapd, prod (the Active Directory
  preset, LDAPS) against Samba's AD DC (tools/lab/samba.py), dev (StartTLS, lookup) against 389 laid out
  as FreeIPA (tools/lab/ds389.py).

`--directories slapd,samba,389` runs the whole comparison against each server in turn, then prints a
summary at concurrency 200 (or the highest measured): per server and configuration logins/s, errors and
the ratio to the baseline on the same server. Samba needs 127.0.0.1:389/636 free (its ports are fixed) and
provisions a domain first (about 10-20 s).

Each concurrency runs max(--logins, 2 x concurrency) logins, spread over the users both sides admit: direct
members of the users group with usable accounts (the baseline can't follow nesting: slapd's alice, bob,
jean-luc.picard; Samba's jmueller; 389's alice), after one warm-up login. It prints one line per run, then
per server a table (rows = concurrency; per configuration logins/s, p50 ms, errors, and for dev and prod
their logins/s as a ratio of the baseline's) and whether the target holds: the project configurations
reach >= 0.9x the baseline's logins/s at concurrency 50 and 100, and have 0 errors at 200. Exit status 0 if
it holds on every server, 1 otherwise (also when --configs or --concurrency leave out something the target
needs).

A script, not a timed test: the numbers depend on the machine (its CPU count and the versions are
printed; the load generator shares the machine with the directory, the proxy and the hub) and vary between
runs by several percent. The first concurrency of each configuration runs on a freshly started hub and
proxy and comes out lower than the same load a second time; every configuration pays that the same way.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import importlib.metadata
import os
import platform
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from components.hub_render import LDAP_AUTHENTICATOR_CLASS
from config.settings import Settings, parse_settings
from tools.lab.directory import DirectoryInfo, DirectoryShape, LdapDirectory
from tools.lab.ds389 import Ds389Directory, Ds389Info, point_at_ds389
from tools.lab.hub import HubWorkspace, LocalHub
from tools.lab.procs import tail
from tools.lab.samba import SambaDC, SambaInfo, point_at_samba, provision_template
from tools.lab.stack_hub import lab_hub_values, point_at_directory, stack_settings_values
from tools.preflight.ldap_check import authenticator_for

CONFIGS = ("baseline", "dev", "prod")
PROJECT_CONFIGS = ("dev", "prod")
DIRECTORIES = ("slapd", "samba", "389")
# The stacks whose LDAP behaviour fits each server (the stack's site data is replaced by the server's): prod's
# is the Active Directory preset, which an IdM tree cannot answer; against a DC both stacks become that preset.
FITTING_STACKS: Mapping[str, tuple[str, ...]] = {"slapd": ("dev", "prod"), "samba": ("prod",), "389": ("dev",)}
DEFAULT_CONCURRENCY = (50, 100, 200)
TARGET_RATIO = 0.9
RATIO_CONCURRENCIES = (50, 100)
ERROR_FREE_CONCURRENCY = 200
HUB_LOG_LEVEL = "WARN"
BASELINE_DESCRIPTION = (
    "stock ldapauthenticator.LDAPAuthenticator, plain LDAP (tls_strategy insecure, no TLS), one "
    "bind_dn_template, allowed_groups [users group] with the default group_search_filter; nothing else"
)
VERSIONED = ("jupyterhub", "jupyterhub-ldapauthenticator", "ldap3")


def percentile(samples: Sequence[float], share: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return ordered[index]


@dataclass(frozen=True)
class Run:
    """One configuration at one concurrency."""

    config: str
    concurrency: int
    logins: int
    wall: float
    latencies: tuple[float, ...]
    errors: Mapping[str, int]
    """error kind ("HTTP 500", "no login cookie", "TimeoutError", ...) → count."""

    @property
    def rate(self) -> float:
        """Successful logins per second: a configuration that times out is not credited with those logins."""
        return (self.logins - self.error_count) / self.wall

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p95_ms(self) -> float:
        return percentile(self.latencies, 0.95) * 1000

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def summary(self) -> str:
        errors = ", ".join(f"{count}x {kind}" for kind, count in sorted(self.errors.items())) or "none"
        return (
            f"{self.config:<8} concurrency {self.concurrency:>3}: {self.logins} logins in {self.wall:.1f} s = "
            f"{self.rate:.1f} successful logins/s, p50 {self.p50_ms:.0f} ms, p95 {self.p95_ms:.0f} ms, "
            f"max {max(self.latencies) * 1000:.0f} ms, errors {errors}"
        )


def baseline_hub_config(directory: DirectoryInfo | Ds389Info) -> dict[str, dict[str, Any]]:
    """A plain hub's hub.config: the stock authenticator on the plain LDAP port, one DN template, one group."""
    if directory.dn_template is None:
        raise ValueError(f"the baseline needs a DN template; {directory.base_dn} has none")
    return {
        "JupyterHub": {"authenticator_class": "ldapauthenticator.LDAPAuthenticator"},
        "LDAPAuthenticator": {
            "server_address": directory.host,
            "server_port": directory.ldap_port,
            "tls_strategy": "insecure",
            "bind_dn_template": [directory.dn_template],
            "allowed_groups": [directory.users_group_dn],
        },
    }


def describe_project_hub(hub: LocalHub) -> str:
    """What the stack's rendered authenticator settings amount to, read from the hub's own hub.config."""
    ldap = hub.hub_config.get("LDAPAuthenticator", {})
    dsaas = hub.hub_config.get(LDAP_AUTHENTICATOR_CLASS, {})
    tls = {"on_connect": "LDAPS", "before_bind": "StartTLS", "insecure": "no TLS"}.get(
        str(ldap.get("tls_strategy")), str(ldap.get("tls_strategy"))
    )
    parts = [f"{LDAP_AUTHENTICATOR_CLASS} (hub.extraConfig)", f"{tls} (tls_strategy {ldap.get('tls_strategy')})"]
    if ldap.get("lookup_dn"):
        parts.append(f"search-account lookup of {ldap.get('user_attribute')}")
    else:
        templates = ldap.get("bind_dn_template") or []
        parts.append(f"{len(templates)} DN template{'s' if len(templates) != 1 else ''}")
        parts.append("with a search account" if ldap.get("lookup_dn_search_user") else "no search account")
    parts.append(f"membership {dsaas.get('membership')}")
    if dsaas.get("active_directory"):
        parts.append("active_directory")
    return ", ".join(parts)


def samba_baseline_hub_config(dc: SambaInfo) -> dict[str, dict[str, Any]]:
    """A plain hub against an AD DC: the stock authenticator on LDAPS (a DC refuses simple binds on plain LDAP),
    the DC's CA and host name, a search-account lookup of sAMAccountName, one group (direct members)."""
    return {
        "JupyterHub": {"authenticator_class": "ldapauthenticator.LDAPAuthenticator"},
        "LDAPAuthenticator": {
            "server_address": dc.host,
            "server_port": dc.ldaps_port,
            "tls_strategy": "on_connect",
            "tls_kwargs": {**dc.tls_kwargs(), "validate": int(ssl.CERT_REQUIRED)},
            "lookup_dn": True,
            "lookup_dn_search_user": dc.search_bind_dn,
            "lookup_dn_search_password": dc.search_password,
            "user_search_base": dc.people_base,
            "user_attribute": "sAMAccountName",
            "lookup_dn_user_dn_attribute": "sAMAccountName",
            "allowed_groups": [dc.users_group_dn],
        },
    }


class Account(Protocol):
    """A seeded user of any lab server."""

    @property
    def login(self) -> str: ...
    @property
    def password(self) -> str: ...


@dataclass(frozen=True)
class Target:
    """One running directory server and how each configuration is pointed at it."""

    name: str
    description: str
    users: tuple[Account, ...]
    """Allowed by the baseline and the project alike (direct members of the users group, usable accounts)."""
    baseline_config: dict[str, dict[str, Any]]
    baseline_description: str
    stacks: tuple[str, ...]
    values_for: Callable[[str], dict[str, Any]]
    """stack -> its settings values with the site data replaced by this server's."""
    search_password: str | None
    tls_names: tuple[str, ...] = field(default=())
    """Names the server's certificate carries, where it names none the hub connects to (a DC's host name)."""

    def settings(self, stack: str) -> Settings:
        return parse_settings(self.values_for(stack))

    def hub_values(self, stack: str, workspace: HubWorkspace) -> dict[str, Any]:
        settings = self.settings(stack)
        values = lab_hub_values(settings, workspace, ldap_search_password=self.password_for(settings))
        if self.tls_names:  # the harness's one addition, as the Samba tests make it
            values["hub"]["config"]["LDAPAuthenticator"]["tls_kwargs"]["valid_names"] = list(self.tls_names)
        return values

    def authenticator(self, stack: str) -> Any:
        """The hub's own authenticator for `stack` against this server (without a hub around it)."""
        settings = self.settings(stack)
        authenticator = authenticator_for(settings, self.password_for(settings), None)
        if self.tls_names:
            authenticator.tls_kwargs = {**authenticator.tls_kwargs, "valid_names": list(self.tls_names)}
        return authenticator

    def password_for(self, settings: Settings) -> str | None:
        return self.search_password if settings.hub.ldap.search_user else None


def slapd_target(directory: DirectoryInfo) -> Target:
    users = tuple(
        user
        for user in directory.users.values()
        if directory.is_member(user.login, directory.users_group_dn, nested=False)
    )
    return Target(
        "slapd",
        f"slapd ({directory.shape} shape)",
        users,
        baseline_hub_config(directory),
        BASELINE_DESCRIPTION,
        FITTING_STACKS["slapd"],
        lambda stack: point_at_directory(stack_settings_values(stack), directory),
        directory.search_password,
    )


def samba_target(dc: SambaInfo) -> Target:
    users = tuple(user for user in dc.users.values() if user.kind == "active" and "dsaas-hub-users" in user.groups)
    return Target(
        "samba",
        f"Samba AD DC ({dc.realm}, LDAPS on {dc.host}:{dc.ldaps_port})",
        users,
        samba_baseline_hub_config(dc),
        "stock ldapauthenticator.LDAPAuthenticator, LDAPS (tls_strategy on_connect), search-account lookup of "
        "sAMAccountName, allowed_groups [users group] with the default group_search_filter; nothing else",
        FITTING_STACKS["samba"],
        lambda stack: point_at_samba(stack_settings_values(stack), dc),
        dc.search_password,
        (dc.tls_name,),
    )


def ds389_target(server: Ds389Info) -> Target:
    users = tuple(user for user in server.users.values() if user.state is None and server.users_group_dn in user.groups)
    return Target(
        "389",
        f"389 Directory Server laid out as FreeIPA ({server.base_dn})",
        users,
        baseline_hub_config(server),
        BASELINE_DESCRIPTION,
        FITTING_STACKS["389"],
        lambda stack: point_at_ds389(stack_settings_values(stack), server),
        server.search_password,
    )


def start_target(name: str, workdir: Path, resources: contextlib.ExitStack) -> Target:
    """Start the named server under `workdir` (stopped when `resources` closes) and describe it."""
    if name == "slapd":
        directory = resources.enter_context(LdapDirectory(workdir / "ldap", shape=DirectoryShape.OPENLDAP))
        return slapd_target(directory.info)
    if name == "samba":
        provision_template(workdir / "samba-template")  # about 10-20 s; the DC then starts in 1-2 s
        dc = resources.enter_context(SambaDC(workdir / "samba-dc", workdir / "samba-template"))
        return samba_target(dc.info)
    if name == "389":
        return ds389_target(resources.enter_context(Ds389Directory(workdir / "ds389")).info)
    raise ValueError(f"unknown directory {name!r}: one of {', '.join(DIRECTORIES)}")


@contextlib.contextmanager
def running_config(name: str, target: Target, workdir: Path) -> Iterator[tuple[LocalHub, str]]:
    """The hub of one configuration against `target` (started, stopped on exit) and what it is."""
    workspace = HubWorkspace.create(workdir / name / "hub")
    if name == "baseline":
        with LocalHub(workspace, hub_config=target.baseline_config, log_level=HUB_LOG_LEVEL) as hub:
            yield hub, target.baseline_description
    else:
        with LocalHub(workspace, values=target.hub_values(name, workspace), log_level=HUB_LOG_LEVEL) as hub:
            yield hub, f"stack {name}'s rendered configuration: {describe_project_hub(hub)}"


def login_once(hub: LocalHub, user: Account) -> tuple[float, str | None]:
    """(seconds, None) for a successful login, (seconds, what went wrong) otherwise."""
    session = hub.session()
    started = time.perf_counter()
    try:
        response = session.login(user.login, user.password)
    except (OSError, http.client.HTTPException) as error:  # refused, reset, timed out
        return time.perf_counter() - started, type(error).__name__
    elapsed = time.perf_counter() - started
    if response.status != 302:
        return elapsed, f"HTTP {response.status}"
    if not session.logged_in:
        return elapsed, "no login cookie"
    return elapsed, None


def measure(name: str, hub: LocalHub, users: Sequence[Account], concurrency: int, logins: int) -> Run:
    _, warm_up_error = login_once(hub, users[0])  # templates, the first LDAP connections, the user's row
    if warm_up_error is not None:
        raise RuntimeError(f"{name}: the warm-up login failed ({warm_up_error}); hub log:\n{tail(hub.log_path)}")
    count = max(logins, 2 * concurrency)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(lambda index: login_once(hub, users[index % len(users)]), range(count)))
    wall = time.perf_counter() - started
    errors = collections.Counter(error for _, error in results if error is not None)
    return Run(name, concurrency, count, wall, tuple(seconds for seconds, _ in results), dict(errors))


# -- the report ------------------------------------------------------------------------------------
def versions() -> str:
    found = []
    for package in VERSIONED:
        try:
            found.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{package} (not installed)")
    return ", ".join(found)


def cpu_summary() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{os.cpu_count()} CPUs ({usable} usable by this process)"


def ratio(runs: Mapping[tuple[str, int], Run], config: str, concurrency: int) -> float | None:
    base = runs.get(("baseline", concurrency))
    run = runs.get((config, concurrency))
    if base is None or run is None or base.rate == 0:
        return None
    return run.rate / base.rate


def table(runs: Mapping[tuple[str, int], Run], configs: Sequence[str], concurrencies: Sequence[int]) -> str:
    """Rows = concurrency; per configuration logins/s, p50 ms, errors (and for dev/prod the ratio to baseline)."""

    def with_ratio(config: str) -> bool:
        return config in PROJECT_CONFIGS and "baseline" in configs

    def columns(config: str) -> list[str]:
        return ["logins/s", "p50 ms", "errors", *(["ratio"] if with_ratio(config) else [])]

    def cells(values: Sequence[str]) -> str:
        return " ".join(f"{value:>8}" for value in values)

    first = f"{'concurrency':>11}"
    head = [f"{'':>11}"] + [f"{config:<{len(cells(columns(config)))}}" for config in configs]
    sub = [first] + [cells(columns(config)) for config in configs]
    lines = [" | ".join(head).rstrip(), " | ".join(sub)]
    lines.append("-" * len(lines[-1]))
    for concurrency in concurrencies:
        row = [f"{concurrency:>11}"]
        for config in configs:
            run = runs[(config, concurrency)]
            values = [f"{run.rate:.1f}", f"{run.p50_ms:.0f}", str(run.error_count)]
            if with_ratio(config):
                value = ratio(runs, config, concurrency)
                values.append("n/a" if value is None else f"{value:.2f}x")
            row.append(cells(values))
        lines.append(" | ".join(row))
    return "\n".join(lines)


def target_verdict(
    runs: Mapping[tuple[str, int], Run],
    configs: Sequence[str],
    concurrencies: Sequence[int],
    projects: Sequence[str] = PROJECT_CONFIGS,
) -> tuple[bool, str]:
    """(holds, the final line): the project configurations >= 0.9x baseline logins/s at 50 and 100, 0 errors
    at 200."""
    statement = (
        f"target ({' and '.join(projects)} >= {TARGET_RATIO}x the baseline's logins/s at concurrency "
        f"{' and '.join(map(str, RATIO_CONCURRENCIES))}, 0 errors at {ERROR_FREE_CONCURRENCY})"
    )
    missing = [c for c in ("baseline", *projects) if c not in configs]
    missing += [f"concurrency {c}" for c in (*RATIO_CONCURRENCIES, ERROR_FREE_CONCURRENCY) if c not in concurrencies]
    misses = []
    for config in (c for c in projects if c in configs):
        for concurrency in RATIO_CONCURRENCIES:
            value = ratio(runs, config, concurrency)
            if value is not None and value < TARGET_RATIO:
                misses.append(f"{config} {value:.2f}x at {concurrency}")
        run = runs.get((config, ERROR_FREE_CONCURRENCY))
        if run is not None and run.error_count:
            misses.append(f"{config} {run.error_count} errors at {ERROR_FREE_CONCURRENCY}")
    if misses:
        return False, f"{statement}: MISSED ({'; '.join(misses)})"
    if missing:
        return False, f"{statement}: NOT SHOWN (not measured: {', '.join(missing)})"
    return True, f"{statement}: HOLDS"


@dataclass(frozen=True)
class DirectoryResult:
    """One server's runs, for the summary across servers."""

    directory: str
    configs: tuple[str, ...]
    runs: Mapping[tuple[str, int], Run]
    holds: bool


def summary(results: Sequence[DirectoryResult], concurrency: int) -> str:
    """Rows = servers; at one concurrency, the baseline's and each project configuration's logins/s and
    errors, with the ratio to the baseline on the same server."""
    lines = [
        f"{'directory':<9} | {'config':<8} {'logins/s':>8} {'errors':>6} {'ratio':>6} | at concurrency {concurrency}"
    ]
    lines.append("-" * len(lines[0]))
    for result in results:
        for config in result.configs:
            run = result.runs.get((config, concurrency))
            if run is None:
                continue
            value = ratio(result.runs, config, concurrency) if config != "baseline" else None
            shown = "" if value is None else f"{value:.2f}x"
            lines.append(f"{result.directory:<9} | {config:<8} {run.rate:>8.1f} {run.error_count:>6} {shown:>6} |")
    return "\n".join(lines)


def directory_list(text: str) -> list[str]:
    """--directories: comma-separated server names, in the given order, each once."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in DIRECTORIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a comma-separated list of {', '.join(DIRECTORIES)} (e.g. slapd,samba,389)"
        )
    return list(dict.fromkeys(names))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.login_benchmark",
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS), help="what to run")
    parser.add_argument(
        "--concurrency", nargs="+", type=int, default=list(DEFAULT_CONCURRENCY), help="logins in flight at once"
    )
    parser.add_argument(
        "--logins", type=int, default=400, help="logins per concurrency (at least 2x the concurrency are run)"
    )
    parser.add_argument(
        "--directories",
        type=directory_list,
        default=["slapd"],
        help=(
            "servers to run against, one after another, comma-separated: slapd (the openldap shape), samba (a "
            "Samba AD DC; needs 127.0.0.1:389/636 free), 389 (a 389 Directory Server laid out as FreeIPA)"
        ),
    )
    parser.add_argument("--workdir", type=Path, help="keep the servers' and the hubs' files and logs here")
    args = parser.parse_args(argv)
    configs = [c for c in CONFIGS if c in args.configs]
    concurrencies = sorted(set(args.concurrency))
    if min(concurrencies) < 1 or args.logins < 1:
        parser.error("--concurrency and --logins must be positive")

    print(f"machine: {cpu_summary()}, {platform.machine()}, Python {platform.python_version()}")
    print(f"versions: {versions()}")
    print(
        f"load: per concurrency max({args.logins}, 2 x concurrency) form logins (GET + POST /hub/login), "
        "after one warm-up login; success = HTTP 302 with the login cookie"
    )
    results: list[DirectoryResult] = []
    with contextlib.ExitStack() as resources:
        if args.workdir is None:
            workdir = Path(resources.enter_context(tempfile.TemporaryDirectory(prefix="dsaas-login-benchmark-")))
        else:
            workdir = args.workdir.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        for directory_name in args.directories:
            results.append(run_directory(directory_name, configs, concurrencies, args.logins, workdir, args.workdir))
    if len(results) > 1:
        at = ERROR_FREE_CONCURRENCY if ERROR_FREE_CONCURRENCY in concurrencies else max(concurrencies)
        print()
        print(summary(results, at))
    return 0 if all(result.holds for result in results) else 1


def run_directory(
    name: str, configs: Sequence[str], concurrencies: Sequence[int], logins: int, root: Path, kept: Path | None
) -> DirectoryResult:
    """Every configuration that fits server `name` at every concurrency, against one instance of it."""
    # Against the slapd the original workdir layout stays (<workdir>/ldap, <workdir>/<config>/hub).
    workdir = root if name == "slapd" else root / name
    with contextlib.ExitStack() as server:
        target = start_target(name, workdir, server)
        chosen = [c for c in configs if c == "baseline" or c in target.stacks]
        projects = [c for c in target.stacks if c in chosen]
        print(
            f"\ndirectory: one {target.description} for every configuration; {len(target.users)} allowed "
            f"user{'s' if len(target.users) != 1 else ''} (direct members of the users group, usable accounts): "
            f"{', '.join(u.login for u in target.users)}; project stacks that fit it: {', '.join(target.stacks)}"
        )
        runs: dict[tuple[str, int], Run] = {}
        for config in chosen:
            with running_config(config, target, workdir) as (hub, description):
                print(f"\n{config}: {description}", flush=True)
                for concurrency in concurrencies:
                    run = measure(config, hub, target.users, concurrency, logins)
                    runs[(config, concurrency)] = run
                    print(f"  {run.summary()}", flush=True)
                    if run.errors:
                        note = "" if kept else " (removed at the end: keep it with --workdir)"
                        print(f"  hub log: {hub.log_path}{note}", flush=True)
    print()
    print(f"{name}:")
    print(table(runs, chosen, concurrencies))
    holds, verdict = target_verdict(runs, chosen, concurrencies, projects)
    print()
    print(f"{name}: {verdict}")
    return DirectoryResult(name, tuple(chosen), runs, holds)


if __name__ == "__main__":
    sys.exit(main())
