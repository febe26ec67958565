"""Storage rules: user homes survive their claims, NFS exports stay inside the node network."""

from __future__ import annotations

import ipaddress

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from .common import BACKEND, hub_release, label, of_type, path, schema, storage_class
from .common import config as setting

RETAIN_SCHEMA = schema(
    {"homesClass": {"type": "string", "default": "dsaas-homes", "description": "Used when no hub release names it."}}
)


def user_data_retained(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    release = hub_release(args)
    name = path(release.props, "values", "singleuser", "storage", "dynamic", "storageClass") if release else None
    name = str(name or setting(args, RETAIN_SCHEMA, "homesClass"))
    cls = storage_class(args, name)
    if cls is None:
        return
    policy = path(cls.props, "reclaimPolicy")
    if policy != "Retain":
        report_violation(
            f"storage class {label(cls)} holds user homes but has reclaimPolicy {policy or 'Delete (default)'}: "
            "deleting a user's claim (KubeSpawner deletes it with the user) destroys their data on ONTAP. "
            "Fix: set dsaas:storage.homesReclaimPolicy to Retain.",
            cls.urn,
        )


EXPORT_SCHEMA = schema({"minPrefixLength": {"type": "integer", "minimum": 1, "maximum": 32, "default": 16}})


def exports_limited(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    minimum = int(setting(args, EXPORT_SCHEMA, "minPrefixLength"))
    for backend in of_type(args, BACKEND):
        for cidr in path(backend.props, "spec", "autoExportCIDRs") or []:
            try:
                network = ipaddress.ip_network(str(cidr), strict=False)
            except ValueError:
                report_violation(f"backend {label(backend)}: export CIDR {cidr!r} is not a network.", backend.urn)
                continue
            if network.prefixlen == 0 or (network.version == 4 and network.prefixlen < minimum):
                report_violation(
                    f"backend {label(backend)} exports its NFS volumes to {cidr}"
                    f"{' (everyone)' if network.prefixlen == 0 else f', wider than /{minimum}'}: any host there "
                    "can mount every user's home. Fix: set dsaas:storage.exportCidrs to the node subnet "
                    "(the default) or narrower.",
                    backend.urn,
                )


POLICIES = [
    StackValidationPolicy(
        name="user-data-retained",
        description="The storage class of user homes has reclaimPolicy Retain.",
        validate=user_data_retained,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=RETAIN_SCHEMA,
    ),
    StackValidationPolicy(
        name="exports-limited",
        description="Trident export CIDRs never include 0.0.0.0/0.",
        validate=exports_limited,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=EXPORT_SCHEMA,
    ),
]
