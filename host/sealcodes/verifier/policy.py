"""What the operator decides for a verifier, stored in its database by `verifier init` so that every
CLI call, server and PAM helper applies the same rules (docs/verifier.md):

- guessing limits: lock after N consecutive failures, a doubling delay between attempts;
- the one Argon2id **shape** (memory, passes, lanes) a record may have. Argon2id's time is not a
  function of memory x passes alone: at equal memory x passes, the memory filled (first touch),
  the passes and the lanes each weigh differently, so a set of another shape would take another
  time than the stand-in of an unknown account, and tell the account exists. With one shape, every
  attempt makes the same Argon2id calls with the same parameters, whatever the account. It also
  bounds what one record may cost (no 1 GiB record);
- how many active sets an account may hold (every attempt hashes once per Argon2id set of the
  account holding the most, and compares every digest of the account's sets);
- request rates of the HTTP service, per API key and per client address (token buckets), how many
  attempts one key or one address may have in flight at once, and how long an attempt waits for
  a hash slot before the server answers "busy".
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Mapping

from ..errors import InvalidInputError
from .record import (
    DEFAULT_ITERATIONS,
    DEFAULT_LANES,
    DEFAULT_MEMORY_KIB,
    SCHEME_ARGON2ID,
    HashParams,
)

#: SP 800-63B: at most 100 consecutive failed attempts per account
MAX_FAILURES_LIMIT = 100
DEFAULT_MAX_FAILURES = 10
DEFAULT_DELAY_BASE_S = 1.0
DEFAULT_DELAY_MAX_S = 300.0
DEFAULT_LOW_CODES = 3

#: active sets an account may hold by default (each Argon2id set is one hash in every attempt)
DEFAULT_MAX_SETS = 4
MAX_SETS_LIMIT = 100

DEFAULT_KEY_RATE = 50.0
DEFAULT_KEY_BURST = 100
DEFAULT_ADDRESS_RATE = 10.0
DEFAULT_ADDRESS_BURST = 20
MAX_RATE = 1_000_000.0
#: how long an attempt waits for a hash slot (and for its key's and address's turn) before "busy"
DEFAULT_ATTEMPT_WAIT_S = 5.0
#: attempts one API key, and one client address, may have in flight at once (0: no limit)
DEFAULT_KEY_IN_FLIGHT = 8
DEFAULT_ADDRESS_IN_FLIGHT = 2


def shape_text(params: HashParams) -> str:
    return f"m={params.memory_kib} KiB, t={params.iterations}, p={params.lanes}"


@dataclass(frozen=True)
class Policy:
    """Guessing limits, the accepted hash shape, set and rate limits of one verifier database."""

    max_failures: int = DEFAULT_MAX_FAILURES
    delay_base_s: float = DEFAULT_DELAY_BASE_S
    delay_max_s: float = DEFAULT_DELAY_MAX_S
    low_codes: int = DEFAULT_LOW_CODES
    #: the one Argon2id shape a record may have
    memory_kib: int = DEFAULT_MEMORY_KIB
    iterations: int = DEFAULT_ITERATIONS
    lanes: int = DEFAULT_LANES
    #: active sets (any scheme) an account may hold
    max_sets: int = DEFAULT_MAX_SETS
    #: requests per second and bucket size; a rate of 0 turns that limit off
    key_rate: float = DEFAULT_KEY_RATE
    key_burst: int = DEFAULT_KEY_BURST
    address_rate: float = DEFAULT_ADDRESS_RATE
    address_burst: int = DEFAULT_ADDRESS_BURST
    #: seconds an attempt waits for its turn and a hash slot before the answer is "busy"
    attempt_wait_s: float = DEFAULT_ATTEMPT_WAIT_S
    #: attempts in flight at once per API key and per client address (0: no limit)
    key_in_flight: int = DEFAULT_KEY_IN_FLIGHT
    address_in_flight: int = DEFAULT_ADDRESS_IN_FLIGHT

    def validate(self) -> "Policy":
        if _not_int(self.max_failures) or not 1 <= self.max_failures <= MAX_FAILURES_LIMIT:
            raise InvalidInputError(f"max failures must be 1 to {MAX_FAILURES_LIMIT}")
        if not 0 <= self.delay_base_s <= self.delay_max_s <= 86400:
            raise InvalidInputError("delays must satisfy 0 <= base <= max <= 86400 seconds")
        if _not_int(self.low_codes) or not 0 <= self.low_codes <= 100:
            raise InvalidInputError("the low-codes warning must be 0 to 100")
        self.shape.validate()
        if _not_int(self.max_sets) or not 1 <= self.max_sets <= MAX_SETS_LIMIT:
            raise InvalidInputError(f"the active sets per account must be 1 to {MAX_SETS_LIMIT}")
        for name in ("key", "address"):
            rate, burst = getattr(self, f"{name}_rate"), getattr(self, f"{name}_burst")
            if not 0 <= rate <= MAX_RATE or _not_int(burst) or not 1 <= burst <= 1_000_000:
                raise InvalidInputError(f"the {name} rate limit must be 0 (off) to {MAX_RATE:g} requests per "
                                        "second, with a burst of 1 to 1000000")
            in_flight = getattr(self, f"{name}_in_flight")
            if _not_int(in_flight) or not 0 <= in_flight <= 100_000:
                raise InvalidInputError(f"the attempts in flight per {name} must be 0 (no limit) to 100000")
        if not 0 < self.attempt_wait_s <= 600:
            raise InvalidInputError("the attempt wait must be more than 0 and at most 600 seconds")
        return self

    @property
    def shape(self) -> HashParams:
        """The Argon2id parameters every Argon2id record must have, and every stand-in hash uses."""
        return HashParams(SCHEME_ARGON2ID, self.memory_kib, self.iterations, self.lanes)

    def delay_after(self, failures: int) -> float:
        """Seconds to wait after `failures` consecutive failures: base * 2^(failures-1), capped."""
        if failures <= 0 or self.delay_base_s == 0:
            return 0.0
        return min(self.delay_max_s, self.delay_base_s * 2 ** min(failures - 1, 40))

    def check_params(self, params: HashParams) -> None:
        """A one-line refusal when a record's Argon2id parameters are not this verifier's shape."""
        if params.scheme != SCHEME_ARGON2ID or params == self.shape:
            return
        raise InvalidInputError(f"the record's Argon2id parameters ({shape_text(params)}) are not this verifier's "
                                f"({shape_text(self.shape)}): every set has the same, so that no attempt takes "
                                "another time")

    def to_settings(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> "Policy":
        """The policy stored in the database; a setting not stored yet takes its default."""
        values = {}
        try:
            for f in fields(cls):
                text = settings.get(f.name)
                if text is not None:
                    values[f.name] = float(text) if f.type == "float" else int(text)
            return cls(**values).validate()
        except (ValueError, InvalidInputError) as exc:
            raise ValueError(str(exc)) from None


def _not_int(value) -> bool:
    return isinstance(value, bool) or not isinstance(value, int)
