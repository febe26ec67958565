"""The operator commands' own arguments (issue 22): stack names, `tools.new_stack`'s example and target,
`tools.ldap_check`'s flags. Each refusal is exit 2 with `error:` naming the argument and the fix, no traceback,
and nothing written outside the config folder."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ROOT_DIR
from tests.fuzz import fuzz
from tools.dr import command as restore_command
from tools.offline import preview
from tools.preflight import ldap_check, new_stack, s3_check, try_hub

COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "preview": lambda args: preview.main(args),
    "restore": lambda args: restore_command.main(["plan", *args]),
    "s3_check": lambda args: s3_check.main(args),
    "ldap_check": lambda args: ldap_check.main([args[0], "alice", *args[1:]]),
}


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    folder.mkdir()
    for stack in ("dev", "prod"):
        (folder / f"Pulumi.{stack}.yaml").write_text(
            (ROOT_DIR / "config" / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"), encoding="utf-8"
        )
    return folder


def refused(capsys: pytest.CaptureFixture[str], code: int, *expected: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error:") and "Traceback" not in err and "Fix" in err, err
    for text in expected:
        assert text in err, err
    return err


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("stack", ["s" * 300, "ü" * 200, "../prod", "a/b", ""])
def test_a_stack_name_no_stack_can_have_is_refused(
    name: str, stack: str, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = COMMANDS[name]([stack, "--config-dir", str(config_dir)])
    refused(capsys, code, "is not a stack name")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_tab_in_the_stack_file_is_named_with_its_fix(
    name: str, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 27: the right line, but the fix described the whole file instead of the tab."""
    path = config_dir / "Pulumi.prod.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("    ") and line.strip())
    lines[row] = "\t" + lines[row].lstrip()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = COMMANDS[name](["prod", "--config-dir", str(config_dir)])
    refused(
        capsys, code, f"Fix: replace the tab at line {row + 1}, column 1 with spaces: YAML indents with spaces only"
    )


# --- tools.new_stack -----------------------------------------------------------------------------


def test_new_stack_never_writes_through_a_dangling_link(
    config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside.yaml"
    os.symlink(outside, config_dir / "Pulumi.mine.yaml")
    code = new_stack.main(["prod", "mine", "--config-dir", str(config_dir)])
    refused(capsys, code, "exists already")
    assert not outside.exists()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda folder: (folder / "Pulumi.ex.yaml").mkdir(), "a folder"),
        (lambda folder: (folder / "Pulumi.ex.yaml").write_bytes(b"config:\n  dsaas:x: \xff\n"), "not UTF-8"),
        (lambda folder: (folder / "Pulumi.ex.yaml").write_bytes(b"#" * (new_stack.MAX_EXAMPLE_BYTES + 1)), "larger"),
        (lambda folder: None, "no stack file"),
    ],
)
def test_new_stack_refuses_an_example_that_is_no_stack_file(
    make: Callable[[Path], object], expected: str, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make(config_dir)
    code = new_stack.main(["ex", "mine", "--config-dir", str(config_dir)])
    refused(capsys, code, expected)
    assert not (config_dir / "Pulumi.mine.yaml").exists()


@pytest.mark.parametrize("example", ["e" * 300, "../config/Pulumi.prod", "\udcff"])
def test_new_stack_refuses_an_example_name_no_stack_can_have(
    example: str, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refused(capsys, new_stack.main([example, "mine", "--config-dir", str(config_dir)]), "is not a stack name")


@fuzz(150)
@given(
    example=st.one_of(st.text(max_size=12), st.sampled_from(["prod", "dev"])),
    name=st.one_of(st.text(max_size=120), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,110}", fullmatch=True)),
)
def test_new_stack_with_any_names_writes_only_its_own_file(example: str, name: str, tmp_path: Path) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path)) / "config"
    folder.mkdir()
    (folder / "Pulumi.prod.yaml").write_text((ROOT_DIR / "config/Pulumi.prod.yaml").read_text(), encoding="utf-8")
    before = set(folder.parent.rglob("*"))
    parsed = True
    try:
        code = new_stack.main([example, name, "--config-dir", str(folder)])
    except SystemExit as exit_:  # argparse's own: a name like `-x` reads as an option (2), `-h` asks for help (0)
        code, parsed = int(exit_.code or 0), False
    created = set(folder.parent.rglob("*")) - before
    assert code in (0, 2)
    if code == 0 and parsed:
        assert created == {folder / f"Pulumi.{name}.yaml"}
    else:
        assert not created


