"""Store: the token's persistent key/value store: log-structured, on NOR flash, atomic across power loss.

docs/firmware-store.md describes the format, the power-cut contract, wear
levelling and the migration from the old two-bank format in full.

Contract
--------
- Keys are integers 0x0001..0xFFFF, registered in sealtoken.core.keys (one range per
  applet). Values are byte strings of 0..MAX_VALUE_LEN bytes.
- ``get(key) -> bytes | None``; ``put(key, value)``; ``delete(key)``;
  ``update({key: value_or_None, ...})`` changes several keys in ONE atomic step
  (None deletes); ``erase_all()`` empties the store; ``keys(first, last)`` lists
  the keys present in a range.
- Atomicity: when an update returns, it is durable. If power is cut at any
  point of an update (in any flash write or erase, whatever that leaves in
  flash: nothing, a prefix, bits not cleared, a page partly erased), the store
  reads back after reboot as entirely before or entirely after that update -
  never a mix, never empty unless it was empty. Earlier updates are never lost.
- Concurrency: every operation holds one lock made by Platform.new_lock(), and
  an update computes its new record set from the current one inside that lock,
  so two requests running at once (a FIDO request in the platform's background
  job and a seal applet command in the foreground) never lose each other's
  changes, and RAM always equals flash.
- Bounds: a value longer than MAX_VALUE_LEN, or a record set that does not fit
  in one region (``capacity`` bytes of records), is refused with
  StoreFullError before anything is written; a bad key or value type raises
  ValueError / TypeError. The store is unchanged then.
- ``scrub=True`` (always on for ``erase_all``): the update is committed by a
  compaction, which erases every other region afterwards, so no old copy of a
  deleted or replaced value stays in flash. A power cut during those erases
  leaves the new state; the old bytes are then erased by the next update.
- Reading never writes; booting writes only to convert an old two-bank image.

Layout
------
The flash pages are split into REGIONS regions of equal size (default two, of
NUM_PAGES / 2 pages each: the old store's two banks). A region starts with a
header written in two steps, each a whole-word write into erased flash:

    format (after each erase): magic "SLS2"(4) | erase count u32 BE(4) | check(4)
    join (when it takes the log): sequence u32 BE(4) | check(4)

then holds a log of entries, word-aligned, one after the other:

    marker A5(1) | kind(1) | body_len u16 BE(2) | body | zero padding to a word
    | digest(16) = SHA-256(sequence || marker..padding)[:16]

    kind 01 SNAPSHOT: body = every record: key u16 BE | len u16 BE | value, keys ascending
    kind 02 UPDATE:   body = the changed records, the same; len FFFF = key deleted

The active region is the joined region of the newest sequence whose first
entry is a valid SNAPSHOT; the state is that snapshot with the UPDATE entries
after it applied in order, up to the first erased word (end of log) or the first
entry that does not check out (a write cut by power loss: the region takes no
more entries). An update appends one UPDATE entry. When it does not fit (or is
scrubbed, or the log ends in a damaged entry) the store compacts: it picks the
least-worn other region, erases and formats it if needed, joins it with the
next sequence, writes one SNAPSHOT of the new state there, then erases the
other regions. Flash is never written twice in the same place without an erase.
"""

import hashlib
import struct

from sealtoken.core.keys import KEY_SERIAL, SERIAL_LEN
MAGIC = b"SLS2"
FORMAT_LEN = 12
JOIN_LEN = 8
REGION_HEADER_LEN = FORMAT_LEN + JOIN_LEN
ENTRY_HEADER_LEN = 4
DIGEST_LEN = 16
ENTRY_MARKER = 0xA5
KIND_SNAPSHOT = 0x01
KIND_UPDATE = 0x02
DELETED_LEN = 0xFFFF
RECORD_HEADER_LEN = 4
MAX_VALUE_LEN = 2048
MIN_KEY = 0x0001
MAX_KEY = 0xFFFF
REGIONS = 2
_SEQ_MOD = 1 << 32
_ERASED_WORD = b"\xff\xff\xff\xff"
_READ_CHUNK = 512
_STAGE_LEN = 256     # an entry goes to flash in pieces of at most this size

# the old two-bank format (version 1), read once to convert it
V1_MAGIC = b"SLST"
V1_VERSION = 1
V1_HEADER_LEN = 14
V1_DIGEST_LEN = 32

