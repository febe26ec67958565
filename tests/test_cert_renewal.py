"""kubeadm's certificates are renewed before they expire (issue 26, item 2): the weekly renewal on every control
plane (renew-certs.sh under a systemd timer that cert-renewal.sh installs), run in the sandbox of
tests/test_scripts.py with real certificates checked by the real openssl, and kubeadm, crictl and kubectl stubbed:
nothing renewed while there is time; past the threshold every present certificate renewed and the static pods
restarted one at a time; a run killed half-way finishing on the next; a kubelet that never stops a pod failing
with the manifest back in place. Under the graph: one step per control plane, each on its own weekday."""

from __future__ import annotations

import base64

import pytest

from components import kubeadm_render as render
from tests.conftest import load_settings
from tests.test_scripts import Sandbox, sandbox  # noqa: F401 (the fixture)
from tools.lab import pki
from tools.offline.mockgraph import Graph

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
PKI_FILES = {
    "apiserver": "pki/apiserver.crt",
    "apiserver-kubelet-client": "pki/apiserver-kubelet-client.crt",
    "apiserver-etcd-client": "pki/apiserver-etcd-client.crt",
    "front-proxy-client": "pki/front-proxy-client.crt",
    "etcd-server": "pki/etcd/server.crt",
    "etcd-peer": "pki/etcd/peer.crt",
    "etcd-healthcheck-client": "pki/etcd/healthcheck-client.crt",
}
KUBECONFIGS = ("admin.conf", "controller-manager.conf", "scheduler.conf")  # super-admin.conf: removed after init

# kubeadm's stub "renews" a certificate by putting the fresh one in its place, as `kubeadm certs renew` does.
KUBEADM = """#!/usr/bin/env bash
echo "kubeadm $*" >> "$STUB_STATE/calls"
if [ "$1 $2" = "certs renew" ]; then
  case "$3" in
    *.conf) cp "$STUB_STATE/fresh/$3" "/etc/kubernetes/$3" ;;
    *) cp "$STUB_STATE/fresh/cert.pem" "/etc/kubernetes/$(cat "$STUB_STATE/fresh/path-$3")" ;;
  esac
fi
exit 0
"""
# crictl's stub: a component runs while its manifest is in the kubelet's folder (unless pinned as running).
CRICTL = """#!/usr/bin/env bash
echo "crictl $*" >> "$STUB_STATE/calls"
[ "$1 $2" = "--runtime-endpoint unix:///run/containerd/containerd.sock" ] || exit 2
name="${5#^}"; name="${name%$}"
if [ -f "/etc/kubernetes/manifests/$name.yaml" ] || [ -e "$STUB_STATE/never-stops-$name" ]; then
  echo "container-$name"
fi
exit 0
"""


def _kubeconfig(certificate: bytes) -> str:
    data = base64.b64encode(certificate).decode()
    return f"apiVersion: v1\nkind: Config\nusers:\n- name: x\n  user:\n    client-certificate-data: {data}\n"


def _node(sandbox: Sandbox, days_left: dict[str, float]) -> str:  # noqa: F811
    """The setup command: a control plane's /etc/kubernetes with certificates valid for `days_left[name]` days
    (365 for the rest), its static pod manifests, and fresh certificates for the stubbed kubeadm."""
    ca = pki.make_ca("kubernetes", days=3650)
    files = sandbox.root / "etc-kubernetes"
    fresh = sandbox.state / "fresh"
    fresh.mkdir()
    (fresh / "cert.pem").write_bytes(pki.issue_server_cert(ca, ["kube-apiserver"], days=365).cert_pem)
    for name, relative in PKI_FILES.items():
        path = files / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pki.issue_server_cert(ca, [name], days=days_left.get(name, 365)).cert_pem)
        (fresh / f"path-{name}").write_text(relative)
    for name in KUBECONFIGS:
        certificate = pki.issue_server_cert(ca, [name], days=days_left.get(name, 365)).cert_pem
        (files / name).write_text(_kubeconfig(certificate))
        (fresh / name).write_text(_kubeconfig(pki.issue_server_cert(ca, [name], days=365).cert_pem))
    (files / "manifests").mkdir()
    for component in COMPONENTS:
        (files / "manifests" / f"{component}.yaml").write_text(f"kind: Pod # {component}\n")
    sandbox.stub(KUBEADM, "kubeadm")
    sandbox.stub(CRICTL, "crictl")
    return f"rm -rf /etc/kubernetes && cp -a {files} /etc/kubernetes"


def _program(wait_seconds: int = 5) -> str:
    return render.render_script(
        "renew-certs", {"RENEW_DAYS": str(render.CERTIFICATE_RENEW_DAYS), "WAIT_SECONDS": str(wait_seconds)}
    )


