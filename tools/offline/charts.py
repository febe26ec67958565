"""The Helm charts the stacks deploy, rendered offline by Helm's own engine (test and review tooling only).

The deployment installs each chart with pulumi-kubernetes `helm.v3.Release`; here every recorded release
(chart name and version, values, release name and namespace, from the recorded graph) is matched with its
vendored chart source (`tests/upstream/charts.yaml`, trees under `tests/upstream/charts/`) and rendered with
`helm_python` (libhelm_c: Helm's Go SDK; `Chart.render`, no cluster, `lookup` finds nothing), so the tests
and reviewers see every object as Kubernetes will receive it.

`python -m tools.charts vendor <chart> --git-dir DIR` (re)writes a vendored tree from a clone of its
repository, exactly as its manifest entry says, and records the tree's digest in the manifest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tools.offline.mockgraph import ROOT, Graph, RecordedResource, unwrap

MANIFEST = ROOT / "tests" / "upstream" / "charts.yaml"
CHARTS_DIR = ROOT / "tests" / "upstream" / "charts"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
GENERATED_MARK = "GENERATED-AT-INSTALL"
"""Stands for a value the chart makes up at each render (a random key, a checksum over it): the offline render
has no earlier release to look it up from, and a real upgrade reuses the stored one."""

# Kinds Kubernetes keeps outside namespaces (built in); the charts' CRDs add their own (spec.scope).
_CLUSTER_SCOPED_BUILTIN = frozenset(
    {
        "APIService",
        "CertificateSigningRequest",
        "ClusterRole",
        "ClusterRoleBinding",
        "CSIDriver",
        "CSINode",
        "CustomResourceDefinition",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PriorityClass",
        "RuntimeClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)
_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


class ChartError(RuntimeError):
    """A release whose chart is not vendored, or a vendored tree that is not what its manifest says."""


# --- the vendored sources ------------------------------------------------------------------------


@dataclass(frozen=True)
class VendoredChart:
    name: str
    version: str
    directory: Path
    entry: Mapping[str, Any]
    """Its manifest entry: source, licenses, replacements, generated and materialized files, digest."""

    @property
    def sha256(self) -> str:
        return str(self.entry.get("sha256", ""))

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def load_manifest(path: Path = MANIFEST) -> list[VendoredChart]:
    document = yaml.safe_load(path.read_text())
    return [
        VendoredChart(str(e["name"]), str(e["version"]), CHARTS_DIR / str(e["directory"]), e)
        for e in document["charts"]
    ]


def vendored_chart(name: str, version: str) -> VendoredChart:
    for chart in load_manifest():
        if chart.name == name and chart.version == version:
            return chart
    raise ChartError(
        f"chart {name} {version} is not vendored: add it to {MANIFEST.relative_to(ROOT)} and run "
        f"`python -m tools.charts vendor {name} --git-dir <clone>` (see docs/charts.md)"
    )


def tree_digest(directory: Path) -> str:
    """sha256 over `<path>\\0<sha256 of the file>\\n` for every file under `directory`, in path order."""
    if not directory.is_dir():
        raise ChartError(f"{directory} is missing")
    lines = []
    for file in sorted(p for p in directory.rglob("*") if p.is_file() or p.is_symlink()):
        if file.is_symlink():
            raise ChartError(f"{file}: vendored trees hold no symbolic links (materialize it in the manifest)")
        relative = file.relative_to(directory).as_posix()
        lines.append(f"{relative}\0{hashlib.sha256(file.read_bytes()).hexdigest()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _git(git_dir: Path, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True).stdout


def _extract(git_dir: Path, commit: str, paths: list[str], into: Path) -> None:
    archive = _git(git_dir, "archive", "--format=tar", commit, "--", *paths)
    with tempfile.TemporaryFile() as buffer:
        buffer.write(archive)
        buffer.seek(0)
        with tarfile.open(fileobj=buffer) as tar:
            tar.extractall(into, filter="tar")


def _clean_jsonschema(schema: dict[str, Any]) -> None:
    """z2jh's tools/generate-json-schema.py: drop `description` keys, one level under each property name."""
    schema.pop("description", None)
    for value in (schema.get("properties") or {}).values():
        if isinstance(value, dict):
            _clean_jsonschema(value)


