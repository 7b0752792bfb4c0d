"""Strict CBOR for CTAP2: canonical encoder, bounded decoder.

Only the types CTAP2 uses exist here: unsigned and negative integers, byte
strings, text strings, arrays, maps, true and false. The encoder always writes
the CTAP2 canonical form (definite lengths, shortest integer encodings, map keys
sorted by major type, then encoded length, then bytewise -- python-fido2 sorts
the same way and rejects anything else). The decoder accepts only that form.

Hostile input never crashes the decoder and never makes it allocate more than
the input size: every declared length and count is checked against the bytes
that remain before anything is built, nesting depth and the total number of
items are bounded, and every failure is a CborError carrying the CTAP status:

  ERR_INVALID_CBOR (0x12)          malformed: truncated, trailing bytes,
                                   indefinite lengths, reserved additional
                                   information, non-shortest integers or
                                   lengths, invalid UTF-8, map keys out of
                                   canonical order or repeated, too deep,
                                   too many items, too long
  ERR_CBOR_UNEXPECTED_TYPE (0x11)  well-formed but outside the CTAP subset:
                                   tags, floats, null, undefined, other simple
                                   values, and map keys that are not an
                                   integer, text or byte string

MicroPython-compatible: plain functions, bytes, struct-free integer handling.
"""

ERR_CBOR_UNEXPECTED_TYPE = 0x11
ERR_INVALID_CBOR = 0x12
ERR_MISSING_PARAMETER = 0x14

# default limits of decode(); the authenticator also bounds the message size
MAX_DEPTH = 8
MAX_ITEMS = 512
MAX_SIZE = 8192

_MT_UINT = 0
_MT_NINT = 1
_MT_BYTES = 2
_MT_TEXT = 3
_MT_ARRAY = 4
_MT_MAP = 5
_MT_TAG = 6
_MT_SIMPLE = 7

_FALSE = 0xF4
_TRUE = 0xF5

_UINT64_LIMIT = 1 << 64


class CtapError(Exception):
    """A CTAP status to answer with (.code); raised anywhere in the authenticator."""

    def __init__(self, code, message=""):
        super().__init__(code, message)
        self.code = code
        self.message = message


class CborError(CtapError):
    """Malformed or unsupported CBOR; .code is ERR_INVALID_CBOR or ERR_CBOR_UNEXPECTED_TYPE."""


# --- encoder --------------------------------------------------------------------


def _head(major, value):
    """Major type and argument in the shortest form."""
    mt = major << 5
    if value < 24:
        return bytes((mt | value,))
    if value < 0x100:
        return bytes((mt | 24, value))
    if value < 0x10000:
        return bytes((mt | 25,)) + value.to_bytes(2, "big")
    if value < 0x100000000:
        return bytes((mt | 26,)) + value.to_bytes(4, "big")
    return bytes((mt | 27,)) + value.to_bytes(8, "big")


def _key_order(encoded):
    """Canonical CTAP2 order of an encoded map key: major type, length, bytes."""
    return (encoded[0] >> 5, len(encoded), encoded)


def _encode_into(value, out, depth):
    if depth > MAX_DEPTH:
        raise ValueError("CBOR nesting too deep")
    if value is True:
        out.append(b"\xf5")
    elif value is False:
        out.append(b"\xf4")
    elif isinstance(value, int):
        if value >= 0:
            if value >= _UINT64_LIMIT:
                raise ValueError("integer out of CBOR range")
            out.append(_head(_MT_UINT, value))
        else:
            if -1 - value >= _UINT64_LIMIT:
                raise ValueError("integer out of CBOR range")
            out.append(_head(_MT_NINT, -1 - value))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value)
        out.append(_head(_MT_BYTES, len(value)))
        out.append(value)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        out.append(_head(_MT_TEXT, len(raw)))
        out.append(raw)
    elif isinstance(value, (list, tuple)):
        out.append(_head(_MT_ARRAY, len(value)))
        for item in value:
            _encode_into(item, out, depth + 1)
    elif isinstance(value, dict):
        entries = []
        for k in value:
            if k is True or k is False or not isinstance(k, (int, str, bytes)):
                raise ValueError("unsupported CBOR map key")
            ek = encode(k)
            ev = []
            _encode_into(value[k], ev, depth + 1)
            entries.append((_key_order(ek), ek, b"".join(ev)))
        entries.sort(key=lambda e: e[0])
        out.append(_head(_MT_MAP, len(entries)))
        for e in entries:
            out.append(e[1])
            out.append(e[2])
    else:
        raise ValueError("unsupported CBOR value")


def encode(value):
    """Canonical CTAP2 CBOR of value (bool, int, bytes, str, list/tuple, dict)."""
    out = []
    _encode_into(value, out, 0)
    return b"".join(out)


# --- decoder --------------------------------------------------------------------


