"""Apply every object of a stack to a real control plane and record what admission and the controllers say.

`admit(plane, stack)` starts simulated nodes shaped like the stack's VMs, applies every object of
`tools.controlplane.objects.program_objects` server-side in creation order (a custom resource only once its
CRD is Established; hooks that only run on uninstall as a dry run), plays the storage provisioner for claims
(Trident does not run here), starts one Job from each CronJob, waits for every workload, then records:
refusals, Warning headers, `FailedCreate` events (a Pod Security refusal of a controller-made pod shows only
there), each workload's readiness, each pod's strictest Pod Security level against its namespace's label,
and what the authorizer lets each service account do.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from config.settings import Settings, parse_settings
from tools.controlplane.client import ApiError, KubeClient
from tools.controlplane.cluster import ControlPlane
from tools.controlplane.nodes import stack_node_shapes
from tools.controlplane.objects import ProgramObject, counts, program_objects
from tools.lab.procs import wait_until
from tools.offline.mockgraph import project_defaults, read_stack_values, run_program

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")
"""Pod Security levels, most permissive first; a namespace's missing label means privileged (the default)."""
PROBE_NAMESPACES = {"restricted": "psa-probe-restricted", "baseline": "psa-probe-baseline"}
HUB_NAMESPACE = "jupyterhub"
USER_POD = "jupyter-alice"
"""A user server's pod name as KubeSpawner makes it (pod_name_template `jupyter-{user_server}`)."""
WORKLOAD_TIMEOUT = 180.0
WORKLOAD_KINDS = {"Deployment": "deployments", "DaemonSet": "daemonsets", "StatefulSet": "statefulsets"}


@dataclass(frozen=True)
class Question:
    label: str
    verb: str
    resource: str
    namespace: str = ""
    subresource: str = ""
    name: str = ""


QUESTIONS: tuple[Question, ...] = (
    Question("exec into a user pod (jupyterhub)", "create", "pods", HUB_NAMESPACE, "exec", USER_POD),
    Question("get secrets (jupyterhub)", "get", "secrets", HUB_NAMESPACE),
    Question("list secrets (jupyterhub)", "list", "secrets", HUB_NAMESPACE),
    Question("list persistentvolumes", "list", "persistentvolumes"),
    Question("create pods (jupyterhub)", "create", "pods", HUB_NAMESPACE),
    Question("create pods (kube-system)", "create", "pods", "kube-system"),
)
FINDINGS = frozenset({QUESTIONS[0].label, QUESTIONS[1].label, QUESTIONS[2].label})
"""Answers that are a finding when yes: exec into users' servers, reading the hub's secrets."""


@dataclass(frozen=True)
class Refusal:
    key: str
    resource: str
    status: int
    message: str


@dataclass(frozen=True)
class Warned:
    key: str
    resource: str
    text: str


@dataclass(frozen=True)
class Workload:
    key: str
    desired: int
    ready: int
    observed: bool = True
    """Whether its controller has seen its current spec (status.observedGeneration): before that, a
    DaemonSet's status says 0 of 0."""

    @property
    def complete(self) -> bool:
        return self.observed and self.ready >= self.desired


@dataclass(frozen=True)
class PodLevel:
    workload: str
    """The object that made the pod (`Deployment jupyterhub/hub`), so the table does not change from run to run."""
    namespace: str
    level: str
    """The strictest Pod Security level it meets."""
    namespace_label: str
    reasons: str = ""
    """Why it does not meet the next stricter level (the API server's message), empty for restricted."""

    @property
    def admitted(self) -> bool:
        return LEVELS.index(self.level) >= LEVELS.index(self.namespace_label)


@dataclass(frozen=True)
class Access:
    account: str
    """`namespace/name`."""
    answers: tuple[bool, ...]
    """One per QUESTIONS entry."""


@dataclass
class AdmissionReport:
    stack: str
    objects: list[ProgramObject]
    refusals: list[Refusal] = field(default_factory=list)
    warnings: list[Warned] = field(default_factory=list)
    failed_creates: list[str] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)
    pods: list[PodLevel] = field(default_factory=list)
    access: list[Access] = field(default_factory=list)
    node_errors: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


# --- applying ------------------------------------------------------------------------------------