# what a region holds, as found when loading
_BLANK = 0   # erased, no header (count unknown)
_FREE = 1    # formatted, not joined, the rest erased: usable without an erase
_LOG = 2     # formatted and joined
_DIRTY = 3   # anything else: erase before use


class StoreError(Exception):
    """The store cannot do what was asked (see StoreFullError)."""


class StoreFullError(StoreError):
    """A value is too long, or the record set does not fit in a region."""


def _newer(a, b):
    """True when sequence number a is newer than b (serial-number arithmetic)."""
    d = (a - b) % _SEQ_MOD
    return d != 0 and d < (_SEQ_MOD >> 1)


def _check(data):
    return hashlib.sha256(data).digest()[:4]


def _padded(n):
    return (n + 3) & ~3


def _entry_len(body_len):
    return ENTRY_HEADER_LEN + _padded(body_len) + DIGEST_LEN


def _records(records, deleted=()):
    """The pieces of an entry body (records and deletions), keys ascending: each record's header,
    then its value as it is (no copy)."""
    for key in sorted(list(records) + list(deleted)):
        value = records.get(key)
        if value is None:
            yield struct.pack(">HH", key, DELETED_LEN)
        else:
            yield struct.pack(">HH", key, len(value))
            yield value


def _size(records):
    """Bytes the records take in a snapshot body (without building it: it would hold the secrets)."""
    n = 0
    for key in records:
        n += RECORD_HEADER_LEN + len(records[key])
    return n


def _parse_records(body, deletions, out):
    """Apply an entry body to the dict out; False when the body is not well formed."""
    pos = 0
    last = 0
    n = len(body)
    while pos < n:
        if pos + RECORD_HEADER_LEN > n:
            return False
        key, length = struct.unpack(">HH", body[pos:pos + RECORD_HEADER_LEN])
        pos += RECORD_HEADER_LEN
        if key <= last:
            return False
        last = key
        if length == DELETED_LEN and deletions:
            if key in out:
                del out[key]
            continue
        if length > MAX_VALUE_LEN or pos + length > n:
            return False
        out[key] = bytes(body[pos:pos + length])
        pos += length
    return True


class _EntryWriter:
    """An entry written to flash as it is made, through the store's staging buffer: no copy of the
    entry (a snapshot is a few KiB) is ever built in RAM, so writing one needs no large block of
    heap. Staged bytes go out when the buffer is full and at the end (an entry of up to _STAGE_LEN
    bytes, as most updates are, is one write); every write is whole words, each word written
    once. A power cut between two writes leaves a prefix of the entry, which its digest refuses,
    as a write cut short does."""

    def __init__(self, store, region, offset, seq):
        self.store = store
        self.region = region
        self.at = offset            # where the staged bytes go
        self.staged = 0
        self.hashed = 0             # staged bytes already in the digest
        self.used = 0               # bytes of the staging buffer written to (to wipe)
        self.hash = hashlib.sha256(struct.pack(">I", seq))

    def add(self, data):
        stage = self.store._stage
        n = len(data)
        if n < _STAGE_LEN - self.staged:  # the usual case: it fits, and the buffer is not full after
            stage[self.staged:self.staged + n] = data
            self.staged += n
            return
        view = memoryview(data)
        pos = 0
        while pos < n:
            take = min(_STAGE_LEN - self.staged, n - pos)
            stage[self.staged:self.staged + take] = view[pos:pos + take]
            self.staged += take
            pos += take
            if self.staged == _STAGE_LEN:
                self.flush()

    def finish(self):
        """Append the digest of everything added, and write what is staged."""
        self._digest_staged()
        digest = self.hash.digest()[:DIGEST_LEN]
        self.hash = None  # the digest is not part of itself
        self.add(digest)
        self.flush()

    def _digest_staged(self):
        if self.hash is not None and self.staged > self.hashed:
            self.hash.update(memoryview(self.store._stage)[self.hashed:self.staged])
        self.hashed = self.staged

    def flush(self):
        if self.staged:
            self._digest_staged()
            self.store._write(self.region, self.at, memoryview(self.store._stage)[:self.staged])
            self.at += self.staged
            if self.staged > self.used:
                self.used = self.staged
            self.staged = self.hashed = 0


class _Region:
    """What loading found in one region."""

    def __init__(self, state, count=None, seq=None):
        self.state = state
        self.count = count   # erases so far, from its header; None when unknown
        self.seq = seq


