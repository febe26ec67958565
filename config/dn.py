"""RFC 4514 string DNs: what a directory will parse, checked before anything is deployed.

A DN that only looks like one (`cn=a,,dc=b`, a trailing comma, `;` between RDNs as RFC 1779 allowed, an
attribute without a value, an unescaped `+`, `"`, `<`, `>` or `\\`) would pass into the hub's values and
fail there at every login, or match nothing. Spaces around `,`, `+` and `=` are tolerated (directories,
AD included, accept `CN=Hub Users, OU=Groups`); everything else follows RFC 4514 section 3.
"""

from __future__ import annotations

import re

_DESCR = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_NUMERICOID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+")
_HEX_PAIR = re.compile(r"[0-9A-Fa-f]{2}")
# Characters a value must escape (RFC 4514 2.4): `"`, `+`, `,`, `;`, `<`, `>`, `\` and NUL.
_SPECIAL = frozenset('"+,;<>\\\0')
# What may follow a backslash besides a hex pair: `\` and the specials, space, `#`, `=`.
_ESCAPABLE = frozenset('"+,;<>\\ #=')


def dn_syntax_problem(dn: str) -> str | None:
    """Why `dn` is not an RFC 4514 DN (with the position), or None if it is one. An empty DN is a problem."""
    index, length = 0, len(dn)

    def skip_spaces(at: int) -> int:
        while at < length and dn[at] == " ":
            at += 1
        return at

    if not dn.strip():
        return "is empty"
    while True:
        index = skip_spaces(index)
        start = index
        while index < length and dn[index] not in "=,+;":
            index += 1
        attribute = dn[start:index].strip()
        if index >= length or dn[index] != "=":
            if not attribute:
                return f"has an empty RDN at position {start + 1} (two separators in a row, or one at an end)"
            return f"has {attribute!r} without '=' at position {start + 1} (every RDN is attribute=value)"
        if not attribute:
            return f"has a value without an attribute at position {start + 1}"
        if not (_DESCR.fullmatch(attribute) or _NUMERICOID.fullmatch(attribute)):
            return f"has {attribute!r} at position {start + 1}, which is not an attribute name or OID"
        index = skip_spaces(index + 1)
        value_start = index
        if index < length and dn[index] == "#":
            index += 1
            while _HEX_PAIR.fullmatch(dn[index : index + 2]):
                index += 2
            if index == value_start + 1:
                return f"has '#' at position {value_start + 1} not followed by hex pairs (a BER value)"
        else:
            while index < length and dn[index] not in ",+":
                char = dn[index]
                if char == "\\":
                    pair = dn[index + 1 : index + 3]
                    if _HEX_PAIR.fullmatch(pair):
                        index += 3
                        continue
                    if pair[:1] and pair[0] in _ESCAPABLE:
                        index += 2
                        continue
                    return f"has a backslash at position {index + 1} that escapes nothing valid (use \\, or \\2C)"
                if char == ";":
                    return f"has ';' at position {index + 1}: RDNs are separated by ',' (RFC 4514), not ';'"
                if char in _SPECIAL:
                    return f"has an unescaped {char!r} at position {index + 1} (write it as \\{char})"
                index += 1
            if not dn[value_start:index].strip():
                return f"has {attribute}= without a value at position {value_start + 1}"
        index = skip_spaces(index)
        if index >= length:
            return None
        if dn[index] not in ",+":
            return f"has {dn[index]!r} at position {index + 1} where ',' or '+' must follow a value"
        index += 1
        if skip_spaces(index) >= length:
            return f"ends with {dn[index - 1]!r}: an RDN is missing after it"
