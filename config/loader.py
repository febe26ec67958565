"""The one place that reads `pulumi.Config`: typed settings plus the secrets, validated together.

Called once by `__main__.py` before any resource exists, so a bad stack file never half-deploys.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.runtime.config as runtime_config
from pulumi.runtime.sync_await import _sync_await

from config.hub import HubDatabaseKind, HubTlsMode, pg_url_problems
from config.model import certificate_expiry_problems
from config.settings import NAMESPACE, SECRET_KEYS, Settings, SettingsError, SettingsProblem, parse_settings


class StackSettingsError(SettingsError, pulumi.RunError):
    """A `SettingsError` that `pulumi up` prints as its message alone: a `RunError` ends the program
    without the traceback and source listing the CLI shows for other exceptions."""


@dataclass(frozen=True)
class SecretSpec:
    """A secret the stack must carry, and the command that sets it."""

    key: str
    meaning: str
    example: str

    @property
    def command(self) -> str:
        """Sets it without the value on a command line or in shell history: Pulumi prompts for it,
        or reads a PEM file piped in."""
        pem = _PEM_FILE.fullmatch(self.example)
        return f"pulumi config set --secret {self.key}" + (f" < {pem.group(1)}" if pem else "")

    @property
    def fix(self) -> str:
        return f"run `{self.command}` ({'it reads the file' if '<' in self.command else 'it prompts for the value'})."


_PEM_FILE = re.compile(r'-- "\$\(cat ([^)]+)\)"')


@dataclass(frozen=True)
class RequiredSetting:
    key: str
    meaning: str
    example: str


# vCenter access uses the vsphere provider's own config keys, so `pulumi config` reads naturally.
VSPHERE_SERVER = RequiredSetting("vsphere:vsphereServer", "vCenter host name", "vcenter.example.org")
VSPHERE_USER = RequiredSetting("vsphere:user", "vCenter user", "svc-dsaas@vsphere.local")
VSPHERE_PASSWORD = SecretSpec("vsphere:password", "vCenter password", "'<password>'")
ONTAP_USERNAME = SecretSpec("dsaas:ontapUsername", "ONTAP user Trident signs in with", "vsadmin")
ONTAP_PASSWORD = SecretSpec("dsaas:ontapPassword", "ONTAP password", "'<password>'")
LDAP_SEARCH_PASSWORD = SecretSpec(
    "dsaas:ldapSearchPassword", "password of the LDAP search account (dsaas:hub.ldap.searchUser)", "'<password>'"
)
HUB_TLS_CERTIFICATE = SecretSpec(
    "dsaas:hubTlsCertificate", "hub's TLS certificate chain (PEM)", '-- "$(cat hub-fullchain.pem)"'
)
HUB_TLS_KEY = SecretSpec("dsaas:hubTlsKey", "hub's TLS private key (PEM)", '-- "$(cat hub-key.pem)"')
HUB_DATABASE_URL = SecretSpec(
    "dsaas:hubDatabaseUrl", "hub database URL", "'postgresql+psycopg2://hub:<password>@db.example.org:5432/jupyterhub'"
)
S3_ACCESS_KEY_ID = SecretSpec(
    "dsaas:s3AccessKeyId", "access key ID Velero writes with (dsaas:backup; its velero/ folder)", "'<key id>'"
)
S3_SECRET_ACCESS_KEY = SecretSpec("dsaas:s3SecretAccessKey", "secret access key Velero writes with", "'<secret>'")
# One put-only key per backup job (docs/backups.md, "One key per writer"), never Velero's.
S3_INVENTORY_ACCESS_KEY_ID = SecretSpec(
    "dsaas:s3InventoryAccessKeyId", "inventory job's put-only access key ID (its inventory/ folder)", "'<key id>'"
)
S3_INVENTORY_SECRET_ACCESS_KEY = SecretSpec(
    "dsaas:s3InventorySecretAccessKey", "inventory job's secret access key", "'<secret>'"
)
S3_HUB_DATABASE_ACCESS_KEY_ID = SecretSpec(
    "dsaas:s3HubDatabaseAccessKeyId",
    "hub database job's put-only access key ID (its hub-database/ folder)",
    "'<key id>'",
)
S3_HUB_DATABASE_SECRET_ACCESS_KEY = SecretSpec(
    "dsaas:s3HubDatabaseSecretAccessKey", "hub database job's secret access key", "'<secret>'"
)
REQUIRED_SECRETS: tuple[SecretSpec, ...] = (VSPHERE_PASSWORD, ONTAP_USERNAME, ONTAP_PASSWORD)
PLATFORM_SECRETS: tuple[SecretSpec, ...] = (
    ONTAP_USERNAME,
    ONTAP_PASSWORD,
    LDAP_SEARCH_PASSWORD,
    HUB_TLS_CERTIFICATE,
    HUB_TLS_KEY,
    HUB_DATABASE_URL,
    S3_ACCESS_KEY_ID,
    S3_SECRET_ACCESS_KEY,
    S3_INVENTORY_ACCESS_KEY_ID,
    S3_INVENTORY_SECRET_ACCESS_KEY,
    S3_HUB_DATABASE_ACCESS_KEY_ID,
    S3_HUB_DATABASE_SECRET_ACCESS_KEY,
)


def known_secrets() -> tuple[SecretSpec, ...]:
    """Every key that holds a secret, whether this stack's settings use it or not."""
    specs = {spec.key: spec for spec in (*REQUIRED_SECRETS, *PLATFORM_SECRETS)}
    for key in sorted(SECRET_KEYS - specs.keys()):
        specs[key] = SecretSpec(key, "secret", "'<value>'")
    return tuple(specs.values())


