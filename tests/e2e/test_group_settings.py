"""Allowed and admin groups that the directory does not have, or does not let the hub read (issue 20, item 2).

With `nestedMemberOf` (the Active Directory preset) nothing reads the groups themselves, so a misspelt or
foreign group DN used to be "not a member" for everyone, silently. It is now a configuration error at hub
start and in `tools.ldap_check` (exit 2), naming the stack key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import HubFactory
from tools.lab.directory import DirectoryInfo, DirectoryShape
from tools.lab.hub import HubWorkspace, LocalHub
from tools.lab.procs import wait_until
from tools.lab.stack_hub import lab_hub_values, load_lab_settings, point_at_directory, stack_settings_values
from tools.preflight.ldap_check import check_login, render_report

pytestmark = pytest.mark.slow


def misspelt(directory: DirectoryInfo) -> str:
    """A well-formed DN of a group the directory does not have (a typo in the group's name)."""
    return directory.users_group_dn.replace("dsaas-hub-users", "dsaas-hub-usres")


def with_groups(directory: DirectoryInfo, allowed: list[str], admins: list[str]) -> dict[str, Any]:
    """The prod stack (AD preset: nestedMemberOf, search account) pointed at `directory`, with these groups."""
    values = point_at_directory(stack_settings_values("prod"), directory)
    values["dsaas:hub"]["ldap"].update(allowedGroups=allowed, adminGroups=admins)
    return values


def start(factory: HubFactory, values: dict[str, Any], directory: DirectoryInfo, root: Path) -> LocalHub:
    workspace = HubWorkspace.create(root)
    settings = load_lab_settings(values)
    return factory(
        values=lab_hub_values(settings, workspace, ldap_search_password=directory.search_password),
        workspace=workspace,
    )


def test_a_missing_allowed_group_is_a_configuration_error_at_hub_start_and_login(
    ldap_directories: dict[DirectoryShape, DirectoryInfo], hub_factory: HubFactory, tmp_path: Path
) -> None:
    directory = ldap_directories[DirectoryShape.ACTIVE_DIRECTORY]
    wrong = misspelt(directory)
    hub = start(
        hub_factory,
        with_groups(directory, [directory.users_group_dn, wrong], [directory.admins_group_dn]),
        directory,
        tmp_path / "hub",
    )
    assert wait_until(lambda: "configuration error at hub start" in hub.log_text(), 10, interval=0.2), hub.log_text()
    start_line = next(line for line in hub.log_text().splitlines() if "configuration error at hub start" in line)
    assert repr(wrong) in start_line and "dsaas:hub.ldap.allowedGroups" in start_line
    assert repr(directory.users_group_dn) not in start_line  # the real group is fine
    # A member of the real group still gets in; someone in no group is refused with the setting's error.
    assert hub.session().login("alice", directory.user("alice").password).status == 302
    assert hub.session().login("erin", directory.user("erin").password).status == 403
    refusal = next(line for line in hub.log_text().splitlines() if "login of 'erin' refused" in line)
    assert "configuration error" in refusal and "dsaas:hub.ldap.allowedGroups" in refusal


def test_a_foreign_admin_group_is_named_by_ldap_check(ldap_directories: dict[DirectoryShape, DirectoryInfo]) -> None:
    directory = ldap_directories[DirectoryShape.ACTIVE_DIRECTORY]
    foreign = "cn=hub-admins,ou=groups,dc=other,dc=example"  # a DN from another domain's directory
    settings = load_lab_settings(with_groups(directory, [directory.users_group_dn], [foreign]))
    report = check_login(settings, "erin", search_password=directory.search_password)
    assert report.broken  # exit 2: the settings are wrong, not erin's membership
    failures = [f for f in report.findings if not f.ok]
    assert [f.step for f in failures] == ["group-dns"]
    assert "dsaas:hub.ldap.adminGroups" in failures[0].detail and foreign in failures[0].detail
    assert "hub-admins: UNREADABLE" in render_report(report, settings)
    assert "not a member of any allowed group" not in render_report(report, settings)
