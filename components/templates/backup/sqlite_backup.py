"""Writes a consistent copy of a live SQLite database to stdout: sqlite_backup.py DATABASE.

Runs in the hub image (its Python) beside the hub, on the hub's own database volume. SQLite's online backup
API (`sqlite3.Connection.backup`) copies the pages under SQLite's own locking, so the hub can keep
writing; a plain file copy could catch a half-written transaction. The copy is made in memory (the
hub database is small), checked with `PRAGMA integrity_check`, and serialized to stdout.
"""

import sqlite3
import sys


def backup(path: str) -> bytes:
    source = sqlite3.connect(f"file:{path}?mode=rw", uri=True)
    copy = sqlite3.connect(":memory:")
    try:
        source.backup(copy)
        (check,) = copy.execute("PRAGMA integrity_check").fetchone()
        if check != "ok":
            raise SystemExit(f"the backup of {path} fails integrity_check: {check}")
        return copy.serialize()
    finally:
        copy.close()
        source.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: sqlite_backup.py DATABASE")
    sys.stdout.buffer.write(backup(sys.argv[1]))
    sys.stdout.buffer.flush()
