"""What the backup accounts may do, as the real API server's authorizer answers (issue 19, items 3, 4, 10).

prod's RBAC objects, exactly as the program and its charts make them (tools/controlplane/objects.py:
the graph's Roles and bindings, the velero chart's), are applied to a fresh control plane; each
question is a SubjectAccessReview, as `kubectl auth can-i --as=system:serviceaccount:<ns>:<name>` asks.
Both sides are asked: what each account must be able to do for its job, and what it must not.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from components import backup_render as render
from components.hub_render import HUB_NAMESPACE
from tests.controlplane.conftest import StartControlPlane
from tools.controlplane.admission import USER_POD
from tools.controlplane.client import KubeClient
from tools.controlplane.objects import program_objects
from tools.offline.mockgraph import run_program

pytestmark = pytest.mark.slow

RBAC_KINDS = frozenset({"Namespace", "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})
HUB = HUB_NAMESPACE
TRIDENT = "trident"

Ask = tuple[str, str, str, str, str]
"""(verb, resource, namespace, subresource, API group); name is USER_POD for pods/exec."""


@pytest.fixture(scope="module")
def client(start_control_plane: StartControlPlane) -> Iterator[KubeClient]:
    """A fresh control plane holding prod's namespaces, accounts, roles and bindings."""
    plane = start_control_plane()
    kube = plane.client()
    for item in program_objects(run_program("prod")):
        if item.kind in RBAC_KINDS and item.on_install:
            kube.apply(item.document)
    yield kube


def can(client: KubeClient, account: str, ask: Ask) -> bool:
    namespace, name = account.split("/")
    verb, resource, where, subresource, group = ask
    groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated")
    return client.can(
        f"system:serviceaccount:{namespace}:{name}",
        groups,
        verb,
        resource,
        where,
        group=group,
        subresource=subresource,
        name=USER_POD if subresource else "",
    )


EXEC_USER_POD: Ask = ("create", "pods", HUB, "exec", "")
NEVER: tuple[Ask, ...] = (
    EXEC_USER_POD,
    ("get", "secrets", "kube-system", "", ""),
    ("list", "secrets", "kube-system", "", ""),
    ("create", "clusterrolebindings", "", "", "rbac.authorization.k8s.io"),
    ("create", "clusterroles", "", "", "rbac.authorization.k8s.io"),
    ("create", "pods", "kube-system", "", ""),
    ("create", "serviceaccounts/token", "kube-system", "", ""),
    ("impersonate", "users", "", "", ""),
    ("update", "nodes", "", "", ""),
)


def test_no_backup_account_may_exec_into_a_user_server(client: KubeClient) -> None:
    """The hub database job used to exec into the hub pod, which RBAC cannot narrow to that pod; Velero
    ran as cluster-admin. Neither may exec into jupyter-alice now."""
    accounts = [
        f"{HUB}/{render.HUB_DATABASE_JOB}",
        f"{render.BACKUP_NAMESPACE}/{render.HUB_DATABASE_JOB}",
        f"{render.BACKUP_NAMESPACE}/{render.INVENTORY_JOB}",
        f"{render.BACKUP_NAMESPACE}/{render.VELERO_SERVICE_ACCOUNT}",
    ]
    assert [a for a in accounts if can(client, a, EXEC_USER_POD)] == []


def test_the_hub_database_job_may_do_nothing_at_all(client: KubeClient) -> None:
    account = f"{HUB}/{render.HUB_DATABASE_JOB}"
    asks: list[Ask] = [
        *NEVER,
        ("list", "pods", HUB, "", ""),
        ("get", "secrets", HUB, "", ""),
        ("get", "persistentvolumeclaims", HUB, "", ""),
    ]
    assert [ask for ask in asks if can(client, account, ask)] == []


