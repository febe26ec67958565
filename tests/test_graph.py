"""The recorded graph of the real program: topology, dependencies, providers and secrets."""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from components import kubeadm_render
from config.settings import Role
from tests.conftest import STACKS, load_settings
from tools.offline.mockgraph import DsaasMocks, Graph, RecordedResource, is_secret, plain_strings, run_program, unwrap
from tools.offline.redaction import find_leaks

VM = "vsphere:index/virtualMachine:VirtualMachine"
RULE = "vsphere:index/computeClusterVmAntiAffinityRule:ComputeClusterVmAntiAffinityRule"
COMMAND = "command:remote:Command"


def commands(graph: Graph, suffix: str) -> list[RecordedResource]:
    return [r for r in graph.of_type(COMMAND) if r.name.endswith(suffix)]


def vm_named(graph: Graph, name: str) -> RecordedResource:
    return next(vm for vm in graph.node_vms() if unwrap(vm.inputs["name"]) == name)


def test_prod_has_three_control_planes_and_one_rule_naming_them(graphs: dict[str, Graph]) -> None:
    graph = graphs["prod"]
    control_planes = [vm for vm in graph.node_vms() if "-cp-" in unwrap(vm.inputs["name"])]
    assert len(control_planes) == 3
    (rule,) = graph.of_type(RULE)
    assert rule.inputs["mandatory"] is True
    assert sorted(rule.inputs["virtualMachineIds"]) == sorted(vm.outputs["uuid"] for vm in control_planes)
    assert {vm.urn for vm in control_planes} <= set(rule.dependencies)


def test_dev_has_one_control_plane_and_two_workers(graphs: dict[str, Graph]) -> None:
    names = sorted(unwrap(vm.inputs["name"]) for vm in graphs["dev"].node_vms())
    assert names == ["dsaas-dev-cp-1", "dsaas-dev-worker-1", "dsaas-dev-worker-2"]
    assert graphs["dev"].of_type(RULE) == []  # a rule needs two VMs to keep apart


@pytest.mark.parametrize("stack", STACKS)
def test_vms_are_clones_with_guestinfo_and_visible_roles(stack: str, graphs: dict[str, Graph]) -> None:
    nodes_component = graphs[stack].by_name("nodes")
    for vm in graphs[stack].node_vms():
        assert vm.parent == nodes_component.urn
        assert vm.inputs["clone"]["templateUuid"]
        assert set(unwrap(vm.inputs["extraConfig"])) == {
            "guestinfo.metadata",
            "guestinfo.metadata.encoding",
            "guestinfo.userdata",
            "guestinfo.userdata.encoding",
        }
        role = "control-plane" if "-cp-" in vm.name else "worker"
        assert f"Kubernetes {role} node" in vm.inputs["annotation"]
        assert vm.delete_before_replace, "a replacement VM reuses the name and address"


def render_parameters(command: RecordedResource) -> dict[str, str]:
    return kubeadm_render.parse_rendered_script(unwrap(command.inputs["stdin"]))[0]


def test_worker_joins_run_in_parallel_after_init(graphs: dict[str, Graph]) -> None:
    graph = graphs["prod"]
    (init,) = commands(graph, "-kubeadm-init")
    worker_joins = [j for j in commands(graph, "-kubeadm-join") if "-worker-" in j.name]
    assert len(worker_joins) == 4
    for join in worker_joins:
        ancestors = graph.ancestors(join)
        assert init.urn in ancestors
        own = join.name.removesuffix("-kubeadm-join").removeprefix("kubernetes-")
        # Other workers' VMs are ancestors through the join credentials (refreshed when any VM is
        # replaced); VMs are cloned in parallel long before init is done. Their steps never are.
        other_workers = [a for a in ancestors if "-worker-" in a and own not in a and "VirtualMachine" not in a]
        assert other_workers == [], f"{join.name} waits for {other_workers}"


