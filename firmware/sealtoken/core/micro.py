"""MicroPython's const() for CPython, and heap kept for the modules imported on first use.

MicroPython's compiler reads `NAME = const(value)` itself: it puts the value into the code that uses
NAME, and a NAME that starts with an underscore is left out of the module's globals (no RAM at run
time). The call is never made there; CPython makes it, and gets the value.

    with import_room:
        from sealtoken.fido import make_credential

MicroPython never moves an object, and collects only when an allocation finds no room. Once the
applets' crypto has run, the free heap is in pieces: a module imported late (an applet on its first
SELECT, a CTAP command's module on its first request) can fail to find the contiguous blocks its code
needs while tens of KiB are free. So a reserve is allocated with the firmware's first import, low in
the heap and in one piece. import_room only drops the reference: the import's allocations fill the
free pieces as before, and when one finds no room, the collection the allocator then makes frees the
reserve, a hole that one fits in. After the import the reserve is taken again where there is room
(none when there is not). Under CPython it is a buffer freed and allocated again, nothing more.
"""


def const(value):
    return value


# bytes kept free for late imports: measured with the 32-bit unix port (docs/board.md, "Heap")
_LATE_IMPORT_RESERVE = const(3072)


class ImportRoom:
    """A context manager: the reserve is unreferenced while its block (an import) runs, taken again
    after; use it only for a first import (each use allocates the reserve anew)."""

    def __init__(self):
        self.reserve = None
        self.take()

    def take(self):
        if self.reserve is None:
            try:
                self.reserve = bytearray(_LATE_IMPORT_RESERVE)
            except MemoryError:
                pass  # no room left for it: the next late import goes without

    def __enter__(self):
        self.reserve = None
        return self

    def __exit__(self, kind, value, traceback):
        self.take()
        return False


import_room = ImportRoom()
