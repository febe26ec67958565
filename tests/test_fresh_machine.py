"""The fresh-machine check (tools/ci/fresh_machine.sh, run by .ci/run): shellcheck-clean, and what it runs
inside the fresh Debian root is read from the README: its prerequisites and its two commands, as written."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT_DIR, require_tool

SCRIPT = Path(ROOT_DIR) / "tools" / "ci" / "fresh_machine.sh"
CI_RUN = Path(ROOT_DIR) / ".ci" / "run"


@pytest.mark.parametrize("path", [SCRIPT, CI_RUN], ids=lambda p: p.name)
def test_is_shellcheck_clean(path: Path) -> None:
    result = subprocess.run(
        [require_tool("shellcheck"), "--severity=style", "--shell=bash", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_runs_the_readme_prerequisites_and_commands_as_written() -> None:
    result = subprocess.run(["bash", str(SCRIPT), "--plan"], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == [
        "prerequisites (README.md, ## Prerequisites), as root in the fresh root:",
        "  apt-get update",
        "  apt-get install -y git make python3-venv",
        "commands (README.md, first block), in a clone at /root/dsaas:",
        "  make preview STACK=prod",
        "  make test",
    ]


def test_ci_runs_the_readme_test_command_and_the_fresh_machine() -> None:
    """Both at once, each in a process group of its own, and CI fails when either does."""
    lines = [line for line in CI_RUN.read_text().splitlines() if line and not line.startswith("#")]
    assert "setsid make test &" in lines
    assert 'setsid bash tools/ci/fresh_machine.sh >"$fresh_log" 2>&1 &' in lines
    assert lines[-1] == "((here == 0 && fresh == 0))"