def required_secrets(settings: Settings | None) -> tuple[SecretSpec, ...]:
    """The secrets this stack needs: always vCenter and ONTAP, the rest as its settings ask."""
    specs = list(REQUIRED_SECRETS)
    if settings is None:
        return tuple(specs)
    if settings.hub.ldap.search_user:
        specs.append(LDAP_SEARCH_PASSWORD)
    if settings.hub.tls is HubTlsMode.SECRET:
        specs.extend((HUB_TLS_CERTIFICATE, HUB_TLS_KEY))
    if settings.hub.database.kind is HubDatabaseKind.POSTGRES:
        specs.append(HUB_DATABASE_URL)
    if settings.backups_enabled:
        specs.extend(
            (S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_INVENTORY_ACCESS_KEY_ID, S3_INVENTORY_SECRET_ACCESS_KEY)
        )
        if settings.hub.database.dumped_by_program:
            specs.extend((S3_HUB_DATABASE_ACCESS_KEY_ID, S3_HUB_DATABASE_SECRET_ACCESS_KEY))
    return tuple(specs)


@dataclass(frozen=True)
class VSphereAccess:
    server: str
    user: str
    password: pulumi.Output[str]


@dataclass(frozen=True)
class PlatformSecrets:
    """Secret `Output`s of the platform services; `None` where the settings don't need one."""

    ontap_username: pulumi.Output[str]
    ontap_password: pulumi.Output[str]
    ldap_search_password: pulumi.Output[str] | None
    hub_tls_certificate: pulumi.Output[str] | None
    hub_tls_key: pulumi.Output[str] | None
    hub_database_url: pulumi.Output[str] | None
    s3_access_key_id: pulumi.Output[str] | None = None
    s3_secret_access_key: pulumi.Output[str] | None = None
    s3_inventory_access_key_id: pulumi.Output[str] | None = None
    s3_inventory_secret_access_key: pulumi.Output[str] | None = None
    s3_hub_database_access_key_id: pulumi.Output[str] | None = None
    s3_hub_database_secret_access_key: pulumi.Output[str] | None = None


@dataclass(frozen=True)
class StackInputs:
    """Everything the program needs from the stack: plain settings and secret `Output`s."""

    settings: Settings
    vsphere: VSphereAccess
    secrets: PlatformSecrets


