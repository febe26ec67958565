"""The operators' pre-flight LDAP check, against the same real slapd: each decision and each failure."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from config.settings import Settings, parse_settings
from tests.conftest import ROOT_DIR
from tools.lab.directory import DirectoryInfo, LdapDirectory
from tools.lab.stack_hub import point_at_directory, stack_settings_values
from tools.ldap_check import Report, check_login, render_report

pytestmark = pytest.mark.slow


def lab_settings(directory: DirectoryInfo, **options: object) -> Settings:
    return parse_settings(point_at_directory(stack_settings_values("dev"), directory, **options))  # type: ignore[arg-type]


def failed_step(report: Report) -> tuple[str, str, str]:
    (failure,) = [f for f in report.findings if not f.ok]
    return failure.step, failure.detail, failure.fix


@pytest.mark.parametrize(
    ("tls_strategy", "lookup_dn"), [("before_bind", True), ("on_connect", True), ("on_connect", False)]
)
def test_decisions_for_each_kind_of_user(tls_strategy: str, lookup_dn: bool, ldap_directory: DirectoryInfo) -> None:
    settings = lab_settings(ldap_directory, tls_strategy=tls_strategy, lookup_dn=lookup_dn)
    search = ldap_directory.search_password if lookup_dn else None

    def decide(name: str) -> Report:
        password = None if lookup_dn else ldap_directory.user(name).password
        return check_login(settings, name, search_password=search, user_password=password)

    alice, carol, erin = decide("alice"), decide("carol"), decide("erin")
    assert (alice.allowed, alice.admin) == (True, False)
    assert alice.groups == [ldap_directory.users_group_dn]
    assert (carol.allowed, carol.admin) == (True, True)
    assert (erin.allowed, erin.admin) == (False, False)
    text = render_report(erin, settings)
    assert "Decision: REFUSED — not a member of any allowed group" in text
    assert "Decision: ALLOWED" in render_report(alice, settings) and "Admin: yes" in render_report(carol, settings)


def test_a_name_typed_with_capitals_is_checked_as_the_hub_sees_it(ldap_directory: DirectoryInfo) -> None:
    settings = lab_settings(ldap_directory, lookup_dn=True)
    report = check_login(settings, "Carol", search_password=ldap_directory.search_password)
    assert (report.username, report.allowed, report.admin) == ("carol", True, True)


def test_an_unknown_user_is_explained(ldap_directory: DirectoryInfo) -> None:
    settings = lab_settings(ldap_directory, lookup_dn=True)
    report = check_login(settings, "mallory", search_password=ldap_directory.search_password)
    step, detail, fix = failed_step(report)
    assert step == "lookup" and "uid=mallory" in detail and "userSearchBase" in fix
    assert report.allowed is False


def test_a_wrong_search_password_is_explained(ldap_directory: DirectoryInfo) -> None:
    settings = lab_settings(ldap_directory, lookup_dn=True)
    report = check_login(settings, "alice", search_password="wrong")
    step, detail, fix = failed_step(report)
    assert step == "search-bind" and ldap_directory.search_bind_dn in detail and "dsaas:ldapSearchPassword" in fix
    assert report.allowed is None


def test_a_wrong_user_password_is_explained(ldap_directory: DirectoryInfo) -> None:
    settings = lab_settings(ldap_directory)
    step, _detail, _fix = failed_step(check_login(settings, "alice", user_password="wrong"))
    assert step == "user-bind"


@pytest.mark.parametrize("tls_strategy", ["before_bind", "on_connect"])
def test_an_untrusted_certificate_is_explained(
    tls_strategy: str, ldap_directory_factory: Callable[..., LdapDirectory]
) -> None:
    directory = ldap_directory_factory(trusted_ca=False)
    settings = lab_settings(directory.info, tls_strategy=tls_strategy, lookup_dn=True)
    step, detail, fix = failed_step(check_login(settings, "alice", search_password=directory.info.search_password))
    assert step == "tls" and "not signed by the CA in" in detail and "dsaas:hub.ldap.caFile" in fix


def test_a_directory_that_is_down_is_explained(ldap_directory_factory: Callable[..., LdapDirectory]) -> None:
    directory = ldap_directory_factory()
    settings = lab_settings(directory.info, lookup_dn=True)
    directory.stop()
    step, detail, fix = failed_step(check_login(settings, "alice", search_password="x"))
    assert step == "connect" and "does not answer" in detail and "serverAddress" in fix


def test_starttls_on_the_ldaps_port_is_explained(ldap_directory: DirectoryInfo) -> None:
    values = point_at_directory(stack_settings_values("dev"), ldap_directory, lookup_dn=True)
    values["dsaas:hub"]["ldap"]["serverPort"] = ldap_directory.ldaps_port  # StartTLS against the LDAPS port
    report = check_login(parse_settings(values), "alice", search_password=ldap_directory.search_password)
    step, _detail, fix = failed_step(report)
    assert step == "tls" and "on_connect" in fix


def test_the_command_line(ldap_directory: DirectoryInfo, tmp_path: Path) -> None:
    values = point_at_directory(stack_settings_values("dev"), ldap_directory, lookup_dn=True)
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "Pulumi.lab.yaml").write_text(yaml.safe_dump({"config": values}))
    env = {**os.environ, "DSAAS_LDAP_SEARCH_PASSWORD": ldap_directory.search_password}
    command = [sys.executable, "-m", "tools.ldap_check", "lab", "--config-dir", str(config_dir)]
    allowed = subprocess.run([*command, "carol"], cwd=ROOT_DIR, env=env, capture_output=True, text=True, check=False)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "Decision: ALLOWED" in allowed.stdout and "Admin: yes" in allowed.stdout
    refused = subprocess.run([*command, "erin"], cwd=ROOT_DIR, env=env, capture_output=True, text=True, check=False)
    assert refused.returncode == 1 and "REFUSED" in refused.stdout
    assert ldap_directory.search_password not in allowed.stdout + refused.stdout
    env["DSAAS_LDAP_SEARCH_PASSWORD"] = "wrong"
    broken = subprocess.run([*command, "alice"], cwd=ROOT_DIR, env=env, capture_output=True, text=True, check=False)
    assert broken.returncode == 2 and "FAIL  search-bind" in broken.stdout


def test_the_try_hub_command_runs_a_stacks_hub_against_a_throwaway_directory() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.try_hub", "prod", "--smoke"],
        cwd=ROOT_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke: login of alice -> HTTP 302; profiles: Basic, Data Science, R Statistics" in result.stdout