def test_control_planes_join_one_at_a_time(graphs: dict[str, Graph]) -> None:
    graph = graphs["prod"]
    cp2 = graph.by_name("kubernetes-dsaas-prod-cp-2-kubeadm-join")
    cp3 = graph.by_name("kubernetes-dsaas-prod-cp-3-kubeadm-join")
    assert cp2.urn in graph.ancestors(cp3)
    assert "sudo bash -s" in unwrap(cp2.inputs["delete"]) and "kubeadm reset" in unwrap(cp2.inputs["delete"])


@pytest.mark.parametrize("stack", STACKS)
def test_every_joined_node_is_drained_before_its_vm_goes(stack: str, graphs: dict[str, Graph]) -> None:
    graph = graphs[stack]
    first = graph.by_name(f"kubernetes-dsaas-{stack}-cp-1-kubeadm-init")
    first_host = unwrap(first.inputs["connection"])["host"]
    joins = commands(graph, "-kubeadm-join")
    memberships = commands(graph, "-membership")
    assert len(memberships) == len(joins) == len(graph.node_vms()) - 1
    for membership in memberships:
        node = membership.name.removeprefix("kubernetes-").removesuffix("-membership")
        assert unwrap(membership.inputs["connection"])["host"] == first_host
        assert 'kubectl drain "$NODE_NAME"' in unwrap(membership.inputs["delete"])
        assert f"NODE_NAME={node}" in unwrap(membership.inputs["delete"])
        # Pulumi deletes dependents first: the membership (drain) goes before the VM.
        assert vm_named(graph, node).urn in graph.ancestors(membership)


@pytest.mark.parametrize("stack", STACKS)
def test_kubernetes_provider_is_built_from_the_secret_kubeconfig(stack: str, graphs: dict[str, Graph]) -> None:
    graph = graphs[stack]
    (provider,) = graph.of_type("pulumi:providers:kubernetes")
    assert is_secret(provider.inputs["kubeconfig"])
    kubeconfig_step = graph.by_name(f"kubernetes-dsaas-{stack}-cp-1-admin-kubeconfig")
    assert kubeconfig_step.urn in provider.dependencies
    assert "stdout" in kubeconfig_step.additional_secret_outputs
    assert kubeconfig_step.inputs["logging"] == "none"
    calico = graph.by_name("kubernetes-calico")
    assert calico.provider.startswith(provider.urn)
    assert calico.inputs["version"] and calico.inputs["chart"] == "tigera-operator"
    network = unwrap(calico.inputs["values"])["installation"]["calicoNetwork"]
    assert network["nodeAddressAutodetectionV4"] == {"kubernetes": "NodeInternalIP"}  # never a kube-vip address


@pytest.mark.parametrize("stack", STACKS)
def test_no_recorded_input_holds_a_secret_in_clear_text(stack: str, graphs: dict[str, Graph]) -> None:
    graph = graphs[stack]
    assert len(graph.secret_values) >= 5  # vCenter password, SSH key, token, certificate key, kubeconfig
    for resource in graph.resources:
        for text in plain_strings(resource.inputs):
            leaked = [s for s in graph.secret_values if s in text]
            assert not leaked, f"{resource.type} {resource.name} carries a secret in clear text"


def host_keys_delivered(graph: Graph) -> dict[str, str]:
    """Each node's address → the ed25519 host public key its cloud-init user data installs."""
    from components import cloud_init

    delivered = {}
    for vm in graph.node_vms():
        extra_config = unwrap(vm.inputs["extraConfig"])
        user_data = yaml.safe_load(cloud_init.decode(extra_config["guestinfo.userdata"]))
        metadata = yaml.safe_load(cloud_init.decode(extra_config["guestinfo.metadata"]))
        (address,) = metadata["network"]["ethernets"][cloud_init.PRIMARY_NIC]["addresses"]
        delivered[address.split("/")[0]] = user_data["ssh_keys"]["ed25519_public"]
    return delivered