def _calls(sandbox: Sandbox, tool: str) -> list[str]:  # noqa: F811
    return [call for call in sandbox.calls() if call.startswith(tool)]


def test_nothing_is_renewed_while_every_certificate_has_time(sandbox: Sandbox) -> None:  # noqa: F811
    setup = _node(sandbox, {"apiserver": render.CERTIFICATE_RENEW_DAYS + 5})
    result = sandbox.run(setup, _program())
    assert result.returncode == 0, result.stderr
    assert "nothing renewed" in result.stdout
    assert _calls(sandbox, "kubeadm") == [] and _calls(sandbox, "crictl") == []


@pytest.mark.parametrize("expiring", ["apiserver", "etcd-peer", "admin.conf"])
def test_one_expiring_certificate_renews_them_all_and_restarts_the_static_pods_one_at_a_time(
    expiring: str,
    sandbox: Sandbox,  # noqa: F811
) -> None:
    setup = _node(sandbox, {expiring: render.CERTIFICATE_RENEW_DAYS - 5})
    result = sandbox.run(setup, _program(), _program(), "ls /etc/kubernetes/manifests /etc/kubernetes")
    assert result.returncode == 0, result.stderr
    first, second, listing = result.stdout.split("--- run ")[1:]
    assert f"expiring within {render.CERTIFICATE_RENEW_DAYS} days: {expiring};" in first
    renewed = [call.split()[-1] for call in _calls(sandbox, "kubeadm certs renew")]
    assert sorted(renewed) == sorted([*PKI_FILES, *KUBECONFIGS])  # every present one; super-admin.conf is gone
    restarts = [line.split()[2] for line in first.splitlines() if line.startswith("dsaas: restarted")]
    assert restarts == list(COMPONENTS)  # etcd first, one at a time
    assert "nothing renewed" in second  # the renewed certificates have a year left
    assert all(f"{component}.yaml" in listing for component in COMPONENTS)
    assert "dsaas-paused-manifests" not in listing
    assert _calls(sandbox, "kubeadm")[-1] == "kubeadm certs check-expiration"


def test_a_run_killed_with_a_manifest_out_puts_it_back_first(sandbox: Sandbox) -> None:  # noqa: F811
    setup = _node(sandbox, {})
    setup += (
        " && mkdir -m 0700 /etc/kubernetes/dsaas-paused-manifests"
        " && mv /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/dsaas-paused-manifests/"
    )
    result = sandbox.run(setup, _program(), "ls /etc/kubernetes/manifests")
    assert result.returncode == 0, result.stderr
    assert "putting back kube-apiserver.yaml" in result.stdout and "nothing renewed" in result.stdout
    assert "kube-apiserver.yaml" in result.stdout.split("--- run 1")[1]


def test_a_kubelet_that_never_stops_a_pod_fails_the_run_with_its_manifest_back(
    sandbox: Sandbox,  # noqa: F811
) -> None:
    setup = _node(sandbox, {"apiserver": 10})
    (sandbox.state / "never-stops-etcd").touch()
    wrapped = (
        f"bash -s <<'DSAAS_EOF'\n{_program(wait_seconds=2)}DSAAS_EOF\necho exit=$?\nls /etc/kubernetes/manifests\n"
    )
    result = sandbox.run(setup, wrapped)
    assert "the kubelet did not stop etcd after 2 s" in result.stderr
    assert "exit=1" in result.stdout and "etcd.yaml" in result.stdout  # failed, and etcd's manifest is back
    assert not any(line.startswith("dsaas: restarted") for line in result.stdout.splitlines())


def test_the_timer_is_installed_once_per_control_plane_and_a_second_run_changes_nothing(
    sandbox: Sandbox,  # noqa: F811
) -> None:
    settings = load_settings("prod")
    node = settings.control_planes[1]
    parameters = render.cert_renewal_parameters(settings, node)
    installer = render.render_script("cert-renewal", parameters)
    result = sandbox.run(
        "",
        installer,
        installer,
        "cat /usr/local/sbin/dsaas-renew-certs /etc/systemd/system/dsaas-renew-certs.timer",
    )
    assert result.returncode == 0, result.stderr
    first, second, shown = result.stdout.split("--- run ")[1:]
    assert "certificate renewal installed (Tue *-*-* 03:30:00)" in first and "unchanged" in second
    assert _calls(sandbox, "systemctl") == ["systemctl daemon-reload", "systemctl enable --now dsaas-renew-certs.timer"]
    assert base64.b64decode(parameters["RENEW_PROGRAM_B64"]).decode() in shown.split("\n", 1)[1]
    assert "OnCalendar=Tue *-*-* 03:30:00" in shown and "Persistent=true" in shown


