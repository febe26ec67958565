"""Pure renderer of a restore: the plan file read and checked against the stack, and the objects that
give each planned user their old home back before the hub starts (docs/restore.md, "Restore in the graph").

- `ontap-nas` home: a PersistentVolumeClaim with Trident's import annotations. Trident finds the FlexVol
  by `importOriginalName` on the backend `importBackendUUID` names (read from the rebuilt backend's
  status by the caller: here it is whatever the caller passes, a string in tests, an Output in the graph),
  creates the PV and binds it. The import is *managed*: Trident renames the FlexVol to the backend's
  name template and from then on resizes, snapshots, clones it like any volume it made; the class's
  Retain policy keeps it when the claim goes.
- `ontap-nas-economy` home: a static NFS PersistentVolume on the qtree's junction path, pre-bound to its
  claim (`claimRef` on the PV, `volumeName` on the claim), both with the empty storage class so neither
  Trident nor the cluster's default class ever touches them. (Trident 26.06 imports qtrees only as a tech
  preview; docs/restore.md says why the restore does not rely on it.) The nodes reach it through the
  export policy `render_export_access` describes and components/ontap_exports.py sets up.

Claim names, labels and the `hub.jupyter.org/*` annotations are KubeSpawner 7's own, computed by its
code with the stack's pinned template and slug scheme (never re-implemented), so the hub adopts the claim
(KubeSpawner treats "already exists" as success) and selectors on KubeSpawner's labels find it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components.hub_render import HOME_ACCESS_MODES, HUB_NAMESPACE, HUB_RELEASE, PVC_NAME_TEMPLATE, SLUG_SCHEME
from components.trident_render import HOMES_CLASS, home_source_problems
from config import versions
from config.model import SettingsProblem, project_file, stack_key
from config.restore_plan import MAX_PLAN_BYTES, DataLif, JunctionPath, SizeBytes, UserName, load_plain_yaml, shown
from config.settings import Settings
from config.storage import NasDriver

PLAN_FORMAT = "dsaas-restore-plan/1"
PLAN_KEY = stack_key("restore", "plan")
IMPORT_ORIGINAL_NAME = "trident.netapp.io/importOriginalName"
IMPORT_BACKEND_UUID = "trident.netapp.io/importBackendUUID"
WAIT_FOR_BOUND = {"pulumi.com/waitFor": "jsonpath={.status.phase}=Bound"}
# Static volumes carry the empty class: no provisioner acts on it and no default class is filled in.
STATIC_CLASS = ""
RESTORED_LABEL = "dsaas.io/restored-from"
# The export policy the program owns for restored economy homes (components/ontap_exports.py): prefixed like
# Trident's own `<prefix>empty` (ontap_common.go getEmptyExportPolicyName), so ONTAP shows whose it is.
RESTORED_EXPORT_POLICY = "{prefix}_restored_homes"
GIB = 1024**3
# What z2jh 4.4.0's jupyterhub_config.py sets as c.KubeSpawner.common_labels for release "jupyterhub"
# of chart "jupyterhub" (tests/upstream/charts/jupyterhub-4.4.0/files/hub/jupyterhub_config.py).
Z2JH_COMMON_LABELS: dict[str, str] = {
    "app.kubernetes.io/name": "jupyterhub",
    "app": "jupyterhub",
    "app.kubernetes.io/instance": HUB_RELEASE,
    "release": HUB_RELEASE,
    "helm.sh/chart": f"jupyterhub-{versions.Z2JH_CHART_VERSION}",
    "chart": f"jupyterhub-{versions.Z2JH_CHART_VERSION}",
    "app.kubernetes.io/managed-by": "kubespawner",
}
_ONTAP_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,202}$"
_REPLAN = "rerun `python -m tools.restore plan <stack>` and review the new file"
# Ends each planner warning about a home the stack did not make (a foreign data LIF, another prefix, the hub
# database): the loader then offers only a skip, because no decision makes such an entry loadable.
REFUSED_WHATEVER_THE_DECISION = "The program refuses it whatever the decision"


class RestorePlanError(ValueError):
    """The plan cannot be used as it is; every problem names `dsaas:restore.plan` and its fix."""

    def __init__(self, problems: list[SettingsProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"  - {p}" for p in problems))


class _PlanModel(BaseModel):
    # Fields the planner may add within format 1 are ignored; a breaking change bumps the format.
    model_config = ConfigDict(frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True)


class PlanSource(_PlanModel):
    kind: Literal["s3", "ontap"]
    location: StrictStr = Field(max_length=2048)
    written: StrictStr = Field(min_length=1, max_length=64)


class PlannedQtree(_PlanModel):
    flexvol: StrictStr = Field(pattern=_ONTAP_NAME)
    name: StrictStr = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    junction_path: JunctionPath


class PlannedHome(_PlanModel):
    user: UserName
    # A Kubernetes object name (DNS subdomain): KubeSpawner's slug never exceeds it.
    claim: StrictStr = Field(min_length=1, max_length=253)
    driver: NasDriver
    volume: StrictStr | None = Field(default=None, pattern=_ONTAP_NAME)
    qtree: PlannedQtree | None = None
    data_lif: DataLif | None = None
    size_bytes: SizeBytes
    warnings: list[StrictStr] = Field(default_factory=list)
    # The reviewer's answer to the warnings: `restore` once they are resolved (the warnings stay, as a record of
    # what was checked). `skip` entries never reach this model: RestorePlan sets them apart.
    decision: Literal["restore"] | None = None

    @model_validator(mode="after")
    def _driver_fields(self) -> PlannedHome:
        if self.driver is NasDriver.ONTAP_NAS and not self.volume:
            raise ValueError("an ontap-nas home needs `volume` (the FlexVol to import)")
        if self.driver is NasDriver.ONTAP_NAS_ECONOMY and (self.qtree is None or self.data_lif is None):
            raise ValueError("an ontap-nas-economy home needs `qtree` (flexvol, name, junctionPath) and `dataLif`")
        return self


class SkippedHome(_PlanModel):
    """An entry the reviewer decided to leave out (`decision: skip`): only the reason is required, so an entry
    the planner could not resolve (`driver: null`, `sizeBytes: null`) never stops the rest of the plan."""

    user: StrictStr | None = Field(default=None, max_length=1024)
    claim: StrictStr | None = Field(default=None, max_length=1024)
    reason: StrictStr = Field(min_length=1, max_length=2048)

    @field_validator("reason")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must say why the home is left out")
        return value


class UndecidedHome(_PlanModel):
    """An entry with warnings and no `decision` yet: reported by `check_plan`, never half-validated (its fields
    may be null: what the planner could not resolve), so the problems of the rest of the plan show too."""

    user: StrictStr | None = Field(default=None, max_length=1024)
    claim: StrictStr | None = Field(default=None, max_length=1024)
    warnings: list[StrictStr] = Field(default_factory=list)


class RestorePlan(_PlanModel):
    format: StrictStr
    stack: StrictStr = Field(max_length=255)
    source: PlanSource
    homes: list[PlannedHome]
    skipped: list[SkippedHome] = Field(default_factory=list)
    undecided: list[UndecidedHome] = Field(default_factory=list)
    warnings: list[StrictStr] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _set_skipped_apart(cls, data: Any) -> Any:
        """Entries with `decision: skip`, and flagged entries without a decision, are set apart before the strict
        home model sees them: what the planner could not resolve never stops the rest of the plan loading."""
        if not isinstance(data, dict) or not isinstance(data.get("homes"), list):
            return data
        homes, skipped, undecided = [], [], []
        for entry in data["homes"]:
            if isinstance(entry, dict) and entry.get("decision") == "skip":
                skipped.append({k: entry.get(k) for k in ("user", "claim", "reason")})
            elif isinstance(entry, dict) and entry.get("warnings") and entry.get("decision") is None:
                undecided.append({k: entry.get(k) for k in ("user", "claim", "warnings")})
            else:
                homes.append(entry)
        return {**data, "homes": homes, "skipped": skipped, "undecided": undecided}


# --- KubeSpawner's own names ----------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimIdentity:
    """What KubeSpawner 7 would put on the claim it creates for a user."""

    name: str
    labels: dict[str, str]
    annotations: dict[str, str]


class _HubUser:
    """The part of a JupyterHub user KubeSpawner's templates read."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.id = 0  # only {userid} reads it; the pinned template does not
        self.url = "/"


