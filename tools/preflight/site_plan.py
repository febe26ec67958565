"""What a site must prepare for a stack: the DNS records and the firewall openings, read from the program.

    python -m tools.site_plan <stack> [--config-dir DIR] [--format text|markdown] [--clis] [--diagram FILE]

Runs the real program offline (as `python -m tools.preview` does) and reads what it renders: the VM and
host names, the SSH connection of every node command, the Calico values (encapsulation, BGP, WireGuard),
the Trident backends (drivers, LIFs, NFS mount options), the hub's LDAP settings and its proxy Service
(rendered by the vendored z2jh chart), the object store of the backups, the apt repositories of the node
script, the chart repositories, manifest URLs and the images the program pins. Each row of the output is
made by one small rule below from those facts, so a change to a setting or a renderer changes the table.
`--clis` prints instead the command-line tools the operator's later steps use, at the pinned versions;
`--diagram FILE` (.svg or .png) draws the same rows as a picture of the deployment (deployment_diagram.py).

Exit status: 0 printed, 2 the stack file or its settings are refused (the same message as tools.preview),
or `--diagram` names a format other than .svg or .png, or Graphviz is missing.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from components import cloud_init
from config import versions
from config.settings import Settings, SettingsError, parse_settings
from tools.offline import charts
from tools.offline.environment import deployed_images
from tools.offline.mockgraph import (
    ROOT,
    Graph,
    StackFileError,
    project_defaults,
    read_stack_values,
    run_program,
    stack_file,
    unwrap,
)

# Upstream references the port rules cite (the ports are the components' defaults, which the program keeps).
K8S_PORTS = "kubernetes.io/docs/reference/networking/ports-and-protocols"
CALICO_PORTS = "docs.tigera.io/calico/latest/getting-started/kubernetes/requirements#network-requirements"
# NFSv3 needs the portmapper and ONTAP's mountd besides 2049 (ONTAP: "NFS and SMB file and directory
# naming dependencies" / TR-4067 lists 111 and 635); NFSv4.x uses 2049 only.
NFS3_VERSIONS = re.compile(r"(?:^|,)(?:nfs)?vers=3(?:,|$)")
URL_HOST = re.compile(r"https://([A-Za-z0-9.-]+)")
Format = Literal["text", "markdown"]


@dataclass(frozen=True)
class DnsRecord:
    name: str
    kind: str
    value: str
    why: str


@dataclass(frozen=True)
class Flow:
    source: str
    destination: str
    port: str
    why: str


@dataclass(frozen=True)
class Vm:
    name: str
    """The vSphere VM name, also the guest's host name (cloud-init `hostname`)."""
    fqdn: str | None
    """cloud-init `fqdn`: the name plus the first search domain, when the stack has one."""
    address: str


@dataclass(frozen=True)
class Rendered:
    """The facts the rules read from the recorded graph: what the program really deploys."""

    vcenter: str
    vms: tuple[Vm, ...]
    ssh_ports: frozenset[int]
    calico: dict[str, Any]
    backends: tuple[dict[str, Any], ...]
    ldap: dict[str, Any]
    hub_service: dict[str, Any]
    apt_hosts: tuple[str, ...]
    operator_urls: tuple[str, ...]
    images: tuple[str, ...]


# --- reading the graph ------------------------------------------------------------------------------


def _of_type(graph: Graph, type_: str) -> list[Any]:
    return [r for r in graph.resources if r.type == type_]


def _release(graph: Graph, chart: str) -> Any | None:
    found = [r for r in _of_type(graph, "kubernetes:helm.sh/v3:Release") if unwrap(r.inputs["chart"]) == chart]
    return found[0] if found else None


def read_vms(graph: Graph) -> tuple[Vm, ...]:
    vms = []
    for resource in graph.node_vms():
        extra = unwrap(resource.inputs["extraConfig"])
        user_data = yaml.safe_load(cloud_init.decode(extra["guestinfo.userdata"]))
        meta = yaml.safe_load(cloud_init.decode(extra["guestinfo.metadata"]))
        (ethernet,) = meta["network"]["ethernets"].values()
        address = str(ethernet["addresses"][0]).split("/")[0]
        vms.append(Vm(str(unwrap(resource.inputs["name"])), user_data.get("fqdn"), address))
    return tuple(vms)


