"""The two-bank store as it was before the log-structured one (sealtoken commit ba9ab77),
kept only so benchmarks/bench_store.py can count its flash writes beside the new store.
What follows is its original description.

Store: the token's persistent key/value store, atomic across power loss.

Contract
--------
- Keys are integers 0x0001..0xFFFF, registered in const.py (one range per
  applet). Values are byte strings of 0..MAX_VALUE_LEN bytes.
- ``get(key) -> bytes | None``; ``put(key, value)``; ``delete(key)``;
  ``update({key: value_or_None, ...})`` changes several keys in ONE atomic step
  (None deletes); ``erase_all()`` empties the store; ``keys(first, last)`` lists
  the keys present in a range.
- Atomicity: when an update returns, it is durable. If power is cut at any
  point of an update (in any flash write, whatever that write leaves in flash:
  nothing, a prefix, flipped bits), the store reads back after reboot as
  entirely before or entirely after that update - never a mix, never empty
  unless it was empty. Earlier updates are never lost.
- Bounds: a value longer than MAX_VALUE_LEN, or a record set that does not fit
  in one bank, is refused with StoreFullError before anything is written; a bad
  key or value type raises ValueError / TypeError. The store is unchanged then.
- ``scrub=True`` (always on for ``erase_all``): after the atomic commit, the
  same record set is also written to the other bank and the flash past the end
  of each image is overwritten with 0xFF, so no old copy of a deleted or
  replaced value stays in flash. A power cut during scrubbing leaves the new
  state (the commit already happened); old bytes may then remain in the other
  bank until the next scrubbed update.

Layout
------
Two flash banks (Platform banks 0 and 1; the others are not used). Each bank may
hold one image, written from offset 0:

    magic "SLST"(4) | version 01(1) | reserved 00(1) | seq u32 BE(4) | body_len u32 BE(4)
    | body (records) | SHA-256(header || body) (32)

    record = key u16 BE | len u16 BE | value;  records sorted by key, keys unique.

An update serializes the whole new record set with seq + 1 and writes it, in
WRITE_CHUNK-byte flash writes, over the bank that does NOT hold the current
image, then calls flash_sync. On boot both banks are read; a bank is valid when
magic, version, length bound, digest and record syntax all check out; the valid
bank with the newest seq (serial-number arithmetic mod 2^32) is the state. No
valid bank: the store is empty. Since the current image is never written to,
an interrupted write can only spoil the other bank.

Platform.flash_write is assumed to overwrite (a board whose flash needs an erase
before programming does that inside flash_write, e.g. by page).
"""

import hashlib
import struct
from sealtoken.core.keys import KEY_SERIAL, SERIAL_LEN
MAGIC = b"SLST"
FORMAT_VERSION = 1
HEADER_LEN = 14
DIGEST_LEN = 32
RECORD_HEADER_LEN = 4
WRITE_CHUNK = 256
MAX_VALUE_LEN = 2048
MIN_KEY = 0x0001
MAX_KEY = 0xFFFF
_SEQ_MOD = 1 << 32
_ERASED = 0xFF


class StoreError(Exception):
    """The store cannot do what was asked (see StoreFullError)."""


class StoreFullError(StoreError):
    """A value is too long, or the record set does not fit in a flash bank."""


def _newer(a, b):
    """True when sequence number a is newer than b (serial-number arithmetic)."""
    d = (a - b) % _SEQ_MOD
    return d != 0 and d < (_SEQ_MOD >> 1)


def _serialize(records):
    body = bytearray()
    for key in sorted(records):
        value = records[key]
        body.extend(struct.pack(">HH", key, len(value)))
        body.extend(value)
    return body


def _parse_body(body):
    """dict of records, or None when the body is not well formed."""
    records = {}
    pos = 0
    last = 0
    n = len(body)
    while pos < n:
        if pos + RECORD_HEADER_LEN > n:
            return None
        key, length = struct.unpack(">HH", body[pos:pos + RECORD_HEADER_LEN])
        pos += RECORD_HEADER_LEN
        if key <= last or length > MAX_VALUE_LEN or pos + length > n:
            return None
        records[key] = bytes(body[pos:pos + length])
        pos += length
        last = key
    return records


