"""What a restore plan (`dsaas:restore.plan`) may hold, shared by the loader (components.restore_render)
and the planner (tools.dr), so the planner can never write a value its own loader refuses.

- `load_plain_yaml`: YAML as plain data, guarded like the stack-file loader (a number of thousands of digits
  and an unquoted date are refused or kept as text) and more: aliases are refused (a 523-byte plan of nested
  aliases expands to gigabytes in any message that quotes it) and nesting is bounded (no RecursionError).
- field types: a user name, a junction path, a data LIF, a size in bytes, each bounded and strict (a YAML
  `true` is not a size, `12.0` is not an integer).
"""

from __future__ import annotations

import ipaddress
import unicodedata
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, Field, Strict, StrictInt, StrictStr, StringConstraints

from config.model import HostName

# Larger than any ONTAP FlexVol (300 TiB) or qtree can be; anything above is a typo or an attack.
MAX_SIZE_BYTES = 2**50
# A plan of 10,000 homes is about 4 MB; well above that is not a plan the planner wrote.
MAX_PLAN_BYTES = 64 * 1024**2
MAX_DEPTH = 32
# JupyterHub keeps names in a database column and KubeSpawner puts them in an annotation: a bound keeps
# messages and claims sane (the slug of a longer name is truncated and hashed anyway).
MAX_USER_NAME = 255


def shown(value: Any, limit: int = 60) -> str:
    """`value` quoted for a message: repr'd, ASCII-escaped (no control character or lone surrogate reaches
    a terminal) and cut to `limit` characters, so no message grows with its input."""
    text = ascii(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class PlainDataLoader(yaml.SafeLoader):
    """Plain data, as the planner writes it: no aliases, bounded depth, big integers refused, dates as text."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "an alias (*name) is not plain data: write the value out where it is used", mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(None, None, f"nests deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return int(super().construct_yaml_int(node))
        except ValueError:  # more decimal digits than Python converts (4,300): no size is that long
            raise yaml.constructor.ConstructorError(
                None, None, "an integer of thousands of digits is no size or count", node.start_mark
            ) from None


PlainDataLoader.add_constructor("tag:yaml.org,2002:int", PlainDataLoader.construct_yaml_int)
# An unquoted 2026-12-01T02:15:00Z stays text (the plan's `written`), and `user: 2026-13-01` is a string
# the model checks instead of an impossible date that crashes the constructor.
PlainDataLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_plain_yaml(text: str) -> Any:
    """The document in `text`, or `ValueError` with a bounded message saying why it is not plain YAML data."""
    try:
        return yaml.load(text, Loader=PlainDataLoader)  # a SafeLoader subclass: plain data only
    except yaml.YAMLError as error:
        raise ValueError(_bounded(str(error))) from None
    except (ValueError, RecursionError) as error:  # e.g. a scalar the resolver reads as a number it cannot build
        raise ValueError(_bounded(f"{type(error).__name__}: {error}")) from None


def _bounded(message: str, limit: int = 400) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _user_name(value: str) -> str:
    if value != value.strip():
        raise ValueError("has leading or trailing whitespace; JupyterHub names never do (copy the name exactly)")
    # Cc: control characters (newline, NUL); Cs: lone surrogates (no UTF-8 form); Zl/Zp: line separators.
    if any(unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") for char in value):
        raise ValueError("holds a control character or a lone surrogate; JupyterHub user names are printable text")
    return value


def _junction_path(value: str) -> str:
    parts = value.split("/")[1:]
    if value == "/" or any(part in ("", ".", "..") for part in parts):
        raise ValueError(
            "must name a qtree below the SVM root, like /<flexvol>/<qtree>: no `/` alone, empty, `.` or `..` parts"
        )
    if any(part.lower() in (".snapshot", "~snapshot") for part in parts):
        raise ValueError("points into a .snapshot folder (read-only copies), not at a home")
    return value


def _data_lif(value: str) -> str:
    if value.lower() == "localhost" or value.lower().endswith(".localhost"):
        raise ValueError("names this machine (localhost), not an ONTAP data LIF")
    if all(char.isdigit() or char == "." for char in value):
        address = ipaddress.IPv4Address(value)  # a dotted string must be a real address
        if (
            address.is_loopback
            or address.is_unspecified
            or address.is_multicast
            or address.is_reserved  # 240.0.0.0/4, 255.255.255.255 (broadcast) among them
            or address.is_link_local
        ):
            raise ValueError(
                f"{address} is a loopback, unspecified, multicast, broadcast, reserved or link-local address, "
                "not an NFS server's: use the SVM's NFS data LIF"
            )
    return value


UserName = Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_USER_NAME), AfterValidator(_user_name)]
"""A JupyterHub user name: printable, no surrounding whitespace, bounded."""
JunctionPath = Annotated[
    StrictStr,
    StringConstraints(pattern=r"^/[A-Za-z0-9_./-]*$", max_length=1024),
    AfterValidator(_junction_path),
]
"""An NFS path below the SVM root (`/<flexvol>/<qtree>`), never the root, `..` or a snapshot."""
DataLif = Annotated[HostName, Strict(), AfterValidator(_data_lif)]
"""An NFS data LIF (host name or IPv4) a node can mount from."""
SizeBytes = Annotated[StrictInt, Field(gt=0, le=MAX_SIZE_BYTES)]
"""A volume size in bytes: an integer (not a boolean, not a float), at most 1 PiB."""

__all__ = [
    "MAX_DEPTH",
    "MAX_PLAN_BYTES",
    "MAX_SIZE_BYTES",
    "MAX_USER_NAME",
    "DataLif",
    "JunctionPath",
    "PlainDataLoader",
    "SizeBytes",
    "UserName",
    "load_plain_yaml",
    "shown",
]
