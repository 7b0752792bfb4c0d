"""EC keys through the platform, for the applets that hold them (PIV, OpenPGP): P-256 always, P-384
where the platform has it. Failures are status words.

MicroPython rules: plain functions.
"""

from sealtoken.core.applet import ApduError
from sealtoken.core.iso7816 import SW_WRONG_DATA
from sealtoken.core.micro import const

_SW_FUNC_NOT_SUPPORTED = const(0x6A81)


def ec_size(platform, curve):
    """(field bytes) of 'p256' / 'p384', or ApduError(6A80) when the platform lacks the curve."""
    if curve == "p256":
        return 32
    if curve == "p384" and has_p384(platform):
        return 48
    raise ApduError(SW_WRONG_DATA)


def has_p384(platform):
    """P-384 is optional on a platform: declared by implementing p384_public."""
    try:
        platform.p384_public(b"\x00" * 47 + b"\x01")
        return True
    except NotImplementedError:
        return False
    except Exception:
        return False


def ec_generate(platform, curve):
    """(private, x, y)."""
    ec_size(platform, curve)
    try:
        if curve == "p256":
            return platform.p256_generate()
        return platform.p384_generate()
    except NotImplementedError:
        raise ApduError(_SW_FUNC_NOT_SUPPORTED)


def ec_public(platform, curve, private):
    """(x, y) of a private scalar; ApduError(6A80) when it is not a valid scalar."""
    size = ec_size(platform, curve)
    if len(private) != size:
        raise ApduError(SW_WRONG_DATA)
    try:
        if curve == "p256":
            return platform.p256_public(private)
        return platform.p384_public(private)
    except (ValueError, ArithmeticError):
        raise ApduError(SW_WRONG_DATA)
    except NotImplementedError:
        raise ApduError(_SW_FUNC_NOT_SUPPORTED)


def ec_ecdh(platform, curve, private, point):
    """x-coordinate of private * point (uncompressed); ApduError(6A80) for a bad point."""
    size = ec_size(platform, curve)
    if len(point) != 1 + 2 * size or point[0] != 0x04:
        raise ApduError(SW_WRONG_DATA)
    try:
        if curve == "p256":
            return platform.p256_ecdh(private, point[1:1 + size], point[1 + size:])
        return platform.p384_ecdh(private, point[1:1 + size], point[1 + size:])
    except (ValueError, ArithmeticError):
        raise ApduError(SW_WRONG_DATA)
    except NotImplementedError:
        raise ApduError(_SW_FUNC_NOT_SUPPORTED)
