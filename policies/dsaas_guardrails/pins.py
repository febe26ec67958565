"""What pins a container image: the one rule the stack settings and the policy pack both apply.

This file is kept byte-identical in `config/pins.py` (the program) and `policies/dsaas_guardrails/pins.py`
(the policy pack, which imports nothing from the program); `tests/test_pins.py` fails when they differ.

Every form is matched against the whole string, ASCII only, case-sensitive (registries and git write
these forms in lower case; `LATEST` is as moving as `latest`). Accepted:

- any image: a digest, `@sha256:` and 64 hex digits (a tag before it is allowed and ignored).
- notebook images (`NOTEBOOK`: user servers, i.e. the built-in and `dsaas:hub.profiles` images):
  a build date `YYYY-MM-DD` (e.g. `2025-10-06`) or a git commit of 7 to 40 hex digits (Jupyter Docker
  Stacks publishes 12, e.g. `1ffe43816ba9`), optionally behind Docker Stacks' variant prefix `aarch64-`,
  `x86_64-` (single-platform builds), `cuda-` or `cuda<N>-` (GPU builds). Docker Stacks documents
  `latest` and its software tags (`python-3.12`, `lab-4.4.9`, `ubuntu-24.04`, ...) as moving: they are
  re-pointed at every new build that still has that version.
- platform images (`PLATFORM`: every other image the program deploys: kube-vip, Trident, the snapshot
  controller, the backup jobs' aws-cli and kubectl, Velero and its AWS plugin, z2jh's user scheduler,
  chart image tags pinned in `config/versions.py`): an exact release `X.Y.Z` or `vX.Y.Z`, no pre-release
  or build suffix. Those projects do not move a release tag to a new build by practice, but a registry
  lets a tag be re-pushed: only a digest is immutable (see the CKV_K8S_43 entries of
  tests/checkov-baseline.yaml for why tags are kept).

`images_in` finds every image a resource names, so the policy pack and the environment manifest read
the same list (a new job or chart value is covered without being added anywhere).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

NOTEBOOK: Final = "notebook"
PLATFORM: Final = "platform"

DIGEST: Final = re.compile(r"sha256:[0-9a-f]{64}", re.ASCII)
_VARIANT = r"(?:aarch64-|x86_64-|cuda[0-9]*-)?"
DATE_TAG: Final = re.compile(_VARIANT + r"20[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])", re.ASCII)
COMMIT_TAG: Final = re.compile(_VARIANT + r"[0-9a-f]{7,40}", re.ASCII)
RELEASE_TAG: Final = re.compile(r"v?[0-9]+\.[0-9]+\.[0-9]+", re.ASCII)
# A registry host[:port] and path of lower-case components (the OCI distribution spec's name grammar).
_NAME: Final = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*",
    re.ASCII,
)
_TAG: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)

EXAMPLES: Final = {
    NOTEBOOK: "a date tag (quay.io/jupyter/scipy-notebook:2025-10-06), a commit tag (:1ffe43816ba9) or a digest "
    "(@sha256:...)",
    PLATFORM: "an exact release tag (v1.0.4 or 26.06.0) or a digest (@sha256:...)",
}


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """`name[:tag][@sha256:...]` → (name, tag or None, digest or None); a registry port is not a tag."""
    rest, _, digest = image.partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        return rest[:colon], rest[colon + 1 :], digest if "@" in image else None
    return rest, None, digest if "@" in image else None


def is_pinned_tag(tag: str, kind: str) -> bool:
    """Whether `tag` alone names one build forever, for an image of this kind."""
    if kind == NOTEBOOK:
        return bool(DATE_TAG.fullmatch(tag) or COMMIT_TAG.fullmatch(tag))
    return bool(RELEASE_TAG.fullmatch(tag))


def image_problem(image: str, kind: str) -> str | None:
    """Why `image` is not pinned (a phrase after "it"), or None when it names one build forever."""
    name, tag, digest = split_image(image)
    if not _NAME.fullmatch(name) or (tag is not None and not _TAG.fullmatch(tag)):
        return "is not an image reference of the form registry/name:tag or registry/name@sha256:<digest>"
    if digest is not None:
        return None if DIGEST.fullmatch(digest) else "has a malformed digest (sha256: and 64 hex digits)"
    if tag is None:
        return "has no tag, so it means whatever 'latest' is on the day a node pulls it"
    if is_pinned_tag(tag, kind):
        return None
    if kind == NOTEBOOK:
        return (
            f"uses the tag {tag!r}, which is not a pin: Jupyter Docker Stacks moves latest and its software "
            "tags (python-*, lab-*, ...) to every new build"
        )
    return f"uses the tag {tag!r}, which is not an exact release (X.Y.Z)"


NOTEBOOK_VALUES: Final = (
    ("singleuser", "image"),
    ("singleuser", "profileList", "*", "kubespawner_override", "image"),
)
"""Where z2jh values name a notebook image (what users run); every other image is a platform image."""

_IMAGE_PARTS: Final = ("registry", "repository", "name", "tag", "digest")


def _matches(trail: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    return len(trail) == len(pattern) and all(p in ("*", t) for t, p in zip(trail, pattern, strict=True))


def image_kind(trail: tuple[str, ...]) -> str:
    """The pin rule for an image found at `trail` (a key path into a resource's inputs or chart values)."""
    values = trail[trail.index("values") + 1 :] if "values" in trail else trail
    return NOTEBOOK if any(_matches(values, pattern) for pattern in NOTEBOOK_VALUES) else PLATFORM


def images_in(leaves: Iterable[tuple[tuple[str, ...], object]]) -> list[tuple[tuple[str, ...], str]]:
    """(trail, image) for every image named among the leaves (key path, scalar) of a resource's inputs.

    Two forms, which between them cover Kubernetes pod specs (CronJobs, Deployments, ... as the program
    writes them) and the charts' values: `image: registry/name:tag` (a container, Velero's init
    containers), and `image: {repository|name, tag, registry?, digest?}` (Velero's and z2jh's values).
    Reading every key called `image`, not a list of known places, is what makes a new job or value
    meet the pin rule without anyone remembering to add it here."""
    parts: dict[tuple[str, ...], dict[str, str]] = {}
    found: list[tuple[tuple[str, ...], str]] = []
    for trail, value in leaves:
        if trail and trail[-1] == "image" and isinstance(value, str):
            found.append((trail, value))
        elif len(trail) >= 2 and trail[-2] == "image" and trail[-1] in _IMAGE_PARTS:
            parts.setdefault(trail[:-1], {})[trail[-1]] = str(value)
    for trail, image in parts.items():
        name = image.get("repository") or image.get("name")
        if name is None:
            continue
        reference = f"{image['registry']}/{name}" if image.get("registry") else name
        if image.get("tag"):
            reference += f":{image['tag']}"
        if image.get("digest"):
            reference += f"@{image['digest']}"
        found.append((trail, reference))
    return found
