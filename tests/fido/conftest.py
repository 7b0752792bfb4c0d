"""Fixtures of the FIDO2 authenticator tests: one token, one python-fido2 device.

Every test gets its token from the `fido` fixture, a `FidoUnderTest`: a
python-fido2 `CtapDevice` (`.device`), power cycles, restarts from flash, and
the user's finger. It is parametrized by how the token is reached, from the
FIDO_KINDS registry; "direct" hands CTAPHID CBOR payloads straight to
`Authenticator.process`. Another transport (the real CTAPHID framing) only has
to subclass FidoUnderTest, override `open`/`close`/`power_cycle`, and register
itself in FIDO_KINDS: every test then runs over it too.
"""

from __future__ import annotations

import os

import pytest
from fido2 import cbor as fido2_cbor
from fido2.ctap2 import Ctap2
from fido2.hid import CTAPHID

from sealboard.platform import CPythonPlatform
from sealtoken.fido.ctap2 import Authenticator
from sealtoken.core.storage import Store

from ._direct_device import DirectCtapDevice

RNG_SEED = 2105


class FidoUnderTest:
    """A token as the FIDO tests see it.

    .device         python-fido2 CtapDevice
    .authenticator  the firmware's Authenticator (white-box tests only)
    .platform, .store
    """

    def __init__(self, kind, state_dir, presence="approve", rng_seed=RNG_SEED, reset_window_ms=None):
        self.kind = kind
        self.state_dir = str(state_dir)
        self.presence = presence
        self.rng_seed = rng_seed
        self.reset_window_ms = reset_window_ms
        self.restarts = 0
        self.device = None
        self._responses = []
        self.open()

    # transports override these ------------------------------------------------------
    def open(self):
        """Boot the token from its flash (state_dir) and connect."""
        # a new seed per boot: a restarted token must not replay its random numbers
        seed = None if self.rng_seed is None else f"{self.rng_seed}/{self.restarts}"
        self.platform = CPythonPlatform(state_dir=self.state_dir, rng_seed=seed, presence=self.presence)
        self.store = Store(self.platform)
        self.authenticator = Authenticator(self.platform, self.store, reset_window_ms=self.reset_window_ms,
                                           raise_internal_errors=True)
        self.device = DirectCtapDevice(self.authenticator)

    def close(self):
        if self.device is not None:
            self._responses.extend(getattr(self.device, "responses", ()))
        self.device = None
        self.platform.close()

    def power_cycle(self):
        """Power off and on: session state goes, flash stays. May replace .device:
        take a new ctap2() afterwards."""
        self.authenticator.power_off()

    # common -------------------------------------------------------------------------
    def restart(self):
        """Stop the token process and boot it again from the same flash."""
        self.close()
        self.restarts += 1
        self.open()

    def set_presence(self, policy):
        """'approve', 'deny', 'timeout' or 'wait': what the user does when asked for a touch."""
        self.presence = policy
        self.platform.presence = policy

    def ctap2(self):
        return Ctap2(self.device)

    def seen_responses(self):
        """Every response of this token so far (transports that cannot tell return [])."""
        return list(self._responses) + list(getattr(self.device, "responses", ()))

    def raw(self, request: bytes) -> bytes:
        """Send command byte || CBOR as is; returns status byte || CBOR."""
        return self.device.call(CTAPHID.CBOR, request)


