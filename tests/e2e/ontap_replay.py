"""A local HTTPS server that answers like ONTAP's REST API, for the restore planner's `--from ontap` and the
restore's export step (components/ontap_exports.py).

Modelled responses (ONTAP 9.x REST API reference, docs.netapp.com "ONTAP REST API" and the
netapp-ontap library's resource docs; the library's own marshmallow schemas must load every record):

- GET /api/cluster                          {"name", "uuid", "version": {"full", "generation", "major", "minor"}}
- GET /api/storage/volumes                  records: uuid, name, type (rw|dp|ls), state, comment,
                                            space.size, nas.path, is_svm_root, svm.{name,uuid}
- GET /api/storage/qtrees                   records: svm, volume.{name,uuid}, id, name, path
- GET /api/storage/quota/rules              records: uuid, svm, volume.{name,uuid}, qtree.name, type, space.hard_limit
- GET /api/protocols/nfs/connected-clients  records: svm, node.name, client_ip, server_ip, protocol,
                                            volume.{name,uuid}, idle_duration

- GET /api/svm/svms                         records: name, uuid
- GET/POST /api/protocols/nfs/export-policies
                                            records: id, name, svm.{name,uuid}; POST takes name, svm.{name|uuid}
                                            and optional inline `rules` (ONTAP REST reference "Create an export
                                            policy": "A policy with no rules prohibits access"); a second policy
                                            of the same name on the SVM is refused (409, code "1", Trident's
                                            DUPLICATE_ENTRY in storage_drivers/ontap/api/abstraction_error.go)
- GET/POST /api/protocols/nfs/export-policies/{id}/rules, DELETE .../rules/{index}
                                            records: index, clients[{match}], protocols, ro_rule, rw_rule,
                                            superuser; POST needs `clients`; an identical rule is refused (409,
                                            code "1704070", Trident's EXPORT_POLICY_RULE_EXISTS); an unknown
                                            policy or index is 404 code "4" (ENTRY_DOESNT_EXIST)
- PATCH /api/storage/qtrees/{volume.uuid}/{id}, PATCH /api/storage/volumes/{uuid}
                                            asynchronous as in ONTAP: 202 with a job whose link netapp-ontap
                                            follows (Trident's QtreeModifyExportPolicy handles both 200 and 202
                                            and reads EXPORT_POLICY_NOT_FOUND, "1703954", from the failed job);
                                            an export policy that is not on the SVM fails the job
- GET /api/cluster/jobs/{uuid}              uuid, state (success|failure), message, code

Record and body fields are the resource classes' own (netapp_ontap.resources ExportPolicy, ExportRule, Qtree,
Volume, Svm, Job); a body key the endpoint does not take is refused like ONTAP does (400, code "262179",
"Unexpected argument"), and so is a key that names the object (`id`, `uuid`) in a PATCH body.

Like ONTAP it wants HTTP basic authentication (401 with an ONTAP error body otherwise), filters
collections by the query (`svm.name`, `name`/`volume.name` with `*` wildcards), answers only the
requested `fields` (plus the keys ONTAP always returns), and refuses an unknown field (400, code 262197).
Collections come as {"records": [...], "num_records": n, "_links": {"self": {"href": ...}}}.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re
import ssl
import threading
import uuid as uuid_module
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
    "svms": {"uuid", "name"},
    "export-policies": {"id", "name"},
    "rules": {"index"},
}
COLLECTIONS = {
    "/api/storage/volumes": "volumes",
    "/api/storage/qtrees": "qtrees",
    "/api/storage/quota/rules": "quota-rules",
    "/api/protocols/nfs/connected-clients": "connected-clients",
    "/api/svm/svms": "svms",
    "/api/protocols/nfs/export-policies": "export-policies",
}
# Fields a query may name even where no record carries them yet (an SVM without export policies).
DECLARED = {
    "svms": {"name", "uuid"},
    "export-policies": {"id", "name", "svm.name", "svm.uuid"},
    "rules": {"index", "clients", "protocols", "ro_rule", "rw_rule", "superuser"},
    "qtrees": {"id", "name", "path", "volume.name", "volume.uuid", "export_policy.name", "export_policy.id"},
    "volumes": {"nas.export_policy.name", "nas.path"},
}
RULE_BODY = {"clients", "protocols", "ro_rule", "rw_rule", "superuser", "anonymous_user", "allow_suid"}
POLICY_BODY = {"name", "svm", "rules"}
QTREE_PATCH = {"export_policy", "name", "security_style", "unix_permissions", "user", "group", "qos_policy"}
VOLUME_PATCH = {"nas", "comment", "name", "size", "state"}
NAS_PATCH = {"export_policy", "path", "security_style", "unix_permissions", "uid", "gid"}
RULES_PATH = re.compile(r"^/api/protocols/nfs/export-policies/(\d+)/rules(?:/(\d+))?$")
QTREE_PATH = re.compile(r"^/api/storage/qtrees/([0-9a-f-]+)/(\d+)$")
VOLUME_PATH = re.compile(r"^/api/storage/volumes/([0-9a-f-]+)$")
JOB_PATH = re.compile(r"^/api/cluster/jobs/([0-9a-f-]+)$")


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
        self.data: dict[str, list[dict[str, Any]]] = {k: list(v) for k, v in data.items()}
        self.requests: list[str] = []
        self.bodies: list[tuple[str, Any]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Mapping[str, Any], location: str | None = None) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/hal+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _authorized(self) -> bool:
                replay.requests.append(f"{self.command} {self.path}")
                if self.headers.get("Authorization") != expected:
                    self._send(401, {"error": {"message": "not authorized for that command", "code": "6"}})
                    return False
                return True

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                replay.bodies.append((f"{self.command} {urlsplit(self.path).path}", body))
                return body

            def _unexpected(self, body: Mapping[str, Any], allowed: set[str]) -> bool:
                extra = sorted(set(body) - allowed)
                if extra:
                    self._send(400, {"error": {"message": f'Unexpected argument "{extra[0]}".', "code": "262179"}})
                    return True
                return False

            def _missing(self) -> None:
                self._send(404, {"error": {"message": "entry doesn't exist", "code": "4"}})

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                if url.path == "/api/cluster":
                    self._send(200, replay.data["cluster"][0])
                    return
                if job := JOB_PATH.match(url.path):
                    found = replay.jobs.get(job.group(1))
                    self._send(200, found) if found else self._missing()
                    return
                if rules := RULES_PATH.match(url.path):
                    policy = replay.policy(int(rules.group(1)))
                    if policy is None or rules.group(2):
                        self._missing()
                        return
                    self._collection("rules", policy["rules"], query)
                    return
                kind = COLLECTIONS.get(url.path)
                if kind is None:
                    self._send(404, {"error": {"message": f'API not found: "{url.path}"', "code": "3"}})
                    return
                self._collection(kind, replay.data.get(kind, []), query)

            def _collection(self, kind: str, data: list[dict[str, Any]], query: Mapping[str, str]) -> None:
                fields = [f for f in query.get("fields", "").split(",") if f]
                known = {f for r in data for f in _flat(r)} | DECLARED.get(kind, set())
                unknown = [f for f in fields if f not in known and not any(k.startswith(f + ".") for k in known)]
                if unknown:
                    self._send(400, {"error": {"message": f'The value "{unknown[0]}" is invalid', "code": "262197"}})
                    return
                filters = {k: v for k, v in query.items() if k not in ("fields", "return_records", "return_timeout")}
                records = [
                    _project(r, fields, ALWAYS[kind])
                    for r in data
                    if all(fnmatch.fnmatchcase(str(_get(r, k)), v) for k, v in filters.items())
                ]
                self._send(
                    200, {"records": records, "num_records": len(records), "_links": {"self": {"href": self.path}}}
                )

            def do_POST(self) -> None:
                if not self._authorized():
                    return
                url = urlsplit(self.path)
                body = self._body()
                if url.path == "/api/protocols/nfs/export-policies":
                    self._create_policy(body)
                    return
                rules = RULES_PATH.match(url.path)
                if rules and not rules.group(2):
                    policy = replay.policy(int(rules.group(1)))
                    if policy is None:
                        self._missing()
                        return
                    if self._unexpected(body, RULE_BODY):
                        return
                    problem = replay.add_rule(policy, body)
                    if problem:
                        self._send(*problem)
                        return
                    location = f"{url.path}/{policy['rules'][-1]['index']}"
                    self._send(201, {}, location)
                    return
                self._send(404, {"error": {"message": f'API not found: "{url.path}"', "code": "3"}})

            def _create_policy(self, body: Mapping[str, Any]) -> None:
                if self._unexpected(body, POLICY_BODY):
                    return
                svm = replay.svm(body.get("svm") or {})
                if svm is None or not body.get("name"):
                    self._send(400, {"error": {"message": "svm and name are required", "code": "262186"}})
                    return
                policies = replay.data.setdefault("export-policies", [])
                if any(p["name"] == body["name"] and p["svm"]["uuid"] == svm["uuid"] for p in policies):
                    self._send(409, {"error": {"message": "duplicate entry", "code": "1"}})
                    return
                policy = {"id": 12884901889 + len(policies), "name": body["name"], "svm": dict(svm), "rules": []}
                for rule in body.get("rules") or []:
                    if set(rule) - RULE_BODY:
                        self._unexpected(rule, RULE_BODY)
                        return
                    problem = replay.add_rule(policy, rule)
                    if problem:
                        self._send(*problem)
                        return
                policies.append(policy)
                self._send(201, {}, f"/api/protocols/nfs/export-policies/{policy['id']}")

            def do_DELETE(self) -> None:
                if not self._authorized():
                    return
                rules = RULES_PATH.match(urlsplit(self.path).path)
                policy = replay.policy(int(rules.group(1))) if rules and rules.group(2) else None
                if policy is None or rules is None:
                    self._missing()
                    return
                index = int(rules.group(2))
                kept = [r for r in policy["rules"] if r["index"] != index]
                if len(kept) == len(policy["rules"]):
                    self._missing()
                    return
                policy["rules"] = kept
                self._send(200, {})

            def do_PATCH(self) -> None:
                if not self._authorized():
                    return
                path = urlsplit(self.path).path
                body = self._body()
                if qtree_key := QTREE_PATH.match(path):
                    record = next(
                        (
                            q
                            for q in replay.data.get("qtrees", [])
                            if q["volume"]["uuid"] == qtree_key.group(1) and str(q["id"]) == qtree_key.group(2)
                        ),
                        None,
                    )
                    if record is None:
                        self._missing()
                        return
                    if self._unexpected(body, QTREE_PATCH):
                        return
                    self._send(202, replay.job(record, body.get("export_policy")))
                    return
                if volume_key := VOLUME_PATH.match(path):
                    record = next((v for v in replay.data.get("volumes", []) if v["uuid"] == volume_key.group(1)), None)
                    if record is None:
                        self._missing()
                        return
                    if self._unexpected(body, VOLUME_PATCH) or self._unexpected(body.get("nas", {}), NAS_PATCH):
                        return
                    change = body.get("nas", {}).get("export_policy")
                    self._send(202, replay.job(record.setdefault("nas", {}), change))
                    return
                self._send(404, {"error": {"message": f'API not found: "{path}"', "code": "3"}})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def svm(self, named: Mapping[str, Any]) -> dict[str, Any] | None:
        return next(
            (s for s in self.data.get("svms", []) if s["name"] == named.get("name") or s["uuid"] == named.get("uuid")),
            None,
        )

    def policy(self, policy_id: int) -> dict[str, Any] | None:
        return next((p for p in self.data.get("export-policies", []) if p["id"] == policy_id), None)

    def policy_named(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.data.get("export-policies", []) if p["name"] == name), None)

    def add_rule(self, policy: dict[str, Any], body: Mapping[str, Any]) -> tuple[int, dict[str, Any]] | None:
        clients = body.get("clients")
        if not clients or not all(isinstance(c, dict) and set(c) == {"match"} for c in clients):
            return 400, {"error": {"message": 'Missing value for "clients.match".', "code": "262186"}}
        rule: dict[str, Any] = {
            "clients": [dict(c) for c in clients],
            "protocols": list(body.get("protocols") or ["any"]),
            "ro_rule": list(body.get("ro_rule") or ["any"]),
            "rw_rule": list(body.get("rw_rule") or ["any"]),
            "superuser": list(body.get("superuser") or ["any"]),
        }
        if any({k: r[k] for k in rule} == rule for r in policy["rules"]):
            return 409, {"error": {"message": "export rule already exists", "code": "1704070"}}
        rule["index"] = max((r["index"] for r in policy["rules"]), default=0) + 1
        policy["rules"].append(rule)
        return None

    def job(self, record: dict[str, Any], export_policy: Mapping[str, Any] | None) -> dict[str, Any]:
        """The 202 answer: a job that succeeds after setting `record`'s export policy, or fails as ONTAP does
        for a policy the SVM lacks."""
        job_id = str(uuid_module.uuid4())
        job: dict[str, Any] = {"uuid": job_id, "state": "success", "message": "success", "code": 0}
        if export_policy is not None:
            policy = self.policy_named(str(export_policy.get("name")))
            if policy is None:
                job.update(state="failure", message="export policy not found", code=1703954)
            else:
                record["export_policy"] = {"name": policy["name"], "id": policy["id"]}
        self.jobs[job_id] = job
        return {"job": {"uuid": job_id, "_links": {"self": {"href": f"/api/cluster/jobs/{job_id}"}}}}

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