def read_rendered(graph: Graph) -> Rendered:
    (provider,) = _of_type(graph, "pulumi:providers:vsphere")
    commands = _of_type(graph, "command:remote:Command")
    # pulumi-command's default port is 22; the program sets it explicitly on each connection.
    ssh_ports = frozenset(int(unwrap(c.inputs["connection"]).get("port", 22)) for c in commands)
    calico = _release(graph, "tigera-operator")
    hub = _release(graph, "jupyterhub")
    assert calico is not None and hub is not None, "the program always deploys Calico and the hub"
    hub_values = unwrap(hub.inputs["values"])
    service = next(
        o.document for o in charts.render_release(hub).objects if o.kind == "Service" and o.name == "proxy-public"
    )
    prepare = [unwrap(c.inputs.get("stdin") or "") for c in commands if c.name.endswith("-prepare")]
    apt_hosts = sorted(
        {h for script in prepare for line in script.splitlines() if "deb " in line for h in URL_HOST.findall(line)}
    )
    urls = [
        str(unwrap(r.inputs.get("repositoryOpts", {})).get("repo", ""))
        for r in _of_type(graph, "kubernetes:helm.sh/v3:Release")
    ]
    urls += [
        str(f) for r in _of_type(graph, "kubernetes:yaml/v2:ConfigGroup") for f in unwrap(r.inputs.get("files") or [])
    ]
    return Rendered(
        vcenter=str(unwrap(provider.inputs["vsphereServer"])),
        vms=tuple(sorted(read_vms(graph), key=lambda vm: vm.name)),
        ssh_ports=ssh_ports,
        calico=unwrap(calico.inputs["values"]),
        # Resources register concurrently: sort what the table lists, so two runs print the same text.
        backends=tuple(
            sorted(
                (
                    unwrap(r.inputs["spec"])
                    for r in _of_type(graph, "kubernetes:trident.netapp.io/v1:TridentBackendConfig")
                ),
                key=lambda spec: str(spec["storageDriverName"]),
            )
        ),
        ldap=hub_values["hub"]["config"]["LDAPAuthenticator"],
        hub_service={**service["spec"], "annotations": service["metadata"].get("annotations", {})},
        apt_hosts=tuple(apt_hosts),
        operator_urls=tuple(sorted({u for u in urls if u})),
        images=tuple(sorted({i["image"] for i in deployed_images(graph)})),
    )


# --- the rules: one per kind of record or opening ----------------------------------------------------


def dns_records(settings: Settings, rendered: Rendered) -> list[DnsRecord]:
    """The hub's name (users open it; its certificate names it) and every node's names. The API server
    is reached by its virtual IP: kubeadm's controlPlaneEndpoint and certSANs are addresses, no name."""
    records = [
        DnsRecord(settings.hub.hostname, "A", str(settings.hub.address), "dsaas:hub.hostname → dsaas:hub.address")
    ]
    order = {node.name: i for i, node in enumerate(settings.all_nodes)}  # control planes, then workers
    for vm in sorted(rendered.vms, key=lambda vm: order.get(vm.name, len(order))):
        if vm.fqdn:
            records.append(DnsRecord(vm.fqdn, "A", vm.address, "node (cloud-init fqdn: name + first searchDomain)"))
        else:
            records.append(DnsRecord(vm.name, "A", vm.address, "node (no dsaas:network.searchDomains: short name)"))
    return records


def _nodes(settings: Settings) -> str:
    return f"nodes ({settings.network.subnet})"


def _control_planes(settings: Settings) -> str:
    return "control planes (" + ", ".join(str(n.address) for n in settings.control_planes) + ")"


def _vip(settings: Settings) -> str:
    return f"API VIP {settings.cluster.control_plane_endpoint}"


