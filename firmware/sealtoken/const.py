"""Every protocol constant of the sealtoken firmware, in one place.

Plain integers and bytes (MicroPython: no enum). Sections, each owned by the
module that uses it:

  1. ISO 7816-4 status words and card-level instructions   (iso7816.py, card.py)
  2. Card limits and the ATR                                (card.py)
  3. Storage key registry: one numeric range per applet     (storage.py users)
  4. The sealcodes applet: AID, INS codes, TLV tags, PIN    (sealapplet.py)
  5+. Other applets (FIDO2, OATH, OTP) add their own clearly separated sections
      below; keys they persist must fall inside their range of section 3.
"""

# =============================================================================
# 1. ISO 7816-4 status words (SW1 SW2 as one 16-bit integer)
# =============================================================================
SW_OK = 0x9000
SW_BYTES_REMAINING_00 = 0x6100          # 61xx: xx more bytes (00 = 256 or more), fetch with GET RESPONSE
SW_WARNING_NO_INFO = 0x6200
SW_VERIFY_FAIL_00 = 0x63C0              # 63Cx: verification failed, x tries left (x = 0..15)
SW_MEMORY_FAILURE = 0x6581
SW_WRONG_LENGTH = 0x6700
SW_LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881
SW_SECURE_MESSAGING_NOT_SUPPORTED = 0x6882
SW_LAST_COMMAND_EXPECTED = 0x6883       # chaining: last command of the chain expected
SW_CHAINING_NOT_SUPPORTED = 0x6884
SW_SECURITY_STATUS_NOT_SATISFIED = 0x6982
SW_AUTH_METHOD_BLOCKED = 0x6983
SW_DATA_INVALID = 0x6984
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_COMMAND_NOT_ALLOWED = 0x6986
SW_WRONG_DATA = 0x6A80                  # incorrect parameters in the data field
SW_FUNC_NOT_SUPPORTED = 0x6A81
SW_FILE_NOT_FOUND = 0x6A82              # also: applet (AID) not found on SELECT
SW_RECORD_NOT_FOUND = 0x6A83
SW_NO_SPACE = 0x6A84                    # not enough memory space
SW_INCORRECT_P1P2 = 0x6A86
SW_REFERENCED_DATA_NOT_FOUND = 0x6A88
SW_FILE_EXISTS = 0x6A89
SW_WRONG_P1P2 = 0x6B00
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_UNKNOWN = 0x6F00                     # no precise diagnosis (also: unexpected firmware error)

# card-level instructions (handled by card.py, never seen by applets)
INS_SELECT = 0xA4
INS_GET_RESPONSE = 0xC0
P1_SELECT_BY_AID = 0x04
P2_SELECT_NO_FCI = 0x0C                 # SELECT P2 bits 0x0C: no response data

CLA_ISO = 0x00
CLA_CHAINING = 0x10                     # CLA bit b5: more commands of this chain follow

# =============================================================================
# 2. Card limits and the ATR
# =============================================================================
CARD_MAX_COMMAND_DATA = 4096            # command data after chaining; more -> 6700
SHORT_MAX_NE = 256                      # short APDU: Le=00 means 256
EXTENDED_MAX_NE = 65536                 # extended APDU: Le=0000 means 65536
AID_MIN_LEN = 5                         # ISO 7816-5: 5..16 bytes
AID_MAX_LEN = 16

# ATR (ISO 7816-3), 24 bytes:
#   3B           TS  direct convention
#   FF           T0  TA1 TB1 TC1 TD1 present, 15 historical bytes
#                    (ATR[1] & 0xF0 == 0xF0: yubikit picks its "USB" transport)
#   13 00 00     TA1 (Fi=372, Di=4), TB1, TC1
#   81           TD1 TD2 follows, protocol T=1
#   31           TD2 TA3 TB3 follow, protocol T=1
#   FE 15        TA3 IFSC=254, TB3 BWI=1 CWI=5
#   80           historical: category indicator (COMPACT-TLV follows)
#   73 C0 21 C0  card capabilities: select by full/partial DF name; chaining, extended Lc/Le
#   59 "sealtoken"  card issuer's data (tag 5, 9 bytes)
#   5C           TCK: XOR of T0..last historical byte
ATR = b"\x3b\xff\x13\x00\x00\x81\x31\xfe\x15\x80\x73\xc0\x21\xc0\x59sealtoken\x5c"

# =============================================================================
# 3. Storage key registry (sealtoken.core.storage keys are integers 0x0001..0xFFFF)
#    Every persisted key is declared here, inside the range of its owner.
# =============================================================================
KEY_DEVICE_FIRST = 0x0001               # device-wide records
KEY_DEVICE_LAST = 0x00FF
KEY_SEAL_FIRST = 0x0100                 # sealcodes applet (section 4)
KEY_SEAL_LAST = 0x01FF
KEY_FIDO_FIRST = 0x0200                 # FIDO2 authenticator
KEY_FIDO_LAST = 0x02FF
KEY_OATH_FIRST = 0x0300                 # OATH applet
KEY_OATH_LAST = 0x03FF
KEY_OTP_FIRST = 0x0400                  # YubiKey-OTP-compatible applet
KEY_OTP_LAST = 0x04FF

# device-wide
KEY_SERIAL = 0x0001                     # 4 random bytes, made at first boot (storage.device_serial)
SERIAL_LEN = 4

