"""Offline preview: `python -m tools.preview <stack> [--out DIR]`.

Runs the real `__main__.py` for `config/Pulumi.<stack>.yaml` under Pulumi mocks (no vCenter, no
Pulumi CLI, no credentials) and prints the resource tree with the key inputs, secrets shown as
`[secret]`. `--out DIR` writes every rendered artifact: cloud-init per VM, kubeadm configs, the
kube-vip manifests, every node script, the Helm values and the objects Helm's engine renders from
them (the vendored charts, tools/offline/charts.py). A bad stack file exits with status 2
and the settings error, naming the key and the fix. `--policy-pack policies` then runs the policy
pack over the Analyzer protocol as `pulumi preview --policy-pack` does, prints its violations and
exits with status 1 on a mandatory one (`--policy-pack-config FILE` as with the CLI).
"""

from __future__ import annotations

import argparse
import base64
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml
from pulumi.runtime.sync_await import _sync_await

from components import cloud_init, kubeadm_render
from config.settings import SettingsError, parse_settings
from config.upgrade import upgrade_plan
from tools.offline import charts
from tools.offline.diagram import DiagramError, write_diagram
from tools.offline.diff import DiffSourceError, diff_snapshots, load_reference, render_diff
from tools.offline.environment import write_environment
from tools.offline.mockgraph import (
    ROOT,
    SECRET_MARK,
    Graph,
    RecordedResource,
    StackFileError,
    is_secret,
    kubernetes_objects,
    project_defaults,
    read_stack_values,
    redact,
    run_program,
    stack_file,
    unwrap,
    whole_numbers,
)
from tools.offline.redaction import scrub
from tools.offline.snapshot import build_snapshot, write_snapshot

# Inputs worth a reviewer's eye, per resource type (everything else is in --out).
KEY_INPUTS: dict[str, tuple[str, ...]] = {
    "pulumi:providers:vsphere": ("vsphereServer", "user", "password", "allowUnverifiedSsl"),
    "vsphere:index/virtualMachine:VirtualMachine": ("name", "numCpus", "memory", "folder", "annotation"),
    "vsphere:index/computeClusterVmAntiAffinityRule:ComputeClusterVmAntiAffinityRule": (
        "name",
        "mandatory",
        "virtualMachineIds",
    ),
    "tls:index/privateKey:PrivateKey": ("algorithm",),
    "random:index/randomString:RandomString": ("length",),
    "random:index/randomPassword:RandomPassword": ("length",),
    "random:index/randomBytes:RandomBytes": ("length",),
    "pulumi:providers:kubernetes": ("kubeconfig",),
    "kubernetes:helm.sh/v3:Release": ("chart", "version", "namespace"),
    "kubernetes:core/v1:Namespace": ("metadata.name",),
    "kubernetes:core/v1:Secret": ("metadata.namespace", "metadata.name", "type"),
    "kubernetes:storage.k8s.io/v1:StorageClass": (
        "metadata.name",
        "parameters.backendType",
        "parameters.fsType",
        "reclaimPolicy",
    ),
    "kubernetes:trident.netapp.io/v1:TridentBackendConfig": (
        "spec.storageDriverName",
        "spec.svm",
        "spec.autoExportCIDRs",
    ),
    "kubernetes:yaml/v2:ConfigGroup": ("files", "objs"),
}


