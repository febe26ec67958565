"""The README's main command, run as an operator runs it: a subprocess on the real stack files."""

from __future__ import annotations

import base64
import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components import kubeadm_render
from tests.conftest import ROOT_DIR, STACKS
from tools.offline.mockgraph import read_stack_values, run_program
from tools.offline.redaction import find_leaks, scrub


def preview(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.preview", *args], cwd=ROOT_DIR, capture_output=True, text=True, check=False
    )


def test_prod_preview_lists_the_whole_kubeadm_layer(tmp_path: Path) -> None:
    result = preview("prod", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("vsphere:index/virtualMachine:VirtualMachine  nodes-dsaas-prod-cp-") == 3
    assert "ComputeClusterVmAntiAffinityRule  nodes-control-plane-anti-affinity" in out
    assert "mandatory=True  vms=3" in out
    assert "script=kube-vip" in out and "script=kubeadm-init" in out
    assert out.count("-kubeadm-join  script=kubeadm-join") == 2 + 4
    assert "kubernetes:helm.sh/v3:Release  kubernetes-calico  chart=tigera-operator" in out
    assert "password=[secret]" in out and "kubeconfig=[secret]" in out
    assert "placeholder-for-vsphere:password" not in out

    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert "cloud-init/dsaas-prod-worker-4/user-data.yaml" in written
    assert "manifests/kubernetes-dsaas-prod-cp-1-kubeadm-init.kubeadm-config.yaml" in written
    assert "manifests/kubernetes-dsaas-prod-cp-1-kube-vip.kube-vip-manifest.yaml" in written
    assert "scripts/kubernetes-dsaas-prod-worker-1-membership.on-delete.sh" in written
    assert "helm/kubernetes-calico.values.yaml" in written
    join_config = yaml.safe_load(
        (tmp_path / "manifests/kubernetes-dsaas-prod-cp-2-kubeadm-join.kubeadm-config.yaml").read_text()
    )
    assert join_config["controlPlane"]["certificateKey"] == "SECRET-REDACTED"
    assert join_config["discovery"]["bootstrapToken"]["token"] == "SECRET-REDACTED"
    # The script itself still carries the config, redacted inside its base64, for a reviewer to decode.
    join_script = (tmp_path / "scripts/kubernetes-dsaas-prod-cp-2-kubeadm-join.sh").read_text()
    parameters, _ = kubeadm_render.parse_rendered_script(join_script)
    assert yaml.safe_load(base64.b64decode(parameters["KUBEADM_CONFIG_B64"])) == join_config


@pytest.mark.parametrize("stack", STACKS)
def test_artifacts_never_contain_secret_values(stack: str, tmp_path: Path) -> None:
    result = preview(stack, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    secrets = run_program(stack).secret_values
    checked = 0
    for path in tmp_path.rglob("*"):
        if path.is_file():
            # Plain, base64 of the secret, and inside any decoded base64 (or gzip) payload.
            assert find_leaks(path.read_text(), secrets) == [], path
            checked += 1
    assert checked > 40


def test_the_leak_check_sees_secrets_inside_encoded_payloads() -> None:
    secret = "abcdef.0123456789abcdef"
    config = f"discovery:\n  bootstrapToken:\n    token: {secret}\n"
    script = f"export KUBEADM_CONFIG_B64={base64.b64encode(config.encode()).decode()}\n"
    nested = base64.b64encode(gzip.compress(script.encode())).decode()
    for text in (script, nested, base64.b64encode(secret.encode()).decode(), f"x{secret}x"):
        assert find_leaks(text, {secret}) == [secret], text
        assert find_leaks(scrub(text, {secret}), {secret}) == []
    redacted = scrub(script, {secret})
    assert base64.b64decode(redacted.split("=", 1)[1]).decode() == config.replace(secret, "SECRET-REDACTED")


def test_the_leak_check_sees_a_private_key_that_yaml_rewrapped() -> None:
    """A node's host key sits in its cloud-init user data, which YAML re-wraps (quoted, blank lines)."""
    body = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"
    key = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n"
    document = yaml.safe_dump({"ssh_keys": {"ed25519_private": key}})
    assert key not in document
    assert find_leaks(document, {key}) == [key]
    assert find_leaks(scrub(document, {key}), {key}) == []
    armor_only = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"
    assert find_leaks(armor_only, {key}) == []  # the armor every key shares is no leak


@pytest.mark.parametrize("stack", STACKS)
def test_the_committed_snapshot_holds_no_secret(stack: str) -> None:
    """Snapshots decode guestinfo, where the host keys are: none may show a private key."""
    text = (ROOT_DIR / "snapshots" / f"{stack}.yaml").read_text()
    assert find_leaks(text, run_program(stack).secret_values) == []
    assert "ed25519_private" in text  # the check above really read the user data


_PEM_BODY = [f"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7{index:012d}" for index in range(5)]
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(_PEM_BODY) + "\n-----END RSA PRIVATE KEY-----\n"


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"tls": {"key": PEM}}),  # line breaks as \n
        yaml.safe_dump({"a": {"b": {"key": PEM}}}),  # YAML's own choice
        "a:\n  key: |\n" + "".join(f"    {line}\n" for line in PEM.splitlines()),  # indented block
        "key: >\n" + "".join(f"  {line}\n\n" for line in PEM.splitlines()),  # folded block
        yaml.safe_dump({"a": {"key": PEM}}, default_style='"', width=30),  # folded double quotes, `\ `
        yaml.safe_dump({"a": {"key": PEM}}, default_style="'"),  # single quotes: doubled breaks
    ],
    ids=["json", "yaml", "literal", "folded", "double-quoted", "single-quoted"],
)
def test_a_multi_line_secret_is_found_and_scrubbed_however_it_was_rewrapped(text: str) -> None:
    assert PEM not in text  # the secret's own text is not there: only a re-wrapped form of it
    assert find_leaks(text, {PEM}) == [PEM]
    scrubbed = scrub(text, {PEM})
    assert find_leaks(scrubbed, {PEM}) == [] and not any(line in scrubbed for line in _PEM_BODY)
    assert "SECRET-REDACTED" in scrubbed