# sealcodes applet
KEY_SEAL_PIN = 0x0100                   # salt(16) || SHA-256(salt || PIN)
KEY_SEAL_PIN_TRIES = 0x0101             # 1 byte: tries left (0 = blocked)
KEY_SEAL_SLOT_BASE = 0x0110             # slot n (1..SEAL_NUM_SLOTS) at KEY_SEAL_SLOT_BASE + n:
                                        # alg(1) || secret(32)

# =============================================================================
# 4. The sealcodes applet (docs/applet.md)
# =============================================================================
AID_SEALCODES = b"\xf0SEALCODES"        # F0 53 45 41 4C 43 4F 44 45 53 (proprietary, unregistered RID)
SEAL_VERSION = (1, 1, 0)                # 1.1: PIN-always (one VERIFY, one use); RESET needs a touch

SEAL_INS_VERIFY_PIN = 0x20              # ISO VERIFY
SEAL_INS_CHANGE_PIN = 0x24              # ISO CHANGE REFERENCE DATA
SEAL_INS_GENERATE = 0x46                # make a slot secret inside the token
SEAL_INS_GET_INFO = 0x50
SEAL_INS_SET_PIN = 0x52
SEAL_INS_DERIVE = 0x88                  # ISO INTERNAL AUTHENTICATE: HMAC-SHA-256(slot, challenge)
SEAL_INS_DELETE = 0xE4                  # delete one slot
SEAL_INS_RESET = 0xFE                   # factory reset of this applet (P1P2 = SEAL_RESET_CONFIRM)

SEAL_P2_GENERATE_OVERWRITE = 0x01       # GENERATE: P2=01 allows replacing an existing slot
SEAL_RESET_CONFIRM = 0xDEAD             # RESET: P1 P2 = DE AD
SEAL_RESET_TOUCH_TIMEOUT_MS = 15000     # RESET waits this long for a touch, then 6985

SEAL_PIN_MIN_LEN = 4                    # bytes (UTF-8 from the host)
SEAL_PIN_MAX_LEN = 63
SEAL_PIN_MAX_TRIES = 8
SEAL_PIN_SALT_LEN = 16

SEAL_NUM_SLOTS = 8                      # slots 1..8
SEAL_SECRET_LEN = 32
SEAL_CHALLENGE_LEN = 32
SEAL_ALG_HMAC_SHA256 = 0x01

# GET INFO / SELECT response: TLVs tag(1) len(1) value
SEAL_TAG_VERSION = 0x01                 # 3 bytes major minor patch
SEAL_TAG_SERIAL = 0x02                  # 4 bytes
SEAL_TAG_PIN_SET = 0x03                 # 1 byte: 0 / 1
SEAL_TAG_PIN_TRIES = 0x04               # 1 byte: tries left
SEAL_TAG_SLOTS_USED = 0x05              # 1 byte bitmap: bit (n-1) = slot n holds a secret
SEAL_TAG_NUM_SLOTS = 0x06               # 1 byte
SEAL_TAG_PIN_VERIFIED = 0x07            # 1 byte: 0 / 1 (this session)
SEAL_TAG_PIN_MAX_TRIES = 0x08           # 1 byte
SEAL_TAG_PIN_LENGTHS = 0x09             # 2 bytes: min, max

# =============================================================================
# Sections of the other applets follow (FIDO2 / OATH / OTP), each under its
# own banner. Keep AIDs as AID_*, persisted keys inside section 3's ranges.
# =============================================================================


# ===========================================================================
# OATH: the YKOATH applet (sealtoken.applets.oath), docs/protocols.md section 7
# ===========================================================================
AID_OATH = b"\xa0\x00\x00\x05\x27\x21\x01"
OATH_VERSION = (5, 7, 1)  # what SELECT reports; yubikit enables RENAME from 5.3.1

OATH_INS_PUT = 0x01
OATH_INS_DELETE = 0x02
OATH_INS_SET_CODE = 0x03
OATH_INS_RESET = 0x04
OATH_INS_RENAME = 0x05
OATH_INS_LIST = 0xA1
OATH_INS_CALCULATE = 0xA2
OATH_INS_VALIDATE = 0xA3
OATH_INS_CALCULATE_ALL = 0xA4
OATH_INS_SEND_REMAINING = 0xA5

OATH_TAG_NAME = 0x71  # also the salt in the SELECT response
OATH_TAG_NAME_LIST = 0x72
OATH_TAG_KEY = 0x73
OATH_TAG_CHALLENGE = 0x74
OATH_TAG_RESPONSE = 0x75
OATH_TAG_TRUNCATED = 0x76
OATH_TAG_HOTP = 0x77
OATH_TAG_PROPERTY = 0x78  # one value byte, no length byte
OATH_TAG_VERSION = 0x79
OATH_TAG_IMF = 0x7A
OATH_TAG_ALGORITHM = 0x7B
OATH_TAG_TOUCH = 0x7C

OATH_MASK_TYPE = 0xF0
OATH_MASK_ALGO = 0x0F
OATH_TYPE_HOTP = 0x10
OATH_TYPE_TOTP = 0x20
OATH_ALG_SHA1 = 0x01
OATH_ALG_SHA256 = 0x02
OATH_ALG_SHA512 = 0x03
OATH_PROP_INCREASING = 0x01
OATH_PROP_TOUCH = 0x02

OATH_SALT_LEN = 8
OATH_CHALLENGE_LEN = 8
OATH_MAX_NAME_LEN = 64
OATH_MAX_KEY_LEN = 256  # longer keys than a hash block are hashed (RFC 2104) before storing
OATH_MAX_CHALLENGE_LEN = 64
OATH_MIN_DIGITS = 4
OATH_MAX_DIGITS = 10
OATH_MAX_CREDENTIALS = 32
OATH_TOUCH_TIMEOUT_MS = 15000

