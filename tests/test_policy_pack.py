"""The policy pack end to end: the real program under mocks, the real pack as a subprocess, real gRPC.

Each variant is a stack file edit (or, where the program cannot produce the unsafe graph, an edit of
the recorded graph, said so below); the pack must fire exactly the policy the variant breaks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT_DIR
from tools.offline.mockgraph import Graph, read_stack_values, run_program
from tools.offline.policy_runner import PackResult, PolicyConfigError, format_result, run_pack

DEV_CONFIG = json.loads((ROOT_DIR / "config" / "policy-pack.dev.json").read_text())


def lab_control_planes(count: int) -> Callable[[dict[str, Any]], None]:
    def edit(values: dict[str, Any]) -> None:
        values["dsaas:highAvailability"] = False
        values["dsaas:nodes"]["controlPlane"].update(count=count, addresses=[f"10.40.0.{11 + i}" for i in range(count)])

    return edit


# variant → (stack file edit, policy it must fire, words its message must contain)
VARIANTS: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    "vcenter-unverified": (
        lambda v: v["dsaas:vsphere"].update(allowUnverifiedSsl=True),
        "vcenter-certificate-verified",
        "allowUnverifiedSsl is true",
    ),
    "2-masters": (lab_control_planes(2), "control-plane-ha", "2 control-plane VM(s)"),
    "4-masters": (lab_control_planes(4), "control-plane-ha", "4 members tolerate 1 failure, the same as 3"),
    "ldap-insecure": (
        lambda v: v["dsaas:hub"]["ldap"].update(tlsStrategy="insecure"),
        "ldap-over-tls",
        "tls_strategy is 'insecure'",
    ),
    "homes-delete": (
        lambda v: v["dsaas:storage"].update(homesReclaimPolicy="Delete"),
        "user-data-retained",
        "reclaimPolicy Delete",
    ),
}


def variant_graph(edit: Callable[[dict[str, Any]], None]) -> Graph:
    values = read_stack_values("prod")
    edit(values)
    return run_program("prod", values)


def assert_only(result: PackResult, policy: str, words: str) -> None:
    assert result.fired("mandatory") == {policy}, result.violations
    (violation,) = [v for v in result.violations if v.policy == policy]
    assert words in violation.detail and "Fix:" in violation.detail
    assert violation.urn, "each violation names the resource it is about"


def test_prod_has_no_violation(graphs: dict[str, Graph]) -> None:
    result = run_pack(graphs["prod"])
    assert result.fired() == set() and not result.has_mandatory
    assert result.name == "dsaas-guardrails" and result.version == "1.0.0"
    assert result.levels == result.defaults
    assert {name for name, level in result.defaults.items() if level == "advisory"} == {
        "idle-culling",
        "singleuser-network-policy",
        "image-prepuller",
        "backups-configured",
    }


LAB_DOWNGRADED = {"control-plane-ha", "vcenter-certificate-verified"}


def test_dev_is_a_lab_only_through_the_pack_config(graphs: dict[str, Graph]) -> None:
    strict = run_pack(graphs["dev"])
    assert strict.fired("mandatory") == LAB_DOWNGRADED, strict.violations
    (quorum,) = [v for v in strict.violations if v.policy == "control-plane-ha"]
    assert "1 control-plane VM(s)" in quorum.detail
    (tls,) = [v for v in strict.violations if v.policy == "vcenter-certificate-verified"]
    assert "allowUnverifiedSsl is true" in tls.detail and tls.urn.endswith("::vsphere")
    lab = run_pack(graphs["dev"], policy_config=DEV_CONFIG)
    assert not lab.has_mandatory
    assert lab.fired("advisory") == LAB_DOWNGRADED  # downgraded, still reported
    for name in LAB_DOWNGRADED:
        assert lab.levels[name] == "advisory" and lab.defaults[name] == "mandatory"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_fires_exactly_the_policy_it_breaks(variant: str) -> None:
    edit, policy, words = VARIANTS[variant]
    assert_only(run_pack(variant_graph(edit)), policy, words)


def test_a_highly_available_stack_without_backups_is_told_not_stopped() -> None:
    result = run_pack(variant_graph(lambda v: v["dsaas:backup"].update(enabled=False)))
    assert result.fired() == {"backups-configured"} and not result.has_mandatory, result.violations


def test_no_anti_affinity_rule(graphs: dict[str, Graph]) -> None:
    """The program always creates the rule for 2+ control planes; the unsafe graph is the recorded
    prod graph with the rule left out of the request, as if someone deleted it from the program."""
    result = run_pack(graphs["prod"], drop=["nodes-control-plane-anti-affinity"])
    assert_only(result, "control-plane-anti-affinity", "no DRS anti-affinity rule")


def test_password_in_clear(graphs: dict[str, Graph]) -> None:
    """The program never does this; strip the engine's secret marker from the recorded request."""
    graph = run_program("prod")
    provider = graph.by_name("vsphere")
    provider.inputs["password"] = provider.inputs["password"]["value"]
    assert_only(run_pack(graph), "secrets-are-secret", "receives password as plain text")


