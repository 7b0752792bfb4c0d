"""Showing untrusted text: device strings, labels, profile content, on a terminal.

A reader name, a USB product string or serial, a label or a hand-edited profile can hold
terminal escape sequences (ESC, C1 controls such as CSI 0x9B), bidirectional overrides that
make text read differently from what it is (U+202E "RIGHT-TO-LEFT OVERRIDE" and friends), and
invisible format characters. Before any of it reaches the terminal it goes through `printable`
(for lines) or `json_text` (for --json output); both show such characters as visible escapes
(`\\x1b`, `\\u202e`) instead of sending them raw. Ordinary letters of every script stay as they are.

What the derivation accepts is not changed: v1 labels may contain bidi and format characters
(only Cc controls are refused), and their codes stay what they are; they are escaped on display.
"""

from __future__ import annotations

import json
import unicodedata

# Bidirectional controls (Unicode's Bidi_Control property): embeddings, overrides, isolates, marks.
BIDI_CONTROLS = frozenset(
    [0x061C, 0x200E, 0x200F] + list(range(0x202A, 0x202F)) + list(range(0x2066, 0x206A))
)

# Cc: C0 and C1 controls, DEL; Cf: format characters (bidi, zero width, soft hyphen, tags...);
# Cs: lone surrogates (undecodable bytes); Co: private use (no agreed glyph); Zl / Zp: line and
# paragraph separators; Cn: unassigned (a later Unicode version may make them format characters).
_ESCAPED_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co", "Zl", "Zp", "Cn"))


def is_hidden(char: str) -> bool:
    """True for a character shown escaped: control, format, bidi, separator or unassigned."""
    return ord(char) in BIDI_CONTROLS or unicodedata.category(char) in _ESCAPED_CATEGORIES


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text) -> str:
    """`text` (any object: str() of it) with every hidden character replaced by a visible escape."""
    text = text if isinstance(text, str) else str(text)
    if text.isprintable():  # the common case: nothing to do (isprintable is False for all we escape)
        return text
    return "".join(_escape(c) if is_hidden(c) else c for c in text)


def has_hidden(text: str) -> bool:
    return any(is_hidden(c) for c in text)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_text(value, **kwargs) -> str:
    """json.dumps with UTF-8 text kept readable, but every hidden character as a \\uXXXX escape:
    the JSON means exactly the same, and nothing raw reaches a terminal it is shown on."""
    dumped = json.dumps(value, ensure_ascii=False, **kwargs)
    if dumped.isprintable():
        return dumped
    # outside strings JSON has only ASCII punctuation, digits and white space (which indent adds)
    return "".join(_json_escape(c) if is_hidden(c) and c not in "\n " else c for c in dumped)
