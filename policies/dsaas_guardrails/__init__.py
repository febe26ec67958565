"""dsaas guardrails: the policy pack's rules, one module per rule family."""

from __future__ import annotations

from pulumi_policy import Policy

from . import backup, cluster, hub, secrets, storage, versions

PACK_NAME = "dsaas-guardrails"
POLICIES: list[Policy] = [
    *cluster.POLICIES,
    *versions.POLICIES,
    *hub.POLICIES,
    *storage.POLICIES,
    *secrets.POLICIES,
    *backup.POLICIES,
]

__all__ = ["PACK_NAME", "POLICIES"]