@pytest.mark.parametrize("stack", STACKS)
def test_every_connection_pins_the_host_key_its_node_was_given(stack: str, graphs: dict[str, Graph]) -> None:
    """No SSH connection trusts whatever answers at a node's address: each pins that node's own key."""
    graph = graphs[stack]
    delivered = host_keys_delivered(graph)
    assert len(set(delivered.values())) == len(delivered) == len(load_settings(stack).all_nodes)  # one key each
    steps = graph.of_type(COMMAND)
    assert steps
    for step in steps:
        connection = unwrap(step.inputs["connection"])
        assert connection["hostKey"] == delivered[connection["host"]], step.name
    for vm in graph.node_vms():
        # The user data holds the host's private key: the whole guestinfo stays a secret.
        assert is_secret(vm.inputs["extraConfig"]), vm.name


@pytest.mark.parametrize("stack", STACKS)
def test_every_control_plane_has_the_encryption_key_and_audit_policy_before_kubeadm(
    stack: str, graphs: dict[str, Graph]
) -> None:
    graph = graphs[stack]
    settings = load_settings(stack)
    (key,) = [r for r in graph.of_type("random:index/randomBytes:RandomBytes") if r.name.endswith("-encryption-key")]
    # Kept in the state and made from nothing a VM has: a replaced control plane gets the same key.
    assert key.inputs["length"] == 32 and not set(key.dependencies) & {vm.urn for vm in graph.node_vms()}
    files = {step.name: step for step in commands(graph, "-apiserver-files")}
    assert set(files) == {f"kubernetes-{node.name}-apiserver-files" for node in settings.control_planes}
    for node in settings.control_planes:
        step = files[f"kubernetes-{node.name}-apiserver-files"]
        assert is_secret(step.inputs["stdin"])  # it carries the key
        parameters, _ = kubeadm_render.parse_rendered_script(unwrap(step.inputs["stdin"]))
        encryption = yaml.safe_load(base64.b64decode(parameters["ENCRYPTION_CONFIG_B64"]))
        assert encryption["kind"] == "EncryptionConfiguration"
        kubeadm = graph.by_name(
            f"kubernetes-{node.name}-kubeadm-{'init' if node == settings.control_planes[0] else 'join'}"
        )
        assert step.urn in graph.ancestors(kubeadm), kubeadm.name
    # One key for every control plane: the script each runs is the same.
    assert len({unwrap(step.inputs["stdin"]) for step in files.values()}) == 1


@pytest.mark.parametrize("stack", STACKS)
def test_join_material_travels_only_as_secrets(stack: str, graphs: dict[str, Graph]) -> None:
    graph = graphs[stack]
    for join in commands(graph, "-kubeadm-join"):
        assert is_secret(join.inputs["stdin"]), join.name
    for credentials in commands(graph, "-join-credentials"):
        # The credentials are made on the node by kubeadm and leave it only as secret output.
        assert "stdout" in credentials.additional_secret_outputs and credentials.inputs["logging"] == "none"


@pytest.mark.parametrize("stack", STACKS)
def test_init_and_the_credential_steps_carry_no_secret_to_reuse(stack: str, graphs: dict[str, Graph]) -> None:
    """Nothing kept in the state feeds a token or a key: every run of these steps makes new ones."""
    graph = graphs[stack]
    for step in [*commands(graph, "-kubeadm-init"), *commands(graph, "-join-credentials")]:
        script = unwrap(step.inputs["stdin"])
        assert not is_secret(step.inputs["stdin"]), step.name
        assert not find_leaks(script, graph.secret_values), step.name
    (init,) = commands(graph, "-kubeadm-init")
    parameters, _ = kubeadm_render.parse_rendered_script(unwrap(init.inputs["stdin"]))
    (init_configuration, *_) = yaml.safe_load_all(base64.b64decode(parameters["KUBEADM_CONFIG_B64"]))
    assert "certificateKey" not in init_configuration
    assert all("token" not in entry for entry in init_configuration["bootstrapTokens"])


