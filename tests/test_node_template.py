"""The node template the program builds (`dsaas:vsphere.templateImage`): its settings, the documents the
template VM boots with (checked by `cloud-init schema` and shellcheck), the image download against a local
HTTP server, the power-off wait against vcsim (VMware's vCenter simulator, built from govmomi), and the wiring
in the recorded graph."""

from __future__ import annotations

import base64
import hashlib
import http.server
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import cloud_init, template_render, vsphere_wait
from components.kubeadm_render import TEMPLATES, render_script
from config.settings import SettingsError, parse_settings
from tests.conftest import load_settings, require_tool, settings_values
from tests.test_cloud_init import cloud_init_schema
from tools.lab.vcsim import Vcsim
from tools.offline.diff import diff_snapshots
from tools.offline.mockgraph import Graph, is_secret, run_program, unwrap
from tools.offline.snapshot import build_snapshot

VM = "vsphere:index/virtualMachine:VirtualMachine"
LOCAL = "command:local:Command"


def _problems(values: dict[str, Any]) -> list[str]:
    with pytest.raises(SettingsError) as raised:
        parse_settings(values)
    return [f"{p.key}: {p.problem} Fix: {p.fix}" for p in raised.value.problems]


# --- settings -----------------------------------------------------------------------------------------


def test_prod_builds_its_template_and_dev_brings_its_own() -> None:
    prod, dev = load_settings("prod").vsphere, load_settings("dev").vsphere
    assert prod.template is None and prod.template_image is not None
    assert dev.template is not None and dev.template_image is None


def test_a_stack_names_exactly_one_template_source() -> None:
    values = settings_values("prod")
    both = {**values, "dsaas:vsphere": {**values["dsaas:vsphere"], "template": "ubuntu-template"}}
    assert _problems(both) == [
        "dsaas:vsphere.template: sets both template and templateImage. Fix: keep one: template (a template VM you "
        "built) or templateImage (the program builds it from an Ubuntu cloud image; docs/site.md)."
    ]
    neither = {**values, "dsaas:vsphere": {k: v for k, v in values["dsaas:vsphere"].items() if k != "templateImage"}}
    assert _problems(neither)[0].startswith("dsaas:vsphere.template: names no template to clone the nodes from.")


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("10.40.0.9", "10.40.0.9 is already used by the hub (dsaas:hub.address)."),
        ("10.40.0.21", "10.40.0.21 is already used by dsaas-prod-worker-1."),
        ("10.40.0.10", "10.40.0.10 is already used by the API server VIP (dsaas:controlPlaneEndpoint)."),
        ("10.41.0.8", "10.41.0.8 is outside the node subnet 10.40.0.0/24, where the template VM is attached."),
    ],
)
def test_the_template_address_is_a_free_address_of_the_node_subnet(address: str, problem: str) -> None:
    values = settings_values("prod")
    vsphere = values["dsaas:vsphere"]
    changed = {
        **values,
        "dsaas:vsphere": {**vsphere, "templateImage": {**vsphere["templateImage"], "address": address}},
    }
    assert [p for p in _problems(changed) if p.startswith("dsaas:vsphere.templateImage.address")] == [
        next(p for p in _problems(changed) if problem in p)
    ]


@pytest.mark.parametrize(
    ("field", "value", "key"),
    [
        ("sha256", "513A22EB", "dsaas:vsphere.templateImage.sha256"),
        ("url", "http://cloud-images.ubuntu.com/x.ova", "dsaas:vsphere.templateImage.url"),
        ("url", "https://cloud-images.ubuntu.com/x.img", "dsaas:vsphere.templateImage.url"),
    ],
)
def test_the_image_is_an_https_ova_pinned_by_a_full_sha256(field: str, value: str, key: str) -> None:
    values = settings_values("prod")
    vsphere = values["dsaas:vsphere"]
    changed = {**values, "dsaas:vsphere": {**vsphere, "templateImage": {**vsphere["templateImage"], field: value}}}
    assert any(p.startswith(key) for p in _problems(changed))


# --- what the template VM boots with -------------------------------------------------------------------


