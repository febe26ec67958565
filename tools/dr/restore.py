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
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import yaml
from kubespawner import KubeSpawner
from pydantic import TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel
from traitlets.config import Config

from components import hub_render
from components.restore_render import PlannedHome, RestorePlan, RestorePlanError, check_plan
from config.restore_plan import MAX_SIZE_BYTES, UserName, shown
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
_USER_NAME: TypeAdapter[str] = TypeAdapter(UserName)
# How many owners a collision warning names: one user with 10,000 claims must not give a quadratic plan.
_OWNERS_SHOWN = 5


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


def parse_quantity(text: Any) -> int:
    """A Kubernetes quantity ("10Gi", "10737418240") in bytes, at most `MAX_SIZE_BYTES`; `ValueError` otherwise.

    Exact arithmetic (no float: 400 nines would overflow it), bounded input (no 10,000-digit conversion)."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise ValueError(f"not a storage quantity: a {type(text).__name__}")
    found = _QUANTITY.match(str(text).strip()) if len(str(text)) <= 40 else None
    if not found:
        raise ValueError(f"not a storage quantity: {shown(text)}")
    size = int(Decimal(found["number"]) * _UNITS[found["unit"] or ""])
    if not 0 < size <= MAX_SIZE_BYTES:
        raise ValueError(f"{shown(text)} is not a size a home can have (1 byte to 1 PiB)")
    return size


_DAMAGED = (
    "the inventory is damaged or was not written by the dsaas inventory CronJob; plan from another one "
    "(--inventory <YYYYMMDDTHHMMSSZ>) or from ONTAP (--from ontap)"
)


def _at(item: Any, where: str, *keys: str, required: bool = False) -> Any:
    """`item[keys[0]][keys[1]]...` of a Kubernetes object, or `PlanError` naming the path when a level on the
    way is not an object (a KeyError, TypeError or AttributeError otherwise)."""
    value = item
    for key in keys:
        if value is None:
            break
        if not isinstance(value, Mapping):
            raise PlanError(f"{where} is a {type(value).__name__}, not an object: {_DAMAGED}")
        value = value.get(key)
        where = f"{where}.{key}"
    if value is None and required:
        raise PlanError(f"{where} is missing: {_DAMAGED}")
    return value


def _text(item: Any, where: str, *keys: str, required: bool = False) -> str | None:
    """A string field (a name, a UID): `PlanError` for a number, a list or an object in its place."""
    value = _at(item, where, *keys, required=required)
    if value is not None and not isinstance(value, str):
        raise PlanError(f"{where}.{'.'.join(keys)} is a {type(value).__name__}, not text: {_DAMAGED}")
    if value is not None and len(value) > 1024:
        raise PlanError(f"{where}.{'.'.join(keys)} is longer than any Kubernetes name: {_DAMAGED}")
    return value


def _items(inventory: Mapping[str, Any], key: str) -> list[tuple[str, dict[str, Any]]]:
    """The items of one List, each with where it is (`persistentVolumes.items[3]`) for messages."""
    listed = inventory.get(key)
    if listed is None:
        return []
    if not isinstance(listed, Mapping) or not isinstance(listed.get("items", []), (list, type(None))):
        raise PlanError(f"the inventory's {key} is not a Kubernetes List (an object with items)")
    found = []
    for index, item in enumerate(listed.get("items") or []):
        where = f"{key}.items[{index}]"
        if not isinstance(item, Mapping):
            raise PlanError(f"{where} is a {type(item).__name__}, not a Kubernetes object: {_DAMAGED}")
        found.append((where, dict(item)))
    return found


def _by_name(inventory: Mapping[str, Any], key: str) -> dict[str, dict[str, Any]]:
    named: dict[str, dict[str, Any]] = {}
    for where, item in _items(inventory, key):
        name = _text(item, where, "metadata", "name", required=True)
        assert name is not None
        named[name] = item
    return named


def _driver_of(backend: Mapping[str, Any] | None) -> NasDriver | None:
    """storageDriverName anywhere in a TridentBackend's config (it nests it under ontap_config)."""

    def find(value: Any, depth: int) -> str | None:
        # Trident nests it one level (ontap_config); a few levels more cover any layout without recursing forever.
        if isinstance(value, Mapping) and depth < 8:
            if isinstance(value.get("storageDriverName"), str):
                return str(value["storageDriverName"])
            for inner in value.values():
                got = find(inner, depth + 1)
                if got:
                    return got
        return None

    name = find((backend or {}).get("config"), 0)
    try:
        return NasDriver(name) if name else None
    except ValueError:
        return None


