"""The disaster drill under mocks: a prod-like stack rebuilt with `dsaas:restore.plan` claims every planned
user's old home, under the name KubeSpawner 7 computes, from the rebuilt backend, before the hub release.

The plans are tests/fixtures/restore.prod.<driver>.yaml: 50 users with names KubeSpawner has to slug
(capitals, dots, `@`, non-ASCII, very long), the same users on each driver.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from components import restore_render as render
from config import versions
from config.loader import StackSettingsError
from tests.conftest import ROOT_DIR, load_settings
from tests.dr_inventory import economy_flexvol
from tests.test_graph import secrets_in_ids
from tests.test_hub_values import CHART_DIR, _merge, _validate, hub_values
from tools.lab.stack_hub import project_copy
from tools.offline.mockgraph import (
    Graph,
    RecordedResource,
    is_secret,
    kubernetes_objects,
    plain_strings,
    run_program,
    unwrap,
)

DRIVERS = ("ontap-nas", "ontap-nas-economy")
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
PV = "kubernetes:core/v1:PersistentVolume"
BACKEND = "kubernetes:trident.netapp.io/v1:TridentBackendConfig"
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def fixture_path(driver: str) -> str:
    return f"tests/fixtures/restore.prod.{driver}.yaml"


def fixture_plan(driver: str) -> dict[str, Any]:
    plan: dict[str, Any] = yaml.safe_load((ROOT_DIR / fixture_path(driver)).read_text(encoding="utf-8"))
    return plan


def drill_values(values: dict[str, Any], driver: str, plan: str | None = None) -> dict[str, Any]:
    values["dsaas:restore"] = {"plan": plan or fixture_path(driver)}
    values["dsaas:storage"]["homesDriver"] = driver
    if driver == "ontap-nas-economy":
        values["dsaas:storage"]["snapshots"] = False  # qtrees have no CSI snapshots
    return values


def relative_to_project(path: Path) -> str:
    """A plan written by a test, copied into the project's git-ignored test-artifacts (dsaas:restore.plan names
    files inside the project only) and named as the setting names it."""
    return project_copy(path, path.name)


@pytest.fixture(scope="module")
def drills() -> dict[str, Graph]:
    from tools.offline.mockgraph import read_stack_values

    return {driver: run_program("prod", drill_values(read_stack_values("prod"), driver)) for driver in DRIVERS}


def restored(graph: Graph, type_: str) -> list[RecordedResource]:
    component = graph.by_name("restore")
    return [r for r in graph.of_type(type_) if r.parent == component.urn]


@pytest.mark.parametrize("driver", DRIVERS)
def test_the_fixture_names_claims_as_kubespawner_computes_them(driver: str) -> None:
    homes = fixture_plan(driver)["homes"]
    assert len(homes) == 50 and len({h["user"] for h in homes}) == 50
    for home in homes:
        assert home["claim"] == render.claim_for_user(home["user"]).name
        assert DNS_LABEL.fullmatch(home["claim"]), home["claim"]
    assert len({h["claim"] for h in homes}) == 50  # slugs keep even Alice/alice/ALICE apart


def test_kubespawner_names_are_its_own() -> None:
    """Spot checks of KubeSpawner 7's 'safe' scheme: plain names stay, others get a hash suffix."""
    assert render.claim_for_user("alice").name == "claim-alice"
    tricky = render.claim_for_user("Alice.Smith@example.org").name
    assert tricky.startswith("claim-alice-smith-example-org---") and tricky != "claim-alice.smith@example.org"
    long = render.claim_for_user("x" * 200)
    assert len(long.name) <= 63
    identity = render.claim_for_user("Jürgen")
    assert identity.annotations["hub.jupyter.org/username"] == "Jürgen"
    assert identity.labels["component"] == "singleuser-storage"
    assert identity.labels["app.kubernetes.io/managed-by"] == "kubespawner"


