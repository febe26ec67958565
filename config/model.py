"""What every settings layer builds on: the one base class of every settings model (frozen, unknown keys
refused, camelCase stack keys); the string types settings use (every string a setting holds ends up in a
file on a node: cloud-init, netplan, sshd, kubeadm, the hub's config, where a newline starts a new
directive); and what every check speaks in: a setting's stack key, a `SettingsProblem`, a project file."""

from __future__ import annotations

import datetime
import json
import re
import unicodedata
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel

from config.dn import dn_syntax_problem

NAMESPACE = "dsaas"
CLUSTER_SECTION = "cluster"


class SettingsModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


def _one_line(value: str) -> str:
    # Cc: control characters (newline, tab, NUL, ESC); Zl/Zp: Unicode line and paragraph separators.
    if any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in value):
        raise ValueError("must be one line of printable text (no newline, tab or other control character)")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _distinguished_name(value: str) -> str:
    if "=" not in value:
        raise ValueError("must be an LDAP DN like cn=users,ou=groups,dc=example,dc=org")
    # A DN template's {username} stands for an escaped value (the authenticator escapes it).
    problem = dn_syntax_problem(value.replace("{username}", "x"))
    if problem is not None:
        raise ValueError(
            f"{value!r} is not an RFC 4514 DN: it {problem}; a DN is attribute=value pairs separated "
            'by commas, e.g. cn=hub-users,ou=groups,dc=example,dc=org, escaping , + " < > ; \\ in values'
        )
    return value


def _project_path(value: str) -> str:
    if any(len(part.encode()) > 255 for part in value.split("/")):
        raise ValueError("has a path component longer than 255 bytes, which no file system allows")
    return value


_HOST_NAME = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*", re.ASCII
)
_SSH_PUBLIC_KEY = re.compile(
    r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)"
    r" [A-Za-z0-9+/]+={0,3}( .*)?",
    re.ASCII | re.DOTALL,
)


def _host_name(value: str) -> str:
    if len(value) > 253 or not _HOST_NAME.fullmatch(value):
        raise ValueError("must be a DNS name like ldap.example.org or an IPv4 address")
    return value


def _ssh_public_key(value: str) -> str:
    if len(value) > 16384 or not _SSH_PUBLIC_KEY.fullmatch(value):
        raise ValueError("must be one OpenSSH public key line: type (e.g. ssh-ed25519), base64 key, optional comment")
    return value


OneLine = Annotated[str, AfterValidator(_one_line)]
"""Any one line of printable text (names, descriptions)."""
DistinguishedName = Annotated[
    str, AfterValidator(_one_line), AfterValidator(_not_blank), AfterValidator(_distinguished_name)
]
"""An LDAP DN (or DN template): one line, not empty, with at least one attribute=value."""
HostName = Annotated[str, AfterValidator(_one_line), AfterValidator(_host_name)]
"""A DNS name or an IPv4 address in dotted form (ASCII letters, digits, hyphens, dots)."""
ProjectPath = Annotated[
    str, StringConstraints(max_length=1024), AfterValidator(_one_line), AfterValidator(_project_path)
]
"""A file inside the project, named relative to its root."""
SshPublicKey = Annotated[str, AfterValidator(_one_line), AfterValidator(_ssh_public_key)]
"""One OpenSSH public key line: key type, base64 key, optional comment."""


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)


def stack_key(*parts: str | int) -> str:
    """The stack key of a setting, e.g. `dsaas:nodes.controlPlane.count` or `dsaas:podCidr`.

    A key the stack file invented with odd characters is quoted (`dsaas:hub["a b"]`), so a message stays one line.
    """
    section, *rest = parts
    if section == CLUSTER_SECTION and rest:
        # Cluster-wide scalars are top-level keys, so Pulumi.yaml can declare their types.
        section, *rest = rest
    path = f"{NAMESPACE}:{section}"
    for part in rest:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if _PLAIN_KEY.fullmatch(str(part)) else f"[{json.dumps(str(part))}]"
    return path


class SettingsProblem(BaseModel):
    """One bad stack setting: where it is, what is wrong, how to fix it."""

    model_config = ConfigDict(frozen=True)

    key: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.key}: {self.problem} Fix: {self.fix}"


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def project_file(relative: str) -> Path:
    """A file named in the stack settings (CA bundle, logo, login template), relative to the project."""
    return PROJECT_ROOT / relative


