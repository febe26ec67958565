"""`python -m tools.login_benchmark --directories slapd,samba,389`: the option, and that each server's target
lets its users in through both sides of the comparison (the stock baseline and the project's stacks), checked
on the session's servers with the authenticators alone (no hub, no load: the benchmark itself is a script)."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from traitlets.config import Config

from tools.bench.login_benchmark import (
    DIRECTORIES,
    Run,
    Target,
    directory_list,
    ds389_target,
    main,
    samba_target,
    slapd_target,
)
from tools.lab.directory import DirectoryInfo, DirectoryShape
from tools.lab.ds389 import Ds389Directory
from tools.lab.procs import run_coroutine
from tools.lab.samba import SambaInfo

pytestmark = pytest.mark.slow


def test_the_directories_option_takes_a_comma_separated_list_of_known_servers() -> None:
    assert directory_list("slapd,samba,389") == list(DIRECTORIES)
    assert directory_list(" 389 , slapd,389") == ["389", "slapd"]
    for wrong in ("openldap", "slapd,,ad", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="comma-separated list of slapd, samba, 389"):
            directory_list(wrong)
    with pytest.raises(SystemExit) as exited:
        main(["--directories", "ad"])
    assert exited.value.code == 2


def login(authenticator: Any, target: Target) -> Any:
    user = target.users[0]
    return run_coroutine(authenticator.authenticate(None, {"username": user.login, "password": user.password}))


@pytest.fixture(params=DIRECTORIES)
def target(
    request: pytest.FixtureRequest,
    ldap_directories: dict[DirectoryShape, DirectoryInfo],
) -> Target:
    if request.param == "slapd":
        return slapd_target(ldap_directories[DirectoryShape.OPENLDAP])
    if request.param == "samba":
        samba_dc: SambaInfo = request.getfixturevalue("samba_dc")
        return samba_target(samba_dc)
    ds389: Ds389Directory = request.getfixturevalue("ds389")
    return ds389_target(ds389.info)


def test_each_directory_target_lets_its_users_in_on_both_sides(target: Target) -> None:
    from ldapauthenticator import LDAPAuthenticator

    assert target.users, target.name
    baseline = LDAPAuthenticator(config=Config(target.baseline_config))
    assert login(baseline, target)["name"] == target.users[0].login
    assert target.stacks
    for stack in target.stacks:
        authenticator = target.authenticator(stack)
        try:
            assert login(authenticator, target)["name"] == target.users[0].login, stack
        finally:
            authenticator.close_connections()


def test_logins_per_second_count_only_the_logins_that_went_through() -> None:
    """The stock baseline times out at 200 logins in flight against Samba: it is not credited with those."""
    run = Run("baseline", 200, 400, 20.0, (1.0,) * 400, {"TimeoutError": 100})
    assert run.rate == 15.0
    assert "15.0 successful logins/s" in run.summary()
