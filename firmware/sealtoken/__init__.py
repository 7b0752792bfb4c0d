"""sealtoken: the firmware of the sealcodes token.

A pure core, MicroPython-compatible: APDUs in, responses out; CTAPHID packets in,
packets out. Everything from the outside world (randomness, persistent storage,
user presence, clock, public-key crypto) comes through a Platform object.
"""

VERSION = (0, 1, 0)