def check_inventory(inventory: Any) -> None:
    if not isinstance(inventory, Mapping):
        raise PlanError("the inventory is not a JSON object")
    if inventory.get("format") != INVENTORY_FORMAT:
        raise PlanError(
            f"the inventory's format is {shown(inventory.get('format'))}, not {INVENTORY_FORMAT!r}: "
            "is this an inventory written by the dsaas inventory CronJob?"
        )


def join_inventory(inventory: Mapping[str, Any]) -> list[Home]:
    """User → claim → PV → TridentVolume → backend, for every claim KubeSpawner made, sorted by user.

    A damaged inventory (a field of the wrong type, an object where text belongs) is a `PlanError` naming the
    field; what is well-formed but wrong for a restore (no size, a lost claim, a volume bound twice) is a
    warning on the home, so the operator reviews it."""
    check_inventory(inventory)
    pvs = _by_name(inventory, "persistentVolumes")
    volumes = _by_name(inventory, "tridentVolumes")
    backends: dict[Any, dict[str, Any]] = {}
    for where, backend in _items(inventory, "tridentBackends"):
        backends[_text(backend, where, "backendUUID")] = backend
    bound: Counter[str] = Counter()
    homes: list[Home] = []
    for where, claim in _items(inventory, "persistentVolumeClaims"):
        name = _text(claim, where, "metadata", "name", required=True)
        assert name is not None
        annotations = _at(claim, where, "metadata", "annotations") or {}
        labels = _at(claim, where, "metadata", "labels") or {}
        if not isinstance(annotations, Mapping) or not isinstance(labels, Mapping):
            raise PlanError(f"{where}.metadata's annotations or labels are not an object: {_DAMAGED}")
        user = annotations.get(USERNAME_ANNOTATION)
        if user is None and labels.get("component") != STORAGE_COMPONENT:
            continue  # not a home: some other claim in the hub namespace (the hub database's, say)
        namespace = _text(claim, where, "metadata", "namespace") or hub_render.HUB_NAMESPACE
        home = Home(user=None, claim=name, namespace=namespace)
        if user is None:
            home.warnings.append(
                f"claim {home.claim} is a KubeSpawner home but carries no {USERNAME_ANNOTATION} annotation: "
                "its user is unknown, so it cannot be given back; find the owner and add them by hand"
            )
        else:
            problem = _user_problem(user)
            if problem:
                home.warnings.append(
                    f"claim {home.claim}'s {USERNAME_ANNOTATION} {shown(user)} {problem}, so no JupyterHub user "
                    "has it: find the owner and add them by hand"
                )
            else:
                home.user = user
        phase = _at(claim, where, "status", "phase")
        if phase == "Lost":
            home.warnings.append(
                f"claim {home.claim} is Lost (its persistent volume was gone when the inventory was written): "
                "check on ONTAP that the volume still exists"
            )
        home.storage_class = _text(claim, where, "spec", "storageClassName")
        pv_name = _text(claim, where, "spec", "volumeName")
        pv = pvs.get(pv_name) if pv_name else None
        if pv is None:
            home.warnings.append(
                f"claim {home.claim} is bound to no persistent volume the inventory lists "
                f"({shown(pv_name) if pv_name else 'no spec.volumeName'}): no ONTAP volume is known for this home"
            )
            homes.append(home)
            continue
        assert pv_name is not None
        pv_where = f"persistentVolumes[{pv_name}]"
        bound[pv_name] += 1
        home.persistent_volume = pv_name
        claim_uid = _text(claim, where, "metadata", "uid")
        ref_uid = _text(pv, pv_where, "spec", "claimRef", "uid")
        if claim_uid and ref_uid and claim_uid != ref_uid:
            home.warnings.append(
                f"persistent volume {pv_name} is bound (claimRef.uid {shown(ref_uid)}) to another claim than "
                f"{home.claim} (uid {shown(claim_uid)}): it may be someone else's home"
            )
        capacity = _at(pv, pv_where, "spec", "capacity", "storage")
        tv = volumes.get(pv_name)
        if tv is None:
            home.warnings.append(
                f"persistent volume {pv_name} has no TridentVolume in the inventory: not a Trident volume, "
                "so there is nothing to import"
            )
            _size(home, capacity, f"{pv_where}.spec.capacity.storage")
            homes.append(home)
            continue
        backend_uuid = _text(tv, f"tridentVolumes[{pv_name}]", "backendUUID")
        _fill_from_trident(home, tv, backends.get(backend_uuid), f"tridentVolumes[{pv_name}]")
        if home.size_bytes is None:
            _size(home, capacity, f"{pv_where}.spec.capacity.storage")
        homes.append(home)
    for home in homes:
        if home.persistent_volume and bound[home.persistent_volume] > 1:
            home.warnings.append(
                f"persistent volume {home.persistent_volume} is bound by {bound[home.persistent_volume]} claims "
                "in the inventory: one volume can be one user's home only; find whose it is"
            )
    return sorted(homes, key=lambda h: (h.user is None, h.user or "", h.claim))