# storage keys 0x0300-0x03FF
OATH_KEY_SALT = 0x0300  # 8 random bytes (the yubikit device id), new on RESET
OATH_KEY_CODE = 0x0301  # access code: algorithm(1) || key
OATH_KEY_INDEX = 0x0302  # credential slots in creation order, one byte each
OATH_KEY_CRED_FIRST = 0x0310  # credential records 0x0310 .. 0x0310 + OATH_MAX_CREDENTIALS - 1

# ===========================================================================
# OTP: the YubiKey-OTP-compatible applet (sealtoken.applets.otp), docs/protocols.md section 8
# ===========================================================================
AID_OTP = b"\xa0\x00\x00\x05\x27\x20\x01"
OTP_VERSION = (5, 7, 1)

OTP_INS_CONFIG = 0x01
OTP_INS_STATUS = 0x03

# P1 of OTP_INS_CONFIG (yubikit CONFIG_SLOT)
OTP_SLOT_CONFIG_1 = 0x01
OTP_SLOT_CONFIG_2 = 0x03
OTP_SLOT_UPDATE_1 = 0x04
OTP_SLOT_UPDATE_2 = 0x05
OTP_SLOT_SWAP = 0x06
OTP_SLOT_DEVICE_SERIAL = 0x10
OTP_SLOT_CHAL_HMAC_1 = 0x30
OTP_SLOT_CHAL_HMAC_2 = 0x38

OTP_CONFIG_SIZE = 52
OTP_ACC_CODE_SIZE = 6
OTP_HMAC_CHALLENGE_SIZE = 64
OTP_CRC_OK_RESIDUAL = 0xF0B8

OTP_TKT_CHAL_RESP = 0x40
OTP_TKT_UPDATE_MASK = 0x3F
OTP_CFG_CHAL_YUBICO = 0x20
OTP_CFG_CHAL_HMAC = 0x22
OTP_CFG_HMAC_LT64 = 0x04
OTP_CFG_CHAL_BTN_TRIG = 0x08
OTP_CFG_UPDATE_MASK = 0x0C
OTP_EXT_ALLOW_UPDATE = 0x20

# touchLevel bits of the status
OTP_STATE_SLOT1_VALID = 0x01
OTP_STATE_SLOT2_VALID = 0x02
OTP_STATE_SLOT1_TOUCH = 0x04
OTP_STATE_SLOT2_TOUCH = 0x08

OTP_TOUCH_TIMEOUT_MS = 15000

# storage keys 0x0400-0x04FF
OTP_KEY_SLOT1 = 0x0400  # 52-byte configuration of slot 1
OTP_KEY_SLOT2 = 0x0401  # 52-byte configuration of slot 2
OTP_KEY_PGM_SEQ = 0x0402  # programming sequence (1 byte)
# the serial (slot command 10) is the device serial, const.KEY_SERIAL (storage.device_serial)

# ===========================================================================
# CTAPHID: USB HID framing of CTAP (sealtoken.fido.ctaphid), docs/protocols.md section 2,
# and the FIDO applet over ISO 7816 (sealtoken.applets.fido), section 3
# ===========================================================================
CTAPHID_PACKET_SIZE = 64                # HID report size, both directions
CTAPHID_MAX_MESSAGE = 7609              # 57 + 128 * 59
CTAPHID_BROADCAST_CID = 0xFFFFFFFF
CTAPHID_TYPE_INIT = 0x80                # bit 7 of byte 4: init packet
CTAPHID_INIT_NONCE_SIZE = 8
CTAPHID_PROTOCOL_VERSION = 2
CTAPHID_MSG_TIMEOUT_MS = 500            # longest gap between packets of one message
CTAPHID_LOCK_MAX_S = 10

CTAPHID_PING = 0x01
CTAPHID_MSG = 0x03
CTAPHID_LOCK = 0x04
CTAPHID_INIT = 0x06
CTAPHID_WINK = 0x08
CTAPHID_CBOR = 0x10
CTAPHID_CANCEL = 0x11
CTAPHID_KEEPALIVE = 0x3B
CTAPHID_ERROR = 0x3F

CTAPHID_ERR_INVALID_CMD = 0x01
CTAPHID_ERR_INVALID_PAR = 0x02
CTAPHID_ERR_INVALID_LEN = 0x03
CTAPHID_ERR_INVALID_SEQ = 0x04
CTAPHID_ERR_MSG_TIMEOUT = 0x05
CTAPHID_ERR_CHANNEL_BUSY = 0x06
CTAPHID_ERR_LOCK_REQUIRED = 0x0A
CTAPHID_ERR_INVALID_CHANNEL = 0x0B
CTAPHID_ERR_OTHER = 0x7F

CTAPHID_CAPABILITY_WINK = 0x01
CTAPHID_CAPABILITY_CBOR = 0x04
CTAPHID_CAPABILITY_NMSG = 0x08          # no MSG: CTAP2 only

CTAPHID_KEEPALIVE_PROCESSING = 1
CTAPHID_KEEPALIVE_UPNEEDED = 2

# CTAP status bytes the transports produce themselves (the authenticator makes the rest)
CTAPHID_STATUS_KEEPALIVE_CANCEL = 0x2D
CTAPHID_STATUS_TOO_LARGE = 0x39         # CTAP2_ERR_REQUEST_TOO_LARGE
CTAPHID_STATUS_OTHER = 0x7F             # CTAP1_ERR_OTHER

