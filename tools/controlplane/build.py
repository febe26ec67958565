"""Build the test control plane's binaries from the pinned Go modules, once per machine.

The binaries land in `$XDG_CACHE_HOME/dsaas/controlplane/<minor>-<digest>/bin` (default `~/.cache`), where
the digest covers the go.mod, go.sum and our own Go sources: a changed pin builds anew, an unchanged one
is found again. Go's own module and build caches (in `$HOME`) make a rebuild after a pin change fast.

Go itself is pinned too. A `go` on PATH of exactly that release is used; otherwise the same release is
taken from the Go module proxy (module `golang.org/toolchain`, the archive `GOTOOLCHAIN` switching
downloads), checked against the SHA-256 below and unpacked into the cache. Debian 12's own Go (1.19) is
too old for Kubernetes 1.34+, which needs Go 1.24+.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from config import versions

HERE = Path(__file__).resolve().parent

GO_RELEASE = "go1.26.8"
# sha256 of https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go1.26.8.linux-amd64.zip (downloaded
# 2026-12-03; the same archive `GOTOOLCHAIN=go1.26.8` fetches and checks against sum.golang.org).
GO_TOOLCHAIN_SHA256 = "30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7"
GO_TOOLCHAIN_MODULE_VERSION = f"v0.0.1-{GO_RELEASE}.linux-amd64"

# Each supported Kubernetes minor has its own module file (go's -modfile; its go.sum is beside it with
# .sum). The stack's default minor uses go.mod itself, so `go mod tidy` in this folder keeps it honest.
MODULE_FILES: dict[str, str] = {"1.34": "k8s-1.34.mod", "1.35": "go.mod", "1.36": "k8s-1.36.mod"}
PACKAGES = (
    "k8s.io/kubernetes/cmd/kube-apiserver",
    "k8s.io/kubernetes/cmd/kube-controller-manager",
    "k8s.io/kubernetes/cmd/kube-scheduler",
    "./cmd/etcd",
)
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")


class BuildError(RuntimeError):
    """The control plane could not be built; the message says what to do."""


def default_minor() -> str:
    return ".".join(versions.DEFAULT_KUBERNETES_VERSION.split(".")[:2])


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dsaas" / "controlplane"


def module_file(minor: str) -> Path:
    if minor not in MODULE_FILES:
        raise BuildError(
            f"Kubernetes {minor} has no pinned control plane; supported: {', '.join(sorted(MODULE_FILES))} "
            "(tools/controlplane/build.py MODULE_FILES)."
        )
    return HERE / MODULE_FILES[minor]


def pinned_kubernetes_version(minor: str) -> str:
    """The k8s.io/kubernetes version the minor's module file requires (e.g. v1.35.4)."""
    for line in module_file(minor).read_text().splitlines():
        parts = line.split("//")[0].split()
        if parts[:1] == ["require"]:
            parts = parts[1:]
        if len(parts) == 2 and parts[0] == "k8s.io/kubernetes":
            return parts[1]
    raise BuildError(f"{module_file(minor)} requires no k8s.io/kubernetes")


def version_ldflags(kubernetes_version: str) -> str:
    """What Kubernetes' own build stamps into its binaries (hack/lib/version.sh, kube::version::ldflags):
    without it /version says v0.0.0-master and version-dependent behaviour (Pod Security's `latest`,
    skew checks, clients reading /version) sees no release."""
    major, minor = kubernetes_version.removeprefix("v").split(".")[:2]
    values = {
        "gitVersion": kubernetes_version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",  # reproducible builds
    }
    return " ".join(
        f"-X {package}.{name}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for name, value in values.items()
    )


def source_digest(minor: str) -> str:
    mod = module_file(minor)
    digest = hashlib.sha256(GO_RELEASE.encode())
    digest.update(version_ldflags(pinned_kubernetes_version(minor)).encode())
    for path in [mod, mod.with_suffix(".sum"), *sorted((HERE / "cmd").rglob("*.go"))]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Binaries:
    minor: str
    kubernetes_version: str
    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name


def installed(minor: str) -> Binaries | None:
    """The cached build for `minor`, if all its binaries are there."""
    directory = cache_root() / f"{minor}-{source_digest(minor)}" / "bin"
    if all((directory / name).is_file() for name in BINARIES):
        return Binaries(minor, pinned_kubernetes_version(minor), directory)
    return None


def _go_version(go: str) -> str | None:
    try:
        out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _proxy_base() -> str:
    for entry in os.environ.get("GOPROXY", "https://proxy.golang.org").replace("|", ",").split(","):
        if entry.startswith(("http://", "https://")):
            return entry.rstrip("/")
    return "https://proxy.golang.org"


