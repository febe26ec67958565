"""The real Pulumi engine's checkpoint cost, measured: `pulumi up` with its default checkpoints beside the same
`up` with `PULUMI_SKIP_CHECKPOINTS` (the baseline: one save at the end), and the cost per save per resource.

    python -m tools.bench.engine_checkpoints [--pulumi PATH] [--resources 500 1500] [--kilobytes 2]

The CLI defaults to the one `python -m tools.engine build` made from the pinned Go module.

The program is inline (the automation API serves the language runtime from this process, so no
`pulumi-language-python` binary is needed) and made only of component resources (no provider plugin is
needed): each holds `--kilobytes` of outputs, like prod's resources (about 5 KB of inputs and outputs each
on average). The state lives in a file backend under a temporary folder; the passphrase is a throwaway.

The engine saves the whole state three times per component (pkg/backend/snapshot.go: `doCreate` marks the
create pending, `createSnapshotMutation.End` records it, `RegisterResourceOutputs` records its outputs) and
once more for the stack's outputs; the saves go one at a time. On average a save holds half of the final
state, so the extra time over the baseline is saves × (resources / 2) × the cost per resource per save,
which is what `tools.bringup` charges (ENGINE_CHECKPOINT_MS_PER_RESOURCE in tools/bench/bringup_table.py).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pulumi
from pulumi import automation as auto

from tools.engine import build as engine_build

SAVES_PER_COMPONENT = 3


class _Filler(pulumi.ComponentResource):
    def __init__(self, name: str, payload: str) -> None:
        super().__init__("dsaas:bench:Filler", name)
        self.register_outputs({"payload": payload})


@dataclass(frozen=True)
class Measurement:
    resources: int
    kilobytes: float
    checkpointed_s: float
    skipped_s: float

    @property
    def saves(self) -> int:
        return SAVES_PER_COMPONENT * self.resources + 1

    @property
    def ms_per_resource_per_save(self) -> float:
        average_state = (self.resources + 1) / 2
        return (self.checkpointed_s - self.skipped_s) * 1000 / self.saves / average_state


def _up(pulumi_binary: Path, resources: int, payload: str, skip_checkpoints: bool) -> float:
    def program() -> None:
        for index in range(resources):
            _Filler(f"filler-{index}", payload)

    with tempfile.TemporaryDirectory(prefix="engine-bench-") as folder:
        env = {
            "PULUMI_BACKEND_URL": f"file://{folder}/state",
            "PULUMI_HOME": f"{folder}/home",
            "PULUMI_CONFIG_PASSPHRASE": secrets.token_hex(16),
            "PULUMI_SKIP_UPDATE_CHECK": "1",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        }
        if skip_checkpoints:
            env |= {"PULUMI_SKIP_CHECKPOINTS": "true", "PULUMI_EXPERIMENTAL": "true"}
        Path(f"{folder}/state").mkdir()
        command = auto.PulumiCommand(root=str(pulumi_binary.parent.parent))
        stack = auto.create_stack(
            stack_name="bench",
            project_name="engine-bench",
            program=program,
            opts=auto.LocalWorkspaceOptions(env_vars=env, pulumi_command=command),
        )
        started = time.monotonic()
        result = stack.up(on_output=lambda _line: None)
        elapsed = time.monotonic() - started
        created = sum(n for op, n in (result.summary.resource_changes or {}).items() if op == "create")
        if created != resources + 1:
            raise SystemExit(f"error: the engine created {created} resources, expected {resources + 1}")
        return elapsed


def measure(pulumi_binary: Path, resources: int, kilobytes: float) -> Measurement:
    payload = "x" * int(kilobytes * 1024)
    skipped = _up(pulumi_binary, resources, payload, skip_checkpoints=True)
    checkpointed = _up(pulumi_binary, resources, payload, skip_checkpoints=False)
    return Measurement(resources, kilobytes, checkpointed, skipped)


def _binary(path: str) -> Path:
    binary = Path(path)
    if binary.name != "pulumi" or not os.access(binary, os.X_OK) or binary.parent.name != "bin":
        raise argparse.ArgumentTypeError(f"{path}: not an executable <folder>/bin/pulumi")
    return binary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench.engine_checkpoints",
        description="The real Pulumi engine's checkpoint cost: `pulumi up` with and without checkpoints.",
    )
    parser.add_argument(
        "--pulumi", type=_binary, help="the Pulumi CLI, <folder>/bin/pulumi (default: `python -m tools.engine build`'s)"
    )
    parser.add_argument("--resources", type=int, nargs="+", default=[500, 1500], help="component resources")
    parser.add_argument("--kilobytes", type=float, default=2.0, help="outputs per resource (default 2)")
    args = parser.parse_args(argv)
    if any(count < 1 or count > 20_000 for count in args.resources) or not 0 <= args.kilobytes <= 64:
        parser.error("--resources takes 1-20000 each, --kilobytes 0-64")
    if args.pulumi is None:
        engine = engine_build.installed()
        if engine is None:
            parser.error("no Pulumi CLI: build the pinned one with `python -m tools.engine build`, or give --pulumi")
        args.pulumi = engine.path("pulumi")
    print("resources  KB  up, checkpoints  up, skipped (baseline)  ratio  saves  ms per resource per save")
    for count in args.resources:
        m = measure(args.pulumi, count, args.kilobytes)
        print(
            f"{m.resources:9d} {m.kilobytes:3g} {m.checkpointed_s:15.1f} s {m.skipped_s:20.1f} s "
            f"{m.checkpointed_s / m.skipped_s:6.2f} {m.saves:6d} {m.ms_per_resource_per_save:12.3f}"
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
