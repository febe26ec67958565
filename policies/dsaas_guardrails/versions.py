"""Reproducibility: every chart, image and Kubernetes package deployed is pinned to an exact version."""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from . import pins
from .common import config as setting
from .common import decoded_documents, label, of_type, path, releases, schema, script_parameters, steps, walk

PINNED_SCHEMA = schema(
    {
        "forbiddenTags": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["latest", "stable", "main", "master"],
            "description": "Tags refused on top of the pin forms of pins.py (whole tag, any case): moving names, "
            "or builds the team has withdrawn. Emptying it never admits a moving tag, and is announced.",
        },
    }
)
# Helm chart versions are SemVer 2 (a pre-release is its own, immutable version in a chart repository).
EXACT_VERSION = re.compile(r"v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?", re.ASCII)
PACKAGE_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+", re.ASCII)


def _forbidden(tag: str, forbidden: list[str]) -> bool:
    return tag.casefold() in {str(word).casefold() for word in forbidden}


def image_problem(image: str, forbidden: list[str], kind: str = pins.NOTEBOOK) -> str | None:
    """Why `image` is not pinned, or None: the forms of pins.py for its kind, minus the forbidden tags."""
    _, tag, digest = pins.split_image(image)
    if digest is None and tag is not None and _forbidden(tag, forbidden):
        return f"uses the moving tag '{tag}'"
    return pins.image_problem(image, kind)


RAW_GITHUB = "https://raw.githubusercontent.com/"
# Only a commit ID: it is the hash of the tree it names, while a release tag can be deleted and pushed
# again pointing elsewhere (and a manifest fetched at deploy time has no other checksum).
IMMUTABLE_REF = re.compile(r"[0-9a-f]{40}", re.ASCII)


def manifest_url_problem(url: str) -> str | None:
    """Why a manifest URL on GitHub can change under the same program, or None (a full commit ID)."""
    if not url.startswith(RAW_GITHUB):
        return None
    parts = url.removeprefix(RAW_GITHUB).split("/")
    if len(parts) < 4:
        return "names no git ref"
    if IMMUTABLE_REF.fullmatch(parts[2]):
        return None
    return (
        f"is read from the git ref '{parts[2]}', which can move (a branch or tag can be pushed again; "
        "only a full commit ID names fixed content)"
    )


# Trident's chart truncates the autosupport image tag to the release line (26.06) of the Trident image
# tag (26.06.0): NetApp publishes autosupport images per release line only. That form is accepted for
# this key alone, and only when it is the line of the chart's own, exactly pinned Trident release.
RELEASE_LINE_TAGS = {"tridentAutosupportImageTag": "tridentImageTag"}


def chart_image_tag_problem(key: str, value: Any, values: Any, forbidden: list[str]) -> str | None:
    """Why a chart's `*ImageTag` value is not an exact release, or None."""
    tag = str(value)
    if _forbidden(tag, forbidden):
        return f"the moving tag '{tag}'"
    if pins.is_pinned_tag(tag, pins.PLATFORM):
        return None
    release = str(path(values, RELEASE_LINE_TAGS[key]) or "") if key in RELEASE_LINE_TAGS else ""
    if pins.is_pinned_tag(release, pins.PLATFORM) and tag == ".".join(release.removeprefix("v").split(".")[:2]):
        return None
    return "not an exact release (X.Y.Z)"


def notebook_images(values: Any) -> list[tuple[str, str]]:
    """(where, image) for every notebook and pre-pulled image in z2jh values."""
    found: list[tuple[str, str]] = []
    name, tag = path(values, "singleuser", "image", "name"), path(values, "singleuser", "image", "tag")
    if name:
        found.append(("singleuser.image", f"{name}:{tag}" if tag else str(name)))
    for index, profile in enumerate(path(values, "singleuser", "profileList") or []):
        image = path(profile, "kubespawner_override", "image")
        if image:
            found.append((f"profile '{path(profile, 'slug') or index}'", str(image)))
    for key, extra in (path(values, "prePuller", "extraImages") or {}).items():
        name, tag = path(extra, "name"), path(extra, "tag")
        found.append((f"prePuller.extraImages.{key}", f"{name}:{tag}" if tag else str(name)))
    return found


