"""Pure renderers for the kubeadm layer: kubeadm configs, the kube-vip static pod, node scripts.

Scripts are files under `components/templates/` (so shellcheck reads exactly what runs). A node
receives a script as standard input behind a header of `export NAME='value'` lines; files the
script installs travel as base64 variables (`*_B64`). Secrets (join token, certificate key) only
ever travel that way, never on a command line, and the commands carrying them are secret outputs.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from config import versions
from config.settings import NodeSpec, Role, Settings

TEMPLATES = Path(__file__).parent / "templates"
CRI_SOCKET = "unix:///run/containerd/containerd.sock"
SUPER_ADMIN_CONF = "/etc/kubernetes/super-admin.conf"
ADMIN_CONF = "/etc/kubernetes/admin.conf"
# Each node's join credentials (join-credentials.sh) live this long at most: kubeadm deletes uploaded
# control-plane certificates after two hours, and a bootstrap token is no use for longer.
JOIN_CREDENTIALS_TTL = "2h"
NODE_PORT_ADDRESSES = "127.0.0.0/8"
# `kubeadm init` always makes a bootstrap token; no join uses it and init deletes it at once.
INIT_TOKEN_TTL = "15m0s"

# The API server's own files (apiserver-files.sh writes them on every control plane before kubeadm
# runs; kubeadm mounts only /etc/kubernetes/pki into the static pod, so each directory is an extra volume).
APISERVER_CONFIG_DIR = "/etc/kubernetes/dsaas"
ENCRYPTION_CONFIG_PATH = f"{APISERVER_CONFIG_DIR}/encryption-config.yaml"
AUDIT_POLICY_PATH = f"{APISERVER_CONFIG_DIR}/audit-policy.yaml"
AUDIT_LOG_DIR = "/var/log/kubernetes/audit"
AUDIT_LOG_PATH = f"{AUDIT_LOG_DIR}/audit.log"
# Rotation by the API server itself (lumberjack): 100 MiB a file, 10 old files, none older than 30 days,
# so the audit trail can never fill a control plane's disk (CIS 1.2.17-1.2.19 ask for at least these).
AUDIT_LOG_MAX_SIZE_MIB = 100
AUDIT_LOG_MAX_BACKUPS = 10
AUDIT_LOG_MAX_AGE_DAYS = 30
# The key's name is stored in front of every encrypted value (`k8s:enc:secretbox:v1:<name>:`): a
# rotation adds a key under a new name first, so old values still say which key reads them.
ENCRYPTION_KEY_NAME = "dsaas-1"
ENCRYPTION_KEY_BYTES = 32  # secretbox (XSalsa20-Poly1305) takes exactly a 32-byte key


def render_encryption_config(key_base64: str) -> str:
    """EncryptionConfiguration (apiserver.config.k8s.io/v1) for Secrets: secretbox with the stack's key.

    secretbox is what the Kubernetes docs rank strongest of the local providers (aescbc is weak against
    padding oracles, aesgcm needs rotation every 200k writes). `identity` last: Secrets written before
    encryption was on stay readable, and are encrypted when next written."""
    if len(base64.b64decode(key_base64, validate=True)) != ENCRYPTION_KEY_BYTES:
        raise ValueError(f"the encryption key must be {ENCRYPTION_KEY_BYTES} bytes (base64)")
    return yaml.safe_dump(
        {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "EncryptionConfiguration",
            "resources": [
                {
                    "resources": ["secrets"],
                    "providers": [
                        {"secretbox": {"keys": [{"name": ENCRYPTION_KEY_NAME, "secret": key_base64}]}},
                        {"identity": {}},
                    ],
                }
            ],
        },
        sort_keys=False,
    )


def render_audit_policy() -> str:
    """audit.k8s.io/v1 Policy: who read or changed what, never a Secret's content. First match wins."""
    rules: list[dict[str, Any]] = [
        # Probes and leases renew every few seconds on every node: records with no one behind them.
        {"level": "None", "nonResourceURLs": ["/healthz*", "/livez*", "/readyz*", "/version"]},
        {
            "level": "None",
            "verbs": ["get", "update"],
            "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}],
        },
        # Anything that carries a credential in its body is recorded without the body, whoever asks:
        # Secrets, tokens minted for service accounts, token reviews.
        {
            "level": "Metadata",
            "resources": [
                {"group": "", "resources": ["secrets", "serviceaccounts/token"]},
                {"group": "authentication.k8s.io", "resources": ["tokenreviews"]},
            ],
        },
        # A shell into a pod: the command is in the request (its query), the stream never is.
        {
            "level": "Request",
            "resources": [{"group": "", "resources": ["pods/exec", "pods/attach", "pods/portforward"]}],
        },
        # Who granted what to whom: the whole change, before and after.
        {
            "level": "RequestResponse",
            "verbs": ["create", "update", "patch", "delete", "deletecollection"],
            "resources": [
                {
                    "group": "rbac.authorization.k8s.io",
                    "resources": ["roles", "rolebindings", "clusterroles", "clusterrolebindings"],
                }
            ],
        },
        # Everything else: who did what to which object, without bodies.
        {"level": "Metadata"},
    ]
    return yaml.safe_dump(
        {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"], "rules": rules},
        sort_keys=False,
    )


def apiserver_extra_args() -> dict[str, str]:
    """The API server flags for encryption at rest and auditing (the paths are the node's)."""
    return {
        "encryption-provider-config": ENCRYPTION_CONFIG_PATH,
        "audit-policy-file": AUDIT_POLICY_PATH,
        "audit-log-path": AUDIT_LOG_PATH,
        "audit-log-maxsize": str(AUDIT_LOG_MAX_SIZE_MIB),
        "audit-log-maxbackup": str(AUDIT_LOG_MAX_BACKUPS),
        "audit-log-maxage": str(AUDIT_LOG_MAX_AGE_DAYS),
    }


def apiserver_files_parameters(encryption_key_base64: str) -> dict[str, str]:
    """apiserver-files.sh's parameters: the two files, as base64 (the key only ever on stdin)."""
    return {
        "ENCRYPTION_CONFIG_B64": b64(render_encryption_config(encryption_key_base64)),
        "AUDIT_POLICY_B64": b64(render_audit_policy()),
        "CONFIG_DIR": APISERVER_CONFIG_DIR,
        "AUDIT_LOG_DIR": AUDIT_LOG_DIR,
    }


@dataclass(frozen=True)
class JoinCredentials:
    """What join-credentials.sh made for one node (secret)."""

    token: str
    certificate_key: str
    """Empty for a worker."""


_BOOTSTRAP_TOKEN = re.compile(r"[a-z0-9]{6}\.[a-z0-9]{16}")
_CERTIFICATE_KEY = re.compile(r"[0-9a-f]{64}")


def parse_join_credentials(stdout: str, node: NodeSpec) -> JoinCredentials:
    """The JSON line join-credentials.sh prints, checked so a malformed one never reaches a join."""
    try:
        document = json.loads(stdout.strip().splitlines()[-1])
        token, key = str(document["token"]), str(document["certificateKey"])
    except (ValueError, IndexError, KeyError, TypeError) as error:
        raise ValueError(f"join-credentials of {node.name} printed no credentials") from error
    if not _BOOTSTRAP_TOKEN.fullmatch(token):
        raise ValueError(f"join-credentials of {node.name} printed no bootstrap token")
    if node.role is Role.CONTROL_PLANE and not _CERTIFICATE_KEY.fullmatch(key):
        raise ValueError(f"join-credentials of {node.name} printed no certificate key")
    return JoinCredentials(token=token, certificate_key=key)


def join_credentials_parameters(node: NodeSpec) -> dict[str, str]:
    return {"NODE_NAME": node.name, "NODE_ROLE": node.role.value, "TOKEN_TTL": JOIN_CREDENTIALS_TTL}


def _dump_all(documents: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False)


def _extra_args(values: Mapping[str, str]) -> list[dict[str, str]]:
    """kubeadm v1beta4 takes extra arguments as a list of {name, value}."""
    return [{"name": name, "value": value} for name, value in values.items()]


def _node_registration(node: NodeSpec) -> dict[str, Any]:
    registration: dict[str, Any] = {
        "name": node.name,
        "criSocket": CRI_SOCKET,
        "kubeletExtraArgs": _extra_args({"node-ip": str(node.address)}),
    }
    if node.role is Role.WORKER:
        registration["taints"] = []
    return registration


def render_init_config(settings: Settings, first: NodeSpec) -> str:
    """InitConfiguration + ClusterConfiguration + KubeletConfiguration for the first node.

    Holds no secret: kubeadm generates init's own token, and certificates are uploaded per control
    plane just before it joins, under a key kubeadm generates then (join-credentials.sh)."""
    cluster = settings.cluster
    init = {
        "apiVersion": versions.KUBEADM_CONFIG_API,
        "kind": "InitConfiguration",
        "bootstrapTokens": [
            {
                "description": "made by kubeadm init, deleted right after it (dsaas joins use their own)",
                "ttl": INIT_TOKEN_TTL,
                "usages": ["signing", "authentication"],
                "groups": ["system:bootstrappers:kubeadm:default-node-token"],
            }
        ],
        "localAPIEndpoint": {"advertiseAddress": str(first.address), "bindPort": cluster.api_server_port},
        "nodeRegistration": _node_registration(first),
    }
    cluster_config = {
        "apiVersion": versions.KUBEADM_CONFIG_API,
        "kind": "ClusterConfiguration",
        "clusterName": cluster.cluster_name,
        "kubernetesVersion": f"v{cluster.kubernetes_version}",
        "controlPlaneEndpoint": settings.api_endpoint,
        "networking": {
            "podSubnet": str(cluster.pod_cidr),
            "serviceSubnet": str(cluster.service_cidr),
            "dnsDomain": "cluster.local",
        },
        "apiServer": {
            "certSANs": [str(cluster.control_plane_endpoint), *(str(n.address) for n in settings.control_planes)],
            # Joining control planes render their API server from this stored ClusterConfiguration, so
            # every one runs with these flags; apiserver-files.sh put the files there before kubeadm ran.
            "extraArgs": _extra_args(apiserver_extra_args()),
            # v1beta4 HostPathMount: name, hostPath, mountPath, readOnly, pathType (kubernetes v1.35.4,
            # cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go). The config directory must exist: the
            # API server must never start without its encryption configuration.
            "extraVolumes": [
                {
                    "name": "dsaas-apiserver-config",
                    "hostPath": APISERVER_CONFIG_DIR,
                    "mountPath": APISERVER_CONFIG_DIR,
                    "readOnly": True,
                    "pathType": "Directory",
                },
                {
                    "name": "audit-log",
                    "hostPath": AUDIT_LOG_DIR,
                    "mountPath": AUDIT_LOG_DIR,
                    "readOnly": False,
                    "pathType": "DirectoryOrCreate",
                },
            ],
        },
    }
    kubelet = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
        "serverTLSBootstrap": False,
    }
    # Services reach users through kube-vip's LoadBalancer addresses only. kube-proxy applies a
    # Service's loadBalancerSourceRanges to that address but never to its NodePorts, which z2jh 4.4.0
    # cannot turn off (allocateLoadBalancerNodePorts): with TLS offloaded, the proxy's plain HTTP would
    # stay open on port 30000-32767 of every node. NodePorts answer on loopback only.
    kube_proxy = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "nodePortAddresses": [NODE_PORT_ADDRESSES],
    }
    return _dump_all([init, cluster_config, kubelet, kube_proxy])


