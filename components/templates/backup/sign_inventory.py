"""Signs the volume inventory (contract "dsaas-inventory/1") so the restore planner can tell it is the cluster's.

HMAC-SHA256 with the stack's inventory key (a Pulumi random secret, in the Secret only this container mounts;
the planner gets it from the stack's secret output `inventorySigningKey`). The MAC covers the whole document
but its `signature` field, as canonical JSON (sorted keys, no spaces, ASCII escapes), after a domain line:
a changed home, data LIF or time, a dropped entry, or another stack's inventory no longer verifies.

Runs in the hub image's Python (standard library only), after `collect` wrote ${OUT}/payload and before the
uploader copies it: it has no API token and no S3 key, and neither of those containers has this key.
The restore planner (tools/dr/signing.py) imports this file, so both sides compute the same bytes.
Environment: OUT (the folder with `payload`), KEY_FILE (the key, mounted read-only).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
from pathlib import Path
from typing import Any

ALGORITHM = "hmac-sha256"
DOMAIN = b"dsaas-inventory/1 signature\n"


def canonical(document: dict[str, Any]) -> bytes:
    """The bytes the MAC covers: the document without `signature`, in one spelling whatever wrote it."""
    unsigned = {key: value for key, value in document.items() if key != "signature"}
    text = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return DOMAIN + text.encode("ascii")


def key_id(key: bytes) -> str:
    """Names the key without revealing it (a MAC of a fixed text): says which stack's key signed."""
    return hmac.new(key, b"dsaas-inventory key id", hashlib.sha256).hexdigest()[:16]


def signature(document: dict[str, Any], key: bytes) -> dict[str, str]:
    mac = hmac.new(key, canonical(document), hashlib.sha256).hexdigest()
    return {"algorithm": ALGORITHM, "keyId": key_id(key), "value": mac}


def main() -> int:
    out = Path(os.environ["OUT"])
    key = Path(os.environ["KEY_FILE"]).read_bytes().strip()
    if len(key) < 32:
        print("the inventory key is shorter than 32 bytes: refusing to sign with it", file=sys.stderr)
        return 1
    document = json.loads((out / "payload").read_bytes())
    document["signature"] = signature(document, key)
    staged = out / "payload.signed"
    staged.write_text(json.dumps(document, ensure_ascii=True, allow_nan=False), encoding="ascii")
    staged.replace(out / "payload")
    print(f"inventory {document.get('written')}: signed, key {document['signature']['keyId']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