def _crd_established(client: KubeClient, name: str) -> bool:
    crd = client.get_or_none(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}") or {}
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def _served(client: KubeClient, api_version: str, kind: str) -> bool:
    try:
        client.resource_type(api_version, kind)
        return True
    except KeyError:
        return False


def _seen_by_its_controller(client: KubeClient, path: str) -> bool:
    workload = client.get_or_none(path)
    if workload is None:
        return True
    return bool(workload.get("status", {}).get("observedGeneration", 0) >= workload["metadata"].get("generation", 1))


def apply_objects(client: KubeClient, objects: Iterable[ProgramObject], report: AdmissionReport) -> None:
    """Server-side apply each object in order; a custom resource waits for its CRD to be Established (and
    served by discovery), as pulumi-kubernetes and Helm wait.

    Helm creates a release's plain objects only after its pre-install hooks have run (z2jh's hook-image-awaiter
    Job waits on the hook's puller DaemonSet for at least its 10 s scheduling wait), so before the first plain
    object after hooks, each hook workload waits until its controller has acted on it: what the controller met
    then (a PriorityClass the manifest creates later) is what a real install meets, on a busy machine too."""
    crd_of: dict[tuple[str, str], str] = {}
    hook_workloads: list[str] = []
    for item in objects:
        if item.hook is None and hook_workloads:
            wait_until(lambda: all(_seen_by_its_controller(client, path) for path in hook_workloads), 60, 0.2)
            hook_workloads.clear()
        if item.kind == "CustomResourceDefinition":
            spec = item.document["spec"]
            for version in spec["versions"]:
                crd_of[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = item.name
        crd = crd_of.get((item.api_version, item.kind))
        if crd is not None and not _served(client, item.api_version, item.kind):
            if not wait_until(functools.partial(_crd_established, client, crd), 60, 0.2):
                report.refusals.append(Refusal(item.key, item.resource, 0, f"CRD {crd} never became Established"))
                continue
            wait_until(functools.partial(_served, client, item.api_version, item.kind), 30, 0.2)
        try:
            response = client.apply(item.document, dry_run=not item.on_install)
        except ApiError as error:
            report.refusals.append(Refusal(item.key, item.resource, error.status, error.message))
            continue
        except KeyError as error:
            report.refusals.append(Refusal(item.key, item.resource, 0, str(error)))
            continue
        report.warnings.extend(Warned(item.key, item.resource, text) for text in response.warnings)
        if item.hook is not None and item.on_install and item.kind in WORKLOAD_KINDS:
            plural = WORKLOAD_KINDS[item.kind]
            hook_workloads.append(f"/apis/apps/v1/namespaces/{item.namespace}/{plural}/{item.name}")


def provision_claims(client: KubeClient) -> None:
    """Play Trident's CSI provisioner: a pre-bound volume for each pending claim of a CSI storage class, so
    pods that mount claims can be scheduled (what the test checks is admission, not storage)."""
    classes = {c["metadata"]["name"]: c for c in client.items("/apis/storage.k8s.io/v1/storageclasses")}
    for claim in client.items("/api/v1/persistentvolumeclaims"):
        meta, spec = claim["metadata"], claim["spec"]
        if claim.get("status", {}).get("phase") == "Bound" or spec.get("storageClassName") not in classes:
            continue
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"pv-{meta['namespace']}-{meta['name']}"},
            "spec": {
                "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                "accessModes": spec["accessModes"],
                "storageClassName": spec["storageClassName"],
                "persistentVolumeReclaimPolicy": "Delete",
                "claimRef": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
                "csi": {
                    "driver": classes[spec["storageClassName"]]["provisioner"],
                    "volumeHandle": f"{meta['namespace']}-{meta['name']}",
                },
            },
        }
        client.apply(volume)


def run_cronjobs(client: KubeClient) -> None:
    """One Job from each CronJob, as `kubectl create job --from=cronjob/NAME` makes it."""
    for cronjob in client.items("/apis/batch/v1/cronjobs"):
        meta = cronjob["metadata"]
        template = cronjob["spec"]["jobTemplate"]
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": f"{meta['name']}-manual",
                "namespace": meta["namespace"],
                "labels": template.get("metadata", {}).get("labels", {}),
                "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "CronJob",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": template["spec"],
        }
        client.create(f"/apis/batch/v1/namespaces/{meta['namespace']}/jobs", job)


