"""Control-plane rules: etcd quorum, DRS anti-affinity, the API endpoint on the virtual IP."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from .common import (
    ANTI_AFFINITY,
    VM,
    control_plane_vms,
    decoded_documents,
    host_of,
    label,
    of_type,
    path,
    schema,
    script_parameters,
    steps,
    vm_address,
)
from .common import config as setting

HA_SCHEMA = schema(
    {
        # Never below 3: a lab lowers the rule's enforcement level (visible), not the threshold.
        "minControlPlanes": {"type": "integer", "minimum": 3, "default": 3},
    }
)


# etcd advises at most 7 members (each write waits for a majority); the settings refuse more.
ETCD_MAX_ADVISED = 7


def _failures(members: int) -> str:
    """How many etcd members may fail with a quorum (a majority) left."""
    tolerated = (members - 1) // 2
    return f"{tolerated} failure{'' if tolerated == 1 else 's'}"


def quorum_counts(count: int, minimum: int) -> list[int]:
    """The odd counts of at least `minimum` nearest to `count` (within etcd's advice where possible)."""
    odd = [n for n in range(minimum, max(minimum, ETCD_MAX_ADVISED, count + 1) + 2) if n % 2 == 1]
    advised = [n for n in odd if n <= ETCD_MAX_ADVISED] or odd
    nearest = min(abs(n - count) for n in advised)
    return [n for n in advised if abs(n - count) == nearest]


def control_plane_ha(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    control_planes = sorted(control_plane_vms(args), key=lambda vm: vm.name)
    if not control_planes:
        return
    minimum = int(setting(args, HA_SCHEMA, "minControlPlanes"))
    count = len(control_planes)
    problems = []
    if count < minimum:
        problems.append(f"at least {minimum} are needed (they tolerate {_failures(minimum)})")
    if count % 2 == 0:
        problems.append(
            f"etcd needs {count // 2 + 1} of {count} members for a quorum, so {count} members tolerate "
            f"{_failures(count)}, the same as {count - 1}, with one more member that can fail"
        )
    if problems:
        names = ", ".join(sorted(vm.name for vm in control_planes))
        options = " or ".join(str(n) for n in quorum_counts(count, minimum))
        report_violation(
            f"{count} control-plane VM(s) ({names}): {'; '.join(problems)}. "
            f"Fix: set dsaas:nodes.controlPlane.count to {options} (and dsaas:highAvailability: true). "
            "A lab stack may accept this only by setting this rule to advisory in the pack's config "
            '(--policy-pack-config, {"control-plane-ha": "advisory"}).',
            control_planes[0].urn,
        )


def control_plane_anti_affinity(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    control_planes = control_plane_vms(args)
    if len(control_planes) < 2:
        return  # one VM has nothing to be kept apart from; control-plane-ha covers the count
    rules = of_type(args, ANTI_AFFINITY)
    fix = (
        "Fix: keep the ComputeClusterVmAntiAffinityRule that components/nodes.py creates for every "
        "control plane (mandatory, enabled); it is not a setting, so restore it in the program."
    )
    if not rules:
        report_violation(
            f"no DRS anti-affinity rule keeps the {len(control_planes)} control-plane VMs on different "
            f"ESXi hosts: one host failure can take etcd quorum with it. {fix}",
            control_planes[0].urn,
        )
        return
    for rule in rules:
        # The rule names VMs by ID, which is unknown before they exist: follow its dependencies.
        linked = {d.urn for d in rule.property_dependencies.get("virtualMachineIds", [])} or {
            d.urn for d in rule.dependencies
        }
        missing = sorted(vm.name for vm in control_planes if vm.urn not in linked)
        weak = [f"{key} is not true" for key in ("mandatory", "enabled") if path(rule.props, key) is False]
        if missing or weak:
            detail = "; ".join([*(["it does not name " + ", ".join(missing)] if missing else []), *weak])
            report_violation(f"anti-affinity rule {label(rule)}: {detail}. {fix}", rule.urn)


def control_plane_endpoint(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    vips = {
        str(env["value"])
        for step in steps(args, "kube-vip")
        for pod in decoded_documents(script_parameters(step), "KUBE_VIP_MANIFEST_B64")
        for container in (pod.get("spec") or {}).get("containers") or []
        for env in container.get("env") or []
        if env.get("name") == "address"
    }
    endpoints: dict[str, str] = {}
    for step in steps(args, "kubeadm-init"):
        for document in decoded_documents(script_parameters(step), "KUBEADM_CONFIG_B64"):
            if document.get("kind") == "ClusterConfiguration" and document.get("controlPlaneEndpoint"):
                endpoints[step.urn] = host_of(str(document["controlPlaneEndpoint"]))
    for step in steps(args, "kubeadm-init") + steps(args, "read-kubeconfig"):
        api_endpoint = script_parameters(step).get("API_ENDPOINT")
        if api_endpoint and step.urn not in endpoints:
            endpoints[step.urn] = host_of(api_endpoint)
    nodes = {address: vm.name for vm in of_type(args, VM) if (address := vm_address(vm))}
    nodes.update(
        {
            str(host): step.name
            for step in steps(args, "prepare-node")
            if (host := path(step.props, "connection", "host"))
        }
    )
    fix = (
        "Fix: set dsaas:controlPlaneEndpoint to a free address of dsaas:network.subnet that is no node's "
        "address; kube-vip announces it."
    )
    by_urn = {r.urn: r for r in args.resources}
    for urn, host in sorted(endpoints.items()):
        step = by_urn[urn]
        if host in nodes:
            report_violation(
                f"{label(step)} points the cluster at {host}, the address of node {nodes[host]}: "
                f"losing that node loses the API. {fix}",
                urn,
            )
        elif vips and host not in vips:
            report_violation(
                f"{label(step)} points the cluster at {host}, but kube-vip announces {', '.join(sorted(vips))}. {fix}",
                urn,
            )


POLICIES = [
    StackValidationPolicy(
        name="control-plane-ha",
        description="At least 3 control-plane VMs, and an odd number (etcd quorum).",
        validate=control_plane_ha,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=HA_SCHEMA,
    ),
    StackValidationPolicy(
        name="control-plane-anti-affinity",
        description="A mandatory DRS anti-affinity rule names every control-plane VM.",
        validate=control_plane_anti_affinity,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    StackValidationPolicy(
        name="control-plane-endpoint",
        description="The Kubernetes API endpoint is the kube-vip virtual IP, not a node address.",
        validate=control_plane_endpoint,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
]
