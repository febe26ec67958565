"""Stack settings: both stack files load, and every kind of bad input names its key and a fix."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from config import versions
from config.settings import ClusterSettings, SettingsError, parse_settings
from tests.conftest import ROOT_DIR, STACKS, load_settings, settings_values
from tools.mockgraph import RecordingMonitor, run_program


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_load(stack: str) -> None:
    settings = load_settings(stack)
    assert settings.cluster.kubernetes_minor in versions.SUPPORTED_KUBERNETES_MINORS
    assert len({n.address for n in settings.all_nodes}) == len(settings.all_nodes)


def test_dev_is_a_lab_and_prod_is_highly_available() -> None:
    dev, prod = load_settings("dev"), load_settings("prod")
    assert (len(dev.control_planes), len(dev.workers)) == (1, 2)
    assert len(prod.control_planes) == 3 and len(prod.workers) >= 3
    assert prod.cluster.high_availability


def test_project_defaults_match_the_typed_defaults() -> None:
    declared = yaml.safe_load((ROOT_DIR / "Pulumi.yaml").read_text())["config"]
    for name, field in ClusterSettings.model_fields.items():
        key = field.alias or name
        assert key in declared, f"Pulumi.yaml does not declare {key}"
        if field.is_required():
            assert "default" not in declared[key]
        else:
            assert str(declared[key]["default"]) == str(field.default), key


def _problem_keys(values: dict[str, Any]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        parse_settings(values)
    message = str(caught.value)
    for problem in caught.value.problems:
        assert problem.key in message and "Fix:" in message
    return caught.value.keys


def _edit(stack: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    values = copy.deepcopy(settings_values(stack))
    edit(values)
    return values


BAD_INPUTS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "pod-overlaps-service": (lambda v: v.update({"dsaas:podCidr": "10.96.0.0/16"}), "dsaas:podCidr"),
    "service-overlaps-nodes": (lambda v: v.update({"dsaas:serviceCidr": "10.40.0.0/16"}), "dsaas:serviceCidr"),
    "pod-overlaps-nodes": (lambda v: v.update({"dsaas:podCidr": "10.0.0.0/8"}), "dsaas:podCidr"),
    "node-outside-subnet": (
        lambda v: v["dsaas:nodes"]["controlPlane"].update(addresses=["10.40.0.11", "10.41.0.12", "10.40.0.13"]),
        "dsaas:nodes.controlPlane.addresses[1]",
    ),
    "vip-outside-subnet": (
        lambda v: v.update({"dsaas:controlPlaneEndpoint": "10.50.0.10"}),
        "dsaas:controlPlaneEndpoint",
    ),
    "vip-is-a-node": (lambda v: v.update({"dsaas:controlPlaneEndpoint": "10.40.0.12"}), "dsaas:controlPlaneEndpoint"),
    "duplicate-in-list": (
        lambda v: v["dsaas:nodes"]["controlPlane"].update(addresses=["10.40.0.11", "10.40.0.11", "10.40.0.13"]),
        "dsaas:nodes.controlPlane.addresses[1]",
    ),
    "pools-overlap": (
        lambda v: v["dsaas:nodes"]["workers"].update(firstAddress="10.40.0.13"),
        "dsaas:nodes.workers.firstAddress",
    ),
    "list-too-short": (
        lambda v: v["dsaas:nodes"]["controlPlane"].update(addresses=["10.40.0.11", "10.40.0.12"]),
        "dsaas:nodes.controlPlane.addresses",
    ),
    "range-runs-out": (
        lambda v: v["dsaas:nodes"]["workers"].update(firstAddress="10.40.0.252"),
        "dsaas:nodes.workers.firstAddress",
    ),
    "even-control-planes": (
        lambda v: v["dsaas:nodes"]["controlPlane"].update(count=2, addresses=None, firstAddress="10.40.0.11"),
        "dsaas:nodes.controlPlane.count",
    ),
    "zero-control-planes": (
        lambda v: v["dsaas:nodes"]["controlPlane"].update(count=0),
        "dsaas:nodes.controlPlane.count",
    ),
    "ha-with-one": (
        lambda v: v["dsaas:nodes"]["controlPlane"].update(count=1),
        "dsaas:nodes.controlPlane.count",
    ),
    "old-kubernetes": (lambda v: v.update({"dsaas:kubernetesVersion": "1.33.4"}), "dsaas:kubernetesVersion"),
    "unpinned-kubernetes": (lambda v: v.update({"dsaas:kubernetesVersion": "1.35"}), "dsaas:kubernetesVersion"),
    "misspelt-pool-key": (
        lambda v: v["dsaas:nodes"]["workers"].update(memoryMB=4096),
        "dsaas:nodes.workers.memoryMB",
    ),
    "unknown-top-level-key": (lambda v: v.update({"dsaas:kubernetsVersion": "1.35.1"}), "dsaas:kubernetsVersion"),
    "missing-section": (lambda v: v.pop("dsaas:network"), "dsaas:network"),
    "gateway-outside-subnet": (lambda v: v["dsaas:network"].update(gateway="10.41.0.1"), "dsaas:network.gateway"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_its_key(case: str) -> None:
    edit, expected_key = BAD_INPUTS[case]
    assert expected_key in _problem_keys(_edit("prod", edit))


def test_even_count_is_refused_even_without_ha() -> None:
    def edit(values: dict[str, Any]) -> None:
        values["dsaas:nodes"]["controlPlane"].update(count=2)
        values["dsaas:nodes"]["controlPlane"]["firstAddress"] = "10.20.30.11"

    assert _problem_keys(_edit("dev", edit)) == ["dsaas:nodes.controlPlane.count"]


def test_all_problems_are_reported_together() -> None:
    def edit(values: dict[str, Any]) -> None:
        values["dsaas:kubernetesVersion"] = "1.30.0"
        values["dsaas:podCidr"] = "10.96.0.0/16"
        values["dsaas:nodes"]["controlPlane"]["count"] = 4
        values["dsaas:nodes"]["controlPlane"]["addresses"] = ["10.40.0.11", "10.40.0.12", "10.40.0.13", "10.40.0.14"]

    keys = _problem_keys(_edit("prod", edit))
    assert {"dsaas:kubernetesVersion", "dsaas:podCidr", "dsaas:nodes.controlPlane.count"} <= set(keys)


def _registrations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    registered: list[str] = []
    original = RecordingMonitor.RegisterResource

    def spy(self: RecordingMonitor, request: Any) -> Any:
        if request.type != "pulumi:pulumi:Stack":
            registered.append(request.type)
        return original(self, request)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", spy)
    return registered


def test_missing_secret_fails_before_any_resource(
    monkeypatch: pytest.MonkeyPatch, stack_values: Callable[[str], dict[str, Any]]
) -> None:
    registered = _registrations(monkeypatch)
    values = stack_values("prod")
    del values["vsphere:password"]
    with pytest.raises(SettingsError) as caught:
        run_program("prod", values)
    assert caught.value.keys == ["vsphere:password"]
    assert "pulumi config set --secret vsphere:password" in str(caught.value)
    assert registered == []


def test_secret_in_clear_text_is_refused(stack_values: Callable[[str], dict[str, Any]]) -> None:
    values = stack_values("prod")
    values["vsphere:password"] = "hunter2"
    with pytest.raises(SettingsError) as caught:
        run_program("prod", values)
    assert caught.value.keys == ["vsphere:password"]
    assert "clear text" in str(caught.value) and "hunter2" not in str(caught.value)


def test_bad_settings_fail_before_any_resource(
    monkeypatch: pytest.MonkeyPatch, stack_values: Callable[[str], dict[str, Any]]
) -> None:
    registered = _registrations(monkeypatch)
    values = stack_values("prod")
    values["dsaas:nodes"]["controlPlane"]["count"] = 2
    with pytest.raises(SettingsError):
        run_program("prod", values)
    assert registered == []