def bind_for_other_schedulers(client: KubeClient, nodes: list[str]) -> None:
    """Play the schedulers the program deploys (z2jh's user-scheduler, a kube-scheduler with its own
    profile): bind their pending pods to schedulable nodes in turn, so their workloads can become ready.
    Only pods that name another scheduler: the real kube-scheduler places every other pod."""
    pending = [
        pod
        for pod in client.items("/api/v1/pods", fieldSelector="status.phase=Pending")
        if not pod["spec"].get("nodeName")
        and pod["spec"].get("schedulerName", "default-scheduler") != "default-scheduler"
    ]
    for index, pod in enumerate(pending):
        meta = pod["metadata"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": nodes[index % len(nodes)]},
        }
        with contextlib.suppress(ApiError):  # bound meanwhile, or deleted: the next round sees it
            client.create(f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding", binding)


# --- waiting for the controllers -----------------------------------------------------------------


def workload_states(client: KubeClient, namespaces: set[str]) -> list[Workload]:
    found = []
    for kind, plural in WORKLOAD_KINDS.items():
        for item in client.items(f"/apis/apps/v1/{plural}"):
            meta, status = item["metadata"], item.get("status", {})
            if meta["namespace"] not in namespaces:
                continue
            if kind == "DaemonSet":
                desired, ready = status.get("desiredNumberScheduled", 0), status.get("numberReady", 0)
            else:
                desired, ready = item["spec"].get("replicas", 1), status.get("readyReplicas", 0)
            observed = status.get("observedGeneration", 0) >= meta.get("generation", 1)
            found.append(Workload(f"{kind} {meta['namespace']}/{meta['name']}", int(desired), int(ready), observed))
    for job in client.items("/apis/batch/v1/jobs"):
        meta = job["metadata"]
        if meta["namespace"] in namespaces:
            desired = int(job["spec"].get("completions") or 1)
            found.append(
                Workload(
                    f"Job {meta['namespace']}/{meta['name']}", desired, int(job.get("status", {}).get("succeeded", 0))
                )
            )
    return sorted(found, key=lambda w: w.key)


def failed_creates(client: KubeClient, namespaces: set[str]) -> list[str]:
    return sorted(
        f"{e['involvedObject']['kind']} {e['metadata']['namespace']}/{e['involvedObject']['name']}: "
        f"{e.get('message', '')}"
        for e in client.items("/api/v1/events", fieldSelector="reason=FailedCreate")
        if e["metadata"]["namespace"] in namespaces
    )


# --- Pod Security --------------------------------------------------------------------------------


def _namespace(name: str, level: str) -> dict[str, Any]:
    labels = {ENFORCE_LABEL: level, f"{ENFORCE_LABEL}-version": "latest"}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def strictest_level(client: KubeClient, spec: dict[str, Any], name: str) -> tuple[str, str]:
    """The strictest level a pod `spec` meets, by a server-side dry run into namespaces enforcing each level
    (the real PodSecurity admission judges it), and why it fails the next stricter one."""
    account = spec.get("serviceAccountName") or "default"
    reasons = ""
    for level in ("restricted", "baseline"):
        namespace = PROBE_NAMESPACES[level]
        client.apply(_namespace(namespace, level))  # idempotent: a probe works on any control plane
        # The ServiceAccount admission plugin refuses a pod whose account does not exist; make it.
        client.apply(
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": namespace}}
        )
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": spec}
        try:
            client.apply(pod, dry_run=True)
            return level, reasons
        except ApiError as error:
            if error.status != 403 or "violates PodSecurity" not in error.message:
                raise
            reasons = reasons or error.message.split(": ", 1)[-1]
    return "privileged", reasons


def _top_owner(client: KubeClient, namespace: str, owners: list[dict[str, Any]]) -> str | None:
    """The workload a pod comes from: Deployment over ReplicaSet, CronJob over Job."""
    controller = next((o for o in owners if o.get("controller")), None)
    if controller is None:
        return None
    kind, name = controller["kind"], controller["name"]
    if kind in ("ReplicaSet", "Job"):
        group = "apps/v1" if kind == "ReplicaSet" else "batch/v1"
        plural = "replicasets" if kind == "ReplicaSet" else "jobs"
        parent = client.get_or_none(f"/apis/{group}/namespaces/{namespace}/{plural}/{name}") or {}
        above = _top_owner(client, namespace, parent.get("metadata", {}).get("ownerReferences", []))
        if above is not None:
            return above
    return f"{kind} {namespace}/{name}"


def _without_node(spec: dict[str, Any]) -> dict[str, Any]:
    """A created pod's spec minus what binds it to a node (irrelevant to Pod Security)."""
    return {key: value for key, value in spec.items() if key not in ("nodeName",)}


def pod_levels(client: KubeClient, objects: list[ProgramObject], namespaces: set[str]) -> list[PodLevel]:
    labels = {
        n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get(ENFORCE_LABEL, "privileged")
        for n in client.items("/api/v1/namespaces")
    }
    found: dict[str, PodLevel] = {}
    for pod in client.items("/api/v1/pods"):
        meta = pod["metadata"]
        if meta["namespace"] not in namespaces:
            continue
        workload = (
            _top_owner(client, meta["namespace"], meta.get("ownerReferences", []))
            or f"Pod {meta['namespace']}/{meta['name']}"
        )
        if workload in found:
            continue
        level, reasons = strictest_level(client, _without_node(pod["spec"]), "probe")
        found[workload] = PodLevel(
            workload, meta["namespace"], level, labels.get(meta["namespace"], "privileged"), reasons
        )
    # Hooks that never run on install (a pre-delete Job): judge their pod template, and dry-run it as a pod
    # in its own namespace so a refusal there shows too.
    for item in objects:
        if item.on_install or item.kind != "Job":
            continue
        spec = item.document["spec"]["template"]["spec"]
        namespace = str(item.namespace)
        level, reasons = strictest_level(client, spec, "probe")
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{item.name}-probe", "namespace": namespace},
            "spec": spec,
        }
        try:
            client.apply(pod, dry_run=True)
        except ApiError as error:
            level = f"refused: {error.message}"
        found[f"{item.key} ({item.hook} hook)"] = PodLevel(
            f"{item.key} ({item.hook} hook)", namespace, level, labels.get(namespace, "privileged"), reasons
        )
    return sorted(found.values(), key=lambda p: p.workload)


