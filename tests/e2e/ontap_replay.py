"""A local HTTPS server that answers like ONTAP's REST API, for the restore planner's `--from ontap`.

Modelled responses (ONTAP 9.x REST API reference, docs.netapp.com "ONTAP REST API" and the
netapp-ontap library's resource docs; the library's own marshmallow schemas must load every record):

- GET /api/cluster                          {"name", "uuid", "version": {"full", "generation", "major", "minor"}}
- GET /api/storage/volumes                  records: uuid, name, type (rw|dp|ls), state, comment,
                                            space.size, nas.path, is_svm_root, svm.{name,uuid}
- GET /api/storage/qtrees                   records: svm, volume.{name,uuid}, id, name, path
- GET /api/storage/quota/rules              records: uuid, svm, volume.{name,uuid}, qtree.name, type, space.hard_limit
- GET /api/protocols/nfs/connected-clients  records: svm, node.name, client_ip, server_ip, protocol,
                                            volume.{name,uuid}, idle_duration

Like ONTAP it wants HTTP basic authentication (401 with an ONTAP error body otherwise), filters
collections by the query (`svm.name`, `name`/`volume.name` with `*` wildcards), answers only the
requested `fields` (plus the keys ONTAP always returns), and refuses an unknown field (400, code 262197).
Collections come as {"records": [...], "num_records": n, "_links": {"self": {"href": ...}}}.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import ssl
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Keys ONTAP returns in every record whatever `fields` asks for (the record's identity).
ALWAYS = {
    "volumes": {"uuid", "name"},
    "qtrees": {"svm", "volume", "id", "name"},
    "quota-rules": {"uuid", "svm", "volume"},
    "connected-clients": {"svm"},
}
COLLECTIONS = {
    "/api/storage/volumes": "volumes",
    "/api/storage/qtrees": "qtrees",
    "/api/storage/quota/rules": "quota-rules",
    "/api/protocols/nfs/connected-clients": "connected-clients",
}


def _get(record: Mapping[str, Any], dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _project(record: Mapping[str, Any], fields: list[str], always: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {k: record[k] for k in always if k in record}
    for dotted in fields:
        value = _get(record, dotted)
        if value is None:
            continue
        target = out
        parts = dotted.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return out


class OntapReplay:
    """`with OntapReplay(data, cert, key, username, password) as ontap:` serves on 127.0.0.1:ontap.port."""

    def __init__(
        self, data: Mapping[str, list[dict[str, Any]]], cert: Path, key: Path, username: str, password: str
    ) -> None:
        self.data = data
        self.requests: list[str] = []
        expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Mapping[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/hal+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                replay.requests.append(self.path)
                if self.headers.get("Authorization") != expected:
                    self._send(401, {"error": {"message": "not authorized for that command", "code": "6"}})
                    return
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                if url.path == "/api/cluster":
                    self._send(200, replay.data["cluster"][0])
                    return
                kind = COLLECTIONS.get(url.path)
                if kind is None:
                    self._send(404, {"error": {"message": f'API not found: "{url.path}"', "code": "3"}})
                    return
                fields = [f for f in query.get("fields", "").split(",") if f]
                known = {f for r in replay.data[kind] for f in _flat(r)}
                unknown = [f for f in fields if f not in known and not any(k.startswith(f + ".") for k in known)]
                if unknown:
                    self._send(400, {"error": {"message": f'The value "{unknown[0]}" is invalid', "code": "262197"}})
                    return
                filters = {k: v for k, v in query.items() if k not in ("fields", "return_records", "return_timeout")}
                records = [
                    _project(r, fields, ALWAYS[kind])
                    for r in replay.data[kind]
                    if all(fnmatch.fnmatchcase(str(_get(r, k)), v) for k, v in filters.items())
                ]
                self._send(
                    200, {"records": records, "num_records": len(records), "_links": {"self": {"href": self.path}}}
                )

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OntapReplay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _flat(record: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in record.items():
        if isinstance(value, Mapping) and value:
            keys.extend(_flat(value, f"{prefix}{key}."))
        else:
            keys.append(prefix + key)
    return keys