class Store:
    def __init__(self, platform, regions=REGIONS):
        self.platform = platform
        self._lock = platform.new_lock()  # serializes every read and every read-modify-write
        pages = platform.NUM_PAGES // regions
        if regions < 2 or pages < 1:
            raise ValueError("the store needs at least two regions of at least one page")
        self.regions = regions
        self.region_pages = pages
        self.region_size = pages * platform.PAGE_SIZE
        self._stage = bytearray(_STAGE_LEN)  # entries pass through it on their way to flash
        # bytes of records one snapshot can hold (body_len is 16 bits)
        self.capacity = min((self.region_size - REGION_HEADER_LEN - ENTRY_HEADER_LEN - DIGEST_LEN) & ~3,
                            0xFFFC)
        if self.capacity < 64:
            raise ValueError("flash regions too small")
        self._lock.acquire()
        try:
            self._load()
        finally:
            self._lock.release()

    # --- region access (a region is region_pages consecutive pages) ------------------
    def _read(self, region, offset, length):
        p = self.platform
        size = p.PAGE_SIZE
        out = bytearray()
        while length > 0:
            page, at = divmod(offset, size)
            n = min(length, size - at)
            out.extend(p.flash_read(region * self.region_pages + page, at, n))
            offset += n
            length -= n
        return bytes(out)

    def _write(self, region, offset, data):
        p = self.platform
        size = p.PAGE_SIZE
        view = memoryview(data)  # a page's part without a copy: no block of its size in the heap
        pos = 0
        while pos < len(data):
            page, at = divmod(offset + pos, size)
            n = min(len(data) - pos, size - at)
            p.flash_write(region * self.region_pages + page, at, view[pos:pos + n])
            pos += n

    def _erased(self, region, offset, length):
        end = offset + length
        while offset < end:
            n = min(_READ_CHUNK, end - offset)
            if self._read(region, offset, n) != b"\xff" * n:
                return False
            offset += n
        return True

    # --- loading ------------------------------------------------------------------
    def _scan_header(self, region):
        header = self._read(region, 0, REGION_HEADER_LEN)
        if header[0:4] != MAGIC or header[8:12] != _check(header[0:8]):
            if header == b"\xff" * REGION_HEADER_LEN and self._erased(region, 0, self.region_size):
                return _Region(_BLANK)
            return _Region(_DIRTY)
        count = struct.unpack(">I", header[4:8])[0]
        if header[12:20] == b"\xff" * JOIN_LEN:
            if self._erased(region, FORMAT_LEN, self.region_size - FORMAT_LEN):
                return _Region(_FREE, count)
            return _Region(_DIRTY, count)
        if header[16:20] != _check(header[0:16]):
            return _Region(_DIRTY, count)
        return _Region(_LOG, count, struct.unpack(">I", header[12:16])[0])

    def _parse_log(self, region, seq):
        """(records, end, appendable) of a joined region, or None without a valid snapshot."""
        size = self.region_size
        seq_bytes = struct.pack(">I", seq)
        records = None
        off = REGION_HEADER_LEN
        appendable = False
        while True:
            if off + ENTRY_HEADER_LEN > size:
                break
            head = self._read(region, off, ENTRY_HEADER_LEN)
            if head == _ERASED_WORD:
                appendable = self._erased(region, off, size - off)
                break
            body_len = (head[2] << 8) | head[3]
            total = _entry_len(body_len)
            if head[0] != ENTRY_MARKER or head[1] not in (KIND_SNAPSHOT, KIND_UPDATE) or off + total > size:
                break
            blob = self._read(region, off, total)
            h = hashlib.sha256(seq_bytes)
            h.update(blob[:total - DIGEST_LEN])
            if h.digest()[:DIGEST_LEN] != blob[total - DIGEST_LEN:]:
                break
            body = blob[ENTRY_HEADER_LEN:ENTRY_HEADER_LEN + body_len]
            if records is None:
                if head[1] != KIND_SNAPSHOT:
                    return None
                records = {}
                if not _parse_records(body, False, records):
                    return None
            else:
                if head[1] != KIND_UPDATE:
                    break
                changed = dict(records)
                if not _parse_records(body, True, changed):
                    break
                records = changed
            off += total
        if records is None:
            return None
        return records, off, appendable

    def _load(self):
        self._stale = False
        self._records = {}
        self._active = None      # the region holding the state
        self._active_seq = 0
        self._end = 0            # where its next entry goes
        self._appendable = False
        self._info = [self._scan_header(r) for r in range(self.regions)]
        # joined regions, newest sequence first: the first with a valid snapshot is the state
        ordered = []
        for r in range(self.regions):
            if self._info[r].state != _LOG:
                continue
            i = 0
            while i < len(ordered) and not _newer(self._info[r].seq, self._info[ordered[i]].seq):
                i += 1
            ordered.insert(i, r)
        # the next join takes a sequence newer than any in flash, valid or not
        self._top_seq = self._info[ordered[0]].seq if ordered else 0
        for r in ordered:
            parsed = self._parse_log(r, self._info[r].seq)
            if parsed is not None:
                self._active, self._active_seq = r, self._info[r].seq
                self._records, self._end, self._appendable = parsed
                return
        old = self._read_v1()
        if old is not None:
            self._migrate(old[0], old[1])

    # --- the old two-bank format ---------------------------------------------------------
    def _read_v1_region(self, region):
        """(seq, records) of a valid old-format image at the start of a region, or None."""
        header = self._read(region, 0, V1_HEADER_LEN)
        if header[0:4] != V1_MAGIC or header[4] != V1_VERSION or header[5] != 0:
            return None
        seq, body_len = struct.unpack(">II", header[6:14])
        if body_len > self.region_size - V1_HEADER_LEN - V1_DIGEST_LEN:
            return None
        rest = self._read(region, V1_HEADER_LEN, body_len + V1_DIGEST_LEN)
        h = hashlib.sha256(header)
        h.update(rest[:body_len])
        if h.digest() != rest[body_len:]:
            return None
        records = {}
        if not _parse_records(rest[:body_len], False, records):
            return None
        return seq, records

    def _read_v1(self):
        """(region, records) of the newest valid old-format image, or None."""
        best = None
        for region in range(self.regions):
            got = self._read_v1_region(region)
            if got is not None and (best is None or _newer(got[0], best[1])):
                best = (region, got[0], got[1])
        if best is None:
            return None
        return best[0], best[2]

    def _migrate(self, source, records):
        """Rewrite an old-format image as a new log; the old image stays until the new one is durable."""
        if _size(records) > self.capacity:
            raise StoreFullError("the old image does not fit a region")  # cannot happen: regions >= banks
        self._stale = True
        self._compact(records, avoid=source)
        self._stale = False

    # --- reading ------------------------------------------------------------------
    def _fresh(self):
        if self._stale:
            self._load()

    def get(self, key):
        self._lock.acquire()
        try:
            self._fresh()
            return self._records.get(key)
        finally:
            self._lock.release()

    def keys(self, first=MIN_KEY, last=MAX_KEY):
        """Sorted keys present in [first, last]."""
        self._lock.acquire()
        try:
            self._fresh()
            return sorted(k for k in self._records if first <= k <= last)
        finally:
            self._lock.release()

    def used(self):
        """Bytes of records in use (out of self.capacity)."""
        self._lock.acquire()
        try:
            self._fresh()
            return _size(self._records)
        finally:
            self._lock.release()

    def wear(self):
        """Erases of each region so far, from the region headers (None where a header is lost)."""
        self._lock.acquire()
        try:
            self._fresh()
            return [info.count for info in self._info]
        finally:
            self._lock.release()

    # --- writing ------------------------------------------------------------------
    def put(self, key, value, scrub=False):
        self.update({key: value}, scrub)

    def delete(self, key, scrub=False):
        self.update({key: None}, scrub)

    def erase_all(self):
        """Empty the store (atomic), and leave no old record anywhere in flash."""
        self.update(None, True)

    def update(self, changes, scrub=False):
        """Apply {key: bytes or None} as one atomic step (None: remove every key)."""
        self._lock.acquire()
        try:
            # read-modify-write inside the lock: no other update can slip in between
            self._fresh()
            new = {} if changes is None else dict(self._records)
            changed = {}
            deleted = []
            for key in (changes or ()):
                value = changes[key]
                if not isinstance(key, int) or not MIN_KEY <= key <= MAX_KEY:
                    raise ValueError("storage key out of range")
                if value is None:
                    if key in new:
                        del new[key]
                        deleted.append(key)
                    continue
                if not isinstance(value, (bytes, bytearray)):
                    raise TypeError("storage values are bytes")
                if len(value) > MAX_VALUE_LEN:
                    raise StoreFullError("value longer than MAX_VALUE_LEN")
                value = bytes(value)
                if new.get(key) != value:
                    changed[key] = value
                new[key] = value
            if _size(new) > self.capacity:
                raise StoreFullError("record set does not fit in a flash region")
            if not scrub and not changed and not deleted:
                return  # nothing to write
            self._stale = True  # until the commit completes, reload from flash on next access
            self._commit(new, changed, deleted, scrub)
            self._stale = False
        finally:
            self._lock.release()

    def _commit(self, records, changed, deleted, scrub):
        self._erase_garbage()
        if not scrub and self._active is not None and self._appendable:
            body_len = _size(changed) + RECORD_HEADER_LEN * len(deleted)
            total = _entry_len(body_len)
            if body_len <= 0xFFFF and self._end + total <= self.region_size:
                self._append(self._active, self._end, self._active_seq, KIND_UPDATE, body_len,
                             _records(changed, deleted))
                self.platform.flash_sync()
                self._records = records
                self._end += total
                return
        self._compact(records)

    def _append(self, region, offset, seq, kind, body_len, pieces):
        """Write one entry whose body (body_len bytes) is the concatenation of pieces."""
        out = _EntryWriter(self, region, offset, seq)
        try:
            out.add(struct.pack(">BBH", ENTRY_MARKER, kind, body_len))
            for piece in pieces:
                out.add(piece)
            out.add(bytes(_padded(body_len) - body_len))
            out.finish()
        finally:
            used = max(out.used, out.staged)
            self._stage[:used] = bytes(used)  # it held record bytes

    # --- compaction and erasing ------------------------------------------------------------
    def _estimated_count(self, region):
        count = self._info[region].count
        if count is not None:
            return count
        # a header lost to a power cut between erase and format (or never written): assume the
        # least wear seen, so a region new to the store takes its share of the erases
        known = [i.count for i in self._info if i.count is not None]
        return min(known) if known else 0

    def _erase(self, region):
        """Erase a region and write its format header (with its erase count)."""
        count = self._estimated_count(region) + 1
        first = region * self.region_pages
        for page in range(first, first + self.region_pages):
            self.platform.flash_erase(page)
        self._info[region] = _Region(_DIRTY, count)
        header = MAGIC + struct.pack(">I", count)
        self._write(region, 0, header + _check(header))
        self._info[region] = _Region(_FREE, count)

    def _erase_garbage(self):
        """Erase every region that is neither the active one nor free (old logs, damaged headers)."""
        erased = False
        for region in range(self.regions):
            if region != self._active and self._info[region].state not in (_FREE, _BLANK):
                self._erase(region)
                erased = True
        if erased:
            self.platform.flash_sync()

    def _compact(self, records, avoid=None):
        """Write records as a snapshot into the least-worn other region, then erase the rest."""
        skip = self._active if avoid is None else avoid
        target = None
        for region in range(self.regions):
            if region == skip:
                continue
            if target is None or self._estimated_count(region) < self._estimated_count(target):
                target = region
        info = self._info[target]
        if info.state == _BLANK:
            header = MAGIC + struct.pack(">I", self._estimated_count(target))
            self._write(target, 0, header + _check(header))
            self._info[target] = _Region(_FREE, self._estimated_count(target))
        elif info.state != _FREE:
            self._erase(target)
        seq = (self._top_seq + 1) % _SEQ_MOD
        header = MAGIC + struct.pack(">I", self._info[target].count)
        join = struct.pack(">I", seq)
        self._write(target, FORMAT_LEN, join + _check(header + _check(header) + join))
        self._info[target] = _Region(_LOG, self._info[target].count, seq)
        self._top_seq = seq
        body_len = _size(records)
        end = REGION_HEADER_LEN + _entry_len(body_len)
        self._append(target, REGION_HEADER_LEN, seq, KIND_SNAPSHOT, body_len, _records(records))
        self.platform.flash_sync()
        # committed: the new region is the state
        self._active, self._active_seq, self._records = target, seq, records
        self._end = end
        self._appendable = True
        for region in range(self.regions):
            if region != target and self._info[region].state not in (_FREE, _BLANK):
                self._erase(region)
        self.platform.flash_sync()


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
