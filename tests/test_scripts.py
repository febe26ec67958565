"""Node scripts: shellcheck-clean as files and as rendered, strict mode, and idempotent.

Idempotency is exercised for real: each scenario runs the rendered script in a private mount
namespace where /etc, /root and /var/log are copy-on-write overlays (the host is never touched),
with `kubeadm`/`kubectl` replaced by recording stubs. A second run must change nothing.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from components import kubeadm_render as render
from config.settings import NodeSpec, Role, Settings
from tests.conftest import STACKS, load_settings, require_tool
from tools.offline.mockgraph import Graph, unwrap

TEMPLATES = sorted(render.TEMPLATES.glob("*.sh"))


def shellcheck(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("shellcheck"), "--severity=style", "--shell=bash", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_template_is_shellcheck_clean_and_strict(template: Path) -> None:
    result = shellcheck(template)
    assert result.returncode == 0, result.stdout
    code = [line for line in template.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert code[0] == "set -euo pipefail", f"{template.name} must start with strict mode"


def _heredoc_body(command: str) -> str:
    lines = command.splitlines()
    return "\n".join(lines[1:-1]) + "\n"


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_script_is_shellcheck_clean(stack: str, graphs: dict[str, Graph], tmp_path: Path) -> None:
    commands = graphs[stack].of_type("command:remote:Command")
    assert commands
    for command in commands:
        scripts = {"create": unwrap(command.inputs["stdin"])}
        if command.inputs.get("delete"):
            scripts["delete"] = _heredoc_body(unwrap(command.inputs["delete"]))
        for kind, text in scripts.items():
            path = tmp_path / f"{command.name}.{kind}.sh"
            path.write_text(text)
            result = shellcheck(path)
            assert result.returncode == 0, f"{command.name} ({kind}):\n{result.stdout}"


def test_a_non_variable_parameter_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not an environment variable name"):
        render.render_script("kube-vip", {"bad-name": "x"})


def test_parameters_round_trip_through_the_header() -> None:
    tricky = 'it\'s a "value" with $dollar and `ticks`\nand a newline'
    parameters, body = render.parse_rendered_script(render.render_script("kube-vip", {"KUBE_VIP_MANIFEST_B64": tricky}))
    assert parameters == {"KUBE_VIP_MANIFEST_B64": tricky}
    assert body == render.script_path("kube-vip").read_text()


# --- idempotency in a sandbox --------------------------------------------------------------------

STUB = """#!/usr/bin/env bash
# Records its arguments; behaviour chosen by files in $STUB_STATE.
echo "$(basename "$0") $*" >> "$STUB_STATE/calls"
if [ "$(basename "$0")" = apt-get ] && [ "$1" = -o ]; then shift 2; fi
case "$(basename "$0") $1" in
  "kubectl get")
    [ -e "$STUB_STATE/node-exists" ] || exit 1
    # The Ready condition drain-node.sh asks for: "<status> <lastTransitionTime>" (default: Ready for long).
    case "$*" in
      *lastTransitionTime*) cat "$STUB_STATE/node-ready" 2>/dev/null || echo "True 2026-01-01T00:00:00Z" ;;
    esac ;;
  "kubeadm join"|"kubeadm init")
    config="$3"
    stat -c '%a' "$config" > "$STUB_STATE/config-mode"
    cp "$config" "$STUB_STATE/config-seen"
    echo "$config" > "$STUB_STATE/config-path"
    [ "$2" = "--config" ] || exit 3
    mkdir -p /etc/kubernetes && echo joined > /etc/kubernetes/kubelet.conf ;;
  "apt-get install")
    # What open-iscsi's package leaves behind on a clone of a template that once started iscsid.
    mkdir -p /etc/iscsi
    [ -e /etc/iscsi/iscsid.conf ] || printf 'node.startup = manual\nnode.session.scan = auto\n' > /etc/iscsi/iscsid.conf
    names=/etc/iscsi/initiatorname.iscsi
    [ -e $names ] || echo 'InitiatorName=iqn.2004-10.com.ubuntu:01:0a1b2c3d4e5f' > $names ;;
