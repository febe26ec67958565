"""tools.site_plan: every DNS record and firewall row follows a setting or a rendered artifact.

The example stacks differ where the rules branch (prod: backups, ontap-nas + ontap-san, LDAP with StartTLS,
the hub's own TLS; dev: no backups, ontap-nas-economy, LDAPS, TLS offloaded to a front proxy), so most rules
are checked on both graphs; the branches neither stack takes are checked on a copy of the rendered facts.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from config import versions
from config.settings import Settings, parse_settings
from tests.conftest import load_settings
from tools.offline.mockgraph import Graph, project_defaults, run_program
from tools.preflight import site_plan
from tools.preflight.site_plan import Flow, Rendered


@pytest.fixture(scope="module")
def plans(graphs: dict[str, Graph]) -> dict[str, tuple[Settings, Rendered]]:
    return {stack: (load_settings(stack), site_plan.read_rendered(graphs[stack])) for stack in ("dev", "prod")}


def flows_of(plan: tuple[Settings, Rendered]) -> list[Flow]:
    return site_plan.site_plan(*plan)[1]


def ports_to(flows: list[Flow], destination: str) -> set[str]:
    return {f.port for f in flows if destination in f.destination}


def test_dns_records_are_the_hub_and_the_names_cloud_init_gives_each_node(
    plans: dict[str, tuple[Settings, Rendered]],
) -> None:
    settings, rendered = plans["prod"]
    records = site_plan.dns_records(settings, rendered)
    domain = settings.network.search_domains[0]
    assert (records[0].name, records[0].value) == (settings.hub.hostname, str(settings.hub.address))
    assert [(r.name, r.value) for r in records[1:]] == [
        (f"{n.name}.{domain}", str(n.address)) for n in settings.all_nodes
    ]
    short = dataclasses.replace(rendered, vms=tuple(dataclasses.replace(vm, fqdn=None) for vm in rendered.vms))
    assert [r.name for r in site_plan.dns_records(settings, short)[1:]] == [n.name for n in settings.all_nodes]


def test_operator_rows_follow_the_provider_the_ssh_connections_and_the_chart_repositories(
    plans: dict[str, tuple[Settings, Rendered]],
) -> None:
    settings, rendered = plans["prod"]
    flows = site_plan.operator_flows(settings, rendered)
    assert ("vCenter vcenter.dc.example.org", "443/tcp") in {(f.destination, f.port) for f in flows}
    assert rendered.ssh_ports == {22}
    moved = site_plan.operator_flows(settings, dataclasses.replace(rendered, ssh_ports=frozenset({2222})))
    assert ports_to(moved, "nodes") == {"2222/tcp"}
    repositories = {f.destination for f in flows if "Helm charts" in f.why}
    assert {"docs.tigera.io", "netapp.github.io", "hub.jupyter.org", "raw.githubusercontent.com"} <= repositories


def test_the_api_port_row_follows_the_setting_in_a_stack_copy(stack_values: Callable[[str], dict[str, Any]]) -> None:
    values = stack_values("prod")
    values["dsaas:apiServerPort"] = 7443
    graph = run_program("prod", values=values)
    settings = parse_settings({k: v for k, v in {**project_defaults(), **values}.items() if k.startswith("dsaas:")})
    flows = flows_of((settings, site_plan.read_rendered(graph)))
    assert ports_to(flows, "API VIP") == {"7443/tcp"}
    assert not any(f.port == "6443/tcp" for f in flows)


def test_calico_rows_follow_the_rendered_values(plans: dict[str, tuple[Settings, Rendered]]) -> None:
    settings, rendered = plans["prod"]
    ports = {f.port for f in site_plan.cluster_flows(settings, rendered)}
    # What the program renders today: VXLAN, BGP off, WireGuard on (dsaas:wireguard defaults to true).
    assert {"4789/udp", "5473/tcp", "51820/udp", "2379-2380/tcp", "10250/tcp"} <= ports
    assert "179/tcp" not in ports
    network = rendered.calico["installation"]["calicoNetwork"]
    bgp = {
        **rendered.calico,
        "installation": {"calicoNetwork": {**network, "bgp": "Enabled", "ipPools": [{"encapsulation": "None"}]}},
        "defaultFelixConfiguration": {"wireguardEnabled": False},
    }
    ports = {f.port for f in site_plan.cluster_flows(settings, dataclasses.replace(rendered, calico=bgp))}
    assert "179/tcp" in ports and "4789/udp" not in ports and "51820/udp" not in ports


def test_storage_rows_follow_the_trident_backends(plans: dict[str, tuple[Settings, Rendered]]) -> None:
    prod, dev = flows_of(plans["prod"]), flows_of(plans["dev"])
    assert ports_to(prod, "ONTAP management LIF svm-dsaas-mgmt.dc.example.org") == {"443/tcp"}
    assert ports_to(prod, "ONTAP data LIF 10.40.8.20") == {"2049/tcp"}  # NFS 4.1: no portmapper, no mountd
    assert ports_to(prod, "iSCSI") == {"3260/tcp"}  # the hub database is `block` on ontap-san
    assert any("ontap-nas-economy" in f.why for f in dev) and not any("ontap-nas-economy" in f.why for f in prod)
    settings, rendered = plans["prod"]
    nas_only = tuple(b for b in rendered.backends if b["storageDriverName"] != "ontap-san")
    assert not ports_to(site_plan.storage_flows(settings, dataclasses.replace(rendered, backends=nas_only)), "iSCSI")
    nfs3 = tuple({**b, "nfsMountOptions": "nfsvers=3,hard"} for b in nas_only)
    rows = site_plan.storage_flows(settings, dataclasses.replace(rendered, backends=nfs3))
    assert ports_to(rows, "ONTAP data LIF") == {"2049/tcp", "111/tcp+udp", "635/tcp+udp"}


def test_directory_backup_and_hub_rows_follow_the_settings(plans: dict[str, tuple[Settings, Rendered]]) -> None:
    prod, dev = flows_of(plans["prod"]), flows_of(plans["dev"])
    assert ports_to(prod, "directory ad.dc.example.org") == {"389/tcp"}  # before_bind: StartTLS on 389
    assert ports_to(dev, "directory") == {"636/tcp"}  # on_connect: LDAPS
    assert ports_to(prod, "S3 s3.dc.example.org") == {"443/tcp"}
    assert not ports_to(dev, "S3")  # a dev-like stack backs nothing up
    (users,) = [f for f in prod if f.destination.startswith("hub ")]
    assert (users.source, users.port) == ("users", "443/tcp, 80/tcp")
    (proxy,) = [f for f in dev if f.destination.startswith("hub ")]
    assert (proxy.source, proxy.port) == ("front proxy 10.20.0.80/32", "80/tcp")


def test_download_rows_are_the_apt_repositories_and_the_pinned_images_registries(
    plans: dict[str, tuple[Settings, Rendered]],
) -> None:
    flows = site_plan.download_flows(*plans["prod"])
    assert {f.destination for f in flows if "apt" in f.why} == {"download.docker.com", "pkgs.k8s.io"}
    registries = {f.destination for f in flows if "images" in f.why}
    assert {versions.KUBECTL_IMAGE.split("/")[0], versions.KUBE_VIP_IMAGE.split("/")[0], "quay.io"} <= registries


def test_markdown_is_a_table_per_section(plans: dict[str, tuple[Settings, Rendered]]) -> None:
    records, flows = site_plan.site_plan(*plans["prod"])
    text = site_plan.render("prod", records, flows, "markdown")
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert len(rows) == (len(records) + 2) + (len(flows) + 2)
    assert "### Firewall openings for stack prod" in text


def test_a_refused_stack_gets_the_previews_message_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools.offline import preview

    text = (Path(__file__).parents[1] / "config" / "Pulumi.prod.yaml").read_text()
    (tmp_path / "Pulumi.prod.yaml").write_text(text.replace("dsaas:clusterName: dsaas-prod", "dsaas:clusterName: Bad"))
    assert site_plan.main(["prod", "--config-dir", str(tmp_path)]) == 2
    refused = capsys.readouterr()
    assert preview.main(["prod", "--config-dir", str(tmp_path)]) == 2
    assert refused.err == capsys.readouterr().err
    assert "dsaas:clusterName" in refused.err and refused.out == ""


def test_the_operators_clis_follow_the_pins_and_the_stack(plans: dict[str, tuple[Settings, Rendered]]) -> None:
    requirements = (Path(__file__).parents[1] / "requirements.txt").read_text()
    prod = {c.name: c.version for c in site_plan.operator_clis(plans["prod"][0], requirements)}
    assert prod == {
        "pulumi": re.search(r"^pulumi==(\S+)$", requirements, re.M).group(1),  # type: ignore[union-attr]
        "kubectl": plans["prod"][0].cluster.kubernetes_version,
        "velero": versions.VELERO_IMAGE_TAG.removeprefix("v"),
        "aws": versions.AWS_CLI_IMAGE.rsplit(":", 1)[1],
    }
    newer = plans["prod"][0].model_copy(
        update={"cluster": plans["prod"][0].cluster.model_copy(update={"kubernetes_version": "1.36.0"})}
    )
    assert {c.name: c.version for c in site_plan.operator_clis(newer, requirements)}["kubectl"] == "1.36.0"
    # No backups, no Velero or AWS CLI to install.
    assert [c.name for c in site_plan.operator_clis(plans["dev"][0], requirements)] == ["pulumi", "kubectl"]
    with pytest.raises(ValueError, match="pulumi=="):
        site_plan.operator_clis(plans["dev"][0], "pulumi-vsphere==4.18.2\n")


def test_the_table_does_not_depend_on_the_order_resources_registered_in(
    graphs: dict[str, Graph], plans: dict[str, tuple[Settings, Rendered]]
) -> None:
    """Resources register concurrently, so the recorded order varies from run to run; the docs show the
    output byte for byte."""
    graph = graphs["prod"]
    reversed_graph = dataclasses.replace(graph, resources=list(reversed(graph.resources)))
    settings, rendered = plans["prod"]
    assert site_plan.site_plan(settings, site_plan.read_rendered(reversed_graph)) == site_plan.site_plan(
        settings, rendered
    )


def test_a_program_built_template_adds_the_image_download_and_the_esxi_upload(
    plans: dict[str, tuple[Settings, Rendered]],
) -> None:
    prod = site_plan.operator_flows(*plans["prod"])
    assert [(f.destination, f.port) for f in prod if "template" in f.why] == [
        ("cloud-images.ubuntu.com", "443/tcp"),
        ("ESXi hosts of compute-prod", "443/tcp"),
    ]
    # dev brings its own template: the operator's machine talks to vCenter only.
    assert not [f for f in site_plan.operator_flows(*plans["dev"]) if "template" in f.why or "ESXi" in f.destination]