# --- who may do what -----------------------------------------------------------------------------


def service_accounts(client: KubeClient, objects: list[ProgramObject], namespaces: set[str]) -> list[str]:
    """Every account the program creates, and each `default` account a pod of the program runs as."""
    accounts = {f"{o.namespace}/{o.name}" for o in objects if o.kind == "ServiceAccount" and o.on_install}
    for pod in client.items("/api/v1/pods"):
        if pod["metadata"]["namespace"] in namespaces:
            accounts.add(f"{pod['metadata']['namespace']}/{pod['spec'].get('serviceAccountName') or 'default'}")
    return sorted(accounts)


def access_matrix(client: KubeClient, accounts: list[str]) -> list[Access]:
    rows = []
    for account in accounts:
        namespace, name = account.split("/")
        user = f"system:serviceaccount:{namespace}:{name}"
        groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated")
        answers = tuple(
            client.can(user, groups, q.verb, q.resource, q.namespace, subresource=q.subresource, name=q.name)
            for q in QUESTIONS
        )
        rows.append(Access(account, answers))
    return rows


# --- the whole run -------------------------------------------------------------------------------


def stack_settings(stack: str) -> Settings:
    """The stack's settings as the program reads them (Pulumi.yaml defaults under the stack file)."""
    values = {**project_defaults(), **read_stack_values(stack)}
    return parse_settings({key: value for key, value in values.items() if key.startswith("dsaas:")})


def admit(plane: ControlPlane, stack: str) -> AdmissionReport:
    """Everything above for one stack on `plane` (a fresh control plane: objects of another stack would mix)."""
    objects = program_objects(run_program(stack))
    report = AdmissionReport(stack, objects)
    client = plane.client()
    namespaces = {o.namespace for o in objects if o.namespace} | {o.name for o in objects if o.kind == "Namespace"}
    shapes = stack_node_shapes(stack_settings(stack))
    schedulable = [shape.name for shape in shapes if not shape.taints]
    with plane.simulated_nodes(shapes) as nodes:
        started = time.monotonic()
        apply_objects(client, objects, report)
        report.seconds["apply"] = time.monotonic() - started
        started = time.monotonic()
        run_cronjobs(client)

        def settled() -> bool:
            provision_claims(client)
            bind_for_other_schedulers(client, schedulable)
            return all(w.complete for w in workload_states(client, namespaces))

        wait_until(settled, WORKLOAD_TIMEOUT, 1.0)
        report.workloads = workload_states(client, namespaces)
        report.failed_creates = failed_creates(client, namespaces)
        report.seconds["controllers"] = time.monotonic() - started
        started = time.monotonic()
        report.pods = pod_levels(client, objects, namespaces)
        report.access = access_matrix(client, service_accounts(client, objects, namespaces))
        report.seconds["pod security and access"] = time.monotonic() - started
        report.node_errors = list(nodes.errors)
    return report