def operator_flows(settings: Settings, rendered: Rendered) -> list[Flow]:
    """What the operator's machine (where `pulumi up` runs) connects to: vCenter through the vsphere
    provider, each node over SSH (pulumi-command), the API server (the kubernetes provider), and what
    the providers download there: Helm chart repositories, manifest URLs."""
    flows = [Flow("operator", f"vCenter {rendered.vcenter}", "443/tcp", "vsphere provider (vsphere:vsphereServer)")]
    for port in sorted(rendered.ssh_ports):
        flows.append(Flow("operator", _nodes(settings), f"{port}/tcp", "SSH: pulumi-command runs the node scripts"))
    flows.append(
        Flow(
            "operator",
            _vip(settings),
            f"{settings.cluster.api_server_port}/tcp",
            "kubernetes provider, kubectl (dsaas:apiServerPort)",
        )
    )
    for host in sorted({urlsplit(u).hostname or u for u in rendered.operator_urls}):
        flows.append(Flow("operator", host, "443/tcp", "Helm charts and manifests the kubernetes provider fetches"))
    image = settings.vsphere.template_image
    if image is not None:
        flows.append(
            Flow(
                "operator",
                urlsplit(image.url).hostname or image.url,
                "443/tcp",
                "the template's cloud image (dsaas:vsphere.templateImage.url), downloaded once per machine",
            )
        )
        flows.append(
            Flow(
                "operator",
                f"ESXi hosts of {settings.vsphere.compute_cluster}",
                "443/tcp",
                "the OVA's disk is uploaded to a host through vCenter's NFC lease when the template is deployed",
            )
        )
    return flows


def cluster_flows(settings: Settings, rendered: Rendered) -> list[Flow]:
    """Node to node: kubeadm's control plane and kubelets (K8S_PORTS), then what the rendered Calico
    values turn on (CALICO_PORTS): VXLAN or IP-in-IP or BGP, WireGuard; Typha, which the tigera-operator
    always runs for the Calico it installs."""
    port = settings.cluster.api_server_port
    flows = [
        Flow(_nodes(settings), _vip(settings), f"{port}/tcp", "kubelets and pods reach the API server (kube-vip VIP)"),
        Flow(_nodes(settings), _control_planes(settings), f"{port}/tcp", "the API server on each control plane"),
        Flow(
            _control_planes(settings),
            _control_planes(settings),
            "2379-2380/tcp",
            f"etcd client and peers ({K8S_PORTS})",
        ),
        Flow(_nodes(settings), _nodes(settings), "10250/tcp", f"kubelet API: logs, exec, metrics ({K8S_PORTS})"),
    ]
    network = rendered.calico.get("installation", {}).get("calicoNetwork", {})
    encapsulations = {str(p.get("encapsulation", "IPIP")) for p in network.get("ipPools", [])}
    if encapsulations & {"VXLAN", "VXLANCrossSubnet"}:
        flows.append(
            Flow(_nodes(settings), _nodes(settings), "4789/udp", "Calico VXLAN between pods (ipPools encapsulation)")
        )
    if encapsulations & {"IPIP", "IPIPCrossSubnet"}:
        flows.append(
            Flow(
                _nodes(settings), _nodes(settings), "IP proto 4", "Calico IP-in-IP between pods (ipPools encapsulation)"
            )
        )
    if network.get("bgp", "Enabled") == "Enabled":
        flows.append(Flow(_nodes(settings), _nodes(settings), "179/tcp", "Calico BGP (calicoNetwork.bgp)"))
    flows.append(
        Flow(
            _nodes(settings), _nodes(settings), "5473/tcp", f"Calico Typha, run by the tigera-operator ({CALICO_PORTS})"
        )
    )
    if rendered.calico.get("defaultFelixConfiguration", {}).get("wireguardEnabled"):
        flows.append(Flow(_nodes(settings), _nodes(settings), "51820/udp", "Calico WireGuard (dsaas:wireguard)"))
    return flows


