"""Generate `docs/settings.md` from the typed settings: key, type, default, unit, meaning, validation.

`python -m tools.settings_doc` rewrites the file; a test fails when the committed file is stale.
"""

from __future__ import annotations

import enum
import sys
import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from config import loader, settings
from config.hub import HubSettings
from config.model import DistinguishedName, HostName, OneLine, ProjectPath, SshPublicKey
from config.storage import StorageSettings
from tools.offline.mockgraph import ROOT

DOC_PATH = ROOT / "docs" / "settings.md"
REFRESH_COMMAND = ".venv/bin/python -m tools.settings_doc"
_UNITS = {"_mib": "MiB", "_gib": "GiB", "_minutes": "minutes", "_percent": "percent", "_port": "TCP port"}
_CONSTRAINTS = {
    "ge": "≥ {}",
    "gt": "> {}",
    "le": "≤ {}",
    "lt": "< {}",
    "min_length": "at least {} long/items",
    "max_length": "at most {} long",
    "pattern": "matches `{}`",
}


# The constrained string types of config/model.py, as the reference names them.
_STRING_TYPES: tuple[tuple[Any, str], ...] = (
    (OneLine, "string (one line)"),
    (HostName, "DNS name or IPv4 address"),
    (DistinguishedName, "LDAP DN"),
    (ProjectPath, "project file path"),
    (SshPublicKey, "SSH public key line"),
)


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return next((name for alias, name in _STRING_TYPES if alias == annotation), _type_name(annotation.__origin__))
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " \\| ".join(names)
    if origin is list:
        (item,) = typing.get_args(annotation)
        return f"list of {_type_name(item)}"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{member.value}`" for member in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    readable = {
        "IPv4Address": "IPv4 address",
        "IPv4Network": "IPv4 CIDR",
        "str": "string",
        "int": "integer",
        "float": "number",
        "bool": "boolean",
    }
    name: str = getattr(annotation, "__name__", str(annotation))
    return readable.get(name, name)


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if value is PydanticUndefined or value is None:
        return "—"
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`" if value != [] else "`[]`"


def _constraints(field: FieldInfo) -> list[str]:
    found = []
    for item in field.metadata:
        for name, template in _CONSTRAINTS.items():
            value = getattr(item, name, None)
            if value is not None:
                found.append(template.format(value))
    return found


def _unit(name: str) -> str:
    return next((unit for suffix, unit in _UNITS.items() if name.endswith(suffix)), "")


def _rows(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, str, str, str, str, str]]:
    for name, field in model.model_fields.items():
        key = f"{prefix}.{field.alias or name}" if prefix else f"{settings.NAMESPACE}:{field.alias or name}"
        nested = _nested_model(field.annotation)
        meaning = field.description or (nested.__doc__ or "").strip().split("\n")[0] if nested else field.description
        is_list = typing.get_origin(field.annotation) is list
        yield (
            key,
            _type_name(field.annotation),
            _default(field),
            _unit(name),
            meaning or "",
            "; ".join(_constraints(field)),
        )
        if nested is not None:
            yield from _rows(nested, f"{key}[]" if is_list else key)


def all_rows() -> list[tuple[str, str, str, str, str, str]]:
    rows = list(_rows(settings.ClusterSettings, ""))
    for section, model in settings._SECTIONS.items():
        key = f"{settings.NAMESPACE}:{section}"
        doc = (model.__doc__ or "").strip().split("\n")[0]
        optional = section in settings._OPTIONAL_SECTIONS
        rows.append((key, "object", "optional" if optional else "required", "", doc, ""))
        rows.extend(_rows(model, key))
    return rows


def render() -> str:
    rule_keys = {key for keys, _ in settings.CONSISTENCY_RULES for key in keys}
    lines = [
        "# Stack settings reference",
        "",
        f"Generated from the settings models in `config/` by `{REFRESH_COMMAND}`; a test fails when",
        "this file no longer matches the code. Keys go in `config/Pulumi.<stack>.yaml`; the examples are",
        "`config/Pulumi.dev.yaml` (a lab) and `config/Pulumi.prod.yaml` (HA, Active Directory), and",
        "`python -m tools.new_stack <example> <name>` starts a stack of your own from one.",
        "",
        "| key | type | default | unit | meaning | validation |",
        "|---|---|---|---|---|---|",
    ]
    for key, type_name, default, unit, meaning, constraints in all_rows():
        notes = constraints
        if key in rule_keys:
            notes = "; ".join(filter(None, [constraints, "see rules below"]))
        lines.append(f"| `{key}` | {type_name} | {default} | {unit} | {meaning} | {notes} |")
    lines += [
        "",
        "## The vSphere provider's settings",
        "",
        "Read by pulumi-vsphere itself, and checked here before anything is created.",
        "",
        "| key | meaning | example |",
        "|---|---|---|",
    ]
    for setting in (loader.VSPHERE_SERVER, loader.VSPHERE_USER):
        lines.append(f"| `{setting.key}` | {setting.meaning} | `{setting.example}` |")
    lines += [
        "",
        "## Secrets",
        "",
        "Set each with `pulumi config set --secret KEY`, which prompts for the value (or reads a file: `... <"
        " file`), so no secret is on a command line or in shell history. Refused when needed and missing,",
        "and in clear text even where unused.",
        "",
    ]
    lines += ["| key | meaning | needed when |", "|---|---|---|"]
    conditions = {
        "dsaas:ldapSearchPassword": "`dsaas:hub.ldap.searchUser` is set (always with `lookupDn`)",
        "dsaas:hubTlsCertificate": "`dsaas:hub.tls` is `secret`",
        "dsaas:hubTlsKey": "`dsaas:hub.tls` is `secret`",
        "dsaas:hubDatabaseUrl": "`dsaas:hub.database.kind` is `postgres`",
    }
    backups = "backups are on (`dsaas:backup.enabled`; by default with `dsaas:highAvailability`)"
    for spec in (
        loader.S3_ACCESS_KEY_ID,
        loader.S3_SECRET_ACCESS_KEY,
        loader.S3_INVENTORY_ACCESS_KEY_ID,
        loader.S3_INVENTORY_SECRET_ACCESS_KEY,
    ):
        conditions[spec.key] = backups
    for spec in (loader.S3_HUB_DATABASE_ACCESS_KEY_ID, loader.S3_HUB_DATABASE_SECRET_ACCESS_KEY):
        conditions[spec.key] = f"{backups} and `dsaas:hub.database.kind` is `block`"
    for spec in dict.fromkeys((*loader.REQUIRED_SECRETS, *loader.PLATFORM_SECRETS)):
        lines.append(f"| `{spec.key}` | {spec.meaning} | {conditions.get(spec.key, 'always')} |")
    lines += [
        "",
        "## Rules across settings",
        "",
        "Checked together before any resource is created; every problem names its key and the fix.",
        "",
    ]
    for keys, rule in settings.CONSISTENCY_RULES:
        lines.append(f"- {', '.join(f'`{k}`' for k in keys)}: {rule}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOC_PATH.write_text(render())
    print(f"wrote {DOC_PATH.relative_to(ROOT)}")
    return 0


__all__ = ["DOC_PATH", "REFRESH_COMMAND", "HubSettings", "StorageSettings", "render"]

if __name__ == "__main__":
    sys.exit(main())