def go_build_env(go: Path) -> dict[str, str]:
    """The environment every pinned Go build here runs in: exactly this `go`, the go.sum as written, no
    network toolchain switch, no cgo, reproducible paths."""
    return {
        **os.environ,
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "-mod=readonly -trimpath -buildvcs=false",
        "CGO_ENABLED": "0",
        "PATH": f"{go.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def go_toolchain(log: bool = True) -> Path:
    """A `go` binary of exactly GO_RELEASE: the one on PATH, or the pinned archive from the module proxy."""
    on_path = shutil.which("go")
    if on_path and _go_version(on_path) == GO_RELEASE:
        return Path(on_path)
    root = cache_root() / "toolchains" / GO_RELEASE
    go = root / "bin" / "go"
    if go.is_file() and _go_version(str(go)) == GO_RELEASE:
        return go
    url = f"{_proxy_base()}/golang.org/toolchain/@v/{GO_TOOLCHAIN_MODULE_VERSION}.zip"
    if log:
        print(f"==> fetching {GO_RELEASE} from the Go module proxy: {url}", flush=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent) as scratch:
        archive = Path(scratch) / "toolchain.zip"
        try:
            with urllib.request.urlopen(url, timeout=300) as response, archive.open("wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as error:
            raise BuildError(
                f"could not download Go {GO_RELEASE} from {url}: {error}. Install Go {GO_RELEASE} on PATH, "
                "or set GOPROXY to a proxy that serves golang.org/toolchain."
            ) from error
        actual = hashlib.sha256(archive.read_bytes()).hexdigest()
        if actual != GO_TOOLCHAIN_SHA256:
            raise BuildError(f"{url} has sha256 {actual}, expected {GO_TOOLCHAIN_SHA256}: refusing to use it")
        prefix = f"golang.org/toolchain@{GO_TOOLCHAIN_MODULE_VERSION}/"
        unpacked = Path(scratch) / "go"
        with zipfile.ZipFile(archive) as zipped:
            for member in zipped.infolist():
                if not member.filename.startswith(prefix) or member.is_dir():
                    continue
                target = unpacked / member.filename.removeprefix(prefix)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(member) as source, target.open("wb") as sink:
                    shutil.copyfileobj(source, sink)
        # Module zips carry no file modes: the toolchain's programs are what `go` runs.
        for executable in [*unpacked.glob("bin/*"), *unpacked.glob("pkg/tool/*/*")]:
            executable.chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)
        unpacked.rename(root)
    return go


def build(minor: str | None = None, log: bool = True) -> Binaries:
    """The binaries for `minor` (default: the stack's default minor), building them if not cached."""
    minor = minor or default_minor()
    found = installed(minor)
    if found is not None:
        return found
    go = go_toolchain(log=log)
    target = cache_root() / f"{minor}-{source_digest(minor)}"
    target.parent.mkdir(parents=True, exist_ok=True)
    env = go_build_env(go)
    started = time.monotonic()
    if log:
        print(f"==> building the Kubernetes {minor} control plane ({pinned_kubernetes_version(minor)}) with {go}")
        print("    (cold on 2 cores this takes several minutes; later runs reuse Go's caches in $HOME)", flush=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        out = Path(scratch) / "bin"
        out.mkdir()
        ldflags = f"-s -w {version_ldflags(pinned_kubernetes_version(minor))}"
        command = [
            str(go),
            "build",
            f"-modfile={module_file(minor).name}",
            f"-ldflags={ldflags}",
            "-o",
            f"{out}/",
            *PACKAGES,
        ]
        result = subprocess.run(command, cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            raise BuildError(
                f"`{' '.join(command)}` in {HERE} failed:\n{result.stdout.decode(errors='replace')[-4000:]}"
            )
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        out.rename(target / "bin")
    if log:
        print(f"==> built in {time.monotonic() - started:.0f} s: {target / 'bin'}", flush=True)
    # Earlier pins of this minor are never used again (each build is ~420 MB).
    for stale in target.parent.glob(f"{minor}-*"):
        if stale != target and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    found = installed(minor)
    assert found is not None
    return found


def command(minor: str | None) -> int:
    """`python -m tools.controlplane build [--minor M]` (tools/controlplane/__main__.py)."""
    try:
        binaries = build(minor)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Kubernetes {binaries.kubernetes_version} control plane: {binaries.directory}")
    return 0