esac
exit 0
"""


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    require_tool("unshare")
    return Sandbox(tmp_path)


class Sandbox:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"
        self.state.mkdir()
        (self.state / "calls").touch()
        self.bin = root / "bin"
        self.bin.mkdir()
        for tool in ("kubectl", "kubeadm", "apt-get", "systemctl"):
            stub = self.bin / tool
            stub.write_text(STUB)
            stub.chmod(0o755)
        self.overlays = []
        for directory in ("/etc", "/root", "/var/log", "/home", "/usr/local"):
            name = directory.strip("/").replace("/", "-")
            upper, work = root / f"{name}-upper", root / f"{name}-work"
            upper.mkdir()
            work.mkdir()
            self.overlays.append(
                f"mount -t overlay overlay -o lowerdir={directory},upperdir={upper},workdir={work} {directory}"
            )

    def stub(self, text: str, *tools: str) -> None:
        for tool in tools:
            path = self.bin / tool
            path.write_text(text)
            path.chmod(0o755)

    def run(self, setup: str, *scripts: str) -> subprocess.CompletedProcess[str]:
        """Run `setup`, then each script in turn with `bash -s`, all in one private namespace."""
        steps = []
        for i, script in enumerate(scripts):
            path = self.root / f"script-{i}.sh"
            path.write_text(script)
            steps.append(f'echo "--- run {i}"; bash -s < {path}')
        program = " && ".join([*self.overlays, setup or "true", *steps])
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "bash", "-c", program],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": f"{self.bin}:/usr/sbin:/usr/bin:/sbin:/bin", "STUB_STATE": str(self.state)},
        )

    def calls(self) -> list[str]:
        return (self.state / "calls").read_text().splitlines()


def test_kube_vip_install_is_idempotent_and_drops_super_admin_after_init(sandbox: Sandbox) -> None:
    settings = load_settings("prod")
    bootstrap = render.render_script("kube-vip", render.kube_vip_parameters(settings, render.SUPER_ADMIN_CONF))
    result = sandbox.run(
        "",
        bootstrap,
        bootstrap,
        "cat /etc/kubernetes/manifests/kube-vip.yaml",
    )
    assert result.returncode == 0, result.stderr
    runs = result.stdout.split("--- run ")
    assert "manifest installed" in runs[1] and "manifest unchanged" in runs[2]
    assert runs[3].split("\n", 1)[1] == render.render_kube_vip_manifest(settings, render.SUPER_ADMIN_CONF)

    # Re-run on a node whose control plane is up: the broad credential is not brought back.
    after_init = sandbox.run(
        "mkdir -p /etc/kubernetes/manifests && echo x > /etc/kubernetes/manifests/kube-apiserver.yaml"
        " && echo x > /etc/kubernetes/admin.conf",
        bootstrap,
        "cat /etc/kubernetes/manifests/kube-vip.yaml",
    )
    assert after_init.returncode == 0, after_init.stderr
    assert f"path: {render.ADMIN_CONF}" in after_init.stdout
    assert render.SUPER_ADMIN_CONF not in after_init.stdout


TOKEN = "abcdef.0123456789abcdef"
CERTIFICATE_KEY = "f" * 64
CREDENTIALS_URN = "urn:pulumi:prod::dsaas::dsaas:kubernetes:KubeadmCluster$command:remote:Command::x-join-credentials"


def _join_script(settings: Settings, node: NodeSpec) -> tuple[str, str]:
    credentials = render.JoinCredentials(
        token=TOKEN, certificate_key=CERTIFICATE_KEY if node.role is Role.CONTROL_PLANE else ""
    )
    config = render.render_join_config(settings, node, credentials, "sha256:" + "0" * 64)
    parameters = {
        "KUBEADM_CONFIG_B64": render.b64(config),
        "NODE_NAME": node.name,
        "NODE_ROLE": node.role.value,
        "CREDENTIALS_URN": CREDENTIALS_URN,
    }
    return config, render.render_script("kubeadm-join", parameters)


def test_join_runs_once_with_a_private_config_that_is_removed(sandbox: Sandbox) -> None:
    settings = load_settings("prod")
    config, script = _join_script(settings, settings.workers[0])
    result = sandbox.run("", script, script)
    assert result.returncode == 0, result.stderr
    joins = [c for c in sandbox.calls() if c.startswith("kubeadm join")]
    assert len(joins) == 1, sandbox.calls()
    assert "already joined" in result.stdout.split("--- run 1")[1]
    assert (sandbox.state / "config-seen").read_text() == config
    assert (sandbox.state / "config-mode").read_text().strip() == "600"
    left_behind = sandbox.run("", f"test ! -e {(sandbox.state / 'config-path').read_text().strip()}")
    assert left_behind.returncode == 0, "the config with the token must be removed after the join"


def test_a_joined_control_plane_deletes_the_uploaded_certificates(sandbox: Sandbox) -> None:
    settings = load_settings("prod")
    _, script = _join_script(settings, settings.control_planes[1])
    result = sandbox.run("", script)
    assert result.returncode == 0, result.stderr
    assert any("delete secret kubeadm-certs" in call for call in sandbox.calls()), sandbox.calls()


def test_a_failed_join_keeps_no_token_in_its_log_and_says_how_to_renew_the_credentials(sandbox: Sandbox) -> None:
    settings = load_settings("prod")
    _, script = _join_script(settings, settings.workers[0])
    sandbox.stub(
        f"""#!/usr/bin/env bash
echo "[discovery] token {TOKEN}: could not find a JWS signature in the cluster-info ConfigMap"
echo "[ERROR] couldn't validate the identity of the API Server"
exit 1
""",
        "kubeadm",
    )
    result = sandbox.run("", script)
    assert result.returncode != 0
    assert f"pulumi up --replace '{CREDENTIALS_URN}'" in result.stderr
    assert TOKEN not in result.stderr + result.stdout
    log = sandbox.run("", "cat /var/log/dsaas-kubeadm-join.log").stdout  # the overlays keep what runs wrote
    assert "JWS signature" in log and TOKEN not in log


JOIN_CREDENTIALS_STUB = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$STUB_STATE/calls"
case "$*" in
  "token create"*) printf '%s.%s\\n' "$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \\n')" \
                   "$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \\n')" ;;
  "init phase upload-certs --upload-certs")
    echo '[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace'
    echo '[upload-certs] Using certificate key:'
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo ;;
esac
"""


@pytest.mark.parametrize("role", [Role.CONTROL_PLANE, Role.WORKER])
def test_join_credentials_are_new_on_every_run_and_never_on_a_command_line(sandbox: Sandbox, role: Role) -> None:
    settings = load_settings("prod")
    node = settings.control_planes[1] if role is Role.CONTROL_PLANE else settings.workers[0]
    sandbox.stub(JOIN_CREDENTIALS_STUB, "kubeadm")
    script = render.render_script("join-credentials", render.join_credentials_parameters(node))
    first, second = (sandbox.run("", script) for _ in range(2))
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    issued = [render.parse_join_credentials(run.stdout.split("--- run 0\n")[1], node) for run in (first, second)]
    assert issued[0].token != issued[1].token
    if role is Role.CONTROL_PLANE:
        assert issued[0].certificate_key != issued[1].certificate_key
        assert any("upload-certs" in call for call in sandbox.calls())
    else:
        assert issued[0].certificate_key == "" and not any("upload-certs" in call for call in sandbox.calls())
    command_lines = "\n".join(sandbox.calls())
    for credentials in issued:
        assert credentials.token not in command_lines and credentials.token.split(".")[1] not in command_lines
        assert not credentials.certificate_key or credentials.certificate_key not in command_lines
    assert f"--description dsaas join of {node.name}" in command_lines