AID_FIDO = b"\xa0\x00\x00\x06\x47\x2f\x00\x01"
FIDO_SELECT_RESPONSE = b"FIDO_2_0"      # CTAP2 only (no U2F_V2)
FIDO_CLA = 0x80
FIDO_INS_NFCCTAP_MSG = 0x10
FIDO_INS_NFCCTAP_GETRESPONSE = 0x11
FIDO_P1_GETRESPONSE_SUPPORTED = 0x80    # NFCCTAP_MSG P1: the client will poll
FIDO_P1_CANCEL = 0x11                   # NFCCTAP_GETRESPONSE P1: cancel the request
SW_FIDO_UPDATE = 0x9100                 # still working; data: 1 byte keepalive status
FIDO_BUSY_GRACE_MS = 50                 # answer at once when the request is done this fast

# ===========================================================================
# CTAP2: the FIDO2 authenticator core (sealtoken.fido.ctap2, sealtoken.fido.clientpin,
# sealtoken.core.cbor), docs/protocols.md sections 4-6. Owned by the CTAP2 authenticator.
# ===========================================================================
# command bytes
CTAP2_CMD_MAKE_CREDENTIAL = 0x01
CTAP2_CMD_GET_ASSERTION = 0x02
CTAP2_CMD_GET_INFO = 0x04
CTAP2_CMD_CLIENT_PIN = 0x06
CTAP2_CMD_RESET = 0x07
CTAP2_CMD_GET_NEXT_ASSERTION = 0x08
CTAP2_CMD_CREDENTIAL_MANAGEMENT = 0x0A  # sealtoken.fido.credmgmt
CTAP2_CMD_SELECTION = 0x0B
CTAP2_CMD_CONFIG = 0x0D                 # sealtoken.fido.config

# status bytes (first byte of every response)
CTAP2_OK = 0x00
CTAP1_ERR_INVALID_COMMAND = 0x01
CTAP1_ERR_INVALID_PARAMETER = 0x02
CTAP1_ERR_INVALID_LENGTH = 0x03
CTAP2_ERR_CBOR_UNEXPECTED_TYPE = 0x11
CTAP2_ERR_INVALID_CBOR = 0x12
CTAP2_ERR_MISSING_PARAMETER = 0x14
CTAP2_ERR_CREDENTIAL_EXCLUDED = 0x19
CTAP2_ERR_UNSUPPORTED_ALGORITHM = 0x26
CTAP2_ERR_OPERATION_DENIED = 0x27
CTAP2_ERR_KEY_STORE_FULL = 0x28
CTAP2_ERR_UNSUPPORTED_OPTION = 0x2B
CTAP2_ERR_INVALID_OPTION = 0x2C
CTAP2_ERR_KEEPALIVE_CANCEL = 0x2D
CTAP2_ERR_NO_CREDENTIALS = 0x2E
CTAP2_ERR_USER_ACTION_TIMEOUT = 0x2F
CTAP2_ERR_NOT_ALLOWED = 0x30
CTAP2_ERR_PIN_INVALID = 0x31
CTAP2_ERR_PIN_BLOCKED = 0x32
CTAP2_ERR_PIN_AUTH_INVALID = 0x33
CTAP2_ERR_PIN_AUTH_BLOCKED = 0x34
CTAP2_ERR_PIN_NOT_SET = 0x35
CTAP2_ERR_PUAT_REQUIRED = 0x36
CTAP2_ERR_PIN_POLICY_VIOLATION = 0x37
CTAP2_ERR_REQUEST_TOO_LARGE = 0x39
CTAP2_ERR_INVALID_SUBCOMMAND = 0x3E
CTAP2_ERR_UNAUTHORIZED_PERMISSION = 0x40
CTAP1_ERR_OTHER = 0x7F

# getInfo (0x04) response keys
CTAP2_INFO_VERSIONS = 0x01
CTAP2_INFO_EXTENSIONS = 0x02
CTAP2_INFO_AAGUID = 0x03
CTAP2_INFO_OPTIONS = 0x04
CTAP2_INFO_MAX_MSG_SIZE = 0x05
CTAP2_INFO_PIN_UV_PROTOCOLS = 0x06
CTAP2_INFO_MAX_CREDS_IN_LIST = 0x07
CTAP2_INFO_MAX_CRED_ID_LENGTH = 0x08
CTAP2_INFO_TRANSPORTS = 0x09
CTAP2_INFO_ALGORITHMS = 0x0A
CTAP2_INFO_FORCE_PIN_CHANGE = 0x0C
CTAP2_INFO_MIN_PIN_LENGTH = 0x0D
CTAP2_INFO_FIRMWARE_VERSION = 0x0E

# makeCredential (0x01) request / response keys
CTAP2_MC_CLIENT_DATA_HASH = 0x01
CTAP2_MC_RP = 0x02
CTAP2_MC_USER = 0x03
CTAP2_MC_PUB_KEY_CRED_PARAMS = 0x04
CTAP2_MC_EXCLUDE_LIST = 0x05
CTAP2_MC_EXTENSIONS = 0x06
CTAP2_MC_OPTIONS = 0x07
CTAP2_MC_PIN_UV_AUTH_PARAM = 0x08
CTAP2_MC_PIN_UV_AUTH_PROTOCOL = 0x09
CTAP2_MC_ENTERPRISE_ATTESTATION = 0x0A
CTAP2_MC_RESP_FMT = 0x01
CTAP2_MC_RESP_AUTH_DATA = 0x02
CTAP2_MC_RESP_ATT_STMT = 0x03

