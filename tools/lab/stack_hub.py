"""A stack's hub configuration, as the project renders it, made runnable by the local lab hub.

Nothing here writes hub configuration: `components.hub_render.render_hub_values` does, exactly as for
`pulumi up`. This module only (1) points a stack's LDAP settings at a directory when asked (the
throwaway lab directory, or a URL), (2) renders the chart values with the workspace's cookie secret and
proxy token, which `tools.lab.hub.LocalHub` hands to the chart and runs as the hub pod would.
"""

from __future__ import annotations

import contextlib
import copy
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from components import hub_render
from config.settings import PROJECT_ROOT, Settings, parse_settings
from tools.lab.directory import DirectoryInfo, DirectoryShape, LdapDirectory
from tools.lab.hub import HubWorkspace, LocalHub
from tools.offline.mockgraph import project_defaults, read_stack_values

LAB_FILES = PROJECT_ROOT / "test-artifacts" / "lab-files"


def stack_settings_values(stack: str, config_dir: Path | None = None) -> dict[str, Any]:
    """A stack file's `dsaas:*` values with Pulumi.yaml defaults, secrets left out (they are not settings)."""
    merged = {**project_defaults(), **read_stack_values(stack, config_dir)}

    def is_secret(value: Any) -> bool:
        return isinstance(value, dict) and set(value) == {"secure"}

    return {k: copy.deepcopy(v) for k, v in merged.items() if k.startswith("dsaas:") and not is_secret(v)}


def project_copy(source: Path, name: str) -> str:
    """Copy a file into the (git-ignored) project folder the settings may name; return its relative path."""
    target = LAB_FILES / uuid.uuid4().hex[:12] / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target.relative_to(PROJECT_ROOT).as_posix()


# What a stack says about behaviour (kept when pointing at another directory); the rest is site data.
BEHAVIOUR_KEYS = ("directory", "membership", "domains", "refreshMinutes")


def shape_for(values: dict[str, Any]) -> DirectoryShape:
    """The lab directory shape a stack's LDAP settings are written for."""
    ldap = values["dsaas:hub"]["ldap"]
    if ldap.get("directory") == "active-directory" or ldap.get("membership") in ("memberOf", "nestedMemberOf"):
        return DirectoryShape.ACTIVE_DIRECTORY
    if ldap.get("membership") == "uniqueMember":
        return DirectoryShape.UNIQUE_MEMBER
    return DirectoryShape.RFC2307


def point_at_directory(
    values: dict[str, Any],
    directory: DirectoryInfo,
    *,
    tls_strategy: str | None = None,
    lookup_dn: bool | None = None,
    search_account: bool | None = None,
    membership: str | None = None,
) -> dict[str, Any]:
    """The stack's hub settings with its site data (server, DNs, groups) replaced by the lab directory's.

    Behaviour settings (directory kind, membership, domains, refresh) stay the stack's unless given.
    `lookup_dn` defaults to the stack's way of finding DNs, and is forced where the directory has no DN
    template (the Active Directory shape); `search_account` defaults to whether the stack has one.
    """
    stack_ldap = values["dsaas:hub"]["ldap"]
    strategy = tls_strategy or stack_ldap.get("tlsStrategy", "before_bind")
    stack_looks_up = bool(stack_ldap.get("lookupDn")) or (
        stack_ldap.get("directory") == "active-directory" and not stack_ldap.get("bindDnTemplates")
    )
    use_lookup = stack_looks_up if lookup_dn is None else lookup_dn
    if directory.dn_template is None:
        use_lookup = True
    with_search = bool(stack_ldap.get("searchUser")) if search_account is None else search_account
    ldap: dict[str, Any] = {key: stack_ldap[key] for key in BEHAVIOUR_KEYS if key in stack_ldap}
    ldap.update(
        serverAddress=directory.host,
        serverPort=directory.ldaps_port if strategy == "on_connect" else directory.ldap_port,
        tlsStrategy=strategy,
        allowedGroups=[directory.users_group_dn],
        adminGroups=[directory.admins_group_dn],
        userAttribute=directory.user_attribute,
        lookupDn=use_lookup,
    )
    if membership is not None:
        ldap["membership"] = membership
    if strategy != "insecure":
        ldap["caFile"] = project_copy(directory.ca_cert_path, "ca.pem")
    if use_lookup:
        ldap.update(searchUser=directory.search_bind_dn, userSearchBase=directory.people_base)
    else:
        ldap["bindDnTemplates"] = [directory.dn_template]
        if with_search:
            ldap["searchUser"] = directory.search_bind_dn
    edited = copy.deepcopy(values)
    edited["dsaas:hub"]["ldap"] = ldap
    return edited


def search_password_for(settings: Settings, directory: DirectoryInfo) -> str | None:
    """The lab search account's password, where the settings use a search account."""
    return directory.search_password if settings.hub.ldap.search_user else None


