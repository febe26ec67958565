"""Settings nobody checked before issue 22: the files settings point at, cron schedules, the object store's
endpoint and bucket, and loose coercion of numbers and booleans. Each class is a plain regression test; a
property test mutates the prod stack's backup settings and checks what an accepted stack holds."""

from __future__ import annotations

import copy
import datetime
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from config import model
from config.backup import _S3_RESERVED_PREFIXES, _S3_RESERVED_SUFFIXES
from config.settings import Settings, SettingsError, parse_settings
from tests.conftest import ROOT_DIR, settings_values
from tests.fuzz import fuzz

CA_KEY = "dsaas:backup.objectStore.caFile"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root of the test's own, so no test writes into the real project."""
    root = tmp_path / "project"
    shutil.copytree(ROOT_DIR / "config" / "branding", root / "config" / "branding")  # the stack names them
    monkeypatch.setattr(model, "PROJECT_ROOT", root)
    return root


def prod(edit: Callable[[dict[str, Any]], Any] = lambda values: None) -> Settings:
    values = copy.deepcopy(settings_values("prod"))
    edit(values)
    return parse_settings(values)


def problems(edit: Callable[[dict[str, Any]], Any]) -> str:
    with pytest.raises(SettingsError) as caught:
        prod(edit)
    message = str(caught.value)
    assert "Fix:" in message and "Traceback" not in message
    return message


