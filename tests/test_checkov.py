"""A security scanner nobody here wrote (checkov, offline) over every object Helm renders for each stack,
and every object the program writes itself (CronJobs, Roles, StorageClasses, restored volumes), listed
under the release name `program`.

Every finding is either fixed through our values or listed with its reason in tests/checkov-baseline.yaml;
a finding that is not listed fails, and so does a listed one no stack produces any more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components import restore_render
from config.storage import NasDriver
from tests.conftest import ROOT_DIR, STACKS
from tests.test_plan_inputs import stack_settings
from tools.offline import charts
from tools.offline.mockgraph import Graph

BASELINE = ROOT_DIR / "tests" / "checkov-baseline.yaml"


def baseline_entries(document: dict[str, Any]) -> dict[tuple[str, str, str], str]:
    """(check, release, object) → the reason it stands."""
    entries = {}
    for check, entry in document.items():
        for release, objects in entry["objects"].items():
            reasons = objects if isinstance(objects, dict) else dict.fromkeys(objects, entry.get("reason"))
            for resource, reason in reasons.items():
                assert isinstance(reason, str) and len(reason) > 20, f"{check} {release} {resource}: give a reason"
                entries[(check, release, resource)] = reason
    return entries


def restored_objects() -> list[dict[str, Any]]:
    """What a restore plan adds to prod (tests/fixtures' plans, two homes per driver): the stacks' own
    files carry no plan, so the graph alone would never show these to the scanner."""
    objects: list[dict[str, Any]] = []
    for driver in (NasDriver.ONTAP_NAS, NasDriver.ONTAP_NAS_ECONOMY):
        settings = stack_settings(driver.value)
        path = ROOT_DIR / "tests" / "fixtures" / f"restore.prod.{driver.value}.yaml"
        plan = restore_render.load_plan_file(path, settings, "prod", path.name)
        for home in plan.homes[:2]:
            if home.driver is NasDriver.ONTAP_NAS:
                objects.append(restore_render.render_import_claim(home, "6e1f7c2a-0000-4000-8000-000000000000"))
            else:
                objects += [
                    restore_render.render_static_volume(home, settings),
                    restore_render.render_static_claim(home),
                ]
    return objects


@pytest.fixture(scope="module")
def findings(graphs: dict[str, Graph], tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[charts.Finding]]:
    rendered = {stack: charts.render_graph(graphs[stack]) for stack in STACKS}
    program = {stack: charts.program_objects(graphs[stack]) for stack in STACKS}
    program["prod"] += restored_objects()
    return charts.checkov(rendered, tmp_path_factory.mktemp("checkov"), program)


def test_every_checkov_finding_is_fixed_or_justified(findings: dict[str, list[charts.Finding]]) -> None:
    baseline = baseline_entries(yaml.safe_load(BASELINE.read_text()))
    seen = {(f.check, f.release, f.resource) for stack in STACKS for f in findings[stack]}
    unexplained = sorted(
        f"{stack}: {f.check} ({f.title}) on {f.release}: {f.resource}"
        for stack in STACKS
        for f in findings[stack]
        if (f.check, f.release, f.resource) not in baseline
    )
    assert unexplained == [], (
        "\n".join(unexplained) + "\n" + "fix these through our values, or justify each in tests/checkov-baseline.yaml"
    )
    stale = sorted(" ".join(key) for key in set(baseline) - seen)
    assert stale == [], "no stack produces these any more: remove them from tests/checkov-baseline.yaml"


def test_checkov_runs_the_kubernetes_checks(findings: dict[str, list[charts.Finding]], tmp_path: Path) -> None:
    # It really scanned: the charts' upstream pods are flagged for digests (tags are pinned instead) ...
    assert any(f.check == "CKV_K8S_43" and f.resource == "Deployment.jupyterhub.hub" for f in findings["prod"])
    # ... and what our values fix is not flagged: requests on the hub, no token in the proxy, no default namespace.
    flagged = {(f.check, f.resource) for stack in STACKS for f in findings[stack]}
    assert ("CKV_K8S_10", "Deployment.jupyterhub.hub") not in flagged
    assert ("CKV_K8S_38", "Deployment.jupyterhub.proxy") not in flagged
    assert not [f for stack in STACKS for f in findings[stack] if f.check == "CKV_K8S_21"]


def test_checkov_scans_the_programs_own_objects(findings: dict[str, list[charts.Finding]]) -> None:
    """The backup CronJobs are the program's, not a chart's: scanned as the API server receives them (the
    recording's float numbers made ints again, so runAsUser 65534 counts as the high UID it is)."""
    program = {(f.check, f.resource) for f in findings["prod"] if f.release == charts.PROGRAM}
    assert ("CKV_K8S_43", "CronJob.velero.dsaas-inventory") in program
    assert ("CKV_K8S_40", "CronJob.velero.dsaas-inventory") not in program
