"""Typed records: a profile written by earlier sealcodes loads unchanged and saves byte for byte the
same; every field is type-checked; serials have one spelling (decimal) and older spellings still match."""

from __future__ import annotations

import json

import pytest

from sealcodes.errors import InvalidInputError, ProfileError
from sealcodes.profile import ProfileStore
from sealcodes.enrollment import (
    OPTIONS_BY_BACKEND,
    AppletOptions,
    Fido2Options,
    OpenPgpOptions,
    PivOptions,
    YkoathOptions,
    YubiOtpOptions,
    make_options,
)
from sealcodes.records import CodeSetEntry, Enrollment, Profile, same_serial, serial_text

# exactly as sealcodes 0.1 (before records.py) wrote it: json.dumps(indent=2, sort_keys=True) + "\n"
LEGACY_PROFILE = {
    "enrollments": {
        "applet:B4693929:1": {"backend": "applet", "device_kind": "pcsc", "device_name": "Virtual PCD 00 00",
                              "serial": "B4693929", "slot": 1},
        "fido2:B4693929:dGVzdGNy": {"aaguid": "4d41190c-7beb-4a84-8018-adf265a6352d", "backend": "fido2",
                                    "credential_id": "dGVzdGNyZWRlbnRpYWw", "device_kind": "pcsc",
                                    "device_name": "Virtual PCD 00 00", "discoverable": True,
                                    "public_key": "pQECAyYgASFYIA", "rp_id": "sealcodes:", "uv": False},
        "ykoath:3026794793:sealcodes": {"algorithm": "HMAC-SHA256", "backend": "ykoath",
                                        "credential_name": "sealcodes", "device_id": "abcdefghijklmnopqrstuv",
                                        "device_kind": "pcsc", "device_name": "Virtual PCD 00 00",
                                        "serial": "3026794793", "touch": False},
        "yubiotp:3026794793:2": {"adopted": True, "backend": "yubiotp", "device_kind": "pcsc",
                                 "device_name": "Virtual PCD 00 00", "serial": "3026794793", "slot": 2,
                                 "touch": None},
        "applet:emulator:1": {"backend": "applet", "device_kind": "emulator", "serial": "0A0B0C0D", "slot": 1,
                              "future_field": {"kept": [1, 2]}},
    },
    "schema": "sealcodes-profile/1",
    "sets": {
        "github.com/alice": {"count": 10, "enrollment": "applet:B4693929:1", "epoch": 3,
                             "fingerprint": "47JR-PGW1", "format": "base32-16"},
    },
}


