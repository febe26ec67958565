"""A real PostgreSQL server on 127.0.0.1 for the tests: Debian's postgresql (`make setup` installs it), run from
a data directory of its own as `nobody` (initdb and postgres refuse root), with scram-sha-256 passwords on TCP
as a hospital's database server would ask for them, stopped and deleted by `close()`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tools.lab.procs import free_port

NOBODY = 65534
DEBIAN_SERVERS = Path("/usr/lib/postgresql")


def server_bin() -> Path:
    """The newest installed server's bin directory (Debian keeps one per major)."""
    majors = sorted((p for p in DEBIAN_SERVERS.glob("*/bin/postgres")), key=lambda p: int(p.parts[-3]))
    if not majors:
        raise RuntimeError("no PostgreSQL server is installed: run the README's test command (it installs it)")
    return majors[-1].parent


class PostgresServer:
    """`superuser_password` for the role `postgres` over TCP; local socket connections are trusted (the suite's
    own set-up only, through `psql`)."""

    def __init__(self, superuser_password: str = "lab-superuser-password") -> None:
        self.bin = server_bin()
        self.major = int(self.bin.parts[-2])
        self.port = free_port()
        self.superuser_password = superuser_password
        # /var/tmp, not pytest's tmp_path: `nobody` must reach the directory, and pytest's is root's only.
        self.root = Path(tempfile.mkdtemp(prefix="dsaas-postgres-", dir="/var/tmp"))
        self.data = self.root / "data"
        os.chown(self.root, NOBODY, NOBODY)
        password_file = self.root / "superuser-password"
        password_file.write_text(superuser_password + "\n")
        os.chown(password_file, NOBODY, NOBODY)
        self._as_nobody(
            [
                str(self.bin / "initdb"),
                "--pgdata",
                str(self.data),
                "--username",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={password_file}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )
        password_file.unlink()
        self.process = subprocess.Popen(
            [
                "setpriv",
                f"--reuid={NOBODY}",
                f"--regid={NOBODY}",
                "--clear-groups",
                str(self.bin / "postgres"),
                "-D",
                str(self.data),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"port={self.port}",
                "-c",
                f"unix_socket_directories={self.root}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "server.log").open("wb"),
        )
        deadline = time.monotonic() + 30
        while subprocess.run(
            [str(self.bin / "pg_isready"), "-h", str(self.root), "-p", str(self.port)], capture_output=True
        ).returncode:
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.root / "server.log").read_text(errors="replace")[-2000:]
                self.close()
                raise RuntimeError(f"PostgreSQL did not start:\n{log}")
            time.sleep(0.2)

    def _as_nobody(self, command: list[str]) -> None:
        subprocess.run(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command],
            check=True,
            capture_output=True,
            cwd=self.root,
        )

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Runs `sql` as the superuser over the local socket; its rows, one a line."""
        result = subprocess.run(
            [
                str(self.bin / "psql"),
                "--no-psqlrc",
                "--tuples-only",
                "--no-align",
                "--set=ON_ERROR_STOP=1",
                "-h",
                str(self.root),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown: a test's idle connection does not hold it
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
