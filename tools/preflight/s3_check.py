"""Pre-flight object-store check: can this stack's backups reach, write and read its S3 bucket? If not, why?

    python -m tools.s3_check <stack> [--endpoint https://s3.example.org] [--ca-file ca.pem] [--config-dir D]

Walks what a backup needs, in order, and stops at the first failure that blocks the rest: the endpoint
answers (DNS, TCP) → TLS, verified against dsaas:backup.objectStore.caFile or the system bundle →
the credentials (the access key exists, the signature matches) → the bucket exists and is reachable
with the configured addressing (path-style or virtual-host) → versioning and object lock (advice) →
put/get/delete of a probe object → a multipart upload (completed, and one aborted) → whether the store
accepts the CRC32 checksums recent AWS SDKs send by default (older ONTAP S3 releases refuse them: the
check then retries with checksums only when required and prints the client settings that fix it).

Credentials come from the environment, never from the command line: DSAAS_S3_ACCESS_KEY_ID and
DSAAS_S3_SECRET_ACCESS_KEY (the values of the stack secrets dsaas:s3AccessKeyId/dsaas:s3SecretAccessKey).
The probe objects live under `<prefix>/s3-check/` and are deleted again (every version of them).

Exit status: 0 usable (advice may be printed), 1 the object store refuses or breaks something a backup
needs (each finding says which setting to change), 2 bad input (settings, missing credentials).
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, SSLError

from config.backup import ObjectStoreSettings
from config.settings import SettingsError, parse_settings, project_file
from tools.lab.stack_hub import stack_settings_values
from tools.offline.mockgraph import StackFileError

ACCESS_KEY_ENV = "DSAAS_S3_ACCESS_KEY_ID"
SECRET_KEY_ENV = "DSAAS_S3_SECRET_ACCESS_KEY"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 20.0
SETTING = "dsaas:backup.objectStore"
SECRETS = "dsaas:s3AccessKeyId / dsaas:s3SecretAccessKey"
# S3's smallest part that is not the last one; smaller parts are refused at CompleteMultipartUpload.
MIN_PART_BYTES = 5 * 1024 * 1024
CREDENTIAL_ERRORS = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"})
# What a store that does not understand the SDK's default checksums answers. ONTAP S3 before it supported them
# answers 400 InvalidArgument "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD
# or a valid sha256 value." (reported against NetApp S3 by Mendix's support KB and by StackRox users); other
# stores answer XAmzContentSHA256Mismatch, NotImplemented or "Unsupported header 'x-amz-sdk-checksum-algorithm'".
CHECKSUM_ERROR_CODES = frozenset({"InvalidArgument", "XAmzContentSHA256Mismatch", "NotImplemented", "InvalidRequest"})
CHECKSUM_HINTS = ("x-amz-content-sha256", "checksum", "trailer", "aws-chunked")
CHECKSUM_FIX = (
    "the store refuses the CRC32 checksums the SDK sends by default; clients must send checksums only when "
    "required: boto3/botocore Config(request_checksum_calculation='when_required', "
    "response_checksum_validation='when_required'), or for any AWS SDK or CLI the environment "
    "AWS_REQUEST_CHECKSUM_CALCULATION=when_required and AWS_RESPONSE_CHECKSUM_VALIDATION=when_required; "
    'Velero\'s AWS plugin: checksumAlgorithm: "" in the BackupStorageLocation config (plugin >= 1.9.2; '
    "velero-io/velero#9804/#9951: some 1.14 plugin releases still add trailing checksums, use one with "
    "velero-plugin-for-aws#308); or upgrade ONTAP to a release whose S3 server accepts them"
)
Status = Literal["ok", "advice", "fail"]


@dataclass(frozen=True)
class Finding:
    status: Status
    step: str
    detail: str
    fix: str = ""


@dataclass
class Report:
    endpoint: str
    bucket: str
    findings: list[Finding] = field(default_factory=list)
    checksums_when_required: bool = False

    @property
    def failed(self) -> bool:
        return any(f.status == "fail" for f in self.findings)

    def add(self, status: Status, step: str, detail: str, fix: str = "") -> bool:
        self.findings.append(Finding(status, step, detail, fix))
        return status != "fail"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:  # never print a secret, not even by accident
        return "Credentials(<secret>)"


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", "")) or str(error)


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def is_checksum_rejection(error: ClientError) -> bool:
    """The store refused the request for the SDK's default integrity headers, not for anything else."""
    code, message = _error_code(error), _error_message(error).lower()
    return code in CHECKSUM_ERROR_CODES and any(hint in message for hint in CHECKSUM_HINTS)