def test_plain_http_open_to_everyone() -> None:
    """The settings refuse offload without dsaas:hub.frontProxyCidrs; strip the ranges from the recorded
    dev graph, as if someone removed them from the renderer."""
    graph = run_program("dev")
    values = graph.by_name("hub-release").inputs["values"]["value"]
    del values["proxy"]["service"]["loadBalancerSourceRanges"]
    result = run_pack(graph, policy_config=DEV_CONFIG)
    assert_only(result, "offload-source-ranges", "admits every address on the network")


def test_image_latest() -> None:
    """The settings refuse a moving tag with the same rule (config/pins.py); put one into the recorded
    chart values, as if the program bypassed the settings."""
    graph = run_program("prod")
    values = graph.by_name("hub-release").inputs["values"]["value"]
    values["singleuser"]["profileList"][-1]["kubespawner_override"]["image"] = "quay.io/jupyter/scipy-notebook:latest"
    assert_only(
        run_pack(graph),
        "pinned-versions",
        "quay.io/jupyter/scipy-notebook:latest (profile 'r-statistics') uses the moving tag 'latest'",
    )


def test_culling_off_is_only_advisory() -> None:
    graph = variant_graph(lambda v: v["dsaas:hub"]["culling"].update(enabled=False))
    result = run_pack(graph)
    assert not result.has_mandatory and result.fired() == {"idle-culling"}


def test_config_cannot_lower_the_quorum_threshold(graphs: dict[str, Graph]) -> None:
    with pytest.raises(PolicyConfigError, match="below the minimum 3"):
        run_pack(graphs["dev"], policy_config={"control-plane-ha": {"minControlPlanes": 1}})
    with pytest.raises(PolicyConfigError, match="unknown policies: no-such-rule"):
        run_pack(graphs["dev"], policy_config={"no-such-rule": "advisory"})


# --- the README's offline command ------------------------------------------------------------------


def preview(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.preview", *args], cwd=ROOT_DIR, capture_output=True, text=True, check=False
    )


def test_preview_with_the_pack_passes_prod() -> None:
    result = preview("prod", "--policy-pack", "policies")
    assert result.returncode == 0, result.stderr
    assert "Policies: dsaas-guardrails v1.0.0: no violations" in result.stdout


def test_preview_with_the_pack_stops_a_mandatory_violation(tmp_path: Path) -> None:
    values = read_stack_values("prod")
    lab_control_planes(2)(values)
    (tmp_path / "Pulumi.lab2.yaml").write_text(yaml.safe_dump({"config": values}))
    result = preview("lab2", "--config-dir", str(tmp_path), "--policy-pack", "policies")
    assert result.returncode == 1
    assert "Policy Violations:" in result.stdout
    assert (
        "    [mandatory]  dsaas-guardrails v1.0.0  control-plane-ha  (nodes-dsaas-prod-cp-1: VirtualMachine)"
        in result.stdout
    )
    assert "mandatory policy violations" in result.stderr


def test_preview_with_the_lab_config_announces_the_downgrade() -> None:
    result = preview("dev", "--policy-pack", "policies", "--policy-pack-config", "config/policy-pack.dev.json")
    assert result.returncode == 0, result.stderr
    for name in LAB_DOWNGRADED:
        assert f"note: policy {name} is advisory by the policy pack config (the pack says mandatory)" in result.stdout
        assert f"[advisory]  dsaas-guardrails v1.0.0  {name}" in result.stdout


def test_a_config_that_changes_a_rule_setting_is_announced(tmp_path: Path) -> None:
    """Emptying `forbiddenTags` admits no moving tag (the pin forms still apply), but it changes the rule
    the team reviewed, so it is announced on every run like a lowered enforcement level."""
    config = tmp_path / "pack.json"
    config.write_text(json.dumps({"pinned-versions": {"forbiddenTags": []}}))
    result = preview("prod", "--policy-pack", "policies", "--policy-pack-config", str(config))
    assert result.returncode == 0, result.stderr
    assert (
        "note: policy pinned-versions setting forbiddenTags is [] by the policy pack config "
        "(the pack says ['latest', 'stable', 'main', 'master'])" in result.stdout
    )


def test_a_changed_threshold_is_announced_as_written() -> None:
    result = PackResult(
        name="dsaas-guardrails",
        version="1.0.0",
        levels={"control-plane-ha": "mandatory"},
        defaults={"control-plane-ha": "mandatory"},
        violations=[],
        settings={"control-plane-ha": {"minControlPlanes": 5}},
        default_settings={"control-plane-ha": {"minControlPlanes": 3}},
    )
    assert format_result(result).splitlines()[0] == (
        "note: policy control-plane-ha setting minControlPlanes is 5 by the policy pack config (the pack says 3)"
    )