def test_each_node_joins_as_soon_as_it_and_the_control_plane_are_ready(graphs: dict[str, Graph]) -> None:
    """Own credentials per node, triggered by its own VM: no join waits for another VM to exist."""
    graph = graphs["prod"]
    settings = load_settings("prod")
    first = settings.control_planes[0]
    vm_urns = {node.name: graph.by_name(f"nodes-{node.name}").urn for node in settings.all_nodes}
    init = graph.by_name(f"kubernetes-{first.name}-kubeadm-init")
    for node in settings.all_nodes[1:]:
        credentials = graph.by_name(f"kubernetes-{node.name}-join-credentials")
        join = graph.by_name(f"kubernetes-{node.name}-kubeadm-join")
        assert unwrap(credentials.inputs["connection"])["host"] == str(first.address)
        vm = graph.by_name(f"nodes-{node.name}")
        assert unwrap(credentials.inputs["triggers"]) == [unwrap(vm.outputs["uuid"])]
        assert init.urn in graph.ancestors(credentials) and credentials.urn in join.dependencies
        waits_for = {name for name, urn in vm_urns.items() if urn in graph.ancestors(join)}
        expected = {first.name, node.name}
        if node.role is Role.CONTROL_PLANE:  # etcd grows one member at a time
            expected |= {cp.name for cp in settings.control_planes[: settings.control_planes.index(node)]}
        assert waits_for == expected, (node.name, sorted(waits_for))


def test_every_node_gets_different_credentials(graphs: dict[str, Graph]) -> None:
    graph = graphs["prod"]
    tokens = [unwrap(c.outputs["stdout"]) for c in commands(graph, "-join-credentials")]
    assert len(tokens) == len(set(tokens)) == len(load_settings("prod").all_nodes) - 1


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_equals_or_is_derived_from_a_resource_id(stack: str, graphs: dict[str, Graph]) -> None:
    """Pulumi stores every resource ID in clear in the state (an ID cannot be made secret)."""
    graph = graphs[stack]
    assert secrets_in_ids(graph) == []


def test_a_secret_in_an_id_is_caught(stack_values: Callable[[str], dict[str, Any]]) -> None:
    """The check above can fail: a RandomId (ID = its bytes in base64url) is caught whichever encoding is used."""
    graph = run_program("dev", stack_values("dev"))
    mocks = DsaasMocks("dev")
    state: dict[str, Any] = {"byteLength": 32}
    resource_id = mocks._random("random:index/randomId:RandomId", "leaky", state)
    graph.resources.append(
        RecordedResource(
            urn="urn:leaky",
            type="random:index/randomId:RandomId",
            name="leaky",
            parent="",
            custom=True,
            provider="",
            dependencies=[],
            inputs={},
            id=resource_id,
        )
    )
    for encoding in ("hex", "b64Std", "dec"):
        leaky = Graph(graph.stack, graph.resources, graph.outputs, graph.secret_values | {f"x{state[encoding]}x"})
        assert secrets_in_ids(leaky), encoding


def secrets_in_ids(graph: Graph) -> list[str]:
    found = []
    for resource in graph.resources:
        if resource.custom and len(resource.id) >= 6:
            derived = id_encodings(resource.id)
            found += [
                f"{resource.name}: a secret holds its ID"
                for secret in graph.secret_values
                if any(form in secret for form in derived)
            ]
    return found


def id_encodings(resource_id: str) -> set[str]:
    """The ID and what it decodes to, in the encodings a secret is usually written in."""
    forms = {resource_id}
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            data = decode(resource_id + "=" * (-len(resource_id) % 4))
        except (binascii.Error, ValueError):
            continue
        if len(data) >= 4:
            forms |= {data.hex(), base64.b64encode(data).decode(), str(int.from_bytes(data, "big"))}
    return forms


