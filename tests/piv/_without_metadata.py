"""Our token with a PIV applet that does not answer GET METADATA the YubiKey way, as other PIV cards
do (PivApplet answers 6F00 for an imported key; PIV/CAC cards answer errors of their own): built in
the test from the firmware's own applet, through the applet contract only (`process`), so the
firmware itself stays as it is.

    token = without_metadata(Token(platform), 0x6F00)   # in process
    python _without_metadata.py 6F00 serve --vpcd HOST:PORT --state DIR ...   # as `sealtoken serve`
"""

from __future__ import annotations

import sys

INS_GET_METADATA = 0xF7  # YubiKey's PIV extension
SLOT_9D = 0x9D  # the slot sealcodes uses; the management key's metadata stays (yubikit reads it to start)
MALFORMED = "malformed"  # answer 9000 with data that is no metadata


def without_metadata(token, answer):
    """`token` with its PIV applet replaced by one that answers GET METADATA of slot 9D with status
    word `answer` (an int), or 9000 and garbage (MALFORMED); everything else is the firmware's."""
    slot = next(s for s in token.card.slots if s.module == "sealtoken.applets.piv")

    class PivWithoutMetadata(type(slot.load())):
        def process(self, command):
            if command.ins == INS_GET_METADATA and command.p2 == SLOT_9D:
                return (b"\x01\x02\x03", 0x9000) if answer == MALFORMED else (b"", answer)
            return super().process(command)

    slot.applet = PivWithoutMetadata(token.platform, token.store)
    return token


def main(argv):
    """`sealtoken serve ...` with the token built as `without_metadata(Token(platform), argv[0])`."""
    import sealtoken.token
    from sealboard.cli import main as sealtoken_main

    answer = argv[0] if argv[0] == MALFORMED else int(argv[0], 16)
    firmware_token = sealtoken.token.Token
    sealtoken.token.Token = lambda platform: without_metadata(firmware_token(platform), answer)
    return sealtoken_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
