"""Whether an inventory is the cluster's own, as it wrote it (issue 21, item 11).

The inventory CronJob signs every inventory with the stack's inventory key (HMAC-SHA256,
components/templates/backup/sign_inventory.py, imported here so both sides compute the same bytes). The key
is a Pulumi random secret: only the cluster (a Secret mounted into the job's signing container) and the stack
(its secret output `inventorySigningKey`) hold it; the object store's keys cannot forge an inventory. The
planner reads it from the environment, never from a command line.

What the signature does not settle, the planner checks beside it: that `latest.json` is the newest inventory
in the folder (an older signed one copied over it is a replay) and that a timestamped object holds the
inventory of its own time.
"""

from __future__ import annotations

import hmac
import importlib.util
import os
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from config.restore_plan import shown
from tools.dr.restore import PlanError

KEY_ENV = "DSAAS_INVENTORY_KEY"
OUTPUT = "inventorySigningKey"
SCRIPT = Path(__file__).resolve().parents[2] / "components" / "templates" / "backup" / "sign_inventory.py"
STAMP = re.compile(r"^(?P<stamp>[0-9]{8}T[0-9]{6}Z)\.json$")


@cache
def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dsaas_sign_inventory", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def export_hint(stack: str) -> str:
    """How to hand the key over. The stack that signed is the lost cluster's, whose state keeps the key: a stack
    rebuilt under another name (docs/runbooks.md: prod-rebuilt) has a new key of its own."""
    return (
        f'export {KEY_ENV}="$(pulumi stack output {OUTPUT} --show-secrets --stack <the lost cluster\'s stack>)" '
        f"(the stack that wrote the inventory: {stack} itself, or the old stack it was rebuilt from; do not destroy "
        "that stack before the restore)"
    )


def signing_key(stack: str) -> bytes:
    """The stack's inventory key from the environment, or `PlanError` saying how to set it."""
    value = os.environ.get(KEY_ENV, "").strip()
    if not value:
        raise PlanError(
            f"{KEY_ENV} is not set, so the inventory's signature cannot be checked: give the planner the stack's "
            f"inventory key from the Pulumi state (never on a command line): {export_hint(stack)}"
        )
    return value.encode()


def sign(document: dict[str, Any], key: bytes) -> dict[str, Any]:
    """`document` with the signature the CronJob adds (for tests and the drill)."""
    return {**document, "signature": _script().signature(document, key)}


def verify(inventory: Any, key: bytes, where: str, stack: str) -> None:
    """`PlanError` unless `inventory` carries a valid signature made with `key`; the message names the object,
    what is wrong and what to do."""
    script = _script()
    given = inventory.get("signature") if isinstance(inventory, dict) else None
    other = "plan from another inventory (--inventory <YYYYMMDDTHHMMSSZ>) or from ONTAP (--from ontap)"
    if given is None:
        raise PlanError(
            f"{where} carries no signature: it was written before inventories were signed, or someone removed "
            f"the signature. Nothing vouches for its homes: {other}; only if you know this object is the "
            "cluster's own, plan from it with --unsigned (the plan records that it was unsigned)"
        )
    if not isinstance(given, dict) or given.get("algorithm") != script.ALGORITHM:
        raise PlanError(
            f"{where}'s signature is not an {script.ALGORITHM} signature of the dsaas inventory CronJob: {other}"
        )
    if given.get("keyId") != script.key_id(key):
        raise PlanError(
            f"{where} was signed with another key (key id {shown(given.get('keyId'))}, the key in {KEY_ENV} has "
            f"{script.key_id(key)}): another stack's inventory, a key from before the stack's key was replaced, or "
            f"a forgery. Check {KEY_ENV} ({export_hint(stack)}), then {other}"
        )
    try:
        expected = script.signature(inventory, key)["value"]
    except (TypeError, ValueError):  # NaN or a value JSON cannot spell: no CronJob wrote that
        expected = ""
    if not isinstance(given.get("value"), str) or not hmac.compare_digest(given["value"], expected):
        raise PlanError(
            f"{where} does not match its signature: it was changed after the cluster signed it (a home, a data "
            f"LIF, a time or an entry added or dropped). Do not plan from it; find out who changed it, and {other}"
        )


def stamp_of(written: str) -> str:
    """The object name's time (20261201T021500Z) of an inventory written at `written`."""
    return f"{datetime.fromisoformat(written.replace('Z', '+00:00')).astimezone(UTC):%Y%m%dT%H%M%SZ}"


def check_object_time(location: str, written: str) -> None:
    """A timestamped object must hold the inventory of its own time: an older signed inventory copied under a
    newer name is a replay."""
    found = STAMP.match(location.rsplit("/", 1)[-1])
    if found and found["stamp"] != stamp_of(written):
        raise PlanError(
            f"{location} holds the inventory written {written} (signed), not the one of its name's time: an "
            "older inventory was copied over it. Plan from another inventory (--inventory) after finding out who "
            "changed it"
        )


def newest_stamp(client: Any, bucket: str, folder: str) -> str | None:
    """The newest timestamped inventory's stamp under `folder`/ (ListObjectsV2, every page), or None."""
    newest: str | None = None
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{folder}/"):
        for item in page.get("Contents", []):
            found = STAMP.match(str(item["Key"]).rsplit("/", 1)[-1])
            if found and (newest is None or found["stamp"] > newest):
                newest = found["stamp"]
    return newest


def check_latest(newest: str | None, written: str, location: str) -> None:
    """`latest.json` must be the newest inventory: an older signed inventory copied over it is a replay (or
    the last run stopped between its two uploads); either way the planner names the newer one."""
    if newest is not None and newest > stamp_of(written):
        raise PlanError(
            f"{location} holds the inventory written {written}, but the folder has a newer one ({newest}.json): "
            "latest.json was replaced by an older inventory, or the last run stopped before updating it. "
            f"Plan from the newest after checking it: --inventory {newest}"
        )


__all__ = [
    "KEY_ENV",
    "OUTPUT",
    "check_latest",
    "check_object_time",
    "export_hint",
    "newest_stamp",
    "sign",
    "signing_key",
    "stamp_of",
    "verify",
]