@pytest.mark.parametrize("driver", DRIVERS)
def test_every_planned_user_gets_a_claim_named_as_kubespawner_computes(driver: str, drills: dict[str, Graph]) -> None:
    graph = drills[driver]
    claims = restored(graph, PVC)
    expected = {h["claim"]: h for h in fixture_plan(driver)["homes"]}
    names = {unwrap(c.inputs["metadata"])["name"]: c for c in claims}
    assert set(names) == set(expected)
    homes_class = graph.by_name("storage-class-dsaas-homes")
    backend = graph.by_name(f"storage-backend-{driver}")
    namespace = graph.by_name("hub-namespace")
    for name, claim in names.items():
        metadata = unwrap(claim.inputs["metadata"])
        home = expected[name]
        assert metadata["namespace"] == "jupyterhub"
        assert metadata["annotations"]["hub.jupyter.org/username"] == home["user"]
        assert metadata["annotations"]["pulumi.com/waitFor"] == "jsonpath={.status.phase}=Bound"
        assert metadata["labels"]["component"] == "singleuser-storage"
        assert claim.retain_on_delete, name
        assert {homes_class.urn, backend.urn, namespace.urn} <= set(claim.dependencies)
        requested = unwrap(claim.inputs["spec"])["resources"]["requests"]["storage"]
        assert _bytes(requested) <= home["sizeBytes"]


@pytest.mark.parametrize("driver", DRIVERS)
def test_all_restored_objects_exist_before_the_hub_release(driver: str, drills: dict[str, Graph]) -> None:
    graph = drills[driver]
    release = graph.by_name("hub-release")
    objects = restored(graph, PVC) + restored(graph, PV)
    assert len(objects) == (50 if driver == "ontap-nas" else 100)
    missing = [r.name for r in objects if r.urn not in release.dependencies]
    assert missing == []


def test_import_claims_name_the_volume_and_the_rebuilt_backends_uuid(drills: dict[str, Graph]) -> None:
    graph = drills["ontap-nas"]
    backend = graph.by_name("storage-backend-ontap-nas")
    uuid = unwrap(backend.outputs["status"])["backendInfo"]["backendUUID"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", uuid)
    volumes = {h["claim"]: h["volume"] for h in fixture_plan("ontap-nas")["homes"]}
    for claim in restored(graph, PVC):
        metadata = unwrap(claim.inputs["metadata"])
        assert metadata["annotations"][render.IMPORT_ORIGINAL_NAME] == volumes[metadata["name"]]
        assert metadata["annotations"][render.IMPORT_BACKEND_UUID] == uuid
        assert backend.urn in claim.property_dependencies["metadata"]  # from the backend's status, not typed
        spec = unwrap(claim.inputs["spec"])
        assert spec["storageClassName"] == "dsaas-homes" and "volumeName" not in spec
    assert restored(graph, PV) == []  # Trident makes the PVs of what it imports


def test_in_a_preview_the_backend_uuid_is_unknown(stack_values: Callable[[str], dict[str, Any]]) -> None:
    graph = run_program("prod", drill_values(stack_values("prod"), "ontap-nas"), preview=True)
    claim = restored(graph, PVC)[0]
    assert "status" not in graph.by_name("storage-backend-ontap-nas").outputs
    uuid = claim.inputs["metadata"]["annotations"][render.IMPORT_BACKEND_UUID]
    assert not isinstance(uuid, str)  # unknown until Trident has written the backend's status


def test_economy_homes_are_static_nfs_volumes_bound_to_their_claims(drills: dict[str, Graph]) -> None:
    graph = drills["ontap-nas-economy"]
    settings = load_settings("prod")
    homes = {h["claim"]: h for h in fixture_plan("ontap-nas-economy")["homes"]}
    volumes = {unwrap(v.inputs["metadata"])["name"]: v for v in restored(graph, PV)}
    for claim in restored(graph, PVC):
        metadata, spec = unwrap(claim.inputs["metadata"]), unwrap(claim.inputs["spec"])
        home = homes[metadata["name"]]
        volume = volumes[spec["volumeName"]]
        pv = unwrap(volume.inputs["spec"])
        assert pv["nfs"] == {"server": home["dataLif"], "path": home["qtree"]["junctionPath"]}
        assert pv["claimRef"]["name"] == metadata["name"] and pv["claimRef"]["namespace"] == "jupyterhub"
        assert pv["persistentVolumeReclaimPolicy"] == "Retain" and volume.retain_on_delete
        assert pv["storageClassName"] == spec["storageClassName"] == ""  # no provisioner, no default class
        assert pv["mountOptions"] == settings.storage.nfs_mount_options.split(",")
        assert pv["capacity"]["storage"] == spec["resources"]["requests"]["storage"]
        assert render.IMPORT_ORIGINAL_NAME not in metadata["annotations"]
        assert volume.urn in claim.dependencies


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("minor", versions.SUPPORTED_KUBERNETES_MINORS)
def test_restored_objects_are_valid_kubernetes(driver: str, minor: str, drills: dict[str, Graph]) -> None:
    objects = [
        obj for r in restored(drills[driver], PVC) + restored(drills[driver], PV) for obj in kubernetes_objects(r)
    ]
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, f"{minor}.0", strict=True)