def vendor(chart: VendoredChart, git_dir: Path) -> tuple[str, str]:
    """Rewrite `chart.directory` from `git_dir` as its manifest entry says; returns (tree id, digest)."""
    source = chart.entry["source"]
    commit = _git(git_dir, "rev-parse", f"{source['tag']}^{{commit}}").decode().strip()
    if commit != source["commit"]:
        raise ChartError(f"{chart.label}: tag {source['tag']} names {commit}, the manifest says {source['commit']}")
    tree = _git(git_dir, "rev-parse", f"{commit}:{source['path']}").decode().strip()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        links = [m["target"] for m in chart.entry.get("materialize", [])]
        _extract(git_dir, commit, [source["path"], *chart.entry.get("licenses", []), *links], work)
        chart_root = work / source["path"]
        for item in chart.entry.get("materialize", []):
            link = chart_root / item["link"]
            if not link.is_symlink():
                raise ChartError(f"{chart.label}: {item['link']} is not a symbolic link at {source['tag']}")
            link.unlink()
            shutil.copytree(work / item["target"], link)
        for license_file in chart.entry.get("licenses", []):
            shutil.copyfile(work / license_file, chart_root / Path(license_file).name)
        for item in chart.entry.get("replace", []):
            target = chart_root / item["file"]
            text = target.read_text()
            found = text.count(item["from"])
            if found != item["count"]:
                raise ChartError(f"{chart.label}: {item['file']} has {found} of {item['from']!r}, not {item['count']}")
            target.write_text(text.replace(item["from"], item["to"]))
        for item in chart.entry.get("generate", []):
            schema = yaml.safe_load((chart_root / item["from"]).read_text())
            _clean_jsonschema(schema)
            (chart_root / item["file"]).write_text(json.dumps(schema))
        if chart.directory.exists():
            shutil.rmtree(chart.directory)
        chart.directory.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(chart_root, chart.directory)
    return tree, tree_digest(chart.directory)


def _record_digest(name: str, tree: str, digest: str, path: Path = MANIFEST) -> None:
    """Set `source.tree` and `sha256` in the manifest entry of `name`, keeping its comments."""
    blocks = re.split(r"(?m)^(?=  - name: )", path.read_text())
    for index, block in enumerate(blocks):
        if not block.startswith(f"  - name: {name}\n"):
            continue
        block = re.sub(r"(?m)^      tree: .*\n", "", block)
        block = re.sub(r"(?m)^(      path: .*\n)", rf"\g<1>      tree: {tree}\n", block, count=1)
        block = re.sub(r"(?m)^    sha256: .*\n", "", block)
        blocks[index] = block.rstrip("\n") + f"\n    sha256: {digest}\n"
    path.write_text("".join(blocks))