def point_at_url(values: dict[str, Any], ldap_url: str) -> dict[str, Any]:
    """The stack's own LDAP settings, but another server (`ldap://host:port` or `ldaps://host:port`)."""
    form = "Fix: give ldap://host[:port] or ldaps://host[:port] (host: a DNS name or an IPv4 address)."
    shown = ascii(ldap_url)[:80]
    try:
        parsed = urlparse(ldap_url)
        port = parsed.port  # a port that is not a number or over 65535 raises here
    except ValueError:
        raise ValueError(f"--ldap-url {shown}: the port is not a number from 1 to 65535. {form}") from None
    if parsed.scheme not in ("ldap", "ldaps") or not parsed.hostname:
        raise ValueError(f"--ldap-url {shown} is not an LDAP URL. {form}")
    if ":" in parsed.hostname:
        # The stack's server setting takes DNS names and IPv4 only; blaming that setting would mislead.
        raise ValueError(f"--ldap-url {shown}: an IPv6 address cannot be checked, the hub's settings take none. {form}")
    if parsed.username or parsed.password or parsed.path not in ("", "/") or parsed.query:
        raise ValueError(f"--ldap-url {shown}: only a scheme, host and port belong in it. {form}")
    hub = values.get("dsaas:hub")
    if not isinstance(hub, dict) or not isinstance(hub.get("ldap"), dict):
        raise ValueError(
            "--ldap-url points the stack's LDAP login elsewhere, but this stack has no dsaas:hub.ldap. Fix: add "
            "the hub's LDAP settings to the stack file first (docs/settings.md)."
        )
    edited = copy.deepcopy(values)
    ldap = edited["dsaas:hub"]["ldap"]
    ldap["serverAddress"] = parsed.hostname
    if port:
        ldap["serverPort"] = port
    if parsed.scheme == "ldaps":
        ldap["tlsStrategy"] = "on_connect"
    elif ldap.get("tlsStrategy") == "on_connect":
        ldap["tlsStrategy"] = "before_bind"
    return edited


def lab_hub_values(
    settings: Settings, workspace: HubWorkspace, ldap_search_password: str | None = None
) -> dict[str, Any]:
    """The chart values `pulumi up` would hand the hub release, with the workspace's generated secrets."""
    return hub_render.render_hub_values(
        settings,
        hub_render.HubSecrets(
            cookie_secret=workspace.secret("cookie"),
            proxy_secret_token=workspace.secret("proxy"),
            ldap_search_password=ldap_search_password,
        ),
    )


def load_lab_settings(values: dict[str, Any]) -> Settings:
    return parse_settings(values)


def with_ca_file(values: dict[str, Any], ca_file: Path) -> dict[str, Any]:
    """The stack's settings with `ca_file` (a PEM CA bundle anywhere) as the directory's CA."""
    hub = values.get("dsaas:hub")
    if not isinstance(hub, dict) or not isinstance(hub.get("ldap"), dict):
        raise ValueError("--ca-file: this stack has no dsaas:hub.ldap. Fix: add the hub's LDAP settings first.")
    edited = copy.deepcopy(values)
    edited["dsaas:hub"]["ldap"]["caFile"] = project_copy(ca_file, "ca.pem")
    return edited


@contextlib.contextmanager
def running_stack_hub(
    stack: str,
    workdir: Path,
    *,
    ldap_url: str | None = None,
    search_password: str | None = None,
    config_dir: Path | None = None,
    log_level: str = "INFO",
    directory: DirectoryInfo | None = None,
    stack_server: bool = False,
    ca_file: Path | None = None,
) -> Iterator[tuple[LocalHub, DirectoryInfo | None]]:
    """A local hub from `stack`'s rendered values: against a throwaway directory, `ldap_url`, or (with
    `stack_server`) the stack's own serverAddress/serverPort. `ca_file` replaces the stack's caFile for a
    real server (the throwaway directory brings its own CA).

    The throwaway directory (in the stack's shape) is started here and stopped with the hub, unless
    `directory` names one already running (of any shape), which the hub then uses and leaves running.
    """
    if sum((ldap_url is not None, directory is not None, stack_server)) > 1:
        raise ValueError("running_stack_hub: give at most one of ldap_url, directory and stack_server")
    if ca_file is not None and ldap_url is None and not stack_server:
        raise ValueError("--ca-file is the CA of your directory: give it with --ldap-url or --stack-server")
    values = stack_settings_values(stack, config_dir)
    if ca_file is not None:
        values = with_ca_file(values, ca_file)
    with contextlib.ExitStack() as stack_of_things:
        if stack_server:
            pass  # the stack's own LDAP settings, server included, exactly as pulumi up would ship them
        elif ldap_url is None:
            if directory is None:
                lab_directory = LdapDirectory(workdir / "ldap", shape=shape_for(values))
                directory = stack_of_things.enter_context(lab_directory).info
            values = point_at_directory(values, directory)
            search_password = search_password_for(parse_settings(values), directory)
        else:
            values = point_at_url(values, ldap_url)
        settings = parse_settings(values)
        workspace = HubWorkspace.create(workdir / "hub")
        hub = LocalHub(
            workspace,
            values=lab_hub_values(settings, workspace, ldap_search_password=search_password),
            log_level=log_level,
        )
        stack_of_things.enter_context(hub)
        yield hub, directory
