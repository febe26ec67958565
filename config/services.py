"""Typed settings of the platform services: Trident on ONTAP (`dsaas:storage`) and the hub (`dsaas:hub`).

Form is checked here (types, ranges, closed sets); rules that need the node network or span both
sections are in `config.settings.check_consistency`. Secrets (ONTAP credentials, the LDAP search
password, the hub certificate, an external database URL) are never settings: `config.loader`
requires them as Pulumi secrets when these settings ask for them.
"""

from __future__ import annotations

from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from pydantic import Field, model_validator

from config import versions
from config.model import DistinguishedName, HostName, OneLine, ProjectPath, SettingsModel

# --- storage -----------------------------------------------------------------------------------


class NasDriver(StrEnum):
    """Trident's ONTAP NFS drivers for user homes."""

    ONTAP_NAS = "ontap-nas"
    """One FlexVol per volume: CSI snapshots, clones, SnapMirror. Up to ~1,000 volumes per node pair."""
    ONTAP_NAS_ECONOMY = "ontap-nas-economy"
    """Qtrees inside shared FlexVols: far more volumes, but no CSI snapshots or clones."""


class ReclaimPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class OntapSettings(SettingsModel):
    """The ONTAP SVM that serves the platform. Credentials are the secrets dsaas:ontapUsername/Password."""

    management_lif: HostName = Field(
        min_length=1, description="SVM (or cluster) management LIF: IP address or host name."
    )
    data_lif: IPv4Address = Field(description="NFS data LIF of the SVM, reachable from the node subnet.")
    svm: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,47}$", description="Storage virtual machine (vserver) name.")


class StorageSettings(SettingsModel):
    """Trident backends, storage classes and snapshot class."""

    ontap: OntapSettings
    homes_driver: NasDriver = Field(
        default=NasDriver.ONTAP_NAS,
        description="Trident driver for user homes: ontap-nas (snapshots) or ontap-nas-economy (scale).",
    )
    homes_reclaim_policy: ReclaimPolicy = Field(
        default=ReclaimPolicy.RETAIN,
        description="What Kubernetes does with a home volume when its claim goes: Retain keeps user data.",
    )
    storage_prefix: str = Field(
        default="dsaas",
        pattern=r"^[a-z][a-z0-9]{0,11}$",
        description="Prefix of every ONTAP volume Trident creates (letters and digits; ONTAP names).",
    )
    export_cidrs: list[IPv4Network] | None = Field(
        default=None,
        description="Clients the automatic export policy admits; default: the node subnet only.",
    )
    nfs_mount_options: str = Field(
        default="nfsvers=4.1,hard", pattern=r"^[a-z0-9=.,_]+$", description="NFS mount options (NFS 4.1)."
    )
    snapshots: bool = Field(
        default=True,
        description="Offer CSI snapshots: the dsaas-snapshots VolumeSnapshotClass (needs homesDriver ontap-nas).",
    )
    snapshot_policy: str = Field(
        default="default",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="ONTAP snapshot policy of new volumes (scheduled snapshots; 'none' to disable).",
    )
    snapshot_reserve_percent: int = Field(
        default=10, ge=0, le=90, description="Share of each volume reserved for snapshots, percent."
    )
    unix_permissions: str = Field(
        default="0770", pattern=r"^0[0-7]{3}$", description="Mode of each new volume's root directory."
    )
    autosupport: bool = Field(
        default=False,
        description="Let Trident's AutoSupport send support bundles to NetApp periodically; false silences it "
        "(one bundle can still be sent on purpose).",
    )


# --- hub ---------------------------------------------------------------------------------------


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


class HubTlsMode(StrEnum):
    SECRET = "secret"
    """The proxy serves HTTPS with the certificate in dsaas:hubTlsCertificate / dsaas:hubTlsKey."""
    OFFLOAD = "offload"
    """A front proxy or load balancer terminates TLS and forwards plain HTTP to the hub's address,
    which then admits only that proxy (dsaas:hub.frontProxyCidrs)."""


class HubDatabaseKind(StrEnum):
    BLOCK = "block"
    """SQLite on a Trident ontap-san (iSCSI) volume: self-contained, never on NFS."""
    POSTGRES = "postgres"
    """An external PostgreSQL; its URL (with password) is the secret dsaas:hubDatabaseUrl."""


