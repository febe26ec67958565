"""The object list the admission tests apply: complete, in creation order, from vendored files that are
what their manifest says (pure; no control plane)."""

from __future__ import annotations

from pathlib import Path

import pytest

from components import trident_render
from config import versions
from tests.conftest import STACKS
from tools.controlplane import objects, upstream
from tools.offline.mockgraph import Graph

EXTRACT_SOURCE = """package k8sclient

const other = `x`

const tridentBackendConfigCRDYAMLv1 = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition`

const after = `y`
"""


def test_every_vendored_file_has_its_recorded_digest() -> None:
    assert upstream.mismatches() == []


def test_an_altered_vendored_file_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = upstream.vendored("trident-backendconfig-crd")
    copy = tmp_path / source.directory.name
    copy.mkdir()
    for path in [*(f.path for f in source.files), *(str(i["file"]) for i in source.entry["licenses"])]:
        (copy / path).write_bytes(source.file(path).read_bytes())
    (copy / source.files[0].path).write_text("kind: Changed\n")
    monkeypatch.setattr(upstream, "MANIFESTS_DIR", copy.parent)
    found = [m for m in upstream.mismatches() if m.startswith("trident-backendconfig-crd")]
    assert len(found) == 1 and "tridentbackendconfigs" in found[0]


def test_a_go_constant_is_extracted_byte_for_byte_with_its_lines() -> None:
    text, first, last = upstream.go_string_constant(EXTRACT_SOURCE, "tridentBackendConfigCRDYAMLv1")
    assert text == "\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition"
    assert (first, last) == (5, 7)
    with pytest.raises(upstream.UpstreamError):
        upstream.go_string_constant(EXTRACT_SOURCE, "missing")


def test_the_vendored_sources_are_the_refs_the_program_pins() -> None:
    refs = {s.name: (s.entry["source"].get("tag"), s.entry["source"]["commit"]) for s in upstream.load_manifest()}
    assert refs["snapshot-crds"] == (versions.EXTERNAL_SNAPSHOTTER_VERSION, versions.EXTERNAL_SNAPSHOTTER_COMMIT)
    assert refs["snapshot-controller"][1] == versions.SNAPSHOT_CONTROLLER_MANIFEST_REF
    assert refs["trident-backendconfig-crd"][0] == f"v{versions.TRIDENT_VERSION}"
    crd = objects.trident_runtime_crd("storage-operator").document
    assert crd["metadata"]["name"] in trident_render.TRIDENT_RUNTIME_CRDS
    assert crd["spec"]["names"]["kind"] == "TridentBackendConfig"


@pytest.mark.parametrize("stack", STACKS)
def test_every_object_comes_in_creation_order(graphs: dict[str, Graph], stack: str) -> None:
    found = objects.program_objects(graphs[stack])
    keys = [o.key for o in found]
    assert len(keys) == len(set(keys)), "an object twice"
    sources = {o.source.split(":")[0] for o in found}
    assert {"snapshot-crds", "snapshot-controller", "helm createNamespace"} <= sources
    files = {o.source.split(":", 1)[1] for o in found if o.source.startswith("snapshot-")}
    assert files == set(trident_render.SNAPSHOT_CRD_FILES) | set(trident_render.SNAPSHOT_CONTROLLER_FILES)
    # each backend after the operator's run-time CRD, each release's CRDs before the rest of it
    crd = keys.index("CustomResourceDefinition tridentbackendconfigs.trident.netapp.io")
    assert all(keys.index(o.key) > crd for o in found if o.kind == "TridentBackendConfig")
    for release in {o.resource for o in found if o.source.startswith("crds/")}:
        # (the Trident operator's own CRD comes after its release: the operator makes it once running)
        mine = [o for o in found if o.resource == release and not o.source.startswith("trident-operator (")]
        first_other = next(i for i, o in enumerate(mine) if o.kind != "CustomResourceDefinition")
        assert all(o.kind != "CustomResourceDefinition" for o in mine[first_other:])
    # pre-install hooks before the release's plain objects, the namespace first
    hub = [o for o in found if o.resource == "hub-release"]
    hooks = [i for i, o in enumerate(hub) if o.hook]
    assert hooks == list(range(len(hooks))) and hooks


def test_an_object_before_its_crd_or_namespace_is_refused() -> None:
    crd = objects.trident_runtime_crd("r")
    backend = objects.ProgramObject(
        {"apiVersion": "trident.netapp.io/v1", "kind": "TridentBackendConfig", "metadata": {"name": "b"}},
        "r",
        "graph",
    )
    with pytest.raises(ValueError, match="before the CRD"):
        objects._check_order([backend, crd])
    stray = objects.ProgramObject(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "nowhere"}}, "r", "graph"
    )
    with pytest.raises(ValueError, match="before its namespace"):
        objects._check_order([stray])


def test_a_file_the_program_fetches_must_be_vendored() -> None:
    with pytest.raises(upstream.UpstreamError, match="not vendored"):
        objects.remote_file(f"{versions.EXTERNAL_SNAPSHOTTER_RAW_URL}/v9.9.9/client/config/crd/x.yaml")
