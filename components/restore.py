"""`RestoredHomes`: the claims (and, on ontap-nas-economy, the static volumes) that give every user in the
restore plan their old home back, created after the homes class and backend and before the hub release.

One Pulumi resource per object, each waiting until its claim is Bound (`pulumi.com/waitFor`), so a home
that fails to import shows up by name in `pulumi up` instead of as an empty home at the user's next login.
Every object is `retain_on_delete`: removing the plan, or the stack, never deletes a claim, and so never
lets a reclaim policy near a user's data.

Economy homes are reachable only once ONTAP lets the new nodes in: a local step
(`components/ontap_exports.py`) puts every restored qtree and its FlexVol on the program's export policy,
whose rules are the stack's export CIDRs, and every static volume waits for it (docs/restore.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_command as command
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
    ontap_username: pulumi.Input[str]
    ontap_password: pulumi.Input[str]
    """Secrets (dsaas:ontapUsername/Password), handed to the export step in its environment only."""


class RestoredHomes(pulumi.ComponentResource):
    """Import claims (ontap-nas) or static NFS volumes and their claims (ontap-nas-economy), one per user."""

    claims: dict[str, k8s.core.v1.PersistentVolumeClaim]
    """Claim by claim name."""
    volumes: dict[str, k8s.core.v1.PersistentVolume]
    """Static volume by claim name (ontap-nas-economy only)."""
    export_access: command.local.Command | None
    """The step that lets the stack's nodes reach the restored qtrees (None without economy homes)."""

    def __init__(self, name: str, args: RestoredHomesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dsaas:storage:RestoredHomes", name, None, opts)
        base = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=list(args.ready), retain_on_delete=True
        )
        self.claims = {}
        self.volumes = {}
        self.export_access = _export_access(name, args, self)
        volume_opts = base
        if self.export_access is not None:
            volume_opts = pulumi.ResourceOptions.merge(base, pulumi.ResourceOptions(depends_on=[self.export_access]))
        for home in args.plan.homes:
            claim_opts = base
            if home.driver is NasDriver.ONTAP_NAS:
                document = render.render_import_claim(home, args.backend_uuid)
            else:
                volume = render.render_static_volume(home, args.settings)
                self.volumes[home.claim] = k8s.core.v1.PersistentVolume(
                    f"{name}-volume-{home.claim}", metadata=volume["metadata"], spec=volume["spec"], opts=volume_opts
                )
                document = render.render_static_claim(home)
                claim_opts = pulumi.ResourceOptions.merge(
                    base, pulumi.ResourceOptions(depends_on=[self.volumes[home.claim]])
                )
            self.claims[home.claim] = _claim(f"{name}-claim-{home.claim}", document, claim_opts)
        self.register_outputs(
            {
                "claims": sorted(self.claims),
                "volumes": sorted(self.volumes),
                "export_policy": None if self.export_access is None else render.export_policy_name(args.settings),
            }
        )


def _export_access(name: str, args: RestoredHomesArgs, parent: pulumi.Resource) -> command.local.Command | None:
    """The ONTAP step (components/ontap_exports.py) for the plan's economy homes, if it has any. It needs only
    ONTAP, so it runs at the start of `pulumi up`: wrong ONTAP data fails in seconds, not after the bring-up.
    Its request goes on stdin (10,000 qtrees exceed one environment variable), the credentials in its
    environment, never on a command line. A changed request (other CIDRs, another plan) runs it again; it
    has no delete step: removing the plan never takes access to a user's home away."""
    request = render.render_export_access(args.plan, args.settings)
    if request is None:
        return None
    ontap = args.settings.storage.ontap
    return command.local.Command(
        f"{name}-export-access",
        interpreter=["/bin/sh", "-c"],
        # Like components/vsphere_wait.py: the engine starts providers in the project (PULUMI_ROOT_DIRECTORY),
        # where .venv holds the program's netapp-ontap.
        create='cd "${PULUMI_ROOT_DIRECTORY:-$PWD}" && exec .venv/bin/python -m components.ontap_exports',
        stdin=json.dumps(request, sort_keys=True),
        environment={
            "DSAAS_ONTAP_HOST": str(ontap.management_lif),
            "DSAAS_ONTAP_USERNAME": pulumi.Output.secret(args.ontap_username),
            "DSAAS_ONTAP_PASSWORD": pulumi.Output.secret(args.ontap_password),
            "DSAAS_ONTAP_CA_FILE": ontap.ca_file or "",
        },
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _claim(
    resource_name: str, document: dict[str, Any], opts: pulumi.ResourceOptions
) -> k8s.core.v1.PersistentVolumeClaim:
    return k8s.core.v1.PersistentVolumeClaim(
        resource_name, metadata=document["metadata"], spec=document["spec"], opts=opts
    )
