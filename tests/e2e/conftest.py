"""Fixtures for end-to-end tests against real software on 127.0.0.1 (see tools/lab/).

- `ldap_directory` (session): the seeded OpenLDAP directory's `DirectoryInfo`, RFC2307 shape (posixGroup,
  `memberUid`). Never stop or change it in a test.
- `ldap_directories` (session): `{DirectoryShape: DirectoryInfo}`, one started directory of each shape (the
  RFC2307 one is `ldap_directory`'s). Read-only, as `ldap_directory`.
- `shaped_directory` (session, parametrized over `DirectoryShape`, ids `rfc2307`, `active-directory`,
  `unique-member`, `openldap`): that shape's `DirectoryInfo` from `ldap_directories`. Read-only: a test
  that changes memberships or accounts takes a private directory from `ldap_directory_factory(shape=...)`.
- `ldap_directory_factory` (function): `factory(*, trusted_ca=True, shape=DirectoryShape.RFC2307,
  idle_timeout=None) -> LdapDirectory`, a started private directory a test may stop (`.stop()`, "directory
  is down"), start with a server certificate from a foreign CA, with slapd's `idletimeout` (seconds), or change
  live (`add_member`, `remove_member`,
  `set_account_disabled`; read `directory.info` again afterwards). Closed at teardown.
- `samba_template` (session): a `SambaTemplate` (`.path`, `.timings`): a Samba AD DC provisioned and seeded
  once per session (tools/lab/samba.py; about 10-20 s of `samba-tool domain provision` plus seeding), stopped.
- `samba_dc` (function, over one DC per test module): the `SambaInfo` of a running DC copied from the template
  (start: about 1-2 s), on 127.0.0.1: users, groups, CA and the host name its certificate names. Read-only:
  never change it or bind with a wrong password (its lockout threshold is 3) in a test.
- `samba_dc_factory` (function): `factory() -> SambaDC`, a private started copy of the template a test may
  change (`modify_user`, `bad_binds`) or stop; closed at teardown. Samba's LDAP ports are fixed, so one DC
  runs at a time: the module's DC pauses while the test runs, and each call stops the previous private DC.
  A running DC holds a machine-wide lease on those ports; the shared DC lives for one module, not the
  session, so another suite on the machine (CI runs two at once) waits about a minute, not a whole run.
- `ds389` (session): a started, seeded 389 Directory Server laid out as FreeIPA lays out its tree
  (`tools.lab.ds389.Ds389Directory`; `.info` is its `Ds389Info`: suffix dc=ipa,dc=example,dc=org, users
  under cn=users,cn=accounts, nested groups under cn=groups,cn=accounts, the search account under
  cn=sysaccounts,cn=etc, a locked and expired accounts). StartTLS on `info.ldap_port`, LDAPS on
  `info.ldaps_port`, server certificate signed by `info.ca_cert_path`; 127.0.0.1 only. A test that
  changes an account (`set_account_lock`, `set_attribute`) puts it back in a `finally`; `.timings` holds the
  instance creation, start and seed times.
- `hub_workspace` (function): a fresh `HubWorkspace` (its `path_map` rewrites extraFiles mount paths).
- `hub_factory` (function) / `module_hub_factory` (module): `factory(hub_config=None, *, values=None,
  extra_config=None, profile_list=None, extra_files=None, workspace=None, **LocalHub kwargs) -> LocalHub`,
  started, running the z2jh chart's own hub configuration on the chart values (`values`, e.g. the
  project's, or a bare `hub_config`); all are stopped at teardown. Without `workspace` the factory's own
  workspace is used (same db and homes).
- `browser` (session): a headless Chromium (Playwright `Browser`).
- `new_page` (function): `new_page(base_url) -> Page` in a fresh browser context.

When a test fails, its hub logs and a screenshot of each open page are copied to
`test-artifacts/<test name>/` (git-ignored) for CI to keep.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tools.lab import browser as lab_browser
from tools.lab.directory import DirectoryInfo, DirectoryShape, LdapDirectory
from tools.lab.ds389 import Ds389Directory
from tools.lab.hub import HubWorkspace, LocalHub
from tools.lab.samba import SambaDC, SambaInfo, provision_template


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


FAILED = pytest.StashKey[bool]()


def failed(request: pytest.FixtureRequest) -> bool:
    return bool(request.node.stash.get(FAILED, False))


def artifacts_for(request: pytest.FixtureRequest) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder = lab_browser.artifacts_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- LDAP --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def _session_directories(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[DirectoryShape, LdapDirectory]]:
    """The session's shared directories, started on first use of each shape."""
    started: dict[DirectoryShape, LdapDirectory] = {}
    yield started
    for directory in started.values():
        directory.close()


