"""A small REST client for the test API server: discovery, server-side apply, status, access reviews.

Small on purpose: the suite must see what a plain client sees, HTTP status, the API's `Status` body and
every `Warning` header (RFC 7234 warn-code 299, which kubectl prints as "Warning: ..."), without a client
library's retries or defaulting in between.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3

FIELD_MANAGER = "dsaas"


class ApiError(RuntimeError):
    """The API server refused a request; `status` is its HTTP status, `body` its Status object."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        message = body.get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"{method} {path}: {status} {message}")
        self.status = status
        self.body = body
        self.message = message or ""


@dataclass(frozen=True)
class Response:
    status: int
    body: Any
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class ResourceType:
    group_version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: frozenset[str]
    subresources: frozenset[str] = field(default_factory=frozenset)

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return base + (f"/{name}" if name else "")


_WARNING = re.compile(r'^\s*299\s+\S+\s+"(?P<text>(?:[^"\\]|\\.)*)"')


def parse_warnings(headers: list[str]) -> tuple[str, ...]:
    """The texts of `Warning: 299 - "..."` headers (k8s.io/apimachinery/pkg/util/net/http.go's format)."""
    texts = []
    for header in headers:
        for part in re.split(r",(?=\s*299\s)", header):
            match = _WARNING.match(part)
            if match:
                texts.append(match.group("text").replace('\\"', '"').replace("\\\\", "\\"))
    return tuple(texts)


class KubeClient:
    """Talks to one API server as one identity (a client certificate or a bearer token)."""

    def __init__(
        self,
        server: str,
        ca_file: Path,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        token: str | None = None,
        impersonate: tuple[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.ca_file = ca_file
        self.cert_file = cert_file
        self.key_file = key_file
        self.token = token
        self.impersonate = impersonate
        self._pool = urllib3.PoolManager(
            ca_certs=str(ca_file),
            cert_file=str(cert_file) if cert_file else None,
            key_file=str(key_file) if key_file else None,
            cert_reqs="CERT_REQUIRED",
            retries=False,
            timeout=urllib3.Timeout(connect=5, read=60),
        )
        self._types: dict[tuple[str, str], ResourceType] | None = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: Mapping[str, str] | None = None,
    ) -> Response:
        url = self.server + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        headers = {"Accept": "application/json", "User-Agent": "dsaas-tests"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.impersonate:
            headers["Impersonate-User"] = self.impersonate[0]
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            # Raw UTF-8, as Go's encoding/json (client-go, Pulumi's provider) writes it: the API server reads an
            # apply patch as YAML, and its YAML parser refuses the \ud83d\ude00 surrogate escapes that
            # json.dumps writes by default for characters beyond the BMP (an emoji in a user name).
            data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        response = self._pool.request(method, url, body=data, headers=headers)
        warnings = parse_warnings(response.headers.getlist("Warning"))
        try:
            payload = json.loads(response.data) if response.data else None
        except ValueError:
            payload = response.data.decode(errors="replace")
        if response.status >= 400:
            raise ApiError(method, path, response.status, payload)
        return Response(response.status, payload, warnings)

    # discovery ----------------------------------------------------------------------------------------

    def resource_types(self, refresh: bool = False) -> dict[tuple[str, str], ResourceType]:
        """(apiVersion, kind) → its REST resource, read from the server's discovery documents."""
        if self._types is not None and not refresh:
            return self._types
        versions = ["v1"]
        for group in self.request("GET", "/apis").body["groups"]:
            versions.extend(version["groupVersion"] for version in group["versions"])
        types: dict[tuple[str, str], ResourceType] = {}
        for group_version in versions:
            path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
            try:
                resources = self.request("GET", path).body["resources"]
            except ApiError as error:
                # A CRD's group is listed in /apis a moment before its version's document is served
                # (aggregated discovery catches up asynchronously): not served yet, so not known yet.
                if error.status == 404:
                    continue
                raise
            subresources: dict[str, set[str]] = {}
            for resource in resources:
                if "/" in resource["name"]:
                    parent, sub = resource["name"].split("/", 1)
                    subresources.setdefault(parent, set()).add(sub)
            for resource in resources:
                if "/" in resource["name"]:
                    continue
                types[(group_version, resource["kind"])] = ResourceType(
                    group_version,
                    resource["kind"],
                    resource["name"],
                    resource["namespaced"],
                    frozenset(resource.get("verbs", [])),
                    frozenset(subresources.get(resource["name"], set())),
                )
        self._types = types
        return types

    def resource_type(self, api_version: str, kind: str) -> ResourceType:
        key = (api_version, kind)
        # A just-established CRD reaches discovery within moments; give it a few seconds before saying no.
        deadline = time.monotonic() + 10
        while key not in self.resource_types():
            if time.monotonic() > deadline:
                raise KeyError(f"the API server serves no {kind} in {api_version}")
            time.sleep(0.2)
            self.resource_types(refresh=True)
        return self.resource_types()[key]

    # objects ------------------------------------------------------------------------------------------

    def object_path(self, document: Mapping[str, Any], default_namespace: str | None = None) -> str:
        kind = self.resource_type(document["apiVersion"], document["kind"])
        namespace = document.get("metadata", {}).get("namespace") or default_namespace
        return kind.path(namespace if kind.namespaced else None, document["metadata"]["name"])

    def apply(self, document: Mapping[str, Any], force: bool = True, dry_run: bool = False) -> Response:
        """Server-side apply, as `kubectl apply --server-side --field-manager=dsaas` does."""
        query = {"fieldManager": FIELD_MANAGER, "force": "true" if force else "false"}
        if dry_run:
            query["dryRun"] = "All"
        return self.request("PATCH", self.object_path(document), document, "application/apply-patch+yaml", query)

    def get(self, path: str) -> Any:
        return self.request("GET", path).body

    def get_or_none(self, path: str) -> Any:
        try:
            return self.get(path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def items(self, path: str, **query: str) -> Iterator[dict[str, Any]]:
        yield from self.request("GET", path, query=query or None).body.get("items", [])

    def create(self, path: str, document: Mapping[str, Any]) -> Any:
        return self.request("POST", path, document).body

    def merge_patch(self, path: str, patch: Mapping[str, Any]) -> Any:
        return self.request("PATCH", path, patch, "application/merge-patch+json").body

    def delete(self, path: str, grace_seconds: int | None = None, uid: str | None = None) -> Any:
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_seconds is not None:
            options["gracePeriodSeconds"] = grace_seconds
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        return self.request("DELETE", path, options).body

    # authorization ------------------------------------------------------------------------------------

    def can(
        self,
        user: str,
        groups: tuple[str, ...],
        verb: str,
        resource: str,
        namespace: str = "",
        group: str = "",
        subresource: str = "",
        name: str = "",
    ) -> bool:
        """What the authorizer answers for `user` (a SubjectAccessReview: `kubectl auth can-i --as`)."""
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": list(groups),
                "resourceAttributes": {
                    "verb": verb,
                    "resource": resource,
                    "group": group,
                    "namespace": namespace,
                    "subresource": subresource,
                    "name": name,
                },
            },
        }
        answer = self.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
        return bool(answer["status"].get("allowed"))