def test_removing_an_operator_key_reaches_every_existing_node(stack_values: Callable[[str], dict[str, Any]]) -> None:
    values = stack_values("prod")
    before = run_program("prod", values)
    removed = values["dsaas:ssh"]["authorizedKeys"].pop(0)
    after = run_program("prod", values)
    settings = load_settings("prod")
    for node in settings.all_nodes:
        name = f"kubernetes-{node.name}-ssh-keys"
        old_keys = render_parameters(before.by_name(name))["AUTHORIZED_KEYS"].splitlines()
        new_keys = render_parameters(after.by_name(name))["AUTHORIZED_KEYS"].splitlines()
        assert removed in old_keys and removed not in new_keys
        assert new_keys[0] == old_keys[0] and new_keys[0].startswith("ssh-ed25519 ")  # the stack's own key first
        assert {r.name for r in after.resources} == {r.name for r in before.resources}  # no VM replaced


def test_control_plane_vms_change_one_at_a_time_and_never_reboot_for_guest_data(graphs: dict[str, Graph]) -> None:
    graph = graphs["prod"]
    settings = load_settings("prod")
    vms = {node.name: graph.by_name(f"nodes-{node.name}") for node in settings.all_nodes}
    control_planes = [vms[node.name] for node in settings.control_planes]
    for previous, current in itertools.pairwise(control_planes):
        assert previous.urn in current.dependencies
    vm_urns = {vm.urn for vm in vms.values()}
    for node in settings.workers:  # workers stay parallel
        assert not vm_urns & set(vms[node.name].dependencies)
    assert all(vm.inputs["extraConfigRebootRequired"] is False for vm in vms.values())


def test_the_leak_check_can_fail(stack_values: Callable[[str], dict[str, Any]]) -> None:
    """A secret passed in clear somewhere is caught by the same check."""
    graph = run_program("dev", stack_values("dev"))
    graph.resources[0].inputs["oops"] = "prefix " + sorted(graph.secret_values)[0]
    leaks = [r for r in graph.resources for t in plain_strings(r.inputs) if any(s in t for s in graph.secret_values)]
    assert leaks


def test_stack_outputs(graphs: dict[str, Graph]) -> None:
    assert set(graphs["prod"].outputs) == {
        "controlPlaneEndpoint",
        "nodeAddresses",
        "kubernetesVersion",
        "kubeconfig",
        "sshPrivateKey",
        "hubUrl",
        "storageClasses",
        "inventorySigningKey",
        "adminCredentialExpires",
        "adminCredentialGeneration",
    }
    assert graphs["prod"].outputs["hubUrl"] == "https://jupyter.dc.example.org/"


def test_adding_a_worker_keeps_existing_join_inputs(stack_values: Callable[[str], dict[str, Any]]) -> None:
    """Scaling out must not show existing nodes as changed in `pulumi preview`."""
    before = run_program("prod", stack_values("prod"))
    values = stack_values("prod")
    values["dsaas:nodes"]["workers"]["count"] += 1
    after = run_program("prod", values)
    old = {r.name: unwrap(r.inputs) for r in before.resources}
    new = {r.name: unwrap(r.inputs) for r in after.resources}
    changed = sorted(name for name in old if name in new and old[name] != new[name])
    assert changed == [], changed
    added = sorted(set(new) - set(old))
    assert added == sorted(
        f"{prefix}dsaas-prod-worker-5{suffix}"
        for prefix, suffix in [
            ("nodes-", ""),
            ("nodes-", "-host-key"),
            ("kubernetes-", ""),  # the node's own component (components/kubeadm_node.py)
            ("kubernetes-", "-prepare"),
            ("kubernetes-", "-block-storage"),  # the hub database is on ontap-san in prod
            ("kubernetes-", "-ssh-keys"),
            ("kubernetes-", "-join-credentials"),
            ("kubernetes-", "-kubeadm-join"),
            ("kubernetes-", "-membership"),
        ]
    )