@pytest.mark.parametrize(("name", "cluster"), [("uni-x", "dsaas-uni-x"), ("Lab2", "dsaas-lab2"), ("a.b", None)])
def test_new_stack_makes_the_copy_its_own(
    name: str, cluster: str | None, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 27: the copy kept the example's clusterName (VM and host names), its self-description and logo."""
    assert new_stack.main(["prod", name, "--config-dir", str(config_dir)]) == 0
    out = capsys.readouterr().out
    text = (config_dir / f"Pulumi.{name}.yaml").read_text(encoding="utf-8")
    values = yaml.safe_load(text)["config"]
    assert values["dsaas:clusterName"] == (cluster or "dsaas-prod")
    assert text.startswith(f"# Stack {name}, made by tools.new_stack from the example prod.")
    assert "# Production:" not in text
    comments = [line.strip() for line in text.splitlines() if line.strip().startswith("#")][2:]
    assert comments and all(line.startswith("# example: ") for line in comments)
    assert (f"dsaas:clusterName is {cluster}" if cluster else "dsaas:clusterName is still the example's") in out
    assert "dsaas:hub.branding still names the example's config/branding/logo.svg" in out
    # the settings are those of the example, apart from the name and the secrets
    assert new_stack.main(["prod", f"{name}-again", "--config-dir", str(config_dir), "--keep-cluster-name"]) == 0
    kept = yaml.safe_load((config_dir / f"Pulumi.{name}-again.yaml").read_text(encoding="utf-8"))["config"]
    assert kept["dsaas:clusterName"] == "dsaas-prod"  # rebuilding: the backups are under the old name
    assert "dsaas:clusterName is the example's (--keep-cluster-name)" in capsys.readouterr().out
    example = yaml.safe_load((config_dir / "Pulumi.prod.yaml").read_text(encoding="utf-8"))["config"]
    assert {k for k in example if k not in values} == {
        k for k, v in example.items() if isinstance(v, dict) and "secure" in v
    }


# --- tools.ldap_check's flags --------------------------------------------------------------------


def _without_ldap(config_dir: Path, drop: str) -> None:
    path = config_dir / "Pulumi.dev.yaml"
    stack = yaml.safe_load(path.read_text(encoding="utf-8"))
    if drop == "hub":
        stack["config"].pop("dsaas:hub")
    else:
        stack["config"]["dsaas:hub"].pop("ldap")
    path.write_text(yaml.safe_dump(stack), encoding="utf-8")


@pytest.mark.parametrize("drop", ["hub", "ldap"])
def test_ldap_url_on_a_stack_without_ldap_settings_is_explained(
    drop: str, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _without_ldap(config_dir, drop)
    code = ldap_check.main(["dev", "alice", "--ldap-url", "ldap://127.0.0.1:389", "--config-dir", str(config_dir)])
    refused(capsys, code, "dsaas:hub.ldap")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ldap://[::1]:389", "IPv6"),
        ("", "--ldap-url"),
        ("ldap://host:99999", "port"),
        ("http://host", "--ldap-url"),
        ("ldap://user:pw@host", "only a scheme"),
    ],
)
def test_a_bad_ldap_url_is_blamed_on_the_flag(
    url: str, expected: str, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = ldap_check.main(["dev", "alice", "--ldap-url", url, "--config-dir", str(config_dir)])
    err = refused(capsys, code, expected)
    assert "serverAddress" not in err


@pytest.mark.parametrize("content", [None, b"not a certificate"])
def test_a_bad_ca_file_flag_is_refused_not_called_a_bug(
    content: bytes | None, config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_bytes(content)
    code = ldap_check.main(["dev", "alice", "--ca-file", str(ca), "--config-dir", str(config_dir)])
    err = refused(capsys, code, "--ca-file")
    assert "bug" not in err


def test_a_closed_port_given_with_the_flag_is_blamed_on_the_flag(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        url = f"ldap://127.0.0.1:{port}"
        code = ldap_check.main(["dev", "alice", "--ldap-url", url, "--config-dir", str(config_dir)])
    out = capsys.readouterr().out
    assert code == 2 and f"check --ldap-url {url}" in out and "serverAddress" not in out, out


# --- tools.try_hub: user servers are local processes ------------------------------------------------


def test_try_hub_refuses_root_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def never(*_: object, **__: object) -> None:
        raise AssertionError("no hub may start as root")

    monkeypatch.setattr("tools.preflight.try_hub.os.geteuid", lambda: 0)
    monkeypatch.setattr(try_hub, "running_stack_hub", never)
    assert try_hub.main(["prod", "--ldap-url", "ldaps://ad.example.org:636"]) == 2
    error = capsys.readouterr().err
    assert "refusing to run as root" in error and "--allow-root" in error and "root shell" in error


def test_try_hub_says_loudly_that_servers_are_not_isolated(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        try_hub.main(["--help"])
    assert "NO ISOLATION" in capsys.readouterr().out
    warning = try_hub.isolation_warning("alice", "ldaps://ad.example.org:636")
    assert "NO ISOLATION" in warning and "'alice'" in warning and "ldaps://ad.example.org:636" in warning
    assert try_hub.root_problem(0, allow_root=True) is None and try_hub.root_problem(1000, allow_root=False) is None
    assert try_hub.root_problem(0, allow_root=False, smoke=True) is None  # one scripted login, then it stops


def test_try_hub_takes_a_ca_file_only_for_a_real_directory(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tools.lab import pki

    ca = tmp_path / "corp-ca.pem"
    pki.make_ca("corp CA").write_cert(ca)
    seen: dict[str, object] = {}

    def record(*_: object, **kwargs: object) -> None:
        seen.update(kwargs)
        raise ValueError("recorded")

    monkeypatch.setattr(try_hub, "running_stack_hub", record)
    assert try_hub.main(["prod", "--stack-server", "--ca-file", str(ca), "--allow-root"]) == 2
    assert seen["stack_server"] is True and seen["ca_file"] == ca and seen["ldap_url"] is None
    with pytest.raises(SystemExit):
        try_hub.main(["prod", "--ca-file", str(ca), "--allow-root"])
    assert "--ca-file is your directory's CA" in capsys.readouterr().err
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    assert try_hub.main(["prod", "--stack-server", "--ca-file", str(not_pem), "--allow-root"]) == 2
    assert "holds no readable PEM certificate" in capsys.readouterr().err


def test_the_ca_file_becomes_the_stacks_ca(tmp_path: Path) -> None:
    from config.settings import parse_settings, project_file
    from tools.lab import pki
    from tools.lab.stack_hub import stack_settings_values, with_ca_file

    ca = tmp_path / "corp-ca.pem"
    pki.make_ca("corp CA").write_cert(ca)
    settings = parse_settings(with_ca_file(stack_settings_values("prod"), ca))
    assert settings.hub.ldap.ca_file is not None
    assert project_file(settings.hub.ldap.ca_file).read_bytes() == ca.read_bytes()


def test_try_hub_on_a_fresh_clone_names_make_setup_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 27: without the proxy (a fresh clone after `make preview`) try_hub ended in a traceback."""

    def never(*_: object, **__: object) -> None:
        raise AssertionError("nothing may start without the prerequisites")

    absent = tmp_path / "node_modules" / ".bin" / "configurable-http-proxy"
    monkeypatch.setattr(try_hub, "PROXY_BIN", absent)
    monkeypatch.setattr(try_hub, "running_stack_hub", never)
    monkeypatch.setattr("tools.preflight.try_hub.os.geteuid", lambda: 1000)
    monkeypatch.setattr(try_hub, "SLAPD", str(tmp_path / "slapd"))
    assert try_hub.main(["dev", "--smoke"]) == 2
    error = capsys.readouterr().err
    assert error == (
        f"error: the hub's proxy ({absent}) and slapd ({tmp_path / 'slapd'}) for the throwaway directory are not "
        "installed. Fix: run `make setup` once (it installs what try_hub runs)\n"
    )
    # a real directory needs no slapd
    assert try_hub.missing_prerequisites(False, absent, str(tmp_path / "slapd")) == (
        f"the hub's proxy ({absent}) is not installed. Fix: run `make setup` once (it installs what try_hub runs)"
    )
    assert try_hub.missing_prerequisites(True, Path(__file__), __file__) is None