def render_join_config(settings: Settings, node: NodeSpec, credentials: JoinCredentials, ca_cert_hash: str) -> str:
    """JoinConfiguration for a worker, or for a further control plane (with the certificate key)."""
    join: dict[str, Any] = {
        "apiVersion": versions.KUBEADM_CONFIG_API,
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": settings.api_endpoint,
                "token": credentials.token,
                "caCertHashes": [ca_cert_hash],
            }
        },
        "nodeRegistration": _node_registration(node),
    }
    if node.role is Role.CONTROL_PLANE:
        join["controlPlane"] = {
            "localAPIEndpoint": {
                "advertiseAddress": str(node.address),
                "bindPort": settings.cluster.api_server_port,
            },
            "certificateKey": credentials.certificate_key,
        }
    return _dump_all([join])


def render_kube_vip_manifest(settings: Settings, kubeconfig_path: str) -> str:
    """The kube-vip static pod: ARP mode with leader election, control plane only."""
    env = {
        "vip_arp": "true",
        "port": str(settings.cluster.api_server_port),
        "vip_interface": settings.network.interface,
        "vip_subnet": "32",
        "dns_mode": "first",
        "cp_enable": "true",
        "cp_namespace": "kube-system",
        # Services of type LoadBalancer (the hub's proxy) get their address announced too.
        "svc_enable": "true",
        "svc_election": "false",
        "vip_leaderelection": "true",
        "vip_leasename": "plndr-cp-lock",
        "vip_leaseduration": "5",
        "vip_renewdeadline": "3",
        "vip_retryperiod": "1",
        "address": str(settings.cluster.control_plane_endpoint),
        "prometheus_server": ":2112",
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kube-vip", "namespace": "kube-system", "labels": {"app.kubernetes.io/name": "kube-vip"}},
        "spec": {
            "hostNetwork": True,
            "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["kubernetes"]}],
            "containers": [
                {
                    "name": "kube-vip",
                    "image": versions.KUBE_VIP_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "args": ["manager"],
                    "env": [{"name": k, "value": v} for k, v in env.items()],
                    "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]}},
                    "volumeMounts": [{"name": "kubeconfig", "mountPath": ADMIN_CONF}],
                }
            ],
            "volumes": [{"name": "kubeconfig", "hostPath": {"path": kubeconfig_path, "type": "File"}}],
        },
    }
    return yaml.safe_dump(pod, sort_keys=False)


