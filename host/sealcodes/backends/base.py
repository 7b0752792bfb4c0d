"""What every backend (one per device application) provides to the library.

A backend session wraps one open connection to one device application. It enrolls (creates
or adopts the sealed secret, returns an Enrollment record for the profile) and answers
challenges (returns R, docs/spec.md section 3). It never prints or prompts: user interaction
goes through the `Interaction` callbacks the caller passes in.
"""

from __future__ import annotations

import abc

from ..const import SEAL_CHALLENGE_LEN
from ..errors import InvalidInputError, RecoveryUnsupportedError
from ..memory import wipe
from ..records import Enrollment, same_serial

CHALLENGE_LEN = SEAL_CHALLENGE_LEN  # docs/spec.md section 2: every backend answers a 32-byte challenge


def require_challenge(challenge) -> bytes:
    """The 32-byte challenge, or InvalidInputError."""
    if len(challenge) != CHALLENGE_LEN:
        raise InvalidInputError(f"the challenge must be {CHALLENGE_LEN} bytes")
    return bytes(challenge)


def take_pin(pin) -> bytearray:
    """The PIN an Interaction returned, as a bytearray (UTF-8) the backend wipes after use.

    A bytearray is taken as it is (the backend wipes the caller's buffer); a str (an older
    Interaction) is encoded into a new bytearray.
    """
    if isinstance(pin, bytearray):
        return pin
    if isinstance(pin, str):
        return bytearray(pin.encode("utf-8"))
    if isinstance(pin, (bytes, memoryview)):
        return bytearray(pin)
    raise TypeError("request_pin must return a bytearray")


class Interaction:
    """Callbacks from the library to whoever drives it (the CLI, a test)."""

    #: seconds to wait for a device another program holds (None: the connection's default,
    #: pcsc.DEFAULT_BUSY_WAIT_S); the CLI sets it from --wait
    busy_wait: float | None = None

    def device_busy(self, name: str) -> None:
        """Another program holds device `name` and the command waits for it (called once, after
        ~0.5 s of waiting; it gives up after `busy_wait` seconds)."""

    def request_pin(self, purpose: str, new: bool = False) -> bytearray:
        """A PIN for `purpose` ("applet", "fido2", ...) as UTF-8 in a bytearray; new=True when setting
        one. The backend owns the buffer it gets and wipes it (memory.wipe) as soon as it is used."""
        raise NotImplementedError("this operation needs a PIN")

    def touch_needed(self) -> None:
        """The device waits for a touch (called once, after ~0.5 s of blocking)."""

    def confirm(self, message: str) -> bool:
        """Ask before a destructive action; False refuses."""
        return False


class Backend(abc.ABC):
    #: backend id as written in profiles and docs/spec.md section 3
    name: str = ""
    #: what the user unlocks this application with, for messages ("the token PIN", ...), or None
    pin_name: str | None = None

    @classmethod
    def check_available(cls) -> None:
        """Raise DeviceError (saying what to install) when a library this backend needs is
        missing: checked once before any device is opened, so that is not taken for "absent"."""

    @abc.abstractmethod
    def enroll(self, interaction: Interaction, options) -> Enrollment:
        """Create (or adopt) the sealed secret; return the enrollment (no secrets). The library
        adds where the device was found (device_kind, device_name). `options`: this backend's
        record in enrollment.py."""

    def default_options(self):
        """This backend's enrollment options when the user chose none (enrollment.py, loaded only
        for enrollment)."""
        from ..enrollment import default_options

        return default_options(self.name)

    @abc.abstractmethod
    def respond(self, challenge: bytes, enrollment: Enrollment, interaction: Interaction) -> bytearray:
        """R for a 32-byte challenge, using the enrollment `enroll` returned. Caller wipes R."""

    def respond_many(self, challenges, enrollment: Enrollment, interaction: Interaction) -> list:
        """R for each challenge, in order, in this one session (the Interaction is asked for the
        PIN once per command). A backend that can answer several challenges in one device
        operation overrides this. Caller wipes each R."""
        responses = []
        try:
            for challenge in challenges:
                responses.append(self.respond(challenge, enrollment, interaction))
        except BaseException:
            for response in responses:
                wipe(response)
            raise
        return responses

    def matches(self, enrollment: Enrollment) -> bool:
        """Whether this is the device application of `enrollment`, asked without any PIN. With no
        serial recorded it cannot tell, and says yes (the fingerprint guard still stands)."""
        if not enrollment.serial:
            return True
        return same_serial(enrollment.serial, self.identity().get("serial"))

    def recover_responses(self, challenge: bytes, interaction: Interaction):
        """Yield (description, R) for every secret this application could have used for a set
        (applet slots, FIDO2 UV states...), for recovery without a profile. Caller wipes each R."""
        raise RecoveryUnsupportedError(f"the {self.name} backend cannot look for a set without a profile")

    def identity(self) -> dict:
        """What identifies the device ({"serial": decimal text} when known), no secrets."""
        return {}

    def wrong_secret_hint(self) -> str:
        """What can make this application answer with another secret than at enrollment."""
        return "wrong device, or its secret was replaced"