@pytest.mark.parametrize("driver", DRIVERS)
def test_hub_values_still_pass_the_chart_schema(driver: str, drills: dict[str, Graph]) -> None:
    schema = yaml.safe_load((CHART_DIR / "values.schema.yaml").read_text())
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert _validate(schema, _merge(defaults, hub_values(drills[driver]))) == []


@pytest.mark.parametrize("driver", DRIVERS)
def test_the_drill_leaks_no_secret(driver: str, drills: dict[str, Graph]) -> None:
    graph = drills[driver]
    for resource in graph.resources:
        for text in plain_strings(resource.inputs):
            assert not [s for s in graph.secret_values if s in text], resource.name
    assert secrets_in_ids(graph) == []


# --- bad plans -----------------------------------------------------------------------------------


def _plan_error(tmp_path: Path, values: dict[str, Any], edit: Callable[[dict[str, Any]], Any] | str) -> str:
    path = tmp_path / "restore.prod.yaml"
    if isinstance(edit, str):
        path.write_text(edit, encoding="utf-8")
    else:
        plan = fixture_plan(values["dsaas:storage"]["homesDriver"])
        edit(plan)
        path.write_text(yaml.safe_dump(plan, allow_unicode=True), encoding="utf-8")
    values["dsaas:restore"] = {"plan": relative_to_project(path)}
    with pytest.raises(StackSettingsError) as caught:
        run_program("prod", values)
    assert set(caught.value.keys) == {"dsaas:restore.plan"}
    return str(caught.value)


