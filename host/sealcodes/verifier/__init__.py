"""The verifier: single-use checking of sealcodes codes (docs/verifier.md).

`record` defines verifier records (docs/spec.md), `core.Verifier` holds the rules, `auth` who may
do what, `policy` the operator's limits, `store` the storage interface with `sqlite` and
`postgres`, `service` the HTTP API (`ratelimit` its token buckets), `pam` the PAM helper.
"""

from .core import (  # noqa: F401
    ACCEPTED,
    LOCKED,
    MISTYPED,
    REJECTED,
    THROTTLED,
    Event,
    Forbidden,
    ImportStopped,
    ImportSummary,
    Policy,
    Principal,
    Verifier,
    VerifierConfigError,
    VerifyResult,
)
from .record import HashParams, VerifierRecord, make_record, read_records  # noqa: F401
from .database import open_store  # noqa: F401
from .store import StoreError  # noqa: F401