class Store:
    def __init__(self, platform):
        self.platform = platform
        self.capacity = platform.BANK_SIZE - HEADER_LEN - DIGEST_LEN  # bytes of records per bank
        if self.capacity < 0:
            raise ValueError("flash banks too small")
        self._load()

    # --- loading ------------------------------------------------------------------
    def _read_bank(self, bank):
        """(seq, records, image_len) of a valid bank, or None."""
        p = self.platform
        header = p.flash_read(bank, 0, HEADER_LEN)
        if header[0:4] != MAGIC or header[4] != FORMAT_VERSION or header[5] != 0:
            return None
        seq, body_len = struct.unpack(">II", header[6:14])
        if body_len > self.capacity:
            return None
        rest = p.flash_read(bank, HEADER_LEN, body_len + DIGEST_LEN)
        body = rest[:body_len]
        h = hashlib.sha256(header)
        h.update(body)
        if h.digest() != rest[body_len:]:
            return None
        records = _parse_body(body)
        if records is None:
            return None
        return seq, records, HEADER_LEN + body_len + DIGEST_LEN

    def _used_extent(self, bank):
        """How far from offset 0 a bank may hold non-erased bytes (for scrubbing)."""
        size = self.platform.BANK_SIZE
        end = size
        step = 1024
        while end > 0:
            start = end - step if end > step else 0
            chunk = self.platform.flash_read(bank, start, end - start)
            if chunk == b"\xff" * len(chunk):
                end = start
                continue
            i = len(chunk) - 1
            while i >= 0 and chunk[i] == _ERASED:
                i -= 1
            if i >= 0:
                return start + i + 1
            end = start
        return 0

    def _load(self):
        self._stale = False
        self._records = {}
        self._seq = 0
        self._bank = None
        self._extent = [0, 0]
        best = None
        for bank in (0, 1):
            # remains of older, longer images may lie past a valid image: scrubbing must know
            self._extent[bank] = self._used_extent(bank)
            got = self._read_bank(bank)
            if got is None:
                continue
            if best is None or _newer(got[0], best[1]):
                best = (bank, got[0], got[1])
        if best is not None:
            self._bank, self._seq, self._records = best

    def _fresh(self):
        if self._stale:
            self._load()

    # --- reading ------------------------------------------------------------------
    def get(self, key):
        self._fresh()
        return self._records.get(key)

    def keys(self, first=MIN_KEY, last=MAX_KEY):
        """Sorted keys present in [first, last]."""
        self._fresh()
        return sorted(k for k in self._records if first <= k <= last)

    def used(self):
        """Bytes of records in use (out of self.capacity)."""
        self._fresh()
        return len(_serialize(self._records))

    # --- writing ------------------------------------------------------------------
    def put(self, key, value, scrub=False):
        self.update({key: value}, scrub)

    def delete(self, key, scrub=False):
        self.update({key: None}, scrub)

    def erase_all(self):
        """Empty the store (atomic), and leave no old record anywhere in flash."""
        self._fresh()
        self._commit({}, True)

    def update(self, changes, scrub=False):
        """Apply {key: bytes or None} as one atomic step."""
        self._fresh()
        new = dict(self._records)
        for key in changes:
            value = changes[key]
            if not isinstance(key, int) or not MIN_KEY <= key <= MAX_KEY:
                raise ValueError("storage key out of range")
            if value is None:
                if key in new:
                    del new[key]
                continue
            if not isinstance(value, (bytes, bytearray)):
                raise TypeError("storage values are bytes")
            if len(value) > MAX_VALUE_LEN:
                raise StoreFullError("value longer than MAX_VALUE_LEN")
            new[key] = bytes(value)
        self._commit(new, scrub)

    def _commit(self, records, scrub):
        body = _serialize(records)
        if len(body) > self.capacity:
            raise StoreFullError("record set does not fit in a flash bank")
        self._stale = True  # until the commit completes, reload from flash on next access
        target = 0 if self._bank is None else 1 - self._bank
        seq = (self._seq + 1) % _SEQ_MOD
        self._write_image(target, seq, body)
        self._bank, self._seq, self._records = target, seq, records
        if scrub:
            self._wipe_tail(target, HEADER_LEN + len(body) + DIGEST_LEN)
            other = 1 - target
            seq = (seq + 1) % _SEQ_MOD
            self._write_image(other, seq, body)
            self._bank, self._seq = other, seq
            self._wipe_tail(other, HEADER_LEN + len(body) + DIGEST_LEN)
        self._stale = False
        for i in range(len(body)):
            body[i] = 0

    def _write_image(self, bank, seq, body):
        header = MAGIC + struct.pack(">BBII", FORMAT_VERSION, 0, seq, len(body))
        h = hashlib.sha256(header)
        h.update(body)
        image = bytearray(header)
        image.extend(body)
        image.extend(h.digest())
        p = self.platform
        try:
            for off in range(0, len(image), WRITE_CHUNK):
                p.flash_write(bank, off, image[off:off + WRITE_CHUNK])
            p.flash_sync()
        finally:
            if self._extent[bank] < len(image):
                self._extent[bank] = len(image)
            for i in range(len(image)):
                image[i] = 0

    def _wipe_tail(self, bank, start):
        """Overwrite [start, extent) of a bank with 0xFF (remains of longer images)."""
        end = self._extent[bank]
        if end <= start:
            return
        p = self.platform
        off = start
        while off < end:
            n = min(WRITE_CHUNK, end - off)
            p.flash_write(bank, off, b"\xff" * n)
            off += n
        p.flash_sync()
        self._extent[bank] = start


def device_serial(platform, store):
    """The device serial (SERIAL_LEN bytes), made from the RNG at first use and persisted."""
    serial = store.get(KEY_SERIAL)
    if serial is not None and len(serial) == SERIAL_LEN:
        return serial
    while True:
        serial = bytes(platform.random_bytes(SERIAL_LEN))
        if serial != b"\x00" * SERIAL_LEN and serial != b"\xff" * SERIAL_LEN:
            break
    store.put(KEY_SERIAL, serial)
    return serial