# --- scripts -----------------------------------------------------------------------------------

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_HEADER_END = "# --- end of dsaas parameters ---"


def script_path(name: str) -> Path:
    return TEMPLATES / f"{name}.sh"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def render_script(name: str, parameters: Mapping[str, str]) -> str:
    """The text sent to `sudo bash -s`: parameters as exports, then the script file unchanged."""
    body = script_path(name).read_text()
    lines = ["#!/usr/bin/env bash", f"# dsaas step: {name}"]
    for key in sorted(parameters):
        if not _ENV_NAME.match(key):
            raise ValueError(f"script parameter {key!r} is not an environment variable name")
        if "$" in parameters[key]:
            lines.append("# shellcheck disable=SC2016  # a literal $ (a Pulumi URN), never expanded")
        lines.append(f"export {key}={shlex.quote(parameters[key])}")
    lines.append(_HEADER_END)
    return "\n".join(lines) + "\n" + body


def parse_rendered_script(text: str) -> tuple[dict[str, str], str]:
    """Split a rendered script back into its parameters and body (for `--out` and tests)."""
    header, _, body = text.partition(_HEADER_END + "\n")
    parameters: dict[str, str] = {}
    for word in shlex.split(header, comments=True):
        if word != "export":
            key, _, value = word.partition("=")
            parameters[key] = value
    return parameters, body


