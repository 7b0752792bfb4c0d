"""The store key registry: every key the token persists, inside the range of its owner.

Keys are integers 0x0001..0xFFFF (sealtoken.core.storage); one range per applet, so that two
applets never write the same key. tests/firmware/test_storage.py checks that every key lies in its
range and that no two are equal.
"""

from sealtoken.core.micro import const

# the ranges, one per owner
KEY_DEVICE_FIRST = const(0x0001)                  # device-wide records
KEY_DEVICE_LAST = const(0x00FF)
KEY_SEAL_FIRST = const(0x0100)                    # sealcodes applet (section 4)
KEY_SEAL_LAST = const(0x01FF)
KEY_FIDO_FIRST = const(0x0200)                    # FIDO2 authenticator
KEY_FIDO_LAST = const(0x02FF)
KEY_OATH_FIRST = const(0x0300)                    # OATH applet
KEY_OATH_LAST = const(0x03FF)
KEY_OTP_FIRST = const(0x0400)                     # YubiKey-OTP-compatible applet
KEY_OTP_LAST = const(0x04FF)
KEY_PIV_FIRST = const(0x0800)
KEY_PIV_LAST = const(0x08FF)
KEY_OPENPGP_FIRST = const(0x0900)
KEY_OPENPGP_LAST = const(0x09FF)

# device-wide
KEY_SERIAL = const(0x0001)                        # 4 random bytes, made at first boot (storage.device_serial)
SERIAL_LEN = const(4)

# sealcodes applet
KEY_SEAL_PIN = const(0x0100)                      # salt(16) || SHA-256(salt || PIN)
KEY_SEAL_PIN_TRIES = const(0x0101)                # 1 byte: tries left (0 = blocked)
KEY_SEAL_SLOT_BASE = const(0x0110)                # slot n (1..SEAL_NUM_SLOTS) at KEY_SEAL_SLOT_BASE + n:

# OATH applet
OATH_KEY_SALT = const(0x0300)                     # 8 random bytes (the yubikit device id), new on RESET
OATH_KEY_CODE = const(0x0301)                     # access code: algorithm(1) || key
OATH_KEY_INDEX = const(0x0302)                    # credential slots in creation order, one byte each
OATH_KEY_CRED_FIRST = const(0x0310)               # credential records 0x0310 .. 0x0310 + OATH_MAX_CREDENTIALS - 1

# OTP applet (its serial is the device serial, KEY_SERIAL)
OTP_KEY_SLOT1 = const(0x0400)                     # 52-byte configuration of slot 1
OTP_KEY_SLOT2 = const(0x0401)                     # 52-byte configuration of slot 2
OTP_KEY_PGM_SEQ = const(0x0402)                   # programming sequence (1 byte)

# FIDO2 authenticator
FIDO_KEY_MASTER = const(0x0200)                   # 32 random bytes: root of credential-id keys and CredRandoms
FIDO_KEY_PIN_HASH = const(0x0201)                 # LEFT(SHA-256(PIN), 16)
FIDO_KEY_PIN_RETRIES = const(0x0202)              # 1 byte: PIN tries left (absent = CTAP2_PIN_RETRIES_MAX)
FIDO_KEY_SIGN_COUNT = const(0x0203)               # 4 bytes big endian: global signature counter
FIDO_KEY_CONFIG = const(0x0204)                   # 2 bytes: flags (CTAP2_CONFIG_*), minimum PIN length (absent = defaults)
FIDO_KEY_PIN_LENGTH = const(0x0205)               # 1 byte: code points of the current PIN (for setMinPINLength)
FIDO_KEY_RK_FIRST = const(0x0210)                 # resident credential records, CTAP2_MAX_RESIDENT slots
FIDO_KEY_RK_LAST = const(0x0241)                  # FIDO_KEY_RK_FIRST + CTAP2_MAX_RESIDENT (50) - 1

# PIV applet
KEY_PIV_PIN = const(0x0800)                       # salt(16) || SHA-256(salt || PIN padded to 8); absent = default
KEY_PIV_PIN_TRIES = const(0x0801)                 # 1 byte
KEY_PIV_PUK = const(0x0802)                       # as KEY_PIV_PIN
KEY_PIV_PUK_TRIES = const(0x0803)
KEY_PIV_MGMT = const(0x0804)                      # 32-byte AES key; absent = PIV_MGMT_DEFAULT
KEY_PIV_SLOT_9D = const(0x0810)                   # alg(1) pin_policy(1) touch_policy(1) origin(1) private
KEY_PIV_OBJ_BASE = const(0x0880)                  # + xx for object 5FC1xx

# OpenPGP applet
KEY_OPENPGP_PW1 = const(0x0900)                   # salt(16) || SHA-256(salt || PW); absent = default
KEY_OPENPGP_PW1_TRIES = const(0x0901)
KEY_OPENPGP_PW3 = const(0x0902)
KEY_OPENPGP_PW3_TRIES = const(0x0903)
KEY_OPENPGP_DEC_KEY = const(0x0910)               # curve(1: 1 = P-256, 2 = P-384) || origin(1: 1 made, 2 imported) || private
KEY_OPENPGP_DEC_ALGO = const(0x0911)              # algorithm attributes of the decryption key (C2)
KEY_OPENPGP_DEC_FPR = const(0x0912)               # C8: 20 bytes set by the host
KEY_OPENPGP_DEC_TIME = const(0x0913)              # CF: 4 bytes set by the host
KEY_OPENPGP_UIF_DEC = const(0x0914)               # D7: touch policy (1 byte)