def test_join_credentials_output_is_checked_before_a_join_uses_it() -> None:
    settings = load_settings("prod")
    control_plane, worker = settings.control_planes[1], settings.workers[0]
    good = '{"token": "abcdef.0123456789abcdef", "certificateKey": "%s"}' % ("a" * 64)
    assert render.parse_join_credentials(good, control_plane).certificate_key == "a" * 64
    for bad in ("", "not json", '{"token": "short"}', '{"token": "abcdef.0123456789abcdef", "certificateKey": ""}'):
        with pytest.raises(ValueError, match=control_plane.name) as raised:
            render.parse_join_credentials(bad, control_plane)
        assert "0123456789abcdef" not in str(raised.value)
    assert render.parse_join_credentials('{"token": "abcdef.0123456789abcdef", "certificateKey": ""}', worker)


def test_membership_deletes_only_the_join_token_of_its_node(sandbox: Sandbox) -> None:
    node = load_settings("prod").workers[0]
    sandbox.stub(
        f"""#!/usr/bin/env bash
echo "kubectl $*" >> "$STUB_STATE/calls"
case "$*" in
  *"get secrets"*) printf 'bootstrap-token-abcdef\\tdsaas join of {node.name}\\n'
                   printf 'bootstrap-token-zzzzzz\\tdsaas join of dsaas-prod-worker-2\\n'
                   printf 'bootstrap-token-yyyyyy\\t\\n' ;;
esac
""",
        "kubectl",
    )
    result = sandbox.run("", render.render_script("node-membership", render.node_label_parameters(node)))
    assert result.returncode == 0, result.stderr
    deletes = [c for c in sandbox.calls() if " delete " in f" {c} "]
    assert deletes == ["kubectl -n kube-system delete secret bootstrap-token-abcdef"], sandbox.calls()


def test_init_keeps_no_join_secret_in_its_log_deletes_its_token_and_removes_super_admin(sandbox: Sandbox) -> None:
    settings = load_settings("prod")
    first = settings.control_planes[0]
    script = render.render_script(
        "kubeadm-init",
        {
            "KUBEADM_CONFIG_B64": render.b64(render.render_init_config(settings, first)),
            "API_ENDPOINT": settings.api_endpoint,
            "NODE_NAME": first.name,
        },
    )
    sandbox.stub(
        f"""#!/usr/bin/env bash
echo "kubeadm $*" >> "$STUB_STATE/calls"
mkdir -p /etc/kubernetes && echo admin > /etc/kubernetes/admin.conf && echo super > {render.SUPER_ADMIN_CONF}
echo "  kubeadm join {settings.api_endpoint} --token {TOKEN} \\\\"
echo "    --discovery-token-ca-cert-hash sha256:{"0" * 64} --control-plane --certificate-key {CERTIFICATE_KEY}"
""",
        "kubeadm",
    )
    sandbox.stub(
        """#!/usr/bin/env bash
echo "kubectl $*" >> "$STUB_STATE/calls"
case "$*" in *"get pod kube-vip-"*) echo /etc/kubernetes/admin.conf ;; esac
""",
        "kubectl",
    )
    setup = (
        "mkdir -p /etc/kubernetes/manifests && "
        f"printf '    path: {render.SUPER_ADMIN_CONF}\\n' > /etc/kubernetes/manifests/kube-vip.yaml"
    )
    result = sandbox.run(
        setup,
        script,
        f"cat /var/log/dsaas-kubeadm-init.log; test ! -e {render.SUPER_ADMIN_CONF} && echo super-admin-removed",
    )
    assert result.returncode == 0, result.stderr
    log = result.stdout.split("--- run 1")[1]
    assert "--token <bootstrap token redacted>" in log
    assert TOKEN not in log and CERTIFICATE_KEY not in log
    assert "super-admin-removed" in log
    token_cleanup = "kubectl -n kube-system delete secrets --field-selector type=bootstrap.kubernetes.io/token"
    assert token_cleanup in sandbox.calls()


def _drain(node: str) -> str:
    return render.render_script("drain-node", {"NODE_NAME": node, "GONE_AFTER_SECONDS": str(render.GONE_AFTER_SECONDS)})


def test_drain_is_a_no_op_for_a_node_already_gone(sandbox: Sandbox) -> None:
    script = _drain("dsaas-prod-worker-9")
    result = sandbox.run("", script, script)
    assert result.returncode == 0, result.stderr
    assert not [c for c in sandbox.calls() if "drain" in c or "delete" in c]


def test_drain_cordons_drains_and_deletes_an_existing_node(sandbox: Sandbox) -> None:
    (sandbox.state / "node-exists").touch()
    result = sandbox.run("", _drain("dsaas-prod-worker-2"))
    assert result.returncode == 0, result.stderr
    verbs = [c.split()[1] for c in sandbox.calls() if c.startswith("kubectl")]
    assert verbs == ["get", "cordon", "drain", "delete"]
    (drain,) = [c for c in sandbox.calls() if c.startswith("kubectl drain")]
    assert "--force" in drain.split()  # notebook servers are bare pods (no controller)


