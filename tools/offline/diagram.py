"""The architecture picture, drawn from the recorded graph with Graphviz.

One box per component (ComponentResource) with its resources inside; arrows between components for
the dependencies that cross them, labelled with how many there are. Drawn from the same recording as
the preview, so the picture cannot drift from the code.
"""

from __future__ import annotations

import itertools
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


def _boxes(components: dict[str, RecordedResource]) -> dict[str, str]:
    """Each component's box: its own, or, for components of one type under one component (a node's
    `KubeadmNode`), one box for all of them inside their parent's box, so 150 workers stay one box."""
    siblings = Counter((r.parent, r.type) for r in components.values() if r.parent in components)
    return {
        urn: f"{r.parent}|{r.type}" if r.parent in components and siblings[(r.parent, r.type)] > 1 else urn
        for urn, r in components.items()
    }


def _box_of(resource: RecordedResource, boxes: dict[str, str]) -> str:
    """The box a resource is drawn in: its parent component's (a component's own box is where it is)."""
    if resource.urn in boxes:
        return boxes[resource.urn]
    return boxes.get(resource.parent, "stack")


def render_dot(graph: Graph) -> str:
    """Graphviz source: clusters for components; steps of one kind on a node collapsed to keep it legible."""
    components = {r.urn: r for r in graph.resources if r.type.startswith("dsaas:")}
    boxes = _boxes(components)
    members: dict[str, list[RecordedResource]] = {box: [] for box in boxes.values()}
    members["stack"] = []
    for resource in graph.resources:
        if resource.urn not in components:
            members[_box_of(resource, boxes)].append(resource)
    order = list(dict.fromkeys(boxes[r.urn] for r in graph.in_dependency_order(list(components.values()))))
    order.append("stack")
    grouped = {box: [r for r in components.values() if boxes[r.urn] == box] for box in order if box != "stack"}
    nested: dict[str, list[str]] = {}
    for box, group in grouped.items():
        if box not in components:  # a group: drawn inside its parent's box
            nested.setdefault(group[0].parent, []).append(box)
    lines = [
        "digraph dsaas {",
        "  graph [rankdir=LR, fontname=Helvetica, fontsize=12, compound=true, nodesep=0.15, ranksep=0.6,",
        f"         label={_quote(f'dsaas — stack {graph.stack}, drawn from the program')}, labelloc=t];",
        '  node [shape=box, style="rounded,filled", fillcolor=white, fontname=Helvetica, fontsize=9];',
        '  edge [color="#555555", fontname=Helvetica, fontsize=9];',
    ]
    anchors: dict[str, str] = {}
    node_ids = itertools.count()

    def title(box: str) -> str:
        if box == "stack":
            return "stack"
        group = grouped[box]
        kind = group[0].type.rsplit(":", 1)[-1]
        return f"{kind} «{group[0].name}»" if len(group) == 1 else f"{kind} ×{len(group)} (one per node)"

    def emit(box: str, indent: str) -> None:
        inner = nested.get(box, [])
        if not members[box] and not inner:
            return
        lines.append(f"{indent}subgraph cluster_{order.index(box)} {{")
        lines.append(
            f'{indent}  label={_quote(title(box))}; style="rounded,filled"; fillcolor="#eef3f8"; color="#00457d";'
        )
        counts = Counter(_resource_label(r) for r in members[box])
        for kind in sorted(counts):
            node_id = f"n{next(node_ids)}"
            label = kind if counts[kind] == 1 else f"{kind} ×{counts[kind]}"
            lines.append(f"{indent}  {node_id} [label={_quote(label)}];")
            anchors.setdefault(box, node_id)
        for child in inner:
            emit(child, indent + "  ")
        lines.append(f"{indent}}}")

    for box in order:
        if box == "stack" or box in components:
            emit(box, "  ")
    crossing: Counter[tuple[str, str]] = Counter()
    by_urn = {r.urn: r for r in graph.resources}
    for resource in graph.resources:
        source = _box_of(resource, boxes)
        for dependency in resource.dependencies:
            if dependency not in by_urn:
                continue
            target = _box_of(by_urn[dependency], boxes)
            if target != source and source in anchors and target in anchors:
                crossing[(target, source)] += 1
    inside = {child: parent for parent, children in nested.items() for child in children}
    for (before, after), count in sorted(crossing.items(), key=lambda item: (order.index(item[0][0]), item[0][1])):
        # An arrow clipped at a box that holds its other end would have no border to stop at.
        ends = [] if inside.get(after) == before else [f"ltail=cluster_{order.index(before)}"]
        ends += [] if inside.get(before) == after else [f"lhead=cluster_{order.index(after)}"]
        lines.append(f"  {anchors[before]} -> {anchors[after]} [{', '.join(ends)}, label={_quote(str(count))}];")
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
