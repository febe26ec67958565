"""The object store's pre-flight (`python -m tools.s3_check`) against moto's real S3 server on 127.0.0.1,
with authentication on, behind a real TLS endpoint, and behind a double of an older ONTAP S3 that refuses
the SDK's default checksums (tools/lab/s3.py): each failure the check explains, and the fix it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from config.backup import ObjectStoreSettings
from tests.conftest import ROOT_DIR
from tools.lab.pki import CertificateAuthority, make_ca
from tools.lab.s3 import S3_ALL, MotoS3, S3Proxy, free_port
from tools.preflight import s3_check
from tools.preflight.s3_check import Credentials, Report, check_store, render_report

pytestmark = pytest.mark.slow

BUCKET = "dsaas-backups"
PROD_BUCKET = "dsaas-prod-backups"  # what config/Pulumi.prod.yaml names
UNVERSIONED = "dsaas-unversioned"
DENY = {
    "noput": {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*"},
    "noabort": {"Effect": "Deny", "Action": "s3:AbortMultipartUpload", "Resource": "*"},
}


@dataclass
class Lab:
    moto: MotoS3
    ca: CertificateAuthority
    ca_file: Path
    tls: S3Proxy
    misnamed: S3Proxy
    old_ontap: S3Proxy

    def credentials(self, user: str = "backup") -> Credentials:
        key = self.moto.keys[user]
        return Credentials(key.access_key_id, key.secret_access_key)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    workdir = tmp_path_factory.mktemp("s3")
    users = {name: {**S3_ALL, "Statement": [*S3_ALL["Statement"], deny]} for name, deny in DENY.items()}
    moto = MotoS3(users).start()
    ca = make_ca("dsaas s3 lab CA")
    proxies: list[S3Proxy] = []
    try:
        client = moto.client()
        for bucket in (BUCKET, PROD_BUCKET, UNVERSIONED):
            client.create_bucket(Bucket=bucket)
        for bucket in (BUCKET, PROD_BUCKET):
            client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        tls = S3Proxy(moto, workdir, ca=ca).start()
        proxies.append(tls)
        misnamed = S3Proxy(moto, workdir, ca=ca, hosts=("s3.elsewhere.example",)).start()
        proxies.append(misnamed)
        old_ontap = S3Proxy(moto, workdir, ca=ca, reject_checksums=True).start()
        proxies.append(old_ontap)
        yield Lab(moto, ca, ca.write_cert(workdir / "ca.pem"), tls, misnamed, old_ontap)
    finally:
        for proxy in proxies:
            proxy.stop()
        moto.stop()


def store(endpoint: str, bucket: str = BUCKET, **options: object) -> ObjectStoreSettings:
    return ObjectStoreSettings.model_validate({"endpoint": endpoint, "bucket": bucket, **options})


def check(lab: Lab, endpoint: str, *, bucket: str = BUCKET, user: str = "backup", ca: bool = True) -> Report:
    return check_store(
        store(endpoint, bucket), lab.credentials(user), prefix="lab", ca_file=lab.ca_file if ca else None
    )


def failure(report: Report) -> tuple[str, str, str]:
    (failed,) = [f for f in report.findings if f.status == "fail"]
    return failed.step, failed.detail, failed.fix


def steps(report: Report) -> dict[str, str]:
    return {f.step: f.status for f in report.findings}


def test_a_good_store_over_tls_passes_every_step(lab: Lab) -> None:
    report = check(lab, lab.tls.url())
    assert steps(report) == {
        "endpoint": "ok",
        "tls": "ok",
        "credentials": "ok",
        "bucket": "ok",
        "versioning": "ok",
        "object-lock": "advice",
        "probe": "ok",
        "multipart": "ok",
        "checksums": "ok",
    }
    assert "Verdict: usable" in render_report(report)
    # The probes clean up after themselves, every version of them.
    versions = lab.moto.client().list_object_versions(Bucket=BUCKET, Prefix="lab/s3-check/")
    assert not versions.get("Versions") and not versions.get("DeleteMarkers")


def test_an_unreachable_port_is_explained(lab: Lab) -> None:
    report = check(lab, f"https://127.0.0.1:{free_port()}")
    step, detail, fix = failure(report)
    assert step == "endpoint" and "cannot connect" in detail and "dsaas:backup.objectStore.endpoint" in fix


def test_a_name_that_does_not_resolve_is_explained(lab: Lab) -> None:
    step, detail, fix = failure(check(lab, "https://dsaas-s3-check.invalid"))
    assert step == "endpoint" and "does not resolve" in detail and "objectStore.endpoint" in fix


def test_an_untrusted_certificate_names_the_ca_setting(lab: Lab) -> None:
    step, detail, fix = failure(check(lab, lab.tls.url(), ca=False))
    assert step == "tls" and "not trusted by the system CA bundle" in detail
    assert "dsaas:backup.objectStore.caFile" in fix


def test_a_certificate_for_another_name_names_the_endpoint_setting(lab: Lab) -> None:
    step, detail, fix = failure(check(lab, lab.misnamed.url()))
    assert step == "tls" and "does not name 127.0.0.1" in detail
    assert "dsaas:backup.objectStore.endpoint" in fix


def test_plain_http_is_refused_by_the_settings_and_only_a_note_to_try_with_endpoint(lab: Lab) -> None:
    with pytest.raises(ValueError, match="is plain http"):
        store(lab.moto.url)  # a stack file cannot name it (issue 19, item 8)
    report = check_store(store(lab.tls.url()), lab.credentials(), prefix="lab", endpoint=lab.moto.url)
    assert steps(report)["tls"] == "advice" and not report.failed


@pytest.mark.parametrize(
    ("key_id", "secret", "code", "setting"),
    [
        ("AKIAUNKNOWN000000000", "whatever", "InvalidAccessKeyId", "dsaas:s3AccessKeyId"),
        (None, "not-the-secret", "SignatureDoesNotMatch", "dsaas:s3SecretAccessKey"),
    ],
)
def test_wrong_credentials_name_the_secret_to_set(
    lab: Lab, key_id: str | None, secret: str, code: str, setting: str
) -> None:
    credentials = Credentials(key_id or lab.moto.key.access_key_id, secret)
    report = check_store(store(lab.tls.url()), credentials, prefix="lab", ca_file=lab.ca_file)
    step, detail, fix = failure(report)
    assert step == "credentials" and code in detail and setting in fix
    assert secret not in render_report(report)


def test_a_missing_bucket_names_the_bucket_setting(lab: Lab) -> None:
    step, detail, fix = failure(check(lab, lab.tls.url(), bucket="dsaas-nowhere"))
    assert step == "bucket" and "'dsaas-nowhere' does not exist" in detail
    assert "dsaas:backup.objectStore.bucket" in fix


def test_versioning_off_is_advice_not_failure(lab: Lab) -> None:
    report = check(lab, lab.tls.url(), bucket=UNVERSIONED)
    (versioning,) = [f for f in report.findings if f.step == "versioning"]
    assert versioning.status == "advice" and "gone for good" in versioning.detail
    assert "versioning" in versioning.fix and not report.failed


def test_a_refused_probe_write_is_explained(lab: Lab) -> None:
    step, detail, fix = failure(check(lab, lab.tls.url(), user="noput"))
    assert step == "probe" and "AccessDenied" in detail and "write" in fix


def test_a_refused_multipart_step_is_explained(lab: Lab) -> None:
    step, detail, fix = failure(check(lab, lab.tls.url(), user="noabort"))
    assert step == "multipart" and "abort" in detail and "AccessDenied" in detail and BUCKET in fix


def test_an_older_ontap_refusing_default_checksums_is_detected_and_the_fix_printed(lab: Lab) -> None:
    report = check(lab, lab.old_ontap.url())
    step, detail, fix = failure(report)
    assert step == "checksums" and "InvalidArgument" in detail and "x-amz-content-sha256 must be" in detail
    assert "succeeded" in detail and report.checksums_when_required
    assert "request_checksum_calculation='when_required'" in fix
    assert "AWS_REQUEST_CHECKSUM_CALCULATION=when_required" in fix and 'checksumAlgorithm: ""' in fix
    # Everything before the checksum question was asked with the compatible client, and passed.
    assert {s for s, status in steps(report).items() if status == "fail"} == {"checksums"}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.s3_check", *args],
        cwd=ROOT_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_command_checks_the_prod_stack_against_another_endpoint(lab: Lab) -> None:
    key = lab.moto.key
    env = {s3_check.ACCESS_KEY_ENV: key.access_key_id, s3_check.SECRET_KEY_ENV: key.secret_access_key}
    good = _run(["prod", "--endpoint", lab.tls.url(), "--ca-file", str(lab.ca_file)], env)
    assert good.returncode == 0, good.stdout + good.stderr
    assert f"s3://{PROD_BUCKET}" in good.stdout and "Verdict: usable" in good.stdout
    assert key.secret_access_key not in good.stdout + good.stderr
    refused = _run(["prod", "--endpoint", lab.old_ontap.url(), "--ca-file", str(lab.ca_file)], env)
    assert refused.returncode == 1 and "AWS_REQUEST_CHECKSUM_CALCULATION=when_required" in refused.stdout
    assert "Traceback" not in refused.stderr


def test_bad_input_exits_2_without_a_traceback(lab: Lab) -> None:
    no_credentials = _run(
        ["prod", "--endpoint", lab.tls.url()], {s3_check.ACCESS_KEY_ENV: "", s3_check.SECRET_KEY_ENV: ""}
    )
    assert no_credentials.returncode == 2 and s3_check.SECRET_KEY_ENV in no_credentials.stderr
    no_store = _run(["dev"], {s3_check.ACCESS_KEY_ENV: "a", s3_check.SECRET_KEY_ENV: "b"})
    assert no_store.returncode == 2 and "dsaas:backup.objectStore is not set" in no_store.stderr
    unknown = _run(["nosuchstack"], {})
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
