"""cloud-init documents, read back by the real VMware datasource and checked by real validators.

Every VM's `extra_config` goes through cloud-init's own DataSourceVMware (environment transport,
Debian's cloud-init); the user data it yields must pass `cloud-init schema`, and the network
config it yields must pass `netplan generate` and produce the node's static address.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import cloud_init
from tests.conftest import STACKS, load_settings, require_tool
from tools.offline.mockgraph import Graph, unwrap

SYSTEM_PYTHON = "/usr/bin/python3"
PROBE = Path(__file__).parent / "guestinfo_probe.py"
VM_TYPE = "vsphere:index/virtualMachine:VirtualMachine"


def read_guestinfo(extra_config: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    result = subprocess.run(
        [SYSTEM_PYTHON, str(PROBE)],
        input=json.dumps(extra_config),
        capture_output=True,
        text=True,
        env={"PROBE_CLOUD_DIR": str(tmp_path / "cloud"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def cloud_init_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("cloud-init"), "schema", "--config-file", str(path)], capture_output=True, text=True, check=False
    )


def netplan_generate(network: dict[str, Any], root: Path) -> subprocess.CompletedProcess[str]:
    netplan_dir = root / "etc" / "netplan"
    netplan_dir.mkdir(parents=True, exist_ok=True)
    config = netplan_dir / "50-cloud-init.yaml"
    config.write_text(yaml.safe_dump({"network": network}))
    config.chmod(0o600)
    return subprocess.run(
        [require_tool("netplan"), "generate", "--root-dir", str(root)], capture_output=True, text=True, check=False
    )


def known_top_level_keys() -> set[str]:
    """cloud-init's schema does not flag unknown top-level keys, so ask it which keys it knows."""
    script = (
        "import json; from cloudinit.config.schema import get_schema; s = get_schema(); "
        "print(json.dumps(sorted({k for d in s['$defs'].values() for k in d.get('properties', {})})))"
    )
    out = subprocess.run([SYSTEM_PYTHON, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


@pytest.fixture(scope="module")
def top_level_keys() -> set[str]:
    return known_top_level_keys()


@pytest.mark.parametrize("stack", STACKS)
def test_every_vm_boots_with_valid_cloud_init(
    stack: str, graphs: dict[str, Graph], tmp_path: Path, top_level_keys: set[str]
) -> None:
    settings = load_settings(stack)
    addresses = {node.name: node for node in settings.all_nodes}
    vms = graphs[stack].node_vms()
    assert {unwrap(vm.inputs["name"]) for vm in vms} == set(addresses)
    for vm in vms:
        name = unwrap(vm.inputs["name"])
        extra_config = unwrap(vm.inputs["extraConfig"])
        assert extra_config["guestinfo.userdata.encoding"] == "gzip+base64"
        seen = read_guestinfo(extra_config, tmp_path / name)
        assert seen["instance_id"] == name and seen["hostname"] == name

        user_data = tmp_path / name / "user-data"
        user_data.parent.mkdir(parents=True, exist_ok=True)
        user_data.write_text(seen["userdata"])
        checked = cloud_init_schema(user_data)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        document = yaml.safe_load(seen["userdata"])
        assert set(document) <= top_level_keys, set(document) - top_level_keys
        assert document["ssh_pwauth"] is False
        (admin,) = document["users"]
        assert admin["name"] == settings.ssh.user and admin["lock_passwd"] is True
        assert all(key in admin["ssh_authorized_keys"] for key in settings.ssh.authorized_keys)
        assert len(admin["ssh_authorized_keys"]) == len(settings.ssh.authorized_keys) + 1
        # The node's own host key replaces the template's (shared by every clone); only ed25519.
        assert document["ssh_deletekeys"] is True
        assert set(document["ssh_keys"]) == {"ed25519_private", "ed25519_public"}
        assert document["ssh_keys"]["ed25519_public"].startswith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5")
        assert "OPENSSH PRIVATE KEY" in document["ssh_keys"]["ed25519_private"]

        root = tmp_path / name / "root"
        generated = netplan_generate(seen["network"], root)
        assert generated.returncode == 0, generated.stderr
        generated_dir = root / "run/systemd/network"
        networkd = (generated_dir / f"10-netplan-{cloud_init.PRIMARY_NIC}.network").read_text()
        node = addresses[name]
        assert f"Address={node.address}/{settings.network.subnet.prefixlen}" in networkd
        assert f"Gateway={settings.network.gateway}" in networkd
        # Whatever the kernel calls the template's vmxnet3 NIC, udev renames it to the name kube-vip uses.
        link = (generated_dir / f"10-netplan-{cloud_init.PRIMARY_NIC}.link").read_text()
        assert "Driver=vmxnet3" in link and f"Name={settings.network.interface}" in link


def test_the_validators_reject_broken_documents(tmp_path: Path) -> None:
    """The checks above can fail: a wrong type and a malformed address are caught."""
    settings = load_settings("dev")
    node = settings.all_nodes[0]
    host_key = cloud_init.HostKey(
        private_openssh="-----BEGIN OPENSSH PRIVATE KEY-----\n", public_openssh="ssh-ed25519 A"
    )
    broken = yaml.safe_load(cloud_init.render_user_data(node, settings, ["ssh-ed25519 AAAA test"], host_key))
    broken["users"][0]["lock_passwd"] = "sometimes"
    path = tmp_path / "broken-user-data"
    path.write_text("#cloud-config\n" + yaml.safe_dump(broken))
    assert cloud_init_schema(path).returncode != 0
    # The host key's fields are checked too: a misspelt key type is refused.
    misspelt = yaml.safe_load(cloud_init.render_user_data(node, settings, ["ssh-ed25519 AAAA test"], host_key))
    misspelt["ssh_keys"]["ed25519_privat"] = misspelt["ssh_keys"].pop("ed25519_private")
    path.write_text("#cloud-config\n" + yaml.safe_dump(misspelt))
    assert cloud_init_schema(path).returncode != 0

    network = cloud_init.render_network_config(node, settings, "vmxnet3")
    network["ethernets"][cloud_init.PRIMARY_NIC]["addresses"] = ["10.20.30.11/99"]
    assert netplan_generate(network, tmp_path / "root").returncode != 0


def test_encoding_is_deterministic_and_reversible() -> None:
    settings = load_settings("prod")
    text = cloud_init.render_metadata(settings.all_nodes[0], settings, "vmxnet3")
    assert cloud_init.encode(text) == cloud_init.encode(text)
    assert cloud_init.decode(cloud_init.encode(text)) == text


def test_a_template_nic_dsaas_cannot_match_is_named_with_the_fix() -> None:
    settings = load_settings("prod")
    with pytest.raises(ValueError, match=r"adapter type 'sriov' is not one dsaas configures.*vmxnet3"):
        cloud_init.render_network_config(settings.all_nodes[0], settings, "sriov")
