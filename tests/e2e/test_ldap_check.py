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
from tools.lab.directory import DirectoryInfo, DirectoryShape, LdapDirectory
from tools.lab.stack_hub import point_at_directory, stack_settings_values
from tools.preflight.ldap_check import Report, check_login, render_report

pytestmark = pytest.mark.slow


def lab_settings(directory: DirectoryInfo, **options: object) -> Settings:
    return parse_settings(point_at_directory(stack_settings_values("dev"), directory, **options))  # type: ignore[arg-type]


# The membership each shape calls for, as the check must recommend it.
RECOMMENDED = {
    DirectoryShape.RFC2307: "auto",
    DirectoryShape.ACTIVE_DIRECTORY: "nestedMemberOf",
    DirectoryShape.UNIQUE_MEMBER: "auto",
    DirectoryShape.OPENLDAP: "nestedMemberOf",
}
# A membership setting that does not fit the shape, and the attribute the check must blame.
WRONG_MEMBERSHIP = {
    DirectoryShape.RFC2307: ("member", "memberUid"),
    DirectoryShape.ACTIVE_DIRECTORY: ("memberUid", "no memberUid attribute"),
    DirectoryShape.UNIQUE_MEMBER: ("memberUid", "no memberUid attribute"),
    DirectoryShape.OPENLDAP: ("memberUid", "list members in member"),  # nis is loaded, but groups list DNs
}


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
    values = point_at_directory(
        stack_settings_values("dev"), ldap_directory, tls_strategy="before_bind", lookup_dn=True
    )
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


# -- every directory shape found in the field --------------------------------------------------


def _check_with_search(directory: DirectoryInfo, name: str, **options: object) -> tuple[Settings, Report]:
    settings = lab_settings(directory, lookup_dn=True, **options)
    return settings, check_login(settings, name, search_password=directory.search_password)


def test_default_settings_decide_right_on_every_shape(shaped_directory: DirectoryInfo) -> None:
    directory = shaped_directory
    decisions = {name: _check_with_search(directory, name)[1] for name in directory.users}
    for name, report in decisions.items():
        assert not report.broken, (name, report.findings)
        expected = directory.is_member(name, directory.users_group_dn, nested=False) or directory.is_member(
            name, directory.admins_group_dn, nested=False
        )
        assert report.allowed is expected, name
        assert report.admin is (name == "carol"), name
    # auto checks the groups the way each shape lists members; it does not follow nesting
    assert decisions["frank"].allowed is False
    assert decisions["jean-luc.picard"].allowed is True  # in AD its DN carries an escaped comma


def test_the_check_recommends_the_membership_that_fits(shaped_directory: DirectoryInfo) -> None:
    settings, report = _check_with_search(shaped_directory, "alice")
    assert report.survey is not None
    assert report.survey.recommendation()[0] == RECOMMENDED[shaped_directory.shape]
    text = render_report(report, settings)
    assert f"Recommended dsaas:hub.ldap.membership: {RECOMMENDED[shaped_directory.shape]}" in text
    assert "ok   membership" in text


def test_a_membership_that_does_not_fit_is_a_configuration_error(shaped_directory: DirectoryInfo) -> None:
    wrong, blamed = WRONG_MEMBERSHIP[shaped_directory.shape]
    _settings, report = _check_with_search(shaped_directory, "alice", membership=wrong)
    failures = [f for f in report.findings if not f.ok]
    assert failures and failures[0].step == "membership", report.findings
    assert blamed in failures[0].detail
    assert f"set dsaas:hub.ldap.membership to {RECOMMENDED[shaped_directory.shape]}" in failures[0].fix
    assert report.broken


def test_nested_groups_count_where_the_strategy_follows_them(
    ldap_directories: dict[DirectoryShape, DirectoryInfo],
) -> None:
    directory = ldap_directories[DirectoryShape.ACTIVE_DIRECTORY]
    assert directory.is_member("frank", directory.users_group_dn, nested=True)
    _settings, nested = _check_with_search(directory, "frank", membership="nestedMemberOf")
    assert (nested.allowed, nested.broken) == (True, False)
    _settings, direct = _check_with_search(directory, "frank", membership="memberOf")
    assert (direct.allowed, direct.broken) == (False, False)


def test_a_group_dn_that_does_not_exist_names_the_setting(shaped_directory: DirectoryInfo) -> None:
    values = point_at_directory(stack_settings_values("dev"), shaped_directory, lookup_dn=True)
    values["dsaas:hub"]["ldap"]["allowedGroups"] = [f"cn=dsaas-hub-userz,{shaped_directory.groups_base}"]
    report = check_login(parse_settings(values), "alice", search_password=shaped_directory.search_password)
    step, detail, fix = failed_step(report)
    assert step == "group-dns" and "dsaas-hub-userz" in detail and "dsaas:hub.ldap.allowedGroups" in fix


