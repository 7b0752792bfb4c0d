"""What the operator decides for a verifier, stored in its database by `verifier init` so that every
CLI call, server and PAM helper applies the same rules (docs/verifier.md):

- guessing limits: lock after N consecutive failures, a doubling delay between attempts;
- the Argon2id cost a record may ask for, so one import cannot make every attempt on an account
  a denial-of-service lever. The **cost** of a set is `memory_kib x iterations` (KiB-passes: the
  memory Argon2id fills, times the passes over it; lanes share that work, they do not add to it),
  0 for `hmac-sha256`. A record is accepted when min_cost <= cost <= max_cost and
  memory_kib <= max_memory_kib; the **attempt cost** of an account, the sum of the costs of its
  active sets, may not exceed max_cost either. Default: within 4x of the default cost
  (m=19456 KiB, t=2: 38912), i.e. 9728..155648, at most 77824 KiB of memory;
- request rates of the HTTP service, per API key and per client address (token buckets).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Mapping

from ..errors import InvalidInputError
from .record import (
    DEFAULT_ITERATIONS,
    DEFAULT_MEMORY_KIB,
    MAX_ITERATIONS,
    MAX_MEMORY_KIB,
    SCHEME_ARGON2ID,
    HashParams,
)

#: SP 800-63B: at most 100 consecutive failed attempts per account
MAX_FAILURES_LIMIT = 100
DEFAULT_MAX_FAILURES = 10
DEFAULT_DELAY_BASE_S = 1.0
DEFAULT_DELAY_MAX_S = 300.0
DEFAULT_LOW_CODES = 3

#: the cost of the default Argon2id parameters, and how far from it a record may be by default
DEFAULT_COST = DEFAULT_MEMORY_KIB * DEFAULT_ITERATIONS
COST_FACTOR = 4
#: the smallest Argon2id allowed at all (m = 8 KiB, t = 1) and the largest a record can express
COST_FLOOR = 8
COST_CEILING = MAX_MEMORY_KIB * MAX_ITERATIONS

DEFAULT_KEY_RATE = 50.0
DEFAULT_KEY_BURST = 100
DEFAULT_ADDRESS_RATE = 10.0
DEFAULT_ADDRESS_BURST = 20
MAX_RATE = 1_000_000.0


def set_cost(params: HashParams) -> int:
    """The cost of one hash of a set: memory_kib x iterations for Argon2id, 0 for hmac-sha256."""
    if params.scheme == SCHEME_ARGON2ID:
        return params.memory_kib * params.iterations
    return 0


@dataclass(frozen=True)
class Policy:
    """Guessing limits, accepted cost and rate limits of one verifier database."""

    max_failures: int = DEFAULT_MAX_FAILURES
    delay_base_s: float = DEFAULT_DELAY_BASE_S
    delay_max_s: float = DEFAULT_DELAY_MAX_S
    low_codes: int = DEFAULT_LOW_CODES
    min_cost: int = DEFAULT_COST // COST_FACTOR
    max_cost: int = DEFAULT_COST * COST_FACTOR
    max_memory_kib: int = DEFAULT_MEMORY_KIB * COST_FACTOR
    #: requests per second and bucket size; a rate of 0 turns that limit off
    key_rate: float = DEFAULT_KEY_RATE
    key_burst: int = DEFAULT_KEY_BURST
    address_rate: float = DEFAULT_ADDRESS_RATE
    address_burst: int = DEFAULT_ADDRESS_BURST

    def validate(self) -> "Policy":
        if _not_int(self.max_failures) or not 1 <= self.max_failures <= MAX_FAILURES_LIMIT:
            raise InvalidInputError(f"max failures must be 1 to {MAX_FAILURES_LIMIT}")
        if not 0 <= self.delay_base_s <= self.delay_max_s <= 86400:
            raise InvalidInputError("delays must satisfy 0 <= base <= max <= 86400 seconds")
        if _not_int(self.low_codes) or not 0 <= self.low_codes <= 100:
            raise InvalidInputError("the low-codes warning must be 0 to 100")
        if _not_int(self.min_cost) or _not_int(self.max_cost) \
                or not COST_FLOOR <= self.min_cost <= self.max_cost <= COST_CEILING:
            raise InvalidInputError(f"the cost range must satisfy {COST_FLOOR} <= min <= max <= {COST_CEILING} "
                                    "(KiB x passes)")
        if _not_int(self.max_memory_kib) or not COST_FLOOR <= self.max_memory_kib <= MAX_MEMORY_KIB:
            raise InvalidInputError(f"the memory limit must be {COST_FLOOR} to {MAX_MEMORY_KIB} KiB")
        for name in ("key", "address"):
            rate, burst = getattr(self, f"{name}_rate"), getattr(self, f"{name}_burst")
            if not 0 <= rate <= MAX_RATE or _not_int(burst) or not 1 <= burst <= 1_000_000:
                raise InvalidInputError(f"the {name} rate limit must be 0 (off) to {MAX_RATE:g} requests per "
                                        "second, with a burst of 1 to 1000000")
        return self

    def delay_after(self, failures: int) -> float:
        """Seconds to wait after `failures` consecutive failures: base * 2^(failures-1), capped."""
        if failures <= 0 or self.delay_base_s == 0:
            return 0.0
        return min(self.delay_max_s, self.delay_base_s * 2 ** min(failures - 1, 40))

    def check_cost(self, params: HashParams) -> None:
        """A one-line refusal when a record's hash costs more or less than this verifier accepts."""
        if params.scheme != SCHEME_ARGON2ID:
            return
        cost = set_cost(params)
        if params.memory_kib > self.max_memory_kib:
            raise InvalidInputError(f"the record's Argon2id memory ({params.memory_kib} KiB) is above this "
                                    f"verifier's limit of {self.max_memory_kib} KiB")
        if not self.min_cost <= cost <= self.max_cost:
            raise InvalidInputError(f"the record's Argon2id cost (memory x passes = {cost}) is outside this "
                                    f"verifier's range {self.min_cost}..{self.max_cost}")

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
