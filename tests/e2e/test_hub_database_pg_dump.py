"""The PostgreSQL hub database's backup (dsaas:hub.database.backup pg_dump), against a real PostgreSQL server:
JupyterHub 5.5's own ORM makes the hub's schema and rows, the job's pg-dump.sh dumps it with nothing but the
libpq variables the program derives from dsaas:hubDatabaseUrl, and pg_restore brings it back into an empty
database as docs/restore.md says. Debian's server and client (PostgreSQL 15 here; the job's image carries 18,
which reads every server from 9.2 on)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from components import backup_render as render
from config.hub import pg_url_problems
from tools.lab.postgres import PostgresServer

pytestmark = pytest.mark.slow

# A password with every character a URL must escape: the program decodes it, libpq gets it verbatim.
HUB_PASSWORD = "p@ss:w/rd%25?#hub"
USERS = ("alice", "Jürgen.Müller", "zoë")
# docs/restore.md's two commands for a PostgreSQL hub database, connection from libpq's variables.
RESTORE = ("pg_restore", "--clean", "--if-exists", "--no-owner", "--exit-on-error", "--single-transaction")
RESET_SESSIONS = ("psql", "--no-psqlrc", "-c", "UPDATE users SET cookie_id = replace(gen_random_uuid()::text, '-', '')")


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    postgres = PostgresServer()
    try:
        escaped = HUB_PASSWORD.replace("'", "''")
        postgres.psql(f"CREATE ROLE hub LOGIN PASSWORD '{escaped}'")
        postgres.psql("CREATE DATABASE jupyterhub OWNER hub")
        yield postgres
    finally:
        postgres.close()


def hub_url(server: PostgresServer, password: str = HUB_PASSWORD, driver: str = "+psycopg2") -> str:
    """dsaas:hubDatabaseUrl as an operator writes it for the hub (SQLAlchemy form, the password URL-escaped)."""
    return f"postgresql{driver}://hub:{quote(password, safe='')}@127.0.0.1:{server.port}/jupyterhub?sslmode=disable"


@pytest.fixture(scope="module")
def hub_database(server: PostgresServer) -> str:
    """The schema and rows JupyterHub itself writes: its ORM creates the tables at start-up (`new_session_factory`)."""
    from jupyterhub import orm

    url = hub_url(server)
    session = orm.new_session_factory(url)()
    group = orm.Group(name="data-science")
    session.add(group)
    for name in USERS:
        user = orm.User(name=name)
        user.groups.append(group)
        session.add(user)
    session.commit()
    engine = session.get_bind()
    session.close()
    engine.dispose()
    return url


def run_dump(server: PostgresServer, url: str, out: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{server.bin}:{os.environ['PATH']}",
        **render.render_pg_connection(url),
        "PG_CLIENT_MAJOR": str(server.major),
        "OUT": str(out),
        **extra,
    }
    return subprocess.run(
        ["bash", str(render.SCRIPTS_DIR / "pg-dump.sh")], env=env, capture_output=True, text=True, check=False
    )


def test_the_job_dumps_the_hub_database_and_pg_restore_brings_it_back(
    server: PostgresServer, hub_database: str, tmp_path: Path
) -> None:
    assert pg_url_problems(hub_database) == []
    result = run_dump(server, hub_database, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"bytes from PostgreSQL {server.major}" in result.stdout
    assert HUB_PASSWORD not in result.stdout + result.stderr
    payload = tmp_path / "payload"
    assert payload.read_bytes()[:5] == b"PGDMP" and len((tmp_path / "stamp").read_text().strip()) == 16
    # Then the hub's database changes (memberships gone, alice made an admin) and the dump goes back as
    # docs/restore.md says: pg_restore --clean as the URL's user, then every cookie_id replaced.
    server.psql("DELETE FROM user_group_map; UPDATE users SET admin = true WHERE name = 'alice'", "jupyterhub")
    cookies = set(server.psql("SELECT cookie_id FROM users", "jupyterhub").split())
    libpq = {"PATH": f"{server.bin}:{os.environ['PATH']}", **render.render_pg_connection(hub_database)}
    restored = subprocess.run(
        [*RESTORE, f"--dbname={libpq['PGDATABASE']}", str(payload)],
        env=libpq,
        capture_output=True,
        text=True,
        check=False,
    )
    assert restored.returncode == 0, restored.stderr
    assert server.psql("SELECT name FROM users ORDER BY name", "jupyterhub").splitlines() == sorted(USERS)
    assert server.psql("SELECT count(*) FROM user_group_map", "jupyterhub").strip() == str(len(USERS))
    assert server.psql("SELECT count(*) FROM users WHERE admin", "jupyterhub").strip() == "0"
    reset = subprocess.run([*RESET_SESSIONS], env=libpq, capture_output=True, text=True, check=False)
    assert reset.returncode == 0 and reset.stdout.strip() == f"UPDATE {len(USERS)}", reset.stderr
    renewed = server.psql("SELECT cookie_id FROM users", "jupyterhub").split()
    assert len(renewed) == len(USERS) and not set(renewed) & cookies
    assert all(len(cookie) == 32 and int(cookie, 16) >= 0 for cookie in renewed)  # uuid4().hex's shape


def test_a_refused_login_is_one_line_without_the_password(
    server: PostgresServer, hub_database: str, tmp_path: Path
) -> None:
    wrong = hub_url(server, password="not-the-password")
    result = run_dump(server, wrong, tmp_path)
    assert result.returncode == 1 and not (tmp_path / "payload").exists()
    assert f"cannot reach the hub database hub@127.0.0.1:{server.port}/jupyterhub" in result.stderr
    assert "password authentication failed" in result.stderr and "dsaas:hubDatabaseUrl" in result.stderr
    assert "not-the-password" not in result.stderr + result.stdout


def test_a_server_newer_than_the_jobs_pg_dump_is_refused_naming_the_pin(
    server: PostgresServer, hub_database: str, tmp_path: Path
) -> None:
    result = run_dump(server, hub_database, tmp_path, PG_CLIENT_MAJOR=str(server.major - 1))
    assert result.returncode == 1 and not (tmp_path / "payload").exists()
    assert f"runs PostgreSQL {server.major}" in result.stderr and "POSTGRES_CLIENT_IMAGE" in result.stderr
