"""Untrusted text never reaches the terminal raw: device strings, labels and profile content are shown
with control, bidi and invisible format characters escaped (sealcodes.text)."""

from __future__ import annotations

import json
import logging

import pytest
from click.testing import CliRunner

from _support import run_cli
from sealcodes import derivation
from sealcodes.text import is_hidden, json_text, printable

ESC_TITLE = "\x1b]0;owned\x07"          # OSC: set the terminal title
ESC_CLEAR = "\x1b[2J\x1b[H"              # CSI: clear the screen
C1_CSI = "\x9b31m"                        # the 8-bit CSI some terminals still honour
RLO = "\u202e"                            # RIGHT-TO-LEFT OVERRIDE
BIDI = [chr(c) for c in [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]]
INVISIBLE = ["\u200b", "\u2060", "\ufeff", "\u00ad", "\U000e0041", "\u2028", "\u2029"]
DANGEROUS = ["\x1b", "\x07", "\x9b", "\x7f", "\x00", *BIDI, *INVISIBLE]


def _clean(text):
    return not any(c in text for c in DANGEROUS)


# --- the function ----------------------------------------------------------------------------------
@pytest.mark.parametrize("char", DANGEROUS + ["\t", "\n", "\r", "\x85", "\ud800"])
def test_every_control_bidi_and_format_character_is_escaped(char):
    shown = printable(f"a{char}b")
    assert shown.startswith("a") and shown.endswith("b") and len(shown) > 3
    assert char not in shown and shown.isascii()
    assert is_hidden(char)


def test_ordinary_text_of_every_script_is_left_alone():
    for text in ("github.com/alice", "Grüße, José", "日本語のラベル", "עברית", "العربية", "emoji 🙂",
                 "Yubico YubiKey OTP+FIDO+CCID 00 00", "a\u00a0b", "tab-free: 12 34"):
        assert printable(text) == text


def test_escapes_are_readable():
    assert printable("evil" + RLO + "gpj.exe") == "evil\\u202egpj.exe"
    assert printable(ESC_CLEAR) == "\\x1b[2J\\x1b[H"
    assert printable("tag\U000e0041") == "tag\\U000e0041"
    assert printable(42) == "42"


def test_json_text_means_the_same_and_shows_nothing_raw():
    value = {"label": "x" + RLO + ESC_TITLE + C1_CSI + "\u2028" + "é🙂", "n": [1, "\U000e0041"]}
    for kwargs in ({}, {"indent": 2, "sort_keys": True}):
        dumped = json_text(value, **kwargs)
        assert json.loads(dumped) == value
        assert _clean(dumped)
    assert "é🙂" in json_text(value)  # readable UTF-8 stays readable


# --- labels on code sheets ----------------------------------------------------------------------------
SPEC_R = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"


@pytest.mark.parametrize("label", ["evil" + RLO + "moc.elgoog", "a\u2066b\u2069c", "zero\u200bwidth",
                                   "\u200fbank.example"])
def test_labels_with_bidi_or_invisible_characters_keep_their_v1_codes_but_are_shown_escaped(label):
    """v1 is frozen: such labels are valid and give the same codes as before; only the display changes."""
    expected = derivation.derive(bytes.fromhex(SPEC_R), label, 0, "base32-16", 10)
    sheet = run_cli("expand", "--label", label, input=SPEC_R)
    assert sheet.returncode == 0, sheet.stderr
    assert _clean(sheet.stdout + sheet.stderr)
    assert printable(label) in sheet.stdout
    assert [line.split(". ")[1] for line in sheet.stdout.splitlines()[1:11]] == list(expected.codes)
    as_json = run_cli("expand", "--label", label, "--json", input=SPEC_R)
    assert as_json.returncode == 0 and _clean(as_json.stdout)
    parsed = json.loads(as_json.stdout)
    assert parsed["label"] == derivation.normalize_label_text(label) and parsed["codes"] == list(expected.codes)


def test_generate_warns_about_a_label_with_hidden_characters(isolated_dirs):
    pin = "correct horse"
    assert run_cli("enroll", "--device", "emulator", input=pin + "\n").returncode == 0
    label = "paypal.com" + RLO + "evil"
    result = run_cli("generate", label, input=pin + "\n")
    assert result.returncode == 0, result.stderr
    assert _clean(result.stdout + result.stderr)
    assert "\\u202e" in result.stdout and "invisible or direction-changing" in result.stderr


