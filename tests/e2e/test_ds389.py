"""The hub's authenticator and `ldap_check` against a real 389 Directory Server laid out as FreeIPA lays it out.

The server is `tools/lab/ds389.py` (session fixture `ds389`): users under cn=users,cn=accounts, groups as
groupOfNames + nestedGroup + posixGroup nested two levels, memberOf flattened by 389's MemberOf plugin, a
search account under cn=sysaccounts,cn=etc, anonymous reads off, a locked account (nsAccountLock), an
expired password (passwordExpirationTime, which 389 enforces) and IdM's own expiry attributes
(krbPasswordExpiration, krbPrincipalExpiration, which only IdM's plugins and KDC enforce).

The authenticator is the one the hub ships, configured by the values the program renders for the dev
stack with its site data pointed at the lab server (plain LDAP: the lab 389 has no TLS).
"""

from __future__ import annotations

import copy
from typing import Any

import ldap3
import pytest

from config.settings import Settings, parse_settings
from tools.lab.ds389 import AccountState, Ds389Directory, Ds389Info
from tools.lab.stack_hub import BEHAVIOUR_KEYS, stack_settings_values
from tools.preflight.ldap_check import authenticator_for

pytestmark = pytest.mark.slow


def settings_for(info: Ds389Info, *, lookup_dn: bool = True, **overrides: Any) -> Settings:
    """The dev stack's hub settings with the site data replaced by the lab 389 server's."""
    values = stack_settings_values("dev")
    stack_ldap = values["dsaas:hub"]["ldap"]
    ldap: dict[str, Any] = {key: stack_ldap[key] for key in BEHAVIOUR_KEYS if key in stack_ldap}
    ldap.update(
        serverAddress=info.host,
        serverPort=info.ldap_port,
        tlsStrategy="insecure",
        allowedGroups=[info.users_group_dn],
        adminGroups=[info.admins_group_dn],
        userAttribute=info.user_attribute,
        lookupDn=lookup_dn,
        searchUser=info.search_bind_dn,
    )
    if lookup_dn:
        ldap["userSearchBase"] = info.people_base
    else:
        ldap["bindDnTemplates"] = [info.dn_template]
    ldap.update(overrides)
    edited = copy.deepcopy(values)
    edited["dsaas:hub"]["ldap"] = ldap
    return parse_settings(edited)


def authenticator(info: Ds389Info, **overrides: Any) -> Any:
    return authenticator_for(settings_for(info, **overrides), info.search_password, None)


def test_the_lab_server_is_shaped_as_idm(ds389: Ds389Directory) -> None:
    """The peer itself: flattened memberOf two levels deep, anonymous reads off, and 389's own refusals."""
    info = ds389.info
    server = ldap3.Server(info.host, port=info.ldap_port, get_info=ldap3.NONE)
    search = ldap3.Connection(server, info.search_bind_dn, info.search_password, auto_bind=True)
    search.search(info.people_base, "(uid=gina)", attributes=["memberOf"])
    assert {str(v).lower() for v in search.response[0]["attributes"]["memberOf"]} == {
        g.lower() for g in info.user("gina").nested_groups
    }
    assert len(info.user("gina").nested_groups) == 3  # lab-interns ⊂ research-team ⊂ dsaas-hub-users
    search.search(info.users_group_dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["objectClass"])
    classes = {str(c).lower() for c in search.response[0]["attributes"]["objectClass"]}
    assert {"groupofnames", "nestedgroup", "posixgroup"} <= classes
    search.unbind()

    anonymous = ldap3.Connection(server, raise_exceptions=False)
    anonymous.open()
    anonymous.search(info.base_dn, "(uid=alice)")
    assert anonymous.result["result"] == 48 and not anonymous.response  # inappropriateAuthentication

    locked = ldap3.Connection(server, raise_exceptions=False)
    locked.open()
    assert not locked.rebind(info.user("lou").dn, info.user("lou").password)
    assert locked.result["result"] == 53 and "inactivated" in locked.result["message"]
    expired = ldap3.Connection(server, raise_exceptions=False)
    expired.open()
    assert not expired.rebind(info.user("pete").dn, info.user("pete").password)
    assert expired.result["result"] == 49 and "2.16.840.1.113730.3.4.4" in (expired.result.get("controls") or {})
    # IdM's Kerberos expiry is not enforced by 389 itself: only a client that reads it can tell
    krb = ldap3.Connection(server, raise_exceptions=False)
    krb.open()
    assert krb.rebind(info.user("kate").dn, info.user("kate").password)
    assert info.user("kate").state is AccountState.KRB_PASSWORD_EXPIRED
    for conn in (anonymous, locked, expired, krb):
        conn.unbind()
    print(f"\n389 timings: {ds389.timings}")
