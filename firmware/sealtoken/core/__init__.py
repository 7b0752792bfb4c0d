"""The token's core: ISO 7816 card and APDUs, the applet base class, the store on NOR flash, the Platform, HMAC and CBOR."""