def heredoc_command(script: str) -> str:
    """A command that feeds `script` to root's bash without putting it on a command line."""
    marker = "DSAAS_SCRIPT_EOF"
    if marker in script:
        raise ValueError("script contains the heredoc marker")
    return f"sudo bash -s <<'{marker}'\n{script}{marker}\n"


def prepare_node_parameters(settings: Settings) -> dict[str, str]:
    return {
        "KUBERNETES_VERSION": settings.cluster.kubernetes_version,
        "KUBERNETES_MINOR": settings.cluster.kubernetes_minor,
        "CONTAINERD_VERSION": versions.CONTAINERD_VERSION,
        "DOCKER_KEY_FINGERPRINT": versions.DOCKER_APT_KEY_FINGERPRINT,
        "KUBERNETES_KEY_FINGERPRINT": versions.KUBERNETES_APT_KEY_FINGERPRINT,
    }


# Ubuntu's own prefix (what its iscsi-iname generates), then the node name instead of random hex:
# unique within and across stacks (names carry the stack's prefix), and the same after a VM is
# replaced under its old name, so ONTAP igroups never hold a stale initiator.
ISCSI_INITIATOR_PREFIX = "iqn.2004-10.com.ubuntu:01:"


def iscsi_initiator_name(node: NodeSpec) -> str:
    return f"{ISCSI_INITIATOR_PREFIX}{node.name}"


