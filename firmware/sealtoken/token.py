"""Token: one physical token = one Store + one Card with all applets + CTAPHID.

    token = Token(platform)
    token.store                   # sealtoken.core.storage.Store over the platform's flash
    token.card.process_apdu(apdu) # ISO 7816 side (vpcd, loopback, CCID)
    token.serial                  # device serial (made at first boot)
    token.ctaphid.handle_packet(report) # USB HID side: CTAPHID (sealtoken.fido.ctaphid)
    token.authenticator           # the CTAP2 authenticator CTAPHID and the FIDO applet share
    token.fido                    # the FIDO applet (CTAP2 over ISO 7816)

Applets are listed in build_applets(), each by AID, module and class: the card
imports an applet's module and makes it on the applet's first SELECT, so a
board keeps in RAM only the applets it uses. The FIDO applet is made at once
(it is small, and it passes the card's power events to the authenticator).
The order matters only for SELECT by partial AID (first match wins).
"""

from sealtoken.applets import AID_OATH, AID_OTP, AID_SEALCODES, PIV_AID_FULL, openpgp_aid
from sealtoken.applets.fido import FidoApplet
from sealtoken.core.card import AppletSlot, Card
from sealtoken.core.storage import Store, device_serial
from sealtoken.fido.ctap2 import Authenticator
from sealtoken.fido.ctaphid import CtapHid


def build_applets(platform, store, fido):
    """Every ISO 7816 applet of the token, in SELECT priority order: the FIDO applet fido, and a slot
    (sealtoken.core.card.AppletSlot) for each of the others."""
    common = (platform, store)
    return [
        AppletSlot(AID_SEALCODES, "sealtoken.applets.seal", "SealApplet", common),
        AppletSlot(AID_OATH, "sealtoken.applets.oath", "OathApplet", common),
        AppletSlot(AID_OTP, "sealtoken.applets.otp", "OtpApplet", common),
        fido,
        AppletSlot(PIV_AID_FULL, "sealtoken.applets.piv", "PivApplet", common),
        AppletSlot(openpgp_aid(device_serial(platform, store)), "sealtoken.applets.openpgp", "OpenPgpApplet",
                   common),
    ]


class Token:
    def __init__(self, platform):
        self.platform = platform
        self.store = Store(platform)
        self.serial = device_serial(platform, self.store)  # first boot: made and persisted
        # --- FIDO: CTAPHID (USB HID) and the FIDO applet (ISO 7816) share one authenticator ---
        self.authenticator = Authenticator(platform, self.store)
        self.fido = FidoApplet(platform, self.store, self.authenticator)
        self.card = Card(platform, build_applets(platform, self.store, self.fido))
        self.ctaphid = CtapHid(self.authenticator, platform)

    def power_off(self):
        self.card.power_off()
        self.ctaphid.power_off()

    def power_on(self):
        return self.card.power_on()
