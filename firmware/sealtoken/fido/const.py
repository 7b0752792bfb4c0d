"""Protocol constants the CTAP2 modules share (docs/protocols.md sections 4-6): command bytes,
status bytes, parameter keys, COSE, flags, limits. A constant only one module uses lives in it."""

from sealtoken.core.micro import const

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
CTAP2_CMD_RESET = const(0x07)
CTAP2_OK = const(0x00)
CTAP1_ERR_INVALID_PARAMETER = const(0x02)
CTAP1_ERR_INVALID_LENGTH = const(0x03)
CTAP2_ERR_CBOR_UNEXPECTED_TYPE = const(0x11)
_CTAP2_ERR_INVALID_CBOR = const(0x12)
CTAP2_ERR_MISSING_PARAMETER = const(0x14)
CTAP2_ERR_KEY_STORE_FULL = const(0x28)
CTAP2_ERR_INVALID_OPTION = const(0x2C)
CTAP2_ERR_NO_CREDENTIALS = const(0x2E)
CTAP2_ERR_NOT_ALLOWED = const(0x30)
CTAP2_ERR_PIN_INVALID = const(0x31)
CTAP2_ERR_PIN_AUTH_INVALID = const(0x33)
CTAP2_ERR_PIN_NOT_SET = const(0x35)
CTAP2_ERR_PUAT_REQUIRED = const(0x36)
CTAP2_ERR_PIN_POLICY_VIOLATION = const(0x37)
CTAP2_ERR_INVALID_SUBCOMMAND = const(0x3E)
_CTAP2_CP_RESP_UV_RETRIES = const(0x05)
_CTAP2_CP_GET_TOKEN_USING_UV = const(0x06)        # no built-in UV: INVALID_SUBCOMMAND
_CTAP2_CP_GET_UV_RETRIES = const(0x07)            # no built-in UV: INVALID_SUBCOMMAND
CTAP2_PERM_MC = const(0x01)
CTAP2_PERM_GA = const(0x02)
_CTAP2_PERM_BE = const(0x08)
_CTAP2_PERM_LBW = const(0x10)
_CTAP2_CFG_ENABLE_ENTERPRISE_ATTESTATION = const(0x01)  # not offered: INVALID_SUBCOMMAND
COSE_ALG_ES256 = const(-7)
CTAP2_FLAG_UP = const(0x01)
CTAP2_FLAG_UV = const(0x04)
CTAP2_FLAG_ED = const(0x80)
CTAP2_CRED_PROTECT_UV_OPTIONAL = const(1)
_CTAP2_CRED_PROTECT_UV_OPTIONAL_WITH_LIST = const(2)
CTAP2_CRED_PROTECT_UV_REQUIRED = const(3)
CTAP2_AAGUID = const(b"\x5e\xa1\xc0\xde\x70\x6b\x4e\x2a\x9d\x33\x51\x7c\x0f\x1d\x2b\x01")
CTAP2_MAX_MSG_SIZE = const(2048)                  # whole request (command byte + CBOR); more -> REQUEST_TOO_LARGE
CTAP2_MAX_CREDS_IN_LIST = const(8)                # advertised; longer allow/exclude lists are still read
CTAP2_MAX_CRED_ID_LENGTH = const(128)
CTAP2_MAX_STORED_NAME = const(64)                 # user name / displayName kept for resident credentials (bytes)
CTAP2_MAX_RESIDENT = const(50)                    # resident (discoverable) credentials
CTAP2_MAX_PIN_BYTES = const(63)
CTAP2_PIN_RETRIES_MAX = const(8)
CTAP2_RESET_WINDOW_MS = const(10000)              # reset only this long after power-up (None in Authenticator disables)
CTAP2_NEXT_ASSERTION_TIMEOUT_MS = const(30000)
CTAP2_TOKEN_LIFETIME_MS = const(600000)           # a pinUvAuthToken is usable for 10 minutes at most
CTAP2_CONFIG_ALWAYS_UV = const(0x01)
CTAP2_CONFIG_FORCE_PIN_CHANGE = const(0x02)
