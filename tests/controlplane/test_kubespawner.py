"""KubeSpawner for real: the chart's hub spawns a directory user's server through the test API server.

A real JupyterHub 5.5 runs the z2jh chart's own jupyterhub_config.py on prod's rendered values with
KubeSpawner 7 (tools/controlplane/kubespawner.py says what is overridden and why). The hub's namespace and
the homes StorageClass come from the program's graph; the chart's RBAC, priority classes and user scheduler
config from the chart. A slapd user logs in with Chromium and reaches JupyterLab; KubeSpawner's PVC and pod
pass admission (Pod Security `restricted` of the namespace), the chart's user scheduler places the pod, a
stand-in Trident provisioner answers the claim and the real PV binder binds it; the pod's command runs as a
local process. After a stop, a second login finds the same claim. The flow is written to
test-artifacts/kubespawner-flow.log (secrets redacted).
"""

from __future__ import annotations

import contextlib
import datetime
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from config.settings import parse_settings
from tests.controlplane.conftest import StartControlPlane
from tools.controlplane import kubespawner as ks
from tools.controlplane.client import KubeClient
from tools.controlplane.nodes import stack_node_shapes
from tools.lab import browser as lab_browser
from tools.lab.directory import DirectoryInfo, LdapDirectory
from tools.lab.hub import VENV_BIN, HubWorkspace, LocalHub
from tools.lab.procs import free_port
from tools.lab.stack_hub import (
    lab_hub_values,
    point_at_directory,
    search_password_for,
    shape_for,
    stack_settings_values,
)

pytestmark = pytest.mark.slow

STACK = "prod"
NAMESPACE = "jupyterhub"
USER = "alice"
FLOW_LOG = Path(__file__).resolve().parents[2] / "test-artifacts" / "kubespawner-flow.log"


