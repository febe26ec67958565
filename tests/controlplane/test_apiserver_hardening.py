"""Secrets at rest and the audit trail, proven on the real API server with the files the stack renders.

The API server runs with exactly the flags kubeadm's ClusterConfiguration gives it (`apiServer.extraArgs`),
the node paths moved to this machine, and reads the EncryptionConfiguration and audit Policy that the pure
renderers make. What etcd stores is read back raw through etcd's own v3 JSON gateway.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from components import kubeadm_render as render
from tests.conftest import load_settings
from tests.controlplane.conftest import StartControlPlane
from tools.controlplane.client import ApiError
from tools.controlplane.cluster import ControlPlane

pytestmark = pytest.mark.slow

CANARY = "plain-text-canary-3141592653"


@dataclass(frozen=True)
class Hardened:
    plane: ControlPlane
    audit_log: Path


@pytest.fixture(scope="module")
def hardened(start_control_plane: StartControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hardened]:
    files = tmp_path_factory.mktemp("apiserver-files")
    (files / "audit").mkdir()
    local = {
        render.ENCRYPTION_CONFIG_PATH: files / "encryption-config.yaml",
        render.AUDIT_POLICY_PATH: files / "audit-policy.yaml",
        render.AUDIT_LOG_PATH: files / "audit" / "audit.log",
    }
    local[render.ENCRYPTION_CONFIG_PATH].write_text(
        render.render_encryption_config(base64.b64encode(os.urandom(32)).decode())
    )
    local[render.AUDIT_POLICY_PATH].write_text(render.render_audit_policy())
    settings = load_settings("prod")
    documents = yaml.safe_load_all(render.render_init_config(settings, settings.control_planes[0]))
    api_server = next(d for d in documents if d["kind"] == "ClusterConfiguration")["apiServer"]
    # The static pod sees the node's files only through the extra volumes: each file's directory is one.
    mounted = {volume["hostPath"] for volume in api_server["extraVolumes"]}
    assert {str(PurePosixPath(path).parent) for path in local} <= mounted
    args = [f"--{arg['name']}={local.get(arg['value'], arg['value'])}" for arg in api_server["extraArgs"]]
    assert any(arg.startswith("--encryption-provider-config=") for arg in args)
    plane = start_control_plane(apiserver_args=args)
    yield Hardened(plane, local[render.AUDIT_LOG_PATH])
    plane.stop()


def test_a_secret_is_stored_encrypted_with_the_stacks_key(hardened: Hardened) -> None:
    admin = hardened.plane.client()
    admin.create(
        "/api/v1/namespaces/default/secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "at-rest"}, "stringData": {"password": CANARY}},
    )
    raw = hardened.plane.etcd_value("/registry/secrets/default/at-rest")
    assert raw is not None
    assert raw.startswith(f"k8s:enc:secretbox:v1:{render.ENCRYPTION_KEY_NAME}:".encode()), raw[:40]
    assert CANARY.encode() not in raw
    read = admin.get("/api/v1/namespaces/default/secrets/at-rest")
    assert base64.b64decode(read["data"]["password"]).decode() == CANARY
    # The check can fail: what the configuration does not cover (a ConfigMap) is stored as it is.
    admin.create(
        "/api/v1/namespaces/default/configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "in-clear"}, "data": {"value": CANARY}},
    )
    clear = hardened.plane.etcd_value("/registry/configmaps/default/in-clear")
    assert clear is not None and CANARY.encode() in clear


def audit_events(log: Path, match: Any, timeout: float = 10) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        found = [event for event in events if match(event)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_the_audit_log_records_secret_reads_exec_and_rbac_changes_at_their_levels(hardened: Hardened) -> None:
    admin = hardened.plane.client()
    admin.create(
        "/api/v1/namespaces/default/secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "audited"}, "stringData": {"token": CANARY}},
    )
    admin.get("/api/v1/namespaces/default/secrets/audited")
    with pytest.raises(ApiError):  # no such pod (and no kubelet): the attempt is what the trail must show
        admin.request("POST", "/api/v1/namespaces/default/pods/nobody/exec", query={"command": "id", "stdout": "1"})
    admin.create(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "audited-role"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
        },
    )

    def ref(event: dict[str, Any]) -> dict[str, Any]:
        return dict(event.get("objectRef") or {})

    secret_reads = audit_events(
        hardened.audit_log, lambda e: ref(e).get("resource") == "secrets" and ref(e).get("name") == "audited"
    )
    assert {e["verb"] for e in secret_reads} >= {"create", "get"}
    assert {e["level"] for e in secret_reads} == {"Metadata"}
    assert all("requestObject" not in e and "responseObject" not in e for e in secret_reads)
    assert CANARY not in hardened.audit_log.read_text()  # a Secret's value never reaches the trail

    # A long-running request: recorded when its response starts and when it completes.
    executions = audit_events(hardened.audit_log, lambda e: ref(e).get("subresource") == "exec")
    (execution,) = [e for e in executions if e["stage"] == "ResponseComplete"]
    assert execution["level"] == "Request" and ref(execution)["name"] == "nobody"
    assert "command=id" in execution["requestURI"] and execution["user"]["username"] == "kubernetes-admin"

    (grant,) = audit_events(hardened.audit_log, lambda e: ref(e).get("name") == "audited-role")
    assert grant["level"] == "RequestResponse" and grant["verb"] == "create"
    assert grant["requestObject"]["rules"][0]["resources"] == ["secrets"] and "responseObject" in grant

    stages = {e["stage"] for e in audit_events(hardened.audit_log, lambda e: True)}
    assert "RequestReceived" not in stages