class LdapSettings(SettingsModel):
    """LDAP / Active Directory login through ldapauthenticator (with the dsaas authenticator on top)."""

    directory: DirectoryKind = Field(
        default=DirectoryKind.GENERIC,
        description="generic or active-directory: the defaults of userAttribute, lookupDn and membership.",
    )
    server_address: HostName = Field(min_length=1, description="Directory host name (must match its certificate).")
    server_port: int | None = Field(
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
    lookup_dn: bool = Field(
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
        "names); each becomes the plain name. Other domains are refused.",
    )
    refresh_minutes: int = Field(
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


class ProfileSettings(SettingsModel):
    """One entry of the server profile chooser."""

    display_name: OneLine = Field(min_length=1, description="Name shown in the chooser.")
    slug: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$", description="Stable identifier.")
    description: OneLine = Field(default="", description="One line under the name.")
    image: str = Field(description="Container image pinned by a build date or commit tag or a digest (config/pins.py).")
    # Bounded by the largest node (dsaas:nodes.*.cpus ≤ 128, memoryMib ≤ 4 TiB); finite numbers only.
    cpu_guarantee: float = Field(gt=0, le=128, allow_inf_nan=False, description="CPUs reserved for the server.")
    cpu_limit: float = Field(gt=0, le=128, allow_inf_nan=False, description="CPUs the server may use at most.")
    memory_guarantee_gib: float = Field(
        gt=0, le=4096, allow_inf_nan=False, description="Memory reserved for the server, GiB."
    )
    memory_limit_gib: float = Field(
        gt=0, le=4096, allow_inf_nan=False, description="Memory the server may use at most, GiB."
    )
    default: bool = Field(default=False, description="Preselected in the chooser.")


BUILTIN_PROFILES: tuple[ProfileSettings, ...] = (
    ProfileSettings(
        display_name="Basic",
        slug="basic",
        description="Python and JupyterLab: a light environment for everyday work.",
        image=versions.NOTEBOOK_IMAGES["basic"],
        cpu_guarantee=0.5,
        cpu_limit=2,
        memory_guarantee_gib=1,
        memory_limit_gib=4,
        default=True,
    ),
    ProfileSettings(
        display_name="Data Science",
        slug="datascience",
        description="Python, R and Julia with the scientific stack (pandas, scikit-learn, ...).",
        image=versions.NOTEBOOK_IMAGES["datascience"],
        cpu_guarantee=1,
        cpu_limit=4,
        memory_guarantee_gib=4,
        memory_limit_gib=16,
    ),
)


class CullingSettings(SettingsModel):
    enabled: bool = Field(default=True, description="Stop servers nobody uses (their volume stays).")
    timeout_minutes: int = Field(
        default=60, ge=5, le=7 * 24 * 60, description="Idle time before a server is stopped, minutes (at most a week)."
    )


class BrandingSettings(SettingsModel):
    logo_file: ProjectPath | None = Field(
        default=None, description="Logo shown on every hub page (SVG or PNG), relative to the project."
    )
    login_template_file: ProjectPath | None = Field(
        default=None,
        description="Jinja login template extending templates/login.html, relative to the project.",
    )


class HubDatabaseSettings(SettingsModel):
    kind: HubDatabaseKind = Field(default=HubDatabaseKind.BLOCK, description="block (ontap-san) or postgres.")
    capacity_gib: int = Field(default=2, ge=1, le=100, description="Size of the block volume, GiB.")


class HubSettings(SettingsModel):
    """The Zero to JupyterHub deployment."""

    hostname: str = Field(
        max_length=253,
        pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
        description="Fully qualified name users open; the certificate must name it.",
    )
    address: IPv4Address = Field(
        description="Address of the hub's proxy service, announced by kube-vip inside the node subnet."
    )
    tls: HubTlsMode = Field(default=HubTlsMode.SECRET, description="secret (certificate in the stack) or offload.")
    front_proxy_cidrs: list[IPv4Network] | None = Field(
        default=None,
        description="With tls offload (required then): addresses of the TLS-terminating front proxy, the only "
        "clients the hub's plain-HTTP address admits (single addresses or CIDRs).",
    )
    ldap: LdapSettings
    profiles: list[ProfileSettings] = Field(
        default_factory=list, description="Profiles added after the built-in Basic and Data Science."
    )
    home_capacity_gib: int = Field(default=10, ge=1, le=10240, description="Size of each user's home volume, GiB.")
    culling: CullingSettings = Field(default_factory=CullingSettings)
    user_placeholders: int = Field(
        default=0, ge=0, le=100, description="Placeholder pods that keep room for servers to start fast."
    )
    network_policy: bool = Field(default=True, description="Limit user servers' network traffic (z2jh policy).")
    prepull_images: bool = Field(default=True, description="Pull profile images onto every node ahead of time.")
    branding: BrandingSettings = Field(default_factory=BrandingSettings)
    session_hours: int = Field(
        default=12,
        ge=1,
        le=720,
        description="How long a login cookie is valid, hours (a working day by default); then the user logs in again.",
    )
    database: HubDatabaseSettings = Field(default_factory=HubDatabaseSettings)

    @property
    def all_profiles(self) -> list[ProfileSettings]:
        return [*BUILTIN_PROFILES, *self.profiles]

    @property
    def url(self) -> str:
        return f"https://{self.hostname}/"


__all__ = [
    "BUILTIN_PROFILES",
    "BrandingSettings",
    "CullingSettings",
    "DirectoryKind",
    "GroupMembership",
    "HubDatabaseKind",
    "HubDatabaseSettings",
    "HubSettings",
    "HubTlsMode",
    "LdapSettings",
    "LdapTlsStrategy",
    "NasDriver",
    "OntapSettings",
    "ProfileSettings",
    "ReclaimPolicy",
    "StorageSettings",
]
