# dsaas hub extra config: members of the admin LDAP groups become hub admins, and lose it when removed.
# ldapauthenticator 2.0.2 has no admin-group option (jupyterhub/ldapauthenticator#239), but it reports
# in auth_state["ldap_groups"] which of its allowed_groups the user is in; the admin groups are listed
# there too, so this hook only compares. Runs inside jupyterhub_config.py, where `c` is the config.
# ruff: noqa: F821

DSAAS_ADMIN_GROUPS = frozenset(group.lower() for group in __DSAAS_ADMIN_GROUPS__)


def dsaas_admin_from_ldap_groups(authenticator, handler, authentication):
    """post_auth_hook: set `admin` from group membership (DNs compare case-insensitively, as in LDAP)."""
    if not authentication:
        return authentication
    groups = (authentication.get("auth_state") or {}).get("ldap_groups") or []
    authentication["admin"] = any(group.lower() in DSAAS_ADMIN_GROUPS for group in groups)
    return authentication


c.LDAPAuthenticator.post_auth_hook = dsaas_admin_from_ldap_groups