def storage_flows(settings: Settings, rendered: Rendered) -> list[Flow]:
    """Trident's controller calls the SVM's management LIF (ONTAP REST over HTTPS); nodes mount NFS from
    the data LIF (the mount options say which NFS version) and log in to iSCSI targets for ontap-san."""
    flows: list[Flow] = []
    for lif in sorted({str(b["managementLIF"]) for b in rendered.backends}):
        drivers = ", ".join(sorted(str(b["storageDriverName"]) for b in rendered.backends if b["managementLIF"] == lif))
        flows.append(Flow(_nodes(settings), f"ONTAP management LIF {lif}", "443/tcp", f"Trident ONTAP API ({drivers})"))
    for backend in rendered.backends:
        driver = str(backend["storageDriverName"])
        if driver.startswith("ontap-nas"):
            lif = f"ONTAP data LIF {backend.get('dataLIF', '(the SVM’s NFS LIFs)')}"
            options = str(backend.get("nfsMountOptions", ""))
            flows.append(
                Flow(_nodes(settings), lif, "2049/tcp", f"NFS, {driver} (mount options {options or 'default'})")
            )
            if NFS3_VERSIONS.search(options):
                flows.append(Flow(_nodes(settings), lif, "111/tcp+udp", f"NFSv3 portmapper ({driver}: {options})"))
                flows.append(Flow(_nodes(settings), lif, "635/tcp+udp", f"NFSv3 mountd ({driver}: {options})"))
        elif driver == "ontap-san" and backend.get("sanType", "iscsi") == "iscsi":
            flows.append(
                Flow(
                    _nodes(settings),
                    "ONTAP iSCSI data LIFs of " + str(backend["svm"]),
                    "3260/tcp",
                    "iSCSI: the hub database volume (dsaas:hub.database.kind block)",
                )
            )
    return flows


def service_flows(settings: Settings, rendered: Rendered) -> list[Flow]:
    """The hub's directory (its rendered LDAPAuthenticator settings), the backups' object store, and who
    opens the hub: users, or with TLS offloaded only the front proxy (the Service's source ranges)."""
    ldap_port = int(rendered.ldap["server_port"])
    strategy = settings.hub.ldap.tls_strategy.value
    flows = [
        Flow(
            _nodes(settings),
            f"directory {rendered.ldap['server_address']}",
            f"{ldap_port}/tcp",
            f"hub logins: LDAP, tlsStrategy {strategy}",
        )
    ]
    store = settings.backup.object_store
    if settings.backups_enabled and store is not None:
        endpoint = urlsplit(str(store.endpoint))
        port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
        flows.append(
            Flow(
                _nodes(settings),
                f"S3 {endpoint.hostname}",
                f"{port}/tcp",
                f"Velero, inventory, hub database backups (bucket {store.bucket})",
            )
        )
    ranges = rendered.hub_service.get("loadBalancerSourceRanges")
    source = "front proxy " + ", ".join(ranges) if ranges else "users"
    ports = ", ".join(f"{p['port']}/tcp" for p in rendered.hub_service.get("ports", []))
    why = "JupyterHub proxy-public Service (z2jh chart)" + (
        ": TLS offloaded, plain HTTP" if ranges else ": 80 redirects to HTTPS"
    )
    flows.append(Flow(source, f"hub {settings.hub.hostname} ({settings.hub.address})", ports, why))
    return flows


def download_flows(settings: Settings, rendered: Rendered) -> list[Flow]:
    """Where nodes download from: the apt repositories prepare-node.sh adds (the Ubuntu mirror of the
    template comes on top), and the registries of every image the program pins."""
    flows = [Flow(_nodes(settings), host, "443/tcp", "apt repository (prepare-node.sh)") for host in rendered.apt_hosts]
    registries = sorted(
        {image.split("/")[0] if "." in image.split("/")[0] else "docker.io" for image in rendered.images}
    )
    for registry in registries:
        flows.append(Flow(_nodes(settings), registry, "443/tcp", "container images the program pins"))
    return flows


def site_plan(settings: Settings, rendered: Rendered) -> tuple[list[DnsRecord], list[Flow]]:
    flows = [
        *operator_flows(settings, rendered),
        *cluster_flows(settings, rendered),
        *storage_flows(settings, rendered),
        *service_flows(settings, rendered),
        *download_flows(settings, rendered),
    ]
    return dns_records(settings, rendered), flows


@dataclass(frozen=True)
class Cli:
    name: str
    version: str
    why: str


