"""The environment manifest: every pinned version a stack deploys, read from what the program declares.

The paper's reproducibility record: a machine-readable list, suitable to cite, of the software a
user's analysis ran on. Read from the recorded graph (chart releases, node scripts, static pods,
profile images), not from a second hand-kept list, so it cannot disagree with the deployment.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from components import kubeadm_render, trident_render
from config import pins, versions
from tools.offline.mockgraph import Graph, RecordedResource, unwrap

SCHEMA_VERSION = 1


def _script_parameters(resource: RecordedResource) -> dict[str, str]:
    parameters, _ = kubeadm_render.parse_rendered_script(unwrap(resource.inputs.get("stdin") or ""))
    return parameters


def _images_in(manifest_text: str) -> list[str]:
    images = []
    for document in yaml.safe_load_all(manifest_text):
        for container in (document or {}).get("spec", {}).get("containers", []):
            images.append(container["image"])
    return images


def leaves(value: Any, trail: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every scalar under `value` (secrets unwrapped) with its key path."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*trail, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, (*trail, str(index)))
    elif value is not None:
        yield trail, value


def deployed_images(graph: Graph) -> list[dict[str, str]]:
    """Every container image the graph names, where, and the pin rule it meets (config/pins.py).

    The same reading as the policy pack's pinned-versions rule: every `image` in any resource's inputs
    (the program's CronJobs, chart values), plus the images inside node scripts (kube-vip) and the
    snapshot controller's upstream manifest. The charts' own images are listed per object in the
    preview snapshot (snapshots/<stack>.yaml, `rendered`)."""
    found: dict[tuple[str, str], dict[str, str]] = {}

    def add(image: str, kind: str, where: str) -> None:
        found.setdefault((image, where), {"image": image, "rule": kind, "where": where})

    for resource in graph.resources:
        for trail, image in pins.images_in(leaves(unwrap(resource.inputs))):
            add(image, pins.image_kind(trail), f"{resource.name}: {'.'.join(trail)}")
        if resource.type == "command:remote:Command":
            manifest = _script_parameters(resource).get("KUBE_VIP_MANIFEST_B64")
            for image in _images_in(base64.b64decode(manifest).decode()) if manifest else []:
                add(image, pins.PLATFORM, f"{resource.name}: KUBE_VIP_MANIFEST_B64")
        elif resource.type == "kubernetes:yaml/v2:ConfigGroup" and any(
            str(url).endswith(tuple(trident_render.SNAPSHOT_CONTROLLER_FILES))
            for url in unwrap(resource.inputs.get("files") or [])
        ):
            add(versions.SNAPSHOT_CONTROLLER_IMAGE, pins.PLATFORM, f"{resource.name}: files")
    return [found[key] for key in sorted(found)]


def build_environment(graph: Graph) -> dict[str, Any]:
    entries: dict[str, dict[str, Any]] = {}

    def add(name: str, version: str, kind: str, source: str, **extra: Any) -> None:
        entries[name] = {"name": name, "version": version, "kind": kind, "source": source, **extra}

    for resource in graph.resources:
        if resource.type == "command:remote:Command":
            parameters = _script_parameters(resource)
            # prepare-node's parameters (the upgrade steps carry the version too, but not containerd's).
            if "KUBERNETES_VERSION" in parameters and "CONTAINERD_VERSION" in parameters:
                add(
                    "kubernetes",
                    parameters["KUBERNETES_VERSION"],
                    "packages",
                    "https://pkgs.k8s.io (kubelet, kubeadm, kubectl; held)",
                )
                add(
                    "containerd",
                    parameters["CONTAINERD_VERSION"],
                    "package",
                    "https://download.docker.com (containerd.io)",
                )
            if "KUBE_VIP_MANIFEST_B64" in parameters:
                for image in _images_in(base64.b64decode(parameters["KUBE_VIP_MANIFEST_B64"]).decode()):
                    name, _, tag = image.rpartition(":")
                    add("kube-vip", tag, "image", name)
        elif resource.type == "kubernetes:helm.sh/v3:Release":
            chart = unwrap(resource.inputs["chart"])
            repository = unwrap(resource.inputs.get("repositoryOpts", {})).get("repo", "")
            add(f"chart/{chart}", unwrap(resource.inputs["version"]), "helm-chart", repository)
            values = unwrap(resource.inputs.get("values") or {})
            if chart == "jupyterhub":
                for package, package_version in versions.Z2JH_HUB_COMPONENTS.items():
                    add(
                        f"hub/{package}",
                        package_version,
                        "python-package",
                        f"hub image of chart jupyterhub {unwrap(resource.inputs['version'])}",
                    )
                for profile in values.get("singleuser", {}).get("profileList", []):
                    image = profile["kubespawner_override"]["image"]
                    name, _, tag = image.rpartition(":")
                    add(f"notebook/{profile['slug']}", tag, "image", name, profile=profile["display_name"])
            if chart == "trident-operator":
                add(
                    "trident",
                    values.get("tridentImageTag", versions.TRIDENT_VERSION),
                    "image",
                    "docker.io/netapp/trident",
                )
        elif resource.type == "kubernetes:yaml/v2:ConfigGroup":
            for url in unwrap(resource.inputs.get("files") or []):
                if not url.startswith(versions.EXTERNAL_SNAPSHOTTER_RAW_URL):
                    continue
                ref, path = url.removeprefix(versions.EXTERNAL_SNAPSHOTTER_RAW_URL + "/").split("/", 1)
                source = f"https://github.com/kubernetes-csi/external-snapshotter ({ref})"
                if path in trident_render.SNAPSHOT_CRD_FILES:
                    release = (
                        versions.EXTERNAL_SNAPSHOTTER_VERSION if ref == versions.EXTERNAL_SNAPSHOTTER_COMMIT else ref
                    )
                    add("external-snapshotter-crds", release, "manifests", source)
                elif path in trident_render.SNAPSHOT_CONTROLLER_FILES:
                    name, _, tag = versions.SNAPSHOT_CONTROLLER_IMAGE.rpartition(":")
                    add("snapshot-controller", tag, "image", name, manifests=source)
    add("kubeadm-config-api", versions.KUBEADM_CONFIG_API, "api", "kubeadm")
    return {
        "schemaVersion": SCHEMA_VERSION,
        "stack": graph.stack,
        "components": [entries[name] for name in sorted(entries)],
        "images": deployed_images(graph),
    }


def write_environment(graph: Graph, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Environment manifest of stack {graph.stack}: every pinned version it deploys.\n"
    path.write_text(header + yaml.safe_dump(build_environment(graph), sort_keys=False))
    return path