class _Reader:
    def __init__(self, data, max_depth, max_items):
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.max_depth = max_depth
        self.items_left = max_items

    def fail(self, message):
        raise CborError(ERR_INVALID_CBOR, message)

    def take(self, n):
        if n > self.end - self.pos:
            self.fail("truncated")
        start = self.pos
        self.pos = start + n
        return self.data[start:self.pos]

    def head(self):
        """(major type, additional info, argument) of the next item."""
        if self.pos >= self.end:
            self.fail("truncated")
        ib = self.data[self.pos]
        self.pos += 1
        major = ib >> 5
        ai = ib & 0x1F
        if major == _MT_SIMPLE:
            # false/true only; no argument to read
            if ai == 20 or ai == 21:
                return major, ai, ai
            if ai >= 28:
                self.fail("reserved additional information")
            raise CborError(ERR_CBOR_UNEXPECTED_TYPE, "float or simple value")
        if major == _MT_TAG and ai != 31 and ai < 28:
            raise CborError(ERR_CBOR_UNEXPECTED_TYPE, "tag")
        if ai < 24:
            return major, ai, ai
        if ai == 24:
            arg = self.take(1)[0]
            if arg < 24:
                self.fail("non-shortest integer")
        elif ai == 25:
            arg = int.from_bytes(self.take(2), "big")
            if arg < 0x100:
                self.fail("non-shortest integer")
        elif ai == 26:
            arg = int.from_bytes(self.take(4), "big")
            if arg < 0x10000:
                self.fail("non-shortest integer")
        elif ai == 27:
            arg = int.from_bytes(self.take(8), "big")
            if arg < 0x100000000:
                self.fail("non-shortest integer")
        elif ai == 31:
            self.fail("indefinite length")
        else:
            self.fail("reserved additional information")
        return major, ai, arg

    def item(self, depth):
        if depth > self.max_depth:
            self.fail("nesting too deep")
        self.items_left -= 1
        if self.items_left < 0:
            self.fail("too many items")
        major, ai, arg = self.head()
        if major == _MT_UINT:
            return arg
        if major == _MT_NINT:
            return -1 - arg
        if major == _MT_BYTES:
            return bytes(self.take(arg))
        if major == _MT_TEXT:
            raw = self.take(arg)
            try:
                return str(raw, "utf-8")
            except (UnicodeError, ValueError):
                self.fail("invalid UTF-8")
        if major == _MT_ARRAY:
            # every item takes at least one byte: bound the count before building
            if arg > self.end - self.pos:
                self.fail("truncated")
            out = []
            for _ in range(arg):
                out.append(self.item(depth + 1))
            return out
        if major == _MT_MAP:
            if arg > (self.end - self.pos) // 2:
                self.fail("truncated")
            out = {}
            previous = None
            for _ in range(arg):
                start = self.pos
                key = self.item(depth + 1)
                if key is True or key is False or not isinstance(key, (int, str, bytes)):
                    raise CborError(ERR_CBOR_UNEXPECTED_TYPE, "map key type")
                order = _key_order(self.data[start:self.pos])
                if previous is not None and not previous < order:
                    self.fail("map keys not in canonical order or repeated")
                previous = order
                out[key] = self.item(depth + 1)
            return out
        if major == _MT_SIMPLE:
            return ai == 21
        self.fail("unsupported major type")  # not reached: tags raise in head()


def decode(data, max_depth=MAX_DEPTH, max_items=MAX_ITEMS, max_size=MAX_SIZE):
    """Decode exactly one canonical CBOR item filling all of data.

    Raises CborError (with .code the CTAP status) for anything else.
    """
    data = bytes(data)
    if len(data) > max_size:
        raise CborError(ERR_INVALID_CBOR, "message too long")
    reader = _Reader(data, max_depth, max_items)
    value = reader.item(0)
    if reader.pos != reader.end:
        reader.fail("trailing bytes")
    return value


# --- typed access to decoded CTAP parameters ---------------------------------------

BYTES = "bytes"
TEXT = "text"
UINT = "uint"
INT = "int"
MAP = "map"
ARRAY = "array"
BOOL = "bool"


def is_kind(value, kind):
    """True when a decoded value has the CTAP type kind (bools are not integers)."""
    if kind == BYTES:
        return isinstance(value, bytes)
    if kind == TEXT:
        return isinstance(value, str)
    if kind == MAP:
        return isinstance(value, dict)
    if kind == ARRAY:
        return isinstance(value, list)
    if kind == BOOL:
        return value is True or value is False
    if value is True or value is False or not isinstance(value, int):
        return False
    return kind == INT or value >= 0


def get(params, key, kind, required=False):
    """params[key] checked to be of kind; None when absent and not required.

    Absent and required: CtapError(MISSING_PARAMETER); wrong type:
    CtapError(CBOR_UNEXPECTED_TYPE).
    """
    value = params.get(key)
    if value is None:
        if required:
            raise CtapError(ERR_MISSING_PARAMETER, "missing parameter")
        return None
    if not is_kind(value, kind):
        raise CtapError(ERR_CBOR_UNEXPECTED_TYPE, "wrong parameter type")
    return value
