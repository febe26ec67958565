"""Certificates the stack names never expire unnoticed (issue 26, item 2): a CA file or the hub's certificate
chain that expires within config.model.EXPIRY_NOTICE_DAYS fails the preview, naming the setting, the
certificate and the date, with where a renewed one comes from; the hub's certificate must name the hub."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from config.loader import HUB_TLS_CERTIFICATE, hub_certificate_problems
from config.model import EXPIRY_NOTICE_DAYS
from config.settings import SettingsError
from tools.lab import pki
from tools.lab.stack_hub import project_copy
from tools.offline.mockgraph import run_program

HOST = "jupyter.dc.example.org"  # prod's dsaas:hub.hostname


def _ca_file(tmp_path: Path, days: float, name: str = "Hospital Root CA") -> str:
    return project_copy(pki.make_ca(name, days=days).write_cert(tmp_path / "ca.pem"), "ca.pem")


def _refused(values: dict[str, Any]) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        run_program("prod", values)
    return caught.value


@pytest.mark.parametrize(("days", "said"), [(10, "expires on"), (-3, "expired on")])
def test_a_ca_file_that_expires_within_the_notice_fails_the_preview(
    days: float, said: str, tmp_path: Path, stack_values: Callable[[str], dict[str, Any]]
) -> None:
    values = stack_values("prod")
    values["dsaas:hub"]["ldap"]["caFile"] = _ca_file(tmp_path, days, "Hospital Root CA")
    error = _refused(values)
    assert error.keys == ["dsaas:hub.ldap.caFile"]
    message = str(error)
    assert "'CN=Hospital Root CA'" in message and said in message and "renewed CA certificate" in message


def test_a_ca_file_with_time_left_passes(tmp_path: Path, stack_values: Callable[[str], dict[str, Any]]) -> None:
    values = stack_values("prod")
    values["dsaas:hub"]["ldap"]["caFile"] = _ca_file(tmp_path, EXPIRY_NOTICE_DAYS + 2)
    run_program("prod", values)


def _chain(days: float, hosts: tuple[str, ...] = (HOST,), ca_days: float = 3650) -> str:
    ca = pki.make_ca("Hospital Issuing CA", days=ca_days)
    server = pki.issue_server_cert(ca, list(hosts), days=days)
    return (server.cert_pem + ca.cert_pem).decode()


def test_the_hub_certificate_is_checked_for_its_name_and_its_time() -> None:
    assert hub_certificate_problems(_chain(90), HOST) == []
    assert hub_certificate_problems(_chain(90, ("*.dc.example.org",)), HOST) == []
    (wrong,) = hub_certificate_problems(_chain(90, ("other.example.org",)), HOST)
    assert f"not the hub's host name {HOST!r}" in str(wrong) and "DNS:" + HOST in str(wrong)
    (soon,) = hub_certificate_problems(_chain(12), HOST)
    assert f"'CN={HOST}' expires on" in str(soon) and "in 11 day(s)" in str(soon)
    assert "pulumi config set --secret dsaas:hubTlsCertificate" in str(soon)
    (issuer,) = hub_certificate_problems(_chain(90, ca_days=20), HOST)  # an intermediate ends the chain too
    assert "'CN=Hospital Issuing CA'" in str(issuer)
    (garbage,) = hub_certificate_problems("-----BEGIN CERTIFICATE-----\nnot base64\n", HOST)
    assert "no readable PEM certificate" in str(garbage) and "not base64" not in str(garbage)


def test_the_loader_checks_the_decrypted_chain_but_not_the_offline_placeholder(
    stack_values: Callable[[str], dict[str, Any]],
) -> None:
    values = stack_values("prod")
    chain = _chain(5)
    values[HUB_TLS_CERTIFICATE.key] = chain  # what a real preview decrypts (here in clear: refused as well)
    error = _refused(values)
    assert error.keys == [HUB_TLS_CERTIFICATE.key, HUB_TLS_CERTIFICATE.key]
    assert "clear text" in str(error) and "expires on" in str(error) and "BEGIN CERTIFICATE" not in str(error)
    run_program("prod")  # the stack file's secure: value is a placeholder offline: nothing to check


def test_the_report_shows_every_certificate_and_the_control_planes_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from config.settings import PROJECT_ROOT
    from tools.preflight import certificates

    raw = yaml.safe_load((PROJECT_ROOT / "config" / "Pulumi.prod.yaml").read_text())
    raw["config"]["dsaas:hub"]["ldap"]["caFile"] = _ca_file(tmp_path, 12, "Hospital Root CA")
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "Pulumi.prod.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.setenv(certificates.HUB_CERTIFICATE_ENV, _chain(200))
    assert certificates.main(["prod", "--config-dir", str(folder)]) == 1
    out = capsys.readouterr().out
    (ldap,) = [line for line in out.splitlines() if "dsaas:hub.ldap.caFile" in line]
    assert "RENEW" in ldap and "CN=Hospital Root CA" in ldap and " 11 days" in ldap
    hub = [line for line in out.splitlines() if "dsaas:hubTlsCertificate" in line]
    assert len(hub) == 2 and all(" ok " in line for line in hub)  # the server's and its issuer's
    assert "dsaas:storage.ontap.caFile: not set" in out
    assert out.count("sudo kubeadm certs check-expiration") == 3
    monkeypatch.delenv(certificates.HUB_CERTIFICATE_ENV)
    raw["config"]["dsaas:hub"]["ldap"]["caFile"] = _ca_file(tmp_path, 400)
    (folder / "Pulumi.prod.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    assert certificates.main(["prod", "--config-dir", str(folder)]) == 0
