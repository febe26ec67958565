"""The restore planner: who owned which ONTAP volume, and under which claim name KubeSpawner will look for it.

Pure functions first (`join_inventory`, `claim_name`, `plan`, `render_plan`), then the two readers
(`tools.dr.sources`: the object store's inventory, or ONTAP's REST API) and the command (`tools.dr.cli`).

The claim name is computed by KubeSpawner 7's own `_expand_user_properties` on a real `KubeSpawner`,
configured from the chart values this project renders for the stack (`pvcNameTemplate`, `slug_scheme`),
exactly as z2jh's jupyterhub_config.py hands them over: never a re-implementation of the slug.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from kubespawner import KubeSpawner
from traitlets.config import Config

from components import hub_render
from config.settings import Settings
from config.storage import NasDriver

PLAN_FORMAT = "dsaas-restore-plan/1"
INVENTORY_FORMAT = "dsaas-inventory/1"
# KubeSpawner 7 puts the unescaped user name on every object it makes (`_build_common_annotations`);
# the label of the same name carries only a slug, which cannot be turned back into the name.
USERNAME_ANNOTATION = "hub.jupyter.org/username"
STORAGE_COMPONENT = "singleuser-storage"
# Trident's internalID of an economy volume: /svm/<svm>/flexvol/<flexvol>/qtree/<qtree>.
_QTREE_ID = re.compile(r"^/svm/(?P<svm>[^/]+)/flexvol/(?P<flexvol>[^/]+)/qtree/(?P<qtree>[^/]+)$")
_UNITS = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5}
_UNITS.update({"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5})
_QUANTITY = re.compile(r"^(?P<number>[0-9]+(\.[0-9]+)?)(?P<unit>[KMGTP]i|[kMGTP])?$")


class PlanError(ValueError):
    """The input cannot be planned from (names what to fix); the command exits 2."""


@dataclass(frozen=True)
class Qtree:
    flexvol: str
    name: str
    junction_path: str


@dataclass
class Home:
    """One user's home as the old cluster knew it."""

    user: str | None
    claim: str
    namespace: str = hub_render.HUB_NAMESPACE
    driver: NasDriver | None = None
    volume: str | None = None
    """The FlexVol (ontap-nas: the home itself; economy: the FlexVol holding the qtree)."""
    qtree: Qtree | None = None
    data_lif: str | None = None
    size_bytes: int | None = None
    storage_class: str | None = None
    backend_uuid: str | None = None
    backend_name: str | None = None
    persistent_volume: str | None = None
    warnings: list[str] = field(default_factory=list)


def parse_quantity(text: str) -> int:
    """A Kubernetes quantity ("10Gi", "10737418240") in bytes."""
    found = _QUANTITY.match(str(text).strip())
    if not found:
        raise ValueError(f"not a storage quantity: {text!r}")
    return int(float(found["number"]) * _UNITS[found["unit"] or ""])


