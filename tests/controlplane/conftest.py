"""Fixtures that start the real control plane (tools/controlplane) and simulated nodes for a stack.

The binaries are built once per machine by `make controlplane` (the README's test command runs it).
Every control plane a test module starts is stopped when that module ends, whatever happens: an idle control
plane still runs its controllers, leader elections and etcd, and ten of them left running until the end of
the session took a core from every test that came after them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import pytest

from tests.conftest import load_settings
from tools.controlplane import build
from tools.controlplane.cluster import ControlPlane
from tools.controlplane.nodes import NodeRunner, stack_node_shapes


class StartControlPlane(Protocol):
    def __call__(self, apiserver_args: Sequence[str] = ()) -> ControlPlane: ...


# Another supported minor on demand: DSAAS_CONTROLPLANE_MINOR=1.36 (built by `python -m tools.controlplane build
# --minor 1.36`).
MINOR = os.environ.get("DSAAS_CONTROLPLANE_MINOR") or build.default_minor()


@pytest.fixture(scope="session")
def _no_control_plane_outlives_the_session() -> Iterator[None]:
    if build.installed(build.default_minor()) is None:
        pytest.fail("the test control plane is not built: run `make controlplane` (the README's test command does)")
    yield
    left = leftover_processes(build.installed(MINOR))
    assert not left, f"control-plane processes outlived the session: {left}"


@pytest.fixture(scope="module")
def start_control_plane(
    tmp_path_factory: pytest.TempPathFactory, _no_control_plane_outlives_the_session: None
) -> Iterator[StartControlPlane]:
    """A factory: each call starts a fresh control plane (its own etcd, PKI and ports), stopped at module end."""
    started: list[ControlPlane] = []

    def start(apiserver_args: Sequence[str] = ()) -> ControlPlane:
        plane = ControlPlane.start(
            Path(tmp_path_factory.mktemp("controlplane")), minor=MINOR, apiserver_args=apiserver_args
        )
        started.append(plane)
        return plane

    yield start
    for plane in started:
        plane.stop()


def leftover_processes(binaries: build.Binaries | None) -> list[str]:
    """Processes still running one of the control plane's binaries (by /proc/<pid>/exe)."""
    if binaries is None:
        return []
    left = []
    for exe in Path("/proc").glob("[0-9]*/exe"):
        try:
            target = exe.readlink()
        except OSError:  # gone, or not ours to read
            continue
        if target.parent == binaries.directory:
            left.append(f"{exe.parent.name}:{target.name}")
    return left


@pytest.fixture(scope="module")
def control_plane(start_control_plane: StartControlPlane) -> ControlPlane:
    """One control plane shared by a module's tests that only read from it or use namespaces of their own."""
    return start_control_plane()


def start_stack_nodes(plane: ControlPlane, stack: str) -> NodeRunner:
    """Simulated nodes shaped like every VM of `stack` (stopped by the caller)."""
    return plane.simulated_nodes(stack_node_shapes(load_settings(stack)))