# getAssertion (0x02) request / response keys
CTAP2_GA_RP_ID = 0x01
CTAP2_GA_CLIENT_DATA_HASH = 0x02
CTAP2_GA_ALLOW_LIST = 0x03
CTAP2_GA_EXTENSIONS = 0x04
CTAP2_GA_OPTIONS = 0x05
CTAP2_GA_PIN_UV_AUTH_PARAM = 0x06
CTAP2_GA_PIN_UV_AUTH_PROTOCOL = 0x07
CTAP2_GA_RESP_CREDENTIAL = 0x01
CTAP2_GA_RESP_AUTH_DATA = 0x02
CTAP2_GA_RESP_SIGNATURE = 0x03
CTAP2_GA_RESP_USER = 0x04
CTAP2_GA_RESP_NUMBER_OF_CREDENTIALS = 0x05

# clientPIN (0x06) request / response keys, subcommands, permissions
CTAP2_CP_PIN_UV_AUTH_PROTOCOL = 0x01
CTAP2_CP_SUB_COMMAND = 0x02
CTAP2_CP_KEY_AGREEMENT = 0x03
CTAP2_CP_PIN_UV_AUTH_PARAM = 0x04
CTAP2_CP_NEW_PIN_ENC = 0x05
CTAP2_CP_PIN_HASH_ENC = 0x06
CTAP2_CP_PERMISSIONS = 0x09
CTAP2_CP_RP_ID = 0x0A
CTAP2_CP_RESP_KEY_AGREEMENT = 0x01
CTAP2_CP_RESP_PIN_UV_AUTH_TOKEN = 0x02
CTAP2_CP_RESP_PIN_RETRIES = 0x03
CTAP2_CP_RESP_POWER_CYCLE_STATE = 0x04
CTAP2_CP_RESP_UV_RETRIES = 0x05

CTAP2_CP_GET_PIN_RETRIES = 0x01
CTAP2_CP_GET_KEY_AGREEMENT = 0x02
CTAP2_CP_SET_PIN = 0x03
CTAP2_CP_CHANGE_PIN = 0x04
CTAP2_CP_GET_PIN_TOKEN = 0x05
CTAP2_CP_GET_TOKEN_USING_UV = 0x06      # no built-in UV: INVALID_SUBCOMMAND
CTAP2_CP_GET_UV_RETRIES = 0x07          # no built-in UV: INVALID_SUBCOMMAND
CTAP2_CP_GET_TOKEN_USING_PIN = 0x09

CTAP2_PERM_MC = 0x01
CTAP2_PERM_GA = 0x02
CTAP2_PERM_CM = 0x04
CTAP2_PERM_BE = 0x08
CTAP2_PERM_LBW = 0x10
CTAP2_PERM_ACFG = 0x20
CTAP2_PERMS_SUPPORTED = 0x27            # mc | ga | cm | acfg; others -> UNAUTHORIZED_PERMISSION

# authenticatorCredentialManagement (0x0A): parameters, subcommands, subCommandParams, response keys
CTAP2_CM_SUB_COMMAND = 0x01
CTAP2_CM_SUB_COMMAND_PARAMS = 0x02
CTAP2_CM_PIN_UV_AUTH_PROTOCOL = 0x03
CTAP2_CM_PIN_UV_AUTH_PARAM = 0x04
CTAP2_CM_GET_CREDS_METADATA = 0x01
CTAP2_CM_ENUMERATE_RPS_BEGIN = 0x02
CTAP2_CM_ENUMERATE_RPS_NEXT = 0x03
CTAP2_CM_ENUMERATE_CREDS_BEGIN = 0x04
CTAP2_CM_ENUMERATE_CREDS_NEXT = 0x05
CTAP2_CM_DELETE_CREDENTIAL = 0x06
CTAP2_CM_UPDATE_USER_INFO = 0x07
CTAP2_CM_PARAM_RP_ID_HASH = 0x01
CTAP2_CM_PARAM_CREDENTIAL_ID = 0x02
CTAP2_CM_PARAM_USER = 0x03
CTAP2_CM_RESP_EXISTING_CREDS = 0x01
CTAP2_CM_RESP_REMAINING_CREDS = 0x02
CTAP2_CM_RESP_RP = 0x03
CTAP2_CM_RESP_RP_ID_HASH = 0x04
CTAP2_CM_RESP_TOTAL_RPS = 0x05
CTAP2_CM_RESP_USER = 0x06
CTAP2_CM_RESP_CREDENTIAL_ID = 0x07
CTAP2_CM_RESP_PUBLIC_KEY = 0x08
CTAP2_CM_RESP_TOTAL_CREDENTIALS = 0x09
CTAP2_CM_RESP_CRED_PROTECT = 0x0A

# authenticatorConfig (0x0D)
CTAP2_CFG_SUB_COMMAND = 0x01
CTAP2_CFG_SUB_COMMAND_PARAMS = 0x02
CTAP2_CFG_PIN_UV_AUTH_PROTOCOL = 0x03
CTAP2_CFG_PIN_UV_AUTH_PARAM = 0x04
CTAP2_CFG_ENABLE_ENTERPRISE_ATTESTATION = 0x01   # not offered: INVALID_SUBCOMMAND
CTAP2_CFG_TOGGLE_ALWAYS_UV = 0x02
CTAP2_CFG_SET_MIN_PIN_LENGTH = 0x03
CTAP2_CFG_PARAM_NEW_MIN_PIN_LENGTH = 0x01
CTAP2_CFG_PARAM_MIN_PIN_LENGTH_RP_IDS = 0x02     # no minPinLength extension: only an empty list is accepted
CTAP2_CFG_PARAM_FORCE_CHANGE_PIN = 0x03
CTAP2_CFG_AUTH_PREFIX = b"\xff" * 32 + b"\x0d"    # pinUvAuthParam covers prefix || subCommand || subCommandParams

