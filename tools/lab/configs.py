"""Reference hub configurations for the harness's own tests (the project generates the real ones)."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Any

from tools.lab.directory import DirectoryInfo


def ldap_hub_config(
    directory: DirectoryInfo,
    *,
    tls_strategy: str = "before_bind",
    allowed_groups: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """A minimal z2jh `hub.config` for LDAPAuthenticator 2.0.2 against the lab directory.

    StartTLS (`before_bind`, the ldap:// port) or LDAPS (`on_connect`, the ldaps:// port), verifying the
    server against the directory's CA; lookup_dn with the search account; allowed_groups defaults to the
    hub-users group. Note ldap3's `Tls` does not verify unless `validate` is CERT_REQUIRED (2).
    """
    port = directory.ldaps_port if tls_strategy == "on_connect" else directory.ldap_port
    return {
        "JupyterHub": {"authenticator_class": "ldapauthenticator.LDAPAuthenticator"},
        "LDAPAuthenticator": {
            "server_address": directory.host,
            "server_port": port,
            "tls_strategy": tls_strategy,
            "tls_kwargs": {"ca_certs_file": str(directory.ca_cert_path), "validate": int(ssl.CERT_REQUIRED)},
            "lookup_dn": True,
            "lookup_dn_search_user": directory.search_bind_dn,
            "lookup_dn_search_password": directory.search_password,
            "user_search_base": directory.people_base,
            "user_attribute": directory.user_attribute,
            "lookup_dn_user_dn_attribute": directory.user_attribute,
            "allowed_groups": list(allowed_groups if allowed_groups is not None else [directory.users_group_dn]),
        },
    }
