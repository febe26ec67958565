"""The deployment picture: where things run and who talks to whom on which port, drawn from the site plan.

The component picture (tools/offline/diagram.py) shows the program; this one shows the site: the operator's
machine, the users, vCenter with the compute cluster, datastore and port group the VMs use, the VMs with
their names and addresses, the API virtual IP, the hub's address and name, the ONTAP LIFs, the directory,
the object store and the download hosts. Every box and arrow comes from `site_plan.site_plan()`: one arrow
per source and destination box, labelled with the ports of the firewall rows between them, so the picture
shows exactly the rows of docs/site.md and follows a stack's settings. ESXi hosts are not drawn: the program
talks to vCenter only, and DRS places the VMs. Each box's tooltip names the site-plan endpoints
it stands for (shown on hover in an SVG viewer).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

from config.settings import Settings
from tools.offline.diagram import draw
from tools.preflight.site_plan import Flow, Rendered, Vm, _control_planes, _nodes, _vip, site_plan

# Up to this many workers get a line each; more are one line with the name and address range, so a
# 150-worker site stays a picture, not a list (the DNS table in docs/site.md has every name).
LISTED_WORKERS = 8

_NODES_CLUSTER = "cluster_nodes"


@dataclass
class _Box:
    ident: str
    label: str
    cluster: str
    endpoints: list[str] = field(default_factory=list)
    style: str = ""


def _quote(text: str) -> str:
    """A DOT string; a newline in the text is Graphviz's centred line break `\\n`."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _vm_line(vm: Vm) -> str:
    return f"{vm.fqdn or vm.name}  {vm.address}"


def _contiguous(addresses: list[IPv4Address]) -> bool:
    return all(int(b) - int(a) == 1 for a, b in itertools.pairwise(addresses))


def _template_source(settings: Settings) -> str:
    """What the nodes are cloned from: the operator's template, or the one the program builds (and where)."""
    image = settings.vsphere.template_image
    if image is None:
        return str(settings.vsphere.template)
    return (
        f"the template the program builds from {image.url.rsplit('/', 1)[-1]} (at {image.address} while it is prepared)"
    )


def workers_label(settings: Settings, rendered: Rendered) -> str:
    """One line per worker for a small pool; for a large one its size, address range, first and last names."""
    by_name = {vm.name: vm for vm in rendered.vms}
    vms = [by_name[n.name] for n in settings.workers if n.name in by_name]  # pool order: -worker-1, -2, …
    if len(vms) <= LISTED_WORKERS:
        return "\n".join([f"{len(vms)} workers", *(_vm_line(vm) for vm in vms)])
    addresses = [IPv4Address(vm.address) for vm in vms]
    span = f"{addresses[0]} – {addresses[-1]}"
    if not _contiguous(addresses):
        span = f"{addresses[0]} … {addresses[-1]} (not contiguous: see the DNS table)"
    return f"{len(vms)} workers {span}\n{vms[0].fqdn or vms[0].name} … {vms[-1].fqdn or vms[-1].name}"


class _Picture:
    """Boxes keyed by the site-plan endpoint they stand for; clusters as nested Graphviz subgraphs."""

    def __init__(self, settings: Settings, rendered: Rendered, flows: list[Flow]) -> None:
        self.settings = settings
        vs = settings.vsphere
        subnet = settings.network.subnet
        # cluster id -> (parent cluster id or "", label, fill colour)
        self.clusters: dict[str, tuple[str, str, str]] = {
            "cluster_dc": ("", f"vSphere datacenter {vs.datacenter}", "#eef3f8"),
            "cluster_compute": (
                "cluster_dc",
                f"compute cluster {vs.compute_cluster} · datastore {vs.datastore} · folder {vs.folder}\n"
                f"clones of {_template_source(settings)}",
                "#e2ecf5",
            ),
            _NODES_CLUSTER: ("cluster_compute", f"VMs on port group {vs.network} ({subnet})", "#d5e4f1"),
            "cluster_vips": ("cluster_compute", "virtual IPs (kube-vip ARP, from the control planes)", "#d5e4f1"),
            "cluster_ontap": ("", f"ONTAP SVM {settings.storage.ontap.svm}", "#f3f0e6"),
        }
        self.boxes: dict[str, _Box] = {}
        cp_names = {n.name for n in settings.control_planes}
        cps = [vm for vm in rendered.vms if vm.name in cp_names]
        cps.sort(key=lambda vm: int(IPv4Address(vm.address)))
        self._add("operator", "operator's machine\n(pulumi up, kubectl)", "", ["operator"])
        self._add("vcenter", f"vCenter {rendered.vcenter}", "cluster_dc", [f"vCenter {rendered.vcenter}"])
        self._add(
            "control_planes",
            "\n".join([f"{len(cps)} control planes", *(_vm_line(vm) for vm in cps)]),
            _NODES_CLUSTER,
            [_control_planes(settings)],
        )
        self._add("workers", workers_label(settings, rendered), _NODES_CLUSTER, [])
        self.tooltips = {_NODES_CLUSTER: _nodes(settings)}
        self._add("vip", f"{_vip(settings)}\n(kubeadm controlPlaneEndpoint)", "cluster_vips", [_vip(settings)])
        hub = settings.hub
        self.hub_endpoint = next(f.destination for f in flows if f.destination.startswith("hub "))
        self._add(
            "hub",
            f"hub {hub.hostname}\n{hub.address} (proxy-public LoadBalancer)",
            "cluster_vips",
            [self.hub_endpoint],
        )
        for flow in flows:
            for endpoint in (flow.source, flow.destination):
                if self.box_of(endpoint) is None:
                    self._place(endpoint)

    def _add(self, ident: str, label: str, cluster: str, endpoints: list[str], style: str = "") -> None:
        self.boxes[ident] = _Box(ident, label, cluster, list(endpoints), style)

    def box_of(self, endpoint: str) -> str | None:
        if endpoint == _nodes(self.settings):
            return _NODES_CLUSTER
        for box in self.boxes.values():
            if endpoint in box.endpoints:
                return box.ident
        return None

    def _place(self, endpoint: str) -> None:
        """A box for an endpoint the fixed layout has none for: by the site plan's names for them."""
        if endpoint.startswith("ONTAP "):
            self._add(f"ontap_{len(self.boxes)}", endpoint.removeprefix("ONTAP "), "cluster_ontap", [endpoint])
        elif " " not in endpoint and "." in endpoint:
            # A bare host name is a download: chart repositories, manifest hosts, apt repositories, registries.
            if "downloads" not in self.boxes:
                self._add("downloads", "downloads (HTTPS)", "", [])
            box = self.boxes["downloads"]
            box.endpoints.append(endpoint)
            box.endpoints.sort()
            box.label = "downloads (HTTPS)\n" + "\n".join(box.endpoints)
        else:
            # users, a front proxy, the directory, the object store, and any endpoint a new rule adds.
            self._add(f"site_{len(self.boxes)}", endpoint, "", [endpoint], style="external")