def test_every_control_plane_gets_the_renewal_on_a_weekday_of_its_own(graphs: dict[str, Graph]) -> None:
    from tools.offline.mockgraph import unwrap

    for stack in ("dev", "prod"):
        settings = load_settings(stack)
        graph = graphs[stack]
        calendars = []
        for node in settings.control_planes:
            step = graph.by_name(f"kubernetes-{node.name}-cert-renewal")
            parameters = render.parse_rendered_script(unwrap(step.inputs["stdin"]))[0]
            calendars.append(parameters["RENEW_ON_CALENDAR"])
            joined = graph.by_name(
                f"kubernetes-{node.name}-" + ("kubeadm-join" if node != settings.control_planes[0] else "kubeadm-init")
            )
            assert joined.urn in graph.ancestors(step)
        assert len(set(calendars)) == len(calendars)
        workers = {f"kubernetes-{w.name}-cert-renewal" for w in settings.workers}
        assert not workers & {r.name for r in graph.resources}


def test_the_renewal_names_each_certificate_so_a_removed_super_admin_conf_is_skipped() -> None:
    body = render.parse_rendered_script(_program())[1]
    assert "certs renew all" not in body and "[super-admin.conf]=super-admin.conf" in body


# --- the admin kubeconfig the program keeps in its state -------------------------------------------------


def test_the_admin_credential_generation_rises_only_near_the_end() -> None:
    import datetime

    now = datetime.datetime(2027, 10, 1, tzinfo=datetime.UTC)
    assert render.admin_credential_generation(None, None, now) == 0  # a first up
    assert render.admin_credential_generation("2027-12-20T02:00:00+00:00", 0, now) == 0  # 80 days left
    assert render.admin_credential_generation("2027-11-20T02:00:00+00:00", 0, now) == 1  # 50 days left
    assert render.admin_credential_generation("2027-09-01T02:00:00+00:00", 4, now) == 5  # already past
    assert render.admin_credential_generation("2028-11-20T02:00:00+00:00", 1, now) == 1  # the renewed one: stays


def test_the_program_reads_the_admin_kubeconfig_again_when_its_copy_nears_its_end() -> None:
    import datetime

    from pulumi.runtime.sync_await import _sync_await

    from tools.offline.mockgraph import run_program, unwrap

    step_name = "kubernetes-dsaas-prod-cp-1-admin-kubeconfig"
    first = run_program("prod")
    assert len(unwrap(first.by_name(step_name).inputs["triggers"])) == 1  # the VM only: no change for old stacks
    assert _sync_await(first.outputs["adminCredentialExpires"].future()) == "2027-12-01T02:00:00+00:00"
    assert first.outputs["adminCredentialGeneration"] == 0
    soon = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=20)).isoformat()
    previous = {"kubernetesVersion": "1.35.1", "adminCredentialExpires": soon, "adminCredentialGeneration": 2}
    renewed = run_program("prod", previous_outputs=previous)
    assert unwrap(renewed.by_name(step_name).inputs["triggers"])[1:] == [3]
    assert renewed.outputs["adminCredentialGeneration"] == 3
    later = {**previous, "adminCredentialExpires": "2099-01-01T00:00:00+00:00"}
    steady = run_program("prod", previous_outputs=later)
    assert unwrap(steady.by_name(step_name).inputs["triggers"])[1:] == [2]


@pytest.mark.parametrize(("days", "renewed"), [(10, True), (200, False)])
def test_read_kubeconfig_renews_an_admin_conf_near_its_end_and_prints_only_the_kubeconfig(
    days: float,
    renewed: bool,
    sandbox: Sandbox,  # noqa: F811
) -> None:
    import yaml

    settings = load_settings("prod")
    certificate = pki.issue_server_cert(pki.make_ca("kubernetes", days=3650), ["kubernetes-admin"], days=days)
    admin = _kubeconfig(certificate.cert_pem).replace(
        "kind: Config\n", f"kind: Config\nclusters:\n- cluster:\n    server: https://{settings.api_endpoint}\n"
    )
    (sandbox.root / "admin.conf").write_text(admin)
    script = render.render_script(
        "read-kubeconfig", {"API_ENDPOINT": settings.api_endpoint, "RENEW_DAYS": str(render.CERTIFICATE_RENEW_DAYS)}
    )
    result = sandbox.run(f"mkdir -p /etc/kubernetes && cp {sandbox.root / 'admin.conf'} /etc/kubernetes/", script)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.split("--- run 0\n", 1)[1]
    assert yaml.safe_load(printed)["users"][0]["user"]["client-certificate-data"]  # stdout is the kubeconfig alone
    assert (_calls(sandbox, "kubeadm") == ["kubeadm certs renew admin.conf"]) is renewed
    assert ("renewing it" in result.stderr) is renewed
