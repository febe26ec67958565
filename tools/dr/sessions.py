"""Invalidates every login session held in a restored hub database: a new `cookie_id` for each user.

JupyterHub's login cookie (`jupyterhub-hub-login`) is the user's `users.cookie_id`, signed with the hub's
cookie secret; the hub finds the user by that id (`jupyterhub.orm.User.cookie_id`, a `uuid4().hex` made by
`jupyterhub.utils.new_token`). A database dump in the bucket holds every id. A restore rotates the cookie
secret (`dsaas:restore.generation`, components/hub_render.cookie_secret_keepers), so no old signature
verifies; new ids also make an old id worthless should the old secret ever be known, and they are what
JupyterHub itself would mint. Everyone logs in again after a restore either way.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path


def reset_cookie_ids(database: Path) -> int:
    """Gives every user a fresh cookie_id in the SQLite hub database at `database`; returns how many."""
    if not database.is_file():
        raise FileNotFoundError(f"{database}: no such hub database file")
    connection = sqlite3.connect(f"file:{database}?mode=rw", uri=True)
    try:
        with connection:  # one transaction: all ids change, or none
            ids = [row[0] for row in connection.execute("SELECT id FROM users")]
            for user_id in ids:
                connection.execute("UPDATE users SET cookie_id = ? WHERE id = ?", (uuid.uuid4().hex, user_id))
        return len(ids)
    finally:
        connection.close()


__all__ = ["reset_cookie_ids"]
