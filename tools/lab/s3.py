"""A real S3 server on 127.0.0.1 for the tests: moto's server with IAM authentication on, and a small proxy
in front of it that terminates TLS and, to play an older ONTAP S3, refuses the SDK's default checksums.

moto checks SigV4 signatures and access keys once authentication is on (`/moto-api/reset-auth`), so wrong
credentials fail as on a real store (InvalidAccessKeyId, SignatureDoesNotMatch). moto has no TLS of its own;
the proxy serves a certificate from `tools.lab.pki` and forwards each request unchanged (the Host header
included, so signatures still match). With `reject_checksums` it answers what an ONTAP S3 server without
support for the SDK's data-integrity headers answers (HTTP 400 InvalidArgument "x-amz-content-sha256 must
be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD or a valid sha256 value.", as reported for NetApp
S3 in Mendix's support KB and by StackRox users) to any request that carries `x-amz-checksum-*`,
`x-amz-sdk-checksum-algorithm`, `x-amz-trailer` or a streaming trailer payload.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import threading
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import boto3
from moto.server import ThreadedMotoServer

from tools.lab.pki import CertificateAuthority, issue_server_cert

ONTAP_CHECKSUM_MESSAGE = (
    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD or a valid sha256 value."
)
S3_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class S3Key:
    access_key_id: str
    secret_access_key: str


class MotoS3:
    """moto's S3 server on 127.0.0.1 with authentication on: the IAM user `backup` may do s3:*, and each of
    `users` ({name: IAM policy document}) has its own key in `keys`."""

    def __init__(self, users: dict[str, dict[str, Any]] | None = None) -> None:
        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.users = {"backup": S3_ALL, **(users or {})}
        self.keys: dict[str, S3Key] = {}

    @property
    def key(self) -> S3Key:
        return self.keys["backup"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _set_auth(self, count: str) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("POST", "/moto-api/reset-auth", body=count.encode())
        connection.getresponse().read()
        connection.close()

    def start(self) -> MotoS3:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self.server.start()
        iam = boto3.client(
            "iam", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        for user, policy in self.users.items():
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(policy))
            created = iam.create_access_key(UserName=user)["AccessKey"]
            self.keys[user] = S3Key(created["AccessKeyId"], created["SecretAccessKey"])
        self._set_auth("0")
        return self

    def stop(self) -> None:
        # moto's settings and backends are process-wide: leave authentication off again, and forget this lab's
        # users and buckets, so the next MotoS3 in the same process can create its own `backup` user.
        self._set_auth("inf")
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("POST", "/moto-api/reset")
        connection.getresponse().read()
        connection.close()
        self.server.stop()

    def client(self, endpoint: str | None = None, ca_file: Path | None = None, user: str = "backup") -> Any:
        key = self.keys[user]
        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.url,
            region_name="us-east-1",
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret_access_key,
            verify=str(ca_file) if ca_file else True,
        )


def _refuses(headers: Message) -> bool:
    names = {name.lower() for name in headers}
    if any(name.startswith("x-amz-checksum-") for name in names):
        return True
    if names & {"x-amz-sdk-checksum-algorithm", "x-amz-trailer"}:
        return True
    return "TRAILER" in headers.get("x-amz-content-sha256", "")


class _Handler(BaseHTTPRequestHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"  # answers `Expect: 100-continue` as S3 servers do

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                self.send_header(name, value)
        length = dict((k.lower(), v) for k, v in headers).get("content-length", "0")
        self.send_header("Content-Length", length if self.command == "HEAD" else str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self) -> None:
        body = self._body()
        if self.server.reject_checksums and _refuses(self.headers):
            error = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidArgument</Code>'
                f"<Message>{escape(ONTAP_CHECKSUM_MESSAGE)}</Message><Resource>{escape(self.path)}</Resource>"
                "<RequestId>1</RequestId></Error>"
            ).encode()
            self._answer(400, [("Content-Type", "application/xml")], error)
            return
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=30)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in ("transfer-encoding", "content-length", "connection", "expect"):
                    upstream.putheader(name, value)
            upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            response = upstream.getresponse()
            self._answer(response.status, response.getheaders(), response.read())
        finally:
            upstream.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward  # noqa: N815 (http.server's names)


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, upstream_port: int, reject_checksums: bool) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.upstream_port = upstream_port
        self.reject_checksums = reject_checksums


class S3Proxy:
    """A proxy on 127.0.0.1 in front of `MotoS3`: TLS with a certificate from `ca` (for `hosts`), or plain."""

    def __init__(
        self,
        upstream: MotoS3,
        workdir: Path,
        *,
        ca: CertificateAuthority | None = None,
        hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
        reject_checksums: bool = False,
    ) -> None:
        self.port = free_port()
        self.server = _ProxyServer(self.port, upstream.port, reject_checksums)
        self.tls = ca is not None
        if ca is not None:
            cert, key = issue_server_cert(ca, hosts).write(
                workdir / f"s3-{self.port}.pem", workdir / f"s3-{self.port}.key"
            )
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def start(self) -> S3Proxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