# hmac-secret extension input keys (getAssertion)
CTAP2_HS_KEY_AGREEMENT = 0x01
CTAP2_HS_SALT_ENC = 0x02
CTAP2_HS_SALT_AUTH = 0x03
CTAP2_HS_PIN_UV_AUTH_PROTOCOL = 0x04

# COSE
COSE_KTY = 1
COSE_ALG = 3
COSE_EC2_CRV = -1
COSE_EC2_X = -2
COSE_EC2_Y = -3
COSE_KTY_EC2 = 2
COSE_CRV_P256 = 1
COSE_ALG_ES256 = -7
COSE_ALG_ECDH_ES_HKDF_256 = -25         # what the key-agreement keys carry

# authenticator data flags
CTAP2_FLAG_UP = 0x01
CTAP2_FLAG_UV = 0x04
CTAP2_FLAG_AT = 0x40
CTAP2_FLAG_ED = 0x80

# credProtect levels
CTAP2_CRED_PROTECT_UV_OPTIONAL = 1
CTAP2_CRED_PROTECT_UV_OPTIONAL_WITH_LIST = 2
CTAP2_CRED_PROTECT_UV_REQUIRED = 3

# what getInfo advertises, and the limits behind it
CTAP2_AAGUID = b"\x5e\xa1\xc0\xde\x70\x6b\x4e\x2a\x9d\x33\x51\x7c\x0f\x1d\x2b\x01"
CTAP2_MAX_MSG_SIZE = 2048               # whole request (command byte + CBOR); more -> REQUEST_TOO_LARGE
CTAP2_MAX_CREDS_IN_LIST = 8             # advertised; longer allow/exclude lists are still read
CTAP2_MAX_CRED_ID_LENGTH = 128
CTAP2_MAX_USER_ID_LENGTH = 64
CTAP2_MAX_STORED_NAME = 64              # user name / displayName kept for resident credentials (bytes)
CTAP2_MAX_STORED_RP_ID = 32             # rpId kept for resident credentials (bytes, truncated)
CTAP2_MAX_RESIDENT = 50                 # resident (discoverable) credentials
CTAP2_MIN_PIN_LENGTH = 4                # Unicode code points; the default, setMinPINLength may raise it
CTAP2_MAX_PIN_BYTES = 63
CTAP2_PIN_RETRIES_MAX = 8
CTAP2_PIN_CONSECUTIVE_MISSES = 3        # then PIN_AUTH_BLOCKED until power cycle
CTAP2_UP_TIMEOUT_MS = 30000
CTAP2_RESET_WINDOW_MS = 10000           # reset only this long after power-up (None in Authenticator disables)
CTAP2_NEXT_ASSERTION_TIMEOUT_MS = 30000
CTAP2_TOKEN_LIFETIME_MS = 600000        # a pinUvAuthToken is usable for 10 minutes at most
CTAP2_CRED_ID_VERSION = 0x01

# storage keys 0x0200-0x02FF
FIDO_KEY_MASTER = 0x0200                # 32 random bytes: root of credential-id keys and CredRandoms
FIDO_KEY_PIN_HASH = 0x0201              # LEFT(SHA-256(PIN), 16)
FIDO_KEY_PIN_RETRIES = 0x0202           # 1 byte: PIN tries left (absent = CTAP2_PIN_RETRIES_MAX)
FIDO_KEY_SIGN_COUNT = 0x0203            # 4 bytes big endian: global signature counter
FIDO_KEY_CONFIG = 0x0204                # 2 bytes: flags (CTAP2_CONFIG_*), minimum PIN length (absent = defaults)
FIDO_KEY_PIN_LENGTH = 0x0205            # 1 byte: code points of the current PIN (for setMinPINLength)
CTAP2_CONFIG_ALWAYS_UV = 0x01
CTAP2_CONFIG_FORCE_PIN_CHANGE = 0x02
FIDO_KEY_RK_FIRST = 0x0210              # resident credential records, CTAP2_MAX_RESIDENT slots
FIDO_KEY_RK_LAST = FIDO_KEY_RK_FIRST + CTAP2_MAX_RESIDENT - 1


# ===========================================================================
# PIV and OpenPGP card applets (sealtoken.applets.piv, sealtoken.applets.openpgp):
# just what ECDH with a card key needs (docs/protocols.md section 9).
# Storage ranges (section 3 style): PIV 0x0800..0x08FF, OpenPGP 0x0900..0x09FF.
# ===========================================================================
KEY_PIV_FIRST = 0x0800
KEY_PIV_LAST = 0x08FF
KEY_OPENPGP_FIRST = 0x0900
KEY_OPENPGP_LAST = 0x09FF

# --- PIV (NIST SP 800-73-4, plus the YubiKey extensions yubikit's PivSession uses) ---
AID_PIV = b"\xa0\x00\x00\x03\x08"                  # RID + PIX prefix; SELECT by this partial AID
PIV_AID_FULL = b"\xa0\x00\x00\x03\x08\x00\x00\x10\x00\x01\x00"
PIV_VERSION = (5, 4, 3)                            # answered to GET VERSION: yubikit enables metadata (>= 5.3)

