"""JupyterHub rules: LDAP over TLS, plain HTTP only from the front proxy, the hub database off NFS, and the
advisory z2jh features."""

from __future__ import annotations

import ipaddress

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from .common import config as setting
from .common import default_storage_class, hub_release, label, path, schema, storage_class

NAS_DRIVERS = ("ontap-nas", "ontap-nas-economy", "ontap-nas-flexgroup")


def ldap_over_tls(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    release = hub_release(args)
    strategy = path(release.props, "values", "hub", "config", "LDAPAuthenticator", "tls_strategy") if release else None
    if release and strategy == "insecure":
        report_violation(
            f"Helm release {label(release)}: LDAPAuthenticator.tls_strategy is 'insecure', so every login "
            "sends the user's password to the directory in clear text. Fix: set dsaas:hub.ldap.tlsStrategy "
            "to before_bind (StartTLS, port 389) or on_connect (LDAPS, port 636).",
            release.urn,
        )


def no_sqlite_on_nfs(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    release = hub_release(args)
    if not release or path(release.props, "values", "hub", "db", "type") != "sqlite-pvc":
        return
    class_name = path(release.props, "values", "hub", "db", "pvc", "storageClassName")
    cls = storage_class(args, str(class_name)) if class_name else default_storage_class(args)
    if cls is None:
        return
    fs_type = path(cls.props, "parameters", "fsType")
    backend = path(cls.props, "parameters", "backendType")
    if fs_type == "nfs" or backend in NAS_DRIVERS:
        report_violation(
            f"Helm release {label(release)} keeps the hub's SQLite database on storage class "
            f"{path(cls.props, 'metadata', 'name')} ({backend}, fsType {fs_type}), which is NFS: SQLite's "
            "locking is unreliable there and the database can be corrupted. Fix: set "
            "dsaas:hub.database.kind to block (ontap-san) or postgres.",
            release.urn,
        )


SOURCE_RANGES_SCHEMA = schema({"minPrefixLength": {"type": "integer", "minimum": 1, "maximum": 32, "default": 24}})


def offload_source_ranges(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """With TLS offloaded the proxy serves plain HTTP: only the front proxy's addresses may reach it."""
    release = hub_release(args)
    if not release:
        return
    https = path(release.props, "values", "proxy", "https")
    if https is None or (path(https, "enabled") is True and path(https, "type") != "offload"):
        return  # HTTPS at the proxy (or unknown during preview)
    if (path(release.props, "values", "proxy", "service", "type") or "LoadBalancer") != "LoadBalancer":
        return
    minimum = int(setting(args, SOURCE_RANGES_SCHEMA, "minPrefixLength"))
    ranges = path(release.props, "values", "proxy", "service", "loadBalancerSourceRanges")
    fix = (
        "Fix: set dsaas:hub.frontProxyCidrs to the addresses of the proxy that terminates TLS, "
        "or dsaas:hub.tls to secret."
    )
    if not ranges:
        report_violation(
            f"Helm release {label(release)}: TLS is offloaded, so the hub's proxy serves plain HTTP (passwords "
            "in clear) and proxy.service.loadBalancerSourceRanges is empty: its address admits every address "
            f"on the network, not only the front proxy. {fix}",
            release.urn,
        )
        return
    wide = []
    for cidr in ranges:
        try:
            network = ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            wide.append(f"{cidr!r} is not a network")
            continue
        if network.prefixlen < (minimum if network.version == 4 else 1):
            wide.append(f"{cidr} is wider than /{minimum}")
    if wide:
        report_violation(
            f"Helm release {label(release)}: TLS is offloaded, so the hub's proxy serves plain HTTP (passwords "
            f"in clear), and its loadBalancerSourceRanges go beyond a front proxy: {'; '.join(wide)}. {fix}",
            release.urn,
        )


CULLING_SCHEMA = schema({"maxIdleMinutes": {"type": "integer", "minimum": 5, "default": 480}})


def idle_culling(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    release = hub_release(args)
    if not release:
        return
    limit = int(setting(args, CULLING_SCHEMA, "maxIdleMinutes"))
    enabled = path(release.props, "values", "cull", "enabled")
    timeout = path(release.props, "values", "cull", "timeout")
    if enabled is not True:
        report_violation(
            f"Helm release {label(release)}: idle culling is off, so idle servers hold CPU and memory "
            "reservations forever. Fix: set dsaas:hub.culling.enabled to true.",
            release.urn,
        )
    elif isinstance(timeout, (int, float)) and timeout > limit * 60:
        report_violation(
            f"Helm release {label(release)}: idle servers are stopped only after {int(timeout) // 60} minutes "
            f"(more than {limit}). Fix: lower dsaas:hub.culling.timeoutMinutes.",
            release.urn,
        )


def singleuser_network_policy(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    release = hub_release(args)
    if release and path(release.props, "values", "singleuser", "networkPolicy", "enabled") is not True:
        report_violation(
            f"Helm release {label(release)}: the singleuser network policy is off, so user servers can "
            "reach the hub's internals and each other. Fix: set dsaas:hub.networkPolicy to true.",
            release.urn,
        )


def image_prepuller(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    release = hub_release(args)
    if not release:
        return
    off = [
        part
        for part in ("hook", "continuous")
        if path(release.props, "values", "prePuller", part, "enabled") is not True
    ]
    if off:
        report_violation(
            f"Helm release {label(release)}: the {' and '.join(off)} image pre-puller is off, so users wait "
            "minutes for multi-GB notebook images on first start. Fix: set dsaas:hub.prepullImages to true.",
            release.urn,
        )


POLICIES = [
    StackValidationPolicy(
        name="ldap-over-tls",
        description="The hub talks to LDAP over TLS (tls_strategy is not insecure).",
        validate=ldap_over_tls,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    StackValidationPolicy(
        name="no-sqlite-on-nfs",
        description="The hub's SQLite database does not live on an NFS storage class.",
        validate=no_sqlite_on_nfs,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    StackValidationPolicy(
        name="offload-source-ranges",
        description="With TLS offloaded, the hub's plain-HTTP proxy admits only the front proxy's addresses.",
        validate=offload_source_ranges,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=SOURCE_RANGES_SCHEMA,
    ),
    StackValidationPolicy(
        name="idle-culling",
        description="Idle user servers are culled.",
        validate=idle_culling,
        enforcement_level=EnforcementLevel.ADVISORY,
        config_schema=CULLING_SCHEMA,
    ),
    StackValidationPolicy(
        name="singleuser-network-policy",
        description="User servers run under the z2jh singleuser NetworkPolicy.",
        validate=singleuser_network_policy,
        enforcement_level=EnforcementLevel.ADVISORY,
    ),
    StackValidationPolicy(
        name="image-prepuller",
        description="Notebook images are pre-pulled onto every node.",
        validate=image_prepuller,
        enforcement_level=EnforcementLevel.ADVISORY,
    ),
]
