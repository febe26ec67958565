"""Settings of the hub (`dsaas:hub`): the Zero to JupyterHub deployment, its TLS, database, server
profiles, culling and branding, and their checks. Its directory login is `config.ldap`; whether the
hub's address is free in the node subnet is checked in `config.settings`, which sees the nodes. The
certificate and an external database URL are never settings: `config.loader` requires them as Pulumi
secrets when these settings ask for them.
"""

from __future__ import annotations

from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network, collapse_addresses
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, StrictBool, StrictFloat, StrictInt

from config import pins, versions
from config.ldap import LdapSettings, check_ldap
from config.model import OneLine, ProjectPath, SettingsModel, SettingsProblem, check_project_file, stack_key


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


class HubDatabaseBackup(StrEnum):
    PG_DUMP = "pg_dump"
    """The program's nightly job dumps the PostgreSQL database (`pg_dump --format=custom`) into the backup
    bucket's hub-database/ folder, as it copies the SQLite one."""
    EXTERNAL = "external"
    """Whoever runs the PostgreSQL server backs it up; dsaas:hub.database.externalBackup says how."""


# libpq reads these (PostgreSQL 18 docs, "Environment Variables"); the URL's query parameters a pg_dump job
# can honour map to the last three. Anything else (a client certificate path, say) has no file in the job.
PG_QUERY_VARIABLES: dict[str, str] = {
    "sslmode": "PGSSLMODE",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
}


def pg_url_problems(url: str) -> list[str]:
    """What keeps the dump job from reaching the database in `url` (dsaas:hubDatabaseUrl, the SQLAlchemy URL the
    hub uses); never quotes the URL, which holds a password."""
    parts = urlsplit(url)
    problems = []
    if parts.scheme != "postgresql" and not parts.scheme.startswith("postgresql+"):
        problems.append("is not a postgresql:// (or postgresql+<driver>://) URL")
    if not parts.hostname:
        problems.append("names no host (the job connects over TCP; a Unix socket is not in its pod)")
    if not parts.username:
        problems.append("names no user")
    if not parts.path.strip("/"):
        problems.append("names no database (…/<database> at its end)")
    try:
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        problems.append("has a port that is not a number")
    unknown = sorted(set(parse_qs(parts.query)) - PG_QUERY_VARIABLES.keys())
    if unknown:
        problems.append(
            f"has query parameter(s) {', '.join(unknown)} the dump job cannot honour "
            f"(it honours {', '.join(PG_QUERY_VARIABLES)})"
        )
    return problems


