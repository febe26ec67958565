"""`RestoredHomes`: the claims (and, on ontap-nas-economy, the static volumes) that give every user in the
restore plan their old home back, created after the homes class and backend and before the hub release.

One Pulumi resource per object, each waiting until its claim is Bound (`pulumi.com/waitFor`), so a home
that fails to import shows up by name in `pulumi up` instead of as an empty home at the user's next login.
Every object is `retain_on_delete`: removing the plan, or the stack, never deletes a claim, and so never
lets a reclaim policy near a user's data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import restore_render as render
from config.settings import Settings
from config.storage import NasDriver


@dataclass(frozen=True)
class RestoredHomesArgs:
    settings: Settings
    plan: render.RestorePlan
    """Checked by `restore_render.load_plan` before any resource was registered."""
    provider: k8s.Provider
    backend_uuid: pulumi.Input[str]
    """The rebuilt homes backend's `status.backendInfo.backendUUID` (`TridentStorage.homes_backend_uuid`)."""
    ready: Sequence[pulumi.Resource]
    """The hub namespace, the homes StorageClass and the homes backend."""


class RestoredHomes(pulumi.ComponentResource):
    """Import claims (ontap-nas) or static NFS volumes and their claims (ontap-nas-economy), one per user."""

    claims: dict[str, k8s.core.v1.PersistentVolumeClaim]
    """Claim by claim name."""
    volumes: dict[str, k8s.core.v1.PersistentVolume]
    """Static volume by claim name (ontap-nas-economy only)."""

    def __init__(self, name: str, args: RestoredHomesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dsaas:storage:RestoredHomes", name, None, opts)
        base = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=list(args.ready), retain_on_delete=True
        )
        self.claims = {}
        self.volumes = {}
        for home in args.plan.homes:
            claim_opts = base
            if home.driver is NasDriver.ONTAP_NAS:
                document = render.render_import_claim(home, args.backend_uuid)
            else:
                volume = render.render_static_volume(home, args.settings)
                self.volumes[home.claim] = k8s.core.v1.PersistentVolume(
                    f"{name}-volume-{home.claim}", metadata=volume["metadata"], spec=volume["spec"], opts=base
                )
                document = render.render_static_claim(home)
                claim_opts = pulumi.ResourceOptions.merge(
                    base, pulumi.ResourceOptions(depends_on=[self.volumes[home.claim]])
                )
            self.claims[home.claim] = _claim(f"{name}-claim-{home.claim}", document, claim_opts)
        self.register_outputs({"claims": sorted(self.claims), "volumes": sorted(self.volumes)})


def _claim(
    resource_name: str, document: dict[str, Any], opts: pulumi.ResourceOptions
) -> k8s.core.v1.PersistentVolumeClaim:
    return k8s.core.v1.PersistentVolumeClaim(
        resource_name, metadata=document["metadata"], spec=document["spec"], opts=opts
    )
