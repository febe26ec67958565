"""Login throughput of the project's hub configurations against a plain JupyterHub + ldapauthenticator baseline.

    .venv/bin/python -m tools.login_benchmark                       # baseline, dev, prod at 50, 100, 200
    .venv/bin/python -m tools.login_benchmark --configs baseline dev --concurrency 50 --logins 200

What it measures: logins per second, p50/p95 latency and errors of the browser's form login (GET
/hub/login for the XSRF cookie, POST the form; success = HTTP 302 with the login cookie set) at each
concurrency, for these configurations, one after another (never two hubs at once), each in a real
JupyterHub on 127.0.0.1 with its own workspace, all against ONE throwaway slapd of the `openldap` shape
(the stock OpenLDAP layout: uid=<login>,ou=people, groupOfNames, memberof overlay):

- `baseline`: a plain hub: stock `ldapauthenticator.LDAPAuthenticator`, plain LDAP (tls_strategy
  insecure), one bind_dn_template, allowed_groups [the users group] with its default group filter;
- `dev`, `prod`: the stack's own rendered hub configuration (hub.config, hub.extraConfig with the dsaas
  authenticator, extraFiles, profiles), pointed at the slapd exactly as `tools.try_hub` does (prod:
  StartTLS, search-account lookup, nestedMemberOf; dev: LDAPS, DN template).

Each concurrency runs max(--logins, 2 x concurrency) logins, spread over the users who are direct members
of the users group (frank's membership through a nested group is left out: the baseline can't follow
it), after one warm-up login. It prints one line per run, then a table (rows = concurrency; per
configuration logins/s, p50 ms, errors, and for dev and prod their logins/s as a ratio of the baseline's)
and whether the target holds: dev and prod reach >= 0.9x the baseline's logins/s at concurrency 50 and
100, and have 0 errors at 200. Exit status 0 if it holds, 1 otherwise (also when --configs or
--concurrency leave out something the target needs).

A script, not a timed test: the numbers depend on the machine (its CPU count and the versions are
printed; the load generator shares the machine with slapd, the proxy and the hub) and vary between runs
by several percent. The first concurrency of each configuration runs on a freshly started hub and proxy
and comes out lower than the same load a second time; every configuration pays that the same way.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import importlib.metadata
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.hub_render import LDAP_AUTHENTICATOR_CLASS
from tools.lab.directory import DirectoryInfo, DirectoryShape, LdapDirectory, LdapUser
from tools.lab.hub import HubWorkspace, LocalHub
from tools.lab.procs import tail
from tools.lab.stack_hub import running_stack_hub

CONFIGS = ("baseline", "dev", "prod")
PROJECT_CONFIGS = ("dev", "prod")
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
        return self.logins / self.wall

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
            f"{self.rate:.1f} logins/s, p50 {self.p50_ms:.0f} ms, p95 {self.p95_ms:.0f} ms, "
            f"max {max(self.latencies) * 1000:.0f} ms, errors {errors}"
        )


def baseline_hub_config(directory: DirectoryInfo) -> dict[str, dict[str, Any]]:
    """A plain hub's hub.config: the stock authenticator on the plain LDAP port, one DN template, one group."""
    if directory.dn_template is None:
        raise ValueError(f"the baseline needs a DN template; the {directory.shape} shape has none")
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


@contextlib.contextmanager
def running_config(name: str, directory: DirectoryInfo, workdir: Path) -> Iterator[tuple[LocalHub, str]]:
    """The hub of one configuration (started, stopped on exit) and what it is."""
    if name == "baseline":
        workspace = HubWorkspace.create(workdir / name / "hub")
        with LocalHub(workspace, hub_config=baseline_hub_config(directory), log_level=HUB_LOG_LEVEL) as hub:
            yield hub, BASELINE_DESCRIPTION
    else:
        with running_stack_hub(name, workdir / name, directory=directory, log_level=HUB_LOG_LEVEL) as (hub, _):
            yield hub, f"stack {name}'s rendered configuration: {describe_project_hub(hub)}"


def login_once(hub: LocalHub, user: LdapUser) -> tuple[float, str | None]:
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


def measure(name: str, hub: LocalHub, users: Sequence[LdapUser], concurrency: int, logins: int) -> Run:
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
    runs: Mapping[tuple[str, int], Run], configs: Sequence[str], concurrencies: Sequence[int]
) -> tuple[bool, str]:
    """(holds, the final line): dev and prod >= 0.9x baseline logins/s at 50 and 100, 0 errors at 200."""
    statement = (
        f"target (dev and prod >= {TARGET_RATIO}x the baseline's logins/s at concurrency "
        f"{' and '.join(map(str, RATIO_CONCURRENCIES))}, 0 errors at {ERROR_FREE_CONCURRENCY})"
    )
    missing = [c for c in ("baseline", *PROJECT_CONFIGS) if c not in configs]
    missing += [f"concurrency {c}" for c in (*RATIO_CONCURRENCIES, ERROR_FREE_CONCURRENCY) if c not in concurrencies]
    misses = []
    for config in (c for c in PROJECT_CONFIGS if c in configs):
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
    parser.add_argument("--workdir", type=Path, help="keep slapd's and the hubs' files and logs here")
    args = parser.parse_args(argv)
    configs = [c for c in CONFIGS if c in args.configs]
    concurrencies = sorted(set(args.concurrency))
    if min(concurrencies) < 1 or args.logins < 1:
        parser.error("--concurrency and --logins must be positive")

    with contextlib.ExitStack() as resources:
        if args.workdir is None:
            workdir = Path(resources.enter_context(tempfile.TemporaryDirectory(prefix="dsaas-login-benchmark-")))
        else:
            workdir = args.workdir.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        directory = resources.enter_context(LdapDirectory(workdir / "ldap", shape=DirectoryShape.OPENLDAP)).info
        users = [
            user
            for user in directory.users.values()
            if directory.is_member(user.login, directory.users_group_dn, nested=False)
        ]
        print(f"machine: {cpu_summary()}, {platform.machine()}, Python {platform.python_version()}")
        print(f"versions: {versions()}")
        print(
            f"directory: one slapd ({directory.shape} shape) for every configuration; {len(users)} allowed users "
            f"(direct members of the users group): {', '.join(u.login for u in users)}"
        )
        print(
            f"load: per concurrency max({args.logins}, 2 x concurrency) form logins (GET + POST /hub/login), "
            "after one warm-up login; success = HTTP 302 with the login cookie"
        )
        runs: dict[tuple[str, int], Run] = {}
        for name in configs:
            with running_config(name, directory, workdir) as (hub, description):
                print(f"\n{name}: {description}", flush=True)
                for concurrency in concurrencies:
                    run = measure(name, hub, users, concurrency, args.logins)
                    runs[(name, concurrency)] = run
                    print(f"  {run.summary()}", flush=True)
                    if run.errors:
                        kept = "" if args.workdir else " (removed at the end: keep it with --workdir)"
                        print(f"  hub log: {hub.log_path}{kept}", flush=True)
    print()
    print(table(runs, configs, concurrencies))
    holds, verdict = target_verdict(runs, configs, concurrencies)
    print()
    print(verdict)
    return 0 if holds else 1


if __name__ == "__main__":
    sys.exit(main())
