"""Run a real JupyterHub on 127.0.0.1 from z2jh-shaped configuration data.

The hub configuration is data, the way the z2jh chart receives it:

- `hub_config`: `hub.config` (class name → trait → value), applied like z2jh's jupyterhub_config.py does:
  `c[ClassName].update(values)`, dropping the secrets z2jh manages itself (JupyterHub.cookie_secret,
  proxy_auth_token, services; ConfigurableHTTPProxy.auth_token; CryptKeeper.keys) and refusing lower-case
  section names;
- `extra_config`: `hub.extraConfig` (name → Python source), executed after hub.config in sorted key order
  in the config file's namespace (`c` is defined there);
- `profile_list`: `singleuser.profileList` in KubeSpawner's format, served by `tools.lab.spawner.LabSpawner`;
- `extra_files`: `hub.extraFiles` as mount path → content. Files are written under the workspace's
  `files/` root; `HubWorkspace.path_map("/usr/local/etc/jupyterhub/templates")` tells where a mount path
  lands, and `map_paths(value, workspace.path_map, prefixes)` rewrites such paths inside config data.

After hub.config and extraConfig the lab's own wiring always wins: addresses and ports (127.0.0.1 only),
the proxy from tools/lab/node_modules, the sqlite database and cookie secret in the workspace, the spawner
class, and an extra service `lab-harness` whose token has the admin role (for REST checks).

Hub, proxy and single-user servers log to `<run dir>/hub.log` (`LocalHub.log_path`, `LocalHub.log_text()`).
`stop()` sends SIGTERM to the hub (which stops the proxy and the servers), then kills what is left.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import secrets
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

from tools.lab.procs import LOCALHOST, free_port, stop_process_group, tail

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
LAB_DIR = Path(__file__).resolve().parent
PROXY_BIN = LAB_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
VENV_BIN = Path(sys.executable).parent
SPAWNER_CLASS = "tools.lab.spawner.LabSpawner"
HARNESS_SERVICE = "lab-harness"
# z2jh's jupyterhub_config.py drops these from hub.config: the chart manages them itself.
Z2JH_MANAGED = {"JupyterHub": ("proxy_auth_token", "cookie_secret", "services"), "CryptKeeper": ("keys",)}
Z2JH_MANAGED_PROXY = ("auth_token",)


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


CONFIG_TEMPLATE = """\
# Generated by tools/lab/hub.py: the lab's stand-in for z2jh's jupyterhub_config.py.
import json
import sys

c = get_config()  # noqa: F821
LAB = json.loads({lab_json!r})
sys.path.insert(0, LAB["repo_root"])

# 1. Defaults, set before hub.config as z2jh sets its own.
c.JupyterHub.spawner_class = LAB["spawner_class"]
c.JupyterHub.log_level = LAB["log_level"]
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cookie_secret = bytes.fromhex(LAB["cookie_secret"])
c.CryptKeeper.keys = [LAB["crypt_key"]]
c.Spawner.cmd = [LAB["singleuser"]]
c.Spawner.args = LAB["spawner_args"]
c.Spawner.default_url = "/lab"
c.LabSpawner.profile_list = LAB["profile_list"]
c.LabSpawner.homes_root = LAB["homes_root"]

# 2. hub.config, passed through like z2jh does.
for section, cfg in LAB["hub_config"].items():
    cfg = dict(cfg)
    for managed in LAB["z2jh_managed"].get(section, []):
        cfg.pop(managed, None)
    if not section[:1].isupper():
        print(
            f"FATAL: Invalid hub.config section name: {{section}}."
            " hub.config sections must be Configurable class names (e.g. JupyterHub).",
            file=sys.stderr,
        )
        sys.exit(1)
    print(f"Loading pass-through config section hub.config.{{section}}")
    c[section].update(cfg)

# 3. hub.extraConfig, in sorted key order, in this namespace.
for _key, _source in sorted(LAB["extra_config"].items()):
    print(f"Loading extra config: {{_key}}")
    exec(compile(_source, f"hub.extraConfig.{{_key}}", "exec"))

# 4. The lab's wiring, which always wins.
if c.JupyterHub.spawner_class != LAB["spawner_class"]:
    print(f"lab: replacing spawner_class {{c.JupyterHub.spawner_class!r}} with {{LAB['spawner_class']!r}}")
