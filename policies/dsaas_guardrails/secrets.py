"""Passwords, private keys, tokens and kubeconfigs reach resources only as Pulumi secrets.

Secretness comes from the engine's secret markers, kept visible by `secrecy.install()`. A value is
secret-bearing when its property is known to carry one (provider credentials, SSH keys, Secret
data, scripts whose parameters hold join tokens) or when its key says so (password, token, …). S3
credentials count too: an `AWS_SECRET_ACCESS_KEY`/`AWS_ACCESS_KEY_ID` environment entry of a job, an
`aws_secret_access_key = …` credentials file (what Velero's chart takes in `credentials.secretContents.cloud`).
The vSphere provider must also check vCenter's certificate, or its password goes to whoever answers.
"""

from __future__ import annotations

import base64
import re

import yaml
from pulumi_policy import EnforcementLevel, PolicyResource, ReportViolation, StackValidationArgs, StackValidationPolicy

from .common import (
    COMMAND,
    K8S_SECRET,
    decoded_documents,
    header_parameters,
    label,
    of_type,
    path,
    script_parameters,
    step_of,
    walk,
)
from .secrecy import is_secret

SENSITIVE_KEY = re.compile(
    r"(password|passwd|private_?key|secret_?token|cookie_?secret|kubeconfig|token|certificate_?key|api_?key"
    r"|secret_?access_?key|access_?key_?id)$",
    re.IGNORECASE,
)
# Environment variables that hold S3 credentials (the AWS SDKs' names) and a credentials file's secret line.
SENSITIVE_ENV = re.compile(r"^AWS_(SECRET_ACCESS_KEY|ACCESS_KEY_ID|SESSION_TOKEN)$")
CREDENTIALS_FILE = re.compile(r"aws_secret_access_key\s*=", re.IGNORECASE)
SENSITIVE_PARAMETER = re.compile(r"(^|_)(TOKEN|PASSWORD|SECRET)$|CERTIFICATE_KEY$")
# Properties that carry a secret whatever their key is called.
KNOWN: dict[str, tuple[tuple[str, ...], ...]] = {
    "pulumi:providers:vsphere": (("password",),),
    "pulumi:providers:kubernetes": (("kubeconfig",),),
    COMMAND: (("connection", "privateKey"), ("connection", "password")),
}
# Steps whose standard output is a credential (the admin kubeconfig, a node's join credentials).
SECRET_STDOUT_STEPS = {
    "read-kubeconfig": "prints the admin kubeconfig",
    "join-credentials": "prints a bootstrap token and certificate key",
}
FIX = (
    "Fix: pass it as a secret (pulumi config set --secret for stack values; pulumi.Output.secret or "
    "additional_secret_outputs in the program), never as plain text."
)


def _leaks(resource: PolicyResource) -> list[str]:
    leaks: list[str] = []
    for trail in KNOWN.get(resource.resource_type, ()):
        value = path(resource.props, *trail)
        if isinstance(value, str) and value and not is_secret(value):
            leaks.append(".".join(trail))
    if resource.resource_type == K8S_SECRET:
        for field in ("stringData", "data"):
            leaks.extend(
                ".".join((field, *trail))
                for trail, value in walk(path(resource.props, field))
                if isinstance(value, str) and value and not is_secret(value)
            )
    if resource.resource_type == COMMAND:
        parameters = script_parameters(resource)
        sensitive = sorted(k for k in parameters if SENSITIVE_PARAMETER.search(k) or _carries_secret(parameters, k))
        if sensitive and not is_secret(path(resource.props, "stdin")):
            leaks.append(f"stdin (script parameters {', '.join(sensitive)})")
        printed = SECRET_STDOUT_STEPS.get(step_of(resource) or "")
        if printed and "stdout" not in (resource.opts.additional_secret_outputs or []):
            leaks.append(f"stdout ({printed}; add it to additional_secret_outputs)")
    for trail, value in walk(resource.props):
        if not isinstance(value, str) or not value or is_secret(value):
            continue
        leak = ""
        if trail and (SENSITIVE_KEY.search(trail[-1]) or SENSITIVE_ENV.match(trail[-1])):  # env maps too
            leak = ".".join(trail)
        elif trail[-1:] == ("value",) and SENSITIVE_ENV.match(str(_sibling(resource.props, trail, "name"))):
            leak = f"{'.'.join(trail[:-1])} (env {_sibling(resource.props, trail, 'name')})"
        elif CREDENTIALS_FILE.search(value):
            leak = f"{'.'.join(trail)} (an S3 credentials file)"
        if leak and leak not in leaks:
            leaks.append(leak)
    return leaks


def _sibling(props: object, trail: tuple[str, ...], key: str) -> object:
    """The value beside a leaf: `name` of an env entry `{name, value}`."""
    return path(props, *[int(t) if t.isdigit() else t for t in trail[:-1]], key)


def _carries_secret(parameters: dict[str, str], key: str) -> bool:
    """A file sent base64-encoded (`*_B64`) that holds a token, key or password in any field."""
    if not key.endswith("_B64"):
        return False
    try:
        text = base64.b64decode(parameters[key]).decode()
    except (ValueError, UnicodeDecodeError):
        return True
    inner = header_parameters(text)
    if inner:  # a rendered script installed on the node (the certificate renewal): its own parameters decide
        return any(SENSITIVE_PARAMETER.search(k) or _carries_secret(inner, k) for k in inner)
    try:
        documents = decoded_documents(parameters, key)
    except (ValueError, yaml.YAMLError):
        return True  # not readable here: only a secret may carry it
    return any(
        trail and SENSITIVE_KEY.search(trail[-1]) and isinstance(value, str) and value
        for document in documents
        for trail, value in walk(document)
    )


def secrets_are_secret(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for resource in args.resources:
        leaks = _leaks(resource)
        if leaks:
            report_violation(
                f"{label(resource)} receives {', '.join(leaks)} as plain text: it would be stored "
                f"unencrypted in the state and shown by pulumi preview. {FIX}",
                resource.urn,
            )


VSPHERE_PROVIDER = "pulumi:providers:vsphere"


def vcenter_certificate_verified(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """The provider signs in to vCenter with its password: only after checking vCenter's certificate."""
    for provider in of_type(args, VSPHERE_PROVIDER):
        # Provider inputs reach the engine JSON-encoded ("true"); accept a plain boolean too.
        if str(path(provider.props, "allowUnverifiedSsl")).lower() != "true":
            continue
        server = path(provider.props, "vsphereServer") or "vCenter"
        report_violation(
            f"{label(provider)}: allowUnverifiedSsl is true, so the provider accepts any certificate from "
            f"{server} and sends it the vCenter password: a man in the middle gets the password and "
            "the whole vSphere inventory. Fix: set dsaas:vsphere.allowUnverifiedSsl to false and give vCenter "
            "a certificate the deploying machine trusts (its CA in the system store). A lab stack may accept "
            "this only by setting this rule to advisory in the pack's config (--policy-pack-config, "
            '{"vcenter-certificate-verified": "advisory"}).',
            provider.urn,
        )


POLICIES = [
    StackValidationPolicy(
        name="secrets-are-secret",
        description="Passwords, private keys, tokens and kubeconfigs reach resources only as secrets.",
        validate=secrets_are_secret,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    StackValidationPolicy(
        name="vcenter-certificate-verified",
        description="The vSphere provider verifies vCenter's certificate before sending its password.",
        validate=vcenter_certificate_verified,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
]
