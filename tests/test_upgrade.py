"""Kubernetes upgrades: the version moves allowed, the plan's order, the pins' support ranges, and the program
reading its own previous version through a StackReference under the offline mocks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.sync_await import _sync_await

from config import versions
from config.settings import SettingsError
from config.upgrade import UpgradeCommand, UpgradeError, batches, upgrade_plan
from tests.conftest import load_settings
from tools.offline.mockgraph import DsaasMocks, run_program, unwrap
from tools.offline.preview import main as preview_main


def test_a_first_up_and_an_unchanged_version_plan_nothing() -> None:
    settings = load_settings("prod")
    assert not upgrade_plan(None, "1.35.1", settings).upgrading
    assert not upgrade_plan("1.35.1", "1.35.1", settings).upgrading


def test_a_skipped_minor_names_the_version_to_go_through_first() -> None:
    with pytest.raises(UpgradeError) as caught:
        upgrade_plan("1.33.2", "1.35.1", load_settings("prod"))
    message = str(caught.value)
    assert "1.33.2 → 1.35.1 skips 1.34" in message
    assert "set dsaas:kubernetesVersion to 1.34.x first" in message
    assert caught.value.keys == ["dsaas:kubernetesVersion"]


@pytest.mark.parametrize("previous", ["1.35.2", "1.36.0"])
def test_a_downgrade_is_refused(previous: str) -> None:
    with pytest.raises(UpgradeError, match="is a downgrade"):
        upgrade_plan(previous, "1.35.1", load_settings("prod"))


def test_a_target_a_pinned_component_does_not_support_names_the_pin() -> None:
    # Calico v3.31 is tested up to 1.35 (config/versions.py); 1.36 needs a newer chart first.
    with pytest.raises(UpgradeError) as caught:
        upgrade_plan("1.35.1", "1.36.0", load_settings("prod"))
    assert "Calico" in str(caught.value) and "CALICO_CHART_VERSION" in str(caught.value)


def test_every_pin_supports_the_default_version() -> None:
    minor = ".".join(versions.DEFAULT_KUBERNETES_VERSION.split(".")[:2])
    assert all(support.supports(minor) for support in versions.COMPONENT_KUBERNETES_SUPPORT)
    assert {s.pin for s in versions.COMPONENT_KUBERNETES_SUPPORT} >= {
        "CALICO_CHART_VERSION",
        "TRIDENT_CHART_VERSION",
        "EXTERNAL_SNAPSHOTTER_VERSION",
        "Z2JH_CHART_VERSION",
        "VELERO_CHART_VERSION",
        "KUBE_VIP_IMAGE",
    }


def test_the_plan_orders_control_planes_one_at_a_time_then_worker_batches() -> None:
    settings = load_settings("prod")
    settings = settings.model_copy(
        update={"cluster": settings.cluster.model_copy(update={"upgrade_worker_batch_size": 3})}
    )
    plan = upgrade_plan("1.34.7", "1.35.1", settings)
    control_planes = [n.name for n in settings.control_planes]
    workers = [n.name for n in settings.workers]
    assert plan.stages[0].command is UpgradeCommand.APPLY
    assert plan.stages[0].nodes == (control_planes[0],)
    assert [s.nodes for s in plan.stages[1 : len(control_planes)]] == [(n,) for n in control_planes[1:]]
    assert all(s.command is UpgradeCommand.NODE for s in plan.stages[1:])
    worker_stages = [list(s.nodes) for s in plan.stages[len(control_planes) :]]
    assert worker_stages == [workers[i : i + 3] for i in range(0, len(workers), 3)]
    assert [list(s.nodes) for s in plan.stages] == batches(settings)
    assert "kubeadm upgrade apply v1.35.1" in plan.describe()


@pytest.mark.parametrize("size", [0, 51])
def test_the_worker_batch_size_is_bounded(stack_values: Callable[[str], dict[str, Any]], size: int) -> None:
    values = stack_values("dev")
    values["dsaas:upgradeWorkerBatchSize"] = size
    with pytest.raises(SettingsError, match="dsaas:upgradeWorkerBatchSize"):
        run_program("dev", values)


def test_the_mock_answers_a_stack_reference_as_the_engine_does() -> None:
    mocks = DsaasMocks("dev", {"kubernetesVersion": "1.35.1"})
    args = pulumi_mocks.MockResourceArgs(
        typ="pulumi:pulumi:StackReference",
        name="dev-previous",
        inputs={"name": "organization/dsaas/dev"},
        provider="",
        resource_id="organization/dsaas/dev",
    )
    resource_id, state = mocks.new_resource(args)
    assert resource_id == "organization/dsaas/dev"
    assert state == {
        "name": "organization/dsaas/dev",
        "outputs": {"kubernetesVersion": "1.35.1"},
        "secretOutputNames": [],
    }
    # A stack never updated has no outputs.
    assert DsaasMocks("dev").new_resource(args)[1]["outputs"] == {}


def test_the_program_reads_its_previous_version_and_refuses_a_skipped_minor() -> None:
    with pytest.raises(SettingsError, match=r"skips 1\.34"):
        run_program("prod", previous_outputs={"kubernetesVersion": "1.33.4"})
    # Its own previous output, one minor back: accepted (and a first up, as every other test runs it).
    graph = run_program("prod", previous_outputs={"kubernetesVersion": "1.34.4"})
    assert _sync_await(graph.outputs["kubernetesVersion"].future()) == "1.35.1"


def test_the_preview_prints_the_plan_and_exits_2_on_a_refused_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert preview_main(["dev", "--previous-version", "1.36.0"]) == 2
    captured = capsys.readouterr()
    assert "is a downgrade" in captured.err and "Traceback" not in captured.err
    assert preview_main(["dev", "--previous-version", "1.34.9"]) == 0
    assert "Kubernetes upgrade 1.34.9 → 1.35.1" in capsys.readouterr().out


# --- the upgrade steps in the graph ------------------------------------------------------------------


def _step(graph: Any, node: str, step: str) -> Any:
    return graph.by_name(f"kubernetes-{node}-{step}")


def test_upgrade_steps_run_stage_after_stage_in_the_graph(stack_values: Callable[[str], dict[str, Any]]) -> None:
    values = stack_values("prod")
    values["dsaas:nodes"]["workers"]["count"] = 5
    values["dsaas:upgradeWorkerBatchSize"] = 2
    graph = run_program("prod", values, previous_outputs={"kubernetesVersion": "1.34.6"})
    settings = load_settings("prod")
    settings = settings.model_copy(
        update={
            "cluster": settings.cluster.model_copy(update={"upgrade_worker_batch_size": 2}),
            "nodes": settings.nodes.model_copy(
                update={"workers": settings.nodes.workers.model_copy(update={"count": 5})}
            ),
        }
    )
    stages = batches(settings)
    assert [len(s) for s in stages] == [1, 1, 1, 2, 2, 1]
    first = settings.control_planes[0]
    for index, stage in enumerate(stages):
        for node in stage:
            drain, upgrade, release = (_step(graph, node, s) for s in ("upgrade-drain", "upgrade", "upgrade-release"))
            # Every drain before its node's package change; release after it.
            assert drain.urn in upgrade.dependencies and upgrade.urn in release.dependencies
            # Drain and release on the first control plane, the upgrade on the node itself.
            assert unwrap(drain.inputs["connection"])["host"] == str(first.address)
            assert unwrap(release.inputs["connection"])["host"] == str(first.address)
            node_spec = next(n for n in [*settings.control_planes, *settings.workers] if n.name == node)
            assert unwrap(upgrade.inputs["connection"])["host"] == str(node_spec.address)
            script = unwrap(upgrade.inputs["stdin"])
            command = "apply" if index == 0 else "node"
            assert f"export UPGRADE_COMMAND={command}" in script
            before = {_step(graph, n, "upgrade-release").urn for n in stages[index - 1]} if index else set()
            assert before <= set(drain.dependencies)
            # Strictly one stage at a time: nothing of a later stage or a stage sibling comes before this drain.
            ancestors = graph.ancestors(drain)
            steps = ("upgrade", "upgrade-release")
            later = {_step(graph, n, s).urn for stage_nodes in stages[index:] for n in stage_nodes for s in steps}
            assert not (ancestors & later)
    # The stack records the new version only once the last stage is done.
    version = graph.outputs["kubernetesVersion"]
    assert _sync_await(version.future()) == "1.35.1"
    last = {_step(graph, n, "upgrade-release").urn for n in stages[-1]}
    assert last <= {_sync_await(d.urn.future()) for d in _sync_await(version.resources())}


def test_prepare_leaves_a_joined_nodes_packages_to_the_upgrade_step() -> None:
    from components import kubeadm_render

    body = kubeadm_render.script_path("prepare-node").read_text()
    assert "refusing to switch" in body and "outside its upgrade step" in body


def test_without_a_version_change_there_are_no_upgrade_steps(graphs: dict[str, Any]) -> None:
    """A first `up` (or one that keeps the version) has no upgrade steps: three no-op steps per node would cost
    a 3+500 bring-up half an hour of the engine's checkpoints (docs/bringup.md); the recorded version waits
    for every node's membership instead."""
    graph = graphs["prod"]
    assert not [r.name for r in graph.resources if "-upgrade" in r.name]
    version = graph.outputs["kubernetesVersion"]
    waited = {_sync_await(d.urn.future()) for d in _sync_await(version.resources())}
    settings = load_settings("prod")
    memberships = {_step(graph, node.name, "membership").urn for node in settings.workers}
    assert memberships <= waited