def test_the_inventory_lists_only_what_it_lists(client: KubeClient) -> None:
    account = f"{render.BACKUP_NAMESPACE}/{render.INVENTORY_JOB}"
    needed: list[Ask] = [
        ("list", "persistentvolumeclaims", HUB, "", ""),
        ("list", "persistentvolumes", "", "", ""),
        ("list", "tridentvolumes", TRIDENT, "", "trident.netapp.io"),
        ("list", "tridentbackends", TRIDENT, "", "trident.netapp.io"),
        ("list", "tridentbackendconfigs", TRIDENT, "", "trident.netapp.io"),
    ]
    assert [ask for ask in needed if not can(client, account, ask)] == []
    refused: list[Ask] = [
        *NEVER,
        ("list", "persistentvolumeclaims", "kube-system", "", ""),
        ("list", "persistentvolumeclaims", "", "", ""),  # all namespaces
        ("get", "persistentvolumeclaims", HUB, "", ""),
        ("list", "tridentvolumes", HUB, "", "trident.netapp.io"),
        ("list", "tridentbackendconfigs", "", "", "trident.netapp.io"),
        ("list", "secrets", TRIDENT, "", ""),
        ("delete", "persistentvolumes", "", "", ""),
        ("list", "pods", HUB, "", ""),
    ]
    assert [ask for ask in refused if can(client, account, ask)] == []


def test_velero_keeps_what_a_backup_and_restore_of_the_hub_need_and_nothing_beyond(client: KubeClient) -> None:
    """Velero's server and node agent (one ServiceAccount in chart 12.1.0) without cluster-admin."""
    account = f"{render.BACKUP_NAMESPACE}/{render.VELERO_SERVICE_ACCOUNT}"
    needed: list[Ask] = [
        # back up the hub namespace, Secrets included, and its volumes
        ("list", "secrets", HUB, "", ""),
        ("list", "deployments", HUB, "", "apps"),
        ("list", "networkpolicies", HUB, "", "networking.k8s.io"),
        ("create", "volumesnapshots", HUB, "", "snapshot.storage.k8s.io"),
        ("get", "volumesnapshotcontents", "", "", "snapshot.storage.k8s.io"),
        ("list", "persistentvolumes", "", "", ""),
        ("list", "volumesnapshotclasses", "", "", "snapshot.storage.k8s.io"),
        ("get", "customresourcedefinitions", "", "", "apiextensions.k8s.io"),
        # restore it
        ("create", "namespaces", "", "", ""),
        ("create", "pods", HUB, "", ""),
        ("create", "secrets", HUB, "", ""),
        ("create", "persistentvolumeclaims", HUB, "", ""),
        ("create", "rolebindings", HUB, "", "rbac.authorization.k8s.io"),
        ("create", "cronjobs", HUB, "", "batch"),
        ("create", "persistentvolumes", "", "", ""),
        # its own objects and the data mover's pods and claims in the velero namespace (the chart's Role)
        ("create", "datauploads", render.BACKUP_NAMESPACE, "", "velero.io"),
        ("create", "pods", render.BACKUP_NAMESPACE, "", ""),
        # the node agent finds the pods and claims of its node
        ("list", "pods", "", "", ""),
        ("list", "persistentvolumeclaims", "", "", ""),
    ]
    assert [ask for ask in needed if not can(client, account, ask)] == []
    refused: list[Ask] = [
        *NEVER,
        ("create", "pods", HUB, "attach", ""),
        ("create", "pods", HUB, "portforward", ""),
        ("get", "secrets", TRIDENT, "", ""),
        ("list", "secrets", "", "", ""),  # all namespaces
        ("delete", "namespaces", "", "", ""),
        ("create", "roles", "kube-system", "", "rbac.authorization.k8s.io"),
        ("escalate", "roles", HUB, "", "rbac.authorization.k8s.io"),
        ("bind", "clusterroles", "", "", "rbac.authorization.k8s.io"),
        ("create", "customresourcedefinitions", "", "", "apiextensions.k8s.io"),
        ("create", "mutatingwebhookconfigurations", "", "", "admissionregistration.k8s.io"),
    ]
    assert [ask for ask in refused if can(client, account, ask)] == []