def block_storage_parameters(node: NodeSpec) -> dict[str, str]:
    return {"INITIATOR_NAME": iscsi_initiator_name(node)}


def kube_vip_parameters(settings: Settings, kubeconfig_path: str) -> dict[str, str]:
    return {"KUBE_VIP_MANIFEST_B64": b64(render_kube_vip_manifest(settings, kubeconfig_path))}


GONE_AFTER_SECONDS = 300
"""A node not Ready for this long before its removal has lost its host or its kubelet: it is removed without a
drain (nothing there can stop a pod). Longer than a kubelet restart or a VM reboot takes."""


def drain_node_parameters(node: NodeSpec) -> dict[str, str]:
    return {"NODE_NAME": node.name, "GONE_AFTER_SECONDS": str(GONE_AFTER_SECONDS)}


def node_label_parameters(node: NodeSpec) -> dict[str, str]:
    return {"NODE_NAME": node.name, "NODE_ROLE": node.role.value}


def render_calico_values(settings: Settings) -> dict[str, Any]:
    """tigera-operator chart values: one VXLAN IP pool over the pod CIDR, no BGP needed."""
    return {
        "installation": {
            "cni": {"type": "Calico"},
            "calicoNetwork": {
                "bgp": "Disabled",
                # The node's own address, never firstFound: kube-vip adds the control-plane VIP and
                # the hub's service address to the interface of whichever node leads, and a node
                # that took one of those as its VXLAN endpoint loses its pods' traffic when it moves.
                "nodeAddressAutodetectionV4": {"kubernetes": "NodeInternalIP"},
                "ipPools": [
                    {
                        "name": "default-ipv4-ippool",
                        "cidr": str(settings.cluster.pod_cidr),
                        "blockSize": 26,
                        "encapsulation": "VXLAN",
                        "natOutgoing": "Enabled",
                        "nodeSelector": "all()",
                    }
                ],
            },
        },
        # WireGuard between nodes (FelixConfiguration `default`, spec.wireguardEnabled; the chart renders it
        # from these values, docs.tigera.io/calico/latest/reference/installation/helm_customization).
        # Calico encrypts pod traffic that crosses nodes (IPv4), e.g. the proxy handing a login POST,
        # password included, to the hub in plain HTTP; host-network traffic between self-managed nodes
        # stays as it is (Calico encrypts that only on EKS and AKS).
        "defaultFelixConfiguration": {"enabled": True, "wireguardEnabled": True}
        if settings.cluster.wireguard
        else {"enabled": False},
        "apiServer": {"enabled": False},
        # On by default since Calico 3.30: a flow aggregator and a web UI (Whisker) showing every pod's
        # connections, unauthenticated behind a port-forward. Nothing here reads them; a hospital network
        # should not gain a view of who talks to what without deciding to.
        "goldmane": {"enabled": False},
        "whisker": {"enabled": False},
    }


# A node's upgrade (docs/operations.md, Versions). Draining waits this long for evictions (a
# PodDisruptionBudget can hold one forever; the error names the pods still there); a node restarted on
# the new kubelet must be Ready within READY_TIMEOUT before the next one is drained.
UPGRADE_DRAIN_TIMEOUT = "10m"
UPGRADE_READY_TIMEOUT = "5m"