def _ends(picture: _Picture, flow: Flow) -> tuple[str, str, dict[str, str]]:
    """Tail box, head box and Graphviz attributes of the arrow for a flow. The node subnet is a cluster:
    an arrow from it starts at the workers box and is clipped at the cluster's border (ltail), one to it
    ends at the control planes (lhead); node-to-node rows join the two pools both ways."""
    source, destination = picture.box_of(flow.source), picture.box_of(flow.destination)
    assert source is not None and destination is not None, "every endpoint got a box in _Picture()"
    attributes: dict[str, str] = {}
    if source == _NODES_CLUSTER and destination == _NODES_CLUSTER:
        return "control_planes", "workers", {"dir": "both", "style": "dashed"}
    if source == _NODES_CLUSTER:
        source = "workers"
        if picture.boxes[destination].cluster != _NODES_CLUSTER:
            attributes["ltail"] = _NODES_CLUSTER
    if destination == _NODES_CLUSTER:
        destination = "control_planes"
        attributes["lhead"] = _NODES_CLUSTER
    return source, destination, attributes


def render_dot(stack: str, settings: Settings, rendered: Rendered) -> str:
    """Graphviz source of the deployment: the boxes of the site and one arrow per pair of boxes with the
    ports of the firewall rows between them; the arrow's tooltip lists those rows."""
    _records, flows = site_plan(settings, rendered)
    picture = _Picture(settings, rendered, flows)
    edges: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[Flow]] = {}
    for flow in flows:
        tail, head, attributes = _ends(picture, flow)
        edges.setdefault((tail, head, tuple(sorted(attributes.items()))), []).append(flow)
    lines = [
        "digraph deployment {",
        "  graph [rankdir=LR, fontname=Helvetica, fontsize=12, compound=true, nodesep=0.25, ranksep=1.1,",
        f"         label={_quote(f'dsaas — deployment of stack {stack}, drawn from the site plan')}, labelloc=t];",
        '  node [shape=box, style="rounded,filled", fillcolor=white, fontname=Helvetica, fontsize=9];',
        '  edge [color="#555555", fontname=Helvetica, fontsize=8];',
    ]

    def emit(cluster: str, indent: str) -> None:
        for box in picture.boxes.values():
            if box.cluster == cluster:
                fill = ', fillcolor="#fff7e0"' if box.style == "external" else ""
                tooltip = "\n".join(box.endpoints) or box.label
                lines.append(f"{indent}{box.ident} [label={_quote(box.label)}, tooltip={_quote(tooltip)}{fill}];")
        for child, (parent, label, colour) in picture.clusters.items():
            if parent != cluster or not any(_inside(picture, b.cluster, child) for b in picture.boxes.values()):
                continue
            lines.append(f"{indent}subgraph {child} {{")
            tooltip = picture.tooltips.get(child, label)
            lines.append(
                f"{indent}  label={_quote(label)}; tooltip={_quote(tooltip)}; "
                f'style="rounded,filled"; fillcolor="{colour}"; color="#00457d";'
            )
            emit(child, indent + "  ")
            lines.append(f"{indent}}}")

    emit("", "  ")
    for (tail, head, arrow), rows in edges.items():
        ports = list(dict.fromkeys(f.port for f in rows))
        label = "\n".join(ports)
        if dict(arrow).get("dir") == "both":
            label = "any node ↔ any node\n" + label
        tooltip = "\n".join(f"{f.source} → {f.destination}: {f.port} ({f.why})" for f in rows)
        extra = "".join(f", {k}={_quote(v)}" for k, v in arrow)
        lines.append(f"  {tail} -> {head} [label={_quote(label)}, tooltip={_quote(tooltip)}{extra}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _inside(picture: _Picture, cluster: str, ancestor: str) -> bool:
    while cluster:
        if cluster == ancestor:
            return True
        cluster = picture.clusters[cluster][0]
    return False


def write_diagram(stack: str, settings: Settings, rendered: Rendered, path: Path) -> Path:
    """The deployment picture drawn to `path` (.svg or .png) by the same Graphviz call as the component picture."""
    return draw(render_dot(stack, settings, rendered), path)
