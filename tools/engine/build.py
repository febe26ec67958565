"""Build the real Pulumi engine's binaries from pinned Go modules, once per machine.

Each binary has a folder here with its own go.mod/go.sum (modules whose dependencies conflict cannot share
one): `cli/` builds the Pulumi CLI, `github.com/pulumi/pulumi/pkg/v3/cmd/pulumi`. The binaries land in
`$XDG_CACHE_HOME/dsaas/engine/<digest>/bin` (default `~/.cache`), the digest covering Go's release, the
link flags and every go.mod/go.sum here: a changed pin builds anew, an unchanged one is found again.
`pulumi_home()` beside it is the PULUMI_HOME the suite gives the CLI, so plugins installed with
`pulumi plugin install resource NAME VERSION --file BINARY` belong to that build and nothing is downloaded.

Go itself is the control plane's pinned release (tools/controlplane/build.py, imported, not repeated).

Measured on the 2-core machine (2026-12-04, empty GOCACHE and GOMODCACHE, other builds running): the CLI
is 20 s of module download (16 CPU-s) and 8 min of compiling (425 CPU-s); the binary is 122 MB.

What the Go module proxy refused (HTTP 403 "This module version is not available", for the version list
and for the exact version asked), so what this cannot build yet and the suite cannot run:
- the Python language host, `github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3`: the
  CLI cannot run the Python program without it, so no `pulumi preview` of this project;
- the providers at the releases requirements.txt pins: `pulumi-command/provider` (v1.2.1's commit
  7f3eb6f3b77c asked as a pseudo-version), `pulumi-random/provider/v4` v4.21.4, `pulumi-tls/provider/v5`
  v5.6.2, `pulumi-vsphere/provider/v4` v4.18.2, `pulumi-kubernetes/provider/v4` v4.34.2 (the proxy lists
  only one pseudo-version of it, from January 2026, before v4.26.0).
Even a served provider needs more than `go build` of its cmd: pulumi-kubernetes' main embeds
schema-embed.json, which its release build generates and git ignores, so the module lacks it. A probe of
that January pseudo-version (not pinned, not kept), a main of our own serving the module's schema.json,
compiled in 845 CPU-s on top of the CLI's build cache (169 MB binary, 4.2 GB peak memory) and answered
GetSchema through `pulumi package get-schema`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools.controlplane.build import GO_RELEASE, BuildError, go_build_env, go_toolchain

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class GoBinary:
    """One binary: the main package, the folder of the go.mod that pins it, and where its version is stamped."""

    name: str
    module_dir: str
    package: str
    # The module whose required version is the binary's release (read from go.mod, never written twice).
    versioned_module: str
    # The variable the project's own release build sets with -ldflags -X; without it the binary reports no
    # version (the CLI says v0.0.0 and plugin version checks see a development build).
    version_variable: str
    tags: tuple[str, ...] = ()

    def go_mod(self) -> Path:
        return HERE / self.module_dir / "go.mod"

    def version(self) -> str:
        for line in self.go_mod().read_text().splitlines():
            parts = line.split("//")[0].split()
            if parts[:1] == ["require"]:
                parts = parts[1:]
            if len(parts) == 2 and parts[0] == self.versioned_module:
                return parts[1]
        raise BuildError(f"{self.go_mod()} requires no {self.versioned_module}")

    def ldflags(self) -> str:
        return f"-s -w -X {self.version_variable}={self.version()}"


BINARIES = (
    GoBinary(
        name="pulumi",
        module_dir="cli",
        package="github.com/pulumi/pulumi/pkg/v3/cmd/pulumi",
        versioned_module="github.com/pulumi/pulumi/pkg/v3",
        version_variable="github.com/pulumi/pulumi/sdk/v3/go/common/version.Version",
        # Pulumi's release build (.goreleaser.yml): the pure-Go os/user, and gRPC without x/net/trace.
        tags=("osusergo", "grpcnotrace"),
    ),
)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dsaas" / "engine"


def source_digest() -> str:
    digest = hashlib.sha256(GO_RELEASE.encode())
    for binary in BINARIES:
        digest.update(f"{binary.name} {binary.package} {binary.ldflags()} {','.join(binary.tags)}".encode())
        for path in (binary.go_mod(), binary.go_mod().with_suffix(".sum")):
            digest.update(f"{binary.module_dir}/{path.name}".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Engine:
    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / "bin" / name

    def pulumi_home(self) -> Path:
        return self.directory / "pulumi-home"


def installed() -> Engine | None:
    """The cached build of the current pins, if all its binaries are there."""
    engine = Engine(cache_root() / source_digest())
    if all(engine.path(binary.name).is_file() for binary in BINARIES):
        return engine
    return None


def build(log: bool = True) -> Engine:
    """The engine's binaries for the current pins, building them if not cached."""
    found = installed()
    if found is not None:
        return found
    go = go_toolchain(log=log)
    target = cache_root() / source_digest()
    target.parent.mkdir(parents=True, exist_ok=True)
    env = go_build_env(go)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        out = Path(scratch) / "bin"
        out.mkdir()
        for binary in BINARIES:
            started = time.monotonic()
            if log:
                print(f"==> building {binary.name} {binary.version()} with {go} (cold: ~7 CPU-minutes)", flush=True)
            command = [
                str(go),
                "build",
                f"-tags={','.join(binary.tags)}",
                f"-ldflags={binary.ldflags()}",
                "-o",
                str(out / binary.name),
                binary.package,
            ]
            cwd = HERE / binary.module_dir
            result = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if result.returncode != 0:
                raise BuildError(
                    f"`{' '.join(command)}` in {cwd} failed:\n{result.stdout.decode(errors='replace')[-4000:]}"
                )
            if log:
                print(f"    built in {time.monotonic() - started:.0f} s", flush=True)
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        out.rename(target / "bin")
    # Earlier pins are never used again (the CLI alone is ~120 MB).
    for stale in target.parent.iterdir():
        if stale != target and stale.is_dir() and not stale.name.startswith("tmp"):
            shutil.rmtree(stale, ignore_errors=True)
    found = installed()
    assert found is not None
    return found


def command() -> int:
    """`python -m tools.engine build` (tools/engine/__main__.py)."""
    try:
        engine = build()
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for binary in BINARIES:
        print(f"{binary.name} {binary.version()}: {engine.path(binary.name)}")
    return 0