def _all_config() -> dict[str, Any]:
    merged = dict(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    return merged


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def read_raw_settings() -> dict[str, Any]:
    """The stack's `dsaas:*` values, decoded from Pulumi's JSON strings."""
    return {
        key: _decode(value)
        for key, value in _all_config().items()
        if key.split(":", 1)[0] == NAMESPACE and key not in SECRET_KEYS
    }


def check_secrets(settings: Settings | None = None) -> list[SettingsProblem]:
    """Required secrets exist, and every secret key present, used or not, is encrypted (`secure:`)."""
    problems = []
    config = _all_config()
    required = {spec.key for spec in required_secrets(settings)}
    for spec in known_secrets():
        if spec.key not in config:
            if spec.key in required:
                problems.append(SettingsProblem(key=spec.key, problem=f"the {spec.meaning} is not set.", fix=spec.fix))
        elif not runtime_config.is_config_secret(spec.key):
            # Unused or not, a clear-text value sits in the stack file and its history for all to read.
            unused = "" if spec.key in required else " (these settings do not use it, but anyone can read it there)"
            problems.append(
                SettingsProblem(
                    key=spec.key,
                    problem=f"the {spec.meaning} is stored in clear text in the stack file{unused}.",
                    fix=f"remove it, treat it as exposed (rotate it), and {spec.fix}",
                )
            )
    certificate = config.get(HUB_TLS_CERTIFICATE.key)
    offline_certificate = certificate == offline_secret_placeholder(HUB_TLS_CERTIFICATE.key)
    # With tls offload the hub serves no certificate of its own: one set anyway is only checked for clear text.
    if settings is not None and settings.hub.tls is HubTlsMode.SECRET and certificate and not offline_certificate:
        problems.extend(hub_certificate_problems(certificate, settings.hub.hostname))
    url = config.get(HUB_DATABASE_URL.key)
    offline = url == offline_secret_placeholder(HUB_DATABASE_URL.key)  # never decrypted: nothing to check
    if settings is not None and settings.hub.database.dumped_by_program and url and not offline:
        problems.extend(_hub_database_url_problems(url))
    for setting in (VSPHERE_SERVER, VSPHERE_USER):
        if not config.get(setting.key):
            problems.append(
                SettingsProblem(
                    key=setting.key,
                    problem=f"the {setting.meaning} is not set.",
                    fix=f"run `pulumi config set {setting.key} {setting.example}`.",
                )
            )
    return problems


def hub_certificate_problems(chain: str, hostname: str, now: datetime.datetime | None = None) -> list[SettingsProblem]:
    """The hub's certificate chain (dsaas:hubTlsCertificate) is PEM, names the hub's host name, and neither it nor
    an intermediate expires within EXPIRY_NOTICE_DAYS (problems never quote the chain)."""
    from cryptography import x509

    key = HUB_TLS_CERTIFICATE.key
    try:
        certificates = x509.load_pem_x509_certificates(chain.encode())
    except ValueError:
        return [
            SettingsProblem(
                key=key,
                problem="holds no readable PEM certificate (-----BEGIN CERTIFICATE----- blocks, the server's first).",
                fix=f"set it again: {HUB_TLS_CERTIFICATE.fix}",
            )
        ]
    problems = []
    try:
        names = certificates[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = [name.lower() for name in names.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        dns_names = []
    wildcard = "*." + hostname.split(".", 1)[1] if "." in hostname else None
    if hostname not in dns_names and wildcard not in dns_names:
        problems.append(
            SettingsProblem(
                key=key,
                problem=f"the server certificate names {', '.join(dns_names) or 'no DNS name'} but not the hub's "
                f"host name {hostname!r} (dsaas:hub.hostname): every browser would refuse it.",
                fix=f"ask for a certificate whose subjectAltName has DNS:{hostname}, then {HUB_TLS_CERTIFICATE.fix}",
            )
        )
    problems += certificate_expiry_problems(
        key,
        "the hub's certificate chain",
        certificates,
        f"renew it with whoever issues the hub's certificate (the chain's first block is the server's), then "
        f"{HUB_TLS_CERTIFICATE.fix.rstrip('.')}; `pulumi up` then rolls the proxy with it.",
        now,
    )
    return problems


def offline_secret_placeholder(key: str) -> str:
    """What the offline preview (tools/offline/mockgraph.py) gives the program for a `secure:` value, which it
    never decrypts; checks of a secret's content skip it (a real preview or `up` has the value)."""
    return f"placeholder-for-{key}"


def _hub_database_url_problems(url: str) -> list[SettingsProblem]:
    """The nightly pg_dump job connects with the URL's parts: a URL it cannot use is refused now, not at 2 a.m.
    (the problems never quote the URL: it holds the password)."""
    return [
        SettingsProblem(
            key=HUB_DATABASE_URL.key,
            problem=f"the {HUB_DATABASE_URL.meaning} {problem}; dsaas:hub.database.backup pg_dump connects with it.",
            fix=f"set it again: {HUB_DATABASE_URL.fix}",
        )
        for problem in pg_url_problems(url)
    ]


def load_stack_inputs() -> StackInputs:
    """Validate everything first; only then hand out secret `Output`s."""
    try:
        settings = parse_settings(read_raw_settings())
    except SettingsError as error:
        raise StackSettingsError(error.problems + check_secrets()) from None
    problems = check_secrets(settings)
    if problems:
        raise StackSettingsError(problems)
    vsphere_config = pulumi.Config("vsphere")
    dsaas_config = pulumi.Config(NAMESPACE)
    needed = {spec.key for spec in required_secrets(settings)}

    def optional_secret(spec: SecretSpec) -> pulumi.Output[str] | None:
        return dsaas_config.require_secret(spec.key.split(":", 1)[1]) if spec.key in needed else None

    return StackInputs(
        settings=settings,
        vsphere=VSphereAccess(
            server=vsphere_config.require("vsphereServer"),
            user=vsphere_config.require("user"),
            password=vsphere_config.require_secret("password"),
        ),
        secrets=PlatformSecrets(
            ontap_username=dsaas_config.require_secret("ontapUsername"),
            ontap_password=dsaas_config.require_secret("ontapPassword"),
            ldap_search_password=optional_secret(LDAP_SEARCH_PASSWORD),
            hub_tls_certificate=optional_secret(HUB_TLS_CERTIFICATE),
            hub_tls_key=optional_secret(HUB_TLS_KEY),
            hub_database_url=optional_secret(HUB_DATABASE_URL),
            s3_access_key_id=optional_secret(S3_ACCESS_KEY_ID),
            s3_secret_access_key=optional_secret(S3_SECRET_ACCESS_KEY),
            s3_inventory_access_key_id=optional_secret(S3_INVENTORY_ACCESS_KEY_ID),
            s3_inventory_secret_access_key=optional_secret(S3_INVENTORY_SECRET_ACCESS_KEY),
            s3_hub_database_access_key_id=optional_secret(S3_HUB_DATABASE_ACCESS_KEY_ID),
            s3_hub_database_secret_access_key=optional_secret(S3_HUB_DATABASE_SECRET_ACCESS_KEY),
        ),
    )


PREVIOUS_VERSION_OUTPUT = "kubernetesVersion"
ADMIN_CREDENTIAL_EXPIRES_OUTPUT = "adminCredentialExpires"
ADMIN_CREDENTIAL_GENERATION_OUTPUT = "adminCredentialGeneration"


@dataclass(frozen=True)
class PreviousOutputs:
    """What this stack recorded at its last update (all None on a first `up`)."""

    kubernetes_version: str | None
    admin_credential_expires: str | None
    """When the client certificate of the admin kubeconfig in the state ends (ISO 8601, UTC)."""
    admin_credential_generation: int | None


def load_previous_outputs() -> PreviousOutputs:
    """This stack's own outputs from its last update, read through a `StackReference` to its own fully-qualified
    name (the engine answers it from the stack's last checkpoint); before any resource is registered, so a
    refused version change stops the program there."""
    name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    reference = pulumi.StackReference(f"{pulumi.get_stack()}-previous", stack_name=name)

    def output(key: str) -> Any:
        details = _sync_await(reference.get_output_details(key))
        return details.value if details.value is not None else details.secret_value

    version, expires, generation = (
        output(key)
        for key in (PREVIOUS_VERSION_OUTPUT, ADMIN_CREDENTIAL_EXPIRES_OUTPUT, ADMIN_CREDENTIAL_GENERATION_OUTPUT)
    )
    return PreviousOutputs(
        kubernetes_version=None if version is None else str(version),
        admin_credential_expires=None if expires is None else str(expires),
        admin_credential_generation=None if generation is None else int(generation),
    )
