"""After a restore, no login cookie made from an old backup gets into the hub (security review, issue 19).

The attack the review ran: with read access to the bucket, take the cookie secret (then in Velero's copy
of the hub's Secrets) and a user's `cookie_id` (in the hub database dump), sign
`jupyterhub-hub-login=<cookie_id>` as the hub does (tornado's signed value, JupyterHub's
`BaseHandler.get_current_user_cookie`), and open /hub/admin. Here a real JupyterHub (the chart's own
jupyterhub_config.py through `tools.lab.hub.LocalHub`) first accepts such a cookie, then, after what a
restore now does (a new cookie secret from `cookie_secret_keepers`, `tools.restore reset-sessions` on the
restored dump), refuses it, and refuses an old cookie_id even when signed with the new secret.
"""

from __future__ import annotations

import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from tornado.web import create_signed_value

from components.hub_render import cookie_secret_keepers
from tests.conftest import load_settings
from tools.dr.command import main as restore_main
from tools.dr.sessions import reset_cookie_ids
from tools.lab.hub import HubWorkspace, LocalHub

COOKIE = "jupyterhub-hub-login"
ADMIN = "alice"
HUB_CONFIG: dict[str, dict[str, Any]] = {
    "JupyterHub": {"authenticator_class": "dummy"},
    "Authenticator": {"admin_users": [ADMIN], "allow_all": True},
}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _admin_page_with(hub: LocalHub, cookie: bytes) -> int:
    request = urllib.request.Request(f"{hub.url}/hub/admin", headers={"Cookie": f"{COOKIE}={cookie.decode()}"})
    try:
        with urllib.request.build_opener(_NoRedirect()).open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def _forge(secret_hex: str, cookie_id: str) -> bytes:
    # JupyterHub takes a hex cookie_secret as its bytes (JupyterHub._validate_secret_key).
    return create_signed_value(bytes.fromhex(secret_hex), COOKIE, cookie_id)


def _cookie_id(database: Path, user: str) -> str:
    connection = sqlite3.connect(database)
    try:
        (value,) = connection.execute("SELECT cookie_id FROM users WHERE name = ?", (user,)).fetchone()
        return str(value)
    finally:
        connection.close()


def test_a_restore_declares_a_new_cookie_secret() -> None:
    settings = load_settings("prod")
    assert cookie_secret_keepers(settings, None) == {}  # a stack that never restored keeps its sessions
    planned = cookie_secret_keepers(settings, "2026-12-01T02:15:00Z")
    restore = settings.restore.model_copy(update={"generation": 1})
    bumped = cookie_secret_keepers(settings.model_copy(update={"restore": restore}), None)
    assert planned == {"restorePlanWritten": "2026-12-01T02:15:00Z"} and bumped == {"restoreGeneration": "1"}


@pytest.mark.slow
def test_a_cookie_forged_from_an_old_backup_is_refused_after_the_restore(tmp_path: Path) -> None:
    workspace = HubWorkspace.create(tmp_path / "hub")
    database = workspace.state_dir / "jupyterhub.sqlite"
    old_secret = workspace.secret("cookie_secret")
    with LocalHub(workspace, hub_config=HUB_CONFIG, log_level="INFO") as hub:
        old_cookie_id = _cookie_id(database, ADMIN)  # what the hub database dump holds
        forged = _forge(old_secret, old_cookie_id)
        assert _admin_page_with(hub, forged) == 200, "the review's attack works on an unprotected hub"

    # The restore: the dump is copied back after reset-sessions, and the hub gets a new cookie secret.
    assert restore_main(["reset-sessions", str(database)]) == 0
    new_cookie_id = _cookie_id(database, ADMIN)
    assert new_cookie_id != old_cookie_id
    new_secret = workspace.secret("rotated_cookie_secret")
    values = {"hub": {"config": HUB_CONFIG, "cookieSecret": new_secret}}
    with LocalHub(workspace, values=values, log_level="INFO") as hub:
        assert _admin_page_with(hub, forged) == 302  # the old signature no longer verifies: to the login page
        assert _admin_page_with(hub, _forge(new_secret, old_cookie_id)) == 302  # an old id names no one
        assert _admin_page_with(hub, _forge(new_secret, new_cookie_id)) == 200  # the check itself works


def test_reset_sessions_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such hub database"):
        reset_cookie_ids(tmp_path / "jupyterhub.sqlite")
    assert restore_main(["reset-sessions", str(tmp_path / "jupyterhub.sqlite")]) == 2
