"""Keep the engine's secret markers visible to validators.

The engine sends every property to an analyzer with secrets still marked (`MarshalProperties` with
`KeepSecrets: true`), but pulumi-policy 1.21.0 unwraps them before a validator runs, so no validator
could tell a password sent as a secret from one sent in clear. `install()` replaces the pack's
deserializer with one that returns every string under a secret marker as a `SecretStr` (a `str`, so
every other rule reads it as usual). It is checked against the pinned pulumi-policy version and
exercised end to end over the real protocol by the tests.
"""

from __future__ import annotations

from typing import Any

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
PINNED_PULUMI_POLICY = "1.21.0"


class SecretStr(str):
    """A string the engine sent as (part of) a Pulumi secret."""

    __slots__ = ()


def is_secret(value: Any) -> bool:
    return isinstance(value, SecretStr)


def mark_secret(value: Any) -> Any:
    """Every string inside `value` becomes a `SecretStr`."""
    if isinstance(value, str):
        return SecretStr(value)
    if isinstance(value, dict):
        return {key: mark_secret(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mark_secret(item) for item in value]
    return value


def deserialize_property(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return mark_secret(deserialize_property(value["value"]))
        if SIG_KEY in value:  # assets and archives: the library's own handling
            from pulumi_policy import deserialize

            return deserialize._deserialize_property(value)
        return {key: deserialize_property(item) for key, item in value.items()}
    if isinstance(value, list):
        return [deserialize_property(item) for item in value]
    return value


def deserialize_properties(props: dict[str, Any], proxy_secrets: bool = False) -> dict[str, Any]:
    """Drop-in for `pulumi_policy.deserialize.deserialize_properties` that keeps secretness."""
    return {key: deserialize_property(item) for key, item in props.items()}


def install() -> None:
    from pulumi_policy import policy, version

    if version.VERSION != PINNED_PULUMI_POLICY:
        raise RuntimeError(
            f"dsaas_guardrails.secrecy is written for pulumi-policy {PINNED_PULUMI_POLICY}, found "
            f"{version.VERSION}: re-check how it deserializes properties, then update the pin."
        )
    policy.deserialize_properties = deserialize_properties  # type: ignore[attr-defined]
