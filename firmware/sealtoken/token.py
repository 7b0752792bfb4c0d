"""Token: one physical token = one Store + one Card with all applets.

    token = Token(platform)
    token.store                   # sealtoken.core.storage.Store over the platform's flash
    token.card.process_apdu(apdu) # ISO 7816 side (vpcd, loopback, CCID)
    token.serial                  # device serial (made at first boot)
    token.ctaphid.handle_packet(report) # USB HID side: CTAPHID (sealtoken.fido.ctaphid)

Applets are listed in build_applets(); each applet module appends its own line
there. The order matters only for SELECT by partial AID (first match wins).
"""

from sealtoken.core.card import Card
from sealtoken.fido.ctaphid import CtapHid
from sealtoken.applets.fido import FidoApplet
from sealtoken.applets.oath import OathApplet
from sealtoken.applets.openpgp import OpenPgpApplet
from sealtoken.applets.otp import OtpApplet
from sealtoken.applets.piv import PivApplet
from sealtoken.applets.seal import SealApplet
from sealtoken.core.storage import Store, device_serial


def build_applets(platform, store):
    """Every ISO 7816 applet of the token, in SELECT priority order."""
    applets = [
        SealApplet(platform, store),
        OathApplet(platform, store),
        OtpApplet(platform, store),
        FidoApplet(platform, store),
        PivApplet(platform, store),
        OpenPgpApplet(platform, store),
    ]
    return applets


class Token:
    def __init__(self, platform):
        self.platform = platform
        self.store = Store(platform)
        self.serial = device_serial(platform, self.store)  # first boot: made and persisted
        self.applets = build_applets(platform, self.store)
        self.card = Card(platform, self.applets)
        # --- FIDO over USB HID: CTAPHID shares the FIDO applet's authenticator ---
        self.fido = [a for a in self.applets if isinstance(a, FidoApplet)][0]
        self.ctaphid = CtapHid(self.fido.authenticator, platform)

    def power_off(self):
        self.card.power_off()
        self.ctaphid.power_off()

    def power_on(self):
        return self.card.power_on()
