"""The deployment picture (tools/preflight/deployment_diagram.py) shows every row of the site plan.

The DOT source is parsed here, not searched for words: each firewall row must be an arrow, with its port
in the arrow's label, from the box of its source to the box of its destination (a box inside the node
cluster stands for `nodes (<subnet>)`), so a row the picture drops or draws between the wrong boxes fails.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings, parse_settings
from tests.conftest import ROOT_DIR, load_settings
from tools.offline.mockgraph import Graph, project_defaults, run_program
from tools.preflight import deployment_diagram, site_plan
from tools.preflight.site_plan import Flow, Rendered

DEPLOYMENT_SVG = ROOT_DIR / "docs" / "deployment-prod.svg"
STRING = r'"(?:[^"\\]|\\.)*"'
ATTRIBUTE = re.compile(rf"(\w+)=({STRING}|[^,\]\s;]+)")


@dataclass
class Dot:
    labels: dict[str, str] = field(default_factory=dict)
    tooltips: dict[str, str] = field(default_factory=dict)
    clusters_of: dict[str, list[str]] = field(default_factory=dict)
    """box → the clusters around it, innermost first"""
    edges: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


def _unquote(value: str) -> str:
    if not value.startswith('"'):
        return value
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value[1:-1])


def parse(dot: str) -> Dot:
    """The subset of DOT the picture writes: nested subgraphs, one box or arrow or attribute list a line."""
    parsed = Dot()
    stack: list[str] = []
    for line in dot.splitlines()[1:]:
        text = line.strip()
        attributes = {k: _unquote(v) for k, v in ATTRIBUTE.findall(text)}
        if opened := re.fullmatch(r"subgraph (\w+) \{", text):
            stack.insert(0, opened.group(1))
        elif text == "}":
            if stack:
                stack.pop(0)
        elif text.startswith("label=") and stack:  # a cluster's own attributes
            parsed.labels[stack[0]], parsed.tooltips[stack[0]] = attributes["label"], attributes["tooltip"]
        elif arrow := re.match(r"(\w+) -> (\w+) \[", text):
            parsed.edges.append((arrow.group(1), arrow.group(2), attributes))
        elif box := re.match(r"(\w+) \[label=", text):
            parsed.labels[box.group(1)], parsed.tooltips[box.group(1)] = attributes["label"], attributes["tooltip"]
            parsed.clusters_of[box.group(1)] = list(stack)
    return parsed


def stands_for(parsed: Dot, box: str, cut_at: str | None, endpoint: str) -> bool:
    """Whether an arrow's end at `box` (clipped at cluster `cut_at`) is the site-plan endpoint."""
    if cut_at is not None:
        return parsed.tooltips[cut_at] == endpoint
    around = parsed.clusters_of[box]
    return endpoint in parsed.tooltips[box].splitlines() or any(parsed.tooltips[c] == endpoint for c in around)


def missing_flows(dot: str, flows: list[Flow]) -> list[Flow]:
    parsed = parse(dot)
    return [
        f
        for f in flows
        if not any(
            f.port in attributes["label"].splitlines()
            and stands_for(parsed, tail, attributes.get("ltail"), f.source)
            and stands_for(parsed, head, attributes.get("lhead"), f.destination)
            for tail, head, attributes in parsed.edges
        )
    ]


@pytest.fixture(scope="module")
def plans(graphs: dict[str, Graph]) -> dict[str, tuple[Settings, Rendered]]:
    return {stack: (load_settings(stack), site_plan.read_rendered(graphs[stack])) for stack in ("dev", "prod")}


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_every_firewall_row_is_an_arrow_with_its_port(plans: dict[str, tuple[Settings, Rendered]], stack: str) -> None:
    settings, rendered = plans[stack]
    flows = site_plan.site_plan(settings, rendered)[1]
    dot = deployment_diagram.render_dot(stack, settings, rendered)
    assert missing_flows(dot, flows) == []
    # The check finds a dropped arrow: without the line of the directory's arrow its row is missing.
    dropped = "\n".join(line for line in dot.splitlines() if "hub logins" not in line)
    assert [f.why for f in missing_flows(dropped, flows)] == [f.why for f in flows if "hub logins" in f.why]


def test_every_dns_name_and_address_is_in_a_box(plans: dict[str, tuple[Settings, Rendered]]) -> None:
    for stack, (settings, rendered) in plans.items():
        parsed = parse(deployment_diagram.render_dot(stack, settings, rendered))
        shown = "\n".join(parsed.labels.values())
        for record in site_plan.dns_records(settings, rendered):
            assert record.name in shown and record.value in shown, (stack, record)
        assert settings.vsphere.compute_cluster in shown and settings.vsphere.datastore in shown
        assert settings.vsphere.network in shown and rendered.vcenter in shown


def test_users_and_the_front_proxy_are_their_own_boxes(plans: dict[str, tuple[Settings, Rendered]]) -> None:
    """A source without a dot in its name is not a download host: `users` once joined the download box."""
    for stack, source in (("prod", "users"), ("dev", "front proxy 10.20.0.80/32")):
        parsed = parse(deployment_diagram.render_dot(stack, *plans[stack]))
        (tail,) = [t for t, h, _ in parsed.edges if h == "hub"]
        assert parsed.labels[tail] == source
        assert "users" not in parsed.labels["downloads"]


