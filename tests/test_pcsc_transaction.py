"""PC/SC sessions are exclusive and closed: no other program gets between sealcodes' VERIFY and its
DERIVE, and no verified state outlives the session. Through the real pcscd + vpcd + `sealtoken serve`;
the other program is a separate process talking to pcscd with pyscard."""

from __future__ import annotations

import subprocess
import sys

import pytest

from _support import VpcdToken, run_cli
from sealcodes.backends.applet import AppletBackend
from sealcodes.backends.base import Interaction
from sealcodes.derivation import challenge
from sealcodes.pcsc import PcscConnection
from sealcodes.records import Enrollment

pytestmark = pytest.mark.pcsc

PIN = "transaction-pin"
SLOT_1 = Enrollment(backend="applet", slot=1)

# another program on the same machine: connects (shared, as every PC/SC client does) and sends a
# DERIVE of its own, hoping the sealcodes applet is selected and the PIN verified by someone else
INTRUDER = r"""
import sys
from smartcard import scard
rv, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
rv, card, proto = scard.SCardConnect(ctx, sys.argv[1], scard.SCARD_SHARE_SHARED,
                                     scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
if rv:
    print("connect-failed %08X" % (rv & 0xFFFFFFFF), flush=True)
    sys.exit()
print("connected", flush=True)
derive = [0x00, 0x88, 0x01, 0x00, 0x20] + [0x42] * 32 + [0x00]
rv, resp = scard.SCardTransmit(card, proto, derive)
if rv:
    print("transmit-failed %08X" % (rv & 0xFFFFFFFF), flush=True)
else:
    print("sw %02X%02X len %d" % (resp[-2], resp[-1], len(resp) - 2), flush=True)
scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
"""


class _Pin(Interaction):
    def request_pin(self, purpose, new=False):
        return PIN