def test_the_bake_user_data_passes_cloud_init_schema(tmp_path: Path) -> None:
    settings = load_settings("prod")
    assert settings.vsphere.template_image is not None
    properties = template_render.vapp_properties(settings, settings.vsphere.template_image, "dsaas-prod-template-x")
    user_data = base64.b64decode(properties["user-data"]).decode()
    path = tmp_path / "user-data"
    path.write_text(user_data)
    result = cloud_init_schema(path)
    assert result.returncode == 0, result.stdout + result.stderr
    document = yaml.safe_load(user_data)
    files = {f["path"]: f["content"] for f in document["write_files"]}
    # The nodes' own preparation, byte for byte: the template and a node cannot drift apart.
    assert files["/usr/local/lib/dsaas/prepare-node.sh"] == (TEMPLATES / "prepare-node.sh").read_text()
    assert "After=cloud-final.service" in files["/etc/systemd/system/dsaas-bake.service"]
    assert document["runcmd"][-1] == ["systemctl", "start", "--no-block", "dsaas-bake.service"]


def test_the_rendered_bake_script_is_shellcheck_clean(tmp_path: Path) -> None:
    settings = load_settings("prod")
    assert settings.vsphere.template_image is not None
    script = tmp_path / "bake.sh"
    script.write_text(
        render_script("bake-template", template_render.bake_parameters(settings, settings.vsphere.template_image))
    )
    for path in (script, TEMPLATES / "fetch-image.sh"):
        result = subprocess.run(
            [require_tool("shellcheck"), "--severity=style", "--shell=bash", str(path)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout


def test_the_bake_pulls_kubeadm_kube_vip_and_the_profiles_images() -> None:
    settings = load_settings("prod")
    images = template_render.template_images(settings)
    assert images == sorted({*(p.image for p in settings.hub.all_profiles), "ghcr.io/kube-vip/kube-vip:v1.0.4"})
    no_prepull = parse_settings(
        {**settings_values("prod"), "dsaas:hub": {**settings_values("prod")["dsaas:hub"], "prepullImages": False}}
    )
    assert template_render.template_images(no_prepull) == ["ghcr.io/kube-vip/kube-vip:v1.0.4"]


def test_a_new_kubernetes_version_or_image_is_a_new_template_vm() -> None:
    values = settings_values("prod")
    settings = parse_settings(values)
    image = settings.vsphere.template_image
    assert image is not None
    name = template_render.template_vm_name(settings, image)
    assert name.startswith("dsaas-prod-template-")
    upgraded = parse_settings({**values, "dsaas:kubernetesVersion": "1.35.2"})
    assert template_render.template_vm_name(upgraded, image) != name
    other = image.model_copy(update={"sha256": "0" * 64})
    assert template_render.template_vm_name(settings, other) != name
    assert template_render.template_vm_name(parse_settings(values), image) == name


# --- the image download ---------------------------------------------------------------------------------


class _Files(http.server.BaseHTTPRequestHandler):
    content = b""
    requests = 0

    def do_GET(self) -> None:
        type(self).requests += 1
        if self.path != "/ubuntu.ova":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.content)))
        self.end_headers()
        self.wfile.write(self.content)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def image_server() -> Iterator[str]:
    _Files.content = b"OVA" + bytes(range(256)) * 64
    _Files.requests = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _fetch(url: str, sha256: str, cache: Path) -> subprocess.CompletedProcess[str]:
    script = render_script("fetch-image", {"IMAGE_URL": url, "IMAGE_SHA256": sha256})
    # The operator's machine runs it with curl (a bare Debian has none: `make setup` installs it).
    tools = sorted({str(Path(require_tool(name)).parent) for name in ("curl", "sha256sum", "bash")})
    return subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        env={"PATH": ":".join([*tools, "/usr/bin", "/bin"]), "DSAAS_IMAGE_CACHE": str(cache), "HOME": str(cache)},
    )


