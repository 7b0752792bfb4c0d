"""MicroPython's const() for CPython.

MicroPython's compiler reads `NAME = const(value)` itself: it puts the value into the code that uses
NAME, and a NAME that starts with an underscore is left out of the module's globals (no RAM at run
time). The call is never made there; CPython makes it, and gets the value.
"""


def const(value):
    return value