def test_graph_depth_does_not_grow_with_workers() -> None:
    from tools.bench.benchmark import scaled_values

    depths = {workers: run_program("prod", scaled_values(workers)).depth() for workers in (3, 30)}
    assert depths[3] == depths[30], depths


def test_urns_carry_every_ancestor_type_as_the_engine_gives_them(graphs: dict[str, Graph]) -> None:
    """Pulumi's MockMonitor keeps only the parent's last type; the engine keeps the whole chain
    (pkg/resource/deploy/step_generator.go). The `--replace` lines in the docs depend on it."""
    template_vm = graphs["prod"].by_name("nodes-template-vm")
    assert template_vm.urn == (
        "urn:pulumi:prod::dsaas::dsaas:vsphere:ClusterNodes$dsaas:vsphere:NodeTemplate"
        "$vsphere:index/virtualMachine:VirtualMachine::nodes-template-vm"
    )
    # Top-level resources take no prefix from the root stack.
    assert graphs["prod"].by_name("nodes").urn == "urn:pulumi:prod::dsaas::dsaas:vsphere:ClusterNodes::nodes"


def test_workers_join_through_a_window_of_join_concurrency(stack_values: Callable[[str], dict[str, Any]]) -> None:
    values = stack_values("dev")
    values["dsaas:nodes"]["workers"]["count"] = 7
    values["dsaas:joinConcurrency"] = 3
    graph = run_program("dev", values)

    def step(worker: int, name: str) -> RecordedResource:
        return graph.by_name(f"kubernetes-dsaas-dev-worker-{worker}-{name}")

    # Workers 1-3 start at once; worker 4 waits for worker 1's join, worker 7 for worker 4's.
    for worker in (1, 2, 3):
        assert not any(d.endswith("-kubeadm-join") for d in step(worker, "join-credentials").dependencies)
    for worker in (4, 5, 6, 7):
        assert step(worker - 3, "kubeadm-join").urn in step(worker, "join-credentials").dependencies
        assert step(worker - 3, "kubeadm-join").urn in step(worker, "kubeadm-join").dependencies
    assert step(3, "kubeadm-join").urn not in step(7, "join-credentials").dependencies


def test_control_planes_admit_the_join_windows_ssh_handshakes(graphs: dict[str, Graph]) -> None:
    from components import cloud_init

    settings = load_settings("prod")
    assert settings.cluster.join_concurrency == 50
    for vm in graphs["prod"].node_vms():
        user_data = yaml.safe_load(cloud_init.decode(unwrap(vm.inputs["extraConfig"])["guestinfo.userdata"]))
        files = {f["path"]: f["content"] for f in user_data["write_files"]}
        if "-cp-" in unwrap(vm.inputs["name"]):
            assert files[cloud_init.SSHD_DROP_IN].splitlines()[-1] == "MaxStartups 110:30:220"
        else:
            assert cloud_init.SSHD_DROP_IN not in files


KUBEADM_CLUSTER = "urn:pulumi:{stack}::dsaas::dsaas:kubernetes:KubeadmCluster"
CLUSTER_STEPS = ("-kubeadm-init", "-ca-cert-hash", "-admin-kubeconfig", "-join-credentials")