def _lookup(inputs: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    value: Any = inputs
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _short(value: Any, limit: int = 90) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = "[" + ", ".join(_short(v, 40) for v in value) + "]" if isinstance(value, list) else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


STEP_MARKER = "# dsaas step: "


def step_name(script: Any) -> str | None:
    """The template a rendered script (or a heredoc command running one) came from."""
    for line in unwrap(script or "").splitlines()[:3]:
        if line.startswith(STEP_MARKER):
            return str(line.removeprefix(STEP_MARKER))
    return None


def key_inputs(resource: RecordedResource) -> list[str]:
    shown: list[str] = []
    if resource.type == "command:remote:Command":
        connection = unwrap(resource.inputs.get("connection", {}))
        shown.append(f"script={step_name(resource.inputs.get('stdin'))}")
        shown.append(f"host={connection.get('host')}")
        if is_secret(resource.inputs.get("stdin")):
            shown.append(f"stdin={SECRET_MARK}")
        if resource.inputs.get("delete"):
            shown.append(f"on-delete={step_name(resource.inputs['delete'])}")
        return shown
    for key in KEY_INPUTS.get(resource.type, ()):
        found, value = _lookup(resource.inputs, key)
        if found:
            value = redact(value)
            if key in ("virtualMachineIds", "files", "objs"):
                value = len(value) if isinstance(value, list) else value
                key = {"virtualMachineIds": "vms"}.get(key, key)
            shown.append(f"{key.rsplit('.', 1)[-1]}={_short(value)}")
    return shown


def render_tree(graph: Graph) -> str:
    children: dict[str, list[RecordedResource]] = defaultdict(list)
    urns = {r.urn for r in graph.resources}
    roots: list[RecordedResource] = []
    for resource in graph.resources:
        if resource.parent in urns:
            children[resource.parent].append(resource)
        else:
            roots.append(resource)
    lines = [f"{graph.stack} (pulumi:pulumi:Stack) — {sum(r.custom for r in graph.resources)} resources"]

    def walk(items: list[RecordedResource], prefix: str) -> None:
        for i, resource in enumerate(items):
            last = i == len(items) - 1
            branch = "└─ " if last else "├─ "
            details = "  ".join(key_inputs(resource))
            lines.append(f"{prefix}{branch}{resource.type}  {resource.name}" + (f"  {details}" if details else ""))
            walk(children[resource.urn], prefix + ("   " if last else "│  "))

    for siblings in children.values():
        siblings.sort(key=lambda r: (r.type.startswith("dsaas:"), r.name))
    walk(graph.in_dependency_order(roots), "")
    lines.append("")
    lines.append("Outputs:")
    for key in sorted(graph.outputs):
        lines.append(f"    {key}: {_short(_output_text(graph.outputs[key]), 120)}")
    return "\n".join(lines)


def _output_text(value: Any) -> Any:
    """Stack outputs may still be `Output`s: show a secret one as `[secret]`, never its value."""
    if not hasattr(value, "apply"):
        return redact(value)
    return SECRET_MARK if _sync_await(value.is_secret()) else "(computed)"


def write_artifacts(graph: Graph, out: Path) -> list[Path]:
    written: list[Path] = []

    def write(relative: str, text: str) -> None:
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(scrub(text, graph.secret_values))
        written.append(path)

    for resource in graph.resources:
        if resource.type == "vsphere:index/virtualMachine:VirtualMachine":
            extra = unwrap(resource.inputs.get("extraConfig", {}))
            vm = unwrap(resource.inputs["name"])
            if "guestinfo.userdata" in extra:
                write(f"cloud-init/{vm}/user-data.yaml", cloud_init.decode(extra["guestinfo.userdata"]))
                write(f"cloud-init/{vm}/meta-data.yaml", cloud_init.decode(extra["guestinfo.metadata"]))
            properties = unwrap(resource.inputs.get("vapp") or {}).get("properties", {})
            if "user-data" in properties:
                # A program-built template boots through the OVA's vApp properties (components/template_render.py).
                write(f"cloud-init/{vm}/user-data.yaml", base64.b64decode(properties["user-data"]).decode())
        elif resource.type == "command:local:Command":
            write(f"scripts/{resource.name}.sh", str(unwrap(resource.inputs.get("create") or "")))
        elif resource.type == "command:remote:Command":
            script = unwrap(resource.inputs.get("stdin") or "")
            write(f"scripts/{resource.name}.sh", script)
            parameters, _ = kubeadm_render.parse_rendered_script(script)
            for key, value in parameters.items():
                if key.endswith("_B64"):
                    decoded = base64.b64decode(value).decode()
                    kind = key.removesuffix("_B64").lower().replace("_", "-")
                    write(f"manifests/{resource.name}.{kind}.yaml", decoded)
            delete = unwrap(resource.inputs.get("delete") or "")
            if delete:
                write(f"scripts/{resource.name}.on-delete.sh", delete)
        elif resource.type == "kubernetes:helm.sh/v3:Release":
            # Numbers cross the engine as doubles; the chart gets JSON, where 389.0 is written 389.
            values = whole_numbers(unwrap(resource.inputs.get("values", {})))
            write(f"helm/{resource.name}.values.yaml", yaml.safe_dump(values, sort_keys=False))
            release = charts.render_release(resource)
            write(f"helm/{resource.name}.objects.yaml", charts.dump_objects(release.objects))
        documents = kubernetes_objects(resource)
        if documents:
            write(f"manifests/{resource.name}.yaml", yaml.safe_dump_all(documents, sort_keys=False))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.preview", description=__doc__.splitlines()[0])
    parser.add_argument("stack", help="stack name: config/Pulumi.<stack>.yaml")
    parser.add_argument("--out", type=Path, help="write every rendered artifact under this folder")
    parser.add_argument("--config-dir", type=Path, default=None, help="folder of stack files (default: config/)")
    parser.add_argument("--snapshot", action="store_true", help="write the desired state to snapshots/<stack>.yaml")
    parser.add_argument("--diff", metavar="REF", help="show what changed since REF (a git ref or a snapshot file)")
    parser.add_argument("--diagram", type=Path, metavar="FILE", help="draw the architecture to FILE (.svg or .png)")
    parser.add_argument("--manifest", type=Path, metavar="FILE", help="write every pinned version deployed to FILE")
    parser.add_argument("--policy-pack", type=Path, help="run this policy pack (e.g. policies) on the preview")
    parser.add_argument("--policy-pack-config", type=Path, help="JSON policy config, as for `pulumi preview`")
    parser.add_argument(
        "--previous-version",
        metavar="X.Y.Z",
        help="the Kubernetes version the stack runs now (its kubernetesVersion output): preview the upgrade plan",
    )
    args = parser.parse_args(argv)
    previous = None if args.previous_version is None else {"kubernetesVersion": args.previous_version}
    try:
        graph = run_program(args.stack, config_dir=args.config_dir, previous_outputs=previous)
        plan = upgrade_plan(args.previous_version, *_version_and_settings(args.stack, args.config_dir))
    except SettingsError as error:
        print(f"error: {stack_file(args.stack, args.config_dir)}: {error}", file=sys.stderr)
        return 2
    except StackFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.diff:
        try:
            earlier = load_reference(args.stack, args.diff)
        except DiffSourceError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(render_diff(args.stack, diff_snapshots(earlier, build_snapshot(graph))))
    else:
        print(render_tree(graph))
    if args.previous_version:
        # Without it the offline preview knows no previous version: it previews a first `up`.
        print()
        print(plan.describe())
    if args.out:
        written = write_artifacts(graph, args.out)
        print(f"\nWrote {len(written)} artifacts under {args.out}/")
    if args.snapshot:
        print(f"\nWrote {write_snapshot(graph).relative_to(ROOT)}")
    if args.diagram:
        try:
            print(f"\nDrew {write_diagram(graph, args.diagram)}")
        except DiagramError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    if args.manifest:
        print(f"\nWrote {write_environment(graph, args.manifest)}")
    if args.policy_pack:
        return run_policies(graph, args.policy_pack, args.policy_pack_config)
    return 0


def _version_and_settings(stack: str, config_dir: Path | None) -> tuple[str, Any]:
    """The stack's Kubernetes version and settings, as the program read them (the run has checked them)."""
    values = {
        key: value
        for key, value in {**project_defaults(), **read_stack_values(stack, config_dir)}.items()
        if key.startswith("dsaas:") and not (isinstance(value, dict) and set(value) == {"secure"})
    }
    settings = parse_settings(values)
    return settings.cluster.kubernetes_version, settings


def run_policies(graph: Graph, pack: Path, config_file: Path | None) -> int:
    from tools.offline import policy_runner

    try:
        result = policy_runner.run_pack(graph, pack.resolve(), policy_runner.load_policy_config(config_file))
    except (policy_runner.PolicyConfigError, OSError) as error:
        print(f"error: policy pack config: {error}", file=sys.stderr)
        return 2
    print()
    print(policy_runner.format_result(result))
    if result.has_mandatory:
        print("error: preview failed: mandatory policy violations", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
