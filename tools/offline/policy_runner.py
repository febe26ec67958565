"""Run the policy pack the way the Pulumi CLI does, over the Analyzer protocol.

The CLI starts a Python pack as `<venv>/bin/python -u -m pulumi.policy <engine> <pack dir>`, reads
the port it prints, asks `GetAnalyzerInfo`, sends `Configure` (every policy's enforcement level and
its config: schema defaults overlaid with `--policy-pack-config`), then `AnalyzeStack` with every
resource's properties marshalled with secrets kept (`4dabf…` signature objects). This module does
the same for a graph recorded by `tools.offline.mockgraph`, so `python -m tools.preview <stack>
--policy-pack policies` and the tests exercise the real pack over real gRPC.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from tools.offline.mockgraph import PROJECT, ROOT, Graph, RecordedResource, whole_numbers

DEFAULT_PACK = ROOT / "policies"
LEVELS = {
    "advisory": analyzer_pb2.ADVISORY,
    "mandatory": analyzer_pb2.MANDATORY,
    "disabled": analyzer_pb2.DISABLED,
    "remediate": analyzer_pb2.REMEDIATE,
}
LEVEL_NAMES = {value: name for name, value in LEVELS.items()}
STARTUP_SECONDS = 60.0


class PolicyConfigError(ValueError):
    """The `--policy-pack-config` file does not fit the pack (unknown policy or key, wrong type)."""


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    message: str
    urn: str
    description: str

    @property
    def mandatory(self) -> bool:
        return self.level == "mandatory"

    @property
    def detail(self) -> str:
        """The rule's own message (pulumi-policy prefixes it with the description)."""
        return self.message.removeprefix(self.description).lstrip("\n")


@dataclass(frozen=True)
class PackResult:
    name: str
    version: str
    levels: dict[str, str]
    """Each policy's effective enforcement level after the config."""
    defaults: dict[str, str]
    """Each policy's enforcement level as the pack declares it."""
    violations: list[Violation]
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each policy's settings after the config."""
    default_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each policy's settings as its schema declares them."""

    def fired(self, level: str | None = None) -> set[str]:
        return {v.policy for v in self.violations if level is None or v.level == level}

    @property
    def has_mandatory(self) -> bool:
        return any(v.mandatory for v in self.violations)


# --- the request ---------------------------------------------------------------------------------


def _struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(dict(values))
    return struct


def analyzer_resource(resource: RecordedResource, by_urn: Mapping[str, RecordedResource]) -> Any:
    """One recorded resource as the engine sends it to `AnalyzeStack`."""
    provider = None
    if resource.provider:
        provider_urn = resource.provider.rsplit("::", 1)[0]
        known = by_urn.get(provider_urn)
        provider = analyzer_pb2.AnalyzerProviderResource(
            type=known.type if known else provider_urn.split("::")[-2].rsplit("$", 1)[-1],
            urn=provider_urn,
            name=provider_urn.rsplit("::", 1)[-1],
            properties=_struct(known.inputs if known else {}),
        )
    return analyzer_pb2.AnalyzerResource(
        type=resource.type,
        urn=resource.urn,
        name=resource.name,
        properties=_struct(resource.inputs),
        options=analyzer_pb2.AnalyzerResourceOptions(
            deleteBeforeReplace=resource.delete_before_replace,
            deleteBeforeReplaceDefined=True,
            additionalSecretOutputs=resource.additional_secret_outputs,
            parent=resource.parent,
        ),
        provider=provider,
        parent=resource.parent,
        dependencies=resource.dependencies,
        propertyDependencies={
            key: analyzer_pb2.AnalyzerPropertyDependencies(urns=urns)
            for key, urns in resource.property_dependencies.items()
            if urns
        },
    )


def analyze_stack_request(resources: Iterable[RecordedResource]) -> Any:
    resources = list(resources)
    by_urn = {r.urn: r for r in resources}
    return analyzer_pb2.AnalyzeStackRequest(resources=[analyzer_resource(r, by_urn) for r in resources])


