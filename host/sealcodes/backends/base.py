"""What every backend (one per device application) provides to the library.

A backend session wraps one open connection to one device application. It
enrolls (creates or adopts the sealed secret, returns metadata for the profile)
and answers challenges (returns R, docs/spec.md section 3). It never prints or prompts:
user interaction goes through the `Interaction` callbacks the caller passes in.
"""

from __future__ import annotations

import abc


CHALLENGE_LEN = 32  # docs/spec.md section 2


def require_challenge(challenge) -> bytes:
    """The 32-byte SPEC challenge, or InvalidInputError."""
    from ..errors import InvalidInputError

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

    @abc.abstractmethod
    def enroll(self, interaction: Interaction, **options) -> dict:
        """Create (or adopt) the sealed secret; return profile metadata (no secrets)."""

    @abc.abstractmethod
    def respond(self, challenge: bytes, enrollment: dict, interaction: Interaction) -> bytearray:
        """R for a 32-byte challenge, using the metadata `enroll` returned. Caller wipes R."""

    def recover_responses(self, challenge: bytes, interaction: Interaction):
        """Yield (description, R) for every secret this application could have used for a set
        (applet slots, FIDO2 UV states...), for recovery without a profile. Caller wipes each R."""
        from ..errors import RecoveryUnsupportedError

        raise RecoveryUnsupportedError(f"the {self.name} backend cannot look for a set without a profile")

    def identity(self) -> dict:
        """What identifies the device (serial, ...), no secrets."""
        return {}
