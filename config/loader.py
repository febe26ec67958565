"""The one place that reads `pulumi.Config`: typed settings plus the secrets, validated together.

Called once by `__main__.py` before any resource exists, so a bad stack file never half-deploys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.runtime.config as runtime_config

from config.settings import NAMESPACE, Settings, SettingsError, SettingsProblem, parse_settings


@dataclass(frozen=True)
class SecretSpec:
    """A secret the stack must carry, and the command that sets it."""

    key: str
    meaning: str
    example: str

    @property
    def fix(self) -> str:
        return f"run `pulumi config set --secret {self.key} {self.example}`."


@dataclass(frozen=True)
class RequiredSetting:
    key: str
    meaning: str
    example: str


# vCenter access uses the vsphere provider's own config keys, so `pulumi config` reads naturally.
VSPHERE_SERVER = RequiredSetting("vsphere:vsphereServer", "vCenter host name", "vcenter.example.org")
VSPHERE_USER = RequiredSetting("vsphere:user", "vCenter user", "svc-dsaas@vsphere.local")
VSPHERE_PASSWORD = SecretSpec("vsphere:password", "vCenter password", "'<password>'")
REQUIRED_SECRETS: tuple[SecretSpec, ...] = (VSPHERE_PASSWORD,)


@dataclass(frozen=True)
class VSphereAccess:
    server: str
    user: str
    password: pulumi.Output[str]


@dataclass(frozen=True)
class StackInputs:
    """Everything the program needs from the stack: plain settings and secret `Output`s."""

    settings: Settings
    vsphere: VSphereAccess


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
    return {key: _decode(value) for key, value in _all_config().items() if key.split(":", 1)[0] == NAMESPACE}


def check_secrets() -> list[SettingsProblem]:
    """Required secrets exist and are stored encrypted (`secure:`), never in clear text."""
    problems = []
    config = _all_config()
    for spec in REQUIRED_SECRETS:
        if spec.key not in config:
            problems.append(SettingsProblem(key=spec.key, problem=f"the {spec.meaning} is not set.", fix=spec.fix))
        elif not runtime_config.is_config_secret(spec.key):
            problems.append(
                SettingsProblem(
                    key=spec.key,
                    problem=f"the {spec.meaning} is stored in clear text in the stack file.",
                    fix=f"remove it and {spec.fix}",
                )
            )
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


def load_stack_inputs() -> StackInputs:
    """Validate everything first; only then hand out secret `Output`s."""
    problems = check_secrets()
    try:
        settings = parse_settings(read_raw_settings())
    except SettingsError as error:
        problems = error.problems + problems
        raise SettingsError(problems) from None
    if problems:
        raise SettingsError(problems)
    vsphere_config = pulumi.Config("vsphere")
    return StackInputs(
        settings=settings,
        vsphere=VSphereAccess(
            server=vsphere_config.require("vsphereServer"),
            user=vsphere_config.require("user"),
            password=vsphere_config.require_secret("password"),
        ),
    )