@pytest.mark.parametrize("stack", STACKS)
def test_each_nodes_steps_are_its_own_component_and_keep_their_urn_as_an_alias(
    stack: str, graphs: dict[str, Graph]
) -> None:
    """One `KubeadmNode` per node holds that node's steps; each step moved there names, as its alias, the
    URN it had under `KubeadmCluster` before (same name), so a deployed stack keeps every step."""
    graph = graphs[stack]
    cluster = graph.by_name("kubernetes")
    nodes = {r.name: r for r in graph.of_type("dsaas:kubernetes:KubeadmNode")}
    vm_names = sorted(unwrap(vm.inputs["name"]) for vm in graph.node_vms())
    assert sorted(nodes) == [f"kubernetes-{name}" for name in vm_names]
    assert {r.parent for r in nodes.values()} == {cluster.urn}
    old_prefix = KUBEADM_CLUSTER.format(stack=stack) + "$command:remote:Command::"
    steps = [r for r in graph.of_type(COMMAND) if r.name.startswith("kubernetes-")]
    for step in steps:
        if step.name.endswith(CLUSTER_STEPS):
            # Cluster steps, and the credentials, whose URN every join script names: where they were.
            assert step.parent == cluster.urn and step.aliases == [], step.name
            assert step.urn == old_prefix + step.name
            continue
        owner = next(node for node in nodes.values() if step.name.startswith(node.name + "-"))
        assert step.parent == owner.urn, step.name
        assert step.urn == (
            f"{KUBEADM_CLUSTER.format(stack=stack)}$dsaas:kubernetes:KubeadmNode$command:remote:Command::{step.name}"
        )
        # Steps born in the node component never had a URN under the cluster: nothing to alias.
        born_here = step.name.endswith(tuple(f"-{s}" for s in ("cert-renewal",)))
        assert step.aliases == ([] if born_here else [old_prefix + step.name]), step.name
    first = load_settings(stack).control_planes[0].name
    first_steps = sorted(
        r.name.rsplit(first + "-", 1)[1] for r in steps if r.parent == nodes[f"kubernetes-{first}"].urn
    )
    assert first_steps == [
        "apiserver-files",
        "block-storage",
        "cert-renewal",
        "kube-vip",
        "prepare",
        "ssh-keys",
    ]


def test_the_recording_monitor_resolves_aliases_as_the_engine_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """pulumi's step_generator.go (collapseAliasToUrn, inheritedChildAlias): a spec fills in what it leaves
    out from the resource, `noParent` means the stack, and a child of an aliased parent is also that
    parent's child as it was, its name's prefix renamed with the parent."""
    from pulumi.runtime.proto import alias_pb2, resource_pb2

    from tools.offline.mockgraph import DsaasMocks, RecordingMonitor

    monkeypatch.setattr("pulumi.get_stack", lambda: "prod")
    monkeypatch.setattr("pulumi.get_project", lambda: "dsaas")
    monitor = RecordingMonitor(DsaasMocks("prod"))
    cluster = "urn:pulumi:prod::dsaas::dsaas:kubernetes:KubeadmCluster::kubernetes"
    node = f"{cluster.rsplit('::', 1)[0]}$dsaas:kubernetes:KubeadmNode::kubernetes-cp-1"

    def request(parent: str, name: str, *aliases: alias_pb2.Alias) -> Any:
        return resource_pb2.RegisterResourceRequest(type=COMMAND, name=name, parent=parent, aliases=list(aliases))

    step = request(node, "kubernetes-cp-1-prepare", alias_pb2.Alias(spec=alias_pb2.Alias.Spec(parentUrn=cluster)))
    assert monitor.alias_urns(step) == [
        f"urn:pulumi:prod::dsaas::dsaas:kubernetes:KubeadmCluster${COMMAND}::kubernetes-cp-1-prepare"
    ]
    top = request(node, "x", alias_pb2.Alias(spec=alias_pb2.Alias.Spec(noParent=True, name="old-x")))
    assert monitor.alias_urns(top) == [f"urn:pulumi:prod::dsaas::{COMMAND}::old-x"]
    given = f"urn:pulumi:prod::dsaas::{COMMAND}::y"
    assert monitor.alias_urns(request(node, "y", alias_pb2.Alias(urn=given))) == [given]
    # The node component was renamed from `k8s-cp-1`: its children follow it, the name prefix too.
    monitor.aliases[node] = [f"{cluster.rsplit('::', 1)[0]}$dsaas:kubernetes:KubeadmNode::k8s-cp-1"]
    assert monitor.alias_urns(request(node, "kubernetes-cp-1-ssh-keys")) == [
        f"{cluster.rsplit('::', 1)[0]}$dsaas:kubernetes:KubeadmNode${COMMAND}::k8s-cp-1-ssh-keys"
    ]