def _user_problem(user: Any) -> str | None:
    """Why `user` is no JupyterHub name (the plan loader's own check), or None."""
    if not isinstance(user, str):
        return f"is a {type(user).__name__}, not text"
    try:
        _USER_NAME.validate_python(user)
    except ValidationError as error:
        return str(error.errors(include_url=False, include_input=False)[0]["msg"])
    return None


def _size(home: Home, value: Any, where: str) -> None:
    if value is None:
        return
    try:
        home.size_bytes = parse_quantity(value)
    except ValueError as error:
        home.warnings.append(f"{where}: {error}; the home's size is unknown")


def _fill_from_trident(home: Home, tv: Mapping[str, Any], backend: Mapping[str, Any] | None, where: str) -> None:
    config = _at(tv, where, "config") or {}
    access = _at(tv, where, "config", "accessInformation") or {}
    if not isinstance(config, Mapping) or not isinstance(access, Mapping):
        raise PlanError(f"{where}.config is not an object: {_DAMAGED}")
    home.backend_uuid = _text(tv, where, "backendUUID")
    home.backend_name = _text(backend, "the TridentBackend", "backendName") if backend else None
    home.storage_class = _text(tv, where, "config", "storageClass") or home.storage_class
    if config.get("size"):
        _size(home, config["size"], f"{where}.config.size")
    internal_id = _text(tv, where, "config", "internalID")
    qtree = _QTREE_ID.match(internal_id or "")
    home.driver = _driver_of(backend) or (NasDriver.ONTAP_NAS_ECONOMY if qtree else NasDriver.ONTAP_NAS)
    nfs_server = _text(tv, where, "config", "accessInformation", "nfsServerIp")
    if home.driver is NasDriver.ONTAP_NAS_ECONOMY:
        if qtree is None:
            home.warnings.append(
                f"TridentVolume {shown(tv['metadata']['name'])} is on an economy backend but its internalID "
                f"({shown(internal_id)}) names no qtree: cannot tell which FlexVol holds it"
            )
            return
        home.volume = qtree["flexvol"]
        home.qtree = Qtree(
            flexvol=qtree["flexvol"],
            name=qtree["qtree"],
            junction_path=_text(tv, where, "config", "accessInformation", "nfsPath")
            or f"/{qtree['flexvol']}/{qtree['qtree']}",
        )
        home.data_lif = nfs_server
    else:
        home.volume = _text(tv, where, "config", "internalName")
        home.data_lif = nfs_server
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
    _mark_shared_sources(entries)
    for entry in entries:
        _mark_unloadable(entry, settings.storage.homes_driver)
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
        owners = _owners(sharing)
        for entry in sharing:
            entry["warnings"].append(
                f"name collision: {owners} all get claim {claim}; only one home can be bound to it"
            )
        top.append(f"name collision on claim {claim} ({owners})")


