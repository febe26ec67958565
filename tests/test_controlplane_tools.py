"""The control plane's build pins and its client's parsing, without starting anything."""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import versions
from tools.controlplane import build
from tools.controlplane.client import parse_warnings


def test_the_default_minor_is_the_stacks_and_every_supported_minor_has_a_module_file() -> None:
    assert build.default_minor() == ".".join(versions.DEFAULT_KUBERNETES_VERSION.split(".")[:2])
    assert set(build.MODULE_FILES) == set(versions.SUPPORTED_KUBERNETES_MINORS)
    for minor in build.MODULE_FILES:
        assert build.module_file(minor).is_file()
        assert build.module_file(minor).with_suffix(".sum").is_file(), f"{minor}: no go.sum beside its module file"


@pytest.mark.parametrize("minor", sorted(build.MODULE_FILES))
def test_each_module_file_replaces_every_staging_module_with_the_same_release(minor: str) -> None:
    """k8s.io/kubernetes requires its staging modules at v0.0.0; a mix of releases would not build, or
    worse, build an API server whose libraries disagree with it."""
    text = build.module_file(minor).read_text()
    kubernetes = build.pinned_kubernetes_version(minor)
    assert re.fullmatch(rf"v{re.escape(minor)}\.\d+", kubernetes), kubernetes
    staging = re.findall(r"^\s+(k8s\.io/[a-z-]+) => (k8s\.io/[a-z-]+) (v\S+)$", text, flags=re.MULTILINE)
    assert len(staging) >= 29, "every staging module k8s.io/kubernetes names needs a replace line"
    for name, target, version in staging:
        assert name == target
        assert version == "v0." + kubernetes.removeprefix("v1."), f"{name} at {version}, kubernetes {kubernetes}"


def test_the_binaries_carry_the_release_kubernetes_own_build_stamps() -> None:
    flags = build.version_ldflags("v1.35.4")
    assert "-X k8s.io/component-base/version.gitVersion=v1.35.4" in flags
    assert "-X k8s.io/component-base/version.gitMinor=35" in flags
    assert "-X k8s.io/client-go/pkg/version.gitVersion=v1.35.4" in flags


def test_an_unsupported_minor_is_refused_with_the_supported_ones() -> None:
    with pytest.raises(build.BuildError, match=r"supported: 1\.34, 1\.35, 1\.36"):
        build.module_file("1.29")


def test_warning_headers_are_read_as_apimachinery_writes_them() -> None:
    # k8s.io/apimachinery/pkg/util/net/http.go NewWarningHeader: 299 - "<escaped text>"
    headers = [
        '299 - "spec.template.spec.containers[0].env[1]: hides previous definition of \\"A\\""',
        '299 - "metadata.finalizers: \\"x\\": prefer a domain-qualified finalizer name", 299 - "second"',
    ]
    assert parse_warnings(headers) == (
        'spec.template.spec.containers[0].env[1]: hides previous definition of "A"',
        'metadata.finalizers: "x": prefer a domain-qualified finalizer name',
        "second",
    )


@pytest.fixture
def toolchain_proxy(tmp_path: Path) -> Iterator[str]:
    """A module proxy on 127.0.0.1 that serves a toolchain archive that is not the pinned one."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(f"golang.org/toolchain@{build.GO_TOOLCHAIN_MODULE_VERSION}/bin/go", "#!/bin/sh\necho evil\n")
    body = archive.getvalue()
    assert hashlib.sha256(body).hexdigest() != build.GO_TOOLCHAIN_SHA256

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_toolchain_archive_that_is_not_the_pinned_one_is_refused(
    toolchain_proxy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("GOPROXY", f"{toolchain_proxy},direct")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no go of the pinned release
    with pytest.raises(build.BuildError, match="refusing to use it"):
        build.go_toolchain(log=False)
    assert not (tmp_path / "cache" / "dsaas" / "controlplane" / "toolchains" / build.GO_RELEASE).exists()
