"""A stand-in for a board's native crypto module (the name sealtoken.crypto looks for),
MicroPython-compatible: it offers P-256 ECDH only and counts its calls, so a test can see
that the platform reached it for that operation and pure Python for the others. The
arithmetic is borrowed from the pure module; a real board would link C code here."""

from sealtoken.crypto import ec

calls = []


def p256_ecdh(private, peer_x, peer_y):
    calls.append("p256_ecdh")
    return ec.ecdh(ec.P256, private, peer_x, peer_y)