def client_config(store: ObjectStoreSettings, *, when_required: bool) -> Config:
    checksums: dict[str, Any] = (
        {"request_checksum_calculation": "when_required", "response_checksum_validation": "when_required"}
        if when_required
        else {"request_checksum_calculation": "when_supported", "response_checksum_validation": "when_supported"}
    )
    return Config(
        region_name=store.region,
        signature_version="s3v4",
        s3={"addressing_style": "path" if store.path_style else "virtual"},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"max_attempts": 1, "mode": "standard"},
        **checksums,
    )


def make_client(
    store: ObjectStoreSettings, endpoint: str, credentials: Credentials, ca_file: Path | None, *, when_required: bool
) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        verify=str(ca_file) if ca_file is not None else True,
        config=client_config(store, when_required=when_required),
    )


def _explain_certificate(error: ssl.SSLCertVerificationError, host: str, ca_file: Path | None) -> tuple[str, str]:
    trust = f"caFile {ca_file}" if ca_file is not None else "the system CA bundle (no caFile set)"
    if error.verify_code == 62 or "mismatch" in str(error.verify_message).lower():
        return (
            f"the endpoint's certificate does not name {host}: {error.verify_message}",
            f"set {SETTING}.endpoint to a name the certificate carries (its subjectAltName), or have the "
            f"certificate reissued for {host}",
        )
    if error.verify_code == 10:
        return (f"the endpoint's certificate has expired: {error.verify_message}", "renew the endpoint's certificate")
    return (
        f"the endpoint's certificate is not trusted by {trust}: {error.verify_message}",
        f"commit the PEM bundle of the CA that signed it and set {SETTING}.caFile to it (or pass --ca-file to try)",
    )


def check_connection(report: Report, endpoint: str, ca_file: Path | None) -> bool:
    """DNS, TCP and (for https) the TLS handshake, with the certificate verified as the clients will."""
    parts = urlsplit(endpoint)
    host, tls = parts.hostname or "", parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        return report.add(
            "fail",
            "endpoint",
            f"{host} does not resolve: {error}",
            f"set {SETTING}.endpoint to a name this machine (and the cluster) can resolve",
        )
    try:
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
    except TimeoutError:
        return report.add(
            "fail",
            "endpoint",
            f"{host}:{port} ({addresses[0][4][0]}) did not answer within {CONNECT_TIMEOUT_S:.0f} s",
            f"check {SETTING}.endpoint (host and port) and that a firewall lets this machine and the nodes reach it",
        )
    except OSError as error:
        return report.add(
            "fail",
            "endpoint",
            f"cannot connect to {host}:{port}: {error.strerror or error}",
            f"check {SETTING}.endpoint (host and port) and that the S3 server is running there",
        )
    with sock:
        report.add("ok", "endpoint", f"{host}:{port} answers")
        if not tls:
            report.add(
                "advice",
                "tls",
                "the endpoint is plain http: credentials and every backed-up home cross the network in clear "
                "(the policy pack's object-store-over-tls refuses it outside a lab)",
                f"serve S3 over https and set {SETTING}.endpoint to https://…",
            )
            return True
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
        try:
            with context.wrap_socket(sock, server_hostname=host) as tls_sock:
                version = tls_sock.version()
        except ssl.SSLCertVerificationError as error:
            detail, fix = _explain_certificate(error, host, ca_file)
            return report.add("fail", "tls", detail, fix)
        except (ssl.SSLError, OSError) as error:
            return report.add(
                "fail",
                "tls",
                f"the TLS handshake with {host}:{port} failed: {error}",
                f"check that {SETTING}.endpoint's port speaks https (not plain http)",
            )
    trust = f"caFile {ca_file}" if ca_file is not None else "the system CA bundle"
    return report.add("ok", "tls", f"{version}, certificate for {host} verified against {trust}")


