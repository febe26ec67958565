"""The architecture picture, drawn from the recorded graph with Graphviz.

One box per component (ComponentResource) with its resources inside; arrows between components for
the dependencies that cross them, labelled with how many there are. Drawn from the same recording as
the preview, so the picture cannot drift from the code.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

from tools.offline.mockgraph import Graph, RecordedResource, unwrap

_TYPE_LABELS = {
    "vsphere:index/virtualMachine:VirtualMachine": "VM",
    "vsphere:index/computeClusterVmAntiAffinityRule:ComputeClusterVmAntiAffinityRule": "DRS anti-affinity",
    "command:remote:Command": "SSH step",
    "kubernetes:helm.sh/v3:Release": "Helm release",
    "kubernetes:yaml/v2:ConfigGroup": "manifests",
    "pulumi:providers:kubernetes": "Kubernetes provider",
    "pulumi:providers:vsphere": "vSphere provider",
}


def _resource_label(resource: RecordedResource) -> str:
    """What a box says: the kind, and for charts which chart at which version."""
    if resource.type == "kubernetes:helm.sh/v3:Release":
        return f"Helm: {unwrap(resource.inputs.get('chart'))} {unwrap(resource.inputs.get('version'))}"
    return _type_label(resource.type)


def _type_label(resource_type: str) -> str:
    if resource_type in _TYPE_LABELS:
        return _TYPE_LABELS[resource_type]
    return resource_type.rsplit(":", 1)[-1]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _component_of(resource: RecordedResource, components: dict[str, RecordedResource]) -> str:
    return resource.parent if resource.parent in components else "stack"


def render_dot(graph: Graph) -> str:
    """Graphviz source: clusters for components; steps of one kind on a node collapsed to keep it legible."""
    components = {r.urn: r for r in graph.resources if r.type.startswith("dsaas:")}
    members: dict[str, list[RecordedResource]] = {urn: [] for urn in components}
    members["stack"] = []
    for resource in graph.resources:
        if resource.urn in components:
            continue
        members[_component_of(resource, components)].append(resource)
    order = [r.urn for r in graph.in_dependency_order(list(components.values()))] + ["stack"]
    lines = [
        "digraph dsaas {",
        "  graph [rankdir=LR, fontname=Helvetica, fontsize=12, compound=true, nodesep=0.15, ranksep=0.6,",
        f"         label={_quote(f'dsaas — stack {graph.stack}, drawn from the program')}, labelloc=t];",
        '  node [shape=box, style="rounded,filled", fillcolor=white, fontname=Helvetica, fontsize=9];',
        '  edge [color="#555555", fontname=Helvetica, fontsize=9];',
    ]
    anchors: dict[str, str] = {}
    node_count = 0
    for index, urn in enumerate(order):
        resources = members[urn]
        if not resources:
            continue
        title = f"{components[urn].type.rsplit(':', 1)[-1]} «{components[urn].name}»" if urn in components else "stack"
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f'    label={_quote(title)}; style="rounded,filled"; fillcolor="#eef3f8"; color="#00457d";')
        counts = Counter(_resource_label(r) for r in resources)
        for kind in sorted(counts):
            node_id = f"n{node_count}"
            node_count += 1
            label = kind if counts[kind] == 1 else f"{kind} ×{counts[kind]}"
            lines.append(f"    {node_id} [label={_quote(label)}];")
            anchors.setdefault(urn, node_id)
        lines.append("  }")
    crossing: Counter[tuple[str, str]] = Counter()
    by_urn = {r.urn: r for r in graph.resources}
    for resource in graph.resources:
        source = _component_of(resource, components) if resource.urn not in components else resource.urn
        for dependency in resource.dependencies:
            if dependency not in by_urn:
                continue
            target_resource = by_urn[dependency]
            target = (
                target_resource.urn if target_resource.urn in components else _component_of(target_resource, components)
            )
            if target != source and source in anchors and target in anchors:
                crossing[(target, source)] += 1
    for (before, after), count in sorted(crossing.items(), key=lambda item: (order.index(item[0][0]), item[0][1])):
        lines.append(
            f"  {anchors[before]} -> {anchors[after]} [ltail=cluster_{order.index(before)}, "
            f"lhead=cluster_{order.index(after)}, label={_quote(str(count))}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


class DiagramError(RuntimeError):
    pass


def draw(source: str, path: Path) -> Path:
    """Graphviz source rendered to SVG or PNG (by the file's suffix) with `dot`."""
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png"):
        raise DiagramError(f"{path}: the diagram is written as .svg or .png")
    dot = shutil.which("dot")
    if dot is None:
        raise DiagramError("Graphviz is not installed: apt-get install graphviz (make setup does it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([dot, f"-T{fmt}", "-o", str(path)], input=source, text=True, check=True)
    return path


def write_diagram(graph: Graph, path: Path) -> Path:
    """The architecture picture of `graph`, drawn to `path` (.svg or .png)."""
    return draw(render_dot(graph), path)