@pytest.mark.parametrize(
    ("ready", "minutes_ago", "drained"),
    [("Unknown", 30, False), ("False", 30, False), ("Unknown", 1, True), ("True", 30, True)],
)
def test_a_node_whose_host_is_gone_is_removed_without_a_drain_that_would_wait_out_its_timeout(
    ready: str, minutes_ago: int, drained: bool, sandbox: Sandbox
) -> None:
    """Issue 26, item 3: a dead worker's kubelet never confirms its pods stopped, so `kubectl drain` would wait
    10 minutes and fail `pulumi up`. Not Ready for GONE_AFTER_SECONDS: deleted at once. Just NotReady (a kubelet
    restart): drained as usual."""
    import datetime

    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=minutes_ago)
    (sandbox.state / "node-exists").touch()
    (sandbox.state / "node-ready").write_text(f"{ready} {since:%Y-%m-%dT%H:%M:%SZ}\n")
    result = sandbox.run("", _drain("dsaas-prod-worker-2"))
    assert result.returncode == 0, result.stderr
    verbs = [c.split()[1] for c in sandbox.calls() if c.startswith("kubectl")]
    assert verbs == (["get", "cordon", "drain", "delete"] if drained else ["get", "delete"])
    assert ("removed without a drain" in result.stdout) is not drained


def test_reset_does_nothing_on_a_node_that_never_joined(sandbox: Sandbox) -> None:
    result = sandbox.run("", render.render_script("kubeadm-reset", {}), render.render_script("kubeadm-reset", {}))
    assert result.returncode == 0, result.stderr
    assert sandbox.calls() == []


def test_init_is_skipped_on_an_initialised_node(sandbox: Sandbox) -> None:
    settings = load_settings("prod")
    first = settings.control_planes[0]
    config = render.render_init_config(settings, first)
    script = render.render_script(
        "kubeadm-init",
        {"KUBEADM_CONFIG_B64": render.b64(config), "API_ENDPOINT": settings.api_endpoint, "NODE_NAME": first.name},
    )
    setup = (
        "mkdir -p /etc/kubernetes/manifests && echo x > /etc/kubernetes/admin.conf && "
        f"printf '    path: {render.SUPER_ADMIN_CONF}\\n' > /etc/kubernetes/manifests/kube-vip.yaml"
    )
    result = sandbox.run(setup, script, "cat /etc/kubernetes/manifests/kube-vip.yaml")
    assert result.returncode == 0, result.stderr
    assert not [c for c in sandbox.calls() if c.startswith("kubeadm")]
    assert f"path: {render.ADMIN_CONF}" in result.stdout and "control plane ready" in result.stdout


def test_block_storage_gives_the_node_its_own_initiator_and_a_second_run_changes_nothing(sandbox: Sandbox) -> None:
    settings = load_settings("prod")
    node = settings.workers[0]
    script = render.render_script("prepare-block-storage", render.block_storage_parameters(node))
    result = sandbox.run(
        "", script, script, "cat /etc/iscsi/initiatorname.iscsi /etc/iscsi/iscsid.conf /etc/multipath.conf"
    )
    assert result.returncode == 0, result.stderr
    runs = result.stdout.split("--- run ")
    assert "iscsi changed: true, multipath changed: true" in runs[1]
    assert "iscsi changed: false, multipath changed: false" in runs[2]
    files = runs[3]
    assert f"InitiatorName={render.iscsi_initiator_name(node)}\n" in files and "0a1b2c3d4e5f" not in files
    assert "node.session.scan = manual" in files and "node.session.scan = auto" not in files
    assert "find_multipaths no" in files and 'vendor "VMware"' in files
    calls = sandbox.calls()
    restarts = [c for c in calls if c.startswith("systemctl restart")]
    assert restarts == ["systemctl restart multipathd.service", "systemctl restart iscsid.service"]  # first run only
    # multipath-tools.service is an alias: `systemctl enable` refuses it once multipathd is enabled.
    assert not [c for c in calls if "multipath-tools.service" in c]


# What a fresh Ubuntu node's tools answer, for running prepare-node.sh end to end: packages are
# "installed" into $STUB_STATE, containerd prints the default config the test chose, and the Docker
# package leaves its own /etc/containerd/config.toml (CRI disabled), as the real one does.
NODE_STUB = """#!/usr/bin/env bash
tool="$(basename "$0")"
echo "$tool $*" >> "$STUB_STATE/calls"
output_file() { local previous="" argument; for argument in "$@"; do
  [ "$previous" = "-o" ] && echo "$argument"; previous="$argument"; done; }
case "$tool" in
  apt-cache)
    case "$2" in
      containerd.io) echo " containerd.io | ${CONTAINERD_VERSION}-1~ubuntu.24.04~noble | https://download.docker.com" ;;
      *) echo " $2 | ${KUBERNETES_VERSION}-1.1 | https://pkgs.k8s.io/core:/stable:/v${KUBERNETES_MINOR}/deb" ;;
    esac ;;
  dpkg-query) package="${*: -1}"; [ -e "$STUB_STATE/pkg-$package" ] || exit 1; cat "$STUB_STATE/pkg-$package" ;;
  dpkg) echo amd64 ;;
  apt-get)
    [ "$1" = -o ] && shift 2
    [ "$1" = install ] || exit 0
    for argument in "$@"; do
      case "$argument" in *=*)
        printf '%s' "${argument#*=}" > "$STUB_STATE/pkg-${argument%%=*}"
        if [ "${argument%%=*}" = containerd.io ]; then
          mkdir -p /etc/containerd && echo 'disabled_plugins = ["cri"]' > /etc/containerd/config.toml
        fi ;;
      esac
    done ;;
  containerd) cat "$STUB_STATE/containerd-default" ;;
  curl)
    case "$*" in *download.docker.com*) key=docker ;; *pkgs.k8s.io*) key=kubernetes ;; *) exit 22 ;; esac
    cp "$STUB_STATE/served-$key.asc" "$(output_file "$@")" ;;
esac
exit 0
"""
NODE_TOOLS = (
    "apt-cache",
    "apt-get",
    "apt-mark",
    "dpkg",
    "dpkg-query",
    "containerd",
    "curl",
    "cloud-init",
    "swapon",
    "swapoff",
    "modprobe",
    "sysctl",
    "systemctl",
)

