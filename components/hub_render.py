"""Pure renderer of the Zero to JupyterHub chart values from the settings.

Secret leaves (cookie secret, proxy token, LDAP search password, database URL) are passed in by the
caller and placed as they are: strings in tests, `pulumi.Output`s in the component, so a preview
shows every other value in clear and only those as secrets.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from components.trident_render import HOMES_CLASS, HUB_DATABASE_CLASS
from config.hub import HubDatabaseKind, HubTlsMode, ProfileSettings
from config.ldap import DirectoryKind, LdapTlsStrategy
from config.settings import Settings, project_file

HUB_NAMESPACE = "jupyterhub"
HUB_RELEASE = "jupyterhub"
TLS_SECRET = "hub-tls"
# The chart's user-scheduler service account (templates/scheduling/user-scheduler/serviceaccount.yaml,
# named by jupyterhub.user-scheduler-serviceaccount.fullname: "user-scheduler" for release "jupyterhub").
USER_SCHEDULER_SERVICE_ACCOUNT = "user-scheduler"
# Roles every Kubernetes release bootstraps for its own kube-scheduler
# (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go): what that release's scheduler needs.
KUBE_SCHEDULER_CLUSTER_ROLES = ("system:kube-scheduler", "system:volume-scheduler")
# Mounted by hub.extraFiles; paths inside the hub container.
HUB_ETC = PurePosixPath("/usr/local/etc/jupyterhub")
LDAP_CA_PATH = HUB_ETC / "ldap" / "ca.pem"
SYSTEM_CA_BUNDLE = PurePosixPath("/etc/ssl/certs/ca-certificates.crt")
BRANDING_DIR = HUB_ETC / "branding"
TEMPLATES_DIR = HUB_ETC / "templates"
# Pinned so a chart upgrade never renames a home: KubeSpawner remembers names in the hub database,
# but recomputes them from these after a database loss (z2jh issue 3536).
PVC_NAME_TEMPLATE = "claim-{username}"
VOLUME_NAME_TEMPLATE = "volume-{username}"
SLUG_SCHEME = "safe"
# How a home is mounted: by one server pod at a time (restored homes use the same).
HOME_ACCESS_MODES: tuple[str, ...] = ("ReadWriteOnce",)
HUB_TEMPLATES = Path(__file__).parent / "templates" / "hub"
# The hub's authenticator, shipped as source: it runs in the hub image, which has no dsaas code.
LDAP_AUTHENTICATOR_SOURCE = HUB_TEMPLATES / "ldap_authenticator.py"
LDAP_AUTHENTICATOR_CLASS = "DsaasLDAPAuthenticator"
LDAP_AUTHENTICATOR_EXTRA_CONFIG = "05-dsaas-ldap-authenticator"
# What the platform's own pods ask the scheduler for, so a node full of notebooks never starves the hub, the
# proxy or the user scheduler (checkov CKV_K8S_10/12 on the rendered chart). Requests only: a CPU limit
# throttles the hub in a login burst, and a memory limit would kill it mid-login (z2jh sets none either).
PLATFORM_REQUESTS: dict[str, dict[str, str]] = {
    "hub": {"cpu": "200m", "memory": "512Mi"},
    "proxy": {"cpu": "100m", "memory": "256Mi"},
    "user-scheduler": {"cpu": "50m", "memory": "256Mi"},
}
# ldap3's TLS object does not verify certificates unless told to (ssl.CERT_REQUIRED == 2).
SSL_CERT_REQUIRED = 2


@dataclass(frozen=True)
class HubSecrets:
    """Secret values, of whatever type the caller needs (str for tests, Output for Pulumi)."""

    cookie_secret: Any
    proxy_secret_token: Any
    ldap_search_password: Any = None
    database_url: Any = None


# What Pod Security `restricted` asks of a container beyond what z2jh sets (uid 1000, fsGroup 100,
# allowPrivilegeEscalation false): no capabilities, a non-root user, the runtime's seccomp profile. z2jh
# 4.4.0 maps no `singleuser` key to KubeSpawner's container_security_context, so each profile sets it;
# KubeSpawner merges it over runAsUser (kubespawner/objects.py make_pod). Docker Stacks images run as
# jovyan without sudo, so nothing in them needs a capability. With it the hub namespace enforces
# `restricted`: every pod there meets it (docs/admission.md).
USER_CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
HUB_POD_SECURITY_LEVEL = "restricted"


def cookie_secret_keepers(settings: Settings, restore_plan_written: str | None) -> dict[str, str]:
    """The cookie secret's `RandomBytes` keepers: a new secret whenever a restore is declared, by a restore
    plan (its source's `written` time) or by raising `dsaas:restore.generation`. Whoever could read the
    bucket may hold a cookie secret and users' `cookie_id`s from an old backup; once the secret changes,
    no cookie signed with the old one verifies. Empty when neither is set, so a stack that never restored
    keeps the secret it has (and its users their sessions)."""
    keepers: dict[str, str] = {}
    if settings.restore.generation:
        keepers["restoreGeneration"] = str(settings.restore.generation)
    if restore_plan_written is not None:
        keepers["restorePlanWritten"] = restore_plan_written
    return keepers


def render_authenticator_config() -> str:
    """`hub.extraConfig` that defines the dsaas authenticator and makes it the hub's."""
    source = LDAP_AUTHENTICATOR_SOURCE.read_text()
    return f"{source}\n\nc.JupyterHub.authenticator_class = {LDAP_AUTHENTICATOR_CLASS}  # noqa: F821\n"


def _extra_file(mount_path: PurePosixPath, source: Path) -> dict[str, Any]:
    data = source.read_bytes()
    try:
        return {"mountPath": str(mount_path), "stringData": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"mountPath": str(mount_path), "binaryData": base64.b64encode(data).decode()}


def hub_extra_files(settings: Settings) -> dict[str, dict[str, Any]]:
    """CA bundle and branding from the project, mounted into the hub pod."""
    files: dict[str, dict[str, Any]] = {}
    ldap = settings.hub.ldap
    if ldap.ca_file:
        files["ldap-ca"] = _extra_file(LDAP_CA_PATH, project_file(ldap.ca_file))
    branding = settings.hub.branding
    if branding.logo_file:
        suffix = Path(branding.logo_file).suffix
        files["branding-logo"] = _extra_file(BRANDING_DIR / f"logo{suffix}", project_file(branding.logo_file))
    if branding.login_template_file:
        files["branding-login"] = _extra_file(TEMPLATES_DIR / "login.html", project_file(branding.login_template_file))
    return files


def render_ldap_config(settings: Settings, search_password: Any = None) -> dict[str, Any]:
    """`hub.config.LDAPAuthenticator`: traits of ldapauthenticator 2.0.2 (the dsaas class inherits them)."""
    ldap = settings.hub.ldap
    config: dict[str, Any] = {
        "server_address": ldap.server_address,
        "server_port": ldap.port,
        "tls_strategy": ldap.tls_strategy.value,
        # Admin groups are listed too: their members may log in.
        "allowed_groups": list(dict.fromkeys([*ldap.allowed_groups, *ldap.admin_groups])),
        "user_attribute": ldap.user_attribute,
    }
    if ldap.tls_strategy is not LdapTlsStrategy.INSECURE:
        ca = LDAP_CA_PATH if ldap.ca_file else SYSTEM_CA_BUNDLE
        config["tls_kwargs"] = {"ca_certs_file": str(ca), "validate": SSL_CERT_REQUIRED}
    if ldap.bind_dn_templates:
        config["bind_dn_template"] = list(ldap.bind_dn_templates)
    if ldap.search_user:
        # The search account finds users (lookupDn) and re-checks sessions (either way).
        config.update(lookup_dn_search_user=ldap.search_user, lookup_dn_search_password=search_password)
    if ldap.lookup_dn:
        config.update(
            lookup_dn=True,
            lookup_dn_user_dn_attribute=ldap.user_attribute,
            user_search_base=ldap.user_search_base,
            # The hub user is the login name the user typed (lower-cased), never an attribute the
            # directory returns: a rename in the directory must not move anyone to another home.
            use_lookup_dn_username=False,
        )
    return config


def render_dsaas_ldap_config(settings: Settings) -> dict[str, Any]:
    """`hub.config.DsaasLDAPAuthenticator`: what ldapauthenticator has no setting for."""
    ldap = settings.hub.ldap
    return {
        "membership": ldap.membership.value,
        "admin_groups": list(ldap.admin_groups),
        "login_domains": list(ldap.domains),
        "active_directory": ldap.directory is DirectoryKind.ACTIVE_DIRECTORY,
        "password_change_url": ldap.password_change_url or "",
    }


def _gib(value: float) -> str:
    return f"{value:g}G"


def render_profile(profile: ProfileSettings) -> dict[str, Any]:
    """One KubeSpawner profile_list entry."""
    entry: dict[str, Any] = {
        "display_name": profile.display_name,
        "slug": profile.slug,
        "description": profile.description,
        "kubespawner_override": {
            "container_security_context": USER_CONTAINER_SECURITY_CONTEXT,
            "image": profile.image,
            "cpu_guarantee": profile.cpu_guarantee,
            "cpu_limit": profile.cpu_limit,
            "mem_guarantee": _gib(profile.memory_guarantee_gib),
            "mem_limit": _gib(profile.memory_limit_gib),
        },
    }
    if profile.default:
        entry["default"] = True
    return entry


def render_hub_config(settings: Settings, secrets: HubSecrets) -> dict[str, dict[str, Any]]:
    """`hub.config`: class name → traits, loaded by the chart into JupyterHub's config."""
    hub = settings.hub
    jupyterhub: dict[str, Any] = {
        # The dsaas subclass replaces it in hub.extraConfig (it is defined there).
        "authenticator_class": "ldapauthenticator.LDAPAuthenticator",
        # The login cookie's lifetime, checked by the hub on every request (not only by the browser).
        "cookie_max_age_days": hub.session_hours / 24,
    }
    if hub.branding.logo_file:
        jupyterhub["logo_file"] = str(BRANDING_DIR / f"logo{Path(hub.branding.logo_file).suffix}")
    if hub.branding.login_template_file:
        jupyterhub["template_paths"] = [str(TEMPLATES_DIR)]
    return {
        "JupyterHub": jupyterhub,
        "Authenticator": {
            # Admins come from LDAP groups only; a static list would outlive a revoked membership.
            "admin_users": [],
            # Groups and admin are re-read while a session lives, and always before a server starts.
            "auth_refresh_age": hub.ldap.refresh_minutes * 60,
            "refresh_pre_spawn": True,
        },
        "LDAPAuthenticator": render_ldap_config(settings, secrets.ldap_search_password),
        LDAP_AUTHENTICATOR_CLASS: render_dsaas_ldap_config(settings),
        "KubeSpawner": {"slug_scheme": SLUG_SCHEME},
    }


def render_hub_values(settings: Settings, secrets: HubSecrets) -> dict[str, Any]:
    """The complete z2jh 4.4.0 values for this stack."""
    hub = settings.hub
    default_profile = hub.all_profiles[0]
    image_name, _, image_tag = default_profile.image.rpartition(":")
    hub_db: dict[str, Any]
    if hub.database.kind is HubDatabaseKind.BLOCK:
        hub_db = {
            "type": "sqlite-pvc",
            "pvc": {
                "storageClassName": HUB_DATABASE_CLASS,
                "storage": f"{hub.database.capacity_gib}Gi",
                "accessModes": ["ReadWriteOnce"],
            },
        }
    else:
        hub_db = {"type": "postgres", "url": secrets.database_url}
    service: dict[str, Any] = {
        "type": "LoadBalancer",
        # kube-vip announces this address (its service load balancer is enabled).
        "annotations": {"kube-vip.io/loadbalancerIPs": str(hub.address)},
    }
    https: dict[str, Any]
    if hub.tls is HubTlsMode.SECRET:
        https = {"enabled": True, "type": "secret", "hosts": [hub.hostname], "secret": {"name": TLS_SECRET}}
    else:
        https = {"enabled": False}
        # Plain HTTP: only the TLS-terminating front proxy may connect. kube-vip (v1.0.4) ignores this
        # field; kube-proxy enforces it (iptables mode: a KUBE-FW chain in nat PREROUTING matches the
        # client's own address before any masquerade, then KUBE-PROXY-FIREWALL drops the rest), so
        # externalTrafficPolicy stays Cluster. Local would drop everything: kube-vip announces the
        # address from the control-plane leader, where no proxy pod runs. kube-proxy never applies the
        # ranges to the service's NodePorts, which z2jh 4.4.0 cannot turn off (see the README).
        service["loadBalancerSourceRanges"] = [str(cidr) for cidr in hub.front_proxy_cidrs or []]
    extra_config = {LDAP_AUTHENTICATOR_EXTRA_CONFIG: render_authenticator_config()}
    return {
        "hub": {
            "cookieSecret": secrets.cookie_secret,
            "config": render_hub_config(settings, secrets),
            "db": hub_db,
            "extraFiles": hub_extra_files(settings),
            "extraConfig": extra_config,
            "networkPolicy": {"enabled": True},
            "resources": {"requests": dict(PLATFORM_REQUESTS["hub"])},
        },
        "proxy": {
            "secretToken": secrets.proxy_secret_token,
            "chp": {
                "resources": {"requests": dict(PLATFORM_REQUESTS["proxy"])},
                # The proxy never calls the API server, yet runs as the namespace's default account with
                # its token mounted (checkov CKV_K8S_38): no token in the pod that faces the users.
                "extraPodSpec": {"automountServiceAccountToken": False},
            },
            "service": service,
            "https": https,
        },
        "singleuser": {
            "image": {"name": image_name, "tag": image_tag},
            "cpu": {"guarantee": default_profile.cpu_guarantee, "limit": default_profile.cpu_limit},
            "memory": {
                "guarantee": _gib(default_profile.memory_guarantee_gib),
                "limit": _gib(default_profile.memory_limit_gib),
            },
            "profileList": [render_profile(profile) for profile in hub.all_profiles],
            "storage": {
                "type": "dynamic",
                "capacity": f"{hub.home_capacity_gib}Gi",
                "homeMountPath": "/home/jovyan",
                "dynamic": {
                    "storageClass": HOMES_CLASS,
                    "pvcNameTemplate": PVC_NAME_TEMPLATE,
                    "volumeNameTemplate": VOLUME_NAME_TEMPLATE,
                    "storageAccessModes": list(HOME_ACCESS_MODES),
                },
            },
            # jovyan's group (users): with fsType nfs the kubelet gives the home to this group.
            "fsGid": 100,
            "networkPolicy": {"enabled": hub.network_policy},
            # z2jh's default (true) adds a privileged init container with NET_ADMIN to every user pod,
            # which Pod Security refuses at `baseline` and above; the singleuser NetworkPolicy's egress
            # rules already keep user servers off 169.254.169.254 (egressAllowRules.cloudMetadataServer
            # is false by default), and on-premises vSphere serves no metadata there.
            "cloudMetadata": {"blockWithIptables": False},
        },
        "scheduling": {
            "userScheduler": {
                "enabled": True,
                # The cluster's own kube-scheduler release, not the chart's v1.30.14 (outside the skew
                # Kubernetes supports for 1.34-1.36); it needs the release's scheduler permissions, which
                # render_user_scheduler_bindings grants.
                "image": {"name": "registry.k8s.io/kube-scheduler", "tag": f"v{settings.cluster.kubernetes_version}"},
                "resources": {"requests": dict(PLATFORM_REQUESTS["user-scheduler"])},
            },
            "podPriority": {"enabled": hub.user_placeholders > 0},
            "userPlaceholder": {
                "enabled": hub.user_placeholders > 0,
                "replicas": hub.user_placeholders,
                # Each placeholder holds the room of one default server. Left empty, the chart copies
                # singleuser.memory.guarantee ("1G": GiB to KubeSpawner, 10^9 bytes to Kubernetes).
                "resources": {
                    "requests": {
                        "cpu": default_profile.cpu_guarantee,
                        "memory": f"{default_profile.memory_guarantee_gib:g}Gi",
                    }
                },
            },
        },
        "prePuller": {
            "hook": {"enabled": hub.prepull_images},
            "continuous": {"enabled": hub.prepull_images},
        },
        "cull": {
            "enabled": hub.culling.enabled,
            "timeout": hub.culling.timeout_minutes * 60,
            "every": 300,
            # Stopping a server keeps its volume; users are never deleted by the culler.
            "users": False,
        },
        "debug": {"enabled": False},
    }


def render_user_scheduler_bindings() -> list[dict[str, Any]]:
    """Bind the user scheduler to the cluster's own kube-scheduler roles.

    z2jh 4.4.0's user-scheduler ClusterRole is a copy of `system:kube-scheduler` as of Kubernetes 1.30.
    A kube-scheduler of 1.34+ also lists and watches DRA objects (deviceclasses, resourceclaims,
    resourceslices) and volumeattachments, and waits for those caches before it schedules anything: with
    the chart's copy alone it never places a user server (seen against a real 1.35 API server,
    tests/controlplane/test_user_scheduler.py). The bootstrap roles follow the cluster's release, so an
    upgrade keeps the two in step; the chart's own role stays for its leader-election lease."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {
                "name": f"dsaas-user-scheduler-{role.removeprefix('system:')}",
                "labels": {"app.kubernetes.io/part-of": "dsaas"},
            },
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [
                {"kind": "ServiceAccount", "name": USER_SCHEDULER_SERVICE_ACCOUNT, "namespace": HUB_NAMESPACE}
            ],
        }
        for role in KUBE_SCHEDULER_CLUSTER_ROLES
    ]


# --- the release's timeout -----------------------------------------------------------------------
# Image sizes are estimates (docs/bringup.md's duration table gives their sources; tools.bench.bringup uses
# the same figures): the release must wait long enough for the pre-pull, and the model must see the same.


@dataclass(frozen=True)
class ImageSize:
    compressed_gb: float
    """What is downloaded."""
    unpacked_gb: float
    """What is written to the node's disk."""
    shares_base: bool
    """Built on jupyter/docker-stacks' minimal-notebook: those layers are downloaded once per node."""


DOCKER_STACKS_BASE: Final = ImageSize(0.6, 1.6, True)
"""quay.io/jupyter/minimal-notebook: the base the other docker-stacks images are built on."""
IMAGE_SIZES: Final[dict[str, ImageSize]] = {
    "quay.io/jupyter/minimal-notebook": DOCKER_STACKS_BASE,
    "quay.io/jupyter/scipy-notebook": ImageSize(1.5, 4.2, True),
    "quay.io/jupyter/r-notebook": ImageSize(1.2, 3.2, True),
    "quay.io/jupyter/datascience-notebook": ImageSize(2.3, 6.5, True),
    "quay.io/jupyter/pytorch-notebook": ImageSize(2.6, 7.0, True),
    "quay.io/jupyter/tensorflow-notebook": ImageSize(2.4, 6.5, True),
}
UNKNOWN_IMAGE: Final = ImageSize(1.5, 4.0, False)
"""Any other image: a mid-sized data science image (estimate)."""


def image_repository(image: str) -> str:
    """`quay.io/jupyter/r-notebook:2025-10-06` → `quay.io/jupyter/r-notebook` (digests too)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


def image_gb_per_node(images: list[str]) -> tuple[float, float]:
    """(compressed GB, unpacked GB) that one node pulls for these images; shared docker-stacks layers once."""
    sizes = [IMAGE_SIZES.get(repository, UNKNOWN_IMAGE) for repository in sorted({image_repository(i) for i in images})]
    if not sizes:
        return 0.0, 0.0
    shared = any(size.shares_base for size in sizes)
    base = DOCKER_STACKS_BASE if shared else ImageSize(0, 0, False)
    compressed = base.compressed_gb + sum(s.compressed_gb - (base.compressed_gb if s.shares_base else 0) for s in sizes)
    unpacked = base.unpacked_gb + sum(s.unpacked_gb - (base.unpacked_gb if s.shares_base else 0) for s in sizes)
    return compressed, unpacked


PREPULL_UPLINK_GBPS: Final = 2.5
"""The site link the pre-pull is sized for: the slow end of what docs/bringup.md models (a 1-2.5 Gbit/s internet
link; a 10 Gbit/s mirror link is faster). A slower site should let the template hold the images."""
PREPULL_NODE_GBPS: Final = 1.0
"""What one node's pull reaches (containerd, three layers at once)."""
UNPACK_MB_PER_SECOND: Final = 200.0
"""Layer decompression and write on one node."""
RELEASE_TIMEOUT_MARGIN: Final = 2.0
"""Downloads vary (the model draws them at 0.9-1.5x) and other pulls share the link (every node's kube-proxy,
Calico and Trident images): twice the computed wave."""
RELEASE_TIMEOUT_FLOOR_SECONDS: Final = 1800
"""Never less than the chart's own rollout needs with a few nodes (the value before it was computed)."""


def prepull_seconds(nodes: int, images: Sequence[str], uplink_gbps: float = PREPULL_UPLINK_GBPS) -> float:
    """How long z2jh's pre-pull hook takes to put `images` on `nodes` nodes through one shared link: every node
    downloads the same bytes (the link's share, or its own rate if the link is not the limit), then unpacks."""
    if uplink_gbps <= 0:
        raise ValueError("the pre-pull's uplink must be positive")
    compressed_gb, unpacked_gb = image_gb_per_node(list(images))
    if nodes <= 0 or compressed_gb == 0:
        return 0.0
    download = max(nodes * compressed_gb * 8 / uplink_gbps, compressed_gb * 8 / PREPULL_NODE_GBPS)
    return download + unpacked_gb * 1000 / UNPACK_MB_PER_SECOND


def release_timeout_seconds(nodes: int, images: Sequence[str], uplink_gbps: float = PREPULL_UPLINK_GBPS) -> int:
    """The hub release's Helm timeout: the pre-pull hook is one of the operations it bounds, and past it the
    atomic release fails and rolls back. Twice the pre-pull wave, at least RELEASE_TIMEOUT_FLOOR_SECONDS."""
    wave = prepull_seconds(nodes, images, uplink_gbps)
    return max(RELEASE_TIMEOUT_FLOOR_SECONDS, math.ceil(RELEASE_TIMEOUT_MARGIN * wave / 60) * 60)


def prepulled_images(settings: Settings) -> list[str]:
    """What the pre-pull hook puts on every user node: each profile's image, if the hub pre-pulls."""
    return [profile.image for profile in settings.hub.all_profiles] if settings.hub.prepull_images else []


def release_timeout(settings: Settings) -> int:
    """The timeout for this cluster: every worker pulls every profile image (even when the template holds
    them, a changed image is pulled by every existing node)."""
    return release_timeout_seconds(len(settings.workers), prepulled_images(settings))