def test_the_object_store_and_iscsi_appear_only_when_the_stack_uses_them(
    plans: dict[str, tuple[Settings, Rendered]],
) -> None:
    prod = "\n".join(parse(deployment_diagram.render_dot("prod", *plans["prod"])).labels.values())
    dev = "\n".join(parse(deployment_diagram.render_dot("dev", *plans["dev"])).labels.values())
    assert "S3 s3.dc.example.org" in prod and "S3 " not in dev
    settings, rendered = plans["prod"]
    nas_only = dataclasses.replace(
        rendered, backends=tuple(b for b in rendered.backends if b["storageDriverName"] != "ontap-san")
    )
    assert "iSCSI" in prod
    assert "iSCSI" not in "\n".join(parse(deployment_diagram.render_dot("prod", settings, nas_only)).labels.values())
    # NFSv3 mount options add the portmapper and mountd to the data LIF's arrow.
    nfs3 = tuple({**b, "nfsMountOptions": "nfsvers=3,hard"} for b in rendered.backends)
    changed = dataclasses.replace(rendered, backends=nfs3)
    parsed = parse(deployment_diagram.render_dot("prod", settings, changed))
    (arrow,) = [a for _, h, a in parsed.edges if parsed.labels[h].startswith("data LIF")]
    assert arrow["label"].splitlines() == ["2049/tcp", "111/tcp+udp", "635/tcp+udp"]
    flows = site_plan.site_plan(settings, changed)[1]
    assert missing_flows(deployment_diagram.render_dot("prod", settings, changed), flows) == []


def test_a_large_worker_pool_is_one_box_with_its_range(stack_values: Callable[[str], dict[str, Any]]) -> None:
    values = stack_values("prod")
    values["dsaas:nodes"]["workers"]["count"] = 150
    graph = run_program("prod", values=values)
    settings = parse_settings({k: v for k, v in {**project_defaults(), **values}.items() if k.startswith("dsaas:")})
    rendered = site_plan.read_rendered(graph)
    dot = deployment_diagram.render_dot("prod", settings, rendered)
    parsed = parse(dot)
    assert parsed.labels["workers"] == (
        "150 workers 10.40.0.21 – 10.40.0.170\n"
        "dsaas-prod-worker-1.dc.example.org … dsaas-prod-worker-150.dc.example.org"
    )
    assert len(parsed.labels["control_planes"].splitlines()) == 1 + 3  # control planes are never collapsed
    assert missing_flows(dot, site_plan.site_plan(settings, rendered)[1]) == []
    # Addresses given one by one (dsaas:nodes.workers.addresses) with a gap are not shown as a range.
    vms = tuple(
        dataclasses.replace(vm, address="10.40.1.200") if vm.name == "dsaas-prod-worker-75" else vm
        for vm in rendered.vms
    )
    label = deployment_diagram.workers_label(settings, dataclasses.replace(rendered, vms=vms))
    assert label.startswith("150 workers 10.40.0.21 … 10.40.0.170 (not contiguous")


def test_the_picture_does_not_depend_on_the_order_resources_registered_in(
    graphs: dict[str, Graph], plans: dict[str, tuple[Settings, Rendered]]
) -> None:
    settings, rendered = plans["prod"]
    reversed_graph = dataclasses.replace(graphs["prod"], resources=list(reversed(graphs["prod"].resources)))
    assert deployment_diagram.render_dot(
        "prod", settings, site_plan.read_rendered(reversed_graph)
    ) == deployment_diagram.render_dot("prod", settings, rendered)


def test_the_committed_picture_is_drawn_by_the_current_code(
    plans: dict[str, tuple[Settings, Rendered]], tmp_path: Path
) -> None:
    if shutil.which("dot") is None:
        pytest.fail("Graphviz is not installed: run the README's test command (it installs it)")
    fresh = deployment_diagram.write_diagram("prod", *plans["prod"], tmp_path / "deployment-prod.svg")
    assert DEPLOYMENT_SVG.read_text() == fresh.read_text(), (
        "docs/deployment-prod.svg is stale: run `.venv/bin/python -m tools.site_plan prod --diagram "
        "docs/deployment-prod.svg` and commit it"
    )
    page = (ROOT_DIR / "docs" / "site.md").read_text()
    assert "(deployment-prod.svg)" in page
    assert "python -m tools.site_plan prod --diagram docs/deployment-prod.svg" in page


def test_the_command_draws_and_refuses_other_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert site_plan.main(["dev", "--diagram", str(tmp_path / "dev.png")]) == 0
    assert (tmp_path / "dev.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert site_plan.main(["dev", "--diagram", str(tmp_path / "dev.pdf")]) == 2
    assert ".svg or .png" in capsys.readouterr().err


def test_the_compute_cluster_names_what_the_nodes_are_cloned_from() -> None:
    from tools.preflight import deployment_diagram, site_plan

    prod = deployment_diagram.render_dot("prod", *site_plan.load("prod", None))
    assert "clones of the template the program builds from ubuntu-24.04-server-cloudimg-amd64.ova" in prod
    assert "at 10.40.0.8 while it is prepared" in prod
    dev_settings = site_plan.load("dev", None)
    assert f"clones of {dev_settings[0].vsphere.template}" in deployment_diagram.render_dot("dev", *dev_settings)
    assert "None" not in prod
