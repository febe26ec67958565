"""A security scanner nobody here wrote (checkov, offline) over every object Helm renders for each stack.

Every finding is either fixed through our values or listed with its reason in tests/checkov-baseline.yaml;
a finding that is not listed fails, and so does a listed one no stack produces any more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT_DIR, STACKS
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


@pytest.fixture(scope="module")
def findings(graphs: dict[str, Graph], tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[charts.Finding]]:
    rendered = {stack: charts.render_graph(graphs[stack]) for stack in STACKS}
    return charts.checkov(rendered, tmp_path_factory.mktemp("checkov"))


def test_every_checkov_finding_is_fixed_or_justified(findings: dict[str, list[charts.Finding]]) -> None:
    baseline = baseline_entries(yaml.safe_load(BASELINE.read_text()))
    seen = {(f.check, f.release, f.resource) for stack in STACKS for f in findings[stack]}
    unexplained = sorted(
        f"{stack}: {f.check} ({f.title}) on {f.release}: {f.resource}"
        for stack in STACKS
        for f in findings[stack]
        if (f.check, f.release, f.resource) not in baseline
    )
    assert unexplained == [], "fix these through our values, or justify each in tests/checkov-baseline.yaml"
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