PIV_INS_VERIFY = 0x20
PIV_INS_CHANGE_REFERENCE = 0x24
PIV_INS_RESET_RETRY = 0x2C
PIV_INS_GENERATE = 0x47
PIV_INS_AUTHENTICATE = 0x87
PIV_INS_GET_DATA = 0xCB
PIV_INS_PUT_DATA = 0xDB
PIV_INS_GET_METADATA = 0xF7                        # YubiKey extension
PIV_INS_GET_SERIAL = 0xF8                          # YubiKey extension
PIV_INS_RESET = 0xFB                               # YubiKey extension: only with PIN and PUK blocked
PIV_INS_GET_VERSION = 0xFD                         # YubiKey extension
PIV_INS_IMPORT_KEY = 0xFE                          # YubiKey extension

PIV_P2_PIN = 0x80
PIV_P2_PUK = 0x81
PIV_P1_VERIFY_RESET = 0xFF                         # VERIFY P1=FF: forget the PIN verification
PIV_SLOT_MANAGEMENT = 0x9B                         # card management (symmetric) key
PIV_SLOT_KEY_MANAGEMENT = 0x9D                     # the ECDH key slot

PIV_ALG_ECC_P256 = 0x11
PIV_ALG_ECC_P384 = 0x14
PIV_ALG_AES256 = 0x0C                              # our management key algorithm
PIV_MGMT_KEY_LEN = 32
PIV_MGMT_DEFAULT = b"\x01\x02\x03\x04\x05\x06\x07\x08" * 4   # the usual default, repeated to 32 bytes
PIV_MGMT_CHALLENGE_LEN = 16

PIV_PIN_DEFAULT = b"123456\xff\xff"
PIV_PUK_DEFAULT = b"12345678"
PIV_PIN_LEN = 8                                    # PIN/PUK travel padded with FF to 8 bytes
PIV_PIN_MIN_LEN = 6
PIV_PIN_MAX_TRIES = 3
PIV_PUK_MAX_TRIES = 3
PIV_PIN_SALT_LEN = 16

PIV_PIN_POLICY_DEFAULT = 0
PIV_PIN_POLICY_NEVER = 1
PIV_PIN_POLICY_ONCE = 2
PIV_PIN_POLICY_ALWAYS = 3
PIV_TOUCH_POLICY_DEFAULT = 0
PIV_TOUCH_POLICY_NEVER = 1
PIV_TOUCH_POLICY_ALWAYS = 2
PIV_TOUCH_POLICY_CACHED = 3
PIV_TOUCH_CACHE_MS = 15000
PIV_TOUCH_TIMEOUT_MS = 15000
PIV_ORIGIN_GENERATED = 1
PIV_ORIGIN_IMPORTED = 2

PIV_TAG_DYN_AUTH = 0x7C
PIV_TAG_WITNESS = 0x80
PIV_TAG_CHALLENGE = 0x81
PIV_TAG_RESPONSE = 0x82
PIV_TAG_EXPONENTIATION = 0x85
PIV_TAG_GEN_TEMPLATE = 0xAC
PIV_TAG_GEN_ALGORITHM = 0x80
PIV_TAG_PIN_POLICY = 0xAA
PIV_TAG_TOUCH_POLICY = 0xAB
PIV_TAG_EC_PRIVATE = 0x06
PIV_TAG_OBJ_ID = 0x5C
PIV_TAG_OBJ_DATA = 0x53
PIV_TAG_PUBLIC_KEY = 0x7F49                        # two-byte tag
PIV_TAG_EC_POINT = 0x86
PIV_META_ALGO = 0x01
PIV_META_POLICY = 0x02
PIV_META_ORIGIN = 0x03
PIV_META_PUBLIC_KEY = 0x04
PIV_META_IS_DEFAULT = 0x05
PIV_META_RETRIES = 0x06

PIV_OBJ_DISCOVERY = b"\x7e"
PIV_OBJ_PREFIX = b"\x5f\xc1"                       # 5FC1xx: the data objects stored, xx in PIV_OBJ_IDS
PIV_OBJ_IDS = (0x01, 0x02, 0x05, 0x07, 0x0A, 0x0B, 0x0C)   # card auth, CHUID, 9A/9C/9D certs, CCC, key history
PIV_OBJ_MAX_LEN = 1536

KEY_PIV_PIN = 0x0800                               # salt(16) || SHA-256(salt || PIN padded to 8); absent = default
KEY_PIV_PIN_TRIES = 0x0801                         # 1 byte
KEY_PIV_PUK = 0x0802                               # as KEY_PIV_PIN
KEY_PIV_PUK_TRIES = 0x0803
KEY_PIV_MGMT = 0x0804                              # 32-byte AES key; absent = PIV_MGMT_DEFAULT
KEY_PIV_SLOT_9D = 0x0810                           # alg(1) pin_policy(1) touch_policy(1) origin(1) private
KEY_PIV_OBJ_BASE = 0x0880                          # + xx for object 5FC1xx

# --- OpenPGP card (OpenPGP Card specification 3.4) ---
AID_OPENPGP = b"\xd2\x76\x00\x01\x24\x01"          # RID D276000124, application 01; SELECT by this prefix
OPENPGP_VERSION = (3, 4)
OPENPGP_MANUFACTURER = b"\xff\xfe"                 # "test card" range: not a registered manufacturer
OPENPGP_FW_VERSION = (5, 7, 0)                     # answered to Yubico's GET VERSION (00 F1) for yubikit