# --- rendering -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedObject:
    source: str
    """The template (or `crds/` file) it came from."""
    document: dict[str, Any]
    release_namespace: str

    @property
    def kind(self) -> str:
        return str(self.document.get("kind", ""))

    @property
    def name(self) -> str:
        return str(self.document.get("metadata", {}).get("name", ""))

    @property
    def namespaced(self) -> bool:
        return self.kind not in cluster_scoped_kinds()

    @property
    def namespace(self) -> str | None:
        """Where Kubernetes puts it: its own namespace, else the release's (Helm installs it there); None for a
        cluster-wide object."""
        if not self.namespaced:
            return None
        return str(self.document.get("metadata", {}).get("namespace") or self.release_namespace)

    @property
    def key(self) -> str:
        """`Kind namespace/name`, or `Kind name` for a cluster-wide object."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespaced else f"{self.kind} {self.name}"

    @property
    def hook(self) -> str | None:
        return (self.document.get("metadata", {}).get("annotations") or {}).get("helm.sh/hook")

    def pod_spec(self) -> dict[str, Any] | None:
        spec: Any = self.document
        for part in _POD_SPEC_PATHS.get(self.kind, ("-",)):
            if not isinstance(spec, dict) or part not in spec:
                return None
            spec = spec[part]
        return spec if isinstance(spec, dict) else None

    def images(self) -> list[str]:
        spec = self.pod_spec() or {}
        containers = [*spec.get("initContainers", []), *spec.get("containers", [])]
        return [str(c.get("image")) for c in containers]


@dataclass(frozen=True)
class RenderedRelease:
    resource: str
    """The Pulumi logical name of the `helm.v3.Release`."""
    release: str
    namespace: str
    chart: VendoredChart
    values: dict[str, Any]
    objects: list[RenderedObject] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[RenderedObject]:
        return [o for o in self.objects if o.kind == kind]

    def get(self, kind: str, name: str) -> RenderedObject:
        matches = [o for o in self.objects if o.kind == kind and o.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} {kind} named {name!r} in {self.resource}")
        return matches[0]


@cache
def cluster_scoped_kinds() -> frozenset[str]:
    """Built-in cluster-wide kinds and those every vendored chart's CRDs declare with `scope: Cluster`."""
    kinds = set(_CLUSTER_SCOPED_BUILTIN)
    for chart in load_manifest():
        for crd in _crd_documents(chart):
            if crd.get("spec", {}).get("scope") == "Cluster":
                kinds.add(str(crd["spec"]["names"]["kind"]))
    return frozenset(kinds)


def _crd_documents(chart: VendoredChart) -> Iterator[dict[str, Any]]:
    crds = chart.directory / "crds"
    for file in sorted(crds.rglob("*")) if crds.is_dir() else []:
        if file.suffix in (".yaml", ".yml", ".json"):
            yield from (d for d in _load_all(file.read_text()) if d)


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_all(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=_Loader))