# A CA bundle, a logo or a login page: the largest real one is a few hundred KiB, and each lands in a
# ConfigMap or Secret (1 MiB at most in etcd).
MAX_PROJECT_FILE_BYTES = 1024 * 1024


def check_project_file(
    key: str, relative: str, content: str = "any", max_bytes: int = MAX_PROJECT_FILE_BYTES
) -> list[SettingsProblem]:
    """A file setting names a regular file inside the project (after symlinks: never /proc/self/environ or a
    home directory), of bounded size; `content` "pem" (certificates, parsed with `cryptography`) or "text"
    (UTF-8) is checked too. Every problem names `key` and the fix."""
    fix = "commit the file inside the project and name it relative to the project root (e.g. config/ca.pem)."
    if Path(relative).is_absolute() or ".." in Path(relative).parts:
        return [
            SettingsProblem(
                key=key,
                problem=f"{relative!r} must be a path inside the project, so every operator deploys the same file.",
                fix=fix,
            )
        ]
    path = project_file(relative)
    try:
        resolved = path.resolve(strict=True)
        if not resolved.is_relative_to(PROJECT_ROOT):
            return [SettingsProblem(key=key, problem=f"{relative!r} is a link to a file outside the project.", fix=fix)]
        if not resolved.is_file():
            return [SettingsProblem(key=key, problem=f"{relative!r} is not a regular file.", fix=fix)]
        if resolved.stat().st_size > max_bytes:
            return [
                SettingsProblem(
                    key=key,
                    problem=f"{relative!r} is larger than {max_bytes // 1024} KiB.",
                    fix="name the real file (a CA bundle, logo, template or plan is far smaller).",
                )
            ]
        data = resolved.read_bytes()
    except FileNotFoundError:
        return [SettingsProblem(key=key, problem=f"{path} does not exist.", fix=fix)]
    except (OSError, ValueError, RuntimeError) as error:  # a name too long, a symlink loop
        reason = getattr(error, "strerror", None) or type(error).__name__
        return [SettingsProblem(key=key, problem=f"{relative!r} cannot be read: {reason}.", fix=fix)]
    if content in ("pem", "text"):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return [SettingsProblem(key=key, problem=f"{relative!r} is not UTF-8 text.", fix=fix)]
        if content == "pem":
            return _check_pem(key, relative, text)
    return []


EXPIRY_NOTICE_DAYS = 30
"""A certificate the stack names that expires within this many days fails the preview (issue 26): a month is
time to get a renewed CA or server certificate from whoever issues it, not an outage that starts tonight."""


def certificate_expiry_problems(
    key: str, where: str, certificates: list[Any], fix: str, now: datetime.datetime | None = None
) -> list[SettingsProblem]:
    """One problem per certificate of `certificates` (cryptography `x509.Certificate`s) that has expired or expires
    within EXPIRY_NOTICE_DAYS; `fix` says where a renewed one comes from."""
    now = now or datetime.datetime.now(datetime.UTC)
    problems = []
    for certificate in certificates:
        ends = certificate.not_valid_after_utc
        days = (ends - now).total_seconds() / 86400
        if days >= EXPIRY_NOTICE_DAYS:
            continue
        subject = certificate.subject.rfc4514_string() or "(no subject)"
        when = ends.strftime("%Y-%m-%d %H:%M UTC")
        state = f"expired on {when}" if days < 0 else f"expires on {when}, in {int(days)} day(s)"
        problems.append(SettingsProblem(key=key, problem=f"{where}: the certificate {subject!r} {state}.", fix=fix))
    return problems


def _check_pem(key: str, relative: str, text: str) -> list[SettingsProblem]:
    from cryptography import x509

    fix = "name a PEM file of CA certificates (-----BEGIN CERTIFICATE----- blocks), e.g. config/ca.pem."
    try:
        certificates = x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        return [SettingsProblem(key=key, problem=f"{relative!r} holds no readable PEM certificate.", fix=fix)]
    if "PRIVATE KEY" in text:
        # A key committed to the project is exposed; a CA bundle never needs one.
        return [
            SettingsProblem(
                key=key,
                problem=f"{relative!r} holds a private key next to the certificates.",
                fix="remove the key from the file (and rotate it): a CA bundle holds certificates only.",
            )
        ]
    return certificate_expiry_problems(
        key,
        repr(relative),
        certificates,
        "get the renewed CA certificate from whoever runs that service's CA and commit it in place of this one "
        "(once the service's own certificate comes from the renewed CA); after it expires, every TLS connection "
        "the stack makes to that service fails.",
    )
