"""The records only enrollment uses: the enrollment options of each backend (built from what the
user gave, refusing an option a backend does not use the same way for every backend), and what
an enrollment did.

Apart from records.py because `generate` never needs them and never loads this module
(tests/test_cli_imports.py): creating a dataclass costs start-up time. Every dataclass here has a
docstring: without one, dataclass() computes a signature for it, which costs more.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import InvalidInputError
from .records import Enrollment


@dataclass(frozen=True)
class AppletOptions:
    """Enrollment options of the seal applet."""

    slot: int = 1
    force: bool = False


@dataclass(frozen=True)
class Fido2Options:
    """Enrollment options of a FIDO2 key."""

    uv: str | None = None  # "required", "discouraged", or None: required when the key can verify
    force: bool = False  # set a PIN on a key that has none without asking (uv required)


@dataclass(frozen=True)
class PivOptions:
    """Enrollment options of a PIV card."""

    adopt: bool = False  # use the ECC key already in the slot
    curve: str | None = None  # of a key made on the card (default P-256)
    force: bool = False


@dataclass(frozen=True)
class OpenPgpOptions:
    """Enrollment options of an OpenPGP card."""

    adopt: bool = False  # use the ECC decryption key already on the card
    curve: str | None = None
    force: bool = False


@dataclass(frozen=True)
class YkoathOptions:
    """Enrollment options of a YKOATH application."""

    touch: bool = False
    force: bool = False


@dataclass(frozen=True)
class YubiOtpOptions:
    """Enrollment options of a YubiKey OTP slot."""

    slot: int = 2
    touch: bool = False
    adopt: bool = False
    force: bool = False
    access_code: bytes | None = None  # library use only: a slot protected by an access code


#: backend name -> the type of its enrollment options
OPTIONS_BY_BACKEND = {
    "applet": AppletOptions,
    "fido2": Fido2Options,
    "piv": PivOptions,
    "openpgp": OpenPgpOptions,
    "ykoath": YkoathOptions,
    "yubiotp": YubiOtpOptions,
}


def default_options(backend: str):
    """The options of an enrollment for which the user chose nothing."""
    return OPTIONS_BY_BACKEND[backend]()


def make_options(backend: str, given: Mapping[str, Any] | None = None):
    """The options of `backend` from `given`, refusing what this backend does not use, the same way
    for all. A value of None means "not given" and is left out.
    """
    options_type = OPTIONS_BY_BACKEND[backend]
    given = {k: v for k, v in (given or {}).items() if v is not None}
    known = [f.name for f in dataclasses.fields(options_type)]
    unknown = sorted(set(given) - set(known))
    if unknown:
        takes = ", ".join("--" + n.replace("_", "-") for n in known if n != "access_code") or "no options"
        raise InvalidInputError(
            f"the {backend} backend does not use {', '.join('--' + n.replace('_', '-') for n in unknown)} "
            f"(it takes: {takes})"
        )
    return options_type(**given)


@dataclass(frozen=True)
class EnrollResult:
    """What `operations.enroll` did: the enrollment's id in the profile, and the sets it orphaned."""

    enrollment_id: str
    enrollment: Enrollment
    orphaned: tuple = ()  # labels of sets made with the secret this enrollment replaced