OPENPGP_INS_SELECT_DATA = 0xA5
OPENPGP_INS_GET_DATA = 0xCA
OPENPGP_INS_GET_NEXT_DATA = 0xCC
OPENPGP_INS_VERIFY = 0x20
OPENPGP_INS_CHANGE_REFERENCE = 0x24
OPENPGP_INS_RESET_RETRY = 0x2C
OPENPGP_INS_PUT_DATA = 0xDA
OPENPGP_INS_PUT_DATA_ODD = 0xDB
OPENPGP_INS_GENERATE = 0x47
OPENPGP_INS_PSO = 0x2A
OPENPGP_INS_TERMINATE = 0xE6
OPENPGP_INS_ACTIVATE = 0x44
OPENPGP_INS_GET_VERSION = 0xF1                     # Yubico extension yubikit sends first
OPENPGP_INS_GET_CHALLENGE = 0x84

OPENPGP_PW1_SIGN = 0x81
OPENPGP_PW1_OTHER = 0x82
OPENPGP_PW3 = 0x83
OPENPGP_PW1_DEFAULT = b"123456"
OPENPGP_PW3_DEFAULT = b"12345678"
OPENPGP_PW1_MIN_LEN = 6
OPENPGP_PW3_MIN_LEN = 8
OPENPGP_PW_MAX_LEN = 127
OPENPGP_PW_MAX_TRIES = 3
OPENPGP_PW_SALT_LEN = 16
OPENPGP_P1P2_PSO_DECIPHER = 0x8086
OPENPGP_GENERATE_NEW = 0x80
OPENPGP_GENERATE_READ = 0x81

OPENPGP_CRT_SIG = 0xB6
OPENPGP_CRT_DEC = 0xB8
OPENPGP_CRT_AUT = 0xA4
OPENPGP_ALG_ECDH = 0x12                             # algorithm attributes: ECDH || curve OID
OPENPGP_OID_P256 = b"\x2a\x86\x48\xce\x3d\x03\x01\x07"
OPENPGP_OID_P384 = b"\x2b\x81\x04\x00\x22"

OPENPGP_DO_AID = 0x4F
OPENPGP_DO_LOGIN = 0x5E
OPENPGP_DO_URL = 0x5F50
OPENPGP_DO_HISTORICAL = 0x5F52
OPENPGP_DO_CARDHOLDER = 0x65
OPENPGP_DO_NAME = 0x5B
OPENPGP_DO_LANG = 0x5F2D
OPENPGP_DO_SEX = 0x5F35
OPENPGP_DO_APP_DATA = 0x6E
OPENPGP_DO_DISCRETIONARY = 0x73
OPENPGP_DO_EXT_CAPS = 0xC0
OPENPGP_DO_ALGO_SIG = 0xC1
OPENPGP_DO_ALGO_DEC = 0xC2
OPENPGP_DO_ALGO_AUT = 0xC3
OPENPGP_DO_PW_STATUS = 0xC4
OPENPGP_DO_FINGERPRINTS = 0xC5
OPENPGP_DO_CA_FINGERPRINTS = 0xC6
OPENPGP_DO_FPR_SIG = 0xC7
OPENPGP_DO_FPR_DEC = 0xC8
OPENPGP_DO_FPR_AUT = 0xC9
OPENPGP_DO_GEN_TIMES = 0xCD
OPENPGP_DO_TIME_SIG = 0xCE
OPENPGP_DO_TIME_DEC = 0xCF
OPENPGP_DO_TIME_AUT = 0xD0
OPENPGP_DO_SECURITY = 0x7A
OPENPGP_DO_SIG_COUNT = 0x93
OPENPGP_DO_EXT_LENGTH = 0x7F66
OPENPGP_DO_KDF = 0xF9
OPENPGP_DO_ALGO_INFO = 0xFA
OPENPGP_DO_UIF_SIG = 0xD6
OPENPGP_DO_UIF_DEC = 0xD7
OPENPGP_DO_UIF_AUT = 0xD8
OPENPGP_DO_CARDHOLDER_CERT = 0x7F21
OPENPGP_DO_PUBLIC_KEY = 0x7F49
OPENPGP_TAG_EC_POINT = 0x86
OPENPGP_TAG_EXT_HEADER = 0x4D                       # key import (PUT DATA odd, extended header list)
OPENPGP_TAG_TEMPLATE = 0x7F48
OPENPGP_TAG_KEY_DATA = 0x5F48
OPENPGP_TAG_CIPHER = 0xA6

KEY_OPENPGP_PW1 = 0x0900                            # salt(16) || SHA-256(salt || PW); absent = default
KEY_OPENPGP_PW1_TRIES = 0x0901
KEY_OPENPGP_PW3 = 0x0902
KEY_OPENPGP_PW3_TRIES = 0x0903
KEY_OPENPGP_DEC_KEY = 0x0910                        # curve(1: 1 = P-256, 2 = P-384) || origin(1: 1 made, 2 imported) || private
KEY_OPENPGP_DEC_ALGO = 0x0911                       # algorithm attributes of the decryption key (C2)
KEY_OPENPGP_DEC_FPR = 0x0912                        # C8: 20 bytes set by the host
KEY_OPENPGP_DEC_TIME = 0x0913                       # CF: 4 bytes set by the host
KEY_OPENPGP_UIF_DEC = 0x0914                        # D7: touch policy (1 byte)