# --- device strings -------------------------------------------------------------------------------------
class _EvilDevice:
    """A device description as a hostile reader or USB device could make it (the fields are device data)."""

    def __init__(self):
        from sealcodes.devices.discovery import DeviceInfo

        self.device = DeviceInfo(kind="pcsc", name="Evil Reader" + ESC_TITLE + ESC_CLEAR + RLO + "00 00",
                             backends=["applet"], serial="1234" + C1_CSI + "\u200b",
                             detail="product " + "\x1b[5m" + BIDI[3])


def test_devices_listing_escapes_reader_names_serials_and_product_strings(monkeypatch):
    from sealcodes._cli import cli
    from sealcodes._cli import device as device_cli

    evil = _EvilDevice().device
    monkeypatch.setattr(device_cli, "list_devices", lambda **_: [evil])
    result = CliRunner().invoke(cli, ["devices"], catch_exceptions=False)
    assert result.exit_code == 0
    assert _clean(result.output)
    assert "Evil Reader\\x1b]0;owned\\x07" in result.output and "1234\\x9b31m" in result.output


def test_a_busy_reader_is_shown_escaped_while_waited_for_and_listed(monkeypatch, capsys):
    from sealcodes._cli import cli
    from sealcodes._cli import device as device_cli
    from sealcodes._cli.util import CliInteraction
    from sealcodes.devices.discovery import DeviceInfo

    name = _EvilDevice().device.name
    CliInteraction().device_busy(name)
    err = capsys.readouterr().err
    shown = printable(name)
    assert "Evil Reader\\x1b]0;owned\\x07" in shown
    assert _clean(err) and err == f"waiting for {shown} (in use by another program)...\n"
    monkeypatch.setattr(device_cli, "list_devices", lambda **_: [DeviceInfo("pcsc", name, busy=True)])
    result = CliRunner().invoke(cli, ["devices"], catch_exceptions=False)
    assert result.exit_code == 0 and _clean(result.output)
    assert f"{shown}  [pcsc]  busy (in use by another program)" in result.output


def test_error_messages_quoting_device_strings_are_escaped(monkeypatch, capsys):
    from sealcodes.devices import discovery
    from sealcodes.errors import DeviceNotFoundError

    def refuse(*args, **kwargs):
        raise DeviceNotFoundError("no PC/SC reader named " + _EvilDevice().device.name)

    monkeypatch.setattr(discovery, "resolve", refuse)
    from sealcodes._cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["recover", "x", "--fingerprint", "0000-0000", "--device", "whatever"])
    assert exit_info.value.code == 1
    out, err = capsys.readouterr()
    assert err.startswith("Error: no PC/SC reader named Evil Reader\\x1b]0;owned") and err.count("\n") == 1
    assert _clean(out + err)


def test_error_messages_quoting_profile_content_are_escaped(isolated_dirs, tmp_path):
    """A hand-edited (or planted) profile: its strings come back in messages, escaped."""
    path = tmp_path / "profile.json"
    evil_serial = "ABCD" + ESC_CLEAR + RLO
    path.write_text(json.dumps({
        "schema": "sealcodes-profile/1",
        "enrollments": {"applet:x:1": {"backend": "applet", "serial": evil_serial, "slot": 1,
                                       "device_kind": "emulator"}},
        "sets": {"l": {"enrollment": "applet:x:1", "epoch": 0, "format": "base32-16", "count": 10,
                       "fingerprint": "AAAA-AAAA"}},
    }))
    path.chmod(0o600)
    # the emulator's serial is not the recorded one: the message names the recorded one
    result = run_cli("--profile", str(path), "generate", "l")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "ABCD\\x1b[2J" in result.stderr
    assert _clean(result.stdout + result.stderr)


def test_log_lines_are_escaped(capsys):
    from sealcodes._cli.logs import escaping_log_handler

    logger = logging.getLogger("sealcodes.test-untrusted")
    handler = escaping_log_handler()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("reader %s answered", "R" + ESC_TITLE + RLO)
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert "R\\x1b]0;owned\\x07\\u202e" in err and _clean(err)
