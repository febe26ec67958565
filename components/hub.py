"""`JupyterHub`: the Zero to JupyterHub chart with LDAP login, profiles and one volume per user.

The chart's values come from `components.hub_render.render_hub_values`; this component only adds
the namespace, the generated hub secrets, the TLS Secret and the release, which waits for the homes
StorageClass (and the hub database class) so the first login finds storage ready.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import hub_render as render
from components.trident_render import render_namespace
from config import versions
from config.hub import HubTlsMode
from config.settings import Settings


@dataclass(frozen=True)
class JupyterHubArgs:
    settings: Settings
    provider: k8s.Provider
    storage_ready: Sequence[pulumi.Resource]
    """The StorageClasses the hub's volumes come from."""
    ldap_search_password: pulumi.Output[str] | None
    tls_certificate: pulumi.Output[str] | None
    tls_key: pulumi.Output[str] | None
    database_url: pulumi.Output[str] | None
    before_release: Callable[[k8s.core.v1.Namespace], Sequence[pulumi.Resource]] | None = None
    """Made once the hub namespace exists; the release waits for them (a restore's claims, which must
    exist before KubeSpawner would create empty ones)."""
    restore_plan_written: str | None = None
    """The restore plan's source time when a restore is declared: it rotates the cookie secret."""


class JupyterHub(pulumi.ComponentResource):
    """The hub release and what it needs; exposes the URL users open."""

    release: k8s.helm.v3.Release
    """The jupyterhub chart."""
    url: str
    """https://<hostname>/"""
    namespace: k8s.core.v1.Namespace
    """The hub namespace (backups bind a Role in it)."""

    def __init__(self, name: str, args: JupyterHubArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dsaas:hub:JupyterHub", name, None, opts)
        settings = args.settings
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)

        self.namespace = namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=render_namespace(render.HUB_NAMESPACE, level=render.HUB_POD_SECURITY_LEVEL)["metadata"],
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=list(args.storage_ready))),
        )
        # RandomBytes, not RandomId: a RandomId's ID is its value (base64url), and Pulumi keeps every
        # ID in clear in the state; RandomBytes's ID is "none" and its values are secret outputs.
        # A restore (declared by a plan or by dsaas:restore.generation) replaces it: see cookie_secret_keepers.
        keepers = render.cookie_secret_keepers(settings, args.restore_plan_written)
        cookie_secret = random.RandomBytes(
            f"{name}-cookie-secret", length=32, keepers=keepers or None, opts=pulumi.ResourceOptions(parent=self)
        )
        proxy_token = random.RandomBytes(f"{name}-proxy-token", length=32, opts=pulumi.ResourceOptions(parent=self))

        release_dependencies: list[pulumi.Resource] = [namespace, *args.storage_ready]
        if args.before_release is not None:
            release_dependencies.extend(args.before_release(namespace))
        if settings.hub.tls is HubTlsMode.SECRET:
            if args.tls_certificate is None or args.tls_key is None:
                raise ValueError("dsaas:hub.tls is 'secret' but the certificate or key secret was not passed")
            tls_data: dict[str, pulumi.Input[str]] = {
                "tls.crt": pulumi.Output.secret(args.tls_certificate),
                "tls.key": pulumi.Output.secret(args.tls_key),
            }
            release_dependencies.append(
                k8s.core.v1.Secret(
                    f"{name}-tls",
                    metadata={"name": render.TLS_SECRET, "namespace": render.HUB_NAMESPACE},
                    type="kubernetes.io/tls",
                    string_data=tls_data,
                    opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[namespace])),
                )
            )

        for binding in render.render_user_scheduler_bindings():
            release_dependencies.append(
                k8s.rbac.v1.ClusterRoleBinding(
                    f"{name}-{binding['metadata']['name']}",
                    metadata=binding["metadata"],
                    role_ref=binding["roleRef"],
                    subjects=binding["subjects"],
                    opts=k8s_opts,
                )
            )

        values = render.render_hub_values(
            settings,
            render.HubSecrets(
                cookie_secret=pulumi.Output.secret(cookie_secret.hex),
                proxy_secret_token=pulumi.Output.secret(proxy_token.hex),
                ldap_search_password=_secret_or_none(args.ldap_search_password),
                database_url=_secret_or_none(args.database_url),
            ),
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=render.HUB_RELEASE,
            chart="jupyterhub",
            version=versions.Z2JH_CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=versions.Z2JH_CHART_REPOSITORY),
            namespace=render.HUB_NAMESPACE,
            atomic=True,
            # The pre-pull hook pulls every profile image onto every node before the hub rolls; Helm's timeout
            # bounds it, so it grows with the workers and the images (docs/bringup.md).
            timeout=render.release_timeout(settings),
            values=values,
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=release_dependencies)),
        )
        self.url = settings.hub.url
        self.register_outputs({"url": self.url, "release": self.release.name})


def _secret_or_none(value: pulumi.Output[str] | None) -> pulumi.Output[str] | None:
    return None if value is None else pulumi.Output.secret(value)