def _intrude(reader, wait):
    """Start the other program; its output if it finished within `wait` s, else (process, None)."""
    proc = subprocess.Popen([sys.executable, "-c", INTRUDER, reader], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, _ = proc.communicate(timeout=wait)
        return proc, out
    except subprocess.TimeoutExpired:
        return proc, None


class _IntrudeAfterVerify(PcscConnection):
    """sealcodes' own PC/SC connection; right after the card accepted VERIFY, another program
    tries its DERIVE (and is given 2 s to get through)."""

    intruder = None
    early_output = None

    def _transmit(self, apdu):
        data, sw = super()._transmit(apdu)
        if apdu[1] == 0x20 and sw == 0x9000 and self.intruder is None:
            self.intruder, self.early_output = _intrude(self.name, wait=2.0)
        return data, sw


@pytest.fixture
def enrolled(pcscd, tmp_path):
    """Our token in vpcd's second slot ('Virtual PCD 00 01'), enrolled in slot 1."""
    token = VpcdToken(tmp_path / "token-state", slot=1)
    token.start()
    try:
        result = run_cli("enroll", "--device", token.reader, input=PIN + "\n")
        assert result.returncode == 0, result.stderr
        yield token
    finally:
        token.stop()


def test_nobody_gets_between_verify_and_derive(enrolled):
    reader = enrolled.reader
    expected = _reference_response(reader)
    conn = _IntrudeAfterVerify(reader)
    try:
        response = AppletBackend(conn).respond(challenge("t.example", 0), SLOT_1, _Pin())
    finally:
        conn.close()
    assert conn.intruder is not None
    try:
        late_output, _ = conn.intruder.communicate(timeout=20)
    finally:
        if conn.intruder.poll() is None:
            conn.intruder.kill()
    output = conn.early_output if conn.early_output is not None else late_output
    # our DERIVE was answered with our secret: nothing consumed or changed our verified state
    assert bytes(response) == expected
    # the other program never got a DERIVE answer: it waited for our transaction, and by then the
    # card had been reset (or pcscd refused it outright)
    assert "sw 9000" not in output, output
    assert conn.early_output is None or "failed" in conn.early_output, conn.early_output


def test_no_verified_state_outlives_the_session(enrolled):
    """A session that verified the PIN but ended without DERIVE (an error, Ctrl-C) leaves nothing
    another program could use: the card is reset when sealcodes lets it go."""
    conn = PcscConnection(enrolled.reader)
    try:
        AppletBackend(conn).verify_pin(_Pin())
    finally:
        conn.close()
    _, output = _intrude(enrolled.reader, wait=20)
    assert output is not None and "sw 9000" not in output, output


def test_a_session_without_pin_leaves_the_card_alone(enrolled):
    """Only a session that verified a PIN resets the card: listing devices does not disturb other
    programs' sessions (a card reset would drop, e.g., an OpenPGP PIN another program verified)."""
    other = subprocess.Popen([sys.executable, "-c", _HOLDER, enrolled.reader], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "selected"
        with PcscConnection(enrolled.reader) as conn:
            AppletBackend(conn).info()
        other.stdin.write("go\n")
        other.stdin.flush()
        assert other.stdout.readline().strip() == "ok", "the other program's session was reset"
    finally:
        other.kill()
        other.wait()


_HOLDER = r"""
import sys
from smartcard import scard
rv, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
rv, card, proto = scard.SCardConnect(ctx, sys.argv[1], scard.SCARD_SHARE_SHARED,
                                     scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
rv, resp = scard.SCardTransmit(card, proto, [0, 0xA4, 4, 0, 10] + list(b"\xf0SEALCODES") + [0])
print("selected", flush=True)
sys.stdin.readline()
rv, resp = scard.SCardTransmit(card, proto, [0, 0x50, 0, 0, 0])
print("ok" if rv == 0 else "reset %08X" % (rv & 0xFFFFFFFF), flush=True)
"""


def _reference_response(reader):
    with PcscConnection(reader) as conn:
        return bytes(AppletBackend(conn).respond(challenge("t.example", 0), SLOT_1, _Pin()))


# another program after sealcodes' session on the PIV or OpenPGP application asks whether a PIN is
# verified (VERIFY with no data: 9000 = verified), first on the application sealcodes left selected,
# then after selecting it itself
_PIN_STATUS = r"""
import sys
from smartcard import scard
rv, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
rv, card, proto = scard.SCardConnect(ctx, sys.argv[1], scard.SCARD_SHARE_SHARED,
                                     scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
aid = bytes.fromhex(sys.argv[2])
out = []
for prefix in ("", "selected-"):
    if prefix:
        rv, resp = scard.SCardTransmit(card, proto, [0, 0xA4, 4, 0, len(aid)] + list(aid) + [0])
    for ref in sys.argv[3:]:
        rv, resp = scard.SCardTransmit(card, proto, [0, 0x20, 0, int(ref, 16)])
        out.append(prefix + ("%s=%02X%02X" % (ref, resp[-2], resp[-1]) if rv == 0 else "%s=rv%08X" % (ref, rv & 0xFFFFFFFF)))
print(" ".join(out), flush=True)
scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
"""


class _Pins(Interaction):
    def __init__(self, pins):
        self.pins = pins

    def request_pin(self, purpose, new=False):
        return bytearray(self.pins[purpose].encode())

    def confirm(self, message):
        return True


def _pin_status(reader, aid, *refs):
    result = subprocess.run([sys.executable, "-c", _PIN_STATUS, reader, aid.hex(), *refs], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return dict(item.split("=") for item in result.stdout.split())


def test_no_piv_pin_outlives_the_session(enrolled):
    """PIV keeps a verified PIN across SELECTs until the card is reset: sealcodes resets it."""
    from sealcodes.backends.piv import PivBackend
    from sealcodes.const import AID_PIV
    from sealcodes.enrollment import PivOptions

    pins = _Pins({"piv": "123456"})
    with PcscConnection(enrolled.reader) as conn:
        enrollment = PivBackend(conn).enroll(pins, PivOptions(curve="P-256"))
    assert "9000" not in _pin_status(enrolled.reader, AID_PIV, "80").values()
    with PcscConnection(enrolled.reader) as conn:
        assert len(PivBackend(conn).respond(challenge("t.example", 0), enrollment, pins)) == 32
    status = _pin_status(enrolled.reader, AID_PIV, "80")
    assert len(status) == 2 and "9000" not in status.values(), status


def test_no_openpgp_pin_outlives_the_session(enrolled):
    """Neither the admin PIN (enrollment) nor the user PIN (a response) stays verified: with it,
    another program could decipher (ECDH) with the card's key without a PIN and compute R."""
    from sealcodes.backends.openpgp import ADMIN_PIN_PURPOSE, PIN_PURPOSE, OpenPgpBackend
    from sealcodes.const import AID_OPENPGP
    from sealcodes.enrollment import OpenPgpOptions

    pins = _Pins({PIN_PURPOSE: "123456", ADMIN_PIN_PURPOSE: "12345678"})
    with PcscConnection(enrolled.reader) as conn:
        enrollment = OpenPgpBackend(conn).enroll(pins, OpenPgpOptions(curve="P-256"))
    status = _pin_status(enrolled.reader, AID_OPENPGP, "82", "83")
    assert len(status) == 4 and "9000" not in status.values(), status
    with PcscConnection(enrolled.reader) as conn:
        assert len(OpenPgpBackend(conn).respond(challenge("t.example", 0), enrollment, pins)) == 32
    status = _pin_status(enrolled.reader, AID_OPENPGP, "82", "83")
    assert len(status) == 4 and "9000" not in status.values(), status


class _FailingEnd:
    """pyscard's scard module with an SCardEndTransaction that fails (the card went away under it)."""

    def __init__(self, real):
        self._real = real
        self.calls = []

    def __getattr__(self, name):
        return getattr(self._real, name)

    def SCardEndTransaction(self, card, disposition):
        self.calls.append(("end", disposition))
        return self._real.SCARD_F_COMM_ERROR

    def SCardDisconnect(self, card, disposition):
        self.calls.append(("disconnect", disposition))
        return self._real.SCardDisconnect(card, self._real.SCARD_LEAVE_CARD)


def test_reset_is_kept_when_ending_the_transaction_fails(enrolled):
    from smartcard import scard

    conn = PcscConnection(enrolled.reader)
    conn.reset_on_close()
    failing = _FailingEnd(scard)
    conn._scard = failing  # the real disconnect (which also ends the transaction) still runs
    conn.close()
    assert failing.calls == [("end", scard.SCARD_RESET_CARD), ("disconnect", scard.SCARD_RESET_CARD)]


def test_a_missing_library_is_not_an_absent_device(enrolled, isolated_dirs):
    """With yubikit missing, `generate` on a PIV set says what to install, not "not connected"."""
    result = run_cli("enroll", "--device", enrolled.reader, "--backend", "piv", "--force")
    assert result.returncode == 0, result.stderr
    assert run_cli("generate", "piv.example", "--backend", "piv", "--json", "--no-confirm", input="123456\n").returncode == 0
    blocked = ("import sys; sys.modules['yubikit'] = None\n"
               "from sealcodes._cli import main; main(['generate', 'piv.example'])")
    result = subprocess.run([sys.executable, "-c", blocked], input="123456\n", capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "sealcodes[yubikey]" in result.stderr and "not connected" not in result.stderr, result.stderr
