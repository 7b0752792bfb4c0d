"""Exceptions of the sealcodes library.

Every message is one line, meant for the user, and never contains a secret
(code, device response, PIN, key).
"""


class SealcodesError(Exception):
    """Base of every error the CLI reports as one clear line."""


class InvalidInputError(SealcodesError, ValueError):
    """A label, epoch, format, count, typed code or response is not acceptable."""


class ProfileError(SealcodesError):
    """The profile file is corrupt, foreign, or cannot be written."""


class DeviceError(SealcodesError):
    """The device is absent, answered wrongly, or refused."""


class DeviceNotFoundError(DeviceError):
    pass


class DeviceBusyError(DeviceError):
    """Another program holds the device: exclusively (told at once), or in a transaction for longer
    than the command waited. `device`: its name; `exclusive`: which of the two."""

    def __init__(self, message, device=None, exclusive=False):
        super().__init__(message)
        self.device = device
        self.exclusive = exclusive


class PinError(DeviceError):
    """Wrong PIN; retries_left may be None when unknown."""

    def __init__(self, message, retries_left=None):
        super().__init__(message)
        self.retries_left = retries_left


class PinBlockedError(DeviceError):
    pass


class FingerprintMismatchError(DeviceError):
    pass


class RecoveryUnsupportedError(DeviceError):
    """This backend cannot search for a set without a profile."""


class ConfirmationError(SealcodesError):
    """The user did not confirm a new code set (typed-back code wrong, or aborted)."""