@functools.cache
def _spawner() -> Any:
    # Imported here: only a stack with a restore plan needs KubeSpawner (and JupyterHub) loaded.
    from kubespawner import KubeSpawner
    from traitlets.config import Config

    spawner = KubeSpawner.__new__(KubeSpawner)
    spawner._load_config(
        Config(
            {
                "KubeSpawner": {
                    "namespace": HUB_NAMESPACE,
                    "slug_scheme": SLUG_SCHEME,
                    "pvc_name_template": PVC_NAME_TEMPLATE,
                    "common_labels": Z2JH_COMMON_LABELS,
                    "storage_class": HOMES_CLASS,
                    "storage_access_modes": list(HOME_ACCESS_MODES),
                }
            }
        )
    )
    return spawner


def claim_for_user(username: str) -> ClaimIdentity:
    """The claim KubeSpawner 7 computes for `username`'s default server with the stack's pinned template
    and slug scheme, and its labels and `hub.jupyter.org/*` annotations (from `get_pvc_manifest`)."""
    spawner = _spawner()
    spawner.user = _HubUser(username)
    spawner.pvc_name = spawner._expand_user_properties(PVC_NAME_TEMPLATE)
    manifest = spawner.get_pvc_manifest()
    annotations = {k: v for k, v in manifest.metadata.annotations.items() if k.startswith("hub.jupyter.org/")}
    return ClaimIdentity(name=spawner.pvc_name, labels=dict(manifest.metadata.labels), annotations=annotations)