def store(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda values: values["dsaas:backup"]["objectStore"].update(fields)


def backup(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda values: values["dsaas:backup"].update(fields)


def certificate_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dsaas test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        # A year: a CA ending within the program's 30-day notice is refused (tests/test_certificates.py).
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


# --- files settings point at ---------------------------------------------------------------------


def test_a_real_pem_ca_inside_the_project_is_accepted(project: Path) -> None:
    (project / "config/ca.pem").write_bytes(certificate_pem())
    assert prod(store(caFile="config/ca.pem")).backup.object_store is not None


BAD_CA_FILES: dict[str, tuple[Callable[[Path], str], str]] = {
    "absolute path": (lambda root: "/etc/hostname", "inside the project"),
    "proc environ": (lambda root: "/proc/self/environ", "inside the project"),
    "dot dot": (lambda root: "../../etc/hostname", "inside the project"),
    "missing": (lambda root: "config/none.pem", "does not exist"),
    "a folder": (lambda root: "config", "not a regular file"),
    "not pem": (lambda root: _write(root, "config/ca.pem", b"hello\n"), "no readable PEM"),
    "not utf-8": (lambda root: _write(root, "config/ca.pem", b"\xff\xfe\x00bad"), "not UTF-8"),
    "too large": (lambda root: _write(root, "config/ca.pem", b"x" * (model.MAX_PROJECT_FILE_BYTES + 1)), "larger"),
    "pem with a private key": (
        lambda root: _write(root, "config/ca.pem", certificate_pem() + b"-----BEGIN PRIVATE KEY-----\nx\n"),
        "private key",
    ),
    "link out of the project": (lambda root: _link(root, "config/ca.pem", "/etc/hostname"), "outside the project"),
    "dangling link": (lambda root: _link(root, "config/ca.pem", "/nonexistent/ca.pem"), "does not exist"),
}


def _write(root: Path, relative: str, data: bytes) -> str:
    (root / relative).write_bytes(data)
    return relative


def _link(root: Path, relative: str, target: str) -> str:
    os.symlink(target, root / relative)
    return relative


@pytest.mark.parametrize("case", sorted(BAD_CA_FILES))
def test_a_bad_ca_file_is_refused_naming_the_key(case: str, project: Path) -> None:
    make, expected = BAD_CA_FILES[case]
    message = problems(store(caFile=make(project)))
    assert CA_KEY in message and expected in message, message


def test_the_ldap_ca_file_is_parsed_as_pem_too(project: Path) -> None:
    _write(project, "config/ldap-ca.pem", b"not a certificate")
    message = problems(lambda values: values["dsaas:hub"]["ldap"].update(caFile="config/ldap-ca.pem"))
    assert "dsaas:hub.ldap.caFile" in message and "no readable PEM" in message


def test_a_login_template_that_is_not_utf8_is_refused(project: Path) -> None:
    _write(project, "config/login.html", b"\xff<html>")
    message = problems(
        lambda values: values["dsaas:hub"].setdefault("branding", {}).update(loginTemplateFile="config/login.html")
    )
    assert "dsaas:hub.branding.loginTemplateFile" in message and "UTF-8" in message


# --- cron, endpoint, bucket ----------------------------------------------------------------------

BAD_CRONS = ["x x x x x", "99 99 99 99 99", "-1 * * * *", "0\xa01 * * *\xa0*", "0 1 * *", "0 1 * * * *", "0 1 * * *\n"]
BAD_CRONS += ["5-1 * * * *", "*/0 * * * *", "0 0 32 * *", "0 0 * 13 *", "0 0 * * 8", "? * * * *", "0 0 * foo *"]
GOOD_CRONS = ["0 1 * * *", "*/30 * * * *", "15 * * * *", "0 2 * * sun", "0 3 1 jan,jul *", "0-59/5 0-23 1-31 1-12 0-7"]


@pytest.mark.parametrize("schedule", BAD_CRONS)
def test_a_nonsense_cron_schedule_is_refused(schedule: str) -> None:
    assert "dsaas:backup.schedule" in problems(backup(schedule=schedule))


@pytest.mark.parametrize("schedule", GOOD_CRONS)
def test_real_cron_schedules_are_accepted(schedule: str) -> None:
    assert prod(backup(schedule=schedule, databaseSchedule=schedule)).backup.schedule == schedule


@pytest.mark.parametrize("endpoint", ["https://KEY:SECRET@s3.example.org", "https://KEY@s3.example.org"])
def test_an_endpoint_with_credentials_is_refused_without_echoing_them(endpoint: str) -> None:
    message = problems(store(endpoint=endpoint))
    assert "dsaas:backup.objectStore.endpoint" in message and "credentials" in message
    assert "SECRET" not in message


BAD_BUCKETS = ["a..b", "a.-b", "a-.b", "192.168.1.1", "xn--bucket", "sthree-x", "bucket-s3alias", "b--ol-s3", "ab"]


@pytest.mark.parametrize("bucket", BAD_BUCKETS)
def test_bucket_names_follow_s3_rules(bucket: str) -> None:
    assert "dsaas:backup.objectStore.bucket" in problems(store(bucket=bucket))


# --- strict numbers and booleans -----------------------------------------------------------------

LOOSE_INTEGERS = [True, "1_000", "1\n", 12.0, "12"]
LOOSE_BOOLEANS = ["t", "yes", 0, 1.0, "true"]


@pytest.mark.parametrize("value", LOOSE_INTEGERS, ids=repr)
def test_an_integer_setting_takes_integers_only(value: Any) -> None:
    assert "dsaas:backup.retentionDays" in problems(backup(retentionDays=value))
    assert "dsaas:hub.sessionHours" in problems(lambda values: values["dsaas:hub"].update(sessionHours=value))


@pytest.mark.parametrize("value", LOOSE_BOOLEANS, ids=repr)
def test_a_boolean_setting_takes_booleans_only(value: Any) -> None:
    assert "dsaas:backup.objectStore.pathStyle" in problems(store(pathStyle=value))
    assert "dsaas:backup.enabled" in problems(backup(enabled=value))


# --- property: whatever the backup section holds, an accepted stack is sound ---------------------

CRON_PARTS = st.sampled_from(["*", "0", "59", "60", "-1", "1-5", "5-1", "*/15", "*/0", "mon", "jan", "?", "x", "1,2"])
ODD = st.one_of(
    st.booleans(),
    st.none(),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.floats(),
    st.text(max_size=20),
    st.lists(CRON_PARTS, min_size=3, max_size=7).map(" ".join),
    st.sampled_from(
        ["https://a:b@s3.example.org", "https://s3.example.org/?x=1", "http://s3", "a..b", "xn--x", "1.2.3.4"]
    ),
)
BACKUP_FIELDS = ("enabled", "schedule", "retentionDays", "databaseSchedule", "inventorySchedule")
STORE_FIELDS = ("endpoint", "bucket", "region", "pathStyle", "prefix", "caFile")


def _sound_cron(schedule: str) -> bool:
    fields = schedule.split()
    return schedule.isascii() and len(fields) == 5 and "\n" not in schedule and "-1" not in fields


@fuzz(300)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5), ODD), min_size=1, max_size=3))
def test_a_mutated_backup_section_is_accepted_sound_or_refused_by_key(edits: list[tuple[bool, int, Any]]) -> None:
    def edit(values: dict[str, Any]) -> None:
        for in_store, index, value in edits:
            if in_store:
                values["dsaas:backup"]["objectStore"][STORE_FIELDS[index]] = value
            else:
                values["dsaas:backup"][BACKUP_FIELDS[index % len(BACKUP_FIELDS)]] = value

    try:
        accepted = prod(edit)
    except SettingsError as error:
        assert error.problems and all(p.key.startswith("dsaas:") and p.fix for p in error.problems)
        return
    backup_settings = accepted.backup
    assert type(backup_settings.retention_days) is int
    assert backup_settings.enabled is None or type(backup_settings.enabled) is bool
    for schedule in (backup_settings.schedule, backup_settings.database_schedule, backup_settings.inventory_schedule):
        assert _sound_cron(schedule), schedule
    object_store = backup_settings.object_store
    assert object_store is not None
    assert object_store.endpoint.username is None and object_store.endpoint.password is None
    assert type(object_store.path_style) is bool
    bucket = object_store.bucket
    assert 3 <= len(bucket) <= 63 and ".." not in bucket and not re.fullmatch(r"[0-9.]+", bucket)
    assert not bucket.startswith(_S3_RESERVED_PREFIXES) and not bucket.endswith(_S3_RESERVED_SUFFIXES)
    assert object_store.ca_file is None  # no generated name is a real PEM inside the project


@pytest.mark.parametrize("plan", ["/etc/passwd", "../../etc/passwd", "config/gone.yaml", "config"])
def test_the_restore_plan_is_a_file_inside_the_project(plan: str, project: Path) -> None:
    message = problems(lambda values: values.update({"dsaas:restore": {"plan": plan}}))
    assert "dsaas:restore.plan" in message and "tools.restore plan" in message, message


def test_a_restore_plan_linked_out_of_the_project_is_refused(project: Path) -> None:
    _link(project, "config/restore.prod.yaml", "/etc/passwd")
    message = problems(lambda values: values.update({"dsaas:restore": {"plan": "config/restore.prod.yaml"}}))
    assert "outside the project" in message
