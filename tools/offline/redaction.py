"""Secrets out of every artifact a reviewer reads, including secrets inside encoded payloads.

Node scripts carry files as base64 (`KUBEADM_CONFIG_B64=...`), and those files can hold a join
token or a key: replacing a secret's plain text is not enough. `scrub` also rewrites every base64
blob whose decoded text holds a secret; `find_leaks` is the independent check the tests run over
every artifact: each secret plain, as base64 of its own, and inside any decoded base64 (or gzip)
blob, however deeply nested. A multi-line secret (a PEM key) is also found re-wrapped: indented or folded
by YAML, or with its line breaks written `\n` by JSON.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
from collections.abc import Callable, Iterable

ARTIFACT_SECRET_MARK = "SECRET-REDACTED"
"""In files the marker must stay a plain scalar in YAML and a plain word in shell."""

# Long enough that ordinary words and short IDs are not taken for encoded payloads.
_BASE64_BLOB = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_MIN_SECRET = 6


# A key's body line (PEM or OpenSSH: 64-70 base64 characters) is long enough to be the secret itself.
_MIN_SECRET_LINE = 16


def secret_lines(secret: str) -> set[str]:
    """The body lines of a multi-line secret (a private key), without its armor lines.

    YAML and JSON re-wrap a multi-line value (quoted, blank lines between, escaped newlines), so the
    whole key is no longer found verbatim, but each body line still is; the `-----BEGIN ...-----`
    armor is the same in every key, and public certificates carry it too."""
    if "\n" not in secret.strip():
        return set()
    return {
        line.strip()
        for line in secret.splitlines()
        if len(line.strip()) >= _MIN_SECRET_LINE and not line.strip().startswith("-----")
    }


def _encodings(secret: str) -> set[str]:
    raw = secret.encode()
    return {
        secret,
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        *secret_lines(secret),
    }


def _decode_blob(blob: str) -> tuple[str, bool] | None:
    """The text a base64 blob holds and whether it was urlsafe, or None when it holds no text."""
    urlsafe = "-" in blob or "_" in blob
    padded = blob + "=" * (-len(blob) % 4)
    try:
        data = base64.urlsafe_b64decode(padded) if urlsafe else base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            return None
    try:
        return data.decode("utf-8"), urlsafe
    except UnicodeDecodeError:
        return None


# How a serializer may re-wrap the whitespace inside a multi-line secret (a PEM key): YAML indents a block
# scalar's lines and folds long double-quoted ones (`\` line continuations, `\ ` for a space), single
# quotes double a line break, and JSON or YAML double quotes write `\n`. Between two of the secret's own
# runs of visible characters any mix of these stands for its whitespace.
_REWRAPPED_SPACE = r"(?:\\[nrt ]|\\?[ \t]*\r?\n[ \t]*|[ \t])+"


def _rewrapped(secret: str) -> re.Pattern[str] | None:
    """A pattern for `secret` however its lines were re-wrapped, or None for a one-line secret."""
    if "\n" not in secret.strip():
        return None
    runs = secret.split()
    return re.compile(_REWRAPPED_SPACE.join(re.escape(run) for run in runs))


def _secrets(secrets: Iterable[str]) -> list[str]:
    return sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by the marker, also inside base64 payloads (re-encoded)."""
    ordered = _secrets(secrets)
    return _scrub(text, ordered, depth=0)


def _scrub(text: str, secrets: list[str], depth: int) -> str:
    # Payloads first: a secret's own base64 can happen to line up inside a larger blob, and
    # replacing it there would leave the rest of the blob undecodable for a reviewer.
    if depth < 4:
        text = _BASE64_BLOB.sub(lambda match: _rewrite_blob(match.group(0), secrets, depth), text)
    for secret in secrets:
        for encoded in sorted(_encodings(secret), key=len, reverse=True):
            text = text.replace(encoded, ARTIFACT_SECRET_MARK)
        rewrapped = _rewrapped(secret)
        if rewrapped is not None:
            text = rewrapped.sub(ARTIFACT_SECRET_MARK, text)
    return text


def _rewrite_blob(blob: str, secrets: list[str], depth: int) -> str:
    decoded = _decode_blob(blob)
    if decoded is None:
        return blob
    inner, urlsafe = decoded
    cleaned = _scrub(inner, secrets, depth + 1)
    if cleaned == inner:
        return blob
    encode: Callable[[bytes], bytes] = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(cleaned.encode()).decode()


def find_leaks(text: str, secrets: Iterable[str]) -> list[str]:
    """Every secret found in `text`: plain, base64-encoded, or inside a decoded payload."""
    return sorted(_find(text, _secrets(secrets), depth=0))


def _find(text: str, secrets: list[str], depth: int) -> set[str]:
    found = {
        secret
        for secret in secrets
        if any(encoded in text for encoded in _encodings(secret))
        or ((rewrapped := _rewrapped(secret)) is not None and rewrapped.search(text))
    }
    if depth < 4:
        for match in _BASE64_BLOB.finditer(text):
            decoded = _decode_blob(match.group(0))
            if decoded is not None:
                found |= _find(decoded[0], secrets, depth + 1)
    return found
