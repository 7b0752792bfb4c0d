"""A code set's parameters (label, epoch, format, count) are checked once, where they enter the
library (`derivation.CodeSetParams.of`); the challenge, the codes and the fingerprint take the
checked record and check nothing again. Counted along `generate` on the built-in emulator: before,
the label went through the label rules six times and the format through the format lookup four."""

from __future__ import annotations

import collections
import dataclasses

import pytest

from sealcodes import derivation, formats, operations
from sealcodes.backends.base import Interaction
from sealcodes.errors import InvalidInputError
from sealcodes.profile import ProfileStore

PIN = "params-pin-1"
# every check of a parameter, by the module attribute it is reached through
CHECKS = {(derivation, "normalize_label_text"): "label", (derivation, "normalize_label"): "label",
          (derivation, "validate_epoch"): "epoch", (derivation, "validate_count"): "count",
          (derivation, "get_format"): "format", (formats, "get_format"): "format"}


class _Pin(Interaction):
    def request_pin(self, purpose, new=False):
        return bytearray(PIN.encode())

    def confirm(self, message):
        return True


@pytest.fixture
def counted(monkeypatch):
    """Counts every parameter check from now on: {"label": n, "epoch": n, "format": n, "count": n}."""
    counts = collections.Counter()
    for (module, name), what in CHECKS.items():
        def counting(*args, _real=getattr(module, name), _what=what, **kwargs):
            counts[_what] += 1
            return _real(*args, **kwargs)
        monkeypatch.setattr(module, name, counting)
    return counts


def _store(isolated_dirs):
    store = ProfileStore(str(isolated_dirs / "config" / "sealcodes" / "profile.json"))
    operations.enroll(store, "emulator", _Pin(), backend="applet")
    return store


def test_generate_checks_each_parameter_once(isolated_dirs, counted):
    store = _store(isolated_dirs)
    counted.clear()
    first = operations.generate(store, "Cafe\u0301.example", _Pin(), fmt="digits-24", count=7)
    assert dict(counted) == {"label": 1, "epoch": 1, "format": 1, "count": 1}
    counted.clear()
    again = operations.generate(store, "Café.example", _Pin())  # recorded: its values come from the profile
    assert dict(counted) == {"label": 1, "epoch": 1, "format": 1, "count": 1}
    assert again == first and first.label == "Café.example"  # NFC, as everywhere
    counted.clear()
    rotated = operations.rotate(store, "Café.example", _Pin())
    assert counted["label"] == 1 and counted["format"] == 1 and rotated.epoch == 1


def test_the_derivation_takes_the_checked_record_as_it_is(counted):
    from sealcodes.derivation import CodeSetParams

    params = CodeSetParams.of("github.com/alice", 2, "base32-24", 5)
    counted.clear()
    codes = derivation.derive_set(bytes(32), params)
    fingerprint = derivation.fingerprint_of(bytes(32), params)
    challenge = derivation.challenge_of(params)
    assert dict(counted) == {}
    # the same outputs, vectors included, as the functions that check their arguments
    assert codes == derivation.derive(bytes(32), "github.com/alice", 2, "base32-24", 5)
    assert fingerprint == codes.fingerprint == derivation.fingerprint(bytes(32), "github.com/alice", 2, "base32-24")
    assert challenge == derivation.challenge("github.com/alice", 2)


def test_the_record_is_frozen_and_checked_where_it_is_made():
    from sealcodes.derivation import CodeSetParams

    params = CodeSetParams.of("Cafe\u0301", 0)
    assert params.label == "Café" and params.label_bytes == "Café".encode() and params.format == "base32-16"
    assert params.count == derivation.DEFAULT_COUNT
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.epoch = 3
    for bad in ((" x", 0, "base32-16", 10), ("x", 2**32, "base32-16", 10), ("x", 0, "base32-99", 10),
                ("x", 0, "base32-16", 0)):
        with pytest.raises(InvalidInputError):
            CodeSetParams.of(*bad)
    with pytest.raises(TypeError):
        CodeSetParams.of("x", None)
    assert params.next_epoch().epoch == 1
    with pytest.raises(InvalidInputError, match="epoch"):
        CodeSetParams.of("x", 2**32 - 1).next_epoch()
    assert params.with_checked(4, "digits-24", 3) == CodeSetParams.of("Café", 4, "digits-24", 3)
