"""Shared fixtures: the recorded graph of each stack, and stack values to mutate in tests."""

from __future__ import annotations

import copy
import shutil
import sys
from collections.abc import Callable
from typing import Any

import pytest

from config.settings import Settings, parse_settings
from tools.offline.mockgraph import ROOT, Graph, project_defaults, read_stack_values, run_program

STACKS = ("dev", "prod")
# The policy pack's package, importable as the Pulumi CLI makes it (policies/ on sys.path).
if str(ROOT / "policies") not in sys.path:
    sys.path.insert(0, str(ROOT / "policies"))


def pytest_addoption(parser: pytest.Parser) -> None:
    # Pages generated from real runs (docs/admission.md and docs/access.md from control planes, the account
    # matrix in docs/directories.md from real directories) are rewritten by the test that compares them, so a
    # change of the program and of its pages lands in one commit. Here, not in tests/controlplane/ or
    # tests/e2e/: an option must be registered once, and only the root conftest is loaded by every run.
    parser.addoption(
        "--write-docs",
        action="store_true",
        default=False,
        help="rewrite the pages the tests generate (docs/admission.md, docs/access.md, the account matrix in "
        "docs/directories.md) instead of failing when they differ",
    )


def settings_values(stack: str) -> dict[str, Any]:
    """The `dsaas:*` values of a stack file with Pulumi.yaml defaults, as the program reads them."""
    return {
        key: value
        for key, value in {**project_defaults(), **read_stack_values(stack)}.items()
        if key.startswith("dsaas:")
    }


def load_settings(stack: str) -> Settings:
    return parse_settings(settings_values(stack))


@pytest.fixture(scope="session")
def graphs() -> dict[str, Graph]:
    return {stack: run_program(stack) for stack in STACKS}


@pytest.fixture
def stack_values() -> Callable[[str], dict[str, Any]]:
    """A deep copy of a stack file's config, safe to edit in a test."""
    return lambda stack: copy.deepcopy(read_stack_values(stack))


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run the README's test command (it installs it)")
    return path


__all__ = ["ROOT_DIR", "STACKS", "load_settings", "require_tool", "settings_values"]

ROOT_DIR = ROOT