def _owners(sharing: list[dict[str, Any]]) -> str:
    """The first few owners and a count: the warning stays the same size however many share."""
    names = ", ".join(repr(e["user"]) for e in sharing[:_OWNERS_SHOWN])
    return names + (f" and {len(sharing) - _OWNERS_SHOWN} more" if len(sharing) > _OWNERS_SHOWN else "")


def _mark_shared_sources(entries: list[dict[str, Any]]) -> None:
    """Two homes on one FlexVol, one qtree or one NFS path are one directory: the loader refuses both."""
    keys: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        if entry["volume"]:
            keys[("volume", entry["volume"])].append(entry)
        if entry["qtree"]:
            qtree = entry["qtree"]
            keys[("qtree", f"{qtree['flexvol']}/{qtree['name']}")].append(entry)
            keys[("junction path", str(qtree["junctionPath"]).rstrip("/"))].append(entry)
    for (kind, name), sharing in keys.items():
        if len(sharing) > 1:
            for entry in sharing:
                entry["warnings"].append(
                    f"{_owners(sharing)} share the {kind} {shown(name)}: one directory can be one user's home "
                    "only; find whose it is and leave the others out"
                )


def _mark_unloadable(entry: dict[str, Any], driver: NasDriver) -> None:
    """Every reason the program's loader would refuse this entry, as a warning the operator reads."""
    if entry["driver"] is not None and entry["driver"] != driver.value:
        entry["warnings"].append(
            f"the home is on {entry['driver']}, but the stack's dsaas:storage.homesDriver is {driver.value}: set "
            "it to the driver the homes were on (moving homes to the other driver is a copy, not a restore)"
        )
    if entry["warnings"]:
        return  # already flagged: the operator resolves it first; what remains is checked on the replan
    try:
        PlannedHome.model_validate({**entry, "warnings": []})
    except ValidationError as error:
        for problem in error.errors(include_url=False, include_input=False)[:5]:
            where = ".".join(to_camel(str(part)) for part in problem["loc"]) or "home"
            entry["warnings"].append(f"{where}: {problem['msg']} (nothing in the inventory says it)")


def unloadable(plan_: Mapping[str, Any], settings: Settings) -> list[str]:
    """What the program's loader would refuse in the plan's unflagged part (every entry without warnings):
    empty for a plan the planner may write. Flagged entries are the operator's to resolve or delete."""
    clean = {**plan_, "homes": [home for home in plan_["homes"] if not home["warnings"]]}
    where = "the plan"
    try:
        checked = RestorePlan.model_validate(clean)
    except ValidationError as error:
        return [f"{e['loc']}: {e['msg']}" for e in error.errors(include_url=False, include_input=False)[:10]]
    except RestorePlanError as error:
        return [str(p) for p in error.problems]
    return [str(p) for p in check_plan(checked, settings, plan_["stack"], where)]


def written_time(value: Any) -> str:
    """The inventory's `written` as the plan keeps it, or `PlanError`: a plan must say how old its facts are."""
    if not isinstance(value, str) or len(value) > 64:
        raise PlanError(
            "the inventory carries no readable `written` time (when the CronJob wrote it), so the plan could not "
            f"say how old it is: {_DAMAGED}"
        )
    # The CronJob writes `date -u +%Y-%m-%dT%H:%M:%SZ`. fromisoformat alone would take any character as the
    # date-time separator (an escape sequence too), and the value is printed and kept in the plan.
    try:
        if not _WRITTEN.fullmatch(value):
            raise ValueError(value)
        datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):
        raise PlanError(f"the inventory's `written` {shown(value)} is not a time: {_DAMAGED}") from None
    return value


_WRITTEN = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2})", re.ASCII
)


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
    "unloadable",
    "written_time",
]