# --- the pack process ----------------------------------------------------------------------------


def pack_python(pack_dir: Path) -> str:
    """The interpreter the CLI would use: the pack's own virtualenv if it exists, else ours (same pins)."""
    own = pack_dir / ".venv" / "bin" / "python"
    return str(own) if own.exists() else sys.executable


@contextmanager
def running_pack(pack_dir: Path = DEFAULT_PACK, stack: str = "dev") -> Iterator[Any]:
    """Start the pack as the CLI does; yield an `AnalyzerStub` connected to the port it prints."""
    env = {**os.environ, "PULUMI_PROJECT": PROJECT, "PULUMI_STACK": stack, "PULUMI_DRY_RUN": "true"}
    env.pop("PYTHONPATH", None)  # the pack imports only what its own virtualenv has
    process = subprocess.Popen(
        [pack_python(pack_dir), "-u", "-m", "pulumi.policy", "127.0.0.1:0", str(pack_dir)],
        cwd=pack_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        ready, _, _ = select.select([process.stdout], [], [], STARTUP_SECONDS)
        line = process.stdout.readline().decode().strip() if ready else ""
        if not line.isdigit():
            process.kill()
            error = process.stderr.read().decode()
            raise RuntimeError(f"policy pack {pack_dir} did not print its port ({line!r}):\n{error}")
        channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        grpc.channel_ready_future(channel).result(timeout=max(1.0, deadline - time.monotonic()))
        try:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
        finally:
            channel.close()
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- config, as the CLI builds it ----------------------------------------------------------------


def load_policy_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    document = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    if not isinstance(document, dict):
        raise PolicyConfigError(f"{path}: expected an object of policy name → level or settings")
    return document


_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "string": (str,),
    "array": (list,),
    "object": (dict,),
}


def _check(policy: str, key: str, value: Any, spec: Mapping[str, Any]) -> None:
    expected = _TYPES.get(str(spec.get("type")), (object,))
    if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
        raise PolicyConfigError(f"{policy}.{key}: {value!r} is not of type {spec.get('type')}")
    if "minimum" in spec and value < spec["minimum"]:
        raise PolicyConfigError(f"{policy}.{key}: {value!r} is below the minimum {spec['minimum']}")
    if "maximum" in spec and value > spec["maximum"]:
        raise PolicyConfigError(f"{policy}.{key}: {value!r} is above the maximum {spec['maximum']}")


def schema_defaults(info: Any) -> dict[str, dict[str, Any]]:
    """Each policy's settings as the pack's config schemas declare them."""
    defaults: dict[str, dict[str, Any]] = {}
    for policy in info.policies:
        schema = json_format.MessageToDict(policy.configSchema.properties)
        declared = {key: spec["default"] for key, spec in schema.items() if "default" in spec}
        defaults[policy.name] = whole_numbers(declared)
    return defaults


def configure_request(info: Any, user_config: Mapping[str, Any]) -> tuple[Any, dict[str, str]]:
    """Every policy's level and properties: defaults from the pack, overlaid with the user's config."""
    names = {p.name for p in info.policies}
    unknown = sorted(set(user_config) - names - {"all"})
    if unknown:
        raise PolicyConfigError(f"policy config names unknown policies: {', '.join(unknown)}")
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    levels: dict[str, str] = {}
    for policy in info.policies:
        level = LEVEL_NAMES[policy.enforcementLevel]
        entries: dict[str, Any] = {}
        for given in (user_config.get("all"), user_config.get(policy.name)):
            if isinstance(given, str):
                level = given
            elif isinstance(given, dict):
                entries.update(given)
                level = str(entries.pop("enforcementLevel", level))
        if level not in LEVELS:
            raise PolicyConfigError(f"{policy.name}: unknown enforcement level {level!r}")
        schema = json_format.MessageToDict(policy.configSchema.properties)
        properties = {key: spec["default"] for key, spec in schema.items() if "default" in spec}
        for key, value in entries.items():
            if key not in schema:
                raise PolicyConfigError(f"{policy.name}: unknown setting {key!r} (known: {', '.join(sorted(schema))})")
            _check(policy.name, key, value, schema[key])
            properties[key] = value
        request.policyConfig[policy.name].CopyFrom(
            analyzer_pb2.PolicyConfig(enforcementLevel=LEVELS[level], properties=_struct(properties))
        )
        levels[policy.name] = level
    return request, levels