def _documents(rendered: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for source in sorted(rendered):
        if source.endswith("NOTES.txt"):
            continue
        for document in _load_all(rendered[source]):
            if document:
                found.append((source, document))
    return found


def _stable(first: Any, second: Any) -> Any:
    """`first` with every leaf that differs in `second` (made up at render time) replaced by the marker."""
    if isinstance(first, dict) and isinstance(second, dict) and first.keys() == second.keys():
        return {key: _stable(value, second[key]) for key, value in first.items()}
    if isinstance(first, list) and isinstance(second, list) and len(first) == len(second):
        return [_stable(a, b) for a, b in zip(first, second, strict=True)]
    return first if first == second else GENERATED_MARK


def render_chart(
    chart: VendoredChart, values: Mapping[str, Any], *, name: str, namespace: str, stable: bool = True
) -> list[RenderedObject]:
    """Every object an install of `chart` creates: its `crds/` first (Helm applies them before the rest), then
    each template's documents (hooks included), by template path. `stable` renders twice and marks what the
    chart makes up at random (see GENERATED_MARK); otherwise the objects are exactly one install's."""
    key = (str(chart.directory), chart.sha256, json.dumps(values, sort_keys=True, default=str), name, namespace, stable)
    if key not in _RENDERED:
        _RENDERED[key] = _render(chart, values, name=name, namespace=namespace, stable=stable)
    return list(_RENDERED[key])


_RENDERED: dict[tuple[str, ...] | tuple[Any, ...], list[RenderedObject]] = {}
"""Renders of this process (the snapshot tests render the same releases many times); treat them as read-only."""


def _render(
    chart: VendoredChart, values: Mapping[str, Any], *, name: str, namespace: str, stable: bool
) -> list[RenderedObject]:
    from helm_python import Chart

    with Chart.load(chart.directory) as loaded:
        crds = [(f"crds/{c['filename']}", d) for c in loaded.crds for d in _load_all(c["data"]) if d]
        first = _documents(loaded.render(dict(values), name=name, namespace=namespace, is_install=True))
        if stable:
            second = _documents(loaded.render(dict(values), name=name, namespace=namespace, is_install=True))
            if [s for s, _ in first] != [s for s, _ in second]:
                raise ChartError(f"{chart.label}: two renders of the same values made different templates")
            first = [(s, _stable(d, other)) for (s, d), (_, other) in zip(first, second, strict=True)]
    return [RenderedObject(source, document, namespace) for source, document in [*crds, *first]]


def releases(graph: Graph) -> list[RecordedResource]:
    return sorted(graph.of_type(RELEASE_TYPE), key=lambda r: r.name)


def release_chart(resource: RecordedResource) -> VendoredChart:
    inputs = unwrap(resource.inputs)
    return vendored_chart(str(inputs["chart"]), str(inputs["version"]))


def render_release(resource: RecordedResource, *, stable: bool = True) -> RenderedRelease:
    """A recorded `helm.v3.Release` rendered with its own values, name and namespace (secrets unwrapped)."""
    inputs = unwrap(resource.inputs)
    chart = release_chart(resource)
    values = dict(inputs.get("values") or {})
    name, namespace = str(inputs.get("name") or resource.name), str(inputs.get("namespace") or "default")
    objects = render_chart(chart, values, name=name, namespace=namespace, stable=stable)
    return RenderedRelease(resource.name, name, namespace, chart, values, objects)


def render_graph(graph: Graph) -> list[RenderedRelease]:
    return [render_release(resource) for resource in releases(graph)]


PROGRAM = "program"
"""The checkov "release" name of the objects the program writes itself (not through a chart)."""
_NOT_OBJECTS = (RELEASE_TYPE, "kubernetes:yaml/v2:ConfigGroup", "pulumi:providers:kubernetes")


def _as_sent(value: Any) -> Any:
    """A recorded input as the program wrote it: the recording's protobuf numbers are all floats
    (runAsUser 65534.0, which checkov's `isinstance(..., int)` calls no UID), and fresh containers, so
    a dict the program shares between containers is not dumped as a YAML alias."""
    if isinstance(value, dict):
        return {key: _as_sent(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_sent(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def program_objects(graph: Graph) -> list[dict[str, Any]]:
    """Every Kubernetes object the program declares itself (CronJobs, Roles, StorageClasses, Trident
    backends, restored volumes, ...), as the API server receives it: the same scanners as chart output."""
    return [
        _as_sent(unwrap(resource.inputs))
        for resource in graph.resources
        if resource.type.startswith("kubernetes:") and resource.type not in _NOT_OBJECTS
    ]


def lint_release(release: RenderedRelease, kube_version: str) -> list[str]:
    """Helm's own lint of the chart with the release's values for `kube_version` (e.g. "1.35.0"): its
    warnings and errors (info-level messages, such as a missing icon, are not findings)."""
    from helm_python import lint

    report = lint(release.chart.directory, release.values, namespace=release.namespace, kube_version=f"v{kube_version}")
    findings = [f"{m['path']}: {m['error']}" for m in report.get("messages", []) if int(m.get("severity", 0)) >= 2]
    return findings + [str(e) for e in report.get("errors") or []]


def object_digest(document: Any) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()[:16]


def summarize(release: RenderedRelease, scrub: Any = None) -> dict[str, Any]:
    """What a snapshot keeps of a rendered release: chart, and per object a digest (and its images), so a
    chart bump or a values change shows which objects change, without thousands of lines."""
    objects: dict[str, Any] = {}
    for item in release.objects:
        document = scrub(item.document) if scrub else item.document
        entry: dict[str, Any] = {"sha256": object_digest(document)}
        if item.hook:
            entry["hook"] = item.hook
        images = item.images()
        if images:
            entry["images"] = sorted(set(images))
        objects[item.key] = entry
    return {
        "chart": f"{release.chart.label} ({release.chart.directory.relative_to(ROOT).as_posix()})",
        "objects": dict(sorted(objects.items())),
    }


def as_received(item: RenderedObject) -> dict[str, Any]:
    """The object as the API server stores it: a namespaced object without a namespace gets the release's."""
    document: dict[str, Any] = json.loads(json.dumps(item.document))
    if item.namespaced:
        document.setdefault("metadata", {})["namespace"] = item.namespace
    return document


# --- a scanner nobody here wrote -----------------------------------------------------------------

CHECKOV_VENV = ROOT / ".venv-checkov"
"""checkov lives in a virtualenv of its own (`make setup`): its pins (packaging 23, boto3 1.35, ...) would
downgrade packages the program and the tests use. Pinned in requirements-checkov.txt."""


@dataclass(frozen=True, order=True)
class Finding:
    check: str
    release: str
    resource: str
    """checkov's resource ID: `Kind.namespace.name`."""
    title: str = field(compare=False, default="")


def checkov(
    stacks: Mapping[str, list[RenderedRelease]],
    workdir: Path,
    program: Mapping[str, list[dict[str, Any]]] | None = None,
) -> dict[str, list[Finding]]:
    """checkov's kubernetes checks over every rendered object of every stack, offline; findings by stack.
    `program`: per stack, the objects the program writes itself (`program_objects`), reported under the
    release name `program`."""
    binary = CHECKOV_VENV / "bin" / "checkov"
    if not binary.exists():
        raise ChartError(f"{binary} is missing: run `make setup` (it installs requirements-checkov.txt there)")
    for stack, rendered in stacks.items():
        for release in rendered:
            target = workdir / stack / f"{release.resource}.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(yaml.safe_dump_all([as_received(o) for o in release.objects], sort_keys=False))
    for stack, documents in (program or {}).items():
        target = workdir / stack / f"{PROGRAM}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    command = [str(binary), "-d", str(workdir), "--framework", "kubernetes", "--skip-download", "--quiet"]
    result = subprocess.run(
        [*command, "--compact", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=workdir,
    )
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise ChartError(f"checkov failed ({result.returncode}): {result.stderr[-2000:]}")
    reports = json.loads(result.stdout)
    found: dict[str, list[Finding]] = {stack: [] for stack in stacks}
    for report in reports if isinstance(reports, list) else [reports]:
        for failed in report.get("results", {}).get("failed_checks", []):
            stack, file = Path(failed["file_path"]).parts[-2:]
            # Graph checks (CKV2_*) append the pod's labels to `Kind.namespace.name`: keep the object's part.
            resource = ".".join(str(failed["resource"]).split(".")[:3])
            found[stack].append(Finding(failed["check_id"], Path(file).stem, resource, failed["check_name"]))
    return {stack: sorted(set(findings)) for stack, findings in found.items()}


def dump_objects(objects: Iterable[RenderedObject]) -> str:
    """The objects as one YAML stream, each under a comment naming where it came from."""
    parts = [f"# Source: {o.source}\n" + yaml.safe_dump(o.document, sort_keys=False) for o in objects]
    return "---\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.charts", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    vendor_parser = commands.add_parser("vendor", help="rewrite a vendored chart from a clone of its repository")
    vendor_parser.add_argument("name", help="chart name, as in tests/upstream/charts.yaml")
    vendor_parser.add_argument("--git-dir", type=Path, required=True, help="the repository's git directory")
    check_parser = commands.add_parser("check", help="recompute every vendored tree's digest")
    check_parser.set_defaults(name=None)
    args = parser.parse_args(argv)
    if args.command == "vendor":
        chart = next((c for c in load_manifest() if c.name == args.name), None)
        if chart is None:
            print(f"error: no chart {args.name!r} in {MANIFEST.relative_to(ROOT)}", file=sys.stderr)
            return 2
        tree, digest = vendor(chart, args.git_dir)
        _record_digest(chart.name, tree, digest)
        print(f"{chart.label}: {chart.directory.relative_to(ROOT)} (tree {tree}), sha256 {digest}")
        return 0
    status = 0
    for chart in load_manifest():
        digest = tree_digest(chart.directory)
        ok = digest == chart.sha256
        status |= not ok
        print(f"{'ok' if ok else 'MISMATCH'}  {chart.label}  {digest}")
    return status


if __name__ == "__main__":
    sys.exit(main())