def _shared(
    started: dict[DirectoryShape, LdapDirectory], shape: DirectoryShape, tmp_path_factory: pytest.TempPathFactory
) -> DirectoryInfo:
    if shape not in started:
        directory = LdapDirectory(tmp_path_factory.mktemp(f"ldap-{shape}"), shape=shape)
        started[shape] = directory
        directory.start()
    return started[shape].info


@pytest.fixture(scope="session")
def ldap_directory(
    _session_directories: dict[DirectoryShape, LdapDirectory], tmp_path_factory: pytest.TempPathFactory
) -> DirectoryInfo:
    return _shared(_session_directories, DirectoryShape.RFC2307, tmp_path_factory)


@pytest.fixture(scope="session")
def ldap_directories(
    _session_directories: dict[DirectoryShape, LdapDirectory], tmp_path_factory: pytest.TempPathFactory
) -> dict[DirectoryShape, DirectoryInfo]:
    return {shape: _shared(_session_directories, shape, tmp_path_factory) for shape in DirectoryShape}


@pytest.fixture(scope="session", params=list(DirectoryShape), ids=str)
def shaped_directory(
    request: pytest.FixtureRequest, ldap_directories: dict[DirectoryShape, DirectoryInfo]
) -> DirectoryInfo:
    shape: DirectoryShape = request.param
    return ldap_directories[shape]


class LdapDirectoryFactory(Protocol):
    def __call__(
        self,
        *,
        trusted_ca: bool = True,
        shape: DirectoryShape = DirectoryShape.RFC2307,
        idle_timeout: int | None = None,
    ) -> LdapDirectory: ...


@pytest.fixture
def ldap_directory_factory(tmp_path: Path) -> Iterator[LdapDirectoryFactory]:
    started: list[LdapDirectory] = []

    def factory(
        *, trusted_ca: bool = True, shape: DirectoryShape = DirectoryShape.RFC2307, idle_timeout: int | None = None
    ) -> LdapDirectory:
        directory = LdapDirectory(
            tmp_path / f"ldap-{len(started) + 1}", trusted_ca=trusted_ca, shape=shape, idle_timeout=idle_timeout
        )
        started.append(directory)
        directory.start()
        return directory

    yield factory
    for directory in started:
        directory.close()


# -- Samba AD DC -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SambaTemplate:
    path: Path
    timings: dict[str, float]


@pytest.fixture(scope="session")
def samba_template(tmp_path_factory: pytest.TempPathFactory) -> SambaTemplate:
    path = tmp_path_factory.mktemp("samba") / "template"
    return SambaTemplate(path, provision_template(path))


# The module's shared DC once started (Samba's ports are fixed and it binds 127.0.0.1 only: a private DC
# from samba_dc_factory pauses it, and the factory's teardown starts it again). Module scope: a DC holds the
# machine-wide ports lease while it runs, and a session-long one made the other CI half wait for the rest of
# this run (tests/e2e/test_account_matrix.py timed out on the lease in the fresh Debian root).
_SESSION_DCS: list[SambaDC] = []


@pytest.fixture(scope="module")
def _samba_session_dc(samba_template: SambaTemplate, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaDC]:
    with SambaDC(tmp_path_factory.mktemp("samba-dc") / "dc", samba_template.path) as dc:
        _SESSION_DCS.append(dc)
        yield dc
        _SESSION_DCS.remove(dc)