def test_a_wrong_user_search_base_names_the_setting(shaped_directory: DirectoryInfo) -> None:
    values = point_at_directory(stack_settings_values("dev"), shaped_directory, lookup_dn=True)
    values["dsaas:hub"]["ldap"]["userSearchBase"] = f"ou=nobody,{shaped_directory.base_dn}"
    report = check_login(parse_settings(values), "alice", search_password=shaped_directory.search_password)
    step, _detail, fix = failed_step(report)
    assert step == "settings" and "dsaas:hub.ldap.userSearchBase" in fix


def test_windows_names_map_to_the_hub_user(ldap_directories: dict[DirectoryShape, DirectoryInfo]) -> None:
    directory = ldap_directories[DirectoryShape.ACTIVE_DIRECTORY]
    values = point_at_directory(stack_settings_values("prod"), directory)
    values["dsaas:hub"]["ldap"]["domains"] = ["EXAMPLE", "example.org"]
    settings = parse_settings(values)
    for typed in ("EXAMPLE\\Carol", "carol@example.org"):
        report = check_login(settings, typed, search_password=directory.search_password)
        assert (report.username, report.allowed, report.admin, report.broken) == ("carol", True, True, False)
    other = check_login(settings, "OTHER\\carol", search_password=directory.search_password)
    assert other.allowed is False and failed_step(other)[0] == "name" and not other.broken


def test_the_command_line_explains_an_ad_without_memberuid_and_never_ends_in_a_traceback(
    ldap_directories: dict[DirectoryShape, DirectoryInfo], tmp_path: Path
) -> None:
    directory = ldap_directories[DirectoryShape.ACTIVE_DIRECTORY]
    values = point_at_directory(stack_settings_values("prod"), directory, membership="memberUid")
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "Pulumi.ad.yaml").write_text(yaml.safe_dump({"config": values}))
    env = {**os.environ, "DSAAS_LDAP_SEARCH_PASSWORD": directory.search_password}
    command = [sys.executable, "-m", "tools.ldap_check", "ad", "--config-dir", str(config_dir)]
    for name in ("alice", "erin"):  # a member and a non-member: both are told the real cause
        result = subprocess.run([*command, name], cwd=ROOT_DIR, env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stdout + result.stderr
        assert "FAIL  membership" in result.stdout and "no memberUid attribute" in result.stdout
        assert "set dsaas:hub.ldap.membership to nestedMemberOf" in result.stdout


def _decision(report: Report, settings: Settings) -> str:
    return next(line for line in render_report(report, settings).splitlines() if line.startswith("Decision:"))


def test_every_refusal_prints_its_real_reason(ldap_directory_factory: Callable[..., LdapDirectory]) -> None:
    """Issue 20 item 7: not always "not a member of any allowed group"."""
    lab = ldap_directory_factory(shape=DirectoryShape.ACTIVE_DIRECTORY)
    lab.set_account_disabled("bob", True)
    info = lab.info
    values = point_at_directory(stack_settings_values("prod"), info)
    values["dsaas:hub"]["ldap"]["domains"] = ["EXAMPLE"]
    settings = parse_settings(values)

    def decide(typed: str, password: str | None) -> tuple[Report, str]:
        report = check_login(settings, typed, search_password=info.search_password, user_password=password)
        return report, _decision(report, settings)

    cases = {
        "wrong password": decide("alice", "not-her-password"),
        "unknown user": decide("mallory", "whatever"),
        "domain": decide("OTHER\\alice", info.user("alice").password),
        "disabled": decide("bob", info.user("bob").password),
        "not a member": decide("erin", info.user("erin").password),
    }
    for said, (report, decision) in cases.items():
        assert report.allowed is False and not report.broken, (said, render_report(report, settings))
        assert "REFUSED" in decision and said in decision, (said, decision)
        assert ("not a member of any allowed group" in decision) is (said == "not a member"), decision
    disabled_text = render_report(cases["disabled"][0], settings)
    assert "bob's password: accepted" in disabled_text and "password is accepted" not in disabled_text
    wrong, _ = decide("bob", "not-his-password")
    # the hub says nothing about the account to a wrong password; the operator is told both
    wrong_text = render_report(wrong, settings)
    assert "bob's password: refused as well (invalid credentials)" in wrong_text, wrong_text
    assert _decision(wrong, settings) == "Decision: REFUSED — the account is disabled.", wrong_text


def test_a_server_that_wants_tls_is_explained() -> None:
    from tools.preflight.ldap_check import tls_required_explanation

    for answer in ("binding failed: confidentialityRequired TLS confidentiality required", "strongerAuthRequired"):
        explained = tls_required_explanation(answer)
        assert explained is not None and "this server requires TLS" in explained and "tlsStrategy" in explained
    assert tls_required_explanation("invalidCredentials") is None
