"""Logins across what real directories do to connections: restarts, idle timeouts, outages (issue 20, item 1).

Each test takes a private slapd (tools/lab/directory.py) and the hub's own authenticator configured by the
stack's rendered values (as tools.ldap_check builds it), fills its connection pools with a burst of logins,
then drops the connections the way a directory does and counts the valid logins that are refused.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tornado import web

from config.settings import parse_settings
from tests.e2e.conftest import HubFactory, LdapDirectoryFactory
from tests.e2e.test_directory_shapes import start_hub
from tools.lab.directory import DirectoryInfo, DirectoryShape, LdapDirectory
from tools.lab.procs import run_coroutine, wait_until
from tools.lab.stack_hub import point_at_directory, search_password_for, stack_settings_values
from tools.preflight.ldap_check import authenticator_for

pytestmark = pytest.mark.slow
# Users the seeded groups let in (carol through the admin group), in every shape.
ALLOWED = ("alice", "bob", "jean-luc.picard", "carol")
BURST = 48  # more logins at once than the hub has login threads: every pooled connection gets opened
AFTER = 20
# slapd times idleness in whole seconds (`connections_timeout_idle` in servers/slapd/connection.c compares
# second-resolution times), so with `idletimeout N` it may close a connection after N-1 s of real quiet: more
# than a loaded machine's longest pause between one login's requests (1 s was not, on a CI machine running
# two suites on two cores), or it closes connections the hub has just opened and the test measures the load.
IDLE_SECONDS = 3
# (stack, shape): dev reads groups on the user's own LDAPS connection (DN template, no search account);
# prod is the AD preset (StartTLS, search-account lookup, nestedMemberOf) on the AD-shaped directory.
STACKS = [("dev", DirectoryShape.OPENLDAP), ("prod", DirectoryShape.ACTIVE_DIRECTORY)]


def hub_authenticator(stack: str, info: DirectoryInfo) -> Any:
    settings = parse_settings(point_at_directory(stack_settings_values(stack), info))
    return authenticator_for(settings, search_password_for(settings, info), None)


def refusals(authenticator: Any, info: DirectoryInfo, count: int) -> list[str]:
    """`count` concurrent valid logins through the hub's `authenticate`; what each refused one got instead."""
    names = list(itertools.islice(itertools.cycle(ALLOWED), count))

    async def logins() -> list[Any]:
        attempts = [authenticator.authenticate(None, {"username": n, "password": info.user(n).password}) for n in names]
        return await asyncio.gather(*attempts, return_exceptions=True)

    results = run_coroutine(logins())
    return [
        f"{name}: {describe(result)}"
        for name, result in zip(names, results, strict=True)
        if not isinstance(result, dict)
    ]


def describe(result: Any) -> str:
    if isinstance(result, web.HTTPError):
        return f"HTTP {result.status_code}: {getattr(result, 'jupyterhub_message', result.log_message)}"
    return repr(result)


def wait_for_idle_closes(directory: LdapDirectory) -> int:
    """Wait until slapd's idle timeout has closed the pooled connections (its log says so); how many it closed."""

    def closed() -> int:
        return directory.log_text().count("closed (idletimeout)")

    assert wait_until(lambda: closed() > 0, 2 * IDLE_SECONDS + 10, interval=0.1), "slapd closed no idle connection"
    # The burst's connections fell idle over a second or more on a loaded machine, and slapd's sweeps run
    # several times per timeout: they close in several sweeps. Once the count has held for a whole timeout
    # (plus a sweep), every connection idle since the burst is closed.
    seen, held_since = closed(), time.monotonic()
    while time.monotonic() - held_since < IDLE_SECONDS + 1:
        time.sleep(0.2)
        if (now := closed()) != seen:
            seen, held_since = now, time.monotonic()
    return seen


