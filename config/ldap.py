"""Settings of the hub's directory login (`dsaas:hub.ldap`): LDAP or Active Directory through
ldapauthenticator with the dsaas authenticator on top, how group membership is read, and the checks that
every login name can become a DN. The search account's password is the Pulumi secret
dsaas:ldapSearchPassword, required by `config.loader` when `searchUser` is set.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator

from config.model import DistinguishedName, HostName, ProjectPath, SettingsModel, SettingsProblem, stack_key


class LdapTlsStrategy(StrEnum):
    """ldapauthenticator 2.x `tls_strategy`."""

    BEFORE_BIND = "before_bind"
    """StartTLS on the LDAP port before credentials are sent (default port 389)."""
    ON_CONNECT = "on_connect"
    """LDAPS: TLS from the first byte (default port 636)."""
    INSECURE = "insecure"
    """No TLS: passwords cross the network in clear. The policy pack refuses it."""


class DirectoryKind(StrEnum):
    """What kind of directory the hub logs in against: chooses sound defaults for the rest."""

    GENERIC = "generic"
    """OpenLDAP, 389 Directory Server, FreeIPA, ...: defaults userAttribute uid, membership auto."""
    ACTIVE_DIRECTORY = "active-directory"
    """Microsoft Active Directory: defaults userAttribute sAMAccountName, lookupDn true (a search
    account finds users in any OU), membership nestedMemberOf, and disabled accounts are refused."""


class GroupMembership(StrEnum):
    """How the hub reads whether a user is in a group. Never a filter naming an attribute the
    directory may lack (ldapauthenticator's default names memberUid, which a directory without the
    nis schema rejects for everyone)."""

    AUTO = "auto"
    """Each listed group is read once and checked by the attribute its own class defines:
    groupOfNames and AD group → member, groupOfUniqueNames → uniqueMember, posixGroup → memberUid."""
    MEMBER = "member"
    """groupOfNames / AD groups list member DNs."""
    UNIQUE_MEMBER = "uniqueMember"
    """groupOfUniqueNames lists uniqueMember DNs."""
    MEMBER_UID = "memberUid"
    """posixGroup (RFC 2307) lists login names."""
    MEMBER_OF = "memberOf"
    """The user's own entry lists its groups (AD; OpenLDAP with the memberof overlay)."""
    NESTED_MEMBER_OF = "nestedMemberOf"
    """memberOf followed upwards: members of a group inside an allowed group are let in."""


_LDAP_URL = re.compile(r"(?P<scheme>ldaps?)://(?P<host>[^:/\s]+)(?::(?P<port>\d+))?/?", re.IGNORECASE)


class LdapSettings(SettingsModel):
    """LDAP / Active Directory login through ldapauthenticator (with the dsaas authenticator on top)."""

    directory: DirectoryKind = Field(
        default=DirectoryKind.GENERIC,
        description="generic or active-directory: the defaults of userAttribute, lookupDn and membership.",
    )
    server_address: HostName = Field(min_length=1, description="Directory host name (must match its certificate).")

    @field_validator("server_address", mode="before")
    @classmethod
    def _a_host_name_not_a_url(cls, value: Any) -> Any:
        """ldapauthenticator takes a host name and a TLS strategy, not a URL: say which settings a URL maps to."""
        match = _LDAP_URL.fullmatch(str(value).strip()) if isinstance(value, str) else None
        if match is None:
            return value
        scheme, host, port = match.group("scheme").lower(), match.group("host"), match.group("port")
        strategy = "on_connect` (LDAPS)" if scheme == "ldaps" else "before_bind` (StartTLS)"
        port_hint = f", `serverPort: {port}`" if port else ""
        raise ValueError(
            f"is a URL ({value}), but this setting is the directory's host name alone. Fix: set "
            f"`serverAddress: {host}`{port_hint} and `tlsStrategy: {strategy}"
        )

    server_port: StrictInt | None = Field(
        default=None, ge=1, le=65535, description="Port; default 389 for before_bind/insecure, 636 for on_connect."
    )
    tls_strategy: LdapTlsStrategy = Field(
        default=LdapTlsStrategy.BEFORE_BIND, description="before_bind (StartTLS), on_connect (LDAPS) or insecure."
    )
    ca_file: ProjectPath | None = Field(
        default=None,
        description="PEM bundle of the CA that signed the directory's certificate, relative to the project; "
        "default: the hub image's system CAs.",
    )
    bind_dn_templates: list[DistinguishedName] = Field(
        default_factory=list,
        description="DN templates with {username}, e.g. uid={username},ou=people,dc=example,dc=org.",
    )
    lookup_dn: StrictBool = Field(
        default=False,
        description="Look the user's DN up with the search account instead of a template "
        "(default true for active-directory).",
    )
    search_user: DistinguishedName | None = Field(
        default=None,
        description="DN of the search account (password: secret dsaas:ldapSearchPassword); needed by lookupDn, "
        "and lets the hub re-check groups while sessions live.",
    )
    user_search_base: DistinguishedName | None = Field(default=None, description="Where users are searched (lookupDn).")
    user_attribute: str = Field(
        default="uid",
        pattern=r"^[A-Za-z][A-Za-z0-9-]*$",
        description="Attribute holding the login name (default uid; sAMAccountName for active-directory).",
    )
    membership: GroupMembership = Field(
        default=GroupMembership.AUTO,
        description="How group membership is read: auto, member, uniqueMember, memberUid, memberOf, "
        "nestedMemberOf (default auto; nestedMemberOf for active-directory).",
    )
    allowed_groups: list[DistinguishedName] = Field(
        min_length=1, description="Group DNs whose members may log in (JupyterHub 5 admits nobody otherwise)."
    )
    admin_groups: list[DistinguishedName] = Field(
        default_factory=list, description="Group DNs whose members become hub admins (and may log in)."
    )
    domains: list[str] = Field(
        default_factory=list,
        description="Domains users may type with their name, as DOMAIN\\name or name@domain (NetBIOS or DNS "
        "names); each becomes the plain name. Other domains are refused, except that with active-directory a "
        "typed name@domain is also looked up as a userPrincipalName (the hub user stays the sAMAccountName).",
    )
    password_change_url: str | None = Field(
        default=None,
        pattern=r"^https://[^\s]+$",
        description="https:// page where users change their password; the login page names it when the "
        "directory says a password has expired or must be changed (Active Directory).",
    )
    refresh_minutes: StrictInt = Field(
        default=5,
        ge=1,
        le=1440,
        description="How often a session's groups and admin are re-checked through the search account; "
        "without one, how long a login lasts before the next login re-checks.",
    )

    @model_validator(mode="before")
    @classmethod
    def _directory_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("directory") != DirectoryKind.ACTIVE_DIRECTORY.value:
            return data
        filled = dict(data)

        def absent(*names: str) -> bool:
            return not any(name in filled for name in names)

        if absent("userAttribute", "user_attribute"):
            filled["userAttribute"] = "sAMAccountName"
        if absent("membership"):
            filled["membership"] = GroupMembership.NESTED_MEMBER_OF.value
        if absent("lookupDn", "lookup_dn") and absent("bindDnTemplates", "bind_dn_templates"):
            filled["lookupDn"] = True
        return filled

    @property
    def port(self) -> int:
        if self.server_port is not None:
            return self.server_port
        return 636 if self.tls_strategy is LdapTlsStrategy.ON_CONNECT else 389


