"""Run a real JupyterHub on 127.0.0.1, configured the way the z2jh chart configures its hub pod.

A lab hub takes z2jh chart values: the project's rendered values (`values=`, see tools/lab/stack_hub.py), or
for the harness's own tests a bare `hub_config` (`hub.config`, class name → trait → value) with optional
`extra_config` (`hub.extraConfig`), `profile_list` (`singleuser.profileList`) and `extra_files` (mount path →
content, written as they are). The values are rendered by Helm's engine from the vendored chart 4.4.0
(tools/offline/charts.py), and the hub runs **the chart's own** `files/hub/jupyterhub_config.py` and `z2jh.py` (from
the rendered hub ConfigMap), which read the rendered hub Secret (`values.yaml`, the cookie secret, the proxy
token, the CryptKeeper keys) and ConfigMap exactly as in the pod. What the lab changes, as a kubelet would
mount them, and nothing else:

- the files land under the workspace (`HubWorkspace.path_map("/usr/local/etc/jupyterhub")`): the two chart
  files get that folder instead of `/usr/local/etc/jupyterhub`, `values.yaml` gets its in-container paths
  (`hub.extraFiles` mount paths: LDAP CA, branding) mapped the same way, and `hub.extraFiles` are written
  there from the Secret;
- the hub's environment is its container's (`env` of the rendered Deployment, with the Secret's values and
  the namespace), plus the `*_SERVICE_PORT` variables Kubernetes would add for the proxy-api and hub Services;
- the CryptKeeper keys of a workspace's first run are kept for its later runs, as the chart's `lookup` of
  the existing Secret keeps them across upgrades (an offline render has nothing to look up).

After the chart's configuration, the lab's wiring wins: addresses and ports (127.0.0.1 only), the proxy from
tools/lab/node_modules started by the hub, the sqlite database in the workspace, the idle culler pointed at
that hub, the spawner (`tools.lab.spawner.LabSpawner`, the profile list the chart gave KubeSpawner), and an
extra service `lab-harness` whose token has the admin role (for REST checks). Only the spawner and the proxy
are swapped; everything else is the chart's.

Hub, proxy and single-user servers log to `<run dir>/hub.log` (`LocalHub.log_path`, `LocalHub.log_text()`).
`stop()` sends SIGTERM to the hub (which stops the proxy and the servers), then kills what is left.
"""

from __future__ import annotations

import base64
import contextlib
import http.cookiejar
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tools.lab.procs import LOCALHOST, free_port, stop_process_group, tail

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
LAB_DIR = Path(__file__).resolve().parent
PROXY_BIN = LAB_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
VENV_BIN = Path(sys.executable).parent
SPAWNER_CLASS = "tools.lab.spawner.LabSpawner"
HARNESS_SERVICE = "lab-harness"
HUB_ETC = "/usr/local/etc/jupyterhub"
"""Where the hub pod mounts the chart's files, ConfigMap and Secret (hub Deployment, z2jh 4.4.0)."""
RELEASE = "jupyterhub"
NAMESPACE = "jupyterhub"
CHART_FILES = ("jupyterhub_config.py", "z2jh.py")
CRYPT_KEYS = "hub.config.CryptKeeper.keys"


