"""Logins across restarts and idle timeouts of the real directories: Samba's AD DC and 389 (issue 20, item 1).

test_directory_outages.py proves this against slapd; here the same shape runs against the servers a site runs.
The hub's own authenticator (configured by the rendered dev stack values, as test_samba_dc.py and test_ds389.py
build it) fills its connection pools with a burst of logins, then the server drops every pooled connection:

- restart: the server process stops (every login meanwhile must get the hub's 503 "directory cannot be
  reached", never "invalid password") and starts again on the same ports (a private DC from
  samba_dc_factory; a private 389 instance, so the session's `ds389` is never disturbed);
- idle timeout, lowered to seconds (IDLE_SECONDS): Samba's `MaxConnIdleTime` in the Default Query Policy (SambaDC.
  set_max_conn_idle_time); 389's `nsslapd-idletimeout` in cn=config (Ds389Directory(idle_timeout=...)).
  The server's side of the pooled connections is watched in /proc/net/tcp until it has closed them all.

Then no valid login may be refused. Each test prints what it measured (refusals/attempts, seconds from the
server answering again to the first successful login); run with `-s` to see them.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap3
import pytest

from tests.e2e.test_directory_outages import describe
from tests.e2e.test_ds389 import authenticator as ds389_authenticator
from tests.e2e.test_samba_dc import hub_authenticator as samba_authenticator
from tools.lab.ds389 import DEFAULT_SUFFIX, Ds389Directory, render_dse
from tools.lab.procs import LOCALHOST, run_coroutine, served_connections, wait_until
from tools.lab.samba import SambaDC, with_admin_limit

pytestmark = pytest.mark.slow
BURST = 48  # more logins at once than the authenticator has login threads: every pooled connection is opened
AFTER = 20
DOWN = 4
# Samba times idle connections to the microsecond (a tevent end time), 389 in whole seconds: with
# nsslapd-idletimeout N it closes a connection anywhere from N-1 to N s after its last request, even between
# the connect and the first request on it, which no client can prevent (sites run 900 s or 3600 s). So the
# timeouts here must exceed the longest pause a loaded machine puts between a login's requests: with 389 at
# 2 s, a CI machine running two suites on two cores paused a burst's fresh connections for over a second
# and 8 of 48 logins were refused. A longer timeout only makes the test wait longer for the closes.
IDLE_SECONDS = {"samba": 3, "389": 5}
UNREACHABLE = "HTTP 503: The sign-in directory (LDAP) cannot be reached"
# Users each seeded directory lets in (through nesting, a principal name's owner, the admin group).
SAMBA_USERS = ("alice", "frank", "jmueller", "carol")
DS389_USERS = ("alice", "frank", "gina", "carol")


@dataclass(frozen=True)
class Outcome:
    attempts: int
    refused: list[str]
    """What each refused login got instead."""
    first_success: float | None
    """Seconds from the start of the logins to the first that succeeded."""


def logins(authenticator: Any, credentials: Sequence[tuple[str, str]], count: int) -> Outcome:
    """`count` concurrent logins through the hub's `authenticate`, cycling over `credentials`."""
    chosen = list(itertools.islice(itertools.cycle(credentials), count))

    async def attempt(name: str, password: str, started: float) -> tuple[Any, float]:
        try:
            result: Any = await authenticator.authenticate(None, {"username": name, "password": password})
        except Exception as error:  # the refusal itself is what is counted
            result = error
        return result, time.monotonic() - started

    async def run() -> list[tuple[Any, float]]:
        started = time.monotonic()
        return await asyncio.gather(*(attempt(name, password, started) for name, password in chosen))

    results = run_coroutine(run())
    refused = [f"{name}: {describe(r)}" for (name, _), (r, _) in zip(chosen, results, strict=True) if not ok(r)]
    successes = [seconds for result, seconds in results if ok(result)]
    return Outcome(count, refused, min(successes) if successes else None)


def ok(result: Any) -> bool:
    return isinstance(result, dict)


def figures(outcome: Outcome) -> str:
    first = "no login succeeded" if outcome.first_success is None else f"first success {outcome.first_success:.2f} s"
    return f"{len(outcome.refused)}/{outcome.attempts} valid logins refused, {first} into the logins"


@dataclass(frozen=True)
class RealDirectory:
    """One running server as the tests need it."""

    name: str
    port: int
    """The port the authenticator connects to."""
    authenticator: Any
    credentials: tuple[tuple[str, str], ...]
    stop: Callable[[], None]
    start: Callable[[], None]
    poke: Callable[[], None]
    """Another client's request (389 2.3 checks idle connections only while it handles some: see ds389.py)."""


def void(_: object) -> None:
    """A server's start() returns its info; the tests only need it started."""


def samba(factory: Callable[[], SambaDC], *, idle_seconds: int | None = None) -> RealDirectory:
    dc = factory()
    if idle_seconds is not None:
        dc.set_max_conn_idle_time(idle_seconds)  # read per accepted connection: before the hub connects
    info = dc.info
    return RealDirectory(
        "samba",
        info.ldaps_port,
        samba_authenticator(info),
        tuple((login, info.user(login).password) for login in SAMBA_USERS),
        lambda: dc.stop(keep_ports=True),  # a restart: no other suite's DC may take the ports meanwhile
        lambda: void(dc.start()),
        lambda: None,
    )