@pytest.fixture
def samba_dc(_samba_session_dc: SambaDC) -> SambaInfo:
    return _samba_session_dc.start()  # a no-op while it runs


@pytest.fixture
def samba_dc_factory(samba_template: SambaTemplate, tmp_path: Path) -> Iterator[Callable[[], SambaDC]]:
    started: list[SambaDC] = []
    paused = [dc for dc in _SESSION_DCS if dc.running]

    def factory() -> SambaDC:
        for running in [*paused, *started]:
            running.stop()
        dc = SambaDC(tmp_path / f"samba-{len(started) + 1}", samba_template.path)
        started.append(dc)
        dc.start()
        return dc

    yield factory
    for dc in started:
        dc.close()
    for dc in paused:
        dc.start()


@pytest.fixture(scope="session")
def ds389(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ds389Directory]:
    directory = Ds389Directory(tmp_path_factory.mktemp("ds389"))
    try:
        directory.start()
        yield directory
    finally:
        directory.close()


# -- JupyterHub --------------------------------------------------------------------------------
class HubFactory(Protocol):
    def __call__(
        self,
        hub_config: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        values: Mapping[str, Any] | None = None,
        extra_config: Mapping[str, str] | None = None,
        profile_list: list[dict[str, Any]] | None = None,
        extra_files: Mapping[str, str | bytes] | None = None,
        workspace: HubWorkspace | None = None,
        **kwargs: Any,
    ) -> LocalHub: ...


class _Hubs:
    def __init__(self, root: Path) -> None:
        self.workspace = HubWorkspace.create(root)
        self.hubs: list[LocalHub] = []

    def __call__(
        self,
        hub_config: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        values: Mapping[str, Any] | None = None,
        extra_config: Mapping[str, str] | None = None,
        profile_list: list[dict[str, Any]] | None = None,
        extra_files: Mapping[str, str | bytes] | None = None,
        workspace: HubWorkspace | None = None,
        **kwargs: Any,
    ) -> LocalHub:
        hub = LocalHub(
            workspace or self.workspace,
            values=values,
            hub_config=hub_config,
            extra_config=extra_config,
            profile_list=profile_list,
            extra_files=extra_files,
            **kwargs,
        )
        self.hubs.append(hub)
        return hub.start()

    def close(self, keep_logs_in: Path | None) -> None:
        for hub in self.hubs:
            hub.stop()
            if keep_logs_in is not None and hub.log_path.exists():
                shutil.copy(hub.log_path, keep_logs_in / f"{hub.run_dir.parent.name}-{hub.run_dir.name}-hub.log")


@pytest.fixture
def hub_workspace(tmp_path: Path) -> HubWorkspace:
    return HubWorkspace.create(tmp_path / "hub")


@pytest.fixture
def hub_factory(request: pytest.FixtureRequest, hub_workspace: HubWorkspace) -> Iterator[HubFactory]:
    hubs = _Hubs(hub_workspace.root)
    yield hubs
    hubs.close(artifacts_for(request) if failed(request) else None)


@pytest.fixture(scope="module")
def module_hub_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubFactory]:
    hubs = _Hubs(tmp_path_factory.mktemp("hub"))
    yield hubs
    hubs.close(None)


# -- Browser -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with lab_browser.launch_browser() as chromium:
        yield chromium


@pytest.fixture
def new_page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Callable[[str], Page]]:
    contexts: list[BrowserContext] = []

    def factory(base_url: str) -> Page:
        context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800})
        context.set_default_timeout(lab_browser.DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield factory
    keep = artifacts_for(request) if failed(request) else None
    for index, context in enumerate(contexts):
        if keep is not None:
            for number, page in enumerate(context.pages):
                with contextlib.suppress(Exception):  # a crashed page must not hide the test's own failure
                    page.screenshot(path=str(keep / f"failure-{index}-{number}.png"), full_page=True)
        context.close()
