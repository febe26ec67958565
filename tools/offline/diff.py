"""An offline `pulumi preview --diff`: compare two desired-state snapshots of a stack.

The earlier state is a snapshot file or the committed `snapshots/<stack>.yaml` at a git ref. Each
resource is created, deleted, updated in place or replaced; a change to a property that the provider
(or Kubernetes) cannot update in place means replacement, as `pulumi preview` would show it.

Resources are matched as the engine matches them, by URN (type chain of the parents, type, name): a
resource under a new parent is a new one unless one of its aliases is the old URN (`match_resources`).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.offline.mockgraph import PROJECT, ROOT
from tools.offline.snapshot import load_snapshot, snapshot_path

# Properties whose change forces replacement, per resource type (top-level input, or a dotted path
# prefix). Sources: the providers' schemas (forceNew / replaceOnChanges) and Kubernetes' immutable fields.
_KUBERNETES_IDENTITY = ("metadata.name", "metadata.namespace", "apiVersion", "kind")
REPLACE_ON_CHANGE: dict[str, tuple[str, ...]] = {
    # pulumi-vsphere: the template, datastore and disk controller shape are fixed at clone time.
    "vsphere:index/virtualMachine:VirtualMachine": ("clone.templateUuid", "datastoreId", "resourcePoolId", "guestId"),
    "tls:index/privateKey:PrivateKey": ("algorithm", "ecdsaCurve", "rsaBits"),
    "random:index/randomBytes:RandomBytes": ("length", "keepers"),
    "random:index/randomPassword:RandomPassword": ("length", "special", "upper", "lower", "numeric", "keepers"),
    "random:index/randomString:RandomString": ("length", "special", "upper", "lower", "numeric", "keepers"),
    # pulumi-command: a change of triggers or of the connection re-creates the command.
    "command:remote:Command": ("triggers", "connection"),
    # Kubernetes: a StorageClass is immutable apart from its metadata.
    "kubernetes:storage.k8s.io/v1:StorageClass": (
        *_KUBERNETES_IDENTITY,
        "provisioner",
        "parameters",
        "reclaimPolicy",
        "volumeBindingMode",
        "allowedTopologies",
        "mountOptions",
    ),
    "kubernetes:core/v1:Secret": (*_KUBERNETES_IDENTITY, "type"),
    "kubernetes:core/v1:Namespace": _KUBERNETES_IDENTITY,
    "kubernetes:trident.netapp.io/v1:TridentBackendConfig": _KUBERNETES_IDENTITY,
    "kubernetes:helm.sh/v3:Release": ("name", "namespace"),
}
# With CPU/memory hot-add off (our VMs), a new size means the node goes down: shown as a replacement,
# the way an operator must treat it (drain first), unless the snapshot says hot-add is on.
_VM_SIZING = {"numCpus": "cpuHotAddEnabled", "memory": "memoryHotAddEnabled"}


@dataclass
class Change:
    path: str
    old: Any
    new: Any


@dataclass
class ResourceDiff:
    name: str
    type: str
    action: str  # create, delete, update, replace
    changes: list[Change] = field(default_factory=list)
    replace_reasons: list[str] = field(default_factory=list)
    note: str = ""


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from _flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value and any(isinstance(item, (dict, list, str)) for item in value):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    old_flat, new_flat = dict(_flatten(old)), dict(_flatten(new))
    return [
        Change(path, old_flat.get(path), new_flat.get(path))
        for path in sorted(set(old_flat) | set(new_flat))
        if old_flat.get(path) != new_flat.get(path)
    ]


def _rendered_changes(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """A Helm release's rendered objects (tools/offline/charts.py): which Deployment, Service or policy changes. A side
    that could not be rendered (a chart not vendored yet) shows as its chart line only, not as every object gone."""
    if "objects" not in before or "objects" not in after:
        before, after = {"chart": before.get("chart")}, {"chart": after.get("chart")}
    return _changes({"rendered": before}, {"rendered": after})


def _under(path: str, prefixes: tuple[str, ...] | list[str]) -> bool:
    """Whether `path` (`a.b[0].c`) is one of `prefixes` or inside it; `[*]` in a prefix (Pulumi's property
    path wildcard, as in pulumi-command's own `replaceOnChanges: triggers[*]`) matches any index."""
    for prefix in prefixes:
        pattern = re.escape(prefix).replace(re.escape("[*]"), r"\[\d+\]")
        if re.fullmatch(pattern + r"([.\[].*)?", path):
            return True
    return False


def _forces_replace(resource_type: str, path: str, replace_on_changes: list[str]) -> bool:
    return _under(path, REPLACE_ON_CHANGE.get(resource_type, ())) or _under(path, replace_on_changes)


def snapshot_urns(snapshot: dict[str, Any]) -> dict[str, str]:
    """Each resource's URN by logical name, as the engine builds it: the parents' type chain, then its
    own type and name (pulumi's resource.NewURN); a resource with no parent entry sits under the stack."""
    resources: dict[str, Any] = snapshot.get("resources", {})
    stack = str(snapshot.get("stack", ""))
    qualified: dict[str, str] = {}

    def chain(name: str, seen: tuple[str, ...] = ()) -> str:
        if name not in qualified:
            entry = resources[name]
            parent = entry.get("parent")
            if parent in seen:
                raise DiffSourceError(f"the snapshot's parents form a loop through {name}")
            own = entry["type"]
            qualified[name] = f"{chain(parent, (*seen, name))}${own}" if parent in resources else own
        return qualified[name]

    return {name: f"urn:pulumi:{stack}::{PROJECT}::{chain(name)}::{name}" for name in resources}


@dataclass(frozen=True)
class Match:
    old: str
    """The earlier resource's logical name."""
    alias: str = ""
    """The alias URN it was matched through; empty when its URN did not change."""


def match_resources(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Match]:
    """New resource name → the old resource it is, by the engine's rule (pulumi's
    pkg/resource/deploy/step_generator.go, getOldResource): first its own URN, then each of its aliases;
    an old resource is claimed once. A claim the engine refuses (an alias naming a resource that is
    still declared, or two resources claiming the same one) is a `DiffSourceError`."""
    old_by_urn = {urn: name for name, urn in snapshot_urns(old).items()}
    new_urns = snapshot_urns(new)
    declared = set(new_urns.values())
    matches: dict[str, Match] = {}
    claimed: dict[str, str] = {}
    for name, urn in new_urns.items():
        if urn in old_by_urn:
            matches[name] = Match(old_by_urn[urn])
            claimed[urn] = name
    for name in sorted(new_urns):
        if name in matches:
            continue
        for alias in new["resources"][name].get("aliases", []):
            if alias not in old_by_urn:
                continue
            if alias in declared or alias in claimed:
                raise DiffSourceError(
                    f"{name} claims {alias} through an alias, but {claimed.get(alias) or 'a declared resource'} "
                    "already is that resource: the engine refuses this update. Fix: remove one of the claims."
                )
            matches[name] = Match(old_by_urn[alias], alias)
            claimed[alias] = name
            break
    return matches


def diff_snapshots(old: dict[str, Any], new: dict[str, Any]) -> list[ResourceDiff]:
    old_resources: dict[str, Any] = old.get("resources", {})
    new_resources: dict[str, Any] = new.get("resources", {})
    matches = match_resources(old, new)
    matched_old = {m.old for m in matches.values()}
    diffs: list[ResourceDiff] = [
        ResourceDiff(name, entry["type"], "delete") for name, entry in old_resources.items() if name not in matched_old
    ]
    for name in sorted(new_resources):
        after: dict[str, Any] = new_resources[name]
        match = matches.get(name)
        if match is None:
            diffs.append(ResourceDiff(name, after["type"], "create"))
            continue
        before: dict[str, Any] = old_resources[match.old]
        # The engine keeps the old value of an ignored input: such a change is no change at all.
        ignored = after.get("ignoreChanges", [])
        changes = [
            c for c in _changes(before.get("inputs", {}), after.get("inputs", {})) if not _under(c.path, ignored)
        ]
        changes += _rendered_changes(before.get("rendered", {}), after.get("rendered", {}))
        if before["type"] != after["type"]:
            diffs.append(ResourceDiff(name, after["type"], "replace", changes, ["type"]))
            continue
        if not changes:
            continue
        replace_on = after.get("replaceOnChanges", [])
        reasons = sorted({c.path for c in changes if _forces_replace(after["type"], c.path, replace_on)})
        note = ""
        if after["type"] == "vsphere:index/virtualMachine:VirtualMachine":
            inputs = after["inputs"]
            sizing = [c.path for c in changes if c.path in _VM_SIZING and not inputs.get(_VM_SIZING[c.path])]
            if sizing:
                reasons = sorted({*reasons, *sizing})
                note = "hot-add is off: the VM is powered off for its new size; drain the node first"
        diffs.append(ResourceDiff(name, after["type"], "replace" if reasons else "update", changes, reasons, note))
    # As before: by name, a delete before a create of the same name.
    return sorted(diffs, key=lambda d: (d.name, d.action != "delete"))


_SYMBOLS = {"create": "+", "delete": "-", "update": "~", "replace": "+-"}


def _show(value: Any, limit: int = 100) -> str:
    if value is None:
        return "(none)"
    text = str(value)
    if "\n" in text:
        return f"<{len(text.splitlines())} lines>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _elide_common_prefix(old: Any, new: Any, keep: int = 12) -> tuple[str, str]:
    """Long values that differ only at the end are shown from shortly before the difference."""
    if not (isinstance(old, str) and isinstance(new, str)):
        return _show(old), _show(new)
    common = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
    if common > 40 and max(len(old), len(new)) > 60:
        start = common - keep
        return _show("…" + old[start:]), _show("…" + new[start:])
    return _show(old), _show(new)


def _text_diff(old: Any, new: Any, indent: str) -> list[str]:
    """Multi-line values (scripts, cloud-init) as a unified diff of their lines."""
    import difflib

    lines = difflib.unified_diff(str(old or "").splitlines(), str(new or "").splitlines(), lineterm="", n=1)
    return [f"{indent}{line}" for line in list(lines)[2:]]


def render_diff(stack: str, diffs: list[ResourceDiff]) -> str:
    lines = [f"Previewing update ({stack}), offline against the earlier desired state:", ""]
    for item in diffs:
        label = "replace" if item.action == "replace" else item.action
        lines.append(f"  {_SYMBOLS[item.action]} {item.type}  {item.name}  {label}")
        if item.replace_reasons:
            lines.append(f"      [replace because of: {', '.join(item.replace_reasons)}]")
        if item.note:
            lines.append(f"      [{item.note}]")
        for change in item.changes:
            marker = "~" if change.old is not None and change.new is not None else ("+" if change.old is None else "-")
            if "\n" in str(change.old) or "\n" in str(change.new):
                lines.append(f"      {marker} {change.path}:")
                lines.extend(_text_diff(change.old, change.new, "          "))
            else:
                old_text, new_text = _elide_common_prefix(change.old, change.new)
                lines.append(f"      {marker} {change.path}: {old_text} => {new_text}")
    lines.append("")
    lines.append(summary(diffs))
    return "\n".join(lines)


def summary(diffs: list[ResourceDiff]) -> str:
    counts = {action: sum(d.action == action for d in diffs) for action in ("create", "update", "replace", "delete")}
    words = {"create": "to create", "update": "to update", "replace": "to replace", "delete": "to delete"}
    parts = [f"{n} {words[action]}" for action, n in counts.items() if n]
    return "Resources: " + (", ".join(parts) if parts else "no changes")


class DiffSourceError(ValueError):
    pass


def load_reference(stack: str, reference: str) -> dict[str, Any]:
    """A snapshot file, or `snapshots/<stack>.yaml` as committed at a git ref."""
    path = Path(reference)
    if path.is_file():
        return load_snapshot(path.read_text())
    relative = snapshot_path(stack).relative_to(ROOT).as_posix()
    result = subprocess.run(
        ["git", "show", f"{reference}:{relative}"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise DiffSourceError(
            f"'{reference}' is neither a snapshot file nor a git ref with {relative}: {result.stderr.strip()}"
        )
    return load_snapshot(result.stdout)