def ds389(directory: Ds389Directory) -> RealDirectory:
    info = directory.start()

    def poke() -> None:
        anonymous = ldap3.Connection(ldap3.Server(LOCALHOST, port=info.ldap_port, get_info=ldap3.NONE))
        anonymous.open()
        anonymous.search("", "(objectClass=*)", ldap3.BASE, attributes=["vendorVersion"])
        anonymous.unbind()

    return RealDirectory(
        "389",
        info.ldap_port,
        ds389_authenticator(info),
        tuple((login, info.user(login).password) for login in DS389_USERS),
        directory.stop,
        lambda: void(directory.start()),
        poke,
    )


@pytest.fixture
def private_389(tmp_path: Path) -> Iterator[Callable[..., Ds389Directory]]:
    started: list[Ds389Directory] = []

    def factory(idle_timeout: int | None = None) -> Ds389Directory:
        directory = Ds389Directory(tmp_path / f"ds389-{len(started) + 1}", idle_timeout=idle_timeout)
        started.append(directory)
        return directory

    yield factory
    for directory in started:
        directory.close()


SERVERS = ("samba", "389")


def real_directory(
    server: str,
    samba_dc_factory: Callable[[], SambaDC],
    private_389: Callable[..., Ds389Directory],
    idle_seconds: int | None = None,
) -> RealDirectory:
    if server == "samba":
        return samba(samba_dc_factory, idle_seconds=idle_seconds)
    return ds389(private_389(idle_timeout=idle_seconds))


@pytest.mark.parametrize("server", SERVERS)
def test_no_valid_login_is_refused_after_a_real_directory_restart(
    server: str, samba_dc_factory: Callable[[], SambaDC], private_389: Callable[..., Ds389Directory]
) -> None:
    directory = real_directory(server, samba_dc_factory, private_389)
    authenticator = directory.authenticator
    try:
        assert logins(authenticator, directory.credentials, BURST).refused == []
        assert served_connections(directory.port) > 1  # the pools hold connections the restart will break
        directory.stop()
        down = logins(authenticator, directory.credentials, DOWN)
        assert len(down.refused) == DOWN and all(UNREACHABLE in r for r in down.refused), down.refused
        began = time.monotonic()
        directory.start()  # a new process on the same ports: every pooled connection is gone
        started = time.monotonic() - began
        after = logins(authenticator, directory.credentials, AFTER)
        print(
            f"\n{directory.name} restart: while down {len(down.refused)}/{DOWN} logins got the 503; the server "
            f"started in {started:.2f} s; then {figures(after)}"
        )
        assert after.refused == []
    finally:
        authenticator.close_connections()


@pytest.mark.parametrize("server", SERVERS)
def test_no_valid_login_is_refused_after_a_real_directory_idle_timeout(
    server: str, samba_dc_factory: Callable[[], SambaDC], private_389: Callable[..., Ds389Directory]
) -> None:
    directory = real_directory(server, samba_dc_factory, private_389, idle_seconds=IDLE_SECONDS[server])
    authenticator = directory.authenticator
    try:
        burst = logins(authenticator, directory.credentials, BURST)
        assert burst.refused == []
        pooled = served_connections(directory.port)
        assert pooled > 1, pooled

        def all_closed() -> bool:
            directory.poke()
            return served_connections(directory.port) == 0

        began = time.monotonic()
        assert wait_until(all_closed, 2 * IDLE_SECONDS[server] + 10, interval=0.3), (
            f"{directory.name} kept idle connections open"
        )
        closed_after = time.monotonic() - began
        after = logins(authenticator, directory.credentials, AFTER)
        print(
            f"\n{directory.name} idle timeout {IDLE_SECONDS[server]} s: the server closed all {pooled} pooled "
            f"connections within {closed_after:.1f} s; then {figures(after)}"
        )
        assert after.refused == []
    finally:
        authenticator.close_connections()


def test_the_idle_timeouts_are_set_where_each_server_reads_them(tmp_path: Path) -> None:
    limits = ["MaxPageSize=1000", "MaxConnIdleTime=900", "InitRecvTimeout=120"]
    assert with_admin_limit(limits, "MaxConnIdleTime", 1) == [
        "MaxPageSize=1000",
        "InitRecvTimeout=120",
        "MaxConnIdleTime=1",
    ]
    dse = render_dse(tmp_path, 1389, 1636, "{SSHA}x", DEFAULT_SUFFIX, idle_timeout=2)
    config = next(entry for entry in dse.split("\n\n") if entry.startswith("dn: cn=config\n"))
    assert "\nnsslapd-idletimeout: 2" in config
    assert "nsslapd-idletimeout" not in render_dse(tmp_path, 1389, 1636, "{SSHA}x", DEFAULT_SUFFIX)
    with pytest.raises(ValueError, match="nsslapd-idletimeout is a positive number"):
        render_dse(tmp_path, 1389, 1636, "{SSHA}x", DEFAULT_SUFFIX, idle_timeout=0)