def _client_error(report: Report, step: str, error: Exception, store: ObjectStoreSettings, what: str) -> bool:
    """A failure of one S3 call, explained by its error code."""
    if isinstance(error, ClientError):
        code, message = _error_code(error), _error_message(error)
        if code in CREDENTIAL_ERRORS or (code == "" and _status(error) == 403 and step == "credentials"):
            fixes = {
                "InvalidAccessKeyId": f"the access key ID is unknown to the store: set {SECRETS} "
                f"(and {ACCESS_KEY_ENV}) to a key of the store's S3 user",
                "SignatureDoesNotMatch": f"the secret key does not belong to this access key (or "
                f"{SETTING}.region differs from the store's): set dsaas:s3SecretAccessKey (and {SECRET_KEY_ENV})",
            }
            fix = fixes.get(code, f"set {SECRETS} to a valid key pair of the store's S3 user")
            return report.add("fail", "credentials", f"{what}: {code or 'HTTP 403'}: {message}", fix)
        if code in ("NoSuchBucket",) or (code == "" and _status(error) == 404):
            return report.add(
                "fail",
                "bucket",
                f"bucket {store.bucket!r} does not exist on this endpoint",
                f"create it on the store (ONTAP: vserver object-store-server bucket create) or set "
                f"{SETTING}.bucket to an existing one",
            )
        if code == "AccessDenied":
            return report.add(
                "fail",
                step,
                f"{what}: AccessDenied: {message}",
                f"grant the S3 user of {SECRETS} read, write, list and delete on bucket {store.bucket!r} "
                "(ONTAP: a bucket policy or the user's group policy)",
            )
        return report.add("fail", step, f"{what}: {code or _status(error)}: {message}", "see the store's logs")
    if isinstance(error, SSLError):
        return report.add("fail", "tls", f"{what}: {error}", f"set {SETTING}.caFile to the CA that signed the endpoint")
    if isinstance(error, EndpointConnectionError) and not store.path_style:
        return report.add(
            "fail",
            "bucket",
            f"{what}: {error} (virtual-host addressing puts the bucket in the host name)",
            f"give the store wildcard DNS for *.{urlsplit(str(store.endpoint)).hostname}, or set "
            f"{SETTING}.pathStyle: true (ONTAP S3 and StorageGRID without wildcard DNS need it)",
        )
    return report.add("fail", step, f"{what}: {error}", f"check {SETTING}.endpoint and that the store is up")


def _call(report: Report, step: str, store: ObjectStoreSettings, what: str, call: Callable[[], Any]) -> Any:
    """Run one S3 call; on failure add the explained finding and return None."""
    try:
        return call() or {}
    except (ClientError, BotoCoreError) as error:
        _client_error(report, step, error, store, what)
        return None


def check_bucket(report: Report, client: Any, store: ObjectStoreSettings, prefix: str) -> bool:
    """Credentials and bucket: a listing of the stack's prefix needs both, and names which one is wrong."""
    listing = _call(
        report,
        "credentials",
        store,
        f"listing s3://{store.bucket}/{prefix}/",
        lambda: client.list_objects_v2(Bucket=store.bucket, Prefix=f"{prefix}/", MaxKeys=1),
    )
    if listing is None:
        return False
    report.add("ok", "credentials", "the access key is known and the signature matches")
    style = "path-style" if store.path_style else "virtual-host"
    return report.add("ok", "bucket", f"{store.bucket!r} reachable with {style} addressing")


def check_protection(report: Report, client: Any, store: ObjectStoreSettings) -> None:
    """Versioning and object lock: advice, since a backup works without them."""
    try:
        versioning = client.get_bucket_versioning(Bucket=store.bucket).get("Status", "never enabled")
    except (ClientError, BotoCoreError) as error:
        versioning = f"unreadable ({error})"
    if versioning == "Enabled":
        report.add("ok", "versioning", "on: a deleted or overwritten backup can be recovered")
    else:
        report.add(
            "advice",
            "versioning",
            f"{versioning}: a backup deleted by mistake (or by a compromised cluster) is gone for good",
            f"turn versioning on for bucket {store.bucket!r} (ONTAP 9.11.1+: vserver object-store-server bucket "
            "modify -versioning-state enabled), with a lifecycle rule that expires old versions",
        )
    try:
        lock = client.get_object_lock_configuration(Bucket=store.bucket).get("ObjectLockConfiguration", {})
        state = str(lock.get("ObjectLockEnabled", "Disabled"))
    except ClientError as error:
        state = "Disabled" if _error_code(error) == "ObjectLockConfigurationNotFoundError" else _error_code(error)
    except BotoCoreError as error:
        state = str(error)
    if state == "Enabled":
        report.add("ok", "object-lock", "on: backups cannot be deleted before their retention ends")
    else:
        report.add(
            "advice",
            "object-lock",
            f"{state or 'not enabled'} (optional): backups can be deleted before they expire",
            "for ransomware protection create a bucket with object lock (ONTAP 9.14.1+ SnapLock) and move to it",
        )


