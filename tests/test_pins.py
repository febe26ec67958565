"""Image pins: one rule (config/pins.py, copied into the policy pack), and the settings and the pack agree."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from config import pins, versions
from config.settings import SettingsError, parse_settings
from dsaas_guardrails import pins as pack_pins
from dsaas_guardrails import versions as pack_versions
from tests.conftest import ROOT_DIR, settings_values
from tests.test_policies import hub_values, named, violations
from tools.offline import environment
from tools.offline.mockgraph import Graph, RecordedResource, is_secret, unwrap

NOTEBOOK = "quay.io/jupyter/r-notebook"
MOVING = [
    "python-3.12",
    "x86_64-latest",
    "edge",
    "latest",
    "LATEST",
    "Latest",
    "latest-2025",
    "latest\n",
    "2025-10-06\n",
    "lab-4.4.9",
    "ubuntu-24.04",
    "x86_64-python-3.12",
    "2025-13-01",
    "1.35.١",
    "２０２５-10-06",
    "abc123",  # 6 hex digits: too short to name a commit
]
PINNED = [
    "2025-10-06",
    "x86_64-2025-10-06",
    "aarch64-1ffe43816ba9",
    "cuda12-2025-10-06",
    "1ffe43816ba9",
    "1ffe438",
    "0123456789abcdef0123456789abcdef01234567",
]
DIGEST = "@sha256:" + "ab" * 32


def test_the_program_and_the_pack_carry_the_same_rule() -> None:
    program = (ROOT_DIR / "config" / "pins.py").read_bytes()
    pack = (ROOT_DIR / "policies" / "dsaas_guardrails" / "pins.py").read_bytes()
    assert program == pack, "copy config/pins.py to policies/dsaas_guardrails/pins.py"


@pytest.mark.parametrize("tag", MOVING)
def test_moving_tags_are_not_pins(tag: str) -> None:
    assert pins.image_problem(f"{NOTEBOOK}:{tag}", pins.NOTEBOOK)
    assert pack_pins.image_problem(f"{NOTEBOOK}:{tag}", pack_pins.NOTEBOOK)


@pytest.mark.parametrize("tag", PINNED)
def test_dates_commits_and_digests_are_pins(tag: str) -> None:
    assert pins.image_problem(f"{NOTEBOOK}:{tag}", pins.NOTEBOOK) is None
    assert pins.image_problem(f"{NOTEBOOK}{DIGEST}", pins.NOTEBOOK) is None
    assert pins.image_problem(f"{NOTEBOOK}:python-3.12{DIGEST}", pins.NOTEBOOK) is None
    assert pins.image_problem(f"{NOTEBOOK}@sha256:{'AB' * 32}", pins.NOTEBOOK)
    assert pins.image_problem(f"{NOTEBOOK}@sha256:{'ab' * 31}", pins.NOTEBOOK)


@pytest.mark.parametrize(
    ("tag", "pinned"),
    [("v1.0.4", True), ("26.06.0", True), ("v1.0", False), ("v1.0.4-rc.1", False), ("latest", False), ("v1", False)],
)
def test_platform_images_need_an_exact_release(tag: str, pinned: bool) -> None:
    assert (pins.image_problem(f"ghcr.io/kube-vip/kube-vip:{tag}", pins.PLATFORM) is None) is pinned


def test_every_image_config_versions_deploys_is_a_pin() -> None:
    for image in (versions.KUBE_VIP_IMAGE, versions.SNAPSHOT_CONTROLLER_IMAGE):
        assert pins.image_problem(image, pins.PLATFORM) is None, image
    assert pins.is_pinned_tag(versions.TRIDENT_VERSION, pins.PLATFORM)
    for image in versions.NOTEBOOK_IMAGES.values():
        assert pins.image_problem(image, pins.NOTEBOOK) is None, image


def _settings_accept(image: str) -> bool:
    values = copy.deepcopy(settings_values("prod"))
    values["dsaas:hub"]["profiles"][0]["image"] = image
    try:
        parse_settings(values)
    except SettingsError as error:
        assert error.keys == ["dsaas:hub.profiles[0].image"], error
        return False
    return True


def _pack_accepts(prod: Graph, image: str) -> bool:
    resources = copy.deepcopy(prod.resources)
    values: dict[str, Any] = hub_values(resources)
    values["singleuser"]["profileList"][-1]["kubespawner_override"]["image"] = image
    named(resources, "hub-release").inputs["values"]["value"] = values
    found = violations(pack_versions.pinned_versions, resources)
    assert all("(profile 'r-statistics')" in message for message, _ in found), found
    return not found


@pytest.mark.parametrize("tag", [*MOVING, *PINNED, "python-3.12" + DIGEST, "nightly", "2025-10-06-x"], ids=repr)
def test_settings_and_the_pack_agree(tag: str, graphs: dict[str, Graph]) -> None:
    image = f"{NOTEBOOK}:{tag}"
    expected = pins.image_problem(image, pins.NOTEBOOK) is None
    assert _settings_accept(image) is expected
    assert _pack_accepts(graphs["prod"], image) is expected


# --- every image the program deploys, wherever it is named ----------------------------------------


def _image_places(resources: list[RecordedResource]) -> list[tuple[str, tuple[str, ...], str]]:
    """(resource, trail into its plain inputs, image) for every platform image of the graph."""
    return [
        (resource.name, trail, image)
        for resource in resources
        for trail, image in pins.images_in(environment.leaves(unwrap(resource.inputs)))
        if pins.image_kind(trail) == pins.PLATFORM
    ]


def _set_latest(inputs: dict[str, Any], trail: tuple[str, ...], image: str) -> None:
    """Move the image at `trail` to `:latest` (through a secret wrapper), in the form found there."""
    parent: Any = inputs
    for part in trail[:-1]:
        parent = parent["value"] if is_secret(parent) else parent
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    if isinstance(parent[trail[-1]], dict):  # {repository|name, tag}
        parent[trail[-1]]["tag"] = "latest"
    else:
        parent[trail[-1]] = pins.split_image(image)[0] + ":latest"


def test_every_image_in_the_graph_is_pinned(graphs: dict[str, Graph]) -> None:
    for stack, graph in graphs.items():
        places = _image_places(graph.resources)
        images = {image for _, _, image in places}
        if stack == "prod":  # the stack with backups
            assert images >= {versions.AWS_CLI_IMAGE, versions.KUBECTL_IMAGE, versions.VELERO_PLUGIN_FOR_AWS_IMAGE}
        for name, trail, image in places:
            assert pins.image_problem(image, pins.PLATFORM) is None, (stack, name, trail, image)


def test_a_moving_tag_anywhere_in_the_graph_is_refused(graphs: dict[str, Graph]) -> None:
    """`:latest` injected at each place an image is named (the backup CronJobs' aws-cli and kubectl,
    Velero, its plugin and its kubectl, z2jh's user scheduler): the pack names that resource and image."""
    places = _image_places(graphs["prod"].resources)
    assert {name for name, _, _ in places} >= {
        "backup-cronjob-dsaas-inventory",
        "backup-cronjob-jupyterhub-dsaas-hub-database",
        "backup-velero",
        "hub-release",
    }
    assert len(places) >= 8
    assert violations(pack_versions.pinned_versions, graphs["prod"].resources) == []
    for name, trail, image in places:
        resources = copy.deepcopy(graphs["prod"].resources)
        _set_latest(named(resources, name).inputs, trail, image)
        found = violations(pack_versions.pinned_versions, resources)
        assert len(found) == 1 and ":latest" in found[0][0] and ".".join(trail) in found[0][0], (name, trail, found)


def test_the_environment_manifest_lists_every_image(graphs: dict[str, Graph]) -> None:
    listed = {(entry["image"], entry["rule"]) for entry in environment.build_environment(graphs["prod"])["images"]}
    expected = {(image, pins.PLATFORM) for _, _, image in _image_places(graphs["prod"].resources)}
    assert expected <= listed
    assert {(versions.KUBE_VIP_IMAGE, pins.PLATFORM), (versions.SNAPSHOT_CONTROLLER_IMAGE, pins.PLATFORM)} <= listed
    assert {(image, pins.NOTEBOOK) for image in versions.NOTEBOOK_IMAGES.values()} <= listed