CERTIFICATE_RENEW_DAYS = 60
"""The weekly renewal renews kubeadm's certificates once one expires within this many days: eight weekly chances
before the one-year certificates end, and the preview's own notice (config.model.EXPIRY_NOTICE_DAYS) never
fires for them on a healthy node."""
CERTIFICATE_RESTART_WAIT_SECONDS = 180
"""How long the renewal waits for the kubelet to stop, and then to start, each control-plane component."""
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def cert_renewal_parameters(settings: Settings, node: NodeSpec) -> dict[str, str]:
    """cert-renewal.sh's parameters: the renewal program (renew-certs.sh with its own parameters) and this
    control plane's weekly time, one weekday per control plane, so never two restart their components at once."""
    position = [n.name for n in settings.control_planes].index(node.name)
    program = render_script(
        "renew-certs",
        {"RENEW_DAYS": str(CERTIFICATE_RENEW_DAYS), "WAIT_SECONDS": str(CERTIFICATE_RESTART_WAIT_SECONDS)},
    )
    return {"RENEW_PROGRAM_B64": b64(program), "RENEW_ON_CALENDAR": f"{_WEEKDAYS[position % 7]} *-*-* 03:30:00"}


def client_certificate_expires(kubeconfig: str) -> str:
    """When the client certificate embedded in a kubeconfig (admin.conf) ends, ISO 8601 in UTC."""
    from cryptography import x509

    document = yaml.safe_load(kubeconfig)
    data = document["users"][0]["user"]["client-certificate-data"]
    certificate = x509.load_pem_x509_certificate(base64.b64decode(data))
    return certificate.not_valid_after_utc.isoformat()


def admin_credential_generation(
    previous_expires: str | None, previous_generation: int | None, now: datetime.datetime
) -> int:
    """The generation of the admin kubeconfig the program reads (the admin-kubeconfig step runs again when it
    changes). kubeadm's admin.conf certificate lasts one year and renewing it on the node does not renew the
    copy in the state: once that copy ends within CERTIFICATE_RENEW_DAYS, the next generation reads it again
    (read-kubeconfig.sh renews admin.conf first if the node's timer has not)."""
    generation = previous_generation or 0
    if previous_expires is None:
        return generation
    ends = datetime.datetime.fromisoformat(previous_expires)
    return generation + 1 if ends - now < datetime.timedelta(days=CERTIFICATE_RENEW_DAYS) else generation


def upgrade_node_parameters(settings: Settings, node: NodeSpec, command: str) -> dict[str, str]:
    """upgrade-node.sh's parameters: `command` is `apply` (the first control plane) or `node`."""
    if command not in ("apply", "node"):
        raise ValueError(f"kubeadm upgrade {command!r}: expected apply or node")
    return {
        "NODE_NAME": node.name,
        "KUBERNETES_VERSION": settings.cluster.kubernetes_version,
        "KUBERNETES_MINOR": settings.cluster.kubernetes_minor,
        "KUBERNETES_KEY_FINGERPRINT": versions.KUBERNETES_APT_KEY_FINGERPRINT,
        "UPGRADE_COMMAND": command,
    }


def upgrade_drain_parameters(settings: Settings, node: NodeSpec, phase: str) -> dict[str, str]:
    """upgrade-drain.sh's parameters: `phase` is `drain` (before the node's upgrade) or `release` (after)."""
    if phase not in ("drain", "release"):
        raise ValueError(f"upgrade phase {phase!r}: expected drain or release")
    return {
        "NODE_NAME": node.name,
        "KUBERNETES_VERSION": settings.cluster.kubernetes_version,
        "PHASE": phase,
        "DRAIN_TIMEOUT": UPGRADE_DRAIN_TIMEOUT,
        "READY_TIMEOUT": UPGRADE_READY_TIMEOUT,
    }