def _delete_all_versions(client: Any, bucket: str, key: str) -> None:
    try:
        listed = client.list_object_versions(Bucket=bucket, Prefix=key)
        for entry in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]:
            if entry["Key"] == key:
                client.delete_object(Bucket=bucket, Key=key, VersionId=entry["VersionId"])
    except (ClientError, BotoCoreError):
        pass  # an unversioned store without ListObjectVersions: the plain delete already removed it


def check_probe(report: Report, client: Any, store: ObjectStoreSettings, key: str) -> bool:
    body = f"dsaas s3_check probe {key}\n".encode()
    if (
        _call(report, "probe", store, f"put {key}", lambda: client.put_object(Bucket=store.bucket, Key=key, Body=body))
        is None
    ):
        return False
    got = _call(report, "probe", store, f"get {key}", lambda: client.get_object(Bucket=store.bucket, Key=key))
    if got is None:
        return False
    if got["Body"].read() != body:
        return report.add("fail", "probe", f"get {key} returned other bytes than were put", "see the store's logs")
    if (
        _call(report, "probe", store, f"delete {key}", lambda: client.delete_object(Bucket=store.bucket, Key=key))
        is None
    ):
        return False
    _delete_all_versions(client, store.bucket, key)
    return report.add("ok", "probe", "put, get and delete of a probe object")


def check_multipart(report: Report, client: Any, store: ObjectStoreSettings, key: str) -> bool:
    what = "multipart upload"

    def upload(parts: list[bytes]) -> tuple[str, list[dict[str, Any]]] | None:
        created = _call(
            report,
            "multipart",
            store,
            f"{what} (create)",
            lambda: client.create_multipart_upload(Bucket=store.bucket, Key=key),
        )
        if created is None:
            return None
        upload_id = created["UploadId"]
        done = []
        for number, data in enumerate(parts, start=1):

            def send(n: int = number, d: bytes = data) -> Any:
                return client.upload_part(Bucket=store.bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=d)

            part = _call(report, "multipart", store, f"{what} (part {number})", send)
            if part is None:
                client.abort_multipart_upload(Bucket=store.bucket, Key=key, UploadId=upload_id)
                return None
            done.append({"PartNumber": number, "ETag": part["ETag"]})
        return upload_id, done

    aborted = upload([b"a" * 1024])
    if aborted is None:
        return False
    if (
        _call(
            report,
            "multipart",
            store,
            f"{what} (abort)",
            lambda: client.abort_multipart_upload(Bucket=store.bucket, Key=key, UploadId=aborted[0]),
        )
        is None
    ):
        return False
    parts = [b"p" * MIN_PART_BYTES, b"q" * 1024]
    completed = upload(parts)
    if completed is None:
        return False
    upload_id, done = completed
    finish = _call(
        report,
        "multipart",
        store,
        f"{what} (complete)",
        lambda: client.complete_multipart_upload(
            Bucket=store.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
        ),
    )
    if finish is None:
        return False
    head = _call(report, "multipart", store, f"{what} (head)", lambda: client.head_object(Bucket=store.bucket, Key=key))
    client.delete_object(Bucket=store.bucket, Key=key)
    _delete_all_versions(client, store.bucket, key)
    if head is None:
        return False
    size = sum(map(len, parts))
    if head.get("ContentLength") != size:
        return report.add(
            "fail", "multipart", f"the completed object has {head.get('ContentLength')} bytes, not {size}"
        )
    return report.add("ok", "multipart", f"{len(parts)} parts uploaded and completed, another upload aborted")


def check_checksums(report: Report, default: Any, compatible: Any, store: ObjectStoreSettings, key: str) -> bool | None:
    """Does the store take the SDK's default checksums? True yes, False refused (the fix is printed), None unknown."""
    try:
        default.put_object(Bucket=store.bucket, Key=key, Body=b"dsaas s3_check checksum probe\n")
    except ClientError as error:
        if not is_checksum_rejection(error):
            _client_error(report, "checksums", error, store, f"put {key} with the SDK's default checksums")
            return None
        retried = _call(
            report,
            "checksums",
            store,
            f"put {key} with checksums only when required",
            lambda: compatible.put_object(Bucket=store.bucket, Key=key, Body=b"dsaas s3_check checksum probe\n"),
        )
        if retried is None:
            return None
        compatible.delete_object(Bucket=store.bucket, Key=key)
        _delete_all_versions(compatible, store.bucket, key)
        report.checksums_when_required = True
        report.add(
            "fail",
            "checksums",
            f"put with the SDK's default CRC32 checksum refused ({_error_code(error)}: {_error_message(error)}); "
            "the same put with checksums only when required succeeded",
            CHECKSUM_FIX,
        )
        return False
    except BotoCoreError as error:
        report.add("fail", "checksums", f"put {key} with the SDK's default checksums: {error}")
        return None
    default.delete_object(Bucket=store.bucket, Key=key)
    _delete_all_versions(default, store.bucket, key)
    report.add(
        "ok",
        "checksums",
        "the store accepts the SDK's default CRC32 checksums (request_checksum_calculation=when_supported)",
    )
    return True


