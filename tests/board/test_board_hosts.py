"""The board package with the host programs people use: pcscd (through the CCID bridge and
vsmartcard's vpcd driver) with pyscard, yubikit and the installed `sealcodes`, and `sealcodes`
over the HID interface through the board device provider. The board runs under MicroPython's unix
port with the heap a Pico leaves; its flash (a file) outlives the process, as a Pico's outlives a
power cycle."""

from __future__ import annotations

import json
import os

import pytest
from yubikit.oath import HASH_ALGORITHM, OATH_TYPE, CredentialData, OathSession

from _support import VpcdToken, console_script, run_cli
from sealcodes.backends._yubikit import yubikit_connection
from sealcodes.pcsc import PcscConnection

from ._board import MODEL_FAILED, Board

PIN = "4711-pin"
LABEL = "github.com/alice"


class BridgedBoard(VpcdToken):
    """`sealtoken bridge`: the board's CCID interface as the card in reader 'Virtual PCD 00 00'."""

    def __init__(self, board: Board):
        super().__init__(board.socket.parent, server=[console_script("sealtoken")])
        self.board = board

    def command(self) -> list:
        return [*self.server, "bridge", "--usb", str(self.board.socket), "--vpcd", f"127.0.0.1:{self.port}"]


def _codes(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.pcsc
def test_pcscd_yubikit_and_sealcodes_through_the_ccid_interface(pcscd, board_dist, tmp_path):
    board = Board(board_dist, tmp_path / "board").start()
    bridge = BridgedBoard(board)
    try:
        serial = _serial_of(board)
        bridge.start()
        # pyscard through pcscd: the board's ATR
        from smartcard.System import readers

        (reader,) = [r for r in readers() if str(r) == bridge.reader]
        card = reader.createConnection()
        card.connect()
        assert bytes(card.getATR()).startswith(b"\x3b\xff\x13") and b"sealtoken" in bytes(card.getATR())
        card.disconnect()
        # yubikit's OATH session over pcscd
        with PcscConnection(bridge.reader) as connection:
            oath = OathSession(yubikit_connection(connection))
            credential = oath.put_credential(CredentialData("board", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA1,
                                                            b"12345678901234567890"))
            assert oath.calculate(credential.id, b"\x00" * 7 + b"\x01").hex() == \
                "75a48a19d4cbe100644e8ac1397eea747a2d33ab"  # RFC 4226 / 6238 test key, counter 1
        # `sealcodes devices` sees the card with every application, and the board's serial
        listing = run_cli("devices")
        assert listing.returncode == 0, listing.stderr
        (line,) = [x for x in listing.stdout.splitlines() if bridge.reader in x]
        for backend in ("applet", "fido2", "ykoath", "yubiotp", "piv", "openpgp"):
            assert backend in line
        # enroll and generate through pcscd; the same codes after the board's power cycle
        result = run_cli("enroll", "--device", bridge.reader, input=PIN + "\n")
        assert result.returncode == 0, result.stderr
        first = _codes(run_cli("generate", LABEL, "--json", input=PIN + "\n"))
        assert len(first["codes"]) == 10
        bridge.stop(release=False)
        board.restart()
        bridge.start()
        assert _codes(run_cli("generate", LABEL, "--json", input=PIN + "\n")) == first
        assert f"serial {serial}" in line
    finally:
        bridge.stop()
        stderr = board.stop()
    assert MODEL_FAILED not in stderr, stderr[-3000:]


def _serial_of(board: Board) -> str:
    link = board.link(timeout=30)
    try:
        return link.enumerate().serial
    finally:
        link.close()


def test_sealcodes_over_the_hid_interface(board_dist, tmp_path):
    board = Board(board_dist, tmp_path / "board").start()
    env = {"SEALBOARD_USB": str(board.socket)}
    try:
        listing = run_cli("devices", env=env)
        assert listing.returncode == 0, listing.stderr
        (line,) = [x for x in listing.stdout.splitlines() if x.startswith("board")]
        serial = _serial_of(board)
        assert f"serial {serial}" in line and "backends: fido2" in line
        assert "USB 1209:0001 sealcodes sealtoken board (not tamper-resistant)" in line
        result = run_cli("enroll", "--device", "board", "--backend", "fido2", env=env)
        assert result.returncode == 0, result.stderr
        first = _codes(run_cli("generate", "vpn.example", "--json", env=env))
        board.restart()
        assert _codes(run_cli("generate", "vpn.example", "--json", env=env)) == first
        # without the socket the board is not listed, and naming it says why it cannot be opened
        hidden = run_cli("devices", env={"SEALBOARD_USB": ""})
        assert "board" not in [x.split()[0] for x in hidden.stdout.splitlines() if x.strip()]
        named = run_cli("enroll", "--device", "board", "--backend", "fido2", env={"SEALBOARD_USB": ""})
        assert named.returncode == 1 and named.stderr == "Error: no board: set SEALBOARD_USB to the socket of its USB bus\n"
    finally:
        stderr = board.stop()
    assert MODEL_FAILED not in stderr, stderr[-3000:]


def test_the_bridge_says_in_one_line_when_there_is_no_board(tmp_path):
    import subprocess

    result = subprocess.run([console_script("sealtoken"), "bridge", "--usb", str(tmp_path / "nothing.sock"),
                             "--connect-timeout", "0.3"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("sealtoken: no device at ") and result.stderr.count("\n") == 1