def operator_clis(settings: Settings, requirements: str) -> list[Cli]:
    """The command-line tools the operator's steps use, at the versions the program deploys or pins:
    the Pulumi CLI of the SDK release in requirements.txt (the README's prerequisite), kubectl of the
    stack's Kubernetes (one minor of skew is supported), and for backups the Velero and AWS CLIs of the
    server and jobs the program runs (config/versions.py)."""
    pinned = re.search(r"^pulumi==(\S+)$", requirements, re.M)
    if pinned is None:
        raise ValueError("requirements.txt pins no `pulumi==` release")
    clis = [
        Cli("pulumi", pinned.group(1), "the Pulumi SDK release pinned in requirements.txt (README: Prerequisites)"),
        Cli("kubectl", settings.cluster.kubernetes_version, "dsaas:kubernetesVersion (kubectl supports ±1 minor)"),
    ]
    if settings.backups_enabled:
        clis.append(Cli("velero", versions.VELERO_IMAGE_TAG.removeprefix("v"), "the Velero server the chart deploys"))
        aws = versions.AWS_CLI_IMAGE.rsplit(":", 1)[1]
        clis.append(Cli("aws", aws, "AWS CLI v2 of the backup jobs (2.23+ honours AWS_REQUEST_CHECKSUM_CALCULATION)"))
    return clis


# --- output -------------------------------------------------------------------------------------------


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], form: Format) -> list[str]:
    if form == "markdown":
        return [
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(row) + " |" for row in rows),
        ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]


def render(stack: str, records: list[DnsRecord], flows: list[Flow], form: Format) -> str:
    heading = "### " if form == "markdown" else ""
    lines = [f"{heading}DNS records for stack {stack}", ""]
    lines += _table(("name", "type", "value", "why"), [(r.name, r.kind, r.value, r.why) for r in records], form)
    lines += ["", f"{heading}Firewall openings for stack {stack}", ""]
    lines += _table(
        ("source", "destination", "port", "why"), [(f.source, f.destination, f.port, f.why) for f in flows], form
    )
    return "\n".join(lines)


def render_clis(stack: str, clis: list[Cli], form: Format) -> str:
    heading = "### " if form == "markdown" else ""
    lines = [f"{heading}Command-line tools for stack {stack}", ""]
    return "\n".join(lines + _table(("tool", "version", "why"), [(c.name, c.version, c.why) for c in clis], form))


def load(stack: str, config_dir: Path | None) -> tuple[Settings, Rendered]:
    """The program's graph (which checks the settings and secrets as `pulumi up` does) and the settings."""
    graph = run_program(stack, config_dir=config_dir)
    values = {
        k: v
        for k, v in {**project_defaults(), **read_stack_values(stack, config_dir)}.items()
        if k.startswith("dsaas:")
    }
    return parse_settings(values), read_rendered(graph)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.site_plan", description=__doc__.splitlines()[0])
    parser.add_argument("stack", help="stack name: config/Pulumi.<stack>.yaml")
    parser.add_argument("--config-dir", type=Path, default=None, help="folder of stack files (default: config/)")
    parser.add_argument("--clis", action="store_true", help="print the operator's command-line tools instead")
    parser.add_argument("--format", choices=("text", "markdown"), default="text", help="plain columns or Markdown")
    parser.add_argument("--diagram", type=Path, default=None, help="draw the deployment to FILE (.svg or .png) instead")
    args = parser.parse_args(argv)
    try:
        settings, rendered = load(args.stack, args.config_dir)
    except SettingsError as error:  # the same words and exit status as tools.preview
        print(f"error: {stack_file(args.stack, args.config_dir)}: {error}", file=sys.stderr)
        return 2
    except StackFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.clis:
        print(render_clis(args.stack, operator_clis(settings, (ROOT / "requirements.txt").read_text()), args.format))
        return 0
    if args.diagram is not None:
        # Imported here: the picture's module builds on this one's rules.
        from tools.offline.diagram import DiagramError
        from tools.preflight.deployment_diagram import write_diagram

        try:
            print(write_diagram(args.stack, settings, rendered, args.diagram))
        except DiagramError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    records, flows = site_plan(settings, rendered)
    print(render(args.stack, records, flows, args.format))
    return 0