class CtaphidFidoUnderTest(FidoUnderTest):
    """The whole token (sealtoken.token.Token) behind its CTAPHID framing, driven by
    python-fido2's own CtapHidDevice over sealboard.ctaphid_link: 64-byte reports,
    channels, keepalives and CANCEL as over USB."""

    def open(self):
        from sealboard.ctaphid_link import open_emulated_hid_device
        from sealtoken.token import Token

        seed = None if self.rng_seed is None else f"{self.rng_seed}/{self.restarts}"
        self.platform = CPythonPlatform(state_dir=self.state_dir, rng_seed=seed, presence=self.presence)
        self.token = Token(self.platform)
        self.store = self.token.store
        self.authenticator = self.token.fido.authenticator
        self.authenticator.reset_window_ms = self.reset_window_ms
        self.authenticator.raise_internal_errors = True  # the CTAPHID layer turns it into an error answer
        self.device = open_emulated_hid_device(self.token)

    def close(self):
        if self.device is not None:
            self.device.close()
        self.device = None
        self.platform.close()

    def power_cycle(self):
        """Unplug and plug in: the host opens the device again (new channel)."""
        self.device.close()
        self.token.power_off()
        self.token.power_on()
        from sealboard.ctaphid_link import open_emulated_hid_device

        self.device = open_emulated_hid_device(self.token)


FIDO_KINDS = {"direct": FidoUnderTest, "ctaphid": CtaphidFidoUnderTest}


def _kinds():
    wanted = os.environ.get("SEALCODES_FIDO_KINDS")
    return wanted.split(",") if wanted else list(FIDO_KINDS)


@pytest.fixture(params=_kinds())
def fido_factory(request, tmp_path):
    """make(presence=..., state_dir=..., reset_window_ms=...) -> FidoUnderTest, closed at the end."""
    made = []
    cls = FIDO_KINDS[request.param]

    def make(presence="approve", state_dir=None, reset_window_ms=None, rng_seed=RNG_SEED):
        state = state_dir or tmp_path / f"token{len(made)}"
        dut = cls(request.param, state, presence=presence, rng_seed=rng_seed, reset_window_ms=reset_window_ms)
        made.append(dut)
        return dut

    yield make
    for dut in made:
        try:
            dut.close()
        except Exception:
            pass
    # every answer the token gave in this test is canonical CBOR (python-fido2's strict check)
    for dut in made:
        for response in dut.seen_responses():
            assert_canonical_response(response)


def assert_canonical_response(response: bytes):
    assert len(response) >= 1
    if len(response) > 1:
        assert response[0] == 0x00, f"error status {response[0]:#04x} with a body"
        body = response[1:]
        assert fido2_cbor.encode(fido2_cbor.decode(body)) == body, body.hex()


@pytest.fixture
def fido(fido_factory):
    """A fresh token (flash in tmp_path) that approves every touch."""
    return fido_factory()


@pytest.fixture
def ctap2(fido):
    return fido.ctap2()


# --- helpers shared by the test modules (plain functions, imported from .conftest) ---

RP_ID = "example.com"
RP = {"id": RP_ID, "name": "Example"}
ES256 = [{"type": "public-key", "alg": -7}]
CDH = bytes(range(32))


def make_credential(ctap, rp_id=RP_ID, user_id=b"user-1", name="alice", rk=False, extensions=None,
                    token=None, protocol=None, cdh=CDH, exclude=None, key_params=ES256, options=None):
    """ctap.make_credential with the usual defaults; token + protocol add pinUvAuthParam."""
    opts = dict(options or {})
    if rk:
        opts["rk"] = True
    param = version = None
    if token is not None:
        param, version = protocol.authenticate(token, cdh), protocol.VERSION
    return ctap.make_credential(
        cdh, {"id": rp_id, "name": rp_id}, {"id": user_id, "name": name, "displayName": name.title()},
        key_params, exclude_list=exclude, extensions=extensions, options=opts or None,
        pin_uv_param=param, pin_uv_protocol=version,
    )


def get_assertion(ctap, rp_id=RP_ID, cred_ids=None, extensions=None, token=None, protocol=None, cdh=CDH,
                  options=None):
    allow = None if cred_ids is None else [{"type": "public-key", "id": c} for c in cred_ids]
    param = version = None
    if token is not None:
        param, version = protocol.authenticate(token, cdh), protocol.VERSION
    return ctap.get_assertion(rp_id, cdh, allow, extensions, options, param, version)


def cred_id_of(att):
    return att.auth_data.credential_data.credential_id
