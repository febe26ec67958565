"""vcsim, VMware's vCenter simulator (govmomi's `simulator` package, what terraform-provider-vsphere tests
against), built from tools/vcsim/go.mod with the pinned Go and started on 127.0.0.1 for a test.

    .venv/bin/python -m tools.lab.vcsim build     # build (or find) the binary, print its path
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from tools.controlplane.build import BuildError, cache_root, go_build_env, go_toolchain

MODULE = Path(__file__).resolve().parents[1] / "vcsim"


def _digest() -> str:
    sources = [*sorted(MODULE.glob("*.go")), MODULE / "go.mod", MODULE / "go.sum"]
    return hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in sources)).hexdigest()[:16]


def build(log: bool = True) -> Path:
    """The vcsim binary for the pinned module, built once per machine (Go's caches make a rebuild fast)."""
    target = cache_root().parent / "vcsim" / _digest() / "vcsim"
    if target.is_file():
        return target
    go = go_toolchain(log=log)
    target.parent.parent.mkdir(parents=True, exist_ok=True)
    env = go_build_env(go)
    if log:
        print(f"==> building vcsim (tools/vcsim, govmomi's simulator) with {go}", flush=True)
    with tempfile.TemporaryDirectory(dir=target.parent.parent) as scratch:
        out = Path(scratch) / "vcsim"
        command = [str(go), "build", "-ldflags=-s -w", "-o", str(out), "."]
        result = subprocess.run(command, cwd=MODULE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            output = result.stdout.decode(errors="replace")[-4000:]
            raise BuildError(f"`{' '.join(command)}` in {MODULE} failed:\n{output}")
        target.parent.mkdir(parents=True, exist_ok=True)
        out.rename(target)
    for stale in target.parent.parent.iterdir():
        if stale != target.parent and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return target


class Vcsim:
    """A running simulator: one datacenter (DC0), a cluster of three hosts (DC0_C0), VMs powered on.
    Only `user`/`password` may log in, as on a real vCenter."""

    def __init__(self, user: str = "svc-dsaas@vsphere.local", password: str = "vcsim-lab-password") -> None:
        self.user = user
        self.password = password
        self._process: subprocess.Popen[str] | None = None
        self.host = ""
        self.port = 0

    @property
    def server(self) -> str:
        """What `vsphere:vsphereServer` would hold: host and port."""
        return f"{self.host}:{self.port}"

    def start(self) -> Vcsim:
        self._process = subprocess.Popen(
            [str(build(log=False)), "-l", "127.0.0.1:0", "-username", self.user, "-password", self.password],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line:
            self.stop()
            raise RuntimeError("vcsim exited before it printed its URL")
        url = urlsplit(line)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 443
        return self

    def stop(self) -> None:
        if self._process is not None:
            if self._process.stdin is not None:
                self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def __enter__(self) -> Vcsim:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.lab.vcsim", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("build",), help="build: build or find the binary and print its path")
    parser.parse_args(argv)
    try:
        print(build())
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
