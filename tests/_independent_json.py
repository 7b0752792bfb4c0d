"""JSON text exactly as docs/spec.md writes it (section 12.5, the keyring document's canonical
form; section 13.1, the verifier record's line), for the tests' second implementations.

Written from the spec's escaping table, character by character, without the json module's
encoder (sealcodes uses json.dumps): a mistake in either cannot hide behind the other. It imports
nothing from sealcodes.
"""

from __future__ import annotations

SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _utf16_units(char: str) -> list[int]:
    code = ord(char)
    if code < 0x10000:
        return [code]  # a lone surrogate (only in a hand-made document) is one unit too
    code -= 0x10000
    return [0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)]


def string(text: str) -> str:
    """A JSON string: short escapes for the seven characters that have one, U+0020..U+007E as
    themselves ("/" included), every other character as \\u escapes of its UTF-16 units, lower-case hex."""
    out = ['"']
    for char in text:
        if char in SHORT_ESCAPES:
            out.append(SHORT_ESCAPES[char])
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.extend("\\u" + format(unit, "04x") for unit in _utf16_units(char))
    out.append('"')
    return "".join(out)


def value(item, comma: str = ",", colon: str = ":", sort: bool = True) -> str:
    """A JSON value; objects' members sorted by key (code points) when `sort`, else in their order."""
    if item is None:
        return "null"
    if item is True:
        return "true"
    if item is False:
        return "false"
    if isinstance(item, int):
        return str(item)  # decimal digits, a minus sign only below zero
    if isinstance(item, str):
        return string(item)
    if isinstance(item, list):
        return "[" + comma.join(value(v, comma, colon, sort) for v in item) + "]"
    if isinstance(item, dict):
        keys = sorted(item, key=lambda k: [ord(c) for c in k]) if sort else list(item)
        return "{" + comma.join(string(k) + colon + value(item[k], comma, colon, sort) for k in keys) + "}"
    raise TypeError(f"no JSON spelling for {type(item).__name__}")


def canonical(document: dict) -> str:
    """Section 12.5: keys sorted, no white space."""
    return value(document)


def record_line(record: dict) -> str:
    """Section 13.1: members in the record's order, ", " and ": " between them, one line."""
    return value(record, ", ", ": ", sort=False)