def claim_of(admin: KubeClient, name: str) -> dict[str, Any] | None:
    claim: dict[str, Any] | None = admin.get_or_none(f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims/{name}")
    return claim


def user_pods(admin: KubeClient) -> list[dict[str, Any]]:
    return list(admin.items(f"/api/v1/namespaces/{NAMESPACE}/pods", labelSelector="component=singleuser-server"))


def log_in_and_start(page: Page, directory: DirectoryInfo) -> None:
    lab_browser.login(page, USER, directory.user(USER).password)
    assert page.url.endswith("/hub/spawn"), page.url  # prod has profiles: KubeSpawner's own options form
    lab_browser.choose_profile(page, "Basic")
    lab_browser.start_server(page)
    lab_browser.wait_for_lab(page, timeout_ms=120_000)


@contextlib.contextmanager
def recorded(admin: KubeClient) -> Iterator[ks.ApiRecorder]:
    recorder = ks.ApiRecorder(admin, NAMESPACE).start()
    try:
        yield recorder
    finally:
        recorder.stop()


def test_kubespawner_spawns_through_the_api_server(start_control_plane: StartControlPlane, tmp_path: Path) -> None:
    began = time.monotonic()
    plane = start_control_plane()
    admin = plane.client()
    installed = ks.install(admin, ks.program_objects(STACK, NAMESPACE, "dsaas-homes"))
    namespace = admin.get(f"/api/v1/namespaces/{NAMESPACE}")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

    values = stack_settings_values(STACK)
    with contextlib.ExitStack() as cleanup:
        directory = cleanup.enter_context(LdapDirectory(tmp_path / "ldap", shape=shape_for(values))).info
        values = point_at_directory(values, directory)
        settings = parse_settings(values)
        workspace = HubWorkspace.create(tmp_path / "hub")
        search_password = search_password_for(settings, directory)
        hub_values = lab_hub_values(settings, workspace, ldap_search_password=search_password)
        chart = ks.chart_objects(hub_values, namespace=NAMESPACE)
        installed += ks.install(admin, chart)

        (scheduler_config,) = [
            o for o in chart if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "user-scheduler"
        ]
        scheduler = ks.UserScheduler(plane, scheduler_config, tmp_path / "user-scheduler").start()
        cleanup.callback(scheduler.stop)
        provisioner = ks.StandInProvisioner(plane.client()).start()  # own connection: it runs in its own thread
        cleanup.callback(provisioner.stop)
        launcher = ks.PodProcessLauncher(workspace.homes_root, tmp_path / "pods", VENV_BIN)
        nodes = plane.simulated_nodes(stack_node_shapes(settings), launcher=launcher)
        cleanup.callback(nodes.stop)

        kubeconfig = ks.token_kubeconfig(plane, NAMESPACE, "hub", tmp_path / "hub.kubeconfig")
        hub = LocalHub(
            workspace,
            values=hub_values,
            log_level="INFO",
            start_timeout=120,
            spawner_wiring=ks.KUBE_SPAWNER_WIRING,
            spawner_settings={"user_port": free_port()},
            extra_env=ks.hub_environment(kubeconfig),
        )
        hub_started = time.monotonic()
        cleanup.enter_context(hub)
        hub_seconds = time.monotonic() - hub_started
        assert "replacing spawner_class" not in hub.log_text()

        browser = cleanup.enter_context(lab_browser.launch_browser())
        context = browser.new_context(base_url=hub.url, viewport={"width": 1280, "height": 800})
        cleanup.callback(context.close)
        context.set_default_timeout(lab_browser.DEFAULT_TIMEOUT_MS)
        page = context.new_page()
        recorder = cleanup.enter_context(recorded(plane.client()))

        # First login: KubeSpawner creates the claim and the pod through the API server.
        flow_start = datetime.datetime.now(datetime.UTC)
        spawn_started = time.monotonic()
        try:
            log_in_and_start(page, directory)
        except Exception:
            raise AssertionError(
                f"no JupyterLab; hub log:\n{hub.log_text()[-6000:]}\nuser scheduler:\n{scheduler.log_text()}\n"
                f"nodes: {nodes.errors[-5:]} provisioner: {provisioner.errors[-5:]}"
            ) from None
        spawn_seconds = time.monotonic() - spawn_started
        flow_end = datetime.datetime.now(datetime.UTC)
        lab_browser.screenshot(page, "kubespawner-jupyterlab")
        server = hub.wait_for_server(USER)

        (pod,) = user_pods(admin)
        claim = claim_of(admin, f"claim-{USER}")
        assert claim is not None and claim["status"]["phase"] == "Bound"
        volume = admin.get(f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
        assert volume["spec"]["csi"]["driver"] == ks.TRIDENT_DRIVER
        assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
        assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"  # dsaas-homes as the program declares it
        assert provisioner.created == [volume["metadata"]["name"]]
        # The chart's user scheduler placed it, on a worker (control planes are tainted).
        assert pod["spec"]["schedulerName"] == "jupyterhub-user-scheduler"
        assert pod["spec"]["nodeName"] in {node.name for node in settings.workers}
        # The chart's uid and fsGid (jovyan, users) and the profile's container context, merged by KubeSpawner:
        # Pod Security restricted admitted the pod as KubeSpawner built it.
        context = pod["spec"]["containers"][0]["securityContext"]
        assert context["runAsUser"] == 1000 and context["runAsNonRoot"] is True
        assert context["capabilities"] == {"drop": ["ALL"]} and context["allowPrivilegeEscalation"] is False
        assert pod["spec"]["securityContext"]["fsGroup"] == 100
        assert not pod["spec"].get("initContainers")  # no privileged metadata-blocking container
        assert pod["status"]["podIP"] == "127.0.0.1"
        assert server["url"] == f"/user/{USER}/"
        (record,) = launcher.records
        assert Path(record.home) == workspace.homes_root / f"claim-{USER}"
        assert record.cwd == record.home  # workingDir /home/jovyan, mapped onto the claim's folder
        assert "jupyterhub-singleuser" in record.argv[0]
        # The Basic profile (the form's default) reached the pod: KubeSpawner 7 applies profiles in start(); JupyterHub
        # 5.5 still warns "Received unhandled user_options ... profile" as KubeSpawner uses no apply_user_options hook.
        assert pod["spec"]["containers"][0]["image"] == settings.hub.all_profiles[0].image
        assert server["state"]["pvc_name"] == f"claim-{USER}"  # remembered in the hub database (KubeSpawner 7)
        (Path(record.home) / "notes.txt").write_text("kept")

        # Stop the server: KubeSpawner deletes the pod, the claim stays.
        assert hub.api("DELETE", f"/users/{USER}/server").status in (202, 204)
        hub.wait_for_stopped(USER)
        ks.wait_for(lambda: not user_pods(admin), 30, "the user pod was not deleted")
        kept = claim_of(admin, f"claim-{USER}")
        assert kept is not None and kept["metadata"]["uid"] == claim["metadata"]["uid"]

        # Log out and in again: the returning user gets the same claim, no new volume.
        page.goto("/hub/logout")
        second_start = datetime.datetime.now(datetime.UTC)
        second_started = time.monotonic()
        log_in_and_start(page, directory)
        second_seconds = time.monotonic() - second_started
        second_end = datetime.datetime.now(datetime.UTC)
        second_hub = [e.text for e in ks.hub_entries(hub.log_text(), second_start)]
        assert any(f"PVC claim-{USER} already exists, so did not create new pvc" in t for t in second_hub), second_hub
        again = claim_of(admin, f"claim-{USER}")
        assert again is not None and again["metadata"]["uid"] == claim["metadata"]["uid"]
        assert [v["metadata"]["name"] for v in admin.items("/api/v1/persistentvolumes")] == [volume["metadata"]["name"]]
        assert provisioner.created == [volume["metadata"]["name"]]
        assert len(launcher.records) == 2 and launcher.records[1].home == record.home
        assert (Path(launcher.records[1].home) / "notes.txt").read_text() == "kept"
        (second_pod,) = user_pods(admin)
        assert second_pod["metadata"]["uid"] != pod["metadata"]["uid"]

        secrets = ks.pod_secrets(admin, NAMESPACE) | {
            workspace.secret("cookie"),
            workspace.secret("proxy"),
            hub.api_token,
            directory.user(USER).password,
            *(s for s in [search_password] if s),
        }
        recorder.stop()
        hub_lines = ks.hub_entries(hub.log_text(), flow_start)

        def window(start: datetime.datetime, end: datetime.datetime) -> list[ks.FlowEntry]:
            return [e for e in [*recorder.entries, *hub_lines] if start <= e.at <= end]

        entries = window(flow_start, flow_end)
        sections = {
            "first login to running server": entries,
            "returning user: second login to running server": window(second_start, second_end),
        }
        whole = time.monotonic() - began
        header = (
            f"KubeSpawner flow (tests/controlplane/test_kubespawner.py), stack {STACK}, user {USER}: first login to"
            f" running server.\nhub start {hub_seconds:.1f} s, first spawn {spawn_seconds:.1f} s, returning user"
            f" {second_seconds:.1f} s, control plane start {plane.startup_seconds:.1f} s\n"
            f"applied: {', '.join(installed)}"
        )
        text = ks.write_flow_log(FLOW_LOG, sections, secrets, header)
        for secret in secrets:
            assert secret not in text
        print(
            f"\nKubeSpawner flow: hub start {hub_seconds:.1f} s, spawn {spawn_seconds:.1f} s (login to JupyterLab), "
            f"returning user {second_seconds:.1f} s, pod {pod['metadata']['name']} on {pod['spec']['nodeName']} "
            f"by {pod['spec']['schedulerName']}, claim {claim['metadata']['name']} bound to "
            f"{volume['metadata']['name']} ({volume['spec']['csi']['driver']}, stand-in); "
            f"flow log {FLOW_LOG} ({len(entries)} entries); test so far {whole:.1f} s"
        )