class ProfileSettings(SettingsModel):
    """One entry of the server profile chooser."""

    display_name: OneLine = Field(min_length=1, description="Name shown in the chooser.")
    slug: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$", description="Stable identifier.")
    description: OneLine = Field(default="", description="One line under the name.")
    image: str = Field(description="Container image pinned by a build date or commit tag or a digest (config/pins.py).")
    # Bounded by the largest node (dsaas:nodes.*.cpus ≤ 128, memoryMib ≤ 4 TiB); finite numbers only.
    cpu_guarantee: StrictFloat = Field(gt=0, le=128, allow_inf_nan=False, description="CPUs reserved for the server.")
    cpu_limit: StrictFloat = Field(gt=0, le=128, allow_inf_nan=False, description="CPUs the server may use at most.")
    memory_guarantee_gib: StrictFloat = Field(
        gt=0, le=4096, allow_inf_nan=False, description="Memory reserved for the server, GiB."
    )
    memory_limit_gib: StrictFloat = Field(
        gt=0, le=4096, allow_inf_nan=False, description="Memory the server may use at most, GiB."
    )
    default: StrictBool = Field(default=False, description="Preselected in the chooser.")


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
    enabled: StrictBool = Field(default=True, description="Stop servers nobody uses (their volume stays).")
    timeout_minutes: StrictInt = Field(
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
    capacity_gib: StrictInt = Field(default=2, ge=1, le=100, description="Size of the block volume, GiB.")
    backup: HubDatabaseBackup | None = Field(
        default=None,
        description="With kind postgres (required then): pg_dump (the program's nightly dump) or external.",
    )
    external_backup: OneLine | None = Field(
        default=None,
        min_length=20,
        max_length=300,
        description="With backup external (required then): who backs the database up, how, how often, and "
        "for how long, e.g. 'pgBackRest on db01 by the DBA team, nightly full, 35 days'.",
    )

    @property
    def dumped_by_program(self) -> bool:
        """Whether the program's nightly job copies this database (when the stack makes backups at all)."""
        return self.kind is HubDatabaseKind.BLOCK or self.backup is HubDatabaseBackup.PG_DUMP


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
    home_capacity_gib: StrictInt = Field(
        default=10, ge=1, le=10240, description="Size of each user's home volume, GiB."
    )
    culling: CullingSettings = Field(default_factory=CullingSettings)
    user_placeholders: StrictInt = Field(
        default=0, ge=0, le=100, description="Placeholder pods that keep room for servers to start fast."
    )
    network_policy: StrictBool = Field(default=True, description="Limit user servers' network traffic (z2jh policy).")
    prepull_images: StrictBool = Field(default=True, description="Pull profile images onto every node ahead of time.")
    branding: BrandingSettings = Field(default_factory=BrandingSettings)
    session_hours: StrictInt = Field(
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


def check_hub(hub: HubSettings) -> list[SettingsProblem]:
    """The hub's own rules; its login's are `config.ldap.check_ldap`."""
    return [
        *_check_front_proxy(hub),
        *check_ldap(hub.ldap),
        *_check_profiles(hub),
        *_check_project_files(hub),
        *_check_database_backup(hub.database),
    ]


def _check_database_backup(database: HubDatabaseSettings) -> list[SettingsProblem]:
    """A PostgreSQL hub database is outside the cluster and outside the program's SQLite copy: the stack says
    how it is backed up, or it is refused (issue 21). Whether pg_dump has a bucket is `config.settings`'s check."""
    backup, external = stack_key("hub", "database", "backup"), stack_key("hub", "database", "externalBackup")
    if database.kind is HubDatabaseKind.BLOCK:
        return [
            SettingsProblem(
                key=key,
                problem="is used only with dsaas:hub.database.kind postgres; the block (SQLite) database is "
                "copied by the program's own nightly job whenever dsaas:backup is set.",
                fix="remove it.",
            )
            for key, value in ((backup, database.backup), (external, database.external_backup))
            if value is not None
        ]
    if database.backup is None:
        return [
            SettingsProblem(
                key=backup,
                problem="an external PostgreSQL hub database holds every user's servers, tokens and roles, and "
                "nothing in this stack says how it is backed up.",
                fix="set it to pg_dump (the program dumps it nightly into dsaas:backup's bucket, beside the other "
                "backups) or to external and describe the backup in dsaas:hub.database.externalBackup.",
            )
        ]
    if database.backup is HubDatabaseBackup.EXTERNAL and database.external_backup is None:
        return [
            SettingsProblem(
                key=external,
                problem="with backup external, the stack must say who backs the database up and how: the restore "
                "runbook (docs/restore.md) sends the operator there.",
                fix="describe it, e.g. externalBackup: 'pgBackRest on db01 by the DBA team, nightly full, 35 days'.",
            )
        ]
    if database.backup is HubDatabaseBackup.PG_DUMP and database.external_backup is not None:
        return [
            SettingsProblem(
                key=external,
                problem="describes an external backup, but dsaas:hub.database.backup is pg_dump.",
                fix="remove it, or set backup to external if the database's own operators back it up.",
            )
        ]
    return []


MAX_FRONT_PROXY_ADDRESSES = 256
"""At most a /24 may reach plain HTTP: the policy pack's `offload-source-ranges` default minPrefixLength."""


def _check_front_proxy(hub: HubSettings) -> list[SettingsProblem]:
    """Offloaded TLS leaves the proxy serving plain HTTP (passwords in clear): only the front proxy may reach it."""
    key = stack_key("hub", "frontProxyCidrs")
    if hub.tls is not HubTlsMode.OFFLOAD:
        if hub.front_proxy_cidrs is None:
            return []
        return [
            SettingsProblem(
                key=key,
                problem="is used only with dsaas:hub.tls offload; with tls secret the hub serves HTTPS itself "
                "and this list would restrict nothing.",
                fix="remove it, or set dsaas:hub.tls to offload if a front proxy terminates TLS.",
            )
        ]
    if not hub.front_proxy_cidrs:
        return [
            SettingsProblem(
                key=key,
                problem=f"with dsaas:hub.tls offload the hub serves plain HTTP on {hub.address}, so every "
                "password crosses the network in clear; without the front proxy's addresses anyone could "
                "connect there directly.",
                fix="list the addresses of the proxy that terminates TLS, e.g. frontProxyCidrs: [10.0.0.80/32], "
                "or set dsaas:hub.tls to secret.",
            )
        ]
    problems = [
        SettingsProblem(
            key=stack_key("hub", "frontProxyCidrs", i),
            problem=f"{cidr} would admit the whole network to the hub's plain HTTP.",
            fix="list only the front proxy's own addresses.",
        )
        for i, cidr in enumerate(hub.front_proxy_cidrs)
        if cidr.prefixlen == 0
    ]
    # Judged on the union, not entry by entry: [0.0.0.0/1, 128.0.0.0/1] is 0.0.0.0/0 in two halves.
    union = list(collapse_addresses(hub.front_proxy_cidrs))
    admitted = sum(network.num_addresses for network in union)
    if not problems and admitted > MAX_FRONT_PROXY_ADDRESSES:
        problems.append(
            SettingsProblem(
                key=key,
                problem=f"together admits {admitted} addresses ({', '.join(map(str, union))}) to the hub's plain "
                f"HTTP, where passwords cross in clear; a front proxy is a few machines, so more than "
                f"{MAX_FRONT_PROXY_ADDRESSES} addresses (a /24) is a network, not a proxy.",
                fix="list only the front proxy's own addresses (e.g. [10.0.0.80/32, 10.0.0.81/32]), or set "
                "dsaas:hub.tls to secret so the hub serves HTTPS itself.",
            )
        )
    return problems


def _check_profiles(hub: HubSettings) -> list[SettingsProblem]:
    problems = []
    builtin = len(hub.all_profiles) - len(hub.profiles)
    seen_slugs: dict[str, str] = {}
    seen_names: dict[str, str] = {}
    for i, profile in enumerate(hub.all_profiles):
        key = stack_key("hub", "profiles", i - builtin) if i >= builtin else f"built-in profile '{profile.slug}'"
        if profile.slug in seen_slugs:
            problems.append(
                SettingsProblem(
                    key=f"{key}.slug",
                    problem=f"slug '{profile.slug}' is already used by {seen_slugs[profile.slug]}.",
                    fix="give every profile its own slug (basic and datascience are built in).",
                )
            )
        seen_slugs.setdefault(profile.slug, key)
        if profile.display_name in seen_names:
            problems.append(
                SettingsProblem(
                    key=f"{key}.displayName",
                    problem=f"'{profile.display_name}' is already shown for {seen_names[profile.display_name]}.",
                    fix="give every profile its own name.",
                )
            )
        seen_names.setdefault(profile.display_name, key)
        image_problem = pins.image_problem(profile.image, pins.NOTEBOOK)
        if image_problem:
            problems.append(
                SettingsProblem(
                    key=f"{key}.image",
                    problem=f"{profile.image!r} {image_problem}, so what users get would drift.",
                    fix=f"pin {pins.EXAMPLES[pins.NOTEBOOK]}.",
                )
            )
        if profile.cpu_guarantee > profile.cpu_limit:
            problems.append(
                SettingsProblem(
                    key=f"{key}.cpuGuarantee",
                    problem=f"{profile.cpu_guarantee} CPUs guaranteed but only {profile.cpu_limit} allowed.",
                    fix="keep cpuGuarantee at or below cpuLimit.",
                )
            )
        if profile.memory_guarantee_gib > profile.memory_limit_gib:
            problems.append(
                SettingsProblem(
                    key=f"{key}.memoryGuaranteeGib",
                    problem=f"{profile.memory_guarantee_gib} GiB guaranteed but only "
                    f"{profile.memory_limit_gib} GiB allowed.",
                    fix="keep memoryGuaranteeGib at or below memoryLimitGib.",
                )
            )
    if sum(profile.default for profile in hub.profiles) > 0:
        problems.append(
            SettingsProblem(
                key=stack_key("hub", "profiles"),
                problem="an added profile is marked default, but Basic is the default.",
                fix="remove `default: true` from the added profile.",
            )
        )
    return problems


def _check_project_files(hub: HubSettings) -> list[SettingsProblem]:
    files = {
        stack_key("hub", "ldap", "caFile"): (hub.ldap.ca_file, "pem"),
        stack_key("hub", "branding", "logoFile"): (hub.branding.logo_file, "any"),
        stack_key("hub", "branding", "loginTemplateFile"): (hub.branding.login_template_file, "text"),
    }
    problems = []
    for key, (relative, content) in files.items():
        if relative is not None:
            problems.extend(check_project_file(key, relative, content))
    return problems


__all__ = [
    "BUILTIN_PROFILES",
    "BrandingSettings",
    "CullingSettings",
    "HubDatabaseKind",
    "HubDatabaseSettings",
    "HubSettings",
    "HubTlsMode",
    "ProfileSettings",
    "check_hub",
]