# The CRI runc options table of `containerd config default`, as far as it matters here. containerd
# v2.1.4's DefaultRuntimeConfig has no SystemdCgroup key; v2.1.5 added it (upstream commit 56cde7d).
_RUNC_TABLES = """version = 3

[plugins]
  [plugins.'io.containerd.cri.v1.runtime']
    enable_selinux = false

    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes]
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
          runtime_type = 'io.containerd.runc.v2'

          [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
            BinaryName = ''
            CriuImagePath = ''
            CriuWorkPath = ''
            IoGid = 0
            IoUid = 0
            NoNewKeyring = false
            Root = ''
            ShimCgroup = ''
{extra}
  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
"""
CONTAINERD_DEFAULTS = {
    "2.1.4": _RUNC_TABLES.format(extra=""),
    "2.1.5": _RUNC_TABLES.format(extra="            SystemdCgroup = false\n"),
}


@dataclass(frozen=True)
class SigningKey:
    armored: str
    fingerprint: str


def make_signing_key(home: Path, uid: str) -> SigningKey:
    """A real OpenPGP key, made by the real gpg (the scripts check keys with it, unstubbed)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    gpg = [require_tool("gpg"), "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", uid, "ed25519", "sign", "never"], check=True, capture_output=True)
    armored = subprocess.run([*gpg, "--armor", "--export", uid], check=True, capture_output=True, text=True).stdout
    listing = subprocess.run([*gpg, "--with-colons", "--list-keys", uid], check=True, capture_output=True, text=True)
    fingerprint = next(line.split(":")[9] for line in listing.stdout.splitlines() if line.startswith("fpr:"))
    return SigningKey(armored, fingerprint)


@pytest.fixture(scope="module")
def signing_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SigningKey]:
    """Stand-ins for Docker's and pkgs.k8s.io's keys, and a key nobody pinned."""
    home = tmp_path_factory.mktemp("gnupg")
    return {
        name: make_signing_key(home / name, f"dsaas test {name} <{name}@example.invalid>")
        for name in ("docker", "kubernetes", "intruder")
    }


def serve_keys(sandbox: Sandbox, keys: dict[str, SigningKey], docker: str, kubernetes: str) -> dict[str, str]:
    """The stub curl serves these keys; returns prepare-node's parameters pinning the stand-ins."""
    (sandbox.state / "served-docker.asc").write_text(keys[docker].armored)
    (sandbox.state / "served-kubernetes.asc").write_text(keys[kubernetes].armored)
    return {
        **render.prepare_node_parameters(load_settings("prod")),
        "DOCKER_KEY_FINGERPRINT": keys["docker"].fingerprint,
        "KUBERNETES_KEY_FINGERPRINT": keys["kubernetes"].fingerprint,
    }


def test_the_pinned_apt_keys_are_full_fingerprints() -> None:
    parameters = render.prepare_node_parameters(load_settings("prod"))
    for name in ("DOCKER_KEY_FINGERPRINT", "KUBERNETES_KEY_FINGERPRINT"):
        assert re.fullmatch(r"[0-9A-F]{40}", parameters[name]), name


@pytest.mark.parametrize("tampered", ["docker", "kubernetes"])
def test_prepare_node_refuses_a_signing_key_that_is_not_the_pinned_one(
    tampered: str, sandbox: Sandbox, signing_keys: dict[str, SigningKey]
) -> None:
    sandbox.stub(NODE_STUB, *NODE_TOOLS)
    (sandbox.state / "containerd-default").write_text(CONTAINERD_DEFAULTS["2.1.5"])
    served = {"docker": "docker", "kubernetes": "kubernetes", tampered: "intruder"}
    parameters = serve_keys(sandbox, signing_keys, served["docker"], served["kubernetes"])
    keyring = {"docker": "docker.asc", "kubernetes": "kubernetes-apt-keyring.gpg"}[tampered]
    result = sandbox.run("", render.render_script("prepare-node", parameters))
    assert result.returncode != 0
    assert not (sandbox.root / "etc-upper" / "apt" / "keyrings" / keyring).exists()
    pinned = parameters[f"{tampered.upper()}_KEY_FINGERPRINT"]
    assert f"is '{signing_keys['intruder'].fingerprint}', not the pinned {pinned}" in result.stderr
    assert not [c for c in sandbox.calls() if c.startswith("apt-get")]  # no repository was trusted


