"""Kubernetes manifests the program applies from remote files, vendored under tests/upstream/manifests/.

Two `kubernetes:yaml/v2:ConfigGroup`s fetch files from GitHub at deploy time (the external-snapshotter CRDs
and its snapshot controller, components/trident_render.py), and the Trident operator creates the
`TridentBackendConfig` CRD at run time from a Go string constant of its own source. The admission tests
need those exact objects offline, so `tests/upstream/manifests.yaml` records where each file comes from
(repository, tag, commit, path, or the Go constant it is extracted from) with its sha256, and the files
sit under `tests/upstream/manifests/<directory>/`. They are test data only, never shipped or executed.

`python -m tools.controlplane vendor <name> --git-dir DIR` rewrites one entry's files from a clone.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools.offline.mockgraph import ROOT

MANIFEST = ROOT / "tests" / "upstream" / "manifests.yaml"
MANIFESTS_DIR = ROOT / "tests" / "upstream" / "manifests"


class UpstreamError(RuntimeError):
    """A vendored file that is missing, altered, or not what its source says."""


@dataclass(frozen=True)
class VendoredFile:
    path: str
    """Its path in the repository (for an extracted constant: the name the vendored file gets)."""
    sha256: str
    extract: dict[str, Any] | None
    """For a Go string constant: `file`, `constant` and the `lines` it spans at the commit."""


@dataclass(frozen=True)
class VendoredSource:
    name: str
    directory: Path
    entry: dict[str, Any]
    files: tuple[VendoredFile, ...]

    def file(self, path: str) -> Path:
        return self.directory / path

    def text(self, path: str) -> str:
        return self.file(path).read_text()


def load_manifest(path: Path = MANIFEST) -> list[VendoredSource]:
    document = yaml.safe_load(path.read_text())
    return [
        VendoredSource(
            str(entry["name"]),
            MANIFESTS_DIR / str(entry["directory"]),
            entry,
            tuple(VendoredFile(str(item["path"]), str(item["sha256"]), item.get("extract")) for item in entry["files"]),
        )
        for entry in document["manifests"]
    ]


def vendored(name: str) -> VendoredSource:
    for source in load_manifest():
        if source.name == name:
            return source
    raise UpstreamError(f"no vendored source {name!r} in {MANIFEST.relative_to(ROOT)}")


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mismatches() -> list[str]:
    """Every vendored file (and license) whose digest is not the manifest's, or that is missing."""
    found = []
    for source in load_manifest():
        expected = {item.path: item.sha256 for item in source.files}
        expected.update({str(item["file"]): str(item["sha256"]) for item in source.entry.get("licenses", [])})
        for path, digest in sorted(expected.items()):
            target = source.file(path)
            if not target.is_file():
                found.append(f"{source.name}: {path} is missing")
            elif file_digest(target) != digest:
                found.append(f"{source.name}: {path} has sha256 {file_digest(target)}, the manifest says {digest}")
        on_disk = {p.relative_to(source.directory).as_posix() for p in source.directory.rglob("*") if p.is_file()}
        found.extend(f"{source.name}: {extra} is not in the manifest" for extra in sorted(on_disk - set(expected)))
    return found


# --- vendoring from a clone ----------------------------------------------------------------------


def _git(git_dir: Path, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True).stdout


def go_string_constant(source: str, constant: str) -> tuple[str, int, int]:
    """The value of a Go raw-string constant (`const NAME = \\`...\\``) and the lines (1-based) it spans."""
    match = re.search(rf"(?m)^const {re.escape(constant)} = `([^`]*)`", source)
    if match is None:
        raise UpstreamError(f"no raw-string constant {constant} in the Go source")
    first = source.count("\n", 0, match.start()) + 1
    last = source.count("\n", 0, match.end()) + 1
    return match.group(1), first, last


def vendor(source: VendoredSource, git_dir: Path) -> list[str]:
    """Rewrite `source`'s files from `git_dir` at the manifest's commit; returns what differs from the manifest."""
    commit = str(source.entry["source"]["commit"])
    tag = source.entry["source"].get("tag")
    if tag and _git(git_dir, "rev-parse", f"{tag}^{{commit}}").decode().strip() != commit:
        raise UpstreamError(f"{source.name}: tag {tag} does not name {commit}")
    problems = []
    items = [(f.path, f.sha256, f.extract) for f in source.files]
    items += [(str(item["file"]), str(item["sha256"]), None) for item in source.entry.get("licenses", [])]
    for path, digest, extract in items:
        if extract:
            text, first, last = go_string_constant(
                _git(git_dir, "show", f"{commit}:{extract['file']}").decode(), str(extract["constant"])
            )
            if f"{first}-{last}" != str(extract["lines"]):
                problems.append(f"{path}: {extract['constant']} spans lines {first}-{last}, not {extract['lines']}")
            data = text.encode()
        else:
            data = _git(git_dir, "show", f"{commit}:{path}")
        target = source.file(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if hashlib.sha256(data).hexdigest() != digest:
            problems.append(f"{path}: sha256 {hashlib.sha256(data).hexdigest()}, the manifest says {digest}")
    return problems