# --- the pages -----------------------------------------------------------------------------------

REGENERATE = ".venv/bin/pytest tests/controlplane/test_admission.py --write-docs"
Justified = dict[tuple[str, str], str]
"""(object key, the text or the part of it that matters) → why it is accepted."""


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows)
    return lines


def justification(justified: Justified, key: str, text: str) -> str | None:
    for (allowed_key, allowed_text), reason in justified.items():
        if allowed_key == key and allowed_text in text:
            return reason
    return None


def render_admission_doc(reports: dict[str, AdmissionReport], warnings: Justified, failed: Justified) -> str:
    """docs/admission.md: what each stack's objects meet on a real API server, from `admit` runs."""
    stacks = list(reports)
    lines = [
        "# What the API server admits",
        "",
        "Generated by `tests/controlplane/test_admission.py`; the test fails when this page differs, and",
        f"`{REGENERATE}` rewrites it. Each stack's objects",
        "(`tools/controlplane/objects.py`: the graph's Kubernetes resources, every Helm release rendered from its",
        "vendored chart with its hooks, the remote files of the two ConfigGroups and the TridentBackendConfig CRD",
        "the Trident operator creates, vendored in `tests/upstream/manifests.yaml`) are applied server-side, in",
        "the order the program creates them, to a fresh Kubernetes control plane with kubeadm's admission plugins",
        "and authorizers (`tools/controlplane/`), with simulated nodes shaped like the stack's VMs. Hooks that",
        "run only on uninstall (pre-delete) get a server-side dry run. Trident does not run there: the test",
        "binds each claim to a volume, and binds the pods of z2jh's user-scheduler, as they would.",
        "",
        "## Objects admitted",
        "",
    ]
    refused = {stack: len(report.refusals) for stack, report in reports.items()}
    lines += [
        "Refused: " + ", ".join(f"{stack} {count}" for stack, count in refused.items()) + ".",
        "",
    ]
    for dimension in ("kind", "namespace"):
        tallies = {stack: counts(report.objects)[dimension] for stack, report in reports.items()}
        names = sorted(set().union(*tallies.values()))
        rows = [[f"`{name}`", *(str(tallies[stack].get(name, 0)) for stack in stacks)] for name in names]
        rows.append(["**total**", *(str(sum(tallies[stack].values())) for stack in stacks)])
        lines += [*_table([dimension, *stacks], rows), ""]
    lines += ["## Warnings", "", "Every Warning header the API server sent, and why it is accepted.", ""]
    rows = []
    for stack, report in reports.items():
        for warned in report.warnings:
            reason = justification(warnings, warned.key, warned.text) or "**not justified**"
            rows.append([stack, f"`{warned.key}`", warned.text, reason])
    lines += [*(_table(["stack", "object", "warning", "why accepted"], rows) if rows else ["None."]), ""]
    lines += [
        "## Pods the controllers could not create",
        "",
        "`FailedCreate` events (how a Pod Security or other admission refusal of a controller's pod shows).",
        "",
    ]
    rows = []
    for stack, report in reports.items():
        for event in report.failed_creates:
            key, message = event.split(": ", 1)
            reason = justification(failed, key, message) or "**not justified**"
            rows.append([stack, f"`{key}`", message, reason])
    lines += [*(_table(["stack", "workload", "event", "why accepted"], rows) if rows else ["None."]), ""]
    lines += ["## Workloads", "", "Ready (or succeeded) of desired, after the controllers ran.", ""]
    states = {stack: {w.key: w for w in report.workloads} for stack, report in reports.items()}
    keys = sorted(set().union(*states.values()))
    rows = [
        [f"`{key}`", *(f"{states[s][key].ready}/{states[s][key].desired}" if key in states[s] else "" for s in stacks)]
        for key in keys
    ]
    lines += [*_table(["workload", *stacks], rows), ""]
    lines += [
        "## Pod Security",
        "",
        "The strictest level each pod meets (a server-side dry run into namespaces enforcing `restricted`, then",
        "`baseline`) against its namespace's `pod-security.kubernetes.io/enforce` label (none: `privileged`).",
        "",
    ]
    levels = {stack: {p.workload: p for p in report.pods} for stack, report in reports.items()}
    keys = sorted(set().union(*levels.values()))
    rows = []
    for key in keys:
        first = next(levels[s][key] for s in stacks if key in levels[s])
        cells = [levels[s][key].level if key in levels[s] else "" for s in stacks]
        rows.append([f"`{key}`", first.namespace_label, *cells])
    lines += [*_table(["pod of", "namespace enforces", *(f"{s} meets" for s in stacks)], rows), ""]
    lines += [
        "Per namespace, its label against the strictest level all of its pods meet (the most a label could say",
        "without refusing one of them):",
        "",
    ]
    labels: dict[str, str] = {}
    meets: dict[str, str] = {}
    for stack in stacks:
        for pod in reports[stack].pods:
            labels[pod.namespace] = pod.namespace_label
            current = meets.get(pod.namespace, "restricted")
            level = pod.level if pod.level in LEVELS else "privileged"
            meets[pod.namespace] = min(current, level, key=LEVELS.index)
    rows = [[f"`{namespace}`", labels[namespace], meets[namespace]] for namespace in sorted(meets)]
    lines += [*_table(["namespace", "enforces", "all its pods meet"], rows), ""]
    blockers: dict[str, str] = {}
    for stack in stacks:
        for pod in reports[stack].pods:
            if pod.level != "restricted" and pod.reasons:
                blockers.setdefault(pod.workload, pod.reasons.split(": ", 1)[-1])
    lines += ["What keeps each of the others from `restricted`:", ""]
    lines += [f"- `{key}`: {reason}" for key, reason in sorted(blockers.items())]
    return "\n".join(lines) + "\n"