c.JupyterHub.spawner_class = LAB["spawner_class"]
c.JupyterHub.bind_url = LAB["bind_url"]
c.JupyterHub.hub_bind_url = LAB["hub_bind_url"]
c.JupyterHub.hub_connect_url = LAB["hub_bind_url"]
c.ConfigurableHTTPProxy.api_url = LAB["proxy_api_url"]
c.ConfigurableHTTPProxy.command = [LAB["proxy_bin"]]
c.ConfigurableHTTPProxy.should_start = True
c.JupyterHub.db_url = LAB["db_url"]
c.JupyterHub.pid_file = LAB["pid_file"]
c.LocalProcessSpawner.ip = "127.0.0.1"
if not LAB["profile_list"] and "profile_list" in c.KubeSpawner:
    # a profile list given as hub.config.KubeSpawner.profile_list (instead of singleuser.profileList)
    c.LabSpawner.profile_list = c.KubeSpawner.profile_list
_services = [s for s in c.JupyterHub.get("services", []) if s.get("name") != LAB["service"]]
c.JupyterHub.services = _services + [{{"name": LAB["service"], "api_token": LAB["api_token"]}}]
_roles = [dict(r) for r in c.JupyterHub.get("load_roles", [])]
_admin = next((r for r in _roles if r.get("name") == "admin"), None)
if _admin is None:
    _roles.append({{"name": "admin", "services": [LAB["service"]]}})
else:
    _admin["services"] = list(_admin.get("services", [])) + [LAB["service"]]
c.JupyterHub.load_roles = _roles
"""


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
        hub_config: Mapping[str, Mapping[str, Any]],
        extra_config: Mapping[str, str] | None = None,
        profile_list: list[dict[str, Any]] | None = None,
        extra_files: Mapping[str, str | bytes] | None = None,
        log_level: str = "DEBUG",
        start_timeout: float = 60.0,
        proxy_bin: Path = PROXY_BIN,
    ) -> None:
        if not proxy_bin.exists():
            raise RuntimeError(f"{proxy_bin} is missing: run `make setup` (npm ci in tools/lab)")
        self.workspace = workspace
        self.hub_config = {section: dict(values) for section, values in hub_config.items()}
        self.extra_config = dict(extra_config or {})
        self.profile_list = [dict(p) for p in (profile_list or [])]
        self.extra_files = dict(extra_files or {})
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.proxy_bin = proxy_bin
        self.run_dir = _new_run_dir(workspace)
        self.log_path = self.run_dir / "hub.log"
        self.config_path = self.run_dir / "jupyterhub_config.py"
        self.port = 0
        self.api_token = secrets.token_hex(32)
        self._proc: subprocess.Popen[bytes] | None = None

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

    def render_config(self) -> str:
        self.port = free_port()
        lab = {
            "repo_root": str(REPO_ROOT),
            "spawner_class": SPAWNER_CLASS,
            "log_level": self.log_level,
            "cookie_secret": self.workspace.secret("cookie_secret"),
            "crypt_key": self.workspace.secret("crypt_key"),
            "singleuser": str(VENV_BIN / "jupyterhub-singleuser"),
            "spawner_args": (["--allow-root"] if os.geteuid() == 0 else [])
            + ["--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            "profile_list": self.profile_list,
            "homes_root": str(self.workspace.homes_root),
            "hub_config": self.hub_config,
            "z2jh_managed": {**Z2JH_MANAGED, "ConfigurableHTTPProxy": Z2JH_MANAGED_PROXY},
            "extra_config": self.extra_config,
            "bind_url": f"http://{LOCALHOST}:{self.port}",
            "hub_bind_url": f"http://{LOCALHOST}:{free_port()}",
            "proxy_api_url": f"http://{LOCALHOST}:{free_port()}",
            "proxy_bin": str(self.proxy_bin),
            "db_url": f"sqlite:///{self.workspace.state_dir / 'jupyterhub.sqlite'}",
            "pid_file": str(self.run_dir / "jupyterhub.pid"),
            "service": HARNESS_SERVICE,
            "api_token": self.api_token,
        }
        return CONFIG_TEMPLATE.format(lab_json=json.dumps(lab, sort_keys=True))

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