# --- reading and checking -------------------------------------------------------------------------


def _problem(problem: str, fix: str) -> SettingsProblem:
    return SettingsProblem(key=PLAN_KEY, problem=problem, fix=fix)


def parse_plan(text: str, where: str) -> RestorePlan:
    """The plan in `text`, or `RestorePlanError` on bad YAML, an unknown format or a missing field."""
    try:
        document = load_plain_yaml(text)
    except ValueError as error:
        raise RestorePlanError([_problem(f"{where} is not valid YAML ({error}).", _REPLAN)]) from None
    if not isinstance(document, dict):
        raise RestorePlanError([_problem(f"{where} is not a restore plan (a mapping).", _REPLAN)])
    if document.get("format") != PLAN_FORMAT:
        raise RestorePlanError(
            [
                _problem(
                    f"{where} has format {shown(document.get('format'))}; this program reads {PLAN_FORMAT!r}.",
                    f"{_REPLAN} with this version of dsaas.",
                )
            ]
        )
    try:
        return RestorePlan.model_validate(document)
    except ValidationError as error:
        # Locations are field names and list indices (unknown keys are ignored, never quoted); messages never
        # quote the input, so a message stays bounded whatever the plan holds.
        details = "; ".join(
            f"{'.'.join(_camel(p) for p in e['loc']) or 'plan'}: {e['msg']}"
            for e in error.errors(include_url=False, include_input=False)[:10]
        )
        raise RestorePlanError([_problem(f"{where} is malformed: {details}.", _REPLAN)]) from None


def _camel(part: str | int) -> str:
    # The stack file's spelling (sizeBytes), which the message names.
    return str(part) if isinstance(part, int) else to_camel(part) if "_" in part else part


