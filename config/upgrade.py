"""Kubernetes upgrades by changing `dsaas:kubernetesVersion`: which moves are allowed, and in which order.

Pure: the version the stack ran before (its own previous `kubernetesVersion` output, None on a first `up`),
the new one and the settings in; the ordered plan out, or an `UpgradeError` naming the stack key and the
fix. kubeadm upgrades one minor at a time and never downgrades (kubeadm's "Upgrading kubeadm clusters":
"Skipping MINOR versions when upgrading is unsupported"); every pinned component must support the target
(config/versions.py, COMPONENT_KUBERNETES_SUPPORT).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from config import versions
from config.model import SettingsProblem, stack_key
from config.settings import Settings, SettingsError

VERSION_KEY = stack_key("cluster", "kubernetesVersion")
_VERSION = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)")


class UpgradeError(SettingsError):
    """A version change the cluster cannot make; raised before any resource is registered."""


class UpgradeCommand(Enum):
    APPLY = "apply"
    """`kubeadm upgrade apply vX`: the first control plane upgrades the cluster's own configuration."""
    NODE = "node"
    """`kubeadm upgrade node`: every other node takes its new configuration from the cluster."""


@dataclass(frozen=True)
class UpgradeStage:
    """Nodes upgraded together: each is drained, upgraded and back Ready before the next stage starts."""

    command: UpgradeCommand
    nodes: tuple[str, ...]
    what: str


@dataclass(frozen=True)
class UpgradePlan:
    previous: str | None
    target: str
    stages: tuple[UpgradeStage, ...]

    @property
    def upgrading(self) -> bool:
        return bool(self.stages)

    def describe(self) -> str:
        if not self.upgrading:
            if self.previous is None:
                return f"Kubernetes {self.target}: a first `up`, every node is installed at this version (no upgrade)"
            return f"Kubernetes {self.target}: unchanged (no upgrade)"
        lines = [
            f"Kubernetes upgrade {self.previous} → {self.target}, one stage after another; on each node: drain, "
            "kubeadm, `kubeadm upgrade ...`, kubelet and kubectl, restart kubelet, uncordon, wait Ready:"
        ]
        for number, stage in enumerate(self.stages, 1):
            command = f"kubeadm upgrade {stage.command.value}"
            if stage.command is UpgradeCommand.APPLY:
                command += f" v{self.target}"
            lines.append(f"  {number}. {stage.what}: {', '.join(stage.nodes)} (`{command}`)")
        return "\n".join(lines)


def parse_version(version: str) -> tuple[int, int, int]:
    match = _VERSION.fullmatch(version)
    if match is None:
        raise ValueError(f"{version!r} is not an exact version x.y.z")
    return int(match[1]), int(match[2]), int(match[3])


def _problem(problem: str, fix: str) -> UpgradeError:
    return UpgradeError([SettingsProblem(key=VERSION_KEY, problem=problem, fix=fix)])


def check_component_support(target: str) -> list[SettingsProblem]:
    """Every pinned component that does not support `target`'s minor, with the pin to change."""
    minor = ".".join(target.split(".")[:2])
    return [
        SettingsProblem(
            key=VERSION_KEY,
            problem=f"Kubernetes {minor} is not supported by {support.component} (it supports {support.range}; "
            f"{support.source}).",
            fix=f"bump config/versions.py {support.pin} to a release that supports {minor} first, or stay on "
            f"{support.newest or support.oldest}.x.",
        )
        for support in versions.COMPONENT_KUBERNETES_SUPPORT
        if not support.supports(minor)
    ]


def upgrade_plan(previous: str | None, new: str, settings: Settings) -> UpgradePlan:
    """The ordered upgrade from `previous` to `new`, or `UpgradeError` for a move kubeadm cannot make."""
    unsupported = check_component_support(new)
    if unsupported:
        raise UpgradeError(unsupported)
    if previous is None or previous == new:
        return UpgradePlan(previous, new, ())
    try:
        old = parse_version(previous)
    except ValueError:
        raise _problem(
            f"the stack's previous kubernetesVersion output {previous!r} is not a version.",
            "check the stack's outputs (`pulumi stack output kubernetesVersion`).",
        ) from None
    wanted = parse_version(new)
    if wanted < old:
        raise _problem(
            f"{previous} → {new} is a downgrade; kubeadm upgrades only forward (a downgraded kubelet or etcd "
            "cannot read what the newer one wrote).",
            f"set dsaas:kubernetesVersion back to {previous} (or newer); to go back, restore into a new cluster.",
        )
    if wanted[0] != old[0] or wanted[1] > old[1] + 1:
        through = f"{old[0]}.{old[1] + 1}"
        raise _problem(
            f"{previous} → {new} skips {through}: kubeadm upgrades one minor at a time.",
            f"set dsaas:kubernetesVersion to {through}.x first, `pulumi up`, then to {new}.",
        )
    order = batches(settings)
    size = settings.cluster.upgrade_worker_batch_size
    control_planes = len(settings.control_planes)
    stages = [
        UpgradeStage(
            UpgradeCommand.APPLY if index == 0 else UpgradeCommand.NODE,
            tuple(nodes),
            "first control plane"
            if index == 0
            else "control plane"
            if index < control_planes
            else f"workers (batches of {size})",
        )
        for index, nodes in enumerate(order)
    ]
    return UpgradePlan(previous, new, tuple(stages))


def batches(settings: Settings) -> list[list[str]]:
    """Every node in upgrade order, grouped as the plan runs them: the first control plane, each other control
    plane alone, then workers by `dsaas:upgradeWorkerBatchSize`. An `up` that changes the version orders its
    upgrade steps by this (a step whose node is already at the version does nothing)."""
    first, *others = settings.control_planes
    size = settings.cluster.upgrade_worker_batch_size
    workers = [node.name for node in settings.workers]
    return [
        [first.name],
        *([node.name] for node in others),
        *(workers[i : i + size] for i in range(0, len(workers), size)),
    ]