def _items(inventory: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    listed = inventory.get(key)
    if listed is None:
        return []
    if not isinstance(listed, Mapping) or not isinstance(listed.get("items", []), list):
        raise PlanError(f"the inventory's {key} is not a Kubernetes List (an object with items)")
    return [dict(item) for item in listed.get("items") or [] if isinstance(item, Mapping)]


def _driver_of(backend: Mapping[str, Any] | None) -> NasDriver | None:
    """storageDriverName anywhere in a TridentBackend's config (it nests it under ontap_config)."""

    def find(value: Any) -> str | None:
        if isinstance(value, Mapping):
            if isinstance(value.get("storageDriverName"), str):
                return str(value["storageDriverName"])
            for inner in value.values():
                got = find(inner)
                if got:
                    return got
        return None

    name = find((backend or {}).get("config"))
    try:
        return NasDriver(name) if name else None
    except ValueError:
        return None


def check_inventory(inventory: Any) -> None:
    if not isinstance(inventory, Mapping):
        raise PlanError("the inventory is not a JSON object")
    if inventory.get("format") != INVENTORY_FORMAT:
        raise PlanError(
            f"the inventory's format is {inventory.get('format')!r}, not {INVENTORY_FORMAT!r}: "
            "is this an inventory written by the dsaas inventory CronJob?"
        )


def join_inventory(inventory: Mapping[str, Any]) -> list[Home]:
    """User → claim → PV → TridentVolume → backend, for every claim KubeSpawner made, sorted by user."""
    check_inventory(inventory)
    pvs = {pv["metadata"]["name"]: pv for pv in _items(inventory, "persistentVolumes")}
    volumes = {tv["metadata"]["name"]: tv for tv in _items(inventory, "tridentVolumes")}
    backends = {b.get("backendUUID"): b for b in _items(inventory, "tridentBackends")}
    homes: list[Home] = []
    for claim in _items(inventory, "persistentVolumeClaims"):
        meta = claim.get("metadata", {})
        user = (meta.get("annotations") or {}).get(USERNAME_ANNOTATION)
        labels = meta.get("labels") or {}
        if user is None and labels.get("component") != STORAGE_COMPONENT:
            continue  # not a home: some other claim in the hub namespace (the hub database's, say)
        home = Home(user=user, claim=meta["name"], namespace=meta.get("namespace", hub_render.HUB_NAMESPACE))
        if user is None:
            home.warnings.append(
                f"claim {home.claim} is a KubeSpawner home but carries no {USERNAME_ANNOTATION} annotation: "
                "its user is unknown, so it cannot be given back; find the owner and add them by hand"
            )
        spec = claim.get("spec") or {}
        home.storage_class = spec.get("storageClassName")
        pv_name = spec.get("volumeName")
        pv = pvs.get(pv_name) if pv_name else None
        if pv is None:
            home.warnings.append(
                f"claim {home.claim} is bound to no persistent volume the inventory lists "
                f"({pv_name or 'no spec.volumeName'}): no ONTAP volume is known for this home"
            )
            homes.append(home)
            continue
        home.persistent_volume = pv_name
        capacity = ((pv.get("spec") or {}).get("capacity") or {}).get("storage")
        tv = volumes.get(pv_name)
        if tv is None:
            home.warnings.append(
                f"persistent volume {pv_name} has no TridentVolume in the inventory: not a Trident volume, "
                "so there is nothing to import"
            )
            home.size_bytes = parse_quantity(capacity) if capacity else None
            homes.append(home)
            continue
        _fill_from_trident(home, tv, backends.get(tv.get("backendUUID")))
        if home.size_bytes is None and capacity:
            home.size_bytes = parse_quantity(capacity)
        homes.append(home)
    return sorted(homes, key=lambda h: (h.user is None, h.user or "", h.claim))


def _fill_from_trident(home: Home, tv: Mapping[str, Any], backend: Mapping[str, Any] | None) -> None:
    config = tv.get("config") or {}
    access = config.get("accessInformation") or {}
    home.backend_uuid = tv.get("backendUUID")
    home.backend_name = (backend or {}).get("backendName")
    home.storage_class = config.get("storageClass") or home.storage_class
    if config.get("size"):
        home.size_bytes = parse_quantity(config["size"])
    qtree = _QTREE_ID.match(str(config.get("internalID") or ""))
    home.driver = _driver_of(backend) or (NasDriver.ONTAP_NAS_ECONOMY if qtree else NasDriver.ONTAP_NAS)
    if home.driver is NasDriver.ONTAP_NAS_ECONOMY:
        if qtree is None:
            home.warnings.append(
                f"TridentVolume {tv['metadata']['name']} is on an economy backend but its internalID "
                f"({config.get('internalID')!r}) names no qtree: cannot tell which FlexVol holds it"
            )
            return
        home.volume = qtree["flexvol"]
        home.qtree = Qtree(
            flexvol=qtree["flexvol"],
            name=qtree["qtree"],
            junction_path=access.get("nfsPath") or f"/{qtree['flexvol']}/{qtree['qtree']}",
        )
        home.data_lif = access.get("nfsServerIp")
    else:
        home.volume = config.get("internalName")
        home.data_lif = access.get("nfsServerIp")
    if tv.get("orphaned"):
        home.warnings.append(
            f"Trident marked volume {home.volume} orphaned (its backend no longer found it on ONTAP): "
            "check that it still exists before the restore"
        )


@dataclass(frozen=True)
class NameScheme:
    """What KubeSpawner needs to name a claim: the chart-rendered template and slug scheme."""

    pvc_name_template: str
    slug_scheme: str
    namespace: str = hub_render.HUB_NAMESPACE


def name_scheme(settings: Settings) -> NameScheme:
    """The stack's pinned template and slug scheme, read from the chart values the stack renders.

    z2jh's jupyterhub_config.py sets `KubeSpawner.pvc_name_template` from singleuser.storage.dynamic
    and then applies hub.config, which wins.
    """
    values = hub_render.render_hub_values(settings, hub_render.HubSecrets("", ""))
    spawner_config = values["hub"]["config"].get("KubeSpawner", {})
    template = spawner_config.get("pvc_name_template", values["singleuser"]["storage"]["dynamic"]["pvcNameTemplate"])
    scheme = NameScheme(template, spawner_config.get("slug_scheme", "safe"))
    if "{userid}" in template:
        raise PlanError(
            f"the claim name template {template!r} uses {{userid}}, which the hub database assigns: after a "
            "lost database users get new ids and new claim names; pin a template without it (hub_render.py)"
        )
    return scheme


class _User:
    """The two attributes of a JupyterHub user that KubeSpawner's name expansion reads."""

    __slots__ = ("id", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.id = None  # no database: a template with {userid} is refused in name_scheme


@functools.lru_cache(maxsize=8)
def _spawner(scheme: NameScheme) -> KubeSpawner:
    """A real KubeSpawner, configured through its traits as the hub configures it; no cluster needed."""
    spawner = KubeSpawner.__new__(KubeSpawner)
    spawner._load_config(
        Config({"KubeSpawner": {"pvc_name_template": scheme.pvc_name_template, "slug_scheme": scheme.slug_scheme}})
    )
    spawner.namespace = scheme.namespace
    return spawner


def kubespawner_claim_name(user: str, scheme: NameScheme) -> str:
    """The claim name KubeSpawner 7 gives `user`'s default server, by its own code."""
    spawner = _spawner(scheme)
    spawner.user = _User(user)
    name: str = spawner._expand_user_properties(spawner.pvc_name_template)
    return name


def claim_name(user: str, settings: Settings) -> str:
    """The claim name KubeSpawner 7 computes now for `user` with the stack's pinned template and slug."""
    return kubespawner_claim_name(user, name_scheme(settings))


@dataclass(frozen=True)
class Source:
    kind: str  # s3 | ontap
    location: str
    written: str | None = None


def plan(
    homes: Iterable[Home],
    settings: Settings,
    source: Source,
    stack: str,
    warnings: Iterable[str] = (),
) -> dict[str, Any]:
    """The restore plan (format dsaas-restore-plan/1) for `homes`, as a plain dict."""
    scheme = name_scheme(settings)
    homes = list(homes)
    top = list(warnings)
    entries: list[dict[str, Any]] = []
    for home in homes:
        new = kubespawner_claim_name(home.user, scheme) if home.user is not None else home.claim
        notes = list(home.warnings)
        if home.user is not None and new != home.claim:
            notes.append(
                f"the old claim was {home.claim}; KubeSpawner now computes {new} (the claim name template or "
                "slug scheme changed since): the restore creates {new}".replace("{new}", new)
            )
        entries.append(
            {
                "user": home.user,
                "claim": new,
                "driver": home.driver.value if home.driver else None,
                "volume": home.volume if home.driver is not NasDriver.ONTAP_NAS_ECONOMY else None,
                "qtree": (
                    {"flexvol": home.qtree.flexvol, "name": home.qtree.name, "junctionPath": home.qtree.junction_path}
                    if home.qtree
                    else None
                ),
                "dataLif": home.data_lif if home.driver is NasDriver.ONTAP_NAS_ECONOMY else None,
                "sizeBytes": home.size_bytes,
                "warnings": notes,
            }
        )
    _mark_collisions(entries, top)
    users = Counter(e["user"] for e in entries if e["user"] is not None)
    for entry in entries:
        if entry["user"] is not None and users[entry["user"]] > 1:
            entry["warnings"].append(
                f"user {entry['user']} owns {users[entry['user']]} homes in the inventory; KubeSpawner mounts one: "
                "keep the one to restore and move the other's files into it"
            )
    return {
        "format": PLAN_FORMAT,
        "stack": stack,
        "source": {"kind": source.kind, "location": source.location, "written": source.written},
        "homes": entries,
        "warnings": top,
    }


def _mark_collisions(entries: list[dict[str, Any]], top: list[str]) -> None:
    by_claim: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_claim[entry["claim"]].append(entry)
    for claim, sharing in sorted(by_claim.items()):
        if len(sharing) < 2:
            continue
        owners = ", ".join(repr(e["user"]) for e in sharing)
        for entry in sharing:
            entry["warnings"].append(
                f"name collision: {owners} all get claim {claim}; only one home can be bound to it"
            )
        top.append(f"name collision on claim {claim} ({owners})")


def economy_homes(plan_: Mapping[str, Any]) -> int:
    """How many homes come back as static NFS volumes (qtrees: no Trident import); said, not warned."""
    return sum(1 for home in plan_["homes"] if home["qtree"] is not None)


def blocking(plan_: Mapping[str, Any]) -> int:
    """How many homes carry a warning the operator must read."""
    return sum(1 for home in plan_["homes"] if home["warnings"])


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    pass


def render_plan(plan_: Mapping[str, Any]) -> str:
    """The plan file's text: a short header, then YAML in contract order (review it, then commit it)."""
    header = (
        f"# Restore plan for stack {plan_['stack']}, from {plan_['source']['location']}.\n"
        "# Written by `python -m tools.restore plan`; review every warning, then set dsaas:restore.plan to this file.\n"
    )
    qtrees = economy_homes(plan_)
    if qtrees:
        header += (
            f"# {qtrees} home(s) are ontap-nas-economy qtrees. Trident cannot import qtrees: they come back as\n"
            "# static NFS volumes (dataLif + qtree.junctionPath), retained, outside Trident's management.\n"
        )
    body: str = yaml.dump(
        dict(plan_), Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000
    )
    return header + body


__all__ = [
    "Home",
    "NameScheme",
    "PlanError",
    "Qtree",
    "Source",
    "blocking",
    "check_inventory",
    "claim_name",
    "economy_homes",
    "join_inventory",
    "kubespawner_claim_name",
    "name_scheme",
    "parse_quantity",
    "plan",
    "render_plan",
]