@pytest.mark.parametrize(("stack", "shape"), STACKS, ids=[stack for stack, _ in STACKS])
def test_no_valid_login_is_refused_after_a_directory_restart(
    stack: str, shape: DirectoryShape, ldap_directory_factory: LdapDirectoryFactory
) -> None:
    directory = ldap_directory_factory(shape=shape)
    authenticator = hub_authenticator(stack, directory.info)
    try:
        assert refusals(authenticator, directory.info, BURST) == []
        directory.stop()
        directory.start()  # a new slapd process on the same port: every pooled connection is gone
        assert refusals(authenticator, directory.info, AFTER) == []
    finally:
        authenticator.close_connections()


@pytest.mark.parametrize(("stack", "shape"), STACKS, ids=[stack for stack, _ in STACKS])
def test_no_valid_login_or_session_is_refused_after_an_idle_timeout(
    stack: str, shape: DirectoryShape, ldap_directory_factory: LdapDirectoryFactory
) -> None:
    directory = ldap_directory_factory(shape=shape, idle_timeout=IDLE_SECONDS)
    info = directory.info
    authenticator = hub_authenticator(stack, info)
    try:
        assert refusals(authenticator, info, BURST) == []
        assert wait_for_idle_closes(directory) > 1
        assert refusals(authenticator, info, AFTER) == []
    finally:
        authenticator.close_connections()


@dataclass
class _User:
    """What `refresh_user` reads from JupyterHub's User."""

    name: str
    admin: bool = False

    async def get_auth_state(self) -> dict[str, Any]:
        return {}


def test_refresh_after_an_idle_timeout_keeps_the_session(ldap_directory_factory: LdapDirectoryFactory) -> None:
    directory = ldap_directory_factory(shape=DirectoryShape.ACTIVE_DIRECTORY, idle_timeout=IDLE_SECONDS)
    info = directory.info
    authenticator = hub_authenticator("prod", info)
    # No outage grace: a refresh that hits a dropped connection and gives up would end the session.
    authenticator.outage_grace_seconds = 0
    try:
        assert refusals(authenticator, info, BURST) == []
        wait_for_idle_closes(directory)

        async def refreshes() -> list[Any]:
            users = [_User(name) for name in itertools.islice(itertools.cycle(ALLOWED), AFTER)]
            return await asyncio.gather(*(authenticator.refresh_user(user) for user in users))

        results = run_coroutine(refreshes())
        assert all(isinstance(r, dict) and r["name"] in ALLOWED for r in results), results
    finally:
        authenticator.close_connections()


def test_a_directory_that_is_down_is_reported_as_unavailable_and_used_again_at_once(
    ldap_directory_factory: LdapDirectoryFactory,
) -> None:
    directory = ldap_directory_factory(shape=DirectoryShape.ACTIVE_DIRECTORY)
    info = directory.info
    authenticator = hub_authenticator("prod", info)
    try:
        assert refusals(authenticator, info, BURST) == []
        directory.stop()
        down = refusals(authenticator, info, 4)
        assert len(down) == 4 and all("HTTP 503: The sign-in directory (LDAP) cannot be reached" in r for r in down), (
            down
        )
        directory.start()
        # ldap3 marks a shared Server's address unavailable for ~6 s after a failed connect ("invalid server
        # address"); the server is back now, so every login must go through now.
        assert refusals(authenticator, info, AFTER) == []
    finally:
        authenticator.close_connections()


def test_the_hub_says_the_directory_is_unavailable_while_it_is_down(
    ldap_directory_factory: LdapDirectoryFactory, hub_factory: HubFactory, tmp_path: Path
) -> None:
    directory = ldap_directory_factory(shape=DirectoryShape.ACTIVE_DIRECTORY)
    info = directory.info
    hub = start_hub(hub_factory, info, tmp_path / "hub", stack="prod")
    assert hub.session().login("alice", info.user("alice").password).status == 302
    directory.stop()
    response = hub.session().login("bob", info.user("bob").password)
    assert response.status == 503, response.status
    assert "cannot be reached right now" in response.body
    assert "Invalid username or password" not in response.body
    log = hub.log_text()
    assert "login of 'bob' refused: the LDAP directory" in log and "is unusable" in log
    directory.start()
    assert hub.session().login("bob", info.user("bob").password).status == 302
