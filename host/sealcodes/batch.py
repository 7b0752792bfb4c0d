"""Fleet enrollment from a CSV file, resumable: `sealcodes batch enroll --csv FILE`.

One row per person: account, label, and optionally the device serial, format, count and initial
PIN. For each row: wait for the device (found by serial when given), enroll it (or reuse the
enrollment the profile already has for that device), derive the set, and append the person's
verifier record to a JSON-lines file for `sealcodes verifier import`. A record is appended (and
fsync'ed) only once the row is complete, so the output never holds half a row; rows whose
(account, label) already have a record there are skipped, so a rerun resumes where it stopped.

Nothing here prints: progress goes through `BatchProgress` callbacks. PINs from the CSV are
passed to the device and never written anywhere else.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from typing import Callable

from . import derivation, operations
from .backends.base import Interaction
from .errors import InvalidInputError, SealcodesError
from .formats import FORMATS
from .numerals import ascii_int
from .profile import ProfileStore
from .records import same_serial
from .verifier.record import HashParams, RecordMaker, normalize_account

COLUMNS = ("account", "label", "serial", "format", "count", "pin")
REQUIRED = ("account", "label")
MAX_CSV_BYTES = 4 * 1024 * 1024
MAX_FIELD = 256


@dataclass(frozen=True)
class BatchRow:
    line: int
    account: str
    label: str
    serial: str | None = None
    format: str = operations.DEFAULT_FORMAT
    count: int = operations.DEFAULT_COUNT
    pin: str | None = field(default=None, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.account, self.label)


def read_rows(text: str) -> list[BatchRow]:
    """Parse and check the whole CSV before any device is touched; errors name the line."""
    if len(text) > MAX_CSV_BYTES:
        raise InvalidInputError(f"the CSV file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MiB")
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InvalidInputError("the CSV file is empty (it needs a header: account,label[,serial,format,count,pin])") from None
    except csv.Error:
        raise InvalidInputError("line 1 of the CSV file is not valid CSV") from None
    unknown = [h for h in header if h not in COLUMNS]
    if unknown or any(c not in header for c in REQUIRED) or len(set(header)) != len(header):
        raise InvalidInputError("the CSV header must name the columns account,label and optionally "
                                "serial,format,count,pin, each once")
    rows, seen = [], set()
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise InvalidInputError(f"line {line}: {len(values)} fields, the header has {len(header)}")
            if any(len(v) > MAX_FIELD for v in values):
                raise InvalidInputError(f"line {line}: a field is longer than {MAX_FIELD} characters")
            data = dict(zip(header, values))
            row = _row(line, data)
            if row.key in seen:
                raise InvalidInputError(f"line {line}: this account and label appear twice")
            seen.add(row.key)
            rows.append(row)
    except csv.Error:
        raise InvalidInputError(f"line {reader.line_num} of the CSV file is not valid CSV") from None
    if not rows:
        raise InvalidInputError("the CSV file has no rows")
    return rows


def _row(line: int, data: dict) -> BatchRow:
    try:
        account = normalize_account(data["account"].strip())
        label = derivation.normalize_label_text(data["label"].strip())
        fmt = (data.get("format") or "").strip() or operations.DEFAULT_FORMAT
        if fmt not in FORMATS:
            raise InvalidInputError(f"unknown format; use one of {', '.join(FORMATS)}")
        count_text = (data.get("count") or "").strip()
        count = ascii_int(count_text) if count_text else operations.DEFAULT_COUNT
        if count is None:
            raise InvalidInputError("count must be a number from 1 to 100")
        count = derivation.validate_count(count)
        serial = (data.get("serial") or "").strip() or None
        # ASCII only: str.isalnum() takes '٣' and 'é', which no device reports as its serial
        if serial is not None and not all(c.isascii() and (c.isalnum() or c in "-_:") for c in serial):
            raise InvalidInputError("the serial may hold letters, digits, '-', '_' and ':' only")
        pin = data.get("pin") or None
        if pin is not None and not 4 <= len(pin) <= 63:
            raise InvalidInputError("an initial PIN must have 4 to 63 characters")
    except InvalidInputError as exc:
        raise InvalidInputError(f"line {line}: {exc}") from None
    return BatchRow(line, account, label, serial, fmt, count, pin)


def done_keys(output_path: str) -> set[tuple[str, str]]:
    """(account, label) of every record already in the output file."""
    keys = set()
    try:
        with open(output_path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    keys.add((record["account"], record["label"]))
                except (ValueError, KeyError, TypeError):
                    raise InvalidInputError(f"line {number} of the output file is not a verifier record; "
                                            "refusing to append to it") from None
    except FileNotFoundError:
        pass
    except UnicodeDecodeError:
        raise InvalidInputError("the output file is not UTF-8 text (so not verifier records); refusing to append "
                                "to it") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read the output file: {exc.strerror}") from None
    return keys


class BatchProgress:
    """What the caller hears about; the CLI prints it."""

    def skipped(self, row: BatchRow, index: int, total: int) -> None: ...

    def waiting(self, row: BatchRow, index: int, total: int) -> None:
        """Before the device of `row` is looked for: the person's device should be inserted now."""

    def done(self, row: BatchRow, index: int, total: int, fingerprint: str) -> None: ...

    def failed(self, row: BatchRow, index: int, total: int, error: Exception) -> None: ...


