"""DirectCtapDevice: python-fido2's CtapDevice straight into Authenticator.process.

No CTAPHID framing: `call(CTAPHID.CBOR, data)` hands data (command byte || CBOR)
to the authenticator and returns its answer (status byte || CBOR), exactly
what CtapHidDevice.call returns after reassembling the packets. The keepalive
callback the authenticator gets forwards UPNEEDED to on_keepalive and reports
cancellation when `event` is set, as a CTAPHID CANCEL would.
"""

from __future__ import annotations

from threading import Event
from typing import Callable, Iterator

from fido2.ctap import STATUS, CtapDevice, CtapError
from fido2.hid import CAPABILITY, CTAPHID


class DirectCtapDevice(CtapDevice):
    def __init__(self, authenticator):
        self.authenticator = authenticator
        self.requests: list[bytes] = []   # every request and answer, for tests that check the bytes
        self.responses: list[bytes] = []

    @property
    def capabilities(self) -> int:
        return CAPABILITY.CBOR | CAPABILITY.NMSG

    def call(
        self,
        cmd: int,
        data: bytes = b"",
        event: Event | None = None,
        on_keepalive: Callable[[STATUS], None] | None = None,
    ) -> bytes:
        if cmd != CTAPHID.CBOR:
            raise CtapError(CtapError.ERR.INVALID_COMMAND)
        last = [None]

        def keepalive(status):
            if on_keepalive is not None and status != last[0]:
                last[0] = status
                on_keepalive(STATUS(status))
            return event is not None and event.is_set()

        self.requests.append(bytes(data))
        response = self.authenticator.process(bytes(data), keepalive)
        self.responses.append(response)
        return response

    def close(self) -> None:
        pass

    @classmethod
    def list_devices(cls) -> Iterator[CtapDevice]:
        return iter(())
