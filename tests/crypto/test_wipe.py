"""wipe() when the heap has no room for its slices (CPython only: MicroPython cannot override a
bytearray's item assignment in a subclass). It must still zero the buffer, byte by byte, rather
than fail inside the `finally` blocks that call it and leave the secret (and the next buffers)."""

from sealtoken.core.hmac import wipe


class NoRoomForSlices(bytearray):
    """A bytearray whose slice stores fail as on a full MicroPython heap."""

    def __setitem__(self, index, value):
        if isinstance(index, slice):
            raise MemoryError("memory allocation failed")
        super().__setitem__(index, value)


def test_a_wipe_without_room_for_slices_stores_byte_by_byte():
    for n in (32, 600):
        secret = NoRoomForSlices(b"s" * n)
        wipe(secret)
        assert bytes(secret) == bytes(n)