def test_an_installed_key_that_is_not_the_pinned_one_is_replaced(
    sandbox: Sandbox, signing_keys: dict[str, SigningKey]
) -> None:
    """A node prepared by an older script (key fetched unchecked) gets the pinned key on the next run."""
    sandbox.stub(NODE_STUB, *NODE_TOOLS)
    (sandbox.state / "containerd-default").write_text(CONTAINERD_DEFAULTS["2.1.5"])
    parameters = serve_keys(sandbox, signing_keys, "docker", "kubernetes")
    intruder = sandbox.root / "intruder.asc"
    intruder.write_text(signing_keys["intruder"].armored)
    result = sandbox.run(
        f"mkdir -p /etc/apt/keyrings && cp {intruder} /etc/apt/keyrings/docker.asc",
        render.render_script("prepare-node", parameters),
        "gpg --batch --show-keys --with-colons /etc/apt/keyrings/docker.asc",
    )
    assert result.returncode == 0, result.stderr
    shown = result.stdout.split("--- run 1\n", 1)[1]
    assert signing_keys["docker"].fingerprint in shown and signing_keys["intruder"].fingerprint not in shown


@pytest.mark.parametrize("containerd", sorted(CONTAINERD_DEFAULTS))
def test_prepare_node_runs_end_to_end_sets_systemd_cgroups_and_a_second_run_changes_nothing(
    containerd: str, sandbox: Sandbox, signing_keys: dict[str, SigningKey]
) -> None:
    sandbox.stub(NODE_STUB, *NODE_TOOLS)
    (sandbox.state / "containerd-default").write_text(CONTAINERD_DEFAULTS[containerd])
    settings = load_settings("prod")
    script = render.render_script("prepare-node", serve_keys(sandbox, signing_keys, "docker", "kubernetes"))
    result = sandbox.run("", script, script, "cat /etc/containerd/config.toml")
    assert result.returncode == 0, result.stderr
    config = tomllib.loads(result.stdout.split("--- run 2\n", 1)[1])
    runc = config["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["runc"]
    assert runc["options"]["SystemdCgroup"] is True
    assert "disabled_plugins" not in config  # the package's CRI-less config is replaced
    keyrings = sandbox.root / "etc-upper" / "apt" / "keyrings"
    assert {p.name for p in keyrings.iterdir()} == {"docker.asc", "kubernetes-apt-keyring.gpg"}

    calls = sandbox.calls()
    installs = [c for c in calls if c.startswith("apt-get") and "install" in c.split()]
    assert len(installs) == 4, installs  # containerd.io, kubelet, kubeadm, kubectl: once each
    assert f"kubeadm={settings.cluster.kubernetes_version}-1.1" in " ".join(installs)
    assert calls.count("systemctl restart containerd") == 1  # the second run restarts nothing
    holds = [c for c in calls if c.startswith("apt-mark hold")]
    assert len(holds) == 8  # every run keeps all four packages held
    # Just after first boot unattended-upgrades may hold the dpkg lock: every apt-get waits for it.
    assert all(c.startswith("apt-get -o DPkg::Lock::Timeout=") for c in calls if c.startswith("apt-get"))


def test_prepare_node_refuses_a_version_the_repositories_do_not_have(
    sandbox: Sandbox, signing_keys: dict[str, SigningKey]
) -> None:
    sandbox.stub(NODE_STUB.replace("containerd.io | ${CONTAINERD_VERSION}-1", "containerd.io | 9.9.9-1"), *NODE_TOOLS)
    (sandbox.state / "containerd-default").write_text(CONTAINERD_DEFAULTS["2.1.5"])
    result = sandbox.run(
        "", render.render_script("prepare-node", serve_keys(sandbox, signing_keys, "docker", "kubernetes"))
    )
    assert result.returncode != 0
    assert "no containerd.io package for version" in result.stderr
    assert not [c for c in sandbox.calls() if c.startswith("apt-get") and "install" in c.split()]


def test_ssh_keys_are_set_exactly_and_a_removed_key_is_gone(sandbox: Sandbox) -> None:
    generated, alice, bob = (f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5{name} {name}" for name in ("gen", "alice", "bob"))

    def keys_script(*keys: str) -> str:
        return render.render_script("authorized-keys", {"ADMIN_USER": "dsaasadmin", "AUTHORIZED_KEYS": "\n".join(keys)})

    keys_file = "/home/dsaasadmin/.ssh/authorized_keys"
    show = f"stat -c '%a %U' /home/dsaasadmin/.ssh {keys_file}; cat {keys_file}"
    result = sandbox.run(
        # cloud-init's first-boot state: the user with the keys of that time.
        "useradd -m dsaasadmin && install -d -m 0700 -o dsaasadmin -g dsaasadmin /home/dsaasadmin/.ssh"
        f" && printf '%s\\n%s\\n' '{generated}' '{alice}' > /home/dsaasadmin/.ssh/authorized_keys",
        keys_script(generated, alice),
        keys_script(generated, bob),  # alice's key removed from the stack, bob's added
        keys_script(generated, bob),
        show,
    )
    assert result.returncode == 0, result.stderr
    runs = result.stdout.split("--- run ")
    assert "unchanged" in runs[1] and "set (2 keys)" in runs[2] and "unchanged" in runs[3]
    listing = runs[4].splitlines()[1:]
    assert listing[:2] == ["700 dsaasadmin", "600 dsaasadmin"]
    assert listing[2:] == [generated, bob]


def test_ssh_keys_refuse_a_user_that_does_not_exist(sandbox: Sandbox) -> None:
    script = render.render_script(
        "authorized-keys", {"ADMIN_USER": "nobody-here", "AUTHORIZED_KEYS": "ssh-ed25519 AAAA x"}
    )
    result = sandbox.run("", script)
    assert result.returncode != 0 and "there is no user nobody-here" in result.stderr


def test_sandbox_is_available() -> None:
    assert shutil.which("unshare"), "util-linux unshare is needed for the idempotency tests"


def test_apiserver_files_are_root_only_unchanged_on_a_second_run_and_never_rekeyed(sandbox: Sandbox) -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    script = render.render_script("apiserver-files", render.apiserver_files_parameters(key))
    config = render.ENCRYPTION_CONFIG_PATH
    result = sandbox.run("", script, script, f"stat -c '%a %n' {render.APISERVER_CONFIG_DIR} {config} && cat {config}")
    assert result.returncode == 0, result.stderr
    shown = result.stdout.split("--- run 2\n", 1)[1]
    assert f"700 {render.APISERVER_CONFIG_DIR}\n600 {config}\n" in shown
    assert (
        key in shown
        and render.render_audit_policy()
        == (sandbox.root / "etc-upper" / "kubernetes" / "dsaas" / "audit-policy.yaml").read_text()
    )

    other = render.render_script(
        "apiserver-files", render.apiserver_files_parameters(base64.b64encode(bytes(32)).decode())
    )
    refused = sandbox.run("", other, f"cat {config}")
    assert refused.returncode == 0  # the last step (cat) ran: the file is still the first key's
    assert "holds another key than the stack's" in refused.stderr and key in refused.stdout


# --- Kubernetes upgrades (upgrade-node.sh on the node, upgrade-drain.sh on the first control plane) ------

OLD_PACKAGE = "1.34.4-1.1"
# apt-get stopped dead (SIGKILL to the script's shell) while installing kubelet the first time: an `up`
# interrupted half-way through a node's upgrade.
KILL_AT_KUBELET = """  apt-get)
    case "$*" in *kubelet=*)
      if [ ! -e "$STUB_STATE/killed" ]; then touch "$STUB_STATE/killed"; kill -KILL "$PPID"; exit 137; fi ;;
    esac
"""


def _upgrade_sandbox(sandbox: Sandbox, signing_keys: dict[str, SigningKey], kill: bool = False) -> str:
    """A joined node at 1.34 with the stub tools; returns the upgrade script for prod's version (apply)."""
    sandbox.stub(NODE_STUB.replace("  apt-get)\n", KILL_AT_KUBELET, 1) if kill else NODE_STUB, *NODE_TOOLS)
    for package in ("kubeadm", "kubelet", "kubectl"):
        (sandbox.state / f"pkg-{package}").write_text(OLD_PACKAGE)
    (sandbox.state / "served-kubernetes.asc").write_text(signing_keys["kubernetes"].armored)
    settings = load_settings("prod")
    parameters = {
        **render.upgrade_node_parameters(settings, settings.control_planes[0], "apply"),
        "KUBERNETES_KEY_FINGERPRINT": signing_keys["kubernetes"].fingerprint,
    }
    return render.render_script("upgrade-node", parameters)


JOINED = "mkdir -p /etc/kubernetes && echo joined > /etc/kubernetes/kubelet.conf"


def _upgrade_calls(calls: list[str]) -> list[str]:
    """The calls that change the node, in order (reads such as dpkg-query and apt-cache left out)."""
    keep = ("apt-get", "apt-mark unhold", "kubeadm", "systemctl")
    return [c for c in calls if c.startswith(keep)]


def test_upgrade_node_runs_in_kubeadms_order_and_a_second_run_does_nothing(
    sandbox: Sandbox, signing_keys: dict[str, SigningKey]
) -> None:
    script = _upgrade_sandbox(sandbox, signing_keys)
    version = load_settings("prod").cluster.kubernetes_version
    result = sandbox.run(JOINED, script, script, "cat /etc/apt/sources.list.d/kubernetes.list")
    assert result.returncode == 0, result.stderr
    runs = result.stdout.split("--- run ")
    assert "upgraded to Kubernetes" in runs[1]
    assert "nothing to do" in runs[2]
    assert f"https://pkgs.k8s.io/core:/stable:/v{version.rsplit('.', 1)[0]}/deb/ /" in runs[3]
    wait = "-o DPkg::Lock::Timeout=600"
    assert _upgrade_calls(sandbox.calls()) == [
        f"apt-get {wait} update -qq",
        "apt-mark unhold kubeadm",
        f"apt-get {wait} install -y -qq --allow-change-held-packages kubeadm={version}-1.1",
        f"kubeadm upgrade apply v{version} --yes",
        "apt-mark unhold kubelet",
        f"apt-get {wait} install -y -qq --allow-change-held-packages kubelet={version}-1.1",
        "apt-mark unhold kubectl",
        f"apt-get {wait} install -y -qq --allow-change-held-packages kubectl={version}-1.1",
        "systemctl daemon-reload",
        "systemctl restart kubelet",
    ]  # and nothing from the second run


def test_upgrade_node_killed_half_way_finishes_on_the_next_run_without_upgrading_twice(
    sandbox: Sandbox, signing_keys: dict[str, SigningKey]
) -> None:
    script = _upgrade_sandbox(sandbox, signing_keys, kill=True)
    version = load_settings("prod").cluster.kubernetes_version
    killed = sandbox.run(JOINED, script)
    assert killed.returncode != 0 and (sandbox.state / "killed").exists()
    assert "upgraded to Kubernetes" not in killed.stdout
    first = len(sandbox.calls())
    resumed = sandbox.run("", script, script)
    assert resumed.returncode == 0, resumed.stderr
    assert "upgraded to Kubernetes" in resumed.stdout.split("--- run 1")[0]
    assert "nothing to do" in resumed.stdout.split("--- run 1")[1]
    wait = "-o DPkg::Lock::Timeout=600"
    # kubeadm is already at the version and its upgrade is recorded done: the rerun goes on from kubelet.
    assert _upgrade_calls(sandbox.calls()[first:]) == [
        f"apt-get {wait} update -qq",
        "apt-mark unhold kubelet",
        f"apt-get {wait} install -y -qq --allow-change-held-packages kubelet={version}-1.1",
        "apt-mark unhold kubectl",
        f"apt-get {wait} install -y -qq --allow-change-held-packages kubectl={version}-1.1",
        "systemctl daemon-reload",
        "systemctl restart kubelet",
    ]
    assert sum(c.startswith("kubeadm upgrade") for c in sandbox.calls()) == 1


def test_upgrade_node_on_a_node_installed_at_the_version_does_nothing(
    sandbox: Sandbox, signing_keys: dict[str, SigningKey]
) -> None:
    """A first `up`: the node was prepared at the stack's version, so its upgrade step changes nothing."""
    script = _upgrade_sandbox(sandbox, signing_keys)
    version = load_settings("prod").cluster.kubernetes_version
    for package in ("kubeadm", "kubelet", "kubectl"):
        (sandbox.state / f"pkg-{package}").write_text(f"{version}-1.1")
    result = sandbox.run(JOINED, script)
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout
    assert _upgrade_calls(sandbox.calls()) == []


def test_upgrade_node_refuses_a_signing_key_that_is_not_the_pinned_one(
    sandbox: Sandbox, signing_keys: dict[str, SigningKey]
) -> None:
    script = _upgrade_sandbox(sandbox, signing_keys)
    (sandbox.state / "served-kubernetes.asc").write_text(signing_keys["intruder"].armored)
    result = sandbox.run(JOINED, script)
    assert result.returncode != 0
    assert "not the pinned" in result.stderr
    assert _upgrade_calls(sandbox.calls()) == []


# kubectl on the first control plane: the node's kubelet version and cordon state live in $STUB_STATE;
# `drain` fails while $STUB_STATE/blocked exists, and `get pods` names the pod still there.
KUBECTL_STUB = """#!/usr/bin/env bash
echo "kubectl $*" >> "$STUB_STATE/calls"
case "$1 $*" in
  "get "*kubeletVersion*) cat "$STUB_STATE/kubelet-version" ;;
  "get "*unschedulable*) cat "$STUB_STATE/unschedulable" 2>/dev/null || true ;;
  "get "*pods*) echo -n "jupyter/jupyter-alice " ;;
  "cordon "*) echo true > "$STUB_STATE/unschedulable" ;;
  "uncordon "*) rm -f "$STUB_STATE/unschedulable" ;;
  "drain "*) [ ! -e "$STUB_STATE/blocked" ] || exit 1 ;;
esac
exit 0
"""


def _drain_script(phase: str) -> str:
    settings = load_settings("prod")
    return render.render_script("upgrade-drain", render.upgrade_drain_parameters(settings, settings.workers[0], phase))


def test_drain_and_release_around_an_upgrade_in_order_and_idempotent(sandbox: Sandbox) -> None:
    sandbox.stub(KUBECTL_STUB, "kubectl")
    version = load_settings("prod").cluster.kubernetes_version
    node = load_settings("prod").workers[0].name
    (sandbox.state / "kubelet-version").write_text("v1.34.4")
    drained = sandbox.run("", _drain_script("drain"), _drain_script("drain"))
    assert drained.returncode == 0, drained.stderr
    (sandbox.state / "kubelet-version").write_text(f"v{version}")  # what upgrade-node.sh leaves
    released = sandbox.run("", _drain_script("release"), _drain_script("release"), _drain_script("drain"))
    assert released.returncode == 0, released.stderr
    assert "not drained" in released.stdout.split("--- run 2")[1]
    changes = [c for c in sandbox.calls() if not c.startswith("kubectl get")]
    drain = f"kubectl drain {node} --ignore-daemonsets --delete-emptydir-data --force --timeout=10m"
    ready = f"kubectl wait --for=condition=Ready node/{node} --timeout=5m"
    assert changes == [
        f"kubectl cordon {node}",
        drain,
        f"kubectl cordon {node}",  # the drain killed half-way is simply drained again
        drain,
        f"kubectl uncordon {node}",
        ready,
        f"kubectl uncordon {node}",
        ready,
    ]


def test_a_drain_past_its_timeout_names_the_pod_that_blocks(sandbox: Sandbox) -> None:
    sandbox.stub(KUBECTL_STUB, "kubectl")
    (sandbox.state / "kubelet-version").write_text("v1.34.4")
    (sandbox.state / "blocked").touch()
    result = sandbox.run("", _drain_script("drain"))
    assert result.returncode != 0
    assert "took longer than 10m; still running there: jupyter/jupyter-alice" in result.stderr


def test_prepare_node_leaves_a_joined_nodes_kubernetes_packages_to_the_upgrade_step(
    sandbox: Sandbox, signing_keys: dict[str, SigningKey]
) -> None:
    """dsaas:kubernetesVersion changed: this step runs again beside the upgrade steps and must not switch."""
    sandbox.stub(NODE_STUB, *NODE_TOOLS)
    (sandbox.state / "containerd-default").write_text(CONTAINERD_DEFAULTS["2.1.5"])
    for package in ("kubeadm", "kubelet", "kubectl"):
        (sandbox.state / f"pkg-{package}").write_text(OLD_PACKAGE)
    script = render.render_script("prepare-node", serve_keys(sandbox, signing_keys, "docker", "kubernetes"))
    result = sandbox.run(JOINED, script)
    assert result.returncode == 0, result.stderr
    assert "refusing to switch" in result.stdout and "outside its upgrade step" in result.stdout
    installs = [c for c in sandbox.calls() if c.startswith("apt-get") and "install" in c.split()]
    assert [c.rsplit(" ", 1)[-1].split("=")[0] for c in installs] == ["containerd.io"]