def check_store(
    store: ObjectStoreSettings,
    credentials: Credentials,
    *,
    prefix: str,
    endpoint: str | None = None,
    ca_file: Path | None = None,
) -> Report:
    url = (endpoint or str(store.endpoint)).rstrip("/")
    report = Report(endpoint=url, bucket=store.bucket)
    if ca_file is None and store.ca_file is not None:
        ca_file = project_file(store.ca_file)
    if ca_file is not None and not ca_file.is_file():
        report.add("fail", "tls", f"CA bundle {ca_file} is not a file", f"fix {SETTING}.caFile or --ca-file")
        return report
    if not check_connection(report, url, ca_file):
        return report
    default = make_client(store, url, credentials, ca_file, when_required=False)
    compatible = make_client(store, url, credentials, ca_file, when_required=True)
    # Reads carry no request checksum, so the compatible client asks everything but the checksum question.
    if not check_bucket(report, compatible, store, prefix):
        return report
    check_protection(report, compatible, store)
    run = uuid.uuid4().hex[:12]
    base = f"{prefix}/s3-check/{run}"
    if not check_probe(report, compatible, store, f"{base}/probe"):
        return report
    if not check_multipart(report, compatible, store, f"{base}/multipart"):
        return report
    check_checksums(report, default, compatible, store, f"{base}/checksum")
    return report


def render_report(report: Report) -> str:
    lines = [f"Object-store pre-flight for s3://{report.bucket} at {report.endpoint}:"]
    marks = {"ok": "ok  ", "advice": "note", "fail": "FAIL"}
    for finding in report.findings:
        lines.append(f"  {marks[finding.status]}  {finding.step:<12} {finding.detail}")
        if finding.fix:
            lines.append(f"        fix: {finding.fix}")
    if report.failed:
        lines.append("Verdict: NOT USABLE — fix the failures above and run again.")
    elif any(f.status == "advice" for f in report.findings):
        lines.append("Verdict: usable — consider the notes above.")
    else:
        lines.append("Verdict: usable.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.s3_check", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("stack")
    parser.add_argument("--endpoint", help="another S3 endpoint than the stack's: https://host[:port]")
    parser.add_argument("--ca-file", type=Path, help="CA bundle to use instead of the stack's caFile")
    parser.add_argument("--config-dir", type=Path, help="folder of stack files (default: config/)")
    args = parser.parse_args(argv)
    try:
        settings = parse_settings(stack_settings_values(args.stack, args.config_dir))
    except (SettingsError, StackFileError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    store = settings.backup.object_store
    if store is None:
        print(
            f"error: {SETTING} is not set for stack {args.stack!r}: there is no object store to check. "
            f"Fix: add {SETTING}: {{endpoint: https://s3.example.org, bucket: dsaas-backups}} to the stack file.",
            file=sys.stderr,
        )
        return 2
    if args.endpoint and urlsplit(args.endpoint).scheme not in ("http", "https"):
        print(
            f"error: --endpoint {args.endpoint!r} is not an http(s) URL, e.g. https://s3.example.org", file=sys.stderr
        )
        return 2
    key_id, secret = os.environ.get(ACCESS_KEY_ENV), os.environ.get(SECRET_KEY_ENV)
    if not key_id or not secret:
        missing = [name for name, value in ((ACCESS_KEY_ENV, key_id), (SECRET_KEY_ENV, secret)) if not value]
        print(
            f"error: {' and '.join(missing)} not set. Fix: export the object store's credentials (the values of "
            f"{SECRETS}), e.g. `read -rs {SECRET_KEY_ENV}; export {SECRET_KEY_ENV}`; never pass them as arguments.",
            file=sys.stderr,
        )
        return 2
    prefix = store.prefix or settings.cluster.cluster_name
    report = check_store(
        store, Credentials(key_id, secret), prefix=prefix, endpoint=args.endpoint, ca_file=args.ca_file
    )
    print(render_report(report))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