def pinned_versions(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    forbidden = list(setting(args, PINNED_SCHEMA, "forbiddenTags"))
    for release in releases(args):
        version = path(release.props, "version")
        if not version or not EXACT_VERSION.fullmatch(str(version)):
            report_violation(
                f"Helm release {label(release)} (chart {path(release.props, 'chart')}) has "
                f"{'no chart version' if not version else f'the version range {version!r}'}: every deployment "
                "could install a different chart. Fix: pin the exact chart version in config/versions.py.",
                release.urn,
            )
        values = path(release.props, "values")
        for where, image in notebook_images(values):
            problem = image_problem(image, forbidden)
            if problem:
                report_violation(
                    f"Helm release {label(release)}: image {image} ({where}) {problem}. Fix: give it "
                    f"{pins.EXAMPLES[pins.NOTEBOOK]} in dsaas:hub.profiles[].image or in config/versions.py.",
                    release.urn,
                )
        for trail, value in walk(values):
            if not trail or not trail[-1].endswith("ImageTag"):
                continue
            problem = chart_image_tag_problem(trail[-1], value, values, forbidden)
            if problem:
                report_violation(
                    f"Helm release {label(release)}: {'.'.join(trail)} is {value!r}, {problem}. "
                    "Fix: pin an exact release in config/versions.py.",
                    release.urn,
                )
    # Every other image in any resource: the program's own Kubernetes objects (the backup CronJobs' aws-cli
    # and kubectl) and the image values it hands charts (Velero, its AWS plugin and kubectl, z2jh's user
    # scheduler). Notebook images were checked above with their own rule.
    for resource in args.resources:
        for trail, image in pins.images_in(walk(resource.props)):
            if pins.image_kind(trail) == pins.NOTEBOOK:
                continue
            problem = image_problem(image, forbidden, pins.PLATFORM)
            if problem:
                report_violation(
                    f"{label(resource)}: image {image} ({'.'.join(trail)}) {problem}. Fix: pin "
                    f"{pins.EXAMPLES[pins.PLATFORM]} in config/versions.py.",
                    resource.urn,
                )
    for group in of_type(args, "kubernetes:yaml/v2:ConfigGroup"):
        for url in path(group.props, "files") or []:
            problem = manifest_url_problem(str(url))
            if problem:
                report_violation(
                    f"{label(group)}: manifest {url} {problem}. Fix: pin the commit the release tag "
                    "points at in config/versions.py.",
                    group.urn,
                )
    for step in steps(args, "kube-vip"):
        for pod in decoded_documents(script_parameters(step), "KUBE_VIP_MANIFEST_B64"):
            for container in (pod.get("spec") or {}).get("containers") or []:
                problem = image_problem(str(container.get("image", "")), forbidden, pins.PLATFORM)
                if problem:
                    report_violation(
                        f"{label(step)}: image {container.get('image')} {problem}. "
                        "Fix: pin KUBE_VIP_IMAGE in config/versions.py.",
                        step.urn,
                    )
    for step in steps(args, "prepare-node"):
        parameters = script_parameters(step)
        for key, setting_key in (("KUBERNETES_VERSION", "dsaas:kubernetesVersion"), ("CONTAINERD_VERSION", None)):
            value = parameters.get(key, "")
            if not PACKAGE_VERSION.fullmatch(value):
                where = setting_key or "CONTAINERD_VERSION in config/versions.py"
                report_violation(
                    f"{label(step)} installs {key.split('_')[0].lower()} packages at {value or 'no version'!r}: "
                    f"apt would take whatever is newest. Fix: set {where} to an exact x.y.z release.",
                    step.urn,
                )


POLICIES = [
    StackValidationPolicy(
        name="pinned-versions",
        description="Charts, images, manifests from GitHub and Kubernetes packages are pinned exactly.",
        validate=pinned_versions,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=PINNED_SCHEMA,
    ),
]
