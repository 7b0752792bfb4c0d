"""The FIDO applet: CTAP2 over ISO 7816 (the NFC binding, CTAP 2.1 section 11.3).

Wire protocol (docs/protocols.md section 3), after SELECT A0 00 00 06 47 2F 00 01
(answered "FIDO_2_0": CTAP2 only, no U2F):

  80 10 P1 00 Lc <CTAP command byte || CBOR>     NFCCTAP_MSG
        P1 = 00: answer when done
        P1 = 80: the client can poll, so a request still running answers
                 SW 9100 with one byte of keepalive status (1 PROCESSING,
                 2 UPNEEDED)
  80 11 00 00                                   NFCCTAP_GETRESPONSE: 9100 + status
                                                while running, then the answer
  80 11 11 00                                   the same, and cancel the request
                                                (it ends with status 0x2D)

The answer is status byte || CBOR with SW 9000; the card splits long answers
with 61xx / GET RESPONSE and joins chained commands (CLA 0x90), so this applet
sees whole commands.

Running a request in the background needs a board that can run a function
concurrently: the applet attribute `run_background(fn)` if set, else
Platform.run_background (which answers False on a board that cannot). Without
it every request is answered synchronously, which P1 = 80 allows. With it the
applet waits up to FIDO_BUSY_GRACE_MS (Platform.sleep_ms) for the request, so
quick commands still answer at once.

Status words: 6A86 wrong P1/P2, 6700 empty NFCCTAP_MSG, 6985 GETRESPONSE with
nothing pending or NFCCTAP_MSG while a request runs, 6D00 other INS
(U2F included), 6E00 CLA other than 80.

MicroPython rules: plain classes; time and threads only through the Platform.
"""
from sealtoken.applets import AID_FIDO
from sealtoken.core.applet import Applet, ApduError
from sealtoken.core.iso7816 import (CLA_CHAINING, SW_CLA_NOT_SUPPORTED, SW_CONDITIONS_NOT_SATISFIED,
                                    SW_INCORRECT_P1P2, SW_INS_NOT_SUPPORTED, SW_WRONG_LENGTH)
from sealtoken.core.micro import const
from sealtoken.fido.ctaphid import CTAPHID_KEEPALIVE_PROCESSING, CTAPHID_STATUS_OTHER

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
_FIDO_SELECT_RESPONSE = const(b"FIDO_2_0")        # CTAP2 only (no U2F_V2)
FIDO_CLA = const(0x80)
FIDO_INS_NFCCTAP_MSG = const(0x10)
FIDO_INS_NFCCTAP_GETRESPONSE = const(0x11)
FIDO_P1_GETRESPONSE_SUPPORTED = const(0x80)       # NFCCTAP_MSG P1: the client will poll
_FIDO_P1_CANCEL = const(0x11)                     # NFCCTAP_GETRESPONSE P1: cancel the request
SW_FIDO_UPDATE = const(0x9100)                    # still working; data: 1 byte keepalive status
_FIDO_BUSY_GRACE_MS = const(50)                   # answer at once when the request is done this fast


class _Job:
    """One CTAP request running in the background."""

    def __init__(self, authenticator, request):
        self.authenticator = authenticator
        self.request = request
        self.status = 0  # last keepalive status; 0 while none came
        self.cancelled = False
        self.done = False
        self.response = None

    def keepalive(self, status):
        self.status = status
        return self.cancelled

    def run(self):
        try:
            self.response = self.authenticator.process(self.request, self.keepalive)
        except Exception:
            self.response = bytes((CTAPHID_STATUS_OTHER,))
        self.request = None
        self.done = True


class FidoApplet(Applet):
    AID = AID_FIDO

    def __init__(self, platform, store, authenticator=None):
        Applet.__init__(self, platform, store)
        if authenticator is None:
            from sealtoken.fido.ctap2 import Authenticator

            authenticator = Authenticator(platform, store)
        self.authenticator = authenticator
        # callable(fn) running fn() concurrently; None: use the platform's, if any
        self.run_background = None
        self._job = None

    # --- applet contract --------------------------------------------------------
    def select(self, command):
        return _FIDO_SELECT_RESPONSE

    def deselect(self):
        self._abandon()

    def power_off(self):
        self._abandon()
        power_off = getattr(self.authenticator, "power_off", None)
        if power_off is not None:
            power_off()

    def process(self, command):
        if command.cla & ~CLA_CHAINING & 0xFF != FIDO_CLA:
            raise ApduError(SW_CLA_NOT_SUPPORTED)
        if command.ins == FIDO_INS_NFCCTAP_MSG:
            return self._msg(command)
        if command.ins == FIDO_INS_NFCCTAP_GETRESPONSE:
            return self._get_response(command)
        raise ApduError(SW_INS_NOT_SUPPORTED)

    # --- commands ----------------------------------------------------------------
    def _msg(self, command):
        if command.p2 != 0 or command.p1 not in (0, FIDO_P1_GETRESPONSE_SUPPORTED):
            raise ApduError(SW_INCORRECT_P1P2)
        if self._job is not None and not self._job.done:
            raise ApduError(SW_CONDITIONS_NOT_SATISFIED)
        self._job = None
        request = bytes(command.data)
        if not request:
            raise ApduError(SW_WRONG_LENGTH)
        if command.p1 != FIDO_P1_GETRESPONSE_SUPPORTED:
            return self.authenticator.process(request, None)
        job = _Job(self.authenticator, request)
        self._job = job
        if not self._start(job.run):
            self._job = None
            return self.authenticator.process(request, None)
        deadline = self.platform.now_ms() + _FIDO_BUSY_GRACE_MS
        while not job.done and job.status == 0 and self.platform.now_ms() < deadline:
            self.platform.sleep_ms(1)
        return self._job_answer()

    def _get_response(self, command):
        if command.p2 != 0 or command.p1 not in (0, _FIDO_P1_CANCEL):
            raise ApduError(SW_INCORRECT_P1P2)
        job = self._job
        if job is None:
            raise ApduError(SW_CONDITIONS_NOT_SATISFIED)
        if command.p1 == _FIDO_P1_CANCEL:
            job.cancelled = True
        return self._job_answer()

    # --- background requests --------------------------------------------------------
    def _start(self, work):
        """Start work in the background; False when nothing can run beside the card."""
        if self.run_background is not None:
            self.run_background(work)
            return True
        return self.platform.run_background(work)

    def _job_answer(self):
        job = self._job
        if job.done:
            self._job = None
            return job.response
        status = job.status or CTAPHID_KEEPALIVE_PROCESSING
        return bytes((status,)), SW_FIDO_UPDATE

    def _abandon(self):
        job = self._job
        if job is not None:
            job.cancelled = True
            self._job = None