def test_a_bad_stack_file_fails_with_its_key(tmp_path: Path) -> None:
    values = read_stack_values("prod")
    values["dsaas:nodes"]["controlPlane"]["count"] = 2
    (tmp_path / "Pulumi.broken.yaml").write_text(yaml.safe_dump({"config": values}))
    result = preview("broken", "--config-dir", str(tmp_path))
    assert result.returncode == 2
    assert "dsaas:nodes.controlPlane.count" in result.stderr and "Fix:" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_an_unknown_stack_is_reported() -> None:
    result = preview("nosuchstack")
    assert result.returncode == 2 and "no stack file" in result.stderr


def test_an_unused_secret_in_clear_text_fails_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    values = read_stack_values("dev")
    values["dsaas:hubTlsKey"] = "not-so-secret-key"
    (tmp_path / "Pulumi.leaky.yaml").write_text(yaml.safe_dump({"config": values}))
    result = preview("leaky", "--config-dir", str(tmp_path))
    assert result.returncode == 2
    assert "dsaas:hubTlsKey" in result.stderr and "pulumi config set --secret dsaas:hubTlsKey" in result.stderr
    assert "not-so-secret-key" not in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


WHOLE_FLOAT = re.compile(r"(:|^\s*-)\s+-?[0-9]+\.0$")


@pytest.mark.parametrize("stack", STACKS)
def test_artifacts_show_numbers_as_they_are_deployed(stack: str, tmp_path: Path) -> None:
    """The engine carries every number as a double; a reviewer must read `server_port: 389`, as the
    chart receives it, not `389.0`."""
    result = preview(stack, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    floats = [
        f"{path.relative_to(tmp_path)}: {line.strip()}"
        for path in sorted(tmp_path.rglob("*.yaml"))
        for line in path.read_text().splitlines()
        if WHOLE_FLOAT.search(line)
    ]
    assert floats == []
    hub = yaml.safe_load((tmp_path / "helm" / "hub-release.values.yaml").read_text())
    ldap = hub["hub"]["config"]["LDAPAuthenticator"]
    assert ldap["server_port"] in (389, 636) and isinstance(ldap["server_port"], int)
    assert isinstance(hub["cull"]["timeout"], int)