_LOGIN_DOMAIN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def check_ldap(ldap: LdapSettings) -> list[SettingsProblem]:
    """Every login name can become a DN one way, and a CA bundle is not set for nothing."""
    problems = []
    if not ldap.lookup_dn and not ldap.bind_dn_templates:
        problems.append(
            SettingsProblem(
                key=stack_key("hub", "ldap", "bindDnTemplates"),
                problem="the hub cannot turn a login name into a DN: no bindDnTemplates and lookupDn is false.",
                fix="add a template like uid={username},ou=people,dc=example,dc=org, or set lookupDn: true "
                "with searchUser and userSearchBase (Active Directory).",
            )
        )
    for i, template in enumerate(ldap.bind_dn_templates):
        if "{username}" not in template:
            problems.append(
                SettingsProblem(
                    key=stack_key("hub", "ldap", "bindDnTemplates", i),
                    problem=f"'{template}' has no {{username}} placeholder, so every user would bind as one DN.",
                    fix="put {username} where the login name goes.",
                )
            )
    if ldap.lookup_dn and ldap.bind_dn_templates:
        problems.append(
            SettingsProblem(
                key=stack_key("hub", "ldap", "lookupDn"),
                problem="both lookupDn and bindDnTemplates are set, so it is unclear which finds the user's DN.",
                fix="keep one: bindDnTemplates where the login name is in the DN, lookupDn (with searchUser and "
                "userSearchBase) where it is not, as in Active Directory.",
            )
        )
    for i, domain in enumerate(ldap.domains):
        if not _LOGIN_DOMAIN.fullmatch(domain):
            problems.append(
                SettingsProblem(
                    key=stack_key("hub", "ldap", "domains", i),
                    problem=f"{domain!r} is not a NetBIOS or DNS domain name.",
                    fix="list names like EXAMPLE or example.org, as users type them before a backslash or after an @.",
                )
            )
    if ldap.lookup_dn:
        for field, value in (("searchUser", ldap.search_user), ("userSearchBase", ldap.user_search_base)):
            if not value:
                problems.append(
                    SettingsProblem(
                        key=stack_key("hub", "ldap", field),
                        problem="lookupDn is true but this is not set.",
                        fix=f"set dsaas:hub.ldap.{field} (a DN), or use bindDnTemplates instead of lookupDn.",
                    )
                )
    if ldap.ca_file and ldap.tls_strategy is LdapTlsStrategy.INSECURE:
        problems.append(
            SettingsProblem(
                key=stack_key("hub", "ldap", "caFile"),
                problem="a CA bundle is set but tlsStrategy is insecure, so it would never be used.",
                fix="set dsaas:hub.ldap.tlsStrategy to before_bind or on_connect.",
            )
        )
    return problems


__all__ = ["DirectoryKind", "GroupMembership", "LdapSettings", "LdapTlsStrategy", "check_ldap"]