def pack_version(pack_dir: Path) -> str:
    document = yaml.safe_load((pack_dir / "PulumiPolicy.yaml").read_text()) or {}
    return str(document.get("version", "0.0.1"))


def run_pack(
    graph: Graph,
    pack_dir: Path = DEFAULT_PACK,
    policy_config: Mapping[str, Any] | None = None,
    drop: Iterable[str] = (),
) -> PackResult:
    """Analyze a recorded graph with the pack; `drop` leaves out resources by logical name."""
    dropped = set(drop)
    resources = [r for r in graph.resources if r.name not in dropped]
    with running_pack(pack_dir, graph.stack) as stub:
        info = stub.GetAnalyzerInfo(empty_pb2.Empty())
        request, levels = configure_request(info, policy_config or {})
        stub.Configure(request)
        settings = {
            name: whole_numbers(json_format.MessageToDict(config.properties))
            for name, config in request.policyConfig.items()
        }
        response = stub.AnalyzeStack(analyze_stack_request(resources))
    descriptions = {p.name: p.description for p in info.policies}
    violations = [
        Violation(
            policy=d.policyName,
            level=LEVEL_NAMES[d.enforcementLevel],
            message=d.message,
            urn=d.urn,
            description=d.description or descriptions.get(d.policyName, ""),
        )
        for d in response.diagnostics
    ]
    return PackResult(
        name=info.name,
        version=pack_version(pack_dir),
        levels=levels,
        defaults={p.name: LEVEL_NAMES[p.enforcementLevel] for p in info.policies},
        violations=violations,
        settings=settings,
        default_settings=schema_defaults(info),
    )


# --- output, as `pulumi preview` prints it -------------------------------------------------------


def _where(urn: str) -> str:
    if not urn:
        return "stack"
    name = urn.rsplit("::", 1)[-1]
    type_ = urn.rsplit("::", 2)[-2].rsplit("$", 1)[-1]
    return f"{name}: {type_.rsplit(':', 1)[-1]}"


def format_result(result: PackResult) -> str:
    lines: list[str] = []
    for name, level in sorted(result.levels.items()):
        if result.defaults.get(name) != level:
            # Never silent: a downgraded rule is announced on every run.
            lines.append(
                f"note: policy {name} is {level} by the policy pack config (the pack says {result.defaults[name]})"
            )
    for name, defaults in sorted(result.default_settings.items()):
        for key, default in sorted(defaults.items()):
            value = result.settings.get(name, {}).get(key, default)
            if value != default:
                # A changed threshold or list can weaken a rule as much as a lowered level: never silent.
                lines.append(
                    f"note: policy {name} setting {key} is {value!r} by the policy pack config "
                    f"(the pack says {default!r})"
                )
    if not result.violations:
        lines.append(f"Policies: {result.name} v{result.version}: no violations")
        return "\n".join(lines)
    lines.append("Policy Violations:")
    order = {"mandatory": 0, "advisory": 1}
    for v in sorted(result.violations, key=lambda v: (order.get(v.level, 2), v.policy, v.urn)):
        lines.append(f"    [{v.level}]  {result.name} v{result.version}  {v.policy}  ({_where(v.urn)})")
        lines.extend(f"    {line}" for line in v.message.splitlines())
    return "\n".join(lines)