def check_plan(plan: RestorePlan, settings: Settings, stack: str, where: str) -> list[SettingsProblem]:
    """Everything that must hold before one claim is created; all problems at once."""
    problems: list[SettingsProblem] = []
    if plan.stack != stack:
        problems.append(
            _problem(
                f"{where} was planned for stack {plan.stack!r}, not {stack!r}.",
                f"name this stack's own plan (`python -m tools.restore plan {stack}`).",
            )
        )
    driver = settings.storage.homes_driver
    claims: dict[str, str] = {}
    volumes: dict[str, str] = {}
    junctions: dict[str, str] = {}
    for undecided in plan.undecided:
        problems.append(
            _undecided(f"the home of user {shown(undecided.user)} (claim {shown(undecided.claim)})", undecided.warnings)
        )
    for home in plan.homes:
        who = f"the home of user {home.user!r}"
        if home.warnings and home.decision != "restore":
            problems.append(_undecided(who, home.warnings))
        # Economy homes come back as static NFS volumes, which need no Trident backend: any stack takes them. An
        # ontap-nas home is imported through the homes class, which must be a retained ontap-nas class.
        if home.driver is NasDriver.ONTAP_NAS and driver is not NasDriver.ONTAP_NAS:
            problems.append(
                _problem(
                    f"{who} is an ontap-nas FlexVol, but dsaas:storage.homesDriver is {driver.value}: Trident "
                    "imports it only through a retained ontap-nas homes class.",
                    "set dsaas:storage.homesDriver to ontap-nas (economy homes in the same plan still come back "
                    "as static volumes); or set `decision: skip` and `reason` on this entry and copy the data.",
                )
            )
        for untrusted in home_source_problems(
            settings,
            home.driver,
            home.volume,
            (home.qtree.flexvol, home.qtree.name, home.qtree.junction_path) if home.qtree else None,
            home.data_lif,
        ):
            # No decision overrides this: the program mounts nothing its own backends did not make (issue 21).
            problems.append(
                _problem(
                    f"{who}: {untrusted}.",
                    "leave the entry out (`decision: skip`, `reason: <why>`) and find the real home on ONTAP; if "
                    "dsaas:storage changed since the backup, plan with the settings the homes were made with.",
                )
            )
        expected = claim_for_user(home.user).name
        if home.claim != expected:
            problems.append(
                _problem(
                    f"{who} names claim {home.claim!r}, but KubeSpawner 7 computes {expected!r} with the pinned "
                    f"template {PVC_NAME_TEMPLATE!r} and slug scheme {SLUG_SCHEME!r}.",
                    f"{_REPLAN} (the planner computes names with the same KubeSpawner code).",
                )
            )
        elif expected in claims:
            problems.append(
                _problem(
                    f"users {claims[expected]!r} and {home.user!r} both map to claim {expected!r}.",
                    "keep one of them in the plan; restore the other by hand into a new home.",
                )
            )
        claims.setdefault(expected, home.user)
        source = home.volume or (f"{home.qtree.flexvol}/{home.qtree.name}" if home.qtree else "")
        if source in volumes:
            problems.append(
                _problem(
                    f"{who} and the home of {volumes[source]!r} are both {source!r}.",
                    f"{_REPLAN}; one volume can be one user's home only.",
                )
            )
        volumes.setdefault(source, home.user)
        if home.qtree is not None:
            # Two qtrees on one path are one directory: two users would share (and overwrite) one home.
            path = home.qtree.junction_path.rstrip("/")
            if path in junctions:
                problems.append(
                    _problem(
                        f"{who} and the home of {junctions[path]!r} are both at junction path {path!r}.",
                        f"{_REPLAN}; one directory can be one user's home only.",
                    )
                )
            junctions.setdefault(path, home.user)
    return problems


def _undecided(who: str, warnings: list[str]) -> SettingsProblem:
    if any(REFUSED_WHATEVER_THE_DECISION in warning for warning in warnings):
        return _problem(
            f"{who} is not a home the stack made: {'; '.join(warnings)}.",
            "set `decision: skip` and `reason: <why>` on the entry (no decision restores it), then find the real "
            "home on ONTAP (`python -m tools.restore plan <stack> --from ontap`).",
        )
    return _problem(
        f"{who} has unresolved warnings: {'; '.join(warnings)}.",
        "resolve them (e.g. `snapmirror break` a mirror destination on ONTAP, unmount the volume), then set "
        "`decision: restore` on the entry; or set `decision: skip` and `reason: <why>` to leave that home out "
        "knowingly (the rest of the plan is restored either way).",
    )


def load_plan(settings: Settings, stack: str) -> RestorePlan | None:
    """The stack's checked plan (None without `dsaas:restore.plan`), or `RestorePlanError`."""
    if settings.restore.plan is None:
        return None
    path = project_file(settings.restore.plan)
    return load_plan_file(path, settings, stack, settings.restore.plan)


def load_plan_file(path: Path, settings: Settings, stack: str, where: str) -> RestorePlan:
    try:
        size = path.stat().st_size
        text = "" if size > MAX_PLAN_BYTES else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise RestorePlanError([_problem(f"{where} cannot be read ({error.__class__.__name__}).", _REPLAN)]) from None
    if size > MAX_PLAN_BYTES:
        raise RestorePlanError(
            [_problem(f"{where} is larger than {MAX_PLAN_BYTES // 1024**2} MiB, far more than any plan.", _REPLAN)]
        )
    plan = parse_plan(text, where)
    problems = check_plan(plan, settings, stack, where)
    if problems:
        raise RestorePlanError(problems)
    return plan


# --- objects --------------------------------------------------------------------------------------