def test_a_profile_of_the_previous_version_loads_and_saves_unchanged(tmp_path):
    path = tmp_path / "profile.json"
    raw = (json.dumps(LEGACY_PROFILE, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    path.write_bytes(raw)
    store = ProfileStore(str(path))
    profile = store.load()
    applet = profile.enrollment("applet:B4693929:1")
    assert isinstance(applet, Enrollment) and applet.slot == 1 and applet.device_name == "Virtual PCD 00 00"
    assert profile.enrollment("yubiotp:3026794793:2").touch is None
    assert profile.enrollment("fido2:B4693929:dGVzdGNy").uv is False
    assert profile.enrollment("applet:emulator:1").on_provider
    assert profile.code_set("github.com/alice") == CodeSetEntry("applet:B4693929:1", 3, "base32-16", 10, "47JR-PGW1")
    assert profile.labels_of("applet:B4693929:1") == ["github.com/alice"]
    store.save(profile)
    assert path.read_bytes() == raw  # unknown fields too


@pytest.mark.parametrize("field, value", [("slot", "1"), ("slot", True), ("uv", "yes"), ("touch", 1),
                                          ("serial", 5), ("backend", None), ("credential_id", [])])
def test_every_enrollment_field_is_type_checked(field, value):
    data = dict(LEGACY_PROFILE["enrollments"]["applet:B4693929:1"], **{field: value})
    with pytest.raises(ProfileError, match="corrupt"):
        Enrollment.from_json(data)


@pytest.mark.parametrize("entry", [{"enrollment": "e", "epoch": True, "format": "f", "count": 1, "fingerprint": "x"},
                                   {"enrollment": "e", "epoch": 0, "format": "f", "count": "1", "fingerprint": "x"},
                                   {"epoch": 0}, []])
def test_code_set_fields_are_type_checked(entry):
    with pytest.raises(ProfileError):
        CodeSetEntry.from_json(entry)


def test_records_are_frozen_and_changes_make_new_ones():
    profile = Profile.from_json(LEGACY_PROFILE)
    with pytest.raises(AttributeError):
        profile.enrollment("applet:B4693929:1").slot = 2
    with pytest.raises(TypeError):
        profile.enrollments["x"] = None
    changed = profile.with_set("new", CodeSetEntry("applet:B4693929:1", 0, "digits-24", 3, "AAAA-AAAA"))
    assert profile.code_set("new") is None and changed.code_set("new").count == 3


def test_one_spelling_of_a_serial():
    assert serial_text(bytes.fromhex("B4693929")) == "3026794793"  # our token's 4 bytes, as YubiKeys print
    assert serial_text(3026794793) == "3026794793"
    assert same_serial("3026794793", "3026794793")
    assert same_serial("B4693929", "3026794793") and same_serial("b4693929", "3026794793")  # older profiles
    assert not same_serial("B4693928", "3026794793") and not same_serial(None, "1") and not same_serial("1", None)
    # a typed device name of digits that int() reads differently or refuses (found in CI: '³' crashed
    # `keyring remove` whenever the emulated token's random serial had 8 characters)
    for typed in ("\u00b3" * 8, "\u0662" * 8, "\u00b3", "\u0663\u0660\u0662\u0666", "9" * 5000, " 305419896",
                  "305_419_896"):
        assert not same_serial("12345678", typed) and not same_serial("B4693929", typed)


# The emulated token's serial is 4 random bytes: its decimal has 1 to 10 digits (8 in about 2 runs
# in 100), and a test meets whichever its token drew. Every length, on every run:
@pytest.mark.parametrize("serial", [1, 9, 1234567, 12345678, 99999999, 123456789, 2**32 - 2])
def test_a_serial_of_any_length_matches_its_spellings_only(serial):
    decimal, recorded_hex = serial_text(serial), f"{serial:08X}"
    for recorded in (decimal, recorded_hex, recorded_hex.lower()):
        assert same_serial(recorded, decimal)
        for typed in ("\u00b3", "\u0662" * len(decimal), "9" * 5000, " " + decimal, decimal + " ", "+" + decimal,
                      decimal[:-1] + "_" + decimal[-1:], "emulator", str(serial + 1)):
            assert not same_serial(recorded, typed), (recorded, typed)
    if len(decimal) == 8:  # docs/spec.md, "Serials": 8 decimal digits also read as the older hex spelling
        assert same_serial(decimal, str(int(decimal, 16)))


@pytest.mark.parametrize("options_type, backend, given, takes", [
    (AppletOptions, "applet", {"touch": True}, "--slot, --force"),
    (Fido2Options, "fido2", {"slot": 1, "touch": True}, "--uv, --force"),
    (YkoathOptions, "ykoath", {"slot": 2}, "--touch, --force"),
    (YubiOtpOptions, "yubiotp", {"uv": "required"}, "--slot, --touch, --adopt, --force"),
    (PivOptions, "piv", {"touch": True}, "--adopt, --curve, --force"),
    (OpenPgpOptions, "openpgp", {"slot": 3}, "--adopt, --curve, --force"),
])
def test_unused_options_are_refused_the_same_way_everywhere(options_type, backend, given, takes):
    with pytest.raises(InvalidInputError) as info:
        make_options(backend, given)
    names = ", ".join("--" + n for n in sorted(given))
    assert str(info.value) == f"the {backend} backend does not use {names} (it takes: {takes})"
    assert make_options(backend, {"force": None, "slot": None}) == options_type()  # None: not given


def test_every_backend_has_its_options():
    from sealcodes.devices import BACKENDS

    assert set(OPTIONS_BY_BACKEND) == set(BACKENDS)