def _set_home(index: int, **fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda plan: plan["homes"][index].update(fields)


BAD_PLANS: dict[str, tuple[str, Callable[[dict[str, Any]], Any] | str, str]] = {
    "not yaml": ("ontap-nas", "homes: [unclosed", "is not valid YAML"),
    "not a mapping": ("ontap-nas", "- just a list\n", "is not a restore plan"),
    "unknown format": ("ontap-nas", lambda p: p.update(format="dsaas-restore-plan/9"), "this program reads"),
    "missing size": ("ontap-nas", lambda p: p["homes"][0].pop("sizeBytes"), "sizeBytes"),
    "nas home without volume": ("ontap-nas", _set_home(1, volume=None), "needs `volume`"),
    "economy home without qtree": ("ontap-nas-economy", _set_home(2, qtree=None), "needs `qtree`"),
    "claim not kubespawner's": ("ontap-nas", _set_home(3, claim="claim-ALICE.SMITH"), "KubeSpawner 7 computes"),
    "unresolved warning": (
        "ontap-nas",
        _set_home(4, warnings=["SnapMirror destination (DP): break the mirror first"]),
        "unresolved warnings",
    ),
    # An economy home on an ontap-nas stack is a static volume and loads (issue 21, item 6); an ontap-nas FlexVol
    # on an economy stack has no retained ontap-nas class to be imported through.
    "driver mismatch": (
        "ontap-nas-economy",
        _set_home(5, driver="ontap-nas", volume="dsaas_jupyterhub_claim_five_0a1b2", qtree=None, dataLif=None),
        "homesDriver",
    ),
    "other stack": ("ontap-nas", lambda p: p.update(stack="dev"), "planned for stack 'dev'"),
    "one volume twice": ("ontap-nas", lambda p: p["homes"][7].update(volume=p["homes"][6]["volume"]), "both"),
}


@pytest.mark.parametrize("case", sorted(BAD_PLANS))
def test_a_bad_plan_is_a_named_settings_problem_before_any_resource(
    case: str, tmp_path: Path, stack_values: Callable[[str], dict[str, Any]]
) -> None:
    driver, edit, expected = BAD_PLANS[case]
    message = _plan_error(tmp_path, drill_values(stack_values("prod"), driver), edit)
    assert expected in message and "Fix:" in message, message
    assert "Traceback" not in message


# --- scale ---------------------------------------------------------------------------------------

SCALE_USERS = 10_000


def _economy_plan(users: int) -> dict[str, Any]:
    homes: list[dict[str, Any]] = []
    for i in range(users):
        user = f"Researcher.{i:05d}@dc.example.org" if i % 2 else f"user{i:05d}"
        # Named as Trident names the stack's economy FlexVols and qtrees (the plan check refuses other names).
        flexvol = economy_flexvol("dsaasprod", i // 200)
        qtree = f"dsaasprod_q{i:05d}"
        homes.append(
            {
                "user": user,
                "claim": render.claim_for_user(user).name,
                "driver": "ontap-nas-economy",
                "volume": None,
                "qtree": {"flexvol": flexvol, "name": qtree, "junctionPath": f"/{flexvol}/{qtree}"},
                "dataLif": "10.40.8.20",
                "sizeBytes": 10 * render.GIB,
                "warnings": [],
            }
        )
    source = {"kind": "s3", "location": "s3://dsaas-prod-backups/inventory/x.json", "written": "2026-12-01T02:15:00Z"}
    return {"format": render.PLAN_FORMAT, "stack": "prod", "source": source, "homes": homes, "warnings": []}


@pytest.mark.slow
def test_ten_thousand_economy_homes_get_through_the_preview(
    tmp_path: Path, stack_values: Callable[[str], dict[str, Any]]
) -> None:
    path = tmp_path / "restore.prod.yaml"
    path.write_text(yaml.safe_dump(_economy_plan(SCALE_USERS)), encoding="utf-8")
    values = drill_values(stack_values("prod"), "ontap-nas-economy", relative_to_project(path))
    started = time.monotonic()
    graph = run_program("prod", values, preview=True)
    seconds = time.monotonic() - started
    print(f"{SCALE_USERS} economy homes: {len(graph.resources)} resources in {seconds:.1f} s")
    claims, volumes = restored(graph, PVC), restored(graph, PV)
    assert len(claims) == len(volumes) == SCALE_USERS
    release_dependencies = set(graph.by_name("hub-release").dependencies)
    assert all(r.urn in release_dependencies for r in claims + volumes)
    for claim in claims[:: SCALE_USERS // 50]:  # a sample: every object is rendered by the same code
        kubernetes_validate.validate(kubernetes_objects(claim)[0], f"{versions.SUPPORTED_KUBERNETES_MINORS[-1]}.0")


def _bytes(quantity: str) -> int:
    return int(quantity[:-2]) * render.GIB if quantity.endswith("Gi") else int(quantity)


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_restore_replaces_the_hub_cookie_secret(
    driver: str, drills: dict[str, Graph], graphs: dict[str, Graph]
) -> None:
    # A cookie signed with the secret of before the restore (which an old backup may hold) must not verify.
    written = fixture_plan(driver)["source"]["written"]
    restored_secret = drills[driver].by_name("hub-cookie-secret")
    assert restored_secret.inputs["keepers"] == {"restorePlanWritten": written}
    assert "keepers" not in graphs["prod"].by_name("hub-cookie-secret").inputs  # no restore: sessions stay


EXPORT_STEP = "command:local:Command"


def test_economy_volumes_wait_for_the_step_that_lets_the_nodes_in(drills: dict[str, Graph]) -> None:
    """Issue 21, item 1: without it the claims bind and every restored user's server fails to mount."""
    graph = drills["ontap-nas-economy"]
    step = graph.by_name("restore-export-access")
    assert step.type == EXPORT_STEP and step.parent == graph.by_name("restore").urn
    settings = load_settings("prod")
    plan = render.RestorePlan.model_validate(fixture_plan("ontap-nas-economy"))
    assert json.loads(unwrap(step.inputs["stdin"])) == render.render_export_access(plan, settings)
    assert "components.ontap_exports" in step.inputs["create"]
    environment = unwrap(step.inputs["environment"])
    assert environment["DSAAS_ONTAP_HOST"] == str(settings.storage.ontap.management_lif)
    # The credentials travel as secrets in its environment, never on the command line it runs.
    credentials = {environment["DSAAS_ONTAP_USERNAME"], environment["DSAAS_ONTAP_PASSWORD"]}
    assert is_secret(step.inputs["environment"]) or all(
        is_secret(step.inputs["environment"][k]) for k in ("DSAAS_ONTAP_USERNAME", "DSAAS_ONTAP_PASSWORD")
    )
    assert not credentials & set(plain_strings(step.inputs))
    assert not any(c in step.inputs["create"] for c in credentials)
    volumes = restored(graph, PV)
    assert volumes and all(step.urn in v.dependencies for v in volumes)
    # It needs only ONTAP: it runs at the start of `pulumi up`, so wrong ONTAP data fails in seconds.
    assert step.dependencies == []


def test_flexvol_imports_need_no_export_step(drills: dict[str, Graph]) -> None:
    assert [r for r in drills["ontap-nas"].resources if r.name == "restore-export-access"] == []