class RowInteraction(Interaction):
    """The row's initial PIN (from the CSV) for every PIN request, else the caller's interaction."""

    def __init__(self, row: BatchRow, fallback: Interaction):
        self.row, self.fallback = row, fallback

    def request_pin(self, purpose, new=False):
        if self.row.pin is not None:
            return self.row.pin
        return self.fallback.request_pin(purpose, new)

    def touch_needed(self):
        self.fallback.touch_needed()

    def confirm(self, message):
        return self.fallback.confirm(message)


@dataclass(frozen=True)
class BatchResult:
    enrolled: int
    skipped: int
    failed: int


def enroll_rows(store: ProfileStore, rows: list[BatchRow], output_path: str,
                interaction_for: Callable[[BatchRow], Interaction], progress: BatchProgress | None = None,
                backend: str | None = None, params: HashParams | None = None) -> BatchResult:
    """Enroll every row not yet in `output_path`; a failed row is reported and skipped."""
    progress = progress or BatchProgress()
    done = done_keys(output_path)
    enrolled = skipped = failed = 0
    total = len(rows)
    for index, row in enumerate(rows, start=1):
        if row.key in done:
            skipped += 1
            progress.skipped(row, index, total)
            continue
        progress.waiting(row, index, total)
        try:
            record = _enroll_one(store, row, interaction_for(row), backend, params)
            _append(output_path, record.to_json())
        except SealcodesError as exc:
            failed += 1
            progress.failed(row, index, total, exc)
            continue
        done.add(row.key)
        enrolled += 1
        progress.done(row, index, total, record.fingerprint)
    return BatchResult(enrolled, skipped, failed)


def _enroll_one(store, row, interaction, backend, params):
    ident = _existing_enrollment(store, row.serial, backend)
    if ident is None:
        ident = operations.enroll(store, row.serial, interaction, backend=backend).enrollment_id
    entry = store.load().code_set(row.label)
    if entry is not None and entry.enrollment != ident:
        raise InvalidInputError(f"{row.label!r} already belongs to another device in the profile")
    # the set is recorded under the enrollment just made (or found) for this device
    recorder = RecordMaker((row.account,), params)  # record v2: the set's rotation commitment, from its R
    codes = operations.generate(store, row.label, interaction, fmt=row.format, count=row.count, device_spec=ident,
                                recorder=recorder)
    if codes.format != row.format or codes.count != row.count:
        raise InvalidInputError(f"{row.label!r} is already in the profile with another format or count")
    return recorder.record


def _existing_enrollment(store, serial, backend):
    """The profile's enrollment for this device serial (a rerun after a failure mid-row)."""
    if serial is None:
        return None
    profile = store.load()
    for ident, metadata in profile.enrollments.items():
        if same_serial(metadata.serial, serial) and (backend is None or metadata.backend == backend):
            return ident
    return None


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
