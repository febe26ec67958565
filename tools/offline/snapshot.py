"""Desired-state snapshots: every resource a stack declares, as stable, reviewable YAML.

A snapshot is what `pulumi preview` would compare against, written without vCenter or a Pulumi
backend: type, logical name, parent (with the type and name, the URN), earlier URNs (aliases),
dependencies, provider and inputs of each resource. Encoded
payloads (guestinfo gzip+base64, `*_B64` script parameters) are decoded so a one-setting change shows
as a one-line change; secret values are replaced by `[secret]` wherever they appear, including
inside structured inputs the SDK marks secret as a whole (chart values). Each Helm release also carries
`rendered`: its vendored chart and, per object Helm's engine renders from it (tools/offline/charts.py), a digest and
the images it runs, so a chart bump or a values change shows which objects change.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path
from typing import Any

import yaml

from components import cloud_init, hub_render, kubeadm_render
from tools.offline import charts
from tools.offline.mockgraph import ROOT, SECRET_MARK, Graph, RecordedResource, is_secret, unwrap
from tools.offline.redaction import secret_lines

SNAPSHOT_DIR = ROOT / "snapshots"
_GUESTINFO_ENCODED = ("guestinfo.userdata", "guestinfo.metadata")
TEMPLATE_FILES = kubeadm_render.TEMPLATES


def snapshot_path(stack: str) -> Path:
    return SNAPSHOT_DIR / f"{stack}.yaml"


def refresh_command(stack: str) -> str:
    return f".venv/bin/python -m tools.preview {stack} --snapshot"


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, SECRET_MARK)
        # Then the lines of a private key inside a decoded document (cloud-init's ssh_keys), which YAML
        # re-wraps; only after every whole secret, as two keys (PEM, OpenSSH) can share a body line.
        for secret in secrets:
            for line in secret_lines(secret):
                value = value.replace(line, SECRET_MARK)
        return value
    if isinstance(value, dict):
        return {str(k): _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _decode_script(text: str) -> Any:
    """A rendered script as its parameters (base64 ones decoded) and template name."""
    parameters, body = kubeadm_render.parse_rendered_script(text)
    step = next((line.split(": ", 1)[1] for line in text.splitlines()[:3] if "# dsaas step: " in line), None)
    if step is None:
        return text
    decoded: dict[str, Any] = {}
    for key, value in sorted(parameters.items()):
        if key.endswith("_B64"):
            try:
                decoded[key.removesuffix("_B64")] = base64.b64decode(value, validate=True).decode()
                continue
            except (binascii.Error, UnicodeDecodeError):
                pass
        decoded[key] = value
    # The body is the template file as it is: its digest shows a changed script without repeating it.
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    return {"template": f"components/templates/{step}.sh", "templateSha256": digest, "parameters": decoded}


def _hub_extra_config(values: Any) -> Any:
    """Hub values with the shipped authenticator source as its file and digest, like node scripts."""
    extra = values.get("hub", {}).get("extraConfig") if isinstance(values, dict) else None
    if not isinstance(extra, dict) or extra.get(hub_render.LDAP_AUTHENTICATOR_EXTRA_CONFIG) is None:
        return values
    text = extra[hub_render.LDAP_AUTHENTICATOR_EXTRA_CONFIG]
    if text != hub_render.render_authenticator_config():
        return values  # not the shipped file: show it whole
    source = hub_render.LDAP_AUTHENTICATOR_SOURCE
    summary = {
        "template": source.relative_to(ROOT).as_posix(),
        "templateSha256": hashlib.sha256(source.read_bytes()).hexdigest()[:16],
        "authenticatorClass": hub_render.LDAP_AUTHENTICATOR_CLASS,
    }
    hub = {**values["hub"], "extraConfig": {**extra, hub_render.LDAP_AUTHENTICATOR_EXTRA_CONFIG: summary}}
    return {**values, "hub": hub}


def _readable(resource: RecordedResource, key: str, value: Any) -> Any:
    """Inputs in the form a reviewer reads: decoded payloads, scripts as their parameters."""
    if resource.type == "vsphere:index/virtualMachine:VirtualMachine" and key == "extraConfig":
        return {
            name: cloud_init.decode(text) if name in _GUESTINFO_ENCODED else text
            for name, text in value.items()
            if not name.endswith(".encoding")
        }
    if resource.type == "command:remote:Command" and key in ("stdin", "delete") and isinstance(value, str):
        body = value.split("\n", 1)[1] if value.startswith("sudo bash -s <<") else value
        return _decode_script(body)
    if resource.type == "command:local:Command" and key == "create" and isinstance(value, str):
        return _decode_script(value)
    if resource.type == "vsphere:index/virtualMachine:VirtualMachine" and key == "vapp" and isinstance(value, dict):
        properties = dict(value.get("properties") or {})
        if "user-data" in properties:
            properties["user-data"] = _readable_user_data(base64.b64decode(properties["user-data"]).decode())
        return {**value, "properties": properties}
    if resource.type == "kubernetes:helm.sh/v3:Release" and key == "values":
        return _hub_extra_config(value)
    return value


def _readable_user_data(text: str) -> Any:
    """A program-built template's cloud-config: each file it writes as its script parameters, or as the
    project file it is a copy of (name and digest), so a changed pin shows as one line."""
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        return text
    files = []
    for entry in document.get("write_files", []):
        content = str(entry.get("content", ""))
        decoded = _decode_script(content)
        if decoded is content:
            copies = [path for path in TEMPLATE_FILES.glob("*.sh") if path.read_text() == content]
            if copies:
                digest = hashlib.sha256(content.encode()).hexdigest()[:16]
                decoded = {"copyOf": copies[0].relative_to(ROOT).as_posix(), "sha256": digest}
        files.append({**entry, "content": decoded})
    return {**document, "write_files": files}


def resource_entry(resource: RecordedResource, names: dict[str, str], secrets: list[str]) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for key in sorted(resource.inputs):
        raw = resource.inputs[key]
        plain = unwrap(raw)
        if is_secret(raw) and not isinstance(plain, (dict, list)) and not (isinstance(plain, str) and "\n" in plain):
            inputs[key] = SECRET_MARK
            continue
        inputs[key] = _scrub(_readable(resource, key, plain), secrets)
    entry: dict[str, Any] = {"type": resource.type}
    if resource.parent in names:
        entry["parent"] = names[resource.parent]
    provider_urn = resource.provider.rsplit("::", 1)[0] if resource.provider else ""
    if provider_urn in names:
        entry["provider"] = names[provider_urn]
    depends = sorted({names[d] for d in resource.dependencies if d in names and d != provider_urn})
    if depends:
        entry["dependsOn"] = depends
    if resource.delete_before_replace:
        entry["deleteBeforeReplace"] = True
    if resource.additional_secret_outputs:
        entry["secretOutputs"] = sorted(resource.additional_secret_outputs)
    if resource.ignore_changes:
        entry["ignoreChanges"] = sorted(resource.ignore_changes)
    if resource.replace_on_changes:
        entry["replaceOnChanges"] = sorted(resource.replace_on_changes)
    if resource.aliases:
        entry["aliases"] = sorted(resource.aliases)
    entry["inputs"] = inputs
    if resource.type == charts.RELEASE_TYPE:
        entry["rendered"] = _rendered(resource, secrets)
    return entry


def _rendered(resource: RecordedResource, secrets: list[str]) -> dict[str, Any]:
    try:
        release = charts.render_release(resource)
    except charts.ChartError as error:
        return {"chart": f"not rendered: {error}"}
    return charts.summarize(release, scrub=lambda document: _scrub(document, secrets))


def build_snapshot(graph: Graph) -> dict[str, Any]:
    """The stack's desired state as plain data, keyed and sorted by logical name."""
    names = {r.urn: r.name for r in graph.resources}
    # Longest first, so a secret that contains another is replaced whole.
    secrets = sorted((s for s in graph.secret_values if len(s) >= 6), key=len, reverse=True)
    resources = {r.name: resource_entry(r, names, secrets) for r in sorted(graph.resources, key=lambda r: r.name)}
    outputs = {key: _scrub(_output_value(value), secrets) for key, value in sorted(graph.outputs.items())}
    return {"stack": graph.stack, "resources": resources, "outputs": outputs}


def _output_value(value: Any) -> Any:
    if hasattr(value, "apply"):
        from pulumi.runtime.sync_await import _sync_await

        return SECRET_MARK if _sync_await(value.is_secret()) else "(computed)"
    return unwrap(value)


class _SnapshotDumper(yaml.SafeDumper):
    """Block style for multi-line text (scripts, cloud-init), so diffs stay line by line."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        # Trailing spaces would force a quoted scalar; they carry no meaning in these files.
        text = "\n".join(line.rstrip() for line in value.split("\n"))
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_SnapshotDumper.add_representer(str, _represent_str)


def dump_snapshot(snapshot: dict[str, Any]) -> str:
    header = (
        "# Desired state of this stack, generated by `python -m tools.preview <stack> --snapshot`.\n"
        "# Do not edit: the tests fail when it no longer matches the program.\n"
    )
    return header + yaml.dump(snapshot, Dumper=_SnapshotDumper, sort_keys=True, width=110, allow_unicode=True)


def load_snapshot(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def write_snapshot(graph: Graph, path: Path | None = None) -> Path:
    target = path or snapshot_path(graph.stack)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dump_snapshot(build_snapshot(graph)))
    return target