def requested_size(size_bytes: int) -> str:
    """What a claim asks for: the volume's size rounded down to whole GiB (Trident refuses a claim larger
    than the volume it imports, and a static volume binds only a claim it can hold); exact bytes under 1 GiB."""
    return f"{size_bytes // GIB}Gi" if size_bytes >= GIB else str(size_bytes)


def static_volume_name(claim: str) -> str:
    return f"dsaas-home-{claim}"


def _claim_metadata(home: PlannedHome, extra_annotations: dict[str, Any]) -> dict[str, Any]:
    identity = claim_for_user(home.user)
    return {
        "name": identity.name,
        "namespace": HUB_NAMESPACE,
        "labels": {**identity.labels, RESTORED_LABEL: home.driver.value},
        "annotations": {**identity.annotations, **WAIT_FOR_BOUND, **extra_annotations},
    }


def render_import_claim(home: PlannedHome, backend_uuid: Any) -> dict[str, Any]:
    """An ontap-nas home: the claim Trident imports the FlexVol through (managed import)."""
    assert home.volume is not None
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _claim_metadata(home, {IMPORT_ORIGINAL_NAME: home.volume, IMPORT_BACKEND_UUID: backend_uuid}),
        "spec": {
            "accessModes": list(HOME_ACCESS_MODES),
            "storageClassName": HOMES_CLASS,
            "resources": {"requests": {"storage": requested_size(home.size_bytes)}},
        },
    }


def render_static_volume(home: PlannedHome, settings: Settings) -> dict[str, Any]:
    """An ontap-nas-economy home: the qtree as a retained NFS volume, reserved for its claim."""
    assert home.qtree is not None and home.data_lif is not None
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": static_volume_name(home.claim),
            "labels": {RESTORED_LABEL: home.driver.value},
            "annotations": {"dsaas.io/qtree": f"{home.qtree.flexvol}/{home.qtree.name}"},
        },
        "spec": {
            "capacity": {"storage": requested_size(home.size_bytes)},
            "accessModes": list(HOME_ACCESS_MODES),
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": STATIC_CLASS,
            "mountOptions": settings.storage.nfs_mount_options.split(","),
            "nfs": {"server": home.data_lif, "path": home.qtree.junction_path},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": HUB_NAMESPACE,
                "name": home.claim,
            },
        },
    }


def render_static_claim(home: PlannedHome) -> dict[str, Any]:
    """The claim of an ontap-nas-economy home, bound to its static volume by name."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _claim_metadata(home, {}),
        "spec": {
            "accessModes": list(HOME_ACCESS_MODES),
            "storageClassName": STATIC_CLASS,
            "volumeName": static_volume_name(home.claim),
            "resources": {"requests": {"storage": requested_size(home.size_bytes)}},
        },
    }


def export_policy_name(settings: Settings) -> str:
    return RESTORED_EXPORT_POLICY.format(prefix=settings.storage.storage_prefix)


def render_export_access(plan: RestorePlan, settings: Settings) -> dict[str, Any] | None:
    """What `components.ontap_exports` makes ONTAP grant (None when the plan has no economy home): the
    program's export policy admitting the stack's export CIDRs (`dsaas:storage.exportCidrs`, else the node
    subnet: a replaced node in them keeps access), assigned to every restored qtree and its FlexVol."""
    qtrees = sorted({(home.qtree.flexvol, home.qtree.name) for home in plan.homes if home.qtree is not None})
    if not qtrees:
        return None
    return {
        "svm": settings.storage.ontap.svm,
        "policy": export_policy_name(settings),
        "clients": [str(cidr) for cidr in settings.export_cidrs],
        "qtrees": [{"flexvol": flexvol, "qtree": name} for flexvol, name in qtrees],
    }


__all__ = [
    "IMPORT_BACKEND_UUID",
    "IMPORT_ORIGINAL_NAME",
    "PLAN_FORMAT",
    "REFUSED_WHATEVER_THE_DECISION",
    "ClaimIdentity",
    "PlannedHome",
    "RestorePlan",
    "RestorePlanError",
    "SkippedHome",
    "UndecidedHome",
    "check_plan",
    "claim_for_user",
    "export_policy_name",
    "load_plan",
    "load_plan_file",
    "parse_plan",
    "render_export_access",
    "render_import_claim",
    "render_static_claim",
    "render_static_volume",
    "requested_size",
]
