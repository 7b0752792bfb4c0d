"""Base class of every applet the card dispatches to, and the ApduError it raises."""


class ApduError(Exception):
    """Raised by an applet to answer with a bare status word."""

    def __init__(self, sw):
        super().__init__(sw)  # MicroPython: Exception has no __init__ attribute
        self.sw = sw


class Applet:
    """One application on the card, selected by AID.

    The card (sealtoken.core.card.Card) owns ISO 7816 framing: it parses APDUs (short,
    extended, chained), selects applets by AID, splits long responses with 61xx /
    GET RESPONSE (and the applet's own SEND REMAINING instruction, see
    SEND_REMAINING_INS), and calls into the selected applet with a whole Command.
    """

    AID = b""
    # instruction a client uses to fetch the rest of a long response (besides C0)
    SEND_REMAINING_INS = None

    def __init__(self, platform, store):
        self.platform = platform
        self.store = store

    def select(self, command):
        """Called on SELECT by AID; returns response data (SW 9000) or raises ApduError."""
        return b""

    def deselect(self):
        """Another applet was selected: forget session state."""

    def power_off(self):
        """Power off / reset: forget all session state (PIN verified, tokens...)."""
        self.deselect()

    def process(self, command):
        """Handle one complete command; returns response data (SW 9000) or raises ApduError.

        An applet may also return (data, sw) to answer with data and a non-9000 status.
        """
        raise NotImplementedError