def render_access_doc(reports: dict[str, AdmissionReport]) -> str:
    """docs/access.md: what the authorizer answers for each service account of the platform."""
    rows: dict[str, tuple[list[str], tuple[bool, ...]]] = {}
    for stack, report in reports.items():
        for access in report.access:
            seen, answers = rows.setdefault(access.account, ([], access.answers))
            if answers != access.answers:
                raise ValueError(f"{access.account} gets different answers in {seen} and {stack}")
            seen.append(stack)
    lines = [
        "# Who may do what",
        "",
        "Generated by `tests/controlplane/test_admission.py`; the test fails when this page differs, and",
        f"`{REGENERATE}` rewrites it. For every service account the program creates, and",
        "every namespace `default` account a pod of the program runs as: what the API server's authorizers",
        "(Node, RBAC) answer to a SubjectAccessReview (as `kubectl auth can-i --as` asks) once all of the",
        "stack's objects are applied. User `system:serviceaccount:<namespace>:<name>`, groups",
        "`system:serviceaccounts`, `system:serviceaccounts:<namespace>`, `system:authenticated`. A user pod is",
        f"`{HUB_NAMESPACE}/{USER_POD}`.",
        "",
        "Accounts the operators create at run time (Trident's controller and node accounts, Calico's",
        "`calico-system` accounts) are not here: the operators do not run on the test control plane, so their",
        "RBAC does not exist there; what the operators' own accounts may do bounds what they can grant.",
        "",
    ]
    header = ["account", "stacks", *(q.label for q in QUESTIONS)]
    table = [
        [f"`{account}`", ", ".join(seen), *("**yes**" if a else "no" for a in answers)]
        for account, (seen, answers) in sorted(rows.items())
    ]
    lines += [*_table(header, table), "", "## Findings", ""]
    lines += ["Accounts that may exec into users' servers or read the hub namespace's secrets:", ""]
    for account, (seen, answers) in sorted(rows.items()):
        allowed = [q.label for q, a in zip(QUESTIONS, answers, strict=True) if a and q.label in FINDINGS]
        if allowed:
            lines.append(f"- `{account}` ({', '.join(seen)}): {'; '.join(allowed)}")
    return "\n".join(lines) + "\n"
