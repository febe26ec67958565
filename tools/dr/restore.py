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
from components.restore_render import (
    REFUSED_WHATEVER_THE_DECISION,
    PlannedHome,
    RestorePlan,
    RestorePlanError,
    check_plan,
)
from components.trident_render import home_source_problems
from config.restore_plan import MAX_SIZE_BYTES, UserName, shown
from config.settings import Settings
from config.storage import NasDriver

PLAN_FORMAT = "dsaas-restore-plan/1"
INVENTORY_FORMAT = "dsaas-inventory/1"
# KubeSpawner 7 puts the unescaped user name on every object it makes (`_build_common_annotations`);
# the label of the same name carries only a slug, which cannot be turned back into the name.
USERNAME_ANNOTATION = "hub.jupyter.org/username"
# ... and, for a named server, the server's name (kubespawner/spawner.py 7.0.0, `_build_common_annotations`).
SERVERNAME_ANNOTATION = "hub.jupyter.org/servername"
STORAGE_COMPONENT = "singleuser-storage"
TRIDENT_CSI = "csi.trident.netapp.io"
# What components/restore_render.py writes on the static NFS volume of a restored economy home.
STATIC_QTREE_ANNOTATION = "dsaas.io/qtree"
# Trident's internalID of an economy volume: /svm/<svm>/flexvol/<flexvol>/qtree/<qtree>.
_QTREE_ID = re.compile(r"^/svm/(?P<svm>[^/]+)/flexvol/(?P<flexvol>[^/]+)/qtree/(?P<qtree>[^/]+)$")
_UNITS = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5}
_UNITS.update({"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5})
_QUANTITY = re.compile(r"^(?P<number>[0-9]+(\.[0-9]+)?)(?P<unit>[KMGTP]i|[kMGTP])?$")
_USER_NAME: TypeAdapter[str] = TypeAdapter(UserName)
# How many owners a collision warning names: one user with 10,000 claims must not give a quadratic plan.
_OWNERS_SHOWN = 5
GIB = 1024**3


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
    server: str = ""
    """The named server the claim was made for (KubeSpawner's hub.jupyter.org/servername), "" for the default."""
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
    name = _driver_name(backend)
    try:
        return NasDriver(name) if name else None
    except ValueError:
        return None


def _driver_name(backend: Mapping[str, Any] | None) -> str | None:
    """The TridentBackend's storageDriverName as written (ontap-san too), or None."""

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

    return find((backend or {}).get("config"), 0)


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
        server = annotations.get(SERVERNAME_ANNOTATION)
        home.server = server if isinstance(server, str) else ""
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
        _fill_from_volume(home, pv, pv_where, volumes, backends)
        homes.append(home)
    for home in homes:
        if home.persistent_volume and bound[home.persistent_volume] > 1:
            home.warnings.append(
                f"persistent volume {home.persistent_volume} is bound by {bound[home.persistent_volume]} claims "
                "in the inventory: one volume can be one user's home only; find whose it is"
            )
    return sorted(homes, key=lambda h: (h.user is None, h.user or "", h.claim))


def _fill_from_volume(
    home: Home,
    pv: Mapping[str, Any],
    where: str,
    volumes: Mapping[str, dict[str, Any]],
    backends: Mapping[Any, dict[str, Any]],
) -> None:
    """Driver, volume or qtree, data LIF and size of the home on `pv`: from its TridentVolume, found by the CSI
    volume handle (Trident's volume name, frontend/csi/controller_server.go: VolumeId = volume.Config.Name; the
    PV's own name may differ), or, for the static NFS volume an earlier restore made, from the PV itself."""
    capacity = _at(pv, where, "spec", "capacity", "storage")
    if _at(pv, where, "spec", "nfs") is not None:
        _fill_from_static(home, pv, where)
        if home.size_bytes is None:
            _size(home, capacity, f"{where}.spec.capacity.storage")
        return
    csi_driver = _text(pv, where, "spec", "csi", "driver")
    handle = _text(pv, where, "spec", "csi", "volumeHandle")
    tv = volumes.get(handle) if csi_driver == TRIDENT_CSI and handle else None
    if tv is None:
        what = (
            f"its CSI volume handle {shown(handle)} names no TridentVolume in the inventory"
            if csi_driver == TRIDENT_CSI
            else f"it is not a Trident CSI volume (CSI driver {shown(csi_driver)}) nor a static NFS volume"
        )
        home.warnings.append(f"persistent volume {home.persistent_volume}: {what}, so there is nothing to restore")
        _size(home, capacity, f"{where}.spec.capacity.storage")
        return
    tv_where = f"tridentVolumes[{handle}]"
    backend_uuid = _text(tv, tv_where, "backendUUID")
    _fill_from_trident(home, tv, backends.get(backend_uuid), tv_where)
    if home.size_bytes is None:
        _size(home, capacity, f"{where}.spec.capacity.storage")


def _fill_from_static(home: Home, pv: Mapping[str, Any], where: str) -> None:
    """A home an earlier restore brought back as a static NFS volume (components/restore_render.py
    `render_static_volume`): no TridentVolume, but the PV carries the data LIF, the junction path and, in its
    `dsaas.io/qtree` annotation, the FlexVol and qtree: enough to plan the next restore."""
    server = _text(pv, where, "spec", "nfs", "server")
    path = _text(pv, where, "spec", "nfs", "path") or ""
    annotated = _text(pv, where, "metadata", "annotations", STATIC_QTREE_ANNOTATION)
    parts = path.strip("/").split("/")
    from_path = (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None
    from_note = tuple(annotated.split("/")) if annotated and annotated.count("/") == 1 else None
    home.driver = NasDriver.ONTAP_NAS_ECONOMY
    home.data_lif = server
    if from_path is None:
        home.warnings.append(
            f"static NFS volume {home.persistent_volume} mounts {shown(path)}, not a qtree (/<flexvol>/<qtree>): "
            "the program only makes static volumes for economy qtrees; find which ONTAP volume this is"
        )
        return
    if from_note is not None and from_note != from_path:
        home.warnings.append(
            f"static NFS volume {home.persistent_volume} mounts {shown(path)} but its {STATIC_QTREE_ANNOTATION} "
            f"annotation says {shown(annotated)}: someone changed one of them; check on ONTAP which is the home"
        )
    home.volume = from_path[0]
    home.qtree = Qtree(flexvol=from_path[0], name=from_path[1], junction_path=path)


def released_volumes(inventory: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Homes whose claim was deleted (a deleted user, or a claim deleted in the middle of a runbook): their
    Retain PV stays Released with the old claimRef, and no claim names them, so `join_inventory` never sees
    them. Each is reported with what ONTAP holds, for the operator to decide."""
    check_inventory(inventory)
    volumes = _by_name(inventory, "tridentVolumes")
    backends: dict[Any, dict[str, Any]] = {}
    for where, backend in _items(inventory, "tridentBackends"):
        backends[_text(backend, where, "backendUUID")] = backend
    claimed = {
        _text(claim, where, "spec", "volumeName") for where, claim in _items(inventory, "persistentVolumeClaims")
    }
    found: list[dict[str, Any]] = []
    for where, pv in _items(inventory, "persistentVolumes"):
        name = _text(pv, where, "metadata", "name", required=True)
        if _at(pv, where, "status", "phase") != "Released" or name in claimed:
            continue
        claim = _text(pv, where, "spec", "claimRef", "name") or "?"
        namespace = _text(pv, where, "spec", "claimRef", "namespace") or "?"
        home = Home(user=None, claim=claim, namespace=namespace, persistent_volume=name)
        _fill_from_volume(home, pv, where, volumes, backends)
        source = f"qtree {home.qtree.flexvol}/{home.qtree.name}" if home.qtree else f"FlexVol {home.volume}"
        found.append(
            {
                "persistentVolume": name,
                "oldClaim": f"{namespace}/{claim}",
                "driver": home.driver.value if home.driver else None,
                "source": source,
                "sizeBytes": home.size_bytes,
                "todo": (
                    f"the claim {namespace}/{claim} was deleted before the inventory was written, so its user is not "
                    f"known here ({source}). If the user was deleted on purpose, leave it out and delete the "
                    "volume on ONTAP when its retention ends; if the claim was deleted by mistake (say, in the "
                    "middle of a runbook), add an entry for its user by hand with this driver, volume or qtree "
                    "and size"
                ),
            }
        )
    return found


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
    driver_name = _driver_name(backend)
    if driver_name is not None and _driver_of(backend) is None:
        # A LUN (ontap-san, the hub database's class) or any other driver is no home: never guess ontap-nas.
        home.warnings.append(
            f"TridentVolume {shown(_at(tv, where, 'metadata', 'name'))} is on a {shown(driver_name)} backend, "
            "not ontap-nas or ontap-nas-economy: a home is an NFS volume; this claim is no home to restore"
        )
        return
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
    sha256: str | None = None
    """The digest of the object's bytes the plan was made from: the plan names exactly what it used."""
    signed_by: str | None = None
    """The id of the stack key whose signature on the inventory was checked; None: unsigned (--unsigned)."""


def plan(
    homes: Iterable[Home],
    settings: Settings,
    source: Source,
    stack: str,
    warnings: Iterable[str] = (),
    released: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The restore plan (format dsaas-restore-plan/1) for `homes`, as a plain dict; `released` (from
    `released_volumes`) is listed apart, each with what to do, and counted in the warnings."""
    scheme = name_scheme(settings)
    homes = list(homes)
    top = list(warnings)
    entries: list[dict[str, Any]] = []
    for home in homes:
        new = kubespawner_claim_name(home.user, scheme) if home.user is not None else home.claim
        notes = list(home.warnings)
        if home.server:
            # The pinned template gives all of a user's servers one claim: this server's own home cannot come back
            # as a second claim. Said, so the reviewer picks one home (the user's other entry says so too).
            notes.append(
                f"claim {home.claim} was the home of {home.user!r}'s named server {home.server!r} (made when the "
                f"claim name template included the server name); with the pinned template every server of the "
                f"user mounts {new}: restore one home as {new} and copy the other's files into it"
            )
        entry: dict[str, Any] = {
            "user": home.user,
            "claim": new,
        }
        if new != home.claim:
            # A rename is no warning: KubeSpawner 6's 'escape' names (and other template changes) come back
            # under the name the hub looks for now, as docs/restore.md promises; the old name stays on record.
            entry["oldClaim"] = home.claim
        if home.server:
            entry["server"] = home.server
        entries.append(
            {
                **entry,
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
        _mark_untrusted(entry, settings)
        _mark_unloadable(entry, settings.storage.homes_driver)
        if entry["warnings"]:
            # The reviewer's field (components/restore_render.py): `restore` once resolved, or `skip` + `reason`.
            entry["decision"] = None
    released = [dict(volume) for volume in released]
    for volume in released:
        top.append(
            f"persistent volume {volume['persistentVolume']} ({volume['source']}) is Released: its claim "
            f"{volume['oldClaim']} was deleted; see `released` for what to do"
        )
    result: dict[str, Any] = {
        "format": PLAN_FORMAT,
        "stack": stack,
        "source": {"kind": source.kind, "location": source.location, "written": source.written}
        | ({"sha256": source.sha256} if source.sha256 else {})
        | ({"signedBy": source.signed_by} if source.signed_by else {"signed": False} if source.kind == "s3" else {}),
        "homes": entries,
        "warnings": top,
    }
    if released:
        result["released"] = released  # the loader ignores it: nothing is created for these
    return result


def _mark_collisions(entries: list[dict[str, Any]], top: list[str]) -> None:
    by_claim: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_claim[entry["claim"]].append(entry)
    for claim, sharing in sorted(by_claim.items()):
        if len({entry["user"] for entry in sharing}) < 2:
            continue  # one user's two homes (a named server's claim): warned as such below, no collision
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


def _mark_untrusted(entry: dict[str, Any], settings: Settings) -> None:
    """What in the entry this stack's backends cannot have made (another data LIF, a volume without the stack's
    prefix, a junction path that is not the qtree's, the hub database's volume), and an ONTAP name that names
    another claim than the entry's: the inventory is not trusted blindly (issue 21, item 10)."""
    qtree = entry["qtree"]
    problems = home_source_problems(
        settings,
        entry["driver"],
        entry["volume"],
        (qtree["flexvol"], qtree["name"], str(qtree["junctionPath"])) if qtree else None,
        entry["dataLif"],
    )
    who = f"the home of {shown(entry['user'])} (claim {entry.get('oldClaim') or entry['claim']})"
    for problem in problems:
        entry["warnings"].append(
            f"{who}: {problem}. {REFUSED_WHATEVER_THE_DECISION}: set `decision: skip` with a reason, "
            "and find the real home on ONTAP (python -m tools.restore plan --from ontap)"
        )
    if not problems and _volume_names_claim(entry) is False:
        name = entry["volume"] if qtree is None else f"{qtree['flexvol']}/{qtree['name']}"
        entry["warnings"].append(
            f"{who}: the ONTAP name {name} names another claim (Trident named it after the claim it was made "
            "for): the inventory may hand someone else's home to this user; check the volume's owner on ONTAP "
            "(its comment's dsaas.io/claim), then `decision: restore` or `decision: skip` with a reason"
        )


def _mark_unloadable(entry: dict[str, Any], driver: NasDriver) -> None:
    """Every reason the program's loader would refuse this entry, as a warning the operator reads."""
    # Economy homes come back as static NFS volumes on any stack; an ontap-nas FlexVol needs an ontap-nas
    # homes class to be imported through (components/restore_render.py check_plan).
    if entry["driver"] == NasDriver.ONTAP_NAS.value and driver is not NasDriver.ONTAP_NAS:
        entry["warnings"].append(
            f"the home is an ontap-nas FlexVol, but the stack's dsaas:storage.homesDriver is {driver.value}: set "
            "it to ontap-nas (economy homes still come back as static volumes) or skip this home and copy it"
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
            f"# {qtrees} home(s) are ontap-nas-economy qtrees. They come back as static NFS volumes (dataLif +\n"
            "# qtree.junctionPath), retained, outside Trident's management; `pulumi up` first puts each qtree and\n"
            "# its FlexVol on the stack's export policy <storagePrefix>_restored_homes so the new nodes can mount\n"
            "# them (docs/restore.md, 'Reaching restored economy homes').\n"
        )
    body: str = yaml.dump(
        dict(plan_), Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000
    )
    return header + body


def summary_file(plan_path: str) -> str:
    """Where the reviewer's summary goes: beside the plan (`restore.prod.yaml` -> `restore.prod.summary.txt`)."""
    stem = plan_path[: -len(".yaml")] if plan_path.endswith(".yaml") else plan_path
    return stem + ".summary.txt"


def _volume_names_claim(entry: Mapping[str, Any]) -> bool | None:
    """Whether the ONTAP name still carries the claim it was made for. The backends' nameTemplate puts the claim
    into every volume's and qtree's name (components/trident_render.py VOLUME_NAME_TEMPLATE, sanitized as
    Trident's GetVolumeNameFromTemplate does), so a home handed to the wrong user shows here. None: the name
    says nothing (Trident's fallback name `<prefix>_pvc_<uid>`, a qtree past 64 characters)."""
    name = entry["volume"] if entry["qtree"] is None else entry["qtree"]["name"]
    if not name or "_pvc_" in name:
        return None
    claim = entry.get("oldClaim") or entry["claim"]
    return f"_{re.sub('__*', '_', re.sub(r'[^A-Za-z0-9_]', '_', claim)).strip('_')}_" in f"{name}_"


def render_summary(plan_: Mapping[str, Any]) -> str:
    """One line per home, sorted by user, for the reviewer who approves the plan: user, claim (and the old one),
    what ONTAP holds, the size, and whether the ONTAP name still names the user's claim (`NAME?` where it
    does not: a swapped entry or a swapped inventory stands out)."""
    lines = [
        f"Restore plan summary for stack {plan_['stack']}, from {plan_['source']['location']} "
        f"(written {plan_['source']['written']}). {len(plan_['homes'])} homes, sorted by user.",
        "check  user | claim (old claim) | driver | ONTAP volume or flexvol/qtree | GiB | decision",
    ]
    for entry in sorted(plan_["homes"], key=lambda e: (e["user"] is None, e["user"] or "", e["claim"])):
        source = entry["volume"] if entry["qtree"] is None else f"{entry['qtree']['flexvol']}/{entry['qtree']['name']}"
        size = f"{entry['sizeBytes'] / GIB:.1f}" if entry["sizeBytes"] else "?"
        matches = _volume_names_claim(entry)
        check = "NAME?" if matches is False else "ok" if matches else "-"
        old = f" ({entry['oldClaim']})" if entry.get("oldClaim") else ""
        decision = entry.get("decision", "restore") if "decision" in entry else "restore"
        decision = decision or f"DECIDE ({len(entry['warnings'])} warning(s))"
        lines.append(
            f"{check:<6} {shown(entry['user'], 80)} | {entry['claim']}{old} | {entry['driver']} | {source} | "
            f"{size} | {decision}"
        )
    for volume in plan_.get("released", []):
        lines.append(
            f"RELEASED {volume['persistentVolume']} | {volume['oldClaim']} | {volume['source']} | not restored"
        )
    return "\n".join(lines) + "\n"


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
    "released_volumes",
    "render_plan",
    "render_summary",
    "summary_file",
    "unloadable",
    "written_time",
]