def test_the_image_is_downloaded_once_and_checked_each_time(image_server: str, tmp_path: Path) -> None:
    digest = hashlib.sha256(_Files.content).hexdigest()
    first = _fetch(f"{image_server}/ubuntu.ova", digest, tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    path = Path(first.stdout.strip())
    assert path == tmp_path / "cache" / f"{digest}.ova" and path.read_bytes() == _Files.content
    again = _fetch(f"{image_server}/ubuntu.ova", digest, tmp_path / "cache")
    assert (again.returncode, again.stdout, _Files.requests) == (0, first.stdout, 1)
    # A cached copy that changed is not trusted: it is downloaded anew.
    path.write_bytes(b"tampered")
    third = _fetch(f"{image_server}/ubuntu.ova", digest, tmp_path / "cache")
    assert third.returncode == 0 and path.read_bytes() == _Files.content and _Files.requests == 2


def test_an_image_with_another_checksum_is_refused_and_not_kept(image_server: str, tmp_path: Path) -> None:
    pinned = "0" * 64
    result = _fetch(f"{image_server}/ubuntu.ova", pinned, tmp_path / "cache")
    found = hashlib.sha256(_Files.content).hexdigest()
    assert result.returncode == 1
    assert f"has SHA-256 {found}, not the pinned {pinned}; refusing to use it." in result.stderr
    assert "dsaas:vsphere.templateImage.sha256" in result.stderr
    assert list((tmp_path / "cache").iterdir()) == []


def test_an_unreachable_image_names_the_setting(image_server: str, tmp_path: Path) -> None:
    result = _fetch(f"{image_server}/missing.ova", "0" * 64, tmp_path / "cache")
    assert result.returncode == 1
    assert "check dsaas:vsphere.templateImage.url and that this machine reaches it" in result.stderr
    assert list((tmp_path / "cache").iterdir()) == []


# --- the power-off wait, against vcsim --------------------------------------------------------------------


@pytest.fixture(scope="module")
def vcenter() -> Iterator[Vcsim]:
    with Vcsim() as simulator:
        yield simulator


def _vm(vcenter: Vcsim, name: str = "DC0_C0_RP0_VM0") -> Any:
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vim

    service = SmartConnect(  # type: ignore[no-untyped-call]
        host=vcenter.host, port=vcenter.port, user=vcenter.user, pwd=vcenter.password, disableSslCertValidation=True
    )
    view = service.content.viewManager.CreateContainerView(service.content.rootFolder, [vim.VirtualMachine], True)
    vm = next(v for v in view.view if v.name == name)
    return vm, lambda: Disconnect(service)  # type: ignore[no-untyped-call]


def _settings(vcenter: Vcsim, uuid: str, **changes: str) -> vsphere_wait.WaitSettings:
    env = {
        "DSAAS_VSPHERE_SERVER": vcenter.server,
        "DSAAS_VSPHERE_USER": vcenter.user,
        "DSAAS_VSPHERE_PASSWORD": vcenter.password,
        "DSAAS_VSPHERE_INSECURE": "true",
        "DSAAS_VM_UUID": uuid,
        "DSAAS_VM_NAME": "dsaas-prod-template-abc",
        "DSAAS_TIMEOUT_MINUTES": "1",
        "DSAAS_POLL_SECONDS": "0.2",
        **changes,
    }
    return vsphere_wait.WaitSettings.from_environment(env)


def test_the_wait_ends_when_the_template_powers_itself_off(vcenter: Vcsim) -> None:
    vm, disconnect = _vm(vcenter)
    try:
        assert vm.runtime.powerState == "poweredOn"
        timer = threading.Timer(1.0, lambda: vm.PowerOffVM_Task())
        timer.start()
        started = time.monotonic()
        waited = vsphere_wait.wait_powered_off(_settings(vcenter, vm.config.uuid))
        assert 0.8 <= waited <= time.monotonic() - started
        assert vm.runtime.powerState == "poweredOff"
    finally:
        disconnect()


def test_a_template_still_on_at_the_timeout_says_where_to_look(vcenter: Vcsim) -> None:
    vm, disconnect = _vm(vcenter, "DC0_C0_RP0_VM1")
    try:
        assert vm.runtime.powerState == "poweredOn"
        settings = _settings(vcenter, vm.config.uuid, DSAAS_TIMEOUT_MINUTES="0.01")
        with pytest.raises(vsphere_wait.WaitError) as raised:
            vsphere_wait.wait_powered_off(settings)
        message = str(raised.value)
        assert message.startswith("the template VM dsaas-prod-template-abc is still poweredOn after 0 min")
        assert "/var/log/dsaas-bake.log" in message and "dsaas:vsphere.templateImage.timeoutMinutes" in message
    finally:
        disconnect()


def test_a_refused_login_and_a_missing_vm_are_named(vcenter: Vcsim) -> None:
    vm, disconnect = _vm(vcenter, "DC0_C0_RP0_VM1")
    try:
        uuid = vm.config.uuid
    finally:
        disconnect()
    with pytest.raises(
        vsphere_wait.WaitError, match=re.escape("refused the login of svc-dsaas@vsphere.local: check vsphere:user")
    ):
        vsphere_wait.wait_powered_off(_settings(vcenter, uuid, DSAAS_VSPHERE_PASSWORD="wrong"))
    with pytest.raises(vsphere_wait.WaitError, match="is gone from vCenter"):
        vsphere_wait.wait_powered_off(_settings(vcenter, "4211dead-0000-0000-0000-000000000000"))


def test_the_wait_reports_on_one_line_without_the_password(vcenter: Vcsim, capsys: pytest.CaptureFixture[str]) -> None:
    env = {
        "DSAAS_VSPHERE_SERVER": vcenter.server,
        "DSAAS_VSPHERE_USER": vcenter.user,
        "DSAAS_VSPHERE_PASSWORD": "wrong-" + vcenter.password,
        "DSAAS_VM_UUID": "4211dead-0000-0000-0000-000000000000",
        "DSAAS_VM_NAME": "t",
        "DSAAS_TIMEOUT_MINUTES": "1",
        "DSAAS_VSPHERE_INSECURE": "true",
    }
    assert vsphere_wait.main(env) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and vcenter.password not in captured.err + captured.out
    assert vsphere_wait.main({}) == 1
    assert "the environment lacks DSAAS_VSPHERE_SERVER" in capsys.readouterr().err


# --- the graph --------------------------------------------------------------------------------------------


def _named(graph: Graph, suffix: str) -> Any:
    return next(r for r in graph.resources if r.name.endswith(suffix))


def test_clones_wait_for_the_prepared_template(graphs: dict[str, Graph]) -> None:
    graph = graphs["prod"]
    template_vm = _named(graph, "nodes-template-vm")
    fetched, prepared = _named(graph, "nodes-template-fetch-image"), _named(graph, "nodes-template-prepared")
    assert template_vm.type == VM and fetched.type == LOCAL and prepared.type == LOCAL
    assert fetched.urn in template_vm.dependencies
    assert template_vm.urn in prepared.dependencies
    inputs = unwrap(template_vm.inputs)
    assert inputs["ovfDeploy"]["localOvfPath"].endswith(
        "/513a22ebe3982b9387b038f8a2a6dad1af980d4623dca03511312e55ba620b1a.ova"
    )
    assert set(inputs["vapp"]["properties"]) == {"instance-id", "hostname", "user-data"}
    # A copy on each of prod's four hosts, cloned once the template is prepared, each sealed and waited for.
    copies = [_named(graph, f"nodes-template-copy-{k}") for k in range(1, 5)]
    for k, copy in enumerate(copies, start=1):
        assert prepared.urn in copy.property_dependencies["clone"]
        assert unwrap(copy.inputs)["clone"]["templateUuid"] == template_vm.id
        assert unwrap(copy.inputs)["hostSystemId"].startswith("host-")
        guestinfo = unwrap(copy.inputs)["extraConfig"]
        assert "systemctl" in cloud_init.decode(guestinfo["guestinfo.userdata"])
        assert _named(graph, f"nodes-template-copy-{k}-sealed").dependencies == sorted(
            {copy.urn, *_named(graph, f"nodes-template-copy-{k}-sealed").dependencies}
        )
    nodes = {unwrap(node.inputs)["name"]: node for node in graph.node_vms()}
    assert len(nodes) == 7
    for position, spec in enumerate(load_settings("prod").all_nodes):  # round-robin in the settings' order
        node, copy = nodes[spec.name], copies[position % 4]
        sealed = _named(graph, f"{copy.name}-sealed")
        assert sealed.urn in node.property_dependencies["clone"], node.name
        assert unwrap(node.inputs)["clone"]["templateUuid"] == copy.id
        assert (unwrap(node.inputs)["guestId"], unwrap(node.inputs)["firmware"]) == ("ubuntu64Guest", "efi")
    assert not any(r.type == LOCAL for r in graphs["dev"].resources)


def test_the_vcenter_password_reaches_the_wait_only_as_a_secret(graphs: dict[str, Graph]) -> None:
    prepared = _named(graphs["prod"], "nodes-template-prepared")
    assert is_secret(prepared.inputs["environment"]) or is_secret(
        prepared.inputs["environment"]["DSAAS_VSPHERE_PASSWORD"]
    )
    assert "PASSWORD" not in str(unwrap(prepared.inputs["create"]))


def test_a_template_rebuilt_for_a_new_version_replaces_no_node(stack_values: Callable[[str], dict[str, Any]]) -> None:
    values = stack_values("prod")
    before = run_program("prod", values)
    values["dsaas:kubernetesVersion"] = "1.35.2"
    after = run_program("prod", values)
    assert _named(before, "nodes-template-vm").inputs["name"] != _named(after, "nodes-template-vm").inputs["name"]
    # The node VMs ignore their clone source once made (components/nodes.py): only new nodes use the new one.
    diffs = diff_snapshots(build_snapshot(before), build_snapshot(after))
    replaced = {d.name for d in diffs if d.action == "replace" and d.type == VM}
    templates = {"nodes-template-vm", *(f"nodes-template-copy-{k}" for k in range(1, 5))}
    assert replaced == templates
    assert not any(d.type == VM and d.name not in templates for d in diffs)


def test_each_host_gets_one_copy_of_the_template() -> None:
    values = settings_values("prod")
    vsphere = values["dsaas:vsphere"]
    hosts = ["esx01.dc.example.org", "esx02.dc.example.org", "esx01.dc.example.org"]
    changed = {**values, "dsaas:vsphere": {**vsphere, "templateImage": {**vsphere["templateImage"], "hosts": hosts}}}
    assert _problems(changed) == [
        "dsaas:vsphere.templateImage.hosts: names esx01.dc.example.org more than once; one copy per host is all a "
        "host can use. Fix: list each ESXi host once."
    ]


def test_a_copy_boots_once_to_seal_itself_with_the_seal_the_bake_installed() -> None:
    settings = load_settings("prod")
    assert settings.vsphere.template_image is not None
    bake = yaml.safe_load(render_bake_user_data_text(settings))
    files = {f["path"]: f["content"] for f in bake["write_files"]}
    assert files["/usr/local/lib/dsaas/seal-template.sh"] == (TEMPLATES / "seal-template.sh").read_text()
    assert (
        "ExecStart=/bin/bash /usr/local/lib/dsaas/seal-template.sh" in files["/etc/systemd/system/dsaas-seal.service"]
    )
    guestinfo = template_render.copy_guestinfo("dsaas-prod-template-x-copy-1")
    user_data = yaml.safe_load(cloud_init.decode(guestinfo["guestinfo.userdata"]))
    assert user_data == {"runcmd": [["systemctl", "start", "--no-block", "dsaas-seal.service"]]}
    assert yaml.safe_load(cloud_init.decode(guestinfo["guestinfo.metadata"]))["instance-id"].endswith("-copy-1")


def render_bake_user_data_text(settings: Any) -> str:
    image = settings.vsphere.template_image
    return template_render.render_bake_user_data(settings, image, "dsaas-prod-template-x")


def test_a_machine_without_curl_is_told_so(tmp_path: Path) -> None:
    script = render_script("fetch-image", {"IMAGE_URL": "https://example.org/x.ova", "IMAGE_SHA256": "0" * 64})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("install", "sha256sum", "awk", "mktemp", "rm"):
        (bin_dir / tool).symlink_to(require_tool(tool))
    result = subprocess.run(
        [require_tool("bash"), "-c", script],
        capture_output=True,
        text=True,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "dsaas: fetching the template image needs curl on this machine (the operator's); "
        "install it (apt-get install curl)"
    )