@dataclass(frozen=True)
class HubWorkspace:
    """Where a lab hub keeps its state. Runs sharing a workspace share the database, cookie secret and homes.

    Layout: `files/` (extra_files, mount paths mapped by `path_map`), `homes/claim-<user>` (per-user homes),
    `state/` (sqlite database, secrets), `run-<n>/` (each start: jupyterhub_config.py, hub.log).
    """

    root: Path

    @classmethod
    def create(cls, root: Path) -> HubWorkspace:
        workspace = cls(root.resolve())
        for folder in (workspace.files_root, workspace.homes_root, workspace.state_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return workspace

    @property
    def files_root(self) -> Path:
        return self.root / "files"

    @property
    def homes_root(self) -> Path:
        return self.root / "homes"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def path_map(self, mount_path: str) -> str:
        """Where an absolute in-container path (an extraFiles mount path) lives in this workspace."""
        if not mount_path.startswith("/"):
            raise ValueError(f"{mount_path!r}: mount paths are absolute")
        return str(self.files_root / mount_path.lstrip("/"))

    def home_of(self, username: str) -> Path:
        return self.homes_root / f"claim-{username}"

    def secret(self, name: str) -> str:
        """A random hex secret that stays the same across runs in this workspace."""
        path = self.state_dir / name
        if not path.exists():
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text()


def map_paths(value: Any, path_map: Callable[[str], str], prefixes: Iterable[str]) -> Any:
    """A copy of nested config data where every string equal to or below one of `prefixes` goes through path_map."""
    roots = tuple(p.rstrip("/") for p in prefixes)

    def convert(item: Any) -> Any:
        if isinstance(item, str):
            if any(item == root or item.startswith(root + "/") for root in roots):
                return path_map(item)
            return item
        if isinstance(item, Mapping):
            return {key: convert(val) for key, val in item.items()}
        if isinstance(item, list | tuple):
            return [convert(val) for val in item]
        return item

    return convert(value)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    url: str
    headers: Mapping[str, str]
    body: str

    @property
    def location(self) -> str | None:
        return self.headers.get("Location") or self.headers.get("location")

    def json(self) -> Any:
        return json.loads(self.body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class HubSession:
    """A cookie-keeping HTTP client for one browser-less user. Redirects are returned, not followed."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect())

    def request(
        self, method: str, path: str, *, data: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        url = path if path.startswith("http") else self.base_url + path
        req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
        try:
            with self._opener.open(req, timeout=30) as resp:
                return HttpResponse(resp.status, url, dict(resp.headers.items()), resp.read().decode(errors="replace"))
        except urllib.error.HTTPError as err:
            body = err.read().decode(errors="replace")
            return HttpResponse(err.code, url, dict(err.headers.items()), body)

    def get(self, path: str) -> HttpResponse:
        return self.request("GET", path)

    def post_form(self, path: str, fields: Mapping[str, str]) -> HttpResponse:
        data = urllib.parse.urlencode(fields).encode()
        return self.request("POST", path, data=data, headers={"Content-Type": "application/x-www-form-urlencoded"})

    def cookie(self, name: str) -> str | None:
        for cookie in self.cookies:
            if cookie.name == name:
                return cookie.value
        return None

    def login(self, username: str, password: str) -> HttpResponse:
        """GET /hub/login for the `_xsrf` cookie, then POST the form. Success: a redirect and a login cookie."""
        self.get("/hub/login")
        xsrf = self.cookie("_xsrf") or ""
        return self.post_form("/hub/login", {"username": username, "password": password, "_xsrf": xsrf})

    @property
    def logged_in(self) -> bool:
        return self.cookie("jupyterhub-hub-login") is not None


def _write_extra_files(workspace: HubWorkspace, extra_files: Mapping[str, str | bytes]) -> None:
    for mount_path, content in extra_files.items():
        target = Path(workspace.path_map(mount_path))
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)


LAB_CONFIG = """\
# Generated by tools/lab/hub.py: the chart's own jupyterhub_config.py, then the lab's wiring.
import json
import sys

c = get_config()  # noqa: F821
LAB = json.loads({lab_json!r})
sys.path.insert(0, LAB["repo_root"])

# 1. The hub pod's configuration: z2jh's files/hub/jupyterhub_config.py (which imports z2jh.py beside it),
#    reading the rendered hub Secret and ConfigMap.
load_subconfig(LAB["chart_config"])  # noqa: F821

# 2. The lab's wiring, which always wins: only the spawner and the proxy are swapped; addresses are local.
{spawner_wiring}
c.JupyterHub.cleanup_servers = True
c.JupyterHub.log_level = LAB["log_level"]
c.JupyterHub.bind_url = LAB["bind_url"]
c.JupyterHub.hub_bind_url = LAB["hub_bind_url"]
c.JupyterHub.hub_connect_url = LAB["hub_bind_url"]
c.ConfigurableHTTPProxy.api_url = LAB["proxy_api_url"]
c.ConfigurableHTTPProxy.command = [LAB["proxy_bin"]]
c.ConfigurableHTTPProxy.should_start = True
c.JupyterHub.db_url = LAB["db_url"]
c.JupyterHub.pid_file = LAB["pid_file"]
_services = [dict(s) for s in c.JupyterHub.get("services", []) if s.get("name") != LAB["service"]]
for _service in _services:
    # The chart's culler calls the hub at localhost:8081, the pod's hub port; the lab's hub is elsewhere.
    _service["command"] = [
        LAB["culler_url"] if str(arg).startswith("--url=") else arg for arg in _service.get("command", [])
    ]
c.JupyterHub.services = _services + [{{"name": LAB["service"], "api_token": LAB["api_token"]}}]
_roles = [dict(r) for r in c.JupyterHub.get("load_roles", [])]
_admin = next((r for r in _roles if r.get("name") == "admin"), None)
if _admin is None:
    _roles.append({{"name": "admin", "services": [LAB["service"]]}})
else:
    _admin["services"] = list(_admin.get("services", [])) + [LAB["service"]]
c.JupyterHub.load_roles = _roles
"""

LAB_SPAWNER_WIRING = """\
if c.JupyterHub.spawner_class != LAB["spawner_class"]:
    print(f"lab: replacing spawner_class {c.JupyterHub.spawner_class!r} with {LAB['spawner_class']!r}")
c.JupyterHub.spawner_class = LAB["spawner_class"]
c.LabSpawner.profile_list = c.KubeSpawner.get("profile_list", [])
c.LabSpawner.homes_root = LAB["homes_root"]
c.Spawner.cmd = [LAB["singleuser"]]
c.Spawner.args = LAB["spawner_args"]
if "default_url" not in c.Spawner:
    c.Spawner.default_url = "/lab"
c.LocalProcessSpawner.ip = "127.0.0.1"
"""
"""The local-process spawner's part of the wiring (LabSpawner). `LocalHub(spawner_wiring=...)` replaces it, e.g.
with tools/controlplane/kubespawner.py's, which keeps the chart's KubeSpawner; `LAB` holds `spawner_settings`."""


def plain_values(
    hub_config: Mapping[str, Mapping[str, Any]],
    extra_config: Mapping[str, str] | None = None,
    profile_list: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Chart values for a hub given as bare `hub.config` (+ extraConfig, profiles), as the harness tests write it."""
    values: dict[str, Any] = {"hub": {"config": {k: dict(v) for k, v in hub_config.items()}}}
    if extra_config:
        values["hub"]["extraConfig"] = dict(extra_config)
    if profile_list:
        values["singleuser"] = {"profileList": [dict(p) for p in profile_list]}
    return values


@dataclass(frozen=True)
class ChartHub:
    """What the hub pod of a z2jh render sees: its Secret, its ConfigMap and its container's environment."""

    secret: dict[str, bytes]
    configmap: dict[str, str]
    env: dict[str, str]
    extra_files: dict[str, bytes]
    """hub.extraFiles by mount path."""

    @classmethod
    def render(cls, values: Mapping[str, Any]) -> ChartHub:
        from config import versions
        from tools.offline import charts

        chart = charts.vendored_chart("jupyterhub", versions.Z2JH_CHART_VERSION)
        objects = charts.render_chart(chart, values, name=RELEASE, namespace=NAMESPACE, stable=False)
        by_key = {(o.kind, o.name): o.document for o in objects}
        secret_doc, configmap_doc = by_key[("Secret", "hub")], by_key[("ConfigMap", "hub")]
        secret = {key: base64.b64decode(value) for key, value in (secret_doc.get("data") or {}).items()}
        secret.update({key: str(value).encode() for key, value in (secret_doc.get("stringData") or {}).items()})
        (container,) = [c for c in by_key[("Deployment", "hub")]["spec"]["template"]["spec"]["containers"]]
        env: dict[str, str] = {}
        for item in container.get("env", []):
            source = item.get("valueFrom") or {}
            if "value" in item:
                env[item["name"]] = str(item["value"])
            elif source.get("secretKeyRef", {}).get("name") == "hub":
                env[item["name"]] = secret[source["secretKeyRef"]["key"]].decode()
            elif source.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
                env[item["name"]] = NAMESPACE
        files = {
            str(entry["mountPath"]): secret[key]
            for key, entry in (values.get("hub", {}).get("extraFiles") or {}).items()
            if key in secret
        }
        return cls(secret, dict(configmap_doc.get("data") or {}), env, files)


def _new_run_dir(workspace: HubWorkspace) -> Path:
    """run-1, run-2, ...: one per LocalHub, created here so two hubs never share one."""
    number = 1
    while True:
        candidate = workspace.root / f"run-{number}"
        try:
            candidate.mkdir()
        except FileExistsError:
            number += 1
            continue
        return candidate


class LocalHub:
    """One JupyterHub process (with its proxy) for a workspace. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        workspace: HubWorkspace,
        *,
        values: Mapping[str, Any] | None = None,
        hub_config: Mapping[str, Mapping[str, Any]] | None = None,
        extra_config: Mapping[str, str] | None = None,
        profile_list: list[dict[str, Any]] | None = None,
        extra_files: Mapping[str, str | bytes] | None = None,
        log_level: str = "DEBUG",
        start_timeout: float = 60.0,
        proxy_bin: Path = PROXY_BIN,
        spawner_wiring: str = LAB_SPAWNER_WIRING,
        spawner_settings: Mapping[str, Any] | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        if not proxy_bin.exists():
            raise RuntimeError(f"{proxy_bin} is missing: run `make setup` (npm ci in tools/lab)")
        if (values is None) == (hub_config is None):
            raise ValueError("LocalHub: give the chart values or a bare hub_config, not both")
        if values is not None and (extra_config or profile_list):
            raise ValueError("LocalHub: extra_config and profile_list belong in the chart values")
        self.workspace = workspace
        self.values: dict[str, Any] = (
            dict(values) if values is not None else plain_values(hub_config or {}, extra_config, profile_list)
        )
        self.values.setdefault("hub", {}).setdefault("cookieSecret", workspace.secret("cookie_secret"))
        self.values.setdefault("proxy", {}).setdefault("secretToken", workspace.secret("proxy_token"))
        self.extra_files = dict(extra_files or {})
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.proxy_bin = proxy_bin
        self.spawner_wiring = spawner_wiring
        self.spawner_settings = dict(spawner_settings or {})
        """Merged into `LAB` for the spawner wiring (values only; the wiring is code)."""
        self.extra_env = dict(extra_env or {})
        """Added to the hub's environment (what its pod would get from Kubernetes beyond the chart's env)."""
        self.run_dir = _new_run_dir(workspace)
        self.log_path = self.run_dir / "hub.log"
        self.config_path = self.run_dir / "jupyterhub_config.py"
        self.port = 0
        self.api_token = secrets.token_hex(32)
        self._proc: subprocess.Popen[bytes] | None = None
        self._env: dict[str, str] = {}

    # -- addresses -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The public URL (through the proxy), e.g. http://127.0.0.1:PORT."""
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/hub/api"

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def hub_config(self) -> dict[str, dict[str, Any]]:
        """`hub.config` of the values the hub runs (read-only view)."""
        config: dict[str, dict[str, Any]] = self.values.get("hub", {}).get("config") or {}
        return config

    @property
    def profile_list(self) -> list[dict[str, Any]]:
        """`singleuser.profileList` of the values the hub runs (read-only view)."""
        profiles: list[dict[str, Any]] = (self.values.get("singleuser") or {}).get("profileList") or []
        return profiles

    @property
    def etc(self) -> Path:
        """The workspace's stand-in for the pod's /usr/local/etc/jupyterhub."""
        return Path(self.workspace.path_map(HUB_ETC))

    def _install_chart_files(self) -> Path:
        """Render the chart and lay out what the hub pod mounts; returns the chart's jupyterhub_config.py."""
        chart = ChartHub.render(self.values)
        etc = self.etc
        for folder in (etc / "config", etc / "secret"):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        # The ConfigMap (resource names, the chart's two Python files) under config/, as the pod mounts it.
        for key, text in chart.configmap.items():
            (etc / "config" / key).write_text(text)
        for name in CHART_FILES:  # mounted from the ConfigMap beside config/ (subPath)
            (etc / name).write_text(chart.configmap[name].replace(HUB_ETC, str(etc)))
        # The Secret under secret/: values.yaml with its in-container paths mapped into the workspace.
        stored_keys = self.workspace.state_dir / CRYPT_KEYS
        if not stored_keys.exists():  # the chart's lookup keeps the first install's keys
            stored_keys.write_bytes(chart.secret[CRYPT_KEYS])
            stored_keys.chmod(0o600)
        secret = {**chart.secret, CRYPT_KEYS: stored_keys.read_bytes()}
        values = map_paths(yaml.safe_load(secret["values.yaml"]), self.workspace.path_map, [HUB_ETC])
        secret["values.yaml"] = yaml.safe_dump(values).encode()
        for key, data in secret.items():
            target = etc / "secret" / key
            target.write_bytes(data)
            target.chmod(0o600)
        _write_extra_files(self.workspace, chart.extra_files)
        self._env = dict(chart.env)
        return etc / "jupyterhub_config.py"

    def render_config(self) -> str:
        """Lay out the chart's files and return the lab's jupyterhub_config.py (the chart's, then the wiring)."""
        chart_config = self._install_chart_files()
        self.port = free_port()
        hub_bind_url = f"http://{LOCALHOST}:{free_port()}"
        proxy_api_url = f"http://{LOCALHOST}:{free_port()}"
        # What Kubernetes adds to every pod for the namespace's Services (the chart reads the ports).
        self._env.update(
            PROXY_API_SERVICE_PORT=proxy_api_url.rsplit(":", 1)[1], HUB_SERVICE_PORT=hub_bind_url.rsplit(":", 1)[1]
        )
        lab = {
            "repo_root": str(REPO_ROOT),
            "chart_config": str(chart_config),
            "spawner_class": SPAWNER_CLASS,
            "log_level": self.log_level,
            "singleuser": str(VENV_BIN / "jupyterhub-singleuser"),
            "spawner_args": (["--allow-root"] if os.geteuid() == 0 else [])
            + ["--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            "homes_root": str(self.workspace.homes_root),
            "bind_url": f"http://{LOCALHOST}:{self.port}",
            "hub_bind_url": hub_bind_url,
            "culler_url": f"--url={hub_bind_url}/hub/api",
            "proxy_api_url": proxy_api_url,
            "proxy_bin": str(self.proxy_bin),
            "db_url": f"sqlite:///{self.workspace.state_dir / 'jupyterhub.sqlite'}",
            "pid_file": str(self.run_dir / "jupyterhub.pid"),
            "service": HARNESS_SERVICE,
            "api_token": self.api_token,
            **self.spawner_settings,
        }
        return LAB_CONFIG.format(lab_json=json.dumps(lab, sort_keys=True), spawner_wiring=self.spawner_wiring.rstrip())

    def start(self) -> LocalHub:
        if self.running:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _write_extra_files(self.workspace, self.extra_files)
        self.config_path.write_text(self.render_config())
        # hub.log is read while the hub runs (tests, `log_text()`): the config file's `print`s and the
        # single-user servers' output go to stdout, which Python block-buffers into a file. Ask for
        # unbuffered output here rather than rely on the caller's environment having PYTHONUNBUFFERED.
        env = {
            **os.environ,
            **self._env,
            **self.extra_env,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("JUPYTERHUB_API_TOKEN", None)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(VENV_BIN / "jupyterhub"), "-f", str(self.config_path)],
                cwd=self.run_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"jupyterhub exited with {self._proc.returncode}; log {self.log_path}:\n{tail(self.log_path)}"
                )
            with contextlib.suppress(OSError):
                if HubSession(self.url).get("/hub/health").status == 200:
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"jupyterhub did not answer in {self.start_timeout} s; log:\n{tail(self.log_path)}")

    def stop(self) -> None:
        if self._proc is not None:
            stop_process_group(self._proc, timeout=15)
            self._proc = None

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- checks ----------------------------------------------------------------------------
    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def session(self) -> HubSession:
        return HubSession(self.url)

    def api(self, method: str, path: str, body: Any = None) -> HttpResponse:
        """A REST call with the harness service's admin token, e.g. api("GET", "/users/alice")."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"token {self.api_token}", "Content-Type": "application/json"}
        return HubSession(self.api_url).request(method, path, data=data, headers=headers)

    def wait_for_server(self, username: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the user's default server is ready; returns its REST model."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.api("GET", f"/users/{username}")
            if response.status == 200:
                server: dict[str, Any] = response.json().get("servers", {}).get("", {})
                if server.get("ready"):
                    return server
            time.sleep(0.5)
        raise TimeoutError(f"{username}'s server was not ready after {timeout} s; log:\n{tail(self.log_path)}")

    def wait_for_stopped(self, username: str, timeout: float = 30.0) -> None:
        """Wait until the user has no running or pending default server."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.api("GET", f"/users/{username}")
            if response.status == 200 and "" not in response.json().get("servers", {}):
                return
            time.sleep(0.3)
        raise TimeoutError(f"{username}'s server did not stop after {timeout} s; log:\n{tail(self.log_path)}")
